"""Design-space exploration: knobs checked through the arch schema, the Pareto filter against a
brute-force pairwise check, points equal to the api's own numbers, invalid points recorded,
resumption from the result store, NSGA-II on a problem with a known front, the command."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from rich.console import Console

import hwsim.api as api
import hwsim.explore.run as explore_run
from hwsim.api import RunConfig, SimConfig, run
from hwsim.cli.main import main
from hwsim.errors import InputError
from hwsim.explore.evaluate import AccuracyMode, Status
from hwsim.explore.pareto import Constraint, Objective, pareto_mask, parse_objectives
from hwsim.explore.run import ExploreConfig, explore
from hwsim.explore.search import Search, SearchKind, nsga2
from hwsim.explore.space import Knob, Point, Space, check_knobs
from hwsim.hw.arch import load_arch
from hwsim.methods import METHODS, Method
from hwsim.pipeline.config import SweepConfig
from hwsim.pipeline.cycles import TimingModel
from hwsim.pipeline.hardware import Hardware
from hwsim.report.explore import print_exploration

torch.set_num_threads(1)
ARCH = "arch_configs/spikesim.yaml"
SIM = SimConfig(timesteps=30)


@pytest.fixture(scope="module")
def template(tiny_checkpoint, tmp_path_factory):
    _, path = tiny_checkpoint
    root = tmp_path_factory.mktemp("explore_traces")
    return SweepConfig(arch=ARCH, model=path, sim=SIM, images=32, tune_images=32,
                       trace_root=root)  # fmt: skip


# ----------------------------------------------------------------------------- Pareto


def _brute_front(x: np.ndarray) -> np.ndarray:
    """Independent reference: a row is kept unless some row is <= everywhere and < somewhere."""
    n = len(x)
    return np.array(
        [
            not any(np.all(x[j] <= x[i]) and np.any(x[j] < x[i]) for j in range(n) if j != i)
            for i in range(n)
        ]
    )


@pytest.mark.parametrize("seed", range(8))
def test_pareto_filter_equals_pairwise_check(seed):
    rng = np.random.default_rng(seed)
    k = 2 + seed % 3
    values = rng.integers(0, 6, size=(60, k)).astype(float)  # small ints: many ties and repeats
    objectives = tuple(list(Objective)[:k])
    signs = np.array([-1.0 if o.maximise else 1.0 for o in objectives])
    np.testing.assert_array_equal(pareto_mask(values, objectives), _brute_front(values * signs))


def test_objectives_and_constraints_parse():
    assert parse_objectives("energy,accuracy") == (Objective.ENERGY, Objective.ACCURACY)
    for bad in ("energy", "energy,energy", "energy,speed"):
        with pytest.raises(InputError, match="objectives"):
            parse_objectives(bad)
    c = Constraint.parse("area_mm2 <= 20")
    assert (c.column, c.op, c.value) == ("area_mm2", "<=", 20.0)
    assert c.holds({"area_mm2": 20.0}) and not c.holds({"area_mm2": 20.5})
    assert not c.holds({"area_mm2": math.nan})
    with pytest.raises(InputError, match="constraint"):
        Constraint.parse("area_mm2 == 20")


# ------------------------------------------------------------------------------ space


def test_knob_parsing():
    assert Knob.parse("adc.bits=3:5") == Knob("adc.bits", (3, 4, 5))
    assert Knob.parse("crossbar.rows=64,128") == Knob("crossbar.rows", (64, 128))
    assert Knob.parse("energy_pj.adc=1e-6,0.5").values == (1e-6, 0.5)
    assert Knob.parse("energy_model=event,spikesim").values == ("event", "spikesim")
    assert Knob.parse("noc.mesh_rows=null,4").values == (None, 4)
    for bad in ("adc.bits", "adc.bits=", "adc.bits=5:3", "adc.bits=a:b", "adc.bits=3,3"):
        with pytest.raises(InputError, match="vary"):
            Knob.parse(bad)


def test_knobs_are_checked_through_the_schema():
    base = load_arch(ARCH).to_mapping()
    with pytest.raises(InputError, match="adc.bitz: not a key.*adc.bits"):
        check_knobs(base, [Knob("adc.bitz", (3,))], ARCH)
    with pytest.raises(InputError, match=r"crossbar.rows=48.*power of two"):
        check_knobs(base, [Knob("crossbar.rows", (64, 48))], ARCH)
    with pytest.raises(InputError, match=r"adc.bits=0"):
        check_knobs(base, [Knob("adc.bits", (0, 4))], ARCH)
    with pytest.raises(InputError, match="varied twice"):
        check_knobs(base, [Knob("adc.bits", (3,)), Knob("adc.bits", (4,))], ARCH)
    # wrong only together with another key: left to the points (recorded as invalid)
    check_knobs(base, [Knob("adc.columns_per_adc", (8, 128))], ARCH)


def test_grid_order_sample_and_variants():
    base = load_arch(ARCH).to_mapping()
    space = Space(base, ARCH, (Knob("adc.bits", (3, 4, 5)), Knob("crossbar.rows", (64, 128))),
                  (2, 4))  # fmt: skip
    grid = list(space.grid())
    assert len(grid) == space.size == 12
    assert grid == [space.point(i) for i in range(12)]
    assert grid[0] == Point((3, 64), 2) and grid[-1] == Point((5, 128), 4)
    sample = space.sample(5, seed=1)
    assert len(set(sample)) == 5 and sample == space.sample(5, seed=1)
    assert sample == sorted(sample, key=grid.index)
    arch = space.build(grid[3])
    assert arch.adc.bits == 3 and arch.crossbar.rows == 128
    assert Search.parse("random:7", 3) == Search(SearchKind.RANDOM, 7, 3)
    for bad in ("grid:3", "random", "random:0", "nsga", "nsga2:x"):
        with pytest.raises(InputError, match="search"):
            Search.parse(bad)


# ---------------------------------------------------------------------- evaluations


def _variant_file(tmp_path, space, point):
    path = tmp_path / f"variant_{abs(hash(point))}.yaml"
    path.write_text(yaml.safe_dump(space.variant(point)))
    return path


def test_two_knob_grid_equals_single_runs(template, tmp_path):
    knobs = (Knob("clock_mhz", (100.0, 400.0)), Knob("energy_pj.adc", (0.5, 3.0)))
    cfg = ExploreConfig(template, knobs, ic_positions=(4,))
    result = explore(cfg)
    assert not result.functional  # neither knob changes a spike: the ideal engine's traces
    assert len(result.rows) == 4 and result.computed == 4
    space = Space(load_arch(ARCH).to_mapping(), ARCH, knobs, (4,))
    for row, point in zip(result.rows, space.grid(), strict=True):
        assert (row["clock_mhz"], row["energy_pj.adc"], row["ic"]) == (*point.values, 4)
        arch = _variant_file(tmp_path, space, point)
        single = run(RunConfig(arch=arch, model=template.model, ic=4, sim=SIM, images=32,
                               tune_images=32, trace_root=template.trace_root,
                               timing=TimingModel.ANALYTIC))  # fmt: skip
        ev = single.evaluation
        for m in METHODS:
            t = ev.summary[m].target.timestep or SIM.timesteps
            assert row[f"timestep_{m.key}"] == t
            assert row[f"energy_{m.key}_pj"] == pytest.approx(ev.curves[m].energy_pj[t - 1])
            assert row[f"latency_{m.key}_ns"] == pytest.approx(ev.latency_ns[m][t - 1])
            assert row[f"accuracy_{m.key}"] == pytest.approx(ev.curves[m].accuracy[t - 1])
            if ev.summary[m].target.timestep is not None:
                assert row[f"energy_{m.key}_pj"] == pytest.approx(ev.summary[m].target.energy_pj)
        assert row["energy_pj"] == row["energy_bsf_grid_pj"]
        area = api.map(arch, template.model, ics=(4,)).area.total_mm2
        assert row["area_mm2"] == pytest.approx(area)
    # energy scales with the ADC's cost, latency with the clock period
    frame = pd.DataFrame(result.rows)
    slow, fast = frame[frame.clock_mhz == 100.0], frame[frame.clock_mhz == 400.0]
    assert (slow.latency_ns.to_numpy() > fast.latency_ns.to_numpy()).all()


def test_functional_knob_uses_the_chip_and_equals_a_functional_run(template, tmp_path):
    knobs = (Knob("adc.bits", (3, 6)),)
    result = explore(ExploreConfig(template, knobs, ic_positions=(4,)))
    assert result.functional
    space = Space(load_arch(ARCH).to_mapping(), ARCH, knobs, (4,))
    point = Point((3,), 4)
    arch = _variant_file(tmp_path, space, point)
    single = run(RunConfig(arch=arch, model=template.model, ic=4, sim=SIM, images=32,
                           tune_images=32, trace_root=template.trace_root,
                           hardware=Hardware.FUNCTIONAL, timing=TimingModel.ANALYTIC))  # fmt: skip
    t = result.rows[0]["timestep_dl"]
    assert result.rows[0]["accuracy_dl"] == pytest.approx(
        single.evaluation.curves[Method.DL].accuracy[t - 1]
    )
    with pytest.raises(InputError, match="timing"):
        explore(ExploreConfig(template, knobs, ic_positions=(4,), timing=TimingModel.CYCLE))


def test_invalid_points_are_recorded_not_fatal(template):
    knobs = (Knob("noc.mesh_rows", (1, 8)), Knob("noc.mesh_cols", (1, 8)),
             Knob("adc.columns_per_adc", (8, 128)))  # fmt: skip
    cfg = ExploreConfig(template, knobs, ic_positions=(4,), accuracy=AccuracyMode.IDEAL,
                        constraints=(Constraint.parse("area_mm2<=0.001"),))  # fmt: skip
    result = explore(cfg)
    rows = {(r["noc.mesh_rows"], r["noc.mesh_cols"], r["adc.columns_per_adc"]): r
            for r in result.rows}  # fmt: skip
    assert rows[(1, 1, 8)]["status"] == Status.INVALID
    assert "does not fit" in rows[(1, 1, 8)]["reason"] and "mesh" in rows[(1, 1, 8)]["reason"]
    assert rows[(8, 8, 128)]["status"] == Status.INVALID
    assert "divisor of crossbar.cols" in rows[(8, 8, 128)]["reason"]
    assert rows[(8, 8, 8)]["status"] == Status.CONSTRAINT
    assert "area_mm2<=0.001" in rows[(8, 8, 8)]["reason"]
    assert not result.front.any()  # no valid point: an empty front, not an error


def test_interrupted_exploration_resumes_without_recomputing(template, monkeypatch, tmp_path):
    t = dataclasses.replace(template, trace_root=tmp_path / "store")
    calls = []
    real = explore_run.evaluate_point

    def counted(job):
        if len(calls) == 2 and stop[0]:
            raise KeyboardInterrupt
        calls.append(job.key)
        return real(job)

    stop = [True]
    monkeypatch.setattr(explore_run, "evaluate_point", counted)
    knobs = (Knob("clock_mhz", (100.0, 200.0, 400.0)),)
    cfg = ExploreConfig(t, knobs, ic_positions=(2, 4), accuracy=AccuracyMode.IDEAL)
    with pytest.raises(KeyboardInterrupt):
        explore(cfg)
    assert len(calls) == 2
    stop[0] = False
    first = explore(cfg)
    assert (first.computed, first.reused, len(calls)) == (4, 2, 6)
    assert len(set(calls)) == 6  # no point computed twice
    again = explore(cfg)
    assert (again.computed, again.reused) == (0, 6) and again.rows == first.rows
    wider = ExploreConfig(t, (Knob("clock_mhz", (100.0, 200.0, 400.0, 800.0)),),
                          ic_positions=(2, 4), accuracy=AccuracyMode.IDEAL)  # fmt: skip
    extended = explore(wider)
    assert (extended.computed, extended.reused) == (2, 6)
    assert extended.rows[:6] == first.rows


# ------------------------------------------------------------------------------ NSGA-II


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="optuna not installed")
def test_nsga2_reaches_a_known_front():
    # ZDT1 (Zitzler, Deb & Thiele 2000) on a grid: f1 = x1, g = 1 + 9 mean(x2, x3),
    # f2 = g (1 - sqrt(f1 / g)); the front is x2 = x3 = 0: f2 = 1 - sqrt(f1)
    xs = np.linspace(0, 1, 11)

    def batch(choices):
        out = []
        for c in choices:
            f1 = xs[c[0]]
            g = 1 + 9 * (xs[c[1]] + xs[c[2]]) / 2
            out.append((f1, g * (1 - math.sqrt(f1 / g))))
        return out

    chosen = nsga2([11, 11, 11], 2, 400, batch, seed=0, population=20)
    assert len(chosen) == 400
    found = np.array(batch(chosen))
    front = found[pareto_mask(found, (Objective.ENERGY, Objective.LATENCY))]
    # tolerance: every point found on the front lies within 0.05 of the true front in f2,
    # and it covers at least 9 of the 11 f1 values of the true front
    assert np.all(np.abs(front[:, 1] - (1 - np.sqrt(front[:, 0]))) <= 0.05)
    assert len({round(f, 6) for f in front[:, 0]}) >= 9


def test_nsga2_without_optuna_is_refused(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "optuna" else real(n, *a)
    )
    with pytest.raises(InputError, match=r"pip install 'hwsim\[explore\]'"):
        Search.parse("nsga2:10").check()


# ---------------------------------------------------------------------- command, report


def _argv(template, out):
    return ["explore", "--arch", ARCH, "--model", str(template.model), "--vary",
            "clock_mhz=100,400", "--vary", "energy_pj.adc=0.5,3", "--ic-positions", "2,4",
            "--timesteps", "30", "--images", "32", "--tune-images", "32", "--traces",
            str(template.trace_root), "--out", str(out)]  # fmt: skip


def test_command_writes_the_files_and_an_80_column_summary(template, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _argv(template, out)
    assert main(argv) == 0
    names = {p.name for p in out.iterdir()}
    assert {"points.csv", "pareto.csv", "front_energy_latency.png", "config.yaml",
            "front_energy_accuracy.svg", "front_area_energy.png",
            "parallel_coordinates.png"} <= names  # fmt: skip
    points = pd.read_csv(out / "points.csv")
    pareto = pd.read_csv(out / "pareto.csv")
    assert len(points) == 8 and len(pareto) == int(points.pareto.sum()) >= 1
    lines = [x for x in capsys.readouterr().out.splitlines() if not x.startswith("[")]
    assert all(len(line) <= 80 for line in lines), lines
    # every point is now in the store: nothing computed, so no per-point time is shown
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "0 computed, 8 from the store" in text and "s each" not in text
    # the configuration written repeats the exploration
    again = tmp_path / "again"
    assert main(["explore", "--config", str(out / "config.yaml"), "--out", str(again)]) == 0
    assert (again / "points.csv").read_bytes() == (out / "points.csv").read_bytes()
    assert main([*argv[:-1], str(tmp_path / "bad"), "--vary", "adc.bitz=3"]) == 2
    assert "--vary" in capsys.readouterr().err


def test_command_no_cache_keeps_no_store(template, tmp_path, capsys):
    traces = tmp_path / "traces"
    argv = _argv(dataclasses.replace(template, trace_root=traces), tmp_path / "out")
    assert main([*argv, "--no-cache"]) == 0
    assert not traces.exists()
    assert "8 computed" in capsys.readouterr().out


def test_summary_fits_80_columns_with_many_knobs():
    knobs = ["crossbar.rows", "adc.bits", "adc.columns_per_adc", "noc.flit_width_bits",
             "buffers.input_buffer_timesteps", "ic"]  # fmt: skip
    objectives = ["accuracy", "energy_pj", "latency_ns", "area_mm2"]
    rng = np.random.default_rng(0)
    rows = [{**{k: int(rng.integers(1, 999)) for k in knobs}, "status": "ok",
             **{o: float(rng.random() * 1e6) for o in objectives}} for _ in range(30)]  # fmt: skip
    front = np.ones(30, bool)
    buffer = io.StringIO()
    print_exploration(Console(file=buffer, width=120), rows, front, knobs, objectives)
    assert all(len(line) <= 80 for line in buffer.getvalue().splitlines())


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="no Dask")
def test_dask_equals_local_byte_for_byte(template, tmp_path):
    from hwsim.pipeline.grid import Executor
    from hwsim.report.explore import write_exploration

    knobs = (Knob("clock_mhz", (100.0, 400.0)), Knob("energy_pj.adc", (0.5, 3.0)))
    files = []
    for name, executor in (("local", Executor.LOCAL), ("dask", Executor.DASK)):
        t = dataclasses.replace(template, trace_root=tmp_path / f"store_{name}")
        cfg = ExploreConfig(t, knobs, ic_positions=(2, 4))
        result = explore(cfg, executor=executor, workers=2 if name == "dask" else None)
        assert result.computed == 8
        objectives = [o.column for o in result.objectives]
        write_exploration(result.rows, result.front, result.knobs, objectives, tmp_path / name)
        files.append((tmp_path / name / "points.csv").read_bytes())
    assert files[0] == files[1]


def test_a_knob_that_changes_nothing_is_named(template):
    # the input buffer acts only in the cycle-level simulation: with analytic latency it is inert
    warnings = []
    knobs = (Knob("buffers.input_buffer_timesteps", (1, 4)), Knob("clock_mhz", (100.0, 400.0)))
    result = explore(ExploreConfig(template, knobs, ic_positions=(4,)), warn=warnings.append)
    assert len(result.notes) == 1 and result.notes[0].startswith("buffers.input_buffer_timesteps")
    assert warnings == result.notes


# ------------------------------------------------------- options that would not act, caps


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--population", "7"], "--population"),  # grid
        (["--population", "7", "--search", "random:5"], "--population"),
        (["--search-seed", "3"], "--search-seed"),  # grid draws nothing
        (["--vary", "clock_mhz=1:100000000"], "--vary"),  # a knob of 1e8 values
        (["--vary", "name=a,b"], "--vary"),  # a label, left out of the store key
        (["--vary", "notes=x,y"], "--vary"),
    ],
)
def test_command_refuses_what_would_not_act(template, tmp_path, capsys, extra, named):
    argv = ["explore", "--arch", ARCH, "--model", str(template.model), "--vary",
            "clock_mhz=100,400", "--traces", str(tmp_path / "t"), "--out",
            str(tmp_path / "out"), *extra]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err and "internal error" not in err
    assert not (tmp_path / "out").exists()


def test_random_search_larger_than_the_grid_says_what_ran(template, tmp_path, capsys):
    argv = _argv(template, tmp_path / "out")
    assert main([*argv, "--search", "random:50", "--search-seed", "3"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "random:50 asks for 50 points and the grid has 8: all 8 ran" in text
    assert "random:50 = the whole grid of 8" in text
    assert len(pd.read_csv(tmp_path / "out" / "points.csv")) == 8


def test_a_grid_too_large_is_refused_and_sampled_without_listing_it(template, monkeypatch):
    knobs = (Knob.parse("clock_mhz=1:1000"), Knob.parse("energy_pj.adc=1:11"))
    assert Space({}, "", knobs, (2,)).size == 11_000
    with pytest.raises(InputError, match=r"11000 points.*random:N or nsga2:N") as e:
        explore(ExploreConfig(template, knobs, ic_positions=(2,)))
    assert e.value.params == ("vary", "search")

    def listed(self):
        raise AssertionError("the whole grid was listed")

    monkeypatch.setattr(Space, "grid", listed)
    cfg = ExploreConfig(template, knobs, ic_positions=(2,), search=Search.parse("random:2", 1))
    result = explore(cfg)
    assert len(result.rows) == 2 and result.computed + result.reused == 2


def test_tuning_target_is_the_fraction_of_the_ann_accuracy_on_the_tuning_images():
    from hwsim.model.graph import FC_HEAD
    from hwsim.pipeline.evaluate import tune_target

    class Session:  # the ANN gets 3 of 4 tuning images right
        def reference_correct(self, trace, ties):
            return {FC_HEAD: np.array([1.0, 0.0, 1.0, 1.0])}

    cfg = SweepConfig(arch=ARCH, model="m.pt", target_fraction=0.9)
    assert tune_target(cfg, Session(), object()) == pytest.approx(0.9 * 0.75)
    assert tune_target(cfg, Session(), None) is None


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="no Dask")
def test_a_local_cluster_that_does_not_start_is_named(template, tmp_path, capsys, monkeypatch):
    import distributed

    def broken(*args, **kwargs):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(distributed, "LocalCluster", broken)
    argv = _argv(template, tmp_path / "out")
    assert main([*argv, "--executor", "dask", "--workers", "1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--executor dask: a local cluster of 1 worker processes (--workers) did not start" in err
    assert "Nanny failed to start" in err and "internal error" not in err
