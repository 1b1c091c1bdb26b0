"""The rule editor's API: ``POST /v1/policies/{policy}/check`` (``charter check``'s diagnostics
of rule text in the live program) and ``PUT /v1/policies/{policy}/rules/{rule}`` (a rule
replaced in one batch, keeping its id)."""

from __future__ import annotations

import hashlib
import queue
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.api.auth import TokenAuthenticator
from charter.cli.loading import check_texts
from charter.service.config import StaticToken
from tests.api.conftest import make_service

R1 = 'error(vm) :- inv:servers(vm, "ERROR")'
CALM = "calm(x) :- inv:servers(x, _), not error(x)"
SERVERS = [["vm1", "ERROR"], ["vm2", "ACTIVE"]]


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def world(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, str]:
    """A push datasource ``inv`` (servers: id, status) with rows, and a policy ``ops``:
    ``r1`` (error for a server in ERROR), ``calm`` (servers not in error). Rule ids by name."""
    h = headers or {}
    ok(client.post("/v1/data-sources", headers=h, json={
        "name": "inv", "driver": "push", "config": {"tables": {"servers": ["id", "status"]}}}),
        201)
    ok(client.put("/v1/data-sources/inv/tables/servers/rows", json=SERVERS, headers=h))
    policy = ok(client.post("/v1/policies", headers=h, json={"name": "ops", "rules": [
        {"rule": R1, "name": "r1"}, {"rule": CALM, "name": "calm"}]}), 201)
    return {r["name"]: r["id"] for r in policy["rules"]}


@pytest.fixture
def ids(client) -> dict[str, str]:
    return world(client)


def check(client: TestClient, text: str, policy: str = "ops", **more) -> dict:
    return ok(client.post(f"/v1/policies/{policy}/check", json={"rule": text, **more}))


def found(answer: dict) -> list[tuple]:
    return [(d["severity"], d["code"], d["line"], d["column"]) for d in answer["diagnostics"]]


# ---------------------------------------------------------------- check


def test_unknown_table_of_a_datasource_is_an_error_at_its_place(client, ids):
    answer = check(client, "x(a) :- inv:nothere(a)")
    assert answer["ok"] is False
    assert found(answer) == [("error", "unknown_table", 1, 9)]
    d = answer["diagnostics"][0]
    assert (d["end_line"], d["end_column"]) == (1, 23)
    assert "nothere" in d["message"] and d["notes"] == []


def test_wrong_arity_against_a_live_rule(client, ids):
    answer = check(client, "x(a) :- calm(a, b)\nerror(a) :- x(a)")
    assert answer["ok"] is False
    assert ("error", "arity_mismatch", 1, 9) in found(answer)
    message = next(d["message"] for d in answer["diagnostics"] if d["code"] == "arity_mismatch")
    assert "calm(a, b) has 2 arguments but ops:calm has 1" in message


def test_wrong_arity_against_a_datasource_schema(client, ids):
    answer = check(client, "error(a) :- inv:servers(a, b, c)")
    assert answer["ok"] is False
    assert [(d["code"], d["column"]) for d in answer["diagnostics"] if d["severity"] == "error"
            ] == [("arity_mismatch", 13)]


def test_syntax_error_has_its_line_and_column_in_a_multi_line_text(client, ids):
    text = 'w(x) :- inv:servers(x, "ACTIVE")\n\nbad(x) :- inv:servers(x,\n    y y)\n'
    answer = check(client, text)
    assert answer["ok"] is False
    assert found(answer) == [("error", "parse_error", 4, 7)]


def test_unsafe_variable(client, ids):
    answer = check(client, "error(x) :- inv:servers(y, _)")
    assert answer["ok"] is False
    assert ("error", "unsafe_variable", 1, 7) in found(answer)


