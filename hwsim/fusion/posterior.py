"""The fused estimate (Habara et al. 2024, section 5, eq. 29), its decisions and their credit.

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
  ((M - 1) + alpha) K / (((K - 1) + alpha) N), clipped to [0, 1]. For alpha >= 1 it equals MEAN
  with alpha - 1 (alpha = 1: the FC alone). For alpha < 1 (an improper prior for small E) the
  clip returns the posterior's boundary mode where the formula leaves [0, 1] (M = 0 gives 0; a
  posterior with b <= 1 peaks at 1). K + alpha - 1 = 0 (only K = 1, alpha = 0) has no mode:
  the estimate is M / N, as for a silent IC.

Edge cases. E = 0 (the IC never fired for c): Beta(alpha, inf) is a point mass at 0 that would
veto c whatever the FC says (the reference code's E + 1e-16 does exactly that); hwsim treats a
silent IC class as carrying no prior: p = M / N. (Consequence: with a strong prior a class with
K = 0 is judged on the FC's rate while K = 1 is pulled to 1/N.) E = 1 is finite in both forms.
Negative, infinite or NaN alpha is an error.

Exact ties. Every estimate is N p_c = num_c / den_c with num and den linear in alpha with
integer coefficients (MEAN: K alpha + K M over alpha + K; K = 0: M over 1; MAP: K alpha +
K (M - 1) over alpha + K - 1, the clip giving 0 over 1 or N over 1), so p_a - p_b has the sign of
num_a den_b - num_b den_a, a quadratic in alpha with integer coefficients. The kernels compare
the float64 scores (each within 5 roundings, relative error < 6e-16, of the true value) and,
among the classes within 2^-40 of the best float score, decide by the sign of that quadratic at
alpha's exact float64 value, evaluated without rounding (`_quadratic_sign`). So two classes tie
exactly when their estimates are mathematically equal for that alpha (e.g. M = K against K = 0
with the same M, or (M, K) pairs whose quadratic has alpha as a root, such as alpha = 2), never
by rounding, as the fixed-point fusion unit compares them (`hwsim.hw.fusion_unit`). A tied top
is credited by the run's tie rule (`hwsim.methods.Ties`); counts up to T = `MAX_STEPS`.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from numba import njit

from hwsim.errors import InputError
from hwsim.fusion._parallel import over_timesteps
from hwsim.methods import TieRule, Ties, credit_unit, image_ids_of, tie_draws, top_credit


class Estimator(StrEnum):
    """Point estimate taken from the posterior (see the module docstring)."""

    MEAN = "mean"
    MAP = "map"


MAX_STEPS = 100_000
"""The longest run whose exact comparisons fit: the quadratic's integer coefficients (up to
4 T^3) stay below 2^53, exact in float64."""

CREDIT_DTYPE = np.float32
"""Per-image credits (N, T) in [0, 1]: 1/k is kept to float32's 24 bits, as the bootstrap
reads it (`hwsim.metrics.bootstrap`)."""


def _check_alpha(alpha: np.ndarray) -> None:
    if np.any(alpha < 0) or not np.all(np.isfinite(alpha)):
        raise InputError("alpha must be >= 0 and finite")


def posterior(
    fc_count: np.ndarray,
    ic_count: np.ndarray,
    n: int | np.ndarray,
    alpha: float | np.ndarray,
    estimator: Estimator = Estimator.MEAN,
) -> np.ndarray:
    """Fused firing-probability estimate per class (eq. 29 for MAP; posterior mean by default).

    fc_count M and ic_count K are spike counts after `n` timesteps (matching shapes, classes
    last); n and alpha broadcast against them. Returns float64 probabilities in [0, 1] (to
    within 5 roundings; decisions on them are made exactly by the kernels, not by comparing
    these floats).
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
        den = ((k - 1.0) + alpha) * n
        fused = np.minimum(np.maximum(((m - 1.0) + alpha) * k / den, 0.0), 1.0)
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
    """Class with the highest score along the last axis; -1 where the top score is tied. For
    exact scores (integer counts); fused decisions come from `fused_decisions`."""
    top = scores.max(axis=-1, keepdims=True)
    winners = (scores == top).sum(axis=-1)
    return np.where(winners == 1, scores.argmax(axis=-1), -1)


