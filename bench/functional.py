"""Benchmark of the hardware-functional mode against the ideal engine, side by side
(bench/README.md).

    python bench/functional.py [--images 64] [--timesteps 64] [--rounds 5] [--threads 2]
                               [--full-scale auto|calibrated] [--reference] [--json out.json]

The shipped model (`models/vgg19.pt`: VGG19 at width 1/8, MNIST 28x28, 16 IC heads + FC) on its
first test images, direct coding, as `hwsim run` simulates it: every head of the checkpoint.
Two simulations per round, interleaved, in one process: the ideal engine
(`hwsim.engine.simulate`, numba backend, as `hwsim run` traces) and the same images through the
chip of `arch_configs/spikesim.yaml` (`hwsim.pipeline.hardware.simulate_hardware`: crossbars, ADC,
devices, as crossbar synapses in the numba engine; as `hwsim run --hardware functional` traces);
`--reference` adds the layers' own reads as torch synapses (the slower reference path). Reported
per round: microseconds per image-step of each, the ratio functional / ideal (the median over
rounds is the result), the 1-minute load average before, between and after the timed runs, and
the hardware run's ADC clip rate; `--full-scale calibrated` times the calibrated ADC (its
calibration batch not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.engine import simulate  # noqa: E402
from hwsim.hw.arch import FullScale, load_arch  # noqa: E402
from hwsim.hw.synapse import FunctionalConfig, build_hardware, with_adc  # noqa: E402
from hwsim.model.convert import convert  # noqa: E402
from hwsim.model.data import load_dataset  # noqa: E402
from hwsim.model.nets import load_checkpoint  # noqa: E402
from hwsim.pipeline.hardware import calibrate_hardware, simulate_hardware  # noqa: E402


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "models" / "vgg19.pt"))
    p.add_argument("--arch", default=str(ROOT / "arch_configs" / "spikesim.yaml"))
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--timesteps", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="engine threads, both modes")
    p.add_argument("--full-scale", choices=("auto", "calibrated"), default="auto")
    p.add_argument("--reference", action="store_true", help="also time the torch-synapse path")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    ckpt = load_checkpoint(args.model)
    seed = ckpt.dataset.get("split_seed", 0)
    train = load_dataset(ckpt.dataset["name"], "train", seed=seed)
    test = load_dataset(ckpt.dataset["name"], "test", seed=seed)
    snn = convert(ckpt, train)
    x = np.ascontiguousarray(test.x[: args.images])
    arch = with_adc(load_arch(args.arch), full_scale=FullScale(args.full_scale))
    hw = build_hardware(snn, arch, FunctionalConfig(threads=args.threads))
    if not hw.calibrated:
        calibrate_hardware(hw, train.x[:16], args.timesteps)
    steps = args.images * args.timesteps
    # compile and warm every path once
    simulate(snn, x[:2], 2, threads=args.threads)
    simulate_hardware(hw, x[:2], 2)
    if args.reference:
        simulate_hardware(hw, x[:2], 2, backend="torch")
    rounds = []
    for r in range(args.rounds):
        loads = [load()]
        t0 = time.perf_counter()
        simulate(snn, x, args.timesteps, batch_size=args.images, threads=args.threads)
        t1 = time.perf_counter()
        loads.append(load())
        result = simulate_hardware(hw, x, args.timesteps, batch_size=args.images)
        t2 = time.perf_counter()
        loads.append(load())
        row = {
            "round": r,
            "ideal_us_per_image_step": 1e6 * (t1 - t0) / steps,
            "functional_us_per_image_step": 1e6 * (t2 - t1) / steps,
            "ratio": (t2 - t1) / (t1 - t0),
            "load": loads,
            "adc_clip_fraction": result.clip_fraction,
        }
        line = (
            f"round {r}: ideal {row['ideal_us_per_image_step']:.1f} us/image-step, functional"
            f" {row['functional_us_per_image_step']:.1f}, ratio {row['ratio']:.2f}"
        )
        if args.reference:
            simulate_hardware(hw, x, args.timesteps, batch_size=args.images, backend="torch")
            t3 = time.perf_counter()
            loads.append(load())
            row["reference_us_per_image_step"] = 1e6 * (t3 - t2) / steps
            row["reference_ratio"] = (t3 - t2) / (t1 - t0)
            line += f", torch-synapse reference {row['reference_ratio']:.2f}"
        rounds.append(row)
        print(f"{line} (load {' / '.join(f'{v:.1f}' for v in loads)})")
    summary = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": len(os.sched_getaffinity(0)),
        "model": args.model,
        "arch": args.arch,
        "full_scale": args.full_scale,
        "images": args.images,
        "timesteps": args.timesteps,
        "threads": args.threads,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "median_load": statistics.median(v for r in rounds for v in r["load"]),
        "rounds": rounds,
    }
    print(
        f"median ratio functional / ideal: {summary['median_ratio']:.2f}"
        f" (median load {summary['median_load']:.1f} on {summary['cpus']} CPUs)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
