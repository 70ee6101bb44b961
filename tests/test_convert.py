"""Conversion: BN folding and robust normalisation preserve the ANN's predictions."""

import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import InputError
from hwsim.model.convert import (
    ConversionError,
    ConversionParams,
    _calibrate_chunk,
    _fold,
    conv_f64,
    convert,
    fold_bn,
    mean_hw_f64,
)
from hwsim.model.data import ImageSet, load_dataset, make_synthetic
from hwsim.model.graph import FC_HEAD
from hwsim.model.nets import Checkpoint, HeadedNet
from hwsim.model.netspec import NetSpec
from hwsim.model.percentile import TopPercentile


def test_fold_bn_matches_conv_then_bn():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 5, 3, padding=1, bias=False)
    bn = torch.nn.BatchNorm2d(5)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    bn.eval()
    x = torch.randn(2, 3, 8, 8)
    w, b = fold_bn(conv, bn)
    folded = torch.nn.functional.conv2d(x.double(), w, b, padding=1)
    assert torch.allclose(folded, bn(conv(x)).double(), atol=1e-5)


def test_normalised_ann_predicts_exactly_what_the_original_does(tiny_checkpoint):
    ckpt, _ = tiny_checkpoint
    calib = load_dataset("synthetic", "train")
    snn = convert(ckpt, calib)
    x = torch.from_numpy(load_dataset("synthetic", "test").x)
    with torch.no_grad():
        orig = ckpt.build()(x)
        norm = snn.ann_forward(x)
    lam_heads = snn.scales[-len(snn.heads) :]
    for h, lam in zip(snn.heads, lam_heads, strict=True):
        assert torch.equal(orig[h].argmax(1), norm[h].argmax(1))
        # ReLU is positively homogeneous: normalised logits are the originals / lambda_head
        assert torch.allclose(norm[h] * lam, orig[h], rtol=1e-4, atol=1e-4)


def test_lambda_is_the_percentile_of_block_activations(tiny_checkpoint):
    ckpt, _ = tiny_checkpoint
    calib = load_dataset("synthetic", "train")
    params = ConversionParams(percentile=99.0, max_images=200)
    snn = convert(ckpt, calib, params)
    net = ckpt.build().double()  # the unfolded network in float64: torch's order, not ours
    with torch.no_grad():
        a = net.blocks[0](torch.from_numpy(calib.x[:200]).double())
    assert snn.scales[0] == pytest.approx(float(np.percentile(a.numpy(), 99.0)), rel=1e-12)
    # after normalisation the first block's activations have that percentile at 1
    with torch.no_grad():
        y = torch.relu(snn.layer_forward(snn.graph.layer("conv0"), torch.from_numpy(calib.x[:200])))
    assert float(np.percentile(y.numpy(), 99.0)) == pytest.approx(1.0, rel=1e-4)


def test_residual_network_conversion_keeps_argmax():
    torch.manual_seed(1)
    spec = NetSpec("resnet18", 1 / 16, (1, 16, 16), 10, (3,))
    net = HeadedNet(spec)
    data = make_synthetic(128, (1, 16, 16))
    net.train()
    with torch.no_grad():  # populate BN running statistics
        net(torch.from_numpy(data.x))
    net.eval()
    ckpt = Checkpoint(spec, net.state_dict(), {"name": "synthetic"}, {3: 0.0, FC_HEAD: 0.0})
    snn = convert(ckpt, data)
    x = torch.from_numpy(data.x)
    with torch.no_grad():
        orig, norm = net(x), snn.ann_forward(x)
    for h in (3, FC_HEAD):
        assert torch.equal(orig[h].argmax(1), norm[h].argmax(1))


def test_silent_layer_is_a_clear_error():
    spec = NetSpec("vgg11", 1 / 16, (1, 16, 16), 10)
    net = HeadedNet(spec)
    with torch.no_grad():
        net.blocks[0].bn.bias.fill_(-100.0)  # ReLU kills every activation
    net.eval()
    ckpt = Checkpoint(spec, net.state_dict(), {"name": "synthetic"}, {FC_HEAD: 0.0})
    with pytest.raises(ConversionError, match="block 0"):
        convert(ckpt, make_synthetic(16, (1, 16, 16)))


@pytest.mark.parametrize("kw", [{"percentile": 0}, {"max_images": 0}, {"threshold": -1}])
def test_bad_conversion_params(kw):
    with pytest.raises(InputError, match=next(iter(kw))):
        ConversionParams(**kw)


def _plain_conv(x, w, b, stride, pad):
    """Float64 loops: bias, then the products in (c, ky, kx) order, one add at a time."""
    n, cin, h, wd = x.shape
    cout, _, kh, kw = w.shape
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, cout, ho, wo))
    for i in range(n):
        for o in range(cout):
            for oy in range(ho):
                for ox in range(wo):
                    acc = b[o]
                    for c in range(cin):
                        for ky in range(kh):
                            for kx in range(kw):
                                iy, ix = oy * stride - pad + ky, ox * stride - pad + kx
                                if 0 <= iy < h and 0 <= ix < wd:
                                    acc = acc + x[i, c, iy, ix] * w[o, c, ky, kx]
                    out[i, o, oy, ox] = acc
    return out


