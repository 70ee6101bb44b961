"""The bridge from the engine's activity to the chip's (hwsim.pipeline.activity): the per-image
record summed over the images is the aggregate the ideal mode charges, a layer's sent spikes
follow the graph (plain loop), and the performed jobs' activity counts only those jobs."""

import dataclasses

import numpy as np
import pytest

from hwsim.engine import simulate
from hwsim.errors import DataError
from hwsim.hw.arch import EnergyModel
from hwsim.hw.mapping import map_network
from hwsim.model.graph import FUSION_UNIT
from hwsim.pipeline import activity as activity_module
from hwsim.pipeline.activity import (
    activity_spec,
    chip_workload,
    image_activity,
    image_chunks,
    layer_activity,
    performed_activity,
    spikes_sent,
)
from tests.test_functional import IDEAL, VGG, dyadic_images, dyadic_net

T = 12


@pytest.fixture(scope="module")
def traced():
    net = dyadic_net(VGG, seed=5)
    spec = dataclasses.replace(activity_spec(IDEAL), per_image=True)
    sim = simulate(net, dyadic_images(3, seed=4), T, activity=spec)
    return net.graph, sim


def test_the_per_image_record_sums_to_the_aggregate(traced):
    graph, sim = traced
    record = image_activity(graph, sim.activity)
    assert record.layer_names == graph.names and record.shape == (3, T, len(graph.names))
    whole = layer_activity(graph, sim.activity, 3)
    every = {name: np.ones((3, T), bool) for name in graph.names}
    summed = record.performed(graph, every)
    for name in ("active_pe_ops", "crossbar_reads", "input_spikes", "output_spikes"):
        assert np.array_equal(getattr(summed, name), getattr(whole, name)), name
    assert whole.active_pe_ops.sum() > 0 and whole.output_spikes.sum() > 0
    # a job that did not run counts nothing; the others as before
    first = graph.names[0]
    some = {**every, first: np.zeros((3, T), bool)}
    part = record.performed(graph, some)
    assert part.active_pe_ops[:, 0].sum() == 0 and part.output_spikes[:, 0].sum() == 0
    assert np.array_equal(part.active_pe_ops[:, 1:], whole.active_pe_ops[:, 1:])
    with pytest.raises(DataError, match="per-image"):
        image_activity(graph, dataclasses.replace(sim.activity, per_image=None))


def test_spikes_sent_follow_the_graph(traced):
    graph, _ = traced
    rng = np.random.default_rng(0)
    fired = rng.integers(0, 9, (2, T, len(graph.names)))
    sent = spikes_sent(graph, fired)
    to_unit = {src for src, dst in graph.spike_edges() if dst == FUSION_UNIT}
    assert to_unit == {graph.head_output(h).name for h in graph.heads}
    for k, g in enumerate(graph.layers):
        for i in range(2):
            for t in range(T):
                if not g.sends_spikes:
                    want = 0
                elif g.name in to_unit:
                    want = fired[i, t, k]
                else:
                    want = fired[i, t - 1, k] if t > 0 else 0
                assert sent[i, t, k] == want, (g.name, i, t)


def test_the_workload_charges_the_energy_model_s_operations(traced):
    graph, sim = traced
    record = image_activity(graph, sim.activity)
    event = dataclasses.replace(IDEAL, energy_model=EnergyModel.EVENT)
    for arch, ops in (
        (IDEAL, np.broadcast_to(map_network(IDEAL, graph).pe_operations(), record.shape)),
        (event, record.pe_operations),
    ):
        work = chip_workload(map_network(arch, graph), sim.activity)
        assert np.array_equal(work.pe_ops, ops)
        assert np.array_equal(work.sent_spikes, record.sent(graph))
        assert work.pe_ops.dtype == work.sent_spikes.dtype == np.int32
        # a method's layers only, its counted spikes kept
        some = graph.names[1::2]
        keep = [j for j, name in enumerate(graph.names) if name in some]
        counted = np.arange(3 * T).reshape(3, T)
        part = chip_workload(map_network(arch, graph), sim.activity, some, counted)
        assert np.array_equal(part.pe_ops, np.asarray(ops)[:, :, keep])
        assert np.array_equal(part.sent_spikes, record.sent(graph)[:, :, keep])
        assert np.array_equal(part.counted_spikes, counted)


def test_chunks_of_images_read_what_the_whole_record_holds(traced, monkeypatch):
    # one image per chunk (CHUNK_BYTES too small for two): the workload and the performed
    # jobs' activity equal those read from the whole record at once
    graph, sim = traced
    n = 3
    assert [(s.start, s.stop) for s in image_chunks(10, T, 4)] == [(0, 10)]
    monkeypatch.setattr(activity_module, "CHUNK_BYTES", 1)
    assert [(s.start, s.stop) for s in image_chunks(n, T, 4)] == [(0, 1), (1, 2), (2, 3)]
    record = image_activity(graph, sim.activity)
    rng = np.random.default_rng(1)
    ran = {name: rng.random((n, T)) < 0.6 for name in graph.names[:-1]}
    whole = record.performed(graph, ran)
    chunked = performed_activity(graph, sim.activity, lambda p: {k: v[p] for k, v in ran.items()})
    for name in ("active_pe_ops", "crossbar_reads", "input_spikes", "output_spikes"):
        assert np.array_equal(getattr(chunked, name), getattr(whole, name)), name
    assert chunked.images == n
    event = dataclasses.replace(IDEAL, energy_model=EnergyModel.EVENT)
    work = chip_workload(map_network(event, graph), sim.activity)
    assert np.array_equal(work.pe_ops, record.pe_operations)
    assert np.array_equal(work.sent_spikes, record.sent(graph))
    assert np.array_equal(image_activity(graph, sim.activity, slice(1, 3)).fired, record.fired[1:])
