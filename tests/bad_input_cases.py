"""The bad-input corpus: every way a hostile or careless user was seen to break the CLI, each
with the exit status and the message it must give (tests/test_bad_input.py runs them, and
checks that no file that existed before a case changed its bytes or its mtime).

Run `python -m tests.bad_input_cases` to replay the corpus through the CLI and print a table
(case, exit status, first line of the message) and a count per category; it trains a tiny
checkpoint in a temporary folder first.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import socket
import socketserver
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import (
    AbstractContextManager,
    ExitStack,
    contextmanager,
    nullcontext,
    redirect_stderr,
    redirect_stdout,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "arch_configs" / "spikesim.yaml"
READ_ONLY = Path("/sys")
"""A read-only mount on Linux (sysfs; nobody, root included, can create files there)."""


@dataclass(frozen=True)
class Workspace:
    """What a case may use: a temporary folder, a tiny trained checkpoint in it, and an exit
    stack that closes the servers and clusters cases start."""

    tmp: Path
    model: Path
    stack: ExitStack = field(default_factory=ExitStack, compare=False)

    def arch_with(self, name: str, section: str | None, key: str, value: object) -> Path:
        """spikesim.yaml with one value changed, written as `name`.yaml."""
        raw = yaml.safe_load(ARCH.read_text())
        (raw if section is None else raw[section])[key] = value
        path = self.tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    def quick(self) -> list[str]:
        """Options that keep a simulating command to a second."""
        return ["--timesteps", "8", "--images", "4", "--traces", str(self.tmp / "traces")]

    def folder(self, name: str, files: dict[str, str] | None = None) -> Path:
        """A folder of the workspace holding `files` (name -> text)."""
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        for f, text in (files or {}).items():
            (path / f).write_text(text)
        return path

    def checkpoint(self, name: str, edit: Callable[[dict], None]) -> Path:
        """The tiny checkpoint with its payload edited by `edit`, written as `name`.pt."""
        import torch

        payload = torch.load(self.model, weights_only=True)
        edit(payload)
        path = self.tmp / f"{name}.pt"
        torch.save(payload, path)
        return path

    def nir(self, name: str, **change: Any) -> Path:
        """A one-conv NIR network on the synthetic 1x16x16 images (`nir_net`), written once as
        `name`.nir."""
        import nir

        path = self.tmp / f"{name}.nir"
        if not path.exists():
            nir.write(path, nir_net(**change))
        return path


@dataclass(frozen=True)
class Case:
    """`argv(ws)` must end with `code` and a message matching `message` (a regex, searched
    in stdout + stderr; {tmp} stands for the workspace folder); `check(ws)` then asserts what
    must hold of the files. `patch(ws)`: a context the case runs in (a simulated full disk, a
    missing extra); `traceback`: the case asks for one (--debug)."""

    name: str
    category: str
    argv: Callable[[Workspace], list[str]]
    message: str
    code: int = 2
    check: Callable[[Workspace], None] | None = field(default=None, compare=False)
    patch: Callable[[Workspace], AbstractContextManager[Any]] | None = field(
        default=None, compare=False
    )
    traceback: bool = False
    needs: str | None = None  # a module the case needs installed (an extra), else skipped


CATEGORIES = (
    "values",
    "outputs",
    "options",
    "checkpoint",
    "NIR",
    "architecture",
    "Dask",
    "errors",
)


# --------------------------------------------------------------------------- helpers


def _run_args(ws: Workspace, *extra: str) -> list[str]:
    return ["run", "--model", str(ws.model), "--ic", "4", "--tune-images", "4", *ws.quick(),
            *extra]  # fmt: skip


def _estimate(out: Path, *extra: str) -> list[str]:
    """A command that writes an output folder in a second."""
    return ["estimate", "--net", "vgg11", "--input", "1x16x16", "--width", "0.0625",
            "--out", str(out), *extra]  # fmt: skip


def _model_unchanged(ws: Workspace) -> None:
    assert ws.model.stat().st_size > 1000  # still the checkpoint, not overwritten


def _no_sweep_csv(ws: Workspace) -> None:
    assert not (ws.tmp / "sweep" / "sweep.csv").exists()


def _earlier_results_kept(ws: Workspace) -> None:
    assert (ws.tmp / "kept" / "targets.csv").read_text() == "earlier"


def _loop(ws: Workspace) -> Path:
    a, b = ws.tmp / "loop_a.yaml", ws.tmp / "loop_b.yaml"
    for src, dst in ((a, b), (b, a)):
        if not src.is_symlink():
            src.symlink_to(dst)
    return a


def _out_file(ws: Workspace) -> Path:
    path = ws.tmp / "a_file"
    path.write_text("not a folder")
    return path


def _kept_folder(ws: Workspace) -> Path:
    return ws.folder("kept", {"targets.csv": "earlier", "notes.txt": "the user's own notes"})


def _binary_arch(ws: Workspace) -> Path:
    path = ws.tmp / "binary.yaml"
    path.write_bytes(bytes(range(256)))
    return path


def _arch_json_folder(ws: Workspace) -> Path:
    """A folder with the architecture written as JSON and two files of the user's."""
    return ws.folder(
        "d",
        {
            "arch.json": json.dumps(yaml.safe_load(ARCH.read_text())),
            "notes.json": '{"mine": true}',
            "mydata.csv": "a,b\n1,2\n",
        },
    )


def _nan_weights(payload: dict) -> None:
    for v in payload["state_dict"].values():
        if v.is_floating_point():
            v.fill_(float("nan"))
            break


