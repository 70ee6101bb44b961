"""Hardware-functional layers: the converted SNN's weight layers as crossbar + ADC synapses.

A `HardwareLayer` gives one graph layer's synaptic current from `hwsim.hw.crossbar.CrossbarLayer`:

    I = float32(psum s) + b

psum being the shift-added, ADC-quantised crossbar partial sums in weight-code units (integer
codes q, quantised per layer by `hwsim.hw.device.quantise_weights`), s the layer's scale and b
its bias, added digitally in the neuron module. A GAP layer is a crossbar layer too (SpikeSim's
convention): a diagonal of 1/(H W) per kernel position, stored as codes q_max with scale
1/(H W q_max), so that 1/(H W) is represented exactly.

A layer is called as `layer(x, t)` with what its source emits at timestep t, and returns the
current shaped as the layer's dense op (conv NCHW -> NCHW, GAP NCHW -> (N, C), Linear (N, F) ->
(N, classes)): the shape of the IF engine's synapse (`hwsim.engine.Synapse`), which it satisfies
without this package importing the engine. The IF neurons, their delays and the traversal of
the graph are the engine's; `hwsim.functional.simulate_hardware` plugs these layers into it.
While it runs, each layer records what it read per timestep (`LayerRecord`: active PE
operations, nonzero inputs, ADC clips and conversions), summed over batches since
`HardwareNetwork.start`; `HardwareNetwork.activity` turns that into `LayerActivity`.

The first layer's input (a layer with no input layer) is analog (direct coding) and cannot drive
binary crossbar rows:

* `bit_serial` (default): x is quantised to `input_bits`-bit two's-complement codes,
  x ~= step (-2^(n-1) b_(n-1) + sum_(i<n-1) 2^i b_i), step = 2^ceil(log2(max|x| /
  (2^(n-1) - 1))) over the simulated images; each bit plane b_i is one binary crossbar read
  and the planes' partial sums are shift-added (the MSB with a negative weight).
* `digital`: the first layer is computed digitally, psum = conv(x, q) in float64.

With ideal settings (weights representable in `weight_bits` with a power-of-two scale, dyadic
inputs and biases, an ADC with enough bits and no clipping, no variation) the currents equal the
ideal engine's on the quantised weights bit for bit, and so do the spikes (tested).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
import torch

from hwsim.convert import SpikingNetwork, Weights
from hwsim.graph import Layer, LayerKind
from hwsim.hw.activity import LayerActivity
from hwsim.hw.arch import Architecture
from hwsim.hw.crossbar import CrossbarLayer
from hwsim.hw.device import Nonidealities, quantise_weights
from hwsim.hw.geometry import active_pe_operations, layer_patches


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


def quantise_network(
    snn: SpikingNetwork, weight_bits: int, *, power_of_two: bool = True
) -> SpikingNetwork:
    """`snn` with every conv and Linear weight replaced by its quantised value q s (per-layer
    symmetric, `hwsim.hw.device.quantise_weights`); biases, thresholds unchanged. Run the
    ideal engine on it to get the reference the hardware mode is compared against."""

    def quantised(layer: Layer, w: Weights) -> Weights:
        q = quantise_weights(w.weight.double().numpy(), weight_bits, power_of_two=power_of_two)
        return Weights(torch.from_numpy(q.dequantised()).float().contiguous(), w.bias)

    return snn.map_weights(quantised)


def input_step(images: np.ndarray, bits: int) -> float:
    """2^ceil(log2(max|x| / (2^(bits-1) - 1))): the bit-serial input step (module docstring)."""
    peak = float(np.abs(images).max()) if np.size(images) else 0.0
    if peak == 0.0:
        return 1.0
    return 2.0 ** math.ceil(math.log2(peak / ((1 << (bits - 1)) - 1)))


# --------------------------------------------------------------------- hardware layers


@dataclass(eq=False)
class LayerRecord:
    """What one hardware layer read in a run, per timestep (T,), summed over images: active PE
    operations (`hwsim.hw.geometry.active_pe_operations`), nonzero inputs (spikes; the analog
    first layer's nonzero pixels), and the run's ADC conversions and those that clipped."""

    active_pe_ops: np.ndarray
    input_spikes: np.ndarray
    adc_clips: int = 0
    adc_conversions: int = 0

    @classmethod
    def empty(cls, timesteps: int) -> LayerRecord:
        return cls(np.zeros(timesteps, np.int64), np.zeros(timesteps, np.int64))


@dataclass(eq=False)
class HardwareLayer:
    """One graph layer on crossbars: the code -> weight scale, its bias (None for GAP), its
    conv codes (the digital first layer reads them) and, for a layer reading the network
    input, how it reads the analog image (`analog`, `input_bits`).

    Called as `layer(x, t)` (the engine's synapse, module docstring) after `start`: returns
    the current and adds what it read to `record[t]`.
    """

    geometry: Layer
    crossbars: CrossbarLayer
    scale: float
    bias: torch.Tensor | None
    codes: np.ndarray | None = None  # (C_out, C_in, k, k) conv codes
    analog: FirstLayer | None = None  # the network input's layer: how the image is read
    input_bits: int = 8
    input_step: float = 0.0  # bit-serial input step of the run (`start`)
    record: LayerRecord | None = None

    def start(self, timesteps: int, input_step: float = 0.0) -> None:
        """Begin a run of `timesteps`: an empty record, the bit-serial `input_step`."""
        if timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {timesteps}")
        self.record = LayerRecord.empty(timesteps)
        self.input_step = input_step

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """The current for x, the source's output at timestep t (analog image or spikes)."""
        rec = self.record
        if rec is None:
            raise RuntimeError(f"{self.geometry.name}: start() the run before reading it")
        if not 0 <= t < len(rec.active_pe_ops):
            raise IndexError(
                f"{self.geometry.name}: timestep {t} outside the run's {len(rec.active_pe_ops)}"
            )
        if self.analog is None:
            cur, active, clips, conversions = self.current(x)
        else:
            cur, active, clips, conversions = self.analog_current(
                x, self.analog, self.input_step, self.input_bits
            )
        rec.active_pe_ops[t] += int(active.sum())
        rec.input_spikes[t] += int((x != 0).sum())
        rec.adc_clips += clips
        rec.adc_conversions += conversions
        return cur

    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        g = self.geometry
        return layer_patches(x, g, stride=g.stride, padding=g.padding)

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
        patches = self._patches(x)
        p, n, positions, c = patches.shape
        active = active_pe_operations(self.geometry, self.crossbars.arch, patches)
        psum, clips, conversions = self.crossbars.forward(patches.reshape(p, n * positions, c))
        return self._finish(psum, n), active, clips, conversions

    def analog_current(
        self, x: torch.Tensor, mode: FirstLayer, step: float, bits: int
    ) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """The first layer's current from the analog input x (module docstring)."""
        g = self.geometry
        n = x.shape[0]
        active = active_pe_operations(g, self.crossbars.arch, self._patches(x))
        if mode is FirstLayer.DIGITAL:
            assert self.codes is not None
            codes = torch.from_numpy(self.codes).double()
            psum = torch.nn.functional.conv2d(x.double(), codes, stride=g.stride, padding=g.padding)
            psum = psum.flatten(2).transpose(1, 2).reshape(-1, psum.shape[1])
            return self._finish(psum, n), active, 0, 0
        top = 1 << (bits - 1)
        codes = torch.clamp(torch.round(x.double() / step), -top, top - 1).to(torch.int64)
        twos = torch.remainder(codes, 1 << bits)
        planes = torch.cat([((twos >> i) & 1).to(torch.float32) for i in range(bits)])
        rows = self._patches(planes)
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
    """A converted network's layers on crossbars (`build_hardware`): `geometry` is the graph's
    layers in order, `layers` their `HardwareLayer`s by name (the engine's synapses)."""

    snn: SpikingNetwork
    arch: Architecture
    config: FunctionalConfig
    geometry: tuple[Layer, ...]
    layers: dict[str, HardwareLayer]

    def start(self, images: np.ndarray, timesteps: int) -> float:
        """Begin a run of `images` for `timesteps`: empty every layer's record and set the
        bit-serial input step over `images`; returns that step (0 for a digital first layer)."""
        cfg = self.config
        bit_serial = cfg.first_layer is FirstLayer.BIT_SERIAL
        step = input_step(images, cfg.input_bits) if bit_serial else 0.0
        for layer in self.layers.values():
            layer.start(timesteps, step)
        return step

    def _records(self) -> list[LayerRecord]:
        records = [self.layers[g.name].record for g in self.geometry]
        if any(r is None for r in records):
            raise RuntimeError("no run recorded: start() the hardware network first")
        return records  # type: ignore[return-value]

    def adc_clips(self) -> dict[str, int]:
        """ADC conversions that clipped, per layer, since `start`."""
        return {g.name: r.adc_clips for g, r in zip(self.geometry, self._records(), strict=True)}

    def adc_conversions(self) -> dict[str, int]:
        """ADC conversions, per layer, since `start`."""
        return {
            g.name: r.adc_conversions for g, r in zip(self.geometry, self._records(), strict=True)
        }

    def activity(self, output_spikes: np.ndarray, images: int) -> LayerActivity:
        """The run's `LayerActivity` over `images` images: the layers' records, with
        `output_spikes` (T, L), the spikes each geometry layer sent per timestep (computed by
        the caller from the engine's population spikes)."""
        records = self._records()
        active = np.stack([r.active_pe_ops for r in records], axis=1)
        inputs = np.stack([r.input_spikes for r in records], axis=1)
        names = tuple(g.name for g in self.geometry)
        return LayerActivity(names, max(images, 1), active, inputs, output_spikes)

    @property
    def synapses(self) -> Mapping[str, HardwareLayer]:
        """The layers by graph name, as `hwsim.engine.simulate(..., synapses=)` takes them."""
        return self.layers


def build_hardware(
    snn: SpikingNetwork, arch: Architecture, config: FunctionalConfig | None = None
) -> HardwareNetwork:
    """Quantise every layer of `snn` to `arch.device.weight_bits`, slice it onto crossbars and
    apply `config.noise` (one generator seeded with `noise.seed`, layers in graph order).

    A layer with no input layer reads the analog network input (`config.first_layer`; it must
    be a conv); a GAP layer is a diagonal crossbar; a Linear layer folds its features onto
    4 kernel positions (`hwsim.hw.geometry.LINEAR_KERNEL_ROWS`)."""
    config = config or FunctionalConfig()
    bits = arch.device.weight_bits
    pow2 = config.power_of_two_scale
    rng = np.random.default_rng(config.noise.seed)
    geometry = snn.graph.layers
    layers: dict[str, HardwareLayer] = {}

    def crossbars(matrix: np.ndarray) -> CrossbarLayer:
        return CrossbarLayer(matrix, arch, noise=config.noise, rng=rng)

    for g in geometry:
        analog = config.first_layer if not g.inputs else None
        if analog is not None and g.kind is not LayerKind.CONV:
            raise ValueError(f"{g.name}: the layer reading the network input must be a conv")
        if g.kind is LayerKind.GAP:
            q_max = (1 << (bits - 1)) - 1
            hw = g.kernel[0] * g.kernel[1]
            diag = np.zeros((hw, g.in_channels, g.out_channels), np.int64)
            diag[:, np.arange(g.in_channels), np.arange(g.in_channels)] = q_max
            layers[g.name] = HardwareLayer(g, crossbars(diag), 1.0 / (hw * q_max), None)
            continue
        w = snn.weights[g.name]
        q = quantise_weights(w.weight.double().numpy(), bits, power_of_two=pow2)
        if g.kind is LayerKind.LINEAR:
            layers[g.name] = HardwareLayer(g, crossbars(_linear_matrix(q.codes)), q.scale, w.bias)
        else:
            layers[g.name] = HardwareLayer(
                g,
                crossbars(_conv_matrix(q.codes)),
                q.scale,
                w.bias,
                q.codes,
                analog,
                config.input_bits,
            )
    return HardwareNetwork(snn, arch, config, geometry, layers)
