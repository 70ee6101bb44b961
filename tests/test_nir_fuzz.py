"""Property-based fuzzing of NIR imports, as tests/test_arch_fuzz.py fuzzes architecture files:
random graphs (chains of Conv2d, pooling and Affine/Linear layers between IF populations,
residual joins, extra or missing edges, nodes hwsim does not simulate), random shapes (maps,
kernels, strides, paddings, class counts, also empty or negative) and random values (weights,
biases, r and thresholds, with NaN, infinities, 1e38, 1e-45 and zero mixed in).

Whatever the graph, an import either gives a network that hwsim can use (finite weights whose
one-step currents stay below the engine's float32 limit, a layer graph that maps onto the chip
and simulates to 0/1 spikes) or refuses with a `NirError` that names a node of the graph (or,
for what belongs to no node, the graph); never another exception. Through the command line, a
NIR file ends with exit 0 or with exit 2 and a message naming the file; never a traceback."""

import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

nir = pytest.importorskip("nir")

from hwsim.cli.main import main  # noqa: E402
from hwsim.engine import simulate  # noqa: E402
from hwsim.hw.arch import load_arch  # noqa: E402
from hwsim.hw.mapping import map_network  # noqa: E402
from hwsim.model.nir_io import import_graph  # noqa: E402
from hwsim.model.nir_nodes import CURRENT_LIMIT, MAX_NODES, NirError  # noqa: E402
from tests.bad_input_cases import ROOT, nir_chain_file  # noqa: E402

ARCH = load_arch(ROOT / "arch_configs" / "spikesim.yaml")

SPECIAL = [math.nan, math.inf, -math.inf, 1e38, -1e38, 3.4e38, 1e-45, 0.0, -1.0]
"""Values that once got through an import or broke one."""

GRAPH_LEVEL = (
    "Input nodes",
    "no Output node",
    "the Outputs have",
    "nodes; hwsim imports graphs",
    "equally deep",
)
"""Refusals about the graph as a whole (every other refusal names a node)."""


def _pick(draw, wild: bool, sane, *odd):
    """`sane`; in a wild graph sometimes one of `odd` instead."""
    return draw(st.sampled_from([sane] * 3 + list(odd))) if wild else sane


@st.composite
def arrays(draw, shape: tuple[int, ...], scale: float = 1.0, wild: bool = False) -> np.ndarray:
    """Random float32 values of `shape`; in a wild graph sometimes with one special value."""
    seed = draw(st.integers(0, 2**16))
    values = np.random.default_rng(seed).normal(0, scale, shape).astype(np.float32)
    if values.size and _pick(draw, wild, False, True):
        values.reshape(-1)[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from(SPECIAL))
    return values


@st.composite
def if_node(draw, shape: tuple[int, ...], wild: bool):
    """An IF node: scalar r and threshold (in a wild graph also per-neuron ones, of a wrong
    size, special values, a nonzero v_reset)."""
    size = _pick(draw, wild, 1, int(np.prod(shape)), 2)
    r = np.abs(draw(arrays((size,), 0.5, wild))) + 0.5
    thr = np.abs(draw(arrays((size,), 0.5, wild))) + _pick(draw, wild, 0.5, 0.1, 1e-45)
    reset = np.full(size, _pick(draw, wild, 0.0, -0.5))
    return nir.IF(r=r, v_threshold=thr, v_reset=reset)


