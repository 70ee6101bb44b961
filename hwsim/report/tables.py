"""Console tables (rich) of every command's results: energy by component, the methods to the
target with their intervals, accuracy at energy budgets, the alpha LUTs, the sweep, the
cycle-level chip, the mapping and area, the tuning and the co-design sweep.

Every number has its unit, in its header or its cell, and a quantity has one unit throughout a
command's output (energies per inference in the reference's unit, `labels.energy_scale`;
latencies in the run's, `labels.time_scale`). A table too wide for an 80-column terminal comes
with a compact layout (`console.Layouts`, `console.compact`): abbreviated headers, a legend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.console import Group
from rich.table import Table

from hwsim.hw.arch import Architecture
from hwsim.hw.area import AreaBreakdown
from hwsim.hw.energy import EnergyBreakdown
from hwsim.hw.mapping import ChipMapping
from hwsim.methods import BASELINES, HEADLINE, REFERENCE, Method, Ties, reduction_column
from hwsim.metrics import Estimate
from hwsim.report.console import Layouts, compact
from hwsim.report.frames import stall_totals, value_at
from hwsim.report.labels import ENERGY_UNITS, energy_scale, knob_label, unit_for
from hwsim.results import EstimateResult, ICEvaluation, TuneResult

if TYPE_CHECKING:
    from hwsim.pipeline.cycles import CycleEvaluation
    from hwsim.pipeline.hardware import CodesignResult

EXACT = " (exact alpha)"
"""How an exact-alpha curve's name ends (`hwsim.pipeline.evaluate.exact_alpha_name`)."""
EXACT_LEGEND = {"*": "with the exact alpha(t) instead of the chip's LUT"}
"""The legend of `short_method`'s mark."""


def short_method(name: object) -> str:
    """A method's name in a compact table: "BSF-Grid*" for "BSF-Grid (exact alpha)"."""
    text = str(name)
    return text[: -len(EXACT)] + "*" if text.endswith(EXACT) else text


def _columns(table: Table, names: Any, key: str = "method") -> None:
    """Columns `names`, the first (`key`) left-aligned, the others right-aligned numbers."""
    for col in names:
        table.add_column(col, justify="left" if col == key else "right", no_wrap=True)


def component_table(
    energy: EnergyBreakdown, title: str, parts: dict[str, EnergyBreakdown]
) -> Table:
    """Energy per timestep by component (pJ: `title` says so), one column per part of the
    network, and each component's share of the whole (%)."""
    table = Table(title=title)
    table.add_column("component")
    for name in parts:
        table.add_column(name, justify="right")
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
    e: Estimate | None,
    fmt: str,
    scale: float = 1.0,
    unit: str = "",
    never: bool = True,
    sep: str = " ",
) -> str:
    """'value unit [lo, hi]' of an estimate (`sep` between value and interval); '-' where the
    test set does not define it; an infinite bound is 'never' (a target missed: steps,
    energy) or '+-inf' (R, never=False)."""
    if e is None:
        return "-"
    value = "-" if not np.isfinite(e.value) else f"{e.value / scale:{fmt}}{unit}"
    lo, hi = (_fmt_bound(v / scale, fmt, never) for v in (e.lo, e.hi))
    return f"{value}{sep}[{lo}, {hi}]"


NEVER_LEGEND = {"never": "part of the interval misses the target within T"}


