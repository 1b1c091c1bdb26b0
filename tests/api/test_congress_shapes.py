"""The JSON shapes python-congressclient 2.0.1 reads, pinned in-process.

Each test names the client code (congressclient/v1/client.py, osc/v1/*.py) that depends on
the shape, so a regression shows here without the slow integration test
(tests/integration/test_congressclient.py, which runs the real client).
"""

from __future__ import annotations

import pytest

RULE_KEYS = {"id", "name", "rule", "comment"}
POLICY_KEYS = {"id", "name", "abbreviation", "description", "owner_id", "kind"}


def results(response, status: int = 200) -> list:
    """A Congress list: ``{"results": [...]}`` and nothing else."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"results"}, body
    assert isinstance(body["results"], list)
    return body["results"]


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def congress_error(response, status: int) -> str:
    """keystoneauth reads ``error.message`` from a JSON body and prints it with the status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "error_code",
                                                              "error_data"}
    return body["error"]["message"]


@pytest.fixture
def fleet(client):
    """A push datasource ``fleet`` with rows and a policy ``cap`` with one violation."""
    ok(client.post("/v1/data-sources", json={"name": "fleet", "driver": "push",
                                               "config": None}), 201)
    ok(client.put("/v1/data-sources/fleet/tables/servers/rows",
                  json=[["vm1", "h1"], ["vm2", "h1"]]))
    ok(client.put("/v1/data-sources/fleet/tables/hosts/rows", json=[["h1", 1]]))
    ok(client.post("/v1/policies", json={"name": "cap", "description": None,
                                          "abbreviation": None, "kind": None}), 201)
    ok(client.post("/v1/policies/cap/rules", json={
        "rule": "load(h, n) :- fleet:servers(_, h), n = count : { fleet:servers(_, h) }",
        "name": "load"}), 201)
    ok(client.post("/v1/policies/cap/rules", json={
        "rule": "error(h, n, c) :- load(h, n), fleet:hosts(h, c), n > c"}), 201)
    return client


# ---------------------------------------------------------------- versions


def test_version_discovery(client):
    # ListAPIVersions: GET / -> body['versions'], columns id, status, updated
    r = client.get("/")
    assert r.status_code == 300
    (version,) = r.json()["versions"]
    assert {"id": "v1", "status": "CURRENT"}.items() <= version.items()
    assert "updated" in version


# ---------------------------------------------------------------- policies


def test_policy_create_answers_201_with_the_policy(client):
    # CreatePolicy sends name, description, abbreviation, kind (None when not given) and
    # prints the answer's items
    body = ok(client.post("/v1/policies", json={"name": "p", "description": None,
                                                 "abbreviation": None, "kind": None}), 201)
    assert set(body) == POLICY_KEYS
    assert body["abbreviation"] == "p" and body["kind"] == "nonrecursive"
    assert body["description"] == ""


def test_policy_create_from_file_answers_the_rules(client):
    # CreatePolicyFromFile joins data['rules'][i]['rule']
    body = ok(client.post("/v1/policies", json={
        "name": "f", "rules": [{"rule": "p(1)", "name": "one"}, {"rule": "q(x) :- p(x)"}]}),
        201)
    assert [r["rule"] for r in body["rules"]] == ["p(1)", "q(x) :- p(x)"]
    assert all(set(r) == RULE_KEYS for r in body["rules"])


def test_policy_list_and_show(client):
    # ListPolicy: columns id, name, owner_id, kind, description; ShowPolicy resolves names
    # through the list (get_resource_id_from_name reads 'id' and 'name') then GETs by id
    policies = results(client.get("/v1/policies"))
    assert [p["name"] for p in policies] == ["classification", "action"]
    assert all(set(p) == POLICY_KEYS for p in policies)
    shown = ok(client.get(f"/v1/policies/{policies[0]['id']}"))
    assert shown == policies[0]
    assert ok(client.get("/v1/policies/classification")) == policies[0]


def test_policy_delete_answers_the_policy(client):
    created = ok(client.post("/v1/policies", json={"name": "gone"}), 201)
    assert ok(client.delete("/v1/policies/gone")) == created
    congress_error(client.get(f"/v1/policies/{created['id']}"), 404)


@pytest.mark.parametrize("name", ["classification", "action"])
def test_system_policies_cannot_be_deleted(client, name):
    # Congress: "Cannot delete system-maintained policy ..." (its KeyError: a 404)
    message = congress_error(client.delete(f"/v1/policies/{name}"), 404)
    assert message == f"Cannot delete system-maintained policy {name}"
    assert name in [p["name"] for p in results(client.get("/v1/policies"))]


# ---------------------------------------------------------------- rules


