"""`hwsim report DIR --html`: one self-contained page of a finished run folder, parsed back:
every figure of the folder embedded byte for byte, every CSV a table with its columns and rows,
summary.json's data, nothing loaded from outside the page; and the same folder as text."""

import base64
import json
from html.parser import HTMLParser

import pandas as pd
import pytest

from hwsim.atomic import read_manifest
from hwsim.cli.main import main

ARCH = "arch_configs/spikesim.yaml"
VOID = {"meta", "img", "br", "hr", "link", "input"}


class Page(HTMLParser):
    """The parts of the page the tests check: images, tables (rows of cells, th and td alike),
    ids, every src/href, and whether every element that was opened was closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, str] = {}  # alt -> src
        self.tables: list[list[list[str]]] = []
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.stack: list[str] = []
        self.balanced = True
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        self.links += [a[k] for k in ("src", "href") if k in a]
        if tag == "img":
            self.images[a.get("alt", "")] = a.get("src", "")
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        if tag in VOID:
            return
        if not self.stack or self.stack.pop() != tag:
            self.balanced = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def run_folder(tiny_checkpoint, tmp_path_factory):
    """A finished `hwsim run` (cycle timing: every figure) of the tiny model."""
    _, model = tiny_checkpoint
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "run"
    argv = ["run", "--arch", ARCH, "--model", str(model), "--timesteps", "20", "--ic", "4",
            "--images", "16", "--tune-images", "16", "--tune-on", "train", "--bootstrap", "100",
            "--threads", "1", "--traces", str(tmp / "t"), "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_the_page_embeds_every_figure_and_tabulates_every_csv(run_folder, capsys):
    assert main(["report", str(run_folder), "--html"]) == 0
    page_path = run_folder / "report.html"
    assert f"wrote {page_path}" in capsys.readouterr().out
    assert "report.html" in read_manifest(run_folder)  # a later run may replace the folder
    page = Page()
    page.feed(page_path.read_text())
    page.close()
    assert page.balanced and not page.stack
    # self-contained: every src or href is inline data or a link within the page
    assert all(link.startswith(("data:", "#")) for link in page.links), page.links
    pngs = sorted(p.name for p in run_folder.glob("*.png"))
    assert {"accuracy_energy.png", "alpha.png", "latency_histogram.png"} <= set(pngs)
    assert "link_utilisation.png" in pngs  # the floorplan with its link loads
    assert sorted(page.images) == pngs
    for name in pngs:
        head, data = page.images[name].split(",", 1)
        assert head == "data:image/png;base64"
        assert base64.b64decode(data) == (run_folder / name).read_bytes()
    csvs = sorted(run_folder.glob("*.csv"))
    assert len(csvs) >= 8 and len(page.tables) == len(csvs)
    by_header = {tuple(t[0]): t for t in page.tables}
    for path in csvs:
        frame = pd.read_csv(path)
        assert f"table-{path.name}" in page.ids
        table = by_header[tuple(frame.columns)]
        assert len(table) == 1 + len(frame)  # header + one row per record
        first = frame.iloc[0, 0]
        assert table[1][0] == ("" if pd.isna(first) else f"{first:.6g}" if isinstance(first, float)
                               else str(first))  # fmt: skip
    summary = json.loads((run_folder / "summary.json").read_text())
    text = page_path.read_text()
    assert f"<dt>target_accuracy</dt><dd>{summary['target_accuracy']}</dd>" in text
    assert "alpha_lut.json" in text and "summary.json" in text


def test_the_page_can_go_elsewhere_and_the_folder_reads_as_text(run_folder, tmp_path, capsys,
                                                                  monkeypatch):  # fmt: skip
    page = tmp_path / "page.html"
    assert main(["report", str(run_folder), "--html", "--out", str(page)]) == 0
    assert page.read_text().startswith("<!DOCTYPE html>")
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["report", str(run_folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 80 and not any("(part" in line for line in lines)
    text = "\n".join(lines)
    assert "figure link_utilisation.png: The chip's floorplan" in text
    assert "target_accuracy:" in text and "table accuracy_energy.csv" in text


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    def error() -> str:
        return " ".join(capsys.readouterr().err.split())  # rich's line breaks undone

    assert main(["report", str(tmp_path / "missing"), "--html"]) == 2
    assert "missing: no such folder" in error()
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "holds no summary.json, CSV or figure" in error()
