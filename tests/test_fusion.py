"""Bayesian fusion: posterior, alpha selection (grid, empirical Bayes), PWL/LUT, early exit.

Every fast path is checked against an independent plain-loop implementation written here.
"""

import importlib
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate, optimize, stats
from scipy.special import betaln

from hwsim import fusion as F
from hwsim.fusion import Estimator
from hwsim.methods import Method, TieRule, Ties, tie_draws

RULES = [Ties(TieRule.FAIR), Ties(TieRule.WRONG), Ties(TieRule.FIRST), Ties(TieRule.RANDOM, 7)]

# --------------------------------------------------------------------------- fake spikes


def fake_counts(n_img=40, n_t=60, n_c=4, seed=0):
    """Cumulative FC/IC counts of a small fake SNN: the FC starts late and is accurate, the IC
    starts early and is noisy; some classes never fire (K = 0) and some fire every step."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_c, n_img)
    fc_rate = rng.uniform(0, 0.15, (n_img, n_c)) * (rng.random((n_img, n_c)) < 0.5)
    fc_rate[np.arange(n_img), y] = rng.uniform(0.2, 0.6, n_img)
    ic_rate = rng.uniform(0, 0.3, (n_img, n_c)) * (rng.random((n_img, n_c)) < 0.7)
    ic_rate[np.arange(n_img), y] += rng.uniform(0.0, 0.4, n_img)
    ic_rate[0, :] = 0.0  # an image the IC is silent for
    ic_rate[1, y[1]] = 1.0  # an IC class firing every step (E = 1)
    fc = rng.random((n_img, n_t, n_c)) < fc_rate[:, None, :]
    fc[:, :8] = False
    ic = rng.random((n_img, n_t, n_c)) < ic_rate[:, None, :]
    ic[:, :2] = False
    return F.cumulative(fc.astype(np.uint8)), F.cumulative(ic.astype(np.uint8)), y


def ref_estimate(m, k, n, alpha, estimator):
    """Textbook formulas, one scalar at a time, in exact rational arithmetic with alpha at its
    exact float64 value (so that ties are the mathematical ones, which the kernels find)."""
    m, k, n, alpha = int(m), int(k), int(n), Fraction(alpha)
    if k == 0:
        return Fraction(m, n)
    e = Fraction(k, n)
    if estimator is Estimator.MEAN:
        return (alpha + m) / (alpha / e + n)
    den = n + (alpha - 1) / e
    if den == 0:
        return Fraction(m, n)
    return min(max((m + alpha - 1) / den, Fraction(0)), Fraction(1))


def ref_decision(scores):
    best = max(scores)
    winners = [c for c, s in enumerate(scores) if s == best]
    return winners[0] if len(winners) == 1 else -1


def ref_credit(scores, label, ties=RULES[0], draw=0):
    """The credit of the argmax of exact scores under a tie rule, written out: 1/k for a k-way
    tie holding the label (fair), 0 (wrong), the first tied class (first), the (draw mod k)-th
    tied class (random)."""
    best = max(scores)
    top = [c for c, s in enumerate(scores) if s == best]
    if len(top) == 1:
        return Fraction(int(top[0] == label))
    if ties.rule is TieRule.FAIR:
        return Fraction(int(label in top), len(top))
    if ties.rule is TieRule.WRONG:
        return Fraction(0)
    if ties.rule is TieRule.FIRST:
        return Fraction(int(top[0] == label))
    return Fraction(int(top[int(draw) % len(top)] == label))


def ref_fused_credits(fc, ic, y, alpha, estimator=Estimator.MEAN, ties=RULES[0]):
    """(N, T) exact credits of the fused decisions with alpha[t], plain loops."""
    n_img, n_t, n_c = fc.shape
    draws = tie_draws(ties.seed, np.arange(n_img), n_t)
    out = np.empty((n_img, n_t), object)
    for i in range(n_img):
        for t in range(n_t):
            s = [ref_estimate(fc[i, t, c], ic[i, t, c], t + 1, alpha[t], estimator)
                 for c in range(n_c)]  # fmt: skip
            out[i, t] = ref_credit(s, y[i], ties, draws[i, t])
    return out


# --------------------------------------------------------------------------- posterior


@pytest.mark.parametrize("estimator", list(Estimator))
def test_posterior_matches_textbook_formula(estimator):
    fc, ic, _ = fake_counts(n_img=6, n_t=30, n_c=4)
    for alpha in (0.0, 0.5, 1.0, 3.0, 250.0):
        got = F.AlphaSchedule(np.full(30, alpha), F.AlphaMethod.FIXED, estimator).fuse(fc, ic)
        for i in range(6):
            for t in range(30):
                for c in range(4):
                    want = ref_estimate(fc[i, t, c], ic[i, t, c], t + 1, alpha, estimator)
                    assert got[i, t, c] == pytest.approx(float(want), rel=1e-12, abs=1e-15)


def test_posterior_edge_cases():
    m = np.array([3, 0, 5, 2])
    n = 10
    # E = 0: the FC's own rate, whatever alpha is (no 1e-16 veto)
    assert F.posterior_mean(m, np.zeros(4), n, 1e4) == pytest.approx(m / n)
    assert F.posterior_map(m, np.zeros(4), n, 1e4) == pytest.approx(m / n)
    # E = 1: finite, (alpha + M) / (alpha + N)
    assert F.posterior_mean(m, np.full(4, n), n, 5.0) == pytest.approx((5 + m) / (5 + n))
    # alpha = 0 (MEAN) and alpha = 1 (MAP) are the FC alone, bit for bit
    k = np.array([1, 4, 10, 7])
    assert np.array_equal(F.posterior_mean(m, k, n, 0.0), m / n)
    assert np.array_equal(F.posterior_map(m, k, n, 1.0), m / n)
    # MAP with alpha = a + 1 is MEAN with alpha = a
    assert F.posterior_map(m, k, n, 8.5) == pytest.approx(F.posterior_mean(m, k, n, 7.5))
    # MAP: undefined mode (K = 1, alpha = 0) -> M / N; boundary modes clipped into [0, 1]
    assert F.posterior_map(np.array([4]), np.array([1]), n, 0.0) == pytest.approx([0.4])
    assert F.posterior_map(np.array([0]), np.array([5]), n, 0.3) == 0.0
    assert F.posterior_map(np.array([10]), np.array([2]), n, 0.3) == 1.0
    with pytest.raises(ValueError):
        F.posterior_mean(m, k, n, -1.0)


def test_decide_ties_are_undecided_and_each_rule_credits_them():
    scores = np.array([[0.2, 0.5, 0.5], [0.9, 0.1, 0.0], [0.0, 0.0, 0.0]])
    assert F.decide(scores).tolist() == [-1, 0, -1]
    y = np.array([1, 0, 0])
    acc = {t.rule: F.accuracy_over_time(scores[:, None, :], y, t)[0] for t in RULES[:3]}
    assert acc[TieRule.FAIR] == pytest.approx((1 / 2 + 1 + 1 / 3) / 3)  # the default
    assert F.accuracy_over_time(scores[:, None, :], y)[0] == acc[TieRule.FAIR]
    assert acc[TieRule.WRONG] == pytest.approx(1 / 3)
    assert acc[TieRule.FIRST] == pytest.approx(1.0)  # the first tied class is each label


# --------------------------------------------------------------------------- grid search


@pytest.mark.parametrize("ties", RULES)
@pytest.mark.parametrize("estimator", list(Estimator))
def test_kernel_credits_equal_exact_plain_loops_including_ties(estimator, ties):
    fc, ic, y = fake_counts(n_img=30, n_t=25, n_c=5, seed=3)
    fc[:10, :, 1] = fc[:10, :, 2]  # identical counts: exact ties the kernel must see too
    ic[:10, :, 1] = ic[:10, :, 2]
    y[:10] = 1
    rng = np.random.default_rng(1)
    alpha = rng.choice([0.0, 0.5, 1.0, 2.0, 40.0, 0.1], 25)
    sched = F.AlphaSchedule(alpha, F.AlphaMethod.FIXED, estimator)
    want = ref_fused_credits(fc, ic, y, alpha, estimator, ties)
    got = sched.correct(fc, ic, y, ties)
    assert got.dtype == F.CREDIT_DTYPE
    assert np.array_equal(got, want.astype(float).astype(F.CREDIT_DTYPE))
    exact_sum = want.sum(axis=0)  # Fractions
    assert sched.accuracy(fc, ic, y, ties) == pytest.approx([v / 30 for v in exact_sum], 1e-15)
    assert np.any((want > 0) & (want < 1)) == (ties.rule is TieRule.FAIR)


@pytest.mark.parametrize("ties", RULES[:2])
@pytest.mark.parametrize("estimator", list(Estimator))
def test_grid_search_matches_plain_loops(estimator, ties):
    fc, ic, y = fake_counts(n_img=25, n_t=30, n_c=4, seed=5)
    grid = (300.0, 0.0, 0.3, 1.0, 3.0, 10.0, 30.0, 1000.0)  # unsorted on purpose
    got = F.grid_search_alpha(fc, ic, y, grid, estimator, ties)
    want = []
    for t in range(30):
        best_a, best_ok = None, -1
        for a in sorted(grid):
            ok = Fraction(0)
            for i in range(25):
                s = [ref_estimate(fc[i, t, c], ic[i, t, c], t + 1, a, estimator) for c in range(4)]
                ok += ref_credit(s, y[i], ties)
            if ok > best_ok:  # strict: equal accuracies keep the smaller alpha
                best_a, best_ok = a, ok
        want.append(best_a)
    assert got.alpha.tolist() == want
    assert got.method == F.AlphaMethod.GRID == "grid"


def test_grid_search_ties_go_to_smaller_alpha():
    # the IC agrees with the FC everywhere: every alpha gives the same accuracy
    fc, _, y = fake_counts(n_img=20, n_t=15, n_c=3, seed=2)
    sched = F.grid_search_alpha(fc, fc.copy(), y, (5.0, 0.1, 2.0))
    assert np.all(sched.alpha == 0.1)


# --------------------------------------------------------------------------- empirical Bayes


@pytest.mark.parametrize(
    ("m", "k", "n", "alpha", "estimator"),
    [
        (3, 4, 10, 2.0, Estimator.MEAN),
        (0, 1, 12, 0.3, Estimator.MEAN),
        (12, 11, 12, 40.0, Estimator.MEAN),
        (37, 60, 150, 500.0, Estimator.MEAN),
        (3, 4, 10, 2.0, Estimator.MAP),
        (5, 10, 10, 7.0, Estimator.MAP),  # E = 1 is a proper prior for MAP
        (37, 60, 150, 50.0, Estimator.MAP),
    ],
)
def test_log_evidence_equals_integral(m, k, n, alpha, estimator):
    """eq. 30 by quadrature: int_0^1 P(spike train | p) P(p | alpha) dp."""
    a, b = F.prior_params(k, n, alpha, estimator)
    peak = (m + a - 1) / (n + a + b - 2) if m + a > 1 and n - m + b > 1 else 0.5
    val, _ = integrate.quad(
        lambda p: p**m * (1 - p) ** (n - m) * stats.beta.pdf(p, a, b),
        0,
        1,
        points=[float(np.clip(peak, 1e-6, 1 - 1e-6))],
        epsabs=0,
        epsrel=1e-11,
        limit=200,
    )
    assert F.log_evidence(m, k, n, alpha, estimator) == pytest.approx(math.log(val), rel=1e-7)


def test_log_evidence_is_stable_for_large_counts():
    m, k, n = 1500, 1400, 3000
    got = F.log_evidence(m, k, n, 1e4, Estimator.MEAN)
    a, b = 1e4, 1e4 * (n - k) / k
    assert np.isfinite(got) and got == pytest.approx(betaln(m + a, n - m + b) - betaln(a, b))
    # huge prior strength tends to the point-mass likelihood at E
    e = k / n
    point = m * math.log(e) + (n - m) * math.log(1 - e)
    assert F.log_evidence(m, k, n, 1e9, Estimator.MEAN) == pytest.approx(point, rel=1e-4)


def test_log_evidence_excludes_improper_priors():
    assert F.log_evidence(3, 0, 10, 5.0) == 0.0  # E = 0: no prior
    assert F.log_evidence(3, 10, 10, 5.0, Estimator.MEAN) == 0.0  # Beta(alpha, 0)
    assert F.log_evidence(3, 10, 10, 5.0, Estimator.MAP) != 0.0  # Beta(alpha, 1)
    with pytest.raises(ValueError):
        F.log_evidence(3, 4, 10, 0.5, Estimator.MAP)


def ref_eb_objective(fc, ic, t, alpha, estimator):
    n = t + 1
    return float(F.log_evidence(fc[:, t], ic[:, t], n, alpha, estimator).sum())


@pytest.mark.parametrize("estimator", list(Estimator))
def test_empirical_bayes_maximises_eq30(estimator):
    fc, ic, _ = fake_counts(n_img=30, n_t=50, n_c=4, seed=7)
    res = F.empirical_bayes_alpha(fc, ic, estimator)
    lo, hi = (0.01, 1e4) if estimator is Estimator.MEAN else (1.01, 10001.0)
    fine = np.exp(np.linspace(np.log(lo), np.log(hi), 400))
    for t in range(0, 50, 7):
        a_t = res.schedule.alpha[t]
        f_t = ref_eb_objective(fc, ic, t, a_t, estimator)
        # the kernel's lgamma sum equals the scipy betaln sum at the alpha it returns
        assert res.log_evidence[t] == pytest.approx(f_t, rel=1e-9, abs=1e-8)
        # and no alpha on a fine grid, nor scipy's bounded Brent, does better
        brute = max(ref_eb_objective(fc, ic, t, a, estimator) for a in fine)
        assert f_t >= brute - 1e-6
        opt = optimize.minimize_scalar(
            lambda u, t=t: -ref_eb_objective(fc, ic, t, math.exp(u), estimator),
            bounds=(math.log(lo), math.log(hi)),
            method="bounded",
            options={"xatol": 1e-6},
        )
        assert f_t >= -opt.fun - 1e-6
    assert res.schedule.method == F.AlphaMethod.EMPIRICAL_BAYES


def test_empirical_bayes_ignores_e0_and_e1_entries():
    fc, ic, _ = fake_counts(n_img=20, n_t=30, n_c=3, seed=4)
    base = F.empirical_bayes_alpha(fc, ic).schedule.alpha
    n_t = fc.shape[1]
    t = np.arange(1, n_t + 1)[None, :, None]
    extra_fc = np.concatenate([fc, np.minimum(t, 3) * np.ones((20, 1, 2), np.int32)], axis=2)
    extra_ic = np.concatenate(
        [ic, np.concatenate([np.zeros((20, n_t, 1)), np.broadcast_to(t, (20, n_t, 1))], 2)],
        axis=2,
    ).astype(np.int32)
    assert np.array_equal(F.empirical_bayes_alpha(extra_fc, extra_ic).schedule.alpha, base)


def test_empirical_bayes_no_usable_entry_gives_lower_bound():
    z = np.zeros((3, 4, 2), np.int32)
    res = F.empirical_bayes_alpha(z, z, bounds=(0.5, 50.0))
    assert np.all(res.schedule.alpha == 0.5)
    with pytest.raises(ValueError):
        F.empirical_bayes_alpha(z, z, Estimator.MAP, bounds=(0.5, 50.0))


# --------------------------------------------------------------------------- why a prior helps


def test_right_prior_lowers_mse_at_small_n():
    """Bernoulli(p): with the prior centred on E = p, the posterior mean (alpha + M) /
    (alpha / p + N) is unbiased with MSE N p (1 - p) / (alpha / p + N)^2 < p (1 - p) / N."""
    p, alpha, trials = 0.3, 20.0, 40000
    rng = np.random.default_rng(11)
    for n in (5, 10, 20):
        m = rng.binomial(n, p, trials)
        mle = F.posterior_mean(m, np.zeros(trials), n, alpha)  # E = 0: no prior = MLE
        bayes = F.posterior_mean(m, np.full(trials, p * n), n, alpha)
        mse_mle, mse_bayes = np.mean((mle - p) ** 2), np.mean((bayes - p) ** 2)
        assert mse_mle == pytest.approx(p * (1 - p) / n, rel=0.05)
        assert mse_bayes == pytest.approx(n * p * (1 - p) / (alpha / p + n) ** 2, rel=0.05)
        assert mse_bayes < 0.6 * mse_mle


# --------------------------------------------------------------------------- PWL and LUT


def test_breakpoints_default_layout():
    k = F.breakpoints(3000)
    assert k[:3].tolist() == [1, 10, 20] and 500 in k and 600 in k and k[-1] == 3000
    assert len(k) == 1 + 50 + 25 and np.all(np.diff(k) > 0)
    assert F.breakpoints(35).tolist() == [1, 10, 20, 30, 35]
    assert F.breakpoints(250, 10, 100, 50).tolist()[-4:] == [100, 150, 200, 250]


@pytest.mark.parametrize("method", list(F.FitMethod))
def test_pwl_fit_is_exact_on_piecewise_linear_input(method):
    knots = F.breakpoints(700)
    values = np.abs(np.sin(np.arange(knots.size))) * 300
    exact = np.interp(np.arange(1, 701), knots, values)
    pwl = F.fit_pwl(F.AlphaSchedule(exact, F.AlphaMethod.GRID), knots, method)
    assert pwl.alpha == pytest.approx(values, abs=1e-7)
    assert pwl.schedule(700).alpha == pytest.approx(exact, abs=1e-7)
    assert pwl.method == F.AlphaMethod.GRID


def test_least_squares_fit_beats_sampling_on_noisy_schedule():
    rng = np.random.default_rng(0)
    t = np.arange(1, 801)
    noisy = np.maximum(50 * np.exp(-t / 150) + rng.normal(0, 5, t.size), 0)
    s = F.AlphaSchedule(noisy, F.AlphaMethod.GRID)
    err = {
        m: np.mean((F.fit_pwl(s, method=m).schedule(800).alpha - noisy) ** 2) for m in F.FitMethod
    }
    assert err[F.FitMethod.LEAST_SQUARES] < err[F.FitMethod.SAMPLE]
    assert np.all(F.fit_pwl(s).alpha >= 0)


@pytest.mark.parametrize(("int_bits", "frac_bits"), [(14, 8), (8, 3), (4, 0)])
def test_lut_error_is_at_most_half_an_lsb(int_bits, frac_bits):
    fmt = F.FixedPoint(int_bits, frac_bits)
    rng = np.random.default_rng(frac_bits)
    knots = F.breakpoints(900)
    pwl = F.PiecewiseLinearAlpha(knots, rng.uniform(0, fmt.max_code * fmt.lsb, knots.size))
    lut = F.lut_from_pwl(pwl, fmt)
    t = np.arange(1, 901)
    assert np.max(np.abs(lut(t) - pwl(t))) <= fmt.lsb / 2 + 1e-12
    assert F.saturated(lut, pwl) == 0
    over = F.PiecewiseLinearAlpha(knots, pwl.alpha + fmt.max_code * fmt.lsb)
    assert F.lut_from_pwl(over, fmt).codes.max() == fmt.max_code
    assert F.saturated(F.lut_from_pwl(over, fmt), over) > 0


def test_pwl_and_lut_round_trip_through_json():
    pwl = F.PiecewiseLinearAlpha(
        np.array([1, 10, 20]), np.array([0.0, 12.5, 3.25]), F.AlphaMethod.EMPIRICAL_BAYES
    )
    back = F.PiecewiseLinearAlpha.from_dict(json.loads(json.dumps(pwl.to_dict())))
    assert back.t.tolist() == [1, 10, 20] and back.alpha.tolist() == [0.0, 12.5, 3.25]
    assert back.method == F.AlphaMethod.EMPIRICAL_BAYES
    lut = F.lut_from_pwl(pwl, F.FixedPoint(6, 2))
    lut2 = F.AlphaLUT.from_dict(json.loads(json.dumps(lut.to_dict())))
    assert lut2.codes.tolist() == [0, 50, 13] and lut2.fmt == F.FixedPoint(6, 2)
    with pytest.raises(ValueError):
        F.AlphaLUT.from_dict({**lut.to_dict(), "codes": [0, 50, 9999]})
    with pytest.raises(ValueError):
        F.PiecewiseLinearAlpha.from_dict({"t": [1, 1], "alpha": [0, 1]})


def test_approximation_report():
    fc, ic, y = fake_counts(n_img=30, n_t=80, n_c=4, seed=8)
    sched = F.grid_search_alpha(fc, ic, y)
    pwl = F.fit_pwl(sched, F.breakpoints(80, 10, 40, 20))
    lut = F.lut_from_pwl(pwl, F.FixedPoint(14, 2))
    rep = F.approximation_report(sched, pwl, lut, fc, ic, y)
    assert rep.lut_vs_pwl_max_abs <= 0.125 + 1e-12
    assert rep.pwl_max_abs >= rep.pwl_mean_abs >= 0
    assert np.array_equal(rep.accuracy_exact, sched.accuracy(fc, ic, y))
    assert np.array_equal(rep.accuracy_lut, F.lut_schedule(lut, 80).accuracy(fc, ic, y))
    assert rep.lut_loss_mean == pytest.approx(np.mean(rep.accuracy_exact - rep.accuracy_lut))


# --------------------------------------------------------------------------- early exit


@pytest.mark.parametrize("ties", RULES)
def test_early_exit_matches_plain_loops(ties):
    fc, ic, y = fake_counts(n_img=30, n_t=25, n_c=4, seed=9)
    ee = F.tune_early_exit(fc, ic, y, ties, chunk=7)
    n_img, n_t, _ = fc.shape
    draws = tie_draws(ties.seed, np.arange(n_img), n_t)

    def margin(i, t):
        s = sorted(ic[i, t].tolist())
        return s[-1] - s[-2]

    def head(i, t, thr):
        return ic if margin(i, t) >= thr else fc

    def credit(i, t, thr):
        return ref_credit(head(i, t, thr)[i, t].tolist(), y[i], ties, draws[i, t])

    for t in range(n_t):
        cands = [math.inf, *range(t + 1, -1, -1)]  # preference order: FC first, then larger
        best_thr, best_ok = None, -1
        for thr in cands:
            ok = sum(credit(i, t, thr) for i in range(n_img))
            if ok > best_ok:
                best_thr, best_ok = thr, ok
        assert ee.threshold[t] == best_thr
        got = ee.decide(fc, ic)[:, t]
        thr = ee.threshold[t]
        assert got.tolist() == [ref_decision(head(i, t, thr)[i, t].tolist()) for i in range(n_img)]
        want = [float(credit(i, t, thr)) for i in range(n_img)]
        assert ee.credit(fc, ic, y, ties)[:, t].tolist() == pytest.approx(want)
    acc = ee.accuracy(fc, ic, y, ties)
    assert np.all(acc >= F.accuracy_over_time(fc, y, ties) - 1e-6)  # never worse than the FC


def test_compare_methods_smoke():
    fc, ic, y = fake_counts(n_img=40, n_t=60, n_c=4, seed=1)
    tfc, tic, ty = fake_counts(n_img=30, n_t=60, n_c=4, seed=2)
    tuning = F.tune_methods(fc, ic, y, F.TuningConfig(knot_steps=(5,)))
    cmp = F.compare_methods(tuning, tfc, tic, ty)
    assert list(cmp.accuracy) == list(Method)
    for acc in cmp.accuracy.values():
        assert acc.shape == (60,) and np.all((acc >= 0) & (acc <= 1))
    assert np.array_equal(cmp.accuracy["DL"], F.accuracy_over_time(tfc, ty))
    assert np.array_equal(cmp.accuracy["BSF-Grid"], cmp.approximation["BSF-Grid"].accuracy_lut)
    # the stored form of a tuning gives the same comparison
    back = F.Tuning.from_dict(json.loads(json.dumps(tuning.to_dict())))
    assert all(type(k) is Method for k in (*back.schedules, *back.pwl, *back.luts))
    again = F.compare_methods(back, tfc, tic, ty)
    for name, acc in cmp.accuracy.items():
        assert np.array_equal(acc, again.accuracy[name]), name
    assert np.array_equal(back.early_exit.threshold, tuning.early_exit.threshold)


@pytest.mark.parametrize("chunk_bytes", [1, 8 * 60 * 4 * 7, 8 << 20])
@pytest.mark.parametrize("ties", ["fair", "random"])
def test_compare_on_spikes_by_chunks_is_compare_methods(monkeypatch, chunk_bytes, ties):
    """The evaluation counted and decided a chunk of images at a time (one image, 7 images,
    all) equals `compare_methods` on the whole set's cumulative counts, credit for credit."""
    P = importlib.import_module("hwsim.fusion.posterior")  # the module, not the function

    fc, ic, y = fake_counts(n_img=40, n_t=60, n_c=4, seed=1)
    tfc, tic, ty = fake_counts(n_img=30, n_t=60, n_c=4, seed=2)
    cfg = F.TuningConfig(knot_steps=(5,), ties=Ties(TieRule(ties)))
    tuning = F.tune_methods(fc, ic, y, cfg)
    ids = np.arange(100, 130)
    whole = F.compare_methods(tuning, tfc, tic, ty, image_ids=ids)
    spikes = [np.diff(c, axis=1, prepend=0).astype(np.uint8) for c in (tfc, tic)]
    monkeypatch.setattr(P, "READOUT_BYTES", chunk_bytes)
    got = F.compare_on_spikes(tuning, *spikes, ty, image_ids=ids)
    for field in ("correct", "exact"):
        a, b = getattr(whole, field), getattr(got, field)
        assert list(a) == list(b)
        for m in a:
            assert a[m].dtype == b[m].dtype and np.array_equal(a[m], b[m]), (field, m)
    for m, a in whole.approximation.items():  # accuracies and errors alike
        for k, v in vars(a).items():
            assert np.array_equal(v, vars(got.approximation[m])[k]), (m, k)


