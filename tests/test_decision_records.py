"""A read-out reduced to its records (hwsim.fixed_point.DecisionRecords, issue 27) against the
whole (N, T) arrays it comes from: records and stop steps by plain loops, the tuned stop rule,
the applied rule (also on records pruned to its threshold) and the unit's float check by the
former numpy formulas on the whole arrays, equal to the bit; chunks concatenated or combined
equal the whole set."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.fixed_point import AlphaLUT, DecisionRecords, FixedDecisions, FixedPoint
from hwsim.fusion import apply_stop_rule, stop_at, tune_stop_rule
from hwsim.hw.arch import TerminationRule
from hwsim.hw.fusion_unit import FusionCheck, FusionUnit, float_check
from hwsim.methods import TieRule, Ties, credit_unit
from tests.test_fusion_unit import config

RULES = [Ties(TieRule.FAIR), Ties(TieRule.WRONG), Ties(TieRule.FIRST), Ties(TieRule.RANDOM, 5)]


def read_out(seed: int, n_img: int, n_t: int, n_c: int, top: int = 6) -> FixedDecisions:
    """Random decisions (-1: tied) and confidences in 0..top (-1 where tied), a quarter of the
    images tied at every step (they never stop), the top sets at T as a read-out gives them."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_c, n_img)
    dec = rng.integers(-1, n_c, (n_img, n_t))
    dec = np.where(rng.random((n_img, n_t)) < np.linspace(0.2, 0.9, n_t), labels[:, None], dec)
    dec[rng.random(n_img) < 0.25] = -1
    conf = np.where(dec >= 0, rng.integers(0, top + 1, (n_img, n_t)), -1).astype(np.int64)
    final_top = rng.random((n_img, n_c)) < 0.5
    final_top[np.arange(n_img), rng.integers(0, n_c, n_img)] = True
    final_top[np.arange(n_img), (rng.integers(0, n_c, n_img) + 1) % n_c] = True
    decided = dec[:, -1] >= 0
    final_top[decided] = np.eye(n_c, dtype=bool)[dec[decided, -1]]
    return FixedDecisions(dec.astype(np.int64), conf, TerminationRule.MARGIN, "spike", 3, final_top)


def labels_of(seed: int, n_img: int, n_c: int) -> np.ndarray:
    return np.random.default_rng(seed + 1).integers(0, n_c, n_img)


def plain_records(conf: np.ndarray, dec: np.ndarray) -> list[list[tuple[int, int, int]]]:
    """Per image, (step, value, decision) where its running maximum of confidence rises."""
    out = []
    for i in range(conf.shape[0]):
        best, rows = -1, []
        for t in range(conf.shape[1]):
            if conf[i, t] > best:
                best = int(conf[i, t])
                rows.append((t + 1, best, int(dec[i, t])))
        out.append(rows)
    return out


def old_stop_at(d: FixedDecisions, threshold: int | None) -> tuple[np.ndarray, np.ndarray]:
    """stop_at as it was on the whole arrays."""
    conf = d.confidence
    n_img, n_t = conf.shape
    if threshold is None:
        stop = np.full(n_img, n_t, np.int64)
    else:
        ok = (conf >= threshold) & (conf >= 0)
        stop = np.where(ok.any(axis=1), ok.argmax(axis=1) + 1, n_t).astype(np.int64)
    return stop, d.decision[np.arange(n_img), stop - 1]


def old_tune(d: FixedDecisions, y: np.ndarray, target: float, ties: Ties) -> tuple:
    """tune_stop_rule's sweep as it was on the whole arrays: (threshold, accuracy, mean stop,
    candidates, target met)."""
    conf, dec = d.confidence, d.decision
    n_img, n_t = conf.shape
    unit = credit_unit(d.final_top.shape[1])
    best = np.maximum.accumulate(conf, axis=1)
    before = np.concatenate([np.full((n_img, 1), -1, np.int64), best[:, :-1]], axis=1)
    rec_i, rec_t = np.nonzero(best > before)
    values = np.unique(best[rec_i, rec_t])
    n_cand = values.size + 1
    lo = np.searchsorted(values, before[rec_i, rec_t], side="right")
    hi = np.searchsorted(values, best[rec_i, rec_t])
    ok = np.where(dec[rec_i, rec_t] == y[rec_i], float(unit), 0.0)
    last_lo = np.searchsorted(values, best[:, -1], side="right")
    all_lo = np.concatenate([lo, last_lo])
    all_hi = np.concatenate([hi, np.full(n_img, values.size)])
    steps = np.concatenate([rec_t + 1, np.full(n_img, n_t)]).astype(np.float64)
    right = np.concatenate([ok, d.final_credit(y, ties, None, unit)])

    def sweep(w):
        s = np.bincount(all_lo, w, n_cand + 1) - np.bincount(all_hi + 1, w, n_cand + 1)
        return np.rint(np.cumsum(s)[:n_cand]).astype(np.int64)

    stop_sum, correct = sweep(steps), sweep(right)
    idx = np.arange(n_cand)
    feasible = correct / (unit * n_img) >= target
    if feasible.any():
        pool = idx[feasible]
        order = np.lexsort((-pool, -correct[pool], stop_sum[pool]))
    else:
        pool = idx
        order = np.lexsort((-pool, stop_sum, -correct))
    r = int(pool[order[0]])
    threshold = None if r == values.size else int(values[r])
    acc, mean = float(correct[r] / (unit * n_img)), float(stop_sum[r] / n_img)
    return threshold, acc, mean, int(n_cand), bool(feasible.any())


