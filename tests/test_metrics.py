"""Accuracy-vs-energy metrics on hand-computed cases."""

import numpy as np
import pytest

from hwsim import metrics as M
from hwsim.errors import InputError


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
    s = M.summarize(curves, 0.95, energy_limit_pj=30.0, baseline="DL")
    assert s["DL"].reduction_pct == 0.0
    assert s["BSF"].target.energy_pj == 22.0
    assert s["BSF"].reduction_pct == pytest.approx(100 * 8 / 30)
    assert s["BSF"].auc > s["DL"].auc


def test_accuracy_energy_figure(tmp_path):
    from hwsim.report import figures

    curves = [curve(np.linspace(0.1, 0.9, 20), 3.0e5, n) for n in ("DL", "SL")]
    paths = figures.plot_accuracy_energy(curves, 0.85, tmp_path / "acc.png")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert not list(tmp_path.glob(".*.tmp"))


def test_reduction_by_ic_figure(tmp_path):
    from hwsim.report import figures

    r = {"bsf_grid": np.array([1.0, np.nan, 12.5]), "early_exit": np.array([0.5, 2.0, 3.0])}
    paths = figures.plot_reduction_by_ic(np.array([3, 5, 8]), r, tmp_path / "sweep", "t")
    assert [p.name for p in paths] == ["sweep.png", "sweep.svg"]


# --------------------------------------------------------------------------- bootstrap


def test_auc_and_interpolation_of_many_rows_match_the_scalar_functions():
    rng = np.random.default_rng(0)
    energy = np.cumsum(rng.uniform(1, 3, 12))
    rows = rng.random((5, 12))
    for limit in (0.5, energy[3], 7.77, energy[-1], 2 * energy[-1]):
        want = [M.auc_area(M.Curve("c", r, energy), limit) for r in rows]
        assert M._auc_areas(energy, rows, limit) == pytest.approx(want, rel=1e-12)
    x = np.concatenate([[0.0], energy])
    ys = np.concatenate([np.zeros((5, 1)), rows], axis=1)
    at = np.array([0.0, 0.3, energy[4], 10.0, 1e9])
    want = np.array([np.interp(at, x, y) for y in ys])
    assert M._interp_rows(x, ys, at) == pytest.approx(want, rel=1e-12)


def test_bootstrap_equals_a_plain_loop_over_resamples():
    """Every resample recomputed from scratch with the scalar functions (first_reaching, auc,
    reduction, accuracy_at_energy) on the resampled images, then the same order statistics."""
    rng = np.random.default_rng(1)
    n, t = 40, 25
    difficulty = rng.random(n)
    correct = {
        "DL": difficulty[:, None] < np.linspace(0.0, 0.97, t)[None],
        "SL": difficulty[:, None] < np.linspace(0.3, 0.9, t)[None],
        "F": difficulty[:, None] < np.linspace(0.2, 0.99, t)[None],
    }
    energy = {"DL": 4.0 * np.arange(1, t + 1), "SL": 2.5 * np.arange(1, t + 1)}
    energy["F"] = energy["DL"] + 0.1
    ann = rng.random(n) < 0.95
    cfg = M.BootstrapConfig(resamples=150, seed=3, budget_fractions=(0.3, 0.8))
    res = M.bootstrap(correct, energy, ann, 0.9, float(energy["DL"][-1]), ("DL", "SL"), cfg)
    counts = M.resample_counts(n, 150, seed=3)
    assert counts.shape == (150, n) and np.all(counts.sum(axis=1) == n)
    assert res.budgets_pj == pytest.approx(np.array([0.3, 0.8]) * res.curves["DL"].energy_pj.value)

    def stats(w):
        rows = np.repeat(np.arange(n), w.astype(int))  # the resampled images
        target = 0.9 * ann[rows].mean()
        out = {}
        for k, c in correct.items():
            cv = M.Curve(k, c[rows].mean(axis=0), energy[k])
            hit = M.to_target(cv, target)
            out[k] = {
                "step": np.inf if hit.timestep is None else hit.timestep,
                "energy": np.inf if hit.energy_pj is None else hit.energy_pj,
                "auc": M.auc(cv, float(energy["DL"][-1])),
                "budget": M.accuracy_at_energy(cv, res.budgets_pj),
            }
        return out

    samples = [stats(w) for w in counts]
    whole = stats(np.ones(n))

    def interval(values):
        v = np.asarray(values, float)
        v = v[~np.isnan(v)]
        return np.quantile(v, [0.05, 0.95], method="inverted_cdf").tolist()

    def red(s, b, k):
        eb, ek = s[b]["energy"], s[k]["energy"]
        if np.isinf(eb) and np.isinf(ek):
            return np.nan
        if np.isinf(eb) or np.isinf(ek):
            return np.inf if np.isinf(eb) else -np.inf
        return M.reduction(eb, ek)

    for k in correct:
        est = res.curves[k]
        assert est.timestep.value == whole[k]["step"]
        assert [est.timestep.lo, est.timestep.hi] == interval([s[k]["step"] for s in samples])
        assert [est.energy_pj.lo, est.energy_pj.hi] == interval([s[k]["energy"] for s in samples])
        assert [est.auc.lo, est.auc.hi] == pytest.approx(interval([s[k]["auc"] for s in samples]))
        for j in range(2):
            got = [est.accuracy_at_budget[j].lo, est.accuracy_at_budget[j].hi]
            assert got == pytest.approx(interval([s[k]["budget"][j] for s in samples]))
        for b in ("DL", "SL"):
            if b == k:
                assert b not in est.reduction_pct
                continue
            got = est.reduction_pct[b]
            assert [got.lo, got.hi] == pytest.approx(interval([red(s, b, k) for s in samples]))


