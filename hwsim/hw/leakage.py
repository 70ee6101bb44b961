"""Static power: the leakage of every component instance while the chip is powered, and the
static energy it costs over a time.

The instances are those the area model counts (`hwsim.hw.area`): per tile, the crossbars the
mapping put there, pes_per_tile x G ADCs and muxes (G = crossbar.cols / adc.columns_per_adc),
G shift-add units, one temporary buffer, tile_buffer_bits SRAM bits, one H-tree and one router;
on the chip, the neuron memory's and the input buffer's SRAM bits and, on a chip with a head,
the fusion unit; on a chip whose graph has a local pooling layer, pooling.units_per_tile pooling
units per tile, each drawing `pooling.leakage_mw` (the `pooling` component, listed only there).
Each draws `leakage_mw.<component>` (mW per instance)::

    P_static = sum_components instances x leakage_mw           (mW)
    E_static = P_static x t_powered                            (1 mW x 1 ns = 1 pJ)

The whole mapped chip is powered for the whole time (no power gating), so a stall, a slower
clock or a longer run costs static energy, and early termination saves it. Without a
`leakage_mw` section the power is 0 (SpikeSim charges no static energy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.hw.area import (
    buffered_inputs,
    has_fusion_unit,
    memory_neurons,
    tile_crossbars,
    tile_unit_counts,
)
from hwsim.hw.mapping import ChipMapping
from hwsim.hw.pooling import POOLING

LEAKAGE_COMPONENTS: tuple[str, ...] = (
    "crossbar",
    "adc",
    "mux",
    "shift_add",
    "temp_buffer",
    "tile_buffer",
    "htree",
    "router",
    "neuron_memory",
    "input_buffer",
    "fusion_unit",
)
"""Components of the static power, in report order: the tiles', then the chip's."""


@dataclass(frozen=True)
class LeakagePower:
    """Static power of the mapped chip by component (`LEAKAGE_COMPONENTS`), mW."""

    per_component_mw: dict[str, float]

    @property
    def total_mw(self) -> float:
        return float(sum(self.per_component_mw.values()))

    def energy_pj(self, ns: np.ndarray | float) -> np.ndarray:
        """Static energy over `ns` powered nanoseconds, pJ (`static_energy_pj`)."""
        return static_energy_pj(self.total_mw, ns)


def static_energy_pj(power_mw: float, ns: np.ndarray | float) -> np.ndarray:
    """Energy of `power_mw` drawn for `ns` nanoseconds, pJ: mW x ns (1e-3 W x 1e-9 s = 1 pJ)."""
    return np.asarray(ns, np.float64) * float(power_mw)


def instance_counts(mapping: ChipMapping) -> dict[str, float]:
    """Instances of each leaking component on the mapped chip (module docstring): the tile
    counts summed over tiles; SRAM components in bits."""
    arch = mapping.arch
    tiles = mapping.tiles
    groups = arch.adcs_per_crossbar
    slots = arch.pe.pes_per_tile
    return {
        "crossbar": float(tile_crossbars(mapping).sum()),
        "adc": float(tiles * slots * groups),
        "mux": float(tiles * slots * groups),
        "shift_add": float(tiles * groups),
        "temp_buffer": float(tiles),
        "tile_buffer": float(tiles * arch.buffers.tile_buffer_bits),
        "htree": float(tiles),
        "router": float(tiles),
        "neuron_memory": float(memory_neurons(mapping) * arch.buffers.neuron_state_bits),
        "input_buffer": float(buffered_inputs(mapping) * arch.buffers.input_bits),
        "fusion_unit": 1.0 if has_fusion_unit(mapping) else 0.0,
    }


_PER_INSTANCE_KEY: dict[str, str] = {
    "crossbar": "crossbar",
    "adc": "adc",
    "mux": "mux",
    "shift_add": "shift_add",
    "temp_buffer": "temp_buffer",
    "tile_buffer": "sram_bit",
    "htree": "htree",
    "router": "router",
    "neuron_memory": "sram_bit",
    "input_buffer": "sram_bit",
    "fusion_unit": "fusion_unit",
}
"""Component -> field of `LeakageTable` holding one instance's leakage."""


def leakage_power(mapping: ChipMapping) -> LeakagePower:
    """Static power of the mapped chip by component, mW (all 0 without `leakage_mw`); with
    `pooling` last on a chip with pooling units (their `pooling.leakage_mw`)."""
    arch = mapping.arch
    table = arch.leakage_mw
    counts = instance_counts(mapping)
    if table is None:
        return LeakagePower({name: 0.0 for name in LEAKAGE_COMPONENTS})
    power = {name: counts[name] * getattr(table, _PER_INSTANCE_KEY[name]) for name in counts}
    units = tile_unit_counts(mapping).get(POOLING, 0)
    if units and arch.pooling is not None:
        power[POOLING] = mapping.tiles * units * arch.pooling.leakage_mw
    return LeakagePower(power)
