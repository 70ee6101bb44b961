"""NIR interchange: export then import gives the same network and spikes; a peer's export
simulates with the peer's output spikes; every refused feature is named, with exit status 2.

References are independent of hwsim's translation: the nir package's own node objects (read
back with `nir.read`), a plain numpy IF loop written from NIR's node definitions, and the peers
(sinabs, snntorch) themselves."""

import importlib.util
import json
import re

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

from hwsim.cli.main import main  # noqa: E402
from hwsim.engine import simulate  # noqa: E402
from hwsim.model.convert import ConversionParams, convert  # noqa: E402
from hwsim.model.data import make_synthetic  # noqa: E402
from hwsim.model.graph import FC_HEAD  # noqa: E402
from hwsim.model.nets import Checkpoint, HeadedNet  # noqa: E402
from hwsim.model.netspec import NetSpec  # noqa: E402
from hwsim.model.nir_export import write_nir  # noqa: E402
from hwsim.model.nir_io import NirError, NirOptions, import_graph, read_nir  # noqa: E402

ARCH = "arch_configs/spikesim.yaml"


def converted(name: str, ics: tuple[int, ...], seed: int = 0):
    """A random-weight zoo network with IC heads, converted on 64 synthetic images."""
    torch.manual_seed(seed)
    spec = NetSpec(name, 1 / 16, (1, 16, 16), 10, ics)
    ckpt = Checkpoint(spec, HeadedNet(spec).state_dict(), {"name": "synthetic"}, {})
    return convert(ckpt, make_synthetic(64, seed=0), ConversionParams(max_images=64))


def structure(graph):
    """Every layer's geometry, role, head, block, inputs and whether it sends, by name."""
    return {
        g.name: (
            g.kind,
            g.role,
            g.head,
            g.block,
            g.in_shape,
            g.out_shape,
            g.kernel,
            g.stride,
            g.padding,
            g.inputs,
            g.sends_spikes,
        )  # fmt: skip
        for g in graph.layers
    }


@pytest.mark.parametrize("name,ics", [("vgg11", (2, 4)), ("resnet18", (2, 5))])
def test_export_then_import_gives_the_same_network_and_spikes(name, ics, tmp_path):
    snn = converted(name, ics)
    path = write_nir(snn, tmp_path / f"{name}.nir")
    # the file, read by the nir package itself: one node per layer and population (no dots in
    # node names: the peers' importers make them torch attribute names), the weights bit for
    # bit, IF nodes with hwsim's threshold, Outputs named by head, the FC named in metadata
    g = nir.read(path)
    assert not any("." in n for n in g.nodes)
    assert g.metadata["fc_output"] == "fc" and g.metadata["convention"] == "hwsim"
    for layer in snn.graph.layers:
        node = g.nodes[layer.name.replace(".", "_")]
        if layer.name in snn.weights:
            np.testing.assert_array_equal(node.weight, snn.weights[layer.name].weight.numpy())
            np.testing.assert_array_equal(node.bias, snn.weights[layer.name].bias.numpy())
        else:  # a GAP: a global SumPool2d into IF neurons at H W times the threshold
            assert type(node).__name__ == "SumPool2d"
            assert tuple(node.kernel_size) == layer.in_shape[1:]
            pooled = [b for a, b in g.edges if a == layer.name.replace(".", "_")]
            hw = layer.in_shape[1] * layer.in_shape[2]
            assert np.all(g.nodes[pooled[0]].v_threshold == hw)
    ifs = [n for n in g.nodes.values() if type(n).__name__ == "IF"]
    assert len(ifs) == len(snn.graph.populations())
    assert all(np.all(n.v_reset == 0) for n in ifs)
    gaps = [g_ for g_ in snn.graph.layers if g_.name not in snn.weights]
    pooling = sum(g_.in_shape[1] * g_.in_shape[2] > 1 for g_ in gaps)
    assert sum(np.all(n.v_threshold == 1) for n in ifs) == len(ifs) - pooling
    assert sorted(g.outputs) == sorted(["fc", *(f"ic{i}" for i in ics)])
    back = read_nir(path)
    assert structure(back.graph) == structure(snn.graph)
    assert back.graph.heads == snn.graph.heads and back.params.threshold == 1.0
    images = make_synthetic(8, seed=0, split="test").x
    a, b = simulate(snn, images, 60), simulate(back, images, 60)
    for h in snn.graph.heads:
        np.testing.assert_array_equal(a.head_spikes[h], b.head_spikes[h])
    # every population, matched by the layer that sends its spikes
    sender_a = {p.name: snn.graph.sender(p.name).name for p in snn.graph.populations()}
    sender_b = {p.name: back.graph.sender(p.name).name for p in back.graph.populations()}
    by_layer_a = dict(zip(map(sender_a.get, a.layer_names), a.layer_spikes.T, strict=True))
    by_layer_b = dict(zip(map(sender_b.get, b.layer_names), b.layer_spikes.T, strict=True))
    assert by_layer_a.keys() == by_layer_b.keys()
    for layer, spikes in by_layer_a.items():
        np.testing.assert_array_equal(spikes, by_layer_b[layer], err_msg=layer)
    assert all(a.head_spikes[h].sum() > 0 for h in snn.graph.heads)  # not a silent network


