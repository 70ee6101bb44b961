"""The discrete-event loop of `hwsim.hw.sim` (Numba): an event heap in cycles, nodes that
start a job's next output row (a job is one row without line buffers) when the producer rows
its window needs have arrived and every consumer's buffer has room, and packets that reserve
the links of their XY route (semantics: `hwsim.hw.sim.simulate`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.hw.timing import row_share

NEVER = np.iinfo(np.int64).max // 4
"""A time that never comes (cycles)."""

# why a node waits, in the order of `hwsim.hw.sim.STALL_CAUSES`
INPUT, NOC, BUFFER = 0, 1, 2
IDLE = 3  # no job left, or not waiting for anything yet

# event kinds (low bits of the key 4 x node + kind): the node's job ends, a packet or an
# image for it arrives, or its PE operations are done and its partial sums leave
FINISH, WAKE, PSUM = 0, 1, 2


@njit(cache=True)
def _push(times, keys, size, time, key):
    """Push (time, key) onto the binary min-heap in times[:size], keys[:size]; returns the
    arrays (grown if full)."""
    if size == len(times):
        grown_t = np.empty(2 * len(times), np.int64)
        grown_k = np.empty(2 * len(keys), np.int64)
        grown_t[:size] = times
        grown_k[:size] = keys
        times, keys = grown_t, grown_k
    i = size
    while i > 0:
        parent = (i - 1) // 2
        if times[parent] < time or (times[parent] == time and keys[parent] <= key):
            break
        times[i] = times[parent]
        keys[i] = keys[parent]
        i = parent
    times[i] = time
    keys[i] = key
    return times, keys


@njit(cache=True)
def _pop(times, keys, size):
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
def _part(total, rows, row):
    """`row_share` of a job's `total`, without its divisions for a whole-map job (one row)."""
    return total if rows == 1 else row_share(total, rows, row)


@njit(cache=True)
def _grown(stack):
    """`stack` with twice the room, its contents kept."""
    out = np.empty(2 * stack.shape[0], np.int64)
    out[: stack.shape[0]] = stack
    return out


@njit(cache=True)
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


