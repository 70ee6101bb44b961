"""What the command line shows while a command runs and writes when it ends: progress bars fed
by the API's progress callback, warnings, and summary.json."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hwsim.report.summary import SUMMARY_FILE, write_summary


class Bars:
    """A rich progress bar per stage, fed by the API's progress(stage, done, total) callback."""

    LABELS = {
        "tune": "simulate tuning images",
        "test": "simulate test images",
        "ic": "evaluate IC positions",
        "chip": "simulate the chip cycle by cycle",
    }

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            label = self.LABELS.get(stage, stage)
            self.tasks[stage] = self.progress.add_task(label, total=total)
        self.progress.update(self.tasks[stage], completed=done)


@contextmanager
def bars(console: Console) -> Iterator[Bars]:
    """Progress bars on `console`, gone when the block ends."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        yield Bars(progress)


def warner(console: Console) -> Callable[[str], None]:
    """The API's warn(message) callback: a yellow warning line."""
    return lambda msg: console.print(f"[yellow]warning:[/] {msg}", highlight=False)


def summary(args: argparse.Namespace, command: str, data: dict, folder: Path | None) -> None:
    """Write summary.json: to --summary, else into the command's output folder (if any)."""
    path = Path(args.summary) if args.summary else None
    if path is None and folder is not None:
        path = folder / SUMMARY_FILE
    if path is not None:
        write_summary(path, command, data)
