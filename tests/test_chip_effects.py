"""What SpikeSim leaves out, each against a closed form or a hand-computed case: static power,
per-cell crossbar costs, SAR ADC timing, shared tile buffers, the off-chip interface, weight
programming, partial sums between tiles, links as bottlenecks, one percentile definition."""

import math
from pathlib import Path

import numpy as np
import pytest

from hwsim.hw.ablation import ABLATION_STEPS, ablation
from hwsim.hw.activity import LayerActivity, full_activity
from hwsim.hw.arch import ArchConfigError, load_arch, parse_arch
from hwsim.hw.area import TILE_COMPONENTS, chip_area
from hwsim.hw.energy import PSUM_COMPONENTS, event_costs_pj, run_energy
from hwsim.hw.leakage import instance_counts, leakage_power, static_energy_pj
from hwsim.hw.mapping import map_network
from hwsim.hw.noc import xy_links
from hwsim.hw.offchip import offchip_cost
from hwsim.hw.programming import programming_cost
from hwsim.hw.psum import layer_psums
from hwsim.hw.sim import Workload, chip_model, input_buffer_timesteps, percentile, simulate
from hwsim.hw.sim.chip import input_buffer_bits
from hwsim.hw.timing import run_timing
from hwsim.model.graph import FC_HEAD
from tests.geometry import chain, conv, gap, linear

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml")
CHIP = load_arch(ROOT / "arch_configs" / "spikesim_chip.yaml")
BASE = SPIKESIM.to_mapping()


