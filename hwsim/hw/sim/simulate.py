"""Discrete-event simulation, in clock cycles, of a stream of images through the mapped chip.

**Jobs.** Every node (`hwsim.hw.sim.chip`: a layer's PEs and neuron units, or the fusion unit)
performs one job per image and timestep, images in order and, within an image, timesteps in
order: job (i, t) of a layer lasts ceil(ops[i, t, l] / PEs) x pe_operation_cycles +
neuron_cycles (ops from the image's own trace activity); the fusion unit's lasts
decision_cycles + counter_cycles x counted_spikes[i, t]. A node is one server: its jobs never
overlap.

**When a job starts.** Node v starts job (i, t) at the first cycle when (1) v has finished its
previous job; (2) every producer p of v (its spike edges) has finished (i, t) and p's packets
for it have arrived; (3) every consumer c of v has room in its input buffer for v's spikes:
fewer than `capacity` of v's timesteps are held there, a timestep being held from the
producer's finish until the consumer finishes (or skips) that job. The first layer's input is
ready at cycle 0. While waiting, the cycles are counted by cause (`STALL_CAUSES`): `input` (a
producer has not finished), `noc` (a producer's packets are in flight), `buffer` (a consumer's
buffer is full: back-pressure); a producer not yet done outranks packets in flight. A node with
no job left is idle.

**Packets.** When p finishes (i, t) it sends, per flow of each out edge, one packet (flits from
its spikes at (i, t), `hwsim.hw.sim.chip`) along the XY route. Packets are routed in the order
they are sent (cycle, then event order): the head enters link k when it has crossed hop k - 1
(router + link latency) and link k is free; the link is then held for the packet's flits (one
flit per cycle), and, with router buffers of B flits, until its tail fits in the buffer before
link k + 1: link k + 1's release minus B (the flits queued there ahead of it, this packet's
and earlier packets', having moved on). This is wormhole switching with back-pressure from
finite router buffers, modelled per packet (credits are not exchanged flit by flit). An
uncongested packet of F flits over h hops arrives h (router + link) + F - 1
cycles after it is sent; flows sharing a link serialise there, across timesteps and images.

**Partial sums.** With `partial_sums`, a layer's job whose rows span several tiles sends its
partial sums when its PE operations are done (packets routed as above, their own flits counted
in `ChipRun.psum_link_flits`) and ends once they have arrived and been accumulated, then its
neurons updated; the node is busy throughout.

**Off-chip interface.** With `offchip`, images load one after another (input_cycles each) into
a two-image buffer: image i + 2 starts loading when every source layer (a layer without
producers) is done with image i, and a source layer starts an image once it is in (an `input`
stall until then). The fusion unit's job at an image's last step includes the result's
output_cycles. The image's latency then includes its input cycles before its first job (not
the time it waited, loaded, for the previous image) and its result's output.

**Line buffers.** With `ChipModel.line_buffer` (`timing.line_buffer`) a job is its node's
output rows in order (`hwsim.hw.sim.chip`), each row its share of the job's PE rounds,
operations (partial sums), spikes and neuron cycles (`hwsim.hw.timing.row_share`): row y of job
(i, t) starts when the node has finished its previous row (of (i, t), or the last of its
previous job), when every producer's rows of (i, t) up to the last one y's window needs have
been put in its buffer and have arrived, and when every consumer's buffer has room for one
more row. A finished row frees the producer rows no later row of the timestep needs and sends
its spikes as its own packets; buffers count rows. A node that has started a job does all its
rows (stops apply to jobs not started). Without line buffers a job is one row that needs and
frees its producers' one row: the rules above.

**Images.** Image i runs `image_steps[i]` timesteps. With early termination the fusion unit
decides at (i, stop_step[i]): from then on every node skips the jobs of image i's later
timesteps it has not started (work already started is done and counted), and goes on with image
i + 1. An image's latency runs from its first job's start to the fusion unit's finish of its
last needed timestep.

For one image, with unbounded buffers, no neuron or decision cycles, and one packet per
producer and timestep that never meets another on a link, job finish times equal the analytic
model's max-plus recurrence (`hwsim.hw.timing`): that is its check (tested). Images queue
behind each other in the stream, so a stream's later images wait for the bottleneck.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from hwsim.errors import ConfigError
from hwsim.hw.sim._kernel import DONE, advance, start_events, stuck
from hwsim.hw.sim.chip import ChipModel
from hwsim.hw.timing import link_name

STALL_CAUSES: tuple[str, ...] = ("input", "noc", "buffer")
"""Why a node waited, in `ChipRun.stall_cycles` column order."""


@dataclass(frozen=True, eq=False)
class Workload:
    """Per image, timestep and chip layer (`ChipModel.layer_names` order): `pe_ops` (N, T, L)
    PE operations of the layer's job, `sent_spikes` (N, T, L) spikes the job sends; int32.
    `counted_spikes` (N, T): spikes the fusion unit's busier counter bank counts for the
    decision of (image, timestep) (None: none). `packed` makes one from the simulator's own
    layout, which `simulate` then reads without a copy."""

    pe_ops: np.ndarray
    sent_spikes: np.ndarray
    counted_spikes: np.ndarray | None = None
    kernel: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    """The same counts as the simulator reads them (`packed`), or None: copied by `simulate`."""

    @classmethod
    def packed(cls, ops: np.ndarray, spikes: np.ndarray) -> Workload:
        """A workload over the simulator's layout: `ops`, `spikes` (N, T, L + 1) int32, C
        order, the chip layers' PE operations and sent spikes, the fusion unit's counted spikes
        in ops' last column (spikes' last column 0). Views of them, no copy."""
        if ops.dtype != np.int32 or spikes.dtype != np.int32 or ops.shape != spikes.shape:
            raise ValueError("Workload.packed: ops and spikes must be (N, T, L + 1) int32 alike")
        if not (ops.flags.c_contiguous and spikes.flags.c_contiguous) or spikes[..., -1].any():
            raise ValueError("Workload.packed: C-order arrays, spikes' last column 0")
        return cls(ops[..., :-1], spikes[..., :-1], ops[..., -1], kernel=(ops, spikes))

    def __post_init__(self) -> None:
        if self.pe_ops.ndim != 3 or self.pe_ops.shape != self.sent_spikes.shape:
            raise ValueError(
                f"Workload: pe_ops and sent_spikes must be (N, T, L) alike, got"
                f" {self.pe_ops.shape} and {self.sent_spikes.shape}"
            )
        if self.counted_spikes is not None and self.counted_spikes.shape != self.pe_ops.shape[:2]:
            raise ValueError(
                f"Workload: counted_spikes must be (N, T) = {self.pe_ops.shape[:2]}, got"
                f" {self.counted_spikes.shape}"
            )

    @property
    def images(self) -> int:
        return int(self.pe_ops.shape[0])

    @property
    def timesteps(self) -> int:
        return int(self.pe_ops.shape[1])

    @property
    def layers(self) -> int:
        return int(self.pe_ops.shape[2])


RowsFn = Callable[[int, int], tuple[np.ndarray, np.ndarray]]
"""`rows(lo, hi)`: images lo .. hi's ops and spikes, (hi - lo, T, L + 1) int32 each, C order, in
the simulator's layout (`Workload.packed`: the fusion unit's counted spikes in ops' last column,
spikes' last column 0)."""


