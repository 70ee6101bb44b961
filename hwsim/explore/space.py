"""The design space of an exploration: knobs on any key of the architecture YAML, and the points
(one value per knob, plus an IC position) built as variants of a base architecture.

A knob is `KEY=v1,v2,...` or `KEY=lo:hi` (integers lo..hi), KEY a dotted key path of the arch
schema (`crossbar.rows`, `adc.bits`, `noc.flit_width_bits`; docs/arch-config.md). Values are
read as YAML scalars (`64`, `0.5`, `null`, `event`). Every knob and value is checked through the
schema before any work (`check_knobs`): an unknown key (with the closest valid keys) and a value
the key itself refuses (type, range) are `InputError`s naming the knob. A value that is only
wrong together with another key (`adc.columns_per_adc` must divide `crossbar.cols`) makes the
points that combine them invalid, recorded with the loader's reason (`build_variant`).
"""

from __future__ import annotations

import difflib
import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from hwsim.errors import InputError
from hwsim.hw.arch import ArchConfigError, Architecture, parse_arch, schema_keys

IC_KNOB = "ic"
"""The knob name of the IC position in points and CSV columns."""
LABEL_KEYS = ("name", "source", "notes")
"""Keys that label an architecture and change no result (left out of a point's store key):
no knob."""
MAX_KNOB_VALUES = 1_000
"""Values one knob may take (each is checked through the arch loader, ~3 ms)."""
MAX_GRID_POINTS = 10_000
"""Points a grid search may have; larger spaces take random:N or nsga2:N, which never list
the whole grid."""


@dataclass(frozen=True)
class Knob:
    """One architecture key and the values an exploration gives it."""

    key: str  # dotted key path of the arch schema
    values: tuple[Any, ...]  # YAML scalars, in the order given

    @classmethod
    def parse(cls, text: str) -> Knob:
        """`KEY=v1,v2,...` or `KEY=lo:hi` (integers, both ends included)."""
        key, sep, spec = text.partition("=")
        key, spec = key.strip(), spec.strip()
        if not sep or not key or not spec:
            raise InputError(
                f"{{vary}} {text!r}: expected KEY=v1,v2,... or KEY=lo:hi", params=("vary",)
            )
        lo, colon, hi = spec.partition(":")
        if colon:
            try:
                a, b = int(lo), int(hi)
            except ValueError:
                raise InputError(
                    f"{{vary}} {text!r}: a range lo:hi takes integers", params=("vary",)
                ) from None
            if a > b:
                raise InputError(f"{{vary}} {text!r}: empty range {a}:{b}", params=("vary",))
            if b - a + 1 > MAX_KNOB_VALUES:
                raise InputError(
                    f"{{vary}} {text!r}: {b - a + 1} values; a knob takes at most"
                    f" {MAX_KNOB_VALUES} (give fewer, e.g. KEY=v1,v2,...)",
                    params=("vary",),
                )
            return cls(key, tuple(range(a, b + 1)))
        if spec.count(",") >= MAX_KNOB_VALUES:
            raise InputError(
                f"{{vary}} {key}: more than {MAX_KNOB_VALUES} values", params=("vary",)
            )
        values = tuple(_scalar(v.strip(), text) for v in spec.split(","))
        if len(set(map(repr, values))) != len(values):
            raise InputError(f"{{vary}} {text!r}: a value given twice", params=("vary",))
        return cls(key, values)


def _scalar(text: str, whole: str) -> Any:
    """One value as YAML reads it (`64` int, `1e-6` float, `null`, `event` str)."""
    if not text:
        raise InputError(f"{{vary}} {whole!r}: an empty value", params=("vary",))
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    if isinstance(value, str) and _is_float(value):
        value = float(value)  # YAML 1.1 reads 1e-6 as a string; the arch loader reads 1.2
    if isinstance(value, list | dict):
        raise InputError(f"{{vary}} {whole!r}: {text!r} is not a scalar", params=("vary",))
    return value


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def leaf_keys() -> list[str]:
    """Every key of the arch schema that holds a value (not a section), dotted."""
    paths = [k for k, _ in schema_keys()]
    return [k for k in paths if not any(p.startswith(k + ".") for p in paths)]


