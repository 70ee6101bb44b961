"""Benchmark and demonstration of `hwsim explore` (docs/explore.md).

    python bench/explore.py [--images 100] [--timesteps 100] [--points 200] [--analytic 10]
                            [--repeat 1] [--profile] [--shared-store] [--search random]
                            [--out runs/bench_explore] [--json out.json]

Three parts, in one process, on the shipped model (`vgg19`: VGG19 at width 1/8, MNIST, 16 IC
heads) and the default chip (`spikesim_chip`):

1. analytic point: with the ideal engine's traces cached, the time of `--analytic` design points
   that differ only in keys that change no spike (flit width, clock), each computed (the
   result store bypassed), median reported (target < 1 s);
2. functional point: the time of one point whose ADC bits change the spikes (its tuning and test
   traces simulated on its chip: calibration, crossbars, ADC) against the ideal engine's time
   for the same images (the same tuning and test traces simulated without the chip), ratio
   reported (target <= 3), `--repeat` times (each a fresh point and a fresh ideal run, side by
   side; each after a point on another chip); `--shared-store` times each point in its warm-up
   point's store, as an exploration's points share one (what the first stored, e.g. the ANN's
   reference read-out, is read; the point's own traces are simulated), else each point gets
   a fresh store; `--profile` adds one more point under cProfile and prints where its time
   went (the chip's build, its traces, the analog first layer, the engine's kernels, the rest);
3. an exploration of the chip: crossbar rows 32-256, ADC 3-8 bits, columns per ADC,
   flit width and the IC position, `--points` points drawn by `--search` (random:N or
   nsga2:N), written to `--out` with its front; time per point and the front's table printed,
   then the summary of its points.csv (below).

`--summarise CSV...` only summarises points.csv files of earlier explorations (`hwsim explore`
or part 3): the counts (valid, on the front, reaching the target per method, each method's
best accuracy), the median objectives over the points with each value of each knob, each
knob's own effect (the ratios of energy, latency and area between pairs of valid points that
differ in that knob only, min-max over the pairs) and, for two knobs, the table of every
point. Every number docs/explore.md shows is printed by this script.

The 1-minute load average is recorded before and after each part (the machine is shared).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from hwsim.explore.evaluate import evaluate_point, session_of  # noqa: E402
from hwsim.explore.run import ExploreConfig, explore, plan, point_job  # noqa: E402
from hwsim.explore.search import Search  # noqa: E402
from hwsim.explore.space import Knob, Point  # noqa: E402
from hwsim.model.packaged import resolve_arch, resolve_model  # noqa: E402
from hwsim.pipeline import cache  # noqa: E402
from hwsim.pipeline.config import SimConfig, SweepConfig  # noqa: E402
from hwsim.report.explore import print_exploration, write_exploration  # noqa: E402


def load() -> float:
    return os.getloadavg()[0]


def template(args: argparse.Namespace, root: Path) -> SweepConfig:
    return SweepConfig(
        arch=resolve_arch(args.arch),
        model=resolve_model(args.model),
        sim=SimConfig(timesteps=args.timesteps),
        images=args.images,
        tune_images=args.images,
        trace_root=root,
    )


def analytic_points(t: SweepConfig, n: int) -> dict:
    """Median seconds of a point computed with the ideal traces cached."""
    knobs = (Knob("noc.flit_width_bits", (16, 32, 64, 128, 256)), Knob("clock_mhz", (100.0, 200.0)))
    cfg = ExploreConfig(t, knobs)
    space, tmpl = plan(cfg)
    points = list(space.grid())[: n + 1]
    evaluate_point(point_job(space, tmpl, points[0], cfg.timing))  # simulates and caches the traces
    times = []
    before = load()
    for p in points[1:]:
        start = time.perf_counter()
        evaluate_point(point_job(space, tmpl, p, cfg.timing))
        times.append(time.perf_counter() - start)
    return {"points": len(times), "median_s": statistics.median(times), "max_s": max(times),
            "load_before": before, "load_after": load()}  # fmt: skip


def ideal_traces(t: SweepConfig) -> float:
    """Seconds the ideal engine takes for a point's tuning and test traces (a fresh cache)."""
    with tempfile.TemporaryDirectory() as a:
        ideal_t = dataclasses.replace(t, trace_root=Path(a))
        session = session_of(ideal_t)
        start = time.perf_counter()
        for split, n in (("tune", t.tune_images), ("test", t.images)):
            data = (
                session.images("test", n)
                if split == "test"
                else session.tuning_images(ideal_t.tune_on, n)
            )
            cache.trace(session, data, t.sim, trace_root=None, stage=split)
        return time.perf_counter() - start


def chip_point(t: SweepConfig, bits: int, store: Path | None = None) -> tuple[float, str]:
    """(seconds, status) of one point whose ADC has `bits` bits, its traces and results stored
    under `store` (None: a fresh folder)."""
    with tempfile.TemporaryDirectory() as b:
        fn_t = dataclasses.replace(t, trace_root=store or Path(b))
        cfg = ExploreConfig(fn_t, (Knob("adc.bits", (bits, bits + 1)),))
        space, tmpl = plan(cfg)
        start = time.perf_counter()
        payload = evaluate_point(point_job(space, tmpl, Point((bits,), space.ics[0]), cfg.timing))
        return time.perf_counter() - start, payload["status"]