def _arch_case(name: str, section: str | None, key: str, value: object, message: str) -> Case:
    return Case(
        f"arch {key}: {value}",
        "architecture",
        lambda ws: _run_args(ws, "--arch", str(ws.arch_with(name, section, key, value))),
        message,
    )


def _bad_state(ws: Workspace) -> Path:
    """A sweep folder whose state file (listed in the manifest: hwsim wrote it) was damaged."""
    from hwsim.atomic import record_outputs

    out = ws.folder("sweep_state")
    record_outputs(out, ["sweep.partial.csv"])
    (out / "sweep.partial.csv").write_text('ic,auc_dl\n"unclosed\n')
    return out


def _stale_temp(ws: Workspace) -> Path:
    """The temporary folder of a killed run beside `est`: named with a process id that has
    exited (a child process's, waited for)."""
    import subprocess

    pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                         capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = ws.tmp / f".est.{pid}.abcd1234.tmp"
    stale.mkdir(exist_ok=True)
    (stale / "energy_breakdown.csv").write_text("half written")
    return stale


def _stale_removed(ws: Workspace) -> None:
    assert not list(ws.tmp.glob(".est.*.tmp")), list(ws.tmp.glob(".est.*"))
    assert (ws.tmp / "est" / "energy_breakdown.csv").is_file()


def _estimated_twice(ws: Workspace) -> list[str]:
    """An output folder that an earlier estimate wrote (its manifest lists its files)."""
    from hwsim.cli.main import main

    out = ws.tmp / "again"
    if not out.exists():
        with redirect_stdout(io.StringIO()):
            assert main(_estimate(out, "--quiet")) == 0
    return _estimate(out)


def _missed_target(ws: Workspace) -> list[str]:
    """The issue's run: at T = 20 the tiny model's stop thresholds miss the target on the
    tuning images."""
    return ["run", "--model", str(ws.model), "--ic", "4", "--timesteps", "20", "--images", "16",
            "--tune-images", "16", "--threads", "1", "--traces", str(ws.tmp / "traces"),
            "--out", str(ws.tmp / "missed")]  # fmt: skip


def _no_missed_operating_point(ws: Workspace) -> None:
    """Issue 29 item 6: a method whose early-stop threshold missed the target on the tuning
    images has no early-stop operating point: fusion_unit.csv leaves its threshold and test
    columns empty, and cycle_methods.csv has no early-stop row for it."""
    import pandas as pd

    fusion = pd.read_csv(ws.tmp / "missed" / "fusion_unit.csv")
    missed = fusion[~fusion["target_met_on_tuning"].astype(bool)]
    assert len(missed), "the case must have a method that misses the target on tuning"
    point = ["threshold", "accuracy", "accuracy_lo", "accuracy_hi", "mean_stop_step",
             "mean_stop_step_lo", "mean_stop_step_hi", "p99_stop_step"]  # fmt: skip
    assert missed[point].isna().all().all(), missed[point]
    cycles = pd.read_csv(ws.tmp / "missed" / "cycle_methods.csv")
    early = cycles[cycles["operating_point"] == "early-stop"]
    assert not set(early["method"]) & set(missed["method"]), early
    assert early["target_met_on_tuning"].astype(bool).all()


def _absent(ws: Workspace, name: str) -> None:
    assert not (ws.tmp / name).exists(), f"{name} was written"


def _readonly_cache_ran(ws: Workspace) -> None:
    assert (ws.tmp / "ro_out" / "targets.csv").is_file()


