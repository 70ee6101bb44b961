"""Fit an architecture's cost-table entries to measurements: the core of `hwsim calibrate`.

Every quantity hwsim reports from the cost tables is linear in them: an energy is events x
energy per event summed over components (`hwsim.hw.energy.charge_pj`), an area instances x
area per instance (`hwsim.hw.area`). So a measurement i is predicted as

    y_i(theta) = sum_k A_ik theta_k + b_i

with theta the entries the user marks free (`FreeEntry`: a key of `energy_pj` or `area_um2`,
with bounds), A_ik = what entry k contributes per unit to measurement i and b_i what the
fixed entries contribute, both computed through hwsim's own functions on the measurement's
workload (`design_matrix`: the quantity evaluated with each free entry set to 1 and the others
to 0; linearity is checked against the base file's values). The fit minimises

    sum_i ((y_i(theta) - m_i) / sigma_i)^2,   lower_k <= theta_k <= upper_k

(`scipy.optimize.least_squares`, trust-region reflective; sigma_i the measurement's
uncertainty, by default |m_i|: relative residuals). Before fitting, the free entries must be
identifiable: the weighted columns of A must have full rank. Otherwise the fit is refused
(`UnidentifiableError`) naming the entries no measurement depends on, or that enter only in a
fixed combination with others (the null space of A: e.g. `energy_pj.adc` and `energy_pj.mux`
when every measurement counts one mux switch per conversion). After fitting: residuals, the
standard error of each entry (from (J^T J)^-1 scaled by the residual variance, when there are
more measurements than entries and the entry is not at a bound), and the leave-one-out error
of each measurement (refit without it, predict it; None where the rest cannot identify the
entries). `calibrate` writes the base YAML with the fitted values in place and a comment on each
saying where it came from, plus a header recording the measurements file and the fit.

Measurement file (CSV, header row; lines starting with `#` are comments, and a comment line
`# free: KEY[=LO:HI], ...` names the free entries when the caller gives none):

    id, quantity, workload, layer, component, value, sigma

* `quantity`: `pe_energy_pj` (one PE operation, pJ), `energy_pj` (one timestep of the workload
  with every PE operation charged, SpikeSim's accounting, pJ), `area_um2` (the mapped chip).
* `workload`: `pe:KHxKW` (one PE operation reading KH x KW crossbars; `pe_energy_pj` only),
  `vmm:ROWSxOUTPUTS` (one matrix-vector layer: a 1x1 conv on a 1x1 map), `conv:CINxCOUTxKxHW`
  (a K x K stride-1 'same' conv on an HW x HW map), or a model-zoo network `NAME[@WIDTH]`
  (`hwsim.model.netspec.NETS`, 3 x 32 x 32 inputs, 10 classes, no IC heads).
* `layer` (optional, `energy_pj`): one layer of the workload; `component` (optional): one
  energy component (`hwsim.hw.energy.COMPONENTS`) or area component (`TILE_COMPONENTS`,
  `CHIP_COMPONENTS`); empty: the total.
* `sigma` (optional): the measurement's uncertainty in its unit; empty: |value|.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import math
import os
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from hwsim.errors import ConfigError, OutputError
from hwsim.hw.arch import Architecture, AreaTable, EnergyTable, load_arch, parse_arch
from hwsim.hw.area import chip_area
from hwsim.hw.energy import pe_energy_components_pj, spikesim_energy
from hwsim.hw.mapping import map_network
from hwsim.model.graph import Layer, LayerGraph, LayerKind, Role
from hwsim.model.netspec import NETS, NetSpec

COST_TABLES: dict[str, type] = {"energy_pj": EnergyTable, "area_um2": AreaTable}
"""The cost tables whose entries can be fitted, by section name."""

LINEARITY_RTOL = 1e-9
"""Relative tolerance of the check that a quantity is linear in the free entries."""


class Quantity(StrEnum):
    """What a measurement measures."""

    PE_ENERGY = "pe_energy_pj"  # one PE operation, pJ
    ENERGY = "energy_pj"  # one timestep, every PE operation charged (SpikeSim), pJ
    AREA = "area_um2"  # the mapped chip, um^2


class UnidentifiableError(ConfigError):
    """The measurements cannot determine the free entries; `entries` names the ones that are
    not identified."""

    def __init__(self, message: str, entries: Sequence[str]) -> None:
        self.entries = tuple(entries)
        super().__init__(message)


@dataclass(frozen=True)
class FreeEntry:
    """A cost-table entry to fit (`section.name`, e.g. `energy_pj.adc`) within [lower, upper]."""

    key: str
    lower: float = 0.0
    upper: float = math.inf

    @classmethod
    def parse(cls, text: str) -> FreeEntry:
        """`KEY` or `KEY=LO:HI` (either bound may be empty: `energy_pj.adc=0.5:`)."""
        key, _, bounds = text.strip().partition("=")
        lower, upper = 0.0, math.inf
        if bounds:
            lo, sep, hi = bounds.partition(":")
            if not sep:
                raise ConfigError(f"free entry {text!r}: expected KEY or KEY=LO:HI")
            try:
                lower = float(lo) if lo.strip() else lower
                upper = float(hi) if hi.strip() else upper
            except ValueError:
                raise ConfigError(f"free entry {text!r}: bounds must be numbers (LO:HI)") from None
        return cls(key.strip(), lower, upper)

    @property
    def section(self) -> str:
        return self.key.partition(".")[0]

    @property
    def name(self) -> str:
        return self.key.partition(".")[2]


@dataclass(frozen=True)
class Measurement:
    """One measured number (a row of the measurement file)."""

    id: str
    quantity: Quantity
    workload: str
    value: float
    sigma: float | None = None  # its uncertainty, in its unit; None: |value| (relative)
    layer: str | None = None
    component: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "quantity", Quantity(self.quantity))
        except ValueError:
            raise ConfigError(
                f"measurement {self.id!r}: quantity {self.quantity!r}; expected one of"
                f" {', '.join(q.value for q in Quantity)}"
            ) from None
        if not math.isfinite(self.value):
            raise ConfigError(f"measurement {self.id!r}: value {self.value!r} is not finite")
        if self.sigma is None and self.value == 0:
            raise ConfigError(
                f"measurement {self.id!r}: a zero value needs a sigma (its residual is relative)"
            )
        if self.sigma is not None and not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ConfigError(f"measurement {self.id!r}: sigma {self.sigma!r}; expected > 0")

    @property
    def weight(self) -> float:
        """1 / sigma: the residual's scale."""
        return 1.0 / (self.sigma if self.sigma is not None else abs(self.value))


