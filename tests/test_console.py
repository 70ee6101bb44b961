"""The console at 80 columns (a narrow terminal, or a pipe): every command's tables are whole,
no cell cut to "…", no line wider than the console; --quiet prints nothing; summary.json."""

import json

import pytest
from rich.table import Table

from hwsim.cli.main import main
from hwsim.report.console import FittingConsole, fit_table

ARCH = "arch_configs/spikesim.yaml"


def lines_of(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def assert_whole(lines: list[str], *cells: str) -> None:
    text = "\n".join(lines)
    assert "…" not in text, text
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    for cell in cells:
        assert cell in text, f"{cell!r} not shown whole"


@pytest.fixture
def narrow(monkeypatch):
    """rich's width in a pipe: $COLUMNS (80 is also its default there)."""
    monkeypatch.setenv("COLUMNS", "80")


def test_estimate_table_is_split_into_parts_with_every_cell(narrow, tmp_path, capsys):
    argv = ["estimate", "--arch", ARCH, "--net", "vgg19", "--input", "3x32x32", "--ic", "3,5"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    lines = lines_of(capsys)
    assert_whole(lines, "ic3.linear", "ic5.gap", "fc.linear", "tile_buffer", "(part 1/")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["command"] == "estimate" and summary["energy_per_timestep_pj"] > 0


def test_map_and_the_model_commands_fit_80_columns(narrow, tiny_checkpoint, tmp_path, capsys):
    _, model = tiny_checkpoint
    common = ["--model", str(model), "--timesteps", "20", "--traces", str(tmp_path / "t")]
    runs = {
        "map": (["map", "--arch", ARCH, "--model", str(model), "--out", str(tmp_path / "m")],
                ["conv7", "ic4.linear", "fc.linear", "utilisation"]),
        "run": (["run", "--arch", ARCH, *common, "--ic", "4", "--images", "16",
                 "--tune-images", "16", "--tune-on", "train", "--bootstrap", "100",
                 "--out", str(tmp_path / "r")], ["BSF-Grid", "Early-Exit", "tile_buffer"]),
        "sweep": (["sweep", "--arch", ARCH, *common, "--ic-positions", "2,4", "--images", "16",
                   "--tune-images", "16", "--tune-on", "train", "--bootstrap", "100",
                   "--out", str(tmp_path / "s")], ["BSF-Grid"]),
        "tune": (["tune", *common, "--ic", "4", "--tune-images", "16", "--tune-on", "train"],
                 ["alpha t=10"]),
        "trace": (["trace", *common, "--images", "4"], ["trace of 4 test images"]),
        "functional": (["functional", "--arch", ARCH, "--model", str(model), "--images", "4",
                        "--timesteps", "10", "--adc-bits", "4,8", "--out", str(tmp_path / "f")],
                       ["ADC clip rate"]),
        "export": (["export", "--model", str(model), "--out", str(tmp_path / "x.nir")],
                   ["Outputs ic2, ic4, fc"]),
        "convert": (["convert", "--model", str(model), "--max-images", "64"], ["lambda"]),
    }  # fmt: skip
    for name, (argv, cells) in runs.items():
        code = main(argv)
        lines = lines_of(capsys)
        assert code == 0, (name, lines)
        assert_whole(lines, *cells)
    for folder, command in (("m", "map"), ("r", "run"), ("s", "sweep")):
        summary = json.loads((tmp_path / folder / "summary.json").read_text())
        assert summary["command"] == command
    run_summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert run_summary["ic"] == 4 and set(run_summary["methods"]) >= {"DL", "BSF-Grid"}


def test_quiet_prints_nothing_but_still_writes_the_summary(tmp_path, capsys):
    argv = ["estimate", "--arch", ARCH, "--net", "vgg11", "--input", "1x16x16", "--quiet"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads((tmp_path / "summary.json").read_text())["command"] == "estimate"


def test_a_wide_one_row_table_is_transposed_and_a_narrow_one_kept():
    console = FittingConsole(width=40, record=True)
    wide = Table(title="one row")
    for h in ("first header", "second header", "third header", "fourth header"):
        wide.add_column(h)
    wide.add_row("1,234.5 pJ", "2,345.6 pJ", "3,456.7 pJ", "4,567.8 pJ")
    (out,) = fit_table(console, wide, 40)
    assert len(out.columns) == 2 and out.row_count == 4
    console.print(wide)
    text = console.export_text()
    assert "…" not in text and "fourth header" in text and "4,567.8 pJ" in text
    narrow = Table()
    narrow.add_column("a")
    narrow.add_row("1")
    assert len(fit_table(console, narrow, 40)) == 1


def test_no_method_reaching_the_target_is_said_with_a_remedy(narrow, tiny_checkpoint, tmp_path,
                                                             capsys):  # fmt: skip
    """With 3 timesteps nothing reaches the output: the run says so and suggests more steps."""
    _, model = tiny_checkpoint
    argv = ["run", "--arch", ARCH, "--model", str(model), "--timesteps", "3", "--ic", "4",
            "--images", "8", "--tune-images", "8", "--tune-on", "train", "--bootstrap", "100",
            "--traces", str(tmp_path / "t"), "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "No method reached the target" in text and "--timesteps 6" in text
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert not any(m["reached"] for m in summary["methods"].values())
    assert summary["notes"]
