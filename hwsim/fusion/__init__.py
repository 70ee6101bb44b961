"""Bayesian spike fusion (Habara et al. 2024, section 5) and the early-exit baseline.

posterior: the fused estimate (eq. 29), decisions and accuracy; alpha_search: alpha(t)
schedules and their grid search; empirical_bayes: alpha(t) from the marginal likelihood
(eq. 30); lut: the PWL fit and fixed-point LUT the fusion unit stores (the LUT type itself is
`hwsim.fixed_point.AlphaLUT`, shared with the fusion unit); early_exit: the IC/FC switch;
tuning: every method tuned and compared at once; stop_rules: early termination tuned on a
read-out's confidences; crossfit: where tuning images come from, and K-fold cross-fitting on the
test images.
"""

from hwsim.fixed_point import AlphaLUT, FixedPoint
from hwsim.fusion.alpha_search import (
    DEFAULT_ALPHA_GRID,
    AlphaMethod,
    AlphaSchedule,
    grid_search_alpha,
)
from hwsim.fusion.crossfit import TuneSource, cross_fit, fold_of
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
    ApproximationReport,
    FitMethod,
    LossBudget,
    LUTCandidate,
    LUTChoice,
    PiecewiseLinearAlpha,
    approximation_of,
    approximation_report,
    breakpoints,
    choose_lut,
    fit_pwl,
    int_bits_for,
    knot_layout,
    loss_horizon,
    lut_as_pwl,
    lut_from_pwl,
    lut_schedule,
    saturated,
)
from hwsim.fusion.posterior import (
    Estimator,
    accuracy_of_decisions,
    accuracy_over_time,
    correct_counts,
    correct_matrix,
    cumulative,
    decide,
    posterior,
    posterior_map,
    posterior_mean,
    tie_credit,
)
from hwsim.fusion.stop_rules import (
    StopRule,
    TerminationResult,
    apply_stop_rule,
    early_termination,
    stop_at,
    tune_stop_rule,
)
from hwsim.fusion.tuning import (
    Correctness,
    FusionComparison,
    Tuning,
    TuningConfig,
    compare_methods,
    comparison_of,
    correctness,
    tune_alpha,
    tune_methods,
)

__all__ = [
    "DEFAULT_ALPHA_GRID",
    "DEFAULT_EB_BOUNDS",
    "ENTRY_MEAN_GRID",
    "AlphaLUT",
    "AlphaMethod",
    "AlphaSchedule",
    "ApproximationReport",
    "Correctness",
    "EarlyExit",
    "EmpiricalBayesResult",
    "Estimator",
    "FitMethod",
    "FixedPoint",
    "FusionComparison",
    "LUTCandidate",
    "LUTChoice",
    "LossBudget",
    "PiecewiseLinearAlpha",
    "StopRule",
    "TerminationResult",
    "TuneSource",
    "Tuning",
    "TuningConfig",
    "accuracy_of_decisions",
    "accuracy_over_time",
    "apply_stop_rule",
    "approximation_of",
    "approximation_report",
    "breakpoints",
    "choose_lut",
    "compare_methods",
    "comparison_of",
    "correct_counts",
    "correct_matrix",
    "correctness",
    "cross_fit",
    "cumulative",
    "decide",
    "early_termination",
    "empirical_bayes_alpha",
    "entry_mean_alpha",
    "evidence_mask",
    "fit_pwl",
    "fold_of",
    "grid_search_alpha",
    "ic_margin",
    "int_bits_for",
    "knot_layout",
    "log_evidence",
    "loss_horizon",
    "lut_as_pwl",
    "lut_from_pwl",
    "lut_schedule",
    "posterior",
    "posterior_map",
    "posterior_mean",
    "prior_params",
    "saturated",
    "stop_at",
    "tie_credit",
    "tune_alpha",
    "tune_early_exit",
    "tune_methods",
    "tune_stop_rule",
]
