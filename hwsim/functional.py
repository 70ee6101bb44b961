"""Hardware-functional inference: the IF engine with crossbar + ADC synapses.

`simulate_hardware` runs the engine (`hwsim.engine.simulate`, torch backend, direct coding) on
the network's plan with every connection's current taken from its `hwsim.hw.functional`
`HardwareLayer` (`synapses=`): one IF loop and one traversal of the graph, the engine's. The
layers record what they read; the result adds the run's `LayerActivity` (for
`hwsim.hw.energy.run_energy`) and ADC clipping. `evaluate` compares the hardware run with the
ideal engine on float and quantised weights (`FunctionalReport`).

This module composes the engine and the hardware model, which do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hwsim.convert import SpikingNetwork
from hwsim.engine import SimResult, simulate
from hwsim.fusion import accuracy_over_time, cumulative
from hwsim.hw.activity import LayerActivity
from hwsim.hw.arch import Architecture
from hwsim.hw.functional import (
    FunctionalConfig,
    HardwareNetwork,
    build_hardware,
    quantise_network,
)


@dataclass(frozen=True)
class HardwareResult:
    """Spikes (as `hwsim.engine.SimResult`), activity per graph layer, ADC clipping."""

    sim: SimResult
    activity: LayerActivity
    adc_clips: dict[str, int]  # conversions that clipped, per graph layer, whole run
    adc_conversions: dict[str, int]  # conversions, per graph layer, whole run
    input_step: float  # bit-serial input quantisation step (0 for the digital first layer)


def sent_spikes(hw: HardwareNetwork, sim: SimResult) -> np.ndarray:
    """(T, L) spikes each graph layer sent per timestep: a layer that sends spikes sends its
    population's spikes of t-1 at t (the one-step delay), one that does not (a residual skip
    conv) sends none."""
    column = {name: j for j, name in enumerate(sim.layer_names)}
    out = np.zeros((sim.timesteps, len(hw.geometry)), np.int64)
    for k, layer in enumerate(hw.geometry):
        if layer.sends_spikes:
            out[1:, k] = sim.layer_spikes[:-1, column[layer.population]]
    return out


def simulate_hardware(
    hw: HardwareNetwork,
    images: np.ndarray,
    timesteps: int,
    *,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> HardwareResult:
    """Run `images` (N, C, H, W) through the hardware network for `timesteps` (direct coding)."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    images = np.asarray(images, np.float32)
    step = hw.start(images, timesteps)
    sim = simulate(
        hw.snn,
        images,
        timesteps,
        batch_size=batch_size,
        on_batch=on_batch,
        backend="torch",
        synapses=hw.synapses,
    )
    activity = hw.activity(sent_spikes(hw, sim), len(images))
    return HardwareResult(sim, activity, hw.adc_clips(), hw.adc_conversions(), step)


# --------------------------------------------------------------------------- report


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


def _final_accuracy(sim: SimResult, labels: np.ndarray) -> dict[int, float]:
    return {
        h: float(accuracy_over_time(cumulative(s), labels)[-1]) for h, s in sim.head_spikes.items()
    }


def compare(
    hardware: HardwareResult, ideal: SimResult, labels: np.ndarray, float_sim: SimResult | None
) -> FunctionalReport:
    """Accuracy and spike agreement of `hardware` against `ideal` (see `FunctionalReport`)."""
    hw = hardware.sim
    accuracy = {
        "quantised": _final_accuracy(ideal, labels),
        "hardware": _final_accuracy(hw, labels),
    }
    if float_sim is not None:
        accuracy["float"] = _final_accuracy(float_sim, labels)
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
    clipped = sum(hardware.adc_clips.values())
    conversions = max(sum(hardware.adc_conversions.values()), 1)
    return FunctionalReport(
        accuracy, agreement, errors, identical, clipped / conversions, hardware, ideal
    )


def evaluate(
    snn: SpikingNetwork,
    arch: Architecture,
    images: np.ndarray,
    labels: np.ndarray,
    timesteps: int,
    config: FunctionalConfig | None = None,
    *,
    batch_size: int = 64,
) -> FunctionalReport:
    """Quantise `snn`, run the ideal engine (float and quantised weights) and the hardware mode
    on `images`, and compare them."""
    config = config or FunctionalConfig()
    quantised = quantise_network(
        snn, arch.device.weight_bits, power_of_two=config.power_of_two_scale
    )
    ideal = simulate(quantised, images, timesteps, batch_size=batch_size)
    float_sim = simulate(snn, images, timesteps, batch_size=batch_size)
    hw = build_hardware(snn, arch, config)
    result = simulate_hardware(hw, images, timesteps, batch_size=batch_size)
    return compare(result, ideal, labels, float_sim)
