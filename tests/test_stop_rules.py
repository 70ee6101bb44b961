"""Early termination (hwsim.fusion.stop_rules): the tuned threshold against a brute-force loop
over every threshold, a hand-made case, and the bootstrap intervals by hand."""

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import InputError
from hwsim.fixed_point import FixedDecisions
from hwsim.fusion import (
    READOUT_TIES,
    apply_stop_rule,
    early_termination,
    stop_at,
    tune_stop_rule,
)
from hwsim.hw.arch import TerminationRule
from hwsim.methods import TieRule, Ties, tie_draws
from hwsim.metrics import resample_counts

RULES = [Ties(TieRule.FAIR), Ties(TieRule.WRONG), Ties(TieRule.FIRST), Ties(TieRule.RANDOM, 5)]


def answer_credit(dec, final_top, labels, i, t, ties):
    """The credit of image i's answer at 0-based step t, written out: its decision, or at the
    last step a tie among final_top[i] credited by the rule."""
    if dec[i, t] >= 0:
        return Fraction(int(dec[i, t] == labels[i]))
    top = [c for c in range(final_top.shape[1]) if final_top[i, c]]
    if ties.rule is TieRule.FAIR:
        return Fraction(int(labels[i] in top), len(top))
    if ties.rule is TieRule.WRONG:
        return Fraction(0)
    if ties.rule is TieRule.FIRST:
        return Fraction(int(top[0] == labels[i]))
    draw = tie_draws(ties.seed, np.array([i]), 1, first_step=t + 1)[0, 0]
    return Fraction(int(top[int(draw) % len(top)] == labels[i]))


def brute_force_stop_rule(conf, dec, labels, target, final_top=None, ties=RULES[1]):
    """Every integer threshold 0..max + 1 (max + 1: nobody stops early), plain loops; the
    smallest mean stop with accuracy >= target, ties: higher accuracy, larger threshold."""
    n_img, n_t = conf.shape
    rows = []
    for theta in range(int(conf.max()) + 2):
        stop_sum, correct = 0, Fraction(0)
        for i in range(n_img):
            stop = n_t
            for t in range(n_t):
                if conf[i, t] >= 0 and conf[i, t] >= theta:
                    stop = t + 1
                    break
            stop_sum += stop
            correct += answer_credit(dec, final_top, labels, i, stop - 1, ties)
        rows.append((theta, stop_sum, correct))
    ok = [r for r in rows if float(r[2] / n_img) >= target]
    if ok:
        return min(ok, key=lambda r: (r[1], -r[2], -r[0])), True
    return min(rows, key=lambda r: (-r[2], r[1], -r[0])), False


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    target=st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.9, 1.0]),
    ties=st.sampled_from(RULES),
)
def test_stop_rule_tuning_equals_brute_force(seed, target, ties):
    rng = np.random.default_rng(seed)
    n_img, n_t, n_c = int(rng.integers(1, 12)), int(rng.integers(1, 9)), 3
    labels = rng.integers(0, n_c, n_img)
    dec = rng.integers(-1, n_c, (n_img, n_t))
    # correct decisions become more likely over time, confidence grows noisily
    late = rng.random((n_img, n_t)) < np.linspace(0.2, 0.9, n_t)
    dec = np.where(late, labels[:, None], dec)
    conf = np.where(dec >= 0, rng.integers(0, 7, (n_img, n_t)), -1)
    # the top sets at T: the decision alone, or 2-3 tied classes where it is -1
    final_top = rng.random((n_img, n_c)) < 0.6
    final_top[np.arange(n_img), rng.integers(0, n_c, n_img)] = True
    final_top[np.arange(n_img), (rng.integers(0, n_c, n_img) + 1) % n_c] = True
    decided = dec[:, -1] >= 0
    final_top[decided] = np.eye(n_c, dtype=bool)[dec[decided, -1]]
    decisions = FixedDecisions(dec, conf, TerminationRule.MARGIN, "spike", final_top=final_top)
    rule = tune_stop_rule(decisions, labels, target, ties)
    (theta, stop_sum, correct), met = brute_force_stop_rule(
        conf, dec, labels, target, final_top, ties
    )
    assert rule.target_met == met and rule.ties == ties
    assert rule.mean_stop == pytest.approx(stop_sum / n_img)
    assert rule.accuracy == pytest.approx(float(correct / n_img))
    assert rule.threshold == (None if theta == conf.max() + 1 else theta)
    stop, _ = stop_at(decisions, rule.threshold)
    assert stop.mean() == pytest.approx(rule.mean_stop)
    res = apply_stop_rule("m", rule, decisions, labels)
    assert res.stop_step.tolist() == stop.tolist()
    assert res.accuracy == pytest.approx(rule.accuracy)


