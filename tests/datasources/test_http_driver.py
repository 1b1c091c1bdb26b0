"""The ``http`` driver against a real HTTP server (tests/realservices/http_service.py).

First the driver alone (JMESPath mapping, values, both paginations and their guards, auth,
config errors), then through Charter's API: create the datasource, refresh, compare with
what the service serves, change the service, and watch the delta and a violation come
and go.
"""

from __future__ import annotations

import base64

import pytest

from charter.datasources.driver import DriverError
from charter.datasources.drivers.http import HttpDriver
from tests.api import conftest as api
from tests.realservices import http_service as realhttp
from tests.realservices.http_service import JsonService

# The fixtures (assigned, not imported: an import would trip ruff's F811).
client, service, settings = api.client, api.service, api.settings
json_service = realhttp.json_service

TOKEN = "tok-3f9a1c77e2"
HOSTS = {"data": {"items": [
    {"id": "h1", "state": "ACTIVE", "healthy": True, "cores": 8, "load": 0.5,
     "place": {"rack": "r1"}, "tags": ["db", "ssd"]},
    {"id": "h2", "state": "ERROR", "healthy": False, "cores": 4, "load": None,
     "place": {}, "tags": []},
]}}
COLUMNS = {"id": "id", "state": "state", "healthy": "healthy", "cores": "cores",
           "load": "load", "rack": "place.rack", "tags": "tags"}


def config(svc: JsonService, **tables) -> dict:
    return {"base_url": svc.url, "timeout_seconds": 2,
            "tables": tables or {"hosts": {"path": "/v1/hosts", "items": "data.items",
                                           "columns": COLUMNS}}}


def test_items_and_columns_become_rows_with_congress_values(json_service):
    json_service.serve("/v1/hosts", HOSTS)
    driver = HttpDriver("inv", config(json_service))
    assert list(driver.tables()["hosts"].column_names) == list(COLUMNS)
    assert sorted(driver.poll()["hosts"]) == [
        ("h1", "ACTIVE", "True", 8, 0.5, "r1", '["db", "ssd"]'),
        ("h2", "ERROR", "False", 4, None, None, "[]"),
    ]
    driver.close()


def test_the_whole_answer_is_the_list_by_default(json_service):
    json_service.serve("/things", [{"n": 1}, {"n": 2}, "odd"])
    driver = HttpDriver("inv", config(json_service, things={
        "path": "/things", "columns": {"n": "n", "raw": "@"}}))
    assert sorted(driver.poll()["things"], key=repr) == [
        (1, '{"n": 1}'), (2, '{"n": 2}'), (None, "odd")]


def test_page_pagination_reads_until_an_empty_or_short_page(json_service):
    items = [{"id": i} for i in range(7)]

    def page(query):
        start = (int(query["page"]) - 1) * int(query.get("per_page", 3))
        return {"items": items[start:start + int(query.get("per_page", 3))]}

    json_service.serve("/v1/things", page)
    until_empty = HttpDriver("inv", config(json_service, things={
        "path": "/v1/things", "items": "items", "columns": {"id": "id"},
        "pagination": {"type": "page", "param": "page"}}))
    assert sorted(until_empty.poll()["things"]) == [(i,) for i in range(7)]
    assert json_service.hits("/v1/things") == 4  # 3 + 3 + 1, then an empty page
    sized = HttpDriver("inv", config(json_service, things={
        "path": "/v1/things", "items": "items", "columns": {"id": "id"},
        "pagination": {"type": "page", "param": "page", "size_param": "per_page",
                       "size": 5}}))
    assert sorted(sized.poll()["things"]) == [(i,) for i in range(7)]
    assert json_service.requests[-2:] == ["/v1/things?page=1&per_page=5",
                                          "/v1/things?page=2&per_page=5"]  # short page: end


def test_next_links_relative_and_absolute(json_service):
    url = json_service.url
    json_service.serve("/v1/n", {"items": [{"id": 1}], "links": {"next": "/v1/n?cursor=b"}})
    json_service.serve("/v1/n?cursor=b", {"items": [{"id": 2}],
                                          "links": {"next": f"{url}/v1/n?cursor=c"}})
    json_service.serve("/v1/n?cursor=c", {"items": [{"id": 3}], "links": {"next": None}})
    driver = HttpDriver("inv", config(json_service, n={
        "path": "/v1/n", "items": "items", "columns": {"id": "id"},
        "pagination": {"type": "next_link", "next": "links.next"}}))
    assert sorted(driver.poll()["n"]) == [(1,), (2,), (3,)]


