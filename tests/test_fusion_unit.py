"""The fusion unit as hardware (hwsim.hw.fusion_unit): fixed-point LUT interpolation by hand,
decisions against exact rational arithmetic, the divider against the float fusion, mismatches
and saturation on constructed cases, cycles and events from the config, and the early-stop
threshold against a brute-force loop."""

import dataclasses
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import fusion
from hwsim.errors import ConfigError, InputError
from hwsim.fixed_point import AlphaLUT, FixedPoint
from hwsim.fusion import early_termination, stop_at
from hwsim.hw.arch import (
    ArchConfigError,
    FusionCompare,
    FusionUnitConfig,
    TerminationRule,
    load_arch,
)
from hwsim.hw.energy import charge_fusion_pj
from hwsim.hw.fusion_unit import (
    FusionUnit,
    _wide_product,
    check_against_float,
    decision_events,
    early_exit_decisions,
    fusion_events,
    head_decisions,
    running_images,
)

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM_YAML = ROOT / "arch_configs" / "spikesim.yaml"

CONFIG = FusionUnitConfig(
    counter_increment_pj=0.05,
    lut_read_pj=1.0,
    multiply_pj=0.8,
    compare_pj=0.05,
    area_um2=5000.0,
    lut_cycles=2,
    cycles_per_class=1,
)


def config(**changes) -> FusionUnitConfig:
    return dataclasses.replace(CONFIG, **changes)


def random_counts(rng, n_img, n_t, n_c, rate=0.4):
    """Cumulative counts of Bernoulli spikes with per-(image, class) rates in [0, rate)."""
    p_fc = rng.uniform(0, rate, (n_img, 1, n_c))
    p_ic = rng.uniform(0, rate, (n_img, 1, n_c))
    fc = np.cumsum(rng.random((n_img, n_t, n_c)) < p_fc, axis=1, dtype=np.int32)
    ic = np.cumsum(rng.random((n_img, n_t, n_c)) < p_ic, axis=1, dtype=np.int32)
    return fc, ic


# ------------------------------------------------------------------ exact reference


def ref_score(m: int, k: int, n: int, alpha: Fraction) -> Fraction:
    """p = (alpha + M) K / ((alpha + K) N); M / N for a silent IC (K = 0)."""
    if k == 0:
        return Fraction(m, n)
    return (alpha + m) * k / ((alpha + k) * n)


def ref_unit(fc, ic, alpha_codes, frac_bits, counter_bits, score_bits, rule, first_step=1):
    """Decisions and confidences in exact rational arithmetic, plain loops; column j holds
    step N = first_step + j."""
    n_img, n_t, n_c = fc.shape
    c_max = 2**counter_bits - 1
    dec = np.empty((n_img, n_t), np.int64)
    conf = np.empty((n_img, n_t), np.int64)
    for i in range(n_img):
        for t in range(n_t):
            alpha = Fraction(int(alpha_codes[t]), 2**frac_bits)
            m = [min(int(x), c_max) for x in fc[i, t]]
            k = [min(int(x), c_max) for x in ic[i, t]]
            p = [ref_score(m[c], k[c], first_step + t, alpha) for c in range(n_c)]
            order = sorted(range(n_c), key=lambda c: p[c], reverse=True)
            if n_c > 1 and p[order[0]] == p[order[1]]:
                dec[i, t], conf[i, t] = -1, -1
                continue
            dec[i, t] = order[0]
            q1 = math.floor(p[order[0]] * 2**score_bits)
            q2 = math.floor(p[order[1]] * 2**score_bits) if n_c > 1 else 0
            conf[i, t] = q1 - q2 if rule is TerminationRule.MARGIN else q1
    return dec, conf


def table(t, codes, int_bits: int, frac_bits: int) -> AlphaLUT:
    """An alpha LUT of breakpoints t and codes in the int_bits.frac_bits format."""
    return AlphaLUT(np.asarray(t), np.asarray(codes), FixedPoint(int_bits, frac_bits))


def per_step_lut(codes, int_bits, frac_bits) -> AlphaLUT:
    """A breakpoint at every step: A(t) = codes[t - 1], no interpolation."""
    return table(np.arange(1, len(codes) + 1), codes, int_bits, frac_bits)


# ------------------------------------------------------------------ the alpha LUT


