"""What each command found, as plain data for scripts (`summary.json`) and as short notes.

Every `*_summary` function returns a JSON-able dict (numbers in the units their keys name);
`write_summary` writes one atomically. `advice_notes` and `sweep_notes` say in words when
a method never reached the target accuracy within the simulated timesteps, and what to do.
docs/outputs.md lists the keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.atomic import atomic_write_text
from hwsim.methods import REFERENCE
from hwsim.model.graph import head_tag
from hwsim.report.frames import methods_frame, stall_totals
from hwsim.report.labels import trace_location
from hwsim.results import (
    EstimateResult,
    ExportResult,
    FunctionalResult,
    GridResult,
    ICEvaluation,
    MapResult,
    RunResult,
    TraceResult,
    TuneResult,
)

SUMMARY_FILE = "summary.json"


def _plain(value: Any) -> Any:
    """numpy scalars and paths as JSON values; NaN as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_summary(path: Path, command: str, data: Mapping[str, Any]) -> Path:
    """Write {"command": command, **data} to `path` as JSON, atomically."""
    atomic_write_text(path, json.dumps(_plain({"command": command, **data}), indent=1) + "\n")
    return path


class Outlook(StrEnum):
    """What a method's accuracy curve says about reaching the target beyond its last step."""

    REACHED = "reached"  # within the simulated timesteps
    ESTIMATED = "estimated"  # at an extrapolated timestep
    PLATEAU = "plateau"  # the fitted curve levels off below the target
    UNKNOWN = "unknown"  # the curve has not risen far enough to extrapolate


@dataclass(frozen=True)
class Extrapolation:
    """`outlook` of one accuracy curve: the (first or extrapolated) timestep reaching the
    target, the fitted plateau accuracy (a fraction), both None where they do not apply."""

    outlook: Outlook
    timestep: int | None = None
    plateau: float | None = None


def rise_curve(t: np.ndarray, plateau: float, tau: float, k: float, chance: float) -> np.ndarray:
    """The model `extrapolate` fits: accuracy c + (A - c) / (1 + (tau / t)^k) at timesteps t,
    chance c, plateau A, half-rise step tau, steepness k (a log-logistic rise from chance)."""
    t = np.asarray(t, np.float64)
    return chance + (plateau - chance) / (1.0 + (tau / np.maximum(t, 1e-12)) ** k)


def extrapolate(accuracy: np.ndarray, target: float, chance: float) -> Extrapolation:
    """When an SNN's accuracy curve (fractions at t = 1..T) would reach `target`.

    Reached within T: that step. Otherwise the curve must have risen at least halfway from
    `chance` to the target (before that its shape says nothing of where it levels off:
    UNKNOWN); `rise_curve` is fitted to its steps from the first with any correct output by
    least squares, and the target is reached where the fit crosses it (ESTIMATED), or never
    when the fit levels off below it (PLATEAU). The fit is rough: on the shipped model it
    put the crossing of a curve cut at 80-100 steps within 25% of the simulated one."""
    acc = np.asarray(accuracy, np.float64)
    hit = np.flatnonzero(acc >= target)
    if hit.size:
        return Extrapolation(Outlook.REACHED, int(hit[0]) + 1)
    if acc[-1] - chance < 0.5 * (target - chance):
        return Extrapolation(Outlook.UNKNOWN)
    from scipy.optimize import curve_fit  # here: loading report loads no scipy

    t = np.arange(1, len(acc) + 1, dtype=np.float64)
    start = int(np.flatnonzero(acc > 0)[0])
    T = float(len(acc))

    def model(x: np.ndarray, plateau: float, tau: float, k: float) -> np.ndarray:
        return rise_curve(x, plateau, tau, k, chance)

    (plateau, tau, k), _ = curve_fit(
        model,
        t[start:],
        acc[start:],
        p0=(max(min(1.0, acc.max() + 0.05), chance + 1e-3), T / 2, 2.0),
        bounds=((chance, 1e-3, 0.3), (1.0, 100 * T, 50.0)),
        maxfev=20_000,
    )
    if plateau <= target:
        return Extrapolation(Outlook.PLATEAU, plateau=float(plateau))
    # c + (A - c) / (1 + (tau / t)^k) = target  <=>  t = tau / ((A - c) / (target - c) - 1)^(1/k)
    need = tau / ((plateau - chance) / (target - chance) - 1.0) ** (1.0 / k)
    return Extrapolation(Outlook.ESTIMATED, max(int(np.ceil(need)), len(acc) + 1), float(plateau))


