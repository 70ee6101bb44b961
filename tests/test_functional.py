"""Hardware-functional inference: with ideal settings it equals the ideal engine spike for
spike (dyadic weights and inputs); a coarse ADC departs from it; activity feeds the energy; the
crossbars run as synapses in the engine's own IF loop: in the numba kernels (`CrossbarSynapse`,
the default), checked against the layers' own reads as torch synapses (the reference) for every
mapping, sign and slicing style, ADC full scale and device noise, and against plain loops."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hwsim.engine import simulate
from hwsim.engine.backends import CROSSBAR_COUNTS, CrossbarSynapse, NumbaBackend
from hwsim.engine.plan import Conn, ConnKind, build_plan
from hwsim.engine.torch_backend import TorchBackend
from hwsim.errors import InputError
from hwsim.hw.arch import Architecture, FullScale, load_arch, parse_arch
from hwsim.hw.device import Nonidealities
from hwsim.hw.energy import COMPONENTS, READ_EVENTS, run_energy
from hwsim.hw.mapping import map_network
from hwsim.hw.synapse import (
    FirstLayer,
    FunctionalConfig,
    build_hardware,
    input_step,
    quantise_network,
    with_adc,
)
from hwsim.model.coding import DirectCoding, PoissonCoding, WeightedSpikeCoding
from hwsim.model.convert import ConversionParams, SpikingNetwork, Weights
from hwsim.model.graph import FC_HEAD, BlockKind, LayerKind
from hwsim.model.netspec import NetSpec
from hwsim.pipeline.hardware import (
    FunctionalRun,
    HardwareResult,
    Knob,
    activity_spec,
    calibrate_hardware,
    chip_run,
    chip_simulation,
    codesign,
    compare,
    crossbar_synapse,
    evaluate,
    layer_activity,
    prepared_hardware,
    simulate_hardware,
    with_knob,
)

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml")
T = 16
torch.set_num_threads(1)


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


class InputRecorder:
    """A torch-engine synapse computing a Linear layer's dense op (as the engine would) that
    keeps what it read: per timestep, the (images, features) spikes."""

    def __init__(self, weights: Weights, timesteps: int) -> None:
        self.w, self.b = weights.weight.float(), weights.bias.float()
        self.inputs: list[list[np.ndarray]] = [[] for _ in range(timesteps)]

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        self.inputs[t].append(x.numpy().copy())
        return torch.nn.functional.linear(x, self.w, self.b)


def linear_reads(spikes: np.ndarray, kernel_rows: int, rows: int, col_groups: int) -> tuple:
    """PE operations and crossbar reads of one timestep of a Linear layer by plain loops:
    feature f on crossbar row (f // kernel_rows) % rows of kernel position f % kernel_rows and
    channel group (f // kernel_rows) // rows; a read is a (position, channel group) with a
    spiking row, a PE operation a channel group with one, per image and column group."""
    ops = reads = 0
    for image in spikes:
        driven = {(f % kernel_rows, (f // kernel_rows) // rows) for f in np.flatnonzero(image)}
        ops += len({g for _, g in driven}) * col_groups
        reads += len(driven) * col_groups
    return ops, reads


def test_the_functional_mode_on_ideal_devices_charges_what_the_ideal_mode_charges(vgg_net):
    """On an ideal chip (dyadic weights, an ADC of one level per LSB, no variation) the
    functional mode's activity is the ideal mode's, per layer and timestep, and so is the
    energy (event model, NoC charged): the same spikes, sent when a plain loop over the graph
    says (a head's output at t to the fusion unit, every other sending layer at t + 1), the
    same PE operations, crossbar reads and input spikes. A Linear layer's operations and reads
    are counted on different layouts: the chip holds it as a (4, 1) kernel over ceil(F / 4)
    rows (hw.geometry), the engine's counter as a 1x1 kernel over F rows (they agree here on
    the operations only because each head's F fits one row group); each is checked against a
    plain loop over the layer's inputs, and the energy differs by the crossbar reads alone."""
    arch = variant(device={"weight_bits": 8, "bits_per_cell": 2}, adc={"bits": 16},
                   energy_model="event", energy_pj={"noc_flit_hop": 1.5})  # fmt: skip
    graph = vgg_net.graph
    images = dyadic_images(4)
    result = simulate_hardware(build_hardware(vgg_net, arch), images, T)
    quantised = quantise_network(vgg_net, 8)
    linears = [g for g in graph.layers if g.kind is LayerKind.LINEAR]
    recorders = {g.name: InputRecorder(quantised.weights[g.name], T) for g in linears}
    engine = simulate(quantised, images, T, activity=activity_spec(arch), backend="torch",
                      synapses=recorders)  # fmt: skip
    counted = simulate(quantised, images, T, activity=activity_spec(arch))
    assert np.array_equal(engine.layer_spikes, counted.layer_spikes)
    assert np.array_equal(result.sim.layer_spikes, engine.layer_spikes)  # the same spikes
    ideal = layer_activity(graph, counted.activity, 4)
    act = result.activity
    heads = {graph.head_output(h).name for h in graph.heads}
    column = {name: j for j, name in enumerate(engine.layer_names)}
    mapping = map_network(arch, graph)
    for k, g in enumerate(graph.layers):
        fired = engine.layer_spikes[:, column[g.population]]
        sent = np.zeros(T, np.int64)
        if g.name in heads:
            sent[:] = fired  # the fusion unit decides step t on the head's spikes through t
        elif g.sends_spikes:
            sent[1:] = fired[:-1]
        assert np.array_equal(act.output_spikes[:, k], sent), g.name
        assert np.array_equal(ideal.output_spikes[:, k], sent), g.name
        assert np.array_equal(act.input_spikes[:, k], ideal.input_spikes[:, k]), g.name
        if g.kind is not LayerKind.LINEAR:
            assert np.array_equal(act.active_pe_ops[:, k], ideal.active_pe_ops[:, k]), g.name
            assert np.array_equal(act.crossbar_reads[:, k], ideal.crossbar_reads[:, k]), g.name
            continue
        inputs = [np.concatenate(x) for x in recorders[g.name].inputs]
        groups = mapping.layers[k].col_groups
        for got, kernel_rows in ((act, 4), (ideal, 1)):
            ops, reads = zip(*(linear_reads(x, kernel_rows, arch.crossbar.rows, groups)
                               for x in inputs), strict=True)  # fmt: skip
            assert got.active_pe_ops[:, k].tolist() == list(ops), (g.name, kernel_rows)
            assert got.crossbar_reads[:, k].tolist() == list(reads), (g.name, kernel_rows)
    assert act.active_pe_ops[0, 0] == 4 * 16 * 16  # analog first layer: every window is live
    # the energy per layer, timestep and component: equal but for a Linear layer's reads (its
    # PE operations coincide on this network)
    functional, reference = run_energy(mapping, act), run_energy(mapping, ideal)
    assert functional.energy_pj[..., -1].sum() > 0  # the NoC is charged
    for k, g in enumerate(graph.layers):
        same = [c for c, name in enumerate(functional.components)
                if g.kind is not LayerKind.LINEAR or name not in READ_EVENTS]  # fmt: skip
        assert np.array_equal(functional.energy_pj[:, k, same], reference.energy_pj[:, k, same])
    assert functional.edge_flit_hops.keys() == reference.edge_flit_hops.keys()
    for edge, hops in functional.edge_flit_hops.items():
        assert np.array_equal(hops, reference.edge_flit_hops[edge]), edge
    # the main job's functional traces (hwsim run --hardware functional) charge the same
    traced = chip_simulation(vgg_net, images, T, FunctionalRun(arch), images)
    again = layer_activity(graph, traced.activity, 4)
    for name in ("active_pe_ops", "crossbar_reads", "input_spikes", "output_spikes"):
        assert np.array_equal(getattr(again, name), getattr(act, name)), name
    # event-driven energy never exceeds SpikeSim's every-op-every-step figure
    spikesim = map_network(parse_arch({**arch.to_mapping(), "energy_model": "spikesim"}, "s"),
                           graph)  # fmt: skip
    n = len(COMPONENTS)
    pe = functional.energy_pj[:, :, :n].sum()
    assert 0 < pe < run_energy(spikesim, act).energy_pj[:, :, :n].sum()


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
    with pytest.raises(InputError, match="calibrate"):
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
    import hwsim.engine as engine

    calls = []
    real = engine.simulate

    def counted(snn, *args, **kwargs):
        calls.append(kwargs.get("backend", "numba"))
        return real(snn, *args, **kwargs)

    monkeypatch.setattr(engine, "simulate", counted)
    images, labels = dyadic_images(3), np.array([0, 1, 2])
    result = codesign(vgg_net, IDEAL, images, labels, 8, Knob.ADC_BITS, [3, 16])
    # float and quantised references once, then one hardware run per value (crossbar synapses
    # in the numba engine)
    assert calls == ["numba", "numba", "numba", "numba"]
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
    with pytest.raises(InputError, match="cells_per_weight"):
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


# ------------------------------------------------------- crossbars in the numba engine

STYLES = [
    (mapping, signed, slicing)
    for mapping in ("kernel_split", "unrolled")
    for signed in ("digital", "differential", "offset")
    for slicing in ("cells", "columns")
]
SCALES = (FullScale.AUTO, FullScale.EXPLICIT, FullScale.CALIBRATED)


def assert_same_run(a: HardwareResult, b: HardwareResult) -> None:
    """The same spikes, activity, ADC counts and input step."""
    assert a.sim.layer_names == b.sim.layer_names
    assert np.array_equal(a.sim.layer_spikes, b.sim.layer_spikes)
    for h in a.sim.head_spikes:
        assert np.array_equal(a.sim.head_spikes[h], b.sim.head_spikes[h])
    for name in ("active_pe_ops", "crossbar_reads", "input_spikes", "output_spikes"):
        assert np.array_equal(getattr(a.activity, name), getattr(b.activity, name)), name
    assert a.adc_clips == b.adc_clips and a.adc_conversions == b.adc_conversions
    assert a.input_step == b.input_step


def both_backends(
    snn: SpikingNetwork, arch: Architecture, config: FunctionalConfig, steps: int
) -> dict[str, tuple[dict[str, float], HardwareResult]]:
    """Calibration LSBs (calibrated full scale) and run of 5 images, per backend."""
    out = {}
    for backend in ("torch", "numba"):
        hw = build_hardware(snn, arch, config)
        lsb = {}
        if not hw.calibrated:
            lsb = calibrate_hardware(hw, dyadic_images(3, seed=7), steps, backend=backend)
        run = simulate_hardware(hw, dyadic_images(5), steps, batch_size=3, backend=backend)
        out[backend] = (lsb, run)
    return out


@pytest.mark.parametrize(("mapping", "signed", "slicing"), STYLES, ids=map("-".join, STYLES))
def test_numba_crossbars_equal_the_torch_reference(vgg_net, mapping, signed, slicing) -> None:
    # 6-bit weights on 2-bit cells and a 5-bit ADC that clips; the full scale cycles through
    # auto (LSB one level), explicit (11 levels over the codes: the LSB no power of two, a
    # division) and calibrated (a histogram run first, LSBs compared); ideal and varied cells
    # with stuck-at faults (float levels: the rows' order of addition matters)
    k = STYLES.index((mapping, signed, slicing))
    arch = variant(
        device={"weight_bits": 6, "bits_per_cell": 2, "signed_weights": signed,
                "slicing": slicing},
        adc={"bits": 5},
        mapping={"style": mapping},
    )  # fmt: skip
    scale = SCALES[k % 3]
    if scale is FullScale.EXPLICIT:
        arch = with_adc(arch, full_scale_levels=11.0)
    else:
        arch = with_adc(arch, full_scale=scale)
    clips = 0
    for noise in (Nonidealities(), Nonidealities(sigma=0.15, sa0_rate=0.02, sa1_rate=0.01, seed=k)):
        runs = both_backends(vgg_net, arch, FunctionalConfig(noise=noise), 8)
        (lsb_ref, ref), (lsb, fast) = runs["torch"], runs["numba"]
        assert lsb == lsb_ref and (lsb != {}) == (scale is FullScale.CALIBRATED)
        assert_same_run(ref, fast)
        assert fast.sim.layer_spikes[:, 1:].sum() > 0  # deeper layers spike
        clips += sum(fast.adc_clips.values())
    assert clips > 0


def test_numba_crossbars_equal_the_torch_reference_on_a_residual_network() -> None:
    # the residual join: conv2 and skip currents added in the reference's order
    snn = dyadic_net(RESNET)
    arch = variant(device={"weight_bits": 6, "bits_per_cell": 2}, adc={"bits": 5})
    noise = Nonidealities(sigma=0.1, sa1_rate=0.01, seed=2)
    for config in (FunctionalConfig(), FunctionalConfig(FirstLayer.DIGITAL, noise=noise)):
        runs = both_backends(snn, arch, config, 6)
        assert_same_run(runs["torch"][1], runs["numba"][1])


@pytest.mark.parametrize(("pull", "table"), [(16, 0), (1024, 1 << 22), (1024, 0)])
def test_numba_crossbars_equal_the_torch_reference_in_every_formulation(
    vgg_net, monkeypatch, pull, table
) -> None:
    # the rows of one conversion group are summed as a conv of their K columns: from tables
    # (integer levels), by output rows (PULL) or by input spikes (PUSH), as the thresholds
    # choose; float levels never from tables (their sums keep the input order)
    monkeypatch.setattr(NumbaBackend, "pull_channels", pull)
    monkeypatch.setattr(NumbaBackend, "crossbar_table_bytes", table)
    monkeypatch.setattr(NumbaBackend, "table_bytes", table)
    monkeypatch.setattr(NumbaBackend, "table_channels", 64)
    arch = variant(device={"weight_bits": 6, "bits_per_cell": 2}, adc={"bits": 5})
    for noise in (Nonidealities(), Nonidealities(sigma=0.2, sa0_rate=0.01, seed=1)):
        runs = both_backends(vgg_net, arch, FunctionalConfig(noise=noise), 6)
        assert_same_run(runs["torch"][1], runs["numba"][1])


def test_numba_crossbars_do_not_depend_on_threads_or_batches(vgg_net) -> None:
    # image groups on two threads count into their own rows of the records
    arch = variant(device={"weight_bits": 6, "bits_per_cell": 2}, adc={"bits": 5})
    images = dyadic_images(19)
    runs = [
        simulate_hardware(
            build_hardware(vgg_net, arch, FunctionalConfig(threads=threads)),
            images,
            5,
            batch_size=batch,
        )  # fmt: skip
        for threads, batch in ((1, 19), (2, 19), (2, 7))
    ]
    assert_same_run(runs[0], runs[1])
    assert_same_run(runs[0], runs[2])


class PlainCrossbar:
    """A crossbar synapse's current by plain loops (`CrossbarSynapse`'s docstring) over images,
    output positions, groups and driven rows (float32 sums in input position, then channel
    order), as a torch synapse; it counts what it read per timestep (the record's columns) and
    keeps the histogram of an ADC-less synapse."""

    def __init__(self, syn: CrossbarSynapse, conn: Conn, timesteps: int):
        self.syn, self.conn = syn, conn
        self.record = np.zeros((timesteps, len(CROSSBAR_COUNTS)), np.int64)
        self.hist = None if syn.hist is None else np.zeros_like(syn.hist)

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        s, c, rec = self.syn, self.conn, self.record[t]
        a = x.numpy()
        a = a[:, :, None, None] if a.ndim == 2 else a
        (kh, kw), stride, pad = c.kernel, c.stride, c.pad
        ho, wo, cout = c.out_shape
        xp = np.pad(a, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        out = np.zeros((len(a), cout, ho, wo), np.float32)
        for i in range(len(a)):
            rec[2] += np.count_nonzero(a[i])
            for oy in range(ho):
                for ox in range(wo):
                    y0, x0 = oy * stride, ox * stride
                    window = xp[i, :, y0 : y0 + kh, x0 : x0 + kw].transpose(1, 2, 0)
                    rows = list(zip(*np.nonzero(window.reshape(kh * kw, -1)), strict=True))
                    psum = np.zeros(cout)
                    for g in sorted({s.group[r] for r in rows}):
                        d = np.zeros(s.matrix.shape[2], np.float32)
                        for r in rows:
                            if s.group[r] == g:
                                d += s.matrix[r]
                        psum += self._convert(d.astype(np.float64), rec)
                    rec[1] += len({s.crossbar[r] for r in rows})
                    out[i, :, oy, ox] = (psum * s.scale).astype(np.float32) + s.bias
        y = torch.from_numpy(out)
        return y if c.kind is ConnKind.CONV and not c.linear else y.reshape(len(a), -1)

    def _convert(self, d: np.ndarray, rec: np.ndarray) -> np.ndarray:
        """One PE operation's value per output (pe_ops, clips, conversions into rec)."""
        s = self.syn
        signal = d[: s.signals]
        rec[0] += 1
        rec[4] += s.signals
        if self.hist is not None:
            bins = np.minimum(
                (np.abs(signal) / s.hist_step + 0.5).astype(np.int64), len(self.hist) - 1
            )
            np.add.at(self.hist, bins, 1)
        value = signal
        if s.lsb > 0:
            raw = np.rint(signal / s.lsb)
            codes = np.clip(raw, s.code_min, s.code_max)
            rec[3] += np.count_nonzero(codes != raw)
            value = codes
        total = (s.col_shift * value).reshape(-1, s.per_output).sum(axis=1)
        total = total * s.lsb if s.lsb > 0 else total
        return total + s.sign_weight * d[s.signals :] if s.sign_weight else total


def random_synapse(c: Conn, k: int, rng: np.random.Generator, steps: int) -> CrossbarSynapse:
    """Synapse style k of a connection: 1 or 2 columns per output, sign columns or not,
    int16 / int32 / float32 rows (floats: quarters and +-2^24, so that float32 sums depend on
    the order of addition), groups by blocks of 8 channels (tables), scattered groups and
    crossbars, or one group on a crossbar per kernel position or on one crossbar (rows summed
    as a conv), ADC steps 1 (a power of two), 0.75 (a division) or none (a histogram
    instead), signed or unsigned codes that clip."""
    positions, cin, cout = c.kernel[0] * c.kernel[1], c.in_shape[2], c.out_shape[2]
    per, sign = 1 + k % 2, k % 3 == 0
    signals = cout * per
    matrix = rng.integers(-3, 4, (positions, cin, signals + (cout if sign else 0)))
    matrix[:, :, signals:] = rng.integers(0, 2, (positions, cin, matrix.shape[2] - signals))
    dtype = (np.int16, np.int32, np.float32)[k % 3]
    if dtype is np.float32:
        big = rng.random(matrix.shape) < 0.2
        matrix = np.where(big, np.sign(matrix - 0.5) * 2.0**24, matrix * 0.25)
    shape, style = (positions, cin), k % 4
    if style == 0:  # one group and one crossbar per block of 8 channels
        group = np.broadcast_to(np.arange(cin) // 8 % 2, shape)
        crossbar = group + 2 * np.arange(positions)[:, None]
    elif style == 1:
        group, crossbar = rng.integers(0, 3, shape), rng.integers(0, 5, shape)
    else:  # one group (its rows summed as a conv), a crossbar per kernel position or one
        group = np.zeros(shape, np.int64)
        crossbar = np.broadcast_to(np.arange(positions)[:, None] * (style == 2), shape)
    lsb = (1.0, 0.75, -1.0)[k % 3 if k != 2 else 1]
    hist = np.zeros(64, np.int64)  # |D| in quarters of a level up to 16, the last bin the rest
    return CrossbarSynapse(
        matrix=np.ascontiguousarray(matrix, dtype),
        group=np.ascontiguousarray(group),
        crossbar=np.ascontiguousarray(crossbar),
        signals=signals,
        per_output=per,
        col_shift=np.tile([1.0, 4.0][:per], cout),
        sign_weight=-4.0 if sign else 0.0,
        lsb=lsb,
        code_min=(0.0, -4.0)[k % 2],
        code_max=(7.0, 3.0)[k % 2],
        scale=2.0**-5,
        bias=rng.integers(0, 8, cout).astype(np.float32) / 32,
        record=np.zeros((steps, len(CROSSBAR_COUNTS)), np.int64),
        hist=hist if lsb < 0 else None,
        hist_step=0.25,
    )


def diagonal_synapse(c: Conn, steps: int, crossbars: str) -> CrossbarSynapse:
    """A GAP on ideal cells (the engine sums it from channel spike counts): level 3 on the
    diagonal; one group per 8 channels and a crossbar per (position, group) ("groups"), or one
    group and a crossbar per position ("positions") or one crossbar ("one")."""
    positions, ch = c.kernel[0] * c.kernel[1], c.in_shape[2]
    matrix = np.zeros((positions, ch, ch), np.int16)
    matrix[:, np.arange(ch), np.arange(ch)] = 3
    shape, position = (positions, ch), np.arange(positions)[:, None]
    group = np.broadcast_to(np.arange(ch) // 8 * (crossbars == "groups"), shape)
    crossbar = {"groups": group + 4 * position, "positions": position + 0 * group,
                "one": 0 * group}[crossbars]  # fmt: skip
    return CrossbarSynapse(
        matrix, np.ascontiguousarray(group), np.ascontiguousarray(crossbar), ch, 1, np.ones(ch),
        0.0, 1.0, 0.0, 7.0, 2.0**-4, np.zeros(ch, np.float32),
        np.zeros((steps, len(CROSSBAR_COUNTS)), np.int64),
    )  # fmt: skip


@pytest.mark.parametrize("crossbars", ["positions", "one"])
def test_numba_crossbar_synapses_equal_plain_loops(vgg_net, crossbars) -> None:
    # every connection but the analog first layer gets a random crossbar synapse (styles cycle
    # over the layers), the GAPs diagonal ones; the numba engine running them equals the torch
    # engine running the plain loops: spikes, every record, the histograms
    steps, rng = 6, np.random.default_rng(4)
    plan = build_plan(vgg_net)
    xbars, plain = {}, {}
    for k, c in enumerate(plan.conns[1:]):
        if c.kind is ConnKind.GAP:
            syn = diagonal_synapse(c, steps, "groups" if c.name == "fc.gap" else crossbars)
        else:
            syn = random_synapse(c, k, rng, steps)
        xbars[c.name], plain[c.name] = syn, PlainCrossbar(syn, c, steps)
    images = dyadic_images(3)
    fast = simulate(vgg_net, images, steps, synapses=xbars, threads=2)
    ref = simulate(vgg_net, images, steps, backend="torch", synapses=plain)
    assert np.array_equal(fast.layer_spikes, ref.layer_spikes)
    for h in ref.head_spikes:
        assert np.array_equal(fast.head_spikes[h], ref.head_spikes[h])
    for name, syn in xbars.items():
        assert np.array_equal(syn.record, plain[name].record), name
        if syn.hist is not None:
            assert np.array_equal(syn.hist, plain[name].hist), name
    assert fast.layer_spikes[:, 1:].sum() > 0
    totals = np.sum([syn.record.sum(axis=0) for syn in xbars.values()], axis=0)
    assert totals.min() > 0  # operations, reads, inputs, clips, conversions all happened
    assert any(syn.hist is not None and syn.hist.sum() > 0 for syn in xbars.values())


def test_crossbar_synapses_are_refused_where_they_cannot_run(vgg_net) -> None:
    plan = build_plan(vgg_net)
    c = plan.conns[2]
    syn = random_synapse(c, 0, np.random.default_rng(0), 4)
    images = dyadic_images(2)
    with pytest.raises(ValueError, match="numba backend"):
        simulate(vgg_net, images, 4, backend="torch", synapses={c.name: syn})
    first = random_synapse(plan.conns[0], 0, np.random.default_rng(0), 4)
    with pytest.raises(ValueError, match="network input"):
        simulate(vgg_net, images, 4, synapses={"conv0": first})
    with pytest.raises(ValueError, match="phase weight"):
        NumbaBackend(plan, WeightedSpikeCoding(4), synapses=[None, None, syn] + [None] * 9)
    bad = replace(syn, matrix=syn.matrix[:, :, :-1])
    with pytest.raises(ValueError, match="matrix"):
        simulate(vgg_net, images, 4, synapses={c.name: bad})
    big = replace(syn, matrix=np.full(syn.matrix.shape, 2**20, np.int32))
    with pytest.raises(ValueError, match="2\\^24"):
        simulate(vgg_net, images, 4, synapses={c.name: big})
    with pytest.raises(ValueError, match="histogram"):
        simulate(vgg_net, images, 4, synapses={c.name: replace(syn, hist=np.zeros(4, np.int64))})
    with pytest.raises(IndexError, match="record"):
        simulate(vgg_net, images, 5, synapses={c.name: syn})  # a record of 4 steps
    assert TorchBackend(plan, DirectCoding()).synapses == [None] * len(plan.conns)


def test_crossbar_synapse_rows_follow_the_dense_op(vgg_net) -> None:
    # a Linear layer's rows are its features again (SpikeSim's (4, 1) fold undone: feature f
    # sat on row channel f // 4 of kernel position f % 4); a conv's are (kernel position,
    # channel) as on the crossbars
    hw = build_hardware(vgg_net, IDEAL)
    linear = hw.layers["fc.linear"]
    syn = crossbar_synapse(linear, 3)
    features = linear.geometry.in_channels
    assert syn.matrix.shape == (1, features, linear.crossbars.matrix.shape[2])
    for f in range(features):
        assert np.array_equal(syn.matrix[0, f], linear.crossbars.matrix[f % 4, f // 4])
        assert syn.crossbar[0, f] == linear.crossbars.row_group[f % 4, f // 4]
    conv = hw.layers["conv2"]
    assert crossbar_synapse(conv, 3).matrix is conv.crossbars.matrix
    assert syn.record.shape == (3, len(CROSSBAR_COUNTS)) and syn.lsb == IDEAL.adc_lsb_levels


def test_a_prepared_chip_serves_several_runs_as_a_fresh_one(vgg_net) -> None:
    # a session keeps one prepared chip for its tuning and test splits (`Session.hardware`):
    # a run on a chip that already ran other images (and was calibrated once) gives the spikes,
    # activity and ADC counts of a chip built afresh for it
    coarse = with_adc(IDEAL, bits=3, full_scale_levels=7.0)  # clipping ADC: counts that differ
    run = FunctionalRun(coarse)
    first, second, calib = dyadic_images(3, seed=1), dyadic_images(2, seed=4), dyadic_images(2)
    hw = prepared_hardware(vgg_net, coarse, run.config, calib, T)
    chip_run(hw, first, T)
    reused = chip_run(hw, second, T)
    clips = hw.adc_clips()
    fresh_hw = prepared_hardware(vgg_net, coarse, run.config, calib, T)
    fresh = chip_run(fresh_hw, second, T)
    assert np.array_equal(reused.layer_spikes, fresh.layer_spikes)
    for h, spikes in fresh.head_spikes.items():
        assert np.array_equal(reused.head_spikes[h], spikes)
    for name in ("active_windows", "out_spikes"):
        assert np.array_equal(getattr(reused.activity, name), getattr(fresh.activity, name))
    assert clips == fresh_hw.adc_clips() and sum(clips.values()) > 0
