"""The state of the discrete-event loop of `hwsim.hw.sim` (`hwsim.hw.sim._kernel`): its arrays
as NamedTuples (the graph of nodes and edges, the jobs' costs, the NoC, each node's progress,
the input buffers), the event queue (a binary min-heap of (cycle, key) and a stack of nodes to
try at the current cycle) and their set-up at cycle 0. Compiled with the loop's options: the
steps without reference counting and inlined in Numba IR."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

NEVER = np.iinfo(np.int64).max // 4
"""A time that never comes (cycles)."""

# why a node waits, in the order of `hwsim.hw.sim.STALL_CAUSES`
INPUT, NOC, BUFFER = 0, 1, 2
IDLE = 3  # no job left, or not waiting for anything yet

# event kinds (low bits of the key 4 x node + kind): the node's job ends, a packet or an
# image for it arrives, or its PE operations are done and its partial sums leave
FINISH, WAKE, PSUM = 0, 1, 2

JIT = {"cache": True, "error_model": "numpy"}
LOOP = {**JIT, "_nrt": False}
"""The loop's options: without reference counting (each use of a NamedTuple's array would
otherwise cost an atomic increment and decrement: the loop ran 8x slower)."""
STEP = {**LOOP, "inline": "always"}
"""The loop's steps: inlined in Numba IR (as calls, passing NamedTuples of arrays, the loop
ran 3x slower)."""


class Graph(NamedTuple):
    """The nodes (layers 0..L-1, the fusion unit L) and their spike edges, e -> its
    consumer's input buffer: in_edges[in_ptr[v]:in_ptr[v + 1]] feed node v,
    out_edges[out_ptr[v]:out_ptr[v + 1]] leave it."""

    edge_src: np.ndarray  # (E,) int64 producer node
    edge_dst: np.ndarray  # (E,) int64 consumer node
    edge_cap: np.ndarray  # (E,) int64 producer rows the buffer holds
    in_ptr: np.ndarray  # (nodes + 1,) int64
    in_edges: np.ndarray  # int64
    out_ptr: np.ndarray  # (nodes + 1,) int64
    out_edges: np.ndarray  # int64
    is_source: np.ndarray  # (nodes,) bool: a layer without producers (reads the image)
    n_sources: int
    node_rows: np.ndarray  # (L,) int64 output rows of a layer's job
    need_ptr: np.ndarray  # (E + 1,) int64 into need, release
    need: np.ndarray  # int64: last producer row consumer row y needs
    release: np.ndarray  # int64: producer rows consumer row y frees


class Work(NamedTuple):
    """The images' jobs and what they cost (cycles)."""

    steps: int  # T: timesteps per image (job g = image x T + timestep)
    image_steps: np.ndarray  # (N,) int64 timesteps each image runs
    stop_step: np.ndarray  # (N,) int64 the fusion unit's stop
    ops: np.ndarray  # (N, T, nodes) int32 PE operations (fusion unit: counted spikes)
    spikes: np.ndarray  # (N, T, nodes) int32 spikes sent
    pes: np.ndarray  # (L,) int64
    pe_cycles: int  # cycles of one PE operation
    neuron_cycles: np.ndarray  # (L,) int64 neuron updates of a job
    decision_cycles: int
    counter_cycles: int  # per counted spike
    accumulate: int  # cycles per partial-sum vector accumulated
    psum_vectors: np.ndarray  # (L,) float64 partial-sum vectors per operation (empty: none)
    input_cycles: int  # off-chip input of an image (0: not modelled)
    output_cycles: int  # off-chip result of an image
    first: np.ndarray  # (1,) int64 the first image the window holds (ops, spikes, records)


