"""A main job whose traces are cached imports no torch: it reads the checkpoint's record and its
conversion's fingerprint without it (`hwsim.model.peek`), and torch loads only where weights are
read, converted or run."""

import os
import subprocess
import sys

import pandas as pd

RUN = (
    "import sys; from hwsim.cli.main import main; code = main(sys.argv[1:]);"
    "print('exit', code, 'torch' in sys.modules)"
)


def test_a_run_whose_traces_are_cached_imports_no_torch_and_gives_the_same_results(
    tiny_checkpoint, tmp_path
):
    _, path = tiny_checkpoint
    argv = ["run", "--arch", "spikesim", "--model", str(path), "--ic", "4", "--timesteps", "30"]
    argv += ["--images", "32", "--tune-images", "32", "--traces", str(tmp_path / "traces")]
    env = {**os.environ, "COLUMNS": "200"}
    lines = []
    for out in ("first", "cached"):
        done = subprocess.run(
            [sys.executable, "-c", RUN, *argv, "--out", str(tmp_path / out)],
            capture_output=True, text=True, cwd=tmp_path, env=env,
        )  # fmt: skip
        lines.append(done.stdout.strip().split("\n")[-1])
        assert lines[-1].startswith("exit 0"), (done.stdout, done.stderr)
    # the first run converts and simulates (torch); the second reads what it stored
    assert lines == ["exit 0 True", "exit 0 False"]
    for name in ("accuracy_energy.csv", "targets.csv"):
        first, cached = (pd.read_csv(tmp_path / out / name) for out in ("first", "cached"))
        pd.testing.assert_frame_equal(first, cached)
