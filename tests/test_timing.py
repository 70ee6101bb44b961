"""Analytic timing in cycles: stages, XY NoC transfers with contention, the layer pipeline."""

from pathlib import Path

import numpy as np
import pytest

from hwsim.hw.activity import LayerActivity, full_activity
from hwsim.hw.arch import load_arch, parse_arch
from hwsim.hw.mapping import map_network
from hwsim.hw.noc import NocFlow, link_loads, producer_traffic, transfer_cycles, xy_links
from hwsim.hw.timing import latency_ns, pipeline_finish_cycles, run_timing, stage_cycles
from hwsim.model.graph import FC_HEAD
from hwsim.model.netspec import NetSpec
from tests.geometry import chain, conv, gap, linear

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml")
DIFFERENTIAL = parse_arch(
    {
        **SPIKESIM.to_mapping(),
        "device": {
            **SPIKESIM.to_mapping()["device"],
            "signed_weights": "differential",
            "slicing": "columns",
        },
    },
    "differential",
)


CHAIN = chain(
    [
        conv("conv0", 3, 64, 3, 32, 0),
        conv("conv1", 64, 130, 3, 16, 1),
        gap("fc.gap", 130, 16, FC_HEAD),
        linear("fc.linear", 130, 10, FC_HEAD),
    ]
)

HEADED = chain(
    [
        conv("conv0", 3, 64, 3, 16, 0),
        conv("conv1", 64, 64, 3, 16, 1),
        conv("conv2", 64, 128, 3, 8, 2),
        gap("ic1.gap", 64, 16, 1),
        linear("ic1.linear", 64, 10, 1),
        gap("fc.gap", 128, 8, FC_HEAD),
        linear("fc.linear", 128, 10, FC_HEAD),
    ]
)


def test_stage_cycles_by_hand() -> None:
    ops = np.array([[10, 7, 0], [0, 64, 65]])
    pes = np.array([4, 8, 8])
    # ceil(10/4)=3, ceil(7/8)=1, 0; 0, ceil(64/8)=8, ceil(65/8)=9 operations in sequence per PE
    expected = np.array([[3, 1, 0], [0, 8, 9]]) * 26
    np.testing.assert_array_equal(stage_cycles(ops, pes, 26), expected)
    # a mean over images: 2.5 operations per PE take 3 PE operations
    np.testing.assert_array_equal(stage_cycles(np.array([[5.0]]), [2], 10), [[30]])


def test_pipeline_recurrence_by_hand_three_layers() -> None:
    stage = np.array([[4, 6, 2], [3, 6, 5], [5, 1, 2]])
    transfer = np.array([[1, 2, 0], [2, 1, 0], [0, 3, 0]])
    # finish[t][l] = max(finish[t-1][l], finish[t][l-1] + transfer[t][l-1]) + stage[t][l]
    f00 = 4
    f01 = (f00 + 1) + 6  # 11
    f02 = (f01 + 2) + 2  # 15
    f10 = f00 + 3  # 7
    f11 = max(f01, f10 + 2) + 6  # 17
    f12 = max(f02, f11 + 1) + 5  # 23
    f20 = f10 + 5  # 12
    f21 = max(f11, f20 + 0) + 1  # 18
    f22 = max(f12, f21 + 3) + 2  # 25
    expected = np.array([[f00, f01, f02], [f10, f11, f12], [f20, f21, f22]])
    got = pipeline_finish_cycles(stage, transfer, [[], [0], [1]])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(expected, [[4, 11, 15], [7, 17, 23], [12, 18, 25]])


def test_pipeline_join_waits_for_the_slowest_producer() -> None:
    stage = np.array([[2, 10, 3, 1]])
    transfer = np.array([[1, 4, 5, 0]])
    # layer 3 joins layers 1 and 2 (both fed by 0): max(2+1+10+4, 2+1+3+5) + 1 = 18
    got = pipeline_finish_cycles(stage, transfer, [[], [0], [0], [1, 2]])
    np.testing.assert_array_equal(got, [[2, 13, 6, 18]])
    with pytest.raises(ValueError, match="comes after"):
        pipeline_finish_cycles(stage, transfer, [[1], [], [], []])


def test_constant_stages_pipeline_closed_form() -> None:
    steps = 12
    stages = np.array([3, 7, 5, 2])
    transfers = np.array([2, 1, 4, 0])
    finish = pipeline_finish_cycles(
        np.tile(stages, (steps, 1)), np.tile(transfers, (steps, 1)), [[], [0], [1], [2]]
    )
    first = stages.sum() + transfers[:-1].sum()  # step 1: every stage and transfer in turn
    assert finish[0, -1] == first
    # steady state: one timestep per slowest stage; with constant stages exactly
    # finish[t][last] = first + t * max(stages)
    np.testing.assert_array_equal(finish[:, -1], first + np.arange(steps) * stages.max())
    np.testing.assert_array_equal(np.diff(finish[:, -1]), np.full(steps - 1, 7))


