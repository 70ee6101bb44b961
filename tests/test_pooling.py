"""Local pooling (issue 25 item 2): NIR's local AvgPool2d/SumPool2d read as convolutions
(hwsim.model.nir_pool) and simulated spike for spike against independent references: a torch
loop stepping NIR's nodes by hand (torch's own conv2d and avg_pool2d on the spike tensors),
sinabs and snntorch running their own pooled conv networks; the pooling layer's crossbar reads
counted by hand, and `hwsim map` / `estimate` on a pooled file.

Weights are multiples of 2^-5 and images of 2^-6, so every current is exact in any summation
order (the composed kernels too). Max pooling (no NIR node): the rule that reads a lone pooling
into IF neurons firing on any window spike as `Pool.MAX`, per convention, and the peers'
recipes against their own MaxPool2d (torch's max pooling of the spike tensor)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

nir = pytest.importorskip("nir")

from hwsim.cli.main import main  # noqa: E402
from hwsim.engine import BACKENDS, simulate  # noqa: E402
from hwsim.engine.core import ActivitySpec  # noqa: E402
from hwsim.model.data import make_synthetic  # noqa: E402
from hwsim.model.graph import FC_HEAD, LayerKind, Pool  # noqa: E402
from hwsim.model.nir_convention import PRESETS  # noqa: E402
from hwsim.model.nir_export import write_nir  # noqa: E402
from hwsim.model.nir_io import NirError, import_graph, read_nir  # noqa: E402
from hwsim.model.nir_pool import pooled_conv  # noqa: E402
from tests.test_peers_nir import (  # noqa: E402
    needs,
    run_sinabs,
    run_snntorch,
    run_stateful,
    scaled,
    spikes_as_hwsim,
)

torch.set_num_threads(1)

ARCH = "arch_configs/spikesim.yaml"
RNG = np.random.default_rng(7)


def dyadic(shape, sd: float) -> np.ndarray:
    return (np.round(RNG.normal(0, sd, shape) * 32) / 32).astype(np.float32)


def if_(*shape: int):
    return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape))


def conv(w: np.ndarray, b: np.ndarray, pad: int = 1):
    return nir.Conv2d(None, w, 1, pad, 1, 1, b)


def flatten(*shape: int):
    return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)


def pool(kind: str, k: int = 2, s: int = 2, p: int = 0):
    cls = nir.AvgPool2d if kind == "avg" else nir.SumPool2d
    return cls(np.array([k, k]), np.array([s, s]), np.array([p, p]))


W = {
    "a": (dyadic((4, 2, 3, 3), 0.6), dyadic(4, 0.05)),
    "c": (dyadic((6, 4, 3, 3), 0.3), dyadic(6, 0.05)),
    "d": (dyadic((6, 6, 3, 3), 0.5), dyadic(6, 0.05)),
    "e": (dyadic((10, 24), 1.0), np.zeros(10, np.float32)),
}


def pooled_graph():
    """Input (2, 32, 32) -> Conv2d a -> IF -> AvgPool 2x2 -> IF b (4, 16, 16) -> SumPool 2x2
    -> Conv2d c (padding 1) -> IF (6, 8, 8) -> Conv2d d -> AvgPool 2x2 -> IF (6, 4, 4) ->
    AvgPool 2x2 -> Flatten -> Affine e -> IF -> Output: a pooling alone, before a padded conv,
    after a conv and before an Affine, every IF at r = 1 and threshold 1."""
    (wa, ba), (wc, bc), (wd, bd), (we, be) = W["a"], W["c"], W["d"], W["e"]
    return nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([2, 32, 32])),
        conv(wa, ba), if_(4, 32, 32),
        pool("avg"), if_(4, 16, 16),
        pool("sum"), conv(wc, bc), if_(6, 8, 8),
        conv(wd, bd), pool("avg"), if_(6, 4, 4),
        pool("avg"), flatten(6, 2, 2), nir.Affine(we, be), if_(10),
        nir.Output(output_type=np.array([10])),
    )  # fmt: skip


def torch_oracle(x: np.ndarray, steps: int) -> np.ndarray:
    """The FC spikes (N, T, 10) of `pooled_graph` stepped by hand in float64: torch's conv2d,
    avg_pool2d (times 4 for the sum) on the spike tensors; each population reads the spikes
    its source fired one step earlier; V <- V + I, s = [V >= 1], V <- V - s; V0 = 0."""
    t = {k: (torch.from_numpy(w).double(), torch.from_numpy(b).double()) for k, (w, b) in W.items()}
    paths = [
        lambda s: F.conv2d(s, *t["a"], padding=1),
        lambda s: F.avg_pool2d(s, 2),
        lambda s: F.conv2d(F.avg_pool2d(s, 2) * 4, *t["c"], padding=1),
        lambda s: F.avg_pool2d(F.conv2d(s, *t["d"], padding=1), 2),
        lambda s: F.linear(F.avg_pool2d(s, 2).flatten(1), *t["e"]),
    ]
    xt = torch.from_numpy(x).double()
    shapes = [(4, 32, 32), (4, 16, 16), (6, 8, 8), (6, 4, 4), (10,)]
    v = [torch.zeros(len(x), *s, dtype=torch.float64) for s in shapes]
    fired = [torch.zeros_like(m) for m in v]
    head = np.zeros((len(x), steps, 10), np.uint8)
    for step in range(steps):
        emitted = list(fired)
        for j, path in enumerate(paths):
            v[j] = v[j] + path(xt if j == 0 else emitted[j - 1])
            fired[j] = (v[j] >= 1).double()
            v[j] = v[j] - fired[j]
        head[:, step] = emitted[-1].numpy().astype(np.uint8)
    return head


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_local_pooling_spikes_as_a_torch_loop_over_the_nir_nodes(backend):
    """The four pooling paths import as conv layers (the pooling alone: a 2x2 stride-2
    channel-diagonal conv of weight 1/4; a sum pooling then a padded 3x3 conv: 6x6 stride 2
    padding 2; a 3x3 conv then an average: 4x4 stride 2 padding 1, bias kept; an average then
    the Affine: the FC head's conv over the whole 4x4 map) and the FC spikes equal the torch
    loop's on 6 images x 30 steps, on both backends."""
    snn = import_graph(pooled_graph())
    geo = {g.name: (g.kind, g.kernel, g.stride, g.padding, g.out_shape) for g in snn.graph.layers}
    assert geo["avgpool2d"] == (LayerKind.CONV, (2, 2), 2, 0, (4, 16, 16))
    assert geo["conv2d_1"] == (LayerKind.CONV, (6, 6), 2, 2, (6, 8, 8))
    assert geo["conv2d_2"] == (LayerKind.CONV, (4, 4), 2, 1, (6, 4, 4))
    assert geo["affine"] == (LayerKind.CONV, (4, 4), 2, 0, (10, 1, 1))
    assert snn.graph.head_layers(FC_HEAD)[0].name == "affine"
    w = snn.weights["avgpool2d"].weight.numpy()
    np.testing.assert_array_equal(w, np.broadcast_to(np.eye(4)[:, :, None, None] / 4, (4, 4, 2, 2)))
    np.testing.assert_array_equal(snn.weights["conv2d_2"].bias.numpy(), W["d"][1])
    x = (np.random.default_rng(11).integers(0, 65, (6, 2, 32, 32)) / 64).astype(np.float32)
    steps = 30
    ours = simulate(snn, x, steps, backend=backend).head_spikes[FC_HEAD]
    theirs = torch_oracle(x, steps)
    assert theirs.sum() > 100
    np.testing.assert_array_equal(ours, theirs)


def test_a_pooled_network_exports_its_poolings_with_the_same_spikes(tmp_path):
    """The pooling alone between two IF nodes imports as a pooling layer (`Pool.AVG`) and
    exports as the AvgPool2d it was; a pooling composed with a weight node has no `pool` and
    exports as the Conv2d it simulates. Read back, the network has the same layers (pooling
    operations included) and FC spikes."""
    snn = import_graph(pooled_graph())
    assert {g.name: g.pool for g in snn.graph.layers if g.pool} == {"avgpool2d": Pool.AVG}
    graph = nir.read(write_nir(snn, tmp_path / "rt.nir"))
    kinds = {n: type(graph.nodes[n]).__name__ for n in ("avgpool2d", "conv2d_1", "conv2d_2")}
    assert kinds == {"avgpool2d": "AvgPool2d", "conv2d_1": "Conv2d", "conv2d_2": "Conv2d"}
    back = read_nir(tmp_path / "rt.nir")
    geo = [(g.name, g.kernel, g.stride, g.padding, g.pool) for g in back.graph.layers]
    assert geo == [(g.name, g.kernel, g.stride, g.padding, g.pool) for g in snn.graph.layers]
    x = (np.random.default_rng(12).integers(0, 65, (4, 2, 32, 32)) / 64).astype(np.float32)
    ours, theirs = simulate(snn, x, 20), simulate(back, x, 20)
    assert ours.head_spikes[FC_HEAD].sum() > 20
    np.testing.assert_array_equal(ours.head_spikes[FC_HEAD], theirs.head_spikes[FC_HEAD])


def test_a_composed_kernel_is_the_conv_then_the_pooling():
    """The composition on random float64 weights and a random map: conv (3x3, padding 1,
    bias) then a 2x2 average equals torch's conv2d then avg_pool2d, and a 3x3 sum pooling of
    stride 2 and padding 1 before a padded conv on a 9x9 map equals torch's; a 2x2 pooling of
    that odd map, whose last row no window reads, is refused before a padded conv."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(5, 3, 3, 3)).astype(np.float32).astype(np.float64)  # nir's float32
    b = rng.normal(size=5).astype(np.float32).astype(np.float64)
    nodes = {"c": conv(w, b), "p": pool("avg")}
    op = pooled_conv(("c", "p"), nodes, (3, 10, 10))
    xm = torch.from_numpy(rng.normal(size=(2, 3, 10, 10)))
    ref = F.avg_pool2d(F.conv2d(xm, torch.from_numpy(w), torch.from_numpy(b), padding=1), 2)
    got = F.conv2d(
        xm, torch.from_numpy(op.weight), torch.from_numpy(op.bias), op.stride, op.padding
    )
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    nodes = {"p": pool("sum", 3, 2, 1), "c": conv(w, np.zeros(5))}
    op = pooled_conv(("p", "c"), nodes, (3, 9, 9))
    xm = xm[:, :, :9, :9]
    ref = F.conv2d(F.avg_pool2d(xm, 3, 2, 1) * 9, torch.from_numpy(w), padding=1)
    got = F.conv2d(xm, torch.from_numpy(op.weight), None, op.stride, op.padding)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(NirError, match="Conv2d 'c': its padding would read outputs"):
        pooled_conv(("p", "c"), {"p": pool("sum"), "c": conv(w, np.zeros(5))}, (3, 9, 9))


def test_a_local_pooling_with_two_weight_nodes_is_refused_naming_the_path():
    """Only poolings and one weight node compose into one conv before the neurons."""
    g = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([2, 4, 4])),
        conv(W["a"][0], W["a"][1]), if_(4, 4, 4),
        pool("avg"), conv(np.ones((4, 4, 1, 1), np.float32), np.zeros(4), 0), flatten(4, 2, 2),
        nir.Affine(np.ones((10, 16), np.float32), np.zeros(10, np.float32)), if_(10),
        nir.Output(output_type=np.array([10])),
    )  # fmt: skip
    path = "AvgPool2d 'avgpool2d' -> Conv2d 'conv2d_1' -> Flatten 'flatten' -> Affine"
    with pytest.raises(NirError, match=path):
        import_graph(g)


def test_the_pooling_layer_pe_operations_by_hand():
    """Input (3, 4, 4) -> SumPool 2x2 -> IF (3, 2, 2) -> Flatten -> Affine -> IF: the pooling
    is a 3 -> 3 conv with a 2x2 kernel of stride 2, so on 128 x 128 crossbars (one row group,
    one column block) each output position reads one crossbar per kernel position with a
    nonzero input: the image's 4 nonzero pixels at 3 distinct positions give 3 reads per step,
    4 input spikes, 2 windows, and the dense count is 2 x 2 positions x 4 kernel positions =
    16."""
    g = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([3, 4, 4])),
        pool("sum"), if_(3, 2, 2),
        flatten(3, 2, 2), nir.Affine(np.ones((10, 12)), np.zeros(10)),
        if_(10), nir.Output(output_type=np.array([10])),
    )  # fmt: skip
    snn = import_graph(g)
    x = np.zeros((1, 3, 4, 4), np.float32)
    x[0, 0, 0, 0] = x[0, 2, 0, 0] = 0.5  # position (0, 0), window (0, 0)
    x[0, 1, 1, 1] = 0.25  # position (1, 1), window (0, 0)
    x[0, 2, 3, 2] = 1.0  # position (3, 2), window (1, 1)
    steps = 5
    act = simulate(snn, x, steps, activity=ActivitySpec(128, 128)).activity
    i = act.names.index("sumpool2d")
    assert act.dense_pe_ops[i] == 16 and act.dense_windows[i] == 4
    np.testing.assert_array_equal(act.in_spikes[:, i], 4)
    np.testing.assert_array_equal(act.active_pe_ops[:, i], 3)
    np.testing.assert_array_equal(act.active_windows[:, i], 2)


def test_hwsim_maps_and_estimates_an_imported_pooled_network(tmp_path, capsys):
    """`hwsim map` and `hwsim estimate` on the pooled graph as a file: both succeed and list
    the pooling layer, mapped to the tile's pooling unit (no crossbar, no PE operation: it
    imports with `pool` set) and charged there."""
    path = tmp_path / "pooled.nir"
    nir.write(path, pooled_graph())
    out = tmp_path / "m"
    assert main(["map", "--arch", ARCH, "--model", str(path), "--out", str(out)]) == 0
    assert main(["estimate", "--arch", ARCH, "--model", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"avgpool2d +conv +0 +0 +0 ", text)  # rows, cols, crossbars
    assert re.search(r"avgpool2d +0 +[\d,.]+ +[\d.]+% +pooling", text)


def peer_input(n: int, dyadic_x: bool) -> np.ndarray:
    x = make_synthetic(n, seed=0, split="test").x
    return (np.round(x * 64) / 64).astype(np.float32) if dyadic_x else x


@needs("sinabs", "nirtorch")
@pytest.mark.parametrize("dyadic_w", [True, False])
def test_a_sinabs_conv_network_with_local_sum_pooling_spikes_as_sinabs(dyadic_w):
    """sinabs' own export of Conv2d-IAF-SumPool2d(2)-Conv2d-IAF-Conv2d-SumPool2d(2)-IAF-
    SumPool2d(2)-Flatten-Linear-IAF on 16x16 images (SingleSpike, no biases): the three local
    poolings fold (before a padded conv, after a conv, before the Linear) and the FC spikes equal
    sinabs' (shifted by hwsim's delays) on 8 images x 40 steps, dyadic weights and images;
    on float weights and images the measured difference was 0 of 3,200 (image, step, class)
    entries (the composed kernels sum in another order), so equality is asserted too."""
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    n, steps = 8, 40

    def iaf():
        return sl.IAFSqueeze(batch_size=n, spike_fn=SingleSpike)

    torch.manual_seed(4)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), iaf(), sl.SumPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1, bias=False), iaf(),
        torch.nn.Conv2d(8, 8, 3, padding=1, bias=False), sl.SumPool2d(2), iaf(),
        sl.SumPool2d(2), torch.nn.Flatten(), torch.nn.Linear(32, 10, bias=False), iaf(),
    )  # fmt: skip
    scaled(net, 1.5, 32 if dyadic_w else None)
    x = peer_input(n, dyadic_w)
    snn = import_graph(sinabs.to_nir(net, torch.zeros(n, 1, 16, 16)))
    kernels = [(g.kernel, g.stride, g.padding) for g in snn.graph.layers]
    assert kernels == [((3, 3), 1, 1), ((6, 6), 2, 2), ((4, 4), 2, 1), ((4, 4), 2, 0)]
    with torch.no_grad():
        xt = torch.from_numpy(x)[:, None].repeat(1, steps, 1, 1, 1).flatten(0, 1)
        theirs = net(xt).reshape(n, steps, 10).numpy()
    ours = spikes_as_hwsim(snn, x, steps)
    assert theirs.sum() > 100
    np.testing.assert_array_equal(ours, theirs)


@needs("snntorch", "nirtorch")
@pytest.mark.parametrize("dyadic_w", [True, False])
def test_a_snntorch_conv_network_with_local_average_pooling_spikes_as_snntorch(dyadic_w):
    """snntorch's export of Conv2d-AvgPool2d(2)-Leaky(0.75)-Conv2d-AvgPool2d(2)-Leaky(0.875)-
    Flatten-Linear-Leaky(0.5) (snntorch's "conv, pool, neuron" order; no biases) under its
    convention: each conv and its average pooling fold into one conv, and the FC spikes equal
    snntorch's own run on 8 images x 60 steps, dyadic weights and images; on float weights the
    measured difference was 0 of 4,800 entries, so equality is asserted too."""
    import snntorch as snn_t
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    def leaky(shape, beta, **kw):
        return snn_t.Leaky(
            beta=torch.full(shape, beta), threshold=torch.full(shape, 1.0), init_hidden=True, **kw
        )

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), torch.nn.AvgPool2d(2),
        leaky((4, 8, 8), 0.75),
        torch.nn.Conv2d(4, 8, 3, padding=1, bias=False), torch.nn.AvgPool2d(2),
        leaky((8, 4, 4), 0.875),
        torch.nn.Flatten(), torch.nn.Linear(128, 10, bias=False), leaky((10,), 0.5, output=True),
    )  # fmt: skip
    scaled(net, 8.0, 32 if dyadic_w else None)
    n, steps = 8, 60
    x = peer_input(n, dyadic_w)
    graph = export_to_nir(net, torch.rand(1, 1, 16, 16), ignore_dims=[0])
    snn = import_graph(graph, convention="snntorch")
    kernels = [(g.kernel, g.stride, g.padding) for g in snn.graph.layers]
    assert kernels[:2] == [((4, 4), 2, 1), ((4, 4), 2, 1)]
    utils.reset(net)
    outs = []
    with torch.no_grad():
        for _ in range(steps):
            outs.append(net(torch.from_numpy(x))[0].numpy().copy())
    theirs = np.stack(outs, 1)
    ours = spikes_as_hwsim(snn, x, steps)
    assert theirs.sum() > 100
    np.testing.assert_array_equal(ours, theirs)


# --------------------------------------------------------------------------- max pooling (issue 25)


def max_recipe_graph(convention: str, threshold: float, kind: str = "SumPool2d"):
    """Input (2, 8, 8) -> Conv2d -> IF -> a 2x2 pooling `kind` -> IF(threshold, v_reset 0,
    r = the convention's if_r) -> Flatten -> Affine -> IF -> Output."""
    r = PRESETS[convention].if_r

    def if_(*shape, th=1.0):
        return nir.IF(r=np.full(shape, r), v_threshold=np.full(shape, th), v_reset=np.zeros(shape))

    pool = getattr(nir, kind)(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))
    w = np.ones((3, 2, 3, 3), np.float32) / 4
    return nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([2, 8, 8])),
        nir.Conv2d(None, w, 1, 1, 1, 1, np.zeros(3, np.float32)), if_(3, 8, 8),
        pool, if_(3, 4, 4, th=threshold),
        nir.Flatten(input_type={"input": np.array([3, 4, 4])}, start_dim=0),
        nir.Affine(np.ones((10, 48), np.float32) / 8, np.zeros(10, np.float32)), if_(10),
        nir.Output(output_type=np.array([10])),
    )  # fmt: skip