def summary_table(
    ev: ICEvaluation, reference: str = "ANN", time_unit: tuple[float, str] = (1e3, "us")
) -> Layouts:
    """Per method (and per fused method with its exact alpha): steps, energy and latency
    (`time_unit`: ns per unit, unit) to the target, R (eq. 33) against each baseline
    (`methods.BASELINES`), and AUC, with 90% paired bootstrap intervals over the test images.
    `reference`: whose FC accuracy the target is a fraction of (`labels.REFERENCE_NAMES`).
    An 80-column terminal gets two tables: steps, energy and latency; then R and AUC."""
    scale, unit = energy_scale(ev)
    t_scale, t_unit = time_unit
    latency = {**ev.latency_ns, **{c.name: ev.latency_ns[m] for m, c in ev.exact_curves.items()}}
    reached = ("steps", f"energy ({unit})", f"latency ({t_unit})")
    compared = (*(f"R vs {b.method} (%)" for b in BASELINES), "AUC")
    rows = []
    for name, est in ev.bootstrap.curves.items():
        step = est.timestep.value
        at = value_at(latency[name], int(step) if np.isfinite(step) else None)
        first = [
            _fmt_est(est.timestep, ".0f"),
            _fmt_est(est.energy_pj, ".4g", scale),
            "-" if at is None else f"{at / t_scale:.4g}",
        ]
        second = [
            *(_fmt_est(est.reduction_pct.get(b.method), ".1f", never=False) for b in BASELINES),
            _fmt_est(est.auc, ".4f"),
        ]
        rows.append((str(name), first, second))
    level = 100 * ev.bootstrap.config.level
    goal = f"To reach {100 * ev.target:.2f}% accuracy (99% of the {reference}'s FC accuracy)"
    interval = f"[{level:.0f}% paired bootstrap interval, test images resampled]"
    caption = f"alpha, LUT and early exit {ev.tuned_on}; {ev.ties.label}"
    wide = Table(title=f"{goal}; R = energy reduction (eq. 33) {interval}", caption=caption)
    _columns(wide, ("method", *reached, *compared))
    for name, a, b in rows:
        wide.add_row(name, *a, *b)
    to_target = Table(title=f"{goal} {interval}")
    _columns(to_target, ("method", *reached))
    reduction = Table(
        title="Energy reduction R to the target (eq. 33) against each baseline, and AUC"
        f" [{level:.0f}% interval]",
        caption=caption,
    )
    _columns(reduction, ("method", *compared))
    for name, a, b in rows:
        to_target.add_row(name, *a)
        reduction.add_row(name, *b)
    auc = {"AUC": "mean accuracy over energy budgets up to DL's energy at T (a fraction)"}
    short = {f"R vs {b.method} (%)": f"R vs {b.method} %" for b in BASELINES}
    narrow = Group(
        compact(to_target, {}, {**EXACT_LEGEND, **NEVER_LEGEND}, short_method),
        compact(reduction, short, auc, short_method),
    )
    return Layouts(wide, narrow)


def budget_table(ev: ICEvaluation) -> Layouts:
    """Accuracy of every method at fixed energy budgets (fractions of the reference's energy
    to the target), with paired bootstrap intervals: the second headline."""
    boot = ev.bootstrap
    scale, unit = energy_scale(ev)
    table = Table(title="Accuracy (%) at fixed energy budgets per image [90% interval]")
    table.add_column("method", no_wrap=True)
    short, fractions = {}, []
    for frac, budget in zip(boot.config.budget_fractions, boot.budgets_pj, strict=True):
        header = f"{frac:g} x {REFERENCE}'s ({budget / scale:.1f} {unit})"
        table.add_column(header, justify="right", no_wrap=True)
        short[header] = f"{budget / scale:.1f} {unit}"
        fractions.append(f"{frac:g}")
    for name, est in boot.curves.items():
        table.add_row(str(name), *(_fmt_est(e, ".1f", 0.01) for e in est.accuracy_at_budget))
    legend = {
        **EXACT_LEGEND,
        "budgets": f"{', '.join(fractions)} x {REFERENCE}'s energy to the target",
    }
    return Layouts(table, compact(table, short, legend, short_method))


def lut_table(ev: ICEvaluation) -> Layouts:
    """Per fused method: the LUT chosen (knot spacing, entries, fixed-point format) and the
    accuracy it loses against the exact alpha, on the tuning images (where it was chosen) and
    on the test images (mean over t and worst t, in percentage points)."""
    tuning, approx = ev.fusion.tuning, ev.fusion.approximation
    table = Table(
        title="alpha LUT: chosen by the accuracy it costs against the exact alpha",
        caption="format Qi.f: i integer and f fraction bits; loss: accuracy points (pp) lost"
        " against the exact alpha, mean over t / worst t",
    )
    cols = ("method", "knots every", "entries", "format", "loss tuning (pp)", "loss test (pp)")
    _columns(table, cols)
    for m, choice in tuning.lut_choice.items():
        c, a = choice.chosen, approx[m]
        table.add_row(
            str(m),
            f"{c.knot_step} steps",
            str(c.entries),
            f"Q{c.int_bits}.{c.frac_bits}",
            f"{100 * c.loss_mean:.3f} / {100 * c.loss_max:.2f}",
            f"{100 * a.lut_loss_mean:.3f} / {100 * a.lut_loss_max:.2f}",
        )
    short = {"knots every": "knots", "loss tuning (pp)": "tuning pp", "loss test (pp)": "test pp"}
    return Layouts(table, compact(table, short, {}))