def variant(name: str = "variant", **sections) -> object:
    """spikesim.yaml with sections replaced or merged (a dict merges into the section)."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key].update(value)
        else:
            raw[key] = value
    return parse_arch(raw, name)


CHAIN = chain(
    [
        conv("conv0", 3, 64, 3, 16, 0),
        conv("conv1", 64, 64, 3, 16, 1),
        gap("fc.gap", 64, 16, FC_HEAD),
        linear("fc.linear", 64, 10, FC_HEAD),
    ]
)


# ---------------------------------------------------------------------- static power


def test_leakage_power_counts_the_area_model_s_instances() -> None:
    arch = variant(leakage_mw={"sram_bit": 2e-8, "adc": 0.5, "router": 0.25, "fusion_unit": 3.0})
    mapping = map_network(arch, CHAIN)
    tiles = mapping.tiles
    counts = instance_counts(mapping)
    # by hand: 8 PE slots x 64 / 8 = 8 ADCs per slot in every tile; 8192 tile-buffer bits per
    # tile; the neuron memory (5 layers) and input buffer at 22 bits
    neurons = 64 * 16 * 16 * 2 + 64 + 10
    inputs = 3 * 16 * 16 + 64 * 16 * 16 + 64 * 16 * 16 + 64
    assert counts["adc"] == tiles * 8 * 8
    assert counts["neuron_memory"] == neurons * 22 and counts["input_buffer"] == inputs * 22
    expected = (
        tiles * 64 * 0.5 + tiles * 0.25 + 3.0 + (tiles * 8192 + neurons * 22 + inputs * 22) * 2e-8
    )
    assert leakage_power(mapping).total_mw == pytest.approx(expected, rel=1e-12)
    # without the section: no static power
    assert leakage_power(map_network(SPIKESIM, CHAIN)).total_mw == 0.0


def test_static_energy_is_leakage_times_latency() -> None:
    arch = variant(leakage_mw={"sram_bit": 1e-6, "adc": 0.1})
    mapping = map_network(arch, CHAIN)
    steps = 5
    activity = full_activity(mapping, steps)
    power = leakage_power(mapping).total_mw
    latency = run_timing(mapping, activity).latency_ns
    energy = run_energy(mapping, activity)
    # cumulative static energy at t = P x the time until timestep t's outputs are ready
    np.testing.assert_allclose(np.cumsum(energy.static_pj), power * latency, rtol=1e-12)
    assert energy.per_component_pj()["static"] == pytest.approx(power * latency[-1], rel=1e-12)
    # dynamic energy is unchanged; the total adds the static energy
    plain = run_energy(map_network(SPIKESIM, CHAIN), activity)
    np.testing.assert_array_equal(energy.energy_pj, plain.energy_pj)
    assert energy.total_pj == pytest.approx(plain.total_pj + power * latency[-1], rel=1e-12)
    # a chip powered for a given time (a simulated run's) pays that time
    powered = np.arange(1, steps + 1) * 1000.0
    timed = run_energy(mapping, activity, powered_ns=powered)
    assert timed.static_pj.sum() == pytest.approx(static_energy_pj(power, 5000.0))
    # every method pays the whole chip's leakage
    np.testing.assert_allclose(
        timed.method_pj({"conv0"}, False) - plain.method_pj({"conv0"}, False), timed.static_pj
    )


def test_a_slower_clock_costs_static_energy_spikesim_yaml_none() -> None:
    fast = variant(leakage_mw={"sram_bit": 1e-6})
    slow = variant(clock_mhz=125.0, leakage_mw={"sram_bit": 1e-6})
    activity = full_activity(map_network(fast, CHAIN), 3)
    e_fast = run_energy(map_network(fast, CHAIN), activity)
    e_slow = run_energy(map_network(slow, CHAIN), activity)
    assert e_slow.static_pj.sum() == pytest.approx(2 * e_fast.static_pj.sum(), rel=1e-12)
    plain = run_energy(map_network(SPIKESIM, CHAIN), activity)
    assert "static" not in plain.per_component_pj() and not plain.static_pj.any()


# ------------------------------------------------------------------ physical scaling


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_crossbar_area_and_read_energy_follow_cells_and_periphery(size: int) -> None:
    cell_pj, row_pj, col_pj = 4e-4, 0.01, 0.02
    cell_um2, row_um2, col_um2 = 0.0064, 0.5, 0.75
    arch = variant(
        crossbar={"rows": size, "cols": size},
        energy_pj={
            "crossbar_read": None,
            "crossbar_cell_read": cell_pj,
            "crossbar_row_read": row_pj,
            "crossbar_col_read": col_pj,
        },
        area_um2={
            "crossbar": None,
            "crossbar_cell": cell_um2,
            "crossbar_row": row_um2,
            "crossbar_col": col_um2,
        },
    )
    read = size * size * cell_pj + size * row_pj + size * col_pj
    one = size * size * cell_um2 + size * row_um2 + size * col_um2
    assert event_costs_pj(arch)["crossbar"] == pytest.approx(read, rel=1e-12)
    mapping = map_network(arch, CHAIN)
    crossbars = sum(m.crossbars for m in mapping.layers)
    tiles = chip_area(mapping).tile_um2[:, TILE_COMPONENTS.index("crossbar")]
    assert tiles.sum() == pytest.approx(crossbars * one, rel=1e-12)


def test_spikesim_chip_per_cell_costs_are_spikesim_s_at_64() -> None:
    assert CHIP.crossbar_read_pj == SPIKESIM.crossbar_read_pj == 1.76423
    assert CHIP.crossbar_area_um2 == SPIKESIM.crossbar_area_um2 == 26.2144
    bigger = parse_arch({**CHIP.to_mapping(), "crossbar": {"rows": 128, "cols": 128}}, "128")
    assert bigger.crossbar_read_pj == pytest.approx(4 * 1.76423, rel=1e-12)
    assert bigger.crossbar_area_um2 == pytest.approx(4 * 26.2144, rel=1e-12)


def test_sar_conversion_grows_by_one_cycle_per_bit() -> None:
    cycles = []
    for bits in range(1, 9):
        arch = variant(adc={"bits": bits}, timing={"sar_cycles_per_bit": 1, "sar_sample_cycles": 1})
        cycles.append(arch.conversion_cycles)
        # a PE operation lasts its 8 conversion rounds when they outlast pe_cycles (26)
        assert arch.pe_operation_cycles == max(26, 8 * (bits + 1))
    assert np.diff(cycles).tolist() == [1] * 7 and cycles[0] == 2
    assert variant(timing={"sar_cycles_per_bit": 2}).conversion_cycles == 2 * 4
    assert SPIKESIM.conversion_cycles is None and CHIP.pe_operation_cycles == 8 * 5


@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("energy_pj", {"crossbar_cell_read": 1e-4}, "energy_pj.crossbar_read"),
        ("energy_pj", {"crossbar_row_read": 0.1}, "energy_pj.crossbar_row_read"),
        ("area_um2", {"crossbar_col": 0.1}, "area_um2.crossbar_col"),
        ("timing", {"sar_cycles_per_bit": 1, "cycles_per_conversion": 3}, "sar_cycles_per_bit"),
        ("timing", {"sar_sample_cycles": 1}, "timing.sar_sample_cycles"),
    ],
)
def test_conflicting_or_idle_keys_are_refused(section: str, values: dict, key: str) -> None:
    with pytest.raises(ArchConfigError, match=key):
        variant(**{section: values})


def test_two_consumers_on_one_tile_share_its_buffer() -> None:
    # conv1 (1 PE) and conv2 (2 PEs: 128 outputs) both on tile 0 with conv0
    graph = chain(
        [
            conv("conv0", 3, 64, 3, 8, 0),
            conv("conv1", 64, 64, 3, 8, 1),
            conv("conv2", 64, 128, 3, 8, 2),
        ]
    )
    whole = map_network(variant(), graph)
    shared = map_network(variant(buffers={"tile_buffer_sharing": "shared"}), graph)
    assert {m.name: m.tiles for m in shared.layers} == {n: (0,) for n in graph.names}
    assert input_buffer_bits(whole, "conv1") == input_buffer_bits(whole, "conv2") == 8192
    # conv0 reads the image, not spikes: the receivers are conv1 (1 PE) and conv2 (2 PEs)
    assert input_buffer_bits(shared, "conv1") == pytest.approx(8192 / 3)
    assert input_buffer_bits(shared, "conv2") == pytest.approx(8192 * 2 / 3)
    # 64 x 8 x 8 = 4096-bit input maps: two in a whole buffer, one in a share
    assert input_buffer_timesteps(whole, "conv2") == 2
    assert input_buffer_timesteps(shared, "conv2") == 1


# --------------------------------------------------------------- off-chip and programming


def test_offchip_cost_by_hand() -> None:
    arch = variant(offchip={"bits_per_cycle": 64, "pj_per_bit": 20.0})
    cost = offchip_cost(arch, CHAIN)
    # a 3 x 16 x 16 image of 8-bit values: 6144 bits, 96 cycles; 10 classes: a 4-bit index
    assert (cost.input_bits, cost.input_cycles) == (6144, 96)
    assert (cost.output_bits, cost.output_cycles) == (4, 1)
    assert cost.energy_pj == pytest.approx((6144 + 4) * 20.0)
    assert offchip_cost(SPIKESIM, CHAIN).energy_pj == 0.0


def test_the_input_is_on_the_first_layer_s_critical_path() -> None:
    io = variant(offchip={"bits_per_cycle": 64, "pj_per_bit": 20.0})
    steps = 3
    plain = map_network(SPIKESIM, CHAIN)
    mapping = map_network(io, CHAIN)
    activity = full_activity(mapping, steps)
    a0, a1 = run_timing(plain, activity), run_timing(mapping, activity)
    np.testing.assert_array_equal(a1.finish_cycles, a0.finish_cycles + 96)
    np.testing.assert_allclose(a1.latency_ns, a0.latency_ns + (96 + 1) * 4.0)
    energy = run_energy(mapping, activity)
    assert energy.per_component_pj()["offchip"] == pytest.approx(6148 * 20.0)
    # charged at the first timestep: every stopping point pays the image in and its answer out
    base = run_energy(plain, activity)
    np.testing.assert_allclose(
        energy.cumulative_pj() - base.cumulative_pj(), 6148 * 20.0, rtol=1e-12
    )


def test_simulated_images_load_one_after_another_into_two_slots() -> None:
    io = variant(offchip={"bits_per_cycle": 64, "pj_per_bit": 20.0})
    mapping = map_network(io, CHAIN)
    chip = chip_model(mapping, CHAIN.names, decision_cycles=0)
    assert (chip.input_cycles, chip.output_cycles) == (96, 1)
    n, steps, layers = 4, 2, len(CHAIN.names)
    ops = np.zeros((n, steps, layers), np.int32)
    ops[:, :, 0] = 1000  # conv0: 1 PE, 26,000 cycles per job: far slower than a load
    run = simulate(chip, Workload(ops, np.zeros_like(ops)))
    # images 0 and 1 load back to back (in by 96 and 192); image 2 loads once conv0 is done
    # with image 0 (in by then + 96), image 3 once it is done with image 1
    assert run.start[0, 0, 0] == 96
    assert run.start[0, 1, 0] == max(192, run.finish[0, 0, -1])
    for i in (2, 3):
        loaded = run.finish[0, i - 2, -1] + 96
        assert run.start[0, i, 0] == max(loaded, run.finish[0, i - 1, -1])
    # an image's latency counts its input cycles, not its wait in the buffer
    np.testing.assert_array_equal(run.image_start, run.start[0, :, 0] - 96)
    # the result leaves output_cycles after the fusion unit's last decision
    assert run.image_end[0] == run.finish[-1, 0, -1]
    fu = run.chip.fusion_node
    assert run.finish[fu, 0, -1] - run.start[fu, 0, -1] == 1


def test_programming_cost_by_hand() -> None:
    arch = variant(
        programming={
            "pulse_pj": 10.0,
            "verify_pj": 0.5,
            "pulses_per_round": 3,
            "verify_rounds": 2,
            "row_round_cycles": 15,
            "rows_in_parallel": 4,
        }
    )
    mapping = map_network(arch, CHAIN)
    cost = programming_cost(mapping)
    # conv0: 9 crossbars of 3 rows x 64 columns; conv1: 9 of 64 x 64; GAP: 256 positions of
    # 64 x 64; Linear: 4 positions of 16 rows x 10 columns
    rows = 9 * 3 + 9 * 64 + 256 * 64 + 4 * 16
    cells = 9 * 3 * 64 + 9 * 64 * 64 + 256 * 64 * 64 + 4 * 16 * 10
    assert (cost.rows, cost.cells) == (rows, cells)
    assert cost.energy_pj == pytest.approx(cells * 2 * (3 * 10.0 + 0.5))
    assert cost.cycles == math.ceil(rows / 4) * 2 * 15
    assert cost.ns == cost.cycles * 4.0
    assert cost.breakeven_inferences(1e6) == pytest.approx(cost.energy_pj / 1e6)
    assert cost.per_inference_pj(1e6, 100) == pytest.approx(1e6 + cost.energy_pj / 100)
    assert programming_cost(map_network(SPIKESIM, CHAIN)) is None


# -------------------------------------------------------------------------- partial sums


TWO_TILE = chain([conv("conv0", 3, 128, 3, 8, 0), conv("conv1", 128, 64, 3, 8, 1)])
"""conv1's 128 input channels make two channel groups of 64 rows: two PEs, one per tile."""