@dataclass(frozen=True)
class FittedEntry:
    """A free entry after the fit."""

    key: str
    base: float  # in the base file
    value: float  # fitted
    lower: float
    upper: float
    stderr: float | None  # None: no more measurements than entries, or at a bound

    @property
    def at_bound(self) -> bool:
        return self.value <= self.lower or self.value >= self.upper


@dataclass(frozen=True)
class Residual:
    """A measurement against hwsim, before (base file) and after the fit."""

    id: str
    measured: float
    before: float
    after: float
    loo: float | None  # hwsim's value fitted without this measurement; None: not identifiable

    @property
    def relative(self) -> float:
        """after / measured - 1 (nan for a measured 0)."""
        return self.after / self.measured - 1.0 if self.measured else math.nan

    @property
    def loo_relative(self) -> float | None:
        """loo / measured - 1 (None without a leave-one-out value, nan for a measured 0)."""
        if self.loo is None:
            return None
        return self.loo / self.measured - 1.0 if self.measured else math.nan


@dataclass(frozen=True)
class CalibrationResult:
    """A fit: the fitted entries, the residuals, the calibrated architecture and where it was
    written (None from `fit`)."""

    entries: tuple[FittedEntry, ...]
    residuals: tuple[Residual, ...]
    arch: Architecture
    out_path: Path | None = None

    @property
    def rms_relative(self) -> float:
        """Root mean square of the relative residuals after the fit."""
        return float(np.sqrt(np.mean([r.relative**2 for r in self.residuals])))

    @property
    def loo_rms_relative(self) -> float | None:
        """Root mean square of the leave-one-out relative errors (None if none is defined)."""
        errors = [r.loo_relative for r in self.residuals if r.loo_relative is not None]
        return float(np.sqrt(np.mean(np.square(errors)))) if errors else None

    def entries_frame(self) -> pd.DataFrame:
        """One row per fitted entry: key, base, value, stderr, lower, upper, at_bound."""
        return pd.DataFrame(
            {
                "key": [e.key for e in self.entries],
                "base": [e.base for e in self.entries],
                "value": [e.value for e in self.entries],
                "stderr": [e.stderr for e in self.entries],
                "lower": [e.lower for e in self.entries],
                "upper": [e.upper for e in self.entries],
                "at_bound": [e.at_bound for e in self.entries],
            }
        )

    def residuals_frame(self) -> pd.DataFrame:
        """One row per measurement: id, measured, before, after, relative, loo, loo_relative."""
        return pd.DataFrame(
            {
                "id": [r.id for r in self.residuals],
                "measured": [r.measured for r in self.residuals],
                "before": [r.before for r in self.residuals],
                "after": [r.after for r in self.residuals],
                "relative": [r.relative for r in self.residuals],
                "loo": [r.loo for r in self.residuals],
                "loo_relative": [r.loo_relative for r in self.residuals],
            }
        )


