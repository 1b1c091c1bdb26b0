"""/openapi.json describes the API: each body's schema, each status with the error body, the
role each operation needs; and the models refuse what they do not describe."""

from __future__ import annotations

import pytest

ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture
def doc(client) -> dict:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_post_and_put_declares_its_body_schema(doc):
    schemas = doc["components"]["schemas"]
    bodies = 0
    for method, path, operation in operations(doc):
        if method not in ("POST", "PUT"):
            continue
        content = operation["requestBody"]["content"]["application/json"]["schema"]
        refs = [content] if "$ref" in content else content["oneOf"]
        for ref in refs:
            name = ref["$ref"].rsplit("/", 1)[1]
            assert schemas[name].get("type") in ("object", "array"), (path, name)
            bodies += 1
    assert bodies >= 13
    assert schemas["LibraryPolicyBody"]["additionalProperties"] is False
    assert schemas["PolicyBody"]["required"] == ["name"]
    assert schemas["EnforcementBody"]["properties"]["mode"]["enum"] == ["dry-run", "enforce"]


def test_every_status_is_declared_with_the_error_body(doc):
    for method, path, operation in operations(doc):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)  # Charter answers 400
        if operation["x-charter-role"] != "open":
            assert {"401", "403", "501", "503"} <= set(responses), (method, path)
        if "{" in path and not path.startswith("/v1/decisions/"):  # no 404: decisions.fail
            assert "404" in responses, (method, path)
        if method in ("POST", "PUT"):
            assert {"400", "413"} <= set(responses), (method, path)
        for status, response in responses.items():
            if int(status) >= 400 and path != "/healthz":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status)
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_creates_link_to_what_they_created(doc):
    links = doc["paths"]["/v1/policies"]["post"]["responses"]["201"]["links"]
    assert links["GetPolicy"] == {"operationRef": "#/paths/~1v1~1policies~1{policy}/get",
                                  "parameters": {"policy": "$response.body#/id"}}


@pytest.mark.parametrize("method, path, body, words", [
    ("post", "/v1/librarypolicies", {"name": "l", "rules": [], "colour": 1},
     "unknown library policy fields ['colour']"),
    ("post", "/v1/librarypolicies", {"name": "l", "rules": [{"rule": "p(1)", "x": 1}]},
     "rules[0].x: unknown field"),
    ("put", "/v1/librarypolicies/lib", {"name": "lib", "rules": [], "colour": 1},
     "unknown library policy fields ['colour']"),
    ("post", "/v1/librarypolicies", {"name": "l", "description": 5},
     "description: Input should be a valid string"),
    ("post", "/v1/policies", {"name": "p", "description": ["x"]},
     "description: Input should be a valid string"),
    ("post", "/v1/policies", {"name": "p", "rules": "p(1)"}, "rules: Input should be"),
    ("post", "/v1/data-sources", {"name": "d", "driver": "push", "enabled": "yes"},
     "enabled: Input should be a valid boolean"),
    ("post", "/v1/policies/classification?action=simulate",
     {"query": "p(x)", "sequence": "p+(1)", "depth": 2}, "unknown simulate fields ['depth']"),
    ("post", "/v1/data-sources/inv/webhook", {"tables": {"t": [[1]]}, "extra": 1},
     "unknown webhook fields ['extra']"),
])
def test_a_body_the_model_does_not_describe_is_refused_and_nothing_stored(
        client, method, path, body, words):
    assert client.post("/v1/librarypolicies", json={"name": "lib", "rules": []}
                       ).status_code == 201
    assert client.post("/v1/data-sources", json={"name": "inv", "driver": "push"}
                       ).status_code == 201
    before = [client.get(p).json() for p in ("/v1/librarypolicies", "/v1/policies",
                                             "/v1/data-sources")]
    r = client.request(method, path, json=body)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]["message"], r.text
    after = [client.get(p).json() for p in ("/v1/librarypolicies", "/v1/policies",
                                            "/v1/data-sources")]
    assert after == before


@pytest.mark.parametrize("body, code", [
    ({"description": "x"}, 1010),
    ({"name": "p", "id": "x"}, 1015),
    ({"name": "p", "abbreviation": "toolong"}, 1022),
    ({"name": "p", "rules": [{"rule": 7}]}, 1002),
])
def test_congress_codes_come_before_the_model(client, body, code):
    r = client.post("/v1/policies", json=body)
    assert (r.status_code, r.json()["error"]["error_code"]) == (400, code), r.text


def test_a_query_parameter_given_twice_is_refused(client):
    r = client.get("/v1/audit?limit=1&limit=1000")
    assert r.status_code == 400
    assert "'limit' is given 2 times; give it once" in r.json()["error"]["message"]
    assert client.get("/v1/audit?limit=1&other=1&other=2").status_code == 200