@dataclass(frozen=True, eq=False)
class StreamedWorkload:
    """A workload of `images` x `timesteps` jobs per chip layer (`layers`) that `simulate` reads
    a block of images at a time from `rows` (`RowsFn`), as its event loop's window moves on: its
    memory is a block's, whatever the number of images."""

    images: int
    timesteps: int
    layers: int
    rows: RowsFn = field(repr=False)


@dataclass(frozen=True, eq=False)
class ChipRun:
    """What the simulator measured; cycles of `chip.clock_mhz`. Node v is `chip.node_name(v)`.

    `start`, `finish` (nodes, N, T): each job's cycles, -1 where not performed (None in a
    `summary`); `jobs` (nodes,) the jobs each node performed; `busy_cycles`
    (nodes,); `stall_cycles` (nodes, 3) by `STALL_CAUSES`; `link_flits` (links,) spike flits
    each directed link carried and `psum_link_flits` (links,) its partial-sum flits;
    `peak_buffer` (edges,) most timesteps (line buffers: rows) an input buffer held;
    `image_start`, `image_end` (N,) cycles (the start is the image's first job's, less the
    off-chip input cycles where an interface is modelled); `image_steps` (N,) timesteps each
    image ran to (its stop step + 1 under early termination)."""

    chip: ChipModel
    start: np.ndarray | None
    finish: np.ndarray | None
    busy_cycles: np.ndarray
    stall_cycles: np.ndarray
    link_flits: np.ndarray
    peak_buffer: np.ndarray
    image_start: np.ndarray
    image_end: np.ndarray
    image_steps: np.ndarray
    psum_link_flits: np.ndarray | None = None  # (links,); None: zeros
    jobs: np.ndarray | None = None  # (nodes,); None: counted from `start`

    def __post_init__(self) -> None:
        if self.psum_link_flits is None:
            object.__setattr__(self, "psum_link_flits", np.zeros_like(self.link_flits))
        if self.jobs is None:
            object.__setattr__(self, "jobs", self.performed.sum(axis=(1, 2)))

    @property
    def performed(self) -> np.ndarray:
        """(nodes, N, T) bool: jobs that ran (including those started before an image's stop
        was known and wasted)."""
        if self.start is None:
            raise ValueError("a ChipRun summary keeps no per-job records")
        return self.start >= 0

    @property
    def images(self) -> int:
        return len(self.image_end)

    def summary(self) -> ChipRun:
        """This run without its per-job records (`start`, `finish`: 16 bytes per node, image
        and timestep), to keep many runs: every other field, `jobs` included."""
        return replace(self, start=None, finish=None)

    @property
    def latency_cycles(self) -> np.ndarray:
        """(N,) per image: first job's start to the fusion unit's last needed decision."""
        return self.image_end - self.image_start

    @property
    def total_cycles(self) -> int:
        """From the first job's start to the last image's decision."""
        return int(self.image_end.max() - self.image_start.min()) if len(self.image_end) else 0

    def ns(self, cycles: np.ndarray | float) -> np.ndarray:
        return np.asarray(cycles, np.float64) * (1000.0 / self.chip.clock_mhz)

    @property
    def throughput_per_s(self) -> float:
        """Images per second over the whole stream."""
        total = float(self.ns(self.total_cycles))
        return len(self.image_end) / total * 1e9 if total > 0 else float("inf")

    def latency_percentile_cycles(self, q: float) -> float:
        """The `q`-th percentile of the images' latency, cycles (`percentile`)."""
        return percentile(self.latency_cycles, q)

    @property
    def link_busy_cycles(self) -> np.ndarray:
        """(links,) cycles each link was busy: the flits it carried (spikes and partial sums),
        one per cycle."""
        return self.link_flits + self.psum_link_flits

    @property
    def bottleneck(self) -> str:
        """The busiest resource: the node with the most busy cycles, or a link
        (`hwsim.hw.timing.link_name`) that carried more flits than any node was busy."""
        node = int(np.argmax(self.busy_cycles))
        links = self.link_busy_cycles
        if len(links) and links.max() > self.busy_cycles[node]:
            return link_name(self.chip.links[int(np.argmax(links))])
        return self.chip.node_name(node)

    def link_utilisation(self) -> np.ndarray:
        """(links,) flits carried (spikes and partial sums) / cycles of the run: the fraction
        of cycles each link was busy."""
        total = max(self.total_cycles, 1)
        return self.link_busy_cycles / total


