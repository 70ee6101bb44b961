"""The memory model (hwsim.pipeline.memory) against what a run holds: the traces' arrays as
simulated and as read (the per-image activity mapped, not held), and the resident memory one
chip simulation adds, measured in a process of its own (Linux: /proc/self/status); the warning
when the estimate exceeds what is free."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hwsim.hw.arch import load_arch
from hwsim.hw.mapping import map_network
from hwsim.hw.sim import chip_model
from hwsim.hw.sim.simulate import BLOCK_BYTES, window_images
from hwsim.methods import METHODS
from hwsim.model.graph import FC_HEAD
from hwsim.pipeline.memory import (
    RUNTIME_BYTES,
    TORCH_BYTES,
    MemoryEstimate,
    cycle_memory,
    kernel_bytes,
    memory_warning,
    run_memory,
    simulation_bytes,
)
from tests.test_functional import IDEAL, VGG, dyadic_images, dyadic_net

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "arch_configs" / "spikesim.yaml"


def test_the_traces_are_the_arrays_the_engine_returns() -> None:
    # the test trace with per-image activity and the tuning trace: head spikes and activity
    # as simulated (their nbytes), the run's sums a few KiB more
    import dataclasses

    from hwsim.engine import simulate
    from hwsim.pipeline.activity import activity_spec

    net = dyadic_net(VGG, seed=5)
    images, steps = 6, 9
    spec = dataclasses.replace(activity_spec(IDEAL), per_image=True)
    sim = simulate(net, dyadic_images(images, seed=4), steps, activity=spec)
    graph = net.graph
    ic = graph.heads[0]
    estimate = run_memory(IDEAL, graph, ic, images, images, steps, threads=1)
    held = sum(h.nbytes for h in sim.head_spikes.values()) + sim.activity.per_image.nbytes
    assert held <= estimate.parts["test trace"] <= held + 64 * steps * (len(graph.layers) + 8)
    heads = sum(h.nbytes for h in sim.head_spikes.values())
    assert heads <= estimate.parts["tuning trace"] <= heads + 64 * steps * (len(graph.layers) + 8)
    assert estimate.parts["runtime"] == RUNTIME_BYTES + TORCH_BYTES
    no_torch = run_memory(IDEAL, graph, ic, images, images, steps, threads=1, torch=False)
    assert no_torch.parts["runtime"] == RUNTIME_BYTES
    assert estimate.total_bytes == sum(estimate.parts.values())
    # a test trace read from the cache holds its head spikes, not its per-image activity
    cached = run_memory(IDEAL, graph, ic, images, images, steps, threads=1, simulated=False)
    assert cached.parts["test trace"] == estimate.parts["tuning trace"]


def test_a_read_trace_maps_its_per_image_activity(tmp_path, monkeypatch) -> None:
    # the per-image activity of a trace read from disk is a read-only mapping of its file, in
    # the narrowest type holding its counts; read_images gives int32 copies of a range; the
    # warning counts it as held for a trace in memory only
    import dataclasses
    import mmap

    from hwsim.engine import simulate
    from hwsim.engine.trace import (
        PER_IMAGE_FILE,
        Trace,
        TraceKey,
        indices_sha256,
        read_images,
        read_trace,
        write_trace,
    )
    from hwsim.pipeline.activity import activity_spec

    net = dyadic_net(VGG, seed=5)
    images, steps = 5, 7
    spec = dataclasses.replace(activity_spec(IDEAL), per_image=True)
    sim = simulate(net, dyadic_images(images, seed=4), steps, activity=spec)
    ids = np.arange(images, dtype=np.int64)
    key = TraceKey(
        "0" * 64, "1" * 64, {}, {}, steps, 0, "synthetic", "test", indices_sha256(ids),
        images, tuple(sim.head_spikes), {},
    )  # fmt: skip
    folder = write_trace(Trace(key, ids, ids, sim), tmp_path / "t")
    per = read_trace(folder).sim.activity.per_image
    base = per
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, mmap.mmap) and not per.flags.writeable
    assert per.dtype == (np.uint8 if sim.activity.per_image.max() < 256 else np.uint16)
    assert (folder / PER_IMAGE_FILE).stat().st_size < sim.activity.per_image.nbytes
    got = read_images(per, slice(1, 4))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, sim.activity.per_image[1:4])

    import hwsim.pipeline.memory as memory

    graph, ic = net.graph, net.graph.heads[0]
    held = run_memory(IDEAL, graph, ic, images, 0, steps)
    mapped = run_memory(IDEAL, graph, ic, images, 0, steps, simulated=False)
    assert held.total_bytes - mapped.total_bytes == 16 * images * steps * len(graph.layers)
    between = (held.total_bytes + mapped.total_bytes) // 2
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: between)
    in_memory = Trace(key, ids, ids, sim)
    assert memory.run_warning(IDEAL, graph, ic, in_memory, None, cycle=True) is not None
    assert memory.run_warning(IDEAL, graph, ic, read_trace(folder), None, cycle=True) is None


def test_one_simulation_adds_what_the_model_says(monkeypatch) -> None:
    # a process of its own simulates 2,000 images x 60 steps of the test network's chip from
    # a streamed workload (as `evaluate_cycles` reads it), keeping no records (as a run does);
    # its resident memory grows by the event loop's window (`kernel_bytes`) and the workload's
    # blocks (`simulation_bytes` less the counted spikes, made before): a few MiB whatever the
    # image count, within 25% (the allocator's pages weigh more)
    script = textwrap.dedent(
        """
        import ctypes, json, sys
        from pathlib import Path
        import numpy as np
        sys.path.insert(0, sys.argv[1])
        from tests.test_functional import IDEAL, VGG, dyadic_net
        from hwsim.hw.mapping import map_network
        from hwsim.hw.sim import StreamedWorkload, Workload, chip_model, simulate

        def kib(field):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1])

        sys.modules["hwsim.hw.sim.simulate"].BLOCK_BYTES = 1 << 20  # blocks of 168 images
        graph = dyadic_net(VGG, seed=5).graph
        chip = chip_model(map_network(IDEAL, graph), graph.names, 0)
        n, steps, layers = 2000, 60, len(graph.names)
        rng = np.random.default_rng(0)
        spikes = rng.integers(0, 30, (n, steps, layers + 1), dtype=np.int32)
        spikes[..., -1] = 0
        ops = rng.integers(0, 40, (n, steps, layers + 1), dtype=np.int32)
        small = Workload.packed(ops[:2].copy(), spikes[:2].copy())
        simulate(chip, small)  # compiled (or loaded) before measuring
        rows = lambda a, b: (ops[a:b].copy(), spikes[a:b].copy())  # noqa: E731
        work = StreamedWorkload(n, steps, layers, rows)
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        before = kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        run = simulate(chip, work, keep=False)
        grown = (kib("VmHWM") - before) * 1024
        print(json.dumps({"grown": grown, "n": n, "steps": steps, "layers": layers,
                          "edges": len(chip.edge_src)}))
        """
    )
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs")
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, check=True
    )
    m = json.loads(done.stdout.strip().splitlines()[-1])
    kernel = kernel_bytes(m["n"], m["steps"], m["layers"], m["edges"])
    window = window_images(m["steps"], m["layers"] + 1, m["edges"])
    assert window < m["n"]  # the window, not the test set, bounds the records
    assert kernel == window * m["steps"] * (25 * (m["layers"] + 1) + 4 * m["edges"])
    monkeypatch.setattr(sys.modules["hwsim.pipeline.memory"], "BLOCK_BYTES", 1 << 20)
    want = simulation_bytes(m["n"], m["steps"], m["layers"], m["edges"]) - 4 * m["n"] * m["steps"]
    assert want < 8 * m["n"] * m["steps"] * (m["layers"] + 1)  # less than the workload arrays
    assert m["grown"] == pytest.approx(want, rel=0.25)


def test_the_cycle_part_counts_the_whole_chip() -> None:
    arch = load_arch(ARCH)
    graph = dyadic_net(VGG, seed=5).graph
    ic = graph.heads[0]
    mapping = map_network(arch, graph.with_heads({ic, FC_HEAD}))
    chip = chip_model(mapping, mapping.graph.names, 0)
    layers, edges = len(chip.layer_names), len(chip.edge_src)
    est = cycle_memory(arch, graph, ic, 100, 20, threads=2)
    # by hand: 100 x 20 jobs, two runs at once; per job the packed workload (ops and spikes,
    # int32 per node) and counted spikes (int32); in the event loop's window, here all 100
    # images, start and finish (int64 per node), ops and spikes (int32 per node), masks (a
    # byte per node) and rows put in (int32 per edge)
    per_job = 8 * (layers + 1) + 4 + 25 * (layers + 1) + 4 * edges
    assert simulation_bytes(100, 20, layers, edges) == 100 * 20 * per_job
    # the window holds as many images as 8 MiB of records do, for any test set
    window = window_images(20, layers + 1, edges)
    assert 100 < window < 10**6
    # the workload is streamed a block of images at a time: two blocks and a window of
    # images held at most, whatever the test set; the counted spikes grow with it (4 bytes)
    block = BLOCK_BYTES // (8 * 20 * (layers + 1))
    assert 100 < block < 10**6
    big = simulation_bytes(10**6, 20, layers, edges)
    assert big == 10**6 * 20 * 4 + (2 * block + window) * 20 * 8 * (layers + 1) + window * 20 * (
        25 * (layers + 1) + 4 * edges
    )
    assert est.parts["simulated runs"] == 2 * 100 * 20 * per_job
    assert "chip run" not in est.parts  # reduced like every other run
    assert est.parts["kept runs"] == 2 * len(METHODS) * 24 * 100
    one = cycle_memory(arch, graph, ic, 100, 20, threads=1, early_stop=False)
    assert one.parts["simulated runs"] == est.parts["simulated runs"] // 2
    assert one.parts["kept runs"] == len(METHODS) * 24 * 100


def test_the_warning_names_the_need_and_the_remedy() -> None:
    est = MemoryEstimate({"runtime": 3 * 2**20, "test trace": 2**20})
    assert memory_warning(est, available=8 * 2**20) is None
    text = memory_warning(est, available=2**20)
    assert text is not None
    assert "about 4 MiB" in text and "1 MiB free" in text and "fewer test images" in text
    assert est.describe() == "about 4 MiB (runtime 3, test trace 1 MiB)"
    assert np.isclose(est.total_bytes, 4 * 2**20)


def fusion_run(images: int, timesteps: int, classes: int, tune_images: int) -> int:
    """Traced peak bytes (tracemalloc) of `fusion_hardware` on synthetic spikes: the label's
    neuron fires at 0.3 per step in the FC, 0.2 in the IC, the others at 0.1; every method,
    one alpha LUT for the fused ones, early exit from step 6 at a margin of 6 spikes (the
    kernels compiled before)."""
    import tracemalloc

    from hwsim.fixed_point import AlphaLUT, FixedPoint
    from hwsim.fusion.early_exit import EarlyExit
    from hwsim.fusion.tuning import Tuning
    from hwsim.methods import Ties
    from hwsim.pipeline.cycles import fusion_hardware

    rng = np.random.default_rng(images)

    def spikes(labels, hi):
        rate = np.full((labels.size, 1, classes), 0.1, np.float32)
        rate[np.arange(labels.size), 0, labels] = hi
        return (rng.random((labels.size, timesteps, classes), np.float32) < rate).astype(np.uint8)

    tune_y, y = rng.integers(0, classes, tune_images), rng.integers(0, classes, images)
    tune = {FC_HEAD: spikes(tune_y, 0.3), 4: spikes(tune_y, 0.2)}
    test = {FC_HEAD: spikes(y, 0.3), 4: spikes(y, 0.2)}
    lut = AlphaLUT(np.array([1, 10, 50]), np.array([400, 200, 80]), FixedPoint(6, 4))
    fused = {m: lut for m, s in METHODS.items() if s.fused}
    exit_at = np.where(np.arange(timesteps) < 5, np.inf, 6.0)
    tuning = Tuning({}, {}, fused, EarlyExit(exit_at), {}, Ties())
    arch = load_arch(ARCH)
    few = {h: s[:8] for h, s in test.items()}
    fusion_hardware(arch, tuning, 4, few, y[:8], few, y[:8], 0.9)  # the kernels compiled
    tracemalloc.start()
    try:
        fusion_hardware(arch, tuning, 4, tune, tune_y, test, y, 0.9)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_fusion_unit_holds_no_test_images_x_timesteps() -> None:
    # issue 27: in the model a test image costs the same bytes whatever T; measured, the
    # traced peak of `fusion_hardware` stays under the model, and five times the test images
    # (whole read-out chunks, so the chunks' temporaries are the same) add no more than the
    # model's bytes per image (an (N, T) int64 array would add 8 T = 800 per array)
    from hwsim.fusion import READOUT_BYTES
    from hwsim.pipeline.memory import TERMINATION_BYTES, fusion_memory, image_readout_bytes

    per_image = TERMINATION_BYTES * len(METHODS) + image_readout_bytes(10)
    for steps in (30, 300, 3000):
        grow = fusion_memory(2000, 500, steps, 10) - fusion_memory(1000, 500, steps, 10)
        assert grow == 1000 * per_image
    steps, classes, tune = 100, 10, 300
    chunk = READOUT_BYTES // (8 * steps * classes)
    small, large = (fusion_run(n, steps, classes, tune) for n in (chunk, 5 * chunk))
    assert small <= fusion_memory(chunk, tune, steps, classes)
    assert large <= fusion_memory(5 * chunk, tune, steps, classes)
    assert 0 < large - small <= 4 * chunk * per_image


def test_the_evaluation_credits_are_what_the_model_counts() -> None:
    # the credits `compare_on_spikes` keeps (every method's and every fused method's exact
    # curve) are `credit_bytes`; its evaluation holds them, not (N, T, C) counts
    from hwsim import fusion as F
    from hwsim.pipeline.memory import credit_bytes

    rng = np.random.default_rng(0)
    n, steps, classes = 60, 40, 4
    spikes = [(rng.random((n, steps, classes)) < 0.3).astype(np.uint8) for _ in range(2)]
    labels = rng.integers(0, classes, n)
    tuning = F.tune_methods(*(F.cumulative(s) for s in spikes), labels, F.TuningConfig())
    got = F.compare_on_spikes(tuning, *spikes, labels)
    held = sum(a.nbytes for a in (*got.correct.values(), *got.exact.values()))
    assert held == credit_bytes(n, steps)
