"""The fused estimate (Habara et al. 2024, section 5, eq. 29), its decisions and accuracy.

Symbols. For one image and class c after N = t observed timesteps: M = the FC's spike count,
K = the IC's spike count, E = K / N the IC's spike rate (the prior's centre, p_prior in the
paper, r in eq. 29). alpha >= 0 is the prior strength. Counts are cumulative arrays (images,
timesteps, classes); index t - 1 holds the counts after t steps.

Estimators (`Estimator`):

* MEAN (default, the BayesianSpikeFusion code): prior Beta(alpha, alpha (1/E - 1)), mean E;
  posterior Beta(alpha + M, alpha (1/E - 1) + N - M), estimate its mean
  p = (alpha + M) / (alpha / E + N), evaluated as (alpha + M) K / ((alpha + K) N).
  alpha = 0 gives M / N exactly (the FC alone).
* MAP (eq. 29): prior Beta(alpha, (1 - E)(alpha - 1)/E + 1) (eq. 25-26, mode E); estimate the
  posterior's mode p = (M + alpha - 1) / (N + (alpha - 1)/E), evaluated as
  (M + alpha - 1) K / ((K + alpha - 1) N), clipped to [0, 1]. For alpha >= 1 it equals MEAN with
  alpha - 1 (alpha = 1: the FC alone). For alpha < 1 (an improper prior for small E) the clip
  returns the posterior's boundary mode where the formula leaves [0, 1] (M = 0 gives 0; a
  posterior with b <= 1 peaks at 1). K + alpha - 1 = 0 (only K = 1, alpha = 0) has no mode:
  the estimate is M / N, as for a silent IC.

Edge cases. E = 0 (the IC never fired for c): Beta(alpha, inf) is a point mass at 0 that would
veto c whatever the FC says (the reference code's E + 1e-16 does exactly that); hwsim treats a
silent IC class as carrying no prior: p = M / N. (Consequence: with a strong prior a class with
K = 0 is judged on the FC's rate while K = 1 is pulled to 1/N.) E = 1 is finite in both forms.
Negative alpha is an error.

Ties. `decide` returns -1 when the top score is shared (counted as wrong). Scores are compared
in float64 exactly as `posterior` computes them, so the fast kernels (Numba) and the NumPy path
give the same decisions, ties included.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from numba import njit

from hwsim.errors import InputError
from hwsim.fusion._parallel import over_timesteps


class Estimator(StrEnum):
    """Point estimate taken from the posterior (see the module docstring)."""

    MEAN = "mean"
    MAP = "map"


def _check_alpha(alpha: np.ndarray) -> None:
    if np.any(alpha < 0) or np.any(np.isnan(alpha)):
        raise InputError("alpha must be >= 0 (and not NaN)")


def posterior(
    fc_count: np.ndarray,
    ic_count: np.ndarray,
    n: int | np.ndarray,
    alpha: float | np.ndarray,
    estimator: Estimator = Estimator.MEAN,
) -> np.ndarray:
    """Fused firing-probability estimate per class (eq. 29 for MAP; posterior mean by default).

    fc_count M and ic_count K are spike counts after `n` timesteps (matching shapes, classes
    last); n and alpha broadcast against them. Returns float64 probabilities in [0, 1].
    """
    m = np.asarray(fc_count, np.float64)
    k = np.asarray(ic_count, np.float64)
    n = np.asarray(n, np.float64)
    alpha = np.asarray(alpha, np.float64)
    _check_alpha(alpha)
    mle = m / n
    with np.errstate(divide="ignore", invalid="ignore"):
        if Estimator(estimator) is Estimator.MEAN:
            fused = (alpha + m) * k / ((alpha + k) * n)
            return np.where(k > 0, fused, mle)
        am1 = alpha - 1.0
        den = (k + am1) * n
        fused = np.minimum(np.maximum((m + am1) * k / den, 0.0), 1.0)
        return np.where((k > 0) & (den != 0), fused, mle)


def posterior_mean(
    fc_count: np.ndarray, ic_count: np.ndarray, n: int | np.ndarray, alpha: float | np.ndarray
) -> np.ndarray:
    """Posterior mean (alpha + M) / (alpha / E + N); E = 0 gives M / N. See `posterior`."""
    return posterior(fc_count, ic_count, n, alpha, Estimator.MEAN)


def posterior_map(
    fc_count: np.ndarray, ic_count: np.ndarray, n: int | np.ndarray, alpha: float | np.ndarray
) -> np.ndarray:
    """Posterior mode, eq. 29, clipped to [0, 1]; E = 0 gives M / N. See `posterior`."""
    return posterior(fc_count, ic_count, n, alpha, Estimator.MAP)


def decide(scores: np.ndarray) -> np.ndarray:
    """Class with the highest score along the last axis; -1 where the top score is tied."""
    top = scores.max(axis=-1, keepdims=True)
    winners = (scores == top).sum(axis=-1)
    return np.where(winners == 1, scores.argmax(axis=-1), -1)


def tie_credit(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per image and timestep, the chance a uniformly random tie-break among the top-scoring
    classes picks the label: 1/k if the label is one of k tied top classes, else 0. (N, T)
    float64 from scores or counts (N, T, C). Its mean over images is the accuracy of a head
    whose argmax breaks ties at random, the alternative to `decide`'s ties-are-wrong rule."""
    s = np.asarray(scores)
    tied = s == s.max(axis=-1, keepdims=True)
    y = np.broadcast_to(np.asarray(labels)[:, None, None], (*s.shape[:2], 1))
    return np.take_along_axis(tied, y, axis=-1)[..., 0] / tied.sum(axis=-1)


