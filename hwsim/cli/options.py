"""The parsed arguments as the API's typed values: configs, IC lists, codings, knobs.

Only parsing lives here (a list, a range, a shape, `cross-fit:K`); every check of a value
against a model, a split or another value is the API's (`hwsim.api`), which names its
parameters, and the command line prints them as flags (`hwsim.cli.errors`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from hwsim.cli.inert import codings, given
from hwsim.errors import InputError
from hwsim.fusion import Estimator, TuneSource, TuningConfig
from hwsim.hw.arch import EnergyModel, FullScale
from hwsim.hw.device import Nonidealities
from hwsim.hw.synapse import FirstLayer, FunctionalConfig
from hwsim.methods import EvidencePooling, Ties
from hwsim.metrics import BootstrapConfig
from hwsim.model.conversion import ConversionParams
from hwsim.model.netspec import NetSpec
from hwsim.model.nir_io import NirOptions
from hwsim.model.train_config import TrainConfig
from hwsim.pipeline.config import (
    ALL_ICS,
    CodesignConfig,
    ICChoice,
    RunConfig,
    SimConfig,
    SweepConfig,
    coding_from_text,
)
from hwsim.pipeline.cycles import TimingModel
from hwsim.pipeline.grid import GridConfig
from hwsim.pipeline.hardware import Hardware, Knob


def parse_int_list(text: str, option: str) -> tuple[int, ...]:
    """'none', '5', '3,5,8' or '3:14' (inclusive) -> sorted non-negative integers."""
    text = text.strip().lower()
    if text == "none":
        return ()
    try:
        bounds = tuple(int(v) for v in text.split(":")) if ":" in text else None
        values = () if bounds else tuple(sorted({int(v) for v in text.split(",")}))
    except ValueError:
        raise InputError(f"{option} {text!r}: expected 'all', 'none', N, N,M,... or N:M") from None
    if bounds is not None:
        if len(bounds) != 2 or bounds[0] > bounds[1]:
            raise InputError(f"{option} {text!r}: the range is empty; expected N:M with N <= M")
        values = tuple(range(bounds[0], bounds[1] + 1))
    if any(v < 0 for v in values):
        raise InputError(f"{option} {text!r}: expected non-negative numbers")
    return values


def parse_ic_list(text: str, option: str = "--ic") -> ICChoice:
    """'all' (`ALL_ICS`), or IC positions as `parse_int_list` reads them."""
    if text.strip().lower() == ALL_ICS:
        return ALL_ICS
    return parse_int_list(text, option)


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--input {text!r}: expected CxHxW, e.g. 3x32x32") from None
    return c, h, w


def conversion(v0: float = 0.0, **params: float) -> ConversionParams:
    return ConversionParams(v0=v0, **params)


def nir_options(args: argparse.Namespace) -> NirOptions:
    """--dataset and --fc-output: how a NIR model (--model net.nir) is run."""
    return NirOptions(dataset=args.dataset, fc_output=args.fc_output, convention=args.convention)


def sim_config(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        timesteps=args.timesteps,
        conversion=conversion(args.v0),
        coding=coding_from_text(codings(args)[0], args.seed),
        backend=args.backend,
        batch_size=args.batch_size,
        threads=args.threads,
    )


def tuning_config(args: argparse.Namespace) -> TuningConfig:
    return TuningConfig(
        estimator=Estimator(args.estimator),
        pooling=EvidencePooling(args.emp_pooling),
        ties=Ties.parse(args.ties),
    )


def tune_on(args: argparse.Namespace) -> tuple[TuneSource, int]:
    """--tune-on validation | train | cross-fit[:K] -> (source, folds; K = 5 by default)."""
    name, _, folds = args.tune_on.partition(":")
    sources = {str(s): s for s in TuneSource}
    source = sources.get(name)
    if source is None or (folds and source is not TuneSource.CROSS_FIT) or not _integer(folds):
        raise InputError(f"--tune-on {args.tune_on!r}: expected validation, train or cross-fit[:K]")
    k = int(folds or 5)
    if source is TuneSource.CROSS_FIT and k < 2:
        raise InputError(f"--tune-on {args.tune_on!r}: cross-fitting needs K >= 2 folds")
    return source, k


def _integer(text: str) -> bool:
    """Whether `text` is empty or an integer."""
    try:
        int(text or 0)
    except ValueError:
        return False
    return True


def functional_config(args: argparse.Namespace, sigma: float | None = None) -> FunctionalConfig:
    """--first-layer, --variation-sigma (or `sigma`), --sa0-rate, --sa1-rate, --device-seed: how
    the chip's crossbars read (the hardware-functional mode)."""
    try:
        noise = Nonidealities(
            sigma=args.variation_sigma if sigma is None else sigma,
            sa0_rate=args.sa0_rate,
            sa1_rate=args.sa1_rate,
            seed=args.device_seed,
        )
    except ValueError as e:
        raise InputError(f"--variation-sigma/--sa0-rate/--sa1-rate: {e}") from None
    return FunctionalConfig(first_layer=FirstLayer(args.first_layer), noise=noise)


