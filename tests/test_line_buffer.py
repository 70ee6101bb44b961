"""Line-buffer pipelining (`timing.line_buffer`): layers work output row by output row and a
consumer starts a row once the producer rows its window needs are in. Checked against rows
counted by hand, a hand-simulated two-layer chain, the analytic row recurrence
(`hwsim.hw.timing`), and a closed form of the default chip's fill and interval built from its
mapping."""

from pathlib import Path

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.hw.activity import LayerActivity
from hwsim.hw.arch import ArchConfigError, load_arch, parse_arch
from hwsim.hw.mapping import map_network
from hwsim.hw.sim import ChipModel, Workload, chip_model, simulate
from hwsim.hw.timing import row_share, row_window, run_timing
from hwsim.model.graph import FC_HEAD, LayerKind
from hwsim.model.netspec import NetSpec
from tests.geometry import chain, conv, gap, linear

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml")


def with_keys(arch, **sections):
    """`arch` with the given sections' keys replaced (e.g. timing={"line_buffer": True})."""
    raw = arch.to_mapping()
    for name, keys in sections.items():
        raw[name] = {**raw[name], **keys}
    return parse_arch(raw, f"{arch.name}+{sorted(sections)}")


LINES = with_keys(SPIKESIM, timing={"line_buffer": True})


def arr(values, dtype=np.int64) -> np.ndarray:
    return np.asarray(values, dtype)


def default_graph():
    """The default model's chip: VGG19 at width 1/8 on 28x28 MNIST, IC 8 + FC."""
    spec = NetSpec("vgg19", 0.125, (1, 28, 28), 10, tuple(range(16)))
    return spec.graph().with_heads({8, FC_HEAD})


# ------------------------------------------------------------------------------- windows


def test_row_windows_by_hand() -> None:
    # 3x3 stride-1 'same' conv on 5 rows: row y reads rows y-1..y+1; row y frees row y-1 when
    # the next window no longer needs it, the last row everything left
    same = conv("c", 4, 4, 3, 5, 0)
    w = row_window(same, 5)
    assert w.last.tolist() == [1, 2, 3, 4, 4]
    assert w.release.tolist() == [0, 1, 1, 1, 2]
    assert w.min_rows == 3  # rows y-1, y, y+1
    # stride 2, padding 1 over 6 rows -> 3 rows reading rows (0,1), (1..3), (3..5)
    strided = conv("s", 4, 4, 3, 6, 0)
    strided = type(strided)(**{**strided.__dict__, "stride": 2, "out_shape": (4, 3, 3)})
    w = row_window(strided, 6)
    assert w.last.tolist() == [1, 3, 5] and w.release.tolist() == [1, 2, 3]
    assert w.min_rows == 3
    # a GAP, a Linear and the fusion unit need the whole map; a skip conv joins row by row
    assert row_window(gap("g", 4, 5, FC_HEAD), 5).last.tolist() == [4]
    assert row_window(gap("g", 4, 5, FC_HEAD), 5).release.tolist() == [5]
    assert row_window(None, 1).last.tolist() == [0]
    joined = row_window(same, 5, join=True)
    assert joined.last.tolist() == [0, 1, 2, 3, 4] and joined.release.tolist() == [1] * 5


def test_row_shares_sum_to_the_job() -> None:
    for total in range(0, 40):
        for rows in range(1, 9):
            shares = [row_share(total, rows, y) for y in range(rows)]
            assert sum(shares) == total and max(shares) - min(shares) <= 1


# ------------------------------------------------------------------ a chain by hand


