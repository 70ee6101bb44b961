"""`--config FILE` (hwsim.cli.config): options from YAML, the command line's flags winning,
unknown keys refused by name, and the config.yaml every run writes repeating the run."""

import json

import pytest
import yaml

from hwsim.atomic import read_manifest
from hwsim.cli.main import main


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, " ".join((out.out + out.err).split())


def numbers(summary: dict) -> dict:
    """summary.json without what a repeat may change: its wall time and its output paths."""
    return {k: v for k, v in summary.items() if k not in ("seconds", "files")}


def test_a_run_from_a_config_file_and_its_written_config_repeats_it(
    tiny_checkpoint, tmp_path, capsys
):
    _, path = tiny_checkpoint
    given = tmp_path / "run.yaml"
    given.write_text(
        yaml.safe_dump(
            {
                "arch": "spikesim",
                "model": str(path),
                "ic": 4,
                "timesteps": 40,  # the command line's --timesteps 30 wins
                "images": 32,
                "tune_images": 32,  # '_' reads as '-'
                "traces": str(tmp_path / "traces"),
                "bootstrap": 200,
                "timing": "analytic",
            }
        )
    )
    first = tmp_path / "first"
    code, text = run_cli(
        capsys, "run", "--config", str(given), "--timesteps", "30", "--out", str(first)
    )
    assert code == 0, text
    used = yaml.safe_load((first / "config.yaml").read_text())
    assert used["command"] == "run" and used["timesteps"] == 30 and used["images"] == 32
    assert used["tune-images"] == 32 and used["bootstrap"] == 200 and used["ic"] == 4
    assert used["model"] == str(path.absolute()) and used["arch"].endswith("spikesim.yaml")
    assert "out" not in used and "config" not in used
    assert "config.yaml" in read_manifest(first)
    summary = json.loads((first / "summary.json").read_text())
    assert summary["timesteps"] == 30 and summary["test_images"] == 32

    again = tmp_path / "again"
    code, text = run_cli(capsys, "run", "--config", str(first / "config.yaml"), "--out", str(again))
    assert code == 0, text
    assert numbers(json.loads((again / "summary.json").read_text())) == numbers(summary)
    assert (again / "config.yaml").read_text() == (first / "config.yaml").read_text()

    # repeating into the folder that holds the configuration would replace an input
    code, text = run_cli(capsys, "run", "--config", str(first / "config.yaml"), "--out", str(first))
    assert code == 2 and "--config" in text


@pytest.mark.parametrize(
    "content,needle",
    [
        ("timesteps: 30\nfrobnicate: 3\n", "'frobnicate' is no option of hwsim run"),
        ("timesteps: [1, 2]\n", "timesteps: [1, 2] is not a number or a text"),
        ("no-cache: 3\n", "no-cache: 3 is not true or false"),
        ("- timesteps\n", "expected a mapping of option names to values"),
        ("command: sweep\n", "written for hwsim sweep, not hwsim run"),
        ("timesteps: [\n", "not valid YAML"),
        ("config: other.yaml\n", "'config' is no option of hwsim run"),
    ],
)
def test_a_bad_config_file_is_refused_by_name(content, needle, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, text = run_cli(capsys, "run", "--config", str(bad), "--out", str(tmp_path / "o"))
    assert code == 2, text
    assert f"--config {bad}" in text and needle in text
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "content,needle",
    [
        ("timesteps: 0\n", "timesteps: 0 is out of range; expected 1..1000000"),
        ("timesteps: 1.5\n", "timesteps: '1.5' is not an integer"),
        ('images: "--help"\n', "images: '--help' starts with '-'"),
        ("timing: sundial\n", "timing: 'sundial': expected one of cycle, analytic"),
    ],
)
def test_a_config_value_is_checked_like_its_flag_and_named_with_the_file(
    content, needle, tmp_path, capsys
):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, text = run_cli(capsys, "run", "--config", str(bad), "--out", str(tmp_path / "o"))
    assert code == 2, text
    assert f"--config {bad}: {needle}" in text
    assert not (tmp_path / "o").exists()


def test_a_config_that_is_a_folder_is_refused_by_name(tmp_path, capsys):
    code, text = run_cli(capsys, "run", "--config", str(tmp_path), "--out", str(tmp_path / "o"))
    assert code == 2 and f"--config {tmp_path}: not a file" in text


@pytest.mark.parametrize("word", ["yes", "no", "on", "off"])
def test_keys_yaml_reads_as_booleans_are_option_names(word, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"all: true\n{word}: true\n")
    code, text = run_cli(capsys, "cache", "prune", "--config", str(cfg), "--traces",
                         str(tmp_path / "t"))  # fmt: skip
    if word == "yes":  # an option of hwsim cache: read, and nothing to prune
        assert code == 0 and "nothing to prune" in text, text
    else:  # named as written, not as True/False
        assert code == 2 and f"'{word}' is no option of hwsim cache" in text, text


def test_a_config_counts_as_given_for_options_that_would_not_act(tiny_checkpoint, tmp_path, capsys):
    _, path = tiny_checkpoint
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {path}\nsa0-rate: 0.1\nseed: 0\n")  # seed 0 is the default: unset
    code, text = run_cli(capsys, "run", "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert code == 2 and "--sa0-rate sets the chip's crossbars" in text
