"""The command line: exit codes, messages that name the bad input, no partial outputs."""

import pandas as pd
import pytest

from hwsim.cli import main, parse_ic_list

ARCH = "arch_configs/spikesim.yaml"


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, " ".join((out.out + out.err).split())


def test_run_writes_reports(tiny_checkpoint, tmp_path, capsys):
    _, path = tiny_checkpoint
    out = tmp_path / "out"
    code, text = run_cli(
        capsys, "run", "--arch", ARCH, "--model", str(path), "--ic", "4",
        "--timesteps", "30", "--images", "32", "--tune-images", "32", "--out", str(out),
    )  # fmt: skip
    assert code == 0, text
    assert "BSF-Grid" in text and "tile_buffer" in text
    frame = pd.read_csv(out / "accuracy_energy.csv")
    assert len(frame) == 30


def test_estimate_writes_breakdown(tmp_path, capsys):
    code, text = run_cli(
        capsys, "estimate", "--arch", ARCH, "--net", "vgg19", "--input", "3x32x32",
        "--classes", "10", "--ic", "5", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, text
    frame = pd.read_csv(tmp_path / "energy_breakdown.csv")
    assert list(frame["layer"][-4:]) == ["ic5.gap", "ic5.linear", "fc.gap", "fc.linear"]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["run", "--model", "nope.pt"], "nope.pt"),
        (["estimate", "--input", "3x32"], "expected CxHxW"),
        (["estimate", "--ic", "x"], "--ic"),
        (["estimate", "--ic", "20"], "IC position 20"),
        (["estimate", "--arch", "missing.yaml"], "missing.yaml"),
    ],
)
def test_bad_input_exits_non_zero_with_a_named_cause(argv, needle, capsys, tmp_path):
    code, text = run_cli(capsys, *argv, "--out", str(tmp_path / "o"))
    assert code == 2
    assert needle in text
    assert not (tmp_path / "o").exists()


def test_bad_arch_file_is_named(tmp_path, capsys, tiny_checkpoint):
    _, path = tiny_checkpoint
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nclock_mhz: -5\n")
    code, text = run_cli(capsys, "run", "--arch", str(bad), "--model", str(path), "--out",
                         str(tmp_path / "o"))  # fmt: skip
    assert code == 2 and "bad.yaml" in text
    assert not (tmp_path / "o").exists()


def test_ic_list_forms():
    assert parse_ic_list("3:5") == (3, 4, 5)
    assert parse_ic_list("8,3,3") == (3, 8)
    assert parse_ic_list("all", 4) == (0, 1, 2, 3)
    assert parse_ic_list("none") == ()


def test_tune_writes_luts_that_run_reuses(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    import json

    import hwsim.api as api

    _, path = tiny_checkpoint
    traces = tmp_path / "traces"
    common = ["--model", str(path), "--timesteps", "30", "--traces", str(traces)]
    code, text = run_cli(capsys, "tune", *common, "--ic", "4", "--tune-images", "32")
    assert code == 0, text
    files = list(traces.glob("*/tuning-ic4-joint.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    assert set(stored["tuning"]["luts"]) == {"BSF-Grid", "BSF-Emp"}

    def no_tuning(*a, **k):
        raise AssertionError("re-tuned although a stored tuning exists")

    monkeypatch.setattr(api, "tune_methods", no_tuning)
    code, text = run_cli(
        capsys, "run", "--arch", ARCH, *common, "--ic", "4", "--images", "16",
        "--tune-images", "32", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, text


def test_map_prints_and_writes_the_mapping(tiny_checkpoint, tmp_path, capsys):
    _, path = tiny_checkpoint
    code, text = run_cli(capsys, "map", "--arch", ARCH, "--model", str(path), "--out",
                         str(tmp_path))  # fmt: skip
    assert code == 0, text
    frame = pd.read_csv(tmp_path / "mapping.csv")
    assert "conv0" in set(frame["layer"]) and "ic4.linear" in set(frame["layer"])
    assert "mm^2" in text


def test_functional_mode_with_a_wide_adc_matches_the_quantised_engine(tiny_checkpoint, capsys):
    _, path = tiny_checkpoint
    argv = ["functional", "--arch", ARCH, "--model", str(path), "--images", "8"]
    argv += ["--timesteps", "20", "--adc-bits", "12", "--first-layer", "digital"]
    code, text = run_cli(capsys, *argv)
    assert code == 0, text
    assert "100.00%" in text  # 12-bit ADC: every FC output spike equals the ideal engine's
