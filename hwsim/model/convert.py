"""ANN to SNN conversion: BN folding and layer-wise robust normalisation.

Robust normalisation (Rueckauer et al. 2017; Habara et al. 2024 eq. 16 and section 6.3):
lambda_l is the p-th percentile (default 99.9) of layer l's ReLU activations over up to 5,000
training images, and W_l <- W_l lambda_{l-1} / lambda_l, b_l <- b_l / lambda_l, lambda_{-1} = 1
for the analog input. A residual block normalises conv1 by its own output's lambda and conv2 and
the skip conv by the block output's lambda. A classifier head (GAP + Linear) takes its tap block's
lambda as lambda_{l-1} and its own logits' percentile as lambda_l. The SNN uses threshold 1 and
membranes initialised to V0, reset by subtraction.

The same lambdas and weights on every CPU: the calibration runs the folded network in float64
with sums in a fixed order (`conv_f64`, `mean_hw_f64`: no torch or BLAS kernel, whose order
follows the instruction set), and folding and normalising are elementwise float64 operations
rounded once to float32 (docs/engine.md, "Reproducibility").

Memory bounded by design: the calibration streams the images in chunks of a fixed byte budget
(`CHUNK_BYTES`, the whole network per chunk) and keeps of each layer only the activations
from its percentile's lower neighbour up (`model.percentile.TopPercentile`: 0.1 % of them at
p = 99.9), so one chunk's activations, not all the images', are ever held; the lambdas are
bit for bit `np.percentile`'s over all the images' activations at once.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit
from torch import nn

from hwsim.atomic import atomic_path
from hwsim.errors import ModelError
from hwsim.model.conversion import (
    SNN_FORMAT,
    SNN_VERSION,
    ConversionError,
    ConversionParams,
    is_spiking_file,
)
from hwsim.model.data import ImageSet
from hwsim.model.graph import IF_NEURON, Layer, LayerGraph, LayerKind
from hwsim.model.nets import (
    Checkpoint,
    ConvBlock,
    HeadedNet,
    checkpoint_from_payload,
    checkpoint_payload,
    read_model_file,
)
from hwsim.model.netspec import NetSpec
from hwsim.model.percentile import TopPercentile

if TYPE_CHECKING:  # nir_io builds SpikingNetworks; it imports this module
    from hwsim.model.nir_io import ImportedSpec


@dataclass(frozen=True)
class Weights:
    """A converted layer's float32 weights (BN folded, normalised) and bias: (C_out, C_in, k_h,
    k_w) for a conv, (C_out, C_in) for a Linear layer; bias (C_out,)."""

    weight: torch.Tensor
    bias: torch.Tensor


@dataclass(frozen=True)
class SpikingNetwork:
    """A converted network, ready for the IF engine: its layer graph and the weights of every
    conv and Linear layer, by layer name (a GAP layer has none). `spec` is the zoo network it
    was converted from, or the `model.nir_io.ImportedSpec` of a network read from a NIR file."""

    spec: NetSpec | ImportedSpec
    graph: LayerGraph
    weights: dict[str, Weights]
    params: ConversionParams
    scales: tuple[float, ...]  # lambda of every normalised layer, in conversion order

    def __post_init__(self) -> None:
        for layer in self.graph.layers:
            if layer.kind is LayerKind.GAP:
                continue
            w = self.weights.get(layer.name)
            if w is None:
                raise ConversionError(f"no weights for layer {layer.name!r}")
            if tuple(w.weight.shape) != layer.weight_shape or tuple(w.bias.shape) != (
                layer.out_channels,
            ):
                raise ConversionError(
                    f"{layer.name}: weight {tuple(w.weight.shape)} and bias"
                    f" {tuple(w.bias.shape)}, expected {layer.weight_shape} and"
                    f" ({layer.out_channels},)"
                )

    @property
    def heads(self) -> tuple[int, ...]:
        return self.graph.heads

    def with_heads(self, heads: Iterable[int]) -> SpikingNetwork:
        """The network with only the given classifier heads (the backbone unchanged)."""
        graph = self.graph.with_heads(heads)
        weights = {n: w for n, w in self.weights.items() if n in set(graph.names)}
        return replace(self, graph=graph, weights=weights)

    def map_weights(self, fn: Callable[[Layer, Weights], Weights]) -> SpikingNetwork:
        """The network with every layer's weights replaced by fn(layer, weights)."""
        weights = {
            layer.name: fn(layer, self.weights[layer.name])
            for layer in self.graph.layers
            if layer.name in self.weights
        }
        return replace(self, weights=weights)

    def layer_forward(self, layer: Layer, x: torch.Tensor) -> torch.Tensor:
        """Layer `layer`'s dense output (bias included) for input x: NCHW, or (N, F) for a
        Linear layer; GAP returns (N, C)."""
        if layer.kind is LayerKind.GAP:
            return x.mean(dim=(2, 3))
        w = self.weights[layer.name]
        if layer.kind is LayerKind.LINEAR:
            return F.linear(x, w.weight, w.bias)
        return F.conv2d(x, w.weight, w.bias, layer.stride, layer.padding)

    def ann_forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """The folded, normalised network run as an ANN (ReLU on every population but the
        heads' outputs); logits scaled by 1/lambda_head."""
        graph = self.graph
        pops = graph.populations()
        last = {p.layers[-1]: p for p in pops}
        pre: dict[str, torch.Tensor] = {}
        act: dict[str, torch.Tensor] = {}
        out: dict[int, torch.Tensor] = {}
        for layer in graph.layers:
            src = act[graph.layer(layer.inputs[0]).population] if layer.inputs else x
            y = self.layer_forward(layer, src)
            pre[layer.population] = y if layer.population not in pre else pre[layer.population] + y
            pop = last.get(layer.name)
            if pop is None:
                continue
            if pop.head_output:
                out[graph.sender(pop.name).head] = pre[pop.name]
            else:
                act[pop.name] = torch.relu(pre[pop.name])
        return {h: out[h] for h in graph.heads}

    def fingerprint(self) -> str:
        """SHA-256 of the weights, conversion parameters and non-IF neurons (a cache key for
        traces)."""
        h = hashlib.sha256(json.dumps(asdict(self.params), sort_keys=True).encode())
        h.update(json.dumps(self.spec.to_dict(), sort_keys=True).encode())
        for layer in self.graph.layers:  # a zoo spec names no neurons: the leaky ones here
            if layer.neuron != IF_NEURON:  # reset_to and v_init only when set: old keys stay
                n = {k: v for k, v in asdict(layer.neuron).items() if v is not None}
                h.update(json.dumps([layer.name, n], sort_keys=True).encode())
        for layer in self.graph.layers:
            if layer.name in self.weights:
                h.update(self.weights[layer.name].weight.numpy().tobytes())
                h.update(self.weights[layer.name].bias.numpy().tobytes())
        return h.hexdigest()


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of conv followed by BN (eval mode), as one conv."""
    w = conv.weight.detach().double()
    b = (
        conv.bias.detach().double()
        if conv.bias is not None
        else torch.zeros(w.shape[0], dtype=torch.float64)
    )
    if bn is None:
        return w, b
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    return w * scale[:, None, None, None], (b - bn.running_mean.double()) * scale + bn.bias.double()


@njit(cache=True, nogil=True, error_model="numpy", _nrt=False)
def _conv_f64_kernel(x, w, wt, b, stride, pad, kh, kw, ho, wo, relu, out, col, acc):
    """out[n] (C_out, P = ho wo) for each image n of x (N, C_in, H, W). col (Q, P) holds the
    image's input under each tap q = (c, ky, kx) at each output position p (zero in the
    padding); out[n, o, p] = b[o] + the sum over q, in q order, of w[o, q] col[q, p] (wt = w
    transposed). With at least as many positions as outputs the loop over p is vectorised,
    else the loop over o (acc: C_out scratch), skipping zero inputs (they add +-0): either way
    a vector's lanes are different outputs, so no sum depends on the vector width."""
    cin, h, wd = x.shape[1], x.shape[2], x.shape[3]
    cout, q_all, n_pos = out.shape[1], col.shape[0], col.shape[1]
    for n in range(x.shape[0]):
        for c in range(cin):
            for ky in range(kh):
                # output rows [y0, y1) and columns [x0, x1) whose tap (ky, kx) is in the image
                y0 = min(ho, max(0, (pad - ky + stride - 1) // stride))
                y1 = max(y0, min(ho, (h - 1 + pad - ky) // stride + 1))
                for kx in range(kw):
                    x0 = min(wo, max(0, (pad - kx + stride - 1) // stride))
                    x1 = max(x0, min(wo, (wd - 1 + pad - kx) // stride + 1))
                    cq = col[(c * kh + ky) * kw + kx]
                    cq[:] = 0.0
                    for oy in range(y0, y1):
                        row = x[n, c, oy * stride - pad + ky]
                        for ox in range(x0, x1):
                            cq[oy * wo + ox] = row[ox * stride - pad + kx]
        if n_pos >= cout:  # two outputs per pass over col, then the odd one
            for o in range(0, cout - 1, 2):
                r0, r1 = out[n, o], out[n, o + 1]
                r0[:] = b[o]
                r1[:] = b[o + 1]
                for q in range(q_all):
                    w0, w1, cq = w[o, q], w[o + 1, q], col[q]
                    for p in range(n_pos):
                        r0[p] += w0 * cq[p]
                        r1[p] += w1 * cq[p]
            if cout % 2:
                r0 = out[n, cout - 1]
                r0[:] = b[cout - 1]
                for q in range(q_all):
                    w0, cq = w[cout - 1, q], col[q]
                    for p in range(n_pos):
                        r0[p] += w0 * cq[p]
        else:
            for p in range(n_pos):
                for o in range(cout):
                    acc[o] = b[o]
                for q in range(q_all):
                    v = col[q, p]
                    if v != 0.0:
                        wq = wt[q]
                        for o in range(cout):
                            acc[o] += v * wq[o]
                for o in range(cout):
                    out[n, o, p] = acc[o]
        if relu:
            for o in range(cout):
                r0 = out[n, o]
                for p in range(n_pos):
                    if r0[p] < 0.0:
                        r0[p] = 0.0


@njit(cache=True, nogil=True, error_model="numpy", _nrt=False)
def _mean_hw_kernel(x, out):
    """out[n, c] = the sum of x[n, c, :] (positions in order) / the number of positions."""
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            s = 0.0
            for p in range(x.shape[2]):
                s += x[n, c, p]
            out[n, c] = s / x.shape[2]


def _by_images(kernel: Callable[[int, int], None], images: int, threads: int) -> None:
    """Run kernel(n0, n1) over contiguous ranges of images on `threads` threads (0: torch's
    intra-op threads); every image is computed alone, so the split changes no bit."""
    threads = min(threads or torch.get_num_threads(), images)
    if threads <= 1:
        kernel(0, images)
        return
    cuts = np.linspace(0, images, threads + 1).astype(np.int64)
    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(kernel, int(cuts[k]), int(cuts[k + 1])) for k in range(threads)]:
            f.result()


def conv_f64(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    stride: int = 1,
    pad: int = 0,
    relu: bool = False,
    threads: int = 0,
) -> np.ndarray:
    """A conv of input x (N, C_in, H, W) with weights w (C_out, C_in, kh, kw) and bias b
    (C_out,), in float64: (N, C_out, H_out, W_out) float64, ReLU'd if `relu`.

    Each output is b plus the products in (c, ky, kx) order, every product and every add
    rounded to float64 (a product of two float32 values is exact; padding adds zeros). The
    order is fixed by this loop, compiled without fast-math (neither reordered nor fused into
    multiply-adds), hence the same bits on every CPU, unlike torch's and BLAS's kernels, whose
    order follows the instruction set. A Linear layer is a 1 x 1 conv on a 1 x 1 map."""
    x, w, b = (np.ascontiguousarray(a, np.float64) for a in (x, w, b))
    n_img, cin, h, wd = x.shape
    cout, _, kh, kw = w.shape
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.empty((n_img, cout, ho * wo), np.float64)
    taps = w.reshape(cout, cin * kh * kw)
    taps_t = np.ascontiguousarray(taps.T)

    def run(n0: int, n1: int) -> None:
        col = np.empty((cin * kh * kw, ho * wo), np.float64)
        acc = np.empty(cout, np.float64)
        xs, outs = x[n0:n1], out[n0:n1]
        _conv_f64_kernel(xs, taps, taps_t, b, stride, pad, kh, kw, ho, wo, relu, outs, col, acc)

    _by_images(run, n_img, threads)
    return out.reshape(n_img, cout, ho, wo)


def mean_hw_f64(x: np.ndarray, threads: int = 0) -> np.ndarray:
    """(N, C) float64 means over H and W of x (N, C, H, W): the sum in (y, x) order divided by
    H W, in a fixed order as `conv_f64`."""
    x = np.ascontiguousarray(x, np.float64).reshape(*x.shape[:2], -1)
    out = np.empty(x.shape[:2], np.float64)
    _by_images(lambda n0, n1: _mean_hw_kernel(x[n0:n1], out[n0:n1]), len(x), threads)
    return out


def _folded(x: np.ndarray, conv: nn.Conv2d, wb: tuple[torch.Tensor, torch.Tensor], relu: bool):
    """`conv` with its folded weights `wb` on float64 x (`conv_f64`)."""
    pad = conv.padding
    assert isinstance(pad, tuple)
    return conv_f64(x, wb[0].numpy(), wb[1].numpy(), conv.stride[0], pad[0], relu)


def _lambda(top: TopPercentile, what: str) -> float:
    """The percentile that `top` streamed: `what`'s lambda (> 0)."""
    lam = top.value()
    if not lam > 0:
        raise ConversionError(
            f"{what}: the {top.q}th percentile of its activations is {lam}; the layer is silent"
            " on the calibration images and cannot be normalised"
        )
    return lam


def _normalised(w: torch.Tensor, b: torch.Tensor, prev: float, lam: float) -> Weights:
    return Weights((w * prev / lam).float().contiguous(), (b / lam).float().contiguous())


CHUNK_BYTES = 64 << 20
"""The calibration's default budget for one chunk of images' float64 activations."""


def _fold(
    net: HeadedNet, spec: NetSpec, graph: LayerGraph
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every conv's and Linear layer's float64 weights and bias, BN folded, by layer name."""
    folded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for i, block in enumerate(net.blocks):
        parts = graph.block_layers(i)
        if isinstance(block, ConvBlock):
            folded[parts.conv.name] = fold_bn(block.conv, block.bn)
        else:
            assert parts.conv2 is not None and parts.skip is not None
            folded[parts.conv.name] = fold_bn(block.conv1, block.bn1)
            folded[parts.conv2.name] = fold_bn(block.conv2, block.bn2)
            folded[parts.skip.name] = fold_bn(block.skip, None)
    for h in spec.head_positions:
        lin = net.head(h)
        folded[graph.head_output(h).name] = (
            lin.weight.detach().double(),
            lin.bias.detach().double(),
        )
    return folded


def _chunk_images(graph: LayerGraph, blocks: int, chunk_bytes: int) -> int:
    """Images per calibration chunk: `chunk_bytes` over the float64 bytes of one image's
    activations in its widest block (input, conv1's, conv2's, the skip conv's outputs), and at
    least one per thread of torch's (`conv_f64` shares a chunk's images among them)."""
    widest = max(
        math.prod(parts.conv.in_shape)
        + sum(
            math.prod(layer.out_shape)
            for layer in (parts.conv, parts.conv2, parts.skip)
            if layer is not None
        )
        for parts in map(graph.block_layers, range(blocks))
    )
    return max(torch.get_num_threads(), chunk_bytes // (8 * widest))


def _calibrate_chunk(
    net: HeadedNet,
    spec: NetSpec,
    graph: LayerGraph,
    folded: dict[str, tuple[torch.Tensor, torch.Tensor]],
    x: np.ndarray,
    add: Callable[[str, np.ndarray], None],
) -> None:
    """Run the folded network in float64 on the images x (N, C, H, W) and give
    add(what, activations) each block's output, each residual block's conv1 output and each
    head's logits; a block's input is given (and reordered) once the block has read it."""
    taps = {spec.tap_block(h) for h in spec.head_positions}
    pooled: dict[int, np.ndarray] = {}  # GAP of a tapped block's output
    for i, block in enumerate(net.blocks):
        parts = graph.block_layers(i)
        mid = None
        if isinstance(block, ConvBlock):
            out = _folded(x, block.conv, folded[parts.conv.name], relu=True)
        else:
            assert parts.conv2 is not None and parts.skip is not None
            mid = _folded(x, block.conv1, folded[parts.conv.name], relu=True)
            out = _folded(mid, block.conv2, folded[parts.conv2.name], relu=False)
            out += _folded(x, block.skip, folded[parts.skip.name], relu=False)
            out[out < 0.0] = 0.0
        if i in taps:
            pooled[i] = mean_hw_f64(out)
        if i > 0:
            add(f"block {i - 1}", x)
        if mid is not None:
            add(f"block {i} conv1", mid)
        x = out
    add(f"block {len(net.blocks) - 1}", x)
    for h in spec.head_positions:
        w, b = folded[graph.head_output(h).name]
        pool = pooled[spec.tap_block(h)][:, :, None, None]
        add(f"head {h}", conv_f64(pool, w[:, :, None, None].numpy(), b.numpy()))


def convert(
    ckpt: Checkpoint,
    calibration: ImageSet,
    params: ConversionParams | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> SpikingNetwork:
    """Fold BN and normalise `ckpt`'s network on the first `params.max_images` of `calibration`.

    The calibration runs the folded network in float64 (`conv_f64`, on torch's intra-op
    threads) on chunks of images: as many as fit their widest block's activations in
    `chunk_bytes`, and at least one per thread. Each lambda is streamed (`TopPercentile`): of a
    layer's M activations it keeps the K = M - floor((M - 1) p / 100) largest, 0.1 % of them
    at p = 99.9. Memory: one chunk's activations plus every layer's K largest values, 8 bytes
    a value. The lambdas are `np.percentile`'s over all the images' activations bit for bit,
    whatever `chunk_bytes` (every image is computed alone).
    """
    params = params or ConversionParams()
    net = ckpt.build()
    bad = [
        k for k, v in ckpt.state_dict.items() if v.is_floating_point() and not v.isfinite().all()
    ]
    if bad:
        raise ConversionError(
            f"the checkpoint's weights are not finite (NaN or inf) in {', '.join(bad[:3])};"
            " it cannot be converted (retrain it)"
        )
    images = min(params.max_images, len(calibration))
    if images == 0:
        raise ConversionError("no calibration images: the network cannot be normalised")
    graph = ckpt.spec.graph()
    step = _chunk_images(graph, len(net.blocks), chunk_bytes)
    tops: dict[str, TopPercentile] = {}  # in the order the lambdas were taken on all images

    def add(what: str, values: np.ndarray) -> None:
        if what not in tops:
            tops[what] = TopPercentile(images * (values.size // len(values)), params.percentile)
        tops[what].add(values)

    with torch.no_grad():  # folded weights without autograd history
        folded = _fold(net, ckpt.spec, graph)
        for n0 in range(0, images, step):
            x = calibration.x[n0 : min(n0 + step, images)].astype(np.float64)
            _calibrate_chunk(net, ckpt.spec, graph, folded, x, add)
        lam = {what: _lambda(top, what) for what, top in tops.items()}
        weights: dict[str, Weights] = {}
        scales: list[float] = []
        prev = 1.0
        for i in range(len(net.blocks)):
            parts, out = graph.block_layers(i), lam[f"block {i}"]
            if parts.conv2 is None or parts.skip is None:
                weights[parts.conv.name] = _normalised(*folded[parts.conv.name], prev, out)
                scales.append(out)
            else:
                lam1 = lam[f"block {i} conv1"]
                weights[parts.conv.name] = _normalised(*folded[parts.conv.name], prev, lam1)
                weights[parts.conv2.name] = _normalised(*folded[parts.conv2.name], lam1, out)
                weights[parts.skip.name] = _normalised(*folded[parts.skip.name], prev, out)
                scales += [lam1, out]
            prev = out
        for h in ckpt.spec.head_positions:
            name, tap = graph.head_output(h).name, ckpt.spec.tap_block(h)
            weights[name] = _normalised(*folded[name], lam[f"block {tap}"], lam[f"head {h}"])
            scales.append(lam[f"head {h}"])
    return SpikingNetwork(ckpt.spec, graph, weights, params, tuple(scales))


def save_spiking(snn: SpikingNetwork, ckpt: Checkpoint, path: str | Path) -> None:
    """Write the converted network atomically with the checkpoint it came from, so that
    `--model` accepts the file (`load_spiking`); readable with `torch.load(weights_only=True)`.
    """
    payload = {
        "format": SNN_FORMAT,
        "format_version": SNN_VERSION,
        "checkpoint": checkpoint_payload(ckpt),
        "params": asdict(snn.params),
        "scales": list(snn.scales),
        "weights": {n: {"weight": w.weight, "bias": w.bias} for n, w in snn.weights.items()},
        "fingerprint": snn.fingerprint(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def spiking_from_payload(payload: dict, path: str | Path) -> tuple[Checkpoint, SpikingNetwork]:
    """The checkpoint and converted network of a `save_spiking` file, checked against its
    fingerprint (every error names `path`)."""
    if payload.get("format_version") != SNN_VERSION:
        raise ModelError(
            f"{path}: converted-model format version {payload.get('format_version')!r}"
            f" unsupported; expected {SNN_VERSION}"
        )
    inner = payload.get("checkpoint")
    if not isinstance(inner, dict):
        raise ModelError(f"{path}: not a valid converted model (no 'checkpoint' mapping)")
    ckpt = checkpoint_from_payload(inner, path)
    try:
        params = ConversionParams(**payload["params"])
        weights = {
            n: Weights(w["weight"].float(), w["bias"].float())
            for n, w in payload["weights"].items()
        }
        snn = SpikingNetwork(
            ckpt.spec, ckpt.spec.graph(), weights, params, tuple(map(float, payload["scales"]))
        )
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        # ValueError: a bad number, or the InputError/ConversionError of bad params/weights
        raise ModelError(f"{path}: not a valid converted model ({type(e).__name__}: {e})") from None
    if snn.fingerprint() != payload.get("fingerprint"):
        raise ModelError(f"{path}: the converted weights do not match their fingerprint")
    return ckpt, snn


def load_spiking(path: str | Path) -> tuple[Checkpoint, SpikingNetwork]:
    """Read a converted model written by `save_spiking` (`hwsim convert --out`)."""
    payload = read_model_file(path)
    if not is_spiking_file(payload):
        raise ModelError(f"{path}: not a converted model (format={SNN_FORMAT!r} expected)")
    return spiking_from_payload(payload, path)
