"""Energy: SpikeSim's accounting reproduced from its raw pJ numbers and formulas (and
BayesianSpikeFusion's VGG19/VGG16 energies), the event model per read, per method and per ADC
resolution; hand-computed references."""

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hwsim.hw.activity import FUSION_EVENTS, LayerActivity, full_activity
from hwsim.hw.arch import Architecture, load_arch, parse_arch
from hwsim.hw.energy import (
    COMPONENTS,
    EVENT_COMPONENTS,
    EnergyBreakdown,
    charge_pj,
    event_costs_pj,
    paid_edges,
    pe_energy_components_pj,
    run_energy,
    spikesim_energy,
)
from hwsim.hw.fusion_unit import fusion_events
from hwsim.hw.geometry import (
    SpikesimGeometry,
    active_pe_operations,
    layer_patches,
    pe_event_counts,
    spikesim_geometry,
)
from hwsim.hw.mapping import map_network
from hwsim.model.graph import FC_HEAD, FUSION_UNIT, Layer
from hwsim.model.netspec import NetSpec
from tests import geometry as G

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


def conv(name: str, c_in: int, c_out: int, k: int, hw: int) -> Layer:
    return G.conv(name, c_in, c_out, k, hw, None)


gap, linear = G.gap, G.linear


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
    # 128 columns, 8 per ADC -> G = 16 ADCs, 8 rounds: 128 conversions (SpikeSim's (X/8)^2
    # formula would say 256 here; it equals G R only at its own X = 64)
    variant = _variant(
        arch,
        crossbar={"rows": 128, "cols": 128},
        pe={"htree_links_per_pe": 2, "neuron_units_per_pe": 3, "shift_adds_per_column_group": 5},
    )
    events = pe_event_counts(variant, 9)
    assert events == {
        "crossbar": 16 * 9,
        "adc": 16 * 8,
        "mux": 16 * 8,
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
        + 16 * 9 * 1.76423
        + 128 * (2.03084 + 0.094245)
        + 16 * 5 * 1.15e-6
        + 16 * 0.2
        + 397.0
    )
    assert total == pytest.approx(by_hand, rel=REL)


def test_charge_multiplies_events_by_table(arch: Architecture) -> None:
    events = np.zeros((2, len(COMPONENTS)), dtype=np.int64)
    events[0, COMPONENTS.index("adc")] = 3
    events[1, COMPONENTS.index("tile_buffer")] = 2
    energy = charge_pj(events, arch)
    assert energy.shape == (2, len(COMPONENTS))
    assert energy[0, COMPONENTS.index("adc")] == pytest.approx(3 * 2.03084, rel=REL)
    assert energy[1, COMPONENTS.index("tile_buffer")] == pytest.approx(2 * 397.0, rel=REL)
    assert np.count_nonzero(energy) == 2


def test_adc_energy_is_spikesim_s_at_its_bits_and_grows_with_bits(arch: Architecture) -> None:
    # Walden figure of merit: E = FoM 2^bits, so E(b) = E(4) 2^(b - 4) from SpikeSim's 4-bit
    # 2.03084 pJ (reference_bits 4 in spikesim.yaml)
    assert event_costs_pj(arch)["adc"] == 2.03084
    costs = [event_costs_pj(_variant(arch, adc={"bits": b}))["adc"] for b in range(1, 13)]
    assert all(b > a for a, b in zip(costs, costs[1:], strict=False))
    for b, cost in zip(range(1, 13), costs, strict=True):
        assert cost == pytest.approx(2.03084 * 2.0 ** (b - 4), rel=REL)
    # the other costs never move with the ADC
    six = event_costs_pj(_variant(arch, adc={"bits": 6}))
    assert {k: v for k, v in six.items() if k != "adc"} == {
        k: v for k, v in event_costs_pj(arch).items() if k != "adc"
    }


# ------------------------------------------------------------------ geometry and PE ops


def test_gap_convention(arch: Architecture) -> None:
    layer = gap("ic_gap", 512, 4, head=3)
    assert spikesim_geometry(layer) == SpikesimGeometry(512, 512, (4, 4), (1, 1))
    m = map_network(arch, G.chain([conv("c", 512, 512, 3, 4), layer])).layer("ic_gap")
    assert m.pe_operations == 8 * 8  # ceil(512/64)^2, 1x1 output
    assert m.crossbars_per_operation == 16


