"""Numba kernels of the event-driven IF engine (see docs/engine.md for the formulation).

Layout: every image's state is one flat row per array: membranes V (float32) and spikes S
(int8, two buffers: S[t & 1] holds what was fired at t and is emitted at t + 1), with each
spiking layer at a fixed offset, channels-last. One call runs a chunk of timesteps for a batch of
images: threads take disjoint ranges of images (the kernel releases the GIL), and run a few
images at a time through time and then layers. Per layer and step: the input current starts from the bias (or a precomputed
analog current), each source spike adds its weight rows into the currents of the outputs that
read it (scatter; rows are added 8 floats at a time by an explicit vector intrinsic, which LLVM
does not otherwise emit for these short rows), then one IF scan over the layer.

Exactness: each output's current is the bias plus the weight rows of its input spikes added in
input order (row, column, channel); another order (a dense conv) can round differently unless
weights and inputs are dyadic (docs/engine.md).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# conn_tab columns
KIND, SRC, DST, H, W, CIN, HO, WO, COUT, KH, KW, W_OFF = range(12)
YCNT, YK, YO, XCNT, XK, XO, ANALOG, SRC_OFF, COLBLK, STRIDE, SRC_CH = range(12, 23)
NMAX, XR, XJ, XO0, XLEN = range(23, 28)
CONN_COLS = 28
# layer_tab columns
L_OFF, L_N, L_C, L_BASE, L_BIAS, L_IN0, L_IN1, L_CH = range(8)
LAYER_COLS = 8
GAP = 1


@intrinsic
def _axpy8(typingctx, dst, di, src, si, k):
    """dst[di:di+8] += src[si:si+8] * k, as one <8 x float> operation (no alias assumption)."""
    sig = types.void(dst, types.intp, src, types.intp, types.float32)

    def codegen(context, builder, signature, args):
        d = context.make_array(signature.args[0])(context, builder, args[0])
        s = context.make_array(signature.args[2])(context, builder, args[2])
        vty = ir.VectorType(ir.FloatType(), 8)
        dp = builder.bitcast(builder.gep(d.data, [args[1]]), vty.as_pointer())
        sp = builder.bitcast(builder.gep(s.data, [args[3]]), vty.as_pointer())
        kv = ir.Constant(vty, ir.Undefined)
        for i in range(8):
            kv = builder.insert_element(kv, args[4], ir.Constant(ir.IntType(32), i))
        prod = builder.fmul(builder.load(sp, align=4), kv)
        builder.store(builder.fadd(builder.load(dp, align=4), prod), dp, align=4)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def _axpy(d, di, s, si, n, k):
    """d[di:di+n] += s[si:si+n] * k (float32; k is +-1 or a power of two, so s * k is exact)."""
    o = 0
    while o + 8 <= n:
        _axpy8(d, di + o, s, si + o, k)
        o += 8
    while o < n:
        d[di + o] += s[si + o] * k
        o += 1


@intrinsic
def _cttz(typingctx, x):
    """Count of trailing zero bits of a nonzero uint64 (LLVM cttz)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@njit(cache=True, inline="always")
def _axpy_v(d, di, s, si, n, k):
    """_axpy for n a multiple of 8."""
    for o in range(0, n, 8):
        _axpy8(d, di + o, s, si + o, k)


