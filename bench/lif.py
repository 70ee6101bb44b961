"""The engine's leaky path against its IF path, side by side (issue 25: LIF <= 1.2x IF).

    python bench/lif.py [--images 16] [--steps 128] [--rounds 3] [--json lif.json]

The shipped model (`resolve_model("vgg19")`: VGG19 at width 1/8, MNIST 28x28, 16 IC heads +
FC), converted, on its first test images with direct coding, numba backend at 1 thread
(`torch.set_num_threads(1)`), three neuron models on every population:

- `if`: hwsim's IF neuron (the IF scan, no multiply);
- `lif-0.9`: leak 0.9 per step (fewer spikes: the event-driven convs do less work);
- `lif-1-ulp`: leak 1 - 2^-24, the leaky scan with the IF network's activity (its spikes
  differ from IF's only where rounding does), the cost of the leak itself;
- `snntorch-1-ulp`: the same with snntorch's firing at V > theta and delayed reset;
- `reset0-1-ulp`: the same with a reset to 0 (norse's and spikingjelly's hard reset).

Rounds are interleaved (every variant once per round, the median kept), after one warm-up
run each (compilation); reported: microseconds per image-step (wall and the process's CPU
time, the fairer measure on a loaded machine), their ratios to IF, spikes per image-step, and
the 1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from shipped import interleaved, shipped_model

from hwsim.engine import simulate
from hwsim.model.convert import SpikingNetwork
from hwsim.model.graph import IF_NEURON, Neuron

ONE_ULP = float(np.nextafter(np.float32(1), np.float32(0)))  # 1 - 2^-24
VARIANTS = {
    "if": IF_NEURON,
    "lif-0.9": Neuron(leak=0.9),
    "lif-1-ulp": Neuron(leak=ONE_ULP),
    "snntorch-1-ulp": Neuron(leak=ONE_ULP, strict=True, delayed_reset=True),
    "reset0-1-ulp": Neuron(leak=ONE_ULP, reset_to=0.0),
}


def with_neuron(snn: SpikingNetwork, neuron: Neuron) -> SpikingNetwork:
    """`snn` with every population stepping `neuron`."""
    layers = tuple(replace(layer, neuron=neuron) for layer in snn.graph.layers)
    return replace(snn, graph=replace(snn.graph, layers=layers))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    snn, x = shipped_model(args.images)
    nets = {name: with_neuron(snn, n) for name, n in VARIANTS.items()}
    spikes = {}
    for name, net in nets.items():  # warm-up: compilation, buffers
        res = simulate(net, x, args.steps, threads=1)
        spikes[name] = float(res.layer_spikes.sum()) / (len(x) * args.steps)
    runs = {
        name: (lambda net=net: simulate(net, x, args.steps, threads=1))
        for name, net in nets.items()
    }
    wall, cpu, load0 = interleaved(runs, args.rounds)
    load1 = os.getloadavg()[0]
    scale = 1e6 / (len(x) * args.steps)
    per = {k: statistics.median(v) * scale for k, v in wall.items()}
    per_cpu = {k: statistics.median(v) * scale for k, v in cpu.items()}
    rows = {
        k: {
            "us_per_image_step": per[k],
            "ratio_to_if": per[k] / per["if"],
            "cpu_us_per_image_step": per_cpu[k],
            "cpu_ratio_to_if": per_cpu[k] / per_cpu["if"],
            "spikes": spikes[k],
        }
        for k in nets
    }
    for k, r in rows.items():
        print(
            f"{k:14s} {r['us_per_image_step']:6.1f} us/image-step x{r['ratio_to_if']:.3f}"
            f"  CPU {r['cpu_us_per_image_step']:6.1f} us x{r['cpu_ratio_to_if']:.3f}"
            f"  {r['spikes']:6.0f} spikes/image-step"
        )
    print(f"1-minute load {load0:.2f} -> {load1:.2f}; {args.images} images x {args.steps} steps")
    if args.json is not None:
        summary = {"rows": rows, "load": [load0, load1], "images": args.images}
        args.json.write_text(json.dumps({**summary, "steps": args.steps}, indent=1))


if __name__ == "__main__":
    main()