def argmax_credit(
    scores: np.ndarray,
    labels: np.ndarray,
    ties: Ties | None = None,
    image_ids: np.ndarray | None = None,
    chunk: int = 256,
) -> np.ndarray:
    """Per image and timestep, the credit of the argmax of exact scores (N, T, C) (a head's
    integer spike counts: DL, SL) under `ties` (default fair: 1/k for a k-way tie that holds
    the label; `hwsim.methods.top_credit`): (N, T) `CREDIT_DTYPE` in [0, 1]. Image ids (for the
    random rule's draws) default to 0..N-1; images are taken `chunk` at a time."""
    ties = Ties() if ties is None else ties
    s = np.asarray(scores)
    y = np.asarray(labels)
    ids = image_ids_of(s.shape[0], image_ids)
    if y.shape != (s.shape[0],):
        raise InputError(f"labels {y.shape} do not match {s.shape[0]} images")
    out = np.empty(s.shape[:2], CREDIT_DTYPE)
    for a in range(0, s.shape[0], chunk):
        b = min(a + chunk, s.shape[0])
        top = s[a:b] == s[a:b].max(axis=-1, keepdims=True)
        out[a:b] = top_credit(top, y[a:b], ties, ids[a:b])
    return out


def accuracy_over_time(
    scores: np.ndarray, labels: np.ndarray, ties: Ties | None = None
) -> np.ndarray:
    """Accuracy at each timestep from exact scores (N, T, C): the mean `argmax_credit` under
    `ties` (default fair). Returns (T,) float64."""
    return argmax_credit(scores, labels, ties).mean(axis=0, dtype=np.float64)


def cumulative(spikes: np.ndarray) -> np.ndarray:
    """Spike counts up to and including each timestep: (N, T, C) uint8 -> (N, T, C) int32."""
    return np.cumsum(spikes, axis=1, dtype=np.int32)


READOUT_BYTES = 8 << 20
"""Bytes of cumulative counts (int32, both heads) a read-out takes at once: the evaluation's
(`hwsim.fusion.tuning.compare_on_spikes`) and the fusion unit's (`hwsim.pipeline.cycles`),
so their counts and temporaries grow with a chunk of images, not the test set."""


