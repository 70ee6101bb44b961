"""What each command prints on the console: its tables (`tables`) and lines; for a run a
header naming the model and the chip, a warning when T is far too short and notes with the
timesteps a missed target needs (`summary.advice_notes`); a finished folder as text
(`print_report`). Print on a `console.FittingConsole` to see every table whole at any width.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hwsim.model.graph import FC_HEAD
from hwsim.report.chip import ChipFacts, chip_facts, run_mapping
from hwsim.report.console import Layouts, compact, natural_width
from hwsim.report.html import FIGURES, FOLD_ROWS, TABLES, RunFolder
from hwsim.report.html import cell as html_cell
from hwsim.report.labels import (
    REFERENCE_NAMES,
    energy_scale,
    network_label,
    time_scale,
    trace_location,
)
from hwsim.report.summary import advice_notes, sweep_notes, too_short
from hwsim.report.tables import (
    area_table,
    budget_table,
    codesign_table,
    component_table,
    cycles_table,
    estimate_table,
    lut_table,
    mapping_table,
    summary_table,
    sweep_table,
    tune_table,
)
from hwsim.results import (
    ConvertResult,
    EstimateResult,
    ExportResult,
    FunctionalResult,
    GridResult,
    MapResult,
    RunResult,
    TraceResult,
    TrainResult,
    TuneResult,
)


def print_notes(console: Console, notes: Sequence[str]) -> None:
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def print_warnings(console: Console, warnings: Sequence[str]) -> None:
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)


def run_header(result: RunResult, facts: ChipFacts) -> list[str]:
    """The run's first lines: the model (network, file, input, classes, IC) and its reference
    accuracies; the chip (`chip.ChipFacts`); the images, timesteps and target."""
    ev, spec, ic = result.evaluation, result.spec, result.ic
    reference = REFERENCE_NAMES[result.reference]
    shape = "x".join(map(str, spec.input_shape))
    ann_fc, ann_ic = 100 * ev.ann_accuracy[FC_HEAD], 100 * ev.ann_accuracy[ic]
    key = result.test.key
    return [
        f"[bold]model[/] {network_label(spec)} ({result.model.name}): input {shape},"
        f" {spec.num_classes} classes, IC at block {ic}; {reference} accuracy FC {ann_fc:.2f}%,"
        f" IC{ic} {ann_ic:.2f}%",
        f"[bold]chip[/] {facts.line()}; {result.arch.energy_model} energy model",
        f"[bold]run[/] {key.images} test images x {key.timesteps} timesteps; target"
        f" {100 * ev.target:.2f}% (99% of the {reference}'s FC accuracy)",
    ]


def print_run(result: RunResult, console: Console) -> None:
    """The run: the model, the chip and the run in three lines, a warning when T is far too
    short; energy by component; the analytic timing; the methods to the target; the cycle-level
    chip; accuracy at budgets; the LUTs; notes with the timesteps the target needs."""
    ev, ic = result.evaluation, result.ic
    timesteps = result.test.key.timesteps
    reference = REFERENCE_NAMES[result.reference]
    for line in run_header(result, chip_facts(run_mapping(result))):
        console.print(line, highlight=False)
    short = too_short(ev, timesteps, result.spec.num_classes)
    print_warnings(console, [] if short is None else [short])
    e = ev.energy.breakdown()
    parts = {
        "backbone": e.select(lambda g: g.head is None),
        f"IC{ic} head": e.select(lambda g: g.head == ic),
        "FC head": e.select(lambda g: g.head == FC_HEAD),
    }
    title = (
        f"Energy per timestep and image by component (pJ; {result.arch.energy_model} model,"
        f" mean over {ev.energy.timesteps} steps); fusion unit {ev.energy.fusion_pj.mean():.1f}"
        " pJ per step"
    )
    console.print(component_table(e, title, parts))
    t_scale, t_unit = time_unit = time_scale(ev, result.cycles)
    tm = ev.timing
    console.print(
        f"analytic timing at {tm.clock_mhz:g} MHz: first output after"
        f" {float(tm.latency_ns[0]) / t_scale:.4g} {t_unit}, then"
        f" {tm.interval_cycles * 1e3 / tm.clock_mhz / t_scale:.4g} {t_unit} per timestep"
        f" (bottleneck {tm.bottleneck}: the busiest layer or link)",
        highlight=False,
    )
    console.print(summary_table(ev, reference, time_unit))
    if result.cycles is not None:
        console.print(cycles_table(result.cycles, time_unit, energy_scale(ev)[1]))
    console.print(budget_table(ev))
    console.print(lut_table(ev))
    print_notes(console, advice_notes(ev, timesteps, result.spec.num_classes))


def print_sweep(result: GridResult, out: Path, timesteps: int, console: Console) -> None:
    """How many cells were resumed from the state file in `out` or read from the result store,
    the sweep's R table, one per model x arch x coding (titled when there are several), and
    notes where the reference never reached the target within `timesteps`."""
    if result.resumed:
        console.print(
            f"resuming: {result.resumed} of {result.cells} cells already evaluated in {out}"
        )
    if result.stored:
        console.print(
            f"{result.stored} of {result.cells} cells read from the result store under the"
            " trace cache (evaluated by an earlier sweep with the same inputs)"
        )
    combos = dict.fromkeys((r["model"], r["arch"], r["coding"]) for r in result.rows)
    for model, arch, coding in combos:
        if len(combos) > 1:
            console.print(f"[bold]{model}[/] on {arch}, {coding} coding", highlight=False)
        part = [
            r for r in result.rows if (r["model"], r["arch"], r["coding"]) == (model, arch, coding)
        ]
        console.print(sweep_table(part))
    print_notes(console, sweep_notes(result.rows, timesteps))


def print_tune(result: TuneResult, console: Console) -> None:
    """The tuned alpha(t) per IC and method, then where each IC's tuning is stored."""
    console.print(tune_table(result))
    for ic in result.tunings:
        path = result.paths[ic]
        where = "not stored (--no-cache)" if path is None else f"stored in {path}"
        console.print(f"IC{ic} tuning {where}", highlight=False)


