"""NIR interchange: a Neuromorphic Intermediate Representation graph <-> hwsim's layer graph.

`read_nir` / `import_graph` turn a NIR graph (the `nir` package, HDF5 `.nir` files written by
snntorch, sinabs, norse, spikingjelly, Lava) into a `SpikingNetwork` whose `LayerGraph` every
stage reads; `hwsim.model.nir_export` does the reverse, and `hwsim.model.nir_nodes` reads and
checks one node. docs/nir.md is the user's guide.

What maps onto what (one hwsim layer = the weight path between two IF populations):

| NIR path between IF nodes (or from the Input)         | hwsim layer                         |
|-------------------------------------------------------|-------------------------------------|
| Conv2d                                                | conv                                |
| [Flatten] Affine/Linear on a vector                   | linear                              |
| [Flatten] Affine/Linear on a (C, H, W) map            | conv whose kernel is the whole map  |
| global AvgPool2d                                      | gap (its own IF population)         |
| global AvgPool2d/SumPool2d, [Flatten], Affine/Linear  | conv, kernel the map, W / (H W) avg |
| local AvgPool2d/SumPool2d, with one Conv2d or a last [Flatten] Affine | conv (`nir_pool`) |
| local AvgPool2d/SumPool2d alone (into neurons firing on any window spike) | pool avg/sum (max) |

Several paths into one IF node are summed there (a residual join): the path from the deepest
source sends the population's spikes, the others are `skip` layers. Every Output node must read
an IF node with one class per neuron; `fc_output` names the final classifier (default: the
deepest Output), the other Outputs are internal classifiers (ICs), numbered by the backbone
block of the population they tap, as hwsim's zoo numbers them.

Neuron conventions (NIR 1.0's `IF`, read from `nir.IF`): dv/dt = R I; z = [v > v_threshold];
v <- v_reset when z. hwsim's neuron (docs/engine.md): V <- V + I; s = [V >= theta];
V <- V - theta s, and one timestep of delay per layer. The importer reads an IF node as hwsim's
neuron: a step integrates r I (dt = 1), reset is by subtraction of the threshold where
v_reset = 0 (else, or under norse's and spikingjelly's conventions, a reset to v_reset scaled
with the membrane: `nir_convention.reset_potential`), and r / v_threshold is folded into the
weights of the layers that drive the population (exactly, without rescaling, when every IF has
r = 1 and one common threshold, which then becomes the engine's theta). Spikes can differ from
a literal reading of NIR's IF where the membrane sits exactly at the threshold (NIR: no spike;
hwsim: spike) and where a spike overshoots the threshold (reset to 0 drops the excess,
subtraction keeps it); docs/nir.md lists what each peer does. A LIF node is a population of
leaky neurons (`hwsim.model.nir_convention.neuron_model`): its leak and input gain per step stay
in the population's `Neuron`, only 1 / v_threshold is folded (v_leak with it); the convention's
firing at V > theta and delayed reset (snntorch's) go into every population's neuron; an
hwsim export's recorded steps (`metadata["neurons"]`) replace them where the file has them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.model.conversion import ConversionParams
from hwsim.model.graph import (
    FC_HEAD,
    FUSION_UNIT,
    GraphError,
    Layer,
    LayerGraph,
    LayerKind,
    Neuron,
    Pool,
    Role,
    Shape,
)
from hwsim.model.nir_convention import (
    check_neurons,
    convention_named,
    neuron_models,
    written_neurons,
)
from hwsim.model.nir_nodes import (
    MAX_NODES,
    NEURON_KINDS,
    SYNAPTIC_KINDS,
    NirError,
    as_array,
    as_shape,
    check_allocation,
    check_current,
    check_kinds,
    check_map,
    conv_geometry,
    kind_of,
    network_input_shape,
    neuron_gain,
    nir_module,
    node_bias,
    node_weight,
    out_hw,
)
from hwsim.model.nir_pool import mark_pools, pool_shape, pooled_path, standalone_pool
from hwsim.model.nir_walk import (
    GraphPath,
    backbone_blocks,
    outputs_reached,
    topological_order,
)

if TYPE_CHECKING:  # nir is an optional extra: imported where a NIR file is read or written;
    # torch where its network is built
    import nir

    from hwsim.model.convert import SpikingNetwork

NIR_SUFFIX = ".nir"


@dataclass(frozen=True)
class NirOptions:
    """How a NIR model is used: the dataset whose images and classes it is run on (a NIR file
    carries no data), the Output node that is the final classifier (None: the one the file's
    metadata names, as hwsim's exports do, else the deepest), and the convention its neurons
    follow (a preset of `hwsim.model.nir_convention.PRESETS`; None: the file's, else hwsim's)."""

    dataset: str | None = None
    fc_output: str | None = None
    convention: str | None = None


@dataclass(frozen=True)
class ImportedSpec:
    """What hwsim knows of an imported network: the counterpart of the zoo's `NetSpec`.

    `outputs` pairs every classifier head with the NIR Output node it comes from; `ic_positions`
    are the ICs' tap blocks (`LayerGraph` numbering).
    """

    name: str
    input_shape: Shape
    num_classes: int
    layer_graph: LayerGraph
    outputs: tuple[tuple[int, str], ...]

    @property
    def ic_positions(self) -> tuple[int, ...]:
        return tuple(sorted(h for h, _ in self.outputs if h != FC_HEAD))

    @property
    def head_positions(self) -> tuple[int, ...]:
        """Classifier heads: IC tap blocks, then FC_HEAD."""
        return (*self.ic_positions, FC_HEAD)

    def graph(self) -> LayerGraph:
        return self.layer_graph

    def output_name(self, head: int) -> str:
        return dict(self.outputs)[head]

    def with_heads(self, heads: Iterable[int]) -> ImportedSpec:
        """The network with only the given heads (as `LayerGraph.with_heads`)."""
        graph = self.layer_graph.with_heads(heads)
        keep = set(graph.heads)
        outputs = tuple((h, n) for h, n in self.outputs if h in keep)
        return ImportedSpec(self.name, self.input_shape, self.num_classes, graph, outputs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (part of the converted network's fingerprint)."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "outputs": [list(o) for o in self.outputs],
            "layers": [asdict(layer) for layer in self.layer_graph.layers],
        }


def is_nir_path(path: str | Path) -> bool:
    """Whether `--model path` names a NIR file (by its suffix, `.nir`)."""
    return Path(path).suffix.lower() == NIR_SUFFIX


# --------------------------------------------------------------------------- reading


def read_nir(
    path: str | Path,
    options: NirOptions = NirOptions(),
    *,
    input_shape: Shape | None = None,
    num_classes: int | None = None,
    v0: float = 0.0,
) -> SpikingNetwork:
    """The network of the NIR file at `path` (see `import_graph`); every error names the file."""
    nir = nir_module()
    path = Path(path)
    if not path.is_file():
        raise NirError(f"{path}: no such NIR file")
    try:
        _check_file(path)
        graph = nir.read(path, type_check=False)  # hwsim checks shapes itself, naming nodes
    except NirError as e:
        raise NirError(f"{path}: {e.template}", params=e.params) from None
    except Exception as e:  # h5py and nir raise many types for foreign or damaged files
        raise NirError(f"{path}: not a readable NIR file ({type(e).__name__}: {e})") from None
    try:
        return import_graph(
            graph,
            name=path.stem,
            fc_output=options.fc_output,
            convention=options.convention,
            input_shape=input_shape,
            num_classes=num_classes,
            v0=v0,
        )
    except NirError as e:
        raise NirError(f"{path}: {e.template}", params=e.params) from None
    except (TypeError, ValueError, IndexError) as e:  # a node value numpy cannot read as asked
        raise NirError(f"{path}: a node value hwsim cannot read ({type(e).__name__}: {e})") from e


def _check_file(path: Path) -> None:
    """Before the nir package reads the file: refuse more than `MAX_NODES` nodes, and arrays
    that the memory left cannot hold (their sizes, read from the HDF5 headers; reading
    allocates them, and the import copies each about twice)."""
    import h5py

    arrays = 0

    def count(_: str, item: object) -> None:
        nonlocal arrays
        if isinstance(item, h5py.Dataset):
            arrays += int(item.size) * item.dtype.itemsize

    with h5py.File(path, "r") as f:
        nodes = f.get("node/nodes")
        n = len(nodes) if isinstance(nodes, h5py.Group) else 0
        if n > MAX_NODES:
            raise NirError(f"{n} nodes; hwsim imports graphs of up to {MAX_NODES} nodes")
        f.visititems(count)
    check_allocation(3 * arrays, f"reading its arrays ({arrays / 2**20:.1f} MiB in the file)")


@dataclass
class _Draft:
    """A layer being built: its geometry, float32 weights and where it reads and writes."""

    name: str
    kind: LayerKind
    in_shape: Shape
    out_shape: Shape
    kernel: tuple[int, int]
    stride: int
    padding: int
    source: str | None  # an IF node, None for the network input
    target: str  # the IF node it drives
    weight: np.ndarray | None
    bias: np.ndarray | None
    pool_sum: int = 1  # a global SumPool2d: its sum is pool_sum (H W) times hwsim's average
    pool: Pool | None = None  # a lone local pooling's operation (`nir_pool`)


def _translate(
    path: GraphPath,
    nodes: dict[str, Any],
    shapes: dict[str, tuple[int, ...]],
    flat_sources: set[str],
    input_name: str,
) -> _Draft:
    """The hwsim layer of one weight path (see the module's table), or a refusal."""
    src_shape = shapes[path.source if path.source is not None else input_name]
    src_flat = path.source in flat_sources or len(src_shape) == 1
    ops = [n for n in path.nodes if kind_of(nodes[n]) != "Flatten"]
    kinds = [kind_of(nodes[n]) for n in ops]
    flattened = len(ops) != len(path.nodes)
    in_shape = as_shape(src_shape)
    c, h, w = in_shape
    where = f"{path.source or 'the input'} -> IF {path.target!r}"
    pooled = pooled_path(path.nodes, path.source or input_name, nodes, shapes)
    if pooled is not None:  # a local pooling (and a weight node): one conv (nir_pool)
        op = pooled[1]
        return _Draft(pooled[0], LayerKind.CONV, in_shape, (len(op.bias), *op.out_hw),
                      op.kernel, op.stride, op.padding, path.source, path.target,
                      op.weight.astype(np.float32), op.bias.astype(np.float32),
                      pool=standalone_pool(path.nodes, nodes))  # fmt: skip
    if kinds == ["Conv2d"] and not flattened and not src_flat:
        node = nodes[ops[0]]
        weight = node_weight(ops[0], node, np.float32)
        stride, pad = conv_geometry(ops[0], node, in_shape)
        kh, kw = weight.shape[2:]
        if weight.shape[1] != c:
            raise NirError(
                f"Conv2d {ops[0]!r}: {weight.shape[1]} input channels, its input has {c}"
            )
        ho, wo = out_hw(h, w, kh, kw, stride, pad)
        return _Draft(
            ops[0],
            LayerKind.CONV,
            in_shape,
            (weight.shape[0], ho, wo),
            (kh, kw),
            stride,
            pad,
            path.source,
            path.target,
            weight,
            node_bias(ops[0], node, weight.shape[0]),
        )
    if kinds in (["Affine"], ["Linear"]):
        node = nodes[ops[0]]
        weight = node_weight(ops[0], node, np.float32)
        if weight.ndim != 2 or weight.shape[1] != c * h * w:
            raise NirError(
                f"{kinds[0]} {ops[0]!r}: weight {weight.shape} on an input of {c * h * w} values"
            )
        out = (weight.shape[0], 1, 1)
        bias = node_bias(ops[0], node, weight.shape[0])
        if src_flat:
            return _Draft(
                ops[0],
                LayerKind.LINEAR,
                (c * h * w, 1, 1),
                out,
                (1, 1),
                1,
                0,
                path.source,
                path.target,
                weight,
                bias,
            )
        return _Draft(
            ops[0],
            LayerKind.CONV,
            in_shape,
            out,
            (h, w),
            1,
            0,
            path.source,
            path.target,
            weight.reshape(-1, c, h, w),
            bias,
        )
    if kinds in (["AvgPool2d"], ["SumPool2d"]) and not src_flat:
        return _Draft(ops[0], LayerKind.GAP, in_shape, (c, 1, 1), (h, w), 1, 0, path.source,
                      path.target, None, None, h * w if kinds == ["SumPool2d"] else 1)  # fmt: skip
    if (
        len(kinds) == 2
        and kinds[0] in ("AvgPool2d", "SumPool2d")
        and kinds[1] in ("Affine", "Linear")
    ):
        node = nodes[ops[1]]
        weight = node_weight(ops[1], node, np.float64)
        if weight.ndim != 2 or weight.shape[1] != c:
            raise NirError(
                f"{kinds[1]} {ops[1]!r}: weight {weight.shape} after pooling {c} channels"
            )
        scale = 1.0 / (h * w) if kinds[0] == "AvgPool2d" else 1.0
        check_allocation(4 * weight.shape[0] * c * h * w, f"{kinds[1]} {ops[1]!r} on a {h}x{w} map")
        full = np.broadcast_to((weight * scale)[:, :, None, None], (weight.shape[0], c, h, w))
        return _Draft(
            ops[1],
            LayerKind.CONV,
            in_shape,
            (weight.shape[0], 1, 1),
            (h, w),
            1,
            0,
            path.source,
            path.target,
            np.ascontiguousarray(full, np.float32),
            node_bias(ops[1], node, weight.shape[0]),
        )
    chain = " -> ".join(f"{kind_of(nodes[n])} {n!r}" for n in path.nodes) or "nothing"
    raise NirError(
        f"the path {where} is {chain}; hwsim maps one Conv2d (on a map), one [Flatten] Affine/"
        "Linear, one global AvgPool2d, a global pooling then an Affine/Linear, or a local"
        " pooling with at most one weight node between IF populations"
    )


def _propagate_shapes(
    nodes: dict[str, Any],
    order: list[str],
    preds: dict[str, list[str]],
    input_name: str,
    input_shape: Shape,
) -> dict[str, tuple[int, ...]]:
    """Each node's output shape, from the input through the graph (refusing mismatches)."""
    shapes: dict[str, tuple[int, ...]] = {input_name: tuple(input_shape)}
    check_map("Input", input_name, shapes[input_name])
    for name in order:
        node, kind = nodes[name], kind_of(nodes[name])
        if name == input_name:
            continue
        if kind == "Input":
            raise NirError(f"a second Input node {name!r}; hwsim networks have one input")
        if not preds[name]:
            raise NirError(f"{kind} {name!r} has no input edge")
        if kind not in NEURON_KINDS and len(preds[name]) > 1:
            raise NirError(
                f"{kind} {name!r} sums {len(preds[name])} inputs ({', '.join(preds[name])});"
                " hwsim sums inputs only at IF neurons"
            )
        ins = [shapes[p] for p in preds[name]]
        x = ins[0]
        if kind == "Conv2d":
            if len(x) != 3:
                raise NirError(f"Conv2d {name!r} reads a vector {x}; it needs a (C, H, W) map")
            weight = as_array(node.weight)
            stride, pad = conv_geometry(name, node, as_shape(x))
            kh, kw = weight.shape[2:]
            shapes[name] = (weight.shape[0], *out_hw(x[1], x[2], kh, kw, stride, pad))
        elif kind in ("Affine", "Linear"):
            shape = as_array(node.weight).shape
            if len(shape) != 2:
                raise NirError(f"{kind} {name!r}: weight {shape}; expected (out, in)")
            shapes[name] = (shape[0],)
        elif kind == "Flatten":
            start, end = (
                int(as_array(v, np.int64).reshape(-1)[0]) for v in (node.start_dim, node.end_dim)
            )
            if (start % len(x), end % len(x)) != (0, len(x) - 1):
                raise NirError(
                    f"Flatten {name!r} flattens dims {start}..{end} of a {x} tensor; hwsim needs"
                    " a whole flatten (start_dim 0, end_dim -1; NIR shapes have no batch dim)"
                )
            shapes[name] = (int(np.prod(x)),)
        elif kind in ("AvgPool2d", "SumPool2d"):
            shapes[name] = pool_shape(name, node, x)
        elif kind in NEURON_KINDS:
            sizes = {int(np.prod(s)) for s in ins}
            if len(sizes) != 1:
                raise NirError(f"{kind} {name!r} sums inputs of different sizes {ins}")
            shapes[name] = max(ins, key=len)
        else:  # Output
            shapes[name] = x
        if min(shapes[name], default=0) < 1:
            raise NirError(f"{kind} {name!r} maps its input {x} to the empty {shapes[name]}")
        check_map(kind, name, shapes[name])
    return shapes


def import_graph(
    graph: nir.NIRGraph,
    *,
    name: str = "nir",
    fc_output: str | None = None,
    convention: str | None = None,
    input_shape: Shape | None = None,
    num_classes: int | None = None,
    v0: float = 0.0,
) -> SpikingNetwork:
    """A NIR graph as hwsim's `SpikingNetwork` (spec: `ImportedSpec`), or `NirError` naming
    the node hwsim cannot simulate and what it supports.

    `input_shape` and `num_classes`: the dataset's, checked against the graph (None: not
    checked; a flat Input then needs `input_shape`). `v0`: initial membrane potential (NIR
    has none; hwsim's default is 0). `fc_output` and `convention`: see `NirOptions`; the
    graph's metadata (hwsim's exports) supplies both, and hwsim's layer names.
    """
    metadata = dict(getattr(graph, "metadata", None) or {})
    conv = convention_named(convention, metadata)
    nodes: dict[str, Any] = dict(graph.nodes)
    edges = [(str(a), str(b)) for a, b in graph.edges]
    for a, b in edges:
        for n in (a, b):
            if n not in nodes:
                raise NirError(f"edge {a!r} -> {b!r} names a node {n!r} the graph lacks")
    check_kinds(nodes)
    written = written_neurons(metadata, conv)  # hwsim's export: the steps NIR cannot say
    check_neurons({n: v for n, v in nodes.items() if n not in written}, conv)
    if FUSION_UNIT in nodes:
        raise NirError(f"node name {FUSION_UNIT!r} is reserved by hwsim; rename the node")
    order = topological_order(nodes, edges)
    if len(nodes) > MAX_NODES:
        raise NirError(f"{len(nodes)} nodes; hwsim imports graphs of up to {MAX_NODES} nodes")
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    inputs = [n for n in nodes if kind_of(nodes[n]) == "Input"]
    if len(inputs) != 1:
        raise NirError(f"{len(inputs)} Input nodes; hwsim networks have exactly one")
    input_name = inputs[0]
    shape_in = network_input_shape(input_name, nodes[input_name], input_shape)
    shapes = _propagate_shapes(nodes, order, preds, input_name, shape_in)
    outputs = [n for n in order if kind_of(nodes[n]) == "Output"]
    if not outputs:
        raise NirError("no Output node; hwsim needs at least the final classifier's")
    if fc_output is None and metadata.get("fc_output") in outputs:
        fc_output = str(metadata["fc_output"])

    # weight paths into every IF node, in topological order
    ifs = [n for n in order if kind_of(nodes[n]) in NEURON_KINDS]
    drafts: list[_Draft] = []
    flat: set[str] = set()
    for target in ifs:
        into_target: list[_Draft] = []
        for pred in preds[target]:
            chain: list[str] = []  # backwards, from the IF node to the source
            cur = pred
            while kind_of(nodes[cur]) in SYNAPTIC_KINDS:
                if len(succs[cur]) > 1:
                    raise NirError(
                        f"{kind_of(nodes[cur])} {cur!r} feeds {', '.join(succs[cur])}; hwsim needs"
                        " IF neurons after each weight layer before its output branches"
                    )
                chain.append(cur)
                cur = preds[cur][0]
            chain.reverse()
            source = None if cur == input_name else cur
            if not chain:
                raise NirError(
                    f"IF {target!r} reads {'the input' if source is None else f'IF {cur!r}'}"
                    " directly; hwsim needs a weight layer (Conv2d, Affine, pooling) between"
                )
            draft = _translate(
                GraphPath(source, tuple(chain), target), nodes, shapes, flat, input_name
            )
            if int(np.prod(draft.out_shape)) != int(np.prod(shapes[target])):
                raise NirError(
                    f"IF {target!r}: {shapes[target]} neurons, its input {draft.out_shape}"
                )
            into_target.append(draft)
        drafts += into_target
        if all(d.kind is not LayerKind.CONV for d in into_target):
            flat.add(target)
    for out in outputs:
        if len(preds[out]) != 1 or kind_of(nodes[preds[out][0]]) not in NEURON_KINDS:
            src = ", ".join(preds[out]) or "nothing"
            raise NirError(
                f"Output {out!r} reads {src}; hwsim classifies by counting spikes, so every"
                " Output must read one IF node"
            )
    theta = _fold_gains(nodes, ifs, shapes, drafts, conv.if_r)
    neurons = neuron_models(nodes, ifs, conv, theta, written)
    mark_pools(drafts, nodes, neurons, conv.if_r, theta, v0)
    for d in drafts:
        if d.weight is not None and d.bias is not None:
            check_current(kind_of(nodes[d.name]), d.name, d.weight, d.bias, theta)
    _restore_names(drafts, metadata, set(nodes))
    return _assemble(
        name,
        nodes,
        ifs,
        shapes,
        drafts,
        outputs,
        preds,
        shape_in,
        theta,
        fc_output,
        num_classes,
        v0,
        neurons,
    )


def _restore_names(drafts: list[_Draft], metadata: dict[str, Any], taken: set[str]) -> None:
    """Layer names from hwsim's export (`metadata["layer_names"]`, JSON node -> layer name),
    where they are a readable, one-to-one renaming of the graph's weight nodes."""
    try:
        names = json.loads(str(metadata.get("layer_names", "{}")))
    except json.JSONDecodeError:
        return
    if not isinstance(names, dict):
        return
    drafted = {d.name for d in drafts}
    renamed = {d.name: names.get(d.name, d.name) for d in drafts}
    values = list(renamed.values())
    if not all(isinstance(v, str) and v for v in values) or len(set(values)) != len(values):
        return
    if any(v in taken - drafted and v != k for k, v in renamed.items()):
        return
    for d in drafts:
        d.name = renamed[d.name]


def _fold_gains(
    nodes: dict[str, Any],
    ifs: list[str],
    shapes: dict[str, tuple[int, ...]],
    drafts: list[_Draft],
    if_r: float,
) -> float:
    """The engine threshold; (r / if_r) / v_threshold folded into the drafts' weights where
    needed (`if_r`: the convention's r of one integration per step)."""
    lifs = {n for n in ifs if kind_of(nodes[n]) == "LIF"}  # their gain stays in their neuron
    gains = {n: neuron_gain(n, nodes[n], shapes[n], if_r, n in lifs) for n in ifs}
    summed = {d.target: d.pool_sum for d in drafts if d.pool_sum != 1}
    thresholds = {
        float(v) for n in ifs if n not in summed for v in np.unique(as_array(nodes[n].v_threshold))
    }
    unit_r = all(np.all(as_array(nodes[n].r) == if_r) for n in ifs if n not in lifs)
    if unit_r and len(thresholds) == 1:
        theta = thresholds.pop()
        if all(  # a sum pooling's neurons at pool_sum times theta: its average's at theta
            np.all(as_array(nodes[n].v_threshold) == np.float32(theta * k))
            for n, k in summed.items()
        ):
            return theta  # exact: weights untouched, theta = the common threshold
    for d in drafts:
        c = d.out_shape[0]
        g = gains[d.target].reshape(c, -1)
        if not np.all(g == g[:, :1]):
            raise NirError(
                f"IF {d.target!r}: r / v_threshold varies within a channel; hwsim's weights are"
                " shared by a channel's neurons"
            )
        per_channel = g[:, 0]
        if d.weight is None:
            if not np.allclose(per_channel * d.pool_sum, 1, rtol=2**-23, atol=0):
                raise NirError(
                    f"IF {d.target!r} after the pooling {d.name!r}: (r / if_r) / v_threshold ="
                    f" {per_channel[0]:g} != {1 / d.pool_sum:g}, and a pooling layer has no"
                    " weights to fold it into"
                )
            continue
        shape = (-1,) + (1,) * (d.weight.ndim - 1)
        with np.errstate(over="ignore"):  # an overflow to inf is refused by check_current
            d.weight = (d.weight.astype(np.float64) * per_channel.reshape(shape)).astype(np.float32)
            d.bias = (d.bias.astype(np.float64) * per_channel).astype(np.float32)
    return 1.0


def _classes_and_fc(
    outputs: list[str],
    out_pop: dict[str, str],
    shapes: dict[str, tuple[int, ...]],
    depth: dict[str | None, int],
    num_classes: int | None,
    fc_output: str | None,
) -> tuple[int, str]:
    """The classes every Output reads (one neuron per class, the same for all, at least 2, the
    dataset's) and the final classifier's Output (`fc_output`, default the deepest)."""
    classes = {int(np.prod(shapes[out_pop[o]])) for o in outputs}
    for o in outputs:
        s = shapes[out_pop[o]]
        if len(s) == 3 and s[1] * s[2] != 1:
            raise NirError(
                f"Output {o!r} reads IF {out_pop[o]!r} of shape {s}; a classifier's output is"
                " one neuron per class"
            )
    if len(classes) != 1:
        raise NirError(f"the Outputs have different numbers of classes: {sorted(classes)}")
    n_classes = classes.pop()
    if n_classes < 2:
        raise NirError(f"the Outputs have {n_classes} class; a classifier needs at least 2")
    if num_classes is not None and n_classes != num_classes:
        raise NirError(f"the Outputs have {n_classes} classes but the dataset has {num_classes}")
    if fc_output is None:
        deepest = max(depth[out_pop[o]] for o in outputs)
        tied = [o for o in outputs if depth[out_pop[o]] == deepest]
        if len(tied) > 1:
            raise NirError(
                f"Outputs {', '.join(map(repr, tied))} are equally deep; name the final"
                " classifier with {fc_output}",
                params=("fc_output",),
            )
        fc_output = tied[0]
    elif fc_output not in outputs:
        raise NirError(
            f"{{fc_output}} {fc_output!r} is not an Output node; the Outputs are"
            f" {', '.join(map(repr, outputs))}",
            params=("fc_output",),
        )
    return n_classes, fc_output


def _assemble(
    name: str,
    nodes: dict[str, Any],
    ifs: list[str],
    shapes: dict[str, tuple[int, ...]],
    drafts: list[_Draft],
    outputs: list[str],
    preds: dict[str, list[str]],
    input_shape: Shape,
    theta: float,
    fc_output: str | None,
    num_classes: int | None,
    v0: float,
    neurons: dict[str, Neuron],
) -> SpikingNetwork:
    """Populations, senders, heads and blocks of the translated layers -> a SpikingNetwork."""
    into: dict[str, list[_Draft]] = {n: [] for n in ifs}
    for d in drafts:
        into[d.target].append(d)
    depth: dict[str | None, int] = {None: -1}
    for n in ifs:
        depth[n] = max(depth[d.source] for d in into[n]) + 1
    sender = {n: max(into[n], key=lambda d: depth[d.source]) for n in ifs}
    sender_name = {n: sender[n].name for n in ifs}
    out_pop = {o: preds[o][0] for o in outputs}
    n_classes, fc_output = _classes_and_fc(outputs, out_pop, shapes, depth, num_classes, fc_output)

    reached = outputs_reached(outputs, out_pop, into)

    def head_pops(o: str) -> tuple[list[str], str | None]:
        """The populations of Output o's head (walking back from its IF, up to a population
        another Output also reads through) and its tap."""
        pops, pop = [], out_pop[o]
        while True:
            if reached[pop] - {o} or len(into[pop]) != 1:
                break
            d = into[pop][0]
            reducer = d.kind is LayerKind.GAP or (
                d.kind is LayerKind.CONV and d.kernel == d.in_shape[1:] and d.padding == 0
            )
            if d.kind is not LayerKind.LINEAR and not reducer:
                break
            pops.append(pop)
            if reducer or d.source is None:
                return pops, d.source
            pop = d.source
        if not pops:
            raise NirError(
                f"Output {o!r}: IF {out_pop[o]!r} is driven by {into[out_pop[o]][0].name!r}, not"
                " a classifier head (a Linear/Affine or a global pooling) of its own"
            )
        return pops, pop

    heads = {o: head_pops(o) for o in outputs}
    head_members = {p for pops, _ in heads.values() for p in pops}
    backbone = [n for n in ifs if n not in head_members]
    block = backbone_blocks(backbone, into)
    head_of: dict[str, int] = {}
    for o, (_, tap) in heads.items():
        if o == fc_output:
            h = FC_HEAD
        elif tap is None:
            raise NirError(
                f"Output {o!r} reads the network input through its own layers only; an IC"
                " needs a backbone population to tap"
            )
        else:
            h = block[tap]
        if h in head_of.values():
            other = next(x for x, v in head_of.items() if v == h)
            raise NirError(
                f"Outputs {other!r} and {o!r} tap the same backbone block {h}; hwsim numbers ICs"
                " by their tap block"
            )
        head_of[o] = h

    def layers_of(pop: str, role: Role, head: int | None) -> list[Layer]:
        out = []
        for d in sorted(into[pop], key=lambda d: d is sender[pop]):
            sends = d is sender[pop]
            out.append(
                Layer(
                    d.name,
                    d.kind,
                    role if sends or role is not Role.BACKBONE else Role.SKIP,
                    d.in_shape,
                    d.out_shape,
                    d.kernel,
                    d.stride,
                    d.padding,
                    () if d.source is None else (sender_name[d.source],),
                    pop,
                    sends_spikes=sends,
                    head=head,
                    block=block.get(pop) if head is None else None,
                    neuron=neurons[pop],
                    pool=d.pool,
                )
            )
        return out

    layers: list[Layer] = []
    for pop in backbone:
        layers += layers_of(pop, Role.BACKBONE, None)
    for o in sorted(outputs, key=lambda x: (head_of[x] == FC_HEAD, head_of[x])):
        role = Role.FC_HEAD if head_of[o] == FC_HEAD else Role.IC_HEAD
        for pop in reversed(heads[o][0]):
            layers += layers_of(pop, role, head_of[o])
    try:
        lgraph = LayerGraph(tuple(layers), input_shape, n_classes)
    except GraphError as e:
        raise NirError(str(e)) from None
    import torch

    from hwsim.model.convert import SpikingNetwork, Weights

    weights = {
        d.name: Weights(torch.from_numpy(d.weight), torch.from_numpy(d.bias))
        for d in drafts
        if d.weight is not None and d.bias is not None
    }
    spec = ImportedSpec(
        name,
        input_shape,
        n_classes,
        lgraph,
        tuple(sorted(((head_of[o], o) for o in outputs), key=lambda x: (x[0] == FC_HEAD, x[0]))),
    )
    params = ConversionParams(threshold=theta, v0=v0)
    return SpikingNetwork(spec, lgraph, weights, params, ())


# --------------------------------------------------------------------------- writing
