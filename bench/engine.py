"""Benchmark of the IF engine against peer simulators, side by side (bench/README.md).

    python bench/engine.py [--rounds 3] [--threads 1 2] [--json engine.json]

Two networks: the shipped model (`models/vgg19.pt`: VGG19 at width 1/8, MNIST 28x28, 16 IC
heads + FC) on its first 64 test images at T = 256, and a full-width VGG19 at 32x32 input
(randomly initialised, BN statistics and conversion on random normal "CIFAR-shaped" images,
the same 17 heads) on 4 such images at T = 64; direct coding. Engines: hwsim's numba backend
(event-driven) and torch backend (dense), spikingjelly (IFNode, soft reset) multi-step
(batches of 16 images, 4 on vgg19-32, all T at once) and single-step (a step loop over the
whole batch), and snntorch (Leaky, beta = 1, subtract reset, step loop over the whole batch),
all given the same one-step delay per layer and layer 0's constant current computed once, so
their spikes can be compared.

At 1 and 2 threads (`torch.set_num_threads` and the numba backend's `threads`), engines run in
interleaved rounds (every engine once per round, the median kept), each round after waiting
for a quiet machine (1-minute load average below --quiet, at most --wait seconds); the load
is recorded before and after every timed run. Reported per network and thread count:
microseconds per image-step, dense-equivalent GMAC/s (dense MACs of one image-step / time),
the ratio to the best peer (wall time; also the process's CPU time and its ratio, the fairer
measure at 1 thread on a loaded machine, where a run waits for a core), the share of the
synaptic-work limit reached (synaptic adds per image-step at 16 floats per cycle and
--clock-ghz, over the measured time), the rate of synaptic adds reached and the one 10x the
best peer would need, the machine's dense conv rate
(GMAC/s, torch/oneDNN), and spike identity
against hwsim numba on float weights and on a dyadic variant (weights on 2^-8, inputs on
2^-6: every summation order is exact there, tests/test_engine.py). Per-formulation runs of
the numba engine (every conv forced to one formulation) show what the per-layer choice buys.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from numba import njit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.engine import SimResult, simulate  # noqa: E402
from hwsim.engine import _kernels as K  # noqa: E402
from hwsim.engine import _llvm as L  # noqa: E402
from hwsim.engine.backends import NumbaBackend  # noqa: E402
from hwsim.engine.plan import build_plan  # noqa: E402
from hwsim.isa import ATEN_REPORTS, Isa, environment  # noqa: E402
from hwsim.model.coding import DirectCoding  # noqa: E402
from hwsim.model.convert import ConversionParams, SpikingNetwork, Weights, convert  # noqa: E402
from hwsim.model.data import ImageSet, load_dataset  # noqa: E402
from hwsim.model.graph import LayerKind  # noqa: E402
from hwsim.model.nets import Checkpoint, HeadedNet, load_checkpoint  # noqa: E402
from hwsim.model.netspec import NetSpec  # noqa: E402

PEERS = ("spikingjelly", "spikingjelly-1step", "snntorch")


# ------------------------------------------------------------------------------- networks


def shipped(model: str, images: int) -> tuple[SpikingNetwork, np.ndarray]:
    ckpt = load_checkpoint(model)
    seed = ckpt.dataset.get("split_seed", 0)
    train = load_dataset(ckpt.dataset["name"], "train", seed=seed)
    test = load_dataset(ckpt.dataset["name"], "test", seed=seed)
    return convert(ckpt, train), np.ascontiguousarray(test.x[:images])


def full_width_vgg19(images: int, seed: int = 0) -> tuple[SpikingNetwork, np.ndarray]:
    """VGG19 at width 1, 3x32x32 input, 16 ICs + FC: random weights, BN statistics from 4
    batches of random normal images (train mode), converted on 128 such images."""
    torch.manual_seed(seed)
    spec = NetSpec("vgg19", 1.0, (3, 32, 32), 10, tuple(range(16)))
    net = HeadedNet(spec)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((128, 3, 32, 32)).astype(np.float32)
    net.train()
    with torch.no_grad():
        for i in range(4):
            net(torch.from_numpy(x[32 * i : 32 * (i + 1)]))
    ckpt = Checkpoint(spec, net.state_dict(), {"name": "random"}, {})
    calib = ImageSet(x, np.zeros(len(x), np.int64), "random", "train", 10, np.arange(len(x)))
    snn = convert(ckpt, calib, ConversionParams(max_images=128))
    return snn, rng.standard_normal((images, 3, 32, 32)).astype(np.float32)


def dyadic(snn: SpikingNetwork, x: np.ndarray) -> tuple[SpikingNetwork, np.ndarray]:
    """Weights and biases rounded to multiples of 2^-8, inputs to 2^-6 (exact sums)."""

    def q(t: torch.Tensor, unit: float) -> torch.Tensor:
        return (torch.round(t.double() / unit) * unit).float()

    net = snn.map_weights(lambda _, w: Weights(q(w.weight, 2.0**-8), q(w.bias, 2.0**-8)))
    return net, (np.round(x * 64) / 64).astype(np.float32)


def dense_macs(snn: SpikingNetwork) -> int:
    """Dense MACs of one image and timestep, every layer (a GAP: one add per input)."""
    return sum(layer.macs for layer in snn.graph.layers)


def synaptic_adds(snn: SpikingNetwork, res: SimResult) -> float:
    """Weight adds per image-step the spikes need: each connection's input spikes times its
    fan-out (dense MACs per input neuron); the analog input layer counts once per image (its
    current is computed once), GAP layers not at all (per-channel counts)."""
    rate = dict(zip(res.layer_names, res.spike_rates(), strict=True))
    total = 0.0
    for layer in snn.graph.layers:
        if not layer.inputs or layer.kind is LayerKind.GAP:
            continue
        src = snn.graph.layer(layer.inputs[0]).population
        total += rate[src] * layer.macs
    return total


# ---------------------------------------------------------------------------------- peers


def _delay(s: torch.Tensor) -> torch.Tensor:
    """(T, B, ...) one step later along T: a layer emits at t what it fired at t-1."""
    return torch.cat([torch.zeros_like(s[:1]), s[:-1]])


def _forward_all(snn: SpikingNetwork, layer, x: torch.Tensor) -> torch.Tensor:
    """The layer's dense op on (T, B, ...) input."""
    y = snn.layer_forward(layer, x.flatten(0, 1))
    return y.view(x.shape[0], x.shape[1], *y.shape[1:])


