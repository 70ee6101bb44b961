"""NIR export: a converted `SpikingNetwork` as a NIR graph and an HDF5 `.nir` file.

The file says which Output is the final classifier (`metadata["fc_output"]`), the neuron
conventions it follows (`CONVENTIONS`, and `metadata["convention"]`, a preset of
`hwsim.model.nir_convention`) and hwsim's layer names (`metadata["layer_names"]`, JSON: node name
-> layer name). Node names have no dots ("fc.gap" is written "fc_gap"): the peers' importers
(nirtorch) turn a node's name into a torch attribute, where a dot is not allowed, and then look it
up under its original name. A population that is not hwsim's plain IF is written as the target's
importer reads it (`hwsim.model.nir_targets`, or refused naming the population), its step
recorded in `metadata["neurons"]`; a pooling layer (`Layer.pool`) as the pooling node the target
reads (a max pooling: that node into IF neurons resetting to 0 that fire on one spike).
docs/nir.md is the user's guide.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim import __version__
from hwsim.atomic import atomic_path
from hwsim.model.graph import FC_HEAD, IF_NEURON, Layer, LayerKind, Pool, Population, head_tag
from hwsim.model.nir_convention import HWSIM, PRESETS, NirConvention, PoolKind
from hwsim.model.nir_nodes import NirError, nir_module
from hwsim.model.nir_targets import NeuronNode, neuron_node, or_node, written_step

if TYPE_CHECKING:  # nir is imported where a NIR file is written
    import nir

    from hwsim.model.convert import SpikingNetwork


CONVENTIONS = (
    "hwsim IF neurons: V <- V + I; spike when V >= v_threshold; reset by subtracting"
    " v_threshold (v_reset 0 stands for it); membranes start at 0; every IF population adds"
    " one timestep of delay (layer l at t sees layer l-1's spikes of t-1)"
)
"""The neuron conventions an exported file follows (also in the file's metadata)."""


def export_graph(snn: SpikingNetwork, target: str = HWSIM.name) -> nir.NIRGraph:
    """The converted network as a NIR graph for the importer of `target` (a preset of
    `hwsim.model.nir_convention.PRESETS`): an Input, one node per layer (Conv2d; [Flatten]
    Affine for a Linear; a GAP as the pooling node the target reads: a global SumPool2d into IF
    neurons at H W times the threshold, the same spikes as the average at the threshold, or a
    global AvgPool2d; a pooling layer as its pooling node, `pool_kind`), one neuron node per
    population (`population_node`: hwsim's IF as IF, r = the target's `if_r`), one Output per
    classifier head named by `head_tag` ("fc", "ic5"), hwsim's conventions in the metadata."""
    nir = nir_module()
    if target not in PRESETS:
        raise NirError(f"export target {target!r}: expected one of {', '.join(PRESETS)}")
    peer = PRESETS[target]
    summed = peer.pooling is PoolKind.SUM
    graph = snn.graph
    if snn.params.v0 != 0:
        raise NirError(
            f"the network starts its membranes at V0 = {snn.params.v0:g}; NIR has no initial"
            " state, so only V0 = 0 can be exported"
        )
    theta = float(snn.params.threshold)
    node_of = node_names(graph.names)
    taken = set(node_of.values())
    pops = graph.populations()
    if_name = {}
    for p in pops:
        n = p.name.replace(".", "_")
        if_name[p.name] = n if n not in taken else f"{n}_if"
        if if_name[p.name] in taken:
            raise NirError(f"population {p.name!r}: its node name {if_name[p.name]!r} is taken")
        taken.add(if_name[p.name])
    nir_shape: dict[str, tuple[int, ...]] = {}
    for p in pops:
        kind = graph.sender(p.name).kind
        nir_shape[p.name] = (p.shape[0],) if kind is LayerKind.LINEAR else p.shape
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(graph.input_shape))}
    edges: list[tuple[str, str]] = []
    steps: dict[str, dict[str, Any]] = {}
    scalars = False
    for p in pops:
        written = population_node(snn, p, peer)
        # sinabs' from_nir reads a LIF's values as one per node (`any(v_leak)` on an array),
        # as its export writes them: a shape nir's type check refuses (read type_check=False)
        scalar = peer.name == "sinabs" and written.kind == "LIF"
        scalars |= scalar
        nodes[if_name[p.name]] = written.node(nir, (1,) if scalar else nir_shape[p.name])
        if p.neuron != IF_NEURON:
            steps[if_name[p.name]] = written_step(p.neuron, theta)
    for layer in graph.layers:
        src = if_name[graph.layer(layer.inputs[0]).population] if layer.inputs else "input"
        src_shape = nir_shape[graph.layer(layer.inputs[0]).population] if layer.inputs else None
        c, h, w = layer.in_shape
        name = node_of[layer.name]
        if layer.pool is not None:
            kernel, stride, pad = (
                np.array(v) for v in (layer.kernel, [layer.stride] * 2, [layer.padding] * 2)
            )
            pool = nir.AvgPool2d if pool_kind(layer, peer) is PoolKind.AVG else nir.SumPool2d
            nodes[name] = pool(kernel_size=kernel, stride=stride, padding=pad)
            edges.append((src, name))
        elif layer.kind is LayerKind.GAP:
            pool = nir.SumPool2d if summed else nir.AvgPool2d
            nodes[name] = pool(
                kernel_size=np.array([h, w]), stride=np.array([h, w]), padding=np.array([0, 0])
            )
            edges.append((src, name))
        else:
            wts = snn.weights[layer.name]
            weight = wts.weight.detach().cpu().numpy().astype(np.float32)
            bias = wts.bias.detach().cpu().numpy().astype(np.float32)
            if layer.kind is LayerKind.CONV:
                nodes[name] = nir.Conv2d(
                    input_shape=(h, w),
                    weight=weight,
                    stride=(layer.stride, layer.stride),
                    padding=(layer.padding, layer.padding),
                    dilation=(1, 1),
                    groups=1,
                    bias=bias,
                )
                edges.append((src, name))
            else:
                nodes[name] = nir.Affine(weight=weight, bias=bias)
                if src_shape is not None and len(src_shape) == 3:
                    flat = f"{name}_flatten"
                    if flat in taken:
                        raise NirError(f"layer {layer.name!r}: its node name {flat!r} is taken")
                    nodes[flat] = nir.Flatten(
                        input_type={"input": np.array(src_shape)}, start_dim=0, end_dim=-1
                    )
                    edges += [(src, flat), (flat, name)]
                else:
                    edges.append((src, name))
        edges.append((name, if_name[layer.population]))
    for h in graph.heads:
        tag = head_tag(h)
        if tag in nodes:
            raise NirError(f"a layer is named {tag!r}, the name of head {tag}'s Output node")
        out = graph.head_output(h).population
        nodes[tag] = nir.Output(output_type=np.array(nir_shape[out]))
        edges.append((if_name[out], tag))
    metadata = {
        "producer": f"hwsim {__version__}",
        "conventions": CONVENTIONS,
        "convention": HWSIM.name,
        "if_r": peer.if_r,
        "written_for": peer.name,
        "fc_output": head_tag(FC_HEAD),
        "layer_names": json.dumps({node_of[n]: n for n in graph.names if node_of[n] != n}),
    }
    if steps:
        metadata["neurons"] = json.dumps(steps)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=not scalars)


