"""Time and memory of a full-width VGG19 CIFAR-10 job (bench/README.md, docs/memory.md).

Nothing is downloaded, and CIFAR-10's files are not on this project's machines: the job runs on
random uint8 images written in CIFAR-10's python pickle format (its shape and files: 3x32x32,
10 classes, data_batch_1..5 and test_batch), with a full-width VGG19 (width 1, 16 ICs + FC)
trained by `hwsim train` for one epoch on them. Its accuracy is chance; what is measured is the
job's time and memory, which follow from the network, the images, T and the spike rates.

    python bench/wide_job.py [--train-images 2000] [--images 50 100 200] [--tune-images 200]
                             [--timesteps 100] [--json out.json]

Steps: the data files and the checkpoint in a temporary folder (the training's wall time
reported), then bench/memory.py on them: `hwsim run` at each N with its traces cached (peak
RSS, the cycle-level part's own peak, the memory model's prediction) and, with `--wall`, at the
largest N from an empty trace cache and cached. From those, the engine's seconds per image-step
(the fresh run's extra time over the cached one, per simulated image-step) and the memory
model's prediction for a whole CIFAR-10 job (10,000 test images, 5,000 tuning images, T =
`--timesteps`) are printed beside the measured ones.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CIFAR_FOLDER = "cifar-10-batches-py"


def write_cifar(root: Path, train: int, test: int, seed: int = 0) -> None:
    """Random uint8 images in CIFAR-10's python pickle batches: `train` over data_batch_1..5,
    `test` in test_batch, labels uniform over 10 classes."""
    rng = np.random.default_rng(seed)
    folder = root / CIFAR_FOLDER
    folder.mkdir(parents=True)
    sizes = [train // 5 + (i < train % 5) for i in range(5)]
    for name, n in [
        *((f"data_batch_{i + 1}", s) for i, s in enumerate(sizes)),
        ("test_batch", test),
    ]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)


def train(root: Path, validation: int) -> tuple[Path, float]:
    """The full-width VGG19 checkpoint trained one epoch on root's images; its wall seconds."""
    out = root / "vgg19_cifar10_w1.pt"
    argv = [
        sys.executable,
        "-m",
        "hwsim.cli",
        "train",
        "--net",
        "vgg19",
        "--dataset",
        "cifar10",
        "--width",
        "1",
        "--ic",
        "all",
        "--epochs",
        "1",
        "--validation",
        str(validation),
        "--data-root",
        str(root),
        "--out",
        str(out),
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=env)
    return out, time.perf_counter() - t0


def whole_job(model: Path, root: Path, timesteps: int) -> dict:
    """The memory model's peak for a whole CIFAR-10 job (10,000 test, 5,000 tuning images)."""
    from hwsim.hw.arch import load_arch
    from hwsim.pipeline.config import RunConfig, SimConfig
    from hwsim.pipeline.memory import run_memory
    from hwsim.pipeline.session import Session

    arch = ROOT / "arch_configs" / "spikesim.yaml"
    cfg = RunConfig(arch=arch, model=model, sim=SimConfig(timesteps), data_root=str(root))
    session = Session.open(cfg.model, cfg.data_root, cfg.sim.conversion, cfg.nir)
    graph = session.spec.graph()
    ic = session.default_ic(cfg.target_fraction)
    need = run_memory(load_arch(arch), graph, ic, 10_000, 5_000, timesteps, simulated=False)
    return {"ic": ic, "model_peak_mib": need.total_bytes / 2**20, "parts": need.describe()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-images", type=int, default=2000)
    p.add_argument("--images", type=int, nargs="+", default=[50, 100, 200])
    p.add_argument("--tune-images", type=int, default=200)
    p.add_argument("--timesteps", type=int, default=100)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_cifar(root, args.train_images, max(args.images))
        model, train_s = train(root, validation=args.tune_images)
        print(f"trained the full-width VGG19 for 1 epoch in {train_s:.0f} s", flush=True)
        measured = root / "memory.json"
        argv = [
            sys.executable,
            str(ROOT / "bench" / "memory.py"),
            "--model",
            str(model),
            "--data-root",
            str(root),
            "--images",
            *map(str, args.images),
            "--tune-images",
            str(args.tune_images),
            "--timesteps",
            str(args.timesteps),
            "--traces",
            str(root / "traces"),
            "--wall",
            "--json",
            str(measured),
        ]
        subprocess.run(argv, check=True)
        result = json.loads(measured.read_text())
        whole = whole_job(model, root, args.timesteps)
    w = result["wall"]
    simulated = (w["images"] + args.tune_images) * args.timesteps
    per_step = (w["fresh"]["seconds"] - w["cached"]["seconds"]) / simulated
    hours = per_step * 15_000 * args.timesteps / 3600
    print(
        f"engine {per_step * 1e3:.2f} ms per image-step (fresh minus cached run); a whole"
        f" CIFAR-10 job (10,000 + 5,000 images, T = {args.timesteps}) would simulate"
        f" {hours:.1f} h; the memory model puts its peak at {whole['model_peak_mib']:.0f} MiB",
        flush=True,
    )
    out = {
        "train_seconds": train_s,
        **result,
        "ms_per_image_step": per_step * 1e3,
        "whole_job_hours": hours,
        "whole_job": whole,
        "args": vars(args),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