def test_alpha_and_coin_toss_figures(tmp_path):
    from hwsim.report import figures

    fit = {"Grid": (np.array([1, 50]), np.array([100, 0]))}
    paths = figures.plot_alpha({"Grid": np.linspace(100, 0, 50)}, fit, tmp_path / "alpha.png")
    assert [p.name for p in paths] == ["alpha.png", "alpha.svg"]
    assert all(p.stat().st_size > 0 for p in paths)
    est = figures.coin_toss_estimates(tosses=50, trials=200)
    err = {k: np.mean((v[:, 9] - 0.3) ** 2) for k, v in est.items()}
    assert err["alpha=100, r=0.3"] < err["MLE"]  # the right prior helps after 10 tosses
    assert figures.coin_toss_figure(tmp_path / "coin", tosses=30, trials=5, formats=("png",))


def test_entry_mean_alpha_matches_a_plain_loop_over_entries():
    fc, ic, _ = fake_counts(n_img=12, n_t=15, n_c=3, seed=4)
    grid = np.arange(1.0, 21.0)
    got = F.entry_mean_alpha(fc, ic, grid=grid).alpha
    used = 0
    for t in range(15):
        n = t + 1
        picks = []
        for i in range(12):
            for c in range(3):
                k, m = int(ic[i, t, c]), int(fc[i, t, c])
                if not 0 < k < n:
                    continue
                e = k / n
                # log B(M + a, N - M + a(1/E - 1)) - log B(a, a(1/E - 1)), written out with scipy
                vals = [
                    betaln(m + a, n - m + a * (1 / e - 1)) - betaln(a, a * (1 / e - 1))
                    for a in grid
                ]
                picks.append(grid[int(np.argmax(vals))])
        expected = np.mean(picks) if picks else grid[0]
        used += bool(picks)
        assert got[t] == pytest.approx(expected), t
    assert used > 5  # the comparison is not vacuous


