"""SpikeSim-compatible energy: hand-computed references from the raw SpikeSim pJ numbers."""

import math
from pathlib import Path

import numpy as np
import pytest

from hwsim.hw.arch import Architecture, load_arch, parse_arch
from hwsim.hw.energy import (
    COMPONENTS,
    EnergyBreakdown,
    SpikesimGeometry,
    charge_pj,
    pe_energy_components_pj,
    pe_event_counts,
    pe_operations,
    spikesim_energy,
    spikesim_geometry,
)
from hwsim.hw.layers import FC_HEAD, LayerGeometry, LayerKind

ROOT = Path(__file__).resolve().parents[1]
REL = 1e-12  # float sums in a different order differ in the last bits only


@pytest.fixture(scope="module")
def arch() -> Architecture:
    return load_arch(ROOT / "arch_configs" / "spikesim.yaml")


def _variant(arch: Architecture, **changes: dict) -> Architecture:
    """spikesim.yaml with some sections' keys changed."""
    raw = arch.to_mapping()
    for section, values in changes.items():
        raw[section].update(values)
    return parse_arch(raw, "variant")


def spikesim_e_pe_pj(k_h: int, k_w: int) -> float:
    """SpikeSim's E_PE for X = 64, transcribed from ela_spikesim.py with its raw pJ numbers."""
    xbar_size = 64
    xbar_ar, tile_buff, temp_buff, sub = 1.76423, 397.0, 0.2, 1.15e-6
    adc, mux, mem_fetch = 2.03084, 0.094245, 4.64
    htree = 19.64 * 8
    neuron = 1.274 * 4.0
    pe_ar = k_h * k_w * xbar_ar + (xbar_size / 8) * (adc + mux)
    return (
        htree
        + mem_fetch
        + neuron
        + xbar_size / 8 * pe_ar
        + (xbar_size / 8) * 16 * sub
        + (xbar_size / 8) * temp_buff
        + tile_buff
    )


def conv(name: str, c_in: int, c_out: int, k: int, hw: int, head: int | None = None):
    return LayerGeometry(name, LayerKind.CONV, c_in, c_out, (k, k), (hw, hw), head)


def gap(name: str, channels: int, hw: int, head: int):
    return LayerGeometry(name, LayerKind.GAP, channels, channels, (hw, hw), (1, 1), head)


def linear(name: str, features: int, classes: int, head: int):
    return LayerGeometry(name, LayerKind.LINEAR, features, classes, (1, 1), (1, 1), head)


# ------------------------------------------------------------------------------- E_PE


def test_pe_energy_3x3_equals_hand_arithmetic(arch: Architecture) -> None:
    # 8 H-tree links, memory fetch, 4 neuron units, 8 x (9 crossbar reads + 8 (ADC + MUX)),
    # 8 x 16 shift-adds, 8 temp-buffer accesses, tile buffer; all pJ.
    by_hand = (
        8 * 19.64
        + 4.64
        + 4 * 1.274
        + 8 * (9 * 1.76423 + 8 * (2.03084 + 0.094245))
        + 8 * 16 * 1.15e-6
        + 8 * 0.2
        + 397.0
    )
    total = sum(pe_energy_components_pj(arch, (3, 3)).values())
    assert total == pytest.approx(by_hand, rel=1e-9)
    assert total == pytest.approx(828.4861472, rel=1e-9)


def test_pe_energy_components_by_hand(arch: Architecture) -> None:
    parts = pe_energy_components_pj(arch, (3, 3))
    assert list(parts) == list(COMPONENTS)
    expected = {
        "crossbar": 8 * 9 * 1.76423,
        "adc": 8 * 8 * 2.03084,
        "mux": 8 * 8 * 0.094245,
        "shift_add": 8 * 16 * 1.15e-6,
        "temp_buffer": 8 * 0.2,
        "tile_buffer": 397.0,
        "htree": 8 * 19.64,
        "memory_fetch": 4.64,
        "neuron": 4 * 1.274,
    }
    for name, value in expected.items():
        assert parts[name] == pytest.approx(value, rel=REL), name


