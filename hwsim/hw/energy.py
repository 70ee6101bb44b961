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

Over a run (`run_energy`, dispatching on `arch.energy_model`), with activity counted by the
engine or `hwsim.hw.functional` (`LayerActivity`):

* `spikesim`: every PE operation of every layer every timestep, as above (NoC: 0).
* `event`: only *active* PE operations, those for which some input row in the output
  position's window (of that PE's input-channel group) spiked, each charged the same per-op
  events; plus NoC flit-hops for the spikes actually sent, flit_hops = output spikes x flits
  per spike x hops per spike (`hwsim.hw.mapping.spike_routes`, XY routing between the mapped
  tiles). A PE operation is counted as SpikeSim counts it (one crossbar column per output
  channel: ceil(C_out / cols) column groups); `unrolled` mapping makes an operation one
  crossbar (row group of the k_h k_w C_in rows) and charges it as a (1, 1) kernel.
  With every input spiking always (`full_activity`) the SpikeSim components equal the
  `spikesim` model's exactly.
* Both: optional fusion-unit events (`FusionActivity`) x `arch.fusion_unit` costs.

Energies are per image: activity summed over `images` images is divided by `images`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from hwsim.graph import Layer, LayerKind
from hwsim.hw.arch import Architecture, EnergyModel, EnergyTable, FusionUnitConfig, MappingStyle

if TYPE_CHECKING:
    from hwsim.hw.mapping import Mapping

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

FUSION_EVENTS: tuple[str, ...] = ("counter_increment", "lut_read", "multiply", "compare")
"""Events of the fusion unit, in `FusionActivity.events` column order."""

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


def spikesim_geometry(layer: Layer) -> SpikesimGeometry:
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


def pe_operations(layer: Layer, arch: Architecture) -> int:
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


# ------------------------------------------------------------------ PE ops under a mapping


def mapped_pe_operations(layer: Layer, arch: Architecture) -> int:
    """PE operations of `layer` per timestep under `arch.mapping.style`.

    kernel_split: SpikeSim's `pe_operations`. unrolled: ceil(k_h k_w C_in / rows)
    ceil(C_out / cols) H_out W_out (C_in, kernel as `spikesim_geometry`).
    """
    if arch.mapping.style is MappingStyle.KERNEL_SPLIT:
        return pe_operations(layer, arch)
    geom = spikesim_geometry(layer)
    rows = geom.kernel[0] * geom.kernel[1] * geom.in_channels
    return (
        _ceil_div(geom.out_channels, arch.crossbar.cols)
        * _ceil_div(rows, arch.crossbar.rows)
        * geom.out_hw[0]
        * geom.out_hw[1]
    )


def mapped_pe_event_counts(layer: Layer, arch: Architecture) -> dict[str, int]:
    """Events of one PE operation of `layer`: `pe_event_counts` with the layer's kernel
    (kernel_split) or a (1, 1) kernel, one crossbar per operation (unrolled)."""
    if arch.mapping.style is MappingStyle.KERNEL_SPLIT:
        return pe_event_counts(arch, spikesim_geometry(layer).kernel)
    return pe_event_counts(arch, (1, 1))


