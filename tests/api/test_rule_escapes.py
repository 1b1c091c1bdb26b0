"""A Datalog string escape that makes invalid Unicode (``"\\ud800"`` inside a rule) is
refused where it is written, through the API as in the CLI; an escaped pair is the
character it denotes, stored, served and kept across the rule's whole life."""

from __future__ import annotations


def test_a_lone_surrogate_escape_in_a_rule_is_refused_with_its_place(client):
    before = client.get("/v1/policies/classification/rules").json()
    r = client.post("/v1/policies/classification/rules", json={"rule": 'error("\\ud800")'})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["error_code"] == 1002  # Congress's rule syntax code
    (diag,) = error["error_data"]
    assert (diag["code"], diag["line"], diag["col"]) == ("invalid_unicode", 1, 8)  # at the escape
    assert client.get("/v1/policies/classification/rules").json() == before
    assert client.get("/v1/policies/classification/violations").status_code == 200


def test_an_escaped_pair_is_one_character_everywhere(client):
    r = client.post("/v1/policies/classification/rules", json={"rule": 'error("\\ud83d\\ude00")'})
    assert r.status_code == 201, r.text
    rows = client.get("/v1/policies/classification/tables/error/rows").json()["results"]
    assert rows == [{"data": ["\U0001F600"]}]
    violations = client.get("/v1/policies/classification/violations").json()["results"]
    assert [v["row"] for v in violations] == [["\U0001F600"]]
