"""The tile's pooling unit (hwsim.hw.pooling) and the leak costs of leaky neurons: hand-made graphs
with AVG and MAX pooling layers and a leaky population, their energy, area, static power,
analytic cycles and cycle-level job durations against closed forms written from the arch keys."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.hw.activity import LayerActivity, full_activity
from hwsim.hw.arch import EnergyModel, LeakageTable, load_arch, parse_arch
from hwsim.hw.area import LEAK_MULTIPLIER, TILE_COMPONENTS, chip_area
from hwsim.hw.energy import COMPONENTS, LEAK, run_energy, spikesim_energy
from hwsim.hw.leakage import leakage_power
from hwsim.hw.mapping import MappingError, map_network
from hwsim.hw.pooling import POOLING, pool_cycles, refuse_pool_layers, window_inputs
from hwsim.hw.sim import Workload, chip_model, simulate
from hwsim.hw.timing import layer_stage_cycles, run_timing
from hwsim.model.graph import FC_HEAD, Layer, LayerKind, Neuron, Pool, Role
from tests.geometry import chain, conv, gap, linear

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml")
LIF = Neuron(leak=0.875)
OR_NEURON = Neuron(reset_to=0.0)  # a MAX pool's population: fires at V >= 1, resets to 0


def pool(name, channels, hw, k, kind, block) -> Layer:
    """A k x k stride-k local pooling layer on an hw x hw map of `channels` channels."""
    neuron = OR_NEURON if kind is Pool.MAX else Neuron()
    return Layer(
        name, LayerKind.CONV, Role.BACKBONE, (channels, hw, hw), (channels, hw // k, hw // k),
        (k, k), k, 0, (), name, block=block, neuron=neuron, pool=kind,
    )  # fmt: skip


def pooled_graph(leaky: bool = True, with_pools: bool = True):
    """conv0 (2 -> 8, 8x8) -> avg 2x2 -> conv2 (8 -> 8, 4x4, leaky) -> max 2x2 -> GAP -> Linear;
    without pools the convs are chained directly (conv2 then reads a 4x4 map of conv0)."""
    conv2 = conv("conv2", 8, 8, 3, 4, 2)
    if leaky:
        conv2 = replace(conv2, neuron=LIF)
    layers = [conv("conv0", 2, 8, 3, 8, 0)]
    if with_pools:
        layers.append(pool("avg1", 8, 8, 2, Pool.AVG, 1))
    layers.append(conv2)
    if with_pools:
        layers.append(pool("max3", 8, 4, 2, Pool.MAX, 3))
    hw = 2 if with_pools else 4
    layers += [gap("fc.gap", 8, hw, FC_HEAD), linear("fc.linear", 8, 10, FC_HEAD)]
    return chain(layers)


def with_units(arch, units=2, per_cycle=3, neuron_cycles=0, leak_cycles=5):
    """`arch` with a pooling unit and leak multiplier whose rates make every ceiling count."""
    return replace(
        arch,
        pooling=replace(arch.pooling, units_per_tile=units, ops_per_cycle=per_cycle),
        neuron_leak=replace(arch.neuron_leak, cycles=leak_cycles),
        timing=replace(arch.timing, neuron_cycles=neuron_cycles),
    )


def test_pool_layers_take_no_crossbars_and_sit_on_their_producers_tile() -> None:
    arch = replace(SPIKESIM, pe=replace(SPIKESIM.pe, pes_per_tile=1))  # a tile per PE
    graph = pooled_graph()
    mapping = map_network(arch, graph)
    bare = map_network(arch, pooled_graph(with_pools=False))
    for name in ("avg1", "max3"):
        m = mapping.layer(name)
        assert (m.crossbars, m.pes, m.pe_operations, m.crossbar_reads) == (0, 0, 0, 0)
        assert (m.used_cells, m.available_cells) == (0, 0)
        assert m.is_pool
    # the weight layers are mapped as without the pools: same crossbars, PEs and operations
    for name in ("conv0", "conv2", "fc.linear"):
        assert mapping.layer(name).crossbars == bare.layer(name).crossbars
        assert mapping.layer(name).pes == bare.layer(name).pes
    assert mapping.crossbars == sum(m.crossbars for m in mapping.layers if not m.is_pool)
    # each pool on the tile of the last PE placed before it
    conv0, conv2 = mapping.layer("conv0"), mapping.layer("conv2")
    assert mapping.layer("avg1").tiles == (int(conv0.pe_tiles[-1]),)
    assert mapping.layer("max3").tiles == (int(conv2.pe_tiles[-1]),)
    assert (mapping.layer("avg1").crossbar_tiles() == conv0.pe_tiles[-1]).all()
    assert mapping.layer("avg1").tiles != mapping.layer("max3").tiles  # not a trivial chip
    assert mapping.tiles == bare.tiles  # the pools add no tile


def test_a_pool_layer_needs_a_pooling_unit() -> None:
    arch = replace(SPIKESIM, pooling=None)
    with pytest.raises(MappingError, match="avg1.*pooling"):
        map_network(arch, pooled_graph())
    map_network(arch, pooled_graph(with_pools=False))  # no pool layer: no unit needed


def test_functional_mode_refusal_names_the_pool_layers() -> None:
    with pytest.raises(ConfigError, match="avg1, max3"):
        refuse_pool_layers(pooled_graph())
    refuse_pool_layers(pooled_graph(with_pools=False))


def test_the_functional_mode_refuses_a_pooled_network_before_building() -> None:
    # build_hardware (the crossbar + ADC chip) refuses a graph with pooling layers, naming them
    from types import SimpleNamespace

    from hwsim.hw.synapse import build_hardware

    snn = SimpleNamespace(graph=pooled_graph())  # refused before its weights are read
    with pytest.raises(ConfigError, match=r"functional .* \(avg1, max3\)"):
        build_hardware(snn, SPIKESIM)


def _column(energy, component):
    return energy.events[:, :, energy.components.index(component)]


def test_estimate_charges_every_window_input() -> None:
    graph = pooled_graph()
    mapping = map_network(SPIKESIM, graph)
    estimate = spikesim_energy(mapping)
    run = run_energy(mapping, full_activity(mapping, 1))
    assert estimate.components == (*COMPONENTS, POOLING)
    for name in (*COMPONENTS, POOLING):
        assert estimate.per_component_pj()[name] == pytest.approx(run.per_component_pj()[name])
    assert estimate.per_layer_pj()["avg1"] == pytest.approx(
        512 * SPIKESIM.pooling.op_pj + 64 * SPIKESIM.energy_pj.neuron
    )


@pytest.mark.parametrize("model", [EnergyModel.SPIKESIM, EnergyModel.EVENT])
def test_pooling_energy_every_window_input_with_full_activity(model) -> None:
    arch = replace(SPIKESIM, energy_model=model)
    graph = pooled_graph()
    mapping = map_network(arch, graph)
    steps = 3
    energy = run_energy(mapping, full_activity(mapping, steps))
    assert energy.components[-2:] == (POOLING, LEAK)
    names = graph.names
    avg, mx, conv2 = names.index("avg1"), names.index("max3"), names.index("conv2")
    ops = _column(energy, POOLING)
    # window inputs: channels x output positions x k_h k_w
    assert np.all(ops[:, avg] == 8 * 4 * 4 * 2 * 2)
    assert np.all(ops[:, mx] == 8 * 2 * 2 * 2 * 2)
    weights = [i for i, g in enumerate(graph.layers) if g.pool is None]
    assert np.all(ops[:, weights] == 0)
    pooled = energy.energy_pj[:, :, energy.components.index(POOLING)]
    np.testing.assert_allclose(pooled, ops * arch.pooling.op_pj, rtol=1e-15)
    # no crossbar work on a pool: only its neurons (AVG) and its operations (both)
    pe_parts = [energy.components.index(c) for c in ("crossbar", "adc", "mux", "tile_buffer")]
    assert np.all(energy.events[:, [avg, mx]][:, :, pe_parts] == 0)
    neuron = _column(energy, "neuron")
    groups = -(-8 // arch.outputs_per_crossbar)
    assert np.all(neuron[:, avg] == groups * 4 * 4 * arch.pe.neuron_units_per_pe)
    assert np.all(neuron[:, mx] == 0)  # the OR is the population: no neuron updates
    # the leak: the leaky conv2's neurons, one multiply each, not the MAX pool's (reset to 0)
    leak = _column(energy, LEAK)
    assert np.all(leak[:, conv2] == 8 * 4 * 4)
    assert np.all(np.delete(leak, conv2, axis=1) == 0)


def test_event_pooling_counts_the_input_spikes_present() -> None:
    arch = replace(SPIKESIM, energy_model=EnergyModel.EVENT)
    graph = pooled_graph()
    mapping = map_network(arch, graph)
    rng = np.random.default_rng(3)
    steps, images, n = 4, 3, len(graph.names)
    inputs = rng.integers(0, 60, (steps, n))
    ops = rng.integers(0, 9, (steps, n))  # whatever the engine counts on a pool: not charged
    activity = LayerActivity(graph.names, images, ops, ops, inputs, inputs)
    energy = run_energy(mapping, activity)
    avg, mx = graph.names.index("avg1"), graph.names.index("max3")
    pooled = _column(energy, POOLING)
    # each spike in one window (stride = kernel): its window-inputs share, per image
    np.testing.assert_allclose(pooled[:, avg], inputs[:, avg] / images * (512 / (8 * 8 * 8)))
    np.testing.assert_allclose(pooled[:, mx], inputs[:, mx] / images * (128 / (8 * 4 * 4)))
    assert np.all(energy.pe_operations[:, [avg, mx]] == 0)
    assert np.all(_column(energy, "crossbar")[:, [avg, mx]] == 0)


def test_no_pool_if_network_is_unchanged_by_the_new_sections() -> None:
    graph = pooled_graph(leaky=False, with_pools=False)
    plain = replace(SPIKESIM, pooling=None, neuron_leak=None)
    for model in EnergyModel:
        a = map_network(replace(SPIKESIM, energy_model=model), graph)
        b = map_network(replace(plain, energy_model=model), graph)
        ea, eb = run_energy(a, full_activity(a, 2)), run_energy(b, full_activity(b, 2))
        assert ea.components == eb.components
        assert np.array_equal(ea.energy_pj, eb.energy_pj)
        ta, tb = run_timing(a, full_activity(a, 2)), run_timing(b, full_activity(b, 2))
        assert np.array_equal(ta.finish_cycles, tb.finish_cycles)
        assert chip_area(a).tile_components == TILE_COMPONENTS
        assert chip_area(a).per_component_um2() == chip_area(b).per_component_um2()
        assert np.array_equal(
            chip_model(a, graph.names, 0).neuron_cycles, chip_model(b, graph.names, 0).neuron_cycles
        )


def test_area_and_static_power_of_the_units() -> None:
    arch = replace(SPIKESIM, leakage_mw=LeakageTable(router=0.5))
    arch = replace(arch, pooling=replace(arch.pooling, units_per_tile=3, leakage_mw=0.25))
    mapping = map_network(arch, pooled_graph())
    area = chip_area(mapping)
    assert area.tile_components == (*TILE_COMPONENTS, POOLING, LEAK_MULTIPLIER)
    parts = area.per_component_um2()
    tiles = mapping.tiles
    assert parts[POOLING] == pytest.approx(tiles * 3 * arch.pooling.area_um2, rel=1e-15)
    per_tile = arch.pe.pes_per_tile * arch.pe.neuron_units_per_pe
    assert parts[LEAK_MULTIPLIER] == pytest.approx(
        tiles * per_tile * arch.neuron_leak.multiplier_area_um2, rel=1e-15
    )
    assert area.total_um2 == pytest.approx(area.per_tile_um2().sum() + sum(area.chip_um2.values()))
    power = leakage_power(mapping).per_component_mw
    assert power[POOLING] == pytest.approx(tiles * 3 * 0.25)
    assert power["router"] == pytest.approx(tiles * 0.5)
    # IF neurons and no pools: neither unit
    bare = map_network(arch, pooled_graph(leaky=False, with_pools=False))
    assert chip_area(bare).tile_components == TILE_COMPONENTS
    assert POOLING not in leakage_power(bare).per_component_mw


@pytest.mark.parametrize("lines", [False, True])
def test_analytic_stages_of_pools_and_leaky_neurons(lines: bool) -> None:
    arch = with_units(SPIKESIM)
    arch = replace(arch, timing=replace(arch.timing, line_buffer=lines))
    graph = pooled_graph()
    mapping = map_network(arch, graph)
    timing = run_timing(mapping, full_activity(mapping, 2))
    rate = arch.pooling.units_per_tile * arch.pooling.ops_per_cycle
    stage = dict(zip(graph.names, timing.stage_cycles[0], strict=True))
    assert stage["avg1"] == -(-(8 * 4 * 4 * 4) // rate) == pool_cycles(arch, graph.layer("avg1"))
    assert stage["max3"] == -(-(8 * 2 * 2 * 4) // rate)
    conv2 = mapping.layer("conv2")
    pe = -(-conv2.pe_operations // conv2.pes) * arch.pe_operation_cycles
    units = arch.pe.neuron_units_per_pe * conv2.pes
    assert stage["conv2"] == pe + -(-(8 * 4 * 4) // units) * arch.neuron_leak.cycles
    conv0 = mapping.layer("conv0")  # IF: no leak cycles
    assert stage["conv0"] == -(-conv0.pe_operations // conv0.pes) * arch.pe_operation_cycles
    # whatever PE operations an activity gives a pool, its stage is its units' cycles
    ops = np.full((1, len(graph.names)), 7.0)
    stages = layer_stage_cycles(mapping, ops)[0]
    assert stages[graph.names.index("max3")] == stage["max3"]
    assert stages[graph.names.index("conv0")] == -(-7 // conv0.pes) * arch.pe_operation_cycles


def test_cycle_level_durations_of_pools_and_leaky_neurons() -> None:
    arch = with_units(SPIKESIM, neuron_cycles=2)
    graph = pooled_graph()
    mapping = map_network(arch, graph)
    chip = chip_model(mapping, graph.names, decision_cycles=0)
    cycles = dict(zip(graph.names, chip.neuron_cycles.tolist(), strict=True))
    pes = dict(zip(graph.names, chip.pes.tolist(), strict=True))
    rate = arch.pooling.units_per_tile * arch.pooling.ops_per_cycle
    units = arch.pe.neuron_units_per_pe
    # AVG: its window inputs on the units + its 8 x 4 x 4 neurons on one PE slot's neuron units
    assert cycles["avg1"] == -(-window_inputs(graph.layer("avg1")) // rate) + -(-128 // units) * 2
    assert cycles["max3"] == -(-(8 * 2 * 2 * 4) // rate)  # the OR: no neuron updates
    conv2 = mapping.layer("conv2")
    assert cycles["conv2"] == -(-128 // (units * conv2.pes)) * (2 + arch.neuron_leak.cycles)
    conv0 = mapping.layer("conv0")
    assert cycles["conv0"] == -(-(8 * 8 * 8) // (units * conv0.pes)) * 2
    assert pes["avg1"] == pes["max3"] == 1


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("lines", [False, True])
def test_contention_free_pooled_chip_equals_the_analytic_model(steps: int, lines: bool) -> None:
    arch = parse_arch(
        {
            **SPIKESIM.to_mapping(),
            "pe": {**SPIKESIM.to_mapping()["pe"], "pes_per_tile": 1},
            "buffers": {**SPIKESIM.to_mapping()["buffers"], "input_buffer_timesteps": 1 << 16},
            "timing": {**SPIKESIM.to_mapping()["timing"], "line_buffer": lines},
        },
        "one-pe-per-tile",
    )
    arch = with_units(arch, units=1, per_cycle=2, leak_cycles=7)
    graph = pooled_graph()
    mapping = map_network(arch, graph)
    rng = np.random.default_rng(1)
    n = len(graph.names)
    pools = [m.is_pool for m in mapping.layers]
    ops = rng.integers(1, 4, (steps, n)) * ~np.array(pools)  # a pool: no PE operations
    # line buffers: no spikes sent, so that no row's packet holds a fractional share of them
    sent = rng.integers(0, 3, (steps, n)) * (not lines)
    activity = LayerActivity(graph.names, 1, ops, ops, ops, sent)
    analytic = run_timing(mapping, activity)
    chip = chip_model(mapping, graph.names, decision_cycles=0)
    run = simulate(chip, Workload(ops[None].astype(np.int32), sent[None].astype(np.int32)))
    np.testing.assert_array_equal(run.finish[:n, 0].T, analytic.finish_cycles)
    assert analytic.stage_cycles[0, graph.names.index("avg1")] == pool_cycles(
        arch, graph.layer("avg1")
    )


def test_a_network_that_starts_with_a_pool() -> None:
    graph = chain(
        [
            pool("pool0", 2, 8, 2, Pool.SUM, 0),
            conv("conv1", 2, 8, 3, 4, 1),
            gap("fc.gap", 8, 4, FC_HEAD),
            linear("fc.linear", 8, 10, FC_HEAD),
        ]
    )
    mapping = map_network(SPIKESIM, graph)
    assert mapping.layer("pool0").tiles == (0,)
    assert mapping.tiles == 1
    energy = run_energy(mapping, full_activity(mapping, 2))
    assert energy.events[0, 0, energy.components.index(POOLING)] == 2 * 4 * 4 * 2 * 2
    timing = run_timing(mapping, full_activity(mapping, 2))
    assert timing.stage_cycles[0, 0] == pool_cycles(SPIKESIM, graph.layers[0]) == 128
    assert chip_model(mapping, graph.names, 0).neuron_cycles[0] == 128  # timing.neuron_cycles 0


def test_the_event_workload_gives_a_pool_layer_no_pe_operations() -> None:
    # the cycle-level simulation's workload under the event model takes each layer's PE
    # operations from the engine's active windows; a pool layer is on the pooling unit, so its
    # column is 0 whatever the engine counted, the others the engine's counts (a plain loop)
    from hwsim.engine.core import Activity, ActivitySpec
    from hwsim.pipeline.activity import ENGINE_PER_IMAGE, chip_workload

    graph = pooled_graph()
    arch = replace(SPIKESIM, energy_model=EnergyModel.EVENT)
    mapping = map_network(arch, graph)
    n, steps, g = 3, 4, len(graph.names)
    per = np.random.default_rng(3).integers(1, 50, (n, steps, g, 4)).astype(np.int32)
    zeros = np.zeros((steps, g), np.int64)
    activity = Activity(
        ActivitySpec(arch.crossbar.rows, arch.outputs_per_crossbar, str(arch.mapping.style)),
        graph.names, np.arange(g), zeros, zeros, zeros, zeros, np.zeros(g), np.zeros(g), per,
    )  # fmt: skip
    work = chip_workload(mapping, activity)
    windows = ENGINE_PER_IMAGE.index("active_windows")
    for j, layer in enumerate(graph.layers):
        want = 0 if layer.pool is not None else per[:, :, j, windows]
        np.testing.assert_array_equal(work.pe_ops[:, :, j], want, layer.name)
    assert sum(layer.pool is not None for layer in graph.layers) == 2