@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (4, 1), (5, 5), (32, 32), (2, 7)])
def test_component_sum_equals_spikesim_closed_form(arch: Architecture, kernel) -> None:
    assert sum(pe_energy_components_pj(arch, kernel).values()) == pytest.approx(
        spikesim_e_pe_pj(*kernel), rel=REL
    )


def test_factors_come_from_config_fields(arch: Architecture) -> None:
    # 128 columns, 8 per ADC -> G = 16 ADC groups; other multiplicities changed too.
    variant = _variant(
        arch,
        crossbar={"rows": 128, "cols": 128},
        pe={"htree_links_per_pe": 2, "neuron_units_per_pe": 3, "shift_adds_per_column_group": 5},
    )
    events = pe_event_counts(variant, (3, 3))
    assert events == {
        "crossbar": 16 * 9,
        "adc": 16 * 16,
        "mux": 16 * 16,
        "shift_add": 16 * 5,
        "temp_buffer": 16,
        "tile_buffer": 1,
        "htree": 2,
        "memory_fetch": 1,
        "neuron": 3,
    }
    total = sum(pe_energy_components_pj(variant, (3, 3)).values())
    by_hand = (
        2 * 19.64
        + 4.64
        + 3 * 1.274
        + 16 * (9 * 1.76423 + 16 * (2.03084 + 0.094245))
        + 16 * 5 * 1.15e-6
        + 16 * 0.2
        + 397.0
    )
    assert total == pytest.approx(by_hand, rel=REL)


def test_charge_multiplies_events_by_table(arch: Architecture) -> None:
    events = np.zeros((2, len(COMPONENTS)), dtype=np.int64)
    events[0, COMPONENTS.index("adc")] = 3
    events[1, COMPONENTS.index("tile_buffer")] = 2
    energy = charge_pj(events, arch.energy_pj)
    assert energy.shape == (2, len(COMPONENTS))
    assert energy[0, COMPONENTS.index("adc")] == pytest.approx(3 * 2.03084, rel=REL)
    assert energy[1, COMPONENTS.index("tile_buffer")] == pytest.approx(2 * 397.0, rel=REL)
    assert np.count_nonzero(energy) == 2


# ------------------------------------------------------------------ geometry and PE ops


def test_pe_operations_hand_case(arch: Architecture) -> None:
    layer = conv("c", 100, 130, 3, 5)
    assert pe_operations(layer, arch) == 2 * 3 * 25  # ceil(100/64) ceil(130/64) 5*5


def test_pe_operations_uses_rows_for_inputs_and_cols_for_outputs(arch: Architecture) -> None:
    variant = _variant(arch, crossbar={"rows": 32, "cols": 128}, adc={"columns_per_adc": 8})
    layer = conv("c", 100, 130, 3, 5)
    assert pe_operations(layer, variant) == math.ceil(100 / 32) * math.ceil(130 / 128) * 25


def test_gap_convention(arch: Architecture) -> None:
    layer = gap("ic_gap", 512, 4, head=3)
    assert spikesim_geometry(layer) == SpikesimGeometry(512, 512, (4, 4), (1, 1))
    assert pe_operations(layer, arch) == 8 * 8  # ceil(512/64)^2, 1x1 output


def test_linear_convention(arch: Architecture) -> None:
    layer = linear("fc", 10, 7, head=FC_HEAD)
    assert spikesim_geometry(layer) == SpikesimGeometry(3, 7, (4, 1), (1, 1))  # ceil(10/4) = 3
    big = linear("fc_big", 1024, 100, head=FC_HEAD)
    geom = spikesim_geometry(big)
    assert (geom.in_channels, geom.kernel) == (256, (4, 1))
    assert pe_operations(big, arch) == math.ceil(100 / 64) * math.ceil(256 / 64)


