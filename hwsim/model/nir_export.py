"""NIR export: a converted `SpikingNetwork` as a NIR graph and an HDF5 `.nir` file.

The file says which Output is the final classifier (`metadata["fc_output"]`), the neuron
conventions it follows (`CONVENTIONS`, and `metadata["convention"]`, a preset of
`hwsim.model.nir_convention`) and hwsim's layer names (`metadata["layer_names"]`, JSON: node name
-> layer name). Node names have no dots ("fc.gap" is written "fc_gap"): the peers' importers
(nirtorch) turn a node's name into a torch attribute, where a dot is not allowed, and then look it
up under its original name. docs/nir.md is the user's guide.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim import __version__
from hwsim.atomic import atomic_path
from hwsim.model.convert import SpikingNetwork
from hwsim.model.graph import FC_HEAD, IF_NEURON, LayerKind, head_tag
from hwsim.model.nir_convention import HWSIM, PRESETS, PoolKind
from hwsim.model.nir_nodes import NirError, nir_module

if TYPE_CHECKING:  # nir is imported where a NIR file is written
    import nir


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
    global AvgPool2d), one IF node per population (r = the target's `if_r`), one Output per
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
    for p in pops:
        if p.neuron != IF_NEURON:
            raise NirError(
                f"population {p.name!r} steps {p.neuron}; hwsim exports its IF neurons"
                " (V >= theta, no leak, reset by subtraction) only for now"
            )
    for p in pops:
        shape = nir_shape[p.name]
        sender = graph.sender(p.name)
        gap = sender.kind is LayerKind.GAP and summed
        pooled = sender.in_shape[1] * sender.in_shape[2] if gap else 1
        nodes[if_name[p.name]] = nir.IF(
            r=np.full(shape, peer.if_r, np.float32),
            v_threshold=np.full(shape, theta * pooled, np.float32),
            v_reset=np.zeros(shape, np.float32),
        )
    for layer in graph.layers:
        src = if_name[graph.layer(layer.inputs[0]).population] if layer.inputs else "input"
        src_shape = nir_shape[graph.layer(layer.inputs[0]).population] if layer.inputs else None
        c, h, w = layer.in_shape
        name = node_of[layer.name]
        if layer.kind is LayerKind.GAP:
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
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


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
