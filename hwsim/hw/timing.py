"""Analytic timing in clock cycles: PE stages, NoC transfers and the layer x timestep pipeline
(a max-plus recurrence over mean activity, the check for a cycle-level simulation).

All times are clock cycles of `arch.clock_mhz` (`_cycles`), converted to ns only at the end
(`_ns`: cycles x 1000 / clock_mhz). Activity is per image (a `LayerActivity` summed over its
`images` is divided by `images`), so a time is the mean image's.

**Stage.** Layer l at timestep t performs ops[t, l] PE operations of the mapping
(`hwsim.hw.mapping`: output position x channel group x column group; `LayerActivity.active_pe_ops`
for the event view, every operation for SpikeSim's view, which `full_activity` gives). The PEs of
a layer run in parallel, operations within a PE in sequence::

    stage_cycles[t, l] = ceil(ops[t, l] / pes_l) * pe_operation_cycles

with pes_l the layer's mapped PEs and `Architecture.pe_operation_cycles` = timing.pe_cycles, or
at least the adc.columns_per_adc conversion rounds of timing.cycles_per_conversion each (the
rounds energy charges conversions for). Under `kernel_split` with every input spiking a PE
performs H_out W_out operations.

**NoC transfer.** The output spikes of layer p at timestep t travel to every consumer of its
spike edges (`LayerGraph.spike_edges`; the IC + fusion unit for a head's Linear) as
`hwsim.hw.noc` routes them (address-event flits, XY routes from each output channel's home
tile). Every flow (source tile, destination tile) of a producer carries
s[t, p] n_flow / C_out f_p flits (s = output spikes per image, n_flow the channels whose spikes
take that flow); the flows of one producer and timestep leave together and a link passes one flit
per cycle, so flows sharing a link serialise there::

    transfer_cycles[t, p] = max_flow h (router_latency + link_latency) + (B[t, p] - 1)

with B = ceil(flits on the busiest link) (0 and no transfer when nothing is sent, or when all
flows stay in their tile). Transfers of different producers are assumed not to overlap in time
(the pipeline mostly separates them); a residual skip conv sends partial sums to its block's
conv2 inside the block, with no NoC transfer (as the energy model).

**Pipeline.** With pred(l) = `LayerGraph.predecessors(l)` (its inputs, plus a residual block's
skip conv for its conv2, transfer 0), and finish[-1] = 0::

    finish[t, l] = max(finish[t-1, l], max_{p in pred(l)} finish[t, p] + transfer[t, p])
                   + stage_cycles[t, l]

(the first layer's input is ready at cycle 0). A head's output of timestep t reaches the fusion
unit at ready[t, linear] = finish[t, linear] + transfer[t, linear] (the Linear's spikes to the
fusion unit); `TimingResult.latency_ns[t]` is the last head's, the time to have every
classifier's output of timestep t. The fusion unit's own cycles are not included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hwsim.hw.activity import LayerActivity
from hwsim.hw.mapping import ChipMapping
from hwsim.hw.noc import ProducerTraffic, producer_traffic
from hwsim.model.graph import FC_HEAD, FUSION_UNIT, LayerKind


def cycles_to_ns(cycles: np.ndarray | float, clock_mhz: float) -> np.ndarray:
    """Clock cycles -> ns: cycles x 1000 / clock_mhz."""
    return np.asarray(cycles, np.float64) * (1000.0 / clock_mhz)


# ------------------------------------------------------------------------------- stages


def stage_cycles(ops: np.ndarray, pes: np.ndarray | Sequence[int], pe_cycles: int) -> np.ndarray:
    """(T, L) stage cycles: ceil(ops[t, l] / pes[l]) * pe_cycles (int64).

    `ops` (T, L) PE operations per image (float allowed, e.g. a mean over images), `pes` (L,)
    PEs of each layer, working in parallel; a PE's operations run in sequence.
    """
    ops = np.asarray(ops, np.float64)
    pes = np.asarray(pes, np.float64)
    if ops.ndim != 2 or pes.shape != (ops.shape[1],):
        raise ValueError(f"stage_cycles: ops (T, L) and pes (L,), got {ops.shape}, {pes.shape}")
    if np.any(pes <= 0):
        raise ValueError("stage_cycles: every layer needs at least one PE")
    # round before ceil so that float noise (e.g. 3.0000000001) is not a whole extra operation
    per_pe = np.ceil(np.round(ops / pes[None, :], 9))
    return per_pe.astype(np.int64) * int(pe_cycles)


# ------------------------------------------------------------------------------ pipeline


def pipeline_finish_cycles(
    stage: np.ndarray, transfer: np.ndarray, preds: Sequence[Sequence[int]]
) -> np.ndarray:
    """(T, L) finish cycles of the recurrence (module docstring)::

        finish[t, l] = max(finish[t-1, l], max_p finish[t, p] + transfer[t, p]) + stage[t, l]

    `stage`, `transfer` (T, L); `preds[l]` indices of l's producers, each before l; a layer
    without producers starts from 0.
    """
    stage = np.asarray(stage, np.int64)
    transfer = np.asarray(transfer, np.int64)
    steps, n = stage.shape
    finish = np.zeros((steps, n), np.int64)
    for t in range(steps):
        for layer in range(n):
            ready = finish[t - 1, layer] if t else 0
            for p in preds[layer]:
                if p >= layer:
                    raise ValueError(f"pipeline: producer {p} of layer {layer} comes after it")
                ready = max(ready, finish[t, p] + transfer[t, p])
            finish[t, layer] = ready + stage[t, layer]
    return finish


@dataclass(frozen=True, eq=False)
class TimingResult:
    """Timing of a run, per (mean) image; arrays (T, L) over `layer_names`, cycles of
    `clock_mhz`.

    `stage_cycles[t, l]`, `transfer_cycles[t, l]` (layer l's output spikes to its consumers),
    `finish_cycles[t, l]`, `ready_cycles[t, l]` (finish, plus the transfer to the fusion unit for
    a head's Linear); `head_ready_cycles[head]` (T,): head's output of timestep t at the fusion
    unit (FC under FC_HEAD); `latency_ns` (T,): every head's output of timestep t.
    """

    layer_names: tuple[str, ...]
    clock_mhz: float
    stage_cycles: np.ndarray
    transfer_cycles: np.ndarray
    finish_cycles: np.ndarray
    ready_cycles: np.ndarray
    head_ready_cycles: dict[int, np.ndarray]
    latency_ns: np.ndarray

    @property
    def timesteps(self) -> int:
        return int(self.finish_cycles.shape[0])

    def index(self, name: str) -> int:
        try:
            return self.layer_names.index(name)
        except ValueError:
            raise KeyError(f"no layer {name!r} in the timing result") from None

    def head_latency_ns(self, head: int = FC_HEAD) -> np.ndarray:
        """(T,) ns until `head`'s output of timestep t reaches the fusion unit."""
        return cycles_to_ns(self.head_ready_cycles[head], self.clock_mhz)

    @property
    def bottleneck_layer(self) -> str:
        """The throughput-limiting stage: the layer with the most stage cycles per timestep
        (mean over timesteps)."""
        return self.layer_names[int(np.argmax(self.stage_cycles.mean(axis=0)))]

    @property
    def interval_cycles(self) -> float:
        """Mean stage cycles per timestep of the bottleneck: the steady-state interval between
        timesteps when stages dominate transfers."""
        return float(self.stage_cycles.mean(axis=0).max()) if self.stage_cycles.size else 0.0

    @property
    def total_cycles(self) -> int:
        """Cycles until every layer and head is done with the last timestep."""
        return int(self.ready_cycles.max()) if self.ready_cycles.size else 0

    @property
    def total_ns(self) -> float:
        return float(cycles_to_ns(self.total_cycles, self.clock_mhz))

    @property
    def busy_stage_cycles(self) -> np.ndarray:
        """(L,) stage cycles of each layer summed over timesteps."""
        return self.stage_cycles.sum(axis=0)


def latency_ns(result: TimingResult, layers: Iterable[str]) -> np.ndarray:
    """(T,) ns until all of `layers` are ready with timestep t: max of their `ready_cycles`.

    E.g. `latency_ns(r, {"ic8.linear"})` is the time to the IC's output alone (SL);
    `{"ic8.linear", "fc.linear"}` both heads (fusion).
    """
    idx = [result.index(name) for name in layers]
    if not idx:
        raise ValueError("latency_ns: no layers given")
    return cycles_to_ns(result.ready_cycles[:, idx].max(axis=1), result.clock_mhz)


def run_timing(
    mapping: ChipMapping,
    activity: LayerActivity,
    *,
    traffic: dict[str, ProducerTraffic] | None = None,
    pe_ops: np.ndarray | None = None,
) -> TimingResult:
    """Timing of a run on the mapped chip (module docstring). `activity.layer_names` must be
    the mapping's layers.

    PE operations per image default to `activity.active_pe_ops / activity.images` (SpikeSim's
    view: pass `full_activity(mapping, T)`); `pe_ops` (T, L) per image overrides them.
    `traffic` defaults to `producer_traffic(mapping)`.
    """
    arch, graph = mapping.arch, mapping.graph
    layers = graph.layers
    names = graph.names
    if tuple(activity.layer_names) != names:
        raise ValueError(
            f"activity layers {list(activity.layer_names)} do not match the mapping {list(names)}"
        )
    steps = activity.timesteps
    if pe_ops is None:
        ops = np.asarray(activity.active_pe_ops, np.float64) / activity.images
    else:
        ops = np.asarray(pe_ops, np.float64)
        if ops.shape != (steps, len(layers)):
            raise ValueError(f"pe_ops: expected shape {(steps, len(layers))}, got {ops.shape}")
    pes = np.array([m.pes for m in mapping.layers], np.int64)
    stage = stage_cycles(ops, pes, arch.pe_operation_cycles)

    spikes = np.asarray(activity.output_spikes, np.float64) / activity.images
    per_hop = arch.noc.router_latency_cycles + arch.noc.link_latency_cycles
    transfer = np.zeros((steps, len(layers)), np.int64)
    traffic = producer_traffic(mapping) if traffic is None else traffic
    for i, name in enumerate(names):
        if name in traffic:
            transfer[:, i] = traffic[name].transfer_cycles(spikes[:, i], per_hop)

    index = {n: i for i, n in enumerate(names)}
    preds = [[index[p] for p in graph.predecessors(n)] for n in names]
    finish = pipeline_finish_cycles(stage, transfer, preds)

    to_fusion = {src for src, dst in graph.spike_edges() if dst == FUSION_UNIT}
    ready = finish + np.where([n in to_fusion for n in names], transfer, 0)
    heads: dict[int, np.ndarray] = {}
    for i, g in enumerate(layers):
        if g.head is not None and g.kind is LayerKind.LINEAR:
            heads[g.head] = ready[:, i].copy()
    if heads:
        last = np.max(np.stack(list(heads.values())), axis=0)
    else:
        last = ready.max(axis=1) if len(layers) else np.zeros(steps, np.int64)
    for arr in (stage, transfer, finish, ready, *heads.values()):
        arr.flags.writeable = False
    lat = cycles_to_ns(last, arch.clock_mhz)
    lat.flags.writeable = False
    return TimingResult(
        layer_names=names,
        clock_mhz=arch.clock_mhz,
        stage_cycles=stage,
        transfer_cycles=transfer,
        finish_cycles=finish,
        ready_cycles=ready,
        head_ready_cycles=heads,
        latency_ns=lat,
    )