def _pct(v: object) -> str:
    return "-" if v is None or pd.isna(v) else f"{v:.1f}"


def _survives(row: dict[str, Any], column: str) -> str:
    """'*' where R is defined and its interval simultaneous over the sweep's positions
    excludes 0."""
    values = (row.get(column), row.get(f"{column}_simlo"), row.get(f"{column}_simhi"))
    if any(v is None or pd.isna(v) for v in values):
        return ""
    _, lo, hi = values
    return "*" if lo > 0 or hi < 0 else ""


def _simultaneous(rows: list[dict[str, Any]]) -> str | None:
    """The simultaneous intervals' method and positions in words (None: not computed)."""
    methods = {r.get("simultaneous_method") for r in rows}
    positions = {r.get("simultaneous_positions") for r in rows}
    if len(methods) != 1 or len(positions) != 1:
        return None
    method, m = methods.pop(), positions.pop()
    if not isinstance(method, str) or m is None or pd.isna(m):
        return None
    return f"{method}, {int(m)} position{'' if int(m) == 1 else 's'}"


def sweep_table(rows: list[dict[str, Any]]) -> Layouts:
    """Per IC position: R (%) against the reference of every other method and the headline
    method's R against the other baselines, with their 90% paired bootstrap intervals (on a
    second line of the cell in the compact layout); * marks an R whose interval simultaneous
    over the positions (sweep.csv's _simlo, _simhi) excludes 0. The caption names the tie
    rule."""
    title = "Energy reduction R (%) to the target by IC position (eq. 33) [90% interval]"
    rules = {str(r.get("ties")) for r in rows if isinstance(r.get("ties"), str)}
    caption = "; ".join(Ties.parse(t).label for t in sorted(rules)) or None
    simultaneous = _simultaneous(rows)
    if simultaneous is not None:
        survive = f"*: the simultaneous interval ({simultaneous}) excludes 0"
        caption = survive if caption is None else f"{caption}; {survive}"
    first, *others = BASELINES
    cols = [
        (f"R {m} vs {first.method}", reduction_column(first, m), str(m))
        for m in Method
        if m is not first.method
    ]
    cols += [
        (f"R {HEADLINE} vs {b.method}", reduction_column(b, HEADLINE), f"{HEADLINE}/{b.method}")
        for b in others
    ]
    tables = []
    for sep, left, mid, right in ((" ", "[", ", ", "]"), ("\n", "", "..", "")):
        table = Table(title=title, caption=caption)
        table.add_column("IC")
        table.add_column("IC ANN acc. (%)", justify="right")
        table.add_column(f"{REFERENCE} steps", justify="right")
        for header, _, _ in cols:
            table.add_column(header, justify="right")
        for r in rows:
            steps = r[f"timestep_{REFERENCE.key}"]
            table.add_row(
                str(r["ic"]),
                f"{100 * r['ann_accuracy_ic']:.1f}",
                "-" if steps is None or pd.isna(steps) else str(int(steps)),
                *(
                    f"{_pct(r[c])}{_survives(r, c)}{sep}{left}{_pct(r.get(c + '_lo'))}{mid}"
                    f"{_pct(r.get(c + '_hi'))}{right}"
                    for _, c, _ in cols
                ),
            )
        tables.append(table)
    short = {header: name for header, _, name in cols}
    short |= {"IC ANN acc. (%)": "acc.", f"{REFERENCE} steps": "steps"}
    legend = {
        "columns": f"R (%) of each method against {first.method}, and of {HEADLINE} against "
        + ", ".join(str(b.method) for b in others),
        "second line": "90% interval, lo..hi",
        "acc.": "the IC's ANN accuracy (%)",
        "steps": f"{REFERENCE}'s timesteps to the target",
    }
    return Layouts(tables[0], compact(tables[1], short, legend))


