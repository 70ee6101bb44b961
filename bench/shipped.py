"""What the single-thread engine benches share: the shipped model converted with its first test
images, and variants timed in interleaved rounds (bench/lif.py, bench/activity.py)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwsim.model.convert import SpikingNetwork, convert  # noqa: E402
from hwsim.model.data import load_dataset  # noqa: E402
from hwsim.model.nets import load_checkpoint  # noqa: E402
from hwsim.model.packaged import resolve_model  # noqa: E402


def shipped_model(images: int) -> tuple[SpikingNetwork, np.ndarray]:
    """The shipped model (`resolve_model("vgg19")`) converted on its training split, and its
    first `images` test images."""
    ckpt = load_checkpoint(resolve_model("vgg19"))
    seed = ckpt.dataset.get("split_seed", 0)
    snn = convert(ckpt, load_dataset(ckpt.dataset["name"], "train", seed=seed))
    x = load_dataset(ckpt.dataset["name"], "test", seed=seed).x[:images]
    return snn, np.ascontiguousarray(x)


def interleaved(
    runs: dict[str, Callable[[], object]], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], float]:
    """Wall and CPU seconds of each run per round (every run once per round, in order), and the
    1-minute load average before the first."""
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    load0 = os.getloadavg()[0]
    for _ in range(rounds):
        for k, fn in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return wall, cpu, load0
