"""Energy: counted events times per-event costs, multiplied in one place (Accelergy's split of
an energy reference table from action counts).

SpikeSim (Moitra et al., IEEE TCAD 2023, `ela_spikesim.py`; BayesianSpikeFusion `spikesim_ene.py`)
charges every PE operation of every layer every timestep the same energy

    PE_ar = k_h k_w E_xbar + G (E_adc + E_mux)
    E_PE  = L E_htree + E_mem + N E_neuron + G PE_ar + G S E_sub + G E_temp + E_tile

(symbols and the events of one PE operation: `hwsim.hw.geometry`), all energies in pJ from the
architecture's `energy_pj` table. Energy per timestep = sum over layers of PE operations x E_PE.
`pe_energy_components_pj` multiplies one operation's events by their costs, component by
component.

Over a run (`run_energy`, dispatching on `arch.energy_model`), with activity counted by the
engine or the functional mode (`hwsim.hw.activity.LayerActivity`):

* `spikesim`: every PE operation of every layer every timestep, as above (NoC: 0).
* `event`: only *active* PE operations, those for which some input row in the output
  position's window (of that PE's input-channel group) spiked, each charged the same per-op
  events; plus NoC flit-hops for the spikes actually sent, counted by `hwsim.hw.noc`
  (`flit_hops`). With every input spiking always (`full_activity`) the SpikeSim components
  equal the `spikesim` model's exactly.
* Both: optional fusion-unit events (`FusionActivity`) x `arch.fusion_unit` costs.

Energies are per image: activity summed over `images` images is divided by `images`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwsim.graph import Layer
from hwsim.hw.activity import FUSION_EVENTS, FusionActivity, LayerActivity
from hwsim.hw.arch import Architecture, EnergyModel, EnergyTable, FusionUnitConfig
from hwsim.hw.geometry import (
    mapped_pe_event_counts,
    pe_event_counts,
    pe_operations,
    spikesim_geometry,
)

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

EVENT_COMPONENTS: tuple[str, ...] = (*COMPONENTS, "noc")
"""Components of a run's energy: the PE operation's, then NoC flit-hops."""

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
    "noc": "noc_flit_hop",
}
"""Component -> field of `EnergyTable` holding the energy of one of its events."""


def event_costs_pj(table: EnergyTable, components: Sequence[str] = COMPONENTS) -> dict[str, float]:
    """Energy of one event of each component, pJ, from the architecture's energy table."""
    return {name: getattr(table, _COST_KEY[name]) for name in components}


def fusion_costs_pj(unit: FusionUnitConfig) -> dict[str, float]:
    """Energy of one fusion-unit event of each kind in `FUSION_EVENTS`, pJ."""
    return {name: getattr(unit, f"{name}_pj") for name in FUSION_EVENTS}


def _times_costs(events: np.ndarray, costs: dict[str, float], names: Sequence[str]) -> np.ndarray:
    """events[..., k] x costs[names[k]]: the one multiplication of counts by costs."""
    return np.asarray(events) * np.array([costs[name] for name in names], dtype=np.float64)


def charge_pj(
    events: np.ndarray, table: EnergyTable, components: Sequence[str] = COMPONENTS
) -> np.ndarray:
    """Energy, pJ, of event counts `events[..., c]` of `components[c]`: events x cost per event.

    Counted events meet the energy reference table here (and the fusion unit's costs in
    `charge_fusion_pj`, through the same multiplication).
    """
    return _times_costs(events, event_costs_pj(table, components), components)


