"""The engine never holds what the store does not: a store write that fails, whatever its
exception, leaves the service exactly as it was, and so does the restart after it.

Every write path of the API is driven against a real SQLite store whose write method for
that path is made to raise, in turn, each kind of failure a store can have: the database
gone (503), a conflict (409), the store's own error, and errors that are not the store's
at all (a bug, an encoding error). After the failed request, what the API shows, what the
store holds, the violation history, the webhook outbox and the action outbox are all as
before; so is a new service started over the same database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.service.config import NotificationSettings, WebhookSettings, load_settings
from charter.service.service import Service
from charter.store import Store
from charter.store.errors import Conflict, StoreError, StoreUnavailable

KEY = Store.generate_key()

FAILURES: dict[str, tuple[Callable[[], BaseException], int]] = {
    "unavailable": (lambda: StoreUnavailable("the database server went away"), 503),
    "conflict": (lambda: Conflict("a row with that id exists"), 409),
    "store-error": (lambda: StoreError("disk I/O error"), 500),
    "bug": (lambda: RuntimeError("unexpected state in the store"), 500),
    "encoding": (lambda: UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
                 500),
}

POLICY = {"name": "cap", "rules": [{"rule": 'error(id) :- inv:servers(id, "bad")'},
                                   {"rule": "warning(id) :- inv:servers(id, h), not inv:hosts(h)"},
                                   {"rule": "execute[inv:noop(id)] :- error(id)"}]}


def make_service(path: Path) -> Service:
    webhook = WebhookSettings(url="http://127.0.0.1:9/never", name="hook")  # never delivered
    notifications = NotificationSettings(webhooks=[webhook], backoff_seconds=3600)
    service = Service(Store(f"sqlite:///{path / 'charter.db'}", secret_key=KEY),
                      notifications=notifications)
    service.start()
    return service


@pytest.fixture
def app(tmp_path, monkeypatch) -> Iterator[Callable[[], TestClient]]:
    monkeypatch.delenv("CHARTER_CONFIG", raising=False)
    monkeypatch.setenv("CHARTER_DATA_DIR", str(tmp_path))
    settings = load_settings()
    opened: list[tuple[Service, TestClient]] = []

    def open_client() -> TestClient:
        service = make_service(tmp_path)
        client = TestClient(create_app(service, settings), raise_server_exceptions=False)
        client.__enter__()
        opened.append((service, client))
        return client

    yield open_client
    for service, client in opened:
        client.__exit__(None, None, None)
        service.close()


def ok(response, *statuses: int) -> Any:
    assert response.status_code in (statuses or (200, 201)), response.text
    return response.json()


def setup_state(client: TestClient) -> None:
    """A push datasource with rows, a policy with violations and an execute rule, a
    library policy: something for every write to change."""
    ok(client.post("/v1/data-sources", json={
        "name": "inv", "driver": "push",
        "config": {"tables": {"servers": ["id", "host"], "hosts": ["host"]}}}))
    ok(client.put("/v1/data-sources/inv/tables/hosts/rows", json=[["h1"]]))
    ok(client.put("/v1/data-sources/inv/tables/servers/rows",
                  json=[["vm1", "h1"], ["vm2", "h9"], ["bad", "h1"]]))
    ok(client.post("/v1/policies", json=POLICY))
    ok(client.post("/v1/librarypolicies", json={"name": "lib1", "rules": [{"rule": "p(1)"}]}))


def fingerprint(client: TestClient) -> dict[str, Any]:
    """Everything a client can read back, plus the store's outboxes and history."""
    service: Service = client.app.state.service
    out: dict[str, Any] = {}
    policies = ok(client.get("/v1/policies"))["results"]
    out["policies"] = sorted((p["name"], p["kind"], p["description"]) for p in policies)
    for p in policies:
        name = p["name"]
        out[f"{name}/rules"] = sorted((r["rule"], r["name"], r["comment"])
                                      for r in ok(client.get(f"/v1/policies/{name}/rules"))["results"])
        for t in ok(client.get(f"/v1/policies/{name}/tables"))["results"]:
            rows = ok(client.get(f"/v1/policies/{name}/tables/{t['id']}/rows"))["results"]
            out[f"{name}/{t['id']}"] = sorted(repr(r["data"]) for r in rows)
        violations = ok(client.get(f"/v1/policies/{name}/violations?include_resolved=true"))
        out[f"{name}/history"] = sorted((v["table"], repr(v["row"]), v["resolved_at"] is None)
                                        for v in violations["results"])
        out[f"{name}/mode"] = ok(client.get(f"/v1/policies/{name}/enforcement"))["mode"]
    for d in ok(client.get("/v1/data-sources"))["results"]:
        out[f"ds/{d['name']}"] = (d["driver"], repr(d["config"]))
        for t in ok(client.get(f"/v1/data-sources/{d['name']}/tables"))["results"]:
            rows = ok(client.get(f"/v1/data-sources/{d['name']}/tables/{t['id']}/rows"))
            out[f"ds/{d['name']}/{t['id']}"] = sorted(repr(r["data"]) for r in rows["results"])
    out["library"] = sorted((lib["name"], repr(lib["rules"]))
                            for lib in ok(client.get("/v1/librarypolicies"))["results"])
    out["notifications"] = sorted((n["event"], n["policy"], repr(n["payload"].get("row")))
                                  for n in ok(client.get("/v1/notifications"))["results"])
    out["actions"] = sorted((a.policy, a.action, repr(a.row), a.status)
                            for a in service.store.actions(limit=1000))
    out["audit"] = len(ok(client.get("/v1/audit"))["results"])
    return out


