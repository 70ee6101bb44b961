"""Layer geometry: the shape of each crossbar-mapped layer, as the hardware model sees it."""

from dataclasses import dataclass
from enum import StrEnum

FC_HEAD = -1
"""Classifier index of the final classifier (FC); IC heads use their tap block index."""


class LayerKind(StrEnum):
    CONV = "conv"
    GAP = "gap"
    LINEAR = "linear"


@dataclass(frozen=True)
class LayerGeometry:
    """Shape of one layer mapped onto crossbars.

    `kernel` is (k_h, k_w); `out_hw` is the output map (H_out, W_out). A GAP layer has the tapped
    map as its kernel, in_channels == out_channels and a 1x1 output. A LINEAR layer has kernel
    (1, 1), in_channels = in_features, out_hw (1, 1). `head` is None for backbone layers, the tap
    block index for an IC head's layers and FC_HEAD (-1) for the final classifier's layers.
    `block` is the backbone block a backbone layer belongs to (None for head layers).
    """

    name: str
    kind: LayerKind
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    out_hw: tuple[int, int]
    head: int | None = None
    block: int | None = None

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one dense forward pass of this layer."""
        kh, kw = self.kernel
        ho, wo = self.out_hw
        if self.kind is LayerKind.GAP:
            return self.in_channels * kh * kw
        return self.in_channels * self.out_channels * kh * kw * ho * wo
