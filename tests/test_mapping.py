"""ChipMapping onto crossbars, PEs, tiles and the mesh; spike routes; area. Hand-computed cases and
SpikeSim's own tile count and area (ela_spikesim.py, transcribed below from its formulas)."""

import math
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from hwsim.hw.activity import full_activity
from hwsim.hw.arch import Architecture, Placement, load_arch, parse_arch
from hwsim.hw.area import TILE_COMPONENTS, chip_area, spikesim_tile_area_um2
from hwsim.hw.energy import pe_energy_components_pj, spikesim_energy
from hwsim.hw.mapping import MappingError, map_network, slot_coords
from hwsim.hw.noc import producer_traffic
from hwsim.hw.timing import run_timing
from hwsim.model.graph import FC_HEAD, Layer, LayerKind, Role
from hwsim.model.netspec import NetSpec
from hwsim.report.tables import mapping_table
from tests.geometry import chain, conv, gap, linear

ROOT = Path(__file__).resolve().parents[1]
SPIKESIM = load_arch(ROOT / "arch_configs" / "spikesim.yaml")


def variant(**sections: dict) -> Architecture:
    raw = SPIKESIM.to_mapping()
    for section, values in sections.items():
        raw[section].update(values)
    return parse_arch(raw, "variant")


# 4-bit differential weights, 3 slices on columns: 6 columns per weight, 10 outputs per crossbar
DIFFERENTIAL = variant(device={"signed_weights": "differential", "slicing": "columns"})

NET = chain(
    [
        conv("conv0", 3, 64, 3, 32, 0),
        conv("conv1", 100, 130, 3, 16, 1),
        gap("fc.gap", 130, 16, FC_HEAD),
        linear("fc.linear", 130, 10, FC_HEAD),
    ]
)


# ------------------------------------------------------------- SpikeSim's formulas


def spikesim_pes(in_ch: list[int], out_ch: list[int], xbar: int = 64) -> list[int]:
    """ela_spikesim.py pe_tile_count: ceil(in / X) ceil(out / X) PEs per layer."""
    return [math.ceil(i / xbar) * math.ceil(o / xbar) for i, o in zip(in_ch, out_ch, strict=True)]


def spikesim_area_um2(in_ch, in_dim, out_ch, out_dim, n_tiles, k=3, xbar=64, pe_per_tile=8):
    """ela_spikesim.py compute_area (rram) total_ar, its constants transcribed."""
    xbar_ar, tile_buff, temp_buff = 26.2144, 0.7391 * 64 * 128, 484.643999
    sub, adc, htree, mux = 13411.41498, 693.633, 216830 * 2, 45.9
    pe_ar = k * k * xbar_ar + (xbar / 8) * (adc + mux)
    tile = (xbar / 8) * sub + temp_buff + tile_buff + pe_per_tile * pe_ar + htree
    inputs = sum(c * d * d for c, d in zip(in_ch, in_dim, strict=True)) * 0.7391 * 22
    neurons = sum(c * d * d for c, d in zip(out_ch[:5], out_dim[:5], strict=True)) * 0.7391 * 22
    return tile * n_tiles + inputs + neurons


def conv_layer(name: str, c_in: int, c_out: int, hw_in: int, hw_out: int) -> Layer:
    """A 3x3 conv, padding 1, stride hw_in / hw_out (SpikeSim's lists give the map sizes)."""
    return Layer(
        name, LayerKind.CONV, Role.BACKBONE, (c_in, hw_in, hw_in), (c_out, hw_out, hw_out),
        (3, 3), hw_in // hw_out, 1, (), name,
    )  # fmt: skip


# SpikeSim's example network (ela_spikesim.py): VGG9 / CIFAR-10
VGG9_IN_CH = [3, 64, 64, 128, 128, 256, 256]
VGG9_OUT_CH = [64, 64, 128, 128, 256, 256, 256]
VGG9_IN_DIM = [32, 32, 16, 16, 8, 8, 8]
VGG9_OUT_DIM = [32, 16, 16, 8, 8, 8, 4]


