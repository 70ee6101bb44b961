"""The method table (hwsim.methods) is the source of truth: heads, decisions, the fusion unit's
use and the roles, checked against what each method is (the paper's section 6.4); and the
stages that simulate methods name none of them."""

import re
from pathlib import Path

import pytest

from hwsim.methods import (
    BASELINES,
    HEADLINE,
    METHODS,
    REFERENCE,
    Decision,
    Heads,
    Method,
    fused_methods,
    method_deciding,
    reduction_column,
)

FC, IC = -1, 8
ROOT = Path(__file__).resolve().parents[1] / "hwsim"


@pytest.mark.parametrize(
    ("method", "heads", "decision", "reads"),
    [
        (Method.DL, Heads.FC, Decision.FC_ARGMAX, (FC,)),
        (Method.SL, Heads.IC, Decision.IC_ARGMAX, (IC,)),
        (Method.BSF_GRID, Heads.BOTH, Decision.FUSED_GRID, (IC, FC)),
        (Method.BSF_EMP, Heads.BOTH, Decision.FUSED_EMPIRICAL_BAYES, (IC, FC)),
        (Method.EARLY_EXIT, Heads.BOTH, Decision.EARLY_EXIT, (IC, FC)),
    ],
)
def test_each_method_reads_its_heads_and_decides_its_way(method, heads, decision, reads):
    spec = METHODS[method]
    assert method.spec is spec and spec.method is method
    assert (spec.heads, spec.decision) == (heads, decision)
    assert spec.head_ids(IC, FC) == reads
    assert (spec.reads_fc, spec.reads_ic) == (FC in reads, IC in reads)
    assert method_deciding(decision) is method
    fused = method in (Method.BSF_GRID, Method.BSF_EMP)
    assert spec.fused == spec.fusion_unit == fused
    # the fused methods keep the fusion unit busy always, the others only to stop early
    assert spec.uses_fusion_unit(stop=False) == fused and spec.uses_fusion_unit(stop=True)


def test_the_roles_and_their_columns():
    assert list(METHODS) == list(Method)  # report order
    assert fused_methods() == (Method.BSF_GRID, Method.BSF_EMP)
    assert REFERENCE is Method.DL and BASELINES[0].method is REFERENCE
    assert [b.method for b in BASELINES] == [Method.DL, Method.SL]
    assert HEADLINE in fused_methods()
    # docs/outputs.md: reduction_x_pct against DL, reduction_vs_sl_x_pct against SL
    assert reduction_column(BASELINES[0], Method.BSF_EMP) == "reduction_bsf_emp_pct"
    assert reduction_column(BASELINES[1], Method.EARLY_EXIT) == "reduction_vs_sl_early_exit_pct"


@pytest.mark.parametrize(
    "path",
    ["pipeline/cycles.py", "pipeline/hardware.py", "pipeline/activity.py", "hw/fusion_unit.py",
     "hw/activity.py", "fixed_point.py", "metrics.py"],
)  # fmt: skip
def test_the_stages_name_no_particular_method(path):
    """Outside methods.py and fusion/ (and the tables of report/), a method is read from its
    spec: no `Method.<member>` and no method name in a string."""
    text = (ROOT / path).read_text()
    code = re.sub(r'"""(.|\n)*?"""', "", text)  # docstrings may name them
    code = re.sub(r"#.*", "", code)
    members = "|".join(m.name for m in Method)
    assert not re.search(rf"\bMethod\.({members})\b", code), path
    assert not re.search(r"""["'](DL|SL|BSF-Grid|BSF-Emp|Early-Exit)["']""", code), path
