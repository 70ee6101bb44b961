"""Benchmark of the IF engine against its oracle, its torch path and peer simulators.

    python bench/engine.py [--model models/vgg19.pt] [--timesteps 256] [--threads 2] [--long]

On one converted network and one set of test images, side by side in one run:
- the oracle (tests/test_engine.py; float64 numpy loop) on a few images and steps;
- hwsim's torch backend (dense batched conv per layer and step) and numba backend (event-driven);
- spikingjelly (IFNode, soft reset, multi-step) and snntorch (Leaky, beta = 1, subtract reset)
  if installed (`pip install spikingjelly snntorch`; not runtime dependencies of hwsim),
  both given the same one-step delay per layer as hwsim, so the spikes can be compared;
- per layer: event-driven scatter (numba, one image) vs a dense torch conv (batch of 250), per
  image-step, at the measured input spike density and at fixed densities (the crossover);
- `--long`: the numba engine at T=3000 on a subset, extrapolated to 1,000 images.
Reports image-timesteps/s, synaptic operations/s, dense-equivalent GMAC/s and this machine's
torch dense-conv rate; ratios are what to compare across machines. Prints a JSON summary.
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
import torch.nn.functional as F
from numba import njit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.convert import SpikingNetwork, convert  # noqa: E402
from hwsim.data import load_dataset  # noqa: E402
from hwsim.engine import _kernels as K  # noqa: E402
from hwsim.engine import simulate  # noqa: E402
from hwsim.engine.plan import ConnKind, Plan, build_plan  # noqa: E402
from hwsim.graph import FC_HEAD  # noqa: E402
from hwsim.nets import load_checkpoint  # noqa: E402


class Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def dense_macs(plan: Plan) -> np.ndarray:
    """Dense MACs per image and step of every connection (GAP: one add per input)."""
    out = []
    for c in plan.conns:
        ho, wo, co = c.out_shape
        if c.kind is ConnKind.GAP:
            out.append(int(np.prod(c.in_shape)))
        else:
            out.append(ho * wo * co * c.in_shape[2] * c.kernel[0] * c.kernel[1])
    return np.asarray(out, np.int64)


def synaptic_ops(plan: Plan, layer_spikes: np.ndarray, images: int) -> float:
    """Synaptic operations per image and step: each connection's input spikes times its dense
    MACs per input neuron (the analog input layer counts as dense)."""
    macs = dense_macs(plan)
    total = 0.0
    steps = layer_spikes.shape[0]
    for g, c in enumerate(plan.conns):
        if c.src < 0:
            total += macs[g]
            continue
        n_in = plan.layers[c.src].neurons
        density = layer_spikes[:, c.src].sum() / (n_in * steps * images)
        total += density * macs[g]
    return total


def torch_dense_rate(threads: int) -> float:
    """GMAC/s of a large batched 3x3 conv (64 -> 64 channels, 32x32, batch 64) on this machine."""
    torch.set_num_threads(threads)
    x = torch.randn(64, 64, 32, 32)
    w = torch.randn(64, 64, 3, 3)
    F.conv2d(x, w, padding=1)
    with Timer() as tm:
        for _ in range(5):
            F.conv2d(x, w, padding=1)
    return 5 * 64 * 64 * 64 * 9 * 32 * 32 / tm.wall / 1e9


# ------------------------------------------------------------------------------------- peers


def _delay(s: torch.Tensor) -> torch.Tensor:
    """(T, B, ...) shifted one step later along T: what a layer emits at t is what it fired
    at t-1 (hwsim's one-step delay per layer)."""
    return torch.cat([torch.zeros_like(s[:1]), s[:-1]])


def run_spikingjelly(snn: SpikingNetwork, x: np.ndarray, steps: int, batch: int) -> dict:
    from spikingjelly.activation_based import neuron

    def if_layer():
        return neuron.IFNode(v_threshold=snn.params.threshold, v_reset=None, step_mode="m")

    heads = {h: np.zeros((len(x), steps, snn.spec.num_classes), np.uint8) for h in snn.heads}
    counts = np.zeros(steps)
    with torch.no_grad():
        for b0 in range(0, len(x), batch):
            xb = torch.from_numpy(x[b0 : b0 + batch])
            n = len(xb)
            taps = []
            s = None
            for i, b in enumerate(snn.blocks):
                if b.is_residual:
                    raise NotImplementedError("the peer models here are VGG-only")
                if i == 0:  # the analog input: the same current at every step
                    cur = b.conv(xb).unsqueeze(0).expand(steps, -1, -1, -1, -1)
                else:
                    y = b.conv(s.flatten(0, 1))
                    cur = y.view(steps, n, *y.shape[1:])
                fired = if_layer()(cur.contiguous())
                counts += fired.flatten(1).sum(1).numpy()
                s = _delay(fired)
                taps.append(s)
            for h, hd in snn.heads.items():
                g = _delay(if_layer()(taps[hd.tap].mean((3, 4))))
                out = _delay(if_layer()(F.linear(g, hd.weight, hd.bias)))
                heads[h][b0 : b0 + n] = out.permute(1, 0, 2).numpy().astype(np.uint8)
    return {"heads": heads, "backbone_spikes": counts}


def run_snntorch(snn: SpikingNetwork, x: np.ndarray, steps: int, batch: int) -> dict:
    import snntorch

    th = snn.params.threshold
    heads = {h: np.zeros((len(x), steps, snn.spec.num_classes), np.uint8) for h in snn.heads}
    counts = np.zeros(steps)
    with torch.no_grad():
        for b0 in range(0, len(x), batch):
            xb = torch.from_numpy(x[b0 : b0 + batch])
            n = len(xb)
            nb = len(snn.blocks)
            lif = [
                snntorch.Leaky(beta=1.0, threshold=th, reset_mechanism="subtract")
                for _ in range(nb + 2 * len(snn.heads))
            ]
            mem = [None] * len(lif)
            prev = [None] * len(lif)
            cur0 = snn.blocks[0].conv(xb)
            for t in range(steps):
                emitted = list(prev)
                for i, b in enumerate(snn.blocks):
                    if b.is_residual:
                        raise NotImplementedError("the peer models here are VGG-only")
                    if i == 0:
                        cur = cur0
                    else:
                        inp = emitted[i - 1]
                        cur = b.conv(inp if inp is not None else torch.zeros_like(prev[i - 1]))
                    if mem[i] is None:
                        mem[i] = torch.zeros_like(cur)
                    spk, mem[i] = lif[i](cur, mem[i])
                    prev[i] = spk
                    counts[t] += float(spk.sum())
                k = nb
                for h, hd in snn.heads.items():
                    tap = emitted[hd.tap]
                    tap = tap if tap is not None else torch.zeros_like(prev[hd.tap])
                    g_in = tap.mean((2, 3))
                    if mem[k] is None:
                        mem[k] = torch.zeros_like(g_in)
                    gs, mem[k] = lif[k](g_in, mem[k])
                    g_em = emitted[k] if emitted[k] is not None else torch.zeros_like(gs)
                    lin = F.linear(g_em, hd.weight, hd.bias)
                    if mem[k + 1] is None:
                        mem[k + 1] = torch.zeros_like(lin)
                    ls, mem[k + 1] = lif[k + 1](lin, mem[k + 1])
                    out = emitted[k + 1]
                    if out is not None:
                        heads[h][b0 : b0 + n, t] = out.numpy().astype(np.uint8)
                    prev[k], prev[k + 1] = gs, ls
                    k += 2
    return {"heads": heads, "backbone_spikes": counts}


# --------------------------------------------------------------------------- per-layer choice


@njit(cache=True)
def scatter_many(cur, spikes, conn_tab, g, wflat, itab, ev, widx, kval):
    """The numba engine's event scatter of connection g on each row of `spikes`."""
    for r in range(spikes.shape[0]):
        for i in range(cur.size):
            cur[i] = 0
        ct = conn_tab[g]
        K._scatter(cur, spikes[r], 0, wflat, ct, itab, np.float32(1), ev, widx, kval)


def layer_choice(snn: SpikingNetwork, rates: dict[str, float], threads: int) -> list[dict]:
    """Per spiking-input conv: event scatter (numba, one image at a time) vs dense torch conv
    (batch of 250), microseconds per image-step, at the measured input density and at 5-40%."""
    from hwsim.coding import DirectCoding
    from hwsim.engine.backends import NumbaBackend

    plan = build_plan(snn)
    be = NumbaBackend(plan, DirectCoding(), threads=1)
    rng = np.random.default_rng(0)
    torch.set_num_threads(1)
    rows = []
    for g, c in enumerate(plan.conns):
        if c.kind is not ConnKind.CONV or c.src < 0 or c.linear:
            continue
        p_in = int(np.prod(c.in_shape))
        cur = np.zeros(int(np.prod(c.out_shape)), np.float32)
        ev, widx, kval = (
            np.zeros(p_in, np.int64),
            np.zeros(p_in, np.int64),
            np.zeros(p_in, np.float32),
        )
        xt = torch.zeros(250, c.in_shape[2], c.in_shape[0], c.in_shape[1])
        c.torch_forward(xt)
        with Timer() as tm:
            for _ in range(3):
                c.torch_forward(xt)
        dense_us = tm.cpu / 3 / 250 * 1e6
        measured = rates[plan.layers[c.src].name]
        row = {"layer": c.name, "in": c.in_shape, "out": c.out_shape, "density": measured}
        row["dense_us"] = dense_us
        for k, d in enumerate((measured, 0.05, 0.1, 0.2, 0.4)):
            spikes = (rng.random((200, p_in)) < d).astype(np.int8)
            args = (be.conn_tab, g, be.wflat, be.itab, ev, widx, kval)
            scatter_many(cur, spikes[:2], *args)
            with Timer() as tm:
                scatter_many(cur, spikes, *args)
            key = "event_us" if k == 0 else f"event_us@{d:.2f}"
            row[key] = tm.cpu / 200 * 1e6
        ds = [0.05, 0.1, 0.2, 0.4]
        ev = [row[f"event_us@{d:.2f}"] for d in ds]
        row["crossover"] = float(np.interp(dense_us, ev, ds)) if ev[-1] > dense_us else None
        rows.append(row)
    torch.set_num_threads(threads)
    return rows


# --------------------------------------------------------------------------------------- main


def only_heads(snn: SpikingNetwork, keep: tuple[int, ...]) -> SpikingNetwork:
    heads = {h: hd for h, hd in snn.heads.items() if h in keep}
    return SpikingNetwork(snn.spec, snn.blocks, heads, snn.params, snn.scales)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "vgg19.pt"))
    ap.add_argument("--images", type=int, default=250, help="images for the hwsim backends")
    ap.add_argument("--peer-images", type=int, default=32, help="images for sj / snntorch")
    ap.add_argument("--timesteps", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--long", action="store_true", help="T=3000 run for the 1,000-image estimate")
    ap.add_argument("--long-images", type=int, default=100)
    ap.add_argument("--json", default=None, help="write the summary here too")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    ckpt = load_checkpoint(args.model)
    train = load_dataset(ckpt.dataset["name"], "train", seed=ckpt.dataset.get("split_seed", 0))
    test = load_dataset(ckpt.dataset["name"], "test", seed=ckpt.dataset.get("split_seed", 0))
    snn = convert(ckpt, train)
    plan = build_plan(snn)
    steps = args.timesteps
    x = test.x[: args.images]
    summary: dict = {
        "model": args.model,
        "spec": str(ckpt.spec),
        "threads": args.threads,
        "timesteps": steps,
        "load_average": os.getloadavg(),
        "torch_dense_gmacs": torch_dense_rate(args.threads),
    }
    macs_step = float(dense_macs(plan).sum())
    summary["dense_macs_per_image_step"] = macs_step
    engines: dict[str, dict] = {}

    def record(name, n_img, n_steps, tm, layer_spikes=None):
        rate = n_img * n_steps / tm.wall
        row = {"images": n_img, "timesteps": n_steps, "wall_s": tm.wall, "cpu_s": tm.cpu}
        row["image_steps_per_s"] = rate
        row["dense_equiv_gmacs"] = rate * macs_step / 1e9
        if layer_spikes is not None:
            row["synops_per_s"] = rate * synaptic_ops(plan, layer_spikes, n_img)
        engines[name] = row
        print(f"{name:14s} {n_img:5d} img x {n_steps:5d} steps: {tm.wall:8.2f} s wall,"
              f" {rate:10.0f} image-steps/s", flush=True)  # fmt: skip

    # oracle: a few images and steps
    sys.path.insert(0, str(ROOT / "tests"))
    from test_engine import oracle

    with Timer() as tm:
        oracle(snn, x[:2], 8)
    record("oracle", 2, 8, tm)
    simulate(snn, x[:2], 2)  # compile / load the numba cache outside the timing
    with Timer() as tm:
        r_numba = simulate(snn, x, steps, batch_size=250, threads=args.threads)
    record("hwsim-numba", len(x), steps, tm, r_numba.layer_spikes)
    n_torch = min(len(x), 64)
    with Timer() as tm:
        r_torch = simulate(snn, x[:n_torch], steps, batch_size=250, backend="torch")
    record("hwsim-torch", n_torch, steps, tm, r_torch.layer_spikes)
    n_peer = min(args.peer_images, len(x))
    ref = simulate(snn, x[:n_peer], steps, backend="torch")
    ref_numba = simulate(snn, x[:n_peer], steps)
    agree = {}

    def compare(name, heads, backbone):
        n_blocks = len(snn.blocks)
        ref_counts = ref.layer_spikes[:, :n_blocks].sum(1)
        fc_ref = ref.head_spikes[FC_HEAD].astype(np.int64)
        fc = heads[FC_HEAD].astype(np.int64)
        agree[name] = {
            "backbone_spikes": float(backbone.sum()),
            "backbone_rel_diff_vs_torch": float(abs(backbone.sum() - ref_counts.sum()))
            / float(ref_counts.sum()),
            "fc_spikes_differing_vs_torch": int(np.abs(fc - fc_ref).sum()),
            "fc_spikes": int(fc_ref.sum()),
        }

    compare(
        "hwsim-numba",
        ref_numba.head_spikes,
        ref_numba.layer_spikes[:, : len(snn.blocks)].sum(1),
    )
    for name, fn in (("spikingjelly", run_spikingjelly), ("snntorch", run_snntorch)):
        try:
            fn(snn, x[:2], 4, 2)  # warm-up / import
        except ImportError:
            print(f"{name}: not installed, skipped")
            continue
        with Timer() as tm:
            out = fn(snn, x[:n_peer], steps, 16 if name == "spikingjelly" else n_peer)
        record(name, n_peer, steps, tm)
        compare(name, out["heads"], out["backbone_spikes"])
    summary["engines"] = engines
    summary["spike_agreement"] = agree
    peers = [engines[p]["image_steps_per_s"] for p in ("spikingjelly", "snntorch") if p in engines]
    numba_rate = engines["hwsim-numba"]["image_steps_per_s"]
    summary["ratios"] = {
        "numba_vs_torch_backend": numba_rate / engines["hwsim-torch"]["image_steps_per_s"],
        "numba_vs_best_peer": numba_rate / max(peers) if peers else None,
        "numba_dense_equiv_vs_torch_dense_conv": engines["hwsim-numba"]["dense_equiv_gmacs"]
        / summary["torch_dense_gmacs"],
    }
    summary["peak_state_bytes"] = r_numba.peak_state_bytes
    rates = dict(zip(r_numba.layer_names, r_numba.spike_rates(), strict=True))
    summary["layer_choice"] = layer_choice(snn, rates, args.threads)
    if args.long:
        small = only_heads(snn, (FC_HEAD, max(h for h in snn.heads if h != FC_HEAD)))
        xl = test.x[: args.long_images]
        with Timer() as tm:
            r = simulate(small, xl, 3000, batch_size=250, threads=args.threads)
        summary["long"] = {
            "images": len(xl),
            "timesteps": 3000,
            "wall_s": tm.wall,
            "cpu_s": tm.cpu,
            "estimate_1000_images_s": tm.wall * 1000 / len(xl),
            "peak_state_bytes": r.peak_state_bytes,
            "result_bytes_1000_images": sum(v.nbytes for v in r.head_spikes.values())
            * 1000
            // len(xl),
        }
    text = json.dumps(summary, indent=1, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
