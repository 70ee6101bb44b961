"""Layer builders shared by the hardware tests: hand-made layers and the graph that chains them."""

from hwsim.model.graph import FC_HEAD, Layer, LayerGraph, LayerKind, Role


def conv(name, c_in, c_out, k, hw, block):
    """A k x k stride-1 'same' conv on an hw x hw map (its input edge is set by `chain`)."""
    return Layer(
        name, LayerKind.CONV, Role.BACKBONE, (c_in, hw, hw), (c_out, hw, hw), (k, k), 1, k // 2,
        (), name, block=block,
    )  # fmt: skip


def gap(name, channels, hw, head):
    role = Role.FC_HEAD if head == FC_HEAD else Role.IC_HEAD
    return Layer(
        name, LayerKind.GAP, role, (channels, hw, hw), (channels, 1, 1), (hw, hw), 1, 0, (), name,
        head=head,
    )  # fmt: skip


def linear(name, features, classes, head):
    role = Role.FC_HEAD if head == FC_HEAD else Role.IC_HEAD
    return Layer(
        name, LayerKind.LINEAR, role, (features, 1, 1), (classes, 1, 1), (1, 1), 1, 0, (), name,
        head=head,
    )  # fmt: skip


def chain(layers) -> LayerGraph:
    """The graph of `layers`: each backbone layer reads the previous one; a head's GAP reads the
    backbone layer of its tap block (FC: the last), its Linear the GAP. Input shapes of chained
    convs are left as given (the tests choose maps whose sizes match where it matters)."""
    from dataclasses import replace

    backbone = [g for g in layers if g.head is None]
    out, prev, gaps = [], None, {}
    for g in layers:
        if g.head is None:
            inputs = () if prev is None else (prev,)
            prev = g.name
        elif g.kind is LayerKind.GAP:
            taps = [b for b in backbone if b.block == g.head] or backbone[-1:]
            inputs = (taps[-1].name if g.head != FC_HEAD else backbone[-1].name,)
            gaps[g.head] = g.name
        else:
            inputs = (gaps[g.head],)
        out.append(replace(g, inputs=inputs))
    classes = next((g.out_channels for g in layers if g.kind is LayerKind.LINEAR), 1)
    return LayerGraph(tuple(out), backbone[0].in_shape if backbone else (1, 1, 1), classes)