def test_recursion_through_negation_with_the_live_program_is_placed_in_the_text(client, ids):
    # calm (live) reads not error; the text makes error read calm: a cycle through negation
    answer = check(client, 'w(x) :- inv:servers(x, "ACTIVE")\nerror(x) :- calm(x)')
    assert answer["ok"] is False
    [d] = [d for d in answer["diagnostics"] if d["code"] == "unstratifiable"]
    assert (d["severity"], d["line"], d["column"]) == ("error", 2, 1)
    assert "ops:error" in d["message"] and "ops:calm" in d["message"]


def test_a_cycle_named_from_a_live_rule_moves_to_the_text_with_a_note(client, ids):
    # the program check names the cycle from one of its tables and reports it at the rule
    # that defines that table: whichever it is, the answer is at the text's rule
    answer = check(client, "other(x) :- inv:servers(x, _)\nerror(x) :- calm(x)")
    [d] = [d for d in answer["diagnostics"] if d["code"] == "unstratifiable"]
    assert (d["line"], d["column"]) == (2, 1)
    assert all("live rule" in note for note in d["notes"])


def test_warnings_alone_are_ok(client, ids):
    answer = check(client, "w(x) :- inv:servers(x, y)\nerror(x) :- w(x)")
    assert answer["ok"] is True
    assert found(answer) == [("warning", "singleton_variable", 1, 24)]


def test_a_disable_comment_switches_a_warning_off(client, ids):
    text = "w(x) :- inv:servers(x, y)  # charter: disable=singleton_variable\nerror(x) :- w(x)"
    assert check(client, text) == {"ok": True, "diagnostics": []}


@pytest.mark.parametrize("text", ["", "   \n", "// only a comment\n"])
def test_empty_text_is_ok_with_no_diagnostics(client, ids, text):
    assert check(client, text) == {"ok": True, "diagnostics": []}


def test_replace_mode_checks_the_text_in_place_of_the_rule(client, ids):
    assert found(check(client, R1)) == [("error", "rule_already_exists", 1, 1)]
    assert check(client, R1, replace="r1") == {"ok": True, "diagnostics": []}
    assert check(client, R1, replace=ids["r1"]) == {"ok": True, "diagnostics": []}
    # without calm, error may read calm: no cycle is left
    assert check(client, "calm(x) :- inv:servers(x, _)\nerror(x) :- calm(x)",
                 replace="calm")["ok"] is True
    assert check(client, "error(x) :- calm(x)")["ok"] is False


def test_the_live_program_is_read_not_changed(client, ids, service):
    before = client.get("/v1/policies/ops/rules").json()
    check(client, "w(x) :- inv:servers(x, _)")
    assert client.get("/v1/policies/ops/rules").json() == before
    assert "ops:w" not in service.engine.tables()


def test_check_says_what_charter_check_says_of_a_file(client):
    """A policy of its own, with no datasource: its text is a file to charter check."""
    ok(client.post("/v1/policies", json={"name": "solo"}), 201)
    texts = ["q(x) :- r(x, y)", "error(x) :- q(x, y), not q(x, 1)", "p(x) :- q(x,\n  y",
             "error(x) :- nothere(y)", "error(x) :- a(x), not b(x)\nb(x) :- error(x)\na(1)",
             "error(x) :- a(x) # charter: disable=unknown_table\nerror(x) :- a(x)",
             "a(1)\na(1, 2)", "h(x) :- g(x), x < 1, x > 2\ng(1)", "error(x) :- a(x) // disable=x"]
    for text in texts:
        cli = [(d.severity, d.code, d.span.line, d.span.col)
               for d in check_texts({"solo.dl": text})]
        assert found(check(client, text, "solo")) == cli, text


def test_ok_is_what_adding_the_rule_answers(client, ids):
    texts = ["x(a) :- inv:nothere(a)", "error(x) :- inv:servers(y, _)", "error(x) :- calm(x)",
             "w(x) :- inv:servers(x, y)", R1, 'error(x) :- inv:servers(x, "BUILD")',
             "calm(x, y) :- inv:servers(x, y)", "p(x) :- q(x"]
    for text in texts:
        checked = check(client, text)["ok"]
        r = client.post("/v1/policies/ops/rules", json={"rule": text})
        assert (r.status_code == 201) == checked, (text, r.text)
        if r.status_code == 201:
            ok(client.delete(f"/v1/policies/ops/rules/{r.json()['id']}"))


