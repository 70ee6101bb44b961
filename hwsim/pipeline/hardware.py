"""Hardware-functional inference: the IF engine with crossbar + ADC synapses on the mapped chip.

`simulate_hardware` runs the engine (`hwsim.engine.simulate`, direct coding) on the network's
plan with every connection's current taken from its `hwsim.hw.synapse` `HardwareLayer`
(`synapses=`): one IF loop and one traversal of the graph, the engine's. By default the layers
reading spikes run in the numba engine's kernels as `CrossbarSynapse`s (`crossbar_synapse`:
their arrays), the analog first layer as the `HardwareLayer` itself; `backend="torch"` runs every
layer's own read as a torch synapse (the reference: the same spikes and counts, slower). The
layers' records get what they read; as the engine's counts they cross the same bridge as the
ideal mode's (`hwsim.pipeline.activity`: `recorded_activity`, then `layer_activity`), so the
result's `LayerActivity` (for `hwsim.hw.energy.run_energy`) is charged as the ideal mode's
would be; it adds ADC clipping. A calibrated ADC full scale is set first from a
calibration batch (`calibrate_hardware`).

Three uses:

* `chip_simulation`: `hwsim run --hardware functional` (and `sweep`): the traces of the main job
  simulated through the chip (`FunctionalRun`: architecture, devices, faults), as an engine
  `SimResult` with crossbar `Activity`, so accuracy curves, targets, tuning and R are the
  chip's.
* `evaluate` / `compare`: one setting against the ideal engine (`FunctionalReport`).
* `codesign`: accuracy and energy per inference against one knob (ADC bits, cells per weight,
  variation sigma), the ideal-engine reference computed once (`CodesignResult`).

This module composes the engine and the hardware model, which do not import each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from hwsim import engine
from hwsim.engine._functional_kernels import read_window
from hwsim.errors import InputError
from hwsim.fusion import accuracy_over_time, cumulative
from hwsim.hw.activity import LayerActivity
from hwsim.hw.arch import Architecture
from hwsim.hw.crossbar import Adc, CrossbarRows, ReadCounts, RowReader, Window
from hwsim.hw.device import Nonidealities
from hwsim.hw.energy import run_energy
from hwsim.hw.mapping import map_network
from hwsim.hw.synapse import (
    FunctionalConfig,
    HardwareLayer,
    HardwareNetwork,
    build_hardware,
    quantise_network,
    with_adc,
)
from hwsim.model.graph import FC_HEAD, LayerGraph
from hwsim.pipeline.activity import activity_spec, layer_activity, recorded_activity

if TYPE_CHECKING:  # the engine's backends (`engine.simulate`, ...) and the network import torch,
    # read when a chip is simulated: its configuration (`FunctionalRun`) is made without it
    from hwsim.engine import CrossbarSynapse, SimResult
    from hwsim.model.convert import SpikingNetwork


class Hardware(StrEnum):
    """What the main job simulates the network on."""

    IDEAL = "ideal"  # the IF engine with exact float weights (the default)
    FUNCTIONAL = "functional"  # the mapped chip: crossbars, ADCs, devices, faults


@dataclass(frozen=True)
class HardwareResult:
    """Spikes (as `hwsim.engine.SimResult`), activity per graph layer, ADC clipping."""

    sim: SimResult
    activity: LayerActivity
    adc_clips: dict[str, int]  # conversions that clipped, per graph layer, whole run
    adc_conversions: dict[str, int]  # conversions, per graph layer, whole run
    input_step: float  # bit-serial input quantisation step (0 for the digital first layer)

    @property
    def clip_fraction(self) -> float:
        """ADC conversions that clipped / all conversions."""
        return sum(self.adc_clips.values()) / max(sum(self.adc_conversions.values()), 1)


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch (the analog first layer's ops; the IF loop of the torch path) on one thread
    while the kernels use their own: torch's OpenMP workers spinning beside them starve them on
    a small machine (bench/README.md)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def crossbar_synapse(layer: HardwareLayer, timesteps: int) -> CrossbarSynapse:
    """A hardware layer reading spikes as the numba engine's `CrossbarSynapse`: its crossbars'
    rows in the order of its dense op, its ADC (none while calibrating: the layer's histogram
    is filled instead), scale and bias, with an empty record of `timesteps`."""
    xb, adc = layer.crossbars, layer.adc
    matrix, group, row_group = layer.dense_rows()
    return engine.CrossbarSynapse(
        matrix=matrix,
        group=group,
        crossbar=row_group,
        signals=xb.signals,
        per_output=xb.signal_columns,
        col_shift=xb.col_shift,
        sign_weight=xb.sign_weight,
        lsb=-1.0 if adc is None else adc.lsb,
        code_min=0.0 if adc is None else float(adc.code_min),
        code_max=0.0 if adc is None else float(adc.code_max),
        scale=layer.scale,
        bias=np.asarray(layer.bias, np.float32),
        record=np.zeros((timesteps, len(engine.CROSSBAR_COUNTS)), np.int64),
        hist=layer.hist,
        hist_step=layer.hist_step,
    )


def kernel_reader(threads: int) -> RowReader:
    """`hwsim.hw.crossbar.read_rows` computed by the numba kernel of the same read
    (`hwsim.engine._functional_kernels.read_window`: the same bits and counts) on `threads`
    threads: how the numba backend reads the analog first layer's bit planes."""

    def read(
        x: np.ndarray,
        rows: CrossbarRows,
        window: Window,
        adc: Adc | None,
        scale: float,
        bias: np.ndarray,
        hist: np.ndarray | None = None,
        hist_step: float = 0.125,
    ) -> tuple[np.ndarray, ReadCounts]:
        out, counts = read_window(
            x, rows.matrix, rows.group, rows.crossbar, rows.per_output, rows.col_shift,
            rows.sign_weight, None if adc is None else (adc.lsb, adc.code_min, adc.code_max),
            scale, bias, (window.kernel, window.stride, window.padding, window.out_hw), hist,
            hist_step, threads,
        )  # fmt: skip
        return out, ReadCounts(*(int(v) for v in counts))

    return read


