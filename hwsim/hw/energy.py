"""Energy: counted events times per-event costs, multiplied in one place (Accelergy's split of
an energy reference table from action counts).

SpikeSim (Moitra et al., IEEE TCAD 2023, `ela_spikesim.py`; BayesianSpikeFusion `spikesim_ene.py`)
charges every PE operation of every layer every timestep the same energy

    PE_ar = k_h k_w E_xbar + G (E_adc + E_mux)
    E_PE  = L E_htree + E_mem + N E_neuron + G PE_ar + G S E_sub + G E_temp + E_tile

(symbols and the events of one PE operation: `hwsim.hw.geometry`), all energies in pJ from the
architecture's `energy_pj` table, the ADC's scaled to `adc.bits` (`event_costs_pj`). Energy per
timestep = sum over layers of PE operations x E_PE, the PE operations being the mapping's
(`hwsim.hw.mapping`): one description of the chip for energy, area and timing.

Over a run (`run_energy`, dispatching on `arch.energy_model`), with activity counted by the
engine or the functional mode (`hwsim.hw.activity.LayerActivity`):

* `spikesim`: every PE operation of every layer every timestep, as above (NoC: 0).
* `event`: what the spikes caused: crossbar reads per crossbar read-out with a spiking row
  (`LayerActivity.crossbar_reads`), the other components per PE operation with a spiking row
  in its window (`active_pe_ops`), plus NoC flit-hops for the spikes actually sent, counted
  by `hwsim.hw.noc` per spike edge (a method pays only its own edges, `RunEnergy.method_pj`).
  With every input spiking always (`full_activity`) the PE components equal the `spikesim`
  model's exactly.
* Both: optional fusion-unit events (`FusionActivity`) x `arch.fusion_unit` costs.
* Both, for a graph with leaky populations (`hwsim.model.graph.Neuron`, docs/engine.md): a
  `leak` component after the others, `leak_multiplies` x energy_pj.leak_multiply: every
  neuron of a leaky population multiplies its membrane by the leak every timestep (and its
  input by the gain where that is not 1), whatever the spikes; charged to the population's
  sending layer (a MAX pool's population, the OR of its window, has none).
* Both, for a graph with local pooling layers (`hwsim.hw.pooling`): a `pooling` component
  before `leak`, the pooling operations (window inputs added or ORed: every one under
  `spikesim`, those of the input spikes present under `event`) x pooling.op_pj. A pooling
  layer has no PE operations (no crossbar, ADC, ... events); an AVG or SUM pool's neurons are
  charged `hwsim.hw.pooling.pool_neuron_events` neuron events (times its activity share).

What SpikeSim leaves out, each only when its section is given (`RunEnergy`, reported apart):

* Partial sums (`partial_sums`, `hwsim.hw.psum`): per layer and timestep, the share of its
  operations performed x its partial-sum vectors moved in a tile (`psum_htree`: H-tree link
  traversals x energy_pj.htree), its NoC flit-hops to other tiles (`psum_noc`: x
  noc_flit_hop) and the adds at its reducers (`psum_add`: x shift_add).
* Static energy (`leakage_mw`, `hwsim.hw.leakage`): P_static x the time the chip is powered;
  per timestep P_static (powered[t] - powered[t-1]) with powered[t] the time until timestep t's
  outputs are ready (default: the analytic model's `TimingResult.latency_ns`; the cycle-level
  simulation passes its own), so cumulative energy at t pays the leakage until t.
* Off-chip I/O (`offchip`, `hwsim.hw.offchip`): an image in and its result out, charged at the
  image's first timestep (every stopping point pays both).

Energies are per image: activity summed over `images` images is divided by `images`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hwsim.hw.activity import (
    FUSION_EVENTS,
    FusionActivity,
    LayerActivity,
    full_activity,
    leak_multiplies_per_neuron,
)
from hwsim.hw.arch import Architecture, EnergyModel, FusionUnitConfig
from hwsim.hw.geometry import READ_EVENTS, pe_event_counts
from hwsim.hw.leakage import leakage_power
from hwsim.hw.mapping import ChipMapping
from hwsim.hw.noc import Edge, ProducerTraffic, flit_hops, producer_traffic
from hwsim.hw.offchip import offchip_cost
from hwsim.hw.pooling import POOLING, pool_neuron_events, pool_operations, pool_share
from hwsim.hw.psum import chip_psums, flow_hops
from hwsim.hw.timing import run_timing
from hwsim.model.graph import FUSION_UNIT, Layer

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

LEAK = "leak"
"""The component of leaky neurons' multiplies (`leak_multiplies`), last, only in a run of a graph
with leaky populations."""

PSUM_COMPONENTS: tuple[str, ...] = ("psum_htree", "psum_noc", "psum_add")
"""Components of partial-sum traffic (`hwsim.hw.psum`), after `EVENT_COMPONENTS` when the
architecture has a `partial_sums` section."""


def run_components(arch: Architecture) -> tuple[str, ...]:
    """Components of a run's per-layer energy on `arch`: `EVENT_COMPONENTS`, then
    `PSUM_COMPONENTS` when partial sums are modelled."""
    if arch.partial_sums is None:
        return EVENT_COMPONENTS
    return (*EVENT_COMPONENTS, *PSUM_COMPONENTS)


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
    "psum_htree": "htree",
    "psum_noc": "noc_flit_hop",
    "psum_add": "shift_add",
    LEAK: "leak_multiply",
}
"""Component -> field of `EnergyTable` holding the energy of one of its events."""


def event_costs_pj(arch: Architecture, components: Sequence[str] = COMPONENTS) -> dict[str, float]:
    """Energy of one event of each component, pJ: the architecture's `energy_pj` table, the
    ADC's times `arch.adc_cost_scale` (2^(bits - reference_bits); 1 at the resolution the
    constant is given for, e.g. SpikeSim's 4-bit 2.03084 pJ)."""
    costs = {
        name: _pooling_pj(arch) if name == POOLING else getattr(arch.energy_pj, _COST_KEY[name])
        for name in components
    }
    if "crossbar" in costs:
        costs["crossbar"] = arch.crossbar_read_pj
    if "adc" in costs:
        costs["adc"] *= arch.adc_cost_scale
    return costs