class Noc(NamedTuple):
    """The flows of spikes (per edge) and partial sums (per layer), their routes' links, and
    the links' state."""

    edge_flow_ptr: np.ndarray  # (E + 1,) int64 into the flows
    flow_link_ptr: np.ndarray  # (flows + 1,) int64 into flow_links
    flow_links: np.ndarray  # int64 link indices of each route
    flow_per_spike: np.ndarray  # (flows,) float64 flits per spike
    flow_bitmap: np.ndarray  # (flows,) int64 flits of a row's bitmap (0: address events)
    psum_flow_ptr: np.ndarray  # (L + 1,) int64 (empty: no partial sums)
    psum_link_ptr: np.ndarray
    psum_links: np.ndarray
    psum_per_op: np.ndarray  # float64 flits per operation
    header: int  # flits per packet
    hop: int  # cycles per hop
    buffer: int  # router buffer flits (0: unbounded)
    link_free: np.ndarray  # (links,) int64 cycle each link is next free
    link_busy: np.ndarray  # (links,) int64 spike flits carried
    psum_busy: np.ndarray  # (links,) int64 partial-sum flits carried
    enter: np.ndarray  # scratch: cycle a packet's head enters each link of its route


class Nodes(NamedTuple):
    """Each node's progress and records, and each image's off-chip input."""

    start: np.ndarray  # (jobs, nodes) int64 cycle a job starts, -1: not performed
    finish: np.ndarray  # (jobs, nodes) int64 cycle a job ends, -1: not performed
    busy_cycles: np.ndarray  # (nodes,) int64
    stall: np.ndarray  # (nodes, 4) int64 cycles waited by cause
    reason: np.ndarray  # (nodes,) int64 why it waits now (IDLE: it does not)
    since: np.ndarray  # (nodes,) int64 since when
    busy: np.ndarray  # (nodes,) bool: a row of it runs
    nxt: np.ndarray  # (nodes,) int64 its next job g
    nxt_i: np.ndarray  # (nodes,) int64 ... that job's image
    nxt_t: np.ndarray  # (nodes,) int64 ... and timestep
    run_g: np.ndarray  # (nodes,) int64 the job it is in
    run_i: np.ndarray
    run_t: np.ndarray
    run_r: np.ndarray  # (nodes,) int64 the row it runs (or ran last)
    row_start: np.ndarray  # (nodes,) int64 that row's start
    within: np.ndarray  # (nodes,) bool: rows of its job remain
    announce: np.ndarray  # (N,) int64 cycle the fusion unit decided the image's stop
    load_end: np.ndarray  # (N,) int64 cycle the image is in the input buffer
    sources_done: np.ndarray  # (N,) int64 source layers done with the image


class Buffers(NamedTuple):
    """The rows each edge's producer has put in its consumer's buffer; the arrival cycle of
    each held row (the latest of its job's rows so far) in a ring of at least the rows the
    buffer can hold (a power of two): row number k (of `produced`) at
    ring_ptr[e] + k & ring_mask[e]."""

    rows_in: np.ndarray  # (jobs, E) int32 rows of job g put in, per edge
    produced: np.ndarray  # (E,) int64 rows put in the buffer, ever
    consumed: np.ndarray  # (E,) int64 rows freed, ever
    base: np.ndarray  # (E,) int64 `consumed` when the consumer tried its job's row 0
    peak: np.ndarray  # (E,) int64 most rows held
    latest: np.ndarray  # (E,) int64 arrival of the edge's last row put in
    ring: np.ndarray  # int64
    ring_ptr: np.ndarray  # (E + 1,) int64
    ring_mask: np.ndarray  # (E,) int64
    first: np.ndarray  # (1,) int64 the first job the window holds (rows_in's row 0)


class Queue(NamedTuple):
    """The event heap (binary min-heap of (time, key) in times[:sizes[0]], keys[:sizes[0]])
    and the nodes to try at the current cycle (a stack, ready[:sizes[1]]: same-cycle wake-ups
    never touch the heap). The loop (`hwsim.hw.sim._kernel._simulate`) keeps room for one
    step's additions (`room`)."""

    times: np.ndarray  # int64 cycles
    keys: np.ndarray  # int64 4 x node + event kind
    ready: np.ndarray  # int64 nodes
    sizes: np.ndarray  # (2,) int64: heap size, ready nodes


