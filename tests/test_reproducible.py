"""Reproducible on any CPU: the shipped model's conversion and trace are byte-identical when torch
(ATen, oneDNN, MKL) and numba are forced down to narrower instruction sets (AVX2, SSE4) than the
machine's.

Each run is a fresh subprocess, as a new user's run on a narrower CPU would be: it converts
models/vgg19.pt with the default conversion, simulates test images with per-image crossbar
activity (what `hwsim run` traces) and writes the trace; the runs must agree on every byte of
the trace files, on the converted network's fingerprint and lambdas, and on the engine's analog
input current. The settings must bite: a forced run reports the capability it was forced to,
and torch's float32 ANN (what the conversion used to run, a control) changes under some forced
setting. The numba settings recompile every kernel (minutes on a shared 2-core machine):
that case is marked slow.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hwsim.isa import ATEN_REPORTS, TORCH_ISA, Isa, environment

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "vgg19.pt"

FORCING = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", *TORCH_ISA[Isa.AVX2])

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
with torch.no_grad():  # the control: torch's float32 ANN, which the conversion used to run
    blocks = ckpt.build().blocks
    ann = blocks[1](blocks[0](torch.from_numpy(test.x)))
print(json.dumps({
    "control": hashlib.sha256(ann.numpy().tobytes()).hexdigest(),
    "aten": torch.backends.cpu.get_cpu_capability(),
    "fingerprint": snn.fingerprint(),
    "scales": [float(s).hex() for s in snn.scales],
    "analog": hashlib.sha256(analog.tobytes()).hexdigest(),
    "spikes": int(sum(s.sum() for s in sim.head_spikes.values())),
}))
"""


def _start(out: Path, forced: dict[str, str], images: int = 64, steps: int = 60):
    """A fresh process with the `forced` settings and none of the machine's own (one thread:
    the runs go side by side) that writes its trace to out/trace and prints its summary."""
    env = {k: v for k, v in os.environ.items() if k not in FORCING}
    env.update(forced, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    out.mkdir(parents=True)
    args = [sys.executable, "-c", RUN, str(MODEL), str(out), str(images), str(steps)]
    return subprocess.Popen(args, env=env, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _summary(proc: subprocess.Popen) -> dict:
    stdout, stderr = proc.communicate(timeout=1800)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    return json.loads(stdout.decode().strip().splitlines()[-1])


def _check(tmp_path: Path, forced_runs: dict[str, dict[str, str]]) -> None:
    runs = {"native": _start(tmp_path / "native", {})}
    runs.update({isa: _start(tmp_path / isa, forced) for isa, forced in forced_runs.items()})
    got = {name: _summary(proc) for name, proc in runs.items()}
    native = got.pop("native")
    assert native["spikes"] > 0
    assert any(run["control"] != native["control"] for run in got.values())
    for isa, run in got.items():
        if torch.backends.cpu.get_cpu_capability() != "DEFAULT":  # a CPU with AVX2 at least
            assert run["aten"] == ATEN_REPORTS[isa]
        for field in ("fingerprint", "scales", "analog", "spikes"):
            assert run[field] == native[field], (isa, field)
        for name in ("meta.json", "arrays.npz", "per_image.npy"):
            ours, theirs = (tmp_path / run_name / "trace" / name for run_name in ("native", isa))
            assert ours.read_bytes() == theirs.read_bytes(), (isa, name)


def test_torch_forced_to_narrower_instruction_sets_gives_the_same_trace(tmp_path):
    """torch's kernels narrowed (numba's kernels as compiled for this CPU): the conversion and
    the engine's analog current use no torch kernel whose sums follow the instruction set."""
    _check(tmp_path, TORCH_ISA)


@pytest.mark.slow
def test_torch_and_numba_forced_to_narrower_instruction_sets_give_the_same_trace(tmp_path):
    """torch and numba narrowed together, as on a CPU without AVX-512 (or AVX2): numba's
    kernels, compiled for that CPU into their own cache, sum in the same order."""
    runs = {
        isa.value: {**environment(isa), "NUMBA_CACHE_DIR": str(tmp_path / f"numba-{isa.value}")}
        for isa in Isa
    }
    _check(tmp_path, runs)
