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
at least the adc.columns_per_adc conversion rounds of `Architecture.conversion_cycles` each
(timing.cycles_per_conversion, or adc.bits x timing.sar_cycles_per_bit + sar_sample_cycles: the
rounds energy charges conversions for). Under `kernel_split` with every input spiking a PE
performs H_out W_out operations. With `partial_sums`, a layer whose rows span several PEs adds
its partial sums' NoC transfer (its packets leave when its operations are done: longest route
x hop latency + busiest link's flits - 1) and the reducers' accumulate cycles
(`psum_stage_cycles`, `hwsim.hw.psum`), as the simulator's job does.

**Pooling units and leaky neurons.** A pooling layer (`hwsim.hw.pooling`) has no PE operations;
its stage is its pooling units' `pool_cycles` per job. A layer whose population multiplies
(leak or gain, `hwsim.hw.activity.leak_multiplies_per_neuron`) adds its neuron module's leak,
ceil(N / U) x neuron_leak.cycles (`neuron_job_cycles` without the IF update's
timing.neuron_cycles, which this model leaves out as before: the simulator has them), U its
neuron units. Both are fixed per job (`fixed_job_cycles`), 0 for an IF network without
pooling layers.

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

**Links.** A link passes one flit per cycle and a producer's packets cross it in the order
they are sent, so a producer's arrival at t is also bounded by its own flits on each link it
loads: D[t, p, k] = max(D[t-1, p, k], finish[t, p]) + flits[t, p, k] (`pipeline_cycles`); and
no chip runs a timestep faster than its busiest link carries that timestep's flits, every
producer's and every partial sum's together (`TimingResult.link_flits`). The interval is the
busiest resource's cycles per timestep, a link included (`TimingResult.interval_cycles`,
`bottleneck`): a lower bound of the simulated interval, within a few percent of it on a
NoC-bound chip (tested).

**Pipeline.** With pred(l) = `LayerGraph.predecessors(l)` (its inputs, plus a residual block's
skip conv for its conv2, transfer 0), and finish[-1] = the image's input arrival (0; with an
`offchip` interface its input cycles)::

    finish[t, l] = max(finish[t-1, l], max_{p in pred(l)} arrive[t, p]) + stage_cycles[t, l]
    arrive[t, p] = max(finish[t, p] + transfer[t, p], max_k D[t, p, k])

**Line buffers** (`timing.line_buffer`). The same recurrence per output row (`output_rows`:
H_out, 1 for a GAP or Linear), `line_buffer_cycles`: row y of layer l starts once its row y - 1
is done and every producer's row last_pl(y) has arrived (`row_window`: the rows its window
needs), a row's stage being its `row_share` of the job's PE rounds x pe_operation_cycles plus
the partial sums of ops / R_l operations, its transfer and link loads those of spikes / R_l;
finish[t, l] is its last row's. It is the simulator's line-buffer timing without contention
(tested equal).

