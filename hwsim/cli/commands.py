"""One handler per command: the parsed arguments as the API's values (`options`), one call of
the API, then the results printed, written and summarised through `hwsim.report`.

The command line loads this module (and with it the stages) only when a command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from hwsim import api
from hwsim.atomic import atomic_folder, check_output_folder
from hwsim.cli import options
from hwsim.cli.config import add_config, write_config
from hwsim.cli.explore import run_explore
from hwsim.cli.output import TRAIN_LABELS, bars, summary, warner
from hwsim.cli.parser import build_parser
from hwsim.pipeline.grid import Executor
from hwsim.report.files import (
    write_ablation,
    write_codesign,
    write_estimate,
    write_mapping,
    write_run,
)
from hwsim.report.html import load_folder, write_report_html
from hwsim.report.printing import (
    print_convert,
    print_estimate,
    print_export,
    print_functional,
    print_map,
    print_report,
    print_run,
    print_sweep,
    print_trace,
    print_train,
    print_tune,
    print_written,
)
from hwsim.report.studies import print_ablation, print_calibrate
from hwsim.report.summary import (
    estimate_summary,
    export_summary,
    functional_summary,
    map_summary,
    run_summary,
    sweep_summary,
    trace_summary,
    tune_summary,
)


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text)


def cmd_train(args: argparse.Namespace, console: Console) -> None:
    cfg = options.train_config(args)
    console.print(f"[bold]{cfg.command()}[/]")
    with bars(console, TRAIN_LABELS) as progress:
        result = api.train(cfg, _path(args.out), progress)
    print_train(result, console)


def cmd_convert(args: argparse.Namespace, console: Console) -> None:
    params = options.conversion(args.v0, percentile=args.percentile, max_images=args.max_images)
    model = Path(args.model)
    result = api.convert(model, _path(args.out), params=params, data_root=args.data_root)
    print_convert(result, console)


def cmd_run(args: argparse.Namespace, console: Console) -> None:
    replacing = check_output_folder(args.out)  # before the simulation, not after it
    with bars(console) as progress:
        result = api.run(options.run_config(args), progress=progress, warn=warner(console))
    print_run(result, console)
    with atomic_folder(args.out) as tmp:
        files = [*write_run(result, tmp), write_config(args, build_parser(), tmp)]
        summary(args, "run", run_summary(result, files), None if args.summary else tmp)
    print_written(console, args.out, files, replacing=replacing, seconds=result.seconds)


def cmd_trace(args: argparse.Namespace, console: Console) -> None:
    model, out = Path(args.model), _path(args.out)
    with bars(console) as progress:
        result = api.trace(
            model,
            options.sim_config(args),
            args.split,
            args.images,
            trace_root=options.trace_root(args),
            out=out,
            data_root=args.data_root,
            nir=options.nir_options(args),
            progress=progress,
            warn=warner(console),
        )
    print_trace(result, console)
    summary(args, "trace", trace_summary(result), out)


def cmd_tune(args: argparse.Namespace, console: Console) -> None:
    ics = None if args.ic is None else options.parse_ic_list(args.ic)
    with bars(console) as progress:
        result = api.tune(
            Path(args.model),
            options.sim_config(args),
            ics,
            tune_images=args.tune_images,
            source=options.tune_on(args)[0],
            trace_root=options.trace_root(args),
            config=options.tuning_config(args),
            data_root=args.data_root,
            nir=options.nir_options(args),
            progress=progress,
            warn=warner(console),
        )
    print_tune(result, console)
    summary(args, "tune", tune_summary(result), None)


def cmd_sweep(args: argparse.Namespace, console: Console) -> None:
    out = Path(args.out)
    with bars(console) as progress:
        result = api.sweep_grid(
            options.grid_config(args),
            out,
            executor=Executor(args.executor),
            scheduler=args.scheduler,
            workers=args.workers,
            wait_workers=args.wait_workers,
            progress=progress,
        )
    result.paths.append(add_config(args, build_parser(), out))
    print_sweep(result, out, args.timesteps, console)
    data = sweep_summary(result, args.timesteps, args.executor)
    summary(args, "sweep", data, None if args.summary else out)
    console.print(
        f"{len(result.rows)} cells ({result.resumed} resumed) in {result.seconds:.1f} s"
        f" ({args.executor}); wrote {', '.join(str(p) for p in result.paths)}"
    )


def cmd_map(args: argparse.Namespace, console: Console) -> None:
    network, ics = options.geometry(args)
    result = api.map(Path(args.arch), network, ics, options.nir_options(args))
    print_map(result, console)
    out = Path(args.out)
    with atomic_folder(out) as tmp:
        files = write_mapping(result, tmp)
        summary(args, "map", map_summary(result), tmp)
    console.print(f"wrote {out / files[0].name}")


def cmd_estimate(args: argparse.Namespace, console: Console) -> None:
    network, ics = options.geometry(args)
    result = api.estimate(Path(args.arch), network, ics, options.nir_options(args))
    print_estimate(result, console)
    out = Path(args.out)
    with atomic_folder(out) as tmp:
        files = write_estimate(result, tmp)
        summary(args, "estimate", estimate_summary(result), tmp)
    console.print(f"wrote {out / files[0].name}")


def cmd_functional(args: argparse.Namespace, console: Console) -> None:
    check_output_folder(args.out)  # before the simulation, not after it
    cfg = options.codesign_config(args)
    with bars(console) as progress:
        result = api.functional(cfg, progress)
    print_functional(result, console)
    title = f"{result.spec.name} on {result.arch.name}"
    with atomic_folder(args.out) as tmp:
        files = write_codesign(result.codesign, tmp, title)
    summary(args, "functional", functional_summary(result), None)
    print_written(console, args.out, files)


def cmd_export(args: argparse.Namespace, console: Console) -> None:
    ics = None if args.ic is None else options.parse_ic_list(args.ic)
    result = api.export(
        Path(args.model),
        Path(args.out),
        ics,
        conversion=options.conversion(args.v0),
        data_root=args.data_root,
        nir=options.nir_options(args),
        target=args.nir_target,
    )
    print_export(result, console)
    summary(args, "export", export_summary(result), None)


def cmd_calibrate(args: argparse.Namespace, console: Console) -> None:
    out = Path(args.out)
    result = api.calibrate(Path(args.arch), Path(args.measurements), out, tuple(args.free or ()))
    print_calibrate(result, console)
    summary(args, "calibrate", {"out": str(out), "rms_relative": result.rms_relative}, None)


def cmd_ablation(args: argparse.Namespace, console: Console) -> None:
    network, ics = options.geometry(args)
    result = api.ablation(
        Path(args.arch),
        Path(args.base),
        network,
        ics,
        timesteps=args.timesteps,
        spike_rate=args.spike_rate,
        nir=options.nir_options(args),
    )
    print_ablation(result, console)
    with atomic_folder(Path(args.out)) as tmp:
        files = write_ablation(result, tmp)
        summary(args, "ablation", {"steps": result.ablation.to_frame().to_dict("records")}, tmp)
    console.print(f"wrote {Path(args.out) / files[0].name}")


def cmd_report(args: argparse.Namespace, console: Console) -> None:
    folder = Path(args.folder)
    if args.html:
        console.print(f"wrote {write_report_html(folder, _path(args.out))}")
    else:
        print_report(load_folder(folder), console)


def cmd_explore(args: argparse.Namespace, console: Console) -> None:
    run_explore(args, console)


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], None]] = {
    "train": cmd_train,
    "convert": cmd_convert,
    "run": cmd_run,
    "explore": cmd_explore,
    "trace": cmd_trace,
    "tune": cmd_tune,
    "sweep": cmd_sweep,
    "map": cmd_map,
    "estimate": cmd_estimate,
    "functional": cmd_functional,
    "export": cmd_export,
    "calibrate": cmd_calibrate,
    "ablation": cmd_ablation,
    "report": cmd_report,
}
"""The handler of each command (`hwsim.cli.parser`'s sub-parsers)."""
