"""Every method at once: tune the fusion and early-exit parameters on tuning images
(`tune_methods`, with its settings in a `TuningConfig`), then compare all methods image by image
on test counts (`compare_methods`). One tie rule (`TuningConfig.ties`, kept in the `Tuning`)
credits a tied top class in every tuning step and every method's test credits."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from hwsim.errors import InputError
from hwsim.fixed_point import AlphaLUT
from hwsim.fusion.alpha_search import (
    DEFAULT_ALPHA_GRID,
    AlphaSchedule,
    _method,
    grid_search_alpha,
)
from hwsim.fusion.early_exit import EarlyExit, tune_early_exit
from hwsim.fusion.empirical_bayes import empirical_bayes_alpha, entry_mean_alpha
from hwsim.fusion.lut import (
    ApproximationReport,
    FitMethod,
    LossBudget,
    LUTChoice,
    PiecewiseLinearAlpha,
    approximation_of,
    choose_lut,
    lut_schedule,
)
from hwsim.fusion.posterior import Estimator, argmax_credit, cumulative, readout_chunks
from hwsim.methods import METHODS, Decision, EvidencePooling, Method, Ties, fused_methods


@dataclass(frozen=True)
class TuningConfig:
    """How every method is tuned: the estimator (eq. 29 MAP or the posterior mean) and, through
    it, the prior eq. 30 uses; empirical-Bayes pooling; the alpha grid; the PWL fit; the knot
    spacings and fraction bits the LUT is chosen from and the accuracy loss it may cost; and
    the tie rule every accuracy (grid search, LUT choice, early-exit thresholds) and every test
    credit uses (`ties`; empirical Bayes reads no labels)."""

    estimator: Estimator = Estimator.MEAN
    pooling: EvidencePooling = EvidencePooling.JOINT
    grid: tuple[float, ...] = DEFAULT_ALPHA_GRID
    fit: FitMethod = FitMethod.SAMPLE
    knot_steps: tuple[int, ...] = (1, 2, 5, 10, 20, 50)
    frac_bits: tuple[int, ...] = tuple(range(9))
    budget: LossBudget = field(default_factory=LossBudget)
    ties: Ties = field(default_factory=Ties)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (a stored tuning is reused only if made with the same)."""
        return {
            "estimator": str(self.estimator),
            "pooling": str(self.pooling),
            "grid": [float(a) for a in self.grid],
            "fit": str(self.fit),
            "knot_steps": list(self.knot_steps),
            "frac_bits": list(self.frac_bits),
            "budget": {"knots": self.budget.knots, "quantisation": self.budget.quantisation},
            "loss_horizon": "first step at 99% of the exact schedule's best accuracy",
            "ties": str(self.ties),
        }


