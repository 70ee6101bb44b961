"""The network as data: one typed layer graph that every stage reads.

A `Layer` is one crossbar-mapped weight layer (a convolution, a global average pooling, a
Linear layer) with its shapes, its role in the network and its explicit input edge; a layer's
current drives one population of integrate-and-fire neurons (`Population`). A residual block is
three layers: conv1 (block input -> its own population), conv2 (conv1's spikes -> the join
population) and a 1x1 skip conv (block input -> the join population, adding its current into
the join's neurons; it sends no spikes of its own). A classifier head is a GAP layer on its tap
and a Linear layer; the Linear's spikes go to the IC + fusion unit (`FUSION_UNIT`).

The graph is built once, from a network specification (`build_graph`, used by
`hwsim.model.nets.NetSpec.graph`) or later from an interchange file, and handed to the engine plan,
conversion, mapping, energy, timing, area and the functional mode. Nothing outside this module
derives structure from layer names: stages ask the graph (`inputs`, `population`, `role`,
`head`, `spike_edges`, `predecessors`, `ancestors`).

Shapes are (C, H, W); a Linear layer's input is (features, 1, 1). Every spiking population
delays its output by one timestep, so a population's `depth` is the number of one-step delays
between the network input and its input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from hwsim.errors import ModelError

FC_HEAD = -1
"""Head index of the final classifier (FC); an internal classifier (IC) uses its tap block."""

FUSION_UNIT = "fusion_unit"
"""Consumer name of the IC + fusion unit module: every head's Linear spikes go there."""

Shape = tuple[int, int, int]


def head_tag(head: int) -> str:
    """'fc' for the final classifier, 'ic<block>' for an internal classifier."""
    return "fc" if head == FC_HEAD else f"ic{head}"


