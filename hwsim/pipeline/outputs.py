"""Which existing files an output may replace: only the kinds hwsim writes (a checkpoint or
converted model, an exported NIR file, a calibrated architecture file, a trace folder), each
recognised by its content, so that no command overwrites a file a user owns."""

from __future__ import annotations

from pathlib import Path

from hwsim.atomic import MANIFEST, InputPaths, check_inputs, check_writable
from hwsim.engine.trace import ARRAYS_FILE, META_FILE, TraceError, read_trace
from hwsim.errors import ModelError, OutputError
from hwsim.model.checkpoint import CHECKPOINT_FORMAT
from hwsim.model.conversion import SNN_FORMAT
from hwsim.report.summary import SUMMARY_FILE


def is_model_file(path: Path) -> bool:
    """Whether `path` is a checkpoint or converted model that hwsim wrote."""
    from hwsim.model.nets import read_model_file

    try:
        return read_model_file(path).get("format") in (CHECKPOINT_FORMAT, SNN_FORMAT)
    except ModelError:
        return False


def is_exported_nir(path: Path) -> bool:
    """Whether `path` is a NIR file that hwsim exported (its metadata names the producer)."""
    try:
        import nir

        producer = nir.read(path).metadata.get("producer", "")
    except Exception:  # not a NIR file at all: h5py and nir raise many types
        return False
    return isinstance(producer, str) and producer.startswith("hwsim")


def is_calibrated_yaml(path: Path) -> bool:
    """Whether `path` is an architecture file that `calibrate` wrote (its first line says so)."""
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline().startswith("# Calibrated by hwsim calibrate")
    except (OSError, UnicodeDecodeError):
        return False


TRACE_FOLDER_FILES = frozenset({META_FILE, ARRAYS_FILE, SUMMARY_FILE, MANIFEST})
"""What a trace folder that `trace` wrote may hold (its summary.json included)."""


def check_trace_out(out: Path, inputs: InputPaths = ()) -> None:
    """Refuse, before simulating, a trace output folder that is an input or holds one, or
    that holds anything but an earlier trace (a trace folder is replaced as a whole)."""
    check_inputs(out, "out", inputs, folder=True)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{{out}} {out}: exists and is not a folder", params=("out",))
    names = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if names:
        try:
            read_trace(out)
            ours = True
        except (TraceError, OSError):
            ours = False
        foreign = sorted(names - TRACE_FOLDER_FILES) or ([] if ours else [META_FILE])
        if foreign:
            raise OutputError(
                f"{{out}} {out}: holds {', '.join(foreign[:5])}, not a trace that hwsim wrote;"
                " a trace folder is replaced as a whole, so give a new or empty folder",
                params=("out",),
            )
    check_writable(out, "out")


def input_roots(trace_root: Path | None, data_root: str | None) -> list[tuple[str, Path]]:
    """The input folders of a simulating command: the trace cache and the data root."""
    roots = [] if trace_root is None else [("trace_root", Path(trace_root))]
    return roots + ([] if data_root is None else [("data_root", Path(data_root))])
