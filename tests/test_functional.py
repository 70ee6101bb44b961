"""Hardware-functional inference: with ideal settings it equals the ideal engine spike for
spike (dyadic weights and inputs); a coarse ADC departs from it; activity feeds the energy; the
crossbars run as synapses in the engine's own IF loop."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hwsim.coding import PoissonCoding, WeightedSpikeCoding
from hwsim.convert import ConversionParams, SpikingNetwork, Weights
from hwsim.engine import simulate
from hwsim.functional import compare, evaluate, simulate_hardware
from hwsim.graph import FC_HEAD, BlockKind, LayerKind
from hwsim.hw.arch import Architecture, load_arch, parse_arch
from hwsim.hw.device import Nonidealities
from hwsim.hw.energy import COMPONENTS, run_energy
from hwsim.hw.functional import (
    FirstLayer,
    FunctionalConfig,
    build_hardware,
    input_step,
    quantise_network,
    with_adc,
)
from hwsim.netspec import NetSpec

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml")
T = 16


def variant(**sections: dict) -> Architecture:
    raw = SPIKESIM.to_mapping()
    for section, values in sections.items():
        if isinstance(raw.get(section), dict):
            raw[section].update(values)
        else:
            raw[section] = values
    return parse_arch(raw, "variant")


# 8-bit weights on 2-bit cells, a 10-bit ADC: LSB = 256 / 512 = 1/2 level, nothing clips
IDEAL = variant(device={"weight_bits": 8, "bits_per_cell": 2}, adc={"bits": 10})


def dyadic_net(spec: NetSpec, seed: int = 0) -> SpikingNetwork:
    """Random weights on multiples of 2^-8 (within 8-bit codes), biases on 2^-8; drawn block by
    block (conv1, conv2, skip of a residual block), then head by head."""
    g = torch.Generator().manual_seed(seed)
    graph = spec.graph()
    weights: dict[str, Weights] = {}

    def codes(*shape: int) -> torch.Tensor:
        return torch.randint(-127, 128, shape, generator=g).double()

    def conv(name: str) -> None:
        layer = graph.layer(name)
        c_out, c_in, k, _ = layer.weight_shape
        # codes * 2^-8 scaled down by ~1 / fan-in, rounded back onto the 2^-8 grid
        w = torch.round(codes(c_out, c_in, k, k) * 1.5 / (k * c_in**0.5)) / 2**8
        b = torch.round(torch.randn(c_out, generator=g) * 0.1 * 2**8) / 2**8
        weights[name] = Weights(w.float(), b.float())

    for i, b in enumerate(spec.blocks()):
        parts = graph.block_layers(i)
        conv(parts.conv.name)
        if b.kind is BlockKind.RESIDUAL:
            assert parts.conv2 is not None and parts.skip is not None
            conv(parts.conv2.name)
            conv(parts.skip.name)
    for h in spec.head_positions:
        linear = graph.head_output(h)
        c = linear.in_channels
        w = torch.round(codes(spec.num_classes, c) * 2.0 / c**0.5) / 2**8
        weights[linear.name] = Weights(w.float(), torch.full((spec.num_classes,), 2.0**-3))
    return SpikingNetwork(spec, graph, weights, ConversionParams(), ())


def dyadic_images(n: int, seed: int = 1) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    return (torch.round(torch.rand(n, 1, 16, 16, generator=g) * 2**7) / 2**6 - 1).numpy()


VGG = NetSpec("vgg11", 1 / 16, (1, 16, 16), 4, (2,))
RESNET = NetSpec("resnet18", 1 / 16, (1, 16, 16), 4, (3,))


@pytest.fixture(scope="module")
def vgg_net() -> SpikingNetwork:
    return dyadic_net(VGG)


CASES = [
    ("vgg_bit_serial", VGG, IDEAL, FirstLayer.BIT_SERIAL),
    ("vgg_digital", VGG, IDEAL, FirstLayer.DIGITAL),
    ("resnet_bit_serial", RESNET, IDEAL, FirstLayer.BIT_SERIAL),
    (
        "vgg_offset_unrolled",
        VGG,
        variant(
            device={"weight_bits": 8, "bits_per_cell": 2, "signed_weights": "offset"},
            adc={"bits": 10},
            mapping={"style": "unrolled"},
        ),
        FirstLayer.BIT_SERIAL,
    ),
]


@pytest.mark.parametrize(("case", "spec", "arch", "first"), CASES, ids=[c[0] for c in CASES])
def test_ideal_hardware_equals_ideal_engine_spike_for_spike(case, spec, arch, first) -> None:
    snn = dyadic_net(spec)
    quantised = quantise_network(snn, arch.device.weight_bits)
    for name, w in snn.weights.items():
        assert torch.equal(w.weight, quantised.weights[name].weight)  # already representable
    images = dyadic_images(5)
    assert input_step(images, 8) == 2.0**-6  # inputs on 2^-6 within [-1, 1]: exact
    ideal = simulate(quantised, images, T)
    hw = build_hardware(snn, arch, FunctionalConfig(first_layer=first))
    result = simulate_hardware(hw, images, T, batch_size=3)
    report = compare(result, ideal, np.zeros(5, np.int64), None)
    assert sum(result.adc_clips.values()) == 0
    assert report.identical, report.layer_spike_error
    assert report.head_agreement == {h: 1.0 for h in snn.heads}
    assert ideal.head_spikes[FC_HEAD].sum() > 0  # not vacuous: the heads fire
    assert ideal.layer_spikes.sum(axis=0).min() > 0 or spec.name == "resnet18"


def test_activity_matches_the_spikes(vgg_net) -> None:
    images = dyadic_images(4)
    hw = build_hardware(vgg_net, IDEAL)
    result = simulate_hardware(hw, images, T)
    act, sim = result.activity, result.sim
    assert act.images == 4 and act.layer_names == tuple(g.name for g in hw.geometry)
    assert act.layer_names == vgg_net.graph.names
    for j, name in enumerate(sim.layer_names):
        k = act.layer_names.index(vgg_net.graph.sender(name).name)
        # spikes sent at t are the spikes fired at t - 1 (one-step delay)
        assert act.output_spikes[0, k] == 0
        assert np.array_equal(act.output_spikes[1:, k], sim.layer_spikes[:-1, j])
    conv1 = act.layer_names.index("conv1")
    assert np.array_equal(act.input_spikes[1:, conv1], act.output_spikes[1:, conv1 - 1])
    assert np.all(act.active_pe_ops >= 0)
    assert act.active_pe_ops[0, 0] == 4 * 16 * 16  # analog first layer: every window is live
    # event-driven energy never exceeds SpikeSim's every-op-every-step figure
    event = parse_arch({**IDEAL.to_mapping(), "energy_model": "event"}, "event")
    e = run_energy(event, hw.geometry, act, noc_flit_hops=np.zeros(act.output_spikes.shape))
    s = run_energy(IDEAL, hw.geometry, act)
    k = len(COMPONENTS)
    assert 0 < e.energy_pj[:, :, :k].sum() < s.energy_pj[:, :, :k].sum()


def test_coarse_adc_departs_from_the_ideal(vgg_net) -> None:
    images = dyadic_images(4)
    ideal = simulate(quantise_network(vgg_net, 8), images, T)
    coarse = with_adc(IDEAL, bits=3, full_scale_levels=4.0)  # LSB 1 level, clips at +-4
    assert coarse.adc_full_scale_levels == pytest.approx(4.0)
    result = simulate_hardware(build_hardware(vgg_net, coarse), images, T)
    report = compare(result, ideal, np.zeros(4, np.int64), None)
    assert not report.identical
    assert all(0.0 <= v <= 1.0 for v in report.head_agreement.values())
    assert max(report.layer_spike_error.values()) > 0
    assert 0 < report.adc_clip_fraction < 1


def test_variation_is_seeded(vgg_net) -> None:
    images = dyadic_images(2)
    cfg = FunctionalConfig(noise=Nonidealities(sigma=0.3, sa0_rate=0.01, seed=5))
    a = simulate_hardware(build_hardware(vgg_net, IDEAL, cfg), images, 6)
    b = simulate_hardware(build_hardware(vgg_net, IDEAL, cfg), images, 6)
    assert np.array_equal(a.sim.layer_spikes, b.sim.layer_spikes)
    clean = simulate_hardware(build_hardware(vgg_net, IDEAL), images, 6)
    assert not np.array_equal(a.sim.layer_spikes, clean.sim.layer_spikes)


def test_evaluate_reports_float_quantised_and_hardware(vgg_net) -> None:
    images = dyadic_images(3)
    labels = np.array([0, 1, 2])
    report = evaluate(vgg_net, IDEAL, images, labels, 8)
    assert set(report.accuracy) == {"float", "quantised", "hardware"}
    assert report.identical
    assert report.accuracy["hardware"] == report.accuracy["quantised"]


def test_with_adc_overrides() -> None:
    arch = with_adc(SPIKESIM, bits=6, full_scale_ua=50.0)
    assert (arch.adc.bits, arch.adc.full_scale_ua) == (6, 50.0)
    assert SPIKESIM.adc.bits == 4
    with pytest.raises(ValueError, match="not both"):
        with_adc(SPIKESIM, full_scale_ua=1.0, full_scale_levels=2.0)


class Recording:
    """A dense synapse (the layer's own float op) that records its calls."""

    def __init__(self, snn: SpikingNetwork, name: str):
        self.snn, self.layer = snn, snn.graph.layer(name)
        self.calls: list[tuple[int, tuple[int, ...]]] = []

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        self.calls.append((t, tuple(x.shape)))
        return self.snn.layer_forward(self.layer, x)


def test_synapses_run_in_the_engines_if_loop() -> None:
    snn = dyadic_net(RESNET)
    images = dyadic_images(5)
    steps = 6
    syn = {name: Recording(snn, name) for name in snn.graph.names}
    sim = simulate(snn, images, steps, backend="torch", batch_size=3, synapses=syn)
    ref = simulate(snn, images, steps)  # numba, no synapses
    assert np.array_equal(sim.layer_spikes, ref.layer_spikes)
    for h in ref.head_spikes:
        assert np.array_equal(sim.head_spikes[h], ref.head_spikes[h])
    for name, s in syn.items():  # once per connection, timestep and batch, in timestep order
        layer = snn.graph.layer(name)
        assert [t for t, _ in s.calls] == [*range(steps), *range(steps)], name
        assert {shape[1:] for _, shape in s.calls} == {
            layer.in_shape if layer.kind is not LayerKind.LINEAR else (layer.in_channels,)
        }
    # some synapses among dense connections (the input layer's fed Poisson spikes): still the
    # engine's spikes
    some = {name: Recording(snn, name) for name in ("conv0", "block1.skip")}
    coding = PoissonCoding(3)
    a = simulate(snn, images, steps, backend="torch", coding=coding, synapses=some)
    b = simulate(snn, images, steps, backend="torch", coding=coding)
    assert np.array_equal(a.layer_spikes, b.layer_spikes) and a.layer_spikes[1:, 0].sum() > 0


def test_synapses_are_refused_where_they_cannot_run(vgg_net) -> None:
    images = dyadic_images(2)
    hw = build_hardware(vgg_net, IDEAL)
    with pytest.raises(ValueError, match="torch backend"):
        simulate(vgg_net, images, 4, synapses=hw.synapses)
    with pytest.raises(ValueError, match="phase weight"):
        simulate(
            vgg_net,
            images,
            4,
            backend="torch",
            coding=WeightedSpikeCoding(4),
            synapses=hw.synapses,
        )
    with pytest.raises(ValueError, match="not in the network"):
        simulate(vgg_net, images, 4, backend="torch", synapses={"nope": hw.layers["conv0"]})
    bad = {"conv1": lambda x, t: torch.zeros(1)}
    with pytest.raises(ValueError, match="synapse of conv1"):
        simulate(vgg_net, images, 4, backend="torch", synapses=bad)
    with pytest.raises(RuntimeError, match="start"):
        build_hardware(vgg_net, IDEAL).layers["conv0"](torch.from_numpy(images), 0)
