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
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from hwsim import __version__
from hwsim.atomic import atomic_write_text
from hwsim.engine import BACKENDS, ActivitySpec, SimResult, simulate
from hwsim.engine.trace import (
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
from hwsim.errors import HwsimError
from hwsim.fusion import (
    FusionComparison,
    TuneSource,
    Tuning,
    TuningConfig,
    compare_methods,
    cross_fit,
    cumulative,
    decide,
    tune_methods,
)
from hwsim.hw.activity import LayerActivity, full_activity
from hwsim.hw.arch import Architecture, EnergyModel, load_arch
from hwsim.hw.energy import EnergyBreakdown, RunEnergy, run_energy, spikesim_energy
from hwsim.hw.fusion_unit import fusion_events
from hwsim.hw.mapping import ChipMapping, map_network
from hwsim.hw.noc import producer_traffic
from hwsim.hw.synapse import FunctionalConfig
from hwsim.hw.timing import TimingResult, latency_ns, run_timing
from hwsim.methods import METHODS, Heads, Method
from hwsim.metrics import (
    BootstrapConfig,
    BootstrapResult,
    Curve,
    CurveEstimates,
    Estimate,
    Summary,
    bootstrap,
    summarize,
)
from hwsim.model.coding import DirectCoding, InputCoding, PoissonCoding, WeightedSpikeCoding
from hwsim.model.convert import (
    ConversionError,
    ConversionParams,
    SpikingNetwork,
    convert,
    is_spiking_file,
    spiking_from_payload,
)
from hwsim.model.data import (
    DATASETS,
    ImageSet,
    dataset_input_shape,
    dataset_num_classes,
    load_dataset,
)
from hwsim.model.graph import FC_HEAD, Layer, LayerGraph
from hwsim.model.nets import Checkpoint, checkpoint_from_payload, read_model_file
from hwsim.model.netspec import ModelError, NetSpec
from hwsim.model.nir_io import ImportedSpec, NirOptions, is_nir_path, read_nir
from hwsim.pipeline.cycles import (
    CycleEvaluation,
    EarlyStop,
    OperatingPoint,
    TimingModel,
    evaluate_cycles,
    fusion_hardware,
    fusion_unit_share,
    method_decision_cycles,
)
from hwsim.pipeline.hardware import (
    FunctionalRun,
    Hardware,
    activity_spec,
    chip_simulation,
    layer_activity,
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
    hardware: FunctionalRun | None = None  # simulate on the mapped chip (--hardware functional)
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
            "hardware": None if self.hardware is None else self.hardware.key(),
        }


def available_memory_bytes() -> int:
    """Memory the system can still give this process (MemAvailable), bytes."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def result_bytes(graph: LayerGraph, images: int, sim: SimConfig) -> int:
    """Bytes of a simulation's result arrays: head spikes (1 B per image, step, class and
    head), per-layer spike counts and activity sums (8 B per step and layer), and per-image
    activity when asked (12 B per image, step and layer)."""
    steps, layers = sim.timesteps, len(graph.layers)
    heads = images * steps * graph.classes * len(graph.heads)
    sums = 8 * steps * (len(graph.populations()) + 3 * layers)
    per_image = 16 * images * steps * layers if sim.activity and sim.activity.per_image else 0
    return heads + sums + per_image


def check_memory(graph: LayerGraph, images: int, sim: SimConfig) -> None:
    """Refuse, before simulating, a run whose results cannot fit in the memory left."""
    need, have = result_bytes(graph, images, sim), available_memory_bytes()
    if need > 0.8 * have:
        raise HwsimError(
            f"{images} images x {sim.timesteps} timesteps need about {need / 2**30:.1f} GiB for"
            f" their spike records, more than the {have / 2**30:.1f} GiB available; use fewer"
            " --images or --timesteps"
        )


def take_images(data: ImageSet, n: int, what: str = "--images") -> ImageSet:
    """The first `n` images of `data`, or an error naming `what` and the split's size."""
    if not 1 <= n <= len(data):
        raise HwsimError(
            f"{what} {n}: the {data.name} {data.split} split has {len(data)} images;"
            f" expected 1..{len(data)}"
        )
    return data.take(n)


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
    """A loaded checkpoint, its data and its converted SNN (converted once, lazily).

    A network imported from a NIR file (`hwsim.model.nir_io`, docs/nir.md) has no checkpoint
    (`ckpt` None): it is spiking already, its images come from `dataset`, and having no ANN,
    its reference accuracy is its own SNN's at the final timestep (`reference_correct`).
    """

    model_path: Path
    ckpt: Checkpoint | None
    data_root: str | None
    conversion: ConversionParams
    _snn: SpikingNetwork | None = field(default=None, repr=False)
    _sha: str | None = field(default=None, repr=False)
    dataset: str | None = None  # an imported network's dataset (a checkpoint has its own)

    @classmethod
    def open(
        cls,
        model: Path,
        data_root: str | None,
        conversion: ConversionParams,
        nir: NirOptions | None = None,
    ) -> Session:
        """A checkpoint (`hwsim train`), a converted model (`hwsim convert --out`) or a NIR
        file (`.nir`, run on the images of `nir.dataset`); a converted model is used as
        converted, so `conversion` must be the one it was made with."""
        nir = nir or NirOptions()
        if is_nir_path(model):
            return cls._open_nir(Path(model), data_root, conversion, nir)
        if nir != NirOptions():
            raise ModelError(
                f"{model}: --dataset and --fc-output apply to NIR models (.nir); a checkpoint"
                " brings its own dataset and classifier heads"
            )
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

    @classmethod
    def _open_nir(
        cls, model: Path, data_root: str | None, conversion: ConversionParams, nir: NirOptions
    ) -> Session:
        if nir.dataset is None:
            raise ModelError(
                f"{model}: a NIR file carries no images; name the dataset it classifies with"
                f" --dataset ({', '.join(DATASETS)})"
            )
        snn = read_nir(
            model,
            nir,
            input_shape=dataset_input_shape(nir.dataset),
            num_classes=dataset_num_classes(nir.dataset),
            v0=conversion.v0,
        )
        return cls(model, None, data_root, conversion, _snn=snn, dataset=nir.dataset)

    @property
    def spec(self) -> NetSpec | ImportedSpec:
        return self.snn.spec if self.ckpt is None else self.ckpt.spec

    @property
    def validation_images(self) -> int:
        """Training images held out as the validation split (0: none, as for an imported
        network)."""
        return 0 if self.ckpt is None else self.ckpt.validation_images

    def reference_correct(self, test: Trace) -> dict[int, np.ndarray]:
        """Per head, whether the reference that the target accuracy is a fraction of
        classifies each test image correctly ((N,) bool): the ANN of a checkpoint; for an
        imported network, which has no ANN, its SNN at the test trace's final timestep (spike
        counts over all T steps, a tie wrong)."""
        if self.ckpt is None:
            return {
                h: decide(s.sum(axis=1, dtype=np.int64)) == test.labels
                for h, s in test.sim.head_spikes.items()
            }
        return ann_correct(self.ckpt, self.split(test.key.split), test.image_indices)

    def default_ic(self, target_fraction: float) -> int:
        """The IC `run` evaluates when none is given: `choose_ic` for a checkpoint; an
        imported network, without ANN accuracies to choose by, needs one IC or `--ic`."""
        if self.ckpt is not None:
            return choose_ic(self.ckpt, target_fraction)
        ics = self.spec.ic_positions
        if len(ics) != 1:
            raise ModelError(
                f"{self.model_path}: {len(ics)} IC heads ({', '.join(map(str, ics)) or 'none'});"
                " name one with --ic (an imported network has no ANN accuracies to choose by;"
                " a NIR file gives ICs as extra Output nodes)"
            )
        return ics[0]

    @property
    def model_sha256(self) -> str:
        if self._sha is None:
            self._sha = file_sha256(self.model_path)
        return self._sha

    def split(self, split: str) -> ImageSet:
        """The checkpoint's train, validation or test split, checked against the rows it
        recorded at training (an imported network: its dataset's own split)."""
        if self.ckpt is None:
            return load_dataset(str(self.dataset), split, self.data_root)
        seed = int(self.ckpt.dataset.get("split_seed", 0))
        data = load_dataset(
            self.ckpt.dataset["name"],
            split,
            self.data_root,
            seed=seed,
            validation=self.ckpt.validation_images,
        )
        self.ckpt.check_split(data, self.model_path)
        return data

    @property
    def snn(self) -> SpikingNetwork:
        if self._snn is None:
            try:
                self._snn = convert(self.ckpt, self.split("train"), self.conversion)
            except ConversionError as e:
                raise ConversionError(f"{self.model_path}: {e}") from None
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

    check_memory(session.snn.graph, len(data), sim)
    if progress is not None:
        progress(stage, 0, len(data))
    if sim.hardware is not None:
        result = _chip_trace(session, data, sim, tick)
    else:
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


