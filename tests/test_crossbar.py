"""Functional crossbar + ADC: one-crossbar cases by hand, SpikeSim's analog sum over a PE's
kernel positions, exactness of the ideal read for every encoding, slicing and row layout, and
the numba engine's crossbar kernel against the NumPy read (`hwsim.hw.crossbar.read_rows`), bit
for bit, in every path the kernel takes."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hwsim.engine import CROSSBAR_COUNTS, CrossbarSynapse, crossbar_tables
from hwsim.engine import _functional_kernels as F
from hwsim.engine import _kernels as K
from hwsim.engine.backends import NumbaBackend
from hwsim.engine.plan import ConnKind, build_plan
from hwsim.hw.arch import Architecture, load_arch, parse_arch
from hwsim.hw.crossbar import (
    Adc,
    CrossbarLayer,
    CrossbarRows,
    ReadCounts,
    Window,
    _row_index,
    adc_of,
    calibrated_lsb,
    read_rows,
)
from hwsim.hw.device import Nonidealities, slice_weights, to_conductances
from hwsim.hw.mapping import LayerMapping, map_network
from hwsim.model.coding import DirectCoding
from hwsim.model.convert import ConversionParams, SpikingNetwork, convert
from hwsim.model.data import make_synthetic
from hwsim.model.graph import Layer, LayerKind, Role
from hwsim.model.nets import Checkpoint, HeadedNet
from hwsim.model.netspec import NetSpec
from hwsim.pipeline.hardware import kernel_reader
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
    window = Window(g.kernel, g.stride, g.padding, g.out_hw)
    x = np.ascontiguousarray(x, np.float32)
    psum, counts = layer.read(
        x, window, scale=1.0, bias=np.zeros(g.out_channels, np.float32), adc=adc, **kw
    )
    before = layer.read_counts(x, window)  # what the read counted before converting
    assert vars(before) == {**vars(counts), "clips": 0, "conversions": 0}
    return psum, counts


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


def test_float_levels_add_in_input_position_then_channel_order() -> None:
    # float32 sums depend on their order: 2^24 + 1 rounds back to 2^24 (ties to even), so
    # rows 2^24, 1, -2^24 give 0 in channel order (and 1 in any order adding 1 last); over a
    # 1x2 kernel, position 0's channels come before position 1's
    rows = CrossbarRows(
        np.array([[[2.0**24], [1.0]], [[-(2.0**24)], [0.0]]], np.float32),
        np.zeros((2, 2), np.int64), np.zeros((2, 2), np.int64), 1, np.ones(1), 0.0,
    )  # fmt: skip
    window = Window((1, 2), 1, 0, (1, 1))
    x = np.ones((1, 2, 1, 2), np.float32)
    psum, counts = read_rows(x, rows, window, None, 1.0, np.zeros(1, np.float32))
    assert psum.ravel().tolist() == [0.0]
    assert vars(counts) == vars(ReadCounts(pe_ops=1, reads=1, inputs=4, conversions=1))


# ------------------------------------------------------- the engine's kernel vs the NumPy read


@pytest.fixture(scope="module")
def small_net() -> SpikingNetwork:
    """A VGG11 at width 1/16 on 1x16x16 input with random weights (the connections under test
    take crossbar synapses; the others only need to run)."""
    torch.manual_seed(0)
    spec = NetSpec("vgg11", 1 / 16, (1, 16, 16), 4, (2,))
    ckpt = Checkpoint(spec, HeadedNet(spec).state_dict(), {"name": "synthetic"}, {})
    return convert(ckpt, make_synthetic(16, seed=0), ConversionParams(max_images=16))


ADCS = (Adc(3, True, 1.0), Adc(3, False, 0.75), None)  # LSB a power of two, a division, none
STYLES = ("blocks", "scattered", "positions", "one", "diagonal")


def synapse(c, style: str, k: int, rng: np.random.Generator) -> tuple[CrossbarSynapse, Adc | None]:
    """A crossbar synapse of connection c in one of STYLES: its rows' groups and crossbars by
    blocks of 8 channels (integer rows: block tables), scattered at random, one group on a
    crossbar per kernel position or on one crossbar (rows summed as a conv of K columns), or a
    GAP's diagonal of integer levels (summed from channel spike counts). Variant k cycles
    through 1 or 2 columns per output, sign columns, int16 / int32 / float32 rows (floats:
    quarters and +-2^24, so that their sums depend on the order of addition) and the ADCS; an
    ADC-less synapse keeps a histogram."""
    positions, cin, cout = c.kernel[0] * c.kernel[1], c.in_shape[2], c.out_shape[2]
    adc = ADCS[k % 3]
    shape = (positions, cin)
    position = np.arange(positions)[:, None]
    if style == "diagonal":  # groups by blocks or one; crossbars by (position, block),
        matrix = np.zeros((positions, cin, cin), np.int16)  # by position, or one
        matrix[:, np.arange(cin), np.arange(cin)] = 3
        per, sign = 1, False
        group = np.broadcast_to(np.arange(cin) // 8 * (k % 2), shape)
        crossbar = np.broadcast_to((np.arange(cin) // 8 + 4 * position, position, 0)[k % 3], shape)
    else:
        per, sign = 1 + k % 2, k % 4 == 0
        signals = cout * per
        matrix = rng.integers(-3, 4, (positions, cin, signals + (cout if sign else 0)))
        matrix[:, :, signals:] = rng.integers(0, 2, (positions, cin, matrix.shape[2] - signals))
        dtype = (np.int16, np.int32, np.float32)[k % 3 if style != "blocks" else k % 2]
        if dtype is np.float32:
            big = rng.random(matrix.shape) < 0.2
            matrix = np.where(big, np.sign(matrix - 0.5) * 2.0**24, matrix * 0.25)
        matrix = matrix.astype(dtype)
        if style == "blocks":
            group = np.broadcast_to(np.arange(cin) // 8 % 2, shape)
            crossbar = group + 2 * (position % 3)  # crossbars flagged row by row
        elif style == "scattered":
            group, crossbar = rng.integers(0, 3, shape), rng.integers(0, 5, shape)
        else:
            group = np.zeros(shape, np.int64)
            crossbar = np.broadcast_to(position * (style == "positions"), shape)
    converter = (-1.0, 0.0, 0.0) if adc is None else (adc.lsb, adc.code_min, adc.code_max)
    # matrix, group, crossbar, signals, per_output, col_shift, sign_weight, lsb, code_min,
    # code_max, scale, bias, record (2 steps), histogram (no ADC) in quarters of a level
    return CrossbarSynapse(
        *map(np.ascontiguousarray, (matrix, group, crossbar)), cout * per, per,
        np.tile([1.0, 4.0][:per], cout), -4.0 if sign else 0.0, *map(float, converter), 2.0**-5,
        rng.integers(0, 8, cout).astype(np.float32) / 32,
        np.zeros((2, len(CROSSBAR_COUNTS)), np.int64),
        np.zeros(48, np.int64) if adc is None else None, 0.25,
    ), adc  # fmt: skip


def engine_read(snn: SpikingNetwork, g: int, syn: CrossbarSynapse, spikes: np.ndarray):
    """(current (N, C_out, H_out, W_out) float32, counts, the kernel's path: "tables",
    "diagonal", "rows", or how a virtual conv sums the rows (`NumbaBackend.modes`: K.PUSH,
    K.TABLE, K.PULL)) of the numba engine reading
    `spikes` (N, H, W, C_in) int8, placed as what connection g's source fired at t = 0, through
    `syn` at t = 1: nothing fires (threshold 2^30) and membranes start at 0, so the membranes
    of g's layer (its only input) are the current."""
    plan = replace(build_plan(snn), threshold=2.0**30, v0=0.0)
    c = plan.conns[g]
    synapses: list[CrossbarSynapse | None] = [None] * len(plan.conns)
    synapses[g] = syn
    be = NumbaBackend(plan, DirectCoding(), threads=1, synapses=synapses)
    n = len(spikes)
    h, w, channels = plan.input_shape
    run = be.start(np.zeros((n, channels, h, w), np.float32), np.arange(n), 2)
    src = be.offs[c.src]
    run.s[0, :, src : src + plan.layers[c.src].neurons] = spikes.reshape(n, -1)
    tap = be.layer_tab[c.src, K.L_CH]  # a GAP's source keeps spikes per channel
    if tap >= 0:
        run.chan[0, :, tap : tap + c.in_shape[2]] = spikes.reshape(n, -1, c.in_shape[2]).sum(1)
    run.advance(1, 2)
    ho, wo, cout = c.out_shape
    dst = be.offs[c.dst]
    v = run.v[:, dst : dst + ho * wo * cout].reshape(n, ho, wo, cout).transpose(0, 3, 1, 2)
    counts = dict(zip(CROSSBAR_COUNTS, syn.record[1].tolist(), strict=True))
    virtual = be.modes[len(plan.conns) :]
    xt = be.xtab[0]
    path = virtual[0] if virtual else "tables" if xt[K.X_TAB] >= 0 else "rows"
    return v, counts, "diagonal" if xt[K.X_DIAG] else path