def conv_out_hw(hw: tuple[int, int], k: int, stride: int, pad: int) -> tuple[int, int]:
    """Output map of a k x k convolution: floor((H + 2 pad - k) / stride) + 1 per side."""
    return ((hw[0] + 2 * pad - k) // stride + 1, (hw[1] + 2 * pad - k) // stride + 1)


class LayerKind(StrEnum):
    """What a layer computes."""

    CONV = "conv"
    GAP = "gap"  # global average pooling of its input map, per channel
    LINEAR = "linear"


class Pool(StrEnum):
    """A local pooling layer's operation on its input spikes (a channel-diagonal k x k window,
    hw/pooling.py maps it to the tile's pooling unit, not to crossbars)."""

    AVG = "avg"  # weight 1 / (k_h k_w) on each channel's window (torch's count_include_pad)
    SUM = "sum"  # weight 1 (sinabs' SumPool2d)
    MAX = "max"  # weight 1, its population fires at V >= 1 and resets to 0: the window's OR


class Role(StrEnum):
    """A layer's place in the network."""

    BACKBONE = "backbone"
    SKIP = "skip"  # a residual block's shortcut: adds into the join, sends no spikes
    IC_HEAD = "ic_head"
    FC_HEAD = "fc_head"


class BlockKind(StrEnum):
    CONV = "conv"  # conv 3x3 + BN + ReLU
    RESIDUAL = "residual"  # conv1, conv2 and a 1x1 skip conv joined before the ReLU


@dataclass(frozen=True)
class BlockSpec:
    """One backbone block of a model-zoo network, with its input map size."""

    kind: BlockKind
    in_channels: int
    out_channels: int
    stride: int
    in_hw: tuple[int, int]

    @property
    def out_hw(self) -> tuple[int, int]:
        return conv_out_hw(self.in_hw, 3, self.stride, 1)


@dataclass(frozen=True)
class Neuron:
    """A population's neuron step per timestep (docs/engine.md), on the membrane V (in the
    units of the threshold theta) and the input current I:

        V <- leak V + (1 - leak) v_leak + gain I;  s = [V >= theta] ([V > theta]: `strict`);
        V <- V - theta s

    or, `delayed_reset` (snntorch's default reset_delay), V <- leak V + (1 - leak) v_leak +
    gain I - theta s(t - 1) and no subtraction at the spike; or, `reset_to` set (norse's and
    spikingjelly's hard reset), V <- reset_to at a spike instead of V - theta. V starts at
    `v_init` (None: the network's V0; norse and spikingjelly start at v_reset). leak and gain
    are unitless factors per step, v_leak, reset_to and v_init potentials (theta's units); all
    are rounded to float32 (the engine's arithmetic). The default is hwsim's IF neuron."""

    leak: float = 1.0
    gain: float = 1.0
    v_leak: float = 0.0
    strict: bool = False
    delayed_reset: bool = False
    reset_to: float | None = None  # None: subtract theta at a spike
    v_init: float | None = None  # None: the network's V0

    def __post_init__(self) -> None:
        for what in ("leak", "gain", "v_leak", "reset_to", "v_init"):
            if getattr(self, what) is None:
                continue
            v = float(getattr(self, what))
            if not np.isfinite(np.float32(v)):
                raise GraphError(f"neuron {what} = {v:g}: expected a finite float32 value")
            object.__setattr__(self, what, float(np.float32(v)))
        if self.reset_to is not None and self.delayed_reset:
            raise GraphError("a neuron resets to a potential or by a delayed subtraction, not both")

    @property
    def leaky(self) -> bool:
        """Not the plain IF step: the engine's leaky path (the IF path never multiplies)."""
        return (
            self.leak != 1
            or self.gain != 1
            or self.v_leak != 0
            or self.delayed_reset
            or self.reset_to is not None
        )

    def start(self, v0: float) -> float:
        """The potential V starts at: v_init, else the network's V0 (theta's units)."""
        return v0 if self.v_init is None else self.v_init

    @property
    def v_rest(self) -> float:
        """(1 - leak) v_leak, the constant the leak adds per step, rounded to float32."""
        return float(np.float32((1 - self.leak) * self.v_leak))


IF_NEURON = Neuron()
"""hwsim's integrate-and-fire neuron: no leak, unit gain, fires at V >= theta."""


@dataclass(frozen=True)
class Layer:
    """One crossbar-mapped weight layer.

    `inputs`: the layers whose output spikes it reads (empty: the network input).
    `population`: the IF population its current drives; `sends_spikes`: it owns that
    population's spikes and sends them over the NoC (False for a residual skip conv).
    `head`: None for the backbone, the tap block for an IC head's layers, FC_HEAD for the FC's;
    `block`: the backbone block of a backbone layer. A GAP layer's kernel is its input map.
    `neuron`: the step of the population it drives (the same for all of its layers).
    `pool`: None for a weight layer; the operation of a local pooling layer (a CONV whose
    weight is the channel-diagonal window that `pool` names).
    """

    name: str
    kind: LayerKind
    role: Role
    in_shape: Shape
    out_shape: Shape
    kernel: tuple[int, int]
    stride: int
    padding: int
    inputs: tuple[str, ...]
    population: str
    sends_spikes: bool = True
    head: int | None = None
    block: int | None = None
    neuron: Neuron = IF_NEURON
    pool: Pool | None = None

    @property
    def in_channels(self) -> int:
        return self.in_shape[0]

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]

    @property
    def out_hw(self) -> tuple[int, int]:
        return self.out_shape[1], self.out_shape[2]

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """(C_out, C_in, k_h, k_w) for a conv, (C_out, C_in) for a Linear, () for GAP."""
        if self.kind is LayerKind.CONV:
            return (self.out_channels, self.in_channels, *self.kernel)
        if self.kind is LayerKind.LINEAR:
            return (self.out_channels, self.in_channels)
        return ()

    @property
    def neurons(self) -> int:
        """Neurons of the population it drives, per image."""
        c, h, w = self.out_shape
        return c * h * w

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one dense forward pass of this layer."""
        kh, kw = self.kernel
        ho, wo = self.out_hw
        if self.kind is LayerKind.GAP:
            return self.in_channels * kh * kw
        return self.in_channels * self.out_channels * kh * kw * ho * wo


@dataclass(frozen=True)
class Population:
    """Neurons (IF unless `neuron` says otherwise) driven by the sum of the currents of
    `layers` (graph order)."""

    name: str
    shape: Shape
    layers: tuple[str, ...]
    depth: int  # one-step delays between the network input and this population's input
    head_output: bool  # the last population of a classifier head
    flat: bool  # a vector (N, C), not a map: driven by a GAP or Linear layer
    neuron: Neuron = IF_NEURON

    @property
    def neurons(self) -> int:
        c, h, w = self.shape
        return c * h * w


@dataclass(frozen=True)
class ResidualLayers:
    """The layers of one backbone block: `conv` (conv1 of a residual block); conv2 and skip
    are None for a plain conv block."""

    conv: Layer
    conv2: Layer | None = None
    skip: Layer | None = None


class GraphError(ModelError):
    """A layer graph that is not well formed."""


@dataclass(frozen=True)
class LayerGraph:
    """The network's layers in a topological order (a layer's inputs come before it)."""

    layers: tuple[Layer, ...]
    input_shape: Shape
    classes: int

    def __post_init__(self) -> None:
        seen: dict[str, Layer] = {}
        senders: dict[str, str] = {}
        neurons: dict[str, Neuron] = {}
        for layer in self.layers:
            if neurons.setdefault(layer.population, layer.neuron) != layer.neuron:
                raise GraphError(
                    f"{layer.name}: population {layer.population!r} has two neuron models"
                )
            if layer.name in seen or layer.name == FUSION_UNIT:
                raise GraphError(f"layer name {layer.name!r} is used twice or reserved")
            for src in layer.inputs:
                if src not in seen:
                    raise GraphError(f"{layer.name}: input {src!r} is not an earlier layer")
                if not seen[src].sends_spikes:
                    raise GraphError(f"{layer.name}: input {src!r} sends no spikes")
            if layer.sends_spikes:
                if layer.population in senders:
                    raise GraphError(
                        f"population {layer.population!r} has two senders:"
                        f" {senders[layer.population]} and {layer.name}"
                    )
                senders[layer.population] = layer.name
            seen[layer.name] = layer
        for layer in self.layers:
            if layer.population not in senders:
                raise GraphError(f"population {layer.population!r} has no sending layer")

    # ------------------------------------------------------------------ lookups

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r} in the graph")

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no layer {name!r} in the graph") from None

    @property
    def heads(self) -> tuple[int, ...]:
        """Classifier heads in graph order (ICs by tap, then FC)."""
        out: list[int] = []
        for layer in self.layers:
            if layer.head is not None and layer.head not in out:
                out.append(layer.head)
        return tuple(out)

    def head_layers(self, head: int) -> tuple[Layer, ...]:
        layers = tuple(layer for layer in self.layers if layer.head == head)
        if not layers:
            raise KeyError(f"no {head_tag(head)} head in the graph")
        return layers

    def head_output(self, head: int) -> Layer:
        """The layer whose spikes are head `head`'s class outputs."""
        return self.head_layers(head)[-1]

    @property
    def backbone(self) -> tuple[Layer, ...]:
        return tuple(layer for layer in self.layers if layer.head is None)

    def block_layers(self, block: int) -> ResidualLayers:
        """The layers of backbone block `block`: its conv, or conv1, conv2 and skip."""
        members = [layer for layer in self.backbone if layer.block == block]
        if not members:
            raise KeyError(f"no backbone block {block} in the graph")
        skip = next((m for m in members if m.role is Role.SKIP), None)
        convs = [m for m in members if m.role is not Role.SKIP]
        if len(convs) == 1:
            return ResidualLayers(convs[0], None, skip)
        first = next(m for m in convs if not any(i in {c.name for c in convs} for i in m.inputs))
        second = next(m for m in convs if m is not first)
        return ResidualLayers(first, second, skip)

    def sender(self, population: str) -> Layer:
        """The layer that sends `population`'s spikes."""
        for layer in self.layers:
            if layer.population == population and layer.sends_spikes:
                return layer
        raise KeyError(f"no population {population!r} in the graph")

    # ------------------------------------------------------------------ structure

    def populations(self) -> tuple[Population, ...]:
        """The IF populations, ordered by their sending layer's position in the graph."""
        depth: dict[str, int] = {}
        members: dict[str, list[str]] = {}
        for layer in self.layers:
            d = max((depth[self.layer(i).population] for i in layer.inputs), default=-1) + 1
            depth[layer.population] = max(depth.get(layer.population, 0), d)
            members.setdefault(layer.population, []).append(layer.name)
        outputs = {self.head_output(h).population for h in self.heads}
        return tuple(
            Population(
                layer.population,
                layer.out_shape,
                tuple(members[layer.population]),
                depth[layer.population],
                layer.population in outputs,
                layer.kind is not LayerKind.CONV,
                layer.neuron,
            )
            for layer in self.layers
            if layer.sends_spikes
        )

    def spike_edges(self) -> list[tuple[str, str]]:
        """Where spikes travel, as (producer, consumer) layer names: every layer's inputs, then
        every head's output to `FUSION_UNIT`. A skip conv's current joins its population
        inside the block and is no edge."""
        edges = [(src, layer.name) for layer in self.layers for src in layer.inputs]
        edges += [(self.head_output(h).name, FUSION_UNIT) for h in self.heads]
        return edges

    def predecessors(self, name: str) -> tuple[str, ...]:
        """The layers `name` waits for at each timestep: its inputs, and the earlier layers
        whose current joins the same population (a residual skip for conv2)."""
        layer = self.layer(name)
        joins = tuple(
            other.name
            for other in self.layers[: self.index(name)]
            if other.population == layer.population
        )
        return layer.inputs + joins

    def ancestors(self, name: str) -> tuple[str, ...]:
        """Every layer `name` depends on (through inputs and joins), in graph order."""
        need = {name}
        for layer in reversed(self.layers):
            if layer.name in need:
                need.update(self.predecessors(layer.name))
        need.discard(name)
        return tuple(n for n in self.names if n in need)

    def layers_to_head(self, head: int) -> tuple[Layer, ...]:
        """The layers head `head`'s output needs: its ancestors and itself (paper eq. 32's
        N_MAC counts these)."""
        out = self.head_output(head)
        keep = set(self.ancestors(out.name)) | {out.name}
        return tuple(layer for layer in self.layers if layer.name in keep)

    def macs_to_head(self, head: int) -> int:
        """MACs of one ANN forward pass from the input to head `head` (paper eq. 32's N_MAC)."""
        return sum(layer.macs for layer in self.layers_to_head(head))

    def with_heads(self, heads: Iterable[int]) -> LayerGraph:
        """The backbone with only the given heads."""
        keep = set(heads)
        missing = keep - set(self.heads)
        if missing:
            raise KeyError(f"no {', '.join(head_tag(h) for h in sorted(missing))} head")
        layers = tuple(lay for lay in self.layers if lay.head is None or lay.head in keep)
        return replace(self, layers=layers)


