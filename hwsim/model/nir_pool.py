"""Local pooling read as convolution: a NIR weight path of AvgPool2d/SumPool2d nodes and at most
one weight node (a Conv2d, or a last [Flatten] Affine/Linear, read as the conv whose kernel is
its whole input map) between two IF populations becomes one hwsim conv layer.

Pooling spikes is linear, so a k_h x k_w pooling of stride s and padding p is the convolution
with the same geometry whose weight is w[o, i] = 1 / (k_h k_w) (average; torch's default
count_include_pad, zero padding counted) or 1 (sum) for o = i and 0 for o != i. hwsim's layer
graph has dense convolutions only (no groups), so the pooling is that dense, channel-diagonal
convolution: C x C crossbar columns and rows per kernel position, the zeros programmed like any
weight, so its mapping, energy, area and timing are those of a conv layer.

Two convolutions in a row, A (kernel k_a, stride s_a, padding p_a, bias b_a) then B (k_b, s_b,
p_b), are one convolution of kernel k_a + (k_b - 1) s_a, stride s_a s_b and padding p_a + p_b s_a,
with W[o, i, s_a y + u, s_a x + v] = sum_m B[o, m, y, x] A[m, i, u, v] and bias b_b + sum B b_a.
That is exact (in real arithmetic) when B reads no padding (p_b = 0: a pooling after a conv),
and otherwise when B's padded positions see only A's padding: A has no bias, A's window one step
before the map lies in its padding (k_a <= s_a + p_a) and one step past its last output starts
past the map (ho_a s_a - p_a >= H; a 2x2 stride-2 pooling of an even map before a padded conv
meets both). Anything else is refused naming the nodes. Float weights are summed in a different
order than a peer's conv then pool (docs/nir.md gives the measured difference); dyadic weights
are exact. A pooling composed with a weight node is a plain conv layer; a pooling alone between
two populations is a pooling layer (`graph.Layer.pool`), mapped to the tile's pooling unit and
named by its weight once the thresholds are folded in (`mark_pools`): `Pool.AVG` for 1 /
(k_h k_w) on the channel diagonal, `Pool.SUM` for 1 (so a SumPool2d into neurons at 4 theta
is a 2x2 average), a plain channel-diagonal conv for any other weight.

Max pooling (NIR 1.0 has no node for it; on binary spikes it is the window's OR): a lone pooling
into IF neurons that alone it drives, with no leak, a reset to 0 from 0 (so V is 0 before every
step) and a threshold that one input spike reaches (`fires_on_any`: (0, w r / if_r] at V >=
theta, (0, w r / if_r) at V > theta, w = 1 for a sum, 1 / (k_h k_w) for an average) fires iff
a spike reached its window: `mark_pools` makes it `Pool.MAX`, its weight the
channel-diagonal theta and its neurons `MAX_NEURON` (V >= theta, reset to 0 from 0). Anything
else (another threshold, a leak, a subtraction, a second input) stays the average or sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwsim.model.graph import Neuron, Pool, Shape
from hwsim.model.nir_convention import PoolKind, read_pool
from hwsim.model.nir_nodes import (
    NirError,
    as_array,
    as_shape,
    check_allocation,
    conv_geometry,
    kind_of,
    node_bias,
    node_weight,
)

POOL_KINDS = ("AvgPool2d", "SumPool2d")
WEIGHT_KINDS = ("Conv2d", "Affine", "Linear")


@dataclass(frozen=True)
class ConvOp:
    """A linear map of a (C, H, W) map as one convolution: weight (C_out, C_in, k_h, k_w) and
    bias (C_out,) in float64, stride and symmetric zero padding (pixels), input map `in_hw`."""

    weight: np.ndarray
    bias: np.ndarray
    stride: int
    padding: int
    in_hw: tuple[int, int]

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    @property
    def out_hw(self) -> tuple[int, int]:
        return tuple(  # type: ignore[return-value]
            (n + 2 * self.padding - k) // self.stride + 1
            for n, k in zip(self.in_hw, self.kernel, strict=True)
        )


def pool_shape(name: str, node: Any, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The (C, H_out, W_out) a pooling node outputs (torch's floor rounding)."""
    pool = read_pool(name, node, in_shape)
    return (
        int(in_shape[0]),
        *(
            (n + 2 * p - k) // s + 1
            for n, k, s, p in zip(in_shape[1:], pool.kernel, pool.stride, pool.padding, strict=True)
        ),
    )


def is_local_pool(name: str, node: Any, in_shape: tuple[int, ...]) -> bool:
    """A pooling node whose kernel is not its whole input map (or that pads)."""
    return kind_of(node) in POOL_KINDS and not read_pool(name, node, in_shape).is_global


