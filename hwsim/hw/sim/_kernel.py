"""The discrete-event loop of `hwsim.hw.sim` (Numba): an event heap in cycles, nodes that
start a job's next output row (a job is one row without line buffers) when the producer rows
its window needs have arrived and every consumer's buffer has room, and packets that reserve
the links of their XY route (semantics: `hwsim.hw.sim.simulate`).

`start_events` allocates the state (`hwsim.hw.sim._kernel_state`: NamedTuples of arrays,
changed in place) for a window of W images: their ops and spikes (`Work.ops`, `spikes`), their
jobs' records (`Nodes.start`, `finish`) and rows put in (`Buffers.rows_in`), indexed from the
window's first image (`Work.first`, `Buffers.first`); the per-image state (load, stop) and the
per-node state cover the stream. `advance` calls `_simulate`, the loop: try the ready nodes
(`_try_start`: a node starts its next row, skips a job or an image, or waits), then take the
next event: a node's partial sums leave (`_psums_sent`), a node's row ends (`_row_done`), or a
packet or an image arrives for a node (it is tried again). The loop never allocates (it is
compiled without reference counting, as the engine's kernels: `hwsim.engine._kernels.KERNEL`);
it returns when its queue may fill (`advance` gives it more room and goes on), when no event is
left (DONE), or when a node's next job is past the window (PAUSED, the node back on the ready
stack, nothing else changed): the driver (`hwsim.hw.sim.simulate`) then hands the finished
images' records on, shifts the window and calls `advance` again, which goes on exactly where
it paused, so the events and records are those of one uninterrupted run."""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.hw.sim._kernel_state import (
    BUFFER,
    FINISH,
    IDLE,
    INPUT,
    JIT,
    LOOP,
    NOC,
    PSUM,
    STEP,
    WAKE,
    Noc,
    Work,
    new_buffers,
    new_graph,
    new_nodes,
    new_queue,
    node_rows_of,
    pop,
    put,
    room,
    roomier,
    schedule,
    wake_sources,
)
from hwsim.hw.timing import row_share

# why `_simulate` returns: its queue needs room, no event is left, a node reached the window's
# end (its next image is not in the window)
ROOM, DONE, PAUSED = 0, 1, 2


@njit(cache=True)
def _part(total, rows, row):
    """`row_share` of a job's `total`, without its divisions for a whole-map job (one row)."""
    return total if rows == 1 else row_share(total, rows, row)


@njit(cache=True)
def _units(count, per):
    """Whole flits (or vectors) of `count` spikes or operations at `per` each, rounded up
    (after rounding to 9 decimals, so that an exact product never gains one)."""
    return np.int64(np.ceil(np.round(count * per, 9)))


@njit(**LOOP)
def _reserve(now, flits, first, last, flow_links, link_free, link_busy, hop, buffer, enter):
    """Send a packet of `flits` flits at `now` along links flow_links[first:last]: its head
    enters each link when it has crossed the previous hop and the link is free; each link is
    held for the flits' serialisation, longer when a router buffer of `buffer` flits (0:
    unbounded) behind it fills: link k stays held until the packet's tail fits in the buffer
    before link k + 1, i.e. until link k + 1's release minus `buffer` (the flits queued there
    before it having passed). Returns the cycle its last flit arrives."""
    hops = last - first
    if hops == 0:  # source and destination share a router: nothing crosses a link
        return now
    t = now
    for k in range(hops):
        link = flow_links[first + k]
        if k > 0:
            t = t + hop
        if link_free[link] > t:
            t = link_free[link]
        enter[k] = t
    release = enter[hops - 1] + flits
    link_free[flow_links[last - 1]] = release
    link_busy[flow_links[last - 1]] += flits
    for k in range(hops - 2, -1, -1):
        own = enter[k] + flits
        if buffer > 0 and release - buffer > own:
            own = release - buffer
        release = own
        link_free[flow_links[first + k]] = own
        link_busy[flow_links[first + k]] += flits
    return enter[hops - 1] + hop + flits - 1


# ------------------------------------------------------------------ trying a node


@njit(**STEP)
def _wait(nodes, v, why, now):
    """Node v waits from `now` for `why` (IDLE: for nothing); the cycles of a previous cause
    are counted."""
    if nodes.reason[v] != why:
        if nodes.reason[v] != IDLE:
            nodes.stall[v, nodes.reason[v]] += now - nodes.since[v]
        nodes.reason[v] = why
        nodes.since[v] = now


