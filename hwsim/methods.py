"""The methods hwsim compares: which heads each one reads, how it decides, and its roles.

One table (`METHODS`, a `MethodSpec` per `Method`) is the source of truth: energy, latency,
the fusion unit's work, decisions, CSV columns and tables follow it, and no module outside this
one and `hwsim.fusion` names a particular method (tables and docs aside). The roles a run's
summary needs are named here too: `REFERENCE` (the energy limit and the baseline of R),
`BASELINES` (what R is reported against, with their CSV suffixes) and `HEADLINE` (the fused
method a whole-chip run and the "vs SL" table show).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
