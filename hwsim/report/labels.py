"""How results are named in titles and table cells: networks, the reference accuracy, energies
and times with their units."""

from __future__ import annotations

from hwsim.methods import REFERENCE
from hwsim.model.netspec import NetSpec
from hwsim.model.nir_io import ImportedSpec
from hwsim.results import ICEvaluation, Reference, TraceResult

REFERENCE_NAMES = {Reference.ANN: "ANN", Reference.SNN_FINAL: "SNN at T"}
"""What the target accuracy is a fraction of, in titles (docs/nir.md)."""


def network_label(spec: NetSpec | ImportedSpec) -> str:
    """A network in titles: the zoo's name and width ("vgg19 w=0.125"), or an imported
    network's file name ("net.nir")."""
    if isinstance(spec, NetSpec):
        return f"{spec.name} w={spec.width:g}"
    return f"{spec.name}.nir"


def fmt_energy(pj: float | None) -> str:
    """An energy in pJ with the unit that keeps it readable ("not reached" for None)."""
    if pj is None:
        return "not reached"
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.3f} {unit}"
    return f"{pj:.3f} pJ"


def fmt_time(ns: float | None) -> str:
    """A time in ns with the unit that keeps it readable ("-" for None)."""
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.0f} ns"


def energy_scale(ev: ICEvaluation) -> tuple[float, str]:
    """(pJ per unit, unit) for the energies of an evaluation: the reference's energy at T."""
    e = float(ev.curves[REFERENCE].energy_pj[-1])
    return next(((s, u) for u, s in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)) if e >= s), (1, "pJ"))


def trace_location(result: TraceResult) -> str:
    """Where a trace is, in words: the folder it was written to, else the cache's."""
    if result.written is not None:
        return str(result.written)
    return "not stored (--no-cache)" if result.stored is None else str(result.stored)
