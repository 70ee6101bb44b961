"""Command line: a thin layer over hwsim.api (`hwsim --help`)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hwsim.errors import HwsimError
from hwsim.hw.arch import EnergyModel
from hwsim.methods import EvidencePooling
from hwsim.model.data import DATASETS
from hwsim.model.graph import FC_HEAD
from hwsim.model.netspec import NETS, NetSpec, resolve_model_path
from hwsim.report.console import FittingConsole

if TYPE_CHECKING:  # the heavy stages (torch, numba) load only when a command runs them
    from hwsim.api import SimConfig
    from hwsim.fusion import TuneSource, TuningConfig
    from hwsim.hw.synapse import FunctionalConfig
    from hwsim.metrics import BootstrapConfig
    from hwsim.model.convert import ConversionParams
    from hwsim.model.nir_io import ImportedSpec, NirOptions
    from hwsim.pipeline.cycles import TimingModel

DEFAULT_ARCH = Path("arch_configs/spikesim.yaml")
DEFAULT_MODEL = "vgg19.pt"


class UsageError(HwsimError):
    """A command-line value that cannot be used."""


def int_in(lo: int, hi: int):
    """An argparse type: an integer in [lo, hi] (argparse names the option on failure)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is out of range; expected {lo}..{hi}")
        return value

    return parse


def real_in(lo: float, hi: float, *, open_lo: bool = False):
    """An argparse type: a finite number in [lo, hi] ((lo, hi] with open_lo)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        low_ok = value > lo if open_lo else value >= lo
        if not (math.isfinite(value) and low_ok and value <= hi):
            side = "(" if open_lo else "["
            raise argparse.ArgumentTypeError(f"{value} is out of range; expected {side}{lo}, {hi}]")
        return value

    return parse


MAX_TIMESTEPS = 1_000_000
MAX_IMAGES = 100_000_000


def parse_ic_list(text: str, n_blocks: int | None = None, option: str = "--ic") -> tuple[int, ...]:
    """'all', 'none', '5', '3,5,8' or '3:14' (inclusive) -> sorted non-negative integers (IC
    positions, or any list option named `option`)."""
    text = text.strip().lower()
    if text == "none":
        return ()
    if text == "all":
        if n_blocks is None:
            raise UsageError(f"{option} all needs a network to count its blocks")
        return tuple(range(n_blocks))
    try:
        bounds = tuple(int(v) for v in text.split(":")) if ":" in text else None
        values = () if bounds else tuple(sorted({int(v) for v in text.split(",")}))
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected 'all', 'none', N, N,M,... or N:M") from None
    if bounds is not None:
        if len(bounds) != 2 or bounds[0] > bounds[1]:
            raise UsageError(f"{option} {text!r}: the range is empty; expected N:M with N <= M")
        values = tuple(range(bounds[0], bounds[1] + 1))
    if any(v < 0 for v in values):
        raise UsageError(f"{option} {text!r}: expected non-negative numbers")
    return values


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--input {text!r}: expected CxHxW, e.g. 3x32x32") from None
    return c, h, w


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def cmd_train(args: argparse.Namespace, console: Console) -> None:
    from hwsim.model.nets import save_checkpoint
    from hwsim.model.train import TrainConfig, train

    n_blocks = len(NetSpec(args.net, args.width, (3, 64, 64), 10).blocks())
    cfg = TrainConfig(
        net=args.net,
        dataset=args.dataset,
        width=args.width,
        ic_positions=parse_ic_list(args.ic, n_blocks),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        data_root=args.data_root,
        validation=args.validation,
    )
    console.print(f"[bold]{cfg.command()}[/]")
    ckpt = train(cfg)
    out = Path(args.out or f"models/{args.net}_{args.dataset}.pt")
    save_checkpoint(ckpt, out)
    accs = ", ".join(
        f"{'FC' if h < 0 else f'IC{h}'} {100 * a:.2f}%" for h, a in sorted(ckpt.accuracy.items())
    )
    console.print(f"test accuracy: {accs}")
    console.print(f"wrote {out} ({ckpt.training['seconds']} s)")


def cmd_convert(args: argparse.Namespace, console: Console) -> None:
    from hwsim.model.convert import convert, save_spiking
    from hwsim.model.data import load_dataset
    from hwsim.model.nets import load_checkpoint

    path = resolve_model_path(args.model)
    if args.out and Path(args.out).resolve() == path.resolve():
        raise UsageError(f"--out {args.out}: it is the input model; choose another file")
    ckpt = load_checkpoint(path)
    seed = int(ckpt.dataset.get("split_seed", 0))
    calib = load_dataset(
        ckpt.dataset["name"], "train", args.data_root, seed=seed, validation=ckpt.validation_images
    )
    params = _conversion(args.v0, percentile=args.percentile, max_images=args.max_images)
    snn = convert(ckpt, calib, params)
    console.print(
        f"converted {path}: lambda per layer = {', '.join(f'{s:.3g}' for s in snn.scales)}"
    )
    if args.out:
        save_spiking(snn, ckpt, args.out)
        console.print(f"wrote {args.out} (usable as --model)")


def _conversion(v0: float = 0.0, **params: float) -> ConversionParams:
    from hwsim.model.convert import ConversionParams

    return ConversionParams(v0=v0, **params)


def _codings(args: argparse.Namespace) -> list[str]:
    """--coding as a list (sweep takes several)."""
    return args.coding if isinstance(args.coding, list) else [args.coding]


def _nir_options(args: argparse.Namespace) -> NirOptions:
    """--dataset and --fc-output: how a NIR model (--model net.nir) is run."""
    from hwsim.model.nir_io import NirOptions

    return NirOptions(dataset=args.dataset, fc_output=args.fc_output)


def _ic_positions(text: str, spec: NetSpec | ImportedSpec, option: str) -> tuple[int, ...]:
    """--ic/--ic-positions of a model: 'all' is every IC it has, else `parse_ic_list`."""
    if text.strip().lower() == "all":
        return tuple(spec.ic_positions)
    return parse_ic_list(text, option=option)


def _summary(args: argparse.Namespace, command: str, data: dict, folder: Path | None) -> None:
    """Write summary.json: to --summary, else into the command's output folder (if any)."""
    from hwsim.report.summary import SUMMARY_FILE, write_summary

    path = Path(args.summary) if args.summary else None
    if path is None and folder is not None:
        path = folder / SUMMARY_FILE
    if path is not None:
        write_summary(path, command, data)


