"""The fixed-point read-out that the fusion stage tunes and the fusion unit computes: one
definition each, below both (`hwsim.fusion` and `hwsim.hw` do not import each other).

`FixedPoint`: an unsigned int_bits.frac_bits format. `AlphaLUT`: the alpha(t) table as the chip
stores it (breakpoints and codes) with the float and the fixed-point interpolations of it.
`FixedDecisions`: a read-out's class and confidence per image and timestep, what a stop rule
is tuned on (`hwsim.fusion.stop_rules`) and the fusion unit gives (`hwsim.hw.fusion_unit`).
"""

from __future__ import annotations

from collections.abc import Mapping
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
        y = np.asarray(labels, np.int64)
        last = self.decision[:, -1]
        if y.shape != last.shape:
            raise InputError(f"labels {y.shape} do not match {last.size} images")
        decided = np.where(last == y, float(unit), 0.0)
        tied = last < 0
        if not tied.any() or ties.rule is TieRule.WRONG:
            return decided
        if self.final_top is None:
            raise ValueError("a read-out with tied last steps must record final_top")
        top = np.asarray(self.final_top, np.bool_)[:, None, :]
        ids = image_ids_of(y.size, image_ids)
        at_end = top_credit(top, y, ties, ids, unit, first_step=self.timesteps)[:, 0]
        return np.where(tied, at_end, decided)