def _chip_trace(
    session: Session, data: ImageSet, sim: SimConfig, tick: Callable[[int], None]
) -> SimResult:
    """`data` simulated on the mapped chip (`pipeline.hardware.chip_simulation`), calibrated on
    the first training images; direct coding only (the crossbars read the image bit-serially)."""
    assert sim.hardware is not None
    if not isinstance(sim.coding, DirectCoding):
        raise ValueError("--hardware functional reads the analog image: use --coding direct")
    calibration = session.split("train").x[: sim.hardware.calibration_images]
    return chip_simulation(
        session.snn,
        data.x,
        sim.timesteps,
        sim.hardware,
        calibration,
        batch_size=sim.batch_size,
        on_batch=tick,
    )


def load_given_trace(session: Session, folder: Path, sim: SimConfig) -> Trace:
    """A user-given test trace (`--trace DIR`), refused (naming the mismatch) if corrupt or
    made from another model, split, conversion or coding, or shorter than the run; a longer
    one is cut to the run's timesteps."""
    t = read_trace(folder)
    want = session.key(session.split("test").take(1), sim)
    checks = (
        ("checkpoint", t.key.checkpoint_sha256, session.model_sha256),
        ("split", t.key.split, "test"),
        ("dataset", t.key.dataset, want.dataset),
        ("conversion (--v0)", t.key.conversion, want.conversion),
        ("coding (--coding, --seed)", t.key.coding, want.coding),
    )
    for what, got, expected in checks:
        if got != expected:
            shown = (got, expected) if what != "checkpoint" else ("another", session.model_path)
            raise TraceError(
                f"--trace {folder}: made with {what} {shown[0]}; the run uses {shown[1]}"
            )
    if t.key.timesteps < sim.timesteps:
        raise TraceError(
            f"--trace {folder}: {t.key.timesteps} timesteps; the run needs {sim.timesteps}"
            " (--timesteps), so simulate a longer trace or run fewer steps"
        )
    return t.prefix(sim.timesteps)


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
    exact_curves: dict[Method, Curve]  # the fused methods with the exact per-step alpha
    bootstrap: BootstrapResult  # intervals; curves keyed by method and `exact_alpha_name`
    tuned_on: str  # where the tuned parameters come from, in words