def estimate_table(result: EstimateResult) -> Layouts:
    """SpikeSim energy per timestep (pJ) per layer and component, PE operations per layer; in
    the compact layout per layer its total, share and largest component, then per component."""
    e = result.energy
    title = f"{result.spec.name} on {result.arch.name}: energy per timestep (pJ)"
    wide = Table(title=title)
    wide.add_column("layer")
    wide.add_column("PE ops", justify="right")
    for comp in e.components:
        wide.add_column(comp, justify="right")
    wide.add_column("total", justify="right")
    for i, layer in enumerate(e.layers):
        wide.add_row(
            layer.name,
            f"{e.pe_operations[i]:,}",
            *(f"{v:,.1f}" for v in e.energy_pj[i]),
            f"{e.energy_pj[i].sum():,.1f}",
        )
    per_component = e.per_component_pj()
    wide.add_row(
        "[bold]total[/]",
        f"{e.pe_operations.sum():,}",
        *(f"{v:,.1f}" for v in per_component.values()),
        f"[bold]{e.total_pj:,.1f}[/]",
    )
    grand = e.total_pj or 1.0
    layers = Table(title=title)
    _columns(layers, ("layer", "PE ops", "total (pJ)", "share", "largest component"), "layer")
    layers.columns[-1].justify = "left"
    for i, layer in enumerate(e.layers):
        row = e.energy_pj[i]
        top = int(np.argmax(row))
        largest = f"{e.components[top]} {100 * row[top] / max(row.sum(), 1e-30):.0f}%"
        layers.add_row(
            layer.name,
            f"{e.pe_operations[i]:,}",
            f"{row.sum():,.1f}",
            f"{100 * row.sum() / grand:.1f}%",
            largest,
        )
    layers.add_row(
        "[bold]total[/]", f"{e.pe_operations.sum():,}", f"[bold]{e.total_pj:,.1f}[/]", "100%", ""
    )
    components = Table(title=f"{title} by component")
    _columns(components, ("component", "energy (pJ)", "share"), "component")
    for comp, pj in per_component.items():
        components.add_row(comp, f"{pj:,.1f}", f"{100 * pj / grand:.1f}%")
    legend = {"PE ops": "PE operations per timestep", "largest component": "its share of the layer"}
    return Layouts(wide, Group(compact(layers, {}, legend), components))


def mapping_table(mapping: ChipMapping, title: str | None = None) -> Table:
    """A rich Table: one row per layer (crossbars, PEs, the tiles it occupies, utilisation) and
    a total row (the chip's crossbars, PEs and tile count)."""
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
    for col in ("layer", "kind", "row groups", "col groups", "crossbars", "PEs", "on tiles"):
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
            f"#{first}" if first == last else f"#{first}-{last}",
            f"{100 * m.utilisation:.1f}%",
        )
    table.add_row(
        "[bold]total[/]",
        "",
        "",
        "",
        f"[bold]{mapping.crossbars:,}[/]",
        f"[bold]{mapping.pes:,}[/]",
        f"[bold]{mapping.tiles:,} tiles[/]",
        f"[bold]{100 * mapping.utilisation:.1f}%[/]",
    )
    return table


def area_table(area: AreaBreakdown) -> Table:
    """Chip area by component (um^2) with the total in mm^2."""
    table = Table(title=f"Area by component ({area.total_mm2:.3f} mm^2 in all)")
    table.add_column("component")
    table.add_column("area (um^2)", justify="right")
    table.add_column("share", justify="right")
    total = sum(area.per_component_um2().values()) or 1.0
    for name, um2 in area.per_component_um2().items():
        table.add_row(name, f"{um2:,.1f}", f"{100 * um2 / total:.1f}%")
    return table


