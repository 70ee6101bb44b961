"""Command line: a thin layer over hwsim.api (`hwsim --help`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hwsim.data import DATASETS
from hwsim.graph import FC_HEAD
from hwsim.hw.arch import EnergyModel
from hwsim.methods import EvidencePooling
from hwsim.netspec import NETS, NetSpec, resolve_model_path

if TYPE_CHECKING:  # the heavy stages (torch, numba) load only when a command runs them
    from hwsim.api import SimConfig
    from hwsim.convert import ConversionParams

DEFAULT_ARCH = Path("arch_configs/spikesim.yaml")
DEFAULT_MODEL = "vgg19.pt"


class UsageError(ValueError):
    """A command-line value that cannot be used."""


def parse_ic_list(text: str, n_blocks: int | None = None) -> tuple[int, ...]:
    """'all', 'none', '5', '3,5,8' or '3:14' (inclusive) -> sorted IC positions."""
    text = text.strip().lower()
    if text == "none":
        return ()
    if text == "all":
        if n_blocks is None:
            raise UsageError("--ic all needs a network to count its blocks")
        return tuple(range(n_blocks))
    try:
        if ":" in text:
            lo, hi = (int(v) for v in text.split(":"))
            return tuple(range(lo, hi + 1))
        return tuple(sorted({int(v) for v in text.split(",")}))
    except ValueError:
        raise UsageError(f"--ic {text!r}: expected 'all', 'none', N, N,M,... or N:M") from None


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
    from hwsim.nets import save_checkpoint
    from hwsim.train import TrainConfig, train

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
    from hwsim.convert import convert, save_spiking
    from hwsim.data import load_dataset
    from hwsim.nets import load_checkpoint

    path = resolve_model_path(args.model)
    if args.out and Path(args.out).resolve() == path.resolve():
        raise UsageError(f"--out {args.out}: it is the input model; choose another file")
    ckpt = load_checkpoint(path)
    seed = int(ckpt.dataset.get("split_seed", 0))
    calib = load_dataset(ckpt.dataset["name"], "train", args.data_root, seed=seed)
    params = _conversion(args.v0, percentile=args.percentile, max_images=args.max_images)
    snn = convert(ckpt, calib, params)
    console.print(
        f"converted {path}: lambda per layer = {', '.join(f'{s:.3g}' for s in snn.scales)}"
    )
    if args.out:
        save_spiking(snn, ckpt, args.out)
        console.print(f"wrote {args.out} (usable as --model)")


def _conversion(v0: float = 0.0, **params: float) -> ConversionParams:
    from hwsim.convert import ConversionParams

    return ConversionParams(v0=v0, **params)


def _sim_config(args: argparse.Namespace) -> SimConfig:
    from hwsim.api import SimConfig, coding_from_text

    return SimConfig(
        timesteps=args.timesteps,
        conversion=_conversion(args.v0),
        coding=coding_from_text(args.coding, args.seed),
        backend=args.backend,
        batch_size=args.batch_size,
        threads=args.threads,
    )


def _trace_root(args: argparse.Namespace) -> Path | None:
    return None if args.no_cache else Path(args.traces)


class _Bars:
    """A rich progress bar per stage, fed by the API's progress(stage, done, total) callback."""

    LABELS = {
        "tune": "simulate tuning images",
        "test": "simulate test images",
        "ic": "evaluate IC positions",
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


def cmd_run(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import RunConfig, run
    from hwsim.report import print_run, write_run

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
        pooling=EvidencePooling(args.emp_pooling),
        energy_model=EnergyModel(args.energy_model) if args.energy_model else None,
    )
    with _progress(console) as progress:
        result = run(cfg, progress=_Bars(progress), warn=_warn(console))
    print_run(result, console)
    paths = write_run(result, Path(args.out))
    names = ", ".join(p.name for p in paths)
    console.print(f"wrote into {args.out}/: {names} (run took {result.seconds:.0f} s)")


def cmd_trace(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import Session, trace
    from hwsim.trace import trace_folder, write_trace

    session = Session.open(resolve_model_path(args.model), args.data_root, _conversion(args.v0))
    data = session.split(args.split)
    if args.images is not None:
        data = data.take(args.images)
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


def cmd_tune(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import Session, tune
    from hwsim.report import tune_table

    session = Session.open(resolve_model_path(args.model), args.data_root, _conversion(args.v0))
    ics = parse_ic_list(args.ic, len(session.spec.blocks())) if args.ic else None
    with _progress(console) as progress:
        result = tune(
            session,
            _sim_config(args),
            ics,
            tune_images=args.tune_images,
            trace_root=_trace_root(args),
            pooling=EvidencePooling(args.emp_pooling),
            progress=_Bars(progress),
            warn=_warn(console),
        )
    console.print(tune_table(result))


def cmd_sweep(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import SweepConfig, sweep, sweep_state
    from hwsim.nets import load_checkpoint
    from hwsim.report import sweep_table

    model = resolve_model_path(args.model)
    spec = load_checkpoint(model).spec
    cfg = SweepConfig(
        arch=Path(args.arch),
        model=model,
        ic_positions=parse_ic_list(args.ic_positions, len(spec.blocks())),
        sim=_sim_config(args),
        images=args.images,
        tune_images=args.tune_images,
        data_root=args.data_root,
        trace_root=_trace_root(args),
        pooling=EvidencePooling(args.emp_pooling),
        energy_model=EnergyModel(args.energy_model) if args.energy_model else None,
    )
    out = Path(args.out)
    done = sweep_state(cfg, out)
    if done:
        console.print(f"resuming: {len(done)} IC positions already evaluated in {out}")
    with _progress(console) as progress:
        result = sweep(cfg, out, progress=_Bars(progress), warn=_warn(console))
    console.print(sweep_table([r.to_dict() for r in result.rows]))
    console.print(f"wrote {', '.join(str(p) for p in result.paths)}")


def _geometry_spec(args: argparse.Namespace) -> NetSpec:
    """The network of --model (a checkpoint) or of --net/--input/--classes/--width/--ic."""
    if args.model:
        from hwsim.nets import load_checkpoint

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
    from hwsim.report import area_table, mapping_table, write_csv

    spec = _geometry_spec(args)
    mapping = map_network(load_arch(Path(args.arch)), spec.graph())
    console.print(mapping_table(mapping))
    console.print(area_table(chip_area(mapping)))
    out = Path(args.out) / "mapping.csv"
    write_csv(mapping.to_frame(), out)
    console.print(f"wrote {out}")


def cmd_functional(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import Session
    from hwsim.functional import evaluate
    from hwsim.hw.arch import load_arch
    from hwsim.hw.functional import FirstLayer, FunctionalConfig, with_adc
    from hwsim.report import functional_table

    session = Session.open(resolve_model_path(args.model), args.data_root, _conversion())
    arch = load_arch(Path(args.arch))
    data = session.split("test").take(args.images)
    bit_list = parse_ic_list(args.adc_bits)
    keep = (FC_HEAD,) if args.ic is None else (args.ic, FC_HEAD)
    snn = session.snn.with_heads(keep)
    config = FunctionalConfig(first_layer=FirstLayer(args.first_layer))
    rows = []
    with _progress(console) as progress:
        bar = progress.add_task("ADC settings", total=len(bit_list))
        for bits in bit_list:
            a = with_adc(arch, bits, full_scale_levels=args.full_scale_levels)
            rows.append((a, evaluate(snn, a, data.x, data.y, args.timesteps, config)))
            progress.advance(bar)
    console.print(functional_table(rows, len(data), args.timesteps))


def cmd_estimate(args: argparse.Namespace, console: Console) -> None:
    from hwsim.api import estimate
    from hwsim.report import print_estimate, write_csv

    shape = parse_shape(args.input)
    n_blocks = len(NetSpec(args.net, args.width, shape, args.classes).blocks())
    spec = NetSpec(args.net, args.width, shape, args.classes, parse_ic_list(args.ic, n_blocks))
    result = estimate(Path(args.arch), spec)
    print_estimate(result, console)
    out = Path(args.out) / "energy_breakdown.csv"
    write_csv(result.energy.to_frame(), out)
    console.print(f"wrote {out}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hwsim", description="SNN on RRAM compute-in-memory: accuracy, energy, fusion."
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an ANN with IC heads and write a checkpoint")
    t.add_argument("--net", choices=NETS, default="vgg19")
    t.add_argument("--dataset", choices=DATASETS, default="mnist5k")
    t.add_argument("--width", type=float, default=0.125, help="channel width multiplier")
    t.add_argument("--ic", default="all", help="IC positions: all, none, N, N,M,... or N:M")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=0.05, help="peak learning rate (one-cycle SGD)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--data-root", help="folder with MNIST IDX or CIFAR pickle files")
    t.add_argument("--out", help="checkpoint path (default models/NET_DATASET.pt)")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("convert", help="fold BN, normalise, and report the SNN's scales")
    c.add_argument("--model", default=DEFAULT_MODEL)
    c.add_argument("--percentile", type=float, default=99.9)
    c.add_argument("--max-images", type=int, default=5000)
    c.add_argument("--v0", type=float, default=0.0, help="initial membrane potential")
    c.add_argument("--data-root")
    c.add_argument("--out", help="write the converted weights here (.pt)")
    c.set_defaults(func=cmd_convert)

    def sim_args(q: argparse.ArgumentParser, images: bool = True) -> None:
        q.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint (bare name: models/)")
        q.add_argument("--timesteps", type=int, default=300)
        if images:
            q.add_argument("--images", type=int, help="images (default: the whole split)")
        q.add_argument("--batch-size", type=int, default=250, help="images simulated at once")
        q.add_argument("--v0", type=float, default=0.0, help="initial membrane potential")
        q.add_argument("--coding", default="direct", help="direct, poisson or weighted:K")
        q.add_argument("--seed", type=int, default=0, help="seed of Poisson input spikes")
        q.add_argument("--backend", choices=("numba", "torch"), default="numba")
        q.add_argument("--threads", type=int, default=0, help="engine threads (0: all cores)")
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

    r = sub.add_parser("run", help="simulate a checkpoint on an architecture and report")
    r.add_argument("--arch", default=str(DEFAULT_ARCH))
    sim_args(r)
    r.add_argument("--ic", type=int, help="IC block (default: shallowest IC reaching the target)")
    r.add_argument("--tune-images", type=int, default=1000, help="training images for alpha")
    r.add_argument("--trace", help="use this test trace folder instead of simulating")
    r.add_argument(
        "--energy-model",
        choices=[str(m) for m in EnergyModel],
        help="override the architecture's: spikesim (every PE operation every step) or event"
        " (only the PE operations the spikes activate)",
    )
    r.add_argument("--out", default="runs/latest", help="output folder")
    r.set_defaults(func=cmd_run)

    tr = sub.add_parser("trace", help="simulate a dataset split and write its spike trace")
    sim_args(tr)
    tr.add_argument("--split", choices=("train", "test"), default="test")
    tr.add_argument("--out", help="also write the trace to this folder")
    tr.set_defaults(func=cmd_trace)

    tu = sub.add_parser("tune", help="tune alpha(t) LUTs and early exit on training images")
    sim_args(tu, images=False)
    tu.add_argument("--ic", help="IC positions (default: every IC of the checkpoint)")
    tu.add_argument("--tune-images", type=int, default=1000, help="training images for alpha")
    tu.set_defaults(func=cmd_tune)

    sw = sub.add_parser("sweep", help="run across IC insertion positions (resumable)")
    sw.add_argument("--arch", default=str(DEFAULT_ARCH))
    sim_args(sw)
    sw.add_argument("--ic-positions", default="all", help="all, N:M or N,M,...")
    sw.add_argument("--tune-images", type=int, default=1000, help="training images for alpha")
    sw.add_argument("--energy-model", choices=[str(m) for m in EnergyModel])
    sw.add_argument("--out", default="runs/sweep", help="output folder")
    sw.set_defaults(func=cmd_sweep)

    m = sub.add_parser("map", help="map a network onto crossbars, PEs, tiles and the mesh")
    m.add_argument("--arch", default=str(DEFAULT_ARCH))
    m.add_argument("--model", help="checkpoint (else --net/--input/--classes/--width)")
    m.add_argument("--net", choices=NETS, default="vgg19")
    m.add_argument("--input", default="3x32x32", help="CxHxW")
    m.add_argument("--classes", type=int, default=10)
    m.add_argument("--width", type=float, default=1.0)
    m.add_argument("--ic", help="IC positions to map (default: the checkpoint's / none)")
    m.add_argument("--out", default="runs/map", help="output folder")
    m.set_defaults(func=cmd_map)

    f = sub.add_parser("functional", help="crossbar + ADC functional inference vs the ideal SNN")
    f.add_argument("--arch", default=str(DEFAULT_ARCH))
    f.add_argument("--model", default=DEFAULT_MODEL)
    f.add_argument("--ic", type=int, help="also simulate this IC head")
    f.add_argument("--images", type=int, default=100)
    f.add_argument("--timesteps", type=int, default=300)
    f.add_argument("--adc-bits", default="4,6,8", help="ADC resolutions to compare")
    f.add_argument("--full-scale-levels", type=float, help="ADC full scale in cell levels")
    f.add_argument(
        "--first-layer",
        choices=("bit_serial", "digital"),
        default="bit_serial",
        help="analog input: 8-bit bit-serial crossbar reads, or computed digitally",
    )
    f.add_argument("--data-root")
    f.set_defaults(func=cmd_functional)

    e = sub.add_parser("estimate", help="SpikeSim energy of an untrained geometry")
    e.add_argument("--arch", default=str(DEFAULT_ARCH))
    e.add_argument("--net", choices=NETS, default="vgg19")
    e.add_argument("--input", default="3x32x32", help="CxHxW")
    e.add_argument("--classes", type=int, default=10)
    e.add_argument("--width", type=float, default=1.0)
    e.add_argument("--ic", default="none", help="IC positions: none, N, N,M,... or N:M")
    e.add_argument("--out", default="runs/estimate", help="output folder")
    e.set_defaults(func=cmd_estimate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    try:
        args.func(args, console)
    except (ValueError, FileNotFoundError) as e:  # every hwsim input error is a ValueError
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False)
        return 2
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
