"""Functional crossbar + ADC: one-crossbar cases by hand, SpikeSim's analog sum over a PE's
kernel positions, and exactness of the ideal read for every encoding, slicing and row layout."""

from pathlib import Path

import numpy as np
import pytest

from hwsim.hw.arch import Architecture, load_arch, parse_arch
from hwsim.hw.crossbar import Adc, CrossbarLayer, adc_of, calibrated_lsb
from hwsim.hw.device import Nonidealities
from hwsim.hw.mapping import LayerMapping, map_network
from hwsim.model.graph import Layer, LayerKind, Role
from tests.geometry import chain

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml")

V, G_ON, G_OFF = 0.2, 1e-4, 1e-5  # 10 kOhm / 100 kOhm
STEP = G_ON - G_OFF  # one level of a 1-bit cell, S


def variant(**sections: dict) -> Architecture:
    raw = SPIKESIM.to_mapping()
    for section, values in sections.items():
        raw[section].update(values)
    return parse_arch(raw, "variant")


def conv_layer(c_in: int, c_out: int, k: int, h: int, w: int, pad: int = 0) -> Layer:
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    return Layer(
        "c", LayerKind.CONV, Role.BACKBONE, (c_in, h, w), (c_out, ho, wo), (k, k), 1, pad, (), "c"
    )


def mapped(arch: Architecture, layer: Layer) -> LayerMapping:
    return map_network(arch, chain([layer])).layers[0]


def read(layer: CrossbarLayer, g: Layer, x: np.ndarray, adc: Adc | None, **kw) -> tuple:
    """(psum (N, O, Ho, Wo) in weight codes: scale 1, bias 0; counts)."""
    out = np.empty((x.shape[0], g.out_channels, *g.out_hw), np.float32)
    counts = layer.read(
        np.ascontiguousarray(x, np.float32), out, kernel=g.kernel, stride=g.stride,
        padding=g.padding, scale=1.0, bias=np.zeros(g.out_channels, np.float32), adc=adc, **kw,
    )  # fmt: skip
    return out, counts


def hand_arch(full_scale_ua: float | None = None, bits: int = 3) -> Architecture:
    """8 x 8 crossbar, 3-bit differential weights on 1-bit cells, slices on columns: 2 slices,
    4 columns per weight, 2 outputs per crossbar."""
    return variant(
        crossbar={"rows": 8, "cols": 8},
        adc={
            "bits": bits,
            "columns_per_adc": 8,
            "full_scale": "auto" if full_scale_ua is None else "explicit",
            "full_scale_ua": full_scale_ua,
        },
        device={
            "weight_bits": 3,
            "bits_per_cell": 1,
            "ron_ohm": 1 / G_ON,
            "roff_ohm": 1 / G_OFF,
            "read_voltage_v": V,
            "signed_weights": "differential",
            "slicing": "columns",
        },
    )


W = np.array([[3, -1], [2, 1], [-3, 2]])  # 3 rows x 2 outputs
X = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], np.float32)  # 3 input vectors
# a 1x1 conv reading the 3 vectors as the pixels of a 1 x 3 map
ONE_BY_ONE = conv_layer(3, 2, 1, 1, 3)
PIXELS = X.T[None, :, None, :]  # (1, C = 3, 1, 3)


def test_one_crossbar_codes_by_hand() -> None:
    # FS = 6 levels = 6 V step = 108 uA; 3-bit signed ADC: LSB = 6 / 4 = 1.5 levels, codes -4..3
    arch = hand_arch(full_scale_ua=6 * V * STEP * 1e6)
    assert arch.outputs_per_crossbar == 2 and arch.adc_lsb_levels == pytest.approx(1.5)
    layer = CrossbarLayer(W[None], mapped(arch, ONE_BY_ONE), arch)
    assert (layer.slices, layer.signal_columns) == (2, 2)
    # signal columns (levels per driven row): output o's slice j, G+ minus G- column
    assert layer.matrix[0, 0].tolist() == [1, 1, -1, 0]  # 3 = 11b; -1: G- bit 0
    assert layer.matrix[0, 2].tolist() == [-1, -1, 0, 1]  # -3 on G-; 2 = 10b
    # the conductances behind them: slice 0 of output 0, rows 0..2: G+ (on, off, off),
    # G- (off, off, on)
    g_pos = layer.conductances.positive[0, 0, 0, :3, 0]
    g_neg = layer.conductances.negative[0, 0, 0, :3, 0]
    assert g_pos.tolist() == pytest.approx([G_ON, G_OFF, G_OFF])
    assert g_neg.tolist() == pytest.approx([G_OFF, G_OFF, G_ON])
    assert arch.level_a == pytest.approx(V * STEP)  # one cell level of current
    # slice signals (levels) by hand, summed over driven rows:
    # output 0 (3, 2, -3): x=[1,1,0] -> (1, 2); [1,1,1] -> (0, 1); [0,0,1] -> (-1, -1)
    # output 1 (-1, 1, 2): x=[1,1,0] -> (0, 0); [1,1,1] -> (0, 1); [0,0,1] -> (0, 1)
    # codes = round-half-even(signal / 1.5): 1 -> 1, 2 -> 1, -1 -> -1, 0 -> 0
    # psum = 1.5 (code_0 + 2 code_1); exact x W would be [5, 0], [2, 2], [-3, 2]
    psum, counts = read(layer, ONE_BY_ONE, PIXELS, adc_of(arch))
    assert psum[0, :, 0].T.tolist() == [[4.5, 0.0], [3.0, 3.0], [-4.5, 3.0]]
    assert (X @ W).tolist() == [[5, 0], [2, 2], [-3, 2]]
    assert (counts.pe_ops, counts.reads, counts.inputs) == (3, 3, 6)
    assert (counts.conversions, counts.clips) == (3 * 4, 0)


