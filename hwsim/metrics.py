"""Accuracy-vs-energy metrics: energy to a target accuracy, AUC, and the reduction R (eq. 33).

A method's curve is the points (E_t, acc_t), t = 1..T, E_t = t x energy per timestep (pJ).
For areas and interpolation it starts at (0, 0) (no timestep run, no decision) and is linear
between points; past E_T it holds acc_T (a finished run can give its answer at any larger
budget).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


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
            raise ValueError(
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


def accuracy_at_energy(curve: Curve, energy_pj: float | np.ndarray) -> np.ndarray:
    """Accuracy at an energy budget (pJ), linear between timesteps, from (0, 0), held past E_T."""
    x, y = _points(curve)
    return np.interp(np.asarray(energy_pj, np.float64), x, y)


def envelope(curves: Sequence[Curve], energy_pj: np.ndarray) -> np.ndarray:
    """Best accuracy of any curve at each energy: the paper's Fig. 8 curve-level early exit
    (SL and DL joined at their crossing). The per-image baseline is `fusion.EarlyExit`."""
    return np.max([accuracy_at_energy(c, energy_pj) for c in curves], axis=0)


def auc_area(curve: Curve, energy_limit_pj: float) -> float:
    """Area under accuracy over energy from 0 to energy_limit_pj (trapezoid), in pJ."""
    if not energy_limit_pj > 0:
        raise ValueError(f"energy limit must be > 0 pJ, got {energy_limit_pj}")
    x, y = _points(curve)
    keep = x < energy_limit_pj
    xs = np.concatenate([x[keep], [energy_limit_pj]])
    ys = np.concatenate([y[keep], [np.interp(energy_limit_pj, x, y)]])
    return float(np.trapezoid(ys, xs))


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
    baseline: str = "DL",
    *,
    sustained: bool = False,
) -> dict[str, Summary]:
    """Target crossing, AUC up to energy_limit_pj and R (eq. 33) against `baseline`, per curve."""
    targets = {k: to_target(c, target, sustained=sustained) for k, c in curves.items()}
    base = targets[baseline].energy_pj if baseline in targets else None
    return {
        k: Summary(targets[k], auc(c, energy_limit_pj), reduction(base, targets[k].energy_pj))
        for k, c in curves.items()
    }
