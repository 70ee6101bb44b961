"""End to end: checkpoint + arch -> accuracy/energy curves, checked against independent sums;
trace reuse; sweeps."""

import numpy as np
import pandas as pd
import pytest

import hwsim.engine as engine
import hwsim.pipeline.cache as cache
from hwsim.api import RunConfig, SimConfig, SweepConfig, estimate, run, sweep
from hwsim.engine.trace import TraceError
from hwsim.errors import InputError
from hwsim.hw.arch import load_arch
from hwsim.hw.energy import pe_energy_components_pj
from hwsim.methods import Method
from hwsim.model.graph import FC_HEAD
from hwsim.model.netspec import NetSpec
from hwsim.pipeline.session import choose_ic
from hwsim.report.files import write_run
from hwsim.results import SweepRow

ARCH = "arch_configs/spikesim.yaml"
SIM = SimConfig(timesteps=40)


@pytest.fixture(scope="module")
def run_cfg(tiny_checkpoint, tmp_path_factory):
    _, path = tiny_checkpoint
    root = tmp_path_factory.mktemp("traces")
    return RunConfig(arch=ARCH, model=path, ic=4, sim=SIM, images=64, tune_images=64,
                     trace_root=root)  # fmt: skip


@pytest.fixture(scope="module")
def result(run_cfg):
    return run(run_cfg)


def test_curves_are_consistent_with_the_engine_spikes(result):
    ev = result.evaluation
    assert set(ev.curves) == {"DL", "SL", "BSF-Grid", "BSF-Emp", "Early-Exit"}
    spikes = result.test.sim.head_spikes[FC_HEAD]
    # one step of delay per layer: the image reaches the FC output after 8 blocks + GAP +
    # Linear = 10 steps; before that every image sees the same (bias-driven) spikes
    assert (spikes[:, :10] == spikes[:1, :10]).all()
    assert not (spikes[:, 10:] == spikes[:1, 10:]).all()
    # DL accuracy recomputed independently from the raw spikes: argmax of counts, a k-way tie
    # holding the label earning 1/k (the default, fair rule): all 10 classes tie at first
    counts = np.cumsum(spikes, axis=1)
    tied = counts == counts.max(axis=2, keepdims=True)
    label = np.take_along_axis(tied, result.test.labels[:, None, None], axis=2)[..., 0]
    credit = label / tied.sum(axis=2)
    np.testing.assert_allclose(ev.curves["DL"].accuracy, credit.mean(axis=0), rtol=1e-6)


