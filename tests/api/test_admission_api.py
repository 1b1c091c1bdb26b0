"""POST /v1/policies/{policy}/admission: which violations a change would add or clear."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient

from charter.api import admission
from charter.api.app import create_app
from charter.api.auth import TokenAuthenticator
from charter.service.config import StaticToken

PATH = "/v1/policies/{policy}/admission"
SCHEMA = {"tables": {"servers": ["id", "host"], "hosts": ["host", "capacity"]}}
RULES = [
    "error(h) :- inv:servers(_, h), n = count : { inv:servers(_, h) }, inv:hosts(h, c), n > c",
    'warning(id) :- inv:servers(id, h), not inv:hosts(h, _)',
    "load(h, n) :- inv:hosts(h, _), n = count : { inv:servers(_, h) }",
]


def with_admission(app):
    """The app, with the admission router (app.py includes it once the lead adds the line)."""
    if not any(getattr(r, "path", None) == PATH for r in app.routes):
        app.include_router(admission.router)
    return app


@pytest.fixture
def api(client):
    with_admission(client.app)
    ok(client.post("/v1/data-sources", json={"name": "inv", "driver": "push",
                                             "config": SCHEMA}), 201)
    ok(client.put("/v1/data-sources/inv/tables/hosts/rows", json=[["h1", 1], ["h2", 5]]))
    ok(client.put("/v1/data-sources/inv/tables/servers/rows",
                  json=[["vm1", "h1"], ["vm2", "h1"], ["vm3", "h2"]]))
    ok(client.post("/v1/policies", json={"name": "cap",
                                         "rules": [{"rule": r} for r in RULES]}), 201)
    return client


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def refused(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "error_code", "error_data"}
    for word in words:
        assert word in error["message"], error["message"]
    return error


def admit(api, body: dict, policy: str = "cap") -> dict:
    return ok(api.post(PATH.format(policy=policy), json=body))


def servers(*rows) -> list[dict]:
    return [{"table": "inv:servers", "row": list(r)} for r in rows]


def test_rows_that_add_a_violation_are_not_allowed(api):
    answer = admit(api, {"insert": servers(*[(f"x{i}", "h2") for i in range(5)])})
    assert answer == {"allowed": False, "appear": [{"table": "error", "row": ["h2"]}],
                      "clear": []}


def test_rows_that_clear_a_violation(api):
    answer = admit(api, {"delete": servers(("vm2", "h1"))})
    assert answer == {"allowed": True, "appear": [], "clear": [{"table": "error",
                                                                "row": ["h1"]}]}
    # both at once, and a warning (the host is unknown) among what appears
    answer = admit(api, {"delete": servers(("vm2", "h1")), "insert": servers(("vm9", "h9"))})
    assert answer == {"allowed": False, "appear": [{"table": "warning", "row": ["vm9"]}],
                      "clear": [{"table": "error", "row": ["h1"]}]}


def test_nothing_is_changed_or_published(api, service):
    listener = service.events.listen()
    before = ok(api.get("/v1/policies/cap/violations"))
    admit(api, {"insert": servers(*[(f"x{i}", "h2") for i in range(5)]),
                "delete": servers(("vm1", "h1"))})
    assert ok(api.get("/v1/policies/cap/violations")) == before
    assert ok(api.get("/v1/data-sources/inv/tables/servers/rows"))["results"] == [
        {"data": ["vm1", "h1"]}, {"data": ["vm2", "h1"]}, {"data": ["vm3", "h2"]}]
    assert listener.queue.empty()


def test_tables_to_watch_can_be_given(api):
    answer = admit(api, {"insert": servers(("vm9", "h2")), "tables": ["load"]})
    assert answer == {"allowed": False, "appear": [{"table": "load", "row": ["h2", 2]}],
                      "clear": [{"table": "load", "row": ["h2", 1]}]}
    answer = admit(api, {"insert": servers(("vm9", "h2")), "tables": ["cap:error"]})
    assert answer == {"allowed": True, "appear": [], "clear": []}


def test_a_declared_action_with_arguments(api):
    for rule in ('action("place")', "load+(h, 99) :- place(h), inv:hosts(h, _)",
                 "load-(h, n) :- place(h), load(h, n)"):
        ok(api.post("/v1/policies/action/rules", json={"rule": rule}), 201)
    answer = admit(api, {"action": "place", "args": ["h2"], "tables": ["load"]})
    # the update lands in the policy's table (as facts beside the derived rows)
    assert answer["appear"] == [{"table": "load", "row": ["h2", 99]}]
    assert answer["allowed"] is False
    refused(api.post(PATH.format(policy="cap"), json={"action": "reboot", "args": []}), 400,
            "reboot is not an action declared by action policy action", "declares: place")


def test_a_viewer_may_ask(service, settings):
    tokens = (StaticToken("v", "viewer", hashlib.sha256(b"viewer-token").digest()),)
    app = with_admission(create_app(service, settings, TokenAuthenticator(tokens)))
    with TestClient(app, raise_server_exceptions=False) as c:
        body = {"insert": [{"table": "classification:p", "row": [1]}]}
        refused(c.post(PATH.format(policy="classification"), json=body), 401)
        answer = ok(c.post(PATH.format(policy="classification"), json=body,
                           headers={"X-Auth-Token": "viewer-token"}))
        assert answer == {"allowed": True, "appear": [], "clear": []}


@pytest.mark.parametrize("body, status, words", [
    ({}, 400, ["needs a change"]),
    ({"insert": servers(("vm9", "h2")), "color": "red"}, 400, ["unknown admission fields"]),
    ({"insert": [{"table": "inv:servers"}]}, 400, ["insert[0] must be an object"]),
    ({"insert": [{"table": "inv:servers", "row": [["nested"]]}]}, 400, ["insert[0].row"]),
    ({"delete": [{"table": "inv:servers", "row": [True]}]}, 400, ["delete[0].row"]),
    ({"insert": [{"table": "inv:servers", "row": ["vm9"]}]}, 400, ["inv:servers has 2"]),
    ({"insert": [{"table": "inv:nosuch", "row": [1]}]}, 400, ["has no table nosuch"]),
    ({"insert": servers(("vm9", "h2")), "tables": ["eror"]}, 400,
     ["unknown table eror", "error"]),
    ({"args": [1]}, 400, ["needs a change"]),
    ({"insert": servers(("vm9", "h2")), "action_policy": "nosuch"}, 404,
     ["No such action policy: nosuch"]),
])
def test_bad_requests_are_clear(api, body, status, words):
    refused(api.post(PATH.format(policy="cap"), json=body), status, *words)


def test_unknown_policy_and_malformed_body(api):
    refused(api.post(PATH.format(policy="nosuch"), json={"delete": []}), 400, "needs a change")
    error = refused(api.post(PATH.format(policy="nosuch"),
                             json={"delete": servers(("vm1", "h1"))}), 404, "nosuch")
    assert error["error_code"] == 1020
    refused(api.post(PATH.format(policy="cap"), content=b"{nope"), 400, "malformed JSON")
    refused(api.post(PATH.format(policy="cap"), json=[1]), 400, "JSON object")
