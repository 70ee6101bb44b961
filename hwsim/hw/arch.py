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

Every section and key added after SpikeSim's (leakage_mw, offchip, programming, partial_sums,
the per-cell crossbar costs, the SAR timing, tile_buffer_sharing) defaults to "off": a file
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, get_type_hints

import yaml

from hwsim.errors import ConfigError

SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
"""Values of the `version:` key this module can read."""


class ArchConfigError(ConfigError):
    """An architecture file is malformed; the message names file, key, value and expectation."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {message}")


class SignedWeights(StrEnum):
    """How a signed weight is stored in non-negative conductances."""

    DIFFERENTIAL = "differential"  # W = G+ - G-, two columns per weight slice, subtracted in analog
    OFFSET = "offset"  # W + 2^(b-1) stored, a reference column subtracted in analog
    DIGITAL = "digital"  # SpikeSim: two's complement; b-1 low bits stored, sign bit digital


class Slicing(StrEnum):
    """Where the bit slices of one weight sit."""

    COLUMNS = "columns"  # slice j on its own column, shift-added digitally after the ADC
    CELLS = "cells"  # parallel binary-weighted cells of one column (G x 2^(jB)), summed in analog


class FullScale(StrEnum):
    """How the ADC's full scale is set."""

    AUTO = "auto"  # LSB = one cell level (SpikeSim's rule)
    CALIBRATED = "calibrated"  # per layer: a percentile of observed column signals (NeuroSim)
    EXPLICIT = "explicit"  # adc.full_scale_ua


class MappingStyle(StrEnum):
    """How a k_h x k_w x C_in x C_out layer is laid out on crossbar rows."""

    KERNEL_SPLIT = "kernel_split"  # SpikeSim: one crossbar set per kernel position, rows = C_in
    UNROLLED = "unrolled"  # rows = k_h k_w C_in (im2col), cut into crossbar-high row groups


class PacketFormat(StrEnum):
    """How a layer's spikes of one timestep travel to one destination tile."""

    ADDRESS_EVENT = "address_event"  # one address per spike: flits grow with the spikes
    BITMAP = "bitmap"  # one bit per sending neuron: fixed flits whenever any spike is sent


class Placement(StrEnum):
    """Order in which tiles fill the mesh."""

    ROW_MAJOR = "row_major"  # slot k at (k // cols, k % cols)
    SNAKE = "snake"  # boustrophedon: odd rows run right to left, consecutive tiles adjacent


class BufferSharing(StrEnum):
    """Which share of a tile buffer a layer mapped on the tile may fill with its input spikes."""

    PER_CONSUMER = "per_consumer"  # every layer counts its tiles' whole buffers (as before)
    SHARED = "shared"  # a tile's buffer is split among the spike-receiving layers on it, by PEs


class EnergyModel(StrEnum):
    """Which events are charged energy."""

    SPIKESIM = "spikesim"  # every PE operation every timestep (SpikeSim's accounting)
    EVENT = "event"  # only the PE operations some input spike makes necessary


# ---------------------------------------------------------------------------- range checks
# A check returns None when the value is acceptable, else a phrase saying what was expected.

Check = Callable[[Any], str | None]


LIMIT = 1e12
"""Largest value any count, energy (pJ), area (um^2) or resistance (ohm) may take: beyond it a
value is a typo, and products of such values overflow the simulator's integers or floats."""

CYCLE_LIMIT = 1_000_000
"""Largest cycle count of one operation: cycles x operations x timesteps stay in int64."""


def _positive(value: float) -> str | None:
    return None if 0 < value <= LIMIT else f"a value in (0, {LIMIT:g}]"


def _non_negative(value: float) -> str | None:
    return None if 0 <= value <= LIMIT else f"a value in [0, {LIMIT:g}]"


def _between(low: float, high: float) -> Check:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"a value in [{low:g}, {high:g}]"

    return check


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "a non-empty string"


def _int_between(low: int, high: int) -> Check:
    def check(value: int) -> str | None:
        return None if low <= value <= high else f"an integer in {low}..{high}"

    return check


def _power_of_two_between(low: int, high: int) -> Check:
    def check(value: int) -> str | None:
        ok = low <= value <= high and value & (value - 1) == 0
        return None if ok else f"a power of two in {low}..{high}"

    return check


