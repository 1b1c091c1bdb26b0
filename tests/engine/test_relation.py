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


def test_find_by_packed_row_keys_agrees_with_a_set():
    """Int rows are found by one search of their packed keys; appended rows outside the
    keys' ranges, selections and other kinds of values still give the set's answers."""
    rng = np.random.default_rng(7)
    columns = [
        rng.integers(-50, 50, 400),
        rng.integers(0, 5, 400),
        rng.integers(10**6, 10**6 + 9, 400),
    ]
    base = ColumnStore.from_arrays(columns)
    assert base is not None and base._row_keys
    rows = list(base)
    assert len(set(rows)) == len(rows) == base.n
    near = ColumnStore([rng.integers(-60, 60, 50) for _ in range(3)])
    far = ColumnStore([np.array([10**12]), np.array([0]), np.array([10**6])])
    fits = base.append([np.array([120, -50]), np.array([7, 0]), np.array([10**6 + 12, 10**6])])
    assert fits._row_keys  # merged into the keys, not rebuilt
    grown = base.append(near.columns).append(far.columns)
    keep = rng.random(grown.n) < 0.5
    for store in (base, fits, grown, grown.select(keep)):
        present = {row: i for i, row in enumerate(store)}
        randoms = [tuple(int(v) for v in rng.integers(-70, 70, 3)) for _ in range(300)]
        probes = list(present) + randoms
        for row in probes:
            i = store.find(row)
            assert (i >= 0) == (row in present)
            assert i < 0 or store.row(i) == row
        many = store.find_rows([np.array(c, dtype=np.int64) for c in zip(*probes, strict=True)])
        assert many.tolist() == [store.find(row) for row in probes]
        if present:
            row = next(iter(present))
            assert store.find(tuple(float(v) for v in row)) >= 0  # 2.0 == 2
            assert store.find(row[:2] + ("x",)) == -1 and store.find(row[:2]) == -1


@pytest.mark.parametrize("hash_limit", [0, 1_000_000], ids=["columnar", "hashed"])
def test_counted_keys_equal_the_rows_looked_up(monkeypatch, hash_limit):
    """``count_key`` (and a batch's ``old_count``) count what ``lookup`` lists, through
    deaths, moves to the overlay, a tail and its merge."""
    from charter.engine.batch_delta import BatchDelta

    monkeypatch.setattr(relation_module, "HASH_LIMIT", hash_limit)
    rng = np.random.default_rng(5)
    rel = Relation.from_store("p:t", ColumnStore([rng.integers(0, 9, 60), np.arange(60)]))
    rel = Relation.from_store("p:t", rel.base.unique())  # type: ignore[union-attr]

    def check(delta: BatchDelta | None = None) -> None:
        for columns in ((0,), (1,), (0, 1)):
            for row in [*rel, (3, 999), (99, 1)]:
                key = row[0] if columns == (0,) else row[1] if columns == (1,) else row
                assert rel.count_key(columns, key) == len(rel.lookup(columns, key))
                if delta is not None:
                    old = delta.old_count(rel, columns, key)
                    assert old == len(delta.old_bucket(rel, columns, key))

    check()
    rel.count_key((0,), 1)  # dead counts now kept from here on
    delta = BatchDelta()
    for i in range(0, 60, 7):
        row = next(r for r in rel if r[1] == i)
        rel.discard(row)
        delta.minus.add(row)
    rel.set_count(next(iter(rel)), 4)
    for row in [(1, 100), (2, 101), (1, 102)]:
        rel.add(row)
        delta.plus.add(row)
    check(delta)
    rows = [(5, 200 + i) for i in range(40)] + [r for r in list(rel)[:5]]
    columns = [np.array([r[0] for r in rows]), np.array([r[1] for r in rows])]
    signs = np.array([1] * 40 + [-1] * 5)
    assert rel.apply_batch(rows, columns, signs) is not None  # a tail, then deaths in it
    check()


def test_membership_of_many_rows_equals_one_by_one():
    rng = np.random.default_rng(9)
    rel = Relation.from_store(
        "p:t", ColumnStore([rng.integers(0, 50, 400), rng.integers(0, 50, 400)]).unique()
    )
    stored = list(rel)
    for row in stored[:30]:
        rel.discard(row)  # dead in the base
    rel.set_count(stored[40], 3)  # dead in the base, alive in the overlay
    rel.add((7, 1000))
    rows = [*stored[:60], (7, 1000), (7, 1001), (10**30, 1), (2.0, 3), ("a", 1), (True, 1)]
    rows += [(1, 2, 3), (-(2**63), 2**63 - 1)]
    assert rel.contains_many(rows) == [row in rel for row in rows]
    assert rel.contains_many(stored[40:50]) == [True] * 10  # a few: one by one


@pytest.mark.parametrize("hash_limit", [0, 1_000_000], ids=["columnar", "hashed"])
def test_discarding_many_rows_equals_discarding_each(monkeypatch, hash_limit):
    monkeypatch.setattr(relation_module, "HASH_LIMIT", hash_limit)
    rng = np.random.default_rng(12)
    store = ColumnStore([rng.integers(0, 30, 300), rng.integers(0, 30, 300)]).unique()
    one, many = Relation.from_store("p:t", store), Relation.from_store("p:t", store)
    for rel in (one, many):
        rel.count_key((0,), 3)  # dead rows counted by key from here on
        rel.dead_masks()  # and marked in masks
        rel.add((99, 1))
        rel.add((99, 2))
    gone = [row for row in list(one) if row[0] != 99][:40] + [(99, 1)]
    for row in gone:
        one.discard(row)
    many.discard_many(gone)
    assert set(one) == set(many) and len(one) == len(many)
    for key in range(31):
        assert one.count_key((0,), key) == many.count_key((0,), key)
        assert sorted(one.lookup((1,), key)) == sorted(many.lookup((1,), key))
    assert [m.tolist() for m in one.dead_masks()] == [m.tolist() for m in many.dead_masks()]