def tune_table(result: TuneResult) -> Table:
    """Per IC and fusion method: alpha at t = 10, 100 (those within T) and T, LUT entries."""
    steps = result.trace.key.timesteps
    shown = [k for k in (10, 100) if k < steps] + [steps]
    table = Table(
        title=f"alpha(t) tuned on {result.trace.key.images} {result.trace.key.split} images,"
        f" T = {steps}"
    )
    for col in ("IC", "method", *(f"alpha t={k}" for k in shown), "LUT entries"):
        table.add_column(col, justify="left" if col in ("IC", "method") else "right")
    for ic, tuning in result.tunings.items():
        for method, schedule in tuning.schedules.items():
            table.add_row(
                str(ic),
                str(method),
                *(f"{schedule.alpha[k - 1]:.3g}" for k in shown),
                str(len(tuning.luts[method].t)),
            )
    return table


def codesign_table(result: CodesignResult, arch: Architecture) -> Layouts:
    """The co-design sweep: per knob value the FC accuracy on the chip, energy per inference
    (one unit for all rows), ADC clip rate and FC spikes equal to the quantised ideal engine's;
    then the ideal engine."""
    knob = knob_label(result.knob)
    energies = [r.energy_pj for r in result.rows] + [result.ideal_energy_pj]
    unit, size = unit_for(energies, ENERGY_UNITS)
    title = (
        f"Hardware-functional FC on {result.images} test images, T = {result.timesteps},"
        f" {arch.name} ({arch.adc.full_scale.value} ADC full scale, {arch.energy_model.value}"
        " energy)"
    )
    ic = [] if result.ic is None else [f"IC{result.ic} accuracy"]
    columns = (knob, "FC accuracy", *ic, f"energy / inference ({unit})", "ADC clip rate")
    table = Table(title=title)
    for col in (*columns, "FC spike agreement"):
        table.add_column(col, justify="right")
    for r in result.rows:
        table.add_row(
            f"{r.value:g}",
            f"{100 * r.accuracy:.1f}%",
            *([] if r.ic_accuracy is None else [f"{100 * r.ic_accuracy:.1f}%"]),
            f"{r.energy_pj / size:.4g}",
            f"{r.clip_fraction:.2e}",
            f"{100 * r.fc_agreement:.2f}%",
        )
    ideal_ic = (
        [] if result.ideal_ic_accuracy is None else [f"{100 * result.ideal_ic_accuracy:.1f}%"]
    )
    table.add_row(
        "ideal engine", f"{100 * result.ideal_accuracy:.1f}%", *ideal_ic,
        f"{result.ideal_energy_pj / size:.4g}", "-", "-",
    )  # fmt: skip
    table.add_row("ideal, quantised w", f"{100 * result.quantised_accuracy:.1f}%", *["-"] * len(ic),
                  "-", "-", "-")  # fmt: skip
    short = {
        knob: str(result.knob).replace("_", " "),
        f"energy / inference ({unit})": f"E ({unit})",
        "ADC clip rate": "clips",
        "FC spike agreement": "FC agree",
        "FC accuracy": "FC acc.",
    }
    legend = {
        f"E ({unit})": "energy per inference",
        "clips": "ADC conversions clipped / all",
        "FC agree": "FC output spikes equal to the quantised ideal engine's",
    }
    return Layouts(table, compact(table, short, legend))


