"""An exploration: its configuration, its points chosen by the search, each evaluated once
(`explore.evaluate`, through the result store under the trace root), constraints applied and
the Pareto front marked.

Results do not depend on the executor or on what the store already held: the rows are built
in the search's order from the stored payloads, so a local, a resumed and a Dask run give the
same points.csv. A point's payload is put into the store as soon as it is computed, so an
interrupted exploration resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.errors import InputError
from hwsim.explore.evaluate import (
    AccuracyMode,
    PointJob,
    Status,
    changes_spikes,
    evaluate_point,
    objective_values,
    point_key,
    session_of,
    with_hardware,
)
from hwsim.explore.pareto import Constraint, Objective, minimisation, pareto_mask
from hwsim.explore.search import Choice, Search, SearchKind, nsga2
from hwsim.explore.space import (
    IC_KNOB,
    MAX_GRID_POINTS,
    Knob,
    Point,
    Space,
    check_knobs,
    with_value,
)
from hwsim.hw.arch import ArchConfigError, load_arch, parse_arch
from hwsim.methods import HEADLINE, Method
from hwsim.pipeline.config import ICChoice, ProgressFn, SweepConfig, WarnFn
from hwsim.pipeline.cycles import TimingModel
from hwsim.pipeline.grid import Executor, check_executor
from hwsim.pipeline.store import ResultStore

DEFAULT_OBJECTIVES = (Objective.ACCURACY, Objective.ENERGY, Objective.LATENCY, Objective.AREA)


@dataclass(frozen=True)
class ExploreConfig:
    """An exploration: the sweep settings (`template`: its arch is the base file, its model the
    network, its trace_root the store's root), the knobs, the IC positions (None: the model's
    default IC), objectives and constraints on the `method`'s numbers at the target, the
    search, the latency model and where accuracy comes from."""

    template: SweepConfig
    knobs: tuple[Knob, ...] = ()
    ic_positions: ICChoice | None = None
    objectives: tuple[Objective, ...] = DEFAULT_OBJECTIVES
    constraints: tuple[Constraint, ...] = ()
    search: Search = Search()
    method: Method = HEADLINE
    timing: TimingModel = TimingModel.ANALYTIC
    accuracy: AccuracyMode = AccuracyMode.AUTO


@dataclass(frozen=True)
class ExploreResult:
    """Every point's row (points.csv, in the search's order), which rows are on the front, the
    points computed now and those read from the store, the accuracy mode used and the wall
    time (s)."""

    rows: list[dict[str, Any]]
    front: np.ndarray  # (N,) bool
    knobs: tuple[str, ...]  # knob columns, the IC last
    objectives: tuple[Objective, ...]
    method: Method
    functional: bool
    search: str
    seed: int
    computed: int
    reused: int
    seconds: float
    base: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def pareto_rows(self) -> list[dict[str, Any]]:
        return [r for r, f in zip(self.rows, self.front, strict=True) if f]


def base_mapping(arch: Path) -> dict[str, Any]:
    """The base architecture as a full mapping (validated; defaults filled in)."""
    return load_arch(arch).to_mapping()


def _functional(space: Space, mode: AccuracyMode) -> bool:
    """Whether accuracy comes from the functional mode (`AccuracyMode.AUTO`: a knob changes the
    functional mode's spikes between two of its values, each set alone on the base)."""
    if mode is not AccuracyMode.AUTO:
        return mode is AccuracyMode.FUNCTIONAL
    for knob in space.knobs:
        archs = []
        for value in knob.values:
            try:
                archs.append(parse_arch(with_value(space.base, knob.key, value), space.source))
            except ArchConfigError:
                continue
        if changes_spikes(archs):
            return True
    return False


def plan(cfg: ExploreConfig) -> tuple[Space, SweepConfig]:
    """The space and the sweep settings of an exploration, every input checked (knobs through
    the arch schema, IC positions against the model, objectives against the timing model,
    the search and the executor) before any point is evaluated."""
    t = cfg.template
    cfg.search.check()
    if cfg.constraints:
        known = {*(o.column for o in Objective), "ann_accuracy_fc", "target_accuracy"}
        for c in cfg.constraints:
            if c.column not in known and not c.column.startswith(
                ("energy_", "latency_", "accuracy_", "timestep_", "component_")
            ):
                raise InputError(
                    f"{{constraint}} {c}: {c.column} is not a column of points.csv"
                    f" ({', '.join(sorted(known))}, energy_<method>_pj, ...)",
                    params=("constraint",),
                )
    base = base_mapping(t.arch)
    check_knobs(base, cfg.knobs, str(t.arch))
    session = session_of(t)
    if cfg.ic_positions is None:
        ics: tuple[int, ...] = (session.default_ic(t.target_fraction),)
    else:
        ics = session.resolve_ics(cfg.ic_positions, "ic_positions")
    space = Space(base, str(t.arch), cfg.knobs, ics)
    if space.size < 2:
        raise InputError(
            "{vary}: one point is nothing to explore; vary a key or give IC positions",
            params=("vary",),
        )
    if cfg.search.kind is SearchKind.GRID and space.size > MAX_GRID_POINTS:
        raise InputError(
            f"{{vary}}: the grid has {space.size} points, more than {MAX_GRID_POINTS} a grid"
            " search evaluates; give {search} random:N or nsga2:N, or fewer values",
            params=("vary", "search"),
        )
    template = with_hardware(t, _functional(space, cfg.accuracy), cfg.timing)
    return space, template


def point_job(space: Space, template: SweepConfig, point: Point, timing: TimingModel) -> PointJob:
    """The job of one point: its variant, IC, timing model and store key."""
    arch = space.variant(point)
    key = point_key(template, arch, point.ic, timing)
    return PointJob(template, arch, space.source, point.ic, timing, key)


class _Evaluator:
    """Evaluates batches of points through the store, locally or on a Dask client, keeping
    every payload by point and counting the points computed and reused."""

    def __init__(self, store: ResultStore, client: Any, progress: ProgressFn | None) -> None:
        self.store, self.client, self.progress = store, client, progress
        self.payloads: dict[Point, dict[str, Any]] = {}
        self.order: list[Point] = []
        self.computed = self.reused = 0

    def run(self, jobs: list[tuple[Point, PointJob]], total: int) -> None:
        todo = []
        for point, job in jobs:
            if point in self.payloads:
                continue
            self.order.append(point)
            payload = self.store.get(job.key)
            if payload is None:
                todo.append((point, job))
            else:
                self.payloads[point] = payload
                self.reused += 1
        if self.client is None:
            for point, job in todo:
                self._done(point, job, evaluate_point(job), total)
            return
        from distributed import as_completed

        futures = {
            self.client.submit(evaluate_point, job, key=f"hwsim-point-{job.key}"): (point, job)
            for point, job in todo
        }
        for future in as_completed(futures):
            point, job = futures[future]
            self._done(point, job, future.result(), total)

    def _done(self, point: Point, job: PointJob, payload: dict[str, Any], total: int) -> None:
        self.store.put(job.key, payload)
        self.payloads[point] = payload
        self.computed += 1
        if self.progress is not None:
            self.progress("points", len(self.payloads), total)


def _row(space: Space, point: Point, payload: dict[str, Any], cfg: ExploreConfig) -> dict[str, Any]:
    """The points.csv row of a point: knobs, status and reason, objectives, every number."""
    row: dict[str, Any] = dict(point.knobs(space.knobs))
    status, reason = payload["status"], payload["reason"]
    objectives = objective_values(payload, cfg.method)
    if status == Status.OK:
        broken = [str(c) for c in cfg.constraints if not c.holds({**payload, **objectives})]
        if broken:
            status, reason = str(Status.CONSTRAINT), "constraint broken: " + "; ".join(broken)
    row |= {"status": status, "reason": reason, "method": str(cfg.method), **objectives}
    return row | {k: v for k, v in payload.items() if k not in ("status", "reason")}


def inert_knobs(space: Space, ev: _Evaluator) -> list[str]:
    """The knobs whose values changed no number of any point: the evaluated points that agree
    in every other knob and the IC but differ in this one (at least one such pair) have equal
    payloads."""
    inert = []
    for i, knob in enumerate(space.knobs):
        groups: dict[str, tuple[set[str], set[str]]] = {}
        for p in ev.order:
            payload = ev.payloads[p]
            if payload["status"] != Status.OK:
                continue
            rest = repr((*p.values[:i], *p.values[i + 1 :], p.ic))
            values, texts = groups.setdefault(rest, (set(), set()))
            values.add(repr(p.values[i]))
            texts.add(json.dumps(payload, sort_keys=True))
        varied = [texts for values, texts in groups.values() if len(values) > 1]
        if varied and all(len(texts) == 1 for texts in varied):
            inert.append(knob.key)
    return inert


def front_of(rows: list[dict[str, Any]], objectives: tuple[Objective, ...]) -> np.ndarray:
    """(N,) bool: the valid rows (status ok, finite objectives) no other valid row dominates."""
    values = np.array([[r[o.column] for o in objectives] for r in rows], np.float64)
    values = values.reshape(len(rows), len(objectives))
    ok = np.array([r["status"] == Status.OK for r in rows], bool) & np.isfinite(values).all(axis=1)
    mask = np.zeros(len(rows), bool)
    mask[np.flatnonzero(ok)] = pareto_mask(values[ok], objectives)
    return mask


def explore(
    cfg: ExploreConfig,
    *,
    executor: Executor = Executor.LOCAL,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> ExploreResult:
    """Run the exploration `cfg` (module docstring); every input is checked first."""
    check_executor(executor, scheduler, workers, None)
    space, template = plan(cfg)
    store = ResultStore(template.trace_root, warn)
    start = time.perf_counter()
    if executor is Executor.DASK:
        from hwsim.pipeline.grid import WAIT_WORKERS_S, dask_client

        with dask_client(scheduler, workers, WAIT_WORKERS_S, progress, warn) as client:
            ev = _search(cfg, space, template, _Evaluator(store, client, progress))
    else:
        ev = _search(cfg, space, template, _Evaluator(store, None, progress))
    rows = [_row(space, p, ev.payloads[p], cfg) for p in ev.order]
    knobs = (*(k.key for k in space.knobs), IC_KNOB)
    notes = [
        f"{key}: its values changed no number of any point (it acts only in a model this"
        " exploration does not use, e.g. the cycle-level simulation or the event energy model)"
        for key in inert_knobs(space, ev)
    ]
    searched, n = str(cfg.search), cfg.search.n
    if cfg.search.kind is SearchKind.RANDOM and n is not None and n > space.size:
        searched += f" = the whole grid of {space.size}"
        notes.insert(
            0,
            f"search {cfg.search} asks for {n} points and the grid has {space.size}: all"
            f" {space.size} ran (the whole grid, nothing drawn)",
        )
    for note in notes:
        if warn is not None:
            warn(note)
    return ExploreResult(
        rows=rows,
        front=front_of(rows, cfg.objectives),
        knobs=knobs,
        objectives=cfg.objectives,
        method=cfg.method,
        functional=template.hardware.value == "functional",
        search=searched,
        seed=cfg.search.seed,
        computed=ev.computed,
        reused=ev.reused,
        seconds=time.perf_counter() - start,
        base=str(template.arch),
        notes=notes,
    )


def _search(cfg: ExploreConfig, space: Space, template: SweepConfig, ev: _Evaluator) -> _Evaluator:
    """Choose and evaluate the points of the search."""
    search = cfg.search
    if search.kind is SearchKind.GRID:
        points = list(space.grid())
    elif search.kind is SearchKind.RANDOM:
        assert search.n is not None
        points = space.sample(search.n, search.seed)
    else:
        _nsga2(cfg, space, template, ev)
        return ev
    ev.run([(p, point_job(space, template, p, cfg.timing)) for p in points], len(points))
    return ev


def _nsga2(cfg: ExploreConfig, space: Space, template: SweepConfig, ev: _Evaluator) -> None:
    """NSGA-II over the knobs and IC positions; a point that is invalid or breaks a constraint
    is an infeasible trial."""
    assert cfg.search.n is not None
    sizes = [len(k.values) for k in space.knobs] + [len(space.ics)]

    def point(choice: Choice) -> Point:
        values = tuple(k.values[i] for k, i in zip(space.knobs, choice, strict=False))
        return Point(values, space.ics[choice[-1]])

    def batch(choices: list[Choice]) -> list[tuple[float, ...] | None]:
        points = [point(c) for c in choices]
        ev.run([(p, point_job(space, template, p, cfg.timing)) for p in points], cfg.search.n or 0)
        out: list[tuple[float, ...] | None] = []
        for p in points:
            row = _row(space, p, ev.payloads[p], cfg)
            if row["status"] != Status.OK:
                out.append(None)
                continue
            values = np.array([[row[o.column] for o in cfg.objectives]], np.float64)
            x = minimisation(values, cfg.objectives)[0]
            out.append(tuple(float(v) for v in x) if np.isfinite(x).all() else None)
        return out

    nsga2(sizes, len(cfg.objectives), cfg.search.n, batch, cfg.search.seed, cfg.search.population)