def _add_record(layer: HardwareLayer, record: np.ndarray) -> None:
    """Add a crossbar synapse's run record to its layer's (PE operations and crossbar reads
    of every column group)."""
    assert layer.record is not None
    col = {name: record[:, k] for k, name in enumerate(engine.CROSSBAR_COUNTS)}
    groups = layer.crossbars.mapped.col_groups
    layer.record.add_steps(
        col["pe_ops"] * groups,
        col["reads"] * groups,
        col["inputs"],
        int(col["clips"].sum()),
        int(col["conversions"].sum()),
    )


def _run(
    hw: HardwareNetwork,
    images: np.ndarray,
    timesteps: int,
    batch_size: int,
    on_batch: Callable[[int], None] | None,
    backend: str,
) -> tuple[SimResult, float]:
    """Run the engine with the hardware layers as synapses: on "numba" every layer reading
    spikes as a `CrossbarSynapse` in the kernels (the analog first layer a callable synapse),
    on "torch" every layer a callable synapse (`HardwareLayer`, the reference). The analog
    layer reads its bit planes with the numba kernel on "numba" (`kernel_reader`), with
    `hwsim.hw.crossbar.read_rows` on "torch"."""
    if backend not in ("numba", "torch"):
        raise InputError(f"backend {backend!r}: expected numba or torch")
    step = hw.start(images, timesteps)
    reader = kernel_reader(hw.config.threads) if backend == "numba" else None
    for layer in hw.layers.values():
        layer.reader = reader
    xbars = {}
    if backend == "numba":
        xbars = {
            name: crossbar_synapse(layer, timesteps)
            for name, layer in hw.layers.items()
            if layer.analog is None
        }
    with _one_torch_thread():
        sim = engine.simulate(
            hw.snn,
            images,
            timesteps,
            batch_size=batch_size,
            on_batch=on_batch,
            backend=backend,
            synapses={**hw.synapses, **xbars},
            threads=hw.config.threads,
        )
    for name, x in xbars.items():
        _add_record(hw.layers[name], x.record)
    return sim, step


def calibrate_hardware(
    hw: HardwareNetwork,
    images: np.ndarray,
    timesteps: int,
    *,
    batch_size: int = 64,
    backend: str = "numba",
) -> dict[str, float]:
    """Set a calibrated ADC's LSB per layer (`HardwareNetwork.calibrate`) from the column
    signals of `images` run for `timesteps` without ADC; returns the LSBs in cell levels.
    `backend` as `simulate_hardware`'s."""
    hw.calibrating()
    _run(hw, np.asarray(images, np.float32), timesteps, batch_size, None, backend)
    return hw.calibrate()


