"""Charter's own endpoints: violations with first-seen times, health, metrics, and the
server-sent-events stream (over a real uvicorn server on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from charter.api.app import create_app

SCHEMA = {"tables": {"servers": ["id", "status"]}}
RULE = 'error(vm) :- inv:servers(vm, "ERROR")'


def push(client, rows):
    r = client.put("/v1/data-sources/inv/tables/servers/rows", json=rows)
    assert r.status_code == 200, r.text


@pytest.fixture
def watched(client):
    assert client.post("/v1/data-sources", json={"name": "inv", "driver": "push",
                                                 "config": SCHEMA}).status_code == 201
    assert client.post("/v1/policies", json={"name": "ops", "rules": [{"rule": RULE}]}
                       ).status_code == 201
    return client


def test_violations_list_first_seen_and_history(watched):
    push(watched, [["vm1", "ERROR"], ["vm2", "ACTIVE"]])
    current = watched.get("/v1/policies/ops/violations").json()["results"]
    assert [(v["table"], v["row"], v["resolved_at"]) for v in current] == [
        ("error", ["vm1"], None)]
    first_seen = current[0]["first_seen"]
    push(watched, [["vm1", "ERROR"], ["vm2", "ERROR"]])
    current = watched.get("/v1/policies/ops/violations").json()["results"]
    assert {tuple(v["row"]): v["first_seen"] for v in current}[("vm1",)] == first_seen
    push(watched, [["vm1", "ACTIVE"], ["vm2", "ERROR"]])
    history = watched.get("/v1/policies/ops/violations?include_resolved=true").json()["results"]
    resolved = {tuple(v["row"]): v["resolved_at"] for v in history}
    assert resolved[("vm1",)] is not None and resolved[("vm2",)] is None


def test_healthz_and_metrics(watched):
    push(watched, [["vm1", "ERROR"]])
    health = watched.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    text = watched.get("/metrics").text
    assert 'charter_violations{policy="ops"} 1.0' in text
    assert 'charter_http_requests_total{method="PUT",' \
           'route="/v1/data-sources/{ds}/tables/{table}/rows",status="200"} 1.0' in text


def test_healthz_says_when_the_store_is_down(watched, service, monkeypatch, caplog):
    def down():
        raise RuntimeError("connection to db.internal refused for user charter")

    monkeypatch.setattr(service.store, "ping", down)
    r = watched.get("/healthz")
    # open to anyone: the status, not the hosts and users the store's error names
    assert r.status_code == 503 and r.json()["status"] == "degraded"
    assert "unavailable" in r.json()["store"] and "db.internal" not in r.text
    assert "connection to db.internal refused" in caplog.text


def test_healthz_shows_health_only(watched):
    push(watched, [["vm1", "ERROR"]])
    assert watched.get("/healthz").json() == {"status": "ok", "store": "ok"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(service, settings):
    port = free_port()
    config = uvicorn.Config(create_app(service, settings), host="127.0.0.1", port=port,
                            log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


def test_event_stream_sends_each_delta_once(server):
    with httpx.Client(base_url=server, timeout=10) as http:
        http.post("/v1/data-sources", json={"name": "inv", "driver": "push", "config": SCHEMA})
        http.post("/v1/policies", json={"name": "ops", "rules": [{"rule": RULE}]})
        events: list[dict] = []
        ready = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", f"{server}/v1/events?table=ops:error", timeout=10) as r:
                kind = None
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                        if kind == "ready":
                            ready.set()
                    elif line.startswith("data:") and kind == "delta":
                        events.append(json.loads(line.split(":", 1)[1]))
                        if len(events) == 2:
                            return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        assert ready.wait(10)
        http.put("/v1/data-sources/inv/tables/servers/rows", json=[["vm1", "ERROR"]])
        # a simulation that would clear it must not be streamed
        http.post("/v1/policies/ops?action=simulate",
                  json={"query": "error(x)", "sequence": 'inv:servers-("vm1", "ERROR")'})
        http.put("/v1/data-sources/inv/tables/servers/rows", json=[["vm1", "ACTIVE"]])
        t.join(10)
    assert [(e["table"], e["inserted"], e["deleted"]) for e in events] == [
        ("ops:error", [["vm1"]], []),
        ("ops:error", [], [["vm1"]]),
    ]
