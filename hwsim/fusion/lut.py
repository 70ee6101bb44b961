"""alpha(t) as the fusion unit stores it: a piecewise-linear (PWL) fit on breakpoint timesteps,
its fixed-point LUT, and what the approximation costs in alpha and in accuracy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from scipy.optimize import nnls

from hwsim.fusion.alpha_search import AlphaMethod, AlphaSchedule, _method
from hwsim.fusion.posterior import Estimator, _check_alpha


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
