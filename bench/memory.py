"""Peak memory of the main job and of its cycle-level evaluation against the number of test
images, with the memory model's prediction beside each (bench/README.md).

    python bench/memory.py [--images 250 500 1000] [--timesteps 300] [--wall] [--json out.json]
    python bench/memory.py --model models/vgg19_fashion.pt --images 10000 --tune-images 5000

Each configuration runs in its own process (peak RSS is a process's high-water mark, VmHWM in
/proc/self/status): `hwsim run` (the CLI's main job: `--arch`, `--model`, `--images N`,
`--timesteps`, `--tune-images`, cycle timing, its files written to a temporary folder) with the
traces cached in `--traces` (a first, unmeasured run at each N fills the cache and compiles the
kernels). Inside it the high-water mark is reset (`/proc/self/clear_refs`) around
the two parts of the cycle-level evaluation, `fusion_hardware` (the fixed-point fusion unit's
early termination) and `evaluate_cycles` (the chip simulation), so each part's own peak is
read (the allocator's free memory handed back first, so that "own" is the part's growth over
live data); the process's peak is the highest of every reading. `--engine` also times the IF engine
producing the same test trace (per-image activity, uncached) in a process of its own, the
reference for the cycle-level part's time. `--mmap-threshold B` runs the main job with glibc's
mmap threshold fixed at B bytes (arrays of B or more mapped apart and handed back when freed).
`--wall` then runs the main job at the largest N as a user does (`python -m hwsim.cli run`, a
new interpreter) from an empty trace cache (the kernels compiled by the warming runs), then with
its traces cached: each one's wall seconds and peak RSS (wait4's ru_maxrss).
Reported per N: the process's peak, the RSS before
the cycle-level part, each part's peak and seconds, and `hwsim.pipeline.memory`'s predictions.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIB = 2**20


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def trim() -> None:
    """Hand the allocator's free memory back to the system (glibc's malloc_trim), so that the
    RSS before a part counts live data only."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


class Peaks:
    """The process's high-water mark across resets, and each measured part's own."""

    def __init__(self) -> None:
        self.highest_kib = 0
        self.parts: dict[str, dict[str, float]] = {}

    def measured(self, name: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            self.highest_kib = max(self.highest_kib, status_kib("VmHWM"))
            trim()
            before = status_kib("VmRSS")
            reset_peak()
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            seconds = time.perf_counter() - t0
            peak = status_kib("VmHWM")
            self.highest_kib = max(self.highest_kib, peak)
            self.parts[name] = {
                "rss_before_mib": before / 1024,
                "peak_mib": peak / 1024,
                "own_mib": (peak - before) / 1024,
                "seconds": seconds,
            }
            return out

        return wrapper


def child_main(args: argparse.Namespace) -> dict:
    """The main job at args.images test images, its cycle-level parts measured."""
    if args.mmap_threshold:
        # glibc: blocks of this size and more get their own mapping, handed back when freed
        # (M_MMAP_THRESHOLD = -3; fixed, where the default grows to 32 MiB after a free)
        ctypes.CDLL("libc.so.6").mallopt(-3, args.mmap_threshold)
    from hwsim.cli import main as cli_main
    from hwsim.pipeline import evaluate

    peaks = Peaks()
    evaluate.fusion_hardware = peaks.measured("fusion_hardware", evaluate.fusion_hardware)
    evaluate.evaluate_cycles = peaks.measured("evaluate_cycles", evaluate.evaluate_cycles)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        code = cli_main(run_argv(args, args.images, Path(out) / "run"))
        seconds = time.perf_counter() - t0
    if code:
        raise SystemExit(f"hwsim run exited {code}")
    peak = max(peaks.highest_kib, status_kib("VmHWM"))
    return {"images": args.images, "peak_mib": peak / 1024, "seconds": seconds, **peaks.parts}


def child_engine(args: argparse.Namespace) -> dict:
    """Seconds of the IF engine producing the test trace of args.images images (uncached)."""
    from hwsim.pipeline import cache
    from hwsim.pipeline.activity import activity_spec
    from hwsim.pipeline.config import RunConfig, SimConfig
    from hwsim.pipeline.session import Session

    cfg = RunConfig(
        arch=Path(args.arch),
        model=Path(args.model),
        sim=SimConfig(args.timesteps),
        data_root=args.data_root,
    )
    arch = cfg.architecture()
    session = Session.open(cfg.model, cfg.data_root, cfg.sim.conversion, cfg.nir)
    spec = dataclasses.replace(activity_spec(arch), per_image=True)
    sim = dataclasses.replace(cfg.simulation(arch), activity=spec)
    data = session.images("test", args.images)
    t0 = time.perf_counter()
    cache.trace(session, data, sim, trace_root=None)
    return {"images": args.images, "engine_seconds": time.perf_counter() - t0}


def run_argv(args: argparse.Namespace, images: int, out: Path) -> list[str]:
    return [
        "run",
        "--arch",
        args.arch,
        "--model",
        args.model,
        "--images",
        str(images),
        "--timesteps",
        str(args.timesteps),
        "--tune-images",
        str(args.tune_images),
        "--traces",
        args.traces,
        "--out",
        str(out),
        "--quiet",
        *(["--data-root", args.data_root] if args.data_root else []),
    ]


def in_child(args: argparse.Namespace, kind: str, images: int) -> dict:
    argv = [sys.executable, __file__, "--child", kind, "--images", str(images)]
    for name in ("timesteps", "tune_images", "arch", "model", "traces", "mmap_threshold"):
        argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.data_root:
        argv += ["--data-root", args.data_root]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{kind} at {images} images failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def wall(args: argparse.Namespace, images: int, traces: Path) -> dict:
    """`hwsim run` as a user starts it (a new interpreter: imports, model, traces, chip
    simulation, report) at `images` test images with the trace cache `traces`: wall seconds
    and peak RSS (its ru_maxrss)."""
    argv = [sys.executable, "-m", "hwsim.cli", *run_argv(args, images, traces / "out")]
    argv[argv.index("--traces") + 1] = str(traces)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's hwsim, as the children's
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"hwsim run at {images} images failed:\n{err.read()[-3000:]}")
    shutil.rmtree(traces / "out")
    load = os.getloadavg()[0]
    return {"seconds": seconds, "peak_mib": usage.ru_maxrss / 1024, "load_after": load}