def test_linear_convention(arch: Architecture) -> None:
    layer = linear("fc", 10, 7, head=FC_HEAD)
    assert spikesim_geometry(layer) == SpikesimGeometry(3, 7, (4, 1), (1, 1))  # ceil(10/4) = 3
    big = linear("fc_big", 1024, 100, head=FC_HEAD)
    geom = spikesim_geometry(big)
    assert (geom.in_channels, geom.kernel) == (256, (4, 1))
    head = [conv("c", 3, 1024, 1, 1), gap("g", 1024, 1, FC_HEAD), big]
    m = map_network(arch, G.chain(head)).layer("fc_big")
    assert m.pe_operations == math.ceil(100 / 64) * math.ceil(256 / 64)


def test_conv_geometry_is_unchanged() -> None:
    layer = conv("c", 3, 64, 3, 32)
    assert spikesim_geometry(layer) == (3, 64, (3, 3), (32, 32))


@pytest.mark.parametrize(
    "layer",
    [
        replace(G.gap("g", 64, 4, 3), out_shape=(32, 1, 1)),
        replace(G.gap("g", 64, 4, 3), out_shape=(64, 2, 2)),
        replace(G.linear("l", 64, 10, FC_HEAD), kernel=(3, 3)),
    ],
    ids=["gap_channels", "gap_output", "linear_kernel"],
)
def test_inconsistent_head_geometry_is_refused(layer: Layer) -> None:
    with pytest.raises(ValueError, match=layer.name):
        spikesim_geometry(layer)


# ------------------------------------------------------------------------ whole network


def _energy(arch: Architecture, layers: list[Layer]) -> EnergyBreakdown:
    return spikesim_energy(map_network(arch, G.chain(layers)))


def test_tiny_network_total_by_hand(arch: Architecture) -> None:
    layers = [
        conv("conv0", 3, 64, 3, 32),  # ceil(64/64) ceil(3/64) 32*32 = 1024 PE ops, 3x3
        gap("fc_gap", 64, 32, head=FC_HEAD),  # 1 PE op, 32x32 kernel
        linear("fc", 64, 10, head=FC_HEAD),  # ceil(10/64) ceil(16/64) = 1 PE op, 4x1 kernel
    ]
    result = _energy(arch, layers)
    assert result.pe_operations.tolist() == [1024, 1, 1]
    e_3x3, e_32x32, e_4x1 = (spikesim_e_pe_pj(*k) for k in ((3, 3), (32, 32), (4, 1)))
    assert result.total_pj == pytest.approx(1024 * e_3x3 + e_32x32 + e_4x1, rel=REL)
    per_layer = result.per_layer_pj()
    assert list(per_layer) == ["conv0", "fc_gap", "fc"]
    assert per_layer["conv0"] == pytest.approx(1024 * e_3x3, rel=REL)
    assert per_layer["fc_gap"] == pytest.approx(e_32x32, rel=REL)
    assert per_layer["fc"] == pytest.approx(e_4x1, rel=REL)
    # Tile buffer: one access per PE operation.
    assert result.per_component_pj()["tile_buffer"] == pytest.approx(1026 * 397.0, rel=REL)


def bsf_energy_per_step_pj(name: str, ic: int | None) -> float:
    """BayesianSpikeFusion spikesim_ene.py on its CIFAR-10 VGG (3x32x32, 10 classes): the four
    lists as its code builds them (conv; per classifier an AvgPool layer C -> C with the tapped
    map as kernel and a Dense layer with ceil(F / 4) inputs, kernel (4, 1)), then compute_energy
    with time_steps 1. Channels per block from the paper's VGG19/VGG16 (DESIGN.md)."""
    blocks = {
        "vgg19": [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (256, 1), (256, 1),
                  (512, 2), (512, 1), (512, 1), (512, 1), (512, 2), (512, 1), (512, 1), (512, 1)],
        "vgg16": [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (256, 1), (512, 2),
                  (512, 1), (512, 1), (512, 2), (512, 1), (512, 1)],
    }[name]  # fmt: skip
    in_ch, out_ch, out_dim, kernel = [], [], [], []
    ch, dim, taps = 3, 32, {}
    for i, (c, stride) in enumerate(blocks):
        in_ch.append(ch)
        dim = (dim + 2 - 3) // stride + 1
        ch = c
        out_ch.append(ch)
        out_dim.append((dim, dim))
        kernel.append((3, 3))
        taps[i] = (ch, dim)
    heads = [taps[ic]] if ic is not None else []
    for c, d in [*heads, (ch, dim)]:
        in_ch += [c, math.ceil(c / 4)]
        out_ch += [c, 10]
        out_dim += [(1, 1), (1, 1)]
        kernel += [(d, d), (4, 1)]
    total = 0.0
    for i, o, od, k in zip(in_ch, out_ch, out_dim, kernel, strict=True):
        total += math.ceil(o / 64) * math.ceil(i / 64) * od[0] * od[1] * spikesim_e_pe_pj(*k)
    return total


