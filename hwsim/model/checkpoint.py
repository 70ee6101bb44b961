"""What a checkpoint records besides its weights (`CheckpointInfo`), checked without torch: the
network, the data and its split, the accuracies. A run whose traces are cached reads only this
(`hwsim.model.peek.checkpoint_info_of`); the weights are read and checked with torch where a
network is converted or run (`hwsim.model.nets.load_checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwsim.errors import ModelError
from hwsim.model.data import DATASETS, ImageSet, dataset_input_shape, dataset_num_classes
from hwsim.model.graph import FC_HEAD
from hwsim.model.netspec import NetSpec

CHECKPOINT_FORMAT = "hwsim-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint's architecture, data and its split, accuracies and training args.

    `dataset` records the split: name, split seed, images per split, `validation_images` held
    out of training (0: none) and the SHA-256 of each split's sorted source rows."""

    spec: NetSpec
    dataset: dict[str, Any]
    accuracy: dict[int, float]  # head -> ANN test accuracy (FC under FC_HEAD)
    training: dict[str, Any] = field(default_factory=dict)
    validation_accuracy: dict[int, float] = field(default_factory=dict)  # empty: no split

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


def checkpoint_info(
    payload: dict[str, Any], path: str | Path, tensor: type | None = None
) -> CheckpointInfo:
    """Validate a checkpoint payload read from `path` (named in every error) but for its
    weights' shapes: its state_dict must map parameter names to instances of `tensor` (None:
    to anything, as the payload read without torch holds no tensors)."""
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
        isinstance(k, str) and (tensor is None or isinstance(v, tensor)) for k, v in state.items()
    ):
        raise ModelError(f"{path}: checkpoint key 'state_dict' must map parameter names to tensors")
    for key in ("dataset", "training"):
        if not isinstance(payload.get(key, {}), dict):
            raise ModelError(f"{path}: checkpoint key {key!r} must be a mapping")
    check_dataset_record(payload["dataset"], spec, path)
    return CheckpointInfo(
        spec=spec,
        dataset=payload["dataset"],
        accuracy=accuracies["accuracy"],
        training=payload.get("training", {}),
        validation_accuracy=accuracies["validation_accuracy"],
    )


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