def test_spikesim_vgg9_tiles_and_area_are_spikesim_s() -> None:
    layers = [
        conv_layer(f"conv{i}", *args)
        for i, args in enumerate(
            zip(VGG9_IN_CH, VGG9_OUT_CH, VGG9_IN_DIM, VGG9_OUT_DIM, strict=True)
        )
    ]
    m = map_network(SPIKESIM, chain(layers))
    pes = spikesim_pes(VGG9_IN_CH, VGG9_OUT_CH)
    assert [x.pes for x in m.layers] == pes == [1, 1, 2, 4, 8, 16, 16]
    assert m.tiles == math.ceil(sum(pes) / 8) == 6  # SpikeSim's VGG9: 6 tiles
    reference = spikesim_area_um2(VGG9_IN_CH, VGG9_IN_DIM, VGG9_OUT_CH, VGG9_OUT_DIM, 6)
    area = chip_area(m)
    assert area.total_um2 == pytest.approx(reference, rel=1e-12)
    assert area.total_mm2 == pytest.approx(8.43, abs=0.005)  # the SpikeSim paper's 8.43 mm^2
    assert area.chip_um2["fusion_unit"] == 0.0  # no classifier head, no fusion unit


def _bsf_backbone(name: str) -> tuple[list[Layer], list[int], list[int], list[int], list[int]]:
    """BSF's VGG on CIFAR-10 (3x32x32): the conv layers and SpikeSim's four lists."""
    graph = NetSpec(name, 1.0, (3, 32, 32), 10, ()).graph()
    convs = list(graph.backbone)
    lists = (
        [g.in_channels for g in convs],
        [g.in_shape[1] for g in convs],
        [g.out_channels for g in convs],
        [g.out_hw[0] for g in convs],
    )
    return convs, *lists


@pytest.mark.parametrize(("name", "tiles"), [("vgg19", 68), ("vgg16", 50)])
def test_bsf_vgg_tiles_and_area_are_spikesim_s(name: str, tiles: int) -> None:
    convs, in_ch, in_dim, out_ch, out_dim = _bsf_backbone(name)
    m = map_network(SPIKESIM, chain(convs))
    pes = spikesim_pes(in_ch, out_ch)
    assert [x.pes for x in m.layers] == pes
    assert m.tiles == math.ceil(sum(pes) / 8) == tiles
    # SpikeSim charges every tile its 8 PEs of k x k crossbars; hwsim builds the ADCs of an
    # empty PE slot too (a tile is one block) but gives it no crossbars
    empty_slots = 8 * tiles - sum(pes)
    reference = spikesim_area_um2(in_ch, in_dim, out_ch, out_dim, tiles)
    assert chip_area(m).total_um2 == pytest.approx(reference - empty_slots * 9 * 26.2144, rel=1e-12)
    # BSF's heads add SpikeSim-counted PEs too: GAP C x C, Linear ceil(F / 4) x classes
    full = map_network(SPIKESIM, NetSpec(name, 1.0, (3, 32, 32), 10, (5,)).graph())
    heads = spikesim_pes([256, 64, 512, 128], [256, 10, 512, 10])  # ic5 GAP+FC, fc GAP+FC
    assert full.tiles == math.ceil((sum(pes) + sum(heads)) / 8)


# ------------------------------------------------------------------ by hand


def test_spikesim_mapping_by_hand() -> None:
    # SpikeSim's one column per weight: 64 outputs per crossbar; a PE is the 9 crossbars of
    # one (channel group, column group)
    assert SPIKESIM.outputs_per_crossbar == 64
    m = map_network(SPIKESIM, NET)
    c0, c1, g, lin = m.layers
    assert (c0.row_groups, c0.col_groups, c0.crossbars, c0.pes) == (9, 1, 9, 1)
    assert (c0.used_cells, c0.available_cells) == (27 * 64, 9 * 4096)
    assert (c1.row_groups, c1.col_groups, c1.crossbars, c1.pes) == (18, 3, 54, 6)
    assert c1.used_cells == 9 * (64 + 36) * 130
    assert (g.positions, g.row_groups, g.col_groups, g.pes) == (256, 768, 3, 9)
    assert (lin.positions, lin.channels, lin.row_groups, lin.pes) == (4, 33, 4, 1)
    # PE operations per timestep: output positions x channel groups x column groups
    assert [x.pe_operations for x in m.layers] == [1024, 2 * 3 * 256, 3 * 3, 1]
    assert [x.crossbar_reads for x in m.layers] == [9 * 1024, 9 * 1536, 256 * 9, 4]
    assert m.pes == 17 and m.tiles == 3  # SpikeSim's ceil(sum ceil(in/X) ceil(out/X) / 8)
    assert m.tile_pes().tolist() == [8, 8, 1]
    # row group g P + p: channel 70 (group 1) sits in row groups 9..17, one per position
    assert c1.input_row_groups(70) == list(range(9, 18))
    assert lin.input_row_groups(70) == [2]  # feature 70: row channel 17 of position 2
    assert m.utilisation == pytest.approx(m.used_cells / m.available_cells)


