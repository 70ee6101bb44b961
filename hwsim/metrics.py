"""Accuracy-vs-energy metrics: energy to a target accuracy and the reduction R (eq. 33)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    """Accuracy and cumulative energy after each timestep t = 1..T for one method."""

    name: str
    accuracy: np.ndarray  # (T,) fraction
    energy_per_step_pj: float  # energy of one timestep of the hardware this method uses

    @property
    def energy_pj(self) -> np.ndarray:
        """Energy spent after t timesteps, (T,) pJ."""
        return self.energy_per_step_pj * np.arange(1, len(self.accuracy) + 1)


@dataclass(frozen=True)
class TargetResult:
    """When a method first reaches the target accuracy (None if it never does within T)."""

    name: str
    target: float
    timestep: int | None
    accuracy: float | None
    energy_pj: float | None


def first_reaching(accuracy: np.ndarray, target: float) -> int | None:
    """First 1-based timestep t with accuracy[t - 1] >= target, or None."""
    hits = np.flatnonzero(np.asarray(accuracy) >= target)
    return int(hits[0]) + 1 if hits.size else None


def to_target(curve: Curve, target: float) -> TargetResult:
    t = first_reaching(curve.accuracy, target)
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
