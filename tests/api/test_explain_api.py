"""GET/POST /v1/policies/{policy}/tables/{table}/explain: proofs and why-not over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from charter.api import explain as explain_api
from charter.api.app import create_app

PATH = "/v1/policies/{policy}/tables/{table}/explain"


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    return body["error"]["message"]


@pytest.fixture
def api(service, settings) -> Iterator[TestClient]:
    """The app with the explain router (once, whether or not app.py includes it already)."""
    app = create_app(service, settings)
    if not any(getattr(r, "path", None) == PATH for r in app.routes):
        app.include_router(explain_api.router)
    with TestClient(app, raise_server_exceptions=False) as client:
        ok(
            client.post(
                "/v1/data-sources", json={"name": "fleet", "driver": "push", "config": None}
            ),
            201,
        )
        ok(
            client.put(
                "/v1/data-sources/fleet/tables/servers/rows",
                json=[["vm1", "h1"], ["vm2", "h1"], ["vm3", "h2"]],
            )
        )
        ok(client.put("/v1/data-sources/fleet/tables/hosts/rows", json=[["h1", 1], ["h2", 4]]))
        ok(client.post("/v1/policies", json={"name": "cap"}), 201)
        for rule in [
            "load(h, n) :- fleet:servers(_, h), n = count : { fleet:servers(_, h) }",
            "error(h, n, c) :- load(h, n), fleet:hosts(h, c), n > c",
            "reach(x, y) :- link(x, y)",
            "reach(x, z) :- reach(x, y), link(y, z)",
            'link("a", "b")',
            'link("b", "a")',
        ]:
            ok(client.post("/v1/policies/cap/rules", json={"rule": rule}), 201)
        yield client


def url(table: str, policy: str = "cap") -> str:
    return PATH.format(policy=policy, table=table)


def test_get_answers_the_proof(api):
    body = ok(api.get(url("error"), params={"row": json.dumps(["h1", 2, 1])}))
    assert body["present"] is True
    assert body["rule"] == "error(h, n, c) :- load(h, n), fleet:hosts(h, c), n > c"
    assert body["policy"] == "cap" and body["bindings"] == {"h": "h1", "n": 2, "c": 1}
    load, hosts, comparison = body["children"]
    assert load["table"] == "cap:load" and load["kind"] == "rule"
    aggregate = load["children"][1]
    assert aggregate["kind"] == "aggregate" and aggregate["value"] == 2
    assert aggregate["count"] == 2 and len(aggregate["examples"]) == 2
    assert hosts == {
        "kind": "fact",
        "table": "fleet:hosts",
        "row": ["h1", 1],
        "rule": None,
        "policy": None,
        "bindings": {},
        "children": [],
        "literal": "fleet:hosts(h, c)",
        "origin": "datasource",
        "source": "fleet",
    }
    assert comparison == {"kind": "comparison", "literal": "n > c", "call": "2 > 1", "result": True}


def test_post_answers_the_same(api):
    get = ok(api.get(url("error"), params={"row": '["h1", 2, 1]'}))
    post = ok(api.post(url("error"), json={"row": ["h1", 2, 1]}))
    assert get == post


def test_a_recursive_row_on_a_cycle(api):
    body = ok(api.post(url("reach"), json={"row": ["a", "a"], "alternatives": True}))
    assert body["bindings"] == {"x": "a", "z": "a", "y": "b"}
    first = body["children"][0]
    assert first["row"] == ["a", "b"] and first["rule"] == "reach(x, y) :- link(x, y)"
    assert first["children"][0]["origin"] == "policy"
    assert "alternatives" not in body  # one derivation only


def test_why_not(api):
    body = ok(api.get(url("error"), params={"row": '["h2", 1, 4]'}))
    assert body["present"] is False
    (candidate,) = body["candidates"]
    assert [m["kind"] for m in candidate["matched"]] == ["match", "match"]
    assert candidate["failed"]["kind"] == "comparison"
    assert candidate["failed"]["message"] == "1 > 4 is false"


def test_null_leaves_a_column_open(api):
    body = ok(api.post(url("load"), json={"row": ["h2", None]}))
    assert body["present"] is True and body["row"] == ["h2", 1]
    body = ok(api.post(url("load"), json={"row": ["h9", None]}))
    assert body["present"] is False and body["row"] == ["h9", None]


def test_examples_limit(api):
    body = ok(api.post(url("load"), json={"row": ["h1", 2], "examples": 1}))
    aggregate = body["children"][1]
    assert aggregate["count"] == 2 and len(aggregate["examples"]) == 1


def test_unknown_policy_or_table_is_404(api):
    assert "No such policy" in error(api.get(url("error", "nope"), params={"row": "[1]"}), 404)
    assert "No such table" in error(api.get(url("eror"), params={"row": "[1]"}), 404)


def test_bad_rows_are_400(api):
    message = error(api.get(url("error"), params={"row": '["h1"]'}), 400)
    assert message == "the row has 1 values; cap:error has 3 columns"
    assert "not JSON" in error(api.get(url("error"), params={"row": "[h1"}), 400)
    assert "needs ?row" in error(api.get(url("error")), 400)
    assert "JSON list" in error(api.post(url("error"), json={"row": "h1"}), 400)
    assert "not a string or a number" in error(
        api.post(url("error"), json={"row": [True, 1, 1]}), 400
    )
    assert "unknown explain fields" in error(
        api.post(url("error"), json={"row": ["h1", 1, 1], "rows": 1}), 400
    )
    assert "examples" in error(
        api.post(url("error"), json={"row": ["h1", 1, 1], "examples": -1}), 400
    )


def test_rows_trace_is_unchanged(api):
    body = ok(api.get("/v1/policies/cap/tables/error/rows", params={"trace": "true"}))
    assert body["results"] == [{"data": ["h1", 2, 1]}]
    assert body["trace"].startswith("error: 1 rows")
