"""Objectives, constraints and the Pareto filter of an exploration.

An objective is a column of points.csv with a sense (accuracy is maximised, energy, latency and
area minimised); a constraint is `COLUMN<=VALUE` (or `>=`, `<`, `>`) on any numeric column; the
front is the set of valid points no other valid point dominates (at least as good in every
objective and better in one).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from hwsim.errors import InputError


class Objective(StrEnum):
    """What an exploration trades; the value is the name on the command line."""

    ACCURACY = "accuracy"  # at the method's operating point, fraction (maximised)
    ENERGY = "energy"  # per inference to the operating point, pJ (minimised)
    LATENCY = "latency"  # to the operating point's output, ns (minimised)
    AREA = "area"  # of the chip, mm^2 (minimised)

    @property
    def column(self) -> str:
        """Its column in points.csv."""
        return OBJECTIVE_COLUMNS[self]

    @property
    def maximise(self) -> bool:
        return self is Objective.ACCURACY


OBJECTIVE_COLUMNS = {
    Objective.ACCURACY: "accuracy",
    Objective.ENERGY: "energy_pj",
    Objective.LATENCY: "latency_ns",
    Objective.AREA: "area_mm2",
}


def parse_objectives(text: str) -> tuple[Objective, ...]:
    """`accuracy,energy,...` -> objectives (at least two, distinct)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    allowed = ", ".join(o.value for o in Objective)
    out = []
    for name in names:
        try:
            out.append(Objective(name))
        except ValueError:
            raise InputError(
                f"{{objectives}} {name!r}: expected some of {allowed}", params=("objectives",)
            ) from None
    if len(out) < 2 or len(set(out)) != len(out):
        raise InputError(
            f"{{objectives}} {text!r}: give two or more distinct objectives of {allowed}",
            params=("objectives",),
        )
    return tuple(out)


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """`column op value` on a numeric column of points.csv."""

    column: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        m = _CONSTRAINT.match(text)
        if m is None:
            raise InputError(
                f"{{constraint}} {text!r}: expected COLUMN<=VALUE (or >=, <, >), e.g. area_mm2<=20",
                params=("constraint",),
            )
        try:
            value = float(m.group(3))
        except ValueError:
            raise InputError(
                f"{{constraint}} {text!r}: {m.group(3)!r} is not a number", params=("constraint",)
            ) from None
        return cls(m.group(1), m.group(2), value)

    def __str__(self) -> str:
        return f"{self.column}{self.op}{self.value:g}"

    def holds(self, row: Mapping[str, object]) -> bool:
        """Whether the point's value satisfies the constraint (a missing value does not)."""
        v = row.get(self.column)
        if not isinstance(v, int | float) or v != v:
            return False
        return _OPS[self.op](float(v), self.value)


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a dominates b, both already in minimisation form."""
    return bool(np.all(a <= b) and np.any(a < b))


def minimisation(values: np.ndarray, objectives: Sequence[Objective]) -> np.ndarray:
    """(N, K) objective values with the maximised ones negated."""
    signs = np.array([-1.0 if o.maximise else 1.0 for o in objectives])
    return np.asarray(values, np.float64) * signs


def pareto_mask(values: np.ndarray, objectives: Sequence[Objective]) -> np.ndarray:
    """(N,) bool: the rows of `values` (N, K) no other row dominates. Sorted sweep: a row can
    only be dominated by one before it in lexicographic order, so each is tested against the
    front kept so far (O(N F K)). Equal rows are all kept."""
    x = minimisation(values, objectives)
    order = np.lexsort(x.T[::-1])
    front: list[int] = []
    keep = np.zeros(len(x), bool)
    for i in order:
        if not any(dominates(x[j], x[i]) for j in front):
            front.append(i)
            keep[i] = True
    return keep
