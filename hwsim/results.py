"""The typed results of hwsim's entry points (`hwsim.api`), which report prints, writes and plots.

Plain data with the units in their names or docstrings; nothing here computes a stage. The sweep
CSV's schema lives here too (`SweepRow.to_dict`, `SweepRow.from_dict`), so that a row written by
one run and read back by a resumed one is the same row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hwsim.engine.trace import Trace
from hwsim.fusion import FusionComparison, Tuning
from hwsim.hw.ablation import Ablation
from hwsim.hw.arch import Architecture
from hwsim.hw.area import AreaBreakdown
from hwsim.hw.energy import EnergyBreakdown, RunEnergy
from hwsim.hw.mapping import ChipMapping
from hwsim.hw.timing import TimingResult, cycles_to_ns
from hwsim.methods import BASELINES, METHODS, REFERENCE, Method, Ties, reduction_column
from hwsim.metrics import (
    BootstrapResult,
    Curve,
    CurveEstimates,
    Estimate,
    Multiplicity,
    Summary,
)
from hwsim.model.graph import FC_HEAD, Layer
from hwsim.model.netspec import NetSpec
from hwsim.model.nir_io import ImportedSpec

if TYPE_CHECKING:  # result types of the pipeline's own modules (see the module docstring)
    from hwsim.model.nets import Checkpoint
    from hwsim.pipeline.cycles import CycleEvaluation
    from hwsim.pipeline.hardware import CodesignResult


class Reference(StrEnum):
    """What a run's target accuracy is a fraction of (summary.json's `reference`)."""

    ANN = "ann"  # a checkpoint's ANN, on the same test images
    SNN_FINAL = "snn_final_timestep"  # an imported network (no ANN): its own SNN at T


@dataclass(frozen=True)
class ICEvaluation:
    """Accuracy and energy curves of every method for one IC, and their headline numbers."""

    ic: int
    ann_accuracy: dict[int, float]  # the reference's, on the test images, per head
    target: float
    curves: dict[Method, Curve]
    summary: dict[Method, Summary]
    fusion: FusionComparison
    energy: RunEnergy  # per image and timestep: backbone + IC head + FC head + fusion unit
    latency_ns: dict[Method, np.ndarray]  # (T,): time to the method's output of timestep t
    timing: TimingResult
    exact_curves: dict[Method, Curve]  # the fused methods with the exact per-step alpha
    bootstrap: BootstrapResult  # intervals; curves keyed by method and exact-alpha name
    tuned_on: str  # where the tuned parameters come from, in words

    @property
    def ties(self) -> Ties:
        """The tie rule every curve, tuning and interval of this evaluation credits ties by."""
        return self.fusion.tuning.ties


@dataclass(frozen=True)
class ChipCosts:
    """What each method costs on the chip that holds the backbone, the IC head and the FC head.

    `energy_pj[m]` (T,): cumulative energy per image of the layers method m keeps busy (and the
    fusion unit, when it uses it); `latency_ns[m]` (T,): time until the outputs it needs of
    timestep t reach the fusion unit; `energy` and `timing`: the whole chip's run.
    """

    energy_pj: dict[Method, np.ndarray]
    latency_ns: dict[Method, np.ndarray]
    energy: RunEnergy
    timing: TimingResult


@dataclass(frozen=True)
class RunResult:
    """Everything `hwsim run` reports: the model file, the architecture and network run, the
    evaluation of one IC, the test trace, the wall time (s) and, with cycle timing, the
    cycle-level simulation of the chip."""

    model: Path
    reference: Reference
    arch: Architecture
    spec: NetSpec | ImportedSpec
    evaluation: ICEvaluation
    test: Trace
    seconds: float
    cycles: CycleEvaluation | None = None

    @property
    def ic(self) -> int:
        return self.evaluation.ic


@dataclass(frozen=True)
class TuneResult:
    """The tuning trace, and per IC its tuning and where it is stored (None: not stored)."""

    trace: Trace
    tunings: dict[int, Tuning]
    paths: dict[int, Path | None]


@dataclass(frozen=True)
class TraceResult:
    """A simulated (or cached) trace of a split, the cache folder that holds it (None: not
    stored) and the folder it was also written to (None: none asked)."""

    trace: Trace
    stored: Path | None
    written: Path | None


@dataclass(frozen=True)
class EstimateResult:
    """SpikeSim energy per timestep of a network on an architecture."""

    spec: NetSpec | ImportedSpec
    arch: Architecture
    layers: tuple[Layer, ...]
    energy: EnergyBreakdown


@dataclass(frozen=True)
class MapResult:
    """A network mapped onto an architecture's chip, and the chip's area."""

    spec: NetSpec | ImportedSpec
    mapping: ChipMapping
    area: AreaBreakdown


@dataclass(frozen=True)
class FunctionalResult:
    """A co-design sweep of the hardware-functional mode (`hwsim functional`): the sweep, the
    architecture it started from and the network."""

    codesign: CodesignResult
    arch: Architecture
    spec: NetSpec | ImportedSpec


@dataclass(frozen=True)
class ExportResult:
    """A converted network written as a NIR file: its Output nodes (IC heads, then fc), layers
    and IF threshold."""

    model: Path
    out: Path
    outputs: tuple[str, ...]
    layers: int
    threshold: float


@dataclass(frozen=True)
class ConvertResult:
    """A checkpoint converted to an SNN: the scale lambda of each layer and where the converted
    model was written (None: not written)."""

    model: Path
    scales: tuple[float, ...]
    out: Path | None


@dataclass(frozen=True)
class TrainResult:
    """A trained checkpoint and the file it was written to."""

    checkpoint: Checkpoint
    path: Path


def _ci(e: Estimate | None) -> tuple[float, float] | None:
    return None if e is None or math.isnan(e.lo) else (e.lo, e.hi)


@dataclass(frozen=True)
class Reduction:
    """R (eq. 33, %) of a method against one baseline (None where either never reaches the
    target) and its paired bootstrap interval (lo, hi; inf where the target is missed in the
    tail; None where no resample defines it). `simultaneous_ci`: the interval simultaneous over
    a sweep's positions (`hwsim.pipeline.evaluate.simultaneous_rows`; None: not computed);
    `estimate`: the bootstrap estimate with its samples (None for a row read back from CSV)."""

    pct: float | None
    ci: tuple[float, float] | None = None
    simultaneous_ci: tuple[float, float] | None = None
    estimate: Estimate | None = field(default=None, compare=False, repr=False)

    @property
    def survives(self) -> bool | None:
        """Whether the simultaneous interval excludes 0 (None: not computed or undefined)."""
        ci = self.simultaneous_ci
        return None if ci is None else bool(ci[0] > 0 or ci[1] < 0)


@dataclass(frozen=True)
class MethodOutcome:
    """One method's headline numbers for one IC: target crossing (None: not reached within T),
    its energy (pJ per image), normalised AUC, each with its paired bootstrap interval (`*_ci`),
    and R against every baseline of `hwsim.methods.BASELINES` but itself (`reductions`, keyed
    by the baseline)."""

    timestep: int | None
    energy_pj: float | None
    auc: float
    reductions: dict[Method, Reduction]
    timestep_ci: tuple[float, float] | None = None
    energy_pj_ci: tuple[float, float] | None = None
    auc_ci: tuple[float, float] | None = None

    @classmethod
    def of(cls, method: Method, summary: Summary, est: CurveEstimates) -> MethodOutcome:
        """R against the reference is the run's (`Summary`), against the other baselines the
        bootstrap's value on the whole test set where it is finite."""
        reductions = {}
        for b in BASELINES:
            if b.method is method:
                continue
            e = est.reduction_pct.get(b.method)
            if b.method is REFERENCE:
                pct = summary.reduction_pct
            else:
                pct = None if e is None or not math.isfinite(e.value) else e.value
            reductions[b.method] = Reduction(pct, _ci(e), estimate=e)
        return cls(
            summary.target.timestep,
            summary.target.energy_pj,
            summary.auc,
            reductions,
            _ci(est.timestep),
            _ci(est.energy_pj),
            _ci(est.auc),
        )