def chip_activity(mapping: ChipMapping, test: Trace) -> LayerActivity:
    """The activity the mapped chip's `energy_model` charges: every PE operation every step
    (spikesim), or what the test trace's spikes caused (event)."""
    arch, chip = mapping.arch, mapping.graph
    steps, images = test.key.timesteps, test.key.images
    if arch.energy_model is EnergyModel.SPIKESIM:
        return full_activity(mapping, steps, images)
    act = test.sim.activity
    wanted = activity_spec(arch)
    if act is None or dataclasses.replace(act.spec, per_image=False) != wanted:
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
    chip), the NoC traffic among them (`RunEnergy.method_pj`: DL never pays for spikes sent to
    the IC head) and the fusion unit if it uses one (its counters, alpha LUT, posterior
    multiplies and compares, when the arch has a fusion unit).
    """
    chip = graph.with_heads({ic, FC_HEAD})
    fusion = None
    if arch.fusion_unit is not None:
        fusion = fusion_events(  # every image decided every step: no stop test
            arch.fusion_unit,
            chip.classes,
            test.sim.head_spikes[ic].sum(axis=(0, 2)),
            test.sim.head_spikes[FC_HEAD].sum(axis=(0, 2)),
            test.key.images,
            terminate=False,
        )
    mapping = map_network(arch, chip)
    activity = chip_activity(mapping, test)
    traffic = producer_traffic(mapping)
    energy = run_energy(mapping, activity, traffic=traffic, fusion=fusion)
    timing = run_timing(mapping, activity, traffic=traffic)
    heads = {Heads.FC: (FC_HEAD,), Heads.IC: (ic,), Heads.BOTH: (ic, FC_HEAD)}
    energies: dict[Method, np.ndarray] = {}
    latency: dict[Method, np.ndarray] = {}
    for method, spec in METHODS.items():
        paid = {g.name for h in heads[spec.heads] for g in chip.layers_to_head(h)}
        energies[method] = np.cumsum(energy.method_pj(paid, spec.fusion_unit))
        outputs = {chip.head_output(h).name for h in heads[spec.heads]}
        latency[method] = latency_ns(timing, outputs)
    return ChipCosts(energies, latency, energy, timing)


def tuning_path(trace_root: Path, tune: Trace, ic: int, config: TuningConfig | None = None) -> Path:
    """Where the tuning of `ic` on `tune` is stored: beside the tuning trace (one file per
    pooling; the other settings are checked when it is read)."""
    pooling = (config or TuningConfig()).pooling
    return trace_folder(trace_root, tune.key) / f"tuning-ic{ic}-{pooling}.json"


def _tuning_digest(tuning: dict) -> str:
    return hashlib.sha256(json.dumps(tuning, sort_keys=True).encode()).hexdigest()


def tuning_for(
    tune: Trace,
    ic: int,
    trace_root: Path | None = None,
    config: TuningConfig | None = None,
    warn: WarnFn | None = None,
) -> Tuning:
    """alpha(t) (grid, empirical Bayes; PWL and LUT) and early-exit thresholds for `ic`, tuned
    on the `tune` trace; read from / written to trace_root when given. A stored tuning is
    reused only if it was made from the same trace with the same settings and its checksum
    holds; a damaged one is named, set aside (renamed *.damaged) and recomputed."""
    config = config or TuningConfig()
    params = config.to_dict()
    path = tuning_path(trace_root, tune, ic, config) if trace_root is not None else None
    if path is not None and path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored["tuning_sha256"] != _tuning_digest(stored["tuning"]):
                raise ValueError("its checksum does not match its content (edited?)")
            if stored["tune_key_sha256"] == tune.key.digest() and stored["params"] == params:
                tuning = Tuning.from_dict(stored["tuning"])
                if any(len(s.alpha) != tune.key.timesteps for s in tuning.schedules.values()):
                    raise ValueError("its alpha schedules do not cover the trace's timesteps")
                return tuning
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
            damaged = path.with_name(path.name + ".damaged")
            path.replace(damaged)
            if warn is not None:
                warn(f"{path}: a damaged stored tuning ({e}); set aside as {damaged.name}")
    fc, icc = (cumulative(tune.sim.head_spikes[h]) for h in (FC_HEAD, ic))
    tuning = tune_methods(fc, icc, tune.labels, config)
    if path is not None:
        stored_tuning = tuning.to_dict()
        payload = {
            "ic": ic,
            "tune_key_sha256": tune.key.digest(),
            "params": params,
            "tuning": stored_tuning,
            "tuning_sha256": _tuning_digest(stored_tuning),
        }
        atomic_write_text(path, json.dumps(payload))
    return tuning


@dataclass(frozen=True)
class TuneResult:
    """The tuning trace, and per IC its tuning and where it is stored (None: not stored)."""

    trace: Trace
    tunings: dict[int, Tuning]
    paths: dict[int, Path | None]


def tuning_images(session: Session, source: TuneSource, limit: int | None = None) -> ImageSet:
    """The images tuning reads (the first `limit` of them; None: all): the checkpoint's
    validation split, or training images when asked for explicitly."""
    if source is TuneSource.CROSS_FIT:
        raise ValueError(
            "--tune-on cross-fit tunes inside run and sweep, on the test images;"
            " tune on validation or train here"
        )
    if source is TuneSource.VALIDATION and session.ckpt is None:
        raise ModelError(
            f"{session.model_path}: an imported network has no validation split; tune with"
            " --tune-on train (the --dataset training images) or --tune-on cross-fit"
        )
    if source is TuneSource.VALIDATION and session.validation_images == 0:
        raise ModelError(
            f"{session.model_path}: trained without a validation split, so nothing is left to"
            " tune on; retrain with `hwsim train --validation N`, or choose --tune-on train"
            " (biased: the network has learnt those images) or --tune-on cross-fit"
        )
    data = session.split(str(source))
    if limit is not None and limit < 1:
        raise ValueError(f"--tune-images {limit}: expected at least 1 image")
    return data if limit is None else data.take(min(limit, len(data)))


def tune(
    session: Session,
    sim: SimConfig,
    ics: Sequence[int] | None = None,
    *,
    tune_images: int | None = None,
    source: TuneSource = TuneSource.VALIDATION,
    trace_root: Path | None = DEFAULT_TRACE_ROOT,
    config: TuningConfig | None = None,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> TuneResult:
    """Tune every IC of `ics` (None: all of the checkpoint's) on the first `tune_images` images
    of the validation split (None: all; `source` TRAIN: training images); with trace_root
    None nothing is read from or written to disk."""
    ics = tuple(session.spec.ic_positions if ics is None else ics)
    for ic in ics:
        _check_ic(session.spec, ic)
    data = tuning_images(session, source, tune_images)
    t = trace(session, data, sim, trace_root=trace_root, progress=progress, warn=warn, stage="tune")
    tunings = {ic: tuning_for(t, ic, trace_root, config, warn) for ic in ics}
    paths = {
        ic: None if trace_root is None else tuning_path(trace_root, t, ic, config) for ic in ics
    }
    return TuneResult(t, tunings, paths)


def _check_ic(spec: NetSpec | ImportedSpec, ic: int) -> None:
    if ic not in spec.ic_positions:
        raise ModelError(
            f"no IC head at block {ic}; the checkpoint has ICs at"
            f" {', '.join(map(str, spec.ic_positions)) or 'none'}"
        )


def exact_alpha_name(method: Method) -> str:
    """The name of a fused method run with its exact per-step alpha instead of the LUT."""
    return f"{method} (exact alpha)"


def evaluate_ic(
    spec: NetSpec | ImportedSpec,
    arch: Architecture,
    fusion: FusionComparison,
    test: Trace,
    ic: int,
    ann_correct: dict[int, np.ndarray],
    target_fraction: float = 0.99,
    bootstrap_config: BootstrapConfig | None = None,
    tuned_on: str = "",
) -> ICEvaluation:
    """Evaluate all methods on `test` for this IC from their per-image decisions (`fusion`,
    with parameters tuned on other images), with paired bootstrap intervals over the test
    images; ann_correct[head] (N,) is the ANN's per-image correctness on them."""
    _check_ic(spec, ic)
    costs = chip_costs(arch, spec.graph(), ic, test)
    curves = {m: Curve(m, fusion.accuracy[m], costs.energy_pj[m]) for m in METHODS}
    exact = {
        m: Curve(exact_alpha_name(m), a, costs.energy_pj[m])
        for m, a in fusion.accuracy_exact.items()
    }
    ann_accuracy = {h: float(np.mean(c)) for h, c in ann_correct.items()}
    target = target_fraction * ann_accuracy[FC_HEAD]
    limit = curves[Method.DL].energy_pj[-1]
    correct = {**fusion.correct, **{exact_alpha_name(m): c for m, c in fusion.exact.items()}}
    energy = {**costs.energy_pj, **{exact_alpha_name(m): costs.energy_pj[m] for m in exact}}
    boot = bootstrap(
        correct,
        energy,
        ann_correct[FC_HEAD],
        target_fraction,
        limit,
        baselines=(Method.DL, Method.SL),
        config=bootstrap_config,
    )
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
        exact_curves=exact,
        bootstrap=boot,
        tuned_on=tuned_on,
    )