def psum_arch(accumulate_cycles: int = 0, pes_per_tile: int = 1) -> object:
    psums = {"bits": 22, "accumulate_cycles": accumulate_cycles}
    return variant(pe={"pes_per_tile": pes_per_tile}, partial_sums=psums)


def test_a_layer_on_two_tiles_sends_n_out_partial_sums_per_timestep() -> None:
    arch = psum_arch()
    mapping = map_network(arch, TWO_TILE)
    conv1 = mapping.layer("conv1")
    assert conv1.channel_groups == 2 and len(conv1.tiles) == 2
    p = layer_psums(mapping, conv1)
    n_out = 64 * 8 * 8
    assert len(p.flows) == 1 and p.noc_bits == n_out * 22
    assert p.htree_vectors == 0 and p.adds == n_out and p.vectors_per_reducer == 8 * 8
    # the simulator carries ceil(N_out x bits / flit width) flits per timestep to the reducer
    steps = 3
    chip = chip_model(mapping, TWO_TILE.names, decision_cycles=0)
    ops = np.broadcast_to(mapping.pe_operations().astype(np.int32), (1, steps, 2)).copy()
    run = simulate(chip, Workload(ops, np.zeros_like(ops)))
    per_step = math.ceil(n_out * 22 / 32)
    hops = len(xy_links(p.flows[0].src, p.flows[0].dst))
    assert run.psum_link_flits.sum() == steps * per_step * hops
    assert run.link_flits.sum() == 0  # no spikes sent in this workload
    # the job waits for its partial sums: PE operations, then hops and serialisation
    job = run.finish[1, 0, 0] - run.start[1, 0, 0]
    compute = math.ceil(ops[0, 0, 1] / conv1.pes) * 26
    assert job == compute + hops * chip.hop_cycles + per_step - 1
    # energy: flit-hops x noc_flit_hop, one add (shift_add) per partial sum
    priced = parse_arch(
        {**arch.to_mapping(), "energy_pj": {**BASE["energy_pj"], "noc_flit_hop": 2.0}}, "p"
    )
    e = run_energy(map_network(priced, TWO_TILE), full_activity(mapping, 1))
    parts = e.per_component_pj()
    assert set(PSUM_COMPONENTS) <= set(parts)
    assert parts["psum_noc"] == pytest.approx(n_out * 22 / 32 * hops * 2.0)
    assert parts["psum_add"] == pytest.approx(n_out * 1.15e-6)
    assert parts["psum_htree"] == 0.0


