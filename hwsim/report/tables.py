"""Console tables (rich) of every command's results: energy by component, the methods to the
target with their intervals, accuracy at energy budgets, the alpha LUTs, the sweep, the
cycle-level chip, the mapping and area, the tuning and the co-design sweep."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.table import Table

from hwsim.hw.arch import Architecture
from hwsim.hw.area import AreaBreakdown
from hwsim.hw.calibrate import CalibrationResult
from hwsim.hw.energy import EnergyBreakdown
from hwsim.hw.mapping import ChipMapping
from hwsim.methods import BASELINES, HEADLINE, REFERENCE, Method, reduction_column
from hwsim.metrics import Estimate
from hwsim.report.frames import stall_totals, value_at
from hwsim.report.labels import energy_scale, fmt_energy, fmt_time
from hwsim.results import EstimateResult, ICEvaluation, TuneResult

if TYPE_CHECKING:
    from hwsim.pipeline.cycles import CycleEvaluation
    from hwsim.pipeline.hardware import CodesignResult


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


def summary_table(ev: ICEvaluation, reference: str = "ANN") -> Table:
    """Per method (and per fused method with its exact alpha): steps, energy and latency to
    the target, R (eq. 33) against each baseline (`methods.BASELINES`), and AUC, with 90%
    paired bootstrap intervals over the test images. `reference`: whose FC accuracy the target
    is a fraction of (`labels.REFERENCE_NAMES`)."""
    level = 100 * ev.bootstrap.config.level
    table = Table(
        title=f"To reach {100 * ev.target:.2f}% (99% of the {reference}'s FC accuracy); R = energy"
        f" reduction (eq. 33); [{level:.0f}% paired bootstrap interval, test images resampled]",
        caption=f"alpha, LUT and early exit {ev.tuned_on}",
    )
    scale, unit = energy_scale(ev)
    columns = ("method", "steps", f"energy ({unit})", "latency")
    for col in (*columns, *(f"R vs {b.method}" for b in BASELINES), "AUC"):
        table.add_column(col, justify="left" if col == "method" else "right", no_wrap=True)
    latency = {**ev.latency_ns, **{c.name: ev.latency_ns[m] for m, c in ev.exact_curves.items()}}
    for name, est in ev.bootstrap.curves.items():
        step = est.timestep.value
        table.add_row(
            str(name),
            _fmt_est(est.timestep, ".0f"),
            _fmt_est(est.energy_pj, ".4g", scale),
            fmt_time(value_at(latency[name], int(step) if np.isfinite(step) else None)),
            *(
                _fmt_est(est.reduction_pct.get(b.method), ".1f", unit="%", never=False)
                for b in BASELINES
            ),
            _fmt_est(est.auc, ".4f"),
        )
    return table


def budget_table(ev: ICEvaluation) -> Table:
    """Accuracy of every method at fixed energy budgets (fractions of the reference's energy
    to the target), with paired bootstrap intervals: the second headline."""
    boot = ev.bootstrap
    scale, unit = energy_scale(ev)
    table = Table(title="Accuracy (%) at fixed energy budgets per image [90% interval]")
    table.add_column("method", no_wrap=True)
    for frac, budget in zip(boot.config.budget_fractions, boot.budgets_pj, strict=True):
        table.add_column(f"{frac:g} x {REFERENCE}'s ({budget / scale:.1f} {unit})", justify="right")
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


def _pct(v: object) -> str:
    return "-" if v is None or pd.isna(v) else f"{v:.1f}%"


def sweep_table(rows: list[dict[str, Any]]) -> Table:
    """Per IC position: R against the reference of every other method and the headline
    method's R against the other baselines, with their 90% paired bootstrap intervals."""
    table = Table(title="Energy reduction R to the target by IC position (eq. 33) [90% interval]")
    first, *others = BASELINES
    cols = [
        (f"R {m} vs {first.method}", reduction_column(first, m))
        for m in Method
        if m is not first.method
    ]
    cols += [(f"R {HEADLINE} vs {b.method}", reduction_column(b, HEADLINE)) for b in others]
    table.add_column("IC")
    table.add_column("IC ANN acc.", justify="right")
    table.add_column(f"{REFERENCE} steps", justify="right")
    for title, _ in cols:
        table.add_column(title, justify="right")
    for r in rows:
        steps = r[f"timestep_{REFERENCE.key}"]
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


def estimate_table(result: EstimateResult) -> Table:
    """SpikeSim energy per timestep (pJ) per layer and component, PE operations per layer."""
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
    return table


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
            fmt_energy(r.energy_pj),
            f"{r.clip_fraction:.2e}",
            f"{100 * r.fc_agreement:.2f}%",
        )
    ideal_ic = (
        [] if result.ideal_ic_accuracy is None else [f"{100 * result.ideal_ic_accuracy:.1f}%"]
    )
    table.add_row(
        "ideal engine", f"{100 * result.ideal_accuracy:.1f}%", *ideal_ic,
        fmt_energy(result.ideal_energy_pj), "-", "-",
    )  # fmt: skip
    table.add_row("ideal, quantised w", f"{100 * result.quantised_accuracy:.1f}%", *["-"] * len(ic),
                  "-", "-", "-")  # fmt: skip
    return table


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


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def calibration_tables(result: CalibrationResult) -> tuple[Table, Table]:
    """The fitted cost-table entries (in the entry's unit: pJ or um^2) and the measurements'
    residuals before and after the fit, with the leave-one-out prediction of each."""
    entries = Table(title="fitted entries")
    for col in ("entry", "base", "fitted", "std. error", "bounds"):
        entries.add_column(col, justify="left" if col in ("entry", "bounds") else "right")
    for e in result.entries:
        bound = " (at bound)" if e.at_bound else ""
        entries.add_row(
            e.key, _num(e.base), _num(e.value), _num(e.stderr), f"[{e.lower:g}, {e.upper:g}]{bound}"
        )
    res = Table(title="measurements (residuals relative to the measured value)")
    for col in ("id", "measured", "before", "after", "rel. error", "leave-one-out"):
        res.add_column(col, justify="left" if col == "id" else "right")
    for r in result.residuals:
        loo = r.loo_relative
        res.add_row(
            r.id,
            _num(r.measured),
            _num(r.before),
            _num(r.after),
            f"{100 * r.relative:+.2f}%",
            "-" if loo is None else f"{100 * loo:+.2f}%",
        )
    return entries, res
