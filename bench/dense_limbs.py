"""Can a dense formulation on this machine's matrix units (AMX) beat the event-driven engine on
the full-width VGG19 (vgg19-32 of bench/engine.py)? (bench/README.md, issue 13)

    python bench/dense_limbs.py [--steps 16] [--rate 0.1] [--json dense_limbs.json]

The engine owes every layer the float32 sum of the weights its input spikes select, exact on
dyadic weights and otherwise rounded as some float32 summation order. A dense formulation on
the matrix units can give that only if its products and sums are exact before one final
rounding:
- bf16 tiles: torch's bf16 GEMM on the CPU returns bf16 (8 significant bits), not float32
  sums; checked here on one layer (`bf16_rounds`).
- int8 tiles (`torch._int_mm`, exact int32 sums): each weight becomes a fixed-point integer on
  the grid of the layer's lowest set weight bit, split into signed 7-bit limbs; one int8 GEMM
  per limb, the int32 results shifted into one int64 sum (exact: at most 7 limbs x 7 bits
  plus 13 bits for 4,608 inputs) and rounded once to float32.
  `limbs` is what the layer's float32 weights need for that (from the lowest set bit of its
  smallest weight to the top bit of its largest); 4 limbs (28 bits) is the least any float32
  weights need (24 significant bits and a sign), a lower bound on the cost.

Per spiking conv (its im2col GEMM: M = steps x images x H_out x W_out, K = 9 C_in, N = C_out;
binary inputs at --rate): the float32 conv the dense peers run (oneDNN, channels-last) against
the int8 GEMM alone and with its recombination, not counting im2col (which favours the limbs).
The whole net's ratio is the peers' float32 conv time over the limb formulation's time: for
the layers' own limb counts, for 4 limbs, and for the own limbs' GEMMs without recombination
(an upper bound for any limb kernel).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import full_width_vgg19, machine  # noqa: E402

from hwsim.model.graph import LayerKind  # noqa: E402

LIMB_BITS = 7  # magnitude bits of one signed int8 limb


def limb_count(w: np.ndarray) -> int:
    """Signed 7-bit limbs that hold every nonzero float32 weight of `w` exactly on one
    fixed-point grid: from the lowest set bit of any weight to the top bit of the largest."""
    nz = np.abs(w[w != 0].astype(np.float64))
    frac, exp = np.frexp(nz)  # nz = frac 2^exp, frac in [0.5, 1)
    mant = (frac * 2.0**24).astype(np.int64)  # the 24 significant bits
    low = exp - 24 + _trailing_zeros(mant)
    span = int(exp.max() - low.min())  # bits from the lowest set bit to the top bit
    return -(-span // LIMB_BITS)


def _trailing_zeros(x: np.ndarray) -> np.ndarray:
    return np.log2((x & -x).astype(np.float64)).astype(np.int64)


def limbs_of(w: np.ndarray, count: int) -> tuple[list[np.ndarray], int]:
    """w (float32) = sum_i limbs[i] 2^(shift + 7 i) exactly, limbs int8 in [-127, 127], when
    `count` >= limb_count(w); shift is the exponent of the grid's unit."""
    nz = np.abs(w[w != 0].astype(np.float64))
    frac, exp = np.frexp(nz)
    shift = int((exp - 24 + _trailing_zeros((frac * 2.0**24).astype(np.int64))).min())
    shift = max(shift, int(exp.max()) - LIMB_BITS * count)
    q = np.ldexp(np.abs(w.astype(np.float64)), -shift)
    mag = np.floor(q).astype(np.int64)
    sign = np.sign(w).astype(np.int64)
    limbs = []
    for _ in range(count):
        limbs.append((sign * (mag & 127)).astype(np.int8))
        mag >>= LIMB_BITS
    return limbs, shift


