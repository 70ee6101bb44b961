"""What a run, a sweep or a co-design sweep is asked to do: typed, checked configurations.

`SimConfig` says how a split is simulated (and keys its trace); `EvaluationConfig` what `run`
and `sweep` share; `RunConfig`, `SweepConfig` and `CodesignConfig` one command each. A value
out of range, or two that conflict, is an `InputError` naming the parameters (`hwsim.errors`).
The memory guard refuses a simulation whose spike records cannot fit before it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from hwsim import __version__
from hwsim.atomic import available_memory_bytes
from hwsim.engine.result import BACKEND_NAMES, ActivitySpec
from hwsim.errors import InputError
from hwsim.fusion import TuneSource, TuningConfig
from hwsim.hw.arch import Architecture, EnergyModel, FullScale, load_arch
from hwsim.hw.synapse import FunctionalConfig
from hwsim.metrics import BootstrapConfig
from hwsim.model.coding import DirectCoding, InputCoding, PoissonCoding, WeightedSpikeCoding
from hwsim.model.conversion import ConversionParams
from hwsim.model.graph import LayerGraph
from hwsim.model.nir_io import NirOptions
from hwsim.pipeline.cycles import TimingModel
from hwsim.pipeline.hardware import FunctionalRun, Hardware, Knob

ProgressFn = Callable[[str, int, int], None]
"""progress(stage, done, total) callback, e.g. a rich progress bar."""
WarnFn = Callable[[str], None]
"""warn(message): something the user should know that does not stop the run."""

DEFAULT_TRACE_ROOT = Path("traces")

ALL_ICS = "all"
ICChoice = tuple[int, ...] | Literal["all"]
"""IC positions asked for: explicit block numbers, or `ALL_ICS` (every IC the model has; for a
geometry that is built, every block)."""


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
    raise InputError(
        f"{{coding}} {text!r}: expected direct, poisson or weighted:K (K phases)",
        params=("coding",),
    )


@dataclass(frozen=True)
class SimConfig:
    """How a split is simulated; everything here but batch_size and threads is part of the
    trace key (backends differ in float summation order, so they key separately)."""

    timesteps: int = 300
    conversion: ConversionParams = ConversionParams()
    coding: InputCoding = DirectCoding()
    backend: str = "numba"
    activity: ActivitySpec | None = None  # crossbar activity counts (for the event energy model)
    hardware: FunctionalRun | None = None  # simulate on the mapped chip (the functional mode)
    batch_size: int = 250
    threads: int = 0  # numba threads; 0: all cores

    def __post_init__(self) -> None:
        if self.timesteps < 1:
            raise InputError(
                f"{{timesteps}} must be >= 1, got {self.timesteps}", params=("timesteps",)
            )
        if self.batch_size < 1:
            raise InputError(
                f"{{batch_size}} must be >= 1, got {self.batch_size}", params=("batch_size",)
            )
        if self.backend not in BACKEND_NAMES:
            raise InputError(
                f"{{backend}} {self.backend!r}: expected one of {', '.join(BACKEND_NAMES)}",
                params=("backend",),
            )
        if self.hardware is not None and not isinstance(self.coding, DirectCoding):
            raise InputError(
                "{hardware} functional reads the analog image: use {coding} direct",
                params=("hardware", "coding"),
            )

    def engine_key(self) -> dict:
        return {
            "hwsim": __version__,
            "backend": self.backend,
            "activity": None if self.activity is None else asdict(self.activity),
            "hardware": None if self.hardware is None else self.hardware.key(),
        }


def result_bytes(
    graph: LayerGraph, images: int, sim: SimConfig, heads_held: int | None = None
) -> int:
    """Bytes of a simulation's result arrays: head spikes (1 B per image, step, class and
    head; every head, or `heads_held` of them: a trace read back holds the heads it is asked
    for, `hwsim.engine.trace.HeadSpikes`), per-layer spike counts and activity sums (8 B per
    step and layer), and per-image activity when asked (16 B per image, step and layer)."""
    steps, layers = sim.timesteps, len(graph.layers)
    held = len(graph.heads) if heads_held is None else min(heads_held, len(graph.heads))
    heads = images * steps * graph.classes * held
    sums = 8 * steps * (len(graph.populations()) + 3 * layers)
    per_image = 16 * images * steps * layers if sim.activity and sim.activity.per_image else 0
    return heads + sums + per_image


def check_memory(graph: LayerGraph, images: int, sim: SimConfig) -> None:
    """Refuse, before simulating, a run whose results cannot fit in the memory left."""
    need, have = result_bytes(graph, images, sim), available_memory_bytes()
    if need > 0.8 * have:
        raise InputError(
            f"{images} images x {sim.timesteps} timesteps need about {need / 2**30:.1f} GiB for"
            f" their spike records, more than the {have / 2**30:.1f} GiB available; use fewer"
            " {images} or {timesteps}",
            params=("images", "timesteps"),
        )


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

    def __post_init__(self) -> None:
        if self.tune_on is TuneSource.CROSS_FIT and self.tune_images is not None:
            raise InputError(
                "{tune_images}: cross-fitting tunes on the test images' other folds",
                params=("tune_images",),
            )
        if self.tune_on is TuneSource.CROSS_FIT and self.folds < 2:
            raise InputError(
                f"{{folds}} {self.folds}: cross-fitting needs at least 2 folds", params=("folds",)
            )

    def check_folds(self, images: int) -> None:
        """Refuse more cross-fitting folds than test images (a fold needs one at least)."""
        if self.tune_on is TuneSource.CROSS_FIT and self.folds > images:
            raise InputError(
                f"{{folds}} {self.folds}: cross-fitting {images} test images needs 2..{images}"
                " folds",
                params=("folds",),
            )

    def architecture(self) -> Architecture:
        """The architecture of the run, its energy model overridden if asked."""
        arch = load_arch(self.arch)
        if self.energy_model is not None:
            arch = replace(arch, energy_model=self.energy_model)
        return arch

    def simulation(self, arch: Architecture) -> SimConfig:
        """How the splits are simulated: `sim`, on the mapped chip `arch` in the functional
        mode."""
        if self.hardware is Hardware.FUNCTIONAL:
            return replace(self.sim, hardware=FunctionalRun(arch, self.functional))
        return self.sim


@dataclass(frozen=True)
class RunConfig(EvaluationConfig):
    """What `hwsim run` simulates: one IC."""

    ic: int | None = None  # None: the shallowest IC whose ANN accuracy reaches the target
    test_trace: Path | None = None  # a given test trace (instead of simulating the test images)
    timing: TimingModel = TimingModel.CYCLE  # cycle: simulate the chip per image (hwsim.hw.sim)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.timing is TimingModel.CYCLE and self.hardware is Hardware.FUNCTIONAL:
            raise InputError(
                "{timing} cycle needs per-image crossbar activity, which {hardware} functional"
                " does not keep; use {timing} analytic",
                params=("timing", "hardware"),
            )


@dataclass(frozen=True)
class SweepConfig(EvaluationConfig):
    """What `hwsim sweep` evaluates: one run per IC position, sharing the traces."""

    ic_positions: tuple[int, ...] = ()


@dataclass(frozen=True)
class CodesignConfig:
    """What `hwsim functional` sweeps: FC accuracy and energy per inference on the chip of
    `arch` against one knob (`values`), on the first `images` test images of `model`; the ADC
    full scale as the file gives it unless `full_scale_levels` (cell levels) or else
    `full_scale` says otherwise (not both), calibrated on the first `calibration_images`
    training images (None: as many as `FunctionalRun`'s default; refused where the full scale is not
    calibrated); `ic`: an IC head simulated with the FC."""

    arch: Path
    model: Path
    knob: Knob
    values: tuple[float, ...]
    images: int = 100
    timesteps: int = 300
    ic: int | None = None
    full_scale: FullScale | None = None
    full_scale_levels: float | None = None
    calibration_images: int | None = None
    functional: FunctionalConfig = FunctionalConfig()
    data_root: str | None = None
    nir: NirOptions = NirOptions()

    def __post_init__(self) -> None:
        if not self.values:
            raise InputError(f"{{{self.knob}}}: give at least one value", params=(str(self.knob),))
        if self.full_scale is not None and self.full_scale_levels is not None:
            raise InputError(
                "{full_scale} and {full_scale_levels} both set the ADC full scale; give one",
                params=("full_scale", "full_scale_levels"),
            )
        for name in ("timesteps", "calibration_images"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"{{{name}}} must be >= 1, got {value}", params=(name,))
