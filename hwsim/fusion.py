"""Bayesian spike fusion (Habara et al. 2024, section 5): posterior, alpha(t) selection, PWL LUT.

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

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
from numba import njit
from scipy.optimize import nnls
from scipy.special import betaln


class Estimator(StrEnum):
    """Point estimate taken from the posterior (see the module docstring)."""

    MEAN = "mean"
    MAP = "map"


class AlphaMethod(StrEnum):
    """How an alpha schedule was obtained."""

    GRID = "grid"  # max training accuracy per timestep
    EMPIRICAL_BAYES = "empirical-bayes"  # max marginal likelihood per timestep (eq. 30)
    PWL = "pwl"  # piecewise-linear approximation of another schedule
    LUT = "lut"  # fixed-point piecewise-linear LUT
    FIXED = "fixed"  # given by hand


DEFAULT_ALPHA_GRID: tuple[float, ...] = (0.0, *np.round(np.logspace(-2, 4, 61), 6).tolist())
"""alpha candidates for grid search: 0 (FC alone) and 61 log-spaced values in [0.01, 10^4]."""

DEFAULT_EB_BOUNDS: tuple[float, float] = (1e-2, 1e4)
"""alpha range of the empirical-Bayes search (MEAN); MAP searches 1 + this range."""


def _check_alpha(alpha: np.ndarray) -> None:
    if np.any(alpha < 0) or np.any(np.isnan(alpha)):
        raise ValueError("alpha must be >= 0 (and not NaN)")


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
        raise ValueError(f"cumulative counts must be (images, timesteps, classes), got {a.shape}")
    return np.ascontiguousarray(a, dtype=np.int32)


def _check_pair(fc_cum: np.ndarray, ic_cum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fc, ic = _counts(fc_cum), _counts(ic_cum)
    if fc.shape != ic.shape:
        raise ValueError(f"FC counts {fc.shape} and IC counts {ic.shape} differ in shape")
    steps = np.arange(1, fc.shape[1] + 1)
    for name, x in (("FC", fc), ("IC", ic)):
        if x.size and (x.min() < 0 or np.any(x.max(axis=(0, 2)) > steps)):
            raise ValueError(f"{name} counts must be cumulative: 0 <= count <= t after t steps")
    return fc, ic


# --------------------------------------------------------------------------- fast kernels


class _RangeKernel(Protocol):
    def __call__(self, t0: int, t1: int) -> object: ...


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _over_timesteps(n_t: int, kernel: _RangeKernel, chunk: int = 32) -> None:
    """Run kernel(t0, t1) over [0, n_t) in chunks on a thread pool (the Numba kernels release
    the GIL; each writes only its own timesteps' outputs). Small chunks balance the load:
    later timesteps cost more in empirical Bayes (more distinct counts)."""
    spans = [(t0, min(n_t, t0 + chunk)) for t0 in range(0, n_t, chunk)]
    workers = min(_cpus(), len(spans))
    if workers <= 1:
        for t0, t1 in spans:
            kernel(t0, t1)
        return
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(kernel, t0, t1) for t0, t1 in spans]:
            f.result()


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
            y = labels[i]
            for c in range(n_c):
                m[c] = fc[i, t, c]
                k[c] = ic[i, t, c]
            for g in range(n_g):
                a = alpha_gt[g, t]
                best = -1.0
                arg = -1
                ties = 0
                for c in range(n_c):
                    s = _score(m[c], k[c], n, a, is_map)
                    if s > best:
                        best = s
                        arg = c
                        ties = 1
                    elif s == best:
                        ties += 1
                if ties == 1 and arg == y:
                    out[g, t] += 1


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
        raise ValueError(f"alpha must be (G,) or (G, >= {n_t}), got {a.shape}")
    a = np.ascontiguousarray(a[:, :n_t])
    y = np.ascontiguousarray(labels, dtype=np.int64)
    if y.shape != (fc.shape[0],):
        raise ValueError(f"labels {y.shape} do not match {fc.shape[0]} images")
    out = np.zeros((a.shape[0], n_t), np.int64)
    is_map = Estimator(estimator) is Estimator.MAP
    _over_timesteps(n_t, lambda t0, t1: _correct_counts(fc, ic, y, a, is_map, t0, t1, out))
    return out


# --------------------------------------------------------------------------- schedules


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

    def accuracy(self, fc_cum: np.ndarray, ic_cum: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """accuracy_over_time(self.fuse(...), labels) without materialising the scores: (T,)."""
        n_t = np.asarray(fc_cum).shape[1]
        if len(self.alpha) < n_t:
            raise ValueError(f"schedule has {len(self.alpha)} steps, counts have {n_t}")
        a = np.asarray(self.alpha, np.float64)[None, :n_t]
        ok = correct_counts(fc_cum, ic_cum, labels, a, self.estimator)[0]
        return ok / len(labels)


def grid_search_alpha(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    grid: Sequence[float] = DEFAULT_ALPHA_GRID,
    estimator: Estimator = Estimator.MEAN,
) -> AlphaSchedule:
    """Per timestep, the grid alpha with the highest accuracy on these images (section 5.4).

    Ties go to the smaller alpha (the weaker prior). Inputs are cumulative counts (N, T, C).
    """
    grid_arr = np.unique(np.asarray(grid, np.float64))  # sorted ascending
    ok = correct_counts(fc_cum, ic_cum, labels, grid_arr, estimator)
    return AlphaSchedule(grid_arr[ok.argmax(axis=0)], AlphaMethod.GRID, estimator)


# --------------------------------------------------------------------------- empirical Bayes


def prior_params(
    ic_count: np.ndarray,
    n: int | np.ndarray,
    alpha: float | np.ndarray,
    estimator: Estimator = Estimator.MEAN,
) -> tuple[np.ndarray, np.ndarray]:
    """Beta prior (a, b) of each class: MEAN Beta(alpha, alpha (N - K) / K) = Beta(alpha,
    alpha (1/E - 1)); MAP Beta(alpha, (N - K)(alpha - 1) / K + 1) (eq. 25). K = 0 gives b = inf.
    """
    k = np.asarray(ic_count, np.float64)
    n = np.asarray(n, np.float64)
    alpha = np.asarray(alpha, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if Estimator(estimator) is Estimator.MEAN:
            b = alpha * (n - k) / k
        else:
            b = (n - k) * (alpha - 1.0) / k + 1.0
    a = np.broadcast_to(alpha, b.shape)
    return a, np.where(k > 0, b, np.inf)


def evidence_mask(
    ic_count: np.ndarray, n: int | np.ndarray, estimator: Estimator = Estimator.MEAN
) -> np.ndarray:
    """Entries whose prior is proper for every alpha in the search range and so enter eq. 30.

    K = 0 never does (no prior, see the module docstring). MEAN also drops K = N (E = 1): its
    Beta(alpha, 0) is improper and in the limit a point mass at 1 whatever alpha is, so the
    entry carries no information about alpha. MAP keeps K = N (Beta(alpha, 1), alpha >= 1).
    """
    k = np.asarray(ic_count)
    if Estimator(estimator) is Estimator.MEAN:
        return (k > 0) & (k < np.asarray(n))
    return k > 0


def log_evidence(
    fc_count: np.ndarray,
    ic_count: np.ndarray,
    n: int | np.ndarray,
    alpha: float | np.ndarray,
    estimator: Estimator = Estimator.MEAN,
) -> np.ndarray:
    """Per entry, the log of eq. 30's marginal likelihood: log B(M + a, N - M + b) - log B(a, b).

    The log marginal likelihood of an observed spike train (a sequence: no binomial factor),
    with the estimator's prior (a, b) from `prior_params`; computed with scipy.special.betaln,
    stable for large counts. Entries outside `evidence_mask` are 0 (they do not depend on
    alpha). For MAP alpha must be >= 1 (a proper prior for every E).
    """
    m = np.asarray(fc_count, np.float64)
    k = np.asarray(ic_count, np.float64)
    n_arr = np.asarray(n, np.float64)
    alpha = np.asarray(alpha, np.float64)
    if Estimator(estimator) is Estimator.MAP and np.any(alpha < 1):
        raise ValueError("empirical Bayes with the MAP prior needs alpha >= 1 (eq. 25)")
    _check_alpha(alpha)
    a, b = prior_params(k, n_arr, alpha, estimator)
    use = evidence_mask(k, n_arr, estimator) & np.ones(np.broadcast(m, b).shape, bool)
    a_u, b_u = np.broadcast_to(a, use.shape)[use], np.broadcast_to(b, use.shape)[use]
    m_u = np.broadcast_to(m, use.shape)[use]
    n_u = np.broadcast_to(n_arr, use.shape)[use]
    out = np.zeros(use.shape)
    out[use] = betaln(m_u + a_u, n_u - m_u + b_u) - betaln(a_u, b_u)
    return out


@njit(cache=True)
def _eb_value(u, n, ks, ms, ws, starts, um, midx, lg_m, is_map):  # pragma: no cover - compiled
    """sum_w log B(M + a, N - M + b) - log B(a, b) at alpha = exp(u).

    Pairs (ks, ms, ws) are grouped by K (`starts`); um are the distinct M values and
    midx[j] the index of ms[j] in um, so log Gamma(M + a) is evaluated once per distinct M."""
    alpha = math.exp(u)
    a = alpha
    lg_a = math.lgamma(a)
    for j in range(um.size):
        lg_m[j] = math.lgamma(um[j] + a) - lg_a if um[j] > 0 else 0.0
    total = 0.0
    for g in range(starts.size - 1):
        j0 = starts[g]
        k = ks[j0]
        b = (n - k) * (alpha - 1.0) / k + 1.0 if is_map else alpha * (n - k) / k
        lg_b = math.lgamma(b)
        lg_ab = math.lgamma(a + b) - math.lgamma(n + a + b)
        for j in range(j0, starts[g + 1]):
            m = ms[j]
            term = lg_ab + lg_m[midx[j]]
            if m < n:
                term += math.lgamma(n - m + b) - lg_b
            total += ws[j] * term
    return total


@njit(cache=True, nogil=True)
def _eb_search(fc, ic, u_grid, xtol, is_map, t0, t1, out, values):  # pragma: no cover
    """For t in [t0, t1): best u = log alpha on u_grid, then golden-section refinement."""
    n_img, n_t, n_c = fc.shape
    invphi = (math.sqrt(5.0) - 1.0) / 2.0
    n_grid = u_grid.size
    m_slot = np.empty(t1 + 1, np.int64)
    for t in range(t0, t1):
        n = t + 1
        keys = np.empty(n_img * n_c, np.int64)
        cnt = 0
        for i in range(n_img):
            for c in range(n_c):
                k = ic[i, t, c]
                if k > 0 and (is_map or k < n):
                    keys[cnt] = k * (n + 1) + fc[i, t, c]
                    cnt += 1
        if cnt == 0:
            out[t] = math.exp(u_grid[0])
            values[t] = 0.0
            continue
        kk = np.sort(keys[:cnt])
        ks = np.empty(cnt)
        ms = np.empty(cnt)
        ws = np.empty(cnt)
        starts = np.empty(cnt + 1, np.int64)
        n_pairs = 0
        n_groups = 0
        prev = -1
        prev_k = -1
        for j in range(cnt):
            key = kk[j]
            if key != prev:
                kv = key // (n + 1)
                if kv != prev_k:
                    starts[n_groups] = n_pairs
                    n_groups += 1
                    prev_k = kv
                ks[n_pairs] = kv
                ms[n_pairs] = key - kv * (n + 1)
                ws[n_pairs] = 1.0
                n_pairs += 1
                prev = key
            else:
                ws[n_pairs - 1] += 1.0
        starts[n_groups] = n_pairs
        st = starts[: n_groups + 1]
        ks = ks[:n_pairs]
        ms = ms[:n_pairs]
        ws = ws[:n_pairs]
        # distinct M values (um) and each pair's index into them (midx), via a table over 0..n
        m_slot[: n + 1] = -1
        n_m = 0
        for j in range(n_pairs):
            mv = int(ms[j])
            if m_slot[mv] < 0:
                m_slot[mv] = n_m
                n_m += 1
        um = np.empty(n_m)
        for mv in range(n + 1):
            if m_slot[mv] >= 0:
                um[m_slot[mv]] = mv
        midx = np.empty(n_pairs, np.int64)
        for j in range(n_pairs):
            midx[j] = m_slot[int(ms[j])]
        lg_m = np.empty(n_m)
        fn = float(n)
        best_j = 0
        best_f = _eb_value(u_grid[0], fn, ks, ms, ws, st, um, midx, lg_m, is_map)
        for j in range(1, n_grid):
            f = _eb_value(u_grid[j], fn, ks, ms, ws, st, um, midx, lg_m, is_map)
            if f > best_f:
                best_f = f
                best_j = j
        best_u = u_grid[best_j]
        lo = u_grid[max(best_j - 1, 0)]
        hi = u_grid[min(best_j + 1, n_grid - 1)]
        x1 = hi - invphi * (hi - lo)
        x2 = lo + invphi * (hi - lo)
        f1 = _eb_value(x1, fn, ks, ms, ws, st, um, midx, lg_m, is_map)
        f2 = _eb_value(x2, fn, ks, ms, ws, st, um, midx, lg_m, is_map)
        while hi - lo > xtol:
            if f1 >= f2:
                hi = x2
                x2 = x1
                f2 = f1
                x1 = hi - invphi * (hi - lo)
                f1 = _eb_value(x1, fn, ks, ms, ws, st, um, midx, lg_m, is_map)
            else:
                lo = x1
                x1 = x2
                f1 = f2
                x2 = lo + invphi * (hi - lo)
                f2 = _eb_value(x2, fn, ks, ms, ws, st, um, midx, lg_m, is_map)
        if f1 >= f2:
            cand_u, cand_f = x1, f1
        else:
            cand_u, cand_f = x2, f2
        if cand_f > best_f:
            best_u, best_f = cand_u, cand_f
        out[t] = math.exp(best_u)
        values[t] = best_f


@dataclass(frozen=True)
class EmpiricalBayesResult:
    """alpha(t) maximising eq. 30, and the maximised log marginal likelihood (T,) in nats."""

    schedule: AlphaSchedule
    log_evidence: np.ndarray


def empirical_bayes_alpha(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    estimator: Estimator = Estimator.MEAN,
    bounds: tuple[float, float] | None = None,
    points_per_decade: int = 4,
    xtol: float = 1e-3,
) -> EmpiricalBayesResult:
    """Per timestep, the alpha maximising the marginal likelihood (eq. 30) summed in log over
    images and classes (entries in `evidence_mask`), with the estimator's own prior.

    Search over u = log alpha in `bounds` (default DEFAULT_EB_BOUNDS; MAP: 1 + those): the best
    of a log grid with `points_per_decade` points, then golden-section refinement between its
    neighbours to |du| <= xtol; the refined point replaces the grid point only if it is better
    (ties go to the smaller alpha). A timestep with no usable entry gets the lower bound.
    Labels are not used. The sum uses math.lgamma in a compiled kernel over distinct (M, K)
    pairs; `log_evidence` (scipy betaln) is its reference.
    """
    fc, ic = _check_pair(fc_cum, ic_cum)
    if bounds is None:
        lo, hi = DEFAULT_EB_BOUNDS
        if Estimator(estimator) is Estimator.MAP:
            lo, hi = 1.0 + lo, 1.0 + hi
    else:
        lo, hi = bounds
    if not 0 < lo < hi:
        raise ValueError(f"bounds must satisfy 0 < lower < upper, got {bounds}")
    if Estimator(estimator) is Estimator.MAP and lo < 1:
        raise ValueError("empirical Bayes with the MAP prior needs alpha >= 1 (eq. 25)")
    decades = math.log10(hi / lo)
    n_grid = max(2, int(math.ceil(decades * points_per_decade)) + 1)
    u_grid = np.linspace(math.log(lo), math.log(hi), n_grid)
    n_t = fc.shape[1]
    alpha = np.empty(n_t)
    values = np.empty(n_t)
    is_map = Estimator(estimator) is Estimator.MAP
    _over_timesteps(
        n_t, lambda t0, t1: _eb_search(fc, ic, u_grid, float(xtol), is_map, t0, t1, alpha, values)
    )
    alpha = np.clip(alpha, lo, hi)
    return EmpiricalBayesResult(
        AlphaSchedule(alpha, AlphaMethod.EMPIRICAL_BAYES, estimator), values
    )


class EvidencePooling(StrEnum):
    """How empirical Bayes pools eq. 30 over the images and classes of a timestep.

    JOINT: one alpha maximising the summed log marginal likelihood (`empirical_bayes_alpha`).
    ENTRY_MEAN: each (image, class) entry's own maximising alpha on a grid, averaged over the
    entries — the BayesianSpikeFusion code's procedure (tune_hyperparams.py, grid 0..100),
    computed here in log space (`entry_mean_alpha`).
    """

    JOINT = "joint"
    ENTRY_MEAN = "entry-mean"


ENTRY_MEAN_GRID: tuple[float, ...] = tuple(float(a) for a in range(1, 101))
"""Per-entry alpha candidates for ENTRY_MEAN: 1..100 (the reference's 0..100 with its prior
Beta(alpha + 1, .) shifted by one, so every candidate is a proper prior)."""


def entry_mean_alpha(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    estimator: Estimator = Estimator.MEAN,
    grid: Sequence[float] = ENTRY_MEAN_GRID,
) -> AlphaSchedule:
    """Per timestep, the mean over entries in `evidence_mask` of each entry's eq.-30-maximising
    grid alpha (ties to the smaller alpha); the lowest grid value where no entry is usable.

    Entries with equal (M, K) share their maximiser, so each distinct pair is evaluated once
    (`log_evidence`, scipy betaln) and weighted by its count.
    """
    fc, ic = _check_pair(fc_cum, ic_cum)
    g = np.sort(np.asarray(grid, np.float64))
    if g.size == 0 or g[0] <= 0 or (Estimator(estimator) is Estimator.MAP and g[0] < 1):
        raise ValueError(f"entry-mean grid must be positive (>= 1 for MAP), got {grid}")
    n_t = fc.shape[1]
    alpha = np.full(n_t, g[0])
    for t in range(n_t):
        n = t + 1
        k, m = ic[:, t].ravel().astype(np.int64), fc[:, t].ravel().astype(np.int64)
        use = evidence_mask(k, n, estimator)
        if not use.any():
            continue
        pairs, counts = np.unique(k[use] * (n + 1) + m[use], return_counts=True)
        kk, mm = pairs // (n + 1), pairs % (n + 1)
        ev = log_evidence(mm[:, None], kk[:, None], n, g[None, :], estimator)
        alpha[t] = float(np.average(g[ev.argmax(axis=1)], weights=counts))
    return AlphaSchedule(alpha, AlphaMethod.EMPIRICAL_BAYES, estimator)


# --------------------------------------------------------------------------- PWL and LUT


def breakpoints(
    timesteps: int, fine_step: int = 10, fine_until: int = 500, coarse_step: int = 100
) -> np.ndarray:
    """Breakpoint timesteps 1, fine_step, 2 fine_step, ..., fine_until, then every coarse_step,
    and the last timestep: int64, strictly increasing, within [1, timesteps]."""
    if min(timesteps, fine_step, coarse_step) < 1 or fine_until < 0:
        raise ValueError("timesteps and steps must be >= 1, fine_until >= 0")
    fine = np.arange(fine_step, min(fine_until, timesteps) + 1, fine_step)
    start = fine[-1] if fine.size else 0
    coarse = np.arange(start + coarse_step, timesteps + 1, coarse_step)
    t = np.unique(np.concatenate([[1], fine, coarse, [timesteps]]))
    return t.astype(np.int64)


class FitMethod(StrEnum):
    """How PWL breakpoint values are obtained from a per-step schedule."""

    LEAST_SQUARES = "least-squares"  # continuous PWL minimising sum_t (f(t) - alpha(t))^2, f >= 0
    SAMPLE = "sample"  # f(t_k) = alpha(t_k)


def _hat_basis(t: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """(len(t), len(knots)) matrix whose product with knot values is np.interp(t, knots, .)."""
    eye = np.eye(knots.size)
    return np.stack([np.interp(t, knots, eye[j]) for j in range(knots.size)], axis=1)


@dataclass(frozen=True)
class PiecewiseLinearAlpha:
    """alpha(t) = np.interp(t, t_k, alpha_k): linear between breakpoints, constant outside."""

    t: np.ndarray  # (K,) breakpoint timesteps, increasing
    alpha: np.ndarray  # (K,) alpha at the breakpoints
    method: AlphaMethod | str = AlphaMethod.PWL
    estimator: Estimator = Estimator.MEAN

    def __call__(self, t: np.ndarray | int) -> np.ndarray:
        return np.interp(np.asarray(t, np.float64), self.t, self.alpha)

    def schedule(self, timesteps: int) -> AlphaSchedule:
        """Per-step alpha for t = 1..timesteps, as the hardware unit evaluates it."""
        return AlphaSchedule(self(np.arange(1, timesteps + 1)), self.method, self.estimator)

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": [int(x) for x in self.t],
            "alpha": [float(x) for x in self.alpha],
            "method": str(self.method),
            "estimator": str(self.estimator),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PiecewiseLinearAlpha:
        t = np.asarray(d["t"], np.int64)
        alpha = np.asarray(d["alpha"], np.float64)
        if t.shape != alpha.shape or t.ndim != 1 or t.size == 0 or np.any(np.diff(t) <= 0):
            raise ValueError("PWL alpha needs equal-length, non-empty, increasing 't'/'alpha'")
        _check_alpha(alpha)
        return cls(t, alpha, _method(d.get("method", "pwl")), Estimator(d.get("estimator", "mean")))


def _method(s: str) -> AlphaMethod | str:
    try:
        return AlphaMethod(s)
    except ValueError:
        return s


def fit_pwl(
    schedule: AlphaSchedule,
    knots: np.ndarray | None = None,
    method: FitMethod = FitMethod.LEAST_SQUARES,
) -> PiecewiseLinearAlpha:
    """Piecewise-linear approximation of a per-step schedule on `knots` (default `breakpoints`).

    LEAST_SQUARES (default): the continuous PWL with alpha >= 0 closest to every step's alpha
    (scipy nnls on the hat basis); it uses all T values, so a grid search's step-to-step
    jumps (an argmax over a finite training subset) average out instead of one noisy step
    setting a breakpoint. SAMPLE: alpha at the breakpoint steps. Both reproduce a schedule that
    is itself piecewise linear on these knots exactly.
    """
    a = np.asarray(schedule.alpha, np.float64)
    n_t = a.size
    knots = breakpoints(n_t) if knots is None else np.asarray(knots, np.int64)
    if knots.ndim != 1 or knots.size == 0 or knots[0] < 1 or knots[-1] > n_t:
        raise ValueError(f"knots must lie in [1, {n_t}]")
    if np.any(np.diff(knots) <= 0):
        raise ValueError("knots must be strictly increasing")
    if method is FitMethod.SAMPLE:
        values = a[knots - 1]
    else:
        basis = _hat_basis(np.arange(1, n_t + 1, dtype=np.float64), knots.astype(np.float64))
        values = nnls(basis, a)[0]
    return PiecewiseLinearAlpha(knots, values, schedule.method, schedule.estimator)


@dataclass(frozen=True)
class FixedPoint:
    """Unsigned fixed-point format: int_bits.frac_bits; LSB = 2^-frac_bits."""

    int_bits: int = 14
    frac_bits: int = 8

    def __post_init__(self) -> None:
        if self.int_bits < 0 or self.frac_bits < 0 or self.int_bits + self.frac_bits < 1:
            raise ValueError("fixed point needs int_bits, frac_bits >= 0 and at least one bit")
        if self.int_bits + self.frac_bits > 62:
            raise ValueError("fixed point wider than 62 bits is not supported")

    @property
    def lsb(self) -> float:
        return 2.0**-self.frac_bits

    @property
    def max_code(self) -> int:
        return 2 ** (self.int_bits + self.frac_bits) - 1

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Round to the nearest code (half up), saturating at 0 and max_code: int64 codes."""
        codes = np.floor(np.asarray(x, np.float64) / self.lsb + 0.5)
        return np.clip(codes, 0, self.max_code).astype(np.int64)


@dataclass(frozen=True)
class AlphaLUT:
    """The fusion unit's alpha table: breakpoints t_k and fixed-point alpha codes.

    alpha(t) = np.interp(t, t_k, codes_k LSB): the unit interpolates between stored codes with
    enough internal bits that only the stored codes are rounded, so for unsaturated values
    |alpha_LUT(t) - pwl(t)| <= LSB / 2 at every t (a convex combination of code errors).
    """

    t: np.ndarray  # (K,) int64
    codes: np.ndarray  # (K,) int64
    fmt: FixedPoint = field(default_factory=FixedPoint)
    method: AlphaMethod | str = AlphaMethod.LUT
    estimator: Estimator = Estimator.MEAN

    @classmethod
    def from_pwl(cls, pwl: PiecewiseLinearAlpha, fmt: FixedPoint | None = None) -> AlphaLUT:
        fmt = FixedPoint() if fmt is None else fmt
        t = np.asarray(pwl.t, np.int64)
        return cls(t, fmt.quantize(pwl.alpha), fmt, pwl.method, pwl.estimator)

    @property
    def alpha(self) -> np.ndarray:
        """Stored alpha at the breakpoints (codes x LSB)."""
        return self.codes * self.fmt.lsb

    def saturated(self, pwl: PiecewiseLinearAlpha) -> int:
        """Breakpoints of `pwl` whose alpha exceeds the format's range."""
        return int(np.sum(np.asarray(pwl.alpha) > self.fmt.max_code * self.fmt.lsb))

    def as_pwl(self) -> PiecewiseLinearAlpha:
        """The decoded table as a PWL: what the fusion unit interpolates."""
        return PiecewiseLinearAlpha(self.t, self.alpha, self.method, self.estimator)

    def __call__(self, t: np.ndarray | int) -> np.ndarray:
        return self.as_pwl()(t)

    def schedule(self, timesteps: int) -> AlphaSchedule:
        return self.as_pwl().schedule(timesteps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": [int(x) for x in self.t],
            "codes": [int(x) for x in self.codes],
            "int_bits": self.fmt.int_bits,
            "frac_bits": self.fmt.frac_bits,
            "method": str(self.method),
            "estimator": str(self.estimator),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlphaLUT:
        fmt = FixedPoint(int(d["int_bits"]), int(d["frac_bits"]))
        t = np.asarray(d["t"], np.int64)
        codes = np.asarray(d["codes"], np.int64)
        if t.shape != codes.shape or t.ndim != 1 or t.size == 0 or np.any(np.diff(t) <= 0):
            raise ValueError("alpha LUT needs equal-length, non-empty, increasing 't'/'codes'")
        if np.any(codes < 0) or np.any(codes > fmt.max_code):
            raise ValueError(f"alpha LUT codes outside [0, {fmt.max_code}]")
        method = _method(d.get("method", "lut"))
        return cls(t, codes, fmt, method, Estimator(d.get("estimator", "mean")))


@dataclass(frozen=True)
class ApproximationReport:
    """How far the PWL and the LUT are from the exact per-step alpha, and what it costs.

    Errors in alpha units over t = 1..T; accuracies (T,) on the images given; `*_loss` is the
    exact schedule's accuracy minus the approximation's (positive = accuracy lost).
    """

    pwl_max_abs: float
    pwl_mean_abs: float
    lut_max_abs: float  # LUT vs exact per-step alpha
    lut_mean_abs: float
    lut_vs_pwl_max_abs: float  # quantisation alone (<= LSB / 2 unless saturated)
    accuracy_exact: np.ndarray
    accuracy_pwl: np.ndarray
    accuracy_lut: np.ndarray

    @property
    def lut_loss_max(self) -> float:
        return float(np.max(self.accuracy_exact - self.accuracy_lut))

    @property
    def lut_loss_mean(self) -> float:
        return float(np.mean(self.accuracy_exact - self.accuracy_lut))

    @property
    def pwl_loss_mean(self) -> float:
        return float(np.mean(self.accuracy_exact - self.accuracy_pwl))


def approximation_report(
    schedule: AlphaSchedule,
    pwl: PiecewiseLinearAlpha,
    lut: AlphaLUT,
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
) -> ApproximationReport:
    """Approximation error of pwl/lut against `schedule` and the accuracies all three give."""
    n_t = np.asarray(fc_cum).shape[1]
    exact = np.asarray(schedule.alpha, np.float64)[:n_t]
    p = pwl.schedule(n_t)
    q = lut.schedule(n_t)
    e_pwl = np.abs(p.alpha - exact)
    e_lut = np.abs(q.alpha - exact)
    return ApproximationReport(
        pwl_max_abs=float(e_pwl.max()),
        pwl_mean_abs=float(e_pwl.mean()),
        lut_max_abs=float(e_lut.max()),
        lut_mean_abs=float(e_lut.mean()),
        lut_vs_pwl_max_abs=float(np.abs(q.alpha - p.alpha).max()),
        accuracy_exact=schedule.accuracy(fc_cum, ic_cum, labels),
        accuracy_pwl=p.accuracy(fc_cum, ic_cum, labels),
        accuracy_lut=q.accuracy(fc_cum, ic_cum, labels),
    )


# --------------------------------------------------------------------------- early exit


def ic_margin(ic_cum: np.ndarray) -> np.ndarray:
    """IC confidence: top-1 minus top-2 spike count per image and timestep, (N, T) int64.

    0 where the IC's top class is tied (the IC then has no decision)."""
    ic = np.asarray(ic_cum)
    if ic.shape[-1] < 2:
        raise ValueError("early exit needs at least 2 classes")
    top2 = np.partition(ic, ic.shape[-1] - 2, axis=-1)[..., -2:]
    return (top2[..., 1] - top2[..., 0]).astype(np.int64)


@dataclass(frozen=True)
class EarlyExit:
    """Confidence-switched IC/FC classifier (the early-exit baseline of section 6.4).

    At timestep t an image takes the IC's decision if the IC's count margin (`ic_margin`) is
    >= threshold[t - 1], else the FC's; the other head's spikes are discarded (no fusion).
    threshold = inf: FC only; 0: IC only. Thresholds are in spike counts.
    """

    threshold: np.ndarray  # (T,) float64, integer values or inf

    def decide(self, fc_cum: np.ndarray, ic_cum: np.ndarray) -> np.ndarray:
        """Decisions (N, T): class index, or -1 where the chosen head is tied."""
        n_t = np.asarray(fc_cum).shape[1]
        use_ic = ic_margin(ic_cum) >= self.threshold[None, :n_t]
        return np.where(use_ic, decide(np.asarray(ic_cum)), decide(np.asarray(fc_cum)))

    def accuracy(self, fc_cum: np.ndarray, ic_cum: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return accuracy_of_decisions(self.decide(fc_cum, ic_cum), labels)


def tune_early_exit(
    fc_cum: np.ndarray, ic_cum: np.ndarray, labels: np.ndarray, chunk: int = 256
) -> EarlyExit:
    """Per timestep, the margin threshold with the highest accuracy on these images.

    Candidates: every integer 0..t and inf (never the IC); ties go to the larger threshold
    (the FC is the reference, so the IC has to earn its use). Chunks of `chunk` timesteps keep
    memory at O(chunk T) beyond the inputs.
    """
    fc, ic = _check_pair(fc_cum, ic_cum)
    y = np.asarray(labels)
    n_img, n_t, _ = fc.shape
    thr = np.empty(n_t)
    for s in range(0, n_t, chunk):
        e = min(n_t, s + chunk)
        margin = ic_margin(ic[:, s:e])  # (N, L) in 0..t
        gain = (decide(ic[:, s:e]) == y[:, None]).astype(np.int64) - (
            decide(fc[:, s:e]) == y[:, None]
        )
        width = e + 1  # margins are <= t <= e
        rows = np.arange(e - s)[None, :]
        hist = np.bincount((rows * width + margin).ravel(), gain.ravel(), (e - s) * width)
        hist = hist.reshape(e - s, width)
        # acc(theta) - acc(inf) = sum of gains of images with margin >= theta
        tail = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]
        for j in range(e - s):
            t = s + j + 1
            g = np.round(tail[j, : t + 1]).astype(np.int64)
            best = g.max()
            if best <= 0:
                thr[s + j] = np.inf
            else:
                thr[s + j] = float(np.flatnonzero(g == best)[-1])
    return EarlyExit(thr)


# --------------------------------------------------------------------------- all methods


METHOD_NAMES: tuple[str, ...] = ("DL", "SL", "BSF-Grid", "BSF-Emp", "Early-Exit")


@dataclass(frozen=True)
class Tuning:
    """What is tuned on the training subset for one IC: alpha(t) per fusion method (exact, its
    PWL fit and the fixed-point LUT the chip stores) and the early-exit thresholds."""

    schedules: dict[str, AlphaSchedule]  # exact per-step alpha: "BSF-Grid", "BSF-Emp"
    pwl: dict[str, PiecewiseLinearAlpha]
    luts: dict[str, AlphaLUT]
    early_exit: EarlyExit

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (an infinite early-exit threshold is stored as null)."""
        return {
            "schedules": {
                k: {
                    "alpha": s.alpha.tolist(),
                    "method": str(s.method),
                    "estimator": str(s.estimator),
                }
                for k, s in self.schedules.items()
            },
            "pwl": {k: p.to_dict() for k, p in self.pwl.items()},
            "luts": {k: lut.to_dict() for k, lut in self.luts.items()},
            "early_exit_threshold": [
                None if math.isinf(v) else float(v) for v in self.early_exit.threshold
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Tuning:
        schedules = {
            k: AlphaSchedule(
                np.asarray(v["alpha"], np.float64), _method(v["method"]), Estimator(v["estimator"])
            )
            for k, v in d["schedules"].items()
        }
        thr = np.array([np.inf if v is None else v for v in d["early_exit_threshold"]], float)
        return cls(
            schedules,
            {k: PiecewiseLinearAlpha.from_dict(v) for k, v in d["pwl"].items()},
            {k: AlphaLUT.from_dict(v) for k, v in d["luts"].items()},
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
        "BSF-Grid": grid_search_alpha(tune_fc, tune_ic, tune_labels, grid, estimator),
        "BSF-Emp": (
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
    """Test accuracy (T,) of every method (keys: METHOD_NAMES) under a `Tuning`.

    BSF curves use the LUT (what the chip runs) unless compare_methods had use_lut=False;
    `approximation[name]` also has the exact-alpha and PWL curves.
    """

    accuracy: dict[str, np.ndarray]
    tuning: Tuning
    approximation: dict[str, ApproximationReport]  # on the test images


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
        "DL": accuracy_over_time(np.asarray(test_fc), test_labels),
        "SL": accuracy_over_time(np.asarray(test_ic), test_labels),
    }
    for k in tuning.schedules:
        acc[k] = approx[k].accuracy_lut if use_lut else approx[k].accuracy_exact
    acc["Early-Exit"] = tuning.early_exit.accuracy(test_fc, test_ic, test_labels)
    return FusionComparison(acc, tuning, approx)
