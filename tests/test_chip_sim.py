"""The cycle-level chip simulator against closed forms, hand-computed cases and the analytic
pipeline model."""

import sys
from pathlib import Path

import numpy as np
import pytest

from hwsim.hw.activity import LayerActivity
from hwsim.hw.arch import load_arch, parse_arch
from hwsim.hw.mapping import map_network
from hwsim.hw.sim import ChipModel, StreamedWorkload, Workload, chip_model, simulate
from hwsim.hw.timing import run_timing
from hwsim.model.graph import FC_HEAD, Role
from hwsim.model.netspec import NetSpec
from tests.geometry import chain, conv, gap, linear

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml")


def arr(values, dtype=np.int64) -> np.ndarray:
    return np.asarray(values, dtype)


def line_chip(
    pes=(1, 1),
    pe_cycles=26,
    routes=((0, 1),),
    capacity=(1000, 1000),
    hop=2,
    buffer=0,
    decision=0,
    neuron=(0, 0),
) -> ChipModel:
    """Layers a -> b -> fusion unit; a's spikes to b take one flow per entry of `routes`, each
    over the given link indices (address events, one flit per spike); b feeds the fusion unit
    in its own tile."""
    ptr, links = [0], []
    for route in routes:
        links.extend(route)
        ptr.append(len(links))
    n_links = max(links, default=-1) + 1
    return ChipModel(
        ("a", "b"),
        250.0,
        arr(pes),
        pe_cycles,
        arr(neuron),
        decision,
        edge_src=arr([0, 1]),
        edge_dst=arr([1, 2]),
        edge_capacity=arr(capacity),
        edge_flow_ptr=arr([0, len(routes), len(routes)]),
        flow_link_ptr=arr(ptr),
        flow_links=arr(links),
        flow_flits_per_spike=np.ones(len(routes)),
        flow_bitmap_flits=np.zeros(len(routes), np.int64),
        header_flits=0,
        counter_cycles=0,
        hop_cycles=hop,
        router_buffer_flits=buffer,
        links=tuple(((0, k), (0, k + 1)) for k in range(n_links)),
    )


def work(ops, spikes) -> Workload:
    return Workload(arr(ops, np.int32), arr(spikes, np.int32))


def test_one_layer_job_by_hand() -> None:
    # 10 PE operations on 4 PEs: ceil(10/4) = 3 in sequence, 26 cycles each; neuron updates 5
    chip = line_chip(pes=(4, 1), routes=(), neuron=(5, 0))
    run = simulate(chip, work([[[10, 0]]], [[[0, 0]]]))
    assert run.finish[0, 0, 0] == 3 * 26 + 5
    assert run.busy_cycles[0] == 83
    # b has no operations (0 cycles) and starts when a's job is done; so does the fusion unit
    assert run.start[1, 0, 0] == run.finish[1, 0, 0] == 83
    assert run.latency_cycles[0] == 83


def test_constant_stages_give_fill_plus_bottleneck_intervals() -> None:
    steps = 7
    chip = line_chip(pes=(1, 1), routes=())
    ops = np.zeros((1, steps, 2), np.int32)
    ops[..., 0], ops[..., 1] = 2, 3  # stages 52 and 78 cycles: b is the bottleneck
    run = simulate(chip, work(ops, np.zeros_like(ops)))
    fill = 52 + 78
    assert run.finish[1, 0, -1] == fill + (steps - 1) * 78
    assert run.bottleneck == "b"
    # a waits for nothing; b waited 52 cycles for a's first output
    assert run.stall_cycles[1, 0] == 52


def test_uncongested_packet_costs_hops_times_latency_plus_serialisation() -> None:
    hops, flits, hop = 3, 9, 2
    chip = line_chip(routes=(tuple(range(hops)),), hop=hop)
    run = simulate(chip, work([[[1, 0]]], [[[flits, 0]]]))
    sent = run.finish[0, 0, 0]
    assert run.start[1, 0, 0] - sent == hops * hop + flits - 1
    # b waited on the NoC for exactly that long
    assert run.stall_cycles[1, 1] == hops * hop + flits - 1
    np.testing.assert_array_equal(run.link_flits, [flits] * hops)


