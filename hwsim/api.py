"""The typed API behind the CLI.

`trace` simulates a dataset split into a (cached) spike trace; `evaluate_ic` turns the tuning and
test traces into accuracy-vs-energy curves for one IC; `run` does both for one IC and `sweep` for
many; `estimate` gives the SpikeSim energy of an untrained geometry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from hwsim import __version__
from hwsim.atomic import atomic_write_text
from hwsim.coding import DirectCoding, InputCoding, PoissonCoding, WeightedSpikeCoding
from hwsim.convert import (
    ConversionParams,
    SpikingNetwork,
    convert,
    is_spiking_file,
    spiking_from_payload,
)
from hwsim.data import ImageSet, load_dataset
from hwsim.engine import BACKENDS, Activity, ActivitySpec, simulate
from hwsim.fusion import (
    DEFAULT_ALPHA_GRID,
    FixedPoint,
    FusionComparison,
    Tuning,
    compare_methods,
    cumulative,
    tune_methods,
)
from hwsim.graph import FC_HEAD, Layer, LayerGraph
from hwsim.hw.activity import LayerActivity, full_activity, fusion_activity
from hwsim.hw.arch import Architecture, EnergyModel, load_arch
from hwsim.hw.energy import EnergyBreakdown, RunEnergy, run_energy, spikesim_energy
from hwsim.hw.mapping import map_network
from hwsim.hw.noc import flit_hops, producer_traffic
from hwsim.hw.timing import TimingResult, latency_ns, run_timing
from hwsim.methods import METHODS, EvidencePooling, Heads, Method
from hwsim.metrics import Curve, Summary, summarize
from hwsim.nets import Checkpoint, checkpoint_from_payload, read_model_file
from hwsim.netspec import ModelError, NetSpec
from hwsim.trace import (
    Trace,
    TraceError,
    TraceKey,
    file_sha256,
    find_trace,
    indices_sha256,
    read_trace,
    trace_folder,
    write_trace,
)

ProgressFn = Callable[[str, int, int], None]
"""progress(stage, done, total) callback, e.g. a rich progress bar."""
WarnFn = Callable[[str], None]

DEFAULT_TRACE_ROOT = Path("traces")


@dataclass(frozen=True)
class SimConfig:
    """How a split is simulated; everything here but batch_size and threads is part of the
    trace key (backends differ in float summation order, so they key separately)."""

    timesteps: int = 300
    conversion: ConversionParams = ConversionParams()
    coding: InputCoding = DirectCoding()
    backend: str = "numba"
    activity: ActivitySpec | None = None  # crossbar activity counts (for the event energy model)
    batch_size: int = 250
    threads: int = 0  # numba threads; 0: all cores

    def __post_init__(self) -> None:
        if self.timesteps < 1:
            raise ValueError(f"--timesteps must be >= 1, got {self.timesteps}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.backend not in BACKENDS:
            raise ValueError(f"--backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")

    def engine_key(self) -> dict:
        return {
            "hwsim": __version__,
            "backend": self.backend,
            "activity": None if self.activity is None else asdict(self.activity),
        }


def coding_from_text(text: str, seed: int = 0) -> InputCoding:
    """'direct', 'poisson' or 'weighted:K' (K phases) -> an input coding."""
    name, _, arg = text.partition(":")
    if name == "direct" and not arg:
        return DirectCoding()
    if name == "poisson" and not arg:
        return PoissonCoding(seed=seed)
    if name == "weighted":
        try:
            return WeightedSpikeCoding(phases=int(arg or 8))
        except ValueError:
            pass
    raise ValueError(f"--coding {text!r}: expected direct, poisson or weighted:K (K phases)")


@dataclass
class Session:
    """A loaded checkpoint, its data and its converted SNN (converted once, lazily)."""

    model_path: Path
    ckpt: Checkpoint
    data_root: str | None
    conversion: ConversionParams
    _snn: SpikingNetwork | None = field(default=None, repr=False)
    _sha: str | None = field(default=None, repr=False)

    @classmethod
    def open(cls, model: Path, data_root: str | None, conversion: ConversionParams) -> Session:
        """A checkpoint (`hwsim train`) or a converted model (`hwsim convert --out`); the
        latter is used as converted, so `conversion` must be the one it was made with."""
        payload = read_model_file(model)
        if not is_spiking_file(payload):
            return cls(Path(model), checkpoint_from_payload(payload, model), data_root, conversion)
        ckpt, snn = spiking_from_payload(payload, model)
        if snn.params != conversion:
            raise ModelError(
                f"{model}: converted with {asdict(snn.params)}; this run asks for"
                f" {asdict(conversion)} (convert again, or pass the same --v0)"
            )
        return cls(Path(model), ckpt, data_root, conversion, _snn=snn)

    @property
    def spec(self) -> NetSpec:
        return self.ckpt.spec

    @property
    def model_sha256(self) -> str:
        if self._sha is None:
            self._sha = file_sha256(self.model_path)
        return self._sha

    def split(self, split: str) -> ImageSet:
        seed = int(self.ckpt.dataset.get("split_seed", 0))
        return load_dataset(self.ckpt.dataset["name"], split, self.data_root, seed=seed)

    @property
    def snn(self) -> SpikingNetwork:
        if self._snn is None:
            self._snn = convert(self.ckpt, self.split("train"), self.conversion)
        return self._snn

    def key(self, data: ImageSet, sim: SimConfig) -> TraceKey:
        return TraceKey(
            checkpoint_sha256=self.model_sha256,
            snn_fingerprint=self.snn.fingerprint(),
            conversion=asdict(self.conversion),
            coding={"name": type(sim.coding).__name__, **asdict(sim.coding)},
            timesteps=sim.timesteps,
            seed=int(getattr(sim.coding, "seed", 0)),
            dataset=data.name,
            split=data.split,
            image_indices_sha256=indices_sha256(data.indices),
            images=len(data),
            heads=self.spec.head_positions,
            engine=sim.engine_key(),
        )


def trace(
    session: Session,
    data: ImageSet,
    sim: SimConfig,
    *,
    trace_root: Path | None = DEFAULT_TRACE_ROOT,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
    stage: str = "simulate",
) -> Trace:
    """The trace of `data` under `sim`: a stored one with the same key, else simulated (and
    stored under trace_root unless it is None). Every head of the checkpoint is simulated, so
    one trace serves any IC."""
    key = session.key(data, sim)
    if trace_root is not None:
        try:
            cached = find_trace(trace_root, key)
        except TraceError as e:
            if warn is not None:
                warn(f"ignoring a damaged cached trace ({e}); recomputing")
            cached = None
        if cached is not None:
            return cached
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(stage, done, len(data))

    if progress is not None:
        progress(stage, 0, len(data))
    result = simulate(
        session.snn,
        data.x,
        sim.timesteps,
        batch_size=sim.batch_size,
        on_batch=tick,
        coding=sim.coding,
        backend=sim.backend,
        activity=sim.activity,
        image_ids=data.indices,
        threads=sim.threads,
    )
    out = Trace(key, data.y, data.indices, result)
    if trace_root is not None:
        write_trace(out, trace_folder(trace_root, key))
    return out


def load_given_trace(session: Session, folder: Path) -> Trace:
    """A user-given trace (`--trace DIR`), refused if corrupt or made from another model."""
    t = read_trace(folder)
    if t.key.checkpoint_sha256 != session.model_sha256:
        raise TraceError(
            f"{folder}: trace was made from a different checkpoint than {session.model_path}"
        )
    return t


@dataclass(frozen=True)
class ICEvaluation:
    """Accuracy and energy curves of every method for one IC, and their headline numbers."""

    ic: int
    ann_accuracy: dict[int, float]  # on the test images, per head
    target: float
    curves: dict[Method, Curve]
    summary: dict[Method, Summary]
    fusion: FusionComparison
    energy: RunEnergy  # per image and timestep: backbone + IC head + FC head + fusion unit
    latency_ns: dict[Method, np.ndarray]  # (T,): time to the method's output of timestep t
    timing: TimingResult


def layer_activity(graph: LayerGraph, activity: Activity, images: int) -> LayerActivity:
    """The hardware model's view of the engine's crossbar activity (sums over `images`) for the
    layers of `graph`.

    A SpikeSim PE operation is a (output position, input row group, column block) read, the
    engine's `active_windows`. Output spikes are those a layer sends at t, i.e. fired at t - 1
    (the one-step delay); a layer that sends no spikes (a residual skip conv) sends none.
    """
    cols = [activity.names.index(name) for name in graph.names]
    fired = np.asarray(activity.out_spikes, np.int64)[:, cols]
    sent = np.zeros_like(fired)
    sent[1:] = fired[:-1]
    sent[:, [not g.sends_spikes for g in graph.layers]] = 0
    return LayerActivity(
        layer_names=graph.names,
        images=images,
        active_pe_ops=activity.active_windows[:, cols],
        input_spikes=activity.in_spikes[:, cols],
        output_spikes=sent,
    )


def chip_activity(arch: Architecture, chip: LayerGraph, test: Trace) -> LayerActivity:
    """The activity `arch.energy_model` charges on `chip`: every PE operation every step
    (spikesim), or what the test trace's spikes caused (event)."""
    steps, images = test.key.timesteps, test.key.images
    if arch.energy_model is EnergyModel.SPIKESIM:
        return full_activity(arch, chip.layers, steps, images)
    act = test.sim.activity
    if (
        act is None
        or act.spec.rows_per_crossbar != arch.crossbar.rows
        or act.spec.mapping != str(arch.mapping.style)
    ):
        raise TraceError(
            "the test trace has no crossbar activity for this architecture; the event energy"
            " model needs a trace simulated with it (hwsim run does this by itself)"
        )
    return layer_activity(chip, act, images)


