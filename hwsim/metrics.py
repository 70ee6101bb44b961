"""Accuracy-vs-energy metrics: energy to a target accuracy, AUC, the reduction R (eq. 33),
accuracy at an energy budget, paired bootstrap intervals of all of them (`bootstrap`), and
intervals simultaneous over many positions of a sweep (`simultaneous`).

A method's curve is the points (E_t, acc_t), t = 1..T, E_t = the cumulative energy after t
steps (pJ). For areas and interpolation it starts at (0, 0) (no timestep run, no decision) and
is linear between points; past E_T it holds acc_T (a finished run can give its answer at any
larger budget).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from hwsim.errors import InputError


@dataclass(frozen=True)
class Curve:
    """Accuracy and cumulative energy after each timestep t = 1..T for one method:
    `energy_pj[t - 1]` is the energy spent up to and including timestep t, pJ per image."""

    name: str
    accuracy: np.ndarray  # (T,) fraction
    energy_pj: np.ndarray  # (T,) pJ, cumulative

    def __post_init__(self) -> None:
        energy = np.asarray(self.energy_pj, np.float64)
        if energy.shape != np.shape(self.accuracy):
            raise InputError(
                f"curve {self.name}: energy_pj {energy.shape} and accuracy"
                f" {np.shape(self.accuracy)} must have the same shape"
            )
        object.__setattr__(self, "energy_pj", energy)

    @classmethod
    def per_step(cls, name: str, accuracy: np.ndarray, energy_per_step_pj: float) -> Curve:
        """A curve whose every timestep costs the same energy (SpikeSim's model), pJ."""
        steps = np.arange(1, len(accuracy) + 1)
        return cls(name, accuracy, float(energy_per_step_pj) * steps)

    @property
    def energy_per_step_pj(self) -> float:
        """Mean energy of one timestep over the run, pJ."""
        return float(self.energy_pj[-1]) / len(self.accuracy)


@dataclass(frozen=True)
class TargetResult:
    """When a method first reaches the target accuracy (None if it never does within T)."""

    name: str
    target: float
    timestep: int | None
    accuracy: float | None
    energy_pj: float | None


def target_accuracy(ann_accuracy: float, fraction: float = 0.99) -> float:
    """The accuracy goal of section 6.4: `fraction` (99%) of the ANN's FC accuracy."""
    return fraction * ann_accuracy


def first_reaching(accuracy: np.ndarray, target: float, *, sustained: bool = False) -> int | None:
    """First 1-based timestep t with accuracy[t - 1] >= target, or None.

    sustained=True: the first t from which the accuracy stays >= target up to T (a curve that
    touches the target and dips again does not count until it is back for good).
    """
    ok = np.asarray(accuracy) >= target
    if not sustained:
        hits = np.flatnonzero(ok)
        return int(hits[0]) + 1 if hits.size else None
    if not ok.size or not ok[-1]:
        return None
    misses = np.flatnonzero(~ok)
    return int(misses[-1]) + 2 if misses.size else 1


def to_target(curve: Curve, target: float, *, sustained: bool = False) -> TargetResult:
    """Timestep, accuracy and energy (pJ) at which `curve` first reaches `target`."""
    t = first_reaching(curve.accuracy, target, sustained=sustained)
    if t is None:
        return TargetResult(curve.name, target, None, None, None)
    return TargetResult(
        curve.name, target, t, float(curve.accuracy[t - 1]), float(curve.energy_pj[t - 1])
    )


def reduction(e_orig_pj: float | None, e_prop_pj: float | None) -> float | None:
    """R = 100 (E_orig - E_prop) / E_orig (Habara et al. 2024 eq. 33); None if undefined."""
    if e_orig_pj is None or e_prop_pj is None:
        return None
    return 100.0 * (e_orig_pj - e_prop_pj) / e_orig_pj


def _points(curve: Curve) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([[0.0], curve.energy_pj])
    y = np.concatenate([[0.0], np.asarray(curve.accuracy, np.float64)])
    return x, y


def _interp_rows(x: np.ndarray, ys: np.ndarray, at: np.ndarray) -> np.ndarray:
    """np.interp(at, x, row) for every row of ys (R, P) at once: (R, len(at)); x increasing,
    values held outside [x_0, x_P-1]."""
    at = np.clip(np.asarray(at, np.float64), x[0], x[-1])
    hi = np.clip(np.searchsorted(x, at, side="right"), 1, x.size - 1)
    lo = hi - 1
    width = x[hi] - x[lo]
    lam = np.divide(at - x[lo], width, out=np.ones_like(at), where=width > 0)
    return ys[:, lo] * (1 - lam) + ys[:, hi] * lam


def accuracy_at_energy(curve: Curve, energy_pj: float | np.ndarray) -> np.ndarray:
    """Accuracy at an energy budget (pJ), linear between timesteps, from (0, 0), held past E_T."""
    x, y = _points(curve)
    at = np.asarray(energy_pj, np.float64)
    return _interp_rows(x, y[None, :], at.ravel())[0].reshape(at.shape)


def envelope(curves: Sequence[Curve], energy_pj: np.ndarray) -> np.ndarray:
    """Best accuracy of any curve at each energy: the paper's Fig. 8 curve-level early exit
    (SL and DL joined at their crossing). The per-image baseline is `fusion.EarlyExit`."""
    return np.max([accuracy_at_energy(c, energy_pj) for c in curves], axis=0)


def _auc_areas(energy_pj: np.ndarray, accuracy: np.ndarray, energy_limit_pj: float) -> np.ndarray:
    """auc_area of the curves (energy_pj, row) for every row of accuracy (R, T): (R,) pJ."""
    if not energy_limit_pj > 0:
        raise InputError(f"energy_limit_pj {energy_limit_pj}: expected > 0 pJ")
    x = np.concatenate([[0.0], np.asarray(energy_pj, np.float64)])
    ys = np.concatenate([np.zeros((len(accuracy), 1)), accuracy], axis=1)
    keep = x < energy_limit_pj
    xs = np.concatenate([x[keep], [energy_limit_pj]])
    end = _interp_rows(x, ys, np.array([energy_limit_pj]))
    return np.trapezoid(np.concatenate([ys[:, keep], end], axis=1), xs, axis=1)


def auc_area(curve: Curve, energy_limit_pj: float) -> float:
    """Area under accuracy over energy from 0 to energy_limit_pj (trapezoid), in pJ."""
    acc = np.asarray(curve.accuracy, np.float64)[None, :]
    return float(_auc_areas(curve.energy_pj, acc, energy_limit_pj)[0])


def auc(curve: Curve, energy_limit_pj: float) -> float:
    """AUC normalised by the energy limit: the mean accuracy over budgets in [0, limit], in
    [0, 1]. The paper's unnormalised AUC (section 6.4, x up to 1.5e-2) is auc x limit."""
    return auc_area(curve, energy_limit_pj) / energy_limit_pj


@dataclass(frozen=True)
class Summary:
    """One method's headline numbers: target crossing, normalised AUC, R vs the baseline."""

    target: TargetResult
    auc: float
    reduction_pct: float | None


def summarize(
    curves: Mapping[str, Curve],
    target: float,
    energy_limit_pj: float,
    baseline: str,
    *,
    sustained: bool = False,
) -> dict[str, Summary]:
    """Target crossing, AUC up to energy_limit_pj and R (eq. 33) against the curve named
    `baseline` (`hwsim.methods.REFERENCE` in a run), per curve."""
    targets = {k: to_target(c, target, sustained=sustained) for k, c in curves.items()}
    base = targets[baseline].energy_pj if baseline in targets else None
    return {
        k: Summary(targets[k], auc(c, energy_limit_pj), reduction(base, targets[k].energy_pj))
        for k, c in curves.items()
    }


# --------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapConfig:
    """Paired bootstrap over test images: `resamples` draws of N images with replacement
    (seeded), percentile intervals at `level`; accuracy is also read at energy budgets that
    are `budget_fractions` of the first baseline's energy to the target on the whole test set
    (`bootstrap`)."""

    resamples: int = 1000
    level: float = 0.90
    seed: int = 0
    budget_fractions: tuple[float, ...] = (0.25, 0.5, 0.75)

    def __post_init__(self) -> None:
        if self.resamples < 100:
            raise InputError(f"bootstrap resamples {self.resamples}: expected at least 100")
        if not 0 < self.level < 1:
            raise InputError(f"bootstrap level {self.level}: expected a value in (0, 1)")
        if not self.budget_fractions or min(self.budget_fractions) <= 0:
            raise InputError(f"budget_fractions {self.budget_fractions}: expected values > 0")


@dataclass(frozen=True)
class Estimate:
    """A statistic on the whole test set (`value`) and its bootstrap interval [lo, hi].

    Steps and energy to a target are inf where it is not reached; R is -inf where only the
    baseline reaches it, +inf where only the method does, and NaN where neither does (such
    resamples are left out of the interval; `undefined` is their fraction). `samples`: the
    bootstrap samples the interval was read from (NaN included, in resample order), kept for
    intervals at other levels (`at_level`, `simultaneous`); not part of equality."""

    value: float
    lo: float
    hi: float
    undefined: float = 0.0
    samples: np.ndarray | None = field(default=None, compare=False, repr=False)

    def excludes_zero(self) -> bool:
        """Whether the whole interval lies on one side of 0."""
        return bool(self.lo > 0 or self.hi < 0)

    def at_level(self, level: float) -> Estimate:
        """The same value with the percentile interval of its samples at another level."""
        if self.samples is None:
            raise ValueError("an Estimate without samples has no interval at another level")
        return estimate(self.value, self.samples, level)


@dataclass(frozen=True)
class CurveEstimates:
    """One method's headline numbers with intervals: steps and energy (pJ) to the target,
    normalised AUC, R (eq. 33, %) against each baseline, accuracy at each energy budget."""

    timestep: Estimate
    energy_pj: Estimate
    auc: Estimate
    reduction_pct: dict[str, Estimate]
    accuracy_at_budget: tuple[Estimate, ...]


@dataclass(frozen=True)
class BootstrapResult:
    config: BootstrapConfig
    budgets_pj: np.ndarray  # (K,) energy budgets, pJ per image
    curves: dict[str, CurveEstimates]


RESAMPLE_BLOCK_BYTES = 4 << 20
"""Bytes of one block of bootstrap draws (int64): the resamples are drawn and summed a block of
them at a time (`resample_blocks`, `resampled_sums`), so a bootstrap holds a block of draws and
R sums, not R x N counts."""


def resample_blocks(n: int, resamples: int, seed: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """The bootstrap's draw counts a block of resamples at a time: (first resample, (m, n) int64
    counts of each of n images in each of the block's m resamples of size n, row sums n). One
    generator drawn in resample order, so the blocks are `resample_counts`' rows, whatever the
    block size."""
    rng = np.random.default_rng(seed)
    rows = max(1, RESAMPLE_BLOCK_BYTES // (8 * max(n, 1)))
    for r0 in range(0, resamples, rows):
        m = min(rows, resamples - r0)
        draws = rng.integers(0, n, (m, n)) + n * np.arange(m)[:, None]
        yield r0, np.bincount(draws.ravel(), minlength=m * n).reshape(m, n)


def resample_counts(n: int, resamples: int, seed: int = 0) -> np.ndarray:
    """How often each of n images is drawn in each of `resamples` bootstrap samples of size
    n: (resamples, n) float32 counts (row sums n); the blocks of `resample_blocks` whole."""
    out = np.empty((resamples, n), np.float32)
    for r0, counts in resample_blocks(n, resamples, seed):
        out[r0 : r0 + len(counts)] = counts
    return out


def in_units(x: np.ndarray, unit: int) -> np.ndarray:
    """x (credits) in units of 1 / unit, float64: with unit > 1 the integers x unit stands for
    (rounded: a float32 credit 1/3 is 840 / 2520 to 24 bits), with unit 1 x as it is."""
    scaled = np.asarray(x, np.float64) * unit
    return np.rint(scaled) if unit > 1 else scaled


def resampled_sums(
    values: Sequence[np.ndarray], resamples: int, seed: int = 0, unit: int = 1
) -> list[np.ndarray]:
    """For each array x of `values` ((N,) or (N, T), the same N images): sum over i of
    counts[r, i] x[i] for every resample r of `resample_counts(N, resamples, seed)`, float64
    (R,) or (R, T), in units of 1 / unit. Exact: with unit > 1 each x is taken as a multiple of
    1 / unit (the credits of `hwsim.methods.credit_unit`: x unit rounded to the integer it
    stands for), with unit 1 as given; sums of integers below 2^53 are exact in float64, so
    the result is the same on every CPU, BLAS, thread count and block (float sums of other
    values are BLAS's). One array at a time, its draws a block of resamples at a time (drawn
    again per array: the same seed, the same draws): memory one array in float64, one block
    and the sums, not R x N."""
    out = []
    for x in values:
        xs = in_units(x, unit)
        sums = np.empty((resamples, *xs.shape[1:]))
        for r0, counts in resample_blocks(len(xs), resamples, seed):
            sums[r0 : r0 + len(counts)] = counts.astype(np.float64) @ xs
        out.append(sums / unit if unit > 1 else sums)
        del xs
    return out


def _first_reaching_rows(accuracy: np.ndarray, target: np.ndarray) -> np.ndarray:
    """first_reaching for every row of accuracy (R, T) with its own target (R,): 1-based steps
    as float, inf where never reached."""
    ok = accuracy >= target[:, None]
    step = ok.argmax(axis=1).astype(np.float64) + 1
    return np.where(ok.any(axis=1), step, np.inf)


def _energy_at(energy_pj: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Cumulative energy at 1-based steps (inf: not reached) -> pJ (inf where not reached)."""
    finite = np.isfinite(steps)
    idx = np.where(finite, steps, 1).astype(np.int64) - 1
    return np.where(finite, np.asarray(energy_pj, np.float64)[idx], np.inf)


def _reduction_rows(e_base: np.ndarray, e_prop: np.ndarray) -> np.ndarray:
    """eq. 33 per resample, with the conventions of `Estimate` for targets not reached."""
    both = np.isfinite(e_base) & np.isfinite(e_prop)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = 100.0 * (e_base - e_prop) / e_base
    r = np.where(both, r, np.nan)
    r = np.where(np.isfinite(e_base) & ~np.isfinite(e_prop), -np.inf, r)
    return np.where(~np.isfinite(e_base) & np.isfinite(e_prop), np.inf, r)


def estimate(value: float, samples: np.ndarray, level: float) -> Estimate:
    """`value` with the percentile interval at `level` of its bootstrap `samples` that are
    defined (not NaN; inverted CDF: order statistics, so that infinite values are kept as they
    are)."""
    s = np.asarray(samples, np.float64)
    defined = s[~np.isnan(s)]
    undefined = 1.0 - defined.size / s.size
    if not defined.size:
        return Estimate(float(value), np.nan, np.nan, undefined, s)
    a = (1.0 - level) / 2
    lo, hi = np.quantile(defined, [a, 1 - a], method="inverted_cdf")
    return Estimate(float(value), float(lo), float(hi), undefined, s)


def bootstrap(
    correct: Mapping[str, np.ndarray],
    energy_pj: Mapping[str, np.ndarray],
    target_correct: np.ndarray,
    target_fraction: float,
    energy_limit_pj: float,
    baselines: Sequence[str],
    config: BootstrapConfig | None = None,
    unit: int = 1,
) -> BootstrapResult:
    """Paired bootstrap of every curve's headline numbers over the test images.

    correct[name] (N, T): whether image i is right after t steps (bool, or a credit in [0, 1]
    such as `fusion.correct_matrix`'s); energy_pj[name] (T,)
    the curve's cumulative energy per image (held fixed: the run's mean over the test images);
    target_correct (N,) bool: the ANN FC's per-image correctness, so each resample's target is
    target_fraction x that resample's ANN accuracy (section 6.4). Every statistic of every curve
    is computed on the same resamples (paired), so differences such as R keep the images' shared
    difficulty out of their spread. The energy budgets are config.budget_fractions x the first
    baseline's energy to the target on the whole set (its E_T if it never reaches it).
    Values are those of the whole test set (`summarize`'s numbers). Credits are summed in units
    of 1 / `unit` (`hwsim.methods.credit_unit` of the classes: exact, `resampled_sums`), a block
    of resamples at a time: memory O(R T) per curve and one block of draws, not R x N.
    """
    cfg = BootstrapConfig() if config is None else config
    names = list(correct)
    n_img = len(target_correct)
    ann = np.asarray(target_correct, np.float64)
    sums = resampled_sums([ann], cfg.resamples, cfg.seed)
    sums += resampled_sums([correct[k] for k in names], cfg.resamples, cfg.seed, unit)
    whole = [ann.sum(keepdims=True)] + [  # row 0: the whole test set, summed alike
        in_units(correct[k], unit).sum(axis=0, keepdims=True) / unit for k in names
    ]
    means = [np.concatenate([w, s]) / n_img for w, s in zip(whole, sums, strict=True)]
    target = target_fraction * means[0]
    acc = dict(zip(names, means[1:], strict=True))
    steps = {k: _first_reaching_rows(acc[k], target) for k in names}
    energy = {k: _energy_at(energy_pj[k], steps[k]) for k in names}
    base = baselines[0]
    e_base = float(energy[base][0])
    scale = e_base if np.isfinite(e_base) else float(np.asarray(energy_pj[base])[-1])
    budgets = scale * np.asarray(cfg.budget_fractions, np.float64)
    out = {}
    for k in names:
        e = np.asarray(energy_pj[k], np.float64)
        x = np.concatenate([[0.0], e])
        ys = np.concatenate([np.zeros((len(acc[k]), 1)), acc[k]], axis=1)
        at_budget = _interp_rows(x, ys, budgets)
        auc_rows = _auc_areas(e, acc[k].astype(np.float64), energy_limit_pj) / energy_limit_pj
        red = {
            b: _reduction_rows(energy[b], energy[k]) for b in baselines if b != k and b in energy
        }
        out[k] = CurveEstimates(
            timestep=estimate(steps[k][0], steps[k][1:], cfg.level),
            energy_pj=estimate(energy[k][0], energy[k][1:], cfg.level),
            auc=estimate(auc_rows[0], auc_rows[1:], cfg.level),
            reduction_pct={b: estimate(r[0], r[1:], cfg.level) for b, r in red.items()},
            accuracy_at_budget=tuple(
                estimate(at_budget[0, j], at_budget[1:, j], cfg.level) for j in range(budgets.size)
            ),
        )
    return BootstrapResult(cfg, budgets, out)


# --------------------------------------------------------------------------- multiplicity


class Multiplicity(StrEnum):
    """How intervals over m positions (a sweep's IC positions) are made simultaneous: all m
    cover their true values together with probability >= the level (family-wise error <=
    1 - level)."""

    BONFERRONI = "bonferroni"  # each position's percentile interval at 1 - (1 - level) / m
    MAX = "max"  # one per-position level, calibrated on the joint bootstrap (max-type)


@dataclass(frozen=True)
class Simultaneous:
    """Intervals simultaneous over positions (`simultaneous`): per position its value with the
    simultaneous interval (`intervals`, in the order given), the per-position percentile level
    they were read at, and the positions whose simultaneous interval excludes 0 (`survivors`,
    their indices): the effects that stay resolved once all m are looked at together."""

    method: Multiplicity
    level: float
    per_position_level: float
    intervals: tuple[Estimate, ...]

    @property
    def survivors(self) -> tuple[int, ...]:
        return tuple(j for j, e in enumerate(self.intervals) if e.excludes_zero())


def _coverage(samples: np.ndarray) -> Callable[[float], float]:
    """coverage(level): the share of resamples (rows of samples (B, m)) inside every
    position's percentile interval at `level` (`estimate`'s order statistics; an undefined,
    NaN, sample is inside)."""
    cols = [np.sort(c[~np.isnan(c)]) for c in samples.T]

    def coverage(level: float) -> float:
        a = (1.0 - level) / 2
        inside = np.ones(samples.shape[0], bool)
        for col, s in zip(samples.T, cols, strict=True):
            if s.size:
                lo = s[max(int(np.ceil(a * s.size)) - 1, 0)]
                hi = s[max(int(np.ceil((1 - a) * s.size)) - 1, 0)]
                inside &= np.isnan(col) | ((col >= lo) & (col <= hi))
        return float(inside.mean())

    return coverage


def simultaneous(
    estimates: Sequence[Estimate],
    level: float = 0.90,
    method: Multiplicity = Multiplicity.MAX,
    family: int | None = None,
    tolerance: float = 1e-6,
) -> Simultaneous:
    """Intervals over the m positions of `estimates` (each with its bootstrap `samples`) that
    hold together at `level`; `family` m (None: len(estimates)) may exceed the estimates given
    for Bonferroni (a part of a sweep, such as one grid cell).

    BONFERRONI: each position's percentile interval at 1 - (1 - level) / m; valid whatever the
    positions' dependence. MAX (default; the percentile max-type calibration of Mandel and
    Betensky 2008): the smallest per-position level gamma >= `level` (bisection to
    `tolerance`) at which at least `level` of the bootstrap resamples fall inside all m
    percentile intervals at once, i.e. the bootstrap quantile of the largest per-position
    exceedance. It uses the dependence between positions, so it is never wider than
    Bonferroni's; it needs every position's samples drawn from the same resamples of the same
    images (a sweep's IC positions: `bootstrap` with one seed over one test set), in the same
    number. Percentile intervals keep +-inf samples as they are, so no studentising is needed.
    """
    if not 0 < level < 1:
        raise InputError(f"level {level}: expected a value in (0, 1)")
    if not estimates:
        raise InputError("simultaneous intervals need at least one estimate")
    if any(e.samples is None for e in estimates):
        raise ValueError("simultaneous intervals need every estimate's bootstrap samples")
    method = Multiplicity(method)
    m = len(estimates) if family is None else family
    if m < len(estimates) or (method is Multiplicity.MAX and m != len(estimates)):
        raise InputError(
            f"{{family}} {m}: {len(estimates)} estimates given; Bonferroni takes at most m of"
            " the m positions, max-type intervals all of them",
            params=("family",),
        )
    gamma = 1.0 - (1.0 - level) / m  # Bonferroni's
    if method is Multiplicity.MAX:
        sizes = {np.size(e.samples) for e in estimates}
        if len(sizes) != 1:
            raise InputError(
                f"max-type intervals need paired samples of one size, got sizes {sorted(sizes)}"
            )
        coverage = _coverage(np.column_stack([np.asarray(e.samples, float) for e in estimates]))
        # Bonferroni's level covers >= `level` of the resamples (each position leaves out at
        # most (1 - level) / m of them): the calibrated level lies in [level, that]
        lo, hi = level, gamma
        if coverage(lo) < level:
            while hi - lo > tolerance:
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if coverage(mid) < level else (lo, mid)
            gamma = hi
        else:
            gamma = lo
    return Simultaneous(method, level, gamma, tuple(e.at_level(gamma) for e in estimates))
