"""The layer graph: edges, roles, populations and depths of VGG and ResNet with heads, by hand."""

import pytest

from hwsim.model.graph import (
    FC_HEAD,
    FUSION_UNIT,
    GraphError,
    LayerGraph,
    LayerKind,
    Role,
    head_tag,
)
from hwsim.model.netspec import NetSpec


def test_head_tag():
    assert head_tag(FC_HEAD) == "fc" and head_tag(8) == "ic8"


def test_vgg11_with_an_ic():
    g = NetSpec("vgg11", 1 / 16, (1, 16, 16), 4, (2,)).graph()
    assert g.names == (
        *(f"conv{i}" for i in range(8)),
        "ic2.gap", "ic2.linear", "fc.gap", "fc.linear",
    )  # fmt: skip
    assert g.heads == (2, FC_HEAD)
    conv0, conv2 = g.layer("conv0"), g.layer("conv2")
    assert conv0.inputs == () and conv0.in_shape == (1, 16, 16) and conv0.role is Role.BACKBONE
    # vgg11 channels 64, 128s2, 256s2 at width 1/16: 4, 8, 16; maps 16, 8, 4
    assert conv2.in_shape == (8, 8, 8) and conv2.out_shape == (16, 4, 4)
    assert (conv2.kernel, conv2.stride, conv2.padding) == ((3, 3), 2, 1)
    assert conv2.weight_shape == (16, 8, 3, 3)
    gap, lin = g.head_layers(2)
    assert gap.inputs == ("conv2",) and gap.kind is LayerKind.GAP and gap.role is Role.IC_HEAD
    assert gap.kernel == (4, 4) and gap.out_shape == (16, 1, 1) and gap.weight_shape == ()
    assert lin.inputs == ("ic2.gap",) and lin.weight_shape == (4, 16) and lin.head == 2
    assert g.layer("fc.gap").inputs == ("conv7",) and g.layer("fc.gap").role is Role.FC_HEAD
    edges = g.spike_edges()
    assert len(edges) == 7 + 2 * 2 + 2  # backbone chain, GAP + Linear per head, to fusion
    assert ("conv2", "ic2.gap") in edges and ("ic2.linear", FUSION_UNIT) in edges
    assert ("fc.linear", FUSION_UNIT) in edges
    pops = g.populations()
    assert [p.depth for p in pops][:8] == list(range(8))
    assert {p.name: p.depth for p in pops}["ic2.linear"] == 4  # conv2 at 2, GAP 3, Linear 4
    assert [p.name for p in pops if p.head_output] == ["ic2.linear", "fc.linear"]
    assert [layer.name for layer in g.layers_to_head(2)] == [
        "conv0", "conv1", "conv2", "ic2.gap", "ic2.linear",
    ]  # fmt: skip
    assert g.with_heads({FC_HEAD}).heads == (FC_HEAD,)


def test_resnet18_blocks_join_and_skip():
    g = NetSpec("resnet18", 1 / 16, (1, 16, 16), 4, (3,)).graph()
    skip, conv1, conv2 = (g.layer(f"block3.{n}") for n in ("skip", "conv1", "conv2"))
    # block 3 opens stage 2 (stride 2): 4 -> 8 channels, 16 -> 8 map
    assert skip.role is Role.SKIP and not skip.sends_spikes and skip.kernel == (1, 1)
    assert skip.inputs == conv1.inputs == ("block2.conv2",)
    assert skip.population == conv2.population == "block3.join"
    assert conv2.inputs == ("block3.conv1",) and conv1.population == "block3.conv1"
    assert skip.out_shape == conv2.out_shape == (8, 8, 8)
    parts = g.block_layers(3)
    assert (parts.conv, parts.conv2, parts.skip) == (conv1, conv2, skip)
    assert g.block_layers(0).conv2 is None  # the stem conv
    assert g.layer("ic3.gap").inputs == ("block3.conv2",)
    assert sorted(g.predecessors("block3.conv2")) == ["block3.conv1", "block3.skip"]
    edges = g.spike_edges()
    assert not any(src.endswith(".skip") for src, _ in edges)  # a skip sends no spikes
    pops = {p.name: p for p in g.populations()}
    assert "block3.skip" not in pops
    assert pops["block3.join"].layers == ("block3.skip", "block3.conv2")
    # conv0 depth 0; each residual block adds two steps (conv1, then the join)
    assert pops["block1.conv1"].depth == 1 and pops["block1.join"].depth == 2
    assert pops["block3.join"].depth == 6


def test_malformed_graphs_are_refused():
    g = NetSpec("vgg11", 1 / 16, (1, 16, 16), 4).graph()
    layers = list(g.layers)
    with pytest.raises(GraphError, match="not an earlier layer"):
        LayerGraph((layers[1], layers[0], *layers[2:]), g.input_shape, g.classes)
    with pytest.raises(GraphError, match="used twice"):
        LayerGraph((*layers, layers[0]), g.input_shape, g.classes)
