"""The entry points of hwsim, for a notebook and the command line alike (one per command).

`run` evaluates one IC of a model on an architecture (tuning and test traces, every method's
accuracy and energy curves, the chip cycle by cycle); `sweep` the IC positions of one model and
`sweep_grid` a grid of models x architectures x codings x IC positions; `tune`, `trace`,
`estimate`, `map`, `functional` (the co-design sweep of the hardware-functional mode),
`export`, `convert` and `train` do one job each; `profile` gives a network's energy, latency,
area and spike rates on a chip in one call (a NIR graph or file, a peer's torch module, a
checkpoint). Every function takes typed values (configs
in `hwsim.pipeline.config`), checks them before simulating anything, and returns a typed
result (`hwsim.results`) that `hwsim.report` prints, writes and plots. Errors are
`hwsim.errors` classes naming the API's parameters.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.atomic import (
    DISK_FULL,
    atomic_folder,
    check_output_file,
    check_output_folder,
    disk_full,
)
from hwsim.engine.trace import (
    trace_folder,
    write_trace,
)
from hwsim.errors import InputError, OutputError
from hwsim.explore.run import ExploreConfig, ExploreResult
from hwsim.explore.run import explore as run_exploration
from hwsim.fusion import TuneSource, TuningConfig
from hwsim.hw.ablation import ablation as run_ablation
from hwsim.hw.ablation import rate_activity
from hwsim.hw.arch import Architecture, load_arch
from hwsim.hw.area import chip_area
from hwsim.hw.calibrate import CalibrationResult, FreeEntry
from hwsim.hw.calibrate import calibrate as fit_cost_table
from hwsim.hw.energy import spikesim_energy
from hwsim.hw.mapping import map_network
from hwsim.methods import Ties
from hwsim.metrics import Multiplicity
from hwsim.model.coding import InputCoding
from hwsim.model.convert import ConversionParams, save_spiking
from hwsim.model.graph import FC_HEAD
from hwsim.model.nets import load_checkpoint, save_checkpoint
from hwsim.model.netspec import NetSpec
from hwsim.model.nir_convention import PRESETS
from hwsim.model.nir_export import write_nir
from hwsim.model.nir_io import NIR_SUFFIX, ImportedSpec, NirOptions
from hwsim.model.train import TrainConfig
from hwsim.model.train import train as train_network
from hwsim.pipeline import cache
from hwsim.pipeline.codesign import codesign_sweep
from hwsim.pipeline.config import (
    DEFAULT_TRACE_ROOT,
    CodesignConfig,
    EvaluationConfig,
    ICChoice,
    ProgressFn,
    RunConfig,
    SimConfig,
    SweepConfig,
    WarnFn,
)
from hwsim.pipeline.cycles import TimingModel
from hwsim.pipeline.evaluate import (
    cycle_evaluation,
    evaluate,
    evaluate_ics,
    simultaneous_rows,
    tune_and_test,
    tune_target,
)
from hwsim.pipeline.grid import Executor, GridConfig, run_grid
from hwsim.pipeline.outputs import (
    check_trace_out,
    is_calibrated_yaml,
    is_exported_nir,
    is_model_file,
)
from hwsim.pipeline.profile import Images, profile_model
from hwsim.pipeline.session import CheckpointSource, Session, network_spec
from hwsim.report.explore import write_exploration
from hwsim.report.files import write_sweep
from hwsim.report.profile import ProfileReport
from hwsim.results import (
    AblationResult,
    ConvertResult,
    EstimateResult,
    ExportResult,
    FunctionalResult,
    GridResult,
    MapResult,
    RunResult,
    SweepRow,
    TraceResult,
    TrainResult,
    TuneResult,
)

__all__ = [
    "CodesignConfig",
    "EvaluationConfig",
    "Executor",
    "ExploreConfig",
    "GridConfig",
    "RunConfig",
    "Session",
    "SimConfig",
    "SweepConfig",
    "ablation",
    "calibrate",
    "convert",
    "estimate",
    "explore",
    "export",
    "functional",
    "map",
    "profile",
    "run",
    "sweep",
    "sweep_grid",
    "trace",
    "train",
    "tune",
]


def _session(
    model: Path | Session,
    data_root: str | None,
    conversion: ConversionParams,
    nir: NirOptions | None,
) -> Session:
    """`model` itself if it is an open session, else a session of the model file."""
    if isinstance(model, Session):
        return model
    return Session.open(model, data_root, conversion, nir)


def run(
    cfg: RunConfig, progress: ProgressFn | None = None, warn: WarnFn | None = None
) -> RunResult:
    """Convert, simulate (or reuse traces), tune on other images than the test images, and
    evaluate one IC (None: the model's default); with cycle timing also simulate the chip cycle
    by cycle, with early termination tuned on the tuning images."""
    start = time.perf_counter()
    arch = cfg.architecture()
    session = Session.open(cfg.model, cfg.data_root, cfg.sim.conversion, cfg.nir)
    ic = session.default_ic(cfg.target_fraction) if cfg.ic is None else cfg.ic
    session.check_ics((ic,))
    cycle = cfg.timing is TimingModel.CYCLE
    tune, test = tune_and_test(
        cfg, session, arch, progress, warn, test_trace=cfg.test_trace, per_image=cycle
    )
    reference = session.reference_correct(test, cfg.tuning.ties)
    evaluation = evaluate(cfg, session, arch, tune, test, ic, reference, warn)
    cycles = None
    if cycle:
        target = tune_target(cfg, session, tune)
        graph = session.spec.graph()
        cycles = cycle_evaluation(arch, graph, evaluation, test, tune, target, progress)
    seconds = time.perf_counter() - start
    return RunResult(
        cfg.model, session.reference, arch, session.spec, evaluation, test, seconds, cycles
    )


def sweep(
    cfg: SweepConfig,
    *,
    on_row: Callable[[SweepRow], None] | None = None,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
    session: Session | None = None,
    multiplicity: Multiplicity = Multiplicity.BONFERRONI,
) -> list[SweepRow]:
    """Evaluate every IC position of `cfg` (in its order), sharing the tuning and test traces;
    a position stored under cfg.trace_root by an earlier sweep or grid with the same inputs is
    read, not computed again. Each R interval is also given simultaneous over the positions
    (`multiplicity`, at the bootstrap's level: `Reduction.simultaneous_ci`). `on_row` sees
    each row as it is evaluated, before the simultaneous intervals. `session`: an open
    session of cfg.model to reuse (its converted network is kept)."""
    if session is None:
        session = Session.open(cfg.model, cfg.data_root, cfg.sim.conversion, cfg.nir)
    rows = evaluate_ics(cfg, session, on_row=on_row, progress=progress, warn=warn)
    return simultaneous_rows(rows, cfg.bootstrap.level, multiplicity)


def sweep_grid(
    cfg: GridConfig,
    out: Path | None = None,
    *,
    executor: Executor = Executor.LOCAL,
    scheduler: str | None = None,
    workers: int | None = None,
    wait_workers: float | None = None,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> GridResult:
    """Every cell of a grid (`hwsim.pipeline.grid`): with `out`, resumed from an interrupted
    run's state file there, and at the end sweep.csv and one R-by-IC figure per model x arch x
    coding replace the folder's contents (checked before anything runs)."""
    if out is not None:
        t = cfg.template
        inputs = [("model", m) for m in cfg.models] + [("arch", a) for a in cfg.archs]
        inputs += _roots(t.trace_root, t.data_root)
        check_output_folder(out, "out", inputs)
    result = run_grid(cfg, out, executor=executor, scheduler=scheduler, workers=workers,
                      wait_workers=wait_workers, progress=progress, warn=warn)  # fmt: skip
    if out is None:
        return result
    return dataclasses.replace(result, paths=write_sweep(result.rows, out))


def explore(
    cfg: ExploreConfig,
    out: Path | None = None,
    *,
    executor: Executor = Executor.LOCAL,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> tuple[ExploreResult, list[Path]]:
    """A design-space exploration (`hwsim.explore.run`; docs/explore.md): every point of
    cfg's search, each read from the result store under the trace root when an earlier run
    computed it. With `out`, points.csv, pareto.csv and the figures replace the folder's
    contents (checked before anything runs); returns the result and the files written."""
    if out is not None:
        t = cfg.template
        check_output_folder(out, "out", [("arch", t.arch), *_roots(t.trace_root, t.data_root)])
    result = run_exploration(cfg, executor=executor, scheduler=scheduler, workers=workers,
                             progress=progress, warn=warn)  # fmt: skip
    if out is None:
        return result, []
    objectives = [o.column for o in result.objectives]
    with atomic_folder(out) as tmp:
        names = write_exploration(
            result.rows, result.front, result.knobs, objectives, tmp, title=result.base
        )
    return result, [Path(out) / Path(n).name for n in names]


def _roots(trace_root: Path | None, data_root: str | None) -> list[tuple[str, Path]]:
    """The input folders of a simulating command: the trace cache and the data root."""
    roots = [] if trace_root is None else [("trace_root", Path(trace_root))]
    return roots + ([] if data_root is None else [("data_root", Path(data_root))])


def tune(
    model: Path | Session,
    sim: SimConfig,
    ics: ICChoice | None = None,
    *,
    tune_images: int | None = None,
    source: TuneSource = TuneSource.VALIDATION,
    trace_root: Path | None = DEFAULT_TRACE_ROOT,
    config: TuningConfig | None = None,
    data_root: str | None = None,
    nir: NirOptions | None = None,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> TuneResult:
    """Tune every IC of `ics` (None or "all": all of the model's) on the first `tune_images`
    images of the validation split (None: all; `source` TRAIN: training images); with
    trace_root None nothing is read from or written to disk."""
    session = _session(model, data_root, sim.conversion, nir)
    chosen = session.resolve_ics(ics)
    data = session.tuning_images(source, tune_images)
    t = cache.trace(
        session, data, sim, trace_root=trace_root, progress=progress, warn=warn, stage="tune"
    )
    tunings = {ic: cache.tuning_for(t, ic, trace_root, config, warn) for ic in chosen}
    paths = {
        ic: None if trace_root is None else cache.tuning_path(trace_root, t, ic, config)
        for ic in chosen
    }
    return TuneResult(t, tunings, paths)


def trace(
    model: Path | Session,
    sim: SimConfig,
    split: str = "test",
    images: int | None = None,
    *,
    trace_root: Path | None = DEFAULT_TRACE_ROOT,
    out: Path | None = None,
    data_root: str | None = None,
    nir: NirOptions | None = None,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> TraceResult:
    """The trace of the first `images` images (None: all) of a split: read from the cache
    under trace_root or simulated (and stored there; None: no cache), also written to `out`."""
    if out is not None:
        path = model.model_path if isinstance(model, Session) else Path(model)
        check_trace_out(Path(out), [("model", path), *_roots(trace_root, data_root)])
    session = _session(model, data_root, sim.conversion, nir)
    data = session.images(split, images)
    t = cache.trace(
        session, data, sim, trace_root=trace_root, progress=progress, warn=warn, stage=split
    )
    stored = None if trace_root is None else trace_folder(trace_root, t.key)
    if stored is not None and not stored.is_dir():
        stored = None  # the cache could not be written (`cache.trace` warned)
    written = None
    if out is not None:
        try:
            written = write_trace(t, Path(out))
        except OSError as e:
            if e.errno in DISK_FULL:
                raise disk_full(Path(out)) from e
            raise
    return TraceResult(t, stored, written)


def estimate(
    arch: Path,
    network: Path | NetSpec | ImportedSpec,
    ics: ICChoice | None = None,
    nir: NirOptions | None = None,
) -> EstimateResult:
    """SpikeSim energy per timestep of a network (`pipeline.session.network_spec`: a model
    file's, or an untrained geometry) on an architecture."""
    spec = network_spec(network, ics, nir)
    chip = load_arch(arch)
    graph = spec.graph()
    return EstimateResult(spec, chip, graph.layers, spikesim_energy(map_network(chip, graph)))


def map(  # the command's name (shadows the builtin here, which this module does not use)
    arch: Path,
    network: Path | NetSpec | ImportedSpec,
    ics: ICChoice | None = None,
    nir: NirOptions | None = None,
) -> MapResult:
    """A network (`pipeline.session.network_spec`) mapped onto crossbars, PEs, tiles and the
    mesh of an architecture, and the chip's area."""
    spec = network_spec(network, ics, nir)
    mapping = map_network(load_arch(arch), spec.graph())
    return MapResult(spec, mapping, chip_area(mapping))


def profile(
    model: Any,
    images: Images = 100,
    *,
    arch: str | Path | Architecture = "spikesim",
    timesteps: int = 100,
    labels: np.ndarray | Any | None = None,
    dataset: str | None = None,
    ics: ICChoice | None = None,
    coding: InputCoding | None = None,
    conversion: ConversionParams | None = None,
    nir: NirOptions | None = None,
    data_root: str | None = None,
    ties: Ties | None = None,
    batch_size: int = 250,
    threads: int = 0,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> ProfileReport:
    """A network's energy per layer and component (pJ per image), latency (cycles, ns), area
    (mm^2), spike rates and accuracy on the chip `arch` (`hwsim.pipeline.profile`;
    docs/profile.md). `model`: a NIR graph, a .nir file, a sinabs or snntorch torch module
    (exported with the peer's own exporter), a checkpoint or converted model, or a `Session`;
    `images`: how many test images of the model's dataset (`dataset` for a NIR model), or the
    images themselves (N, C, H, W), with `labels` (N,) if known."""
    result = profile_model(
        model, images, arch=arch, timesteps=timesteps, labels=labels, dataset=dataset, ics=ics,
        coding=coding, conversion=conversion, nir=nir, data_root=data_root, ties=ties,
        batch_size=batch_size, threads=threads, progress=progress, warn=warn,
    )  # fmt: skip
    return ProfileReport.of(result)


def functional(cfg: CodesignConfig, progress: ProgressFn | None = None) -> FunctionalResult:
    """The co-design sweep (`pipeline.hardware.codesign`): FC (and IC) accuracy and energy per
    inference on the chip against one knob, with the ideal engine as the reference;
    progress(stage, done, total) after each knob value."""
    return codesign_sweep(cfg, progress)


def export(
    model: Path,
    out: Path,
    ics: ICChoice | None = None,
    *,
    conversion: ConversionParams | None = None,
    data_root: str | None = None,
    nir: NirOptions | None = None,
    target: str = "hwsim",
) -> ExportResult:
    """Write the SNN of `model` (converted with `conversion`, default `ConversionParams()`)
    with the IC heads `ics` (None or "all": all of them) and its FC as a NIR file for the
    tool `target` reads (`hwsim.model.nir_export.export_graph`; docs/nir.md)."""
    if out.suffix.lower() != NIR_SUFFIX:
        raise OutputError(f"{{out}} {out}: a NIR file's name ends in {NIR_SUFFIX}", params=("out",))
    if target not in PRESETS:
        raise InputError(
            f"{{target}} {target!r}: expected one of {', '.join(PRESETS)}", params=("target",)
        )
    inputs = [("model", model), *_roots(None, data_root)]
    check_output_file(out, "out", inputs, is_exported_nir, "NIR file")
    session = Session.open(model, data_root, conversion or ConversionParams(), nir)
    chosen = session.resolve_ics(ics)
    snn = session.snn.with_heads((*chosen, FC_HEAD))
    write_nir(snn, out, target)
    outputs = (*(f"ic{i}" for i in chosen), "fc")
    return ExportResult(model, out, outputs, len(snn.graph.layers), snn.params.threshold)


def convert(
    model: Path,
    out: Path | None = None,
    *,
    params: ConversionParams | None = None,
    data_root: str | None = None,
) -> ConvertResult:
    """Convert a checkpoint to an SNN (BN folded, weights normalised on its training images;
    `params` default `ConversionParams()`) and, with `out`, write it as a model file that `run`
    and the others accept."""
    if out is not None:
        inputs = [("model", model), *_roots(None, data_root)]
        check_output_file(out, "out", inputs, is_model_file, "model file")
    ckpt = load_checkpoint(model)
    snn = CheckpointSource(model, ckpt, data_root).spiking(params or ConversionParams())
    if out is not None:
        save_spiking(snn, ckpt, out)
    return ConvertResult(model, tuple(snn.scales), out)


def train(
    cfg: TrainConfig, out: Path | None = None, progress: ProgressFn | None = None
) -> TrainResult:
    """Train an ANN with IC heads (`hwsim.model.train`) and write its checkpoint to `out`
    (default models/NET_DATASET.pt); progress(stage, done, total) after every batch."""
    path = out or Path(f"models/{cfg.net}_{cfg.dataset}.pt")
    check_output_file(path, "out", _roots(None, cfg.data_root), is_model_file, "model file")
    checkpoint = train_network(cfg, progress=progress)
    save_checkpoint(checkpoint, path)
    return TrainResult(checkpoint, path)


def calibrate(
    arch: Path, measurements: Path, out: Path, free: tuple[str, ...] = ()
) -> CalibrationResult:
    """Fit the cost-table entries `free` (`KEY[=LO:HI]`, e.g. `energy_pj.adc=0:10`; empty: the
    measurement file's `# free:` lines) of the architecture file `arch` to the measured numbers
    in `measurements` by bounded least squares, and write the calibrated file to `out`
    (`hwsim.hw.calibrate`: residuals, standard errors, leave-one-out errors)."""
    inputs = [("arch", arch), ("measurements", measurements)]
    check_output_file(out, "out", inputs, is_calibrated_yaml, "calibrated architecture file")
    entries = [FreeEntry.parse(text) for text in free] or None
    return fit_cost_table(arch, measurements, out, entries)


def ablation(
    arch: Path,
    base: Path,
    network: Path | NetSpec | ImportedSpec,
    ics: ICChoice | None = None,
    *,
    timesteps: int = 300,
    spike_rate: float = 0.1,
    nir: NirOptions | None = None,
) -> AblationResult:
    """One image of `network` (`pipeline.session.network_spec`) on the chip `arch`, from SpikeSim's
    model (`base`) to `arch` with each effect SpikeSim leaves out added in turn (pipelining,
    partial sums, static power, off-chip I/O, the physical rest; `hwsim.hw.ablation`), every PE
    operation performed and neurons spiking at `spike_rate` for `timesteps` steps."""
    if timesteps < 1:
        raise InputError(f"{{timesteps}} {timesteps}: expected >= 1", params=("timesteps",))
    spec = network_spec(network, ics, nir)
    full, spikesim = load_arch(arch), load_arch(base)
    graph = spec.graph()
    activity = rate_activity(map_network(spikesim, graph), timesteps, spike_rate)
    result = run_ablation(spikesim, full, graph, activity)
    return AblationResult(spec, spikesim, full, timesteps, spike_rate, result)
