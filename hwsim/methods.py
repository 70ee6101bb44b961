"""The methods hwsim compares: which heads each one reads, how it decides, and its roles.

One table (`METHODS`, a `MethodSpec` per `Method`) is the source of truth: energy, latency,
the fusion unit's work, decisions, CSV columns and tables follow it, and no module outside this
one and `hwsim.fusion` names a particular method (tables and docs aside). The roles a run's
summary needs are named here too: `REFERENCE` (the energy limit and the baseline of R),
`BASELINES` (what R is reported against, with their CSV suffixes) and `HEADLINE` (the fused
method a whole-chip run and the "vs SL" table show).

A decision whose top score is shared by several classes is credited by one rule for every
method (`TieRule`, `Ties`): `top_credit` gives the credit of a set of top classes, and
`hwsim.fusion`'s kernels apply the same rule to the exact top sets they find.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from hwsim.errors import InputError


class Method(StrEnum):
    """A way of reading out the SNN. The value is the name used in tables and CSV columns."""

    DL = "DL"  # the conventional SNN: backbone + final classifier (FC) alone
    SL = "SL"  # the shallow network: backbone up to the IC's tap + the IC alone
    BSF_GRID = "BSF-Grid"  # BayesianSpikeFusion, alpha(t) by grid search
    BSF_EMP = "BSF-Emp"  # BayesianSpikeFusion, alpha(t) by empirical Bayes (eq. 30)
    EARLY_EXIT = "Early-Exit"  # IC answers when its margin is confident, else FC

    @property
    def key(self) -> str:
        """The method in CSV column names: lower case, '_' for '-' (e.g. bsf_grid)."""
        return self.value.lower().replace("-", "_")

    @property
    def spec(self) -> MethodSpec:
        """Its row of `METHODS`."""
        return METHODS[self]


class Heads(StrEnum):
    """Which classifier heads a method's output needs."""

    FC = "fc"
    IC = "ic"
    BOTH = "both"


class Decision(StrEnum):
    """How a method turns its heads' cumulative spike counts through timestep t into a class."""

    FC_ARGMAX = "fc-argmax"  # the FC's most-spiking class
    IC_ARGMAX = "ic-argmax"  # the IC's most-spiking class
    FUSED_GRID = "fused-grid"  # the posterior of eq. 29, alpha(t) by grid search
    FUSED_EMPIRICAL_BAYES = "fused-empirical-bayes"  # eq. 29, alpha(t) by empirical Bayes (30)
    EARLY_EXIT = "early-exit"  # the IC's class if its count margin >= threshold(t), else the FC's


FUSED_DECISIONS = frozenset({Decision.FUSED_GRID, Decision.FUSED_EMPIRICAL_BAYES})
"""The decisions that fuse both heads through an alpha(t) schedule (and its LUT)."""


@dataclass(frozen=True)
class MethodSpec:
    """What a method reads and how it decides.

    `heads`: the classifier heads whose outputs it needs; it pays for the layers on their way
    (SL only the backbone up to the IC's tap block), and its answer for timestep t waits for all
    of them. `decision`: how it decides (`Decision`). A fused method keeps the fusion unit busy
    every timestep (its alpha LUT, the posterior compare); the others use the unit only to stop
    images early (`uses_fusion_unit`)."""

    method: Method
    heads: Heads
    decision: Decision

    @property
    def reads_fc(self) -> bool:
        """Whether its output needs the final classifier's spikes."""
        return self.heads is not Heads.IC

    @property
    def reads_ic(self) -> bool:
        """Whether its output needs the internal classifier's spikes."""
        return self.heads is not Heads.FC

    @property
    def fused(self) -> bool:
        """Bayesian fusion of both heads with a tuned alpha(t) (an alpha LUT on the chip)."""
        return self.decision in FUSED_DECISIONS

    @property
    def fusion_unit(self) -> bool:
        """Whether the fusion unit runs at every timestep of every image (fixed T)."""
        return self.fused

    def uses_fusion_unit(self, stop: bool) -> bool:
        """Whether it keeps the fusion unit busy: a fused method always, the others only to
        stop images early (`stop`)."""
        return self.fusion_unit or stop

    def head_ids(self, ic: int, fc: int) -> tuple[int, ...]:
        """The head ids it reads, the IC's (`ic`) before the FC's (`fc`: the graph's FC_HEAD)."""
        return tuple(h for h, used in ((ic, self.reads_ic), (fc, self.reads_fc)) if used)


