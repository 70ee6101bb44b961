"""The bad-input corpus (tests/bad_input_cases.py) through the CLI: every case ends with its
message and exit status 2 (never a traceback), and leaves inputs and earlier results intact."""

import re

import pytest

from tests.bad_input_cases import CASES, Case, Workspace, run_case


@pytest.fixture(scope="module")
def ws(tiny_checkpoint, tmp_path_factory) -> Workspace:
    _, model = tiny_checkpoint
    return Workspace(tmp_path_factory.mktemp("bad_input"), model)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_by_name(case: Case, ws: Workspace) -> None:
    code, text = run_case(case, ws)
    flat = " ".join(text.split())
    assert code == case.code, flat
    assert "Traceback" not in text
    assert re.search(case.message.replace("{tmp}", re.escape(str(ws.tmp))), flat), flat
    if case.check is not None:
        case.check(ws)