def ann_correct(ckpt: Checkpoint, data: ImageSet, indices: np.ndarray) -> dict[int, np.ndarray]:
    """Per head, whether the ANN classifies each image of `data` whose row is in `indices`
    correctly: (len(indices),) bool, in the order of `indices`."""
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
    return {h: v.argmax(1).numpy() == y for h, v in out.items()}


def choose_ic(ckpt: Checkpoint, target_fraction: float) -> int:
    """The shallowest IC whose ANN accuracy reaches target_fraction x the FC's; else the best.
    Accuracies on the validation split when the checkpoint has one (else on the test split)."""
    ics = list(ckpt.spec.ic_positions)
    if not ics:
        raise ModelError("the checkpoint has no IC heads; train one with `hwsim train --ic ...`")
    accuracy = ckpt.validation_accuracy or ckpt.accuracy
    goal = target_fraction * accuracy[FC_HEAD]
    good = [i for i in sorted(ics) if accuracy.get(i, 0.0) >= goal]
    return good[0] if good else max(ics, key=lambda i: accuracy.get(i, 0.0))


@dataclass(frozen=True)
class EvaluationConfig:
    """What `run` and `sweep` share: the files, how the splits are simulated and tuned, and the
    energy model."""

    arch: Path
    model: Path
    sim: SimConfig = SimConfig()
    images: int | None = None  # test images (None: the whole test split)
    tune_images: int | None = None  # tuning images (None: all of the tuning split)
    target_fraction: float = 0.99  # of the ANN's FC accuracy on the same test images
    data_root: str | None = None
    trace_root: Path | None = DEFAULT_TRACE_ROOT  # None: no trace cache
    energy_model: EnergyModel | None = None  # None: the architecture file's
    tuning: TuningConfig = TuningConfig()  # estimator, empirical-Bayes pooling, LUT choice
    tune_on: TuneSource = TuneSource.VALIDATION
    folds: int = 5  # cross-fitting folds (tune_on CROSS_FIT)
    bootstrap: BootstrapConfig = BootstrapConfig()
    nir: NirOptions = NirOptions()  # dataset and FC Output of a NIR model (refused otherwise)
    hardware: Hardware = Hardware.IDEAL  # functional: simulate on the mapped chip (ADC, devices)
    functional: FunctionalConfig = FunctionalConfig()  # its first layer, variation, faults


