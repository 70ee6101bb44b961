"""Evaluation of the methods for one IC: the tuning and test traces of a run, each method's
decisions with parameters tuned on other images, its accuracy and energy curves with paired
bootstrap intervals, and the cycle-level simulation of the chip.

`evaluate_ics` is the sweep of one model, architecture and coding over IC positions, sharing
the traces (what `hwsim.api.sweep` and each cell of `hwsim.pipeline.grid` run); each position's
row is kept in the content-keyed result store under the trace root (`hwsim.pipeline.store`,
key `ic_key`), so a rerun, or a sweep extended by a position, computes only the positions not
stored. `simultaneous_rows` gives its rows' R intervals simultaneous over the sweep's positions.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hwsim import __version__
from hwsim.engine import drop_kept
from hwsim.engine.trace import Trace, TraceError, file_sha256
from hwsim.fusion import (
    FusionComparison,
    TuneSource,
    compare_on_spikes,
    cross_fit,
    cumulative,
)
from hwsim.hw.arch import Architecture, EnergyModel
from hwsim.methods import BASELINES, METHODS, REFERENCE, Method, credit_unit, reduction_column
from hwsim.metrics import (
    BootstrapConfig,
    Curve,
    Multiplicity,
    bootstrap,
    estimate,
    simultaneous,
    summarize,
)
from hwsim.model.graph import FC_HEAD, LayerGraph
from hwsim.pipeline import cache
from hwsim.pipeline.activity import activity_spec
from hwsim.pipeline.config import EvaluationConfig, ProgressFn, SweepConfig, WarnFn
from hwsim.pipeline.costs import chip_costs
from hwsim.pipeline.cycles import (
    CycleEvaluation,
    EarlyStop,
    OperatingPoint,
    evaluate_cycles,
    fusion_hardware,
    fusion_unit_share,
    method_decision_cycles,
)
from hwsim.pipeline.session import Session
from hwsim.pipeline.store import ResultStore, content_key
from hwsim.results import ICEvaluation, SweepRow


def tune_and_test(
    cfg: EvaluationConfig,
    session: Session,
    arch: Architecture,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
    *,
    test_trace: Path | None = None,
    per_image: bool = False,
) -> tuple[Trace | None, Trace]:
    """The tuning trace (None when cross-fitting on the test images) and the test trace: the
    given one (`test_trace`), else simulated; a simulated test trace carries crossbar activity
    when the event energy model needs it, per image with `per_image` (cycle timing). Every
    input is checked before anything is simulated."""
    kw = {"trace_root": cfg.trace_root, "progress": progress, "warn": warn}
    sim = cfg.simulation(arch)
    given = None
    if test_trace is None:
        test_set = session.images("test", cfg.images)
        cfg.check_folds(len(test_set))
    else:
        given = cache.load_given_trace(session, test_trace, sim)
        cfg.check_folds(given.key.images)
        act = given.sim.activity
        if per_image and (act is None or act.per_image is None):
            raise TraceError(
                f"{{test_trace}} {test_trace}: no per-image activity, which {{timing}} cycle"
                " needs; use {timing} analytic, or a test trace made by hwsim run",
                params=("test_trace", "timing"),
            )
    tune = None
    if cfg.tune_on is not TuneSource.CROSS_FIT:
        tune_set = session.tuning_images(cfg.tune_on, cfg.tune_images)
        tune = cache.trace(session, tune_set, sim, stage="tune", **kw)
    if given is not None:
        return tune, given
    test_sim = sim
    if sim.hardware is None and (arch.energy_model is EnergyModel.EVENT or per_image):
        spec = dataclasses.replace(activity_spec(arch), per_image=per_image)
        test_sim = dataclasses.replace(sim, activity=spec)
    test = cache.trace(session, test_set, test_sim, stage="test", **kw)
    drop_kept()  # what follows simulates nothing: the engine's buffers go back
    return tune, test


def exact_alpha_name(method: Method) -> str:
    """The name of a fused method run with its exact per-step alpha instead of the LUT."""
    return f"{method} (exact alpha)"


def evaluate_ic(
    graph: LayerGraph,
    arch: Architecture,
    fusion: FusionComparison,
    test: Trace,
    ic: int,
    reference_correct: dict[int, np.ndarray],
    target_fraction: float = 0.99,
    bootstrap_config: BootstrapConfig | None = None,
    tuned_on: str = "",
) -> ICEvaluation:
    """Evaluate all methods on `test` for this IC from their per-image decisions (`fusion`,
    with parameters tuned on other images), with paired bootstrap intervals over the test
    images; reference_correct[head] (N,) is the reference's per-image correctness on them."""
    costs = chip_costs(arch, graph, ic, test)
    curves = {m: Curve(m, fusion.accuracy[m], costs.energy_pj[m]) for m in METHODS}
    exact = {
        m: Curve(exact_alpha_name(m), a, costs.energy_pj[m])
        for m, a in fusion.accuracy_exact.items()
    }
    reference = {h: float(np.mean(c)) for h, c in reference_correct.items()}
    target = target_fraction * reference[FC_HEAD]
    limit = curves[REFERENCE].energy_pj[-1]
    correct = {**fusion.correct, **{exact_alpha_name(m): c for m, c in fusion.exact.items()}}
    energy = {**costs.energy_pj, **{exact_alpha_name(m): costs.energy_pj[m] for m in exact}}
    boot = bootstrap(
        correct,
        energy,
        reference_correct[FC_HEAD],
        target_fraction,
        limit,
        baselines=tuple(b.method for b in BASELINES),
        config=bootstrap_config,
        unit=credit_unit(graph.classes),
    )
    return ICEvaluation(
        ic=ic,
        ann_accuracy=reference,
        target=target,
        curves=curves,
        summary=summarize(curves, target, limit, baseline=REFERENCE),
        fusion=fusion,
        energy=costs.energy,
        latency_ns=costs.latency_ns,
        timing=costs.timing,
        exact_curves=exact,
        bootstrap=boot,
        tuned_on=tuned_on,
    )


