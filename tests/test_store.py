"""The content-keyed result store: keys independent of order, records checked when read."""

from __future__ import annotations

import hashlib
import json

import pytest

from hwsim.pipeline.store import RESULTS_FOLDER, ResultStore, content_key


def test_key_is_canonical_json_sha256():
    # independent reference: the hash of a hand-written canonical text
    text = '{"a":1,"b":[2,"x"]}'
    assert content_key(b=[2, "x"], a=1) == hashlib.sha256(text.encode()).hexdigest()
    assert content_key(a=1, b=[2, "x"]) != content_key(a=1, b=[2, "y"])


def test_round_trip_and_absent(tmp_path):
    store = ResultStore(tmp_path)
    key = content_key(x=1)
    assert store.get(key) is None
    assert store.put(key, {"energy_pj": 1.5, "ok": True})
    assert store.get(key) == {"energy_pj": 1.5, "ok": True}
    assert store.keys() == [key]
    assert store.path(key).parent.parent == tmp_path / RESULTS_FOLDER


@pytest.mark.parametrize("damage", ["edit", "garbage", "other_key"])
def test_damaged_record_is_named_and_ignored(tmp_path, damage):
    warnings = []
    store = ResultStore(tmp_path, warnings.append)
    key = content_key(x=2)
    store.put(key, {"v": 1})
    path = store.path(key)
    if damage == "garbage":
        path.write_text("{not json")
    else:
        record = json.loads(path.read_text())
        if damage == "edit":
            record["payload"]["v"] = 2
        else:
            record["key"] = content_key(x=3)
        path.write_text(json.dumps(record))
    assert store.get(key) is None
    assert len(warnings) == 1 and str(path) in warnings[0]


def test_no_root_keeps_nothing():
    store = ResultStore(None)
    assert not store.put("ab", {"v": 1}) and store.get("ab") is None and store.keys() == []


def test_unwritable_store_warns_once(tmp_path):
    # the store's folder is a file: nothing can be written under it (even as root)
    warnings = []
    (tmp_path / RESULTS_FOLDER).write_text("in the way")
    store = ResultStore(tmp_path, warnings.append)
    assert not store.put(content_key(a=1), {"v": 1})
    assert not store.put(content_key(a=2), {"v": 1})
    assert len(warnings) == 1


def test_record_of_other_code_is_stale(tmp_path, monkeypatch):
    from hwsim.pipeline import store as store_module

    warnings = []
    store = ResultStore(tmp_path, warnings.append)
    key = content_key(x=4)
    store.put(key, {"v": 1})
    assert store.get(key) == {"v": 1}
    monkeypatch.setattr(store_module, "code_version", lambda: "0" * 64)
    assert store.get(key) is None and warnings == []  # recomputed silently, not "damaged"
