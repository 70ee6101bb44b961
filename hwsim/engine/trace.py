"""Spike traces on disk: the contract between the engine and the hardware simulator.

A trace is a folder holding `meta.json` (format version, what produced the trace, and the
SHA-256 of its array files), `arrays.npz` (compressed numpy arrays: the labels and every array
of the engine's SimResult but one) and, when the engine kept per-image activity,
`per_image.npy` (that array, uncompressed in the narrowest unsigned type that holds its counts,
memory-mapped when read: `read_images` copies a range of images and lets the pages go, so a
reader's memory does not grow with the trace's images). Folders are written under a temporary
name and renamed, so a reader never sees half a trace. Readers refuse a wrong format version, a
checksum mismatch or arrays whose shapes disagree with the metadata. The key holds the
engine's code version (`engine_code_version`), so a trace of another engine is never reused.
Format reference: docs/trace-format.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import typing
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwsim import __version__
from hwsim.engine.mapped import chunked_max, let_go
from hwsim.engine.result import SimResult
from hwsim.errors import DataError

TRACE_FORMAT_VERSION = 4
META_FILE = "meta.json"
ARRAYS_FILE = "arrays.npz"
PER_IMAGE_FILE = "per_image.npy"
PER_IMAGE = "sim.activity.per_image"
"""The per-image activity's name among the arrays (`Activity.per_image`), stored apart."""
PER_IMAGE_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.int32))
"""The types `per_image.npy` may hold, narrowest first (counts are >= 0)."""


class TraceError(DataError):
    """A trace folder that cannot be used; the message names the path and the problem."""


_PACKAGE = Path(__file__).resolve().parents[1]


def engine_sources(package: Path = _PACKAGE) -> tuple[Path, ...]:
    """The source files that decide a trace's content, given the network and the key's other
    fields: every module of `hwsim.engine` but this one (which only stores traces), and the
    model modules the engine runs: the input codings, the layer graph, and `convert`, whose
    `conv_f64` gives the analog input's current."""
    engine = sorted(p for p in (package / "engine").glob("*.py") if p.name != "trace.py")
    return (*engine, *(package / "model" / f for f in ("coding.py", "convert.py", "graph.py")))


def source_digest(files: typing.Iterable[Path], root: Path) -> str:
    """SHA-256 of the files' paths relative to `root` and their bytes, with CRLF line ends read
    as LF (a checkout's line ends do not change the engine)."""
    h = hashlib.sha256()
    for path in files:
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        data = path.read_bytes().replace(b"\r\n", b"\n")
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


@functools.cache
def engine_code_version() -> str:
    """The engine's code version, part of every trace key: `source_digest` of
    `engine_sources()`. Any edit of those files changes it, so a trace is reused only by the
    engine that wrote it."""
    return source_digest(engine_sources(), _PACKAGE)


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
    engine_code: str = dataclasses.field(default_factory=engine_code_version)

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

    def prefix(self, timesteps: int) -> Trace:
        """The first `timesteps` steps of this trace (a shorter run of the same simulation:
        every step depends only on the steps before it)."""
        if not 1 <= timesteps <= self.key.timesteps:
            raise TraceError(f"prefix of {timesteps} steps of a {self.key.timesteps}-step trace")
        if timesteps == self.key.timesteps:
            return self
        sim, act = self.sim, self.sim.activity
        if act is not None:
            act = dataclasses.replace(
                act,
                in_spikes=act.in_spikes[:timesteps],
                active_pe_ops=act.active_pe_ops[:timesteps],
                active_windows=act.active_windows[:timesteps],
                out_spikes=act.out_spikes[:timesteps],
                per_image=None if act.per_image is None else act.per_image[:, :timesteps],
            )
        sim = dataclasses.replace(
            sim,
            head_spikes=prefix_heads(sim.head_spikes, timesteps),
            layer_spikes=sim.layer_spikes[:timesteps],
            activity=act,
        )
        key = dataclasses.replace(self.key, timesteps=timesteps)
        return Trace(key, self.labels, self.image_indices, sim)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def compact_dtype(counts: np.ndarray) -> np.dtype:
    """The narrowest of `PER_IMAGE_DTYPES` that holds every value of `counts` (>= 0), read
    a few images at a time (`counts` may be a memory-mapped spill of the engine's)."""
    top = chunked_max(counts, _rows(counts))
    return next(d for d in PER_IMAGE_DTYPES if top <= np.iinfo(d).max)


