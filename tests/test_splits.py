"""Held-out tuning end to end: tuning reads only the validation split, the checkpoint's split is
checked, cross-fitting is labelled, and reports carry bootstrap intervals."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import hwsim.api as api
import hwsim.pipeline.cache as cache
from hwsim.api import RunConfig, Session, SimConfig, SweepConfig
from hwsim.fusion import Estimator, TuneSource, TuningConfig
from hwsim.methods import Method
from hwsim.metrics import BootstrapConfig
from hwsim.model.convert import ConversionParams
from hwsim.model.data import load_dataset
from hwsim.model.nets import save_checkpoint
from hwsim.model.netspec import ModelError
from hwsim.report.figures import sweep_figures
from hwsim.report.files import write_run
from hwsim.results import SweepRow

ARCH = "arch_configs/spikesim.yaml"
SIM = SimConfig(timesteps=30)
BOOT = BootstrapConfig(resamples=200)


@pytest.fixture
def splits_read(monkeypatch):
    """The dataset split of every image set the API simulates, in call order."""
    seen = []
    original = cache.trace

    def recording(session, data, sim, **kw):
        seen.append((data.split, np.asarray(data.indices).copy()))
        return original(session, data, sim, **kw)

    monkeypatch.setattr(cache, "trace", recording)
    return seen


def test_tuning_reads_only_the_validation_split(tiny_checkpoint, tmp_path, splits_read):
    ckpt, path = tiny_checkpoint
    n_val = ckpt.validation_images
    rows = {
        s: set(load_dataset("synthetic", s, validation=n_val).indices.tolist())
        for s in ("train", "validation")
    }
    session = Session.open(path, None, ConversionParams())
    result = api.tune(session, SIM, (4,), tune_images=50, trace_root=tmp_path)
    assert [s for s, _ in splits_read] == ["validation"]
    used = set(splits_read[0][1].tolist())
    assert len(used) == 50 and used <= rows["validation"] and not used & rows["train"]
    assert result.trace.key.split == "validation"
    splits_read.clear()
    cfg = RunConfig(arch=ARCH, model=path, ic=4, sim=SIM, images=40, trace_root=tmp_path,
                    bootstrap=BOOT)  # fmt: skip
    run = api.run(cfg)
    assert [s for s, _ in splits_read] == ["validation", "test"]
    assert len(splits_read[0][1]) == n_val  # all of the validation split by default
    assert "validation images" in run.evaluation.tuned_on


def test_a_checkpoint_without_validation_split_is_refused_with_the_way_out(
    tiny_checkpoint, tmp_path
):
    ckpt, _ = tiny_checkpoint
    old = dataclasses.replace(ckpt, dataset={"name": "synthetic", "split_seed": 0})
    path = tmp_path / "old.pt"
    save_checkpoint(old, path)
    cfg = RunConfig(arch=ARCH, model=path, ic=4, sim=SIM, images=16, trace_root=None,
                    bootstrap=BOOT)  # fmt: skip
    with pytest.raises(ModelError, match="validation N") as e:
        api.run(cfg)
    assert "tune_on train" in str(e.value) and "cross-fit" in str(e.value)
    biased = api.run(dataclasses.replace(cfg, tune_on=TuneSource.TRAIN, tune_images=32))
    assert "biased" in biased.evaluation.tuned_on


def test_a_changed_split_is_refused(tiny_checkpoint, tmp_path):
    ckpt, _ = tiny_checkpoint
    other = dataclasses.replace(ckpt, dataset={**ckpt.dataset, "split_seed": 1})
    path = tmp_path / "moved.pt"
    save_checkpoint(other, path)
    session = Session.open(path, None, ConversionParams())
    with pytest.raises(ModelError, match="not the one recorded"):
        session.split("validation")


def test_cross_fitting_is_labelled_and_uses_only_test_images(
    tiny_checkpoint, tmp_path, splits_read
):
    _, path = tiny_checkpoint
    cfg = RunConfig(arch=ARCH, model=path, ic=4, sim=SIM, images=40, trace_root=tmp_path,
                    tune_on=TuneSource.CROSS_FIT, folds=4, bootstrap=BOOT)  # fmt: skip
    result = api.run(cfg)
    assert [s for s, _ in splits_read] == ["test"]
    ev = result.evaluation
    assert "4-fold cross-fitting on the 40 test images" in ev.tuned_on
    assert ev.fusion.folds == 4 and len(ev.fusion.fold_tunings) == 4
    frame = write_run(result, tmp_path / "out") and pd.read_csv(tmp_path / "out" / "targets.csv")
    assert set(frame["tuned_on"]) == {ev.tuned_on}
    with pytest.raises(ValueError, match="tune_images"):
        api.run(dataclasses.replace(cfg, tune_images=10))


def test_run_reports_intervals_exact_alpha_and_budgets(tiny_checkpoint, tmp_path):
    _, path = tiny_checkpoint
    cfg = RunConfig(arch=ARCH, model=path, ic=4, sim=SIM, images=48, trace_root=tmp_path,
                    bootstrap=BOOT, tuning=TuningConfig(estimator=Estimator.MAP))  # fmt: skip
    result = api.run(cfg)
    ev = result.evaluation
    assert ev.fusion.tuning.schedules[Method.BSF_GRID].estimator is Estimator.MAP
    write_run(result, tmp_path / "out")
    targets = pd.read_csv(tmp_path / "out" / "targets.csv")
    assert list(targets["method"]) == [*map(str, Method), "BSF-Grid (exact alpha)",
                                       "BSF-Emp (exact alpha)"]  # fmt: skip
    for col in ("auc", "timestep", "energy_pj"):
        ok = targets[col].notna()
        assert (targets.loc[ok, f"{col}_lo"] <= targets.loc[ok, col]).all()
        assert (targets.loc[ok, col] <= targets.loc[ok, f"{col}_hi"]).all()
    auc = targets.set_index("method")["auc"]
    assert auc["DL"] == pytest.approx(ev.summary[Method.DL].auc)
    acc = pd.read_csv(tmp_path / "out" / "accuracy_energy.csv")
    exact = ev.fusion.accuracy_exact[Method.BSF_GRID]
    np.testing.assert_allclose(acc["accuracy_bsf_grid_exact"], exact)
    budgets = pd.read_csv(tmp_path / "out" / "budgets.csv")
    assert len(budgets) == 7 * len(BOOT.budget_fractions)
    dl = ev.curves[Method.DL]
    for _, row in budgets[budgets["method"] == "DL"].iterrows():
        x = np.concatenate([[0], dl.energy_pj])
        want = np.interp(row["budget_pj"], x, np.concatenate([[0], dl.accuracy]))
        assert row["accuracy"] == pytest.approx(want)
    assert (tmp_path / "out" / "accuracy_energy.png").is_file()


def test_sweep_rows_carry_intervals_that_read_back(tiny_checkpoint, tmp_path):
    _, path = tiny_checkpoint
    cfg = SweepConfig(arch=ARCH, model=path, ic_positions=(2, 4), sim=SIM, images=40,
                      trace_root=tmp_path, bootstrap=BOOT)  # fmt: skip
    rows = api.sweep(cfg)
    row = rows[1]
    grid = row.methods[Method.BSF_GRID]
    assert grid.auc_ci is not None and grid.auc_ci[0] <= grid.auc <= grid.auc_ci[1]
    assert SweepRow.from_dict(row.to_dict()) == row
    frame = pd.DataFrame([r.to_dict() for r in rows])
    assert {"reduction_bsf_grid_pct_lo", "reduction_vs_sl_bsf_grid_pct_hi"} <= set(frame)
    paths = sweep_figures(frame, tmp_path / "sweep", "tiny")
    assert {p.name for p in paths} == {
        "sweep.png",
        "sweep.svg",
        "sweep_vs_sl.png",
        "sweep_vs_sl.svg",
    }


@pytest.mark.parametrize(
    ("command", "value", "needle"),
    [
        ("run", "nonsense", "--tune-on 'nonsense'"),
        ("run", "train:3", "--tune-on 'train:3'"),
        ("run", "cross-fit:1", "K >= 2"),
        ("tune", "cross-fit", "cross-fit tunes inside run and sweep"),
    ],
)
def test_bad_tune_on_exits_2_naming_the_option(command, value, needle, tiny_checkpoint, capsys,
                                               tmp_path):  # fmt: skip
    from hwsim.cli import main

    _, path = tiny_checkpoint
    argv = [command, "--model", str(path), "--timesteps", "5", "--tune-on", value]
    argv += ["--traces", str(tmp_path / "traces")]
    if command == "run":
        argv += ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert needle in err
