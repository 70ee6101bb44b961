"""A Numba kernel of one crossbar read of a whole batch (`read_window`): what
`hwsim.hw.crossbar.read_rows` computes, the same bits, one pass over the output positions.

The hardware-functional mode reads the analog first layer's bit planes (`hwsim.hw.synapse`,
bit-serial input) once per batch outside the IF loop: 8 binary images per image. NumPy's
`read_rows` (the definition) makes a dozen passes over (groups, K, positions) arrays of float64
for it; this kernel keeps one output position's accumulators in registers and writes its
current. It lives with the engine (`hwsim.hw` never imports the engine); `hwsim.pipeline.hardware`
hands it to the layers it runs on the numba backend, and the tests pin it to `read_rows`.

Per output position (n, oy, ox), for every row r = p C + c (kernel position p = ky k_w + kx,
channel c) whose window input x[n, c, oy s - pad + ky, ox s - pad + kx] is nonzero (padding
drives nothing), `matrix[p, c]` (K columns) is added to the accumulator D of its group
`group[p, c]`, in row order: float levels in float32 (as `read_rows` adds them, row by row),
integer levels in float32 where every column sums below 2^24, else float64 (exact, as in any
order). A group with a driven row is a PE operation; a crossbar with one is a read. Then every
group in order, as `read_rows` does on its arrays (an untouched group has D = 0):

    code_k = clip(rint(D_k / lsb), code_min, code_max)     (lsb > 0; else code_k = D_k)
    op_o   = (sum_j code_(o per + j) col_shift_(o per + j)) [x lsb] + sign_weight D_(signals + o)
    psum_o = sum_g op_o,g,   current_o = float32(psum_o scale) + bias_o   (float32 add)

in float64 with the operations of `read_rows`, one at a time (no contraction into fused
multiply-adds: Numba leaves them off without fastmath), so every current is the same bits,
signed zeros included. Without ADC, |D| of every operation's signal columns is counted in
`hist` (bins of `hist_step`, the last taking the rest).

What a position gives depends only on the set of its driven rows. A layer of at most
`MASK_ROWS` rows (the analog first layer of a one-channel image: 9) therefore has it computed
once per set (`_mask_table`, by the same code as a position) and looked up by each position's
bit mask of driven rows; larger layers are summed position by position (`_read_images`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

KERNEL = {"cache": True, "error_model": "numpy", "nogil": True}

MASK_ROWS = 12
"""Most rows a layer has its positions' results tabulated for, per set of driven rows (2^12
sets of outputs: 4,096 x O float32)."""

PE_OPS, READS, CLIPS = range(3)
"""Columns of a kernel's counts (one row per image range; one per driven-row set)."""

# `par`: the read's float parameters; `geo`: its integer ones
SIGN, LSB, CODE_MIN, CODE_MAX, SCALE, HSTEP = range(6)
GROUPS, CROSSBARS, SIGNALS, PER, KH, KW, STRIDE, PAD = range(8)


@njit(inline="always", **KERNEL)
def _add_row(acc, touched, read, rows, group, crossbar, r):
    """Row r driven: its levels into its group's accumulators, its group and crossbar flagged."""
    g = group[r]
    touched[g] = True
    read[crossbar[r]] = True
    a = acc[g]
    row = rows[r]
    for j in range(rows.shape[1]):
        a[j] += row[j]


@njit(inline="always", **KERNEL)
def _convert(acc, touched, read, col_shift, par, geo, hist, weight, value, psum, cur):
    """One position's currents into `cur` (O,) float32 from its accumulators (module
    docstring); adds `weight` to the histogram bins of its conversions (no ADC, `hist` not
    empty). Returns its (PE operations, crossbar reads, clipped conversions)."""
    groups, signals, per = geo[GROUPS], geo[SIGNALS], geo[PER]
    lsb, sign_weight = par[LSB], par[SIGN]
    adc = lsb > 0
    bins = len(hist)
    pe_ops = reads = clips = 0
    for b in range(geo[CROSSBARS]):
        reads += read[b]
    for g in range(groups):
        pe_ops += touched[g]
        for s in range(signals):
            v = np.float64(acc[g, s])
            if adc:
                v = v / lsb
                raw = np.rint(v)
                v = raw
                if v < par[CODE_MIN]:
                    v = par[CODE_MIN]
                elif v > par[CODE_MAX]:
                    v = par[CODE_MAX]
                clips += v != raw
            elif bins > 0 and touched[g]:
                level = np.int64(abs(v) / par[HSTEP] + 0.5)
                hist[min(level, bins - 1)] += weight
            value[s] = v
        for o in range(len(cur)):
            t = value[o * per] * col_shift[o * per]
            for j in range(1, per):
                t += value[o * per + j] * col_shift[o * per + j]
            if adc:
                t *= lsb
            if sign_weight != 0:
                t += sign_weight * np.float64(acc[g, signals + o])
            if g == 0:
                psum[o] = t
            else:
                psum[o] += t
    return pe_ops, reads, clips