def _rows(array: np.ndarray) -> int:
    """Rows of `array` in `ROWS_BYTES` (at least one)."""
    return max(1, ROWS_BYTES // max(1, array[:1].nbytes))


ROWS_BYTES = 8 << 20
"""Bytes of an array converted at once when `per_image.npy` is written."""


def _write_rows(path: Path, array: np.ndarray) -> None:
    """`array` (int, >= 0) as a .npy file in `compact_dtype`, converted a few images at a
    time (no whole-size copy)."""
    dtype = compact_dtype(array)
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": array.shape,
    }
    rows = _rows(array)
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for a in range(0, len(array), rows):
            np.ascontiguousarray(array[a : a + rows], dtype).tofile(f)
            let_go(array)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`arrays` as a compressed .npz, the bytes `np.savez_compressed` writes (members dated
    1980: equal traces are equal bytes), each array's mapped pages let go once written."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        for name, array in arrays.items():
            with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)
            let_go(array)


def read_images(array: np.ndarray, images: slice) -> np.ndarray:
    """`array[images]` as an int32 copy. When `array` is memory-mapped (a read
    `per_image.npy`, or a view of it), the mapping's pages are let go afterwards
    (`hwsim.engine.mapped.let_go`: read again from the file if needed), so that reading a trace
    range by range keeps one range resident, not the file."""
    out = np.array(array[images], np.int32)
    let_go(array)
    return out


HEADS = "sim.head_spikes/"
"""The prefix of the head spikes' names among the arrays (`SimResult.head_spikes`)."""


class HeadSpikes(Mapping[int, np.ndarray]):
    """A read trace's head spikes (`SimResult.head_spikes`), each head read from `arrays.npz`
    when first asked for and kept: a run reads its IC and its FC, not the other heads, so a
    reader holds 2 of a model's 17 heads (3 MB each per 1,000 images at T = 300). `steps`:
    the first steps only (`Trace.prefix`). Thread-safe; pickles as its file."""

    def __init__(
        self,
        path: Path,
        shapes: dict[int, tuple[int, ...]],
        steps: int | None = None,
        loaded: dict[int, np.ndarray] | None = None,
    ) -> None:
        self.path, self.shapes, self.steps = Path(path), shapes, steps
        self._loaded = {} if loaded is None else loaded
        self._lock = threading.Lock()

    def __getitem__(self, head: int) -> np.ndarray:
        shape = self.shapes[head]  # KeyError for a head the trace has not
        with self._lock:
            array = self._loaded.get(head)
            if array is None:
                try:
                    with np.load(self.path, allow_pickle=False) as z:
                        array = z[f"{HEADS}{head}"]
                except (OSError, ValueError, KeyError) as e:
                    raise TraceError(f"{self.path}: head {head} unreadable ({e})") from None
                if array.shape != shape or array.dtype != np.uint8:
                    raise TraceError(
                        f"{self.path}: head {head} spikes are {array.dtype} {array.shape},"
                        f" expected uint8 {shape}; the trace changed since it was read"
                    )
                self._loaded[head] = array
        return array if self.steps is None else array[:, : self.steps]

    def __iter__(self) -> Iterator[int]:
        return iter(self.shapes)

    def __len__(self) -> int:
        return len(self.shapes)

    def prefix(self, steps: int) -> HeadSpikes:
        """The first `steps` steps of every head, sharing what is read."""
        return HeadSpikes(self.path, self.shapes, steps, self._loaded)

    def __reduce__(self):
        return HeadSpikes, (self.path, self.shapes, self.steps)