def test_rule_create_list_show_delete(client):
    # CreatePolicyRule prints the answer; ListPolicyRules reads id, name (.get), comment
    # (indexed: must be present) and rule; Show/DeletePolicyRule resolve names via the list
    named = ok(client.post("/v1/policies/classification/rules",
                           json={"rule": "p(1)", "name": "one", "comment": "c"}), 201)
    assert named == {"id": named["id"], "name": "one", "rule": "p(1)", "comment": "c"}
    plain = ok(client.post("/v1/policies/classification/rules", json={"rule": "q(2)"}), 201)
    assert plain == {"id": plain["id"], "name": None, "rule": "q(2)", "comment": ""}
    rules = results(client.get("/v1/policies/classification/rules"))
    assert rules == [named, plain]
    assert ok(client.get(f"/v1/policies/classification/rules/{named['id']}")) == named
    assert ok(client.delete(f"/v1/policies/classification/rules/{plain['id']}")) == plain
    assert results(client.get("/v1/policies/classification/rules")) == [named]


# ---------------------------------------------------------------- tables and rows


def test_policy_tables(fleet):
    # ListPolicyTables: column id; ShowPolicyTable prints the items
    assert results(fleet.get("/v1/policies/cap/tables")) == [{"id": "error"}, {"id": "load"}]
    assert ok(fleet.get("/v1/policies/cap/tables/error")) == {"id": "error"}
    congress_error(fleet.get("/v1/policies/cap/tables/nosuch"), 404)


def test_policy_rows_and_trace(fleet):
    # ListPolicyRows: answer['results'][i]['data'], and answer['trace'] (a str) if present;
    # the client asks with ?trace=True
    assert results(fleet.get("/v1/policies/cap/tables/error/rows")) == [
        {"data": ["h1", 2, 1]}]
    traced = ok(fleet.get("/v1/policies/cap/tables/error/rows?trace=True"))
    assert set(traced) == {"results", "trace"}
    assert traced["results"] == [{"data": ["h1", 2, 1]}]
    assert isinstance(traced["trace"], str) and traced["trace"].startswith("error: 1 rows")
    # rows pushed that clear the violation
    ok(fleet.put("/v1/data-sources/fleet/tables/hosts/rows", json=[["h1", 2]]))
    assert results(fleet.get("/v1/policies/cap/tables/error/rows")) == []


@pytest.mark.parametrize("flags, expected", [
    ("trace=False&delta=False", {"result": ['error("h1", 3, 1)']}),
    ("trace=False&delta=True", {"result": ['error+("h1", 3, 1)', 'error-("h1", 2, 1)']}),
])
def test_simulate(fleet, flags, expected):
    # SimulatePolicy: POST ?action=simulate&trace=<bool>&delta=<bool> with query, sequence,
    # action_policy; prints each of results['result'], then results['trace'] if present
    body = {"query": "error(h, n, c)", "sequence": 'fleet:servers+("vm3", "h1")',
            "action_policy": "action"}
    assert ok(fleet.post(f"/v1/policies/cap?action=simulate&{flags}", json=body)) == expected


def test_simulate_with_trace(fleet):
    body = {"query": "error(h, n, c)", "sequence": 'fleet:hosts-("h1", 1)',
            "action_policy": "action"}
    answer = ok(fleet.post("/v1/policies/cap?action=simulate&trace=True&delta=True",
                           json=body))
    assert set(answer) == {"result", "trace"}
    assert answer["result"] == ['error-("h1", 2, 1)'] and isinstance(answer["trace"], str)


# ---------------------------------------------------------------- datasources


def test_datasource_create_list_show_delete(client):
    # CreateDatasource sends name, driver, config (None without --config) and description;
    # ListDatasources: columns id, name, enabled, driver, config (a dict)
    created = ok(client.post("/v1/data-sources", json={
        "name": "mon", "driver": "push", "config": {"persist_data": "True"},
        "description": "alarms"}), 201)
    assert created == {"id": created["id"], "name": "mon", "driver": "push",
                       "description": "alarms", "enabled": True,
                       "config": {"persist_data": "True"}}
    assert results(client.get("/v1/data-sources")) == [created]
    assert ok(client.get("/v1/data-sources/mon")) == created
    # DeleteDatasource first tries the name as given, then the id from the list
    assert ok(client.delete("/v1/data-sources/mon"))["id"] == created["id"]
    assert results(client.get("/v1/data-sources")) == []


def test_datasource_tables_schema_rows(fleet):
    # ListDatasourceTables: column id; ShowDatasourceTable prints the items;
    # ShowDatasourceSchema: body['tables'][i]['table_id'] and ['columns'];
    # ShowDatasourceTableSchema / ListDatasourceRows: body['columns'][i]['name'] and
    # ['description'], rows in body['results'][i]['data']
    assert results(fleet.get("/v1/data-sources/fleet/tables")) == [
        {"id": "hosts"}, {"id": "servers"}]
    assert ok(fleet.get("/v1/data-sources/fleet/tables/hosts")) == {"id": "hosts"}
    columns = [{"name": "col0", "description": ""}, {"name": "col1", "description": ""}]
    assert ok(fleet.get("/v1/data-sources/fleet/schema")) == {"tables": [
        {"table_id": "hosts", "columns": columns}, {"table_id": "servers", "columns": columns}]}
    assert ok(fleet.get("/v1/data-sources/fleet/tables/hosts/spec")) == {
        "table_id": "hosts", "columns": columns}
    assert results(fleet.get("/v1/data-sources/fleet/tables/servers/rows")) == [
        {"data": ["vm1", "h1"]}, {"data": ["vm2", "h1"]}]


