"""The architecture YAML's sections as frozen dataclasses, and their enums and range checks.

Each field's metadata holds its description (``doc``) and its range check (`field_spec`); the
loader (`hwsim.hw.arch.parse_arch`) and the reference documentation (docs/arch-config.md) both
read them, so they cannot drift apart. `hwsim.hw.arch` holds the whole `Architecture` and the
loading; it re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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


def positive(value: float) -> str | None:
    return None if 0 < value <= LIMIT else f"a value in (0, {LIMIT:g}]"


def non_negative(value: float) -> str | None:
    return None if 0 <= value <= LIMIT else f"a value in [0, {LIMIT:g}]"


def between(low: float, high: float) -> Check:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"a value in [{low:g}, {high:g}]"

    return check


def non_empty(value: str) -> str | None:
    return None if value.strip() else "a non-empty string"


def int_between(low: int, high: int) -> Check:
    def check(value: int) -> str | None:
        return None if low <= value <= high else f"an integer in {low}..{high}"

    return check


def power_of_two_between(low: int, high: int) -> Check:
    def check(value: int) -> str | None:
        ok = low <= value <= high and value & (value - 1) == 0
        return None if ok else f"a power of two in {low}..{high}"

    return check


def one_of(allowed: tuple[int, ...]) -> Check:
    def check(value: int) -> str | None:
        return None if value in allowed else f"one of the supported versions {list(allowed)}"

    return check


def percentile_check(value: float) -> str | None:
    return None if 0 < value <= 100 else "a percentile in (0, 100]"


def field_spec(doc: str, check: Check | None = None) -> dict[str, Any]:
    """Field metadata: a one-line description (with unit) and an optional range check."""
    return {"doc": doc, "check": check}


# ----------------------------------------------------------------------------- dataclasses

frozen_section = dataclass(frozen=True, slots=True, kw_only=True)
"""The decorator of every section: frozen, slotted, keyword-only."""


@frozen_section
class CrossbarConfig:
    """One RRAM crossbar array: rows take input channels, columns give outputs."""

    rows: int = field(
        metadata=field_spec("word lines (inputs) per crossbar", power_of_two_between(8, 4096))
    )
    cols: int = field(
        metadata=field_spec("bit lines (outputs) per crossbar", power_of_two_between(8, 4096))
    )


@frozen_section
class PeConfig:
    """Processing element (PE): crossbars with shared ADCs; SpikeSim's per-PE multiplicities."""

    pes_per_tile: int = field(metadata=field_spec("PEs in one tile", int_between(1, 4096)))
    crossbars_per_pe: int | None = field(
        default=None,
        metadata=field_spec(
            "crossbars in one PE; null = one per kernel position of the layer (SpikeSim)",
            int_between(1, 4096),
        ),
    )
    htree_links_per_pe: int = field(
        default=8,
        metadata=field_spec("H-tree link traversals charged per PE operation", non_negative),
    )
    neuron_units_per_pe: int = field(
        default=4,
        metadata=field_spec("neuron-module updates charged per PE operation", non_negative),
    )
    shift_adds_per_column_group: int = field(
        default=16,
        metadata=field_spec(
            "shift-add operations per ADC column group per PE operation", non_negative
        ),
    )


@frozen_section
class AdcConfig:
    """Column ADCs: `columns_per_adc` bit lines share one ADC through a multiplexer, converted in
    `columns_per_adc` rounds. The cost constants (`energy_pj.adc`, `area_um2.adc`) are those of
    a `reference_bits` ADC; at other resolutions both scale as 2^(bits - reference_bits) (a SAR
    ADC at a constant Walden figure of merit, docs/arch-config.md)."""

    bits: int = field(metadata=field_spec("ADC resolution in bits", int_between(1, 16)))
    columns_per_adc: int = field(
        default=8,
        metadata=field_spec("crossbar columns multiplexed onto one ADC", int_between(1, 4096)),
    )
    full_scale: FullScale = field(
        default=FullScale.AUTO,
        metadata=field_spec(
            "auto: LSB = one cell level (SpikeSim); calibrated: per layer, a percentile of the"
            " column signals of a calibration batch (NeuroSim); explicit: adc.full_scale_ua"
        ),
    )
    full_scale_ua: float | None = field(
        default=None,
        metadata=field_spec(
            "ADC full-scale current, uA (signed codes span [-FS, FS), unsigned [0, FS]); read"
            " only with full_scale: explicit",
            positive,
        ),
    )
    calibration_percentile: float = field(
        default=99.9,
        metadata=field_spec(
            "percentile of |column signal| mapped to the top code; read only with full_scale:"
            " calibrated",
            percentile_check,
        ),
    )
    reference_bits: int | None = field(
        default=None,
        metadata=field_spec(
            "resolution at which energy_pj.adc and area_um2.adc are given; null = bits",
            int_between(1, 16),
        ),
    )


