"""The model zoo's torch modules (`hwsim.model.netspec` describes them) and checkpoint I/O.

Networks follow the BayesianSpikeFusion code (Habara et al. 2024, section 6.1): downsampling by
stride-2 3x3 convolutions (no max pooling), every conv block is conv + BN + ReLU, a residual
block is conv-BN-ReLU-conv-BN plus a 1x1 skip conv, then ReLU. Every classifier head (the final
classifier FC and each internal classifier IC) is global average pooling + one Linear layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwsim.atomic import atomic_path
from hwsim.errors import ModelError
from hwsim.model.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointInfo,
    checkpoint_info,
)
from hwsim.model.data import ImageSet
from hwsim.model.graph import BlockKind, BlockSpec, head_tag
from hwsim.model.netspec import NetSpec


class ConvBlock(nn.Module):
    """conv 3x3 (stride 1 or 2, pad 1, no bias) + BN + ReLU."""

    def __init__(self, b: BlockSpec):
        super().__init__()
        self.conv = nn.Conv2d(b.in_channels, b.out_channels, 3, b.stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(b.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class ResidualBlock(nn.Module):
    """ReLU(BN(conv2(ReLU(BN(conv1(x))))) + skip(x)), skip a biased 1x1 conv with the stride."""

    def __init__(self, b: BlockSpec):
        super().__init__()
        self.conv1 = nn.Conv2d(b.in_channels, b.out_channels, 3, b.stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(b.out_channels)
        self.conv2 = nn.Conv2d(b.out_channels, b.out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(b.out_channels)
        self.skip = nn.Conv2d(b.in_channels, b.out_channels, 1, b.stride, 0, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.skip(x))


class HeadedNet(nn.Module):
    """Backbone with classifier heads; `forward` returns {head: logits} (FC under FC_HEAD)."""

    def __init__(self, spec: NetSpec):
        super().__init__()
        self.spec = spec
        self.blocks = nn.ModuleList(
            ConvBlock(b) if b.kind is BlockKind.CONV else ResidualBlock(b) for b in spec.blocks()
        )
        self.heads = nn.ModuleDict(
            {
                head_tag(h): nn.Linear(
                    spec.blocks()[spec.tap_block(h)].out_channels, spec.num_classes
                )
                for h in spec.head_positions
            }
        )
        for m in self.modules():  # Xavier initialisation (paper section 6.2)
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def head(self, h: int) -> nn.Linear:
        return self.heads[head_tag(h)]

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        out: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            for h in self.spec.head_positions:
                if self.spec.tap_block(h) == i:
                    out[h] = self.head(h)(x.mean(dim=(2, 3)))
        return out


@dataclass
class Checkpoint:
    """A self-describing model file: architecture, weights, data and its split, accuracies,
    training args.

    `dataset` records the split: name, split seed, images per split, `validation_images` held
    out of training (0: none) and the SHA-256 of each split's sorted source rows."""

    spec: NetSpec
    state_dict: dict[str, torch.Tensor]
    dataset: dict[str, Any]
    accuracy: dict[int, float]  # head -> ANN test accuracy (FC under FC_HEAD)
    training: dict[str, Any] = field(default_factory=dict)
    validation_accuracy: dict[int, float] = field(default_factory=dict)  # empty: no split

    def build(self) -> HeadedNet:
        net = HeadedNet(self.spec)
        net.load_state_dict(self.state_dict)
        net.eval()
        return net

    @property
    def info(self) -> CheckpointInfo:
        """What the checkpoint records besides its weights."""
        return CheckpointInfo(
            self.spec, self.dataset, self.accuracy, self.training, self.validation_accuracy
        )

    @property
    def fc_accuracy(self) -> float:
        return self.info.fc_accuracy

    @property
    def validation_images(self) -> int:
        """Training images held out as the validation split (0: none)."""
        return self.info.validation_images

    def check_split(self, data: ImageSet, path: str | Path) -> None:
        """Refuse a split whose images differ from the ones recorded at training."""
        self.info.check_split(data, path)


def checkpoint_payload(ckpt: Checkpoint) -> dict[str, Any]:
    """The checkpoint as a dict of plain values and tensors (what `save_checkpoint` writes)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "spec": ckpt.spec.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in ckpt.state_dict.items()},
        "dataset": ckpt.dataset,
        "accuracy": {str(k): float(v) for k, v in ckpt.accuracy.items()},
        "validation_accuracy": {str(k): float(v) for k, v in ckpt.validation_accuracy.items()},
        "training": ckpt.training,
    }


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> None:
    """Write `ckpt` atomically; readable with `torch.load(path, weights_only=True)`."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint_payload(ckpt), tmp)


def read_model_file(path: str | Path) -> dict[str, Any]:
    """The payload of a model file (checkpoint or converted SNN), loaded without running code."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file; expected a checkpoint from `hwsim train`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or foreign files
        raise ModelError(
            f"{path}: not a readable hwsim checkpoint ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(payload, dict):
        raise ModelError(f"{path}: not an hwsim checkpoint (missing format={CHECKPOINT_FORMAT!r})")
    return payload


def checkpoint_from_payload(payload: dict[str, Any], path: str | Path) -> Checkpoint:
    """Validate a checkpoint payload read from `path` (named in every error): its record
    (`checkpoint.checkpoint_info`) and its weights against the architecture."""
    info = checkpoint_info(payload, path, tensor=torch.Tensor)
    ckpt = Checkpoint(
        spec=info.spec,
        state_dict=payload["state_dict"],
        dataset=info.dataset,
        accuracy=info.accuracy,
        training=info.training,
        validation_accuracy=info.validation_accuracy,
    )
    try:
        ckpt.build()
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not match the architecture: {e}") from None
    return ckpt


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint; never executes code from the file."""
    return checkpoint_from_payload(read_model_file(path), path)