def test_differential_mapping_by_hand() -> None:
    assert DIFFERENTIAL.outputs_per_crossbar == 10
    m = map_network(DIFFERENTIAL, NET)
    c0, c1, g, lin = m.layers
    assert (c0.row_groups, c0.col_groups, c0.crossbars, c0.pes) == (9, 7, 63, 7)
    assert (c0.used_cells, c0.available_cells) == (27 * 384, 63 * 4096)
    assert (c1.row_groups, c1.col_groups, c1.crossbars, c1.pes) == (18, 13, 234, 26)
    assert c1.used_cells == 9 * (64 + 36) * 130 * 6
    assert (g.row_groups, g.col_groups, g.pes) == (768, 13, 39)
    assert m.pes == 73 and m.tiles == 10
    assert c0.tiles == (0,) and c1.tiles == (0, 1, 2, 3, 4) and c1.first_pe == 7


def test_unrolled_mapping_by_hand() -> None:
    m = map_network(variant(mapping={"style": "unrolled"}), NET)
    c0, c1, _, lin = m.layers
    assert (c0.row_groups, c0.crossbars, c0.crossbars_per_pe, c0.pes) == (1, 1, 1, 1)
    assert (c1.row_groups, c1.col_groups, c1.crossbars_per_pe, c1.pes) == (15, 3, 15, 3)
    assert c1.pe_operations == 256 * 15 * 3 and c1.crossbar_reads == c1.pe_operations
    assert lin.row_groups == 3  # 4 x 33 = 132 rows


def test_crossbars_per_pe_packs_crossbars() -> None:
    m = map_network(variant(pe={"crossbars_per_pe": 4}), chain(NET.layers[:2]))
    assert m.layers[1].pes == math.ceil(54 / 4)
    assert m.layers[1].crossbar_tiles().shape == (3, 18)


def test_placement_orders_by_hand() -> None:
    assert slot_coords(6, (2, 3), Placement.ROW_MAJOR).tolist() == [
        [0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]
    ]  # fmt: skip
    assert slot_coords(6, (2, 3), Placement.SNAKE).tolist() == [
        [0, 0], [0, 1], [0, 2], [1, 2], [1, 1], [1, 0]
    ]  # fmt: skip
    m = map_network(DIFFERENTIAL, NET)  # 10 tiles + fusion unit = 11 slots -> 3 x 4 mesh
    assert m.mesh_shape == (3, 4)
    assert m.tile_coords[4].tolist() == [1, 3] and m.fusion_unit_coord == (2, 2)
    coords = m.tile_coords
    assert all(np.abs(coords[i] - coords[i + 1]).sum() == 1 for i in range(m.tiles - 1))  # snake
    row_major = map_network(
        variant(
            device={"signed_weights": "differential", "slicing": "columns"},
            mapping={"placement": "row_major"},
        ),
        NET,
    )
    assert row_major.tile_coords[4].tolist() == [1, 0]


def test_ic_heads_never_move_the_final_classifier_s_chip() -> None:
    # whichever IC is on the chip, the backbone and FC head keep their PEs, tiles, mesh slots
    # and the fusion unit its slot: DL's energy and latency cannot depend on the IC
    spec = NetSpec("vgg11", 1 / 4, (1, 16, 16), 10, (1, 3, 5))
    base = map_network(DIFFERENTIAL, spec.graph().with_heads({FC_HEAD}))
    for ic in (1, 3, 5):
        m = map_network(DIFFERENTIAL, spec.graph().with_heads({ic, FC_HEAD}))
        assert m.tiles >= base.tiles and m.fusion_unit_coord == base.fusion_unit_coord
        assert m.mesh_shape[1] == base.mesh_shape[1]
        for b in base.layers:
            x = m.layer(b.name)
            assert np.array_equal(x.pe_tiles, b.pe_tiles) and x.first_pe == b.first_pe
            assert np.array_equal(m.tile_coords[list(x.tiles)], base.tile_coords[list(b.tiles)])
        ic_tiles = {t for g in m.layers if g.layer.head == ic for t in g.tiles}
        assert min(ic_tiles) >= base.tiles - 1  # after the FC head's (sharing its last tile)