def percentile(values: np.ndarray, q: float) -> float:
    """The `q`-th percentile (0..100) of `values` by the inverted CDF: the smallest observed
    value v with at least q% of the values <= v (an order statistic, never an interpolation;
    `np.percentile(..., method="inverted_cdf")`). hwsim's one percentile definition."""
    return float(np.percentile(np.asarray(values), q, method="inverted_cdf"))


def _int32(counts: np.ndarray, name: str) -> np.ndarray:
    """`counts`, checked to fit the kernel's int32 counts (0 .. 2^31 - 1)."""
    if counts.size and (counts.min() < 0 or counts.max() > np.iinfo(np.int32).max):
        raise ValueError(f"Workload.{name}: counts must be within 0..2^31 - 1")
    return counts


def _kernel_arrays(work: Workload) -> tuple[np.ndarray, np.ndarray]:
    """`work`'s ops and spikes (N, T, L + 1) int32 as the kernel reads them, the fusion
    unit's counts last: `work.kernel` (checked), else packed from its arrays."""
    if work.kernel is not None:
        ops, spikes = work.kernel
        return _int32(ops, "pe_ops"), _int32(spikes, "sent_spikes")
    n, steps, layers = work.pe_ops.shape
    ops = np.zeros((n, steps, layers + 1), np.int32)  # the fusion unit's counts last
    ops[:, :, :layers] = _int32(work.pe_ops, "pe_ops")
    if work.counted_spikes is not None:
        ops[:, :, layers] = _int32(work.counted_spikes, "counted_spikes")
    spikes = np.zeros((n, steps, layers + 1), np.int32)
    spikes[:, :, :layers] = _int32(work.sent_spikes, "sent_spikes")
    return ops, spikes