def test_adc_clips_at_full_scale() -> None:
    arch = hand_arch(full_scale_ua=6 * V * STEP * 1e6)
    codes = np.zeros((1, 8, 2), np.int64)
    codes[0, :, 0] = 3  # every row: code 3 = 11b, both slices at level 1
    g = conv_layer(8, 2, 1, 1, 1)
    layer = CrossbarLayer(codes, mapped(arch, g), arch)
    psum, counts = read(layer, g, np.ones((1, 8, 1, 1)), adc_of(arch))
    # signal 8 levels in both slices: round(8 / 1.5) = 5 > 3 -> clipped to 3
    assert psum[0, 0, 0, 0] == pytest.approx(1.5 * 3 + 2 * 1.5 * 3)  # 13.5, exact 24
    assert counts.clips == 2 and counts.conversions == 2 * 2  # 2 slices x 2 outputs


def test_adc_codes_ties_and_ranges() -> None:
    signed, unsigned = Adc(4, True, 8.0), Adc(4, False, 1.0)
    assert (signed.code_min, signed.code_max, unsigned.code_min, unsigned.code_max) == (
        -8, 7, 0, 15,
    )  # fmt: skip
    # ties go to the even code (no systematic +LSB/2 bias): 5-bit differential weights on
    # 1-bit cells, each slice on its own column, one driven row: every slice carries 0 or +-1
    # level, and a 3-bit signed ADC of LSB 2 levels (full scale 8 levels) rounds +-1/2 to 0
    device = {**hand_arch().to_mapping()["device"], "weight_bits": 5}
    arch = variant(
        crossbar={"rows": 8, "cols": 16},
        adc={"bits": 3, "full_scale": "explicit", "full_scale_ua": 8 * V * STEP * 1e6},
        device=device,
    )
    assert arch.adc_lsb_levels == pytest.approx(2.0) and arch.outputs_per_crossbar == 2
    g = conv_layer(1, 6, 1, 1, 1)
    layer = CrossbarLayer(np.array([[[-3, -1, 1, 3, 5, -9]]]), mapped(arch, g), arch)
    psum, counts = read(layer, g, np.ones((1, 1, 1, 1)), adc_of(arch))
    assert psum[0, :, 0, 0].tolist() == [0.0] * 6 and counts.clips == 0
    unsigned_arch = variant(adc={"bits": 4})
    g4 = conv_layer(4, 1, 1, 1, 1)
    layer = CrossbarLayer(np.array([[[7], [7], [7], [-1]]]), mapped(unsigned_arch, g4),
                          unsigned_arch)  # fmt: skip
    psum, counts = read(layer, g4, np.ones((1, 4, 1, 1)), adc_of(unsigned_arch))
    # SpikeSim's column: 7 + 7 + 7 + (-1 + 8) = 28 levels clip at 15; minus 8 for the sign
    assert psum[0, 0, 0, 0] == 15 - 8 and counts.clips == 1
    # SpikeSim's rule (hw_models_new.py): full scale (2^n - 1) x one ON cell: LSB = 1 level
    assert adc_of(SPIKESIM) == Adc(4, False, 1.0)
    assert adc_of(hand_arch()) == Adc(3, True, 1.0)
    with pytest.raises(ValueError, match="calibration"):
        adc_of(variant(adc={"full_scale": "calibrated"}))
    # NeuroSim's practice: the percentile of |signal| meets the top code
    assert calibrated_lsb(4, False, 30.0) == 2.0 and calibrated_lsb(4, True, 14.0) == 2.0
    assert calibrated_lsb(4, True, 0.0) == 1.0


