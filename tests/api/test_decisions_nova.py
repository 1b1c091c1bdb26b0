"""POST /v1/decisions/nova/{policy}: the hosts a Nova request spec may land on, in process
(TestClient): the answer, the audit and the metrics, fail modes, bad bodies, permissions."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.api.auth import TokenAuthenticator
from charter.service.config import StaticToken

PATH = "/v1/decisions/nova/{policy}"
RULES = [
    'deny_host(h, "a member of its anti-affinity group runs here") :- '
    'scheduler:spec("instance_group.policy", "anti-affinity"), '
    'scheduler:spec("instance_group.uuid", g), scheduler:host(h), '
    "cap:member_host(g, h)",
    'deny_host(h, "not enough free memory") :- scheduler:host(h), cap:free(h, free), '
    'scheduler:spec("flavor.memory_mb", need), free < need',
]
HOSTS = ["c1", "c2", "c3"]


def ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def api(client):
    ok(client.post("/v1/data-sources", json={"name": "cap", "driver": "push", "config": {
        "tables": {"free": ["host", "memory_mb"], "member_host": ["group", "host"]}}}), 201)
    ok(client.put("/v1/data-sources/cap/tables/free/rows",
                  json=[["c1", 4096], ["c2", 1024], ["c3", 8192]]))
    ok(client.put("/v1/data-sources/cap/tables/member_host/rows", json=[["g1", "c3"]]))
    ok(client.post("/v1/policies", json={"name": "nova_hosts",
                                         "rules": [{"rule": r} for r in RULES]}), 201)
    return client


def spec(memory: int = 2048, group: str | None = "g1") -> dict:
    out = {"project_id": "p1", "user_id": "u1", "instance_uuid": "i-1",
           "flavor": {"name": "m1.small", "vcpus": 1, "memory_mb": memory, "root_gb": 5}}
    if group:
        out["instance_group"] = {"uuid": group, "policy": "anti-affinity", "members": ["x"],
                                 "hosts": []}
    return out


def ask(api, body, policy: str = "nova_hosts", **params) -> dict:
    return ok(api.post(PATH.format(policy=policy), json=body, params=params))


def test_the_hosts_that_pass_and_why_the_others_do_not(api):
    got = ask(api, {"spec": spec(), "hosts": HOSTS})
    assert got == {"hosts": ["c1"], "error": None, "refused": {
        "c2": ["not enough free memory"],
        "c3": ["a member of its anti-affinity group runs here"]}}
    assert ask(api, {"spec": spec(512, group=None), "hosts": HOSTS})["hosts"] == HOSTS


def test_the_answer_follows_the_live_tables(api):
    ok(api.put("/v1/data-sources/cap/tables/member_host/rows", json=[["g1", "c1"]]))
    assert ask(api, {"spec": spec(), "hosts": HOSTS})["hosts"] == ["c3"]


def test_audited_and_counted(api):
    ask(api, {"spec": spec(), "hosts": HOSTS})
    ask(api, {"spec": spec(65536), "hosts": ["c1", "c2"]})
    audit = ok(api.get("/v1/audit", params={"policy": "nova_hosts"}))["results"]
    assert [(a["action"], a["result"], a["rule"]) for a in reversed(audit)] == [
        ("decision:nova", "allowed", "schedule p1 i-1"),
        ("decision:nova", "denied", "schedule p1 i-1")]
    first = audit[-1]
    assert first["row"] == ["c2: not enough free memory",
                            "c3: a member of its anti-affinity group runs here"]
    assert first["arguments"]["passed"] == ["c1"]
    assert first["arguments"]["hosts"] == HOSTS
    assert first["arguments"]["spec"]["flavor"]["memory_mb"] == 2048
    metrics = api.get("/metrics").text
    assert 'charter_decisions_total{answer="allow",kind="nova"} 1.0' in metrics
    assert 'charter_decisions_total{answer="deny",kind="nova"} 1.0' in metrics


def test_fail_closed_by_default_open_by_query_or_setting(api, service, settings):
    body = {"spec": spec(), "hosts": HOSTS}
    got = ask(api, body, policy="nope")
    assert got["hosts"] == [] and got["error"] == "No such policy: nope"
    assert set(got["refused"]) == set(HOSTS)
    assert ask(api, body, policy="nope", fail="open")["hosts"] == HOSTS
    opened = settings.model_validate(settings.model_dump() | {"decisions": {"fail": "open"}})
    with TestClient(create_app(service, opened), raise_server_exceptions=False) as other:
        assert ask(other, body, policy="nope")["hosts"] == HOSTS
        assert ask(other, body)["hosts"] == ["c1"]  # a decided refusal stays
        entry = ok(other.get("/v1/audit", params={"policy": "nope"}))["results"][0]
        assert entry["result"] == "allowed (policy error)"
    metrics = api.get("/metrics").text  # this app's two (the other app counts its own)
    assert 'charter_decision_errors_total{kind="nova"} 2.0' in metrics


@pytest.mark.parametrize(("body", "words"), [
    ([1, 2], ["must be a JSON object", '"hosts"']),
    ({"spec": {}}, ["field 'hosts'", "Field required"]),
    ({"spec": [], "hosts": []}, ["field 'spec'"]),
    ({"spec": {}, "hosts": "c1"}, ["field 'hosts'"]),
    ({"spec": {}, "hosts": [1]}, ["field 'hosts.0'"]),
])
def test_bad_bodies_name_the_field(api, body, words):
    r = api.post(PATH.format(policy="nova_hosts"), json=body)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    for word in words:
        assert word in message, message


def token_app(service, settings, anonymous: bool) -> TestClient:
    tokens = (StaticToken("viewer", "viewer",  # type: ignore[arg-type]
                          hashlib.sha256(b"vwr-nova-token").digest()),)
    s = settings.model_validate(settings.model_dump() | {"decisions": {"anonymous": anonymous}})
    return TestClient(create_app(service, s, TokenAuthenticator(tokens)),
                      raise_server_exceptions=False)


def test_viewer_role_or_anonymous_when_configured(service, settings):
    body = {"spec": spec(group=None), "hosts": ["c1"]}
    with token_app(service, settings, anonymous=False) as api:
        assert api.post(PATH.format(policy="x"), json=body).status_code == 401
        r = api.post(PATH.format(policy="x"), json=body,
                     headers={"X-Auth-Token": "vwr-nova-token"})
        assert r.status_code == 200 and r.json()["error"] == "No such policy: x"
    with token_app(service, settings, anonymous=True) as api:
        assert api.post(PATH.format(policy="x"), json=body).status_code == 200