def test_lut_interpolation_by_hand():
    # rising 0 -> 10 over 3 steps, s = 4: S = round(160 / 3) = 53
    lut = table(np.array([1, 4]), np.array([0, 10]), 4, 0)
    assert lut.slopes(4).tolist() == [53]
    # t=2: (53 + 8) >> 4 = 3 (3.33); t=3: (106 + 8) >> 4 = 7 (6.67); after t_K: 10
    assert lut.alpha_codes(6, 4).tolist() == [0, 3, 7, 10, 10, 10]
    # falling 10 -> 0: S = floor(-317 / 6) = -53; t=2: 10 + ((-53 + 8) >> 4) = 10 - 3 = 7
    down = table(np.array([1, 4]), np.array([10, 0]), 4, 0)
    assert down.slopes(4).tolist() == [-53]
    assert down.alpha_codes(4, 4).tolist() == [10, 7, 3, 0]
    # halves round up in both directions: 0.5 -> 1 on 0 -> 1 and 1 -> 0
    assert table(np.array([1, 3]), np.array([0, 1]), 1, 0).alpha_codes(3, 1).tolist() == [
        0,
        1,
        1,
    ]
    assert table(np.array([1, 3]), np.array([1, 0]), 1, 0).alpha_codes(3, 1).tolist() == [
        1,
        1,
        0,
    ]
    # no slope fraction bits: S = round(dA / L) = round(7 / 2) = 4, so t=2 -> 4, t=3 -> 8
    coarse = table(np.array([1, 3, 4]), np.array([0, 7, 7]), 3, 0)
    assert coarse.alpha_codes(4, 0).tolist() == [0, 4, 7, 7]
    # before the first breakpoint: its code
    late = table(np.array([3, 5]), np.array([6, 2]), 3, 0)
    assert late.alpha_codes(6, 8).tolist() == [6, 6, 6, 4, 2, 2]
    # e = 2 extra bits (quarters of an LSB): t=2: (53 + 2) >> 2 = 13 (3.25 for 3.33),
    # t=3: (106 + 2) >> 2 = 27 (6.75 for 6.67); e = s = 4 keeps 53 / 16 and 106 / 16
    assert lut.alpha_codes(5, 4, 2).tolist() == [0, 13, 27, 40, 40]
    assert lut.alpha_codes(4, 4, 4).tolist() == [0, 53, 106, 160]
    with pytest.raises(InputError, match="extra"):
        lut.alpha_codes(4, 4, 5)


def test_lut_interpolation_within_half_an_lsb_plus_slope_error():
    rng = np.random.default_rng(3)
    t = np.unique(np.r_[1, rng.integers(2, 300, 20), 300])
    lut = table(t, rng.integers(0, 2**12, t.size), 9, 3)
    exact = lut.decoded_alpha(300) * 2**lut.fmt.frac_bits  # in codes
    for s, e in ((4, 0), (8, 0), (16, 0), (16, 8), (16, 16)):
        got = lut.alpha_codes(300, s, e) / 2**e
        bound = 2.0 ** -(e + 1) + np.diff(t).max() / 2 ** (s + 1)
        assert np.max(np.abs(got - exact)) <= bound
        assert np.array_equal(got[t - 1], lut.codes)  # breakpoints are exact


def test_the_unit_decodes_the_lut_as_the_fusion_stage_does():
    pwl = fusion.PiecewiseLinearAlpha(np.array([1, 7, 20, 40]), np.array([0.0, 3.3, 120.25, 0.7]))
    lut = fusion.lut_from_pwl(pwl, fusion.FixedPoint(7, 3))
    assert lut.codes.tolist() == [0, 26, 962, 6]  # round half up: 3.3 x 8 = 26.4, 0.7 x 8 = 5.6
    # the unit's float reference is the schedule the fusion stage decides with, bit for bit
    assert np.array_equal(lut.decoded_alpha(50), fusion.lut_schedule(lut, 50).alpha)
    # t = 10 lies 3/13 of the way from t = 7 (26/8) to t = 20 (962/8)
    assert lut.decoded_alpha(10)[9] == pytest.approx((26 + 3 / 13 * (962 - 26)) / 8)
    again = AlphaLUT.from_dict(lut.to_dict())
    assert np.array_equal(again.t, lut.t) and again.fmt == FixedPoint(7, 3)


def test_lut_table_refuses_bad_tables():
    with pytest.raises(InputError, match="increasing"):
        table(np.array([1, 1]), np.array([0, 0]), 2, 0)
    with pytest.raises(InputError, match="outside"):
        table(np.array([1, 2]), np.array([0, 4]), 2, 0)
    with pytest.raises(InputError, match=">= 1"):
        table(np.array([0, 2]), np.array([0, 1]), 2, 0)


