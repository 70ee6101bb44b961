"""Atomic file writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hwsim.errors import OutputError

if TYPE_CHECKING:
    import pandas as pd


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to `path`.

    On any exception the temporary file is removed and `path` is left as it was, so a reader
    never sees a half-written CSV, trace or checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


OUTPUT_SUFFIXES = (".csv", ".json", ".png", ".svg")
"""Kinds of files hwsim writes into an output folder."""


def check_output_folder(path: str | Path, param: str = "out") -> bool:
    """Check up front that `path` can become an output folder: absent, or a folder holding only
    files of the kinds hwsim writes (they will be replaced), inside a writable parent. Returns
    whether earlier results are there. Raises OutputError naming the parameter `param` and
    the path."""
    path = Path(path)
    name = "{" + param + "}"
    if path.exists() and not path.is_dir():
        raise OutputError(
            f"{name} {path}: exists and is not a folder; give a folder to write into",
            params=(param,),
        )
    if path.is_dir():
        foreign = sorted(
            p.name
            for p in path.iterdir()
            if not (p.is_file() and p.suffix in OUTPUT_SUFFIXES) and not p.name.startswith(".")
        )
        if foreign:
            raise OutputError(
                f"{name} {path}: holds {', '.join(foreign[:5])}, which hwsim did not write;"
                " give a new or empty folder (hwsim replaces the whole folder)",
                params=(param,),
            )
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"{name} {path}: cannot create it ({parent} is not writable)", params=(param,)
        )
    return path.is_dir() and any(path.iterdir())


def check_not_input(out: str | Path, source: str | Path, param: str = "out") -> None:
    """Refuse an output file `out` that is the input file `source` (it would be overwritten)."""
    if Path(out).resolve() == Path(source).resolve():
        raise OutputError(
            f"{{{param}}} {out}: it is the input model; choose another file", params=(param,)
        )


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder to write outputs into; on success it replaces `path`
    as a whole, so `path` holds either the complete earlier results or the complete new ones,
    never a mix. On any exception `path` is left as it was and the temporary folder removed."""
    path = Path(path)
    check_output_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.rename(path, old / "previous")
        os.rename(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """`frame` as a CSV file at `path` (no index, floats to 10 significant digits), written
    atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g")