def test_partial_sums_within_a_tile_cross_its_h_tree() -> None:
    arch = variant(partial_sums={"bits": 22})  # 8 PEs per tile: both channel groups on tile 0
    mapping = map_network(arch, TWO_TILE)
    p = layer_psums(mapping, mapping.layer("conv1"))
    assert p.flows == () and p.htree_vectors == 8 * 8
    e = run_energy(mapping, full_activity(mapping, 1)).per_component_pj()
    assert e["psum_htree"] == pytest.approx(8 * 8 * 8 * 19.64)  # 8 links per PE output
    assert e["psum_noc"] == 0.0
    # SpikeSim accumulates for free: no partial-sum components at all
    assert (
        "psum_noc"
        not in run_energy(
            map_network(SPIKESIM, TWO_TILE), full_activity(map_network(SPIKESIM, TWO_TILE), 1)
        ).per_component_pj()
    )


@pytest.mark.parametrize("pes_per_tile", [1, 8])  # partial sums between tiles, or in one
def test_analytic_partial_sums_equal_the_simulated_job(pes_per_tile: int) -> None:
    arch = psum_arch(accumulate_cycles=3, pes_per_tile=pes_per_tile)
    arch = parse_arch({**arch.to_mapping(), "buffers": {"input_buffer_timesteps": 64}}, "psum")
    mapping = map_network(arch, TWO_TILE)  # unbounded buffers, as the analytic model
    ops = np.array([[5, 64 * 2], [0, 17]])  # conv1: both row units' operations, or some
    sent = np.zeros_like(ops)
    analytic = run_timing(mapping, LayerActivity(TWO_TILE.names, 1, ops, ops, ops, sent))
    chip = chip_model(mapping, TWO_TILE.names, decision_cycles=0)
    run = simulate(chip, Workload(ops[None].astype(np.int32), sent[None].astype(np.int32)))
    np.testing.assert_array_equal(run.finish[:2, 0].T, analytic.finish_cycles)
    assert analytic.psum_cycles[0, 1] > 0 and analytic.psum_cycles[1, 0] == 0
    # the reducer adds ceil(ops x 64 vectors / 128 operations) vectors, 3 cycles each; between
    # tiles the NoC transfer comes first
    accumulate = np.array([64, 9]) * 3  # ceil(17 x 64 / 128) = 9
    if pes_per_tile == 8:
        np.testing.assert_array_equal(analytic.psum_cycles[:, 1], accumulate)
    else:
        assert np.all(analytic.psum_cycles[:, 1] > accumulate)


