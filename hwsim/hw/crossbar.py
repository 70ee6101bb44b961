"""Functional crossbar + ADC: binary spikes in, quantised partial sums out, on the mapped chip.

One crossbar read (Ohm + Kirchhoff): driving row r with V_r = V_read if input r spiked, else 0,
column c carries I_c = sum_r V_r G_rc (amperes). A PE operation (`hwsim.hw.mapping`) reads its
crossbars together: under `kernel_split` the k_h k_w crossbars of one channel group, whose
columns are summed in analog (SpikeSim's PE: P crossbars share G ADCs, and its energy charges
one conversion per column per operation); under `unrolled` one crossbar. Before conversion a
weight's pair of columns (differential) or a column and its crossbar's reference column (offset)
are subtracted in analog (current mirror); digital-sign columns (SpikeSim) have the nominal
off-state current of the driven rows subtracted. Per signal column (slice j under columns
slicing; the whole weight under cells slicing, its slices being parallel cells of conductance
2^(jB) G):

    D = sum_r x_r e_r          e_r = (G+ - G-) / step, (G - G_ref) / step or (G - G_off) / step

in cell levels (one level = V_read step of current, step = (G_on - G_off) / (2^B - 1); ideal
cells give integers). The ADC (`Adc`) returns code = clip(round(D / LSB)) (ties to the even
code), LSB in levels: 1 for `auto` (SpikeSim's rule, an LSB of one cell), full_scale_ua over the
code span for `explicit`, per layer from observed signals for `calibrated`. Codes are signed
(-2^(n-1)..2^(n-1) - 1) for differential and offset, unsigned (0..2^n - 1) for digital sign.
Digital shift-add then sums over the layer's PE operations (its channel groups) and slices:

    psum_o = sum_ops sum_j 2^(jB) LSB code_op,j,o  -  2^(b-1) sum_r x_r s_ro     (weight codes)

the last term (digital sign, s_ro = [q_ro < 0]) computed by the periphery. With ideal cells,
an LSB of one level and no code clipping, psum_o = sum_r x_r q_ro exactly.

`read_rows` computes this in plain NumPy: the definition of a read, against which the numba
engine's crossbar kernels are tested (`hwsim.engine.CrossbarSynapse` in the IF loop; the batch
read `hwsim.engine._functional_kernels.read_window`, which the numba backend hands the analog
first layer as its `RowReader`), and the read of the torch-backend reference
(`hwsim.hw.synapse`). Float levels are summed in float32 in the order the kernels add them
(input position, then channel), so that all give the same currents bit for bit; integer levels
(ideal cells) are exact in any order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError, InputError
from hwsim.hw.arch import Architecture, MappingStyle, Slicing
from hwsim.hw.device import (
    Conductances,
    Nonidealities,
    apply_nonidealities,
    slice_weights,
    to_conductances,
)
from hwsim.hw.mapping import LayerMapping


@dataclass(frozen=True)
class Adc:
    """An ADC of `bits` bits in cell levels: codes code_min..code_max, one code = `lsb` levels;
    signed (-2^(n-1)..2^(n-1) - 1) or unsigned (0..2^n - 1)."""

    bits: int
    signed: bool
    lsb: float

    @property
    def code_min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def code_max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


def adc_of(arch: Architecture, lsb_levels: float | None = None) -> Adc:
    """The architecture's ADC, its LSB in levels `arch.adc_lsb_levels` (or `lsb_levels`, which
    a calibrated full scale needs)."""
    lsb = arch.adc_lsb_levels if lsb_levels is None else lsb_levels
    if lsb is None:
        raise ConfigError(f"{arch.name}: a calibrated ADC needs its LSB from a calibration run")
    return Adc(arch.adc.bits, arch.adc_signed, lsb)


def calibrated_lsb(adc_bits: int, signed: bool, signal_at_percentile: float) -> float:
    """NeuroSim's practice: the LSB that maps the given percentile of |column signal| onto the
    top code (2^(n-1) - 1 signed, 2^n - 1 unsigned); 1 level when nothing was observed."""
    top = (1 << (adc_bits - 1)) - 1 if signed else (1 << adc_bits) - 1
    if signal_at_percentile <= 0 or top == 0:
        return 1.0
    return signal_at_percentile / top


@dataclass(eq=False)
class ReadCounts:
    """What reads caused, summed over images: PE operations and crossbar reads (per column
    group, as `LayerActivity` counts them), nonzero inputs, ADC conversions and clips."""

    pe_ops: int = 0
    reads: int = 0
    inputs: int = 0
    clips: int = 0
    conversions: int = 0


class CrossbarLayer:
    """A layer's weight matrix (P kernel positions x C channels x O outputs of integer codes)
    on the crossbars of its `LayerMapping`: slices, conductances (with `noise`), and the
    signal columns the ADC converts (module docstring).

    `matrix` (P, C, K') holds per row the levels of the K signal columns, then (digital sign)
    the O sign bits, in the accumulator's dtype (int16 or int32 for ideal cells, else
    float32); `group[p, c]` the row's conversion group (kernel_split: its channel group,
    unrolled: its row group); `row_group[p, c]` its row group, i.e. which crossbar of a column
    group it lies on.

    `conductances` are those of every cell of the layer's crossbars, (..., RG, CG, R, O') with
    the unused cells of each crossbar: with `noise` they are drawn in that layout (the draws
    of a seed follow it); ideal cells sit on their levels, so the matrix is sliced from the
    codes themselves (slicing is cell by cell: the same levels) and the conductances are only
    laid out when asked for.
    """

    def __init__(
        self,
        codes: np.ndarray,
        mapped: LayerMapping,
        arch: Architecture,
        *,
        noise: Nonidealities | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        positions, channels, outputs = codes.shape
        if (positions, channels, outputs) != (mapped.positions, mapped.channels, mapped.outputs):
            raise InputError(
                f"{mapped.name}: codes {codes.shape} do not match the mapping's"
                f" ({mapped.positions}, {mapped.channels}, {mapped.outputs})"
            )
        self.arch, self.mapped = arch, mapped
        self._codes = codes
        device = arch.device
        noise = noise or Nonidealities()
        bits = device.bits_per_cell
        if noise.ideal:  # (S, P, C, O) integer levels of the codes; (P, C, O) sign bits
            self._conductances: Conductances | None = None
            levels = slice_weights(codes, device)
            eff, sign = levels.effective(), levels.sign
            self.slices = eff.shape[0]
            shifts = np.array([float(1 << (j * bits)) for j in range(self.slices)])
            if device.slicing is Slicing.CELLS:  # binary-weighted parallel cells: one column
                column = sum((eff[j] * (1 << j * bits) for j in range(1, self.slices)), eff[0])
                eff, shifts = column[None], np.ones(1)  # integers: exact in any order
        else:  # the cells of every crossbar (the draws follow them), then the layer's
            levels = slice_weights(self._per_crossbar(), device)
            self._conductances = apply_nonidealities(to_conductances(levels, device), noise, rng)
            cells = self._conductances.effective_levels()  # (S, RG, CG, R, O') float64
            self.slices = cells.shape[0]
            shifts = np.array([float(1 << (j * bits)) for j in range(self.slices)])
            if device.slicing is Slicing.CELLS:
                cells, shifts = np.tensordot(shifts, cells, axes=(0, 0))[None], np.ones(1)
            eff = self._layer_cells(cells)
            sign = None if levels.sign is None else self._layer_cells(levels.sign[None])[0]
        self.signal_columns = eff.shape[0]  # per output
        # (S', P, C, O) -> (P, C, O S'): output o's signal columns o S'..
        parts = [eff.transpose(1, 2, 3, 0).reshape(positions, channels, -1)]
        self.sign_weight = 0.0
        if sign is not None and sign.any():
            parts.append(sign)
            self.sign_weight = -float(1 << (device.weight_bits - 1))
        matrix = np.concatenate(parts, axis=2)
        self.matrix = np.ascontiguousarray(matrix, _accumulator_dtype(matrix, noise.ideal))
        self.col_shift = np.tile(shifts, outputs)
        self.group = _conversion_group(mapped)
        self.row_group = (_row_index(mapped) // arch.crossbar.rows).astype(np.int32)
        # the largest |signal| any input pattern can produce, per signal column
        self.peak_levels = float(np.abs(self.matrix[:, :, : self.signals]).sum(axis=(0, 1)).max())

    @property
    def conductances(self) -> Conductances:
        """Every cell's conductance, crossbar by crossbar (class docstring)."""
        if self._conductances is None:
            levels = slice_weights(self._per_crossbar(), self.arch.device)
            self._conductances = to_conductances(levels, self.arch.device)
        return self._conductances

    def _per_crossbar(self) -> np.ndarray:
        """The codes on the crossbars, (RG, CG, R, O'): one crossbar per (row group, column
        group), zero codes on the cells no row or output uses."""
        mapped, rows = self.mapped, self.arch.crossbar.rows
        per_xbar = mapped.outputs_per_crossbar
        positions, channels, outputs = self._codes.shape
        flat = _row_index(mapped)  # (P, C): row of the layer's row-group-major row list
        blocks = np.zeros((mapped.row_groups * rows, mapped.col_groups * per_xbar), np.int64)
        blocks[flat.ravel(), :outputs] = self._codes.reshape(positions * channels, outputs)
        per_crossbar = blocks.reshape(mapped.row_groups, rows, mapped.col_groups, per_xbar)
        return per_crossbar.transpose(0, 2, 1, 3)

    def _layer_cells(self, cells: np.ndarray) -> np.ndarray:
        """(S, RG, CG, R, O') per-crossbar cells -> (S, P, C, O): those of the layer's rows
        (kernel position, channel) and outputs."""
        mapped, rows = self.mapped, self.arch.crossbar.rows
        positions, channels, outputs = self._codes.shape
        flat = _row_index(mapped).ravel()
        # (S, RG, CG, R, O') -> (S, RG R, CG O')
        by_row = cells.transpose(0, 1, 3, 2, 4).reshape(len(cells), mapped.row_groups * rows, -1)
        return by_row[:, flat, :outputs].reshape(len(cells), positions, channels, outputs)

    @property
    def signals(self) -> int:
        """Signal columns of the layer: outputs x signal columns per output."""
        return self.mapped.outputs * self.signal_columns

    @property
    def rows(self) -> CrossbarRows:
        """The layer's rows as `read_rows` reads them."""
        return CrossbarRows(
            self.matrix, self.group, self.row_group, self.signal_columns, self.col_shift,
            self.sign_weight,
        )  # fmt: skip

    def read(
        self,
        x: np.ndarray,
        window: Window,
        *,
        scale: float,
        bias: np.ndarray,
        adc: Adc | None,
        hist: np.ndarray | None = None,
        hist_step: float = 0.125,
        reader: RowReader | None = None,
    ) -> tuple[np.ndarray, ReadCounts]:
        """(current (N, O, H_out, W_out) float32, counts) of `x` (N, C, H, W) (nonzero = a
        driven row) through the layer's crossbars (`read_rows`, or `reader`: the same read
        computed otherwise), its PE operations and reads counted over every column group."""
        read = read_rows if reader is None else reader
        out, counts = read(x, self.rows, window, adc, scale, bias, hist, hist_step)
        return out, self._over_column_groups(counts)

    def read_counts(self, x: np.ndarray, window: Window) -> ReadCounts:
        """What `read` of `x` counts before any conversion (`read_counts`), over every column
        group."""
        return self._over_column_groups(read_counts(x, self.rows, window))

    def _over_column_groups(self, counts: ReadCounts) -> ReadCounts:
        """`counts` of one column group with its PE operations and reads in every one."""
        counts.pe_ops *= self.mapped.col_groups
        counts.reads *= self.mapped.col_groups
        return counts