def test_a_pe_sums_its_kernel_positions_before_the_adc() -> None:
    # SpikeSim's PE: the 9 crossbars of a 3x3 kernel share 8 ADCs, one conversion per column
    # and operation; with every weight 1 and every input spiking, the column carries 9 levels,
    # beyond a 3-bit unsigned ADC's 7 although each crossbar alone carries 1
    arch = variant(adc={"bits": 3})
    g = conv_layer(1, 1, 3, 3, 3)
    layer = CrossbarLayer(np.ones((9, 1, 1), np.int64), mapped(arch, g), arch)
    psum, counts = read(layer, g, np.ones((1, 1, 3, 3)), adc_of(arch))
    assert psum[0, 0, 0, 0] == 7.0  # clipped: exact 9
    assert (counts.pe_ops, counts.reads, counts.clips, counts.conversions) == (1, 9, 1, 1)
    psum, _ = read(layer, g, np.ones((1, 1, 3, 3)), adc_of(variant(adc={"bits": 4})))
    assert psum[0, 0, 0, 0] == 9.0


def test_digital_sign_is_subtracted_after_the_adc() -> None:
    # SpikeSim: -3 stored as -3 + 8 = 5 on its column, 8 subtracted per spiking row with a
    # negative weight; codes 5, -3 and 2 on three rows
    arch = variant(adc={"bits": 5})
    g = conv_layer(3, 1, 1, 1, 1)
    layer = CrossbarLayer(np.array([[[5], [-3], [2]]]), mapped(arch, g), arch)
    assert layer.matrix[0, :, 0].tolist() == [5, 5, 2]  # the column's levels
    assert layer.matrix[0, :, 1].tolist() == [0, 1, 0]  # the digital sign bits
    psum, _ = read(layer, g, np.ones((1, 3, 1, 1)), adc_of(arch))
    assert psum[0, 0, 0, 0] == (5 + 5 + 2) - 8 == 4
    psum, counts = read(layer, g, np.ones((1, 3, 1, 1)), adc_of(variant(adc={"bits": 3})))
    assert psum[0, 0, 0, 0] == 7 - 8 and counts.clips == 1  # 12 levels clip at 7


CASES = [
    (style, signed, slicing)
    for style in ("kernel_split", "unrolled")
    for signed in ("differential", "offset", "digital")
    for slicing in ("columns", "cells")
]