# ------------------------------------------------------------------ decisions


@settings(max_examples=300, deadline=None)
@given(
    a=st.one_of(st.integers(0, 2**63 - 1), st.integers(2**62, 2**63 - 1)),
    b=st.one_of(st.integers(0, 2**63 - 1), st.integers(2**62, 2**63 - 1)),
)
def test_wide_product_is_exact(a, b):
    high, low = _wide_product(a, b)
    assert (int(high) << 64) | int(low) == a * b


@pytest.mark.parametrize("rule", list(TerminationRule))
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_cross_multiply_equals_exact_rationals(rule, seed):
    rng = np.random.default_rng(seed)
    n_t, n_c = 12, 4
    fc, ic = random_counts(rng, 6, n_t, n_c, rate=rng.uniform(0.05, 1.0))
    frac_bits = int(rng.integers(0, 4))
    codes = rng.integers(0, 2 ** (3 + frac_bits), n_t)
    codes[rng.random(n_t) < 0.3] = 0  # alpha = 0: the FC alone, ties of equal counts
    unit = FusionUnit(config(counter_bits=3, score_frac_bits=6), per_step_lut(codes, 3, frac_bits))
    got = unit.decide(fc, ic, rule)
    dec, conf = ref_unit(fc, ic, codes, frac_bits, 3, 6, rule)
    assert np.array_equal(got.decision, dec)
    assert np.array_equal(got.confidence, conf)


def test_cross_multiply_is_exact_beyond_64_bit_products():
    # 16-bit counters, LUT format 14.8, T = 3000: num ~2^36 and den ~2^45 at the last steps
    rng = np.random.default_rng(7)
    n_t = 3000
    fc, ic = random_counts(rng, 3, n_t, 4, rate=0.9)
    codes = rng.integers(2**20, 2**22, n_t)
    unit = FusionUnit(config(), per_step_lut(codes, 14, 8))
    assert unit.widths(n_t).cross_product_bits > 64
    for rule in TerminationRule:
        got = unit.decide(fc, ic, rule)
        last = slice(n_t - 20, n_t)
        dec, conf = ref_unit(fc[:, last], ic[:, last], codes[last], 8, 16, 16, rule, n_t - 19)
        assert np.array_equal(got.decision[:, last], dec)
        assert np.array_equal(got.confidence[:, last], conf)


def test_a_datapath_wider_than_63_bits_is_refused():
    lut = per_step_lut([0, 1], 40, 8)
    unit = FusionUnit(config(counter_bits=20, score_frac_bits=32), lut)
    with pytest.raises(ConfigError, match="63 bits"):
        unit.widths(2)
    wide = FusionUnit(
        config(lut_slope_frac_bits=4, alpha_extra_frac_bits=5), per_step_lut([0], 2, 0)
    )
    with pytest.raises(ConfigError, match="alpha_extra_frac_bits"):
        wide.decide(np.zeros((1, 1, 2), np.int32), np.zeros((1, 1, 2), np.int32))


def _float_decisions(fc, ic, alpha):
    n = np.arange(1, fc.shape[1] + 1)[None, :, None]
    return fusion.decide(fusion.posterior(fc, ic, n, np.asarray(alpha)[None, :, None]))


def test_divider_with_many_fraction_bits_agrees_with_the_float_fusion():
    rng = np.random.default_rng(11)
    fc, ic = random_counts(rng, 200, 40, 10, rate=0.5)
    pwl = fusion.PiecewiseLinearAlpha(np.array([1, 10, 25, 40]), np.array([0.0, 12.5, 3.0, 0.25]))
    lut = fusion.lut_from_pwl(pwl, fusion.FixedPoint(5, 2))
    unit = FusionUnit(
        config(counter_bits=10, score_frac_bits=40, compare=FusionCompare.DIVIDER), lut
    )
    # the float path given the unit's own alpha(t): only the compare differs
    alpha = unit.alpha_codes(40) * 2.0**-unit.alpha_frac_bits
    float_dec = _float_decisions(fc, ic, alpha)
    fixed = unit.decide(fc, ic)
    assert np.array_equal(fixed.decision, float_dec)
    assert (float_dec < 0).sum() > 0  # ties exist and are found alike


