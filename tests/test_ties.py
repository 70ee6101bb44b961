"""One tie rule for every method (hwsim.methods.Ties) and exact ties in the float fusion path.

References: hand-built count matrices with their credits worked out by hand, exact rational
arithmetic (fractions.Fraction) for the fused estimates and for the sign the kernels compute
without rounding, and plain loops for the rules."""

import importlib
import json
from fractions import Fraction

import numpy as np
import pytest

from hwsim import fusion as F
from hwsim.errors import InputError
from hwsim.fusion import Estimator
from hwsim.methods import (
    METHODS,
    Decision,
    Method,
    TieRule,
    Ties,
    credit_unit,
    tie_draws,
    top_credit,
)

posterior_module = importlib.import_module("hwsim.fusion.posterior")
FAIR, WRONG, FIRST = Ties(TieRule.FAIR), Ties(TieRule.WRONG), Ties(TieRule.FIRST)
RANDOM = Ties(TieRule.RANDOM, 11)


def exact_score(m, k, n, alpha, estimator):
    """The estimate in exact rationals with alpha at its float64 value (docs/fusion.md)."""
    m, k, n, a = int(m), int(k), int(n), Fraction(alpha)
    if k == 0:
        return Fraction(m, n)
    if estimator is Estimator.MEAN:
        return (a + m) * k / ((a + k) * n)
    if k + a - 1 == 0:
        return Fraction(m, n)
    return min(max((m + a - 1) * k / ((k + a - 1) * n), Fraction(0)), Fraction(1))


# --------------------------------------------------------------------------- the rule


def test_ties_parse_print_and_refuse_what_would_not_act():
    for text in ("fair", "wrong", "first", "random:0", "random:12"):
        assert str(Ties.parse(text)) == text
    assert Ties.parse("random") == Ties(TieRule.RANDOM, 0)
    assert Ties() == FAIR and "1/k" in FAIR.label and "seed 11" in RANDOM.label
    for bad in ("fair:3", "coin", "random:x", "first:"):
        with pytest.raises(InputError, match="ties"):
            Ties.parse(bad)
    with pytest.raises(InputError, match="seed"):
        Ties(TieRule.FIRST, 4)


def test_credit_unit_makes_every_fair_credit_an_integer():
    assert credit_unit(10) == 2520 and credit_unit(2) == 2 and credit_unit(1) == 1
    for c in (3, 10, 22):
        assert all(credit_unit(c) % k == 0 for k in range(1, c + 1))
    assert credit_unit(100) == 1  # too large: fair credits are then rounded 1/k


def test_tie_draws_are_counter_based():
    full = tie_draws(5, np.arange(50), 30)
    assert full.dtype == np.uint64 and full.shape == (50, 30)
    ids = np.array([7, 3, 41])
    assert np.array_equal(tie_draws(5, ids, 30), full[ids])  # any batch or fold of images
    assert np.array_equal(tie_draws(5, ids, 10, first_step=21), full[ids, 20:])  # any chunk
    assert not np.array_equal(tie_draws(6, np.arange(50), 30), full)  # the seed acts
    # the (draw mod k)-th tied class is taken about uniformly
    picks = np.bincount((tie_draws(0, np.arange(3000), 10) % np.uint64(3)).ravel().astype(int))
    assert np.all(np.abs(picks / picks.sum() - 1 / 3) < 0.02)


def test_top_credit_on_hand_built_top_sets():
    # one image, four steps; classes 0..3; label 2
    top = np.array(
        [
            [
                [False, False, True, False],  # unique, right
                [True, False, True, False],  # 2-way tie with the label
                [True, True, True, True],  # 4-way tie (nothing fired yet)
                [True, True, False, False],  # tie without the label
            ]
        ]
    )
    y = np.array([2])
    assert top_credit(top, y, FAIR).tolist() == [[1.0, 0.5, 0.25, 0.0]]
    assert top_credit(top, y, FAIR, unit=credit_unit(4)).tolist() == [[12.0, 6.0, 3.0, 0.0]]
    assert top_credit(top, y, WRONG).tolist() == [[1.0, 0.0, 0.0, 0.0]]
    assert top_credit(top, y, FIRST).tolist() == [[1.0, 0.0, 0.0, 0.0]]  # class 0 comes first
    assert top_credit(top, np.array([0]), FIRST).tolist() == [[0.0, 1.0, 1.0, 1.0]]
    draws = tie_draws(RANDOM.seed, np.array([0]), 4)[0]
    tied = [[2], [0, 2], [0, 1, 2, 3], [0, 1]]
    want = [float(s[int(d) % len(s)] == 2) for s, d in zip(tied, draws, strict=True)]
    assert top_credit(top, y, RANDOM).tolist() == [want]


