"""alpha(t) by empirical Bayes (eq. 30): per timestep, the prior strength maximising the
marginal likelihood of the FC's spikes under the IC's Beta prior; no labels needed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.special import betaln

from hwsim.errors import InputError
from hwsim.fusion._parallel import over_timesteps
from hwsim.fusion.alpha_search import AlphaMethod, AlphaSchedule
from hwsim.fusion.posterior import Estimator, _check_alpha, _check_pair

DEFAULT_EB_BOUNDS: tuple[float, float] = (1e-2, 1e4)
"""alpha range of the empirical-Bayes search (MEAN); MAP searches 1 + this range."""


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

    K = 0 never does (no prior, see `hwsim.fusion.posterior`). MEAN also drops K = N (E = 1): its
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
        raise InputError("empirical Bayes with the MAP prior needs alpha >= 1 (eq. 25)")
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
        raise InputError(f"bounds must satisfy 0 < lower < upper, got {bounds}")
    if Estimator(estimator) is Estimator.MAP and lo < 1:
        raise InputError("empirical Bayes with the MAP prior needs alpha >= 1 (eq. 25)")
    decades = math.log10(hi / lo)
    n_grid = max(2, int(math.ceil(decades * points_per_decade)) + 1)
    u_grid = np.linspace(math.log(lo), math.log(hi), n_grid)
    n_t = fc.shape[1]
    alpha = np.empty(n_t)
    values = np.empty(n_t)
    is_map = Estimator(estimator) is Estimator.MAP
    over_timesteps(
        n_t, lambda t0, t1: _eb_search(fc, ic, u_grid, float(xtol), is_map, t0, t1, alpha, values)
    )
    alpha = np.clip(alpha, lo, hi)
    return EmpiricalBayesResult(
        AlphaSchedule(alpha, AlphaMethod.EMPIRICAL_BAYES, estimator), values
    )


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
        raise InputError(f"entry-mean grid must be positive (>= 1 for MAP), got {grid}")
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
