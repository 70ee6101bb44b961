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

from hwsim.atomic import atomic_write_text, write_csv
from hwsim.hw.energy import EnergyBreakdown, RunEnergy
from hwsim.hw.mapping import ChipMapping
from hwsim.methods import Method
from hwsim.metrics import Estimate
from hwsim.model.graph import FC_HEAD
from hwsim.model.netspec import NetSpec
from hwsim.report.cycles import cycles_table, write_cycles
from hwsim.report.figures import (
    plot_accuracy_energy,
    plot_alpha,
    plot_codesign,
    plot_reduction_by_ic,
)

if TYPE_CHECKING:  # report is below api: it reads api's results, it never calls api
    from hwsim.api import EstimateResult, ICEvaluation, RunResult, TuneResult
    from hwsim.hw.arch import Architecture
    from hwsim.hw.area import AreaBreakdown
    from hwsim.model.nir_io import ImportedSpec
    from hwsim.pipeline.hardware import CodesignResult


def network_label(spec: NetSpec | ImportedSpec) -> str:
    """A network in titles: the zoo's name and width ("vgg19 w=0.125"), or an imported
    network's file name ("net.nir")."""
    if isinstance(spec, NetSpec):
        return f"{spec.name} w={spec.width:g}"
    return f"{spec.name}.nir"


