"""What the command line shows while a command runs and writes when it ends: progress fed by
the API's progress callback (rich bars on a terminal, plain timestamped lines with an ETA in a
pipe or a CI log), warnings, and summary.json."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hwsim.atomic import record_outputs
from hwsim.report.summary import SUMMARY_FILE, write_summary

LABELS = {
    "tune": "simulate tuning images",
    "test": "simulate test images",
    "ic": "evaluate IC positions",
    "chip": "simulate the chip cycle by cycle",
}
"""What each stage of the API's progress callback does, in words (else its own name)."""

TRAIN_LABELS = {"train": "train (SGD steps)"}
"""`hwsim train`'s one stage (`hwsim.model.train.TRAIN_STAGE`)."""


class Bars:
    """A rich progress bar per stage, fed by the API's progress(stage, done, total) callback."""

    def __init__(self, progress: Progress, labels: dict[str, str]):
        self.progress = progress
        self.labels = labels
        self.tasks: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            label = self.labels.get(stage, stage)
            self.tasks[stage] = self.progress.add_task(label, total=total)
        self.progress.update(self.tasks[stage], completed=done)


def _duration(seconds: float) -> str:
    """A duration in words a log reads at a glance: 42 s, 3 min 05 s, 1 h 02 min."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


@dataclass
class _Stage:
    start: float  # clock reading at the stage's first report (s)
    first: int  # its done count then
    last: float  # clock reading of its last printed line (s)
    tenth: int  # the tenths of the total done when that line was printed
    finished: bool  # its "done" line printed


class LogLines:
    """Progress as plain lines for a pipe or a CI log, fed by the same callback as `Bars`:
    "[HH:MM:SS] simulate test images: 250/1000 (25%), 31 s, ETA 1 min 33 s". A stage prints a
    line when it starts, when it crosses a tenth of its total (at most one every `min_gap`
    seconds), at least every `max_gap` seconds while it reports, and when it is done. The ETA
    extrapolates the stage's mean rate since its first report."""

    def __init__(
        self,
        console: Console,
        labels: dict[str, str],
        *,
        min_gap: float = 2.0,
        max_gap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.console, self.labels = console, labels
        self.min_gap, self.max_gap, self.clock = min_gap, max_gap, clock
        self.stages: dict[str, _Stage] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        finished = done >= total
        tenth = 10 if finished else 10 * done // total
        state = self.stages.get(stage)
        if state is None:
            self.stages[stage] = _Stage(now, done, now, tenth, finished)
            self._line(stage, done, total, 0.0, "done" if finished else "started")
            return
        since = now - state.last
        due = (tenth > state.tenth and since >= self.min_gap) or since >= self.max_gap
        if state.finished or not (finished or due):
            return
        elapsed = now - state.start
        rate = (done - state.first) / elapsed if elapsed > 0 else 0.0
        if finished:
            tail = "done"
        else:
            tail = f"ETA {_duration((total - done) / rate)}" if rate > 0 else "ETA ?"
        state.last, state.tenth, state.finished = now, tenth, finished
        self._line(stage, done, total, elapsed, tail)

    def _line(self, stage: str, done: int, total: int, elapsed: float, tail: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        label = self.labels.get(stage, stage)
        share = f" ({100 * done // total}%)" if total > 0 else ""
        self.console.print(
            f"[{stamp}] {label}: {done}/{total}{share}, {_duration(elapsed)}, {tail}",
            markup=False,
            highlight=False,
        )


@contextmanager
def bars(
    console: Console, labels: dict[str, str] = LABELS
) -> Iterator[Callable[[str, int, int], None]]:
    """The API's progress callback for the block: rich bars on a terminal (gone when the block
    ends), else timestamped lines (`LogLines`); nothing with --quiet."""
    if console.quiet:
        yield lambda stage, done, total: None
        return
    if not console.is_terminal:
        yield LogLines(console, labels)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        yield Bars(progress, labels)


def warner(console: Console) -> Callable[[str], None]:
    """The API's warn(message) callback: a yellow warning line."""
    return lambda msg: console.print(f"[yellow]warning:[/] {escape(msg)}", highlight=False)


def summary(args: argparse.Namespace, command: str, data: dict, folder: Path | None) -> None:
    """Write summary.json: to --summary, else into the command's output folder (if any)."""
    path = Path(args.summary) if args.summary else None
    if path is None and folder is not None:
        path = folder / SUMMARY_FILE
        record_outputs(folder, [SUMMARY_FILE])  # listed first: a later run may replace it
    if path is not None:
        write_summary(path, command, data)
