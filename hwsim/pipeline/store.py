"""Evaluated results kept by their content: one JSON record per key under the trace cache
(`RESULTS_FOLDER`), shared by `hwsim sweep`, `hwsim sweep-grid` and `hwsim explore`, so a rerun,
an extended sweep or a design point two explorations share is computed once.

A key is the SHA-256 of the canonical JSON of everything the result depends on (`content_key`:
file digests, settings, the values of the knobs that act). A record holds its key, its schema
version, the code version that computed it (`code_version`: any edit of hwsim's sources makes
every record stale, recomputed without a warning) and its payload's SHA-256; one whose key,
version or checksum does not hold is treated as absent (named in a warning, then recomputed and
replaced). Records are written atomically; a
store that cannot be written (a read-only mount, a full disk) is read from and not written to,
with one warning.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hwsim
from hwsim.atomic import DISK_FULL, atomic_write_text, disk_full
from hwsim.engine.trace import source_digest
from hwsim.errors import OutputError
from hwsim.pipeline.config import WarnFn

RESULTS_FOLDER = "results"
"""The store's folder under the trace cache root."""

STORE_VERSION = 1
"""Schema version of a record; a record of another version is recomputed."""


def content_key(**parts: Any) -> str:
    """SHA-256 (hex) of `parts` as canonical JSON (sorted keys; paths and other objects by
    their text): equal for equal content, whatever the order the parts were given in."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def code_version() -> str:
    """`source_digest` of every hwsim source file: the code a stored result was computed by."""
    package = Path(hwsim.__file__).parent
    return source_digest(sorted(package.rglob("*.py")), package)


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class ResultStore:
    """Records under `root` / RESULTS_FOLDER (root None: a store that keeps nothing)."""

    root: Path | None
    warn: WarnFn | None = None
    _read_only: bool = field(default=False, repr=False)

    def path(self, key: str) -> Path:
        """Where the record of `key` lives (two-character fan-out)."""
        if self.root is None:
            raise ValueError("a store without a root keeps no records")
        return Path(self.root) / RESULTS_FOLDER / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The stored payload of `key`, or None when absent or damaged (named in a warning)."""
        if self.root is None:
            return None
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
            ok = (
                record["key"] == key
                and record["version"] == STORE_VERSION
                and record["sha256"] == _digest(record["payload"])
            )
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
            ok, reason = False, str(e)
        else:
            reason = "its key, version or checksum does not match its content"
        if ok and record.get("code") != code_version():
            return None  # computed by other code: stale, not damaged
        if ok:
            return record["payload"]
        if self.warn is not None:
            self.warn(f"{path}: a damaged stored result ({reason}); computing it again")
        return None

    def put(self, key: str, payload: dict) -> bool:
        """Store `payload` (JSON-serialisable) under `key`; returns whether it was written."""
        if self.root is None or self._read_only:
            return False
        path = self.path(key)
        record = {
            "key": key,
            "version": STORE_VERSION,
            "code": code_version(),
            "sha256": _digest(payload),
        }
        text = json.dumps({**record, "payload": payload}, sort_keys=True)
        try:
            atomic_write_text(path, text)
        except (OSError, OutputError) as e:
            if isinstance(e, OSError) and e.errno in DISK_FULL:
                e = disk_full(path)
            reason = str(e) if isinstance(e, OutputError) else f"{e.filename or path}: {e.strerror}"
            self._read_only = True
            if self.warn is not None:
                self.warn(f"results are not stored in the cache ({reason}); going on without it")
            return False
        return True

    def keys(self) -> list[str]:
        """Every stored key (damaged records included), sorted."""
        if self.root is None or not (Path(self.root) / RESULTS_FOLDER).is_dir():
            return []
        return sorted(p.stem for p in (Path(self.root) / RESULTS_FOLDER).glob("??/*.json"))
