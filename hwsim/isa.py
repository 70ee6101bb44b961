"""Instruction-set narrowing: the environment under which torch (ATen, oneDNN, MKL) and Numba
dispatch and compile for a narrower CPU than the host's, so that a machine with AVX-512 stands
in for one with AVX2 only (or SSE4.2 only).

Set before torch or Numba is imported (they read it once): a subprocess's environment, or a
script that re-executes itself (bench/engine.py --isa). Used by tests/test_reproducible.py
(same bytes on every instruction set) and bench/engine.py (the engine's speed on an AVX2
target). Imports nothing heavy: llvmlite's host query only, when Numba's features are asked for.
"""

from __future__ import annotations

from enum import StrEnum


class Isa(StrEnum):
    """A narrowest instruction set to dispatch and compile for."""

    AVX2 = "avx2"
    SSE4 = "sse4"


TORCH_ISA: dict[Isa, dict[str, str]] = {
    Isa.AVX2: {
        "ATEN_CPU_CAPABILITY": "avx2",
        "DNNL_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
    Isa.SSE4: {
        "ATEN_CPU_CAPABILITY": "default",
        "DNNL_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    },
}
"""torch's own kernels (ATen), its conv library (oneDNN) and its BLAS (MKL), narrowed."""

ATEN_REPORTS: dict[Isa, str] = {Isa.AVX2: "AVX2", Isa.SSE4: "DEFAULT"}
"""What `torch.backends.cpu.get_cpu_capability()` reports once narrowed."""

NUMBA_CPU: dict[Isa, str] = {Isa.AVX2: "haswell", Isa.SSE4: "nehalem"}
"""The LLVM CPU Numba compiles for (its scheduling model and default features)."""

_WIDER: dict[Isa, tuple[str, ...]] = {
    Isa.AVX2: ("avx512", "amx", "avxvnni", "avx10", "avxifma", "avxneconvert"),
    Isa.SSE4: ("avx", "fma", "f16c", "amx", "vaes", "vpclmulqdq", "gfni"),
}
"""LLVM feature prefixes beyond each instruction set, switched off in Numba's features."""


def narrowed_features(isa: Isa, host_features: str) -> str:
    """`host_features` (LLVM's comma-separated +/- list) with every feature wider than `isa`
    switched off: Numba then vectorises for `isa` and hwsim's kernels choose their register
    blocks for it (`hwsim.engine._llvm.vector_registers`)."""
    out = []
    for feature in filter(None, host_features.split(",")):
        name = feature[1:]
        out.append("-" + name if feature[0] == "+" and name.startswith(_WIDER[isa]) else feature)
    return ",".join(out)


def environment(isa: Isa, host_features: str | None = None) -> dict[str, str]:
    """Environment variables that narrow torch and Numba to `isa` (`host_features`: LLVM's
    list for this CPU, queried from llvmlite when None)."""
    if host_features is None:
        import llvmlite.binding as llvm

        host_features = llvm.get_host_cpu_features().flatten()
    return {
        **TORCH_ISA[isa],
        "NUMBA_CPU_NAME": NUMBA_CPU[isa],
        "NUMBA_CPU_FEATURES": narrowed_features(isa, host_features),
    }
