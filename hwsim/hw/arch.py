"""Architecture configuration: YAML file -> validated, frozen, typed dataclasses.

Three steps: `yaml` parses the file (duplicate keys refused, YAML 1.2 floats such as ``1e-6``
accepted); `parse_arch` checks every key against the dataclasses below (unknown keys, missing
required keys, types, ranges), fills defaults and runs cross-field checks; the result is a frozen
`Architecture`. Every problem raises `ArchConfigError` naming the file, the key path, the bad value
and what was expected. Full reference: docs/arch-config.md.

Schema (version 1; ``?`` marks an optional key, with its default)::

    version: 1                        # required; supported: SUPPORTED_VERSIONS
    name: str
    source?: str = ""                 # where the numbers come from
    notes?: str = ""
    energy_model?: spikesim | event = spikesim
    clock_mhz: float > 0
    crossbar:   {rows, cols}          # powers of two >= 8
    pe:         {pes_per_tile, crossbars_per_pe? = null, htree_links_per_pe? = 8,
                 neuron_units_per_pe? = 4, shift_adds_per_column_group? = 16}
    adc:        {bits: 1..16, columns_per_adc? = 8, full_scale? = auto | calibrated | explicit,
                 full_scale_ua? = null, calibration_percentile? = 99.9, reference_bits? = null}
    device:     {weight_bits: 2..32, bits_per_cell, ron_ohm, roff_ohm, read_voltage_v,
                 signed_weights? = differential | offset | digital, slicing? = columns | cells}
    energy_pj:  {crossbar_read | crossbar_cell_read (+ crossbar_row_read? = 0,
                 crossbar_col_read? = 0), adc, mux, shift_add, temp_buffer, tile_buffer, htree,
                 memory_fetch, neuron, noc_flit_hop? = 0}     # pJ per event, >= 0
    timing:     {pe_cycles, cycles_per_conversion? = null, neuron_cycles? = 0,
                 sar_cycles_per_bit? = null, sar_sample_cycles? = 0}
    noc?:       {mesh_rows? = null, mesh_cols? = null, flit_width_bits? = 32,
                 router_latency_cycles? = 1, link_latency_cycles? = 1,
                 packet? = address_event | bitmap, header_flits? = 0,
                 router_buffer_flits? = null}
    mapping?:   {style? = kernel_split | unrolled, placement? = snake | row_major}
    buffers?:   {tile_buffer_bits? = 8192, neuron_state_bits? = 22, input_bits? = 22,
                 input_buffer_timesteps? = null, neuron_memory_layers? = null,
                 tile_buffer_sharing? = per_consumer | shared}
    area_um2?:  null | {crossbar | crossbar_cell (+ crossbar_row? = 0, crossbar_col? = 0),
                        adc, mux, shift_add, temp_buffer, htree, sram_bit,
                        router? = 0}                          # um^2, >= 0
    fusion_unit?: null | {counter_increment_pj, lut_read_pj, multiply_pj, compare_pj,
                          area_um2, lut_cycles, cycles_per_class, ...}
    leakage_mw?: null | {crossbar, adc, mux, shift_add, temp_buffer, htree, router,
                         sram_bit, fusion_unit}               # mW per instance, all ? = 0
    offchip?:   null | {bits_per_cycle, pj_per_bit, input_value_bits? = 8,
                        result_bits? = null}
    programming?: null | {pulse_pj, row_round_cycles, pulses_per_round? = 1,
                          verify_rounds? = 1, verify_pj? = 0, rows_in_parallel? = 1}
    partial_sums?: null | {bits, accumulate_cycles? = 0}
    pooling?:   null | {op_pj, units_per_tile? = 1, ops_per_cycle? = 1, area_um2? = 0,
                        leakage_mw? = 0}                      # hwsim.hw.arch_units
    neuron_leak?: null | {cycles? = 0, multiplier_area_um2? = 0}

Every section and key added after SpikeSim's (leakage_mw, offchip, programming, partial_sums,
pooling, neuron_leak, the per-cell crossbar costs, the SAR timing, tile_buffer_sharing)
defaults to "off": a file
without them means what it meant before they existed.

Each dataclass field's metadata holds its description (``doc``) and its range check; the
validator and the reference documentation both read them, so they cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
from collections.abc import Mapping
from dataclasses import field
from enum import Enum
from typing import Any, get_type_hints

import yaml

from hwsim.errors import ConfigError
from hwsim.hw.arch_schema import (
    AdcConfig,
    AreaTable,
    BufferConfig,
    BufferSharing,
    Check,
    CrossbarConfig,
    DeviceConfig,
    EnergyModel,
    EnergyTable,
    FullScale,
    FusionCompare,
    FusionUnitConfig,
    LeakageTable,
    MappingConfig,
    MappingStyle,
    NocConfig,
    OffchipConfig,
    PacketFormat,
    PartialSumConfig,
    PeConfig,
    Placement,
    ProgrammingConfig,
    SignedWeights,
    Slicing,
    TerminationRule,
    TimingConfig,
    between,
    field_spec,
    frozen_section,
    non_empty,
    one_of,
)
from hwsim.hw.arch_units import NeuronLeakConfig, PoolingConfig

__all__ = [
    "AdcConfig",
    "ArchConfigError",
    "Architecture",
    "AreaTable",
    "BufferConfig",
    "BufferSharing",
    "CrossbarConfig",
    "DeviceConfig",
    "EnergyModel",
    "EnergyTable",
    "FullScale",
    "FusionCompare",
    "FusionUnitConfig",
    "LeakageTable",
    "MappingConfig",
    "MappingStyle",
    "NeuronLeakConfig",
    "NocConfig",
    "OffchipConfig",
    "PacketFormat",
    "PartialSumConfig",
    "PeConfig",
    "Placement",
    "PoolingConfig",
    "ProgrammingConfig",
    "SUPPORTED_VERSIONS",
    "SignedWeights",
    "Slicing",
    "TerminationRule",
    "TimingConfig",
    "load_arch",
    "parse_arch",
    "schema_keys",
]
"""The schema's public names: this module's and the re-exported sections of `arch_schema`."""

SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
"""Values of the `version:` key this module can read."""


class ArchConfigError(ConfigError):
    """An architecture file is malformed; the message names file, key, value and expectation."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {message}")


