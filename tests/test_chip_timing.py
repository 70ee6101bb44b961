"""The cycle-level simulation of a run: energies of the performed jobs against the energy
model's curves (static and off-chip energy by hand), per-image latency against the analytic
model, early stops, the p99 as an order statistic, and runs kept without their per-job records
(replayed here to check them), read in chunks of images with the same results."""

import dataclasses
import importlib
import math

import numpy as np
import pytest
import yaml

from hwsim.api import RunConfig, SimConfig, run
from hwsim.fusion import cumulative, fused_decisions, stop_at
from hwsim.hw.activity import LayerActivity
from hwsim.hw.arch import EnergyModel, load_arch, parse_arch
from hwsim.hw.energy import paid_edges
from hwsim.hw.fusion_unit import FusionUnit, check_against_float
from hwsim.hw.mapping import ChipMapping
from hwsim.hw.sim import ChipRun, Workload, chip_model, simulate
from hwsim.hw.timing import run_timing
from hwsim.methods import METHODS, Method, TieRule, Ties
from hwsim.model.graph import FC_HEAD
from hwsim.pipeline import activity as activity_module
from hwsim.pipeline import cycles as cycles_module
from hwsim.pipeline.activity import chip_workload
from hwsim.pipeline.cycles import (
    EarlyStop,
    MethodTiming,
    OperatingPoint,
    counted_spikes,
    evaluate_cycles,
    fusion_hardware,
    method_decisions,
    method_heads,
)

posterior_module = importlib.import_module("hwsim.fusion.posterior")  # not the function
ARCH = "arch_configs/spikesim.yaml"
STEPS = 30


def noc_arch(folder) -> str:
    """spikesim.yaml with one PE per tile (spikes cross the mesh) and 1.5 pJ per flit-hop."""
    base = load_arch(ARCH).to_mapping()
    base["pe"] = {**base["pe"], "pes_per_tile": 1}
    base["energy_pj"] = {**base["energy_pj"], "noc_flit_hop": 1.5}
    path = folder / "noc.yaml"
    path.write_text(yaml.safe_dump(base))
    return str(path)


@pytest.fixture(
    scope="module", params=[EnergyModel.SPIKESIM, EnergyModel.EVENT, "event-noc"], ids=str
)
def result(request, tiny_checkpoint, tmp_path_factory):
    _, path = tiny_checkpoint
    folder = tmp_path_factory.mktemp("traces")
    noc = request.param == "event-noc"
    cfg = RunConfig(
        arch=noc_arch(folder) if noc else ARCH,
        model=path,
        ic=4,
        sim=SimConfig(timesteps=STEPS),
        images=24,
        tune_images=24,
        trace_root=folder,
        energy_model=EnergyModel.EVENT if noc else EnergyModel(request.param),
    )
    return run(cfg)


def replayed(row: MethodTiming, mapping: ChipMapping, test) -> tuple[ChipRun, Workload]:
    """The run of `row` simulated again with its per-job records (its chip model is kept in
    the summary), and its workload: the method's layers and counted spikes."""
    chip = row.run.chip
    counted = counted_spikes(test.sim.head_spikes, method_heads(row.method, 4))
    work = chip_workload(mapping, test.sim.activity, chip.layer_names, counted)
    steps = row.run.image_steps
    if row.point is OperatingPoint.FIXED:
        return simulate(chip, work, image_steps=steps), work
    return simulate(chip, work, stop_step=steps - 1), work


def assert_summary_of(row: MethodTiming, run: ChipRun) -> None:
    """`row.run` is `run` without its per-job records."""
    kept = row.run
    assert kept.start is None and kept.finish is None and run.start is not None
    for name in ("busy_cycles", "stall_cycles", "link_flits", "psum_link_flits", "image_start"):
        np.testing.assert_array_equal(getattr(kept, name), getattr(run, name), err_msg=name)
    np.testing.assert_array_equal(kept.image_end, run.image_end)
    np.testing.assert_array_equal(kept.jobs, (run.start >= 0).sum(axis=(1, 2)))
    assert kept.images == run.start.shape[1]