def _one_of(allowed: tuple[int, ...]) -> Check:
    def check(value: int) -> str | None:
        return None if value in allowed else f"one of the supported versions {list(allowed)}"

    return check


def _percentile(value: float) -> str | None:
    return None if 0 < value <= 100 else "a percentile in (0, 100]"


def _spec(doc: str, check: Check | None = None) -> dict[str, Any]:
    """Field metadata: a one-line description (with unit) and an optional range check."""
    return {"doc": doc, "check": check}


# ----------------------------------------------------------------------------- dataclasses

_frozen = dataclass(frozen=True, slots=True, kw_only=True)


@_frozen
class CrossbarConfig:
    """One RRAM crossbar array: rows take input channels, columns give outputs."""

    rows: int = field(
        metadata=_spec("word lines (inputs) per crossbar", _power_of_two_between(8, 4096))
    )
    cols: int = field(
        metadata=_spec("bit lines (outputs) per crossbar", _power_of_two_between(8, 4096))
    )


@_frozen
class PeConfig:
    """Processing element (PE): crossbars with shared ADCs; SpikeSim's per-PE multiplicities."""

    pes_per_tile: int = field(metadata=_spec("PEs in one tile", _int_between(1, 4096)))
    crossbars_per_pe: int | None = field(
        default=None,
        metadata=_spec(
            "crossbars in one PE; null = one per kernel position of the layer (SpikeSim)",
            _int_between(1, 4096),
        ),
    )
    htree_links_per_pe: int = field(
        default=8, metadata=_spec("H-tree link traversals charged per PE operation", _non_negative)
    )
    neuron_units_per_pe: int = field(
        default=4, metadata=_spec("neuron-module updates charged per PE operation", _non_negative)
    )
    shift_adds_per_column_group: int = field(
        default=16,
        metadata=_spec("shift-add operations per ADC column group per PE operation", _non_negative),
    )


@_frozen
class AdcConfig:
    """Column ADCs: `columns_per_adc` bit lines share one ADC through a multiplexer, converted in
    `columns_per_adc` rounds. The cost constants (`energy_pj.adc`, `area_um2.adc`) are those of
    a `reference_bits` ADC; at other resolutions both scale as 2^(bits - reference_bits) (a SAR
    ADC at a constant Walden figure of merit, docs/arch-config.md)."""

    bits: int = field(metadata=_spec("ADC resolution in bits", _int_between(1, 16)))
    columns_per_adc: int = field(
        default=8,
        metadata=_spec("crossbar columns multiplexed onto one ADC", _int_between(1, 4096)),
    )
    full_scale: FullScale = field(
        default=FullScale.AUTO,
        metadata=_spec(
            "auto: LSB = one cell level (SpikeSim); calibrated: per layer, a percentile of the"
            " column signals of a calibration batch (NeuroSim); explicit: adc.full_scale_ua"
        ),
    )
    full_scale_ua: float | None = field(
        default=None,
        metadata=_spec(
            "ADC full-scale current, uA (signed codes span [-FS, FS), unsigned [0, FS]); read"
            " only with full_scale: explicit",
            _positive,
        ),
    )
    calibration_percentile: float = field(
        default=99.9,
        metadata=_spec(
            "percentile of |column signal| mapped to the top code; read only with full_scale:"
            " calibrated",
            _percentile,
        ),
    )
    reference_bits: int | None = field(
        default=None,
        metadata=_spec(
            "resolution at which energy_pj.adc and area_um2.adc are given; null = bits",
            _int_between(1, 16),
        ),
    )