_CI_COLUMNS = {
    "timestep_ci": ("timestep_{k}_lo", "timestep_{k}_hi"),
    "energy_pj_ci": ("energy_{k}_pj_lo", "energy_{k}_pj_hi"),
    "auc_ci": ("auc_{k}_lo", "auc_{k}_hi"),
}
"""CSV columns of each MethodOutcome interval, {k} = `Method.key` (R's: `reduction_column`
+ _lo, _hi)."""


@dataclass(frozen=True)
class SweepRow:
    """One IC position of a sweep. `ties`: the tie rule its accuracies credit ties by;
    `family` and `multiplicity`: the number of positions and the method its R intervals are
    simultaneous over (`Reduction.simultaneous_ci`; 0 and None: not computed)."""

    ic: int
    ann_accuracy_ic: float
    ann_accuracy_fc: float
    target_accuracy: float
    methods: dict[Method, MethodOutcome]
    family: int = 0
    multiplicity: Multiplicity | None = None
    ties: Ties = Ties()

    @classmethod
    def of(cls, ev: ICEvaluation) -> SweepRow:
        return cls(
            ev.ic,
            ev.ann_accuracy[ev.ic],
            ev.ann_accuracy[FC_HEAD],
            ev.target,
            {m: MethodOutcome.of(m, s, ev.bootstrap.curves[m]) for m, s in ev.summary.items()},
            ties=ev.ties,
        )

    def to_dict(self) -> dict[str, float | int | str | None]:
        """The CSV row (docs/outputs.md): the tie rule; per method timestep_x, energy_x_pj,
        auc_x and R against each other baseline (`reduction_column`), each with _lo/_hi
        interval columns, R also with its simultaneous interval (_simlo/_simhi), x =
        `Method.key`; then the positions and the method the simultaneous intervals hold over
        (empty: not computed)."""
        row: dict[str, float | int | str | None] = {
            "ic": self.ic,
            "ann_accuracy_ic": self.ann_accuracy_ic,
            "ann_accuracy_fc": self.ann_accuracy_fc,
            "target_accuracy": self.target_accuracy,
            "ties": str(self.ties),
        }
        for m, o in self.methods.items():
            row[f"timestep_{m.key}"] = o.timestep
            row[f"energy_{m.key}_pj"] = o.energy_pj
            row[f"auc_{m.key}"] = o.auc
            for b in BASELINES:
                if b.method in o.reductions:
                    row[reduction_column(b, m)] = o.reductions[b.method].pct
            intervals = [(cols, getattr(o, name)) for name, cols in _CI_COLUMNS.items()]
            for b in BASELINES:
                if b.method in o.reductions:
                    col, r = reduction_column(b, m), o.reductions[b.method]
                    intervals.append(((f"{col}_lo", f"{col}_hi"), r.ci))
                    intervals.append(((f"{col}_simlo", f"{col}_simhi"), r.simultaneous_ci))
            for cols, ci in intervals:
                for col, v in zip(cols, (None, None) if ci is None else ci, strict=True):
                    row[col.format(k=m.key)] = v
        row["simultaneous_positions"] = self.family or None
        row["simultaneous_method"] = None if self.multiplicity is None else str(self.multiplicity)
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> SweepRow:
        """A row read back from CSV (NaN: not reached)."""

        def opt(key: str) -> float | None:
            v = row.get(key)
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        def ci(lo_col: str, hi_col: str) -> tuple[float, float] | None:
            lo, hi = opt(lo_col), opt(hi_col)
            return None if lo is None or hi is None else (lo, hi)

        methods = {}
        for m in METHODS:
            step = opt(f"timestep_{m.key}")
            cis = {n: ci(*(c.format(k=m.key) for c in cols)) for n, cols in _CI_COLUMNS.items()}
            reductions = {
                b.method: Reduction(
                    opt(col), ci(f"{col}_lo", f"{col}_hi"), ci(f"{col}_simlo", f"{col}_simhi")
                )
                for b in BASELINES
                if b.method is not m
                for col in (reduction_column(b, m),)
            }
            methods[m] = MethodOutcome(
                None if step is None else int(step),
                opt(f"energy_{m.key}_pj"),
                float(row[f"auc_{m.key}"]),
                reductions,
                **cis,
            )
        family, method = opt("simultaneous_positions"), row.get("simultaneous_method")
        present = isinstance(method, str) and method != ""
        return cls(
            int(row["ic"]),
            float(row["ann_accuracy_ic"]),
            float(row["ann_accuracy_fc"]),
            float(row["target_accuracy"]),
            methods,
            0 if family is None else int(family),
            Multiplicity(method) if present else None,
            Ties.parse(str(row["ties"])) if isinstance(row.get("ties"), str) else Ties(),
        )


