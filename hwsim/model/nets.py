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
from hwsim.model.data import DATASETS, ImageSet, dataset_input_shape, dataset_num_classes
from hwsim.model.graph import FC_HEAD, BlockKind, BlockSpec, head_tag
from hwsim.model.netspec import NetSpec

CHECKPOINT_FORMAT = "hwsim-checkpoint"
CHECKPOINT_VERSION = 1


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
    def fc_accuracy(self) -> float:
        return self.accuracy[FC_HEAD]

    @property
    def validation_images(self) -> int:
        """Training images held out as the validation split (0: none)."""
        return int(self.dataset.get("validation_images", 0))

    def check_split(self, data: ImageSet, path: str | Path) -> None:
        """Refuse a split whose images differ from the ones recorded at training (a changed
        split rule or data files); checkpoints that recorded none are not checked."""
        recorded = self.dataset.get(f"{data.split}_rows_sha256")
        if recorded is not None and recorded != data.rows_sha256():
            raise ModelError(
                f"{path}: the {data.name} {data.split} split loaded now ({len(data)} images)"
                " is not the one recorded when the model was trained; check --data-root"
            )


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
    """Validate a checkpoint payload read from `path` (named in every error)."""
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not an hwsim checkpoint (missing format={CHECKPOINT_FORMAT!r})")
    if payload.get("format_version") != CHECKPOINT_VERSION:
        raise ModelError(
            f"{path}: checkpoint format version {payload.get('format_version')!r} unsupported;"
            f" expected {CHECKPOINT_VERSION}"
        )
    for key in ("spec", "state_dict", "dataset", "accuracy"):
        if key not in payload:
            raise ModelError(f"{path}: checkpoint lacks key {key!r}")
    try:
        spec = NetSpec.from_dict(payload["spec"])
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None
    accuracies = {}
    for key in ("accuracy", "validation_accuracy"):
        try:
            accuracies[key] = {int(k): float(v) for k, v in payload.get(key, {}).items()}
        except (AttributeError, TypeError, ValueError):
            raise ModelError(
                f"{path}: checkpoint key {key!r} must map head numbers to accuracies"
            ) from None
        bad = [f"{k}: {v!r}" for k, v in accuracies[key].items() if not 0 <= v <= 1]
        if bad:
            raise ModelError(
                f"{path}: checkpoint key {key!r} holds {', '.join(bad[:3])}; expected accuracies"
                " (fractions in 0..1)"
            )
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelError(f"{path}: checkpoint key 'state_dict' must map parameter names to tensors")
    for key in ("dataset", "training"):
        if not isinstance(payload.get(key, {}), dict):
            raise ModelError(f"{path}: checkpoint key {key!r} must be a mapping")
    check_dataset_record(payload["dataset"], spec, path)
    ckpt = Checkpoint(
        spec=spec,
        state_dict=payload["state_dict"],
        dataset=payload["dataset"],
        accuracy=accuracies["accuracy"],
        training=payload.get("training", {}),
        validation_accuracy=accuracies["validation_accuracy"],
    )
    try:
        ckpt.build()
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not match the architecture: {e}") from None
    return ckpt


def check_dataset_record(record: dict[str, Any], spec: NetSpec, path: str | Path) -> None:
    """Refuse a checkpoint's `dataset` record that names no known dataset, whose split fields
    are not what `hwsim train` writes, or whose images and classes the network does not take;
    each refusal names the key."""

    def bad(key: str, expected: str) -> ModelError:
        return ModelError(
            f"{path}: checkpoint key 'dataset.{key}' is {record.get(key)!r}; expected {expected}"
        )

    name = record.get("name")
    if not isinstance(name, str) or name not in DATASETS:
        raise bad("name", f"one of {', '.join(DATASETS)}")
    for key in ("validation_images", "split_seed"):
        value = record.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(key, "an integer >= 0")
    for key, value in record.items():
        if key.endswith("_sha256") and not isinstance(value, str):
            raise bad(key, "a SHA-256 digest (text)")
    for what, got, want in (
        ("input_shape", tuple(spec.input_shape), dataset_input_shape(name)),
        ("num_classes", spec.num_classes, dataset_num_classes(name)),
    ):
        if got != want:
            raise ModelError(
                f"{path}: checkpoint key 'spec.{what}' is {got}, but its dataset {name} has"
                f" {want}; the network cannot read that dataset"
            )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint; never executes code from the file."""
    return checkpoint_from_payload(read_model_file(path), path)