@frozen_section
class DeviceConfig:
    """RRAM cell and weight encoding."""

    weight_bits: int = field(
        metadata=field_spec("bits of a signed, symmetric quantised weight", int_between(2, 32))
    )
    bits_per_cell: int = field(
        metadata=field_spec("bits stored in one RRAM cell", int_between(1, 8))
    )
    ron_ohm: float = field(metadata=field_spec("low-resistance (ON) state, ohm", positive))
    roff_ohm: float = field(metadata=field_spec("high-resistance (OFF) state, ohm", positive))
    read_voltage_v: float = field(metadata=field_spec("row read voltage, volt", between(1e-6, 100)))
    signed_weights: SignedWeights = field(
        default=SignedWeights.DIFFERENTIAL,
        metadata=field_spec(
            "signed-weight encoding: differential (G+ - G-), offset (reference column) or"
            " digital (SpikeSim: two's complement, sign bit applied digitally)"
        ),
    )
    slicing: Slicing = field(
        default=Slicing.COLUMNS,
        metadata=field_spec(
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


@frozen_section
class EnergyTable:
    """Energy per event, pJ (an energy reference table; events are counted elsewhere)."""

    crossbar_read: float | None = field(
        default=None,
        metadata=field_spec(
            "one crossbar read (all rows, analog MAC), pJ; null = from crossbar_cell_read and"
            " the row and column periphery (exactly one of the two is given)",
            non_negative,
        ),
    )
    adc: float = field(metadata=field_spec("one ADC conversion, pJ", non_negative))
    mux: float = field(metadata=field_spec("one column-multiplexer switch, pJ", non_negative))
    shift_add: float = field(metadata=field_spec("one shift-and-add, pJ", non_negative))
    temp_buffer: float = field(
        metadata=field_spec("one PE temporary-buffer access, pJ", non_negative)
    )
    tile_buffer: float = field(metadata=field_spec("one tile-buffer access, pJ", non_negative))
    htree: float = field(metadata=field_spec("one H-tree link traversal, pJ", non_negative))
    memory_fetch: float = field(metadata=field_spec("one global-memory fetch, pJ", non_negative))
    neuron: float = field(metadata=field_spec("one neuron-module update, pJ", non_negative))
    noc_flit_hop: float = field(
        default=0.0,
        metadata=field_spec("one flit crossing one mesh router and link, pJ", non_negative),
    )
    leak_multiply: float = field(
        default=0.0,
        metadata=field_spec(
            "one multiply of a leaky neuron's membrane by its leak (or its input by its gain),"
            " per neuron and timestep, pJ; 0 = not charged",
            non_negative,
        ),
    )
    crossbar_cell_read: float | None = field(
        default=None,
        metadata=field_spec(
            "one cell's share of a crossbar read, pJ: a rows x cols read costs rows x cols x this"
            " + rows x crossbar_row_read + cols x crossbar_col_read; null = crossbar_read",
            non_negative,
        ),
    )
    crossbar_row_read: float = field(
        default=0.0,
        metadata=field_spec(
            "one row's periphery (driver) in a crossbar read, pJ; read only with"
            " crossbar_cell_read",
            non_negative,
        ),
    )
    crossbar_col_read: float = field(
        default=0.0,
        metadata=field_spec(
            "one column's periphery (sensing, precharge) in a crossbar read, pJ; read only with"
            " crossbar_cell_read",
            non_negative,
        ),
    )


@frozen_section
class TimingConfig:
    """Cycle counts (clock cycles of `clock_mhz`)."""

    pe_cycles: int = field(
        metadata=field_spec("clock cycles of one PE operation", int_between(1, CYCLE_LIMIT))
    )
    cycles_per_conversion: int | None = field(
        default=None,
        metadata=field_spec(
            "clock cycles of one ADC conversion; a PE operation then lasts at least"
            " adc.columns_per_adc of them (its conversion rounds); null = within pe_cycles",
            int_between(1, CYCLE_LIMIT),
        ),
    )
    neuron_cycles: int = field(
        default=0,
        metadata=field_spec(
            "clock cycles of one neuron-unit update after a layer's PE operations (a layer's"
            " N neurons take ceil(N / (pe.neuron_units_per_pe x PEs)) updates); 0 = within"
            " pe_cycles (SpikeSim)",
            int_between(0, CYCLE_LIMIT),
        ),
    )
    sar_cycles_per_bit: int | None = field(
        default=None,
        metadata=field_spec(
            "clock cycles per bit a SAR ADC resolves: one conversion takes adc.bits x this +"
            " sar_sample_cycles (NeuroSim's SarADC: bits + 1 cycles); null = cycles_per_conversion",
            int_between(1, CYCLE_LIMIT),
        ),
    )
    sar_sample_cycles: int = field(
        default=0,
        metadata=field_spec(
            "clock cycles a SAR conversion spends sampling besides its bit cycles; read only"
            " with sar_cycles_per_bit",
            int_between(0, CYCLE_LIMIT),
        ),
    )
    line_buffer: bool = field(
        default=False,
        metadata=field_spec(
            "line-buffer pipelining: a layer works output row by output row and starts a row"
            " once the producer rows its window needs are in its buffer (input buffers then"
            " hold rows); false = a layer's job is a whole timestep's map (SpikeSim)"
        ),
    )


@frozen_section
class NocConfig:
    """Mesh network-on-chip joining the tiles."""

    mesh_rows: int | None = field(
        default=None,
        metadata=field_spec("mesh rows; null = sized by the mapping", int_between(1, 1024)),
    )
    mesh_cols: int | None = field(
        default=None,
        metadata=field_spec("mesh columns; null = sized by the mapping", int_between(1, 1024)),
    )
    flit_width_bits: int = field(
        default=32, metadata=field_spec("bits per flit", int_between(1, 4096))
    )
    router_latency_cycles: int = field(
        default=1,
        metadata=field_spec("cycles a flit spends in one router", int_between(0, CYCLE_LIMIT)),
    )
    link_latency_cycles: int = field(
        default=1,
        metadata=field_spec("cycles a flit spends on one link", int_between(0, CYCLE_LIMIT)),
    )
    packet: PacketFormat = field(
        default=PacketFormat.ADDRESS_EVENT,
        metadata=field_spec(
            "address_event: ceil(log2 neurons / flit_width_bits) flits per spike; bitmap:"
            " ceil(neurons sent to the tile / flit_width_bits) flits per timestep with a spike"
        ),
    )
    header_flits: int = field(
        default=0,
        metadata=field_spec(
            "head flits added to every packet (one packet per destination tile and timestep)",
            int_between(0, 4096),
        ),
    )
    router_buffer_flits: int | None = field(
        default=None,
        metadata=field_spec(
            "flits a router input buffer holds (credit-based flow control: a blocked packet"
            " holds the links behind it once these fill); null = unbounded",
            int_between(1, 1 << 20),
        ),
    )


@frozen_section
class MappingConfig:
    """How layers are laid onto crossbars and tiles onto the mesh (hwsim.hw.mapping)."""

    style: MappingStyle = field(
        default=MappingStyle.KERNEL_SPLIT,
        metadata=field_spec(
            "kernel_split: a crossbar set per kernel position, rows = C_in (SpikeSim);"
            " unrolled: rows = k_h k_w C_in"
        ),
    )
    placement: Placement = field(
        default=Placement.SNAKE,
        metadata=field_spec("tile order on the mesh: snake (boustrophedon) or row_major"),
    )


@frozen_section
class BufferConfig:
    """Storage sizes, bits (areas come from `area_um2.sram_bit`)."""

    tile_buffer_bits: int = field(
        default=8192,
        metadata=field_spec("tile buffer capacity, bits (SpikeSim: 64 x 128)", positive),
    )
    neuron_state_bits: int = field(
        default=22,
        metadata=field_spec("SRAM bits per neuron membrane state (SpikeSim: 22)", positive),
    )
    input_bits: int = field(
        default=22,
        metadata=field_spec(
            "SRAM bits per buffered layer-input activation (SpikeSim: 22)", positive
        ),
    )
    input_buffer_timesteps: int | None = field(
        default=None,
        metadata=field_spec(
            "timesteps of input spikes a layer's buffer holds before its producers stall;"
            " null = as many input bitmaps (C_in H_in W_in bits) as tile_buffer_bits x the"
            " layer's tiles hold, at least 1",
            int_between(1, 1 << 20),
        ),
    )
    neuron_memory_layers: int | None = field(
        default=None,
        metadata=field_spec(
            "neuron memory sized for the first N layers in graph order; null = every layer"
            " (SpikeSim's compute_area: 5)",
            positive,
        ),
    )
    tile_buffer_sharing: BufferSharing = field(
        default=BufferSharing.PER_CONSUMER,
        metadata=field_spec(
            "per_consumer: every layer's input buffer is its tiles' whole tile buffers; shared: a"
            " tile's buffer is split among the spike-receiving layers on it in proportion to"
            " their PEs there (cycle-level simulation, with input_buffer_timesteps null)"
        ),
    )


@frozen_section
class AreaTable:
    """Area of one instance of each component, um^2."""

    crossbar: float | None = field(
        default=None,
        metadata=field_spec(
            "one crossbar array, um^2; null = from crossbar_cell and the row and column"
            " periphery (exactly one of the two is given)",
            non_negative,
        ),
    )
    adc: float = field(metadata=field_spec("one ADC, um^2", non_negative))
    mux: float = field(metadata=field_spec("one column multiplexer, um^2", non_negative))
    shift_add: float = field(
        metadata=field_spec(
            "one shift-add unit (one per ADC column group per tile), um^2", non_negative
        )
    )
    temp_buffer: float = field(
        metadata=field_spec("temporary buffer of one tile, um^2", non_negative)
    )
    htree: float = field(metadata=field_spec("H-tree of one tile, um^2", non_negative))
    sram_bit: float = field(
        metadata=field_spec(
            "one SRAM bit (tile buffer, neuron and input memory), um^2", non_negative
        )
    )
    router: float = field(default=0.0, metadata=field_spec("one mesh router, um^2", non_negative))
    crossbar_cell: float | None = field(
        default=None,
        metadata=field_spec(
            "one RRAM cell, um^2: a rows x cols crossbar takes rows x cols x this + rows x"
            " crossbar_row + cols x crossbar_col; null = crossbar",
            non_negative,
        ),
    )
    crossbar_row: float = field(
        default=0.0,
        metadata=field_spec(
            "one row's periphery (driver, decoder slice), um^2; read only with crossbar_cell",
            non_negative,
        ),
    )
    crossbar_col: float = field(
        default=0.0,
        metadata=field_spec(
            "one column's periphery (sensing, precharge), um^2; read only with crossbar_cell",
            non_negative,
        ),
    )


@frozen_section
class LeakageTable:
    """Static (leakage) power of one instance of each component, mW, drawn whenever the chip is
    powered; instances are counted as for area (hwsim.hw.leakage)."""

    crossbar: float = field(
        default=0.0, metadata=field_spec("one crossbar array, mW (RRAM: 0)", non_negative)
    )
    adc: float = field(default=0.0, metadata=field_spec("one ADC, mW", non_negative))
    mux: float = field(default=0.0, metadata=field_spec("one column multiplexer, mW", non_negative))
    shift_add: float = field(
        default=0.0, metadata=field_spec("one shift-add unit, mW", non_negative)
    )
    temp_buffer: float = field(
        default=0.0, metadata=field_spec("the temporary buffer of one tile, mW", non_negative)
    )
    htree: float = field(
        default=0.0, metadata=field_spec("the H-tree of one tile, mW", non_negative)
    )
    router: float = field(default=0.0, metadata=field_spec("one mesh router, mW", non_negative))
    sram_bit: float = field(
        default=0.0,
        metadata=field_spec(
            "one SRAM bit (tile buffer, neuron memory, input buffer), mW", non_negative
        ),
    )
    fusion_unit: float = field(
        default=0.0,
        metadata=field_spec("the fusion unit, mW (on a chip with a head)", non_negative),
    )


@frozen_section
class OffchipConfig:
    """The chip's off-chip interface: each image comes in and its result goes out through it
    (full duplex: the two directions do not contend)."""

    bits_per_cycle: int = field(
        metadata=field_spec(
            "bits the interface moves per clock cycle, each way", int_between(1, 1 << 20)
        )
    )
    pj_per_bit: float = field(metadata=field_spec("energy of one bit moved, pJ", non_negative))
    input_value_bits: int = field(
        default=8, metadata=field_spec("bits of one input value (pixel)", int_between(1, 64))
    )
    result_bits: int | None = field(
        default=None,
        metadata=field_spec(
            "bits of one image's result; null = a class index, ceil(log2 classes)",
            int_between(1, 1 << 20),
        ),
    )


@frozen_section
class ProgrammingConfig:
    """Writing the weights into the crossbars once per mapping: every used cell is programmed in
    `verify_rounds` program-and-verify rounds of `pulses_per_round` write pulses and one verify
    read; a row's cells are pulsed and verified together (hwsim.hw.programming)."""

    pulse_pj: float = field(metadata=field_spec("one write pulse on one cell, pJ", non_negative))
    row_round_cycles: int = field(
        metadata=field_spec(
            "clock cycles of one program-and-verify round of one crossbar row",
            int_between(1, CYCLE_LIMIT),
        )
    )
    pulses_per_round: int = field(
        default=1,
        metadata=field_spec("write pulses per program-and-verify round", int_between(1, 4096)),
    )
    verify_rounds: int = field(
        default=1, metadata=field_spec("program-and-verify rounds per cell", int_between(1, 4096))
    )
    verify_pj: float = field(
        default=0.0, metadata=field_spec("one verify read of one cell, pJ", non_negative)
    )
    rows_in_parallel: int = field(
        default=1,
        metadata=field_spec(
            "crossbar rows (in different crossbars) programmed at once", int_between(1, 1 << 20)
        ),
    )


@frozen_section
class PartialSumConfig:
    """Partial sums of a layer whose crossbar rows span several PEs: each PE operation's outputs
    travel from its PE to the column group's reducing PE (hwsim.hw.psum)."""

    bits: int = field(metadata=field_spec("bits of one partial sum", int_between(1, 64)))
    accumulate_cycles: int = field(
        default=0,
        metadata=field_spec(
            "clock cycles the reducing PE spends adding one received PE operation's partial sums",
            int_between(0, CYCLE_LIMIT),
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


@frozen_section
class FusionUnitConfig:
    """Bayesian-fusion unit: IC/FC spike counters, PWL alpha LUT, posterior compare, argmax
    (the fixed-point datapath, its cycles and events: hwsim.hw.fusion_unit)."""

    counter_increment_pj: float = field(
        metadata=field_spec("one spike-counter increment, pJ", non_negative)
    )
    lut_read_pj: float = field(metadata=field_spec("one alpha-LUT read, pJ", non_negative))
    multiply_pj: float = field(metadata=field_spec("one fixed-point multiply, pJ", non_negative))
    compare_pj: float = field(metadata=field_spec("one compare (subtract), pJ", non_negative))
    area_um2: float = field(metadata=field_spec("area of the whole unit, um^2", non_negative))
    lut_cycles: int = field(
        metadata=field_spec(
            "cycles to read and interpolate alpha(t) once", int_between(0, CYCLE_LIMIT)
        )
    )
    cycles_per_class: int = field(
        metadata=field_spec(
            "cycles per class of posterior compare + argmax", int_between(0, CYCLE_LIMIT)
        )
    )
    counter_bits: int = field(
        default=16,
        metadata=field_spec(
            "bits of one IC or FC spike counter (saturating at 2^bits - 1)", int_between(1, 31)
        ),
    )
    counter_cycles_per_spike: int = field(
        default=1,
        metadata=field_spec(
            "cycles of one counter increment per arriving spike (IC and FC banks in parallel)",
            int_between(0, CYCLE_LIMIT),
        ),
    )
    lut_slope_frac_bits: int = field(
        default=16,
        metadata=field_spec(
            "fraction bits of the per-segment slope the LUT stores for interpolation",
            int_between(0, 32),
        ),
    )
    alpha_extra_frac_bits: int = field(
        default=8,
        metadata=field_spec(
            "fraction bits the interpolated alpha keeps beyond the LUT's LSB (at most"
            " lut_slope_frac_bits); 0 = rounded to the LUT's LSB",
            int_between(0, 32),
        ),
    )
    score_frac_bits: int = field(
        default=16,
        metadata=field_spec(
            "fraction bits of a quantised score (divider quotient, termination threshold)",
            int_between(1, 32),
        ),
    )
    compare: FusionCompare = field(
        default=FusionCompare.CROSS_MULTIPLY,
        metadata=field_spec(
            "cross_multiply: p_a > p_b as num_a den_b > num_b den_a (no division); divider:"
            " each p to score_frac_bits, then compared"
        ),
    )
    divider_cycles_per_class: int | None = field(
        default=None,
        metadata=field_spec(
            "cycles of one score division; null = score_frac_bits + 1 (radix 2, one quotient"
            " bit per cycle)",
            int_between(1, CYCLE_LIMIT),
        ),
    )
    termination: TerminationRule = field(
        default=TerminationRule.POSTERIOR,
        metadata=field_spec(
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
