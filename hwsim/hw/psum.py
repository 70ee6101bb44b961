"""Partial sums between PEs: where a layer whose crossbar rows span several PEs reduces each
output, and what its partial sums cost to move there.

A layer's PE operation (`hwsim.hw.mapping`) reads one row unit of one column group at one
output position: a channel group (its k_h k_w crossbars, `kernel_split`) or a row group (one
crossbar, `unrolled`). Row units of one column group each give a partial sum for every output
of the group; the **reducer** of column group c is the PE of its row unit 0 (its first
crossbar's PE), which adds the others' partial sums to its own. A row unit in another PE sends
each operation's vector of partial sums (the column group's outputs x `partial_sums.bits`):

* inside its tile over the tile's H-tree, one PE-output transfer per vector, charged as SpikeSim
  charges a PE operation's result (`pe.htree_links_per_pe` link traversals x `energy_pj.htree`),
  within the PE cycle (no extra time);
* to another tile over the mesh NoC: flows from the sending tile's to the reducer tile's
  coordinates, XY routed, ceil(bits / noc.flit_width_bits) flits per packet, charged
  `energy_pj.noc_flit_hop` per flit-hop and taking link time (`hwsim.hw.timing`,
  `hwsim.hw.sim`);
* the reducer adds every received partial sum (`energy_pj.shift_add` each, SpikeSim's Sub) and
  spends `partial_sums.accumulate_cycles` per received vector.

With every input spiking, per timestep a remote row unit sends H_out W_out vectors; a layer on
two tiles with two channel groups sends exactly its N_out = C_out H_out W_out partial sums
(x bits). Under the event model the traffic scales with the layer's active operations
(ops / pe_operations: operations taken as spread evenly over row units). Without a
`partial_sums` section nothing moves (SpikeSim accumulates for free).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.hw.arch import MappingStyle
from hwsim.hw.mapping import ChipMapping, LayerMapping
from hwsim.hw.noc import Coord, NocFlow, xy_links


@dataclass(frozen=True)
class LayerPsums:
    """One layer's partial sums per timestep with every input spiking (scale by the active
    share of its PE operations). `htree_vectors`: vectors moved inside a tile; `flows`: NoC
    flows (sending tile -> reducer tile) with their bits; `adds`: partial sums added at the
    reducers; `vectors_per_reducer`: the most vectors one reducer receives (its accumulate
    time); `pe_operations` the layer's operations they come with."""

    layer: str
    pe_operations: int
    htree_vectors: int
    flows: tuple[NocFlow, ...]  # flits field = bits per timestep
    adds: int
    vectors_per_reducer: int

    @property
    def noc_bits(self) -> int:
        return int(sum(f.flits for f in self.flows))

    @property
    def moves(self) -> bool:
        """Whether any partial sum leaves its PE."""
        return self.htree_vectors > 0 or bool(self.flows)


def _unit_crossbar(m: LayerMapping, col_group: int, unit: int) -> int:
    """Index of the first crossbar of row unit `unit` of column group `col_group`."""
    per_unit = m.positions if m.style is MappingStyle.KERNEL_SPLIT else 1
    return col_group * m.row_groups + unit * per_unit


def layer_psums(mapping: ChipMapping, m: LayerMapping) -> LayerPsums:
    """The partial sums of layer `m` (module docstring); zero traffic without a
    `partial_sums` section."""
    config = mapping.arch.partial_sums
    positions = m.output_positions
    units = m.channel_groups
    htree = adds = 0
    per_reducer = 0
    bits: dict[tuple[Coord, Coord], int] = {}
    coords = mapping.tile_coords
    for c in range(m.col_groups if config is not None else 0):
        outputs = min(m.outputs_per_crossbar, m.outputs - c * m.outputs_per_crossbar)
        reducer_pe = _unit_crossbar(m, c, 0) // m.crossbars_per_pe
        reducer_tile = int(m.pe_tiles[reducer_pe])
        received = 0
        for u in range(1, units):
            pe = _unit_crossbar(m, c, u) // m.crossbars_per_pe
            if pe == reducer_pe:
                continue
            received += positions
            adds += positions * outputs
            tile = int(m.pe_tiles[pe])
            if tile == reducer_tile:
                htree += positions
                continue
            src = (int(coords[tile, 0]), int(coords[tile, 1]))
            dst = (int(coords[reducer_tile, 0]), int(coords[reducer_tile, 1]))
            bits[(src, dst)] = bits.get((src, dst), 0) + positions * outputs * config.bits
        per_reducer = max(per_reducer, received)
    flows = tuple(NocFlow(s, d, float(b)) for (s, d), b in sorted(bits.items()))
    return LayerPsums(m.name, m.pe_operations, htree, flows, adds, per_reducer)


def chip_psums(mapping: ChipMapping) -> dict[str, LayerPsums]:
    """`layer_psums` of every mapped layer, by name."""
    return {m.name: layer_psums(mapping, m) for m in mapping.layers}


def flow_hops(flow: NocFlow) -> int:
    """Hops of a flow's XY route."""
    return len(xy_links(flow.src, flow.dst))
