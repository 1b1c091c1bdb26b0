"""Relations: a columnar base under a Python overlay behave as one set of rows."""

from __future__ import annotations

import numpy as np
import pytest

from charter.engine import relation as relation_module
from charter.engine.columnar import ColumnStore
from charter.engine.relation import Relation


def store() -> ColumnStore:
    return ColumnStore([np.array([1, 2, 2, 3]), np.array(["a", "b", "c", "a"], dtype=object)])


@pytest.mark.parametrize("hash_limit", [0, 1_000_000], ids=["columnar", "hashed"])
def test_base_and_overlay_read_as_one(monkeypatch, hash_limit):
    monkeypatch.setattr(relation_module, "HASH_LIMIT", hash_limit)
    rel = Relation.from_store("p:t", store())
    assert (2, "b") in rel  # the very first access must see base rows
    assert rel.count((3, "a")) == 1 and rel.count((9, "z")) == 0
    rel.discard((2, "b"))
    rel.add((2, "d"))
    rel.set_count((1, "a"), 3)
    assert sorted(rel.lookup((0,), 2)) == [(2, "c"), (2, "d")]
    assert rel.has((1,), "a") and not rel.has((1,), "b")
    assert rel.count((1, "a")) == 3
    assert sorted(rel) == [(1, "a"), (2, "c"), (2, "d"), (3, "a")]
    assert len(rel) == 4


def test_lookups_of_another_kind_match_nothing():
    rel = Relation.from_store("p:t", store())
    monkey = relation_module.HASH_LIMIT
    relation_module.HASH_LIMIT = 0
    try:
        assert rel.lookup((0,), "1") == [] and rel.lookup((1,), 1) == []
        assert rel.lookup((0,), 1.0) == [(1, "a")]  # 1 == 1.0, as Python compares
    finally:
        relation_module.HASH_LIMIT = monkey
