"""The numba kernels' view of crossbar synapses (`hwsim.engine.backends.CrossbarSynapse`):
how each synapse's rows are added (block-sum tables, a GAP diagonal, a virtual conv of its
columns, row by row) and how its crossbar reads are counted, flattened into `_kernels.Crossbars`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from hwsim.engine import _kernels as K
from hwsim.engine.plan import Conn, ConnKind

if TYPE_CHECKING:
    from hwsim.engine.backends import CrossbarSynapse


XB_TABLE_BYTES = 1 << 20
"""Largest block-sum table (`block_sums`) a crossbar synapse of integer rows gets: 1 MiB (a
core's L2 here is 2 MiB); larger ones add their rows one by one."""


def block_sums(matrix: np.ndarray) -> np.ndarray:
    """(P, ceil(C / B), 2^B, K) of an integer matrix, B = `_kernels.XB_BLOCK` channels: entry
    [p, b, m] = the sum of the rows matrix[p, B b + i] over the set bits i of m (channels past
    C are zero rows), int64."""
    positions, channels, k = matrix.shape
    width = K.XB_BLOCK
    blocks = -(-channels // width)
    padded = np.zeros((positions, blocks * width, k), np.int64)
    padded[:, :channels] = matrix
    bits = (np.arange(1 << width)[:, None] >> np.arange(width)[None, :]) & 1  # (2^B, B)
    return np.einsum("mi,pbik->pbmk", bits, padded.reshape(positions, blocks, width, k))


def _diagonal(x: CrossbarSynapse) -> bool:
    """Whether a synapse's rows (p, c) of integer levels add the same level to column c only,
    at every p, with the group and crossbar of a block of 8 channels one at every p."""
    m = x.matrix
    if m.dtype.kind != "i" or m.shape[2] != m.shape[1] or x.per_output != 1:
        return False
    levels = m[0, np.arange(m.shape[1]), np.arange(m.shape[1])]
    diagonal = np.zeros_like(m)
    diagonal[:, np.arange(m.shape[1]), np.arange(m.shape[1])] = levels
    return (
        bool(np.array_equal(m, diagonal))
        and _by_block(x.group)
        and _by_block(x.crossbar)
        and bool((x.group == x.group[:1]).all())
    )


def summed(x: CrossbarSynapse) -> bool:
    """Whether a synapse's rows are summed as a conv of K outputs (a virtual connection of the
    numba engine): one conversion group, crossbar reads countable from the driven kernel
    positions (`_reads`), and no GAP diagonal (summed from channel counts instead)."""
    m = x.matrix
    return (
        int(x.group.max(initial=0)) == 0
        and _reads(x) != K.XR_FLAGS
        and not (m.shape[2] == m.shape[1] and _diagonal(x))
    )


def _reads(x: CrossbarSynapse) -> int:
    """How a synapse's crossbar reads are counted: XR_SINGLE (every row on one crossbar: one
    read per output position with a driven row), XR_POSITIONS (a crossbar per kernel position:
    the window's driven positions), else XR_FLAGS (distinct crossbars flagged row by row)."""
    xb = x.crossbar
    if xb.size == 0 or bool((xb == xb.flat[0]).all()):
        return K.XR_SINGLE
    first = xb[:, 0]
    if bool((xb == first[:, None]).all()) and len(np.unique(first)) == len(first):
        return K.XR_POSITIONS
    return K.XR_FLAGS


def virtual_conv(c: Conn, x: CrossbarSynapse) -> Conn:
    """Connection c as a conv of the synapse's K columns (a GAP as a conv over its map)."""
    kh, kw = c.kernel
    k = x.matrix.shape[2]
    rows = x.matrix.reshape(kh, kw, c.in_shape[2], k)
    return replace(
        c,
        name=f"{c.name} (crossbar rows)",
        kind=ConnKind.CONV,
        out_shape=(c.out_shape[0], c.out_shape[1], k),
        weight=np.ascontiguousarray(rows, np.float32),
        bias=np.zeros(k, np.float32),
        torch_weight=None,
        torch_bias=None,
        linear=False,
    )


def _tabled(x: CrossbarSynapse) -> bool:
    """Whether a synapse's rows are added from block-sum tables: integer rows (exact sums), one
    group and one crossbar per block of `_kernels.XB_BLOCK` channels, tables within
    XB_TABLE_BYTES."""
    table_bytes = x.matrix[:, :: K.XB_BLOCK].size * (1 << K.XB_BLOCK) * 4  # float32
    return (
        x.matrix.dtype.kind == "i"
        and table_bytes <= XB_TABLE_BYTES
        and _by_block(x.group)
        and _by_block(x.crossbar)
    )


def _by_block(index: np.ndarray) -> bool:
    """Whether (P, C) indices are constant over every block of `_kernels.XB_BLOCK` channels."""
    width = K.XB_BLOCK
    starts = np.repeat(index[:, ::width], width, axis=1)[:, : index.shape[1]]
    return bool(np.array_equal(index, starts))


def crossbar_tables(
    conns: Sequence[Conn], xbars: Sequence[CrossbarSynapse]
) -> tuple[K.Crossbars, np.ndarray]:
    """The kernels' view of the crossbar synapses of `conns` (tables, rows and block tables
    flat in float32, group and crossbar indices, shifts, biases, histograms) and the scratch
    sizes `xsizes` (`_kernels.chunk_scratch`)."""
    xtab = np.zeros((len(xbars), K.XTAB_COLS), np.int64)
    xpar = np.zeros((len(xbars), K.XPAR_COLS), np.float64)
    mats, tabs, idx, shifts, biases, hists = [], [], [], [], [], []
    n_mat = n_tab = n_idx = n_shift = n_bias = n_hist = 0
    acc = ops = cout = nx = vout = npos = rows_out = 1
    for i, (c, x) in enumerate(zip(conns, xbars, strict=True)):
        groups = int(x.group.max()) + 1 if x.group.size else 1
        crossbars = int(x.crossbar.max()) + 1 if x.crossbar.size else 1
        k = x.matrix.shape[2]
        r = xtab[i]
        r[K.X_MAT], r[K.X_K], r[K.X_SIG], r[K.X_PER] = n_mat, k, x.signals, x.per_output
        r[K.X_GRP], r[K.X_NG], r[K.X_NX], r[K.X_TAB] = n_idx, groups, crossbars, -1
        r[K.X_DIAG] = int(c.kind is ConnKind.GAP and _diagonal(x))
        r[K.X_READS] = _reads(x)
        if _tabled(x):
            r[K.X_TAB] = n_tab
            tabs.append(block_sums(x.matrix).ravel())
            n_tab += len(tabs[-1])
        r[K.X_SHIFT], r[K.X_BIAS] = n_shift, n_bias
        r[K.X_HIST], r[K.X_NBINS] = n_hist, 0 if x.hist is None else len(x.hist)
        mats.append(x.matrix.ravel())
        idx += [x.group.ravel(), x.crossbar.ravel()]
        shifts.append(np.asarray(x.col_shift, np.float64))
        biases.append(np.asarray(x.bias, np.float32))
        if x.hist is not None:
            hists.append(np.zeros(len(x.hist), np.int64))
        n_mat += x.matrix.size
        n_idx += 2 * x.group.size
        n_shift += x.signals
        n_bias += len(x.bias)
        n_hist += r[K.X_NBINS]
        p = xpar[i]
        p[K.XP_LSB], p[K.XP_INV] = x.lsb, _exact_reciprocal(x.lsb)
        p[K.XP_LO], p[K.XP_HI], p[K.XP_SCALE] = x.code_min, x.code_max, x.scale
        p[K.XP_SIGN], p[K.XP_HSTEP] = x.sign_weight, x.hist_step
        positions = c.out_shape[0] * c.out_shape[1] * groups
        acc, ops, cout = max(acc, positions * k), max(ops, positions), max(cout, c.out_shape[2])
        nx = max(nx, c.out_shape[0] * c.out_shape[1] * crossbars)
        vout = max(vout, c.out_shape[0] * c.out_shape[1] * k)
        npos = max(npos, c.in_shape[0] * c.in_shape[1])
        rows_out = max(rows_out, c.in_shape[0] * c.out_shape[1])

    def flat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(1, dtype)

    xb = K.Crossbars(
        xtab,
        xpar,
        flat(mats, np.float32),
        flat(tabs, np.float32),
        flat(idx, np.int64),
        flat(shifts, np.float64),
        flat(biases, np.float32),
        flat(hists, np.int64),
    )
    return xb, np.array([acc, ops, 2 * cout, nx, vout, npos, rows_out], np.int64)


def _exact_reciprocal(lsb: float) -> float:
    """1 / lsb where x * (1 / lsb) equals x / lsb for every x (lsb a power of two), else 0."""
    if lsb <= 0:
        return 0.0
    mantissa, _ = math.frexp(lsb)
    return 1.0 / lsb if mantissa == 0.5 else 0.0
