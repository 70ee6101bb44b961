"""Chip area from the mapping and the architecture's `area_um2` constants (um^2).

Per tile (SpikeSim's tile, `ela_spikesim.py` compute_area, generalised to the mapping):

    A_tile = n_xbar A_xbar + pes_per_tile G (s A_adc + A_mux) + G A_shift_add
             + A_temp_buffer + tile_buffer_bits A_sram_bit + A_htree + A_router

(G = crossbar.cols / adc.columns_per_adc ADCs per PE, s = `Architecture.adc_cost_scale`, the
ADC's area at adc.bits; A_xbar = `Architecture.crossbar_area_um2`: area_um2.crossbar, or from
a cell and its row and column periphery, rows cols A_cell + rows A_row + cols A_col), n_xbar
being the crossbars the mapping put in the tile's PEs (SpikeSim: k_h k_w per PE). A tile is
built whole: its pes_per_tile PE slots have their ADCs and muxes even where the mapping leaves
a slot empty (SpikeSim: n_tiles x Tile_ar_ov), but an empty slot holds no crossbars (SpikeSim
counts k_h k_w there too). Chip-level:

    neuron_memory = sum over the first `buffers.neuron_memory_layers` layers (null: all) of
                    output neurons x neuron_state_bits x A_sram_bit
    input_buffer  = sum over layers of input activations x input_bits x A_sram_bit
    fusion_unit   = fusion_unit.area_um2 when the chip has a classifier head (0 otherwise or
                    when not modelled)

Units a network needs beyond SpikeSim's tile, in every tile, as extra tile components after
`TILE_COMPONENTS` (`EXTRA_TILE_COMPONENTS`, present only where charged):

    pooling_unit    = pooling.units_per_tile x pooling.area_um2, on a chip whose graph has a
                      local pooling layer (`hwsim.hw.pooling`)
    leak_multiplier = pes_per_tile x pe.neuron_units_per_pe x neuron_leak.multiplier_area_um2
                      (one multiplier per neuron unit of every PE slot), on a chip whose graph
                      has a population that multiplies (leak or gain)

(a residual skip conv has no neurons of its own; its partial sums join conv2's). SpikeSim sizes
the neuron memory for its first five layers (`out_ch_list[0:5]`), as spikesim.yaml says.
`spikesim_tile_area_um2` is SpikeSim's Tile_ar_ov with a uniform k x k kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwsim.hw.activity import input_activations, leak_multiplies_per_neuron, sent_spikes
from hwsim.hw.arch import Architecture, AreaTable
from hwsim.hw.mapping import ChipMapping
from hwsim.hw.pooling import POOLING
from hwsim.model.graph import FUSION_UNIT

TILE_COMPONENTS: tuple[str, ...] = (
    "crossbar",
    "adc",
    "mux",
    "shift_add",
    "temp_buffer",
    "tile_buffer",
    "htree",
    "router",
)
"""Area components inside a tile, in report order."""

LEAK_MULTIPLIER = "leak_multiplier"
"""The tile component of the neuron units' leak multipliers."""

EXTRA_TILE_COMPONENTS: tuple[str, ...] = (POOLING, LEAK_MULTIPLIER)
"""Tile components a network may need beyond SpikeSim's tile, after `TILE_COMPONENTS` in
report order, each present only where charged (`tile_units_um2`)."""

CHIP_COMPONENTS: tuple[str, ...] = ("neuron_memory", "input_buffer", "fusion_unit")
"""Area components outside the tiles."""


def _table(arch: Architecture) -> AreaTable:
    if arch.area_um2 is None:
        raise ValueError(f"{arch.name}: no area_um2 section; area is not modelled for this arch")
    return arch.area_um2


def spikesim_tile_area_um2(arch: Architecture, kernel: tuple[int, int] = (3, 3)) -> float:
    """SpikeSim's Tile_ar_ov = G Sub + Temp_Buff + Tile_buff + pe_per_tile PE_ar + Htree, with
    PE_ar = k_h k_w xbar + G (ADC + MUX); um^2 (the router, absent in SpikeSim, is added)."""
    a = _table(arch)
    groups = arch.adcs_per_crossbar
    pe_area = kernel[0] * kernel[1] * arch.crossbar_area_um2 + groups * (
        arch.adc_cost_scale * a.adc + a.mux
    )
    return (
        groups * a.shift_add
        + a.temp_buffer
        + arch.buffers.tile_buffer_bits * a.sram_bit
        + arch.pe.pes_per_tile * pe_area
        + a.htree
        + a.router
    )


