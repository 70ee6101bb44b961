"""Figures: alpha(t) with its PWL fit (paper Fig. 6), accuracy vs energy with the 99% line
(Fig. 8), R by IC position (Fig. 9; `sweep_figures` from sweep.csv's columns), the coin-toss MLE
vs Bayesian demonstration (Figs. 2 and 4), the co-design sweep, and the cycle-level chip's
latency distributions (one box per method) and mesh floorplan with its link loads. Drawn with
matplotlib's object API (no pyplot), so the caller's backend is left as it is. Each figure
reads without the docs: every curve has its own colour, line style and markers (curves that
coincide stay visible), axes carry units, integer knobs get integer ticks.

Inputs are plain arrays, `metrics.Curve`s and sweep.csv's frame. Every file is written
atomically; each figure is saved once per format (PNG and SVG by default) beside the given
path, whose suffix is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from hwsim.atomic import atomic_path
from hwsim.fusion import Estimator, posterior
from hwsim.methods import BASELINES, Method, reduction_column
from hwsim.metrics import Curve
from hwsim.report.labels import ENERGY_UNITS, TIME_UNITS, unit_for

if TYPE_CHECKING:
    import pandas as pd

FORMATS: tuple[str, ...] = ("png", "svg")

_STYLES: tuple[tuple[str, str], ...] = (("-", "o"), ("--", "s"), ("-.", "^"), (":", "D"))
"""(line style, marker) of the i-th curve of a figure, with colour C{i}: two curves that lie on
each other still show both styles and both sets of markers."""
_MARKS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p")


def _curve_style(i: int, count: int) -> dict:
    """Colour, line style, marker and width of curve i of `count` (module docstring): earlier
    curves are drawn wider, so a later one that coincides leaves them visible at its sides."""
    line, _ = _STYLES[i % len(_STYLES)]
    return {
        "color": f"C{i}",
        "ls": line,
        "marker": _MARKS[i % len(_MARKS)],
        "lw": 1.2 + 0.5 * (count - 1 - i),
        "ms": 5,
    }


def _marks_every(points: int, i: int, count: int) -> tuple[int, int]:
    """markevery of curve i: about 8 markers a curve, each curve's shifted by a fraction of the
    spacing, so markers of curves that coincide do not hide each other."""
    step = max(1, points // 8)
    return (i * step // max(count, 1), step)


def new_figure(size: tuple[float, float]) -> Figure:
    return Figure(figsize=size, dpi=120)


def save_figure(fig: Figure, path: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write `fig` as path.<fmt> for each format, atomically, and return the paths. SVGs carry
    no date and a fixed id salt, so identical runs write identical files."""
    out = []
    for fmt in formats:
        target = Path(path).with_suffix(f".{fmt}")
        with atomic_path(target) as tmp, matplotlib.rc_context({"svg.hashsalt": "hwsim"}):
            fig.savefig(tmp, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
        out.append(target)
    return out


def _finish(
    fig: Figure,
    ax: Axes,
    title: str,
    path: str | Path,
    formats: Sequence[str],
    legend_loc: str = "best",
) -> list[Path]:
    """Title, grid and legend, then write the figure (save_figure)."""
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc=legend_loc)
    fig.tight_layout()
    return save_figure(fig, path, formats)


