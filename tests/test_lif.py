"""Leaky integrate-and-fire neurons in the engine (issue 25): both backends against a plain
NumPy loop of docs/engine.md's neuron step on a small conv network, spike for spike.

Weights are multiples of 2^-8 and images of 2^-6, so every current is exact in float32 in any
summation order; the membranes then round at each multiply by the leak, so the loop does the
engine's float32 operations in the engine's order (a different order would round
differently):

    V <- (leak V + (1 - leak) v_leak) + gain I  [- theta s(t-1), delayed reset]
    s = [V >= theta] ([V > theta] strict);  V <- V - theta s  (not for a delayed reset),
    or V <- reset_to where s (a reset to a potential); V starts at v_init (else V0 = 0)
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from hwsim.engine import BACKENDS, simulate
from hwsim.engine import _kernels as K
from hwsim.engine.plan import build_plan
from hwsim.errors import InputError
from hwsim.model.coding import WeightedSpikeCoding
from hwsim.model.convert import ConversionParams, SpikingNetwork, Weights
from hwsim.model.graph import (
    FC_HEAD,
    IF_NEURON,
    GraphError,
    Layer,
    LayerGraph,
    LayerKind,
    Neuron,
    Role,
)
from hwsim.model.netspec import NetSpec

torch.set_num_threads(1)

F32 = np.float32
INPUT = (1, 15, 15)  # 15 x 15: layer sizes that are no multiple of 16 (the scans' tails)


def conv_layer(name, c_in, c_out, hw, stride, inputs, neuron) -> Layer:
    out = (hw + 2 - 3) // stride + 1
    return Layer(
        name, LayerKind.CONV, Role.BACKBONE, (c_in, hw, hw), (c_out, out, out), (3, 3), stride,
        1, inputs, name, block=0 if not inputs else 1, neuron=neuron,
    )  # fmt: skip


def lif_network(
    neurons: tuple[Neuron, Neuron, Neuron, Neuron], seed: int = 0, c1: int = 32
) -> SpikingNetwork:
    """conv0 (1 -> 8, 3x3) -> conv1 (8 -> c1, 3x3 stride 2, 8 x 8) -> fc.gap -> fc.linear (10
    classes), one neuron model per population; dyadic weights and biases."""
    a, b, c, d = neurons
    layers = (
        conv_layer("conv0", 1, 8, 15, 1, (), a),
        conv_layer("conv1", 8, c1, 15, 2, ("conv0",), b),
        Layer(
            "fc.gap", LayerKind.GAP, Role.FC_HEAD, (c1, 8, 8), (c1, 1, 1), (8, 8), 1, 0,
            ("conv1",), "fc.gap", head=FC_HEAD, neuron=c,
        ),
        Layer(
            "fc.linear", LayerKind.LINEAR, Role.FC_HEAD, (c1, 1, 1), (10, 1, 1), (1, 1), 1, 0,
            ("fc.gap",), "fc.linear", head=FC_HEAD, neuron=d,
        ),
    )  # fmt: skip
    graph = LayerGraph(layers, INPUT, 10)
    rng = np.random.default_rng(seed)

    def q(shape, sd):
        return torch.from_numpy((np.round(rng.normal(0, sd, shape) * 256) / 256).astype(F32))

    weights = {
        "conv0": Weights(q((8, 1, 3, 3), 0.6), q(8, 0.05)),
        "conv1": Weights(q((c1, 8, 3, 3), 0.35), q(c1, 0.05)),
        "fc.linear": Weights(q((10, c1), 1.0), q(10, 0.05)),
    }
    spec = NetSpec("vgg11", 1 / 16, INPUT, 10)
    return SpikingNetwork(spec, graph, weights, ConversionParams(), ())


def images(n: int, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).integers(0, 65, (n, *INPUT)) / 64).astype(F32)


def conv_ref(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """3x3 cross-correlation, padding 1, float64, one kernel offset at a time."""
    n, _, h, wd = x.shape
    ho, wo = (h - 1) // stride + 1, (wd - 1) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], ho, wo))
    for ky in range(3):
        for kx in range(3):
            patch = xp[
                :,
                :,
                ky : ky + stride * (ho - 1) + 1 : stride,
                kx : kx + stride * (wo - 1) + 1 : stride,
            ]
            out += np.einsum("oc,nchw->nohw", w[:, :, ky, kx], patch)
    return out


def loop_oracle(snn: SpikingNetwork, x: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(FC head spikes (N, T, 10) as emitted, spikes fired per layer and step (T, 4)) of the
    chain of `lif_network`, by the step of the module docstring, neuron by neuron in float32
    (theta = 1, V0 = 0, one step of delay per layer)."""
    layers = snn.graph.layers
    w = {k: v.weight.double().numpy() for k, v in snn.weights.items()}
    b = {k: v.bias.double().numpy() for k, v in snn.weights.items()}
    theta = F32(snn.params.threshold)
    v: list = [None] * 4
    fired: list = [None] * 4
    counts = np.zeros((steps, 4), np.int64)
    head = np.zeros((len(x), steps, 10), np.uint8)
    for t in range(steps):
        emitted = list(fired)
        for j, layer in enumerate(layers):
            src = x.astype(np.float64) if j == 0 else emitted[j - 1]
            if layer.kind is LayerKind.CONV:
                if src is None:
                    src = np.zeros((len(x), *layer.in_shape))
                cur = conv_ref(src, w[layer.name], layer.stride) + b[layer.name][:, None, None]
            elif layer.kind is LayerKind.GAP:
                cur = np.zeros((len(x), layer.in_channels)) if src is None else src.mean((2, 3))
            else:
                src = np.zeros((len(x), layer.in_channels)) if src is None else src
                cur = src @ w[layer.name].T
                cur = cur + b[layer.name]
            cur = cur.astype(F32)
            assert np.all(cur.astype(np.float64) == cur)  # exact: dyadic
            n = layer.neuron
            if v[j] is None:
                v[j] = np.full(cur.shape, n.start(0.0), F32)
                fired[j] = np.zeros(cur.shape, F32)
            prev = fired[j]
            new = np.zeros(cur.shape, F32)
            vf, cf, pf, nf = v[j].reshape(-1), cur.reshape(-1), prev.reshape(-1), new.reshape(-1)
            for i in range(vf.size):
                if n.leaky:
                    xv = (vf[i] * F32(n.leak) + F32((1 - F32(n.leak)) * n.v_leak)) + cf[i] * F32(
                        n.gain
                    )
                    if n.delayed_reset and pf[i]:
                        xv = xv - theta
                else:
                    xv = vf[i] + cf[i]
                spike = xv > theta if n.strict else xv >= theta
                if spike and n.reset_to is not None:
                    xv = F32(n.reset_to)
                elif spike and not n.delayed_reset:
                    xv = xv - theta
                vf[i], nf[i] = xv, F32(spike)
            fired[j] = new
            counts[t, j] = int(new.sum())
        if emitted[3] is not None:
            head[:, t] = emitted[3].astype(np.uint8)
    return head, counts