@contextmanager
def _full_disk(ws: Workspace) -> Iterator[None]:
    """The disk fills while a CSV is written: pandas writes a little, then the OS refuses
    (ENOSPC), as it would on a full file system."""
    import pandas as pd

    real = pd.DataFrame.to_csv

    def full(self: pd.DataFrame, path: Any, *args: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(b"layer,kind\n")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    pd.DataFrame.to_csv = full  # type: ignore[method-assign]
    try:
        yield
    finally:
        pd.DataFrame.to_csv = real  # type: ignore[method-assign]


@contextmanager
def _without_dask(ws: Workspace) -> Iterator[None]:
    """The dask extra not installed: importing `distributed` fails, find_spec finds nothing."""
    saved = sys.modules.get("distributed", _MISSING)
    sys.modules["distributed"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if saved is _MISSING:
            del sys.modules["distributed"]
        else:
            sys.modules["distributed"] = saved


_MISSING = object()


# --------------------------------------------------------------------------- NIR files


def nir_net(
    *,
    weight: Any = None,
    bias: Any = None,
    stride: int = 1,
    padding: int = 1,
    shape: tuple[int, ...] = (1, 16, 16),
    classes: int = 10,
    threshold: float = 1.0,
) -> Any:
    """Input, Conv2d (4 3x3 kernels), IF, global AvgPool2d, Flatten, Affine (4 -> classes),
    IF, Output: a network on the synthetic images, with one value changed. IF parameters are
    scalars, so a huge map costs nothing to describe (type_check=False: the nir package's own
    checks would refuse some of the values first)."""
    import nir
    import numpy as np

    w = np.ones((4, 1, 3, 3), np.float32) if weight is None else np.asarray(weight, np.float32)
    b = np.zeros(4, np.float32) if bias is None else np.asarray(bias, np.float32)
    kh = w.shape[2]
    hw = [(s + 2 * padding - kh) // stride + 1 for s in shape[1:]] if len(shape) == 3 else [1, 1]

    def if_() -> Any:
        return nir.IF(r=np.ones(1), v_threshold=np.full(1, threshold))

    nodes = [
        nir.Conv2d(tuple(shape[1:]), w, stride, padding, 1, 1, b),
        if_(),
        nir.AvgPool2d(np.array(hw), np.array(hw), np.array([0, 0])),
        nir.Flatten(input_type={"input": np.array([4, 1, 1])}, start_dim=0),
        nir.Affine(weight=np.ones((classes, 4), np.float32), bias=np.zeros(classes, np.float32)),
        if_(),
        nir.Output(output_type=np.array([classes])),
    ]
    return nir.NIRGraph.from_list(nir.Input(input_type=np.array(shape)), *nodes, type_check=False)


def nir_chain_file(path: Path, pairs: int) -> Path:
    """A NIR file of a chain of `pairs` Conv2d -> IF pairs after the Input, with its head and
    Output (2 pairs + 6 nodes), in NIR's HDF5 layout with each node's type only: hwsim counts
    the nodes before it reads any (nir.write takes about 3 ms a node, too slow here;
    tests/test_nir_fuzz.py writes a whole one)."""
    import h5py

    kinds = ["Input"] + ["Conv2d", "IF"] * pairs + ["AvgPool2d", "Flatten", "Affine", "IF"]
    kinds.append("Output")
    names = [f"n{i}" for i in range(len(kinds))]
    with h5py.File(path, "w") as f:
        f.create_dataset("version", data="1.0", dtype=h5py.string_dtype())
        nodes = f.create_group("node/nodes")
        for name, kind in zip(names, kinds, strict=True):
            nodes.create_group(name).create_dataset("type", data=kind, dtype=h5py.string_dtype())
        f["node"].create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
        edges = [[a, b] for a, b in zip(names, names[1:], strict=False)]
        f["node"].create_dataset("edges", data=edges, dtype=h5py.string_dtype())
    return path


def _chain(ws: Workspace) -> Path:
    path = ws.tmp / "chain10k.nir"
    return path if path.exists() else nir_chain_file(path, 5000)


def _nir_map(ws: Workspace, name: str, **change: Any) -> list[str]:
    return ["map", "--model", str(ws.nir(name, **change)), "--out", str(ws.tmp / f"map_{name}")]


def _nir_run(ws: Workspace, name: str, **change: Any) -> list[str]:
    return ["run", "--model", str(ws.nir(name, **change)), "--dataset", "synthetic",
            "--tune-on", "train", "--tune-images", "4", *ws.quick(),
            "--out", str(ws.tmp / f"run_{name}")]  # fmt: skip


def _kernels(value: float = 1.0, first: float | None = None, size: int = 3) -> Any:
    """Four size x size kernels of `value`, the first weight `first` if given."""
    import numpy as np

    w = np.full((4, 1, size, size), value, np.float32)
    if first is not None:
        w[0, 0, 0, 0] = first
    return w


def _nir_case(name: str, message: str, run: bool = False, **change: Any) -> Case:
    key = name.split(":")[0].replace(" ", "_").replace(",", "")
    build = _nir_run if run else _nir_map
    return Case(f"NIR: {name}", "NIR", lambda ws: build(ws, key, **change), message)


# --------------------------------------------------------------------------- Dask endpoints


def _serve(ws: Workspace, handle: Callable[[socket.socket], None]) -> str:
    """A TCP server on 127.0.0.1 (closed with the workspace) whose connections `handle` gets."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            handle(self.request)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ws.stack.callback(server.server_close)
    ws.stack.callback(server.shutdown)
    return f"tcp://127.0.0.1:{server.server_address[1]}"


def _garbage(sock: socket.socket) -> None:
    """Sends bytes that are no protocol at all (the first 8 read as a length of 3 EiB)."""
    sock.sendall(b"\xff\xff\xff\xff\xff\xff\xff\x2fgarbage garbage garbage\n")


def _http(sock: socket.socket) -> None:
    """An HTTP server: waits for a request (up to 30 s), then answers one."""
    sock.settimeout(30)
    try:
        if sock.recv(4096):
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except OSError:
        pass


def _nothing_listening() -> str:
    """The address of a port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def _no_workers(ws: Workspace) -> str:
    """A real Dask scheduler without workers (closed with the workspace)."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=0, processes=False, protocol="tcp", dashboard_address=None, silence_logs=50
    )
    ws.stack.enter_context(cluster)
    return cluster.scheduler_address


def _sweep(ws: Workspace, *extra: str) -> list[str]:
    return ["sweep", "--model", str(ws.model), "--ic-positions", "4", "--tune-images", "4",
            *ws.quick(), "--out", str(ws.tmp / "dask_sweep"), *extra]  # fmt: skip


def _dask(ws: Workspace, address: str, *extra: str) -> list[str]:
    return _sweep(ws, "--executor", "dask", "--scheduler", address, *extra)


def _no_dask_sweep(ws: Workspace) -> None:
    assert not (ws.tmp / "dask_sweep").exists()


# --------------------------------------------------------------------------- the corpus

CASES: tuple[Case, ...] = (
    # values: one option out of range
    Case(
        "--timesteps 1000000000",
        "values",
        lambda ws: _run_args(ws, "--timesteps", "1000000000"),
        r"--timesteps.*out of range",
    ),
    Case("--timesteps 0", "values", lambda ws: _run_args(ws, "--timesteps", "0"), r"--timesteps"),
    Case("--v0 nan", "values", lambda ws: _run_args(ws, "--v0", "nan"), r"--v0.*out of range"),
    Case(
        "--images 5000 (more than the split)",
        "values",
        lambda ws: _run_args(ws, "--images", "5000"),
        r"--images 5000: the synthetic test split has \d+ images",
    ),
    Case("--threads -1", "values", lambda ws: _run_args(ws, "--threads", "-1"), r"--threads"),
    Case(
        "tune --ic 99",
        "values",
        lambda ws: [
            "tune",
            "--model",
            str(ws.model),
            "--ic",
            "99",
            "--tune-images",
            "4",
            "--timesteps",
            "4",
            "--traces",
            str(ws.tmp / "traces"),
        ],
        r"no IC head at block 99",
    ),
    Case(
        "functional --ic 99",
        "values",
        lambda ws: [
            "functional",
            "--model",
            str(ws.model),
            "--ic",
            "99",
            "--images",
            "2",
            "--timesteps",
            "4",
            "--out",
            str(ws.tmp / "f99"),
        ],
        r"--ic 99: the checkpoint has ICs at",
    ),
    Case(
        "functional --adc-bits 99",
        "values",
        lambda ws: [
            "functional",
            "--model",
            str(ws.model),
            "--adc-bits",
            "99",
            "--images",
            "2",
            "--timesteps",
            "4",
            "--out",
            str(ws.tmp / "fbits"),
        ],
        r"--adc-bits '99': expected resolutions in 1..16",
    ),
    Case(
        "functional --adc-bits 0",
        "values",
        lambda ws: [
            "functional",
            "--model",
            str(ws.model),
            "--adc-bits",
            "0",
            "--images",
            "2",
            "--timesteps",
            "4",
            "--out",
            str(ws.tmp / "fbits"),
        ],
        r"--adc-bits '0'",
    ),
    Case(
        "functional --full-scale-levels -1",
        "values",
        lambda ws: ["functional", "--model", str(ws.model), "--full-scale-levels", "-1"],
        r"--full-scale-levels.*out of range",
    ),
    Case(
        "sweep --ic-positions 11:4",
        "values",
        lambda ws: [
            "sweep",
            "--model",
            str(ws.model),
            "--ic-positions",
            "11:4",
            "--out",
            str(ws.tmp / "sweep"),
            *ws.quick(),
        ],
        r"--ic-positions '11:4': the range is empty",
        check=_no_sweep_csv,
    ),
    Case(
        "train --lr nan",
        "values",
        lambda ws: ["train", "--lr", "nan", "--out", str(ws.tmp / "m.pt")],
        r"--lr.*out of range",
    ),
    Case("train --epochs 0", "values", lambda ws: ["train", "--epochs", "0"], r"--epochs"),
    Case("estimate --width 0", "values", lambda ws: ["estimate", "--width", "0"], r"--width"),
    # outputs: never on an input, never over what hwsim did not write
    Case(
        "--out is an existing file",
        "outputs",
        lambda ws: _run_args(ws, "--out", str(_out_file(ws))),
        r"--out .*a_file: exists and is not a folder",
    ),
    Case(
        "--out holds the user's own files",
        "outputs",
        lambda ws: _run_args(ws, "--out", str(_kept_folder(ws))),
        r"--out .*kept: holds notes.txt, targets.csv, which hwsim did not write",
        check=_earlier_results_kept,
    ),
    Case(
        "--traces is an existing file",
        "outputs",
        lambda ws: [
            "trace",
            "--model",
            str(ws.model),
            "--timesteps",
            "4",
            "--images",
            "2",
            "--traces",
            str(_out_file(ws)),
        ],
        r"--traces .*a_file: exists and is not a folder",
    ),
    Case(
        "convert --out is its own --model",
        "outputs",
        lambda ws: ["convert", "--model", str(ws.model), "--out", str(ws.model)],
        r"--out .*tiny\.pt: it is the input model \(--model",
        check=_model_unchanged,
    ),
    Case(
        "run --summary is its own --model",
        "outputs",
        lambda ws: _run_args(ws, "--summary", str(ws.model)),
        r"--summary .*tiny\.pt: it is the input model \(--model",
        check=_model_unchanged,
    ),
    Case(
        "run --summary is its own --arch",
        "outputs",
        lambda ws: (lambda a: _run_args(ws, "--arch", str(a), "--summary", str(a)))(
            ws.arch_with("mine", None, "name", "mine")
        ),
        r"--summary .*mine\.yaml: it is the input arch \(--arch",
    ),
    Case(
        "run --arch d/arch.json --out d",
        "outputs",
        lambda ws: (lambda d: _run_args(ws, "--arch", str(d / "arch.json"), "--out", str(d)))(
            _arch_json_folder(ws)
        ),
        r"--out .*/d: holds the input arch \(--arch .*arch\.json\)",
    ),
    Case(
        "--out d holding the user's notes.json and mydata.csv",
        "outputs",
        lambda ws: _estimate(
            ws.folder("d2", {"notes.json": "{}", "mydata.csv": "a\n", "energy_breakdown.csv": ""})
        ),
        r"--out .*d2: holds energy_breakdown\.csv, mydata\.csv, notes\.json, which hwsim did not",
    ),
    Case(
        "--traces X --out X",
        "outputs",
        lambda ws: _run_args(ws, "--traces", str(ws.tmp / "X"), "--out", str(ws.tmp / "X")),
        r"--out .*/X: it is the input trace root \(--traces",
        check=lambda ws: _absent(ws, "X"),
    ),
    Case(
        "--traces X/traces --out X",
        "outputs",
        lambda ws: _run_args(
            ws, "--traces", str(ws.tmp / "Y" / "traces"), "--out", str(ws.tmp / "Y")
        ),
        r"--out .*/Y: holds the input trace root \(--traces .*Y/traces\)",
    ),
    Case(
        "--out on a read-only mount",
        "outputs",
        lambda ws: _run_args(ws, "--out", str(READ_ONLY / "hwsim-out")),
        r"--out /sys/hwsim-out: cannot write in /sys",
    ),
    Case(
        "--summary out/a_file/s.json",
        "outputs",
        lambda ws: _run_args(ws, "--summary", str(_out_file(ws) / "s.json")),
        r"--summary .*a_file/s\.json: .*a_file is a file, not a folder",
    ),
    Case(
        "--out D --summary D/targets.csv",
        "outputs",
        lambda ws: _run_args(
            ws, "--out", str(ws.tmp / "D"), "--summary", str(ws.tmp / "D" / "targets.csv")
        ),
        r"--summary .*D/targets\.csv is inside --out .*D, which hwsim replaces as a whole",
    ),
    Case(
        "--summary over the user's own JSON",
        "outputs",
        lambda ws: _estimate(
            ws.tmp / "est_s",
            "--summary",
            str(ws.folder("js", {"data.json": "[1, 2]"}) / "data.json"),
        ),
        r"--summary .*data\.json: exists and is not a summary \(JSON\) that hwsim wrote",
    ),
    Case(
        "map --model D/m.pt --out D",
        "outputs",
        lambda ws: (lambda d: ["map", "--model", str(d / "m.pt"), "--out", str(d)])(
            ws.folder("mD", {"m.pt": "x"})
        ),
        r"--out .*mD: holds the input model \(--model .*m\.pt\)",
    ),
    Case(
        "export --out over the user's file",
        "outputs",
        lambda ws: [
            "export",
            "--model",
            str(ws.model),
            "--out",
            str(ws.folder("ex", {"net.nir": "mine"}) / "net.nir"),
        ],
        r"--out .*net\.nir: exists and is not a NIR file that hwsim wrote",
    ),
    Case(
        "trace --out over the user's folder",
        "outputs",
        lambda ws: [
            "trace",
            "--model",
            str(ws.model),
            "--timesteps",
            "4",
            "--images",
            "2",
            "--no-cache",
            "--out",
            str(_kept_folder(ws)),
        ],
        r"--out .*kept: holds notes\.txt, targets\.csv, not a trace that hwsim wrote",
        check=_earlier_results_kept,
    ),
    Case(
        "train --out over the user's file",
        "outputs",
        lambda ws: [
            "train",
            "--dataset",
            "synthetic",
            "--epochs",
            "1",
            "--out",
            str(ws.folder("tr", {"m.pt": "mine"}) / "m.pt"),
        ],
        r"--out .*m\.pt: exists and is not a model file that hwsim wrote",
    ),
    Case(
        "calibrate --out is its own --arch",
        "outputs",
        lambda ws: (
            lambda a: ["calibrate", "--arch", str(a), "--measurements", str(a), "--out", str(a)]
        )(ws.arch_with("cal", None, "name", "c")),
        r"--out .*cal\.yaml: it is the input arch \(--arch",
    ),
    Case(
        "a killed run's temporary folder is removed by the next run",
        "outputs",
        lambda ws: (_stale_temp(ws), _estimate(ws.tmp / "est"))[1],
        r"wrote .*est/energy_breakdown\.csv",
        code=0,
        check=_stale_removed,
    ),
    Case(
        "--out holding hwsim's own earlier results is replaced",
        "outputs",
        _estimated_twice,
        r"wrote .*again/energy_breakdown\.csv",
        code=0,
    ),
    Case(
        "a full disk while the results are written",
        "outputs",
        lambda ws: _estimate(ws.tmp / "full"),
        r"full/energy_breakdown\.csv: no space left on the disk \(.* free there; the write"
        r" needed more than the 11 B it had written\)",
        patch=_full_disk,
        check=lambda ws: _absent(ws, "full"),
    ),
    Case(
        "T = 20 with target_met_on_tuning False",
        "outputs",
        _missed_target,
        r"no early-stop operating point for .*: no threshold kept the\s+target on the tuning",
        code=0,
        check=_no_missed_operating_point,
    ),
    # options: each acts, or is refused by name
    Case(
        "--variation-sigma without --hardware functional",
        "options",
        lambda ws: _run_args(ws, "--variation-sigma", "0.5"),
        r"--variation-sigma sets the chip's crossbars, which only --hardware functional",
    ),
    Case(
        "--first-layer digital without --hardware functional",
        "options",
        lambda ws: _run_args(ws, "--first-layer", "digital"),
        r"--first-layer sets the chip's crossbars, which only --hardware functional",
    ),
    Case(
        "--full-scale calibrated --full-scale-levels 10",
        "options",
        lambda ws: [
            "functional",
            "--model",
            str(ws.model),
            "--full-scale",
            "calibrated",
            "--full-scale-levels",
            "10",
        ],
        r"--full-scale and --full-scale-levels both set the ADC full scale; give one",
    ),
    Case(
        "--calibration-images with an auto full scale",
        "options",
        lambda ws: [
            "functional",
            "--model",
            str(ws.model),
            "--calibration-images",
            "8",
            "--images",
            "2",
            "--timesteps",
            "4",
            "--out",
            str(ws.tmp / "fc"),
        ],
        r"--calibration-images sets a calibrated ADC full scale, and .*spikesim\.yaml's is auto",
    ),
    Case(
        "--executor local --workers 5",
        "options",
        lambda ws: _sweep(ws, "--workers", "5"),
        r"--workers sizes the local Dask cluster",
        check=_no_dask_sweep,
    ),
    Case(
        "--workers with --scheduler",
        "options",
        lambda ws: _sweep(
            ws, "--executor", "dask", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"
        ),
        r"--workers sizes the local Dask cluster",
    ),
    Case(
        "--wait-workers without --scheduler",
        "options",
        lambda ws: _sweep(ws, "--executor", "dask", "--wait-workers", "5"),
        r"--wait-workers waits for the workers of an existing cluster",
    ),
    Case(
        "--scheduler without --executor dask",
        "options",
        lambda ws: _sweep(ws, "--scheduler", "tcp://127.0.0.1:1"),
        r"--scheduler: give it with --executor dask",
    ),
    Case(
        "--seed with direct coding",
        "options",
        lambda ws: _run_args(ws, "--seed", "3"),
        r"--seed seeds Poisson input spikes, and no --coding here is poisson",
    ),
    Case(
        "map --model with --net",
        "options",
        lambda ws: ["map", "--model", str(ws.model), "--net", "vgg16"],
        r"--net describes an untrained geometry; with --model the model file gives the network",
    ),
    Case(
        "run --trace with --images",
        "options",
        lambda ws: _run_args(ws, "--trace", str(ws.tmp / "no_trace")),
        r"--images with --trace: the given trace brings its own test images",
    ),
    Case(
        "--backend torch --threads 2",
        "options",
        lambda ws: _run_args(ws, "--backend", "torch", "--threads", "2"),
        r"--threads sets the numba engine's threads; --backend torch uses torch's own",
    ),
    Case(
        "--hardware functional --backend torch",
        "options",
        lambda ws: _run_args(ws, "--hardware", "functional", "--backend", "torch"),
        r"--backend chooses how the IF engine runs, and --hardware functional simulates on the"
        r" mapped chip",
    ),
    Case(
        "map --model checkpoint --dataset",
        "options",
        lambda ws: ["map", "--model", str(ws.model), "--dataset", "synthetic"],
        r"tiny\.pt: --dataset applies only to NIR models",
    ),
    Case(
        "estimate (a zoo geometry) --fc-output",
        "options",
        lambda ws: _estimate(ws.tmp / "est_fc", "--fc-output", "out"),
        r"a zoo geometry: --fc-output applies only to NIR models",
    ),
    # checkpoint files
    Case(
        "a checkpoint whose accuracy is a list",
        "checkpoint",
        lambda ws: [
            "run",
            "--model",
            str(ws.checkpoint("list_accuracy", _list_accuracy)),
            *ws.quick(),
        ],
        r"list_accuracy\.pt: checkpoint key 'accuracy' must map head numbers",
    ),
    Case(
        "a checkpoint whose accuracy is NaN",
        "checkpoint",
        lambda ws: [
            "run",
            "--model",
            str(ws.checkpoint("nan_acc", _nan_accuracy)),
            *ws.quick(),
        ],
        r"nan_acc\.pt: checkpoint key 'accuracy' holds -1: nan; expected accuracies",
    ),
    Case(
        "a checkpoint with NaN weights",
        "checkpoint",
        lambda ws: [
            "run",
            "--model",
            str(ws.checkpoint("nan", _nan_weights)),
            "--ic",
            "4",
            *ws.quick(),
        ],
        r"nan\.pt: the checkpoint.s weights are not finite",
    ),
    Case(
        "functional on a checkpoint with NaN weights",
        "checkpoint",
        lambda ws: [
            "functional",
            "--model",
            str(ws.checkpoint("nan", _nan_weights)),
            "--images",
            "2",
            "--timesteps",
            "4",
            "--out",
            str(ws.tmp / "fnan"),
        ],
        r"nan\.pt: the checkpoint.s weights are not finite",
    ),
    Case(
        "a checkpoint whose spec.input_shape is 5",
        "checkpoint",
        lambda ws: [
            "run",
            "--model",
            str(ws.checkpoint("shape5", _spec("input_shape", 5))),
            *ws.quick(),
        ],
        r"shape5\.pt: network spec key 'input_shape' is 5; expected C, H, W integers",
    ),
    Case(
        "a checkpoint whose spec.width is 'abc'",
        "checkpoint",
        lambda ws: [
            "run",
            "--model",
            str(ws.checkpoint("abc", _spec("width", "abc"))),
            *ws.quick(),
        ],
        r"abc\.pt: network spec key 'width' is 'abc'; expected a number",
    ),
    Case(
        "a checkpoint whose spec.input_shape is not its dataset's",
        "checkpoint",
        lambda ws: [
            "run",
            "--model",
            str(ws.checkpoint("shape332", _spec("input_shape", [3, 32, 32]))),
            *ws.quick(),
        ],
        r"shape332\.pt: checkpoint key 'spec\.input_shape' is \(3, 32, 32\), but its dataset"
        r" synthetic has \(1, 16, 16\)",
    ),
    Case(
        "a checkpoint whose dataset.name is unknown",
        "checkpoint",
        lambda ws: [
            "run",
            "--model",
            str(ws.checkpoint("dsname", _dataset("name", "imagenet"))),
            *ws.quick(),
        ],
        r"dsname\.pt: checkpoint key 'dataset\.name' is 'imagenet'; expected one of",
    ),
    Case(
        "a checkpoint whose dataset.validation_images is 'abc'",
        "checkpoint",
        lambda ws: [
            "run",
            "--model",
            str(ws.checkpoint("dsval", _dataset("validation_images", "abc"))),
            *ws.quick(),
        ],
        r"dsval\.pt: checkpoint key 'dataset\.validation_images' is 'abc'; expected an integer",
    ),
    # NIR files, checked like checkpoints
    _nir_case(
        "NaN weights",
        r"Conv2d 'conv2d': weight has NaN or infinite values",
        run=True,
        weight=_kernels(first=float("nan")),
    ),
    _nir_case(
        "inf weights",
        r"Conv2d 'conv2d': weight has NaN or infinite values",
        weight=_kernels(first=float("inf")),
    ),
    _nir_case(
        "NaN bias",
        r"Conv2d 'conv2d': bias has NaN or infinite values",
        run=True,
        bias=[float("nan"), 0, 0, 0],
    ),
    _nir_case(
        "1e38 weights",
        r"Conv2d 'conv2d': a neuron can receive 9e\+38 threshold units",
        run=True,
        weight=_kernels(1e38),
    ),
    _nir_case(
        "threshold 1e-45",
        r"IF 'if': v_threshold 1e-45 is outside float32's normal range",
        run=True,
        threshold=1e-45,
    ),
    _nir_case(
        "padding -3",
        r"Conv2d 'conv2d': padding \(-3, -3\); hwsim needs equal padding >= 0",
        padding=-3,
    ),
    _nir_case("padding 2000", r"Conv2d 'conv2d': padding 2000 with a 3x3 kernel", padding=2000),
    _nir_case(
        "negative stride",
        r"Conv2d 'conv2d': stride \(-1, -1\); hwsim needs equal strides",
        stride=-1,
    ),
    _nir_case(
        "kernel larger than the map",
        r"Conv2d 'conv2d' maps its input \(1, 16, 16\) to the"
        r" empty",
        weight=_kernels(size=40),
        padding=0,
    ),
    _nir_case(
        "zero-size map",
        r"Input 'input' has shape \(1, 0, 16\); every size must be >= 1",
        shape=(1, 0, 16),
    ),
    _nir_case(
        "zero classes", r"Affine 'affine' maps its input \(4,\) to the empty \(0,\)", classes=0
    ),
    _nir_case(
        "a 30,000x30,000 map",
        r"Input 'input': a 30000x30000 map; hwsim imports maps of up"
        r" to 4096x4096",
        shape=(1, 30000, 30000),
    ),
    Case(
        "NIR: a 10,006-node chain (map)",
        "NIR",
        lambda ws: ["map", "--model", str(_chain(ws)), "--out", str(ws.tmp / "map_chain")],
        r"chain10k\.nir: 10006 nodes; hwsim imports graphs of up to 4096 nodes",
    ),
    Case(
        "NIR: a 10,006-node chain (trace)",
        "NIR",
        lambda ws: [
            "trace",
            "--model",
            str(_chain(ws)),
            "--dataset",
            "synthetic",
            "--no-cache",
            "--timesteps",
            "4",
            "--images",
            "2",
        ],
        r"chain10k\.nir: 10006 nodes; hwsim imports graphs of up to 4096 nodes",
    ),
    # architecture files
    Case(
        "--arch is a directory",
        "architecture",
        lambda ws: _run_args(ws, "--arch", str(ws.tmp)),
        r"{tmp}",
    ),
    Case(
        "--arch is a symlink loop",
        "architecture",
        lambda ws: _run_args(ws, "--arch", str(_loop(ws))),
        r"loop_a\.yaml",
    ),
    _arch_case("pe", "timing", "pe_cycles", 2**62, r"timing\.pe_cycles: got .*1\.\.1000000"),
    _arch_case("pe_float", "timing", "pe_cycles", 1e29, r"timing\.pe_cycles: .*an integer"),
    _arch_case("tile", "energy_pj", "tile_buffer", 1e308, r"energy_pj\.tile_buffer: .*1e\+12"),
    _arch_case("clock", None, "clock_mhz", 1e-320, r"clock_mhz: .*\[0\.001, 1e\+06\]"),
    _arch_case("rows", "crossbar", "rows", 2**62, r"crossbar\.rows: .*8\.\.4096"),
    _arch_case("mesh", "noc", "mesh_rows", 100000, r"noc\.mesh_rows: .*1\.\.1024"),
    Case(
        "--arch is a binary file",
        "architecture",
        lambda ws: _run_args(ws, "--arch", str(_binary_arch(ws))),
        r"binary\.yaml: not a YAML text file",
    ),
    # Dask fails fast
    Case(
        "sweep --scheduler at a server answering garbage",
        "Dask",
        lambda ws: _dask(ws, _serve(ws, _garbage)),
        r"--scheduler tcp://127\.0\.0\.1:\d+: answered .*which is not Dask's protocol",
        check=_no_dask_sweep,
        needs="distributed",
    ),
    Case(
        "sweep --scheduler at an HTTP server",
        "Dask",
        lambda ws: _dask(ws, _serve(ws, _http)),
        r"--scheduler tcp://127\.0\.0\.1:\d+: accepted the connection but sent no Dask handshake"
        r" within 5 s",
        check=_no_dask_sweep,
        needs="distributed",
    ),
    Case(
        "sweep --scheduler where nothing listens",
        "Dask",
        lambda ws: _dask(ws, _nothing_listening()),
        r"--scheduler tcp://127\.0\.0\.1:\d+: cannot connect \(Connection refused\)",
        check=_no_dask_sweep,
        needs="distributed",
    ),
    Case(
        "sweep --scheduler 'nonsense'",
        "Dask",
        lambda ws: _dask(ws, "nonsense"),
        r"--scheduler 'nonsense': expected a scheduler address, tcp://HOST:PORT",
        needs="distributed",
    ),
    Case(
        "sweep --scheduler at a scheduler with no workers",
        "Dask",
        lambda ws: _dask(ws, _no_workers(ws), "--wait-workers", "2"),
        r"--scheduler tcp://[\d.]+:\d+: no worker joined within 2 s; start workers",
        check=_no_dask_sweep,
        needs="distributed",
    ),
    Case(
        "sweep --executor dask without the dask extra",
        "Dask",
        lambda ws: _sweep(ws, "--executor", "dask"),
        r"--executor dask needs Dask's distributed scheduler: pip install 'hwsim\[dask\]'",
        patch=_without_dask,
        check=_no_dask_sweep,
    ),
    Case(
        "a damaged sweep state file",
        "errors",
        lambda ws: [
            "sweep",
            "--model",
            str(ws.model),
            "--ic-positions",
            "2,4",
            "--out",
            str(_bad_state(ws)),
            "--tune-images",
            "4",
            *ws.quick(),
        ],
        r"sweep\.partial\.csv: a damaged sweep state file",
    ),
    # one error boundary
    Case(
        "--debug after the subcommand, on an input error",
        "errors",
        lambda ws: _estimate(ws.tmp / "dbg", "--ic", "20", "--debug"),
        r"Traceback .* error: IC position 20 out of range",
        traceback=True,
    ),
    Case(
        "--debug before the subcommand, on an input error",
        "errors",
        lambda ws: ["--debug", *_estimate(ws.tmp / "dbg", "--ic", "20")],
        r"Traceback .* error: IC position 20 out of range",
        traceback=True,
    ),
    Case(
        "a cold read-only --traces",
        "errors",
        lambda ws: _run_args(
            ws, "--traces", str(READ_ONLY / "hwsim-traces"), "--out", str(ws.tmp / "ro_out")
        ),
        r"warning: the \w+ trace is not stored in the trace cache \(/sys/hwsim-traces.*going on"
        r" without it",
        code=0,
        check=_readonly_cache_ran,
    ),
)


def _list_accuracy(payload: dict) -> None:
    payload["accuracy"] = [0.5, 0.6]


def _nan_accuracy(payload: dict) -> None:
    payload["accuracy"]["-1"] = float("nan")


def _spec(key: str, value: object) -> Callable[[dict], None]:
    def edit(payload: dict) -> None:
        payload["spec"][key] = value

    return edit


def _dataset(key: str, value: object) -> Callable[[dict], None]:
    def edit(payload: dict) -> None:
        payload["dataset"][key] = value

    return edit


# --------------------------------------------------------------------------- running


def run_case(case: Case, ws: Workspace) -> tuple[int, str]:
    """Run one case through the CLI; returns (exit status, stdout + stderr)."""
    from hwsim.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)  # the cases name files of the checkout by relative paths
    try:
        argv = case.argv(ws)
        patch = case.patch(ws) if case.patch is not None else nullcontext()
        with patch, redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse refuses an option with exit status 2
                code = int(e.code or 0)
    finally:
        os.chdir(cwd)
    return code, out.getvalue() + err.getvalue()


def snapshot(*roots: Path) -> dict[Path, tuple[int, str]]:
    """(mtime in ns, SHA-256) of every file under `roots` (links not followed)."""
    files: dict[Path, tuple[int, str]] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                files[path] = (path.stat().st_mtime_ns, digest)
    return files


def workspace(tmp: Path) -> Workspace:
    """A tiny trained checkpoint (VGG11 at width 1/16 on synthetic data, ICs at 2 and 4)."""
    import torch

    from hwsim.model.nets import save_checkpoint
    from hwsim.model.train import TrainConfig, train

    torch.set_num_threads(1)
    cfg = TrainConfig(net="vgg11", dataset="synthetic", width=1 / 16, ic_positions=(2, 4),
                      epochs=1, batch_size=32, lr=0.05, seed=0, validation=128)  # fmt: skip
    model = tmp / "tiny.pt"
    save_checkpoint(train(cfg), model)
    return Workspace(tmp, model)


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace(Path(tmp))
        rows = []
        with ws.stack:
            for case in CASES:
                code, text = run_case(case, ws)
                flat = " ".join(text.split())
                start = max(flat.rfind("error: argument"), flat.find("error:"), 0)
                if code == 0:
                    start = max(flat.find("warning:"), flat.find("wrote"), 0)
                first = flat[start : start + 110]
                rows.append({"case": case.name, "category": case.category, "exit": code,
                             "message": first})  # fmt: skip
        if os.environ.get("JSON"):
            print(json.dumps(rows, indent=1))
        width = max(len(r["case"]) for r in rows)
        for r in rows:
            print(f"{r['case']:<{width}}  {r['exit']}  {r['message']}")
        counts = Counter((r["category"], r["exit"]) for r in rows)
        print()
        for category in CATEGORIES:
            by_exit = ", ".join(f"exit {e}: {n}" for (c, e), n in sorted(counts.items())
                                if c == category)  # fmt: skip
            print(f"{category:<12} {sum(n for (c, _), n in counts.items() if c == category):>3}"
                  f"  ({by_exit})")  # fmt: skip
        print(f"{'all':<12} {len(rows):>3}")


if __name__ == "__main__":
    main()