def cycles_table(
    cycles: CycleEvaluation, time_unit: tuple[float, str], energy_unit: str
) -> Layouts:
    """The methods on the simulated chip: steps, latency per inference (mean, p99; the analytic
    model's beside it at fixed T) in `time_unit` (ns per unit, unit), throughput, energy per
    inference (`energy_unit`; its static and off-chip parts where the architecture models
    them), accuracy at the stop, NoC share of latency. An early-stop row whose threshold
    missed the target on the tuning images is marked (missed); the caption names the tie rule
    of the early stops and the methods left without an early-stop operating point."""
    run = cycles.chip_run
    arch = cycles.mapping.arch
    stalls = stall_totals(run)
    notes = []
    if cycles.fusion_share is not None:
        share = cycles.fusion_share
        notes.append(
            f"fusion unit: {100 * share['energy']:.3f}% of the energy,"
            f" {100 * share['area']:.3f}% of the area, busy {100 * share['cycles']:.2f}% of the"
            f" cycles ({run.chip.decision_cycles} cycles per decision)"
        )
    if cycles.fusion is not None and cycles.fusion.checks:
        notes.append(
            "fixed point vs float: "
            + ", ".join(
                f"{m} {c.mismatches} of {c.images * c.timesteps} decisions differ"
                for m, c in cycles.fusion.checks.items()
            )
        )
    if cycles.fusion is not None and cycles.fusion.terminations:
        terms = cycles.fusion.terminations
        rules = sorted({t.stop.ties.label.removeprefix("ties: ") for t in terms.values()})
        notes.append("early stop, a tie at T: " + "; ".join(rules))
        missed = [str(m) for m, t in terms.items() if not t.stop.target_met]
        if missed:
            notes.append(
                f"no early-stop operating point for {', '.join(missed)}: no threshold kept the"
                " target on the tuning images"
            )
    title = (
        f"Cycle-level chip ({run.chip.clock_mhz:g} MHz, {run.images} images"
        f" streamed): bottleneck {run.bottleneck}; layer cycles stalled "
        + ", ".join(f"{c} {100 * s:.1f}%" for c, s in stalls.items())
    )
    t_scale, t_unit = time_unit
    e_scale = ENERGY_UNITS[energy_unit]
    headers = {
        "method": "method",
        "run": "run",
        "steps": "steps",
        f"latency mean ({t_unit})": f"mean {t_unit}",
        f"latency p99 ({t_unit})": f"p99 {t_unit}",
        f"analytic ({t_unit})": f"anl. {t_unit}",
        "images/s": "img/s",
        f"energy / inference ({energy_unit})": f"E {energy_unit}",
    }
    if arch.leakage_mw is not None:
        headers[f"of it static ({energy_unit})"] = f"stat. {energy_unit}"
    if arch.offchip is not None:
        headers[f"of it off-chip ({energy_unit})"] = f"I/O {energy_unit}"
    headers |= {"accuracy": "acc.", "NoC share": "NoC"}
    rows = []
    for m in cycles.methods:
        energy = [f"{m.energy_pj / e_scale:.4g}"]
        if arch.leakage_mw is not None:
            energy.append(f"{m.static_pj / e_scale:.3g}")
        if arch.offchip is not None:
            energy.append(f"{m.offchip_pj / e_scale:.3g}")
        missed = " (missed)" if m.target_met_on_tuning is False else ""
        rows.append(
            [
                str(m.method),
                f"{m.point}{missed}",
                f"{m.steps_mean:.1f}",
                f"{m.latency_mean_ns / t_scale:.4g}",
                f"{m.latency_p99_ns / t_scale:.4g}",
                "-" if m.analytic_latency_ns is None else f"{m.analytic_latency_ns / t_scale:.4g}",
                f"{m.throughput_per_s:.1f}",
                *energy,
                "-" if m.accuracy is None else f"{100 * m.accuracy:.2f}%",
                f"{100 * m.noc_share:.2f}%",
            ]
        )
    tables = []
    for names in ({}, RUN_SHORT):
        table = Table(title=title, caption="; ".join(notes) or None)
        _columns(table, headers)
        table.columns[1].justify = "left"
        for method, point, *rest in rows:
            table.add_row(method, names.get(point, point), *rest)
        tables.append(table)
    legend = {
        "run T": "fixed-T, every image runs the steps to the target (all T if never)",
        "stop": "early-stop, the fusion unit stops each image when confident",
        "missed": "early stop whose threshold missed the target on the tuning images",
        "mean, p99": "latency per inference",
        "anl.": "the analytic model's latency at fixed T",
        "E": "energy per inference",
        "stat., I/O": "its static (leakage) and off-chip I/O parts",
        "acc.": "accuracy at the stop",
        "NoC": "share of the latency an ideal NoC removes",
    }
    if arch.leakage_mw is None and arch.offchip is None:
        del legend["stat., I/O"]
    return Layouts(tables[0], compact(tables[1], headers, legend))


RUN_SHORT = {
    "fixed-T": "T",
    "early-stop": "stop",
    "early-stop (missed)": "missed",
}
"""The operating points (`hwsim.pipeline.cycles.OperatingPoint`) in a compact table."""