def charge_fusion_pj(events: np.ndarray, unit: FusionUnitConfig) -> np.ndarray:
    """Energy, pJ, of fusion-unit event counts `events[..., k]` of `FUSION_EVENTS[k]`."""
    return _times_costs(events, fusion_costs_pj(unit), FUSION_EVENTS)


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
    timestep; `pe_operations[l]` its PE operations per timestep (int64; float64 when it is a
    mean over a run's timesteps and images). Arrays are read-only copies.
    """

    layers: tuple[Layer, ...]
    components: tuple[str, ...]
    pe_operations: np.ndarray  # (L,) int64
    energy_pj: np.ndarray  # (L, C) float64, pJ per timestep

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        components = tuple(self.components)
        ops = np.asarray(self.pe_operations)
        ops = ops.astype(np.int64 if ops.dtype.kind in "iub" else np.float64).reshape(-1)
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
        self, which: Sequence[bool] | np.ndarray | Callable[[Layer], bool]
    ) -> EnergyBreakdown:
        """The layers picked by a boolean mask or by a predicate on `Layer`.

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


def spikesim_energy(arch: Architecture, layers: Sequence[Layer]) -> EnergyBreakdown:
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


# ------------------------------------------------------------------------ run activity


@dataclass(frozen=True, eq=False)
class RunEnergy:
    """Energy of a run, per image: `energy_pj[t, l, c]` of layer `layers[l]` in component
    `components[c]` at timestep t (`events` the event counts behind it), and `fusion_pj[t]`
    of the fusion unit (zeros when not modelled)."""

    layers: tuple[Layer, ...]
    components: tuple[str, ...]
    energy_model: EnergyModel
    pe_operations: np.ndarray  # (T, L) charged PE operations per image
    events: np.ndarray  # (T, L, C)
    energy_pj: np.ndarray  # (T, L, C)
    fusion_events: np.ndarray  # (T, len(FUSION_EVENTS)) per image
    fusion_pj: np.ndarray  # (T,)

    @property
    def timesteps(self) -> int:
        return self.energy_pj.shape[0]

    @property
    def total_pj(self) -> float:
        """Energy of the whole run per image, pJ (layers and fusion unit)."""
        return float(self.energy_pj.sum() + self.fusion_pj.sum())

    def per_timestep_pj(self) -> np.ndarray:
        """(T,) energy of each timestep per image, pJ."""
        return self.energy_pj.sum(axis=(1, 2)) + self.fusion_pj

    def cumulative_pj(self) -> np.ndarray:
        """(T,) energy up to and including each timestep per image, pJ."""
        return np.cumsum(self.per_timestep_pj())

    def per_component_pj(self) -> dict[str, float]:
        """Run energy per image by component, pJ; the fusion unit as "fusion_unit"."""
        sums = self.energy_pj.sum(axis=(0, 1))
        out = {name: float(v) for name, v in zip(self.components, sums, strict=True)}
        out["fusion_unit"] = float(self.fusion_pj.sum())
        return out

    def breakdown(self) -> EnergyBreakdown:
        """Mean energy per timestep per image, by layer and component (fusion unit excluded),
        with the mean charged PE operations per timestep."""
        steps = max(self.timesteps, 1)
        return EnergyBreakdown(
            layers=self.layers,
            components=self.components,
            pe_operations=self.pe_operations.sum(axis=0) / steps,
            energy_pj=self.energy_pj.sum(axis=0) / steps,
        )


def _spikesim_ops(
    arch: Architecture, layers: tuple[Layer, ...], activity: LayerActivity
) -> tuple[np.ndarray, np.ndarray]:
    ops = np.array([pe_operations(g, arch) for g in layers], np.float64)
    per_op = np.array(
        [
            [pe_event_counts(arch, spikesim_geometry(g).kernel)[c] for c in COMPONENTS]
            for g in layers
        ]
    ).reshape(len(layers), len(COMPONENTS))
    return np.broadcast_to(ops, (activity.timesteps, len(layers))), per_op


def _event_ops(
    arch: Architecture, layers: tuple[Layer, ...], activity: LayerActivity
) -> tuple[np.ndarray, np.ndarray]:
    ops = np.asarray(activity.active_pe_ops, np.float64) / activity.images
    per_op = np.array(
        [[mapped_pe_event_counts(g, arch)[c] for c in COMPONENTS] for g in layers]
    ).reshape(len(layers), len(COMPONENTS))
    return ops, per_op


_CHARGED_OPS = {EnergyModel.SPIKESIM: _spikesim_ops, EnergyModel.EVENT: _event_ops}
"""energy_model -> (charged PE ops per image (T, L), events per PE op (L, C))."""


def run_energy(
    arch: Architecture,
    layers: Sequence[Layer],
    activity: LayerActivity,
    *,
    noc_flit_hops: np.ndarray | None = None,
    fusion: FusionActivity | None = None,
) -> RunEnergy:
    """Energy of a run per image under `arch.energy_model` (module docstring).

    `activity.layer_names` must be the names of `layers`, in order. `noc_flit_hops` (T, L)
    per image (`hwsim.hw.noc.flit_hops`) is charged in the event model, which needs it.
    `fusion` needs `arch.fusion_unit`.
    """
    layers = tuple(layers)
    names = tuple(g.name for g in layers)
    if tuple(activity.layer_names) != names:
        raise ValueError(
            f"activity layers {list(activity.layer_names)} do not match the geometry {list(names)}"
        )
    ops, per_op = _CHARGED_OPS[arch.energy_model](arch, layers, activity)
    steps = activity.timesteps
    events = np.zeros((steps, len(layers), len(EVENT_COMPONENTS)))
    events[:, :, : len(COMPONENTS)] = ops[:, :, None] * per_op[None, :, :]
    if arch.energy_model is EnergyModel.EVENT and layers:
        if noc_flit_hops is None:
            raise ValueError("the event energy model needs the run's NoC flit-hops")
        hops = np.asarray(noc_flit_hops, np.float64)
        if hops.shape != (steps, len(layers)):
            raise ValueError(
                f"noc_flit_hops: expected shape {(steps, len(layers))}, got {hops.shape}"
            )
        events[:, :, -1] = hops
    fusion_events = np.zeros((steps, len(FUSION_EVENTS)))
    fusion_pj = np.zeros(steps)
    if fusion is not None:
        if arch.fusion_unit is None:
            raise ValueError(f"{arch.name}: fusion activity given but no fusion_unit section")
        if fusion.events.shape != (steps, len(FUSION_EVENTS)):
            raise ValueError(
                f"fusion events: expected shape {(steps, len(FUSION_EVENTS))}, "
                f"got {fusion.events.shape}"
            )
        fusion_events = np.asarray(fusion.events, np.float64) / fusion.images
        fusion_pj = charge_fusion_pj(fusion_events, arch.fusion_unit).sum(axis=1)
    return RunEnergy(
        layers=layers,
        components=EVENT_COMPONENTS,
        energy_model=arch.energy_model,
        pe_operations=np.array(ops),
        events=events,
        energy_pj=charge_pj(events, arch.energy_pj, EVENT_COMPONENTS),
        fusion_events=fusion_events,
        fusion_pj=fusion_pj,
    )