def _pool_op(name: str, node: Any, in_shape: Shape) -> ConvOp:
    """A pooling node as its channel-diagonal convolution."""
    pool = read_pool(name, node, in_shape)
    (kh, kw), (sh, sw), (ph, pw) = pool.kernel, pool.stride, pool.padding
    if sh != sw or ph != pw:
        raise NirError(
            f"{kind_of(node)} {name!r}: {pool.describe()}; hwsim maps one stride and one"
            " padding for both sides"
        )
    if ph >= min(kh, kw):
        raise NirError(f"{kind_of(node)} {name!r}: {pool.describe()}; padding >= the kernel")
    c = in_shape[0]
    check_allocation(8 * c * c * kh * kw, f"{kind_of(node)} {name!r} as a {c}-channel conv")
    weight = np.zeros((c, c, kh, kw))
    value = 1.0 / (kh * kw) if pool.kind is PoolKind.AVG else 1.0
    weight[np.arange(c), np.arange(c)] = value
    return ConvOp(weight, np.zeros(c), sh, ph, in_shape[1:])


def _conv_op(name: str, node: Any, in_shape: Shape) -> ConvOp:
    weight = node_weight(name, node, np.float64)
    if weight.shape[1] != in_shape[0]:
        raise NirError(
            f"Conv2d {name!r}: {weight.shape[1]} input channels, its input has {in_shape[0]}"
        )
    stride, pad = conv_geometry(name, node, in_shape)
    return ConvOp(weight, node_bias(name, node, weight.shape[0]), stride, pad, in_shape[1:])


def _exact_after(a: ConvOp, b: ConvOp) -> bool:
    """Whether B's zero padding of A's output reads only A's padding (the module's rule)."""
    if b.padding == 0:
        return True
    if np.any(a.bias != 0):
        return False
    k_a = a.kernel
    return all(
        k_a[ax] <= a.stride + a.padding and a.out_hw[ax] * a.stride - a.padding >= a.in_hw[ax]
        for ax in (0, 1)
    )


def compose(a: ConvOp, b: ConvOp, where: str) -> ConvOp:
    """A then B as one convolution (the module's formula), refused (naming `where`) where it
    would not be exact."""
    (kah, kaw), (kbh, kbw), s = a.kernel, b.kernel, a.stride
    composed = ConvOp(
        np.zeros((b.weight.shape[0], a.weight.shape[1], kah + (kbh - 1) * s, kaw + (kbw - 1) * s)),
        b.bias + b.weight.sum(axis=(2, 3)) @ a.bias,
        s * b.stride,
        a.padding + b.padding * s,
        a.in_hw,
    )
    if not _exact_after(a, b):
        raise NirError(
            f"{where}: its padding would read {'biased ' if np.any(a.bias) else ''}outputs of"
            " the node before, so it is not one convolution; hwsim folds a pooling and a Conv2d"
            " when the later one has no padding, or pads only past an evenly covered map"
        )
    check_allocation(8 * composed.weight.size, f"{where} as one convolution")
    for y in range(kbh):
        for x in range(kbw):
            composed.weight[:, :, s * y : s * y + kah, s * x : s * x + kaw] += np.einsum(
                "om,miuv->oiuv", b.weight[:, :, y, x], a.weight
            )
    return composed


def _affine_op(name: str, node: Any, in_shape: Shape) -> ConvOp:
    """An Affine/Linear on a (C, H, W) map as the conv whose kernel is the whole map."""
    weight = node_weight(name, node, np.float64)
    c, h, w = in_shape
    if weight.ndim != 2 or weight.shape[1] != c * h * w:
        raise NirError(
            f"{kind_of(node)} {name!r}: weight {weight.shape} on an input of {c * h * w} values"
        )
    bias = node_bias(name, node, weight.shape[0]).astype(np.float64)
    return ConvOp(weight.reshape(-1, c, h, w), bias, 1, 0, (h, w))


def pooled_conv(ops: tuple[str, ...], nodes: dict[str, Any], in_shape: Shape) -> ConvOp:
    """The one convolution of a path of pooling nodes and at most one weight node (a Conv2d,
    or a last [Flatten] Affine/Linear), in forward order, on an input map `in_shape`; refused
    naming the path's nodes."""
    kinds = [kind_of(nodes[n]) for n in ops]
    body = kinds[:-2] if kinds[-2:] in (["Flatten", "Affine"], ["Flatten", "Linear"]) else kinds
    body = body[:-1] if body[-1:] in (["Affine"], ["Linear"]) else body
    weights = sum(k in WEIGHT_KINDS for k in kinds)
    if weights > 1 or any(k not in (*POOL_KINDS, "Conv2d") for k in body):
        chain = " -> ".join(f"{k} {n!r}" for k, n in zip(kinds, ops, strict=True))
        raise NirError(
            f"the path {chain} pools locally; hwsim maps a local pooling into IF neurons alone or"
            " with one Conv2d or a last [Flatten] Affine/Linear (no second weight layer)"
        )
    steps = {"Conv2d": _conv_op, "Affine": _affine_op, "Linear": _affine_op}
    items = [(n, k) for n, k in zip(ops, kinds, strict=True) if k != "Flatten"]
    first, kind = items[0]
    op = steps.get(kind, _pool_op)(first, nodes[first], in_shape)
    for n, kind in items[1:]:
        nxt = steps.get(kind, _pool_op)(n, nodes[n], (op.weight.shape[0], *op.out_hw))
        op = compose(op, nxt, f"{kind} {n!r}")
    return op