def test_fixed_mesh_too_small_is_refused() -> None:
    arch = variant(
        device={"signed_weights": "differential", "slicing": "columns"},
        noc={"mesh_rows": 2, "mesh_cols": 5},
    )
    with pytest.raises(MappingError, match=r"2 x 5 mesh .* 10 tiles \+ 1 fusion unit = 11"):
        map_network(arch, NET)
    big = variant(
        device={"signed_weights": "differential", "slicing": "columns"},
        noc={"mesh_rows": 4, "mesh_cols": 4},
    )
    assert map_network(big, NET).mesh_shape == (4, 4)


def test_spike_routes_by_hand() -> None:
    # one crossbar per PE, one PE per tile: every crossbar is a tile; 4 x 3 snake mesh
    arch = variant(
        device={"signed_weights": "differential", "slicing": "columns"},
        pe={"pes_per_tile": 1, "crossbars_per_pe": 1},
    )
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
    assert set(traffic["conv1"].edges) == {"fc.gap"}


def test_mapping_table_and_frame() -> None:
    m = map_network(SPIKESIM, NET)
    console = Console(record=True, width=160)
    console.print(mapping_table(m))
    text = console.export_text()
    for name in ("conv0", "conv1", "fc.gap", "fc.linear", "total", "snake"):
        assert name in text
    frame = m.to_frame()
    assert frame["crossbars"].tolist() == [9, 54, 2304, 4]
    assert frame["pe_operations"].tolist() == [1024, 1536, 9, 1]
    assert frame["utilisation"].between(0, 1).all()


