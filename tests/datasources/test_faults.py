"""Faults of the services datasources read, through Charter's API with the poller running.

For each fault (the service stopped, too slow, answering 500s, answering garbage or JSON of
the wrong shape, refusing the credentials): the last good rows stay in the engine, the
datasource's status says why (naming the cause and the URL, never a secret) and counts the
failures, the poller backs off, and once the service is healthy again the tables update by
themselves, without a request-refresh. The same for a real Prometheus that stops and
restarts, and a PostgreSQL table locked past the driver's timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg
import pytest

from tests.api import conftest as api
from tests.realservices import http_service as realhttp
from tests.realservices import postgres as realpostgres
from tests.realservices.http_service import JsonService
from tests.realservices.postgres import fresh_database
from tests.realservices.prometheus import running_prometheus

# The fixtures (assigned, not imported: an import would trip ruff's F811).
client, service, settings = api.client, api.service, api.settings
json_service = realhttp.json_service
postgres_url = realpostgres.postgres_url

TOKEN = "tok-8c0ffee5d1"
HEADER_SECRET = "hdr-41b7e2a9"
POLL_S = 0.2
GOOD = {"data": {"items": [{"id": "h1", "state": "ACTIVE"}, {"id": "h2", "state": "ERROR"}]}}
NEW = {"data": {"items": [{"id": "h1", "state": "ERROR"}, {"id": "h3", "state": "ACTIVE"}]}}
RULE = 'error(h) :- inv:hosts(id=h, state="ERROR")'


def wait_for(check: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not reached in {timeout} s: {what}"
        time.sleep(0.05)


def status(client, ds: str) -> dict:
    return client.get(f"/v1/data-sources/{ds}/status").json()


def rows(client, ds: str, table: str) -> list[tuple]:
    answer = client.get(f"/v1/data-sources/{ds}/tables/{table}/rows")
    assert answer.status_code == 200, answer.text
    return sorted(tuple(r["data"]) for r in answer.json()["results"])


def violations(client, policy: str) -> list[list]:
    return [v["row"] for v in client.get(f"/v1/policies/{policy}/violations").json()["results"]]


def as_rows(document: dict) -> list[tuple]:
    return sorted((h["id"], h["state"]) for h in document["data"]["items"])


def watched_inventory(client, svc: JsonService, **config) -> None:
    """An http datasource ``inv`` polled every POLL_S, and a policy ``ops`` over it."""
    svc.token = TOKEN
    created = client.post("/v1/data-sources", json={"name": "inv", "driver": "http", "config": {
        "base_url": svc.url, "poll_time": POLL_S, "timeout_seconds": 0.5,
        "auth": {"type": "bearer", "token": TOKEN}, "headers": {"X-Secret": HEADER_SECRET},
        "tables": {"hosts": {"path": "/v1/hosts", "items": "data.items",
                             "columns": {"id": "id", "state": "state"}}}, **config}})
    assert created.status_code == 201, created.text
    assert client.post("/v1/policies", json={"name": "ops", "rules": [{"rule": RULE}]}
                       ).status_code == 201


def stopped(svc: JsonService) -> Callable[[], None]:
    svc.stop()
    return svc.start


def mode(name: str) -> Callable[[JsonService], Callable[[], None]]:
    def inject(svc: JsonService) -> Callable[[], None]:
        svc.set_mode(name, delay=3)
        return lambda: svc.set_mode("ok")
    return inject


def wrong_shape(svc: JsonService) -> Callable[[], None]:
    svc.serve("/v1/hosts", {"data": "down for maintenance"})
    return lambda: None  # healing serves NEW


FAULTS = {
    "stopped": (stopped, "cannot connect", 503),
    "slow": (mode("slow"), "no answer within timeout_seconds=0.5", 503),
    "http_500": (mode("error"), "answered HTTP 500 Internal Server Error", 502),
    "garbage": (mode("garbage"), "answered non-JSON (text/html", 502),
    "wrong_shape": (wrong_shape, "the answer has no list at items='data.items'", 502),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_http_fault_keeps_the_last_rows_says_why_and_recovers_by_itself(
        client, json_service, caplog, fault):
    caplog.set_level(logging.DEBUG)
    inject, cause, code = FAULTS[fault]
    json_service.serve("/v1/hosts", GOOD)
    watched_inventory(client, json_service)
    wait_for(lambda: rows(client, "inv", "hosts") == as_rows(GOOD), what="first poll")
    assert violations(client, "ops") == [["h2"]]

    heal = inject(json_service)
    wait_for(lambda: status(client, "inv")["consecutive_failures"] >= 2, what="failures")
    now = status(client, "inv")
    assert cause in now["last_error"] and f"{json_service.url}/v1/hosts" in now["last_error"]
    assert "table hosts" in now["last_error"]
    assert now["rows"] == {"hosts": 2} and now["initialized"]
    assert now["next_poll_in_s"] > POLL_S  # backing off
    assert rows(client, "inv", "hosts") == as_rows(GOOD)  # the last good rows stay
    assert violations(client, "ops") == [["h2"]]
    refreshed = client.post("/v1/data-sources/inv?action=request-refresh")
    assert refreshed.status_code == code and cause in refreshed.json()["error"]["message"]

    json_service.serve("/v1/hosts", NEW)
    heal()
    wait_for(lambda: rows(client, "inv", "hosts") == as_rows(NEW), what="recovery")
    healthy = status(client, "inv")
    assert healthy["last_error"] is None and healthy["consecutive_failures"] == 0
    assert violations(client, "ops") == [["h1"]]

    shown = [client.get("/v1/data-sources/inv").text, client.get("/v1/data-sources").text,
             str(now), refreshed.text, caplog.text]
    assert not [s for s in shown if TOKEN in s or HEADER_SECRET in s]
    assert "poll failed" in caplog.text  # the failures were logged, without the secrets


def test_refused_credentials_say_so_back_off_and_recover(client, json_service, caplog):
    caplog.set_level(logging.DEBUG)
    json_service.serve("/v1/hosts", GOOD)
    watched_inventory(client, json_service)
    wait_for(lambda: rows(client, "inv", "hosts") == as_rows(GOOD), what="first poll")

    json_service.token = "rotated-" + TOKEN  # the service no longer takes our token
    wait_for(lambda: status(client, "inv")["consecutive_failures"] >= 1, what="401")
    hits = json_service.hits("/v1/hosts")
    time.sleep(2.5)
    failed = status(client, "inv")
    assert "the credentials were refused (HTTP 401)" in failed["last_error"]
    assert json_service.url in failed["last_error"] and TOKEN not in failed["last_error"]
    # Without backoff ~12 polls would have been made in 2.5 s; doubling from 0.2 s: <= 4.
    assert json_service.hits("/v1/hosts") - hits <= 4
    # At least two failures: waited for, as a loaded machine may poll less than the backoff.
    wait_for(lambda: status(client, "inv")["consecutive_failures"] >= 2, what="a second 401")
    assert status(client, "inv")["rows"] == {"hosts": 2}  # the last good tables are kept

    json_service.token = TOKEN  # put right on the service's side
    wait_for(lambda: status(client, "inv")["consecutive_failures"] == 0, what="recovery")
    assert status(client, "inv")["last_error"] is None
    assert TOKEN not in caplog.text and HEADER_SECRET not in caplog.text


def test_a_datasource_whose_service_is_down_from_the_start(client, json_service):
    json_service.stop()
    watched_inventory(client, json_service)
    wait_for(lambda: status(client, "inv")["consecutive_failures"] >= 1, what="failure")
    down = status(client, "inv")
    assert not down["initialized"] and "cannot connect" in down["last_error"]
    assert rows(client, "inv", "hosts") == []
    json_service.start()
    json_service.serve("/v1/hosts", GOOD)
    wait_for(lambda: rows(client, "inv", "hosts") == as_rows(GOOD), what="recovery")
    assert status(client, "inv")["initialized"]


@pytest.mark.prometheus
def test_prometheus_stopped_then_restarted(client):
    with running_prometheus() as prom:
        created = client.post("/v1/data-sources", json={
            "name": "prom", "driver": "prometheus", "config": {
                "url": prom.url, "poll_time": POLL_S, "timeout_seconds": 1,
                "tables": {"targets": {"query": "up", "labels": ["job"]},
                           "clock": {"query": "time()"}}}})
        assert created.status_code == 201, created.text
        wait_for(lambda: rows(client, "prom", "targets") == [("node", 1.0),
                                                             ("prometheus", 1.0)])
        prom.server.stop()
        wait_for(lambda: status(client, "prom")["consecutive_failures"] >= 2, what="failures")
        down = status(client, "prom")
        assert "cannot connect" in down["last_error"] and prom.url in down["last_error"]
        assert down["rows"] == {"targets": 2, "clock": 1}
        last_clock = rows(client, "prom", "clock")

        prom.server.start()  # same port, same storage
        restarted = time.time()
        wait_for(lambda: status(client, "prom")["consecutive_failures"] == 0, what="recovery")
        wait_for(lambda: rows(client, "prom", "clock")[0][0] >= restarted - 1)
        assert rows(client, "prom", "clock") != last_clock
        assert status(client, "prom")["last_error"] is None


@pytest.mark.postgres
def test_postgres_table_locked_past_the_timeout(client, postgres_url):
    with fresh_database(postgres_url) as url:
        plain = url.replace("+psycopg", "")
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute("CREATE TABLE hosts (name text, state text)")
            conn.execute("INSERT INTO hosts VALUES ('h1', 'ACTIVE')")
        created = client.post("/v1/data-sources", json={"name": "cmdb", "driver": "sql", "config": {
            "url": url, "password": "pg-" + TOKEN, "poll_time": POLL_S,
            "timeout_seconds": 0.5,
            "tables": {"hosts": {"query": "SELECT name, state FROM hosts"}}}})
        assert created.status_code == 201, created.text
        wait_for(lambda: rows(client, "cmdb", "hosts") == [("h1", "ACTIVE")])

        locker = psycopg.connect(plain)
        try:
            locker.execute("LOCK TABLE hosts IN ACCESS EXCLUSIVE MODE")
            locker.execute("INSERT INTO hosts VALUES ('h2', 'ERROR')")
            wait_for(lambda: status(client, "cmdb")["consecutive_failures"] >= 2)
            slow = status(client, "cmdb")
            assert "ran longer than timeout_seconds=0.5" in slow["last_error"]
            assert "table hosts" in slow["last_error"] and ":***@" in slow["last_error"]
            assert TOKEN not in slow["last_error"]
            assert rows(client, "cmdb", "hosts") == [("h1", "ACTIVE")]
            locker.commit()  # the lock goes, and the new row is there to read
        finally:
            locker.close()
        wait_for(lambda: rows(client, "cmdb", "hosts") == [("h1", "ACTIVE"), ("h2", "ERROR")],
                 what="recovery")
        assert status(client, "cmdb")["last_error"] is None
        client.delete("/v1/data-sources/cmdb")  # its connections go before the database does
