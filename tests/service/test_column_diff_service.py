"""Pushes and polls find their difference in columns, outside the service's lock.

The difference of a pushed or polled table from what the engine holds is found against a
snapshot of the table (``Engine.stored_table``) while the lock is free, so readers and
other writers go on meanwhile; a table that changed in between has its difference found
again under the lock. These tests step into that window (``find_difference`` wrapped) and check
what others see there and what the service holds after.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from charter.datasources import registry
from charter.datasources.driver import Column, ConfigOption, Driver, TableSpec
from charter.datasources.push import PushDriver
from charter.service import datasources as service_datasources
from charter.service.errors import NotFound
from charter.service.service import Service
from charter.store import Store

ALARMS = [["a1", "h1", 1], ["a2", "h2", 3], ["a3", "h1", 5]]


class FileDriver(Driver):
    """Rows of one table read from a JSON file the test rewrites; polled on request."""

    driver = "jsonfile"
    description = "rows of one table read from a JSON file"
    config_options = (ConfigOption("path", "the JSON file", required=True),
                      ConfigOption("poll_time", "seconds between polls"))

    def tables(self):
        return {"items": TableSpec("items", (Column("id"), Column("state")))}

    def poll(self):
        return {"items": [tuple(r) for r in json.loads(Path(self.config["path"]).read_text())]}


@pytest.fixture
def svc(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "drivers", lambda: {"jsonfile": FileDriver, "push": PushDriver})
    s = Service(Store(f"sqlite:///{tmp_path / 'c.db'}", secret_key=Store.generate_key()))
    s.start()
    s.policies.create("ops", rules=[{"rule": "hot(a) :- mon:alarms(a, _, s), s > 2"}])
    s.datasources.create({"name": "mon", "driver": "push",
                          "config": {"tables": {"alarms": ["id", "host", "severity"]}}})
    yield s
    s.close()


def in_window(monkeypatch, step):
    """Run ``step()`` (once) where the service finds a difference outside its lock."""
    real = service_datasources.find_difference
    done = []

    def wrapped(*args, **kwargs):
        if not done:
            done.append(True)
            step()
        return real(*args, **kwargs)

    monkeypatch.setattr(service_datasources, "find_difference", wrapped)
    return done


def on_another_thread(fn):
    """``fn()``'s result on a thread of its own (joined: no timing involved)."""
    out = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join(30)
    assert out, "the other thread did not finish: it waited for the service's lock"
    return out[0]


def stored_rows(svc: Service, ref: str, table: str) -> set[tuple]:
    ds = svc.datasources.get(ref)
    return {tuple(r) for r in svc.store.load_tables(ds.record.id).get(table, [])}


def test_a_push_finds_its_difference_while_others_read(svc, monkeypatch):
    svc.datasources.replace_rows("mon", "alarms", ALARMS)
    seen = []
    in_window(monkeypatch, lambda: seen.append(
        on_another_thread(lambda: svc.datasources.rows("mon", "alarms"))))
    new = [["a1", "h1", 4], ["a2", "h2", 3], ["a4", "h3", 1]]
    svc.datasources.replace_rows("mon", "alarms", new)
    assert seen == [sorted(tuple(r) for r in ALARMS)]  # read the state before the push
    assert svc.engine.rows("mon:alarms") == {tuple(r) for r in new}
    assert stored_rows(svc, "mon", "alarms") == {tuple(r) for r in new}
    assert svc.engine.rows("ops:hot") == {("a1",), ("a2",)}


def test_a_table_pushed_to_meanwhile_has_its_difference_found_again(svc, monkeypatch):
    svc.datasources.replace_rows("mon", "alarms", ALARMS)
    other = [["b1", "h9", 9]]
    in_window(monkeypatch, lambda: on_another_thread(
        lambda: svc.datasources.replace_rows("mon", "alarms", other)))
    events = svc.events.listen(["mon:alarms"])
    new = [["a1", "h1", 4]]
    svc.datasources.replace_rows("mon", "alarms", new)  # its snapshot held ALARMS
    assert svc.engine.rows("mon:alarms") == {("a1", "h1", 4)}  # the last push wins, whole
    assert stored_rows(svc, "mon", "alarms") == {("a1", "h1", 4)}
    assert svc.engine.rows("ops:hot") == {("a1",)}
    first, second = events.queue.get(timeout=5), events.queue.get(timeout=5)
    assert set(first.inserted) == {("b1", "h9", 9)} and len(first.deleted) == 3
    assert (second.inserted, second.deleted) == ([("a1", "h1", 4)], [("b1", "h9", 9)])


