"""The Bayesian-fusion unit as hardware: its fixed-point datapath, cycles and events.

The unit (Habara et al., Frontiers in Neuroscience 2024, section 5; docs/fusion.md) reads the
output spikes of the internal classifier (IC) and the final classifier (FC) and, at every
timestep N = t, decides the class with the largest posterior-mean estimate (eq. 29 with the
mean in place of the mode, the BayesianSpikeFusion code's estimator)

    p_c = (alpha + M_c) K_c / ((alpha + K_c) N),      p_c = M_c / N if K_c = 0 (silent IC),

M_c and K_c the FC's and the IC's spike counts of class c. Here it is computed as the chip
would, in integers (`FusionUnit`, configured by `arch.fusion_unit`, `FusionUnitConfig`):

* **Counters.** One `counter_bits` counter per class and head, incremented per arriving spike
  and saturating at 2^counter_bits - 1 (a saturating counter's reading is min(count, max), as
  counts only grow). The step counter N = t is exact (it is sized by T).
* **alpha(t).** The alpha LUT (`hwsim.fixed_point.AlphaLUT`: breakpoints t_k and unsigned
  codes A_k, alpha = A LSB, LSB = 2^-f, f = the LUT format's fraction bits) also stores one
  slope per segment, rounded half up to s = `lut_slope_frac_bits` fraction bits:
  S_k = round((A_{k+1} - A_k) 2^s / (t_{k+1} - t_k)). Between breakpoints the unit keeps
  e = `alpha_extra_frac_bits` (<= s) fraction bits below the LUT's LSB:

      a(t) = (A_k << e) + ((S_k (t - t_k) + 2^(s-e-1)) >> (s - e))   (a multiply, add, shift)

  with >> an arithmetic shift, i.e. rounded half up to 2^-e of an LSB (no rounding if e = s);
  alpha(t) = a(t) 2^-(f+e). Before t_1 it is A_1, after t_K it is A_K (as np.interp).
  |a(t) 2^-e - exact| <= 2^-(e+1) + (t_{k+1} - t_k) / 2^(s+1) codes; the float reference
  (`AlphaLUT.__call__`) interpolates the decoded codes in float64, and `hwsim.fusion.choose_lut`
  chose the LUT's format assuming the unit rounds only the stored codes, which e = s does
  exactly and the default e = 8 nearly does (e = 0 rounds every interpolated alpha to the LSB:
  on the default model's 9.0 LUT that alone decided 1,440 of 300,000 test decisions
  differently, at t = 13 all of them, through exact ties at alpha = 2).
* **Scores.** With a = a(t) and one = 2^(f+e), class c's score is the fraction num_c / den_c,

      num_c = K_c (a + M_c one),   den_c = a N + (N K_c) one      (K_c > 0)
      num_c = M_c,                 den_c = N                      (K_c = 0)

  exactly p_c for this alpha: one multiply a N per decision and two per class, as
  `decision_events` counts them.
* **Compare** (`fusion_unit.compare`). `cross_multiply`: p_a > p_b as num_a den_b > num_b den_a
  in exact 128-bit integers (no division; exact ties). `divider`: each score to q_c =
  floor(p_c 2^F), F = `score_frac_bits` (a truncating divider), then integers compared; scores
  closer than 2^-F tie. Argmax over the classes; a tied top score is no decision (-1), as the
  float path (`hwsim.fusion.fused_decisions`) rules; the classes sharing the top score at the
  last step are kept (`FixedDecisions.final_top`), so that an image running to T is credited by
  the run's tie rule as the float path credits it. Where the float path differs: it compares float64
  roundings of p_c (it can merge two scores within an ulp into a tie, never reverse them), its
  alpha(t) is not rounded between breakpoints, and its counters do not saturate.
  `check_against_float` counts the resulting mismatches.
* **Confidence** for early termination (`fusion_unit.termination`), in units of 2^-F of a score:
  `posterior`, q_1 = floor(p_top1 2^F); `margin`, q_1 - q_2 (top-1 minus top-2 class, both
  floored). The hardware tests q_1 >= Theta as num_1 2^F >= Theta den_1 (one multiply); the
  margin needs q_1 and q_2 (in cross_multiply mode two divisions after the argmax). -1 where no
  decision: a tied unit never stops.

The unit's decisions and confidences (`FixedDecisions`) are what early termination's stop rule
is tuned on and applied to (`hwsim.fusion.stop_rules`). The same read-out is given for read-outs
without fusion: one head's counters (`head_decisions`, with margins in spike counts) and the
early-exit switch between two heads (`early_exit_decisions`).

`hwsim.hw` does not import `hwsim.fusion` (import contract): the LUT and the decisions are types
of `hwsim.fixed_point`, below both, and the float decisions to check against are computed by
the caller, e.g. with T steps and counts (N, T, C)::

    alpha = lut(np.arange(1, T + 1))                   # the AlphaLUT, decoded in float64
    n = np.arange(1, T + 1)[None, :, None]
    float_dec = fusion.decide(fusion.posterior(fc, ic, n, alpha[None, :, None]))  # chunk N
    check = check_against_float(unit, fc, ic, labels, float_dec)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from hwsim.errors import ConfigError, InputError
from hwsim.fixed_point import AlphaLUT, FixedDecisions
from hwsim.hw.activity import FUSION_EVENTS, FusionActivity
from hwsim.hw.arch import FusionCompare, FusionUnitConfig, TerminationRule
from hwsim.hw.energy import fusion_costs_pj

# ----------------------------------------------------------------------------- widths


@dataclass(frozen=True)
class DatapathWidths:
    """Bits each register of the datapath needs for T timesteps (unsigned unless noted): what
    the multipliers and comparators must be sized for."""

    counter_bits: int  # one IC or FC spike counter
    step_bits: int  # the timestep counter N (up to T)
    alpha_bits: int  # an interpolated alpha a(t), LUT bits + alpha_extra_frac_bits
    slope_bits: int  # a stored segment slope S_k, with its sign
    interpolation_product_bits: int  # S_k (t - t_k), with its sign
    numerator_bits: int  # num_c
    denominator_bits: int  # den_c
    cross_product_bits: int  # num_a den_b (cross_multiply) and the width the kernel checks
    quotient_bits: int  # q_c = floor(p_c 2^F): F + 1 (p <= 1)


def _bits(x: int) -> int:
    return max(int(x).bit_length(), 1)


def datapath_widths(config: FusionUnitConfig, lut: AlphaLUT, timesteps: int) -> DatapathWidths:
    """The widths for `timesteps` steps (a count is at most min(2^counter_bits - 1, T));
    ConfigError if a register would exceed the 63 bits the simulator computes in (num_c 2^F,
    den_c, the slope terms) - a narrower LUT format, fewer extra alpha bits or fewer score
    fraction bits fix it - or if alpha_extra_frac_bits > lut_slope_frac_bits."""
    if timesteps < 1:
        raise InputError(f"timesteps {timesteps}: expected >= 1")
    s, e = config.lut_slope_frac_bits, config.alpha_extra_frac_bits
    if e > s:
        raise ConfigError(
            f"fusion_unit.alpha_extra_frac_bits ({e}) exceeds lut_slope_frac_bits ({s})"
        )
    c_max = min((1 << config.counter_bits) - 1, timesteps)
    a_max = lut.fmt.max_code << e
    one = 1 << (lut.fmt.frac_bits + e)
    seg = int(np.max(np.diff(lut.t))) if lut.t.size > 1 else 1
    num = max(c_max * (a_max + c_max * one), c_max)
    den = max(timesteps * (a_max + c_max * one), timesteps)
    slope = lut.fmt.max_code << s  # |S_k| <= |A_{k+1} - A_k| 2^s / (t_{k+1} - t_k) + 1/2
    product = slope + seg  # |S_k (t - t_k)| < |A_{k+1} - A_k| 2^s + (t_{k+1} - t_k) / 2
    widths = DatapathWidths(
        counter_bits=config.counter_bits,
        step_bits=_bits(timesteps),
        alpha_bits=lut.fmt.bits + e,
        slope_bits=_bits(slope) + 1,
        interpolation_product_bits=_bits(product) + 1,
        numerator_bits=_bits(num),
        denominator_bits=_bits(den),
        cross_product_bits=_bits(num * den),
        quotient_bits=config.score_frac_bits + 1,
    )
    problems = []
    if widths.numerator_bits + config.score_frac_bits > 63:
        problems.append(
            f"num_c 2^F needs {widths.numerator_bits + config.score_frac_bits} bits"
            f" (counts up to {c_max}, LUT {lut.fmt.int_bits}.{lut.fmt.frac_bits} + {e} extra alpha"
            f" bits, score_frac_bits {config.score_frac_bits})"
        )
    if widths.denominator_bits > 63:
        problems.append(f"den_c needs {widths.denominator_bits} bits")
    if _bits(2 * slope + seg) + 1 > 63:  # the slope's rounding, `AlphaLUT.slopes`
        problems.append(
            f"the slope terms need {widths.interpolation_product_bits} bits"
            f" (lut_slope_frac_bits {s})"
        )
    if problems:
        raise ConfigError("fusion-unit datapath wider than 63 bits: " + "; ".join(problems))
    return widths


# ----------------------------------------------------------------------------- kernels

_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


@njit(cache=True, inline="always")
def _wide_product(a, b):  # pragma: no cover - compiled
    """a b as a 128-bit (high, low) pair of uint64, for 0 <= a, b < 2^63 (32-bit limbs)."""
    x = np.uint64(a)
    y = np.uint64(b)
    x_lo = x & _LOW32
    x_hi = x >> _SHIFT32
    y_lo = y & _LOW32
    y_hi = y >> _SHIFT32
    ll = x_lo * y_lo
    lh = x_lo * y_hi
    hl = x_hi * y_lo
    mid = (ll >> _SHIFT32) + (lh & _LOW32) + (hl & _LOW32)
    low = (ll & _LOW32) | (mid << _SHIFT32)
    high = x_hi * y_hi + (lh >> _SHIFT32) + (hl >> _SHIFT32) + (mid >> _SHIFT32)
    return high, low


@njit(cache=True, inline="always")
def _order(num, den, q, divider, a, b):  # pragma: no cover - compiled
    """sign(p_a - p_b): quotients compared (divider) or num_a den_b vs num_b den_a, exact."""
    if divider:
        if q[a] == q[b]:
            return 0
        return 1 if q[a] > q[b] else -1
    h1, l1 = _wide_product(num[a], den[b])
    h2, l2 = _wide_product(num[b], den[a])
    if h1 != h2:
        return 1 if h1 > h2 else -1
    if l1 != l2:
        return 1 if l1 > l2 else -1
    return 0


@njit(cache=True, nogil=True)
def _fused_kernel(
    fc, ic, alpha, frac_bits, counter_max, divider, score_bits, margin, dec, conf, top
):  # pragma: no cover - compiled
    """dec[i, t], conf[i, t] of the fixed-point unit (module docstring) and top[i, c], the
    classes sharing the top score at the last step; returns the number of counter readings
    clipped at counter_max."""
    n_img, n_t, n_c = fc.shape
    num = np.empty(n_c, np.int64)
    den = np.empty(n_c, np.int64)
    q = np.zeros(n_c, np.int64)
    one = np.int64(1) << frac_bits
    clipped = 0
    for i in range(n_img):
        for t in range(n_t):
            n = np.int64(t + 1)
            a = alpha[t]
            an = a * n
            for c in range(n_c):
                m = np.int64(fc[i, t, c])
                k = np.int64(ic[i, t, c])
                if m > counter_max:
                    m = counter_max
                    clipped += 1
                if k > counter_max:
                    k = counter_max
                    clipped += 1
                if k > 0:
                    num[c] = k * (a + m * one)
                    den[c] = an + n * k * one
                else:
                    num[c] = m
                    den[c] = n
                if divider:
                    q[c] = (num[c] << score_bits) // den[c]
            best = 0
            second = -1
            ties = 1
            for c in range(1, n_c):
                s = _order(num, den, q, divider, c, best)
                if s > 0:
                    second = best
                    best = c
                    ties = 1
                elif s == 0:
                    ties += 1
                    second = c
                elif margin and (second < 0 or _order(num, den, q, divider, c, second) > 0):
                    second = c
            if t == n_t - 1:
                for c in range(n_c):
                    top[i, c] = c == best or _order(num, den, q, divider, c, best) == 0
            if ties != 1:
                dec[i, t] = -1
                conf[i, t] = -1
                continue
            dec[i, t] = best
            q1 = q[best] if divider else (num[best] << score_bits) // den[best]
            if margin:
                q2 = np.int64(0)
                if second >= 0:
                    q2 = q[second] if divider else (num[second] << score_bits) // den[second]
                conf[i, t] = q1 - q2
            else:
                conf[i, t] = q1
    return clipped


def _cumulative_counts(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 3 or not np.issubdtype(a.dtype, np.integer):
        raise InputError(f"{name} counts must be integer (images, timesteps, classes), {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.int32)
    steps = np.arange(1, a.shape[1] + 1)
    if a.size and (a.min() < 0 or np.any(a.max(axis=(0, 2)) > steps)):
        raise InputError(f"{name} counts must be cumulative: 0 <= count <= t after t steps")
    return a


def _pair(fc_cum: np.ndarray, ic_cum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fc, ic = _cumulative_counts(fc_cum, "FC"), _cumulative_counts(ic_cum, "IC")
    if fc.shape != ic.shape:
        raise InputError(f"FC counts {fc.shape} and IC counts {ic.shape} differ in shape")
    return fc, ic


# ---------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class DecisionCycles:
    """Clock cycles of one fusion decision, the parts done one after another (no overlap is
    assumed; alpha(t) does not depend on the spikes, so a simulator may hide `lut` by reading
    it ahead): LUT read and interpolation, the per-class score and compare slots, the
    divisions, the termination test."""

    lut: int  # lut_cycles
    classes: int  # classes x cycles_per_class
    divider: int  # divider mode: classes x a division; cross_multiply, margin rule: 2 x one
    termination: int  # one more compare slot (cycles_per_class) when the stop rule runs

    @property
    def total(self) -> int:
        return self.lut + self.classes + self.divider + self.termination


@dataclass(frozen=True)
class FusionUnit:
    """The fusion unit of `arch.fusion_unit` holding one method's alpha LUT (module docstring:
    the datapath). `decide` runs it on cumulative counts; `decision_cycles`,
    `events_per_decision` and `activity` give its time and its events for `hwsim.hw.energy`."""

    config: FusionUnitConfig
    lut: AlphaLUT

    @property
    def compare(self) -> FusionCompare:
        return FusionCompare(self.config.compare)

    @property
    def termination(self) -> TerminationRule:
        return TerminationRule(self.config.termination)

    def widths(self, timesteps: int) -> DatapathWidths:
        return datapath_widths(self.config, self.lut, timesteps)

    @property
    def alpha_frac_bits(self) -> int:
        """Fraction bits of the interpolated alpha: the LUT's + alpha_extra_frac_bits."""
        return self.lut.fmt.frac_bits + self.config.alpha_extra_frac_bits

    def alpha_codes(self, timesteps: int) -> np.ndarray:
        """a(t) for t = 1..timesteps in units of 2^-alpha_frac_bits (`AlphaLUT.alpha_codes`
        with the configured slope and extra bits)."""
        cfg = self.config
        return self.lut.alpha_codes(timesteps, cfg.lut_slope_frac_bits, cfg.alpha_extra_frac_bits)

    def decide(
        self, fc_cum: np.ndarray, ic_cum: np.ndarray, rule: TerminationRule | None = None
    ) -> FixedDecisions:
        """Decisions and confidences (`rule`, default the configured termination) for
        cumulative counts (N, T, C) of the FC and the IC (index t - 1: after t steps)."""
        fc, ic = _pair(fc_cum, ic_cum)
        n_img, n_t, _ = fc.shape
        self.widths(n_t)  # refuses a datapath the kernel cannot hold
        rule = self.termination if rule is None else TerminationRule(rule)
        dec = np.empty((n_img, n_t), np.int64)
        conf = np.empty((n_img, n_t), np.int64)
        top = np.zeros((n_img, fc.shape[2]), np.bool_)
        clipped = _fused_kernel(
            fc,
            ic,
            np.ascontiguousarray(self.alpha_codes(n_t)),
            self.alpha_frac_bits,
            (1 << self.config.counter_bits) - 1,
            self.compare is FusionCompare.DIVIDER,
            self.config.score_frac_bits,
            rule is TerminationRule.MARGIN,
            dec,
            conf,
            top,
        )
        unit = f"2^-{self.config.score_frac_bits} score"
        return FixedDecisions(dec, conf, rule, unit, int(clipped), top)

    def decision_cycles(self, classes: int, terminate: bool = True) -> DecisionCycles:
        """Cycles of one decision (`decision_cycles`)."""
        return decision_cycles(self.config, classes, terminate)

    def counting_cycles(self, ic_spikes: np.ndarray, fc_spikes: np.ndarray) -> np.ndarray:
        """Cycles the counters spend on one image's spikes of each step: the IC and FC banks
        count in parallel, counter_cycles_per_spike per spike: max(IC, FC spikes) x that."""
        ic = np.asarray(ic_spikes, np.int64)
        fc = np.asarray(fc_spikes, np.int64)
        return np.maximum(ic, fc) * self.config.counter_cycles_per_spike

    def events_per_decision(self, classes: int, terminate: bool = True) -> dict[str, int]:
        """Events of one decision (`decision_events`)."""
        return decision_events(self.config, classes, terminate)

    def energy_per_decision_pj(self, classes: int, terminate: bool = True) -> float:
        """pJ of one decision (`events_per_decision` x the configured costs), spikes excluded
        (counter_increment_pj each)."""
        costs = fusion_costs_pj(self.config)
        events = self.events_per_decision(classes, terminate)
        return float(sum(events[name] * costs[name] for name in FUSION_EVENTS))


