"""The tables of results as data frames: one row per timestep, method, node or link, the
columns carrying their units (docs/outputs.md). `files` writes them as CSV, `summary` puts
some of them in summary.json."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hwsim.hw.energy import RunEnergy
from hwsim.hw.sim import STALL_CAUSES, ChipRun
from hwsim.methods import BASELINES, REFERENCE
from hwsim.metrics import Estimate
from hwsim.results import ICEvaluation

if TYPE_CHECKING:
    from hwsim.pipeline.cycles import CycleEvaluation


def value_at(values: np.ndarray, timestep: int | None) -> float | None:
    """values[timestep - 1] (timestep 1-based), None for no timestep."""
    return None if timestep is None else float(values[timestep - 1])


def accuracy_energy_frame(ev: ICEvaluation) -> pd.DataFrame:
    """One row per timestep: accuracy and cumulative energy of every method, and the tuned
    parameters (alpha exact and as the chip's LUT gives it; the early-exit margin threshold)."""
    T = len(ev.curves[REFERENCE].accuracy)
    t = np.arange(1, T + 1)
    data: dict[str, object] = {"timestep": t}
    for name, curve in ev.curves.items():
        data[f"accuracy_{name.key}"] = curve.accuracy
        data[f"energy_{name.key}_pj"] = curve.energy_pj
        data[f"latency_{name.key}_ns"] = ev.latency_ns[name]
    for name, curve in ev.exact_curves.items():
        data[f"accuracy_{name.key}_exact"] = curve.accuracy
    for name, schedule in ev.fusion.tuning.schedules.items():
        data[f"alpha_{name.key}"] = schedule.alpha[:T]
        data[f"alpha_{name.key}_lut"] = ev.fusion.tuning.luts[name](t)
    data["early_exit_margin_threshold"] = ev.fusion.tuning.early_exit.threshold[:T]
    return pd.DataFrame(data)


def energy_per_timestep_frame(energy: RunEnergy) -> pd.DataFrame:
    """One row per timestep: the chip's energy per image by component and the fusion unit."""
    data: dict[str, object] = {"timestep": np.arange(1, energy.timesteps + 1)}
    per_component = energy.energy_pj.sum(axis=1)  # (T, C)
    for c, name in enumerate(energy.components):
        data[f"{name}_pj"] = per_component[:, c]
    data["fusion_unit_pj"] = energy.fusion_pj
    data["total_pj"] = energy.per_timestep_pj()
    return pd.DataFrame(data)


def _with_interval(prefix: str, e: Estimate | None) -> dict[str, float | None]:
    """{prefix: value, prefix_lo, prefix_hi} of an estimate: the value empty where the test
    set does not define it (a target not reached), the bounds empty where no resample does,
    and +-inf where the tail of the resamples misses the target (see `metrics.Estimate`)."""
    if e is None:
        return {prefix: None, f"{prefix}_lo": None, f"{prefix}_hi": None}
    value = float(e.value) if np.isfinite(e.value) else None
    lo, hi = (None if np.isnan(v) else float(v) for v in (e.lo, e.hi))
    return {prefix: value, f"{prefix}_lo": lo, f"{prefix}_hi": hi}


def targets_frame(ev: ICEvaluation) -> pd.DataFrame:
    """One row per method (and per fused method with its exact alpha): target crossing,
    accuracy and latency there, AUC, R against each baseline (`methods.BASELINES`), each with
    its paired bootstrap interval, energy per timestep, and what the parameters were tuned
    on."""
    curves = {**ev.curves, **{c.name: c for c in ev.exact_curves.values()}}
    latency = {**ev.latency_ns, **{c.name: ev.latency_ns[m] for m, c in ev.exact_curves.items()}}
    rows = []
    for name, curve in curves.items():
        est = ev.bootstrap.curves[name]
        step = est.timestep.value
        t = int(step) if np.isfinite(step) else None
        reductions = {}
        for b in BASELINES:
            reductions |= _with_interval(
                f"reduction{b.suffix}_pct", est.reduction_pct.get(b.method)
            )
        rows.append(
            {
                "method": str(name),
                "target_accuracy": ev.target,
                **_with_interval("timestep", est.timestep),
                "accuracy": value_at(curve.accuracy, t),
                **_with_interval("energy_pj", est.energy_pj),
                "latency_ns": value_at(latency[name], t),
                **_with_interval("auc", est.auc),
                **reductions,
                "energy_per_step_pj": curve.energy_per_step_pj,
                "tuned_on": ev.tuned_on,
                "ties": str(ev.ties),
            }
        )
    return pd.DataFrame(rows)


def budgets_frame(ev: ICEvaluation) -> pd.DataFrame:
    """Accuracy at fixed energy budgets (fractions of the reference's energy to the target),
    one row per method and budget, with the paired bootstrap interval, and the tie rule."""
    boot = ev.bootstrap
    rows = [
        {
            "method": str(name),
            "budget_fraction_of_dl": frac,
            "budget_pj": float(budget),
            **_with_interval("accuracy", est.accuracy_at_budget[j]),
            "ties": str(ev.ties),
        }
        for name, est in boot.curves.items()
        for j, (frac, budget) in enumerate(
            zip(boot.config.budget_fractions, boot.budgets_pj, strict=True)
        )
    ]
    return pd.DataFrame(rows)


def methods_frame(cycles: CycleEvaluation) -> pd.DataFrame:
    """One row per method and operating point of the cycle-level simulation
    (cycle_methods.csv): an early-stop row says whether its threshold kept the target on the
    tuning images; the static (leakage) and off-chip energy per inference, parts of the
    energy, are empty where the architecture does not model them."""
    arch = cycles.mapping.arch
    rows = []
    for m in cycles.methods:
        rows.append(
            {
                "method": str(m.method),
                "operating_point": str(m.point),
                "steps_mean": m.steps_mean,
                "cycles_mean": m.cycles_mean,
                "latency_mean_us": m.latency_mean_ns / 1e3,
                "latency_p99_us": m.latency_p99_ns / 1e3,
                "analytic_latency_us": (
                    None if m.analytic_latency_ns is None else m.analytic_latency_ns / 1e3
                ),
                "throughput_per_s": m.throughput_per_s,
                "energy_per_inference_pj": m.energy_pj,
                "static_energy_per_inference_pj": (
                    None if arch.leakage_mw is None else m.static_pj
                ),
                "offchip_energy_per_inference_pj": None if arch.offchip is None else m.offchip_pj,
                "accuracy": m.accuracy,
                "target_met_on_tuning": m.target_met_on_tuning,
                "noc_share_of_latency": m.noc_share,
            }
        )
    return pd.DataFrame(rows)


def breakdown_frame(run: ChipRun) -> pd.DataFrame:
    """Per node (layer or fusion unit) of `run`: jobs performed, busy cycles by component (PE
    operations, neuron updates; the fusion unit's decisions), stalled cycles by cause, and
    each as a share of the run's cycles (latency_breakdown.csv)."""
    chip = run.chip
    total = max(run.total_cycles, 1)
    jobs = run.jobs
    rows = []
    for v in range(chip.nodes):
        fusion = v == chip.fusion_node
        neuron = 0 if fusion else int(jobs[v]) * int(chip.neuron_cycles[v])
        busy = int(run.busy_cycles[v])
        row = {
            "node": chip.node_name(v),
            "pes": 0 if fusion else int(chip.pes[v]),
            "jobs": int(jobs[v]),
            "busy_pe_cycles": 0 if fusion else busy - neuron,
            "busy_neuron_cycles": neuron,
            "busy_decision_cycles": busy if fusion else 0,
            "busy_share": busy / total,
        }
        for c, cause in enumerate(STALL_CAUSES):
            row[f"stalled_{cause}_cycles"] = int(run.stall_cycles[v, c])
        for c, cause in enumerate(STALL_CAUSES):
            row[f"stalled_{cause}_share"] = float(run.stall_cycles[v, c]) / total
        rows.append(row)
    return pd.DataFrame(rows)


def links_frame(run: ChipRun) -> pd.DataFrame:
    """Per directed mesh link: flits carried and utilisation (noc_links.csv), busiest first."""
    util = run.link_utilisation()
    rows = [
        {
            "src_row": a[0],
            "src_col": a[1],
            "dst_row": b[0],
            "dst_col": b[1],
            "flits": int(run.link_flits[k]),
            "utilisation": float(util[k]),
        }
        for k, (a, b) in enumerate(run.chip.links)
    ]
    frame = pd.DataFrame(
        rows, columns=["src_row", "src_col", "dst_row", "dst_col", "flits", "utilisation"]
    )
    return frame.sort_values("flits", ascending=False, kind="stable").reset_index(drop=True)


def stall_totals(run: ChipRun) -> dict[str, float]:
    """Stalled cycles by cause over the layers, as shares of the layers' busy + stalled
    cycles."""
    layers = slice(0, run.chip.fusion_node)
    stalls = run.stall_cycles[layers].sum(axis=0).astype(np.float64)
    whole = stalls.sum() + run.busy_cycles[layers].sum()
    shares = stalls / whole if whole else np.zeros_like(stalls)
    return {c: float(s) for c, s in zip(STALL_CAUSES, shares, strict=True)}


def _interval(name: str, estimate: Estimate | None) -> dict[str, float | None]:
    lo, hi = (None, None) if estimate is None else (estimate.lo, estimate.hi)
    return {f"{name}_lo": lo, f"{name}_hi": hi}


def fusion_frame(cycles: CycleEvaluation) -> pd.DataFrame:
    """Per method, the fusion unit's early termination (rule, threshold tuned on the tuning
    images, whether they met the target, test accuracy and stop steps, with paired bootstrap
    intervals over the test images as `_lo`, `_hi`, and the tie rule a tie at T is credited
    by) and, for the fused methods, its fixed-point decisions against the float fusion's
    (fusion_unit.csv). A method whose threshold missed the target on the tuning images has
    no early-stop operating point: its threshold and test columns are empty."""
    fusion = cycles.fusion
    if fusion is None:
        return pd.DataFrame()
    rows = []
    for method, term in fusion.terminations.items():
        check = fusion.checks.get(method)
        met = term.stop.target_met
        point = {
            "threshold": term.stop.threshold,
            "accuracy": term.accuracy,
            **_interval("accuracy", term.accuracy_interval),
            "mean_stop_step": term.mean_stop,
            **_interval("mean_stop_step", term.mean_stop_interval),
            "p99_stop_step": term.p99_stop,
        }
        if not met:
            point = dict.fromkeys(point)
        rows.append(
            {
                "method": str(method),
                "stop_rule": str(term.stop.rule),
                "threshold": point.pop("threshold"),
                "threshold_unit": term.stop.unit,
                "target_met_on_tuning": met,
                "ties": str(term.stop.ties),
                **point,
                "decisions": None if check is None else check.images * check.timesteps,
                "mismatches_vs_float": None if check is None else check.mismatches,
                "max_accuracy_difference_vs_float": (
                    None if check is None else check.max_accuracy_difference
                ),
                "saturated_counter_readings": None if check is None else check.clipped,
            }
        )
    return pd.DataFrame(rows)
