"""Reports: rich terminal tables, CSV files and the accuracy-vs-energy plot.

Every file is written atomically (temp file + rename). Column names carry their units.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from hwsim.api import EstimateResult, RunResult  # noqa: E402
from hwsim.atomic import atomic_path  # noqa: E402
from hwsim.hw.energy import EnergyBreakdown  # noqa: E402
from hwsim.hw.layers import FC_HEAD  # noqa: E402


def _fmt_energy(pj: float | None) -> str:
    if pj is None:
        return "not reached"
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.3f} {unit}"
    return f"{pj:.3f} pJ"


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g")


def accuracy_energy_frame(result: RunResult) -> pd.DataFrame:
    """One row per timestep: accuracy and cumulative energy of every method, and alpha."""
    T = result.config.timesteps
    data: dict[str, object] = {"timestep": range(1, T + 1)}
    for name, curve in result.curves.items():
        key = name.lower().replace("-", "_")
        data[f"accuracy_{key}"] = curve.accuracy
        data[f"energy_{key}_pj"] = curve.energy_pj
    data["alpha_bsf_grid"] = result.alpha.alpha
    return pd.DataFrame(data)


def targets_frame(result: RunResult) -> pd.DataFrame:
    rows = []
    for name, t in result.targets.items():
        rows.append(
            {
                "method": name,
                "target_accuracy": t.target,
                "timestep": t.timestep,
                "accuracy": t.accuracy,
                "energy_pj": t.energy_pj,
                "reduction_pct": result.reductions.get(name),
            }
        )
    return pd.DataFrame(rows)


def plot_accuracy_energy(result: RunResult, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, curve in result.curves.items():
        ax.plot(curve.energy_pj / 1e6, 100 * curve.accuracy, label=name, lw=1.6)
    ax.axhline(100 * result.target, color="k", ls="--", lw=1, label="99% of ANN")
    ax.set_xlabel("energy per inference (uJ)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0, 100 * result.target - 30), 100)
    ax.set_title(
        f"{result.spec.name} w={result.spec.width:g}, IC at block {result.ic}, {result.arch.name}"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."))
    plt.close(fig)


def write_run(result: RunResult, out_dir: Path) -> list[Path]:
    """Write energy_breakdown.csv, accuracy_energy.csv, targets.csv and accuracy_energy.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        out_dir / "energy_breakdown.csv",
        out_dir / "accuracy_energy.csv",
        out_dir / "targets.csv",
        out_dir / "accuracy_energy.png",
    ]
    write_csv(result.energy.to_frame(), paths[0])
    write_csv(accuracy_energy_frame(result), paths[1])
    write_csv(targets_frame(result), paths[2])
    plot_accuracy_energy(result, paths[3])
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


def print_run(result: RunResult, console: Console) -> None:
    spec, ic = result.spec, result.ic
    shape = "x".join(map(str, spec.input_shape))
    ann_fc, ann_ic = 100 * result.ann_accuracy[FC_HEAD], 100 * result.ann_accuracy[ic]
    console.print(
        f"[bold]{spec.name}[/] width {spec.width:g}, input {shape}, IC at block {ic};"
        f" arch [bold]{result.arch.name}[/]; {result.config.timesteps} timesteps,"
        f" {result.test_sim.images} test images; ANN accuracy FC {ann_fc:.2f}%, IC {ann_ic:.2f}%"
    )
    e = result.energy
    parts = {
        "backbone": e.select(lambda g: g.head is None),
        f"IC{ic} head": e.select(lambda g: g.head == ic),
        "FC head": e.select(lambda g: g.head == FC_HEAD),
    }
    console.print(component_table(e, "Energy per timestep by component (SpikeSim model)", parts))
    table = Table(title=f"To reach {100 * result.target:.2f}% (99% of the ANN's FC accuracy)")
    for col in ("method", "timestep", "accuracy", "energy", "R (eq. 33)", "final accuracy"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, t in result.targets.items():
        r = result.reductions.get(name)
        table.add_row(
            name,
            "-" if t.timestep is None else str(t.timestep),
            "-" if t.accuracy is None else f"{100 * t.accuracy:.2f}%",
            _fmt_energy(t.energy_pj),
            "-" if r is None else f"{r:.1f}%",
            f"{100 * result.curves[name].accuracy[-1]:.2f}%",
        )
    console.print(table)


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