def run_spikingjelly(snn: SpikingNetwork, x: np.ndarray, steps: int, batch: int) -> dict:
    """Multi-step spikingjelly IFNodes, population by population over all T at once."""
    from spikingjelly.activation_based import neuron

    graph = snn.graph
    pops = graph.populations()
    names = [p.name for p in pops]
    counts = np.zeros((steps, len(pops)), np.int64)
    heads = {h: np.zeros((len(x), steps, graph.classes), np.uint8) for h in graph.heads}
    out_pop = {graph.head_output(h).population: h for h in graph.heads}
    with torch.no_grad():
        for b0 in range(0, len(x), batch):
            xb = torch.from_numpy(x[b0 : b0 + batch])
            emitted: dict[str, torch.Tensor] = {}
            for j, p in enumerate(pops):
                cur = None
                for name in p.layers:
                    layer = graph.layer(name)
                    if not layer.inputs:  # analog input: the same current at every step
                        y = snn.layer_forward(layer, xb).unsqueeze(0).expand(steps, *[-1] * 4)
                    else:
                        y = _forward_all(
                            snn, layer, emitted[graph.layer(layer.inputs[0]).population]
                        )
                    cur = y if cur is None else cur + y
                node = neuron.IFNode(v_threshold=snn.params.threshold, v_reset=None, step_mode="m")
                fired = node(cur.contiguous())
                counts[:, j] += fired.flatten(1).sum(1).long().numpy()
                emitted[names[j]] = _delay(fired)
                if p.name in out_pop:
                    heads[out_pop[p.name]][b0 : b0 + len(xb)] = (
                        emitted[p.name].permute(1, 0, 2).numpy().astype(np.uint8)
                    )
    return {"layer_spikes": counts, "head_spikes": heads}