def _pooling_pj(arch: Architecture) -> float:
    """One pooling operation, pJ (`pooling.op_pj`; 0 on a chip without a pooling unit)."""
    return 0.0 if arch.pooling is None else arch.pooling.op_pj


def fusion_costs_pj(unit: FusionUnitConfig) -> dict[str, float]:
    """Energy of one fusion-unit event of each kind in `FUSION_EVENTS`, pJ."""
    return {name: getattr(unit, f"{name}_pj") for name in FUSION_EVENTS}


def _times_costs(events: np.ndarray, costs: dict[str, float], names: Sequence[str]) -> np.ndarray:
    """events[..., k] x costs[names[k]]: the one multiplication of counts by costs."""
    return np.asarray(events) * np.array([costs[name] for name in names], dtype=np.float64)


def charge_pj(
    events: np.ndarray, arch: Architecture, components: Sequence[str] = COMPONENTS
) -> np.ndarray:
    """Energy, pJ, of event counts `events[..., c]` of `components[c]`: events x cost per event.

    Counted events meet the energy reference table here (and the fusion unit's costs in
    `charge_fusion_pj`, through the same multiplication).
    """
    return _times_costs(events, event_costs_pj(arch, components), components)


def charge_fusion_pj(events: np.ndarray, unit: FusionUnitConfig) -> np.ndarray:
    """Energy, pJ, of fusion-unit event counts `events[..., k]` of `FUSION_EVENTS[k]`."""
    return _times_costs(events, fusion_costs_pj(unit), FUSION_EVENTS)


def pe_energy_components_pj(arch: Architecture, kernel: tuple[int, int]) -> dict[str, float]:
    """Energy of one PE operation with a (k_h, k_w) kernel (reading k_h k_w crossbars; an
    unrolled operation reads one: pass (1, 1)) by component, pJ: events x cost per event. The
    values sum to SpikeSim's E_PE (3x3 kernel on arch_configs/spikesim.yaml: 828.4861472 pJ)."""
    events = pe_event_counts(arch, kernel[0] * kernel[1])
    energy = charge_pj(np.array([events[name] for name in COMPONENTS]), arch)
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