RECORD_BYTES = 8 << 20
"""Bytes the event loop's window of images takes at most by default (their per-job records,
start and finish int64 per job and node, the rows put in, int32 per job and edge, and their
ops and spikes, int32 per job and node; `simulate`'s `window`): a node's run reaching the
window's end pauses the loop, and the finished images' records are handed to `on_records`."""

RecordsFn = Callable[[slice, np.ndarray, np.ndarray], None]
"""`on_records(images, start, finish)`: the per-job records of a range of images, (nodes, n,
T) cycles each (`ChipRun.start`, `finish`), valid during the call (the loop's window, reused
after it)."""


def window_images(steps: int, nodes: int, edges: int) -> int:
    """Images in the event loop's window by default: as many as `RECORD_BYTES` holds (24 bytes
    per job and node or edge bound each job's records, rows and counts), at least 4."""
    return max(4, RECORD_BYTES // (24 * steps * (nodes + edges)))


BLOCK_BYTES = 2 << 20
"""Bytes of ops and spikes a streamed workload's block of images takes (`StreamedWorkload`)."""


class _Source:
    """The workload's counts as the window loads them: `take(lo, size)` gives images lo .. lo +
    size's ops and spikes as new int32 arrays, zeros past the last image. A streamed workload's
    are read from `rows` a block of images at a time (`BLOCK_BYTES`, at least what is asked),
    each image once: the window only ever moves on."""

    def __init__(self, work: Workload | StreamedWorkload) -> None:
        self.n = work.images
        if isinstance(work, StreamedWorkload):
            self.rows: RowsFn | None = work.rows
            self.block = max(1, BLOCK_BYTES // (8 * work.timesteps * (work.layers + 1)))
            self.lo = self.hi = 0
            self.ops = self.spikes = np.zeros((0, work.timesteps, work.layers + 1), np.int32)
        else:
            self.rows = None
            self.ops, self.spikes = _kernel_arrays(work)
            self.lo, self.hi = 0, self.n

    def take(self, lo: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        hi = min(lo + size, self.n)
        if self.rows is not None and hi > self.hi:  # read on from the block's end, once
            start, end = max(lo, self.hi), min(self.n, max(hi, self.hi + self.block))
            ops, spikes = self.rows(start, end)
            want = (end - start, *self.ops.shape[1:])
            if ops.shape != want or spikes.shape != want:
                raise ValueError(f"StreamedWorkload.rows: expected {want} arrays, got {ops.shape}")
            kept = slice(max(0, lo - self.lo), None)  # the block's images from lo on
            self.ops = np.concatenate([self.ops[kept], _int32(ops, "pe_ops")])
            self.spikes = np.concatenate([self.spikes[kept], _int32(spikes, "sent_spikes")])
            self.lo, self.hi = min(lo, start), end
        out = []
        for src in (self.ops, self.spikes):
            arr = np.zeros((size, *src.shape[1:]), np.int32)
            if hi > lo:
                arr[: hi - lo] = src[lo - self.lo : hi - self.lo]
            out.append(arr)
        return out[0], out[1]


def _dropped(arr: np.ndarray, k: int, fill: int) -> None:
    """`arr` without its first `k` rows, in place: the rest moved to the front, the freed
    rows at the end set to `fill`."""
    rest = len(arr) - k
    arr[:rest] = arr[k:]
    arr[rest:] = fill


class _Window:
    """The driver's side of the event loop's window (`hwsim.hw.sim._kernel`): `size` images
    from `first`, their counts in the kernel's `work` and their records in its `nodes` and
    `bufs`; what leaves the window is reduced to the run's per-image scalars and job counts,
    handed to `on_records` and, with `keep`, kept."""

    def __init__(
        self,
        chip: ChipModel,
        source: _Source,
        stop: np.ndarray,
        size: int,
        state: tuple,
        on_records: RecordsFn | None,
        keep: bool,
    ) -> None:
        self.chip, self.source, self.stop, self.size = chip, source, stop, size
        self.graph, self.work, self.noc, self.nodes, self.bufs, self.q, self.margin = state
        n, self.steps = len(stop), int(self.work.ops.shape[1])
        self.on_records, self.keep, self.first = on_records, keep, 0
        self.image_start = np.zeros(n, np.int64)
        self.image_end = np.zeros(n, np.int64)
        self.jobs = np.zeros(chip.nodes, np.int64)
        self.kept: list[tuple[np.ndarray, np.ndarray]] = []

    def run(self) -> None:
        """Run the loop to its end, the window moving on (or growing, when every image in it
        is in flight) at each pause."""
        now = np.int64(0)
        while True:
            now, status, self.q = advance(
                now, self.q, self.graph, self.work, self.noc, self.nodes, self.bufs, self.margin
            )
            if status == DONE:
                self.retire(min(self.first + self.size, len(self.stop)))
                return
            nodes = self.nodes
            running = nodes.busy | nodes.within
            lo = int(np.where(running, nodes.run_i, nodes.nxt_i).min())
            if lo == self.first:
                self.grow()
            else:
                self.retire(lo)
                self.shift(lo)

    def retire(self, lo: int) -> None:
        """Hand images first .. lo over (every node is past them)."""
        first, k, steps, chip = self.first, lo - self.first, self.steps, self.chip
        shape = (k, steps, chip.nodes)
        st = self.nodes.start[: k * steps].reshape(shape).transpose(2, 0, 1)
        fi = self.nodes.finish[: k * steps].reshape(shape).transpose(2, 0, 1)
        if chip.layer_names:
            self.image_start[first:lo] = st[0, :, 0]
        self.image_end[first:lo] = fi[chip.fusion_node, np.arange(k), self.stop[first:lo]]
        self.jobs += (st >= 0).sum(axis=(1, 2))
        if self.on_records is not None:
            self.on_records(slice(first, lo), st, fi)
        if self.keep:
            self.kept.append((st.copy(), fi.copy()))

    def shift(self, lo: int) -> None:
        """Move the window to start at image `lo` (retired up to it), the next images' counts
        loaded."""
        k, steps, end = lo - self.first, self.steps, self.first + self.size
        for arr, fill in ((self.nodes.start, -1), (self.nodes.finish, -1), (self.bufs.rows_in, 0)):
            _dropped(arr, k * steps, fill)
        for arr, more in zip(
            (self.work.ops, self.work.spikes), self.source.take(end, k), strict=True
        ):
            _dropped(arr, k, 0)
            arr[self.size - k :] = more
        self.first = lo
        self.work.first[0] = lo
        self.bufs.first[0] = lo * steps

    def grow(self) -> None:
        """Double the window (every image in it in flight): its records and counts copied
        into arrays twice as long, the next images' counts loaded."""
        jobs, size, nodes, bufs, work = (
            self.size * self.steps,
            self.size,
            self.nodes,
            self.bufs,
            self.work,
        )
        start, finish = (np.full((2 * jobs, self.chip.nodes), -1, np.int64) for _ in range(2))
        start[:jobs], finish[:jobs] = nodes.start, nodes.finish
        rows_in = np.zeros((2 * jobs, bufs.rows_in.shape[1]), np.int32)
        rows_in[:jobs] = bufs.rows_in
        more_ops, more_spikes = self.source.take(self.first + size, size)
        ops, spikes = (
            np.concatenate([work.ops, more_ops]),
            np.concatenate([work.spikes, more_spikes]),
        )
        self.nodes = nodes._replace(start=start, finish=finish)
        self.bufs = bufs._replace(rows_in=rows_in)
        self.work = work._replace(ops=ops, spikes=spikes)
        self.size *= 2

    def records(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The kept records (nodes, N, T) start and finish, or None without `keep`."""
        if not self.keep:
            return None, None
        return tuple(np.concatenate([r[j] for r in self.kept], axis=1) for j in range(2))


def simulate(
    chip: ChipModel,
    work: Workload | StreamedWorkload,
    image_steps: np.ndarray | int | None = None,
    stop_step: np.ndarray | None = None,
    on_records: RecordsFn | None = None,
    keep: bool = True,
    window: int | None = None,
) -> ChipRun:
    """Simulate `work`'s images through `chip` (module docstring). `image_steps` (N,) or one
    int: timesteps each image runs (default: all of the workload's); `stop_step` (N,): the
    timestep index at which the fusion unit stops each image (early termination; default: the
    image's last step). `on_records` is given the per-job records of consecutive ranges of
    images in order (`RecordsFn`), so that a caller can reduce them as they come; `keep` False
    returns the run without them (`ChipRun.summary`). `window`: images the event loop holds at
    once (default `window_images`; it doubles while every image in it is in flight); the run
    is the same for any window. Raises ConfigError if line buffers too small for their windows
    leave every node waiting for good."""
    n, steps, layers = work.images, work.timesteps, work.layers
    if layers != len(chip.layer_names):
        raise ValueError(
            f"workload has {layers} layers; the chip simulates {len(chip.layer_names)}"
        )
    if window is not None and window < 1:
        raise ValueError(f"window must be at least 1 image, got {window}")
    run_steps = np.full(n, steps, np.int64) if image_steps is None else image_steps
    run_steps = np.broadcast_to(np.asarray(run_steps, np.int64), (n,)).copy()
    if np.any(run_steps < 1) or np.any(run_steps > steps):
        raise ValueError(f"image_steps must be within 1..{steps}")
    stop = run_steps - 1 if stop_step is None else np.asarray(stop_step, np.int64).copy()
    if stop.shape != (n,) or np.any(stop < 0) or np.any(stop >= run_steps):
        raise ValueError("stop_step must be (N,) timestep indices within each image's steps")
    source = _Source(work)
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    psum = chip.psum_flow_ptr is not None
    edges = len(chip.edge_src)
    if chip.line_buffer:
        rows, need_ptr, need = chip.node_rows, chip.edge_need_ptr, chip.edge_need
        release, capacity = chip.edge_release, chip.edge_row_capacity
        bitmap = chip.flow_bitmap_row_flits
    else:  # a job is one row, which needs and frees the producer's one row
        rows, need_ptr, need = np.ones(layers, np.int64), np.arange(edges + 1), np.zeros(edges)
        release, capacity, bitmap = np.ones(edges), chip.edge_capacity, chip.flow_bitmap_flits
    size = min(n, window or window_images(steps, chip.nodes, edges))
    state = start_events(
        steps,
        run_steps,
        stop,
        *source.take(0, size),
        chip.pes,
        chip.pe_operation_cycles,
        chip.neuron_cycles,
        chip.decision_cycles,
        chip.edge_src,
        chip.edge_dst,
        np.array(capacity, np.int64),
        chip.edge_flow_ptr,
        chip.flow_link_ptr,
        chip.flow_links,
        chip.flow_flits_per_spike,
        np.array(bitmap, np.int64),
        chip.header_flits,
        chip.counter_cycles,
        chip.hop_cycles,
        chip.router_buffer_flits,
        len(chip.links),
        chip.psum_flow_ptr if psum else empty_i,
        chip.psum_flow_link_ptr if psum else empty_i,
        chip.psum_flow_links if psum else empty_i,
        chip.psum_flits_per_op if psum else empty_f,
        chip.psum_vectors_per_op if psum else empty_f,
        chip.accumulate_cycles,
        chip.input_cycles,
        chip.output_cycles,
        np.array(rows, np.int64),  # copies: one compiled signature whichever the mode
        np.array(need_ptr, np.int64),
        np.array(need, np.int64),
        np.array(release, np.int64),
    )
    win = _Window(chip, source, stop, size, state, on_records, keep)
    win.run()
    left = stuck(win.nodes, n)
    if left:
        raise ConfigError(
            f"the simulated chip stalled for good with {left} node(s) still to work: its line"
            " buffers (buffers.input_buffer_timesteps or tile_buffer_bits) are too small for"
            " the rows its layers' windows keep waiting for on reconverging paths"
        )
    image_start = win.image_start
    if chip.input_cycles > 0:  # an image's latency includes its input transfer, not its wait
        image_start = image_start - chip.input_cycles  # loaded in the input buffer
    start, finish = win.records()
    run = ChipRun(
        chip=chip,
        start=start,
        finish=finish,
        busy_cycles=win.nodes.busy_cycles,
        stall_cycles=win.nodes.stall[:, : len(STALL_CAUSES)],
        link_flits=win.noc.link_busy[: len(chip.links)],
        peak_buffer=win.bufs.peak,
        image_start=image_start,
        image_end=win.image_end,
        image_steps=stop + 1,
        psum_link_flits=win.noc.psum_busy[: len(chip.links)],
        jobs=win.jobs,
    )
    return run if keep else run.summary()