def test_conv_geometry_is_unchanged() -> None:
    layer = conv("c", 3, 64, 3, 32)
    assert spikesim_geometry(layer) == (3, 64, (3, 3), (32, 32))


@pytest.mark.parametrize(
    "layer",
    [
        LayerGeometry("g", LayerKind.GAP, 64, 32, (4, 4), (1, 1), 3),
        LayerGeometry("g", LayerKind.GAP, 64, 64, (4, 4), (2, 2), 3),
        LayerGeometry("l", LayerKind.LINEAR, 64, 10, (3, 3), (1, 1), FC_HEAD),
    ],
    ids=["gap_channels", "gap_output", "linear_kernel"],
)
def test_inconsistent_head_geometry_is_refused(layer: LayerGeometry) -> None:
    with pytest.raises(ValueError, match=layer.name):
        spikesim_geometry(layer)


# ------------------------------------------------------------------------ whole network


def test_tiny_network_total_by_hand(arch: Architecture) -> None:
    layers = [
        conv("conv0", 3, 64, 3, 32),  # ceil(64/64) ceil(3/64) 32*32 = 1024 PE ops, 3x3
        gap("fc_gap", 64, 32, head=FC_HEAD),  # 1 PE op, 32x32 kernel
        linear("fc", 64, 10, head=FC_HEAD),  # ceil(10/64) ceil(16/64) = 1 PE op, 4x1 kernel
    ]
    e_3x3 = 8 * 19.64 + 4.64 + 4 * 1.274 + 8 * (9 * 1.76423 + 8 * (2.03084 + 0.094245))
    e_3x3 += 8 * 16 * 1.15e-6 + 8 * 0.2 + 397.0
    e_32x32 = 8 * 19.64 + 4.64 + 4 * 1.274 + 8 * (1024 * 1.76423 + 8 * (2.03084 + 0.094245))
    e_32x32 += 8 * 16 * 1.15e-6 + 8 * 0.2 + 397.0
    e_4x1 = 8 * 19.64 + 4.64 + 4 * 1.274 + 8 * (4 * 1.76423 + 8 * (2.03084 + 0.094245))
    e_4x1 += 8 * 16 * 1.15e-6 + 8 * 0.2 + 397.0

    result = spikesim_energy(arch, layers)
    assert result.pe_operations.tolist() == [1024, 1, 1]
    assert result.total_pj == pytest.approx(1024 * e_3x3 + e_32x32 + e_4x1, rel=REL)
    per_layer = result.per_layer_pj()
    assert list(per_layer) == ["conv0", "fc_gap", "fc"]
    assert per_layer["conv0"] == pytest.approx(1024 * e_3x3, rel=REL)
    assert per_layer["fc_gap"] == pytest.approx(e_32x32, rel=REL)
    assert per_layer["fc"] == pytest.approx(e_4x1, rel=REL)
    # Tile buffer: one access per PE operation.
    assert result.per_component_pj()["tile_buffer"] == pytest.approx(1026 * 397.0, rel=REL)


def _network() -> list[LayerGeometry]:
    return [
        conv("conv0", 3, 64, 3, 32),
        conv("conv1", 64, 128, 3, 16),
        conv("conv2", 128, 128, 3, 16),
        gap("ic3_gap", 128, 16, head=3),
        linear("ic3_fc", 128, 10, head=3),
        conv("conv3", 128, 256, 3, 8),
        gap("fc_gap", 256, 8, head=FC_HEAD),
        linear("fc", 256, 10, head=FC_HEAD),
    ]