# ------------------------------------------------------------------- one truth in reports


def test_a_noc_bound_chip_names_a_link_and_its_analytic_bound_is_within_5_percent() -> None:
    arch = variant(
        pe={"pes_per_tile": 1},
        noc={"flit_width_bits": 1},
        buffers={"input_buffer_timesteps": 4},
    )
    graph = chain([conv("conv0", 3, 64, 3, 16, 0), conv("conv1", 64, 64, 3, 16, 1)])
    mapping = map_network(arch, graph)
    steps = 8
    activity = full_activity(mapping, steps)
    analytic = run_timing(mapping, activity)
    chip = chip_model(mapping, graph.names, decision_cycles=0)
    ops = np.broadcast_to(mapping.pe_operations().astype(np.int32), (1, steps, 2)).copy()
    sent = np.broadcast_to(np.array([64 * 256, 0], np.int32), (1, steps, 2)).copy()
    run = simulate(chip, Workload(ops, sent))
    # 16,384 spikes of a 14-bit address each per timestep, one bit per flit: 229,376 flits
    # on the link, far more than conv0's 256 x 26 = 6,656 cycles
    assert analytic.bottleneck.startswith("link ") and run.bottleneck.startswith("link ")
    assert analytic.bottleneck == run.bottleneck
    assert analytic.interval_cycles == 64 * 256 * 14
    simulated = float(np.diff(run.finish[1, 0])[2:].mean())
    assert analytic.interval_cycles <= simulated <= 1.05 * analytic.interval_cycles
    # and the analytic latency stays a lower bound of the simulated one
    assert analytic.finish_cycles[-1, 1] <= run.finish[1, 0, -1]


