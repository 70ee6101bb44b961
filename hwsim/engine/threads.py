"""The threads the engine's kernels run on, read without importing them."""

from __future__ import annotations

import os


def default_threads() -> int:
    """NUMBA_NUM_THREADS if set, else the CPUs this process may run on."""
    env = os.environ.get("NUMBA_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