@njit(**STEP)
def _source_done(i, now, q, graph, work, nodes):
    """A source layer is done with image i: once all are, image i's input slot is free and
    image i + 2 loads after image i + 1."""
    nodes.sources_done[i] += 1
    if nodes.sources_done[i] == graph.n_sources and i + 2 < nodes.load_end.shape[0]:
        nodes.load_end[i + 2] = max(nodes.load_end[i + 1], now) + work.input_cycles
        wake_sources(q, nodes.load_end[i + 2], graph)


@njit(**STEP)
def _next_image(v, i, now, q, graph, work, nodes):
    """Node v is past image i's run (nobody performs its later jobs): on to image i + 1."""
    nodes.nxt_i[v] = i + 1
    nodes.nxt_t[v] = 0
    nodes.nxt[v] = (i + 1) * work.steps
    if work.input_cycles > 0 and graph.is_source[v]:
        _source_done(i, now, q, graph, work, nodes)


@njit(**STEP)
def _skip_job(v, g, t, q, graph, nodes, bufs):
    """Node v skips job g (timestep t) of a stopped image: the rows its producers put in for
    it are freed (the producers are tried again)."""
    for k in range(graph.in_ptr[v], graph.in_ptr[v + 1]):
        e = graph.in_edges[k]
        w = g - bufs.first[0]
        if bufs.rows_in[w, e] > 0:
            bufs.consumed[e] += bufs.rows_in[w, e]
            put(q, graph.edge_src[e])
    nodes.nxt[v] = g + 1
    nodes.nxt_t[v] = t + 1


@njit(**STEP)
def _why_waiting(v, g, y, now, why, graph, bufs):
    """Why node v cannot start row y of job g at `now` (IDLE: it can; `why` may already say
    INPUT): a producer row y needs not put in (which outranks the NoC), one still in flight,
    or a consumer's full buffer. Row 0 notes where the job's rows begin in each buffer."""
    for k in range(graph.in_ptr[v], graph.in_ptr[v + 1]):
        e = graph.in_edges[k]
        last = graph.need[graph.need_ptr[e] + y]
        if bufs.rows_in[g - bufs.first[0], e] <= last:
            return INPUT
        if y == 0:  # the job's rows come after those freed so far
            bufs.base[e] = bufs.consumed[e]
        row = bufs.base[e] + last
        if bufs.ring[bufs.ring_ptr[e] + (row & bufs.ring_mask[e])] > now:
            why = NOC
    if why != IDLE:
        return why
    for k in range(graph.out_ptr[v], graph.out_ptr[v + 1]):
        e = graph.out_edges[k]
        if bufs.produced[e] - bufs.consumed[e] >= graph.edge_cap[e]:
            return BUFFER
    return IDLE


@njit(**STEP)
def _row_cycles(v, i, t, y, rows, work, noc):
    """(cycles, event kind) of row y of node v's job (i, t): the fusion unit's decision (and
    the image's result out at its stop); a layer's PE rounds, then (FINISH) its partial sums
    accumulated within the tile and its neuron updates, or (PSUM) its partial sums sent to
    other tiles first (`_psums_sent`)."""
    if v == work.pes.shape[0]:  # the fusion unit
        duration = work.decision_cycles + work.ops[i - work.first[0], t, v] * work.counter_cycles
        if t == work.stop_step[i]:  # the image's result leaves the chip
            duration += work.output_cycles
        return duration, FINISH
    psums = noc.psum_flow_ptr.shape[0] > 0
    rounds = (work.ops[i - work.first[0], t, v] + work.pes[v] - 1) // work.pes[v]
    duration = _part(rounds, rows, y) * work.pe_cycles
    n_ops = _part(work.ops[i - work.first[0], t, v], rows, y) if psums else 0
    if n_ops > 0 and noc.psum_flow_ptr[v + 1] > noc.psum_flow_ptr[v]:
        return duration, PSUM  # partial sums leave for other tiles when the ops are done
    if psums:  # partial sums within the tile: accumulated at the reducers
        duration += _units(n_ops, work.psum_vectors[v]) * work.accumulate
    return duration + _part(work.neuron_cycles[v], rows, y), FINISH


