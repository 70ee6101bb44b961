"""Weight programming: writing a mapping's weights into its crossbars, a one-time cost per
mapping (`programming` section), and how many inferences amortise it.

Every used cell of the mapping (`ChipMapping.used_cells`: the rows x columns each layer's matrix
occupies) is programmed in `verify_rounds` program-and-verify rounds, each of
`pulses_per_round` write pulses of `pulse_pj` and one verify read of `verify_pj`; a crossbar row's
cells are pulsed and verified together, one round taking `row_round_cycles`, and
`rows_in_parallel` rows (of different crossbars) are programmed at once::

    energy = cells x verify_rounds x (pulses_per_round x pulse_pj + verify_pj)      (pJ)
    cycles = ceil(rows / rows_in_parallel) x verify_rounds x row_round_cycles

(rows = the used rows summed over every crossbar). Programming costs as much energy as
energy / E_inference inferences (`ProgrammingCost.breakeven_inferences`); over n inferences each
carries E_inference + energy / n.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.hw.mapping import ChipMapping
from hwsim.hw.timing import cycles_to_ns


@dataclass(frozen=True)
class ProgrammingCost:
    """Programming one mapping: cells and rows written, energy (pJ), cycles and ns."""

    cells: int
    rows: int
    energy_pj: float
    cycles: int
    ns: float

    def breakeven_inferences(self, inference_pj: float) -> float:
        """Inferences whose energy equals the programming's: energy / inference_pj."""
        return self.energy_pj / inference_pj if inference_pj > 0 else float("inf")

    def per_inference_pj(self, inference_pj: float, inferences: int) -> float:
        """Energy per inference over `inferences` inferences with programming amortised."""
        return inference_pj + self.energy_pj / inferences


def programming_cost(mapping: ChipMapping) -> ProgrammingCost | None:
    """The cost of programming `mapping`'s crossbars (module docstring); None without a
    `programming` section."""
    config = mapping.arch.programming
    if config is None:
        return None
    cells = mapping.used_cells
    rows = sum(m.used_rows for m in mapping.layers)
    per_cell = config.pulses_per_round * config.pulse_pj + config.verify_pj
    cycles = -(-rows // config.rows_in_parallel) * config.verify_rounds * config.row_round_cycles
    return ProgrammingCost(
        cells=cells,
        rows=rows,
        energy_pj=cells * config.verify_rounds * per_cell,
        cycles=cycles,
        ns=float(cycles_to_ns(cycles, mapping.arch.clock_mhz)),
    )