A head's output of timestep t reaches the fusion unit at ready[t, linear] = arrive[t, linear]
(the Linear's spikes to the fusion unit); `TimingResult.latency_ns[t]` is the last head's, the
time to have every classifier's output of timestep t, plus the result's off-chip output cycles.
The fusion unit's own cycles are not included.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from hwsim.hw.activity import LayerActivity, leak_multiplies_per_neuron
from hwsim.hw.geometry import spikesim_geometry
from hwsim.hw.mapping import ChipMapping
from hwsim.hw.noc import Link, ProducerTraffic, producer_traffic, xy_links
from hwsim.hw.offchip import offchip_cost
from hwsim.hw.pooling import is_or_pool, pool_cycles, pool_neuron_units
from hwsim.hw.psum import chip_psums
from hwsim.model.graph import FC_HEAD, FUSION_UNIT, Layer, LayerKind


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


def neuron_job_cycles(mapping: ChipMapping, name: str, *, if_update: bool = True) -> int:
    """Neuron-module cycles of one job (image and timestep) of layer `name`: ceil(N / U) x
    per-update cycles, N the neurons of its output map, U = pe.neuron_units_per_pe x its PEs (a
    pooling layer: one PE slot's, `hwsim.hw.pooling.pool_neuron_units`); per update
    timing.neuron_cycles (`if_update`) + neuron_leak.cycles where its population multiplies
    (leak or gain). 0 for a MAX pool (its population is the OR), with no units or no cycles."""
    arch = mapping.arch
    m = mapping.layer(name)
    if is_or_pool(m.layer):
        return 0
    per_update = arch.timing.neuron_cycles if if_update else 0
    if arch.neuron_leak is not None and leak_multiplies_per_neuron(m.layer) > 0:
        per_update += arch.neuron_leak.cycles
    units = pool_neuron_units(arch) if m.is_pool else arch.pe.neuron_units_per_pe * m.pes
    if per_update == 0 or units == 0:
        return 0
    return math.ceil(m.layer.neurons / units) * per_update


def fixed_job_cycles(mapping: ChipMapping) -> np.ndarray:
    """(L,) cycles each layer's job adds to its PE operations whatever its activity, in the
    analytic model: a pooling layer's `pool_cycles` and a leaky population's leak cycles
    (`neuron_job_cycles` without the IF update); zeros for an IF network without pooling."""
    arch = mapping.arch
    return np.array(
        [
            pool_cycles(arch, m.layer) + neuron_job_cycles(mapping, m.name, if_update=False)
            for m in mapping.layers
        ],
        np.int64,
    )


def layer_stage_cycles(mapping: ChipMapping, ops: np.ndarray) -> np.ndarray:
    """(T, L) stage cycles of the mapped layers for `ops` (T, L) PE operations per image,
    without partial sums or line buffers: `stage_cycles` on the layers' PEs (a pooling layer's
    operations taken as 0, whatever `ops` says) + `fixed_job_cycles`."""
    pool = np.array([m.is_pool for m in mapping.layers], bool)
    ops = np.where(pool, 0.0, np.asarray(ops, np.float64))
    pes = np.array([max(m.pes, 1) for m in mapping.layers], np.int64)
    stage = stage_cycles(ops, pes, mapping.arch.pe_operation_cycles)
    return stage + fixed_job_cycles(mapping)[None, :]


# ------------------------------------------------------------------------------ pipeline


def pipeline_cycles(
    stage: np.ndarray,
    transfer: np.ndarray,
    preds: Sequence[Sequence[int]],
    *,
    start: int = 0,
    link_flits: Sequence[Sequence[np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(finish, arrive), (T, L) cycles of the recurrence (module docstring)::

        finish[t, l] = max(finish[t-1, l], max_p arrive[t, p]) + stage[t, l]
        arrive[t, p] = max(finish[t, p] + transfer[t, p], max_k D[t, p, k])
        D[t, p, k]   = max(D[t-1, p, k], finish[t, p]) + flits[t, p, k]     (flits > 0)

    `stage`, `transfer` (T, L); `preds[l]` indices of l's producers, each before l; every layer
    starts from `start` (finish[-1] = start: the image's input arrival). `link_flits[p]`: one
    (T,) array per link producer p's packets cross, its flits per timestep (None: no links): a
    link passes one flit per cycle and a producer's packets cross it in order, so a link loaded
    beyond the producer's stage holds its arrivals back (D, a bound without the head latency).
    """
    stage = np.asarray(stage, np.int64)
    transfer = np.asarray(transfer, np.int64)
    steps, n = stage.shape
    finish = np.zeros((steps, n), np.int64)
    arrive = np.zeros((steps, n), np.int64)
    drained = [np.zeros(len(link_flits[p]) if link_flits else 0, np.int64) for p in range(n)]
    for t in range(steps):
        for layer in range(n):
            ready = finish[t - 1, layer] if t else start
            for p in preds[layer]:
                if p >= layer:
                    raise ValueError(f"pipeline: producer {p} of layer {layer} comes after it")
                ready = max(ready, arrive[t, p])
            finish[t, layer] = ready + stage[t, layer]
            arrive[t, layer] = finish[t, layer] + transfer[t, layer]
            for k, flits in enumerate(link_flits[layer] if link_flits else ()):
                if flits[t] <= 0:  # nothing sent over this link at t: no wait for it
                    continue
                done = max(drained[layer][k], finish[t, layer]) + int(flits[t])
                drained[layer][k] = done
                arrive[t, layer] = max(arrive[t, layer], done)
    return finish, arrive


def pipeline_finish_cycles(
    stage: np.ndarray,
    transfer: np.ndarray,
    preds: Sequence[Sequence[int]],
    *,
    start: int = 0,
    link_flits: Sequence[Sequence[np.ndarray]] | None = None,
) -> np.ndarray:
    """(T, L) finish cycles of `pipeline_cycles`."""
    return pipeline_cycles(stage, transfer, preds, start=start, link_flits=link_flits)[0]


# -------------------------------------------------------------------------- line buffers


def output_rows(layer: Layer) -> int:
    """Rows of `layer`'s output map, what a line buffer passes on one at a time: H_out of its
    SpikeSim geometry (1 for a GAP or Linear layer)."""
    return spikesim_geometry(layer).out_hw[0]


@njit(cache=True)
def row_share(total: int, rows: int, row: int) -> int:
    """Row `row`'s share of a job's integer `total` (PE rounds, operations, spikes, neuron
    cycles) spread as evenly as integers allow over its `rows` output rows:
    total (row + 1) // rows - total row // rows. The shares sum to `total`; one row: all."""
    return total * (row + 1) // rows - total * row // rows


@dataclass(frozen=True, eq=False)
class RowWindow:
    """Which rows of a producer's output a consumer's output rows read, per timestep (consumer
    rows y = 0..R_c-1, producer rows 0..`producer_rows`-1). `last[y]`: the last producer row
    y's window needs (a line buffer starts y once the producer's rows up to it are in);
    `release[y]`: the producer rows freed when y is done (no later row of the timestep needs
    them; they sum to `producer_rows`)."""

    producer_rows: int
    last: np.ndarray  # (R_c,) int64, non-decreasing, last[-1] = producer_rows - 1
    release: np.ndarray  # (R_c,) int64

    @property
    def min_rows(self) -> int:
        """Rows the consumer's buffer must hold at once for every window to fit: the most rows
        held when a row starts (rows up to last[y] in, those freed before y out)."""
        freed = np.concatenate([[0], np.cumsum(self.release)[:-1]])
        return int(np.max(self.last + 1 - freed))


def row_window(consumer: Layer | None, producer_rows: int, *, join: bool = False) -> RowWindow:
    """The `RowWindow` of `consumer` (None: the fusion unit) over a producer with
    `producer_rows` output rows. A conv whose input map is the producer's (H_in = its rows)
    reads rows y s - p .. y s - p + k_h - 1 (stride s, padding p, clipped to the map); a
    residual block's skip conv joins its conv2 row by row (`join`: row y of the same map);
    anything else (a GAP, a Linear, the fusion unit, a reshaped map) needs the whole map. The
    last row always waits for the producer's last row, so a timestep is all in before the
    consumer finishes it."""
    rows = 1 if consumer is None else output_rows(consumer)
    y = np.arange(rows, dtype=np.int64)
    first = np.zeros(rows, np.int64)
    last = np.full(rows, producer_rows - 1, np.int64)
    if consumer is not None and join and rows == producer_rows:
        first, last = y.copy(), y.copy()
    elif (
        consumer is not None
        and consumer.kind is LayerKind.CONV
        and consumer.in_shape[1] == producer_rows
    ):
        top = y * consumer.stride - consumer.padding
        first = np.clip(top, 0, producer_rows - 1)
        last = np.clip(top + consumer.kernel[0] - 1, 0, producer_rows - 1)
    last[-1] = producer_rows - 1
    freed = np.append(first[1:], producer_rows)  # rows before the next window are done with
    release = np.diff(freed, prepend=0)
    for a in (last, release):
        a.flags.writeable = False
    return RowWindow(producer_rows, last, release)


@njit(cache=True)
def _row_recurrence(stage, transfer, rows, pred_ptr, preds, need_ptr, need, start, link_ptr, flits):
    """The recurrence of `line_buffer_cycles` on flat arrays: `stage`, `transfer` (T, L, R_max)
    per row; the producers of l are preds[pred_ptr[l]:pred_ptr[l + 1]], entry k's last rows
    need[need_ptr[k]:need_ptr[k + 1]]; l's links are flits[:, link_ptr[l]:link_ptr[l + 1]]
    of `flits` (T, K, R_max)."""
    steps, layers, width = stage.shape
    finish = np.zeros((steps, layers, width), np.int64)
    arrive = np.zeros((steps, layers, width), np.int64)
    drained = np.zeros(flits.shape[1], np.int64)
    for t in range(steps):
        for layer in range(layers):
            for y in range(rows[layer]):
                if y > 0:
                    ready = finish[t, layer, y - 1]
                elif t > 0:
                    ready = finish[t - 1, layer, rows[layer] - 1]
                else:
                    ready = start
                for k in range(pred_ptr[layer], pred_ptr[layer + 1]):
                    ready = max(ready, arrive[t, preds[k], need[need_ptr[k] + y]])
                done = ready + stage[t, layer, y]
                finish[t, layer, y] = done
                out = done + transfer[t, layer, y]
                for k in range(link_ptr[layer], link_ptr[layer + 1]):
                    if flits[t, k, y] <= 0:  # nothing sent over this link: no wait for it
                        continue
                    drained[k] = max(drained[k], done) + flits[t, k, y]
                    out = max(out, drained[k])
                arrive[t, layer, y] = out
    return finish, arrive


def line_buffer_cycles(
    stage: np.ndarray,
    transfer: np.ndarray,
    rows: Sequence[int],
    preds: Sequence[Sequence[int]],
    windows: Sequence[Sequence[RowWindow]],
    *,
    start: int = 0,
    link_flits: Sequence[Sequence[np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(finish, arrive) (T, L, R_max) cycles of each output row under line buffers, the row
    counterpart of `pipeline_cycles` (R_l = `rows[l]`; entries past R_l are 0)::

        finish[t, l, y] = max(finish[t, l, y-1], max_p arrive[t, p, last_pl[y]]) + stage[t, l, y]
        arrive[t, p, r] = max(finish[t, p, r] + transfer[t, p, r], max_k D[p, k])
        D[p, k]         = max(D[p, k], finish[t, p, r]) + flits[t, p, k, r]      (flits > 0)

    finish[t, l, -1] = finish[t-1, l, R_l - 1] (a layer's rows in order, timestep after
    timestep; finish[-1] = `start`), last_pl = `windows[l][j].last` for the j-th producer p =
    preds[l][j], each before l. `stage`, `transfer` (T, L, R_max) per row; `link_flits[p]`: one
    (T, R_max) array per link p's packets cross (its flits per row)."""
    stage = np.ascontiguousarray(stage, np.int64)
    transfer = np.ascontiguousarray(transfer, np.int64)
    steps, n, width = stage.shape
    pred_ptr, flat_preds, need_ptr, need = [0], [], [0], []
    for layer in range(n):
        if len(preds[layer]) != len(windows[layer]):
            raise ValueError(f"line_buffer_cycles: layer {layer} needs one window per producer")
        for p, window in zip(preds[layer], windows[layer], strict=True):
            if p >= layer:
                raise ValueError(f"pipeline: producer {p} of layer {layer} comes after it")
            if len(window.last) != rows[layer] or window.producer_rows != rows[p]:
                raise ValueError(f"line_buffer_cycles: window of {p} -> {layer} does not fit")
            flat_preds.append(p)
            need.extend(window.last.tolist())
            need_ptr.append(len(need))
        pred_ptr.append(len(flat_preds))
    loads = [f for layer in range(n) for f in (link_flits[layer] if link_flits else ())]
    link_ptr = np.cumsum([0] + [len(link_flits[p]) if link_flits else 0 for p in range(n)])
    flits = np.zeros((steps, len(loads), width), np.int64)
    for k, f in enumerate(loads):
        flits[:, k, :] = f
    ints = [np.asarray(v, np.int64) for v in (rows, pred_ptr, flat_preds, need_ptr, need)]
    return _row_recurrence(stage, transfer, *ints, int(start), link_ptr.astype(np.int64), flits)


@dataclass(frozen=True, eq=False)
class TimingResult:
    """Timing of a run, per (mean) image; arrays (T, L) over `layer_names`, cycles of
    `clock_mhz`.

    `stage_cycles[t, l]` (PE operations, plus partial sums: `psum_cycles`), `transfer_cycles[t,
    l]` (layer l's output spikes to its consumers, as the pipeline saw them: its own transfer or
    the link bound), `finish_cycles[t, l]`, `ready_cycles[t, l]` (finish, plus the transfer to
    the fusion unit for a head's Linear); `head_ready_cycles[head]` (T,): head's output of
    timestep t at the fusion unit (FC under FC_HEAD); `latency_ns` (T,): every head's output of
    timestep t, plus the result's `output_cycles` off chip. `links` the mesh's directed links
    that carry traffic, `link_flits[t, k]` the flits link k carries per timestep (spikes and
    partial sums; one flit per cycle at most).
    """

    layer_names: tuple[str, ...]
    clock_mhz: float
    stage_cycles: np.ndarray
    transfer_cycles: np.ndarray
    finish_cycles: np.ndarray
    ready_cycles: np.ndarray
    head_ready_cycles: dict[int, np.ndarray]
    latency_ns: np.ndarray
    psum_cycles: np.ndarray | None = None  # (T, L); None: zeros
    links: tuple[Link, ...] = ()
    link_flits: np.ndarray | None = None  # (T, K); None: no links
    input_cycles: int = 0
    output_cycles: int = 0

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

    def _link_means(self) -> np.ndarray:
        if self.link_flits is None or not self.links:
            return np.zeros(0)
        return np.asarray(self.link_flits, np.float64).mean(axis=0)

    @property
    def bottleneck(self) -> str:
        """The busiest resource per timestep (mean over timesteps): the layer of
        `bottleneck_layer`, or a link (`link_name`) whose flits per timestep exceed every
        layer's stage cycles."""
        stage = float(self.stage_cycles.mean(axis=0).max()) if self.stage_cycles.size else 0.0
        links = self._link_means()
        if links.size and links.max() > stage:
            return link_name(self.links[int(np.argmax(links))])
        return self.bottleneck_layer

    @property
    def interval_cycles(self) -> float:
        """Mean cycles per timestep of the busiest resource (`bottleneck`): a lower bound on
        the steady-state interval between timesteps, a link passing one flit per cycle."""
        stage = float(self.stage_cycles.mean(axis=0).max()) if self.stage_cycles.size else 0.0
        links = self._link_means()
        return max(stage, float(links.max())) if links.size else stage

    @property
    def total_cycles(self) -> int:
        """Cycles until every layer and head is done with the last timestep (and its result
        is off chip)."""
        if not self.ready_cycles.size:
            return 0
        return int(self.ready_cycles.max()) + self.output_cycles

    @property
    def total_ns(self) -> float:
        return float(cycles_to_ns(self.total_cycles, self.clock_mhz))

    @property
    def busy_stage_cycles(self) -> np.ndarray:
        """(L,) stage cycles of each layer summed over timesteps."""
        return self.stage_cycles.sum(axis=0)


def link_name(link: Link) -> str:
    """A directed mesh link as text: "link (r0,c0)->(r1,c1)"."""
    (r0, c0), (r1, c1) = link
    return f"link ({r0},{c0})->({r1},{c1})"


def latency_ns(result: TimingResult, layers: Iterable[str]) -> np.ndarray:
    """(T,) ns until all of `layers` are ready with timestep t: max of their `ready_cycles`,
    plus the result's `output_cycles` off chip.

    E.g. `latency_ns(r, {"ic8.linear"})` is the time to the IC's output alone (SL);
    `{"ic8.linear", "fc.linear"}` both heads (fusion).
    """
    idx = [result.index(name) for name in layers]
    if not idx:
        raise ValueError("latency_ns: no layers given")
    ready = result.ready_cycles[:, idx].max(axis=1) + result.output_cycles
    return cycles_to_ns(ready, result.clock_mhz)


def _ceil_flits(flits: np.ndarray | float) -> np.ndarray:
    """Whole flits of a (mean) load, float noise removed before the ceiling."""
    return np.ceil(np.round(np.asarray(flits, np.float64), 9)).astype(np.int64)


def psum_stage_cycles(
    mapping: ChipMapping, ops: np.ndarray
) -> tuple[np.ndarray, dict[int, dict[Link, np.ndarray]]]:
    """(T, L) cycles each layer's partial sums add to its stage for `ops` (T, L) PE operations
    per image (`hwsim.hw.psum`): the NoC transfer of its packets (one per flow, ceil(bits x
    share / flit_width) flits, sent when its operations are done; XY: the longest route's
    hops x (router + link latency) + the busiest link's flits - 1) plus ceil(vectors the
    busiest reducer receives x share) x partial_sums.accumulate_cycles, share = ops /
    pe_operations; and per layer index the (T,) flits on each link it loads."""
    arch = mapping.arch
    steps, n = np.shape(ops)
    cycles = np.zeros((steps, n), np.int64)
    loads: dict[int, dict[Link, np.ndarray]] = {}
    config = arch.partial_sums
    if config is None:
        return cycles, loads
    per_hop = arch.noc.router_latency_cycles + arch.noc.link_latency_cycles
    for i, p in enumerate(chip_psums(mapping).values()):
        if not p.pe_operations or not (p.flows or p.vectors_per_reducer):
            continue
        share = np.asarray(ops, np.float64)[:, i] / p.pe_operations
        by_link: dict[Link, np.ndarray] = {}
        hops = 0
        for f in p.flows:
            flits = _ceil_flits(share * f.flits / arch.noc.flit_width_bits)
            for link in xy_links(f.src, f.dst):
                by_link[link] = by_link.get(link, 0) + flits
            hops = max(hops, len(xy_links(f.src, f.dst)))
        if by_link:
            busiest = np.max(np.stack(list(by_link.values())), axis=0)
            cycles[:, i] += np.where(busiest > 0, hops * per_hop + busiest - 1, 0)
            loads[i] = by_link
        cycles[:, i] += _ceil_flits(share * p.vectors_per_reducer) * config.accumulate_cycles
    return cycles, loads


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
    pool = np.array([m.is_pool for m in mapping.layers], bool)
    ops = np.where(pool, 0.0, ops)  # a pooling layer has no PE operations: its `fixed` cycles
    pes = np.array([max(m.pes, 1) for m in mapping.layers], np.int64)
    fixed = fixed_job_cycles(mapping)
    lines = arch.timing.line_buffer
    # per output row under line buffers (a job's work spread evenly over its rows), else per job
    rows = np.array([output_rows(g) if lines else 1 for g in layers], np.int64)
    psum, psum_loads = psum_stage_cycles(mapping, ops / rows)
    spikes = np.asarray(activity.output_spikes, np.float64) / activity.images / rows
    per_hop = arch.noc.router_latency_cycles + arch.noc.link_latency_cycles
    transfer = np.zeros((steps, len(layers)), np.int64)
    traffic = producer_traffic(mapping) if traffic is None else traffic
    spike_loads: list[dict[Link, np.ndarray]] = [{} for _ in names]
    for i, name in enumerate(names):
        if name in traffic:
            transfer[:, i] = traffic[name].transfer_cycles(spikes[:, i], per_hop)
            for link, per_spike in traffic[name].flits_per_spike_by_link.items():
                spike_loads[i][link] = _ceil_flits(spikes[:, i] * per_spike)

    index = {n: i for i, n in enumerate(names)}
    preds = [[index[p] for p in graph.predecessors(n)] for n in names]
    io = offchip_cost(arch, graph)
    per_producer = [list(loads.values()) for loads in spike_loads]
    if lines:
        rounds = stage_cycles(ops, pes, 1)  # PE rounds of each job
        y = np.arange(rows.max(initial=1), dtype=np.int64)
        inside = y[None, :] < rows[:, None]  # (L, R_max): the layer's rows
        share = row_share(rounds[:, :, None], rows[None, :, None], y[None, None, :])
        row_fixed = row_share(fixed[None, :, None], rows[None, :, None], y[None, None, :])
        row_stage = (share * arch.pe_operation_cycles + psum[:, :, None] + row_fixed) * inside
        row_transfer = transfer[:, :, None] * inside
        spike_edges = set(graph.spike_edges())
        windows = [
            [row_window(g, int(rows[p]), join=(names[p], g.name) not in spike_edges) for p in ps]
            for g, ps in zip(layers, preds, strict=True)
        ]
        row_flits = [
            [f[:, None] * inside[i] for f in loads] for i, loads in enumerate(per_producer)
        ]
        finish_rows, arrive_rows = line_buffer_cycles(
            row_stage, row_transfer, rows, preds, windows, start=io.input_cycles,
            link_flits=row_flits,
        )  # fmt: skip
        columns = np.arange(len(layers))
        finish = finish_rows[:, columns, rows - 1]
        arrive = arrive_rows[:, columns, rows - 1]
        stage = row_stage.sum(axis=2)
        psum = psum * rows  # per timestep from here on, as the loads
        spike_loads = [{k: f * rows[i] for k, f in d.items()} for i, d in enumerate(spike_loads)]
        psum_loads = {i: {k: f * rows[i] for k, f in d.items()} for i, d in psum_loads.items()}
    else:
        stage = layer_stage_cycles(mapping, ops) + psum
        finish, arrive = pipeline_cycles(
            stage, transfer, preds, start=io.input_cycles, link_flits=per_producer
        )
    transfer = arrive - finish  # as the pipeline saw it: own transfer or the link bound

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
    links: dict[Link, np.ndarray] = {}
    for loads in [*spike_loads, *psum_loads.values()]:
        for link, flits in loads.items():
            links[link] = links.get(link, 0) + flits
    order = tuple(sorted(links))
    link_flits = (
        np.stack([links[k] for k in order], axis=1) if order else np.zeros((steps, 0), np.int64)
    )
    for arr in (stage, transfer, finish, ready, psum, link_flits, *heads.values()):
        arr.flags.writeable = False
    lat = cycles_to_ns(last + io.output_cycles, arch.clock_mhz)
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
        psum_cycles=psum,
        links=order,
        link_flits=link_flits,
        input_cycles=io.input_cycles,
        output_cycles=io.output_cycles,
    )