def test_two_flows_on_one_link_add_the_others_serialisation() -> None:
    hop, f = 1, 6
    alone = simulate(line_chip(routes=((0, 1),), hop=hop), work([[[1, 0]]], [[[f, 0]]]))
    # a second flow shares link 0 (then leaves by its own link 2): the first flow's flits
    # are delayed by the second's serialisation or vice versa, never both
    both = simulate(line_chip(routes=((0, 1), (0, 2)), hop=hop), work([[[1, 0]]], [[[f, 0]]]))
    sent = alone.finish[0, 0, 0]
    t_alone = alone.start[1, 0, 0] - sent
    t_both = both.start[1, 0, 0] - sent
    assert t_alone == 2 * hop + f - 1
    assert t_both == t_alone + f


def test_overloaded_link_bounds_throughput_at_its_bandwidth() -> None:
    # a produces 100 flits every 26 cycles but the link carries one flit per cycle
    steps, flits = 40, 100
    chip = line_chip(routes=((0,),), hop=1)
    ops = np.zeros((1, steps, 2), np.int32)
    ops[..., 0] = 1
    spikes = np.zeros_like(ops)
    spikes[..., 0] = flits
    run = simulate(chip, work(ops, spikes))
    arrivals = run.start[1, 0]  # b has no work: it starts when each timestep's packet is in
    np.testing.assert_array_equal(np.diff(arrivals), flits)
    assert run.link_utilisation()[0] == pytest.approx(steps * flits / run.total_cycles, rel=1e-12)


def test_full_downstream_buffer_stalls_the_producer() -> None:
    steps = 6
    ops = np.zeros((1, steps, 2), np.int32)
    ops[..., 0], ops[..., 1] = 1, 4  # a: 26 cycles, b: 104 cycles per job
    free = simulate(line_chip(routes=()), work(ops, np.zeros_like(ops)))
    held = simulate(line_chip(routes=(), capacity=(1, 1)), work(ops, np.zeros_like(ops)))
    double = simulate(line_chip(routes=(), capacity=(2, 1)), work(ops, np.zeros_like(ops)))
    # unbounded: a runs back to back; a one-timestep buffer (held until b finishes the job):
    # a's job t + 1 waits for b to finish job t, and b then waits for a
    np.testing.assert_array_equal(free.start[0, 0], 26 * np.arange(steps))
    np.testing.assert_array_equal(held.start[0, 0, 1:], held.finish[1, 0, :-1])
    np.testing.assert_array_equal(np.diff(held.finish[1, 0]), 104 + 26)
    assert held.stall_cycles[0, 2] == (steps - 1) * 104
    assert free.stall_cycles[0, 2] == 0
    assert held.peak_buffer[0] == 1 and free.peak_buffer[0] > 1
    # double buffering hides a's stage behind b's: the bottleneck runs back to back again
    np.testing.assert_array_equal(double.finish[1], free.finish[1])
    assert double.peak_buffer[0] == 2