def test_mismatch_is_counted_where_the_rounded_alpha_flips_the_decision():
    # LUT 1 -> 2 over t = 1..21 (format 2.0), alpha rounded to the LSB (e = 0): at t = 10 the
    # float alpha is 1.45, the unit's 1 + ((round(2^16 / 20) 9 + 2^15) >> 16) = 1. From t = 2
    # on class 0 has
    # (M, K) = (2, 1), class 1 (1, 2): N p0 = (a + 2) / (a + 1), N p1 = 2 (a + 1) / (a + 2),
    # equal at a = sqrt 2: a = 1 picks class 0 (1.5 > 1.33), a = 1.45 class 1 (1.408 < 1.420).
    fc = np.zeros((1, 10, 2), np.int32)
    ic = np.zeros((1, 10, 2), np.int32)
    fc[0, 0] = [1, 0]  # t = 1: FC class 0; IC classes 0 and 1
    ic[0, 0] = [1, 1]
    fc[0, 1:] = [2, 1]  # t = 2: FC classes 0 and 1; IC class 1
    ic[0, 1:] = [1, 2]
    lut = table(np.array([1, 21]), np.array([1, 2]), 2, 0)
    unit = FusionUnit(config(alpha_extra_frac_bits=0), lut)
    assert unit.alpha_codes(10).tolist() == [1] * 10
    alpha = lut.decoded_alpha(10)
    assert alpha[9] == pytest.approx(1.45)
    float_dec = _float_decisions(fc, ic, alpha)
    assert float_dec[0].tolist() == [0] * 9 + [1]
    check = check_against_float(unit, fc, ic, np.array([0]), float_dec)
    assert check.mismatches == 1
    assert check.mismatches_per_step.tolist() == [0] * 9 + [1]
    assert check.accuracy_fixed.tolist() == [1.0] * 10
    assert check.accuracy_float.tolist() == [1.0] * 9 + [0.0]
    assert check.alpha_steps_differing == 9  # t = 2..10 lie between breakpoints
    assert (check.ties_fixed, check.ties_float, check.clipped) == (0, 0, 0)
    assert check.mismatch_fraction == pytest.approx(0.1)
    # with 8 extra alpha bits a(10) = 256 + ((3277 x 9 + 128) >> 8) = 371 / 256 = 1.449: agrees
    finer = FusionUnit(config(alpha_extra_frac_bits=8), lut)
    assert finer.alpha_codes(10)[9] == 371
    assert check_against_float(finer, fc, ic, np.array([0]), float_dec).mismatches == 0


def test_divider_with_few_fraction_bits_ties_where_the_float_path_decides():
    # silent IC, FC 6 vs 7 spikes in 10 steps: p = 0.6, 0.7; F = 1: both floor to 1 (tie)
    fc = np.zeros((1, 10, 2), np.int32)
    fc[0, :, 0] = np.r_[np.arange(1, 7), [6] * 4]
    fc[0, :, 1] = np.r_[np.arange(1, 8), [7] * 3]
    ic = np.zeros_like(fc)
    lut = table(np.array([1]), np.array([3]), 2, 0)
    float_dec = _float_decisions(fc, ic, lut.decoded_alpha(10))
    assert float_dec[0].tolist() == [-1] * 6 + [1] * 4
    coarse = FusionUnit(config(compare=FusionCompare.DIVIDER, score_frac_bits=1), lut)
    check = check_against_float(coarse, fc, ic, np.array([1]), float_dec)
    # t = 7..10: p = (6/7, 7/7), (6/8, 7/8), (6/9, 7/9), (6/10, 7/10) -> q = (1, 2), (1, 1),
    # (1, 1), (1, 1): the last three tie in the divider, not in the float path
    assert check.mismatches_per_step.tolist() == [0] * 7 + [1, 1, 1]
    assert check.ties_fixed == 9 and check.ties_float == 6
    exact = FusionUnit(config(compare=FusionCompare.CROSS_MULTIPLY), lut)
    assert check_against_float(exact, fc, ic, np.array([1]), float_dec).mismatches == 0


