"""SpikeSim-compatible energy: PE-operation events times per-event costs, multiplied in one place.

SpikeSim (Moitra et al., IEEE TCAD 2023, `ela_spikesim.py`; BayesianSpikeFusion `spikesim_ene.py`)
charges every PE operation of every layer every timestep the same energy

    PE_ar = k_h k_w E_xbar + G (E_adc + E_mux)
    E_PE  = L E_htree + E_mem + N E_neuron + G PE_ar + G S E_sub + G E_temp + E_tile

with G = crossbar.cols / adc.columns_per_adc (SpikeSim: X/8 = 8), L = pe.htree_links_per_pe (8),
N = pe.neuron_units_per_pe (4), S = pe.shift_adds_per_column_group (16), all energies in pJ from
the architecture's `energy_pj` table. A layer performs per timestep

    PE operations = ceil(C_out / cols) * ceil(C_in / rows) * H_out * W_out

(SpikeSim: X = rows = cols). Energy per timestep = sum over layers of PE operations * E_PE.

Here E_PE is split into the events of one PE operation (`pe_event_counts`) and their costs
(`EnergyTable`); `pe_energy_components_pj` multiplies them, component by component.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from hwsim.hw.arch import Architecture, EnergyTable
from hwsim.hw.layers import LayerGeometry, LayerKind

COMPONENTS: tuple[str, ...] = (
    "crossbar",
    "adc",
    "mux",
    "shift_add",
    "temp_buffer",
    "tile_buffer",
    "htree",
    "memory_fetch",
    "neuron",
)
"""Energy components of one PE operation, in report order."""

_COST_KEY: dict[str, str] = {
    "crossbar": "crossbar_read",
    "adc": "adc",
    "mux": "mux",
    "shift_add": "shift_add",
    "temp_buffer": "temp_buffer",
    "tile_buffer": "tile_buffer",
    "htree": "htree",
    "memory_fetch": "memory_fetch",
    "neuron": "neuron",
}
"""Component -> field of `EnergyTable` holding the energy of one of its events."""

LINEAR_KERNEL_ROWS = 4
"""BayesianSpikeFusion maps a Linear layer as a (4, 1) kernel over ceil(features / 4) channels
(`parallel_size = 4` in its spikesim_ene.py)."""


class SpikesimGeometry(NamedTuple):
    """A layer's shape as SpikeSim's energy formula counts it."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    out_hw: tuple[int, int]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def spikesim_geometry(layer: LayerGeometry) -> SpikesimGeometry:
    """(C_in, C_out, kernel, out_hw) of `layer` as SpikeSim / BayesianSpikeFusion count it.

    CONV: as is. GAP: kernel = the tapped map (H, W), C_in = C_out = channels, output 1x1.
    LINEAR: C_in = ceil(in_features / 4), kernel (4, 1), output 1x1.
    """
    if layer.kind is LayerKind.CONV:
        return SpikesimGeometry(layer.in_channels, layer.out_channels, layer.kernel, layer.out_hw)
    if layer.out_hw != (1, 1):
        raise ValueError(f"layer {layer.name!r}: a {layer.kind} layer must have out_hw (1, 1)")
    if layer.kind is LayerKind.GAP:
        if layer.in_channels != layer.out_channels:
            raise ValueError(f"layer {layer.name!r}: a GAP layer needs in_channels == out_channels")
        return SpikesimGeometry(layer.in_channels, layer.out_channels, layer.kernel, (1, 1))
    if layer.kind is LayerKind.LINEAR:
        if layer.kernel != (1, 1):
            raise ValueError(f"layer {layer.name!r}: a LINEAR layer must have kernel (1, 1)")
        rows = _ceil_div(layer.in_channels, LINEAR_KERNEL_ROWS)
        return SpikesimGeometry(rows, layer.out_channels, (LINEAR_KERNEL_ROWS, 1), (1, 1))
    raise ValueError(f"layer {layer.name!r}: unknown layer kind {layer.kind!r}")


def pe_operations(layer: LayerGeometry, arch: Architecture) -> int:
    """PE operations of `layer` per timestep: ceil(C_out/cols) ceil(C_in/rows) H_out W_out."""
    geom = spikesim_geometry(layer)
    h_out, w_out = geom.out_hw
    return (
        _ceil_div(geom.out_channels, arch.crossbar.cols)
        * _ceil_div(geom.in_channels, arch.crossbar.rows)
        * h_out
        * w_out
    )


def pe_event_counts(arch: Architecture, kernel: tuple[int, int]) -> dict[str, int]:
    """Events of each component in one PE operation with a (k_h, k_w) kernel (SpikeSim).

    With G = arch.adcs_per_crossbar: crossbar G k_h k_w, adc G^2, mux G^2, shift_add G S,
    temp_buffer G, tile_buffer 1, htree L, memory_fetch 1, neuron N (see module docstring).
    """
    k_h, k_w = kernel
    groups = arch.adcs_per_crossbar
    pe = arch.pe
    return {
        "crossbar": groups * k_h * k_w,
        "adc": groups * groups,
        "mux": groups * groups,
        "shift_add": groups * pe.shift_adds_per_column_group,
        "temp_buffer": groups,
        "tile_buffer": 1,
        "htree": pe.htree_links_per_pe,
        "memory_fetch": 1,
        "neuron": pe.neuron_units_per_pe,
    }


def event_costs_pj(table: EnergyTable) -> dict[str, float]:
    """Energy of one event of each component, pJ, from the architecture's energy table."""
    return {name: getattr(table, _COST_KEY[name]) for name in COMPONENTS}