def accuracy_of_decisions(decisions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Fraction of images whose decision (N, T) equals the label (N,), per timestep: (T,)."""
    return (decisions == np.asarray(labels)[:, None]).mean(axis=0)


def accuracy_over_time(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Accuracy at each timestep from scores (N, T, C); a tie counts as wrong. Returns (T,)."""
    return accuracy_of_decisions(decide(scores), labels)


def cumulative(spikes: np.ndarray) -> np.ndarray:
    """Spike counts up to and including each timestep: (N, T, C) uint8 -> (N, T, C) int32."""
    return np.cumsum(spikes, axis=1, dtype=np.int32)


def _counts(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 3:
        raise InputError(f"cumulative counts must be (images, timesteps, classes), got {a.shape}")
    return np.ascontiguousarray(a, dtype=np.int32)


def _check_pair(fc_cum: np.ndarray, ic_cum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fc, ic = _counts(fc_cum), _counts(ic_cum)
    if fc.shape != ic.shape:
        raise InputError(f"FC counts {fc.shape} and IC counts {ic.shape} differ in shape")
    steps = np.arange(1, fc.shape[1] + 1)
    for name, x in (("FC", fc), ("IC", ic)):
        if x.size and (x.min() < 0 or np.any(x.max(axis=(0, 2)) > steps)):
            raise InputError(f"{name} counts must be cumulative: 0 <= count <= t after t steps")
    return fc, ic


# --------------------------------------------------------------------------- fast kernels


@njit(cache=True, inline="always")
def _score(m: float, k: float, n: float, a: float, is_map: bool) -> float:
    """One class's estimate; the same float64 operations as `posterior`."""
    if k <= 0.0:
        return m / n
    if not is_map:
        return (a + m) * k / ((a + k) * n)
    am1 = a - 1.0
    den = (k + am1) * n
    if den == 0.0:
        return m / n
    return min(max((m + am1) * k / den, 0.0), 1.0)


@njit(cache=True, inline="always")
def _decision(m: np.ndarray, k: np.ndarray, n: float, a: float, is_map: bool) -> int:
    """The class with the largest `_score`, -1 if the top score is tied (as `decide`)."""
    best = -1.0
    arg = -1
    ties = 0
    for c in range(m.size):
        s = _score(m[c], k[c], n, a, is_map)
        if s > best:
            best = s
            arg = c
            ties = 1
        elif s == best:
            ties += 1
    return arg if ties == 1 else -1


@njit(cache=True, nogil=True)
def _correct_counts(fc, ic, labels, alpha_gt, is_map, t0, t1, out):  # pragma: no cover
    """out[g, t] = correct decisions with alpha_gt[g, t], t in [t0, t1) (ties are wrong)."""
    n_img, n_t, n_c = fc.shape
    n_g = alpha_gt.shape[0]
    for t in range(t0, t1):
        n = float(t + 1)
        m = np.empty(n_c)
        k = np.empty(n_c)
        for i in range(n_img):
            for c in range(n_c):
                m[c] = fc[i, t, c]
                k[c] = ic[i, t, c]
            for g in range(n_g):
                if _decision(m, k, n, alpha_gt[g, t], is_map) == labels[i]:
                    out[g, t] += 1


@njit(cache=True, nogil=True)
def _correct_matrix(fc, ic, labels, alpha_t, is_map, t0, t1, out):  # pragma: no cover
    """out[i, t] = image i decided correctly with alpha_t[t], t in [t0, t1) (ties wrong)."""
    n_img, n_t, n_c = fc.shape
    m = np.empty(n_c)
    k = np.empty(n_c)
    for t in range(t0, t1):
        n = float(t + 1)
        for i in range(n_img):
            for c in range(n_c):
                m[c] = fc[i, t, c]
                k[c] = ic[i, t, c]
            out[i, t] = _decision(m, k, n, alpha_t[t], is_map) == labels[i]


def correct_counts(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    alpha: np.ndarray,
    estimator: Estimator = Estimator.MEAN,
) -> np.ndarray:
    """Number of correctly decided images per (alpha row, timestep).

    alpha: (G,) values used at every timestep or (G, T) per timestep. Returns (G, T) int64.
    A compiled kernel over chunks of timesteps on all cores; memory is O(G T) beyond the inputs.
    """
    fc, ic = _check_pair(fc_cum, ic_cum)
    n_t = fc.shape[1]
    a = np.asarray(alpha, np.float64)
    _check_alpha(a)
    if a.ndim == 1:
        a = np.broadcast_to(a[:, None], (a.size, n_t))
    if a.ndim != 2 or a.shape[1] < n_t:
        raise InputError(f"alpha must be (G,) or (G, >= {n_t}), got {a.shape}")
    a = np.ascontiguousarray(a[:, :n_t])
    y = np.ascontiguousarray(labels, dtype=np.int64)
    if y.shape != (fc.shape[0],):
        raise InputError(f"labels {y.shape} do not match {fc.shape[0]} images")
    out = np.zeros((a.shape[0], n_t), np.int64)
    is_map = Estimator(estimator) is Estimator.MAP
    over_timesteps(n_t, lambda t0, t1: _correct_counts(fc, ic, y, a, is_map, t0, t1, out))
    return out


def correct_matrix(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    alpha: np.ndarray,
    estimator: Estimator = Estimator.MEAN,
) -> np.ndarray:
    """Whether each image is decided correctly at each timestep with alpha[t - 1]: (N, T) bool.

    The per-image form of `correct_counts` (one alpha per step; its column sums equal
    correct_counts(..., alpha[None, :])), which paired bootstrap resampling needs.
    """
    fc, ic = _check_pair(fc_cum, ic_cum)
    n_img, n_t, _ = fc.shape
    a = np.ascontiguousarray(np.asarray(alpha, np.float64)[:n_t])
    _check_alpha(a)
    if a.shape != (n_t,):
        raise InputError(f"alpha must have >= {n_t} per-step values, got {np.shape(alpha)}")
    y = np.ascontiguousarray(labels, dtype=np.int64)
    if y.shape != (n_img,):
        raise InputError(f"labels {y.shape} do not match {n_img} images")
    out = np.zeros((n_img, n_t), np.bool_)
    is_map = Estimator(estimator) is Estimator.MAP
    over_timesteps(n_t, lambda t0, t1: _correct_matrix(fc, ic, y, a, is_map, t0, t1, out))
    return out