def reference_name(spec: NetSpec | ImportedSpec) -> str:
    """What the target accuracy is a fraction of: the ANN's accuracy, or for an imported
    network (no ANN) its SNN's at the final timestep (docs/nir.md)."""
    return "ANN" if isinstance(spec, NetSpec) else "SNN at T"


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
    accuracy and latency there, AUC, R against DL and against SL, each with its paired
    bootstrap interval, energy per timestep, and what the parameters were tuned on."""
    curves = {**ev.curves, **{c.name: c for c in ev.exact_curves.values()}}
    latency = {**ev.latency_ns, **{c.name: ev.latency_ns[m] for m, c in ev.exact_curves.items()}}
    rows = []
    for name, curve in curves.items():
        est = ev.bootstrap.curves[name]
        step = est.timestep.value
        t = int(step) if np.isfinite(step) else None
        rows.append(
            {
                "method": str(name),
                "target_accuracy": ev.target,
                **_with_interval("timestep", est.timestep),
                "accuracy": _at(curve.accuracy, t),
                **_with_interval("energy_pj", est.energy_pj),
                "latency_ns": _at(latency[name], t),
                **_with_interval("auc", est.auc),
                **_with_interval("reduction_pct", est.reduction_pct.get(Method.DL)),
                **_with_interval("reduction_vs_sl_pct", est.reduction_pct.get(Method.SL)),
                "energy_per_step_pj": curve.energy_per_step_pj,
                "tuned_on": ev.tuned_on,
            }
        )
    return pd.DataFrame(rows)


def budgets_frame(ev: ICEvaluation) -> pd.DataFrame:
    """Accuracy at fixed energy budgets (fractions of DL's energy to the target), one row per
    method and budget, with the paired bootstrap interval."""
    boot = ev.bootstrap
    rows = [
        {
            "method": str(name),
            "budget_fraction_of_dl": frac,
            "budget_pj": float(budget),
            **_with_interval("accuracy", est.accuracy_at_budget[j]),
        }
        for name, est in boot.curves.items()
        for j, (frac, budget) in enumerate(
            zip(boot.config.budget_fractions, boot.budgets_pj, strict=True)
        )
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
        out_dir / "budgets.csv",
        out_dir / "alpha_lut.json",
    ]
    write_csv(ev.energy.breakdown().to_frame(), paths[0])
    write_csv(energy_per_timestep_frame(ev.energy), paths[1])
    write_csv(accuracy_energy_frame(ev), paths[2])
    write_csv(targets_frame(ev), paths[3])
    write_csv(budgets_frame(ev), paths[4])
    tuning = ev.fusion.tuning
    luts = {
        name: {
            "pwl": tuning.pwl[name].to_dict(),
            "lut": tuning.luts[name].to_dict(),
            "choice": tuning.lut_choice[name].to_dict(),
            "test_loss_mean": ev.fusion.approximation[name].lut_loss_mean,
            "test_loss_max": ev.fusion.approximation[name].lut_loss_max,
            "tuned_on": ev.tuned_on,
        }
        for name in tuning.luts
    }
    atomic_write_text(paths[5], json.dumps(luts, indent=1))
    spec = result.spec
    title = f"{network_label(spec)}, IC at block {result.ic}, {result.arch.name}"
    paths += plot_accuracy_energy(
        list(ev.curves.values()),
        ev.target,
        out_dir / "accuracy_energy",
        title=title,
        exact={str(m): c for m, c in ev.exact_curves.items()},
    )
    paths += plot_alpha(
        {n: s.alpha for n, s in ev.fusion.tuning.schedules.items()},
        {n: (p.t, p.alpha) for n, p in ev.fusion.tuning.pwl.items()},
        out_dir / "alpha",
        title=title,
    )
    if result.cycles is not None:
        paths += write_cycles(result.cycles, out_dir, title)
    return paths


def sweep_figures(frame: pd.DataFrame, path: Path, title: str = "") -> list[Path]:
    """R by IC position with 90% bootstrap error bars from sweep.csv columns: against DL (at
    `path`, paper Fig. 9) and against SL (at `path` + "_vs_sl")."""
    paths: list[Path] = []
    for suffix, prefix, base in (
        ("", "reduction", Method.DL),
        ("_vs_sl", "reduction_vs_sl", Method.SL),
    ):
        cols = {
            m: f"{prefix}_{m.key}_pct"
            for m in Method
            if m is not base and f"{prefix}_{m.key}_pct" in frame
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
            path.with_name(path.name + suffix),
            f"{title}; R against {base}, 90% paired bootstrap intervals" if title else "",
            intervals=intervals,
            ylabel=f"energy reduction R against {base} (%)",
        )
    return paths


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


def _fmt_bound(v: float, fmt: str, never: bool) -> str:
    if np.isnan(v):
        return "?"
    if np.isinf(v):
        return ("never" if never else "+inf") if v > 0 else "-inf"
    return format(v, fmt)


def _fmt_est(
    e: Estimate | None, fmt: str, scale: float = 1.0, unit: str = "", never: bool = True
) -> str:
    """'value unit [lo, hi]' of an estimate; '-' where the test set does not define it; an
    infinite bound is 'never' (a target missed: steps, energy) or '+-inf' (R, never=False)."""
    if e is None:
        return "-"
    value = "-" if not np.isfinite(e.value) else f"{e.value / scale:{fmt}}{unit}"
    lo, hi = (_fmt_bound(v / scale, fmt, never) for v in (e.lo, e.hi))
    return f"{value} [{lo}, {hi}]"


def _energy_scale(ev: ICEvaluation) -> tuple[float, str]:
    e = float(ev.curves[Method.DL].energy_pj[-1])
    return next(((s, u) for u, s in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)) if e >= s), (1, "pJ"))


def summary_table(ev: ICEvaluation, reference: str = "ANN") -> Table:
    """Per method (and per fused method with its exact alpha): steps, energy and latency to
    the target, R (eq. 33) against DL and against SL, and AUC, with 90% paired bootstrap
    intervals over the test images. `reference`: whose FC accuracy the target is a fraction
    of (`reference_name`)."""
    level = 100 * ev.bootstrap.config.level
    table = Table(
        title=f"To reach {100 * ev.target:.2f}% (99% of the {reference}'s FC accuracy); R = energy"
        f" reduction (eq. 33); [{level:.0f}% paired bootstrap interval, test images resampled]",
        caption=f"alpha, LUT and early exit {ev.tuned_on}",
    )
    scale, unit = _energy_scale(ev)
    for col in ("method", "steps", f"energy ({unit})", "latency", "R vs DL", "R vs SL", "AUC"):
        table.add_column(col, justify="left" if col == "method" else "right", no_wrap=True)
    latency = {**ev.latency_ns, **{c.name: ev.latency_ns[m] for m, c in ev.exact_curves.items()}}
    for name, est in ev.bootstrap.curves.items():
        step = est.timestep.value
        table.add_row(
            str(name),
            _fmt_est(est.timestep, ".0f"),
            _fmt_est(est.energy_pj, ".4g", scale),
            _fmt_time(_at(latency[name], int(step) if np.isfinite(step) else None)),
            _fmt_est(est.reduction_pct.get(Method.DL), ".1f", unit="%", never=False),
            _fmt_est(est.reduction_pct.get(Method.SL), ".1f", unit="%", never=False),
            _fmt_est(est.auc, ".4f"),
        )
    return table


def budget_table(ev: ICEvaluation) -> Table:
    """Accuracy of every method at fixed energy budgets (fractions of DL's energy to the
    target), with paired bootstrap intervals: the second headline."""
    boot = ev.bootstrap
    scale, unit = _energy_scale(ev)
    table = Table(title="Accuracy (%) at fixed energy budgets per image [90% interval]")
    table.add_column("method", no_wrap=True)
    for frac, budget in zip(boot.config.budget_fractions, boot.budgets_pj, strict=True):
        table.add_column(f"{frac:g} x DL's ({budget / scale:.1f} {unit})", justify="right")
    for name, est in boot.curves.items():
        table.add_row(str(name), *(_fmt_est(e, ".1f", 0.01) for e in est.accuracy_at_budget))
    return table


def lut_table(ev: ICEvaluation) -> Table:
    """Per fused method: the LUT chosen (entries, fixed-point format) and the accuracy it
    loses against the exact alpha, on the tuning images (where it was chosen) and on the test
    images (mean over t and worst t, in points)."""
    tuning, approx = ev.fusion.tuning, ev.fusion.approximation
    table = Table(title="alpha LUT: chosen by the accuracy it costs against the exact alpha")
    cols = ("method", "knot step", "entries", "format", "loss tuning (mean/max)")
    for col in (*cols, "loss test (mean/max)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for m, choice in tuning.lut_choice.items():
        c, a = choice.chosen, approx[m]
        table.add_row(
            str(m),
            str(c.knot_step),
            str(c.entries),
            f"{c.int_bits}.{c.frac_bits}",
            f"{100 * c.loss_mean:.3f} / {100 * c.loss_max:.2f}",
            f"{100 * a.lut_loss_mean:.3f} / {100 * a.lut_loss_max:.2f}",
        )
    return table


def print_run(result: RunResult, console: Console) -> None:
    ev, spec, ic = result.evaluation, result.spec, result.ic
    shape = "x".join(map(str, spec.input_shape))
    ann_fc, ann_ic = 100 * ev.ann_accuracy[FC_HEAD], 100 * ev.ann_accuracy[ic]
    console.print(
        f"[bold]{network_label(spec)}[/], input {shape}, IC at block {ic};"
        f" arch [bold]{result.arch.name}[/]; {result.test.key.timesteps} timesteps,"
        f" {result.test.key.images} test images; {reference_name(spec)} accuracy"
        f" FC {ann_fc:.2f}%, IC {ann_ic:.2f}%"
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
    console.print(summary_table(ev, reference_name(spec)))
    if result.cycles is not None:
        console.print(cycles_table(result.cycles))
    console.print(budget_table(ev))
    console.print(lut_table(ev))


def _pct(v: object) -> str:
    return "-" if v is None or pd.isna(v) else f"{v:.1f}%"


def sweep_table(rows: list[dict]) -> Table:
    """Per IC position: R against DL of every other method and BSF-Grid's R against SL, with
    their 90% paired bootstrap intervals."""
    table = Table(title="Energy reduction R to the target by IC position (eq. 33) [90% interval]")
    cols = [(f"R {m} vs DL", f"reduction_{m.key}_pct") for m in Method if m is not Method.DL]
    cols.append(("R BSF-Grid vs SL", f"reduction_vs_sl_{Method.BSF_GRID.key}_pct"))
    table.add_column("IC")
    table.add_column("IC ANN acc.", justify="right")
    table.add_column("DL steps", justify="right")
    for title, _ in cols:
        table.add_column(title, justify="right")
    for r in rows:
        steps = r["timestep_dl"]
        table.add_row(
            str(r["ic"]),
            f"{100 * r['ann_accuracy_ic']:.1f}%",
            "-" if steps is None or pd.isna(steps) else str(int(steps)),
            *(
                f"{_pct(r[c])} [{_pct(r.get(c + '_lo'))}, {_pct(r.get(c + '_hi'))}]"
                for _, c in cols
            ),
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


def mapping_table(mapping: ChipMapping, title: str | None = None) -> Table:
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
    table = Table(
        title=f"alpha(t) tuned on {result.trace.key.images} {result.trace.key.split} images,"
        f" T = {steps}"
    )
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


def codesign_table(result: CodesignResult, arch: Architecture) -> Table:
    """The co-design sweep: per knob value the FC accuracy on the chip, energy per inference,
    ADC clip rate and FC spikes equal to the quantised ideal engine's; then the ideal engine."""
    knob = str(result.knob).replace("_", " ")
    table = Table(
        title=f"Hardware-functional FC on {result.images} test images, T = {result.timesteps},"
        f" {arch.name} ({arch.adc.full_scale.value} ADC full scale, {arch.energy_model.value}"
        " energy)"
    )
    ic = [] if result.ic is None else [f"IC{result.ic} accuracy"]
    columns = (knob, "FC accuracy", *ic, "energy / inference", "ADC clip rate")
    for col in (*columns, "FC spike agreement"):
        table.add_column(col, justify="right")
    for r in result.rows:
        table.add_row(
            f"{r.value:g}",
            f"{100 * r.accuracy:.1f}%",
            *([] if r.ic_accuracy is None else [f"{100 * r.ic_accuracy:.1f}%"]),
            _fmt_energy(r.energy_pj),
            f"{r.clip_fraction:.2e}",
            f"{100 * r.fc_agreement:.2f}%",
        )
    ideal_ic = (
        [] if result.ideal_ic_accuracy is None else [f"{100 * result.ideal_ic_accuracy:.1f}%"]
    )
    table.add_row(
        "ideal engine", f"{100 * result.ideal_accuracy:.1f}%", *ideal_ic,
        _fmt_energy(result.ideal_energy_pj), "-", "-",
    )  # fmt: skip
    table.add_row("ideal, quantised w", f"{100 * result.quantised_accuracy:.1f}%", *["-"] * len(ic),
                  "-", "-", "-")  # fmt: skip
    return table


def write_codesign(result: CodesignResult, out_dir: Path, title: str = "") -> list[Path]:
    """codesign.csv (docs/outputs.md) and codesign.png/.svg: accuracy and energy per inference
    against the knob, with the ideal engine's as dashed lines."""
    csv = out_dir / "codesign.csv"
    write_csv(pd.DataFrame(result.to_rows()), csv)
    values = np.array([r.value for r in result.rows])
    return [
        csv,
        *plot_codesign(
            str(result.knob).replace("_", " "),
            values,
            np.array([r.accuracy for r in result.rows]),
            np.array([r.energy_pj for r in result.rows]),
            (result.ideal_accuracy, result.ideal_energy_pj),
            out_dir / "codesign",
            title=title,
        ),
    ]
