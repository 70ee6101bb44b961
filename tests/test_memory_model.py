"""The memory model (hwsim.pipeline.memory) against what a run holds: the traces' arrays as
simulated, and the resident memory one chip simulation adds, measured in a process of its own
(Linux: /proc/self/status); the warning when the estimate exceeds what is free."""

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
from hwsim.methods import METHODS
from hwsim.model.graph import FC_HEAD
from hwsim.pipeline.memory import (
    RUNTIME_BYTES,
    MemoryEstimate,
    cycle_memory,
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
    assert estimate.parts["runtime"] == RUNTIME_BYTES
    assert estimate.total_bytes == sum(estimate.parts.values())


def test_one_simulation_adds_what_the_model_says() -> None:
    # a process of its own simulates 2,000 images x 60 steps of the test network's chip; its
    # resident memory grows by the simulator's part of `simulation_bytes` (the workload, made
    # before, excluded) within 10%
    script = textwrap.dedent(
        """
        import ctypes, json, sys
        from pathlib import Path
        import numpy as np
        sys.path.insert(0, sys.argv[1])
        from tests.test_functional import IDEAL, VGG, dyadic_net
        from hwsim.hw.mapping import map_network
        from hwsim.hw.sim import Workload, chip_model, simulate

        def kib(field):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1])

        graph = dyadic_net(VGG, seed=5).graph
        chip = chip_model(map_network(IDEAL, graph), graph.names, 0)
        n, steps, layers = 2000, 60, len(graph.names)
        rng = np.random.default_rng(0)
        work = Workload(
            rng.integers(0, 40, (n, steps, layers), dtype=np.int32),
            rng.integers(0, 30, (n, steps, layers), dtype=np.int32),
            rng.integers(0, 5, (n, steps), dtype=np.int32),
        )
        small = Workload(work.pe_ops[:2], work.sent_spikes[:2], work.counted_spikes[:2])
        simulate(chip, small)  # compiled (or loaded) before measuring
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        before = kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        run = simulate(chip, work)
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
    n, steps, layers = m["n"], m["steps"], m["layers"]
    workload = n * steps * (4 * layers + 4)  # spikes sent + counted spikes (spikesim: k = 1)
    want = simulation_bytes(n, steps, layers, m["edges"], event=False) - workload
    assert m["grown"] == pytest.approx(want, rel=0.10)


def test_the_cycle_part_counts_the_whole_chip() -> None:
    arch = load_arch(ARCH)
    graph = dyadic_net(VGG, seed=5).graph
    ic = graph.heads[0]
    mapping = map_network(arch, graph.with_heads({ic, FC_HEAD}))
    chip = chip_model(mapping, mapping.graph.names, 0)
    layers, edges = len(chip.layer_names), len(chip.edge_src)
    est = cycle_memory(arch, graph, ic, 100, 20, threads=2)
    # by hand: spikesim (k = 1), 100 x 20 jobs, two runs at once
    per_job = 4 * layers + 4 + 8 * (layers + 1) + 16 * (layers + 1) + (layers + 1) + 4 * edges
    assert est.parts["simulated runs"] == 2 * 100 * 20 * per_job
    assert est.parts["chip run"] == 16 * 100 * 20 * (layers + 1)
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