@pytest.mark.parametrize(("name", "ic"), [("vgg19", None), ("vgg19", 5), ("vgg16", 4)])
def test_bsf_vgg_energy_per_step_is_spikesim_s(arch: Architecture, name: str, ic) -> None:
    heads = () if ic is None else (ic,)
    graph = NetSpec(name, 1.0, (3, 32, 32), 10, heads).graph()
    energy = spikesim_energy(map_network(arch, graph))
    assert energy.total_pj == pytest.approx(bsf_energy_per_step_pj(name, ic), rel=1e-12)
    if name == "vgg19" and ic is None:
        # 11,776 conv PE operations x 828.49 pJ + the FC head: 9.81 uJ per timestep (the
        # paper's 4.33 mJ for DL to its target is ~440 of them)
        assert energy.total_pj == pytest.approx(9.81e6, rel=1e-3)


def _network() -> list[Layer]:
    return [
        G.conv("conv0", 3, 64, 3, 32, 0),
        G.conv("conv1", 64, 128, 3, 16, 1),
        G.conv("conv2", 128, 128, 3, 16, 3),  # the IC's tap
        gap("ic3_gap", 128, 16, head=3),
        linear("ic3_fc", 128, 10, head=3),
        G.conv("conv3", 128, 256, 3, 8, 4),
        gap("fc_gap", 256, 8, head=FC_HEAD),
        linear("fc", 256, 10, head=FC_HEAD),
    ]


def test_select_partitions_energy_exactly(arch: Architecture) -> None:
    whole = _energy(arch, _network())
    backbone = whole.select(lambda layer: layer.head is None)
    ic = whole.select(lambda layer: layer.head == 3)
    fc = whole.select(lambda layer: layer.head == FC_HEAD)
    assert backbone.layer_names == ("conv0", "conv1", "conv2", "conv3")
    assert ic.layer_names == ("ic3_gap", "ic3_fc")
    assert fc.heads == (FC_HEAD, FC_HEAD)
    parts = [backbone, ic, fc]
    order = [whole.layer_names.index(name) for part in parts for name in part.layer_names]
    assert sorted(order) == list(range(len(whole.layers)))
    stacked = np.concatenate([part.energy_pj for part in parts])
    assert np.array_equal(stacked, whole.energy_pj[order])
    assert sum(part.total_pj for part in parts) == pytest.approx(whole.total_pj, rel=REL)
    for name in COMPONENTS:
        total = sum(part.per_component_pj()[name] for part in parts)
        assert total == pytest.approx(whole.per_component_pj()[name], rel=REL)


