"""Golden regression: the README's cheap numbers stay what they were.

`hwsim estimate` and `hwsim map` on the default model (`models/vgg19.pt`, with its 16 ICs and
with IC 8 only, the chip of the README's run) and on the full-width VGG19 / CIFAR-10 geometry
must give the summary JSON, the CSV rows and the area by component that commit aec2d45 gave
(tests/golden/readme_numbers.json says how each was produced), to a relative 1e-9. A refactor
that changes one fails here; an intended change regenerates the file with
`python -m tests.test_golden` and says why in its commit.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hwsim.cli import main
from hwsim.hw.arch import load_arch
from hwsim.hw.area import chip_area
from hwsim.hw.mapping import map_network
from hwsim.model.nets import load_checkpoint
from hwsim.model.netspec import NetSpec

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden" / "readme_numbers.json"
CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text())["cases"]
REL = 1e-9
COMMENT = (
    "Golden values for tests/test_golden.py, produced by hwsim at commit {commit}: for each"
    " case, `hwsim <argv> --out O --summary S --quiet` run from the repository root, S's JSON"
    " as `summary` and O's CSV as `csv_rows` (cells as the CSV writes them, numbers parsed);"
    " for map cases `area_mm2_by_component` is hwsim.hw.area.chip_area(hwsim.hw.mapping."
    "map_network(load_arch(arch), spec.graph())).per_component_um2() / 1e6 with the case's"
    " `spec`, and `area_mm2` its total_mm2. Energies in pJ per timestep, areas in mm2."
    " Regenerate only for an intended change (python -m tests.test_golden) and say why in the"
    " commit."
)
"""How the golden file was made; {commit} is `git describe --always --dirty` of the code."""


def _cell(text: str) -> int | float | str:
    """A CSV cell as the golden file holds it: an int, else a float, else the text."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def run_case(case: dict[str, Any], tmp: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary JSON, CSV rows) of the case's command, run from the repository root with its
    outputs in `tmp`."""
    out, summary = tmp / "out", tmp / "summary.json"
    code = main([*case["argv"], "--out", str(out), "--summary", str(summary), "--quiet"])
    assert code == 0, f"{case['name']}: exit {code}"
    with open(out / case["csv"], newline="") as f:
        rows = [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return json.loads(summary.read_text()), rows


def area_mm2(case: dict[str, Any]) -> tuple[dict[str, float], float]:
    """(area by component, total) in mm^2 of the case's network on its architecture."""
    arch = load_arch(ROOT / case["argv"][case["argv"].index("--arch") + 1])
    area = chip_area(map_network(arch, NetSpec.from_dict(case["spec"]).graph()))
    return {k: v / 1e6 for k, v in area.per_component_um2().items()}, area.total_mm2


def assert_same(got: Any, want: Any, where: str) -> None:
    """Equal structure, keys and text; integers exactly, floats to REL."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), f"{where}: keys {got!r}"
        for key in want:
            assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert isinstance(got, (int, float)) and got == pytest.approx(want, rel=REL), (
            f"{where}: {got!r} != {want!r}"
        )
    else:  # int, str, bool, None
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_readme_numbers_are_unchanged(case, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the argv names the arch and the model from the repository root
    summary, rows = run_case(case, tmp_path)
    assert_same(summary, case["summary"], f"{case['name']} summary")
    assert_same(rows, case["csv_rows"], f"{case['name']} {case['csv']}")
    if "area_mm2_by_component" in case:
        by_component, total = area_mm2(case)
        assert_same(by_component, case["area_mm2_by_component"], f"{case['name']} area")
        assert_same(total, case["area_mm2"], f"{case['name']} area")
        assert summary["area_mm2"] == pytest.approx(total, rel=REL)  # the CLI's is the same


@pytest.mark.parametrize(
    "case", [c for c in CASES if "--model" in c["argv"]], ids=lambda c: c["name"]
)
def test_the_library_geometry_is_the_command_s(case):
    """The spec the area is computed on is the checkpoint's, with the command's --ic."""
    argv = case["argv"]
    spec = load_checkpoint(ROOT / argv[argv.index("--model") + 1]).spec.to_dict()
    if "--ic" in argv:
        spec["ic_positions"] = [int(v) for v in argv[argv.index("--ic") + 1].split(",")]
    assert spec == case["spec"]


def regenerate(tmp: Path) -> None:
    """Rewrite the golden file from this checkout's code (an intended change only)."""
    golden = json.loads(GOLDEN.read_text())
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    golden["comment"], golden["commit"] = COMMENT.format(commit=commit), commit
    os.chdir(ROOT)
    for i, case in enumerate(golden["cases"]):
        case["summary"], case["csv_rows"] = run_case(case, tmp / str(i))
        if "area_mm2_by_component" in case:
            case["area_mm2_by_component"], case["area_mm2"] = area_mm2(case)
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        regenerate(Path(folder))