def test_router_buffer_back_pressure_holds_the_links_behind() -> None:
    # one producer's three packets of 8 flits, sent together, in this order: A on link 1;
    # B on links 0 then 1, whose head waits on link 1 behind A until cycle 8; C on link 0.
    # Unbounded buffers: B's flits pile up in router 1 and free link 0 at cycle 8, so C
    # enters link 0 at 8 and arrives at 8 + 1 + 7 = 16 (as B). Buffers of 2 flits: B's
    # tail can leave link 0 only when 8 - 2 of its flits have moved on, at 8 + 8 - 2 = 14,
    # so C enters link 0 at 14 and arrives 6 cycles later, at 22.
    routes = ((1,), (0, 1), (0,))
    w = work([[[1, 0]]], [[[8, 0]]])
    big = simulate(line_chip(routes=routes, hop=1), w)
    small = simulate(line_chip(routes=routes, hop=1, buffer=2), w)
    sent = big.finish[0, 0, 0]
    assert big.start[1, 0, 0] - sent == 16
    assert small.start[1, 0, 0] - sent == 22
    # a buffer that holds a whole packet changes nothing
    whole = simulate(line_chip(routes=routes, hop=1, buffer=8), w)
    assert whole.start[1, 0, 0] == big.start[1, 0, 0]
    np.testing.assert_array_equal(big.link_flits, small.link_flits)


def test_packet_formats_and_headers_on_a_mapped_chip() -> None:
    base = SPIKESIM.to_mapping()
    graph = chain(
        [
            conv("conv0", 3, 64, 3, 8, 0),
            conv("conv1", 64, 130, 3, 8, 1),
            gap("fc.gap", 130, 8, FC_HEAD),
            linear("fc.linear", 130, 10, FC_HEAD),
        ]
    )

    def chip_of(noc: dict) -> ChipModel:
        arch = parse_arch(
            {
                **base,
                "crossbar": {"rows": 256, "cols": 256},
                "pe": {**base["pe"], "pes_per_tile": 1},
                "noc": {**base["noc"], **noc},
            },
            "one-pe-per-tile",
        )
        mapping = map_network(arch, graph)
        return chip_model(mapping, graph.names, 0)

    address = chip_of({})
    bitmap = chip_of({"packet": "bitmap", "header_flits": 2})
    # conv0 -> conv1: 64 channels x 8 x 8 positions = 4096 bits = 128 32-bit flits, whatever
    # the spikes; an address is ceil(log2(64 x 64)) = 12 bits: one flit per spike
    assert bitmap.flow_bitmap_flits[0] == 128 and bitmap.header_flits == 2
    assert address.flow_flits_per_spike[0] == 1.0 and address.flow_bitmap_flits[0] == 0
    ops = np.ones((1, 1, 4), np.int32)
    sent = np.zeros((1, 1, 4), np.int32)
    sent[0, 0, 0] = 5
    a = simulate(address, work(ops, sent))
    b = simulate(bitmap, work(ops, sent))
    hop = address.hop_cycles
    assert a.start[1, 0, 0] - a.finish[0, 0, 0] == hop + 5 - 1
    assert b.start[1, 0, 0] - b.finish[0, 0, 0] == hop + 128 + 2 - 1


def test_stop_skips_the_images_later_timesteps_and_takes_the_next_image() -> None:
    steps = 10
    chip = line_chip(routes=(), decision=3)
    ops = np.ones((2, steps, 2), np.int32)
    run = simulate(chip, work(ops, np.zeros_like(ops)), stop_step=np.array([2, steps - 1]))
    # image 0 decided at its step 2: layers stop it once they know; work started is done
    assert run.image_steps.tolist() == [3, steps]
    decided = run.finish[2, 0, 2]
    later = run.start[:, 0, 3:]
    assert np.all((later < 0) | (later < decided))
    assert np.all(run.start[:, 1, :] >= 0)
    # the next image starts right after layer a's last job of image 0
    last_a = run.finish[0, 0][run.start[0, 0] >= 0].max()
    assert run.image_start[1] == last_a
    # image 1's latency is the full pipeline of its own steps
    assert run.latency_cycles[1] == run.finish[2, 1, -1] - run.start[0, 1, 0]