def tuned_on(cfg: EvaluationConfig, tune: Trace | None, test: Trace) -> str:
    """Where the tuned parameters of a run come from, in words (printed with every result)."""
    if tune is None:
        return (
            f"tuned by {cfg.folds}-fold cross-fitting on the {test.key.images} test images"
            " (each image decided with parameters tuned on the other folds)"
        )
    if cfg.tune_on is TuneSource.TRAIN:
        return f"tuned on {tune.key.images} training images (biased: the network has learnt them)"
    return f"tuned on {tune.key.images} validation images (held out of training)"


def evaluate(
    cfg: EvaluationConfig,
    session: Session,
    arch: Architecture,
    tune: Trace | None,
    test: Trace,
    ic: int,
    reference_correct: dict[int, np.ndarray],
    warn: WarnFn | None = None,
) -> ICEvaluation:
    """One IC: its parameters tuned on `tune` (or cross-fitted on `test`), then evaluated."""
    fc, icc = (test.sim.head_spikes[h] for h in (FC_HEAD, ic))
    ids = test.image_indices  # the random tie rule's draws follow the data set's images
    if tune is None:
        fc_cum, ic_cum = cumulative(fc), cumulative(icc)
        fusion = cross_fit(fc_cum, ic_cum, test.labels, cfg.tuning, cfg.folds, image_ids=ids)
    else:
        tuning = cache.tuning_for(tune, ic, cfg.trace_root, cfg.tuning, warn)
        fusion = compare_on_spikes(tuning, fc, icc, test.labels, image_ids=ids)
    return evaluate_ic(
        session.spec.graph(),
        arch,
        fusion,
        test,
        ic,
        reference_correct,
        cfg.target_fraction,
        cfg.bootstrap,
        tuned_on(cfg, tune, test),
    )


def tune_target(cfg: EvaluationConfig, session: Session, tune: Trace | None) -> float | None:
    """The target accuracy on the tuning images that early termination is tuned to: the same
    fraction of the ANN's FC accuracy on those images as the test target (None without a
    tuning trace)."""
    if tune is None:
        return None
    reference = session.reference_correct(tune, cfg.tuning.ties)[FC_HEAD]
    return cfg.target_fraction * float(np.mean(reference))