def test_datasource_row_update_takes_a_list_of_rows(fleet):
    # UpdateDatasourceRow: PUT the parsed JSON argument, e.g. [["a", "b"], ...]
    assert fleet.put("/v1/data-sources/fleet/tables/servers/rows",
                     json=[["vm9", "h2"]]).status_code == 200
    assert results(fleet.get("/v1/data-sources/fleet/tables/servers/rows")) == [
        {"data": ["vm9", "h2"]}]


def test_datasource_status_actions_refresh(fleet):
    # ShowDatasourceStatus prints the items; ShowDatasourceActions reads results[i]['name'],
    # ['args'] and ['description']; DatasourceRequestRefresh POSTs {} with
    # ?action=request-refresh to the id it found in the list
    status = ok(fleet.get("/v1/data-sources/fleet/status"))
    assert status["initialized"] is True and status["number_of_updates"] == 2
    assert results(fleet.get("/v1/data-sources/fleet/actions")) == []
    ds_id = results(fleet.get("/v1/data-sources"))[0]["id"]
    assert ok(fleet.post(f"/v1/data-sources/{ds_id}?action=request-refresh", json={})) == {}
    message = congress_error(fleet.post("/v1/data-sources/fleet?action=execute",
                                        json={"name": "pause", "args": {}}), 400)
    assert "has no action 'pause'" in message


def test_drivers(client):
    # ListDrivers: columns id, description; ShowDriverConfig deletes data['tables'] (so it
    # must be there) and prints the rest; ShowDriverSchema reads tables[i]['table_id'] and
    # ['columns']
    drivers = results(client.get("/v1/system/drivers"))
    assert all(set(d) == {"id", "description"} for d in drivers)
    assert "push" in [d["id"] for d in drivers]
    push = ok(client.get("/v1/system/drivers/push"))
    assert {"id", "description", "config", "secret", "module", "tables"} <= set(push)
    assert push["tables"] == [] and isinstance(push["config"], dict)


# ---------------------------------------------------------------- library policies


def test_library_list_show_create_delete(client):
    # list_library_policy / show_library_policy send ?include_rules=True or False
    listed = results(client.get("/v1/librarypolicies?include_rules=False"))
    assert listed and all("rules" not in p for p in listed)
    assert all(p["rules"] for p in results(client.get("/v1/librarypolicies?include_rules=True")))
    body = {"name": "L", "description": "d",
            "rules": [{"rule": "p(1)", "name": "r", "comment": "c"}]}
    created = ok(client.post("/v1/librarypolicies", json=body), 201)
    assert {"id", "name", "description", "abbreviation", "kind", "rules"} == set(created)
    assert created["rules"] == [{"rule": "p(1)", "name": "r", "comment": "c"}]
    assert ok(client.get(f"/v1/librarypolicies/{created['id']}?include_rules=True")) == created
    assert "rules" not in ok(client.get("/v1/librarypolicies/L?include_rules=False"))
    assert ok(client.delete(f"/v1/librarypolicies/{created['id']}"))["name"] == "L"
    congress_error(client.get(f"/v1/librarypolicies/{created['id']}"), 404)


def test_create_policy_from_library(client):
    # create_policy(None, library_policy_id=...): POST /v1/policies?library_policy=<id>, no
    # body; the answer is the policy with its rules
    lib = ok(client.get("/v1/librarypolicies/HostCapacity"))
    r = client.post(f"/v1/policies?library_policy={lib['id']}")
    body = ok(r, 201)
    assert set(body) >= POLICY_KEYS and body["name"] == "HostCapacity"
    assert [x["rule"] for x in body["rules"]] == [x["rule"] for x in lib["rules"]]
    assert all(set(x) == RULE_KEYS for x in body["rules"])


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("method, path, json_body, status, words", [
    ("get", "/v1/policies/nosuch/tables/error/rows", None, 404, "No such policy: nosuch"),
    ("post", "/v1/policies/classification/rules", {"rule": "error(x) :- "}, 400,
     "invalid rule"),
    ("post", "/v1/policies", {"name": "classification"}, 409, "already exists"),
    ("get", "/v1/data-sources/nosuch/tables/t/rows", None, 404, "No such datasource: nosuch"),
])
def test_errors_the_client_prints(client, method, path, json_body, status, words):
    kwargs = {} if json_body is None else {"json": json_body}
    assert words in congress_error(getattr(client, method)(path, **kwargs), status)
