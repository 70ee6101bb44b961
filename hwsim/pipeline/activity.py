"""The bridge from the engine's activity to the chip's: the one place that reads the engine's
counts in the hardware model's terms, for the ideal mode (the engine's own counts) and the
functional mode (the crossbar synapses' records, `recorded_activity`) alike.

The engine (`hwsim.engine.Activity`) and the chip (`hwsim.hw.activity.LayerActivity`) name the
same counts differently; per graph layer and timestep:

| engine `Activity`         | chip (`LayerActivity`)      | counts per layer and step        |
|---------------------------|-----------------------------|----------------------------------|
| `in_spikes`               | `input_spikes`              | spikes reaching the layer's rows |
| `active_pe_ops`           | `crossbar_reads`            | crossbar read-outs with a spike  |
| `active_windows`          | `active_pe_ops`             | PE operations with a spike       |
| `out_spikes` (fired at t) | `output_spikes` (sent at t) | `spikes_sent`                    |

A layer sends at t what it fired at t - 1 (the one-step delay per layer); a head's output layer
sends to the fusion unit what it fired at t, because the unit decides step t on the counts
through t (`hwsim.engine.SimResult.head_spikes`); a residual skip conv sends nothing.
`ImageActivity` is the per-image record (`Activity.per_image`) of a range of images in the
chip's terms; the cycle-level simulation replays it (`chip_workload`) and charges the jobs it
performed (`performed_activity`), both read in chunks of images (`image_chunks`,
`hwsim.engine.trace.read_images`: a memory-mapped trace's pages are let go after each) so that
no copy of the whole record is made and none stays resident.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np

from hwsim.engine import Activity, ActivitySpec, SimResult
from hwsim.engine.trace import read_images
from hwsim.errors import DataError
from hwsim.hw.activity import LayerActivity
from hwsim.hw.arch import Architecture, EnergyModel
from hwsim.hw.mapping import ChipMapping
from hwsim.hw.pooling import pool_mask
from hwsim.hw.sim import RowsFn, StreamedWorkload, Workload
from hwsim.hw.synapse import HardwareNetwork
from hwsim.model.graph import FUSION_UNIT, LayerGraph

ENGINE_PER_IMAGE: tuple[str, ...] = ("in_spikes", "active_pe_ops", "active_windows", "out_spikes")
"""The columns of the engine's `Activity.per_image` (N, T, G, 4), in order (engine/core.py)."""


def activity_spec(arch: Architecture) -> ActivitySpec:
    """The engine's crossbar activity counting for `arch`'s mapping: its rows per crossbar,
    outputs per crossbar (the mapping's column groups) and row layout."""
    return ActivitySpec(
        rows_per_crossbar=arch.crossbar.rows,
        cols_per_crossbar=arch.outputs_per_crossbar,
        mapping=str(arch.mapping.style),
    )


def spikes_sent(graph: LayerGraph, fired: np.ndarray) -> np.ndarray:
    """Spikes each layer sends at t from those it fired, `fired` (..., T, L) over graph's
    layers: a layer feeding layers sends at t what it fired at t - 1; a head's output sends
    to the fusion unit what it fired at t; a residual skip conv sends none."""
    fired = np.asarray(fired)
    sent = np.zeros_like(fired)
    sent[..., 1:, :] = fired[..., :-1, :]
    to_fusion = {src for src, dst in graph.spike_edges() if dst == FUSION_UNIT}
    now = [g.name in to_fusion for g in graph.layers]
    sent[..., now] = fired[..., now]
    sent[..., [not g.sends_spikes for g in graph.layers]] = 0
    return sent


def population_columns(graph: LayerGraph, sim: SimResult) -> np.ndarray:
    """Per graph layer, the column of `sim.layer_names` holding the spikes of the population
    it drives (a residual skip conv and its conv2 share one): (L,) int64."""
    column = {name: j for j, name in enumerate(sim.layer_names)}
    return np.array([column[g.population] for g in graph.layers], np.int64)


def layer_activity(graph: LayerGraph, activity: Activity, images: int) -> LayerActivity:
    """The chip's view (module table) of the engine's activity counts, summed over `images`,
    for the layers of `graph`."""
    cols = [activity.names.index(name) for name in graph.names]
    sent = spikes_sent(graph, np.asarray(activity.out_spikes, np.int64)[:, cols])
    return LayerActivity(
        layer_names=graph.names,
        images=images,
        active_pe_ops=activity.active_windows[:, cols],
        crossbar_reads=activity.active_pe_ops[:, cols],
        input_spikes=activity.in_spikes[:, cols],
        output_spikes=sent,
    )