def test_counters_saturate():
    # 2-bit counters hold 3: FC 5 vs 4 spikes in 5 steps both read 3, a tie (no decision)
    fc = np.zeros((1, 5, 2), np.int32)
    fc[0, :, 0] = [1, 2, 3, 4, 5]
    fc[0, :, 1] = [1, 2, 3, 4, 4]
    ic = np.zeros_like(fc)
    lut = table(np.array([1]), np.array([0]), 1, 0)
    small = FusionUnit(config(counter_bits=2), lut).decide(fc, ic)
    assert small.decision[0].tolist() == [-1, -1, -1, -1, -1]
    assert small.clipped == 2 + 2  # both classes at t = 4 and t = 5
    wide = FusionUnit(config(counter_bits=3), lut).decide(fc, ic)
    assert wide.decision[0].tolist() == [-1, -1, -1, -1, 0] and wide.clipped == 0
    head = head_decisions(fc, TerminationRule.MARGIN, counter_bits=2)
    assert head.decision[0, -1] == -1 and head.clipped == 4
    assert head_decisions(fc, TerminationRule.MARGIN).decision[0, -1] == 0


def test_heads_alone_and_early_exit_match_the_float_paths():
    rng = np.random.default_rng(5)
    fc, ic = random_counts(rng, 50, 30, 5)
    labels = rng.integers(0, 5, 50)
    dl = head_decisions(fc, TerminationRule.MARGIN)
    assert np.array_equal(dl.decision, fusion.decide(fc))
    sl = head_decisions(ic, TerminationRule.MARGIN)
    margin = fusion.ic_margin(ic)
    assert np.array_equal(sl.confidence, np.where(sl.decision >= 0, margin, -1))
    post = head_decisions(fc, TerminationRule.POSTERIOR, score_frac_bits=8)
    top = fc.max(axis=-1)
    expect = [
        [math.floor(Fraction(int(top[i, t]), t + 1) * 256) for t in range(30)] for i in range(50)
    ]
    assert np.array_equal(post.confidence, np.where(post.decision >= 0, expect, -1))
    ee = fusion.tune_early_exit(fc, ic, labels)
    got = early_exit_decisions(fc, ic, ee.threshold, TerminationRule.MARGIN)
    assert np.array_equal(got.decision, ee.decide(fc, ic))


# ------------------------------------------------------------------ cycles and events


def test_cycles_from_the_config():
    lut = table(np.array([1]), np.array([0]), 1, 0)
    unit = FusionUnit(config(lut_cycles=3, cycles_per_class=2), lut)
    c = unit.decision_cycles(10)
    assert (c.lut, c.classes, c.divider, c.termination, c.total) == (3, 20, 0, 2, 25)
    assert unit.decision_cycles(10, terminate=False).total == 23
    div = FusionUnit(config(compare=FusionCompare.DIVIDER, score_frac_bits=12), lut)
    div = div.decision_cycles(10)
    assert div.divider == 10 * 13 and div.total == 1 * 2 + 10 * 1 + 130 + 1
    explicit = FusionUnit(config(compare=FusionCompare.DIVIDER, divider_cycles_per_class=4), lut)
    assert explicit.decision_cycles(10).divider == 40
    margin = FusionUnit(config(termination=TerminationRule.MARGIN), lut).decision_cycles(10)
    assert margin.divider == 2 * 17  # the top-2 divisions, default 16 + 1 cycles each
    assert unit.counting_cycles(np.array([3, 0, 5]), np.array([1, 4, 5])).tolist() == [3, 4, 5]
    shipped = load_arch(SPIKESIM_YAML).fusion_unit
    assert FusionUnit(shipped, lut).decision_cycles(10).total == 2 + 10 + 1


def test_events_per_decision_and_energy():
    lut = table(np.array([1]), np.array([0]), 1, 0)
    unit = FusionUnit(CONFIG, lut)
    c = 10
    events = unit.events_per_decision(c)
    # 1 interpolation + 1 (a N) + 2 per class + 2 per argmax compare + 1 (threshold x den)
    assert events == {"counter_increment": 0, "lut_read": 1, "multiply": 4 * c + 1, "compare": c}
    # without the stop test: neither the threshold's multiply nor its compare
    plain = unit.events_per_decision(c, terminate=False)
    assert plain == {**events, "multiply": 4 * c, "compare": c - 1}
    assert unit.energy_per_decision_pj(c) == pytest.approx(1.0 + 41 * 0.8 + 10 * 0.05)
    margin = FusionUnit(config(termination=TerminationRule.MARGIN), lut).events_per_decision(c)
    assert margin["multiply"] == 2 + 2 * c + 4 * (c - 1)
    assert margin["compare"] == 2 * (c - 1) + 2 * 17 + 2
    div = FusionUnit(config(compare=FusionCompare.DIVIDER, score_frac_bits=8), lut)
    div = div.events_per_decision(c)
    assert div["multiply"] == 2 + 2 * c and div["compare"] == c * 9 + (c - 1) + 1
    act = fusion_events(CONFIG, c, np.array([4.0, 6.0]), np.array([1.0, 0.0]), 3, np.array([3, 1]))
    assert act.events.tolist() == [[5, 3, 3 * 41, 30], [6, 1, 41, 10]]
    pj = charge_fusion_pj(act.events, CONFIG).sum(axis=1)
    assert pj.tolist() == pytest.approx([5 * 0.05 + 3 * 34.3, 6 * 0.05 + 34.3])


