"""Bayesian spike fusion (Habara et al. 2024, section 5) and the early-exit baseline.

posterior: the fused estimate (eq. 29), decisions and accuracy; alpha_search: alpha(t)
schedules and their grid search; empirical_bayes: alpha(t) from the marginal likelihood
(eq. 30); lut: the PWL fit and fixed-point LUT the fusion unit stores; early_exit: the IC/FC
switch; tuning: every method tuned and compared at once.
"""

from hwsim.fusion.alpha_search import (
    DEFAULT_ALPHA_GRID,
    AlphaMethod,
    AlphaSchedule,
    grid_search_alpha,
)
from hwsim.fusion.early_exit import EarlyExit, ic_margin, tune_early_exit
from hwsim.fusion.empirical_bayes import (
    DEFAULT_EB_BOUNDS,
    ENTRY_MEAN_GRID,
    EmpiricalBayesResult,
    empirical_bayes_alpha,
    entry_mean_alpha,
    evidence_mask,
    log_evidence,
    prior_params,
)
from hwsim.fusion.lut import (
    AlphaLUT,
    ApproximationReport,
    FitMethod,
    FixedPoint,
    PiecewiseLinearAlpha,
    approximation_report,
    breakpoints,
    fit_pwl,
)
from hwsim.fusion.posterior import (
    Estimator,
    accuracy_of_decisions,
    accuracy_over_time,
    correct_counts,
    cumulative,
    decide,
    posterior,
    posterior_map,
    posterior_mean,
)
from hwsim.fusion.tuning import FusionComparison, Tuning, compare_methods, tune_methods

__all__ = [
    "DEFAULT_ALPHA_GRID",
    "DEFAULT_EB_BOUNDS",
    "ENTRY_MEAN_GRID",
    "AlphaLUT",
    "AlphaMethod",
    "AlphaSchedule",
    "ApproximationReport",
    "EarlyExit",
    "EmpiricalBayesResult",
    "Estimator",
    "FitMethod",
    "FixedPoint",
    "FusionComparison",
    "PiecewiseLinearAlpha",
    "Tuning",
    "accuracy_of_decisions",
    "accuracy_over_time",
    "approximation_report",
    "breakpoints",
    "compare_methods",
    "correct_counts",
    "cumulative",
    "decide",
    "empirical_bayes_alpha",
    "entry_mean_alpha",
    "evidence_mask",
    "fit_pwl",
    "grid_search_alpha",
    "ic_margin",
    "log_evidence",
    "posterior",
    "posterior_map",
    "posterior_mean",
    "prior_params",
    "tune_early_exit",
    "tune_methods",
]
