"""Push datasources take object rows: an omitted column is null, an unknown one is a 400."""

from __future__ import annotations

import pytest

from charter.datasources.driver import DriverError
from charter.datasources.push import PushDriver


def error(r) -> dict:
    return r.json()["error"]


@pytest.fixture
def inv(client):
    r = client.post(
        "/v1/data-sources",
        json={
            "name": "inv",
            "driver": "push",
            "config": {"tables": {"servers": ["id", "status", "tenant"]}},
        },
    )
    assert r.status_code == 201, r.text
    rule = 'error(vm, t) :- inv:servers(id=vm, status="ERROR", tenant=t)'
    r = client.post("/v1/policies", json={"name": "ops", "rules": [{"rule": rule}]})
    assert r.status_code == 201, r.text
    return client


def test_object_rows_omitting_columns_hold_null(inv):
    rows = [{"id": "vm1", "status": "ERROR"}, ["vm2", "ERROR", "shop"], {"status": "ACTIVE"}]
    r = inv.put("/v1/data-sources/inv/tables/servers/rows", json=rows)
    assert r.status_code == 200, r.text
    got = inv.get("/v1/data-sources/inv/tables/servers/rows").json()["results"]
    assert sorted((row["data"] for row in got), key=repr) == sorted(
        [["vm1", "ERROR", None], ["vm2", "ERROR", "shop"], [None, "ACTIVE", None]], key=repr
    )
    violations = inv.get("/v1/policies/ops/tables/error/rows").json()["results"]
    assert sorted((row["data"] for row in violations), key=repr) == sorted(
        [["vm1", None], ["vm2", "shop"]], key=repr
    )


def test_an_unknown_column_is_a_400_naming_it_and_nothing_changes(inv):
    assert (
        inv.put(
            "/v1/data-sources/inv/tables/servers/rows", json=[["vm1", "ACTIVE", "shop"]]
        ).status_code
        == 200
    )
    r = inv.put(
        "/v1/data-sources/inv/tables/servers/rows",
        json=[{"id": "vm2"}, {"id": "vm3", "staus": "ERROR"}],
    )
    assert r.status_code == 400
    message = error(r)["message"]
    assert "row 1 of inv:servers has unknown column staus" in message
    assert "did you mean status for staus?" in message
    got = inv.get("/v1/data-sources/inv/tables/servers/rows").json()["results"]
    assert [row["data"] for row in got] == [["vm1", "ACTIVE", "shop"]]


def test_the_webhook_takes_object_rows_too(inv):
    r = inv.post("/v1/data-sources/inv/webhook", json={"tables": {"servers": [{"id": "vm9"}]}})
    assert r.status_code == 200, r.text
    got = inv.get("/v1/data-sources/inv/tables/servers/rows").json()["results"]
    assert [row["data"] for row in got] == [["vm9", None, None]]


def test_object_rows_need_declared_columns():
    driver = PushDriver("loose", {})
    assert driver.rows_for("t", [["a", 1]]) == [("a", 1)]
    with pytest.raises(DriverError, match="declares no columns for t: give rows as lists"):
        driver.rows_for("t", [{"id": "a"}])


def test_the_rows_get_returns_are_still_accepted_back():
    driver = PushDriver("mon", {"tables": {"alarms": ["id", "data"]}})
    assert driver.rows_for("alarms", [{"data": ["a1", "x"]}, {"data": "y"}]) == [
        ("a1", "x"),
        (None, "y"),
    ]
