"""Bayesian spike fusion (Habara et al. 2024, section 5).

For class c after N observed timesteps, M is the FC's spike count and E the IC's spike rate
(IC count / N). The IC gives a Beta prior with mean E, Beta(alpha, alpha (1/E - 1)); after M
spikes in N steps the posterior mean is

    p_c = (alpha + M) / (alpha / E + N)

(the BayesianSpikeFusion code's estimator). The class with the largest p_c is the decision.

E = 0 (the IC never fired for c): the prior Beta(alpha, inf) is a point mass at 0 that would veto
c whatever the FC says (the reference code's E + 1e-16 does exactly that). hwsim treats a silent
IC class as carrying no prior information: p_c = M / N, the FC's own rate. E = 1 needs no special
case (the prior mean is 1 and the formula is finite). alpha = 0 gives M / N for every class, i.e.
the FC alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_ALPHA_GRID: tuple[float, ...] = (0.0, *np.round(np.logspace(-2, 4, 61), 6).tolist())
"""alpha candidates for grid search: 0 (FC alone) and 61 log-spaced values in [0.01, 10^4]."""


def posterior_mean(
    fc_count: np.ndarray, ic_count: np.ndarray, n: int | np.ndarray, alpha: float | np.ndarray
) -> np.ndarray:
    """Posterior mean firing probability per class.

    fc_count, ic_count: spike counts M and IC counts after `n` timesteps (any matching shapes,
    classes last); alpha broadcasts against them. Returns float64 estimates.
    """
    m = np.asarray(fc_count, np.float64)
    k = np.asarray(ic_count, np.float64)
    n = np.asarray(n, np.float64)
    alpha = np.asarray(alpha, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        fused = (alpha + m) * k / (alpha * n + n * k)  # (alpha + M) / (alpha / E + N), E = k / n
        mle = m / n
    return np.where(k > 0, fused, mle)


def decide(scores: np.ndarray) -> np.ndarray:
    """Class with the highest score along the last axis; -1 where the top score is tied."""
    top = scores.max(axis=-1, keepdims=True)
    winners = (scores == top).sum(axis=-1)
    return np.where(winners == 1, scores.argmax(axis=-1), -1)


def accuracy_over_time(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Accuracy at each timestep from scores (N, T, C); a tie counts as wrong. Returns (T,)."""
    return (decide(scores) == labels[:, None]).mean(axis=0)


def cumulative(spikes: np.ndarray) -> np.ndarray:
    """Spike counts up to and including each timestep: (N, T, C) uint8 -> (N, T, C) int32."""
    return np.cumsum(spikes, axis=1, dtype=np.int32)


@dataclass(frozen=True)
class AlphaSchedule:
    """alpha per timestep: alpha[t - 1] is used after t observed steps."""

    alpha: np.ndarray  # (T,)
    method: str

    def fuse(self, fc_cum: np.ndarray, ic_cum: np.ndarray) -> np.ndarray:
        """Posterior means (N, T, C) from cumulative counts (N, T, C)."""
        t = np.arange(1, fc_cum.shape[1] + 1)[None, :, None]
        a = self.alpha[: fc_cum.shape[1]][None, :, None]
        return posterior_mean(fc_cum, ic_cum, t, a)


def grid_search_alpha(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    grid: tuple[float, ...] = DEFAULT_ALPHA_GRID,
) -> AlphaSchedule:
    """Per timestep, the grid alpha with the highest accuracy on these images.

    Ties go to the smaller alpha (the weaker prior). Inputs are cumulative counts (N, T, C).
    """
    grid_arr = np.sort(np.asarray(grid, np.float64))
    t = np.arange(1, fc_cum.shape[1] + 1)[None, :, None]
    acc = np.stack(
        [accuracy_over_time(posterior_mean(fc_cum, ic_cum, t, a), labels) for a in grid_arr]
    )
    return AlphaSchedule(grid_arr[acc.argmax(axis=0)], "grid")