def recorded_activity(hw: HardwareNetwork, sim: SimResult) -> Activity:
    """The functional mode's counts as the engine's `Activity` (module table): the crossbar
    synapses' records of the run `sim` of `hw` (PE operations, crossbar reads and input spikes
    per layer, `hwsim.hw.synapse.LayerRecord`), the spikes its layers fired, and the dense
    counts of the mapping, counted with `activity_spec(hw.arch)`."""
    graph = hw.snn.graph
    records = [hw.layers[name].record for name in graph.names]
    if any(r is None for r in records):
        raise DataError("no run recorded: simulate the hardware network first")

    def stacked(count: str) -> np.ndarray:
        return np.stack([getattr(r, count) for r in records], axis=1).astype(np.int64)

    dst = population_columns(graph, sim)
    mapping = hw.mapping
    return Activity(
        spec=activity_spec(hw.arch),
        names=graph.names,
        dst=dst,
        in_spikes=stacked("input_spikes"),
        active_pe_ops=stacked("crossbar_reads"),
        active_windows=stacked("active_pe_ops"),
        out_spikes=sim.layer_spikes[:, dst],
        dense_pe_ops=np.array([m.crossbar_reads for m in mapping.layers], np.int64),
        dense_windows=mapping.pe_operations(),
    )


@dataclass(frozen=True, eq=False)
class ImageActivity:
    """Per image, timestep and layer of `layer_names` ((N, T, L) int32 each, the chip's terms):
    `input_spikes`, `crossbar_reads`, `pe_operations` (PE operations with a spike in their
    window) and `fired` (the spikes its neurons fired at t; `sent` gives what it sends)."""

    layer_names: tuple[str, ...]
    input_spikes: np.ndarray
    crossbar_reads: np.ndarray
    pe_operations: np.ndarray
    fired: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """(images, timesteps, layers)."""
        n, t, layers = self.fired.shape
        return n, t, layers

    def sent(self, graph: LayerGraph) -> np.ndarray:
        """Spikes each layer sends per image and timestep (`spikes_sent`): (N, T, L)."""
        return spikes_sent(graph, self.fired)

    def performed(self, graph: LayerGraph, done: dict[str, np.ndarray]) -> LayerActivity:
        """The `LayerActivity` of the jobs `done[layer]` ((N, T) bool: image i's job of step t
        ran) summed over the images; a layer not in `done` counts nothing."""
        n, steps, layers = self.shape
        summed = {k: np.zeros((steps, layers), np.int64) for k in ("in", "reads", "ops", "sent")}
        sent = self.sent(graph)
        for name, ran in done.items():
            j = self.layer_names.index(name)
            for key, counts in (
                ("in", self.input_spikes),
                ("reads", self.crossbar_reads),
                ("ops", self.pe_operations),
                ("sent", sent),
            ):
                summed[key][:, j] = (counts[:, :, j] * ran).sum(axis=0, dtype=np.int64)
        return LayerActivity(
            layer_names=self.layer_names,
            images=n,
            active_pe_ops=summed["ops"],
            crossbar_reads=summed["reads"],
            input_spikes=summed["in"],
            output_spikes=summed["sent"],
        )


CHUNK_BYTES = 8 << 20
"""Bytes of per-image activity (4 int32 counts per image, timestep and layer) read at once."""