def test_running_images():
    assert running_images(np.array([1, 3, 3, 5]), 5).tolist() == [4, 3, 3, 1, 1]


# ------------------------------------------------- early termination on the unit's decisions


def test_early_termination_on_fused_decisions_keeps_the_target():
    # the label's neuron fires at 0.6 per step in both heads, the others at 0.1
    rng = np.random.default_rng(2)
    n_c, n_t = 4, 40
    labels = rng.integers(0, n_c, 300)
    rate = np.full((300, 1, n_c), 0.1)
    rate[np.arange(300), 0, labels] = 0.6
    fc = np.cumsum(rng.random((300, n_t, n_c)) < rate, axis=1, dtype=np.int32)
    ic = np.cumsum(rng.random((300, n_t, n_c)) < rate, axis=1, dtype=np.int32)
    lut = table(np.array([1, 40]), np.array([20, 0]), 5, 0)
    unit = FusionUnit(config(termination=TerminationRule.MARGIN), lut)
    val, test = unit.decide(fc[:150], ic[:150]), unit.decide(fc[150:], ic[150:])
    target = 0.95 * val.accuracy(labels[:150])[-1]
    res = early_termination("BSF-Grid", val, labels[:150], test, labels[150:], target)
    assert res.stop.target_met and res.stop.accuracy >= target
    assert res.stop.threshold is not None and res.mean_stop < n_t  # stops early on average
    assert res.stop_step.shape == (150,) and res.p99_stop <= n_t
    stop, answer = stop_at(test, res.stop.threshold)
    assert np.array_equal(stop, res.stop_step) and res.accuracy == (answer == labels[150:]).mean()


# ------------------------------------------------------------------ configuration


def test_new_fusion_unit_keys_load_with_defaults_and_are_checked(tmp_path):
    arch = load_arch(SPIKESIM_YAML)
    unit = arch.fusion_unit
    assert unit.compare is FusionCompare.CROSS_MULTIPLY
    assert unit.termination is TerminationRule.POSTERIOR
    assert (unit.counter_bits, unit.score_frac_bits, unit.lut_slope_frac_bits) == (16, 16, 16)
    assert unit.divider_cycles == 17 and unit.counter_cycles_per_spike == 1
    raw = yaml.safe_load(SPIKESIM_YAML.read_text())
    for key in ("counter_bits", "compare", "termination", "score_frac_bits"):
        raw["fusion_unit"].pop(key, None)
    path = tmp_path / "defaults.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_arch(path).fusion_unit.counter_bits == 16
    for key, value, expected in (
        ("compare", "divide", "cross_multiply"),
        ("termination", 3, "margin"),
        ("counter_bits", 0, "1..31"),
        ("score_frac_bits", 33, "1..32"),
        ("divider_cycles_per_class", 0, "1.."),
    ):
        bad = yaml.safe_load(SPIKESIM_YAML.read_text())
        bad["fusion_unit"][key] = value
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(ArchConfigError, match=f"fusion_unit.{key}.*{expected}"):
            load_arch(path)


def test_events_of_a_unit_reading_heads_without_fusion():
    # DL or SL: argmax over C classes (C - 1 compares), no LUT; the posterior stop test
    # compares top count x 2^F with Theta t (1 multiply, 1 compare)
    c = 10
    one = decision_events(CONFIG, c, terminate=True, heads=1)
    assert one == {"counter_increment": 0, "lut_read": 0, "multiply": 1, "compare": c}
    # Early-Exit: both heads' argmax and the IC's runner-up, then the same stop test
    two = decision_events(CONFIG, c, terminate=True, heads=2)
    assert two["compare"] == 3 * (c - 1) + 1 and two["lut_read"] == 0
    assert decision_events(CONFIG, c, terminate=False, heads=1)["multiply"] == 0
