"""The trace and tuning caches: a split's spike trace is simulated once per key and stored under
the trace root; a tuning is stored beside the trace it was tuned on. Both are found again by
their inputs, checked when read (a damaged entry is named and recomputed), and written
atomically. A cache that cannot be written (a read-only mount, a full disk) is used read-only:
what is stored there is read, and what would be stored is not, with a warning. A user-given
test trace is checked against the run before it is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hwsim import engine
from hwsim.atomic import DISK_FULL, atomic_write_text, disk_full
from hwsim.engine.trace import (
    Trace,
    TraceError,
    find_trace,
    read_trace,
    trace_folder,
    write_trace,
)
from hwsim.errors import DataError, InputError, OutputError
from hwsim.fusion import Tuning, TuningConfig, cumulative, tune_methods
from hwsim.model.data import ImageSet
from hwsim.model.graph import FC_HEAD
from hwsim.pipeline.config import DEFAULT_TRACE_ROOT, ProgressFn, SimConfig, WarnFn, check_memory
from hwsim.pipeline.session import Session

if TYPE_CHECKING:  # the engine and the chip import torch: a run whose traces are cached needs
    # neither
    from hwsim.engine import SimResult


def check_trace_root(root: Path | None) -> None:
    """Refuse a trace cache root that exists and is not a folder."""
    if root is not None and Path(root).exists() and not Path(root).is_dir():
        raise InputError(
            f"{{trace_root}} {root}: exists and is not a folder; give the trace cache folder",
            params=("trace_root",),
        )


def trace(
    session: Session,
    data: ImageSet,
    sim: SimConfig,
    *,
    trace_root: Path | None = DEFAULT_TRACE_ROOT,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
    stage: str = "simulate",
) -> Trace:
    """The trace of `data` under `sim`: a stored one with the same key, else simulated (and
    stored under trace_root unless it is None). Every head of the model is simulated, so one
    trace serves any IC."""
    check_trace_root(trace_root)
    session.cache_under(trace_root)
    key = session.key(data, sim)
    if trace_root is not None:
        try:
            cached = find_trace(trace_root, key)
        except TraceError as e:
            if warn is not None:
                warn(f"ignoring a cached trace this hwsim cannot use ({e}); recomputing")
            cached = None
        if cached is not None:
            return cached
    # a trace simulated is keyed by the network loaded for it, not by the fingerprint the
    # model cache stores of it (unchecked: a damaged entry is converted again)
    if key.snn_fingerprint != session.snn.fingerprint():
        key = session.key(data, sim)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(stage, done, len(data))

    spill = _spill_folder(trace_root)
    try:
        if spill is None:  # the result held in memory: refuse what cannot fit
            check_memory(session.snn.graph, len(data), sim)
        if progress is not None:
            progress(stage, 0, len(data))
        if sim.hardware is not None:
            result = _chip_trace(session, data, sim, tick)
        else:
            result = engine.simulate(
                session.snn,
                data.x,
                sim.timesteps,
                batch_size=sim.batch_size,
                on_batch=tick,
                coding=sim.coding,
                backend=sim.backend,
                activity=sim.activity,
                image_ids=data.indices,
                threads=sim.threads,
                spill=spill,
            )
        out = Trace(key, data.y, data.indices, result)
        if trace_root is not None:
            folder = trace_folder(trace_root, key)
            if _store(f"the {data.split} trace", folder, lambda: write_trace(out, folder), warn):
                # the stored trace, read back: its heads read when asked, its per-image
                # activity memory-mapped
                return read_trace(folder)
        return out
    finally:
        if spill is not None:  # arrays mapped from it stay valid until they are dropped
            shutil.rmtree(spill, ignore_errors=True)


def _spill_folder(trace_root: Path | None) -> Path | None:
    """A new folder under the trace root where the engine writes its result as it simulates
    (`simulate(..., spill=)`: memory does not grow with the images), named as a temporary
    folder of this process so that a killed run's is removed by the next trace written
    (`hwsim.engine.trace.remove_stale_temps`); None without a trace root or where it cannot be
    made (the result is then held in memory)."""
    if trace_root is None:
        return None
    try:
        Path(trace_root).mkdir(parents=True, exist_ok=True)
        return Path(
            tempfile.mkdtemp(prefix=f".spill.{os.getpid()}.", suffix=".tmp", dir=trace_root)
        )
    except OSError:
        return None


def _store(what: str, path: Path, write: Callable[[], object], warn: WarnFn | None) -> bool:
    """Run `write` (storing `what` at `path` in the cache); if the cache cannot be written,
    warn and go on without storing it. Returns whether it was stored."""
    try:
        write()
    except (OSError, OutputError) as e:
        if isinstance(e, OSError) and e.errno in DISK_FULL:
            e = disk_full(path)
        reason = str(e) if isinstance(e, OutputError) else f"{e.filename or path}: {e.strerror}"
        if warn is not None:
            warn(f"{what} is not stored in the trace cache ({reason}); going on without it")
        return False
    return True


def _chip_trace(
    session: Session, data: ImageSet, sim: SimConfig, tick: Callable[[int], None]
) -> SimResult:
    """`data` simulated on the mapped chip (`pipeline.hardware.chip_simulation`), calibrated on
    the first training images (the crossbars read the image bit-serially: direct coding); the
    session's prepared chip, so the tuning and test splits build and calibrate it once."""
    from hwsim.pipeline.hardware import chip_run

    assert sim.hardware is not None
    hw = session.hardware(sim.hardware, sim.timesteps)
    return chip_run(hw, data.x, sim.timesteps, batch_size=sim.batch_size, on_batch=tick)


