"""docs/profile.md's example runs as written: its Python block (train, export to NIR with an IC
added, `hwsim.profile`) and then its `hwsim` commands, in order, in an empty folder."""

import re
import shlex
from pathlib import Path

import pytest

from hwsim.cli.main import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "profile.md"
SECTION = "## From a sinabs network to the chip report and the fusion curves"


def blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block of the example's section, in order."""
    text = DOC.read_text()
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w*)\n(.*?)```", body, re.S)


def test_the_example_section_has_python_then_commands():
    kinds = [lang for lang, _ in blocks()]
    assert kinds[0] == "python" and "" in kinds[1:]


@pytest.mark.slow  # about a minute: three epochs of training and a 200-image run
def test_the_profile_page_runs_as_written(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sinabs")
    pytest.importorskip("mlxtend")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HWSIM_TRACES", str(tmp_path / "traces"))
    scope: dict = {}
    for lang, text in blocks():
        if lang == "python":
            exec(compile(text, str(DOC), "exec"), scope)  # noqa: S102 - the docs' own example
            continue
        for line in text.splitlines():
            if line.startswith("hwsim "):
                assert main(shlex.split(line)[1:]) == 0, line
    report, frame = scope["report"], scope["frame"]
    assert report.images == 200 and report.timesteps == 40
    assert report.accuracy[-1] > 0.8  # the FC, as the page reports it (86.4 %)
    assert frame["energy_pj"].sum() == pytest.approx(report.energy.energy_pj.sum())
    assert (tmp_path / "net.nir").is_file() and (tmp_path / "run" / "accuracy_energy.png").is_file()
    assert "energy per inference" in capsys.readouterr().out