@njit(cache=True, nogil=True, error_model="numpy")
def run_events(
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
    """Simulate every image's jobs (see `hwsim.hw.sim.simulate` for the arguments' meaning).
    A job of node v is node_rows[v] output rows in order (1: the whole timestep); edge e's
    buffer holds edge_cap[e] producer rows, its consumer's row y needs the producer's rows up
    to need[need_ptr[e] + y] and frees release[need_ptr[e] + y] of them when done;
    flow_bitmap holds a row's bitmap flits.

    Returns (start (N*steps, nodes), finish (N*steps, nodes): cycles, -1 if not performed;
    busy (nodes,), stall (nodes, 4) cycles by cause; link_busy (links,) spike flits;
    peak_buffer (edges,) rows held; psum_busy (links,) partial-sum flits; stuck: nodes left
    with work when no event remained (buffers too small for the windows: 0 normally))."""
    n_img = image_steps.shape[0]
    n_layers = pes.shape[0]
    n_nodes = n_layers + 1
    fusion = n_layers
    n_edges = edge_src.shape[0]
    jobs = n_img * steps
    start = np.full((jobs, n_nodes), -1, np.int64)
    finish = np.full((jobs, n_nodes), -1, np.int64)
    # rows of job g each edge's producer has put in its consumer's buffer
    rows_in = np.zeros((jobs, max(n_edges, 1)), np.int32)
    busy_cycles = np.zeros(n_nodes, np.int64)
    stall = np.zeros((n_nodes, 4), np.int64)
    reason = np.full(n_nodes, IDLE, np.int64)
    since = np.zeros(n_nodes, np.int64)
    busy = np.zeros(n_nodes, np.bool_)
    nxt = np.zeros(n_nodes, np.int64)
    announce = np.full(n_img, NEVER, np.int64)
    produced = np.zeros(n_edges, np.int64)  # rows put in the buffer, ever
    consumed = np.zeros(n_edges, np.int64)  # rows freed, ever
    base = np.zeros(n_edges, np.int64)  # `consumed` when the consumer tried its job's row 0
    peak = np.zeros(n_edges, np.int64)
    # arrival cycle of each held row (the latest of its job's rows so far), in a ring of at
    # least the rows the buffer can hold (a power of two): row number k (of `produced`) at
    # ring_ptr[e] + k & ring_mask[e]
    ring_mask = np.zeros(n_edges, np.int64)
    ring_ptr = np.zeros(n_edges + 1, np.int64)
    for e in range(n_edges):
        held = min(edge_cap[e], jobs * node_rows_of(node_rows, edge_src[e]))
        size = 1
        while size < held:
            size *= 2
        ring_mask[e] = size - 1
        ring_ptr[e + 1] = ring_ptr[e] + size
    ring = np.full(max(ring_ptr[n_edges], 1), NEVER, np.int64)
    latest = np.zeros(n_edges, np.int64)  # arrival of the edge's last row put in
    link_free = np.zeros(max(n_links, 1), np.int64)
    link_busy = np.zeros(max(n_links, 1), np.int64)
    psum_busy = np.zeros(max(n_links, 1), np.int64)
    psums = psum_flow_ptr.shape[0] > 0
    # the off-chip input: images load one after the other into a two-image buffer; image i + 2
    # loads once every source layer is done with image i
    load_end = np.zeros(n_img, np.int64)
    sources_done = np.zeros(n_img, np.int64)
    if input_cycles > 0:
        load_end[:] = NEVER
        for i in range(min(n_img, 2)):
            load_end[i] = (i + 1) * input_cycles
    enter = np.zeros(max(flow_links.shape[0], 1), np.int64)
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
    is_source = np.zeros(n_nodes, np.bool_)
    n_sources = 0
    for v in range(n_layers):
        if in_ptr[v + 1] == in_ptr[v]:
            is_source[v] = True
            n_sources += 1
    fill_in = in_ptr[:-1].copy()
    fill_out = out_ptr[:-1].copy()
    for e in range(n_edges):
        in_edges[fill_in[edge_dst[e]]] = e
        fill_in[edge_dst[e]] += 1
        out_edges[fill_out[edge_src[e]]] = e
        fill_out[edge_src[e]] += 1

    times = np.empty(1024, np.int64)
    keys = np.empty(1024, np.int64)
    size = 0
    if input_cycles > 0:  # the first two images arrive while nothing else happens
        for i in range(min(n_img, 2)):
            for u in range(n_layers):
                if is_source[u]:
                    times, keys = _push(times, keys, size, load_end[i], 4 * u + WAKE)
                    size += 1
    # nodes to try at the current cycle (a stack: same-cycle wake-ups never touch the heap)
    ready = np.empty(4 * n_nodes + 4 * n_edges + 4, np.int64)
    n_ready = 0
    for v in range(n_nodes):
        ready[n_ready] = v
        n_ready += 1
    # each node's next job (image, timestep, index g = image * steps + timestep) and the job
    # it is in (a node runs one row at a time: its FINISH event needs only the node): its
    # image, timestep, row and that row's start; `within` while rows of it remain
    nxt_i = np.zeros(n_nodes, np.int64)
    nxt_t = np.zeros(n_nodes, np.int64)
    run_g = np.zeros(n_nodes, np.int64)
    run_i = np.zeros(n_nodes, np.int64)
    run_t = np.zeros(n_nodes, np.int64)
    run_r = np.zeros(n_nodes, np.int64)
    row_start = np.zeros(n_nodes, np.int64)
    within = np.zeros(n_nodes, np.bool_)
    now = 0

    while True:
        while n_ready > 0:
            n_ready -= 1
            v = ready[n_ready]
            if busy[v]:
                continue
            while True:  # start node v's next row, skipping stopped jobs, or note why not
                if within[v]:  # the next row of the job it is in
                    g = run_g[v]
                    i = run_i[v]
                    t = run_t[v]
                    y = run_r[v] + 1
                    why = IDLE
                else:
                    i = nxt_i[v]
                    t = nxt_t[v]
                    y = 0
                    if i >= n_img:
                        if reason[v] != IDLE:
                            stall[v, reason[v]] += now - since[v]
                            reason[v] = IDLE
                            since[v] = now
                        break
                    if t >= image_steps[i]:  # past the image's run: nobody performs these jobs
                        nxt_i[v] = i + 1
                        nxt_t[v] = 0
                        nxt[v] = (i + 1) * steps
                        if input_cycles > 0 and is_source[v]:
                            sources_done[i] += 1
                            if sources_done[i] == n_sources and i + 2 < n_img:
                                # image i's buffer is free: image i + 2 loads after image i + 1
                                load_end[i + 2] = max(load_end[i + 1], now) + input_cycles
                                for u in range(n_layers):
                                    if is_source[u]:
                                        times, keys = _push(
                                            times, keys, size, load_end[i + 2], 4 * u + WAKE
                                        )
                                        size += 1
                        continue
                    g = nxt[v]
                    if t > stop_step[i] and announce[i] <= now:  # stopped: skip, free inputs
                        for k in range(in_ptr[v], in_ptr[v + 1]):
                            e = in_edges[k]
                            if rows_in[g, e] > 0:
                                consumed[e] += rows_in[g, e]
                                if n_ready == ready.shape[0]:
                                    ready = _grown(ready)
                                ready[n_ready] = edge_src[e]
                                n_ready += 1
                        nxt[v] = g + 1
                        nxt_t[v] = t + 1
                        continue
                    why = IDLE
                    if is_source[v] and load_end[i] > now:  # the image is not in yet
                        why = INPUT
                for k in range(in_ptr[v], in_ptr[v + 1]):  # a missing input outranks the NoC
                    e = in_edges[k]
                    last = need[need_ptr[e] + y]
                    if rows_in[g, e] <= last:
                        why = INPUT
                        break
                    if y == 0:  # the job's rows come after those freed so far
                        base[e] = consumed[e]
                    row = base[e] + last
                    if ring[ring_ptr[e] + (row & ring_mask[e])] > now:
                        why = NOC
                if why == IDLE:
                    for k in range(out_ptr[v], out_ptr[v + 1]):
                        e = out_edges[k]
                        if produced[e] - consumed[e] >= edge_cap[e]:
                            why = BUFFER
                            break
                if why != IDLE:
                    if reason[v] != why:
                        if reason[v] != IDLE:
                            stall[v, reason[v]] += now - since[v]
                        reason[v] = why
                        since[v] = now
                    break
                if reason[v] != IDLE:
                    stall[v, reason[v]] += now - since[v]
                rows = node_rows_of(node_rows, v)
                kind = FINISH
                if v == fusion:
                    duration = decision_cycles + ops[i, t, v] * counter_cycles
                    if t == stop_step[i]:  # the image's result leaves the chip
                        duration += output_cycles
                else:
                    rounds = (ops[i, t, v] + pes[v] - 1) // pes[v]
                    duration = _part(rounds, rows, y) * pe_cycles
                    n_ops = _part(ops[i, t, v], rows, y) if psums else 0
                    if n_ops > 0 and psum_flow_ptr[v + 1] > psum_flow_ptr[v]:
                        kind = PSUM  # partial sums leave for other tiles when the ops are done
                    else:
                        if psums:  # partial sums within the tile: accumulated at the reducers
                            vectors = np.int64(np.ceil(np.round(n_ops * psum_vectors[v], 9)))
                            duration += vectors * accumulate
                        duration += _part(neuron_cycles[v], rows, y)
                if y == 0:
                    start[g, v] = now
                    nxt[v] = g + 1
                    nxt_t[v] = t + 1
                    run_g[v] = g
                    run_i[v] = i
                    run_t[v] = t
                within[v] = y + 1 < rows
                if kind == FINISH:
                    if y + 1 == rows:
                        finish[g, v] = now + duration
                    busy_cycles[v] += duration
                busy[v] = True
                run_r[v] = y
                row_start[v] = now
                reason[v] = IDLE
                times, keys = _push(times, keys, size, now + duration, 4 * v + kind)
                size += 1
                break
        if size == 0:
            break
        now = times[0]
        key = keys[0]
        _pop(times, keys, size)
        size -= 1
        v = key >> 2
        kind = key & 3
        if kind == PSUM:  # v's operations are done: its partial sums travel to the reducers
            g = run_g[v]
            rows = node_rows_of(node_rows, v)
            n_ops = _part(ops[run_i[v], run_t[v], v], rows, run_r[v])
            arrive = now
            for f in range(psum_flow_ptr[v], psum_flow_ptr[v + 1]):
                flits = np.int64(np.ceil(np.round(n_ops * psum_per_op[f], 9)))
                if flits == 0:
                    continue
                a = _reserve(
                    now,
                    flits + header,
                    psum_link_ptr[f],
                    psum_link_ptr[f + 1],
                    psum_links,
                    link_free,
                    psum_busy,
                    hop,
                    buffer,
                    enter,
                )
                if a > arrive:
                    arrive = a
            vectors = np.int64(np.ceil(np.round(n_ops * psum_vectors[v], 9)))
            end = arrive + vectors * accumulate + _part(neuron_cycles[v], rows, run_r[v])
            if run_r[v] + 1 == rows:
                finish[g, v] = end
            busy_cycles[v] += end - row_start[v]
            times, keys = _push(times, keys, size, end, 4 * v + FINISH)
            size += 1
            continue
        if n_ready + 2 + n_nodes >= ready.shape[0]:
            ready = _grown(ready)
        ready[n_ready] = v
        n_ready += 1
        if kind == WAKE:
            continue
        g = run_g[v]
        i = run_i[v]
        t = run_t[v]
        y = run_r[v]
        rows = node_rows_of(node_rows, v)
        busy[v] = False
        since[v] = now
        reason[v] = IDLE
        for k in range(in_ptr[v], in_ptr[v + 1]):
            e = in_edges[k]
            consumed[e] += release[need_ptr[e] + y]
            if n_ready == ready.shape[0]:
                ready = _grown(ready)
            ready[n_ready] = edge_src[e]
            n_ready += 1
        for k in range(out_ptr[v], out_ptr[v + 1]):
            e = out_edges[k]
            c = edge_dst[e]
            if nxt[c] > g and not (within[c] and run_g[c] == g):
                continue  # the consumer skipped this (stopped) job
            produced[e] += 1
            rows_in[g, e] += 1
            held = produced[e] - consumed[e]
            if held > peak[e]:
                peak[e] = held
            arrive = now
            s = _part(spikes[i, t, v], rows, y)
            if s > 0:
                for f in range(edge_flow_ptr[e], edge_flow_ptr[e + 1]):
                    flits = flow_bitmap[f]
                    if flits == 0:
                        flits = np.int64(np.ceil(np.round(s * flow_per_spike[f], 9)))
                    if flits == 0:
                        continue
                    a = _reserve(
                        now,
                        flits + header,
                        flow_link_ptr[f],
                        flow_link_ptr[f + 1],
                        flow_links,
                        link_free,
                        link_busy,
                        hop,
                        buffer,
                        enter,
                    )
                    if a > arrive:
                        arrive = a
            if y > 0 and latest[e] > arrive:  # a row is in once its job's earlier rows are
                arrive = latest[e]
            latest[e] = arrive
            ring[ring_ptr[e] + ((produced[e] - 1) & ring_mask[e])] = arrive
            if arrive > now:  # the consumer now waits for the NoC; wake it on arrival
                times, keys = _push(times, keys, size, arrive, 4 * c + WAKE)
                size += 1
            if n_ready == ready.shape[0]:
                ready = _grown(ready)
            ready[n_ready] = c
            n_ready += 1
        if v == fusion and t == stop_step[i] and y + 1 == rows:
            announce[i] = now
            if n_ready + n_nodes >= ready.shape[0]:
                ready = _grown(ready)
            for u in range(n_nodes):
                ready[n_ready] = u
                n_ready += 1
    stuck = 0
    for v in range(n_nodes):
        if within[v] or nxt_i[v] < n_img:
            stuck += 1
    return (
        start,
        finish,
        busy_cycles,
        stall,
        link_busy[:n_links],
        peak,
        psum_busy[:n_links],
        stuck,
    )
