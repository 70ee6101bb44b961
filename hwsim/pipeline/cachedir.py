"""What the trace cache holds, and pruning it (`hwsim cache list|prune`).

A cache entry is something hwsim wrote under the trace root (`hwsim.pipeline.cache`,
`hwsim.pipeline.store`), recognised by its name and its content:

- a trace folder `DATASET-SPLIT-TN-KEY16` whose meta.json says it is an hwsim trace of that key,
  holding only its meta.json, the data files whose checksums it records (`NAME.EXT` under
  `NAME_sha256`: arrays.npz, per_image.npy) and the tunings stored beside it
  (`tuning-icN-POOLING.json`, set-aside `*.damaged` ones);
- a stored result `results/KK/KEY.json` (64 hex digits, KK its first two): a record that names
  that key, or a damaged one (no JSON, another key: the store ignores and rewrites it), which
  only hwsim names so;
- a model entry `models/snn-KEY32.pt` or `models/ann-KEY32.npz` (`hwsim.pipeline.model_cache`:
  a checkpoint's conversion, its ANN's correctness on a split), by its name.

Anything else under the root (a user's file, a folder with other content) is no entry: it is
listed as left alone and never deleted. An entry's age is the time since its newest file was
written (s); its size the bytes of its files.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from hwsim.atomic import remove_stale_temps
from hwsim.engine.trace import META_FILE
from hwsim.pipeline.model_cache import FOLDER as MODELS_FOLDER
from hwsim.pipeline.store import RESULTS_FOLDER

TRACE_NAME = re.compile(
    r"^(?P<dataset>.+)-(?P<split>train|validation|test)-T(?P<T>\d+)-(?P<key>[0-9a-f]{16})$"
)
"""A trace folder's name (`hwsim.engine.trace.trace_folder`)."""
TUNING_NAME = re.compile(r"^tuning-ic\d+-[a-z_]+\.json(?:\.damaged)?$")
"""A tuning stored beside its trace (`hwsim.pipeline.cache.tuning_path`), or one set aside."""
RESULT_NAME = re.compile(r"^[0-9a-f]{64}\.json$")
TRACE_FORMAT = "hwsim-trace"
MAX_META_BYTES = 16 * 2**20
"""A meta.json larger than this is no hwsim trace's (its key and shapes are small)."""


class EntryKind(StrEnum):
    TRACE = "trace"
    RESULT = "result"
    MODEL = "model"


MODEL_NAME = re.compile(r"^(?P<what>snn|ann)-(?P<key>[0-9a-f]{32})\.(?:pt|npz)$")
"""A model cache entry's name (`hwsim.pipeline.model_cache`)."""
MODEL_INFO = {"snn": "converted network", "ann": "ANN correctness per image"}


@dataclass(frozen=True)
class CacheEntry:
    """One entry of the trace cache."""

    kind: EntryKind
    path: Path
    bytes: int  # its files' sizes (bytes)
    written: float  # POSIX time its newest file was written (s)
    key: str  # the key's SHA-256 prefix (16 hex digits) or whole (results)
    info: str  # what it holds, in words ("; " between its parts)

    def age(self, now: float) -> float:
        """Seconds since it was written."""
        return max(0.0, now - self.written)


@dataclass(frozen=True)
class CacheListing:
    """The entries under a trace root, and what else is there (left alone)."""

    root: Path
    entries: tuple[CacheEntry, ...]
    foreign: tuple[Path, ...]

    @property
    def bytes(self) -> int:
        return sum(e.bytes for e in self.entries)


def _newest(paths: Iterable[Path]) -> float:
    return max((p.stat().st_mtime for p in paths), default=0.0)


def _meta(path: Path) -> dict | None:
    try:
        if path.stat().st_size > MAX_META_BYTES:
            return None
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _checked(meta: dict, name: str) -> bool:
    """Whether the trace's meta.json records the checksum of its file `name` (`NAME_sha256`)."""
    stem = name.partition(".")[0]
    value = meta.get(f"{stem}_sha256")
    return stem != "key" and "." in name and isinstance(value, str) and len(value) == 64


def trace_entry(folder: Path) -> CacheEntry | None:
    """`folder` as a trace entry, or None if it is not one that hwsim wrote."""
    m = TRACE_NAME.match(folder.name)
    if m is None or folder.is_symlink() or not folder.is_dir():
        return None
    files = list(folder.iterdir())
    names = {p.name for p in files}
    meta = _meta(folder / META_FILE) if META_FILE in names else None
    key = meta.get("key") if meta else None
    if (
        meta is None
        or meta.get("format") != TRACE_FORMAT
        or not str(meta.get("key_sha256", "")).startswith(m["key"])
        or not isinstance(key, dict)
    ):
        return None
    for p in files:
        own = p.name == META_FILE or TUNING_NAME.match(p.name) or _checked(meta, p.name)
        if p.is_symlink() or not p.is_file() or not own:
            return None
    tunings = sum(1 for n in names if TUNING_NAME.match(n))
    info = (
        f"{m['dataset']} {m['split']}, T = {m['T']}; {key.get('images', '?')} images,"
        f" {tunings} tuning{'s' if tunings != 1 else ''}"
    )
    return CacheEntry(
        EntryKind.TRACE,
        folder,
        sum(p.stat().st_size for p in files),
        _newest(files),
        m["key"],
        info,
    )


