"""The files of every command's results: CSV tables (`frames`), the alpha LUTs as JSON and the
figures, written atomically into an output folder (docs/outputs.md). Each writer returns the
paths it wrote, in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hwsim.atomic import atomic_folder, atomic_write_text, write_csv
from hwsim.methods import Ties
from hwsim.report.chip import router_labels, run_mapping
from hwsim.report.figures import (
    plot_accuracy_energy,
    plot_alpha,
    plot_codesign,
    plot_latency_histogram,
    plot_link_heatmap,
    sweep_figures,
)
from hwsim.report.frames import (
    accuracy_energy_frame,
    breakdown_frame,
    budgets_frame,
    energy_per_timestep_frame,
    fusion_frame,
    links_frame,
    methods_frame,
    targets_frame,
)
from hwsim.report.labels import energy_scale, knob_label, network_label
from hwsim.results import AblationResult, EstimateResult, MapResult, RunResult

if TYPE_CHECKING:
    from hwsim.pipeline.cycles import CycleEvaluation
    from hwsim.pipeline.hardware import CodesignResult


def write_run(result: RunResult, out_dir: Path) -> list[Path]:
    """Write the run's CSVs, the alpha PWL + LUT (JSON) and figures (PNG + SVG) into out_dir,
    and with cycle timing the cycle-level files (`write_cycles`)."""
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
    title = f"{network_label(result.spec)}, IC at block {result.ic}, {result.arch.name}"
    paths += plot_accuracy_energy(
        list(ev.curves.values()),
        ev.target,
        out_dir / "accuracy_energy",
        title=f"{title}\n{ev.ties.label}",
        energy_unit=energy_scale(ev)[1],
        exact={str(m): c for m, c in ev.exact_curves.items()},
    )
    paths += plot_alpha(
        {n: s.alpha for n, s in ev.fusion.tuning.schedules.items()},
        {n: (p.t, p.alpha) for n, p in ev.fusion.tuning.pwl.items()},
        out_dir / "alpha",
        title=title,
    )
    if result.cycles is not None:
        routers = router_labels(run_mapping(result))
        paths += write_cycles(result.cycles, out_dir, title, routers)
    return paths


def write_cycles(
    cycles: CycleEvaluation,
    out_dir: Path,
    title: str = "",
    routers: dict[tuple[int, int], str] | None = None,
) -> list[Path]:
    """cycle_methods.csv, latency_breakdown.csv, noc_links.csv, fusion_unit.csv (with a fusion
    unit), the latency distributions (latency_histogram: a box per method and operating point)
    and the mesh floorplan with its link loads (link_utilisation; `routers`: what each router's
    tile holds)."""
    paths = [
        out_dir / "cycle_methods.csv",
        out_dir / "latency_breakdown.csv",
        out_dir / "noc_links.csv",
    ]
    write_csv(methods_frame(cycles), paths[0])
    write_csv(breakdown_frame(cycles.chip_run), paths[1])
    write_csv(links_frame(cycles.chip_run), paths[2])
    if cycles.fusion is not None:
        paths.append(out_dir / "fusion_unit.csv")
        write_csv(fusion_frame(cycles), paths[-1])
    latency = {f"{m.method} ({m.point})": m.run.ns(m.run.latency_cycles) for m in cycles.methods}
    paths += plot_latency_histogram(latency, out_dir / "latency_histogram", title)
    run = cycles.chip_run
    paths += plot_link_heatmap(
        run.chip.links, run.link_utilisation(), out_dir / "link_utilisation", title, routers
    )
    return paths


def write_codesign(result: CodesignResult, out_dir: Path, title: str = "") -> list[Path]:
    """codesign.csv (docs/outputs.md) and codesign.png/.svg: accuracy and energy per inference
    against the knob, with the ideal engine's as dashed lines."""
    csv = out_dir / "codesign.csv"
    write_csv(pd.DataFrame(result.to_rows()), csv)
    values = np.array([r.value for r in result.rows])
    return [
        csv,
        *plot_codesign(
            knob_label(result.knob),
            values,
            np.array([r.accuracy for r in result.rows]),
            np.array([r.energy_pj for r in result.rows]),
            (result.ideal_accuracy, result.ideal_energy_pj),
            out_dir / "codesign",
            title=title,
        ),
    ]


def write_sweep(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """sweep.csv (rows in grid order) and one R-by-IC figure per model x arch x coding,
    replacing out_dir as a whole (so a grid's state file goes with it)."""
    frame = pd.DataFrame(rows)
    combos = list(dict.fromkeys(zip(frame["model"], frame["arch"], frame["coding"], strict=True)))
    names: list[str] = []
    with atomic_folder(out_dir) as tmp:
        write_csv(frame, tmp / "sweep.csv")
        names.append("sweep.csv")
        for i, (model, arch, coding) in enumerate(combos):
            part = frame[
                (frame["model"] == model) & (frame["arch"] == arch) & (frame["coding"] == coding)
            ]
            stem = "sweep" if len(combos) == 1 else f"sweep-{i + 1}"
            title = f"{Path(model).name}, {Path(arch).stem}, {coding}"
            if "ties" in part:
                title += "\n" + "; ".join(Ties.parse(str(t)).label for t in part["ties"].unique())
            names += [p.name for p in sweep_figures(part, tmp / stem, title)]
    return [out_dir / n for n in names]


def write_mapping(result: MapResult, out_dir: Path) -> list[Path]:
    """mapping.csv: one row per layer of the mapped network."""
    path = out_dir / "mapping.csv"
    write_csv(result.mapping.to_frame(), path)
    return [path]


def write_estimate(result: EstimateResult, out_dir: Path) -> list[Path]:
    """energy_breakdown.csv: SpikeSim energy per timestep by layer and component."""
    path = out_dir / "energy_breakdown.csv"
    write_csv(result.energy.to_frame(), path)
    return [path]


def write_ablation(result: AblationResult, out_dir: Path) -> list[Path]:
    """ablation.csv: one row per step (`hwsim.hw.ablation.Ablation.to_frame`)."""
    path = out_dir / "ablation.csv"
    write_csv(result.ablation.to_frame(), path)
    return [path]
