"""The chip a run used, in the words of its reports: the console's header line (tiles, PEs,
crossbars, mesh, area, clock) and the labels of the floorplan figure's routers.

The run's chip holds the backbone, the evaluated IC head and the FC head (as
`hwsim.pipeline.costs.chip_costs` maps it); it is mapped again here from the run's architecture
and network, which `RunResult` carries.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.hw.area import chip_area
from hwsim.hw.mapping import ChipMapping, map_network
from hwsim.model.graph import FC_HEAD
from hwsim.results import RunResult


@dataclass(frozen=True)
class ChipFacts:
    """What a reader needs to know of a chip: its size (tiles on a rows x cols mesh, PEs,
    crossbars), area (mm^2; None where the architecture models no area) and clock (MHz)."""

    arch: str
    tiles: int
    mesh: tuple[int, int]
    pes: int
    crossbars: int
    area_mm2: float | None
    clock_mhz: float

    def line(self) -> str:
        """One line: "spikesim: 3 tiles (2 x 2 mesh), 20 PEs, 172 crossbars, 2.65 mm^2,
        250 MHz"."""
        area = "" if self.area_mm2 is None else f", {self.area_mm2:.3g} mm^2"
        rows, cols = self.mesh
        return (
            f"{self.arch}: {self.tiles} tiles ({rows} x {cols} mesh), {self.pes} PEs,"
            f" {self.crossbars:,} crossbars{area}, {self.clock_mhz:g} MHz"
        )


def run_mapping(result: RunResult) -> ChipMapping:
    """The run's chip: its network's backbone, IC head and FC head on its architecture."""
    graph = result.spec.graph().with_heads({result.ic, FC_HEAD})
    return map_network(result.arch, graph)


def chip_facts(mapping: ChipMapping) -> ChipFacts:
    arch = mapping.arch
    area = None if arch.area_um2 is None else chip_area(mapping).total_mm2
    return ChipFacts(
        arch.name,
        mapping.tiles,
        mapping.mesh_shape,
        mapping.pes,
        mapping.crossbars,
        area,
        arch.clock_mhz,
    )


def _short(name: str) -> str:
    """A layer as the floorplan names it: a head by its tag ("ic8", "fc"), a residual block
    by its block ("block3"), any other layer by its own name ("conv4")."""
    return name.split(".")[0]


def router_labels(mapping: ChipMapping) -> dict[tuple[int, int], str]:
    """Per router (row, col): "tile i", the backbone layers mapped there (the first and last of
    more than two) and the heads, and "fusion unit" where it sits."""
    held: dict[int, list[str]] = {t: [] for t in range(mapping.tiles)}
    for m in mapping.layers:
        for t in dict.fromkeys(int(t) for t in m.tiles):
            short = _short(m.name)
            if short not in held[t]:
                held[t].append(short)
    labels: dict[tuple[int, int], str] = {}
    for t, names in held.items():
        heads = [n for n in names if n == "fc" or (n.startswith("ic") and n[2:].isdigit())]
        body = [n for n in names if n not in heads]
        shown = [f"{body[0]}..{body[-1]}"] if len(body) > 2 else body
        row, col = (int(v) for v in mapping.tile_coords[t])
        labels[(row, col)] = "\n".join([f"tile {t}", ", ".join(shown + heads)])
    fu = mapping.fusion_unit_coord
    labels[fu] = (labels[fu] + "\n" if fu in labels else "") + "fusion unit"
    return labels
