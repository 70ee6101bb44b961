"""LLVM IR building blocks of the engine's vector intrinsics (`hwsim.engine._kernels`): vector
pointers into arrays, broadcasts, fused multiply-adds, and counted loops that carry values
(partial sums kept in registers) from one trip to the next.

The IR is written against llvmlite's typed-pointer API and Numba's intrinsic and array-model
internals, which change between releases: `require_supported` refuses, before anything is
compiled, a numba or llvmlite outside the releases the kernels were tested with (`SUPPORTED`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import llvmlite
import numba
from llvmlite import ir
from numba.core import cgutils, config
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic

from hwsim.errors import HwsimError

I32 = ir.IntType(32)

SUPPORTED = {"numba": ((0, 68), (0, 69)), "llvmlite": ((0, 50), (0, 51))}
"""Releases the kernels are tested with, per package: (lowest, first one past) as (major,
minor), the lowest included. Widen together with pyproject.toml's pins after running
tests/test_engine.py, tests/test_crossbar.py and tests/test_functional.py on the new release."""


class UnsupportedDependency(HwsimError):
    """numba or llvmlite outside the releases the engine's kernels were tested with."""


def installed() -> dict[str, str]:
    """The installed versions of the packages in SUPPORTED."""
    return {"numba": numba.__version__, "llvmlite": llvmlite.__version__}


def require_supported(versions: Mapping[str, str] | None = None) -> None:
    """Refuse (UnsupportedDependency) `versions` (default: `installed()`) where one lies
    outside SUPPORTED, naming the installed and the supported releases."""
    versions = installed() if versions is None else versions
    outside = []
    for name, (low, high) in SUPPORTED.items():
        found = re.match(r"(\d+)\.(\d+)", versions[name])
        release = (int(found[1]), int(found[2])) if found else (-1, -1)
        if not low <= release < high:
            outside.append(f"{name} {versions[name]} is installed, {supported(name)} supported")
    if outside:
        pins = " ".join(f"'{name}{supported(name)}'" for name in SUPPORTED)
        raise UnsupportedDependency(
            f"{'; '.join(outside)}: the engine's kernels emit LLVM IR tested with those"
            f" releases only; install them: pip install {pins}"
        )


def supported(name: str) -> str:
    """The releases of package `name` in SUPPORTED as a pip requirement, e.g. ">=0.68,<0.69"."""
    low, high = SUPPORTED[name]
    return f">={low[0]}.{low[1]},<{high[0]}.{high[1]}"


def target_features() -> str:
    """The LLVM features the kernels are compiled for, as Numba compiles them:
    NUMBA_CPU_FEATURES if set (e.g. an AVX2 build on an AVX-512 machine), else the host's."""
    return config.CPU_FEATURES or get_host_cpu_features()


def vector_registers() -> int:
    """Vector registers of the compile target (`target_features`): 32 with AVX-512 (zmm0-31),
    else 16 (ymm0-15 with AVX2). A <16 x float> takes one AVX-512 register, two AVX2 ones."""
    return 32 if "+avx512f" in target_features().split(",") else 16


def named_intrinsic(typer: Callable, name: str):
    """A Numba intrinsic from a factory-made typing function, under `name` (one per
    specialisation, e.g. `_row_sum8`)."""
    typer.__name__ = name
    return intrinsic(typer)


def float_vector(lanes: int) -> ir.VectorType:
    """<lanes x float>."""
    return ir.VectorType(ir.FloatType(), lanes)


def data(context, builder, signature, args, *positions: int) -> list[ir.Value]:
    """The data pointers of the array arguments at `positions` of an intrinsic's call."""
    return [
        context.make_array(signature.args[i])(context, builder, args[i]).data for i in positions
    ]


def const(like: ir.Value, value: int) -> ir.Constant:
    """An integer constant of `like`'s type."""
    return ir.Constant(like.type, value)


def vector_at(builder, base: ir.Value, index: ir.Value, vty: ir.VectorType) -> ir.Value:
    """A pointer to the vector of type vty that starts at element `index` of `base`."""
    return builder.bitcast(builder.gep(base, [index]), vty.as_pointer())


def load_at(builder, base: ir.Value, index: ir.Value, vty: ir.VectorType, offset: int = 0):
    """The vector of type vty at element index + offset of `base` (unaligned load)."""
    at = builder.add(index, const(index, offset)) if offset else index
    return builder.load(vector_at(builder, base, at, vty), align=4)


def splat(builder, x: ir.Value, vty: ir.VectorType) -> ir.Value:
    """A vector of vty with x in every lane."""
    v = ir.Constant(vty, ir.Undefined)
    for i in range(vty.count):
        v = builder.insert_element(v, x, ir.Constant(I32, i))
    return v


def fma(builder, vty: ir.VectorType) -> ir.Function:
    """LLVM's fused multiply-add on vty: fma(a, b, c) = a b + c, rounded once."""
    fn = ir.FunctionType(vty, [vty, vty, vty])
    return cgutils.get_or_insert_function(builder.module, fn, f"llvm.fma.v{vty.count}f32")


def counted_loop(
    builder,
    start: ir.Value,
    stop: ir.Value,
    carried: Sequence[ir.Value],
    body: Callable[[ir.Value, list[ir.Value]], list[ir.Value]],
    name: str,
    step: int = 1,
) -> list[ir.Value]:
    """for i in range(start, stop, step): carried = body(i, carried); returns the final
    carried values (their phis at the loop's exit). `body` may add blocks of its own."""
    pre = builder.block
    head = builder.append_basic_block(f"{name}.head")
    loop = builder.append_basic_block(f"{name}.body")
    done = builder.append_basic_block(f"{name}.done")
    builder.branch(head)
    builder.position_at_end(head)
    i = builder.phi(start.type)
    i.add_incoming(start, pre)
    phis = []
    for c in carried:
        phi = builder.phi(c.type)
        phi.add_incoming(c, pre)
        phis.append(phi)
    builder.cbranch(builder.icmp_signed("<", i, stop), loop, done)
    builder.position_at_end(loop)
    new = body(i, phis)
    end = builder.block
    i.add_incoming(builder.add(i, const(i, step)), end)
    for phi, value in zip(phis, new, strict=True):
        phi.add_incoming(value, end)
    builder.branch(head)
    builder.position_at_end(done)
    return phis


def accumulate(
    builder,
    cur: ir.Value,
    starts: Sequence[ir.Value],
    nv: int,
    vty: ir.VectorType,
    loop: Callable[[list[ir.Value]], list[ir.Value]],
) -> None:
    """Partial sums in registers: the nv vectors of vty at each of `starts` in the float array
    `cur` are loaded, `loop` turns them (all, in order) into their sums, which are stored back:
    one load and one store of the currents whatever the loop adds."""
    ptrs = [
        vector_at(builder, cur, builder.add(s, const(s, v * vty.count)), vty)
        for s in starts
        for v in range(nv)
    ]
    sums = loop([builder.load(p, align=4) for p in ptrs])
    for p, total in zip(ptrs, sums, strict=True):
        builder.store(total, p, align=4)
