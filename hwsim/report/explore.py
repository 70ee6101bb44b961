"""The files and the console summary of a design-space exploration (`hwsim explore`,
docs/explore.md): points.csv (every point), pareto.csv (the front), the 2-D fronts
(energy-latency, energy-accuracy, area-energy) with the dominated and invalid points greyed,
and a parallel-coordinates view of knobs and objectives.

Inputs are plain rows (dicts of points.csv's columns), the front mask and the names of the
knob and objective columns; nothing here knows how a point was evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from hwsim.atomic import write_csv
from hwsim.report.console import fit_table
from hwsim.report.figures import new_figure, save_figure

FRONT_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("front_energy_latency", "energy_pj", "latency_ns"),
    ("front_energy_accuracy", "energy_pj", "accuracy"),
    ("front_area_energy", "area_mm2", "energy_pj"),
)
"""(file stem, x column, y column) of each 2-D front figure."""
LABELS = {
    "energy_pj": "energy per inference (pJ)",
    "latency_ns": "latency per inference (ns)",
    "accuracy": "accuracy",
    "area_mm2": "chip area (mm$^2$)",
}
SUMMARY_WIDTH = 80


def points_frame(rows: Sequence[Mapping[str, Any]], front: np.ndarray) -> pd.DataFrame:
    """points.csv: every row with a `pareto` column (1 on the front)."""
    frame = pd.DataFrame(list(rows))
    frame.insert(frame.columns.get_loc("status") + 1, "pareto", np.asarray(front, int))
    return frame


def _front_plot(
    frame: pd.DataFrame, x: str, y: str, path: Path, title: str, maximise_y: bool
) -> list[Path]:
    """One 2-D front: valid points in grey (constraint-broken ones as grey crosses), the points
    on this pair's own 2-D front (for the two objectives shown) in colour joined by a step
    line, the front of all objectives circled."""
    fig = new_figure((5.5, 4.2))
    ax = fig.add_subplot()
    ok = frame[(frame["status"] == "ok") & frame[x].notna() & frame[y].notna()]
    if ok.empty:
        ax.text(0.5, 0.5, "no valid point", ha="center", transform=ax.transAxes)
    else:
        xs, ys = ok[x].to_numpy(float), ok[y].to_numpy(float)
        ax.scatter(xs, ys, s=14, color="0.75", label="dominated", zorder=1)
        front = ok[ok["pareto"] == 1]
        ax.scatter(front[x], front[y], s=40, facecolors="none", edgecolors="C1",
                   label="on the front of all objectives", zorder=2)  # fmt: skip
        sign = -1.0 if maximise_y else 1.0
        mask = _front_2d(xs, sign * ys)
        order = np.argsort(xs[mask])
        ax.step(xs[mask][order], ys[mask][order], where="post", color="C0", lw=1.2, zorder=3)
        ax.scatter(xs[mask], ys[mask], s=16, color="C0", label="2-D front", zorder=4)
        ax.legend(fontsize=7)
    broken = frame[(frame["status"] == "constraint") & frame[x].notna() & frame[y].notna()]
    if not broken.empty:
        ax.scatter(broken[x], broken[y], s=14, marker="x", color="0.6", lw=0.8,
                   label="constraint broken", zorder=1)  # fmt: skip
        ax.legend(fontsize=7)
    for axis, col in (("x", x), ("y", y)):
        values = frame.loc[frame["status"] != "invalid", col].dropna()
        if (
            col != "accuracy"
            and len(values)
            and values.min() > 0
            and values.max() > 10 * values.min()
        ):
            getattr(ax, f"set_{axis}scale")("log")  # more than a decade: a log axis
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def _front_2d(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) bool: the points no other point beats in both x and y (both minimised)."""
    order = np.lexsort((y, x))
    keep = np.zeros(len(x), bool)
    best = math.inf
    for i in order:
        if y[i] < best:
            keep[i] = True
            best = y[i]
    return keep