def _events_per_operation(mapping: ChipMapping) -> np.ndarray:
    """(L, C) events of one PE operation of each layer (`pe_event_counts`; none for a pooling
    layer, which has no PE operations)."""
    arch = mapping.arch
    none = dict.fromkeys(COMPONENTS, 0)
    rows = [
        none if m.is_pool else pe_event_counts(arch, m.crossbars_per_operation)
        for m in mapping.layers
    ]
    return np.array([[r[c] for c in COMPONENTS] for r in rows], np.int64).reshape(
        len(mapping.layers), len(COMPONENTS)
    )


def spikesim_energy(mapping: ChipMapping) -> EnergyBreakdown:
    """SpikeSim's energy per timestep: every PE operation of every mapped layer charged E_PE.

    Applies SpikeSim's accounting to the mapping's chip whatever its `energy_model`; multiply by
    the number of timesteps for a run's energy. A graph with pooling layers adds the `pooling`
    component (`hwsim.hw.pooling`: every window input) and its AVG/SUM pools' neuron events.
    """
    ops = mapping.pe_operations()
    events = ops[:, None] * _events_per_operation(mapping)  # (L, C) events per timestep
    components = COMPONENTS
    if any(m.is_pool for m in mapping.layers):  # + the pooling units, every window input
        pool_ops, pool_neurons = pooling_events(mapping, full_activity(mapping, 1))
        events = np.concatenate([events.astype(np.float64), pool_ops[0][:, None]], axis=1)
        events[:, COMPONENTS.index("neuron")] += pool_neurons[0]
        components = (*COMPONENTS, POOLING)
    return EnergyBreakdown(
        layers=mapping.graph.layers,
        components=components,
        pe_operations=ops,
        energy_pj=charge_pj(events, mapping.arch, components),
    )


# ------------------------------------------------------------------------ run activity


def paid_edges(graph_edges: Collection[Edge], layers: Collection[str]) -> set[Edge]:
    """The spike edges a set of layers pays for: from one of them to another, or to the fusion
    unit (a head's output counted there)."""
    return {(s, d) for s, d in graph_edges if s in layers and (d in layers or d == FUSION_UNIT)}


@dataclass(frozen=True, eq=False)
class RunEnergy:
    """Energy of a run, per image: `energy_pj[t, l, c]` of layer `layers[l]` in component
    `components[c]` at timestep t (`events` the event counts behind it; the NoC component is
    every spike edge of the layer; `run_components`), `edge_flit_hops[(src, dst)]` (T,) per
    spike edge (event model; empty otherwise), `fusion_pj[t]` of the fusion unit (zeros when
    not modelled), `static_pj[t]` the chip's leakage during timestep t and `offchip_pj` an
    image in and its result out (charged at t = 0); both 0 when not modelled."""

    arch: Architecture
    layers: tuple[Layer, ...]
    components: tuple[str, ...]
    energy_model: EnergyModel
    pe_operations: np.ndarray  # (T, L) charged PE operations per image
    events: np.ndarray  # (T, L, C)
    energy_pj: np.ndarray  # (T, L, C)
    fusion_events: np.ndarray  # (T, len(FUSION_EVENTS)) per image
    fusion_pj: np.ndarray  # (T,)
    edge_flit_hops: dict[Edge, np.ndarray] = field(default_factory=dict)
    static_pj: np.ndarray | None = None  # (T,); None: zeros
    offchip_pj: float = 0.0

    def __post_init__(self) -> None:
        if self.static_pj is None:
            object.__setattr__(self, "static_pj", np.zeros(self.timesteps))

    @property
    def timesteps(self) -> int:
        return self.energy_pj.shape[0]

    def _whole_chip_pj(self) -> np.ndarray:
        """(T,) what every method pays: static energy, and the off-chip I/O at t = 0."""
        out = np.asarray(self.static_pj, np.float64).copy()
        if self.timesteps:
            out[0] += self.offchip_pj
        return out

    @property
    def total_pj(self) -> float:
        """Energy of the whole run per image, pJ (layers, fusion unit, static, I/O)."""
        return float(
            self.energy_pj.sum() + self.fusion_pj.sum() + np.sum(self.static_pj) + self.offchip_pj
        )

    def per_timestep_pj(self) -> np.ndarray:
        """(T,) energy of each timestep per image, pJ."""
        return self.energy_pj.sum(axis=(1, 2)) + self.fusion_pj + self._whole_chip_pj()

    def cumulative_pj(self) -> np.ndarray:
        """(T,) energy up to and including each timestep per image, pJ."""
        return np.cumsum(self.per_timestep_pj())

    def per_component_pj(self) -> dict[str, float]:
        """Run energy per image by component, pJ; the fusion unit as "fusion_unit", then
        "static" and "offchip" where the architecture models them."""
        sums = self.energy_pj.sum(axis=(0, 1))
        out = {name: float(v) for name, v in zip(self.components, sums, strict=True)}
        out["fusion_unit"] = float(self.fusion_pj.sum())
        if self.arch.leakage_mw is not None:
            out["static"] = float(np.sum(self.static_pj))
        if self.arch.offchip is not None:
            out["offchip"] = float(self.offchip_pj)
        return out

    def method_pj(self, layers: Collection[str], fusion_unit: bool) -> np.ndarray:
        """(T,) energy per image of what a method keeps busy: the PE (and partial-sum)
        components of `layers`, the NoC flit-hops of the spike edges among them and to the
        fusion unit (`paid_edges`: never the spikes sent to a head it does not use), the fusion
        unit if it uses one, and the whole chip's static energy and off-chip I/O."""
        mask = np.array([g.name in layers for g in self.layers], bool)
        pe = [i for i, c in enumerate(self.components) if c != "noc"]
        out = self.energy_pj[:, mask][:, :, pe].sum(axis=(1, 2))
        edges = paid_edges(self.edge_flit_hops, layers)
        if edges:
            hops = sum(self.edge_flit_hops[e] for e in edges)
            out = out + charge_pj(np.asarray(hops)[:, None], self.arch, ("noc",))[:, 0]
        if self.arch.leakage_mw is not None or self.arch.offchip is not None:
            out = out + self._whole_chip_pj()
        return out + self.fusion_pj if fusion_unit else out

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