# --------------------------------------------------------------------------- per-image decisions


@pytest.mark.parametrize("estimator", list(Estimator))
def test_correct_matrix_matches_plain_loops(estimator):
    fc, ic, y = fake_counts(n_img=12, n_t=20, n_c=4, seed=13)
    alpha = np.linspace(0, 40, 20)
    got = F.correct_matrix(fc, ic, y, alpha, estimator)
    want = ref_fused_credits(fc, ic, y, alpha, estimator)
    assert got.tolist() == want.astype(float).astype(F.CREDIT_DTYPE).tolist()
    counts = F.correct_counts(fc, ic, y, alpha[None, :], estimator)[0]
    assert counts.tolist() == [float(v) for v in want.sum(axis=0)]
    decisions = F.fused_decisions(fc, ic, alpha, estimator)
    for i in range(12):
        for t in range(20):
            scores = [ref_estimate(fc[i, t, c], ic[i, t, c], t + 1, alpha[t], estimator)
                      for c in range(4)]  # fmt: skip
            assert decisions[i, t] == ref_decision(scores), (i, t)


# --------------------------------------------------------------------------- LUT choice


def ref_accuracy(fc, ic, y, alpha):
    """Accuracy per step with alpha[t] (MEAN estimator, fair ties), a plain loop in exact
    rational arithmetic (`ref_fused_credits`)."""
    return np.array([float(v) for v in ref_fused_credits(fc, ic, y, alpha).sum(axis=0)]) / len(y)