def if_loop(layers, x: np.ndarray, steps: int, threshold: float) -> np.ndarray:
    """NIR's IF with dt = 1 read as the peers simulate it: v += W s; spike where
    v >= threshold; subtract it; no delay between layers. `layers` are functions of the
    previous layer's spikes (float64); returns the last layer's spikes (N, T, C)."""
    v = [None] * len(layers)
    out = []
    for _ in range(steps):
        s = x
        for i, f in enumerate(layers):
            cur = f(s)
            v[i] = cur if v[i] is None else v[i] + cur
            s = (v[i] >= threshold).astype(np.float64)
            v[i] = v[i] - threshold * s
        out.append(s)
    return np.stack(out, axis=1)


def test_a_handwritten_graph_matches_a_plain_if_loop_with_one_step_delays(tmp_path):
    """Conv2d -> IF -> global SumPool2d -> Flatten -> Linear -> IF, written with the nir
    package's own classes, threshold 0.75, no biases: hwsim emits the loop's spikes
    depth + 1 steps later, so its counts over T + depth + 1 steps equal the loop's over T."""
    rng = np.random.default_rng(3)
    w1 = rng.normal(0, 0.6, (4, 1, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.6, (10, 4)).astype(np.float32)
    thr = 0.75
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1, 16, 16])),
            "conv": nir.Conv2d((16, 16), w1, 1, 1, 1, 1, np.zeros(4, np.float32)),
            "lif1": nir.IF(r=np.ones((4, 16, 16)), v_threshold=np.full((4, 16, 16), thr)),
            "pool": nir.SumPool2d(np.array([16, 16]), np.array([16, 16]), np.array([0, 0])),
            "flat": nir.Flatten(input_type={"input": np.array([4, 1, 1])}, start_dim=0),
            "fc": nir.Linear(weight=w2),
            "lif2": nir.IF(r=np.ones(10), v_threshold=np.full(10, thr)),
            "out": nir.Output(output_type=np.array([10])),
        },
        edges=[
            ("input", "conv"),
            ("conv", "lif1"),
            ("lif1", "pool"),
            ("pool", "flat"),
            ("flat", "fc"),
            ("fc", "lif2"),
            ("lif2", "out"),
        ],  # fmt: skip
    )
    nir.write(tmp_path / "h.nir", g)
    snn = read_nir(tmp_path / "h.nir")
    assert snn.params.threshold == thr  # one common threshold: weights kept as written
    x = make_synthetic(6, seed=1, split="test").x
    conv = torch.nn.functional.conv2d

    def layer1(s):
        return conv(torch.from_numpy(s), torch.from_numpy(w1).double(), padding=1).numpy()

    def layer2(s):
        return s.sum(axis=(2, 3)) @ w2.astype(np.float64).T

    steps = 40
    expected = if_loop([layer1, layer2], x.astype(np.float64), steps, thr)
    depth = max(p.depth for p in snn.graph.populations())
    got = simulate(snn, x, steps + depth + 1).head_spikes[FC_HEAD]
    np.testing.assert_array_equal(got[:, depth + 1 :], expected)
    np.testing.assert_array_equal(got.sum(axis=1), expected.sum(axis=1))