def cycle_evaluation(
    arch: Architecture,
    graph: LayerGraph,
    evaluation: ICEvaluation,
    test: Trace,
    tune: Trace | None,
    tune_target: float | None = None,
    progress: ProgressFn | None = None,
) -> CycleEvaluation:
    """Every method simulated cycle by cycle on the chip (`hwsim.pipeline.cycles`) over the test
    images' own activity, at its steps to the target, and, when the architecture has a
    fusion unit and the run a tuning trace, with early termination tuned to `tune_target`
    accuracy on the tuning images (the fixed-point unit's decisions, checked against the float
    fusion)."""
    act = test.sim.activity
    if act is None or act.per_image is None:
        raise TraceError(
            "the test trace has no per-image activity, which {timing} cycle needs; use"
            " {timing} analytic, or let hwsim run simulate the test images",
            params=("timing",),
        )
    classes, ic = graph.classes, evaluation.ic
    steps = {m: s.target.timestep for m, s in evaluation.summary.items()}
    fixed = {m: method_decision_cycles(arch, m, classes, stop=False) for m in METHODS}
    fusion = early = None
    if arch.fusion_unit is not None and tune is not None and tune_target is not None:
        fusion = fusion_hardware(
            arch,
            evaluation.fusion.tuning,
            ic,
            tune.sim.head_spikes,
            tune.labels,
            test.sim.head_spikes,
            test.labels,
            tune_target,
            evaluation.bootstrap.config,
            tune_ids=tune.image_indices,  # the random tie rule's draws follow the data set
            test_ids=test.image_indices,
        )
        early = {
            m: EarlyStop(
                r.stop_step - 1,
                r.accuracy,
                method_decision_cycles(arch, m, classes, stop=True),
                r.stop.target_met,
            )
            for m, r in fusion.terminations.items()
        }

    def on_run(done: int, total: int) -> None:
        if progress is not None:
            progress("chip", done, total)

    cycles = evaluate_cycles(
        arch, graph, ic, act, test.sim.head_spikes, steps, fixed, early_stop=early, on_run=on_run
    )
    energy = evaluation.energy
    share = fusion_unit_share(cycles, float(energy.fusion_pj.sum()), energy.total_pj)
    rows = tuple(
        dataclasses.replace(
            r, analytic_latency_ns=float(evaluation.latency_ns[r.method][int(r.steps_mean) - 1])
        )
        if r.point is OperatingPoint.FIXED
        else r
        for r in cycles.methods
    )
    return dataclasses.replace(cycles, methods=rows, fusion=fusion, fusion_share=share)


def simultaneous_rows(
    rows: Sequence[SweepRow],
    level: float,
    multiplicity: Multiplicity = Multiplicity.BONFERRONI,
    family: int | None = None,
) -> list[SweepRow]:
    """The rows with every R (each method against each baseline) given its interval
    simultaneous over the sweep's positions (`hwsim.metrics.simultaneous`) at `level`.

    `family`: the number of positions the intervals hold together over (None: len(rows)).
    Bonferroni needs only each row's own bootstrap samples, so a subset of the positions (one
    grid cell) gets the same intervals as the whole sweep; the max-type calibration reads all
    positions' samples jointly and needs every row of the family, computed in this process
    (a row read back from CSV has no samples)."""
    if not rows:
        return []
    multiplicity = Multiplicity(multiplicity)
    m = len(rows) if family is None else family
    out = [dict(r.methods) for r in rows]
    for method, outcome in rows[0].methods.items():
        for base in outcome.reductions:
            red = [r.methods[method].reductions[base] for r in rows]
            if any(x.estimate is None for x in red):
                raise ValueError("simultaneous intervals need the rows' bootstrap estimates")
            sim = simultaneous([x.estimate for x in red], level, multiplicity, m)
            for j, (x, e) in enumerate(zip(red, sim.intervals, strict=True)):
                ci = None if np.isnan(e.lo) else (e.lo, e.hi)
                fixed = dataclasses.replace(x, simultaneous_ci=ci)
                reductions = {**out[j][method].reductions, base: fixed}
                out[j][method] = dataclasses.replace(out[j][method], reductions=reductions)
    return [
        dataclasses.replace(r, methods=o, family=m, multiplicity=multiplicity)
        for r, o in zip(rows, out, strict=True)
    ]


def settings_digest(template: SweepConfig) -> str:
    """SHA-256 of every setting but the per-cell ones (model, arch, coding, IC positions)."""
    d = asdict(template)
    for key in ("model", "arch", "ic_positions"):
        d.pop(key)
    d["sim"].pop("coding")
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def ic_key(cfg: SweepConfig, model_sha256: str, ic: int) -> str:
    """The result store's key of one IC position of a sweep: the model's and the architecture
    file's SHA-256, the coding, every other setting (`settings_digest`), the IC and hwsim's
    version."""
    return content_key(
        what="sweep-ic",
        hwsim=__version__,
        model_sha256=model_sha256,
        arch_sha256=file_sha256(Path(cfg.arch)),
        coding=repr(cfg.sim.coding),
        settings=settings_digest(cfg),
        ic=ic,
    )