def test_a_looping_api_cannot_hang_a_poll(json_service):
    json_service.serve("/loop", {"items": [{"id": 1}], "next": "/loop"})
    driver = HttpDriver("inv", config(json_service, t={
        "path": "/loop", "items": "items", "columns": {"id": "id"},
        "pagination": {"type": "next_link", "next": "next"}}))
    with pytest.raises(DriverError, match="pagination loops") as err:
        driver.poll()
    assert err.value.status == 502

    json_service.serve("/endless", lambda q: {"items": [{"id": q["page"]}]})
    endless = HttpDriver("inv", {**config(json_service, t={
        "path": "/endless", "items": "items", "columns": {"id": "id"},
        "pagination": {"type": "page"}}), "max_pages": 5})
    with pytest.raises(DriverError, match="more than max_pages=5 pages") as err:
        endless.poll()
    assert json_service.hits("/endless") == 5


def test_a_column_expression_failing_on_an_item_names_the_column(json_service):
    json_service.serve("/v1/hosts", HOSTS)  # h2's load is null: length(null) is a type error
    driver = HttpDriver("inv", config(json_service, hosts={
        "path": "/v1/hosts", "items": "data.items",
        "columns": {"id": "id", "n": "length(tags)", "bad": "length(load)"}}))
    with pytest.raises(DriverError) as err:
        driver.poll()
    assert "table hosts" in str(err.value)
    assert "column bad: JMESPath 'length(load)' fails on an item" in str(err.value)
    assert "fix the column's expression" in str(err.value) and err.value.status == 502
    ok = HttpDriver("inv", config(json_service, hosts={
        "path": "/v1/hosts", "items": "data.items",
        "columns": {"id": "id", "n": "length(tags)", "first": "tags[0]", "c": "`7`"}}))
    assert sorted(ok.poll()["hosts"]) == [("h1", 2, "db", 7), ("h2", 0, None, 7)]


def test_a_next_link_to_another_host_is_not_followed(json_service):
    json_service.serve("/v1/n", {"items": [], "next": "http://198.51.100.7/steal"})
    driver = HttpDriver("inv", {**config(json_service, n={
        "path": "/v1/n", "items": "items", "columns": {"id": "id"},
        "pagination": {"type": "next_link", "next": "next"}}),
        "auth": {"type": "bearer", "token": TOKEN}})
    with pytest.raises(DriverError, match="does not send its credentials elsewhere"):
        driver.poll()


def test_bearer_basic_and_header_credentials_are_sent(json_service):
    json_service.serve("/v1/hosts", HOSTS)
    bearer = HttpDriver("inv", {**config(json_service), "headers": {"X-Api-Key": "k-123"},
                                "auth": {"type": "bearer", "token": TOKEN}})
    bearer.poll()
    sent = json_service.headers[-1]
    assert sent["authorization"] == f"Bearer {TOKEN}" and sent["x-api-key"] == "k-123"
    basic = HttpDriver("inv", {**config(json_service),
                               "auth": {"type": "basic", "username": "ops", "password": "pw1"}})
    basic.poll()
    assert json_service.headers[-1]["authorization"] == \
        "Basic " + base64.b64encode(b"ops:pw1").decode()


def test_json_text_config_from_the_cli_is_accepted(json_service):
    import json

    json_service.serve("/v1/hosts", HOSTS)
    cfg = config(json_service)
    driver = HttpDriver("inv", {**cfg, "tables": json.dumps(cfg["tables"]),
                                "timeout_seconds": "2", "verify": "false"})
    assert len(driver.poll()["hosts"]) == 2


@pytest.mark.parametrize(("change", "message"), [
    ({"base_url": "ftp://x"}, "'base_url' must be an http(s) URL"),
    ({"base_url": "http://ops:pw@api.example.com"}, "must not hold credentials"),
    ({"base_url": "http://api.example.com/?key=k1"}, "must not hold credentials or a query"),
    ({"tables": {"t": {"path": "/x", "columns": {"a": "a"}, "params": {"api_key": "k1"}}}},
     "'params' ['api_key'] look like credentials"),
    ({"tables": {}}, "'tables' must map each table name"),
    ({"tables": {"bad name": {"path": "/x", "columns": {"a": "a"}}}}, "table name 'bad name'"),
    ({"tables": {"t": {"path": "x", "columns": {"a": "a"}}}}, "'path' must be the API path"),
    ({"tables": {"t": {"path": "/x", "columns": {}}}}, "'columns' must map each column"),
    ({"tables": {"t": {"path": "/x", "columns": {"a": "a[?"}}}},
     "'columns.a' is not valid JMESPath"),
    ({"tables": {"t": {"path": "/x", "items": "data..x", "columns": {"a": "a"}}}},
     "'items' is not valid JMESPath"),
    ({"tables": {"t": {"path": "/x", "columns": {"a": "a"}, "paging": {}}}},
     "unknown keys ['paging']"),
    ({"tables": {"t": {"path": "/x", "columns": {"a": "a"},
                       "pagination": {"type": "cursor"}}}}, "'pagination' must be"),
    ({"tables": {"t": {"path": "/x", "columns": {"a": "a"},
                       "pagination": {"type": "page", "stop_when_empty": False}}}},
     "needs 'size'"),
    ({"auth": {"type": "bearer"}}, "config 'auth' must be"),
    ({"headers": {"X-Count": 3}}, "config 'headers' must map names to strings"),
    ({"timeout_seconds": 0}, "'timeout_seconds' must be a number above 0"),
    ({"poll_time": "soon"}, "'poll_time' must be a number above 0"),
    ({"max_pages": 0}, "'max_pages' must be a number above"),
    ({"tables": '{"t": '}, "config 'tables' is not valid JSON"),
    ({"url": "http://x"}, "has no config key 'url'"),
])
def test_config_mistakes_are_refused_with_the_key_and_the_fix(change, message):
    base = {"base_url": "http://127.0.0.1:9", "tables": {
        "t": {"path": "/x", "items": "items", "columns": {"a": "a"}}}}
    with pytest.raises(DriverError) as err:
        HttpDriver("inv", {**base, **change})
    assert message in str(err.value) and err.value.status == 400