def chain_chip(capacity: int, routes=(), hop=2) -> ChipModel:
    """a (4 rows) -> b (4 rows, a 3x3 'same' window over a's rows) -> fusion unit; a's spikes
    to b take one flow per entry of `routes` (address events, one flit per spike)."""
    window = row_window(conv("b", 1, 1, 3, 4, 0), 4)
    ptr, links = [0], []
    for route in routes:
        links.extend(route)
        ptr.append(len(links))
    n_links = max(links, default=-1) + 1
    return ChipModel(
        ("a", "b"), 250.0, arr([1, 1]), 26, arr([0, 0]), 0,
        edge_src=arr([0, 1]), edge_dst=arr([1, 2]), edge_capacity=arr([2, 2]),
        edge_flow_ptr=arr([0, len(routes), len(routes)]), flow_link_ptr=arr(ptr),
        flow_links=arr(links), flow_flits_per_spike=np.ones(len(routes)),
        flow_bitmap_flits=np.zeros(len(routes), np.int64), header_flits=0, counter_cycles=0,
        hop_cycles=hop, router_buffer_flits=0,
        links=tuple(((0, k), (0, k + 1)) for k in range(n_links)),
        node_rows=arr([4, 4]), edge_need_ptr=arr([0, 4, 5]),
        edge_need=arr([*window.last, 3]), edge_release=arr([*window.release, 4]),
        edge_row_capacity=arr([capacity, 8]),
        flow_bitmap_row_flits=np.zeros(len(routes), np.int64),
    )  # fmt: skip


def chain_work(steps: int, spikes: int = 0) -> Workload:
    ops = np.zeros((1, steps, 2), np.int32)
    ops[..., 0], ops[..., 1] = 8, 4  # a: 2 PE rounds per row (52 cycles), b: 1 (26 cycles)
    sent = np.zeros_like(ops)
    sent[..., 0] = spikes
    return Workload(ops, sent)


def test_two_layer_line_buffer_fill_by_hand() -> None:
    # a's rows end at 52, 104, 156, 208; b's row y needs a's row min(y + 1, 3): b runs
    # 104-130, 156-182, 208-234, 234-260, so the fusion unit decides timestep 0 at 260 (a
    # whole-map job would wait for a's 208 and add b's 104: 312). Timestep 1: a's rows end at
    # 260, 312, 364, 416 and b's at 338, 390, 442, 468.
    run = simulate(chain_chip(capacity=100), chain_work(2))
    np.testing.assert_array_equal(run.finish[2, 0], [260, 468])
    np.testing.assert_array_equal(run.start[1, 0], [104, 312])  # b's first row
    assert run.busy_cycles[1] == 8 * 26 and run.busy_cycles[0] == 8 * 52
    # b waited for a's first two rows, then twice per timestep for a's next row (52 - 26
    # cycles); at t = 1 its first row waited for a's rows 0-1 from 260 to 312
    assert run.stall_cycles[1, 0] == 104 + 2 * 26 + (312 - 260) + 2 * 26
    # the same chain without line buffers: whole-map jobs
    jobs = dataclass_replace(chain_chip(100), node_rows=None)
    assert simulate(jobs, chain_work(2)).finish[2, 0].tolist() == [312, 520]


def test_two_layer_line_buffer_of_three_rows_by_hand() -> None:
    # b's windows hold 3 of a's rows; a row is freed when no later window of b needs it (b's
    # rows free 0, 1, 1, 2 rows). a's row 3 waits for b's row 1 to free row 0 (182); a's next
    # timestep waits for b's row 2 (260) and its row 3 for b's row 1 again (442).
    run = simulate(chain_chip(capacity=3), chain_work(2))
    np.testing.assert_array_equal(run.finish[2, 0], [286, 546])
    assert run.peak_buffer[0] == 3
    assert run.stall_cycles[0, 2] == (182 - 156) + (260 - 234) + (442 - 416)


def test_rows_cross_the_noc_one_packet_each() -> None:
    # 8 spikes per job: 2 per row, each row's packet over 3 hops of 2 cycles arrives
    # 3 x 2 + 2 - 1 = 7 cycles after its row ends
    run = simulate(chain_chip(100, routes=((0, 1, 2),)), chain_work(1, spikes=8))
    assert run.start[1, 0, 0] == 104 + 7
    np.testing.assert_array_equal(run.link_flits, [8, 8, 8])
    # b's rows 0-2 each wait 7 cycles for the packet of a's next row; row 3's is in already
    assert run.stall_cycles[1, 1] == 3 * 7
    assert run.stall_cycles[1, 0] == 104 + 2 * (208 - 189)