def image_chunks(images: int, timesteps: int, layers: int) -> list[slice]:
    """Consecutive ranges of `images` images whose per-image activity (16 bytes per image,
    timestep and layer) fits in `CHUNK_BYTES` (at least one image each)."""
    size = max(1, CHUNK_BYTES // max(1, 16 * timesteps * layers))
    return [slice(a, min(a + size, images)) for a in range(0, images, size)]


def per_image_counts(activity: Activity) -> np.ndarray:
    """`activity.per_image` (N, T, G, 4) (`ENGINE_PER_IMAGE`; int32 from the engine, the
    compact type of a read trace, memory-mapped: read it with `read_images`); DataError
    without it."""
    if activity.per_image is None:
        raise DataError("the cycle-level simulation needs a trace with per-image activity")
    return activity.per_image


def image_activity(
    graph: LayerGraph, activity: Activity, images: slice = slice(None)
) -> ImageActivity:
    """The engine's per-image activity of `graph`'s layers, in its order, for `images`
    (default all; `ImageActivity`, int32 copies)."""
    per = read_images(per_image_counts(activity), images)
    cols = [activity.names.index(n) for n in graph.names]

    def column(name: str) -> np.ndarray:
        return np.ascontiguousarray(per[:, :, cols, ENGINE_PER_IMAGE.index(name)])

    return ImageActivity(
        layer_names=graph.names,
        input_spikes=column("in_spikes"),
        crossbar_reads=column("active_pe_ops"),
        pe_operations=column("active_windows"),
        fired=column("out_spikes"),
    )


def workload_rows(
    mapping: ChipMapping,
    activity: Activity,
    layers: Collection[str] | None = None,
    counted_spikes: np.ndarray | None = None,
) -> RowsFn:
    """Per image, timestep and layer of `mapping`'s graph (only `layers`, in graph order, if
    given), as `rows(lo, hi)` of images lo .. hi in the simulator's layout (`RowsFn`): the PE
    operations the energy model charges (spikesim: every operation, one broadcast row; event:
    those with a spike in their window) and the spikes each layer sends, int32, read from
    `activity.per_image`; `counted_spikes` (N, T) the fusion unit's (`Workload`; None: 0)."""
    graph = mapping.graph
    per = per_image_counts(activity)
    steps = per.shape[1]
    keep = [j for j, name in enumerate(graph.names) if layers is None or name in layers]
    cols = [activity.names.index(name) for name in graph.names]
    event = mapping.arch.energy_model is not EnergyModel.SPIKESIM
    dense = None
    if not event:
        dense = mapping.pe_operations()[keep]
        if dense.size and dense.max() > np.iinfo(np.int32).max:
            raise ValueError("PE operations per layer and timestep exceed int32")
    windows = ENGINE_PER_IMAGE.index("active_windows")
    fired = ENGINE_PER_IMAGE.index("out_spikes")
    pooled = pool_mask([graph.layers[j] for j in keep])  # on the pooling unit: no PE operations

    def rows(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (hi - lo, steps, len(keep) + 1)  # the fusion unit's column last
        ops, sent = np.zeros(shape, np.int32), np.zeros(shape, np.int32)
        if dense is not None:
            ops[:, :, :-1] = dense
        for part in image_chunks(hi - lo, steps, len(cols)):
            chunk = read_images(per, slice(lo + part.start, lo + part.stop))[:, :, cols]
            sent[part, :, :-1] = spikes_sent(graph, chunk[..., fired])[:, :, keep]
            if event:
                ops[part, :, :-1] = chunk[:, :, keep, windows]
                ops[part, :, :-1][..., pooled] = 0
        if counted_spikes is not None:
            ops[:, :, -1] = counted_spikes[lo:hi]
        return ops, sent

    return rows


def chip_workload(
    mapping: ChipMapping,
    activity: Activity,
    layers: Collection[str] | None = None,
    counted_spikes: np.ndarray | None = None,
) -> Workload:
    """`workload_rows` of every image at once, as arrays (`Workload.packed`: the simulator
    copies nothing); a long test set is better streamed (`streamed_workload`)."""
    n = per_image_counts(activity).shape[0]
    return Workload.packed(*workload_rows(mapping, activity, layers, counted_spikes)(0, n))


def streamed_workload(
    mapping: ChipMapping,
    activity: Activity,
    layers: Collection[str] | None = None,
    counted_spikes: np.ndarray | None = None,
) -> StreamedWorkload:
    """`workload_rows` read by the simulator a block of images at a time (`StreamedWorkload`):
    its memory does not grow with the number of test images."""
    n, steps = per_image_counts(activity).shape[:2]
    keep = [name for name in mapping.graph.names if layers is None or name in layers]
    return StreamedWorkload(
        n, steps, len(keep), workload_rows(mapping, activity, layers, counted_spikes)
    )


LAYER_COUNTS: tuple[str, ...] = ("active_pe_ops", "crossbar_reads", "input_spikes", "output_spikes")
"""The counts of a `LayerActivity` per timestep and layer (its array fields)."""


def performed_activity(
    graph: LayerGraph,
    activity: Activity,
    done: Callable[[slice], Mapping[str, np.ndarray]],
    images: slice | None = None,
) -> LayerActivity:
    """The `LayerActivity` of the jobs that ran among `images` (a range; None: all), summed
    over them chunk by chunk (`ImageActivity.performed`): `done(part)` gives per layer (n, T)
    bool, whether each job of the images `part` ran."""
    per = per_image_counts(activity)
    n, steps = per.shape[:2]
    first, last = (0, n) if images is None else (images.start, images.stop)
    total = {f: np.zeros((steps, len(graph.names)), np.int64) for f in LAYER_COUNTS}
    for chunk in image_chunks(last - first, steps, len(graph.names)):
        part = slice(first + chunk.start, first + chunk.stop)
        counted = image_activity(graph, activity, part).performed(graph, done(part))
        for f in LAYER_COUNTS:
            total[f] += getattr(counted, f)
    return LayerActivity(layer_names=graph.names, images=last - first, **total)
