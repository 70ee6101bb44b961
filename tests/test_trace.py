"""Trace files: round trip, and refusal of wrong versions, checksums and shapes."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from hwsim.engine import ActivitySpec, simulate
from hwsim.engine.trace import (
    ARRAYS_FILE,
    META_FILE,
    HeadSpikes,
    Trace,
    TraceError,
    TraceKey,
    engine_code_version,
    engine_sources,
    find_trace,
    indices_sha256,
    read_trace,
    source_digest,
    trace_folder,
    write_trace,
)
from hwsim.model.convert import convert
from hwsim.model.data import load_dataset


@pytest.fixture(scope="module")
def trace(tiny_checkpoint):
    ckpt, _ = tiny_checkpoint
    data = load_dataset("synthetic", "test").take(6)
    snn = convert(ckpt, load_dataset("synthetic", "train"))
    sim = simulate(snn, data.x, 12, activity=ActivitySpec(rows_per_crossbar=8))
    key = TraceKey(
        checkpoint_sha256="0" * 64,
        snn_fingerprint=snn.fingerprint(),
        conversion={"percentile": 99.9},
        coding={"name": "direct"},
        timesteps=12,
        seed=0,
        dataset="synthetic",
        split="test",
        image_indices_sha256=indices_sha256(data.indices),
        images=6,
        heads=tuple(snn.heads),
        engine={"hwsim": "test"},
    )
    return Trace(key, data.y, data.indices, sim)


def test_round_trip_is_exact(trace, tmp_path):
    folder = write_trace(trace, trace_folder(tmp_path, trace.key))
    back = read_trace(folder)
    assert back.key == trace.key
    np.testing.assert_array_equal(back.labels, trace.labels)
    for h, spikes in trace.sim.head_spikes.items():
        np.testing.assert_array_equal(back.sim.head_spikes[h], spikes)
        assert back.sim.head_spikes[h].dtype == np.uint8
    np.testing.assert_array_equal(back.sim.layer_spikes, trace.sim.layer_spikes)
    assert back.sim.layer_names == trace.sim.layer_names
    assert back.sim.activity.spec == trace.sim.activity.spec
    assert back.sim.activity.names == trace.sim.activity.names
    np.testing.assert_array_equal(back.sim.activity.active_pe_ops, trace.sim.activity.active_pe_ops)
    assert back.sim.activity.active_pe_ops.sum() > 0
    assert find_trace(tmp_path, trace.key) is not None
    other = TraceKey(**{**trace.key.__dict__, "timesteps": 13})
    assert find_trace(tmp_path, other) is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_a_read_trace_reads_a_head_when_asked_for_it(trace, tmp_path):
    """Heads come from arrays.npz on first use (a run reads 2 of 17): equal to the written
    ones, a prefix equal to slicing, pickled as the file; a file changed under the reader is
    refused by name."""
    back = read_trace(write_trace(trace, tmp_path / "t")).sim
    heads = back.head_spikes
    assert isinstance(heads, HeadSpikes) and set(heads) == set(trace.sim.head_spikes)
    assert back.images == 6 and heads._loaded == {}  # nothing read to know the images
    first, last = min(heads), max(heads)
    np.testing.assert_array_equal(heads[last], trace.sim.head_spikes[last])
    assert set(heads._loaded) == {last}
    short = read_trace(tmp_path / "t").prefix(5).sim.head_spikes
    np.testing.assert_array_equal(short[first], trace.sim.head_spikes[first][:, :5])
    again = pickle.loads(pickle.dumps(heads))
    np.testing.assert_array_equal(again[first], trace.sim.head_spikes[first])
    np.savez(tmp_path / "t" / ARRAYS_FILE, **{f"sim.head_spikes/{first}": np.zeros((6, 3, 2))})
    with pytest.raises(TraceError, match=f"head {first}"):
        heads[first]


def test_corrupt_arrays_are_refused(trace, tmp_path):
    folder = write_trace(trace, tmp_path / "t")
    data = bytearray((folder / ARRAYS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / ARRAYS_FILE).write_bytes(bytes(data))
    with pytest.raises(TraceError, match="checksum"):
        read_trace(folder)


def _edit_meta(folder, edit):
    meta = json.loads((folder / META_FILE).read_text())
    edit(meta)
    (folder / META_FILE).write_text(json.dumps(meta))


def test_wrong_version_is_refused(trace, tmp_path):
    folder = write_trace(trace, tmp_path / "t")
    _edit_meta(folder, lambda m: m.update(format_version=99))
    with pytest.raises(TraceError, match="version 99"):
        read_trace(folder)


def test_wrong_shape_and_edited_key_are_refused(trace, tmp_path):
    folder = write_trace(trace, tmp_path / "t")
    _edit_meta(folder, lambda m: m["shapes"].update(labels=[7]))
    with pytest.raises(TraceError, match="labels"):
        read_trace(folder)
    folder = write_trace(trace, tmp_path / "u")
    _edit_meta(folder, lambda m: m["key"].update(timesteps=99))
    with pytest.raises(TraceError, match="key checksum"):
        read_trace(folder)


def test_not_a_trace(tmp_path):
    with pytest.raises(TraceError, match="not a trace folder"):
        read_trace(tmp_path)


def _small_trace():
    from hwsim.engine import SimResult
    from hwsim.engine.trace import Trace, TraceKey, indices_sha256

    rows = indices_sha256(np.zeros(1, np.int64))
    key = TraceKey("0" * 64, "1" * 64, {}, {}, 2, 0, "synthetic", "test", rows, 1, (-1,), {})
    sim = SimResult({-1: np.zeros((1, 2, 2), np.uint8)}, ("a",), np.zeros((2, 1), np.int64),
                    np.ones(1, np.int64))  # fmt: skip
    return Trace(key, np.zeros(1, np.int64), np.zeros(1, np.int64), sim)


def _write_many(folder: str, times: int) -> None:
    from hwsim.engine.trace import write_trace

    for _ in range(times):
        write_trace(_small_trace(), Path(folder))


def test_trace_folders_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from hwsim.engine.trace import write_trace

    folder = write_trace(_small_trace(), tmp_path / "t")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask


def test_concurrent_writers_of_one_trace_neither_fail_nor_leave_temps(tmp_path):
    import multiprocessing as mp

    from hwsim.engine.trace import read_trace

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path / "t"), 15)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert read_trace(tmp_path / "t").key == _small_trace().key
    assert sorted(x.name for x in tmp_path.iterdir()) == ["t"]  # no temporary folder left


def test_a_killed_writers_temp_folder_is_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    from hwsim.engine.trace import write_trace

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = tmp_path / f".t.{int(dead.stdout)}.abc123.tmp"
    stale.mkdir()
    (stale / "arrays.npz").write_bytes(b"half")
    mine = tmp_path / ".u.1.xyz.tmp"  # pid 1 is alive: another writer at work, kept
    mine.mkdir()
    write_trace(_small_trace(), tmp_path / "t")
    assert not stale.exists() and mine.exists()


PACKAGE = Path(__file__).resolve().parents[1] / "hwsim"


def test_the_key_holds_the_engine_code_version(trace, tmp_path):
    """Every key carries the digest of the engine's sources: all of hwsim/engine but the trace
    store, and the model modules the engine runs."""
    assert trace.key.engine_code == engine_code_version()
    names = {p.relative_to(PACKAGE).as_posix() for p in engine_sources()}
    engine = {f"engine/{p.name}" for p in (PACKAGE / "engine").glob("*.py")} - {"engine/trace.py"}
    assert names == engine | {"model/coding.py", "model/convert.py", "model/graph.py"}
    meta = json.loads((write_trace(trace, tmp_path / "t") / META_FILE).read_text())
    assert meta["key"]["engine_code"] == engine_code_version()


def test_any_edit_of_the_engine_changes_its_code_version(tmp_path):
    """The digest of a copy of the sources is the engine's; one changed byte in any of them
    changes it; CRLF line ends (a Windows checkout) do not."""
    copies = []
    for src in engine_sources():
        dst = tmp_path / src.relative_to(PACKAGE)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
        copies.append(dst)
    assert engine_sources(tmp_path) == tuple(copies)
    assert source_digest(copies, tmp_path) == engine_code_version()
    kernels = tmp_path / "engine" / "_kernels.py"
    text = kernels.read_bytes()
    kernels.write_bytes(text.replace(b"\n", b"\r\n"))
    assert source_digest(copies, tmp_path) == engine_code_version()
    kernels.write_bytes(text.replace(b"LANES", b"LANEZ", 1))
    assert source_digest(copies, tmp_path) != engine_code_version()


def test_a_trace_of_another_engine_is_never_reused(trace, tmp_path):
    other = TraceKey(**{**trace.key.__dict__, "engine_code": "0" * 64})
    assert trace_folder(tmp_path, other) != trace_folder(tmp_path, trace.key)
    write_trace(trace, trace_folder(tmp_path, trace.key))
    assert find_trace(tmp_path, other) is None
    write_trace(trace, trace_folder(tmp_path, other))  # even in the other key's folder
    assert find_trace(tmp_path, other) is None
    assert find_trace(tmp_path, trace.key) is not None


def test_a_version_2_trace_without_engine_code_is_refused(trace, tmp_path):
    folder = write_trace(trace, tmp_path / "t")

    def as_version_2(meta):
        meta["format_version"] = 2
        del meta["key"]["engine_code"]

    _edit_meta(folder, as_version_2)
    with pytest.raises(TraceError, match="version 2 unsupported"):
        read_trace(folder)


def test_equal_traces_are_equal_bytes_whenever_written(trace, tmp_path, monkeypatch):
    """What tests/test_reproducible.py compares across instruction sets: no clock in a trace
    (numpy dates every member of arrays.npz 1980-01-01)."""
    import time

    write_trace(trace, tmp_path / "a")
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 3 * 86400)
    write_trace(trace, tmp_path / "b")
    for name in (META_FILE, ARRAYS_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_spilled_simulation_writes_the_same_trace_bytes(trace, tiny_checkpoint, tmp_path):
    """simulate(..., spill=) keeps its head spikes and per-image activity in memory-mapped
    files, equal to the in-memory result, and the trace written from it is byte for byte the
    one written from memory (and its arrays.npz is what np.savez_compressed writes)."""
    from hwsim.engine.mapped import file_mapping

    ckpt, _ = tiny_checkpoint
    data = load_dataset("synthetic", "test").take(6)
    snn = convert(ckpt, load_dataset("synthetic", "train"))
    spec = ActivitySpec(rows_per_crossbar=8, per_image=True)
    (tmp_path / "spill").mkdir()
    spilled = simulate(snn, data.x, 12, activity=spec, batch_size=4, spill=tmp_path / "spill")
    plain = simulate(snn, data.x, 12, activity=spec, batch_size=4)
    assert file_mapping(spilled.activity.per_image) is not None
    for h, spikes in plain.head_spikes.items():
        assert file_mapping(spilled.head_spikes[h]) is not None
        np.testing.assert_array_equal(spilled.head_spikes[h], spikes)
    np.testing.assert_array_equal(spilled.activity.per_image, plain.activity.per_image)
    a = write_trace(Trace(trace.key, data.y, data.indices, spilled), tmp_path / "a")
    b = write_trace(Trace(trace.key, data.y, data.indices, plain), tmp_path / "b")
    for name in sorted(p.name for p in a.iterdir()):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    with np.load(a / ARRAYS_FILE) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez_compressed(tmp_path / "numpy.npz", **arrays)
    assert (tmp_path / "numpy.npz").read_bytes() == (a / ARRAYS_FILE).read_bytes()
