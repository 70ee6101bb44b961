"""Atomic writes, and the rules that keep outputs off inputs.

A file is written to a temporary file beside it, then renamed over it; an output folder is
written as a temporary sibling folder that then replaces it as a whole. Temporary names carry
the writer's process id (`.NAME.PID.RANDOM.tmp`), so a later run removes the ones a killed run
left (`remove_stale_temps`) and leaves a running one's alone.

An output folder holds a manifest (`MANIFEST`) of the files hwsim wrote there; hwsim replaces
a folder only when everything in it is listed, and refuses a folder holding anything else
(`check_output_folder`). An output file must not be an input, nor an existing file of another
kind than the one written (`check_output_file`); `check_disjoint` refuses outputs that would
land on each other. Every check runs before any work and raises `OutputError` naming the
parameter and the path; a full disk is an `OutputError` naming the path and the space
(`disk_full`). `available_memory_bytes` is the memory that estimates of large allocations
are held against.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hwsim.errors import OutputError

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = ".hwsim-outputs.json"
"""The file in an output folder that lists what hwsim wrote there (relative paths)."""
MANIFEST_FORMAT = "hwsim-outputs"

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]+\.(?:tmp|old)$")
"""Temporary files and folders of hwsim's writes: .<target name>.<pid>.<random>.tmp (.old:
a replaced folder on its way out)."""

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
"""The errors of a write that ran out of space (the disk, or the user's quota)."""

InputPaths = Sequence[tuple[str, Path]]
"""The inputs of a command: (parameter, path) pairs, e.g. ("model", Path("m.pt"))."""


def _mode(path: Path, folder: bool) -> None:
    """The usual permissions (mkstemp and mkdtemp make 0600 and 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if folder else 0o666) & ~umask)


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(folder: Path, name: str | None = None) -> list[tuple[Path, int]]:
    """Remove the temporary files and folders of killed hwsim writes in `folder` (of the
    target `name` only, if given); returns those of writers still running (path, pid)."""
    live: list[tuple[Path, int]] = []
    if not folder.is_dir():
        return live
    for entry in folder.iterdir():
        m = _TEMP.match(entry.name)
        if m is None or (name is not None and m["name"] != name):
            continue
        pid = int(m["pid"])
        if process_alive(pid):  # this process's own writes included
            live.append((entry, pid))
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return live


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _size(path: Path) -> int:
    """Bytes under `path` (a file or a folder), 0 if it is gone."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _existing_ancestor(path: Path) -> Path:
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def available_memory_bytes() -> int:
    """Memory the system can still give this process (MemAvailable), bytes: what every
    estimate made before a large allocation is held against."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _amount(nbytes: float) -> str:
    """A size in bytes as people read it: 512 B, 12.5 KiB, 3.0 MiB, 1.2 GiB."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = 0
    while nbytes >= 1024 and i < len(units) - 1:
        nbytes, i = nbytes / 1024, i + 1
    return f"{nbytes:.0f} B" if i == 0 else f"{nbytes:.1f} {units[i]}"


def disk_full(path: Path, needed: int | None = None) -> OutputError:
    """The error for a write to `path` that ran out of space: the path, the space free on
    its file system and, if known, the bytes the write had reached."""
    try:
        free = shutil.disk_usage(_existing_ancestor(path)).free
        have = f"{_amount(free)} free there"
    except OSError:
        have = "the free space unknown"
    need = f"; the write needed more than the {_amount(needed)} it had written" if needed else ""
    return OutputError(
        f"{path}: no space left on the disk ({have}{need}); free some or write elsewhere"
    )


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to `path`.

    On any exception the temporary file is removed and `path` is left as it was, so a reader
    never sees a half-written CSV, trace or checkpoint. A full disk is an `OutputError`
    naming `path` and the space.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        _mode(tmp_path, folder=False)
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as e:
        if e.errno in DISK_FULL:
            raise disk_full(path, _size(tmp_path)) from e
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


# --------------------------------------------------------------------------- manifests


def read_manifest(folder: Path) -> set[str] | None:
    """The files hwsim recorded writing in `folder` (relative paths), None without a readable
    manifest."""
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return None
    files = data.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return set(files)


def _write_manifest(folder: Path, files: Iterable[str]) -> None:
    text = json.dumps({"format": MANIFEST_FORMAT, "files": sorted(set(files))}, indent=1)
    atomic_write_text(folder / MANIFEST, text + "\n")


def record_outputs(folder: Path, names: Iterable[str]) -> None:
    """Add `names` (relative to `folder`) to the folder's manifest. Call it before writing
    them, so that a run killed in between leaves nothing unlisted."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_manifest(folder, (read_manifest(folder) or set()) | set(names))


def _entries(folder: Path) -> set[str]:
    """Every file, link and empty folder under `folder`, relative, without following links."""
    out: set[str] = set()
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        out |= {(rel / f).as_posix() for f in files}
        out |= {(rel / d).as_posix() for d in dirs if (Path(root) / d).is_symlink()}
        if not dirs and not files and Path(root) != folder:
            out.add(rel.as_posix())
    return out


def _foreign(folder: Path) -> list[str]:
    """What `folder` holds that its manifest does not list (sorted)."""
    listed = read_manifest(folder) or set()
    return sorted(e for e in _entries(folder) if e != MANIFEST and e not in listed)


# --------------------------------------------------------------------------- checks


def _real(path: Path) -> Path:
    """`path` absolute, links followed as far as they lead (a link loop is left as it is)."""
    return Path(os.path.realpath(path))


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name the same file or folder (links and hard links followed)."""
    try:
        return _real(a) == _real(b) or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _inside(inner: Path, outer: Path) -> bool:
    """Whether `inner` is `outer` or lies under it (links followed)."""
    return _real(inner).is_relative_to(_real(outer))


def check_writable(target: Path, param: str) -> None:
    """Refuse an output `target` whose folder hwsim cannot create files in (read-only mounts
    included, whoever runs it): tried with a probe file in its nearest existing ancestor."""
    name = "{" + param + "}"
    folder = _existing_ancestor(target)
    if not folder.is_dir():
        raise OutputError(
            f"{name} {target}: {folder} is a file, not a folder; choose another path",
            params=(param,),
        )
    try:
        fd, probe = tempfile.mkstemp(
            prefix=f".hwsim-probe.{os.getpid()}.", suffix=".tmp", dir=folder
        )
    except OSError as e:
        raise OutputError(
            f"{name} {target}: cannot write in {folder} ({e.strerror}); choose a writable place",
            params=(param,),
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_inputs(path: Path, param: str, inputs: InputPaths, folder: bool) -> None:
    """Refuse an output `path` that is one of the `inputs` or (a `folder` replaced as a
    whole) holds one."""
    name = "{" + param + "}"
    for what, given in inputs:
        words = what.replace("_", " ")
        if _same(path, given):
            raise OutputError(
                f"{name} {path}: it is the input {words} ({{{what}}} {given}); writing it would"
                " destroy the input, so choose another path",
                params=(param, what),
            )
        if folder and _inside(given, path):
            raise OutputError(
                f"{name} {path}: holds the input {words} ({{{what}}} {given}), which replacing"
                " the folder would delete; choose another folder",
                params=(param, what),
            )


def check_output_folder(path: str | Path, param: str = "out", inputs: InputPaths = ()) -> bool:
    """Check up front that `path` can become an output folder that hwsim replaces as a whole:
    it holds no input, it is absent, empty or holds only files its manifest lists, no other
    hwsim run is writing it, and it can be created. Temporary folders of killed runs beside
    it are removed. Returns whether earlier results are there. Raises OutputError naming the
    parameter `param` and the path."""
    path = Path(path)
    name = "{" + param + "}"
    check_inputs(path, param, inputs, folder=True)
    if path.exists() and not path.is_dir():
        raise OutputError(
            f"{name} {path}: exists and is not a folder; give a folder to write into",
            params=(param,),
        )
    live = remove_stale_temps(path.absolute().parent, path.name)
    if path.is_dir():
        live += remove_stale_temps(path)
    if live:
        raise OutputError(
            f"{name} {path}: another hwsim run (process {live[0][1]}) is writing it; wait for it"
            " or choose another folder",
            params=(param,),
        )
    if path.is_dir():
        foreign = _foreign(path)
        if foreign:
            more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            raise OutputError(
                f"{name} {path}: holds {', '.join(foreign[:5])}{more}, which hwsim did not write"
                f" (not in its {MANIFEST}); hwsim replaces the whole folder, so give a new or"
                " empty folder",
                params=(param,),
            )
    check_writable(path, param)  # replacing it renames there
    return path.is_dir() and any(e != MANIFEST for e in _entries(path))


def check_output_file(
    path: str | Path,
    param: str,
    inputs: InputPaths = (),
    ours: Callable[[Path], bool] | None = None,
    kind: str = "file",
) -> None:
    """Check up front that `path` can be written as an output file: not an input, not a
    folder, an existing file only if `ours` says hwsim wrote it (a `kind`), in a folder that
    can be written. Raises OutputError naming the parameter `param` and the path."""
    path = Path(path)
    name = "{" + param + "}"
    check_inputs(path, param, inputs, folder=False)
    if path.is_dir():
        raise OutputError(f"{name} {path}: is a folder; give the {kind} to write", params=(param,))
    if path.exists() and ours is not None and not ours(path):
        raise OutputError(
            f"{name} {path}: exists and is not a {kind} that hwsim wrote; replacing it would"
            " destroy it, so choose another path (or delete it)",
            params=(param,),
        )
    check_writable(path, param)


def check_disjoint(folders: Sequence[tuple[str, Path]], files: Sequence[tuple[str, Path]]) -> None:
    """Refuse outputs that land on each other: a file inside (or at) a folder that is replaced
    as a whole, or two outputs at one path."""
    everything = [*folders, *files]
    for i, (p, a) in enumerate(everything):
        for q, b in everything[i + 1 :]:
            if _same(a, b):
                raise OutputError(
                    f"{{{p}}} and {{{q}}} are the same path {a}; give each its own",
                    params=(p, q),
                )
    for p, folder in folders:
        for q, file in [*files, *((n, f) for n, f in folders if f != folder)]:
            if _inside(file, folder):
                raise OutputError(
                    f"{{{q}}} {file} is inside {{{p}}} {folder}, which hwsim replaces as a whole;"
                    f" put it elsewhere (or leave {{{q}}} out)",
                    params=(q, p),
                )


# --------------------------------------------------------------------------- folders


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder to write outputs into; on success it gets a manifest
    of its files and replaces `path` as a whole, so `path` holds either the complete earlier
    results or the complete new ones, never a mix. On any exception `path` is left as it was
    and the temporary folder removed; a full disk is an `OutputError` naming the path and
    the space."""
    path = Path(path)
    check_output_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        _mode(tmp, folder=True)
        yield tmp
        _write_manifest(tmp, _entries(tmp) - {MANIFEST})
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=path.parent))
            os.rename(path, old / "previous")
        os.rename(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        if e.errno in DISK_FULL:
            raise disk_full(path, _size(tmp)) from e
        raise
    except OutputError as e:  # a file inside ran out of space: name the folder instead
        if str(tmp) not in e.template:
            raise
        raise OutputError(e.template.replace(str(tmp), str(path)), params=e.params) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """`frame` as a CSV file at `path` (no index, floats to 10 significant digits), written
    atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g")
