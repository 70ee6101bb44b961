"""What the chip-study commands print: `hwsim ablation` (each effect SpikeSim leaves out, added in
turn) and `hwsim calibrate` (cost-table entries fitted to measurements)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hwsim.hw.calibrate import CalibrationResult
from hwsim.results import AblationResult


def ablation_table(result: AblationResult) -> Table:
    """Each step of the ablation: one image's latency (us) and energy E (uJ, with its partial-sum,
    static and off-chip parts in uJ), each relative to the step before (x), and the
    bottleneck."""
    table = Table(
        title=f"{result.full.name}: from SpikeSim's model, one effect at a time"
        f" ({result.timesteps} timesteps, spike rate {result.spike_rate:g}, one image;"
        " energies in uJ)"
    )
    for col in ("step", "lat. us", "x", "E uJ", "x", "psum", "static", "I/O"):
        table.add_column(col, justify="left" if col == "step" else "right")
    table.add_column("bottleneck")
    for row in result.ablation.to_frame().itertuples(index=False):
        table.add_row(
            row.step,
            f"{row.latency_us:,.1f}",
            f"{row.latency_ratio:.2f}",
            f"{row.energy_uj:,.2f}",
            f"{row.energy_ratio:.3f}",
            f"{row.psum_uj:,.2f}",
            f"{row.static_uj:,.2f}",
            f"{row.offchip_uj:,.2f}",
            row.bottleneck,
        )
    return table


def print_ablation(result: AblationResult, console: Console) -> None:
    """The ablation table and, with a `programming` section, the one-time weight programming."""
    console.print(ablation_table(result))
    prog = result.ablation.programming
    if prog is not None:
        console.print(
            f"programming the crossbars once: {prog.energy_pj / 1e6:,.2f} uJ,"
            f" {prog.ns / 1e6:,.3f} ms (the energy of"
            f" {prog.breakeven_inferences(result.ablation.steps[-1].energy_pj):.3g} inferences)"
        )


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def calibration_tables(result: CalibrationResult) -> tuple[Table, Table]:
    """The fitted cost-table entries (in the entry's unit: pJ or um^2) and the measurements'
    residuals before and after the fit, with the leave-one-out prediction of each."""
    entries = Table(title="fitted entries (pJ for energy_pj.*, um^2 for area_um2.*)")
    for col in ("entry", "base", "fitted", "std. error", "bounds"):
        entries.add_column(col, justify="left" if col in ("entry", "bounds") else "right")
    for e in result.entries:
        bound = " (at bound)" if e.at_bound else ""
        entries.add_row(
            e.key, _num(e.base), _num(e.value), _num(e.stderr), f"[{e.lower:g}, {e.upper:g}]{bound}"
        )
    res = Table(title="measurements (in their own units; errors relative to the measured value)")
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


def print_calibrate(result: CalibrationResult, console: Console) -> None:
    """The fitted entries, the residuals before and after the fit with each measurement's
    leave-one-out error, and the written file."""
    for table in calibration_tables(result):
        console.print(table)
    loo = result.loo_rms_relative
    console.print(
        f"rms relative residual {100 * result.rms_relative:.2f}%"
        + ("" if loo is None else f", leave-one-out {100 * loo:.2f}%")
        + ("" if result.out_path is None else f"; wrote {result.out_path}")
    )