def functional_point(t: SweepConfig, bits: int, store: Path | None = None) -> dict:
    """A functional point's time against the ideal engine's for its images, side by side
    (the ideal traces in a fresh cache, the point's under `store` or a fresh one; run once
    before to compile the kernels, as every point of an exploration but its first)."""
    before = load()
    ideal_s = ideal_traces(t)
    functional_s, status = chip_point(t, bits, store)
    return {"ideal_s": ideal_s, "functional_s": functional_s, "ratio": functional_s / ideal_s,
            "status": status, "load_before": before, "load_after": load()}  # fmt: skip


def timed_points(t: SweepConfig, repeat: int, shared: bool, console: Console) -> list[dict]:
    """`repeat` functional points (ADC 4 bits), each after a point on another chip (5 bits: the
    session keeps its last chip, so each timed point builds its own, as every new point of an
    exploration does); `shared`: the two in one fresh store, as an exploration's points share
    theirs (what its first point stored, the ANN's reference read-out and the like, is read;
    each point's own traces are simulated), else each point in its own."""
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            store = Path(folder) if shared else None
            functional_point(t, 5, store)
            runs.append(functional_point(t, 4, store))
        console.print(f"functional point: {runs[-1]}")
    return runs


# where a functional point's time goes: (label, file suffix, function) of cProfile's entries
PROFILED = (
    ("point", "hwsim/explore/evaluate.py", "evaluate_point"),
    ("chip build + calibration (Session.hardware)", "hwsim/pipeline/session.py", "hardware"),
    ("chip traces, both splits (chip_run)", "hwsim/pipeline/hardware.py", "chip_run"),
    ("  analog first layer (bit planes)", "hwsim/hw/synapse.py", "_analog_current"),
    ("  engine kernels (NumbaRunner.advance)", "hwsim/engine/backends.py", "advance"),
    ("  engine set-up (backend, runner: analog call in)", "hwsim/engine/backends.py", "__init__"),
)


def profile_point(t: SweepConfig, bits: int, shared: bool) -> dict:
    """One more functional point (not its ideal traces; after one on another chip, in one
    store if `shared`) under cProfile: the cumulative seconds of PROFILED (cProfile's overhead
    included: compare them with each other, not with the timed points)."""
    folder = tempfile.TemporaryDirectory()
    store = Path(folder.name) if shared else None
    functional_point(t, 5, store)
    profiler = cProfile.Profile()
    profiler.enable()
    chip_point(t, bits, store)
    profiler.disable()
    folder.cleanup()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    out = {}
    for label, suffix, name in PROFILED:
        out[label] = sum(
            v[3] for (path, _, fn), v in stats.items() if fn == name and path.endswith(suffix)
        )
    labels = [label for label, _, _ in PROFILED]
    out["the rest: evaluation, tuning, trace store"] = out["point"] - sum(
        out[label] for label in labels[1:3]
    )
    return out


def exploration(t: SweepConfig, args: argparse.Namespace, console: Console) -> dict:
    knobs = (
        Knob("crossbar.rows", (32, 64, 128, 256)),
        Knob("adc.bits", (3, 4, 5, 6, 7, 8)),
        Knob("adc.columns_per_adc", (4, 8, 16)),
        Knob("noc.flit_width_bits", (16, 32, 64)),
    )
    search = Search.parse(f"{args.search}:{args.points}", args.seed)
    cfg = ExploreConfig(t, knobs, ic_positions=tuple(args.ics), search=search)
    before = load()
    result = explore(cfg)
    objectives = [o.column for o in result.objectives]
    out = Path(args.out)
    write_exploration(result.rows, result.front, result.knobs, objectives, out, title="bench")
    header = [f"{len(result.rows)} points, {result.computed} computed in {result.seconds:.0f} s"]
    print_exploration(console, result.rows, result.front, result.knobs, objectives, header)
    return {"points": len(result.rows), "computed": result.computed, "seconds": result.seconds,
            "per_point_s": result.seconds / max(result.computed, 1),
            "front": int(result.front.sum()), "functional": result.functional,
            "load_before": before, "load_after": load()}  # fmt: skip


OBJECTIVES = ("accuracy", "energy_pj", "latency_ns", "area_mm2")
METHOD_KEYS = ("dl", "sl", "bsf_grid", "bsf_emp", "early_exit")


def knob_columns(frame: pd.DataFrame) -> list[str]:
    """The knob columns of a points.csv: those before `status`, the IC last."""
    return list(frame.columns[: list(frame.columns).index("status")])


def counts(frame: pd.DataFrame) -> None:
    """Points, valid ones, the front, and per method: points reaching the target, best
    accuracy."""
    ok = frame[frame.status == "ok"]
    print(f"{len(frame)} points, {len(ok)} valid, {int(frame.pareto.sum())} on the front")
    for m in METHOD_KEYS:
        if f"target_reached_{m}" in ok:
            reached = int(ok[f"target_reached_{m}"].astype(bool).sum())
            best = ok[f"accuracy_{m}"].max()
            print(f"  {m}: {reached} of {len(ok)} reach the target; best accuracy {best:.3f}")


