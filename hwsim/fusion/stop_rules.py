"""Early termination: a stop rule on a read-out's confidences, tuned on validation images and
applied to the test images (docs/hardware-model.md, "Confidence and early termination").

An image stops at the first step whose confidence reaches the threshold Theta and answers its
decision there (at T if it never does); Theta is tuned to stop as early as possible on average
while the tuning images' accuracy stays at the target (`tune_stop_rule`). The decisions and
confidences come from the fixed-point read-out of each method (`hwsim.fixed_point.
FixedDecisions`: the fusion unit's for the fused methods, one head's counters or the early-exit
switch for the others; `hwsim.pipeline.cycles` composes them), the same rule for every method,
reduced to each image's records of running-maximum confidence (`DecisionRecords`; a whole
`FixedDecisions` is reduced when given).
An image stops only at a decided step; one that runs to T and is tied there is credited by the
tie rule the caller gives (the run's, `Tuning.ties`, as every other accuracy; it needs the
read-out's top set at T, `FixedDecisions.final_top`, unless ties count as wrong). Without one,
`READOUT_TIES`: the read-out's own behaviour, a tied step has no decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import InputError
from hwsim.fixed_point import DecisionRecords, FixedDecisions
from hwsim.methods import Method, TieRule, Ties, credit_unit
from hwsim.metrics import Estimate, estimate, resampled_sums

READOUT_TIES = Ties(TieRule.WRONG)
"""The rule when the caller names none: a tied read-out gives no decision, so a tie at T earns
nothing (what the fixed-point read-out itself outputs)."""


@dataclass(frozen=True)
class StopRule:
    """A tuned stop rule: stop at the first step with a decision whose confidence >=
    `threshold` (None: never early, every image runs to T). `target_met`: the tuning images
    reached `target` accuracy with it; `accuracy` and `mean_stop` are theirs; `ties`: the tie
    rule their accuracy (and the test images') credits a tie at T by."""

    rule: str  # the confidences' termination rule (hwsim.hw.arch.TerminationRule)
    threshold: int | None
    unit: str
    target: float
    target_met: bool
    accuracy: float
    mean_stop: float
    candidates: int  # distinct thresholds with distinct outcomes examined, "never" included
    ties: Ties


ReadOut = FixedDecisions | DecisionRecords
"""A read-out as a stop rule takes it: whole, or reduced to its records."""


def as_records(decisions: ReadOut) -> DecisionRecords:
    """`decisions` reduced to its records (`FixedDecisions.records`) unless they are."""
    return decisions.records() if isinstance(decisions, FixedDecisions) else decisions


def stop_at(decisions: ReadOut, threshold: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the first step (1-based) whose confidence >= threshold (a tied step never
    qualifies), T if none; and its decision there. ((N,) int64, (N,) int64).

    The first such step is the image's first record (`DecisionRecords`) with value >=
    threshold: O(records)."""
    rec = as_records(decisions)
    stop = np.full(rec.images, rec.timesteps, np.int64)
    answer = rec.last_decision.astype(np.int64)
    if threshold is not None:
        first = rec.reaching(threshold)
        images = rec.record_images()[first]
        stop[images] = rec.step[first]
        answer[images] = rec.decision[first]
    return stop, answer


def _unit(decisions: DecisionRecords) -> int:
    """The credit unit of a read-out's classes (1 without its final top sets: whole credits)."""
    top = decisions.final_top
    return 1 if top is None else credit_unit(np.shape(top)[1])


def tune_stop_rule(
    decisions: ReadOut,
    labels: np.ndarray,
    target: float,
    ties: Ties | None = None,
    image_ids: np.ndarray | None = None,
) -> StopRule:
    """The threshold with the smallest mean stop step on these (validation) images among those
    whose accuracy (answers at the stop steps; a tie at T credited by `ties`, default
    `READOUT_TIES`) is
    >= target; equal ones go to the higher accuracy, then the larger threshold. If no threshold
    reaches the target, the one with the highest accuracy (then the smaller mean stop, the
    larger threshold), with target_met False: never stopping early is among the candidates, so
    that is at least the accuracy at T. Accuracies are summed in exact integer credit units.

    Exact over every integer threshold: an image's stop step changes only at its running
    maxima of confidence (its records, `DecisionRecords`), so the thresholds equal to a record
    value (and "never") are the only distinct outcomes, swept at once with difference arrays:
    O(records + N).
    """
    ties = READOUT_TIES if ties is None else ties
    rec = as_records(decisions)
    y = np.asarray(labels)
    n_img, n_t = rec.images, rec.timesteps
    if y.shape != (n_img,):
        raise InputError(f"labels {y.shape} do not match {n_img} images")
    if n_img == 0:
        raise InputError("tuning a stop rule needs at least one image")
    unit = _unit(rec)
    rec_i = rec.record_images()
    value = rec.value.astype(np.int64)
    # each record's previous one in its image, -1 before an image's first
    before = np.empty_like(value)
    before[1:] = value[:-1]
    before[rec.firsts()] = -1
    values = np.unique(value)
    n_cand = values.size + 1  # index values.size: never
    # a record (value v, previous record v_prev) decides thresholds v_prev < theta <= v
    lo = np.searchsorted(values, before, side="right")
    hi = np.searchsorted(values, value)
    ok = np.where(rec.decision == y[rec_i], float(unit), 0.0)  # a record is decided
    # thresholds above an image's maximum (its last record's, -1 if none): it runs to T
    has = np.diff(rec.offsets) > 0
    maximum = np.full(n_img, -1, np.int64)
    maximum[has] = value[rec.offsets[1:][has] - 1]
    last_lo = np.searchsorted(values, maximum, side="right")
    all_lo = np.concatenate([lo, last_lo])
    all_hi = np.concatenate([hi, np.full(n_img, values.size)])
    steps = np.concatenate([rec.step, np.full(n_img, n_t)]).astype(np.float64)
    right = np.concatenate([ok, rec.final_credit(y, ties, image_ids, unit)])

    def sweep(weights: np.ndarray) -> np.ndarray:
        d = np.bincount(all_lo, weights, n_cand + 1) - np.bincount(all_hi + 1, weights, n_cand + 1)
        return np.rint(np.cumsum(d)[:n_cand]).astype(np.int64)

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
    return StopRule(
        rule=rec.rule,
        threshold=None if r == values.size else int(values[r]),
        unit=rec.unit,
        target=float(target),
        target_met=bool(feasible.any()),
        accuracy=float(correct[r] / (unit * n_img)),
        mean_stop=float(stop_sum[r] / n_img),
        candidates=int(n_cand),
        ties=ties,
    )


@dataclass(frozen=True, eq=False)
class TerminationResult:
    """One method with early termination on the test images: per image the step it stopped
    at (1-based), its answer there and that answer's credit (a tie at T credited by the stop
    rule's tie rule); accuracy (the mean credit), mean and 99th-percentile stop step (an
    observed step: inverted-CDF quantile), and, if asked, paired-bootstrap percentile
    intervals of accuracy and mean stop (`hwsim.metrics.resampled_sums`: exact credit sums)."""

    method: Method | str
    stop: StopRule
    stop_step: np.ndarray  # (N,) int64
    decision: np.ndarray  # (N,) int64, -1: tied at its stop step (T)
    correct: np.ndarray  # (N,) float64 credit in [0, 1]
    accuracy: float
    mean_stop: float
    p99_stop: float
    accuracy_interval: Estimate | None = None
    mean_stop_interval: Estimate | None = None


def apply_stop_rule(
    method: Method | str,
    rule: StopRule,
    decisions: ReadOut,
    labels: np.ndarray,
    *,
    image_ids: np.ndarray | None = None,
    bootstrap: int = 0,
    level: float = 0.90,
    seed: int = 0,
) -> TerminationResult:
    """`rule` on these (test) images: stop steps, answers, their credit (a tie at T by
    rule.ties), accuracy, mean/p99 stop step; `bootstrap` > 0 resamples the images that many
    times for intervals at `level`. The records may be pruned to `rule`'s threshold
    (`DecisionRecords.first_reaching`)."""
    rec = as_records(decisions)
    if rec.rule != rule.rule:
        raise InputError(f"decisions carry {rec.rule} confidences, the rule is {rule.rule}")
    y = np.asarray(labels)
    if y.shape != (rec.images,):
        raise InputError(f"labels {y.shape} do not match {rec.images} images")
    stop, answer = stop_at(rec, rule.threshold)
    correct = np.where(stop < rec.timesteps, (answer == y).astype(np.float64), 0.0)
    at_end = stop == rec.timesteps
    if at_end.any():
        correct[at_end] = rec.final_credit(y, rule.ties, image_ids)[at_end]
    acc_ci = stop_ci = None
    if bootstrap > 0:
        hits, steps = resampled_sums([correct, stop], bootstrap, seed, _unit(rec))
        acc_ci = estimate(correct.mean(), hits / y.size, level)
        stop_ci = estimate(stop.mean(), steps / y.size, level)
    return TerminationResult(
        method=method,
        stop=rule,
        stop_step=stop,
        decision=answer,
        correct=correct,
        accuracy=float(correct.mean()),
        mean_stop=float(stop.mean()),
        p99_stop=float(np.quantile(stop, 0.99, method="inverted_cdf")),
        accuracy_interval=acc_ci,
        mean_stop_interval=stop_ci,
    )


def early_termination(
    method: Method | str,
    validation: ReadOut,
    validation_labels: np.ndarray,
    test: ReadOut,
    test_labels: np.ndarray,
    target: float,
    *,
    ties: Ties | None = None,
    validation_ids: np.ndarray | None = None,
    test_ids: np.ndarray | None = None,
    bootstrap: int = 0,
    level: float = 0.90,
    seed: int = 0,
) -> TerminationResult:
    """Tune the stop threshold on the validation images (`tune_stop_rule`, ties credited by
    `ties`, default `READOUT_TIES`) and apply it to the test images (`apply_stop_rule`), both
    read-outs of one method (`ReadOut`). `validation_ids`, `test_ids`: the images' ids
    in their data set (`Trace.image_indices`), which the random rule's draws follow (default
    0..N-1)."""
    rule = tune_stop_rule(validation, validation_labels, target, ties, validation_ids)
    return apply_stop_rule(
        method,
        rule,
        test,
        test_labels,
        image_ids=test_ids,
        bootstrap=bootstrap,
        level=level,
        seed=seed,
    )