def chunks(d: FixedDecisions, size: int) -> DecisionRecords:
    """The records of `d` read `size` images at a time and concatenated."""
    n = d.decision.shape[0]
    parts = [
        FixedDecisions(
            d.decision[i : i + size],
            d.confidence[i : i + size],
            d.rule,
            d.unit,
            d.clipped if i == 0 else 0,
            d.final_top[i : i + size],
        ).records()
        for i in range(0, max(n, 1), size)
    ]
    return DecisionRecords.concatenate(parts)


def test_records_of_a_hand_made_read_out() -> None:
    # image 0 rises at steps 2 (3) and 4 (5), its ties (-1) and repeats are no records; image
    # 1 is tied throughout (never stops, no record); image 2 rises from 0 at step 1
    dec = np.array([[-1, 2, 2, 1, 0], [-1] * 5, [1, 1, 0, 0, 0]])
    conf = np.array([[-1, 3, 3, 5, 2], [-1] * 5, [0, 0, 1, 1, 4]])
    top = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0]], bool)
    d = FixedDecisions(dec, conf, TerminationRule.MARGIN, "spike", 2, top)
    rec = d.records()
    assert rec.offsets.tolist() == [0, 2, 2, 5]
    assert rec.step.tolist() == [2, 4, 1, 3, 5] and rec.step.dtype == np.int16
    assert rec.value.tolist() == [3, 5, 0, 1, 4] and rec.value.dtype == np.int16
    assert rec.decision.tolist() == [2, 1, 1, 0, 0] and rec.last_decision.tolist() == [0, -1, 0]
    assert (rec.images, rec.timesteps, rec.clipped) == (3, 5, 2)
    assert rec.first_reaching(4).step.tolist() == [4, 5]
    assert rec.first_reaching(4).offsets.tolist() == [0, 1, 1, 2]
    assert rec.first_reaching(None).offsets.tolist() == [0, 0, 0, 0]
    for theta, stops, answers in (
        (None, [5, 5, 5], [0, -1, 0]),
        (-3, [2, 5, 1], [2, -1, 1]),
        (0, [2, 5, 1], [2, -1, 1]),
        (4, [4, 5, 5], [1, -1, 0]),
        (6, [5, 5, 5], [0, -1, 0]),
        (10**12, [5, 5, 5], [0, -1, 0]),  # beyond the int16 values: compared exactly
        (-(10**12), [2, 5, 1], [2, -1, 1]),
    ):
        for form in (d, rec, rec.first_reaching(theta)):
            stop, answer = stop_at(form, theta)
            assert (stop.tolist(), answer.tolist()) == (stops, answers), theta
            assert stop.dtype == answer.dtype == np.int64


def test_wide_confidences_keep_their_values() -> None:
    # confidences beyond int32 (a 2^-32 score) are kept in int64, and compared exactly
    conf = np.array([[1, 2**40, 2**40 + 1], [-1, 5, 2**33]], np.int64)
    dec = np.array([[0, 1, 1], [-1, 0, 0]])
    rec = FixedDecisions(dec, conf, TerminationRule.POSTERIOR, "2^-32 score").records()
    assert rec.value.dtype == np.int64 and rec.value.tolist() == [1, 2**40, 2**40 + 1, 5, 2**33]
    assert stop_at(rec, 2**40 + 1)[0].tolist() == [3, 3]
    assert stop_at(rec, 2**33)[0].tolist() == [2, 3]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_img=st.integers(1, 30),
    n_t=st.integers(1, 12),
    size=st.integers(1, 7),
)
def test_records_are_the_running_maxima_of_every_chunk(seed, n_img, n_t, size) -> None:
    d = read_out(seed, n_img, n_t, 4)
    rec = d.records()
    want = plain_records(d.confidence, d.decision)
    assert np.diff(rec.offsets).tolist() == [len(r) for r in want]
    flat = [row for rows in want for row in rows]
    got = list(zip(rec.step.tolist(), rec.value.tolist(), rec.decision.tolist(), strict=True))
    assert got == flat
    assert rec.last_decision.tolist() == d.decision[:, -1].tolist()
    joined = chunks(d, size)
    for field in dataclasses.fields(DecisionRecords):
        np.testing.assert_array_equal(getattr(joined, field.name), getattr(rec, field.name))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_img=st.integers(1, 40),
    n_t=st.integers(1, 15),
    target=st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.9, 1.0]),
    ties=st.sampled_from(RULES),
    size=st.integers(1, 9),
)
def test_stop_rules_on_records_equal_the_whole_arrays(seed, n_img, n_t, target, ties, size):
    d = read_out(seed, n_img, n_t, 3, top=int(seed % 9))
    y = labels_of(seed, n_img, 3)
    rec = chunks(d, size)
    rule = tune_stop_rule(rec, y, target, ties)
    got = (rule.threshold, rule.accuracy, rule.mean_stop, rule.candidates, rule.target_met)
    assert got == old_tune(d, y, target, ties)
    thresholds = {None, rule.threshold, -1, 0, 3, int(d.confidence.max()) + 1}
    for theta in thresholds:
        want = old_stop_at(d, theta)
        for form in (rec, rec.first_reaching(theta)):
            for a, b in zip(stop_at(form, theta), want, strict=True):
                assert a.tolist() == b.tolist() and a.dtype == b.dtype
    # the rule on the test images: whole arrays, records, records pruned to its threshold
    whole = apply_stop_rule("m", rule, dataclasses.replace(d), y, bootstrap=20)
    stop, answer = old_stop_at(d, rule.threshold)
    correct = np.where(stop < n_t, (answer == y).astype(np.float64), 0.0)
    at_end = stop == n_t
    correct[at_end] = d.final_credit(y, ties)[at_end]
    assert whole.correct.tolist() == correct.tolist()
    for form in (rec, rec.first_reaching(rule.threshold)):
        res = apply_stop_rule("m", rule, form, y, bootstrap=20)
        for key in ("stop_step", "decision", "correct"):
            np.testing.assert_array_equal(getattr(res, key), getattr(whole, key), key)
        for key in ("accuracy", "mean_stop", "p99_stop", "accuracy_interval"):
            assert getattr(res, key) == getattr(whole, key), key


