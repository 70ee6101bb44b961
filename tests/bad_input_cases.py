"""The bad-input corpus: every way a hostile or careless user was seen to break the CLI, each
with the exit status and the message it must give (tests/test_bad_input.py runs them).

Run `python -m tests.bad_input_cases` to replay the corpus through the CLI and print a table
(case, exit status, first line of the message); it trains a tiny checkpoint in a temporary
folder first.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "arch_configs" / "spikesim.yaml"


@dataclass(frozen=True)
class Workspace:
    """What a case may use: a temporary folder and a tiny trained checkpoint in it."""

    tmp: Path
    model: Path

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


@dataclass(frozen=True)
class Case:
    """`argv(ws)` must end with `code` and a message matching `message` (a regex, searched
    in stdout + stderr; {tmp} stands for the workspace folder); `check(ws)` then asserts what
    must hold of the files."""

    name: str
    argv: Callable[[Workspace], list[str]]
    message: str
    code: int = 2
    check: Callable[[Workspace], None] | None = field(default=None, compare=False)


def _run_args(ws: Workspace, *extra: str) -> list[str]:
    return ["run", "--model", str(ws.model), "--ic", "4", "--tune-images", "4", *ws.quick(),
            *extra]  # fmt: skip


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
    folder = ws.tmp / "kept"
    folder.mkdir(exist_ok=True)
    (folder / "targets.csv").write_text("earlier")
    (folder / "notes.txt").write_text("the user's own notes")
    return folder


def _binary_arch(ws: Workspace) -> Path:
    path = ws.tmp / "binary.yaml"
    path.write_bytes(bytes(range(256)))
    return path


def _list_accuracy_model(ws: Workspace) -> Path:
    import torch

    payload = torch.load(ws.model, weights_only=True)
    payload["accuracy"] = [0.5, 0.6]
    path = ws.tmp / "list_accuracy.pt"
    torch.save(payload, path)
    return path


def _nan_model(ws: Workspace) -> Path:
    import torch

    payload = torch.load(ws.model, weights_only=True)
    for v in payload["state_dict"].values():
        if v.is_floating_point():
            v.fill_(float("nan"))
            break
    path = ws.tmp / "nan.pt"
    torch.save(payload, path)
    return path


def _arch_case(name: str, section: str | None, key: str, value: object, message: str) -> Case:
    return Case(
        f"arch {key}: {value}",
        lambda ws: _run_args(ws, "--arch", str(ws.arch_with(name, section, key, value))),
        message,
    )


def _bad_state(ws: Workspace) -> Path:
    out = ws.tmp / "sweep_state"
    out.mkdir(exist_ok=True)
    (out / "sweep.partial.csv").write_text('ic,auc_dl\n"unclosed\n')
    return out


CASES: tuple[Case, ...] = (
    Case(
        "--timesteps 1000000000",
        lambda ws: _run_args(ws, "--timesteps", "1000000000"),
        r"--timesteps.*out of range",
    ),
    Case("--timesteps 0", lambda ws: _run_args(ws, "--timesteps", "0"), r"--timesteps"),
    Case("--v0 nan", lambda ws: _run_args(ws, "--v0", "nan"), r"--v0.*out of range"),
    Case(
        "--images 5000 (more than the split)",
        lambda ws: _run_args(ws, "--images", "5000"),
        r"--images 5000: the synthetic test split has \d+ images",
    ),
    Case("--threads -1", lambda ws: _run_args(ws, "--threads", "-1"), r"--threads"),
    Case(
        "--out is an existing file",
        lambda ws: _run_args(ws, "--out", str(_out_file(ws))),
        r"--out .*a_file: exists and is not a folder",
    ),
    Case(
        "--out holds the user's own files",
        lambda ws: _run_args(ws, "--out", str(_kept_folder(ws))),
        r"--out .*kept: holds notes.txt",
        check=_earlier_results_kept,
    ),
    Case(
        "--traces is an existing file",
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
    Case("--arch is a directory", lambda ws: _run_args(ws, "--arch", str(ws.tmp)), r"{tmp}"),
    Case(
        "--arch is a symlink loop",
        lambda ws: _run_args(ws, "--arch", str(_loop(ws))),
        r"loop_a\.yaml",
    ),
    Case(
        "convert --out is its own --model",
        lambda ws: ["convert", "--model", str(ws.model), "--out", str(ws.model)],
        r"it is the input model",
        check=_model_unchanged,
    ),
    Case(
        "tune --ic 99",
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
        ],
        r"--ic 99: the checkpoint has ICs at",
    ),
    Case(
        "functional --adc-bits 99",
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
        ],
        r"--adc-bits '99': expected resolutions in 1..16",
    ),
    Case(
        "functional --adc-bits 0",
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
        ],
        r"--adc-bits '0'",
    ),
    Case(
        "functional --full-scale-levels -1",
        lambda ws: ["functional", "--model", str(ws.model), "--full-scale-levels", "-1"],
        r"--full-scale-levels.*out of range",
    ),
    Case(
        "sweep --ic-positions 11:4",
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
        "a damaged sweep state file",
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
    _arch_case("pe", "timing", "pe_cycles", 2**62, r"timing\.pe_cycles: got .*1\.\.1000000"),
    _arch_case("pe_float", "timing", "pe_cycles", 1e29, r"timing\.pe_cycles: .*an integer"),
    _arch_case("tile", "energy_pj", "tile_buffer", 1e308, r"energy_pj\.tile_buffer: .*1e\+12"),
    _arch_case("clock", None, "clock_mhz", 1e-320, r"clock_mhz: .*\[0\.001, 1e\+06\]"),
    _arch_case("rows", "crossbar", "rows", 2**62, r"crossbar\.rows: .*8\.\.4096"),
    _arch_case("mesh", "noc", "mesh_rows", 100000, r"noc\.mesh_rows: .*1\.\.1024"),
    Case(
        "--arch is a binary file",
        lambda ws: _run_args(ws, "--arch", str(_binary_arch(ws))),
        r"binary\.yaml: not a YAML text file",
    ),
    Case(
        "a checkpoint whose accuracy is a list",
        lambda ws: ["run", "--model", str(_list_accuracy_model(ws)), *ws.quick()],
        r"list_accuracy\.pt: checkpoint key 'accuracy' must map head numbers",
    ),
    Case(
        "a checkpoint with NaN weights",
        lambda ws: ["run", "--model", str(_nan_model(ws)), "--ic", "4", *ws.quick()],
        r"nan\.pt: the checkpoint.s weights are not finite",
    ),
    Case(
        "train --lr nan",
        lambda ws: ["train", "--lr", "nan", "--out", str(ws.tmp / "m.pt")],
        r"--lr.*out of range",
    ),
    Case("train --epochs 0", lambda ws: ["train", "--epochs", "0"], r"--epochs"),
    Case("estimate --width 0", lambda ws: ["estimate", "--width", "0"], r"--width"),
)


def run_case(case: Case, ws: Workspace) -> tuple[int, str]:
    """Run one case through the CLI; returns (exit status, stdout + stderr)."""
    from hwsim.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)  # the CLI's default paths (arch_configs/...) are relative to the checkout
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(case.argv(ws))
            except SystemExit as e:  # argparse refuses an option with exit status 2
                code = int(e.code or 0)
    finally:
        os.chdir(cwd)
    return code, out.getvalue() + err.getvalue()


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
        for case in CASES:
            code, text = run_case(case, ws)
            flat = " ".join(text.split())
            start = max(flat.rfind("error: argument"), flat.find("error:"), 0)
            first = flat[start : start + 110]
            rows.append({"case": case.name, "exit": code, "message": first})
        print(json.dumps(rows, indent=1) if os.environ.get("JSON") else "")
        width = max(len(r["case"]) for r in rows)
        for r in rows:
            print(f"{r['case']:<{width}}  {r['exit']}  {r['message']}")


if __name__ == "__main__":
    main()