@njit(cache=True, inline="always")
def _compact_words(spk, w64, p, cin, lst, sgn):
    """_compact for 8 | cin and 8 | p, reading 8 channels at a time as a uint64 (w64 is spk
    viewed as uint64): an all-zero word is skipped at once, a nonzero one yields its nonzero
    bytes in order by trailing-zero counts."""
    m = 0
    for k in range(cin // 8):
        wd = w64[(p >> 3) + k]
        while wd != 0:
            byte = _cttz(wd) >> np.uint64(3)
            c = k * 8 + np.int64(byte)
            lst[m] = c
            sgn[m] = spk[p + c]
            m += 1
            wd &= ~(np.uint64(0xFF) << (byte << np.uint64(3)))
    return m


@njit(cache=True, inline="always")
def _compact(spk, p, cin, lst, sgn):
    """The nonzero inputs among spk[p:p+cin]: channels into lst, values into sgn; their count.
    Branch-free (always store, advance on a spike): spikes are too irregular to predict."""
    m = 0
    for c in range(cin):
        v = spk[p + c]
        lst[m] = c
        sgn[m] = v
        m += v != 0
    return m


@njit(cache=True, inline="always")
def _scatter(cur, spk, w64, so, wflat, ct, itab, scale, lst, sgn):
    """cur (H_out*W_out*C_out) += scale * conv(spikes at spk[so:]) for connection row `ct`.

    For each input with a spike: the (ky, oy) pairs that read its row come from a table; the
    outputs that read its column are consecutive (ox_lo .. ox_lo + len - 1), and the weights are
    stored polyphase, (ky, C_in, kx mod stride, kx descending, C_out), so that each spike adds
    one contiguous run of len * C_out weights per kernel row. `w64`: spk viewed as uint64,
    used when the source is a spiking layer with 8 | C_in (None-like: any array otherwise)."""
    h, w, cin, wo, cout, kh = ct[H], ct[W], ct[CIN], ct[WO], ct[COUT], ct[KH]
    st, nmax, wp = ct[STRIDE], ct[NMAX], ct[W_OFF]
    ycnt, yk, yo = ct[YCNT], ct[YK], ct[YO]
    xr, xj, xo, xl = ct[XR], ct[XJ], ct[XO0], ct[XLEN]
    words = ct[SRC] >= 0 and cin % 8 == 0
    vec = cout % 8 == 0
    cstride = st * nmax * cout
    for iy in range(h):
        ny = itab[ycnt + iy]
        if ny == 0:
            continue
        for ix in range(w):
            ln = itab[xl + ix]
            if ln == 0:
                continue
            p = so + (iy * w + ix) * cin
            if words:
                m = _compact_words(spk, w64, p, cin, lst, sgn)
            else:
                m = _compact(spk, p, cin, lst, sgn)
            if m == 0:
                continue
            run = ln * cout
            r, j_lo, ox_lo = itab[xr + ix], itab[xj + ix], itab[xo + ix]
            for a in range(ny):
                ky = itab[yk + iy * kh + a]
                oy = itab[yo + iy * kh + a]
                di = (oy * wo + ox_lo) * cout
                wb = wp + ((ky * cin * st + r) * nmax + j_lo) * cout
                if vec:
                    for q in range(m):
                        _axpy_v(cur, di, wflat, wb + lst[q] * cstride, run, scale * sgn[q])
                else:
                    for q in range(m):
                        _axpy(cur, di, wflat, wb + lst[q] * cstride, run, scale * sgn[q])


@njit(cache=True, inline="always")
def _gap(cur, chan, co, ct, scale):
    """cur (C) += scale * mean over H, W of the source's spikes, from its per-channel counts
    chan[co:co+C] (kept by the source's IF scan)."""
    hw, c = ct[H] * ct[W], ct[CIN]
    for i in range(c):
        cur[i] += scale * (np.float32(chan[co + i]) / np.float32(hw))


@njit(cache=True, inline="always")
def _channel_counts(w64, ss, off, n, ch, out, acc):
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
        acc[k] = 0
    for p in range(npos):
        for k in range(wpp):
            acc[k] += w64[w0 + p * wpp + k]
        if p % 255 == 254 or p == npos - 1:
            for k in range(wpp):
                a = acc[k]
                for i in range(8):
                    out[k * 8 + i] += (a >> np.uint64(8 * i)) & np.uint64(0xFF)
                acc[k] = 0


@njit(cache=True)
def conn_activity(spk, so, ct, itab, rows, omap):
    """(input spikes, active crossbar reads, active windows) of connection `ct` for one image and
    step; `spk[so:]` its input (H*W*C_in, nonzero = active), `rows` input rows per crossbar.

    A crossbar read is (output position, ky, kx, row group, column block), needed when some
    input in that window position and row group is nonzero; a window is (output position, row
    group, column block), needed when any of its k_h*k_w positions is (docs/engine.md)."""
    h, w, cin, ho, wo, kh, kw = ct[H], ct[W], ct[CIN], ct[HO], ct[WO], ct[KH], ct[KW]
    groups = (cin + rows - 1) // rows
    ycnt, yo, xcnt, xo = ct[YCNT], ct[YO], ct[XCNT], ct[XO]
    nmap = ho * wo * groups
    for i in range(nmap):
        omap[i] = 0
    n_in = 0
    reads = 0
    for iy in range(h):
        ny = itab[ycnt + iy]
        for ix in range(w):
            nx = itab[xcnt + ix]
            p = so + (iy * w + ix) * cin
            for g in range(groups):
                active = 0
                for c in range(g * rows, min(cin, (g + 1) * rows)):
                    if spk[p + c] != 0:
                        active += 1
                if active == 0:
                    continue
                n_in += active
                reads += ny * nx
                for a in range(ny):
                    oy = itab[yo + iy * kh + a]
                    for bb in range(nx):
                        omap[(oy * wo + itab[xo + ix * kw + bb]) * groups + g] = 1
    windows = 0
    for i in range(nmap):
        windows += omap[i]
    return n_in, reads * ct[COLBLK], windows * ct[COLBLK]


@njit(cache=True, inline="always")
def _layer_step(
    b, t, tt, j, layer_tab, in_idx, conn_tab, wflat, bias, itab, v, s, s64, chan, base, inp,
    omega, gscale, threshold, counts, act, rows, cur, lst, sgn, omap, acc,
):  # fmt: skip
    """Layer j of image b at timestep t (chunk index tt): currents, IF scan, spike counts."""
    lt = layer_tab[j]
    off, n, ch = lt[L_OFF], lt[L_N], lt[L_C]
    s_rd = s[(t - 1) & 1, b]
    s_wr = s[t & 1, b]
    c_wr = chan[t & 1, b]
    om = omega[tt, j]
    if om == 0:  # idle: no update, no spikes
        for i in range(n):
            s_wr[off + i] = 0
        if lt[L_CH] >= 0:
            for i in range(ch):
                c_wr[lt[L_CH] + i] = 0
        counts[b, tt, j] = 0
        return
    cc = cur[:n]
    if lt[L_BASE] >= 0:
        bb = base[b, lt[L_BASE] : lt[L_BASE] + n]
        for i in range(n):
            cc[i] = bb[i]
    else:
        bb = bias[off : off + n]
        for i in range(n):
            cc[i] = bb[i] * om
    for q in range(lt[L_IN0], lt[L_IN1]):
        g = in_idx[q]
        ct = conn_tab[g]
        if ct[SRC] < 0:
            if ct[ANALOG] != 0:
                continue  # already in base
            spk = inp[b, tt]
            so = 0
        else:
            spk = s_rd
            so = ct[SRC_OFF]
        sc = gscale[tt, g]
        if ct[KIND] == GAP:
            _gap(cur, chan[(t - 1) & 1, b], ct[SRC_CH], ct, sc)
        else:
            _scatter(cur, spk, s64[(t - 1) & 1, b], so, wflat, ct, itab, sc, lst, sgn)
        if rows > 0:
            a_in, a_rd, a_win = conn_activity(spk, so, ct, itab, rows, omap)
            act[b, tt, g, 0] = a_in
            act[b, tt, g, 1] = a_rd
            act[b, tt, g, 2] = a_win
    # IF scan on block-local views (lets LLVM vectorise it)
    th = om * threshold
    vv = v[b, off : off + n]
    ss = s_wr[off : off + n]
    fired = 0
    for i in range(n):
        x = vv[i] + cc[i]
        f = x >= th
        if f:
            x -= th
        vv[i] = x
        ss[i] = f
        fired += f
    counts[b, tt, j] = fired
    if lt[L_CH] >= 0:
        _channel_counts(s64[t & 1, b], ss, off, n, ch, c_wr[lt[L_CH] : lt[L_CH] + ch], acc)


@njit(cache=True, nogil=True)
def run_chunk(
    b0, b1, t0, t1, layer_tab, in_idx, conn_tab, wflat, bias, itab, v, s, s64, chan, base, inp,
    omega, gscale, threshold, head_layers, rec, counts, act, rows, max_n, max_c, max_omap, group,
):  # fmt: skip
    """Advance images b0..b1-1 of the batch from timestep t0 to t1 (exclusive).

    Releases the GIL: threads may run disjoint image ranges of the same arrays at once.
    v (B, N) float32 membranes; s (2, B, N) int8 spikes (s[t & 1] fired at t) and s64 the same
    memory viewed as uint64; bias (N,) float32 every neuron's beta; chan (2, B, Nc) int32
    spikes per channel of the layers a GAP reads, kept by their IF scan; base (B, Nb) float32
    precomputed currents of layers with an analog input; inp (B, t1-t0, P) int8 coded input
    spikes (unused for analog input); omega (t1-t0, L) float32 layer phase weights (0: idle),
    which also scale bias and threshold; gscale (t1-t0, G) float32 the weight of each
    connection's input spikes (its source's phase weight when it fired them).
    Outputs for the chunk: rec (B, t1-t0, heads, classes) uint8 head spikes emitted at t; counts
    (B, t1-t0, L) int32 spikes fired per layer; act (B, t1-t0, G, 3) int32 activity if rows > 0.
    Images run `group` at a time layer by layer (a layer's weights are fetched once per group).
    """
    n_layers = layer_tab.shape[0]
    cur = np.empty(max_n, np.float32)
    lst = np.empty(max_c, np.int64)
    sgn = np.empty(max_c, np.float32)
    omap = np.empty(max_omap, np.uint8)
    acc = np.empty(max_c // 8 + 1, np.uint64)
    for g0 in range(b0, b1, group):
        g1 = min(b1, g0 + group)
        for t in range(t0, t1):
            tt = t - t0
            for j in range(n_layers):
                for b in range(g0, g1):
                    _layer_step(
                        b, t, tt, j, layer_tab, in_idx, conn_tab, wflat, bias, itab, v, s, s64,
                        chan, base, inp, omega, gscale, threshold, counts, act, rows, cur, lst,
                        sgn, omap, acc,
                    )  # fmt: skip
            for b in range(g0, g1):
                s_rd = s[(t - 1) & 1, b]
                for hi in range(head_layers.shape[0]):
                    lt = layer_tab[head_layers[hi]]
                    for i in range(lt[L_N]):
                        rec[b, tt, hi, i] = s_rd[lt[L_OFF] + i]
