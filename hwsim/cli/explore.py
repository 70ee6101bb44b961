"""`hwsim explore`: its sub-parser (`add_explore_parser`) and its handler (`run_explore`), kept
apart from parser.py and commands.py, which register them (docs/explore.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from hwsim.cli.config import add_config
from hwsim.cli.help import EXAMPLES, HelpFormatter
from hwsim.cli.parser import (
    DEFAULT_ARCH,
    DEFAULT_MODEL,
    MAX_IMAGES,
    cache_args,
    images_arg,
    int_in,
    target_arg,
    timesteps_arg,
)
from hwsim.model.packaged import resolve_arch, resolve_model


def add_explore_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `explore` sub-parser to `subparsers` and return it (the options every command
    shares, --quiet, --summary, --config, --debug, are the caller's)."""
    e = subparsers.add_parser(
        "explore",
        help="vary architecture keys, evaluate the points from the result store, Pareto fronts",
        description="Design-space exploration: every point an architecture variant (and IC"
        " position) evaluated as hwsim sweep evaluates one IC, kept in the result store under"
        " the trace cache so that a rerun or an extended space computes only new points.",
        epilog=f"example:\n  {EXAMPLES['explore']}",
        formatter_class=HelpFormatter,
    )
    e.add_argument(
        "--arch",
        default=str(DEFAULT_ARCH),
        help="the base architecture: a YAML file or a packaged name",
    )
    e.add_argument(
        "--model", default=DEFAULT_MODEL, help="checkpoint (a bare name: models/, then packaged)"
    )
    e.add_argument(
        "--vary",
        action="append",
        metavar="KEY=VALUES",
        help="an arch key and its values: KEY=v1,v2,... or KEY=lo:hi (integers); repeat for"
        " more keys (docs/arch-config.md lists the keys)",
    )
    e.add_argument(
        "--ic-positions", help="IC positions: all, N, N,M,... or N:M (default: the model's IC)"
    )
    e.add_argument(
        "--objectives",
        default="accuracy,energy,latency,area",
        help="two or more of accuracy, energy, latency, area",
    )
    e.add_argument(
        "--constraint",
        action="append",
        help='a bound on a points.csv column, e.g. "area_mm2<=20"; repeat for more',
    )
    e.add_argument("--search", default="grid", help="grid, random:N or nsga2:N (N points)")
    e.add_argument(
        "--search-seed", type=int_in(0, 2**32 - 1), default=0, help="seed of random and nsga2"
    )
    e.add_argument(
        "--population", type=int_in(2, 10_000), default=20, help="NSGA-II's generation size"
    )
    e.add_argument(
        "--method", default="BSF-Grid", help="the method whose numbers are the objectives"
    )
    e.add_argument(
        "--timing",
        choices=("analytic", "cycle"),
        default="analytic",
        help="latency: the analytic pipeline, or the chip simulated cycle by cycle",
    )
    e.add_argument(
        "--accuracy",
        choices=("auto", "ideal", "functional"),
        default="auto",
        help="auto: the functional (crossbar + ADC) mode when a varied key changes its spikes,"
        " else the ideal engine's accuracy (one trace for every point)",
    )
    timesteps_arg(e)
    images_arg(e)
    e.add_argument("--tune-images", type=int_in(1, MAX_IMAGES), help="tuning images (default: all)")
    target_arg(e)
    cache_args(e, results=True)
    e.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="local: points one after the other; dask: tasks on a Dask cluster",
    )
    e.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://HOST:8786)")
    e.add_argument("--workers", type=int_in(1, 1024), help="workers of a local Dask cluster")
    e.add_argument("--out", default="runs/explore", help="output folder (replaced as a whole)")
    return e


def explore_config(args: argparse.Namespace):  # -> hwsim.explore.run.ExploreConfig
    """The parsed arguments as the exploration's configuration (stages loaded here)."""
    from hwsim.cli.options import parse_ic_list, trace_root
    from hwsim.errors import InputError
    from hwsim.explore.evaluate import AccuracyMode
    from hwsim.explore.pareto import Constraint, parse_objectives
    from hwsim.explore.run import ExploreConfig
    from hwsim.explore.search import Search
    from hwsim.explore.space import Knob
    from hwsim.methods import Method
    from hwsim.pipeline.config import SimConfig, SweepConfig
    from hwsim.pipeline.cycles import TimingModel

    try:
        method = Method(args.method)
    except ValueError:
        names = ", ".join(m.value for m in Method)
        raise InputError(f"{{method}} {args.method!r}: expected one of {names}",
                         params=("method",)) from None  # fmt: skip
    template = SweepConfig(
        arch=resolve_arch(args.arch),
        model=resolve_model(args.model),
        sim=SimConfig(timesteps=args.timesteps),
        images=args.images,
        tune_images=args.tune_images,
        target_fraction=args.target,
        data_root=args.data_root,
        trace_root=trace_root(args),
    )
    search = Search.parse(args.search, args.search_seed)
    search = Search(search.kind, search.n, search.seed, args.population)
    return ExploreConfig(
        template=template,
        knobs=tuple(Knob.parse(v) for v in args.vary or ()),
        ic_positions=None
        if args.ic_positions is None
        else parse_ic_list(args.ic_positions, "--ic-positions"),
        objectives=parse_objectives(args.objectives),
        constraints=tuple(Constraint.parse(c) for c in args.constraint or ()),
        search=search,
        method=method,
        timing=TimingModel(args.timing),
        accuracy=AccuracyMode(args.accuracy),
    )


def run_explore(args: argparse.Namespace, console: Console | None = None) -> int:
    """Run `hwsim explore` into --out (replaced as a whole); 0, or an `HwsimError` (exit 2)."""
    from hwsim import api
    from hwsim.cli.output import bars, summary, warner
    from hwsim.cli.parser import build_parser
    from hwsim.pipeline.grid import Executor
    from hwsim.report.explore import print_exploration

    console = console or Console(quiet=getattr(args, "quiet", False))
    out = Path(args.out)
    cfg = explore_config(args)
    with bars(console) as progress:
        result, files = api.explore(cfg, out, executor=Executor(args.executor),
                                    scheduler=args.scheduler, workers=args.workers,
                                    progress=progress, warn=warner(console))  # fmt: skip
    files.append(add_config(args, build_parser(), out))
    objectives = [o.column for o in result.objectives]
    print_exploration(console, result.rows, result.front, result.knobs, objectives, _header(result))
    console.print(f"wrote {len(files)} files to {out}", highlight=False, width=80)
    if getattr(args, "summary", None):
        data = {"points": len(result.rows), "front": int(result.front.sum()),
                "computed": result.computed, "reused": result.reused,
                "seconds": result.seconds, "out": str(out)}  # fmt: skip
        summary(args, "explore", data, None)
    return 0


def _header(result) -> list[str]:  # result: hwsim.explore.run.ExploreResult
    """The console's lines above the exploration's table: the search, the method and how
    accuracy was computed; the points computed and reused."""
    mode = "functional (crossbar + ADC)" if result.functional else "ideal engine"
    each = f" ({result.seconds / result.computed:.2f} s each)" if result.computed else ""
    return [
        f"{len(result.rows)} points of {result.base} ({result.search}, seed {result.seed});"
        f" {result.method} at the target; accuracy: {mode}",
        f"{result.computed} computed{each}, {result.reused} from the store",
    ]