# ---------------------------------------------------------------- through the API

RULE = 'error(h) :- inv:hosts(id=h, state="ERROR")'


def rows(client, ds: str, table: str) -> list[tuple]:
    answer = client.get(f"/v1/data-sources/{ds}/tables/{table}/rows")
    assert answer.status_code == 200, answer.text
    return sorted(tuple(r["data"]) for r in answer.json()["results"])


def violations(client, policy: str) -> list[list]:
    return [v["row"] for v in client.get(f"/v1/policies/{policy}/violations").json()["results"]]


def refresh(client, ds: str):
    return client.post(f"/v1/data-sources/{ds}?action=request-refresh")


def expected(document: dict) -> list[tuple]:
    return sorted((h["id"], h["state"], str(h["healthy"]), h["cores"], h["load"],
                   h["place"].get("rack"), _json(h["tags"])) for h in document["data"]["items"])


def _json(value) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def test_through_the_api_a_change_arrives_as_a_delta_and_a_violation(client, json_service):
    json_service.token = TOKEN
    json_service.serve("/v1/hosts", HOSTS)
    body = {"name": "inv", "driver": "http", "config": {
        **config(json_service), "poll_time": 3600, "headers": {"X-Trace": "charter"},
        "auth": {"type": "bearer", "token": TOKEN}}}
    created = client.post("/v1/data-sources", json=body)
    assert created.status_code == 201, created.text
    shown = created.json()["config"]
    assert shown["auth"] == "<hidden>" and shown["headers"] == "<hidden>"
    assert TOKEN not in client.get("/v1/data-sources/inv").text
    spec = client.get("/v1/data-sources/inv/tables/hosts/spec").json()
    assert [c["name"] for c in spec["columns"]] == list(COLUMNS)
    assert client.post("/v1/policies", json={"name": "ops", "rules": [{"rule": RULE}]}
                       ).status_code == 201

    assert refresh(client, "inv").status_code == 200
    assert rows(client, "inv", "hosts") == expected(HOSTS)
    assert violations(client, "ops") == [["h2"]]
    status = client.get("/v1/data-sources/inv/status").json()
    assert status["initialized"] and status["last_error"] is None
    assert status["rows"] == {"hosts": 2}

    changed = {"data": {"items": [
        {**HOSTS["data"]["items"][0], "state": "ERROR"},
        {**HOSTS["data"]["items"][1], "state": "ACTIVE", "healthy": True},
        {"id": "h3", "state": "ACTIVE", "healthy": True, "cores": 2, "load": 1.25,
         "place": {"rack": "r9"}, "tags": ["new"]}]}}
    json_service.serve("/v1/hosts", changed)
    assert refresh(client, "inv").status_code == 200
    assert rows(client, "inv", "hosts") == expected(changed)
    assert violations(client, "ops") == [["h1"]]

    json_service.serve("/v1/hosts", {"data": {"items": [changed["data"]["items"][2]]}})
    assert refresh(client, "inv").status_code == 200
    assert violations(client, "ops") == []
    history = client.get("/v1/policies/ops/violations?include_resolved=true").json()["results"]
    assert {(tuple(v["row"]), v["resolved_at"] is not None) for v in history} == {
        (("h1",), True), (("h2",), True)}


def test_the_driver_is_listed_with_its_secret_options(client):
    info = client.get("/v1/system/drivers/http").json()
    assert set(info["secret"]) == {"headers", "auth"}
    assert {"base_url", "tables", "timeout_seconds", "poll_time", "max_pages",
            "verify"} <= set(info["config"])