def run_spikingjelly_single(snn: SpikingNetwork, x: np.ndarray, steps: int, batch: int) -> dict:
    """Single-step spikingjelly IFNodes, one timestep at a time over every population (no
    (T, B, ...) tensors: faster than multi-step on these networks, so the best peer)."""
    from spikingjelly.activation_based import neuron

    def populations(n: int) -> Callable[[int, torch.Tensor], torch.Tensor]:
        th = snn.params.threshold
        nodes = [neuron.IFNode(v_threshold=th, v_reset=None, step_mode="s") for _ in range(n)]
        return lambda j, cur: nodes[j](cur)

    return step_by_step(snn, x, steps, batch, populations)


def run_snntorch(snn: SpikingNetwork, x: np.ndarray, steps: int, batch: int) -> dict:
    """snntorch Leaky neurons (beta = 1, subtract reset), one timestep at a time."""
    import snntorch

    def populations(n: int) -> Callable[[int, torch.Tensor], torch.Tensor]:
        th = snn.params.threshold
        lif = [snntorch.Leaky(beta=1.0, threshold=th, reset_mechanism="subtract") for _ in range(n)]
        mem: list[torch.Tensor | None] = [None] * n

        def fire(j: int, cur: torch.Tensor) -> torch.Tensor:
            if mem[j] is None:
                mem[j] = torch.zeros_like(cur)
            spk, mem[j] = lif[j](cur, mem[j])
            return spk

        return fire

    return step_by_step(snn, x, steps, batch, populations)


def step_by_step(
    snn: SpikingNetwork,
    x: np.ndarray,
    steps: int,
    batch: int,
    populations: Callable[[int], Callable[[int, torch.Tensor], torch.Tensor]],
) -> dict:
    """A peer run one timestep at a time over every population, in batches of `batch` images:
    `populations(P)` makes a batch's P populations of the peer's neurons, called as fire(j,
    current) -> spikes; a first layer's constant current is computed once per batch."""
    graph = snn.graph
    pops = graph.populations()
    counts = np.zeros((steps, len(pops)), np.int64)
    heads = {h: np.zeros((len(x), steps, graph.classes), np.uint8) for h in graph.heads}
    out_pop = {graph.head_output(h).population: h for h in graph.heads}
    with torch.no_grad():
        for b0 in range(0, len(x), batch):
            xb = torch.from_numpy(x[b0 : b0 + batch])
            fire = populations(len(pops))
            const = {
                layer.name: snn.layer_forward(layer, xb)
                for layer in graph.layers
                if not layer.inputs
            }
            fired: dict[str, torch.Tensor] = {}
            for t in range(steps):
                emitted = dict(fired)
                for j, p in enumerate(pops):
                    spk = fire(j, population_current(snn, p, const, emitted, fired))
                    fired[p.name] = spk
                    counts[t, j] += int(spk.sum())
                    if p.name in out_pop and p.name in emitted:
                        heads[out_pop[p.name]][b0 : b0 + len(xb), t] = emitted[p.name].numpy() != 0
    return {"layer_spikes": counts, "head_spikes": heads}


def population_current(
    snn: SpikingNetwork,
    pop,
    const: dict[str, torch.Tensor],
    emitted: dict[str, torch.Tensor],
    fired: dict[str, torch.Tensor],
) -> torch.Tensor:
    """A peer's input current to population `pop` at one step: the sum of its layers' dense
    ops on the spikes their sources emitted (fired the step before; zeros before the first),
    a first layer's constant current as given in `const`."""
    graph = snn.graph
    cur = None
    for name in pop.layers:
        layer = graph.layer(name)
        if not layer.inputs:
            y = const[name]
        else:
            src = graph.layer(layer.inputs[0]).population
            s = emitted.get(src)
            if s is None:
                s = torch.zeros_like(fired[src])
            y = snn.layer_forward(layer, s)
        cur = y if cur is None else cur + y
    assert cur is not None
    return cur


def run_hwsim(backend: str, threads: int) -> Callable[[SpikingNetwork, np.ndarray, int], dict]:
    def run(snn: SpikingNetwork, x: np.ndarray, steps: int, batch: int = 250) -> dict:
        r = simulate(snn, x, steps, batch_size=batch, backend=backend, threads=threads)
        return {"layer_spikes": r.layer_spikes, "head_spikes": r.head_spikes, "result": r}

    return run


# ------------------------------------------------------------------------------ measuring


