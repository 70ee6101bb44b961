"""Hardware-functional inference: the converted SNN with crossbar + ADC partial sums.

Same IF semantics as `hwsim.engine` (V += I; fire on V >= V_th; reset by subtraction; every
spiking layer delays its output by one timestep; residual join = conv2(conv1 spikes) +
skip(block input); heads = GAP IF layer then Linear IF layer), but every layer's synaptic
current comes from `hwsim.hw.crossbar.CrossbarLayer`:

    I = float32(psum s) + b

psum being the shift-added, ADC-quantised crossbar partial sums in weight-code units (integer
codes q, quantised per layer by `hwsim.hw.device.quantise_weights`), s the layer's scale and b
its bias, added digitally in the neuron module. A GAP layer is a crossbar layer too (SpikeSim's
convention): a diagonal of 1/(H W) per kernel position, stored as codes q_max with scale
1/(H W q_max), so that 1/(H W) is represented exactly.

The first layer's input is analog (direct coding) and cannot drive binary crossbar rows:

* `bit_serial` (default): x is quantised to `input_bits`-bit two's-complement codes,
  x ~= step (-2^(n-1) b_(n-1) + sum_(i<n-1) 2^i b_i), step = 2^ceil(log2(max|x| /
  (2^(n-1) - 1))) over the simulated images; each bit plane b_i is one binary crossbar read
  and the planes' partial sums are shift-added (the MSB with a negative weight).
* `digital`: the first layer is computed digitally, psum = conv(x, q) in float64.

With ideal settings (weights representable in `weight_bits` with a power-of-two scale, dyadic
inputs and biases, an ADC with enough bits and no clipping, no variation) the currents equal the
ideal engine's on the quantised weights bit for bit, and so do the spikes (tested).

Activity for `hwsim.hw.energy.run_energy` is recorded on the way (`LayerActivity`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
import torch

from hwsim.convert import SpikingBlock, SpikingConv, SpikingHead, SpikingNetwork
from hwsim.engine import SimResult, layer_names, simulate
from hwsim.fusion import accuracy_over_time, cumulative
from hwsim.graph import FC_HEAD, Layer, LayerKind
from hwsim.hw.arch import Architecture
from hwsim.hw.crossbar import CrossbarLayer
from hwsim.hw.device import Nonidealities, quantise_weights
from hwsim.hw.energy import LayerActivity, active_pe_operations, layer_patches


class FirstLayer(StrEnum):
    """How the analog input reaches the first layer's crossbars."""

    BIT_SERIAL = "bit_serial"
    DIGITAL = "digital"


@dataclass(frozen=True)
class FunctionalConfig:
    """Settings of the hardware-functional mode beyond the architecture."""

    first_layer: FirstLayer = FirstLayer.BIT_SERIAL
    input_bits: int = 8
    power_of_two_scale: bool = True
    noise: Nonidealities = field(default_factory=Nonidealities)

    def __post_init__(self) -> None:
        if not 2 <= self.input_bits <= 24:
            raise ValueError(f"input_bits must be in 2..24, got {self.input_bits}")


def with_adc(
    arch: Architecture,
    bits: int | None = None,
    full_scale_ua: float | None = None,
    *,
    full_scale_levels: float | None = None,
) -> Architecture:
    """`arch` with another ADC resolution and/or full scale, given in uA or in cell levels
    (one level = V_read x cell_step_s of current); None keeps the current value."""
    adc = arch.adc
    if bits is not None:
        adc = replace(adc, bits=bits)
    if full_scale_levels is not None:
        if full_scale_ua is not None:
            raise ValueError("give full_scale_ua or full_scale_levels, not both")
        full_scale_ua = full_scale_levels * arch.device.read_voltage_v * arch.cell_step_s * 1e6
    if full_scale_ua is not None:
        adc = replace(adc, full_scale_ua=full_scale_ua)
    return replace(arch, adc=adc)


# ---------------------------------------------------------------------- quantisation


def _quantise_conv(
    conv: SpikingConv, bits: int, pow2: bool
) -> tuple[SpikingConv, np.ndarray, float]:
    q = quantise_weights(conv.weight.double().numpy(), bits, power_of_two=pow2)
    weight = torch.from_numpy(q.dequantised()).float().contiguous()
    return replace(conv, weight=weight), q.codes, q.scale


