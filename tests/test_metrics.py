"""Accuracy-vs-energy metrics on hand-computed cases."""

import numpy as np
import pytest

from hwsim import metrics as M


def curve(acc, e_step=1.0, name="c"):
    return M.Curve.per_step(name, np.asarray(acc, np.float64), e_step)


def test_energy_is_cumulative_per_timestep():
    assert curve([0.1, 0.2, 0.3], 2.5).energy_pj.tolist() == [2.5, 5.0, 7.5]


def test_first_reaching_hand_cases():
    acc = np.array([0.2, 0.9, 0.85, 0.95, 0.97])
    assert M.first_reaching(acc, 0.9) == 2
    assert M.first_reaching(acc, 0.9, sustained=True) == 4
    assert M.first_reaching(acc, 0.2) == 1 == M.first_reaching(acc, 0.2, sustained=True)
    assert M.first_reaching(acc, 0.99) is None
    assert M.first_reaching(np.array([0.9, 0.95, 0.5]), 0.9, sustained=True) is None
    assert M.first_reaching(np.array([]), 0.5) is None


def test_to_target_and_reduction_eq33():
    dl = M.to_target(curve([0.5, 0.8, 0.95, 0.99], 10.0, "DL"), 0.95)
    bsf = M.to_target(curve([0.7, 0.96, 0.97, 0.99], 11.0, "BSF"), 0.95)
    assert (dl.timestep, dl.energy_pj, dl.accuracy) == (3, 30.0, 0.95)
    assert (bsf.timestep, bsf.energy_pj) == (2, 22.0)
    assert M.reduction(dl.energy_pj, bsf.energy_pj) == pytest.approx(100 * 8 / 30)
    assert M.reduction(dl.energy_pj, None) is None
    never = M.to_target(curve([0.1]), 0.5)
    assert never.timestep is None and never.energy_pj is None
    assert M.target_accuracy(0.93) == pytest.approx(0.9207)


def test_auc_trapezoid_from_origin_and_held_past_the_end():
    c = curve([1.0, 1.0, 1.0, 1.0], 1.0)  # points (0,0) (1,1) (2,1) (3,1) (4,1)
    assert M.auc_area(c, 4.0) == pytest.approx(3.5)
    assert M.auc(c, 4.0) == pytest.approx(3.5 / 4)
    assert M.auc_area(c, 2.5) == pytest.approx(2.0)  # cut inside a segment
    assert M.auc_area(c, 0.5) == pytest.approx(0.125)  # inside the first segment
    assert M.auc_area(c, 6.0) == pytest.approx(5.5)  # last accuracy held to the limit
    ramp = curve([0.2, 0.4, 0.6], 2.0)  # (0,0) (2,.2) (4,.4) (6,.6): area of a triangle
    assert M.auc_area(ramp, 6.0) == pytest.approx(0.5 * 6 * 0.6)
    with pytest.raises(ValueError):
        M.auc(c, 0.0)


def test_accuracy_at_energy_and_envelope():
    sl = curve([0.6, 0.7, 0.72, 0.73], 1.0, "SL")
    dl = curve([0.1, 0.9], 2.0, "DL")
    e = np.array([0.5, 1.0, 2.0, 3.0, 4.0, 10.0])
    assert M.accuracy_at_energy(sl, e).tolist() == pytest.approx([0.3, 0.6, 0.7, 0.72, 0.73, 0.73])
    assert M.accuracy_at_energy(dl, e).tolist() == pytest.approx([0.025, 0.05, 0.1, 0.5, 0.9, 0.9])
    assert M.envelope([sl, dl], e).tolist() == pytest.approx([0.3, 0.6, 0.7, 0.72, 0.9, 0.9])


def test_summarize():
    curves = {"DL": curve([0.5, 0.9, 0.95], 10.0, "DL"), "BSF": curve([0.9, 0.95, 0.95], 11.0)}
    s = M.summarize(curves, 0.95, energy_limit_pj=30.0)
    assert s["DL"].reduction_pct == 0.0
    assert s["BSF"].target.energy_pj == 22.0
    assert s["BSF"].reduction_pct == pytest.approx(100 * 8 / 30)
    assert s["BSF"].auc > s["DL"].auc


def test_accuracy_energy_figure(tmp_path):
    from hwsim import figures

    curves = [curve(np.linspace(0.1, 0.9, 20), 3.0e5, n) for n in ("DL", "SL")]
    paths = figures.plot_accuracy_energy(curves, 0.85, tmp_path / "acc.png")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert not list(tmp_path.glob(".*.tmp"))


def test_reduction_by_ic_figure(tmp_path):
    from hwsim import figures

    r = {"bsf_grid": np.array([1.0, np.nan, 12.5]), "early_exit": np.array([0.5, 2.0, 3.0])}
    paths = figures.plot_reduction_by_ic(np.array([3, 5, 8]), r, tmp_path / "sweep", "t")
    assert [p.name for p in paths] == ["sweep.png", "sweep.svg"]
