"""The API behaves as Congress did where Congress's own tests found Charter different: a
rule given twice in one request is kept once (with a warning beside Congress's fields), a
policy name is an identifier, and an action without a service is the policy's own."""

from __future__ import annotations

from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.service.service import Service
from charter.store import Store
from tests.api.conftest import KEY

VENDORED = Path(__file__).parents[1] / "congress_library" / "unsafe_traffic.yaml"


SG_RULES = ["security_group_id", "id", "tenant_id", "remote_group_id", "direction", "ethertype",
            "protocol", "port_range_min", "port_range_max", "remote_ip_prefix"]


def unsafe_traffic() -> dict:
    """Congress's library/security_groups/unsafe_traffic.yaml as a library policy body."""
    return yaml.safe_load(VENDORED.read_text())


def neutron(client: TestClient) -> None:
    """The table the policy reads by column name, as Congress's neutronv2 driver had it."""
    r = client.post("/v1/data-sources", json={"name": "neutronv2", "driver": "push", "config": {
        "tables": {"security_group_rules": SG_RULES}}})
    assert r.status_code == 201, r.text


def test_a_rule_given_twice_when_creating_a_policy_is_created_once(client):
    """congress/policy_engines/agnostic.py, persistent_insert_rules: only rules whose insert
    changed something are stored ("save rule to database if change actually happened")."""
    r = client.post("/v1/policies", json={"name": "ops", "rules": [
        {"rule": "error(x) :- q(x)", "name": "first"},
        {"rule": "q(1)"},
        {"rule": "error(x)  :-  q(x)", "name": "again"},
    ]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert [rule["name"] for rule in body["rules"]] == ["first", None]
    assert body["warnings"] == [{
        "code": "duplicate_rule", "severity": "warning", "file": "rules[2]", "line": 1,
        "col": 1, "notes": ["first written at rules[0]:1:1"],
        "message": "rule error(x) :- q(x) is written twice in policy ops; the copy is ignored",
    }]
    rules = client.get("/v1/policies/ops/rules").json()["results"]
    assert [rule["rule"] for rule in rules] == ["error(x) :- q(x)", "q(1)"]
    assert client.get("/v1/policies/ops/tables/error/rows").json()["results"] == [
        {"data": [1]}]


def test_without_a_duplicate_the_answer_has_congress_shape(client):
    r = client.post("/v1/policies", json={"name": "ops", "rules": [{"rule": "q(1)"}]})
    assert r.status_code == 201 and set(r.json()) == {
        "id", "name", "abbreviation", "description", "owner_id", "kind", "rules"}


def test_inserting_a_rule_the_policy_holds_is_still_409(client):
    """congress/policy_engines/agnostic.py, persistent_insert_rules: "change not accepted
    means it was already there": PolicyRuntimeException(name='rule_already_exists'), 409."""
    client.post("/v1/policies", json={"name": "ops", "rules": [{"rule": "q(1)"}]})
    r = client.post("/v1/policies/ops/rules", json={"rule": "q(1)"})
    assert (r.status_code, r.json()["error"]["error_code"]) == (409, 1008)


def test_congress_unsafe_traffic_through_the_library_endpoints(client):
    """Congress's own library/security_groups/unsafe_traffic.yaml writes one rule twice;
    Congress stored it in its library and activating it kept the unique rules."""
    r = client.post("/v1/librarypolicies", json=unsafe_traffic())
    assert r.status_code == 201, r.text
    lib = r.json()
    assert len(lib["rules"]) == 11  # of 12
    (warning,) = lib["warnings"]
    assert (warning["code"], warning["file"]) == ("duplicate_rule", "rules[6]")
    assert warning["notes"] == ["first written at rules[2]:1:1"]

    r = client.put(f"/v1/librarypolicies/{lib['id']}", json=unsafe_traffic())
    assert r.status_code == 200 and len(r.json()["rules"]) == 11
    assert [w["code"] for w in r.json()["warnings"]] == ["duplicate_rule"]

    neutron(client)
    r = client.post("/v1/policies?library_policy=UnsafeTraffic")
    assert r.status_code == 201, r.text
    assert len(r.json()["rules"]) == 11 and "warnings" not in r.json()
    assert len(client.get("/v1/policies/UnsafeTraffic/rules").json()["results"]) == 11
    rows = [["sg1", "r1", "t", "None", "ingress", "IPv4", "tcp", 20, 30, "0.0.0.0/0"],
            ["sg2", "r2", "t", "None", "ingress", "IPv4", "None", 10, 100, "0.0.0.0/0"]]
    r = client.put("/v1/data-sources/neutronv2/tables/security_group_rules/rows", json=rows)
    assert r.status_code == 200, r.text
    found = client.get("/v1/policies/UnsafeTraffic/tables/warning/rows").json()["results"]
    assert sorted(row["data"] for row in found) == [["sg1", "r1"], ["sg2", "r2"]]


def test_a_library_dir_holding_unsafe_traffic_seeds_it(tmp_path, settings):
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "unsafe_traffic.yaml").write_text(VENDORED.read_text())
    service = Service(Store(f"sqlite:///{tmp_path / 'charter.db'}", secret_key=KEY),
                      library_dir=folder)
    service.start()
    try:
        with TestClient(create_app(service, settings)) as client:
            found = client.get("/v1/librarypolicies?name=UnsafeTraffic").json()["results"]
            assert [len(lib["rules"]) for lib in found] == [11]
            neutron(client)
            r = client.post("/v1/policies?library_policy=UnsafeTraffic")
            assert r.status_code == 201 and len(r.json()["rules"]) == 11
    finally:
        service.close()


def test_policy_names_are_identifiers(client):
    """congress/policy_engines/agnostic.py, persistent_create_policy: "Policy name %s is not
    a valid tablename"; congress/library_service/library_service.py, create_policy: "name
    `%s` is not a valid policy name"."""
    for name in ("my-policy", "a.b", "_p", "9lives"):
        r = client.post("/v1/policies", json={"name": name})
        assert r.status_code == 400, name
        assert "letters, digits and '_', starting with a letter" in r.json()["error"]["message"]
        r = client.post("/v1/librarypolicies", json={"name": name, "rules": []})
        assert r.status_code == 400, name
        assert "invalid library policy name" in r.json()["error"]["message"]
    assert client.post("/v1/policies", json={"name": "my_policy2"}).status_code == 201
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert schema["PolicyBody"]["properties"]["name"]["pattern"] == "^[A-Za-z][A-Za-z0-9_]*$"


def test_an_action_without_a_service_is_accepted(client, service):
    """congress/tests/datalog/test_nonrecur.py, test_modals: ``execute[p(x)] :- q(x)`` in
    policy ``test`` derives ``execute[p(1)]``, the action ``test:p`` (agnostic.py,
    _execute_table: ``service = service or theory``)."""
    r = client.post("/v1/policies", json={"name": "test", "rules": [
        {"rule": "execute[p(x)] :- q(x)"}, {"rule": "q(1)"}]})
    assert r.status_code == 201, r.text
    assert service.engine.rows("test:execute[test:p]") == {(1,)}
    r = client.post("/v1/policies/test/rules", json={"rule": "execute[nova:p(x)] :- q(x)"})
    assert r.status_code == 201, r.text
    assert service.engine.rows("test:execute[nova:p]") == {(1,)}


def test_simulate_warns_of_an_update_rule_given_twice(client):
    client.post("/v1/policies", json={"name": "ops", "rules": [{"rule": "q(1)"}]})
    r = client.post("/v1/policies/ops?action=simulate", json={
        "query": "p(x)", "sequence": "p+(x) :- q(x)  p+(x) :- q(x)", "action_policy": "action"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == ["p(1)"]
    (warning,) = body["warnings"]
    assert (warning["code"], warning["file"], warning["col"]) == ("duplicate_rule", "sequence",
                                                                 16)
    r = client.post("/v1/policies/ops?action=simulate", json={
        "query": "p(x)", "sequence": "p+(x) :- q(x)  p-(x) :- q(x)  p+(x) :- q(x)"})
    assert r.status_code == 200 and "warnings" not in r.json()  # removed, then added again