CONNECTIONS = ("conv1", "conv2", "conv3", "conv5", "ic2.gap", "fc.gap", "fc.linear")
# the ways a synapse of one group sums its rows as a conv (`NumbaBackend.summed_mode`)
FORMS = {"push": {}, "table": {"table_channels": 64, "crossbar_table_bytes": 1 << 22},
         "pull": {"pull_channels": 1}}  # fmt: skip


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", CONNECTIONS)
def test_engine_kernel_equals_the_numpy_read(small_net, monkeypatch, name, form) -> None:
    # every synapse style and variant on random spikes (40% density): currents bit for bit,
    # every count, the histograms; both sides sum float rows in input position, then channel
    # order (the kernel by rows, from a virtual conv, or from block-sum tables of integers)
    for attr, value in FORMS[form].items():
        monkeypatch.setattr(NumbaBackend, attr, value)
    monkeypatch.setattr(crossbar_tables, "XB_TABLE_BYTES", 1 << 24)  # every block style from tables
    plan = build_plan(small_net)
    g = next(i for i, c in enumerate(plan.conns) if c.name == name)
    c = plan.conns[g]
    styles = STYLES if c.kind is ConnKind.GAP else STYLES[:-1]
    rng = np.random.default_rng(CONNECTIONS.index(name))
    totals = np.zeros(len(CROSSBAR_COUNTS) + 1, np.int64)
    paths: set[int | str] = set()
    for k in range(6):
        for style in styles:
            syn, adc = synapse(c, style, k, rng)
            spikes = (rng.random((5, *c.in_shape)) < 0.4).astype(np.int8)
            got, counts, path = engine_read(small_net, g, syn, spikes)
            paths.add(path)
            rows = CrossbarRows(
                syn.matrix, syn.group, syn.crossbar, syn.per_output, syn.col_shift,
                syn.sign_weight,
            )  # fmt: skip
            window = Window(c.kernel, c.stride, c.pad, c.out_shape[:2])
            hist = None if syn.hist is None else np.zeros_like(syn.hist)
            x = spikes.transpose(0, 3, 1, 2).astype(np.float32)
            want, ref = read_rows(x, rows, window, adc, syn.scale, syn.bias, hist, 0.25)
            case = f"{name} {style} variant {k}"
            assert np.array_equal(got, want), case
            assert counts == vars(ref), case
            if hist is not None:
                assert np.array_equal(syn.hist, hist) and hist.sum() > 0, case
            totals += np.array([*counts.values(), np.count_nonzero(got != syn.bias[:, None, None])])
    assert totals.min() > 0  # operations, reads, inputs, clips, conversions; currents
    want = {"push": K.PUSH, "table": K.TABLE, "pull": K.PULL}[form]
    assert {want, "tables", "rows"} | ({"diagonal"} if c.kind is ConnKind.GAP else set()) <= paths


