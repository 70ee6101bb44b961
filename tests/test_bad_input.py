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


def test_an_edited_stored_tuning_is_named_set_aside_and_recomputed(tiny_checkpoint, tmp_path):
    """The tuning cache carries a checksum: an edited value or a shortened array is found,
    the file set aside (never silently used, never a broadcast error) and the tuning redone."""
    import json

    from hwsim.api import Session, SimConfig, tune, tuning_for
    from hwsim.convert import ConversionParams

    _, model = tiny_checkpoint
    session = Session.open(model, None, ConversionParams())
    sim = SimConfig(timesteps=12)
    first = tune(session, sim, (4,), tune_images=16, trace_root=tmp_path)
    path = first.paths[4]
    stored = json.loads(path.read_text())
    stored["tuning"]["schedules"]["BSF-Grid"]["alpha"] = [1.0, 2.0]  # shortened by hand
    path.write_text(json.dumps(stored))
    warnings: list[str] = []
    again = tuning_for(first.trace, 4, tmp_path, warn=warnings.append)
    assert len(warnings) == 1 and str(path) in warnings[0] and "checksum" in warnings[0]
    assert path.with_name(path.name + ".damaged").is_file() and path.is_file()
    assert again.to_dict() == first.tunings[4].to_dict()


def test_diverging_training_stops_with_a_message_and_writes_no_checkpoint(
    tmp_path, capsys, monkeypatch
):
    import torch

    import hwsim.train
    from hwsim.cli import main

    class Diverged(torch.nn.CrossEntropyLoss):  # the loss of a run whose weights blew up
        def forward(self, logits, target):
            return super().forward(logits, target) * float("nan")

    monkeypatch.setattr(hwsim.train.nn, "CrossEntropyLoss", Diverged)
    out = tmp_path / "diverged.pt"
    argv = ["train", "--net", "vgg11", "--dataset", "synthetic", "--width", "0.0625"]
    code = main([*argv, "--ic", "none", "--epochs", "1", "--out", str(out)])
    text = " ".join((lambda o: o.out + o.err)(capsys.readouterr()).split())
    assert code == 2 and "training diverged" in text and "--lr" in text, text
    assert not out.exists()
