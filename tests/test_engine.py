"""The IF engine against a plain step-by-step oracle and against hand-computed spike trains.

The oracle below is the specification: a float64 numpy loop over timesteps and layers that
follows the equations of hwsim.engine / model.coding literally (explicit per-kernel-offset conv
sums, no batching tricks, no event lists). Every backend must equal it spike for spike on
networks with dyadic weights (multiples of 2^-8) and inputs (multiples of 2^-6), where every
summation order is exact (DESIGN.md, "IF engine").
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
import torch

from hwsim.engine import BACKENDS, ActivitySpec, SimResult, core, layer_names, simulate, state_bytes
from hwsim.engine import _kernels as K
from hwsim.engine import _llvm as L
from hwsim.engine._llvm import UnsupportedDependency
from hwsim.engine.backends import NumbaBackend, activity_of, analog_current, table_rows
from hwsim.engine.plan import _kernel_major, build_plan
from hwsim.errors import HwsimError, InputError
from hwsim.hw.arch import MappingStyle, load_arch
from hwsim.hw.geometry import active_pe_operations, layer_patches
from hwsim.model.coding import (
    DirectCoding,
    InputCoding,
    PoissonCoding,
    WeightedSpikeCoding,
    parse_coding,
)
from hwsim.model.convert import ConversionParams, SpikingNetwork, Weights, convert
from hwsim.model.data import make_synthetic
from hwsim.model.graph import FC_HEAD, Layer, LayerGraph, LayerKind, Role
from hwsim.model.nets import Checkpoint, HeadedNet
from hwsim.model.netspec import NetSpec

torch.set_num_threads(1)

# ---------------------------------------------------------------------------------------------
# The oracle


def conv_ref(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Cross-correlation of x (N, C, H, W) with w (O, C, kh, kw), zero padding, float64:
    one plain sum over input channels per kernel offset."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, o, ho, wo))
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[
                :,
                :,
                ky : ky + stride * (ho - 1) + 1 : stride,
                kx : kx + stride * (wo - 1) + 1 : stride,
            ]
            out += np.einsum("oc,nchw->nohw", w[:, :, ky, kx], patch)
    return out


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float64)


def oracle(
    snn: SpikingNetwork,
    images: np.ndarray,
    timesteps: int,
    coding: InputCoding | None = None,
    synchronous: bool = False,
) -> dict:
    """Step-by-step reference simulation.

    Layer j at timestep t: I = sum over its inputs of w_src * (W x_src) + omega_j(t) beta_j,
    V += I, fire where V >= omega_j(t) theta, subtract omega_j(t) theta; idle (no update, no
    spikes) where omega_j(t) = 0. x_src is what the source emits at t: the spikes it fired at
    t-1 (the input: the coded input of t, or the analog image). w_src is the source's omega when
    it fired them (the input's: input_omega(t)). beta_j = float32(float32(sum of its biases) *
    bias_scale). `synchronous=True` is the weighted-spikes paper's model instead: no delays
    (x_src = the spikes fired at t), every layer at depth 0.
    Returns head spikes (as emitted), per-layer fired counts, each layer's depth, and every
    connection's input map at every step (None where its layer was idle).
    """
    coding = coding or DirectCoding()
    th, v0 = snn.params.threshold, snn.params.v0
    ids = np.arange(len(images))
    # spiking layers (populations, in the order of their sending layer), each with its inputs
    # [(src, kind, (weights, layer), connection name)]; depth: one more than its deepest source
    graph = snn.graph
    order = [g.population for g in graph.layers if g.sends_spikes]
    index = {p: j for j, p in enumerate(order)}
    layers: list[dict] = [{"inputs": [], "depth": 0} for _ in order]
    for g in graph.layers:
        j = index[g.population]
        src = index[graph.layer(g.inputs[0]).population] if g.inputs else -1
        kind = {LayerKind.CONV: "conv", LayerKind.GAP: "gap", LayerKind.LINEAR: "linear"}[g.kind]
        layers[j]["inputs"].append((src, kind, (snn.weights.get(g.name), g), g.name))
        src_depth = layers[src]["depth"] if src >= 0 else -1
        layers[j]["depth"] = max(layers[j]["depth"], src_depth + 1)
    heads = {h: index[graph.head_output(h).population] for h in graph.heads}
    for j, ly in enumerate(layers):
        ly["output"] = j in heads.values()
        biases = [m[0].bias.numpy() for _, kind, m, _ in ly["inputs"] if kind != "gap"]
        b = np.float32(0) if not biases else np.sum(biases, axis=0, dtype=np.float32)
        ly["beta"] = np.float32(np.float64(b) * coding.bias_scale).astype(np.float64)
        if synchronous:
            ly["depth"] = 0

    def omega(t: int, j: int) -> float:
        if t < 0:
            return 0.0
        ly = layers[j]
        return float(coding.layer_omega(np.array([t]), ly["depth"], ly["output"])[0])

    n_layers = len(layers)
    v: list[np.ndarray | None] = [None] * n_layers
    fired: list[np.ndarray | None] = [None] * n_layers
    layer_spikes = np.zeros((timesteps, n_layers), np.int64)
    head_spikes = {h: np.zeros((len(images), timesteps, graph.classes), np.uint8) for h in heads}
    inputs: dict[str, list[np.ndarray | None]] = {
        name: [] for ly in layers for (_, _, _, name) in ly["inputs"]
    }
    for t in range(timesteps):
        if coding.analog:
            x_in = images.astype(np.float64)
        else:
            x_in = coding.input_spikes(images, ids, t, t + 1)[:, 0].astype(np.float64)
        w_in = float(coding.input_omega(np.array([t]))[0])
        emitted = list(fired)  # fired at t-1, emitted at t
        for j, ly in enumerate(layers):
            om = omega(t, j)
            current = 0.0
            for s, kind, m, name in ly["inputs"]:
                if s < 0:
                    x, w_src = x_in, w_in
                elif synchronous:
                    x, w_src = fired[s], omega(t, s)  # fired at t, this very step
                else:
                    x = emitted[s] if emitted[s] is not None else np.zeros_like(fired[s])
                    w_src = omega(t - 1, s)
                inputs[name].append(x if om != 0 else None)
                wts, g = m
                if kind == "conv":
                    y = conv_ref(x, _f64(wts.weight), g.stride, g.padding)
                elif kind == "gap":
                    y = x.mean(axis=(2, 3))
                else:
                    y = x @ _f64(wts.weight).T
                current = current + w_src * y
            beta = ly["beta"]
            current = current + om * (beta[None, :, None, None] if np.ndim(current) == 4 else beta)
            if v[j] is None:
                v[j] = np.full(np.shape(current), v0, np.float64)
            if om == 0:
                fired[j] = np.zeros_like(v[j])
            else:
                v[j] = v[j] + current
                f = v[j] >= om * th
                v[j] = v[j] - om * th * f
                fired[j] = f.astype(np.float64)
            layer_spikes[t, j] = int(fired[j].sum())
        for h, j in heads.items():
            e = emitted[j] if emitted[j] is not None else np.zeros_like(fired[j])
            head_spikes[h][:, t] = e.astype(np.uint8)
    return {
        "head_spikes": head_spikes,
        "layer_spikes": layer_spikes,
        "depths": [ly["depth"] for ly in layers],
        "inputs": inputs,
    }


# ---------------------------------------------------------------------------------------------
# Networks


def _q(t: torch.Tensor, unit: float) -> torch.Tensor:
    return (torch.round(t.double() / unit) * unit).float()


def dyadic(snn: SpikingNetwork, bias_unit: float = 2.0**-8) -> SpikingNetwork:
    """`snn` with weights rounded to multiples of 2^-8 and biases to multiples of `bias_unit`."""

    return snn.map_weights(lambda _, w: Weights(_q(w.weight, 2.0**-8), _q(w.bias, bias_unit)))


def random_net(
    name: str,
    seed: int = 0,
    ics: tuple[int, ...] = (2,),
    shape: tuple[int, int, int] = (1, 16, 16),
    width: float = 1 / 16,
) -> SpikingNetwork:
    """A randomly initialised network of `width` on inputs of `shape` (BN statistics from a
    few batches), converted."""
    torch.manual_seed(seed)
    spec = NetSpec(name, width, shape, 10, ics)
    net = HeadedNet(spec)
    data = make_synthetic(64, shape, seed=seed)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.from_numpy(data.x))
    ckpt = Checkpoint(spec, net.state_dict(), {"name": "synthetic"}, {})
    return convert(ckpt, data, ConversionParams(max_images=64))


def dyadic_images(n: int, seed: int = 1) -> np.ndarray:
    x = make_synthetic(n, seed=seed, split="test").x
    return (np.round(x * 64) / 64).astype(np.float32)


@pytest.fixture(scope="module")
def nets(tiny_checkpoint) -> dict[str, SpikingNetwork]:
    ckpt, _ = tiny_checkpoint
    trained = convert(ckpt, make_synthetic(128), ConversionParams(max_images=128))
    return {
        "vgg11-trained": dyadic(trained),
        "vgg11-random": dyadic(random_net("vgg11", seed=3, ics=(1, 4))),
        "resnet18-random": dyadic(random_net("resnet18", seed=4, ics=(3,))),
        "vgg11-float": trained,
    }


def assert_same(result: SimResult, ref: dict) -> None:
    """Spike for spike: every head's output spikes and every layer's spike count per step."""
    np.testing.assert_array_equal(result.layer_spikes, ref["layer_spikes"])
    assert set(result.head_spikes) == set(ref["head_spikes"])
    for h, s in ref["head_spikes"].items():
        assert result.head_spikes[h].dtype == np.uint8
        np.testing.assert_array_equal(result.head_spikes[h], s)


# ---------------------------------------------------------------------------------------------
# Hand-computed tiny network


def hand_conv(name, c_in, c_out, hw, inputs, population, role=Role.BACKBONE) -> Layer:
    """A 1x1 stride-1 conv layer of a hand-built graph."""
    return Layer(
        name,
        LayerKind.CONV,
        role,
        (c_in, hw, hw),
        (c_out, hw, hw),
        (1, 1),
        1,
        0,
        inputs,
        population,
        sends_spikes=role is not Role.SKIP,
        block=0,
    )


def fc_head(tap: str, c: int, hw: int, classes: int) -> list[Layer]:
    """GAP + Linear layers of an FC head on `tap` (c channels, hw x hw map)."""
    gap = Layer(
        "fc.gap", LayerKind.GAP, Role.FC_HEAD, (c, hw, hw), (c, 1, 1), (hw, hw), 1, 0,
        (tap,), "fc.gap", head=FC_HEAD,
    )  # fmt: skip
    linear = Layer(
        "fc.linear", LayerKind.LINEAR, Role.FC_HEAD, (c, 1, 1), (classes, 1, 1), (1, 1), 1, 0,
        ("fc.gap",), "fc.linear", head=FC_HEAD,
    )  # fmt: skip
    return [gap, linear]


def hand_network(layers: list[Layer], input_shape, weights: dict) -> SpikingNetwork:
    graph = LayerGraph(tuple(layers), input_shape, layers[-1].out_channels)
    spec = NetSpec("vgg11", 1 / 16, input_shape, graph.classes)
    w = {name: Weights(torch.tensor(wb[0]), torch.tensor(wb[1])) for name, wb in weights.items()}
    return SpikingNetwork(spec, graph, w, ConversionParams(), ())


def tiny_network() -> SpikingNetwork:
    """1x2x2 input -> 1x1 conv with 2 channels -> FC head (GAP + Linear 2 -> 2)."""
    layers = [hand_conv("conv0", 1, 2, 2, (), "conv0"), *fc_head("conv0", 2, 2, 2)]
    weights = {
        "conv0": ([[[[1.0]]], [[[0.5]]]], [0.0, 0.25]),
        "fc.linear": ([[1.0, 0.0], [0.25, 0.5]], [0.0, 0.125]),
    }
    return hand_network(layers, (1, 2, 2), weights)


TINY_X = np.array([[[[0.5, 0.25], [0.75, 1.0]]]], np.float32)
# Channel A gets x, channel B 0.5 x + 0.25; V >= 1 fires and subtracts 1 (V0 = 0).
#   A 0.5 : V .5 1 .5 1 ...            fires at t = 1, 3, 5, 7
#   A 0.25: V .25 .5 .75 1 ...         fires at t = 3, 7
#   A 0.75: V .75 1.5 1.25 1 .75 ...   fires at t = 1, 2, 3, 5, 6, 7
#   A 1.0 :                            fires at every t
#   B 0.5 :                            fires at t = 1, 3, 5, 7
#   B .375: V .375 .75 1.125 .5 .875 1.25 .625 1  fires at t = 2, 5, 7
#   B .625: V .625 1.25 .875 1.5 1.125 .75 1.375 1 fires at t = 1, 3, 4, 6, 7
#   B 0.75:                            fires at t = 1, 2, 3, 5, 6, 7
TINY_CONV_FIRED = [1, 6, 4, 7, 2, 6, 4, 8]
# Fired per channel: A 1 3 2 4 1 3 2 4, B 0 3 2 3 1 3 2 4. The GAP layer gets at t the mean of
# what conv fired at t-1: A 0 .25 .75 .5 1 .25 .75 .5 -> V 0 .25 1 .5 1.5 .75 1.5 1 fires 2,4,6,7
#                        B 0 0 .75 .5 .75 .25 .75 .5 -> V 0 0 .75 1.25 1 .25 1 .5 fires 3,4,6
TINY_GAP_FIRED = [0, 0, 1, 1, 2, 0, 2, 1]
# Linear gets at t what GAP fired at t-1: gA at 3, 5, 7; gB at 4, 5, 7.
#   class 0: I = gA          -> V reaches 1 at t = 3, 5, 7: fires 3, 5, 7
#   class 1: I = .25 gA + .5 gB + .125: .125 .125 .125 .375 .625 .875 .125 .875
#            V .125 .25 .375 .75 1.375 1.25 .375 1.25 -> fires 4, 5, 7
TINY_LINEAR_FIRED = [0, 0, 0, 1, 1, 2, 0, 2]
# The head emits at t what Linear fired at t-1.
TINY_HEAD = np.array([[0, 0, 0, 0, 1, 0, 1, 0], [0, 0, 0, 0, 0, 1, 1, 0]], np.uint8).T


@pytest.mark.parametrize("backend", ["oracle", *BACKENDS])
def test_hand_computed_tiny_network(backend):
    snn = tiny_network()
    if backend == "oracle":
        r = oracle(snn, TINY_X, 8)
        spikes, heads = r["layer_spikes"], r["head_spikes"]
    else:
        res = simulate(snn, TINY_X, 8, backend=backend)
        spikes, heads = res.layer_spikes, res.head_spikes
        assert res.layer_names == ("conv0", "fc.gap", "fc.linear")
        np.testing.assert_array_equal(res.layer_neurons, [8, 2, 2])
    np.testing.assert_array_equal(spikes[:, 0], TINY_CONV_FIRED)
    np.testing.assert_array_equal(spikes[:, 1], TINY_GAP_FIRED)
    np.testing.assert_array_equal(spikes[:, 2], TINY_LINEAR_FIRED)
    np.testing.assert_array_equal(heads[FC_HEAD][0], TINY_HEAD)


def test_residual_join_timing():
    """One residual block, 1x1 convs, 1 channel: conv1 = 0.5 x, skip = 0.25 x, conv2 = 1.0.

    x = 1: conv1 V .5 1 ... fires at t = 1, 3, 5; the join gets skip 0.25 every step plus
    conv1's spikes of t-1 (at t = 2, 4, 6): I = .25 .25 1.25 .25 1.25 .25 1.25
    -> V .25 .5 1.75->.75 1 ->0 1.25->.25 .5 1.75->.75: fires at t = 2, 3, 4, 6."""
    layers = [
        hand_conv("skip", 1, 1, 1, (), "join", Role.SKIP),
        hand_conv("conv1", 1, 1, 1, (), "conv1"),
        hand_conv("conv2", 1, 1, 1, ("conv1",), "join"),
        *fc_head("conv2", 1, 1, 2),
    ]
    weights = {
        name: ([[[[w]]]], [0.0]) for name, w in (("conv1", 0.5), ("conv2", 1.0), ("skip", 0.25))
    }
    weights["fc.linear"] = ([[1.0], [1.0]], [0.0, 0.0])
    snn = hand_network(layers, (1, 1, 1), weights)
    x = np.ones((1, 1, 1, 1), np.float32)
    expected_conv1 = [0, 1, 0, 1, 0, 1, 0]
    expected_join = [0, 0, 1, 1, 1, 0, 1]
    for r in (
        oracle(snn, x, 7)["layer_spikes"],
        *(simulate(snn, x, 7, backend=b).layer_spikes for b in BACKENDS),
    ):
        np.testing.assert_array_equal(r[:, 0], expected_conv1)
        np.testing.assert_array_equal(r[:, 1], expected_join)


# ---------------------------------------------------------------------------------------------
# Engine == oracle, spike for spike


DYADIC_NETS = ["vgg11-trained", "vgg11-random", "resnet18-random"]


@pytest.mark.parametrize("name", DYADIC_NETS)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_direct_coding_matches_oracle(nets, name, backend):
    snn, x = nets[name], dyadic_images(3)
    ref = oracle(snn, x, 24)
    assert ref["layer_spikes"].sum() > 1000  # the network is active, the test can fail
    res = simulate(snn, x, 24, backend=backend, batch_size=2, time_chunk=10)
    assert res.layer_names == layer_names(snn)
    assert_same(res, ref)


@pytest.mark.parametrize("name", ["vgg11-random", "resnet18-random"])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_poisson_coding_matches_oracle(nets, name, backend):
    snn, x = nets[name], dyadic_images(3)
    coding = PoissonCoding(seed=7)
    ref = oracle(snn, x, 20, coding)
    assert ref["layer_spikes"].sum() > 500
    assert_same(simulate(snn, x, 20, coding=coding, backend=backend, time_chunk=7), ref)


@pytest.mark.parametrize("name", ["vgg11-random", "resnet18-random"])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_weighted_spikes_match_oracle(nets, name, backend):
    k = 3
    # biases on multiples of (1 - 2^-K) 2^-8, so that beta = b / (1 - 2^-K) stays dyadic
    snn = dyadic(nets[name], bias_unit=(1 - 2.0**-k) * 2.0**-8)
    coding = WeightedSpikeCoding(phases=k, skip_periods=1)
    x = dyadic_images(3)
    ref = oracle(snn, x, 30, coding)
    assert ref["layer_spikes"].sum() > 500
    assert_same(simulate(snn, x, 30, coding=coding, backend=backend, time_chunk=8), ref)


def test_weighted_spikes_equal_the_papers_synchronous_model_shifted_by_depth(nets):
    """In a chain, the pipelined engine runs the paper's zero-delay model (eqs. 8-10), each
    layer `depth` steps later: the delays change when a layer computes, not what."""
    k = 4
    snn = dyadic(nets["vgg11-random"], bias_unit=(1 - 2.0**-k) * 2.0**-8)
    coding = WeightedSpikeCoding(phases=k, skip_periods=1)
    x, steps = dyadic_images(2), 40
    sync = oracle(snn, x, steps, coding, synchronous=True)
    res = simulate(snn, x, steps, coding=coding)
    depths = oracle(snn, x, 1, coding)["depths"]
    assert max(depths) > 5
    for j, d in enumerate(depths):
        np.testing.assert_array_equal(res.layer_spikes[:d, j], 0)
        np.testing.assert_array_equal(res.layer_spikes[d:, j], sync["layer_spikes"][: steps - d, j])
    # skipping: the FC's last layer is idle for one period after its input arrives
    j_fc = res.layer_names.index("fc.linear")
    assert res.layer_spikes[: depths[j_fc] + k, j_fc].sum() == 0
    assert res.layer_spikes[:, j_fc].sum() > 0


def test_float_weights_differ_only_by_rounding(nets):
    """Plain float weights: summation order can flip a neuron at threshold; count and bound."""
    snn = nets["vgg11-float"]
    x = make_synthetic(4, seed=5, split="test").x
    a = simulate(snn, x, 40)
    b = simulate(snn, x, 40, backend="torch")
    total = int(a.layer_spikes.sum())
    diff = int(np.abs(a.layer_spikes - b.layer_spikes).sum())
    assert total > 10_000
    assert diff <= 0.01 * total


def test_analog_input_current_is_the_float64_sum_in_order_rounded_once(nets):
    """The first conv's current from the analog image: its bias, then the products in (c, ky,
    kx) order, summed in float64 and rounded once to float32, on any number of threads: the
    same bits on every CPU (docs/engine.md, "Reproducibility")."""
    c = build_plan(nets["vgg11-float"]).conns[0]
    x = make_synthetic(3, seed=2, split="test").x
    kh, kw, cin, cout = c.weight.shape
    (h, w, _), (ho, wo, _) = c.in_shape, c.out_shape
    ref = np.zeros((len(x), ho, wo, cout), np.float32)
    for n, oy, ox, o in np.ndindex(*ref.shape):
        acc = float(c.bias[o])
        for ci in range(cin):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * c.stride - c.pad + ky, ox * c.stride - c.pad + kx
                    if 0 <= iy < h and 0 <= ix < w:
                        acc += float(x[n, ci, iy, ix]) * float(c.weight[ky, kx, ci, o])
        ref[n, oy, ox, o] = acc
    for threads in (1, 2):
        got = analog_current(c, x, threads)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, ref.reshape(len(x), -1))


# ---------------------------------------------------------------------------------------------
# Streaming, memory, API


@pytest.mark.parametrize("coding", [DirectCoding(), PoissonCoding(3), WeightedSpikeCoding(4)])
def test_batches_and_time_chunks_do_not_change_the_result(nets, coding):
    snn, x = nets["resnet18-random"], dyadic_images(5)
    a = simulate(snn, x, 21, coding=coding, batch_size=5, time_chunk=21)
    b = simulate(snn, x, 21, coding=coding, batch_size=2, time_chunk=4)
    c = simulate(snn, x[3:], 21, coding=coding, image_ids=np.arange(3, 5))
    np.testing.assert_array_equal(a.layer_spikes, b.layer_spikes)
    for h in a.head_spikes:
        np.testing.assert_array_equal(a.head_spikes[h], b.head_spikes[h])
        np.testing.assert_array_equal(a.head_spikes[h][3:], c.head_spikes[h])


def test_peak_memory_is_reported_and_bounded_by_the_batch(nets):
    """One thread (each further thread holds its own scratch: 8 images on 2 threads run as two
    groups of 4)."""
    snn, x = nets["vgg11-random"], dyadic_images(8)
    small = simulate(snn, x, 30, batch_size=2, time_chunk=8, threads=1)
    large = simulate(snn, x, 30, batch_size=8, time_chunk=8, threads=1)
    longer = simulate(snn, x, 90, batch_size=2, time_chunk=8, threads=1)
    assert 0 < small.peak_state_bytes < large.peak_state_bytes
    assert longer.peak_state_bytes == small.peak_state_bytes  # T does not grow the state
    assert state_bytes(snn, batch_size=8, time_chunk=8, threads=1) == large.peak_state_bytes
    two = simulate(snn, x, 30, batch_size=8, time_chunk=8, threads=2).peak_state_bytes
    assert state_bytes(snn, batch_size=8, time_chunk=8, threads=2) == two > large.peak_state_bytes
    neurons = int(large.layer_neurons.sum())
    # membranes (4 bytes) and one spike byte per step of a layer's time block and the step before
    per_neuron = 4 + NumbaBackend.block + 1
    assert 8 * neurons * per_neuron <= large.peak_state_bytes <= 2 * 8 * neurons * per_neuron


def test_result_fields_and_on_batch(nets):
    snn, x = nets["vgg11-random"], dyadic_images(5)
    done: list[int] = []
    r = simulate(snn, x, 6, batch_size=2, on_batch=done.append)
    assert done == [2, 2, 1]
    assert (r.images, r.timesteps) == (5, 6)
    assert r.layer_spikes.shape == (6, len(r.layer_names)) and r.layer_spikes.dtype == np.int64
    rates = r.spike_rates()
    assert rates.shape == (len(r.layer_names),) and np.all((rates >= 0) & (rates <= 1))
    assert r.backend == "numba" and r.coding == "direct" and r.activity is None


def test_bad_arguments_are_refused(nets):
    snn, x = nets["vgg11-random"], dyadic_images(2)
    with pytest.raises(InputError, match="timesteps"):
        simulate(snn, x, 0)
    with pytest.raises(InputError, match="backend"):
        simulate(snn, x, 3, backend="cuda")
    with pytest.raises(InputError, match="images must be"):
        simulate(snn, x[:, :, :8], 3)
    with pytest.raises(InputError, match="image_ids"):
        simulate(snn, x, 3, image_ids=[0])
    with pytest.raises(InputError, match="not in the network"):
        simulate(snn, x, 3, synapses={"nope": None})
    with pytest.raises(ValueError, match="phases"):
        WeightedSpikeCoding(phases=0)
    with pytest.raises(ValueError, match="coding"):
        parse_coding("morse")
    with pytest.raises(InputError, match="crossbar"):
        ActivitySpec(rows_per_crossbar=0)
    with pytest.raises(InputError, match="mapping"):
        ActivitySpec(mapping="diagonal")


def test_numba_and_llvmlite_outside_the_tested_releases_are_refused(nets, monkeypatch):
    # the kernels' LLVM IR follows llvmlite's and Numba's internals: another release is refused
    # before anything compiles, naming the installed and the supported releases
    L.require_supported()  # the releases installed here are the tested ones
    numba_ok, llvmlite_ok = L.installed()["numba"], L.installed()["llvmlite"]
    for numba_v, llvmlite_v in (("0.99.0", llvmlite_ok), (numba_ok, "1.0.0rc1"), ("dev", "x")):
        with pytest.raises(UnsupportedDependency) as err:
            L.require_supported({"numba": numba_v, "llvmlite": llvmlite_v})
        for name, version in (("numba", numba_v), ("llvmlite", llvmlite_v)):
            bad = f"{name} {version} is installed, {L.supported(name)} supported"
            assert (bad in str(err.value)) == (version not in (numba_ok, llvmlite_ok))
            assert f"'{name}{L.supported(name)}'" in str(err.value)  # what to install
    monkeypatch.setattr(numba, "__version__", "0.1.0")
    with pytest.raises(HwsimError, match="numba 0.1.0 is installed"):
        simulate(nets["vgg11-random"], dyadic_images(2), 3)


def test_wide_blocks_follow_the_compile_targets_vector_registers(monkeypatch):
    # the register blocks are chosen for the features Numba compiles for (NUMBA_CPU_FEATURES,
    # else the host's): AVX-512's 32 registers keep 12 16-float vectors of sums, AVX2's 16
    # (two per 16-float vector) 6; the oracle tests above check the host's variant
    blocks = {32: 12, 16: 6}[L.vector_registers()]
    assert blocks == K.WIDE_BLOCK
    monkeypatch.setattr(L.config, "CPU_FEATURES", "+avx,+avx2,+fma,-avx512f,-avx512bw")
    assert L.vector_registers() == 16
    monkeypatch.setattr(L.config, "CPU_FEATURES", "+avx,+avx2,+fma,+avx512f,+avx512bw")
    assert L.vector_registers() == 32


# ---------------------------------------------------------------------------------------------
# Codings


def test_poisson_rate_and_sign():
    x = np.array([[[[0.0, 0.2, 0.9, 1.7, -0.5]]]], np.float32)
    s = PoissonCoding(seed=1).input_spikes(x, np.array([0]), 0, 4000)[0, :, 0, 0]
    rate = np.abs(s).mean(0)
    np.testing.assert_allclose(rate, [0.0, 0.2, 0.9, 1.0, 0.5], atol=0.025)
    assert np.all(s[:, 4] <= 0) and np.all(s[:, :4] >= 0)
    again = PoissonCoding(seed=1).input_spikes(x, np.array([0]), 100, 200)[0, :, 0, 0]
    np.testing.assert_array_equal(again, s[100:200])
    other = PoissonCoding(seed=2).input_spikes(x, np.array([0]), 0, 4000)[0, :, 0, 0]
    assert not np.array_equal(other, s)


def test_weighted_spike_input_is_the_binary_expansion_msb_first():
    k = 4
    x = np.array([[[[0.0, 0.3, 0.5, 0.999, 1.0, -0.25]]]], np.float32)
    coding = WeightedSpikeCoding(phases=k)
    s = coding.input_spikes(x, np.array([0]), 0, 3 * k)[0, :, 0, 0]
    w = coding.input_omega(np.arange(3 * k))
    np.testing.assert_array_equal(w[:k], [0.5, 0.25, 0.125, 0.0625])
    np.testing.assert_array_equal(s[:k, 2], [1, 0, 0, 0])  # 0.5 = 0.1000b
    np.testing.assert_array_equal(s[:k, 1], [0, 1, 0, 0])  # floor(0.3 * 16) = 4 = 0100b
    np.testing.assert_array_equal(s[k:], np.concatenate([s[:k], s[:k]]))  # periods repeat
    value = (w[:k, None] * s[:k]).sum(0)
    np.testing.assert_array_equal(value, [0, 0.25, 0.5, 0.9375, 0.9375, -0.25])
    assert coding.bias_scale == pytest.approx(16 / 15)


def test_weighted_spike_phase_clock_and_output_skipping():
    c = WeightedSpikeCoding(phases=3, skip_periods=2)
    t = np.arange(12)
    np.testing.assert_array_equal(
        c.layer_omega(t, 2, False),
        [0, 0, 0.5, 0.25, 0.125, 0.5, 0.25, 0.125, 0.5, 0.25, 0.125, 0.5],
    )
    np.testing.assert_array_equal(c.layer_omega(t, 2, True)[:8], 0)
    assert c.layer_omega(t, 2, True)[8] == 0.5
    np.testing.assert_array_equal(DirectCoding().layer_omega(t, 5, True), 1)


# ---------------------------------------------------------------------------------------------
# Crossbar activity against a brute-force count


def brute_activity(x: np.ndarray | None, geom, kernel, stride, pad, rows, cols) -> np.ndarray:
    """(N, 3) [nonzero inputs, crossbar reads, windows] by enumerating every output position,
    kernel offset, row group and column block."""
    if x is None:
        return None
    x = x if x.ndim == 4 else x[:, :, None, None]
    n, c, h, w = x.shape
    kh, kw = kernel
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    groups, blocks = math.ceil(c / rows), math.ceil(geom.out_channels / cols)
    out = np.zeros((n, 3), np.int64)
    out[:, 0] = (x != 0).reshape(n, -1).sum(1)
    for b in range(n):
        for oy in range(ho):
            for ox in range(wo):
                for g in range(groups):
                    window = False
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * stride - pad + ky, ox * stride - pad + kx
                            inside = 0 <= iy < h and 0 <= ix < w
                            if inside and np.any(x[b, g * rows : (g + 1) * rows, iy, ix] != 0):
                                out[b, 1] += blocks
                                window = True
                    out[b, 2] += blocks * window
    return out


@pytest.mark.parametrize(
    ("name", "coding"),
    [("vgg11-random", DirectCoding()), ("resnet18-random", WeightedSpikeCoding(3, 1))],
)
def test_activity_matches_brute_force(nets, name, coding):
    snn, x, steps = nets[name], dyadic_images(2), 6
    spec = ActivitySpec(rows_per_crossbar=3, cols_per_crossbar=5, per_image=True)
    res = simulate(snn, x, steps, coding=coding, activity=spec)
    ref = oracle(snn, x, steps, coding)
    act = res.activity
    geoms = {g.name: g for g in snn.spec.graph().layers}
    assert set(act.names) == set(geoms) == set(ref["inputs"])
    checked = 0
    for g, name_g in enumerate(act.names):
        geom = geoms[name_g]
        kernel, stride, pad = geom.kernel, geom.stride, geom.padding
        for t in range(steps):
            want = brute_activity(ref["inputs"][name_g][t], geom, kernel, stride, pad, 3, 5)
            got = act.per_image[:, t, g, :3]
            if want is None:
                np.testing.assert_array_equal(got, 0)
                continue
            np.testing.assert_array_equal(got, want, err_msg=f"{name_g} t={t}")
            checked += int(want[:, 1].sum() > 0)
        assert act.active_pe_ops[:, g].max() <= act.dense_pe_ops[g] * len(x)
        assert act.active_windows[:, g].max() <= act.dense_windows[g] * len(x)
    assert checked > steps  # reads happened
    np.testing.assert_array_equal(act.in_spikes, act.per_image[..., 0].sum(0))
    np.testing.assert_array_equal(act.out_spikes, res.layer_spikes[:, act.dst])
    np.testing.assert_array_equal(act.out_spikes, act.per_image[..., 3].sum(0))
    # dense windows are SpikeSim's PE operations: ceil(C_out/X) ceil(C_in/X) H_out W_out
    for g, name_g in enumerate(act.names):
        geom = geoms[name_g]
        want = math.ceil(geom.out_channels / 5) * math.ceil(geom.in_channels / 3)
        assert act.dense_windows[g] == want * geom.out_hw[0] * geom.out_hw[1]


def test_activity_is_the_same_on_both_backends(nets):
    snn, x = nets["resnet18-random"], dyadic_images(2)
    spec = ActivitySpec(rows_per_crossbar=4, cols_per_crossbar=8)
    a = simulate(snn, x, 8, activity=spec).activity
    b = simulate(snn, x, 8, activity=spec, backend="torch").activity
    for f in ("in_spikes", "active_pe_ops", "active_windows", "out_spikes"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


@pytest.mark.parametrize("name", ["vgg16", "resnet34"])
def test_deeper_networks_match_the_oracle(name):
    snn = dyadic(random_net(name, seed=9, ics=(3,)))
    x = dyadic_images(2, seed=9)
    ref = oracle(snn, x, 40)
    assert ref["layer_spikes"][:, -4:].sum() > 0  # activity reaches the heads
    assert_same(simulate(snn, x, 40, time_chunk=16), ref)


@pytest.mark.slow
@pytest.mark.parametrize("coding", [DirectCoding(), PoissonCoding(5), WeightedSpikeCoding(3, 2)])
def test_long_runs_match_the_oracle(nets, coding):
    for name in ("vgg11-random", "resnet18-random"):
        snn = nets[name]
        if coding.phased:
            snn = dyadic(snn, bias_unit=(1 - 2.0**-3) * 2.0**-8)
        x = dyadic_images(4, seed=11)
        assert_same(simulate(snn, x, 300, coding=coding, batch_size=3), oracle(snn, x, 300, coding))


def brute_unrolled(x: np.ndarray, kernel, stride, pad, rows, blocks) -> np.ndarray:
    """(N, 3) [nonzero inputs, PE operations, PE operations] of the unrolled mapping: for every
    output position, the window's k_h k_w C_in rows (kernel position major, channel minor; zero
    padding) cut into groups of `rows`, a group active if any of its rows is nonzero."""
    x = x if x.ndim == 4 else x[:, :, None, None]
    n, c, h, w = x.shape
    kh, kw = kernel
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    out = np.zeros((n, 3), np.int64)
    out[:, 0] = (x != 0).reshape(n, -1).sum(1)
    for b in range(n):
        for oy in range(ho):
            for ox in range(wo):
                flat = []
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * stride - pad + ky, ox * stride - pad + kx
                        for ch in range(c):
                            inside = 0 <= iy < h and 0 <= ix < w
                            flat.append(bool(inside and x[b, ch, iy, ix] != 0))
                for r0 in range(0, len(flat), rows):
                    out[b, 1:] += blocks * any(flat[r0 : r0 + rows])
    return out


@pytest.mark.parametrize("name", ["vgg11-random", "resnet18-random", "deep", "wide"])
def test_unrolled_activity_kernel_on_random_binary_inputs(nets, name):
    """The unrolled counting kernel against the brute-force count (R = 5, partial groups; a
    GAP's hundreds of groups) and against the hardware model's active_pe_operations
    (isaac_like: unrolled, 128 x 128), also with inputs of over 64 channels ("deep") and maps
    of over 64 columns ("wide"): the output-by-output path beside the bit rows."""
    snn = nets[name] if name in nets else extra_net(name)
    plan = build_plan(snn)
    arch = load_arch("arch_configs/isaac_like.yaml")
    assert arch.mapping.style is MappingStyle.UNROLLED
    small = NumbaBackend(plan, DirectCoding(), 5, 3, 1, "unrolled")
    isaac = NumbaBackend(
        plan, DirectCoding(), arch.crossbar.rows, arch.crossbar.cols, 1, "unrolled"
    )
    geoms = {g.name: g for g in snn.spec.graph().layers}
    rng = np.random.default_rng(7)
    kinds = set()
    for g, c in enumerate(plan.conns):
        geom = geoms[c.name]
        if geom.kind is LayerKind.LINEAR:
            continue  # the engine's layout (1x1 kernel, C_in = features) is not SpikeSim's
        h, w, cin = c.in_shape
        kinds.add((geom.kind, c.stride, c.pad, cin % 5 != 0))
        density = np.array([0.01, 0.05, 0.3])[:, None, None, None]
        x = (rng.random((3, cin, h, w)) < density).astype(np.float32)
        flat = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(3, -1).astype(np.int8)
        blocks = math.ceil(c.out_shape[2] / 3)
        want = brute_unrolled(x, c.kernel, c.stride, c.pad, 5, blocks)
        np.testing.assert_array_equal(activity_of(small, g, flat), want, err_msg=c.name)
        hw = active_pe_operations(
            geom, arch, layer_patches(torch.from_numpy(x), geom, stride=c.stride, padding=c.pad)
        )
        got = activity_of(isaac, g, flat)
        np.testing.assert_array_equal(got[:, 1], hw.numpy(), err_msg=c.name)
        np.testing.assert_array_equal(got[:, 2], hw.numpy(), err_msg=c.name)
    assert any(k[0] is LayerKind.GAP for k in kinds)
    assert any(k[0] is LayerKind.CONV and k[2] for k in kinds)  # C_in not a multiple of R
    if name == "resnet18-random":
        assert {(1, 1), (2, 1), (2, 0)} <= {(k[1], k[2]) for k in kinds if k[0] is LayerKind.CONV}


def extra_net(name: str) -> SpikingNetwork:
    """The extra networks of the activity tests: "wide", a VGG11 on 8 x 72 inputs (maps wider
    than 64 columns and, after the pools, narrower ones); "deep", a VGG11 at width 1/4 (inputs
    of up to 128 channels: several 64-bit channel masks per position)."""
    if name == "wide":
        return random_net("vgg11", 5, (1,), (1, 8, 72))
    return random_net("vgg11", 6, (1,), width=1 / 4)


@pytest.mark.parametrize("name", ["vgg11-random", "resnet18-random", "wide", "deep"])
def test_kernel_split_activity_kernel_on_random_binary_inputs(nets, name):
    """The kernel_split counting kernel against the brute-force count, with row groups of 3
    (several and partial groups per position) and of 64 (one), on random 0/1 inputs; maps
    wider than 64 columns take the kernel's byte path, the others its bit masks."""
    snn = nets[name] if name in nets else extra_net(name)
    plan = build_plan(snn)
    geoms = {g.name: g for g in snn.spec.graph().layers}
    rng = np.random.default_rng(11)
    widths = set()
    for rows in (3, 64):
        be = NumbaBackend(plan, DirectCoding(), rows, 5, 1, "kernel_split")
        for g, c in enumerate(plan.conns):
            geom = geoms[c.name]
            if geom.kind is LayerKind.LINEAR:
                continue  # the engine's layout (1x1 kernel, C_in = features) is not SpikeSim's
            h, w, cin = c.in_shape
            widths.add(w > 64)
            density = np.array([0.01, 0.1, 0.5])[:, None, None, None]
            x = (rng.random((3, cin, h, w)) < density).astype(np.float32)
            flat = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(3, -1).astype(np.int8)
            want = brute_activity(x, geom, c.kernel, c.stride, c.pad, rows, 5)
            np.testing.assert_array_equal(activity_of(be, g, flat), want, err_msg=c.name)
    assert widths == ({True, False} if name == "wide" else {False})
    if name == "deep":
        assert max(c.in_shape[2] for c in plan.conns) > 64


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_unrolled_activity_of_a_run_matches_brute_force(nets, backend):
    snn, x, steps = nets["resnet18-random"], dyadic_images(2), 4
    spec = ActivitySpec(5, 3, per_image=True, mapping="unrolled")
    act = simulate(snn, x, steps, activity=spec, backend=backend).activity
    ref = oracle(snn, x, steps)
    plan_conns = {c.name: c for c in build_plan(snn).conns}
    checked = 0
    for g, name_g in enumerate(act.names):
        c = plan_conns[name_g]
        blocks = math.ceil(c.out_shape[2] / 3)
        assert act.dense_windows[g] == act.dense_pe_ops[g]
        want_dense = (
            c.out_shape[0] * c.out_shape[1] * math.ceil(np.prod(c.kernel) * c.in_shape[2] / 5)
        )
        assert act.dense_windows[g] == want_dense * blocks
        for t in range(steps):
            xin = ref["inputs"][name_g][t]
            got = act.per_image[:, t, g, :3]
            if xin is None:
                np.testing.assert_array_equal(got, 0)
                continue
            want = brute_unrolled(xin, c.kernel, c.stride, c.pad, 5, blocks)
            np.testing.assert_array_equal(got, want, err_msg=f"{name_g} t={t}")
            checked += int(want[:, 1].sum() > 0)
    assert checked > steps
    np.testing.assert_array_equal(act.active_pe_ops, act.active_windows)


def test_activity_spec_mapping_is_validated():
    with pytest.raises(ValueError, match="mapping"):
        ActivitySpec(mapping="im2col")


# ---------------------------------------------------------------------------------------------
# Every conv formulation of the numba backend (NumbaBackend.mode) against the oracle

FORMULATIONS = {
    "push": {"table_channels": 0, "pull_channels": 1 << 30},
    "table": {"table_channels": 1 << 30, "table_bytes": 1 << 40, "pull_channels": 1 << 30},
    "pull": {"table_channels": 0, "pull_channels": 1},
    "pull-short-lists": {"table_channels": 0, "pull_channels": 1, "list_windows": 1},
}


@pytest.mark.parametrize("form", list(FORMULATIONS))
@pytest.mark.parametrize("coding", [DirectCoding(), PoissonCoding(7), WeightedSpikeCoding(3, 1)])
def test_every_conv_formulation_matches_the_oracle(nets, monkeypatch, form, coding):
    for attr, value in FORMULATIONS[form].items():
        monkeypatch.setattr(NumbaBackend, attr, value)
    want = {"push": K.PUSH, "table": K.TABLE}.get(form, K.PULL)
    for name in ("vgg11-random", "resnet18-random"):
        snn = nets[name]
        if coding.phased:
            snn = dyadic(snn, bias_unit=(1 - 2.0**-3) * 2.0**-8)
        plan = build_plan(snn)
        modes = NumbaBackend(plan, coding).modes
        pairs = [(c, m) for c, m in zip(plan.conns, modes, strict=True) if c.src >= 0]
        spiking_convs = [m for c, m in pairs if c.weight.size and not c.linear]
        assert set(spiking_convs) == {want}  # the formulation under test runs every spiking conv
        assert {m for c, m in pairs if c.linear} == {K.PUSH}  # heads' Linear layers: tiny
        x = dyadic_images(3)
        ref = oracle(snn, x, 20, coding)
        assert ref["layer_spikes"].sum() > 500
        assert_same(simulate(snn, x, 20, coding=coding, batch_size=3, time_chunk=7), ref)


@pytest.mark.parametrize("form", ["table", "pull"])
def test_activity_is_the_same_with_every_formulation(nets, monkeypatch, form):
    snn, x = nets["resnet18-random"], dyadic_images(3)
    spec = ActivitySpec(rows_per_crossbar=4, cols_per_crossbar=8, per_image=True)
    a = simulate(snn, x, 8, activity=spec).activity
    for attr, value in FORMULATIONS[form].items():
        monkeypatch.setattr(NumbaBackend, attr, value)
    b = simulate(snn, x, 8, activity=spec, batch_size=2).activity
    np.testing.assert_array_equal(a.per_image, b.per_image)
    np.testing.assert_array_equal(a.out_spikes, b.out_spikes)


def test_partial_sum_tables_sum_the_rows_of_the_set_bits():
    """table_rows entry [k, g, m] = sum of W[k, g b + i] over the set bits i of m (brute force),
    with zero rows past C_in (C_in = 11: a partial group)."""
    rng = np.random.default_rng(0)
    w = np.round(rng.normal(size=(3, 3, 11, 5)) * 256) / 256
    tab = table_rows(w.astype(np.float32), 4).reshape(9, 3, 16, 5)
    for k in range(9):
        for g in range(3):
            for m in range(16):
                chans = [g * 4 + i for i in range(4) if m >> i & 1 and g * 4 + i < 11]
                want = w.reshape(9, 11, 5)[k, chans].sum(0) if chans else np.zeros(5)
                np.testing.assert_array_equal(tab[k, g, m], want)


def test_kernel_major_weights_are_the_transposed_torch_weights():
    """plan._kernel_major: out[ky, kx, c, o] = w[o, c, ky, kx] (numpy's transpose), for convs
    and a Linear layer's (C_out, C_in) as a (1, 1) kernel."""
    rng = np.random.default_rng(0)
    for shape in [(21, 5, 3, 3), (37, 4, 1, 1), (3, 2, 3, 2)]:
        w = rng.normal(size=shape).astype(np.float32)
        out = _kernel_major(torch.from_numpy(w))
        np.testing.assert_array_equal(out, w.transpose(2, 3, 1, 0))
        assert out.flags.c_contiguous and out.dtype == np.float32
    w = rng.normal(size=(10, 6)).astype(np.float32)
    np.testing.assert_array_equal(_kernel_major(torch.from_numpy(w)), w.T.reshape(1, 1, 6, 10))


@pytest.mark.parametrize("kw,stride", [(3, 1), (3, 2), (1, 2), (5, 3), (2, 3)])
def test_polyphase_rows_follow_their_definition(kw, stride):
    """_kernels.polyphase: [ky, c, r, jj] holds kx = r + stride (n_r - 1 - jj) for the n_r
    kernel columns kx = r mod stride, zeros past n_r (a plain loop over the definition)."""
    rng = np.random.default_rng(1)
    kh, cin, cout = 2, 3, 5
    w = rng.normal(size=(kh, kw, cin, cout)).astype(np.float32)
    nmax = -(-kw // stride)
    out = np.full(kh * cin * stride * nmax * cout, np.nan, np.float32)
    K.polyphase(w, stride, out)
    want = np.zeros((kh, cin, stride, nmax, cout), np.float32)
    for r in range(stride):
        cols = [kx for kx in range(kw) if kx % stride == r]
        for jj in range(len(cols)):
            want[:, :, r, jj] = w[:, r + stride * (len(cols) - 1 - jj)]
    np.testing.assert_array_equal(out.reshape(want.shape), want)


@pytest.mark.parametrize("coding", [DirectCoding(), PoissonCoding(7), WeightedSpikeCoding(3, 1)])
def test_wide_push_scatter_sums_32_16_and_8_outputs_at_a_time(coding):
    """The push scatter's per-position register sums (GROUPED: C_in >= 32, a power of two) over
    runs of 40, 80 and 120 outputs (3x3 kernel, 1-3 columns of 40 channels): blocks of 32, 16
    and 8 floats, on a dyadic net against the oracle, on 1 and on 2 threads (3 images: groups
    of 2 and 1 images)."""
    rng = np.random.default_rng(5)

    def conv3(name, c_in, c_out, inputs):
        return Layer(name, LayerKind.CONV, Role.BACKBONE, (c_in, 4, 4), (c_out, 4, 4), (3, 3),
                     1, 1, inputs, name, block=0)  # fmt: skip

    def wb(c_in, c_out, k, scale):
        w = np.round(rng.normal(scale=scale, size=(c_out, c_in, k, k)) * 256) / 256
        b = np.round(rng.uniform(0, 0.1, size=c_out) * 256) / 256
        return w.astype(np.float32), b.astype(np.float32)

    layers = [conv3("conv0", 1, 32, ()), conv3("conv1", 32, 40, ("conv0",))]
    layers += fc_head("conv1", 40, 4, 10)
    weights = {"conv0": wb(1, 32, 3, 0.6), "conv1": wb(32, 40, 3, 0.12)}
    w, b = wb(40, 10, 1, 0.5)
    weights["fc.linear"] = (w[:, :, 0, 0], b)
    snn = hand_network(layers, (1, 4, 4), weights)
    if coding.phased:
        snn = dyadic(snn, bias_unit=(1 - 2.0**-3) * 2.0**-8)
    be = NumbaBackend(build_plan(snn), coding)
    assert be.conn_tab[1, K.MODE] == K.PUSH and be.conn_tab[1, K.GROUPED] == 1
    x = np.ascontiguousarray(dyadic_images(3)[:, :, 6:10, 6:10])
    ref = oracle(snn, x, 30, coding)
    assert ref["layer_spikes"][:, 1].sum() > 100
    for threads in (1, 2):
        got = simulate(snn, x, 30, coding=coding, threads=threads, time_chunk=11)
        assert_same(got, ref)


# every kernel path of the engine's formulations: 3x3 convs (C_in, C_out, stride, an IC head)
# from an input of side `side`. Tables (C_in <= 16): 8, 16 and 32 outputs several positions
# per call, with single-position rests (odd map widths), 12 (a scalar tail), 24 (16 + 8
# lanes) and 64 (4 vectors of 16); the wide scatter (C_in 32, 64, 128: a position's spikes
# from one or two 64-byte compares): runs of 192 and 128
# outputs (12 and 8 registers of 16), 120 and 80 (6, 4, 1 of 16 and 1 of 8), 96, 64 and 16;
# a plain scatter (C_in 40); IF scans with 16-lane tails (9 x 9 x 8, 1 x 1 x 8). GAPs (IC
# heads) only read maps of 4^k positions, whose means are dyadic: they count channels in
# registers for 8 (with a tail on the 1 x 1 map), 16, 32 and 64 channels, by
# `_channel_counts` for 12 and 24; their Linear layers run as tiny layers, reading 8-64 spikes
# (one word of 64) or 96 and 136 (two and three words).
# fmt: off
KERNEL_PATHS = {
    "tables-and-wide-scatter": (9, [(1, 8, 1, 0), (8, 8, 1, 0), (8, 16, 2, 0), (16, 32, 1, 0),
                                    (32, 64, 1, 0), (64, 40, 1, 0), (40, 24, 2, 0),
                                    (24, 16, 2, 1)]),
    "partial-tables-and-counts": (8, [(1, 8, 1, 1), (8, 12, 1, 1), (12, 8, 1, 1),
                                      (8, 64, 2, 1), (64, 32, 1, 1), (32, 8, 2, 1),
                                      (8, 8, 2, 1), (8, 24, 1, 1)]),
    "wide-heads": (4, [(1, 8, 1, 0), (8, 96, 1, 1), (96, 136, 2, 1)]),
    "wide-scatter-128": (4, [(1, 8, 1, 0), (8, 32, 1, 0), (32, 128, 1, 1), (128, 32, 1, 0),
                             (32, 16, 2, 1)]),
}
# fmt: on


def chain_network(side: int, convs: list[tuple[int, int, int, int]], seed: int) -> SpikingNetwork:
    """3x3 convs (C_in, C_out, stride, pad 1) from a 1 x side x side input, an IC head (GAP +
    Linear) on those marked and an FC head on the last, dyadic weights (2^-8) and biases."""
    rng = np.random.default_rng(seed)

    def linear(c):
        w = np.round(rng.normal(scale=3 / np.sqrt(c), size=(10, c)) * 256) / 256
        return w.astype(np.float32), np.full(10, 2.0**-6, np.float32)

    layers, weights, heads, hw = [], {}, [], side
    for i, (c_in, c_out, stride, ic) in enumerate(convs):
        out_hw = (hw - 1) // stride + 1
        name = f"conv{i}"
        layers.append(Layer(name, LayerKind.CONV, Role.BACKBONE, (c_in, hw, hw),
                            (c_out, out_hw, out_hw), (3, 3), stride, 1,
                            (f"conv{i - 1}",) if i else (), name, block=i))  # fmt: skip
        w = np.round(rng.normal(scale=2.2 / np.sqrt(9 * c_in), size=(c_out, c_in, 3, 3)) * 256)
        b = np.round(rng.uniform(0, 0.15, size=c_out) * 256) / 256
        weights[name] = ((w / 256).astype(np.float32), b.astype(np.float32))
        hw = out_hw
        if ic:
            gap, lin = f"ic{i}.gap", f"ic{i}.linear"
            heads.append(Layer(gap, LayerKind.GAP, Role.IC_HEAD, (c_out, hw, hw), (c_out, 1, 1),
                               (hw, hw), 1, 0, (name,), gap, head=i))  # fmt: skip
            heads.append(Layer(lin, LayerKind.LINEAR, Role.IC_HEAD, (c_out, 1, 1), (10, 1, 1),
                               (1, 1), 1, 0, (gap,), lin, head=i))  # fmt: skip
            weights[lin] = linear(c_out)
    layers += heads + fc_head(f"conv{len(convs) - 1}", convs[-1][1], hw, 10)
    weights["fc.linear"] = linear(convs[-1][1])
    return hand_network(layers, (1, side, side), weights)


@pytest.mark.parametrize("paths", list(KERNEL_PATHS))
@pytest.mark.parametrize("coding", [DirectCoding(), PoissonCoding(3)])
def test_every_kernel_path_matches_the_oracle(paths, coding):
    """The formulation each conv gets and the spikes of every layer and head against the
    oracle, on 1 and 2 threads, over time chunks and time blocks that do not divide T."""
    side, convs = KERNEL_PATHS[paths]
    snn = chain_network(side, convs, seed=11)
    be = NumbaBackend(build_plan(snn), coding)
    for g, (c_in, *_) in enumerate(convs[1:], start=1):
        want = K.TABLE if c_in <= 16 else K.PUSH
        assert be.conn_tab[g, K.MODE] == want
        assert be.conn_tab[g, K.GROUPED] == int(want == K.PUSH and c_in in (32, 64, 128))
    plan = be.plan
    linears = [plan.conns[g] for g in range(len(plan.conns)) if plan.conns[g].linear]
    assert all(be.layer_tab[c.dst, K.L_TINY] for c in linears) and len(linears) > 1
    x = np.ascontiguousarray(dyadic_images(3)[:, :, 2 : 2 + side, 2 : 2 + side])
    ref = oracle(snn, x, 23, coding)
    assert (ref["layer_spikes"][:, : len(convs)].sum(0) > 20).all()  # every conv fires
    for threads in (1, 2):
        assert_same(simulate(snn, x, 23, coding=coding, threads=threads, time_chunk=10), ref)


@pytest.mark.parametrize("group", [1, 3, 4, 16])
def test_image_groups_give_the_oracle_spikes(group, monkeypatch):
    """Images run in groups of `group` (NumbaBackend.group, 4 by default): 10 images make
    several groups per thread and a partial last one (3: 4 of 3, 3, 3, 1; 4: 4, 4, 2), on 1 and
    on 2 threads, spike for spike as the oracle."""
    monkeypatch.setattr(NumbaBackend, "group", group)
    side, convs = KERNEL_PATHS["tables-and-wide-scatter"]
    snn = chain_network(side, convs, seed=11)
    x = np.ascontiguousarray(dyadic_images(10)[:, :, 2 : 2 + side, 2 : 2 + side])
    ref = oracle(snn, x, 13, DirectCoding())
    for threads in (1, 2):
        be = NumbaBackend(build_plan(snn), DirectCoding(), threads=threads)
        assert be.images_per_group(10) == min(group, -(-10 // threads))
        assert_same(simulate(snn, x, 13, threads=threads, time_chunk=6), ref)


@pytest.mark.parametrize(
    "side,c_in,c_out,stride",
    [
        (6, 8, 8, 1),
        (11, 8, 8, 1),
        (13, 8, 8, 1),
        (7, 8, 16, 1),
        (14, 16, 32, 2),
        (6, 16, 16, 2),
        (5, 8, 32, 1),
        (7, 8, 24, 1),
    ],
)
def test_table_conv_adds_each_outputs_rows_in_window_order(side, c_in, c_out, stride):
    """_table_conv on float tables (not dyadic: another order of adds rounds differently):
    every output's current is what it held plus its window's table rows [ky kw + kx, group,
    mask] added one at a time in (ky, kx, group) order, in float32, whether the output runs in
    a group of 8 or 4 positions, in a row's last 2 or 3 (`_table_rest`) or alone; padding
    selects row 0."""
    snn = chain_network(side, [(1, c_in, 1, 0), (c_in, c_out, stride, 0)], seed=3)
    be = NumbaBackend(build_plan(snn), DirectCoding())
    ct = be.conn_tab[1]
    assert ct[K.MODE] == K.TABLE and ct[K.GBITS] == 8
    rng = np.random.default_rng(side + c_out)
    rflat = rng.normal(size=be.rflat.shape).astype(np.float32)
    h, w, ho, wo, pad = ct[K.H], ct[K.W], ct[K.HO], ct[K.WO], ct[K.PAD]
    ng = -(-c_in // 8)
    spk = np.zeros(ct[K.SRC_OFF] + h * w * c_in + 64, np.int8)
    spk[ct[K.SRC_OFF] : ct[K.SRC_OFF] + h * w * c_in] = rng.random(h * w * c_in) < 0.3
    cur = K.aligned(K.vec_ceil(ho * wo * c_out), np.float32)
    cur[:] = rng.normal(size=cur.shape)
    want = cur[: ho * wo * c_out].reshape(ho, wo, c_out).copy()
    scale = np.float32(0.5)
    K._table_conv(cur, spk, ct[K.SRC_OFF], rflat, ct, be.itab, scale, np.zeros(4096, np.uint8))
    x = spk[ct[K.SRC_OFF] : ct[K.SRC_OFF] + h * w * c_in].reshape(h, w, c_in)
    rbase = be.itab[ct[K.RBASE] :][: 9 * ng]
    for oy in range(ho):
        for ox in range(wo):
            acc = want[oy, ox]
            for q in range(9 * ng):
                (ky, kx), g = divmod(q // ng, 3), q % ng
                iy, ix = oy * stride - pad + ky, ox * stride - pad + kx
                m = 0
                if 0 <= iy < h and 0 <= ix < w:
                    m = sum(int(x[iy, ix, g * 8 + i]) << i for i in range(min(8, c_in - 8 * g)))
                row = rflat[rbase[q] + m * c_out :][:c_out]
                acc = (acc + row * scale).astype(np.float32)
            want[oy, ox] = acc
    np.testing.assert_array_equal(cur[: ho * wo * c_out].reshape(ho, wo, c_out), want)


def test_vectors_never_straddle_a_cache_line():
    """The arrays the kernels read with 16-float vectors start at 64-byte boundaries, and every
    layer, connection's weights and analog current at a multiple of 16 floats."""
    a = K.aligned((3, 5), np.float32, 1.5)
    assert a.shape == (3, 5) and a.flags.c_contiguous and (a == 1.5).all()
    assert a.ctypes.data % 64 == 0 and K.aligned(7, np.int8).ctypes.data % 64 == 0
    snn = chain_network(9, KERNEL_PATHS["partial-tables-and-counts"][1], seed=2)
    be = NumbaBackend(build_plan(snn), DirectCoding())
    runner = be.start(dyadic_images(2)[:, :, :9, :9].copy(), np.arange(2), 4)
    arrays = (be.bias, be.rflat, runner.v, runner.s, runner.base)
    assert all(x.ctypes.data % 64 == 0 for x in arrays)
    assert be.n_state % 16 == 0 and be.n_base % 16 == 0 and be.n_base > 0
    assert (be.layer_tab[:, K.L_OFF] % 16 == 0).all()
    base = be.layer_tab[:, K.L_BASE]
    assert (base[base >= 0] % 16 == 0).all() and (base >= 0).sum() == 1  # -1: no analog input
    assert (be.conn_tab[:, K.R_OFF] % 16 == 0).all()
    cur = K.chunk_scratch(be.layer_tab, 37, 40, 4, 4, 2, be.xsizes)[0]
    assert cur.ctypes.data % 64 == 0 and cur.shape[1] == 48


def test_the_default_time_chunk_is_the_longest_within_chunk_bytes(nets, monkeypatch):
    """time_chunk=None: chunks of floor(CHUNK_BYTES / step_bytes) steps (5 here, so 23 steps run
    as 5+5+5+5+3), all T at once when they fit; the spikes do not depend on the chunking."""
    snn, x = nets["vgg11-random"], dyadic_images(3)
    coding = PoissonCoding(4)
    be = NumbaBackend(build_plan(snn), coding)
    plan = be.plan
    pixels = 2 * int(np.prod(plan.input_shape))  # coded spikes and their transposed copy
    per_image = pixels + len(plan.heads) * plan.classes + 4 * len(plan.layers)
    assert be.step_bytes(3) == 3 * per_image
    monkeypatch.setattr(core, "CHUNK_BYTES", 5 * be.step_bytes(3) + 1)
    assert core.default_chunk(be, 3, 23) == 5 and core.default_chunk(be, 3, 4) == 4
    seen = []
    runner = type(be.start(x, np.arange(3), 5))
    advance = runner.advance

    def spy(self, t0, t1):
        seen.append((t0, t1))
        return advance(self, t0, t1)

    monkeypatch.setattr(runner, "advance", spy)
    got = simulate(snn, x, 23, coding=coding)
    assert seen == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    assert_same(got, oracle(snn, x, 23, coding))
