"""Numba kernels of the event-driven IF engine (see docs/engine.md for the formulation).

Layout: every image's state is one flat row per array: membranes V (float32) and spikes S
(int8, `block` + 1 buffers: S[t % (block + 1)] holds what was fired at t and is emitted at
t + 1), with each spiking layer at a fixed offset (a multiple of VEC = 16, 64-byte aligned:
`ALIGN`), channels-last.
`run_chunk` advances a range of images through a chunk of timesteps and releases the GIL, so
threads can take disjoint ranges; it runs `group` images at a time and, since a layer at t
reads only what its sources fired at t - 1, each layer for `block` timesteps before the next
(its weights serve the group's images and steps while in cache), image by image (an image's
membranes and spikes serve its steps while in cache).

Per layer and step: the currents start from the bias (or a precomputed analog current); each
incoming conv adds its current by one of three formulations (conn_tab MODE, chosen per
connection by backends.NumbaBackend.mode):
- PUSH (`_scatter`): the nonzero inputs are listed (64 bytes at a time: a vector compare gives
  a bit mask, trailing-zero counts give the indices), and every listed spike adds, for each
  kernel row that reads it, one contiguous run of weights (polyphase layout) into one
  contiguous run of output currents, 8 floats at a time by an explicit vector intrinsic
  (wide inputs: the map read position by position, a position's spikes summed in registers,
  up to 192 outputs at a time in 16-float registers);
- TABLE (`_table_conv`): groups of 8 input channels become byte masks in a zero-bordered map
  (8 masks per vector compare of 64 spikes), and each output position sums, in registers,
  the precomputed table rows (sums of the weight rows of the set bits) its window's masks
  select, several positions per call;
- PULL (`_event_conv`): each output position lists the weight rows its window's spikes
  select, for a whole group of images, and the rows are summed in registers 64 output
  channels at a time, so a slice of the weights serves every listed output while in cache.
A connection with a crossbar synapse (MODE XBAR, `_xbar_conv`) sums its integer or float
rows per PE operation instead and converts them with an ADC (backends.CrossbarSynapse).
Then one IF scan over the layer, 16 neurons at a time by an explicit vector intrinsic, which
also counts spikes per channel in registers for the layers a GAP reads. Layers of at most
TINY_NEURONS neurons on a 1 x 1 map fed by GAPs and Linear layers (the heads) run in short
loops (`_tiny_layer`), without the per-layer machinery.

Exactness: each output's current is the bias plus weight rows added in a fixed order (push:
input order; table: kernel offset, then channel group, each table row summed in channel order;
pull: kernel offset, then channel); another order (a dense conv) can round differently unless
weights and inputs are dyadic (docs/engine.md).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from hwsim.engine import _buffers
from hwsim.engine import _llvm as L

KERNEL = {"cache": True, "error_model": "numpy", "_nrt": False}
"""Numba options of every kernel here. `_nrt=False` compiles them without reference counting
of arrays (each view or tuple of arrays otherwise costs an atomic increment and decrement,
about 1,300 cycles per layer step of `run_chunk`, 4.5-5.7% of a shipped-model run): the
kernels never allocate; `run_chunk`'s scratch comes from `chunk_scratch`."""

# conn_tab columns
KIND, SRC, DST, H, W, CIN, HO, WO, COUT, KH, KW, ANALOG, SRC_OFF, SRC_CH, COLBLK = range(15)
YCNT, YK, YO, XCNT, XK, XO = range(15, 21)  # activity tables (offsets into itab)
STRIDE, PAD, R_OFF, GBITS, MOFF, RBASE, MODE = range(21, 28)  # rows in rflat; tables
E_PTR, E_DST, E_WO, E_LN, CSTRIDE, CSHIFT, GROUPED = range(28, 35)  # push scatter runs
XB = 35  # the connection's row of xtab (a crossbar synapse), -1: none
CONN_COLS = 36
PUSH, TABLE, PULL, XBAR = range(4)  # MODE: how a connection's current is computed
# xtab columns (one row per crossbar synapse): matrix dtype and offset into its flat array,
# columns K, signal columns, signal columns per output, offset of the group and crossbar index
# tables in xidx, groups, crossbars, offset of its block tables in the flat tables of its dtype (-1:
# none), offsets into xshift / xbias / xhist, histogram bins, whether a GAP's rows are diagonal
# (row (p, c) adds the level matrix[0, c, c] to column c only, the same at every p), how its
# crossbar reads are counted (XR_*), the conn_tab row of its virtual conv (-1: none)
X_MAT, X_K, X_SIG, X_PER, X_GRP, X_NG, X_NX, X_TAB, X_SHIFT, X_BIAS = range(10)
X_HIST, X_NBINS, X_DIAG, X_READS, X_VIRT = range(10, 15)
XTAB_COLS = 15
XR_FLAGS, XR_POSITIONS, XR_SINGLE = range(3)  # X_READS: how crossbar reads are counted
XB_BLOCK = 8  # channels of a block-sum table entry (a byte of spikes)
# xpar columns: ADC step (levels; <= 0: no ADC), its reciprocal where exact (else 0), code
# range, partial sum -> current scale, sign-column weight, histogram bin width (levels)
XP_LSB, XP_INV, XP_LO, XP_HI, XP_SCALE, XP_SIGN, XP_HSTEP = range(7)
XPAR_COLS = 7
CROSSBAR_COUNTS = ("pe_ops", "reads", "inputs", "clips", "conversions")
"""What a crossbar synapse counts per image and timestep, the columns of its record: PE
operations, crossbar reads, input spikes, conversions that clipped, conversions."""
XC_OPS, XC_READS, XC_INPUTS, XC_CLIPS, XC_CONVERSIONS = range(len(CROSSBAR_COUNTS))
XC_COLS = len(CROSSBAR_COUNTS)
# layer_tab columns
L_OFF, L_N, L_C, L_BASE, L_IN0, L_IN1, L_CH, L_PULL, L_TINY, L_ONLY_BASE, L_NEURON = range(11)
LAYER_COLS = 11
# L_NEURON flags: the leaky step, V > theta, delayed reset, reset to a potential
N_LEAKY, N_STRICT, N_DELAYED, N_RESET_TO = 1, 2, 4, 8
# neuron table columns (Network.neuron, float32): leak, (1 - leak) v_leak, gain, reset potential
NR_LEAK, NR_REST, NR_GAIN, NR_RESET = range(4)
TINY_NEURONS = 64  # the most neurons of a layer run by `_tiny_layer`
GAP = 1
LANES = 8  # floats per vector register in the row sums
ALIGN = 64
"""Every array the kernels read with vectors starts at a multiple of ALIGN bytes (`aligned`),
and every layer, connection's weights and analog current at a multiple of VEC floats, so a
16-float vector never straddles two cache lines (a straddling load or store costs about twice
as much: the register sums run 1.6x faster on 64-byte aligned rows than at numpy's default
alignment, 16 bytes past a 64-byte boundary)."""
VEC = ALIGN // 4  # floats in ALIGN bytes
SPARE = 64
"""Bytes past the last spike of every spike row (state rows, coded input rows): spikes are read
64 at once (`_nonzero_mask64`), a position or a tail past a row's last spike included."""


class Network(NamedTuple):
    """A backend's arrays, the same for every batch (`backends.NumbaBackend`)."""

    layer_tab: np.ndarray  # (L, LAYER_COLS) int64: one row per spiking layer
    in_idx: np.ndarray  # int64: the connections into layer j, in_idx[L_IN0 : L_IN1] of its row
    conn_tab: np.ndarray  # (G', CONN_COLS) int64: one row per connection (virtual ones last)
    rflat: np.ndarray  # float32: every connection's rows, flat (R_OFF)
    bias: np.ndarray  # (N,) float32: every neuron's beta
    itab: np.ndarray  # int64: index tables, flat (the conn_tab columns YCNT..)
    head_layers: np.ndarray  # int64: the layer of each head, in plan.heads order
    neuron: np.ndarray  # (L, 4) float32: each layer's leak, rest, gain and reset (NR_*)


class Crossbars(NamedTuple):
    """The crossbar synapses (connections of MODE XBAR), flat
    (`hwsim.engine.crossbar_tables.crossbar_tables`)."""

    tab: np.ndarray  # (X, XTAB_COLS) int64
    par: np.ndarray  # (X, XPAR_COLS) float64
    mat: np.ndarray  # float32: their rows
    tables: np.ndarray  # float32: their block-sum tables
    idx: np.ndarray  # int64: their group, then crossbar, index of every row
    shift: np.ndarray  # float64: weight of each signal column in the shift-add
    bias: np.ndarray  # float32
    hist: np.ndarray  # int64: histograms of |signal| (no ADC)


class State(NamedTuple):
    """One batch's state (B images, S = time block + 1 spike buffers)."""

    v: np.ndarray  # (B, N) float32 membranes
    s: np.ndarray  # (S, B, N) int8 spikes: s[t % S] fired at t
    s64: np.ndarray  # the memory of s viewed as uint64
    chan: np.ndarray  # (S, B, Nc) int32 spikes per channel of the layers a GAP reads
    base: np.ndarray  # (B, Nb) float32 precomputed currents of layers with an analog input


class Steps(NamedTuple):
    """A chunk's inputs, timesteps t0..t1-1 (see hwsim.model.coding)."""

    inp: np.ndarray  # (t1-t0, B, P) int8 coded input spikes (unused for analog input)
    omega: np.ndarray  # (t1-t0, L) float32 layer phase weights (0: idle), scaling bias, threshold
    gscale: np.ndarray  # (t1-t0, G) float32 weight of each connection's input spikes


class Outputs(NamedTuple):
    """What a chunk produces, timesteps t0..t1-1."""

    rec: np.ndarray  # (B, t1-t0, heads, classes) uint8 head spikes emitted at t
    counts: np.ndarray  # (B, t1-t0, L) int32 spikes fired per layer
    act: np.ndarray  # (B, t1-t0, G, 3) int32 activity (Options.rows > 0)
    xcnt: np.ndarray  # (image groups, t1-t0, X, XC_COLS) int64 crossbar counts per group


class Options(NamedTuple):
    """How a chunk runs."""

    threshold: np.float32  # theta
    rows: int  # input rows per crossbar of the activity count (0: no count)
    unrolled: int  # 1: count activity for the unrolled mapping, 0: kernel_split
    group: int  # images a thread runs at once, layer by layer


class CrossbarScratch(NamedTuple):
    """A `run_chunk` call's scratch for crossbar synapses (`chunk_scratch`)."""

    acc: np.ndarray  # float32 accumulators of PE operations
    touched: np.ndarray  # uint8 flags: operations with a driven row
    psum: np.ndarray  # float64 partial sums of an output position, then its zero current
    xread: np.ndarray  # uint8 flags: (output position, crossbar) read
    vcur: np.ndarray  # (cur_rows, H_out W_out K) float32 outputs of virtual convs
    live: np.ndarray  # uint8 flags: input positions with a spike
    wsum: np.ndarray  # int64 driven positions of each row within each window's columns


class Scratch(NamedTuple):
    """A `run_chunk` call's scratch (`chunk_scratch`)."""

    cur: np.ndarray  # (cur_rows, max_n) float32 currents
    pcnt: np.ndarray  # int64 spikes per input position
    plist: np.ndarray  # int64 their channels; the push scatter's input list
    pm: np.ndarray  # uint8 mask map
    idx: np.ndarray  # int64 row list
    kv: np.ndarray  # float32 the rows' weights
    starts: np.ndarray  # int64 where each listed output's rows start
    outs: np.ndarray  # int64 the listed outputs
    omap: np.ndarray  # uint8 flags of the activity count
    ccnt: np.ndarray  # int32 the IF scan's channel counts
    xbar: CrossbarScratch


def neuron_flags(n) -> int:
    """The L_NEURON flags of a neuron model (`hwsim.model.graph.Neuron`)."""
    return (
        N_LEAKY * int(n.leaky)
        + N_STRICT * int(n.strict)
        + N_DELAYED * int(n.delayed_reset)
        + N_RESET_TO * int(n.reset_to is not None)
    )


def neuron_table(neurons) -> np.ndarray:
    """(L, 4) float32 `Network.neuron` of the layers' neuron models (`NR_*` columns; the
    reset potential 0 where the neuron subtracts)."""
    rows = [(n.leak, n.v_rest, n.gain, n.reset_to or 0.0) for n in neurons]
    return np.array(rows, np.float32).reshape(-1, 4)


