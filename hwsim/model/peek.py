"""What a model file says besides its weights, read without torch: the command line checks the
data files a run will read before torch loads (`hwsim.cli.paths.check_data`), and a run whose
traces are cached reads its checkpoint's record and its conversion's fingerprint here
(`hwsim.pipeline.session`).

A checkpoint (`hwsim.model.nets.save_checkpoint`) is torch's zip format: `<name>/data.pkl`
pickles the payload, with tensors as persistent references to storages in other members. The
payload is unpickled here with every torch class and every storage replaced by a stand-in that
builds nothing, and plain containers only otherwise; anything else (another file format, a
payload of another shape) gives None, and the full load reports it as before.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

from hwsim.errors import ModelError
from hwsim.model.checkpoint import CHECKPOINT_FORMAT, CheckpointInfo, checkpoint_info
from hwsim.model.conversion import is_spiking_file

MAX_PAYLOAD_BYTES = 64 * 2**20
"""A data.pkl larger than this is not peeked at (the full load reads it)."""


def _stand_in(*args: Any, **kwargs: Any) -> None:
    """What a torch class or rebuild function becomes: nothing."""


class _PayloadUnpickler(pickle.Unpickler):
    """Builds plain containers; torch's classes and storages become None; nothing else."""

    _PLAIN = {("collections", "OrderedDict"): collections.OrderedDict}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" or module.startswith("torch."):
            return _stand_in
        if (module, name) in self._PLAIN:
            return self._PLAIN[(module, name)]
        raise pickle.UnpicklingError(f"{module}.{name} is not read here")

    def persistent_load(self, pid: Any) -> None:
        return None


def read_payload(path: str | Path) -> Any:
    """The payload of a model file (torch's zip format) with every tensor None, or None if
    `path` is no file this can read without torch."""
    try:
        with zipfile.ZipFile(path) as z:
            member = next((n for n in z.namelist() if n.endswith("/data.pkl")), None)
            if member is None or z.getinfo(member).file_size > MAX_PAYLOAD_BYTES:
                return None
            with z.open(member) as f:
                return _PayloadUnpickler(f).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError):
        return None
    except (AttributeError, IndexError, KeyError, TypeError, ImportError):
        return None  # a pickle of another shape


def checkpoint_dataset(path: str | Path) -> str | None:
    """The dataset name a checkpoint was trained on (its payload's dataset.name), or None if
    `path` is no checkpoint this can read without torch."""
    payload = read_payload(path)
    dataset = payload.get("dataset") if isinstance(payload, dict) else None
    name = dataset.get("name") if isinstance(dataset, dict) else None
    return name if isinstance(name, str) else None


def checkpoint_info_of(path: str | Path) -> CheckpointInfo | None:
    """What a checkpoint records besides its weights, checked as the full load checks it
    (`checkpoint.checkpoint_info`), or None if `path` is no checkpoint this can read without
    torch, or one the full load refuses (and names why)."""
    payload = read_payload(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        return None
    try:
        return checkpoint_info(payload, path)
    except ModelError:
        return None


def stored_fingerprint(path: str | Path) -> str | None:
    """The fingerprint a converted model file (`convert.save_spiking`) stores of its weights,
    unchecked (the full load checks it), or None if it has none this can read."""
    payload = read_payload(path)
    if not isinstance(payload, dict) or not is_spiking_file(payload):
        return None
    fingerprint = payload.get("fingerprint")
    return fingerprint if isinstance(fingerprint, str) else None
