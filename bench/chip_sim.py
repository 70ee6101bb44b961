"""Benchmark of the cycle-level chip simulator against the IF engine on the same images, side by
side (bench/README.md).

    python bench/chip_sim.py [--images 1000] [--timesteps 300] [--rounds 2] [--json out.json]

The default run's workload: the shipped model (`models/vgg19.pt`) on its first `--images` test
images at `--timesteps`, direct coding, IC 8 + FC on `arch_configs/spikesim.yaml`, event energy
model (per-image PE work; `--energy-model spikesim` charges every operation). Per round,
interleaved: (1) the engine producing the trace the simulator reads (`hwsim.engine.simulate`
with per-image activity, numba, `--threads`); (2) one simulation of the whole chip over every
image and timestep (`hwsim.hw.sim.simulate`, one thread); (3) everything `hwsim run --timing
cycle` simulates for the five methods (`hwsim.pipeline.cycles.evaluate_cycles`: fixed T at every
method's full T, early stops at half of it, each with its ideal-NoC twin, plus the energy of
the jobs performed). After (2), the same simulation with line buffers (`timing.line_buffer`:
layers work row by row). Reported: seconds of each, their ratios to the engine (and line
buffers' to (2)), the 1-minute load around each run; the median over rounds is the result.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.engine import simulate  # noqa: E402
from hwsim.hw.arch import EnergyModel, load_arch  # noqa: E402
from hwsim.hw.mapping import map_network  # noqa: E402
from hwsim.hw.sim import chip_model  # noqa: E402
from hwsim.hw.sim import simulate as simulate_chip  # noqa: E402
from hwsim.methods import METHODS  # noqa: E402
from hwsim.model.convert import convert  # noqa: E402
from hwsim.model.data import load_dataset  # noqa: E402
from hwsim.model.graph import FC_HEAD  # noqa: E402
from hwsim.model.nets import load_checkpoint  # noqa: E402
from hwsim.pipeline.activity import activity_spec, chip_workload  # noqa: E402
from hwsim.pipeline.cycles import EarlyStop, evaluate_cycles, method_decision_cycles  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "models" / "vgg19.pt"))
    p.add_argument("--arch", default=str(ROOT / "arch_configs" / "spikesim.yaml"))
    p.add_argument("--energy-model", choices=[str(m) for m in EnergyModel], default="event")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--timesteps", type=int, default=300)
    p.add_argument("--ic", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="engine threads")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    arch = dataclasses.replace(load_arch(args.arch), energy_model=EnergyModel(args.energy_model))
    ckpt = load_checkpoint(args.model)
    seed = ckpt.dataset.get("split_seed", 0)
    train = load_dataset(ckpt.dataset["name"], "train", seed=seed)
    test = load_dataset(ckpt.dataset["name"], "test", seed=seed)
    snn = convert(ckpt, train)
    x = test.x[: args.images]
    spec = dataclasses.replace(activity_spec(arch), per_image=True)
    graph = snn.graph
    chip_graph = graph.with_heads({args.ic, FC_HEAD})
    mapping = map_network(arch, chip_graph)
    timing = dataclasses.replace(arch.timing, line_buffer=True)
    lined = map_network(dataclasses.replace(arch, timing=timing), chip_graph)
    steps = args.timesteps
    fixed = {m: steps for m in METHODS}
    cycles = {m: method_decision_cycles(arch, m, graph.classes, stop=False) for m in METHODS}
    rows = []
    for r in range(args.rounds):
        row: dict = {"round": r}
        row["load_before"] = os.getloadavg()[0]
        t0 = time.perf_counter()
        sim = simulate(snn, x, steps, activity=spec, threads=args.threads)
        row["engine_s"] = time.perf_counter() - t0
        act = sim.activity
        assert act is not None
        work = chip_workload(mapping, act)
        whole = chip_model(mapping, chip_graph.names, cycles[next(iter(METHODS))])
        t0 = time.perf_counter()
        run = simulate_chip(whole, work)
        row["one_chip_simulation_s"] = time.perf_counter() - t0
        rows_chip = chip_model(lined, chip_graph.names, cycles[next(iter(METHODS))])
        t0 = time.perf_counter()
        lined_run = simulate_chip(rows_chip, work)
        row["one_line_buffer_simulation_s"] = time.perf_counter() - t0
        rng = np.random.default_rng(r)
        early = {
            m: EarlyStop(rng.integers(steps // 4, steps, len(x)), 0.0, cycles[m]) for m in METHODS
        }
        t0 = time.perf_counter()
        evaluate_cycles(arch, graph, args.ic, act, sim.head_spikes, fixed, cycles, early)
        row["run_cycle_evaluation_s"] = time.perf_counter() - t0
        row["load_after"] = os.getloadavg()[0]
        row["jobs"] = int(run.performed.sum())
        row["one_simulation_vs_engine"] = row["one_chip_simulation_s"] / row["engine_s"]
        row["line_buffer_vs_jobs"] = (
            row["one_line_buffer_simulation_s"] / row["one_chip_simulation_s"]
        )
        row["latency_mean_cycles"] = float(run.latency_cycles.mean())
        row["line_buffer_latency_mean_cycles"] = float(lined_run.latency_cycles.mean())
        row["run_evaluation_vs_engine"] = row["run_cycle_evaluation_s"] / row["engine_s"]
        rows.append(row)
        print(
            f"round {r}: engine {row['engine_s']:.1f} s, one chip simulation"
            f" {row['one_chip_simulation_s']:.2f} s ({row['one_simulation_vs_engine']:.3f}x),"
            f" with line buffers {row['one_line_buffer_simulation_s']:.2f} s"
            f" ({row['line_buffer_vs_jobs']:.1f}x),"
            f" the run's cycle evaluation {row['run_cycle_evaluation_s']:.1f} s"
            f" ({row['run_evaluation_vs_engine']:.2f}x); load {row['load_before']:.2f} ->"
            f" {row['load_after']:.2f}",
            flush=True,
        )
    result = {
        "images": len(x),
        "timesteps": steps,
        "energy_model": args.energy_model,
        "threads": args.threads,
        "rounds": rows,
        "median_one_simulation_vs_engine": statistics.median(
            r["one_simulation_vs_engine"] for r in rows
        ),
        "median_run_evaluation_vs_engine": statistics.median(
            r["run_evaluation_vs_engine"] for r in rows
        ),
        "median_line_buffer_vs_jobs": statistics.median(r["line_buffer_vs_jobs"] for r in rows),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