def test_xy_route_hops_on_hand_placed_mesh() -> None:
    links = xy_links((0, 0), (2, 3))
    assert len(links) == 5  # |dr| + |dc|
    # along the row first (columns 0 -> 3), then down the column (rows 0 -> 2)
    assert links == [
        ((0, 0), (0, 1)),
        ((0, 1), (0, 2)),
        ((0, 2), (0, 3)),
        ((0, 3), (1, 3)),
        ((1, 3), (2, 3)),
    ]
    assert xy_links((2, 3), (2, 3)) == []
    assert len(xy_links((3, 1), (0, 0))) == 4
    # one 1-flit packet: 5 hops x (router 1 + link 2)
    assert transfer_cycles([NocFlow((0, 0), (2, 3), 1)], 1, 2) == 15
    # a packet of 6 flits: the last leaves 5 cycles after the first
    assert transfer_cycles([NocFlow((0, 0), (2, 3), 6)], 1, 2) == 20
    assert transfer_cycles([NocFlow((1, 1), (1, 1), 6)], 1, 2) == 0
    assert transfer_cycles([], 1, 2) == 0


def test_routes_sharing_a_link_serialise() -> None:
    a = NocFlow((0, 0), (0, 2), 4)
    shared = NocFlow((0, 1), (0, 2), 4)  # also uses link (0,1) -> (0,2)
    disjoint = NocFlow((1, 0), (1, 1), 4)
    assert link_loads([a, shared])[((0, 1), (0, 2))] == 8
    alone = transfer_cycles([a], 1, 1)
    assert alone == 2 * 2 + 4 - 1
    assert transfer_cycles([a, disjoint], 1, 1) == alone  # no common link: in parallel
    both = transfer_cycles([a, shared], 1, 1)
    assert both == 2 * 2 + 8 - 1  # 8 flits on the shared link
    assert both > alone
    assert both >= 8  # at least the busiest link's flits


def test_noc_flit_hops_per_spike_are_the_link_loads() -> None:
    """Energy's flit-hops and timing's link loads come from one route computation: the flits a
    spike puts on all links sum to its flit-hops."""
    traffic = producer_traffic(map_network(DIFFERENTIAL, HEADED))
    assert set(traffic) == {"conv0", "conv1", "conv2", "ic1.gap", "ic1.linear", "fc.gap"} | {
        "fc.linear"
    }
    for t in traffic.values():
        loads = sum(t.flits_per_spike_by_link.values())
        assert loads == pytest.approx(t.flit_hops_per_spike)
        for edge in t.edges.values():
            assert sum(edge.flits_per_spike_by_link.values()) == pytest.approx(
                edge.flit_hops_per_spike
            )
    assert set(traffic["conv1"].edges) == {"conv2", "ic1.gap"}  # conv1 feeds both
    assert traffic["conv1"].flit_hops_per_spike > 0


def _timing(arch, graph, activity=None, steps=1, images=1, **kw):
    mapping = map_network(arch, graph)
    return run_timing(mapping, activity or full_activity(mapping, steps, images), **kw)


def test_run_timing_chain_first_step_and_stage_by_hand() -> None:
    steps = 4
    r = _timing(SPIKESIM, CHAIN, steps=steps)
    # conv0: 64 outputs, one column each (SpikeSim's mapping): 1 column group x 1 channel
    # group = 1 PE of 9 crossbars, every one of the 32 x 32 output positions in turn
    assert r.stage_cycles[0, 0] == 32 * 32 * 26
    # conv1: 3 column groups x 1 channel group, 16 x 16 positions per PE
    assert r.stage_cycles[0, 1] == 16 * 16 * 26
    # GAP and Linear: one output position per PE
    np.testing.assert_array_equal(r.stage_cycles[0, 2:], [26, 26])
    # the first timestep runs every stage and transfer in turn
    first = r.stage_cycles[0].sum() + r.transfer_cycles[0, :3].sum()
    assert r.finish_cycles[0, -1] == first
    assert r.ready_cycles[0, -1] == first + r.transfer_cycles[0, -1]
    # steady state: conv0 is the slowest stage, but conv1's 130 x 16 x 16 one-flit spikes per
    # timestep cross link (0,0)->(0,1) to the GAP's second tile, with the 128 of fc.gap's 130
    # channels on tile 0 going to fc.linear: the link, one flit per cycle, is the bottleneck
    assert r.bottleneck_layer == "conv0"
    spikes = 130 * 16 * 16
    k = r.links.index(((0, 0), (0, 1)))
    assert r.link_flits[:, k].tolist() == [spikes + 128] * steps
    assert r.bottleneck == "link (0,0)->(0,1)"
    assert r.interval_cycles == spikes + 128 > 32 * 32 * 26
    # conv1's own packets pass the link one flit per cycle: the pipeline advances by them
    np.testing.assert_array_equal(np.diff(r.finish_cycles[1:, -1]), spikes)
    np.testing.assert_allclose(r.latency_ns, r.ready_cycles[:, -1] * 4.0)
    assert r.total_ns == pytest.approx(r.latency_ns[-1])


