"""Spike traces on disk: the contract between the engine and the hardware simulator.

A trace is a folder holding `meta.json` (format version, what produced the trace, and the
SHA-256 of the arrays file) and `arrays.npz` (compressed numpy arrays: the labels and every
array of the engine's SimResult). Folders are written under a temporary name and renamed, so a
reader never sees half a trace. Readers refuse a wrong format version, a checksum mismatch or
arrays whose shapes disagree with the metadata. Format reference: docs/trace-format.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwsim import __version__
from hwsim.engine import SimResult

TRACE_FORMAT_VERSION = 1
META_FILE = "meta.json"
ARRAYS_FILE = "arrays.npz"


class TraceError(ValueError):
    """A trace folder that cannot be used; the message names the path and the problem."""


@dataclass(frozen=True)
class TraceKey:
    """Everything that determines a trace's content; equal keys mean reusable traces."""

    checkpoint_sha256: str
    snn_fingerprint: str
    conversion: dict[str, Any]
    coding: dict[str, Any]
    timesteps: int
    seed: int
    dataset: str
    split: str
    image_indices_sha256: str
    images: int
    heads: tuple[int, ...]
    engine: dict[str, Any]

    def digest(self) -> str:
        """SHA-256 of the key's canonical JSON."""
        return hashlib.sha256(
            json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        ).hexdigest()


@dataclass(frozen=True)
class Trace:
    """A simulation's spikes with the key that produced them and the labels of its images."""

    key: TraceKey
    labels: np.ndarray  # (N,) int64
    image_indices: np.ndarray  # (N,) int64, rows of the dataset split
    sim: SimResult


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def indices_sha256(indices: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(indices, np.int64).tobytes()).hexdigest()


def _sim_to_arrays(sim: SimResult) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays: dict[str, np.ndarray] = {}
    plain: dict[str, Any] = {}
    for f in dataclasses.fields(sim):
        value = getattr(sim, f.name)
        if isinstance(value, np.ndarray):
            arrays[f.name] = value
        elif isinstance(value, dict):
            plain[f.name] = {"__dict_of_arrays__": [int(k) for k in value]}
            for k, v in value.items():
                arrays[f"{f.name}/{int(k)}"] = np.asarray(v)
        elif isinstance(value, tuple):
            plain[f.name] = list(value)
        else:
            plain[f.name] = value
    return arrays, plain


def _sim_from_arrays(arrays: dict[str, np.ndarray], plain: dict[str, Any]) -> SimResult:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(SimResult):
        if f.name in arrays:
            kwargs[f.name] = arrays[f.name]
        elif isinstance(plain.get(f.name), dict) and "__dict_of_arrays__" in plain[f.name]:
            keys = plain[f.name]["__dict_of_arrays__"]
            kwargs[f.name] = {k: arrays[f"{f.name}/{k}"] for k in keys}
        elif isinstance(plain.get(f.name), list):
            kwargs[f.name] = tuple(plain[f.name])
        elif f.name in plain:
            kwargs[f.name] = plain[f.name]
    return SimResult(**kwargs)


def write_trace(trace: Trace, folder: Path) -> Path:
    """Write `trace` into `folder` atomically (temporary folder, then rename); returns folder."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        arrays, plain = _sim_to_arrays(trace.sim)
        arrays["labels"] = trace.labels
        arrays["image_indices"] = trace.image_indices
        np.savez_compressed(tmp / ARRAYS_FILE, **arrays)
        meta = {
            "format": "hwsim-trace",
            "format_version": TRACE_FORMAT_VERSION,
            "hwsim_version": __version__,
            "key": dataclasses.asdict(trace.key),
            "key_sha256": trace.key.digest(),
            "sim": plain,
            "shapes": {k: list(v.shape) for k, v in arrays.items()},
            "arrays_sha256": file_sha256(tmp / ARRAYS_FILE),
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


def read_trace(folder: Path) -> Trace:
    """Read and verify a trace folder; raise TraceError naming the problem."""
    folder = Path(folder)
    meta_path, arrays_path = folder / META_FILE, folder / ARRAYS_FILE
    if not meta_path.is_file() or not arrays_path.is_file():
        raise TraceError(f"{folder}: not a trace folder (expected {META_FILE} and {ARRAYS_FILE})")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TraceError(f"{meta_path}: not valid JSON ({e})") from None
    if meta.get("format") != "hwsim-trace":
        raise TraceError(f"{meta_path}: not an hwsim trace (format={meta.get('format')!r})")
    if meta.get("format_version") != TRACE_FORMAT_VERSION:
        raise TraceError(
            f"{meta_path}: trace format version {meta.get('format_version')!r} unsupported;"
            f" this hwsim reads version {TRACE_FORMAT_VERSION}: recompute it with `hwsim trace`"
        )
    if file_sha256(arrays_path) != meta.get("arrays_sha256"):
        raise TraceError(f"{arrays_path}: checksum mismatch; the trace is corrupt or was edited")
    try:
        with np.load(arrays_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise TraceError(f"{arrays_path}: unreadable ({e})") from None
    expected = meta.get("shapes", {})
    for name, shape in expected.items():
        if name not in arrays or list(arrays[name].shape) != shape:
            got = None if name not in arrays else list(arrays[name].shape)
            raise TraceError(f"{arrays_path}: array {name!r} has shape {got}, expected {shape}")
    try:
        raw = meta["key"]
        key = TraceKey(**{**raw, "heads": tuple(raw["heads"])})
    except (KeyError, TypeError) as e:
        raise TraceError(f"{meta_path}: malformed key ({e})") from None
    if key.digest() != meta.get("key_sha256"):
        raise TraceError(f"{meta_path}: key checksum mismatch; the metadata was edited")
    labels = arrays.pop("labels")
    indices = arrays.pop("image_indices")
    sim = _sim_from_arrays(arrays, meta.get("sim", {}))
    n, t = key.images, key.timesteps
    for h, spikes in sim.head_spikes.items():
        if spikes.shape[:2] != (n, t):
            raise TraceError(
                f"{arrays_path}: head {h} spikes have shape {spikes.shape}, expected ({n}, {t}, C)"
            )
    if labels.shape != (n,) or indices_sha256(indices) != key.image_indices_sha256:
        raise TraceError(f"{arrays_path}: labels or image indices disagree with the metadata")
    return Trace(key, labels, indices, sim)


def trace_folder(root: Path, key: TraceKey) -> Path:
    """Where the trace of `key` lives under `root` (default traces/)."""
    return Path(root) / f"{key.dataset}-{key.split}-T{key.timesteps}-{key.digest()[:16]}"


def find_trace(root: Path, key: TraceKey) -> Trace | None:
    """The stored trace for exactly `key`, or None. A corrupt stored trace raises TraceError."""
    folder = trace_folder(root, key)
    if not folder.exists():
        return None
    trace = read_trace(folder)
    return trace if trace.key == key else None