def trace_root(args: argparse.Namespace) -> Path | None:
    return None if args.no_cache else Path(args.traces)


def timing(args: argparse.Namespace) -> TimingModel:
    """--timing, by default cycle, or analytic with --hardware functional (whose crossbar
    activity is not kept per image)."""
    if args.timing is not None:
        return TimingModel(args.timing)
    return TimingModel.ANALYTIC if args.hardware == "functional" else TimingModel.CYCLE


def _evaluation(args: argparse.Namespace) -> dict:
    """The EvaluationConfig fields that run and sweep take from the same options."""
    source, folds = tune_on(args)
    return {
        "sim": sim_config(args),
        "images": args.images,
        "tune_images": args.tune_images,
        "target_fraction": args.target,
        "data_root": args.data_root,
        "trace_root": trace_root(args),
        "energy_model": EnergyModel(args.energy_model) if args.energy_model else None,
        "tuning": tuning_config(args),
        "tune_on": source,
        "folds": folds,
        "bootstrap": BootstrapConfig(resamples=args.bootstrap),
        "nir": nir_options(args),
        "hardware": Hardware(args.hardware),
        "functional": functional_config(args),
    }


def run_config(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        arch=Path(args.arch),
        model=Path(args.model),
        ic=args.ic,
        test_trace=Path(args.trace) if args.trace else None,
        timing=timing(args),
        **_evaluation(args),
    )


def grid_config(args: argparse.Namespace) -> GridConfig:
    """The sweep's grid: every --model x --arch x --coding x --ic-positions."""
    models = tuple(Path(m) for m in args.model)
    template = SweepConfig(arch=Path(args.arch[0]), model=models[0], **_evaluation(args))
    ics = parse_ic_list(args.ic_positions, "--ic-positions")
    return GridConfig(
        models=models,
        archs=tuple(Path(a) for a in args.arch),
        codings=tuple(codings(args)),
        template=template,
        ic_positions=None if ics == ALL_ICS else ics,
        seed=args.seed,
    )


def knob(args: argparse.Namespace) -> tuple[Knob, tuple[float, ...]]:
    """The one knob `hwsim functional` sweeps: --adc-bits (default 3:8), --cells-per-weight or
    --variation-sigma (comma list)."""
    given = [k for k in ("cells_per_weight", "variation_sigma") if getattr(args, k) is not None]
    if args.adc_bits is not None:
        given.insert(0, "adc_bits")
    if len(given) > 1:
        options = ", ".join("--" + k.replace("_", "-") for k in given)
        raise InputError(f"give one knob to sweep, got {options}")
    name = given[0] if given else "adc_bits"
    if name == "variation_sigma":
        try:
            values = [float(v) for v in args.variation_sigma.split(",")]
        except ValueError:
            text = args.variation_sigma
            raise InputError(f"--variation-sigma {text!r}: expected S,S,...") from None
        if any(not 0 <= v <= 10 or math.isnan(v) for v in values):
            raise InputError(f"--variation-sigma {args.variation_sigma!r}: sigmas in 0..10")
        return Knob(name), tuple(values)
    text = args.adc_bits or "3:8" if name == "adc_bits" else args.cells_per_weight
    option = "--" + name.replace("_", "-")
    ints = parse_int_list(text, option)
    what, top = ("resolutions", 16) if name == "adc_bits" else ("cell counts", 32)
    if not ints or not all(1 <= v <= top for v in ints):
        raise InputError(f"{option} {text!r}: expected {what} in 1..{top}")
    return Knob(name), tuple(float(v) for v in ints)


def codesign_config(args: argparse.Namespace) -> CodesignConfig:
    name, values = knob(args)
    return CodesignConfig(
        arch=Path(args.arch),
        model=Path(args.model),
        knob=name,
        values=values,
        images=args.images,
        timesteps=args.timesteps,
        ic=args.ic,
        full_scale=None if args.full_scale is None else FullScale(args.full_scale),
        full_scale_levels=args.full_scale_levels,
        calibration_images=(
            args.calibration_images if "calibration_images" in given(args) else None
        ),
        functional=functional_config(args, sigma=0.0),
        data_root=args.data_root,
        nir=nir_options(args),
    )


def train_config(args: argparse.Namespace) -> TrainConfig:
    """--ic all: an IC after every block of the network."""
    ics = parse_ic_list(args.ic)
    if ics == ALL_ICS:
        ics = tuple(range(len(NetSpec(args.net, args.width, (3, 64, 64), 10).blocks())))
    return TrainConfig(
        net=args.net,
        dataset=args.dataset,
        width=args.width,
        ic_positions=ics,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        data_root=args.data_root,
        validation=args.validation,
    )


def geometry(args: argparse.Namespace) -> tuple[Path | NetSpec, ICChoice | None]:
    """The network of map and estimate and its IC positions: --model (a checkpoint or a NIR
    file; --ic None: its own) or --net/--input/--classes/--width (--ic None: none)."""
    ics = None if args.ic is None else parse_ic_list(args.ic)
    if args.model:
        return Path(args.model), ics
    return NetSpec(args.net, args.width, parse_shape(args.input), args.classes), ics
