"""Numba kernels of the event-driven IF engine (see docs/engine.md for the formulation).

Layout: every image's state is one flat row per array: membranes V (float32) and spikes S
(int8, two buffers: S[t & 1] holds what was fired at t and is emitted at t + 1), with each
spiking layer at a fixed offset (a multiple of 8), channels-last. `run_chunk` advances a range of
images through a chunk of timesteps and releases the GIL, so threads can take disjoint ranges;
it runs `group` images at a time, layer by layer within each timestep.

Per layer and step: the currents start from the bias (or a precomputed analog current); each
incoming connection lists the nonzero entries of its source map (64 bytes at a time: a vector
compare gives a bit mask, trailing-zero counts give the indices), and every listed spike adds,
for each kernel row that reads it, one contiguous run of weights into one contiguous run of
output currents (weights stored polyphase: see backends.polyphase); runs are added 8 floats at
a time by an explicit vector intrinsic (LLVM does not vectorise these short, possibly aliasing
loops itself). Then one IF scan over the layer (vectorised by LLVM on block-local views), which
also counts spikes per channel for the layers a GAP reads.

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
KIND, SRC, DST, H, W, CIN, HO, WO, COUT, KH, KW, ANALOG, SRC_OFF, SRC_CH, COLBLK = range(15)
YCNT, YK, YO, XCNT, XK, XO = range(15, 21)  # activity tables (offsets into itab)
E_PTR, E_DST, E_WO, E_LN, W_OFF, CSTRIDE, CSHIFT, GROUPED = range(21, 29)  # scatter tables
CONN_COLS = 29
# layer_tab columns
L_OFF, L_N, L_C, L_BASE, L_IN0, L_IN1, L_CH = range(7)
LAYER_COLS = 7
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


@intrinsic
def _sum_into8(typingctx, cur, d, wflat, widx, kval, q0, q1, woff):
    """cur[d:d+8] += sum over q in [q0, q1) of wflat[widx[q] + woff : +8] * kval[q], in q order,
    keeping the partial sums in a register (one load and one store of cur)."""
    sig = types.void(cur, types.intp, wflat, widx, kval, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        c_arr = context.make_array(signature.args[0])(context, builder, args[0])
        w_arr = context.make_array(signature.args[2])(context, builder, args[2])
        i_arr = context.make_array(signature.args[3])(context, builder, args[3])
        k_arr = context.make_array(signature.args[4])(context, builder, args[4])
        d, q0, q1, woff = args[1], args[5], args[6], args[7]
        f32 = ir.FloatType()
        vty = ir.VectorType(f32, 8)
        dp = builder.bitcast(builder.gep(c_arr.data, [d]), vty.as_pointer())
        acc0 = builder.load(dp, align=4)
        pre = builder.block
        head = builder.append_basic_block("sum8.head")
        body = builder.append_basic_block("sum8.body")
        done = builder.append_basic_block("sum8.done")
        builder.branch(head)
        builder.position_at_end(head)
        q = builder.phi(q0.type)
        acc = builder.phi(vty)
        q.add_incoming(q0, pre)
        acc.add_incoming(acc0, pre)
        builder.cbranch(builder.icmp_signed("<", q, q1), body, done)
        builder.position_at_end(body)
        wi = builder.add(builder.load(builder.gep(i_arr.data, [q])), woff)
        wv = builder.load(builder.bitcast(builder.gep(w_arr.data, [wi]), vty.as_pointer()), align=4)
        k = builder.load(builder.gep(k_arr.data, [q]))
        kv = ir.Constant(vty, ir.Undefined)
        for i in range(8):
            kv = builder.insert_element(kv, k, ir.Constant(ir.IntType(32), i))
        acc_n = builder.fadd(acc, builder.fmul(wv, kv))
        q_n = builder.add(q, ir.Constant(q.type, 1))
        q.add_incoming(q_n, body)
        acc.add_incoming(acc_n, body)
        builder.branch(head)
        builder.position_at_end(done)
        builder.store(acc, dp, align=4)
        return context.get_dummy_value()

    return sig, codegen


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
def _cttz(typingctx, x):
    """Count of trailing zero bits of a nonzero uint64 (LLVM cttz)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@njit(cache=True, inline="always", error_model="numpy")
