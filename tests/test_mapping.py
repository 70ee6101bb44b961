"""Mapping onto crossbars, PEs, tiles and the mesh; spike routes; area. Hand-computed cases."""

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from hwsim.graph import FC_HEAD
from hwsim.hw.arch import Architecture, Placement, load_arch, parse_arch
from hwsim.hw.area import TILE_COMPONENTS, chip_area, spikesim_tile_area_um2
from hwsim.hw.mapping import MappingError, map_network, slot_coords
from hwsim.hw.noc import producer_traffic
from hwsim.netspec import NetSpec
from hwsim.report import mapping_table
from tests.geometry import chain, conv, gap, linear

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml")


def variant(**sections: dict) -> Architecture:
    raw = SPIKESIM.to_mapping()
    for section, values in sections.items():
        raw[section].update(values)
    return parse_arch(raw, "variant")


NET = chain(
    [
        conv("conv0", 3, 64, 3, 32, 0),
        conv("conv1", 100, 130, 3, 16, 1),
        gap("fc.gap", 130, 16, FC_HEAD),
        linear("fc.linear", 130, 10, FC_HEAD),
    ]
)


def test_kernel_split_mapping_by_hand() -> None:
    # 4-bit differential weights on 1-bit cells: 3 slices x 2 = 6 columns per weight, so a
    # 64-column crossbar holds 10 outputs; a PE holds the k*k crossbars of a channel group.
    assert SPIKESIM.outputs_per_crossbar == 10
    m = map_network(SPIKESIM, NET)
    c0, c1, g, lin = m.layers
    assert (c0.row_groups, c0.col_groups, c0.crossbars, c0.pes) == (9, 7, 63, 7)
    assert (c0.used_cells, c0.available_cells) == (27 * 384, 63 * 4096)
    assert (c1.row_groups, c1.col_groups, c1.crossbars, c1.pes) == (18, 13, 234, 26)
    assert c1.used_cells == 9 * (64 + 36) * 130 * 6
    assert c1.utilisation == pytest.approx(702000 / 958464)
    assert (g.positions, g.row_groups, g.col_groups, g.pes) == (256, 768, 13, 39)
    assert (lin.positions, lin.channels, lin.row_groups, lin.pes) == (4, 33, 4, 1)
    assert m.pes == 73 and m.tiles == 10  # ceil(73 / 8): PEs packed across layers
    assert c0.tiles == (0,) and c1.tiles == (0, 1, 2, 3, 4) and c1.first_pe == 7
    assert m.tile_pes().tolist() == [8] * 9 + [1]
    assert m.used_cells == sum(x.used_cells for x in m.layers)
    assert m.utilisation == pytest.approx(m.used_cells / m.available_cells)


def test_unrolled_mapping_by_hand() -> None:
    m = map_network(variant(mapping={"style": "unrolled"}), NET)
    c0, c1, _, lin = m.layers
    assert (c0.row_groups, c0.crossbars, c0.crossbars_per_pe, c0.pes) == (1, 7, 1, 7)
    assert c0.used_cells == 27 * 384
    assert (c1.row_groups, c1.col_groups, c1.crossbars_per_pe, c1.pes) == (15, 13, 15, 13)
    assert lin.row_groups == 3  # 4 x 33 = 132 rows


def test_crossbars_per_pe_packs_crossbars() -> None:
    m = map_network(variant(pe={"crossbars_per_pe": 4}), chain(NET.layers[:1]))
    assert m.layers[0].pes == 16  # ceil(63 / 4)
    assert m.layers[0].crossbar_tiles().shape == (7, 9)


def test_placement_orders_by_hand() -> None:
    assert slot_coords(6, (2, 3), Placement.ROW_MAJOR).tolist() == [
        [0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]
    ]  # fmt: skip
    assert slot_coords(6, (2, 3), Placement.SNAKE).tolist() == [
        [0, 0], [0, 1], [0, 2], [1, 2], [1, 1], [1, 0]
    ]  # fmt: skip
    m = map_network(SPIKESIM, NET)  # 10 tiles + fusion unit = 11 slots -> 3 x 4 mesh
    assert m.mesh_shape == (3, 4)
    assert m.tile_coords[4].tolist() == [1, 3] and m.fusion_unit_coord == (2, 2)
    coords = m.tile_coords
    assert all(np.abs(coords[i] - coords[i + 1]).sum() == 1 for i in range(m.tiles - 1))  # snake
    row_major = map_network(variant(mapping={"placement": "row_major"}), NET)
    assert row_major.tile_coords[4].tolist() == [1, 0]


def test_fixed_mesh_too_small_is_refused() -> None:
    arch = variant(noc={"mesh_rows": 2, "mesh_cols": 5})
    with pytest.raises(MappingError, match=r"2 x 5 mesh .* 10 tiles \+ 1 fusion unit = 11"):
        map_network(arch, NET)
    big = map_network(variant(noc={"mesh_rows": 4, "mesh_cols": 4}), NET)
    assert big.mesh_shape == (4, 4)