LIF_PRINT = "6f382e013acf6c140af30265bfe0ba8d0801e1e66f07a546f59a9146f1eae5bd"
CASES = {
    "if": (IF_NEURON, IF_NEURON, IF_NEURON, IF_NEURON),
    "lif": (
        Neuron(leak=0.75),
        Neuron(leak=0.875, v_leak=0.25, gain=0.5),
        Neuron(strict=True),  # an IF layer that fires at V > theta
        Neuron(leak=0.5),
    ),
    "snntorch": tuple(
        Neuron(leak=k, strict=True, delayed_reset=True) for k in (0.75, 0.9375, 0.5, 0.875)
    ),
    "reset_to": (  # norse's and spikingjelly's hard resets, IF and leaky, from v_reset
        Neuron(reset_to=0.0),
        Neuron(leak=0.875, v_leak=-0.25, reset_to=-0.25, strict=True, v_init=-0.25),
        Neuron(reset_to=0.5, v_init=0.5),
        Neuron(leak=0.75, gain=0.5, reset_to=0.125),
    ),
    "v_init": (  # IF neurons that start at a potential: the IF path
        Neuron(v_init=0.5),
        Neuron(v_init=-0.25),
        IF_NEURON,
        Neuron(v_init=0.75),
    ),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_the_engine_steps_leaky_neurons_as_the_loop_oracle(case, backend):
    """Both backends equal the loop spike for spike (head spikes and every layer's count per
    step), with chunks of 7 steps (the delayed reset reads the step before across chunks);
    the oracle is no constant: each layer fires, and not everywhere."""
    snn = lif_network(CASES[case])
    x, steps = images(3), 24
    head, counts = loop_oracle(snn, x, steps)
    assert np.all(counts[steps // 2 :].sum(0) > 0)
    assert counts[:, 0].max() < 3 * 8 * 15 * 15
    res = simulate(snn, x, steps, backend=backend, time_chunk=7, threads=1)
    np.testing.assert_array_equal(res.layer_spikes, counts)
    np.testing.assert_array_equal(res.head_spikes[FC_HEAD], head)


@pytest.mark.parametrize("c1", [8, 16, 64])
def test_the_scan_s_channel_counts_of_a_leaky_layer_a_gap_reads(c1):
    """conv1 at 8, 16 and 64 channels: the leaky scan's per-channel spike counts in one, one
    and four vector counters (the 32-channel case above uses two), against the loop."""
    snn = lif_network(CASES["lif"], c1=c1)
    x, steps = images(2), 12
    head, counts = loop_oracle(snn, x, steps)
    assert counts[:, 2].sum() > 0
    res = simulate(snn, x, steps, threads=1)
    np.testing.assert_array_equal(res.layer_spikes, counts)
    np.testing.assert_array_equal(res.head_spikes[FC_HEAD], head)


def test_a_leak_changes_the_spikes():
    """The test can fail: the same network with one leak changed spikes differently."""
    x = images(2)
    base = simulate(lif_network(CASES["lif"]), x, 16).layer_spikes
    other = (Neuron(leak=0.625), *CASES["lif"][1:])
    assert not np.array_equal(base, simulate(lif_network(other), x, 16).layer_spikes)


def test_if_layers_take_the_if_path_and_leaky_ones_their_flags():
    """A neuron with leak 1, gain 1, v_leak 0 is IF (no multiply: flags 0); the layer table
    carries each layer's flags and its float32 leak, rest and gain."""
    assert Neuron(leak=1.0, gain=1.0) == IF_NEURON and not IF_NEURON.leaky
    plan = build_plan(lif_network(CASES["lif"]))
    assert [K.neuron_flags(ly.neuron) for ly in plan.layers] == [
        K.N_LEAKY,
        K.N_LEAKY,
        K.N_STRICT,
        K.N_LEAKY,
    ]
    table = K.neuron_table([ly.neuron for ly in plan.layers])
    np.testing.assert_array_equal(table[1], [0.875, 0.03125, 0.5, 0.0])
    assert table.dtype == np.float32
    reset = build_plan(lif_network(CASES["reset_to"])).layers
    to = K.N_LEAKY | K.N_RESET_TO  # a reset to a potential takes the leaky path
    assert [K.neuron_flags(ly.neuron) for ly in reset] == [to, to | K.N_STRICT, to, to]
    np.testing.assert_array_equal(K.neuron_table([ly.neuron for ly in reset])[:, K.NR_RESET],
                                  [0.0, -0.25, 0.5, 0.125])  # fmt: skip
    starts = build_plan(lif_network(CASES["v_init"])).layers  # a start potential: still IF
    assert [K.neuron_flags(ly.neuron) for ly in starts] == [0, 0, 0, 0]


def test_bad_neurons_and_a_phased_coding_are_refused():
    with pytest.raises(GraphError, match="neuron leak = inf"):
        Neuron(leak=float("inf"))
    with pytest.raises(GraphError, match="neuron reset_to = nan"):
        Neuron(reset_to=float("nan"))
    with pytest.raises(GraphError, match="a potential or by a delayed subtraction"):
        Neuron(reset_to=0.0, delayed_reset=True)
    with pytest.raises(InputError, match="with leaky neurons"):
        simulate(lif_network(CASES["lif"]), images(1), 8, coding=WeightedSpikeCoding(phases=4))


def test_the_fingerprint_names_the_neurons():
    """Traces are cached by the fingerprint: a leak, firing at V > theta, a reset to a
    potential (even 0, on an IF neuron) or a start potential changes it; a neuron without
    either hashes as before they existed (the LIF case's fingerprint at commit 90ca7c5), so
    trace keys stay."""
    prints = {lif_network(CASES[c]).fingerprint() for c in CASES}
    strict = (Neuron(strict=True), *CASES["if"][1:])
    to_zero = (Neuron(reset_to=0.0), *CASES["if"][1:])
    extra = {lif_network(n).fingerprint() for n in (strict, to_zero)}
    assert len(prints | extra) == len(CASES) + 2
    assert lif_network(CASES["lif"]).fingerprint() == LIF_PRINT


@pytest.mark.parametrize("case", CASES)
def test_every_neuron_case_exports_and_reads_back_with_the_same_spikes(case, tmp_path):
    """hwsim's export writes a leaky population as a LIF (forward Euler at dt = 1: tau =
    1 / (1 - leak), r = gain tau), a reset to a potential as v_reset, and records what NIR
    cannot say (V > theta, the delayed reset, a reset to 0, the start) in the metadata's
    `neurons`: read back, every population has its neuron and the FC spikes alike."""
    pytest.importorskip("nir")
    from hwsim.model.nir_export import write_nir
    from hwsim.model.nir_io import read_nir

    snn = lif_network(CASES[case])
    back = read_nir(write_nir(snn, tmp_path / "lif.nir"))
    assert [p.neuron for p in back.graph.populations()] == list(CASES[case])
    from hwsim.model.data import make_synthetic

    x = make_synthetic(4, INPUT, seed=1, split="test").x
    x = (np.round(x * 64) / 64).astype(F32)
    a, b = simulate(snn, x, 30), simulate(back, x, 30)
    assert a.head_spikes[FC_HEAD].sum() > 0
    np.testing.assert_array_equal(a.head_spikes[FC_HEAD], b.head_spikes[FC_HEAD])


def test_the_run_energy_charges_every_leaky_neuron_s_multiplies_every_step():
    """The `leak` component: per image and step, a leaky population's neurons x (1 for its
    leak + 1 for a gain != 1), counted here by hand, x energy_pj.leak_multiply (spikesim.yaml:
    1.1 pJ), whatever the activity; the other components as for the IF network, which has no
    `leak` component."""
    from pathlib import Path

    from hwsim.hw.activity import full_activity
    from hwsim.hw.arch import load_arch
    from hwsim.hw.energy import EVENT_COMPONENTS, run_energy
    from hwsim.hw.mapping import map_network

    arch = load_arch(Path(__file__).resolve().parents[1] / "arch_configs" / "spikesim.yaml")
    assert arch.energy_pj.leak_multiply == 1.1
    leaky = map_network(arch, lif_network(CASES["lif"]).graph)
    activity = full_activity(leaky, timesteps=3, images=2)
    got = run_energy(leaky, activity)
    plain = run_energy(map_network(arch, lif_network(CASES["if"]).graph), activity)
    assert plain.components == EVENT_COMPONENTS
    assert got.components == (*EVENT_COMPONENTS, "leak")
    by_hand = [8 * 15 * 15, 32 * 8 * 8 * 2, 0, 10]  # conv0, conv1 (gain 0.5), gap (IF), linear
    np.testing.assert_array_equal(got.events[:, :, -1], [by_hand] * 3)
    assert got.energy_pj[..., -1].sum() == pytest.approx(3 * sum(by_hand) * 1.1, rel=1e-12)
    np.testing.assert_array_equal(got.energy_pj[..., :-1], plain.energy_pj)


def test_a_lif_threshold_is_folded_with_its_v_leak():
    """Two LIF nodes at thresholds 2 and 1 (folded: theta = 1, the first node's weights and its
    v_leak divided by 2) spike as the same graph with the first node's weights, threshold and
    v_leak halved (thresholds 1 and 1: nothing folded); hwsim's convention: leak 1 - 1 / tau,
    gain r / tau, so the Conv2d's LIF has leak 0.75, gain 0.25."""
    nir = pytest.importorskip("nir")
    from hwsim.model.nir_io import import_graph

    rng = np.random.default_rng(3)
    w1 = (np.round(rng.normal(0, 1.5, (4, 1, 3, 3)) * 64) / 64).astype(F32)
    w2 = (np.round(rng.normal(0, 0.5, (10, 4 * 15 * 15)) * 64) / 64).astype(F32)

    def graph(k: float):
        return nir.NIRGraph.from_list(
            nir.Input(input_type=np.array(INPUT)),
            nir.Conv2d((15, 15), w1 * k, 1, 1, 1, 1, np.zeros(4, F32)),
            nir.LIF(*(np.full((4, 15, 15), v, F32) for v in (4.0, 1.0, 0.25 * k, k))),
            nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([4, 15, 15])}),
            nir.Affine(w2, np.zeros(10, F32)),
            nir.LIF(*(np.full(10, v, F32) for v in (2.0, 1.0, 0.0, 1.0))),
            nir.Output(output_type=np.array([10])),
        )

    plain, folded = import_graph(graph(1.0)), import_graph(graph(2.0))
    assert plain.params.threshold == 1 and folded.params.threshold == 1
    first = folded.graph.populations()[0].neuron
    assert (first.leak, first.gain, first.v_leak) == (0.75, 0.25, 0.25)
    x = images(4)
    a, b = simulate(plain, x, 30), simulate(folded, x, 30)
    assert a.layer_spikes[:, 1].sum() > 0
    np.testing.assert_array_equal(a.layer_spikes, b.layer_spikes)


def test_a_leak_above_1_is_refused_naming_the_node_and_convention():
    """tau < 0 read exactly (sinabs' convention): leak exp(1 / 2) > 1, refused by name."""
    nir = pytest.importorskip("nir")
    from hwsim.model.nir_io import import_graph
    from hwsim.model.nir_nodes import NirError

    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([4])),
        nir.Affine(np.ones((10, 4), F32), np.zeros(10, F32)),
        nir.LIF(*(np.full(10, v, F32) for v in (-2.0, 1.0, 0.0, 1.0))),
        nir.Output(output_type=np.array([10])),
    )
    text = "LIF 'lif': its leak per step is 1.64872 (tau -2 s at dt = 1 s, convention 'sinabs')"
    with pytest.raises(NirError, match=re.escape(text) + r".*\(tau >= 0\)"):
        import_graph(graph, convention="sinabs", input_shape=(4, 1, 1))


