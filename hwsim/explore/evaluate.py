"""One design point evaluated as `hwsim sweep` evaluates one IC, its result kept in the result
store by its content.

A point is an architecture variant and an IC position. Its numbers come from the pipeline's
one definition of each (`pipeline.evaluate`: tuning and test traces, every method's accuracy,
energy and latency curves on the chip; `pipeline.evaluate.cycle_evaluation` for the cycle-level
latency; `hw.area.chip_area`): per method at the target (the first timestep whose accuracy
reaches target_fraction x the ANN's; the last timestep when none does) its timestep, energy
per inference (pJ), latency (ns) and accuracy, the chip's area (mm^2) and the energy per
component of the whole chip to the headline method's timestep.

Accuracy is the ideal engine's (one pair of traces for every point: no architecture key changes
a spike of it) unless the exploration varies a key that changes the functional mode's spikes
(`FunctionalRun.key`: crossbar, ADC, device, mapping), or asks for the functional mode; then
each point's traces are simulated on its chip (and cached by that key, so points that differ
only in energy, timing or NoC keys share them).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from hwsim import __version__
from hwsim.engine.trace import file_sha256
from hwsim.errors import InputError
from hwsim.explore.space import LABEL_KEYS
from hwsim.hw.arch import ArchConfigError, Architecture, parse_arch
from hwsim.hw.area import chip_area
from hwsim.hw.mapping import MappingError, map_network
from hwsim.methods import HEADLINE, METHODS, Method
from hwsim.model.conversion import ConversionParams
from hwsim.model.graph import FC_HEAD
from hwsim.model.nir_io import NirOptions
from hwsim.pipeline.config import SweepConfig
from hwsim.pipeline.cycles import OperatingPoint, TimingModel
from hwsim.pipeline.evaluate import cycle_evaluation, evaluate, tune_and_test, tune_target
from hwsim.pipeline.grid import settings_digest
from hwsim.pipeline.hardware import FunctionalRun, Hardware
from hwsim.pipeline.session import Session
from hwsim.pipeline.store import content_key


class Status(StrEnum):
    """What became of a point."""

    OK = "ok"
    INVALID = "invalid"  # the architecture is refused (out of range) or the network does not fit
    CONSTRAINT = "constraint"  # evaluated, but a constraint is broken


class AccuracyMode(StrEnum):
    """Where a point's accuracy comes from."""

    AUTO = "auto"  # functional when a varied key changes the functional mode's spikes
    IDEAL = "ideal"
    FUNCTIONAL = "functional"


def changes_spikes(archs: list[Architecture]) -> bool:
    """Whether the functional mode's spikes differ among `archs` (their trace keys differ)."""
    return len({repr(FunctionalRun(a).key()) for a in archs}) > 1


@dataclass(frozen=True)
class PointJob:
    """Everything a worker needs to evaluate one point: the sweep settings (`template`, whose
    arch is the base file, `hardware` the accuracy mode), the variant as a mapping, the IC, the
    timing model and the content key the result is stored under."""

    template: SweepConfig
    arch: dict[str, Any]
    source: str
    ic: int
    timing: TimingModel
    key: str


def arch_content(mapping: dict[str, Any]) -> dict[str, Any]:
    """The values of a variant that can change a result: all but its name, source and notes
    (defaults filled in where the variant is valid, so a key left out and one set to its
    default are one point)."""
    try:
        arch = parse_arch(mapping, "variant").to_mapping()
    except ArchConfigError:
        arch = dict(mapping)
    return {k: v for k, v in arch.items() if k not in LABEL_KEYS}


def point_key(template: SweepConfig, arch: dict[str, Any], ic: int, timing: TimingModel) -> str:
    """The store key of a point: the model file's SHA-256, the variant's values, the IC, every
    setting of the sweep (`grid.settings_digest`, the coding included), the timing model and
    hwsim's version."""
    return content_key(
        what="explore-point",
        hwsim=__version__,
        model_sha256=file_sha256(template.model),
        arch=arch_content(arch),
        ic=ic,
        settings=settings_digest(template),
        coding=repr(template.sim.coding),
        timing=str(timing),
    )


@lru_cache(maxsize=4)
def _session(
    model: Path, sha256: str, data_root: str | None, conversion: ConversionParams, nir: NirOptions
) -> Session:
    """One open session per model content and settings for the life of the process."""
    del sha256  # part of the cache key: a changed file is opened afresh
    return Session.open(model, data_root, conversion, nir)