METHODS: dict[Method, MethodSpec] = {
    Method.DL: MethodSpec(Method.DL, Heads.FC, Decision.FC_ARGMAX),
    Method.SL: MethodSpec(Method.SL, Heads.IC, Decision.IC_ARGMAX),
    Method.BSF_GRID: MethodSpec(Method.BSF_GRID, Heads.BOTH, Decision.FUSED_GRID),
    Method.BSF_EMP: MethodSpec(Method.BSF_EMP, Heads.BOTH, Decision.FUSED_EMPIRICAL_BAYES),
    Method.EARLY_EXIT: MethodSpec(Method.EARLY_EXIT, Heads.BOTH, Decision.EARLY_EXIT),
}
"""Every method, in report order."""


def fused_methods() -> tuple[Method, ...]:
    """The fused methods (an alpha(t) schedule and LUT each), in report order."""
    return tuple(m for m, s in METHODS.items() if s.fused)


def method_deciding(decision: Decision) -> Method:
    """The method that decides by `decision` (one per decision)."""
    return next(m for m, s in METHODS.items() if s.decision is decision)


@dataclass(frozen=True)
class Baseline:
    """A method energy reductions R (eq. 33) are reported against; `suffix` marks its columns:
    CSV `reduction{suffix}_{key}_pct` for every other method (`reduction_column`)."""

    method: Method
    suffix: str


REFERENCE: Method = Method.DL
"""The conventional SNN: its energy at T bounds the AUC, and R is first reported against it."""

BASELINES: tuple[Baseline, ...] = (Baseline(Method.DL, ""), Baseline(Method.SL, "_vs_sl"))
"""What R is reported against, `REFERENCE` first."""

HEADLINE: Method = Method.BSF_GRID
"""The fused method shown when one is shown: the whole chip's run, the table's R vs SL."""


def reduction_column(baseline: Baseline, method: Method) -> str:
    """The CSV column of `method`'s R against `baseline` (docs/outputs.md)."""
    return f"reduction{baseline.suffix}_{method.key}_pct"


class EvidencePooling(StrEnum):
    """How empirical Bayes pools eq. 30 over the images and classes of a timestep.

    JOINT: one alpha maximising the summed log marginal likelihood
    (`hwsim.fusion.empirical_bayes_alpha`).
    ENTRY_MEAN: each (image, class) entry's own maximising alpha on a grid, averaged over the
    entries — the BayesianSpikeFusion code's procedure (tune_hyperparams.py, grid 0..100),
    computed here in log space (`hwsim.fusion.entry_mean_alpha`).
    """

    JOINT = "joint"
    ENTRY_MEAN = "entry-mean"


class TieRule(StrEnum):
    """How a decision whose top score is shared by k >= 2 classes is credited; one rule for
    every method (a unique top class is right or wrong whatever the rule)."""

    FAIR = "fair"  # the expected credit of a uniformly random pick: 1/k if the label is tied
    WRONG = "wrong"  # no decision: wrong (a conservative reading; it hurts integer counts most)
    FIRST = "first"  # the lowest-index tied class (NumPy/PyTorch argmax, the paper's code)
    RANDOM = (
        "random"  # one tied class drawn per (image, timestep) by a seeded counter (`tie_draws`)
    )


@dataclass(frozen=True)
class Ties:
    """The tie rule of a run, and the seed of its draws (RANDOM only)."""

    rule: TieRule = TieRule.FAIR
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", TieRule(self.rule))
        if self.rule is not TieRule.RANDOM and self.seed != 0:
            raise InputError(
                f"{{ties}} {self.rule}: a seed ({self.seed}) only acts on the random rule",
                params=("ties",),
            )
        if not 0 <= self.seed < 2**63:
            raise InputError(f"{{ties}} seed {self.seed}: expected 0..2^63 - 1", params=("ties",))

    def __str__(self) -> str:
        return f"{self.rule}:{self.seed}" if self.rule is TieRule.RANDOM else str(self.rule)

    @classmethod
    def parse(cls, text: str) -> Ties:
        """'fair', 'wrong', 'first', 'random' or 'random:SEED' (the form `str` gives)."""
        name, sep, seed = text.partition(":")
        rules = {str(r): r for r in TieRule}
        if name not in rules or (sep and (name != TieRule.RANDOM or not seed.isdigit())):
            raise InputError(
                f"{{ties}} {text!r}: expected fair, wrong, first or random[:SEED]",
                params=("ties",),
            )
        return cls(rules[name], int(seed) if sep else 0)

    @property
    def label(self) -> str:
        """The rule in words, for tables and figures."""
        return {
            TieRule.FAIR: "ties: 1/k credit for a k-way tie that includes the label",
            TieRule.WRONG: "ties: a tied top class counts as wrong",
            TieRule.FIRST: "ties: the first tied class wins (argmax)",
            TieRule.RANDOM: f"ties: one tied class drawn at random (seed {self.seed})",
        }[self.rule]