@frozen_section
class Architecture:
    """A whole accelerator: what `load_arch` returns. Numeric fields carry their unit."""

    version: int = field(metadata=field_spec("schema version", one_of(SUPPORTED_VERSIONS)))
    name: str = field(metadata=field_spec("short name of the design", non_empty))
    clock_mhz: float = field(metadata=field_spec("clock frequency, MHz", between(1e-3, 1e6)))
    crossbar: CrossbarConfig = field(metadata=field_spec("crossbar geometry"))
    pe: PeConfig = field(metadata=field_spec("PE and tile organisation"))
    adc: AdcConfig = field(metadata=field_spec("column ADCs"))
    device: DeviceConfig = field(metadata=field_spec("RRAM device and weight encoding"))
    energy_pj: EnergyTable = field(metadata=field_spec("energy per event, pJ"))
    timing: TimingConfig = field(metadata=field_spec("cycle counts"))
    noc: NocConfig = field(default_factory=NocConfig, metadata=field_spec("mesh network-on-chip"))
    mapping: MappingConfig = field(
        default_factory=MappingConfig, metadata=field_spec("crossbar mapping and mesh placement")
    )
    buffers: BufferConfig = field(default_factory=BufferConfig, metadata=field_spec("buffer sizes"))
    area_um2: AreaTable | None = field(
        default=None, metadata=field_spec("area per component, um^2; null = area not modelled")
    )
    fusion_unit: FusionUnitConfig | None = field(
        default=None, metadata=field_spec("Bayesian-fusion unit; null = not modelled")
    )
    leakage_mw: LeakageTable | None = field(
        default=None, metadata=field_spec("static power per component, mW; null = not modelled")
    )
    offchip: OffchipConfig | None = field(
        default=None,
        metadata=field_spec("off-chip interface for images and results; null = not modelled"),
    )
    programming: ProgrammingConfig | None = field(
        default=None, metadata=field_spec("weight programming; null = not modelled")
    )
    partial_sums: PartialSumConfig | None = field(
        default=None,
        metadata=field_spec("partial sums between PEs; null = accumulated for free (SpikeSim)"),
    )
    pooling: PoolingConfig | None = field(
        default=None,
        metadata=field_spec(
            "the tile's pooling unit for local pooling layers; null = none (such layers refused)"
        ),
    )
    neuron_leak: NeuronLeakConfig | None = field(
        default=None,
        metadata=field_spec(
            "cycles and area of leaky neurons' multiplier; null = energy only (leak_multiply)"
        ),
    )
    energy_model: EnergyModel = field(
        default=EnergyModel.SPIKESIM,
        metadata=field_spec("spikesim: charge every PE operation; event: only spike-driven ones"),
    )
    source: str = field(default="", metadata=field_spec("citation for the numbers"))
    notes: str = field(default="", metadata=field_spec("free text"))

    @property
    def clock_period_ns(self) -> float:
        """One clock cycle, ns: 1000 / clock_mhz."""
        return 1000.0 / self.clock_mhz

    @property
    def pe_operation_ns(self) -> float:
        """One PE operation, ns: pe_operation_cycles * 1000 / clock_mhz (SpikeSim: 26 * 4 =
        104 ns)."""
        return self.pe_operation_cycles * self.clock_period_ns

    @property
    def conversion_cycles(self) -> int | None:
        """Clock cycles of one ADC conversion: adc.bits x timing.sar_cycles_per_bit +
        sar_sample_cycles (a SAR ADC resolves one bit per step), or timing.cycles_per_conversion;
        None when the conversions fit in pe_cycles (SpikeSim)."""
        per_bit = self.timing.sar_cycles_per_bit
        if per_bit is not None:
            return self.adc.bits * per_bit + self.timing.sar_sample_cycles
        return self.timing.cycles_per_conversion

    @property
    def pe_operation_cycles(self) -> int:
        """Clock cycles of one PE operation: pe_cycles, or at least its adc.columns_per_adc
        conversion rounds of `conversion_cycles` each when set."""
        per_conversion = self.conversion_cycles
        if per_conversion is None:
            return self.timing.pe_cycles
        return max(self.timing.pe_cycles, self.adc_rounds * per_conversion)

    @property
    def crossbar_read_pj(self) -> float:
        """Energy of one crossbar read, pJ: energy_pj.crossbar_read, or rows x cols x
        crossbar_cell_read + rows x crossbar_row_read + cols x crossbar_col_read."""
        e = self.energy_pj
        if e.crossbar_read is not None:
            return e.crossbar_read
        assert e.crossbar_cell_read is not None  # _check_cross_fields
        rows, cols = self.crossbar.rows, self.crossbar.cols
        return (
            rows * cols * e.crossbar_cell_read
            + rows * e.crossbar_row_read
            + (cols * e.crossbar_col_read)
        )

    @property
    def crossbar_area_um2(self) -> float:
        """Area of one crossbar, um^2: area_um2.crossbar, or rows x cols x crossbar_cell + rows
        x crossbar_row + cols x crossbar_col. Needs the area_um2 section."""
        a = self.area_um2
        if a is None:
            raise ValueError(f"{self.name}: no area_um2 section; area is not modelled")
        if a.crossbar is not None:
            return a.crossbar
        assert a.crossbar_cell is not None  # _check_cross_fields
        rows, cols = self.crossbar.rows, self.crossbar.cols
        return rows * cols * a.crossbar_cell + rows * a.crossbar_row + cols * a.crossbar_col

    @property
    def adcs_per_crossbar(self) -> int:
        """ADCs G per crossbar column group: crossbar.cols / adc.columns_per_adc (SpikeSim: X/8)."""
        return self.crossbar.cols // self.adc.columns_per_adc

    @property
    def adc_rounds(self) -> int:
        """Conversion rounds R of a read-out: each ADC converts its adc.columns_per_adc columns
        one after the other; G ADCs x R rounds = crossbar.cols conversions."""
        return self.adc.columns_per_adc

    @property
    def adc_cost_scale(self) -> float:
        """ADC energy and area at adc.bits relative to the constants' reference_bits:
        2^(bits - reference_bits), a SAR ADC at a constant Walden figure of merit."""
        reference = self.adc.reference_bits or self.adc.bits
        return 2.0 ** (self.adc.bits - reference)

    @property
    def outputs_per_crossbar(self) -> int:
        """Output channels one crossbar holds: (cols - reference columns) // columns_per_weight."""
        device = self.device
        return (self.crossbar.cols - device.reference_columns) // device.columns_per_weight

    @property
    def cell_step_s(self) -> float:
        """Conductance step between adjacent cell levels, S: (G_on - G_off) / (2^bits - 1)."""
        return (self.device.gon_s - self.device.goff_s) / (self.device.levels - 1)

    @property
    def level_a(self) -> float:
        """Current of one cell level, A: V_read x cell_step_s (the LSB of an `auto` ADC)."""
        return self.device.read_voltage_v * self.cell_step_s

    @property
    def adc_signed(self) -> bool:
        """A signed ADC for column signals of either sign (a differential pair or a reference
        column subtracted in analog); digital-sign columns are non-negative."""
        return self.device.signed_weights is not SignedWeights.DIGITAL

    @property
    def adc_lsb_levels(self) -> float | None:
        """One ADC code step in cell levels: 1 (auto), full_scale_ua over the code span
        (explicit: 2^(n-1) signed, 2^n - 1 unsigned, as FS = (2^n - 1) LSB in SpikeSim's
        functional code), None (calibrated: set per layer by the functional mode)."""
        if self.adc.full_scale is FullScale.AUTO:
            return 1.0
        if self.adc.full_scale is FullScale.CALIBRATED:
            return None
        assert self.adc.full_scale_ua is not None
        span = (1 << (self.adc.bits - 1)) if self.adc_signed else (1 << self.adc.bits) - 1
        return self.adc.full_scale_ua * 1e-6 / self.level_a / span

    def to_mapping(self) -> dict[str, Any]:
        """Plain nested dict (enums as strings) that `parse_arch` reads back to an equal object."""
        return _to_plain(self)


