"""Sweeps over a grid of models x architectures x input codings x IC positions, one task per
cell, on this machine or on a Dask cluster (docs/distributed.md).

A cell is one (model, architecture, coding, IC) evaluation (`evaluate.evaluate_ics` of that one
IC), whose traces, tunings and evaluated row go to the shared trace cache (the row to its
content-keyed result store, shared with `hwsim.api.sweep`: a grid run again with one more IC
position computes only that position). The cells of one model, architecture and coding form
a family (`Cell.family`): their R intervals are also given simultaneous over its positions
(Bonferroni, `evaluate.simultaneous_rows`). Each cell is keyed by its inputs (the model's and
the architecture file's SHA-256, the coding, the IC, its family's size and every other
setting), so a cell is computed once whichever executor runs it, an interrupted grid resumes
from its state file (`SWEEP_STATE_FILE`, one row per finished cell with its key), and a local,
a cluster and a resumed run give the same rows (in grid order, whatever order the cells
finished in).

Executors: LOCAL runs the cells one after the other in this process (no extra dependency);
DASK submits them to a `distributed` scheduler (an existing cluster's address, or a
LocalCluster of worker processes started here). Before anything runs, DASK fails fast: the
extra must be installed, the address must answer within `CONNECT_TIMEOUT_S` with Dask's
handshake (not an HTTP server's silence, not garbage), and a cluster without workers is
waited for a stated time (`wait_workers`, with progress), then refused.

The first cell of each model and coding simulates the traces; the others of that model and
coding wait for it and read them from the cache, so a cluster never simulates the same trace
twice (the cache folder must be shared by the workers: the same path on a shared file system).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from hwsim.atomic import record_outputs, write_csv
from hwsim.engine.trace import file_sha256
from hwsim.errors import DataError, InputError, ModelError
from hwsim.metrics import Multiplicity
from hwsim.model.conversion import ConversionParams
from hwsim.model.nir_io import NirOptions
from hwsim.pipeline.config import ProgressFn, SweepConfig, WarnFn, coding_from_text
from hwsim.pipeline.evaluate import evaluate_ics, ic_key, settings_digest, simultaneous_rows
from hwsim.pipeline.session import Session
from hwsim.pipeline.store import ResultStore
from hwsim.results import GridResult, GridRow

SWEEP_STATE_FILE = "sweep.partial.csv"
"""Rows of an unfinished grid, one per finished cell with its key, in its output folder."""
CONNECT_TIMEOUT_S = 5.0
"""Seconds a Dask scheduler has to accept the connection and send its handshake."""
WAIT_WORKERS_S = 60.0
"""Seconds an existing cluster without workers is waited for by default."""
MAX_HANDSHAKE_BYTES = 2**16
"""Dask's handshake is a few dozen bytes: a longer announced message is not Dask's."""
DASK_HINT = "pip install 'hwsim[dask]'"


class Executor(StrEnum):
    """Where the cells run."""

    LOCAL = "local"  # one after the other, in this process
    DASK = "dask"  # as tasks of a Dask distributed scheduler


@dataclass(frozen=True)
class Cell:
    """One evaluation of the grid: `model` on `arch` with input coding `coding` (as given on
    the command line: direct, poisson, weighted:K), IC at block `ic`; `family`: the number of
    IC positions of its model, architecture and coding (the positions its simultaneous
    intervals hold over)."""

    model: Path
    arch: Path
    coding: str
    ic: int
    family: int = 1

    def config(self, template: SweepConfig, seed: int) -> SweepConfig:
        """The one-IC sweep this cell is (`template` with this cell's files and coding)."""
        sim = dataclasses.replace(template.sim, coding=coding_from_text(self.coding, seed))
        return dataclasses.replace(
            template, model=self.model, arch=self.arch, sim=sim, ic_positions=(self.ic,)
        )

    def key(self, settings: str) -> str:
        """SHA-256 of the cell's inputs: file contents, coding, IC, its family's size and
        `settings` (the digest of everything else, `settings_digest`)."""
        ident = {
            "model_sha256": file_sha256(self.model),
            "arch_sha256": file_sha256(self.arch),
            "coding": self.coding,
            "ic": self.ic,
            "family": self.family,
            "settings": settings,
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class GridConfig:
    """A grid sweep: every model x arch x coding x IC position. `ic_positions` None: every IC
    of each model. `template` holds the other settings (its model, arch, coding and IC
    positions are replaced per cell); `seed` seeds Poisson codings."""

    models: tuple[Path, ...]
    archs: tuple[Path, ...]
    codings: tuple[str, ...]
    template: SweepConfig
    ic_positions: tuple[int, ...] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for what, values in (("model", self.models), ("arch", self.archs)):
            if not values:
                raise InputError(f"{{{what}}}: give at least one", params=(what,))
            if len(set(values)) != len(values):
                raise InputError(
                    f"{{{what}}}: {', '.join(map(str, values))} names one twice", params=(what,)
                )
        if not self.codings or len(set(self.codings)) != len(self.codings):
            raise InputError(
                f"{{coding}} {', '.join(self.codings)}: give distinct codings", params=("coding",)
            )
        for coding in self.codings:
            coding_from_text(coding, self.seed)  # refuses a malformed coding up front
        for arch in self.archs:
            if not Path(arch).is_file():
                raise InputError(f"{{arch}} {arch}: no such architecture file", params=("arch",))


@lru_cache(maxsize=4)
def _session(
    model: Path, sha256: str, data_root: str | None, conversion: ConversionParams, nir: NirOptions
) -> Session:
    """An open session per model file content and settings, kept for the life of the process
    (a worker converts each model once, however many of its cells it runs)."""
    del sha256  # part of the cache key only: a changed file is opened afresh
    return Session.open(model, data_root, conversion, nir)


def evaluate_cell(cell: Cell, template: SweepConfig, seed: int, after: object = None) -> GridRow:
    """The sweep.csv row of one cell (runs in a worker; read from the result store when
    stored), its R intervals also simultaneous over its family (Bonferroni). `after`: the row
    of the cell that simulated this cell's traces, passed only so that the scheduler runs this
    one later."""
    del after
    cfg = cell.config(template, seed)
    session = _session(
        cfg.model, file_sha256(cfg.model), cfg.data_root, cfg.sim.conversion, cfg.nir
    )
    rows = evaluate_ics(cfg, session)
    level = cfg.bootstrap.level
    row = simultaneous_rows(rows, level, Multiplicity.BONFERRONI, cell.family)[0]
    head = {"model": str(cell.model), "arch": str(cell.arch), "coding": cell.coding}
    return {**head, "ic": cell.ic, "reference": str(session.reference), **row.to_dict()}


def grid_cells(cfg: GridConfig) -> list[Cell]:
    """The cells in grid order (model, arch, coding, IC), each model's IC positions checked
    against its heads before anything runs."""
    t = cfg.template
    cells = []
    for model in cfg.models:
        session = Session.open(model, t.data_root, t.sim.conversion, t.nir)
        ics = session.resolve_ics(cfg.ic_positions, "ic_positions")
        if not ics:
            raise ModelError(f"{model}: no IC heads to sweep")
        n = len(ics)
        cells += [Cell(model, a, c, ic, n) for a in cfg.archs for c in cfg.codings for ic in ics]
    return cells


def grid_state(out_dir: Path, keys: set[str]) -> dict[str, GridRow]:
    """Rows an interrupted grid left in out_dir whose cell key is among `keys`."""
    path = out_dir / SWEEP_STATE_FILE
    if not path.is_file():
        return {}
    import pandas as pd

    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        rows = {str(r.pop("cell_key")): r for r in frame.to_dict("records")}
    except (ValueError, KeyError, pd.errors.ParserError) as e:
        raise DataError(
            f"{path}: a damaged sweep state file ({e}); delete it to start the sweep afresh"
        ) from None
    return {k: r for k, r in rows.items() if k in keys}


def run_grid(
    cfg: GridConfig,
    out_dir: Path | None = None,
    *,
    executor: Executor = Executor.LOCAL,
    scheduler: str | None = None,
    workers: int | None = None,
    wait_workers: float | None = None,
    on_row: Callable[[GridRow], None] | None = None,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> GridResult:
    """Evaluate every cell of the grid, those of an interrupted run with the same inputs
    excepted (read from out_dir's state file). With `out_dir`, each finished row is added to
    the state file at once (the results' files are `hwsim.api.sweep_grid`'s: `paths` is empty
    here).

    `scheduler`: the address of a running Dask scheduler (tcp://host:8786); None with
    Executor.DASK starts a LocalCluster of `workers` processes (None: one per CPU).
    `wait_workers`: seconds to wait for the first worker of the cluster at `scheduler` (None:
    `WAIT_WORKERS_S`). Every executor setting is checked before any cell runs.
    """
    check_executor(executor, scheduler, workers, wait_workers)
    cells = grid_cells(cfg)
    settings = settings_digest(cfg.template)
    keys = [c.key(settings) for c in cells]
    done = grid_state(out_dir, set(keys)) if out_dir is not None else {}
    resumed = len(done)
    todo = [(k, c) for k, c in zip(keys, cells, strict=True) if k not in done]
    stored = sum(_is_stored(c, cfg) for _, c in todo)
    start = time.perf_counter()

    def finished(key: str, row: GridRow) -> None:
        done[key] = row
        if out_dir is not None:
            _write_state(out_dir, done)
        if on_row is not None:
            on_row(row)
        if progress is not None:
            progress("cells", len(done) - resumed, len(todo))

    if progress is not None:
        progress("cells", 0, len(todo))
    if executor is Executor.LOCAL:
        for key, cell in todo:
            finished(key, evaluate_cell(cell, cfg.template, cfg.seed))
    elif todo:
        wait = WAIT_WORKERS_S if wait_workers is None else wait_workers
        _run_dask(todo, cfg, scheduler, workers, wait, finished, progress, warn)
    seconds = time.perf_counter() - start
    return GridResult([done[k] for k in keys], resumed, len(cells), [], seconds, stored)


def _is_stored(cell: Cell, cfg: GridConfig) -> bool:
    """Whether the result store under the trace root holds the cell's evaluation (a damaged
    record is found here and recomputed when read)."""
    cell_cfg = cell.config(cfg.template, cfg.seed)
    if cell_cfg.trace_root is None:
        return False
    key = ic_key(cell_cfg, file_sha256(cell.model), cell.ic)
    return ResultStore(cell_cfg.trace_root).path(key).is_file()


def _write_state(out_dir: Path, done: dict[str, GridRow]) -> None:
    import pandas as pd

    record_outputs(out_dir, [SWEEP_STATE_FILE])  # listed before it exists: see record_outputs
    frame = pd.DataFrame([{**row, "cell_key": key} for key, row in done.items()])
    write_csv(frame, out_dir / SWEEP_STATE_FILE)


def check_executor(
    executor: Executor,
    scheduler: str | None,
    workers: int | None,
    wait_workers: float | None,
) -> None:
    """Refuse executor settings that would not act or cannot work, before anything runs:
    a scheduler, a worker count or a wait without Dask (or a worker count for an existing
    cluster, which has its own), Dask without its extra installed, and a scheduler address
    where no Dask scheduler answers (`probe_scheduler`)."""
    if executor is not Executor.DASK:
        for name, value in (
            ("scheduler", scheduler),
            ("workers", workers),
            ("wait_workers", wait_workers),
        ):
            if value is not None:
                raise InputError(
                    f"{{{name}}}: give it with {{executor}} dask", params=(name, "executor")
                )
        return
    if workers is not None and scheduler is not None:
        raise InputError(
            "{workers} sizes the local cluster started without {scheduler}; an existing"
            " cluster has its own workers",
            params=("workers", "scheduler"),
        )
    if wait_workers is not None and (scheduler is None or wait_workers < 0):
        raise InputError(
            "{wait_workers} waits (seconds >= 0) for the workers of the cluster at {scheduler}",
            params=("wait_workers", "scheduler"),
        )
    if importlib.util.find_spec("distributed") is None:
        raise InputError(
            f"{{executor}} dask needs Dask's distributed scheduler: {DASK_HINT}",
            params=("executor",),
        )
    if scheduler is not None:
        probe_scheduler(scheduler)


def scheduler_host_port(address: str) -> tuple[str, str, int]:
    """(protocol, host, port) of a scheduler address: tcp://HOST:PORT (or HOST:PORT)."""
    protocol, sep, rest = address.partition("://")
    if not sep:
        protocol, rest = "tcp", address
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise InputError(
            f"{{scheduler}} {address!r}: expected a scheduler address, tcp://HOST:PORT",
            params=("scheduler",),
        )
    return protocol, host, int(port)


def _recv(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def probe_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse within about `timeout` seconds an address where no Dask scheduler answers:
    nothing listening, a server that stays silent (an HTTP server waits for a request; a
    scheduler sends its handshake at once) or one that sends something other than Dask's
    framed handshake (a length-prefixed msgpack dict naming its Python). TCP only; other
    protocols (tls://, ucx://) are left to Dask's own connection timeout."""
    protocol, host, port = scheduler_host_port(address)
    if protocol != "tcp":
        return
    where = f"{{scheduler}} {address}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise InputError(
            f"{where}: cannot connect ({e.strerror or e}); is the scheduler running there?"
            " (`dask scheduler` prints its address)",
            params=("scheduler",),
        ) from None
    deadline = time.monotonic() + timeout
    with sock:
        try:
            sock.settimeout(timeout)
            head = _recv(sock, 8)
            size = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            body = _recv(sock, size) if 8 <= size <= MAX_HANDSHAKE_BYTES else b""
        except TimeoutError:
            raise InputError(
                f"{where}: accepted the connection but sent no Dask handshake within"
                f" {timeout:g} s; not a Dask scheduler (an HTTP server, such as the dashboard"
                " on port 8787? the scheduler listens on 8786 by default)",
                params=("scheduler",),
            ) from None
        except OSError as e:
            raise InputError(
                f"{where}: the connection failed ({e.strerror or e})", params=("scheduler",)
            ) from None
    if not _is_handshake(body):
        shown = (head + body)[:24]
        raise InputError(
            f"{where}: answered {shown!r}..., which is not Dask's protocol; give the address"
            " of a Dask scheduler",
            params=("scheduler",),
        )


def _is_handshake(body: bytes) -> bool:
    """Whether `body` holds Dask's framed handshake (one msgpack dict with a "python" key)."""
    import msgpack

    if len(body) < 16:
        return False
    frames = struct.unpack_from("<Q", body)[0]
    if not 1 <= frames <= 8 or len(body) < 8 * (1 + frames):
        return False
    lengths = struct.unpack_from(f"<{frames}Q", body, 8)
    start = 8 * (1 + frames)
    if start + sum(lengths) > len(body):
        return False
    try:
        message = msgpack.loads(body[start : start + lengths[0]], raw=False)
    except Exception:  # msgpack raises several types for bytes that are not its format
        return False
    return isinstance(message, dict) and "python" in message


def _await_workers(
    client: Any,
    address: str,
    wait: float,
    progress: ProgressFn | None,
    warn: WarnFn | None,
) -> None:
    """Return once the cluster has a worker; wait up to `wait` seconds for one, saying so
    and showing the seconds waited, then refuse."""
    if client.nthreads():
        return
    if warn is not None:
        warn(
            f"the Dask cluster at {address} has no workers yet; waiting up to {wait:g} s for"
            f" one (start them with: dask worker {address})"
        )
    start = time.monotonic()
    while (waited := time.monotonic() - start) < wait:
        if progress is not None:
            progress("wait for Dask workers (s)", int(waited), int(wait))
        time.sleep(min(1.0, wait - waited))
        if client.nthreads():
            return
    raise InputError(
        f"{{scheduler}} {address}: no worker joined within {wait:g} s; start workers (dask"
        f" worker {address}) or wait longer ({{wait_workers}})",
        params=("scheduler", "wait_workers"),
    )


@contextmanager
def dask_client(
    scheduler: str | None,
    workers: int | None,
    wait: float,
    progress: ProgressFn | None,
    warn: WarnFn | None,
) -> Iterator[Any]:
    """A distributed Client on `scheduler` (`check_executor` probed it), waited on for a
    worker up to `wait` seconds, or on a LocalCluster of worker processes; closed (and the
    cluster's processes ended) however the block ends."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=f"{2 * CONNECT_TIMEOUT_S:g}s")
        except (OSError, TimeoutError, ValueError) as e:
            raise InputError(
                f"{{scheduler}} {scheduler}: cannot connect ({e})", params=("scheduler",)
            ) from None
        with client:
            _await_workers(client, scheduler, wait, progress, warn)
            yield client
        return
    n = workers or os.cpu_count() or 1
    try:
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        )
    except (RuntimeError, OSError, TimeoutError) as e:  # distributed: "Nanny failed to start"
        raise InputError(
            f"{{executor}} dask: a local cluster of {n} worker processes ({{workers}}) did not"
            f" start ({type(e).__name__}: {e}); use {{executor}} local, fewer {{workers}}, or a"
            " running cluster ({scheduler})",
            params=("executor", "workers", "scheduler"),
        ) from None
    with cluster, Client(cluster) as client:
        yield client


def _run_dask(
    todo: list[tuple[str, Cell]],
    cfg: GridConfig,
    scheduler: str | None,
    workers: int | None,
    wait: float,
    finished: Callable[[str, GridRow], None],
    progress: ProgressFn | None,
    warn: WarnFn | None,
) -> None:
    """Submit every cell: the first of each model and coding (it simulates the tuning trace)
    first, then the first of each of its architectures (the test trace, which the event
    energy model simulates per crossbar geometry), then the rest."""
    from distributed import as_completed

    with dask_client(scheduler, workers, wait, progress, warn) as client:
        leaders: dict[tuple[Any, ...], Any] = {}
        futures = {}
        for key, cell in todo:
            by_coding, by_arch = (cell.model, cell.coding), (cell.model, cell.coding, cell.arch)
            after = leaders.get(by_arch, leaders.get(by_coding))
            future = client.submit(
                evaluate_cell, cell, cfg.template, cfg.seed, after, key=f"hwsim-cell-{key}"
            )
            leaders.setdefault(by_coding, future)
            leaders.setdefault(by_arch, future)
            futures[future] = key
        for future in as_completed(futures):
            finished(futures[future], future.result())