def test_images_that_never_stop_run_to_t_and_are_credited_there() -> None:
    # every step tied: no record, no candidate but "never"; the answer at T is the tie,
    # credited by the rule (fair: 1/2 for the label among two tied classes)
    dec = np.full((2, 4), -1)
    top = np.array([[1, 1, 0], [0, 1, 1]], bool)
    d = FixedDecisions(dec, np.full((2, 4), -1), TerminationRule.MARGIN, "spike", 0, top)
    y = np.array([0, 0])
    rec = d.records()
    assert rec.step.size == 0 and rec.offsets.tolist() == [0, 0, 0]
    rule = tune_stop_rule(rec, y, 0.2, Ties(TieRule.FAIR))
    assert (rule.threshold, rule.candidates, rule.accuracy, rule.target_met) == (
        None,
        1,
        0.25,
        True,
    )
    res = apply_stop_rule("m", rule, rec.first_reaching(None), y)
    assert res.stop_step.tolist() == [4, 4] and res.correct.tolist() == [0.5, 0.0]


def old_check(unit, fixed: FixedDecisions, y: np.ndarray, ref: np.ndarray) -> dict:
    """float_check's numbers as it computed them on the whole arrays."""
    differ = fixed.decision != ref
    return {
        "images": ref.shape[0],
        "mismatches": int(differ.sum()),
        "mismatches_per_step": differ.sum(axis=0).astype(np.int64),
        "ties_fixed": int(np.count_nonzero(fixed.decision < 0)),
        "ties_float": int(np.count_nonzero(ref < 0)),
        "accuracy_fixed": (fixed.decision == y[:, None]).mean(axis=0),
        "accuracy_float": (ref == y[:, None]).mean(axis=0),
        "clipped": fixed.clipped,
    }


@pytest.mark.parametrize("size", [1, 3, 7, 50])
def test_float_check_by_chunks_equals_the_whole_check(size) -> None:
    # random decisions against a float reference that differs at a tenth of the (image, step)
    rng = np.random.default_rng(size)
    n_img, n_t, n_c = 47, 13, 4
    d = read_out(size, n_img, n_t, n_c)
    ref = np.where(rng.random((n_img, n_t)) < 0.1, rng.integers(-1, n_c, (n_img, n_t)), d.decision)
    y = labels_of(size, n_img, n_c)
    lut = AlphaLUT(np.array([1, 5, 13]), np.array([40, 7, 3]), FixedPoint(6, 3))
    unit = FusionUnit(config(), lut)
    whole = float_check(unit, d, y, ref)
    parts = []
    for i in range(0, n_img, size):
        part = slice(i, i + size)
        piece = FixedDecisions(
            d.decision[part], d.confidence[part], d.rule, d.unit, d.clipped if i == 0 else 0
        )
        parts.append(float_check(unit, piece, y[part], ref[part]))
    joined = FusionCheck.combine(parts)
    for check in (whole, joined):
        for key, value in old_check(unit, d, y, ref).items():
            got = getattr(check, key)
            assert np.asarray(got).dtype == np.asarray(value).dtype, key
            np.testing.assert_array_equal(got, value, key)
        old = old_check(unit, d, y, ref)
        want = np.max(np.abs(old["accuracy_fixed"] - old["accuracy_float"]))
        assert check.max_accuracy_difference == float(want)
    assert joined.alpha_steps_differing == whole.alpha_steps_differing
    assert joined.mismatch_fraction == whole.mismatch_fraction