def _plain(value: Any) -> Any:
    """A NumPy scalar as its Python value, for JSON."""
    return value.item() if isinstance(value, np.generic) else value


def row_payload(row: SweepRow) -> dict[str, Any]:
    """The stored form of a sweep row: its CSV row and, per R, its value and bootstrap samples
    (float64, little-endian, base64), from which any simultaneous interval is read again."""
    samples = {}
    for m, outcome in row.methods.items():
        for b in BASELINES:
            r = outcome.reductions.get(b.method)
            if r is not None and r.estimate is not None:
                e = r.estimate
                raw = np.asarray(e.samples, "<f8").tobytes()
                samples[reduction_column(b, m)] = {
                    "value": float(e.value),
                    "samples": base64.b64encode(raw).decode("ascii"),
                }
    return {"row": {k: _plain(v) for k, v in row.to_dict().items()}, "samples": samples}


def row_of_payload(payload: dict[str, Any], level: float) -> SweepRow:
    """A stored sweep row (`row_payload`) with its R estimates at `level` (KeyError, TypeError
    or ValueError for a payload of another form)."""
    row = SweepRow.from_dict(payload["row"])
    methods = {}
    for m, outcome in row.methods.items():
        reductions = dict(outcome.reductions)
        for b in BASELINES:
            if b.method in reductions:
                stored = payload["samples"][reduction_column(b, m)]
                raw = np.frombuffer(base64.b64decode(stored["samples"]), "<f8")
                e = estimate(float(stored["value"]), raw.astype(np.float64), level)
                reductions[b.method] = dataclasses.replace(reductions[b.method], estimate=e)
        methods[m] = dataclasses.replace(outcome, reductions=reductions)
    return dataclasses.replace(row, methods=methods, family=0, multiplicity=None)


def _stored_rows(
    cfg: SweepConfig, session: Session, store: ResultStore, warn: WarnFn | None
) -> tuple[dict[int, str], dict[int, SweepRow]]:
    """The store keys of `cfg`'s IC positions (none without a store) and the rows stored."""
    if store.root is None:
        return {}, {}
    keys = {ic: ic_key(cfg, session.model_sha256, ic) for ic in cfg.ic_positions}
    rows = {}
    for ic, key in keys.items():
        payload = store.get(key)
        if payload is None:
            continue
        try:
            rows[ic] = row_of_payload(payload, cfg.bootstrap.level)
        except (KeyError, TypeError, ValueError) as e:
            if warn is not None:
                warn(f"{store.path(key)}: a stored sweep row of another form ({e}); computing it")
    return keys, rows


def evaluate_ics(
    cfg: SweepConfig,
    session: Session,
    *,
    on_row: Callable[[SweepRow], None] | None = None,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> list[SweepRow]:
    """Evaluate every IC position of `cfg` (in its order) on `session`, sharing the tuning and
    test traces; a position stored in the result store under cfg.trace_root (`ic_key`; None:
    no store) is read from it, the others computed and stored (the traces are read or
    simulated only if a position is computed)."""
    arch = cfg.architecture()
    session.check_ics(cfg.ic_positions, "ic_positions")
    store = ResultStore(cfg.trace_root, warn)
    keys, stored = _stored_rows(cfg, session, store, warn)
    shared: tuple[Trace | None, Trace, dict[int, np.ndarray]] | None = None
    rows = []
    for i, ic in enumerate(cfg.ic_positions):
        row = stored.get(ic)
        if row is None:
            if shared is None:
                tune, test = tune_and_test(cfg, session, arch, progress, warn)
                shared = (tune, test, session.reference_correct(test, cfg.tuning.ties))
            tune, test, reference = shared
            row = SweepRow.of(evaluate(cfg, session, arch, tune, test, ic, reference, warn))
            if ic in keys:
                store.put(keys[ic], row_payload(row))
        rows.append(row)
        if on_row is not None:
            on_row(row)
        if progress is not None:
            progress("ic", i + 1, len(cfg.ic_positions))
    return rows
