"""The off-chip interface: each image comes in and its result goes out (`offchip` section).

An image of C x H x W values of `offchip.input_value_bits` bits and a result of
`offchip.result_bits` bits (null: a class index, ceil(log2 classes)) cross an interface of
`bits_per_cycle` bits per clock cycle each way (full duplex: inputs and results do not contend)
at `pj_per_bit` pJ per bit::

    input_cycles  = ceil(C H W input_value_bits / bits_per_cycle)
    output_cycles = ceil(result_bits / bits_per_cycle)
    energy        = (C H W input_value_bits + result_bits) pj_per_bit      (pJ per image)

The input is on the first layer's critical path: it cannot start an image before the image is
in (the analytic model starts its first layers at input_cycles; the simulator loads images one
after the other into a two-image input buffer, `hwsim.hw.sim`), and an image's answer leaves
output_cycles after the fusion unit's last decision. Without the section both are 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.hw.arch import Architecture
from hwsim.model.graph import LayerGraph


@dataclass(frozen=True)
class OffchipCost:
    """One image through the interface: bits, cycles and energy (pJ) each way."""

    input_bits: int
    output_bits: int
    input_cycles: int
    output_cycles: int
    input_pj: float
    output_pj: float

    @property
    def energy_pj(self) -> float:
        return self.input_pj + self.output_pj


def offchip_cost(arch: Architecture, graph: LayerGraph) -> OffchipCost:
    """The interface's cost of one image of `graph` (module docstring); zeros without an
    `offchip` section."""
    io = arch.offchip
    if io is None:
        return OffchipCost(0, 0, 0, 0, 0.0, 0.0)
    values = math.prod(graph.input_shape)
    bits_in = values * io.input_value_bits
    bits_out = io.result_bits or max(1, math.ceil(math.log2(max(graph.classes, 2))))
    return OffchipCost(
        input_bits=bits_in,
        output_bits=bits_out,
        input_cycles=-(-bits_in // io.bits_per_cycle),
        output_cycles=-(-bits_out // io.bits_per_cycle),
        input_pj=bits_in * io.pj_per_bit,
        output_pj=bits_out * io.pj_per_bit,
    )
