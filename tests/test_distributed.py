"""Grid sweeps: a Dask cluster of worker processes, a local run and a resumed run write the
same sweep.csv byte for byte; a grid's cells are keyed by their inputs."""

import contextlib
import importlib.util

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


# --------------------------------------------------------------------------- failing fast


@pytest.fixture
def server():
    """Start TCP servers on 127.0.0.1 for one test (each closed after it); returns a starter
    taking a connection handler and giving the server's tcp:// address."""
    import socketserver
    import threading

    started = []

    def start(handle=None, http=False) -> str:
        if http:
            from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

            srv = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
        else:

            class Handler(socketserver.BaseRequestHandler):
                def handle(self):
                    handle(self.request)

            srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return f"tcp://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


def _children() -> set[int]:
    psutil = pytest.importorskip("psutil", reason="comes with the dask extra")

    return {p.pid for p in psutil.Process().children(recursive=True)}


def _silent(sock) -> None:
    sock.settimeout(30)
    with contextlib.suppress(OSError):
        sock.recv(1)  # says nothing until the client leaves


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("garbage", r"answered b'\\x00\\x00\\x00\\x00\\x00\\x00\\x10\\x00.*not Dask's protocol"),
        ("http", r"accepted the connection but sent no Dask handshake within 5 s"),
        ("silent", r"accepted the connection but sent no Dask handshake within 5 s"),
        ("nothing", r"cannot connect \(Connection refused\)"),
    ],
)
def test_an_address_without_a_dask_scheduler_is_refused_within_seconds(server, kind, message):
    """Each hung (HTTP: an orphan still running 6 min later) or asked for 3.07 EiB; the probe
    reads at most Dask's small handshake, within CONNECT_TIMEOUT_S."""
    import socket
    import time

    from hwsim.errors import InputError
    from hwsim.pipeline.grid import CONNECT_TIMEOUT_S, probe_scheduler

    if kind == "garbage":  # a length prefix of 2**52 bytes, then noise
        address = server(lambda s: s.sendall(b"\x00" * 6 + b"\x10\x00" + b"noise" * 20))
    elif kind == "http":
        address = server(http=True)
    elif kind == "silent":
        address = server(_silent)
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    before, start = _children(), time.monotonic()
    with pytest.raises(InputError, match=message) as e:
        probe_scheduler(address)
    assert e.value.param == "scheduler" and address in str(e.value)
    assert time.monotonic() - start < CONNECT_TIMEOUT_S + 2
    assert _children() == before  # nothing started, nothing orphaned


def test_a_real_scheduler_passes_the_probe_and_an_empty_cluster_is_waited_for(
    tiny_checkpoint, tmp_path
):
    """The scheduler's own handshake passes; with no worker the sweep says it waits, shows the
    seconds waited, and refuses after wait_workers seconds, leaving no process behind."""
    import time

    distributed = pytest.importorskip("distributed", reason="pip install 'hwsim[dask]'")
    from pathlib import Path

    from hwsim.api import GridConfig, SimConfig, SweepConfig, sweep_grid
    from hwsim.errors import InputError
    from hwsim.pipeline.grid import Executor, probe_scheduler

    _, model = tiny_checkpoint
    template = SweepConfig(arch=Path(ARCH), model=model, sim=SimConfig(timesteps=8), images=4,
                           tune_images=4, trace_root=tmp_path / "t")  # fmt: skip
    grid = GridConfig((model,), (Path(ARCH),), ("direct",), template, ic_positions=(4,))
    before = _children()
    with distributed.LocalCluster(
        n_workers=0, processes=False, protocol="tcp", dashboard_address=None, silence_logs=50
    ) as cluster:
        address = cluster.scheduler_address
        probe_scheduler(address)
        warnings, ticks = [], []
        start = time.monotonic()
        with pytest.raises(InputError, match=r"no worker joined within 1\.5 s"):
            sweep_grid(grid, tmp_path / "out", executor=Executor.DASK, scheduler=address,
                       wait_workers=1.5, warn=warnings.append,
                       progress=lambda *a: ticks.append(a))  # fmt: skip
        waited = time.monotonic() - start
    assert 1.5 <= waited < 10
    assert len(warnings) == 1 and "waiting up to 1.5 s" in warnings[0] and address in warnings[0]
    assert ("wait for Dask workers (s)", 0, 1) in ticks
    assert not (tmp_path / "out" / "sweep.csv").exists()
    assert _children() == before


def test_a_worker_that_joins_during_the_wait_ends_it():
    from hwsim.pipeline.grid import _await_workers

    class Cluster:  # nthreads() as distributed.Client gives it: none, then one worker
        calls = 0

        def nthreads(self):
            self.calls += 1
            return {"tcp://w:1": 1} if self.calls >= 3 else {}

    client, said = Cluster(), []
    _await_workers(client, "tcp://s:8786", 30, None, said.append)
    assert client.calls == 3 and len(said) == 1


def test_dask_without_its_extra_is_refused_with_the_install_hint(monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # importing it fails, as uninstalled
    argv = ["sweep", "--model", "vgg19", "--arch", ARCH, "--out", str(tmp_path / "o"),
            "--executor", "dask"]  # fmt: skip
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--executor dask needs Dask's distributed scheduler: pip install 'hwsim[dask]'" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "5"], "--workers sizes the local Dask cluster"),
        (["--executor", "dask", "--wait-workers", "3"], "--wait-workers waits for the workers"),
        (["--scheduler", "tcp://h:1"], "--scheduler: give it with --executor dask"),
        pytest.param(
            ["--executor", "dask", "--scheduler", "h:x"],
            "expected a scheduler address",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("distributed") is None, reason="no Dask"
            ),
        ),
    ],
)
def test_executor_options_that_would_not_act_are_refused(argv, message, tmp_path, capsys):
    code = main(["sweep", "--arch", ARCH, "--out", str(tmp_path / "o"), *argv])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and message in err, err