def dataclass_replace(chip: ChipModel, **changes) -> ChipModel:
    from dataclasses import replace

    return replace(chip, **changes)


# ------------------------------------------------------------------ the analytic model


@pytest.mark.parametrize("steps", [1, 7])
def test_contention_free_chip_equals_the_analytic_row_recurrence(steps: int) -> None:
    arch = with_keys(
        LINES,
        crossbar={"rows": 256, "cols": 256},
        pe={"pes_per_tile": 1},
        buffers={"input_buffer_timesteps": 1 << 12},
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
    rows = np.array([8, 8, 1, 1])
    rng = np.random.default_rng(3)
    n = len(graph.names)
    # every row's PE work (1-4 rounds of 26 cycles) outlasts any packet (at most 5 flits a
    # row); spikes a multiple of the rows, so the simulator's integer shares are the mean's
    ops = rng.integers(1, 5, (steps, n)) * rows
    sent = rng.integers(0, 6, (steps, n)) * rows
    analytic = run_timing(mapping, LayerActivity(graph.names, 1, ops, ops, ops, sent))
    chip = chip_model(mapping, graph.names, decision_cycles=0)
    assert chip.line_buffer
    run = simulate(chip, Workload(ops[None].astype(np.int32), sent[None].astype(np.int32)))
    np.testing.assert_array_equal(run.finish[:n, 0].T, analytic.finish_cycles)
    np.testing.assert_array_equal(run.finish[n, 0], analytic.head_ready_cycles[FC_HEAD])
    # and faster than whole-map jobs, whose recurrence waits for the producer's whole map
    whole = map_network(with_keys(arch, timing={"line_buffer": False}), graph)
    jobs = run_timing(whole, LayerActivity(graph.names, 1, ops, ops, ops, sent))
    assert np.all(analytic.finish_cycles[:, -1] < jobs.finish_cycles[:, -1])


# ------------------------------------------------------------ the default chip, closed form


def closed_form(mapping, pe_cycles: int) -> tuple[int, int]:
    """(fill, interval) cycles of the default chip under line buffers, from its mapping alone,
    its NoC left out. Layer l of the FC's chain has R_l output rows of c_l = PE rounds per row
    x `pe_cycles` (its PEs work on one position's operations together); consumer row y of a
    3x3 conv needs producer rows up to min(y s - 1 + 2, H - 1), a GAP or Linear the whole map.
    The first output's longest path runs through one layer j's every row: the layers before
    j each make the rows their consumer's first window needs, (last_{l+1}(0) + 1) c_l, and
    every layer after j the rows from the first whose window needs its producer's last row,
    (R_l - y*_l) c_l. The interval is the busiest layer's R_l c_l."""
    graph = mapping.graph
    path = [g for g in graph.layers if g.head is None or g.head == FC_HEAD]
    rows, cycles, last = [], [], []
    for g in path:
        m = mapping.layer(g.name)
        r = g.out_hw[0] if g.kind is LayerKind.CONV else 1
        assert m.pe_operations % (m.pes * r) == 0  # every row the same PE rounds
        rows.append(r)
        cycles.append(m.pe_operations // (m.pes * r) * pe_cycles)
    for k, g in enumerate(path):
        if k == 0:
            last.append(None)
            continue
        h = rows[k - 1]
        if g.kind is LayerKind.CONV:
            ys = np.arange(rows[k])
            last.append(np.minimum(ys * g.stride - g.padding + g.kernel[0] - 1, h - 1))
        else:
            last.append(np.array([h - 1]))
    lead = [(last[k + 1][0] + 1) * cycles[k] for k in range(len(path) - 1)]
    tail = [None] + [
        (rows[k] - int(np.argmax(last[k] == rows[k - 1] - 1))) * cycles[k]
        for k in range(1, len(path))
    ]
    fill = max(sum(lead[:j]) + rows[j] * cycles[j] + sum(tail[j + 1 :]) for j in range(len(path)))
    interval = max(
        m.pe_operations // m.pes * pe_cycles for m in mapping.layers
    )  # rows x rounds per row
    return fill, interval


@pytest.mark.parametrize("bits", [None, 4, 8])
def test_default_chip_fill_and_interval_match_the_closed_form(bits: int | None) -> None:
    # bits: a SAR ADC of that resolution converting one bit per cycle plus one sample cycle,
    # 8 conversion rounds per PE operation (else SpikeSim's 26-cycle PE operation)
    arch, pe_cycles = LINES, 26
    if bits is not None:
        arch = with_keys(
            LINES, adc={"bits": bits}, timing={"sar_cycles_per_bit": 1, "sar_sample_cycles": 1}
        )
        pe_cycles = max(26, 8 * (bits + 1))
    graph = default_graph()
    mapping = map_network(arch, graph)
    steps, n = 12, len(graph.names)
    ops = np.broadcast_to(mapping.pe_operations(), (1, steps, n)).astype(np.int32)
    neurons = np.array([g.neurons for g in graph.layers])
    sent = np.broadcast_to(np.rint(0.1 * neurons), (1, steps, n)).astype(np.int32)  # 10%
    chip = chip_model(mapping, graph.names, decision_cycles=0)
    run = simulate(chip, Workload(ops, sent))
    decided = run.finish[chip.fusion_node, 0] - run.image_start[0]
    fill, interval = closed_form(mapping, pe_cycles)
    assert decided[0] == pytest.approx(fill, rel=0.01)
    assert (decided[-1] - decided[0]) / (steps - 1) == pytest.approx(interval, rel=0.01)
    # whole-map jobs on single-buffered conv0 -> conv1 take twice the interval
    whole = with_keys(arch, timing={"line_buffer": False})
    jobs = simulate(chip_model(map_network(whole, graph), graph.names, 0), Workload(ops, sent))
    job_decided = jobs.finish[chip.fusion_node, 0] - jobs.image_start[0]
    assert (job_decided[-1] - job_decided[0]) / (steps - 1) == pytest.approx(2 * interval, 0.01)
    assert job_decided[0] > 2 * fill


# ------------------------------------------------------------------- random chips, stops


def random_chip(rng, rows_choice) -> tuple[ChipModel, list[tuple[int, int]]]:
    """A random layer DAG (several consumers, shared links, small router buffers, one- or
    two-timestep buffers) whose layers have `rows_choice` output rows each, reading a 3x3
    window of a producer with as many rows, else the producer's whole map."""
    layers = int(rng.integers(2, 5))
    edges = [(a, b) for b in range(1, layers) for a in range(b) if rng.random() < 0.6]
    edges += [(b - 1, b) for b in range(1, layers) if (b - 1, b) not in edges]
    edges += [(layers - 1, layers)]  # the last layer feeds the fusion unit
    rows = rng.choice(rows_choice, layers)
    routes = [tuple(rng.choice(3, int(rng.integers(0, 3)), replace=False)) for _ in edges]
    ptr, links = [0], []
    for r in routes:
        links.extend(int(k) for k in r)
        ptr.append(len(links))
    need_ptr, need, release, row_cap = [0], [], [], []
    cap = rng.integers(1, 3, len(edges))
    for e, (a, b) in enumerate(edges):
        # a 3x3 window over a map of the producer's rows, else the whole map for every row
        consumer = None if b == layers else conv("c", 1, 1, 3, int(rows[b]), 0)
        w = row_window(consumer, int(rows[a]))
        need.extend(w.last.tolist())
        release.extend(w.release.tolist())
        need_ptr.append(len(need))
        row_cap.append(max(int(cap[e] * rows[a]), w.min_rows))
    chip = ChipModel(
        tuple(f"l{k}" for k in range(layers)), 250.0, np.ones(layers, np.int64), 3,
        np.zeros(layers, np.int64), int(rng.integers(0, 4)),
        edge_src=arr([a for a, _ in edges]), edge_dst=arr([b for _, b in edges]),
        edge_capacity=arr(cap), edge_flow_ptr=arr(list(range(len(edges) + 1))),
        flow_link_ptr=arr(ptr), flow_links=arr(links), flow_flits_per_spike=np.ones(len(edges)),
        flow_bitmap_flits=np.zeros(len(edges), np.int64), header_flits=1, counter_cycles=0,
        hop_cycles=1, router_buffer_flits=int(rng.choice([0, 2])),
        links=tuple(((0, k), (0, k + 1)) for k in range(3)),
        node_rows=arr(rows), edge_need_ptr=arr(need_ptr), edge_need=arr(need),
        edge_release=arr(release), edge_row_capacity=arr(row_cap),
        flow_bitmap_row_flits=np.zeros(len(edges), np.int64),
    )  # fmt: skip
    return chip, edges


def test_one_row_per_job_is_the_whole_map_job() -> None:
    # line buffers over one-row maps: every window is the whole map, every buffer holds
    # timesteps: the run is the job-level run, cycle for cycle
    rng = np.random.default_rng(11)
    for case in range(30):
        chip, _ = random_chip(rng, [1])
        n, steps = 3, 5
        layers = len(chip.layer_names)
        w = Workload(
            rng.integers(0, 4, (n, steps, layers)).astype(np.int32),
            rng.integers(0, 6, (n, steps, layers)).astype(np.int32),
        )
        stop = rng.integers(0, steps, n) if case % 2 else None
        rows = simulate(chip, w, stop_step=stop)
        jobs = simulate(dataclass_replace(chip, node_rows=None), w, stop_step=stop)
        for name in ("start", "finish", "busy_cycles", "stall_cycles", "link_flits"):
            np.testing.assert_array_equal(getattr(rows, name), getattr(jobs, name), name)
        np.testing.assert_array_equal(rows.peak_buffer, jobs.peak_buffer)


def test_random_row_chips_run_every_needed_job_within_their_buffers() -> None:
    rng = np.random.default_rng(5)
    for case in range(40):
        chip, edges = random_chip(rng, [1, 2, 3, 5])
        n, steps = 3, 4
        layers = len(chip.layer_names)
        w = Workload(
            rng.integers(0, 12, (n, steps, layers)).astype(np.int32),
            rng.integers(0, 9, (n, steps, layers)).astype(np.int32),
        )
        stop = rng.integers(0, steps, n) if case % 2 else None
        run = simulate(chip, w, stop_step=stop)
        need = np.arange(steps)[None, :] <= run.image_steps[:, None] - 1
        assert np.all(run.start[:, need] >= 0), case
        assert np.all(run.peak_buffer <= chip.edge_row_capacity), case
        for a, b in edges:  # a consumer's last row needs its producer's last row
            consumer = chip.fusion_node if b == layers else b
            ran = (run.start[consumer] >= 0) & (run.start[a] >= 0)
            assert np.all(run.finish[consumer][ran] >= run.finish[a][ran]), case
        again = simulate(chip, w, stop_step=stop)
        np.testing.assert_array_equal(again.finish, run.finish)


def test_a_buffer_too_small_for_a_reconverging_window_is_reported() -> None:
    # x -> a reads x's whole map (4 rows); x -> b row by row, b also reads a: with room for
    # one of x's rows at b, x cannot send its row 1 before b has used row 0, which needs a,
    # which needs x's row 3: nothing moves again
    whole = row_window(gap("g", 1, 4, FC_HEAD), 4)
    same = row_window(conv("b", 1, 1, 1, 4, 0), 4)
    chip = ChipModel(
        ("x", "a", "b"), 250.0, arr([1, 1, 1]), 3, arr([0, 0, 0]), 0,
        edge_src=arr([0, 0, 1, 2]), edge_dst=arr([1, 2, 2, 3]), edge_capacity=arr([1] * 4),
        edge_flow_ptr=arr([0] * 5), flow_link_ptr=arr([0]), flow_links=arr([]),
        flow_flits_per_spike=np.ones(0), flow_bitmap_flits=arr([]), header_flits=0,
        counter_cycles=0, hop_cycles=1, router_buffer_flits=0, links=(),
        node_rows=arr([4, 1, 4]), edge_need_ptr=arr([0, 1, 5, 9, 10]),
        edge_need=arr([*whole.last, *same.last, 0, 0, 0, 0, 3]),
        edge_release=arr([*whole.release, *same.release, 0, 0, 0, 1, 4]),
        edge_row_capacity=arr([4, 1, 1, 4]), flow_bitmap_row_flits=arr([]),
    )  # fmt: skip
    w = Workload(np.ones((1, 2, 3), np.int32), np.zeros((1, 2, 3), np.int32))
    with pytest.raises(ConfigError, match="line"):
        simulate(chip, w)
    # with room for x's whole map at b it runs
    ok = simulate(dataclass_replace(chip, edge_row_capacity=arr([4, 4, 1, 4])), w)
    assert np.all(ok.finish >= 0)


@pytest.mark.parametrize("pes_per_tile", [1, 8])  # partial sums between tiles, or in one
def test_partial_sums_row_by_row_equal_the_analytic_rows(pes_per_tile: int) -> None:
    # conv1's 128 input channels make two channel groups on two PEs; each of its 8 rows
    # sends its own partial sums (ceil(16 operations' bits / flit) flits) to the reducer
    arch = with_keys(
        LINES,
        pe={"pes_per_tile": pes_per_tile},
        buffers={"input_buffer_timesteps": 64},
    )
    raw = arch.to_mapping()
    raw["partial_sums"] = {"bits": 22, "accumulate_cycles": 3}
    arch = parse_arch(raw, "psum rows")
    graph = chain([conv("conv0", 3, 128, 3, 8, 0), conv("conv1", 128, 64, 3, 8, 1)])
    mapping = map_network(arch, graph)
    ops = np.array([[8, 128], [0, 16], [24, 64]])  # multiples of the 8 rows
    sent = np.zeros_like(ops)
    analytic = run_timing(mapping, LayerActivity(graph.names, 1, ops, ops, ops, sent))
    chip = chip_model(mapping, graph.names, decision_cycles=0)
    run = simulate(chip, Workload(ops[None].astype(np.int32), sent[None].astype(np.int32)))
    np.testing.assert_array_equal(run.finish[:2, 0].T, analytic.finish_cycles)
    # conv1's rows carry, over a timestep, N_out x 22 bits at full activity (128 operations:
    # 64 x 8 x 8 outputs), as whole-map jobs do: (4096 + 512 + 2048) x 22 / 32 flits per link
    carried = run.psum_link_flits[run.psum_link_flits > 0]
    assert carried.tolist() == ([] if pes_per_tile == 8 else [4576] * len(carried))
    assert len(carried) == (0 if pes_per_tile == 8 else 1)


# ------------------------------------------------------------------------ the key


@pytest.mark.parametrize("value", [1, "true", None])
def test_the_line_buffer_key_takes_true_or_false_only(value) -> None:
    raw = SPIKESIM.to_mapping()
    raw["timing"] = {**raw["timing"], "line_buffer": value}
    with pytest.raises(ArchConfigError, match="timing.line_buffer"):
        parse_arch(raw, "bad")
    assert SPIKESIM.timing.line_buffer is False  # SpikeSim waits for whole maps
    assert load_arch(ROOT / "arch_configs" / "spikesim_chip.yaml").timing.line_buffer is True
    assert "timing.line_buffer" in (ROOT / "docs" / "arch-config.md").read_text()


def test_residual_network_row_by_row_equals_the_analytic_rows() -> None:
    # one tile (no packets), unbounded buffers: a residual block's conv2 row y also waits for
    # its skip conv's row y, in both models
    arch = with_keys(LINES, pe={"pes_per_tile": 4096}, buffers={"input_buffer_timesteps": 1 << 10})
    graph = NetSpec("resnet18", 1 / 16, (3, 16, 16), 10, ()).graph()
    mapping = map_network(arch, graph)
    rng = np.random.default_rng(2)
    n, steps = len(graph.names), 4
    ops = rng.integers(0, 40, (steps, n))
    sent = np.zeros((steps, n), np.int64)
    analytic = run_timing(mapping, LayerActivity(graph.names, 1, ops, ops, ops, sent))
    run = simulate(
        chip_model(mapping, graph.names, 0),
        Workload(ops[None].astype(np.int32), sent[None].astype(np.int32)),
    )
    np.testing.assert_array_equal(run.finish[:n, 0].T, analytic.finish_cycles)