def leak_multiplies(layers: Sequence[Layer]) -> np.ndarray:
    """(L,) multiplies per image and timestep of each layer's leaky neurons, charged to the
    population's sending layer: its neurons x (1 for a leak != 1, + 1 for a gain != 1); 0 for
    IF neurons, for a layer that sends no spikes (a residual skip) and for a MAX pool
    (`hwsim.hw.activity.leak_multiplies_per_neuron`)."""
    return np.array(
        [layer.neurons * leak_multiplies_per_neuron(layer) for layer in layers], np.float64
    )


def pooling_events(mapping: ChipMapping, activity: LayerActivity) -> tuple[np.ndarray, np.ndarray]:
    """((T, L) pooling operations, (T, L) neuron events of the pools' neurons) per image
    (`hwsim.hw.pooling`); zeros for the layers that are not pooling layers."""
    arch, layers = mapping.arch, mapping.graph.layers
    share = pool_share(arch, layers, activity)
    neurons = np.array([pool_neuron_events(arch, g) for g in layers], np.float64)
    return pool_operations(arch, layers, activity), share * neurons[None, :]


def _pe_events(mapping: ChipMapping, activity: LayerActivity) -> tuple[np.ndarray, np.ndarray]:
    """(charged PE operations (T, L), PE-component events (T, L, C)) per image under the
    architecture's energy model (module docstring); none for a pooling layer, whatever the
    activity says."""
    per_op = _events_per_operation(mapping).astype(np.float64)
    steps = activity.timesteps
    if mapping.arch.energy_model is EnergyModel.SPIKESIM:
        ops = np.broadcast_to(mapping.pe_operations().astype(np.float64), (steps, len(per_op)))
        return np.array(ops), ops[:, :, None] * per_op[None]
    ops = np.asarray(activity.active_pe_ops, np.float64) / activity.images
    ops = np.where([m.is_pool for m in mapping.layers], 0.0, ops)  # a pool has no PE operations
    events = ops[:, :, None] * per_op[None]
    # read events: per crossbar read-out, events of one operation / crossbars it reads
    per_read = per_op / np.array([[m.crossbars_per_operation] for m in mapping.layers])
    reads = np.asarray(activity.crossbar_reads, np.float64) / activity.images
    for c, name in enumerate(COMPONENTS):
        if name in READ_EVENTS:
            events[:, :, c] = reads * per_read[None, :, c]
    return ops, events