@njit(**STEP)
def _start_row(v, g, i, t, y, now, q, graph, work, noc, nodes):
    """Node v starts row y of job g = (i, t) at `now`: its end (or its partial sums' leaving)
    is scheduled."""
    if nodes.reason[v] != IDLE:
        nodes.stall[v, nodes.reason[v]] += now - nodes.since[v]
    rows = node_rows_of(graph.node_rows, v)
    duration, kind = _row_cycles(v, i, t, y, rows, work, noc)
    if y == 0:
        nodes.start[g - work.first[0] * work.steps, v] = now
        nodes.nxt[v] = g + 1
        nodes.nxt_t[v] = t + 1
        nodes.run_g[v] = g
        nodes.run_i[v] = i
        nodes.run_t[v] = t
    nodes.within[v] = y + 1 < rows
    if kind == FINISH:
        if y + 1 == rows:
            nodes.finish[g - work.first[0] * work.steps, v] = now + duration
        nodes.busy_cycles[v] += duration
    nodes.busy[v] = True
    nodes.run_r[v] = y
    nodes.row_start[v] = now
    nodes.reason[v] = IDLE
    schedule(q, now + duration, 4 * v + kind)


@njit(**STEP)
def _try_start(v, now, q, graph, work, noc, nodes, bufs):
    """One step of node v (not busy) at `now`: start its next row (the next of the job it is
    in, else the first of its next job), or note why it waits; or skip a job of a stopped
    image or the jobs past an image's run, and put v back on the ready stack, to be tried
    again before any other node."""
    if nodes.within[v]:  # the next row of the job it is in
        g = nodes.run_g[v]
        i = nodes.run_i[v]
        t = nodes.run_t[v]
        y = nodes.run_r[v] + 1
        why = IDLE
    else:
        i = nodes.nxt_i[v]
        t = nodes.nxt_t[v]
        y = 0
        if i >= work.image_steps.shape[0]:  # no job left
            _wait(nodes, v, IDLE, now)
            return False
        if i - work.first[0] >= work.ops.shape[0]:  # past the window: pause, v tried again
            put(q, v)
            return True
        if t >= work.image_steps[i]:  # past the image's run: nobody performs these jobs
            _next_image(v, i, now, q, graph, work, nodes)
            put(q, v)
            return False
        g = nodes.nxt[v]
        if t > work.stop_step[i] and nodes.announce[i] <= now:  # stopped: skip it
            _skip_job(v, g, t, q, graph, nodes, bufs)
            put(q, v)
            return False
        why = INPUT if graph.is_source[v] and nodes.load_end[i] > now else IDLE
    why = _why_waiting(v, g, y, now, why, graph, bufs)
    if why != IDLE:
        _wait(nodes, v, why, now)
    else:
        _start_row(v, g, i, t, y, now, q, graph, work, noc, nodes)
    return False


# --------------------------------------------------------------------------- events


@njit(**STEP)
def _psums_sent(v, now, q, graph, work, noc, nodes):
    """Node v's PE operations are done at `now`: its partial sums travel to the reducers
    (one packet per flow), are accumulated, its neurons updated; its row's end scheduled."""
    rows = node_rows_of(graph.node_rows, v)
    y = nodes.run_r[v]
    n_ops = _part(work.ops[nodes.run_i[v] - work.first[0], nodes.run_t[v], v], rows, y)
    arrive = now
    for f in range(noc.psum_flow_ptr[v], noc.psum_flow_ptr[v + 1]):
        flits = _units(n_ops, noc.psum_per_op[f])
        if flits == 0:
            continue
        a = _reserve(
            now,
            flits + noc.header,
            noc.psum_link_ptr[f],
            noc.psum_link_ptr[f + 1],
            noc.psum_links,
            noc.link_free,
            noc.psum_busy,
            noc.hop,
            noc.buffer,
            noc.enter,
        )
        if a > arrive:
            arrive = a
    end = arrive + _units(n_ops, work.psum_vectors[v]) * work.accumulate
    end += _part(work.neuron_cycles[v], rows, y)
    if y + 1 == rows:
        nodes.finish[nodes.run_g[v] - work.first[0] * work.steps, v] = end
    nodes.busy_cycles[v] += end - nodes.row_start[v]
    schedule(q, end, 4 * v + FINISH)


