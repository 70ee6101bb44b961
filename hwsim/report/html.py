"""`hwsim report DIR`: one finished output folder as a single self-contained HTML page (or as
text on the console), built from the files in the folder alone.

The page holds what the command found (summary.json's headline and notes), every figure (the
PNGs embedded as base64 data, so the page needs nothing beside it), every CSV as a table (long
ones folded), the JSON files (the configuration and results of summary.json, the alpha LUTs)
and the list of files. docs/outputs.md describes each file.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hwsim.atomic import MANIFEST, atomic_write_text, read_manifest, record_outputs
from hwsim.errors import InputError
from hwsim.report.summary import SUMMARY_FILE

REPORT_FILE = "report.html"
"""The page's name in the folder (`hwsim report DIR --html`)."""

FOLD_ROWS = 40
"""Tables longer than this are folded (a click shows them)."""

FIGURES: dict[str, str] = {
    "accuracy_energy": "Accuracy against energy per inference of every method (paper Fig. 8),"
    " with the target line; the fused methods' exact-alpha curves beside their LUT curves.",
    "alpha": "alpha(t) of each fused method and its piecewise-linear fit (paper Fig. 6).",
    "latency_histogram": "Latency per inference of every method and operating point on the"
    " cycle-level chip: boxes span the quartiles, whiskers the 1st-99th percentiles.",
    "link_utilisation": "The chip's floorplan: each tile with the layers mapped there, the"
    " fusion unit, and every mesh link coloured by its load (flits per cycle).",
    "sweep": "Energy reduction R against DL by IC position, with 90% bootstrap intervals"
    " (paper Fig. 9).",
    "sweep_vs_sl": "Energy reduction R against SL by IC position.",
    "codesign": "FC accuracy and energy per inference against the swept hardware knob, the"
    " ideal engine as dashed lines.",
}
"""What each figure shows, by file stem (a figure not listed is shown under its name)."""

TABLES: dict[str, str] = {
    "targets.csv": "Each method at the target accuracy: steps, energy, latency, R and AUC with"
    " 90% paired bootstrap intervals.",
    "budgets.csv": "Accuracy of each method at fixed energy budgets.",
    "cycle_methods.csv": "Each method on the cycle-level chip: latency, throughput, energy.",
    "fusion_unit.csv": "The fusion unit's early termination and fixed-point datapath.",
    "energy_breakdown.csv": "Energy per timestep by layer and component (pJ).",
    "latency_breakdown.csv": "Busy and stalled cycles of every node of the chip.",
    "noc_links.csv": "Flits and utilisation of every mesh link used.",
    "energy_per_timestep.csv": "The chip's energy per image at each timestep (pJ).",
    "accuracy_energy.csv": "Accuracy, energy and latency of every method at each timestep.",
    "sweep.csv": "One row per grid cell of the sweep.",
    "mapping.csv": "The network's layers on crossbars, PEs and tiles.",
    "codesign.csv": "The co-design sweep: one row per knob value, then the ideal engine.",
}
"""What each table holds, by file name; tables are shown in this order, then any other."""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: right; }
th { background: #f3f3f3; position: sticky; top: 0; }
td:first-child { text-align: left; white-space: nowrap; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; } .note { color: #8a5a00; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; } pre { background: #f7f7f7; padding: 0.5em; overflow: auto;
     font-size: 0.8em; } .scroll { overflow-x: auto; }
"""


@dataclass
class RunFolder:
    """What a finished output folder holds: summary.json's data (None: none), its CSVs as
    frames, its PNG figures and its other JSON files (text), each by file name."""

    path: Path
    summary: dict[str, Any] | None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    json_files: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def load_folder(folder: Path) -> RunFolder:
    """Read an output folder of run, sweep, map, estimate or functional (InputError: not a
    folder, or nothing hwsim writes in it)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"report folder {folder}: not a folder (give an output folder of a run)")
    files = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and p.name not in (MANIFEST, REPORT_FILE) and not p.name.startswith(".")
    )
    summary_path = folder / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    order = {name: i for i, name in enumerate(TABLES)}
    csvs = sorted((f for f in files if f.endswith(".csv")), key=lambda f: (order.get(f, 99), f))
    run = RunFolder(folder, summary, files=files)
    for name in csvs:
        run.tables[name] = pd.read_csv(folder / name)
    for name in files:
        if name.endswith(".png"):
            run.figures[name] = folder / name
        elif name.endswith(".json") and name != SUMMARY_FILE:
            run.json_files[name] = (folder / name).read_text()
    if summary is None and not run.tables and not run.figures:
        raise InputError(f"report folder {folder}: holds no summary.json, CSV or figure of hwsim")
    return run


