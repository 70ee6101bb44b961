"""The architecture YAML's sections for the tile's pooling unit and the neuron module's leak
multiplier, as frozen dataclasses (the rest of the schema: `hwsim.hw.arch_schema`).

Both sections are optional and off by default (null), so a file without them means what it meant
before they existed: a chip without a pooling unit (a graph with a local pooling layer is then
refused by the mapping) and leaky neurons that cost only their multiply's energy
(`energy_pj.leak_multiply`). Each field's metadata holds its description (with its unit) and its
range check, read by the loader and by docs/arch-config.md alike. The models that read them:
`hwsim.hw.pooling` (pooling unit) and `hwsim.hw.timing.neuron_job_cycles` (leak cycles),
`hwsim.hw.area` and `hwsim.hw.leakage` (area, static power).
"""

from __future__ import annotations

from dataclasses import field

from hwsim.hw.arch_schema import (
    CYCLE_LIMIT,
    field_spec,
    frozen_section,
    int_between,
    non_negative,
)


@frozen_section
class PoolingConfig:
    """The pooling unit of each tile (hwsim.hw.pooling): a local pooling layer (graph
    `Layer.pool`) runs on the units of one tile instead of on crossbars. One pooling operation
    is one window input of one output neuron: a 1-bit add (AVG, SUM) or an OR (MAX)."""

    op_pj: float = field(
        metadata=field_spec(
            "one pooling operation (one window input added or ORed), pJ", non_negative
        )  # fmt: skip
    )
    units_per_tile: int = field(
        default=1, metadata=field_spec("pooling units in each tile", int_between(1, 1 << 20))
    )
    ops_per_cycle: int = field(
        default=1,
        metadata=field_spec(
            "pooling operations one unit performs per clock cycle", int_between(1, CYCLE_LIMIT)
        ),
    )
    area_um2: float = field(
        default=0.0, metadata=field_spec("area of one pooling unit, um^2", non_negative)
    )
    leakage_mw: float = field(
        default=0.0,
        metadata=field_spec(
            "static power of one pooling unit, mW (hwsim.hw.leakage)", non_negative
        ),  # fmt: skip
    )


@frozen_section
class NeuronLeakConfig:
    """The neuron module's leak multiplier: what a leaky neuron's update (the multiply of its
    membrane by the leak and of its input by the gain, graph `Neuron`) adds to the IF update in
    cycles and area; its energy is energy_pj.leak_multiply. Charged only on a chip whose graph
    has populations that multiply (hwsim.hw.activity.leak_multiplies_per_neuron)."""

    cycles: int = field(
        default=0,
        metadata=field_spec(
            "clock cycles one leaky neuron update adds to timing.neuron_cycles",
            int_between(0, CYCLE_LIMIT),
        ),
    )
    multiplier_area_um2: float = field(
        default=0.0,
        metadata=field_spec(
            "area of the leak multiplier of one neuron unit (pe.neuron_units_per_pe per PE"
            " slot), um^2",
            non_negative,
        ),
    )
