"""alpha(t) as the fusion unit stores it: a piecewise-linear (PWL) fit on breakpoint timesteps,
its fixed-point LUT, what the approximation costs in alpha and in accuracy, and the choice of
breakpoints and format by the accuracy they cost (`choose_lut`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from scipy.optimize import nnls

from hwsim.errors import InputError
from hwsim.fixed_point import AlphaLUT, FixedPoint
from hwsim.fusion.alpha_search import AlphaMethod, AlphaSchedule, _method
from hwsim.fusion.posterior import Estimator, _check_alpha
from hwsim.methods import Ties


def breakpoints(
    timesteps: int, fine_step: int = 10, fine_until: int = 500, coarse_step: int = 100
) -> np.ndarray:
    """Breakpoint timesteps 1, fine_step, 2 fine_step, ..., fine_until, then every coarse_step,
    and the last timestep: int64, strictly increasing, within [1, timesteps]."""
    if min(timesteps, fine_step, coarse_step) < 1 or fine_until < 0:
        raise InputError("timesteps and steps must be >= 1, fine_until >= 0")
    fine = np.arange(fine_step, min(fine_until, timesteps) + 1, fine_step)
    start = fine[-1] if fine.size else 0
    coarse = np.arange(start + coarse_step, timesteps + 1, coarse_step)
    t = np.unique(np.concatenate([[1], fine, coarse, [timesteps]]))
    return t.astype(np.int64)


def knot_layout(timesteps: int, step: int) -> np.ndarray:
    """The breakpoint layout of one knot spacing: every `step` steps to 500, then every
    10 `step` (`breakpoints(timesteps, step, 500, 10 step)`; step 10 is the default layout)."""
    return breakpoints(timesteps, step, 500, 10 * step)


class FitMethod(StrEnum):
    """How PWL breakpoint values are obtained from a per-step schedule."""

    SAMPLE = "sample"  # f(t_k) = alpha(t_k): the default, keeps accuracy
    LEAST_SQUARES = "least-squares"  # continuous PWL minimising sum_t (f(t) - alpha(t))^2, f >= 0


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
            raise InputError("PWL alpha needs equal-length, non-empty, increasing 't'/'alpha'")
        _check_alpha(alpha)
        return cls(t, alpha, _method(d.get("method", "pwl")), Estimator(d.get("estimator", "mean")))


def fit_pwl(
    schedule: AlphaSchedule,
    knots: np.ndarray | None = None,
    method: FitMethod = FitMethod.SAMPLE,
) -> PiecewiseLinearAlpha:
    """Piecewise-linear approximation of a per-step schedule on `knots` (default `breakpoints`).

    SAMPLE (default): alpha at the breakpoint steps, the reference code's method; every stored
    value is one the tuning chose for its step. LEAST_SQUARES: the continuous PWL with
    alpha >= 0 closest in squared alpha to every step's alpha (scipy nnls on the hat basis).
    A grid-searched alpha spans decades and jumps between them, so the least-squares fit is
    pulled to values no step chose (measured: a sawtooth from 0 to 830 that cost 28 points of
    accuracy at t = 26-30 on the default model); sampling lost ~0.01 points. Both reproduce a
    schedule that is itself piecewise linear on these knots exactly.
    """
    a = np.asarray(schedule.alpha, np.float64)
    n_t = a.size
    knots = breakpoints(n_t) if knots is None else np.asarray(knots, np.int64)
    if knots.ndim != 1 or knots.size == 0 or knots[0] < 1 or knots[-1] > n_t:
        raise InputError(f"knots must lie in [1, {n_t}]")
    if np.any(np.diff(knots) <= 0):
        raise InputError("knots must be strictly increasing")
    if method is FitMethod.SAMPLE:
        values = a[knots - 1]
    else:
        basis = _hat_basis(np.arange(1, n_t + 1, dtype=np.float64), knots.astype(np.float64))
        values = nnls(basis, a)[0]
    return PiecewiseLinearAlpha(knots, values, schedule.method, schedule.estimator)


def lut_from_pwl(pwl: PiecewiseLinearAlpha, fmt: FixedPoint | None = None) -> AlphaLUT:
    """The LUT storing `pwl`'s breakpoint values rounded to `fmt` (default `FixedPoint()`),
    saturating at its range; it keeps the schedule's method and estimator."""
    fmt = FixedPoint() if fmt is None else fmt
    t = np.asarray(pwl.t, np.int64)
    return AlphaLUT(t, fmt.quantize(pwl.alpha), fmt, pwl.method, pwl.estimator)


