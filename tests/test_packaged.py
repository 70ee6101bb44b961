"""Packaged architectures and models (hwsim.model.packaged): found by name from any working
directory, the same files as the checkout's arch_configs/ and models/, all in the wheel's
package data; the default trace cache outside the working directory; a missing input refused
before torch or numba load (issue 27 item 2)."""

import fnmatch
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

import hwsim
from hwsim.cli.main import main
from hwsim.model import packaged
from hwsim.model.packaged import (
    ARCH_FOLDER,
    MODEL_FOLDER,
    arch_names,
    cache_root,
    model_names,
    resolve_arch,
    resolve_model,
)

ROOT = Path(__file__).resolve().parents[1]


def test_names_resolve_to_the_packaged_files_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_arch("spikesim") == ARCH_FOLDER / "spikesim.yaml"
    assert resolve_arch("spikesim.yaml") == ARCH_FOLDER / "spikesim.yaml"
    assert resolve_model("vgg19") == MODEL_FOLDER / "vgg19.pt"
    assert resolve_model("vgg19.pt") == MODEL_FOLDER / "vgg19.pt"
    assert {"spikesim", "spikesim_chip", "isaac"} <= set(arch_names())
    assert {"vgg19", "vgg19_fashion"} <= set(model_names())
    # a path with a folder part, and an unknown name, stay as given (the CLI reports them)
    assert resolve_arch("configs/spikesim") == Path("configs/spikesim")
    assert resolve_model("nope") == Path("nope")
    assert resolve_model("vgg19.nir") == Path("vgg19.nir")  # another suffix: not the .pt


def test_a_file_of_that_name_here_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("spikesim").write_text("mine")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vgg19.pt").write_bytes(b"mine")
    assert resolve_arch("spikesim") == Path("spikesim")
    assert resolve_model("vgg19.pt") == Path("models/vgg19.pt")  # DESIGN.md: models/NAME first


def test_the_checkout_folders_are_the_packaged_files():
    for name in arch_names():
        assert (ROOT / "arch_configs" / f"{name}.yaml").samefile(ARCH_FOLDER / f"{name}.yaml")
    for name in model_names():
        assert (ROOT / "models" / f"{name}.pt").samefile(MODEL_FOLDER / f"{name}.pt")


def test_every_packaged_file_is_package_data():
    """setuptools ships what pyproject's package-data globs match (the CI's wheel job installs
    the wheel and runs the default job from an empty folder)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["hwsim"]
    package = Path(hwsim.__file__).parent
    files = [p.relative_to(package).as_posix() for p in packaged.DATA.rglob("*") if p.is_file()]
    assert files
    for f in files:
        assert any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs), f


def test_the_default_cache_is_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("HWSIM_TRACES", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "hwsim" / "traces"
    monkeypatch.setenv("HWSIM_TRACES", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


def test_commands_run_by_name_from_another_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["map", "--arch", "spikesim", "--model", "vgg19", "--out", "m"])
    assert code == 0, capsys.readouterr()
    code = main(["estimate", "--net", "vgg11", "--input", "1x16x16", "--out", "e"])
    assert code == 0, capsys.readouterr()
    assert (tmp_path / "m" / "summary.json").is_file()
    assert '"arch": "spikesim"' in (tmp_path / "e" / "summary.json").read_text()


FAST = (
    "import sys, time; t = time.perf_counter(); from hwsim.cli.main import main; code ="
    " main(sys.argv[1:]); print(sorted({'torch', 'numba'} & set(sys.modules)),"
    " time.perf_counter() - t, file=sys.stderr); sys.exit(code)"
)


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["run", "--model", "missing.pt"], "--model missing.pt"),
        (["run", "--arch", "missing"], "--arch missing"),
        (["run", "--data-root", "no/such/folder"], "--data-root no/such/folder"),
        (["run", "--trace", "no/such/trace"], "--trace no/such/trace"),
        (["sweep", "--model", "vgg19", "missing.nir"], "--model missing.nir"),
        (["ablation", "--base", "missing.yaml"], "--base missing.yaml"),
        (["map", "--model", "missing.nir"], "--model missing.nir"),
        (["calibrate", "--arch", "spikesim", "--measurements", "m.csv", "--out", "c.yaml"],
         "--measurements m.csv"),
        (["run", "--config", "missing.yaml"], "--config missing.yaml"),
    ],
)  # fmt: skip
def test_a_missing_input_fails_at_once_without_loading_torch(argv, flag, tmp_path):
    """Exit 2 naming the option, with neither torch nor numba imported (issue 27)."""
    env = {**os.environ, "HWSIM_TRACES": str(tmp_path / "traces"), "COLUMNS": "200"}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", FAST, *argv], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    wall = time.perf_counter() - start
    assert out.returncode == 2, out.stderr
    assert f"error: {flag}: no such file or folder" in out.stderr
    loaded, _ = out.stderr.strip().splitlines()[-1].split("] ")
    assert loaded == "[", out.stderr  # neither torch nor numba
    assert wall < 10  # about 0.5-1 s on the 2-core AMD EPYC under load; a loose bound
    assert list(tmp_path.iterdir()) == []