# ------------------------------------------------------------------ the layer's construction


def crossbar_matrix(codes: np.ndarray, m: LayerMapping, arch: Architecture) -> tuple:
    """(matrix, sign_weight, signal columns, slices) as `CrossbarLayer` built them before it
    sliced ideal codes directly: every crossbar's cells (unused ones included) sliced, their
    levels in float64, collapsed over binary-weighted cells there, then gathered onto the
    layer's rows and outputs."""
    device, rows = arch.device, arch.crossbar.rows
    positions, channels, outputs = codes.shape
    flat = _row_index(m).ravel()
    blocks = np.zeros((m.row_groups * rows, m.col_groups * m.outputs_per_crossbar), np.int64)
    blocks[flat, :outputs] = codes.reshape(-1, outputs)
    per_crossbar = blocks.reshape(m.row_groups, rows, m.col_groups, -1).transpose(0, 2, 1, 3)
    levels = slice_weights(per_crossbar, device)
    eff = levels.effective().astype(np.float64)
    slices = eff.shape[0]
    shifts = np.array([float(1 << (j * device.bits_per_cell)) for j in range(slices)])
    if device.slicing.value == "cells":
        eff = np.tensordot(shifts, eff, axes=(0, 0))[None]
    by_row = eff.transpose(1, 3, 2, 4, 0).reshape(m.row_groups * rows, -1, eff.shape[0])
    parts = [by_row[flat, :outputs].reshape(positions, channels, -1)]
    sign_weight = 0.0
    if levels.sign is not None and levels.sign.any():
        sign = levels.sign.transpose(0, 2, 1, 3).reshape(m.row_groups * rows, -1)
        parts.append(sign[flat, :outputs].reshape(positions, channels, outputs))
        sign_weight = -float(1 << (device.weight_bits - 1))
    return np.concatenate(parts, axis=2), sign_weight, eff.shape[0], slices