def simulate_hardware(
    hw: HardwareNetwork,
    images: np.ndarray,
    timesteps: int,
    *,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
    backend: str = "numba",
) -> HardwareResult:
    """Run `images` (N, C, H, W) through the hardware network for `timesteps` (direct coding).
    A calibrated ADC must be calibrated first (`calibrate_hardware`). `backend` "numba" (the
    default: the crossbars in the numba engine's kernels) or "torch" (the layers' own reads
    as torch synapses, the reference: the same spikes and counts, slower)."""
    if timesteps < 1:
        raise InputError(f"timesteps {timesteps}: expected >= 1")
    if not hw.calibrated:
        raise InputError("the ADC's full scale is calibrated: run calibrate_hardware first")
    images = np.asarray(images, np.float32)
    sim, step = _run(hw, images, timesteps, batch_size, on_batch, backend)
    activity = layer_activity(hw.snn.graph, recorded_activity(hw, sim), max(len(images), 1))
    return HardwareResult(sim, activity, hw.adc_clips(), hw.adc_conversions(), step)


def prepared_hardware(
    snn: SpikingNetwork,
    arch: Architecture,
    config: FunctionalConfig,
    calibration: np.ndarray,
    timesteps: int,
) -> HardwareNetwork:
    """`build_hardware`, then (calibrated full scale) `calibrate_hardware` on `calibration`."""
    hw = build_hardware(snn, arch, config)
    if not hw.calibrated:
        calibrate_hardware(hw, calibration, timesteps)
    return hw


# ------------------------------------------------------------------------ the main job


@dataclass(frozen=True)
class FunctionalRun:
    """How the main job's traces are simulated on the chip: the architecture (crossbars, ADC,
    devices, mapping), the functional settings (first layer, device variation and stuck-at
    faults) and the calibration batch (the first `calibration_images` training images, for a
    calibrated ADC)."""

    arch: Architecture
    config: FunctionalConfig = FunctionalConfig()
    calibration_images: int = 16

    def __post_init__(self) -> None:
        if self.calibration_images < 1:
            raise InputError(f"calibration_images {self.calibration_images}: expected >= 1")

    def key(self) -> dict:
        """What the spikes depend on (a trace's key): the chip sections of the architecture and
        the functional settings; energies, areas and timing do not change a spike."""
        chip = self.arch.to_mapping()
        return {
            "chip": {k: chip[k] for k in ("crossbar", "adc", "device", "mapping")},
            "config": {
                k: str(v) if k == "first_layer" else v for k, v in asdict(self.config).items()
            },
            "calibration_images": self.calibration_images,
        }


