"""RRAM conductance mapping: quantisation, slicing, conductances and their exact inverse."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hwsim.hw.arch import DeviceConfig, SignedWeights, Slicing, load_arch
from hwsim.hw.device import (
    Nonidealities,
    apply_nonidealities,
    offset_digits,
    quantise_weights,
    slice_weights,
    to_conductances,
    to_levels,
    unslice,
)

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml").device  # 4-bit, 1-bit cells


def device(bits: int, per_cell: int, signed: SignedWeights) -> DeviceConfig:
    return replace(SPIKESIM, weight_bits=bits, bits_per_cell=per_cell, signed_weights=signed)


DEVICE = device(4, 1, SignedWeights.DIFFERENTIAL)  # 4-bit differential on 1-bit cells


def test_quantise_power_of_two_scale_by_hand() -> None:
    w = np.array([0.3, -0.1, 0.05, 0.0])
    q = quantise_weights(w, 4)  # q_max 7; 0.3 / 7 = 0.0429 -> 2^-4 = 0.0625
    assert q.scale == 0.0625
    assert q.codes.tolist() == [5, -2, 1, 0]  # 4.8, -1.6, 0.8 rounded
    assert np.allclose(q.dequantised(), [0.3125, -0.125, 0.0625, 0.0])


def test_quantise_max_abs_scale_and_clipping() -> None:
    w = np.array([0.7, -0.7, 0.35])
    q = quantise_weights(w, 3, power_of_two=False)  # q_max 3
    assert q.scale == pytest.approx(0.7 / 3)
    assert q.codes.tolist() == [3, -3, 2]  # 1.5 rounds half to even
    assert quantise_weights(np.zeros(3), 4).codes.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="bits"):
        quantise_weights(w, 1)


def test_quantise_is_exact_for_representable_weights() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(-127, 128, size=(16, 8, 3, 3))
    codes[0, 0, 0, 0] = 127
    q = quantise_weights(codes * 2.0**-9, 8)
    assert q.scale == 2.0**-9
    assert np.array_equal(q.codes, codes)


def test_slices_by_hand_differential() -> None:
    levels = slice_weights(np.array([[5, -3]]), DEVICE)  # 4 bits -> |w| <= 7 in 3 slices
    assert DEVICE.slices_per_weight == 3
    assert replace(DEVICE, slicing=Slicing.COLUMNS).columns_per_weight == 6
    assert replace(DEVICE, slicing=Slicing.CELLS).columns_per_weight == 2  # one column pair
    assert levels.positive[:, 0, 0].tolist() == [1, 0, 1]  # 5 = 101b on G+
    assert levels.negative[:, 0, 0].tolist() == [0, 0, 0]
    assert levels.positive[:, 0, 1].tolist() == [0, 0, 0]
    assert levels.negative[:, 0, 1].tolist() == [1, 1, 0]  # 3 = 011b on G-
    assert levels.reference is None
    assert unslice(levels).tolist() == [[5, -3]]


def test_slices_by_hand_offset() -> None:
    dev = replace(device(4, 1, SignedWeights.OFFSET), slicing=Slicing.COLUMNS)
    assert dev.slices_per_weight == 4 and dev.reference_columns == 2
    assert replace(dev, slicing=Slicing.CELLS).reference_columns == 1  # the offset in one column
    assert offset_digits(dev) == (0, 0, 0, 1)  # 8 = 1000b
    levels = slice_weights(np.array([[-3]]), dev)  # -3 + 8 = 5 = 0101b
    assert levels.positive[:, 0, 0].tolist() == [1, 0, 1, 0]
    assert levels.reference[:, 0].tolist() == [0, 1]  # distinct reference levels, one row
    assert levels.reference_index == (0, 0, 0, 1)
    assert unslice(levels).tolist() == [[-3]]


def test_slices_by_hand_digital_sign_as_spikesim() -> None:
    # SpikeSim (hw_inference.py / section_ip_wts.py create_A_mat_mod, neg_wt_bits = 3): a
    # negative 4-bit weight stores w + 2^3 in the array and the 2^3 is subtracted digitally
    assert SPIKESIM.signed_weights is SignedWeights.DIGITAL and SPIKESIM.slicing is Slicing.CELLS
    assert (SPIKESIM.stored_bits, SPIKESIM.slices_per_weight) == (3, 3)
    assert (SPIKESIM.columns_per_weight, SPIKESIM.reference_columns) == (1, 0)
    levels = slice_weights(np.array([[5, -3, -7, 0]]), SPIKESIM)
    # 5 = 101b; -3 + 8 = 5 = 101b, sign 1; -7 + 8 = 1 = 001b, sign 1; 0
    assert levels.positive[:, 0].T.tolist() == [[1, 0, 1], [1, 0, 1], [1, 0, 0], [0, 0, 0]]
    assert levels.sign[0].tolist() == [False, True, True, False]
    assert levels.digital_codes()[0].tolist() == [0, -8, -8, 0]
    assert unslice(levels).tolist() == [[5, -3, -7, 0]]


CASES = [
    (bits, per_cell, signed)
    for bits, per_cell in [(2, 1), (4, 1), (4, 2), (5, 2), (8, 3), (8, 8), (16, 2)]
    for signed in SignedWeights
    if per_cell <= bits
]


@pytest.mark.parametrize(("bits", "per_cell", "signed"), CASES)
def test_conductance_round_trip_is_exact(bits: int, per_cell: int, signed) -> None:
    dev = device(bits, per_cell, signed)
    q_max = (1 << (bits - 1)) - 1
    rng = np.random.default_rng(bits * 10 + per_cell)
    codes = rng.integers(-q_max, q_max + 1, size=(3, 7, 5))
    codes[0, 0, :2] = (q_max, -q_max)
    levels = slice_weights(codes, dev)
    assert levels.positive.max() <= (1 << per_cell) - 1
    g = to_conductances(levels, dev)
    for part in (g.positive, g.negative, g.reference):
        if part is not None:
            assert part.min() >= dev.goff_s * (1 - 1e-12)
            assert part.max() <= dev.gon_s * (1 + 1e-12)
    back = unslice(to_levels(g))
    assert back.dtype == np.int64
    assert np.array_equal(back, codes)
    # the signed level difference per slice, shift-added, is the code too
    eff = g.effective_levels()
    shifts = np.array([1 << (j * per_cell) for j in range(dev.slices_per_weight)], float)
    analog = np.tensordot(shifts, eff, axes=(0, 0))
    assert np.allclose(analog + levels.digital_codes(), codes, atol=1e-6)


def test_conductance_levels_are_linear_between_goff_and_gon() -> None:
    dev = device(5, 2, SignedWeights.DIFFERENTIAL)  # levels 0..3
    g = to_conductances(slice_weights(np.array([[1, 2, 3]]), dev), dev)
    step = (dev.gon_s - dev.goff_s) / 3
    assert np.allclose(g.positive[0, 0], dev.goff_s + np.array([1, 2, 3]) * step, rtol=1e-12)


def test_out_of_range_codes_are_refused() -> None:
    with pytest.raises(ValueError, match="exceed"):
        slice_weights(np.array([[8]]), DEVICE)


def test_nonidealities_are_seeded_and_bounded() -> None:
    codes = np.random.default_rng(1).integers(-7, 8, size=(64, 64))
    g = to_conductances(slice_weights(codes, DEVICE), DEVICE)
    assert apply_nonidealities(g, Nonidealities()) is g
    a = apply_nonidealities(g, Nonidealities(sigma=0.1, seed=3))
    b = apply_nonidealities(g, Nonidealities(sigma=0.1, seed=3))
    c = apply_nonidealities(g, Nonidealities(sigma=0.1, seed=4))
    assert np.array_equal(a.positive, b.positive) and not np.array_equal(a.positive, c.positive)
    assert not a.ideal
    ratio = np.log(a.positive / g.positive)
    assert abs(ratio.mean()) < 0.01 and ratio.std() == pytest.approx(0.1, rel=0.05)
    # small variation leaves every level recoverable
    small = apply_nonidealities(g, Nonidealities(sigma=0.01, seed=0))
    assert np.array_equal(unslice(to_levels(small)), codes)


def test_stuck_at_faults() -> None:
    codes = np.random.default_rng(2).integers(-7, 8, size=(32, 32))
    g = to_conductances(slice_weights(codes, DEVICE), DEVICE)
    sa0 = apply_nonidealities(g, Nonidealities(sa0_rate=1.0))
    assert np.all(sa0.positive == DEVICE.goff_s) and np.all(sa0.negative == DEVICE.goff_s)
    assert np.all(unslice(to_levels(sa0)) == 0)
    sa1 = apply_nonidealities(g, Nonidealities(sa1_rate=1.0))
    assert np.all(sa1.positive == DEVICE.gon_s)
    some = apply_nonidealities(g, Nonidealities(sa0_rate=0.1, sa1_rate=0.05, seed=0))
    on = (some.positive == DEVICE.gon_s) & (g.positive != DEVICE.gon_s)
    off = (some.positive == DEVICE.goff_s) & (g.positive != DEVICE.goff_s)
    # stuck cells that changed state: SA1 on OFF cells, SA0 on ON cells
    assert 0.03 < on.sum() / (g.positive != DEVICE.gon_s).sum() < 0.07
    assert 0.06 < off.sum() / (g.positive != DEVICE.goff_s).sum() < 0.14
    with pytest.raises(ValueError):
        Nonidealities(sa0_rate=0.7, sa1_rate=0.5)
    with pytest.raises(ValueError):
        Nonidealities(sigma=-1.0)