def _timed(fn, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def bf16_rounds(k: int = 576, n: int = 64) -> bool:
    """True if torch's CPU bf16 GEMM returns bf16 (its sums rounded to 8 bits)."""
    a = torch.ones(8, k, dtype=torch.bfloat16)
    b = torch.full((k, n), 1.0 + 2.0**-7, dtype=torch.bfloat16)
    out = a @ b
    return out.dtype == torch.bfloat16 and float(out[0, 0]) != k * (1.0 + 2.0**-7)


def layer_rates(layer, weight: np.ndarray, steps: int, images: int, rate: float, reps: int):
    """(float32 conv s, int8 GEMM + recombination s per limb, int8 GEMM alone s, exact) of one
    conv; exact: the layer's limbs give back its weights and the int8 GEMM equals the float64
    product."""
    cin, (kh, kw), (ho, wo) = layer.in_channels, layer.kernel, layer.out_hw
    h, w_in = layer.in_shape[1], layer.in_shape[2]
    batch = steps * images
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, cin, h, w_in, generator=g) < rate).float()
    xc = x.contiguous(memory_format=torch.channels_last)
    wt = torch.from_numpy(weight)
    conv = _timed(
        lambda: torch.nn.functional.conv2d(xc, wt, stride=layer.stride, padding=layer.padding),
        reps,
    )
    cols = torch.nn.functional.unfold(x, (kh, kw), padding=layer.padding, stride=layer.stride)
    a = cols.transpose(1, 2).reshape(batch * ho * wo, cin * kh * kw).to(torch.int8).contiguous()
    flat = weight.reshape(weight.shape[0], -1)
    limbs, shift = limbs_of(flat, limb_count(flat))
    back = sum(
        limb.astype(np.float64) * 2.0 ** (shift + LIMB_BITS * i) for i, limb in enumerate(limbs)
    )
    b = torch.from_numpy(limbs[0].T.copy())
    acc = torch.zeros(a.shape[0], b.shape[1], dtype=torch.int64)

    def one_limb():  # one limb's GEMM, added at its place into the exact int64 sum
        acc.add_(torch._int_mm(a, b).long() << LIMB_BITS)

    per_limb = _timed(one_limb, reps)
    gemm = _timed(lambda: torch._int_mm(a, b), reps)
    exact = np.array_equal(back, flat.astype(np.float64)) and torch.equal(
        torch._int_mm(a[:512], b).double(), a[:512].double() @ b.double()
    )
    return conv, per_limb, gemm, bool(exact)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=64, help="timesteps batched (as the peer)")
    ap.add_argument("--images", type=int, default=4, help="images (vgg19-32 of bench/engine)")
    ap.add_argument("--rate", type=float, default=0.1, help="input spike rate")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    snn, _ = full_width_vgg19(args.images)
    rows = []
    load = [os.getloadavg()[0]]
    with torch.no_grad():
        for layer in snn.graph.layers:
            if layer.kind is not LayerKind.CONV or not layer.inputs:
                continue  # the analog first layer's current is computed once
            weight = snn.weights[layer.name].weight.numpy().astype(np.float32)
            conv, per_limb, gemm, exact = layer_rates(
                layer, weight, args.steps, args.images, args.rate, args.reps
            )
            macs = layer.macs * args.steps * args.images
            limbs = limb_count(weight)
            row = {
                "layer": layer.name,
                "gemm": [
                    args.steps * args.images * layer.out_hw[0] * layer.out_hw[1],
                    layer.in_channels * layer.kernel[0] * layer.kernel[1],
                    layer.out_channels,
                ],  # fmt: skip
                "fp32_conv_gmacs": macs / conv / 1e9,
                "int8_gemm_gmacs": macs / gemm / 1e9,
                "int8_gemm_recombined_gmacs": macs / per_limb / 1e9,
                "limbs": limbs,
                "int_mm_exact": exact,
                "fp32_s": conv,
                "limb_s": per_limb,
                "gemm_s": gemm,
            }
            rows.append(row)
            print(
                f"{layer.name:8s} M,K,N {row['gemm']}  fp32 conv {row['fp32_conv_gmacs']:6.1f}"
                f" GMAC/s  int8 GEMM {row['int8_gemm_gmacs']:6.1f} (recombined"
                f" {row['int8_gemm_recombined_gmacs']:6.1f})  limbs {limbs}: fp32-equiv."
                f" {row['int8_gemm_recombined_gmacs'] / limbs:5.1f}, exact {exact}",
                flush=True,
            )
    load.append(os.getloadavg()[0])
    fp32 = sum(r["fp32_s"] for r in rows)
    own = sum(r["limb_s"] * r["limbs"] for r in rows)
    four = sum(r["limb_s"] * 4 for r in rows)
    gemm_only = sum(r["gemm_s"] * r["limbs"] for r in rows)
    summary = {
        "fp32_over_limbs_exact": fp32 / own,
        "fp32_over_limbs_4": fp32 / four,
        "fp32_over_limb_gemms_alone": fp32 / gemm_only,
        "limbs_exact": all(r["int_mm_exact"] for r in rows),
        "bf16_gemm_rounds_to_bf16": bf16_rounds(),
        "machine": machine(),
        "amx": "amx_int8" in Path("/proc/cpuinfo").read_text(),
        "load": load,
        "threads": args.threads,
        "torch": torch.__version__,
    }
    print(
        f"whole net: float32 convs / exact limbs = {summary['fp32_over_limbs_exact']:.2f}x,"
        f" / 4 limbs = {summary['fp32_over_limbs_4']:.2f}x, / the exact limbs' GEMMs alone ="
        f" {summary['fp32_over_limb_gemms_alone']:.2f}x; bf16 GEMM returns bf16:"
        f" {summary['bf16_gemm_rounds_to_bf16']}; AMX: {summary['amx']}; load {load}"
    )
    if args.json:
        args.json.write_text(json.dumps({"layers": rows, **summary}, indent=1))


if __name__ == "__main__":
    main()