def narrowed(isa: str) -> dict:
    """Re-execute this script under `isa`'s environment (hwsim.isa) unless it is in force;
    return what numba compiles for and what torch dispatches to, checked against `isa`."""
    if isa != "host":
        env = environment(Isa(isa))
        if any(os.environ.get(k) != v for k, v in env.items()):
            os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **env})
    import numba

    got = {
        "isa": isa,
        "numba_cpu": numba.config.CPU_NAME or "host",
        "numba_avx512": "+avx512f" in L.target_features().split(","),
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if isa != "host" and (got["torch_capability"] != ATEN_REPORTS[Isa(isa)] or got["numba_avx512"]):
        raise SystemExit(f"--isa {isa} did not take effect: {got}")
    return got


def machine() -> dict:
    """The CPU model, CPUs and AVX-512 support (from /proc/cpuinfo, Linux)."""
    info = {"cpus": os.cpu_count(), "model": "unknown", "avx512f": False}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        if line.startswith("model name"):
            info["model"] = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            info["avx512f"] = "avx512f" in line.split()
    return info


def dense_rate(threads: int) -> float:
    """GMAC/s of a large dense float32 conv on this machine (torch/oneDNN, 3x3, 256 -> 256
    channels, 16x16, batch 16): the rate the peers' dense convs can reach at most."""
    torch.set_num_threads(threads)
    x, w = torch.randn(16, 256, 16, 16), torch.randn(256, 256, 3, 3)
    with torch.no_grad():
        torch.nn.functional.conv2d(x, w, padding=1)
        t0 = time.perf_counter()
        for _ in range(5):
            torch.nn.functional.conv2d(x, w, padding=1)
        dt = time.perf_counter() - t0
    return 5 * 16 * 256 * 256 * 9 * 16 * 16 / dt / 1e9


@njit(cache=True)
def _row_sums(cur, rows, idx, nout, per):
    for o in range(nout):
        K._row_sum8(cur, (o % 64) * 64, rows, idx[o * per : (o + 1) * per], per, np.float32(1), 0)


def row_sum_rate(slice_rows: int, density: float = 0.11, outputs: int = 20000) -> float:
    """G adds/s of the engine's own row sum (`_row_sum8`: 64 output channels in registers) over
    rows of 64 floats picked at random, sorted per output, `density` of 4,608 (a 3x3x512 conv)
    per output, from a slice of `slice_rows` rows (4,608: 1.2 MB, in L2; 128: 32 KB, in L1)."""
    rng = np.random.default_rng(0)
    rows = K.aligned(slice_rows * 64, np.float32)  # 64-byte aligned, as the engine's rows
    rows[:] = rng.standard_normal(slice_rows * 64)
    per = int(density * 4608)
    idx = np.sort(rng.integers(0, slice_rows, (outputs, per)), axis=1).ravel() * 64
    cur = K.aligned(64 * 64, np.float32)
    _row_sums(cur, rows, idx, 10, per)
    t0 = time.perf_counter()
    _row_sums(cur, rows, idx, outputs, per)
    return outputs * per * 64 / (time.perf_counter() - t0) / 1e9


def wait_quiet(limit: float, wait_s: float) -> float:
    """Wait (at most wait_s) until the 1-minute load average is below `limit`; returns it."""
    t0 = time.time()
    while os.getloadavg()[0] >= limit and time.time() - t0 < wait_s:
        time.sleep(5)
    return os.getloadavg()[0]


def identity(ref: dict, out: dict) -> dict:
    """Spikes of `out` against `ref`: layer counts per step and head spikes."""
    a, b = ref["layer_spikes"], out["layer_spikes"]
    heads_diff = sum(
        int(np.abs(ref["head_spikes"][h].astype(np.int64) - out["head_spikes"][h]).sum())
        for h in ref["head_spikes"]
    )
    return {
        "identical": bool(np.array_equal(a, b) and heads_diff == 0),
        "layer_count_diff": int(np.abs(a - b).sum()),
        "spikes": int(a.sum()),
        "head_spikes_differing": heads_diff,
    }


def bench_network(name: str, snn, x, steps: int, args, peer_batch: int) -> dict:
    macs = dense_macs(snn)
    engines = {
        "hwsim-numba": None,
        "hwsim-torch": None,
        "spikingjelly": run_spikingjelly,
        "spikingjelly-1step": run_spikingjelly_single,
        "snntorch": run_snntorch,
    }
    for peer in PEERS:
        try:
            __import__("snntorch" if peer == "snntorch" else "spikingjelly.activation_based")
        except ImportError:
            print(f"{peer}: not installed, skipped", flush=True)
            engines.pop(peer)
    out: dict = {"dense_macs_per_image_step": macs, "images": len(x), "timesteps": steps}
    dx_snn, dx = dyadic(snn, x[:2])
    for threads in args.threads:
        torch.set_num_threads(threads)
        fns = {
            e: (fn if fn is not None else run_hwsim(e.split("-")[1], threads))
            for e, fn in engines.items()
        }
        for fn in fns.values():  # warm-up: compile, import, allocate
            fn(snn, x[:1], 2, 1)
        times: dict[str, list[float]] = {e: [] for e in fns}
        cpu: dict[str, list[float]] = {e: [] for e in fns}
        loads: dict[str, list[float]] = {e: [] for e in fns}
        results: dict[str, dict] = {}
        for _ in range(args.rounds):
            for e, fn in fns.items():
                wait_quiet(args.quiet, args.wait)
                load0 = os.getloadavg()[0]
                batch = peer_batch if e == "spikingjelly" else 250  # multi-step: (T, B, ...)
                t0, c0 = time.perf_counter(), time.process_time()
                results[e] = fn(snn, x, steps, batch)
                times[e].append(time.perf_counter() - t0)
                cpu[e].append(time.process_time() - c0)
                loads[e] += [load0, os.getloadavg()[0]]
        rows = {}
        for e in fns:
            us = statistics.median(times[e]) / (len(x) * steps) * 1e6
            rows[e] = {
                "us_per_image_step": us,
                "cpu_us_per_image_step": statistics.median(cpu[e]) / (len(x) * steps) * 1e6,
                "times_s": times[e],
                "cpu_s": cpu[e],
                "dense_equiv_gmacs": macs / us / 1e3,
                "load_1min": [min(loads[e]), max(loads[e])],
            }
        best = min((rows[p]["us_per_image_step"] for p in PEERS if p in rows), default=None)
        best_cpu = min((rows[p]["cpu_us_per_image_step"] for p in PEERS if p in rows), default=0)
        adds = synaptic_adds(snn, results["hwsim-numba"]["result"])
        limit_us = adds / (16 * args.clock_ghz * 1e3 * threads)  # 16 floats/cycle/core
        for e, row in rows.items():
            row["ratio_to_best_peer"] = best / row["us_per_image_step"] if best else None
            row["cpu_ratio_to_best_peer"] = best_cpu / row["cpu_us_per_image_step"]
            row["float_spikes_vs_numba"] = identity(results["hwsim-numba"], results[e])
        # dyadic variant: a short run, every engine against hwsim numba (== the oracle)
        ref = fns["hwsim-numba"](dx_snn, dx, min(steps, 64), 250)
        for e, fn in fns.items():
            got = fn(dx_snn, dx, min(steps, 64), 2)
            rows[e]["dyadic_spikes_vs_numba"] = identity(ref, got)
        numba = rows["hwsim-numba"]
        numba["synaptic_adds_per_image_step"] = adds
        numba["synaptic_limit_us"] = limit_us
        numba["share_of_synaptic_limit"] = limit_us / numba["us_per_image_step"]
        numba["synaptic_gadds_per_s"] = adds / numba["us_per_image_step"] / 1e3
        numba["dense_gmacs_of_machine"] = dense_rate(threads)
        if best:  # what 10x the best peer asks for, against the synaptic-work limit
            numba["us_for_10x"] = best / 10
            numba["gadds_per_s_for_10x"] = adds / (best / 10) / 1e3
            numba["10x_within_synaptic_limit"] = bool(limit_us <= best / 10)
        out[f"threads={threads}"] = rows
        for e, row in rows.items():
            ratio = row["ratio_to_best_peer"]
            print(
                f"{name:9s} {threads}T {e:13s} {row['us_per_image_step']:10.1f} us/img-step"
                f" {row['dense_equiv_gmacs']:7.1f} GMAC/s"
                f" x{ratio if ratio else float('nan'):5.2f} vs best peer"
                f" (CPU time {row['cpu_us_per_image_step']:.1f} us,"
                f" x{row['cpu_ratio_to_best_peer']:.2f})"
                f" float identical={row['float_spikes_vs_numba']['identical']}"
                f" dyadic identical={row['dyadic_spikes_vs_numba']['identical']}"
                f" load {row['load_1min']}",
                flush=True,
            )
        print(
            f"{name:9s} {threads}T synaptic adds {adds / 1e6:.3f} M/img-step, limit"
            f" {limit_us:.1f} us, numba at {numba['share_of_synaptic_limit']:.1%} of it,"
            f" {numba['synaptic_gadds_per_s']:.1f} G adds/s; machine dense"
            f" {numba['dense_gmacs_of_machine']:.1f} GMAC/s",
            flush=True,
        )
    return out


@contextmanager
def thresholds(attrs: dict[str, int]) -> Iterator[None]:
    """NumbaBackend with the formulation thresholds `attrs` (class attributes) inside."""
    saved = {k: getattr(NumbaBackend, k) for k in attrs}
    for k, v in attrs.items():
        setattr(NumbaBackend, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(NumbaBackend, k, v)


def formulations(snn, x, steps: int, threads: int) -> dict:
    """The numba engine with every conv forced to one formulation (NumbaBackend.mode's
    thresholds), against the default per-layer choice: microseconds per image-step."""
    configs = {
        "default": {},
        "push only": {"table_channels": 0, "pull_channels": 1 << 30},
        "table where it fits, else push": {"table_channels": 1 << 30, "pull_channels": 1 << 30},
        "pull from 64 output channels": {"pull_channels": 64},
        "pull everywhere": {"table_channels": 0, "pull_channels": 1},
    }
    out = {}
    for name, attrs in configs.items():
        with thresholds(attrs):
            simulate(snn, x[:1], 2, threads=threads)
            t0 = time.perf_counter()
            simulate(snn, x, steps, threads=threads)
            out[name] = (time.perf_counter() - t0) / (len(x) * steps) * 1e6
        print(f"  formulation {name:32s} {out[name]:10.1f} us/img-step", flush=True)
    return out


FORMS = {  # NumbaBackend attributes that give every spiking conv one formulation
    "push": {"table_channels": 0, "pull_channels": 1 << 30},
    "table": {"table_channels": 1 << 30, "pull_channels": 1 << 30},  # where tables fit 1 MiB
    "pull": {"table_channels": 0, "pull_channels": 1},
}


@njit(error_model="numpy")
def _conv_alone(snaps, g, conn_tab, rflat, itab, reps, cur, max_in, max_rows):
    """Connection g's kernel alone on spike snapshots (M, B, N), `reps` times over them, into
    the currents `cur` (B, max_n), 64-byte aligned as the engine's."""
    ct = conn_tab[g]
    nb = snaps.shape[1]
    size = max(max_rows, max_in) + 8
    ev, idx, kv = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.float32)
    pcnt, plist = np.empty(max_in, np.int64), np.empty(max_in, np.int64)
    pm = np.zeros(max_in + 1, np.uint8)
    starts, outs = np.empty(max_rows + 1, np.int64), np.empty(max_rows, np.int64)
    so, one = ct[K.SRC_OFF], np.float32(1.0)
    for _ in range(reps):
        for m in range(snaps.shape[0]):
            if ct[K.MODE] == K.PULL:
                K._event_conv(cur, 0, nb, snaps[m], so, rflat, ct, one, pcnt, plist, idx, starts,
                              outs)  # fmt: skip
                continue
            for b in range(nb):
                if ct[K.MODE] == K.PUSH:
                    K._scatter(cur[b], snaps[m, b], so, rflat, ct, itab, one, ev, idx, kv)
                else:
                    K._table_conv(cur[b], snaps[m, b], so, rflat, ct, itab, one, pm)
    return cur[0, 0]


def per_conv(snn, x: np.ndarray, steps: int, reps: int = 3) -> dict:
    """Microseconds per image-step of each spiking conv alone (1 thread, best of 3), in each
    formulation it can take, on the spikes the engine fired on `x` (every 8th step's spike
    buffers), and the default choice: what NumbaBackend.mode's thresholds rest on."""
    plan = build_plan(snn)
    default = NumbaBackend(plan, DirectCoding(), threads=1)
    runner = default.start(x, np.arange(len(x)), steps)
    snaps = []
    for t0 in range(0, steps, 8):
        runner.advance(t0, min(steps, t0 + 8))
        snaps.append(runner.s[(min(steps, t0 + 8) - 1) % runner.s.shape[0]].copy())
    spikes = np.stack(snaps)
    backends = {}
    for form, attrs in FORMS.items():
        with thresholds(attrs):
            backends[form] = NumbaBackend(plan, DirectCoding(), threads=1)
    names = {K.PUSH: "push", K.TABLE: "table", K.PULL: "pull"}
    out = {}
    for g, c in enumerate(plan.conns):
        if c.src < 0 or not c.weight.size or c.linear:
            continue
        src = plan.layers[c.src]
        off = int(default.offs[c.src])
        density = float(spikes[:, :, off : off + src.neurons].astype(np.float64).mean())
        row = {"in": list(c.in_shape), "out": list(c.out_shape), "density": density}
        row["default"] = names[default.modes[g]]
        for form, be in backends.items():
            if names.get(be.modes[g]) != form:
                continue  # this conv cannot take that formulation (a table over 1 MiB)
            args = (spikes, g, be.conn_tab, be.rflat, be.itab)
            cur = K.aligned((spikes.shape[1], K.vec_ceil(be.max_n)), np.float32)
            sizes = (cur, be.max_in, be.max_rows)
            _conv_alone(*args, 1, *sizes)
            best = min(_timed(_conv_alone, *args, reps, *sizes) for _ in range(3))
            row[form] = best / (reps * spikes.shape[0] * spikes.shape[1]) * 1e6
        out[c.name] = row
        forms = "  ".join(f"{f} {row[f]:8.2f}" for f in FORMS if f in row)
        print(f"  {c.name:8s} {c.in_shape}->{c.out_shape} density {density:.3f}"
              f" default {row['default']:5s} {forms} us/img-step", flush=True)  # fmt: skip
    return out


def _timed(fn: Callable[..., object], *args: object) -> float:
    """Seconds fn(*args) takes."""
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "vgg19.pt"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quiet", type=float, default=1.0, help="1-minute load to wait for")
    ap.add_argument("--wait", type=float, default=120.0, help="longest wait per run, s")
    ap.add_argument("--clock-ghz", type=float, default=2.6)
    ap.add_argument("--skip-wide", action="store_true")
    ap.add_argument("--json", default=None, help="write the summary here too")
    ap.add_argument(
        "--isa",
        choices=["host", *(i.value for i in Isa)],
        default="host",
        help="build numba's kernels and dispatch torch's for this instruction set (hwsim.isa;"
        " the script re-executes itself under it; numba compiles into its own cache)",
    )
    args = ap.parse_args()
    summary: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "isa": narrowed(args.isa),
        "row_sum_gadds_per_s": {"L2 slice": row_sum_rate(4608), "L1 slice": row_sum_rate(128)},
        "load_at_start": os.getloadavg(),
        "args": vars(args),
    }
    snn, x = shipped(args.model, 64)
    summary["shipped"] = bench_network("shipped", snn, x, 256, args, peer_batch=16)
    summary["shipped"]["formulations_1T"] = formulations(snn, x[:16], 128, 1)
    summary["shipped"]["per_conv_1T"] = per_conv(snn, x[:16], 64)
    if not args.skip_wide:
        snn, x = full_width_vgg19(4)
        summary["vgg19-32"] = bench_network("vgg19-32", snn, x, 64, args, peer_batch=4)
        summary["vgg19-32"]["formulations_1T"] = formulations(snn, x[:2], 32, 1)
        x16 = np.random.default_rng(1).standard_normal((16, 3, 32, 32)).astype(np.float32)
        summary["vgg19-32"]["per_conv_1T"] = per_conv(snn, x16, 16, reps=1)  # pull's 16-groups
    summary["load_at_end"] = os.getloadavg()
    text = json.dumps(summary, indent=1, default=float)
    if args.json:
        Path(args.json).write_text(text)
    print(text[:2000])


if __name__ == "__main__":
    main()