def pool_kind(layer: Layer, peer: NirConvention) -> PoolKind:
    """The pooling node a local pooling layer is written as: its own for hwsim's reader (a max
    pooling as a sum), the one the peer's importer reads otherwise."""
    if peer.name != HWSIM.name:
        return peer.pooling
    return PoolKind.AVG if layer.pool is Pool.AVG else PoolKind.SUM


def _diagonal(snn: SpikingNetwork, layer: Layer) -> float:
    """The weight d of a local pooling layer: its weight is d on the channel diagonal of every
    kernel position and 0 elsewhere, no bias (else `NirError`)."""
    w = snn.weights[layer.name].weight.detach().cpu().numpy()
    bias = snn.weights[layer.name].bias.detach().cpu().numpy()
    c = layer.out_channels
    d = float(w[0, 0, 0, 0])
    eye = np.eye(c, dtype=w.dtype)[:, :, None, None]
    if w.shape[:2] != (c, c) or np.any(w != d * eye) or np.any(bias != 0) or d <= 0:
        raise NirError(
            f"layer {layer.name!r} is a {layer.pool} pooling whose weight is not one positive"
            " value on the channel diagonal (and no bias); hwsim writes a pooling node for it"
        )
    return d


def population_node(snn: SpikingNetwork, pop: Population, peer: NirConvention) -> NeuronNode:
    """The neuron node of `pop` for `peer`'s importer: `nir_targets.neuron_node` (hwsim's IF as
    an IF where the importer steps one, refused for snntorch and norse), a max pooling's as
    `nir_targets.or_node`; the membrane scaled by the pooling node before it."""
    graph, theta = snn.graph, float(snn.params.threshold)
    sender = graph.sender(pop.name)
    scale = 1.0
    if sender.kind is LayerKind.GAP and peer.pooling is PoolKind.SUM:
        scale = float(sender.in_shape[1] * sender.in_shape[2])
    if sender.pool is not None:
        if len(pop.layers) != 1:
            raise NirError(
                f"population {pop.name!r} sums the pooling {sender.name!r} with"
                f" {', '.join(n for n in pop.layers if n != sender.name)}; a pooling node"
                " writes only a pooling into its neurons"
            )
        kind = pool_kind(sender, peer)
        if sender.padding and peer.pooling is PoolKind.SUM and peer.name != HWSIM.name:
            raise NirError(
                f"layer {sender.name!r}: a pooling with padding {sender.padding}; {peer.name}'s"
                " importer builds its pooling without padding"
            )
        d = _diagonal(snn, sender)
        if sender.pool is Pool.MAX:
            n = pop.neuron
            fires = d > theta if n.strict else d >= theta
            if not (
                n.leak == 1 and n.gain == 1 and n.reset_to == 0 and n.start(0.0) == 0 and fires
            ):
                raise NirError(
                    f"population {pop.name!r} after the max pooling {sender.name!r} does not"
                    " fire on one spike and reset to 0 from 0 (leak 1, gain 1, weight >= theta)"
                )
            return or_node(peer, kind, sender.kernel)
        kh, kw = sender.kernel
        scale = (1.0 if kind is PoolKind.SUM else 1.0 / (kh * kw)) / d
    return neuron_node(peer, pop.name, pop.neuron, theta, scale)


def node_names(layers: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The NIR node name of every layer: its name with "_" for "." (unique, else `NirError`)."""
    out = {n: n.replace(".", "_") for n in layers}
    if len(set(out.values())) != len(out):
        seen: dict[str, str] = {}
        for n, v in out.items():
            if v in seen:
                raise NirError(f"layers {seen[v]!r} and {n!r} would both be NIR node {v!r}")
            seen[v] = n
    return out


def write_nir(snn: SpikingNetwork, path: str | Path, target: str = HWSIM.name) -> Path:
    """Write `export_graph(snn, target)` to `path` atomically (HDF5, `nir.write`)."""
    nir = nir_module()
    graph = export_graph(snn, target)
    path = Path(path)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return path