def result_entry(path: Path) -> CacheEntry | None:
    """`path` (results/KK/KEY.json) as a stored result (damaged or not), or None if its name
    is not one the store gives."""
    if not RESULT_NAME.match(path.name) or path.is_symlink() or not path.is_file():
        return None
    key = path.name.removesuffix(".json")
    if path.parent.name != key[:2]:
        return None
    record = _meta(path)
    whole = record is not None and record.get("key") == key and "payload" in record
    info = f"result v{record.get('version')}" if whole else "damaged result (the store rewrites it)"
    stat = path.stat()
    return CacheEntry(EntryKind.RESULT, path, stat.st_size, stat.st_mtime, key, info)


def model_entry(path: Path) -> CacheEntry | None:
    """`path` (models/NAME) as a model cache entry, or None if its name is not one the model
    cache gives."""
    m = MODEL_NAME.match(path.name)
    if m is None or path.is_symlink() or not path.is_file():
        return None
    stat = path.stat()
    return CacheEntry(
        EntryKind.MODEL, path, stat.st_size, stat.st_mtime, m["key"][:16], MODEL_INFO[m["what"]]
    )


def scan(root: Path) -> CacheListing:
    """Every entry under `root` (oldest first) and what is not one."""
    root = Path(root)
    entries: list[CacheEntry] = []
    foreign: list[Path] = []
    if not root.is_dir():
        return CacheListing(root, (), ())
    for path in sorted(root.iterdir()):
        if path.name == RESULTS_FOLDER and path.is_dir() and not path.is_symlink():
            for fan in sorted(path.iterdir()):
                if not (
                    fan.is_dir() and not fan.is_symlink() and re.fullmatch("[0-9a-f]{2}", fan.name)
                ):
                    foreign.append(fan)
                    continue
                for record in sorted(fan.iterdir()):
                    entry = result_entry(record)
                    (entries.append(entry) if entry else foreign.append(record))
            continue
        if path.name == MODELS_FOLDER and path.is_dir() and not path.is_symlink():
            for item in sorted(path.iterdir()):
                entry = model_entry(item)
                if entry is not None:
                    entries.append(entry)
                elif not item.name.startswith("."):
                    foreign.append(item)
            continue
        entry = trace_entry(path)
        if entry is not None:
            entries.append(entry)
        elif not path.name.startswith("."):  # hwsim's temporaries are cleaned by prune
            foreign.append(path)
    entries.sort(key=lambda e: (e.written, str(e.path)))
    return CacheListing(root, tuple(entries), tuple(foreign))


@dataclass(frozen=True)
class PruneRule:
    """Which entries go: all, those older than `older_than` seconds, and the oldest ones beyond
    `max_bytes` in total (the newest kept). The rules add up: an entry goes if any selects it."""

    all: bool = False
    older_than: float | None = None  # s
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if not self.all and self.older_than is None and self.max_bytes is None:
            raise ValueError("a prune rule selects nothing")  # the command line refuses this


def select(listing: CacheListing, rule: PruneRule, now: float | None = None) -> list[CacheEntry]:
    """The entries `rule` prunes, oldest first."""
    now = time.time() if now is None else now
    if rule.all:
        return list(listing.entries)
    doomed = set()
    if rule.older_than is not None:
        doomed |= {e.path for e in listing.entries if e.age(now) > rule.older_than}
    if rule.max_bytes is not None:  # the oldest of the others go until the rest fit
        left = sum(e.bytes for e in listing.entries if e.path not in doomed)
        for e in listing.entries:
            if left <= rule.max_bytes:
                break
            if e.path not in doomed:
                doomed.add(e.path)
                left -= e.bytes
    return [e for e in listing.entries if e.path in doomed]


def _remove_trace(folder: Path) -> bool:
    """Delete a trace folder's own files and the folder; False (nothing more deleted) if a
    writer is at work in it or it holds anything else by now."""
    if remove_stale_temps(folder) or trace_entry(folder) is None:
        return False
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    return True


def prune(listing: CacheListing, entries: Iterable[CacheEntry]) -> list[CacheEntry]:
    """Delete `entries` (of `listing`), each checked again just before; then the temporaries of
    finished hwsim writes under the root and empty result fan-out folders. Returns those
    deleted."""
    done = []
    for e in entries:
        if e.kind is EntryKind.TRACE:
            if _remove_trace(e.path):
                done.append(e)
        elif (result_entry if e.kind is EntryKind.RESULT else model_entry)(e.path) is not None:
            e.path.unlink()
            done.append(e)
    results = listing.root / RESULTS_FOLDER
    remove_stale_temps(listing.root)
    models = listing.root / MODELS_FOLDER
    if models.is_dir() and not models.is_symlink():
        remove_stale_temps(models)
        if not any(models.iterdir()):
            models.rmdir()
    if results.is_dir() and not results.is_symlink():
        for fan in results.iterdir():
            if fan.is_dir() and not fan.is_symlink() and re.fullmatch("[0-9a-f]{2}", fan.name):
                remove_stale_temps(fan)
                if not any(fan.iterdir()):
                    fan.rmdir()
    return done
