"""PATCH .../tables/{table}/rows: a push datasource's rows inserted and deleted as one change.

Set semantics (a row inserted twice, or deleted when absent, changes nothing and is counted),
the PUT's row errors prefixed by the list they are in, nothing applied when any row is bad,
violations opened and closed like any push, and the stored rows equal to the engine's after
a restart.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import make_service

ROWS = "/v1/data-sources/inv/tables/servers/rows"
RULE = 'error(vm) :- inv:servers(id=vm, status="ERROR")'


def ok(r) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def message(r, status: int = 400) -> str:
    assert r.status_code == status, r.text
    return r.json()["error"]["message"]


def rows(client, path: str = ROWS) -> list[list]:
    return sorted((r["data"] for r in ok(client.get(path))["results"]), key=repr)


@pytest.fixture
def inv(client):
    r = client.post("/v1/data-sources", json={
        "name": "inv", "driver": "push", "config": {"tables": {"servers": ["id", "status"]}}})
    assert r.status_code == 201, r.text
    r = client.post("/v1/policies", json={"name": "ops", "rules": [{"rule": RULE}]})
    assert r.status_code == 201, r.text
    ok(client.put(ROWS, json=[["vm1", "ACTIVE"], ["vm2", "ACTIVE"]]))
    return client


def test_insert_delete_and_no_ops_are_counted(inv):
    body = {"insert": [["vm3", "ACTIVE"], {"id": "vm1", "status": "ACTIVE"}, ["vm3", "ACTIVE"]],
            "delete": [["vm2", "ACTIVE"], ["vm9", "ACTIVE"]]}
    assert ok(inv.patch(ROWS, json=body)) == {"inserted": 1, "deleted": 1, "unchanged": 2}
    assert rows(inv) == [["vm1", "ACTIVE"], ["vm3", "ACTIVE"]]
    assert ok(inv.patch(ROWS, json=body)) == {"inserted": 0, "deleted": 0, "unchanged": 4}
    assert ok(inv.patch(ROWS, json={})) == {"inserted": 0, "deleted": 0, "unchanged": 0}
    assert rows(inv) == [["vm1", "ACTIVE"], ["vm3", "ACTIVE"]]


def test_a_violation_opens_and_closes_through_patches(inv):
    ok(inv.patch(ROWS, json={"insert": [["vm2", "ERROR"]], "delete": [["vm2", "ACTIVE"]]}))
    assert rows(inv, "/v1/policies/ops/tables/error/rows") == [["vm2"]]
    current = ok(inv.get("/v1/policies/ops/violations"))["results"]
    assert [(v["table"], v["row"], v["resolved_at"]) for v in current] == [
        ("error", ["vm2"], None)]
    ok(inv.patch(ROWS, json={"delete": [{"id": "vm2", "status": "ERROR"}]}))
    assert rows(inv, "/v1/policies/ops/tables/error/rows") == []
    assert ok(inv.get("/v1/policies/ops/violations"))["results"] == []
    history = ok(inv.get("/v1/policies/ops/violations?include_resolved=true"))["results"]
    assert [(v["row"], v["resolved_at"] is not None) for v in history] == [(["vm2"], True)]


@pytest.mark.parametrize("body, words", [
    ({"insert": [["vm5", "ERROR"], ["vm6"]]},
     '"insert": row 1 of inv:servers has 1 values; the table has 2 columns (id, status): '
     "give one value per column"),
    ({"insert": [["vm5", "ERROR"]], "delete": [["vm1", "ACTIVE"], "vm2"]},
     "\"delete\": row 1 of inv:servers is not a list or an object: 'vm2'; give it as "
     '[value, ...] or {"column": value, ...}'),
    ({"insert": [["vm5", "ERROR"]], "delete": None},
     '"delete": the rows of inv:servers must be a JSON list of lists or objects, got null: '
     "send [[value, ...], ...]"),
    ([["vm5", "ERROR"]],
     'a patch of rows must be a JSON object, not list: send {"insert": [[value, ...], ...], '
     '"delete": [[value, ...], ...]}'),
    ({"insert": [["vm5", "ERROR"]], "delete": [["vm1", "ACTIVE"], ["vm2", "A"], ["x", {}]]},
     '"delete": row 2 of inv:servers holds {}; values must be strings, numbers, booleans or '
     "null"),
    ({"insert": [["vm5", "ERROR"], {"id": "vm6", "staus": "ERROR"}]},
     '"insert": row 1 of inv:servers has unknown column staus'),
    ({"delete": {"id": "vm1"}},
     '"delete": the rows of inv:servers must be a JSON list of lists or objects, got '
     "object: send [[value, ...], ...]"),
    ({"insert": [], "upsert": []}, "unknown patch fields ['upsert']; use insert, delete"),
])
def test_a_bad_row_is_a_400_naming_it_and_nothing_changes(inv, body, words):
    assert words in message(inv.patch(ROWS, json=body))
    assert rows(inv) == [["vm1", "ACTIVE"], ["vm2", "ACTIVE"]]
    assert rows(inv, "/v1/policies/ops/tables/error/rows") == []


def test_a_row_both_inserted_and_deleted_is_a_400_naming_it(inv):
    body = {"insert": [["vm5", "ERROR"], ["vm1", "ERROR"]],
            "delete": [["vm2", "ACTIVE"], {"id": "vm1", "status": "ERROR"}]}
    assert message(inv.patch(ROWS, json=body)) == (
        "row ['vm1', 'ERROR'] of inv:servers is both inserted (insert row 1) and deleted "
        "(delete row 1); a patch is one change: give each row in one list")
    assert rows(inv) == [["vm1", "ACTIVE"], ["vm2", "ACTIVE"]]


def test_an_unknown_table_or_datasource(inv):
    r = inv.patch("/v1/data-sources/inv/tables/nope/rows", json={"insert": [["a", "b"]]})
    assert message(r) == "datasource inv has no table 'nope'; its tables: servers"
    r = inv.patch("/v1/data-sources/nope/tables/servers/rows", json={"insert": []})
    assert message(r, 404) == "No such datasource: nope"


def test_a_polled_datasource_takes_no_patch(inv):
    r = inv.post("/v1/data-sources", json={
        "name": "prom", "driver": "prometheus",
        "config": {"url": "http://127.0.0.1:9", "poll_time": 3600, "timeout_seconds": 1,
                   "tables": {"up": {"query": "up", "labels": ["job"]}}}})
    assert r.status_code == 201, r.text
    r = inv.patch("/v1/data-sources/prom/tables/up/rows", json={"insert": [["a", 1]]})
    assert message(r) == ("datasource prom (driver prometheus) is polled; only push "
                          "datasources take rows through the API")


def test_a_schemaless_table_takes_its_width_from_its_rows(client):
    r = client.post("/v1/data-sources", json={"name": "mon", "driver": "push"})
    assert r.status_code == 201, r.text
    path = "/v1/data-sources/mon/tables/alarms/rows"
    assert ok(client.patch(path, json={"insert": [["a", 1], ["b", 2]]}))["inserted"] == 2
    assert '"delete": row 0 of mon:alarms has 3 values; the table has 2 columns' in message(
        client.patch(path, json={"delete": [["a", 1, 0]]}))
    ok(client.patch(path, json={"delete": [["a", 1]]}))
    assert rows(client, path) == [["b", 2]]


def test_a_restart_restores_exactly_the_patched_rows(tmp_path, inv):
    ok(inv.put(ROWS, json=[[f"vm{i}", "ACTIVE"] for i in range(20)]))
    ok(inv.patch(ROWS, json={"insert": [["vm20", "ERROR"], ["vm21", "ACTIVE"]],
                             "delete": [["vm0", "ACTIVE"], ["vm1", "ACTIVE"]]}))
    ok(inv.patch(ROWS, json={"insert": [["vm0", "ERROR"]], "delete": [["vm20", "ERROR"]]}))
    ok(inv.put(ROWS, json=[[f"vm{i}", "ACTIVE"] for i in range(10, 22)] + [["vm0", "ERROR"]]))
    ok(inv.patch(ROWS, json={"insert": [["vm1", 1.5], ["vm2", None], ["vm3", True]],
                             "delete": [["vm10", "ACTIVE"]]}))
    expected = rows(inv)
    assert expected == sorted(
        [[f"vm{i}", "ACTIVE"] for i in range(11, 22)]
        + [["vm0", "ERROR"], ["vm1", 1.5], ["vm2", None], ["vm3", True]], key=repr)
    inv.app.state.service.close()  # the fixture's service is closed again: a no-op
    restarted = make_service(tmp_path)
    try:
        got = sorted((list(r) for r in restarted.datasources.rows("inv", "servers")), key=repr)
        assert got == expected
        assert [type(v) for r in got for v in r] == [type(v) for r in expected for v in r]
        assert restarted.engine.query("ops:error(x)") == [("vm0",)]
    finally:
        restarted.close()


def test_the_store_writes_what_a_push_or_a_patch_changed(inv):
    """A PATCH, and a PUT changing a few rows, add an entry to the table's log; a PUT that
    replaces most of the table writes it whole, from the engine's rows."""
    from sqlalchemy import func, select

    from charter.store import tables as t

    store = inv.app.state.service.store

    def stored() -> tuple[int, int, int]:
        with store._engine.connect() as conn:
            base_rows, entries = conn.execute(
                select(t.push_tables.c.base_rows, t.push_tables.c.log_entries)).one()
            return base_rows, entries, conn.scalar(select(func.count()).select_from(t.push_log))

    table = [[f"vm{i}", "ACTIVE"] for i in range(200)]
    ok(inv.put(ROWS, json=table))
    assert stored() == (200, 0, 0)  # the PUT changed most rows: a new base
    ok(inv.patch(ROWS, json={"insert": [["vm200", "ERROR"]], "delete": [["vm0", "ACTIVE"]]}))
    assert stored() == (200, 1, 1)
    table = table[1:] + [["vm200", "ERROR"], ["vm201", "ACTIVE"]]
    ok(inv.put(ROWS, json=table))
    assert stored() == (200, 2, 2)
    ds_id = inv.app.state.service.datasources.get("inv").record.id
    assert sorted(map(list, store.load_tables(ds_id)["servers"])) == sorted(table)
    ok(inv.put(ROWS, json=[[f"new{i}", "ACTIVE"] for i in range(150)]))
    assert stored() == (150, 0, 0)
