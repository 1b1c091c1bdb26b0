"""Bodies past Charter's input limits get 400 with a located error, and nothing is stored.

Found by an attacker: a lone UTF-16 surrogate (``"\\ud800"``) reached the store's UTF-8
encoding (a 500, and the engine kept what the store refused); JSON nested 100k deep raised
RecursionError; a 5,000-digit integer made Python refuse to print it. ``read_json`` now
parses through :func:`charter.lang.limits.load_json`.
"""

from __future__ import annotations

import pytest

SURROGATE = b'"\\ud800"'  # the six characters \ud800 between quotes: valid JSON, not Unicode
HUGE = b"9" * 5000
DEEP = b"[" * 100_000 + b"]" * 100_000


def error(response, status: int = 400) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "error_code",
                                                              "error_data"}, body
    return body["error"]


def post(client, path: str, raw: bytes, method: str = "post"):
    return client.request(method, path, content=raw,
                          headers={"content-type": "application/json"})


@pytest.fixture
def world(client):
    """A push datasource ``inv`` with one row, a library policy ``lib``; and a snapshot of
    everything a write could change."""
    assert client.post("/v1/data-sources", json={
        "name": "inv", "driver": "push", "config": {"tables": {"servers": ["id", "n"]}}},
    ).status_code == 201
    assert client.put("/v1/data-sources/inv/tables/servers/rows",
                      json=[["vm1", 1]]).status_code == 200
    assert client.post("/v1/librarypolicies", json={"name": "lib", "rules": []}
                       ).status_code == 201
    return client


def snapshot(client) -> dict:
    """What GET shows of every resource a refused body could have touched."""
    def get(path):
        r = client.get(path)
        assert r.status_code == 200, r.text
        return r.json()
    return {
        "policies": get("/v1/policies"),
        "rules": get("/v1/policies/classification/rules"),
        "datasources": get("/v1/data-sources"),
        "rows": get("/v1/data-sources/inv/tables/servers/rows"),
        "library": get("/v1/librarypolicies"),
        "enforcement": get("/v1/policies/classification/enforcement"),
    }


# Each: (method, path, the body around the bad value, which JSON puts it at).
ENDPOINTS = [
    ("post", "/v1/policies/classification/rules", b'{"rule": "ok2(1)", "comment": %s}'),
    ("post", "/v1/policies/classification/rules", b'{"rule": %s}'),
    ("post", "/v1/policies", b'{"name": "p", "description": %s}'),
    ("post", "/v1/policies", b'{"name": "p", "rules": [{"rule": "q(1)", "name": %s}]}'),
    ("post", "/v1/data-sources", b'{"name": "d", "driver": "push", "description": %s}'),
    ("post", "/v1/librarypolicies", b'{"name": "l", "description": %s, "rules": []}'),
    ("put", "/v1/librarypolicies/lib", b'{"name": "lib", "description": %s, "rules": []}'),
    ("put", "/v1/data-sources/inv/tables/servers/rows", b'[["vm2", %s]]'),
    ("post", "/v1/policies/classification?action=simulate",
     b'{"query": "p(x)", "sequence": %s}'),
    ("post", "/v1/policies/classification/admission",
     b'{"insert": [{"table": "inv:servers", "row": ["vm3", %s]}]}'),
    ("put", "/v1/policies/classification/enforcement", b'{"mode": %s}'),
]


@pytest.mark.parametrize("method, path, template", ENDPOINTS)
@pytest.mark.parametrize("bad, code, words", [
    (SURROGATE, "invalid_unicode", "lone UTF-16 surrogate (U+D800)"),
    (HUGE, "literal_too_large", "integer of 5000 digits is over the limit"),
    (b"[" * 50_000 + b"1" + b"]" * 50_000, "too_deep", "nested deeper than 64 levels"),
])
def test_a_bad_value_is_400_with_its_place_and_nothing_is_stored(
        world, method, path, template, bad, code, words):
    before = snapshot(world)
    raw = template % bad
    err = error(post(world, path, raw, method))
    assert err["error_code"] == 400
    assert words in err["message"] and "the request body:1:" in err["message"], err["message"]
    (diag,) = err["error_data"]
    assert diag["code"] == code and diag["line"] == 1
    if code == "too_deep":  # the first bracket past depth 64, wherever the value sits
        assert raw.index(bad) < diag["col"] <= raw.index(bad) + 65
    else:
        assert diag["col"] == raw.index(b"\\ud800" if bad is SURROGATE else bad) + 1
    assert snapshot(world) == before


