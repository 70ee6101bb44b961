"""ANN to SNN conversion: BN folding and layer-wise robust normalisation.

Robust normalisation (Rueckauer et al. 2017; Habara et al. 2024 eq. 16 and section 6.3):
lambda_l is the p-th percentile (default 99.9) of layer l's ReLU activations over up to 5,000
training images, and W_l <- W_l lambda_{l-1} / lambda_l, b_l <- b_l / lambda_l, lambda_{-1} = 1
for the analog input. A residual block normalises conv1 by its own output's lambda and conv2 and
the skip conv by the block output's lambda. A classifier head (GAP + Linear) takes its tap block's
lambda as lambda_{l-1} and its own logits' percentile as lambda_l. The SNN uses threshold 1 and
membranes initialised to V0, reset by subtraction.

Reproducible on any CPU: the calibration forward pass runs in float64 and every lambda is
rounded to SCALE_BITS significant bits (`grid_scale`), so that the different summation orders
of torch's float kernels on different instruction sets (AVX2, AVX-512: relative differences of
about 1e-15 in float64) give the same lambdas, weights and fingerprint (docs/engine.md,
"Reproducibility"). Folding and normalising are elementwise float64 operations, rounded once to
float32: the same bits on every IEEE-754 machine.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwsim.atomic import atomic_path
from hwsim.errors import InputError, ModelError
from hwsim.model.data import ImageSet
from hwsim.model.graph import Layer, LayerGraph, LayerKind
from hwsim.model.nets import (
    Checkpoint,
    ConvBlock,
    HeadedNet,
    checkpoint_from_payload,
    checkpoint_payload,
    read_model_file,
)
from hwsim.model.netspec import NetSpec

if TYPE_CHECKING:  # nir_io builds SpikingNetworks; it imports this module
    from hwsim.model.nir_io import ImportedSpec


class ConversionError(ModelError):
    """A network that cannot be converted (e.g. a layer that never activates)."""


@dataclass(frozen=True)
class ConversionParams:
    """Parameters of the conversion; part of every trace's cache key."""

    percentile: float = 99.9
    max_images: int = 5000
    threshold: float = 1.0
    v0: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.percentile <= 100:
            raise InputError(f"percentile {self.percentile} out of range (0, 100]")
        if self.max_images < 1:
            raise InputError(f"max_images {self.max_images} must be >= 1")
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            raise InputError(f"threshold {self.threshold} must be a finite number > 0")
        if not math.isfinite(self.v0):
            raise InputError(f"v0 (--v0) {self.v0} must be a finite number")


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
        """SHA-256 of the weights and conversion parameters (a cache key for traces)."""
        h = hashlib.sha256(json.dumps(asdict(self.params), sort_keys=True).encode())
        h.update(json.dumps(self.spec.to_dict(), sort_keys=True).encode())
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


SCALE_BITS = 16
"""Significant bits of every lambda (`grid_scale`): lambda moves by at most 2^-17 (7.6e-6) of
itself, and two CPUs whose float64 calibrations differ by a relative 1e-15 get different
lambdas only when a rounding boundary falls between them: odds of about 1e-10 per layer."""


def grid_scale(lam: float) -> float:
    """lam rounded to SCALE_BITS significant bits (to nearest, ties to even)."""
    mantissa, exponent = math.frexp(lam)  # lam = mantissa 2^exponent, 0.5 <= mantissa < 1
    return math.ldexp(round(mantissa * 2**SCALE_BITS), exponent - SCALE_BITS)


def _percentile(batches: list[torch.Tensor], q: float, what: str) -> float:
    """The q-th percentile of float64 activations, on the SCALE_BITS grid."""
    values = torch.cat([b.reshape(-1) for b in batches]).numpy()
    lam = float(np.percentile(values, q, overwrite_input=True))
    if not lam > 0:
        raise ConversionError(
            f"{what}: the {q}th percentile of its activations is {lam}; the layer is silent on"
            " the calibration images and cannot be normalised"
        )
    return grid_scale(lam)


def _normalised(w: torch.Tensor, b: torch.Tensor, prev: float, lam: float) -> Weights:
    return Weights((w * prev / lam).float().contiguous(), (b / lam).float().contiguous())


def convert(
    ckpt: Checkpoint,
    calibration: ImageSet,
    params: ConversionParams | None = None,
    batch_size: int = 500,
) -> SpikingNetwork:
    """Fold BN and normalise `ckpt`'s network on the first `params.max_images` of `calibration`.

    The calibration pass runs in float64 (8 bytes per activation); memory holds one layer's
    activations over the calibration images at a time.
    """
    params = params or ConversionParams()
    net: HeadedNet = ckpt.build().double()
    bad = [
        k for k, v in ckpt.state_dict.items() if v.is_floating_point() and not v.isfinite().all()
    ]
    if bad:
        raise ConversionError(
            f"the checkpoint's weights are not finite (NaN or inf) in {', '.join(bad[:3])};"
            " it cannot be converted (retrain it)"
        )
    x_all = torch.from_numpy(calibration.x[: params.max_images]).double()
    acts = list(torch.split(x_all, batch_size))
    prev = 1.0
    graph = ckpt.spec.graph()
    weights: dict[str, Weights] = {}
    scales: list[float] = []
    tap_acts: dict[int, tuple[list[torch.Tensor], float]] = {}
    tap_blocks = {ckpt.spec.tap_block(h) for h in ckpt.spec.head_positions}
    with torch.no_grad():
        for i, block in enumerate(net.blocks):
            if isinstance(block, ConvBlock):
                out = [block(a) for a in acts]
                lam = _percentile(out, params.percentile, f"block {i}")
                w, b = fold_bn(block.conv, block.bn)
                weights[graph.block_layers(i).conv.name] = _normalised(w, b, prev, lam)
                scales.append(lam)
            else:
                mid = [torch.relu(block.bn1(block.conv1(a))) for a in acts]
                out = [block(a) for a in acts]
                lam1 = _percentile(mid, params.percentile, f"block {i} conv1")
                lam = _percentile(out, params.percentile, f"block {i}")
                w1, b1 = fold_bn(block.conv1, block.bn1)
                w2, b2 = fold_bn(block.conv2, block.bn2)
                ws, bs = fold_bn(block.skip, None)
                parts = graph.block_layers(i)
                assert parts.conv2 is not None and parts.skip is not None
                weights[parts.conv.name] = _normalised(w1, b1, prev, lam1)
                weights[parts.conv2.name] = _normalised(w2, b2, lam1, lam)
                weights[parts.skip.name] = _normalised(ws, bs, prev, lam)
                scales += [lam1, lam]
            if i in tap_blocks:
                tap_acts[i] = ([a.mean(dim=(2, 3)) for a in out], lam)
            acts, prev = out, lam
        for h in ckpt.spec.head_positions:
            tap = ckpt.spec.tap_block(h)
            pooled, lam_tap = tap_acts[tap]
            lin = net.head(h)
            lam = _percentile([lin(p) for p in pooled], params.percentile, f"head {h}")
            w = lin.weight.detach().double() * lam_tap / lam
            b = lin.bias.detach().double() / lam
            linear = graph.head_output(h).name
            weights[linear] = Weights(w.float().contiguous(), b.float().contiguous())
            scales.append(lam)
    return SpikingNetwork(ckpt.spec, graph, weights, params, tuple(scales))


SNN_FORMAT = "hwsim-snn"
SNN_VERSION = 1


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


def is_spiking_file(payload: dict) -> bool:
    return payload.get("format") == SNN_FORMAT


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