def test_r_and_thresholds_are_folded_into_the_weights(tmp_path):
    """Per-neuron r / v_threshold (not one common threshold) scales the driving weights and
    leaves the spikes of the plain loop with those parameters."""
    rng = np.random.default_rng(4)
    w = rng.normal(0, 1, (10, 256)).astype(np.float32)
    thr, r = rng.uniform(0.5, 2, 10), rng.uniform(0.5, 2, 10)
    g = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([1, 16, 16])),
        nir.Flatten(input_type={"input": np.array([1, 16, 16])}, start_dim=0),
        nir.Affine(weight=w, bias=np.zeros(10, np.float32)),
        nir.IF(r=r, v_threshold=thr),
    )
    snn = import_graph(g)
    assert snn.params.threshold == 1.0
    folded = snn.weights["affine"].weight.numpy().reshape(10, -1)
    np.testing.assert_allclose(folded, w * (r / thr)[:, None].astype(np.float32), rtol=1e-6)


def refuse(tmp_path, capsys, graph, needle: str, *extra: str) -> str:
    path = tmp_path / "bad.nir"
    nir.write(path, graph)
    code = main(["map", "--arch", ARCH, "--model", str(path), "--out", str(tmp_path / "o"),
                 *extra])  # fmt: skip
    err = capsys.readouterr().err
    text = " ".join(err.split())
    assert code == 2, text
    assert needle in text and "bad.nir" in text
    assert not (tmp_path / "o").exists()
    return text


def chain(*nodes):
    return nir.NIRGraph.from_list(nir.Input(input_type=np.array([1, 16, 16])), *nodes)


def conv(c_in=1, c_out=4, k=3, **kw):
    args = {"stride": 1, "padding": 1, "dilation": 1, "groups": 1} | kw
    w = np.ones((c_out, c_in // args["groups"], k, k), np.float32)
    return nir.Conv2d(None, w, args["stride"], args["padding"], args["dilation"],
                      args["groups"], np.zeros(c_out, np.float32))  # fmt: skip


def if_(*shape, **kw):
    return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape), **kw)


def head(c=4, hw=16):
    return [
        nir.AvgPool2d(np.array([hw, hw]), np.array([hw, hw]), np.array([0, 0])),
        nir.Flatten(input_type={"input": np.array([c, 1, 1])}, start_dim=0),
        nir.Affine(weight=np.ones((10, c), np.float32), bias=np.zeros(10, np.float32)),
        if_(10),
    ]