def test_a_deep_body_is_refused_at_the_bracket_past_the_limit(world):
    err = error(post(world, "/v1/policies", DEEP))
    (diag,) = err["error_data"]
    assert (diag["code"], diag["line"], diag["col"]) == ("too_deep", 1, 65)
    assert "limits.max_depth" in err["message"]


def test_a_surrogate_on_a_later_line_is_located(world):
    raw = b'{\n  "rule": "ok2(1)",\n  "comment": "x\\udfff"\n}'
    err = error(post(world, "/v1/policies/classification/rules", raw))
    (diag,) = err["error_data"]
    assert (diag["line"], diag["col"]) == (3, 16)
    assert "U+DFFF" in err["message"]


def test_a_pair_of_escaped_surrogates_is_one_character_and_is_kept(world):
    raw = b'{"rule": "ok2(1)", "comment": "smile \\ud83d\\ude00"}'
    r = post(world, "/v1/policies/classification/rules", raw)
    assert r.status_code == 201, r.text
    assert r.json()["comment"] == "smile \U0001F600"
    rules = world.get("/v1/policies/classification/rules").json()["results"]
    assert [x["comment"] for x in rules] == ["smile \U0001F600"]


def test_integers_up_to_the_limit_are_kept(world):
    big = int("9" * 100)
    r = world.put("/v1/data-sources/inv/tables/servers/rows", json=[["vm9", big]])
    assert r.status_code == 200, r.text
    rows = world.get("/v1/data-sources/inv/tables/servers/rows").json()["results"]
    assert rows == [{"data": ["vm9", big]}]


@pytest.mark.parametrize("raw, words", [
    (b"{not json", "malformed JSON in the request body at line 1 column 2"),
    (b"\xff\xfe", "the request body is not UTF-8 text"),
])
def test_malformed_and_not_utf8_keep_their_messages(world, raw, words):
    before = snapshot(world)
    err = error(post(world, "/v1/policies", raw))
    assert words in err["message"] and err["error_code"] == 400
    assert snapshot(world) == before


def test_the_size_limit_stays_413(world):
    limit = world.app.state.settings.max_body_bytes
    err = error(post(world, "/v1/policies", b'"' + b"x" * limit + b'"'), 413)
    assert err["error_code"] == 413 and "max_body_bytes" in err["message"]


@pytest.mark.parametrize("method, path, raw", [
    ("put", "/v1/data-sources/inv/tables/servers/rows", b'[["vm2", NaN]]'),
    ("put", "/v1/data-sources/inv/tables/servers/rows", b'[["vm2", -Infinity]]'),
    ("post", "/v1/policies/classification/admission",
     b'{"insert": [{"table": "inv:servers", "row": ["vm3", Infinity]}]}'),
    ("post", "/v1/data-sources", b'{"name": "d", "driver": "push", "config": {"x": NaN}}'),
])
def test_nan_and_infinity_are_not_json(world, method, path, raw):
    """Python's reader takes them; a NaN row never equals itself, so every push would see it
    as new, and no answer could show it."""
    before = snapshot(world)
    err = error(post(world, path, raw, method))
    (diag,) = err["error_data"]
    assert diag["code"] == "invalid_number" and "not JSON numbers" in err["message"]
    token = next(t for t in (b"NaN", b"-Infinity", b"Infinity") if t in raw)
    assert (diag["line"], diag["col"]) == (1, raw.index(token) + 1)
    assert snapshot(world) == before


def test_nan_inside_a_string_is_text(world):
    r = world.put("/v1/data-sources/inv/tables/servers/rows", json=[["NaN", "Infinity"]])
    assert r.status_code == 200, r.text
