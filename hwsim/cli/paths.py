"""Where a command reads and where it writes, checked before any work: packaged names resolved
(`resolve_names`: `--arch spikesim`, `--model vgg19`), every input there (`check_inputs`, in
well under a second: a missing file is refused before torch or numba load), the data files
the model reads too (`check_data`) and outputs apart
from inputs (`check_paths`).

Every output path (`--out`, `--summary`) is resolved and checked against every input path of
the command (`--model`, `--arch`, `--base`, `--trace`, `--traces`, `--data-root`, `--measurements`,
`--config`) and
against the other outputs (`hwsim.atomic`): an output never is, holds or replaces an input,
never lands inside a folder that is replaced as a whole, and an existing file or folder is
replaced only if hwsim wrote it. The API checks the outputs it writes itself (export, convert,
train, calibrate, trace and sweep folders) the same way; this adds what only the command line
writes: the output folders of run, map, estimate and functional, and summary.json.

Loads no stage (neither torch nor numba).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwsim.atomic import check_disjoint, check_output_file, check_output_folder
from hwsim.errors import InputError
from hwsim.model.data import DATASETS, data_files
from hwsim.model.packaged import arch_names, model_names, resolve_arch, resolve_model
from hwsim.model.peek import checkpoint_dataset

REPLACED_FOLDERS = ("run", "sweep", "map", "estimate", "functional", "trace")
"""Commands whose --out is a folder that hwsim replaces as a whole."""
CHECKED_HERE = ("run", "map", "estimate", "functional")
"""Commands whose output folder only the command line writes (the others' the API checks)."""
MAX_SUMMARY_BYTES = 64 * 2**20


def _list(value: object) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def resolve_names(args: argparse.Namespace) -> None:
    """Replace, in place, a bare --model, --arch or --base name that is not a file here by the
    packaged file of that name (`hwsim.model.packaged`)."""
    for attr, resolve in (("model", resolve_model), ("arch", resolve_arch), ("base", resolve_arch)):
        value = getattr(args, attr, None)
        if isinstance(value, list):
            setattr(args, attr, [str(resolve(v)) for v in value])
        elif value is not None:
            setattr(args, attr, str(resolve(value)))


MUST_EXIST = ("model", "arch", "base", "test_trace", "data_root", "measurements", "config")
"""The inputs that must be there before a command starts (the trace cache is made)."""


def check_inputs(args: argparse.Namespace) -> None:
    """Refuse a command whose model, architecture, trace, data or measurements file is not
    there, naming the option (and the packaged names a bare one could have been)."""
    for param, path in input_paths(args):
        if param not in MUST_EXIST or path.exists():
            continue
        known = {"model": model_names(), "arch": arch_names(), "base": arch_names()}.get(param)
        also = f"; packaged ones by name: {', '.join(known)}" if known else ""
        raise InputError(f"{{{param}}} {path}: no such file or folder{also}", params=(param,))
    folder = getattr(args, "folder", None)
    if args.command == "report" and not Path(folder).is_dir():
        raise InputError(f"{folder}: no such folder; expected an output folder of hwsim")


def check_data(args: argparse.Namespace) -> None:
    """Refuse a command whose dataset's files are not under --data-root, naming the first one
    missing: the dataset given (`--dataset`: training, NIR models) or the one each checkpoint
    was trained on (read without torch, `hwsim.model.peek`)."""
    if not hasattr(args, "data_root"):
        return
    given = getattr(args, "dataset", None)
    models = _list(getattr(args, "model", None))
    names = {given} if given else {checkpoint_dataset(m) for m in models}
    for name in sorted(n for n in names if n in DATASETS):  # others: the full load says why
        for split in ("train", "test"):
            data_files(name, split, args.data_root)


def input_paths(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """Every path the command reads, as (API parameter, path)."""
    inputs = [("model", Path(m)) for m in _list(getattr(args, "model", None))]
    inputs += [("arch", Path(a)) for a in _list(getattr(args, "arch", None))]
    for param, attr in (
        ("base", "base"),
        ("test_trace", "trace"),
        ("data_root", "data_root"),
        ("measurements", "measurements"),
        ("config", "config"),
    ):
        inputs += [(param, Path(v)) for v in _list(getattr(args, attr, None))]
    if args.command != "cache" and hasattr(args, "traces") and not args.no_cache:
        inputs.append(("trace_root", Path(args.traces)))
    return inputs


def is_summary(path: Path) -> bool:
    """Whether `path` is a summary.json that hwsim wrote ({"command": ..., ...})."""
    try:
        if path.stat().st_size > MAX_SUMMARY_BYTES:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("command"), str)


def check_paths(args: argparse.Namespace) -> None:
    """Refuse, before the command does anything, an output that is or holds an input, two
    outputs on each other, and an output where hwsim would replace what it did not write."""
    inputs = input_paths(args)
    out = getattr(args, "out", None)
    folders, files = [], []
    if out is not None:
        (folders if args.command in REPLACED_FOLDERS else files).append(("out", Path(out)))
    if args.summary is not None:
        files.append(("summary", Path(args.summary)))
    check_disjoint(folders, files)
    if out is not None and args.command in CHECKED_HERE:
        check_output_folder(Path(out), "out", inputs)
    if args.summary is not None:
        check_output_file(Path(args.summary), "summary", inputs, is_summary, "summary (JSON)")