def lut_as_pwl(lut: AlphaLUT) -> PiecewiseLinearAlpha:
    """The decoded table as a PWL: what the fusion unit interpolates."""
    return PiecewiseLinearAlpha(lut.t, lut.alpha, _method(lut.method), Estimator(lut.estimator))


def lut_schedule(lut: AlphaLUT, timesteps: int) -> AlphaSchedule:
    """Per-step alpha of the LUT for t = 1..timesteps (the float reference's, `AlphaLUT`
    called), with its method and estimator."""
    return lut_as_pwl(lut).schedule(timesteps)


def saturated(lut: AlphaLUT, pwl: PiecewiseLinearAlpha) -> int:
    """Breakpoints of `pwl` whose alpha exceeds the LUT format's range."""
    return int(np.sum(np.asarray(pwl.alpha) > lut.fmt.max_code * lut.fmt.lsb))


@dataclass(frozen=True)
class LossBudget:
    """The accuracy an approximation of alpha(t) may cost on the tuning images, as a fraction
    of images averaged over t = 1..T: `knots`, the float PWL against the exact per-step alpha;
    `quantisation`, the fixed-point LUT against that float PWL. (The worst single step is
    reported, not budgeted: it sits in the first tens of steps, where the FC has barely fired,
    accuracy is near chance and the per-step alpha jumps between decades.)"""

    knots: float = 0.0015  # 0.15 points
    quantisation: float = 0.0002  # 0.02 points

    def __post_init__(self) -> None:
        if not (0 <= self.knots <= 1 and 0 <= self.quantisation <= 1):
            raise InputError(f"loss budget must lie in [0, 1], got {self}")


@dataclass(frozen=True)
class LUTCandidate:
    """One approximation tried: knot spacing, entries, fixed-point format (None: the float
    PWL) and its accuracy loss on the tuning images (fraction; mean over t and max)."""

    knot_step: int
    entries: int
    int_bits: int | None
    frac_bits: int | None
    loss_mean: float
    loss_max: float

    @property
    def fmt(self) -> FixedPoint | None:
        if self.int_bits is None or self.frac_bits is None:
            return None
        return FixedPoint(self.int_bits, self.frac_bits)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LUTChoice:
    """How the LUT of one method was chosen (`choose_lut`): every knot spacing tried (float
    breakpoints), every format tried on the chosen spacing, the chosen LUT, and the steps the
    losses are averaged over (t = 1..horizon, `loss_horizon`)."""

    knots: tuple[LUTCandidate, ...]
    formats: tuple[LUTCandidate, ...]
    chosen: LUTCandidate
    budget: LossBudget
    horizon: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "knots": [c.to_dict() for c in self.knots],
            "formats": [c.to_dict() for c in self.formats],
            "chosen": self.chosen.to_dict(),
            "budget": {"knots": self.budget.knots, "quantisation": self.budget.quantisation},
            "horizon": self.horizon,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LUTChoice:
        return cls(
            tuple(LUTCandidate(**c) for c in d["knots"]),
            tuple(LUTCandidate(**c) for c in d["formats"]),
            LUTCandidate(**d["chosen"]),
            LossBudget(**d["budget"]),
            int(d["horizon"]),
        )


def loss_horizon(exact_accuracy: np.ndarray) -> int:
    """The steps an approximation's loss is averaged over: t = 1 .. the first step at which the
    exact schedule's accuracy reaches 99% of its maximum (the rise, where the methods differ;
    past it every curve sits on its plateau, and averaging the plateau in would make a longer
    run excuse a larger loss at the target)."""
    acc = np.asarray(exact_accuracy)
    return int(np.argmax(acc >= 0.99 * acc.max())) + 1


def int_bits_for(max_alpha: float, frac_bits: int) -> int:
    """The fewest integer bits whose format holds max_alpha without saturating after rounding
    to the nearest code (max_alpha + LSB/2 < 2^int_bits), at least one bit in all."""
    half = 2.0 ** -(frac_bits + 1)
    bits = max(0, math.ceil(math.log2(max_alpha + half)))
    while 2.0**bits <= max_alpha + half:  # guard against log2 rounding
        bits += 1
    return max(bits, 1 - frac_bits)