# ------------------------------------------------------------------------------- loading


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads YAML 1.2 floats like ``1e-6``."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# PyYAML follows YAML 1.1, where a float needs a dot ("1e-6" would load as a string).
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_arch(path: str | os.PathLike[str]) -> Architecture:
    """Read, validate and build the architecture in the YAML file at `path`.

    Raises `ArchConfigError` for any problem with the content, `OSError` if the file cannot be read.
    """
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise ArchConfigError(source, "", "not a YAML text file (not UTF-8)") from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: builds no objects
    except yaml.YAMLError as exc:
        raise ArchConfigError(source, "", _describe_yaml_error(exc)) from None
    return parse_arch(raw, source)


def parse_arch(mapping: Any, source: str) -> Architecture:
    """Validate an already-parsed mapping (e.g. a YAML document); `source` names it in errors."""
    if not isinstance(mapping, Mapping):
        raise ArchConfigError(
            source,
            "",
            f"the top level must be a mapping of keys (version, name, ...), "
            f"got {_type_name(mapping)}",
        )
    supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
    if "version" not in mapping:
        raise ArchConfigError(
            source, "version", f"missing required key; supported versions: {supported}"
        )
    version = mapping["version"]
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise ArchConfigError(
            source, "version", f"got {version!r}; unsupported, supported versions: {supported}"
        )
    arch = _build(Architecture, mapping, "", source)
    _check_cross_fields(arch, source)
    return arch


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"malformed YAML: {problem}"
    return f"malformed YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _build(cls: type, raw: Any, path: str, source: str) -> Any:
    """Build dataclass `cls` from mapping `raw`, checking keys, types and ranges."""
    if not isinstance(raw, Mapping):
        raise ArchConfigError(
            source, path, f"got {_show(raw)}; expected a mapping with keys {_keys(cls)}"
        )
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            raise ArchConfigError(source, _join(path, str(key)), _unknown_key(key, names))
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key_path = _join(path, f.name)
        if f.name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ArchConfigError(
                    source, key_path, f"missing required key ({f.metadata.get('doc', '')})"
                )
            continue
        value = _convert(hints[f.name], raw[f.name], key_path, source)
        check: Check | None = f.metadata.get("check")
        if check is not None and value is not None:
            expected = check(value)
            if expected is not None:
                raise ArchConfigError(source, key_path, f"got {_show(value)}; expected {expected}")
        kwargs[f.name] = value
    return cls(**kwargs)