def _notes(console: Console, notes: list[str]) -> None:
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def _sim_config(args: argparse.Namespace) -> SimConfig:
    from hwsim.api import SimConfig, coding_from_text

    return SimConfig(
        timesteps=args.timesteps,
        conversion=_conversion(args.v0),
        coding=coding_from_text(_codings(args)[0], args.seed),
        backend=args.backend,
        batch_size=args.batch_size,
        threads=args.threads,
    )


def _tuning_config(args: argparse.Namespace) -> TuningConfig:
    from hwsim.fusion import Estimator, TuningConfig

    return TuningConfig(
        estimator=Estimator(args.estimator), pooling=EvidencePooling(args.emp_pooling)
    )


def _tune_on(args: argparse.Namespace) -> tuple[TuneSource, int]:
    """--tune-on validation | train | cross-fit[:K] -> (source, folds; K = 5 by default)."""
    from hwsim.fusion import TuneSource

    name, _, folds = args.tune_on.partition(":")
    try:
        source = TuneSource(name)
        if folds and source is not TuneSource.CROSS_FIT:
            raise ValueError
        k = int(folds or 5)
    except ValueError:
        raise UsageError(
            f"--tune-on {args.tune_on!r}: expected validation, train or cross-fit[:K]"
        ) from None
    if source is TuneSource.CROSS_FIT and k < 2:
        raise UsageError(f"--tune-on {args.tune_on!r}: cross-fitting needs K >= 2 folds")
    return source, k


def _functional_config(args: argparse.Namespace, sigma: float | None = None) -> FunctionalConfig:
    """--first-layer, --variation-sigma (or `sigma`), --sa0-rate, --sa1-rate, --device-seed: how
    the chip's crossbars read (the hardware-functional mode)."""
    from hwsim.hw.device import Nonidealities
    from hwsim.hw.synapse import FirstLayer, FunctionalConfig

    try:
        noise = Nonidealities(
            sigma=args.variation_sigma if sigma is None else sigma,
            sa0_rate=args.sa0_rate,
            sa1_rate=args.sa1_rate,
            seed=args.device_seed,
        )
    except ValueError as e:
        raise UsageError(f"--variation-sigma/--sa0-rate/--sa1-rate: {e}") from None
    return FunctionalConfig(first_layer=FirstLayer(args.first_layer), noise=noise)


def _hardware(args: argparse.Namespace) -> dict:
    """RunConfig/SweepConfig fields of --hardware and the device options."""
    from hwsim.pipeline.hardware import Hardware

    return {"hardware": Hardware(args.hardware), "functional": _functional_config(args)}


def _bootstrap(args: argparse.Namespace) -> BootstrapConfig:
    from hwsim.metrics import BootstrapConfig

    return BootstrapConfig(resamples=args.bootstrap)


def _trace_root(args: argparse.Namespace) -> Path | None:
    if args.no_cache:
        return None
    root = Path(args.traces)
    if root.exists() and not root.is_dir():
        raise UsageError(
            f"--traces {root}: exists and is not a folder; give the trace cache folder"
        )
    return root


class _Bars:
    """A rich progress bar per stage, fed by the API's progress(stage, done, total) callback."""

    LABELS = {
        "tune": "simulate tuning images",
        "test": "simulate test images",
        "ic": "evaluate IC positions",
        "chip": "simulate the chip cycle by cycle",
    }

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            label = self.LABELS.get(stage, stage)
            self.tasks[stage] = self.progress.add_task(label, total=total)
        self.progress.update(self.tasks[stage], completed=done)