@dataclass(frozen=True)
class CrossbarRows:
    """What a driven row adds, in the order of a layer's rows (kernel position p, channel c):
    `matrix[p, c]` (K columns, cell levels: the first `signals` = outputs x `per_output`
    signal columns, output o's o per_output.., then one digital sign column per output where
    `sign_weight` != 0) into the accumulator of its conversion group `group[p, c]`; it lies on
    crossbar `crossbar[p, c]`; signal column k's code weighs `col_shift[k]` in the shift-add."""

    matrix: np.ndarray  # (P, C, K) integer or float32
    group: np.ndarray  # (P, C) int
    crossbar: np.ndarray  # (P, C) int
    per_output: int
    col_shift: np.ndarray  # (signals,) float64
    sign_weight: float

    @property
    def signals(self) -> int:
        return len(self.col_shift)


@dataclass(frozen=True)
class Window:
    """A layer's window: kernel (k_h, k_w), stride and zero padding, output map (H_out, W_out)."""

    kernel: tuple[int, int]
    stride: int
    padding: int
    out_hw: tuple[int, int]


READ_ELEMENTS = 1 << 22
"""Elements of the largest intermediate array `read_rows` makes at once (it takes the images
in groups): 32 MiB of float64."""

RowReader = Callable[
    [np.ndarray, CrossbarRows, Window, Adc | None, float, np.ndarray, np.ndarray | None, float],
    tuple[np.ndarray, ReadCounts],
]
"""What reads rows as `read_rows` does (its arguments, its result): `read_rows` itself, or a
faster computation of the same bits (the numba engine's, `hwsim.pipeline.hardware`)."""


