"""NIR export: a converted `SpikingNetwork` as a NIR graph and an HDF5 `.nir` file.

The file says which Output is the final classifier (`metadata["fc_output"]`) and the neuron
conventions it follows (`CONVENTIONS`); docs/nir.md is the user's guide.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim import __version__
from hwsim.atomic import atomic_path
from hwsim.model.convert import SpikingNetwork
from hwsim.model.graph import LayerKind, head_tag
from hwsim.model.nir_nodes import NirError, nir_module

if TYPE_CHECKING:  # nir is imported where a NIR file is written
    import nir


CONVENTIONS = (
    "hwsim IF neurons: V <- V + I; spike when V >= v_threshold; reset by subtracting"
    " v_threshold (v_reset 0 stands for it); membranes start at 0; every IF population adds"
    " one timestep of delay (layer l at t sees layer l-1's spikes of t-1)"
)
"""The neuron conventions an exported file follows (also in the file's metadata)."""


def export_graph(snn: SpikingNetwork) -> nir.NIRGraph:
    """The converted network as a NIR graph: an Input, one node per layer (Conv2d; AvgPool2d
    for a GAP; [Flatten] Affine for a Linear), one IF node per population, one Output per
    classifier head named by `head_tag` ("fc", "ic5"), the conventions in the metadata."""
    nir = nir_module()
    graph = snn.graph
    if snn.params.v0 != 0:
        raise NirError(
            f"the network starts its membranes at V0 = {snn.params.v0:g}; NIR has no initial"
            " state, so only V0 = 0 can be exported"
        )
    theta = float(snn.params.threshold)
    layer_names = set(graph.names)
    pops = graph.populations()
    if_name = {p.name: p.name if p.name not in layer_names else f"{p.name}.if" for p in pops}
    nir_shape: dict[str, tuple[int, ...]] = {}
    for p in pops:
        kind = graph.sender(p.name).kind
        nir_shape[p.name] = (p.shape[0],) if kind is LayerKind.LINEAR else p.shape
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(graph.input_shape))}
    edges: list[tuple[str, str]] = []
    for p in pops:
        shape = nir_shape[p.name]
        nodes[if_name[p.name]] = nir.IF(
            r=np.ones(shape, np.float32),
            v_threshold=np.full(shape, theta, np.float32),
            v_reset=np.zeros(shape, np.float32),
        )
    for layer in graph.layers:
        src = if_name[graph.layer(layer.inputs[0]).population] if layer.inputs else "input"
        src_shape = nir_shape[graph.layer(layer.inputs[0]).population] if layer.inputs else None
        c, h, w = layer.in_shape
        if layer.kind is LayerKind.GAP:
            nodes[layer.name] = nir.AvgPool2d(
                kernel_size=np.array([h, w]), stride=np.array([h, w]), padding=np.array([0, 0])
            )
            edges.append((src, layer.name))
        else:
            wts = snn.weights[layer.name]
            weight = wts.weight.detach().cpu().numpy().astype(np.float32)
            bias = wts.bias.detach().cpu().numpy().astype(np.float32)
            if layer.kind is LayerKind.CONV:
                nodes[layer.name] = nir.Conv2d(
                    input_shape=(h, w),
                    weight=weight,
                    stride=(layer.stride, layer.stride),
                    padding=(layer.padding, layer.padding),
                    dilation=(1, 1),
                    groups=1,
                    bias=bias,
                )
                edges.append((src, layer.name))
            else:
                nodes[layer.name] = nir.Affine(weight=weight, bias=bias)
                if src_shape is not None and len(src_shape) == 3:
                    flat = f"{layer.name}.flatten"
                    nodes[flat] = nir.Flatten(
                        input_type={"input": np.array(src_shape)}, start_dim=0, end_dim=-1
                    )
                    edges += [(src, flat), (flat, layer.name)]
                else:
                    edges.append((src, layer.name))
        edges.append((layer.name, if_name[layer.population]))
    for h in graph.heads:
        tag = head_tag(h)
        if tag in nodes:
            raise NirError(f"a layer is named {tag!r}, the name of head {tag}'s Output node")
        out = graph.head_output(h).population
        nodes[tag] = nir.Output(output_type=np.array(nir_shape[out]))
        edges.append((if_name[out], tag))
    metadata = {"producer": f"hwsim {__version__}", "conventions": CONVENTIONS, "fc_output": "fc"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(snn: SpikingNetwork, path: str | Path) -> Path:
    """Write `export_graph(snn)` to `path` atomically (HDF5, `nir.write`)."""
    nir = nir_module()
    graph = export_graph(snn)
    path = Path(path)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return path