# ------------------------------------------------------------------------- the quantities


def workload_graph(text: str) -> LayerGraph:
    """The layer graph of a measurement's workload (module docstring; `pe:` has none)."""
    kind, _, spec = text.strip().partition(":")
    if kind == "vmm":
        rows, outputs = _dims(text, spec, 2)
        return _single(rows, outputs, 1, 1)
    if kind == "conv":
        c_in, c_out, k, hw = _dims(text, spec, 4)
        return _single(c_in, c_out, k, hw)
    name, _, width = text.strip().partition("@")
    if name not in NETS:
        raise ConfigError(
            f"workload {text!r}: expected pe:KHxKW, vmm:ROWSxOUTPUTS, conv:CINxCOUTxKxHW or a"
            f" network NAME[@WIDTH] of {', '.join(NETS)}"
        )
    try:
        scale = float(width) if width else 1.0
    except ValueError:
        raise ConfigError(f"workload {text!r}: the width after '@' must be a number") from None
    return NetSpec(name, scale, (3, 32, 32), 10).graph()


def _dims(text: str, spec: str, count: int) -> list[int]:
    parts = spec.split("x")
    if len(parts) != count or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"workload {text!r}: expected {count} positive integers joined by 'x'")
    return [int(p) for p in parts]


def _single(c_in: int, c_out: int, k: int, hw: int) -> LayerGraph:
    layer = Layer(
        "layer", LayerKind.CONV, Role.BACKBONE, (c_in, hw, hw), (c_out, hw, hw), (k, k), 1,
        k // 2, (), "layer",
    )  # fmt: skip
    return LayerGraph((layer,), (c_in, hw, hw), c_out)


def _kernel(m: Measurement) -> tuple[int, int]:
    kind, _, spec = m.workload.strip().partition(":")
    if kind != "pe":
        raise ConfigError(f"measurement {m.id!r}: pe_energy_pj needs a workload pe:KHxKW")
    kh, kw = _dims(m.workload, spec, 2)
    return kh, kw


def _pick(m: Measurement, parts: dict[str, float], what: str) -> float:
    if m.component is None:
        return float(sum(parts.values()))
    if m.component not in parts:
        raise ConfigError(
            f"measurement {m.id!r}: unknown {what} component {m.component!r}; expected one of"
            f" {', '.join(parts)}"
        )
    return float(parts[m.component])


def evaluator(m: Measurement) -> Callable[[Architecture], float]:
    """hwsim's value of measurement `m` on an architecture (its workload built once)."""
    if m.quantity is Quantity.PE_ENERGY:
        kernel = _kernel(m)
        if m.layer is not None:
            raise ConfigError(f"measurement {m.id!r}: pe_energy_pj has no layer")
        return lambda arch: _pick(m, pe_energy_components_pj(arch, kernel), "energy")
    graph = workload_graph(m.workload)
    if m.layer is not None and m.layer not in graph.names:
        raise ConfigError(
            f"measurement {m.id!r}: workload {m.workload!r} has no layer {m.layer!r}; its layers:"
            f" {', '.join(graph.names)}"
        )
    if m.quantity is Quantity.ENERGY:

        def energy(arch: Architecture) -> float:
            e = spikesim_energy(map_network(arch, graph))
            if m.layer is not None:
                e = e.select(lambda g: g.name == m.layer)
            return _pick(m, e.per_component_pj(), "energy")

        return energy
    if m.layer is not None:
        raise ConfigError(f"measurement {m.id!r}: area_um2 is the chip's; it has no layer")

    def area(arch: Architecture) -> float:
        if arch.area_um2 is None:
            raise ConfigError(
                f"measurement {m.id!r}: {arch.name} has no area_um2 section to measure area with"
            )
        return _pick(m, chip_area(map_network(arch, graph)).per_component_um2(), "area")

    return area