def plot_alpha(
    alpha: Mapping[str, np.ndarray],
    fits: Mapping[str, tuple[np.ndarray, np.ndarray]] | None,
    path: str | Path,
    *,
    title: str = "",
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """alpha(t) per method (points) and its PWL fit (breakpoints t_k, alpha_k; line), Fig. 6.

    alpha[name] is (T,) with t = 1..T. The y axis is symlog (alpha spans decades, 0 included).
    """
    fig = new_figure((7, 4.2))
    ax = fig.subplots()
    for i, (name, a) in enumerate(alpha.items()):
        color = f"C{i}"
        t = np.arange(1, len(a) + 1)
        ax.plot(t, a, ".", ms=2, color=color, alpha=0.5, label=f"{name} (per step)")
        if fits is not None and name in fits:
            tk, ak = fits[name]
            ax.plot(tk, ak, "-", lw=1.5, color=color, label=f"{name} (PWL, {len(tk)} points)")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_xlabel("timestep t")
    ax.set_ylabel("alpha")
    return _finish(fig, ax, title, path, formats)


def plot_accuracy_energy(
    curves: Sequence[Curve],
    target: float | None,
    path: str | Path,
    *,
    title: str = "",
    energy_unit: str = "uJ",
    formats: Sequence[str] = FORMATS,
    exact: Mapping[str, Curve] | None = None,
) -> list[Path]:
    """Accuracy (%) vs energy per inference for every curve, with the target line (Fig. 8).

    exact[name]: the same method with its exact per-step alpha, drawn in the colour of curve
    `name`, dotted with open markers (the chip runs the LUT; the exact curve shows what the LUT
    costs). Every curve has its own line style and markers (`_curve_style`), so DL under a
    fused method and an exact-alpha curve on its LUT curve both stay visible."""
    scale = ENERGY_UNITS[energy_unit]
    fig = new_figure((7, 4.5))
    ax = fig.subplots()
    low = 100.0
    for i, c in enumerate(curves):
        y = 100 * np.asarray(c.accuracy)
        style = _curve_style(i, len(curves))
        every = _marks_every(len(y), i, len(curves))
        ax.plot(c.energy_pj / scale, y, label=c.name, markevery=every, **style)
        low = min(low, float(np.max(c.accuracy)) * 100)
        ref = (exact or {}).get(c.name)
        if ref is not None:
            y = 100 * np.asarray(ref.accuracy)
            shifted = (every[0] + every[1] // 2, every[1])
            ax.plot(ref.energy_pj / scale, y, ls=":", lw=1.4, color=style["color"],
                    marker=style["marker"], ms=6, mfc="none", markevery=shifted,
                    label=ref.name)  # fmt: skip
    if target is not None:
        ax.axhline(100 * target, color="k", ls="--", lw=1, label=f"target {100 * target:.2f}%")
        low = min(low, 100 * target)
    ax.set_ylim(max(0.0, low - 25), 100)
    ax.set_xlabel(f"energy per inference ({energy_unit})")
    ax.set_ylabel("accuracy (%)")
    return _finish(fig, ax, title, path, formats, legend_loc="lower right")


def plot_reduction_by_ic(
    ic_positions: np.ndarray,
    reductions: Mapping[str, np.ndarray],
    path: str | Path,
    title: str = "",
    *,
    formats: Sequence[str] = FORMATS,
    intervals: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ylabel: str = "energy reduction R (%)",
) -> list[Path]:
    """Energy reduction R (%, eq. 33) vs IC insertion position per method (Fig. 9).

    reductions[name] is aligned with ic_positions; NaN (the method never reached the target)
    is drawn as a gap and marked with an x on the zero line. intervals[name] = (lo, hi): the
    bootstrap interval as an error bar (an infinite bound runs to the edge of the axes).
    """
    ics = np.asarray(ic_positions)
    fig = new_figure((7, 4.2))
    ax = fig.subplots()
    ax.axhline(0, color="k", lw=0.8)
    width = 0.5 / max(1, len(reductions))
    finite = [np.asarray(r, np.float64) for r in reductions.values()]
    for lo, hi in (intervals or {}).values():
        finite += [np.asarray(lo, np.float64), np.asarray(hi, np.float64)]
    values = np.concatenate(finite) if finite else np.zeros(1)
    values = values[np.isfinite(values)]
    bottom = min(float(values.min()) if values.size else 0.0, 0.0) - 5
    top = max(float(values.max()) if values.size else 0.0, 0.0) + 5
    for i, (name, r) in enumerate(reductions.items()):
        r = np.asarray(r, np.float64)
        x = ics + (i - (len(reductions) - 1) / 2) * width if intervals else ics
        ax.plot(x, r, "o-", color=f"C{i}", lw=1.4, ms=4, label=name)
        if intervals and name in intervals:
            lo, hi = (np.clip(np.asarray(v, np.float64), bottom, top) for v in intervals[name])
            ok = ~np.isnan(r) & ~np.isnan(lo) & ~np.isnan(hi)
            err = np.stack([r - lo, hi - r])[:, ok]
            ax.errorbar(x[ok], r[ok], yerr=err, fmt="none", ecolor=f"C{i}", capsize=2, lw=1)
        miss = np.isnan(r)
        if miss.any():
            ax.plot(x[miss], np.zeros(miss.sum()), "x", color=f"C{i}", ms=7)
    if any(np.isnan(np.asarray(r, np.float64)).any() for r in reductions.values()):
        ax.plot([], [], "x", color="0.3", ms=7, label="target not reached within T: R undefined")
    ax.set_ylim(bottom, top)
    ax.set_xlabel("IC position (block)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(ics)
    return _finish(fig, ax, title, path, formats)


def coin_toss_estimates(
    p_true: float = 0.3,
    tosses: int = 1000,
    trials: int = 100,
    seed: int = 0,
    prior: Sequence[tuple[float, float]] = ((10.0, 0.3), (100.0, 0.3), (100.0, 0.4)),
    estimator: Estimator = Estimator.MAP,
) -> dict[str, np.ndarray]:
    """Estimates of a coin's head probability after n = 1..tosses tosses, (trials, tosses) each.

    "MLE": M / n (eq. 21). "alpha=a, r=r": `posterior` with prior strength a and prior centre
    r (the IC's rate E in the SNN), the MAP of eq. 29 by default as in the paper's Fig. 4.
    """
    rng = np.random.default_rng(seed)
    heads = np.cumsum(rng.random((trials, tosses)) < p_true, axis=1)
    n = np.arange(1, tosses + 1)
    out = {"MLE": heads / n}
    for a, r in prior:
        out[f"alpha={a:g}, r={r:g}"] = posterior(heads, r * n, n, a, estimator)
    return out


def coin_toss_figure(
    path: str | Path,
    *,
    p_true: float = 0.3,
    tosses: int = 1000,
    trials: int = 100,
    seed: int = 0,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Figs. 2 and 4: mean +- std over `trials` of the MLE and Bayesian estimates vs tosses,
    with the +-5% band around p_true. Left: MLE; middle: the effect of alpha (right prior);
    right: the effect of r (alpha = 100, right vs wrong prior centre)."""
    est = coin_toss_estimates(p_true, tosses, trials, seed)
    n = np.arange(1, tosses + 1)
    panels = (
        ("MLE (Fig. 2)", ["MLE"]),
        ("effect of alpha (Fig. 4 top)", ["MLE", "alpha=10, r=0.3", "alpha=100, r=0.3"]),
        ("effect of r (Fig. 4 bottom)", ["alpha=100, r=0.3", "alpha=100, r=0.4"]),
    )
    colors = {
        "MLE": "C0",
        "alpha=10, r=0.3": "C2",
        "alpha=100, r=0.3": "C1",
        "alpha=100, r=0.4": "C4",
    }
    fig = new_figure((13, 3.8))
    axes = fig.subplots(1, 3, sharey=True)
    for ax, (title, names) in zip(axes, panels, strict=True):
        ax.axhspan(0.95 * p_true, 1.05 * p_true, color="red", alpha=0.2, label="within 5%")
        for name in names:
            mean, std = est[name].mean(axis=0), est[name].std(axis=0)
            ax.plot(n, mean, color=colors[name], lw=1.4, label=name)
            ax.fill_between(n, mean - std, mean + std, color=colors[name], alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_ylim(0, 0.7)
        ax.set_xlabel("coin tosses n")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[0].set_ylabel(f"estimated P(head), true {p_true:g}")
    fig.tight_layout()
    return save_figure(fig, path, formats)


def plot_codesign(
    knob: str,
    values: np.ndarray,
    accuracy: np.ndarray,
    energy_pj: np.ndarray,
    ideal: tuple[float, float],
    path: str | Path,
    *,
    title: str = "",
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """A co-design sweep: FC accuracy (%, left axis) and energy per inference (right axis)
    against a hardware knob, with the ideal engine's (accuracy, energy) as dashed lines."""
    unit, factor = unit_for([float(np.nanmax(energy_pj)), ideal[1]], ENERGY_UNITS)
    fig = new_figure((7, 4.5))
    ax = fig.subplots()
    if np.all(np.asarray(values) == np.round(values)):  # an integer knob: ticks at its values
        ax.set_xticks(np.asarray(values), [f"{v:g}" for v in values])
    ax.plot(values, 100 * accuracy, "o-", color="C0", label="FC accuracy, chip")
    ax.axhline(100 * ideal[0], color="C0", ls="--", lw=1, label="FC accuracy, ideal engine")
    ax.set_xlabel(knob)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    right = ax.twinx()
    right.plot(values, energy_pj / factor, "s-", color="C1", label="energy, chip")
    right.axhline(ideal[1] / factor, color="C1", ls="--", lw=1, label="energy, ideal engine")
    right.set_ylabel(f"energy per inference ({unit})")
    right.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, formats)


def sweep_figures(frame: pd.DataFrame, path: Path, title: str = "") -> list[Path]:
    """R by IC position with 90% bootstrap error bars from sweep.csv columns, one figure per
    baseline (`methods.BASELINES`): against the first at `path` (paper Fig. 9), against the
    others at `path` + their suffix ("_vs_sl")."""
    paths: list[Path] = []
    for b in BASELINES:
        cols = {
            m: reduction_column(b, m)
            for m in Method
            if m is not b.method and reduction_column(b, m) in frame
        }
        series = {str(m): frame[c].to_numpy(float) for m, c in cols.items()}
        intervals = {
            str(m): (frame[f"{c}_lo"].to_numpy(float), frame[f"{c}_hi"].to_numpy(float))
            for m, c in cols.items()
            if f"{c}_lo" in frame
        }
        paths += plot_reduction_by_ic(
            frame["ic"].to_numpy(),
            series,
            path.with_name(path.name + b.suffix),
            f"{title}; R against {b.method}, 90% paired bootstrap intervals" if title else "",
            intervals=intervals,
            ylabel=f"energy reduction R against {b.method} (%)",
        )
    return paths


def plot_latency_histogram(
    latency_ns: Mapping[str, np.ndarray], path: str | Path, title: str = ""
) -> list[Path]:
    """Per-image latency of every curve of `latency_ns` (a method at an operating point), one
    horizontal box each: the box spans the quartiles, the line in it is the median, the
    triangle the mean, the whiskers reach the 1st and 99th percentiles (the tables' p99) and
    dots mark the images beyond them. One time unit for all (`unit_for`)."""
    names = list(latency_ns)
    unit, size = unit_for(np.concatenate([np.asarray(x) for x in latency_ns.values()]), TIME_UNITS)
    data = [np.asarray(latency_ns[n], np.float64) / size for n in names]
    fig = new_figure((7.0, 1.2 + 0.38 * len(names)))
    ax = fig.add_subplot()
    ax.boxplot(
        data,
        orientation="horizontal",
        whis=(1, 99),
        showmeans=True,
        widths=0.6,
        flierprops={"marker": ".", "ms": 3, "alpha": 0.5},
        meanprops={"marker": "^", "mfc": "k", "mec": "k", "ms": 5},
        medianprops={"color": "C3", "lw": 1.5},
    )
    ax.set_yticks(range(1, len(names) + 1), names, fontsize=8)
    ax.invert_yaxis()  # the first method on top, as in the tables
    ax.set_xlabel(f"latency per inference ({unit}); box: quartiles, |: median, ^: mean, whiskers:"
                  " 1st-99th percentile", fontsize=8)  # fmt: skip
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_link_heatmap(
    links: Sequence[tuple[tuple[int, int], tuple[int, int]]],
    utilisation: np.ndarray,
    path: str | Path,
    title: str = "",
    routers: Mapping[tuple[int, int], str] | None = None,
) -> list[Path]:
    """The mesh as a floorplan: one square per router (row, col), labelled with what sits
    there (`routers[(row, col)]`, e.g. a tile's layers or the fusion unit), and an arrow per
    directed link coloured by its utilisation (flits / cycle; the two directions of a pair side
    by side, each pointing the way it carries). Links no flit crossed are thin grey lines; on
    a mesh of at most 8 x 8 routers every used link is labelled with its value."""
    coords = [p for link in links for p in link] + list(routers or {})
    rows = 1 + max((p[0] for p in coords), default=0)
    cols = 1 + max((p[1] for p in coords), default=0)
    util = np.asarray(utilisation, np.float64)
    top = float(util.max()) if util.size and util.max() > 0 else 1.0
    norm, cmap = Normalize(0.0, top), matplotlib.colormaps["viridis"]
    side = min(2.2 * max(cols, 1) + 2.0, 12.0)
    fig = new_figure((side, min(2.0 * max(rows, 1) + 1.2, 10.0)))
    ax = fig.add_subplot()
    half = 0.28  # a router square's half side (routers are 1 apart)
    for r in range(rows):
        for c in range(cols):
            label = (routers or {}).get((r, c), "")
            ax.add_patch(Rectangle((c - half, r - half), 2 * half, 2 * half, fc="0.93", ec="0.4"))
            ax.text(c, r, label, ha="center", va="center", fontsize=7, wrap=True)
    labelled = rows <= 8 and cols <= 8
    for u, ((r0, c0), (r1, c1)) in zip(util, links, strict=True):
        dr, dc = r1 - r0, c1 - c0
        off = 0.08  # the two directions side by side: each shifted to its right
        x0, y0 = c0 + dc * half - dr * off, r0 + dr * half + dc * off
        x1, y1 = c1 - dc * half - dr * off, r1 - dr * half + dc * off
        if u <= 0:
            ax.plot([x0, x1], [y0, y1], color="0.75", lw=0.8, ls="--")
            continue
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=10,
                                     color=cmap(norm(u)), lw=2.5))  # fmt: skip
        if labelled:
            ax.text((x0 + x1) / 2 - dr * 0.1, (y0 + y1) / 2 + dc * 0.1, f"{u:.2g}", fontsize=6,
                    ha="center", va="center", rotation=90 if dr else 0)  # fmt: skip
    ax.set_xlim(-0.6, cols - 0.4)
    ax.set_ylim(rows - 0.4, -0.6)  # row 0 on top, as the mapping numbers them
    ax.set_aspect("equal")
    ax.set_xticks(range(cols), [f"col {c}" for c in range(cols)])
    ax.set_yticks(range(rows), [f"row {r}" for r in range(rows)])
    ax.set_xlabel("mesh column")
    ax.set_ylabel("mesh row")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    mappable = ScalarMappable(norm, cmap)
    fig.colorbar(mappable, ax=ax, label="link utilisation (flits / cycle)", shrink=0.8)
    ax.set_title(title or "mesh links", fontsize=9)
    return save_figure(fig, path)