def test_int_bits_are_the_fewest_that_do_not_saturate():
    for amax in (0.0, 0.2, 0.99, 1.0, 3.7, 255.9, 1e4):
        for frac in (0, 2, 8):
            bits = F.int_bits_for(amax, frac)
            fmt = F.FixedPoint(bits, frac)
            nearest = math.floor(amax / fmt.lsb + 0.5)  # the code rounding asks for
            assert nearest <= fmt.max_code  # held without clipping
            assert fmt.quantize(np.array([amax]))[0] == nearest
            if bits > 0 and bits - 1 + frac >= 1:  # one integer bit fewer would clip it
                assert nearest > F.FixedPoint(bits - 1, frac).max_code


def test_default_lut_loses_little_accuracy_against_the_exact_alpha():
    """The default tuning's LUT, checked by a plain loop: on the tuning images it loses at
    most the budget on average over the rise (up to the first step at 99% of the exact
    schedule's best accuracy); on other images of the same fake SNN its loss stays within a
    point on average over all steps."""
    fc, ic, y = fake_counts(n_img=60, n_t=70, n_c=4, seed=21)
    tfc, tic, ty = fake_counts(n_img=60, n_t=70, n_c=4, seed=22)
    cfg = F.TuningConfig()
    tuning = F.tune_methods(fc, ic, y, cfg)
    for m in (Method.BSF_GRID, Method.BSF_EMP):
        exact, lut = tuning.schedules[m].alpha, F.lut_schedule(tuning.luts[m], 70).alpha
        assert np.all(np.abs(lut - tuning.pwl[m].schedule(70).alpha) <= tuning.luts[m].fmt.lsb / 2)
        ref_exact = ref_accuracy(fc, ic, y, exact)
        horizon = next(t for t in range(70) if ref_exact[t] >= 0.99 * ref_exact.max()) + 1
        loss = (ref_exact - ref_accuracy(fc, ic, y, lut))[:horizon]
        bound = cfg.budget.knots + cfg.budget.quantisation
        assert loss.mean() <= bound + 1e-12, m
        choice = tuning.lut_choice[m]
        assert choice.horizon == horizon
        assert choice.chosen.loss_mean == pytest.approx(loss.mean())
        held_out = ref_accuracy(tfc, tic, ty, exact) - ref_accuracy(tfc, tic, ty, lut)
        assert held_out.mean() <= 0.01, m