@pytest.mark.parametrize(
    ("cin", "cout", "size", "kernel", "stride", "pad"),
    [
        (3, 5, 7, 3, 1, 1),
        (2, 9, 9, 3, 2, 1),
        (4, 3, 6, 1, 2, 0),
        (5, 40, 3, 3, 1, 1),
        (6, 7, 1, 1, 1, 0),
    ],
)
def test_conv_f64_adds_in_its_documented_order(cin, cout, size, kernel, stride, pad):
    """Bit for bit the plain loop's sums, with either vectorised loop (more positions than
    outputs or fewer), with or without ReLU, on any number of threads."""
    rng = np.random.default_rng(cin * 100 + cout)
    x = rng.standard_normal((3, cin, size, size)).astype(np.float32).astype(np.float64)
    x[x < -0.5] = 0.0  # zero inputs, as after a ReLU
    w = rng.standard_normal((cout, cin, kernel, kernel)).astype(np.float32).astype(np.float64)
    b = rng.standard_normal(cout)
    ref = _plain_conv(x, w, b, stride, pad)
    for threads in (1, 2, 3):
        got = conv_f64(x, w, b, stride, pad, threads=threads)
        np.testing.assert_array_equal(got, ref)
        relu = conv_f64(x, w, b, stride, pad, relu=True, threads=threads)
        np.testing.assert_array_equal(relu, np.maximum(ref, 0.0))
    torch_ref = torch.nn.functional.conv2d(*map(torch.from_numpy, (x, w, b)), stride, pad)
    np.testing.assert_allclose(got, torch_ref.numpy(), rtol=0, atol=1e-12)


def test_mean_hw_f64_sums_positions_in_order():
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 6))
    ref = np.zeros((4, 3))
    for iy in range(5):
        for ix in range(6):
            ref = ref + x[:, :, iy, ix]
    np.testing.assert_array_equal(mean_hw_f64(x, threads=2), ref / 30)


def test_conversion_is_the_same_whatever_torchs_thread_count(tiny_checkpoint):
    ckpt, _ = tiny_checkpoint
    calib = load_dataset("synthetic", "train")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = convert(ckpt, calib)
        torch.set_num_threads(3)
        three = convert(ckpt, calib)
    finally:
        torch.set_num_threads(before)
    assert one.fingerprint() == three.fingerprint() and one.scales == three.scales


def _same_float(a: float, b: float) -> bool:
    """Equal bits, or both NaN (np.percentile's NaN is whichever NaN sorted last)."""
    return bool(np.isnan(a) and np.isnan(b)) or np.float64(a).tobytes() == np.float64(b).tobytes()


VALUES = {
    "normal": lambda rng, m: rng.standard_normal(m),
    "ties": lambda rng, m: rng.integers(0, 4, m).astype(np.float64),
    "relu": lambda rng, m: np.maximum(rng.standard_normal(m), 0.0),  # many zeros, as a layer's
    "wide": lambda rng, m: rng.standard_normal(m) * 10.0 ** rng.integers(-300, 300, m),
    "inf": lambda rng, m: np.where(rng.random(m) < 0.1, np.inf, rng.standard_normal(m)),
    "nan": lambda rng, m: np.where(rng.random(m) < 0.02, np.nan, rng.standard_normal(m)),
}