@_frozen
class DeviceConfig:
    """RRAM cell and weight encoding."""

    weight_bits: int = field(
        metadata=_spec("bits of a signed, symmetric quantised weight", _int_between(2, 32))
    )
    bits_per_cell: int = field(metadata=_spec("bits stored in one RRAM cell", _int_between(1, 8)))
    ron_ohm: float = field(metadata=_spec("low-resistance (ON) state, ohm", _positive))
    roff_ohm: float = field(metadata=_spec("high-resistance (OFF) state, ohm", _positive))
    read_voltage_v: float = field(metadata=_spec("row read voltage, volt", _between(1e-6, 100)))
    signed_weights: SignedWeights = field(
        default=SignedWeights.DIFFERENTIAL,
        metadata=_spec(
            "signed-weight encoding: differential (G+ - G-), offset (reference column) or"
            " digital (SpikeSim: two's complement, sign bit applied digitally)"
        ),
    )
    slicing: Slicing = field(
        default=Slicing.COLUMNS,
        metadata=_spec(
            "bit slices of a weight: columns (one column each, shift-added after the ADC) or"
            " cells (parallel binary-weighted cells of one column, summed in analog)"
        ),
    )

    @property
    def stored_bits(self) -> int:
        """Bits of the non-negative value a weight stores: b - 1 for differential (|w| on each
        side) and digital (the two's-complement bits below the sign), b for offset."""
        if self.signed_weights is SignedWeights.OFFSET:
            return self.weight_bits
        return self.weight_bits - 1

    @property
    def slices_per_weight(self) -> int:
        """Bit slices S of one weight: ceil(stored_bits / bits_per_cell)."""
        return -(-self.stored_bits // self.bits_per_cell)

    @property
    def slices_per_column(self) -> int:
        """Slices summed in analog on one column: S (cells slicing) or 1 (columns slicing)."""
        return self.slices_per_weight if self.slicing is Slicing.CELLS else 1

    @property
    def columns_per_weight(self) -> int:
        """Crossbar columns one weight occupies: S / slices_per_column, times 2 for a
        differential pair (SpikeSim's digital sign with cells slicing: 1)."""
        pair = 2 if self.signed_weights is SignedWeights.DIFFERENTIAL else 1
        return pair * self.slices_per_weight // self.slices_per_column

    @property
    def reference_columns(self) -> int:
        """Reference columns per crossbar: offset only, one per distinct column value of the
        offset 2^(b-1): its digits over the slices (the top slice's and 0 if S > 1) under
        columns slicing, the whole offset on one column under cells slicing."""
        if self.signed_weights is not SignedWeights.OFFSET:
            return 0
        return 1 if self.slices_per_column == self.slices_per_weight else 2

    @property
    def levels(self) -> int:
        """Conductance levels of one cell: 2^bits_per_cell."""
        return 1 << self.bits_per_cell

    @property
    def gon_s(self) -> float:
        """ON conductance, siemens."""
        return 1.0 / self.ron_ohm

    @property
    def goff_s(self) -> float:
        """OFF conductance, siemens."""
        return 1.0 / self.roff_ohm


@_frozen
class EnergyTable:
    """Energy per event, pJ (an energy reference table; events are counted elsewhere)."""

    crossbar_read: float | None = field(
        default=None,
        metadata=_spec(
            "one crossbar read (all rows, analog MAC), pJ; null = from crossbar_cell_read and"
            " the row and column periphery (exactly one of the two is given)",
            _non_negative,
        ),
    )
    adc: float = field(metadata=_spec("one ADC conversion, pJ", _non_negative))
    mux: float = field(metadata=_spec("one column-multiplexer switch, pJ", _non_negative))
    shift_add: float = field(metadata=_spec("one shift-and-add, pJ", _non_negative))
    temp_buffer: float = field(metadata=_spec("one PE temporary-buffer access, pJ", _non_negative))
    tile_buffer: float = field(metadata=_spec("one tile-buffer access, pJ", _non_negative))
    htree: float = field(metadata=_spec("one H-tree link traversal, pJ", _non_negative))
    memory_fetch: float = field(metadata=_spec("one global-memory fetch, pJ", _non_negative))
    neuron: float = field(metadata=_spec("one neuron-module update, pJ", _non_negative))
    noc_flit_hop: float = field(
        default=0.0, metadata=_spec("one flit crossing one mesh router and link, pJ", _non_negative)
    )
    crossbar_cell_read: float | None = field(
        default=None,
        metadata=_spec(
            "one cell's share of a crossbar read, pJ: a rows x cols read costs rows x cols x this"
            " + rows x crossbar_row_read + cols x crossbar_col_read; null = crossbar_read",
            _non_negative,
        ),
    )
    crossbar_row_read: float = field(
        default=0.0,
        metadata=_spec(
            "one row's periphery (driver) in a crossbar read, pJ; read only with"
            " crossbar_cell_read",
            _non_negative,
        ),
    )
    crossbar_col_read: float = field(
        default=0.0,
        metadata=_spec(
            "one column's periphery (sensing, precharge) in a crossbar read, pJ; read only with"
            " crossbar_cell_read",
            _non_negative,
        ),
    )


@_frozen
class TimingConfig:
    """Cycle counts (clock cycles of `clock_mhz`)."""

    pe_cycles: int = field(
        metadata=_spec("clock cycles of one PE operation", _int_between(1, CYCLE_LIMIT))
    )
    cycles_per_conversion: int | None = field(
        default=None,
        metadata=_spec(
            "clock cycles of one ADC conversion; a PE operation then lasts at least"
            " adc.columns_per_adc of them (its conversion rounds); null = within pe_cycles",
            _int_between(1, CYCLE_LIMIT),
        ),
    )
    neuron_cycles: int = field(
        default=0,
        metadata=_spec(
            "clock cycles of one neuron-unit update after a layer's PE operations (a layer's"
            " N neurons take ceil(N / (pe.neuron_units_per_pe x PEs)) updates); 0 = within"
            " pe_cycles (SpikeSim)",
            _int_between(0, CYCLE_LIMIT),
        ),
    )
    sar_cycles_per_bit: int | None = field(
        default=None,
        metadata=_spec(
            "clock cycles per bit a SAR ADC resolves: one conversion takes adc.bits x this +"
            " sar_sample_cycles (NeuroSim's SarADC: bits + 1 cycles); null = cycles_per_conversion",
            _int_between(1, CYCLE_LIMIT),
        ),
    )
    sar_sample_cycles: int = field(
        default=0,
        metadata=_spec(
            "clock cycles a SAR conversion spends sampling besides its bit cycles; read only"
            " with sar_cycles_per_bit",
            _int_between(0, CYCLE_LIMIT),
        ),
    )
    line_buffer: bool = field(
        default=False,
        metadata=_spec(
            "line-buffer pipelining: a layer works output row by output row and starts a row"
            " once the producer rows its window needs are in its buffer (input buffers then"
            " hold rows); false = a layer's job is a whole timestep's map (SpikeSim)"
        ),
    )


@_frozen
class NocConfig:
    """Mesh network-on-chip joining the tiles."""

    mesh_rows: int | None = field(
        default=None,
        metadata=_spec("mesh rows; null = sized by the mapping", _int_between(1, 1024)),
    )
    mesh_cols: int | None = field(
        default=None,
        metadata=_spec("mesh columns; null = sized by the mapping", _int_between(1, 1024)),
    )
    flit_width_bits: int = field(default=32, metadata=_spec("bits per flit", _int_between(1, 4096)))
    router_latency_cycles: int = field(
        default=1,
        metadata=_spec("cycles a flit spends in one router", _int_between(0, CYCLE_LIMIT)),
    )
    link_latency_cycles: int = field(
        default=1,
        metadata=_spec("cycles a flit spends on one link", _int_between(0, CYCLE_LIMIT)),
    )
    packet: PacketFormat = field(
        default=PacketFormat.ADDRESS_EVENT,
        metadata=_spec(
            "address_event: ceil(log2 neurons / flit_width_bits) flits per spike; bitmap:"
            " ceil(neurons sent to the tile / flit_width_bits) flits per timestep with a spike"
        ),
    )
    header_flits: int = field(
        default=0,
        metadata=_spec(
            "head flits added to every packet (one packet per destination tile and timestep)",
            _int_between(0, 4096),
        ),
    )
    router_buffer_flits: int | None = field(
        default=None,
        metadata=_spec(
            "flits a router input buffer holds (credit-based flow control: a blocked packet"
            " holds the links behind it once these fill); null = unbounded",
            _int_between(1, 1 << 20),
        ),
    )


@_frozen
class MappingConfig:
    """How layers are laid onto crossbars and tiles onto the mesh (hwsim.hw.mapping)."""

    style: MappingStyle = field(
        default=MappingStyle.KERNEL_SPLIT,
        metadata=_spec(
            "kernel_split: a crossbar set per kernel position, rows = C_in (SpikeSim);"
            " unrolled: rows = k_h k_w C_in"
        ),
    )
    placement: Placement = field(
        default=Placement.SNAKE,
        metadata=_spec("tile order on the mesh: snake (boustrophedon) or row_major"),
    )


@_frozen
class BufferConfig:
    """Storage sizes, bits (areas come from `area_um2.sram_bit`)."""

    tile_buffer_bits: int = field(
        default=8192, metadata=_spec("tile buffer capacity, bits (SpikeSim: 64 x 128)", _positive)
    )
    neuron_state_bits: int = field(
        default=22, metadata=_spec("SRAM bits per neuron membrane state (SpikeSim: 22)", _positive)
    )
    input_bits: int = field(
        default=22,
        metadata=_spec("SRAM bits per buffered layer-input activation (SpikeSim: 22)", _positive),
    )
    input_buffer_timesteps: int | None = field(
        default=None,
        metadata=_spec(
            "timesteps of input spikes a layer's buffer holds before its producers stall;"
            " null = as many input bitmaps (C_in H_in W_in bits) as tile_buffer_bits x the"
            " layer's tiles hold, at least 1",
            _int_between(1, 1 << 20),
        ),
    )
    neuron_memory_layers: int | None = field(
        default=None,
        metadata=_spec(
            "neuron memory sized for the first N layers in graph order; null = every layer"
            " (SpikeSim's compute_area: 5)",
            _positive,
        ),
    )
    tile_buffer_sharing: BufferSharing = field(
        default=BufferSharing.PER_CONSUMER,
        metadata=_spec(
            "per_consumer: every layer's input buffer is its tiles' whole tile buffers; shared: a"
            " tile's buffer is split among the spike-receiving layers on it in proportion to"
            " their PEs there (cycle-level simulation, with input_buffer_timesteps null)"
        ),
    )


@_frozen
class AreaTable:
    """Area of one instance of each component, um^2."""

    crossbar: float | None = field(
        default=None,
        metadata=_spec(
            "one crossbar array, um^2; null = from crossbar_cell and the row and column"
            " periphery (exactly one of the two is given)",
            _non_negative,
        ),
    )
    adc: float = field(metadata=_spec("one ADC, um^2", _non_negative))
    mux: float = field(metadata=_spec("one column multiplexer, um^2", _non_negative))
    shift_add: float = field(
        metadata=_spec(
            "one shift-add unit (one per ADC column group per tile), um^2", _non_negative
        )
    )
    temp_buffer: float = field(metadata=_spec("temporary buffer of one tile, um^2", _non_negative))
    htree: float = field(metadata=_spec("H-tree of one tile, um^2", _non_negative))
    sram_bit: float = field(
        metadata=_spec("one SRAM bit (tile buffer, neuron and input memory), um^2", _non_negative)
    )
    router: float = field(default=0.0, metadata=_spec("one mesh router, um^2", _non_negative))
    crossbar_cell: float | None = field(
        default=None,
        metadata=_spec(
            "one RRAM cell, um^2: a rows x cols crossbar takes rows x cols x this + rows x"
            " crossbar_row + cols x crossbar_col; null = crossbar",
            _non_negative,
        ),
    )
    crossbar_row: float = field(
        default=0.0,
        metadata=_spec(
            "one row's periphery (driver, decoder slice), um^2; read only with crossbar_cell",
            _non_negative,
        ),
    )
    crossbar_col: float = field(
        default=0.0,
        metadata=_spec(
            "one column's periphery (sensing, precharge), um^2; read only with crossbar_cell",
            _non_negative,
        ),
    )


@_frozen
class LeakageTable:
    """Static (leakage) power of one instance of each component, mW, drawn whenever the chip is
    powered; instances are counted as for area (hwsim.hw.leakage)."""

    crossbar: float = field(
        default=0.0, metadata=_spec("one crossbar array, mW (RRAM: 0)", _non_negative)
    )
    adc: float = field(default=0.0, metadata=_spec("one ADC, mW", _non_negative))
    mux: float = field(default=0.0, metadata=_spec("one column multiplexer, mW", _non_negative))
    shift_add: float = field(default=0.0, metadata=_spec("one shift-add unit, mW", _non_negative))
    temp_buffer: float = field(
        default=0.0, metadata=_spec("the temporary buffer of one tile, mW", _non_negative)
    )
    htree: float = field(default=0.0, metadata=_spec("the H-tree of one tile, mW", _non_negative))
    router: float = field(default=0.0, metadata=_spec("one mesh router, mW", _non_negative))
    sram_bit: float = field(
        default=0.0,
        metadata=_spec(
            "one SRAM bit (tile buffer, neuron memory, input buffer), mW", _non_negative
        ),
    )
    fusion_unit: float = field(
        default=0.0, metadata=_spec("the fusion unit, mW (on a chip with a head)", _non_negative)
    )


@_frozen
class OffchipConfig:
    """The chip's off-chip interface: each image comes in and its result goes out through it
    (full duplex: the two directions do not contend)."""

    bits_per_cycle: int = field(
        metadata=_spec(
            "bits the interface moves per clock cycle, each way", _int_between(1, 1 << 20)
        )
    )
    pj_per_bit: float = field(metadata=_spec("energy of one bit moved, pJ", _non_negative))
    input_value_bits: int = field(
        default=8, metadata=_spec("bits of one input value (pixel)", _int_between(1, 64))
    )
    result_bits: int | None = field(
        default=None,
        metadata=_spec(
            "bits of one image's result; null = a class index, ceil(log2 classes)",
            _int_between(1, 1 << 20),
        ),
    )


@_frozen
class ProgrammingConfig:
    """Writing the weights into the crossbars once per mapping: every used cell is programmed in
    `verify_rounds` program-and-verify rounds of `pulses_per_round` write pulses and one verify
    read; a row's cells are pulsed and verified together (hwsim.hw.programming)."""

    pulse_pj: float = field(metadata=_spec("one write pulse on one cell, pJ", _non_negative))
    row_round_cycles: int = field(
        metadata=_spec(
            "clock cycles of one program-and-verify round of one crossbar row",
            _int_between(1, CYCLE_LIMIT),
        )
    )
    pulses_per_round: int = field(
        default=1,
        metadata=_spec("write pulses per program-and-verify round", _int_between(1, 4096)),
    )
    verify_rounds: int = field(
        default=1, metadata=_spec("program-and-verify rounds per cell", _int_between(1, 4096))
    )
    verify_pj: float = field(
        default=0.0, metadata=_spec("one verify read of one cell, pJ", _non_negative)
    )
    rows_in_parallel: int = field(
        default=1,
        metadata=_spec(
            "crossbar rows (in different crossbars) programmed at once", _int_between(1, 1 << 20)
        ),
    )


@_frozen
class PartialSumConfig:
    """Partial sums of a layer whose crossbar rows span several PEs: each PE operation's outputs
    travel from its PE to the column group's reducing PE (hwsim.hw.psum)."""

    bits: int = field(metadata=_spec("bits of one partial sum", _int_between(1, 64)))
    accumulate_cycles: int = field(
        default=0,
        metadata=_spec(
            "clock cycles the reducing PE spends adding one received PE operation's partial sums",
            _int_between(0, CYCLE_LIMIT),
        ),
    )


class FusionCompare(StrEnum):
    """How the fusion unit compares two classes' posterior scores p = num / den."""

    CROSS_MULTIPLY = "cross_multiply"  # p_a > p_b as num_a den_b > num_b den_a, wide integers
    DIVIDER = "divider"  # each p to fusion_unit.score_frac_bits by a divider, then compared


class TerminationRule(StrEnum):
    """When the fusion unit stops an image early (hwsim.hw.fusion_unit)."""

    MARGIN = "margin"  # top-1 minus top-2 score >= threshold
    POSTERIOR = "posterior"  # top-1 score >= threshold


@_frozen
class FusionUnitConfig:
    """Bayesian-fusion unit: IC/FC spike counters, PWL alpha LUT, posterior compare, argmax
    (the fixed-point datapath, its cycles and events: hwsim.hw.fusion_unit)."""

    counter_increment_pj: float = field(
        metadata=_spec("one spike-counter increment, pJ", _non_negative)
    )
    lut_read_pj: float = field(metadata=_spec("one alpha-LUT read, pJ", _non_negative))
    multiply_pj: float = field(metadata=_spec("one fixed-point multiply, pJ", _non_negative))
    compare_pj: float = field(metadata=_spec("one compare (subtract), pJ", _non_negative))
    area_um2: float = field(metadata=_spec("area of the whole unit, um^2", _non_negative))
    lut_cycles: int = field(
        metadata=_spec("cycles to read and interpolate alpha(t) once", _int_between(0, CYCLE_LIMIT))
    )
    cycles_per_class: int = field(
        metadata=_spec(
            "cycles per class of posterior compare + argmax", _int_between(0, CYCLE_LIMIT)
        )
    )
    counter_bits: int = field(
        default=16,
        metadata=_spec(
            "bits of one IC or FC spike counter (saturating at 2^bits - 1)", _int_between(1, 31)
        ),
    )
    counter_cycles_per_spike: int = field(
        default=1,
        metadata=_spec(
            "cycles of one counter increment per arriving spike (IC and FC banks in parallel)",
            _int_between(0, CYCLE_LIMIT),
        ),
    )
    lut_slope_frac_bits: int = field(
        default=16,
        metadata=_spec(
            "fraction bits of the per-segment slope the LUT stores for interpolation",
            _int_between(0, 32),
        ),
    )
    alpha_extra_frac_bits: int = field(
        default=8,
        metadata=_spec(
            "fraction bits the interpolated alpha keeps beyond the LUT's LSB (at most"
            " lut_slope_frac_bits); 0 = rounded to the LUT's LSB",
            _int_between(0, 32),
        ),
    )
    score_frac_bits: int = field(
        default=16,
        metadata=_spec(
            "fraction bits of a quantised score (divider quotient, termination threshold)",
            _int_between(1, 32),
        ),
    )
    compare: FusionCompare = field(
        default=FusionCompare.CROSS_MULTIPLY,
        metadata=_spec(
            "cross_multiply: p_a > p_b as num_a den_b > num_b den_a (no division); divider:"
            " each p to score_frac_bits, then compared"
        ),
    )
    divider_cycles_per_class: int | None = field(
        default=None,
        metadata=_spec(
            "cycles of one score division; null = score_frac_bits + 1 (radix 2, one quotient"
            " bit per cycle)",
            _int_between(1, CYCLE_LIMIT),
        ),
    )
    termination: TerminationRule = field(
        default=TerminationRule.POSTERIOR,
        metadata=_spec(
            "early termination: posterior (top-1 score >= threshold) or margin (top-1 minus"
            " top-2 score >= threshold)"
        ),
    )

    @property
    def divider_cycles(self) -> int:
        """Cycles of one score division: divider_cycles_per_class, or score_frac_bits + 1."""
        if self.divider_cycles_per_class is None:
            return self.score_frac_bits + 1
        return self.divider_cycles_per_class


@_frozen
class Architecture:
    """A whole accelerator: what `load_arch` returns. Numeric fields carry their unit."""

    version: int = field(metadata=_spec("schema version", _one_of(SUPPORTED_VERSIONS)))
    name: str = field(metadata=_spec("short name of the design", _non_empty))
    clock_mhz: float = field(metadata=_spec("clock frequency, MHz", _between(1e-3, 1e6)))
    crossbar: CrossbarConfig = field(metadata=_spec("crossbar geometry"))
    pe: PeConfig = field(metadata=_spec("PE and tile organisation"))
    adc: AdcConfig = field(metadata=_spec("column ADCs"))
    device: DeviceConfig = field(metadata=_spec("RRAM device and weight encoding"))
    energy_pj: EnergyTable = field(metadata=_spec("energy per event, pJ"))
    timing: TimingConfig = field(metadata=_spec("cycle counts"))
    noc: NocConfig = field(default_factory=NocConfig, metadata=_spec("mesh network-on-chip"))
    mapping: MappingConfig = field(
        default_factory=MappingConfig, metadata=_spec("crossbar mapping and mesh placement")
    )
    buffers: BufferConfig = field(default_factory=BufferConfig, metadata=_spec("buffer sizes"))
    area_um2: AreaTable | None = field(
        default=None, metadata=_spec("area per component, um^2; null = area not modelled")
    )
    fusion_unit: FusionUnitConfig | None = field(
        default=None, metadata=_spec("Bayesian-fusion unit; null = not modelled")
    )
    leakage_mw: LeakageTable | None = field(
        default=None, metadata=_spec("static power per component, mW; null = not modelled")
    )
    offchip: OffchipConfig | None = field(
        default=None,
        metadata=_spec("off-chip interface for images and results; null = not modelled"),
    )
    programming: ProgrammingConfig | None = field(
        default=None, metadata=_spec("weight programming; null = not modelled")
    )
    partial_sums: PartialSumConfig | None = field(
        default=None,
        metadata=_spec("partial sums between PEs; null = accumulated for free (SpikeSim)"),
    )
    energy_model: EnergyModel = field(
        default=EnergyModel.SPIKESIM,
        metadata=_spec("spikesim: charge every PE operation; event: only spike-driven ones"),
    )
    source: str = field(default="", metadata=_spec("citation for the numbers"))
    notes: str = field(default="", metadata=_spec("free text"))

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