def cell(v: Any) -> str:
    """A table cell: floats to 6 significant digits (the CSV keeps every digit), empty for
    missing values."""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return format(v, ".6g")
    return html.escape(str(v))


def table_html(frame: pd.DataFrame) -> str:
    """A frame as an HTML table: a header row of its columns, one row per record."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in record) + "</tr>"
        for record in frame.itertuples(index=False)
    )
    return f'<div class="scroll"><table><tr>{head}</tr>{rows}</table></div>'


def _headline(summary: dict[str, Any]) -> str:
    """summary.json's scalars as a definition list, its notes as paragraphs."""
    items = []
    for key, value in summary.items():
        if isinstance(value, dict | list) or key == "notes":
            continue
        items.append(f"<dt>{html.escape(key)}</dt><dd>{html.escape(json.dumps(value))}</dd>")
    for key in ("reference_accuracy",):
        if isinstance(summary.get(key), dict):
            text = ", ".join(f"{k} {100 * v:.2f}%" for k, v in summary[key].items())
            items.append(f"<dt>{key}</dt><dd>{html.escape(text)}</dd>")
    notes = "".join(
        f'<p class="note">note: {html.escape(str(n))}</p>' for n in summary.get("notes") or ()
    )
    return f"<dl>{''.join(items)}</dl>{notes}"


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(run: RunFolder) -> str:
    """The page (module docstring)."""
    title = f"hwsim report: {run.path.name or run.path}"
    command = (run.summary or {}).get("command")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Built from the files in <code>{html.escape(str(run.path))}</code>"
        + (f" (<code>hwsim {html.escape(str(command))}</code>)" if command else "")
        + "; docs/outputs.md describes each file.</p>",
    ]
    if run.summary is not None:
        parts += ['<h2 id="summary">Summary</h2>', _headline(run.summary)]
    if run.figures:
        parts.append('<h2 id="figures">Figures</h2>')
        for name, path in run.figures.items():
            stem = Path(name).stem
            caption = FIGURES.get(stem, "")
            parts.append(
                f'<figure id="fig-{html.escape(stem)}"><img src="{_png(path)}"'
                f' alt="{html.escape(name)}"><figcaption><b>{html.escape(name)}</b>'
                f"{': ' + html.escape(caption) if caption else ''}</figcaption></figure>"
            )
    if run.tables:
        parts.append('<h2 id="tables">Tables</h2>')
        for name, frame in run.tables.items():
            about = TABLES.get(name, "")
            heading = (
                f'<h3 id="table-{html.escape(name)}">{html.escape(name)}</h3>'
                f"<p>{html.escape(about)} {len(frame)} rows, {len(frame.columns)} columns.</p>"
            )
            body = table_html(frame)
            if len(frame) > FOLD_ROWS:
                body = f"<details><summary>show the {len(frame)} rows</summary>{body}</details>"
            parts += [heading, body]
    if run.summary is not None or run.json_files:
        parts.append('<h2 id="configuration">Configuration and JSON files</h2>')
        texts = dict(run.json_files)
        if run.summary is not None:
            texts = {SUMMARY_FILE: json.dumps(run.summary, indent=1), **texts}
        for name, text in texts.items():
            parts.append(
                f"<details><summary>{html.escape(name)}</summary>"
                f"<pre>{html.escape(text)}</pre></details>"
            )
    listing = "".join(f"<li><code>{html.escape(f)}</code></li>" for f in run.files)
    parts += ['<h2 id="files">Files</h2>', f"<ul>{listing}</ul>", "</body></html>"]
    return "\n".join(parts) + "\n"


def write_report_html(folder: Path, out: Path | None = None) -> Path:
    """Write the page of `folder` to `out` (default: report.html in the folder, recorded in
    its manifest where it has one) atomically; return its path."""
    run = load_folder(folder)
    target = Path(out) if out is not None else Path(folder) / REPORT_FILE
    if out is None and read_manifest(Path(folder)) is not None:
        record_outputs(Path(folder), [REPORT_FILE])
    atomic_write_text(target, render_html(run))
    return target
