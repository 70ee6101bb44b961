"""Conversion: BN folding and robust normalisation preserve the ANN's predictions."""

import numpy as np
import pytest
import torch

from hwsim.errors import InputError
from hwsim.model.convert import (
    ConversionError,
    ConversionParams,
    conv_f64,
    convert,
    fold_bn,
    mean_hw_f64,
)
from hwsim.model.data import load_dataset, make_synthetic
from hwsim.model.graph import FC_HEAD
from hwsim.model.nets import Checkpoint, HeadedNet
from hwsim.model.netspec import NetSpec


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