@njit(**STEP)
def _send_row(e, s, now, noc):
    """Send a row's `s` spikes over edge e at `now`, one packet per flow (a bitmap's flits or
    the spikes' address events); returns the cycle the last arrives."""
    arrive = now
    for f in range(noc.edge_flow_ptr[e], noc.edge_flow_ptr[e + 1]):
        flits = noc.flow_bitmap[f]
        if flits == 0:
            flits = _units(s, noc.flow_per_spike[f])
        if flits == 0:
            continue
        a = _reserve(
            now,
            flits + noc.header,
            noc.flow_link_ptr[f],
            noc.flow_link_ptr[f + 1],
            noc.flow_links,
            noc.link_free,
            noc.link_busy,
            noc.hop,
            noc.buffer,
            noc.enter,
        )
        if a > arrive:
            arrive = a
    return arrive


@njit(**STEP)
def _deliver(e, g, y, s, now, q, graph, noc, bufs):
    """Put row y of job g (its `s` spikes) in edge e's buffer at `now`: held from now, in
    (arrived) once its packets and its job's earlier rows are; the consumer is tried again
    (and woken on the arrival)."""
    c = graph.edge_dst[e]
    bufs.produced[e] += 1
    bufs.rows_in[g - bufs.first[0], e] += 1
    held = bufs.produced[e] - bufs.consumed[e]
    if held > bufs.peak[e]:
        bufs.peak[e] = held
    arrive = _send_row(e, s, now, noc) if s > 0 else now
    if y > 0 and bufs.latest[e] > arrive:  # a row is in once its job's earlier rows are
        arrive = bufs.latest[e]
    bufs.latest[e] = arrive
    bufs.ring[bufs.ring_ptr[e] + ((bufs.produced[e] - 1) & bufs.ring_mask[e])] = arrive
    if arrive > now:  # the consumer now waits for the NoC; wake it on arrival
        schedule(q, arrive, 4 * c + WAKE)
    put(q, c)


@njit(**STEP)
def _row_done(v, now, q, graph, work, noc, nodes, bufs):
    """Node v's row ends at `now`: it frees the producer rows no later row needs, puts its
    row in each consumer's buffer (unless the consumer skipped the job), and, the fusion
    unit's last row of an image's stop step, announces the stop to every node."""
    g = nodes.run_g[v]
    i = nodes.run_i[v]
    t = nodes.run_t[v]
    y = nodes.run_r[v]
    rows = node_rows_of(graph.node_rows, v)
    nodes.busy[v] = False
    nodes.since[v] = now
    nodes.reason[v] = IDLE
    for k in range(graph.in_ptr[v], graph.in_ptr[v + 1]):
        e = graph.in_edges[k]
        bufs.consumed[e] += graph.release[graph.need_ptr[e] + y]
        put(q, graph.edge_src[e])
    s = _part(work.spikes[i - work.first[0], t, v], rows, y)
    for k in range(graph.out_ptr[v], graph.out_ptr[v + 1]):
        e = graph.out_edges[k]
        c = graph.edge_dst[e]
        if nodes.nxt[c] > g and not (nodes.within[c] and nodes.run_g[c] == g):
            continue  # the consumer skipped this (stopped) job
        _deliver(e, g, y, s, now, q, graph, noc, bufs)
    if v == work.pes.shape[0] and t == work.stop_step[i] and y + 1 == rows:
        nodes.announce[i] = now
        for u in range(graph.is_source.shape[0]):
            put(q, u)


@njit(**LOOP)
def _simulate(now, q, graph, work, noc, nodes, bufs, margin):
    """Run from cycle `now`: try the ready nodes, then take the next event, until no event
    is left (returns (now, True)) or until q may lack room for one step's `margin` additions
    (returns (now, False): call again with more room)."""
    while True:
        while q.sizes[1] > 0:
            if not room(q, margin):
                return now, ROOM
            q.sizes[1] -= 1
            v = q.ready[q.sizes[1]]
            if not nodes.busy[v] and _try_start(v, now, q, graph, work, noc, nodes, bufs):
                return now, PAUSED
        if q.sizes[0] == 0:
            return now, DONE
        if not room(q, margin):
            return now, ROOM
        now = q.times[0]
        key = q.keys[0]
        pop(q.times, q.keys, q.sizes[0])
        q.sizes[0] -= 1
        v = key >> 2
        kind = key & 3
        if kind == PSUM:
            _psums_sent(v, now, q, graph, work, noc, nodes)
            continue
        put(q, v)  # tried again (a WAKE: its packet or image is in)
        if kind == FINISH:
            _row_done(v, now, q, graph, work, noc, nodes, bufs)