def readout_chunks(spikes: np.ndarray) -> list[slice]:
    """Consecutive ranges of `spikes`' images (N, T, C) whose cumulative counts of both heads
    fit in `READOUT_BYTES` (at least one image each; one empty range for N = 0)."""
    n, steps, classes = spikes.shape
    size = max(1, READOUT_BYTES // max(1, 8 * steps * classes))
    return [slice(i, i + size) for i in range(0, max(n, 1), size)]


def _counts(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 3:
        raise InputError(f"cumulative counts must be (images, timesteps, classes), got {a.shape}")
    return np.ascontiguousarray(a, dtype=np.int32)


def _check_pair(fc_cum: np.ndarray, ic_cum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fc, ic = _counts(fc_cum), _counts(ic_cum)
    if fc.shape != ic.shape:
        raise InputError(f"FC counts {fc.shape} and IC counts {ic.shape} differ in shape")
    if fc.shape[1] > MAX_STEPS:
        raise InputError(f"{fc.shape[1]} timesteps: exact fusion decisions hold up to {MAX_STEPS}")
    steps = np.arange(1, fc.shape[1] + 1)
    for name, x in (("FC", fc), ("IC", ic)):
        if x.size and (x.min() < 0 or np.any(x.max(axis=(0, 2)) > steps)):
            raise InputError(f"{name} counts must be cumulative: 0 <= count <= t after t steps")
    return fc, ic


# --------------------------------------------------------------------------- exact comparison

_SPLIT = 134217729.0  # 2^27 + 1: Veltkamp's splitter for float64
_TINY = 2.0**-300  # below it (and above 1 / _TINY) one coefficient decides the sign
_CLOSE = 2.0**-40  # float scores within this relative distance of the best are compared exactly


@njit(cache=True, inline="always")
def _two_sum(a: float, b: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """a + b = s + e exactly (Knuth)."""
    s = a + b
    bv = s - a
    return s, (a - (s - bv)) + (b - bv)


@njit(cache=True, inline="always")
def _two_product(a: float, b: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """a b = p + e exactly (Dekker, with Veltkamp's split; no overflow or underflow here)."""
    p = a * b
    c = _SPLIT * a
    ah = c - (c - a)
    al = a - ah
    c = _SPLIT * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@njit(cache=True)
def _sign_of_sum(work, n: int) -> int:  # pragma: no cover - compiled
    """The sign of the exact sum of the float64 terms work[:n], n <= 8: Shewchuk's
    grow-expansion (in work[8:16]) turns them into non-overlapping components of increasing
    magnitude, whose largest nonzero one has the sum's sign."""
    for j in range(n):
        q = work[j]
        for i in range(j):
            q, work[8 + i] = _two_sum(q, work[8 + i])
        work[8 + j] = q
    for i in range(n - 1, -1, -1):
        if work[8 + i] != 0.0:
            return 1 if work[8 + i] > 0.0 else -1
    return 0


@njit(cache=True)
def _first_sign(x: float, y: float, z: float) -> int:  # pragma: no cover - compiled
    """The sign of the first nonzero of x, y, z (0 if all are)."""
    for v in (x, y, z):
        if v != 0.0:
            return 1 if v > 0.0 else -1
    return 0


@njit(cache=True)
def _quadratic_sign(c2, c1, c0, a, work) -> int:  # pragma: no cover - compiled
    """sign(c2 a^2 + c1 a + c0) without rounding, for integers |c| < 2^53 and a >= 0 a float64
    taken at its exact value. The float value decides where it is farther from 0 than 1e-14 of
    the sum of the terms' magnitudes (its rounding error, four roundings of Horner's rule, is
    below 4.5e-16 of that sum); else the products are split into exact float pairs and summed
    exactly (`_sign_of_sum`, scratch `work` of 16 floats). For a < 2^-300 (a > 2^300) the
    lowest (highest) nonzero coefficient decides, the other terms being below 2^-240 of it."""
    x2, x1, x0 = float(c2), float(c1), float(c0)
    if a == 0.0 or (x2 == 0.0 and x1 == 0.0):
        return _first_sign(x0, 0.0, 0.0)
    if a < _TINY:
        return _first_sign(x0, x1, x2)
    if a > 1.0 / _TINY:
        return _first_sign(x2, x1, x0)
    q = (x2 * a + x1) * a + x0
    bound = 1e-14 * ((abs(x2) * a + abs(x1)) * a + abs(x0))
    if q > bound:
        return 1
    if q < -bound:
        return -1
    work[0] = x0
    work[1], work[2] = _two_product(x1, a)
    if x2 == 0.0:
        return _sign_of_sum(work, 3)
    sq, sq_err = _two_product(a, a)
    work[3], work[4] = _two_product(x2, sq)
    work[5], work[6] = _two_product(x2, sq_err)
    return _sign_of_sum(work, 7)


@njit(cache=True)
def _fraction(m_count, k_count, n_steps, a, is_map, work):  # pragma: no cover - compiled
    """N p as (p1 alpha + p0) / (q1 alpha + q0) with integer coefficients and a positive
    denominator: MEAN K (alpha + M) / (alpha + K); MAP K (alpha + M - 1) / (alpha + K - 1)
    clipped to [0, N]; K = 0 (and MAP's K = 1, alpha = 0) M / 1. int64 4-tuple."""
    m, k, n = np.int64(m_count), np.int64(k_count), np.int64(n_steps)
    zero, one = np.int64(0), np.int64(1)
    if k <= 0 or (is_map and k == 1 and a == 0.0):
        return zero, m, zero, one
    if not is_map:
        return k, k * m, one, k
    p1, p0, q0 = k, k * (m - 1), k - 1
    if _quadratic_sign(zero, p1, p0, a, work) <= 0:
        return zero, zero, zero, one
    if _quadratic_sign(zero, p1 - n, p0 - n * q0, a, work) >= 0:
        return zero, n, zero, one
    return p1, p0, one, q0


@njit(cache=True)
def _compare(fa, fb, a, work) -> int:  # pragma: no cover - compiled
    """sign(p_a - p_b) exactly, from the fractions `_fraction` gives."""
    p1a, p0a, q1a, q0a = fa
    p1b, p0b, q1b, q0b = fb
    c2 = p1a * q1b - p1b * q1a
    c1 = p1a * q0b + p0a * q1b - p1b * q0a - p0b * q1a
    c0 = p0a * q0b - p0b * q0a
    return _quadratic_sign(c2, c1, c0, a, work)


@njit(cache=True, inline="always")
def _score(m: float, k: float, n: float, a: float, is_map: bool) -> float:  # pragma: no cover
    """One class's estimate; the same float64 operations as `posterior`."""
    if k <= 0.0:
        return m / n
    if not is_map:
        return (a + m) * k / ((a + k) * n)
    den = ((k - 1.0) + a) * n
    if den == 0.0:
        return m / n
    return min(max(((m - 1.0) + a) * k / den, 0.0), 1.0)


@njit(cache=True, inline="always")
def _float_top(mf, kf, n, a, is_map) -> int:  # pragma: no cover - compiled
    """The class with the largest float score if no other is within 2^-40 of it (then the
    floats decide exactly: `_CLOSE`), else -1. mf, kf: the counts as floats; n: the step."""
    best = -1.0
    second = -1.0
    arg = 0
    for c in range(mf.size):
        s = _score(mf[c], kf[c], n, a, is_map)
        if s > best:
            second = best
            best = s
            arg = c
        else:
            second = max(second, s)  # branch-free: the order of the classes is random
    return arg if second < best - _CLOSE * best else -1


@njit(cache=True)
def _exact_top(m, k, mf, kf, t, a, is_map, scores, top, work) -> int:  # pragma: no cover
    """Where `_float_top` finds several close classes: fills top[:j] with the classes whose
    estimate equals the largest exactly, in index order, and returns j (>= 1). m, k: the
    counts (integers), mf, kf: the same as floats; `scores` (C floats) and `work` (16) are
    scratch."""
    n = float(t)
    best = -1.0
    for c in range(m.size):
        scores[c] = _score(mf[c], kf[c], n, a, is_map)
        best = max(best, scores[c])
    j = 0
    for c in range(m.size):
        if scores[c] >= best - _CLOSE * best:
            top[j] = c
            j += 1
    # exact among the close ones: the running best and the classes equal to it
    first = top[0]
    lead = _fraction(m[first], k[first], t, a, is_map, work)
    count = 1
    for i in range(1, j):
        c = top[i]
        if k[c] == k[first] and (m[c] == m[first] or k[c] == 0 or not is_map):
            # the same K: M decides (MEAN and K = 0 rise with M; MAP's clip can merge them)
            order = (m[c] > m[first]) - (m[c] < m[first])
        else:
            frac = _fraction(m[c], k[c], t, a, is_map, work)
            order = _compare(frac, lead, a, work)
        if order > 0:
            first = c
            lead = _fraction(m[c], k[c], t, a, is_map, work)
            top[0] = c
            count = 1
        elif order == 0:
            top[count] = c
            count += 1
    return count


_RULE_CODES = {TieRule.FAIR: 0, TieRule.WRONG: 1, TieRule.FIRST: 2, TieRule.RANDOM: 3}


@njit(cache=True, inline="always")
def _credit(top, j, label, rule, draw, unit) -> float:  # pragma: no cover - compiled
    """The credit (in `unit`s) of top set top[:j] for this label (`hwsim.methods.top_credit`'s
    rule, codes `_RULE_CODES`)."""
    if j == 1:
        return unit if top[0] == label else 0.0
    if rule == 0:
        for i in range(j):
            if top[i] == label:
                return unit / j
        return 0.0
    if rule == 1:
        return 0.0
    if rule == 2:
        return unit if top[0] == label else 0.0
    return unit if top[draw % np.uint64(j)] == label else 0.0


@njit(cache=True, nogil=True)
def _credit_sums(
    fc, ic, labels, alpha_gt, is_map, rule, draws, unit, t0, t1, out
):  # pragma: no cover - compiled
    """out[g, t] = the credit (units) of all images with alpha_gt[g, t], t in [t0, t1). The
    loop over the alphas calls nothing (`_float_top`); the few close ones are decided exactly
    after it."""
    n_img, n_t, n_c = fc.shape
    scores = np.empty(n_c)
    top = np.empty(n_c, np.int64)
    work = np.empty(16)
    mf = np.empty(n_c)
    kf = np.empty(n_c)
    close = np.empty(alpha_gt.shape[0], np.int64)
    for t in range(t0, t1):
        n = float(t + 1)
        for i in range(n_img):
            for c in range(n_c):
                mf[c] = fc[i, t, c]
                kf[c] = ic[i, t, c]
            label = labels[i]
            n_close = 0
            for g in range(alpha_gt.shape[0]):
                arg = _float_top(mf, kf, n, alpha_gt[g, t], is_map)
                if arg == label:
                    out[g, t] += unit
                elif arg < 0:
                    close[n_close] = g
                    n_close += 1
            if n_close:
                draw = draws[i, t] if rule == 3 else np.uint64(0)
                m = fc[i, t]
                k = ic[i, t]
                for q in range(n_close):
                    g = close[q]
                    j = _exact_top(m, k, mf, kf, t + 1, alpha_gt[g, t], is_map, scores, top, work)
                    out[g, t] += _credit(top, j, label, rule, draw, unit)


@njit(cache=True, nogil=True)
def _credit_matrix(
    fc, ic, labels, alpha_t, is_map, rule, draws, unit, t0, t1, out
):  # pragma: no cover - compiled
    """out[i, t] = image i's credit (units) with alpha_t[t], t in [t0, t1)."""
    n_img, n_t, n_c = fc.shape
    scores = np.empty(n_c)
    top = np.empty(n_c, np.int64)
    work = np.empty(16)
    mf = np.empty(n_c)
    kf = np.empty(n_c)
    for t in range(t0, t1):
        n = float(t + 1)
        for i in range(n_img):
            for c in range(n_c):
                mf[c] = fc[i, t, c]
                kf[c] = ic[i, t, c]
            arg = _float_top(mf, kf, n, alpha_t[t], is_map)
            if arg >= 0:
                out[i, t] = unit if arg == labels[i] else 0.0
                continue
            j = _exact_top(fc[i, t], ic[i, t], mf, kf, t + 1, alpha_t[t], is_map, scores, top, work)
            draw = draws[i, t] if rule == 3 else np.uint64(0)
            out[i, t] = _credit(top, j, labels[i], rule, draw, unit)


@njit(cache=True, nogil=True)
def _decisions(fc, ic, alpha_t, is_map, t0, t1, out):  # pragma: no cover - compiled
    """out[i, t] = the unique top class with alpha_t[t], -1 where it is tied exactly."""
    n_img, n_t, n_c = fc.shape
    scores = np.empty(n_c)
    top = np.empty(n_c, np.int64)
    work = np.empty(16)
    mf = np.empty(n_c)
    kf = np.empty(n_c)
    for t in range(t0, t1):
        n = float(t + 1)
        for i in range(n_img):
            for c in range(n_c):
                mf[c] = fc[i, t, c]
                kf[c] = ic[i, t, c]
            arg = _float_top(mf, kf, n, alpha_t[t], is_map)
            if arg < 0:
                j = _exact_top(
                    fc[i, t], ic[i, t], mf, kf, t + 1, alpha_t[t], is_map, scores, top, work
                )
                arg = top[0] if j == 1 else -1
            out[i, t] = arg


def _labels(labels: np.ndarray, n_img: int) -> np.ndarray:
    y = np.ascontiguousarray(labels, dtype=np.int64)
    if y.shape != (n_img,):
        raise InputError(f"labels {y.shape} do not match {n_img} images")
    return y


def _per_step_alpha(alpha: np.ndarray, n_t: int) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(alpha, np.float64)[:n_t])
    _check_alpha(a)
    if a.shape != (n_t,):
        raise InputError(f"alpha must have >= {n_t} per-step values, got {np.shape(alpha)}")
    return a


def _rule_inputs(ties: Ties | None, image_ids, n_img: int, n_t: int) -> tuple[int, np.ndarray]:
    """The kernels' rule code and draws ((N, T) for RANDOM, else a dummy)."""
    ties = Ties() if ties is None else ties
    if ties.rule is not TieRule.RANDOM:
        image_ids_of(n_img, image_ids)  # checked all the same
        return _RULE_CODES[ties.rule], np.zeros((1, 1), np.uint64)
    return _RULE_CODES[ties.rule], tie_draws(ties.seed, image_ids_of(n_img, image_ids), n_t)


def correct_counts(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    alpha: np.ndarray,
    estimator: Estimator = Estimator.MEAN,
    ties: Ties | None = None,
    image_ids: np.ndarray | None = None,
) -> np.ndarray:
    """The number of images decided right per (alpha row, timestep), ties credited by `ties`
    (default fair; a fraction of an image for a fair tie).

    alpha: (G,) values used at every timestep or (G, T) per timestep. Returns (G, T) float64,
    exact (sums of integer credit units, `hwsim.methods.credit_unit`, divided by the unit), so
    equal totals compare equal. A compiled kernel over chunks of timesteps on all cores;
    memory is O(G T) beyond the inputs.
    """
    fc, ic = _check_pair(fc_cum, ic_cum)
    n_img, n_t, n_c = fc.shape
    a = np.asarray(alpha, np.float64)
    _check_alpha(a)
    if a.ndim == 1:
        a = np.broadcast_to(a[:, None], (a.size, n_t))
    if a.ndim != 2 or a.shape[1] < n_t:
        raise InputError(f"alpha must be (G,) or (G, >= {n_t}), got {a.shape}")
    a = np.ascontiguousarray(a[:, :n_t])
    y = _labels(labels, n_img)
    rule, draws = _rule_inputs(ties, image_ids, n_img, n_t)
    unit = float(credit_unit(n_c))
    is_map = Estimator(estimator) is Estimator.MAP
    out = np.zeros((a.shape[0], n_t))

    def kernel(t0: int, t1: int) -> None:
        _credit_sums(fc, ic, y, a, is_map, rule, draws, unit, t0, t1, out)

    over_timesteps(n_t, kernel)
    return out / unit


def correct_matrix(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    alpha: np.ndarray,
    estimator: Estimator = Estimator.MEAN,
    ties: Ties | None = None,
    image_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Each image's credit at each timestep with alpha[t - 1]: (N, T) `CREDIT_DTYPE` in [0, 1]
    (1 right, 0 wrong, a tie by `ties`, default fair). The per-image form of `correct_counts`
    (its column sums are correct_counts(..., alpha[None, :]) to float32 rounding), which the
    paired bootstrap resamples. Image ids (the random rule's draws) default to 0..N-1.
    """
    fc, ic = _check_pair(fc_cum, ic_cum)
    n_img, n_t, n_c = fc.shape
    a = _per_step_alpha(alpha, n_t)
    y = _labels(labels, n_img)
    rule, draws = _rule_inputs(ties, image_ids, n_img, n_t)
    unit = float(credit_unit(n_c))
    is_map = Estimator(estimator) is Estimator.MAP
    out = np.zeros((n_img, n_t))

    def kernel(t0: int, t1: int) -> None:
        _credit_matrix(fc, ic, y, a, is_map, rule, draws, unit, t0, t1, out)

    over_timesteps(n_t, kernel)
    return (out / unit).astype(CREDIT_DTYPE)


def fused_decisions(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    alpha: np.ndarray,
    estimator: Estimator = Estimator.MEAN,
) -> np.ndarray:
    """The fused decision of each image at each timestep with alpha[t - 1]: the class with the
    largest estimate, -1 where it is tied exactly (module docstring): (N, T) int64. What the
    fixed-point fusion unit's decisions are checked against."""
    fc, ic = _check_pair(fc_cum, ic_cum)
    n_img, n_t, _ = fc.shape
    a = _per_step_alpha(alpha, n_t)
    is_map = Estimator(estimator) is Estimator.MAP
    out = np.empty((n_img, n_t), np.int64)
    over_timesteps(n_t, lambda t0, t1: _decisions(fc, ic, a, is_map, t0, t1, out))
    return out
