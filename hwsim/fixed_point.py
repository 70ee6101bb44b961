"""The fixed-point read-out that the fusion stage tunes and the fusion unit computes: one
definition each, below both (`hwsim.fusion` and `hwsim.hw` do not import each other).

`FixedPoint`: an unsigned int_bits.frac_bits format. `AlphaLUT`: the alpha(t) table as the chip
stores it (breakpoints and codes) with the float and the fixed-point interpolations of it.
`FixedDecisions`: a read-out's class and confidence per image and timestep, what the fusion
unit gives (`hwsim.hw.fusion_unit`) for a chunk of images. `DecisionRecords`: the same read-out
reduced to what a stop rule is tuned on and applied to (`hwsim.fusion.stop_rules`), per image
its records of running-maximum confidence and its last step: held for a whole image set, its
size grows with the images and their records, not with images x timesteps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.errors import InputError
from hwsim.methods import TieRule, Ties, image_ids_of, top_credit

MAX_LUT_BITS = 62
"""The widest LUT format: its codes, shifted by the unit's extra bits, stay in int64."""


@dataclass(frozen=True)
class FixedPoint:
    """Unsigned fixed-point format: int_bits.frac_bits; LSB = 2^-frac_bits."""

    int_bits: int = 14
    frac_bits: int = 8

    def __post_init__(self) -> None:
        if self.int_bits < 0 or self.frac_bits < 0 or self.int_bits + self.frac_bits < 1:
            raise InputError(
                f"fixed point {self.int_bits}.{self.frac_bits}: expected int_bits, frac_bits"
                " >= 0 and at least one bit"
            )
        if self.int_bits + self.frac_bits > MAX_LUT_BITS:
            raise InputError(
                f"fixed point {self.int_bits}.{self.frac_bits}: at most {MAX_LUT_BITS} bits"
            )

    @property
    def bits(self) -> int:
        return self.int_bits + self.frac_bits

    @property
    def lsb(self) -> float:
        return 2.0**-self.frac_bits

    @property
    def max_code(self) -> int:
        return (1 << self.bits) - 1

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Round to the nearest code (half up), saturating at 0 and max_code: int64 codes."""
        codes = np.floor(np.asarray(x, np.float64) / self.lsb + 0.5)
        return np.clip(codes, 0, self.max_code).astype(np.int64)


@dataclass(frozen=True)
class AlphaLUT:
    """The fusion unit's alpha table: breakpoints t_k (timesteps, strictly increasing, >= 1) and
    unsigned codes A_k in `fmt` (alpha_k = A_k LSB), with the `method` and `estimator` of the
    schedule it approximates (labels: `hwsim.fusion` reads them).

    Called, alpha(t) = np.interp(t, t_k, A_k LSB) in float64: the float reference, for which
    the unit interpolates with enough internal bits that only the stored codes are rounded
    (|alpha_LUT(t) - pwl(t)| <= LSB / 2 for unsaturated values). `alpha_codes` is the unit's
    own fixed-point interpolation (`hwsim.hw.fusion_unit`).
    """

    t: np.ndarray  # (K,) int64
    codes: np.ndarray  # (K,) int64
    fmt: FixedPoint = field(default_factory=FixedPoint)
    method: str = "lut"
    estimator: str = "mean"

    def __post_init__(self) -> None:
        t = np.asarray(self.t, np.int64)
        codes = np.asarray(self.codes, np.int64)
        if t.ndim != 1 or t.size == 0 or t.shape != codes.shape:
            raise InputError("alpha LUT: expected equal-length, non-empty 1-D 't' and 'codes'")
        if t[0] < 1 or np.any(np.diff(t) <= 0):
            raise InputError("alpha LUT: breakpoints 't' must be >= 1 and strictly increasing")
        if np.any(codes < 0) or np.any(codes > self.fmt.max_code):
            raise InputError(f"alpha LUT: 'codes' outside [0, {self.fmt.max_code}]")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "codes", codes)

    @property
    def alpha(self) -> np.ndarray:
        """Stored alpha at the breakpoints (codes x LSB)."""
        return self.codes * self.fmt.lsb

    def __call__(self, t: np.ndarray | int) -> np.ndarray:
        """alpha(t) interpolated in float64 from the decoded codes, constant outside."""
        return np.interp(np.asarray(t, np.float64), self.t, self.alpha)

    def decoded_alpha(self, timesteps: int) -> np.ndarray:
        """alpha(t) for t = 1..timesteps (the call's): (T,) float64."""
        return self(np.arange(1, timesteps + 1))

    def slopes(self, slope_frac_bits: int) -> np.ndarray:
        """Per-segment slopes S_k = (A_{k+1} - A_k) 2^s / (t_{k+1} - t_k), rounded half up
        (towards +inf) to integers, s = slope_frac_bits: (K - 1,) int64, signed."""
        d_code = np.diff(self.codes)
        length = np.diff(self.t)
        return (2 * (d_code << slope_frac_bits) + length) // (2 * length)  # floor(x + 1/2)

    def alpha_codes(self, timesteps: int, slope_frac_bits: int, extra_bits: int = 0) -> np.ndarray:
        """a(t), t = 1..timesteps, as the fusion unit interpolates it, in units of
        2^-(frac_bits + extra_bits): (A_k << e) + ((S_k (t - t_k) + 2^(s-e-1)) >> (s - e))
        between breakpoints (rounded half up; exact if e = s), A_1 << e before t_1, A_K << e
        from t_K on; clipped to [0, fmt.max_code << e] (a no-op when 2^s >= the longest segment).
        (T,) int64."""
        s, e = slope_frac_bits, extra_bits
        if not 0 <= e <= s:
            raise InputError(f"alpha extra fraction bits {e}: expected 0..{s} (the slope bits)")
        t = np.arange(1, timesteps + 1, dtype=np.int64)
        k = np.searchsorted(self.t, t, side="right") - 1  # the last breakpoint <= t
        out = np.where(k < 0, self.codes[0], self.codes[-1]).astype(np.int64) << e
        inside = (k >= 0) & (k < self.t.size - 1)
        if np.any(inside):
            kk = k[inside]
            half = (1 << (s - e - 1)) if s > e else 0
            step = (self.slopes(s)[kk] * (t[inside] - self.t[kk]) + half) >> (s - e)
            out[inside] = (self.codes[kk] << e) + step
        return np.clip(out, 0, self.fmt.max_code << e)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (the "lut" entries of alpha_lut.json and stored tunings)."""
        return {
            "t": [int(x) for x in self.t],
            "codes": [int(x) for x in self.codes],
            "int_bits": self.fmt.int_bits,
            "frac_bits": self.fmt.frac_bits,
            "method": str(self.method),
            "estimator": str(self.estimator),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlphaLUT:
        fmt = FixedPoint(int(d["int_bits"]), int(d["frac_bits"]))
        method, estimator = str(d.get("method", "lut")), str(d.get("estimator", "mean"))
        return cls(np.asarray(d["t"]), np.asarray(d["codes"]), fmt, method, estimator)


@dataclass(frozen=True, eq=False)
class FixedDecisions:
    """One read-out's decision at every step and the confidence its stop rule compares.

    decision (N, T) int64: the class, -1 where the top score is tied (no decision);
    confidence (N, T) int64: >= 0 where decided, in `unit`s, -1 where tied (never stops).
    `rule`: the confidence's termination rule (`hwsim.hw.arch.TerminationRule`'s value);
    `clipped`: counter readings (image x step x class x head) held at the counter's maximum.
    `final_top` (N, C) bool: the classes sharing the top score at the last step, which an image
    that never stops answers with (a tie there is credited by the run's tie rule,
    `final_credit`); None if the read-out did not record them.
    """

    decision: np.ndarray
    confidence: np.ndarray
    rule: str
    unit: str  # one confidence step: "2^-F score" or "spike"
    clipped: int = 0
    final_top: np.ndarray | None = None

    @property
    def timesteps(self) -> int:
        return int(self.decision.shape[1])

    def accuracy(self, labels: np.ndarray) -> np.ndarray:
        """Fraction of images the read-out decides right at each step, before any tie rule (a
        tied step has no decision): (T,)."""
        return (self.decision == np.asarray(labels)[:, None]).mean(axis=0)

    def final_credit(
        self,
        labels: np.ndarray,
        ties: Ties,
        image_ids: np.ndarray | None = None,
        unit: int = 1,
    ) -> np.ndarray:
        """The credit of each image's answer at the last step under `ties`, in `unit`s
        (`hwsim.methods.top_credit`; image ids for the random rule default to 0..N-1): (N,)
        float64. A tie there needs `final_top` unless the rule counts it wrong."""
        return _final_credit(
            self.decision[:, -1], self.final_top, self.timesteps, labels, ties, image_ids, unit
        )

    def records(self) -> DecisionRecords:
        """This read-out as `DecisionRecords`: each image's records, the steps where its
        running maximum of confidence rises (a tied step's -1 never does), in step order."""
        conf = self.confidence
        n_img, n_t = conf.shape
        best = np.maximum.accumulate(conf, axis=1)
        rising = best > np.concatenate([np.full((n_img, 1), -1, np.int64), best[:, :-1]], axis=1)
        rec_i, rec_t = np.nonzero(rising)  # image-major, steps ascending
        offsets = np.zeros(n_img + 1, np.int64)
        np.cumsum(np.count_nonzero(rising, axis=1), out=offsets[1:])
        top_class = int(self.decision.max(initial=0))
        return DecisionRecords(
            offsets=offsets,
            step=_narrow(rec_t + 1, n_t),
            value=_narrow(conf[rec_i, rec_t], int(best[:, -1].max(initial=0))),
            decision=_narrow(self.decision[rec_i, rec_t], top_class),
            last_decision=_narrow(self.decision[:, -1], top_class),
            timesteps=n_t,
            rule=self.rule,
            unit=self.unit,
            clipped=self.clipped,
            final_top=self.final_top,
        )


def _narrow(values: np.ndarray, largest: int) -> np.ndarray:
    """`values` (all in -1..largest) in the narrowest of int16, int32, int64 holding them."""
    for dtype in (np.int16, np.int32):
        if largest <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values.astype(np.int64)


@dataclass(frozen=True, eq=False)
class DecisionRecords:
    """A read-out (`FixedDecisions`) reduced to what a stop rule needs, for N images.

    An image stops at the first step whose confidence >= Theta, so only its records count:
    the steps where its running maximum of confidence rises, each with that confidence and
    the decision there (a record is never tied: a tie's -1 never rises). Image i's records
    are `offsets[i]:offsets[i + 1]` (offsets (N + 1,) int64) of `step` (1-based, rising),
    `value` (rising, in `unit`s) and `decision` (a class); `last_decision` (N,): the class at
    step T (-1: tied), `final_top` (N, C) bool or None, `rule`, `unit`, `clipped` as in
    `FixedDecisions`. Steps, values and classes are held in the narrowest of int16, int32,
    int64 that holds them. A set pruned to one threshold (`first_reaching`) keeps at most the
    one record per image that stops it there.
    """

    offsets: np.ndarray
    step: np.ndarray
    value: np.ndarray
    decision: np.ndarray
    last_decision: np.ndarray
    timesteps: int
    rule: str
    unit: str
    clipped: int = 0
    final_top: np.ndarray | None = None

    @property
    def images(self) -> int:
        return int(self.offsets.size - 1)

    def record_images(self) -> np.ndarray:
        """The image of each record: (R,) int64."""
        return np.repeat(np.arange(self.images, dtype=np.int64), np.diff(self.offsets))

    def firsts(self) -> np.ndarray:
        """The index of each image's first record, for the images with any: int64."""
        return self.offsets[:-1][np.diff(self.offsets) > 0]

    def reaching(self, threshold: int) -> np.ndarray:
        """Per record, whether it is its image's first with value >= threshold: (R,) bool."""
        ok = self.value >= threshold
        earlier = np.zeros_like(ok)  # the record before it, in the same image, reaches it
        earlier[1:] = ok[:-1]
        earlier[self.firsts()] = False
        return ok & ~earlier

    def first_reaching(self, threshold: int | None) -> DecisionRecords:
        """These records pruned to those `threshold` stops at (None: none), at most one per
        image: the stop steps and answers at `threshold` are unchanged."""
        keep = np.zeros(self.step.size, np.bool_)
        if threshold is not None:
            keep = self.reaching(threshold)
        offsets = np.zeros_like(self.offsets)
        np.cumsum(np.bincount(self.record_images()[keep], minlength=self.images), out=offsets[1:])
        return DecisionRecords(
            offsets,
            self.step[keep],
            self.value[keep],
            self.decision[keep],
            self.last_decision,
            self.timesteps,
            self.rule,
            self.unit,
            self.clipped,
            self.final_top,
        )

    def final_credit(
        self,
        labels: np.ndarray,
        ties: Ties,
        image_ids: np.ndarray | None = None,
        unit: int = 1,
    ) -> np.ndarray:
        """`FixedDecisions.final_credit` of the read-out these records reduce: (N,) float64."""
        return _final_credit(
            self.last_decision, self.final_top, self.timesteps, labels, ties, image_ids, unit
        )

    @classmethod
    def concatenate(cls, parts: Sequence[DecisionRecords]) -> DecisionRecords:
        """One set of the images of `parts` (consecutive chunks of one read-out), in order."""
        first = parts[0]
        tops = [p.final_top for p in parts]
        starts = np.cumsum([0] + [p.step.size for p in parts[:-1]])
        return cls(
            np.concatenate([[0]] + [p.offsets[1:] + s for p, s in zip(parts, starts, strict=True)]),
            np.concatenate([p.step for p in parts]),
            np.concatenate([p.value for p in parts]),
            np.concatenate([p.decision for p in parts]),
            np.concatenate([p.last_decision for p in parts]),
            first.timesteps,
            first.rule,
            first.unit,
            sum(p.clipped for p in parts),
            None if any(t is None for t in tops) else np.concatenate(tops),
        )


def _final_credit(
    last: np.ndarray,
    final_top: np.ndarray | None,
    timesteps: int,
    labels: np.ndarray,
    ties: Ties,
    image_ids: np.ndarray | None,
    unit: int,
) -> np.ndarray:
    """`FixedDecisions.final_credit` from the decisions at the last step `last` (N,)."""
    y = np.asarray(labels, np.int64)
    if y.shape != last.shape:
        raise InputError(f"labels {y.shape} do not match {last.size} images")
    decided = np.where(last == y, float(unit), 0.0)
    tied = last < 0
    if not tied.any() or ties.rule is TieRule.WRONG:
        return decided
    if final_top is None:
        raise ValueError("a read-out with tied last steps must record final_top")
    top = np.asarray(final_top, np.bool_)[:, None, :]
    ids = image_ids_of(y.size, image_ids)
    at_end = top_credit(top, y, ties, ids, unit, first_step=timesteps)[:, 0]
    return np.where(tied, at_end, decided)
