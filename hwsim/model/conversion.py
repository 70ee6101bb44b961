"""What a conversion is asked for, and how its file is told apart, without torch: a run whose
traces are cached reads these and never converts (`hwsim.model.convert` does, with torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.errors import InputError, ModelError

SNN_FORMAT = "hwsim-snn"
SNN_VERSION = 1


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


def is_spiking_file(payload: dict) -> bool:
    """Whether a model file's payload is a converted model (`convert.save_spiking`)."""
    return payload.get("format") == SNN_FORMAT