GridRow = dict[str, Any]
"""One sweep.csv row: the cell (model, arch, coding, ic), the reference, then
`SweepRow.to_dict()`."""


@dataclass(frozen=True)
class GridResult:
    """A grid sweep: its rows in grid order, how many of its `cells` were taken from an
    interrupted run's state file, the files written, the wall time of the cells run now (s),
    and how many of those found their evaluation in the result store (`stored`)."""

    rows: list[GridRow]
    resumed: int
    cells: int
    paths: list[Path]
    seconds: float
    stored: int = 0


@dataclass(frozen=True)
class AblationResult:
    """`hwsim ablation`: one image of `spec` on `full` (`hwsim.hw.ablation`: each effect SpikeSim
    leaves out added in turn, from `base`), at `spike_rate` over `timesteps` steps."""

    spec: NetSpec | ImportedSpec
    base: Architecture
    full: Architecture
    timesteps: int
    spike_rate: float
    ablation: Ablation


@dataclass(frozen=True)
class ProfileResult:
    """`hwsim.profile`: a network profiled on a chip, per image (mean over `images` images of
    `timesteps` steps).

    `energy` (`RunEnergy`: pJ per image by timestep, layer and component, the analytic energy
    model of `arch`), `timing` (the analytic timing model, cycles of `arch.clock_mhz`), `area`
    (um^2 by tile and component), `spike_rates[population]` the mean firing probability of its
    neurons per step, `accuracy[head]` (None: no labels) each head's accuracy from its spike
    counts over all T steps; `seconds` the wall time of the profile (s).
    """

    model: str
    arch: Architecture
    spec: NetSpec | ImportedSpec
    images: int
    timesteps: int
    energy: RunEnergy
    timing: TimingResult
    area: AreaBreakdown
    spike_rates: dict[str, float]
    accuracy: dict[int, float] | None
    seconds: float

    @property
    def energy_pj(self) -> float:
        """Energy of one inference (T steps), pJ per image: layers, static and off-chip."""
        return self.energy.total_pj

    def energy_per_layer_pj(self) -> dict[str, float]:
        """Energy of one inference by layer, pJ per image (without static and off-chip)."""
        sums = self.energy.energy_pj.sum(axis=(0, 2))
        return {g.name: float(v) for g, v in zip(self.energy.layers, sums, strict=True)}

    def energy_per_component_pj(self) -> dict[str, float]:
        """Energy of one inference by component, pJ per image (`RunEnergy.per_component_pj`)."""
        return self.energy.per_component_pj()

    @property
    def latency_cycles(self) -> int:
        """Cycles until the last timestep's every head is ready (and off chip)."""
        return self.timing.total_cycles

    @property
    def latency_ns(self) -> float:
        """`latency_cycles` in ns."""
        return self.timing.total_ns

    @property
    def area_mm2(self) -> float:
        return self.area.total_mm2

    def to_frame(self) -> pd.DataFrame:
        """One row per layer on the chip: layer, kind, head (nullable: backbone), population
        (the IF neurons it drives), spike_rate (theirs, per neuron and step), pe_operations
        (per image, T steps), `<component>_pj` and energy_pj (per image, T steps), stage_cycles
        (per image, T steps) and stage_ns."""
        e = self.energy
        layers = e.layers
        frame = pd.DataFrame(
            {
                "layer": [g.name for g in layers],
                "kind": [str(g.kind) for g in layers],
                "head": pd.array([g.head for g in layers], dtype="Int64"),
                "population": [g.population for g in layers],
                "spike_rate": [self.spike_rates.get(g.population, np.nan) for g in layers],
                "pe_operations": e.pe_operations.sum(axis=0),
            }
        )
        per = e.energy_pj.sum(axis=0)  # (L, C)
        for c, name in enumerate(e.components):
            frame[f"{name}_pj"] = per[:, c]
        frame["energy_pj"] = per.sum(axis=1)
        stage = [self.timing.busy_stage_cycles[self.timing.index(g.name)] for g in layers]
        frame["stage_cycles"] = np.asarray(stage, np.float64)
        frame["stage_ns"] = cycles_to_ns(frame["stage_cycles"].to_numpy(), self.timing.clock_mhz)
        return frame