@pytest.mark.parametrize(
    "convention,threshold,kind,pooled",
    [
        ("norse", 0.5, "SumPool2d", "max"),  # V > theta: threshold in (0, 1)
        ("norse", 0.75, "SumPool2d", "max"),
        ("norse", 1.0, "SumPool2d", "sum"),  # two spikes needed: not the OR
        ("spikingjelly", 1.0, "SumPool2d", "max"),  # V >= theta: threshold in (0, 1]
        ("spikingjelly", 0.25, "AvgPool2d", "max"),  # the average's step is 1 / 4
        ("spikingjelly", 1.0, "AvgPool2d", "avg"),
        ("spikingjelly", 0.5, "AvgPool2d", None),  # its own threshold: folded, a diagonal conv
        ("sinabs", 1.0, "SumPool2d", "sum"),  # v_reset 0 subtracts under sinabs' convention
        ("hwsim", 1.0, "SumPool2d", "sum"),
    ],
)
def test_the_max_pooling_rule_on_a_lone_pooling_into_if_neurons(
    convention, threshold, kind, pooled
):
    """A lone local pooling into IF neurons resetting to 0 from 0 (r = if_r, no other input) is
    a max pooling when one input spike reaches the threshold (its OR range); otherwise, and
    where v_reset = 0 means a subtraction, it stays the average or sum, unless a threshold of
    its own (folded into its weight) makes it a plain channel-diagonal conv."""
    snn = import_graph(max_recipe_graph(convention, threshold, kind), convention=convention)
    layer = snn.graph.layers[1]
    assert layer.pool == pooled
    if pooled == "max":
        assert layer.neuron.reset_to == 0 == layer.neuron.v_init and not layer.neuron.strict
        w = snn.weights[layer.name].weight.numpy()
        theta = snn.params.threshold
        np.testing.assert_array_equal(w, theta * np.eye(3)[:, :, None, None] * np.ones((2, 2)))


