"""GET /v1/violations (JSON and CSV, paging, export), /summary and /history through the
app, against a real service and store."""

from __future__ import annotations

import csv
import io

import pytest

from charter.api import violations as violations_api


def ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response


@pytest.fixture
def loaded(client):
    ok(
        client.post(
            "/v1/data-sources",
            json={
                "name": "inv",
                "driver": "push",
                "config": {"tables": {"servers": ["id", "tenant", "n"]}},
            },
        ),
        201,
    )
    ok(
        client.post(
            "/v1/policies",
            json={
                "name": "ops",
                "rules": [
                    {"rule": "error(id, t) :- inv:servers(id=id, tenant=t, n=k), k > 0"},
                    {"rule": "warning(id) :- inv:servers(id=id, n=0)"},
                ],
            },
        ),
        201,
    )
    rows = [[f"vm{i}", "=cmd" if i == 4 else f"t{i % 4}", i % 3] for i in range(40)]
    ok(client.put("/v1/data-sources/inv/tables/servers/rows", json=rows))
    return client


def test_json_page_and_total(loaded):
    body = ok(
        loaded.get(
            "/v1/violations", params={"table": "error", "sort": "row", "offset": 2, "limit": 5}
        )
    ).json()
    assert body["total"] == 26 and body["offset"] == 2 and body["limit"] == 5
    first = body["violations"][0]
    assert first["policy"] == "ops" and first["columns"] == ["id", "t"]
    assert first["datasources"] == ["inv"] and first["severity"] is None
    assert [v["row"][0] for v in body["violations"]] == ["vm11", "vm13", "vm14", "vm16", "vm17"]


def test_csv_equals_json(loaded):
    params = {"policy": "ops", "sort": "-row", "limit": "all"}
    rows = ok(loaded.get("/v1/violations", params=params)).json()["violations"]
    response = ok(loaded.get("/v1/violations", params=params, headers={"Accept": "text/csv"}))
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0][:4] == ["policy", "table", "severity", "first_seen"]
    assert len(lines) == len(rows) + 1 == 41
    for line, v in zip(lines[1:], rows, strict=True):
        values = ["'" + x if isinstance(x, str) and x.startswith("=") else str(x) for x in v["row"]]
        assert line[:4] == [v["policy"], v["table"], "", v["first_seen"]]
        assert line[4 : 4 + len(values)] == values
    assert any(cell == "'=cmd" for line in lines for cell in line)
    same = ok(loaded.get("/v1/violations", params={**params, "format": "csv"})).text
    assert same == response.text


def test_export_cap(loaded, monkeypatch):
    monkeypatch.setattr(violations_api, "EXPORT_CAP", 10)
    response = loaded.get("/v1/violations", params={"limit": "all"})
    assert response.status_code == 400
    assert "more than limit=all exports (10)" in response.json()["error"]["message"]
    assert (
        ok(loaded.get("/v1/violations", params={"limit": "all", "offset": 35})).json()["total"]
        == 40
    )


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"sort": "when"}, "sort"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"limit": "0"}, "limit"),
        ({"limit": "5000"}, "limit"),
        ({"severity": "severe"}, "severity"),
        ({"table": "errors"}, "table"),
    ],
)
def test_bad_parameters(loaded, params, name):
    response = loaded.get("/v1/violations", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["error_code"] == 400 and error["error_data"]["parameter"] == name
    assert f"'{name}'" in error["message"] and "use " in error["message"]


def test_summary_and_history(loaded):
    out = ok(loaded.get("/v1/violations/summary")).json()
    assert out["total"] == 40 and out["by_table"] == {"error": 26, "warning": 14}
    assert out["by_policy"] == {"ops": 40} and out["datasources"] == []
    hist = ok(loaded.get("/v1/violations/history", params={"window": "week", "recent": 3})).json()
    assert hist["bucket_seconds"] == 4 * 3600 and len(hist["series"]) == 42
    assert hist["series"][-1]["open"] == 40
    assert len(hist["recent"]) == 3 and hist["recent"][0]["event"] == "appeared"
    bad = loaded.get("/v1/violations/history", params={"window": "year"})
    assert bad.status_code == 400 and "'window'" in bad.json()["error"]["message"]
