"""Numba kernel of the crossbar + ADC read (`hwsim.hw.crossbar.CrossbarLayer.read`).

One call reads a range of images of a batch. Per image, the nonzero inputs of every pixel are
packed into bytes, one per block of 8 channels. Every (pixel, kernel position) pair then adds
the crossbar rows of its nonzero inputs (all signal columns of the layer, then its digital sign
columns) into the accumulator of the PE operation (output position, conversion group) that
reads them, its analog sum: a block's rows at once from a table of the 256 row sums of each
block (`block_tables`) where the layer's tables are small, row by row otherwise. Then, operation
by operation, each signal column is converted by the ADC (round half to even, clipped to the
code range; `lsb` <= 0: no ADC, for calibration) and shift-added into its output channel's
partial sum with the digital sign term; the current is float32(psum scale) + bias. It releases
the GIL, so threads can take disjoint image ranges.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# counts columns (per image)
OPS, READS, INPUTS, CLIPS, CONVERSIONS = range(5)
COUNT_COLS = 5
BLOCK = 8  # channels per pattern byte

_BITS = np.array([[i for i in range(BLOCK) if m >> i & 1] + [0] * (BLOCK - bin(m).count("1"))
                  for m in range(256)], np.int64)  # fmt: skip
_POPCOUNT = np.array([bin(m).count("1") for m in range(256)], np.int64)


@njit(cache=True, nogil=True, error_model="numpy")
def read_layer(
    x, n0, n1, kw, ho, wo, ytab, xtab, grp, ngroups, per_position_reads, matrix, tables,
    sp_ptr, sp_col, sp_val, diag, nsig, per_out, col_shift, sign_weight, lsb, code_lo, code_hi,
    scale, bias, out, counts, hist, hist_step, bits, popcount,
):  # fmt: skip
    """Read images n0..n1-1 of `x` (N, C, H, W) float32 (nonzero = a driven row) through the
    layer's crossbars into `out` (N, C_out, ho, wo) float32 (module docstring).

    `ytab[i]` (H, 1 + 2 k_h): for input row i, the count m of (kernel row, output row) pairs
    that read it, then the m kernel rows and the m output rows (`window_table`); `xtab` the
    same for columns. `grp[p, c]`: conversion group of row (kernel position p, channel c).
    `matrix` (P, C, Kext): signal columns 0..nsig-1 (cell levels; output o's `per_out`
    columns are o per_out..), then C_out digital sign columns (0/1) when `sign_weight` != 0;
    signal column k is shifted by `col_shift[k]`. `tables` (P, ceil(C / 8), 256, Kext), or
    empty: the rows summed per channel block and byte pattern (one group per block).
    `sp_ptr` (P C + 1), `sp_col`, `sp_val`, or `sp_ptr` of size 1: the matrix's nonzero entries
    row by row (compressed sparse rows, row p C + c), added instead of whole rows. `diag`
    (C, P), or empty: a one-window layer whose matrix is diagonal (a GAP layer on ideal cells,
    matrix[p, c, c] = diag[c, p]), summed channel by channel over the whole map.
    `per_position_reads`: a crossbar read per (kernel position, group) with a driven row
    (kernel_split), else one per PE operation (unrolled). `counts[n]` += (PE operations,
    crossbar reads, nonzero inputs, ADC clips, ADC conversions); `hist` (bins of `hist_step`
    levels; size 0: none) += |signal| of every conversion; `bits`, `popcount`: the set bits of
    each byte and their number.
    """
    _, cin, h, w = x.shape
    kext = matrix.shape[2]
    cout = out.shape[1]
    nbins = hist.shape[0]
    nblk = (cin + BLOCK - 1) // BLOCK
    use_tables = tables.shape[0] > 0
    use_sparse = sp_ptr.shape[0] > 1
    use_diag = diag.shape[0] > 0
    nops = ho * wo * ngroups
    acc = np.zeros((nops, kext), matrix.dtype)
    touched = np.zeros(nops, np.uint8)
    pm = np.zeros((nblk, h * w), np.int64)
    flat = x.reshape(x.shape[0], cin, h * w)
    psum = np.empty((ho * wo, cout), np.float64)
    for n in range(n0, n1):
        pm[:, :] = 0
        for c in range(cin):
            row, xc, shift = pm[c // BLOCK], flat[n, c], c % BLOCK
            for q in range(h * w):
                row[q] |= np.int64(xc[q] != 0) << shift
        nz = 0
        reads = 0
        if use_diag:  # one window: each channel's signal is a dot product over the map
            for c in range(cin):
                xc, dc = flat[n, c], diag[c]
                total = 0.0
                for q in range(h * w):
                    total += xc[q] * dc[q]
                acc[grp[0, c], c] += total
            for q in range(h * w):
                last = -1
                for blk in range(nblk):
                    msk = pm[blk, q]
                    if msk == 0:
                        continue
                    nz += popcount[msk]
                    g = grp[q, blk * BLOCK]
                    if g != last:
                        reads += 1
                        last = g
                        touched[g] = 1
        for iy in range(0 if use_diag else h):
            ny = ytab[iy, 0]
            for ix in range(w):
                q = iy * w + ix
                live = 0
                for blk in range(nblk):
                    live += popcount[pm[blk, q]]
                if live == 0:
                    continue
                nz += live
                nx = xtab[ix, 0]
                for a_ in range(ny):
                    ky, oy = ytab[iy, 1 + a_], ytab[iy, 1 + ny + a_]
                    for b_ in range(nx):
                        kx, ox = xtab[ix, 1 + b_], xtab[ix, 1 + nx + b_]
                        base = (oy * wo + ox) * ngroups
                        p = ky * kw + kx
                        last = -1
                        for blk in range(nblk):
                            msk = pm[blk, q]
                            if msk == 0:
                                continue
                            if use_tables:
                                g = grp[p, blk * BLOCK]
                                if g != last:
                                    reads += 1
                                    last = g
                                    touched[base + g] = 1
                                row = tables[p, blk, msk]
                                a = acc[base + g]
                                for k in range(kext):
                                    a[k] += row[k]
                                continue
                            for j in range(popcount[msk]):
                                c = blk * BLOCK + bits[msk, j]
                                g = grp[p, c]
                                if g != last:
                                    reads += 1
                                    last = g
                                    touched[base + g] = 1
                                a = acc[base + g]
                                if use_sparse:
                                    r = p * cin + c
                                    for e in range(sp_ptr[r], sp_ptr[r + 1]):
                                        a[sp_col[e]] += sp_val[e]
                                    continue
                                row = matrix[p, c]
                                for k in range(kext):
                                    a[k] += row[k]
        counts[n, INPUTS] += nz
        ops = 0
        for op in range(nops):
            ops += touched[op]
        clips = 0
        if lsb > 0 and nbins == 0 and per_out == 1 and ngroups == 1:  # one column per output
            for r in range(ho * wo):
                if touched[r] == 0:
                    for o in range(cout):
                        psum[r, o] = 0.0
                    continue
                a = acc[r]
                for o in range(cout):
                    raw = np.rint(np.float64(a[o]) / lsb)
                    code = min(max(raw, code_lo), code_hi)
                    clips += code != raw
                    psum[r, o] = col_shift[o] * code * lsb
                if sign_weight != 0:
                    for o in range(cout):
                        psum[r, o] += sign_weight * a[nsig + o]
        elif lsb > 0 and nbins == 0:  # every operation at once: untouched ones hold zeros
            for op in range(nops):
                a = acc[op]
                r = op // ngroups
                for o in range(cout):
                    t = 0.0
                    for j in range(per_out):
                        k = o * per_out + j
                        raw = np.rint(np.float64(a[k]) / lsb)
                        code = min(max(raw, code_lo), code_hi)
                        clips += code != raw
                        t += col_shift[k] * code
                    t *= lsb
                    if sign_weight != 0:
                        t += sign_weight * a[nsig + o]
                    if op % ngroups == 0:
                        psum[r, o] = t
                    else:
                        psum[r, o] += t
        else:  # calibration: no ADC, |signal| of the operations that read something
            for op in range(nops):
                a = acc[op]
                r = op // ngroups
                if op % ngroups == 0:
                    for o in range(cout):
                        psum[r, o] = 0.0
                for o in range(cout):
                    t = 0.0
                    for j in range(per_out):
                        k = o * per_out + j
                        sig = np.float64(a[k])
                        if nbins > 0 and touched[op]:
                            b = int(abs(sig) / hist_step + 0.5)
                            hist[min(b, nbins - 1)] += 1
                        if lsb > 0:
                            raw = np.rint(sig / lsb)
                            code = min(max(raw, code_lo), code_hi)
                            clips += code != raw
                            sig = code * lsb
                        t += col_shift[k] * sig
                    if sign_weight != 0:
                        t += sign_weight * a[nsig + o]
                    psum[r, o] += t
        for r in range(ho * wo):
            oy, ox = r // wo, r % wo
            for o in range(cout):
                out[n, o, oy, ox] = np.float32(psum[r, o] * scale) + bias[o]
        acc[:] = 0
        touched[:] = 0
        counts[n, OPS] += ops
        counts[n, READS] += reads if per_position_reads else ops
        counts[n, CLIPS] += clips
        counts[n, CONVERSIONS] += ops * nsig


def window_table(size: int, kernel: int, stride: int, pad: int, out: int) -> np.ndarray:
    """(size, 1 + 2 kernel) int64: for input index i along one axis, the count m of (kernel
    offset k, output index o) pairs with o stride - pad + k = i, then the m offsets, then the
    m outputs (unused entries 0)."""
    table = np.zeros((size, 1 + 2 * kernel), np.int64)
    for i in range(size):
        pairs = [
            (k, (i + pad - k) // stride)
            for k in range(kernel)
            if (i + pad - k) % stride == 0 and 0 <= (i + pad - k) // stride < out
        ]
        table[i, 0] = len(pairs)
        for j, (k, o) in enumerate(pairs):
            table[i, 1 + j] = k
            table[i, 1 + len(pairs) + j] = o
    return table


def block_tables(matrix: np.ndarray) -> np.ndarray:
    """(P, ceil(C / 8), 256, Kext) in `matrix`'s dtype: entry [p, b, m] = the sum of the rows
    matrix[p, 8 b + i] over the set bits i of m (channels past C are zero rows)."""
    positions, channels, kext = matrix.shape
    blocks = -(-channels // BLOCK)
    padded = np.zeros((positions, blocks * BLOCK, kext), np.float64)
    padded[:, :channels] = matrix
    patterns = (np.arange(256)[:, None] >> np.arange(BLOCK)[None, :]) & 1  # (256, 8)
    sums = np.einsum("mi,pbik->pbmk", patterns.astype(np.float64),
                     padded.reshape(positions, blocks, BLOCK, kext))  # fmt: skip
    return np.ascontiguousarray(sums.astype(matrix.dtype))


def pattern_bits() -> tuple[np.ndarray, np.ndarray]:
    """(bits, popcount): the set bits of every byte (256, 8) and their number (256,)."""
    return _BITS, _POPCOUNT