def test_lut_choice_takes_the_coarsest_knots_and_fewest_bits_within_budget():
    fc, ic, y = fake_counts(n_img=40, n_t=60, n_c=4, seed=23)
    sched = F.grid_search_alpha(fc, ic, y)
    budget = F.LossBudget(knots=0.004, quantisation=0.001)
    pwl, lut, choice = F.choose_lut(sched, fc, ic, y, budget=budget)
    exact = ref_accuracy(fc, ic, y, sched.alpha)
    horizon = next(t for t in range(60) if exact[t] >= 0.99 * exact.max()) + 1
    assert choice.horizon == horizon < 60
    losses = {}
    for step in (1, 2, 5, 10, 20, 50):
        knots = F.breakpoints(60, step, 500, 10 * step)
        sampled = np.interp(np.arange(1, 61), knots, sched.alpha[knots - 1])
        losses[step] = np.mean((exact - ref_accuracy(fc, ic, y, sampled))[:horizon])
    want = max(s for s, v in losses.items() if v <= budget.knots + 1e-12)
    assert choice.chosen.knot_step == want and pwl.t.tolist() == F.knot_layout(60, want).tolist()
    assert [c.knot_step for c in choice.knots] == [50, 20, 10, 5, 2, 1]
    assert {c.knot_step: c.loss_mean for c in choice.knots} == pytest.approx(losses)
    fmt_loss = {c.frac_bits: c.loss_mean for c in choice.formats}
    ok = [f for f, v in sorted(fmt_loss.items()) if v - losses[want] <= budget.quantisation + 1e-12]
    assert choice.chosen.frac_bits == (ok[0] if ok else 8) == lut.fmt.frac_bits