@njit(cache=True, nogil=True, error_model="numpy")
def start_events(
    steps,
    image_steps,
    stop_step,
    ops,
    spikes,
    pes,
    pe_cycles,
    neuron_cycles,
    decision_cycles,
    edge_src,
    edge_dst,
    edge_cap,
    edge_flow_ptr,
    flow_link_ptr,
    flow_links,
    flow_per_spike,
    flow_bitmap,
    header,
    counter_cycles,
    hop,
    buffer,
    n_links,
    psum_flow_ptr,
    psum_link_ptr,
    psum_links,
    psum_per_op,
    psum_vectors,
    accumulate,
    input_cycles,
    output_cycles,
    node_rows,
    need_ptr,
    need,
    release,
):
    """The state at cycle 0 of a run of every image's jobs (see `hwsim.hw.sim.simulate` for
    the arguments' meaning), `ops` and `spikes` (W, steps, nodes) those of the window's images
    (the first W). A job of node v is node_rows[v] output rows in order (1: the whole
    timestep); edge e's buffer holds edge_cap[e] producer rows, its consumer's row y needs the
    producer's rows up to need[need_ptr[e] + y] and frees release[need_ptr[e] + y] of them
    when done; flow_bitmap holds a row's bitmap flits.

    Returns (graph, work, noc, nodes, bufs, queue, margin) for `advance`. What the run measures
    is read from them: nodes.start, nodes.finish (W*steps, nodes) the window's jobs' cycles,
    -1 if not performed; nodes.busy_cycles (nodes,), nodes.stall (nodes, 4) cycles by cause;
    noc.link_busy[:n_links] spike flits, noc.psum_busy[:n_links] partial-sum flits;
    bufs.peak (edges,) rows held; `stuck` the nodes left with work."""
    n_img = image_steps.shape[0]
    n_layers = pes.shape[0]
    n_edges = edge_src.shape[0]
    jobs = ops.shape[0] * steps  # the window's
    graph = new_graph(edge_src, edge_dst, edge_cap, node_rows, need_ptr, need, release, n_layers)
    work = Work(
        steps,
        image_steps,
        stop_step,
        ops,
        spikes,
        pes,
        pe_cycles,
        neuron_cycles,
        decision_cycles,
        counter_cycles,
        accumulate,
        psum_vectors,
        input_cycles,
        output_cycles,
        np.zeros(1, np.int64),
    )
    links = max(n_links, 1)
    noc = Noc(
        edge_flow_ptr,
        flow_link_ptr,
        flow_links,
        flow_per_spike,
        flow_bitmap,
        psum_flow_ptr,
        psum_link_ptr,
        psum_links,
        psum_per_op,
        header,
        hop,
        buffer,
        np.zeros(links, np.int64),
        np.zeros(links, np.int64),
        np.zeros(links, np.int64),
        np.zeros(max(flow_links.shape[0], 1), np.int64),
    )
    nodes = new_nodes(jobs, n_layers + 1, n_img, input_cycles)
    bufs = new_buffers(graph, jobs, n_img * steps)
    # one step's most additions: a FINISH puts the node, its producers and consumers (and
    # every node at a stop) on the stack and wakes its consumers; a node past an image wakes
    # every source layer
    margin = n_layers + 1 + n_edges + 2
    q = new_queue(graph, nodes, input_cycles, margin)
    return graph, work, noc, nodes, bufs, q, margin


@njit(cache=True, nogil=True, error_model="numpy")
def advance(now, q, graph, work, noc, nodes, bufs, margin):
    """Run the loop from `now` until no event is left (DONE) or a node reaches the window's
    end (PAUSED): (now, status, the queue, given more room as it filled)."""
    while True:
        now, status = _simulate(now, q, graph, work, noc, nodes, bufs, margin)
        if status != ROOM:
            return now, status, q
        q = roomier(q, margin)


@njit(**JIT)
def stuck(nodes, n_img):
    """Nodes left with work (in a job, or with an image to go) when no event remains: line
    buffers too small for their windows (0 normally)."""
    left = 0
    for v in range(nodes.within.shape[0]):
        if nodes.within[v] or nodes.nxt_i[v] < n_img:
            left += 1
    return left