@pytest.mark.parametrize("steps", [1, 9])
def test_contention_free_chip_equals_the_analytic_model(steps: int) -> None:
    arch = parse_arch(
        {
            **SPIKESIM.to_mapping(),
            "crossbar": {"rows": 256, "cols": 256},
            "pe": {**SPIKESIM.to_mapping()["pe"], "pes_per_tile": 1},
            "buffers": {**SPIKESIM.to_mapping()["buffers"], "input_buffer_timesteps": 1 << 16},
        },
        "one-pe-per-tile",
    )
    graph = chain(
        [
            conv("conv0", 3, 64, 3, 8, 0),
            conv("conv1", 64, 130, 3, 8, 1),
            gap("fc.gap", 130, 8, FC_HEAD),
            linear("fc.linear", 130, 10, FC_HEAD),
        ]
    )
    mapping = map_network(arch, graph)
    assert all(m.pes == 1 for m in mapping.layers)
    rng = np.random.default_rng(0)
    n = len(graph.names)
    ops = rng.integers(1, 5, (steps, n))  # every stage outlasts any packet: no overlap
    sent = rng.integers(0, 6, (steps, n))  # few flits: no packet outlasts a stage
    activity = LayerActivity(graph.names, 1, ops, ops, ops, sent)
    analytic = run_timing(mapping, activity)
    chip = chip_model(mapping, graph.names, decision_cycles=0)
    run = simulate(chip, work(ops[None], sent[None]))
    np.testing.assert_array_equal(run.finish[:n, 0].T, analytic.finish_cycles)
    np.testing.assert_array_equal(run.finish[n, 0], analytic.head_ready_cycles[FC_HEAD])


def test_residual_conv2_waits_for_its_skip_conv_as_the_analytic_model() -> None:
    base = SPIKESIM.to_mapping()
    arch = parse_arch(
        {
            **base,
            "pe": {**base["pe"], "pes_per_tile": 4096},  # one tile: no packets
            "buffers": {**base["buffers"], "input_buffer_timesteps": 1 << 16},
        },
        "one tile",
    )
    graph = NetSpec("resnet18", 1 / 16, (3, 16, 16), 10, ()).graph()
    mapping = map_network(arch, graph)
    skips = [g.name for g in graph.layers if g.role is Role.SKIP]
    assert skips
    rng = np.random.default_rng(1)
    n, steps = len(graph.names), 6
    ops = rng.integers(0, 4, (steps, n))
    for name in skips:  # skip convs far slower than their block
        ops[:, graph.names.index(name)] = 40
    sent = np.zeros((steps, n), np.int64)
    analytic = run_timing(mapping, LayerActivity(graph.names, 1, ops, ops, ops, sent))
    run = simulate(chip_model(mapping, graph.names, 0), work(ops[None], sent[None]))
    np.testing.assert_array_equal(run.finish[:n, 0].T, analytic.finish_cycles)
    for name in skips:
        joined = [
            p for p in graph.names if p != name and name in graph.predecessors(p)
        ]  # the block's conv2, whose population the skip's current joins
        assert joined
        for p in joined:
            waits = run.start[graph.names.index(p), 0] >= run.finish[graph.names.index(name), 0]
            assert waits.all()


