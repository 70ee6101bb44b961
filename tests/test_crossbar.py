"""Functional crossbar + ADC: a one-crossbar case by hand, and exactness of the ideal read."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hwsim.hw.arch import Architecture, load_arch, parse_arch
from hwsim.hw.crossbar import Adc, CrossbarLayer, adc_in_levels, column_currents_a
from hwsim.hw.device import Nonidealities

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml")

V, G_ON, G_OFF = 0.2, 1e-4, 1e-5  # 10 kOhm / 100 kOhm
STEP = G_ON - G_OFF  # one level of a 1-bit cell, S


def variant(**sections: dict) -> Architecture:
    raw = SPIKESIM.to_mapping()
    for section, values in sections.items():
        raw[section].update(values)
    return parse_arch(raw, "variant")


def hand_arch(full_scale_ua: float | None = None, bits: int = 3) -> Architecture:
    """8 x 8 crossbar, 3-bit differential weights on 1-bit cells: 2 slices, 4 columns per
    weight, 2 outputs per crossbar."""
    return variant(
        crossbar={"rows": 8, "cols": 8},
        adc={"bits": bits, "columns_per_adc": 8, "full_scale_ua": full_scale_ua},
        device={
            "weight_bits": 3,
            "bits_per_cell": 1,
            "ron_ohm": 1 / G_ON,
            "roff_ohm": 1 / G_OFF,
            "read_voltage_v": V,
            "signed_weights": "differential",
        },
    )


W = np.array([[3, -1], [2, 1], [-3, 2]])  # 3 rows x 2 outputs
X = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=torch.float32)


def test_column_currents_are_ohm_and_kirchhoff() -> None:
    g = np.array([[G_ON, G_OFF], [G_OFF, G_OFF], [G_ON, G_ON]])
    currents = column_currents_a(np.array([1, 1, 0]), g, V)
    assert currents == pytest.approx([V * (G_ON + G_OFF), V * 2 * G_OFF], rel=1e-12)


def test_one_crossbar_currents_and_codes_by_hand() -> None:
    # FS = 6 levels = 6 V step = 108 uA; 3-bit signed ADC: LSB = 1.5 levels, codes -4..3
    arch = hand_arch(full_scale_ua=6 * V * STEP * 1e6)
    assert arch.outputs_per_crossbar == 2
    layer = CrossbarLayer(W[None], arch)
    assert (layer.groups, layer.col_groups, layer.slices) == (1, 1, 2)
    assert layer.adc.lsb == pytest.approx(1.5)
    read = layer.read(X[None])  # one kernel position
    # slice signals (levels) by hand: bit 0 and bit 1 of G+ minus G-, summed over driven rows
    # output 0 (3, 2, -3): x=[1,1,0] -> (1, 2); [1,1,1] -> (0, 1); [0,0,1] -> (-1, -1)
    # output 1 (-1, 1, 2): x=[1,1,0] -> (0, 0); [1,1,1] -> (0, 1); [0,0,1] -> (0, 1)
    signal = read.signal_levels[0]  # (B, S, O)
    expected = [[[1, 0], [2, 0]], [[0, 0], [1, 1]], [[-1, 0], [-1, 1]]]
    assert signal.tolist() == expected
    # currents: x=[1,1,0], output 0, slice 0: G+ column (G_on, G_off), G- column (G_off, G_off)
    # conductances are (S, row group, column group, R', O): slice 0, output 0's columns
    g_pos = layer.conductances.positive[0, 0, 0, :, 0]
    g_neg = layer.conductances.negative[0, 0, 0, :, 0]
    assert g_pos.tolist() == pytest.approx([G_ON, G_OFF, G_OFF])  # bit 0 of 3, 2, (-3 on G-)
    assert g_neg.tolist() == pytest.approx([G_OFF, G_OFF, G_ON])
    i_pos = column_currents_a(X[0].numpy(), g_pos[:, None], V)[0]
    i_neg = column_currents_a(X[0].numpy(), g_neg[:, None], V)[0]
    assert i_pos == pytest.approx(V * (G_ON + G_OFF)) and i_neg == pytest.approx(V * 2 * G_OFF)
    assert float(layer.current_a(signal[0, 0, 0])) == pytest.approx(i_pos - i_neg, rel=1e-12)
    # codes = round(signal / 1.5): 1 -> 1, 2 -> 1, 0 -> 0, -1 -> -1
    assert read.codes[0].tolist() == [[[1, 0], [1, 0]], [[0, 0], [1, 1]], [[-1, 0], [-1, 1]]]
    # shift-add: psum = 1.5 (code_0 + 2 code_1); exact x W would be [5, 0], [2, 2], [-3, 2]
    assert read.psum.numpy() == pytest.approx(np.array([[4.5, 0.0], [3.0, 3.0], [-4.5, 3.0]]))
    assert (X.numpy() @ W).tolist() == [[5, 0], [2, 2], [-3, 2]]


def test_adc_clips_at_full_scale() -> None:
    arch = hand_arch(full_scale_ua=6 * V * STEP * 1e6)
    codes = np.zeros((8, 2), np.int64)
    codes[:, 0] = 3  # every row: code 3 = 11b, both slices at level 1
    layer = CrossbarLayer(codes[None], arch)
    x = torch.ones((1, 1, 8))
    read = layer.read(x)
    # signal 8 levels in both slices: round(8 / 1.5) = 5 > 3 -> clipped to 3
    assert read.signal_levels[0, 0, :, 0].tolist() == [8.0, 8.0]
    assert read.codes[0, 0, :, 0].tolist() == [3.0, 3.0]
    assert read.psum[0, 0].item() == pytest.approx(1.5 * 3 + 2 * 1.5 * 3)  # 13.5, exact 24
    psum, clips, conversions = layer.forward(x)
    assert clips == 2 and conversions == 1 * 2 * 1 * 2  # groups x slices x outputs
    assert float(layer.current_a(read.signal_levels[0, 0, 0, 0])) == pytest.approx(8 * V * STEP)


def test_adc_default_full_scale_is_a_power_of_two_of_levels() -> None:
    adc = adc_in_levels(SPIKESIM)  # 64 rows x 1 level = 64 levels; 4 bits -> LSB 8 levels
    assert (adc.full_scale, adc.lsb, adc.code_min, adc.code_max) == (64.0, 8.0, -8, 7)
    expected_a = 64 * SPIKESIM.device.read_voltage_v * SPIKESIM.cell_step_s
    assert SPIKESIM.adc_full_scale_a == pytest.approx(expected_a)
    two_bit = variant(device={"weight_bits": 8, "bits_per_cell": 2})  # 64 x 3 = 192 -> 256
    assert adc_in_levels(two_bit).full_scale == 256.0
    codes, clipped = Adc(4, 8.0).convert(torch.tensor([-9.0, -8.0, -0.25, 0.25, 6.9, 7.6]))
    assert codes.tolist() == [-8, -8, 0, 0, 7, 7] and clipped.tolist() == [1, 0, 0, 0, 0, 1]
    # ties go to the even code (no systematic +LSB/2 bias): LSB = 2 levels
    codes, _ = Adc(3, 8.0).convert(torch.tensor([-3.0, -1.0, 1.0, 3.0, 5.0]))
    assert codes.tolist() == [-2, 0, 0, 2, 2]


@pytest.mark.parametrize("style", ["kernel_split", "unrolled"])
@pytest.mark.parametrize("signed", ["differential", "offset"])
def test_ideal_read_is_exact(style: str, signed: str) -> None:
    # 8-bit weights on 2-bit cells, 12-bit ADC (LSB 1/8 level): several row and column groups
    arch = variant(
        adc={"bits": 12},
        device={"weight_bits": 8, "bits_per_cell": 2, "signed_weights": signed},
        mapping={"style": style},
    )
    rng = np.random.default_rng(0)
    codes = rng.integers(-127, 128, size=(9, 100, 30))  # 3x3 kernel, 100 in, 30 out
    layer = CrossbarLayer(codes, arch)
    assert layer.col_groups == -(-30 // arch.outputs_per_crossbar) > 1
    assert layer.groups == (9 * 2 if style == "kernel_split" else -(-900 // 64))
    x = torch.from_numpy(rng.random((9, 50, 100)) < 0.3).float()
    psum, clips, _ = layer.forward(x, chunk=16)
    exact = np.einsum("pbc,pco->bo", x.numpy().astype(np.int64), codes)
    assert clips == 0
    assert np.array_equal(psum.numpy(), exact.astype(np.float64))


def test_variation_perturbs_reads_deterministically() -> None:
    rng = np.random.default_rng(1)
    codes = rng.integers(-7, 8, size=(1, 64, 10))
    x = torch.from_numpy(rng.random((1, 20, 64)) < 0.5).float()
    exact = x[0].numpy() @ codes[0]
    arch = variant(adc={"bits": 12})
    noisy = [
        CrossbarLayer(codes, arch, noise=Nonidealities(sigma=0.2, seed=7)).forward(x)[0]
        for _ in range(2)
    ]
    assert torch.equal(noisy[0], noisy[1])
    assert not np.array_equal(noisy[0].numpy(), exact)
    assert np.corrcoef(noisy[0].numpy().ravel(), exact.ravel())[0, 1] > 0.8


@pytest.mark.parametrize("bits", [3, 10])
def test_lookup_table_path_equals_matrix_path(bits: int) -> None:
    # 8 input channels: 2^8 patterns per crossbar, tabulated once; the 3-bit ADC clips at
    # +-6 levels
    arch = variant(adc={"bits": bits}, device={"weight_bits": 8, "bits_per_cell": 2})
    if bits == 3:
        level_ua = arch.device.read_voltage_v * arch.cell_step_s * 1e6
        arch = variant(
            adc={"bits": bits, "full_scale_ua": 6 * level_ua},
            device={"weight_bits": 8, "bits_per_cell": 2},
        )
    rng = np.random.default_rng(3)
    codes = rng.integers(-127, 128, size=(9, 8, 25))
    noisy = Nonidealities(sigma=0.1, seed=1)
    for noise in (None, noisy):
        layer = CrossbarLayer(codes, arch, noise=noise)
        assert layer._table is not None
        x = torch.from_numpy(rng.random((9, 300, 8)) < 0.4).float()
        table = layer.forward(x)
        direct = layer.forward(x, lookup=False)
        assert torch.equal(table[0], direct[0])
        assert table[1:] == direct[1:]
    assert table[1] > 0 if bits == 3 else table[1] == 0