def test_pe_operation_lasts_its_adc_rounds() -> None:
    # 8 columns per ADC at 5 cycles a conversion: 40 cycles, more than pe_cycles (26)
    slow = parse_arch(
        {**SPIKESIM.to_mapping(), "timing": {"pe_cycles": 26, "cycles_per_conversion": 5}}, "v"
    )
    assert slow.pe_operation_cycles == 8 * 5
    r = _timing(slow, CHAIN)
    assert r.stage_cycles[0, 0] == 32 * 32 * 40
    fast = parse_arch(
        {**SPIKESIM.to_mapping(), "timing": {"pe_cycles": 26, "cycles_per_conversion": 2}}, "v"
    )
    assert fast.pe_operation_cycles == 26 and fast.pe_operation_ns == 104.0


def test_run_timing_heads_and_latency_helper() -> None:
    r = _timing(SPIKESIM, HEADED, steps=3, images=2)
    ic = latency_ns(r, {"ic1.linear"})
    fc = latency_ns(r, ["fc.linear"])
    np.testing.assert_allclose(ic, r.head_latency_ns(1))
    np.testing.assert_allclose(fc, r.head_latency_ns(FC_HEAD))
    np.testing.assert_allclose(r.latency_ns, np.maximum(ic, fc))
    assert np.all(ic < fc)  # the IC taps block 1, before conv2
    assert np.all(np.diff(r.latency_ns) > 0)
    with pytest.raises(KeyError):
        latency_ns(r, {"nope"})


def test_sparse_activity_never_slower_than_spikesim_view() -> None:
    steps = 5
    mapping = map_network(SPIKESIM, HEADED)
    full = full_activity(mapping, steps, images=3)
    rng = np.random.default_rng(0)
    frac = rng.uniform(0.0, 1.0, size=full.active_pe_ops.shape)
    sparse = LayerActivity(
        layer_names=full.layer_names,
        images=3,
        active_pe_ops=np.floor(full.active_pe_ops * frac),
        crossbar_reads=np.floor(full.crossbar_reads * frac),
        input_spikes=np.floor(full.input_spikes * frac),
        output_spikes=np.floor(full.output_spikes * rng.uniform(size=frac.shape)),
    )
    r_full = run_timing(mapping, full)
    r_sparse = run_timing(mapping, sparse)
    assert np.all(r_sparse.stage_cycles <= r_full.stage_cycles)
    assert np.all(r_sparse.transfer_cycles <= r_full.transfer_cycles)
    assert np.all(r_sparse.finish_cycles <= r_full.finish_cycles)
    assert np.all(r_sparse.latency_ns <= r_full.latency_ns)
    assert r_sparse.latency_ns[-1] < r_full.latency_ns[-1]
    # pe_ops overrides the activity's operations: SpikeSim's ops with sparse spikes
    r_mixed = run_timing(mapping, sparse, pe_ops=full.active_pe_ops / 3)
    np.testing.assert_array_equal(r_mixed.stage_cycles, r_full.stage_cycles)


def test_residual_join_waits_for_skip_and_conv1() -> None:
    spec = NetSpec(
        name="resnet18", width=1 / 16, input_shape=(3, 16, 16), num_classes=10, ic_positions=(2,)
    )
    graph = spec.graph()
    assert sorted(graph.predecessors("block1.conv2")) == ["block1.conv1", "block1.skip"]
    assert graph.predecessors("block2.skip") == ("block1.conv2",)
    assert graph.predecessors("ic2.gap") == ("block2.conv2",)
    r = _timing(SPIKESIM, graph, steps=2)
    i = {n: k for k, n in enumerate(r.layer_names)}
    join = r.finish_cycles[0, i["block1.conv2"]] - r.stage_cycles[0, i["block1.conv2"]]
    assert join >= r.finish_cycles[0, i["block1.skip"]]  # partial sums: no transfer
    assert join >= r.finish_cycles[0, i["block1.conv1"]] + r.transfer_cycles[0, i["block1.conv1"]]
    assert r.transfer_cycles[:, i["block1.skip"]].sum() == 0


def test_mismatched_activity_is_refused() -> None:
    chain = map_network(SPIKESIM, CHAIN)
    act = full_activity(chain, 2)
    with pytest.raises(ValueError, match="do not match"):
        run_timing(map_network(SPIKESIM, HEADED), act)
    with pytest.raises(ValueError, match="pe_ops"):
        run_timing(chain, act, pe_ops=np.zeros((3, 4)))
