"""The enforcement API: a policy's mode (roles: editor for dry-run, admin for enforce), the
audit log and the webhook outbox; and ``charter audit`` reading them over real HTTP."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from charter.api.app import create_app
from charter.api.auth import TokenAuthenticator
from charter.cli.main import app as cli
from charter.service.config import StaticToken
from tests.api import conftest as apiconf
from tests.realservices.charter_server import free_port

service = apiconf.service
settings = apiconf.settings
client = apiconf.client

TOKENS = {"viewer": "v-token", "editor": "e-token", "admin": "a-token"}


@pytest.fixture
def by_role(service, settings) -> Iterator[dict[str, TestClient]]:
    """One client per role, over the same app with static tokens."""
    authenticator = TokenAuthenticator(tuple(
        StaticToken(f"{role}-1", role, hashlib.sha256(token.encode()).digest())  # type: ignore[arg-type]
        for role, token in TOKENS.items()))
    app = create_app(service, settings, authenticator)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield {role: _Authed(c, token) for role, token in TOKENS.items()}


class _Authed:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client, self.token = client, token

    def __getattr__(self, method: str):
        call = getattr(self.client, method)
        return lambda *a, **kw: call(*a, headers={"X-Auth-Token": self.token}, **kw)


def mode(c, policy: str = "ops"):
    return c.get(f"/v1/policies/{policy}/enforcement")


def put(c, value, policy: str = "ops"):
    return c.put(f"/v1/policies/{policy}/enforcement", json=value)


def test_the_mode_starts_dry_run_and_is_stored(client, service):
    assert client.post("/v1/policies", json={"name": "ops"}).status_code == 201
    body = mode(client).json()
    assert body == {"policy": "ops", "mode": "dry-run", "max_actions_per_batch": 10,
                    "max_actions_per_minute": 60, "pending_actions": 0}
    r = put(client, {"mode": "enforce"})
    assert r.status_code == 200 and r.json()["mode"] == "enforce"
    assert [p.enforcement for p in service.store.list_policies() if p.name == "ops"] == [
        "enforce"]
    assert mode(client).json()["mode"] == "enforce"
    (entry,) = client.get("/v1/audit", params={"policy": "ops"}).json()["results"]
    assert (entry["actor"], entry["action"], entry["result"], entry["detail"]) == (
        "anonymous", "enforcement.mode", "mode-changed", "dry-run -> enforce")


def test_roles_editor_for_dry_run_admin_for_enforce(by_role):
    assert by_role["editor"].post("/v1/policies", json={"name": "ops"}).status_code == 201
    assert mode(by_role["viewer"]).status_code == 200
    assert put(by_role["viewer"], {"mode": "dry-run"}).status_code == 403
    denied = put(by_role["editor"], {"mode": "enforce"})
    assert denied.status_code == 403 and "needs admin" in denied.json()["error"]["message"]
    assert put(by_role["admin"], {"mode": "enforce"}).json()["mode"] == "enforce"
    assert put(by_role["editor"], {"mode": "dry-run"}).json()["mode"] == "dry-run"
    results = by_role["viewer"].get("/v1/audit").json()["results"]
    assert [(e["actor"], e["detail"]) for e in results] == [
        ("editor-1", "enforce -> dry-run"), ("admin-1", "dry-run -> enforce")]


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"mode": "yolo"}, 400, "one of dry-run, enforce"),
    ({}, 400, "one of dry-run, enforce"),
    ({"mode": "enforce", "x": 1}, 400, "unknown fields ['x']"),
    ([1], 400, "must be a JSON object"),
])
def test_bad_requests(client, body, status, words):
    client.post("/v1/policies", json={"name": "ops"})
    r = put(client, body)
    assert r.status_code == status and words in r.json()["error"]["message"], r.text


def test_unknown_policy(client):
    r = put(client, {"mode": "dry-run"}, policy="nope")
    assert (r.status_code, r.json()["error"]["error_code"]) == (404, 1020)
    assert mode(client, "nope").status_code == 404


def test_audit_of_dry_run_decisions_and_its_filters(client):
    client.post("/v1/data-sources", json={"name": "mon", "driver": "push"})
    for name in ("ops", "other"):
        r = client.post("/v1/policies", json={"name": name, "rules": [
            {"rule": "execute[mon:alarms.ack(x)] :- mon:alarms(x)"}]})
        assert r.status_code == 201, r.text
    client.put("/v1/data-sources/mon/tables/alarms/rows", json=[["a1"], ["a2"]])
    results = client.get("/v1/audit", params={"policy": "ops"}).json()["results"]
    assert [(e["row"], e["result"], e["mode"]) for e in results] == [
        (["a2"], "dry-run", "dry-run"), (["a1"], "dry-run", "dry-run")]
    assert results[0]["arguments"] == {"positional": ["a2"]}
    assert results[0]["action"] == "mon:alarms.ack"
    assert results[0]["rule"] == "execute[mon:alarms.ack(x)] :- mon:alarms(x)"
    assert len(client.get("/v1/audit").json()["results"]) == 4
    assert len(client.get("/v1/audit", params={"limit": 1}).json()["results"]) == 1
    assert client.get("/v1/audit", params={"limit": 5000}).status_code == 400


def test_the_outbox_is_listed(client):
    assert client.get("/v1/notifications").json() == {"results": []}


@pytest.fixture
def live_url(service, settings) -> Iterator[str]:
    """The app served by uvicorn on a free port of 127.0.0.1, in a thread."""
    server = uvicorn.Server(uvicorn.Config(create_app(service, settings), host="127.0.0.1",
                                           port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(10)


def test_charter_audit_reads_the_log_over_http(service, live_url):
    service.datasources.create({"name": "mon", "driver": "push"})
    service.policies.create("ops", rules=[{"rule": "execute[mon:alarms.ack(x)] :- mon:alarms(x)"}])
    service.policies.create("other")
    service.policies.set_enforcement("other", "enforce", "someone")
    service.datasources.replace_rows("mon", "alarms", [["a1"]])

    runner = CliRunner()
    done = runner.invoke(cli, ["audit", "--url", live_url, "--policy", "ops", "-f", "json"])
    assert done.exit_code == 0, done.output
    (entry,) = json.loads(done.output)
    assert (entry["action"], entry["row"], entry["result"]) == ("mon:alarms.ack", ["a1"],
                                                                "dry-run")
    done = runner.invoke(cli, ["audit", "--url", live_url])
    assert done.exit_code == 0, done.output
    assert "mon:alarms.ack" in done.output and "enforcement.mode" in done.output
    assert "dry-run -> enforce" in done.output
    done = runner.invoke(cli, ["audit", "--url", live_url, "--policy", "nobody"])
    assert done.exit_code == 0 and "no audit entries for policy nobody" in done.output


def test_charter_audit_says_when_the_api_cannot_be_reached():
    done = CliRunner().invoke(cli, ["audit", "--url", f"http://127.0.0.1:{free_port()}"])
    assert done.exit_code == 1
    assert "charter audit:" in done.output