@dataclass(frozen=True)
class Tuning:
    """What is tuned on the tuning images for one IC: alpha(t) per fusion method (exact, its
    PWL fit and the fixed-point LUT the chip stores, with how the LUT was chosen) and the
    early-exit thresholds, under the tie rule `ties` (which the test credits then use)."""

    schedules: dict[Method, AlphaSchedule]  # exact per-step alpha: BSF_GRID, BSF_EMP
    pwl: dict[Method, PiecewiseLinearAlpha]
    luts: dict[Method, AlphaLUT]
    early_exit: EarlyExit
    lut_choice: dict[Method, LUTChoice]
    ties: Ties

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form, keyed by method names (an infinite early-exit threshold is
        stored as null)."""
        return {
            "schedules": {
                str(k): {
                    "alpha": s.alpha.tolist(),
                    "method": str(s.method),
                    "estimator": str(s.estimator),
                }
                for k, s in self.schedules.items()
            },
            "pwl": {str(k): p.to_dict() for k, p in self.pwl.items()},
            "luts": {str(k): lut.to_dict() for k, lut in self.luts.items()},
            "lut_choice": {str(k): c.to_dict() for k, c in self.lut_choice.items()},
            "early_exit_threshold": [
                None if math.isinf(v) else float(v) for v in self.early_exit.threshold
            ],
            "ties": str(self.ties),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Tuning:
        schedules = {
            Method(k): AlphaSchedule(
                np.asarray(v["alpha"], np.float64), _method(v["method"]), Estimator(v["estimator"])
            )
            for k, v in d["schedules"].items()
        }
        thr = np.array([np.inf if v is None else v for v in d["early_exit_threshold"]], float)
        return cls(
            schedules,
            {Method(k): PiecewiseLinearAlpha.from_dict(v) for k, v in d["pwl"].items()},
            {Method(k): AlphaLUT.from_dict(v) for k, v in d["luts"].items()},
            EarlyExit(thr),
            {Method(k): LUTChoice.from_dict(v) for k, v in d["lut_choice"].items()},
            Ties.parse(d["ties"]),
        )


def tune_alpha(
    decision: Decision,
    tune_fc: np.ndarray,
    tune_ic: np.ndarray,
    tune_labels: np.ndarray,
    config: TuningConfig,
    image_ids: np.ndarray | None = None,
) -> AlphaSchedule:
    """alpha(t) of a fused decision on cumulative counts (N, T, C) of the tuning images: by
    grid search (`FUSED_GRID`, ties credited by config.ties), or by empirical Bayes pooled by
    config.pooling."""
    if decision is Decision.FUSED_GRID:
        return grid_search_alpha(
            tune_fc, tune_ic, tune_labels, config.grid, config.estimator, config.ties, image_ids
        )
    if decision is not Decision.FUSED_EMPIRICAL_BAYES:
        raise InputError(f"decision {decision}: expected a fused one (no alpha to tune)")
    if EvidencePooling(config.pooling) is EvidencePooling.JOINT:
        return empirical_bayes_alpha(tune_fc, tune_ic, config.estimator).schedule
    return entry_mean_alpha(tune_fc, tune_ic, config.estimator)


def tune_methods(
    tune_fc: np.ndarray,
    tune_ic: np.ndarray,
    tune_labels: np.ndarray,
    config: TuningConfig | None = None,
    image_ids: np.ndarray | None = None,
) -> Tuning:
    """Tune alpha(t) by grid search and empirical Bayes (pooled by config.pooling), choose each
    one's PWL knots and LUT format by the accuracy they cost (`choose_lut`), and tune early
    exit, all on cumulative counts (N, T, C) of the tuning images, every accuracy crediting
    ties by config.ties (`image_ids`: the images' ids for the random rule's draws, default
    0..N-1)."""
    cfg = TuningConfig() if config is None else config
    schedules = {
        m: tune_alpha(METHODS[m].decision, tune_fc, tune_ic, tune_labels, cfg, image_ids)
        for m in fused_methods()
    }
    chosen = {
        k: choose_lut(
            s,
            tune_fc,
            tune_ic,
            tune_labels,
            knot_steps=cfg.knot_steps,
            frac_bits=cfg.frac_bits,
            fit=cfg.fit,
            budget=cfg.budget,
            ties=cfg.ties,
            image_ids=image_ids,
        )
        for k, s in schedules.items()
    }
    return Tuning(
        schedules,
        {k: c[0] for k, c in chosen.items()},
        {k: c[1] for k, c in chosen.items()},
        tune_early_exit(tune_fc, tune_ic, tune_labels, cfg.ties, image_ids),
        {k: c[2] for k, c in chosen.items()},
        cfg.ties,
    )


@dataclass(frozen=True)
class Correctness:
    """Per image and timestep, each method's credit: (N, T) arrays in [0, 1] (1 right, 0 wrong,
    a tied top class credited by the tuning's tie rule; `CREDIT_DTYPE`).

    `methods`: every `Method` (fused ones through the LUT, as the chip runs them); `exact` and
    `pwl`: the fused methods with the exact per-step alpha and with the float PWL."""

    methods: dict[Method, np.ndarray]
    exact: dict[Method, np.ndarray]
    pwl: dict[Method, np.ndarray]


def correctness(
    tuning: Tuning,
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    image_ids: np.ndarray | None = None,
) -> Correctness:
    """Every method's per-image credits on cumulative counts (N, T, C) under `tuning`, by its
    `Decision` (`hwsim.methods.METHODS`): one head's argmax, the fusion through the LUT (and,
    in `exact` and `pwl`, with the exact per-step alpha and the float PWL) or the early-exit
    switch; a tied top class credited by tuning.ties (`image_ids`: for the random rule's
    draws, default 0..N-1)."""
    fc, ic = np.asarray(fc_cum), np.asarray(ic_cum)
    n_t = fc.shape[1]
    ties = tuning.ties

    def fused(s: AlphaSchedule) -> np.ndarray:
        return s.correct(fc, ic, labels, ties, image_ids)

    exact = {k: fused(s) for k, s in tuning.schedules.items()}
    pwl = {k: fused(tuning.pwl[k].schedule(n_t)) for k in tuning.schedules}
    methods = {}
    for m, spec in METHODS.items():
        if spec.fused:
            methods[m] = fused(lut_schedule(tuning.luts[m], n_t))
        elif spec.decision is Decision.EARLY_EXIT:
            methods[m] = tuning.early_exit.credit(fc, ic, labels, ties, image_ids)
        else:
            head = fc if spec.decision is Decision.FC_ARGMAX else ic
            methods[m] = argmax_credit(head, labels, ties, image_ids)
    return Correctness(methods, exact, pwl)


@dataclass(frozen=True)
class FusionComparison:
    """Test decisions of every `Method` (in `METHODS` order) under tuned parameters.

    `correct[m]` (N, T) per test image, the credit in [0, 1] of its decision (tied top classes
    credited by tuning.ties); BSF methods through the LUT unless
    compare_methods had use_lut=False; `exact[m]` the fused methods with the exact alpha.
    `tuning` is the tuning shown in reports; with cross-fitting (`folds` > 0) it is fold 1's,
    and `fold_tunings` holds every fold's (each image was decided by the tuning of the folds
    it was not in). `approximation[m]` has the exact-alpha, PWL and LUT accuracies.
    """

    correct: dict[Method, np.ndarray]
    exact: dict[Method, np.ndarray]
    tuning: Tuning
    approximation: dict[Method, ApproximationReport]  # on the test images
    folds: int = 0
    fold_tunings: tuple[Tuning, ...] = ()

    @cached_property
    def accuracy(self) -> dict[Method, np.ndarray]:
        """Test accuracy (T,) per method."""
        return {m: c.mean(axis=0, dtype=np.float64) for m, c in self.correct.items()}

    @cached_property
    def accuracy_exact(self) -> dict[Method, np.ndarray]:
        """Test accuracy (T,) of the fused methods with the exact per-step alpha."""
        return {m: c.mean(axis=0, dtype=np.float64) for m, c in self.exact.items()}


def comparison_of(
    tuning: Tuning,
    decided: Correctness,
    use_lut: bool = True,
    folds: int = 0,
    fold_tunings: tuple[Tuning, ...] = (),
) -> FusionComparison:
    """A FusionComparison from per-image decisions; the alpha errors in the approximation
    reports are `tuning`'s."""
    n_t = next(iter(decided.methods.values())).shape[1]
    approx = {
        k: approximation_of(
            s,
            tuning.pwl[k],
            tuning.luts[k],
            n_t,
            decided.exact[k].mean(axis=0, dtype=np.float64),
            decided.pwl[k].mean(axis=0, dtype=np.float64),
            decided.methods[k].mean(axis=0, dtype=np.float64),
        )
        for k, s in tuning.schedules.items()
    }
    correct = dict(decided.methods)
    if not use_lut:
        correct.update(decided.exact)
    return FusionComparison(correct, decided.exact, tuning, approx, folds, fold_tunings)


