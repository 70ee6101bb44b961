"""The fixed-point read-outs credit a tie at T by the run's tie rule exactly as the float path
does (issue 24): the fusion unit (`FusionUnit.decide`), one head's counters (`head_decisions`)
and the early-exit switch (`early_exit_decisions`) record the top set at the last step
(`FixedDecisions.final_top`), and its credit under every rule equals the float path's credit at
T (`fusion.correct_matrix`, `fusion.argmax_credit`, `EarlyExit.credit`) on cases with ties."""

import dataclasses

import numpy as np
import pytest

from hwsim import fusion
from hwsim.fixed_point import AlphaLUT, FixedPoint
from hwsim.fusion import apply_stop_rule, tune_stop_rule
from hwsim.hw.arch import FusionCompare, TerminationRule
from hwsim.hw.fusion_unit import FusionUnit, early_exit_decisions, head_decisions
from hwsim.methods import TieRule, Ties
from tests.test_fusion_unit import CONFIG

RULES = [Ties(TieRule.FAIR), Ties(TieRule.WRONG), Ties(TieRule.FIRST), Ties(TieRule.RANDOM, 7)]


def tied_counts(rng, n_img, n_t, n_c):
    """Cumulative counts of few, slow spikes (many exact ties); the last step of some images
    built to tie on purpose: FC M = K against a silent IC class with the same M (the issue's
    case), and equal FC counts with a silent IC."""
    fc = np.cumsum(rng.random((n_img, n_t, n_c)) < 0.15, axis=1, dtype=np.int32)
    ic = np.cumsum(rng.random((n_img, n_t, n_c)) < 0.15, axis=1, dtype=np.int32)
    fc[:10] = 0
    ic[:10] = 0
    ramp = np.minimum(np.arange(1, n_t + 1), 3)[None, :]
    fc[:5, :, 0] = fc[:5, :, 1] = ramp  # classes 0 and 1 both M = 3 from t = 3
    ic[:5, :, 0] = ramp  # class 0: K = M; class 1: K = 0 -> both p = M / t
    for c in (1, 2, 3):
        fc[5:10, :, c] = np.minimum(ramp, 2)  # a three-way tie of the FC, IC silent
    return fc, ic


def lut_with_breakpoint_at(n_t: int) -> AlphaLUT:
    """A LUT whose last breakpoint is T, so the unit's alpha(T) is the stored code exactly."""
    return AlphaLUT(np.array([1, n_t // 2, n_t]), np.array([0, 9, 4]), FixedPoint(4, 1))


@pytest.mark.parametrize("compare", list(FusionCompare))
@pytest.mark.parametrize("ties", RULES, ids=str)
def test_the_fusion_unit_credits_a_tie_at_T_as_the_float_fusion(compare, ties):
    rng = np.random.default_rng(3)
    n_img, n_t, n_c = 300, 12, 6
    fc, ic = tied_counts(rng, n_img, n_t, n_c)
    labels = rng.integers(0, n_c, n_img)
    labels[:10] = 1  # the label among the tied classes
    ids = rng.permutation(10_000)[:n_img]
    lut = lut_with_breakpoint_at(n_t)
    cfg = dataclasses.replace(CONFIG, compare=compare, score_frac_bits=40)
    fixed = FusionUnit(cfg, lut).decide(fc, ic)
    alpha = lut.decoded_alpha(n_t)
    floats = fusion.fused_decisions(fc, ic, alpha)
    assert np.array_equal(fixed.decision, floats)
    assert (fixed.decision[:, -1] < 0).sum() >= 10  # the built ties, found by both
    # the top set at T: the float path's credit at T under every rule
    expect = fusion.correct_matrix(fc, ic, labels, alpha, ties=ties, image_ids=ids)[:, -1]
    got = fixed.final_credit(labels, ties, ids)
    assert np.allclose(got, expect, atol=1e-7)
    tied = fixed.final_top.sum(axis=1) > 1
    assert np.array_equal(tied, fixed.decision[:, -1] < 0)


@pytest.mark.parametrize("ties", RULES, ids=str)
def test_a_head_and_the_early_exit_switch_credit_a_tie_at_T_as_the_float_paths(ties):
    rng = np.random.default_rng(8)
    n_img, n_t, n_c = 200, 15, 5
    fc, ic = tied_counts(rng, n_img, n_t, n_c)
    labels = rng.integers(0, n_c, n_img)
    ids = np.arange(100, 100 + n_img)
    for counts in (fc, ic):
        head = head_decisions(counts, TerminationRule.MARGIN, counter_bits=None)
        expect = fusion.argmax_credit(counts, labels, ties, ids)[:, -1]
        assert np.allclose(head.final_credit(labels, ties, ids), expect, atol=1e-7)
    ee = fusion.EarlyExit(np.where(np.arange(n_t) % 2 == 0, 1.0, np.inf))  # both heads used
    got = early_exit_decisions(fc, ic, ee.threshold, TerminationRule.POSTERIOR)
    expect = ee.credit(fc, ic, labels, ties, ids)[:, -1]
    assert np.allclose(got.final_credit(labels, ties, ids), expect, atol=1e-7)


def test_a_stop_rule_never_stopping_scores_the_float_accuracy_at_T():
    # threshold None: every image runs to T and is credited there by the rule, as the float
    # fusion's accuracy at T (ties included, fair: 1/k)
    rng = np.random.default_rng(4)
    n_img, n_t, n_c = 300, 12, 6
    fc, ic = tied_counts(rng, n_img, n_t, n_c)
    labels = rng.integers(0, n_c, n_img)
    labels[:10] = 1
    lut = lut_with_breakpoint_at(n_t)
    fixed = FusionUnit(CONFIG, lut).decide(fc, ic)
    ties = Ties(TieRule.FAIR)
    rule = tune_stop_rule(fixed, labels, target=1.01, ties=ties)  # unreachable: best accuracy
    never = dataclasses.replace(rule, threshold=None)
    result = apply_stop_rule("BSF", never, fixed, labels)
    accuracy = fusion.correct_counts(fc, ic, labels, lut.decoded_alpha(n_t)[None, :], ties=ties)
    assert result.accuracy == pytest.approx(accuracy[0, -1] / n_img)
    assert 0 < result.correct[:10].sum() < 10  # ties credited by 1/k, not 0 and not 1