def prefix_heads(heads: Mapping[int, np.ndarray], steps: int) -> Mapping[int, np.ndarray]:
    """The first `steps` steps of each head's spikes (nothing read that was not)."""
    if isinstance(heads, HeadSpikes):
        return heads.prefix(steps)
    return {h: s[:, :steps] for h, s in heads.items()}


def indices_sha256(indices: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(indices, np.int64).tobytes()).hexdigest()


def _flatten(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Move every numpy array of a (nested) dataclass into `arrays` under a path-like name;
    return a JSON-compatible description of the rest."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if dataclasses.is_dataclass(obj):
        return {
            "__dataclass__": type(obj).__name__,
            "fields": {
                f.name: _flatten(getattr(obj, f.name), f"{prefix}.{f.name}", arrays)
                for f in dataclasses.fields(obj)
            },
        }
    if isinstance(obj, Mapping):
        return {
            "__dict__": [
                [int(k), _flatten(v, f"{prefix}/{int(k)}", arrays)] for k, v in obj.items()
            ]
        }
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, f"{prefix}[{i}]", arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    return obj


def _unflatten(desc: Any, arrays: dict[str, np.ndarray], types: dict[str, type]) -> Any:
    if isinstance(desc, dict):
        if "__array__" in desc:
            return arrays[desc["__array__"]]
        if "__dataclass__" in desc:
            cls = types[desc["__dataclass__"]]
            return cls(**{k: _unflatten(v, arrays, types) for k, v in desc["fields"].items()})
        if "__dict__" in desc:
            return {k: _unflatten(v, arrays, types) for k, v in desc["__dict__"]}
        if "__tuple__" in desc:
            return tuple(_unflatten(v, arrays, types) for v in desc["__tuple__"])
    return desc


def _result_types() -> dict[str, type]:
    """Dataclasses a trace may contain: SimResult and the dataclasses of its fields."""
    found: dict[str, type] = {}
    stack: list[type] = [SimResult]
    while stack:
        cls = stack.pop()
        found[cls.__name__] = cls
        hints = typing.get_type_hints(cls)
        for hint in hints.values():
            for t in (hint, *typing.get_args(hint)):
                if dataclasses.is_dataclass(t) and t.__name__ not in found:
                    stack.append(t)
    return found


_TEMP = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")
"""Temporary folders of trace writes: .<folder>.<pid>.<random>.tmp"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(root: Path) -> None:
    """Remove the temporary folders that killed trace writes left under `root` (those whose
    writing process is gone)."""
    if not root.is_dir():
        return
    for entry in root.iterdir():
        m = _TEMP.match(entry.name)
        if m and entry.is_dir() and not _alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def _swap_in(tmp: Path, folder: Path) -> None:
    """Rename the finished `tmp` to `folder`, replacing an earlier one. Safe when several
    writers race for the same folder: a trace's content is fixed by its key, so whichever
    complete copy lands last stays and no writer fails."""
    busy = (errno.EEXIST, errno.ENOTEMPTY)
    try:
        os.rename(tmp, folder)
        return
    except OSError as e:
        if e.errno not in busy:
            raise
    old = Path(
        tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}.", suffix=".tmp", dir=folder.parent)
    )
    try:
        with contextlib.suppress(FileNotFoundError):  # another writer moved it away first
            os.replace(folder, old / "replaced")
        try:
            os.rename(tmp, folder)
        except OSError as e:
            if e.errno not in busy:
                raise
            # another writer's complete copy landed in between: keep it
    finally:
        shutil.rmtree(old, ignore_errors=True)


def write_trace(trace: Trace, folder: Path) -> Path:
    """Write `trace` into `folder` atomically (temporary folder, then rename); returns folder.
    Concurrent writers of the same folder do not interfere, and temporary folders of killed
    writers are removed on the next write."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder.parent)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}.", suffix=".tmp", dir=folder.parent)
    )
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a trace folder is a normal folder
    try:
        arrays: dict[str, np.ndarray] = {}
        plain = _flatten(trace.sim, "sim", arrays)
        arrays["labels"] = trace.labels
        arrays["image_indices"] = trace.image_indices
        shapes = {k: list(v.shape) for k, v in arrays.items()}
        per_image = arrays.pop(PER_IMAGE, None)
        _write_npz(tmp / ARRAYS_FILE, arrays)
        sums = {"arrays_sha256": file_sha256(tmp / ARRAYS_FILE)}
        if per_image is not None:
            _write_rows(tmp / PER_IMAGE_FILE, per_image)
            sums["per_image_sha256"] = file_sha256(tmp / PER_IMAGE_FILE)
        meta = {
            "format": "hwsim-trace",
            "format_version": TRACE_FORMAT_VERSION,
            "hwsim_version": __version__,
            "key": dataclasses.asdict(trace.key),
            "key_sha256": trace.key.digest(),
            "sim": plain,
            "shapes": shapes,
            **sums,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
        _swap_in(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


def _mapped_per_image(path: Path, sha256: str) -> np.ndarray:
    """`per_image.npy`, checked against its SHA-256 and type, memory-mapped read-only."""
    if not path.is_file():
        raise TraceError(f"{path}: missing (the trace's meta.json names it)")
    if file_sha256(path) != sha256:
        raise TraceError(f"{path}: checksum mismatch; the trace is corrupt or was edited")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise TraceError(f"{path}: unreadable ({e})") from None
    if array.dtype not in PER_IMAGE_DTYPES:
        raise TraceError(f"{path}: holds {array.dtype}, expected one of uint8, uint16, int32")
    return array


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
    expected = meta.get("shapes", {})
    try:
        with np.load(arrays_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if not k.startswith(HEADS)}
            heads = [k for k in z.files if k.startswith(HEADS)]
    except (OSError, ValueError) as e:
        raise TraceError(f"{arrays_path}: unreadable ({e})") from None
    if sorted(heads) != sorted(k for k in expected if k.startswith(HEADS)):
        raise TraceError(f"{arrays_path}: head arrays {heads} disagree with the metadata")
    if "per_image_sha256" in meta:
        arrays[PER_IMAGE] = _mapped_per_image(folder / PER_IMAGE_FILE, meta["per_image_sha256"])
    for name, shape in expected.items():
        if name.startswith(HEADS):
            continue  # checked when read (HeadSpikes)
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
    n, t = key.images, key.timesteps
    shapes = {int(k[len(HEADS) :]): tuple(expected[k]) for k in heads}
    for h, shape in shapes.items():
        if shape[:2] != (n, t):
            raise TraceError(
                f"{arrays_path}: head {h} spikes have shape {shape}, expected ({n}, {t}, C)"
            )
    try:
        sim = _unflatten(meta["sim"], {**arrays, **_head_stubs(heads)}, _result_types())
    except (KeyError, TypeError) as e:
        raise TraceError(f"{meta_path}: engine result does not fit this hwsim ({e})") from None
    sim = dataclasses.replace(sim, head_spikes=HeadSpikes(arrays_path, shapes))
    if labels.shape != (n,) or indices_sha256(indices) != key.image_indices_sha256:
        raise TraceError(f"{arrays_path}: labels or image indices disagree with the metadata")
    return Trace(key, labels, indices, sim)


def _head_stubs(names: list[str]) -> dict[str, np.ndarray]:
    """Empty stand-ins for the head arrays while the result is rebuilt (HeadSpikes replaces
    them)."""
    return {name: np.empty(0, np.uint8) for name in names}


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