def simulated_flit_hops(run, work) -> float:
    """Flit-hops of every packet the run's performed jobs sent, by a plain loop over the
    chip's flows (one packet per flow, job and out edge, whole flits, head flits added)."""
    chip = run.chip
    total = 0
    n, steps = run.start.shape[1:]
    for e in range(len(chip.edge_src)):
        v = chip.edge_src[e]
        for f in range(chip.edge_flow_ptr[e], chip.edge_flow_ptr[e + 1]):
            hops = chip.flow_link_ptr[f + 1] - chip.flow_link_ptr[f]
            for i in range(n):
                for t in range(steps):
                    s = work.sent_spikes[i, t, v]
                    if run.start[v, i, t] < 0 or s == 0:
                        continue
                    flits = chip.flow_bitmap_flits[f] or math.ceil(
                        round(s * chip.flow_flits_per_spike[f], 9)
                    )
                    total += (flits + chip.header_flits) * hops if flits else 0
    return float(total)


def test_fixed_t_energy_per_inference_is_the_curves_energy_at_its_steps(result) -> None:
    # the PE components and the fusion unit as the accuracy-energy curves charge them; the
    # NoC as the simulated packets' flit-hops (whole flits per packet, the curves' spread
    # spikes evenly over fractional flits)
    ev, cycles = result.evaluation, result.cycles
    assert cycles is not None
    rows = {m.method: m for m in cycles.methods if m.point is OperatingPoint.FIXED}
    assert set(rows) == set(ev.curves)
    hop_pj = result.arch.energy_pj.noc_flit_hop
    event = result.arch.energy_model is EnergyModel.EVENT
    if hop_pj > 0:
        assert ev.energy.per_component_pj()["noc"] > 0  # the NoC's energy is part of the check
    mapping = cycles.mapping
    for method, row in rows.items():
        steps = ev.summary[method].target.timestep or STEPS
        assert row.steps_mean == steps
        assert row.target_met_on_tuning is None  # fixed T: no stop threshold
        want = ev.curves[method].energy_pj[steps - 1]
        if event and hop_pj > 0:
            layers = {g.name for g in mapping.graph.layers if g.name in row.run.chip.layer_names}
            edges = paid_edges(ev.energy.edge_flit_hops, layers)
            curve_noc = sum(ev.energy.edge_flit_hops[e][:steps].sum() for e in edges) * hop_pj
            run, work = replayed(row, mapping, result.test)
            assert_summary_of(row, run)
            sim = simulated_flit_hops(run, work)
            assert sim == row.run.link_flits.sum()
            want = want - curve_noc + sim * hop_pj / row.run.images
            assert sim * hop_pj / row.run.images >= curve_noc - 1e-6  # whole flits
        assert row.energy_pj == pytest.approx(want, rel=1e-9), method


def test_one_image_at_a_time_matches_the_analytic_pipeline(result) -> None:
    # unbounded buffers, one tile (no packet between layers) and one image: per image the
    # simulator's layer finishes are the max-plus recurrence's
    base = result.arch.to_mapping()
    arch = parse_arch(
        {
            **base,
            "pe": {**base["pe"], "pes_per_tile": 4096},
            "buffers": {**base["buffers"], "input_buffer_timesteps": 1 << 16},
        },
        "one tile, unbounded buffers",
    )
    cycles = evaluate_cycles(
        arch,
        result.spec.graph(),
        4,
        result.test.sim.activity,
        result.test.sim.head_spikes,
        {Method.BSF_GRID: STEPS},
        {Method.BSF_GRID: 0},
    )
    mapping = cycles.mapping
    work = chip_workload(mapping, result.test.sim.activity)
    chip = chip_model(mapping, mapping.graph.names, 0)
    graph = mapping.graph
    for image in (0, 7):
        one = Workload(work.pe_ops[image : image + 1], work.sent_spikes[image : image + 1])
        run1 = simulate(chip, one)
        ops = work.pe_ops[image].astype(np.int64)
        activity = LayerActivity(graph.names, 1, ops, ops, ops, work.sent_spikes[image])
        analytic = run_timing(mapping, activity)
        assert len(mapping.tile_coords) == 1
        n = len(graph.names)
        np.testing.assert_array_equal(run1.finish[:n, 0].T, analytic.finish_cycles)
        assert analytic.stage_cycles.sum() > 0