def with_value(mapping: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A deep copy of `mapping` with the dotted `key` set to `value` (sections created when
    absent or null)."""
    out = _copy(mapping)
    node = out
    *parents, last = key.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value
    return out


def _copy(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _copy(v) for k, v in obj.items()}
    return obj


def _mentions_other_key(message: str, key: str, keys: Sequence[str]) -> bool:
    """Whether a loader message names another schema key (a cross-field check)."""
    return any(k != key and k in message for k in keys)


def check_knobs(base: Mapping[str, Any], knobs: Sequence[Knob], source: str) -> None:
    """Refuse, before any work, a knob on an unknown key, a key given twice, or a value the
    key itself refuses (each value set alone on `base`, validated by the arch loader)."""
    keys = leaf_keys()
    seen: set[str] = set()
    for knob in knobs:
        if knob.key in LABEL_KEYS:
            raise InputError(
                f"{{vary}} {knob.key}: a label of the architecture, which changes no result;"
                " vary a key that describes the chip",
                params=("vary",),
            )
        if knob.key not in keys:
            near = difflib.get_close_matches(knob.key, keys, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise InputError(
                f"{{vary}} {knob.key}: not a key of the architecture schema{hint}"
                " (docs/arch-config.md lists them)",
                params=("vary",),
            )
        if knob.key in seen:
            raise InputError(f"{{vary}} {knob.key}: varied twice", params=("vary",))
        seen.add(knob.key)
        for value in knob.values:
            try:
                parse_arch(with_value(base, knob.key, value), source)
            except ArchConfigError as e:
                if e.key == knob.key and not _mentions_other_key(str(e), knob.key, keys):
                    raise InputError(
                        f"{{vary}} {knob.key}={value!r}: {e}", params=("vary",)
                    ) from None


@dataclass(frozen=True)
class Point:
    """One design point: a value per knob (in the knobs' order) and an IC position."""

    values: tuple[Any, ...]
    ic: int

    def knobs(self, knobs: Sequence[Knob]) -> dict[str, Any]:
        """{key: value} of the knobs, then the IC."""
        out = {k.key: v for k, v in zip(knobs, self.values, strict=True)}
        return {**out, IC_KNOB: self.ic}


@dataclass(frozen=True)
class Space:
    """The base architecture (as a mapping), the knobs and the IC positions of an exploration."""

    base: dict[str, Any]
    source: str  # the base file, named in messages
    knobs: tuple[Knob, ...]
    ics: tuple[int, ...]

    @property
    def size(self) -> int:
        """Points in the full grid."""
        n = len(self.ics)
        for k in self.knobs:
            n *= len(k.values)
        return n

    def grid(self) -> Iterator[Point]:
        """Every point, knobs varying slowest first, the IC fastest."""
        for values in itertools.product(*(k.values for k in self.knobs)):
            for ic in self.ics:
                yield Point(tuple(values), ic)

    def sample(self, n: int, seed: int) -> list[Point]:
        """`n` distinct points drawn uniformly from the grid (all of it when n >= its size),
        in grid order; `seed` seeds the draw (the grid is never listed)."""
        indices = range(self.size)
        chosen = sorted(random.Random(seed).sample(indices, min(n, self.size)))
        return [self.point(i) for i in chosen]

    def point(self, index: int) -> Point:
        """The `index`th point of `grid()` (mixed-radix digits, the IC fastest)."""
        index, ic = divmod(index, len(self.ics))
        values = []
        for knob in reversed(self.knobs):
            index, j = divmod(index, len(knob.values))
            values.append(knob.values[j])
        return Point(tuple(reversed(values)), self.ics[ic])

    def variant(self, point: Point) -> dict[str, Any]:
        """The architecture mapping of `point` (its name tagged with the knob values)."""
        mapping = dict(self.base)
        for knob, value in zip(self.knobs, point.values, strict=True):
            mapping = with_value(mapping, knob.key, value)
        tag = ",".join(f"{k.key}={v}" for k, v in zip(self.knobs, point.values, strict=True))
        mapping["name"] = f"{self.base.get('name', 'arch')} [{tag}]" if tag else mapping["name"]
        return mapping

    def build(self, point: Point) -> Architecture | str:
        """The validated architecture of `point`, or the loader's reason it is invalid."""
        try:
            return parse_arch(self.variant(point), self.source)
        except ArchConfigError as e:
            return f"out of range: {e}"
