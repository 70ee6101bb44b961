"""`hwsim cache list|prune` (hwsim.pipeline.cachedir, hwsim.cli.cache): hwsim's entries listed
with their sizes and ages, pruned by age, total size or all after a confirmation, and nothing
that hwsim did not write ever deleted."""

import json
import os
import time
from pathlib import Path

import pytest

from hwsim.cli.main import main
from hwsim.cli.parser import age, size
from hwsim.pipeline.cachedir import (
    CacheEntry,
    CacheListing,
    EntryKind,
    PruneRule,
    scan,
    select,
)
from hwsim.pipeline.store import ResultStore, content_key

DAY = 86_400.0


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, " ".join((out.out + out.err).split())


def everything(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def file_bytes(folder: Path) -> int:
    return sum(os.path.getsize(Path(d) / f) for d, _, fs in os.walk(folder) for f in fs)


@pytest.fixture
def cache(tiny_checkpoint, tmp_path_factory, capsys) -> Path:
    """A trace cache with a validation trace and its tuning, a test trace, a stored result, and
    things hwsim did not write: a file, a folder named like a trace, a file among the results."""
    _, path = tiny_checkpoint
    root = tmp_path_factory.mktemp("cache") / "traces"
    common = ["--model", str(path), "--timesteps", "5", "--traces", str(root)]
    code, text = run_cli(capsys, "tune", *common, "--ic", "4", "--tune-images", "8")
    assert code == 0, text
    code, text = run_cli(capsys, "trace", *common, "--images", "8")
    assert code == 0, text
    ResultStore(root).put(content_key(cell=1), {"accuracy": 0.5})
    (root / "notes.txt").write_text("mine")
    fake = root / "mnist5k-test-T5-0123456789abcdef"
    fake.mkdir()
    (fake / "meta.json").write_text('{"format": "mine"}')
    (root / "results" / "notes.txt").write_text("mine")
    return root


FOREIGN = {
    "notes.txt",
    "mnist5k-test-T5-0123456789abcdef",
    "mnist5k-test-T5-0123456789abcdef/meta.json",
    "results",
    "results/notes.txt",
}


def listed(capsys, root: Path, tmp_path: Path) -> dict:
    summary = tmp_path / "list.json"
    code, text = run_cli(capsys, "cache", "list", "--traces", str(root), "--summary", str(summary))
    assert code == 0, text
    return json.loads(summary.read_text())


def test_list_names_hwsims_entries_and_leaves_the_rest_alone(cache, tmp_path, capsys):
    data = listed(capsys, cache, tmp_path)
    kinds = sorted(e["kind"] for e in data["entries"])
    # the conversion is kept in the model cache (models/)
    assert kinds == ["model", "result", "trace", "trace"]
    models = [e for e in data["entries"] if e["kind"] == "model"]
    assert [e["holds"] for e in models] == ["converted network"]
    assert Path(models[0]["path"]).parent.name == "models"
    traces = {Path(e["path"]).name: e for e in data["entries"] if e["kind"] == "trace"}
    assert {n.split("-T5-")[0] for n in traces} == {"synthetic-test", "synthetic-validation"}
    for name, e in traces.items():
        assert e["bytes"] == file_bytes(cache / name)
        assert e["key"] == name[-16:]
        assert ("1 tuning" in e["holds"]) == ("validation" in name)
    assert sorted(Path(p).name for p in data["left_alone"]) == [
        "mnist5k-test-T5-0123456789abcdef",
        "notes.txt",
        "notes.txt",
    ]
    assert data["bytes"] == sum(e["bytes"] for e in data["entries"])


def test_prune_asks_first_and_deletes_only_hwsims_entries(cache, tmp_path, capsys):
    before = everything(cache)
    code, text = run_cli(capsys, "cache", "prune", "--all", "--traces", str(cache))
    assert code == 2 and "give --yes to confirm" in text  # no terminal to ask on
    code, text = run_cli(capsys, "cache", "prune", "--all", "--dry-run", "--traces", str(cache))
    assert code == 0 and "would delete" in text and "deleted nothing" in text
    assert everything(cache) == before
    code, text = run_cli(capsys, "cache", "prune", "--all", "--yes", "--traces", str(cache))
    assert code == 0 and "deleted 4 entries" in text
    assert everything(cache) == FOREIGN  # the emptied models/ folder too


def test_prune_by_age_and_by_size(cache, tmp_path, capsys):
    entries = listed(capsys, cache, tmp_path)["entries"]
    by_kind = {(e["kind"], "validation" in e["path"]): Path(e["path"]) for e in entries}
    old = by_kind[("trace", True)]
    stamp = time.time() - 40 * DAY
    for p in [old, *old.iterdir()]:
        os.utime(p, (stamp, stamp))
    code, text = run_cli(
        capsys, "cache", "prune", "--older-than", "30d", "--yes", "--traces", str(cache)
    )
    assert code == 0 and "deleted 1 entries" in text
    assert not old.exists() and by_kind[("trace", False)].exists()
    # the newest entries that fit in the size are kept: the result (newest) alone fits in 1K;
    # the test trace and the conversion go
    code, text = run_cli(
        capsys, "cache", "prune", "--max-size", "1K", "--yes", "--traces", str(cache)
    )
    assert code == 0 and "deleted 2 entries" in text
    assert not by_kind[("trace", False)].exists() and by_kind[("result", False)].exists()
    assert not by_kind[("model", False)].exists()


def test_an_entry_that_changed_since_it_was_listed_is_kept(cache, tmp_path, capsys):
    from hwsim.pipeline.cachedir import prune

    listing = scan(cache)
    trace = next(e for e in listing.entries if e.kind is EntryKind.TRACE)
    (trace.path / "mine.txt").write_text("added by a user after the listing")
    done = prune(listing, listing.entries)
    assert trace not in done and (trace.path / "mine.txt").exists()
    assert len(done) == len(listing.entries) - 1


def _entry(name: str, nbytes: int, days_old: float, now: float) -> CacheEntry:
    return CacheEntry(EntryKind.RESULT, Path(name), nbytes, now - days_old * DAY, name, "")


def test_select_by_hand():
    now = 1e9
    entries = (  # oldest first, as scan orders them
        _entry("a", 100, 50, now),
        _entry("b", 300, 20, now),
        _entry("c", 200, 10, now),
        _entry("d", 400, 1, now),
    )
    listing = CacheListing(Path("."), entries, ())

    def names(rule: PruneRule) -> list[str]:
        return [str(e.path) for e in select(listing, rule, now)]

    assert names(PruneRule(all=True)) == ["a", "b", "c", "d"]
    assert names(PruneRule(older_than=15 * DAY)) == ["a", "b"]
    assert names(PruneRule(max_bytes=600)) == ["a", "b"]  # keep d (400) + c (200) = 600
    assert names(PruneRule(max_bytes=599)) == ["a", "b", "c"]  # the oldest go first
    assert names(PruneRule(max_bytes=399)) == ["a", "b", "c", "d"]
    assert names(PruneRule(older_than=15 * DAY, max_bytes=450)) == ["a", "b", "c"]
    assert names(PruneRule(max_bytes=10_000)) == []


def test_cache_options_are_checked(tmp_path, capsys):
    root = str(tmp_path / "t")
    code, text = run_cli(capsys, "cache", "list", "--all", "--traces", root)
    assert code == 2 and "--all: options of hwsim cache prune" in text
    code, text = run_cli(capsys, "cache", "prune", "--traces", root)
    assert code == 2 and "--all, --older-than or --max-size" in text
    code, text = run_cli(capsys, "cache", "prune", "--all", "--max-size", "1G", "--traces", root)
    assert code == 2 and "--all deletes every entry" in text
    code, text = run_cli(capsys, "cache", "list", "--traces", root)
    assert code == 0 and "0 entries" in text
    assert not (tmp_path / "t").exists()


def test_age_and_size_units():
    assert age("30d") == 30 * DAY and age("12h") == 43_200 and age("45m") == 2700
    assert age("90s") == 90 and age("2w") == 14 * DAY and age("1.5H") == 5400
    assert size("500M") == 500 * 2**20 and size("2G") == 2 * 2**30 and size("1234") == 1234
    assert size("1k") == 1024
    for bad in ("", "x", "-1d", "3y", "nanM", "1e999G"):
        with pytest.raises(Exception, match="is not"):
            (age if bad.endswith(("d", "y")) else size)(bad)


def test_a_trace_owns_the_data_files_its_meta_records(cache):
    """A trace's data files are those whose checksum its meta.json records (NAME_sha256), as
    `per_image.npy` of a cycle-timed run; any other file makes the folder someone else's."""
    from hwsim.pipeline.cachedir import trace_entry

    folder = next(e.path for e in scan(cache).entries if e.kind is EntryKind.TRACE)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "per_image.npy").write_bytes(b"\0" * 100)
    meta["per_image_sha256"] = "0" * 64
    (folder / "meta.json").write_text(json.dumps(meta))
    entry = trace_entry(folder)
    assert entry is not None and entry.bytes == file_bytes(folder)
    (folder / "extra.npy").write_bytes(b"\0")
    assert trace_entry(folder) is None
    assert folder in scan(cache).foreign


