"""Reports: rich terminal tables, CSV and JSON files, and figures.

Every file is written atomically (temp file + rename). Column names carry their units.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from hwsim.atomic import atomic_path, atomic_write_text
from hwsim.figures import plot_accuracy_energy, plot_alpha, plot_reduction_by_ic
from hwsim.graph import FC_HEAD
from hwsim.hw.energy import EnergyBreakdown, RunEnergy
from hwsim.hw.mapping import Mapping

if TYPE_CHECKING:  # report is below api: it reads api's results, it never calls api
    from hwsim.api import EstimateResult, ICEvaluation, RunResult, TuneResult
    from hwsim.functional import FunctionalReport
    from hwsim.hw.arch import Architecture
    from hwsim.hw.area import AreaBreakdown


def _fmt_energy(pj: float | None) -> str:
    if pj is None:
        return "not reached"
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.3f} {unit}"
    return f"{pj:.3f} pJ"


def _at(values: np.ndarray, timestep: int | None) -> float | None:
    return None if timestep is None else float(values[timestep - 1])


def _fmt_time(ns: float | None) -> str:
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.0f} ns"


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g")


def accuracy_energy_frame(ev: ICEvaluation) -> pd.DataFrame:
    """One row per timestep: accuracy and cumulative energy of every method, and the tuned
    parameters (alpha exact and as the chip's LUT gives it; the early-exit margin threshold)."""
    T = len(ev.curves["DL"].accuracy)
    t = np.arange(1, T + 1)
    data: dict[str, object] = {"timestep": t}
    for name, curve in ev.curves.items():
        data[f"accuracy_{name.key}"] = curve.accuracy
        data[f"energy_{name.key}_pj"] = curve.energy_pj
        data[f"latency_{name.key}_ns"] = ev.latency_ns[name]
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


def targets_frame(ev: ICEvaluation) -> pd.DataFrame:
    """One row per method: target crossing, AUC, R and energy per timestep."""
    rows = [
        {
            "method": name,
            "target_accuracy": s.target.target,
            "timestep": s.target.timestep,
            "accuracy": s.target.accuracy,
            "energy_pj": s.target.energy_pj,
            "latency_ns": _at(ev.latency_ns[name], s.target.timestep),
            "auc": s.auc,
            "reduction_pct": s.reduction_pct,
            "energy_per_step_pj": ev.curves[name].energy_per_step_pj,
        }
        for name, s in ev.summary.items()
    ]
    return pd.DataFrame(rows)


def write_run(result: RunResult, out_dir: Path) -> list[Path]:
    """Write the run's CSVs, the alpha PWL + LUT (JSON) and figures (PNG + SVG) into out_dir."""
    ev = result.evaluation
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        out_dir / "energy_breakdown.csv",
        out_dir / "energy_per_timestep.csv",
        out_dir / "accuracy_energy.csv",
        out_dir / "targets.csv",
        out_dir / "alpha_lut.json",
    ]
    write_csv(ev.energy.breakdown().to_frame(), paths[0])
    write_csv(energy_per_timestep_frame(ev.energy), paths[1])
    write_csv(accuracy_energy_frame(ev), paths[2])
    write_csv(targets_frame(ev), paths[3])
    luts = {
        name: {
            "pwl": ev.fusion.tuning.pwl[name].to_dict(),
            "lut": ev.fusion.tuning.luts[name].to_dict(),
        }
        for name in ev.fusion.tuning.luts
    }
    atomic_write_text(paths[4], json.dumps(luts, indent=1))
    spec = result.spec
    title = f"{spec.name} w={spec.width:g}, IC at block {result.ic}, {result.arch.name}"
    paths += plot_accuracy_energy(
        list(ev.curves.values()), ev.target, out_dir / "accuracy_energy", title=title
    )
    paths += plot_alpha(
        {n: s.alpha for n, s in ev.fusion.tuning.schedules.items()},
        {n: (p.t, p.alpha) for n, p in ev.fusion.tuning.pwl.items()},
        out_dir / "alpha",
        title=title,
    )
    return paths


def write_sweep(rows: list[dict], out_dir: Path, title: str = "") -> list[Path]:
    """sweep.csv (one row per IC position) and the R-vs-position figure (paper Fig. 9)."""
    frame = pd.DataFrame(rows)
    csv = out_dir / "sweep.csv"
    write_csv(frame, csv)
    series = {
        c.removeprefix("reduction_").removesuffix("_pct"): frame[c].to_numpy(float)
        for c in frame.columns
        if c.startswith("reduction_")
    }
    return [csv, *plot_reduction_by_ic(frame["ic"].to_numpy(), series, out_dir / "sweep", title)]


