"""An exact percentile of values that arrive in chunks, from only the largest of them.

numpy's default ('linear', Hyndman and Fan's method 7) q-th percentile of M values reads the
virtual index i = (M - 1) q / 100 in the sorted values v_0 <= ... <= v_{M-1} and returns
lerp(v_f, v_{f+1}, i - f), f = floor(i); when i >= M - 1 it returns v_{M-1} (both neighbours
are the last value). Only v_f and above matter: `TopPercentile` keeps the K = M - f largest
values seen so far (each chunk's K largest merged with the running ones by `np.partition`), so
its memory is K values (2K while merging), whatever the number of chunks, and its result is
`np.percentile`'s bit for bit: the same index, the same two order statistics, the same
interpolation.
"""

from __future__ import annotations

import math

import numpy as np


class TopPercentile:
    """The q-th percentile (0 <= q <= 100) of `count` values given in chunks by `add`: bit for
    bit `np.percentile(all_values, q)` (numpy's default 'linear' method, NaN if any value is
    NaN), holding only the K = count - floor((count - 1) q / 100) largest values."""

    def __init__(self, count: int, q: float) -> None:
        if count < 1:
            raise ValueError(f"a percentile of {count} values")
        if not 0 <= q <= 100:
            raise ValueError(f"percentile {q} out of range [0, 100]")
        # numpy's arithmetic: q / 100 rounded, then (count - 1) times it rounded
        self.index = float((count - 1) * np.true_divide(q, 100))
        self.q = q
        self.count = count
        self.keep = count - math.floor(self.index)
        self.seen = 0
        self._top = np.empty(0, np.float64)

    def add(self, values: np.ndarray) -> None:
        """Take in the values of `values` (any shape, float64), which it reorders in place when
        they are more than K (they are not needed any more)."""
        flat = values.reshape(-1)
        self.seen += flat.size
        if self.seen > self.count:
            raise ValueError(f"{self.seen} values given to a percentile of {self.count}")
        merged = np.concatenate((self._top, _largest(flat, self.keep)))
        self._top = _largest(merged, self.keep).copy() if merged.size > self.keep else merged

    def value(self) -> float:
        """The percentile of the `count` values (all of them given)."""
        if self.seen != self.count:
            raise ValueError(f"{self.seen} of the percentile's {self.count} values given")
        top = self._top  # v_f .. v_{M-1}, in some order
        top.partition(np.unique([0, min(1, top.size - 1), top.size - 1]))
        if math.isnan(top[-1]):
            return float(top[-1])
        if self.index >= self.count - 1:  # numpy reads v_{M-1} twice, at fraction i + 1
            a = b = float(top[-1])
            t = self.index + 1
        else:
            a, b = float(top[0]), float(top[1])
            t = self.index - math.floor(self.index)
        # numpy's _lerp: from the nearer end (b - (b - a)(1 - t) once t >= 0.5)
        diff = b - a
        return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def _largest(values: np.ndarray, k: int) -> np.ndarray:
    """The k largest of 1-D `values` (NaNs the largest, as in np.percentile): a view of
    `values`, which it reorders. Two kth, not one: numpy 2 sends a single kth to x86-simd-sort's
    quickselect, 30 times slower than its introselect on ReLU activations' many zeros (AVX-512,
    numpy 2.4)."""
    if values.size <= k:
        return values
    values.partition([values.size - k, values.size - 1])
    return values[values.size - k :]