def compare_methods(
    tuning: Tuning,
    test_fc: np.ndarray,
    test_ic: np.ndarray,
    test_labels: np.ndarray,
    use_lut: bool = True,
    image_ids: np.ndarray | None = None,
) -> FusionComparison:
    """DL (FC alone), SL (IC alone), BSF-Grid, BSF-Emp and Early-Exit on the test counts
    (cumulative, (N, T, C)) with parameters tuned beforehand on other images (`tune_methods`),
    ties credited by the tuning's rule (`image_ids`: the images' ids for the random rule's
    draws, default 0..N-1). BSF curves use the LUT, as the chip runs them, unless use_lut is
    False."""
    decided = correctness(tuning, test_fc, test_ic, test_labels, image_ids)
    return comparison_of(tuning, decided, use_lut)


def compare_on_spikes(
    tuning: Tuning,
    test_fc: np.ndarray,
    test_ic: np.ndarray,
    test_labels: np.ndarray,
    use_lut: bool = True,
    image_ids: np.ndarray | None = None,
) -> FusionComparison:
    """`compare_methods` on the heads' spikes (N, T, C), counted and decided a chunk of images
    at a time (`readout_chunks`: every credit is an image's own, so the chunks change none):
    the cumulative counts and the decisions' temporaries of a chunk, not the test set, are
    held; the per-image credits (N, T) are kept."""
    ids = np.arange(len(test_labels)) if image_ids is None else np.asarray(image_ids)
    labels = np.asarray(test_labels)
    parts = [
        correctness(tuning, cumulative(test_fc[c]), cumulative(test_ic[c]), labels[c], ids[c])
        for c in readout_chunks(test_fc)
    ]

    def joined(field: str) -> dict[Method, np.ndarray]:
        first = getattr(parts[0], field)
        return {m: np.concatenate([getattr(p, field)[m] for p in parts]) for m in first}

    decided = Correctness(joined("methods"), joined("exact"), joined("pwl"))
    return comparison_of(tuning, decided, use_lut)