def _convert(hint: Any, value: Any, path: str, source: str) -> Any:
    """Check `value` against type `hint` and return it in that type."""
    optional = isinstance(hint, types.UnionType) and type(None) in hint.__args__
    if optional:
        if value is None:
            return None
        (hint,) = [a for a in hint.__args__ if a is not type(None)]
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, source)
    if isinstance(hint, type) and issubclass(hint, Enum):
        allowed = [m.value for m in hint]
        if isinstance(value, str) and value in allowed:
            return hint(value)
        raise ArchConfigError(source, path, f"got {_show(value)}; expected one of {allowed}")
    or_null = " or null" if optional else ""
    if hint is bool:
        if type(value) is bool:
            return value
        raise ArchConfigError(source, path, f"got {_show(value)}; expected true or false{or_null}")
    if hint is int:
        if type(value) is int:
            return value
        raise ArchConfigError(source, path, f"got {_show(value)}; expected an integer{or_null}")
    if hint is float:
        if type(value) in (int, float) and math.isfinite(value):
            return float(value)
        raise ArchConfigError(
            source, path, f"got {_show(value)}; expected a finite number{or_null}"
        )
    if hint is str:
        if isinstance(value, str):
            return value
        raise ArchConfigError(source, path, f"got {_show(value)}; expected a string{or_null}")
    raise TypeError(f"arch schema: unsupported field type {hint!r} at {path}")  # a bug here


