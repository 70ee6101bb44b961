"""How results are named in titles and table cells: networks, the reference accuracy, energies
and times with their units."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hwsim.methods import REFERENCE
from hwsim.model.netspec import NetSpec
from hwsim.model.nir_io import ImportedSpec
from hwsim.results import ICEvaluation, Reference, TraceResult

if TYPE_CHECKING:
    from hwsim.pipeline.cycles import CycleEvaluation

REFERENCE_NAMES = {Reference.ANN: "ANN", Reference.SNN_FINAL: "SNN at T"}
"""What the target accuracy is a fraction of, in titles (docs/nir.md)."""


KNOB_LABELS = {
    "adc_bits": "ADC resolution (bits)",
    "cells_per_weight": "cells per weight",
    "variation_sigma": "conductance variation (std of ln G)",
}
"""The co-design knobs (`hwsim.pipeline.hardware.Knob`) with their units, in tables and
figures."""


def knob_label(knob: object) -> str:
    return KNOB_LABELS.get(str(knob), str(knob).replace("_", " "))


def network_label(spec: NetSpec | ImportedSpec) -> str:
    """A network in titles: the zoo's name and width ("vgg19 w=0.125"), or an imported
    network's file name ("net.nir")."""
    if isinstance(spec, NetSpec):
        return f"{spec.name} w={spec.width:g}"
    return f"{spec.name}.nir"


ENERGY_UNITS: dict[str, float] = {"pJ": 1.0, "nJ": 1e3, "uJ": 1e6, "mJ": 1e9}
"""Energy units, ascending: pJ per unit."""
TIME_UNITS: dict[str, float] = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
"""Time units, ascending: ns per unit."""


def unit_for(values: object, units: dict[str, float]) -> tuple[str, float]:
    """(unit, its size) of `units` (ascending sizes) that shows the largest magnitude of
    `values` as at least 1 (the smallest unit for zeros, NaNs or nothing)."""
    flat = np.abs(np.asarray(values, np.float64)).ravel()
    flat = flat[np.isfinite(flat)]
    top = float(flat.max()) if flat.size else 0.0
    fitting = [(u, f) for u, f in units.items() if top >= f]
    return fitting[-1] if fitting else next(iter(units.items()))


def fmt_energy(pj: float | None) -> str:
    """An energy in pJ with the unit that keeps it readable ("not reached" for None)."""
    if pj is None:
        return "not reached"
    unit, size = unit_for(pj, ENERGY_UNITS)
    return f"{pj / size:.3f} {unit}"


def fmt_time(ns: float | None) -> str:
    """A time in ns with the unit that keeps it readable ("-" for None)."""
    if ns is None:
        return "-"
    unit, size = unit_for(ns, TIME_UNITS)
    return f"{ns / size:.2f} {unit}" if unit != "ns" else f"{ns:.0f} ns"


def energy_scale(ev: ICEvaluation) -> tuple[float, str]:
    """(pJ per unit, unit) for the energies of an evaluation: the reference's energy at T."""
    unit, size = unit_for(ev.curves[REFERENCE].energy_pj[-1], ENERGY_UNITS)
    return size, unit


def time_scale(ev: ICEvaluation, cycles: CycleEvaluation | None = None) -> tuple[float, str]:
    """(ns per unit, unit) for every latency of a run, in one unit: the one of the longest
    latency the run reports (the analytic reference's at T, the chip's mean or p99)."""
    longest = [float(ev.latency_ns[REFERENCE][-1])]
    if cycles is not None:
        longest += [m.latency_p99_ns for m in cycles.methods]
    unit, size = unit_for(longest, TIME_UNITS)
    return size, unit


def trace_location(result: TraceResult) -> str:
    """Where a trace is, in words: the folder it was written to, else the cache's."""
    if result.written is not None:
        return str(result.written)
    return "not stored (--no-cache)" if result.stored is None else str(result.stored)