@njit(**KERNEL)
def _read_images(
    x, rows, group, crossbar, col_shift, bias, par, geo, hist, acc, out, counts, n0, n1
):  # noqa: E501
    """Images n0..n1-1 of x (N, C, H, W) read position by position into out (N, O, H_out,
    W_out) float32; their counts into `counts` (3,)."""
    channels, h, w = x.shape[1], x.shape[2], x.shape[3]
    outputs, ho, wo = out.shape[1], out.shape[2], out.shape[3]
    kh, kw, stride, pad = geo[KH], geo[KW], geo[STRIDE], geo[PAD]
    touched = np.zeros(geo[GROUPS], np.bool_)
    read = np.zeros(geo[CROSSBARS], np.bool_)
    value = np.zeros(geo[SIGNALS], np.float64)
    psum = np.zeros(outputs, np.float64)
    cur = np.zeros(outputs, np.float32)
    pe_ops = reads = clips = 0
    for n in range(n0, n1):
        for oy in range(ho):
            for ox in range(wo):
                acc[:, :] = 0
                touched[:] = False
                read[:] = False
                for ky in range(kh):
                    iy = oy * stride - pad + ky
                    if iy < 0 or iy >= h:
                        continue
                    for kx in range(kw):
                        ix = ox * stride - pad + kx
                        if ix < 0 or ix >= w:
                            continue
                        r0 = (ky * kw + kx) * channels
                        for c in range(channels):
                            if x[n, c, iy, ix] != 0:
                                _add_row(acc, touched, read, rows, group, crossbar, r0 + c)
                p, r, c = _convert(
                    acc, touched, read, col_shift, par, geo, hist, 1, value, psum, cur
                )
                pe_ops, reads, clips = pe_ops + p, reads + r, clips + c
                for o in range(outputs):
                    out[n, o, oy, ox] = np.float32(psum[o] * par[SCALE]) + bias[o]
    counts[PE_OPS] = pe_ops
    counts[READS] = reads
    counts[CLIPS] = clips


@njit(**KERNEL)
def _mask_table(
    rows, group, crossbar, col_shift, bias, par, geo, hist, weights, acc, table, counts
):  # noqa: E501
    """For every set m of driven rows (bit r: row r), the currents of a position driving them
    into table[m] (O,) float32 and its counts into counts[m] (3,), by the code of a position;
    with `hist` (no ADC), `weights[m]` times its conversions' bins."""
    value = np.zeros(geo[SIGNALS], np.float64)
    psum = np.zeros(table.shape[1], np.float64)
    cur = np.zeros(table.shape[1], np.float32)
    touched = np.zeros(geo[GROUPS], np.bool_)
    read = np.zeros(geo[CROSSBARS], np.bool_)
    for m in range(len(table)):
        acc[:, :] = 0
        touched[:] = False
        read[:] = False
        for r in range(len(rows)):
            if (m >> r) & 1:
                _add_row(acc, touched, read, rows, group, crossbar, r)
        w = weights[m] if len(weights) else 0
        p, r, c = _convert(acc, touched, read, col_shift, par, geo, hist, w, value, psum, cur)
        counts[m, PE_OPS], counts[m, READS], counts[m, CLIPS] = p, r, c
        for o in range(table.shape[1]):
            table[m, o] = np.float32(psum[o] * par[SCALE]) + bias[o]


@njit(**KERNEL)
def _masks(on, geo, n0, n1, masks):
    """masks[n, oy, ox] (images n0..n1-1): the set of rows the position drives, bit r for row
    r = p C + c, from `on` (N, C, H + 2 pad, W + 2 pad) uint8, 1 where the padded input is
    nonzero."""
    channels = on.shape[1]
    kh, kw, stride = geo[KH], geo[KW], geo[STRIDE]
    for n in range(n0, n1):
        for oy in range(masks.shape[1]):
            for ox in range(masks.shape[2]):
                m = 0
                for ky in range(kh):
                    for kx in range(kw):
                        r0 = (ky * kw + kx) * channels
                        for c in range(channels):
                            bit = np.int32(on[n, c, oy * stride + ky, ox * stride + kx])
                            m |= bit << (r0 + c)
                masks[n, oy, ox] = m


@njit(**KERNEL)
def _lookup(masks, table, mask_counts, out, counts, n0, n1):
    """out[n, :, oy, ox] = table[masks[n, oy, ox]] for images n0..n1-1; their counts summed
    into `counts` (3,)."""
    pe_ops = reads = clips = 0
    for n in range(n0, n1):
        for oy in range(masks.shape[1]):
            for ox in range(masks.shape[2]):
                m = masks[n, oy, ox]
                for o in range(out.shape[1]):
                    out[n, o, oy, ox] = table[m, o]
                pe_ops += mask_counts[m, PE_OPS]
                reads += mask_counts[m, READS]
                clips += mask_counts[m, CLIPS]
    counts[PE_OPS] = pe_ops
    counts[READS] = reads
    counts[CLIPS] = clips


