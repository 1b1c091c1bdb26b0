"""Pushed tables under SIGKILL: a writer changing a table while its background thread folds
the log into new bases, killed at some point; every change that returned is there, the one
interrupted is there whole or not at all, and the counters agree with what is stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import select, text

from charter.store import Store
from charter.store import tables as t
from charter.store.blocks import decode_block
from tests.store.factories import datasource

BASE = 20_000
PER_WRITE = 5
KEPT = 3  # a write deletes the rows of the write KEPT before it

WRITER = textwrap.dedent(
    f"""
    import sys
    from charter.store import Store
    from charter.store import push

    push.FRACTION, push.MIN_LOG_ROWS, push.MAX_LOG_ENTRIES = 0.0005, 0, 4  # compact often
    url, key, ds_id = sys.argv[1:]
    store = Store(url, secret_key=key.encode())
    print("ready", flush=True)
    i = 0
    while True:
        inserted = [(i, j, "x" * 40) for j in range({PER_WRITE})]
        deleted = [(i - {KEPT}, j, "x" * 40) for j in range({PER_WRITE})] if i >= {KEPT} else []
        store.change_tables(ds_id, {{"t": (inserted, deleted)}})
        print(i, flush=True)  # only after the call returned
        i += 1
    """
)


def expected(writes: int) -> set[tuple]:
    """The table after the first ``writes`` writes."""
    rows = {(-1, j, "base") for j in range(BASE)}
    rows |= {
        (i, j, "x" * 40) for i in range(max(0, writes - KEPT), writes) for j in range(PER_WRITE)
    }
    return rows


@pytest.mark.parametrize("kill_after", [30, 150])
def test_sigkill_during_writes_and_compactions_loses_no_returned_change(
    db_url: str, secret_key: bytes, kill_after: int
):
    ds = datasource("push", driver="push")
    with Store(db_url, secret_key=secret_key) as s:
        s.create_datasource(ds)
        s.replace_table(ds.id, "t", sorted(expected(0)))
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, db_url, secret_key.decode(), ds.id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", child.stderr.read() if child.stderr else ""
        lines = [child.stdout.readline() for _ in range(kill_after)]
        os.kill(child.pid, signal.SIGKILL)  # in a write, a compaction, or both
        child.wait(timeout=30)
        lines += child.stdout.readlines()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    returned = len([line for line in lines if line.endswith("\n")])
    assert returned >= kill_after

    with Store(db_url, secret_key=secret_key) as s:
        rows = s.load_tables(ds.id)["t"]
        with s._engine.connect() as conn:
            if db_url.startswith("sqlite"):
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            pt, pc, pl = t.push_tables, t.push_chunks, t.push_log
            base_rows, log_rows, log_entries, version = conn.execute(
                select(pt.c.base_rows, pt.c.log_rows, pt.c.log_entries, pt.c.version)
            ).one()
            chunks = conn.scalars(select(pc.c.data)).all()
            entries = conn.execute(select(pl.c.inserted, pl.c.deleted)).all()
    assert version > 1  # the background thread compacted while the writes went on
    assert len(rows) == len(set(rows))
    assert set(rows) in (expected(returned), expected(returned + 1))
    assert base_rows == sum(len(decode_block(c)) for c in chunks)
    assert log_entries == len(entries)
    assert log_rows == sum(len(decode_block(i)) + len(decode_block(d)) for i, d in entries)
