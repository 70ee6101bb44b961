"""Functional crossbar + ADC: binary spikes in, quantised partial sums out.

One crossbar read (Ohm + Kirchhoff): driving row r with V_r = V_read if input r spiked, else 0,
column c carries I_c = sum_r V_r G_rc (amperes). A signed weight's pair of columns (differential)
or a column and its crossbar's reference column (offset) are subtracted in the analog domain
(current mirror) before conversion, per slice j:

    I_j = V_read sum_r x_r (G+_rj - G-_rj)          (differential)
    I_j = V_read sum_r x_r (G_rj - G_ref,r(j))      (offset, reference level o_j)

With ideal cells I_j = V_read step D_j, D_j = sum_r x_r (d+_rj - d-_rj) an integer number of
cell levels (step = (G_on - G_off) / (2^B - 1)). A signed ADC of `bits` bits and full scale FS
returns code = clip(floor(I / LSB + 1/2), -2^(bits-1), 2^(bits-1) - 1), LSB = FS / 2^(bits-1);
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
        """(codes, clipped): codes = clip(floor(signal / lsb + 1/2)) as float, clipped a bool
        mask of the signals outside the code range."""
        raw = torch.floor(signal / self.lsb + 0.5)
        clipped = (raw < self.code_min) | (raw > self.code_max)
        return raw.clamp(self.code_min, self.code_max), clipped


def adc_in_levels(arch: Architecture) -> Adc:
    """The architecture's ADC with its full scale expressed in cell levels (FS / (V step)).

    The default full scale, rows (2^B - 1) levels, is kept exact so that LSB stays a power of
    two times a level when rows (2^B - 1) is one.
    """
    if arch.adc.full_scale_ua is None:
        full_scale = float(arch.crossbar.rows * (arch.device.levels - 1))
    else:
        full_scale = arch.adc_full_scale_a / (arch.device.read_voltage_v * arch.cell_step_s)
    return Adc(arch.adc.bits, full_scale)


@dataclass(frozen=True)
class CrossbarRead:
    """One read of a layer's crossbars for a batch of input vectors.

    `signal_levels` (G, N, S, O_total): the subtracted column signal of crossbar row group g,
    slice j and output o, in cell levels (current = signal V_read step); `codes` the ADC codes;
    `clipped` whether each conversion clipped; `psum` (N, C_out) float64 the shift-added,
    accumulated partial sums in weight-code units.
    """

    signal_levels: torch.Tensor
    codes: torch.Tensor
    clipped: torch.Tensor
    psum: torch.Tensor


class CrossbarLayer:
    """A layer's weight matrix on crossbars, read with binary inputs.

    The matrix has `positions` x `channels` rows (row index p * channels + c: kernel position
    p, input channel c) and `outputs` columns of integer codes. `kernel_split` gives every
    kernel position its own crossbars (row groups of `crossbar.rows` channels); `unrolled` cuts
    the flattened rows into groups of `crossbar.rows`. Outputs are split into column groups of
    `arch.outputs_per_crossbar`. Each (row group, column group) is one crossbar with its own
    reference columns (offset encoding).
    """

    def __init__(
        self,
        codes: np.ndarray,
        arch: Architecture,
        *,
        style: MappingStyle | None = None,
        noise: Nonidealities | None = None,
        rng: np.random.Generator | None = None,
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
            self.row_groups_per_position = -(-self.channels // rows)
            padded = np.zeros(
                (self.positions, self.row_groups_per_position * rows, self.outputs), np.int64
            )
            padded[:, : self.channels] = codes
            by_group = padded.reshape(-1, rows, self.outputs)  # (G, R, C_out)
        else:
            total = self.positions * self.channels
            groups = -(-total // rows)
            padded = np.zeros((groups * rows, self.outputs), np.int64)
            padded[:total] = codes.reshape(total, self.outputs)
            by_group = padded.reshape(groups, rows, self.outputs)
        self.groups = by_group.shape[0]
        self.col_groups = -(-self.outputs // per_xbar)
        cols = np.zeros((self.groups, rows, self.col_groups * per_xbar), np.int64)
        cols[:, :, : self.outputs] = by_group
        # (G, CG, R, O): one crossbar per (row group, column group)
        per_crossbar = cols.reshape(self.groups, rows, self.col_groups, per_xbar).transpose(
            0, 2, 1, 3
        )
        levels = slice_weights(per_crossbar, arch.device)
        g = to_conductances(levels, arch.device)
        noise = noise or Nonidealities()
        self.conductances: Conductances = apply_nonidealities(g, noise, rng)
        eff = levels.effective() if self.conductances.ideal else None
        if eff is None:
            eff = self.conductances.effective_levels()
        self.slices = eff.shape[0]
        # (S, G, CG, R, O) -> (G, R, S * CG * O)
        self._matrix = torch.from_numpy(
            np.ascontiguousarray(eff.transpose(1, 3, 0, 2, 4)).reshape(self.groups, rows, -1)
        ).to(torch.float32)
        self.adc = adc_in_levels(arch)
        self._shift = torch.tensor(
            [float(1 << (j * arch.device.bits_per_cell)) for j in range(self.slices)],
            dtype=torch.float64,
        )

    def _grouped(self, rows_in: torch.Tensor) -> torch.Tensor:
        """(N, positions * channels) inputs -> (G, N, R) per crossbar row group."""
        n = rows_in.shape[0]
        r = self.arch.crossbar.rows
        if self.style is MappingStyle.KERNEL_SPLIT:
            x = rows_in.reshape(n, self.positions, self.channels)
            pad = self.row_groups_per_position * r - self.channels
            if pad:
                x = torch.nn.functional.pad(x, (0, pad))
            x = x.reshape(n, self.groups, r)
        else:
            pad = self.groups * r - self.positions * self.channels
            x = torch.nn.functional.pad(rows_in, (0, pad)) if pad else rows_in
            x = x.reshape(n, self.groups, r)
        return x.transpose(0, 1)

    def read(self, rows_in: torch.Tensor) -> CrossbarRead:
        """Read every crossbar with binary inputs (N, positions * channels); see module doc."""
        x = self._grouped(rows_in.to(torch.float32))
        signal = torch.bmm(x, self._matrix)  # (G, N, S*CG*O) cell levels
        codes, clipped = self.adc.convert(signal)
        n = rows_in.shape[0]
        values = (codes.to(torch.float64) * self.adc.lsb).reshape(self.groups, n, self.slices, -1)
        psum = torch.einsum("gnso,s->no", values, self._shift)[:, : self.outputs]
        shape = (self.groups, n, self.slices, -1)
        return CrossbarRead(
            signal.reshape(shape), codes.reshape(shape), clipped.reshape(shape), psum
        )

    def forward(self, rows_in: torch.Tensor, chunk: int = 1 << 15) -> tuple[torch.Tensor, int]:
        """(psum (N, C_out) float64 in weight-code units, ADC conversions that clipped)."""
        outs: list[torch.Tensor] = []
        clips = 0
        for start in range(0, rows_in.shape[0], chunk):
            res = self.read(rows_in[start : start + chunk])
            outs.append(res.psum)
            clips += int(res.clipped.sum())
        if not outs:
            return torch.zeros((0, self.outputs), dtype=torch.float64), 0
        return torch.cat(outs), clips
