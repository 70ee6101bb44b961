"""The bad-input corpus (tests/bad_input_cases.py) through the CLI: every case ends with its
message and exit status (never a traceback unless --debug asked for one), changes no file that
existed before it (bytes and mtime) outside the outputs of a successful run, and leaves no
temporary file behind; plus the atomic writes and output folders the cases rely on."""

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.atomic import (
    MANIFEST,
    atomic_folder,
    check_output_folder,
    read_manifest,
    record_outputs,
)
from hwsim.errors import OutputError
from tests.bad_input_cases import CASES, ROOT, Case, Workspace, run_case, snapshot

TEMP = re.compile(r"^\..+\.\d+\.[a-z0-9_]+\.(tmp|old)$")
"""hwsim's temporary names (hwsim.atomic)."""


@pytest.fixture(scope="module")
def ws(tiny_checkpoint, tmp_path_factory):
    _, model = tiny_checkpoint
    workspace = Workspace(tmp_path_factory.mktemp("bad_input"), model)
    with workspace.stack:
        yield workspace


def _outputs(argv: list[str]) -> list[Path]:
    """The output paths a command line names."""
    return [Path(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a in ("--out", "--summary")]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_by_name_and_no_input_changes(case: Case, ws: Workspace) -> None:
    if case.needs is not None and importlib.util.find_spec(case.needs) is None:
        pytest.skip(f"needs {case.needs} (an extra: .ci/run installs it)")
    argv = case.argv(ws)  # builds the case's files, so that they count as inputs
    before = snapshot(ws.tmp, ws.model.parent)
    code, text = run_case(Case(case.name, case.category, lambda _: argv, "", patch=case.patch), ws)
    flat = " ".join(text.split())
    assert code == case.code, flat
    assert ("Traceback" in text) == case.traceback, flat
    assert re.search(case.message.replace("{tmp}", re.escape(str(ws.tmp))), flat), flat
    if case.check is not None:
        case.check(ws)
    after = snapshot(ws.tmp, ws.model.parent)
    outputs = _outputs(argv) if code == 0 else []
    for path, stamp in before.items():
        if any(path.is_relative_to(o) for o in outputs) or TEMP.match(path.parent.name):
            continue  # a successful run's outputs, or a killed run's temporary files
        assert after.get(path) == stamp, f"{case.name}: {path} changed or vanished"
    left = [p for p in ws.tmp.rglob("*") if TEMP.match(p.name)]
    assert not left, f"{case.name}: temporary files left: {left}"


def test_the_corpus_covers_every_category():
    from tests.bad_input_cases import CATEGORIES

    assert {c.category for c in CASES} == set(CATEGORIES)
    assert len({c.name for c in CASES}) == len(CASES)


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
    made = Case("make", "errors", lambda _: _trace_cli(model, folder, *made_with), "")
    assert run_case(made, ws)[0] == 0
    argv = ["run", "--model", str(model), "--ic", "4", "--timesteps", "8", "--tune-images", "4",
            "--traces", str(tmp_path / "t"), "--trace", str(folder), "--out", str(tmp_path / "o"),
            *run_with]  # fmt: skip
    code, text = run_case(Case("run", "errors", lambda _: argv, ""), ws)
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
        run_case(
            Case("make", "errors", lambda _: _trace_cli(model, folder, "--timesteps", "12"), ""), ws
        )[0]
        == 0
    )
    session = Session.open(model, None, ConversionParams())
    cut = load_given_trace(session, folder, SimConfig(timesteps=8))
    full = read_trace(folder)
    assert cut.key.timesteps == 8
    for h, s in full.sim.head_spikes.items():
        assert (cut.sim.head_spikes[h] == s[:, :8]).all()


