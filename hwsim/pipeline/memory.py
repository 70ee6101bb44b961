"""What a run needs in memory, as a function of its test images N, tuning images N_tune,
timesteps T and network size: the model behind the warning printed before long work
(`memory_warning`), checked against measured peaks by bench/memory.py (docs/memory.md).

Sizes in bytes, with L the chip's layers (backbone, IC and FC heads:
`LayerGraph.with_heads`), E the simulated chip's edges (`hwsim.hw.sim.ChipModel`: spike edges
between them and to the fusion unit, residual joins), G the network's layers, C classes, H
heads, P populations, M methods (`hwsim.methods.METHODS`), R records per tuning image
(`RECORDS_PER_STEP` T):

| part | bytes | held |
|---|---|---|
| runtime | `RUNTIME_BYTES` (+ `TORCH_BYTES` once torch is imported) | always |
| test trace | N T C h + 8 T (P + 3 G) (+ 16 N T G simulated, not stored) | from its simulation on |
| tuning trace | N_tune T C h + 8 T (P + 3 G) | from its simulation on |
| fusion unit | max(5 `READOUT_BYTES`, 96 R N_tune) + 2 (C + 20) (N + N_tune) + 24 M N | its run |
| a simulated run | 4 N T + min(N, 2 B + W) 8 T (L + 1) + W T (25 (L + 1) + 4 E) | per thread |
| chunks | 3 `CHUNK_BYTES` per thread | in `evaluate_cycles` |
| kept runs | 24 N per method and operating point | from `evaluate_cycles` on |
| credits | 4 N T K, K curves (`credit_bytes`) | from the evaluation on |
| evaluation | 8 R T K + blocks (`evaluation_bytes`), R resamples | while it runs |

The traces are `hwsim.pipeline.config.result_bytes` (head spikes, one byte per image, step,
class and head held: h = H for a trace simulated and not stored, else the `RUN_HEADS` = 2 a run
reads: a trace read from the cache, or stored and read back, reads a head when asked,
`hwsim.engine.trace.HeadSpikes`). The per-image activity of the test trace (four counts per
image, step and layer, for the cycle-level simulation) is held whole (int32) only by a trace the
engine simulates in this run and does not store; a trace read from the cache maps its
`per_image.npy` and is read a chunk of images at a time (`hwsim.engine.trace.read_images`, the
chunks part), so it holds none of it. A simulated run holds the fusion unit's counted spikes
(int32 per job), its workload read a block of B images at a time
(`hwsim.hw.sim.StreamedWorkload`: PE operations and spikes sent per job and node, int32, as many
images as `hwsim.hw.sim.simulate.BLOCK_BYTES` hold; the block being read, the one before it and
the window's at most) and the event loop's window of W <= N images
(`hwsim.hw.sim.simulate.window_images`: as many as 8 MiB of records hold, whatever N is): each
job's start and finish, int64 per job and node, its PE operations and spikes, int32 per job and
node, the rows each edge's producer put in, int32 per job and edge, and, while the window's
performed jobs are counted, one byte per job and node. Every run, `CycleEvaluation.chip_run`
included, is reduced as it ends (`hwsim.pipeline.cycles`) to its images' start, end and steps
and its per-node totals. The fusion unit counts both heads' spikes (int32) a chunk of images at
a time (`hwsim.fusion.READOUT_BYTES`; the chunk's counts, its read-out's and the float
fusion's temporaries, `READOUT_CHUNKS` of them) and keeps of each method's read-out
(`hwsim.fixed_point.DecisionRecords`) no (N, T) array: the tuning images' records (R per image;
`RECORD_BYTES` each while the stop rule is swept, `hwsim.fusion.stop_rules.tune_stop_rule`),
then the test images' pruned to the tuned threshold, at most one each, with their last decision
and top set (`image_readout_bytes`), and each method's stop step, answer and credit per test
image (`TERMINATION_BYTES`).

The accuracy-energy evaluation keeps each curve's per-image credits,
`CREDIT_DTYPE` per image and step (the evaluation's counts and decisions are a chunk of images
at a time, `hwsim.fusion.compare_on_spikes`), and its bootstrap holds per curve its sums over R
resamples and a few blocks of draws (`hwsim.metrics.resampled_sums`).

Not modelled: the conversion's calibration (transient, before the traces), the report and its
figures, the allocator's free memory not yet returned; bench/memory.py measures the whole job.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from hwsim.atomic import available_memory_bytes
from hwsim.engine import ActivitySpec
from hwsim.engine.threads import default_threads
from hwsim.engine.trace import HeadSpikes, Trace
from hwsim.fusion import CREDIT_DTYPE, READOUT_BYTES
from hwsim.hw.arch import Architecture
from hwsim.hw.mapping import map_network
from hwsim.hw.sim import chip_model
from hwsim.hw.sim.simulate import BLOCK_BYTES, window_images
from hwsim.methods import METHODS, fused_methods
from hwsim.metrics import RESAMPLE_BLOCK_BYTES, BootstrapConfig
from hwsim.model.graph import FC_HEAD, LayerGraph
from hwsim.pipeline.activity import CHUNK_BYTES
from hwsim.pipeline.config import SimConfig, result_bytes

RUN_HEADS = 2
"""Heads whose spikes a run reads from each trace: its IC and the FC."""

RUNTIME_BYTES = 202 * 2**20
"""Resident bytes of the interpreter with NumPy, Numba, matplotlib and hwsim loaded and a model
opened, before any trace (measured on a 2-core Intel Xeon, Linux, Python 3.11: NumPy and Numba
91 MiB, hwsim and matplotlib 105 MiB more); a run whose traces are all cached needs no more."""

TORCH_BYTES = 183 * 2**20
"""Resident bytes torch 2.13 (CPU) adds once imported (same measurement): a run that converts
a model or simulates a trace imports it; one whose traces are cached does not."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak resident bytes of a run by part (module table), and what it says about them."""

    parts: dict[str, int]

    @property
    def total_bytes(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        """The total and its parts, in MiB."""
        parts = ", ".join(f"{name} {size / 2**20:.0f}" for name, size in self.parts.items())
        return f"about {self.total_bytes / 2**20:.0f} MiB ({parts} MiB)"


KERNEL_BYTES_PER_JOB = (25, 4)
"""The event loop's window per job (`hwsim.hw.sim.simulate`): (bytes per node: start and
finish, int64, the job's PE operations and spikes, int32, and whether it was performed, one
byte; bytes per edge: rows put in, int32)."""


def kernel_bytes(images: int, timesteps: int, layers: int, edges: int) -> int:
    """Bytes the simulator's window holds for `layers` chip layers (and the fusion unit) and
    `edges` spike edges: `window_images` of the `images` x `timesteps` jobs at most
    (`KERNEL_BYTES_PER_JOB`), so no more for a larger test set."""
    node, edge = KERNEL_BYTES_PER_JOB
    held = min(images, window_images(timesteps, layers + 1, edges))
    return held * timesteps * (node * (layers + 1) + edge * edges)


def simulation_bytes(images: int, timesteps: int, layers: int, edges: int) -> int:
    """Peak bytes of one simulated run of `layers` chip layers and `edges` spike edges over
    `images` x `timesteps` jobs (module table): its counted spikes (4 per job), its streamed
    workload's blocks (8 bytes per job and node, two blocks and a window of images at most) and
    the event loop's window (`kernel_bytes`)."""
    per_image = 8 * timesteps * (layers + 1)
    block = max(1, BLOCK_BYTES // per_image)
    window = min(images, window_images(timesteps, layers + 1, edges))
    streamed = min(images, 2 * block + window) * per_image
    return 4 * images * timesteps + streamed + kernel_bytes(images, timesteps, layers, edges)


def cycle_memory(
    arch: Architecture,
    graph: LayerGraph,
    ic: int,
    images: int,
    timesteps: int,
    threads: int = 0,
    early_stop: bool = True,
) -> MemoryEstimate:
    """Peak bytes of `evaluate_cycles` on the chip of `graph` + IC `ic` + FC over `images`
    test images of `timesteps` (module table): `threads` runs at once (0: the CPUs), every
    method at fixed T and, with `early_stop`, early termination."""
    mapping = map_network(arch, graph.with_heads({ic, FC_HEAD}))
    chip = chip_model(mapping, mapping.graph.names, 0)  # the whole chip: every method's at most
    threads = threads or default_threads()
    runs = len(METHODS) * (2 if early_stop else 1)
    layers = len(chip.layer_names)
    one = simulation_bytes(images, timesteps, layers, len(chip.edge_src))
    return MemoryEstimate(
        {
            "simulated runs": min(threads, runs) * one,
            "chunks": min(threads, runs) * 3 * CHUNK_BYTES,
            "kept runs": runs * 24 * images,
        }
    )


READOUT_CHUNKS = 5
"""`READOUT_BYTES` the fusion unit's read-out of one chunk of images holds at most: its
counts and the unit's and the float fusion's temporaries (measured with tracemalloc on
synthetic spikes, T = 300, C = 10: 38.7 MiB)."""

RECORDS_PER_STEP = 0.2
"""Records (`hwsim.fixed_point.DecisionRecords`) per tuning image and timestep: a read-out's
running maximum of confidence rises at most T times; measured on synthetic spikes (label
0.3, others 0.1 per step, T = 300): 0.18 on average for a margin in spikes (DL), 0.004 to
0.006 for the posterior confidence (the default termination)."""

RECORD_BYTES = 96
"""Bytes per tuning record while the stop rule is swept: the record (8, twice while chunks
are joined) and ten 8-byte temporaries (`tune_stop_rule`)."""


def image_readout_bytes(classes: int) -> int:
    """Bytes per image of a method's `DecisionRecords` but its records: the top set at T
    (`classes` bools), last decision and record offset (20 at most), twice while chunks are
    joined."""
    return 2 * (classes + 20)


TERMINATION_BYTES = 24
"""Bytes per test image and method kept (`TerminationResult`: stop step, answer, credit)."""


def fusion_memory(images: int, tune_images: int, timesteps: int, classes: int) -> int:
    """Peak bytes of `fusion_hardware` (module table) on `images` test and `tune_images`
    tuning images of `timesteps` and `classes`: a chunk's read-out or the tuning records'
    sweep, whichever is larger, and the per-image parts; no term grows with the test images x
    timesteps."""
    records = RECORDS_PER_STEP * timesteps * tune_images
    per_image = image_readout_bytes(classes)
    test = images * (TERMINATION_BYTES * len(METHODS) + per_image)
    return int(max(READOUT_CHUNKS * READOUT_BYTES, RECORD_BYTES * records)) + (
        per_image * tune_images + test
    )


def credit_bytes(images: int, timesteps: int) -> int:
    """Bytes of the accuracy-energy evaluation's per-image credits (`hwsim.pipeline.evaluate`,
    kept in the run's result): each method's and each fused method's exact-alpha curve,
    `CREDIT_DTYPE` per image and step."""
    curves = len(METHODS) + len(fused_methods())
    return curves * np.dtype(CREDIT_DTYPE).itemsize * images * timesteps


def evaluation_bytes(timesteps: int, resamples: int = BootstrapConfig.resamples) -> int:
    """Bytes the evaluation holds while it runs, besides its credits: the bootstrap's sums,
    float64 per resample and step for each curve, and a few blocks of draws
    (`hwsim.metrics.resampled_sums`); the read-out's chunk (`READOUT_CHUNKS` `READOUT_BYTES`,
    `hwsim.fusion.compare_on_spikes`)."""
    curves = len(METHODS) + len(fused_methods())
    sums = curves * 8 * resamples * timesteps
    return sums + 6 * RESAMPLE_BLOCK_BYTES + READOUT_CHUNKS * READOUT_BYTES


def run_memory(
    arch: Architecture,
    graph: LayerGraph,
    ic: int,
    images: int,
    tune_images: int,
    timesteps: int,
    threads: int = 0,
    cycle: bool = True,
    simulated: bool = True,
    torch: bool = True,
) -> MemoryEstimate:
    """Peak bytes of `hwsim run` (module table): the runtime (with torch's when `torch`: the
    run converts a model or simulates a trace), both traces (every head and
    the test trace's per-image activity, with `cycle`, held when `simulated`: simulated in
    this run and not stored; else read back from the trace cache: `RUN_HEADS` heads, the
    activity mapped), the evaluation's credits, then the largest of the parts that come and
    go: the evaluation's (`evaluation_bytes`), the fusion unit's and the cycle-level
    simulation's."""
    spec = ActivitySpec(per_image=True) if cycle and simulated else None
    held = None if simulated else RUN_HEADS  # a trace read back holds the heads it reads
    test = result_bytes(graph, images, SimConfig(timesteps=timesteps, activity=spec), held)
    tune = result_bytes(graph, tune_images, SimConfig(timesteps=timesteps), held)
    runtime = RUNTIME_BYTES + (TORCH_BYTES if torch else 0)
    parts = {"runtime": runtime, "test trace": test, "tuning trace": tune}
    parts["credits"] = credit_bytes(images, timesteps)
    parts["evaluation"] = evaluation_bytes(timesteps)
    if cycle:
        fusion = fusion_memory(images, tune_images, timesteps, graph.classes)
        cycles = cycle_memory(arch, graph, ic, images, timesteps, threads).total_bytes
        parts["evaluation"] = max(parts["evaluation"], fusion, cycles)
    return MemoryEstimate(parts)


def memory_warning(estimate: MemoryEstimate, available: int | None = None) -> str | None:
    """A warning when `estimate` exceeds the memory `available` (default: what the system can
    still give, `hwsim.atomic.available_memory_bytes`), naming what lowers it; None if it
    fits."""
    have = available_memory_bytes() if available is None else available
    if estimate.total_bytes <= have:
        return None
    return (
        f"this run needs {estimate.describe()}, more than the {have / 2**20:.0f} MiB free;"
        " fewer test images or timesteps lower it (the traces and the cycle-level simulation"
        " grow with images x timesteps; analytic timing leaves the simulation out)"
    )


def run_warning(
    arch: Architecture, graph: LayerGraph, ic: int, test: Trace, tune: Trace | None, cycle: bool
) -> str | None:
    """`memory_warning` for the rest of `hwsim run` once its traces are at hand (`test`, and
    `tune` unless cross-fitting), IC `ic`, with the cycle-level simulation when `cycle`: the
    test trace's every head and per-image activity counted as held unless it was read from a
    trace file (its heads read when asked, its activity mapped); torch's memory counted if
    the run imported it."""
    need = run_memory(
        arch,
        graph,
        ic,
        test.key.images,
        0 if tune is None else tune.key.images,
        test.key.timesteps,
        cycle=cycle,
        simulated=not isinstance(test.sim.head_spikes, HeadSpikes),
        torch="torch" in sys.modules,
    )
    return memory_warning(need)
