"""A pushed table's base and log (store/push.py): a write writes what changed, a large change
or a compaction writes a new base, and every load equals the rows written, however they were
folded."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import event, func, select

from charter.store import Store, TableChange
from charter.store import push as push_module
from charter.store import tables as t
from charter.store.blocks import decode_block
from tests.store.factories import datasource


@pytest.fixture
def ds_id(store: Store) -> str:
    ds = datasource("push", driver="push")
    store.create_datasource(ds)
    return ds.id


def counts(store: Store) -> dict[str, int]:
    """Rows of each table behind the pushed tables, and the counters of the table ``t``."""
    with store._engine.connect() as conn:
        out = {
            name: conn.scalar(select(func.count()).select_from(table))
            for name, table in (("chunks", t.push_chunks), ("log", t.push_log))
        }
        pt = t.push_tables
        row = conn.execute(
            select(pt.c.base_rows, pt.c.log_rows, pt.c.log_entries).where(pt.c.name == "t")
        ).first()
    return out | (dict(row._mapping) if row else {})


class Written:
    """The statements a store runs that write, and the bytes of the values they carry."""

    def __init__(self, store: Store) -> None:
        self.engine = store._engine
        self.statements: list[str] = []
        self.bytes = 0

    def _seen(self, _conn, _cursor, statement, parameters, _context, executemany) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "DELETE", "UPDATE")):
            words = statement.split()
            self.statements.append(" ".join(words[:2] if words[0] == "UPDATE" else words[:3:2]))
            for params in parameters if executemany else [parameters]:
                values = params.values() if isinstance(params, dict) else params
                self.bytes += sum(len(v) for v in values if isinstance(v, bytes | str))

    def __enter__(self) -> Written:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def table(n: int, start: int = 0) -> list[tuple]:
    return [(i, f"vm-{i}", i % 7, i % 2 == 0) for i in range(start, start + n)]


def test_a_small_change_writes_a_log_entry_of_its_rows(store: Store, ds_id: str):
    rows = table(20_000)
    store.change_tables(ds_id, {"t": TableChange(rows, [], rows)})
    assert counts(store) == {
        "chunks": 1,
        "log": 0,
        "base_rows": 20_000,
        "log_rows": 0,
        "log_entries": 0,
    }
    with Written(store) as written:
        store.change_tables(ds_id, {"t": TableChange(table(2, 50_000), rows[:3])})
    assert sorted(written.statements) == ["INSERT push_log", "UPDATE push_tables"]
    assert written.bytes < 200  # five rows, not the 20,000
    assert counts(store)["log_rows"] == 5
    assert store.load_tables(ds_id)["t"] == rows[3:] + table(2, 50_000)


def test_a_change_of_half_the_table_with_its_rows_writes_a_new_base(store: Store, ds_id: str):
    rows = table(1000)
    store.replace_table(ds_id, "t", rows)
    store.change_tables(ds_id, {"t": (table(10, 5000), [])})
    after = rows[:400] + table(600, 2000)
    store.change_tables(ds_id, {"t": TableChange(table(600, 2000), rows[400:], after)})
    assert counts(store) == {
        "chunks": 1,
        "log": 0,
        "base_rows": 1000,
        "log_rows": 0,
        "log_entries": 0,
    }
    assert store.load_tables(ds_id)["t"] == after


def test_the_first_rows_of_a_table_are_its_base(store: Store, ds_id: str):
    store.change_tables(ds_id, {"t": (table(100), [])})  # a PATCH: no whole table given
    assert counts(store)["chunks"] == 1 and counts(store)["log"] == 0
    assert store.load_tables(ds_id)["t"] == table(100)


def test_a_base_is_cut_into_chunks_in_order(store: Store, ds_id: str, monkeypatch):
    monkeypatch.setattr(push_module, "CHUNK_ROWS", 64)
    rows = table(1000)
    store.replace_table(ds_id, "t", rows)
    assert counts(store)["chunks"] == 16  # 15 of 64 rows, one of 40
    store.change_tables(ds_id, {"t": (table(5, 1000), rows[10:20])})
    store.change_tables(ds_id, {"t": (table(200, 2000), rows[64:120])})
    store.compact_tables(ds_id)
    expected = rows[:10] + rows[20:64] + rows[120:] + table(5, 1000) + table(200, 2000)
    assert store.load_tables(ds_id)["t"] == expected
    with store._engine.connect() as conn:
        blocks = conn.scalars(select(t.push_chunks.c.data).order_by(t.push_chunks.c.part)).all()
    sizes = [len(decode_block(b)) for b in blocks]
    # a block that lost a few rows stays, one that lost many joins the next; the rows
    # inserted follow in blocks of CHUNK_ROWS
    assert sizes == [54, 64 - 56 + 64] + [64] * 12 + [40] + [64, 64, 64, 13]


def test_compaction_folds_the_log_into_an_equal_base(store: Store, ds_id: str, monkeypatch):
    monkeypatch.setattr(push_module, "MIN_LOG_ROWS", 10**9)  # none in the background
    rows = table(2000)
    store.replace_table(ds_id, "t", rows)
    current = dict.fromkeys(rows)
    rng = random.Random(7)
    for i in range(30):
        gone = rng.sample(list(current), 20)
        new = table(10, 10_000 + 10 * i) + rng.sample(gone, 5)  # some deleted, then back
        store.change_tables(ds_id, {"t": (new, gone)})
        for r in gone:
            del current[r]
        current.update(dict.fromkeys(new))
    before = store.load_tables(ds_id)["t"]
    assert sorted(before) == sorted(current)
    assert counts(store)["log_entries"] == 30
    assert store.compact_tables(ds_id) == 1
    assert counts(store) == {
        "chunks": 1,
        "log": 0,
        "base_rows": len(current),
        "log_rows": 0,
        "log_entries": 0,
    }
    assert store.load_tables(ds_id)["t"] == before  # same rows, same order
    assert store.compact_tables(ds_id) == 0  # nothing left to fold


def test_a_write_that_makes_the_log_due_has_it_compacted_in_the_background(
    store: Store, ds_id: str, monkeypatch
):
    monkeypatch.setattr(push_module, "MIN_LOG_ROWS", 0)
    rows = table(100)
    store.replace_table(ds_id, "t", rows)
    store.change_tables(ds_id, {"t": (table(20, 1000), [])})  # 20 of 100: not due
    store._compactor.wait()
    assert counts(store)["log_entries"] == 1
    store.change_tables(ds_id, {"t": (table(20, 2000), rows[:20])})  # 60: due
    store._compactor.wait()
    assert counts(store) == {
        "chunks": 1,
        "log": 0,
        "base_rows": 120,
        "log_rows": 0,
        "log_entries": 0,
    }
    assert store.load_tables(ds_id)["t"] == rows[20:] + table(20, 1000) + table(20, 2000)


def test_many_small_entries_are_compacted(store: Store, ds_id: str, monkeypatch):
    monkeypatch.setattr(push_module, "MAX_LOG_ENTRIES", 5)
    store.replace_table(ds_id, "t", table(1000))
    for i in range(6):
        store.change_tables(ds_id, {"t": ([(-i, "x", 0, False)], [])})
    store._compactor.wait()
    assert counts(store)["log_entries"] == 0
    assert len(store.load_tables(ds_id)["t"]) == 1006


def test_a_compaction_keeps_the_entries_written_while_it_ran(store: Store, ds_id: str, monkeypatch):
    """A write between the compaction's read and its write stays in the log, replayed over
    the new base; a new base written meanwhile makes the compaction give up."""
    rows = table(100)
    store.replace_table(ds_id, "t", rows)
    store.change_tables(ds_id, {"t": (table(3, 500), rows[:3])})
    compacted = push_module._compacted
    during: list = []

    def write_during(base, entries, stop):
        out = compacted(base, entries, stop)
        if during:
            during.pop()()
        return out

    monkeypatch.setattr(push_module, "_compacted", write_during)
    during.append(lambda: store.change_tables(ds_id, {"t": (table(2, 900), rows[3:5])}))
    assert store.compact_table(1)
    assert counts(store) == {
        "chunks": 1,
        "log": 1,
        "base_rows": 100,
        "log_rows": 4,
        "log_entries": 1,
    }
    expected = rows[5:] + table(3, 500) + table(2, 900)
    assert store.load_tables(ds_id)["t"] == expected

    during.append(lambda: store.replace_table(ds_id, "t", rows))
    assert not store.compact_table(1)
    assert counts(store) == {
        "chunks": 1,
        "log": 0,
        "base_rows": 100,
        "log_rows": 0,
        "log_entries": 0,
    }
    assert store.load_tables(ds_id)["t"] == rows


def test_a_compaction_that_fails_to_write_changes_nothing(store: Store, ds_id: str, monkeypatch):
    rows = table(100)
    store.replace_table(ds_id, "t", rows)
    store.change_tables(ds_id, {"t": (table(3, 500), rows[:3])})
    before = counts(store)

    def fail(*_args, **_kwargs):
        raise RuntimeError("killed between the delete of the old base and the new one")

    monkeypatch.setattr(push_module, "_insert_chunks", fail)
    with pytest.raises(RuntimeError):
        store.compact_table(1)
    assert counts(store) == before
    assert store.load_tables(ds_id)["t"] == rows[3:] + table(3, 500)


def test_the_log_of_rows_only_json_holds_is_replayed_and_compacted(store: Store, ds_id: str):
    """Rows MessagePack cannot hold (integers past 64 bits, nested values) take the JSON
    form, in a base, a log entry and a compacted base alike."""
    odd = [(2**70, ("a", 1)), (-(2**65), ()), ("\ud800", None)]
    store.replace_table(ds_id, "t", odd[:1] + [(1, 2)])
    store.change_tables(ds_id, {"t": (odd[1:], [(1, 2)])})
    assert store.load_tables(ds_id)["t"] == odd
    store.compact_tables(ds_id)
    assert store.load_tables(ds_id)["t"] == odd


def test_deleting_a_datasource_deletes_its_base_and_log(store: Store, ds_id: str):
    store.replace_table(ds_id, "t", table(10))
    store.change_tables(ds_id, {"t": (table(1, 99), [])})
    store.delete_datasource(ds_id)
    assert counts(store) == {"chunks": 0, "log": 0}


def test_the_background_thread_compacts_only_a_log_still_due(store: Store, ds_id: str, monkeypatch):
    """Writes made while a compaction runs find the log still due and ask again; by then
    the compaction has folded what they saw, and the few entries left stay a log."""
    monkeypatch.setattr(push_module, "MIN_LOG_ROWS", 0)
    rows = table(100)
    store.replace_table(ds_id, "t", rows)
    store.change_tables(ds_id, {"t": (table(10, 1000), [])})
    with store._engine.connect() as conn:
        seq = conn.scalar(select(t.push_tables.c.seq))
    assert not store.compact_table(seq, if_due=True)  # 10 rows of 100: not due
    assert counts(store)["log_entries"] == 1
    store.change_tables(ds_id, {"t": (table(60, 2000), [])})  # due: the thread folds both
    store._compactor.wait()
    store.change_tables(ds_id, {"t": (table(1, 3000), [])})
    assert not store.compact_table(seq, if_due=True)
    assert counts(store)["log_entries"] == 1
    assert store.compact_table(seq)  # asked for by hand: folded whatever its size
    assert counts(store)["log_entries"] == 0


def test_closing_the_store_abandons_a_compaction_between_blocks(
    store: Store, ds_id: str, monkeypatch
):
    monkeypatch.setattr(push_module, "CHUNK_ROWS", 10)
    store.replace_table(ds_id, "t", table(100))
    store.change_tables(ds_id, {"t": (table(5, 500), [])})
    with store._engine.connect() as conn:
        seq = conn.scalar(select(t.push_tables.c.seq))

    class ClosedWhileReplaying(push_module.LogEffect):
        def over(self, base):
            for i, rows in enumerate(super().over(base)):
                store._closed = i == 3  # what close() sets first, in the fourth block
                yield rows

    monkeypatch.setattr(push_module, "LogEffect", ClosedWhileReplaying)
    assert not store.compact_table(seq)
    store._closed = False
    assert counts(store)["log_entries"] == 1
    assert store.load_tables(ds_id)["t"] == table(100) + table(5, 500)