def session_of(cfg: SweepConfig) -> Session:
    """The (cached) session of the sweep settings' model."""
    return _session(cfg.model, file_sha256(cfg.model), cfg.data_root, cfg.sim.conversion, cfg.nir)


def invalid(reason: str) -> dict[str, Any]:
    """The payload of a point that cannot be evaluated."""
    return {"status": str(Status.INVALID), "reason": reason}


def evaluate_point(job: PointJob) -> dict[str, Any]:
    """The stored payload of one point (module docstring), computed (runs in a worker)."""
    try:
        arch = parse_arch(job.arch, job.source)
    except ArchConfigError as e:
        return invalid(f"out of range: {e}")
    cfg = job.template
    session = session_of(cfg)
    graph = session.spec.graph()
    chip = graph.with_heads({job.ic, FC_HEAD})
    try:
        mapping = map_network(arch, chip)
    except MappingError as e:
        return invalid(f"does not fit: {e}")
    cycle = job.timing is TimingModel.CYCLE
    tune, test = tune_and_test(cfg, session, arch, per_image=cycle)
    reference = session.reference_correct(test, cfg.tuning.ties)
    ev = evaluate(cfg, session, arch, tune, test, job.ic, reference)
    latency = {m: ev.latency_ns[m] for m in METHODS}
    cycle_latency: dict[Method, float] = {}
    if cycle:
        cycles = cycle_evaluation(arch, graph, ev, test, tune, tune_target(cfg, session, tune))
        cycle_latency = {
            r.method: r.latency_mean_ns for r in cycles.methods if r.point is OperatingPoint.FIXED
        }
    out: dict[str, Any] = {
        "status": str(Status.OK),
        "reason": "",
        "ann_accuracy_fc": ev.ann_accuracy[FC_HEAD],
        "target_accuracy": ev.target,
        "area_mm2": chip_area(mapping).total_mm2 if arch.area_um2 is not None else math.nan,
    }
    steps = ev.curves[Method.DL].accuracy.shape[0]
    for m in METHODS:
        reached = ev.summary[m].target.timestep
        t = steps if reached is None else int(reached)
        curve = ev.curves[m]
        out[f"timestep_{m.key}"] = t
        out[f"target_reached_{m.key}"] = reached is not None
        out[f"energy_{m.key}_pj"] = float(curve.energy_pj[t - 1])
        out[f"accuracy_{m.key}"] = float(curve.accuracy[t - 1])
        out[f"latency_{m.key}_ns"] = cycle_latency.get(m, float(latency[m][t - 1]))
    t = out[f"timestep_{HEADLINE.key}"]
    energy = ev.energy
    for c, name in enumerate(energy.components):
        out[f"component_{name}_pj"] = float(energy.energy_pj[:t, :, c].sum())
    out["component_fusion_unit_pj"] = float(energy.fusion_pj[:t].sum())
    out["component_static_pj"] = float(energy.static_pj[:t].sum())
    out["component_offchip_pj"] = float(energy.offchip_pj)
    return out


def objective_values(payload: dict[str, Any], method: Method) -> dict[str, float]:
    """The objective columns of a point for `method` (accuracy, energy_pj, latency_ns,
    area_mm2); NaN where the point was not evaluated."""
    if payload.get("status") != str(Status.OK):
        return {"accuracy": math.nan, "energy_pj": math.nan, "latency_ns": math.nan,
                "area_mm2": math.nan}  # fmt: skip
    return {
        "accuracy": payload[f"accuracy_{method.key}"],
        "energy_pj": payload[f"energy_{method.key}_pj"],
        "latency_ns": payload[f"latency_{method.key}_ns"],
        "area_mm2": payload["area_mm2"],
    }


def with_hardware(template: SweepConfig, functional: bool, timing: TimingModel) -> SweepConfig:
    """The sweep settings with the accuracy mode set; cycle timing needs the ideal engine's
    per-image activity (as `RunConfig` refuses it with the functional mode)."""
    if functional and timing is TimingModel.CYCLE:
        raise InputError(
            "{timing} cycle needs per-image crossbar activity, which the functional mode"
            " (chosen by {accuracy}, or by a varied crossbar/adc/device/mapping key) does not"
            " keep; use {timing} analytic or {accuracy} ideal",
            params=("timing", "accuracy"),
        )
    hardware = Hardware.FUNCTIONAL if functional else Hardware.IDEAL
    return dataclasses.replace(template, hardware=hardware)