def test_percentile_is_the_inverted_cdf() -> None:
    values = np.array([7, 1, 3, 9, 5])
    # the smallest observed value with at least q% of the values at or below it
    assert [percentile(values, q) for q in (1, 20, 21, 60, 99, 100)] == [1, 1, 3, 5, 9, 9]


# ------------------------------------------------------------------------------ ablation


def test_ablation_adds_one_effect_per_step_up_to_the_full_chip() -> None:
    graph = CHAIN
    mapping = map_network(SPIKESIM, graph)
    steps = 4
    activity = full_activity(mapping, steps)
    result = ablation(SPIKESIM, CHIP, graph, activity)
    names = [s.step for s in result.steps]
    assert names == list(ABLATION_STEPS)
    by = {s.step: s for s in result.steps}
    assert by["spikesim"].arch == SPIKESIM and by["physical"].arch == CHIP
    # SpikeSim's view: every layer's stage in turn, every timestep
    stages = run_timing(mapping, activity).stage_cycles
    assert by["spikesim"].latency_ns == pytest.approx(stages.sum() * 4.0)
    # pipelining overlaps the layers: shorter, same energy
    assert by["pipelining"].latency_ns < by["spikesim"].latency_ns
    assert by["pipelining"].energy_pj == pytest.approx(by["spikesim"].energy_pj)
    # line buffers overlap them within a timestep too: shorter again, same energy
    assert not by["pipelining"].arch.timing.line_buffer
    assert by["line_buffer"].arch.timing.line_buffer
    assert by["line_buffer"].latency_ns < by["pipelining"].latency_ns
    assert by["line_buffer"].energy_pj == pytest.approx(by["pipelining"].energy_pj)
    assert by["partial_sums"].arch.timing.line_buffer
    # static power: leakage x the simulated latency, nothing else changes
    power = leakage_power(map_network(by["static_power"].arch, graph)).total_mw
    assert by["static_power"].static_pj == pytest.approx(power * by["static_power"].latency_ns)
    assert by["static_power"].dynamic_pj == pytest.approx(by["partial_sums"].dynamic_pj)
    # the interface: the image in and the answer out
    io = offchip_cost(CHIP, graph)
    assert by["offchip"].offchip_pj == pytest.approx(io.energy_pj)
    assert (
        by["offchip"].latency_ns
        >= by["static_power"].latency_ns + (io.input_cycles + io.output_cycles) * 4.0
    )
    frame = result.to_frame()
    assert frame["step"].tolist() == names and frame["energy_ratio"].iloc[0] == 1.0
    assert result.programming is not None and result.programming.cells == mapping.used_cells