@needs("spikingjelly", "nirtorch")
@pytest.mark.parametrize("dyadic", [True, False])
def test_a_spikingjelly_max_pooling_written_as_the_recipe_spikes_as_max_pool2d(dyadic):
    """spikingjelly has no NIR max pooling; its recipe AvgPool2d(2) -> IFNode(v_threshold =
    1 / 4, v_reset = 0) exports, imports under --convention spikingjelly as `Pool.MAX`, and
    hwsim's FC spikes equal spikingjelly's own run of the network with MaxPool2d(2) in its
    place (torch's max_pool2d on the spike tensor; shifted by hwsim's delays), as does
    spikingjelly's run of the recipe itself."""
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange.to_nir import export_to_nir

    def net(recipe: bool):
        torch.manual_seed(0)
        pooling = (
            [layer.AvgPool2d(2), neuron.IFNode(v_threshold=0.25, v_reset=0.0)]
            if recipe
            else [layer.MaxPool2d(2)]
        )
        module = torch.nn.Sequential(
            layer.Conv2d(1, 4, 3, padding=1, bias=False), neuron.IFNode(v_reset=0.0),
            *pooling,
            layer.Conv2d(4, 8, 3, padding=1, bias=False), neuron.IFNode(v_reset=0.0),
            layer.Flatten(), layer.Linear(512, 10, bias=False), neuron.IFNode(v_reset=0.0),
        )  # fmt: skip
        scaled(module, 4.0, 256 if dyadic else None)
        return module

    recipe, reference = net(True), net(False)
    snn = import_graph(export_to_nir(recipe, torch.rand(1, 1, 16, 16)), convention="spikingjelly")
    pools = [la for la in snn.graph.layers if la.pool is not None]
    assert [la.pool for la in pools] == [Pool.MAX]
    n, steps = 8, 40
    x = make_synthetic(n, seed=0, split="test").x
    if dyadic:
        x = (np.round(x * 64) / 64).astype(np.float32)
    functional.reset_net(reference)
    theirs = run_stateful(reference, x, steps)
    functional.reset_net(recipe)
    np.testing.assert_array_equal(run_stateful(recipe, x, steps), theirs)
    assert theirs.sum() > 100
    np.testing.assert_array_equal(spikes_as_hwsim(snn, x, steps), theirs)