@pytest.mark.parametrize(("style", "signed", "slicing"), CASES)
@pytest.mark.parametrize("bits", [(4, 1), (8, 2), (7, 3)])
def test_ideal_codes_are_sliced_as_on_their_crossbars(style, signed, slicing, bits) -> None:
    # the matrix (values and dtype), sign weight, columns and peak of ideal cells equal the
    # previous construction's from every crossbar's cells; the conductances, laid out on
    # demand, are those of every crossbar's cells
    weight_bits, per_cell = bits
    arch = variant(
        device={"weight_bits": weight_bits, "bits_per_cell": per_cell, "signed_weights": signed,
                "slicing": slicing},
        mapping={"style": style},
    )  # fmt: skip
    g = conv_layer(70, 30, 3, 5, 5, pad=1)
    q_max = (1 << (weight_bits - 1)) - 1
    codes = np.random.default_rng(weight_bits).integers(-q_max, q_max + 1, (9, 70, 30))
    codes[:, :3] = q_max  # columns with large sums
    m = mapped(arch, g)
    layer = CrossbarLayer(codes, m, arch)
    matrix, sign_weight, columns, slices = crossbar_matrix(codes, m, arch)
    peak = np.abs(matrix).sum(axis=(0, 1)).max()  # int16 accumulators where columns fit
    assert layer.matrix.dtype == (np.int16 if peak < 2**15 else np.int32)
    assert np.array_equal(layer.matrix, matrix)
    assert (layer.sign_weight, layer.signal_columns, layer.slices) == (sign_weight, columns, slices)
    assert layer.peak_levels == float(np.abs(matrix[:, :, : layer.signals]).sum((0, 1)).max())
    rows = arch.crossbar.rows
    blocks = np.zeros((m.row_groups * rows, m.col_groups * m.outputs_per_crossbar), np.int64)
    blocks[_row_index(m).ravel(), :30] = codes.reshape(-1, 30)
    cells = blocks.reshape(m.row_groups, rows, m.col_groups, -1).transpose(0, 2, 1, 3)
    want = to_conductances(slice_weights(cells, arch.device), arch.device)
    assert layer.conductances.ideal
    assert np.array_equal(layer.conductances.positive, want.positive)


