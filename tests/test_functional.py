"""Hardware-functional inference: with ideal settings it equals the ideal engine spike for
spike (dyadic weights and inputs); a coarse ADC departs from it; activity feeds the energy; the
crossbars run as synapses in the engine's own IF loop."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hwsim.coding import PoissonCoding, WeightedSpikeCoding
from hwsim.convert import ConversionParams, SpikingNetwork, Weights
from hwsim.engine import simulate
from hwsim.functional import (
    FunctionalRun,
    Knob,
    activity_spec,
    calibrate_hardware,
    chip_simulation,
    codesign,
    compare,
    evaluate,
    layer_activity,
    simulate_hardware,
    with_knob,
)
from hwsim.graph import FC_HEAD, BlockKind, LayerKind
from hwsim.hw.arch import Architecture, FullScale, load_arch, parse_arch
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
from hwsim.hw.mapping import map_network
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


# 8-bit weights on 2-bit cells (SpikeSim's digital sign, slices as parallel cells), a 16-bit ADC
# with an LSB of one level: no column signal of these small networks clips
IDEAL = variant(device={"weight_bits": 8, "bits_per_cell": 2}, adc={"bits": 16})


def dyadic_net(
    spec: NetSpec, seed: int = 0, density: float = 1.0, code: int = 127
) -> SpikingNetwork:
    """Random weights on multiples of 2^-8 (within 8-bit codes), biases on 2^-8; drawn block by
    block (conv1, conv2, skip of a residual block), then head by head. `density` < 1 keeps
    that fraction of the weights (the others 0)."""
    g = torch.Generator().manual_seed(seed)
    graph = spec.graph()
    weights: dict[str, Weights] = {}

    def codes(*shape: int) -> torch.Tensor:
        keep = torch.rand(shape, generator=g) < density
        return torch.randint(-code, code + 1, shape, generator=g).double() * keep

    def conv(name: str) -> None:
        layer = graph.layer(name)
        c_out, c_in, k, _ = layer.weight_shape
        # codes * 2^-8 scaled down by ~1 / fan-in, rounded back onto the 2^-8 grid
        w = torch.round(codes(c_out, c_in, k, k) * 1.5 / (k * c_in**0.5 * density)) / 2**8
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
        w = torch.round(codes(spec.num_classes, c) * 2.0 / (c**0.5 * density)) / 2**8
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
        "vgg_differential_columns",
        VGG,
        variant(
            device={"weight_bits": 8, "bits_per_cell": 2, "signed_weights": "differential",
                    "slicing": "columns"},
            adc={"bits": 16},
        ),
        FirstLayer.BIT_SERIAL,
    ),
    (
        "vgg_offset_unrolled",
        VGG,
        variant(
            device={"weight_bits": 8, "bits_per_cell": 2, "signed_weights": "offset"},
            adc={"bits": 16},
            mapping={"style": "unrolled"},
        ),
        FirstLayer.BIT_SERIAL,
    ),
]  # fmt: skip


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


@pytest.mark.parametrize("bits", [4, 5, 6, 8])
def test_auto_full_scale_keeps_the_ideal_spikes_when_signals_fit(bits: int) -> None:
    # sparse weights of codes +-1 (2-bit differential weights on 1-bit cells): every column
    # signal is a few cell levels, within a 4-bit ADC whose LSB is one level (SpikeSim's rule):
    # no code clips and no rounding happens, so the spikes are the ideal engine's
    arch = variant(
        device={"weight_bits": 2, "signed_weights": "differential", "slicing": "columns"},
        adc={"bits": bits},
    )
    assert arch.adc_lsb_levels == 1.0 and arch.adc_signed  # codes -2^(n-1)..2^(n-1) - 1
    snn = dyadic_net(NetSpec("vgg11", 1 / 16, (1, 16, 16), 4, ()), seed=2, density=0.05, code=1)
    quantised = quantise_network(snn, 2)
    images = dyadic_images(4)
    ideal = simulate(quantised, images, T)
    result = simulate_hardware(build_hardware(snn, arch, FunctionalConfig(FirstLayer.DIGITAL)),
                               images, T)  # fmt: skip
    assert sum(result.adc_clips.values()) == 0 and sum(result.adc_conversions.values()) > 0
    assert compare(result, ideal, np.zeros(4, np.int64), None).identical
    assert ideal.layer_spikes[:, 1:].sum() > 0  # deeper layers spike


def test_activity_is_the_engine_s_count_of_the_same_spikes(vgg_net) -> None:
    images = dyadic_images(4)
    hw = build_hardware(vgg_net, IDEAL)
    result = simulate_hardware(hw, images, T)
    act, sim = result.activity, result.sim
    assert act.images == 4 and act.layer_names == vgg_net.graph.names
    for j, name in enumerate(sim.layer_names):
        k = act.layer_names.index(vgg_net.graph.sender(name).name)
        # spikes sent at t are the spikes fired at t - 1 (one-step delay)
        assert act.output_spikes[0, k] == 0
        assert np.array_equal(act.output_spikes[1:, k], sim.layer_spikes[:-1, j])
    # the engine counts the same PE operations and crossbar reads from the same (identical)
    # spikes; a Linear layer it lays out as a 1x1 kernel, not SpikeSim's (4, 1): skipped
    quantised = quantise_network(vgg_net, 8)
    engine = simulate(quantised, images, T, activity=activity_spec(IDEAL)).activity
    ref = layer_activity(vgg_net.graph, engine, 4)
    for k, g in enumerate(vgg_net.graph.layers):
        if g.kind is not LayerKind.LINEAR:
            assert np.array_equal(act.active_pe_ops[:, k], ref.active_pe_ops[:, k]), g.name
            assert np.array_equal(act.crossbar_reads[:, k], ref.crossbar_reads[:, k]), g.name
            assert np.array_equal(act.input_spikes[:, k], ref.input_spikes[:, k]), g.name
    assert act.active_pe_ops[0, 0] == 4 * 16 * 16  # analog first layer: every window is live
    # event-driven energy never exceeds SpikeSim's every-op-every-step figure
    mapping = map_network(IDEAL, vgg_net.graph)
    event = map_network(parse_arch({**IDEAL.to_mapping(), "energy_model": "event"}, "e"),
                        vgg_net.graph)  # fmt: skip
    e, s = run_energy(event, act), run_energy(mapping, act)
    k = len(COMPONENTS)
    assert 0 < e.energy_pj[:, :, :k].sum() < s.energy_pj[:, :, :k].sum()


def test_coarse_adc_departs_from_the_ideal(vgg_net) -> None:
    images = dyadic_images(4)
    ideal = simulate(quantise_network(vgg_net, 8), images, T)
    coarse = with_adc(IDEAL, bits=3, full_scale_levels=7.0)  # LSB 1 level, clips at 7
    assert coarse.adc_lsb_levels == pytest.approx(1.0)
    result = simulate_hardware(build_hardware(vgg_net, coarse), images, T)
    report = compare(result, ideal, np.zeros(4, np.int64), None)
    assert not report.identical
    assert all(0.0 <= v <= 1.0 for v in report.head_agreement.values())
    assert max(report.layer_spike_error.values()) > 0
    assert 0 < report.adc_clip_fraction < 1


def test_calibrated_full_scale_by_hand(vgg_net) -> None:
    arch = with_adc(IDEAL, bits=4, full_scale=FullScale.CALIBRATED)
    hw = build_hardware(vgg_net, arch)
    assert not hw.calibrated
    with pytest.raises(ValueError, match="calibrate"):
        simulate_hardware(hw, dyadic_images(2), 4)
    hw.calibrating()
    for layer in hw.layers.values():  # 1000 signals: 0 .. 999 eighths of a level
        layer.hist = np.ones(1000, np.int64)
    lsb = hw.calibrate()
    # the 99.9th percentile: rank 999 of 1000 -> bin 998 = 124.75 levels onto code 15
    assert lsb == dict.fromkeys(hw.layers, pytest.approx(998 / 8 / 15))
    assert all(layer.adc is not None for layer in hw.layers.values())


def test_calibrated_run_clips_about_the_percentile_it_leaves_out(vgg_net) -> None:
    images = dyadic_images(4)
    arch = with_adc(IDEAL, bits=6, full_scale=FullScale.CALIBRATED)
    hw = build_hardware(vgg_net, arch)
    lsb = calibrate_hardware(hw, images, T)
    assert all(v > 0 for v in lsb.values())
    result = simulate_hardware(hw, images, T)
    # calibrated on these very images with the ideal ADC's spikes: about 0.1% clip
    assert 0 < result.clip_fraction < 0.01


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
    arch = with_adc(SPIKESIM, bits=6, full_scale_levels=50.0)
    assert (arch.adc.bits, arch.adc.full_scale) == (6, FullScale.EXPLICIT)
    assert arch.adc.full_scale_ua == pytest.approx(50 * SPIKESIM.level_a * 1e6)
    assert arch.adc.reference_bits == 4 and arch.adc_cost_scale == 4.0  # costs at 4 bits
    assert SPIKESIM.adc.bits == 4
    assert with_adc(arch, full_scale=FullScale.AUTO).adc.full_scale_ua is None
    with pytest.raises(ValueError, match="explicit"):
        with_adc(SPIKESIM, full_scale=FullScale.CALIBRATED, full_scale_levels=2.0)


def test_chip_simulation_is_a_trace_with_the_chip_s_activity(vgg_net) -> None:
    images = dyadic_images(3)
    run = FunctionalRun(IDEAL)
    sim = chip_simulation(vgg_net, images, T, run, dyadic_images(2, seed=9))
    ideal = simulate(quantise_network(vgg_net, 8), images, T, activity=activity_spec(IDEAL))
    assert np.array_equal(sim.layer_spikes, ideal.layer_spikes)  # an ideal chip
    act, ref = sim.activity, ideal.activity
    assert act is not None and ref is not None and act.spec == ref.spec
    assert act.names == ref.names and np.array_equal(act.dst, ref.dst)
    assert np.array_equal(act.out_spikes, ref.out_spikes)
    conv = [k for k, g in enumerate(vgg_net.graph.layers) if g.kind is not LayerKind.LINEAR]
    assert np.array_equal(act.active_windows[:, conv], ref.active_windows[:, conv])
    assert np.array_equal(act.dense_windows[conv], ref.dense_windows[conv])
    # the key holds what spikes depend on, not the energies
    cheaper = replace(IDEAL, energy_pj=replace(IDEAL.energy_pj, adc=0.0))
    assert FunctionalRun(cheaper).key() == run.key()
    assert FunctionalRun(with_adc(IDEAL, bits=8)).key() != run.key()


def test_codesign_runs_the_reference_once(vgg_net, monkeypatch) -> None:
    import hwsim.functional as functional

    calls = []
    real = functional.simulate

    def counted(snn, *args, **kwargs):
        calls.append(kwargs.get("backend", "numba"))
        return real(snn, *args, **kwargs)

    monkeypatch.setattr(functional, "simulate", counted)
    images, labels = dyadic_images(3), np.array([0, 1, 2])
    result = codesign(vgg_net, IDEAL, images, labels, 8, Knob.ADC_BITS, [3, 16])
    # float and quantised references once, then one hardware run per value
    assert calls == ["numba", "numba", "torch", "torch"]
    low, high = result.rows
    assert (low.value, high.value) == (3.0, 16.0)
    assert high.fc_agreement == 1.0 and high.clip_fraction == 0.0
    assert low.clip_fraction > 0
    # energy per inference: the ADC's share scales 2^(bits - 4) (spikesim.yaml's 4-bit cost)
    assert high.energy_pj > low.energy_pj
    rows = result.to_rows()
    assert [r["hardware"] for r in rows] == ["functional", "functional", "ideal", "ideal_quantised"]
    assert rows[2]["accuracy_fc"] == result.ideal_accuracy
    # the network keeps IC 2: its accuracy is reported beside the FC's
    assert result.ic == 2 and rows[1]["accuracy_ic"] == high.ic_accuracy is not None
    fc_only = codesign(vgg_net.with_heads((FC_HEAD,)), IDEAL, images, labels, 4, Knob.ADC_BITS, [8])
    assert "accuracy_ic" not in fc_only.to_rows()[0]


@pytest.mark.parametrize(
    ("knob", "value", "check"),
    [
        (Knob.ADC_BITS, 6, lambda a, c: a.adc.bits == 6),
        (Knob.CELLS_PER_WEIGHT, 2, lambda a, c: a.device.bits_per_cell == 4),  # ceil(7 / 2)
        (Knob.VARIATION_SIGMA, 0.2, lambda a, c: c.noise.sigma == 0.2),
    ],
)
def test_knobs(knob, value, check) -> None:
    arch, config = with_knob(IDEAL, FunctionalConfig(), knob, value)
    assert check(arch, config)
    with pytest.raises(ValueError, match="cells-per-weight"):
        with_knob(IDEAL, FunctionalConfig(), Knob.CELLS_PER_WEIGHT, 8)


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