def test_a_failed_write_leaves_the_earlier_results_whole(tmp_path):
    out = tmp_path / "out"
    with atomic_folder(out) as tmp:
        (tmp / "a.csv").write_text("earlier a")
        (tmp / "b.csv").write_text("earlier b")
    full = pytest.raises(OutputError, match=re.escape(f"{out}: no space left on the disk ("))
    with full, atomic_folder(out) as tmp:
        (tmp / "a.csv").write_text("new a")
        raise OSError(28, "No space left on device")  # the disk filled half-way
    assert {p.name: p.read_text() for p in out.iterdir() if p.name != MANIFEST} == {
        "a.csv": "earlier a",
        "b.csv": "earlier b",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


def test_an_output_folder_lists_what_hwsim_wrote_and_refuses_anything_else(tmp_path):
    out = tmp_path / "out"
    with atomic_folder(out) as tmp:
        (tmp / "a.csv").write_text("a")
        (tmp / "figs").mkdir()
        (tmp / "figs" / "f.svg").write_text("<svg/>")
    assert read_manifest(out) == {"a.csv", "figs/f.svg"}
    assert check_output_folder(out) is True  # earlier results, all hwsim's: replaceable
    (out / "figs" / "mine.txt").write_text("the user's")
    with pytest.raises(OutputError, match=r"holds figs/mine\.txt, which hwsim did not write"):
        check_output_folder(out)
    (out / "figs" / "mine.txt").unlink()
    (out / ".git").mkdir()  # hidden entries count too
    (out / ".git" / "HEAD").write_text("ref")
    with pytest.raises(OutputError, match=r"holds \.git/HEAD"):
        check_output_folder(out)
    shutil.rmtree(out / ".git")
    record_outputs(out, ["state.csv"])  # listed before it is written (a sweep's state file)
    (out / "state.csv").write_text("1")
    assert check_output_folder(out) is True
    assert check_output_folder(tmp_path / "new") is False


def _killed_writer(folder: Path) -> None:
    """A process that SIGKILLs itself while it writes into an output folder."""
    code = (
        "import os, signal, sys; from pathlib import Path; from hwsim.atomic import atomic_folder\n"
        "with atomic_folder(Path(sys.argv[1])) as tmp:\n"
        "    (tmp / 'a.csv').write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT, check=False)
    assert done.returncode == -signal.SIGKILL


def test_a_killed_run_s_temporary_folder_is_removed_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    _killed_writer(out)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and TEMP.match(left[0]) and not out.exists(), left
    check_output_folder(out)  # the next run's check, before any work
    assert list(tmp_path.iterdir()) == []


def test_a_running_writer_s_folder_is_not_touched(tmp_path):
    """A temporary folder whose process still runs belongs to a concurrent run: kept, and the
    output folder refused while it writes."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f".out.{sleeper.pid}.abcd1234.tmp"
        busy.mkdir()
        with pytest.raises(OutputError, match=f"another hwsim run \\(process {sleeper.pid}\\)"):
            check_output_folder(tmp_path / "out")
        assert busy.is_dir()
    finally:
        sleeper.kill()
        sleeper.wait()
    check_output_folder(tmp_path / "out")
    assert not busy.exists()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_a_really_full_disk_names_the_path_and_the_space(tmp_path):
    """estimate into a 4 KiB tmpfs (mounted in a user namespace): exit 2, the output path and
    the space free there named, no folder and no temporary file left on the disk."""
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "out"
    cli = [sys.executable, "-m", "hwsim.cli", "estimate", "--net", "vgg11", "--input", "1x16x16",
           "--width", "0.0625", "--out", str(out)]  # fmt: skip
    script = f"mount -t tmpfs -o size=4k tmpfs {disk} || exit 99; {' '.join(cli)}; echo rc=$?;"
    script += f" ls -A {disk}"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                          cwd=ROOT, check=False, env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    if done.returncode == 99 or "rc=" not in done.stdout:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {done.stderr[-200:]}")
    text = " ".join((done.stdout + done.stderr).split())
    assert "rc=2" in text, text
    assert re.search(
        rf"error: {re.escape(str(out))}\S*: no space left on the disk \(\d+ B free", text
    )
    assert done.stdout.rstrip().endswith("rc=2"), text  # ls -A printed nothing: the disk is empty


def test_identical_runs_write_identical_svgs(tmp_path):
    import numpy as np

    from hwsim.report.figures import plot_alpha

    alpha = {"BSF-Grid": np.linspace(0, 5, 20)}
    pwl = {"BSF-Grid": (np.arange(0, 20, 5), np.linspace(0, 5, 4))}
    a = plot_alpha(alpha, pwl, tmp_path / "a", title="t")
    b = plot_alpha(alpha, pwl, tmp_path / "b", title="t")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
