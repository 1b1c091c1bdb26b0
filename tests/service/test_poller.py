"""Polling: only the difference enters the engine; a failed poll keeps the last good rows,
says why, backs off, and recovers by itself.

The driver here reads a JSON file that the test rewrites (a real source, just a local one):
it exercises the framework without any network service.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from charter.datasources import registry
from charter.datasources.driver import Column, ConfigOption, Driver, DriverError, TableSpec
from charter.service.service import Service
from charter.store import Store


class FileDriver(Driver):
    driver = "jsonfile"
    description = "rows of one table read from a JSON file"
    config_options = (ConfigOption("path", "the JSON file", required=True),
                      ConfigOption("poll_time", "seconds between polls"))
    polls = 0

    def tables(self):
        return {"items": TableSpec("items", (Column("id"), Column("state")))}

    def poll(self):
        FileDriver.polls += 1
        try:
            data = json.loads(Path(self.config["path"]).read_text())
        except FileNotFoundError:
            raise DriverError(f"{self.config['path']} is missing", status=503) from None
        except json.JSONDecodeError as exc:
            raise DriverError(f"not JSON: {exc.msg}", status=502) from None
        return {"items": [tuple(r) for r in data]}


@pytest.fixture
def svc(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "drivers", lambda: {"jsonfile": FileDriver})
    s = Service(Store(f"sqlite:///{tmp_path / 'c.db'}", secret_key=Store.generate_key()))
    s.start()
    yield s
    s.close()


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_poll_diff_failure_backoff_and_recovery(svc, tmp_path):
    source = tmp_path / "items.json"
    source.write_text(json.dumps([["a", "ok"], ["b", "bad"]]))
    svc.policies.create("ops", rules=[{"rule": 'error(x) :- src:items(x, "bad")'}])
    live = svc.datasources.create({"name": "src", "driver": "jsonfile",
                                   "config": {"path": str(source), "poll_time": 0.1}})
    wait_for(lambda: svc.datasources.rows("src", "items") == [("a", "ok"), ("b", "bad")])
    assert [r for _, r, _ in svc.violations.current("ops")] == [("b",)]
    events = svc.events.listen(["src:items"])

    source.write_text(json.dumps([["a", "ok"], ["b", "ok"]]))
    wait_for(lambda: svc.violations.current("ops") == [])
    delta = events.queue.get(timeout=5)
    assert (delta.inserted, delta.deleted) == ([("b", "ok")], [("b", "bad")])  # only the diff

    source.write_text("{garbage")
    wait_for(lambda: live.status.consecutive_failures >= 2)
    status = svc.datasources.status("src")
    assert "not JSON" in status["last_error"] and status["rows"] == {"items": 2}
    assert svc.datasources.rows("src", "items") == [("a", "ok"), ("b", "ok")]  # last good
    assert status["next_poll_in_s"] > 0.1  # backing off

    source.write_text(json.dumps([["c", "bad"]]))
    wait_for(lambda: svc.datasources.rows("src", "items") == [("c", "bad")], timeout=20)
    assert svc.datasources.status("src")["last_error"] is None
    assert [r for _, r, _ in svc.violations.current("ops")] == [("c",)]


def test_request_refresh_reports_the_failure(svc, tmp_path):
    from charter.service.errors import ServiceError

    svc.datasources.create({"name": "src", "driver": "jsonfile",
                            "config": {"path": str(tmp_path / "none.json"), "poll_time": 3600}})
    with pytest.raises(ServiceError) as err:
        svc.datasources.refresh("src")
    assert err.value.status == 503 and "missing" in err.value.message
    assert svc.datasources.status("src")["consecutive_failures"] >= 1


def test_deleting_a_datasource_stops_its_poller(svc, tmp_path):
    source = tmp_path / "items.json"
    source.write_text("[]")
    svc.datasources.create({"name": "src", "driver": "jsonfile",
                            "config": {"path": str(source), "poll_time": 0.05}})
    wait_for(lambda: FileDriver.polls > 0)
    svc.datasources.delete("src")
    before = FileDriver.polls
    time.sleep(0.3)
    assert FileDriver.polls == before


class StrictFileDriver(FileDriver):
    """Refuses to start while its file is missing (like a driver that connects at start)."""

    driver = "strictfile"

    def check_config(self) -> None:
        super().check_config()
        if not Path(self.config["path"]).exists():
            raise DriverError(f"{self.config['path']} is missing", status=503)


def test_a_driver_that_cannot_start_after_a_restart_recovers(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "drivers", lambda: {"strictfile": StrictFileDriver})
    url = f"sqlite:///{tmp_path / 'c.db'}"
    key = Store.generate_key()
    source = tmp_path / "items.json"
    source.write_text(json.dumps([["a", "bad"]]))
    first = Service(Store(url, secret_key=key))
    first.start()
    first.datasources.create({"name": "src", "driver": "strictfile",
                              "config": {"path": str(source), "poll_time": 0.1}})
    first.close()

    source.unlink()  # the service is down when Charter restarts
    again = Service(Store(url, secret_key=key))
    again.start()
    try:
        status = again.datasources.status("src")
        assert "is missing" in status["last_error"]
        source.write_text(json.dumps([["b", "ok"]]))
        wait_for(lambda: "items" in again.datasources.tables("src")
                 and again.datasources.rows("src", "items") == [("b", "ok")], timeout=20)
        assert again.datasources.status("src")["last_error"] is None
    finally:
        again.close()