@needs("sinabs", "snntorch", "nirtorch")
@pytest.mark.parametrize("peer", ["sinabs", "snntorch"])
def test_the_sinabs_and_snntorch_recipes_pool_as_max_in_the_peer_but_export_as_sums(peer):
    """In the peer itself, SumPool2d(2) -> IAF(threshold 1, MembraneReset) (sinabs) and
    AvgPool2d(2) -> Leaky(threshold 1 / 8, reset "zero") (snntorch) spike as MaxPool2d(2) in
    their place; their exporters do not write that reset (sinabs' IF has no reset mode,
    snntorch's LIF v_reset 0 reads as its subtraction), so hwsim reads no max pooling: a sum
    pooling (sinabs), a channel-diagonal conv (snntorch: its threshold 1 / 8, folded into the
    weight, is no average's) (docs/nir.md, "Max pooling: the recipe")."""
    n, steps = 8, 30
    x = make_synthetic(n, seed=0, split="test").x

    if peer == "sinabs":
        import sinabs
        import sinabs.layers as sl
        from sinabs.activation import MembraneReset, SingleSpike

        def node(_shape, **kw):
            return sl.IAFSqueeze(batch_size=n, spike_fn=SingleSpike, **kw)

        recipe = [sl.SumPool2d(2), node((4, 8, 8), reset_fn=MembraneReset())]
        run = lambda net: run_sinabs(net, x, steps)[0]  # noqa: E731
    else:
        import snntorch as snn
        from snntorch.export_nir import export_to_nir

        def node(shape, threshold: float = 1.0, **kw):  # per-neuron values: nir's type check
            beta, thr = torch.full(shape, 0.75), torch.full(shape, threshold)
            return snn.Leaky(beta=beta, threshold=thr, init_hidden=True, **kw)

        recipe = [torch.nn.AvgPool2d(2), node((4, 8, 8), 0.125, reset_mechanism="zero")]
        run = lambda net: run_snntorch(net, x, steps)  # noqa: E731

    def net(pooling):
        torch.manual_seed(0)
        last = node((10,), output=True) if peer == "snntorch" else node((10,))
        module = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), node((4, 16, 16)), *pooling,
            torch.nn.Conv2d(4, 8, 3, padding=1, bias=False), node((8, 8, 8)),
            torch.nn.Flatten(), torch.nn.Linear(512, 10, bias=False), last,
        )  # fmt: skip
        scaled(module, 4.0, 256)
        return module

    with_recipe = net(recipe)
    theirs = run(with_recipe)
    assert theirs.sum() > 50
    np.testing.assert_array_equal(theirs, run(net([torch.nn.MaxPool2d(2)])))
    if peer == "sinabs":
        graph = sinabs.to_nir(with_recipe, torch.zeros(n, 1, 16, 16))
    else:
        graph = export_to_nir(with_recipe, torch.rand(1, 1, 16, 16), ignore_dims=[0])
    pools = [la.pool for la in import_graph(graph, convention=peer).graph.layers if la.pool]
    assert pools == ([Pool.SUM] if peer == "sinabs" else [])


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_the_engine_s_max_pooling_is_torch_s_max_pool2d_of_the_spikes(backend):
    """Input (2, 32, 32) -> Conv2d a -> IF -> SumPool 2x2 -> IF(threshold 1, v_reset 0) ->
    Flatten -> Affine -> IF, under --convention spikingjelly (every IF resets to 0, V >=
    theta, r = 1e4): the pooling imports as `Pool.MAX` (the second, a sum into neurons at 4,
    as the 2x2 average: 4 spikes needed), and the FC spikes on both backends
    equal a torch loop where that population is torch's max_pool2d of the conv's spikes
    (no membrane: the oracle is the max itself), the others V <- V + I, s = [V >= 1], V <- 0
    at a spike, each reading its source's spikes of one step earlier."""
    r = PRESETS["spikingjelly"].if_r
    wa, ba = W["a"]
    we = (np.round(np.random.default_rng(14).normal(0, 0.5, (10, 256)) * 32) / 32).astype(
        np.float32
    )

    def if_r(*shape, th=1.0):
        return nir.IF(r=np.full(shape, r), v_threshold=np.full(shape, th), v_reset=np.zeros(shape))

    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([2, 32, 32])),
        conv(wa, ba), if_r(4, 32, 32),
        pool("sum"), if_r(4, 16, 16),
        pool("sum"), if_r(4, 8, 8, th=4.0),
        flatten(4, 8, 8), nir.Affine(we, np.zeros(10, np.float32)), if_r(10),
        nir.Output(output_type=np.array([10])),
    )  # fmt: skip
    snn = import_graph(graph, convention="spikingjelly")
    assert [la.pool for la in snn.graph.layers] == [None, Pool.MAX, Pool.AVG, None]
    x = (np.random.default_rng(13).integers(0, 65, (6, 2, 32, 32)) / 64).astype(np.float32)
    steps = 30
    t = {k: torch.from_numpy(v).double() for k, v in {"wa": wa, "ba": ba, "we": we}.items()}
    paths = [
        lambda s: F.conv2d(s, t["wa"], t["ba"], padding=1),
        None,  # the max pooling
        lambda s: F.avg_pool2d(s, 2) * 4,
        lambda s: F.linear(s.flatten(1), t["we"]),
    ]
    xt = torch.from_numpy(x).double()
    v = [torch.zeros(len(x), *s, dtype=torch.float64) for s in [(4, 32, 32), (4, 16, 16),
         (4, 8, 8), (10,)]]  # fmt: skip
    thresholds = [1.0, None, 4.0, 1.0]
    fired = [torch.zeros_like(m) for m in v]
    theirs = np.zeros((len(x), steps, 10), np.uint8)
    for step in range(steps):
        emitted = list(fired)
        for j, path in enumerate(paths):
            source = xt if j == 0 else emitted[j - 1]
            if path is None:
                fired[j] = F.max_pool2d(source, 2)
                continue
            v[j] = v[j] + path(source)
            fired[j] = (v[j] >= thresholds[j]).double()
            v[j] = v[j] * (1 - fired[j])
        theirs[:, step] = emitted[-1].numpy().astype(np.uint8)
    ours = simulate(snn, x, steps, backend=backend).head_spikes[FC_HEAD]
    assert theirs.sum() > 100
    np.testing.assert_array_equal(ours, theirs)