def test_a_tie_at_the_last_step_needs_its_top_set_unless_ties_are_wrong():
    labels = np.array([0, 1])
    dec = np.array([[0, 0], [0, -1]])  # image 1 ends tied
    conf = np.where(dec >= 0, 0, -1)
    bare = FixedDecisions(dec, conf, TerminationRule.MARGIN, "spike")
    assert tune_stop_rule(bare, labels, 0.6).ties == READOUT_TIES == RULES[1]  # none named
    assert tune_stop_rule(bare, labels, 0.6).accuracy == 0.5
    with pytest.raises(ValueError, match="final_top"):
        tune_stop_rule(bare, labels, 0.6, RULES[0])
    top = np.array([[True, False, False], [True, True, True]])
    full = dataclasses.replace(bare, final_top=top)
    fair = tune_stop_rule(full, labels, 0.6, RULES[0])  # running to T: 1 + 1/3 of 2 images
    assert (fair.threshold, fair.accuracy, fair.target_met) == (None, pytest.approx(2 / 3), True)
    res = apply_stop_rule("m", fair, full, labels)
    assert res.correct.tolist() == pytest.approx([1.0, 1 / 3])
    first = tune_stop_rule(full, labels, 0.6, RULES[2])  # class 0 wins the tie, the label is 1
    assert (first.threshold, first.accuracy, first.target_met) == (0, 0.5, False)


def test_stop_rule_by_hand_and_applied_to_test_images():
    labels = np.array([0, 1])
    # image 0: confident (3) and right at t = 2; image 1: wrong with 2 at t = 1, right at t = 3
    dec = np.array([[1, 0, 0], [0, 0, 1]])
    conf = np.array([[0, 3, 3], [2, 1, 4]])
    val = FixedDecisions(dec, conf, TerminationRule.POSTERIOR, "2^-4 score")
    rule = tune_stop_rule(val, labels, target=1.0)
    # theta 3: stops at 2 and 3, both right (mean 2.5); theta 1, 2: image 1 stops wrong
    assert (rule.threshold, rule.mean_stop, rule.accuracy, rule.target_met) == (3, 2.5, 1.0, True)
    loose = tune_stop_rule(val, labels, target=0.5)
    assert (loose.threshold, loose.mean_stop, loose.accuracy) == (2, 1.5, 0.5)  # 2 beats 0, 1
    # nobody is ever confident: the only outcome is running to T (both right there)
    never = tune_stop_rule(FixedDecisions(dec, -np.ones_like(conf), rule.rule, "x"), labels, 0.9)
    assert (never.threshold, never.target_met, never.accuracy, never.candidates) == (
        None,
        True,
        1.0,
        1,
    )
    # a target nobody reaches: the most accurate threshold (all 0), then the earliest stop
    unreachable = tune_stop_rule(val, np.array([2, 2]), 0.5)
    assert (unreachable.threshold, unreachable.target_met) == (0, False)
    assert (unreachable.accuracy, unreachable.mean_stop) == (0.0, 1.0)
    res = apply_stop_rule("BSF-Grid", rule, val, labels, bootstrap=200)
    assert res.stop_step.tolist() == [2, 3] and res.decision.tolist() == [0, 1]
    assert (res.accuracy, res.mean_stop, res.p99_stop) == (1.0, 2.5, 3.0)
    assert res.accuracy_interval.lo == 1.0 and 2.0 <= res.mean_stop_interval.lo <= 2.5
    with pytest.raises(InputError, match="confidences"):
        apply_stop_rule("x", rule, dataclasses.replace(val, rule=TerminationRule.MARGIN), labels)
    both = early_termination("BSF-Grid", val, labels, val, labels, 1.0)
    assert both.stop_step.tolist() == [2, 3]


def test_bootstrap_intervals_are_order_statistics_of_the_paired_resamples():
    """The intervals by hand: every resample's accuracy and mean stop from its draw counts,
    sorted, the inverted-CDF 5% and 95% order statistics (ceil(q B)-th smallest)."""
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 40)
    dec = np.where(rng.random((40, 6)) < 0.7, labels[:, None], (labels[:, None] + 1) % 3)
    conf = rng.integers(0, 5, (40, 6))
    decisions = FixedDecisions(dec, conf, TerminationRule.POSTERIOR, "2^-4 score")
    rule = tune_stop_rule(decisions, labels, 0.6)
    res = apply_stop_rule("m", rule, decisions, labels, bootstrap=200, level=0.9, seed=3)
    counts = resample_counts(40, 200, 3)
    stop, answer = stop_at(decisions, rule.threshold)
    for got, per_image, value in (
        (res.accuracy_interval, (answer == labels).astype(float), res.accuracy),
        (res.mean_stop_interval, stop.astype(float), res.mean_stop),
    ):
        samples = sorted(float(c @ per_image) / 40 for c in counts)
        lo, hi = samples[int(np.ceil(0.05 * 200)) - 1], samples[int(np.ceil(0.95 * 200)) - 1]
        assert got.value == value
        assert got.lo == pytest.approx(lo, rel=1e-6) and got.hi == pytest.approx(hi, rel=1e-6)
