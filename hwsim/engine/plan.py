"""A converted network as the engine sees it: spiking layers and the weight layers between them.

A *spiking layer* is one population of IF neurons (`hwsim.model.graph.Population`, a name in
`layer_names`); a *connection* is one layer of the graph (`hwsim.model.graph.Layer`) that carries
spikes from a source spiking layer (or the network input, src = -1) into a destination spiking
layer. Both come from the network's `LayerGraph` in its order. Arrays are channels-last
(H, W, C), weights (kh, kw, C_in, C_out), all float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch
import torch.nn.functional as F

from hwsim.model.convert import SpikingNetwork
from hwsim.model.graph import IF_NEURON, LayerKind, Neuron


class ConnKind(IntEnum):
    CONV = 0  # a convolution (a Linear layer is a 1x1 convolution on a 1x1 map)
    GAP = 1  # global average pooling: mean over H, W per channel


@dataclass(frozen=True, eq=False)
class Conn:
    """One crossbar-mapped weight layer."""

    name: str
    kind: ConnKind
    src: int  # spiking layer index; -1 = the network input
    dst: int
    in_shape: tuple[int, int, int]  # (H, W, C_in)
    out_shape: tuple[int, int, int]  # (H_out, W_out, C_out)
    kernel: tuple[int, int]
    stride: int
    pad: int
    weight: np.ndarray  # (kh, kw, C_in, C_out) float32; GAP: (0, 0, 0, 0)
    bias: np.ndarray  # (C_out,) float32; GAP: zeros
    torch_weight: torch.Tensor | None = None  # original layout (conv: O,I,kh,kw; linear: O,I)
    torch_bias: torch.Tensor | None = None
    linear: bool = False  # a Linear layer (computed as a 1x1 conv on a 1x1 map)

    def torch_forward(self, x: torch.Tensor, with_bias: bool = True) -> torch.Tensor:
        """The dense torch op of this connection on NCHW (GAP/linear: N,C) input."""
        if self.kind is ConnKind.GAP:
            return x.mean(dim=(2, 3))
        b = self.torch_bias if with_bias else None
        if self.linear:
            return F.linear(x, self.torch_weight, b)
        return F.conv2d(x, self.torch_weight, b, self.stride, self.pad)

    def out_index(self, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each input index i along `axis` (0 = rows, 1 = columns): the (kernel offset,
        output index) pairs that read it, as (count (n,), k (n, K), o (n, K)) int64 arrays."""
        n_in, n_out = self.in_shape[axis], self.out_shape[axis]
        kk = self.kernel[axis]
        k = np.broadcast_to(np.arange(kk, dtype=np.int64), (n_in, kk))
        num = np.arange(n_in, dtype=np.int64)[:, None] + self.pad - k
        o = num // self.stride
        valid = (num % self.stride == 0) & (o >= 0) & (o < n_out)
        first = np.argsort(~valid, axis=1, kind="stable")  # the valid k of each i, in order
        count = valid.sum(axis=1)
        listed = k < count[:, None]
        ks = np.where(listed, np.take_along_axis(k, first, axis=1), 0)
        os_ = np.where(listed, np.take_along_axis(o, first, axis=1), 0)
        return count, ks, os_


@dataclass(frozen=True)
class Neurons:
    """One spiking layer (a population; its step: `neuron`, IF unless leaky)."""

    name: str
    shape: tuple[int, int, int]  # (H, W, C)
    depth: int  # one-step delays between the network input and this layer's input
    output: bool  # the last layer of a classifier head
    bias: np.ndarray  # (C,) float32: the sum of its connections' biases
    flat: bool = False  # a 1 x 1 map the dense backend holds as (N, C)
    neuron: Neuron = IF_NEURON

    @property
    def neurons(self) -> int:
        h, w, c = self.shape
        return h * w * c


@dataclass(frozen=True)
class Plan:
    layers: tuple[Neurons, ...]
    conns: tuple[Conn, ...]
    heads: dict[int, int]  # head index -> index of its Linear spiking layer
    input_shape: tuple[int, int, int]  # (H, W, C)
    threshold: float
    v0: float
    classes: int

    def conns_into(self, j: int) -> list[int]:
        return [g for g, c in enumerate(self.conns) if c.dst == j]

    @property
    def leaky(self) -> bool:
        """Some layer steps leaky neurons (docs/engine.md)."""
        return any(ly.neuron.leaky for ly in self.layers)


def layer_names(snn: SpikingNetwork) -> tuple[str, ...]:
    """Names of the spiking layers, in the order of SimResult.layer_spikes."""
    return tuple(p.name for p in snn.graph.populations())


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def _kernel_major(t: torch.Tensor) -> np.ndarray:
    """Weights (C_out, C_in, kh, kw) (a Linear's: (C_out, C_in)) as (kh, kw, C_in, C_out): by
    torch's blocked 2-D transpose to (C_in kh kw, C_out), then moving whole rows of C_out (49
    ms for a full-width VGG19's 20 M weights, against 89 for numpy's strided copy)."""
    w = t.detach().cpu().float()
    w = w.reshape(*w.shape, 1, 1) if w.dim() == 2 else w
    c_out, c_in, kh, kw = w.shape
    rows = w.reshape(c_out, -1).t().contiguous().numpy().reshape(c_in, kh, kw, c_out)
    return np.array(rows.transpose(1, 2, 0, 3), order="C")  # a copy, never the tensor's memory


def build_plan(snn: SpikingNetwork) -> Plan:
    """The engine's view of `snn`: its graph's populations and layers, with the weights."""
    graph = snn.graph
    pops = graph.populations()
    index = {p.name: j for j, p in enumerate(pops)}
    conns: list[Conn] = []
    for layer in graph.layers:
        src = index[graph.layer(layer.inputs[0]).population] if layer.inputs else -1
        c_in, h, w = layer.in_shape
        c_out, ho, wo = layer.out_shape
        if layer.kind is LayerKind.GAP:
            weight = np.zeros((0, 0, 0, 0), np.float32)
            bias = np.zeros(c_out, np.float32)
            tw = tb = None
        else:
            wts = snn.weights[layer.name]
            tw, tb = wts.weight, wts.bias
            bias = _np(tb)
            weight = _kernel_major(tw)
        conns.append(
            Conn(
                layer.name,
                ConnKind.GAP if layer.kind is LayerKind.GAP else ConnKind.CONV,
                src,
                index[layer.population],
                (h, w, c_in),
                (ho, wo, c_out),
                layer.kernel,
                layer.stride,
                layer.padding,
                weight,
                bias,
                tw,
                tb,
                linear=layer.kind is LayerKind.LINEAR,
            )
        )
    neurons = []
    for j, p in enumerate(pops):
        biases = [c.bias for c in conns if c.dst == j]
        total = biases[0]
        for b in biases[1:]:
            total = (total + b).astype(np.float32)
        c, h, w = p.shape
        neurons.append(Neurons(p.name, (h, w, c), p.depth, p.head_output, total, p.flat, p.neuron))
    heads = {h: index[graph.head_output(h).population] for h in graph.heads}
    return Plan(
        tuple(neurons),
        tuple(conns),
        heads,
        (graph.input_shape[1], graph.input_shape[2], graph.input_shape[0]),
        float(snn.params.threshold),
        float(snn.params.v0),
        graph.classes,
    )