MARGIN = 1.25
"""How much more than the largest extrapolated timestep a rerun is advised to simulate (the
fit is rough, `extrapolate`)."""


def advised_timesteps(estimates: Sequence[int]) -> int:
    """--timesteps to rerun with: `MARGIN` x the largest estimate, rounded up to a multiple
    of 10."""
    return int(-(-MARGIN * max(estimates) // 10) * 10)


def too_short(ev: ICEvaluation, timesteps: int, classes: int) -> str | None:
    """A warning when T is far too short for the model: the reference's accuracy at T is less
    than halfway from chance (1/`classes`) to the target (None: it is not)."""
    chance = 1.0 / classes
    at_t = float(ev.curves[REFERENCE].accuracy[-1])
    if at_t - chance >= 0.5 * (ev.target - chance):
        return None
    return (
        f"T = {timesteps} is far too short for this model: {REFERENCE} reaches {100 * at_t:.1f}%"
        f" at step {timesteps} (chance {100 * chance:.0f}%, target {100 * ev.target:.2f}%)."
    )


def advice_notes(ev: ICEvaluation, timesteps: int, classes: int) -> list[str]:
    """The console's notes on the target: for each method that missed it within `timesteps`,
    when its accuracy curve says it would reach it (`extrapolate`, chance 1/`classes`) and the
    --timesteps to rerun with (`advised_timesteps`)."""
    missed = [m for m, s in ev.summary.items() if s.target.timestep is None]
    notes: list[str] = []
    chance = 1.0 / classes
    target = f"{100 * ev.target:.2f}%"
    if not missed:
        return notes
    outlook = {m: extrapolate(ev.curves[m].accuracy, ev.target, chance) for m in missed}
    by = {o: [m for m, x in outlook.items() if x.outlook is o] for o in Outlook}
    parts = []
    if by[Outlook.ESTIMATED]:
        parts.append(
            "the target is reached at about "
            + ", ".join(f"{outlook[m].timestep} steps by {m}" for m in by[Outlook.ESTIMATED])
        )
    if by[Outlook.PLATEAU]:
        parts.append(
            "it is not reachable by "
            + ", ".join(
                f"{m} (levels off at {100 * outlook[m].plateau:.1f}%)" for m in by[Outlook.PLATEAU]
            )
        )
    if by[Outlook.UNKNOWN]:
        parts.append(
            f"there is no estimate for {', '.join(map(str, by[Outlook.UNKNOWN]))} (not yet"
            f" halfway from chance, {100 * chance:.0f}%, to the target)"
        )
    names = ", ".join(map(str, missed))
    who = "No method reached" if len(missed) == len(ev.summary) else f"{names} did not reach"
    sentence = (
        f"{who} the target {target} within {timesteps} timesteps. Extrapolating the"
        f" accuracy curves (a fitted log-logistic rise), {'; '.join(parts)}."
    )
    estimates = [outlook[m].timestep for m in by[Outlook.ESTIMATED]]
    if estimates:
        sentence += (
            f" Rerun with --timesteps {advised_timesteps(estimates)} (+25%: the fit is rough)."
        )
    elif by[Outlook.UNKNOWN]:
        sentence += " Rerun with a much larger --timesteps to see where the curves level off."
    else:
        sentence += " More timesteps will not help."
    notes.append(sentence)
    if REFERENCE in missed:
        notes.append(
            f"R is measured against {REFERENCE}, so it is undefined while {REFERENCE} misses the"
            " target."
        )
    return notes


def sweep_notes(rows: Sequence[Mapping[str, Any]], timesteps: int) -> list[str]:
    """A sentence for the sweep rows where the reference method never reached the target (R
    undefined there; drawn as x on the R = 0 line of sweep.png)."""
    missed = [r for r in rows if _missing(r.get(f"timestep_{REFERENCE.key}"))]
    if not missed:
        return []
    where = ", ".join(
        f"IC {r['ic']}" + (f" ({Path(str(r['model'])).name})" if "model" in r else "")
        for r in missed
    )
    return [
        f"{REFERENCE} did not reach the target within {timesteps} timesteps at {where}: R is"
        " undefined"
        " there (a dash in the table, an x on the R = 0 line of sweep.png); rerun with a"
        f" larger --timesteps (e.g. --timesteps {2 * timesteps})."
    ]


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def run_summary(result: RunResult, files: Sequence[Path]) -> dict[str, Any]:
    """`hwsim run`: the IC, the target and its reference, and per method the timestep, energy
    (pJ per image), latency (ns), AUC and R (%) at the target (null: not reached); with
    `--timing cycle` the simulated chip's rows (cycle_methods.csv), bottleneck and stalls."""
    ev = result.evaluation
    methods = {}
    for m, s in ev.summary.items():
        t = s.target.timestep
        methods[str(m)] = {
            "reached": t is not None,
            "timestep": t,
            "accuracy": s.target.accuracy,
            "energy_pj": s.target.energy_pj,
            "latency_ns": None if t is None else float(ev.latency_ns[m][t - 1]),
            "auc": s.auc,
            "reduction_pct": s.reduction_pct,
        }
    timesteps = result.test.key.timesteps
    cycles = None
    if result.cycles is not None:
        run = result.cycles.chip_run
        frame = methods_frame(result.cycles).astype(object)
        cycles = {
            "clock_mhz": run.chip.clock_mhz,
            "bottleneck": run.bottleneck,
            "stalled_share": stall_totals(run),
            "fusion_unit_share": result.cycles.fusion_share,
            "methods": frame.where(frame.notna(), None).to_dict(orient="records"),
        }
    return {
        "model": result.model,
        "arch": result.arch.name,
        "ic": result.ic,
        "timesteps": timesteps,
        "test_images": result.test.key.images,
        "reference": str(result.reference),
        "reference_accuracy": {head_tag(h): a for h, a in ev.ann_accuracy.items()},
        "target_accuracy": ev.target,
        "ties": str(ev.ties),
        "methods": methods,
        "cycle_level": cycles,
        "notes": advice_notes(ev, timesteps, result.spec.num_classes),
        "seconds": result.seconds,
        "files": [p.name for p in files],
    }


def sweep_summary(result: GridResult, timesteps: int, executor: str) -> dict[str, Any]:
    """`hwsim sweep`: every row of sweep.csv, how it ran, the tie rule, and notes."""
    return {
        "executor": executor,
        "ties": result.rows[0]["ties"] if result.rows else None,
        "cells": len(result.rows),
        "resumed": result.resumed,
        "stored": result.stored,
        "seconds": result.seconds,
        "rows": result.rows,
        "notes": sweep_notes(result.rows, timesteps),
        "files": [p.name for p in result.paths],
    }


def map_summary(result: MapResult) -> dict[str, Any]:
    """`hwsim map`: crossbars, PEs and tiles per layer and in all, the chip area (mm^2)."""
    mapping, area = result.mapping, result.area
    return {
        "arch": mapping.arch.name,
        "tiles": mapping.tiles,
        "pes": mapping.pes,
        "crossbars": mapping.crossbars,
        "utilisation": mapping.utilisation,
        "area_mm2": area.total_mm2,
        "layers": [
            {"layer": m.name, "kind": str(m.layer.kind), "crossbars": m.crossbars, "pes": m.pes}
            for m in mapping.layers
        ],
    }


def estimate_summary(result: EstimateResult) -> dict[str, Any]:
    """`hwsim estimate`: SpikeSim energy per timestep (pJ), in all and by component."""
    e = result.energy
    return {
        "network": result.spec.name,
        "arch": result.arch.name,
        "energy_per_timestep_pj": e.total_pj,
        "energy_per_timestep_by_component_pj": e.per_component_pj(),
        "pe_operations_per_timestep": int(e.pe_operations.sum()),
    }


def functional_summary(functional: FunctionalResult) -> dict[str, Any]:
    """`hwsim functional`: the co-design sweep's rows and the ideal engine's reference."""
    result = functional.codesign
    return {
        "images": result.images,
        "timesteps": result.timesteps,
        "knob": str(result.knob),
        "rows": result.to_rows(),
    }


def tune_summary(result: TuneResult) -> dict[str, Any]:
    """`hwsim tune`: per IC, where its tuning is stored (null: not stored)."""
    return {
        "tune_images": result.trace.key.images,
        "timesteps": result.trace.key.timesteps,
        "tunings": {f"ic{ic}": result.paths[ic] for ic in result.tunings},
    }


def trace_summary(result: TraceResult) -> dict[str, Any]:
    """`hwsim trace`: the split, images and timesteps simulated, and where the trace is."""
    key = result.trace.key
    location = trace_location(result)
    return {"split": key.split, "images": key.images, "timesteps": key.timesteps, "trace": location}


def export_summary(result: ExportResult) -> dict[str, Any]:
    """`hwsim export`: the model, the NIR file written, its Output nodes and layers."""
    return {
        "model": result.model,
        "out": result.out,
        "outputs": list(result.outputs),
        "layers": result.layers,
    }