# ------------------------------------------------------------------------------ the model


def cost_entries(arch: Architecture) -> dict[str, float | None]:
    """Every cost-table entry `section.name` of `arch` with its value (None: null in the file
    or no such section)."""
    out: dict[str, float | None] = {}
    for section, table in COST_TABLES.items():
        values = getattr(arch, section)
        for f in dataclasses.fields(table):
            out[f"{section}.{f.name}"] = None if values is None else getattr(values, f.name)
    return out


def check_free(arch: Architecture, free: Sequence[FreeEntry]) -> None:
    """Refuse free entries that are not cost-table entries with a value, or bad bounds."""
    entries = cost_entries(arch)
    if not free:
        raise ConfigError("no free entries: name the cost-table entries to fit (KEY[=LO:HI])")
    keys = [e.key for e in free]
    for e in free:
        if keys.count(e.key) > 1:
            raise ConfigError(f"free entry {e.key!r} is given twice")
        if e.key not in entries:
            close = difflib.get_close_matches(e.key, list(entries), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            tables = ", ".join(COST_TABLES)
            raise ConfigError(f"free entry {e.key!r}: not a cost-table entry ({tables} keys){hint}")
        if entries[e.key] is None:
            raise ConfigError(
                f"free entry {e.key!r}: null in {arch.name} (its section is missing or the key is"
                " null); give it a value in the base file first"
            )
        if not (e.lower < e.upper and e.lower >= 0 and not math.isnan(e.upper)):
            raise ConfigError(
                f"free entry {e.key!r}: bounds [{e.lower:g}, {e.upper:g}] must satisfy"
                " 0 <= lower < upper"
            )


def with_entries(arch: Architecture, values: dict[str, float]) -> Architecture:
    """`arch` with some cost-table entries replaced (validated as a file would be)."""
    raw = arch.to_mapping()
    for key, value in values.items():
        section, _, name = key.partition(".")
        raw[section][name] = float(value)
    return parse_arch(raw, f"{arch.name} (calibration)")


def design_matrix(
    arch: Architecture, measurements: Sequence[Measurement], free: Sequence[FreeEntry]
) -> tuple[np.ndarray, np.ndarray]:
    """(A, b): measurement i = A[i] @ theta + b[i] for the free entries theta (module
    docstring), computed through hwsim: column k from the file with entry k at 1 and every other
    cost entry at 0 (so no column is the difference of two large numbers), b from the file with
    the free entries at 0. Checked against the base file's own values (linearity)."""
    check_free(arch, free)
    evaluate = [evaluator(m) for m in measurements]
    nothing = {key: 0.0 for key, value in cost_entries(arch).items() if value is not None}
    floor = np.array([f(with_entries(arch, nothing)) for f in evaluate])
    a = np.empty((len(measurements), len(free)))
    for k, entry in enumerate(free):
        unit = with_entries(arch, {**nothing, entry.key: 1.0})
        a[:, k] = [f(unit) for f in evaluate] - floor
    fixed = with_entries(arch, {e.key: 0.0 for e in free})
    b = np.array([f(fixed) for f in evaluate])
    base = np.array([cost_entries(arch)[e.key] for e in free], dtype=np.float64)
    direct = np.array([f(arch) for f in evaluate])
    scale = LINEARITY_RTOL * float(np.max(np.abs(direct), initial=0.0))
    if not np.allclose(a @ base + b, direct, rtol=LINEARITY_RTOL, atol=scale):
        raise ValueError("calibration: a measured quantity is not linear in the cost entries")
    return a, b


def unidentified(a_weighted: np.ndarray, keys: Sequence[str]) -> list[str]:
    """The free entries the weighted design matrix does not determine: columns of zeros, and the
    entries that take part in a direction of its null space (columns scaled to unit norm, so
    that entries of different magnitudes are treated alike)."""
    norms = np.linalg.norm(a_weighted, axis=0)
    zero = norms == 0
    scaled = a_weighted[:, ~zero] / norms[~zero]
    out = set(np.asarray(keys)[zero])
    if scaled.shape[1]:
        _, s, vt = np.linalg.svd(scaled, full_matrices=True)
        tol = max(scaled.shape) * np.finfo(float).eps * (s[0] if s.size else 0.0) * 1e3
        rank = int(np.sum(s > tol))
        null = vt[rank:]
        involved = np.any(np.abs(null) > 1e-8, axis=0) if null.size else np.zeros(0, bool)
        out |= set(np.asarray(keys)[~zero][involved])
    return [k for k in keys if k in out]


def _refuse(a_weighted: np.ndarray, free: Sequence[FreeEntry], what: str) -> None:
    keys = [e.key for e in free]
    missing = unidentified(a_weighted, keys)
    if not missing:
        return
    norms = np.linalg.norm(a_weighted, axis=0)
    idle = [k for k, n in zip(keys, norms, strict=True) if n == 0]
    tied = [k for k in missing if k not in idle]
    parts = []
    if idle:
        parts.append(f"no measurement depends on {', '.join(idle)}")
    if tied:
        parts.append(
            f"{', '.join(tied)} enter the measurements only in fixed combinations (add"
            " measurements that separate them, or fix some of them)"
        )
    raise UnidentifiableError(
        f"{what}: {len(a_weighted)} measurements cannot identify {len(keys)} free entries;"
        f" {'; '.join(parts)}",
        missing,
    )


def _solve(
    a_w: np.ndarray, r_w: np.ndarray, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """argmin ||a_w x - r_w|| within bounds (scipy least_squares, trust-region reflective)."""
    start = np.clip(x0, lower, upper)
    result = least_squares(
        lambda x: a_w @ x - r_w,
        start,
        jac=lambda x: a_w,
        bounds=(lower, upper),
        method="trf",
        x_scale="jac",
        ftol=1e-14,
        xtol=1e-14,
        gtol=1e-14,
    )
    x = result.x
    near = 1e-9 * np.maximum(1.0, np.abs(x))  # the solver stays strictly inside its bounds
    x = np.where(np.abs(x - lower) <= near, lower, x)
    return np.where(np.isfinite(upper) & (np.abs(x - upper) <= near), upper, x)


def fit(
    arch: Architecture, measurements: Sequence[Measurement], free: Sequence[FreeEntry]
) -> CalibrationResult:
    """Fit the free entries of `arch` to `measurements` (module docstring); no file written.

    Raises `UnidentifiableError` (a `ConfigError`) when the measurements cannot identify every
    free entry, naming those they do not.
    """
    if not measurements:
        raise ConfigError("no measurements to calibrate with")
    ids = [m.id for m in measurements]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"measurement ids must be unique; repeated: {_repeated(ids)}")
    a, b = design_matrix(arch, measurements, free)
    y = np.array([m.value for m in measurements])
    w = np.array([m.weight for m in measurements])
    a_w, r_w = a * w[:, None], (y - b) * w
    _refuse(a_w, free, arch.name)
    base = np.array([cost_entries(arch)[e.key] for e in free], dtype=np.float64)
    lower = np.array([e.lower for e in free])
    upper = np.array([e.upper for e in free])
    theta = _solve(a_w, r_w, base, lower, upper)
    after = a @ theta + b
    stderr = _stderr(a_w, r_w, theta, lower, upper)
    loo: list[float | None] = []
    for i in range(len(measurements)):
        keep = np.arange(len(measurements)) != i
        if unidentified(a_w[keep], [e.key for e in free]):
            loo.append(None)
            continue
        held = _solve(a_w[keep], r_w[keep], theta, lower, upper)
        loo.append(float(a[i] @ held + b[i]))
    before = a @ base + b
    fitted = with_entries(arch, {e.key: float(v) for e, v in zip(free, theta, strict=True)})
    return CalibrationResult(
        entries=tuple(
            FittedEntry(e.key, float(b0), float(v), e.lower, e.upper, s)
            for e, b0, v, s in zip(free, base, theta, stderr, strict=True)
        ),
        residuals=tuple(
            Residual(m.id, m.value, float(b0), float(a0), l0)
            for m, b0, a0, l0 in zip(measurements, before, after, loo, strict=True)
        ),
        arch=fitted,
    )


def _stderr(
    a_w: np.ndarray, r_w: np.ndarray, theta: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> list[float | None]:
    """Standard errors sqrt(diag(s^2 (J^T J)^-1)), s^2 = RSS / (m - p), for the entries not at a
    bound; None where undefined (m <= p, or the entry at a bound)."""
    m, p = a_w.shape
    free = (theta > lower) & (theta < upper)
    out: list[float | None] = [None] * p
    if m <= p or not free.any():
        return out
    rss = float(np.sum((a_w @ theta - r_w) ** 2))
    j = a_w[:, free]
    cov = rss / (m - p) * np.linalg.inv(j.T @ j)
    for slot, k in enumerate(np.flatnonzero(free)):
        out[k] = float(np.sqrt(max(cov[slot, slot], 0.0)))
    return out


def _repeated(items: Sequence[str]) -> str:
    return ", ".join(sorted({x for x in items if items.count(x) > 1}))


# ------------------------------------------------------------------------------ the files

FREE_DIRECTIVE = re.compile(r"^\s*#\s*free\s*:\s*(.*)$", re.IGNORECASE)
COLUMNS = ("id", "quantity", "workload", "layer", "component", "value", "sigma")
REQUIRED = ("quantity", "workload", "value")


def read_measurements(path: str | os.PathLike[str]) -> tuple[list[Measurement], list[FreeEntry]]:
    """The measurements of a CSV file (module docstring) and the free entries its `# free:`
    comment lines name (empty if none)."""
    source = os.fspath(path)
    with open(source, encoding="utf-8", newline="") as handle:
        lines = handle.read().splitlines()
    free: list[FreeEntry] = []
    body = []
    for line in lines:
        directive = FREE_DIRECTIVE.match(line)
        if directive:
            free += [FreeEntry.parse(t) for t in directive.group(1).split(",") if t.strip()]
        elif line.strip() and not line.lstrip().startswith("#"):
            body.append(line)
    reader = csv.DictReader(body)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        raise ConfigError(
            f"{source}: columns {header}: missing {missing or 'none'}, unknown {unknown or 'none'};"
            f" expected {', '.join(COLUMNS)} (required: {', '.join(REQUIRED)})"
        )
    out = []
    for n, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"{source}: row {n}"
        value = _number(row["value"], f"{where}: value")
        sigma = _number(row["sigma"], f"{where}: sigma") if row.get("sigma") else None
        try:
            measurement = Measurement(
                id=row.get("id") or f"row{n}",
                quantity=row["quantity"],  # a str, checked by Measurement
                workload=row["workload"],
                value=value,
                sigma=sigma,
                layer=row.get("layer") or None,
                component=row.get("component") or None,
            )
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        out.append(measurement)
    if not out:
        raise ConfigError(f"{source}: no measurements")
    return out, free


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {text!r}; expected a finite number")
    return value


_SECTION = re.compile(r"^([A-Za-z_]\w*)\s*:(.*)$")
_KEY = re.compile(r"^(\s+)([A-Za-z_]\w*)(\s*:\s*)([^#\s][^#]*?|)(\s*)(#.*)?$")


def calibrated_yaml(base_text: str, result: CalibrationResult, header: Sequence[str]) -> str:
    """`base_text` (an architecture file) with the fitted entries' values replaced in place,
    each with a comment giving its base value and standard error, and `header` comment lines
    on top. Keys the base file left at their defaults are added to their section. Block-style
    sections only (a flow-style `{...}` section holding a fitted entry is refused)."""
    values = {e.key: e for e in result.entries}
    lines = base_text.splitlines()
    done: set[str] = set()
    out: list[str] = []
    section: str | None = None
    last_key: dict[str, int] = {}
    indent: dict[str, str] = {}
    for line in lines:
        top = _SECTION.match(line)
        if top:
            section = top.group(1)
            rest = top.group(2).split("#")[0].strip()
            if rest.startswith("{") and any(k.startswith(f"{section}.") for k in values):
                raise ConfigError(
                    f"section {section!r} is written in flow style; write it as a block"
                    " (one key per line) to calibrate its entries"
                )
            last_key[section] = len(out)
            out.append(line)
            continue
        key = _KEY.match(line) if section else None
        if key and section is not None:
            full = f"{section}.{key.group(2)}"
            indent.setdefault(section, key.group(1))
            last_key[section] = len(out)
            if full in values:
                out.append(_entry_line(key.group(1), key.group(2), values[full], key.group(6)))
                done.add(full)
                continue
        out.append(line)
    for full, entry in values.items():
        if full in done:
            continue
        section_name, _, name = full.partition(".")
        if section_name not in last_key:
            raise ConfigError(f"free entry {full!r}: the base file has no {section_name} section")
        at = last_key[section_name] + 1
        out.insert(at, _entry_line(indent.get(section_name, "  "), name, entry, None))
        for s, i in last_key.items():
            if i >= at:
                last_key[s] = i + 1
    top = [wrapped for h in header for wrapped in (textwrap.wrap(h, 96) or [""])]
    text = "\n".join([*(f"# {h}" if h else "#" for h in top), *out])
    return text + "\n"


def _entry_line(indent: str, name: str, entry: FittedEntry, old: str | None) -> str:
    err = f" +/- {entry.stderr:.4g}" if entry.stderr is not None else ""
    bound = " (at a bound)" if entry.at_bound else ""
    note = f"# calibrated{err}{bound}; base value {entry.base!r}"
    if old:
        note += f"; was: {old.lstrip('#').strip()}"
    return f"{indent}{name}: {written(entry.value)!r}  {note}"


def written(value: float) -> float:
    """A fitted value as the calibrated file holds it: 12 significant digits (the fit's own
    rounding noise, ~1e-15 relative, is not written)."""
    return float(f"{value:.12g}")


def calibrate(
    arch_path: str | os.PathLike[str],
    measurements_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    free: Sequence[FreeEntry] | None = None,
) -> CalibrationResult:
    """Fit the free cost-table entries of the architecture file `arch_path` to the measurements
    in `measurements_path` and write the calibrated file to `out_path` (the base file's text
    with the fitted values in place, each commented with where it came from). `free` defaults to
    the measurement file's `# free:` lines.

    Raises `ConfigError` for bad files, free entries or unidentifiable fits
    (`UnidentifiableError`, naming the entries), `OutputError` if `out_path` is an input.
    """
    arch_path, measurements_path, out_path = map(Path, (arch_path, measurements_path, out_path))
    for given, name in ((arch_path, "arch"), (measurements_path, "measurements")):
        if out_path.resolve() == given.resolve():
            raise OutputError(f"out_path {out_path} is the {name} file; write elsewhere")
    arch = load_arch(arch_path)
    measurements, listed = read_measurements(measurements_path)
    chosen = list(free) if free else listed
    result = fit(arch, measurements, chosen)
    digest = hashlib.sha256(measurements_path.read_bytes()).hexdigest()[:16]
    loo = result.loo_rms_relative
    bounds = ", ".join(f"{e.key} [{e.lower:g}, {e.upper:g}]" for e in result.entries)
    loo_text = f"{100 * loo:.3g}%" if loo is not None else "not defined (no spare measurement)"
    header = [
        f"Calibrated by hwsim calibrate from {arch_path.name} and the {len(measurements)}"
        f" measurements in {measurements_path.name} (sha256 {digest}...); free entries"
        f" (bounds): {bounds}. Relative residual RMS {100 * result.rms_relative:.3g}%,"
        f" leave-one-out RMS {loo_text}. Fitted lines say 'calibrated' (the fit's standard"
        " error, the base value and the base comment); everything else is the base file's.",
        "",
    ]
    text = calibrated_yaml(arch_path.read_text(encoding="utf-8"), result, header)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text, encoding="utf-8")
    arch_out = load_arch(out_path)
    for e in result.entries:
        if cost_entries(arch_out)[e.key] != written(e.value):
            raise ValueError(f"calibrate: {out_path} does not hold the fitted {e.key}")  # a bug
    return dataclasses.replace(result, arch=arch_out, out_path=out_path)
