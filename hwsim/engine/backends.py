"""Engine backends: the event-driven Numba engine here, the dense torch engine in
`hwsim.engine.torch_backend`.

Both advance one batch of images through a chunk of timesteps at a time (`Runner.advance`) and
return the same chunk outputs; `hwsim.engine.simulate` streams batches and chunks through them.
Either can take a connection's current from a synapse instead of its dense op: the torch engine
from a `Synapse` (a torch callable), the Numba engine from a `CrossbarSynapse` (arrays its
kernels read: crossbars with ADCs), or from a `Synapse` on the analog network input.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from hwsim.engine import _kernels as K
from hwsim.engine import _llvm as L
from hwsim.engine.crossbar_tables import crossbar_tables, summed, virtual_conv
from hwsim.engine.plan import Conn, ConnKind, Plan
from hwsim.engine.result import MAPPINGS
from hwsim.engine.threads import default_threads
from hwsim.errors import InputError
from hwsim.model.coding import InputCoding
from hwsim.model.convert import conv_f64


class Synapse(Protocol):
    """One connection's synaptic current, in place of its dense op (`Conn.torch_forward`).

    Called as `synapse(x, t)` once per batch, timestep and connection, in timestep order, by the
    torch engine's IF loop: `x` is what the connection's source emits at timestep t (its
    population's spikes fired at t-1, as float32 0/1; the network input for a first layer: the
    analog image under direct coding). It returns the current, bias included, float32 and
    shaped as `Conn.torch_forward(x)`: a conv NCHW -> NCHW, a GAP NCHW -> (N, C), a Linear
    (N, F) -> (N, classes). A synapse may keep state (e.g. count what it read).
    """

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor: ...


@dataclass(eq=False)
class CrossbarSynapse:
    """One connection's current read through crossbars with ADCs, computed by the Numba engine's
    kernels in its IF loop (`hwsim.pipeline.hardware` builds it from a `hwsim.hw.synapse` layer).

    Rows are the dense op's: (kernel position p = ky k_w + kx, input channel c) of a conv or a
    GAP (whose kernel is its input map); (0, feature) of a Linear layer. At each output position,
    every row its window drives (an input spike) adds `matrix[p, c]` (K columns, cell levels)
    into the accumulator of its conversion group `group[p, c]`; a PE operation is an (output
    position, group) with a driven row. Per operation the first `signals` columns (output o's:
    o per_output .. (o + 1) per_output - 1) are converted, code = clip(round(D / lsb), code_min,
    code_max) (ties to even; `lsb` <= 0: no ADC, code = D / 1), and output o's partial sum adds
    lsb sum_j col_shift[k] code_k (1 for lsb <= 0), plus sign_weight D_(signals + o) (digital
    sign columns, exact; K = signals + C_out where sign_weight != 0), operations in group order.
    The current is float32(psum scale) + bias, float32, as `Synapse`s return it.

    A run adds to `record` (T, 5) int64 per timestep, summed over images (`CROSSBAR_COUNTS`):
    PE operations, crossbar reads (distinct (output position, `crossbar[p, c]`) with a driven
    row), input spikes, clipped conversions, conversions (operations x signals); and, without
    ADC, to `hist` (if given) |D| of every conversion in bins of `hist_step` levels, the last
    bin taking the rest (a run filling a histogram uses one thread).

    The kernels sum the rows in float32: integer levels exactly (a column's levels must total
    below 2^24), float32 levels in input position then channel order, as `hwsim.hw.crossbar`
    adds them (`hwsim.engine.crossbar_tables`). A synapse of one group whose reads are
    countable by kernel position (`summed`) as a conv of its K columns with the engine's own
    formulations (`summed_mode`); a GAP's diagonal rows from its source's channel spike counts;
    any other input-major into per-operation accumulators, integer rows of a narrow layer 8
    channels at a time from tables of their sums (`block_sums`).
    """

    matrix: np.ndarray  # (P, C_in, K) integer or float32: levels a driven row adds
    group: np.ndarray  # (P, C_in) int: conversion group of each row
    crossbar: np.ndarray  # (P, C_in) int: the crossbar each row lies on
    signals: int  # converted columns (the first of K)
    per_output: int  # converted columns per output channel
    col_shift: np.ndarray  # (signals,) float64: weight of each column's code in the shift-add
    sign_weight: float  # weight of the digital sign columns (0: none)
    lsb: float  # ADC step, levels (<= 0: no ADC)
    code_min: float
    code_max: float
    scale: float  # partial sum -> current
    bias: np.ndarray  # (C_out,) float32
    record: np.ndarray  # (T, 5) int64, filled by runs
    hist: np.ndarray | None = None  # int64 bins of |D| (no ADC)
    hist_step: float = 0.125  # levels per bin

    def check(self, c: Conn) -> None:
        """Refuse (InputError) a synapse whose arrays do not fit connection `c`, or whose
        integer accumulators could overflow (a column's levels summed over every row)."""
        rows = (c.kernel[0] * c.kernel[1], c.in_shape[2])
        outputs = c.out_shape[2]
        k = self.signals + (outputs if self.sign_weight != 0 else 0)
        m = self.matrix
        problems = []
        if c.src < 0:
            problems.append("the network input drives no crossbar rows (give it a Synapse)")
        if m.shape != (*rows, k) or not (m.dtype.kind == "i" or m.dtype == np.float32):
            problems.append(f"matrix {m.shape} {m.dtype}, expected {(*rows, k)} int or float32")
        elif m.dtype.kind == "i" and np.abs(m, dtype=np.int64).sum(axis=(0, 1)).max() >= 2**24:
            problems.append("integer columns sum to 2^24 or more (float32 sums lose them)")
        if self.group.shape != rows or self.crossbar.shape != rows:
            problems.append(f"group, crossbar {self.group.shape}, {self.crossbar.shape} != {rows}")
        elif min(self.group.min(initial=0), self.crossbar.min(initial=0)) < 0:
            problems.append("negative group or crossbar index")
        if self.signals != outputs * self.per_output or len(self.col_shift) != self.signals:
            problems.append(f"{self.signals} signal columns for {outputs} x {self.per_output}")
        if self.bias.shape != (outputs,):
            problems.append(f"bias {self.bias.shape}, expected ({outputs},)")
        if self.hist is not None and self.lsb > 0:
            problems.append("a histogram is kept without ADC only (lsb <= 0)")
        if self.record.ndim != 2 or self.record.shape[1] != len(CROSSBAR_COUNTS):
            problems.append(f"record {self.record.shape}, expected (T, {len(CROSSBAR_COUNTS)})")
        if problems:
            raise InputError(f"crossbar synapse of {c.name}: {'; '.join(problems)}")


CROSSBAR_COUNTS = K.CROSSBAR_COUNTS
"""The columns of `CrossbarSynapse.record`, in order."""


@dataclass(frozen=True)
class ChunkOut:
    """What a runner produced for timesteps t0..t1-1 of its batch (B images)."""

    head_spikes: np.ndarray  # (B, t1-t0, heads, classes) uint8, heads in plan.heads order
    layer_spikes: np.ndarray  # (B, t1-t0, L) int32: spikes fired per layer
    activity: np.ndarray | None  # (B, t1-t0, G, 3) int32: in_spikes, pe_ops, windows


def schedule(plan: Plan, coding: InputCoding, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
    """(omega (T, L), gscale (T, G)) float32 for timesteps t0..t1-1 (see hwsim.model.coding)."""
    t = np.arange(t0, t1)
    omega = np.stack(
        [coding.layer_omega(t, ly.depth, ly.output) for ly in plan.layers], axis=1
    ).astype(np.float32)
    cols = []
    for c in plan.conns:
        if c.src < 0:
            cols.append(coding.input_omega(t))
        else:
            src = plan.layers[c.src]
            cols.append(np.where(t >= 1, coding.layer_omega(t - 1, src.depth, src.output), 0))
    return omega, np.stack(cols, axis=1).astype(np.float32)


def layer_bias(plan: Plan, coding: InputCoding) -> list[np.ndarray]:
    """beta_j per layer: the layer's bias times the coding's bias scale, rounded to float32."""
    return [
        (ly.bias.astype(np.float64) * coding.bias_scale).astype(np.float32) for ly in plan.layers
    ]


class Runner(ABC):
    """State of one batch; `advance` runs a chunk of timesteps."""

    state_bytes: int

    @abstractmethod
    def advance(self, t0: int, t1: int) -> ChunkOut: ...


class Backend(ABC):
    """Builds runners for a plan, coding and activity grouping (`rows` > 0: count crossbar
    activity, for the `mapping` "kernel_split" or "unrolled"), with `synapses` (one per
    connection of the plan, None: its dense op) in place of dense ops where given."""

    name: str
    plan: Plan
    coding: InputCoding
    rows: int

    @abstractmethod
    def __init__(
        self,
        plan: Plan,
        coding: InputCoding,
        rows: int = 0,
        cols: int = 1,
        threads: int = 0,
        mapping: str = "kernel_split",
        synapses: Sequence[Synapse | CrossbarSynapse | None] | None = None,
    ): ...

    @abstractmethod
    def start(self, x: np.ndarray, ids: np.ndarray, chunk: int) -> Runner: ...

    def step_bytes(self, nb: int) -> int:
        """Bytes one timestep adds to a chunk of `nb` images: coded input spikes and their
        transposed copy (none for an analog coding), head spikes, spikes per layer and, when
        activity is counted, its three counts per connection."""
        plan = self.plan
        pixels = 0 if self.coding.analog else 2 * int(np.prod(plan.input_shape))
        per = pixels + len(plan.heads) * plan.classes + 4 * len(plan.layers)
        return nb * (per + (12 * len(plan.conns) if self.rows else 0))


def polyphase_size(c: Conn) -> int:
    """Floats of c's weights in the polyphase layout (`_kernels.polyphase`)."""
    kh, kw, cin, cout = c.weight.shape
    return kh * cin * c.stride * -(-kw // c.stride) * cout


def mean_rows(c: Conn) -> np.ndarray:
    """A GAP's rows: the mean float32(k) / float32(H W) of each spike count k = 0 .. H W of a
    channel (float32 division, as the dense op's mean rounds it)."""
    hw = c.in_shape[0] * c.in_shape[1]
    return np.arange(hw + 1, dtype=np.float32) / np.float32(hw)


def scatter_runs(c: Conn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What one input spike adds, per input position p = iy * W + ix (weights in the polyphase
    layout, channel 0): entries ptr[p]..ptr[p+1]-1 of (dst, wo, ln), each adding
    weights[wo : wo + ln] (+ c * stride * ceil(kw/stride) * C_out for channel c) into the
    currents [dst : dst + ln] of the outputs one kernel row feeds. Outputs a column feeds are
    consecutive (ox from base + lo to base + hi), and so are their weights."""
    h, w, cin = c.in_shape
    ho, wo_, cout = c.out_shape
    kh, kw = c.kernel
    s, pad = c.stride, c.pad
    nmax = -(-kw // s)
    ptr, dst, wo, ln = [0], [], [], []
    for iy in range(h):
        for ix in range(w):
            r = (ix + pad) % s
            n_r = len(range(r, kw, s))
            base = (ix + pad - r) // s - n_r + 1
            lo, hi = max(0, -base), min(n_r - 1, wo_ - 1 - base)
            for ky in range(kh):
                num = iy + pad - ky
                if hi < lo or num % s or not 0 <= num // s < ho:
                    continue
                dst.append(((num // s) * wo_ + base + lo) * cout)
                wo.append(((ky * cin * s + r) * nmax + lo) * cout)
                ln.append((hi - lo + 1) * cout)
            ptr.append(len(dst))
    return tuple(np.asarray(a, np.int64) for a in (ptr, dst, wo, ln))  # type: ignore[return-value]


def table_rows(w: np.ndarray, bits: int) -> np.ndarray:
    """Weights (kh, kw, C_in, C_out) as partial-sum tables (kh kw, G, 2^bits, C_out), flat, G =
    ceil(C_in / bits): entry [k, g, m] = the sum of the rows W[k, g bits + i] over the set bits
    i of m (zero channels past C_in), added in ascending i in float32."""
    kh, kw, cin, cout = w.shape
    groups = -(-cin // bits)
    wp = np.zeros((kh * kw, groups * bits, cout), np.float32)
    wp[:, :cin] = w.reshape(kh * kw, cin, cout)
    wp = wp.reshape(kh * kw, groups, bits, cout)
    out = np.zeros((kh * kw, groups, 1 << bits, cout), np.float32)
    for i in range(bits):  # m with top bit i: the entry of m's lower bits, then row i
        out[:, :, 1 << i : 2 << i] = out[:, :, : 1 << i] + wp[:, :, i, None]
    return out.ravel()


def table_bytes(c: Conn, bits: int) -> int:
    """Bytes of connection c's partial-sum tables with groups of `bits` channels."""
    kh, kw = c.kernel
    return kh * kw * -(-c.in_shape[2] // bits) * (1 << bits) * c.out_shape[2] * 4


def padded_masks(c: Conn, bits: int) -> int:
    """Bytes of the zero-bordered mask map of a table-mode connection (`_group_masks`)."""
    h, w, cin = c.in_shape
    return (h + 2 * c.pad) * (w + 2 * c.pad) * -(-cin // bits)


def table_offsets(c: Conn, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(moff, rbase) of a table-mode connection, per window entry q = (ky kw + kx) G + g (G =
    ceil(C_in / bits) groups): moff[q] = (ky (W + 2 pad) + kx) G + g, the distance of its mask
    from the output's window origin in the zero-bordered mask map; rbase[q] = the offset of the
    table of (ky, kx, g) in the connection's rows (backends.table_rows)."""
    w, cin = c.in_shape[1:]
    kh, kw = c.kernel
    groups = -(-cin // bits)
    ky, kx, g = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(groups), indexing="ij")
    moff = ((ky * (w + 2 * c.pad) + kx) * groups + g).ravel()
    rbase = np.arange(kh * kw * groups, dtype=np.int64) * (1 << bits) * c.out_shape[2]
    return moff.astype(np.int64), rbase


def _index_tables(c: Conn) -> list[np.ndarray]:
    ycnt, yk, yo = c.out_index(0)
    xcnt, xk, xo = c.out_index(1)
    return [ycnt, yk.ravel(), yo.ravel(), xcnt, xk.ravel(), xo.ravel()]


TABLE_BITS = 8  # channels per group of a partial-sum table
"""Bits of a table's group mask: 8 input channels read as one byte each."""


class NumbaBackend(Backend):
    """Event-driven Numba engine (hwsim.engine._kernels); analog inputs are one dense conv per
    batch (`analog_current`), since their current is the same at every timestep.

    `synapses`: a `CrossbarSynapse` runs in the kernels in place of a dense op; a `Synapse` is
    taken for an analog input only: called at every timestep as the torch engine calls it,
    the current of its batch's first call is used (the input is the same every step). Phased
    codings are refused with synapses, as on the torch engine.
    """

    name = "numba"

    group, pull_group = 4, 16  # images a thread runs layer by layer (`images_per_group`)
    block = 4  # timesteps a layer runs at a time (`time_block`)
    block_bytes = 256 * 1024 * 1024  # the most the spike buffers of a batch may take
    # how each conv computes its current (bench/README.md, "Per-layer formulation"): partial-
    # sum tables (groups of TABLE_BITS channels) up to `table_channels` input channels and
    # `table_bytes` of tables; output-major row sums over an image group (PULL) from
    # `pull_channels` output channels; otherwise the input-major event scatter (PUSH). PULL is
    # off by default: the wide push scatter beats it on 12 of the 14 spiking convs of a
    # full-width VGG19 at 32x32, even in groups of 16 images (bench/README.md, per_conv)
    table_channels = 16
    table_bytes = 1024 * 1024
    pull_channels = 1 << 30
    list_windows = 64  # PULL rows listed before they are summed, in full windows
    # a crossbar synapse's rows (its K columns: signal and digital-sign columns, twice the
    # outputs under SpikeSim's mapping) pay from tables up to twice the size (bench/README.md)
    crossbar_table_bytes = 512 * 1024

    def mode(self, c: Conn) -> int:
        """How connection c's current is computed: K.PUSH, K.TABLE or K.PULL."""
        if c.kind is not ConnKind.CONV or c.src < 0:  # GAP; signed or analog input spikes
            return K.PUSH
        if _dense(c):  # a Linear layer: a head's, run as a tiny layer
            return K.PUSH
        if c.in_shape[2] <= self.table_channels and table_bytes(c, TABLE_BITS) <= self.table_bytes:
            return K.TABLE
        return K.PULL if c.out_shape[2] >= self.pull_channels else K.PUSH

    def summed_mode(self, c: Conn, x: CrossbarSynapse) -> int:
        """How the virtual conv `c` of crossbar synapse x sums its rows: as `mode`, with tables
        up to `crossbar_table_bytes`, but never from tables for float rows (their sums follow
        the input order)."""
        if x.matrix.dtype.kind == "f":
            return K.PULL if c.out_shape[2] >= self.pull_channels else K.PUSH
        narrow = c.in_shape[2] <= self.table_channels
        if narrow and table_bytes(c, TABLE_BITS) <= self.crossbar_table_bytes:
            return K.TABLE
        return self.mode(c)

    def __init__(
        self,
        plan: Plan,
        coding: InputCoding,
        rows: int = 0,
        cols: int = 1,
        threads: int = 0,
        mapping: str = "kernel_split",
        synapses: Sequence[Synapse | CrossbarSynapse | None] | None = None,
    ):
        L.require_supported()  # before any kernel is compiled
        self.plan, self.coding, self.rows = plan, coding, rows
        self.unrolled = is_unrolled(mapping)
        layers, conns = plan.layers, plan.conns
        self.synapses = per_connection(plan, coding, synapses)
        self.analog = [c.src < 0 and coding.analog for c in conns]
        for c, syn, analog in zip(conns, self.synapses, self.analog, strict=True):
            if isinstance(syn, CrossbarSynapse):
                syn.check(c)
            elif syn is not None and not analog:
                raise InputError(
                    f"synapse of {c.name}: a callable synapse runs on the torch backend (the"
                    " numba backend takes one for an analog input, else a CrossbarSynapse)"
                )
        xbars = {g: x for g, x in enumerate(self.synapses) if isinstance(x, CrossbarSynapse)}
        self.xbars = list(xbars.values())
        histograms = any(x.hist is not None for x in self.xbars)
        self.threads = 1 if histograms else threads or default_threads()
        # every layer starts at a multiple of VEC neurons (aligned vectors of membranes, uint64
        # views of the spike buffers)
        sizes = [K.vec_ceil(ly.neurons) for ly in layers]
        offs = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n_state = int(offs[-1]) + K.SPARE
        self.bias = K.aligned(self.n_state, np.float32)  # beta_j tiled over each layer's neurons
        for j, b in enumerate(_dense_bias(plan, coding, self.synapses)):
            self.bias[offs[j] : offs[j] + layers[j].neurons] = np.tile(
                b, layers[j].neurons // len(b)
            )
        # a crossbar synapse of one conversion group sums its rows as a conv of K outputs
        # (its virtual connection, after the plan's), in float32
        virtual = {g: virtual_conv(conns[g], x) for g, x in xbars.items() if summed(x)}
        vrow = {g: len(conns) + i for i, g in enumerate(virtual)}
        rowed = (*conns, *virtual.values())  # the connections with conn_tab rows
        # the rows each mode adds: polyphase weights (PUSH), partial-sum tables (TABLE), the
        # weights (kh, kw, C_in, C_out) as they are (PULL)
        self.modes = [
            K.XBAR if isinstance(x, CrossbarSynapse) else self.mode(c)
            for c, x in zip(plan.conns, self.synapses, strict=True)
        ]
        self.modes += [self.summed_mode(c, xbars[g]) for g, c in virtual.items()]
        rows_of = {
            K.TABLE: lambda c: table_rows(c.weight, TABLE_BITS),
            K.PULL: lambda c: c.weight.ravel(),
            K.XBAR: lambda c: np.zeros(0, np.float32),
        }
        parts: list[np.ndarray | None] = []  # None: polyphase weights, written in place
        for c, m in zip(rowed, self.modes, strict=True):
            if c.kind is ConnKind.GAP and m != K.XBAR:
                parts.append(mean_rows(c))
            else:
                parts.append(None if m == K.PUSH else rows_of[m](c))
        sizes = [
            polyphase_size(c) if p is None else len(p) for c, p in zip(rowed, parts, strict=True)
        ]
        # each connection's rows start at a multiple of VEC floats (aligned weight runs)
        r_offs = np.concatenate([[0], np.cumsum([K.vec_ceil(n) for n in sizes])])
        r_offs = r_offs.astype(np.int64)
        self.rflat = K.aligned(int(r_offs[-1]), np.float32, None)  # each float written once
        for c, o, n, p, end in zip(rowed, r_offs[:-1], sizes, parts, r_offs[1:], strict=True):
            if p is None:
                K.polyphase(c.weight, c.stride, self.rflat[o : o + n])
            else:
                self.rflat[o : o + n] = p
            self.rflat[o + n : end] = 0
        taps = sorted({c.src for c in conns if c.kind is ConnKind.GAP})
        ch_offs = {}
        nch = 0
        for j in taps:
            ch_offs[j] = nch
            nch += layers[j].shape[2]
        self.n_chan = max(nch, 1)
        tables: list[np.ndarray] = []
        pos = 0
        conn_tab = np.zeros((len(rowed), K.CONN_COLS), np.int64)
        for g, c in enumerate(rowed):
            r = conn_tab[g]
            r[K.KIND], r[K.SRC], r[K.DST] = int(c.kind), c.src, c.dst
            r[K.H], r[K.W], r[K.CIN] = c.in_shape
            r[K.HO], r[K.WO], r[K.COUT] = c.out_shape
            r[K.KH], r[K.KW], r[K.R_OFF] = c.kernel[0], c.kernel[1], r_offs[g]
            r[K.STRIDE], r[K.PAD], r[K.MODE] = c.stride, c.pad, self.modes[g]
            r[K.ANALOG] = int(g < len(self.analog) and self.analog[g])
            columns = [K.YCNT, K.YK, K.YO, K.XCNT, K.XK, K.XO]
            tabs = _index_tables(c)
            if self.modes[g] == K.TABLE:
                r[K.GBITS] = TABLE_BITS
                moff, rbase = table_offsets(c, TABLE_BITS)
                columns += [K.MOFF, K.RBASE]
                tabs += [moff, rbase + r_offs[g]]
            if self.modes[g] == K.PUSH and c.kind is ConnKind.CONV and not r[K.ANALOG]:
                columns += [K.E_PTR, K.E_DST, K.E_WO, K.E_LN]
                tabs += list(scatter_runs(c))
                r[K.CSTRIDE] = c.stride * -(-c.kernel[1] // c.stride) * c.out_shape[2]
                cin = c.in_shape[2]
                r[K.CSHIFT] = cin.bit_length() - 1 if cin & (cin - 1) == 0 else -1
                # per-position grouping pays from ~2 spikes per position (bench/README.md)
                r[K.GROUPED] = int(cin >= 32 and r[K.CSHIFT] >= 0 and c.out_shape[2] % 8 == 0)
            for col, tab in zip(columns, tabs, strict=True):
                r[col] = pos
                tables.append(tab)
                pos += len(tab)
            r[K.SRC_OFF] = offs[c.src] if c.src >= 0 else 0
            r[K.COLBLK] = math.ceil(c.out_shape[2] / cols)
            r[K.SRC_CH] = ch_offs.get(c.src, -1) if c.kind is ConnKind.GAP else -1
            r[K.XB] = list(xbars).index(g) if g in xbars else -1
        self.conn_tab = conn_tab
        self.xb, self.xsizes = crossbar_tables([conns[g] for g in xbars], self.xbars)
        self.xtab, self.xhist = self.xb.tab, self.xb.hist  # the histograms of a chunk
        for i, g in enumerate(xbars):
            self.xtab[i, K.X_VIRT] = vrow.get(g, -1)
        self.itab = np.concatenate(tables).astype(np.int64)
        self.base_layers = sorted({c.dst for c, a in zip(conns, self.analog, strict=True) if a})
        base_offs = {}
        nb = 0
        for j in self.base_layers:
            base_offs[j] = nb
            nb += K.vec_ceil(layers[j].neurons)
        self.n_base = nb
        in_idx: list[int] = []
        layer_tab = np.zeros((len(layers), K.LAYER_COLS), np.int64)
        for j, ly in enumerate(layers):
            r = layer_tab[j]
            r[K.L_OFF], r[K.L_N], r[K.L_C] = offs[j], ly.neurons, ly.shape[2]
            r[K.L_BASE] = base_offs.get(j, -1)
            r[K.L_IN0] = len(in_idx)
            in_idx += plan.conns_into(j)
            r[K.L_IN1] = len(in_idx)
            r[K.L_CH] = ch_offs.get(j, -1)
            into = plan.conns_into(j)
            r[K.L_PULL] = int(any(self.modes[vrow.get(g, g)] == K.PULL for g in into))
            r[K.L_ONLY_BASE] = int(j in base_offs and all(self.analog[g] for g in into))
            r[K.L_NEURON] = K.neuron_flags(ly.neuron)
            r[K.L_TINY] = int(
                ly.neurons <= K.TINY_NEURONS
                and ly.shape[:2] == (1, 1)
                and ch_offs.get(j) is None
                and all(_tiny_input(conns[g], self.modes[g]) for g in into)
            )
        self.layer_tab = layer_tab
        self.neuron = K.neuron_table([ly.neuron for ly in layers])
        self.in_idx = np.asarray(in_idx, np.int64)
        self.offs = offs
        self.head_layers = np.asarray(list(plan.heads.values()), np.int64)
        self.max_n = max(ly.neurons for ly in layers)
        # input maps, the zero-bordered mask maps of table-mode connections, and the
        # activity counts' scratch words
        self.max_in = max(
            [int(np.prod(c.in_shape)) for c in conns]
            + [activity_words(c, rows, self.unrolled) for c in conns]
            + [
                padded_masks(c, TABLE_BITS)
                for c, m in zip(rowed, self.modes, strict=True)
                if m == K.TABLE
            ]
        )
        self.max_vn = max([int(np.prod(c.out_shape)) for c in virtual.values()] + [1])
        # the event-row list: room for `list_windows` full windows of the widest connection
        # with event rows, or for all windows of a group of images if that is less
        self.max_rows = max(
            [
                c.kernel[0]
                * c.kernel[1]
                * c.in_shape[2]
                * min(self.list_windows, self.pull_group * c.out_shape[0] * c.out_shape[1])
                for c, m in zip(rowed, self.modes, strict=True)
                if m == K.PULL
            ]
            + [1],
        )
        self.cur_rows = self.pull_group if K.PULL in self.modes else 1
        # kernel_split's activity map: (output position, row group), the input rows ORed
        # along x, the active (position, group) entries; the unrolled counts need none
        self.max_omap = 1
        if not self.unrolled:
            self.max_omap = max(
                ((c.out_shape[0] + c.in_shape[0]) * c.out_shape[1] + c.in_shape[0] * c.in_shape[1])
                * math.ceil(c.in_shape[2] / max(rows, 1))
                for c in conns
            )

    def start(self, x: np.ndarray, ids: np.ndarray, chunk: int) -> NumbaRunner:
        return NumbaRunner(self, x, ids, chunk)

    def time_block(self, nb: int) -> int:
        """Timesteps each layer runs for a group of images before the next layer's turn (`block`,
        fewer if a batch's spike buffers would pass `block_bytes`): a layer's state and weights
        serve several steps while in cache. A layer at t reads what its sources fired at t - 1,
        so this holds for any order where every source comes first (1 step otherwise)."""
        if any(c.src >= c.dst for c in self.plan.conns):
            return 1
        per_slot = nb * (self.n_state + 4 * self.n_chan)
        return max(1, min(self.block, self.block_bytes // max(per_slot, 1) - 1))

    def images_per_group(self, nb: int) -> int:
        """Images a thread runs at once: `group` (4: their state stays in L2 between layers; 16
        were 8-13% slower), `pull_group` with PULL (weights reused), fewer for every thread."""
        group = self.pull_group if K.PULL in self.modes else self.group
        return max(1, min(group, -(-nb // self.threads)))

    def batch_bytes(self, nb: int, chunk: int) -> int:
        """Bytes of the arrays a runner of `nb` images and `chunk` steps holds at once: state
        (membranes, spike buffers, channel counts, analog currents), one chunk's input
        spikes (and their transposed copy) and outputs (crossbar counts too), and the
        per-thread scratch."""
        slots = self.time_block(nb) + 1
        state = nb * (self.n_state * (4 + slots) + slots * 4 * self.n_chan + 4 * self.n_base)
        scratch = 4 * self.cur_rows * self.max_n + 17 * self.max_in + self.max_omap
        scratch += 12 * max(self.max_rows, self.max_in) + 16 * self.max_rows
        # crossbar accumulators, flags and virtual conv outputs
        scratch += int(self.xsizes @ np.array([4, 1, 8, 1, 4 * self.cur_rows, 1, 8]))
        groups = -(-nb // self.images_per_group(nb))
        threads = min(self.threads, groups)
        xcounts = groups * chunk * len(self.xbars) * K.XC_COLS * 8
        return state + chunk * self.step_bytes(nb) + xcounts + threads * scratch


def _tiny_input(c: Conn, mode: int) -> bool:
    """Whether connection c can feed a layer run by `_tiny_layer`: a GAP or a PUSH 1 x 1
    conv on a 1 x 1 map (a Linear layer) of spikes, without a synapse."""
    if mode == K.XBAR or c.src < 0:
        return False
    return c.kind is ConnKind.GAP or (mode == K.PUSH and _dense(c))


def _dense(c: Conn) -> bool:
    """Whether c is a 1 x 1 conv on a 1 x 1 map (a Linear layer)."""
    return c.in_shape[:2] == (1, 1) and c.kernel == (1, 1) and c.pad == 0


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _worker_pool(threads: int) -> ThreadPoolExecutor:
    """A pool of `threads` workers for the kernels, made once per process (a forked child
    makes its own: the parent's threads are not in it) and thread count: starting threads for
    every chunk cost about 2 ms a chunk here."""
    key = (os.getpid(), threads)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix="hwsim-engine")
    return _POOLS[key]


def per_connection(
    plan: Plan, coding: InputCoding, synapses: Sequence[Synapse | CrossbarSynapse | None] | None
) -> tuple[Synapse | CrossbarSynapse | None, ...]:
    """One synapse or None per connection of `plan`; refused (InputError) if the count is wrong
    or a phased coding meets a synapse (a synapse takes no phase weight) or leaky neurons."""
    out = tuple(synapses) if synapses is not None else (None,) * len(plan.conns)
    if len(out) != len(plan.conns):
        raise InputError(f"{len(out)} synapses given for {len(plan.conns)} connections")
    if coding.phased and (plan.leaky or any(s is not None for s in out)):
        what = "leaky neurons" if plan.leaky else "synapses (they take no phase weight)"
        raise InputError(f"{coding.describe()} is not supported with {what}")
    return out


def _dense_bias(
    plan: Plan, coding: InputCoding, synapses: Sequence[Synapse | CrossbarSynapse | None]
) -> list[np.ndarray]:
    """beta_j per layer (`layer_bias`), of the connections without a synapse only (a synapse's
    current holds its bias): zeros for a layer all of whose connections have synapses."""
    if all(s is None for s in synapses):
        return layer_bias(plan, coding)
    out = []
    for j, ly in enumerate(plan.layers):
        total = np.zeros(ly.shape[2], np.float32)
        dense = [plan.conns[g].bias for g in plan.conns_into(j) if synapses[g] is None]
        if dense:
            total = dense[0]
            for b in dense[1:]:
                total = (total + b).astype(np.float32)
        out.append((total.astype(np.float64) * coding.bias_scale).astype(np.float32))
    return out


def _channels_last(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.permute(0, 2, 3, 1).numpy()).reshape(len(t), -1)


def analog_current(c: Conn, x: np.ndarray, threads: int = 0) -> np.ndarray:
    """Conv c's current, bias included, for the analog images x (N, C, H, W) float32, flat
    channels-last float32 (N, H_out W_out C_out): summed in float64 in a fixed order
    (`hwsim.model.convert.conv_f64`: every product exact) and rounded once, so the same bits
    on every CPU, where a torch conv's float32 sums follow the instruction set."""
    h, w, cin = c.in_shape
    weight = c.weight.transpose(3, 2, 0, 1)  # (C_out, C_in, kh, kw)
    y = conv_f64(x.reshape(len(x), cin, h, w), weight, c.bias, c.stride, c.pad, threads=threads)
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1), np.float32).reshape(len(x), -1)


class NumbaRunner(Runner):
    def __init__(self, be: NumbaBackend, x: np.ndarray, ids: np.ndarray, chunk: int):
        self.be, self.x, self.ids = be, x, ids
        plan = be.plan
        nb = len(x)
        self.v = K.aligned((nb, be.n_state), np.float32, plan.v0)
        K.start_membranes(self.v, be.layer_tab, [ly.neuron for ly in plan.layers], plan.v0)
        slots = be.time_block(nb) + 1
        self.s = K.aligned((slots, nb, be.n_state), np.int8)
        self.chan = np.zeros((slots, nb, be.n_chan), np.int32)
        self.base = K.aligned((nb, max(be.n_base, 1)), np.float32)
        self.analog_act: dict[int, np.ndarray] = {}
        self.xt = torch.from_numpy(np.ascontiguousarray(x))
        layer_base = {}
        with torch.no_grad():
            for g, c in enumerate(plan.conns):
                if not be.analog[g]:
                    continue
                syn = be.synapses[g]
                assert not isinstance(syn, CrossbarSynapse)  # refused by NumbaBackend
                if syn is None:
                    cur = analog_current(c, x, be.threads)
                else:
                    cur = _channels_last(_analog_checked(syn, self.xt, c))
                layer_base[c.dst] = cur if c.dst not in layer_base else layer_base[c.dst] + cur
                if be.rows > 0:
                    self.analog_act[g] = _analog_activity(be, g, x)
        for j, cur in layer_base.items():
            for g in plan.conns_into(j):
                if not be.analog[g] and be.synapses[g] is None:
                    cur = cur + np.tile(plan.conns[g].bias, len(cur[0]) // plan.layers[j].shape[2])
            o = be.layer_tab[j, K.L_BASE]
            self.base[:, o : o + cur.shape[1]] = cur
        self.state_bytes = be.batch_bytes(nb, chunk)

    def advance(self, t0: int, t1: int) -> ChunkOut:
        be, plan = self.be, self.be.plan
        nb, tc = len(self.x), t1 - t0
        if be.coding.analog:
            inp = np.zeros((1, 1, 1), np.int8)
        else:
            spikes = be.coding.input_spikes(self.x, self.ids, t0, t1)  # (B, T, C, H, W)
            pixels = int(np.prod(spikes.shape[2:]))
            inp = np.zeros((tc, nb, pixels + K.SPARE), np.int8)
            inp[:, :, :pixels] = spikes.transpose(1, 0, 3, 4, 2).reshape(tc, nb, pixels)
        omega, gscale = schedule(plan, be.coding, t0, t1)
        rec = np.zeros((nb, tc, len(plan.heads), plan.classes), np.uint8)
        counts = np.zeros((nb, tc, len(plan.layers)), np.int32)
        act = np.zeros((nb, tc, len(plan.conns), 3) if be.rows else (1, 1, 1, 3), np.int32)
        self._call_analog_synapses(max(t0, 1), t1)
        for x in be.xbars:
            if t1 > len(x.record):
                raise IndexError(f"timestep {t1 - 1} outside a crossbar record of {len(x.record)}")
        group = be.images_per_group(nb)
        xcnt = np.zeros((-(-nb // group), tc, max(len(be.xbars), 1), K.XC_COLS), np.int64)
        be.xhist[:] = 0
        net = K.Network(
            be.layer_tab, be.in_idx, be.conn_tab, be.rflat, be.bias, be.itab, be.head_layers,
            be.neuron,
        )  # fmt: skip
        state = K.State(self.v, self.s, self.s.view(np.uint64), self.chan, self.base)
        steps = K.Steps(inp, omega, gscale)
        out = K.Outputs(rec, counts, act, xcnt)
        opt = K.Options(np.float32(plan.threshold), be.rows, int(be.unrolled), group)
        ranges = [(b, min(b + group, nb)) for b in range(0, nb, group)]

        def run_images(b0: int, b1: int) -> None:  # scratch made where it is used
            sizes = (be.layer_tab, be.max_n, be.max_in, be.max_rows, be.max_omap, be.cur_rows)
            scratch = K.chunk_scratch(*sizes, be.xsizes)
            K.run_chunk(b0, b1, t0, t1, net, be.xb, state, steps, out, opt, scratch)

        if be.threads == 1 or len(ranges) == 1:
            run_images(0, nb)
        else:
            pool = _worker_pool(be.threads)
            for f in [pool.submit(run_images, b0, b1) for b0, b1 in ranges]:
                f.result()
        if be.rows:
            for g, a in self.analog_act.items():
                active = omega[:, plan.conns[g].dst] != 0
                act[:, active, g, :] = a[:, None, :]
        per_step = xcnt.sum(axis=0)
        for i, x in enumerate(be.xbars):
            x.record[t0:t1] += per_step[:, i]
            if x.hist is not None:
                r = be.xtab[i]
                x.hist += be.xhist[r[K.X_HIST] : r[K.X_HIST] + r[K.X_NBINS]]
        return ChunkOut(rec, counts, act if be.rows else None)

    def _call_analog_synapses(self, t0: int, t1: int) -> None:
        """Call the analog inputs' synapses at timesteps t0..t1-1 (their current was taken at
        t = 0: the input is the same every step), so that they see every step."""
        be = self.be
        with torch.no_grad():
            for g, syn in enumerate(be.synapses):
                if be.analog[g] and syn is not None and not isinstance(syn, CrossbarSynapse):
                    for t in range(t0, t1):
                        syn(self.xt, t)


def _analog_checked(syn: Synapse, xt: torch.Tensor, c: Conn) -> torch.Tensor:
    """An analog input synapse's current at t = 0, refused unless float32 and shaped as the
    connection's dense op."""
    y = syn(xt, 0)
    h, w, ch = c.out_shape
    if tuple(y.shape) != (len(xt), ch, h, w) or y.dtype != torch.float32:
        raise InputError(
            f"synapse of {c.name}: current {tuple(y.shape)} {y.dtype}, expected"
            f" {(len(xt), ch, h, w)} torch.float32"
        )
    return y


def _analog_activity(be: NumbaBackend, g: int, x: np.ndarray) -> np.ndarray:
    """(B, 3) activity of analog connection g: a nonzero pixel counts as an active input."""
    nz = np.ascontiguousarray((x != 0).transpose(0, 2, 3, 1)).reshape(len(x), -1)
    return activity_of(be, g, nz.astype(np.int8))


def activity_words(c: Conn, rows: int, unrolled: bool) -> int:
    """int64 scratch words the activity count of connection c needs (`K.conn_activity`: a
    position's channel masks, the input rows ORed along x, the kernel columns' inputs;
    `K.conn_activity_unrolled`: every position's masks, the kernel positions' segments)."""
    (h, w, cin), (kh, kw) = c.in_shape, c.kernel
    masks = cin // 64 + 1
    if not unrolled:
        return masks + h + kw
    slots = cin // max(rows, 1) + 2
    bits = K.UNROLLED_MASKS * (1 + h + h * kw)  # `_unrolled_bits`' masks and rows
    groups = math.ceil(kh * kw * cin / max(rows, 1)) // 64 + 1
    return h * w * masks + 3 * kh * kw * slots + max(bits, groups)


def activity_of(be: NumbaBackend, g: int, spikes: np.ndarray) -> np.ndarray:
    """(B, 3) int32 activity of connection g (of `be`'s tables, rows and mapping) for a batch
    of flat channels-last inputs."""
    omap = np.empty(be.max_omap, np.uint8)
    words = np.empty(be.max_in, np.int64)
    out = np.zeros((len(spikes), 3), np.int32)
    count = K.conn_activity_unrolled if be.unrolled else K.conn_activity
    for b in range(len(spikes)):
        out[b] = count(spikes[b], 0, be.conn_tab, g, be.itab, be.rows, omap, words)
    return out


def is_unrolled(mapping: str) -> bool:
    if mapping not in MAPPINGS:
        raise InputError(f"unknown crossbar mapping {mapping!r}; expected one of {MAPPINGS}")
    return mapping == "unrolled"
