"""What counting crossbar activity adds to a simulation, side by side.

    python bench/activity.py [--images 32] [--steps 128] [--rounds 3] [--json activity.json]

The shipped model (`resolve_model("vgg19")`), converted, on its first test images with direct
coding, numba backend at 1 thread: `simulate` without activity, and with
`ActivitySpec(per_image=True)` under the kernel_split mapping (SpikeSim's; what `hwsim run
--arch spikesim` counts for the test images) and the unrolled mapping (isaac_like's), both at
64 x 64 crossbars. Rounds are interleaved (each variant once per round, the median kept), after
one warm-up run each (compilation); reported: microseconds per image-step (wall and the
process's CPU time), the activity's extra time per image-step, and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import torch
from shipped import interleaved, shipped_model

from hwsim.engine import ActivitySpec, simulate

VARIANTS = {
    "none": None,
    "kernel_split": ActivitySpec(64, 64, per_image=True, mapping="kernel_split"),
    "unrolled": ActivitySpec(64, 64, per_image=True, mapping="unrolled"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the summary here too")
    args = ap.parse_args()
    torch.set_num_threads(1)
    snn, x = shipped_model(args.images)
    run = {k: (lambda a=a, n=args.steps, xs=x: simulate(snn, xs, n, threads=1, activity=a))
           for k, a in VARIANTS.items()}  # fmt: skip
    for fn in run.values():
        fn()  # warm-up: compilation
    wall, cpu, load0 = interleaved(run, args.rounds)
    per = len(x) * args.steps / 1e6
    out = {
        k: {"us_per_image_step": statistics.median(wall[k]) / per,
            "cpu_us_per_image_step": statistics.median(cpu[k]) / per}
        for k in run
    }  # fmt: skip
    for k, row in out.items():
        extra = row["cpu_us_per_image_step"] - out["none"]["cpu_us_per_image_step"]
        row["activity_cpu_us_per_image_step"] = extra
        wall_us, cpu_us = row["us_per_image_step"], row["cpu_us_per_image_step"]
        print(f"{k:13s} {wall_us:8.2f} us/img-step wall, {cpu_us:8.2f} CPU, activity {extra:7.2f}")
    summary = {"images": len(x), "timesteps": args.steps, "threads": 1, "variants": out,
               "load": [load0, os.getloadavg()[0]]}  # fmt: skip
    print(f"load {load0:.2f} -> {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
