"""An internal classifier (IC) added to a peer's NIR graph: hwsim's `run` and `sweep` compare the
final classifier with an IC, and the peers' exporters write one Output (a `torch.nn.Sequential`
has one end). `add_ic_head` taps one IF node of the graph with hwsim's head: a global SumPool2d,
a Flatten, an Affine and IF neurons, read by an Output (docs/nir.md, "Classifier heads").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.model.nir_nodes import NEURON_KINDS, NirError, as_array, kind_of, nir_module

if TYPE_CHECKING:
    import nir


def add_ic_head(
    graph: nir.NIRGraph,
    tap: str,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    map_shape: tuple[int, int, int],
    threshold: float = 1.0,
    name: str = "ic",
) -> nir.NIRGraph:
    """`graph` with an IC head on the IF node `tap`, whose output map is `map_shape` (C, H, W):
    nodes `{name}_pool` (global SumPool2d), `{name}_flatten`, `{name}_affine` (`weight`
    (classes, C) on the channels' spike sums, `bias` (classes,), default zeros),
    `{name}_if` (IF, r 1, `threshold`) and the Output `name`.

    hwsim maps the sum pooling and the Affine to one whole-map convolution (`weight` repeated
    at every position); scale `weight` by 1 / (H W) for an average."""
    nir = nir_module()
    nodes: dict[str, Any] = dict(graph.nodes)
    if kind_of(nodes.get(tap)) not in NEURON_KINDS:
        raise NirError(
            f"tap {tap!r}: an IC head reads an IF or LIF node; the graph's node is"
            f" {nodes.get(tap)!r}"
        )
    c, h, w = map_shape
    weight = as_array(weight, np.float32)
    if weight.ndim != 2 or weight.shape[1] != c:
        raise NirError(
            f"IC weight {weight.shape}: expected (classes, {c}) for the tap's {c} channels"
        )
    classes = weight.shape[0]
    bias = np.zeros(classes, np.float32) if bias is None else as_array(bias, np.float32)
    new = {
        f"{name}_pool": nir.SumPool2d(np.array([h, w]), np.array([h, w]), np.array([0, 0])),
        f"{name}_flatten": nir.Flatten(
            input_type={"input": np.array([c, 1, 1])}, start_dim=0, end_dim=-1
        ),
        f"{name}_affine": nir.Affine(weight=weight, bias=bias),
        f"{name}_if": nir.IF(
            r=np.ones(classes, np.float32), v_threshold=np.full(classes, threshold, np.float32)
        ),
        name: nir.Output(output_type=np.array([classes])),
    }
    taken = [n for n in new if n in nodes]
    if taken:
        raise NirError(f"the graph already has nodes named {', '.join(taken)}; choose another name")
    chain = [tap, *new]
    edges = [*graph.edges, *zip(chain[:-1], chain[1:], strict=True)]
    return nir.NIRGraph(
        nodes={**nodes, **new}, edges=edges, metadata=dict(graph.metadata), type_check=False
    )