def psum_events(mapping: ChipMapping, ops: np.ndarray) -> np.ndarray:
    """(T, L, len(PSUM_COMPONENTS)) partial-sum events per image for `ops` (T, L) performed PE
    operations (module docstring, `hwsim.hw.psum`): H-tree link traversals, NoC flit-hops,
    adds."""
    arch = mapping.arch
    out = np.zeros((*np.shape(ops), len(PSUM_COMPONENTS)))
    for i, p in enumerate(chip_psums(mapping).values()):
        if not p.moves or not p.pe_operations:
            continue
        share = np.asarray(ops, np.float64)[:, i] / p.pe_operations
        hops = sum(f.flits / arch.noc.flit_width_bits * flow_hops(f) for f in p.flows)
        out[:, i, 0] = share * (p.htree_vectors * arch.pe.htree_links_per_pe)
        out[:, i, 1] = share * hops
        out[:, i, 2] = share * p.adds
    return out


def run_energy(
    mapping: ChipMapping,
    activity: LayerActivity,
    *,
    traffic: dict[str, ProducerTraffic] | None = None,
    fusion: FusionActivity | None = None,
    powered_ns: np.ndarray | None = None,
) -> RunEnergy:
    """Energy of a run per image on the mapped chip under `arch.energy_model` (module
    docstring).

    `activity.layer_names` must be the mapping's layers, in order. The event model charges the
    NoC flit-hops of the spikes sent along `traffic` (default `producer_traffic(mapping)`).
    `fusion` needs `arch.fusion_unit`. With `leakage_mw`, `powered_ns` (T,) is the time the
    chip has been powered when timestep t's outputs are ready (default: the analytic model's
    `run_timing(...).latency_ns`).
    """
    arch = mapping.arch
    layers = mapping.graph.layers
    names = mapping.graph.names
    if tuple(activity.layer_names) != names:
        raise ValueError(
            f"activity layers {list(activity.layer_names)} do not match the mapping {list(names)}"
        )
    ops, pe_events = _pe_events(mapping, activity)
    steps = activity.timesteps
    leaks = leak_multiplies(layers)
    pooling = any(m.is_pool for m in mapping.layers)
    components = run_components(arch) + ((POOLING,) if pooling else ())
    components += (LEAK,) if leaks.any() else ()
    events = np.zeros((steps, len(layers), len(components)))
    events[:, :, : len(COMPONENTS)] = pe_events
    if arch.partial_sums is not None:
        events[:, :, len(EVENT_COMPONENTS) : len(run_components(arch))] = psum_events(mapping, ops)
    if pooling:
        pool_ops, pool_neurons = pooling_events(mapping, activity)
        events[:, :, components.index(POOLING)] = pool_ops
        events[:, :, COMPONENTS.index("neuron")] += pool_neurons
    if leaks.any():
        events[:, :, -1] = leaks
    edge_hops: dict[Edge, np.ndarray] = {}
    if arch.energy_model is EnergyModel.EVENT and layers:
        traffic = producer_traffic(mapping) if traffic is None else traffic
        for src, dst in mapping.graph.spike_edges():
            hops = flit_hops(activity, traffic, {(src, dst)})
            edge_hops[(src, dst)] = hops[:, names.index(src)]
            events[:, names.index(src), len(COMPONENTS)] += edge_hops[(src, dst)]
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
    static = np.zeros(steps)
    if arch.leakage_mw is not None:
        if powered_ns is None:
            powered_ns = run_timing(mapping, activity, traffic=traffic).latency_ns
        powered = np.asarray(powered_ns, np.float64)
        if powered.shape != (steps,):
            raise ValueError(f"powered_ns: expected shape {(steps,)}, got {powered.shape}")
        static = leakage_power(mapping).energy_pj(np.diff(powered, prepend=0.0))
    return RunEnergy(
        arch=arch,
        layers=layers,
        components=components,
        energy_model=arch.energy_model,
        pe_operations=ops,
        events=events,
        energy_pj=charge_pj(events, arch, components),
        fusion_events=fusion_events,
        fusion_pj=fusion_pj,
        edge_flit_hops=edge_hops,
        static_pj=static,
        offchip_pj=offchip_cost(arch, mapping.graph).energy_pj,
    )
