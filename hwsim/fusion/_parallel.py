"""Running a compiled kernel over timesteps on all cores (the fusion searches' thread pool)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol


class RangeKernel(Protocol):
    def __call__(self, t0: int, t1: int) -> object: ...


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def over_timesteps(n_t: int, kernel: RangeKernel, chunk: int = 32) -> None:
    """Run kernel(t0, t1) over [0, n_t) in chunks on a thread pool (the Numba kernels release
    the GIL; each writes only its own timesteps' outputs). Small chunks balance the load:
    later timesteps cost more in empirical Bayes (more distinct counts)."""
    spans = [(t0, min(n_t, t0 + chunk)) for t0 in range(0, n_t, chunk)]
    workers = min(_cpus(), len(spans))
    if workers <= 1:
        for t0, t1 in spans:
            kernel(t0, t1)
        return
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(kernel, t0, t1) for t0, t1 in spans]:
            f.result()