def component_table(
    energy: EnergyBreakdown, title: str, parts: dict[str, EnergyBreakdown]
) -> Table:
    """Energy per timestep by component, one column per part of the network."""
    table = Table(title=title)
    table.add_column("component")
    for name in parts:
        table.add_column(f"{name} (pJ/step)", justify="right")
    table.add_column("share", justify="right")
    totals = {name: p.per_component_pj() for name, p in parts.items()}
    whole = energy.per_component_pj()
    grand = energy.total_pj
    for comp in energy.components:
        table.add_row(
            comp,
            *(f"{totals[n][comp]:,.1f}" for n in parts),
            f"{100 * whole[comp] / grand:.1f}%" if grand else "-",
        )
    table.add_row(
        "[bold]total[/]", *(f"[bold]{p.total_pj:,.1f}[/]" for p in parts.values()), "100%"
    )
    return table


def summary_table(ev: ICEvaluation) -> Table:
    """Per method: steps, energy and latency to the target, R (eq. 33) and AUC; the accuracy at
    the crossing and at T are in targets.csv and accuracy_energy.csv."""
    table = Table(
        title=f"To reach {100 * ev.target:.2f}% (99% of the ANN's FC accuracy);"
        " R = energy reduction vs DL (eq. 33)"
    )
    for col in ("method", "steps", "energy", "latency", "R", "AUC"):
        table.add_column(col, justify="left" if col == "method" else "right", no_wrap=True)
    for name, s in ev.summary.items():
        t = s.target
        table.add_row(
            name,
            "-" if t.timestep is None else str(t.timestep),
            _fmt_energy(t.energy_pj),
            _fmt_time(_at(ev.latency_ns[name], t.timestep)),
            "-" if s.reduction_pct is None else f"{s.reduction_pct:.1f}%",
            f"{s.auc:.4f}",
        )
    return table


def print_run(result: RunResult, console: Console) -> None:
    ev, spec, ic = result.evaluation, result.spec, result.ic
    shape = "x".join(map(str, spec.input_shape))
    ann_fc, ann_ic = 100 * ev.ann_accuracy[FC_HEAD], 100 * ev.ann_accuracy[ic]
    console.print(
        f"[bold]{spec.name}[/] width {spec.width:g}, input {shape}, IC at block {ic};"
        f" arch [bold]{result.arch.name}[/]; {result.test.key.timesteps} timesteps,"
        f" {result.test.key.images} test images; ANN accuracy FC {ann_fc:.2f}%, IC {ann_ic:.2f}%"
    )
    e = ev.energy.breakdown()
    parts = {
        "backbone": e.select(lambda g: g.head is None),
        f"IC{ic} head": e.select(lambda g: g.head == ic),
        "FC head": e.select(lambda g: g.head == FC_HEAD),
    }
    title = (
        f"Energy per timestep and image by component ({result.arch.energy_model} model,"
        f" mean over {ev.energy.timesteps} steps); fusion unit {ev.energy.fusion_pj.mean():.1f} pJ"
    )
    console.print(component_table(e, title, parts))
    tm = ev.timing
    console.print(
        f"timing at {tm.clock_mhz:g} MHz: first output after {_fmt_time(float(tm.latency_ns[0]))},"
        f" then {_fmt_time(tm.interval_cycles * 1e3 / tm.clock_mhz)} per timestep"
        f" (bottleneck {tm.bottleneck_layer})",
        highlight=False,
    )
    console.print(summary_table(ev))


def _pct(v: object) -> str:
    return "-" if v is None or pd.isna(v) else f"{v:.1f}%"


def sweep_table(rows: list[dict]) -> Table:
    table = Table(title="Energy reduction R to the target by IC position (eq. 33)")
    cols = [c for c in rows[0] if c.startswith("reduction_")] if rows else []
    table.add_column("IC")
    table.add_column("IC ANN acc.", justify="right")
    table.add_column("DL steps", justify="right")
    for c in cols:
        table.add_column(c.removeprefix("reduction_").removesuffix("_pct"), justify="right")
    for r in rows:
        steps = r["timestep_dl"]
        table.add_row(
            str(r["ic"]),
            f"{100 * r['ann_accuracy_ic']:.1f}%",
            "-" if steps is None or pd.isna(steps) else str(int(steps)),
            *(_pct(r[c]) for c in cols),
        )
    return table


