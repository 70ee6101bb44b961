"""Reports of the cycle-level chip simulation (`hwsim.pipeline.cycles`): the methods table, the
latency breakdown per layer and component, the NoC's links, a latency histogram and a link
utilisation heatmap (file formats: docs/outputs.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.table import Table

from hwsim.atomic import write_csv
from hwsim.hw.sim import STALL_CAUSES, ChipRun
from hwsim.metrics import Estimate
from hwsim.report.figures import _figure, save_figure

if TYPE_CHECKING:
    from hwsim.pipeline.cycles import CycleEvaluation


def methods_frame(cycles: CycleEvaluation) -> pd.DataFrame:
    """One row per method and operating point (cycle_methods.csv)."""
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
                "accuracy": m.accuracy,
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
    jobs = run.performed.sum(axis=(1, 2))
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
    intervals over the test images as `_lo`, `_hi`) and, for the fused
    methods, its fixed-point decisions against the float fusion's (fusion_unit.csv)."""
    fusion = cycles.fusion
    if fusion is None:
        return pd.DataFrame()
    rows = []
    for method, term in fusion.terminations.items():
        check = fusion.checks.get(method)
        rows.append(
            {
                "method": str(method),
                "stop_rule": str(term.stop.rule),
                "threshold": term.stop.threshold,
                "threshold_unit": term.stop.unit,
                "target_met_on_tuning": term.stop.target_met,
                "accuracy": term.accuracy,
                **_interval("accuracy", term.accuracy_interval),
                "mean_stop_step": term.mean_stop,
                **_interval("mean_stop_step", term.mean_stop_interval),
                "p99_stop_step": term.p99_stop,
                "decisions": None if check is None else check.images * check.timesteps,
                "mismatches_vs_float": None if check is None else check.mismatches,
                "max_accuracy_difference_vs_float": (
                    None if check is None else check.max_accuracy_difference
                ),
                "saturated_counter_readings": None if check is None else check.clipped,
            }
        )
    return pd.DataFrame(rows)


def plot_latency_histogram(cycles: CycleEvaluation, path: Path, title: str = "") -> list[Path]:
    """Per-image latency (us) of every method and operating point."""
    fig = _figure((7.0, 4.2))
    ax = fig.add_subplot()
    lat = [m.run.ns(m.run.latency_cycles) / 1e3 for m in cycles.methods]
    lo = min(float(x.min()) for x in lat)
    hi = max(float(x.max()) for x in lat)
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 41)
    for m, x in zip(cycles.methods, lat, strict=True):
        ax.hist(x, bins=bins, histtype="step", label=f"{m.method} ({m.point})")
    ax.set_xlabel("latency per inference (us)")
    ax.set_ylabel("images")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


_DIRECTIONS = {(0, 1): "east", (0, -1): "west", (1, 0): "south", (-1, 0): "north"}


def plot_link_heatmap(run: ChipRun, path: Path, title: str = "") -> list[Path]:
    """Mesh link utilisation, one panel per direction: cell (r, c) is the link leaving router
    (r, c) that way (blank: no such link used)."""
    coords = [p for link in run.chip.links for p in link]
    rows = 1 + max((p[0] for p in coords), default=0)
    cols = 1 + max((p[1] for p in coords), default=0)
    grids = {d: np.full((rows, cols), np.nan) for d in _DIRECTIONS.values()}
    for u, ((r0, c0), (r1, c1)) in zip(run.link_utilisation(), run.chip.links, strict=True):
        grids[_DIRECTIONS[(r1 - r0, c1 - c0)]][r0, c0] = u
    fig = _figure((9.0, 2.8))
    top = max((float(np.nanmax(g)) for g in grids.values() if np.isfinite(g).any()), default=1.0)
    image = None
    for k, (name, grid) in enumerate(grids.items()):
        ax = fig.add_subplot(1, 4, k + 1)
        image = ax.imshow(grid, vmin=0.0, vmax=max(top, 1e-9), cmap="viridis")
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(cols))
        ax.set_yticks(range(rows))
    if image is not None:
        fig.colorbar(image, ax=fig.axes, label="utilisation (flits / cycle)", shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def write_cycles(cycles: CycleEvaluation, out_dir: Path, title: str = "") -> list[Path]:
    """cycle_methods.csv, latency_breakdown.csv, noc_links.csv, fusion_unit.csv (with a fusion
    unit) and the two figures."""
    paths = [
        out_dir / "cycle_methods.csv",
        out_dir / "latency_breakdown.csv",
        out_dir / "noc_links.csv",
    ]
    write_csv(methods_frame(cycles), paths[0])
    write_csv(breakdown_frame(cycles.chip_run), paths[1])
    write_csv(links_frame(cycles.chip_run), paths[2])
    if cycles.fusion is not None:
        paths.append(out_dir / "fusion_unit.csv")
        write_csv(fusion_frame(cycles), paths[-1])
    paths += plot_latency_histogram(cycles, out_dir / "latency_histogram", title)
    paths += plot_link_heatmap(cycles.chip_run, out_dir / "link_utilisation", title)
    return paths


def cycles_table(cycles: CycleEvaluation) -> Table:
    """The methods on the simulated chip: steps, latency per inference (mean, p99; the analytic
    model's beside it at fixed T), throughput, energy per inference, accuracy at the stop, NoC
    share of latency."""
    run = cycles.chip_run
    stalls = stall_totals(run)
    caption = ""
    if cycles.fusion_share is not None:
        share = cycles.fusion_share
        caption = (
            f"fusion unit: {100 * share['energy']:.3f}% of the energy,"
            f" {100 * share['area']:.3f}% of the area, busy {100 * share['cycles']:.2f}% of the"
            f" cycles ({run.chip.decision_cycles} cycles per decision)"
        )
    if cycles.fusion is not None and cycles.fusion.checks:
        caption += "; fixed point vs float: " + ", ".join(
            f"{m} {c.mismatches} of {c.images * c.timesteps} decisions differ"
            for m, c in cycles.fusion.checks.items()
        )
    table = Table(
        title=f"Cycle-level chip ({run.chip.clock_mhz:g} MHz, {run.start.shape[1]} images"
        f" streamed): bottleneck {run.bottleneck}; layer cycles stalled "
        + ", ".join(f"{c} {100 * s:.1f}%" for c, s in stalls.items()),
        caption=caption or None,
    )
    for col in (
        "method",
        "run",
        "steps",
        "latency (mean)",
        "latency (p99)",
        "analytic",
        "images/s",
        "energy/inference",
        "accuracy",
        "NoC share",
    ):
        table.add_column(col, justify="left" if col in ("method", "run") else "right")
    for m in cycles.methods:
        table.add_row(
            str(m.method),
            str(m.point),
            f"{m.steps_mean:.1f}",
            f"{m.latency_mean_ns / 1e3:.1f} us",
            f"{m.latency_p99_ns / 1e3:.1f} us",
            "-" if m.analytic_latency_ns is None else f"{m.analytic_latency_ns / 1e3:.1f} us",
            f"{m.throughput_per_s:.1f}",
            f"{m.energy_pj / 1e6:.2f} uJ",
            "-" if m.accuracy is None else f"{100 * m.accuracy:.2f}%",
            f"{100 * m.noc_share:.2f}%",
        )
    return table
