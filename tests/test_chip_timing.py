"""The cycle-level simulation of a run: energies of the performed jobs against the energy
model's curves, per-image latency against the analytic model, early stops."""

import math

import numpy as np
import pytest
import yaml

from hwsim.api import RunConfig, SimConfig, run
from hwsim.hw.activity import LayerActivity
from hwsim.hw.arch import EnergyModel, load_arch, parse_arch
from hwsim.hw.energy import paid_edges
from hwsim.hw.sim import Workload, chip_model, simulate
from hwsim.hw.timing import run_timing
from hwsim.methods import Method
from hwsim.pipeline.activity import chip_workload, image_activity
from hwsim.pipeline.cycles import EarlyStop, OperatingPoint, evaluate_cycles

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
    work = chip_workload(mapping, image_activity(mapping.graph, result.test.sim.activity))
    for method, row in rows.items():
        steps = ev.summary[method].target.timestep or STEPS
        assert row.steps_mean == steps
        want = ev.curves[method].energy_pj[steps - 1]
        if event and hop_pj > 0:
            layers = {g.name for g in mapping.graph.layers if g.name in row.run.chip.layer_names}
            edges = paid_edges(ev.energy.edge_flit_hops, layers)
            curve_noc = sum(ev.energy.edge_flit_hops[e][:steps].sum() for e in edges) * hop_pj
            cols = [mapping.graph.names.index(n) for n in row.run.chip.layer_names]
            sim = simulated_flit_hops(row.run, work.columns(cols))
            assert sim == row.run.link_flits.sum()
            want = want - curve_noc + sim * hop_pj / row.run.start.shape[1]
            assert sim * hop_pj / row.run.start.shape[1] >= curve_noc - 1e-6  # whole flits
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
    work = chip_workload(mapping, image_activity(mapping.graph, result.test.sim.activity))
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
    assert early.energy_pj < fixed.energy_pj
    assert early.cycles_mean < fixed.cycles_mean
    assert early.throughput_per_s > fixed.throughput_per_s
    # jobs after the stop ran only if started before the decision was made
    run_e = early.run
    decided = run_e.finish[run_e.chip.fusion_node, np.arange(n), stop]
    later = run_e.start[:, :, STEPS // 3 + 1 :]
    assert np.all((later < 0) | (later < decided[None, :, None]))