def test_sampled_pwl_keeps_the_accuracy_a_least_squares_fit_loses():
    """A grid-searched alpha that jumps between decades (0 early, 1000 for a while, 0 again):
    sampling keeps each stored value one the search chose; least squares smears the jumps."""
    fc, ic, y = fake_counts(n_img=60, n_t=60, n_c=4, seed=24)
    alpha = np.where((np.arange(1, 61) > 20) & (np.arange(1, 61) <= 40), 1000.0, 0.0)
    alpha[np.arange(60) % 7 == 3] = 0.0  # isolated steps back at 0, as a noisy argmax gives
    s = F.AlphaSchedule(alpha, F.AlphaMethod.GRID)
    knots = F.knot_layout(60, 10)
    sample = F.fit_pwl(s, knots, F.FitMethod.SAMPLE).schedule(60).alpha
    lsq = F.fit_pwl(s, knots, F.FitMethod.LEAST_SQUARES).schedule(60).alpha
    assert set(np.round(sample[knots - 1], 9)) <= {0.0, 1000.0}
    assert not set(np.round(lsq[knots - 1], 9)) <= {0.0, 1000.0}


# --------------------------------------------------------------------------- cross-fitting


def test_cross_fit_decides_each_image_with_the_other_folds_tuning():
    fc, ic, y = fake_counts(n_img=30, n_t=40, n_c=4, seed=25)
    cfg = F.TuningConfig(knot_steps=(5,), frac_bits=(4,))
    cmp = F.cross_fit(fc, ic, y, cfg, folds=3, seed=1)
    fold = F.fold_of(30, 3, seed=1)
    assert sorted(np.bincount(fold).tolist()) == [10, 10, 10]
    assert cmp.folds == 3 and len(cmp.fold_tunings) == 3
    for k in range(3):
        mine, rest = fold == k, fold != k
        tuning = F.tune_methods(fc[rest], ic[rest], y[rest], cfg)  # tuned without fold k
        alone = F.compare_methods(tuning, fc[mine], ic[mine], y[mine])
        for m in Method:
            assert np.array_equal(cmp.correct[m][mine], alone.correct[m]), (k, m)
        assert np.array_equal(cmp.fold_tunings[k].schedules[Method.BSF_GRID].alpha,
                              tuning.schedules[Method.BSF_GRID].alpha)  # fmt: skip
    assert np.array_equal(cmp.accuracy[Method.DL], F.accuracy_over_time(fc, y))
    with pytest.raises(ValueError, match="folds"):
        F.cross_fit(fc, ic, y, cfg, folds=1)


