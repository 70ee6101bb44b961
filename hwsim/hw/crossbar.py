"""Functional crossbar + ADC: binary spikes in, quantised partial sums out.

One crossbar read (Ohm + Kirchhoff): driving row r with V_r = V_read if input r spiked, else 0,
column c carries I_c = sum_r V_r G_rc (amperes). A signed weight's pair of columns (differential)
or a column and its crossbar's reference column (offset) are subtracted in the analog domain
(current mirror) before conversion, per slice j:

    I_j = V_read sum_r x_r (G+_rj - G-_rj)          (differential)
    I_j = V_read sum_r x_r (G_rj - G_ref,r(j))      (offset, reference level o_j)

With ideal cells I_j = V_read step D_j, D_j = sum_r x_r (d+_rj - d-_rj) an integer number of
cell levels (step = (G_on - G_off) / (2^B - 1)). A signed ADC of `bits` bits and full scale FS
returns code = clip(round(I / LSB), -2^(bits-1), 2^(bits-1) - 1), LSB = FS / 2^(bits-1), a tie
(an ideal signal exactly on a decision threshold, common when LSB is an even number of cell
levels) going to the even code: unbiased, where floor(I / LSB + 1/2) would add LSB/2 to every
tie;
`columns_per_adc` columns share one ADC through a multiplexer, so conversions are sequential
but values are unchanged. Digital shift-add then combines slices and crossbars:

    psum_o = sum_{crossbars g} sum_j 2^(j B) code_gjo LSB / (V_read step)      (weight-code units)

the crossbars g being a layer's row groups (input-channel groups of every kernel position,
`kernel_split`, or of the unrolled k_h k_w C_in rows, `unrolled`); PEs and tiles only add more
terms to the same digital sum. With an ADC whose LSB is a power-of-two fraction of a level and
no clipping, psum_o equals sum_r x_r q_ro exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hwsim.hw.arch import Architecture, MappingStyle
from hwsim.hw.device import (
    Conductances,
    Nonidealities,
    apply_nonidealities,
    slice_weights,
    to_conductances,
)


def column_currents_a(spikes: np.ndarray, conductance_s: np.ndarray, read_voltage_v: float):
    """I_c = sum_r V_r G_rc, amperes: spikes (..., R) in {0, 1}, conductances (R, C) siemens."""
    return (np.asarray(spikes, dtype=np.float64) * read_voltage_v) @ np.asarray(conductance_s)


@dataclass(frozen=True)
class Adc:
    """Signed `bits`-bit ADC over [-full_scale, full_scale), in any current unit."""

    bits: int
    full_scale: float

    @property
    def lsb(self) -> float:
        """One code step: full_scale / 2^(bits-1)."""
        return self.full_scale / (1 << (self.bits - 1))

    @property
    def code_min(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def code_max(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def convert(self, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(codes, clipped): codes = clip(round-half-even(signal / lsb)) as float, clipped a bool
        mask of the signals outside the code range."""
        raw = torch.round(signal / self.lsb)
        clipped = (raw < self.code_min) | (raw > self.code_max)
        return raw.clamp(self.code_min, self.code_max), clipped


def adc_in_levels(arch: Architecture) -> Adc:
    """The architecture's ADC with its full scale in cell levels (`adc_full_scale_levels`)."""
    return Adc(arch.adc.bits, arch.adc_full_scale_levels)


@dataclass(frozen=True)
class CrossbarRead:
    """One read of a layer's crossbars for a batch of B input vectors.

    `signal_levels` (G, B, S, O_total): the subtracted column signal of crossbar row group g,
    slice j and output o, in cell levels (current = signal V_read step, `current_a`); `codes`
    the ADC codes; `psum` (B, C_out) float64 the shift-added partial sums accumulated over the
    row groups, in weight-code units.
    """

    signal_levels: torch.Tensor
    codes: torch.Tensor
    psum: torch.Tensor