def _warn(console: Console):
    return lambda msg: console.print(f"[yellow]warning:[/] {msg}", highlight=False)


def _timing(args: argparse.Namespace) -> TimingModel:
    """--timing, by default cycle, or analytic with --hardware functional (whose crossbar
    activity is not kept per image)."""
    from hwsim.pipeline.cycles import TimingModel

    if args.timing is not None:
        return TimingModel(args.timing)
    return TimingModel.ANALYTIC if args.hardware == "functional" else TimingModel.CYCLE


def cmd_run(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import RunConfig, run
    from hwsim.atomic import atomic_folder, check_output_folder
    from hwsim.report.run import print_run, write_run

    replacing = check_output_folder(args.out)  # before the simulation, not after it
    tune_on, folds = _tune_on(args)
    cfg = RunConfig(
        arch=Path(args.arch),
        model=resolve_model_path(args.model),
        ic=args.ic,
        sim=_sim_config(args),
        images=args.images,
        tune_images=args.tune_images,
        data_root=args.data_root,
        trace_root=_trace_root(args),
        test_trace=Path(args.trace) if args.trace else None,
        energy_model=EnergyModel(args.energy_model) if args.energy_model else None,
        tuning=_tuning_config(args),
        tune_on=tune_on,
        folds=folds,
        bootstrap=_bootstrap(args),
        nir=_nir_options(args),
        timing=_timing(args),
        **_hardware(args),
    )
    from hwsim.report.summary import run_summary, unreached_notes

    with _progress(console) as progress:
        result = run(cfg, progress=_Bars(progress), warn=_warn(console))
    print_run(result, console)
    _notes(console, unreached_notes(result.evaluation, result.test.key.timesteps))
    with atomic_folder(args.out) as tmp:
        files = write_run(result, tmp)
        _summary(args, "run", run_summary(result, files), None if args.summary else tmp)
        names = ", ".join(p.name for p in files)
    what = "replaced the earlier results in" if replacing else "wrote into"
    console.print(f"{what} {args.out}/: {names} (run took {result.seconds:.0f} s)")


def cmd_trace(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import Session, take_images, trace
    from hwsim.engine.trace import trace_folder, write_trace

    session = Session.open(
        resolve_model_path(args.model), args.data_root, _conversion(args.v0), _nir_options(args)
    )
    data = session.split(args.split)
    if args.images is not None:
        data = take_images(data, args.images)
    sim = _sim_config(args)
    with _progress(console) as progress:
        t = trace(
            session,
            data,
            sim,
            trace_root=_trace_root(args),
            progress=_Bars(progress),
            warn=_warn(console),
            stage=args.split,
        )
    root = _trace_root(args)
    where = "not stored (--no-cache)" if root is None else str(trace_folder(root, t.key))
    if args.out:
        where = str(write_trace(t, Path(args.out)))
    console.print(f"trace of {len(data)} {args.split} images x {sim.timesteps} steps: {where}")
    summary = {"split": args.split, "images": len(data), "timesteps": sim.timesteps}
    _summary(args, "trace", {**summary, "trace": where}, Path(args.out) if args.out else None)


def cmd_tune(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import Session, tune
    from hwsim.report.run import tune_table

    session = Session.open(
        resolve_model_path(args.model), args.data_root, _conversion(args.v0), _nir_options(args)
    )
    ics = _ic_positions(args.ic, session.spec, "--ic") if args.ic else None
    with _progress(console) as progress:
        result = tune(
            session,
            _sim_config(args),
            ics,
            tune_images=args.tune_images,
            source=_tune_on(args)[0],
            trace_root=_trace_root(args),
            config=_tuning_config(args),
            progress=_Bars(progress),
            warn=_warn(console),
        )
    console.print(tune_table(result))
    from hwsim.report.summary import tune_summary

    _summary(args, "tune", tune_summary(result), None)


def cmd_sweep(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import SweepConfig
    from hwsim.atomic import check_output_folder
    from hwsim.pipeline.grid import (
        Executor,
        GridConfig,
        grid_cells,
        grid_state,
        run_grid,
        settings_digest,
    )
    from hwsim.report.run import sweep_table
    from hwsim.report.summary import sweep_notes, sweep_summary

    check_output_folder(args.out)  # before the simulation, not after it
    if args.scheduler and args.executor != Executor.DASK:
        raise UsageError("--scheduler: give it with --executor dask")
    tune_on, folds = _tune_on(args)
    models = tuple(resolve_model_path(m) for m in args.model)
    template = SweepConfig(
        arch=Path(args.arch[0]),
        model=models[0],
        sim=_sim_config(args),
        images=args.images,
        tune_images=args.tune_images,
        data_root=args.data_root,
        trace_root=_trace_root(args),
        energy_model=EnergyModel(args.energy_model) if args.energy_model else None,
        tuning=_tuning_config(args),
        tune_on=tune_on,
        folds=folds,
        bootstrap=_bootstrap(args),
        nir=_nir_options(args),
        **_hardware(args),
    )
    ics = None
    if args.ic_positions.strip().lower() != "all":
        ics = parse_ic_list(args.ic_positions, option="--ic-positions")
    cfg = GridConfig(
        models=models,
        archs=tuple(Path(a) for a in args.arch),
        codings=tuple(_codings(args)),
        template=template,
        ic_positions=ics,
        seed=args.seed,
    )
    out = Path(args.out)
    cells = grid_cells(cfg)
    settings = settings_digest(template)
    done = grid_state(out, {c.key(settings) for c in cells})
    if done:
        console.print(f"resuming: {len(done)} of {len(cells)} cells already evaluated in {out}")
    with _progress(console) as progress:
        result = run_grid(
            cfg,
            out,
            executor=Executor(args.executor),
            scheduler=args.scheduler,
            workers=args.workers,
            progress=_Bars(progress),
        )
    combos = dict.fromkeys((r["model"], r["arch"], r["coding"]) for r in result.rows)
    for model, arch, coding in combos:
        if len(combos) > 1:
            console.print(f"[bold]{model}[/] on {arch}, {coding} coding", highlight=False)
        part = [
            r for r in result.rows if (r["model"], r["arch"], r["coding"]) == (model, arch, coding)
        ]
        console.print(sweep_table(part))
    _notes(console, sweep_notes(result.rows, args.timesteps))
    summary = sweep_summary(result, args.timesteps, args.executor)
    _summary(args, "sweep", summary, None if args.summary else out)
    console.print(
        f"{len(result.rows)} cells ({result.resumed} resumed) in {result.seconds:.1f} s"
        f" ({args.executor}); wrote {', '.join(str(p) for p in result.paths)}"
    )


def _geometry_spec(args: argparse.Namespace) -> NetSpec | ImportedSpec:
    """The network of --model (a checkpoint or a NIR file) or of
    --net/--input/--classes/--width/--ic."""
    if args.model and is_nir_model(args.model):
        from hwsim.model.data import dataset_input_shape, dataset_num_classes
        from hwsim.model.nir_io import read_nir

        nir = _nir_options(args)
        known = nir.dataset is not None
        imported = read_nir(
            resolve_model_path(args.model),
            nir,
            input_shape=dataset_input_shape(nir.dataset) if known else None,
            num_classes=dataset_num_classes(nir.dataset) if known else None,
        ).spec
        if args.ic is None:
            return imported
        return imported.with_heads((*_ic_positions(args.ic, imported, "--ic"), FC_HEAD))
    if args.model:
        from hwsim.model.nets import load_checkpoint

        spec = load_checkpoint(resolve_model_path(args.model)).spec
        if args.ic is None:
            return spec
        ics = parse_ic_list(args.ic, len(spec.blocks()))
        return NetSpec(spec.name, spec.width, spec.input_shape, spec.num_classes, ics)
    shape = parse_shape(args.input)
    n_blocks = len(NetSpec(args.net, args.width, shape, args.classes).blocks())
    return NetSpec(
        args.net, args.width, shape, args.classes, parse_ic_list(args.ic or "none", n_blocks)
    )


def cmd_map(args: argparse.Namespace, console: Console) -> None:
    from hwsim.hw.arch import load_arch
    from hwsim.hw.area import chip_area
    from hwsim.hw.mapping import map_network
    from hwsim.report.run import area_table, mapping_table, write_csv

    spec = _geometry_spec(args)
    mapping = map_network(load_arch(Path(args.arch)), spec.graph())
    area = chip_area(mapping)
    console.print(mapping_table(mapping))
    console.print(area_table(area))
    out = Path(args.out) / "mapping.csv"
    write_csv(mapping.to_frame(), out)
    from hwsim.report.summary import map_summary

    _summary(args, "map", map_summary(mapping, area), Path(args.out))
    console.print(f"wrote {out}")


def _knob(args: argparse.Namespace) -> tuple[str, list[float]]:
    """The one knob `hwsim functional` sweeps: --adc-bits (default 3:8), --cells-per-weight or
    --variation-sigma (comma list)."""
    given = [k for k in ("cells_per_weight", "variation_sigma") if getattr(args, k) is not None]
    if args.adc_bits is not None:
        given.insert(0, "adc_bits")
    if len(given) > 1:
        options = ", ".join("--" + k.replace("_", "-") for k in given)
        raise UsageError(f"give one knob to sweep, got {options}")
    knob = given[0] if given else "adc_bits"
    if knob == "variation_sigma":
        try:
            values = [float(v) for v in args.variation_sigma.split(",")]
        except ValueError:
            text = args.variation_sigma
            raise UsageError(f"--variation-sigma {text!r}: expected S,S,...") from None
        if any(not 0 <= v <= 10 or math.isnan(v) for v in values):
            raise UsageError(f"--variation-sigma {args.variation_sigma!r}: sigmas in 0..10")
        return knob, values
    text = args.adc_bits or "3:8" if knob == "adc_bits" else args.cells_per_weight
    option = "--" + knob.replace("_", "-")
    values = list(parse_ic_list(text, option=option))
    what, top = ("resolutions", 16) if knob == "adc_bits" else ("cell counts", 32)
    if not values or not all(1 <= v <= top for v in values):
        raise UsageError(f"{option} {text!r}: expected {what} in 1..{top}")
    return knob, [float(v) for v in values]


def cmd_functional(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import Session, take_images
    from hwsim.atomic import atomic_folder, check_output_folder
    from hwsim.hw.arch import FullScale, load_arch
    from hwsim.hw.synapse import with_adc
    from hwsim.pipeline.hardware import Knob, codesign
    from hwsim.report.run import codesign_table, write_codesign

    check_output_folder(args.out)
    knob, values = _knob(args)
    session = Session.open(
        resolve_model_path(args.model), args.data_root, _conversion(), _nir_options(args)
    )
    arch = load_arch(Path(args.arch))
    if args.full_scale_levels is not None:
        arch = with_adc(arch, full_scale_levels=args.full_scale_levels)
    elif args.full_scale is not None:
        arch = with_adc(arch, full_scale=FullScale(args.full_scale))
    if args.ic is not None and args.ic not in session.spec.ic_positions:
        raise UsageError(
            f"--ic {args.ic}: the checkpoint has ICs at"
            f" {', '.join(map(str, session.spec.ic_positions)) or 'none'}"
        )
    data = take_images(session.split("test"), args.images)
    calibration = session.split("train").x[: args.calibration_images]
    snn = session.snn.with_heads((FC_HEAD,) if args.ic is None else (args.ic, FC_HEAD))
    with _progress(console) as progress:
        bar = progress.add_task(f"{knob} settings", total=len(values))
        result = codesign(
            snn,
            arch,
            data.x,
            data.y,
            args.timesteps,
            Knob(knob),
            values,
            _functional_config(args, sigma=0.0),
            calibration=calibration,
            on_value=lambda _: progress.advance(bar),
        )
    console.print(codesign_table(result, arch))
    with atomic_folder(args.out) as tmp:
        files = write_codesign(result, tmp, f"{session.spec.name} on {arch.name}")
        names = ", ".join(p.name for p in files)
    from hwsim.report.summary import functional_summary

    _summary(args, "functional", functional_summary(result), None)
    console.print(f"wrote into {args.out}/: {names}")


def cmd_estimate(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import estimate
    from hwsim.report.run import print_estimate, write_csv

    if args.model:
        spec = _geometry_spec(args)
    else:
        shape = parse_shape(args.input)
        n_blocks = len(NetSpec(args.net, args.width, shape, args.classes).blocks())
        ics = parse_ic_list(args.ic or "none", n_blocks)
        spec = NetSpec(args.net, args.width, shape, args.classes, ics)
    result = estimate(Path(args.arch), spec)
    print_estimate(result, console)
    out = Path(args.out) / "energy_breakdown.csv"
    write_csv(result.energy.to_frame(), out)
    from hwsim.report.summary import estimate_summary

    _summary(args, "estimate", estimate_summary(result), Path(args.out))
    console.print(f"wrote {out}")


def is_nir_model(model: str) -> bool:
    """Whether --model names a NIR file (`.nir`)."""
    return Path(model).suffix.lower() == ".nir"


def cmd_export(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import Session
    from hwsim.model.nir_io import NIR_SUFFIX, write_nir

    path = resolve_model_path(args.model)
    out = Path(args.out)
    if out.suffix.lower() != NIR_SUFFIX:
        raise UsageError(f"--out {out}: a NIR file's name ends in {NIR_SUFFIX}")
    if out.resolve() == path.resolve():
        raise UsageError(f"--out {out}: it is the input model; choose another file")
    session = Session.open(path, args.data_root, _conversion(args.v0), _nir_options(args))
    ics = (
        session.spec.ic_positions
        if args.ic is None
        else _ic_positions(args.ic, session.spec, "--ic")
    )
    missing = [i for i in ics if i not in session.spec.ic_positions]
    if missing:
        raise UsageError(
            f"--ic {args.ic}: {path} has ICs at"
            f" {', '.join(map(str, session.spec.ic_positions)) or 'none'}"
        )
    snn = session.snn.with_heads((*ics, FC_HEAD))
    write_nir(snn, out)
    heads = ", ".join(f"ic{i}" for i in ics) + (", " if ics else "") + "fc"
    console.print(
        f"wrote {out}: {len(snn.graph.layers)} layers, Outputs {heads}, threshold"
        f" {snn.params.threshold:g} (NIR IF nodes; docs/nir.md gives the conventions)"
    )
    summary = {
        "model": path,
        "out": out,
        "outputs": heads.split(", "),
        "layers": len(snn.graph.layers),
    }
    _summary(args, "export", summary, None)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hwsim", description="SNN on RRAM compute-in-memory: accuracy, energy, fusion."
    )
    p.add_argument("--debug", action="store_true", help="show the traceback of any error")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an ANN with IC heads and write a checkpoint")
    t.add_argument("--net", choices=NETS, default="vgg19")
    t.add_argument("--dataset", choices=DATASETS, default="mnist5k")
    t.add_argument(
        "--width", type=real_in(0, 4, open_lo=True), default=0.125, help="channel width multiplier"
    )
    t.add_argument("--ic", default="all", help="IC positions: all, none, N, N,M,... or N:M")
    t.add_argument("--epochs", type=int_in(1, 100_000), default=20)
    t.add_argument("--batch-size", type=int_in(1, 1_000_000), default=64)
    t.add_argument(
        "--lr",
        type=real_in(0, 100, open_lo=True),
        default=0.05,
        help="peak learning rate (one-cycle SGD)",
    )
    t.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0)
    t.add_argument("--data-root", help="folder with MNIST IDX or CIFAR pickle files")
    t.add_argument(
        "--validation",
        type=int_in(0, MAX_IMAGES),
        default=0,
        help="training images held out (never trained on) as the validation split that run,"
        " sweep and tune tune alpha and early exit on (0: none)",
    )
    t.add_argument("--out", help="checkpoint path (default models/NET_DATASET.pt)")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("convert", help="fold BN, normalise, and report the SNN's scales")
    c.add_argument("--model", default=DEFAULT_MODEL)
    c.add_argument("--percentile", type=real_in(0, 100, open_lo=True), default=99.9)
    c.add_argument("--max-images", type=int_in(1, MAX_IMAGES), default=5000)
    c.add_argument("--v0", type=real_in(-1e6, 1e6), default=0.0, help="initial membrane potential")
    c.add_argument("--data-root")
    c.add_argument("--out", help="write the converted weights here (.pt)")
    c.set_defaults(func=cmd_convert)

    def nir_args(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--dataset",
            choices=DATASETS,
            help="NIR models only: the dataset whose images and classes the network reads",
        )
        q.add_argument(
            "--fc-output",
            help="NIR models only: the Output node of the final classifier (default: the"
            " deepest; the other Outputs are ICs)",
        )

    def device_args(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--first-layer",
            choices=("bit_serial", "digital"),
            default="bit_serial",
            help="hardware-functional: the analog input as 8-bit bit-serial crossbar reads, or"
            " the first layer computed digitally",
        )
        q.add_argument(
            "--variation-sigma",
            type=real_in(0, 10),
            default=0.0,
            help="hardware-functional: lognormal conductance variation, std of ln G",
        )
        for rate, state in (("sa0", "G_off"), ("sa1", "G_on")):
            q.add_argument(
                f"--{rate}-rate",
                type=real_in(0, 1),
                default=0.0,
                help=f"hardware-functional: fraction of cells stuck at {state}",
            )
        q.add_argument(
            "--device-seed",
            type=int_in(0, 2**32 - 1),
            default=0,
            help="hardware-functional: seed of the variation and the faults",
        )

    def hardware_args(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--hardware",
            choices=("ideal", "functional"),
            default="ideal",
            help="ideal: the IF engine on the converted weights; functional: through the mapped"
            " chip's crossbars, ADCs (the YAML's bits and full scale), devices and faults",
        )
        device_args(q)

    def sim_args(q: argparse.ArgumentParser, images: bool = True, many: bool = False) -> None:
        q.add_argument(
            "--model",
            default=[DEFAULT_MODEL] if many else DEFAULT_MODEL,
            nargs="+" if many else None,
            help="checkpoint (bare name: models/) or NIR file (.nir, with --dataset)"
            + ("; several: a grid" if many else ""),
        )
        nir_args(q)
        q.add_argument("--timesteps", type=int_in(1, MAX_TIMESTEPS), default=300)
        if images:
            q.add_argument(
                "--images", type=int_in(1, MAX_IMAGES), help="images (default: the whole split)"
            )
        q.add_argument(
            "--batch-size", type=int_in(1, 1_000_000), default=250, help="images simulated at once"
        )
        q.add_argument(
            "--v0", type=real_in(-1e6, 1e6), default=0.0, help="initial membrane potential"
        )
        q.add_argument(
            "--coding",
            default=["direct"] if many else "direct",
            nargs="+" if many else None,
            help="direct, poisson or weighted:K" + ("; several: a grid" if many else ""),
        )
        q.add_argument(
            "--seed", type=int_in(0, 2**32 - 1), default=0, help="seed of Poisson input spikes"
        )
        q.add_argument("--backend", choices=("numba", "torch"), default="numba")
        q.add_argument(
            "--threads", type=int_in(0, 1024), default=0, help="engine threads (0: all cores)"
        )
        q.add_argument("--data-root", help="folder with MNIST IDX or CIFAR pickle files")
        q.add_argument("--traces", default="traces", help="trace cache folder")
        q.add_argument("--no-cache", action="store_true", help="neither read nor write traces")
        q.add_argument(
            "--emp-pooling",
            choices=[str(p) for p in EvidencePooling],
            default=str(EvidencePooling.JOINT),
            help="empirical Bayes: one alpha maximising the joint evidence, or the mean of"
            " per-entry maximisers (the reference code's procedure)",
        )

    def tuning_args(q: argparse.ArgumentParser, evaluate: bool = True) -> None:
        q.add_argument(
            "--estimator",
            choices=("mean", "map"),
            default="mean",
            help="fused estimate: posterior mean with the mean-E prior (the reference code), or"
            " the paper's eq. 29 MAP with the eq. 25-26 mode prior; empirical Bayes (eq. 30)"
            " uses the same prior",
        )
        q.add_argument(
            "--tune-on",
            default="validation",
            help="images alpha, the LUT and early exit are tuned on: validation (the"
            " checkpoint's held-out split), train (biased)"
            + (", or cross-fit[:K] (K-fold on the test images, K = 5)" if evaluate else ""),
        )
        q.add_argument(
            "--tune-images",
            type=int_in(1, MAX_IMAGES),
            help="tune on the first N of those images (default: all)",
        )
        if evaluate:
            q.add_argument(
                "--bootstrap",
                type=int_in(100, 1_000_000),
                default=1000,
                help="paired bootstrap resamples of the test images for the 90%% intervals",
            )

    r = sub.add_parser("run", help="simulate a checkpoint on an architecture and report")
    r.add_argument("--arch", default=str(DEFAULT_ARCH))
    sim_args(r)
    r.add_argument(
        "--ic", type=int_in(0, 10_000), help="IC block (default: shallowest IC reaching the target)"
    )
    tuning_args(r)
    r.add_argument("--trace", help="use this test trace folder instead of simulating")
    r.add_argument(
        "--energy-model",
        choices=[str(m) for m in EnergyModel],
        help="override the architecture's: spikesim (every PE operation every step) or event"
        " (only the PE operations the spikes activate)",
    )
    hardware_args(r)
    r.add_argument(
        "--timing",
        choices=("cycle", "analytic"),
        help="cycle (default; analytic with --hardware functional): simulate the chip cycle by"
        " cycle per image (PEs, buffers, mesh NoC, fusion unit, early termination); analytic:"
        " the max-plus pipeline over mean activity",
    )
    r.add_argument("--out", default="runs/latest", help="output folder")
    r.set_defaults(func=cmd_run)

    tr = sub.add_parser("trace", help="simulate a dataset split and write its spike trace")
    sim_args(tr)
    tr.add_argument("--split", choices=("train", "validation", "test"), default="test")
    tr.add_argument("--out", help="also write the trace to this folder")
    tr.set_defaults(func=cmd_trace)

    tu = sub.add_parser("tune", help="tune alpha(t) LUTs and early exit on validation images")
    sim_args(tu, images=False)
    tu.add_argument("--ic", help="IC positions (default: every IC of the checkpoint)")
    tuning_args(tu, evaluate=False)
    tu.set_defaults(func=cmd_tune)

    sw = sub.add_parser(
        "sweep", help="run across models x archs x codings x IC positions (resumable)"
    )
    sw.add_argument("--arch", nargs="+", default=[str(DEFAULT_ARCH)], help="architecture file(s)")
    sim_args(sw, many=True)
    sw.add_argument("--ic-positions", default="all", help="all, N:M or N,M,...")
    tuning_args(sw)
    sw.add_argument("--energy-model", choices=[str(m) for m in EnergyModel])
    hardware_args(sw)
    sw.add_argument("--out", default="runs/sweep", help="output folder")
    sw.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="local: cells one after the other here; dask: as tasks on a Dask cluster"
        " (pip install 'hwsim[dask]'; docs/distributed.md)",
    )
    sw.add_argument(
        "--scheduler",
        help="address of a running Dask scheduler (tcp://HOST:8786); default with --executor"
        " dask: a local cluster of worker processes",
    )
    sw.add_argument(
        "--workers",
        type=int_in(1, 1024),
        help="worker processes of the local Dask cluster (default: one per CPU)",
    )
    sw.set_defaults(func=cmd_sweep)

    m = sub.add_parser("map", help="map a network onto crossbars, PEs, tiles and the mesh")
    m.add_argument("--arch", default=str(DEFAULT_ARCH))
    m.add_argument("--model", help="checkpoint or NIR file (else --net/--input/--classes)")
    nir_args(m)
    m.add_argument("--net", choices=NETS, default="vgg19")
    m.add_argument("--input", default="3x32x32", help="CxHxW")
    m.add_argument("--classes", type=int_in(2, 100_000), default=10)
    m.add_argument("--width", type=real_in(0, 4, open_lo=True), default=1.0)
    m.add_argument("--ic", help="IC positions to map (default: the checkpoint's / none)")
    m.add_argument("--out", default="runs/map", help="output folder")
    m.set_defaults(func=cmd_map)

    f = sub.add_parser(
        "functional",
        help="co-design: FC accuracy and energy per inference on the chip against one knob",
    )
    f.add_argument("--arch", default=str(DEFAULT_ARCH))
    f.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint or NIR file (.nir)")
    nir_args(f)
    f.add_argument("--ic", type=int_in(0, 10_000), help="also simulate this IC head")
    f.add_argument("--images", type=int_in(1, MAX_IMAGES), default=100)
    f.add_argument("--timesteps", type=int_in(1, MAX_TIMESTEPS), default=300)
    f.add_argument("--adc-bits", help="knob: ADC resolutions, N:M or N,M,... (default 3:8)")
    f.add_argument("--cells-per-weight", help="knob: cells (bit slices) per weight, N:M or N,...")
    f.add_argument("--variation-sigma", help="knob: lognormal variation sigmas, S,S,...")
    f.add_argument(
        "--full-scale",
        choices=("auto", "calibrated"),
        help="ADC full scale (default: the architecture file's)",
    )
    f.add_argument(
        "--full-scale-levels",
        type=real_in(0, 1e9, open_lo=True),
        help="an explicit ADC full scale, in cell levels (instead of --full-scale)",
    )
    f.add_argument(
        "--calibration-images",
        type=int_in(1, MAX_IMAGES),
        default=16,
        help="training images the calibrated full scale is set on",
    )
    f.add_argument(
        "--first-layer",
        choices=("bit_serial", "digital"),
        default="bit_serial",
        help="the analog input as 8-bit bit-serial crossbar reads, or computed digitally",
    )
    for rate, state in (("sa0", "G_off"), ("sa1", "G_on")):
        f.add_argument(
            f"--{rate}-rate",
            type=real_in(0, 1),
            default=0.0,
            help=f"fraction of cells stuck at {state}",
        )
    f.add_argument("--device-seed", type=int_in(0, 2**32 - 1), default=0)
    f.add_argument("--data-root")
    f.add_argument("--out", default="runs/functional", help="output folder")
    f.set_defaults(func=cmd_functional)

    e = sub.add_parser("estimate", help="SpikeSim energy of an untrained geometry or a model")
    e.add_argument("--arch", default=str(DEFAULT_ARCH))
    e.add_argument("--model", help="a checkpoint or NIR file (else --net/--input/--classes)")
    nir_args(e)
    e.add_argument("--net", choices=NETS, default="vgg19")
    e.add_argument("--input", default="3x32x32", help="CxHxW")
    e.add_argument("--classes", type=int_in(2, 100_000), default=10)
    e.add_argument("--width", type=real_in(0, 4, open_lo=True), default=1.0)
    e.add_argument(
        "--ic", help="IC positions: none, N, N,M,... or N:M (default: the model's / none)"
    )
    e.add_argument("--out", default="runs/estimate", help="output folder")
    e.set_defaults(func=cmd_estimate)

    x = sub.add_parser("export", help="write the converted SNN as a NIR file (.nir)")
    x.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint (bare name: models/)")
    x.add_argument("--ic", help="IC heads to export: all, none, N,M,... (default: all)")
    x.add_argument("--v0", type=real_in(-1e6, 1e6), default=0.0, help="must be 0 for NIR")
    x.add_argument("--data-root", help="folder with MNIST IDX or CIFAR pickle files")
    nir_args(x)
    x.add_argument("--out", required=True, help="the NIR file to write (NAME.nir)")
    x.set_defaults(func=cmd_export)

    for q in sub.choices.values():
        q.add_argument(
            "--quiet", action="store_true", help="print no tables or progress, only errors"
        )
        q.add_argument(
            "--summary",
            help="write the command's results as JSON here (default: summary.json in the"
            " output folder of run, sweep, map and estimate)",
        )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every expected failure (bad input, an unreadable or unwritable path)
    is one message on stderr and exit status 2; an unexpected one is one line with a hint to
    rerun with --debug, which shows its traceback, and exit status 1."""
    args = build_parser().parse_args(argv)
    console, errors = FittingConsole(quiet=args.quiet), Console(stderr=True)
    try:
        args.func(args, console)
    except (ValueError, OSError) as e:  # every hwsim input error is a ValueError (HwsimError)
        if args.debug:
            raise
        errors.print(f"[bold red]error:[/] {e}", highlight=False)
        return 2
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]")
        return 130
    except Exception as e:
        if args.debug:
            raise
        errors.print(
            f"[bold red]internal error:[/] {type(e).__name__}: {e} (rerun with --debug for the"
            " traceback, and please report it)",
            highlight=False,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