def test_early_stop_runs_fewer_jobs_and_costs_less(result) -> None:
    act = result.test.sim.activity
    n = act.per_image.shape[0]
    stop = np.full(n, STEPS // 3)
    cycles = evaluate_cycles(
        load_arch(ARCH) if result.arch.energy_model is EnergyModel.SPIKESIM else result.arch,
        result.spec.graph(),
        4,
        act,
        result.test.sim.head_spikes,
        {Method.DL: STEPS},
        {Method.DL: 10},
        early_stop={Method.DL: EarlyStop(stop, 0.5, 10)},
    )
    fixed, early = cycles.methods
    assert early.point is OperatingPoint.EARLY and early.accuracy == 0.5
    assert early.target_met_on_tuning is True and fixed.target_met_on_tuning is None
    assert early.energy_pj < fixed.energy_pj
    assert early.cycles_mean < fixed.cycles_mean
    assert early.throughput_per_s > fixed.throughput_per_s
    # jobs after the stop ran only if started before the decision was made
    run_e, _ = replayed(early, cycles.mapping, result.test)
    assert_summary_of(early, run_e)
    decided = run_e.finish[run_e.chip.fusion_node, np.arange(n), stop]
    later = run_e.start[:, :, STEPS // 3 + 1 :]
    assert np.all((later < 0) | (later < decided[None, :, None]))
    assert (run_e.start[:, :, STEPS // 3 + 1 :] >= 0).any()  # some wasted work was charged


def test_p99_latency_is_an_observed_latency(result) -> None:
    # the inverted CDF: the smallest latency with at least 99% of the images at or below it
    for row in result.cycles.methods:
        lat = sorted(row.run.latency_cycles.tolist())
        k = math.ceil(0.99 * len(lat)) - 1
        assert row.latency_p99_ns == pytest.approx(lat[k] * 1000 / row.run.chip.clock_mhz)


def test_a_missed_target_gives_no_early_stop_row(result) -> None:
    # a threshold that missed the target on the tuning images is no operating point: only the
    # method's fixed-T row is simulated; one that met it gets its early-stop row
    act = result.test.sim.activity
    n = act.per_image.shape[0]
    missed = EarlyStop(np.full(n, 2), 0.1, 10, target_met=False)
    met = EarlyStop(np.full(n, 2), 0.1, 10, target_met=True)
    args = (result.arch, result.spec.graph(), 4, act, result.test.sim.head_spikes)
    steps = {Method.DL: STEPS, Method.SL: STEPS}
    cycles = evaluate_cycles(
        *args, steps, {Method.DL: 10, Method.SL: 10}, early_stop={Method.DL: missed, Method.SL: met}
    )
    rows = [(r.method, r.point, r.target_met_on_tuning) for r in cycles.methods]
    assert rows == [
        (Method.DL, OperatingPoint.FIXED, None),
        (Method.SL, OperatingPoint.FIXED, None),
        (Method.SL, OperatingPoint.EARLY, True),
    ]


def test_records_come_in_order_and_whole(result) -> None:
    # simulate hands over consecutive ranges of images covering all of them, each with its
    # own rows of the records
    mapping = result.cycles.mapping
    chip = chip_model(mapping, mapping.graph.names, 0)
    work = chip_workload(mapping, result.test.sim.activity)
    got = []
    run = simulate(chip, work, on_records=lambda part, s, f: got.append((part, s.copy(), f.copy())))
    assert [p.start for p, _, _ in got] == [0] + [p.stop for p, _, _ in got[:-1]]
    assert got[-1][0].stop == run.images
    for part, start, finish in got:
        np.testing.assert_array_equal(start, run.start[:, part])
        np.testing.assert_array_equal(finish, run.finish[:, part])
    bare = simulate(chip, work, keep=False)
    assert bare.start is None and bare.finish is None
    np.testing.assert_array_equal(bare.jobs, run.jobs)
    np.testing.assert_array_equal(bare.latency_cycles, run.latency_cycles)


def test_reading_one_image_at_a_time_changes_nothing(result, monkeypatch) -> None:
    act, heads = result.test.sim.activity, result.test.sim.head_spikes
    n = act.per_image.shape[0]
    args = (result.arch, result.spec.graph(), 4, act, heads, {Method.BSF_GRID: STEPS // 2})
    kw = {"early_stop": {Method.BSF_GRID: EarlyStop(np.arange(n) % STEPS, 0.5, 12)}}
    whole = evaluate_cycles(*args, {Method.BSF_GRID: 7}, **kw)
    monkeypatch.setattr(activity_module, "CHUNK_BYTES", 1)
    simulate_module = importlib.import_module("hwsim.hw.sim.simulate")  # not the function
    monkeypatch.setattr(simulate_module, "RECORD_BYTES", 1)  # records one image at a time
    chunked = evaluate_cycles(*args, {Method.BSF_GRID: 7}, **kw)
    for a, b in zip(whole.methods, chunked.methods, strict=True):
        assert a.energy_pj == b.energy_pj and a.latency_p99_ns == b.latency_p99_ns
        np.testing.assert_array_equal(a.run.latency_cycles, b.run.latency_cycles)
        np.testing.assert_array_equal(a.run.jobs, b.run.jobs)


def test_early_termination_credits_a_tie_by_the_runs_rule(result) -> None:
    # one test image whose FC counts tie between classes 0 and 1 at every step (label 0): a
    # tied step never stops it, so DL answers at T, tied: 1/2 under the fair rule, 0 under
    # the wrong rule, as the run's tuning says (`Tuning.ties`)
    tuning = result.evaluation.fusion.tuning
    classes = result.spec.graph().classes
    tied = np.zeros((1, STEPS, classes), np.uint8)
    tied[:, :, :2] = 1
    spikes = {FC_HEAD: tied, 4: tied}
    label = np.zeros(1, np.int64)
    credit = {}
    for rule in (TieRule.FAIR, TieRule.WRONG):
        ruled = dataclasses.replace(tuning, ties=Ties(rule))
        hw = fusion_hardware(result.arch, ruled, 4, spikes, label, spikes, label, 0.5)
        stop = hw.terminations[Method.DL]
        assert stop.stop_step.tolist() == [STEPS]
        credit[rule] = stop.accuracy
    assert credit == {TieRule.FAIR: 0.5, TieRule.WRONG: 0.0}


@pytest.mark.parametrize("model", [EnergyModel.SPIKESIM, EnergyModel.EVENT], ids=str)
def test_static_and_offchip_energy_per_inference(result, model) -> None:
    # leakage: 0.25 mW per router (one per tile) for the stream's simulated duration, shared
    # by its images; off-chip: each image's input values (8 bits each) and result (a class
    # index) at 2 pJ per bit. At fixed T the same jobs run, so the energy grows by exactly that.
    if result.arch.energy_model is not model:
        pytest.skip("one energy model per parametrisation")
    base = result.arch.to_mapping()
    extra = parse_arch(
        {
            **base,
            "leakage_mw": {"router": 0.25},
            "offchip": {"bits_per_cycle": 64, "pj_per_bit": 2.0},
        },
        "leaky chip with an off-chip interface",
    )
    act, heads, graph = result.test.sim.activity, result.test.sim.head_spikes, result.spec.graph()
    steps = {Method.DL: STEPS, Method.BSF_EMP: STEPS // 2}
    cycles = {Method.DL: 0, Method.BSF_EMP: 9}
    plain = evaluate_cycles(result.arch, graph, 4, act, heads, steps, cycles)
    leaky = evaluate_cycles(extra, graph, 4, act, heads, steps, cycles)
    tiles = len(leaky.mapping.tile_coords)
    input_bits = math.prod(graph.input_shape) * 8 + math.ceil(math.log2(graph.classes))
    for a, b in zip(plain.methods, leaky.methods, strict=True):
        run = b.run
        ns = (run.image_end.max() - run.image_start.min()) * 1000 / run.chip.clock_mhz
        want = 0.25 * tiles * ns / run.images + input_bits * 2.0
        assert b.energy_pj - a.energy_pj == pytest.approx(want, rel=1e-9)
        # reported apart: the static and off-chip parts of the energy per inference
        assert (a.static_pj, a.offchip_pj) == (0.0, 0.0)
        assert b.static_pj == pytest.approx(0.25 * tiles * ns / run.images, rel=1e-12)
        assert b.offchip_pj == input_bits * 2.0
        assert run.chip.input_cycles == math.ceil(math.prod(graph.input_shape) * 8 / 64)


def test_a_read_out_by_chunks_of_images_is_the_whole_read_out(result, monkeypatch) -> None:
    # the fusion unit reads out a chunk of images at a time (`READOUT_BYTES`): one image per
    # chunk gives every method's records, last decisions, final top classes and clipped
    # counter readings of the whole test set read at once, and those of the whole (N, T)
    # read-out; the test images' records pruned to a threshold stop every image where the
    # whole read-out does, and the unit's check against the float fusion, added up over the
    # chunks, equals the check of the whole set's cumulative counts
    heads = result.test.sim.head_spikes
    fc, ic = heads[FC_HEAD], heads[4]
    fc_cum, ic_cum = cumulative(fc), cumulative(ic)
    labels = result.test.labels
    tuning = result.evaluation.fusion.tuning
    whole = {m: method_decisions(result.arch, m, tuning, fc, ic) for m in METHODS}
    assert len(posterior_module.readout_chunks(fc)) == 1
    monkeypatch.setattr(posterior_module, "READOUT_BYTES", 1)
    assert len(posterior_module.readout_chunks(fc)) == len(fc) > 1
    for method, w in whole.items():
        one = method_decisions(result.arch, method, tuning, fc, ic)
        full = cycles_module._decisions(result.arch, method, tuning, fc_cum, ic_cum)
        for rec in (one, full.records()):
            for key in ("offsets", "step", "value", "decision", "last_decision", "final_top"):
                np.testing.assert_array_equal(getattr(rec, key), getattr(w, key), key)
            assert (rec.clipped, rec.rule, rec.unit) == (w.clipped, w.rule, w.unit)
        thresholds = [None, *np.unique(w.value)[:: max(1, w.value.size // 5)].tolist()]
        for threshold in thresholds:
            tested, check = cycles_module.tested_decisions(
                result.arch, method, tuning, fc, ic, labels, threshold
            )
            assert tested.step.size <= len(fc)
            for got, want in zip(stop_at(tested, threshold), stop_at(full, threshold), strict=True):
                np.testing.assert_array_equal(got, want)
            assert (check is not None) == METHODS[method].fused
        if not METHODS[method].fused:
            continue
        unit = FusionUnit(result.arch.fusion_unit, tuning.luts[method])
        alpha = tuning.luts[method].decoded_alpha(fc.shape[1])
        reference = fused_decisions(fc_cum, ic_cum, alpha)
        want = check_against_float(unit, fc_cum, ic_cum, labels, reference)
        assert dataclasses.asdict(check).keys() == dataclasses.asdict(want).keys()
        for key, value in dataclasses.asdict(want).items():
            np.testing.assert_array_equal(dataclasses.asdict(check)[key], value, key)
        for key in ("accuracy_fixed", "accuracy_float", "max_accuracy_difference"):
            np.testing.assert_array_equal(getattr(check, key), getattr(want, key), key)
