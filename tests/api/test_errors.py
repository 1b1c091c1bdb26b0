"""Bad requests get Congress's status and error code with a clear message: never a 500."""

from __future__ import annotations

import pytest


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "error_code", "error_data"}
    return body["error"]


@pytest.mark.parametrize(
    "method, path, kwargs, status, code, words",
    [
        ("post", "/v1/policies", {"content": b"{not json"}, 400, 400, "malformed JSON"),
        ("post", "/v1/policies", {"content": b"\xff\xfe"}, 400, 400, "not UTF-8"),
        ("post", "/v1/policies", {"json": []}, 400, 400, "must be a JSON object"),
        ("post", "/v1/policies", {"json": {"description": "x"}}, 400, 1010, "name is required"),
        ("post", "/v1/policies", {"json": {"name": "p", "id": "x"}}, 400, 1015, "id"),
        ("post", "/v1/policies", {"json": {"name": "p", "abbreviation": "toolong"}}, 400,
         1022, "longer than 5"),
        ("post", "/v1/policies", {"json": {"name": "p", "kind": "z3"}}, 400, 400, "kind"),
        ("post", "/v1/policies", {"json": {"name": "a b"}}, 400, 400, "invalid policy name"),
        ("post", "/v1/policies", {"json": {"name": "p", "rules": [{"rule": "p(x) :- "}]}},
         400, 1002, "rule"),
        ("get", "/v1/policies/nope", {}, 404, 1020, "No such policy: nope"),
        ("get", "/v1/policies/nope/rules", {}, 404, 1020, "No such policy"),
        ("get", "/v1/policies/classification/rules/nope", {}, 404, 404, "No such rule"),
        ("get", "/v1/policies/classification/tables/nope/rows", {}, 404, 404, "No such table"),
        ("post", "/v1/policies/classification/rules", {"json": {"rule": "p(x) :- q(y)"}}, 400,
         1002, "unsafe"),
        ("post", "/v1/policies/classification/rules", {"json": {"rule": "p(1) q(2)"}}, 400,
         1003, "multiple rules"),
        ("post", "/v1/policies/classification/rules", {"json": {"rule": 7}}, 400, 1002,
         "non-empty string"),
        ("post", "/v1/policies/classification/rules", {"json": {"rule": "p(1)", "x": 1}},
         400, 400, "unknown rule fields"),
        ("post", "/v1/policies/classification", {"json": {}}, 400, 400,
         "Missing required action parameter."),
        ("post", "/v1/policies/classification?action=fly", {"json": {}}, 400, 400,
         "unknown action"),
        ("post", "/v1/policies/classification?action=simulate", {"json": {"query": "p(x)"}},
         400, 1004, "sequence"),
        ("post", "/v1/policies/classification?action=execute", {"json": {"name": "pause"}},
         400, 1017, "<datasource>:<action>"),
        ("post", "/v1/data-sources", {"json": {"name": "d", "driver": "nosuch"}}, 400, 400,
         "no driver named"),
        ("post", "/v1/data-sources", {"json": {"name": "d", "driver": "push",
                                                "config": {"bogus": 1}}}, 400, 400,
         "has no config key 'bogus'"),
        ("get", "/v1/data-sources/nope/status", {}, 404, 404, "No such datasource"),
        ("get", "/v1/system/drivers/nosuch", {}, 404, 404, "no driver named"),
        ("get", "/v1/nothing/here", {}, 404, 404, "could not be found"),
        ("patch", "/v1/policies", {}, 501, 501, "not supported"),
    ],
)
def test_bad_request(client, method, path, kwargs, status, code, words):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    err = error(response)
    assert err["error_code"] == code
    assert words.lower() in err["message"].lower(), err["message"]


def test_a_rule_error_points_at_line_and_column(client):
    r = client.post("/v1/policies/classification/rules", json={"rule": "p(x) :- q(x,"})
    diag = error(r)["error_data"][0]
    assert (diag["code"], diag["line"], diag["col"]) == ("parse_error", 1, 13)


def test_duplicate_rule_is_409_rule_already_exists(client):
    assert client.post("/v1/policies/classification/rules", json={"rule": "p(1)"}).status_code \
        == 201
    r = client.post("/v1/policies/classification/rules", json={"rule": "p(1)"})
    assert (r.status_code, error(r)["error_code"]) == (409, 1008)


def test_duplicate_policy_is_409(client):
    assert client.post("/v1/policies", json={"name": "p"}).status_code == 201
    r = client.post("/v1/policies", json={"name": "p"})
    assert r.status_code == 409 and "already exists" in error(r)["message"]


def test_oversized_body_is_413_and_nothing_is_stored(client, service):
    limit = client.app.state.settings.max_body_bytes
    big = b'{"name": "p", "description": "' + b"x" * limit + b'"}'
    r = client.post("/v1/policies", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "max_body_bytes" in error(r)["message"]
    assert "p" not in [p.name for p in service.policies.list()]

    def chunks():  # no Content-Length: the limit holds while streaming
        yield b'{"name": "p", "description": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = client.post("/v1/policies", content=chunks())
    assert r.status_code == 413


def test_pushing_rows_of_the_wrong_shape(client):
    client.post("/v1/data-sources", json={"name": "d", "driver": "push",
                                          "config": {"tables": {"t": ["a", "b"]}}})
    for rows, words in [
        ({"a": 1}, "must be a JSON list of lists"),
        ([[1]], "has 1 values; the table has 2 columns"),
        ([[1, {"x": 1}]], "values must be strings, numbers"),
        ([1], "is not a list"),
    ]:
        r = client.put("/v1/data-sources/d/tables/t/rows", json=rows)
        assert r.status_code == 400 and words in error(r)["message"], r.text
    r = client.put("/v1/data-sources/d/tables/nope/rows", json=[])
    assert r.status_code == 400 and "has no table 'nope'" in error(r)["message"]


def test_a_bug_is_a_500_in_congress_shape_without_a_traceback(client, service, monkeypatch):
    def boom(*args, **kwargs):
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(service.policies, "list", boom)
    r = client.get("/v1/policies")
    assert r.status_code == 500
    message = error(r)["message"]
    assert "ZeroDivisionError" in message and "secret internals" not in message
    assert "Traceback" not in r.text
