"""ANN to SNN conversion: BN folding and layer-wise robust normalisation.

Robust normalisation (Rueckauer et al. 2017; Habara et al. 2024 eq. 16 and section 6.3):
lambda_l is the p-th percentile (default 99.9) of layer l's ReLU activations over up to 5,000
training images, and W_l <- W_l lambda_{l-1} / lambda_l, b_l <- b_l / lambda_l, lambda_{-1} = 1
for the analog input. A residual block normalises conv1 by its own output's lambda and conv2 and
the skip conv by the block output's lambda. A classifier head (GAP + Linear) takes its tap block's
lambda as lambda_{l-1} and its own logits' percentile as lambda_l. The SNN uses threshold 1 and
membranes initialised to V0, reset by subtraction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwsim.data import ImageSet
from hwsim.nets import Checkpoint, ConvBlock, HeadedNet, NetSpec


class ConversionError(ValueError):
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
            raise ConversionError(f"percentile {self.percentile} out of range (0, 100]")
        if self.max_images < 1:
            raise ConversionError(f"max_images {self.max_images} must be >= 1")
        if self.threshold <= 0:
            raise ConversionError(f"threshold {self.threshold} must be > 0")


@dataclass(frozen=True)
class SpikingConv:
    """A conv layer with BN folded in and weights normalised; tensors are float32."""

    weight: torch.Tensor  # (C_out, C_in, k, k)
    bias: torch.Tensor  # (C_out,)
    stride: int
    padding: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


@dataclass(frozen=True)
class SpikingBlock:
    """A converted backbone block: `conv` alone, or a residual block (conv1 = `conv`)."""

    conv: SpikingConv
    conv2: SpikingConv | None = None
    skip: SpikingConv | None = None

    @property
    def is_residual(self) -> bool:
        return self.conv2 is not None


@dataclass(frozen=True)
class SpikingHead:
    """A converted classifier head: a GAP IF layer on the tap block, then a Linear IF layer."""

    tap: int
    weight: torch.Tensor  # (classes, C)
    bias: torch.Tensor  # (classes,)


@dataclass(frozen=True)
class SpikingNetwork:
    """A converted network, ready for the IF engine. `heads` maps head index -> head."""

    spec: NetSpec
    blocks: tuple[SpikingBlock, ...]
    heads: dict[int, SpikingHead]
    params: ConversionParams
    scales: tuple[float, ...]  # lambda of every normalised layer, in conversion order

    def ann_forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """The folded, normalised network run as an ANN (ReLU); logits scaled by 1/lambda_head."""
        taps: dict[int, torch.Tensor] = {}
        for i, b in enumerate(self.blocks):
            y = torch.relu(b.conv(x))
            x = torch.relu(b.conv2(y) + b.skip(x)) if b.is_residual else y
            taps[i] = x
        return {
            h: F.linear(taps[hd.tap].mean(dim=(2, 3)), hd.weight, hd.bias)
            for h, hd in self.heads.items()
        }

    def fingerprint(self) -> str:
        """SHA-256 of the weights and conversion parameters (a cache key for traces)."""
        h = hashlib.sha256(json.dumps(asdict(self.params), sort_keys=True).encode())
        h.update(json.dumps(self.spec.to_dict(), sort_keys=True).encode())
        for b in self.blocks:
            for c in (b.conv, b.conv2, b.skip):
                if c is not None:
                    h.update(c.weight.numpy().tobytes())
                    h.update(c.bias.numpy().tobytes())
        for k in sorted(self.heads):
            h.update(self.heads[k].weight.numpy().tobytes())
            h.update(self.heads[k].bias.numpy().tobytes())
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


def _percentile(batches: list[torch.Tensor], q: float, what: str) -> float:
    values = torch.cat([b.reshape(-1) for b in batches]).numpy()
    lam = float(np.percentile(values, q))
    if not lam > 0:
        raise ConversionError(
            f"{what}: the {q}th percentile of its activations is {lam}; the layer is silent on"
            " the calibration images and cannot be normalised"
        )
    return lam


def _normalised(
    w: torch.Tensor, b: torch.Tensor, prev: float, lam: float, conv: nn.Conv2d
) -> SpikingConv:
    return SpikingConv(
        (w * prev / lam).float().contiguous(),
        (b / lam).float().contiguous(),
        conv.stride[0],
        conv.padding[0],
    )


def convert(
    ckpt: Checkpoint,
    calibration: ImageSet,
    params: ConversionParams | None = None,
    batch_size: int = 500,
) -> SpikingNetwork:
    """Fold BN and normalise `ckpt`'s network on the first `params.max_images` of `calibration`.

    Memory holds one layer's activations over the calibration images at a time.
    """
    params = params or ConversionParams()
    net: HeadedNet = ckpt.build()
    x_all = torch.from_numpy(calibration.x[: params.max_images])
    acts = list(torch.split(x_all, batch_size))
    prev = 1.0
    blocks: list[SpikingBlock] = []
    scales: list[float] = []
    tap_acts: dict[int, tuple[list[torch.Tensor], float]] = {}
    tap_blocks = {ckpt.spec.tap_block(h) for h in ckpt.spec.head_positions}
    with torch.no_grad():
        for i, block in enumerate(net.blocks):
            if isinstance(block, ConvBlock):
                out = [block(a) for a in acts]
                lam = _percentile(out, params.percentile, f"block {i}")
                w, b = fold_bn(block.conv, block.bn)
                blocks.append(SpikingBlock(_normalised(w, b, prev, lam, block.conv)))
                scales.append(lam)
            else:
                mid = [torch.relu(block.bn1(block.conv1(a))) for a in acts]
                out = [block(a) for a in acts]
                lam1 = _percentile(mid, params.percentile, f"block {i} conv1")
                lam = _percentile(out, params.percentile, f"block {i}")
                w1, b1 = fold_bn(block.conv1, block.bn1)
                w2, b2 = fold_bn(block.conv2, block.bn2)
                ws, bs = fold_bn(block.skip, None)
                blocks.append(
                    SpikingBlock(
                        _normalised(w1, b1, prev, lam1, block.conv1),
                        _normalised(w2, b2, lam1, lam, block.conv2),
                        _normalised(ws, bs, prev, lam, block.skip),
                    )
                )
                scales += [lam1, lam]
            if i in tap_blocks:
                tap_acts[i] = ([a.mean(dim=(2, 3)) for a in out], lam)
            acts, prev = out, lam
        heads: dict[int, SpikingHead] = {}
        for h in ckpt.spec.head_positions:
            tap = ckpt.spec.tap_block(h)
            pooled, lam_tap = tap_acts[tap]
            lin = net.head(h)
            lam = _percentile([lin(p) for p in pooled], params.percentile, f"head {h}")
            w = lin.weight.detach().double() * lam_tap / lam
            b = lin.bias.detach().double() / lam
            heads[h] = SpikingHead(tap, w.float().contiguous(), b.float().contiguous())
            scales.append(lam)
    return SpikingNetwork(ckpt.spec, tuple(blocks), heads, params, tuple(scales))
