"""The entry points that simulate a model's images and evaluate its methods: `run` (one IC,
the chip cycle by cycle), `sweep` (every IC position of a model), `sweep_grid` (models x
architectures x codings x IC positions), `explore` (a design-space exploration), `tune` and
`trace`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from hwsim.atomic import (
    DISK_FULL,
    atomic_folder,
    check_output_folder,
    disk_full,
)
from hwsim.engine.trace import (
    trace_folder,
    write_trace,
)
from hwsim.explore.run import ExploreConfig, ExploreResult
from hwsim.explore.run import explore as run_exploration
from hwsim.fusion import TuneSource, TuningConfig
from hwsim.metrics import Multiplicity
from hwsim.model.conversion import ConversionParams
from hwsim.model.nir_io import NirOptions
from hwsim.pipeline import cache
from hwsim.pipeline.config import (
    DEFAULT_TRACE_ROOT,
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
    input_roots,
)
from hwsim.pipeline.session import Session
from hwsim.report.explore import write_exploration
from hwsim.report.files import write_sweep
from hwsim.results import (
    GridResult,
    RunResult,
    SweepRow,
    TraceResult,
    TuneResult,
)


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
        inputs += input_roots(t.trace_root, t.data_root)
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
        check_output_folder(out, "out", [("arch", t.arch), *input_roots(t.trace_root, t.data_root)])
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
        check_trace_out(Path(out), [("model", path), *input_roots(trace_root, data_root)])
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
