"""The methods hwsim compares, and what each one keeps busy on the chip.

One table (`METHODS`) says, per method, which classifier heads it pays for, whether it uses the
fusion unit, and whose outputs bound its latency; api, fusion and report read it instead of
spelling method names.
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


class Heads(StrEnum):
    """Which classifier heads a method's output needs."""

    FC = "fc"
    IC = "ic"
    BOTH = "both"


@dataclass(frozen=True)
class MethodSpec:
    """What a method keeps busy: `heads` whose layers it pays for (SL pays only the backbone up
    to the IC's tap block), whether the fusion unit runs, and whose outputs bound its latency
    (the same heads: a method's answer for timestep t needs all of them)."""

    method: Method
    heads: Heads
    fusion_unit: bool
    fused_alpha: bool  # a BayesianSpikeFusion method with a tuned alpha(t)

    @property
    def pays_fc(self) -> bool:
        return self.heads is not Heads.IC

    @property
    def pays_ic(self) -> bool:
        return self.heads is not Heads.FC


METHODS: dict[Method, MethodSpec] = {
    Method.DL: MethodSpec(Method.DL, Heads.FC, fusion_unit=False, fused_alpha=False),
    Method.SL: MethodSpec(Method.SL, Heads.IC, fusion_unit=False, fused_alpha=False),
    Method.BSF_GRID: MethodSpec(Method.BSF_GRID, Heads.BOTH, fusion_unit=True, fused_alpha=True),
    Method.BSF_EMP: MethodSpec(Method.BSF_EMP, Heads.BOTH, fusion_unit=True, fused_alpha=True),
    Method.EARLY_EXIT: MethodSpec(
        Method.EARLY_EXIT, Heads.BOTH, fusion_unit=False, fused_alpha=False
    ),
}
"""Every method, in report order."""


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