CREDIT_UNIT_MAX = 2**32
"""The largest credit unit (`credit_unit`): lcm(1..22)."""


def credit_unit(classes: int) -> int:
    """The integer that one right answer is worth in exact credit sums: lcm(1, ..., classes), so
    that the fair credit of any k-way tie, unit / k, is an integer and sums of credits over up
    to 2^53 / unit images are exact in float64 (up to 22 classes; with more, 1, and fair credits
    are sums of rounded 1/k)."""
    unit = math.lcm(*range(1, max(classes, 1) + 1))
    return unit if unit <= CREDIT_UNIT_MAX else 1


_MIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
_KEYS = (0x9E3779B97F4A7C15, 0xD1B54A32D192ED03, 0xABC98388FB8FAC03)


def _splitmix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX[0])
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX[1])
    return z ^ (z >> np.uint64(31))


def tie_draws(seed: int, image_ids: np.ndarray, timesteps: int, first_step: int = 1) -> np.ndarray:
    """The RANDOM rule's draw for each image and timestep t = first_step .. first_step +
    timesteps - 1: (N, timesteps) uint64, a hash of (seed, image id, t) alone (counter-based:
    the same whatever the batch, fold or method; every method breaks the same image's tie at
    the same step with the same draw). The tied class taken is the (draw mod k)-th of the k
    tied classes in index order."""
    ids = np.asarray(image_ids, np.int64).astype(np.uint64)[:, None]
    steps = np.arange(first_step, first_step + timesteps, dtype=np.uint64)[None, :]
    key = np.full(1, seed, np.uint64) * np.uint64(_KEYS[0])
    z = key ^ _splitmix(ids * np.uint64(_KEYS[1]) + steps * np.uint64(_KEYS[2]))
    return _splitmix(z)


def image_ids_of(n_images: int, image_ids: np.ndarray | None) -> np.ndarray:
    """The images' ids for `tie_draws` (default 0..N-1), checked: (N,) int64."""
    if image_ids is None:
        return np.arange(n_images, dtype=np.int64)
    ids = np.asarray(image_ids, np.int64)
    if ids.shape != (n_images,):
        raise InputError(f"image_ids {ids.shape} do not match {n_images} images")
    return ids


def top_credit(
    top: np.ndarray,
    labels: np.ndarray,
    ties: Ties,
    image_ids: np.ndarray | None = None,
    unit: int = 1,
    first_step: int = 1,
) -> np.ndarray:
    """Credit of decisions whose top-scoring classes are `top` (N, T, C) bool (at least one
    per image and step; the steps first_step, first_step + 1, ...), under `ties`, in units of
    `unit` (1: a fraction in [0, 1]; with `credit_unit(C)` an integer for every rule): (N, T)
    float64. A unique top class earns the unit if it is the label; a k-way tie: FAIR unit/k if
    the label is tied, WRONG 0, FIRST the unit if the label is the lowest tied index, RANDOM
    the unit if it is the tied class `tie_draws` picks (image ids default to 0..N-1)."""
    top = np.asarray(top, np.bool_)
    n_img, n_t, _ = top.shape
    y = np.asarray(labels, np.int64)
    if y.shape != (n_img,):
        raise InputError(f"labels {y.shape} do not match {n_img} images")
    k = top.sum(axis=-1)
    label_top = np.take_along_axis(top, np.broadcast_to(y[:, None, None], (n_img, n_t, 1)), -1)
    label_top = label_top[..., 0]
    if ties.rule is TieRule.FAIR:
        return np.where(label_top, unit / k, 0.0)
    if ties.rule is TieRule.WRONG:
        picked = label_top & (k == 1)
    elif ties.rule is TieRule.FIRST:
        picked = top.argmax(axis=-1) == y[:, None]
    else:
        ids = image_ids_of(n_img, image_ids)
        draws = tie_draws(ties.seed, ids, n_t, first_step)
        r = (draws % k.astype(np.uint64)).astype(np.int64)
        picked = (np.cumsum(top, axis=-1) > r[..., None]).argmax(axis=-1) == y[:, None]
    return np.where(picked, float(unit), 0.0)