def medians(frame: pd.DataFrame, knobs: list[str]) -> None:
    """The median objectives over the valid points with each value of each knob."""
    ok = frame[frame.status == "ok"]
    print("| median over the points with | " + " | ".join(OBJECTIVES) + " |")
    print("| --- " * (len(OBJECTIVES) + 1) + "|")
    for knob in knobs:
        for value, part in ok.groupby(knob, sort=True):
            cells = " | ".join(f"{part[o].median():.3g}" for o in OBJECTIVES)
            print(f"| {knob} = {value} ({len(part)}) | {cells} |")


def pair_effects(frame: pd.DataFrame, knobs: list[str]) -> None:
    """Each knob's own effect: pairs of valid points equal in every other knob (and the IC)
    whose value of this knob is a and b (consecutive values present): the ratios b/a of
    energy, latency and area, min-max over the pairs."""
    ok = frame[frame.status == "ok"]
    print("| knob: a -> b | pairs | energy b/a | latency b/a | area b/a | accuracy b - a |")
    print("| --- " * 6 + "|")
    for knob in knobs:
        rest = [k for k in knobs if k != knob]
        values = sorted(ok[knob].unique())
        for a, b in zip(values, values[1:], strict=False):
            pairs = ok[ok[knob] == a].merge(ok[ok[knob] == b], on=rest, suffixes=("_a", "_b"))
            if pairs.empty:
                continue
            cells = []
            for o in ("energy_pj", "latency_ns", "area_mm2"):
                r = pairs[f"{o}_b"] / pairs[f"{o}_a"]
                cells.append(f"{r.min():.3f}-{r.max():.3f}")
            d = pairs["accuracy_b"] - pairs["accuracy_a"]
            cells.append(f"{d.min():+.3f}..{d.max():+.3f}")
            print(f"| {knob}: {a} -> {b} | {len(pairs)} | " + " | ".join(cells) + " |")


def table(frame: pd.DataFrame, knobs: list[str]) -> None:
    """Every point of a small exploration: its knobs and objectives."""
    print("| " + " | ".join([*knobs, *OBJECTIVES]) + " |")
    print("| --- " * (len(knobs) + len(OBJECTIVES)) + "|")
    for _, row in frame.iterrows():
        cells = [str(row[k]) for k in knobs] + [f"{row[o]:.3g}" for o in OBJECTIVES]
        print("| " + " | ".join(cells) + " |")


def summarise(path: Path) -> None:
    """Print the numbers of a points.csv (module docstring)."""
    frame = pd.read_csv(path)
    knobs = knob_columns(frame)
    print(f"\n## {path}")
    counts(frame)
    medians(frame, knobs)
    pair_effects(frame, knobs)
    if len(frame) <= 24:
        table(frame, knobs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--arch", default="spikesim_chip")
    p.add_argument("--model", default="vgg19")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--timesteps", type=int, default=100)
    p.add_argument("--analytic", type=int, default=10)
    p.add_argument("--repeat", type=int, default=1, help="timed functional points")
    p.add_argument("--profile", action="store_true", help="profile one more functional point")
    p.add_argument(
        "--shared-store", action="store_true", help="each timed point in its warm-up's store"
    )
    p.add_argument("--points", type=int, default=200)
    p.add_argument("--search", default="random", choices=("random", "nsga2"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ics", type=int, nargs="+", default=[2, 4, 6, 8, 10, 12])
    p.add_argument("--traces", help="trace cache (default: a fresh temporary folder)")
    p.add_argument("--parts", default="analytic,functional,explore")
    p.add_argument("--out", default="runs/bench_explore")
    p.add_argument("--json")
    p.add_argument("--summarise", nargs="+", type=Path, help="only summarise these points.csv")
    args = p.parse_args()
    if args.summarise:
        for path in args.summarise:
            summarise(path)
        return
    torch.set_num_threads(1)
    console = Console(width=80)
    report: dict = {"cpus": os.cpu_count(), "images": args.images, "timesteps": args.timesteps}
    with tempfile.TemporaryDirectory() as tmp:
        t = template(args, Path(args.traces or tmp))
        parts = args.parts.split(",")
        if "analytic" in parts:
            report["analytic"] = analytic_points(t, args.analytic)
            console.print(f"analytic point: {report['analytic']}")
        if "functional" in parts:
            runs = timed_points(t, args.repeat, args.shared_store, console)
            report["functional"] = runs[0] if len(runs) == 1 else runs
            if args.profile:
                report["functional_profile"] = profile_point(t, 4, args.shared_store)
                for label, seconds in report["functional_profile"].items():
                    console.print(f"  {label}: {seconds:.3f} s")
        if "explore" in parts:
            report["explore"] = exploration(t, args, console)
            console.print(f"exploration: {report['explore']}")
            summarise(Path(args.out) / "points.csv")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