@settings(max_examples=400, deadline=None)
@given(
    m=st.integers(1, 3000),
    q=st.sampled_from([99.9, 50.0, 100.0, 100, 0.1, 0.0, 99.99, 1 / 3]) | st.floats(0, 100),
    kind=st.sampled_from(sorted(VALUES)),
    cuts=st.lists(st.floats(0, 1), max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_top_percentile_is_np_percentile_bit_for_bit(m, q, kind, cuts, seed):
    """Any size, q (ends included), ties, infinities, NaNs and chunking: np.percentile's bits."""
    values = VALUES[kind](np.random.default_rng(seed), m)
    with np.errstate(invalid="ignore"):  # inf - inf in its interpolation
        ref = np.percentile(values.copy(), q)
    top = TopPercentile(m, q)
    for chunk in np.split(values, sorted(int(c * m) for c in cuts)):
        top.add(chunk)
    assert _same_float(top.value(), ref)
    assert len(top._top) <= top.keep == m - int(np.floor((m - 1) * (q / 100)))


def test_top_percentile_keeps_only_the_largest_values():
    top = TopPercentile(1_000_000, 99.9)
    assert top.keep == 1_000_000 - 998_999  # the 999.001th thousandth: floor(998_999.001)
    rng = np.random.default_rng(0)
    values = rng.standard_normal(1_000_000)
    for chunk in np.split(values.copy(), 10):
        top.add(chunk)
        assert len(top._top) <= top.keep
    assert top.value() == np.percentile(values, 99.9)


def test_top_percentile_refuses_a_wrong_count():
    with pytest.raises(ValueError, match="0 values"):
        TopPercentile(0, 50)
    with pytest.raises(ValueError, match="out of range"):
        TopPercentile(3, 100.5)
    top = TopPercentile(3, 50)
    top.add(np.ones(2))
    with pytest.raises(ValueError, match="2 of the percentile's 3"):
        top.value()
    with pytest.raises(ValueError, match="4 values given"):
        top.add(np.ones(2))


def _residual_checkpoint():
    torch.manual_seed(1)
    spec = NetSpec("resnet18", 1 / 16, (1, 16, 16), 10, (3,))
    net = HeadedNet(spec)
    data = make_synthetic(40, (1, 16, 16))
    net.train()
    with torch.no_grad():  # populate BN running statistics
        net(torch.from_numpy(data.x))
    net.eval()
    return Checkpoint(spec, net.state_dict(), {"name": "synthetic"}, {3: 0.0, FC_HEAD: 0.0}), data


def _all_at_once_lambdas(ckpt, calib, params):
    """The lambdas as computed before streaming: every activation of every calibration image
    at once, then np.percentile (in the order the lambdas are taken)."""
    net, graph = ckpt.build(), ckpt.spec.graph()
    acts = {}
    with torch.no_grad():
        x = calib.x[: params.max_images].astype(np.float64)
        folded = _fold(net, ckpt.spec, graph)
        _calibrate_chunk(net, ckpt.spec, graph, folded, x, lambda what, a: acts.setdefault(what, a))
    return {what: float(np.percentile(a, params.percentile)) for what, a in acts.items()}


@pytest.mark.parametrize("residual", [False, True])
def test_calibration_in_chunks_is_bit_for_bit_all_images_at_once(tiny_checkpoint, residual):
    """One image a chunk (on one thread), a few (the last one short), or all at once: the same
    lambdas (np.percentile's over every activation) and the same weights."""
    if residual:
        ckpt, calib = _residual_checkpoint()
        params = ConversionParams(percentile=99.0)
    else:
        ckpt, calib = tiny_checkpoint[0], load_dataset("synthetic", "train")
        params = ConversionParams(max_images=300)
    ref = _all_at_once_lambdas(ckpt, calib, params)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        snns = [convert(ckpt, calib, params, chunk_bytes=1)]
    finally:
        torch.set_num_threads(before)
    snns += [convert(ckpt, calib, params, chunk_bytes=b) for b in (200_000, 1 << 40)]
    for snn in snns:
        assert snn.scales == snns[0].scales
        assert snn.fingerprint() == snns[0].fingerprint()
        for name, w in snn.weights.items():
            assert torch.equal(w.weight, snns[0].weights[name].weight)
            assert torch.equal(w.bias, snns[0].weights[name].bias)
    # every lambda is np.percentile's: blocks (and conv1s) in order, then the heads
    assert sorted(snns[0].scales) == sorted(ref.values())
    blocks = [lam for what, lam in ref.items() if not what.startswith("head")]
    assert snns[0].scales[: len(blocks)] == tuple(blocks)


def _calibration_peak_bytes(ckpt, calib, images):
    tracemalloc.start()
    try:
        convert(ckpt, calib, ConversionParams(max_images=images), chunk_bytes=200_000)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_calibration_memory_does_not_grow_with_the_images():
    """Peak memory at 800 calibration images is that at 200 (one chunk of activations and the
    0.1 % largest values of each layer); all at once it would grow by 600 images' activations."""
    spec = NetSpec("vgg11", 1 / 16, (1, 16, 16), 10)
    torch.manual_seed(0)
    net = HeadedNet(spec).eval()
    ckpt = Checkpoint(spec, net.state_dict(), {"name": "synthetic"}, {FC_HEAD: 0.0})
    calib = make_synthetic(800, (1, 16, 16))
    _calibration_peak_bytes(ckpt, calib, 10)  # compiled and warm
    small, large = (_calibration_peak_bytes(ckpt, calib, n) for n in (200, 800))
    one_image = 8 * (256 + 4 * 256)  # block 0's input and output, float64
    assert large - small < 0.05 * 600 * one_image, (small, large)


def test_nan_activations_are_a_clear_error():
    calib = make_synthetic(16, (1, 16, 16))
    calib.x[3, 0, 5, 5] = np.nan
    ckpt, _ = _residual_checkpoint()
    with pytest.raises(ConversionError, match="block 0: the 99.9th percentile .* is nan"):
        convert(ckpt, calib, chunk_bytes=1)


def test_no_calibration_images_is_a_clear_error():
    ckpt, calib = _residual_checkpoint()
    empty = ImageSet(calib.x[:0], calib.y[:0], "synthetic", "train", 10, calib.indices[:0])
    with pytest.raises(ConversionError, match="no calibration images"):
        convert(ckpt, empty)