def print_estimate(result: EstimateResult, console: Console) -> None:
    e = result.energy
    table = Table(title=f"{result.spec.name} on {result.arch.name}: energy per timestep (pJ)")
    table.add_column("layer")
    table.add_column("PE ops", justify="right")
    for comp in e.components:
        table.add_column(comp, justify="right")
    table.add_column("total", justify="right")
    for i, layer in enumerate(e.layers):
        table.add_row(
            layer.name,
            f"{e.pe_operations[i]:,}",
            *(f"{v:,.1f}" for v in e.energy_pj[i]),
            f"{e.energy_pj[i].sum():,.1f}",
        )
    table.add_row(
        "[bold]total[/]",
        f"{e.pe_operations.sum():,}",
        *(f"{v:,.1f}" for v in e.per_component_pj().values()),
        f"[bold]{e.total_pj:,.1f}[/]",
    )
    console.print(table)


def mapping_table(mapping: Mapping, title: str | None = None) -> Table:
    """A rich Table: one row per layer (crossbars, PEs, tiles, utilisation) and a total row."""
    arch = mapping.arch
    rows, cols = mapping.mesh_shape
    table = Table(
        title=title
        or (
            f"{arch.name}: {arch.mapping.style.value} mapping, {mapping.tiles} tiles on a"
            f" {rows} x {cols} mesh ({arch.mapping.placement.value}), fusion unit at"
            f" {mapping.fusion_unit_coord}"
        )
    )
    for col in ("layer", "kind", "row groups", "col groups", "crossbars", "PEs", "tiles"):
        table.add_column(col, justify="left" if col in ("layer", "kind") else "right")
    table.add_column("utilisation", justify="right")
    for m in mapping.layers:
        first, last = m.tiles[0], m.tiles[-1]
        table.add_row(
            m.name,
            str(m.layer.kind),
            f"{m.row_groups:,}",
            f"{m.col_groups:,}",
            f"{m.crossbars:,}",
            f"{m.pes:,}",
            f"{first}" if first == last else f"{first}-{last}",
            f"{100 * m.utilisation:.1f}%",
        )
    table.add_row(
        "[bold]total[/]",
        "",
        "",
        "",
        f"[bold]{mapping.crossbars:,}[/]",
        f"[bold]{mapping.pes:,}[/]",
        f"[bold]{mapping.tiles:,}[/]",
        f"[bold]{100 * mapping.utilisation:.1f}%[/]",
    )
    return table


def area_table(area: AreaBreakdown) -> Table:
    """Chip area by component (um^2) with the total in mm^2."""
    table = Table(title=f"Area by component ({area.total_mm2:.3f} mm^2 in all)")
    table.add_column("component")
    table.add_column("area (um^2)", justify="right")
    for name, um2 in area.per_component_um2().items():
        table.add_row(name, f"{um2:,.1f}")
    return table


def tune_table(result: TuneResult) -> Table:
    """Per IC and fusion method: alpha at t = 10, 100 (those within T) and T, LUT entries, and
    where the tuning is stored."""
    steps = result.trace.key.timesteps
    shown = [k for k in (10, 100) if k < steps] + [steps]
    table = Table(title=f"alpha(t) tuned on {result.trace.key.images} training images, T = {steps}")
    for col in ("IC", "method", *(f"alpha t={k}" for k in shown), "LUT entries", "file"):
        table.add_column(col)
    for ic, tuning in result.tunings.items():
        path = result.paths[ic]
        for method, schedule in tuning.schedules.items():
            table.add_row(
                str(ic),
                str(method),
                *(f"{schedule.alpha[k - 1]:.3g}" for k in shown),
                str(len(tuning.luts[method].t)),
                "not stored (--no-cache)" if path is None else str(path),
            )
    return table


def functional_table(
    rows: list[tuple[Architecture, FunctionalReport]], images: int, timesteps: int
) -> Table:
    """Per ADC setting: FC accuracy of the quantised ideal engine and of the hardware mode, FC
    spike agreement and the ADC clip rate."""
    table = Table(title=f"Hardware-functional mode on {images} test images, T = {timesteps}")
    columns = ("ADC bits", "full scale (levels)", "FC acc. ideal (quantised w)")
    columns += ("FC acc. hardware", "FC spike agreement", "ADC clip rate")
    for col in columns:
        table.add_column(col, justify="right")
    for arch, rep in rows:
        table.add_row(
            str(arch.adc.bits),
            f"{arch.adc_full_scale_levels:g}",
            f"{100 * rep.accuracy['quantised'][FC_HEAD]:.1f}%",
            f"{100 * rep.accuracy['hardware'][FC_HEAD]:.1f}%",
            f"{100 * rep.head_agreement[FC_HEAD]:.2f}%",
            f"{rep.adc_clip_fraction:.2e}",
        )
    return table