def test_a_damaged_stored_result_is_an_entry_and_pruned(tmp_path, capsys):
    root = tmp_path / "traces"
    store = ResultStore(root)
    whole, damaged = content_key(cell=1), content_key(cell=2)
    store.put(whole, {"accuracy": 0.5})
    store.put(damaged, {"accuracy": 0.25})
    store.path(damaged).write_text('{"key": "cut short')  # a write cut short
    (root / "results" / "notes.txt").write_text("mine")
    data = listed(capsys, root, tmp_path)
    paths = {str(store.path(whole)), str(store.path(damaged))}
    assert {e["path"] for e in data["entries"]} == paths
    assert data["left_alone"] == [str(root / "results" / "notes.txt")]
    assert [e["holds"] for e in data["entries"] if e["key"] == damaged][0].startswith("damaged")
    code, text = run_cli(capsys, "cache", "prune", "--all", "--yes", "--traces", str(root))
    assert code == 0 and "deleted 2 entries" in text, text
    assert everything(root) == {"results", "results/notes.txt"}


def test_dry_run_and_yes_together_are_refused(tmp_path, capsys):
    root = str(tmp_path / "t")
    code, text = run_cli(capsys, "cache", "prune", "--all", "--dry-run", "--yes", "--traces", root)
    assert code == 2 and "--dry-run" in text and "--yes" in text
