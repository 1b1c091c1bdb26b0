"""A long rule is parsed and checked outside the service's lock: reads answer meanwhile.

The rule check is held at a known point (the test pauses ``check_changes`` until it has
read), so the test does not race the compile: without the fix the read would wait for the
lock the compile holds, and the test fails on its timeout instead of hanging.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import charter.service.policies as policies_module
from charter.engine.rule_check import check_changes
from charter.lang.limits import overridden
from charter.service.service import Service
from charter.store import Store

WAIT_S = 60  # only a stall or a deadlock reaches it


@pytest.fixture
def service(tmp_path):
    svc = Service(Store(f"sqlite:///{tmp_path / 'charter.db'}", secret_key=Store.generate_key()))
    svc.start()
    svc.policies.create("p", rules=[{"rule": "seen(x) :- q(x)"}, {"rule": "q(1)"}])
    yield svc
    svc.close()


def chain(n: int) -> str:
    """A rule of 2n literals deriving long(1) from p's q(1)."""
    return "long(x0) :- " + ", ".join(f"p:q(x{i}), x{i + 1} = x{i} * 1" for i in range(n))


def paused_check(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Make the rule check stop (outside or inside the lock, wherever it runs) until
    released; returns (checking, release)."""
    checking, release = threading.Event(), threading.Event()

    def check(view: Any, changes: Any) -> Any:
        checking.set()
        assert release.wait(WAIT_S), "the test never released the check"
        return check_changes(view, changes)

    monkeypatch.setattr(policies_module, "check_changes", check)
    return checking, release


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list]:
    out: list = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # reported by the test
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("how", ["add rule", "create policy"])
def test_reads_answer_while_a_long_rule_is_checked(service: Service, monkeypatch, how):
    text = chain(2_000)
    checking, release = paused_check(monkeypatch)
    if how == "add rule":
        writer, written = in_thread(lambda: service.policies.add_rule("p", text))
    else:
        writer, written = in_thread(lambda: service.policies.create(
            "long", rules=[{"rule": text}]))
    assert checking.wait(WAIT_S), f"the check never started: {written}"

    reader, rows = in_thread(lambda: service.policies.rows("p", "seen"))
    reader.join(WAIT_S)
    assert not reader.is_alive(), "a read waited for the rule check: it runs under the lock"
    assert rows == [[(1,)]]
    assert writer.is_alive()  # the write is still being checked

    release.set()
    writer.join(WAIT_S)
    assert not writer.is_alive() and not isinstance(written[0], BaseException), written
    policy = "p" if how == "add rule" else "long"
    assert service.policies.rows(policy, "long") == [(1,)]


def test_a_change_between_the_check_and_the_apply_is_checked_again(service, monkeypatch):
    """While the rule is checked outside the lock, another request adds a rule that makes
    the pair unstratifiable: the second check (inside the lock) refuses it."""
    checking, release = paused_check(monkeypatch)
    writer, written = in_thread(lambda: service.policies.add_rule("p", "a(x) :- q(x), not b(x)"))
    assert checking.wait(WAIT_S)
    monkeypatch.setattr(policies_module, "check_changes", check_changes)  # others unpaused
    service.policies.add_rule("p", "b(x) :- q(x), a(x)")
    release.set()
    writer.join(WAIT_S)
    (error,) = written
    assert getattr(error, "status", None) == 400 and "unstratifiable" in str(error.message)
    assert sorted(r.rule for r in service.policies.rules("p")) == [
        "b(x) :- q(x), a(x)", "q(1)", "seen(x) :- q(x)"]


def test_a_real_long_rule_compiles_while_reads_go_on(service: Service):
    """No pause: a rule of 20,000 literals is taken while another thread keeps reading;
    every read answers, and the rule is live after."""
    stop = threading.Event()
    reads: list[int] = []

    def keep_reading() -> None:
        while not stop.is_set():
            reads.append(len(service.policies.rows("p", "seen")))

    reader = threading.Thread(target=keep_reading, daemon=True)
    reader.start()
    with overridden(max_rule_literals=40_000):
        service.policies.add_rule("p", chain(10_000))
    stop.set()
    reader.join(WAIT_S)
    assert reads and set(reads) == {1}
    assert service.policies.rows("p", "long") == [(1,)]