@njit(**LOOP)
def pop(times, keys, size):
    """Remove the heap's minimum (already read from times[0], keys[0]); size is before."""
    last_t = times[size - 1]
    last_k = keys[size - 1]
    n = size - 1
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and (
            times[child + 1] < times[child]
            or (times[child + 1] == times[child] and keys[child + 1] < keys[child])
        ):
            child += 1
        if last_t < times[child] or (last_t == times[child] and last_k <= keys[child]):
            break
        times[i] = times[child]
        keys[i] = keys[child]
        i = child
    if n > 0:
        times[i] = last_t
        keys[i] = last_k


@njit(cache=True)
def node_rows_of(node_rows, v):
    """Output rows of node v's job: node_rows[v] for a layer, 1 for the fusion unit."""
    return node_rows[v] if v < node_rows.shape[0] else 1


@njit(cache=True)
def _grown(stack):
    """`stack` with twice the room, its contents kept."""
    out = np.empty(2 * stack.shape[0], np.int64)
    out[: stack.shape[0]] = stack
    return out


# ------------------------------------------------------------------------- the queue


@njit(**STEP)
def schedule(q, time, key):
    """Push the event (time (cycles), key) onto q's heap (room kept by `_simulate`)."""
    times = q.times
    keys = q.keys
    i = q.sizes[0]
    q.sizes[0] = i + 1
    while i > 0:
        parent = (i - 1) // 2
        if times[parent] < time or (times[parent] == time and keys[parent] <= key):
            break
        times[i] = times[parent]
        keys[i] = keys[parent]
        i = parent
    times[i] = time
    keys[i] = key


@njit(**STEP)
def put(q, v):
    """Put node v on q's ready stack (room kept by `_simulate`)."""
    q.ready[q.sizes[1]] = v
    q.sizes[1] += 1


@njit(**STEP)
def wake_sources(q, time, graph):
    """A WAKE at `time` for every source layer (their image is in)."""
    for u in range(graph.is_source.shape[0] - 1):
        if graph.is_source[u]:
            schedule(q, time, 4 * u + WAKE)


@njit(**STEP)
def room(q, margin):
    """Whether q's heap and stack have room for `margin` more entries each."""
    return q.sizes[0] + margin <= q.times.shape[0] and q.sizes[1] + margin <= q.ready.shape[0]


@njit(**JIT)
def roomier(q, margin):
    """`q` with room for `margin` more entries in its heap and stack (arrays doubled as often
    as needed, contents kept)."""
    times, keys, ready = q.times, q.keys, q.ready
    while q.sizes[0] + margin > times.shape[0]:
        times, keys = _grown(times), _grown(keys)
    while q.sizes[1] + margin > ready.shape[0]:
        ready = _grown(ready)
    return Queue(times, keys, ready, q.sizes)


# ---------------------------------------------------------------------------- set-up


@njit(**JIT)
def new_graph(edge_src, edge_dst, edge_cap, node_rows, need_ptr, need, release, n_layers):
    """The edges' tables (`Graph`), in and out edges of each node in edge order."""
    n_nodes = n_layers + 1
    n_edges = edge_src.shape[0]
    in_ptr = np.zeros(n_nodes + 1, np.int64)
    out_ptr = np.zeros(n_nodes + 1, np.int64)
    for e in range(n_edges):
        in_ptr[edge_dst[e] + 1] += 1
        out_ptr[edge_src[e] + 1] += 1
    for v in range(n_nodes):
        in_ptr[v + 1] += in_ptr[v]
        out_ptr[v + 1] += out_ptr[v]
    in_edges = np.zeros(max(n_edges, 1), np.int64)
    out_edges = np.zeros(max(n_edges, 1), np.int64)
    fill_in = in_ptr[:-1].copy()
    fill_out = out_ptr[:-1].copy()
    for e in range(n_edges):
        in_edges[fill_in[edge_dst[e]]] = e
        fill_in[edge_dst[e]] += 1
        out_edges[fill_out[edge_src[e]]] = e
        fill_out[edge_src[e]] += 1
    is_source = np.zeros(n_nodes, np.bool_)
    n_sources = 0
    for v in range(n_layers):
        if in_ptr[v + 1] == in_ptr[v]:
            is_source[v] = True
            n_sources += 1
    return Graph(
        edge_src,
        edge_dst,
        edge_cap,
        in_ptr,
        in_edges,
        out_ptr,
        out_edges,
        is_source,
        n_sources,
        node_rows,
        need_ptr,
        need,
        release,
    )