def charge_pj(events: np.ndarray, table: EnergyTable) -> np.ndarray:
    """Energy, pJ, of event counts `events[..., c]` of `COMPONENTS[c]`: events x cost per event.

    The one place where counted events meet the energy reference table.
    """
    costs = event_costs_pj(table)
    return np.asarray(events) * np.array([costs[name] for name in COMPONENTS], dtype=np.float64)


def pe_energy_components_pj(arch: Architecture, kernel: tuple[int, int]) -> dict[str, float]:
    """Energy of one PE operation by component, pJ: events x cost per event.

    The values sum to SpikeSim's E_PE (3x3 kernel on arch_configs/spikesim.yaml: 828.4861472 pJ).
    """
    events = pe_event_counts(arch, kernel)
    energy = charge_pj(np.array([events[name] for name in COMPONENTS]), arch.energy_pj)
    return {name: float(value) for name, value in zip(COMPONENTS, energy, strict=True)}


@dataclass(frozen=True, eq=False)
class EnergyBreakdown:
    """Energy per timestep by layer and component.

    `energy_pj[l, c]` is layer `layers[l]`'s energy in component `components[c]`, pJ per
    timestep; `pe_operations[l]` its PE operations per timestep. Arrays are read-only copies.
    """

    layers: tuple[LayerGeometry, ...]
    components: tuple[str, ...]
    pe_operations: np.ndarray  # (L,) int64
    energy_pj: np.ndarray  # (L, C) float64, pJ per timestep

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        components = tuple(self.components)
        ops = np.array(self.pe_operations, dtype=np.int64).reshape(-1)
        energy = np.array(self.energy_pj, dtype=np.float64)
        if energy.ndim == 1 and energy.size == 0:
            energy = energy.reshape(0, len(components))
        if ops.shape != (len(layers),) or energy.shape != (len(layers), len(components)):
            raise ValueError(
                f"EnergyBreakdown: {len(layers)} layers and {len(components)} components need "
                f"pe_operations {(len(layers),)} and energy_pj {(len(layers), len(components))},"
                f" got {ops.shape} and {energy.shape}"
            )
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            raise ValueError("EnergyBreakdown: layer names must be unique")
        ops.flags.writeable = False
        energy.flags.writeable = False
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "components", components)
        object.__setattr__(self, "pe_operations", ops)
        object.__setattr__(self, "energy_pj", energy)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    @property
    def heads(self) -> tuple[int | None, ...]:
        """Each layer's head: None (backbone), an IC's tap block index, or FC_HEAD (-1)."""
        return tuple(layer.head for layer in self.layers)

    @property
    def total_pj(self) -> float:
        """Energy of one timestep, pJ."""
        return float(self.energy_pj.sum())

    def per_component_pj(self) -> dict[str, float]:
        """Energy per timestep by component, pJ, in `components` order."""
        sums = self.energy_pj.sum(axis=0)
        return {name: float(value) for name, value in zip(self.components, sums, strict=True)}

    def per_layer_pj(self) -> dict[str, float]:
        """Energy per timestep by layer name, pJ, in layer order."""
        sums = self.energy_pj.sum(axis=1)
        return {name: float(value) for name, value in zip(self.layer_names, sums, strict=True)}

    def select(
        self, which: Sequence[bool] | np.ndarray | Callable[[LayerGeometry], bool]
    ) -> EnergyBreakdown:
        """The layers picked by a boolean mask or by a predicate on `LayerGeometry`.

        E.g. `b.select(lambda layer: layer.head is None)` is the backbone and
        `b.select(lambda layer: layer.head == FC_HEAD)` the final classifier.
        """
        if callable(which):
            mask = np.array([bool(which(layer)) for layer in self.layers], dtype=bool)
        else:
            mask = np.asarray(which)
            if mask.dtype != np.bool_ or mask.shape != (len(self.layers),):
                raise ValueError(
                    f"select: expected a boolean mask of shape ({len(self.layers)},), "
                    f"got dtype {mask.dtype} shape {mask.shape}"
                )
        return EnergyBreakdown(
            layers=tuple(layer for layer, keep in zip(self.layers, mask, strict=True) if keep),
            components=self.components,
            pe_operations=self.pe_operations[mask],
            energy_pj=self.energy_pj[mask],
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per layer: layer, kind, head, pe_operations, `<component>_pj`..., total_pj."""
        frame = pd.DataFrame(
            {
                "layer": list(self.layer_names),
                "kind": [str(layer.kind) for layer in self.layers],
                "head": pd.array(list(self.heads), dtype="Int64"),
                "pe_operations": self.pe_operations.copy(),
            }
        )
        for c, name in enumerate(self.components):
            frame[f"{name}_pj"] = self.energy_pj[:, c].copy()
        frame["total_pj"] = self.energy_pj.sum(axis=1)
        return frame


def spikesim_energy(arch: Architecture, layers: Sequence[LayerGeometry]) -> EnergyBreakdown:
    """SpikeSim's energy per timestep: every PE operation of every layer charged E_PE.

    Applies SpikeSim's accounting to `arch` whatever its `energy_model`; multiply by the number
    of timesteps for a run's energy.
    """
    layers = tuple(layers)
    ops = np.array([pe_operations(layer, arch) for layer in layers], dtype=np.int64)
    events_per_op = np.array(
        [
            [pe_event_counts(arch, spikesim_geometry(layer).kernel)[c] for c in COMPONENTS]
            for layer in layers
        ],
        dtype=np.int64,
    ).reshape(len(layers), len(COMPONENTS))
    events = ops[:, None] * events_per_op  # (L, C) events per timestep
    return EnergyBreakdown(
        layers=layers,
        components=COMPONENTS,
        pe_operations=ops,
        energy_pj=charge_pj(events, arch.energy_pj),
    )