def print_trace(result: TraceResult, console: Console) -> None:
    key = result.trace.key
    where = trace_location(result)
    console.print(f"trace of {key.images} {key.split} images x {key.timesteps} steps: {where}")


def print_estimate(result: EstimateResult, console: Console) -> None:
    console.print(estimate_table(result))


def print_map(result: MapResult, console: Console) -> None:
    """The mapping per layer (compact at 80 columns) and the chip's area by component."""
    table = mapping_table(result.mapping)
    short = {"row groups": "rows", "col groups": "cols", "crossbars": "xbars"}
    short["utilisation"] = "used"
    legend = {
        "rows, cols": "row and column groups of crossbars",
        "xbars": "crossbars",
        "used": "cells used / cells of its crossbars",
    }
    console.print(Layouts(table, compact(table, short, legend)))
    console.print(area_table(result.area))


def print_functional(result: FunctionalResult, console: Console) -> None:
    console.print(codesign_table(result.codesign, result.arch))


def print_export(result: ExportResult, console: Console) -> None:
    console.print(
        f"wrote {result.out}: {result.layers} layers, Outputs {', '.join(result.outputs)},"
        f" threshold {result.threshold:g} (NIR IF nodes; docs/nir.md gives the conventions)"
    )


def print_convert(result: ConvertResult, console: Console) -> None:
    console.print(
        f"converted {result.model}: lambda per layer ="
        f" {', '.join(f'{s:.3g}' for s in result.scales)}"
    )
    if result.out is not None:
        console.print(f"wrote {result.out} (usable as --model)")


def print_train(result: TrainResult, console: Console) -> None:
    accuracy = sorted(result.checkpoint.accuracy.items())
    accs = ", ".join(f"{'FC' if h < 0 else f'IC{h}'} {100 * a:.2f}%" for h, a in accuracy)
    console.print(f"test accuracy: {accs}")
    console.print(f"wrote {result.path} ({result.checkpoint.training['seconds']} s)")


def print_written(
    console: Console,
    folder: str,
    files: Sequence[Path],
    *,
    replacing: bool = False,
    seconds: float | None = None,
) -> None:
    """The files written into an output folder (replacing earlier results in it), and how long
    the command took (s)."""
    what = "replaced the earlier results in" if replacing else "wrote into"
    took = "" if seconds is None else f" (run took {seconds:.0f} s)"
    console.print(f"{what} {folder}/: {', '.join(p.name for p in files)}{took}")


def print_report(run: RunFolder, console: Console) -> None:
    """A finished output folder as text (`hwsim report DIR`): summary.json's headline and
    notes, the figures with what they show, each CSV (whole when it is short and narrow, else
    its size and columns: no table is split)."""
    console.print(f"[bold]{run.path}[/]", highlight=False)
    if run.summary is not None:
        for key, value in run.summary.items():
            if not isinstance(value, dict | list) and key != "notes":
                console.print(f"{key}: {value}", highlight=False)
        print_notes(console, [str(n) for n in run.summary.get("notes") or ()])
    for name in run.figures:
        console.print(
            f"[bold]figure[/] {name}: {FIGURES.get(Path(name).stem, '')}", highlight=False
        )
    for name, frame in run.tables.items():
        about = f"{TABLES.get(name, '')} {len(frame)} rows x {len(frame.columns)} columns".strip()
        table = compact(Table(title=f"{name}: {about}"), {}, {})
        for col in frame.columns:
            table.add_column(str(col), justify="left" if col == frame.columns[0] else "right")
        for record in frame.itertuples(index=False):
            table.add_row(*(html_cell(v) for v in record))
        if len(frame) > FOLD_ROWS or natural_width(console, table) > console.width:
            columns = ", ".join(map(str, frame.columns))
            console.print(f"[bold]table[/] {name}: {about}: {columns}", highlight=False)
        else:
            console.print(table)