def test_bootstrap_intervals_cover_a_known_effect_at_the_nominal_rate():
    """Images with a latent difficulty u ~ U(0, 1) are right at step t when u < p(t), so the
    population accuracy curve is p(t) exactly; method B is A shifted up (faster), both paid per
    step. Over 200 independent test sets, the 90% intervals of A's AUC and of B's accuracy at
    an energy budget contain the population value about 90% of the time (binomial sd 2.1
    points: the band is +-3 sd); R (eq. 33) of B against A, a discrete crossing, is covered at
    least as often (the percentile interval of a step count is conservative)."""
    t = np.arange(1, 41)
    p_a, p_b = np.clip(0.05 + 0.025 * t, 0, 0.98), np.clip(0.2 + 0.025 * t, 0, 0.98)
    e_a, e_b = 10.0 * t, 11.0 * t
    target = 0.99 * 0.97  # the ANN is right on 97% of the population

    def cross(p):
        return int(np.argmax(p >= target)) + 1

    true_r = 100 * (e_a[cross(p_a) - 1] - e_b[cross(p_b) - 1]) / e_a[cross(p_a) - 1]
    limit = float(e_a[-1])
    true_auc = M.auc(M.Curve("A", p_a, e_a), limit)
    cfg = M.BootstrapConfig(resamples=400, budget_fractions=(0.5,))
    hits = np.zeros(3)
    reps = 200
    for r in range(reps):
        rng = np.random.default_rng(100 + r)
        u = rng.random(400)
        correct = {"A": u[:, None] < p_a[None], "B": u[:, None] < p_b[None]}
        ann = rng.random(400) < 0.97
        res = M.bootstrap(correct, {"A": e_a, "B": e_b}, ann, 0.99, limit, ("A",), cfg)
        a = res.curves["A"].auc
        budget = res.budgets_pj[0]
        true_acc = float(np.interp(budget, np.r_[0, e_b], np.r_[0, p_b]))
        b = res.curves["B"].accuracy_at_budget[0]
        rr = res.curves["B"].reduction_pct["A"]
        hits += [a.lo <= true_auc <= a.hi, b.lo <= true_acc <= b.hi, rr.lo <= true_r <= rr.hi]
    rate = hits / reps
    assert 0.84 <= rate[0] <= 0.96 and 0.84 <= rate[1] <= 0.96, rate
    assert rate[2] >= 0.84, rate


def test_estimate_and_config_checks():
    assert M.Estimate(1.0, 0.5, 2.0).excludes_zero()
    assert not M.Estimate(1.0, -0.5, 2.0).excludes_zero()
    assert M.Estimate(-3.0, -np.inf, -1.0).excludes_zero()
    with pytest.raises(InputError, match="bootstrap resamples"):
        M.BootstrapConfig(resamples=10)
    with pytest.raises(InputError, match="level"):
        M.BootstrapConfig(level=1.5)