def start_membranes(v: np.ndarray, layer_tab: np.ndarray, neurons, v0: float) -> None:
    """Each layer's membranes v[:, off : off + n] (rows of `layer_tab`) set to the potential
    its neuron model starts at (`Neuron.start`, V0 = v0)."""
    for row, n in zip(layer_tab, neurons, strict=True):
        v[:, row[L_OFF] : row[L_OFF] + row[L_N]] = n.start(v0)


def vec_ceil(n: int) -> int:
    """n rounded up to a multiple of VEC."""
    return -(-n // VEC) * VEC


def aligned(shape: tuple[int, ...] | int, dtype, fill=0) -> np.ndarray:
    """A C-contiguous array of `shape` filled with `fill` (None: left as it is) whose data
    starts at a multiple of ALIGN bytes (from `_buffers`: large ones reuse a buffer no array
    uses any more)."""
    dt = np.dtype(dtype)
    size = int(np.prod(shape)) * dt.itemsize
    raw = _buffers.take(size + ALIGN)  # a large one reused with its pages in place
    start = -raw.ctypes.data % ALIGN
    out = raw[start : start + size].view(dt).reshape(shape)
    if fill is not None:
        out[...] = fill
    return out


@njit(**KERNEL)
def polyphase(w, stride, out):
    """out = weights w (kh, kw, C_in, C_out) as (kh, C_in, stride, ceil(kw/stride), C_out),
    flat: [ky, c, r, jj] holds kx = r + stride (n_r - 1 - jj), n_r the number of kx = r mod
    stride (zeros past n_r): for an input column, the kx that reach consecutive outputs, in
    output order, are consecutive (the PUSH rows, backends.scatter_runs)."""
    kh, kw, cin, cout = w.shape
    nmax = (kw + stride - 1) // stride
    for ky in range(kh):
        for c in range(cin):
            for r in range(stride):
                n_r = max(0, (kw - r + stride - 1) // stride)
                for jj in range(nmax):
                    base = (((ky * cin + c) * stride + r) * nmax + jj) * cout
                    if jj < n_r:
                        kx = r + stride * (n_r - 1 - jj)
                        for o in range(cout):
                            out[base + o] = w[ky, kx, c, o]
                    else:
                        for o in range(cout):
                            out[base + o] = 0


BYTE_BITS = np.uint64(0x0101010101010101)
BYTE_GATHER = np.uint64(0x0102040810204080)  # (8 bytes of 0/1) * this >> 56: their bit mask


def _make_row_sum(nv: int):
    """An intrinsic cur[d : d + nv*LANES] += sum over q < n of rows[idx[q] + off :][: nv*LANES]
    * k, in q order: the nv partial sums stay in registers (one load and one store of cur),
    each row is one fused multiply-add per vector (exact as a multiply then add: k is a power
    of two, so rows * k is exact)."""

    def row_sum(typingctx, cur, d, rows, idx, n, k, off):
        sig = types.void(cur, types.intp, rows, idx, types.intp, types.float32, types.intp)

        def codegen(context, builder, signature, args):
            cur, rows, idx = L.data(context, builder, signature, args, 0, 2, 3)
            d, n, k, off = args[1], args[4], args[5], args[6]
            vty = L.float_vector(LANES)
            kk, fma = L.splat(builder, k, vty), L.fma(builder, vty)

            def add_row(q, sums):
                r = builder.add(builder.load(builder.gep(idx, [q])), off)
                return [
                    builder.call(fma, [L.load_at(builder, rows, r, vty, v * LANES), kk, acc])
                    for v, acc in enumerate(sums)
                ]

            def rows_loop(init):
                return L.counted_loop(builder, L.const(n, 0), n, init, add_row, "rows")

            L.accumulate(builder, cur, [d], nv, vty, rows_loop)
            return context.get_dummy_value()

        return sig, codegen

    return L.named_intrinsic(row_sum, f"_row_sum{nv}")


_row_sum8 = _make_row_sum(8)
_row_sum4 = _make_row_sum(4)
_row_sum2 = _make_row_sum(2)
_row_sum1 = _make_row_sum(1)


def _make_table_sums(nv: int, no: int, lanes: int = LANES):
    """An intrinsic cur[d + j dstride : + nv*lanes] += k * sum over q < nq of rows[rbase[q] +
    m_jq cout + off :][: nv*lanes] for the `no` output positions j < no of a call (their
    currents dstride floats apart), m_jq = pm[p0 + j pstep + moff[q]] the group mask under
    window entry q of output j (a zero-padded mask map: padding selects a row of zeros). Each
    output's rows are added in q order; the no x nv partial sums are independent chains in
    registers, so the adds of one output overlap the latency of another's."""

    def table_sums(typingctx, cur, d, dstride, rows, pm, p0, pstep, moff, rbase, nq, cout, k, off):
        sig = types.void(
            cur, types.intp, types.intp, rows, pm, types.intp, types.intp, moff, rbase,
            types.intp, types.intp, types.float32, types.intp,
        )  # fmt: skip

        def codegen(context, builder, signature, args):
            cur, rows, pm, moff, rbase = L.data(context, builder, signature, args, 0, 3, 4, 7, 8)
            d, dstride, p0, pstep = args[1], args[2], args[5], args[6]
            nq, cout, k, off = args[9], args[10], args[11], args[12]
            vty = L.float_vector(lanes)
            kk, fma = L.splat(builder, k, vty), L.fma(builder, vty)
            starts = [builder.add(d, builder.mul(dstride, L.const(d, j))) for j in range(no)]
            origins = [builder.add(p0, builder.mul(pstep, L.const(p0, j))) for j in range(no)]

            def add_rows(q, sums):
                rb = builder.add(builder.load(builder.gep(rbase, [q])), off)
                mo = builder.load(builder.gep(moff, [q]))
                out = []
                for j in range(no):
                    at = builder.gep(pm, [builder.add(origins[j], mo)])
                    m = builder.zext(builder.load(at), cout.type)
                    r = builder.add(rb, builder.mul(m, cout))
                    for v in range(nv):
                        w = L.load_at(builder, rows, r, vty, v * lanes)
                        out.append(builder.call(fma, [w, kk, sums[j * nv + v]]))
                return out

            def tables_loop(init):
                return L.counted_loop(builder, L.const(nq, 0), nq, init, add_rows, "tables")

            L.accumulate(builder, cur, starts, nv, vty, tables_loop)
            return context.get_dummy_value()

        return sig, codegen

    return L.named_intrinsic(table_sums, f"_table_sums{nv}x{no}x{lanes}")


_table_sums1x8 = _make_table_sums(1, 8)
_table_sums1x4 = _make_table_sums(1, 4)
_table_sums1x4w = _make_table_sums(1, 4, 16)
_table_sums2x4w = _make_table_sums(2, 4, 16)
_table_sums4x1w = _make_table_sums(4, 1, 16)
_table_sums2x1w = _make_table_sums(2, 1, 16)
_table_sums1x1w = _make_table_sums(1, 1, 16)
_table_sums1x1 = _make_table_sums(1, 1)
_table_sums1x2 = _make_table_sums(1, 2)
_table_sums1x3 = _make_table_sums(1, 3)
_table_sums1x2w = _make_table_sums(1, 2, 16)
_table_sums1x3w = _make_table_sums(1, 3, 16)
_table_sums2x2w = _make_table_sums(2, 2, 16)
_table_sums2x3w = _make_table_sums(2, 3, 16)


@intrinsic
def _axpy8(typingctx, dst, di, src, si, k):
    """dst[di:di+8] += src[si:si+8] * k, as one <8 x float> operation (no alias assumption)."""
    sig = types.void(dst, types.intp, src, types.intp, types.float32)

    def codegen(context, builder, signature, args):
        dst, src = L.data(context, builder, signature, args, 0, 2)
        vty = L.float_vector(8)
        dp, sp = L.vector_at(builder, dst, args[1], vty), L.vector_at(builder, src, args[3], vty)
        prod = builder.fmul(builder.load(sp, align=4), L.splat(builder, args[4], vty))
        builder.store(builder.fadd(builder.load(dp, align=4), prod), dp, align=4)
        return context.get_dummy_value()

    return sig, codegen


def _make_sum_into(nv: int, lanes: int = LANES):
    """An intrinsic cur[d : d + nv*lanes] += sum over q in [q0, q1) of wflat[widx[q] + woff :
    +nv*lanes] * kval[q], in q order, the nv partial sums in registers (one load and one
    store of cur; one fused multiply-add per vector, exact as a multiply then add: kval is a
    power of two or its negative, so the product is exact)."""

    def sum_into(typingctx, cur, d, wflat, widx, kval, q0, q1, woff):
        sig = types.void(cur, types.intp, wflat, widx, kval, types.intp, types.intp, types.intp)

        def codegen(context, builder, signature, args):
            cur, wflat, widx, kval = L.data(context, builder, signature, args, 0, 2, 3, 4)
            d, q0, q1, woff = args[1], args[5], args[6], args[7]
            vty, n = L.float_vector(lanes), lanes
            fma = L.fma(builder, vty)

            def add_row(q, sums):
                wi = builder.add(builder.load(builder.gep(widx, [q])), woff)
                kv = L.splat(builder, builder.load(builder.gep(kval, [q])), vty)
                return [
                    builder.call(fma, [L.load_at(builder, wflat, wi, vty, v * n), kv, acc])
                    for v, acc in enumerate(sums)
                ]

            def spikes_loop(init):
                return L.counted_loop(builder, q0, q1, init, add_row, "sum")

            L.accumulate(builder, cur, [d], nv, vty, spikes_loop)
            return context.get_dummy_value()

        return sig, codegen

    return L.named_intrinsic(sum_into, f"_sum_into{nv}x{lanes}")


WIDE = 16  # floats per vector of the wide scatter (an AVX-512 register)
WIDE_BLOCK = 12 if L.vector_registers() >= 32 else 6
"""The most WIDE vectors of partial sums the wide scatter keeps in registers, chosen for the
compile target: 12 (192 floats, 12 of AVX-512's 32 registers), or 6 (96 floats) where a
<16 x float> takes two of AVX2's 16 registers: 12 or 8 would spill sums to the stack on every
spike. Either way each output adds the same rows in the same order (the same bits)."""
_sum_into12w = _make_sum_into(12, WIDE)
_sum_into8w = _make_sum_into(8, WIDE)
_sum_into6w = _make_sum_into(6, WIDE)
_sum_into4w = _make_sum_into(4, WIDE)
_sum_into2w = _make_sum_into(2, WIDE)
_sum_into1w = _make_sum_into(1, WIDE)
_sum_into1 = _make_sum_into(1)


IF_LANES = 16  # neurons per vector of the IF scan


def _make_if_scan(nacc: int, leaky: bool = False):
    """An intrinsic neuron update of neurons 0 .. 16 nacc floor(n / (16 nacc)) - 1 (nacc >= 1),
    16 at a time: x = v + cur (IF); fired iff x >= thc (ordered: NaN never fires; thc = th, or
    the next float32 above it for firing at x > th); v = x - th if fired else x; spk = 1 or 0.
    Vector k's spikes also add into int32 counter (k mod nacc) kept in registers, added to
    cnt[16 i : 16 i + 16] (counter i) at the end: with 16 nacc channels, cnt[c] gains channel
    c's spikes. Returns the neurons fired (int64).

    `leaky` (the LIF step, docs/engine.md): x = (v leak + vr) + cur gain, then x - thp where
    the layer fired at the step before (prev != 0; thp = 0 unless the reset is delayed), and
    th the subtraction at a spike (0 for a delayed reset); with tov != 0, v = rv at a spike
    (a reset to a potential) instead of x - th."""

    def codegen(context, builder, signature, args):
        v_data, c_data, s_data, n_data = L.data(context, builder, signature, args, 0, 1, 2, 3)
        n = args[4]
        lanes = IF_LANES
        i64 = ir.IntType(64)
        fv, bv = L.float_vector(lanes), ir.VectorType(ir.IntType(8), lanes)
        cv = ir.VectorType(L.I32, lanes)
        thc_v, th_v = (L.splat(builder, a, fv) for a in args[5:7])
        if leaky:
            (p_data,) = L.data(context, builder, signature, args, 7)
            thp, lk, vr, gn, rv = (L.splat(builder, a, fv) for a in args[8:13])
            tov = builder.icmp_signed("!=", args[13], ir.Constant(args[13].type, 0))

        def update(i, vp):
            c = L.load_at(builder, c_data, i, fv)
            if not leaky:
                return builder.fadd(builder.load(vp, align=4), c)
            x = builder.fadd(builder.fmul(builder.load(vp, align=4), lk), vr)
            x = builder.fadd(x, builder.fmul(c, gn))
            prev = builder.icmp_unsigned(
                "!=", L.load_at(builder, p_data, i, bv), ir.Constant(bv, None)
            )
            return builder.select(prev, builder.fsub(x, thp), x)

        def scan(k, carried):
            fired, counts = carried[0], carried[1:]
            out = []
            for a in range(nacc):
                i = builder.add(builder.mul(k, L.const(k, lanes * nacc)), L.const(k, a * lanes))
                vp = L.vector_at(builder, v_data, i, fv)
                sp = L.vector_at(builder, s_data, i, bv)
                x = update(i, vp)
                on = builder.fcmp_ordered(">=", x, thc_v)
                after = builder.fsub(x, th_v)
                if leaky:
                    after = builder.select(tov, rv, after)
                builder.store(builder.select(on, after, x), vp, align=4)
                builder.store(builder.zext(on, bv), sp, align=1)
                bits = builder.zext(builder.bitcast(on, ir.IntType(lanes)), i64)
                fired = builder.add(fired, builder.ctpop(bits))
                out.append(builder.add(counts[a], builder.zext(on, cv)))
            return [fired, *out]

        steps = builder.sdiv(n, L.const(n, lanes * nacc))
        zero = [ir.Constant(i64, 0)] + [ir.Constant(cv, None)] * nacc
        fired, *counts = L.counted_loop(builder, L.const(n, 0), steps, zero, scan, "if")
        for a, total in enumerate(counts):
            cp = L.vector_at(builder, n_data, L.const(n, a * lanes), cv)
            builder.store(builder.add(builder.load(cp, align=4), total), cp, align=4)
        return fired

    if leaky:

        def lif_scan(typingctx, v, cur, spk, cnt, n, thc, th, prev, thp, lk, vr, gn, rv, tov):
            f32, i64 = types.float32, types.int64
            sig = i64(v, cur, spk, cnt, types.intp, f32, f32, prev, f32, f32, f32, f32, f32, i64)
            return sig, codegen

        return L.named_intrinsic(lif_scan, f"_lif_scan{nacc}")

    def if_scan(typingctx, v, cur, spk, cnt, n, thc, th):
        sig = types.int64(v, cur, spk, cnt, types.intp, types.float32, types.float32)
        return sig, codegen

    return L.named_intrinsic(if_scan, f"_if_scan{nacc}")


_if_scan1 = _make_if_scan(1)
_if_scan2 = _make_if_scan(2)
_if_scan4 = _make_if_scan(4)
_lif_scan1 = _make_if_scan(1, leaky=True)
_lif_scan2 = _make_if_scan(2, leaky=True)
_lif_scan4 = _make_if_scan(4, leaky=True)


@intrinsic
def _nonzero_mask64(typingctx, arr, off):
    """uint64 whose bit i is set iff arr[off + i] != 0 (64 int8 read at once)."""
    sig = types.uint64(arr, types.intp)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        vty = ir.VectorType(ir.IntType(8), 64)
        p = builder.bitcast(builder.gep(a.data, [args[1]]), vty.as_pointer())
        nz = builder.icmp_unsigned("!=", builder.load(p, align=1), ir.Constant(vty, None))
        return builder.bitcast(nz, ir.IntType(64))

    return sig, codegen


@intrinsic
def _load_u64(typingctx, arr, off):
    """The 8 bytes arr[off : off + 8] of an int8 array as one uint64 (unaligned load)."""
    sig = types.uint64(arr, types.intp)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        p = builder.bitcast(builder.gep(a.data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(p, align=1)

    return sig, codegen


@intrinsic
def _store_u64(typingctx, arr, off, x):
    """Store uint64 x as the 8 bytes arr[off : off + 8] of a uint8 array (unaligned)."""
    sig = types.void(arr, types.intp, types.uint64)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        p = builder.bitcast(builder.gep(a.data, [args[1]]), ir.IntType(64).as_pointer())
        builder.store(args[2], p, align=1)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _cttz(typingctx, x):
    """Count of trailing zero bits of a nonzero uint64 (LLVM cttz)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@intrinsic
def _popcount(typingctx, x):
    """Count of set bits of a uint64 (LLVM ctpop)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(inline="always", **KERNEL)
def _count_nonzero(spk, so, n):
    """Count of the nonzero bytes of spk[so : so + n], 64 at once (a byte loop indexed by a
    signed offset gathers its bytes one by one: numba's wraparound test)."""
    m = 0
    nb = n // 64
    for blk in range(nb):
        m += np.int64(_popcount(_nonzero_mask64(spk, so + blk * 64)))
    for i in range(nb * 64, n):
        m += spk[np.uint64(so + i)] != 0
    return m


@njit(inline="always", **KERNEL)
def _axpy(d, di, s, si, n, k):
    """d[di:di+n] += s[si:si+n] * k (float32; k is +-1 or a power of two, so s * k is exact)."""
    o = 0
    while o + 8 <= n:
        _axpy8(d, di + o, s, si + o, k)
        o += 8
    while o < n:
        d[di + o] += s[si + o] * k
        o += 1


@njit(inline="always", **KERNEL)
def _events(spk, so, n, ev):
    """Indices i (0 <= i < n) with spk[so + i] != 0, in order, into ev; returns their count."""
    m = 0
    nb = n // 64
    for blk in range(nb):
        mask = _nonzero_mask64(spk, so + blk * 64)
        base = blk * 64
        while mask != 0:
            ev[np.uint64(m)] = base + np.int64(_cttz(mask))  # unsigned: no wraparound test
            m += 1
            mask &= mask - np.uint64(1)
    for i in range(nb * 64, n):
        ev[np.uint64(m)] = i
        m += spk[np.uint64(so + i)] != 0
    return m


@njit(inline="always", **KERNEL)
def _add_rows(cur, d, cout, rows, idx, n, k, off):
    """cur[d : d + cout] += sum over q < n of rows[idx[q] + off :][:cout] * k, rows added in q
    order; 8, 4, 2, 1 vectors at a time, then a scalar tail."""
    o = 0
    while cout - o >= 8 * LANES:
        _row_sum8(cur, d + o, rows, idx, n, k, off + o)
        o += 8 * LANES
    if cout - o >= 4 * LANES:
        _row_sum4(cur, d + o, rows, idx, n, k, off + o)
        o += 4 * LANES
    if cout - o >= 2 * LANES:
        _row_sum2(cur, d + o, rows, idx, n, k, off + o)
        o += 2 * LANES
    if cout - o >= LANES:
        _row_sum1(cur, d + o, rows, idx, n, k, off + o)
        o += LANES
    for i in range(o, cout):
        acc = cur[d + i]
        for q in range(n):
            acc += rows[idx[q] + off + i] * k
        cur[d + i] = acc


@njit(inline="always", **KERNEL)
def _list_positions(spk, so, npos, cin, pcnt, plist):
    """Per input position p: pcnt[p] nonzero channels of spk[so + p * cin :][:cin], listed in
    plist[p * cin :] in order. A 64-byte vector compare gives a bit mask, trailing-zero counts
    give the channels (for cin dividing 64, one mask covers 64 / cin positions)."""
    if cin % 64 == 0:
        for p in range(npos):
            m = 0
            for blk in range(0, cin, 64):
                mask = _nonzero_mask64(spk, so + p * cin + blk)
                while mask != 0:
                    plist[p * cin + m] = blk + np.int64(_cttz(mask))
                    m += 1
                    mask &= mask - np.uint64(1)
            pcnt[p] = m
        return
    p0 = 0
    if 64 % cin == 0:
        per = 64 // cin
        full = np.uint64((1 << cin) - 1) if cin < 64 else ~np.uint64(0)
        while p0 + per <= npos:
            mask = _nonzero_mask64(spk, so + p0 * cin)
            for j in range(per):
                sub = (mask >> np.uint64(j * cin)) & full
                p = p0 + j
                m = 0
                while sub != 0:
                    plist[p * cin + m] = np.int64(_cttz(sub))
                    m += 1
                    sub &= sub - np.uint64(1)
                pcnt[p] = m
            p0 += per
    for p in range(p0, npos):
        m = 0
        for c in range(cin):
            plist[p * cin + m] = c
            m += spk[so + p * cin + c] != 0
        pcnt[p] = m


@njit(inline="always", **KERNEL)
def _group_masks(spk, so, h, w, cin, gbits, pad, pm):
    """pm[((iy + pad) (W + 2 pad) + ix + pad) G + g] = bit mask of channels g*gbits ..
    g*gbits + gbits - 1 at input position (iy, ix) (G = ceil(cin / gbits) groups), zero on the
    `pad` wide border; spikes 0/1. Eight bytes are read at once (at most 7 past the map's end:
    the spike rows are padded). With byte groups of whole bytes (gbits 8, cin a multiple of 8) a
    row's masks are the bytes of its spikes' nonzero bit masks, 64 spikes (8 masks) at a
    time."""
    ng = (cin + gbits - 1) // gbits
    wp = w + 2 * pad
    pm[: (h + 2 * pad) * wp * ng] = 0
    if gbits == 8 and cin % 8 == 0:
        row = w * cin  # a row's spikes, one mask byte per 8
        words = row // 64
        for iy in range(h):
            src, dst = so + iy * row, ((iy + pad) * wp + pad) * ng
            for k in range(words):
                _store_u64(pm, dst + 8 * k, _nonzero_mask64(spk, src + 64 * k))
            for g in range(8 * words, row // 8):
                bits = (_load_u64(spk, src + 8 * g) & BYTE_BITS) * BYTE_GATHER
                pm[dst + g] = bits >> np.uint64(56)
        return
    for iy in range(h):
        for ix in range(w):
            p = iy * w + ix
            q = ((iy + pad) * wp + ix + pad) * ng
            for g in range(ng):
                c0 = g * gbits
                bits = (_load_u64(spk, so + p * cin + c0) & BYTE_BITS) * BYTE_GATHER
                width = min(gbits, cin - c0)
                pm[q + g] = (bits >> np.uint64(56)) & np.uint64((1 << width) - 1)


@njit(inline="always", **KERNEL)
def _position_spikes(spk, p, cin, w0, cstride, scale, widx, kval):
    """The nonzero channels c of the input position whose cin (32 or a multiple of 64)
    channels start at spk[p], in order: widx[i] = w0 + c cstride, kval[i] = scale times
    the spike; returns their count. 64 bytes compared at once (a position of 32 channels
    reads the next 32 bytes too, masked off: spike rows have 64 spare bytes)."""
    m = 0
    for blk in range(0, cin, 64):
        mask = _nonzero_mask64(spk, p + blk)
        if cin < 64:
            mask &= (np.uint64(1) << np.uint64(cin)) - np.uint64(1)
        while mask != 0:
            c = blk + np.int64(_cttz(mask))
            mask &= mask - np.uint64(1)
            u = np.uint64(m)  # unsigned indices: no wraparound tests
            widx[u] = w0 + c * cstride
            x = spk[np.uint64(p + c)]
            kval[u] = scale if x == 1 else scale * np.float32(x)  # scale * 1 is scale
            m += 1
    return m


@njit(inline="always", **KERNEL)
def _scatter(cur, spk, so, wflat, ct, itab, scale, ev, widx, kval):
    """cur (H_out*W_out*C_out) += scale * conv(spk[so:so+H*W*C_in]) for connection row `ct`.

    For every nonzero input (position p, channel c): each entry e of p's run list adds
    wflat[wo_e + c * CSTRIDE : + ln_e] * value into cur[dst_e : dst_e + ln_e]. With GROUPED
    (wide inputs: several spikes per position), position by position, its spikes listed from
    its channels' bytes (`_position_spikes`) are summed into blocks of up to 192 outputs in
    registers (`_sum_into*`): one load and store of cur per block, not per spike (the same
    additions in the same order)."""
    cin = ct[CIN]
    ptr, dst, wo, ln = ct[E_PTR], ct[E_DST], ct[E_WO], ct[E_LN]
    w0, cstride, shift = ct[R_OFF], ct[CSTRIDE], ct[CSHIFT]
    if ct[GROUPED] != 0:
        for p in range(ct[H] * ct[W]):
            m = _position_spikes(spk, so + (p << shift), cin, w0, cstride, scale, widx, kval)
            if m == 0:
                continue
            for e in range(itab[ptr + p], itab[ptr + p + 1]):
                d, wofe, n = itab[dst + e], itab[wo + e], itab[ln + e]
                o = 0
                if WIDE_BLOCK >= 12:
                    while n - o >= 12 * WIDE:
                        _sum_into12w(cur, d + o, wflat, widx, kval, 0, m, wofe + o)
                        o += 12 * WIDE
                    if n - o >= 8 * WIDE:
                        _sum_into8w(cur, d + o, wflat, widx, kval, 0, m, wofe + o)
                        o += 8 * WIDE
                while n - o >= 6 * WIDE:
                    _sum_into6w(cur, d + o, wflat, widx, kval, 0, m, wofe + o)
                    o += 6 * WIDE
                if n - o >= 4 * WIDE:
                    _sum_into4w(cur, d + o, wflat, widx, kval, 0, m, wofe + o)
                    o += 4 * WIDE
                if n - o >= 2 * WIDE:
                    _sum_into2w(cur, d + o, wflat, widx, kval, 0, m, wofe + o)
                    o += 2 * WIDE
                if n - o >= WIDE:
                    _sum_into1w(cur, d + o, wflat, widx, kval, 0, m, wofe + o)
                    o += WIDE
                if n - o >= LANES:
                    _sum_into1(cur, d + o, wflat, widx, kval, 0, m, wofe + o)
        return
    m = _events(spk, so, ct[H] * ct[W] * cin, ev)
    vec = ct[COUT] % 8 == 0
    for q in range(m):
        idx = ev[q]
        if shift >= 0:
            p = idx >> shift
            c = idx & (cin - 1)
        else:
            p = idx // cin
            c = idx - p * cin
        k = scale * np.float32(spk[so + idx])
        wc = w0 + c * cstride
        for e in range(itab[ptr + p], itab[ptr + p + 1]):
            d, wi, n = itab[dst + e], wc + itab[wo + e], itab[ln + e]
            if vec:
                for o in range(0, n, 8):
                    _axpy8(cur, d + o, wflat, wi + o, k)
            else:
                _axpy(cur, d, wflat, wi, n, k)


@njit(inline="always", **KERNEL)
def _table_rest(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, scale, rest):
    """`_table_conv`'s sums for `rest` (2 or 3) consecutive output positions of a row past its
    groups of 4, C_out = 8, 16 or 32, in one call: each output adds the same rows in the same
    order as one position at a time, but the positions' sums are independent chains, so their
    adds overlap (one position alone waits on each add's latency)."""
    if cout == LANES:
        if rest == 2:
            _table_sums1x2(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, cout, scale, 0)
        else:
            _table_sums1x3(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, cout, scale, 0)
    elif cout == 2 * LANES:
        if rest == 2:
            _table_sums1x2w(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, cout, scale, 0)
        else:
            _table_sums1x3w(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, cout, scale, 0)
    elif WIDE_BLOCK >= 12:
        if rest == 2:
            _table_sums2x2w(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, cout, scale, 0)
        else:
            _table_sums2x3w(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, cout, scale, 0)
    else:  # 32 outputs on AVX2: two passes of 16, as the groups of 4
        for c in range(0, cout, WIDE):
            if rest == 2:
                _table_sums1x2w(cur, d + c, cout, rflat, pm, p0, pstep, mo, rb, nq, cout,
                                scale, c)  # fmt: skip
            else:
                _table_sums1x3w(cur, d + c, cout, rflat, pm, p0, pstep, mo, rb, nq, cout,
                                scale, c)  # fmt: skip


@njit(**KERNEL)
def _table_conv(cur, spk, so, rflat, ct, itab, scale, pm):
    """cur (H_out*W_out*C_out) += scale * conv(spk[so:so+H*W*C_in]) for connection row `ct`
    with partial-sum tables (GBITS = b > 0; spikes 0/1), output position by output position.

    Each group of b channels at each window position selects the table row [ky kw + kx, group,
    mask] (backends.table_rows: the sum of the channels' weight rows); the window's rows are
    summed in registers in (ky, kx, group) order after what cur holds (one load and store of
    cur per output). The masks lie in a map with a zero border (`_group_masks`), so window
    entry q of an output is at a fixed distance itab[MOFF + q] from the output's window
    origin; itab[RBASE + q] is the offset of entry q's table (backends.table_offsets).
    Narrow outputs run several positions of a row per call (`_make_table_sums`): 8 at a time
    (8 outputs), 4 at a time, then the row's last 2 or 3 together (`_table_rest`)."""
    cin, cout, gbits = ct[CIN], ct[COUT], ct[GBITS]
    ng = (cin + gbits - 1) // gbits
    pad, st = ct[PAD], ct[STRIDE]
    _group_masks(spk, so, ct[H], ct[W], cin, gbits, pad, pm)
    wp = ct[W] + 2 * pad
    nq = ct[KH] * ct[KW] * ng
    mo = itab[ct[MOFF] : ct[MOFF] + nq]
    rb = itab[ct[RBASE] : ct[RBASE] + nq]
    wo = ct[WO]
    narrow = cout in (LANES, 2 * LANES, 4 * LANES)
    eights = wo - wo % 8 if cout == LANES else 0  # 8 positions of 8 outputs: 8 registers
    multi = wo - (wo - eights) % 4 if narrow else 0
    rest = wo - multi if narrow and wo - multi >= 2 else 0
    pstep = st * ng
    for oy in range(ct[HO]):
        for ox in range(0, eights, 8):
            d, p0 = (oy * wo + ox) * cout, (oy * st * wp + ox * st) * ng
            _table_sums1x8(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, cout, scale, 0)
        for ox in range(eights, multi, 4):
            d, p0 = (oy * wo + ox) * cout, (oy * st * wp + ox * st) * ng
            if cout == LANES:
                _table_sums1x4(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, cout, scale, 0)
            elif cout == 2 * LANES:
                _table_sums1x4w(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, cout, scale, 0)
            elif WIDE_BLOCK >= 12:
                _table_sums2x4w(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, cout, scale, 0)
            else:  # 2 x 4 vectors of sums would spill on AVX2: two passes of 4
                _table_sums1x4w(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, cout, scale, 0)
                _table_sums1x4w(cur, d + WIDE, cout, rflat, pm, p0, pstep, mo, rb, nq, cout,
                                scale, WIDE)  # fmt: skip
        if rest > 0:  # the row's last 2 or 3 positions in one call, as independent sums
            d, p0 = (oy * wo + multi) * cout, (oy * st * wp + multi * st) * ng
            _table_rest(cur, d, cout, rflat, pm, p0, pstep, mo, rb, nq, scale, rest)
        for ox in range(multi + rest, wo):
            d, p0 = (oy * wo + ox) * cout, (oy * st * wp + ox * st) * ng
            c = 0
            while cout - c >= 4 * WIDE:
                _table_sums4x1w(cur, d + c, 0, rflat, pm, p0, 0, mo, rb, nq, cout, scale, c)
                c += 4 * WIDE
            if cout - c >= 2 * WIDE:
                _table_sums2x1w(cur, d + c, 0, rflat, pm, p0, 0, mo, rb, nq, cout, scale, c)
                c += 2 * WIDE
            if cout - c >= WIDE:
                _table_sums1x1w(cur, d + c, 0, rflat, pm, p0, 0, mo, rb, nq, cout, scale, c)
                c += WIDE
            if cout - c >= LANES:
                _table_sums1x1(cur, d + c, 0, rflat, pm, p0, 0, mo, rb, nq, cout, scale, c)
                c += LANES
            for i in range(c, cout):
                acc = cur[d + i]
                for q in range(nq):
                    acc += rflat[rb[q] + np.int64(pm[p0 + mo[q]]) * cout + i] * scale
                cur[d + i] = acc


@njit(**KERNEL)
def _sum_listed(cur, b0, cout, rflat, idx, scale, starts, outs, npairs):
    """Sum the listed rows of each (image, output position) outs[k] = (b - b0) H_out W_out + o
    (rows idx[starts[k] : starts[k + 1]]) into cur[b - b0][o C_out :][:C_out], 64 output
    channels at a time over all listed outputs, so that a slice of the weights is reused by
    every listed output while it is in cache."""
    nout = cur.shape[1] // cout if cout > 0 else 1
    for c0 in range(0, cout, 8 * LANES):
        width = min(8 * LANES, cout - c0)
        for k in range(npairs):
            q0, q1 = starts[k], starts[k + 1]
            bo = outs[k]
            bl = bo // nout
            o = bo - bl * nout
            _add_rows(
                cur[bl],
                o * cout + c0,
                width,
                rflat,
                idx[q0:q1],
                q1 - q0,
                scale,
                c0,
            )


@njit(**KERNEL)
def _event_conv(cur, b0, b1, spks, so, rflat, ct, scale, pcnt, plist, idx, starts, outs):
    """cur[b - b0] (H_out*W_out*C_out) += scale * conv(spks[b, so:so+H*W*C_in]) for images
    b0..b1-1 and connection row `ct` with event rows (GBITS = 0): each nonzero input (ky, kx, c)
    of an output position's window selects the weight row rflat[R_OFF + ((ky kw + kx) C_in +
    c) C_out :][:C_out] (binary spikes only). The rows of the output positions
    of all images are listed (idx) until the list is full, then summed in registers in
    (ky, kx, c) order after what cur holds, 64 output channels at a time (`_sum_listed`)."""
    h, w, cin = ct[H], ct[W], ct[CIN]
    ho, wo, cout = ct[HO], ct[WO], ct[COUT]
    kh, kw, s, pad = ct[KH], ct[KW], ct[STRIDE], ct[PAD]
    r0 = ct[R_OFF]
    nout = ho * wo
    cap = min(idx.shape[0], outs.shape[0]) - kh * kw * cin  # room for one more window
    cview = cur[:, : nout * cout]
    n = 0
    npairs = 0
    for b in range(b0, b1):
        spk = spks[b]
        _list_positions(spk, so, h * w, cin, pcnt, plist)
        for oy in range(ho):
            ky0 = max(0, pad - oy * s)
            ky1 = min(kh, h + pad - oy * s)
            for ox in range(wo):
                if n > cap:
                    starts[npairs] = n
                    _sum_listed(cview, b0, cout, rflat, idx, scale, starts, outs, npairs)
                    n = 0
                    npairs = 0
                n0 = n
                kx0 = max(0, pad - ox * s)
                kx1 = min(kw, w + pad - ox * s)
                for ky in range(ky0, ky1):
                    prow = (oy * s - pad + ky) * w - pad + ox * s
                    for kx in range(kx0, kx1):
                        p = prow + kx
                        base = r0 + (ky * kw + kx) * cin * cout
                        for i in range(pcnt[p]):
                            c = plist[p * cin + i]
                            idx[n] = base + c * cout
                            n += 1
                if n > n0:
                    starts[npairs] = n0
                    outs[npairs] = (b - b0) * nout + oy * wo + ox
                    npairs += 1
    starts[npairs] = n
    _sum_listed(cview, b0, cout, rflat, idx, scale, starts, outs, npairs)


@njit(inline="always", **KERNEL)
def _gap(cur, chan, co, ct, rflat, scale):
    """cur (C) += scale * mean over H, W of the source's spikes, from its per-channel counts
    chan[co:co+C] (kept by the source's IF scan); the means float32(k) / float32(H W) of every
    count k are the connection's rows (backends.mean_rows)."""
    r0 = ct[R_OFF]
    for i in range(ct[CIN]):
        cur[i] += scale * rflat[r0 + chan[co + i]]


@njit(inline="always", **KERNEL)
def _channel_counts(w64, ss, off, n, ch, out):
    """out[c] = spikes of channel c in ss (n = positions * ch int8 0/1, channels-last). With
    8 | ch and 8 | off, 8 channels are summed at once as the bytes of a uint64 (flushed before
    any byte can pass 255)."""
    for i in range(ch):
        out[i] = 0
    if ch % 8 != 0 or off % 8 != 0:
        for i0 in range(0, n, ch):
            for i in range(ch):
                out[i] += ss[i0 + i]
        return
    wpp = ch // 8
    w0 = off // 8
    npos = n // ch
    for k in range(wpp):
        for p0 in range(0, npos, 255):
            a = np.uint64(0)
            for p in range(p0, min(npos, p0 + 255)):
                a += w64[w0 + p * wpp + k]
            for i in range(8):
                out[k * 8 + i] += (a >> np.uint64(8 * i)) & np.uint64(0xFF)


@njit(inline="always", **KERNEL)
def _position_words(spk, p, cin, end, words):
    """words[w] = bit mask (as int64) of the nonzero channels 64 w .. 64 w + 63 of the input
    position whose cin channels start at spk[p] (0/nonzero), 64 bytes compared at once where
    they lie before `end` (the input's end), one by one past it; returns the nonzero count."""
    n = 0
    for w in range((cin + 63) >> 6):
        q = p + 64 * w
        left = min(cin - 64 * w, 64)
        if q + 64 <= end:
            m = _nonzero_mask64(spk, q)
            if left < 64:
                m &= (np.uint64(1) << np.uint64(left)) - np.uint64(1)
        else:
            m = np.uint64(0)
            for i in range(left):
                m |= np.uint64(spk[q + i] != 0) << np.uint64(i)
        words[w] = np.int64(m)
        n += np.int64(_popcount(m))
    return n


@njit(inline="always", **KERNEL)
def _any_in(words, a, b):
    """1 if any bit a .. b-1 (a < b) of the multiword mask `words` (`_position_words`) is set,
    else 0."""
    w0, w1 = a >> 6, (b - 1) >> 6
    lo = ~np.uint64(0) << np.uint64(a & 63)
    hi = ~np.uint64(0) >> np.uint64(63 - ((b - 1) & 63))
    if w0 == w1:
        return np.int64((np.uint64(words[w0]) & lo & hi) != 0)
    m = (np.uint64(words[w0]) & lo) | (np.uint64(words[w1]) & hi)
    for w in range(w0 + 1, w1):
        m |= np.uint64(words[w])
    return np.int64(m != 0)


@njit(inline="always", **KERNEL)
def _active_positions(spk, so, npos, cin, rows, act, words):
    """act[p G + g] = 1 if input position p has a nonzero channel in row group g (channels
    g rows .. g rows + rows - 1; G groups), else 0, for the npos positions of spk[so:] (cin
    channels each); returns the nonzero count. With one group and cin dividing 64, a 64-byte
    compare covers 64 / cin positions."""
    groups = (cin + rows - 1) // rows
    end = so + npos * cin
    n_in = 0
    p0 = 0
    if groups == 1 and 64 % cin == 0:
        per = 64 // cin
        full = ~np.uint64(0) >> np.uint64(64 - cin)
        while p0 + per <= npos:
            mask = _nonzero_mask64(spk, so + p0 * cin)
            n_in += np.int64(_popcount(mask))
            for j in range(per):
                act[p0 + j] = ((mask >> np.uint64(j * cin)) & full) != 0
            p0 += per
    for p in range(p0, npos):
        n_in += _position_words(spk, so + p * cin, cin, end, words)
        for gg in range(groups):
            act[p * groups + gg] = _any_in(words, gg * rows, min(cin, (gg + 1) * rows))
    return n_in


@njit(inline="always", **KERNEL)
def _or_shifted(dst, d0, src, s0, st, n, groups):
    """dst[d0 + o G + g] |= src[s0 + o st G + g] for o < n, g < G (G = groups)."""
    for o in range(n):
        for gg in range(groups):
            dst[d0 + o * groups + gg] |= src[s0 + o * st * groups + gg]


@njit(inline="always", **KERNEL)
def _valid_outputs(k, st, pad, n_in, n_out):
    """The outputs o0 .. o1-1 along an axis whose kernel offset k reads an input inside the
    map: 0 <= o st - pad + k < n_in."""
    if st == 1:  # no division (a GAP asks for each of its H or W kernel offsets)
        return max(0, pad - k), max(max(0, pad - k), min(n_out, n_in + pad - k))
    o0 = max(0, (pad - k + st - 1) // st)
    o1 = min(n_out, (n_in - 1 + pad - k) // st + 1) if n_in - 1 + pad - k >= 0 else 0
    return o0, max(o0, o1)


@njit(inline="always", **KERNEL)
def _window_bits(lo, k):
    """Bits lo .. lo + k - 1 of a uint64 (those below 0 dropped; 1 <= k <= 64)."""
    ones = ~np.uint64(0) >> np.uint64(64 - k)
    if lo >= 0:
        return ones << np.uint64(lo) if lo < 64 else np.uint64(0)
    return ones >> np.uint64(-lo) if -lo < 64 else np.uint64(0)


@njit(inline="always", **KERNEL)
def _windows_bits(act, groups, h, w, ho, wo, kh, kw, st, pad, ycnt, itab, words, xr):
    """(reads, windows) of `conn_activity` for maps of at most 64 columns in and out, one
    group at a time: an input row's active positions as the bits of a uint64, a window's OR as
    a mask test; words[xr + iy] holds input row iy ORed along x (bit ox), words[xr + h + k]
    the input columns that kernel column k reads."""
    vm = xr + h
    for kx in range(kw):
        o0, o1 = _valid_outputs(kx, st, pad, w, wo)
        m = np.uint64(0)
        for ox in range(o0, o1):
            m |= np.uint64(1) << np.uint64(ox * st - pad + kx)
        words[vm + kx] = np.int64(m)
    reads, windows = 0, 0
    for gg in range(groups):
        for iy in range(h):
            rm = np.uint64(0)
            for ix in range(w):
                rm |= np.uint64(act[(iy * w + ix) * groups + gg]) << np.uint64(ix)
            r = 0
            for kx in range(kw):
                r += np.int64(_popcount(rm & np.uint64(words[vm + kx])))
            reads += itab[ycnt + iy] * r
            x = np.uint64(0)
            for ox in range(wo):
                hit = (rm & _window_bits(ox * st - pad, kw)) != 0
                x |= np.uint64(hit) << np.uint64(ox)
            words[xr + iy] = np.int64(x)
        for oy in range(ho):
            y0 = oy * st - pad
            m = np.uint64(0)
            for iy in range(max(0, y0), min(h, y0 + kh)):
                m |= np.uint64(words[xr + iy])
            windows += np.int64(_popcount(m))
    return reads, windows


@njit(**KERNEL)
def conn_activity(spk, so, conn_tab, g, itab, rows, omap, words):
    """(input spikes, active crossbar reads, active windows) of connection g for one image and
    step; `spk[so:]` its input (H*W*C_in, nonzero = active), `rows` input rows per crossbar,
    scratch omap (>= (H_out W_out + H W_out + H W) groups bytes) and words (>= C_in / 64 + 1 +
    H + k_w).

    A crossbar read is (output position, ky, kx, row group, column block), needed when some
    input in that window position and row group is nonzero; a window is (output position, row
    group, column block), needed when any of its k_h*k_w positions is (docs/engine.md). From
    the active (position, group) map (`_active_positions`): the reads are each active entry
    times the outputs that read it; a window's OR over its k_h x k_w positions is taken along
    x for every input row, then along y over those rows (as bit masks, `_windows_bits`, where
    the rows and the kernel have at most 64 columns; else as bytes); a window over the whole
    map (a GAP) is its active entries' count and whether there is one."""
    ct = conn_tab[g]
    h, w, cin, ho, wo, kh, kw = ct[H], ct[W], ct[CIN], ct[HO], ct[WO], ct[KH], ct[KW]
    st, pad = ct[STRIDE], ct[PAD]
    groups = (cin + rows - 1) // rows
    ycnt, xcnt = ct[YCNT], ct[XCNT]
    row = wo * groups  # entries of an output row
    nmap = ho * row
    act = omap[nmap + h * row :]
    n_in = _active_positions(spk, so, h * w, cin, rows, act, words)
    if ho == 1 and wo == 1 and kh == h and kw == w and pad == 0:
        # one window over the whole map (a GAP): every active entry is read once, and a
        # group's window is active when any of its entries is
        reads, windows = 0, 0
        for gg in range(groups):
            seen = 0
            for p in range(h * w):
                seen += np.int64(act[p * groups + gg])
            reads += seen
            windows += np.int64(seen > 0)
        return n_in, reads * ct[COLBLK], windows * ct[COLBLK]
    xr = (cin + 63) >> 6  # words[xr:]: `_windows_bits`' scratch
    if w <= 64 and wo <= 64 and kw <= 64:
        reads, windows = _windows_bits(act, groups, h, w, ho, wo, kh, kw, st, pad, ycnt, itab,
                                       words, xr)  # fmt: skip
        return n_in, reads * ct[COLBLK], windows * ct[COLBLK]
    xrows = nmap  # omap[xrows:][: H row]: each input row ORed along x
    omap[: nmap + h * row] = 0
    reads = 0
    for iy in range(h):
        pa = iy * w * groups
        rs = 0
        for ix in range(w):
            for gg in range(groups):
                rs += itab[xcnt + ix] * np.int64(act[pa + ix * groups + gg])
        reads += itab[ycnt + iy] * rs
        for kx in range(kw):
            o0, o1 = _valid_outputs(kx, st, pad, w, wo)
            s0 = pa + (o0 * st - pad + kx) * groups
            _or_shifted(omap, xrows + iy * row + o0 * groups, act, s0, st, o1 - o0, groups)
    for ky in range(kh):
        o0, o1 = _valid_outputs(ky, st, pad, h, ho)
        for oy in range(o0, o1):
            _or_shifted(omap, oy * row, omap, xrows + (oy * st - pad + ky) * row, 1, row, 1)
    windows = 0
    for i in range(nmap):
        windows += np.int64(omap[i])
    return n_in, reads * ct[COLBLK], windows * ct[COLBLK]


@njit(inline="always", **KERNEL)
def _flat_groups(spk, so, n, rows):
    """(nonzero entries, groups of `rows` consecutive entries with a nonzero) of spk[so:so+n],
    64 entries compared at once."""
    n_in, ops = 0, 0
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        seen = np.uint64(0)
        q = lo
        while q + 64 <= hi:
            m = _nonzero_mask64(spk, so + q)
            n_in += np.int64(_popcount(m))
            seen |= m
            q += 64
        for i in range(q, hi):
            nz = np.uint64(spk[so + i] != 0)
            n_in += np.int64(nz)
            seen |= nz
        ops += np.int64(seen != 0)
    return n_in, ops


UNROLLED_MASKS = 16
"""The most distinct segment channel masks `_unrolled_bits` keeps rows of (else the counts go
output by output)."""


@njit(inline="always", **KERNEL)
def _unrolled_bits(words, seg, slots, h, w, ho, wo, kh, kw, st, pad):
    """`conn_activity_unrolled`'s operations for C_in <= 64 on maps of at most 64 columns in and
    out, as bit masks over output columns, or -1 past UNROLLED_MASKS distinct segment masks.
    Each distinct mask d gets its input rows' bits (columns whose channels meet it); for each
    kernel column kx, those rows moved onto the output columns that read them at kx; an output
    row's group u is then the OR of its slots' moved rows, popcounted when u changes (a row's
    slots come in nondecreasing group order)."""
    dm = seg + 3 * kh * kw * slots  # words[dm:][:D]: the distinct masks
    n_masks = 0
    for q in range(seg, dm, 3):  # each slot's third word becomes its mask's index (-1: empty)
        m = words[q + 1]
        d = -1
        if m != 0:
            d = 0
            while d < n_masks and words[dm + d] != m:
                d += 1
            if d == n_masks:
                if n_masks == UNROLLED_MASKS:
                    return -1
                words[dm + d] = m
                n_masks += 1
        words[q + 2] = d
    rows = dm + UNROLLED_MASKS  # words[rows + d h + iy]: input row iy's columns meeting mask d
    moved = rows + UNROLLED_MASKS * h  # words[moved + (d h + iy) kw + kx]: on output columns
    for d in range(n_masks):
        m = np.uint64(words[dm + d])
        for iy in range(h):
            r = np.uint64(0)
            for ix in range(w):
                r |= np.uint64((np.uint64(words[iy * w + ix]) & m) != 0) << np.uint64(ix)
            words[rows + d * h + iy] = np.int64(r)
            for kx in range(kw):
                x = np.uint64(0)
                if st == 1:
                    sh = kx - pad  # output column ox reads input column ox + sh
                    if 0 <= sh < 64:
                        x = r >> np.uint64(sh)
                    elif 0 < -sh < 64:
                        x = r << np.uint64(-sh)
                    if wo < 64:
                        x &= (np.uint64(1) << np.uint64(wo)) - np.uint64(1)
                else:
                    for ox in range(wo):
                        ix = ox * st - pad + kx
                        if 0 <= ix < w:
                            x |= ((r >> np.uint64(ix)) & np.uint64(1)) << np.uint64(ox)
                words[moved + (d * h + iy) * kw + kx] = np.int64(x)
    ops = 0
    for oy in range(ho):
        last, acc = -1, np.uint64(0)
        for ky in range(max(0, pad - oy * st), min(kh, h + pad - oy * st)):
            iy = oy * st - pad + ky
            for kx in range(kw):
                q = seg + 3 * ((ky * kw + kx) * slots)
                for j in range(slots):
                    d = words[q + 3 * j + 2]
                    if d < 0:
                        break  # the slots past a kernel position's last group
                    u = words[q + 3 * j]
                    if u != last:
                        ops += np.int64(_popcount(acc))
                        last, acc = u, np.uint64(0)
                    acc |= np.uint64(words[moved + (d * h + iy) * kw + kx])
        ops += np.int64(_popcount(acc))
    return ops


@njit(**KERNEL)
def conn_activity_unrolled(spk, so, conn_tab, g, itab, rows, omap, words):
    """(input spikes, active PE operations, active PE operations) of connection g for one image
    and step under the unrolled mapping; `spk[so:]` its input (H*W*C_in, nonzero = active),
    `rows` rows per crossbar, scratch words (>= H W (C_in / 64 + 1) + 3 k_h k_w (C_in / rows +
    2) + ceil(k_h k_w C_in / rows) / 64 + 1 int64, `backends.activity_words`; omap unused).

    A kernel's weights are flattened onto rows kernel position major, channel minor (row
    (ky k_w + kx) C_in + c, as hwsim.hw.energy.layer_patches / active_pe_operations) and cut
    into U groups of `rows`; a PE operation (output position, row group, column block) is
    active when some row of its group is nonzero in that output position's window
    (docs/engine.md). Both counts are these operations (one crossbar read each). Kernel
    position k's channels fall in at most S consecutive groups, each a channel range (a
    segment; the S slots of every k listed once per call, empty ones never active); an
    output's active groups are the bits of U-bit masks set from its positions' channel masks
    (`_position_words`, one uint64 mask test per segment for C_in <= 64, `_any_in` beyond), or,
    on maps of at most 64 columns, from rows of bits (`_unrolled_bits`). A window over the whole
    map (a GAP) reads its input in its own order: groups of `rows` consecutive entries."""
    ct = conn_tab[g]
    h, w, cin, ho, wo, kh, kw = ct[H], ct[W], ct[CIN], ct[HO], ct[WO], ct[KH], ct[KW]
    st, pad = ct[STRIDE], ct[PAD]
    if ho == 1 and wo == 1 and kh == h and kw == w and pad == 0:
        # one window over the whole map (a GAP): its flattened rows are the input's own order
        n_in, ops = _flat_groups(spk, so, h * w * cin, rows)
        return n_in, ops * ct[COLBLK], ops * ct[COLBLK]
    nw = (cin + 63) >> 6
    end = so + h * w * cin
    n_in = 0
    for p in range(h * w):  # words[p nw:][:nw]: position p's channel masks
        n_in += _position_words(spk, so + p * cin, cin, end, words[p * nw :])
    slots = (cin + rows - 2) // rows + 1  # S: the most groups a k's channels can touch
    seg = h * w * nw  # words[seg + 3 (k S + j):][:3]: group, channel mask (or first, end)
    first = 0  # k's first group, k C_in // rows (kept without a division per k)
    for k in range(kh * kw):
        base = k * cin
        while (first + 1) * rows <= base:
            first += 1
        u = first
        for j in range(slots):
            q = seg + 3 * (k * slots + j)
            lo, hi = max(u * rows - base, 0), min((u + 1) * rows - base, cin)
            if lo >= hi:  # an empty slot
                lo, hi, u = 0, 0, 0
            m = np.uint64(0)
            if hi > lo:
                m = (~np.uint64(0) >> np.uint64(64 - min(hi - lo, 64))) << np.uint64(lo & 63)
            words[q], words[q + 1], words[q + 2] = u, np.int64(m) if nw == 1 else lo, hi
            u += 1
    if nw == 1 and w <= 64 and wo <= 64:
        ops = _unrolled_bits(words, seg, slots, h, w, ho, wo, kh, kw, st, pad)
        if ops >= 0:  # else the slots' third words now hold mask indices, unused below
            return n_in, ops * ct[COLBLK], ops * ct[COLBLK]
    n_groups = (kh * kw * cin + rows - 1) // rows
    gm = seg + 3 * kh * kw * slots  # words[gm:][:ceil(U / 64)]: an output's active groups
    ops = 0
    for oy in range(ho):
        for ox in range(wo):
            acc = np.uint64(0)  # the groups of an output with U <= 64
            if n_groups > 64:
                words[gm : gm + ((n_groups + 63) >> 6)] = 0
            for ky in range(max(0, pad - oy * st), min(kh, h + pad - oy * st)):
                iy = oy * st - pad + ky
                for kx in range(max(0, pad - ox * st), min(kw, w + pad - ox * st)):
                    pos = (iy * w + ox * st - pad + kx) * nw  # the position's masks
                    q = seg + 3 * ((ky * kw + kx) * slots)
                    for j in range(slots):
                        u = words[q + 3 * j]
                        if nw == 1:
                            bit = (np.uint64(words[pos]) & np.uint64(words[q + 3 * j + 1])) != 0
                        else:
                            lo, hi = words[q + 3 * j + 1], words[q + 3 * j + 2]
                            bit = lo < hi and _any_in(words, pos * 64 + lo, pos * 64 + hi) != 0
                        if n_groups <= 64:
                            acc |= np.uint64(bit) << np.uint64(u)
                        else:
                            words[gm + (u >> 6)] |= np.int64(np.uint64(bit) << np.uint64(u & 63))
            if n_groups <= 64:
                ops += np.int64(_popcount(acc))
            else:
                for i in range((n_groups + 63) >> 6):
                    ops += np.int64(_popcount(np.uint64(words[gm + i])))
    return n_in, ops * ct[COLBLK], ops * ct[COLBLK]


@njit(**KERNEL)
def _xbar_conv(cur, spk, so, chan, ct, itab, xr, xb, sc, cnt):
    """cur (H_out*W_out*C_out) += the current of crossbar synapse xr (backends.CrossbarSynapse;
    row xr of `xb`, a `Crossbars`) for the binary spikes spk[so:][:H*W*C_in], with `sc`'s
    (`Scratch`) lists and crossbar scratch; cnt (XC_COLS,) += this image's counts.

    Input-major: every input position with a spike adds, for each (kernel offset, output
    position) pair that reads it (the activity tables YCNT.. in itab), its driven rows into the
    accumulator of their PE operation (output position, group), in channel order: a block of
    XB_BLOCK channels at once from its table of row sums (X_TAB >= 0: integer rows, one group
    and one crossbar per block), else row by row. So an operation sums its rows in input
    position order, then channel order. A GAP whose rows are diagonal (X_DIAG) has its
    accumulators set from the source's channel spike counts `chan` instead. The operations
    with a driven row are flagged in `touched`, the (output position, crossbar index) of the
    driven rows in `xread`; `_xbar_outputs` converts them."""
    pcnt, plist, pm = sc.pcnt, sc.plist, sc.pm
    acc, touched, xread = sc.xbar.acc, sc.xbar.touched, sc.xbar.xread
    xt, mat, tabs, xidx = xb.tab[xr], xb.mat, xb.tables, xb.idx
    h, w, cin = ct[H], ct[W], ct[CIN]
    ho, wo, cout = ct[HO], ct[WO], ct[COUT]
    kh, kw = ct[KH], ct[KW]
    ycnt, yk, yo, xcnt, xk, xo = ct[YCNT], ct[YK], ct[YO], ct[XCNT], ct[XK], ct[XO]
    k_ext, nsig, ng, nxb = xt[X_K], xt[X_SIG], xt[X_NG], xt[X_NX]
    g0 = xt[X_GRP]
    x0 = g0 + kh * kw * cin  # the crossbar indices follow the groups
    m0, t0 = xt[X_MAT], xt[X_TAB]
    nblk = (cin + XB_BLOCK - 1) // XB_BLOCK
    one = np.float32(1.0)  # rows times one: the rows themselves
    npos = h * w
    n_in = 0
    positions = 0  # driven (output position, kernel position) pairs, for XR_POSITIONS
    if xt[X_DIAG] != 0:  # one output position: rows (p, c) add level_c to column c
        for c in range(cin):  # a channel's group is the same at every position
            n_in += chan[c]
            if chan[c] > 0:
                touched[xidx[g0 + c]] = 1
            acc[xidx[g0 + c] * k_ext + c] = chan[c] * mat[m0 + c * (k_ext + 1)]  # [0, c, c]
        if xt[X_READS] == XR_POSITIONS:
            positions = _live_positions(spk, so, npos, cin, pm)
        elif xt[X_READS] == XR_FLAGS:
            _group_masks(spk, so, npos, 1, cin, XB_BLOCK, 0, pm)
            for q in range(npos):
                for blk in range(nblk):
                    if pm[q * nblk + blk] != 0:
                        xread[xidx[x0 + q * cin + blk * XB_BLOCK]] = 1
    else:
        n_in = _count_nonzero(spk, so, npos * cin)
        if t0 >= 0:
            _group_masks(spk, so, npos, 1, cin, XB_BLOCK, 0, pm)
        else:
            _list_positions(spk, so, npos, cin, pcnt, plist)
    for iy in range(0 if xt[X_DIAG] else h):
        ny = itab[ycnt + iy]
        for ix in range(w):
            q = iy * w + ix
            if t0 >= 0:
                live = 0
                for blk in range(nblk):
                    live |= pm[q * nblk + blk]
            else:
                live = pcnt[q]
            if live == 0:
                continue
            nx = itab[xcnt + ix]
            for a_ in range(ny):
                ky, oy = itab[yk + iy * kh + a_], itab[yo + iy * kh + a_]
                for b_ in range(nx):
                    kx, ox = itab[xk + ix * kw + b_], itab[xo + ix * kw + b_]
                    rp = (ky * kw + kx) * cin
                    op0 = (oy * wo + ox) * ng
                    xr0 = (oy * wo + ox) * nxb
                    if t0 >= 0:
                        for blk in range(nblk):
                            msk = np.int64(pm[q * nblk + blk])
                            if msk == 0:
                                continue
                            r = rp + blk * XB_BLOCK
                            xread[xr0 + xidx[x0 + r]] = 1
                            op = op0 + xidx[g0 + r]
                            touched[op] = 1
                            row = t0 + (((ky * kw + kx) * nblk + blk) * 256 + msk) * k_ext
                            _axpy(acc, op * k_ext, tabs, row, k_ext, one)
                        continue
                    for i in range(pcnt[q]):
                        r = rp + plist[q * cin + i]
                        xread[xr0 + xidx[x0 + r]] = 1
                        op = op0 + xidx[g0 + r]
                        touched[op] = 1
                        _axpy(acc, op * k_ext, mat, m0 + r * k_ext, k_ext, one)
    flagged = xt[X_DIAG] == 0 or xt[X_READS] == XR_FLAGS
    ops, reads, clips = _xbar_outputs(cur, acc, ho * wo, cout, xr, xb, sc.xbar, flagged)
    if xt[X_DIAG] != 0 and xt[X_READS] == XR_POSITIONS:
        reads = positions
    elif xt[X_DIAG] != 0 and xt[X_READS] == XR_SINGLE:
        reads = int(ops > 0)
    cnt[XC_OPS] += ops
    cnt[XC_READS] += reads
    cnt[XC_INPUTS] += n_in
    cnt[XC_CLIPS] += clips
    cnt[XC_CONVERSIONS] += ops * nsig


@njit(inline="always", **KERNEL)
def _live_positions(spk, so, npos, cin, live):
    """live[q] = 1 where position q of spk[so:] (channels-last, C_in channels) holds a spike;
    returns their count. Eight channels at once where C_in is a multiple of 8."""
    n = 0
    if cin % 8 == 0:
        for q in range(npos):
            a = np.uint64(0)
            for j in range(q * cin, (q + 1) * cin, 8):
                a |= _load_u64(spk, so + j)
            live[q] = a != 0
            n += live[q]
    else:
        for q in range(npos):
            a = 0
            for j in range(q * cin, (q + 1) * cin):
                a |= spk[so + j]
            live[q] = a != 0
            n += live[q]
    return n


@njit(**KERNEL)
def _xbar_summed(cur, vacc, spk, so, ct, xr, xb, sc, cnt):
    """cur += the current of crossbar synapse xr (of `xb`) of one conversion group whose rows
    a virtual conv (X_VIRT) has just summed into `vacc` (H_out*W_out*K float32, zero where no
    row was driven), for the binary spikes spk[so:][:H*W*C_in], with `sc`'s (`Scratch`)
    crossbar scratch; cnt += this image's counts. An output
    position's operation has a driven row when its window holds a spike: the positions with a
    spike are counted over each window, separably (along rows, then columns), and so are the
    crossbar reads of a crossbar per kernel position (XR_POSITIONS; XR_SINGLE: one per
    operation). `_xbar_outputs` converts and clears the operations."""
    xs = sc.xbar
    touched, live, wsum = xs.touched, xs.live, xs.wsum
    h, w, cin = ct[H], ct[W], ct[CIN]
    ho, wo, cout = ct[HO], ct[WO], ct[COUT]
    kh, kw, s, pad = ct[KH], ct[KW], ct[STRIDE], ct[PAD]
    npos = h * w
    n_in = _count_nonzero(spk, so, npos * cin)
    _live_positions(spk, so, npos, cin, live)
    for iy in range(h):  # driven positions of each row within each window's columns
        for ox in range(wo):
            kx0, kx1 = max(0, pad - ox * s), min(kw, w + pad - ox * s)
            t = 0
            for kx in range(kx0, kx1):
                t += live[iy * w + ox * s - pad + kx]
            wsum[iy * wo + ox] = t
    positions = 0
    for oy in range(ho):
        ky0, ky1 = max(0, pad - oy * s), min(kh, h + pad - oy * s)
        for ox in range(wo):
            t = 0
            for ky in range(ky0, ky1):
                t += wsum[(oy * s - pad + ky) * wo + ox]
            touched[oy * wo + ox] = t > 0
            positions += t
    ops, _, clips = _xbar_outputs(cur, vacc, ho * wo, cout, xr, xb, xs, False)
    xt = xb.tab[xr]
    cnt[XC_OPS] += ops
    cnt[XC_READS] += positions if xt[X_READS] == XR_POSITIONS else ops
    cnt[XC_INPUTS] += n_in
    cnt[XC_CLIPS] += clips
    cnt[XC_CONVERSIONS] += ops * xt[X_SIG]


@njit(**KERNEL)
def _xbar_outputs(cur, acc, nout, cout, xr, xb, xs, flagged):
    """The conversion half of `_xbar_conv` for crossbar synapse xr (of `xb`), its flags in `xs`
    (`CrossbarScratch`): output position by output position, convert every
    PE operation with a driven row (touched), groups in order, clear its accumulator and flag,
    count the crossbar reads flagged (`flagged`), and add float32(psum * scale) + bias to cur. Per
    operation and output: lsb sum_j shift_j code_j (1 and the signals themselves without ADC)
    + sign_weight sign, the sum over j in j order, summed over groups in group order; one ADC
    column per output and one group: lsb shift code + sign_weight sign. Returns (operations,
    crossbar reads, clipped conversions). Written without helper calls: a call taking arrays
    per operation costs more than the conversion (reference counts)."""
    touched, xread, psum = xs.touched, xs.xread, xs.psum
    xt, xp, xhist = xb.tab[xr], xb.par[xr], xb.hist
    k_ext, nsig, per, ng, nxb = xt[X_K], xt[X_SIG], xt[X_PER], xt[X_NG], xt[X_NX]
    lsb, inv, lo, hi = xp[XP_LSB], xp[XP_INV], xp[XP_LO], xp[XP_HI]
    scale, sw = xp[XP_SCALE], xp[XP_SIGN]
    h0, nbins, hstep = xt[X_HIST], xt[X_NBINS], xp[XP_HSTEP]
    shift = xb.shift[xt[X_SHIFT] : xt[X_SHIFT] + nsig]
    bias = xb.bias[xt[X_BIAS] : xt[X_BIAS] + cout]
    ps = psum[:cout]
    zero = psum[cout : 2 * cout]  # the current of an output position with no driven row
    for oc in range(cout):
        zero[oc] = np.float32(0.0 * scale) + bias[oc]
    ops = 0
    reads = 0
    clips = 0
    cu = np.uint64(cout)
    if per == 1 and ng == 1 and lsb > 0 and nbins == 0:  # one ADC column per output
        for o in range(nout):
            d, a = np.uint64(o * cout), np.uint64(o * k_ext)
            if touched[o] == 0:
                for oc in range(cu):
                    cur[d + oc] += zero[oc]
                continue
            touched[o] = 0
            ops += 1
            g = a + np.uint64(nsig)  # the sign columns
            if sw != 0:
                for oc in range(cu):
                    sig = np.float64(acc[a + oc])
                    raw = np.rint(sig * inv) if inv > 0 else np.rint(sig / lsb)
                    code = min(max(raw, lo), hi)
                    clips += code != raw
                    t = shift[oc] * code * lsb + sw * np.float64(acc[g + oc])
                    cur[d + oc] += np.float32(t * scale) + bias[oc]
            else:
                for oc in range(cu):
                    sig = np.float64(acc[a + oc])
                    raw = np.rint(sig * inv) if inv > 0 else np.rint(sig / lsb)
                    code = min(max(raw, lo), hi)
                    clips += code != raw
                    cur[d + oc] += np.float32(shift[oc] * code * lsb * scale) + bias[oc]
            for k in range(np.uint64(k_ext)):
                acc[a + k] = 0
            if flagged:
                for x in range(o * nxb, (o + 1) * nxb):
                    reads += xread[x]
                    xread[x] = 0
        return ops, reads, clips
    for o in range(nout):
        d = np.uint64(o * cout)
        first = True
        for op in range(o * ng, (o + 1) * ng):
            if touched[op] == 0:
                continue
            touched[op] = 0
            ops += 1
            a = np.uint64(op * k_ext)
            g = a + np.uint64(nsig)  # the sign columns
            for oc in range(cout):
                t = 0.0
                for j in range(per):
                    k = oc * per + j
                    sig = np.float64(acc[a + np.uint64(k)])
                    if nbins > 0:
                        hist_bin = min(int(abs(sig) / hstep + 0.5), nbins - 1)
                        xhist[h0 + hist_bin] += 1
                    if lsb > 0:
                        raw = np.rint(sig * inv) if inv > 0 else np.rint(sig / lsb)
                        code = min(max(raw, lo), hi)
                        clips += code != raw
                        sig = code
                    t += shift[k] * sig
                if lsb > 0:
                    t *= lsb
                if sw != 0:
                    t += sw * np.float64(acc[g + np.uint64(oc)])
                ps[oc] = t if first else ps[oc] + t
            for k in range(np.uint64(k_ext)):
                acc[a + k] = 0
            first = False
        if flagged and not first:  # crossbars read by this output position's operations
            for x in range(o * nxb, (o + 1) * nxb):
                reads += xread[x]
                xread[x] = 0
        for oc in range(cu):
            cur[d + oc] += zero[oc] if first else np.float32(ps[oc] * scale) + bias[oc]
    return ops, reads, clips


@njit(inline="always", **KERNEL)
def _tiny_layer(vb, s_rd, s_wr, ch_rd, lt, in_idx, conn_tab, rflat, bias, gsc, om, nv, cc, cnt):
    """Layer `lt` of one image at one step, for a layer of at most TINY_NEURONS neurons on a
    1 x 1 map fed by GAPs and dense (1 x 1) PUSH connections of spikes (a head): the same
    additions as `_layer_group`'s, in short loops; the input spikes are found 64 at a time
    (`_nonzero_mask64`: the spike rows have 64 spare bytes), the neuron update (values nv,
    `_neuron_values`) runs 16 neurons at a time (`_scan_vectors`). Returns the neurons fired."""
    off, n = lt[L_OFF], lt[L_N]
    bb = bias[off : off + n]  # views indexed from 0: no wraparound test per element
    for i in range(n):
        cc[i] = bb[i] * om
    for q in range(lt[L_IN0], lt[L_IN1]):
        g = in_idx[q]
        ct = conn_tab[g]
        sc = gsc[g]
        r0 = ct[R_OFF]
        if ct[KIND] == GAP:
            chs = ch_rd[ct[SRC_CH] : ct[SRC_CH] + ct[CIN]]
            for i in range(chs.shape[0]):
                cc[i] += sc * rflat[np.uint64(r0 + chs[i])]
            continue
        so, cin, cout = ct[SRC_OFF], ct[CIN], ct[COUT]
        for blk in range(0, cin, 64):
            mask = _nonzero_mask64(s_rd, so + blk)
            if cin - blk < 64:
                mask &= (np.uint64(1) << np.uint64(cin - blk)) - np.uint64(1)
            while mask != 0:
                c = blk + np.int64(_cttz(mask))
                mask &= mask - np.uint64(1)
                k = sc * np.float32(s_rd[so + c])
                rw = rflat[r0 + c * cout : r0 + c * cout + cout]
                for o in range(cout):
                    cc[o] += rw[o] * k
    vv, ss, pp = vb[off : off + n], s_wr[off : off + n], s_rd[off : off + n]
    leaky = lt[L_NEURON] & N_LEAKY
    fired = _scan_vectors(0, leaky, vv, cc, ss, pp, cnt, n, nv)
    return fired + _neuron_tail(vv, cc, ss, pp, n - n % IF_LANES, n, leaky, nv, cnt, 0)


@njit(inline="always", **KERNEL)
def _neuron_values(lt, nrow, th):
    """The neuron update's values of a layer (table row lt, neuron row nrow) at threshold th:
    (compared with, subtracted at a spike, subtracted after a spike the step before, leak,
    rest, gain, reset potential: float32; reset to it: int64 != 0) (`_make_if_scan`)."""
    flags = lt[L_NEURON]
    thc = np.float32(np.nextafter(th, np.float32(np.inf))) if flags & N_STRICT else th
    zero = np.float32(0.0)
    delayed = flags & N_DELAYED
    return (
        thc, zero if delayed else th, th if delayed else zero,
        nrow[NR_LEAK], nrow[NR_REST], nrow[NR_GAIN], nrow[NR_RESET], np.int64(flags & N_RESET_TO),
    )  # fmt: skip


@njit(inline="always", **KERNEL)
def _scan_vectors(cblk, leaky, vv, cc, ss, pp, ccnt, n, nv):
    """The vector neuron update (`_make_if_scan`) with cblk (0, 1, 2, 4) vectors per channel
    count, IF or leaky; pp: the layer's spikes of the step before."""
    thc, th, thp, lk, vr, gn, rv, tov = nv
    if leaky:
        if cblk == 4:
            return _lif_scan4(vv, cc, ss, ccnt, n, thc, th, pp, thp, lk, vr, gn, rv, tov)
        if cblk == 2:
            return _lif_scan2(vv, cc, ss, ccnt, n, thc, th, pp, thp, lk, vr, gn, rv, tov)
        return _lif_scan1(vv, cc, ss, ccnt, n, thc, th, pp, thp, lk, vr, gn, rv, tov)
    if cblk == 4:
        return _if_scan4(vv, cc, ss, ccnt, n, thc, th)
    if cblk == 2:
        return _if_scan2(vv, cc, ss, ccnt, n, thc, th)
    return _if_scan1(vv, cc, ss, ccnt, n, thc, th)


@njit(inline="always", **KERNEL)
def _neuron_tail(vv, cc, ss, pp, i0, n, leaky, nv, ccnt, period):
    """Neurons i0..n-1 one by one, as the vector update steps them; spikes per lane i mod
    period added into ccnt (period 0: none). Returns the neurons fired."""
    thc, th, thp, lk, vr, gn, rv, tov = nv
    fired = 0
    for i in range(i0, n):
        if leaky:
            x = (vv[i] * lk + vr) + cc[i] * gn
            if pp[i] != 0:
                x -= thp
        else:
            x = vv[i] + cc[i]
        f = x >= thc
        if f:
            x = rv if leaky and tov != 0 else x - th
        vv[i] = x
        ss[i] = f
        fired += f
        if period > 0:
            ccnt[i % period] += f
    return fired


@njit(inline="always", **KERNEL)
def _idle_layer(b0, b1, t, tt, j, lt, state, counts):
    """Layer j (table row lt) of images b0..b1-1 idle at t (omega 0): no update, no spikes."""
    s, chan = state.s, state.chan
    slots = s.shape[0]
    off, n, ch = lt[L_OFF], lt[L_N], lt[L_C]
    for b in range(b0, b1):
        s[t % slots, b, off : off + n] = 0
        if lt[L_CH] >= 0:
            chan[t % slots, b, lt[L_CH] : lt[L_CH] + ch] = 0
        counts[b, tt, j] = 0


@njit(inline="always", **KERNEL)
def _start_currents(cur, bs, be, lt, base, bias, om):
    """Currents of images bs..be-1 (rows of cur) before the layer's connections: its analog
    inputs' precomputed current (base), else its bias times omega."""
    off, n = lt[L_OFF], lt[L_N]
    span = lt[L_C] * max(1, 64 // lt[L_C])  # whole channel periods, >= 64 floats if C <= 64
    for b in range(bs, be):
        cc = cur[b - bs, :n]
        if lt[L_BASE] >= 0:
            bb = base[b, lt[L_BASE] : lt[L_BASE] + n]
            for i in range(n):
                cc[i] = bb[i]
        else:  # beta is per channel: its first `span` floats repeat along the layer
            bb = bias[off : off + span]
            for i0 in range(0, n, span):
                dst = cc[i0 : i0 + span]
                for i in range(dst.shape[0]):
                    dst[i] = bb[i] * om


@njit(inline="always", **KERNEL)
def _conn_counts(act, bs, be, tt, g, spks, so, conn_tab, itab, opt, omap, plist):
    """Activity of connection g for images bs..be-1 at chunk step tt (`conn_activity`)."""
    for b in range(bs, be):
        spk = spks[b]
        if opt.unrolled:
            a_in, a_rd, a_win = conn_activity_unrolled(
                spk, so, conn_tab, g, itab, opt.rows, omap, plist
            )
        else:
            a_in, a_rd, a_win = conn_activity(spk, so, conn_tab, g, itab, opt.rows, omap, plist)
        act[b, tt, g, 0] = a_in
        act[b, tt, g, 1] = a_rd
        act[b, tt, g, 2] = a_win


@njit(inline="always", **KERNEL)
def _conn_current(g, bs, be, t, tt, net, xb, state, steps, out, opt, scratch, grow):
    """Connection g's current into images bs..be-1 (rows of scratch.cur) at timestep t: the
    dense op in the connection's formulation, or its crossbar synapse (the rows summed as a
    conv, its virtual connection, into vcur, then converted); its activity if counted."""
    conn_tab, rflat, itab = net.conn_tab, net.rflat, net.itab
    s, chan = state.s, state.chan
    cur, vcur, plist = scratch.cur, scratch.xbar.vcur, scratch.plist
    idx, kv = scratch.idx, scratch.kv
    slots = s.shape[0]
    ct = conn_tab[g]
    if ct[SRC] < 0:
        if ct[ANALOG] != 0:
            return  # already in base
        spks = steps.inp[tt]
        so = 0
    else:
        spks = s[(t - 1) % slots]
        so = ct[SRC_OFF]
    sc = steps.gscale[tt, g]
    xr = ct[XB]
    summed = ct[MODE] == XBAR and xb.tab[xr, X_VIRT] >= 0
    dst, wct = (vcur, conn_tab[xb.tab[xr, X_VIRT]]) if summed else (cur, ct)
    wsc = np.float32(1.0) if summed else sc
    xcnt = out.xcnt[grow, tt, xr]
    if ct[MODE] == XBAR and not summed:
        for b in range(bs, be):
            ch_b = chan[(t - 1) % slots, b, max(ct[SRC_CH], 0) :]  # a GAP's source counts
            _xbar_conv(cur[b - bs], spks[b], so, ch_b, ct, itab, xr, xb, scratch, xcnt)
    elif ct[KIND] == GAP and not summed:
        for b in range(bs, be):
            _gap(cur[b - bs], chan[(t - 1) % slots, b], ct[SRC_CH], ct, rflat, sc)
    elif wct[MODE] == PUSH:
        for b in range(bs, be):
            _scatter(dst[b - bs], spks[b], so, rflat, wct, itab, wsc, plist, idx, kv)
    elif wct[MODE] == TABLE:
        for b in range(bs, be):
            _table_conv(dst[b - bs], spks[b], so, rflat, wct, itab, wsc, scratch.pm)
    else:
        _event_conv(dst, bs, be, spks, so, rflat, wct, wsc, scratch.pcnt, plist, idx,
                    scratch.starts, scratch.outs)  # fmt: skip
    if summed:
        for b in range(bs, be):
            _xbar_summed(cur[b - bs], vcur[b - bs], spks[b], so, ct, xr, xb, scratch, xcnt)
    if opt.rows > 0:
        _conn_counts(out.act, bs, be, tt, g, spks, so, conn_tab, itab, opt, scratch.omap, plist)


@njit(inline="always", **KERNEL)
def _scan_layer(bs, be, t, tt, j, lt, cur, only_base, state, counts, nv, ccnt):
    """The neuron update of layer j (table row lt) for images bs..be-1 at timestep t, currents
    in cur (rows from bs) or, `only_base`, the layer's precomputed current, values nv
    (`_neuron_values`): spikes, spike counts and, for a layer a GAP reads, spikes per channel."""
    v, s, s64, chan, base = state.v, state.s, state.s64, state.chan, state.base
    slots = s.shape[0]
    off, n, ch = lt[L_OFF], lt[L_N], lt[L_C]
    # the scan counts spikes per channel when a channel's lanes recur every 16 neurons
    # (8 channels: lanes c and c + 8) or every ch / 16 vectors
    cblk = 0
    if lt[L_CH] >= 0 and (ch == 8 or ch == 16 or ch == 32 or ch == 64):
        cblk = max(1, ch // IF_LANES)
    period = max(cblk, 1) * IF_LANES
    tail = n - n % period
    leaky = lt[L_NEURON] & N_LEAKY
    for b in range(bs, be):
        cc = base[b, lt[L_BASE] : lt[L_BASE] + n] if only_base else cur[b - bs, :n]
        vv = v[b, off : off + n]
        ss = s[t % slots, b, off : off + n]
        pp = s[(t - 1) % slots, b, off : off + n]
        ccnt[:period] = 0
        fired = _scan_vectors(cblk, leaky, vv, cc, ss, pp, ccnt, n, nv)
        fired += _neuron_tail(vv, cc, ss, pp, tail, n, leaky, nv, ccnt, period if cblk else 0)
        counts[b, tt, j] = fired
        if lt[L_CH] >= 0:
            c_wr = chan[t % slots, b, lt[L_CH] : lt[L_CH] + ch]
            if cblk == 0:
                _channel_counts(s64[t % slots, b], ss, off, n, ch, c_wr)
            elif ch == 8:
                for c in range(8):
                    c_wr[c] = ccnt[c] + ccnt[c + 8]
            else:
                for c in range(ch):
                    c_wr[c] = ccnt[c]


@njit(inline="always", **KERNEL)
def _layer_group(b0, b1, t, tt, j, net, xb, state, steps, out, opt, scratch, grow):
    """Layer j of images b0..b1-1 at timestep t (chunk index tt): currents, IF scan, counts
    (run_chunk's arguments); crossbar synapses add their counts into out.xcnt[grow, tt]."""
    lt = net.layer_tab[j]
    s, cur, counts = state.s, scratch.cur, out.counts
    slots = s.shape[0]  # s[t % slots] holds what was fired at t
    om = steps.omega[tt, j]
    if om == 0:  # idle: no update, no spikes
        _idle_layer(b0, b1, t, tt, j, lt, state, counts)
        return
    nv = _neuron_values(lt, net.neuron[j], om * opt.threshold)
    if lt[L_TINY] != 0 and opt.rows == 0:
        for b in range(b0, b1):
            counts[b, tt, j] = _tiny_layer(
                state.v[b], s[(t - 1) % slots, b], s[t % slots, b], state.chan[(t - 1) % slots, b],
                lt, net.in_idx, net.conn_tab, net.rflat, net.bias, steps.gscale[tt], om, nv,
                cur[0], scratch.ccnt
            )  # fmt: skip
        return
    # a layer fed by a PULL connection runs the whole group at once (its weights are reused
    # across the images), any other image by image (its currents stay in cache)
    step = b1 - b0 if lt[L_PULL] else 1
    # a layer fed by analog inputs only scans their precomputed current as it is
    only_base = lt[L_ONLY_BASE] != 0
    for bs in range(b0, b1, step):
        be = min(b1, bs + step)
        if not only_base:
            _start_currents(cur, bs, be, lt, state.base, net.bias, om)
        for q in range(lt[L_IN0], lt[L_IN1]):
            _conn_current(net.in_idx[q], bs, be, t, tt, net, xb, state, steps, out, opt,
                          scratch, grow)  # fmt: skip
        _scan_layer(bs, be, t, tt, j, lt, cur, only_base, state, counts, nv, scratch.ccnt)


@njit(nogil=True, **KERNEL)
def run_chunk(b0, b1, t0, t1, net, xb, state, steps, out, opt, scratch):
    """Advance images b0..b1-1 of the batch from timestep t0 to t1 (exclusive): `net`
    (`Network`) and `xb` (`Crossbars`) the backend's arrays, `state` (`State`) the batch's,
    `steps` (`Steps`) the chunk's inputs, `out` (`Outputs`) its outputs, `opt` (`Options`),
    `scratch` (`Scratch`, from `chunk_scratch`: one per concurrent call).

    Releases the GIL: threads may run disjoint image ranges of the same arrays at once. Each
    layer runs S - 1 steps (S = state.s.shape[0] spike buffers) before the next, sources listed
    before the layers they feed; images run `opt.group` at a time layer by layer (a layer's
    weights are fetched once per group and block of steps), each image through the block's
    steps before the next (a layer fed by a PULL connection: the group's images together, step
    by step), and each group's crossbar counts go to its row of out.xcnt.
    """
    layer_tab, head_layers = net.layer_tab, net.head_layers
    s, rec, group = state.s, out.rec, opt.group
    n_layers = layer_tab.shape[0]
    slots = s.shape[0]
    block = slots - 1  # timesteps a layer runs before the next layer's turn
    for g0 in range(b0, b1, group):
        g1 = min(b1, g0 + group)
        grow = g0 // group
        for tb in range(t0, t1, block):
            te = min(t1, tb + block)
            for j in range(n_layers):
                if layer_tab[j, L_PULL] != 0:  # the group's images at once, step by step
                    for t in range(tb, te):
                        _layer_group(g0, g1, t, t - t0, j, net, xb, state, steps, out, opt,
                                     scratch, grow)  # fmt: skip
                    continue
                for b in range(g0, g1):  # an image's state stays in cache over the block
                    for t in range(tb, te):
                        _layer_group(b, b + 1, t, t - t0, j, net, xb, state, steps, out, opt,
                                     scratch, grow)  # fmt: skip
            for t in range(tb, te):
                for b in range(g0, g1):
                    s_rd = s[(t - 1) % slots, b]
                    for hi in range(head_layers.shape[0]):
                        lt = layer_tab[head_layers[hi]]
                        for i in range(lt[L_N]):
                            rec[b, t - t0, hi, i] = s_rd[lt[L_OFF] + i]


def chunk_scratch(
    layer_tab: np.ndarray, max_n: int, max_in: int, max_rows: int, max_omap: int, cur_rows: int,
    xsizes: np.ndarray,
) -> Scratch:  # fmt: skip
    """The scratch arrays of one `run_chunk` call: currents (cur_rows, max_n rounded up to VEC,
    so every row is aligned); input lists, mask map, row lists and output flags of the largest
    connection; the IF scan's channel counts; the crossbar scratch (zero where each call leaves
    it so), sized by xsizes = the largest accumulator, PE operations, 2 C_out, crossbar-read
    flags, virtual conv outputs (H_out W_out K), input positions and H W_out."""
    return Scratch(
        aligned((cur_rows, vec_ceil(max_n)), np.float32),
        np.empty(max_in, np.int64),
        np.empty(max_in, np.int64),
        np.empty(max_in + 1, np.uint8),
        np.empty(max(max_rows, max_in), np.int64),
        np.empty(max(max_rows, max_in), np.float32),
        np.empty(max_rows + 1, np.int64),
        np.empty(max_rows, np.int64),
        np.empty(max_omap, np.uint8),
        np.empty(layer_tab[:, L_C].max() + IF_LANES, np.int32),
        CrossbarScratch(
            np.zeros(xsizes[0], np.float32),
            np.zeros(xsizes[1], np.uint8),
            np.empty(xsizes[2], np.float64),
            np.zeros(xsizes[3], np.uint8),
            np.zeros((cur_rows, xsizes[4]), np.float32),
            np.empty(xsizes[5], np.uint8),
            np.empty(xsizes[6], np.int64),
        ),
    )
