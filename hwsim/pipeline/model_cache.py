"""What a checkpoint gives every run alike, kept beside the traces (`<trace root>/models/`) so
that a run whose traces are cached does not redo it: the checkpoint's conversion (a
`save_spiking` file, read back through its fingerprint check) and the ANN's correctness per image
of a split (an .npz of one bool array per head).

Each entry is keyed by the SHA-256 of what it depends on: the checkpoint file's SHA-256, the
conversion parameters or the split and its image rows, the data root, and the code that computes
it (`code_digest`: hwsim's version and the source of every module of `hwsim.model`, so an edit
to the conversion or the networks invalidates every entry). An unreadable entry is recomputed
and replaced, never trusted; a cache that cannot be written is skipped (the run goes on).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim import __version__
from hwsim.atomic import atomic_path
from hwsim.errors import ModelError, OutputError
from hwsim.model.peek import stored_fingerprint

if TYPE_CHECKING:  # torch is imported only where a network is converted or read
    from hwsim.model.convert import SpikingNetwork
    from hwsim.model.nets import Checkpoint

FOLDER = "models"
"""The cache's folder under the trace root."""


@cache
def code_digest() -> str:
    """SHA-256 of hwsim's version and the source of every module of `hwsim.model` (read once
    per process)."""
    h = hashlib.sha256(__version__.encode())
    package = Path(__file__).resolve().parents[1] / "model"
    for path in sorted(package.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def entry_key(**parts: Any) -> str:
    """The key of an entry: SHA-256 of `parts` (JSON, sorted) and `code_digest`."""
    text = json.dumps({**parts, "code": code_digest()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cached_spiking(
    root: Path | None, key: str, ckpt: Checkpoint, convert: Callable[[], SpikingNetwork]
) -> SpikingNetwork:
    """The converted network of entry `key` under `root`, else `convert()`, stored there (None:
    no cache)."""
    from hwsim.model.convert import load_spiking, save_spiking

    if root is None:
        return convert()
    path = _spiking_path(root, key)
    if path.is_file():
        try:
            return load_spiking(path)[1]
        except (ModelError, OSError, RuntimeError, EOFError):
            pass  # damaged: converted again and replaced
    snn = convert()
    _store(lambda: save_spiking(snn, ckpt, path))  # atomic itself
    return snn


def cached_fingerprint(root: Path, key: str) -> str | None:
    """The fingerprint of the converted network of entry `key` under `root`, read without torch
    (None: no such entry). Unchecked: an entry is written only once its checkpoint has been read
    and converted, and a damaged one is converted again (`cached_spiking`) before its weights
    are used."""
    path = _spiking_path(root, key)
    return stored_fingerprint(path) if path.is_file() else None


def _spiking_path(root: Path, key: str) -> Path:
    return Path(root) / FOLDER / f"snn-{key[:32]}.pt"


def cached_correct(
    root: Path | None, key: str, compute: Callable[[], dict[int, np.ndarray]]
) -> dict[int, np.ndarray]:
    """Per head, the (N,) bool correctness of entry `key` under `root`, else `compute()`,
    stored there (None: no cache)."""
    if root is None:
        return compute()
    path = Path(root) / FOLDER / f"ann-{key[:32]}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {int(h.removeprefix("head")): z[h].astype(bool) for h in z.files}
        except (OSError, ValueError, KeyError, EOFError):
            pass  # damaged: computed again and replaced
    correct = compute()
    _store(lambda: _save_correct(path, correct))
    return correct


def _save_correct(path: Path, correct: dict[int, np.ndarray]) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(f, **{f"head{h}": np.asarray(v, bool) for h, v in correct.items()})


def _store(write: Callable[[], None]) -> None:
    """Write an entry (atomically); an unwritable cache is skipped: the run goes on."""
    with contextlib.suppress(OSError, OutputError):
        write()