def _axpy(d, di, s, si, n, k):
    """d[di:di+n] += s[si:si+n] * k (float32; k is +-1 or a power of two, so s * k is exact)."""
    o = 0
    while o + 8 <= n:
        _axpy8(d, di + o, s, si + o, k)
        o += 8
    while o < n:
        d[di + o] += s[si + o] * k
        o += 1


@njit(cache=True, inline="always", error_model="numpy")
def _events(spk, so, n, ev):
    """Indices i (0 <= i < n) with spk[so + i] != 0, in order, into ev; returns their count."""
    m = 0
    nb = n // 64
    for blk in range(nb):
        mask = _nonzero_mask64(spk, so + blk * 64)
        base = blk * 64
        while mask != 0:
            ev[m] = base + np.int64(_cttz(mask))
            m += 1
            mask &= mask - np.uint64(1)
    for i in range(nb * 64, n):
        ev[m] = i
        m += spk[so + i] != 0
    return m


@njit(cache=True, inline="always", error_model="numpy")
def _scatter(cur, spk, so, wflat, ct, itab, scale, ev, widx, kval):
    """cur (H_out*W_out*C_out) += scale * conv(spk[so:so+H*W*C_in]) for connection row `ct`.

    For every nonzero input (position p, channel c): each entry e of p's run list adds
    wflat[wo_e + c * CSTRIDE : + ln_e] * value into cur[dst_e : dst_e + ln_e]. With GROUPED
    (wide inputs: several spikes per position), the spikes of one position are summed into each
    8-float block of the outputs in a register: one load and store of cur per block, not per
    spike (the same additions in the same order)."""
    cin = ct[CIN]
    m = _events(spk, so, ct[H] * ct[W] * cin, ev)
    ptr, dst, wo, ln = ct[E_PTR], ct[E_DST], ct[E_WO], ct[E_LN]
    w0, cstride, shift = ct[W_OFF], ct[CSTRIDE], ct[CSHIFT]
    if ct[GROUPED] != 0:
        q = 0
        while q < m:
            p = ev[q] >> shift
            q1 = q
            while q1 < m and (ev[q1] >> shift) == p:
                idx = ev[q1]
                widx[q1] = w0 + (idx & (cin - 1)) * cstride
                kval[q1] = scale * np.float32(spk[so + idx])
                q1 += 1
            for e in range(itab[ptr + p], itab[ptr + p + 1]):
                d, wofe, n = itab[dst + e], itab[wo + e], itab[ln + e]
                for o in range(0, n, 8):
                    _sum_into8(cur, d + o, wflat, widx, kval, q, q1, wofe + o)
            q = q1
        return
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


@njit(cache=True, inline="always", error_model="numpy")
def _gap(cur, chan, co, ct, scale):
    """cur (C) += scale * mean over H, W of the source's spikes, from its per-channel counts
    chan[co:co+C] (kept by the source's IF scan)."""
    hw, c = ct[H] * ct[W], ct[CIN]
    for i in range(c):
        cur[i] += scale * (np.float32(chan[co + i]) / np.float32(hw))


