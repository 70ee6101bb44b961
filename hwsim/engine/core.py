"""`simulate`: stream images in batches and time in chunks through an engine backend."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from hwsim.engine import mapped
from hwsim.engine.backends import Backend, CrossbarSynapse, NumbaBackend, Synapse
from hwsim.engine.plan import Plan, build_plan
from hwsim.engine.result import BACKEND_NAMES, Activity, ActivitySpec, SimResult
from hwsim.engine.torch_backend import TorchBackend
from hwsim.errors import InputError
from hwsim.model.coding import DirectCoding, InputCoding
from hwsim.model.convert import SpikingNetwork

BACKENDS: dict[str, type[Backend]] = dict(
    zip(BACKEND_NAMES, (NumbaBackend, TorchBackend), strict=True)
)
"""Engine backends by name; "numba" (event-driven) is the default and the fastest measured."""


def dense_counts(plan: Plan, spec: ActivitySpec) -> tuple[np.ndarray, np.ndarray]:
    """(dense_pe_ops, dense_windows) per connection: every input nonzero, one image and step."""
    ops, wins = [], []
    for c in plan.conns:
        blocks = math.ceil(c.out_shape[2] / spec.cols_per_crossbar)
        pos = c.out_shape[0] * c.out_shape[1]
        if spec.mapping == "unrolled":
            rows = c.kernel[0] * c.kernel[1] * c.in_shape[2]
            ops.append(pos * math.ceil(rows / spec.rows_per_crossbar) * blocks)
            wins.append(ops[-1])
            continue
        groups = math.ceil(c.in_shape[2] / spec.rows_per_crossbar)
        ops.append(pos * c.kernel[0] * c.kernel[1] * groups * blocks)
        wins.append(pos * groups * blocks)
    return np.asarray(ops, np.int64), np.asarray(wins, np.int64)


CHUNK_BYTES = 64 * 2**20
"""The most one time chunk's input spikes and outputs take when `simulate` chooses the chunk
(`time_chunk=None`): the longer the chunk, the fewer times every group of images reloads its
state (a run of the embedded model under direct coding is one chunk up to about 700 steps;
chunks of 64 steps cost it 1-3%, bench/README.md)."""


def default_chunk(be: Backend, batch_size: int, timesteps: int) -> int:
    """The longest time chunk within CHUNK_BYTES for batches of `batch_size` images."""
    return max(1, min(timesteps, CHUNK_BYTES // max(be.step_bytes(batch_size), 1)))


def state_bytes(
    snn: SpikingNetwork,
    batch_size: int = 250,
    time_chunk: int = 64,
    coding: InputCoding | None = None,
    activity: ActivitySpec | None = None,
    threads: int = 0,
) -> int:
    """Peak memory of the numba engine for batches of `batch_size` images (what
    SimResult.peak_state_bytes reports): membranes (4 B) and the spike buffers of a time block
    and the step before it (1 B each, NumbaBackend.time_block) per neuron, analog input
    currents, one chunk's input spikes and outputs, per-thread scratch. The result arrays come
    on top: head spikes are N x T x classes bytes per head."""
    rows = activity.rows_per_crossbar if activity else 0
    cols = activity.cols_per_crossbar if activity else 1
    mapping = activity.mapping if activity else "kernel_split"
    be = NumbaBackend(build_plan(snn), coding or DirectCoding(), rows, cols, threads, mapping)
    return be.batch_bytes(batch_size, time_chunk)


def simulate(
    snn: SpikingNetwork,
    images: np.ndarray,
    timesteps: int,
    *,
    batch_size: int = 250,
    on_batch: Callable[[int], None] | None = None,
    coding: InputCoding | None = None,
    backend: str = "numba",
    activity: ActivitySpec | None = None,
    time_chunk: int | None = None,
    image_ids: np.ndarray | None = None,
    threads: int = 0,
    synapses: Mapping[str, Synapse | CrossbarSynapse] | None = None,
    spill: Path | None = None,
) -> SimResult:
    """Run `images` (N, C, H, W) float32 through the SNN for `timesteps` steps.

    `coding`: DirectCoding() (default), PoissonCoding(seed) or WeightedSpikeCoding(K, skip).
    `backend`: a key of BACKENDS. `activity`: count crossbar activity (None: skip the cost).
    Images run `batch_size` at a time and time `time_chunk` steps at a time (None: as many as
    fit CHUNK_BYTES of chunk inputs and outputs), so memory is bounded whatever N and T are.
    `image_ids` (N,) identify images to random codings (default 0..N-1).
    `on_batch(n)` is called after each batch with its number of images. `threads`: worker
    threads of the numba backend (0: NUMBA_NUM_THREADS or the CPUs available).

    `synapses`, by graph layer name, give those connections' currents in place of their dense
    op (e.g. the crossbars of `hwsim.hw.synapse`): on the torch backend callable
    `Synapse`s; on the numba backend `CrossbarSynapse`s (arrays its kernels read), plus a
    callable only for the analog input layer (a callable elsewhere raises InputError). A
    phased coding (weighted spikes) is refused, since a synapse takes no phase weight.

    `spill`: a folder where the head spikes and per-image activity are written batch by batch
    (memory-mapped .npy files, `hwsim.engine.mapped`; each batch's pages let go), so that the
    result's memory does not grow with N; the arrays stay valid while the files are there
    (the caller removes them).
    """
    if timesteps < 1:
        raise InputError(f"timesteps must be >= 1, got {timesteps}")
    if batch_size < 1 or (time_chunk is not None and time_chunk < 1):
        raise InputError(f"batch_size and time_chunk must be >= 1, got {batch_size}, {time_chunk}")
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != tuple(snn.graph.input_shape):
        raise InputError(
            f"images must be (N, {', '.join(map(str, snn.graph.input_shape))}), got {images.shape}"
        )
    coding = coding or DirectCoding()
    n = len(images)
    ids = np.arange(n, dtype=np.int64) if image_ids is None else np.asarray(image_ids, np.int64)
    if ids.shape != (n,):
        raise InputError(f"image_ids must have shape ({n},), got {ids.shape}")
    plan = build_plan(snn)
    spec = activity
    rows = spec.rows_per_crossbar if spec else 0
    cols = spec.cols_per_crossbar if spec else 1
    mapping = spec.mapping if spec else "kernel_split"
    if synapses:
        unknown = sorted(set(synapses) - {c.name for c in plan.conns})
        if unknown:
            raise InputError(f"synapses for layers not in the network: {', '.join(unknown)}")
        per_conn = [synapses.get(c.name) for c in plan.conns]
        be: Backend = BACKENDS[backend](
            plan, coding, rows, cols, threads, mapping, synapses=per_conn
        )
    else:
        be = BACKENDS[backend](plan, coding, rows, cols, threads, mapping)
    classes, n_l, n_g = plan.classes, len(plan.layers), len(plan.conns)
    head_spikes = {
        h: mapped.zeros(spill, f"head{h}", (n, timesteps, classes), np.uint8) for h in plan.heads
    }
    layer_spikes = np.zeros((timesteps, n_l), np.int64)
    act_sum = np.zeros((timesteps, n_g, 3), np.int64) if spec else None
    per_image = None
    if spec and spec.per_image:
        per_image = mapped.zeros(spill, "per_image", (n, timesteps, n_g, 4), np.int32)
    dst = np.asarray([c.dst for c in plan.conns], np.int64)
    peak = 0
    if time_chunk is None:
        chunk = default_chunk(be, min(batch_size, n), timesteps)
    else:
        chunk = min(time_chunk, timesteps)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        runner = be.start(np.ascontiguousarray(images[start:stop]), ids[start:stop], chunk)
        for t0 in range(0, timesteps, chunk):
            t1 = min(t0 + chunk, timesteps)
            out = runner.advance(t0, t1)
            for hi, h in enumerate(plan.heads):
                head_spikes[h][start:stop, t0:t1] = out.head_spikes[:, :, hi]
            layer_spikes[t0:t1] += out.layer_spikes.sum(0, dtype=np.int64)
            if out.activity is not None and act_sum is not None:
                act_sum[t0:t1] += out.activity.sum(0, dtype=np.int64)
                if per_image is not None:
                    per_image[start:stop, t0:t1, :, :3] = out.activity
                    per_image[start:stop, t0:t1, :, 3] = out.layer_spikes[:, :, dst]
        peak = max(peak, runner.state_bytes)
        for array in (*head_spikes.values(), per_image):
            if array is not None:
                mapped.let_go(array)  # nothing for arrays in memory
        if on_batch is not None:
            on_batch(stop - start)
    act = None
    if spec is not None and act_sum is not None:
        dense_ops, dense_wins = dense_counts(plan, spec)
        act = Activity(
            spec,
            tuple(c.name for c in plan.conns),
            dst,
            act_sum[..., 0],
            act_sum[..., 1],
            act_sum[..., 2],
            layer_spikes[:, dst],
            dense_ops,
            dense_wins,
            per_image,
        )
    neurons = np.asarray([ly.neurons for ly in plan.layers], np.int64)
    names = tuple(ly.name for ly in plan.layers)
    return SimResult(
        head_spikes, names, layer_spikes, neurons, act, peak, coding.describe(), backend
    )