def test_a_datasource_deleted_meanwhile_takes_no_rows(svc, monkeypatch):
    svc.datasources.replace_rows("mon", "alarms", ALARMS)
    in_window(monkeypatch, lambda: on_another_thread(lambda: svc.datasources.delete("mon")))
    with pytest.raises(NotFound, match="No such datasource"):
        svc.datasources.replace_rows("mon", "alarms", [["x", "y", 1]])
    assert not svc.engine.has_table("mon:alarms") or not svc.engine.count("mon:alarms")


def test_values_columns_cannot_hold_take_the_row_path_outside_the_lock_too(svc, monkeypatch):
    mixed = [["a1", None, 1], ["a2", "h2", 2.5], ["a3", "h3", True], [7, "h4", 3]]
    svc.datasources.replace_rows("mon", "alarms", mixed)
    assert svc.engine.rows("mon:alarms") == {tuple(r) for r in mixed}
    seen = []
    in_window(monkeypatch, lambda: seen.append(
        on_another_thread(lambda: len(svc.datasources.rows("mon", "alarms")))))
    svc.datasources.replace_rows("mon", "alarms", [*mixed[:2], ["a5", "h5", 5]])
    assert seen == [4]
    assert svc.engine.rows("mon:alarms") == {("a1", None, 1), ("a2", "h2", 2.5), ("a5", "h5", 5)}
    assert svc.engine.rows("ops:hot") == {("a2",), ("a5",)}
    assert stored_rows(svc, "mon", "alarms") == svc.engine.rows("mon:alarms")


def test_a_poll_loads_its_first_rows_then_applies_only_the_difference(
    svc, tmp_path
):
    source = tmp_path / "items.json"
    rows = [[f"i{k}", "ok"] for k in range(2000)]
    source.write_text(json.dumps(rows))
    svc.policies.create("chk", rules=[{"rule": 'bad(x) :- src:items(x, "bad")'}])
    live = svc.datasources.create({"name": "src", "driver": "jsonfile",
                                   "config": {"path": str(source), "poll_time": 86400}})
    svc.datasources.refresh("src")  # (the poll thread's first poll may have come first)
    assert svc.engine.count("src:items") == 2000 and live.status.initialized
    events = svc.events.listen(["src:items"])
    rows[5][1] = "bad"
    source.write_text(json.dumps(rows))
    svc.datasources.refresh("src")
    delta = events.queue.get(timeout=5)
    assert (delta.inserted, delta.deleted) == ([("i5", "bad")], [("i5", "ok")])
    assert svc.engine.rows("chk:bad") == {("i5",)}
    assert svc.datasources.status("src")["rows"] == {"items": 2000}


class ColumnFileDriver(FileDriver):
    """FileDriver read as columns too (as the http driver is): the poller takes those."""

    driver = "jsoncolumns"

    def poll_columns(self):
        rows = self.poll()["items"]
        return {"items": [[r[j] for r in rows] for j in range(2)]}


@pytest.mark.parametrize("seed", range(6))
def test_a_poll_read_as_columns_equals_the_same_poll_read_as_rows(svc, tmp_path, monkeypatch,
                                                                  seed):
    import random

    monkeypatch.setattr(registry, "drivers", lambda: {
        "jsonfile": FileDriver, "jsoncolumns": ColumnFileDriver, "push": PushDriver})
    rng = random.Random(seed)
    values = ["ok", "bad", None, 1, 2.5, True] if seed % 2 else ["ok", "bad"]
    sources = {name: tmp_path / f"{name}.json" for name in ("rows", "cols")}
    for name, driver in (("rows", "jsonfile"), ("cols", "jsoncolumns")):
        sources[name].write_text("[]")
        svc.datasources.create({"name": name, "driver": driver,
                                "config": {"path": str(sources[name]), "poll_time": 86400}})
    for _ in range(3):
        table = [[f"i{rng.randrange(300)}", rng.choice(values)] for _ in range(rng.randrange(400))]
        for name in sources:
            sources[name].write_text(json.dumps(table))
            svc.datasources.refresh(name)
        assert svc.engine.rows("cols:items") == svc.engine.rows("rows:items")
        assert svc.engine.rows("rows:items") == {tuple(r) for r in table}