def test_select_partitions_energy_exactly(arch: Architecture) -> None:
    whole = spikesim_energy(arch, _network())
    backbone = whole.select(lambda layer: layer.head is None)
    ic = whole.select(lambda layer: layer.head == 3)
    fc = whole.select(lambda layer: layer.head == FC_HEAD)
    assert backbone.layer_names == ("conv0", "conv1", "conv2", "conv3")
    assert ic.layer_names == ("ic3_gap", "ic3_fc")
    assert fc.heads == (FC_HEAD, FC_HEAD)
    parts = [backbone, ic, fc]
    # Every layer lands in exactly one part, with its row unchanged.
    order = [whole.layer_names.index(name) for part in parts for name in part.layer_names]
    assert sorted(order) == list(range(len(whole.layers)))
    stacked = np.concatenate([part.energy_pj for part in parts])
    assert np.array_equal(stacked, whole.energy_pj[order])
    assert sum(part.total_pj for part in parts) == pytest.approx(whole.total_pj, rel=REL)
    for name in COMPONENTS:
        total = sum(part.per_component_pj()[name] for part in parts)
        assert total == pytest.approx(whole.per_component_pj()[name], rel=REL)


def test_select_by_mask(arch: Architecture) -> None:
    whole = spikesim_energy(arch, _network())
    mask = np.array([True, False, False, False, False, False, False, True])
    part = whole.select(mask)
    assert part.layer_names == ("conv0", "fc")
    assert part.pe_operations.tolist() == [whole.pe_operations[0], whole.pe_operations[7]]
    with pytest.raises(ValueError, match="boolean mask"):
        whole.select([1, 0, 0, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="boolean mask"):
        whole.select(mask[:3])


def test_to_frame_columns_and_units(arch: Architecture) -> None:
    whole = spikesim_energy(arch, _network())
    frame = whole.to_frame()
    assert list(frame.columns) == [
        "layer",
        "kind",
        "head",
        "pe_operations",
        "crossbar_pj",
        "adc_pj",
        "mux_pj",
        "shift_add_pj",
        "temp_buffer_pj",
        "tile_buffer_pj",
        "htree_pj",
        "memory_fetch_pj",
        "neuron_pj",
        "total_pj",
    ]
    assert len(frame) == len(_network())
    assert frame["layer"].tolist() == list(whole.layer_names)
    assert frame["kind"].tolist()[3:5] == ["gap", "linear"]
    assert frame["head"].isna().tolist() == [h is None for h in whole.heads]
    assert frame.loc[4, "head"] == 3 and frame.loc[7, "head"] == FC_HEAD
    assert frame["pe_operations"].tolist() == whole.pe_operations.tolist()
    component_cols = [f"{c}_pj" for c in COMPONENTS]
    assert np.allclose(frame[component_cols].sum(axis=1), frame["total_pj"], rtol=REL)
    assert frame["total_pj"].sum() == pytest.approx(whole.total_pj, rel=REL)
    assert frame["adc_pj"].sum() == pytest.approx(whole.per_component_pj()["adc"], rel=REL)


def test_breakdown_is_read_only_and_checked(arch: Architecture) -> None:
    whole = spikesim_energy(arch, _network())
    with pytest.raises(ValueError):
        whole.energy_pj[0, 0] = 0.0
    with pytest.raises(ValueError):
        whole.pe_operations[0] = 0
    layer = conv("a", 3, 8, 3, 4)
    with pytest.raises(ValueError, match="pe_operations"):
        EnergyBreakdown((layer,), COMPONENTS, np.array([1, 2]), np.zeros((1, len(COMPONENTS))))
    with pytest.raises(ValueError, match="unique"):
        EnergyBreakdown((layer, layer), COMPONENTS, np.ones(2), np.zeros((2, len(COMPONENTS))))


def test_empty_network_has_zero_energy(arch: Architecture) -> None:
    empty = spikesim_energy(arch, [])
    assert empty.total_pj == 0.0
    assert empty.energy_pj.shape == (0, len(COMPONENTS))
    assert empty.per_component_pj() == dict.fromkeys(COMPONENTS, 0.0)
    assert len(empty.to_frame()) == 0