@dataclass(frozen=True, eq=False)
class AreaBreakdown:
    """`tile_um2[i, c]`: tile i's area in `tile_components[c]` (`TILE_COMPONENTS`, then the
    charged `EXTRA_TILE_COMPONENTS`); `chip_um2`: the components outside tiles
    (`CHIP_COMPONENTS`). um^2."""

    tile_um2: np.ndarray
    chip_um2: dict[str, float]
    tile_components: tuple[str, ...] = TILE_COMPONENTS

    @property
    def total_um2(self) -> float:
        return float(self.tile_um2.sum() + sum(self.chip_um2.values()))

    @property
    def total_mm2(self) -> float:
        return self.total_um2 * 1e-6

    def per_tile_um2(self) -> np.ndarray:
        """(tiles,) area of each tile, um^2."""
        return self.tile_um2.sum(axis=1)

    def per_component_um2(self) -> dict[str, float]:
        """Area by component, um^2: tile components summed over tiles, then chip components."""
        sums = self.tile_um2.sum(axis=0)
        out = {name: float(v) for name, v in zip(self.tile_components, sums, strict=True)}
        out.update(self.chip_um2)
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per component: component, area_um2, share."""
        parts = self.per_component_um2()
        total = self.total_um2
        return pd.DataFrame(
            {
                "component": list(parts),
                "area_um2": list(parts.values()),
                "share": [v / total if total else 0.0 for v in parts.values()],
            }
        )


def tile_crossbars(mapping: ChipMapping) -> np.ndarray:
    """(tiles,) crossbars the mapping put in each tile's PEs (float64 counts)."""
    crossbars = np.zeros(mapping.tiles)
    for m in mapping.layers:
        if not m.pes:  # a pooling layer: on its tile's pooling unit
            continue
        per_pe = np.full(m.pes, m.crossbars_per_pe, dtype=np.float64)
        per_pe[-1] = m.crossbars - m.crossbars_per_pe * (m.pes - 1)
        np.add.at(crossbars, m.pe_tiles, per_pe)
    return crossbars


def memory_neurons(mapping: ChipMapping) -> int:
    """Neuron states the neuron memory holds: the output neurons of the first
    `buffers.neuron_memory_layers` layers (all: null)."""
    layers = mapping.graph.layers
    return sum(sent_spikes(layers[: mapping.arch.buffers.neuron_memory_layers]))


def buffered_inputs(mapping: ChipMapping) -> int:
    """Layer-input activations the input buffer holds: every layer's input map."""
    return sum(input_activations(mapping.graph.layers))


def has_fusion_unit(mapping: ChipMapping) -> bool:
    """Whether the mapped chip carries the fusion unit: it has a classifier head and the
    architecture models the unit."""
    heads = any(dst == FUSION_UNIT for _, dst in mapping.graph.spike_edges())
    return heads and mapping.arch.fusion_unit is not None


def has_pooling_unit(mapping: ChipMapping) -> bool:
    """Whether the mapped chip carries pooling units: its graph has a pooling layer (the
    mapping refuses one without `arch.pooling`)."""
    return mapping.arch.pooling is not None and any(m.is_pool for m in mapping.layers)


def has_leak_multiplier(mapping: ChipMapping) -> bool:
    """Whether the mapped chip's neuron units carry leak multipliers: its graph has a
    population that multiplies (leak or gain) and the architecture models them."""
    leaky = any(leak_multiplies_per_neuron(g) for g in mapping.graph.layers)
    return leaky and mapping.arch.neuron_leak is not None


def tile_unit_counts(mapping: ChipMapping) -> dict[str, int]:
    """Instances per tile of each charged `EXTRA_TILE_COMPONENTS` entry (module docstring)."""
    arch = mapping.arch
    out: dict[str, int] = {}
    if has_pooling_unit(mapping):
        out[POOLING] = arch.pooling.units_per_tile
    if has_leak_multiplier(mapping):
        out[LEAK_MULTIPLIER] = arch.pe.pes_per_tile * arch.pe.neuron_units_per_pe
    return out


def tile_units_um2(mapping: ChipMapping) -> dict[str, float]:
    """Area per tile of each charged `EXTRA_TILE_COMPONENTS` entry, um^2 (module docstring)."""
    arch = mapping.arch
    each = {
        POOLING: 0.0 if arch.pooling is None else arch.pooling.area_um2,
        LEAK_MULTIPLIER: 0.0 if arch.neuron_leak is None else arch.neuron_leak.multiplier_area_um2,
    }
    return {name: n * each[name] for name, n in tile_unit_counts(mapping).items()}


def chip_area(mapping: ChipMapping) -> AreaBreakdown:
    """Area of every tile by component, plus neuron memory, input buffer and fusion unit."""
    arch = mapping.arch
    a = _table(arch)
    groups = arch.adcs_per_crossbar
    slots = arch.pe.pes_per_tile
    crossbars = tile_crossbars(mapping)
    ones = np.ones(mapping.tiles)
    tile = np.stack(
        [
            crossbars * arch.crossbar_area_um2,
            ones * slots * groups * arch.adc_cost_scale * a.adc,
            ones * slots * groups * a.mux,
            ones * groups * a.shift_add,
            ones * a.temp_buffer,
            ones * arch.buffers.tile_buffer_bits * a.sram_bit,
            ones * a.htree,
            ones * a.router,
        ],
        axis=1,
    ).reshape(mapping.tiles, len(TILE_COMPONENTS))
    units = tile_units_um2(mapping)
    if units:
        tile = np.concatenate([tile, ones[:, None] * np.array(list(units.values()))[None]], axis=1)
    neurons = memory_neurons(mapping)
    inputs = buffered_inputs(mapping)
    fusion = arch.fusion_unit
    chip = {
        "neuron_memory": neurons * arch.buffers.neuron_state_bits * a.sram_bit,
        "input_buffer": inputs * arch.buffers.input_bits * a.sram_bit,
        "fusion_unit": fusion.area_um2 if fusion is not None and has_fusion_unit(mapping) else 0.0,
    }
    tile.flags.writeable = False
    return AreaBreakdown(tile, chip, (*TILE_COMPONENTS, *units))