def _check_cross_fields(arch: Architecture, source: str) -> None:
    """Checks that involve more than one key."""
    cols, per_adc = arch.crossbar.cols, arch.adc.columns_per_adc
    if cols % per_adc:
        raise ArchConfigError(
            source,
            "adc.columns_per_adc",
            f"got {per_adc}; expected a divisor of crossbar.cols ({cols})",
        )
    device = arch.device
    if device.roff_ohm <= device.ron_ohm:
        raise ArchConfigError(
            source,
            "device.roff_ohm",
            f"got {device.roff_ohm:g}; expected a value > device.ron_ohm ({device.ron_ohm:g})",
        )
    if device.bits_per_cell > device.weight_bits:
        raise ArchConfigError(
            source,
            "device.bits_per_cell",
            f"got {device.bits_per_cell}; expected at most device.weight_bits "
            f"({device.weight_bits})",
        )
    if device.columns_per_weight + device.reference_columns > cols:
        raise ArchConfigError(
            source,
            "crossbar.cols",
            f"got {cols}; expected at least the {device.columns_per_weight} columns of one weight"
            f" (device.weight_bits {device.weight_bits}, bits_per_cell {device.bits_per_cell},"
            f" {device.signed_weights.value}, {device.slicing.value} slicing) plus"
            f" {device.reference_columns} reference columns",
        )
    adc = arch.adc
    if (adc.full_scale is FullScale.EXPLICIT) != (adc.full_scale_ua is not None):
        raise ArchConfigError(
            source,
            "adc.full_scale_ua",
            f"got {adc.full_scale_ua!r} with adc.full_scale {adc.full_scale.value!r}; expected a"
            " current > 0 exactly when adc.full_scale is 'explicit' (null otherwise)",
        )
    default_percentile = AdcConfig.__dataclass_fields__["calibration_percentile"].default
    if adc.full_scale is not FullScale.CALIBRATED and adc.calibration_percentile != (
        default_percentile
    ):
        raise ArchConfigError(
            source,
            "adc.calibration_percentile",
            f"got {adc.calibration_percentile:g}; it is read only with adc.full_scale"
            f" 'calibrated' (this file has {adc.full_scale.value!r}): remove it",
        )
    _check_scaled(
        source,
        "energy_pj",
        arch.energy_pj,
        ("crossbar_read", "crossbar_cell_read", "crossbar_row_read", "crossbar_col_read"),
    )
    if arch.area_um2 is not None:
        _check_scaled(
            source,
            "area_um2",
            arch.area_um2,
            ("crossbar", "crossbar_cell", "crossbar_row", "crossbar_col"),
        )
    timing = arch.timing
    if timing.sar_cycles_per_bit is not None and timing.cycles_per_conversion is not None:
        raise ArchConfigError(
            source,
            "timing.sar_cycles_per_bit",
            f"got {timing.sar_cycles_per_bit} with timing.cycles_per_conversion"
            f" {timing.cycles_per_conversion}; expected at most one of the two",
        )
    if timing.sar_cycles_per_bit is None and timing.sar_sample_cycles:
        raise ArchConfigError(
            source,
            "timing.sar_sample_cycles",
            f"got {timing.sar_sample_cycles}; it is read only with timing.sar_cycles_per_bit"
            " (null in this file): remove it or set both",
        )
    if (arch.noc.mesh_rows is None) != (arch.noc.mesh_cols is None):
        raise ArchConfigError(
            source,
            "noc.mesh_cols" if arch.noc.mesh_cols is None else "noc.mesh_rows",
            "got null; expected noc.mesh_rows and noc.mesh_cols both set or both null",
        )