# --------------------------------------------------------------------------- eq. 25-26 prior


@pytest.mark.parametrize(
    ("m", "k", "n", "alpha"),
    [(3, 4, 10, 2.0), (0, 3, 20, 1.5), (18, 20, 20, 6.0), (40, 70, 150, 120.0)],
)
def test_mode_prior_evidence_equals_the_papers_eq30_by_quadrature(m, k, n, alpha):
    """eq. 30 with the paper's eq. 25-26 prior written out here (not via prior_params):
    beta = (1 - E)(alpha - 1)/E + 1, P(p | alpha) = p^(alpha-1) (1-p)^(beta-1) / B(alpha, beta),
    integrated against the spike train's likelihood p^M (1-p)^(N-M)."""
    e = k / n
    beta = (1 - e) * (alpha - 1) / e + 1
    assert (alpha - 1) / (alpha + beta - 2) == pytest.approx(e)  # eq. 24: the mode is E

    def integrand(p):
        log_p = (m + alpha - 1) * math.log(p) + (n - m + beta - 1) * math.log1p(-p)
        return math.exp(log_p - betaln(alpha, beta))

    peak = min(max((m + alpha - 1) / (n + alpha + beta - 2), 1e-6), 1 - 1e-6)
    val, _ = integrate.quad(integrand, 0, 1, points=[peak], epsabs=0, epsrel=1e-11, limit=200)
    got = F.log_evidence(m, k, n, alpha, Estimator.MAP)
    assert got == pytest.approx(math.log(val), rel=1e-7)
    # and the closed form of eq. 30 as the paper prints it
    assert got == pytest.approx(betaln(m + alpha, n - m + beta) - betaln(alpha, beta), rel=1e-12)