def quantise_network(
    snn: SpikingNetwork, weight_bits: int, *, power_of_two: bool = True
) -> SpikingNetwork:
    """`snn` with every conv and head weight replaced by its quantised value q s (per-layer
    symmetric, `hwsim.hw.device.quantise_weights`); biases, thresholds unchanged. Run the
    ideal engine on it to get the reference the hardware mode is compared against."""
    blocks = []
    for b in snn.blocks:
        conv = _quantise_conv(b.conv, weight_bits, power_of_two)[0]
        conv2 = _quantise_conv(b.conv2, weight_bits, power_of_two)[0] if b.conv2 else None
        skip = _quantise_conv(b.skip, weight_bits, power_of_two)[0] if b.skip else None
        blocks.append(SpikingBlock(conv, conv2, skip))
    heads = {}
    for h, hd in snn.heads.items():
        q = quantise_weights(hd.weight.double().numpy(), weight_bits, power_of_two=power_of_two)
        heads[h] = SpikingHead(hd.tap, torch.from_numpy(q.dequantised()).float(), hd.bias)
    return SpikingNetwork(snn.spec, tuple(blocks), heads, snn.params, snn.scales)


# --------------------------------------------------------------------- hardware layers


@dataclass(eq=False)
class HardwareLayer:
    """One geometry layer: its crossbars, the code -> weight scale, bias, conv stride/padding."""

    geometry: Layer
    crossbars: CrossbarLayer
    scale: float
    bias: torch.Tensor | None
    stride: int = 1
    padding: int = 0
    codes: np.ndarray | None = None  # (C_out, C_in, k, k) conv codes (digital first layer)

    def _finish(self, psum: torch.Tensor, n: int) -> torch.Tensor:
        """psum (N L, C_out) float64 -> current, float32, bias added."""
        current = (psum * self.scale).to(torch.float32)
        g = self.geometry
        if g.kind is LayerKind.CONV:
            ho, wo = g.out_hw
            current = current.reshape(n, ho * wo, -1).transpose(1, 2).reshape(n, -1, ho, wo)
            if self.bias is not None:
                current = current + self.bias[None, :, None, None]
        elif self.bias is not None:
            current = current + self.bias[None, :]
        return current

    def current(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """(current, active PE ops per image (N,), ADC clips, ADC conversions) for binary
        input spikes x."""
        patches = layer_patches(x, self.geometry, stride=self.stride, padding=self.padding)
        p, n, positions, c = patches.shape
        active = active_pe_operations(self.geometry, self.crossbars.arch, patches)
        psum, clips, conversions = self.crossbars.forward(patches.reshape(p, n * positions, c))
        return self._finish(psum, n), active, clips, conversions

    def analog_current(
        self, x: torch.Tensor, mode: FirstLayer, step: float, bits: int
    ) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """The first layer's current from the analog input x (module docstring)."""
        n = x.shape[0]
        patches = layer_patches(x, self.geometry, stride=self.stride, padding=self.padding)
        active = active_pe_operations(self.geometry, self.crossbars.arch, patches)
        if mode is FirstLayer.DIGITAL:
            assert self.codes is not None
            psum = torch.nn.functional.conv2d(
                x.double(),
                torch.from_numpy(self.codes).double(),
                stride=self.stride,
                padding=self.padding,
            )
            psum = psum.flatten(2).transpose(1, 2).reshape(-1, psum.shape[1])
            return self._finish(psum, n), active, 0, 0
        top = 1 << (bits - 1)
        codes = torch.clamp(torch.round(x.double() / step), -top, top - 1).to(torch.int64)
        twos = torch.remainder(codes, 1 << bits)
        planes = torch.cat([((twos >> i) & 1).to(torch.float32) for i in range(bits)])
        rows = layer_patches(planes, self.geometry, stride=self.stride, padding=self.padding)
        p, nb, positions, c = rows.shape
        part, clips, conversions = self.crossbars.forward(rows.reshape(p, nb * positions, c))
        part = part.reshape(bits, n * positions, -1)
        weights = torch.tensor([float(1 << i) for i in range(bits - 1)] + [-float(top)])
        psum = torch.einsum("bko,b->ko", part, weights.double())
        return self._finish(psum * step, n), active, clips, conversions


def _conv_matrix(codes: np.ndarray) -> np.ndarray:
    """(C_out, C_in, kh, kw) codes -> (P, C_in, C_out) crossbar matrix, P = kh kw row-major."""
    c_out, c_in, kh, kw = codes.shape
    return codes.transpose(2, 3, 1, 0).reshape(kh * kw, c_in, c_out)


def _linear_matrix(codes: np.ndarray) -> np.ndarray:
    """(classes, F) codes -> (4, ceil(F / 4), classes): feature f on row f // 4, position f % 4."""
    classes, features = codes.shape
    rows = -(-features // 4)
    padded = np.zeros((rows * 4, classes), np.int64)
    padded[:features] = codes.T
    return padded.reshape(rows, 4, classes).transpose(1, 0, 2)


@dataclass(eq=False)
class HardwareNetwork:
    """A converted network's layers on crossbars (`build_hardware`)."""

    snn: SpikingNetwork
    arch: Architecture
    config: FunctionalConfig
    geometry: tuple[Layer, ...]
    layers: dict[str, HardwareLayer]


def build_hardware(
    snn: SpikingNetwork, arch: Architecture, config: FunctionalConfig | None = None
) -> HardwareNetwork:
    """Quantise every layer of `snn` to `arch.device.weight_bits`, slice it onto crossbars and
    apply `config.noise` (one generator seeded with `noise.seed`, layers in geometry order)."""
    config = config or FunctionalConfig()
    bits = arch.device.weight_bits
    rng = np.random.default_rng(config.noise.seed)
    geometry = tuple(g for g in snn.spec.graph().layers if g.head is None or g.head in snn.heads)
    layers: dict[str, HardwareLayer] = {}

    def conv_layer(g: Layer, conv: SpikingConv) -> HardwareLayer:
        q = quantise_weights(
            conv.weight.double().numpy(), bits, power_of_two=config.power_of_two_scale
        )
        xbar = CrossbarLayer(_conv_matrix(q.codes), arch, noise=config.noise, rng=rng)
        return HardwareLayer(g, xbar, q.scale, conv.bias, conv.stride, conv.padding, q.codes)

    for g in geometry:
        if g.head is None:
            b = snn.blocks[g.block]
            part = g.name.rsplit(".", 1)[-1] if "." in g.name else "conv"
            conv = {"conv": b.conv, "conv1": b.conv, "conv2": b.conv2, "skip": b.skip}[part]
            layers[g.name] = conv_layer(g, conv)
        elif g.kind is LayerKind.GAP:
            q_max = (1 << (bits - 1)) - 1
            hw = g.kernel[0] * g.kernel[1]
            diag = np.zeros((hw, g.in_channels, g.out_channels), np.int64)
            diag[:, np.arange(g.in_channels), np.arange(g.in_channels)] = q_max
            xbar = CrossbarLayer(diag, arch, noise=config.noise, rng=rng)
            layers[g.name] = HardwareLayer(g, xbar, 1.0 / (hw * q_max), None)
        else:
            head = snn.heads[g.head]
            q = quantise_weights(
                head.weight.double().numpy(), bits, power_of_two=config.power_of_two_scale
            )
            xbar = CrossbarLayer(_linear_matrix(q.codes), arch, noise=config.noise, rng=rng)
            layers[g.name] = HardwareLayer(g, xbar, q.scale, head.bias)
    return HardwareNetwork(snn, arch, config, geometry, layers)


# ------------------------------------------------------------------------- simulation


class _Neurons:
    """IF neurons, reset by subtraction, one-step output delay (as hwsim.engine's)."""

    def __init__(self, shape: tuple[int, ...], v0: float, threshold: float):
        self.v = torch.full(shape, v0, dtype=torch.float32)
        self.out = torch.zeros(shape, dtype=torch.float32)
        self.threshold = threshold

    def step(self, current: torch.Tensor) -> torch.Tensor:
        prev = self.out
        self.v += current
        spikes = (self.v >= self.threshold).float()
        self.v -= spikes * self.threshold
        self.out = spikes
        return prev


@dataclass(frozen=True)
class HardwareResult:
    """Spikes (as `hwsim.engine.SimResult`), activity per geometry layer, ADC clipping."""

    sim: SimResult
    activity: LayerActivity
    adc_clips: dict[str, int]  # conversions that clipped, per geometry layer, whole run
    adc_conversions: dict[str, int]  # conversions, per geometry layer, whole run
    input_step: float  # bit-serial input quantisation step (0 for the digital first layer)


def input_step(images: np.ndarray, bits: int) -> float:
    """2^ceil(log2(max|x| / (2^(bits-1) - 1))): the bit-serial input step (module docstring)."""
    peak = float(np.abs(images).max()) if np.size(images) else 0.0
    if peak == 0.0:
        return 1.0
    return 2.0 ** math.ceil(math.log2(peak / ((1 << (bits - 1)) - 1)))


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
    snn, cfg = hw.snn, hw.config
    n = len(images)
    names = layer_names(snn)
    th, v0 = snn.params.threshold, snn.params.v0
    classes = snn.spec.num_classes
    geo_names = tuple(g.name for g in hw.geometry)
    col = {name: i for i, name in enumerate(geo_names)}
    active = np.zeros((timesteps, len(geo_names)), np.int64)
    in_spikes = np.zeros_like(active)
    out_spikes = np.zeros_like(active)
    clips = dict.fromkeys(geo_names, 0)
    conversions = dict.fromkeys(geo_names, 0)
    head_spikes = {h: np.zeros((n, timesteps, classes), np.uint8) for h in snn.heads}
    layer_spikes = np.zeros((timesteps, len(names)), np.int64)
    neurons: list[int] = []
    step = input_step(images, cfg.input_bits) if cfg.first_layer is FirstLayer.BIT_SERIAL else 0.0

    def run(name: str, x: torch.Tensor, analog: bool, t: int) -> torch.Tensor:
        layer = hw.layers[name]
        if analog:
            cur, act, c, conv = layer.analog_current(x, cfg.first_layer, step, cfg.input_bits)
            in_spikes[t, col[name]] += int((x != 0).sum())
        else:
            cur, act, c, conv = layer.current(x)
            in_spikes[t, col[name]] += int(x.sum())
        active[t, col[name]] += int(act.sum())
        clips[name] += c
        conversions[name] += conv
        return cur

    def sent(name: str, spikes: torch.Tensor, t: int) -> torch.Tensor:
        out_spikes[t, col[name]] += int(spikes.sum())
        return spikes

    with torch.no_grad():
        for start in range(0, n, batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
            pops: list[_Neurons] = []
            rec = {
                h: torch.zeros((timesteps, len(x), classes), dtype=torch.uint8) for h in snn.heads
            }
            for t in range(timesteps):
                k = 0
                inp, analog = x, True
                block_out: list[torch.Tensor] = []
                for i, b in enumerate(snn.blocks):
                    if b.is_residual:
                        skip = run(f"block{i}.skip", inp, analog, t)
                        c1 = run(f"block{i}.conv1", inp, analog, t)
                        if len(pops) <= k:
                            pops.append(_Neurons(tuple(c1.shape), v0, th))
                        mid = sent(f"block{i}.conv1", pops[k].step(c1), t)
                        c2 = run(f"block{i}.conv2", mid, False, t)
                        if len(pops) <= k + 1:
                            pops.append(_Neurons(tuple(c2.shape), v0, th))
                        inp = sent(f"block{i}.conv2", pops[k + 1].step(c2 + skip), t)
                        k += 2
                    else:
                        c = run(f"conv{i}", inp, analog, t)
                        if len(pops) <= k:
                            pops.append(_Neurons(tuple(c.shape), v0, th))
                        inp = sent(f"conv{i}", pops[k].step(c), t)
                        k += 1
                    analog = False
                    block_out.append(inp)
                for h, hd in snn.heads.items():
                    tag = "fc" if h == FC_HEAD else f"ic{h}"
                    c = run(f"{tag}.gap", block_out[hd.tap], False, t)
                    if len(pops) <= k:
                        pops.append(_Neurons(tuple(c.shape), v0, th))
                    gap = sent(f"{tag}.gap", pops[k].step(c), t)
                    c = run(f"{tag}.linear", gap, False, t)
                    if len(pops) <= k + 1:
                        pops.append(_Neurons(tuple(c.shape), v0, th))
                    rec[h][t] = sent(f"{tag}.linear", pops[k + 1].step(c), t).to(torch.uint8)
                    k += 2
                for j, p in enumerate(pops):
                    layer_spikes[t, j] += int(p.out.sum())
            if not neurons:
                neurons = [int(np.prod(p.out.shape[1:])) for p in pops]
            for h in snn.heads:
                head_spikes[h][start : start + len(x)] = rec[h].permute(1, 0, 2).numpy()
            if on_batch is not None:
                on_batch(len(x))
    sim = SimResult(head_spikes, names, layer_spikes, np.asarray(neurons, np.int64))
    activity = LayerActivity(geo_names, max(n, 1), active, in_spikes, out_spikes)
    return HardwareResult(sim, activity, clips, conversions, step)


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