@dataclass(frozen=True)
class RunConfig(EvaluationConfig):
    """What `hwsim run` simulates: one IC."""

    ic: int | None = None  # None: the shallowest IC whose ANN accuracy reaches the target
    test_trace: Path | None = None  # a given test trace (`--trace DIR`)
    timing: TimingModel = TimingModel.CYCLE  # cycle: simulate the chip per image (hwsim.hw.sim)


@dataclass(frozen=True)
class RunResult:
    """Everything `hwsim run` reports."""

    config: RunConfig
    arch: Architecture
    spec: NetSpec | ImportedSpec
    evaluation: ICEvaluation
    test: Trace
    seconds: float
    cycles: CycleEvaluation | None = None  # the cycle-level simulation (timing CYCLE)

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
) -> tuple[Trace | None, Trace]:
    """The tuning trace (None when cross-fitting on the test images) and the test trace; the
    test trace carries crossbar activity when the event energy model needs it."""
    kw = {"trace_root": cfg.trace_root, "progress": progress, "warn": warn}
    sim = cfg.sim
    if cfg.hardware is Hardware.FUNCTIONAL:
        sim = dataclasses.replace(sim, hardware=FunctionalRun(arch, cfg.functional))
    test_set = session.split("test")  # checked before any simulation
    if cfg.images is not None and test_trace is None:
        test_set = take_images(test_set, cfg.images, "--images")
    tune = None
    if cfg.tune_on is TuneSource.CROSS_FIT and cfg.tune_images is not None:
        raise ValueError("--tune-images: cross-fitting tunes on the test images' other folds")
    cycle = isinstance(cfg, RunConfig) and cfg.timing is TimingModel.CYCLE
    if cycle and sim.hardware is not None:
        raise ValueError(
            "--timing cycle needs per-image crossbar activity, which --hardware functional does"
            " not keep; use --timing analytic"
        )
    given = None
    if test_trace is not None:  # checked before any simulation
        given = load_given_trace(session, test_trace, sim)
        act = given.sim.activity
        if cycle and (act is None or act.per_image is None):
            raise TraceError(
                f"--trace {test_trace}: no per-image activity, which --timing cycle needs; use"
                " --timing analytic, or a test trace made by hwsim run"
            )
    if cfg.tune_on is not TuneSource.CROSS_FIT:
        tune_set = tuning_images(session, cfg.tune_on, cfg.tune_images)
        tune = trace(session, tune_set, sim, stage="tune", **kw)
    if given is not None:
        return tune, given
    test_sim = sim
    if sim.hardware is None and (arch.energy_model is EnergyModel.EVENT or cycle):
        spec = dataclasses.replace(activity_spec(arch), per_image=cycle)
        test_sim = dataclasses.replace(sim, activity=spec)
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
    session = Session.open(cfg.model, cfg.data_root, cfg.sim.conversion, cfg.nir)
    ic = session.default_ic(cfg.target_fraction) if cfg.ic is None else cfg.ic
    _check_ic(session.spec, ic)
    tune, test = _tune_and_test(cfg, session, arch, progress, warn, cfg.test_trace)
    ann = session.reference_correct(test)
    evaluation = _evaluate(cfg, session, arch, tune, test, ic, ann, warn)
    cycles = None
    if cfg.timing is TimingModel.CYCLE:
        tune_target = None
        if tune is not None:  # the target on the tuning images: the same fraction of the ANN's
            reference = session.reference_correct(tune)[FC_HEAD]
            tune_target = cfg.target_fraction * float(np.mean(reference))
        graph = session.spec.graph()
        cycles = cycle_evaluation(arch, graph, evaluation, test, tune, tune_target, progress)
    seconds = time.perf_counter() - start
    return RunResult(cfg, arch, session.spec, evaluation, test, seconds, cycles)


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
            "the test trace has no per-image activity, which --timing cycle needs; use"
            " --timing analytic, or let hwsim run simulate the test images"
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
        )
        early = {
            m: EarlyStop(
                r.stop_step - 1, r.accuracy, method_decision_cycles(arch, m, classes, stop=True)
            )
            for m, r in fusion.terminations.items()
        }
    cycles = evaluate_cycles(
        arch,
        graph,
        ic,
        act,
        test.sim.head_spikes,
        steps,
        fixed,
        early_stop=early,
        on_run=None if progress is None else lambda done, total: progress("chip", done, total),
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


def _evaluate(
    cfg: EvaluationConfig,
    session: Session,
    arch: Architecture,
    tune: Trace | None,
    test: Trace,
    ic: int,
    ann: dict[int, np.ndarray],
    warn: WarnFn | None = None,
) -> ICEvaluation:
    """One IC: its parameters tuned on `tune` (or cross-fitted on `test`), then evaluated."""
    fc, icc = (cumulative(test.sim.head_spikes[h]) for h in (FC_HEAD, ic))
    if tune is None:
        fusion = cross_fit(fc, icc, test.labels, cfg.tuning, cfg.folds)
    else:
        tuning = tuning_for(tune, ic, cfg.trace_root, cfg.tuning, warn)
        fusion = compare_methods(tuning, fc, icc, test.labels)
    return evaluate_ic(
        session.spec,
        arch,
        fusion,
        test,
        ic,
        ann,
        cfg.target_fraction,
        cfg.bootstrap,
        tuned_on(cfg, tune, test),
    )


@dataclass(frozen=True)
class EstimateResult:
    spec: NetSpec | ImportedSpec
    arch: Architecture
    layers: tuple[Layer, ...]
    energy: EnergyBreakdown


def estimate(arch_path: Path, spec: NetSpec | ImportedSpec) -> EstimateResult:
    """SpikeSim energy per timestep of an untrained geometry (no checkpoint needed), or of an
    imported network's."""
    arch = load_arch(arch_path)
    graph = spec.graph()
    return EstimateResult(spec, arch, graph.layers, spikesim_energy(map_network(arch, graph)))


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
    its energy (pJ per image), normalised AUC, R (eq. 33) against DL (None for DL) and against
    SL (None for SL; None also where either never reaches the target), each with its paired
    bootstrap interval (`*_ci`: (lo, hi); inf where the target is missed in the tail; None
    where no resample defines it)."""

    timestep: int | None
    energy_pj: float | None
    auc: float
    reduction_pct: float | None
    timestep_ci: tuple[float, float] | None = None
    energy_pj_ci: tuple[float, float] | None = None
    auc_ci: tuple[float, float] | None = None
    reduction_ci: tuple[float, float] | None = None
    reduction_vs_sl_pct: float | None = None
    reduction_vs_sl_ci: tuple[float, float] | None = None

    @classmethod
    def of(cls, summary: Summary, est: CurveEstimates) -> MethodOutcome:
        vs_dl, vs_sl = (est.reduction_pct.get(b) for b in (Method.DL, Method.SL))
        return cls(
            summary.target.timestep,
            summary.target.energy_pj,
            summary.auc,
            summary.reduction_pct,
            _ci(est.timestep),
            _ci(est.energy_pj),
            _ci(est.auc),
            _ci(vs_dl),
            None if vs_sl is None or not math.isfinite(vs_sl.value) else vs_sl.value,
            _ci(vs_sl),
        )


def _ci(e: Estimate | None) -> tuple[float, float] | None:
    return None if e is None or math.isnan(e.lo) else (e.lo, e.hi)


_CI_COLUMNS = {
    "timestep_ci": ("timestep_{k}_lo", "timestep_{k}_hi"),
    "energy_pj_ci": ("energy_{k}_pj_lo", "energy_{k}_pj_hi"),
    "auc_ci": ("auc_{k}_lo", "auc_{k}_hi"),
    "reduction_ci": ("reduction_{k}_pct_lo", "reduction_{k}_pct_hi"),
    "reduction_vs_sl_ci": ("reduction_vs_sl_{k}_pct_lo", "reduction_vs_sl_{k}_pct_hi"),
}
"""CSV columns of each MethodOutcome interval, {k} = `Method.key`."""


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
            {m: MethodOutcome.of(s, ev.bootstrap.curves[m]) for m, s in ev.summary.items()},
        )

    def to_dict(self) -> dict[str, float | int | None]:
        """The CSV row (docs/outputs.md): per method timestep_x, energy_x_pj, auc_x,
        reduction_x_pct (not for DL), reduction_vs_sl_x_pct (not for SL), each with _lo/_hi
        interval columns, x = `Method.key`."""
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
            if m is not Method.SL:
                row[f"reduction_vs_sl_{m.key}_pct"] = o.reduction_vs_sl_pct
            for name, cols in _CI_COLUMNS.items():
                if (m is Method.DL and name == "reduction_ci") or (
                    m is Method.SL and name == "reduction_vs_sl_ci"
                ):
                    continue
                ci = getattr(o, name)
                for col, v in zip(cols, (None, None) if ci is None else ci, strict=True):
                    row[col.format(k=m.key)] = v
        return row

    @classmethod
    def from_dict(cls, row: dict) -> SweepRow:
        """A row read back from CSV (NaN: not reached)."""

        def opt(key: str) -> float | None:
            v = row.get(key)
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        def ci(name: str, key: str) -> tuple[float, float] | None:
            lo, hi = (opt(c.format(k=key)) for c in _CI_COLUMNS[name])
            return None if lo is None or hi is None else (lo, hi)

        methods = {}
        for m in METHODS:
            step = opt(f"timestep_{m.key}")
            methods[m] = MethodOutcome(
                None if step is None else int(step),
                opt(f"energy_{m.key}_pj"),
                float(row[f"auc_{m.key}"]),
                None if m is Method.DL else opt(f"reduction_{m.key}_pct"),
                ci("timestep_ci", m.key),
                ci("energy_pj_ci", m.key),
                ci("auc_ci", m.key),
                None if m is Method.DL else ci("reduction_ci", m.key),
                None if m is Method.SL else opt(f"reduction_vs_sl_{m.key}_pct"),
                None if m is Method.SL else ci("reduction_vs_sl_ci", m.key),
            )
        return cls(
            int(row["ic"]),
            float(row["ann_accuracy_ic"]),
            float(row["ann_accuracy_fc"]),
            float(row["target_accuracy"]),
            methods,
        )


def sweep(
    cfg: SweepConfig,
    *,
    on_row: Callable[[SweepRow], None] | None = None,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
    session: Session | None = None,
) -> list[SweepRow]:
    """Evaluate every IC position of `cfg` (in its order), sharing the tuning and test traces.
    `session`: an open session of cfg.model to reuse (its converted network is kept). Files,
    resuming and executors are `hwsim.pipeline.grid`'s."""
    arch = load_run_arch(cfg.arch, cfg.energy_model)
    if session is None:
        session = Session.open(cfg.model, cfg.data_root, cfg.sim.conversion, cfg.nir)
    missing = [p for p in cfg.ic_positions if p not in session.spec.ic_positions]
    if missing:
        raise ModelError(
            f"{cfg.model}: no IC head at block(s) {', '.join(map(str, missing))}; the checkpoint"
            f" has ICs at {', '.join(map(str, session.spec.ic_positions)) or 'none'}"
        )
    tune, test = _tune_and_test(cfg, session, arch, progress, warn)
    ann = session.reference_correct(test)
    rows = []
    for i, ic in enumerate(cfg.ic_positions):
        rows.append(SweepRow.of(_evaluate(cfg, session, arch, tune, test, ic, ann, warn)))
        if on_row is not None:
            on_row(rows[-1])
        if progress is not None:
            progress("ic", i + 1, len(cfg.ic_positions))
    return rows