@njit(**JIT)
def new_buffers(graph, jobs, ring_jobs):
    """Empty input buffers (`Buffers`) for a window of `jobs` jobs per node, each edge's ring
    sized to the rows its buffer can hold (at most all the producer's rows of the stream's
    `ring_jobs` jobs)."""
    n_edges = graph.edge_src.shape[0]
    ring_mask = np.zeros(n_edges, np.int64)
    ring_ptr = np.zeros(n_edges + 1, np.int64)
    for e in range(n_edges):
        rows = node_rows_of(graph.node_rows, graph.edge_src[e])
        held = min(graph.edge_cap[e], ring_jobs * rows)
        size = 1
        while size < held:
            size *= 2
        ring_mask[e] = size - 1
        ring_ptr[e + 1] = ring_ptr[e] + size
    return Buffers(
        np.zeros((jobs, max(n_edges, 1)), np.int32),
        np.zeros(n_edges, np.int64),
        np.zeros(n_edges, np.int64),
        np.zeros(n_edges, np.int64),
        np.zeros(n_edges, np.int64),
        np.zeros(n_edges, np.int64),
        np.full(max(ring_ptr[n_edges], 1), NEVER, np.int64),
        ring_ptr,
        ring_mask,
        np.zeros(1, np.int64),
    )


@njit(**JIT)
def new_nodes(jobs, n_nodes, n_img, input_cycles):
    """Every node before its first job (`Nodes`). The off-chip input: images load one after
    the other into a two-image buffer, the first two from cycle 0 (the others once a slot is
    free: `hwsim.hw.sim._kernel._source_done`)."""
    load_end = np.zeros(n_img, np.int64)
    if input_cycles > 0:
        load_end[:] = NEVER
        for i in range(min(n_img, 2)):
            load_end[i] = (i + 1) * input_cycles
    return Nodes(
        np.full((jobs, n_nodes), -1, np.int64),
        np.full((jobs, n_nodes), -1, np.int64),
        np.zeros(n_nodes, np.int64),
        np.zeros((n_nodes, 4), np.int64),
        np.full(n_nodes, IDLE, np.int64),
        np.zeros(n_nodes, np.int64),
        np.zeros(n_nodes, np.bool_),
        np.zeros(n_nodes, np.int64),
        np.zeros(n_nodes, np.int64),
        np.zeros(n_nodes, np.int64),
        np.zeros(n_nodes, np.int64),
        np.zeros(n_nodes, np.int64),
        np.zeros(n_nodes, np.int64),
        np.zeros(n_nodes, np.int64),
        np.zeros(n_nodes, np.int64),
        np.zeros(n_nodes, np.bool_),
        np.full(n_img, NEVER, np.int64),
        load_end,
        np.zeros(n_img, np.int64),
    )


@njit(**JIT)
def new_queue(graph, nodes, input_cycles, margin):
    """The queue at cycle 0, with room for `margin` more: every node ready; with an off-chip
    input, the first two images' arrivals at the source layers (they load while nothing else
    happens)."""
    n_nodes = graph.is_source.shape[0]
    heap = 1024
    while heap < 2 * n_nodes + margin:
        heap *= 2
    q = Queue(
        np.empty(heap, np.int64),
        np.empty(heap, np.int64),
        np.empty(4 * n_nodes + 4 * graph.edge_src.shape[0] + 4 + margin, np.int64),
        np.zeros(2, np.int64),
    )
    if input_cycles > 0:
        for i in range(min(nodes.load_end.shape[0], 2)):
            wake_sources(q, nodes.load_end[i], graph)
    for v in range(n_nodes):
        put(q, v)
    return q