def chip_simulation(
    snn: SpikingNetwork,
    images: np.ndarray,
    timesteps: int,
    run: FunctionalRun,
    calibration: np.ndarray,
    *,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> SimResult:
    """The main job's simulation on the chip: `images` through the hardware network (calibrated
    on `calibration` first when the full scale is), as an engine `SimResult` whose `activity`
    is the crossbar activity the hardware layers recorded (per the mapping: `activity_spec`)."""
    calib = calibration[: run.calibration_images]
    hw = prepared_hardware(snn, run.arch, run.config, calib, timesteps)
    return chip_run(hw, images, timesteps, batch_size=batch_size, on_batch=on_batch)


def chip_run(
    hw: HardwareNetwork,
    images: np.ndarray,
    timesteps: int,
    *,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> SimResult:
    """`chip_simulation` on a prepared hardware network (`prepared_hardware`), which a new
    run starts afresh (`HardwareNetwork.start`), so one network serves several splits."""
    result = simulate_hardware(hw, images, timesteps, batch_size=batch_size, on_batch=on_batch)
    return replace(result.sim, activity=recorded_activity(hw, result.sim))


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class FunctionalReport:
    """Hardware-functional run vs the ideal engine on the same images.

    `accuracy[name][h]`: final-timestep accuracy of head h (cumulative spike counts, a tie
    counts as wrong) for "float" (ideal engine, float weights), "quantised" (ideal engine,
    quantised weights) and "hardware"; `head_agreement[h]`: fraction of (image, timestep,
    class) output spikes equal between hardware and quantised-ideal; `layer_spike_error[l]`:
    sum_t |hw - ideal| / sum_t ideal of each spiking layer's spike count; `identical`: every
    head spike and layer count equal; `adc_clip_fraction`: conversions that clipped / all.
    """

    accuracy: dict[str, dict[int, float]]
    head_agreement: dict[int, float]
    layer_spike_error: dict[str, float]
    identical: bool
    adc_clip_fraction: float
    hardware: HardwareResult
    ideal: SimResult


def final_accuracy(sim: SimResult, labels: np.ndarray) -> dict[int, float]:
    """Final-timestep accuracy of every head (cumulative counts, a tie counts as wrong)."""
    return {
        h: float(accuracy_over_time(cumulative(s), labels)[-1]) for h, s in sim.head_spikes.items()
    }


def compare(
    hardware: HardwareResult, ideal: SimResult, labels: np.ndarray, float_sim: SimResult | None
) -> FunctionalReport:
    """Accuracy and spike agreement of `hardware` against `ideal` (see `FunctionalReport`)."""
    hw = hardware.sim
    accuracy = {
        "quantised": final_accuracy(ideal, labels),
        "hardware": final_accuracy(hw, labels),
    }
    if float_sim is not None:
        accuracy["float"] = final_accuracy(float_sim, labels)
    agreement = {
        h: float((hw.head_spikes[h] == ideal.head_spikes[h]).mean()) for h in hw.head_spikes
    }
    diff = np.abs(hw.layer_spikes - ideal.layer_spikes).sum(axis=0)
    base = np.maximum(ideal.layer_spikes.sum(axis=0), 1)
    errors = {name: float(d / b) for name, d, b in zip(hw.layer_names, diff, base, strict=True)}
    identical = bool(
        all(np.array_equal(hw.head_spikes[h], ideal.head_spikes[h]) for h in hw.head_spikes)
        and np.array_equal(hw.layer_spikes, ideal.layer_spikes)
    )
    return FunctionalReport(
        accuracy, agreement, errors, identical, hardware.clip_fraction, hardware, ideal
    )


def evaluate(
    snn: SpikingNetwork,
    arch: Architecture,
    images: np.ndarray,
    labels: np.ndarray,
    timesteps: int,
    config: FunctionalConfig | None = None,
    *,
    calibration: np.ndarray | None = None,
    batch_size: int = 64,
) -> FunctionalReport:
    """Quantise `snn`, run the ideal engine (float and quantised weights) and the hardware mode
    on `images` (a calibrated ADC calibrated on `calibration`, default `images`), and compare
    them."""
    config = config or FunctionalConfig()
    quantised = quantise_network(
        snn, arch.device.weight_bits, power_of_two=config.power_of_two_scale
    )
    ideal = engine.simulate(quantised, images, timesteps, batch_size=batch_size)
    float_sim = engine.simulate(snn, images, timesteps, batch_size=batch_size)
    calib = images if calibration is None else calibration
    hw = prepared_hardware(snn, arch, config, calib, timesteps)
    result = simulate_hardware(hw, images, timesteps, batch_size=batch_size)
    return compare(result, ideal, labels, float_sim)


# ---------------------------------------------------------------------------- co-design


class Knob(StrEnum):
    """A design parameter the co-design figure sweeps."""

    ADC_BITS = "adc_bits"
    CELLS_PER_WEIGHT = "cells_per_weight"
    VARIATION_SIGMA = "variation_sigma"


def with_knob(
    arch: Architecture, config: FunctionalConfig, knob: Knob, value: float
) -> tuple[Architecture, FunctionalConfig]:
    """The architecture and settings at one knob value: ADC bits (energy and area of the ADC
    scale from the file's reference resolution), cells per weight S (bits_per_cell =
    ceil(stored bits / S)), or the lognormal variation sigma."""
    if knob is Knob.ADC_BITS:
        return with_adc(arch, int(value)), config
    if knob is Knob.CELLS_PER_WEIGHT:
        cells = int(value)
        if not 1 <= cells <= arch.device.stored_bits:
            raise InputError(
                f"cells_per_weight {cells}: expected 1..{arch.device.stored_bits} for"
                f" {arch.device.weight_bits}-bit {arch.device.signed_weights.value} weights"
            )
        bits = math.ceil(arch.device.stored_bits / cells)
        return replace(arch, device=replace(arch.device, bits_per_cell=bits)), config
    noise = replace(config.noise, sigma=float(value))
    return arch, replace(config, noise=noise)


@dataclass(frozen=True)
class CodesignRow:
    """One knob value: FC accuracy at the last timestep (and the IC's, when the network has
    one), energy per inference (pJ, the architecture's energy model, layers only), the ADC clip
    fraction and the FC output spikes equal to the ideal engine's on quantised weights."""

    value: float
    accuracy: float
    energy_pj: float
    clip_fraction: float
    fc_agreement: float
    ic_accuracy: float | None = None


@dataclass(frozen=True)
class CodesignResult:
    """A co-design sweep: one row per knob value, and the references computed once: the ideal
    engine on float weights (`ideal_*`, what `hwsim run` uses by default) and on the weights
    quantised to the chip's bits (`quantised_accuracy`)."""

    knob: Knob
    rows: list[CodesignRow]
    ideal_accuracy: float
    ideal_energy_pj: float
    quantised_accuracy: float
    images: int
    timesteps: int
    ic: int | None = None  # the IC head simulated with the FC, if any
    ideal_ic_accuracy: float | None = None

    def to_rows(self) -> list[dict[str, float | str]]:
        """CSV rows (docs/outputs.md): the sweep, then the reference as `ideal` rows; an
        `accuracy_ic` column when an IC head was simulated too."""
        out: list[dict[str, float | str]] = [
            {"knob": str(self.knob), "value": r.value, "hardware": "functional",
             "accuracy_fc": r.accuracy, "accuracy_ic": r.ic_accuracy, "energy_pj": r.energy_pj,
             "adc_clip_fraction": r.clip_fraction, "fc_spike_agreement": r.fc_agreement}
            for r in self.rows
        ]  # fmt: skip
        out.append(
            {"knob": str(self.knob), "value": math.nan, "hardware": "ideal",
             "accuracy_fc": self.ideal_accuracy, "accuracy_ic": self.ideal_ic_accuracy,
             "energy_pj": self.ideal_energy_pj, "adc_clip_fraction": 0.0,
             "fc_spike_agreement": math.nan}
        )  # fmt: skip
        out.append(
            {"knob": str(self.knob), "value": math.nan, "hardware": "ideal_quantised",
             "accuracy_fc": self.quantised_accuracy, "accuracy_ic": None, "energy_pj": math.nan,
             "adc_clip_fraction": 0.0, "fc_spike_agreement": 1.0}
        )  # fmt: skip
        if self.ic is None:
            for row in out:
                del row["accuracy_ic"]
        return out


def _energy_pj(arch: Architecture, graph: LayerGraph, activity: LayerActivity) -> float:
    """Energy per inference of a run on `arch`, pJ: every layer, every timestep."""
    energy = run_energy(map_network(arch, graph), activity)
    return float(energy.energy_pj.sum())


def codesign(
    snn: SpikingNetwork,
    arch: Architecture,
    images: np.ndarray,
    labels: np.ndarray,
    timesteps: int,
    knob: Knob,
    values: Sequence[float],
    config: FunctionalConfig | None = None,
    *,
    calibration: np.ndarray | None = None,
    batch_size: int = 64,
    on_value: Callable[[CodesignRow], None] | None = None,
) -> CodesignResult:
    """Accuracy and energy per inference of the FC head (and of `snn`'s IC head, if it keeps
    one) against `knob` (module docstring): the ideal engine runs once (float weights, with
    crossbar activity for the event energy model; quantised weights, for the FC spike
    agreement), then the hardware mode at every value (a calibrated ADC calibrated on
    `calibration`, default the images themselves)."""
    ics = [h for h in snn.heads if h != FC_HEAD]
    if len(ics) > 1:
        raise InputError(f"snn: co-design simulates the FC and at most one IC, got ICs {ics}")
    ic = ics[0] if ics else None
    config = config or FunctionalConfig(noise=Nonidealities())
    calib = images if calibration is None else calibration
    spec = activity_spec(arch)
    reference = engine.simulate(snn, images, timesteps, batch_size=batch_size, activity=spec)
    assert reference.activity is not None
    ideal_activity = layer_activity(snn.graph, reference.activity, len(images))
    ideal_energy = _energy_pj(arch, snn.graph, ideal_activity)
    quantised = engine.simulate(
        quantise_network(snn, arch.device.weight_bits, power_of_two=config.power_of_two_scale),
        images,
        timesteps,
        batch_size=batch_size,
    )
    rows = []
    for value in values:
        a, cfg = with_knob(arch, config, knob, value)
        hw = prepared_hardware(snn, a, cfg, calib, timesteps)
        result = simulate_hardware(hw, images, timesteps, batch_size=batch_size)
        agreement = float(
            (result.sim.head_spikes[FC_HEAD] == quantised.head_spikes[FC_HEAD]).mean()
        )
        accuracy = final_accuracy(result.sim, labels)
        row = CodesignRow(
            value=float(value),
            accuracy=accuracy[FC_HEAD],
            energy_pj=_energy_pj(a, snn.graph, result.activity),
            clip_fraction=result.clip_fraction,
            fc_agreement=agreement,
            ic_accuracy=None if ic is None else accuracy[ic],
        )
        rows.append(row)
        if on_value is not None:
            on_value(row)
    ideal = final_accuracy(reference, labels)
    return CodesignResult(
        knob=knob,
        rows=rows,
        ideal_accuracy=ideal[FC_HEAD],
        ideal_energy_pj=ideal_energy,
        quantised_accuracy=final_accuracy(quantised, labels)[FC_HEAD],
        images=len(images),
        timesteps=timesteps,
        ic=ic,
        ideal_ic_accuracy=None if ic is None else ideal[ic],
    )
