"""Grid sweeps: a Dask cluster of worker processes, a local run and a resumed run write the
same sweep.csv byte for byte; a grid's cells are keyed by their inputs."""

import pandas as pd
import pytest

from hwsim.cli.main import main
from hwsim.pipeline.grid import SWEEP_STATE_FILE

ARCH = "arch_configs/spikesim.yaml"


def sweep_argv(model, out, traces, *extra: str) -> list[str]:
    return [
        "sweep", "--model", str(model), "--arch", ARCH, "--coding", "direct", "poisson",
        "--ic-positions", "2,4", "--timesteps", "20", "--images", "16", "--tune-images", "16",
        "--tune-on", "train", "--bootstrap", "100", "--traces", str(traces), "--out", str(out),
        *extra,
    ]  # fmt: skip


def test_dask_local_and_resumed_sweeps_write_the_same_csv(
    tiny_checkpoint, tmp_path, capsys, monkeypatch
):
    distributed = pytest.importorskip("distributed", reason="pip install 'hwsim[dask]'")
    _, model = tiny_checkpoint
    local = tmp_path / "local"
    code = main(sweep_argv(model, local, tmp_path / "cache-local"))
    assert code == 0, capsys.readouterr()
    frame = pd.read_csv(local / "sweep.csv")
    # grid order: coding, then IC; the cell's inputs in front of the results
    assert list(frame[["coding", "ic"]].itertuples(index=False, name=None)) == [
        ("direct", 2), ("direct", 4), ("poisson", 2), ("poisson", 4)
    ]  # fmt: skip
    assert list(frame.columns[:5]) == ["model", "arch", "coding", "ic", "reference"]
    assert (frame["reference"] == "ann").all()
    assert frame["coding"].nunique() == 2 and frame["auc_dl"].notna().all()
    assert not (local / SWEEP_STATE_FILE).exists()

    # a cluster of two worker processes, given by its address as an existing cluster would be,
    # with a cache of its own: its workers simulate everything again
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        on_dask = tmp_path / "dask"
        argv = sweep_argv(model, on_dask, tmp_path / "cache-dask")
        code = main([*argv, "--executor", "dask", "--scheduler", cluster.scheduler_address])
        assert code == 0, capsys.readouterr()
    assert (on_dask / "sweep.csv").read_bytes() == (local / "sweep.csv").read_bytes()

    # an interrupted run: two cells in the state file, the other two computed on resuming
    import hwsim.pipeline.grid as grid

    resumed, calls, real = tmp_path / "resumed", [], grid.evaluate_cell

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(grid, "evaluate_cell", interrupted)
    assert main(sweep_argv(model, resumed, tmp_path / "cache-resumed")) == 130
    assert len(pd.read_csv(resumed / SWEEP_STATE_FILE)) == 2
    monkeypatch.undo()
    capsys.readouterr()
    code = main(sweep_argv(model, resumed, tmp_path / "cache-resumed"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "resuming: 2 of 4 cells" in " ".join(out.split())
    assert (resumed / "sweep.csv").read_bytes() == (local / "sweep.csv").read_bytes()


def test_cell_keys_follow_the_inputs(tiny_checkpoint, tmp_path):
    from dataclasses import replace
    from pathlib import Path

    from hwsim.api import SimConfig, SweepConfig
    from hwsim.pipeline.grid import Cell, settings_digest

    _, model = tiny_checkpoint
    t = SweepConfig(arch=Path(ARCH), model=model, sim=SimConfig(timesteps=20))
    s = settings_digest(t)
    cell = Cell(model, Path(ARCH), "direct", 2)
    assert cell.key(s) == Cell(model, Path(ARCH), "direct", 2).key(s)
    assert cell.key(s) != replace(cell, ic=4).key(s)
    assert cell.key(s) != replace(cell, coding="poisson").key(s)
    assert cell.key(s) != cell.key(settings_digest(replace(t, sim=SimConfig(timesteps=21))))
    # the per-cell fields of the template do not matter, the file contents do
    assert settings_digest(replace(t, arch=Path("other.yaml"))) == s
    copy = tmp_path / "same.yaml"
    copy.write_bytes(Path(ARCH).read_bytes())
    assert replace(cell, arch=copy).key(s) == cell.key(s)