def timed_runs(args: argparse.Namespace) -> dict:
    """The main job at the largest N from an empty trace cache (kernels compiled: the
    warming runs compiled them), then again with its traces cached."""
    n = max(args.images)
    with tempfile.TemporaryDirectory() as root:
        fresh = wall(args, n, Path(root))
        cached = wall(args, n, Path(root))
    print(
        f"main job at {n} images: {fresh['seconds']:.1f} s from an empty trace cache,"
        f" {cached['seconds']:.1f} s with its traces cached; peak {fresh['peak_mib']:.0f} /"
        f" {cached['peak_mib']:.0f} MiB (load after"
        f" {fresh['load_after']:.1f} / {cached['load_after']:.1f})",
        flush=True,
    )
    return {"images": n, "fresh": fresh, "cached": cached}


def predicted(args: argparse.Namespace, images: int) -> dict:
    """The memory model's peaks (MiB) for the main job and its cycle-level evaluation (none
    from a tree without `hwsim.pipeline.memory`, to measure an older version)."""
    try:
        import hwsim.pipeline.memory  # noqa: F401
    except ImportError:
        return {"model_peak_mib": float("nan"), "model_cycles_mib": float("nan")}
    from hwsim.hw.arch import load_arch
    from hwsim.pipeline.config import RunConfig, SimConfig
    from hwsim.pipeline.memory import cycle_memory, run_memory
    from hwsim.pipeline.session import Session

    cfg = RunConfig(
        arch=Path(args.arch),
        model=Path(args.model),
        sim=SimConfig(args.timesteps),
        data_root=args.data_root,
    )
    session = Session.open(cfg.model, cfg.data_root, cfg.sim.conversion, cfg.nir)
    arch = load_arch(args.arch)
    graph = session.spec.graph()
    ic = session.default_ic(cfg.target_fraction)
    cycles = cycle_memory(arch, graph, ic, images, args.timesteps)
    # the traces come from the cache (warmed first): the test trace's per-image activity is
    # mapped, not held
    whole = run_memory(
        arch, graph, ic, images, args.tune_images, args.timesteps, simulated=False, torch=False
    )
    return {"model_peak_mib": whole.total_bytes / MIB, "model_cycles_mib": cycles.total_bytes / MIB}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, nargs="+", default=[250, 500, 1000])
    p.add_argument("--timesteps", type=int, default=300)
    p.add_argument("--tune-images", type=int, default=1000)
    p.add_argument("--arch", default=str(ROOT / "arch_configs" / "spikesim.yaml"))
    p.add_argument("--model", default=str(ROOT / "models" / "vgg19.pt"))
    p.add_argument("--traces", default=str(ROOT / "traces"), help="trace cache (filled first)")
    p.add_argument("--data-root", default=None, help="the model's data files (hwsim run's)")
    p.add_argument("--engine", action="store_true", help="also time the engine per N")
    p.add_argument(
        "--mmap-threshold",
        type=int,
        default=0,
        help="bytes: run the main job with glibc's mmap threshold fixed there (0: the default)",
    )
    p.add_argument(
        "--wall",
        action="store_true",
        help="also time the main job at the largest N as a user runs it: empty trace cache, then"
        " cached",
    )
    p.add_argument("--json", help="write the results here")
    p.add_argument("--child", choices=["main", "engine"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.images = args.images[0]
        child = child_main if args.child == "main" else child_engine
        print(json.dumps(child(args)))
        return
    for n in args.images:  # each N's test trace is its own (the first N test images)
        print(f"warming the trace cache and kernels at {n} images ...", flush=True)
        in_child(args, "main", n)
    rows = []
    for n in args.images:
        row = {**in_child(args, "main", n), **predicted(args, n)}
        if args.engine:
            row.update(in_child(args, "engine", n))
        rows.append(row)
        cyc, fus = row["evaluate_cycles"], row["fusion_hardware"]
        print(
            f"{n} images: main job peak {row['peak_mib']:.0f} MiB (model"
            f" {row['model_peak_mib']:.0f}), {row['seconds']:.1f} s; evaluate_cycles peak"
            f" {cyc['peak_mib']:.0f} MiB, own {cyc['own_mib']:.0f} (model"
            f" {row['model_cycles_mib']:.0f}), {cyc['seconds']:.1f} s; fusion_hardware own"
            f" {fus['own_mib']:.0f} MiB, {fus['seconds']:.1f} s"
            + (f"; engine {row['engine_seconds']:.1f} s" if args.engine else ""),
            flush=True,
        )
    peaks = [r["peak_mib"] for r in rows]
    print(f"main job peak: max / min = {max(peaks) / min(peaks):.3f} over {args.images} images")
    out: dict = {"rows": rows, "load_at_end": os.getloadavg()}
    if args.wall:
        out["wall"] = timed_runs(args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