def _parallel(frame: pd.DataFrame, columns: Sequence[str], path: Path, title: str) -> list[Path]:
    """Parallel coordinates: one axis per knob and objective (each scaled to its range, its
    extremes written at the ends), a line per valid point, the front in colour."""
    fig = new_figure((max(6.0, 1.3 * len(columns)), 4.2))
    ax = fig.add_subplot()
    ok = frame[frame["status"] == "ok"]
    cols = [c for c in columns if c in ok and pd.api.types.is_numeric_dtype(ok[c])]
    if ok.empty or not cols:
        ax.text(0.5, 0.5, "no valid point", ha="center", transform=ax.transAxes)
    else:
        data = ok[cols].to_numpy(float)
        lo, hi = np.nanmin(data, axis=0), np.nanmax(data, axis=0)
        scaled = (data - lo) / np.where(hi > lo, hi - lo, 1.0)
        xs = np.arange(len(cols))
        on_front = ok["pareto"].to_numpy() == 1
        for row, front in zip(scaled, on_front, strict=True):
            if not front:
                ax.plot(xs, row, color="0.8", lw=0.6, zorder=1)
        for k, row in enumerate(scaled[on_front]):
            ax.plot(xs, row, color=f"C{k % 10}", lw=1.4, zorder=2)
        for i in range(len(cols)):
            ax.text(i, -0.06, f"{lo[i]:.3g}", ha="center", va="top", fontsize=7)
            ax.text(i, 1.06, f"{hi[i]:.3g}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(xs, [LABELS.get(c, c) for c in cols], rotation=20, fontsize=7)
        ax.set_yticks([])
        ax.set_ylim(-0.15, 1.15)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def write_exploration(
    rows: Sequence[Mapping[str, Any]],
    front: np.ndarray,
    knobs: Sequence[str],
    objectives: Sequence[str],
    out_dir: Path,
    title: str = "",
) -> list[Path]:
    """points.csv, pareto.csv, the three 2-D front figures and the parallel coordinates into
    `out_dir` (each file atomically); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = points_frame(rows, front)
    paths = [out_dir / "points.csv", out_dir / "pareto.csv"]
    write_csv(frame, paths[0])
    write_csv(frame[frame["pareto"] == 1], paths[1])
    for stem, x, y in FRONT_FIGURES:
        paths += _front_plot(frame, x, y, out_dir / stem, title, maximise_y=y == "accuracy")
    columns = [*knobs, *objectives]
    paths += _parallel(frame, columns, out_dir / "parallel_coordinates", title)
    return paths


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3g}"
    return str(value)


def _short(key: str) -> str:
    """A knob's column header: its last key part (crossbar.rows -> rows)."""
    return key.rsplit(".", 1)[-1]


def front_table(
    rows: Sequence[Mapping[str, Any]],
    front: np.ndarray,
    knobs: Sequence[str],
    objectives: Sequence[str],
    limit: int = 15,
) -> Table:
    """The front's points (at most `limit`, lowest energy first), knobs then objectives."""
    chosen = [r for r, f in zip(rows, front, strict=True) if f]
    chosen.sort(key=lambda r: (r.get("energy_pj", math.nan), r.get("latency_ns", math.nan)))
    table = Table(title=f"Pareto front: {len(chosen)} of {len(rows)} points", box=None,
                  pad_edge=False, padding=(0, 1, 0, 0))  # fmt: skip
    for k in knobs:
        table.add_column(_short(k), justify="right")
    units = {"energy_pj": "E pJ", "latency_ns": "lat ns", "area_mm2": "mm2", "accuracy": "acc"}
    for o in objectives:
        table.add_column(units.get(o, o), justify="right")
    for r in chosen[:limit]:
        table.add_row(*(_cell(r[c]) for c in (*knobs, *objectives)))
    if len(chosen) > limit:
        table.caption = f"{len(chosen) - limit} more in pareto.csv"
    return table


def print_exploration(
    console: Console,
    rows: Sequence[Mapping[str, Any]],
    front: np.ndarray,
    knobs: Sequence[str],
    objectives: Sequence[str],
    header: Sequence[str] = (),
) -> None:
    """The summary: header lines, the counts by status, the front's table (80 columns)."""
    width = min(console.width, SUMMARY_WIDTH)
    for line in header:
        console.print(line, highlight=False, width=width)
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
    console.print(
        ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), highlight=False, width=width
    )
    for table in fit_table(console, front_table(rows, front, knobs, objectives), width):
        console.print(table, width=width)
