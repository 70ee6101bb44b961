"""alpha(t) schedules and their grid search (section 5.4): per timestep, the candidate alpha
with the highest accuracy on a training subset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from hwsim.errors import InputError
from hwsim.fusion.posterior import Estimator, correct_counts, correct_matrix, posterior
from hwsim.methods import Ties


class AlphaMethod(StrEnum):
    """How an alpha schedule was obtained."""

    GRID = "grid"  # max training accuracy per timestep
    EMPIRICAL_BAYES = "empirical-bayes"  # max marginal likelihood per timestep (eq. 30)
    PWL = "pwl"  # piecewise-linear approximation of another schedule
    LUT = "lut"  # fixed-point piecewise-linear LUT
    FIXED = "fixed"  # given by hand


DEFAULT_ALPHA_GRID: tuple[float, ...] = (0.0, *np.round(np.logspace(-2, 4, 61), 6).tolist())
"""alpha candidates for grid search: 0 (FC alone) and 61 log-spaced values in [0.01, 10^4]."""


def _method(s: str) -> AlphaMethod | str:
    try:
        return AlphaMethod(s)
    except ValueError:
        return s


@dataclass(frozen=True)
class AlphaSchedule:
    """alpha per timestep: alpha[t - 1] is used after t observed steps."""

    alpha: np.ndarray  # (T,)
    method: AlphaMethod | str
    estimator: Estimator = Estimator.MEAN

    def fuse(self, fc_cum: np.ndarray, ic_cum: np.ndarray) -> np.ndarray:
        """Posterior estimates (N, T, C) from cumulative counts (N, T, C)."""
        t = np.arange(1, fc_cum.shape[1] + 1)[None, :, None]
        a = np.asarray(self.alpha[: fc_cum.shape[1]])[None, :, None]
        return posterior(fc_cum, ic_cum, t, a, self.estimator)

    def _check(self, fc_cum: np.ndarray) -> int:
        n_t = np.asarray(fc_cum).shape[1]
        if len(self.alpha) < n_t:
            raise InputError(f"schedule has {len(self.alpha)} steps, counts have {n_t}")
        return n_t

    def accuracy(
        self,
        fc_cum: np.ndarray,
        ic_cum: np.ndarray,
        labels: np.ndarray,
        ties: Ties | None = None,
        image_ids: np.ndarray | None = None,
    ) -> np.ndarray:
        """Accuracy (T,) of the fused decisions, ties credited by `ties` (default fair), without
        materialising the scores (`correct_counts`)."""
        n_t = self._check(fc_cum)
        a = np.asarray(self.alpha, np.float64)[None, :n_t]
        ok = correct_counts(fc_cum, ic_cum, labels, a, self.estimator, ties, image_ids)[0]
        return ok / len(labels)

    def correct(
        self,
        fc_cum: np.ndarray,
        ic_cum: np.ndarray,
        labels: np.ndarray,
        ties: Ties | None = None,
        image_ids: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per image and timestep, the fused decision's credit (`correct_matrix`): (N, T)."""
        self._check(fc_cum)
        return correct_matrix(fc_cum, ic_cum, labels, self.alpha, self.estimator, ties, image_ids)


def grid_search_alpha(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    grid: Sequence[float] = DEFAULT_ALPHA_GRID,
    estimator: Estimator = Estimator.MEAN,
    ties: Ties | None = None,
    image_ids: np.ndarray | None = None,
) -> AlphaSchedule:
    """Per timestep, the grid alpha with the highest accuracy on these images (section 5.4),
    tied decisions credited by `ties` (default fair; exact sums, `correct_counts`).

    Equal accuracies go to the smaller alpha (the weaker prior). Inputs are cumulative counts
    (N, T, C).
    """
    grid_arr = np.unique(np.asarray(grid, np.float64))  # sorted ascending
    ok = correct_counts(fc_cum, ic_cum, labels, grid_arr, estimator, ties, image_ids)
    return AlphaSchedule(grid_arr[ok.argmax(axis=0)], AlphaMethod.GRID, estimator)