@dataclass(frozen=True)
class ChipCosts:
    """What each method costs on the chip that holds the backbone, the IC head and the FC head.

    `energy_pj[m]` (T,): cumulative energy per image of the layers method m keeps busy (and the
    fusion unit, when it uses it); `latency_ns[m]` (T,): time until the outputs it needs of
    timestep t reach the fusion unit; `energy` and `timing`: the whole chip's run.
    """

    energy_pj: dict[Method, np.ndarray]
    latency_ns: dict[Method, np.ndarray]
    energy: RunEnergy
    timing: TimingResult


def chip_costs(arch: Architecture, graph: LayerGraph, ic: int, test: Trace) -> ChipCosts:
    """Per method (`hwsim.methods.METHODS`), energy and latency on the chip of `graph`'s
    backbone + IC `ic` + FC, under arch.energy_model, from the test trace.

    A method pays for the layers its heads need (`LayerGraph.layers_to_head`: DL the backbone
    and FC head; SL the backbone up to the IC's tap and the IC head; the others the whole
    chip) and the fusion unit if it uses one (its counters, alpha LUT, posterior multiplies and
    compares, when the arch has a fusion unit).
    """
    chip = graph.with_heads({ic, FC_HEAD})
    fusion = None
    if arch.fusion_unit is not None:
        fusion = fusion_activity(
            chip.classes,
            test.sim.head_spikes[ic].sum(axis=(0, 2)),
            test.sim.head_spikes[FC_HEAD].sum(axis=(0, 2)),
            test.key.images,
        )
    activity = chip_activity(arch, chip, test)
    mapping = map_network(arch, chip)
    traffic = producer_traffic(mapping)
    hops = flit_hops(activity, traffic) if arch.energy_model is EnergyModel.EVENT else None
    energy = run_energy(arch, chip.layers, activity, noc_flit_hops=hops, fusion=fusion)
    timing = run_timing(arch, chip, activity, mapping, traffic=traffic)
    per_layer = energy.energy_pj.sum(axis=2)  # (T, L) pJ per image
    heads = {Heads.FC: (FC_HEAD,), Heads.IC: (ic,), Heads.BOTH: (ic, FC_HEAD)}
    energies: dict[Method, np.ndarray] = {}
    latency: dict[Method, np.ndarray] = {}
    for method, spec in METHODS.items():
        paid = {g.name for h in heads[spec.heads] for g in chip.layers_to_head(h)}
        mask = np.array([name in paid for name in chip.names])
        cumulative_pj = np.cumsum(per_layer[:, mask].sum(axis=1))
        if spec.fusion_unit:
            cumulative_pj = cumulative_pj + np.cumsum(energy.fusion_pj)
        energies[method] = cumulative_pj
        outputs = {chip.head_output(h).name for h in heads[spec.heads]}
        latency[method] = latency_ns(timing, outputs)
    return ChipCosts(energies, latency, energy, timing)


