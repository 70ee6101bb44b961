"""A converted network as the engine sees it: spiking layers and the weight layers between them.

A *spiking layer* is one population of IF neurons (a name in `layer_names`); a *connection* is one
crossbar-mapped weight layer (a name in `hwsim.nets.layer_geometry`) that carries spikes from a
source spiking layer (or the network input, src = -1) into a destination spiking layer. A VGG
block is one connection into one layer; a residual block is conv1 (input -> conv1 layer), conv2
(conv1 layer -> join layer) and skip (input -> join layer); a head is a GAP connection (tap ->
gap layer) and a Linear connection (gap layer -> linear layer). Arrays are channels-last
(H, W, C), weights (kh, kw, C_in, C_out), all float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch
import torch.nn.functional as F

from hwsim.convert import SpikingConv, SpikingNetwork
from hwsim.hw.layers import FC_HEAD


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
        count = np.zeros(n_in, np.int64)
        ks = np.zeros((n_in, kk), np.int64)
        os_ = np.zeros((n_in, kk), np.int64)
        for i in range(n_in):
            for k in range(kk):
                num = i + self.pad - k
                if num % self.stride == 0 and 0 <= num // self.stride < n_out:
                    ks[i, count[i]] = k
                    os_[i, count[i]] = num // self.stride
                    count[i] += 1
        return count, ks, os_


@dataclass(frozen=True)
class Layer:
    """One spiking layer (population of IF neurons)."""

    name: str
    shape: tuple[int, int, int]  # (H, W, C)
    depth: int  # one-step delays between the network input and this layer's input
    output: bool  # the last layer of a classifier head
    bias: np.ndarray  # (C,) float32: the sum of its connections' biases

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class Plan:
    layers: tuple[Layer, ...]
    conns: tuple[Conn, ...]
    heads: dict[int, int]  # head index -> index of its Linear spiking layer
    input_shape: tuple[int, int, int]  # (H, W, C)
    threshold: float
    v0: float
    classes: int

    def conns_into(self, j: int) -> list[int]:
        return [g for g, c in enumerate(self.conns) if c.dst == j]


def layer_names(snn: SpikingNetwork) -> tuple[str, ...]:
    """Names of the spiking layers, in the order of SimResult.layer_spikes."""
    names: list[str] = []
    for i, b in enumerate(snn.blocks):
        names += [f"block{i}.conv1", f"block{i}.join"] if b.is_residual else [f"conv{i}"]
    for h in snn.heads:
        tag = "fc" if h == FC_HEAD else f"ic{h}"
        names += [f"{tag}.gap", f"{tag}.linear"]
    return tuple(names)


def _out_hw(h: int, w: int, k: int, s: int, p: int) -> tuple[int, int]:
    return (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def build_plan(snn: SpikingNetwork) -> Plan:
    """The engine's view of `snn` (shapes follow from the input shape and the weights)."""
    c_in, h_in, w_in = snn.spec.input_shape
    names = layer_names(snn)
    layers: list[Layer] = []
    conns: list[Conn] = []

    def conv_conn(name: str, m: SpikingConv, src: int, dst: int, shape: tuple[int, int, int]):
        c_out, cin, kh, kw = m.weight.shape
        if cin != shape[2] or kh != kw:
            raise ValueError(f"{name}: weight {tuple(m.weight.shape)} does not fit input {shape}")
        ho, wo = _out_hw(shape[0], shape[1], kh, m.stride, m.padding)
        conns.append(
            Conn(
                name,
                ConnKind.CONV,
                src,
                dst,
                shape,
                (ho, wo, c_out),
                (kh, kw),
                m.stride,
                m.padding,
                np.ascontiguousarray(_np(m.weight).transpose(2, 3, 1, 0)),
                _np(m.bias),
                m.weight,
                m.bias,
            )
        )
        return ho, wo, c_out

    src, src_shape, src_depth = -1, (h_in, w_in, c_in), -1
    block_out: list[tuple[int, tuple[int, int, int], int]] = []
    for i, b in enumerate(snn.blocks):
        if b.is_residual:
            assert b.conv2 is not None and b.skip is not None
            j1, jj = len(layers), len(layers) + 1
            d1 = src_depth + 1
            conns_before = len(conns)
            shape1 = conv_conn(f"block{i}.conv1", b.conv, src, j1, src_shape)
            layers.append(Layer(names[j1], shape1, d1, False, conns[-1].bias))
            shape_s = conv_conn(f"block{i}.skip", b.skip, src, jj, src_shape)
            shape_2 = conv_conn(f"block{i}.conv2", b.conv2, j1, jj, shape1)
            if shape_s != shape_2:
                raise ValueError(f"block {i}: skip output {shape_s} != conv2 output {shape_2}")
            # layer_geometry's order within a residual block: skip, conv1, conv2
            skip, c1 = conns[conns_before + 1], conns[conns_before]
            conns[conns_before], conns[conns_before + 1] = skip, c1
            bias = (conns[-1].bias + skip.bias).astype(np.float32)
            layers.append(Layer(names[jj], shape_2, max(src_depth, d1) + 1, False, bias))
            src, src_shape, src_depth = jj, shape_2, max(src_depth, d1) + 1
        else:
            j = len(layers)
            shape = conv_conn(f"conv{i}", b.conv, src, j, src_shape)
            layers.append(Layer(names[j], shape, src_depth + 1, False, conns[-1].bias))
            src, src_shape, src_depth = j, shape, src_depth + 1
        block_out.append((src, src_shape, src_depth))
    heads: dict[int, int] = {}
    classes = snn.spec.num_classes
    for h, hd in snn.heads.items():
        tag = "fc" if h == FC_HEAD else f"ic{h}"
        tap, (th, tw, tc), tdepth = block_out[hd.tap]
        jg, jl = len(layers), len(layers) + 1
        zeros = np.zeros(tc, np.float32)
        conns.append(
            Conn(
                f"{tag}.gap",
                ConnKind.GAP,
                tap,
                jg,
                (th, tw, tc),
                (1, 1, tc),
                (th, tw),
                1,
                0,
                np.zeros((0, 0, 0, 0), np.float32),
                zeros,
            )
        )
        layers.append(Layer(names[jg], (1, 1, tc), tdepth + 1, False, zeros))
        w = _np(hd.weight)
        if w.shape != (classes, tc):
            raise ValueError(f"head {h}: weight {w.shape}, expected {(classes, tc)}")
        conns.append(
            Conn(
                f"{tag}.linear",
                ConnKind.CONV,
                jg,
                jl,
                (1, 1, tc),
                (1, 1, classes),
                (1, 1),
                1,
                0,
                np.ascontiguousarray(w.T.reshape(1, 1, tc, classes)),
                _np(hd.bias),
                hd.weight,
                hd.bias,
                linear=True,
            )
        )
        layers.append(Layer(names[jl], (1, 1, classes), tdepth + 2, True, conns[-1].bias))
        heads[h] = jl
    return Plan(
        tuple(layers),
        tuple(conns),
        heads,
        (h_in, w_in, c_in),
        float(snn.params.threshold),
        float(snn.params.v0),
        classes,
    )
