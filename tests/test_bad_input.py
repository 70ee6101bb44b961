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

    from hwsim.api import Session, SimConfig, tune
    from hwsim.model.convert import ConversionParams
    from hwsim.pipeline.cache import tuning_for

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

    import hwsim.model.train
    from hwsim.cli import main

    class Diverged(torch.nn.CrossEntropyLoss):  # the loss of a run whose weights blew up
        def forward(self, logits, target):
            return super().forward(logits, target) * float("nan")

    monkeypatch.setattr(hwsim.model.train.nn, "CrossEntropyLoss", Diverged)
    out = tmp_path / "diverged.pt"
    argv = ["train", "--net", "vgg11", "--dataset", "synthetic", "--width", "0.0625"]
    code = main([*argv, "--ic", "none", "--epochs", "1", "--out", str(out)])
    text = " ".join((lambda o: o.out + o.err)(capsys.readouterr()).split())
    assert code == 2 and "training diverged" in text and "--lr" in text, text
    assert not out.exists()


def _trace_cli(ws_model, out, *extra):
    return ["trace", "--model", str(ws_model), "--images", "4", "--no-cache", "--out", str(out),
            *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("made_with", "run_with", "message"),
    [
        (["--split", "train", "--timesteps", "8"], [], r"made with split train; the run uses test"),
        (["--timesteps", "6"], [], r"6 timesteps; the run needs 8 \(--timesteps\)"),
        (["--timesteps", "8", "--v0", "0.5"], [], r"made with conversion \(--v0\)"),
        (["--timesteps", "8", "--coding", "poisson"], [], r"made with coding"),
    ],
    ids=["train-split", "too-short", "other-v0", "other-coding"],
)
def test_a_given_trace_must_match_the_run(tiny_checkpoint, tmp_path, made_with, run_with, message):
    from tests.bad_input_cases import run_case

    _, model = tiny_checkpoint
    ws = Workspace(tmp_path, model)
    folder = tmp_path / "given"
    made = Case("make", lambda _: _trace_cli(model, folder, *made_with), "")
    assert run_case(made, ws)[0] == 0
    argv = ["run", "--model", str(model), "--ic", "4", "--timesteps", "8", "--tune-images", "4",
            "--traces", str(tmp_path / "t"), "--trace", str(folder), "--out", str(tmp_path / "o"),
            *run_with]  # fmt: skip
    code, text = run_case(Case("run", lambda _: argv, ""), ws)
    assert code == 2 and re.search(message, " ".join(text.split())), text
    assert not (tmp_path / "o").exists()


def test_a_longer_given_trace_is_cut_to_the_runs_timesteps(tiny_checkpoint, tmp_path):
    from hwsim.api import Session, SimConfig
    from hwsim.engine.trace import read_trace
    from hwsim.model.convert import ConversionParams
    from hwsim.pipeline.cache import load_given_trace

    _, model = tiny_checkpoint
    folder = tmp_path / "long"
    ws = Workspace(tmp_path, model)
    assert (
        run_case(Case("make", lambda _: _trace_cli(model, folder, "--timesteps", "12"), ""), ws)[0]
        == 0
    )
    session = Session.open(model, None, ConversionParams())
    cut = load_given_trace(session, folder, SimConfig(timesteps=8))
    full = read_trace(folder)
    assert cut.key.timesteps == 8
    for h, s in full.sim.head_spikes.items():
        assert (cut.sim.head_spikes[h] == s[:, :8]).all()


def test_a_failed_write_leaves_the_earlier_results_whole(tmp_path):
    from hwsim.atomic import atomic_folder

    out = tmp_path / "out"
    with atomic_folder(out) as tmp:
        (tmp / "a.csv").write_text("earlier a")
        (tmp / "b.csv").write_text("earlier b")
    with pytest.raises(OSError), atomic_folder(out) as tmp:
        (tmp / "a.csv").write_text("new a")
        raise OSError(28, "No space left on device")  # the disk filled half-way
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        "a.csv": "earlier a",
        "b.csv": "earlier b",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


def test_identical_runs_write_identical_svgs(tmp_path):
    import numpy as np

    from hwsim.report.figures import plot_alpha

    alpha = {"BSF-Grid": np.linspace(0, 5, 20)}
    pwl = {"BSF-Grid": (np.arange(0, 20, 5), np.linspace(0, 5, 4))}
    a = plot_alpha(alpha, pwl, tmp_path / "a", title="t")
    b = plot_alpha(alpha, pwl, tmp_path / "b", title="t")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