def read_rows(
    x: np.ndarray,
    rows: CrossbarRows,
    window: Window,
    adc: Adc | None,
    scale: float,
    bias: np.ndarray,
    hist: np.ndarray | None = None,
    hist_step: float = 0.125,
) -> tuple[np.ndarray, ReadCounts]:
    """The current (N, O, H_out, W_out) float32 of `x` (N, C, H, W) read through `rows` with
    `window`, and what the read counted (module docstring).

    At each output position every row its window drives (x != 0; padding drives nothing) adds
    its levels to its group's accumulator D: a PE operation is an (output position, group)
    with a driven row. Per operation each signal column is converted, code = clip(round(D /
    LSB)) (ties to even), and output o gets LSB sum_j col_shift_k code_k (k = o per_output + j,
    in j order) + sign_weight D_sign,o; without ADC (`adc` None) D itself, and `hist` (bins of
    `hist_step` levels, the last taking the rest) counts |D| of every conversion. Operations
    add up in group order; the current is float32(psum scale) + bias. Counts: operations,
    crossbar reads (distinct (output position, crossbar) with a driven row), nonzero inputs,
    clipped conversions, conversions (operations x signals)."""
    out = np.empty((len(x), len(bias), *window.out_hw), np.float32)
    counts = ReadCounts(inputs=int(np.count_nonzero(x)))
    for part in _image_groups(x, rows, window):
        driven = _driven(x[part], window)
        touched = _count_operations(driven, rows, counts)
        out[part] = _convert(
            driven, touched, rows, window, adc, scale, bias, hist, hist_step, counts
        )
    return out, counts