def decision_cycles(
    config: FusionUnitConfig, classes: int, terminate: bool = True
) -> DecisionCycles:
    """Cycles of one decision over `classes` classes: lut_cycles + classes x cycles_per_class,
    + classes x the divider's cycles (divider mode), + with `terminate` one compare slot
    (cycles_per_class) and, for the margin rule in cross_multiply mode, the two divisions of
    the top-2 scores. They do not depend on the LUT's values."""
    divider = 0
    margin = TerminationRule(config.termination) is TerminationRule.MARGIN
    if FusionCompare(config.compare) is FusionCompare.DIVIDER:
        divider = classes * config.divider_cycles
    elif terminate and margin:
        divider = 2 * config.divider_cycles
    term = config.cycles_per_class if terminate else 0
    return DecisionCycles(config.lut_cycles, classes * config.cycles_per_class, divider, term)


def decision_events(
    config: FusionUnitConfig, classes: int, terminate: bool = True, heads: int = 0
) -> dict[str, int]:
    """Events of one decision, by `FUSION_EVENTS` name (counter increments are per spike,
    0 here). C = classes, F = score_frac_bits; a division is F + 1 trial subtractions,
    charged as compares; the K_c = 0 tests (a NOR of the counter bits) are not charged.

    Always: 1 LUT read; multiplies: 1 (slope x (t - t_k)) + 1 (a N) + 2 C (num_c, N K_c).
    cross_multiply: + 2 (C - 1) multiplies and C - 1 compares (argmax); with the margin
    rule + the same again (runner-up) + 2 divisions + 2 compares (subtract, threshold);
    with the posterior rule + 1 multiply (Theta den) + 1 compare.
    divider: + C divisions + C - 1 compares (argmax); margin: + C - 1 (runner-up) + 2;
    posterior: + 1 compare.

    `heads` > 0: no fusion, the unit only reads `heads` heads' counters (DL, SL: 1; Early-Exit:
    2, plus the IC's runner-up and its threshold compare): C - 1 compares per head (argmax), no
    LUT read, and the stop test on the answer: posterior, 1 multiply (Theta t) + 1 compare;
    margin, C - 2 compares (runner-up) + 2.
    """
    if heads:
        c = classes
        compare = heads * (c - 1) + (c - 1 if heads > 1 else 0)  # Early-Exit: IC runner-up
        multiply = 0
        if terminate and TerminationRule(config.termination) is TerminationRule.MARGIN:
            compare += (c - 2) + 2
        elif terminate:
            multiply += 1
            compare += 1
        return {"counter_increment": 0, "lut_read": 0, "multiply": multiply, "compare": compare}
    cfg = config
    c = classes
    division = cfg.score_frac_bits + 1
    multiply = 2 + 2 * c
    compare = c - 1
    margin = terminate and TerminationRule(cfg.termination) is TerminationRule.MARGIN
    if FusionCompare(cfg.compare) is FusionCompare.CROSS_MULTIPLY:
        multiply += 2 * (c - 1)
        if margin:
            multiply += 2 * (c - 1)
            compare += (c - 1) + 2 * division + 2
        elif terminate:
            multiply += 1
            compare += 1
    else:
        compare += c * division
        if margin:
            compare += (c - 1) + 2
        elif terminate:
            compare += 1
    return {"counter_increment": 0, "lut_read": 1, "multiply": multiply, "compare": compare}