def test_select_by_mask(arch: Architecture) -> None:
    whole = _energy(arch, _network())
    mask = np.array([True, False, False, False, False, False, False, True])
    part = whole.select(mask)
    assert part.layer_names == ("conv0", "fc")
    assert part.pe_operations.tolist() == [whole.pe_operations[0], whole.pe_operations[7]]
    with pytest.raises(ValueError, match="boolean mask"):
        whole.select([1, 0, 0, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="boolean mask"):
        whole.select(mask[:3])


def test_to_frame_columns_and_units(arch: Architecture) -> None:
    whole = _energy(arch, _network())
    frame = whole.to_frame()
    assert list(frame.columns) == [
        "layer", "kind", "head", "pe_operations", *(f"{c}_pj" for c in COMPONENTS), "total_pj"
    ]  # fmt: skip
    assert len(frame) == len(_network())
    assert frame["layer"].tolist() == list(whole.layer_names)
    assert frame["kind"].tolist()[3:5] == ["gap", "linear"]
    assert frame["head"].isna().tolist() == [h is None for h in whole.heads]
    assert frame.loc[4, "head"] == 3 and frame.loc[7, "head"] == FC_HEAD
    assert frame["pe_operations"].tolist() == whole.pe_operations.tolist()
    component_cols = [f"{c}_pj" for c in COMPONENTS]
    assert np.allclose(frame[component_cols].sum(axis=1), frame["total_pj"], rtol=REL)
    assert frame["total_pj"].sum() == pytest.approx(whole.total_pj, rel=REL)


def test_breakdown_is_read_only_and_checked(arch: Architecture) -> None:
    whole = _energy(arch, _network())
    with pytest.raises(ValueError):
        whole.energy_pj[0, 0] = 0.0
    with pytest.raises(ValueError):
        whole.pe_operations[0] = 0
    layer = conv("a", 3, 8, 3, 4)
    with pytest.raises(ValueError, match="pe_operations"):
        EnergyBreakdown((layer,), COMPONENTS, np.array([1, 2]), np.zeros((1, len(COMPONENTS))))
    with pytest.raises(ValueError, match="unique"):
        EnergyBreakdown((layer, layer), COMPONENTS, np.ones(2), np.zeros((2, len(COMPONENTS))))


# ------------------------------------------------------------------------ run energy

SPECS = [
    NetSpec("vgg11", 1 / 16, (1, 16, 16), 4, (2,)),
    NetSpec("resnet18", 1 / 8, (3, 32, 32), 10, (3,)),
]


def _event(arch: Architecture, **sections: dict) -> Architecture:
    return parse_arch({**_variant(arch, **sections).to_mapping(), "energy_model": "event"}, "e")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_event_model_with_full_activity_equals_spikesim(arch: Architecture, spec) -> None:
    graph = spec.graph()
    event = _event(arch, energy_pj={"noc_flit_hop": 0.0})
    mapping = map_network(event, graph)
    activity = full_activity(mapping, timesteps=3, images=5)
    e = run_energy(mapping, activity)
    s = run_energy(map_network(arch, graph), activity)
    reference = spikesim_energy(map_network(arch, graph))
    k = len(COMPONENTS)
    assert e.components == s.components == EVENT_COMPONENTS
    assert np.array_equal(e.energy_pj[:, :, :k], s.energy_pj[:, :, :k])  # exactly
    for t in range(3):
        assert np.array_equal(s.energy_pj[t, :, :k], reference.energy_pj)
    assert np.array_equal(e.pe_operations[0], reference.pe_operations)
    assert e.total_pj == pytest.approx(3 * reference.total_pj, rel=REL)  # noc costs 0 here
    assert e.events[:, :, -1].sum() > 0  # flit-hops were counted
    assert np.allclose(e.breakdown().energy_pj[:, :k], reference.energy_pj, rtol=REL)


def test_event_model_charges_crossbar_reads_and_operations(arch: Architecture) -> None:
    # conv1 of a 2-layer chain: 4 operations with a driven row, 13 crossbar reads among them
    layers = [conv("conv0", 3, 64, 3, 8), conv("conv1", 64, 64, 3, 8)]
    event = _event(arch)
    mapping = map_network(event, G.chain(layers))
    ops = np.array([[0, 4]])
    reads = np.array([[0, 13]])
    none = np.zeros((1, 2))
    e = run_energy(mapping, LayerActivity(("conv0", "conv1"), 2, ops, reads, none, none))
    per_op = pe_energy_components_pj(arch, (3, 3))
    # per image: 2 operations x every component but the crossbar, 6.5 reads x 8 column groups'
    # sensing (G = 8) x 1.76423 pJ
    expected = 2 * (sum(per_op.values()) - per_op["crossbar"]) + 6.5 * 8 * 1.76423
    assert e.energy_pj[0, 1].sum() == pytest.approx(expected, rel=REL)
    assert e.energy_pj[0, 0].sum() == 0.0
    assert e.events[0, 1, COMPONENTS.index("adc")] == 2 * 64  # one conversion per column


def test_event_noc_charges_flit_hops_by_hand(arch: Architecture) -> None:
    spec = SPECS[0]
    event = _event(
        arch,
        device={"signed_weights": "differential", "slicing": "columns"},
        energy_pj={"noc_flit_hop": 2.0},
    )
    mapping = map_network(event, spec.graph())
    full = full_activity(mapping, timesteps=2, images=4)
    spikes = full.output_spikes.copy()
    spikes[0] = 0
    activity = replace(full, output_spikes=spikes)
    e = run_energy(mapping, activity)
    # conv1's spikes go to conv2 only: Manhattan hops from each channel's home tile to every
    # conv2 tile it feeds
    names = mapping.graph.names
    conv1 = names.index("conv1")
    src, dst = mapping.layer("conv1"), mapping.layer("conv2")
    coords = mapping.tile_coords
    total = 0
    for c in range(src.outputs):
        home = coords[src.crossbar_tiles()[c // src.outputs_per_crossbar, 0]]
        tiles = np.unique(dst.crossbar_tiles()[:, dst.input_row_groups(c)])
        total += sum(int(np.abs(coords[t] - home).sum()) for t in tiles)
    flits = math.ceil(math.ceil(math.log2(src.outputs * 8 * 8)) / event.noc.flit_width_bits)
    noc = spikes[1, conv1] / 4 * flits * total / src.outputs * 2.0
    assert e.energy_pj[1, conv1, -1] == pytest.approx(noc, rel=REL)
    assert e.edge_flit_hops[("conv1", "conv2")][1] * 2.0 == pytest.approx(noc, rel=REL)
    assert e.energy_pj[0, :, -1].sum() == 0.0  # no spikes sent at t = 0
    assert e.cumulative_pj()[-1] == pytest.approx(e.total_pj, rel=REL)


def test_dl_pays_the_same_whichever_ic_is_mapped(arch: Architecture) -> None:
    # the event model with a costly NoC: DL (backbone + FC head) pays neither the spikes sent
    # to an IC head nor for where the IC's tiles sit
    spec = NetSpec("vgg11", 1 / 4, (1, 16, 16), 10, (1, 3, 5))
    event = _event(
        arch,
        device={"signed_weights": "differential", "slicing": "columns"},
        energy_pj={"noc_flit_hop": 20.0},
    )
    dl = {g.name for g in spec.graph().layers_to_head(FC_HEAD)}
    paid = []
    for ic in (1, 3, 5):
        mapping = map_network(event, spec.graph().with_heads({ic, FC_HEAD}))
        activity = full_activity(mapping, timesteps=2, images=1)
        energy = run_energy(mapping, activity)
        paid.append(energy.method_pj(dl, fusion_unit=False))
        tap = spec.graph().head_layers(ic)[0].inputs[0]
        assert energy.edge_flit_hops[(tap, f"ic{ic}.gap")].sum() > 0  # the IC's traffic exists
        assert (tap, f"ic{ic}.gap") not in paid_edges(energy.edge_flit_hops, dl)
        whole = energy.energy_pj.sum(axis=(1, 2))
        assert (whole > paid[-1]).all()
    assert np.array_equal(paid[0], paid[1]) and np.array_equal(paid[0], paid[2])
    assert ("fc.linear", FUSION_UNIT) in paid_edges(energy.edge_flit_hops, dl)


def test_isaac_like_breakdown_has_isaac_s_ordering() -> None:
    # ISAAC (Shafiee et al., ISCA 2016): the ADCs dominate its power; here every 128-column
    # read-out is 128 conversions through the crossbar's one ADC
    isaac = load_arch(ROOT / "arch_configs" / "isaac_like.yaml")
    mapping = map_network(isaac, NetSpec("vgg11", 1 / 4, (3, 32, 32), 10, ()).graph())
    parts = run_energy(mapping, full_activity(mapping, timesteps=1)).per_component_pj()
    assert parts["adc"] > parts["htree"] > 0
    assert parts["adc"] == max(parts.values())
    assert pe_event_counts(isaac, 1)["adc"] == 128


def test_fusion_unit_events_by_hand(arch: Architecture) -> None:
    unit = arch.fusion_unit
    fusion = fusion_events(unit, 10, np.array([3, 0]), np.array([1, 2]), images=2)
    # per step and image (cross-multiplied compare, posterior stop test): 1 LUT read;
    # multiplies 1 + 1 + 2*10 + 2*9 + 1 = 41; compares 9 + 1
    assert fusion.events.tolist() == [[4, 2, 82, 20], [2, 2, 82, 20]]
    mapping = map_network(arch, G.chain([conv("c", 3, 8, 3, 4)]))
    activity = full_activity(mapping, timesteps=2, images=2)
    e = run_energy(mapping, activity, fusion=fusion)
    costs = dict(zip(FUSION_EVENTS, (0.05, 1.0, 0.8, 0.05), strict=True))
    step0 = (4 * costs["counter_increment"] + 2 * 1.0 + 82 * 0.8 + 20 * 0.05) / 2
    assert e.fusion_pj[0] == pytest.approx(step0, rel=REL)
    assert e.per_component_pj()["fusion_unit"] == pytest.approx(e.fusion_pj.sum(), rel=REL)
    assert e.method_pj({"c"}, fusion_unit=True)[0] == pytest.approx(
        e.energy_pj[0].sum() + e.fusion_pj[0], rel=REL
    )
    raw = arch.to_mapping()
    raw["fusion_unit"] = None
    nofu = map_network(parse_arch(raw, "nofu"), mapping.graph)
    with pytest.raises(ValueError, match="fusion_unit"):
        run_energy(nofu, activity, fusion=fusion)


def test_activity_is_checked(arch: Architecture) -> None:
    z = np.zeros((2, 1))
    with pytest.raises(ValueError, match="active_pe_ops"):
        LayerActivity(("c",), 1, np.zeros((2, 2)), z, z, z)
    mapping = map_network(arch, G.chain([conv("c", 3, 8, 3, 4)]))
    with pytest.raises(ValueError, match="do not match"):
        run_energy(mapping, LayerActivity(("d",), 1, z, z, z, z))


def test_layer_patches_match_unfold() -> None:
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    layer = conv("c", 3, 4, 3, 3)  # stride 2, padding 1: 5 -> 3
    patches = layer_patches(x, layer, stride=2, padding=1)
    ref = torch.nn.functional.unfold(x, 3, padding=1, stride=2)  # (N, C*9, L), c-major
    ref = ref.reshape(2, 3, 9, 9).permute(2, 0, 3, 1)  # (P, N, L, C)
    assert torch.equal(patches, ref)
    lin = layer_patches(torch.arange(10.0)[None], linear("l", 10, 2, FC_HEAD))
    assert lin.shape == (4, 1, 1, 3)  # feature f on row f // 4 of position f % 4
    assert lin[:, 0, 0].tolist() == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 0]]
    g = layer_patches(x, gap("g", 3, 5, 1))
    assert g.shape == (25, 2, 1, 3) and g[7, 1, 0].tolist() == x[1, :, 1, 2].tolist()


def test_active_pe_operations_by_hand(arch: Architecture) -> None:
    # 1 image, 70 channels (2 row groups of 64 + 6), 3x3 map, 3x3 kernel, padding 1
    x = torch.zeros(1, 70, 3, 3)
    x[0, 65, 0, 0] = 1  # second channel group, top-left pixel
    layer = conv("c", 70, 130, 3, 3)  # 3 column groups
    patches = layer_patches(x, layer, stride=1, padding=1)
    # windows containing (0, 0): outputs (0,0), (0,1), (1,0), (1,1) -> 4 positions x 1 group
    assert active_pe_operations(layer, arch, patches).tolist() == [4 * 3]
    x[0, 0, 2, 2] = 1  # first group, bottom-right: 4 more windows
    patches = layer_patches(x, layer, stride=1, padding=1)
    assert active_pe_operations(layer, arch, patches).tolist() == [8 * 3]
    unrolled = _variant(arch, mapping={"style": "unrolled"})
    (m,) = map_network(unrolled, G.chain([layer])).layers
    # unrolled rows p*70 + c in groups of 64: 630 rows -> 10 groups; one spike is in 1 group
    # per window it falls in
    assert m.pe_operations == 3 * 10 * 9
    assert active_pe_operations(layer, unrolled, patches).tolist() == [8 * 3]
    full = layer_patches(torch.ones(1, 70, 3, 3), layer, stride=1, padding=1)
    (split,) = map_network(arch, G.chain([layer])).layers
    assert active_pe_operations(layer, arch, full).item() == split.pe_operations
    # unrolled: a border window's zero-padded rows leave some row groups without input
    assert active_pe_operations(layer, unrolled, full).item() < m.pe_operations