@pytest.mark.parametrize(("style", "signed", "slicing"), CASES)
def test_ideal_read_is_exact(style: str, signed: str, slicing: str) -> None:
    # 8-bit weights on 2-bit cells, a 16-bit ADC with an LSB of one level: nothing clips, so
    # every partial sum is exact; several channel and column groups, padding
    arch = variant(
        adc={"bits": 16},
        device={
            "weight_bits": 8, "bits_per_cell": 2, "signed_weights": signed, "slicing": slicing,
        },
        mapping={"style": style},
    )  # fmt: skip
    g = conv_layer(70, 30, 3, 5, 5, pad=1)
    rng = np.random.default_rng(0)
    codes = rng.integers(-127, 128, size=(9, 70, 30))
    m = mapped(arch, g)
    assert m.col_groups == -(-30 // arch.outputs_per_crossbar)
    layer = CrossbarLayer(codes, m, arch)
    x = (rng.random((4, 70, 5, 5)) < 0.3).astype(np.float32)
    psum, counts = read(layer, g, x, adc_of(arch))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    weights = codes.reshape(3, 3, 70, 30)
    exact = sum(
        np.einsum("nchw,co->nohw", xp[:, :, i : i + 5, j : j + 5], weights[i, j])
        for i in range(3)
        for j in range(3)
    )
    assert counts.clips == 0
    assert np.array_equal(psum, exact.astype(np.float32))
    # operations: a window (position x channel group) with a driven row, per column group
    groups = -(-70 // 64) if style == "kernel_split" else m.channel_groups
    assert counts.pe_ops <= 4 * 25 * groups * m.col_groups
    if style == "kernel_split":  # reads per kernel position, at most 9 per operation
        assert counts.pe_ops < counts.reads <= 9 * counts.pe_ops
    else:
        assert counts.reads == counts.pe_ops


def test_block_tables_equal_rows() -> None:
    # narrow layers of ideal cells add their 8-channel blocks from tables of row sums: exactly
    # the rows added one by one (integer levels); varied cells add their rows one by one, in
    # input order, as the numba engine's crossbar synapse does (float sums are order-dependent)
    arch = variant(adc={"bits": 6})
    g = conv_layer(12, 8, 3, 6, 6, pad=1)
    rng = np.random.default_rng(3)
    codes = rng.integers(-7, 8, size=(9, 12, 8))
    x = (rng.random((5, 12, 6, 6)) < 0.4).astype(np.float32)
    layer = CrossbarLayer(codes, mapped(arch, g), arch)
    assert layer.block_tables.size > 0
    with_tables, a = read(layer, g, x, adc_of(arch))
    layer.block_tables = layer.block_tables[:0]
    by_rows, b = read(layer, g, x, adc_of(arch))
    assert np.array_equal(with_tables, by_rows) and vars(a) == vars(b)
    assert a.clips > 0  # a 6-bit unsigned ADC clips some of these sums
    varied = CrossbarLayer(codes, mapped(arch, g), arch, noise=Nonidealities(sigma=0.1, seed=1))
    assert varied.matrix.dtype == np.float32 and varied.block_tables.size == 0


def test_row_groups_are_the_crossbars_of_a_column_group() -> None:
    # kernel_split: row (p, c) lies on crossbar (channel group c // 64) P + p; unrolled: on row
    # group (p C + c) // 64, its conversion group
    g = conv_layer(70, 5, 3, 4, 4, pad=1)
    codes = np.ones((9, 70, 5), np.int64)
    p, c = np.meshgrid(np.arange(9), np.arange(70), indexing="ij")
    split = CrossbarLayer(codes, mapped(SPIKESIM, g), SPIKESIM)
    assert np.array_equal(split.row_group, (c // 64) * 9 + p)
    assert np.array_equal(split.group, c // 64)
    unrolled = variant(mapping={"style": "unrolled"})
    flat = CrossbarLayer(codes, mapped(unrolled, g), unrolled)
    assert np.array_equal(flat.row_group, (p * 70 + c) // 64)
    assert np.array_equal(flat.row_group, flat.group)


def test_variation_perturbs_reads_deterministically() -> None:
    arch = variant(adc={"bits": 12})
    g = conv_layer(64, 10, 1, 4, 5)
    rng = np.random.default_rng(1)
    codes = rng.integers(-7, 8, size=(1, 64, 10))
    x = (rng.random((1, 64, 4, 5)) < 0.5).astype(np.float32)
    exact = np.einsum("nchw,co->nohw", x, codes[0])
    noisy = [
        read(
            CrossbarLayer(codes, mapped(arch, g), arch, noise=Nonidealities(sigma=0.2, seed=7)),
            g, x, adc_of(arch),
        )[0]
        for _ in range(2)
    ]  # fmt: skip
    assert np.array_equal(noisy[0], noisy[1])
    assert not np.array_equal(noisy[0], exact)
    assert np.corrcoef(noisy[0].ravel(), exact.ravel())[0, 1] > 0.8


def test_calibration_reads_without_adc_and_collects_signals() -> None:
    arch = variant(adc={"bits": 3})
    g = conv_layer(1, 1, 3, 3, 3)
    layer = CrossbarLayer(np.ones((9, 1, 1), np.int64), mapped(arch, g), arch)
    hist = np.zeros(int(layer.peak_levels / 0.5) + 2, np.int64)
    psum, counts = read(layer, g, np.ones((2, 1, 3, 3)), None, hist=hist, hist_step=0.5)
    assert psum[0, 0, 0, 0] == 9.0 and counts.clips == 0  # no ADC
    assert layer.peak_levels == 9.0
    assert hist.sum() == 2 and hist[18] == 2  # |signal| 9 levels, bins of 1/2


def test_gap_diagonal_path_equals_the_crossbar_rows() -> None:
    # a GAP layer on ideal cells (SpikeSim: 1/(H W) on the diagonal, codes q_max = 7) sums each
    # channel over the map directly; the same codes, counts and histogram as adding its rows
    arch = variant(adc={"bits": 4})
    c, hw = 70, 5  # two channel groups of 64 + 6
    g = Layer("g", LayerKind.GAP, Role.FC_HEAD, (c, hw, hw), (c, 1, 1), (hw, hw), 1, 0, (), "g")
    codes = np.zeros((hw * hw, c, c), np.int64)
    codes[:, np.arange(c), np.arange(c)] = 7
    m = map_network(arch, chain([conv_layer(3, c, 1, hw, hw), g])).layer("g")
    layer = CrossbarLayer(codes, m, arch)
    assert layer.diagonal.shape == (c, hw * hw) and layer.groups == 2
    x = (np.random.default_rng(5).random((6, c, hw, hw)) < 0.15).astype(np.float32)
    hists = [np.zeros(400, np.int64), np.zeros(400, np.int64)]
    diag, a = read(layer, g, x, adc_of(arch))
    read(layer, g, x, None, hist=hists[0])
    layer.diagonal = layer.diagonal[:0]
    rows, b = read(layer, g, x, adc_of(arch))
    read(layer, g, x, None, hist=hists[1])
    assert np.array_equal(diag, rows) and vars(a) == vars(b)
    assert np.array_equal(hists[0], hists[1])
    assert a.clips > 0 and a.reads > a.pe_ops  # 7 x (spikes of a channel) passes 15 often
