"""The discrete-event loop of `hwsim.hw.sim` (Numba): an event heap in cycles, nodes that
start a job when its inputs have arrived and every consumer's buffer has room, and packets
that reserve the links of their XY route (semantics: `hwsim.hw.sim.simulate`)."""

from __future__ import annotations

import numpy as np
from numba import njit

NEVER = np.iinfo(np.int64).max // 4
"""A time that never comes (cycles)."""

# why a node waits, in the order of `hwsim.hw.sim.STALL_CAUSES`
INPUT, NOC, BUFFER = 0, 1, 2
IDLE = 3  # no job left, or not waiting for anything yet

# event kinds (low bit of the key)
FINISH, WAKE = 0, 1


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
def _reserve(now, flits, first, last, flow_links, link_free, link_busy, hop, buffer, enter):
    """Send a packet of `flits` flits at `now` along links flow_links[first:last]: its head
    enters each link when it has crossed the previous hop and the link is free; each link is
    held for the flits' serialisation, longer when a router buffer of `buffer` flits (0:
    unbounded) behind a blocked head fills. Returns the cycle its last flit arrives."""
    hops = last - first
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
        if buffer > 0 and flits > buffer and release - buffer > own:
            own = release - buffer
        release = own
        link_free[flow_links[first + k]] = own
        link_busy[flow_links[first + k]] += flits
    return enter[hops - 1] + hop + flits - 1


@njit(cache=True)
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
    hop,
    buffer,
    n_links,
):
    """Simulate every image's jobs (see `hwsim.hw.sim.simulate` for the arguments' meaning).

    Returns (start (nodes, N*steps), finish (nodes, N*steps): cycles, -1 if not performed;
    busy (nodes,), stall (nodes, 4) cycles by cause; link_busy (links,) flits;
    peak_buffer (edges,) timesteps held)."""
    n_img = image_steps.shape[0]
    n_layers = pes.shape[0]
    n_nodes = n_layers + 1
    fusion = n_layers
    n_edges = edge_src.shape[0]
    jobs = n_img * steps
    start = np.full((n_nodes, jobs), -1, np.int64)
    finish = np.full((n_nodes, jobs), -1, np.int64)
    done = np.zeros((n_nodes, jobs), np.bool_)  # the job's FINISH event has been processed
    busy_cycles = np.zeros(n_nodes, np.int64)
    stall = np.zeros((n_nodes, 4), np.int64)
    reason = np.full(n_nodes, IDLE, np.int64)
    since = np.zeros(n_nodes, np.int64)
    busy = np.zeros(n_nodes, np.bool_)
    nxt = np.zeros(n_nodes, np.int64)
    announce = np.full(n_img, NEVER, np.int64)
    produced = np.zeros(n_edges, np.int64)
    consumed = np.zeros(n_edges, np.int64)
    peak = np.zeros(n_edges, np.int64)
    arrival = np.full((n_edges, jobs), NEVER, np.int64)
    link_free = np.zeros(max(n_links, 1), np.int64)
    link_busy = np.zeros(max(n_links, 1), np.int64)
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
    for v in range(n_nodes):
        times, keys = _push(times, keys, size, 0, v * 2 + WAKE)
        size += 1

    while size > 0:
        now = times[0]
        key = keys[0]
        _pop(times, keys, size)
        size -= 1
        kind = key & 1
        v = (key >> 1) % n_nodes
        wake_all = False
        if kind == FINISH:
            g = (key >> 1) // n_nodes
            i = g // steps
            t = g - i * steps
            busy[v] = False
            done[v, g] = True
            since[v] = now
            reason[v] = IDLE
            for k in range(in_ptr[v], in_ptr[v + 1]):
                e = in_edges[k]
                consumed[e] += 1
                times, keys = _push(times, keys, size, now, edge_src[e] * 2 + WAKE)
                size += 1
            for k in range(out_ptr[v], out_ptr[v + 1]):
                e = out_edges[k]
                c = edge_dst[e]
                if nxt[c] > g:  # the consumer already skipped this (stopped) job
                    continue
                produced[e] += 1
                held = produced[e] - consumed[e]
                if held > peak[e]:
                    peak[e] = held
                arrive = now
                s = spikes[i, t, v]
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
                arrival[e, g] = arrive
                times, keys = _push(times, keys, size, arrive, c * 2 + WAKE)
                size += 1
                if arrive > now:  # the consumer now waits for the NoC, not the producer
                    times, keys = _push(times, keys, size, now, c * 2 + WAKE)
                    size += 1
            if v == fusion and t == stop_step[i]:
                announce[i] = now
                wake_all = True
        if wake_all:
            for u in range(n_nodes):
                times, keys = _push(times, keys, size, now, u * 2 + WAKE)
                size += 1
        # try to start node v's next job
        if busy[v]:
            continue
        while True:
            g = nxt[v]
            if g >= jobs:
                if reason[v] != IDLE:
                    stall[v, reason[v]] += now - since[v]
                    reason[v] = IDLE
                    since[v] = now
                break
            i = g // steps
            t = g - i * steps
            if t >= image_steps[i] or (t > stop_step[i] and announce[i] <= now):
                # not part of this image's run, or the image has stopped: skip the job
                for k in range(in_ptr[v], in_ptr[v + 1]):
                    e = in_edges[k]
                    if done[edge_src[e], g]:
                        consumed[e] += 1
                        times, keys = _push(times, keys, size, now, edge_src[e] * 2 + WAKE)
                        size += 1
                nxt[v] = g + 1
                continue
            why = IDLE
            for k in range(in_ptr[v], in_ptr[v + 1]):
                e = in_edges[k]
                if not done[edge_src[e], g]:
                    why = INPUT
                    break
                if arrival[e, g] > now:
                    why = NOC
                    break
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
            if v == fusion:
                duration = decision_cycles
            else:
                n_ops = ops[i, t, v]
                duration = (n_ops + pes[v] - 1) // pes[v] * pe_cycles + neuron_cycles[v]
            start[v, g] = now
            finish[v, g] = now + duration
            busy_cycles[v] += duration
            busy[v] = True
            nxt[v] = g + 1
            reason[v] = IDLE
            times, keys = _push(times, keys, size, now + duration, (g * n_nodes + v) * 2 + FINISH)
            size += 1
            break
    return start, finish, busy_cycles, stall, link_busy[:n_links], peak