def _conv(
    name: str,
    role: Role,
    in_shape: Shape,
    out_channels: int,
    k: int,
    stride: int,
    pad: int,
    inputs: tuple[str, ...],
    population: str,
    block: int,
) -> Layer:
    out_hw = conv_out_hw(in_shape[1:], k, stride, pad)
    return Layer(
        name,
        LayerKind.CONV,
        role,
        in_shape,
        (out_channels, *out_hw),
        (k, k),
        stride,
        pad,
        inputs,
        population,
        sends_spikes=role is not Role.SKIP,
        block=block,
    )


def build_graph(
    input_shape: Shape, blocks: Sequence[BlockSpec], head_taps: dict[int, int], classes: int
) -> LayerGraph:
    """The graph of a model-zoo network: `blocks` in order, then for each head (in the order of
    `head_taps`, head -> tap block) a GAP and a Linear layer.

    Names: conv{i} for a conv block; block{i}.skip, block{i}.conv1, block{i}.conv2 for a
    residual block (populations block{i}.conv1 and block{i}.join); {tag}.gap and
    {tag}.linear for a head (`head_tag`).
    """
    layers: list[Layer] = []
    src: tuple[str, ...] = ()
    shape = input_shape
    block_out: list[tuple[str, Shape]] = []
    for i, b in enumerate(blocks):
        if b.kind is BlockKind.CONV:
            conv = _conv(
                f"conv{i}", Role.BACKBONE, shape, b.out_channels, 3, b.stride, 1, src, f"conv{i}", i
            )
            layers.append(conv)
        else:
            join = f"block{i}.join"
            skip = _conv(
                f"block{i}.skip", Role.SKIP, shape, b.out_channels, 1, b.stride, 0, src, join, i
            )
            conv1 = _conv(
                f"block{i}.conv1",
                Role.BACKBONE,
                shape,
                b.out_channels,
                3,
                b.stride,
                1,
                src,
                f"block{i}.conv1",
                i,
            )
            conv = _conv(
                f"block{i}.conv2",
                Role.BACKBONE,
                conv1.out_shape,
                b.out_channels,
                3,
                1,
                1,
                (conv1.name,),
                join,
                i,
            )
            if skip.out_shape != conv.out_shape:
                raise GraphError(f"block {i}: skip output {skip.out_shape} != {conv.out_shape}")
            layers += [skip, conv1, conv]
        src, shape = (conv.name,), conv.out_shape
        block_out.append((conv.name, shape))
    for head, tap in head_taps.items():
        if not 0 <= tap < len(block_out):
            raise GraphError(f"head {head_tag(head)}: tap block {tap} out of range")
        tag = head_tag(head)
        role = Role.FC_HEAD if head == FC_HEAD else Role.IC_HEAD
        tap_name, (c, h, w) = block_out[tap]
        layers.append(
            Layer(
                f"{tag}.gap",
                LayerKind.GAP,
                role,
                (c, h, w),
                (c, 1, 1),
                (h, w),
                1,
                0,
                (tap_name,),
                f"{tag}.gap",
                head=head,
            )
        )
        layers.append(
            Layer(
                f"{tag}.linear",
                LayerKind.LINEAR,
                role,
                (c, 1, 1),
                (classes, 1, 1),
                (1, 1),
                1,
                0,
                (f"{tag}.gap",),
                f"{tag}.linear",
                head=head,
            )
        )
    return LayerGraph(tuple(layers), input_shape, classes)