def test_random_chips_run_every_needed_job_within_their_buffers() -> None:
    # random layer DAGs with several consumers, one-timestep buffers, shared links, small
    # router buffers and early stops: every job up to an image's stop runs after its inputs
    # arrive, and at fixed T no buffer ever holds more than its capacity
    rng = np.random.default_rng(7)
    for case in range(60):
        layers = int(rng.integers(2, 5))
        edges = [(a, b) for b in range(1, layers) for a in range(b) if rng.random() < 0.6]
        edges += [(b - 1, b) for b in range(1, layers) if (b - 1, b) not in edges]
        edges += [(layers - 1, layers)]  # the last layer feeds the fusion unit
        routes = [tuple(rng.choice(3, int(rng.integers(0, 3)), replace=False)) for _ in edges]
        ptr, links = [0], []
        for r in routes:
            links.extend(int(k) for k in r)
            ptr.append(len(links))
        chip = ChipModel(
            tuple(f"l{k}" for k in range(layers)), 250.0, np.ones(layers, np.int64), 3,
            np.zeros(layers, np.int64), int(rng.integers(0, 4)),
            edge_src=arr([a for a, _ in edges]), edge_dst=arr([b for _, b in edges]),
            edge_capacity=arr(rng.integers(1, 3, len(edges))),
            edge_flow_ptr=arr(list(range(len(edges) + 1))), flow_link_ptr=arr(ptr),
            flow_links=arr(links), flow_flits_per_spike=np.ones(len(edges)),
            flow_bitmap_flits=np.zeros(len(edges), np.int64), header_flits=1, counter_cycles=0,
            hop_cycles=1, router_buffer_flits=int(rng.choice([0, 2])),
            links=tuple(((0, k), (0, k + 1)) for k in range(3)),
        )  # fmt: skip
        n, steps = 3, 5
        w = work(rng.integers(0, 4, (n, steps, layers)), rng.integers(0, 6, (n, steps, layers)))
        stop = rng.integers(0, steps, n) if case % 2 else None
        run = simulate(chip, w, stop_step=stop)
        need = np.arange(steps)[None, :] <= run.image_steps[:, None] - 1
        assert np.all(run.start[:, need] >= 0), case
        for e, (a, b) in enumerate(edges):
            consumer = chip.fusion_node if b == layers else b
            ran = run.start[consumer] >= 0
            assert np.all(run.start[consumer][ran] >= run.finish[a][ran]), case
            if stop is None:  # a timestep is held from the producer's finish to the consumer's
                held = [
                    np.sum((run.finish[a] <= c) & (run.finish[consumer] > c))
                    for c in np.unique(run.finish[a])
                ]
                assert max(held) <= chip.edge_capacity[e], case


def test_long_streams_outgrow_the_event_queue() -> None:
    # a fast producer behind an overloaded link keeps thousands of packets in flight, more
    # events than the simulator's queue first holds: each arrival is still one packet's
    # serialisation after the previous
    steps, flits = 3000, 100
    chip = line_chip(routes=((0,),), hop=1, capacity=(10**6, 10**6))
    ops = np.zeros((1, steps, 2), np.int32)
    ops[..., 0] = 1
    spikes = np.zeros_like(ops)
    spikes[..., 0] = flits
    run = simulate(chip, work(ops, spikes))
    np.testing.assert_array_equal(np.diff(run.start[1, 0]), flits)
    assert run.link_flits[0] == steps * flits
    # a slow consumer far behind its producer when the image stops skips, in one cycle, every
    # job it has not started, each freeing the producer (more nodes to try than the queue
    # first holds); the next image runs back to back at the consumer's pace
    steps = 400
    chip = line_chip(routes=(), capacity=(10**6, 10**6), decision=3)
    ops = np.zeros((2, steps, 2), np.int32)
    ops[..., 0], ops[..., 1] = 1, 50  # a: 26 cycles, b: 1300 cycles per job
    run = simulate(chip, work(ops, np.zeros_like(ops)), stop_step=np.array([0, steps - 1]))
    decided = run.finish[2, 0, 0]
    later = run.start[:, 0, 1:]
    assert np.all((later < 0) | (later < decided))
    assert np.all(run.start[:, 1] >= 0)
    assert run.start[1, 1, 0] == run.finish[1, 0][run.start[1, 0] >= 0].max()
    np.testing.assert_array_equal(np.diff(run.finish[1, 1]), 50 * 26)


def random_line_chip(rng: np.random.Generator, case: int) -> ChipModel:
    """A two-layer chip of random PEs, buffers and decision cycles, its routes shared on odd
    cases (the window tests' chips)."""
    return line_chip(
        pes=tuple(rng.integers(1, 3, 2)),
        routes=((0, 1),) if case % 2 else ((0,), (1,)),
        capacity=tuple(rng.integers(1, 3, 2)),
        buffer=int(rng.choice([0, 2])),
        decision=int(rng.integers(0, 4)),
    )


