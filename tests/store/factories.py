"""Records for tests, with every field filled and ids made up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from charter.store import DatasourceRecord, PolicyRecord, RuleRecord

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def new_id() -> str:
    return str(uuid.uuid4())


def policy(name: str = "classification", **fields) -> PolicyRecord:
    values = {
        "id": new_id(),
        "name": name,
        "abbreviation": name[:5],
        "description": f"the {name} policy",
        "owner_id": "admin",
        "kind": "nonrecursive",
        "created_at": T0,
    } | fields
    return PolicyRecord(**values)


def rule(
    policy_id: str, text: str = "p(x) :- q(x)", name: str | None = None, **fields
) -> RuleRecord:
    values = {
        "id": new_id(),
        "policy_id": policy_id,
        "name": name,
        "rule": text,
        "comment": "",
        "created_at": T0,
    } | fields
    return RuleRecord(**values)


def datasource(name: str = "nova", config: dict | None = None, **fields) -> DatasourceRecord:
    values = {
        "id": new_id(),
        "name": name,
        "driver": "nova",
        "description": f"the {name} datasource",
        "enabled": True,
        "config": config if config is not None else {"auth_url": "http://keystone:5000/v3"},
        "created_at": T0,
    } | fields
    return DatasourceRecord(**values)
