"""Integrate-and-fire simulation of a converted network (docs/engine.md).

Neuron model (Habara et al. 2024 eqs. 7-9; reset by subtraction): V[t] = V[t-1] + I[t];
s[t] = 1 if V[t] >= V_th; V[t] <- V[t] - V_th s[t]; V[0] = V0. Direct coding: the analog image
is the first layer's input current every timestep. Every spiking layer adds one timestep of delay
(it emits at t the spikes it fired at t-1), as in the BayesianSpikeFusion code and a
layer-pipelined chip: block l at t sees block l-1's spikes of t-1. A residual block has two
spiking stages: conv1, and the join conv2(conv1 spikes) + skip(block input). A head is a GAP IF
layer on its tap block's output spikes, then a Linear IF layer. Poisson and weighted-spike input
codings are in hwsim.model.coding.

Backends (BACKENDS): "numba", event-driven (default, the fastest measured: bench/README.md), and
"torch", a dense batched conv per layer and step. Both stream images in batches and time in
chunks, so memory is bounded whatever N and T are. A connection's current can come from a
synapse (`simulate(..., synapses=)`) instead of its dense op: a callable `Synapse` on the torch
backend, a `CrossbarSynapse` (crossbar levels, conversion groups, ADC step and range, as arrays)
on the numba backend, whose kernels read it in the same IF loop: the crossbar + ADC of the
hardware-functional mode plugs in there.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hwsim.engine._buffers import drop_kept
    from hwsim.engine.backends import CROSSBAR_COUNTS, CrossbarSynapse, Synapse
    from hwsim.engine.core import BACKENDS, simulate, state_bytes
    from hwsim.engine.plan import layer_names
    from hwsim.engine.result import Activity, ActivitySpec, SimResult

_HOMES = {
    "drop_kept": "_buffers",
    "CROSSBAR_COUNTS": "backends",
    "CrossbarSynapse": "backends",
    "Synapse": "backends",
    "BACKENDS": "core",
    "Activity": "result",
    "ActivitySpec": "result",
    "SimResult": "result",
    "simulate": "core",
    "state_bytes": "core",
    "layer_names": "plan",
}
"""The module of each public name, imported when the name is first asked for (PEP 562): the
backends import torch, which a reader of stored traces (`hwsim.engine.trace`) does not need."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "BACKENDS",
    "CROSSBAR_COUNTS",
    "CrossbarSynapse",
    "Activity",
    "ActivitySpec",
    "SimResult",
    "Synapse",
    "drop_kept",
    "layer_names",
    "simulate",
    "state_bytes",
]