@njit(cache=True, inline="always", error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def conn_activity(spk, so, conn_tab, g, itab, rows, omap):
    """(input spikes, active crossbar reads, active windows) of connection g for one image and
    step; `spk[so:]` its input (H*W*C_in, nonzero = active), `rows` input rows per crossbar.

    A crossbar read is (output position, ky, kx, row group, column block), needed when some
    input in that window position and row group is nonzero; a window is (output position, row
    group, column block), needed when any of its k_h*k_w positions is (docs/engine.md)."""
    ct = conn_tab[g]
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


@njit(cache=True, error_model="numpy")
def conn_activity_unrolled(spk, so, conn_tab, g, itab, rows, omap, chans):
    """(input spikes, active PE operations, active PE operations) of connection g for one image
    and step under the unrolled mapping; `spk[so:]` its input (H*W*C_in, nonzero = active),
    `rows` rows per crossbar, `chans` scratch of >= C_in int64.

    A kernel's weights are flattened onto rows kernel position major, channel minor (row
    (ky k_w + kx) C_in + c, as hwsim.hw.energy.layer_patches / active_pe_operations) and cut
    into groups of `rows`; a PE operation (output position, row group, column block) is active
    when some row of its group is nonzero in that output position's window (docs/engine.md).
    Both counts are these operations (one crossbar read each)."""
    ct = conn_tab[g]
    h, w, cin, ho, wo, kh, kw = ct[H], ct[W], ct[CIN], ct[HO], ct[WO], ct[KH], ct[KW]
    groups = (kh * kw * cin + rows - 1) // rows
    ycnt, yk, yo, xcnt, xk, xo = ct[YCNT], ct[YK], ct[YO], ct[XCNT], ct[XK], ct[XO]
    nmap = ho * wo * groups
    for i in range(nmap):
        omap[i] = 0
    n_in = 0
    for iy in range(h):
        ny = itab[ycnt + iy]
        for ix in range(w):
            nx = itab[xcnt + ix]
            p = so + (iy * w + ix) * cin
            m = 0
            for c in range(cin):
                if spk[p + c] != 0:
                    chans[m] = c
                    m += 1
            if m == 0:
                continue
            n_in += m
            for a in range(ny):
                ky = itab[yk + iy * kh + a]
                oy = itab[yo + iy * kh + a]
                for bb in range(nx):
                    kx = itab[xk + ix * kw + bb]
                    base = (ky * kw + kx) * cin
                    o = (oy * wo + itab[xo + ix * kw + bb]) * groups
                    last = -1
                    for q in range(m):
                        r = (base + chans[q]) // rows
                        if r != last:
                            omap[o + r] = 1
                            last = r
    ops = 0
    for i in range(nmap):
        ops += omap[i]
    return n_in, ops * ct[COLBLK], ops * ct[COLBLK]


@njit(cache=True, inline="always", error_model="numpy")
def _layer_step(
    b, t, tt, j, layer_tab, in_idx, conn_tab, wflat, bias, itab, v, s, s64, chan, base, inp,
    omega, gscale, threshold, counts, act, rows, unrolled, cur, ev, widx, kval, omap,
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
            _scatter(cur, spk, so, wflat, ct, itab, sc, ev, widx, kval)
        if rows > 0:
            if unrolled:
                a_in, a_rd, a_win = conn_activity_unrolled(
                    spk, so, conn_tab, g, itab, rows, omap, ev
                )
            else:
                a_in, a_rd, a_win = conn_activity(spk, so, conn_tab, g, itab, rows, omap)
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
        _channel_counts(s64[t & 1, b], ss, off, n, ch, c_wr[lt[L_CH] : lt[L_CH] + ch])


@njit(cache=True, nogil=True, error_model="numpy")
def run_chunk(
    b0, b1, t0, t1, layer_tab, in_idx, conn_tab, wflat, bias, itab, v, s, s64, chan, base, inp,
    omega, gscale, threshold, head_layers, rec, counts, act, rows, unrolled, max_n, max_in,
    max_omap, group,
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
    (B, t1-t0, L) int32 spikes fired per layer; act (B, t1-t0, G, 3) int32 activity if rows > 0
    (counted for the unrolled crossbar mapping if `unrolled`, else kernel-split).
    Images run `group` at a time layer by layer (a layer's weights are fetched once per group).
    """
    n_layers = layer_tab.shape[0]
    cur = np.empty(max_n, np.float32)
    ev = np.empty(max_in, np.int64)
    widx = np.empty(max_in, np.int64)
    kval = np.empty(max_in, np.float32)
    omap = np.empty(max_omap, np.uint8)
    for g0 in range(b0, b1, group):
        g1 = min(b1, g0 + group)
        for t in range(t0, t1):
            tt = t - t0
            for j in range(n_layers):
                for b in range(g0, g1):
                    _layer_step(
                        b, t, tt, j, layer_tab, in_idx, conn_tab, wflat, bias, itab, v, s, s64,
                        chan, base, inp, omega, gscale, threshold, counts, act, rows, unrolled,
                        cur, ev, widx, kval, omap,
                    )  # fmt: skip
            for b in range(g0, g1):
                s_rd = s[(t - 1) & 1, b]
                for hi in range(head_layers.shape[0]):
                    lt = layer_tab[head_layers[hi]]
                    for i in range(lt[L_N]):
                        rec[b, tt, hi, i] = s_rd[lt[L_OFF] + i]