def test_estimate_is_the_percentile_interval_of_the_defined_samples():
    """Inverted-CDF percentiles by hand: of 1..10 at 80%, the 10% and 90% order statistics
    (ceil(0.1 x 10) = 1st and ceil(0.9 x 10) = 9th); NaN samples are left out and counted."""
    e = M.estimate(5.5, np.arange(1.0, 11.0), 0.8)
    assert (e.value, e.lo, e.hi, e.undefined) == (5.5, 1.0, 9.0, 0.0)
    e = M.estimate(2.0, np.array([np.nan, 1.0, 2.0, 3.0, np.inf]), 0.5)
    assert (e.lo, e.hi) == (1.0, 3.0)  # of 1, 2, 3, inf: the 1st and 3rd
    assert e.undefined == pytest.approx(1 / 5)
    e = M.estimate(0.0, np.array([np.nan, np.nan]), 0.9)
    assert np.isnan(e.lo) and np.isnan(e.hi) and e.undefined == 1.0


# ------------------------------------------------------------------ streamed, exact resampling


def _draw_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """The bootstrap's draws as one matrix, written out: R x n draws from one generator, then
    per resample how often each image was drawn."""
    draws = np.random.default_rng(seed).integers(0, n, (resamples, n))
    out = np.zeros((resamples, n), np.int64)
    for r in range(resamples):
        np.add.at(out[r], draws[r], 1)
    return out


@pytest.mark.parametrize("block_bytes", [8, 8 * 37, 8 * 1000, 4 << 20])
def test_resample_blocks_are_one_draw_of_every_resample(monkeypatch, block_bytes):
    """Whatever the block size, the blocks are the rows of one R x n draw in resample order."""
    monkeypatch.setattr(M, "RESAMPLE_BLOCK_BYTES", block_bytes)
    for n, r in ((1, 5), (37, 150), (1000, 120)):
        want = _draw_counts(n, r, 7)
        got = np.concatenate([c for _, c in M.resample_blocks(n, r, 7)])
        assert np.array_equal(got, want)
        assert [r0 for r0, _ in M.resample_blocks(n, r, 7)][0] == 0
        assert np.array_equal(M.resample_counts(n, r, 7), want.astype(np.float32))


@pytest.mark.parametrize("block_bytes", [8 * 13, 4 << 20])
def test_resampled_sums_are_exact_credit_sums(monkeypatch, block_bytes):
    """Fair credits k / unit as float32 (what the fusion's correct matrices hold) and integer
    steps: every resample's sum equals the exact integer sum over its draws divided by the unit
    (Python integers), bit for bit, for any block size."""
    monkeypatch.setattr(M, "RESAMPLE_BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(2)
    n, r, t, unit = 300, 110, 6, 2520  # unit = credit_unit(10)
    ties = rng.integers(1, 11, (n, t))  # a k-way tie: unit / k
    right = rng.random((n, t)) < 0.7
    units = np.where(right, unit // ties, 0)
    credits = (units / unit).astype(np.float32)
    steps = rng.integers(1, 301, n)
    got_c, got_s = M.resampled_sums([credits, steps], r, 5, unit)
    counts = _draw_counts(n, r, 5)
    for i in range(r):
        c = [int(v) for v in counts[i]]
        for j in range(t):
            exact = sum(ci * int(u) for ci, u in zip(c, units[:, j], strict=True))
            assert got_c[i, j] == exact / unit
        assert got_s[i] == sum(ci * int(s) for ci, s in zip(c, steps, strict=True))


def test_resampled_sums_hold_a_block_not_every_resample():
    """Traced peak of 1,000 resamples of 2,000 and of 16,000 images: one block's draws, their
    offsets, counts and float copy (a few blocks) and the sums, flat in N (the whole R x N draws,
    counts and float copy would be 48 / 384 MB)."""
    import tracemalloc

    peaks = []
    for n in (2000, 16000):
        x = np.ones(n, np.float32)
        tracemalloc.start()
        M.resampled_sums([x], 1000, 0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert max(peaks) < 6 * M.RESAMPLE_BLOCK_BYTES + 8 * 16000
    assert peaks[1] < 1.1 * peaks[0] + 8 * 16000