def tuning_params(pooling: EvidencePooling) -> dict:
    """The tuning settings; a stored tuning is reused only if it was made with the same."""
    return {
        "grid": list(DEFAULT_ALPHA_GRID),
        "estimator": "mean",
        "knots": "breakpoints(T): every 10 steps to 500, every 100 after",
        "lut": asdict(FixedPoint()),
        "evidence_pooling": str(pooling),
    }


def tuning_path(
    trace_root: Path, tune: Trace, ic: int, pooling: EvidencePooling = EvidencePooling.JOINT
) -> Path:
    """Where the tuning of `ic` on `tune` is stored: beside the tuning trace."""
    return trace_folder(trace_root, tune.key) / f"tuning-ic{ic}-{pooling}.json"


def tuning_for(
    tune: Trace,
    ic: int,
    trace_root: Path | None = None,
    pooling: EvidencePooling = EvidencePooling.JOINT,
) -> Tuning:
    """alpha(t) (grid, empirical Bayes; PWL and LUT) and early-exit thresholds for `ic`, tuned
    on the `tune` trace; read from / written to trace_root when given."""
    params = tuning_params(pooling)
    path = tuning_path(trace_root, tune, ic, pooling) if trace_root is not None else None
    if path is not None and path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored["tune_key_sha256"] == tune.key.digest() and stored["params"] == params:
                return Tuning.from_dict(stored["tuning"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            pass  # a damaged or foreign file is recomputed and replaced
    fc, icc = (cumulative(tune.sim.head_spikes[h]) for h in (FC_HEAD, ic))
    tuning = tune_methods(fc, icc, tune.labels, grid=params["grid"], pooling=pooling)
    if path is not None:
        payload = {
            "ic": ic,
            "tune_key_sha256": tune.key.digest(),
            "params": params,
            "tuning": tuning.to_dict(),
        }
        atomic_write_text(path, json.dumps(payload))
    return tuning


@dataclass(frozen=True)
class TuneResult:
    """The tuning trace, and per IC its tuning and where it is stored (None: not stored)."""

    trace: Trace
    tunings: dict[int, Tuning]
    paths: dict[int, Path | None]


def tune(
    session: Session,
    sim: SimConfig,
    ics: Sequence[int] | None = None,
    *,
    tune_images: int = 1000,
    trace_root: Path | None = DEFAULT_TRACE_ROOT,
    pooling: EvidencePooling = EvidencePooling.JOINT,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> TuneResult:
    """Tune every IC of `ics` (None: all of the checkpoint's) on the first `tune_images`
    training images; with trace_root None nothing is read from or written to disk."""
    ics = tuple(session.spec.ic_positions if ics is None else ics)
    for ic in ics:
        _check_ic(session.spec, ic)
    train = session.split("train")
    data = train.take(min(tune_images, len(train)))
    t = trace(session, data, sim, trace_root=trace_root, progress=progress, warn=warn, stage="tune")
    tunings = {ic: tuning_for(t, ic, trace_root, pooling) for ic in ics}
    paths = {
        ic: None if trace_root is None else tuning_path(trace_root, t, ic, pooling) for ic in ics
    }
    return TuneResult(t, tunings, paths)


def _check_ic(spec: NetSpec, ic: int) -> None:
    if ic not in spec.ic_positions:
        raise ModelError(
            f"no IC head at block {ic}; the checkpoint has ICs at"
            f" {', '.join(map(str, spec.ic_positions)) or 'none'}"
        )


def evaluate_ic(
    spec: NetSpec,
    arch: Architecture,
    tuning: Tuning,
    test: Trace,
    ic: int,
    ann_accuracy: dict[int, float],
    target_fraction: float = 0.99,
) -> ICEvaluation:
    """Evaluate all methods on `test` for this IC with parameters tuned beforehand."""
    _check_ic(spec, ic)
    test_fc, test_ic = (cumulative(test.sim.head_spikes[h]) for h in (FC_HEAD, ic))
    fusion = compare_methods(tuning, test_fc, test_ic, test.labels)
    costs = chip_costs(arch, spec.graph(), ic, test)
    curves = {m: Curve(m, fusion.accuracy[m], costs.energy_pj[m]) for m in METHODS}
    target = target_fraction * ann_accuracy[FC_HEAD]
    limit = curves[Method.DL].energy_pj[-1]
    return ICEvaluation(
        ic=ic,
        ann_accuracy=ann_accuracy,
        target=target,
        curves=curves,
        summary=summarize(curves, target, limit, baseline=Method.DL),
        fusion=fusion,
        energy=costs.energy,
        latency_ns=costs.latency_ns,
        timing=costs.timing,
    )


def ann_accuracy(ckpt: Checkpoint, data: ImageSet, indices: np.ndarray) -> dict[int, float]:
    """ANN accuracy of every head on the images of `data` whose rows are `indices`."""
    pos = {int(r): i for i, r in enumerate(data.indices)}
    try:
        rows = np.array([pos[int(r)] for r in indices])
    except KeyError as e:
        raise TraceError(
            f"trace image row {e} is not in the {data.name} {data.split} split"
        ) from None
    net = ckpt.build()
    with torch.no_grad():
        out = net(torch.from_numpy(data.x[rows]))
    y = data.y[rows]
    return {h: float((v.argmax(1).numpy() == y).mean()) for h, v in out.items()}


def choose_ic(ckpt: Checkpoint, target_fraction: float) -> int:
    """The shallowest IC whose ANN accuracy reaches target_fraction x the FC's; else the best."""
    ics = list(ckpt.spec.ic_positions)
    if not ics:
        raise ModelError("the checkpoint has no IC heads; train one with `hwsim train --ic ...`")
    goal = target_fraction * ckpt.fc_accuracy
    good = [i for i in sorted(ics) if ckpt.accuracy.get(i, 0.0) >= goal]
    return good[0] if good else max(ics, key=lambda i: ckpt.accuracy.get(i, 0.0))


@dataclass(frozen=True)
class EvaluationConfig:
    """What `run` and `sweep` share: the files, how the splits are simulated and tuned, and the
    energy model."""

    arch: Path
    model: Path
    sim: SimConfig = SimConfig()
    images: int | None = None  # test images (None: the whole test split)
    tune_images: int = 1000  # training images for alpha selection
    target_fraction: float = 0.99  # of the ANN's FC accuracy on the same test images
    data_root: str | None = None
    trace_root: Path | None = DEFAULT_TRACE_ROOT  # None: no trace cache
    pooling: EvidencePooling = EvidencePooling.JOINT  # empirical Bayes pooling (BSF-Emp)
    energy_model: EnergyModel | None = None  # None: the architecture file's


@dataclass(frozen=True)
class RunConfig(EvaluationConfig):
    """What `hwsim run` simulates: one IC."""

    ic: int | None = None  # None: the shallowest IC whose ANN accuracy reaches the target
    test_trace: Path | None = None  # a given test trace (`--trace DIR`)


@dataclass(frozen=True)
class RunResult:
    """Everything `hwsim run` reports."""

    config: RunConfig
    arch: Architecture
    spec: NetSpec
    evaluation: ICEvaluation
    test: Trace
    seconds: float

    @property
    def ic(self) -> int:
        return self.evaluation.ic


def _tune_and_test(
    cfg: EvaluationConfig,
    session: Session,
    arch: Architecture,
    progress: ProgressFn | None,
    warn: WarnFn | None,
    test_trace: Path | None = None,
) -> tuple[Trace, Trace]:
    """The tuning trace (training images) and the test trace; the test trace carries crossbar
    activity when the event energy model needs it."""
    train_set = session.split("train")
    tune_set = train_set.take(min(cfg.tune_images, len(train_set)))
    kw = {"trace_root": cfg.trace_root, "progress": progress, "warn": warn}
    tune = trace(session, tune_set, cfg.sim, stage="tune", **kw)
    if test_trace is not None:
        return tune, load_given_trace(session, test_trace)
    test_set = session.split("test")
    if cfg.images is not None:
        test_set = test_set.take(cfg.images)
    test_sim = cfg.sim
    if arch.energy_model is EnergyModel.EVENT:
        spec = ActivitySpec(
            rows_per_crossbar=arch.crossbar.rows,
            cols_per_crossbar=arch.crossbar.cols,
            mapping=str(arch.mapping.style),
        )
        test_sim = dataclasses.replace(cfg.sim, activity=spec)
    return tune, trace(session, test_set, test_sim, stage="test", **kw)


def load_run_arch(path: Path, energy_model: EnergyModel | None) -> Architecture:
    """The architecture of a run, its energy model overridden if asked."""
    arch = load_arch(path)
    if energy_model is not None:
        arch = dataclasses.replace(arch, energy_model=energy_model)
    return arch


def run(
    cfg: RunConfig, progress: ProgressFn | None = None, warn: WarnFn | None = None
) -> RunResult:
    """Convert, simulate (or reuse traces), tune on training images, report one IC."""
    start = time.perf_counter()
    arch = load_run_arch(cfg.arch, cfg.energy_model)
    session = Session.open(cfg.model, cfg.data_root, cfg.sim.conversion)
    ic = choose_ic(session.ckpt, cfg.target_fraction) if cfg.ic is None else cfg.ic
    _check_ic(session.spec, ic)
    tune, test = _tune_and_test(cfg, session, arch, progress, warn, cfg.test_trace)
    ann = ann_accuracy(session.ckpt, session.split(test.key.split), test.image_indices)
    tuning = tuning_for(tune, ic, cfg.trace_root, cfg.pooling)
    evaluation = evaluate_ic(session.spec, arch, tuning, test, ic, ann, cfg.target_fraction)
    return RunResult(cfg, arch, session.spec, evaluation, test, time.perf_counter() - start)


@dataclass(frozen=True)
class EstimateResult:
    spec: NetSpec
    arch: Architecture
    layers: tuple[Layer, ...]
    energy: EnergyBreakdown


def estimate(arch_path: Path, spec: NetSpec) -> EstimateResult:
    """SpikeSim energy per timestep of an untrained geometry (no checkpoint needed)."""
    arch = load_arch(arch_path)
    layers = tuple(spec.graph().layers)
    return EstimateResult(spec, arch, layers, spikesim_energy(arch, layers))


@dataclass(frozen=True)
class SweepConfig(EvaluationConfig):
    """What `hwsim sweep` evaluates: one run per IC position, sharing the traces."""

    ic_positions: tuple[int, ...] = ()

    def digest(self) -> str:
        """Identity of everything that determines a sweep row (for resuming)."""
        d = asdict(self)
        d.pop("ic_positions")
        d["model_sha256"] = file_sha256(self.model)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class MethodOutcome:
    """One method's headline numbers for one IC: target crossing (None: not reached within T),
    its energy (pJ per image), normalised AUC, and R (eq. 33, against DL; None for DL)."""

    timestep: int | None
    energy_pj: float | None
    auc: float
    reduction_pct: float | None


@dataclass(frozen=True)
class SweepRow:
    """One IC position of a sweep."""

    ic: int
    ann_accuracy_ic: float
    ann_accuracy_fc: float
    target_accuracy: float
    methods: dict[Method, MethodOutcome]

    @classmethod
    def of(cls, ev: ICEvaluation) -> SweepRow:
        return cls(
            ev.ic,
            ev.ann_accuracy[ev.ic],
            ev.ann_accuracy[FC_HEAD],
            ev.target,
            {
                m: MethodOutcome(s.target.timestep, s.target.energy_pj, s.auc, s.reduction_pct)
                for m, s in ev.summary.items()
            },
        )

    def to_dict(self) -> dict[str, float | int | None]:
        """The CSV row (docs/outputs.md): per method timestep_x, energy_x_pj, auc_x and
        reduction_x_pct (not for DL), x = `Method.key`."""
        row: dict[str, float | int | None] = {
            "ic": self.ic,
            "ann_accuracy_ic": self.ann_accuracy_ic,
            "ann_accuracy_fc": self.ann_accuracy_fc,
            "target_accuracy": self.target_accuracy,
        }
        for m, o in self.methods.items():
            row[f"timestep_{m.key}"] = o.timestep
            row[f"energy_{m.key}_pj"] = o.energy_pj
            row[f"auc_{m.key}"] = o.auc
            if m is not Method.DL:
                row[f"reduction_{m.key}_pct"] = o.reduction_pct
        return row

    @classmethod
    def from_dict(cls, row: dict) -> SweepRow:
        """A row read back from CSV (NaN: not reached)."""

        def opt(key: str) -> float | None:
            v = row.get(key)
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        methods = {}
        for m in METHODS:
            step = opt(f"timestep_{m.key}")
            methods[m] = MethodOutcome(
                None if step is None else int(step),
                opt(f"energy_{m.key}_pj"),
                float(row[f"auc_{m.key}"]),
                None if m is Method.DL else opt(f"reduction_{m.key}_pct"),
            )
        return cls(
            int(row["ic"]),
            float(row["ann_accuracy_ic"]),
            float(row["ann_accuracy_fc"]),
            float(row["target_accuracy"]),
            methods,
        )


SWEEP_STATE_FILE = "sweep.partial.csv"
"""Rows of an unfinished sweep, with the digest of its config, in its output folder."""


def sweep_state(cfg: SweepConfig, out_dir: Path) -> dict[int, SweepRow]:
    """The rows an interrupted sweep with the same config left in out_dir (else none)."""
    path = out_dir / SWEEP_STATE_FILE
    if not path.is_file():
        return {}
    import pandas as pd

    try:
        frame = pd.read_csv(path)
        if "config_digest" not in frame or not (frame["config_digest"] == cfg.digest()).all():
            return {}
        rows = [SweepRow.from_dict(r.to_dict()) for _, r in frame.iterrows()]
    except (ValueError, KeyError, pd.errors.ParserError) as e:
        raise ValueError(
            f"{path}: a damaged sweep state file ({e}); delete it to start the sweep afresh"
        ) from None
    return {r.ic: r for r in rows}


@dataclass(frozen=True)
class SweepResult:
    rows: list[SweepRow]  # in the order of cfg.ic_positions
    resumed: int  # rows taken from an interrupted sweep's state file
    paths: list[Path]  # files written into the output folder


def sweep(
    cfg: SweepConfig,
    out_dir: Path | None = None,
    *,
    on_row: Callable[[SweepRow], None] | None = None,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> SweepResult:
    """Evaluate every IC position. With `out_dir`, each new row is saved at once in its state
    file (`SWEEP_STATE_FILE`), positions already there for the same config are kept as they
    are (an interrupted sweep resumes), and when all are done sweep.csv and the figure are
    written and the state file removed."""
    from hwsim.report import write_csv, write_sweep

    arch = load_run_arch(cfg.arch, cfg.energy_model)
    session = Session.open(cfg.model, cfg.data_root, cfg.sim.conversion)
    missing = [p for p in cfg.ic_positions if p not in session.spec.ic_positions]
    if missing:
        raise ModelError(
            f"{cfg.model}: no IC head at block(s) {', '.join(map(str, missing))}; the checkpoint"
            f" has ICs at {', '.join(map(str, session.spec.ic_positions)) or 'none'}"
        )
    done = sweep_state(cfg, out_dir) if out_dir is not None else {}
    resumed = len(done)
    digest = cfg.digest()
    todo = [p for p in cfg.ic_positions if p not in done]
    if todo:
        tune, test = _tune_and_test(cfg, session, arch, progress, warn)
        ann = ann_accuracy(session.ckpt, session.split("test"), test.image_indices)
        for i, ic in enumerate(todo):
            tuning = tuning_for(tune, ic, cfg.trace_root, cfg.pooling)
            ev = evaluate_ic(session.spec, arch, tuning, test, ic, ann, cfg.target_fraction)
            done[ic] = SweepRow.of(ev)
            if out_dir is not None:
                import pandas as pd

                state = [dict(r.to_dict(), config_digest=digest) for r in done.values()]
                write_csv(pd.DataFrame(state), out_dir / SWEEP_STATE_FILE)
            if on_row is not None:
                on_row(done[ic])
            if progress is not None:
                progress("ic", i + 1, len(todo))
    rows = [done[p] for p in cfg.ic_positions]
    paths: list[Path] = []
    if out_dir is not None:
        spec = session.spec
        paths = write_sweep([r.to_dict() for r in rows], out_dir, f"{spec.name} w={spec.width:g}")
        (out_dir / SWEEP_STATE_FILE).unlink(missing_ok=True)
    return SweepResult(rows, resumed, paths)
