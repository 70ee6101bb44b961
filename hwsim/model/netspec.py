"""Network specifications of the model zoo: VGG11/16/19 and ResNet18/34 with IC heads.

A `NetSpec` is plain data (name, width, input shape, classes, IC positions); its `graph()` is
the network's `model.graph.LayerGraph`. Networks follow the BayesianSpikeFusion code (Habara et
al. 2024, section 6.1): downsampling by stride-2 3x3 convolutions (no max pooling), residual
stages whose first block has stride 2. The torch modules that train them are in `hwsim.model.nets`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hwsim.errors import ModelError
from hwsim.model.graph import FC_HEAD, BlockKind, BlockSpec, LayerGraph, build_graph

# (out_channels, stride) per conv block; paper/DESIGN.md channel lists.
_VGG_BLOCKS: dict[str, list[tuple[int, int]]] = {
    "vgg11": [(64, 1), (128, 2), (256, 2), (256, 1), (512, 2), (512, 1), (512, 2), (512, 1)],
    "vgg16": [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (256, 1)]
    + [(512, 2), (512, 1), (512, 1), (512, 2), (512, 1), (512, 1)],
    "vgg19": [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (256, 1), (256, 1)]
    + [(512, 2), (512, 1), (512, 1), (512, 1), (512, 2), (512, 1), (512, 1), (512, 1)],
}
# Residual stages (channels, blocks); the first block of every stage but the first has stride 2.
_RESNET_STAGES: dict[str, list[tuple[int, int]]] = {
    "resnet18": [(64, 2), (128, 2), (256, 2), (512, 2)],
    "resnet34": [(64, 3), (128, 4), (256, 6), (512, 3)],
}
NETS: tuple[str, ...] = (*_VGG_BLOCKS, *_RESNET_STAGES)


@dataclass(frozen=True)
class NetSpec:
    """Architecture of a network: everything needed to rebuild it without code."""

    name: str
    width: float
    input_shape: tuple[int, int, int]
    num_classes: int
    ic_positions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.name not in NETS:
            raise ModelError(f"unknown network {self.name!r}; expected one of {', '.join(NETS)}")
        if not 0 < self.width <= 4:
            raise ModelError(f"width {self.width} out of range; expected 0 < width <= 4")
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ModelError(f"input shape {self.input_shape} invalid; expected C x H x W")
        if self.num_classes < 2:
            raise ModelError(f"num_classes {self.num_classes} invalid; expected >= 2")
        n = len(self.blocks())
        for p in self.ic_positions:
            if not 0 <= p < n:
                raise ModelError(
                    f"IC position {p} out of range for {self.name}; expected 0..{n - 1}"
                )
        if len(set(self.ic_positions)) != len(self.ic_positions):
            raise ModelError(f"duplicate IC positions in {self.ic_positions}")

    def channels(self, c: int) -> int:
        return max(1, round(c * self.width))

    def blocks(self) -> list[BlockSpec]:
        """The backbone blocks in order, with their input map sizes."""
        c_in, h, w = self.input_shape
        hw = (h, w)
        out: list[BlockSpec] = []
        if self.name in _VGG_BLOCKS:
            layout = [(BlockKind.CONV, c, s) for c, s in _VGG_BLOCKS[self.name]]
        else:
            layout = [(BlockKind.CONV, 64, 1)]
            for stage, (c, n) in enumerate(_RESNET_STAGES[self.name]):
                layout += [
                    (BlockKind.RESIDUAL, c, 2 if stage > 0 and i == 0 else 1) for i in range(n)
                ]
        for kind, c, s in layout:
            b = BlockSpec(kind, c_in, self.channels(c), s, hw)
            out.append(b)
            c_in, hw = b.out_channels, b.out_hw
        return out

    @property
    def head_positions(self) -> tuple[int, ...]:
        """Classifier heads: IC tap positions then FC_HEAD (-1, the last block)."""
        return (*sorted(self.ic_positions), FC_HEAD)

    def tap_block(self, head: int) -> int:
        return len(self.blocks()) - 1 if head == FC_HEAD else head

    def graph(self) -> LayerGraph:
        """The network's layer graph: every block, then each head's GAP + Linear."""
        taps = {h: self.tap_block(h) for h in self.head_positions}
        return build_graph(self.input_shape, self.blocks(), taps, self.num_classes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["ic_positions"] = list(self.ic_positions)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetSpec:
        """The spec of `to_dict`; a missing key or a value of the wrong type is a ModelError
        naming the key."""
        if not isinstance(d, dict):
            raise ModelError(f"network spec is a {type(d).__name__}; expected a mapping")
        fields: dict[str, Any] = {}
        for key, parse, expected in (
            ("name", str, "a network name"),
            ("width", float, "a number"),
            ("input_shape", lambda v: tuple(int(x) for x in v), "C, H, W integers"),
            ("num_classes", int, "an integer"),
            ("ic_positions", lambda v: tuple(int(x) for x in v), "a list of integers"),
        ):
            if key not in d:
                raise ModelError(f"network spec lacks key {key!r}")
            try:
                fields[key] = parse(d[key])
            except (TypeError, ValueError):
                raise ModelError(
                    f"network spec key {key!r} is {d[key]!r}; expected {expected}"
                ) from None
        return cls(**fields)
