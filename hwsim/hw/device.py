"""RRAM conductance mapping: float weights -> integer codes -> bit slices -> conductances.

1. Quantisation, symmetric and per layer (`quantise_weights`): with b = weight_bits and
   q_max = 2^(b-1) - 1, s = max|W| / q_max, rounded up to a power of two by default (so that
   dequantisation is a shift and a dyadic weight stays exact); codes q = clip(round(W / s),
   -q_max, q_max) and W ~= q s.
2. Slicing (`slice_weights`) into S cells of B = bits_per_cell bits, slice j holding digit
   d_j = (v >> jB) & (2^B - 1) of a non-negative value v = sum_j 2^(jB) d_j:
   - differential: a cell pair per slice, v+ = max(q, 0) on the G+ column and v- = max(-q, 0)
     on the G- column, S = ceil((b - 1) / B); q = sum_j 2^(jB) (d+_j - d-_j);
   - offset: one cell per slice holding v = q + 2^(b-1) in [1, 2^b - 1], S = ceil(b / B), and
     per crossbar reference cells per distinct offset digit o_j (digit j of 2^(b-1));
     q = sum_j 2^(jB) (d_j - o_j);
   - digital (SpikeSim's NICE, `create_A_mat_mod` / `signed_hw_conv_mod`): two's complement,
     v = q mod 2^(b-1) (the bits below the sign) in S = ceil((b - 1) / B) cells and the sign
     bit s = [q < 0] kept digitally: q = sum_j 2^(jB) d_j - 2^(b-1) s.
   Where the S slices sit (separate columns, or parallel binary-weighted cells of one column,
   `DeviceConfig.slicing`) is the crossbar's business (`hwsim.hw.crossbar`); the levels here are
   the same either way.
3. Conductance (`to_conductances`): level d in 0..2^B - 1 maps linearly onto
   G(d) = G_off + d (G_on - G_off) / (2^B - 1), siemens (a binary-weighted cell of slice j is
   2^(jB) such cells in parallel; its current is counted in the crossbar). `to_levels` and
   `unslice` invert it exactly for ideal conductances (round trip tested).
4. Non-idealities (`apply_nonidealities`, seeded): stuck-at faults, SA0 = stuck at G_off (high
   resistance, logic 0) and SA1 = stuck at G_on, with given rates per cell; then device-to-device
   variation G <- G exp(N(0, sigma^2)) (lognormal with median G; the mean grows by
   exp(sigma^2 / 2)). Reference-column cells are cells too and get both.

Arrays of codes have shape (..., R, O): the last two axes are the rows and output columns of
one crossbar (or of a whole logical matrix); leading axes index crossbars. Slices are stacked
on a new first axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hwsim.errors import InputError
from hwsim.hw.arch import DeviceConfig, SignedWeights


@dataclass(frozen=True)
class QuantisedWeights:
    """Integer weight codes and their scale: W ~= codes * scale."""

    codes: np.ndarray  # int64, |codes| <= 2^(bits-1) - 1
    scale: float
    bits: int

    def dequantised(self) -> np.ndarray:
        """codes * scale, float64."""
        return self.codes.astype(np.float64) * self.scale


def quantise_weights(w: np.ndarray, bits: int, *, power_of_two: bool = True) -> QuantisedWeights:
    """Symmetric per-tensor quantisation to `bits` signed bits (see module docstring).

    s = max|W| / (2^(bits-1) - 1), rounded up to 2^ceil(log2 s) if `power_of_two`; round half
    to even. An all-zero tensor gets scale 1 and zero codes.
    """
    if bits < 2:
        raise InputError(f"bits must be >= 2 for a signed symmetric code, got {bits}")
    w = np.asarray(w, dtype=np.float64)
    q_max = (1 << (bits - 1)) - 1
    peak = float(np.abs(w).max()) if w.size else 0.0
    if peak == 0.0:
        return QuantisedWeights(np.zeros(w.shape, np.int64), 1.0, bits)
    scale = peak / q_max
    if power_of_two:
        scale = 2.0 ** math.ceil(math.log2(scale))
    codes = np.clip(np.rint(w / scale), -q_max, q_max).astype(np.int64)
    return QuantisedWeights(codes, scale, bits)


@dataclass(frozen=True)
class CellLevels:
    """Integer level (0..2^B - 1) of every cell of a sliced weight array.

    `positive[j]` is slice j of the G+ columns (differential) or of the only columns (offset,
    digital), shape (S, ..., R, O). `negative` is the G- columns (differential) or None.
    `reference` (offset only) holds the distinct reference levels, shape (n_ref, ..., R), and
    `reference_index[j]` which of them slice j subtracts. `sign` (digital only, (..., R, O)
    bool) marks the negative weights whose -2^(b-1) the periphery adds digitally.
    """

    positive: np.ndarray
    negative: np.ndarray | None
    reference: np.ndarray | None
    reference_index: tuple[int, ...]
    encoding: SignedWeights
    weight_bits: int
    bits_per_cell: int
    sign: np.ndarray | None = None

    @property
    def slices(self) -> int:
        return self.positive.shape[0]

    def effective(self) -> np.ndarray:
        """Level each slice contributes in the analog domain, (S, ..., R, O) int64:
        d+ - d- (differential), d - o (offset) or d (digital; the sign is digital)."""
        pos = self.positive.astype(np.int64)
        if self.negative is not None:
            return pos - self.negative.astype(np.int64)
        if self.reference is None:
            return pos
        ref = self.reference.astype(np.int64)[list(self.reference_index)]
        return pos - ref[..., None]

    def digital_codes(self) -> np.ndarray:
        """The part of each code added digitally, (..., R, O) int64: -2^(b-1) s (digital
        encoding), else 0."""
        if self.sign is None:
            return np.zeros(self.positive.shape[1:], np.int64)
        return -(1 << (self.weight_bits - 1)) * self.sign.astype(np.int64)


def _digits(values: np.ndarray, slices: int, bits_per_cell: int) -> np.ndarray:
    mask = (1 << bits_per_cell) - 1
    return np.stack([(values >> (j * bits_per_cell)) & mask for j in range(slices)]).astype(
        np.uint8 if bits_per_cell <= 8 else np.int64
    )


def offset_digits(device: DeviceConfig) -> tuple[int, ...]:
    """Digits o_j of the offset 2^(b-1), slice by slice (offset encoding)."""
    offset = 1 << (device.weight_bits - 1)
    mask = (1 << device.bits_per_cell) - 1
    return tuple(
        (offset >> (j * device.bits_per_cell)) & mask for j in range(device.slices_per_weight)
    )


def slice_weights(codes: np.ndarray, device: DeviceConfig) -> CellLevels:
    """Slice integer codes (..., R, O) into cell levels by `device.signed_weights`."""
    codes = np.asarray(codes, dtype=np.int64)
    q_max = (1 << (device.weight_bits - 1)) - 1
    if codes.size and int(np.abs(codes).max()) > q_max:
        raise InputError(
            f"weight codes exceed +-{q_max}, the range of {device.weight_bits}-bit weights"
        )
    slices, bpc = device.slices_per_weight, device.bits_per_cell
    if device.signed_weights is SignedWeights.DIGITAL:
        return CellLevels(
            positive=_digits(codes & ((1 << (device.weight_bits - 1)) - 1), slices, bpc),
            negative=None,
            reference=None,
            reference_index=(),
            encoding=device.signed_weights,
            weight_bits=device.weight_bits,
            bits_per_cell=bpc,
            sign=codes < 0,
        )
    if device.signed_weights is SignedWeights.DIFFERENTIAL:
        return CellLevels(
            positive=_digits(np.maximum(codes, 0), slices, bpc),
            negative=_digits(np.maximum(-codes, 0), slices, bpc),
            reference=None,
            reference_index=(),
            encoding=device.signed_weights,
            weight_bits=device.weight_bits,
            bits_per_cell=bpc,
        )
    digits = offset_digits(device)
    distinct = sorted(set(digits))
    ref_shape = (len(distinct), *codes.shape[:-1])
    reference = np.empty(ref_shape, dtype=np.uint8 if bpc <= 8 else np.int64)
    for k, level in enumerate(distinct):
        reference[k] = level
    return CellLevels(
        positive=_digits(codes + (1 << (device.weight_bits - 1)), slices, bpc),
        negative=None,
        reference=reference,
        reference_index=tuple(distinct.index(d) for d in digits),
        encoding=device.signed_weights,
        weight_bits=device.weight_bits,
        bits_per_cell=bpc,
    )


def unslice(levels: CellLevels) -> np.ndarray:
    """Integer codes back from cell levels: q = sum_j 2^(jB) effective_j + digital part
    (exact)."""
    eff = levels.effective()
    weights = np.array([1 << (j * levels.bits_per_cell) for j in range(levels.slices)], np.int64)
    return np.tensordot(weights, eff, axes=(0, 0)) + levels.digital_codes()


@dataclass(frozen=True)
class Conductances:
    """Cell conductances, siemens; same layout as `CellLevels` (negative/reference optional)."""

    positive: np.ndarray
    negative: np.ndarray | None
    reference: np.ndarray | None
    reference_index: tuple[int, ...]
    encoding: SignedWeights
    weight_bits: int
    bits_per_cell: int
    gon_s: float
    goff_s: float
    ideal: bool  # True: every cell sits exactly on its level (no variation, no fault)
    sign: np.ndarray | None = None  # digital encoding: the sign bits, kept digitally

    @property
    def step_s(self) -> float:
        """G_on - G_off over 2^B - 1 levels, siemens."""
        return (self.gon_s - self.goff_s) / ((1 << self.bits_per_cell) - 1)

    def effective_levels(self) -> np.ndarray:
        """(G+ - G-) / step, (G - G_ref) / step or (G - G_off) / step (digital: the nominal
        off-state current of the driven rows is subtracted before the ADC) per slice,
        (S, ..., R, O) float64: the analog contribution of a driven row in cell levels."""
        if self.negative is not None:
            diff = self.positive - self.negative
        elif self.reference is not None:
            diff = self.positive - self.reference[list(self.reference_index)][..., None]
        else:
            diff = self.positive - self.goff_s
        return diff / self.step_s


def level_to_conductance(levels: np.ndarray, device: DeviceConfig) -> np.ndarray:
    """G(d) = G_off + d (G_on - G_off) / (2^B - 1), siemens."""
    step = (device.gon_s - device.goff_s) / (device.levels - 1)
    return device.goff_s + np.asarray(levels, dtype=np.float64) * step


def to_conductances(levels: CellLevels, device: DeviceConfig) -> Conductances:
    """Ideal conductances of every cell (see `level_to_conductance`)."""

    def g(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else level_to_conductance(a, device)

    return Conductances(
        positive=level_to_conductance(levels.positive, device),
        negative=g(levels.negative),
        reference=g(levels.reference),
        reference_index=levels.reference_index,
        encoding=levels.encoding,
        weight_bits=levels.weight_bits,
        bits_per_cell=levels.bits_per_cell,
        gon_s=device.gon_s,
        goff_s=device.goff_s,
        ideal=True,
        sign=levels.sign,
    )


def to_levels(g: Conductances) -> CellLevels:
    """Nearest cell level of every conductance: clip(round((G - G_off) / step), 0, 2^B - 1)."""
    top = (1 << g.bits_per_cell) - 1

    def lv(a: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        return np.clip(np.rint((a - g.goff_s) / g.step_s), 0, top).astype(np.int64)

    return CellLevels(
        positive=lv(g.positive),
        negative=lv(g.negative),
        reference=lv(g.reference),
        reference_index=g.reference_index,
        encoding=g.encoding,
        weight_bits=g.weight_bits,
        bits_per_cell=g.bits_per_cell,
        sign=g.sign,
    )


@dataclass(frozen=True)
class Nonidealities:
    """Device non-idealities: lognormal variation sigma and stuck-at fault rates per cell."""

    sigma: float = 0.0  # std of ln G
    sa0_rate: float = 0.0  # fraction of cells stuck at G_off
    sa1_rate: float = 0.0  # fraction of cells stuck at G_on
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sigma < 0:
            raise InputError(f"noise sigma (variation) must be >= 0, got {self.sigma}")
        for name in ("sa0_rate", "sa1_rate"):
            rate = getattr(self, name)
            if not 0 <= rate <= 1:
                raise InputError(f"noise {name} must be in [0, 1], got {rate}")
        if self.sa0_rate + self.sa1_rate > 1:
            total = self.sa0_rate + self.sa1_rate
            raise InputError(f"noise sa0_rate + sa1_rate must be <= 1, got {total}")

    @property
    def ideal(self) -> bool:
        return self.sigma == 0 and self.sa0_rate == 0 and self.sa1_rate == 0


def apply_nonidealities(
    g: Conductances, noise: Nonidealities, rng: np.random.Generator | None = None
) -> Conductances:
    """Conductances with stuck-at faults, then lognormal variation (module docstring, item 4).

    Deterministic for a given `noise.seed` (or the generator `rng`, if given).
    """
    if noise.ideal:
        return g
    rng = rng if rng is not None else np.random.default_rng(noise.seed)

    def disturb(a: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        out = np.array(a, dtype=np.float64)
        if noise.sa0_rate or noise.sa1_rate:
            u = rng.random(out.shape)
            out[u < noise.sa0_rate] = g.goff_s
            out[(u >= noise.sa0_rate) & (u < noise.sa0_rate + noise.sa1_rate)] = g.gon_s
        if noise.sigma:
            out *= np.exp(rng.normal(0.0, noise.sigma, out.shape))
        return out

    return replace(
        g,
        positive=disturb(g.positive),
        negative=disturb(g.negative),
        reference=disturb(g.reference),
        ideal=False,
    )