def test_check_errors(client, ids):
    r = client.post("/v1/policies/nope/check", json={"rule": "p(1)"})
    assert r.status_code == 404
    r = client.post("/v1/policies/ops/check", json={"rule": "p(1)", "replace": "nope"})
    assert r.status_code == 404 and "No such rule nope" in r.json()["error"]["message"]
    r = client.post("/v1/policies/ops/check", json={"rules": "p(1)"})
    assert r.status_code == 400 and "unknown check fields ['rules']" in r.json()["error"]["message"]
    r = client.post("/v1/policies/ops/check", json={"rule": 5})
    assert r.status_code == 400
    limit = client.app.state.settings.max_body_bytes
    big = b'{"rule": "' + b"p(1) " * (limit // 5 + 1) + b'"}'
    r = client.post("/v1/policies/ops/check", content=big,
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and "max_body_bytes" in r.json()["error"]["message"]


def test_a_literal_past_the_input_limits_is_a_diagnostic(client, ids):
    answer = check(client, "big(x) :- inv:servers(x, _), x = " + "9" * 500)
    assert answer["ok"] is False
    assert [d["code"] for d in answer["diagnostics"]] == ["literal_too_large"]


# ---------------------------------------------------------------- PUT


def test_put_replaces_the_text_keeping_the_id_name_and_place(client, ids):
    new = 'error(vm) :- inv:servers(vm, s), s = "ERROR"'
    answer = ok(client.put("/v1/policies/ops/rules/r1", json={"rule": new}))
    assert answer == {"id": ids["r1"], "name": "r1", "rule": new, "comment": ""}
    listed = client.get("/v1/policies/ops/rules").json()["results"]
    assert [r["id"] for r in listed] == [ids["r1"], ids["calm"]]
    assert ok(client.get(f"/v1/policies/ops/rules/{ids['r1']}"))["rule"] == new
    rows = ok(client.get("/v1/policies/ops/tables/error/rows"))["results"]
    assert rows == [{"data": ["vm1"]}]


def test_put_name_and_comment_given_replace_omitted_keep_null_clears(client, ids):
    answer = ok(client.put(f"/v1/policies/ops/rules/{ids['r1']}",
                           json={"rule": R1, "name": "failed", "comment": "why"}))
    assert (answer["name"], answer["comment"], answer["rule"]) == ("failed", "why", R1)
    answer = ok(client.put("/v1/policies/ops/rules/failed", json={"rule": R1}))
    assert (answer["name"], answer["comment"]) == ("failed", "why")
    answer = ok(client.put("/v1/policies/ops/rules/failed",
                           json={"rule": R1, "name": None, "comment": None}))
    assert (answer["name"], answer["comment"]) == (None, "")
    r = client.put(f"/v1/policies/ops/rules/{ids['r1']}", json={"rule": R1, "name": "calm"})
    assert r.status_code == 409 and r.json()["error"]["error_code"] == 1008


def test_put_changes_what_the_rule_derives(client, ids, service):
    ok(client.put("/v1/policies/ops/rules/r1",
                  json={"rule": 'error(vm) :- inv:servers(vm, "ACTIVE")'}))
    assert service.policies.rows("ops", "error") == [("vm2",)]
    assert {r for _, r, _ in service.violations.current("ops")} == {("vm2",)}


def test_put_is_one_batch_a_row_both_rules_derive_never_flaps(client, ids, service):
    first_seen = ok(client.get("/v1/policies/ops/violations"))["results"][0]["first_seen"]
    listener = service.events.listen(["ops:error"])
    try:
        ok(client.put("/v1/policies/ops/rules/r1",
                      json={"rule": 'error(vm) :- inv:servers(vm, s), s = "ERROR"'}))
        events = []
        while True:
            try:
                events.append(listener.queue.get_nowait())
            except queue.Empty:
                break
    finally:
        service.events.close(listener)
    assert all(("vm1",) not in e.deleted and ("vm1",) not in e.inserted for e in events)
    history = ok(client.get("/v1/policies/ops/violations?include_resolved=true"))["results"]
    assert history == [{"table": "error", "row": ["vm1"], "first_seen": first_seen,
                        "resolved_at": None}]


def test_put_a_rule_that_does_not_check_keeps_the_old_one(client, ids, service):
    bad = "error(x) :- calm(x)"  # a cycle through negation
    created = client.post("/v1/policies/ops/rules", json={"rule": bad})
    r = client.put("/v1/policies/ops/rules/r1", json={"rule": bad})
    assert r.status_code == 400 and r.json() == created.json()
    assert r.json()["error"]["error_data"][0]["code"] == "unstratifiable"
    assert ok(client.get("/v1/policies/ops/rules/r1"))["rule"] == R1
    assert service.policies.rows("ops", "error") == [("vm1",)]
    for text, status in (("p(x) :- q(x", 400), ("", 400), ("p(1)\nq(2)", 400), (CALM, 409)):
        r = client.put("/v1/policies/ops/rules/r1", json={"rule": text})
        assert r.status_code == status, (text, r.text)
        assert r.json() == client.post("/v1/policies/ops/rules", json={"rule": text}).json()
    assert ok(client.get("/v1/policies/ops/rules/r1"))["rule"] == R1


def test_put_unknown_rule_or_policy_is_404(client, ids):
    assert client.put("/v1/policies/ops/rules/nope", json={"rule": R1}).status_code == 404
    assert client.put("/v1/policies/nope/rules/r1", json={"rule": R1}).status_code == 404


def test_put_survives_a_restart(tmp_path, settings):
    new = 'error(vm) :- inv:servers(vm, "ACTIVE")'
    service = make_service(tmp_path)
    try:
        with TestClient(create_app(service, settings)) as client:
            ids = world(client)
            ok(client.put("/v1/policies/ops/rules/r1", json={"rule": new, "comment": "c"}))
    finally:
        service.close()
    service = make_service(tmp_path)
    try:
        with TestClient(create_app(service, settings)) as client:
            rules = ok(client.get("/v1/policies/ops/rules"))["results"]
            assert rules[0] == {"id": ids["r1"], "name": "r1", "rule": new, "comment": "c"}
            assert len(rules) == 2
        assert service.policies.rows("ops", "error") == [("vm2",)]
    finally:
        service.close()


# ---------------------------------------------------------------- roles

TOKENS = {"viewer": "vwr-R5c-token", "editor": "edt-R5c-token", "admin": "adm-R5c-token"}


@pytest.fixture
def token_client(service, settings) -> Iterator[TestClient]:
    authenticator = TokenAuthenticator(tuple(
        StaticToken(f"{role}-caller", role, hashlib.sha256(token.encode()).digest())  # type: ignore[arg-type]
        for role, token in TOKENS.items()))
    with TestClient(create_app(service, settings, authenticator),
                    raise_server_exceptions=False) as client:
        world(client, {"X-Auth-Token": TOKENS["admin"]})
        yield client


def test_a_viewer_may_check_but_not_put(token_client):
    viewer, editor = ({"X-Auth-Token": TOKENS[role]} for role in ("viewer", "editor"))
    r = token_client.post("/v1/policies/ops/check", json={"rule": R1, "replace": "r1"},
                          headers=viewer)
    assert ok(r) == {"ok": True, "diagnostics": []}
    r = token_client.put("/v1/policies/ops/rules/r1", json={"rule": R1}, headers=viewer)
    assert r.status_code == 403 and "needs editor" in r.json()["error"]["message"]
    assert token_client.put("/v1/policies/ops/rules/r1", json={"rule": R1}).status_code == 401
    ok(token_client.put("/v1/policies/ops/rules/r1", json={"rule": R1}, headers=editor))
