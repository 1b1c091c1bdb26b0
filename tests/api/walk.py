"""Walking the API: a small world to call every route against, path parameters that name
what is in it, and the committed corpus of valid bodies (tests/api/corpus/*.json).

Shared by the permission walk (test_permissions.py) and the body fuzzer (test_fuzz_bodies.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).parent / "corpus"
PASSWORD = "pw-Zx9-do-not-show"  # a datasource's secret: never in an answer, log or metric
SERVERS = {"tables": {"servers": ["id", "status"]}}
RULE = 'error(vm) :- inv:servers(vm, "ERROR")'


@dataclass(frozen=True)
class Seed:
    """Valid bodies for one operation (``when``: ``?action=...`` or a body qualifier)."""

    name: str
    method: str
    path: str
    when: str | None
    bodies: tuple[Any, ...]

    @property
    def query(self) -> dict[str, str]:
        if self.when and self.when.startswith("?"):
            key, _, value = self.when[1:].partition("=")
            return {key: value}
        return {}


def corpus() -> list[Seed]:
    seeds = []
    for file in sorted(CORPUS_DIR.glob("*.json")):
        data = json.loads(file.read_text())
        seeds.append(Seed(file.stem, data["method"], data["path"], data.get("when"),
                          tuple(data["bodies"])))
    return seeds


def fill(path: str) -> str:
    """A concrete URL for a route template, naming what :func:`build_world` made."""
    table = "servers" if path.startswith("/v1/data-sources") else "error"
    return (path.replace("{policy}", "ops").replace("{rule}", "r1").replace("{ds}", "inv")
            .replace("{lib}", "lib1").replace("{driver}", "push").replace("{table}", table)
            .replace("{pack}", "openstack-security"))


def ok(response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def build_world(client, headers: dict[str, str] | None = None) -> None:
    """A push datasource ``inv`` with rows, a policy ``ops`` with rule ``r1`` and a
    violation, a library policy ``lib1``, and a Prometheus datasource ``prom`` whose config
    holds :data:`PASSWORD` (its server is not there: a refresh fails, and must not say it)."""
    h = headers or {}
    ok(client.post("/v1/data-sources", json={"name": "inv", "driver": "push",
                                             "config": SERVERS}, headers=h), 201)
    ok(client.put("/v1/data-sources/inv/tables/servers/rows",
                  json=[["vm1", "ERROR"], ["vm2", "ACTIVE"]], headers=h))
    ok(client.post("/v1/policies", json={"name": "ops", "rules": [{"rule": RULE, "name": "r1"}]},
                   headers=h), 201)
    ok(client.post("/v1/librarypolicies", json={"name": "lib1", "rules": [{"rule": "p(1)"}]},
                   headers=h), 201)
    ok(client.post("/v1/data-sources", headers=h, json={
        "name": "prom", "driver": "prometheus",
        "config": {"url": "http://127.0.0.1:9", "username": "scraper", "password": PASSWORD,
                   "poll_time": 3600, "timeout_seconds": 1,
                   "tables": {"up": {"query": "up", "labels": ["job"]}}}}), 201)