def load_given_trace(session: Session, folder: Path, sim: SimConfig) -> Trace:
    """A user-given test trace, refused (naming the mismatch) if corrupt or made from another
    model, split, conversion or coding, or shorter than the run; a longer one is cut to the
    run's timesteps."""
    t = read_trace(folder)
    want = session.key(session.split("test").take(1), sim)
    checks = (
        ("checkpoint", t.key.checkpoint_sha256, session.model_sha256),
        ("split", t.key.split, "test"),
        ("dataset", t.key.dataset, want.dataset),
        ("conversion ({v0})", t.key.conversion, want.conversion),
        ("coding ({coding}, {seed})", t.key.coding, want.coding),
    )
    for what, got, expected in checks:
        if got != expected:
            shown = (got, expected) if what != "checkpoint" else ("another", session.model_path)
            raise TraceError(
                f"{{test_trace}} {folder}: made with {what} {shown[0]}; the run uses {shown[1]}",
                params=("test_trace", "v0", "coding", "seed"),
            )
    if t.key.timesteps < sim.timesteps:
        raise TraceError(
            f"{{test_trace}} {folder}: {t.key.timesteps} timesteps; the run needs"
            f" {sim.timesteps} ({{timesteps}}), so simulate a longer trace or run fewer steps",
            params=("test_trace", "timesteps"),
        )
    return t.prefix(sim.timesteps)


def tuning_path(trace_root: Path, tune: Trace, ic: int, config: TuningConfig | None = None) -> Path:
    """Where the tuning of `ic` on `tune` is stored: beside the tuning trace (one file per
    pooling; the other settings are checked when it is read)."""
    pooling = (config or TuningConfig()).pooling
    return trace_folder(trace_root, tune.key) / f"tuning-ic{ic}-{pooling}.json"


def _tuning_digest(tuning: dict) -> str:
    return hashlib.sha256(json.dumps(tuning, sort_keys=True).encode()).hexdigest()


def tuning_for(
    tune: Trace,
    ic: int,
    trace_root: Path | None = None,
    config: TuningConfig | None = None,
    warn: WarnFn | None = None,
) -> Tuning:
    """alpha(t) (grid, empirical Bayes; PWL and LUT) and early-exit thresholds for `ic`, tuned
    on the `tune` trace; read from / written to trace_root when given. A stored tuning is
    reused only if it was made from the same trace with the same settings and its checksum
    holds; a damaged one is named, set aside (renamed *.damaged) and recomputed. A tie drawn at
    random (`TuningConfig.ties`) is drawn by the trace's image indices, as on the test images."""
    config = config or TuningConfig()
    # the random tie rule draws by the images' ids in their data set (a tuning stored before
    # they were passed drew by 0..N-1: `tie_ids` tells them apart)
    params = {**config.to_dict(), "tie_ids": "image_indices"}
    path = tuning_path(trace_root, tune, ic, config) if trace_root is not None else None
    if path is not None and path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored["tuning_sha256"] != _tuning_digest(stored["tuning"]):
                raise DataError("its checksum does not match its content (edited?)")
            if stored["tune_key_sha256"] == tune.key.digest() and stored["params"] == params:
                tuning = Tuning.from_dict(stored["tuning"])
                if any(len(s.alpha) != tune.key.timesteps for s in tuning.schedules.values()):
                    raise DataError("its alpha schedules do not cover the trace's timesteps")
                return tuning
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
            damaged = path.with_name(path.name + ".damaged")
            moved = _store("the damaged tuning", path, lambda: path.replace(damaged), warn)
            if warn is not None:
                aside = f"set aside as {damaged.name}" if moved else "left in place"
                warn(f"{path}: a damaged stored tuning ({e}); {aside}")
    fc, icc = (cumulative(tune.sim.head_spikes[h]) for h in (FC_HEAD, ic))
    tuning = tune_methods(fc, icc, tune.labels, config, image_ids=tune.image_indices)
    if path is not None:
        stored_tuning = tuning.to_dict()
        payload = {
            "ic": ic,
            "tune_key_sha256": tune.key.digest(),
            "params": params,
            "tuning": stored_tuning,
            "tuning_sha256": _tuning_digest(stored_tuning),
        }
        text = json.dumps(payload)
        _store(f"the tuning of IC {ic}", path, lambda: atomic_write_text(path, text), warn)
    return tuning