def fusion_events(
    config: FusionUnitConfig,
    classes: int,
    ic_spikes: np.ndarray,
    fc_spikes: np.ndarray,
    images: int,
    deciding: np.ndarray | None = None,
    terminate: bool = True,
    heads: int = 0,
) -> FusionActivity:
    """The unit's events per step for `hwsim.hw.energy.run_energy`: one counter increment per
    IC or FC spike (each (T,), summed over images) and `decision_events` per deciding image
    (`deciding[t]`, default all `images`; with early termination, the images not yet stopped:
    `running_images`); `terminate`: with the stop test; `heads`: see `decision_events`."""
    ic = np.asarray(ic_spikes, np.float64)
    fc = np.asarray(fc_spikes, np.float64)
    if ic.shape != fc.shape or ic.ndim != 1:
        raise InputError("ic_spikes and fc_spikes must be (T,) arrays of the same length")
    n = np.full(ic.shape, float(images)) if deciding is None else np.asarray(deciding, float)
    per = decision_events(config, classes, terminate, heads)
    events = np.stack(
        [ic + fc if name == "counter_increment" else per[name] * n for name in FUSION_EVENTS],
        axis=1,
    )
    return FusionActivity(images=images, events=events)


def running_images(stop_step: np.ndarray, timesteps: int) -> np.ndarray:
    """Images still running at each step t = 1..timesteps (those with stop_step >= t): (T,)."""
    stop = np.asarray(stop_step, np.int64)
    stopped_before = np.bincount(np.clip(stop, 0, timesteps), minlength=timesteps + 1)
    return stop.size - np.cumsum(stopped_before)[:-1]


