"""The ``prometheus`` driver against a real Prometheus 2.x scraping a real node exporter.

Through Charter's API: the ``targets`` table (PromQL ``up``) must hold what Prometheus
itself answers; stopping the node exporter turns ``up{job="node"}`` to 0, which must arrive
as a delta and a violation, and clear when the exporter is back.
"""

from __future__ import annotations

import pytest

from charter.datasources.driver import DriverError
from charter.datasources.drivers.prometheus import PrometheusDriver
from tests.api import conftest as api
from tests.realservices import prometheus as realprometheus
from tests.realservices.prometheus import Prometheus

# The fixtures (assigned, not imported: an import would trip ruff's F811).
client, service, settings = api.client, api.service, api.settings
prometheus = realprometheus.prometheus

TABLES = {"targets": {"query": "up", "labels": ["job", "instance"]},
          "memory": {"query": "node_memory_MemTotal_bytes", "labels": ["instance"]},
          "answer": {"query": "scalar(vector(42))"}}
RULE = 'error(i) :- prom:targets(job="node", instance=i, value=v), lt(v, 1)'


def rows(client, ds: str, table: str) -> list[tuple]:
    answer = client.get(f"/v1/data-sources/{ds}/tables/{table}/rows")
    assert answer.status_code == 200, answer.text
    return sorted(tuple(r["data"]) for r in answer.json()["results"])


def violations(client, policy: str) -> list[list]:
    return [v["row"] for v in client.get(f"/v1/policies/{policy}/violations").json()["results"]]


def refresh(client, ds: str):
    return client.post(f"/v1/data-sources/{ds}?action=request-refresh")


def reported(prom: Prometheus, expr: str, labels: list[str]) -> list[tuple]:
    """What Prometheus itself answers for ``expr``, as the driver's rows should be."""
    return sorted((*(s["metric"].get(label) for label in labels), float(s["value"][1]))
                  for s in prom.query(expr))


@pytest.mark.prometheus
def test_targets_going_down_arrive_as_a_delta_and_a_violation(client, prometheus):
    created = client.post("/v1/data-sources", json={
        "name": "prom", "driver": "prometheus",
        "config": {"url": prometheus.url, "tables": TABLES, "poll_time": 3600,
                   "timeout_seconds": 2.5}})  # Prometheus gets timeout=2.5 too
    assert created.status_code == 201, created.text
    schema = {t["table_id"]: [c["name"] for c in t["columns"]]
              for t in client.get("/v1/data-sources/prom/schema").json()["tables"]}
    assert schema == {"targets": ["job", "instance", "value"],
                      "memory": ["instance", "value"], "answer": ["value"]}
    assert client.post("/v1/policies", json={"name": "mon", "rules": [{"rule": RULE}]}
                       ).status_code == 201

    assert refresh(client, "prom").status_code == 200
    up = reported(prometheus, "up", ["job", "instance"])
    assert rows(client, "prom", "targets") == up
    assert {(job, v) for job, _, v in up} == {("node", 1.0), ("prometheus", 1.0)}
    assert rows(client, "prom", "memory") == reported(
        prometheus, "node_memory_MemTotal_bytes", ["instance"])
    assert rows(client, "prom", "answer") == [(42.0,)]
    assert violations(client, "mon") == []

    try:
        prometheus.node_exporter.stop()
        prometheus.wait_for_up("node", 0.0)
        assert refresh(client, "prom").status_code == 200
        assert ("node", prometheus.node_target, 0.0) in rows(client, "prom", "targets")
        assert ("node", prometheus.node_target, 1.0) not in rows(client, "prom", "targets")
        assert violations(client, "mon") == [[prometheus.node_target]]
    finally:
        if not prometheus.node_exporter.running:
            prometheus.node_exporter.start()
    prometheus.wait_for_up("node", 1.0)
    assert refresh(client, "prom").status_code == 200
    assert rows(client, "prom", "targets") == reported(prometheus, "up", ["job", "instance"])
    assert violations(client, "mon") == []
    history = client.get("/v1/policies/mon/violations?include_resolved=true").json()["results"]
    assert [(v["row"], v["resolved_at"] is not None) for v in history] == [
        ([prometheus.node_target], True)]


@pytest.mark.prometheus
def test_a_query_prometheus_refuses_names_the_table_and_prometheus_error(client, prometheus):
    created = client.post("/v1/data-sources", json={
        "name": "prom", "driver": "prometheus",
        "config": {"url": prometheus.url, "poll_time": 3600,
                   "tables": {"ok": {"query": "up", "labels": ["job"]},
                              "broken": {"query": "sum(rate(up[1m]", "labels": []}}}})
    assert created.status_code == 201, created.text
    answer = refresh(client, "prom")
    assert answer.status_code == 400
    error = answer.json()["error"]["message"]
    assert "table broken" in error and "parse error" in error and prometheus.url in error
    status = client.get("/v1/data-sources/prom/status").json()
    assert "parse error" in status["last_error"] and status["consecutive_failures"] >= 1


@pytest.mark.prometheus
def test_a_range_query_is_refused_with_the_fix(prometheus):
    driver = PrometheusDriver("prom", {"url": prometheus.url,
                                       "tables": {"t": {"query": "up[1m]"}}})
    with pytest.raises(DriverError, match=r"gives a matrix.*drop the \[range\] selector") as err:
        driver.poll()
    assert err.value.status == 400


@pytest.mark.prometheus
def test_credentials_are_sent_and_never_shown(prometheus, client):
    # Prometheus without auth ignores the header; what matters is that the API hides it.
    created = client.post("/v1/data-sources", json={
        "name": "prom", "driver": "prometheus",
        "config": {"url": prometheus.url, "bearer_token": "bt-77aa01", "poll_time": 3600,
                   "tables": {"t": {"query": "up", "labels": ["job"]}}}})
    assert created.status_code == 201
    assert created.json()["config"]["bearer_token"] == "<hidden>"
    assert refresh(client, "prom").status_code == 200
    assert "bt-77aa01" not in client.get("/v1/data-sources").text


@pytest.mark.parametrize(("change", "message"), [
    ({"url": "127.0.0.1:9090"}, "'url' must be an http(s) URL"),
    ({"url": "http://u:p@127.0.0.1:9090"}, "must not hold credentials"),
    ({"tables": []}, "'tables' must map each table name"),
    ({"tables": {"t": {"labels": ["job"]}}}, "'query' must be a PromQL instant query"),
    ({"tables": {"t": {"query": "up", "labels": ["job", "job"]}}}, "distinct label names"),
    ({"tables": {"t": {"query": "up", "labels": ["value"]}}}, "not 'value'"),
    ({"tables": {"t": {"query": "up", "step": "1m"}}}, "unknown keys ['step']"),
    ({"username": "ops"}, "needs both 'username' and 'password'"),
    ({"bearer_token": "x", "username": "u", "password": "p"}, "not both"),
    ({"timeout_seconds": -1}, "'timeout_seconds' must be a number above 0"),
])
def test_config_mistakes_are_refused_with_the_key_and_the_fix(change, message):
    base = {"url": "http://127.0.0.1:9090", "tables": {"t": {"query": "up"}}}
    with pytest.raises(DriverError) as err:
        PrometheusDriver("prom", {**base, **change})
    assert message in str(err.value) and err.value.status == 400
