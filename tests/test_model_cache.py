"""The model cache beside the traces (hwsim.pipeline.model_cache): a checkpoint's conversion and
its ANN's correctness are computed once per trace root, read back equal, recomputed when damaged
or when the code that computes them changes, and listed and pruned by `hwsim cache`."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.methods import Ties
from hwsim.model import convert as convert_module
from hwsim.model.convert import ConversionParams
from hwsim.pipeline import cache as cache_module
from hwsim.pipeline import model_cache
from hwsim.pipeline import session as session_module
from hwsim.pipeline.cachedir import EntryKind, PruneRule, prune, scan, select
from hwsim.pipeline.config import SimConfig
from hwsim.pipeline.session import Session


def opened(tiny_checkpoint) -> Session:
    return Session.open(tiny_checkpoint[1], None, ConversionParams())


def test_a_conversion_and_the_ann_are_computed_once_per_trace_root(
    tiny_checkpoint, tmp_path, monkeypatch
) -> None:
    root = tmp_path / "traces"
    sim = SimConfig(timesteps=4)
    first = opened(tiny_checkpoint)
    test = cache_module.trace(first, first.images("test", 6), sim, trace_root=root)
    want_snn = first.snn.fingerprint()
    want = first.reference_correct(test, Ties())
    names = sorted(p.name.split("-")[0] for p in (root / model_cache.FOLDER).iterdir())
    assert names == ["ann", "snn"]

    # a later session under the same root converts nothing and runs no ANN: both read back
    def refuse(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(convert_module, "convert", refuse)
    monkeypatch.setattr(session_module, "ann_correct", refuse)
    again = opened(tiny_checkpoint)
    assert cache_module.trace(again, again.images("test", 6), sim, trace_root=root).key == test.key
    assert again.snn.fingerprint() == want_snn
    got = again.reference_correct(test, Ties())
    assert got.keys() == want.keys()
    for h in want:
        np.testing.assert_array_equal(got[h], want[h])
    # without a trace root nothing is cached: the session converts
    bare = opened(tiny_checkpoint)
    with pytest.raises(AssertionError, match="computed again"):
        bare.snn  # noqa: B018


def test_a_damaged_entry_or_changed_code_is_computed_again(tiny_checkpoint, tmp_path, monkeypatch):
    root = tmp_path / "traces"
    s = opened(tiny_checkpoint)
    s.cache_under(root)
    want = s.snn.fingerprint()
    (entry,) = (root / model_cache.FOLDER).glob("snn-*.pt")
    entry.write_bytes(b"not a network")
    calls = []
    real = convert_module.convert

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(convert_module, "convert", counted)
    damaged = opened(tiny_checkpoint)
    damaged.cache_under(root)
    assert damaged.snn.fingerprint() == want and len(calls) == 1
    assert entry.read_bytes() != b"not a network"  # replaced
    # an edit of hwsim.model's code gives every entry a new key
    monkeypatch.setattr(model_cache, "code_digest", lambda: "edited")
    edited = opened(tiny_checkpoint)
    edited.cache_under(root)
    assert edited.snn.fingerprint() == want and len(calls) == 2
    assert len(list((root / model_cache.FOLDER).glob("snn-*.pt"))) == 2


def test_model_entries_are_listed_and_pruned(tiny_checkpoint, tmp_path) -> None:
    root = tmp_path / "traces"
    s = opened(tiny_checkpoint)
    s.cache_under(root)
    s.snn  # noqa: B018
    (root / model_cache.FOLDER / "notes.txt").write_text("mine")
    listing = scan(root)
    models = [e for e in listing.entries if e.kind is EntryKind.MODEL]
    assert [e.info for e in models] == ["converted network"]
    assert listing.foreign == (root / model_cache.FOLDER / "notes.txt",)
    done = prune(listing, select(listing, PruneRule(all=True)))
    assert [e.path for e in done] == [models[0].path] and not models[0].path.exists()
    assert (root / model_cache.FOLDER / "notes.txt").read_text() == "mine"