def pooled_path(
    ops: tuple[str, ...], source: str, nodes: dict[str, Any], shapes: dict[str, tuple[int, ...]]
) -> tuple[str, ConvOp] | None:
    """A weight path (`ops` after `source`, forward order) with a local pooling as its layer's
    name (its weight node's, else its first pooling's) and convolution; None without one."""
    inputs = (source, *ops[:-1])
    if not any(is_local_pool(n, nodes[n], shapes[i]) for n, i in zip(ops, inputs, strict=True)):
        return None
    name = next((n for n in ops if kind_of(nodes[n]) in WEIGHT_KINDS), ops[0])
    return name, pooled_conv(ops, nodes, as_shape(shapes[source]))


MAX_NEURON = Neuron(reset_to=0.0, v_init=0.0)
"""A max pooling's neurons: no leak, V >= theta, a reset to 0 from 0 (V is 0 before every step)."""


def standalone_pool(ops: tuple[str, ...], nodes: dict[str, Any]) -> Pool | None:
    """The operation of a path that is one local pooling node alone (else None: composed)."""
    if len(ops) != 1 or kind_of(nodes[ops[0]]) not in POOL_KINDS:
        return None
    return Pool.AVG if kind_of(nodes[ops[0]]) == "AvgPool2d" else Pool.SUM


def fires_on_any(
    pool: Pool, kernel: tuple[int, int], node: Any, neuron: Neuron, if_r: float
) -> bool:
    """Whether the IF node `node` (engine neuron `neuron`) after a lone pooling `pool` fires iff
    a spike reached its window: no leak, a reset to 0 from 0 (so V is 0 before every step), and
    a threshold in the OR range of the pooling's step per input spike, w r / if_r (w: 1 for a
    sum, 1 / (k_h k_w) for an average): (0, step] at V >= theta, (0, step) at V > theta
    (a threshold > 0: `neuron_gain` refuses 0)."""
    if (
        neuron.reset_to != 0
        or neuron.leak != 1
        or neuron.delayed_reset
        or neuron.start(0.0) != 0
        or kind_of(node) not in ("IF", "LIF")
    ):
        return False
    thr, r = np.unique(as_array(node.v_threshold)), np.unique(as_array(node.r))
    if thr.size != 1 or r.size != 1:
        return False
    gain = float(r[0]) / if_r if kind_of(node) == "IF" else neuron.gain
    step = (1.0 if pool is Pool.SUM else 1.0 / (kernel[0] * kernel[1])) * gain
    th = float(thr[0])
    return 0 <= th < step if neuron.strict else 0 < th <= step


def mark_pools(drafts: list[Any], nodes: dict[str, Any], neurons: dict[str, Neuron],
               if_r: float, theta: float, v0: float) -> None:  # fmt: skip
    """The pooling operation of every lone local pooling (a draft with `pool`), after the
    thresholds are folded into the weights: a max pooling where it alone drives IF neurons that
    fire on any spike in their window (`fires_on_any`: `Pool.MAX`, its weight the
    channel-diagonal theta, one spike reaching the threshold, its neurons `MAX_NEURON`);
    otherwise named by its weight, d on the channel diagonal: `Pool.AVG` for d = 1 / (k_h k_w),
    `Pool.SUM` for d = 1 (a sum into neurons at k_h k_w theta is the average), and no pooling
    (a channel-diagonal conv) for any other d, so that `pool` always names the weight."""
    inputs: dict[str, int] = {}
    for d in drafts:
        inputs[d.target] = inputs.get(d.target, 0) + 1
    for d in drafts:
        if d.pool is None:
            continue
        c, (kh, kw) = d.out_shape[0], d.kernel
        eye = np.eye(c, dtype=np.float32)[:, :, None, None]
        alone = inputs[d.target] == 1 and (v0 == 0 or neurons[d.target].v_init is not None)
        if alone and fires_on_any(d.pool, d.kernel, nodes[d.target], neurons[d.target], if_r):
            d.weight = np.ascontiguousarray(
                np.broadcast_to(eye * np.float32(theta), d.weight.shape)
            )
            d.pool, neurons[d.target] = Pool.MAX, MAX_NEURON
            continue
        named = {Pool.AVG: np.float32(1 / (kh * kw)), Pool.SUM: np.float32(1)}
        window = {p: np.broadcast_to(eye * v, d.weight.shape) for p, v in named.items()}
        d.pool = next((p for p, w in window.items() if np.array_equal(d.weight, w)), None)