@st.composite
def graphs(draw):
    """A NIR graph: an Input, 0-3 blocks (Conv2d -> IF, sometimes a residual 1x1 Conv2d into
    the same IF), a head (global pooling, Flatten, Affine or Linear, IF, Output). Half the
    graphs are wild: odd sizes, strides, paddings and values, nodes hwsim does not simulate,
    an extra or a missing edge."""
    wild = draw(st.booleans())
    c, w = draw(st.integers(1, 3)), draw(st.integers(1, 12))
    h = _pick(draw, wild, draw(st.integers(1, 12)), 0)
    nodes = {"input": nir.Input(input_type=np.array([c, h, w]))}
    edges: list[tuple[str, str]] = []
    prev, shape = "input", (c, h, w)
    for i in range(draw(st.integers(0, 3))):
        out = draw(st.integers(1, 5))
        k = _pick(draw, wild, draw(st.integers(1, max(1, min(4, *shape[1:])))), 5)
        stride = _pick(draw, wild, draw(st.integers(1, 2)), 0, -1)
        pad = _pick(draw, wild, draw(st.integers(0, (k - 1) // 2)), k, -1)
        weight = draw(arrays((out, shape[0], k, k), 0.5, wild))
        bias = draw(arrays((out,), 0.1, wild))
        nodes[f"conv{i}"] = nir.Conv2d(None, weight, stride, pad, 1, 1, bias)
        ho = (shape[1] + 2 * pad - k) // max(stride, 1) + 1
        wo = (shape[2] + 2 * pad - k) // max(stride, 1) + 1
        new = (out, max(ho, 0), max(wo, 0))
        nodes[f"if{i}"] = draw(if_node(new, wild))
        edges += [(prev, f"conv{i}"), (f"conv{i}", f"if{i}")]
        if prev != "input" and draw(st.integers(0, 3)) == 0:  # a residual join
            skip = draw(arrays((out, shape[0], 1, 1), 0.5, wild))
            nodes[f"skip{i}"] = nir.Conv2d(None, skip, stride, 0, 1, 1, np.zeros(out))
            edges += [(prev, f"skip{i}"), (f"skip{i}", f"if{i}")]
        if _pick(draw, wild, False, True):  # a node hwsim does not simulate
            nodes[f"lif{i}"] = nir.LIF(tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1),
                                       v_threshold=np.ones(1))  # fmt: skip
            edges += [(f"if{i}", f"lif{i}")]
        prev, shape = f"if{i}", new
    classes = _pick(draw, wild, draw(st.integers(2, 12)), 1, 0)
    pool = draw(st.sampled_from(["AvgPool2d", "SumPool2d"]))
    kernel = _pick(draw, wild, np.array(shape[1:]), np.array([2, 2]))
    nodes["pool"] = getattr(nir, pool)(kernel, kernel, np.array([0, 0]))
    nodes["flat"] = nir.Flatten(input_type={"input": np.array([shape[0], 1, 1])}, start_dim=0)
    weight = draw(arrays((classes, shape[0]), 1.0, wild))
    if draw(st.booleans()):
        nodes["fc"] = nir.Affine(weight=weight, bias=draw(arrays((classes,), 0.1, wild)))
    else:
        nodes["fc"] = nir.Linear(weight=weight)
    nodes["out_if"] = draw(if_node((classes,), wild))
    nodes["output"] = nir.Output(output_type=np.array([classes]))
    edges += [(prev, "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "out_if")]
    edges.append(("out_if", "output"))
    change = _pick(draw, wild, "none", "drop", "cycle", "dangling")
    if change == "drop":
        edges.pop(draw(st.integers(0, len(edges) - 1)))
    elif change == "cycle" and prev != "input":
        edges.append((prev, "conv0"))
    elif change == "dangling":
        edges.append(("fc", "nowhere"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _names_a_node(message: str, graph) -> bool:
    return any(f"'{n}'" in message for n in graph.nodes) or any(
        phrase in message for phrase in GRAPH_LEVEL
    )


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI does not flake
    suppress_health_check=[HealthCheck.filter_too_much],
)
@given(graph=graphs())
def test_an_import_gives_a_usable_network_or_names_the_node(graph):
    try:
        snn = import_graph(graph)
    except NirError as e:
        assert _names_a_node(str(e), graph), str(e)
        return
    theta = snn.params.threshold
    assert math.isfinite(theta) and theta > 0
    for name, w in snn.weights.items():
        weight, bias = w.weight.numpy().astype(np.float64), w.bias.numpy().astype(np.float64)
        assert np.all(np.isfinite(weight)) and np.all(np.isfinite(bias)), name
        current = np.abs(weight).reshape(len(weight), -1).sum(axis=1) + np.abs(bias)
        assert current.max(initial=0) / theta < CURRENT_LIMIT, name
    map_network(ARCH, snn.graph)  # fits the chip (a few small layers)
    x = np.random.default_rng(0).random((2, *snn.graph.input_shape), dtype=np.float32)
    result = simulate(snn, x, 3)
    for spikes in result.head_spikes.values():
        assert set(np.unique(spikes)) <= {0, 1}


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(graph=graphs())
def test_a_nir_file_maps_or_is_refused_naming_the_file(graph, tmp_path, capsys):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one per example (tmp_path is shared)
    path = folder / "fuzz.nir"
    try:
        nir.write(path, graph)
    except Exception:  # the nir package cannot write some of these graphs itself
        assume(False)
    out = folder / "out"
    code = main(["map", "--model", str(path), "--out", str(out), "--quiet"])
    text = " ".join((lambda o: o.out + o.err)(capsys.readouterr()).split())
    assert "Traceback" not in text and "internal error" not in text, text
    assert code in (0, 2), text
    if code == 2:
        assert str(path) in text.replace(" ", ""), text  # rich may wrap inside the path
        assert not out.exists()
    else:
        assert (out / "mapping.csv").is_file()


def test_a_graph_past_the_node_limit_is_refused_before_it_is_read(tmp_path):
    """Counted from the file's HDF5 groups: reading 10,006 nodes took the nir package 40 s."""
    path = nir_chain_file(tmp_path / "chain.nir", 5000)
    with pytest.raises(NirError, match=re.escape(f"{path}: 10006 nodes; hwsim imports graphs of"
                                                 f" up to {MAX_NODES} nodes")):  # fmt: skip
        from hwsim.model.nir_io import read_nir

        read_nir(path)


def test_an_expanded_classifier_that_cannot_fit_in_memory_is_refused_before_allocating(
    monkeypatch,
):
    """A global pooling + Affine head on a 4096x4096 map becomes a conv whose kernel is the
    whole map: (10, 4, 4096, 4096) float32 = 2.5 GiB, estimated before it is allocated."""
    import hwsim.model.nir_nodes as nodes
    from tests.bad_input_cases import nir_net

    monkeypatch.setattr(nodes, "available_memory_bytes", lambda: 2**30)  # 1 GiB left
    with pytest.raises(NirError, match=r"Affine 'affine' on a 4096x4096 map needs 2\.5 GiB"):
        import_graph(nir_net(shape=(1, 4096, 4096)))


@pytest.mark.slow
def test_a_whole_10006_node_chain_written_by_nir_is_refused_by_name(tmp_path, capsys):
    """The issue's case as the nir package writes it (about 30 s to write)."""
    from tests.test_nir import long_chain

    path = tmp_path / "chain.nir"
    nir.write(path, long_chain(5000), compression=None)
    code = main(["map", "--model", str(path), "--out", str(tmp_path / "o")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and f"{path}: 10006 nodes" in err, err