def test_vgg19_maps_every_layer() -> None:
    spec = NetSpec("vgg19", 1 / 8, (1, 28, 28), 10, (4, 8))
    layers = spec.graph().layers
    m = map_network(SPIKESIM, spec.graph())
    assert [x.name for x in m.layers] == [g.name for g in layers]
    assert 0 < m.utilisation < 1
    assert m.tiles == -(-m.pes // 8)


# ----------------------------------------------------------- one mapping, three costs


def test_one_mapping_feeds_energy_area_and_timing() -> None:
    # a 16 -> 24 channel 3x3 conv on 8x8: kernel_split reads 9 crossbars (one per position)
    # per operation, 1 operation per output position; unrolled cuts 144 rows into 3 row groups
    # of one crossbar each: 3 operations per position, 3 crossbars
    graph = chain([conv("c", 16, 24, 3, 8, 0)])
    split = map_network(SPIKESIM, graph)
    unrolled = map_network(variant(mapping={"style": "unrolled"}), graph)
    for m, ops, crossbars, per_op in ((split, 64, 9, (3, 3)), (unrolled, 3 * 64, 3, (1, 1))):
        (x,) = m.layers
        assert (x.pe_operations, x.crossbars, x.pes) == (ops, crossbars, 1)
        # energy: its operations x E_PE of an operation reading per_op crossbars
        e_pe = sum(pe_energy_components_pj(m.arch, per_op).values())
        assert spikesim_energy(m).total_pj == pytest.approx(ops * e_pe, rel=1e-12)
        # area: its crossbars in its one tile
        area = chip_area(m).tile_um2[0, TILE_COMPONENTS.index("crossbar")]
        assert area == pytest.approx(crossbars * 26.2144, rel=1e-12)
        # timing: its one PE runs its operations in sequence, 26 cycles each
        timing = run_timing(m, full_activity(m, timesteps=1))
        assert timing.stage_cycles[0, 0] == ops * 26
    assert spikesim_energy(split).total_pj != spikesim_energy(unrolled).total_pj


# ---------------------------------------------------------------------------- area


def test_spikesim_tile_area_by_hand() -> None:
    # ela_spikesim.py compute_area: Tile_ar_ov = (X/8) Sub + Temp_Buff + Tile_buff
    #   + pe_per_tile PE_ar + Htree, PE_ar = k*k xbar_ar + (X/8)(ADC + MUX)
    pe_ar = 9 * 26.2144 + 8 * (693.633 + 45.9)
    by_hand = 8 * 13411.41498 + 484.643999 + 0.7391 * 64 * 128 + 8 * pe_ar + 216830 * 2
    assert spikesim_tile_area_um2(SPIKESIM, (3, 3)) == pytest.approx(by_hand, rel=1e-12)


def test_chip_area_by_hand() -> None:
    # 64 -> 400 channels, 3x3, 8x8 output: 7 column groups x 1 row group = 7 PEs of 9
    # crossbars in one tile of 8 PE slots (the eighth empty: its ADCs, no crossbars)
    m = map_network(SPIKESIM, chain([conv("conv0", 64, 400, 3, 8, 0)]))
    assert m.tiles == 1 and m.pes == 7
    area = chip_area(m)
    full_tile = spikesim_tile_area_um2(SPIKESIM)
    assert area.per_tile_um2()[0] == pytest.approx(full_tile - 9 * 26.2144, rel=1e-12)
    parts = area.per_component_um2()
    assert list(parts)[: len(TILE_COMPONENTS)] == list(TILE_COMPONENTS)
    assert parts["crossbar"] == pytest.approx(63 * 26.2144)
    assert parts["adc"] == pytest.approx(8 * 8 * 693.633)
    assert parts["neuron_memory"] == pytest.approx(400 * 64 * 22 * 0.7391)
    assert parts["input_buffer"] == pytest.approx(64 * 64 * 22 * 0.7391)  # stride-1 input
    assert parts["fusion_unit"] == 0.0  # no classifier head
    assert map_network(SPIKESIM, NET).arch.fusion_unit is not None
    assert chip_area(map_network(SPIKESIM, NET)).chip_um2["fusion_unit"] == 5000.0
    assert area.total_um2 == pytest.approx(sum(parts.values()))
    assert area.to_frame()["share"].sum() == pytest.approx(1.0)


def test_adc_area_scales_with_its_bits() -> None:
    # a SAR ADC at a constant Walden figure of merit: area (capacitive DAC) ~ 2^bits; the
    # spikesim.yaml constant is SpikeSim's 4-bit ADC
    m = map_network(SPIKESIM, NET)
    adc = TILE_COMPONENTS.index("adc")
    base = chip_area(m).tile_um2[:, adc].sum()
    assert base == pytest.approx(m.tiles * 8 * 8 * 693.633)
    for bits in (3, 6, 8):
        wider = map_network(variant(adc={"bits": bits}), NET)
        assert chip_area(wider).tile_um2[:, adc].sum() == pytest.approx(base * 2.0 ** (bits - 4))


def test_neuron_memory_layers() -> None:
    # SpikeSim sizes the neuron memory for its first five layers; null counts every layer
    layers = [conv(f"c{i}", 8, 8, 3, 4, i) for i in range(7)]
    five = chip_area(map_network(SPIKESIM, chain(layers))).chip_um2["neuron_memory"]
    assert five == pytest.approx(5 * 8 * 16 * 22 * 0.7391)
    every = variant(buffers={"neuron_memory_layers": None})
    assert chip_area(map_network(every, chain(layers))).chip_um2["neuron_memory"] == (
        pytest.approx(7 * 8 * 16 * 22 * 0.7391)
    )


def test_area_needs_constants() -> None:
    raw = SPIKESIM.to_mapping()
    raw["area_um2"] = None
    m = map_network(parse_arch(raw, "no-area"), chain(NET.layers[:1]))
    with pytest.raises(ValueError, match="no area_um2 section"):
        chip_area(m)


def test_area_counts_mapped_crossbars_and_whole_tiles() -> None:
    m = map_network(DIFFERENTIAL, NET)
    area = chip_area(m)
    per_tile = area.tile_um2[:, TILE_COMPONENTS.index("crossbar")] / 26.2144
    assert per_tile.sum() == pytest.approx(m.crossbars)
    assert np.all(area.tile_um2[:, TILE_COMPONENTS.index("htree")] == 433660.0)
    assert np.all(area.tile_um2[:, TILE_COMPONENTS.index("adc")] == pytest.approx(8 * 8 * 693.633))