# ------------------------------------------ the engine's kernel of a batch read vs the NumPy read


def rows_case(rng, dtype, channels: int, kernel: int, groups: int, per: int, sign: bool):
    """Random rows of O = 3 outputs: levels of `dtype` (floats: quarters and +-2^24, whose sums
    depend on their order), `groups` conversion groups and 3 crossbars at random, `per`
    columns per output (shifts 1, 4), digital sign columns."""
    positions, outputs = kernel * kernel, 3
    signals = outputs * per
    k = signals + (outputs if sign else 0)
    matrix = rng.integers(-7, 8, (positions, channels, k)).astype(np.float64)
    matrix[:, :, signals:] = rng.integers(0, 2, (positions, channels, k - signals))
    if dtype is np.float32:
        big = rng.random(matrix.shape) < 0.2
        matrix = np.where(big, np.sign(matrix - 0.5) * 2.0**24, matrix * 0.25)
    shape = (positions, channels)
    return CrossbarRows(
        matrix.astype(dtype), rng.integers(0, groups, shape), rng.integers(0, 3, shape), per,
        np.tile([1.0, 4.0][:per], outputs), -8.0 if sign else 0.0,
    )  # fmt: skip


# (channels, kernel, images): a position's rows tabulated by driven set (9 and 12 rows; with
# fewer positions than sets, and 45 rows, summed position by position)
SHAPES = [(1, 3, 40), (3, 2, 48), (1, 3, 1), (5, 3, 6)]


@pytest.mark.parametrize(("channels", "kernel", "images"), SHAPES)
@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32])
def test_the_kernel_read_equals_the_numpy_read(monkeypatch, channels, kernel, images, dtype):
    # the numba kernel the numba backend reads the analog layer's bit planes with, against
    # `read_rows` (the definition): currents bit for bit (signed zeros included), every count,
    # the histograms, on 1 and 2 threads, with a signed, an unsigned (division) and no ADC
    tables = []
    tabulate = F._mask_table
    monkeypatch.setattr(F, "_mask_table", lambda *a: tables.append(1) or tabulate(*a))
    rng = np.random.default_rng(channels * kernel * images)
    adcs = (Adc(4, True, 1.0), Adc(3, False, 1.3), None)
    for k in range(12):
        rows = rows_case(rng, dtype, channels, kernel, 1 + k % 2, 1 + k // 6, k % 3 == 0)
        adc = adcs[k % 3]
        pad, stride = (1, 1) if k % 4 < 2 else (0, 2)
        out = (9 + 2 * pad - kernel) // stride + 1
        window = Window((kernel, kernel), stride, pad, (out, out))
        x = (rng.random((images, channels, 9, 9)) < 0.4).astype(np.float32)
        x[0, 0, 0, 0] = -0.5  # any nonzero input drives its row
        bias = np.zeros(3, np.float32) if k % 2 else rng.normal(0, 1, 3).astype(np.float32)
        hist = [None if adc else np.zeros(40, np.int64) for _ in range(2)]
        want, ref = read_rows(x, rows, window, adc, 0.37, bias, hist[0], 0.25)
        got, counts = kernel_reader(1 + k % 2)(x, rows, window, adc, 0.37, bias, hist[1], 0.25)
        case = f"variant {k}"
        assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))
        assert vars(counts) == vars(ref), case
        if adc is None:
            assert np.array_equal(hist[0], hist[1]) and hist[0].sum() > 0, case
    assert (len(tables) > 0) == (images > 1 and channels * kernel * kernel <= F.MASK_ROWS)