def layer_patches(
    x: torch.Tensor, layer: Layer, *, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """A layer's crossbar input rows, position-major (P, N, L, C_in): kernel position p, image
    n, output position l, row channel c, as `spikesim_geometry` lays them out.

    CONV: x (N, C, H, W) with the layer's kernel, `stride` and zero `padding` (p = i k_w + j
    for kernel offset (i, j); l = row-major output position). GAP: x (N, C, H, W), one window
    over the whole map (p = the map position). LINEAR: x (N, F), zero-padded to 4 C' features,
    feature f on row channel f // 4 of kernel position f % 4.
    """
    if layer.kind is LayerKind.LINEAR:
        n, features = x.shape
        rows = _ceil_div(features, LINEAR_KERNEL_ROWS)
        pad = rows * LINEAR_KERNEL_ROWS - features
        x = F.pad(x, (0, pad)) if pad else x
        return (
            x.reshape(n, rows, LINEAR_KERNEL_ROWS)
            .permute(2, 0, 1)
            .reshape(LINEAR_KERNEL_ROWS, n, 1, rows)
        )
    n, c = x.shape[:2]
    if layer.kind is LayerKind.GAP:
        return x.reshape(n, c, -1).permute(2, 0, 1).reshape(-1, n, 1, c)
    kh, kw = layer.kernel
    ho, wo = layer.out_hw
    xp = F.pad(x, (padding, padding, padding, padding)) if padding else x
    out = torch.empty((kh * kw, n, ho, wo, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            view = xp[
                :, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride
            ]
            out[i * kw + j].copy_(view.permute(0, 2, 3, 1))
    return out.reshape(kh * kw, n, ho * wo, c)


def active_pe_operations(
    layer: Layer, arch: Architecture, patches: torch.Tensor
) -> torch.Tensor:
    """Active PE operations per image, (N,) int64, from binary input rows (P, N, L, C)
    (`layer_patches`).

    A PE operation (output column group, input row group, output position) is active if some
    row of its group spiked in that position's window; kernel_split groups are C_in channel
    groups across all k_h k_w positions (one SpikeSim PE), unrolled groups cut the flattened
    P C_in rows. Column groups: ceil(C_out / cols), as SpikeSim counts them.
    """
    positions, n, positions_out, channels = patches.shape
    rows = arch.crossbar.rows
    spiking = patches != 0
    if arch.mapping.style is MappingStyle.KERNEL_SPLIT:
        groups = _ceil_div(channels, rows)
        any_pos = spiking.any(dim=0)  # (N, L, C)
        pad = groups * rows - channels
        if pad:
            any_pos = F.pad(any_pos, (0, pad))
        active = any_pos.reshape(n, positions_out, groups, rows).any(dim=3)
    else:
        flat = spiking.permute(1, 2, 0, 3).reshape(n, positions_out, positions * channels)
        groups = _ceil_div(positions * channels, rows)
        pad = groups * rows - positions * channels
        if pad:
            flat = F.pad(flat, (0, pad))
        active = flat.reshape(n, positions_out, groups, rows).any(dim=3)
    col_groups = _ceil_div(spikesim_geometry(layer).out_channels, arch.crossbar.cols)
    return active.sum(dim=(1, 2)).to(torch.int64) * col_groups


# ------------------------------------------------------------------------ run activity


@dataclass(frozen=True, eq=False)
class LayerActivity:
    """What the spikes of a run caused, per timestep and geometry layer, summed over `images`.

    `active_pe_ops[t, l]`: PE operations of layer `layer_names[l]` at timestep t with at least
    one spiking input row (`active_pe_operations`); `input_spikes[t, l]`: spikes arriving at
    the layer's rows (for the analog first layer: non-zero inputs); `output_spikes[t, l]`:
    spikes the layer's neurons sent (0 for a residual skip conv, whose partial sums join its
    block's conv2 neurons; conv2 carries the join's spikes). All (T, L), int64 or float64.
    """

    layer_names: tuple[str, ...]
    images: int
    active_pe_ops: np.ndarray
    input_spikes: np.ndarray
    output_spikes: np.ndarray

    def __post_init__(self) -> None:
        shape = (self.timesteps, len(self.layer_names))
        for name in ("active_pe_ops", "input_spikes", "output_spikes"):
            value = np.asarray(getattr(self, name))
            if value.shape != shape:
                raise ValueError(f"LayerActivity.{name}: expected shape {shape}, got {value.shape}")
            value = value.copy()
            value.flags.writeable = False
            object.__setattr__(self, name, value)
        if self.images < 1:
            raise ValueError(f"LayerActivity.images must be >= 1, got {self.images}")

    @property
    def timesteps(self) -> int:
        return int(np.asarray(self.active_pe_ops).shape[0])


def full_activity(
    arch: Architecture, layers: Sequence[Layer], timesteps: int, images: int = 1
) -> LayerActivity:
    """Activity when every input spikes every timestep: every PE operation active, every input
    and output neuron spiking (skip convs: no output spikes, as `LayerActivity` defines)."""
    from hwsim.hw.mapping import input_activations  # mapping imports this module

    layers = tuple(layers)
    ops = np.array([mapped_pe_operations(g, arch) for g in layers], np.int64)
    ins = input_activations(layers)
    outs = [
        0 if g.name.endswith(".skip") else g.out_channels * g.out_hw[0] * g.out_hw[1]
        for g in layers
    ]
    shape = (timesteps, len(layers))
    return LayerActivity(
        layer_names=tuple(g.name for g in layers),
        images=images,
        active_pe_ops=np.broadcast_to(ops * images, shape),
        input_spikes=np.broadcast_to(np.array(ins, np.int64) * images, shape),
        output_spikes=np.broadcast_to(np.array(outs, np.int64) * images, shape),
    )


@dataclass(frozen=True, eq=False)
class FusionActivity:
    """Fusion-unit events per timestep, summed over `images`: `events[t, k]` of
    `FUSION_EVENTS[k]` (counter increments, LUT reads, multiplies, compares)."""

    images: int
    events: np.ndarray  # (T, 4)


def fusion_activity(
    classes: int,
    ic_spikes: np.ndarray,
    fc_spikes: np.ndarray,
    images: int,
    deciding: np.ndarray | None = None,
) -> FusionActivity:
    """Fusion-unit events from head output spikes (each (T,), summed over images).

    Per timestep and deciding image (`deciding[t]`, default all `images`): one counter
    increment per IC or FC output spike; one LUT read and one multiply for alpha(t) (PWL
    interpolation); the cross-multiplied posterior score_c = K_c (alpha + M_c) /
    (alpha t + N K_c) (K_c IC count, M_c FC count, N = t) costs one multiply for alpha t and two
    per class; an argmax over C classes makes C - 1 cross-multiplied comparisons (two multiplies
    and one compare each); one more compare for the early-termination rule. Additions are not
    counted. An owner of the fusion unit may build its own `FusionActivity` instead.
    """
    ic = np.asarray(ic_spikes, np.float64)
    fc = np.asarray(fc_spikes, np.float64)
    if ic.shape != fc.shape or ic.ndim != 1:
        raise ValueError("ic_spikes and fc_spikes must be (T,) arrays of the same length")
    n = np.full(ic.shape, float(images)) if deciding is None else np.asarray(deciding, float)
    multiplies = (1 + 1 + 2 * classes + 2 * (classes - 1)) * n
    compares = (classes - 1 + 1) * n
    events = np.stack([ic + fc, n, multiplies, compares], axis=1)
    return FusionActivity(images=images, events=events)


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


def noc_flit_hops(activity: LayerActivity, mapping: Mapping) -> np.ndarray:
    """(T, L) NoC flit-hops per image: output spikes x flits per spike x hops per spike,
    summed over the layer's consumers (`hwsim.hw.mapping.spike_routes`)."""
    from hwsim.hw.mapping import spike_routes  # mapping imports this module

    layers = tuple(m.layer for m in mapping.layers)
    index = {g.name: i for i, g in enumerate(layers)}
    per_spike = np.zeros(len(layers))
    for route in spike_routes(mapping):
        if route.producer in index:
            per_spike[index[route.producer]] += route.flits_per_spike * route.hops_per_spike
    return np.asarray(activity.output_spikes, np.float64) / activity.images * per_spike


def run_energy(
    arch: Architecture,
    layers: Sequence[Layer],
    activity: LayerActivity,
    *,
    mapping: Mapping | None = None,
    fusion: FusionActivity | None = None,
) -> RunEnergy:
    """Energy of a run per image under `arch.energy_model` (module docstring).

    `activity.layer_names` must be the names of `layers`, in order. `mapping`
    (`hwsim.hw.mapping.Mapping`) defaults to `map_network(arch, layers)`; it is needed for
    NoC hops in the event model only. `fusion` needs `arch.fusion_unit`.
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
        if mapping is None:
            from hwsim.hw.mapping import map_network  # mapping imports this module

            mapping = map_network(arch, layers)
        elif tuple(m.name for m in mapping.layers) != names:
            raise ValueError("the mapping's layers do not match the geometry")
        events[:, :, -1] = noc_flit_hops(activity, mapping)
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