def _accumulator_dtype(matrix: np.ndarray) -> type:
    """float32 for float levels (summed as `read_rows` sums them: float64 levels rounded to
    float32 at each add) and for integer levels whose every column sums below 2^24 (exact),
    else float64 (exact below 2^53)."""
    if matrix.dtype.kind == "f":
        return np.float32
    peak = np.abs(matrix, dtype=np.int64).sum(axis=(0, 1)).max() if matrix.size else 0
    return np.float32 if peak < 2**24 else np.float64


def read_window(
    x: np.ndarray,
    matrix: np.ndarray,
    group: np.ndarray,
    crossbar: np.ndarray,
    per_output: int,
    col_shift: np.ndarray,
    sign_weight: float,
    adc: tuple[float, float, float] | None,
    scale: float,
    bias: np.ndarray,
    window: tuple[tuple[int, int], int, int, tuple[int, int]],
    hist: np.ndarray | None = None,
    hist_step: float = 0.125,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(current (N, O, H_out, W_out) float32, counts) of `x` (N, C, H, W) read through the rows
    `matrix` (P, C, K), `group`, `crossbar` (P, C) with `window` ((k_h, k_w), stride, padding,
    (H_out, W_out)) and `adc` ((lsb, code_min, code_max) in levels; None: no ADC, `hist` then
    counts |D|) (module docstring). Counts (int64): PE operations, crossbar reads, nonzero
    inputs, clipped conversions, conversions, as `hwsim.hw.crossbar.ReadCounts` orders them.
    `threads` > 1 splits the images."""
    (kh, kw), stride, pad, (ho, wo) = window
    x = np.ascontiguousarray(x)
    dtype = _accumulator_dtype(matrix)
    flat = matrix.reshape(-1, matrix.shape[2])
    rows = np.ascontiguousarray(flat, dtype if matrix.dtype.kind in "iu" else flat.dtype)
    group = np.ascontiguousarray(group, np.int32).ravel()
    crossbar = np.ascontiguousarray(crossbar, np.int32).ravel()
    col_shift = np.ascontiguousarray(col_shift, np.float64)
    bias = np.ascontiguousarray(bias, np.float32)
    lsb, lo, hi = adc if adc is not None else (-1.0, 0.0, 0.0)
    par = np.array([sign_weight, lsb, lo, hi, scale, hist_step], np.float64)
    geo = np.array(
        [group.max(initial=0) + 1, crossbar.max(initial=0) + 1, len(col_shift), per_output,
         kh, kw, stride, pad], np.int64,
    )  # fmt: skip
    keep = np.zeros(0, np.int64) if hist is None or adc is not None else hist
    out = np.empty((len(x), len(bias), ho, wo), np.float32)
    acc = np.zeros((int(geo[GROUPS]), rows.shape[1]), dtype)
    tabled = len(rows) <= MASK_ROWS and (1 << len(rows)) <= len(x) * ho * wo
    # one histogram: read position by position on one thread
    parts = 1 if len(keep) and not tabled else max(1, min(threads, len(x)))
    bounds = [int(b) for b in np.linspace(0, len(x), parts + 1)]
    counts = np.zeros((parts, 3), np.int64)
    if tabled:
        masks = np.zeros((len(x), ho, wo), np.int32)
        on = np.pad(x != 0, ((0, 0), (0, 0), (pad, pad), (pad, pad))).view(np.uint8)
        _over(parts, lambda i: _masks(on, geo, bounds[i], bounds[i + 1], masks))
        sets = 1 << len(rows)
        weights = np.bincount(masks.ravel(), minlength=sets) if len(keep) else np.zeros(0, np.int64)
        table = np.zeros((sets, len(bias)), np.float32)
        set_counts = np.zeros((sets, 3), np.int64)
        _mask_table(
            rows, group, crossbar, col_shift, bias, par, geo, keep, weights, acc, table, set_counts
        )
        _over(
            parts,
            lambda i: _lookup(masks, table, set_counts, out, counts[i], bounds[i], bounds[i + 1]),
        )
    else:
        _over(
            parts,
            lambda i: _read_images(
                x,
                rows,
                group,
                crossbar,
                col_shift,
                bias,
                par,
                geo,
                keep,
                acc.copy(),
                out,
                counts[i],
                bounds[i],
                bounds[i + 1],
            ),  # fmt: skip
        )
    total = counts.sum(axis=0)
    pe_ops = int(total[PE_OPS])
    signals = len(col_shift)
    inputs = int(np.count_nonzero(x))
    return out, np.array([pe_ops, total[READS], inputs, total[CLIPS], pe_ops * signals], np.int64)


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _over(parts: int, run: Callable[[int], None]) -> None:
    """run(i) for i < parts, on `parts` threads (the kernels release the GIL) of a pool made
    once per process and thread count."""
    if parts == 1:
        run(0)
        return
    key = (os.getpid(), parts)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(parts, thread_name_prefix="hwsim-read")
    list(_POOLS[key].map(run, range(parts)))
