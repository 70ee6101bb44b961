"""Reproducible on any CPU: the shipped model's conversion and trace are byte-identical when torch
(ATen, oneDNN, MKL) and numba are forced down to narrower instruction sets (AVX2, SSE4) than the
machine's.

Each run is a fresh subprocess, as a new user's run on a narrower CPU would be: it converts
models/vgg19.pt with the default conversion, simulates test images with per-image crossbar
activity (what `hwsim run` traces) and writes the trace; the runs must agree on every byte of
the trace files, on the converted network's fingerprint and lambdas, and on the engine's analog
input current. A forced run must also report the capability it was forced to (so the setting
took effect). The numba settings recompile every kernel (minutes on a shared 2-core machine):
that case is marked slow.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "vgg19.pt"

TORCH_ISA = {
    # torch's own kernels (ATen), its conv library (oneDNN) and its BLAS (MKL)
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "DNNL_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
    "sse4": {
        "ATEN_CPU_CAPABILITY": "default",
        "DNNL_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    },
}
NUMBA_CPU = {"avx2": "haswell", "sse4": "nehalem"}
ATEN_REPORTS = {"avx2": "AVX2", "sse4": "DEFAULT"}
FORCING = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", *TORCH_ISA["avx2"])

RUN = r"""
import hashlib, json, sys
from pathlib import Path
import numpy as np, torch
from hwsim.engine import ActivitySpec, simulate
from hwsim.engine.backends import analog_current
from hwsim.engine.plan import build_plan
from hwsim.engine.trace import Trace, TraceKey, file_sha256, indices_sha256, write_trace
from hwsim.model.convert import convert
from hwsim.model.data import load_dataset
from hwsim.model.nets import load_checkpoint

model, out, images, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ckpt = load_checkpoint(model)
ds = ckpt.dataset
seed = int(ds.get("split_seed", 0))
train = load_dataset(ds["name"], "train", seed=seed, validation=ckpt.validation_images)
test = load_dataset(ds["name"], "test", seed=seed).take(images)
snn = convert(ckpt, train)
analog = analog_current(build_plan(snn).conns[0], test.x)
activity = ActivitySpec(rows_per_crossbar=64, cols_per_crossbar=64, per_image=True)
sim = simulate(snn, test.x, steps, activity=activity, image_ids=test.indices)
key = TraceKey(
    checkpoint_sha256=file_sha256(model), snn_fingerprint=snn.fingerprint(),
    conversion={"percentile": snn.params.percentile}, coding={"name": "DirectCoding"},
    timesteps=steps, seed=0, dataset=test.name, split=test.split,
    image_indices_sha256=indices_sha256(test.indices), images=len(test),
    heads=tuple(snn.heads), engine={"backend": "numba"},
)
write_trace(Trace(key, test.y, test.indices, sim), out / "trace")
print(json.dumps({
    "aten": torch.backends.cpu.get_cpu_capability(),
    "fingerprint": snn.fingerprint(),
    "scales": [float(s).hex() for s in snn.scales],
    "analog": hashlib.sha256(analog.tobytes()).hexdigest(),
    "spikes": int(sum(s.sum() for s in sim.head_spikes.values())),
}))
"""


def _run(out: Path, forced: dict[str, str], images: int = 64, steps: int = 60) -> dict:
    """The run's summary (stdout JSON) and trace folder out/trace, in a fresh process with the
    `forced` settings and none of the machine's own."""
    env = {k: v for k, v in os.environ.items() if k not in FORCING}
    env.update(forced)
    out.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(MODEL), str(out), str(images), str(steps)],
        env=env,
        cwd=out,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _same_trace(a: Path, b: Path) -> None:
    for name in ("meta.json", "arrays.npz"):
        assert (a / "trace" / name).read_bytes() == (b / "trace" / name).read_bytes(), name


def _check(tmp_path: Path, forced_runs: dict[str, dict[str, str]]) -> None:
    native = _run(tmp_path / "native", {})
    assert native["spikes"] > 0
    for isa, forced in forced_runs.items():
        got = _run(tmp_path / isa, forced)
        if torch.backends.cpu.get_cpu_capability() != "DEFAULT":  # a CPU with AVX2 at least
            assert got["aten"] == ATEN_REPORTS[isa]
        for field in ("fingerprint", "scales", "analog", "spikes"):
            assert got[field] == native[field], (isa, field)
        _same_trace(tmp_path / "native", tmp_path / isa)


def test_torch_forced_to_narrower_instruction_sets_gives_the_same_trace(tmp_path):
    """torch's kernels narrowed (numba's kernels as compiled for this CPU): the conversion and
    the engine's analog current use no torch kernel whose sums follow the instruction set."""
    _check(tmp_path, TORCH_ISA)


@pytest.mark.slow
def test_torch_and_numba_forced_to_narrower_instruction_sets_give_the_same_trace(tmp_path):
    """torch and numba narrowed together, as on a CPU without AVX-512 (or AVX2): numba's
    kernels, compiled for that CPU into their own cache, sum in the same order."""
    runs = {
        isa: {
            **TORCH_ISA[isa],
            "NUMBA_CPU_NAME": NUMBA_CPU[isa],
            "NUMBA_CACHE_DIR": str(tmp_path / f"numba-{isa}"),
        }
        for isa in TORCH_ISA
    }
    _check(tmp_path, runs)
