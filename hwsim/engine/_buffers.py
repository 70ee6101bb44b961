"""Large engine buffers kept for reuse across `simulate` calls.

numpy asks the kernel for transparent huge pages for arrays from 4 MiB, and the kernels run
about 8% faster on them (a full-width VGG19 at 32x32: 650-690 ms for 4 images x 64 steps,
690-760 ms on 4 KiB pages). But when other work has fragmented memory, the first write to a
new huge-page array makes the kernel compact memory: the 80 MB of that network's weight rows
took 231 ms to allocate and fill after the peer simulators of bench/engine.py had run, 17-31
ms otherwise. So a buffer of at least MIN_BYTES stays here when its last array is dropped,
and the next request that fits takes it with its pages in place. At most KEEP_BYTES are kept;
`drop_kept` gives them back.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

MIN_BYTES = 4 << 20
KEEP_BYTES = 1 << 30

_lock = threading.Lock()
_kept: list[np.ndarray] = []  # uint8 buffers, the most recently taken last


def _unreferenced_count() -> int:
    """What sys.getrefcount says, on this interpreter, of a list's item nothing else refers to
    (2 on CPython 3.11: the list's reference and the call's own)."""
    probe = [np.empty(1, np.uint8)]
    return sys.getrefcount(probe[0])


_UNREFERENCED = _unreferenced_count()


def _free(i: int) -> bool:
    """Whether no array uses _kept[i]: every view of a buffer holds a reference to it (its
    base), so only the list refers to a free one."""
    return sys.getrefcount(_kept[i]) == _UNREFERENCED


def _total() -> int:
    return sum(b.nbytes for b in _kept)


def take(nbytes: int) -> np.ndarray:
    """A uint8 buffer of at least `nbytes` (contents undefined): a kept one that no array uses
    and that is at most twice as large, else a new one (kept if it has MIN_BYTES)."""
    if nbytes < MIN_BYTES:
        return np.empty(nbytes, np.uint8)
    with _lock:
        for i in range(len(_kept)):
            if nbytes <= _kept[i].nbytes <= 2 * nbytes and _free(i):
                _kept.append(_kept.pop(i))
                return _kept[-1]
        buf = np.empty(nbytes, np.uint8)
        _kept.append(buf)
        while _total() > KEEP_BYTES and len(_kept) > 1:
            _kept.pop(0)  # an array still using it keeps it alive; it is only not reused
        return buf


def kept_bytes() -> int:
    """Bytes of the buffers kept for reuse (in use or not)."""
    with _lock:
        return _total()


def drop_kept() -> None:
    """Stop keeping buffers: each is freed when no array uses it."""
    with _lock:
        _kept.clear()