def calibrated_counts(alpha, n_img=400, n_t=200, seed=0, scale=1.0, estimator=Estimator.MEAN):
    """Counts whose FC rates are drawn from the estimator's own prior around the IC's rates
    (scale = 1: calibrated heads), or around scale x those rates (uncalibrated)."""
    rng = np.random.default_rng(seed)
    e = rng.uniform(0.05, 0.6, (n_img, 3))
    ic = rng.binomial(n_t, e)  # the IC's count after n_t steps
    a, b = F.prior_params(ic, n_t, alpha, estimator)
    p = np.clip(rng.beta(a, b) * scale, 0, 1)
    fc = rng.binomial(n_t, p)
    return fc, ic


@pytest.mark.parametrize("estimator", list(Estimator))
def test_joint_empirical_bayes_recovers_the_prior_strength_of_calibrated_heads(estimator):
    """When the FC's rates are distributed around the IC's as the prior says, eq. 30 pooled
    jointly finds the true alpha; when they are not (rates scaled), it picks a weak prior."""
    n_t = 200
    for true_alpha in (5.0, 40.0):
        fc, ic = calibrated_counts(true_alpha, n_t=n_t, seed=int(true_alpha), estimator=estimator)
        lo = 1.01 if estimator is Estimator.MAP else 0.01
        grid = np.exp(np.linspace(np.log(lo), np.log(1e4), 600))
        ev = [F.log_evidence(fc, ic, n_t, a, estimator).sum() for a in grid]
        best = grid[int(np.argmax(ev))]
        assert best == pytest.approx(true_alpha, rel=0.35), (true_alpha, best)
    fc, ic = calibrated_counts(40.0, n_t=n_t, seed=3, scale=0.5, estimator=estimator)
    lo = 1.01 if estimator is Estimator.MAP else 0.01
    grid = np.exp(np.linspace(np.log(lo), np.log(1e4), 600))
    ev = [F.log_evidence(fc, ic, n_t, a, estimator).sum() for a in grid]
    assert grid[int(np.argmax(ev))] < 5.0


@pytest.mark.parametrize("ties", RULES)
def test_argmax_credit_of_head_counts_by_each_rule(ties):
    fc, _, y = fake_counts(n_img=15, n_t=25, n_c=4, seed=26)
    got = F.argmax_credit(fc, y, ties, chunk=4)
    draws = tie_draws(ties.seed, np.arange(15), 25)
    for i in range(15):
        for t in range(25):
            want = ref_credit(fc[i, t].tolist(), y[i], ties, draws[i, t])
            assert got[i, t] == np.float32(float(want)), (i, t)
    # untied: the same as deciding
    decided = F.decide(fc) >= 0
    assert np.array_equal((got == 1)[decided], (F.decide(fc) == y[:, None])[decided])
    assert np.any((got > 0) & (got < 1)) == (ties.rule is TieRule.FAIR)
