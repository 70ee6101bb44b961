"""hwsim: SNN hardware/algorithm co-design simulator for RRAM compute-in-memory accelerators.

The Python API is `hwsim.api`'s, also reachable from here (docs/api.md)::

    import hwsim
    result = hwsim.run(hwsim.RunConfig(arch=..., model=...))

Its names load on first use, so `import hwsim` (and `hwsim --help`) loads neither torch nor
numba.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = (
    "CodesignConfig",
    "EvaluationConfig",
    "Executor",
    "ExploreConfig",
    "GridConfig",
    "RunConfig",
    "Session",
    "SimConfig",
    "SweepConfig",
    "ablation",
    "calibrate",
    "convert",
    "estimate",
    "explore",
    "export",
    "functional",
    "map",
    "profile",
    "run",
    "sweep",
    "sweep_grid",
    "trace",
    "train",
    "tune",
)
"""`hwsim.api.__all__` (tests/test_outputs_doc.py checks that the two agree)."""

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """An API name, from `hwsim.api` (imported on first use)."""
    if name in _API:
        # by name, not an import statement: the package root sits above every layer of the
        # import contracts, which see every `import` (the stages import `__version__` from here)
        return getattr(importlib.import_module("hwsim.api"), name)
    raise AttributeError(f"module 'hwsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
