"""What the spikes of a run caused, per layer and timestep: the counts energy, area and timing
multiply or schedule.

`LayerActivity` comes from the engine's counts of the ideal or the functional mode (through
`hwsim.pipeline.activity`, which also says what a layer sends when) or from `full_activity`
(every input spiking every timestep: SpikeSim's view). `FusionActivity`
holds the fusion unit's events (`hwsim.hw.fusion_unit.fusion_events` counts them). Counts are
summed over `images`; consumers divide by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwsim.errors import InputError
from hwsim.hw.mapping import ChipMapping
from hwsim.model.graph import Layer, Pool

FUSION_EVENTS: tuple[str, ...] = ("counter_increment", "lut_read", "multiply", "compare")
"""Events of the fusion unit, in `FusionActivity.events` column order."""


@dataclass(frozen=True, eq=False)
class LayerActivity:
    """What the spikes of a run caused, per timestep and graph layer, summed over `images`.

    `active_pe_ops[t, l]`: PE operations (output position x channel group x column group,
    `hwsim.hw.mapping`) of layer `layer_names[l]` at timestep t with at least one spiking input
    row in their window; `crossbar_reads[t, l]`: crossbar read-outs among them with a spiking
    row of their own (kernel_split: per kernel position; unrolled: the operations);
    `input_spikes[t, l]`: spikes arriving at the layer's rows (for the analog first layer:
    non-zero inputs); `output_spikes[t, l]`: spikes the layer's neurons sent (0 for a residual
    skip conv, whose partial sums join its block's conv2 neurons; conv2 carries the join's
    spikes). All (T, L), int64 or float64.
    """

    layer_names: tuple[str, ...]
    images: int
    active_pe_ops: np.ndarray
    crossbar_reads: np.ndarray
    input_spikes: np.ndarray
    output_spikes: np.ndarray

    def __post_init__(self) -> None:
        shape = (self.timesteps, len(self.layer_names))
        for name in ("active_pe_ops", "crossbar_reads", "input_spikes", "output_spikes"):
            value = np.asarray(getattr(self, name))
            if value.shape != shape:
                raise InputError(f"LayerActivity.{name}: expected shape {shape}, got {value.shape}")
            value = value.copy()
            value.flags.writeable = False
            object.__setattr__(self, name, value)
        if self.images < 1:
            raise InputError(f"LayerActivity.images {self.images}: expected >= 1")

    @property
    def timesteps(self) -> int:
        return int(np.asarray(self.active_pe_ops).shape[0])


def input_activations(layers: Sequence[Layer]) -> list[int]:
    """Activations arriving at each layer's input rows per timestep and image: its input map
    C x H x W (a Linear layer's features)."""
    return [int(np.prod(g.in_shape)) for g in layers]


def sent_spikes(layers: Sequence[Layer]) -> list[int]:
    """Spikes each layer sends per timestep and image when every neuron fires: its
    population's neurons, 0 for a layer that sends none (a residual skip conv)."""
    return [g.neurons if g.sends_spikes else 0 for g in layers]


def leak_multiplies_per_neuron(layer: Layer) -> int:
    """Multiplies per neuron and timestep of the leaky population `layer` sends: 1 for a
    leak != 1, + 1 for a gain != 1; 0 for IF neurons, for a layer that sends no spikes (a
    residual skip) and for a MAX pool (its population is the OR of its window,
    `hwsim.hw.pooling`)."""
    if not layer.sends_spikes or layer.pool is Pool.MAX:
        return 0
    return int(layer.neuron.leak != 1) + int(layer.neuron.gain != 1)


def full_activity(mapping: ChipMapping, timesteps: int, images: int = 1) -> LayerActivity:
    """Activity when every input spikes every timestep: every PE operation and crossbar read of
    the mapping active, every input and output neuron spiking (skip convs: no output spikes,
    as `LayerActivity` defines)."""
    layers = mapping.graph.layers
    ops = mapping.pe_operations()
    reads = np.array([m.crossbar_reads for m in mapping.layers], np.int64)
    shape = (timesteps, len(layers))
    return LayerActivity(
        layer_names=tuple(g.name for g in layers),
        images=images,
        active_pe_ops=np.broadcast_to(ops * images, shape),
        crossbar_reads=np.broadcast_to(reads * images, shape),
        input_spikes=np.broadcast_to(np.array(input_activations(layers), np.int64) * images, shape),
        output_spikes=np.broadcast_to(np.array(sent_spikes(layers), np.int64) * images, shape),
    )


@dataclass(frozen=True, eq=False)
class FusionActivity:
    """Fusion-unit events per timestep, summed over `images`: `events[t, k]` of
    `FUSION_EVENTS[k]` (counter increments, LUT reads, multiplies, compares)."""

    images: int
    events: np.ndarray  # (T, 4)
