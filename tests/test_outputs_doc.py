"""The docs against what hwsim does: every file and column docs/outputs.md names exists in a
tiny run's outputs (run, sweep, map, estimate, functional, ablation), and every file, column
and summary.json key of those outputs is documented; docs/api.md's notebook example runs as
written; `import hwsim` exports the API."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import hwsim
from hwsim.atomic import MANIFEST
from hwsim.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ARCH = "arch_configs/spikesim.yaml"


def sections(text: str) -> dict[str, str]:
    """Level-2 heading -> its body."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def first_cells(body: str) -> list[list[str]]:
    """The backticked names in the first cell of each row of the body's tables (header and
    rule rows left out); a parenthesised part of a cell is a remark, not a name."""
    rows = [line for line in body.splitlines() if line.startswith("|")]
    names = []
    for line in rows[2:] if rows else []:
        cell = line.split("|")[1]
        names.append(re.findall(r"`([^`]+)`", cell))
    return names


def pattern(name: str) -> re.Pattern:
    """A documented name as a regex: a placeholder (<method>, <component>, ...) stands for a
    word."""
    parts = re.split(r"<[a-z]+>", name)
    return re.compile("[a-z0-9_]+?".join(map(re.escape, parts)) + "$")


@pytest.fixture(scope="module")
def outputs(tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    """Output folders of a tiny run of every command that writes one (and functional's
    --summary), keyed by command."""
    _, model = tiny_checkpoint
    tmp = tmp_path_factory.mktemp("outputs")
    common = ["--model", str(model), "--timesteps", "20", "--images", "16", "--threads", "1",
              "--traces", str(tmp / "t"), "--quiet"]  # fmt: skip
    tuning = ["--tune-images", "16", "--tune-on", "train", "--bootstrap", "100"]
    geometry = ["--net", "vgg11", "--input", "1x16x16", "--width", "0.0625"]
    runs = {
        "run": ["run", "--arch", ARCH, *common, *tuning, "--ic", "4"],
        "sweep": ["sweep", "--arch", ARCH, *common, *tuning, "--ic-positions", "4"],
        "map": ["map", "--arch", ARCH, "--model", str(model), "--quiet"],
        "estimate": ["estimate", "--arch", ARCH, *geometry, "--ic", "2,4", "--quiet"],
        "functional": ["functional", "--arch", ARCH, "--model", str(model), "--images", "4",
                       "--timesteps", "10", "--adc-bits", "4,8", "--ic", "4", "--quiet",
                       "--summary", str(tmp / "functional.json")],
        "ablation": ["ablation", "--arch", "arch_configs/spikesim_chip.yaml", "--base", ARCH,
                     *geometry, "--timesteps", "20", "--quiet"],
    }  # fmt: skip
    folders = {}
    for command, argv in runs.items():
        folders[command] = tmp / command
        assert main([*argv, "--out", str(tmp / command)]) == 0, command
    return folders


def documented() -> tuple[dict[str, list[re.Pattern]], set[str], dict[str, set[str]]]:
    """From docs/outputs.md: per file its documented columns (or keys) as patterns, the
    documented figure files, and per command its summary.json keys."""
    text = (DOCS / "outputs.md").read_text()
    files: dict[str, list[re.Pattern]] = {}
    figures: set[str] = set()
    keys: dict[str, set[str]] = {}
    for heading, body in sections(text).items():
        named = [n for n in re.findall(r"`([^`]+)`", heading) if "." in n]
        if heading.startswith("Figures"):
            figures = {n for cell in first_cells(body) for n in cell}
        elif named == ["summary.json"]:
            for line in body.splitlines():
                cells = line.split("|")
                if line.startswith("| `") and len(cells) > 3:
                    command = cells[1].strip().strip("`")
                    top = re.sub(r"\([^)]*\)", "", cells[2])  # nested keys: in parentheses
                    keys[command] = set(re.findall(r"`([^`]+)`", top))
        for name in named:
            files[name] = [pattern(n) for cell in first_cells(body) for n in cell]
    return files, figures, keys


def test_every_output_file_and_column_is_documented_and_every_documented_one_exists(outputs):
    files, figures, keys = documented()
    written: dict[str, list[Path]] = {}
    for folder in outputs.values():
        for path in folder.iterdir():
            if path.name != MANIFEST:
                written.setdefault(path.name, []).append(path)
    assert set(written) == set(files) | figures  # no file undocumented, none documented missing
    for name, paths in written.items():
        if name.endswith(".csv"):
            columns = {c for p in paths for c in pd.read_csv(p).columns}
        elif name == "alpha_lut.json":
            columns = {k for v in json.loads(paths[0].read_text()).values() for k in v}
        else:
            continue
        documented_columns = files[name]
        undocumented = [c for c in columns if not any(p.match(c) for p in documented_columns)]
        assert not undocumented, f"{name}: {undocumented} not in docs/outputs.md"
        missing = [p.pattern for p in documented_columns if not any(p.match(c) for c in columns)]
        assert not missing, f"{name}: documented {missing} not written"
    for command, folder in outputs.items():
        path = folder / "summary.json"
        if command == "functional":
            path = folder.with_suffix(".json")  # --summary: the folder holds only its outputs
        got = set(json.loads(path.read_text())) - {"command"}
        assert got == keys[command], f"summary.json of {command}"


def test_the_api_page_example_runs_as_written(tmp_path, monkeypatch):
    """docs/api.md's notebook block, run from a folder that holds the repository's
    arch_configs/ and models/ (its traces land there, not in the checkout)."""
    text = (DOCS / "api.md").read_text()
    block = re.search(r"## A notebook example.*?```python\n(.*?)```", text, re.S).group(1)
    assert len([line for line in block.splitlines() if line and not line[0].isspace()]) <= 6
    for folder in ("arch_configs", "models"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "docs/api.md", "exec"), scope)  # noqa: S102 - the docs' own example
    frame = eval(block.strip().splitlines()[-1].split("#")[0], scope)  # noqa: S307
    assert list(frame["method"][:2]) == ["DL", "SL"] and "reduction_pct" in frame
    assert scope["result"].test.key.images == 16 and (tmp_path / "traces").is_dir()


def test_import_hwsim_exports_the_api_lazily():
    from hwsim import api

    assert set(hwsim.__all__) - {"__version__"} == set(api.__all__)
    assert hwsim.run is api.run and hwsim.RunConfig is api.RunConfig
    code = "import sys, hwsim; print(sorted({'torch', 'numba'} & set(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
    with pytest.raises(AttributeError):
        hwsim.no_such_name  # noqa: B018
