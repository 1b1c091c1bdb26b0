"""What the pack tests share: a small pack written into tmp_path, and a service whose
datasources stand in for a cloud (push datasources with the drivers' tables: Congress's
schema and the columns and tables Charter's drivers add)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.packs.schemas import driver_tables
from tests.api.conftest import make_service, settings  # noqa: F401 (fixture)

PACK_YAML = """\
id: tiny
title: A tiny pack
version: 1.0.0
description: One control over nova, for the tests.
datasources:
  nova:
    tables: [servers, flavors]
parameters:
  allowed_flavors:
    description: Flavors servers may use.
    columns: [{name: name, type: string}]
    default: [m1.small]
controls:
  - id: TINY-001
    title: Server of a flavor that is not allowed
    severity: low
    table: bad_flavor
    columns: [server, project, flavor, detail]
    rationale: Because.
    remediation: Resize it.
    references: [{title: A guide, url: "https://example.org/guide"}]
"""

POLICY = """\
bad_flavor(server, project, flavor, detail) :-
    nova:servers(id=server, tenant_id=project, flavor_id=id),
    nova:flavors(id=id, name=flavor),
    not allowed_flavors(flavor),
    detail = "flavor not allowed"
"""

TESTS = """\
cases:
  - name: a big server fails
    data:
      nova:servers: [{id: vm1, tenant_id: p, flavor_id: f2}]
      nova:flavors: [{id: f2, name: m1.big}]
    expect:
      bad_flavor: [[vm1, p, m1.big, flavor not allowed]]
  - name: a small server passes
    data:
      nova:servers: [{id: vm1, tenant_id: p, flavor_id: f1}]
      nova:flavors: [{id: f1, name: m1.small}]
    expect:
      bad_flavor: []
"""


def write_pack(
    folder: Path,
    pack_yaml: str = PACK_YAML,
    policies: dict[str, str] | None = None,
    tests: dict[str, str] | None = None,
) -> Path:
    """A pack folder: pack.yaml, its .dl files and its test files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pack.yaml").write_text(textwrap.dedent(pack_yaml))
    for name, text in (policies if policies is not None else {"tiny.dl": POLICY}).items():
        (folder / name).write_text(text)
    for name, text in (tests if tests is not None else {"tiny_test.yaml": TESTS}).items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def service(tmp_path):
    svc = make_service(tmp_path)
    yield svc
    svc.close()


@pytest.fixture
def client(service, settings) -> Iterator[TestClient]:  # noqa: F811 (fixture)
    with TestClient(create_app(service, settings), raise_server_exceptions=False) as c:
        yield c


def ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response.json()


def stand_in(client: TestClient, driver: str, rows: dict[str, list] | None = None) -> None:
    """A push datasource named for the driver, with all of the driver's tables and columns
    (Charter's driver's, as packs read them), holding ``rows`` (table -> objects of column:
    value)."""
    schema = {t: list(cols) for t, cols in (driver_tables(driver) or {}).items()}
    ok(
        client.post(
            "/v1/data-sources",
            json={"name": driver, "driver": "push", "config": {"tables": schema}},
        ),
        201,
    )
    for table, table_rows in (rows or {}).items():
        push(client, driver, table, table_rows)


def push(client: TestClient, driver: str, table: str, rows: list) -> None:
    ok(client.put(f"/v1/data-sources/{driver}/tables/{table}/rows", json=rows))