def read_counts(x: np.ndarray, rows: CrossbarRows, window: Window) -> ReadCounts:
    """What `read_rows` of `x` counts before any conversion: PE operations, crossbar reads and
    nonzero inputs."""
    counts = ReadCounts(inputs=int(np.count_nonzero(x)))
    for part in _image_groups(x, rows, window):
        _count_operations(_driven(x[part], window), rows, counts)
    return counts


def _image_groups(x: np.ndarray, rows: CrossbarRows, window: Window) -> list[slice]:
    """The images of `x` in groups whose arrays stay within READ_ELEMENTS."""
    groups = int(rows.group.max(initial=0)) + 1
    per_image = int(np.prod(window.out_hw)) * max(rows.group.size, groups * rows.matrix.shape[2])
    step = max(1, READ_ELEMENTS // max(per_image, 1))
    return [slice(n0, n0 + step) for n0 in range(0, len(x), step)]


def _driven(x: np.ndarray, window: Window) -> np.ndarray:
    """(P C, M) bool: whether row (p, c), p = ky k_w + kx, is driven at each output position
    (n, oy, ox) of M = N H_out W_out."""
    n, channels, h, w = x.shape
    (kh, kw), s, pad = window.kernel, window.stride, window.padding
    ho, wo = window.out_hw
    on = np.pad(x != 0, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    taps = [
        on[:, :, ky : ky + s * (ho - 1) + 1 : s, kx : kx + s * (wo - 1) + 1 : s]
        for ky in range(kh)
        for kx in range(kw)
    ]  # P x (N, C, H_out, W_out)
    return np.stack(taps).transpose(0, 2, 1, 3, 4).reshape(kh * kw * channels, -1)


def _count_operations(driven: np.ndarray, rows: CrossbarRows, counts: ReadCounts) -> np.ndarray:
    """(groups, M) bool: the PE operations with a driven row; adds them and their crossbar
    reads to `counts`."""
    group, crossbar = rows.group.ravel(), rows.crossbar.ravel()
    touched = _any_of(driven, group, group.max(initial=0) + 1)
    counts.pe_ops += int(np.count_nonzero(touched))
    counts.reads += int(np.count_nonzero(_any_of(driven, crossbar, crossbar.max(initial=0) + 1)))
    return touched


def _convert(
    driven: np.ndarray,
    touched: np.ndarray,
    rows: CrossbarRows,
    window: Window,
    adc: Adc | None,
    scale: float,
    bias: np.ndarray,
    hist: np.ndarray | None,
    hist_step: float,
    counts: ReadCounts,
) -> np.ndarray:
    """The current (N, O, H_out, W_out) of a group of images from the rows `driven` (P C, M)
    and the operations `touched` (groups, M) (arrays hold the output positions on their last
    axis); adds the conversions and those that clipped to `counts`."""
    groups, signals, per = len(touched), rows.signals, rows.per_output
    matrix = rows.matrix.reshape(len(driven), -1)
    acc = _accumulate(driven, matrix, rows.group.ravel(), groups)  # (groups, K, M)
    counts.conversions += int(np.count_nonzero(touched)) * signals
    value = acc[:, :signals].astype(np.float64)  # the signals D, then their codes
    if adc is None:
        if hist is not None:
            level = np.abs(value.transpose(0, 2, 1)[touched])  # (operations, signals)
            bins = (level / hist_step + 0.5).astype(np.int64).ravel()
            hist += np.bincount(np.minimum(bins, len(hist) - 1), minlength=len(hist))
    else:
        value /= adc.lsb
        np.rint(value, out=value)
        raw = value.copy()
        np.clip(value, adc.code_min, adc.code_max, out=value)
        counts.clips += int(np.count_nonzero(value != raw))
    outputs = signals // per
    value = value.reshape(groups, outputs, per, -1)
    shift = rows.col_shift.reshape(outputs, per, 1)
    op = value[:, :, 0] * shift[:, 0]  # (groups, O, M): each operation, j in order
    for j in range(1, per):
        op += value[:, :, j] * shift[:, j]
    if adc is not None:
        op *= adc.lsb
    if rows.sign_weight != 0:
        op += rows.sign_weight * acc[:, signals:].astype(np.float64)
    psum = op[0]
    for g in range(1, groups):  # operations in group order
        psum += op[g]
    psum *= scale
    current = psum.astype(np.float32)
    current += np.asarray(bias, np.float32)[:, None]
    n = driven.shape[1] // int(np.prod(window.out_hw))
    return current.reshape(outputs, n, *window.out_hw).transpose(1, 0, 2, 3)


def _accumulate(
    driven: np.ndarray, matrix: np.ndarray, group: np.ndarray, groups: int
) -> np.ndarray:
    """(groups, K, M): each group's sum of the rows of `matrix` (P C, K) `driven` (P C, M) at
    each output position. Integer levels: a product in float32 where every column's levels
    sum below 2^24 (exact), else in float64; float32 levels: added in float32 row by row, in
    row order (input position, then channel), as the engine adds them."""
    if matrix.dtype.kind in "iu":
        exact32 = not matrix.size or np.abs(matrix, dtype=np.int64).sum(axis=0).max() < 2**24
        dtype = np.float32 if exact32 else np.float64
        on = driven.astype(dtype)
        levels = matrix.T.astype(dtype)
        return np.stack([levels[:, group == g] @ on[group == g] for g in range(groups)])
    total = np.zeros((groups, matrix.shape[1], driven.shape[1]), np.float32)
    for r in range(len(matrix)):  # + 0 where a row is not driven: no change
        total[group[r]] += matrix[r][:, None] * driven[r]
    return total


def _any_of(driven: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """(size, M) bool: whether some `driven` (P C, M) row of index i is driven at each output
    position."""
    out = np.zeros((size, driven.shape[1]), bool)
    for i in np.unique(index):
        out[i] = driven[index == i].any(axis=0)
    return out


def _accumulator_dtype(matrix: np.ndarray, ideal: bool) -> type:
    """int16 (or int32) for ideal cells, whose levels are integers, when every analog sum of a
    column fits; float32 otherwise. Integers are exact either way."""
    if not ideal:
        return np.float32
    peak = float(np.abs(matrix).sum(axis=(0, 1)).max()) if matrix.size else 0.0
    return np.int16 if peak < 2**15 else np.int32 if peak < 2**31 else np.float64


def _row_index(mapped: LayerMapping) -> np.ndarray:
    """(P, C) position of row (kernel position p, channel c) in the layer's rows listed row
    group by row group (crossbar.rows each; `hwsim.hw.mapping`: kernel_split row group
    g P + p holds channels g R..; unrolled row group r holds flat rows p C + c in r R..)."""
    p = np.arange(mapped.positions)[:, None]
    c = np.arange(mapped.channels)[None, :]
    rows = mapped.rows
    if mapped.style is MappingStyle.KERNEL_SPLIT:
        return ((c // rows) * mapped.positions + p) * rows + c % rows
    return np.broadcast_to(p * mapped.channels + c, (mapped.positions, mapped.channels)).copy()


def _conversion_group(mapped: LayerMapping) -> np.ndarray:
    """(P, C) int32 conversion group of each row: its channel group (kernel_split: a PE
    operation sums the P positions in analog) or its row group (unrolled)."""
    p = np.arange(mapped.positions)[:, None]
    c = np.arange(mapped.channels)[None, :]
    if mapped.style is MappingStyle.KERNEL_SPLIT:
        group = np.broadcast_to(c // mapped.rows, (mapped.positions, mapped.channels))
    else:
        group = (p * mapped.channels + c) // mapped.rows
    return np.ascontiguousarray(group, np.int32)