REFUSALS = {
    "LIF leak below 0": (
        lambda: chain(
            conv(),
            nir.LIF(
                tau=np.full((4, 16, 16), 0.25),
                r=np.ones((4, 16, 16)),
                v_leak=np.zeros((4, 16, 16)),
                v_threshold=np.ones((4, 16, 16)),
            ),
            *head(),
        ),  # fmt: skip
        "its leak per step is -3 (tau 0.25 s at dt = 1 s, convention 'hwsim')",
    ),
    "CubaLIF": (
        lambda: chain(
            conv(), nir.CubaLIF(*(np.full((4, 16, 16), v) for v in (5.0, 10, 1, 0, 1))), *head()
        ),  # fmt: skip
        "is a CubaLIF",
    ),
    "reset potentials that vary": (
        lambda: chain(
            conv(),
            if_(4, 16, 16, v_reset=np.linspace(-1, 0, 4 * 16 * 16).reshape(4, 16, 16)),
            *head(),
        ),  # fmt: skip
        "IF 'if': v_reset / v_threshold varies between neurons (-1 .. 0)",
    ),
    "unknown node kind": (
        lambda: chain(conv(), if_(4, 16, 16), nir.Scale(np.ones((4, 16, 16))), *head()),
        "is a Scale",
    ),
    "delay": (
        lambda: chain(conv(), if_(4, 16, 16), nir.Delay(np.ones((4, 16, 16))), *head()),
        "is a Delay",
    ),
    "local pooling with two weight nodes": (
        lambda: chain(
            conv(),
            if_(4, 16, 16),
            nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
            conv(4, 4),
            *head(hw=8),
        ),  # fmt: skip
        "pools locally; hwsim maps a local pooling into IF neurons alone",
    ),
    "grouped convolution": (
        lambda: chain(conv(), if_(4, 16, 16), conv(4, 4, groups=2), if_(4, 16, 16), *head()),
        "groups = 2",
    ),
    "sum pooling into neurons at the threshold of an average": (
        lambda: chain(
            conv(),
            if_(4, 16, 16),
            nir.SumPool2d(np.array([16, 16]), np.array([16, 16]), np.array([0, 0])),
            nir.IF(r=np.ones((4, 1, 1)), v_threshold=np.full((4, 1, 1), 2.0)),
            *head(hw=1)[1:],
            nir.Output(output_type=np.array([10])),
        ),  # fmt: skip
        "(r / if_r) / v_threshold = 0.5 != 0.00390625, and a pooling layer has no weights",
    ),
    "two weight layers without neurons": (
        lambda: chain(conv(), conv(4, 4), if_(4, 16, 16), *head()),
        "hwsim maps one Conv2d",
    ),
    "output without neurons": (
        lambda: chain(conv(), if_(4, 16, 16), *head()[:3]),
        "hwsim classifies by counting spikes",
    ),
}


@pytest.mark.parametrize("feature", sorted(REFUSALS))
def test_every_refused_feature_is_named_with_exit_status_2(feature, tmp_path, capsys):
    build, needle = REFUSALS[feature]
    text = refuse(tmp_path, capsys, build(), needle)
    assert "'" in text  # the node is named


def test_recurrent_edges_are_refused(tmp_path, capsys):
    g = chain(conv(), if_(4, 16, 16), *head())
    names = list(g.nodes)
    w = np.ones((4, 4, 1, 1), np.float32)
    rec = nir.Conv2d((16, 16), w, 1, 0, 1, 1, np.zeros(4, np.float32))
    g = nir.NIRGraph(
        nodes={**g.nodes, "rec": rec},
        edges=[*g.edges, (names[2], "rec"), ("rec", names[2])],
        type_check=False,
    )
    refuse(tmp_path, capsys, g, "recurrent edge")