# --------------------------------------------------------------- methods without the unit


def _head_confidence(
    x: np.ndarray, rule: TerminationRule, score_frac_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decision and confidence of one head's counts x (N, T, C) int64: argmax (tie -1);
    margin in spikes (top-1 minus top-2 count) or floor(top count 2^F / t)."""
    n_c = x.shape[-1]
    top = x.max(axis=-1)
    winners = (x == top[..., None]).sum(axis=-1)
    dec = np.where(winners == 1, x.argmax(axis=-1), -1).astype(np.int64)
    if rule is TerminationRule.MARGIN:
        second = np.partition(x, n_c - 2, axis=-1)[..., -2] if n_c > 1 else 0
        conf = top - second
    else:
        steps = np.arange(1, x.shape[1] + 1, dtype=np.int64)[None, :]
        conf = (top << score_frac_bits) // steps
    return dec, np.where(dec >= 0, conf, -1).astype(np.int64)


def _top_set(counts: np.ndarray) -> np.ndarray:
    """(N, C) bool: the classes sharing the largest count (`FixedDecisions.final_top`)."""
    return counts == counts.max(axis=-1, keepdims=True)


def _clip(counts: np.ndarray, counter_bits: int | None) -> tuple[np.ndarray, int]:
    x = counts.astype(np.int64)
    if counter_bits is None:
        return x, 0
    c_max = (1 << counter_bits) - 1
    return np.minimum(x, c_max), int(np.count_nonzero(x > c_max))


def head_decisions(
    counts_cum: np.ndarray,
    rule: TerminationRule,
    score_frac_bits: int = 16,
    counter_bits: int | None = None,
) -> FixedDecisions:
    """One head alone (DL: the FC's counts; SL: the IC's), read by counters of counter_bits
    (None: not saturating): decision = the class with most spikes (tie -1; the tied classes at
    the last step in `final_top`); confidence = the
    top-1 minus top-2 count (margin, in spikes, as `hwsim.fusion.ic_margin`) or
    floor(top count 2^F / t) (posterior, in 2^-F)."""
    x, clipped = _clip(_cumulative_counts(counts_cum, "head"), counter_bits)
    rule = TerminationRule(rule)
    dec, conf = _head_confidence(x, rule, score_frac_bits)
    unit = "spike" if rule is TerminationRule.MARGIN else f"2^-{score_frac_bits} score"
    return FixedDecisions(dec, conf, rule, unit, clipped, _top_set(x[:, -1]))


def early_exit_decisions(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    thresholds: np.ndarray,
    rule: TerminationRule,
    score_frac_bits: int = 16,
    counter_bits: int | None = None,
) -> FixedDecisions:
    """The early-exit baseline (`hwsim.fusion.EarlyExit`): at step t the IC's decision if its
    count margin (0 when its top is tied) >= thresholds[t - 1] (inf: never), else the FC's;
    the confidence is the chosen head's (`head_decisions`), and so is the top set at the last
    step (`final_top`)."""
    fc, ic = _pair(fc_cum, ic_cum)
    n_t = fc.shape[1]
    thr = np.asarray(thresholds, np.float64)
    if thr.ndim != 1 or thr.size < n_t:
        raise InputError(f"early-exit thresholds must be (>= {n_t},), got {thr.shape}")
    rule = TerminationRule(rule)
    x_fc, clip_fc = _clip(fc, counter_bits)
    x_ic, clip_ic = _clip(ic, counter_bits)
    dec_fc, conf_fc = _head_confidence(x_fc, rule, score_frac_bits)
    dec_ic, conf_ic = _head_confidence(x_ic, rule, score_frac_bits)
    n_c = x_ic.shape[-1]
    if n_c < 2:
        raise InputError("early exit needs at least 2 classes")
    top2 = np.partition(x_ic, n_c - 2, axis=-1)[..., -2:]
    use_ic = (top2[..., 1] - top2[..., 0]) >= thr[None, :n_t]
    unit = "spike" if rule is TerminationRule.MARGIN else f"2^-{score_frac_bits} score"
    last = use_ic[:, -1:]
    return FixedDecisions(
        np.where(use_ic, dec_ic, dec_fc),
        np.where(use_ic, conf_ic, conf_fc),
        rule,
        unit,
        clip_fc + clip_ic,
        np.where(last, _top_set(x_ic[:, -1]), _top_set(x_fc[:, -1])),
    )


# ------------------------------------------------------------------ check against float


@dataclass(frozen=True, eq=False)
class FusionCheck:
    """Fixed-point decisions against the float fusion's on the same images and LUT.

    A mismatch is an (image, step) whose decisions differ (a tie on one side only counts).
    Accuracies (T,) count ties as wrong, from the images decided right per step
    (`correct_fixed`, `correct_float`); `alpha_steps_differing` counts the steps whose
    interpolated alpha a(t) 2^-(f+e) is not the float alpha(t) (between breakpoints). Checks
    of consecutive chunks of images add up (`combine`): every number is a count."""

    images: int
    mismatches: int
    mismatches_per_step: np.ndarray  # (T,) int64
    ties_fixed: int
    ties_float: int
    correct_fixed: np.ndarray  # (T,) int64 images decided right at each step
    correct_float: np.ndarray  # (T,) int64
    alpha_steps_differing: int
    clipped: int  # counter readings held at the counter maximum

    @property
    def timesteps(self) -> int:
        return int(self.mismatches_per_step.size)

    @property
    def accuracy_fixed(self) -> np.ndarray:
        """The unit's accuracy at each step: (T,) float64."""
        return self.correct_fixed / self.images

    @property
    def accuracy_float(self) -> np.ndarray:
        """The float fusion's accuracy at each step: (T,) float64."""
        return self.correct_float / self.images

    @property
    def mismatch_fraction(self) -> float:
        return self.mismatches / max(self.images * self.timesteps, 1)

    @property
    def max_accuracy_difference(self) -> float:
        """max over t of |fixed - float| accuracy."""
        return float(np.max(np.abs(self.accuracy_fixed - self.accuracy_float)))

    @classmethod
    def combine(cls, parts: list[FusionCheck]) -> FusionCheck:
        """The check of the images of `parts` (checks of one unit on chunks of images)."""
        return cls(
            images=sum(p.images for p in parts),
            mismatches=sum(p.mismatches for p in parts),
            mismatches_per_step=sum(p.mismatches_per_step for p in parts),
            ties_fixed=sum(p.ties_fixed for p in parts),
            ties_float=sum(p.ties_float for p in parts),
            correct_fixed=sum(p.correct_fixed for p in parts),
            correct_float=sum(p.correct_float for p in parts),
            alpha_steps_differing=parts[0].alpha_steps_differing,
            clipped=sum(p.clipped for p in parts),
        )


def check_against_float(
    unit: FusionUnit,
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    float_decisions: np.ndarray,
) -> FusionCheck:
    """Run the fixed-point unit and count where it differs from `float_decisions` (N, T): the
    float fusion's (`hwsim.fusion.decide(posterior(...))` with alpha =
    `unit.lut.decoded_alpha(T)`, i.e. the same `AlphaLUT` called; the module docstring has
    the snippet). Every mismatch is counted, none explained away."""
    return float_check(unit, unit.decide(fc_cum, ic_cum), labels, float_decisions)


def float_check(
    unit: FusionUnit, fixed: FixedDecisions, labels: np.ndarray, float_decisions: np.ndarray
) -> FusionCheck:
    """`check_against_float` of the unit's decisions `fixed` (`FusionUnit.decide`'s, made
    before, e.g. on a chunk of images: `FusionCheck.combine` adds the chunks' checks up)."""
    ref = np.asarray(float_decisions)
    y = np.asarray(labels)
    if ref.shape != fixed.decision.shape:
        raise InputError(f"float decisions {ref.shape} do not match {fixed.decision.shape}")
    if y.shape != (ref.shape[0],):
        raise InputError(f"labels {y.shape} do not match {ref.shape[0]} images")
    n_t = ref.shape[1]
    per_step = np.count_nonzero(fixed.decision != ref, axis=0).astype(np.int64)
    alpha_fixed = unit.alpha_codes(n_t) * 2.0**-unit.alpha_frac_bits
    return FusionCheck(
        images=int(ref.shape[0]),
        mismatches=int(per_step.sum()),
        mismatches_per_step=per_step,
        ties_fixed=int(np.count_nonzero(fixed.decision < 0)),
        ties_float=int(np.count_nonzero(ref < 0)),
        correct_fixed=np.count_nonzero(fixed.decision == y[:, None], axis=0).astype(np.int64),
        correct_float=np.count_nonzero(ref == y[:, None], axis=0).astype(np.int64),
        alpha_steps_differing=int(np.count_nonzero(alpha_fixed != unit.lut.decoded_alpha(n_t))),
        clipped=fixed.clipped,
    )