def _check_scaled(source: str, section: str, table: Any, keys: tuple[str, str, str, str]) -> None:
    """A crossbar cost given either whole (`keys[0]`) or per cell (`keys[1]`) with its row and
    column periphery (`keys[2:]`, read only with the per-cell key)."""
    whole, cell, row, col = keys
    given_whole = getattr(table, whole) is not None
    given_cell = getattr(table, cell) is not None
    if given_whole == given_cell:
        what = f"got both it and {section}.{cell}" if given_whole else "missing required key"
        raise ArchConfigError(
            source,
            f"{section}.{whole}",
            f"{what}; expected exactly one of {section}.{whole} (the whole crossbar's cost) and"
            f" {section}.{cell} (per cell, with {section}.{row} and {section}.{col})",
        )
    for key in (row, col):
        if given_whole and getattr(table, key):
            raise ArchConfigError(
                source,
                f"{section}.{key}",
                f"got {getattr(table, key):g}; it is read only with {section}.{cell} (this file"
                f" gives {section}.{whole}): remove it",
            )


# ------------------------------------------------------------------------------- helpers


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _keys(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def _unknown_key(key: Any, names: list[str]) -> str:
    close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {str(key)!r}; {hint}valid keys here: {', '.join(names)}"


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: Any) -> str:
    text = repr(value.value) if isinstance(value, Enum) else repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_type_name(value)})"


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    return obj


def schema_keys(cls: type = Architecture, path: str = "") -> list[tuple[str, str]]:
    """Every key path of the schema with its description, depth first (for docs and tests)."""
    hints = get_type_hints(cls)
    out: list[tuple[str, str]] = []
    for f in dataclasses.fields(cls):
        key_path = _join(path, f.name)
        out.append((key_path, f.metadata.get("doc", "")))
        hint = hints[f.name]
        if isinstance(hint, types.UnionType):  # an optional section: `X | None`
            hint = next(a for a in hint.__args__ if a is not type(None))
        if dataclasses.is_dataclass(hint):
            out.extend(schema_keys(hint, key_path))
    return out