def long_chain(n: int, back_edge: bool = False):
    """Input 1x2x2, then n x (1x1 Conv2d, IF), a global-pooling FC head and its Output
    (2 n + 6 nodes); back_edge adds an edge from the last backbone IF to the first Conv2d."""
    nodes = {"input": nir.Input(input_type=np.array([1, 2, 2]))}
    edges, prev = [], "input"
    for i in range(n):
        w = np.ones((1, 1, 1, 1), np.float32)
        nodes[f"c{i}"] = nir.Conv2d((2, 2), w, 1, 0, 1, 1, np.zeros(1, np.float32))
        nodes[f"n{i}"] = if_(1, 2, 2)
        edges += [(prev, f"c{i}"), (f"c{i}", f"n{i}")]
        prev = f"n{i}"
    for i, node in enumerate([*head(c=1, hw=2), nir.Output(output_type=np.array([10]))]):
        nodes[f"h{i}"] = node
        edges.append((prev, f"h{i}"))
        prev = f"h{i}"
    if back_edge:
        edges.append((f"n{n - 1}", "c0"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_a_chain_longer_than_the_recursion_limit_imports_block_by_block():
    """Graph walks are iterative: a 1,500-population chain (3,006 nodes, past Python's
    default recursion limit of 1,000) imports, each population its own backbone block, as the
    zoo numbers a plain conv chain."""
    n = 1500
    snn = import_graph(long_chain(n))
    backbone = [g for g in snn.graph.layers if g.head is None]
    assert [(g.name, g.block, g.inputs) for g in backbone] == [
        (f"c{i}", i, () if i == 0 else (f"c{i - 1}",)) for i in range(n)
    ]
    assert snn.graph.heads == (FC_HEAD,) and snn.graph.head_output(FC_HEAD).name == "h2"


def test_a_cycle_through_10000_nodes_is_refused_naming_its_edge():
    """The cycle search walks back iteratively (it recursed once per node, RecursionError);
    the edge named is the one into the cycle's first node in the graph's order."""
    with pytest.raises(NirError, match="recurrent edge 'n4999' -> 'c0'"):
        import_graph(long_chain(5000, back_edge=True))


def bad_values(case: str):
    """A one-conv network with one value numpy or the engine cannot use (type_check=False:
    the nir package's own checks would refuse some of them first)."""
    w = np.ones((4, 1, 3, 3), np.float32)
    stride, pad, shape, hw = 1, 1, (1, 16, 16), 16
    bias = np.zeros(4, np.float32)
    affine = np.ones((10, 4), np.float32)
    if case == "negative stride":
        stride = -1
    elif case == "padding -3":
        pad, hw = -3, 10
    elif case == "kernel larger than the map":
        w, pad = np.ones((4, 1, 40, 40), np.float32), 0
    elif case == "zero-size map":
        shape = (1, 0, 16)
    elif case == "NaN weight":
        w[0, 0, 0, 0] = np.nan
    elif case == "inf bias":
        bias[1] = np.inf
    elif case == "zero classes":
        affine = np.ones((0, 4), np.float32)
    nodes = [
        nir.Conv2d((16, 16), w, stride, pad, 1, 1, bias),
        if_(4, hw, hw),
        *head(hw=hw)[:2],
        nir.Affine(weight=affine, bias=np.zeros(len(affine), np.float32)),
        if_(len(affine)),
        nir.Output(output_type=np.array([len(affine)])),
    ]
    return nir.NIRGraph.from_list(nir.Input(input_type=np.array(shape)), *nodes, type_check=False)


VALUE_REFUSALS = {
    "negative stride": "Conv2d 'conv2d': stride (-1, -1); hwsim needs equal strides >= 1",
    "padding -3": "Conv2d 'conv2d': padding (-3, -3); hwsim needs equal padding >= 0",
    "kernel larger than the map": "Conv2d 'conv2d' maps its input (1, 16, 16) to the empty",
    "zero-size map": "Input 'input' has shape (1, 0, 16); every size must be >= 1",
    "NaN weight": "Conv2d 'conv2d': weight has NaN or infinite values",
    "inf bias": "Conv2d 'conv2d': bias has NaN or infinite values",
    "zero classes": "Affine 'affine' maps its input (4,) to the empty (0,)",
}


@pytest.mark.parametrize("case", sorted(VALUE_REFUSALS))
def test_values_numpy_cannot_use_are_refused_naming_the_node(case, tmp_path):
    """Each ended in a numpy error without a node's name, or ran to a 0% accuracy (NaN)."""
    with pytest.raises(NirError, match=re.escape(VALUE_REFUSALS[case])):
        import_graph(bad_values(case))
    if case == "NaN weight":  # from a file, the file is named too
        nir.write(tmp_path / "nan.nir", bad_values(case))
        with pytest.raises(NirError, match=re.escape(f"{tmp_path / 'nan.nir'}: Conv2d")):
            read_nir(tmp_path / "nan.nir")


def test_fc_output_chooses_the_final_classifier(tmp_path, capsys):
    """Two Outputs: the deeper is the FC by default, the other an IC numbered by its tap
    block; --fc-output must name an Output node."""
    nodes = {
        "input": nir.Input(input_type=np.array([1, 16, 16])),
        "c0": conv(), "n0": if_(4, 16, 16), "c1": conv(4, 4), "n1": if_(4, 16, 16),
    }  # fmt: skip
    edges = [("input", "c0"), ("c0", "n0"), ("n0", "c1"), ("c1", "n1")]
    for tap, tag in (("n0", "early"), ("n1", "late")):
        for i, node in enumerate(head()):
            nodes[f"{tag}{i}"] = node
            edges.append((tap if i == 0 else f"{tag}{i - 1}", f"{tag}{i}"))
        nodes[tag] = nir.Output(output_type=np.array([10]))
        edges.append((f"{tag}3", tag))
    g = nir.NIRGraph(nodes=nodes, edges=edges)
    snn = import_graph(g)
    assert snn.spec.outputs == ((0, "early"), (FC_HEAD, "late"))
    assert snn.graph.layer("early2").head == 0 and snn.graph.layer("late2").head == FC_HEAD
    nir.write(tmp_path / "two.nir", g)
    with pytest.raises(NirError, match="not an Output node"):
        read_nir(tmp_path / "two.nir", NirOptions(fc_output="nope"))
    swapped = read_nir(tmp_path / "two.nir", NirOptions(fc_output="early"))
    assert swapped.spec.outputs == ((1, "late"), (FC_HEAD, "early"))
    refuse(tmp_path, capsys, g, "--fc-output 'n1'", "--fc-output", "n1")


def test_a_nir_model_needs_a_dataset_that_fits(tmp_path, capsys):
    path = write_nir(converted("vgg11", (2,)), tmp_path / "v.nir")
    for argv, needle in (
        ([], "--dataset"),
        (["--dataset", "mnist5k"], "the dataset's images are (1, 28, 28)"),
    ):
        code = main(["trace", "--model", str(path), "--no-cache", "--timesteps", "3", *argv])
        text = " ".join(capsys.readouterr().err.split())
        assert code == 2 and needle in text, text


def test_cli_exports_a_checkpoint_that_trace_and_map_read(tiny_checkpoint, tmp_path, capsys):
    _, model = tiny_checkpoint
    out = tmp_path / "tiny.nir"
    code = main(["export", "--model", str(model), "--ic", "4", "--out", str(out),
                 "--summary", str(tmp_path / "s.json")])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0, text
    assert sorted(nir.read(out).outputs) == ["fc", "ic4"]
    assert json.loads((tmp_path / "s.json").read_text())["outputs"] == ["ic4", "fc"]
    code = main(["trace", "--model", str(out), "--dataset", "synthetic", "--timesteps", "10",
                 "--images", "4", "--no-cache"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    code = main(["map", "--arch", ARCH, "--model", str(out), "--out", str(tmp_path / "m")])
    assert code == 0, capsys.readouterr()
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert {"ic4.linear", "fc.linear", "conv0"} <= {x["layer"] for x in summary["layers"]}


def test_run_on_a_nir_model_targets_its_own_snn_accuracy(tiny_checkpoint, tmp_path, capsys):
    """No ANN: the target is 99% of the FC's SNN accuracy at T on the same test images,
    recomputed here from the raw test trace."""
    from hwsim.api import RunConfig, SimConfig, run
    from hwsim.fusion import TuneSource

    _, model = tiny_checkpoint
    out = tmp_path / "tiny.nir"
    assert main(["export", "--model", str(model), "--out", str(out)]) == 0
    cfg = RunConfig(arch=ARCH, model=out, ic=4, sim=SimConfig(timesteps=30), images=32,
                    tune_images=32, trace_root=tmp_path / "t", tune_on=TuneSource.TRAIN,
                    nir=NirOptions(dataset="synthetic"))  # fmt: skip
    result = run(cfg)
    counts = result.test.sim.head_spikes[FC_HEAD].sum(axis=1)
    tied = counts == counts.max(axis=1, keepdims=True)  # the top set; fair credit 1/k
    label_top = tied[np.arange(len(counts)), result.test.labels]
    right = label_top / tied.sum(axis=1)
    assert result.evaluation.ann_accuracy[FC_HEAD] == pytest.approx(right.mean())
    assert result.evaluation.target == pytest.approx(0.99 * right.mean())
    dl = result.evaluation.curves["DL"].accuracy
    assert dl[-1] == pytest.approx(right.mean())  # DL reaches it by T, by construction


PEERS = pytest.mark.skipif(
    importlib.util.find_spec("sinabs") is None or importlib.util.find_spec("nirtorch") is None,
    reason="sinabs and nirtorch are not installed (pip install --no-deps sinabs nirtorch pbr)",
)


@PEERS
@pytest.mark.parametrize("threshold", [1.0, 0.6])
def test_a_sinabs_export_simulates_with_the_peer_s_output_spikes(threshold, tmp_path):
    """sinabs' IAF (SingleSpike: spike at v >= threshold, MembraneSubtract) is hwsim's
    neuron; sinabs has no delay between layers, hwsim one step per layer, so hwsim's FC
    spikes are sinabs' shifted by depth + 1 steps, and with no biases (nothing integrates
    before the input arrives) the output spike counts are equal."""
    import sinabs

    from tests.test_peers_nir import sinabs_net

    n, steps = 8, 40
    data = make_synthetic(n, seed=0, split="test")
    net = sinabs_net(n, dyadic=False, threshold=threshold, seed=1)
    with torch.no_grad():
        x = torch.from_numpy(data.x)
        peer = net(x[:, None].repeat(1, steps, 1, 1, 1).flatten(0, 1)).reshape(n, steps, 10)
        graph = sinabs.to_nir(net, x)
    graph.infer_types()
    nir.write(tmp_path / "peer.nir", graph)
    snn = read_nir(tmp_path / "peer.nir")
    assert snn.params.threshold == np.float32(threshold)  # sinabs stores float32
    depth = max(p.depth for p in snn.graph.populations())
    got = simulate(snn, data.x, steps + depth + 1).head_spikes[FC_HEAD]
    assert peer.sum() > 0
    np.testing.assert_array_equal(got[:, depth + 1 :], peer.numpy())
    np.testing.assert_array_equal(got.sum(axis=1), peer.numpy().sum(axis=1))


@pytest.mark.skipif(
    importlib.util.find_spec("snntorch") is None or importlib.util.find_spec("nirtorch") is None,
    reason="snntorch and nirtorch are not installed (pip install --no-deps snntorch nirtorch)",
)
def test_a_snntorch_leaky_export_maps_under_its_convention(tmp_path, capsys):
    """snntorch exports every Leaky neuron as a NIR LIF with tau = dt / (1 - beta) at its dt
    = 1e-4 s: read at hwsim's dt (1) that is a leak below 0, refused naming the node and the
    convention; under `--convention snntorch` the network maps."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(256, 10),
        snn.Leaky(
            beta=torch.full((10,), 0.9), threshold=torch.ones(10), init_hidden=True, output=True
        ),  # fmt: skip
    )
    graph = export_to_nir(net, torch.rand(1, 1, 16, 16), ignore_dims=[0])
    text = refuse(tmp_path, capsys, graph, "its leak per step is", "--dataset", "synthetic")
    assert "convention 'hwsim'" in text
    args = ["--model", str(tmp_path / "bad.nir"), "--dataset", "synthetic"]
    code = main(
        ["map", "--arch", ARCH, *args, "--out", str(tmp_path / "o"), "--convention", "snntorch"]
    )
    assert code == 0, capsys.readouterr().err


def test_an_export_names_its_fc_so_equally_deep_heads_need_no_fc_output(tmp_path):
    """An IC on the last block is as deep as the FC: the file's metadata names the FC
    (`fc_output`), so reading it back needs no --fc-output (without the metadata the tie is
    refused, asking for it); hwsim's layer names come back from the metadata too."""
    snn = converted("vgg11", (7,))
    path = write_nir(snn, tmp_path / "v.nir")
    back = read_nir(path)
    assert back.spec.outputs == ((7, "ic7"), (FC_HEAD, "fc"))
    assert back.graph.names == snn.graph.names
    g = nir.read(path)
    g.metadata = {}
    with pytest.raises(NirError, match="Outputs 'ic7', 'fc' are equally deep"):
        import_graph(g)


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("snntorch", "snntorch's NIR importer builds an IF node as a leaky Leaky"),
        ("norse", "norse's NIR importer resets a spiking neuron to 0"),
    ],
)
def test_hwsim_s_if_neurons_are_refused_for_a_peer_that_cannot_step_them(target, why, tmp_path):
    """snntorch 1.0.0 reads an IF node as a leaky Leaky(beta=0.9) and norse 1.1.0 resets an
    IAFCell to 0 (firing at V > theta): neither steps hwsim's subtracting IF, so an export for
    them is refused naming the first population and why, and nothing is written."""
    snn = converted("vgg11", (2,))
    first = snn.graph.populations()[0].name
    with pytest.raises(NirError, match=rf"population '{first}' steps .*; {why}"):
        write_nir(snn, tmp_path / "v.nir", target)
    assert not (tmp_path / "v.nir").exists()


@pytest.mark.parametrize("target", ["sinabs", "spikingjelly"])
def test_an_export_for_a_peer_reads_back_with_the_same_spikes(target, tmp_path):
    """The pooling node and IF r written for a peer's importer (SumPool2d or AvgPool2d; r 1 or
    spikingjelly's 1 / dt, recorded as `if_r` in the metadata) read back as the same network."""
    snn = converted("vgg11", (2,))
    path = write_nir(snn, tmp_path / "v.nir", target)
    g = nir.read(path)
    pools = {type(n).__name__ for n in g.nodes.values() if "Pool" in type(n).__name__}
    assert pools == ({"AvgPool2d"} if target == "spikingjelly" else {"SumPool2d"})
    ifs = [n for n in g.nodes.values() if type(n).__name__ == "IF"]
    assert all(np.all(n.r == (1e4 if target == "spikingjelly" else 1)) for n in ifs)
    back = read_nir(path)
    assert back.params.threshold == 1.0 and structure(back.graph) == structure(snn.graph)
    images = make_synthetic(4, seed=0, split="test").x
    a, b = simulate(snn, images, 40), simulate(back, images, 40)
    for h in snn.graph.heads:
        np.testing.assert_array_equal(a.head_spikes[h], b.head_spikes[h])


def test_the_command_lines_convention_names_are_the_presets():
    from hwsim.model.nir_convention import PRESETS
    from hwsim.model.nir_presets import CONVENTION_NAMES

    assert tuple(PRESETS) == CONVENTION_NAMES


@pytest.mark.parametrize(
    "record", ['{"conv0_if": {"leak": "fast"}}', '{"conv0_if": {"tau": 2}}', "[1, 2", "[1]"]
)
def test_a_malformed_neurons_record_is_refused_naming_it(record):
    """hwsim's exports record each non-IF population's step in `metadata["neurons"]`; read
    under the file's convention, a record that is not a JSON object of `Neuron` fields is
    refused naming it (not skipped: the file says its neurons step otherwise)."""
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([4])),
        nir.Affine(np.eye(4, dtype=np.float32)[:2], np.zeros(2, np.float32)),
        nir.IF(r=np.ones(2), v_threshold=np.ones(2)),
        nir.Output(output_type=np.array([2])),
    )
    graph.metadata = {"convention": "hwsim", "neurons": record}
    with pytest.raises(NirError, match="the file's metadata 'neurons' is not hwsim's record"):
        import_graph(graph, input_shape=(4, 1, 1))
    import_graph(graph, input_shape=(4, 1, 1), convention="sinabs")  # another: unread