@pytest.mark.parametrize("v_reset", [-0.5, 0.0])
@pytest.mark.parametrize("convention", ["hwsim", "norse"])
def test_a_reset_potential_is_scaled_with_the_membrane(v_reset, convention):
    """LIF nodes (leak 0.75, gain 0.25) at thresholds 2 and 1 resetting to v_reset times their
    threshold (folded: theta = 1, the first node's weights, v_leak and reset halved) spike as
    the graph with the first node's values halved (nothing folded). A nonzero v_reset resets
    under any convention, v_reset = 0 only under one that resets to a potential (norse's;
    hwsim's subtracts: reset_to None); the reset changes the spikes."""
    nir = pytest.importorskip("nir")
    from hwsim.model.nir_convention import PRESETS
    from hwsim.model.nir_io import import_graph

    rng = np.random.default_rng(3)
    w1 = (np.round(rng.normal(0, 1.5, (4, 1, 3, 3)) * 64) / 64).astype(F32)
    w2 = (np.round(rng.normal(0, 0.5, (10, 4 * 15 * 15)) * 64) / 64).astype(F32)
    dt = PRESETS[convention].dt

    def graph(k: float, reset: float):
        first = (4 * dt, 1.0, 0.25 * k, k, reset * k)  # tau, r, v_leak, v_threshold, v_reset
        return nir.NIRGraph.from_list(
            nir.Input(input_type=np.array(INPUT)),
            nir.Conv2d((15, 15), w1 * k, 1, 1, 1, 1, np.zeros(4, F32)),
            nir.LIF(*(np.full((4, 15, 15), v, F32) for v in first)),
            nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([4, 15, 15])}),
            nir.Affine(w2, np.zeros(10, F32)),
            nir.LIF(*(np.full(10, v, F32) for v in (2 * dt, 1.0, 0.0, 1.0, reset))),
            nir.Output(output_type=np.array([10])),
        )

    plain = import_graph(graph(1.0, v_reset), convention=convention)
    folded = import_graph(graph(2.0, v_reset), convention=convention)
    first = folded.graph.populations()[0].neuron
    resets = v_reset != 0 or convention == "norse"
    assert first.reset_to == (v_reset if resets else None) and first.v_leak == 0.25
    x = images(4)
    a, b = simulate(plain, x, 30), simulate(folded, x, 30)
    assert a.layer_spikes[:, 1].sum() > 0
    np.testing.assert_array_equal(a.layer_spikes, b.layer_spikes)
    if resets:
        other = import_graph(graph(1.0, v_reset + 0.25), convention=convention)
        assert not np.array_equal(simulate(other, x, 30).layer_spikes, a.layer_spikes)


