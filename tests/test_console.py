"""The console at 80 columns (a narrow terminal, or a pipe): every command's tables are whole,
no cell cut to "…", no line wider than the console; --quiet prints nothing; summary.json."""

import json
import re

import numpy as np
import pytest
from rich.console import Console
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


def test_estimate_gets_its_compact_layout_with_every_layer(narrow, tmp_path, capsys):
    """At 80 columns the 12-column estimate table becomes per-layer totals with the largest
    component, then the components: no "part 1/3" splits."""
    argv = ["estimate", "--arch", ARCH, "--net", "vgg19", "--input", "3x32x32", "--ic", "3,5"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    lines = lines_of(capsys)
    assert_whole(lines, "ic3.linear", "ic5.gap", "fc.linear", "tile_buffer", "largest component")
    assert not any("(part" in line for line in lines)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["command"] == "estimate" and summary["energy_per_timestep_pj"] > 0


def test_map_and_the_model_commands_fit_80_columns(narrow, tiny_checkpoint, tmp_path, capsys):
    _, model = tiny_checkpoint
    common = ["--model", str(model), "--timesteps", "20", "--traces", str(tmp_path / "t")]
    runs = {
        "map": (["map", "--arch", ARCH, "--model", str(model), "--out", str(tmp_path / "m")],
                ["conv7", "ic4.linear", "fc.linear", "used:", "tiles"]),
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
                       ["clips", "ADC conversions clipped"]),
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
    """With 3 timesteps nothing reaches the output: the run warns that T is far too short and
    says that no curve can be extrapolated yet, rather than guessing a T."""
    _, model = tiny_checkpoint
    argv = ["run", "--arch", ARCH, "--model", str(model), "--timesteps", "3", "--ic", "4",
            "--images", "8", "--tune-images", "8", "--tune-on", "train", "--bootstrap", "100",
            "--traces", str(tmp_path / "t"), "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "warning: T = 3 is far too short for this model" in text
    assert "No method reached the target" in text and "there is no estimate for DL" in text
    assert "Rerun with a much larger --timesteps" in text
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert not any(m["reached"] for m in summary["methods"].values())
    assert summary["notes"]


def test_a_run_names_its_chip_and_model_and_splits_no_table(narrow, tiny_checkpoint, tmp_path,
                                                            capsys):  # fmt: skip
    """The header names the model and the chip (tiles, PEs, area, clock: `hwsim map`'s numbers
    for the run's backbone + IC + FC); every table fits 80 columns in its compact layout, with
    one latency unit; in a pipe the progress comes as timestamped lines."""
    from hwsim.hw.arch import load_arch
    from hwsim.hw.area import chip_area
    from hwsim.hw.mapping import map_network

    ckpt, model = tiny_checkpoint
    argv = ["run", "--arch", ARCH, "--model", str(model), "--timesteps", "20", "--ic", "4",
            "--images", "16", "--tune-images", "16", "--tune-on", "train", "--bootstrap", "100",
            "--threads", "1", "--traces", str(tmp_path / "t"),
            "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 0
    lines = lines_of(capsys)
    assert_whole(lines, "BSF-Grid*", "*: with the exact alpha(t)", "Q")
    assert not any("(part" in line for line in lines)
    text = " ".join(" ".join(lines).split())
    arch = load_arch(ARCH)
    chip = map_network(arch, ckpt.spec.graph().with_heads({4, -1}))
    area = chip_area(chip).total_mm2
    rows, cols = chip.mesh_shape
    assert (
        f"chip spikesim: {chip.tiles} tiles ({rows} x {cols} mesh), {chip.pes} PEs,"
        f" {chip.crossbars:,} crossbars, {area:.3g} mm^2, {arch.clock_mhz:g} MHz" in text
    )
    assert f"model vgg11 w=0.0625 ({model.name}): input 1x16x16" in text
    units = {u for u in ("(ns)", "(us)", "(ms)") if f"latency {u}" in text}
    assert len(units) == 1  # the target table's latency unit ...
    unit = units.pop().strip("()")
    assert f"mean {unit}" in text and f"p99 {unit}" in text  # ... is the chip table's
    stamped = [line for line in lines if re.match(r"^\[\d\d:\d\d:\d\d\] simulate ", line)]
    assert any("simulate test images: 16/16 (100%)" in line and "done" in line for line in stamped)


def test_progress_lines_carry_an_eta_from_the_mean_rate():
    """LogLines against a fake clock: a line when a stage starts, when it crosses a tenth (at
    most one per min_gap), and when it ends; ETA = what is left / the mean rate so far."""
    from hwsim.cli.output import LogLines

    console = Console(record=True, width=120)
    now = [0.0]
    log = LogLines(console, {"test": "simulate test images"}, clock=lambda: now[0])
    for t, done in ((0.0, 0), (10.0, 25), (10.5, 26), (11.0, 40), (40.0, 100), (41.0, 100)):
        now[0] = t
        log("test", done, 100)
    lines = console.export_text().splitlines()
    assert [line[11:] for line in lines] == [
        "simulate test images: 0/100 (0%), 0 s, started",
        "simulate test images: 25/100 (25%), 10 s, ETA 30 s",  # 75 left at 2.5 per s
        "simulate test images: 100/100 (100%), 40 s, done",
    ]
    assert all(re.match(r"^\[\d\d:\d\d:\d\d\] ", line) for line in lines)


def _crossing(plateau, tau, k, chance, target):
    """The first integer t at which rise_curve reaches target, by a plain loop."""
    t = 1
    while chance + (plateau - chance) / (1 + (tau / t) ** k) < target:
        t += 1
    return t


def test_the_target_timestep_is_extrapolated_from_a_rising_curve():
    from hwsim.report.summary import Outlook, advised_timesteps, extrapolate, rise_curve

    chance, target = 0.1, 0.9
    t = np.arange(1, 81)
    acc = rise_curve(t, 0.95, 40.0, 3.0, chance)
    x = extrapolate(acc, target, chance)
    assert x.outlook is Outlook.ESTIMATED and x.timestep == _crossing(0.95, 40, 3, chance, target)
    assert x.plateau == pytest.approx(0.95, abs=1e-6)
    assert advised_timesteps([x.timestep]) == 10 * -(-1.25 * x.timestep // 10)
    # within T: the first step that reaches it
    long = rise_curve(np.arange(1, 201), 0.95, 40.0, 3.0, chance)
    assert extrapolate(long, target, chance).timestep == _crossing(0.95, 40, 3, chance, target)
    # levelling off below the target: not reachable, at the fitted plateau
    low = extrapolate(rise_curve(t, 0.85, 30.0, 3.0, chance), target, chance)
    assert low.outlook is Outlook.PLATEAU and low.plateau == pytest.approx(0.85, abs=1e-4)
    # not yet halfway from chance to the target: no estimate
    early = extrapolate(rise_curve(np.arange(1, 21), 0.95, 40.0, 3.0, chance), target, chance)
    assert early.outlook is Outlook.UNKNOWN and early.timestep is None


def test_the_notes_name_the_methods_that_missed_and_what_their_curves_say():
    """advice_notes on an evaluation where DL reaches the target and SL levels off below it
    (curves built from rise_curve, so the plateau is known)."""
    from types import SimpleNamespace

    from hwsim.methods import Method
    from hwsim.report.summary import advice_notes, rise_curve, too_short

    t = np.arange(1, 101)
    curves = {
        Method.DL: SimpleNamespace(accuracy=rise_curve(t, 0.99, 30.0, 3.0, 0.1)),
        Method.SL: SimpleNamespace(accuracy=rise_curve(t, 0.85, 30.0, 3.0, 0.1)),
    }
    summary = {
        m: SimpleNamespace(target=SimpleNamespace(timestep=50 if m is Method.DL else None))
        for m in curves
    }
    ev = SimpleNamespace(summary=summary, curves=curves, target=0.9)
    (note,) = advice_notes(ev, 100, classes=10)
    assert note.startswith("SL did not reach the target 90.00% within 100 timesteps.")
    assert "not reachable by SL (levels off at 85.0%). More timesteps will not help." in note
    assert too_short(ev, 100, classes=10) is None
    ev.curves[Method.DL] = SimpleNamespace(accuracy=np.full(100, 0.3))
    assert "T = 100 is far too short" in too_short(ev, 100, classes=10)