class CrossbarLayer:
    """A layer's weight matrix on crossbars, read with binary inputs.

    The matrix has `positions` x `channels` rows (kernel position p, input channel c) and
    `outputs` columns of integer codes, given as a (P, C_in, C_out) array. `kernel_split` gives
    every kernel position its own crossbars, row groups of up to `crossbar.rows` channels;
    `unrolled` cuts the flattened rows (index p C_in + c) into groups of `crossbar.rows`.
    Outputs are split into column groups of `arch.outputs_per_crossbar`; each (row group,
    column group) is one crossbar, with its own reference columns (offset encoding). Rows a
    layer leaves unused in a crossbar get no input and are not simulated.

    Inputs are position-major, (P, B, C_in): input vector b's channels at kernel position p,
    each 0 or 1.

    A crossbar with R' <= `lookup_rows` driven rows has only 2^R' input patterns, so its
    shift-added ADC output for every pattern is computed once (`forward` then sums table
    entries); larger crossbars are read with a matrix product and the ADC on every read. Both
    give the same values.
    """

    def __init__(
        self,
        codes: np.ndarray,
        arch: Architecture,
        *,
        style: MappingStyle | None = None,
        noise: Nonidealities | None = None,
        rng: np.random.Generator | None = None,
        lookup_rows: int = 10,
    ) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 3:
            raise ValueError(f"codes must be (positions, channels, outputs), got {codes.shape}")
        self.arch = arch
        self.style = style or arch.mapping.style
        self.positions, self.channels, self.outputs = codes.shape
        rows = arch.crossbar.rows
        per_xbar = arch.outputs_per_crossbar
        if self.style is MappingStyle.KERNEL_SPLIT:
            self.group_rows = min(rows, self.channels)  # rows simulated per crossbar
            self.groups_per_position = -(-self.channels // rows)
            padded = np.zeros(
                (self.positions, self.groups_per_position * self.group_rows, self.outputs),
                np.int64,
            )
            padded[:, : self.channels] = codes
        else:
            total = self.positions * self.channels
            self.group_rows = min(rows, total)
            self.groups_per_position = 0
            groups = -(-total // self.group_rows)
            padded = np.zeros((groups * self.group_rows, self.outputs), np.int64)
            padded[:total] = codes.reshape(total, self.outputs)
        by_group = padded.reshape(-1, self.group_rows, self.outputs)  # (G, R', C_out)
        self.groups = by_group.shape[0]
        self.col_groups = -(-self.outputs // per_xbar)
        cols = np.zeros((self.groups, self.group_rows, self.col_groups * per_xbar), np.int64)
        cols[:, :, : self.outputs] = by_group
        # (G, CG, R', O): one crossbar per (row group, column group)
        per_crossbar = cols.reshape(self.groups, self.group_rows, self.col_groups, per_xbar)
        per_crossbar = per_crossbar.transpose(0, 2, 1, 3)
        levels = slice_weights(per_crossbar, arch.device)
        ideal = to_conductances(levels, arch.device)
        self.conductances: Conductances = apply_nonidealities(ideal, noise or Nonidealities(), rng)
        if self.conductances.ideal:
            eff = levels.effective().astype(np.float64)
        else:
            eff = self.conductances.effective_levels()
        self.slices = eff.shape[0]
        # (S, G, CG, R', O) -> (G, R', S * CG * O)
        self._matrix = torch.from_numpy(
            np.ascontiguousarray(eff.transpose(1, 3, 0, 2, 4)).reshape(
                self.groups, self.group_rows, -1
            )
        ).to(torch.float32)
        self.adc = adc_in_levels(arch)
        self._shifts = torch.tensor(
            [float(1 << (j * arch.device.bits_per_cell)) for j in range(self.slices)],
            dtype=torch.float64,
        )
        # the largest |signal| any input can produce: if within the ADC range, nothing clips
        self._peak = float(self._matrix.abs().sum(dim=1).max()) if self._matrix.numel() else 0.0
        self._table: torch.Tensor | None = None
        if 0 < self.group_rows <= lookup_rows:
            self._build_table()

    def _build_table(self) -> None:
        """psum and clip count of every (row group, input pattern): (G 2^R', C_out), (G 2^R', 1);
        pattern k drives row r iff bit r of k is set."""
        rows = self.group_rows
        k = torch.arange(1 << rows)
        patterns = ((k[:, None] >> torch.arange(rows)) & 1).to(torch.float32)  # (2^R', R')
        signal = torch.bmm(patterns.expand(self.groups, -1, -1), self._matrix)
        codes, clipped = self.adc.convert(signal)
        per_slice = codes.to(torch.float64).reshape(self.groups, 1 << rows, self.slices, -1)
        table = torch.einsum("gkso,s->gko", per_slice, self._shifts)[..., : self.outputs]
        # shift-added codes are integers below 2^24: exact in float32
        self._table = table.reshape(-1, self.outputs).to(torch.float32).contiguous()
        self._clip_table = clipped.sum(dim=2).to(torch.float32).reshape(-1, 1)
        self._pattern_bits = (1 << torch.arange(rows)).to(torch.float32)

    @property
    def conversions_per_read(self) -> int:
        """ADC conversions of one input vector: row groups x slices x column-group outputs."""
        return self.groups * self.slices * self.col_groups * self.arch.outputs_per_crossbar

    def current_a(self, signal_levels: torch.Tensor) -> torch.Tensor:
        """Column current, A, of a signal in cell levels: signal V_read step."""
        return signal_levels * (self.arch.device.read_voltage_v * self.arch.cell_step_s)

    def grouped(self, x: torch.Tensor) -> torch.Tensor:
        """Position-major inputs (P, B, C_in) -> (G, B, R') per crossbar row group."""
        positions, b, channels = x.shape
        if (positions, channels) != (self.positions, self.channels):
            raise ValueError(
                f"inputs (P, B, C) = {tuple(x.shape)} do not match the layer's "
                f"({self.positions}, B, {self.channels})"
            )
        if self.style is MappingStyle.KERNEL_SPLIT:
            if self.groups_per_position == 1:
                return x
            pad = self.groups_per_position * self.group_rows - channels
            x = torch.nn.functional.pad(x, (0, pad)) if pad else x
            x = x.reshape(positions, b, self.groups_per_position, self.group_rows)
            return x.transpose(1, 2).reshape(self.groups, b, self.group_rows)
        flat = x.transpose(0, 1).reshape(b, positions * channels)
        pad = self.groups * self.group_rows - positions * channels
        flat = torch.nn.functional.pad(flat, (0, pad)) if pad else flat
        return flat.reshape(b, self.groups, self.group_rows).transpose(0, 1)

    def _codes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(signal, codes, clipped conversions) of grouped inputs (G, B, R')."""
        signal = torch.bmm(x.to(torch.float32), self._matrix)  # (G, B, S*CG*O) cell levels
        codes = torch.round(signal / self.adc.lsb)
        clips = 0
        if self._peak / self.adc.lsb > self.adc.code_max:  # clipping is possible
            low, high = torch.aminmax(codes)
            if low < self.adc.code_min or high > self.adc.code_max:
                clips = int((codes > self.adc.code_max).sum() + (codes < self.adc.code_min).sum())
                codes.clamp_(self.adc.code_min, self.adc.code_max)
        return signal, codes, clips

    def _psum(self, codes: torch.Tensor) -> torch.Tensor:
        """LSB sum_g sum_j 2^(jB) code_gjo, (B, C_out) float64 (the integer sum is exact)."""
        b = codes.shape[1]
        per_slice = codes.sum(dim=0).to(torch.float64).reshape(b, self.slices, -1)
        shifted = torch.einsum("bso,s->bo", per_slice, self._shifts)[:, : self.outputs]
        return shifted * self.adc.lsb

    def read(self, x: torch.Tensor) -> CrossbarRead:
        """Read every crossbar with binary position-major inputs (P, B, C_in) (module doc)."""
        signal, codes, _ = self._codes(self.grouped(x))
        shape = (self.groups, x.shape[1], self.slices, -1)
        return CrossbarRead(signal.reshape(shape), codes.reshape(shape), self._psum(codes))

    def forward(
        self, x: torch.Tensor, chunk: int = 1 << 14, *, lookup: bool = True
    ) -> tuple[torch.Tensor, int, int]:
        """(psum (B, C_out) float64 in weight-code units, ADC conversions that clipped, ADC
        conversions) of position-major inputs (P, B, C_in), `chunk` vectors at a time;
        `lookup=False` forces the matrix-product path."""
        grouped = self.grouped(x)
        b = grouped.shape[1]
        if b == 0:
            return torch.zeros((0, self.outputs), dtype=torch.float64), 0, 0
        conversions = b * self.conversions_per_read
        if lookup and self._table is not None:
            pattern = torch.matmul(grouped.to(torch.float32), self._pattern_bits).to(torch.int64)
            offsets = torch.arange(self.groups)[:, None] << self.group_rows
            index = (pattern + offsets).transpose(0, 1)  # (B, G)
            shifted = torch.nn.functional.embedding_bag(index, self._table, mode="sum")
            clips = torch.nn.functional.embedding_bag(index, self._clip_table, mode="sum")
            return shifted.to(torch.float64) * self.adc.lsb, int(clips.sum()), conversions
        outs: list[torch.Tensor] = []
        clips = 0
        for start in range(0, b, chunk):
            _, codes, c = self._codes(grouped[:, start : start + chunk])
            outs.append(self._psum(codes))
            clips += c
        return torch.cat(outs), clips, conversions