# (label, the store method that fails, the request: client -> response)
WRITES: list[tuple[str, str, Callable[[TestClient], Any]]] = [
    ("create policy", "create_policy", lambda c: c.post("/v1/policies", json={
        "name": "new", "rules": [{"rule": 'error(id) :- inv:servers(id, "h1")'}]})),
    ("policy from library", "create_policy",
     lambda c: c.post("/v1/policies?library_policy=lib1")),
    ("add rule", "add_rule", lambda c: c.post("/v1/policies/cap/rules", json={
        "rule": 'error(id) :- inv:servers(id, "h1")', "comment": "more"})),
    ("delete rule", "delete_rule", lambda c: c.delete(
        f"/v1/policies/cap/rules/{c.get('/v1/policies/cap/rules').json()['results'][0]['id']}")),
    ("delete policy", "delete_policy", lambda c: c.delete("/v1/policies/cap")),
    ("enforce", "set_enforcement", lambda c: c.put("/v1/policies/cap/enforcement",
                                                   json={"mode": "enforce"})),
    ("create datasource", "create_datasource", lambda c: c.post("/v1/data-sources", json={
        "name": "mon", "driver": "push", "config": {"tables": {"alarms": ["id"]}}})),
    ("delete datasource", "delete_datasource", lambda c: c.delete("/v1/data-sources/inv")),
    ("push rows", "change_tables", lambda c: c.put(
        "/v1/data-sources/inv/tables/servers/rows",
        json=[["vm1", "h7"], ["bad", "h1"], ["bad2", "h1"]])),
    ("patch rows", "change_tables", lambda c: c.patch(
        "/v1/data-sources/inv/tables/servers/rows",
        json={"insert": [["bad2", "h1"], ["vm3", "h8"]], "delete": [["bad", "h1"], ["vm9", "h1"]]})),
    ("create library policy", "put_library_policy", lambda c: c.post(
        "/v1/librarypolicies", json={"name": "lib2", "rules": [{"rule": "q(1)"}]})),
    ("replace library policy", "put_library_policy", lambda c: c.put(
        "/v1/librarypolicies/lib1", json={"name": "lib1", "rules": [{"rule": "p(2)"}]})),
    ("delete library policy", "delete_library_policy",
     lambda c: c.delete("/v1/librarypolicies/lib1")),
]


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("label, method, request_", WRITES, ids=[w[0] for w in WRITES])
def test_a_failed_store_write_changes_nothing(app, monkeypatch, label, method, request_, failure):
    client = app()
    setup_state(client)
    before = fingerprint(client)
    service: Service = client.app.state.service
    make_error, status = FAILURES[failure]
    original = getattr(service.store, method)
    calls = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        raise make_error()

    monkeypatch.setattr(service.store, method, failing)
    response = request_(client)
    monkeypatch.setattr(service.store, method, original)
    assert calls, f"{label}: the request never reached store.{method}"
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["error_code"] in (status, 1008) and error["message"]
    assert "Traceback" not in response.text
    assert fingerprint(client) == before, f"{label}: the failed write changed something"

    restarted = app()  # a second service over the same database
    assert fingerprint(restarted) == before, f"{label}: the restart shows a change"


def test_the_same_writes_succeed_without_a_failure(app):
    """The writes above do change something when the store works (so the tests above
    would see a change that was not undone)."""
    for label, _method, request_ in WRITES:
        client = app()
        service: Service = client.app.state.service
        for name in [p.record.name for p in service.policies.live.values()]:
            if name not in ("classification", "action"):
                client.delete(f"/v1/policies/{name}")
        for d in list(service.datasources.live.values()):
            client.delete(f"/v1/data-sources/{d.name}")
        for lib in list(service.library.items.values()):
            client.delete(f"/v1/librarypolicies/{lib.id}")
        setup_state(client)
        before = fingerprint(client)
        ok(request_(client))
        assert fingerprint(client) != before, label