def test_argmax_credit_on_a_hand_built_count_matrix():
    # counts (2 images, 2 steps, 3 classes)
    counts = np.array([[[1, 1, 0], [2, 1, 1]], [[0, 0, 0], [3, 0, 3]]])
    y = np.array([1, 2])
    assert F.argmax_credit(counts, y, FAIR).tolist() == [[0.5, 0.0], [pytest.approx(1 / 3), 0.5]]
    assert F.argmax_credit(counts, y, WRONG).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert F.argmax_credit(counts, y, FIRST).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert F.argmax_credit(counts, np.array([0, 0]), FIRST).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    got = F.argmax_credit(counts, y, RANDOM)
    d = tie_draws(RANDOM.seed, np.arange(2), 2)
    sets = [[[0, 1], [0]], [[0, 1, 2], [0, 2]]]
    for i in range(2):
        for t in range(2):
            s = sets[i][t]
            assert got[i, t] == float(s[int(d[i, t]) % len(s)] == y[i])


# --------------------------------------------------------------------------- exact ties


def test_quadratic_sign_is_exact_at_float_alphas():
    """sign(c2 a^2 + c1 a + c0) against Fractions, at random floats, at dyadic roots and at
    their float neighbours (where rounding would decide), and at extreme magnitudes."""
    sign, work = posterior_module._quadratic_sign, np.empty(16)
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(2000):
        c = [int(v) for v in rng.integers(-(10**9), 10**9, 3)]
        a = float(rng.choice([0.0, 1e-320, 1e-200, 0.01, 0.3, 2.0, 1e4, 1e200, rng.random() * 50]))
        cases.append((c, a))
    for _ in range(2000):
        root = Fraction(float(rng.integers(1, 2**20)) / 2.0 ** int(rng.integers(0, 30)))
        s = int(rng.integers(-1000, 1000))
        # (q a - p)(a + s) with root p / q
        c = [root.denominator, root.denominator * s - root.numerator, -root.numerator * s]
        r = float(root)
        cases += [(c, a) for a in (r, np.nextafter(r, 0.0), np.nextafter(r, np.inf))]
    for (c2, c1, c0), a in cases:
        exact = c2 * Fraction(a) ** 2 + c1 * Fraction(a) + c0
        assert sign(c2, c1, c0, a, work) == (exact > 0) - (exact < 0), (c2, c1, c0, a)


def test_an_fc_count_equal_to_the_ic_count_ties_a_silent_ic_class():
    """The issue's case: class 0 with M = K, class 1 with K = 0 and the same M both score
    M / N exactly (MEAN: (alpha + M) M / ((alpha + M) N)); the float evaluation breaks the tie
    one way or the other, the kernels see it as a tie at every alpha."""
    n_t, m_val = 300, 120
    fc = np.zeros((1, n_t, 3), np.int32)
    ic = np.zeros((1, n_t, 3), np.int32)
    fc[0, -1, :2] = m_val
    ic[0, -1, 0] = m_val
    alphas = np.array(F.DEFAULT_ALPHA_GRID)
    broken = 0
    for a in alphas:
        alpha = np.full(n_t, a)
        assert F.fused_decisions(fc, ic, alpha)[0, -1] == -1, a
        assert F.correct_matrix(fc, ic, np.array([1]), alpha)[0, -1] == 0.5  # fair: 1/2
        assert F.correct_matrix(fc, ic, np.array([1]), alpha, ties=WRONG)[0, -1] == 0.0
        assert F.correct_matrix(fc, ic, np.array([0]), alpha, ties=FIRST)[0, -1] == 1.0
        assert exact_score(m_val, m_val, n_t, a, Estimator.MEAN) == Fraction(m_val, n_t)
        s = F.posterior(fc[0, -1], ic[0, -1], n_t, a)
        broken += s[0] != s[1]
    assert broken > 0  # the float scores alone would not see the tie
    # grid search counts it as a tie too: the same credit at every alpha
    credit = F.correct_counts(fc, ic, np.array([1]), alphas)[:, -1]
    assert np.all(credit == 0.5)


@pytest.mark.parametrize("estimator", list(Estimator))
def test_two_classes_decided_exactly_for_every_small_count_pair(estimator):
    """Every (M, K) pair against every other with counts <= 6 after N = 6 steps, at alphas
    where exact ties between different pairs exist (e.g. alpha = 2, and for MAP alpha < 1 with
    the clip): the kernel's decision equals the exact rational one."""
    n = 6
    pairs = [(m, k) for m in range(n + 1) for k in range(n + 1)]
    a_idx, b_idx = np.meshgrid(np.arange(len(pairs)), np.arange(len(pairs)), indexing="ij")
    a_idx, b_idx = a_idx.ravel(), b_idx.ravel()
    fc = np.zeros((a_idx.size, n, 2), np.int32)
    ic = np.zeros((a_idx.size, n, 2), np.int32)
    for col, idx in ((0, a_idx), (1, b_idx)):
        fc[:, -1, col] = [pairs[i][0] for i in idx]
        ic[:, -1, col] = [pairs[i][1] for i in idx]
    for a in (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 7.5):
        got = F.fused_decisions(fc, ic, np.full(n, a), estimator)[:, -1]
        ties = 0
        for i in range(a_idx.size):
            s = [exact_score(fc[i, -1, c], ic[i, -1, c], n, a, estimator) for c in range(2)]
            want = -1 if s[0] == s[1] else int(s[1] > s[0])
            assert got[i] == want, (pairs[a_idx[i]], pairs[b_idx[i]], a)
            ties += want == -1 and pairs[a_idx[i]] != pairs[b_idx[i]]
        assert ties > 0  # ties between different pairs are among the cases


