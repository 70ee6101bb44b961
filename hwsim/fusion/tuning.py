"""Every method at once: tune the fusion and early-exit parameters on a training subset
(`tune_methods`), then compare all methods on test counts (`compare_methods`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwsim.fusion.alpha_search import (
    DEFAULT_ALPHA_GRID,
    AlphaSchedule,
    _method,
    grid_search_alpha,
)
from hwsim.fusion.early_exit import EarlyExit, tune_early_exit
from hwsim.fusion.empirical_bayes import empirical_bayes_alpha, entry_mean_alpha
from hwsim.fusion.lut import (
    AlphaLUT,
    ApproximationReport,
    FixedPoint,
    PiecewiseLinearAlpha,
    approximation_report,
    breakpoints,
    fit_pwl,
)
from hwsim.fusion.posterior import Estimator, accuracy_over_time
from hwsim.methods import EvidencePooling, Method


@dataclass(frozen=True)
class Tuning:
    """What is tuned on the training subset for one IC: alpha(t) per fusion method (exact, its
    PWL fit and the fixed-point LUT the chip stores) and the early-exit thresholds."""

    schedules: dict[Method, AlphaSchedule]  # exact per-step alpha: BSF_GRID, BSF_EMP
    pwl: dict[Method, PiecewiseLinearAlpha]
    luts: dict[Method, AlphaLUT]
    early_exit: EarlyExit

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
            "early_exit_threshold": [
                None if math.isinf(v) else float(v) for v in self.early_exit.threshold
            ],
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
        )


def tune_methods(
    tune_fc: np.ndarray,
    tune_ic: np.ndarray,
    tune_labels: np.ndarray,
    grid: Sequence[float] = DEFAULT_ALPHA_GRID,
    estimator: Estimator = Estimator.MEAN,
    knots: np.ndarray | None = None,
    lut_format: FixedPoint | None = None,
    pooling: EvidencePooling = EvidencePooling.JOINT,
) -> Tuning:
    """Tune alpha(t) by grid search and empirical Bayes (pooled by `pooling`), fit the PWL on
    `knots` (default `breakpoints(T)`), quantise it to `lut_format`, and tune early exit, on
    cumulative counts (N, T, C) of a training subset."""
    n_t = np.asarray(tune_fc).shape[1]
    knots = breakpoints(n_t) if knots is None else knots
    schedules = {
        Method.BSF_GRID: grid_search_alpha(tune_fc, tune_ic, tune_labels, grid, estimator),
        Method.BSF_EMP: (
            empirical_bayes_alpha(tune_fc, tune_ic, estimator).schedule
            if EvidencePooling(pooling) is EvidencePooling.JOINT
            else entry_mean_alpha(tune_fc, tune_ic, estimator)
        ),
    }
    pwl = {k: fit_pwl(s, knots) for k, s in schedules.items()}
    luts = {k: AlphaLUT.from_pwl(p, lut_format or FixedPoint()) for k, p in pwl.items()}
    return Tuning(schedules, pwl, luts, tune_early_exit(tune_fc, tune_ic, tune_labels))


@dataclass(frozen=True)
class FusionComparison:
    """Test accuracy (T,) of every `Method` (in `METHODS` order) under a `Tuning`.

    BSF curves use the LUT (what the chip runs) unless compare_methods had use_lut=False;
    `approximation[name]` also has the exact-alpha and PWL curves.
    """

    accuracy: dict[Method, np.ndarray]
    tuning: Tuning
    approximation: dict[Method, ApproximationReport]  # on the test images


def compare_methods(
    tuning: Tuning,
    test_fc: np.ndarray,
    test_ic: np.ndarray,
    test_labels: np.ndarray,
    use_lut: bool = True,
) -> FusionComparison:
    """DL (FC alone), SL (IC alone), BSF-Grid, BSF-Emp and Early-Exit on the test counts
    (cumulative, (N, T, C)) with parameters tuned beforehand (`tune_methods`). BSF curves use
    the LUT, as the chip runs them, unless use_lut is False."""
    approx = {
        k: approximation_report(s, tuning.pwl[k], tuning.luts[k], test_fc, test_ic, test_labels)
        for k, s in tuning.schedules.items()
    }
    acc = {
        Method.DL: accuracy_over_time(np.asarray(test_fc), test_labels),
        Method.SL: accuracy_over_time(np.asarray(test_ic), test_labels),
    }
    for k in tuning.schedules:
        acc[k] = approx[k].accuracy_lut if use_lut else approx[k].accuracy_exact
    acc[Method.EARLY_EXIT] = tuning.early_exit.accuracy(test_fc, test_ic, test_labels)
    return FusionComparison(acc, tuning, approx)
