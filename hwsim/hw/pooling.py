"""The tile's pooling unit: where a local pooling layer runs, what it counts and how long it takes.

A local pooling layer (graph `Layer.pool` set: a CONV whose weight is the channel-diagonal
k_h x k_w window, AVG 1/(k_h k_w), SUM 1, MAX the window's OR) is not put on crossbars: the
mapping (`hwsim.hw.mapping`) gives it no PEs, crossbars, ADC conversions or crossbar reads and
places it on the pooling units of one tile, the tile of the last PE placed before it (its
producer's, in a chain), so its input spikes arrive where its producer sends them and its output
channels leave from there (`LayerMapping.pool_tile`). `arch.pooling` (`PoolingConfig`) sizes the
unit; without it a graph with a pooling layer is refused (`MappingError`).

**Operations.** One pooling operation is one window input of one output neuron: a 1-bit add
(AVG, SUM: the unit counts the window's spikes, the count being the population's input current,
times 1/(k_h k_w) for AVG, a shift for a power-of-two window) or an OR (MAX). Per image and
timestep a layer with C_out H_out W_out output neurons has

    W_l = C_out H_out W_out k_h k_w                                   (`window_inputs`)

window inputs. Counted as hwsim counts crossbar work (`hwsim.hw.energy`):

* `energy_model: spikesim`: every window input every timestep, ops[t, l] = W_l (SpikeSim
  charges every PE operation whatever the spikes);
* `energy_model: event`: only the spikes present, each added (or ORed) into every window that
  reads it: ops[t, l] = s_in[t, l] W_l / (C_in H_in W_in), s_in the layer's input spikes
  (`LayerActivity.input_spikes`; exact for non-overlapping windows that tile the map, else the
  mean window count per input). With every input spiking (`full_activity`) it equals W_l,
  so the event model with full activity equals the spikesim model, as for the crossbars.

Energy: ops x `pooling.op_pj`, the `pooling` component (`POOLING`) of `hwsim.hw.energy`,
present only in a run of a graph with pooling layers.

**Cycles** (`pool_cycles`, the one function the analytic timing and the cycle-level simulator
both read). The units of the layer's tile scan every window input of every output neuron each
timestep, whatever the spikes (a silent input costs no switching energy but its slot in the
scan), `units_per_tile` units of `ops_per_cycle` operations per cycle each::

    pool_cycles_l = ceil(W_l / (units_per_tile x ops_per_cycle))

Several pooling layers on one tile are taken to have the tile's units each (their contention is
not modelled). Under line buffers the cycles are shared out over the layer's output rows like
a neuron module's (`hwsim.hw.timing.row_share`).

**Output neurons.** A MAX pool's population is the OR itself (it fires at V >= 1 and resets to
0): no neuron updates, no leak, no neuron cycles. An AVG or SUM pool drives ordinary neurons,
updated by the neuron module of one PE slot of its tile (`pe.neuron_units_per_pe` units,
`pool_neuron_units`): per timestep it is charged the neuron events a one-channel-group conv with
its outputs would be, ceil(C_out / O) H_out W_out x neuron_units_per_pe (O outputs per crossbar;
SpikeSim charges neuron_units_per_pe updates per PE operation), times the same activity share as
its operations under the event model; its neuron cycles are ceil(N / neuron_units_per_pe) x
timing.neuron_cycles (`hwsim.hw.timing.neuron_job_cycles`), and a leaky one pays its leak.

**Area and static power.** `units_per_tile` units of `pooling.area_um2` and
`pooling.leakage_mw` in every tile, charged on a chip whose graph has a pooling layer
(`hwsim.hw.area`, `hwsim.hw.leakage`), as the fusion unit is charged only on a chip with a head.

The functional (crossbar + ADC) mode maps every layer on crossbars; it refuses a graph with
pooling layers through `refuse_pool_layers`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwsim.errors import ConfigError
from hwsim.hw.activity import LayerActivity, input_activations
from hwsim.hw.arch import Architecture, EnergyModel, PoolingConfig
from hwsim.model.graph import Layer, LayerGraph, Pool

POOLING = "pooling"
"""The energy (and area, leakage) component of the pooling units."""


def is_pool(layer: Layer) -> bool:
    """Whether `layer` is a local pooling layer (runs on the pooling unit, not on crossbars)."""
    return layer.pool is not None


def is_or_pool(layer: Layer) -> bool:
    """Whether `layer` is a MAX pool, whose population is the OR of its window (no neurons)."""
    return layer.pool is Pool.MAX


def has_pool_layers(graph: LayerGraph) -> bool:
    return any(is_pool(g) for g in graph.layers)


def pool_mask(layers: Sequence[Layer]) -> np.ndarray:
    """(L,) bool: which layers are pooling layers (their crossbar counts are 0)."""
    return np.array([is_pool(g) for g in layers], bool)


def pooling_unit(arch: Architecture) -> PoolingConfig:
    """`arch.pooling`, or a `ConfigError` saying that a pooling layer needs it."""
    if arch.pooling is None:
        raise ConfigError(
            f"{arch.name}: the network has a local pooling layer but the architecture has no"
            " `pooling` section (the tile's pooling unit, docs/arch-config.md)"
        )
    return arch.pooling


def window_inputs(layer: Layer) -> int:
    """Pooling operations of one image and timestep, every window input: C_out H_out W_out
    k_h k_w (0 for a layer that is not a pooling layer)."""
    if not is_pool(layer):
        return 0
    c, h, w = layer.out_shape
    return c * h * w * layer.kernel[0] * layer.kernel[1]


def pool_cycles(arch: Architecture, layer: Layer) -> int:
    """Cycles of the pooling units on one image and timestep of `layer` (module docstring):
    ceil(W_l / (units_per_tile x ops_per_cycle)); 0 for a layer that is not a pooling layer."""
    if not is_pool(layer):
        return 0
    unit = pooling_unit(arch)
    rate = unit.units_per_tile * unit.ops_per_cycle
    return -(-window_inputs(layer) // rate)


def pool_share(arch: Architecture, layers: Sequence[Layer], activity: LayerActivity) -> np.ndarray:
    """(T, L) share of each layer's window inputs performed per image: 1 under the spikesim
    model; its input spikes over its input activations, s_in / (C_in H_in W_in), under the
    event model (module docstring)."""
    if arch.energy_model is EnergyModel.SPIKESIM:
        return np.ones((activity.timesteps, len(layers)))
    inputs = np.maximum(np.array(input_activations(layers), np.float64), 1.0)
    return np.asarray(activity.input_spikes, np.float64) / activity.images / inputs[None, :]


def pool_operations(
    arch: Architecture, layers: Sequence[Layer], activity: LayerActivity
) -> np.ndarray:
    """(T, L) pooling operations per image (module docstring): `pool_share` x W_l; 0 for the
    layers that are not pooling layers."""
    windows = np.array([window_inputs(g) for g in layers], np.float64)
    return pool_share(arch, layers, activity) * windows[None, :]


def pool_neuron_events(arch: Architecture, layer: Layer) -> int:
    """Neuron events of an AVG or SUM pool per image and timestep with every input spiking:
    ceil(C_out / O) H_out W_out neuron_units_per_pe (module docstring); 0 for a MAX pool and
    for a layer that is not a pooling layer."""
    if not is_pool(layer) or is_or_pool(layer):
        return 0
    c, h, w = layer.out_shape
    groups = -(-c // arch.outputs_per_crossbar)
    return groups * h * w * arch.pe.neuron_units_per_pe


def pool_neuron_units(arch: Architecture) -> int:
    """Neuron units updating a pooling layer's neurons: one PE slot's neuron module."""
    return arch.pe.neuron_units_per_pe


def refuse_pool_layers(graph: LayerGraph, what: str = "the functional (crossbar + ADC) mode"):
    """Raise a `ConfigError` naming the pooling layers of `graph`, which `what` cannot run
    (the functional mode maps every layer on crossbars; a pooling layer runs on the tile's
    pooling unit)."""
    names = [g.name for g in graph.layers if is_pool(g)]
    if names:
        raise ConfigError(
            f"{what} does not run local pooling layers ({', '.join(names)}): they run on the"
            " tile's pooling unit, not on crossbars; use the ideal engine (hwsim.hw.pooling)"
        )