def test_energy_per_step_is_the_sum_of_spikesim_pe_energies(result):
    arch = load_arch(ARCH)
    x = arch.crossbar.rows
    total = 0.0
    for g in result.evaluation.energy.layers:
        if g.kind.value == "linear":
            cin, kernel, out = -(-g.in_channels // 4), (4, 1), (1, 1)
        elif g.kind.value == "gap":
            cin, kernel, out = g.in_channels, g.kernel, (1, 1)
        else:
            cin, kernel, out = g.in_channels, g.kernel, g.out_hw
        ops = -(-g.out_channels // x) * -(-cin // x) * out[0] * out[1]
        total += ops * sum(pe_energy_components_pj(arch, kernel).values())
    curves = result.evaluation.curves
    assert curves["Early-Exit"].energy_per_step_pj == pytest.approx(total)
    assert curves["DL"].energy_per_step_pj < total  # the others also run the IC head
    assert curves["SL"].energy_per_step_pj < curves["DL"].energy_per_step_pj
    # BSF also pays the fusion unit, charged from the head spikes
    fusion = np.cumsum(result.evaluation.energy.fusion_pj)
    assert fusion[-1] > 0
    np.testing.assert_allclose(
        curves["BSF-Grid"].energy_pj - curves["Early-Exit"].energy_pj, fusion, rtol=1e-9
    )


def _spikesim_pe_energy(arch, g):
    """(SpikeSim geometry kernel, E_PE) of a layer, from the raw formula of DESIGN.md."""
    kernel = {"linear": (4, 1), "gap": g.kernel}.get(g.kind.value, g.kernel)
    return sum(pe_energy_components_pj(arch, kernel).values())


def test_event_model_charges_only_active_pe_operations(tiny_checkpoint, tmp_path):
    from hwsim.hw.arch import EnergyModel

    _, path = tiny_checkpoint
    cfg = RunConfig(arch=ARCH, model=path, ic=4, sim=SIM, images=32, tune_images=32,
                    trace_root=tmp_path, energy_model=EnergyModel.EVENT)  # fmt: skip
    ev = run(cfg).evaluation
    act = run(cfg).test.sim.activity
    assert act is not None
    arch = load_arch(ARCH)
    geometry = {g.name: g for g in ev.energy.layers}
    per_step = np.zeros(40)
    # an active window pays a SpikeSim PE operation but its crossbar reads, which are paid per
    # crossbar read with a spiking row: G = 8 column groups sensed, 1.76423 pJ each
    sensing = 8 * arch.energy_pj.crossbar_read
    for j, name in enumerate(act.names):
        if name in geometry:
            g = geometry[name]
            kernel = {"linear": (4, 1), "gap": g.kernel}.get(g.kind.value, g.kernel)
            e_pe = _spikesim_pe_energy(arch, g) - sensing * kernel[0] * kernel[1]
            per_step += (act.active_windows[:, j] * e_pe + act.active_pe_ops[:, j] * sensing) / 32
    np.testing.assert_allclose(ev.curves["Early-Exit"].energy_pj, np.cumsum(per_step), rtol=1e-9)
    spikesim = run(RunConfig(**{**cfg.__dict__, "energy_model": EnergyModel.SPIKESIM}))
    assert ev.curves["DL"].energy_pj[-1] < spikesim.evaluation.curves["DL"].energy_pj[-1]


def test_latency_follows_the_pipeline(result):
    ev = result.evaluation
    lat = ev.latency_ns
    for name in ev.curves:
        assert lat[name].shape == (40,) and (np.diff(lat[name]) > 0).all()
    assert (lat["SL"] <= lat["BSF-Grid"]).all() and (lat["DL"] <= lat["BSF-Grid"]).all()
    # at 250 MHz a cycle is 4 ns; every output of step t waits for conv0's stages 1..t
    # (finish[l][t] >= finish[l][t-1] + stage[l][t]), and DL's equals the FC Linear's finish
    tm = ev.timing
    assert tm.clock_mhz == 250
    conv0 = tm.stage_cycles[:, tm.index("conv0")]
    assert (lat["DL"] >= 4 * np.cumsum(conv0)).all()
    assert lat["DL"][-1] >= 4 * tm.finish_cycles[-1, tm.index("fc.linear")]


def test_target_and_reduction_follow_their_definitions(result):
    ev = result.evaluation
    assert ev.target == pytest.approx(0.99 * ev.ann_accuracy[FC_HEAD])
    for name, s in ev.summary.items():
        acc, t = ev.curves[name].accuracy, s.target
        if t.timestep is None:
            assert acc.max() < ev.target
        else:
            assert acc[t.timestep - 1] >= ev.target and (acc[: t.timestep - 1] < ev.target).all()
    dl, bsf = ev.summary["DL"].target.energy_pj, ev.summary["BSF-Grid"].target.energy_pj
    if dl is not None and bsf is not None:
        assert ev.summary["BSF-Grid"].reduction_pct == pytest.approx(100 * (dl - bsf) / dl)


def test_written_files_have_units_and_one_row_per_step(result, tmp_path):
    paths = write_run(result, tmp_path)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    acc = pd.read_csv(tmp_path / "accuracy_energy.csv")
    assert len(acc) == 40 and "energy_dl_pj" in acc and "accuracy_bsf_emp" in acc
    assert "latency_sl_ns" in acc and "latency_ns" in pd.read_csv(tmp_path / "targets.csv")
    np.testing.assert_allclose(acc["accuracy_dl"], result.evaluation.curves["DL"].accuracy)
    breakdown = pd.read_csv(tmp_path / "energy_breakdown.csv")
    assert "adc_pj" in breakdown and "total_pj" in breakdown
    energy = result.evaluation.energy
    # mean per timestep x T = the layers' run energy; the per-step file adds the fusion unit
    assert breakdown["total_pj"].sum() * 40 == pytest.approx(energy.energy_pj.sum())
    per_step = pd.read_csv(tmp_path / "energy_per_timestep.csv")
    assert len(per_step) == 40 and "fusion_unit_pj" in per_step and "noc_pj" in per_step
    assert per_step["total_pj"].sum() == pytest.approx(energy.total_pj)


def test_second_run_reuses_traces_and_never_a_stale_one(result, run_cfg, monkeypatch):
    cfg = run_cfg

    def no_simulation(*a, **k):
        raise AssertionError("simulated although a matching trace exists")

    monkeypatch.setattr(engine, "simulate", no_simulation)
    again = run(cfg)
    np.testing.assert_array_equal(
        again.test.sim.head_spikes[FC_HEAD], result.test.sim.head_spikes[FC_HEAD]
    )
    stale = RunConfig(**{**cfg.__dict__, "sim": SimConfig(timesteps=41)})
    with pytest.raises(AssertionError, match="simulated"):
        run(stale)


def test_given_trace_is_used_and_a_corrupt_one_refused(result, run_cfg, tmp_path):
    from hwsim.engine.trace import ARRAYS_FILE, write_trace

    folder = write_trace(result.test, tmp_path / "given")
    cfg = RunConfig(**{**run_cfg.__dict__, "test_trace": folder})
    again = run(cfg)
    assert again.evaluation.summary["DL"].auc == pytest.approx(result.evaluation.summary["DL"].auc)
    (folder / ARRAYS_FILE).write_bytes(b"garbage")
    with pytest.raises(TraceError, match="checksum"):
        run(cfg)


def test_sweep_rows_match_single_runs_and_resume(result, run_cfg, tiny_checkpoint):
    _, path = tiny_checkpoint
    cfg = SweepConfig(arch=ARCH, model=path, ic_positions=(2, 4), sim=SIM, images=64,
                      tune_images=64, trace_root=run_cfg.trace_root)  # fmt: skip
    seen = []
    rows = sweep(cfg, on_row=lambda row: seen.append(row.ic))
    assert [r.ic for r in rows] == [2, 4] and seen == [2, 4]
    ev = result.evaluation
    bsf = rows[1].methods[Method.BSF_GRID]
    assert bsf.energy_pj == ev.summary[Method.BSF_GRID].target.energy_pj
    assert rows[1].to_dict()["energy_bsf_grid_pj"] == bsf.energy_pj
    assert SweepRow.from_dict(rows[1].to_dict()) == rows[1]  # the CSV row reads back


def test_default_ic_is_the_shallowest_reaching_the_target(tiny_checkpoint):
    ckpt, _ = tiny_checkpoint
    ic = choose_ic(ckpt, 0.99)
    acc = ckpt.validation_accuracy  # chosen on the validation split, never on the test split
    assert set(acc) == {*ckpt.spec.ic_positions, FC_HEAD}
    good = [i for i in ckpt.spec.ic_positions if acc[i] >= 0.99 * acc[FC_HEAD]]
    assert ic == (min(good) if good else max(ckpt.spec.ic_positions, key=acc.get))


def test_unknown_ic_is_an_error(tiny_checkpoint):
    _, path = tiny_checkpoint
    with pytest.raises(InputError, match="no IC head at block 3") as e:
        run(RunConfig(arch=ARCH, model=path, ic=3, sim=SimConfig(timesteps=5), images=4,
                      tune_images=4, trace_root=None))  # fmt: skip
    assert e.value.param == "ic" and str(e.value).startswith("ic 3: the checkpoint has ICs at")


def test_estimate_counts_pe_operations_of_a_geometry():
    spec = NetSpec("vgg19", 1.0, (3, 32, 32), 10, (5,))
    r = estimate(ARCH, spec)
    assert r.energy.layers[0].name == "conv0"
    assert r.energy.pe_operations[0] == 1 * 1 * 32 * 32  # 64 out ch, 3 in ch, 32x32 output
    assert r.energy.pe_operations[1] == 1 * 1 * 32 * 32
    assert r.energy.pe_operations[8] == 8 * 4 * 4 * 4  # 512 out / 64, 256 in / 64, 4x4


def test_a_sweep_extended_by_one_position_computes_only_that_one(
    run_cfg, tiny_checkpoint, tmp_path, monkeypatch
):
    # issue 26: each position's row is kept in the result store under the trace root; the
    # rows read back equal those computed afresh (no store), simultaneous intervals included
    import dataclasses

    import hwsim.pipeline.evaluate as evaluate_module
    from hwsim.metrics import Multiplicity

    _, path = tiny_checkpoint
    cfg = SweepConfig(arch=ARCH, model=path, ic_positions=(2,), sim=SIM, images=64,
                      tune_images=64, trace_root=tmp_path / "t")  # fmt: skip
    computed = []
    real = evaluate_module.evaluate

    def counting(*args, **kwargs):
        computed.append(args[5])  # the IC
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "evaluate", counting)
    first = sweep(cfg)
    assert computed == [2]
    extended = dataclasses.replace(cfg, ic_positions=(2, 4))
    both = sweep(extended)
    assert computed == [2, 4]
    fresh = sweep(dataclasses.replace(extended, trace_root=None))
    assert computed == [2, 4, 2, 4]
    assert both == fresh
    assert [r.to_dict() for r in both] == [r.to_dict() for r in fresh]
    # the family of one position and of two differ only in the simultaneous intervals
    strip = {"simultaneous_positions"}
    one = {k: v for k, v in first[0].to_dict().items() if "_sim" not in k and k not in strip}
    two = {k: v for k, v in both[0].to_dict().items() if "_sim" not in k and k not in strip}
    assert one == two
    assert (first[0].family, both[0].family) == (1, 2)
    assert both[0].multiplicity is Multiplicity.BONFERRONI
    r = both[1].methods[Method.BSF_GRID].reductions[Method.DL]
    if r.ci is not None and r.simultaneous_ci is not None:
        assert r.simultaneous_ci[0] <= r.ci[0] and r.simultaneous_ci[1] >= r.ci[1]
    # all stored: not even the traces are read, by a sweep or by a grid's cells (one store)
    monkeypatch.setattr(evaluate_module, "tune_and_test", lambda *a, **k: 1 / 0)
    assert sweep(extended) == both and computed == [2, 4, 2, 4]
    from pathlib import Path

    from hwsim.api import GridConfig, sweep_grid

    grid = GridConfig(models=(path,), archs=(Path(ARCH),), codings=("direct",), template=extended)
    result = sweep_grid(grid)
    cells = result.rows
    assert computed == [2, 4, 2, 4] and result.stored == 2
    assert [{k: c[k] for k in both[0].to_dict()} for c in cells] == [r.to_dict() for r in both]


def test_a_tuning_draws_random_ties_by_the_trace_s_image_indices(result, monkeypatch):
    # the random tie rule follows the data set's image ids on the tuning images too, as on
    # the test images (evaluate passes test.image_indices)
    from hwsim.fusion import TuningConfig
    from hwsim.methods import TieRule, Ties

    seen = {}

    def capture(fc, ic, labels, config, image_ids=None):
        seen["ids"] = image_ids
        raise KeyboardInterrupt  # stop here: the call is what is tested

    monkeypatch.setattr(cache, "tune_methods", capture)
    trace = result.test
    with pytest.raises(KeyboardInterrupt):
        cache.tuning_for(trace, 4, None, TuningConfig(ties=Ties(TieRule.RANDOM, 5)))
    assert np.array_equal(seen["ids"], trace.image_indices)