def test_a_reset_potential_with_a_delayed_reset_or_out_of_range_is_refused():
    """Under snntorch's delayed reset a nonzero v_reset is refused by name; so is a v_reset /
    v_threshold beyond float32 (v_reset -1e38 at threshold 1e-37, folded beside a node at
    threshold 1: theta = 1), under any convention."""
    nir = pytest.importorskip("nir")
    from hwsim.model.nir_io import import_graph
    from hwsim.model.nir_nodes import NirError

    def graph(threshold: float, v_reset: float):
        return nir.NIRGraph.from_list(
            nir.Input(input_type=np.array([4])),
            nir.Affine(np.ones((4, 4), F32), np.zeros(4, F32)),
            nir.IF(*(np.full(4, v, F32) for v in (1.0, threshold, v_reset))),
            nir.Affine(np.ones((10, 4), F32), np.zeros(10, F32)),
            nir.IF(*(np.full(10, v, F32) for v in (1.0, 1.0, 0.0))),
            nir.Output(output_type=np.array([10])),
        )

    text = "IF 'if': v_reset = -0.5 under the convention 'snntorch', whose reset is delayed"
    with pytest.raises(NirError, match=re.escape(text)):
        import_graph(graph(1.0, -0.5), convention="snntorch", input_shape=(4, 1, 1))
    with pytest.raises(NirError, match=r"IF 'if': v_reset / v_threshold = -1e\+75; a reset"):
        import_graph(graph(1e-37, -1e38), convention="norse", input_shape=(4, 1, 1))
