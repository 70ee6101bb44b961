"""Arrays in memory-mapped `.npy` files whose pages are let go after use, so that an array
larger than what a run should hold is written or read a range at a time: the engine's result
arrays spilled to a folder while it simulates (`simulate(..., spill=)`), a read trace's
per-image activity (`hwsim.engine.trace.read_images`).

A page of a file mapping counts in a process's resident memory while it is mapped; letting
the mapping's pages go (MADV_DONTNEED) unmaps them: the data stay in the file (a shared
mapping's written pages are the page cache's, written back by the kernel) and are read again
if touched.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np


def file_mapping(array: np.ndarray) -> mmap.mmap | None:
    """The memory mapping of a file that `array` (or the array it views) lies in, None for an
    array in memory."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    return base if isinstance(base, mmap.mmap) else None


def let_go(array: np.ndarray) -> None:
    """Unmap the resident pages of the file `array` lies in (nothing for an array in memory)."""
    mapping = file_mapping(array)
    dontneed = getattr(mmap, "MADV_DONTNEED", None)
    if mapping is not None and dontneed is not None:
        mapping.madvise(dontneed)


def zeros(folder: Path | None, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A zero array of `shape`: in memory without a `folder`, else memory-mapped from
    folder/name.npy (a sparse file: untouched pages take neither memory nor disk)."""
    if folder is None:
        return np.zeros(shape, dtype)
    return np.lib.format.open_memmap(Path(folder) / f"{name}.npy", "w+", dtype, shape)


def chunked_max(array: np.ndarray, rows: int) -> int:
    """`array.max()` (0 if empty), read `rows` rows at a time, each range's pages let go."""
    top = 0
    for a in range(0, len(array), max(1, rows)):
        part = array[a : a + rows]
        if part.size:
            top = max(top, int(part.max()))
        let_go(array)
    return top
