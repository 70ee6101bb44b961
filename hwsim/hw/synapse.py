"""Hardware-functional layers: the converted SNN's weight layers as crossbar + ADC synapses on the
mapped chip.

A `HardwareLayer` gives one graph layer's synaptic current from the crossbars its
`hwsim.hw.mapping.LayerMapping` assigns it (`hwsim.hw.crossbar.CrossbarLayer`):

    I = float32(psum s) + b

psum being the shift-added, ADC-quantised crossbar partial sums in weight-code units (integer
codes q, quantised per layer by `hwsim.hw.device.quantise_weights`), s the layer's scale and b
its bias, added digitally in the neuron module. A GAP layer is a crossbar layer too (SpikeSim's
convention): a diagonal of 1/(H W) per kernel position, stored as codes q_max with scale
1/(H W q_max), so that 1/(H W) is represented exactly. A Linear layer folds feature f onto row
channel f // 4 of kernel position f % 4 (`hwsim.hw.geometry.LINEAR_KERNEL_ROWS`).

A layer is called as `layer(x, t)` with what its source emits at timestep t, and returns the
current shaped as the layer's dense op (conv NCHW -> NCHW, GAP NCHW -> (N, C), Linear (N, F) ->
(N, classes)): the shape of the IF engine's synapse (`hwsim.engine.Synapse`), which it satisfies
without this package importing the engine. While it runs, each layer records what it read per
timestep (`LayerRecord`: PE operations and crossbar reads with a driven row, nonzero inputs,
ADC clips and conversions), summed over batches since `HardwareNetwork.start`;
`HardwareNetwork.activity` turns that into `LayerActivity`, which energy and timing charge.
`HardwareLayer.dense_rows` gives its crossbars' rows in the dense op's order, for the numba
engine's own crossbar kernel (`hwsim.pipeline.hardware.crossbar_synapse`), whose counts per timestep
come back through `LayerRecord.add_steps`.

The ADC's LSB is one cell level (`auto`), the YAML's (`explicit`), or per layer from a
calibration run (`calibrated`, NeuroSim's practice): `HardwareNetwork.calibrating` reads without
ADC and collects |signal| per layer; `calibrate` sets each layer's LSB so that the
`adc.calibration_percentile` of its signals meets the top code.

The first layer's input (a layer with no input layer) is analog (direct coding) and cannot drive
binary crossbar rows:

* `bit_serial` (default): x is quantised to `input_bits`-bit two's-complement codes,
  x ~= step (-2^(n-1) b_(n-1) + sum_(i<n-1) 2^i b_i), step = 2^ceil(log2(max|x| /
  (2^(n-1) - 1))) over the simulated images; each bit plane b_i is one binary crossbar read
  and the planes' partial sums are shift-added (the MSB with a negative weight).
* `digital`: the first layer is computed digitally, psum = conv(x, q) in float64.

Under direct coding its input is the same every timestep, so the current of timestep 0 is kept
for the batch (its bit planes read once, by `HardwareLayer.reader`: `read_rows`, or on the
numba backend the engine's kernel of the same read). Its activity is that of its nonzero inputs
(as the engine counts an analog input), every timestep.

With ideal settings (weights representable in `weight_bits` with a power-of-two scale, dyadic
inputs and biases, an ADC whose LSB is one level and no clipping, no variation) the currents
equal the ideal engine's on the quantised weights bit for bit, and so do the spikes (tested).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from hwsim.errors import InputError, ModelError
from hwsim.hw.arch import Architecture, FullScale
from hwsim.hw.crossbar import (
    Adc,
    CrossbarLayer,
    ReadCounts,
    RowReader,
    Window,
    adc_of,
    calibrated_lsb,
)
from hwsim.hw.device import Nonidealities, quantise_weights
from hwsim.hw.geometry import LINEAR_KERNEL_ROWS
from hwsim.hw.mapping import ChipMapping, map_network
from hwsim.hw.pooling import refuse_pool_layers
from hwsim.model.graph import Layer, LayerKind

if TYPE_CHECKING:  # torch is imported where a layer is read or its weights quantised: a
    # functional configuration is built without it
    import torch

    from hwsim.model.convert import SpikingNetwork, Weights


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
    threads: int = 2  # worker threads of the numba engine's run

    def __post_init__(self) -> None:
        if not 2 <= self.input_bits <= 24:
            raise InputError(f"input_bits must be in 2..24, got {self.input_bits}")
        if self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")


def with_adc(
    arch: Architecture,
    bits: int | None = None,
    *,
    full_scale: FullScale | None = None,
    full_scale_levels: float | None = None,
) -> Architecture:
    """`arch` with another ADC resolution and/or full scale (`full_scale_levels` in cell levels
    means an explicit full scale of that many levels' current). The energy and area constants
    keep their reference resolution, so they scale with the new bits. None keeps a value."""
    adc = replace(arch.adc, reference_bits=arch.adc.reference_bits or arch.adc.bits)
    if bits is not None:
        adc = replace(adc, bits=bits)
    if full_scale_levels is not None:
        if full_scale not in (None, FullScale.EXPLICIT):
            raise InputError(
                f"full_scale_levels sets an explicit full scale, got full_scale={full_scale}"
            )
        full_scale_ua = full_scale_levels * arch.level_a * 1e6
        adc = replace(adc, full_scale=FullScale.EXPLICIT, full_scale_ua=full_scale_ua)
    elif full_scale is not None:
        if full_scale is FullScale.EXPLICIT:
            raise InputError("full_scale=explicit needs full_scale_levels")
        adc = replace(adc, full_scale=full_scale, full_scale_ua=None)
    return replace(arch, adc=adc)


# ---------------------------------------------------------------------- quantisation


def quantise_network(
    snn: SpikingNetwork, weight_bits: int, *, power_of_two: bool = True
) -> SpikingNetwork:
    """`snn` with every conv and Linear weight replaced by its quantised value q s (per-layer
    symmetric, `hwsim.hw.device.quantise_weights`); biases, thresholds unchanged. Run the
    ideal engine on it to get the reference the hardware mode is compared against."""
    import torch

    from hwsim.model.convert import Weights

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
    """What one hardware layer read in a run, per timestep (T,), summed over images: PE
    operations and crossbar reads with a driven row, nonzero inputs (spikes; the analog first
    layer's nonzero pixels), and the run's ADC conversions and those that clipped."""

    active_pe_ops: np.ndarray
    crossbar_reads: np.ndarray
    input_spikes: np.ndarray
    adc_clips: int = 0
    adc_conversions: int = 0

    @classmethod
    def empty(cls, timesteps: int) -> LayerRecord:
        return cls(*(np.zeros(timesteps, np.int64) for _ in range(3)))

    def add(self, t: int, counts: ReadCounts) -> None:
        self.active_pe_ops[t] += counts.pe_ops
        self.crossbar_reads[t] += counts.reads
        self.input_spikes[t] += counts.inputs
        self.adc_clips += counts.clips
        self.adc_conversions += counts.conversions

    def add_steps(
        self,
        pe_ops: np.ndarray,
        reads: np.ndarray,
        inputs: np.ndarray,
        clips: int,
        conversions: int,
    ) -> None:
        """Add a run's counts per timestep ((T,) each) and its ADC totals."""
        self.active_pe_ops += pe_ops
        self.crossbar_reads += reads
        self.input_spikes += inputs
        self.adc_clips += clips
        self.adc_conversions += conversions


@dataclass(eq=False)
class HardwareLayer:
    """One graph layer on its crossbars: the code -> weight scale, its bias (zeros for GAP), its
    conv codes (the digital first layer reads them) and, for a layer reading the network
    input, how it reads the analog image (`analog`, `input_bits`). `adc` None reads without
    conversion (calibration; `hist` then collects |signal| in bins of `hist_step` levels).
    `reader` computes its reads (`hwsim.hw.crossbar.read_rows` when None; the numba backend
    gives it the engine's kernel of the same read, `hwsim.pipeline.hardware`).

    Called as `layer(x, t)` (the engine's synapse, module docstring) after `start`: returns
    the current and adds what it read to `record[t]`.
    """

    geometry: Layer
    crossbars: CrossbarLayer
    scale: float
    bias: np.ndarray
    adc: Adc | None
    codes: np.ndarray | None = None  # (C_out, C_in, k, k) conv codes
    analog: FirstLayer | None = None  # the network input's layer: how the image is read
    input_bits: int = 8
    input_step: float = 0.0  # bit-serial input step of the run (`start`)
    record: LayerRecord | None = None
    hist: np.ndarray | None = None
    hist_step: float = 0.125
    reader: RowReader | None = None
    _cached: tuple[torch.Tensor, torch.Tensor, ReadCounts] | None = None

    def start(self, timesteps: int, input_step: float = 0.0) -> None:
        """Begin a run of `timesteps`: an empty record, the bit-serial `input_step`."""
        if timesteps < 1:
            raise InputError(f"timesteps must be >= 1, got {timesteps}")
        self.record = LayerRecord.empty(timesteps)
        self.input_step = input_step
        self._cached = None

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
            cur, counts = self._read(x)
        else:
            cur, counts = self._analog_current(x)
        rec.add(t, counts)
        return cur

    def dense_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(matrix (P, C, K'), group (P, C), row group (P, C)) of the crossbars
        (`CrossbarLayer`) with rows in the order of the layer's dense op: (kernel position,
        channel) of a conv or GAP; (0, feature) of a Linear layer, SpikeSim's (4, 1) fold
        undone (feature f sits on row channel f // 4 of kernel position f % 4)."""
        xb = self.crossbars
        arrays = (xb.matrix, xb.group, xb.row_group)
        if self.geometry.kind is not LayerKind.LINEAR:
            return arrays
        features = self.geometry.in_channels

        def unfold(a: np.ndarray) -> np.ndarray:  # [p, c] -> [0, 4 c + p]
            by_feature = np.swapaxes(a, 0, 1).reshape(-1, *a.shape[2:])
            return np.ascontiguousarray(by_feature[None, :features])

        return unfold(arrays[0]), unfold(arrays[1]), unfold(arrays[2])

    def _rows_input(self, x: torch.Tensor) -> tuple[np.ndarray, Window]:
        """x as the crossbars' (N, C, H, W) float32 rows and their window: a conv's own; a
        GAP's its whole map; a Linear's (N, F) features padded to 4 C' and laid out as C'
        channels on a (4, 1) map (feature f: channel f // 4, row f % 4), one window."""
        a = x.detach().numpy()
        g = self.geometry
        if g.kind is LayerKind.CONV:
            return np.ascontiguousarray(a, np.float32), Window(
                g.kernel, g.stride, g.padding, g.out_hw
            )
        if g.kind is LayerKind.LINEAR:
            n, features = a.shape
            rows = self.crossbars.mapped.channels
            padded = np.zeros((n, rows * LINEAR_KERNEL_ROWS), np.float32)
            padded[:, :features] = a
            a = padded.reshape(n, rows, LINEAR_KERNEL_ROWS, 1)
        return np.ascontiguousarray(a, np.float32), Window(a.shape[2:], 1, 0, (1, 1))

    def _read(
        self,
        x: torch.Tensor,
        *,
        scale: float | None = None,
        bias: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, ReadCounts]:
        """(current, counts) of binary inputs x: float32(psum scale) + bias, shaped as the
        layer's dense op."""
        import torch

        rows, window = self._rows_input(x)
        out, counts = self.crossbars.read(
            rows,
            window,
            scale=self.scale if scale is None else scale,
            bias=self.bias if bias is None else bias,
            adc=self.adc,
            hist=self.hist,
            hist_step=self.hist_step,
            reader=self.reader,
        )
        cur = torch.from_numpy(out)
        conv = self.geometry.kind is LayerKind.CONV
        return (cur if conv else cur.reshape(len(rows), -1)), counts

    def _analog_current(self, x: torch.Tensor) -> tuple[torch.Tensor, ReadCounts]:
        """The first layer's current from the analog input x (module docstring), computed at
        the batch's first timestep and kept while the same input comes back."""
        import torch

        if self._cached is not None and self._cached[0] is x:
            return self._cached[1], self._cached[2]
        g = self.geometry
        n = x.shape[0]
        zeros = np.zeros(g.out_channels, np.float32)
        # activity: the reads of the nonzero pixels (the bit planes' conversions counted once)
        counts = self.crossbars.read_counts(*self._rows_input(x))
        if self.analog is FirstLayer.DIGITAL:
            assert self.codes is not None
            codes = torch.from_numpy(self.codes).double()
            psum = torch.nn.functional.conv2d(x.double(), codes, stride=g.stride, padding=g.padding)
        else:
            bits, step = self.input_bits, self.input_step
            top = 1 << (bits - 1)
            q = torch.clamp(torch.round(x.double() / step), -top, top - 1).to(torch.int64)
            twos = torch.remainder(q, 1 << bits)
            planes = torch.cat([((twos >> i) & 1).to(torch.float32) for i in range(bits)])
            part, plane_counts = self._read(planes, scale=1.0, bias=zeros)
            part = part.double().reshape(bits, n, *part.shape[1:])
            weights = torch.tensor([float(1 << i) for i in range(bits - 1)] + [-float(top)])
            psum = torch.einsum("bnchw,b->nchw", part, weights.double()) * step
            counts = replace(counts, clips=plane_counts.clips, conversions=plane_counts.conversions)
        current = (psum * self.scale).to(torch.float32) + torch.from_numpy(self.bias)[:, None, None]
        self._cached = (x, current, counts)
        return current, counts


def _conv_matrix(codes: np.ndarray) -> np.ndarray:
    """(C_out, C_in, kh, kw) codes -> (P, C_in, C_out) crossbar matrix, P = kh kw row-major."""
    c_out, c_in, kh, kw = codes.shape
    return codes.transpose(2, 3, 1, 0).reshape(kh * kw, c_in, c_out)


def _linear_matrix(codes: np.ndarray) -> np.ndarray:
    """(classes, F) codes -> (4, ceil(F / 4), classes): feature f on row f // 4, position f % 4."""
    classes, features = codes.shape
    rows = -(-features // LINEAR_KERNEL_ROWS)
    padded = np.zeros((rows * LINEAR_KERNEL_ROWS, classes), np.int64)
    padded[:features] = codes.T
    return padded.reshape(rows, LINEAR_KERNEL_ROWS, classes).transpose(1, 0, 2)


@dataclass(eq=False)
class HardwareNetwork:
    """A converted network's layers on the crossbars of `mapping` (`build_hardware`):
    `geometry` is the graph's layers in order, `layers` their `HardwareLayer`s by name (the
    engine's synapses)."""

    snn: SpikingNetwork
    mapping: ChipMapping
    config: FunctionalConfig
    geometry: tuple[Layer, ...]
    layers: dict[str, HardwareLayer]

    @property
    def arch(self) -> Architecture:
        return self.mapping.arch

    def start(self, images: np.ndarray, timesteps: int) -> float:
        """Begin a run of `images` for `timesteps`: empty every layer's record and set the
        bit-serial input step over `images`; returns that step (0 for a digital first layer)."""
        cfg = self.config
        bit_serial = cfg.first_layer is FirstLayer.BIT_SERIAL
        step = input_step(images, cfg.input_bits) if bit_serial else 0.0
        for layer in self.layers.values():
            layer.start(timesteps, step)
        return step

    @property
    def calibrated(self) -> bool:
        """Whether every layer has an ADC (a calibrated full scale needs `calibrate` first)."""
        return all(layer.adc is not None for layer in self.layers.values())

    def calibrating(self) -> None:
        """Read without ADC and collect each layer's |signal| histogram (bins of 1/8 level up to
        the largest signal its crossbars can produce) until `calibrate`."""
        for layer in self.layers.values():
            layer.adc = None
            bins = int(layer.crossbars.peak_levels / layer.hist_step) + 2
            layer.hist = np.zeros(bins, np.int64)

    def calibrate(self) -> dict[str, float]:
        """Each layer's LSB (levels) from its histogram: the adc.calibration_percentile of
        |signal| meets the top code (`hwsim.hw.crossbar.calibrated_lsb`); returns them."""
        arch = self.arch
        out: dict[str, float] = {}
        for name, layer in self.layers.items():
            hist = layer.hist
            if hist is None:
                raise RuntimeError("calibrate() needs a calibrating() run first")
            total = int(hist.sum())
            level = 0.0
            if total:  # the smallest bin holding the percentile's rank (1e-9: float noise)
                rank = math.ceil(arch.adc.calibration_percentile / 100 * total - 1e-9)
                level = float(np.searchsorted(np.cumsum(hist), rank)) * layer.hist_step
            out[name] = calibrated_lsb(arch.adc.bits, arch.adc_signed, level)
            layer.adc = adc_of(arch, out[name])
            layer.hist = None
        return out

    def _records(self) -> list[LayerRecord]:
        records = [self.layers[g.name].record for g in self.geometry]
        if any(r is None for r in records):
            raise RuntimeError("no run recorded: start() the hardware network first")
        return records  # type: ignore[return-value]

    def adc_clips(self) -> dict[str, int]:
        """ADC conversions that clipped, per layer, since `start`."""
        return {g.name: r.adc_clips for g, r in zip(self.geometry, self._records(), strict=True)}

    def adc_conversions(self) -> dict[str, int]:
        """ADC conversions (signal columns converted), per layer, since `start`."""
        return {
            g.name: r.adc_conversions for g, r in zip(self.geometry, self._records(), strict=True)
        }

    @property
    def synapses(self) -> Mapping[str, HardwareLayer]:
        """The layers by graph name, as `hwsim.engine.simulate(..., synapses=)` takes them."""
        return self.layers


def build_hardware(
    snn: SpikingNetwork, arch: Architecture, config: FunctionalConfig | None = None
) -> HardwareNetwork:
    """Map `snn`'s graph onto `arch` (`hwsim.hw.mapping.map_network`), quantise every layer to
    `arch.device.weight_bits`, slice it onto its crossbars and apply `config.noise` (one
    generator seeded with `noise.seed`, layers in graph order).

    A layer with no input layer reads the analog network input (`config.first_layer`; it must
    be a conv). With a calibrated full scale the layers have no ADC until
    `HardwareNetwork.calibrate`. A graph with local pooling layers is refused
    (`hwsim.hw.pooling.refuse_pool_layers`)."""
    refuse_pool_layers(snn.graph)  # they run on the pooling unit, not on crossbars
    config = config or FunctionalConfig()
    mapping = map_network(arch, snn.graph)
    bits = arch.device.weight_bits
    pow2 = config.power_of_two_scale
    rng = np.random.default_rng(config.noise.seed)
    adc = None if arch.adc_lsb_levels is None else adc_of(arch)
    layers: dict[str, HardwareLayer] = {}
    for g in snn.graph.layers:
        mapped = mapping.layer(g.name)

        def layer(
            matrix: np.ndarray, scale: float, bias: np.ndarray, g=g, mapped=mapped, **kw
        ) -> HardwareLayer:
            xbars = CrossbarLayer(matrix, mapped, arch, noise=config.noise, rng=rng)
            return HardwareLayer(g, xbars, scale, bias, adc, **kw)

        analog = config.first_layer if not g.inputs else None
        if analog is not None and g.kind is not LayerKind.CONV:
            raise ModelError(
                f"{g.name}: the layer reading the network input must be a conv, got {g.kind}"
            )
        if g.kind is LayerKind.GAP:
            q_max = (1 << (bits - 1)) - 1
            hw = g.kernel[0] * g.kernel[1]
            diag = np.zeros((hw, g.in_channels, g.out_channels), np.int64)
            diag[:, np.arange(g.in_channels), np.arange(g.in_channels)] = q_max
            zeros = np.zeros(g.out_channels, np.float32)
            layers[g.name] = layer(diag, 1.0 / (hw * q_max), zeros)
            continue
        w = snn.weights[g.name]
        q = quantise_weights(w.weight.double().numpy(), bits, power_of_two=pow2)
        bias = w.bias.detach().numpy().astype(np.float32)
        if g.kind is LayerKind.LINEAR:
            layers[g.name] = layer(_linear_matrix(q.codes), q.scale, bias)
        else:
            layers[g.name] = layer(
                _conv_matrix(q.codes),
                q.scale,
                bias,
                codes=q.codes,
                analog=analog,
                input_bits=config.input_bits,
            )
    return HardwareNetwork(snn, mapping, config, snn.graph.layers, layers)