def test_the_run_is_the_same_for_any_window_of_images() -> None:
    # the event loop holds a window of images at once (moving on, or doubling when every
    # image in it is in flight): on random chips with early stops, windows of 1, 2 and 3
    # images give the records and totals of the whole stream held at once
    rng = np.random.default_rng(11)
    got: list[tuple[slice, np.ndarray, np.ndarray]] = []

    def records(images: slice, start: np.ndarray, finish: np.ndarray) -> None:
        got.append((images, start.copy(), finish.copy()))

    for case in range(12):
        chip = random_line_chip(rng, case)
        n, steps = 7, 4
        w = work(rng.integers(0, 9, (n, steps, 2)), rng.integers(0, 6, (n, steps, 2)))
        stop = rng.integers(0, steps, n)
        whole = simulate(chip, w, stop_step=stop, window=n)
        for size in (1, 2, 3):
            run = simulate(chip, w, stop_step=stop, window=size, on_records=records)
            for name in ("start", "finish", "busy_cycles", "stall_cycles", "link_flits",
                         "peak_buffer", "image_start", "image_end", "image_steps"):  # fmt: skip
                np.testing.assert_array_equal(getattr(run, name), getattr(whole, name), name)
            streamed = np.concatenate([a for _, a, _ in got], axis=1)
            assert [s.start for s, _, _ in got] == sorted(s.start for s, _, _ in got)
            np.testing.assert_array_equal(streamed, whole.start)
            got.clear()


def test_a_streamed_workload_runs_as_the_whole_workload(monkeypatch) -> None:
    # a StreamedWorkload is read a block of images at a time as the window moves on: with
    # blocks of 1 to 3 images and windows of 1 to 3, the run equals the arrays held at once, and
    # rows are asked for in order, each image once per block
    sim = sys.modules["hwsim.hw.sim.simulate"]  # the package's `simulate` is the function
    rng = np.random.default_rng(12)
    for case in range(8):
        chip = random_line_chip(rng, case)
        n, steps = 9, 4
        w = work(rng.integers(0, 9, (n, steps, 2)), rng.integers(0, 6, (n, steps, 2)))
        w = Workload(w.pe_ops, w.sent_spikes, rng.integers(0, 5, (n, steps)).astype(np.int32))
        stop = rng.integers(0, steps, n)
        whole = simulate(chip, w, stop_step=stop, window=n)
        ops = np.concatenate([w.pe_ops, w.counted_spikes[..., None]], axis=2)
        spikes = np.concatenate([w.sent_spikes, np.zeros((n, steps, 1), np.int32)], axis=2)
        asked: list[tuple[int, int]] = []

        def rows(lo: int, hi: int, ops=ops, spikes=spikes, asked=asked) -> tuple:
            asked.append((lo, hi))
            return ops[lo:hi].copy(), spikes[lo:hi].copy()

        for block in (1, 2, 3):
            # a block of `block` images: BLOCK_BYTES / (8 T (L + 1)) images
            monkeypatch.setattr(sim, "BLOCK_BYTES", block * 8 * steps * 3)
            for size in (1, 2, 3):
                run = simulate(
                    chip, StreamedWorkload(n, steps, 2, rows), stop_step=stop, window=size
                )
                for name in ("start", "finish", "busy_cycles", "stall_cycles", "link_flits",
                             "peak_buffer", "image_start", "image_end", "image_steps"):  # fmt: skip
                    np.testing.assert_array_equal(getattr(run, name), getattr(whole, name), name)
                los = [lo for lo, _ in asked]
                assert los == sorted(los) and asked[-1][1] == n
                assert all(hi > lo for lo, hi in asked)
                assert all(a[1] <= b[0] for a, b in zip(asked, asked[1:], strict=False))
                asked.clear()
