"""Figures: alpha(t) with its PWL fit (paper Fig. 6), accuracy vs energy with the 99% line
(Fig. 8), R by IC position (Fig. 9; `sweep_figures` from sweep.csv's columns), the coin-toss MLE
vs Bayesian demonstration (Figs. 2 and 4), the co-design sweep, and the cycle-level chip's
latency histogram and link utilisation. Drawn with matplotlib's object API (no pyplot), so
the caller's backend is left as it is.

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
from matplotlib.figure import Figure

from hwsim.atomic import atomic_path
from hwsim.fusion import Estimator, posterior
from hwsim.methods import BASELINES, Method, reduction_column
from hwsim.metrics import Curve

if TYPE_CHECKING:
    import pandas as pd

FORMATS: tuple[str, ...] = ("png", "svg")

_ENERGY_UNITS: dict[str, float] = {"pJ": 1.0, "nJ": 1e3, "uJ": 1e6, "mJ": 1e9}


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

    exact[name]: the same method with its exact per-step alpha, drawn dashed in the colour of
    curve `name` (the chip runs the LUT; the exact curve shows what the LUT costs)."""
    scale = _ENERGY_UNITS[energy_unit]
    fig = new_figure((7, 4.5))
    ax = fig.subplots()
    low = 100.0
    for i, c in enumerate(curves):
        ax.plot(c.energy_pj / scale, 100 * np.asarray(c.accuracy), lw=1.5, label=c.name)
        low = min(low, float(np.max(c.accuracy)) * 100)
        ref = (exact or {}).get(c.name)
        if ref is not None:
            y = 100 * np.asarray(ref.accuracy)
            ax.plot(ref.energy_pj / scale, y, "--", lw=1, color=f"C{i}", label=ref.name)
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
    scale = max(float(np.nanmax(energy_pj)), ideal[1], 1.0)
    unit = next(u for u, f in reversed(_ENERGY_UNITS.items()) if scale >= f or u == "pJ")
    factor = _ENERGY_UNITS[unit]
    fig = new_figure((7, 4.5))
    ax = fig.subplots()
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
    latency_us: Mapping[str, np.ndarray], path: str | Path, title: str = ""
) -> list[Path]:
    """Per-image latency (us) of every curve of `latency_us` (a method at an operating
    point)."""
    fig = new_figure((7.0, 4.2))
    ax = fig.add_subplot()
    lo = min(float(x.min()) for x in latency_us.values())
    hi = max(float(x.max()) for x in latency_us.values())
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 41)
    for name, x in latency_us.items():
        ax.hist(x, bins=bins, histtype="step", label=name)
    ax.set_xlabel("latency per inference (us)")
    ax.set_ylabel("images")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


_DIRECTIONS = {(0, 1): "east", (0, -1): "west", (1, 0): "south", (-1, 0): "north"}


def plot_link_heatmap(
    links: Sequence[tuple[tuple[int, int], tuple[int, int]]],
    utilisation: np.ndarray,
    path: str | Path,
    title: str = "",
) -> list[Path]:
    """Mesh link utilisation (flits / cycle of each directed link between routers (row, col)),
    one panel per direction: cell (r, c) is the link leaving router (r, c) that way (blank: no
    such link used)."""
    coords = [p for link in links for p in link]
    rows = 1 + max((p[0] for p in coords), default=0)
    cols = 1 + max((p[1] for p in coords), default=0)
    grids = {d: np.full((rows, cols), np.nan) for d in _DIRECTIONS.values()}
    for u, ((r0, c0), (r1, c1)) in zip(utilisation, links, strict=True):
        grids[_DIRECTIONS[(r1 - r0, c1 - c0)]][r0, c0] = u
    fig = new_figure((9.0, 2.8))
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