def choose_lut(
    schedule: AlphaSchedule,
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    *,
    knot_steps: tuple[int, ...] = (1, 2, 5, 10, 20, 50),
    frac_bits: tuple[int, ...] = tuple(range(9)),
    fit: FitMethod = FitMethod.SAMPLE,
    budget: LossBudget | None = None,
    ties: Ties | None = None,
    image_ids: np.ndarray | None = None,
) -> tuple[PiecewiseLinearAlpha, AlphaLUT, LUTChoice]:
    """The smallest LUT whose accuracy loss on these (tuning) images stays within `budget`:
    first the coarsest knot spacing (`knot_layout`) whose float PWL loses at most budget.knots
    against `schedule` on average (else the finest), then, on those knots, the fewest fraction
    bits (integer bits from `int_bits_for`, so nothing saturates) whose LUT loses at most
    budget.quantisation more than the float PWL (else the most). Loss at t is the exact
    schedule's accuracy minus the approximation's, averaged (and its worst step taken) over
    t = 1..`loss_horizon`; every candidate is reported. Accuracies credit ties by `ties`
    (default fair).
    """
    budget = LossBudget() if budget is None else budget
    if not knot_steps or not frac_bits or min(knot_steps) < 1 or min(frac_bits) < 0:
        raise InputError("choose_lut needs knot steps >= 1 and fraction bits >= 0")
    n_t = np.asarray(fc_cum).shape[1]
    exact = schedule.accuracy(fc_cum, ic_cum, labels, ties, image_ids)
    horizon = loss_horizon(exact)

    def loss(s: AlphaSchedule) -> tuple[float, float]:
        d = (exact - s.accuracy(fc_cum, ic_cum, labels, ties, image_ids))[:horizon]
        return float(d.mean()), float(d.max())

    fits, knots = {}, []
    for step in sorted(set(knot_steps), reverse=True):
        fits[step] = fit_pwl(schedule, knot_layout(n_t, step), fit)
        knots.append(
            LUTCandidate(step, fits[step].t.size, None, None, *loss(fits[step].schedule(n_t)))
        )
    ok = [c for c in knots if c.loss_mean <= budget.knots]
    step = ok[0].knot_step if ok else min(knot_steps)
    pwl_loss = next(c.loss_mean for c in knots if c.knot_step == step)
    pwl = fits[step]
    amax = float(np.max(pwl.alpha))
    formats, luts = [], {}
    for f in sorted(set(frac_bits)):
        fmt = FixedPoint(int_bits_for(amax, f), f)
        luts[f] = lut_from_pwl(pwl, fmt)
        formats.append(
            LUTCandidate(step, pwl.t.size, fmt.int_bits, f, *loss(lut_schedule(luts[f], n_t)))
        )
    ok = [c for c in formats if c.loss_mean - pwl_loss <= budget.quantisation]
    chosen = ok[0] if ok else formats[-1]
    choice = LUTChoice(tuple(knots), tuple(formats), chosen, budget, horizon)
    return pwl, luts[chosen.frac_bits], choice


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
    ties: Ties | None = None,
) -> ApproximationReport:
    """Approximation error of pwl/lut against `schedule` and the accuracies all three give
    (ties credited by `ties`, default fair)."""
    n_t = np.asarray(fc_cum).shape[1]
    return approximation_of(
        schedule,
        pwl,
        lut,
        n_t,
        *(
            s.accuracy(fc_cum, ic_cum, labels, ties)
            for s in (schedule, pwl.schedule(n_t), lut_schedule(lut, n_t))
        ),
    )


def approximation_of(
    schedule: AlphaSchedule,
    pwl: PiecewiseLinearAlpha,
    lut: AlphaLUT,
    timesteps: int,
    accuracy_exact: np.ndarray,
    accuracy_pwl: np.ndarray,
    accuracy_lut: np.ndarray,
) -> ApproximationReport:
    """The report from accuracies (T,) already computed (e.g. assembled over cross-fit folds):
    the alpha errors over t = 1..timesteps of pwl and lut against `schedule`."""
    exact = np.asarray(schedule.alpha, np.float64)[:timesteps]
    p = pwl(np.arange(1, timesteps + 1))
    q = lut(np.arange(1, timesteps + 1))
    e_pwl = np.abs(p - exact)
    e_lut = np.abs(q - exact)
    return ApproximationReport(
        pwl_max_abs=float(e_pwl.max()),
        pwl_mean_abs=float(e_pwl.mean()),
        lut_max_abs=float(e_lut.max()),
        lut_mean_abs=float(e_lut.mean()),
        lut_vs_pwl_max_abs=float(np.abs(q - p).max()),
        accuracy_exact=np.asarray(accuracy_exact),
        accuracy_pwl=np.asarray(accuracy_pwl),
        accuracy_lut=np.asarray(accuracy_lut),
    )
