"""Large batches set at a time (``batch.py``) give what the row-by-row path gives.

The differential test covers random programs over ints; here values of every kind (ints,
floats, strings, and columns mixing them, which the set-at-a-time path leaves to Python)
go through a fixed policy, and the relations' own bookkeeping (dead marks, tails, hash
indexes brought up to date after a batch) is checked directly.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.engine import Delta, Engine, relation
from charter.engine.columnar import ColumnStore
from charter.engine.relation import Relation

POLICY = """
j(x, z) :- e0(x, y), e1(y, z)
n(x) :- e0(x, y), not e1(y, _)
less(x, y) :- e0(x, y), x < y
ne(x, y) :- e0(x, y), e1(x, y2), y != y2
s(x) :- e1(x, "a")
f(x) :- e1(x, 2.5)
w(x, v) :- e0(x, y), v = y
"""
TABLES = ["p:" + t for t in ("j", "n", "less", "ne", "s", "f", "w", "e0", "e1")]

ints = st.integers(0, 3)
strings = st.sampled_from(["a", "b", "c"])
floats = st.sampled_from([0.5, 2.5])
values = {"ints": ints, "strings": strings, "floats": floats, "mixed": ints | strings | floats}


def engine(batch: int | None) -> Engine:
    eng = Engine(columnar_threshold=1 if batch is not None else 50_000, batch_threshold=batch)
    eng.load_policy("p", POLICY)
    return eng


@st.composite
def scenario(draw):
    kinds = {t: draw(st.sampled_from(sorted(values))) for t in ("e0", "e1")}
    row = {t: st.tuples(values[kinds[t]], values[kinds[t]]) for t in kinds}
    change = st.sampled_from(["e0", "e1"]).flatmap(
        lambda t: st.tuples(st.just(t), row[t], st.sampled_from([1, 1, -1]))
    )
    return draw(st.lists(st.lists(change, min_size=1, max_size=12), min_size=1, max_size=6))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), st.booleans())
def test_values_of_every_kind(batches, hashed):
    saved = relation.HASH_LIMIT
    relation.HASH_LIMIT = saved if hashed else 0
    try:
        fast, slow = engine(0), engine(None)
        for batch in batches:
            changes = [Delta(f"p:{t}", r, s) for t, r, s in batch]
            got, expected = fast.apply(changes), slow.apply(changes)
            assert {t: (d.inserted, d.deleted) for t, d in got.items()} == {
                t: (d.inserted, d.deleted) for t, d in expected.items()
            }
            for table in TABLES:
                assert fast.rows(table) == slow.rows(table), table
    finally:
        relation.HASH_LIMIT = saved


def test_a_batch_keeps_a_relation_columnar_and_its_hash_indexes_current(monkeypatch):
    monkeypatch.setattr(relation, "TAIL_FRACTION", 1.0)
    rel = Relation.from_store("p:t", ColumnStore.from_arrays([np.arange(10), np.arange(10) % 3]))
    assert sorted(rel.lookup((1,), 0)) == [(0, 0), (3, 0), (6, 0), (9, 0)]  # hashed now
    rows = [(3, 0), (10, 0), (11, 1), (5, 2)]
    columns = [np.array([r[0] for r in rows]), np.array([r[1] for r in rows])]
    inserted, deleted = rel.apply_batch(rows, columns, np.array([-1, 1, 1, -1]))
    assert inserted.tolist() == [1, 2] and deleted.tolist() == [0, 3]
    assert rel.tail is not None and rel.tail.n == 2 and not rel.rows  # still in columns
    assert sorted(rel.lookup((1,), 0)) == [(0, 0), (6, 0), (9, 0), (10, 0)]
    assert (3, 0) not in rel and (11, 1) in rel and len(rel) == 10
    rel.discard((11, 1))  # a single change after the batch, on a tail row
    assert not rel.has((0,), 11) and rel.count((10, 0)) == 1
    base_mask, tail_mask = rel.dead_masks()
    assert base_mask.nonzero()[0].tolist() == [3, 5] and tail_mask.tolist() == [False, True]
    # a deleted row inserted again comes back in place
    inserted, _ = rel.apply_batch([(3, 0)], [np.array([3]), np.array([0])], np.array([1]))
    assert inserted.tolist() == [0] and rel.dead == {(5, 2), (11, 1)}
    assert sorted(rel) == sorted({(i, i % 3) for i in range(10)} - {(5, 2)} | {(10, 0)})


def test_counts_changed_set_at_a_time():
    rel = Relation.from_store("p:d", ColumnStore([np.array([1, 2, 3])], np.array([2, 1, 1])))
    rows = [(1,), (2,), (4,)]
    inserted, deleted = rel.change_counts(rows, [np.array([1, 2, 4])], np.array([-1, -1, 3]))
    assert inserted.tolist() == [2] and deleted.tolist() == [1]
    assert dict(rel.items()) == {(1,): 1, (3,): 1, (4,): 3}
