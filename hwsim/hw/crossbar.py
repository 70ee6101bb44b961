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
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from hwsim.hw import _xbar_kernels as K
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
        raise ValueError(f"{arch.name}: a calibrated ADC needs its LSB from a calibration run")
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
            raise ValueError(
                f"{mapped.name}: codes {codes.shape} do not match the mapping's"
                f" ({mapped.positions}, {mapped.channels}, {mapped.outputs})"
            )
        self.arch, self.mapped = arch, mapped
        device = arch.device
        rows, per_xbar = arch.crossbar.rows, mapped.outputs_per_crossbar
        flat = _row_index(mapped)  # (P, C): row of the layer's row-group-major row list
        blocks = np.zeros((mapped.row_groups * rows, mapped.col_groups * per_xbar), np.int64)
        blocks[flat.ravel(), :outputs] = codes.reshape(positions * channels, outputs)
        # (RG, CG, R, O'): one crossbar per (row group, column group)
        per_crossbar = blocks.reshape(mapped.row_groups, rows, mapped.col_groups, per_xbar)
        per_crossbar = per_crossbar.transpose(0, 2, 1, 3)
        levels = slice_weights(per_crossbar, device)
        ideal = to_conductances(levels, device)
        self.conductances: Conductances = apply_nonidealities(ideal, noise or Nonidealities(), rng)
        if self.conductances.ideal:
            eff = levels.effective().astype(np.float64)
        else:
            eff = self.conductances.effective_levels()
        self.slices = eff.shape[0]
        bits = device.bits_per_cell
        shifts = np.array([float(1 << (j * bits)) for j in range(self.slices)])
        if device.slicing is Slicing.CELLS:  # binary-weighted parallel cells: one column
            eff = np.tensordot(shifts, eff, axes=(0, 0))[None]
            shifts = np.ones(1)
        self.signal_columns = eff.shape[0]  # per output
        # (S', RG, CG, R, O') -> rows (RG R) x (CG O') x S' -> layer rows and outputs
        by_row = eff.transpose(1, 3, 2, 4, 0).reshape(mapped.row_groups * rows, -1, eff.shape[0])
        signal = by_row[flat.ravel(), :outputs].reshape(positions, channels, -1)
        parts = [signal]
        self.sign_weight = 0.0
        if levels.sign is not None and levels.sign.any():
            sign = levels.sign.transpose(0, 2, 1, 3).reshape(mapped.row_groups * rows, -1)
            parts.append(sign[flat.ravel(), :outputs].reshape(positions, channels, outputs))
            self.sign_weight = -float(1 << (device.weight_bits - 1))
        matrix = np.concatenate(parts, axis=2)
        self.matrix = np.ascontiguousarray(matrix, _accumulator_dtype(matrix, self.conductances))
        self.col_shift = np.tile(shifts, outputs)
        self.group = _conversion_group(mapped)
        self.row_group = (flat // rows).astype(np.int32)  # the crossbar of a column group
        self.groups = mapped.channel_groups
        nsig = outputs * self.signal_columns
        self._tables: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self.diagonal = _diagonal(self.matrix, self.conductances, mapped, self.signal_columns)
        self.block_tables = np.zeros((0, 0, 0, self.matrix.shape[2]), self.matrix.dtype)
        self.sparse = (np.zeros(1, np.int64), np.zeros(0, np.int32), self.matrix[:0, 0, 0])
        blocks = -(-channels // K.BLOCK)
        table_bytes = positions * blocks * 256 * self.matrix.shape[2] * self.matrix.itemsize
        if np.count_nonzero(self.matrix) * SPARSE_RATIO <= self.matrix.size:
            self.sparse = _sparse_rows(self.matrix)
        elif (
            table_bytes <= TABLE_BYTES and _groups_by_block(self.group) and self.conductances.ideal
        ):
            self.block_tables = K.block_tables(self.matrix)  # exact sums of integer levels
        # the largest |signal| any input pattern can produce, per signal column
        self.peak_levels = float(np.abs(self.matrix[:, :, :nsig]).sum(axis=(0, 1)).max())

    @property
    def signals(self) -> int:
        """Signal columns of the layer: outputs x signal columns per output."""
        return self.mapped.outputs * self.signal_columns

    def _window_tables(
        self, h: int, w: int, kernel: tuple[int, int], stride: int, pad: int, ho: int, wo: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The kernel's (input row -> kernel rows, output rows) tables, kept per geometry."""
        key = (h, w, kernel, stride, pad, ho, wo)
        if key not in self._tables:
            self._tables[key] = (
                K.window_table(h, kernel[0], stride, pad, ho),
                K.window_table(w, kernel[1], stride, pad, wo),
            )
        return self._tables[key]

    def read(
        self,
        x: np.ndarray,
        out: np.ndarray,
        *,
        kernel: tuple[int, int],
        stride: int,
        padding: int,
        scale: float,
        bias: np.ndarray,
        adc: Adc | None,
        pool: ThreadPoolExecutor | None = None,
        threads: int = 1,
        hist: np.ndarray | None = None,
        hist_step: float = 0.125,
    ) -> ReadCounts:
        """Read `x` (N, C, H, W) float32 (nonzero = a driven row) into `out` (N, O, H_out,
        W_out) float32: float32(psum scale) + bias, psum in weight codes (module docstring).

        `adc` None converts nothing (calibration); `hist` (bins of `hist_step` levels) then
        collects |signal| of every conversion. `pool` splits the images over `threads` of its
        threads.
        """
        n = x.shape[0]
        counts = np.zeros((n, K.COUNT_COLS), np.int64)
        hist = np.zeros(0, np.int64) if hist is None else hist
        lsb = -1.0 if adc is None else adc.lsb
        lo, hi = (0, 0) if adc is None else (adc.code_min, adc.code_max)
        ho, wo = out.shape[2], out.shape[3]
        tables = self._window_tables(x.shape[2], x.shape[3], kernel, stride, padding, ho, wo)
        one_window = (ho, wo, stride, padding) == (1, 1, 1, 0) and kernel == x.shape[2:]
        diag = self.diagonal if one_window else self.diagonal[:0]
        args = (
            kernel[1], ho, wo, *tables, self.group, self.groups,
            self.mapped.style is MappingStyle.KERNEL_SPLIT, self.matrix, self.block_tables,
            *self.sparse, diag, self.signals,
            self.signal_columns, self.col_shift, self.sign_weight, lsb, float(lo), float(hi),
            float(scale), np.asarray(bias, np.float32), out, counts,
        )  # fmt: skip
        if pool is None or threads < 2 or n < 2 or hist.size:  # one thread fills a histogram
            K.read_layer(x, 0, n, *args, hist, hist_step, *K.pattern_bits())
        else:
            step = -(-n // threads)
            jobs = [
                pool.submit(
                    K.read_layer, x, a, min(a + step, n), *args, hist, hist_step, *K.pattern_bits()
                )
                for a in range(0, n, step)
            ]
            for job in jobs:
                job.result()
        total = counts.sum(axis=0)
        col_groups = self.mapped.col_groups
        return ReadCounts(
            pe_ops=int(total[K.OPS]) * col_groups,
            reads=int(total[K.READS]) * col_groups,
            inputs=int(total[K.INPUTS]),
            clips=int(total[K.CLIPS]),
            conversions=int(total[K.CONVERSIONS]),
        )


TABLE_BYTES = 1 << 20
"""Largest block-sum table (`_xbar_kernels.block_tables`) a layer keeps: 1 MiB, within a
core's L2 here (2 MiB); wider layers add their rows one by one."""


SPARSE_RATIO = 8
"""A layer whose crossbar rows hold at most 1 nonzero in 8 (e.g. a GAP layer's diagonal with
ideal cells) adds its nonzero entries only."""


def _sparse_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row pointers, column indices, values) of the nonzero entries of every row p C + c of a
    (P, C, K') matrix (compressed sparse rows)."""
    flat = matrix.reshape(-1, matrix.shape[2])
    rows, cols = np.nonzero(flat)
    ptr = np.zeros(len(flat) + 1, np.int64)
    np.add.at(ptr, rows + 1, 1)
    return np.cumsum(ptr), cols.astype(np.int32), np.ascontiguousarray(flat[rows, cols])


def _diagonal(
    matrix: np.ndarray, g: Conductances, mapped: LayerMapping, per_out: int
) -> np.ndarray:
    """(C, P) float32 diagonal d[c, p] = matrix[p, c, c] of a kernel_split layer on ideal cells
    whose rows hold only their own channel's signal column (a GAP layer; no sign columns, one
    column per output, blocks of 8 channels in one group), else an empty (0, P) array."""
    positions, channels, kext = matrix.shape
    empty = np.zeros((0, positions), np.float32)
    if not g.ideal or per_out != 1 or kext != channels or mapped.outputs != channels:
        return empty
    if mapped.style is not MappingStyle.KERNEL_SPLIT or mapped.rows % K.BLOCK:
        return empty
    diag = matrix[:, np.arange(channels), np.arange(channels)]
    if np.count_nonzero(matrix) != np.count_nonzero(diag):
        return empty
    return np.ascontiguousarray(diag.T, np.float32)


def _accumulator_dtype(matrix: np.ndarray, g: Conductances) -> type:
    """int16 (or int32) for ideal cells, whose levels are integers, when every analog sum of a
    column fits; float32 otherwise. Integers are exact either way."""
    if not g.ideal:
        return np.float32
    peak = float(np.abs(matrix).sum(axis=(0, 1)).max()) if matrix.size else 0.0
    return np.int16 if peak < 2**15 else np.int32 if peak < 2**31 else np.float64


def _groups_by_block(group: np.ndarray) -> bool:
    """Whether every block of 8 channels of a kernel position lies in one conversion group."""
    channels = group.shape[1]
    starts = group[:, :: K.BLOCK]
    return bool(np.all(group == np.repeat(starts, K.BLOCK, axis=1)[:, :channels]))


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
