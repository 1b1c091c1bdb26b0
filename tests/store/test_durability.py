"""Durability and concurrency: what a returned write promises, under SIGKILL and threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
from sqlalchemy import text

from charter.store import Store
from tests.store.factories import at, policy, rule

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from charter.store import RuleRecord, Store

    url, key, policy_id = sys.argv[1:]
    store = Store(url, secret_key=key.encode())
    now = datetime.now(UTC)

    def rec(rule_id):
        return RuleRecord(rule_id, policy_id, "n-" + rule_id, "p(x) :- q(x, %r)" % rule_id,
                          "c-" + rule_id, now)

    print("ready", flush=True)
    i = 0
    while True:
        if i % 4 == 3:  # every fourth call is a batch of three
            ids = ["b%d-%d" % (i, j) for j in range(3)]
            store.add_rules([rec(r) for r in ids])
        else:
            ids = ["s%d" % i]
            store.add_rule(rec(ids[0]))
        print(" ".join(ids), flush=True)  # only after the call returned
        i += 1
    """
)


def ids_of_call(i: int) -> set[str]:
    return {f"b{i}-{j}" for j in range(3)} if i % 4 == 3 else {f"s{i}"}


@pytest.mark.parametrize("kill_after", [25, 90])
def test_sigkill_loses_no_returned_write_and_leaves_no_half_write(
    db_url: str, secret_key: bytes, kill_after: int
):
    p = policy()
    with Store(db_url, secret_key=secret_key) as s:
        s.create_policy(p)
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, db_url, secret_key.decode(), p.id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", child.stderr.read() if child.stderr else ""
        lines = [child.stdout.readline() for _ in range(kill_after)]
        os.kill(child.pid, signal.SIGKILL)  # in the middle of the next call
        child.wait(timeout=30)
        lines += child.stdout.readlines()  # printed after a return, before the kill
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    returned = {rule_id for line in lines if line.endswith("\n") for rule_id in line.split()}
    calls = len([line for line in lines if line.endswith("\n")])
    assert calls >= kill_after

    with Store(db_url, secret_key=secret_key) as s:
        stored = s.list_rules(p.id)
        if db_url.startswith("sqlite"):
            with s._engine.connect() as conn:
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    stored_ids = {r.id for r in stored}
    assert returned <= stored_ids  # every write that returned is there
    in_flight = ids_of_call(calls)  # the call the kill interrupted: all of it or none
    assert stored_ids - returned in (set(), in_flight)
    for r in stored:  # every record whole
        assert (r.name, r.rule, r.comment) == (f"n-{r.id}", f"p(x) :- q(x, {r.id!r})", f"c-{r.id}")
    in_call_order = [i for n in range(calls + 1) for i in sorted(ids_of_call(n)) if i in stored_ids]
    assert [r.id for r in stored] == in_call_order


def test_sqlite_connections_are_wal_full_sync_with_foreign_keys(tmp_path, secret_key):
    with Store(f"sqlite:///{tmp_path / 'c.db'}", secret_key=secret_key) as s:
        conns = [s._engine.connect() for _ in range(3)]  # pooled connections, each set up
        try:
            for conn in conns:
                assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
                assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
                assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        finally:
            for conn in conns:
                conn.close()
    assert (tmp_path / "c.db").exists()


def hammer(store: Store, threads: int = 8, per_thread: int = 15) -> list[BaseException]:
    """Writers and readers at once on one store; the exceptions any of them raised."""
    p = policy("shared")
    store.create_policy(p)
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads * 2)

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                store.add_rule(rule(p.id, f"p(x) :- q(x, {n}, {i})", name=f"r{n}-{i}"))
                store.record_violations("shared", "t", [(n, i)], [(n, i - 1)], at(i))
        except BaseException as e:
            errors.append(e)

    def read() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                store.list_rules(p.id)
                store.violations("shared")
        except BaseException as e:
            errors.append(e)

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    workers += [threading.Thread(target=read) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return errors


def test_threads_share_one_store(store: Store):
    assert hammer(store) == []
    assert len(store.list_rules()) == 8 * 15
    assert sorted(v.row for v in store.violations("shared")) == [(n, 14) for n in range(8)]


def test_threads_share_an_in_memory_store(secret_key: bytes):
    with Store("sqlite://", secret_key=secret_key) as s:
        assert hammer(s, threads=4, per_thread=20) == []
        assert len(s.list_rules()) == 80