def test_spike_routes_by_hand() -> None:
    # one crossbar per PE, one PE per tile: every crossbar is a tile; 4 x 3 snake mesh
    arch = variant(pe={"pes_per_tile": 1, "crossbars_per_pe": 1})
    layers = [
        conv("conv0", 3, 20, 1, 2, 0),  # 2 column groups -> tiles 0, 1
        conv("conv1", 20, 4, 1, 2, 1),  # tile 2
        gap("fc.gap", 4, 2, FC_HEAD),  # 4 kernel positions -> tiles 3..6
        linear("fc.linear", 4, 3, FC_HEAD),  # (4, 1) kernel over 1 row channel -> tiles 7..10
    ]
    m = map_network(arch, chain(layers))
    assert m.tiles == 11 and m.mesh_shape == (3, 4) and m.fusion_unit_coord == (2, 3)
    traffic = producer_traffic(m)  # each producer has one consumer here; 1 flit per spike
    hops = {name: t.flit_hops_per_spike for name, t in traffic.items()}
    assert all(t.flits_per_spike == 1 for t in traffic.values())
    # conv0 channels 0-9 live at (0,0), 10-19 at (0,1); conv1 at (0,2): 2 and 1 hops
    assert hops["conv0"] == pytest.approx(1.5)
    # conv1 at (0,2) feeds all 4 GAP crossbars at (0,3), (1,3), (1,2), (1,1): 1+2+1+2 hops
    assert hops["conv1"] == pytest.approx(6.0)
    # GAP output c (home (0,3)) feeds the Linear crossbar of position c % 4: (1,0), (2,0),
    # (2,1), (2,2): 4, 5, 4, 3 hops
    assert hops["fc.gap"] == pytest.approx(4.0)
    assert hops["fc.linear"] == pytest.approx(4.0)  # to the fusion unit at (2,3)


def test_mapping_table_and_frame() -> None:
    m = map_network(SPIKESIM, NET)
    console = Console(record=True, width=160)
    console.print(mapping_table(m))
    text = console.export_text()
    for name in ("conv0", "conv1", "fc.gap", "fc.linear", "total", "snake"):
        assert name in text
    frame = m.to_frame()
    assert frame["crossbars"].tolist() == [63, 234, 9984, 4]
    assert frame["utilisation"].between(0, 1).all()


def test_vgg19_maps_every_layer() -> None:
    spec = NetSpec("vgg19", 1 / 8, (1, 28, 28), 10, (4, 8))
    layers = spec.graph().layers
    m = map_network(SPIKESIM, spec.graph())
    assert [x.name for x in m.layers] == [g.name for g in layers]
    assert 0 < m.utilisation < 1
    assert m.tiles == -(-m.pes // 8)


# ---------------------------------------------------------------------------- area


def test_spikesim_tile_area_by_hand() -> None:
    # ela_spikesim.py compute_area: Tile_ar_ov = (X/8) Sub + Temp_Buff + Tile_buff
    #   + pe_per_tile PE_ar + Htree, PE_ar = k*k xbar_ar + (X/8)(ADC + MUX)
    pe_ar = 9 * 26.2144 + 8 * (693.633 + 45.9)
    by_hand = 8 * 13411.41498 + 484.643999 + 0.7391 * 64 * 128 + 8 * pe_ar + 216830 * 2
    assert spikesim_tile_area_um2(SPIKESIM, (3, 3)) == pytest.approx(by_hand, rel=1e-12)


def test_chip_area_by_hand() -> None:
    # 64 -> 80 channels, 3x3, 8x8 output: 8 column groups x 1 row group = 8 PEs of 9
    # crossbars = exactly one full SpikeSim tile
    m = map_network(SPIKESIM, chain([conv("conv0", 64, 80, 3, 8, 0)]))
    assert m.tiles == 1 and m.pes == 8
    area = chip_area(m)
    assert area.per_tile_um2()[0] == pytest.approx(spikesim_tile_area_um2(SPIKESIM), rel=1e-12)
    parts = area.per_component_um2()
    assert list(parts)[: len(TILE_COMPONENTS)] == list(TILE_COMPONENTS)
    assert parts["crossbar"] == pytest.approx(72 * 26.2144)
    assert parts["adc"] == pytest.approx(8 * 8 * 693.633)
    assert parts["neuron_memory"] == pytest.approx(80 * 64 * 22 * 0.7391)
    assert parts["input_buffer"] == pytest.approx(64 * 64 * 22 * 0.7391)  # stride-1 input
    assert parts["fusion_unit"] == 5000.0
    assert area.total_um2 == pytest.approx(sum(parts.values()))
    assert area.to_frame()["share"].sum() == pytest.approx(1.0)


def test_area_needs_constants() -> None:
    raw = SPIKESIM.to_mapping()
    raw["area_um2"] = None
    m = map_network(parse_arch(raw, "no-area"), chain(NET.layers[:1]))
    with pytest.raises(ValueError, match="no area_um2 section"):
        chip_area(m)


def test_area_of_partial_tiles_counts_mapped_pes_only() -> None:
    m = map_network(SPIKESIM, NET)
    area = chip_area(m)
    per_tile = area.tile_um2[:, TILE_COMPONENTS.index("crossbar")] / 26.2144
    assert per_tile.sum() == pytest.approx(m.crossbars)
    assert np.all(area.tile_um2[:, TILE_COMPONENTS.index("htree")] == 433660.0)