def test_the_random_rule_does_not_depend_on_batching_or_folds():
    rng = np.random.default_rng(3)
    fc = np.cumsum(rng.random((40, 20, 4)) < 0.1, axis=1).astype(np.int32)
    ic = np.cumsum(rng.random((40, 20, 4)) < 0.1, axis=1).astype(np.int32)
    y = rng.integers(0, 4, 40)
    alpha = np.full(20, 2.0)
    full = F.correct_matrix(fc, ic, y, alpha, ties=RANDOM)
    part = np.array([5, 17, 30, 31])
    alone = F.correct_matrix(fc[part], ic[part], y[part], alpha, ties=RANDOM, image_ids=part)
    assert np.array_equal(alone, full[part])
    assert np.array_equal(
        F.argmax_credit(fc, y, RANDOM, chunk=3), F.argmax_credit(fc, y, RANDOM, chunk=256)
    )
    # some ties were broken both ways: the rule is neither first nor wrong
    heads = F.argmax_credit(fc, y, RANDOM)
    assert not np.array_equal(heads, F.argmax_credit(fc, y, FIRST))
    assert np.all(heads >= F.argmax_credit(fc, y, WRONG))
    with pytest.raises(InputError, match="image_ids"):
        F.correct_matrix(fc, ic, y, alpha, ties=RANDOM, image_ids=part)


def test_every_method_is_credited_by_the_tuning_rule():
    rng = np.random.default_rng(8)

    def counts(n_img):
        y = rng.integers(0, 3, n_img)
        rate_fc = np.where(np.arange(3) == y[:, None], 0.3, 0.1)
        rate_ic = np.where(np.arange(3) == y[:, None], 0.2, 0.12)
        fc = np.cumsum(rng.random((n_img, 30, 3)) < rate_fc[:, None, :], axis=1)
        ic = np.cumsum(rng.random((n_img, 30, 3)) < rate_ic[:, None, :], axis=1)
        return fc.astype(np.int32), ic.astype(np.int32), y

    fc, ic, y = counts(60)
    tfc, tic, ty = counts(50)
    credits = {}
    for ties in (FAIR, WRONG, FIRST, RANDOM):
        cfg = F.TuningConfig(knot_steps=(5,), frac_bits=(4,), ties=ties)
        tuning = F.tune_methods(fc, ic, y, cfg)
        assert tuning.ties == ties and cfg.to_dict()["ties"] == str(ties)
        assert F.Tuning.from_dict(json.loads(json.dumps(tuning.to_dict()))).ties == ties
        cmp = F.compare_methods(tuning, tfc, tic, ty)
        heads = {Decision.FC_ARGMAX: tfc, Decision.IC_ARGMAX: tic}
        for m, spec in METHODS.items():
            if spec.decision in heads:
                want = F.argmax_credit(heads[spec.decision], ty, ties)
                assert np.array_equal(cmp.correct[m], want), (ties, m)
        assert np.array_equal(
            cmp.correct[Method.EARLY_EXIT], tuning.early_exit.credit(tfc, tic, ty, ties)
        )
        lut = F.lut_schedule(tuning.luts[Method.BSF_GRID], 30)
        want = lut.correct(tfc, tic, ty, ties)
        assert np.array_equal(cmp.correct[Method.BSF_GRID], want)
        credits[ties.rule] = cmp.correct[Method.DL]
    assert np.any(credits[TieRule.FAIR] != credits[TieRule.WRONG])  # ties were met
    assert np.all(credits[TieRule.FAIR] >= credits[TieRule.WRONG])
    assert np.all(credits[TieRule.FIRST] >= credits[TieRule.WRONG])
    # fair is the mean over the tied classes of first-style picks: between wrong and right
    assert np.all((credits[TieRule.FAIR] >= 0) & (credits[TieRule.FAIR] <= 1))


def test_too_many_steps_for_exact_comparison_are_refused():
    big = np.zeros((1, F.MAX_STEPS + 1, 2), np.int32)
    with pytest.raises(InputError, match="timesteps"):
        F.fused_decisions(big, big, np.zeros(F.MAX_STEPS + 1))
    with pytest.raises(InputError, match="alpha"):
        F.posterior(np.array([1]), np.array([1]), 2, np.inf)
