"""The service on each backend: SQLite in tmp_path and a real PostgreSQL."""

from __future__ import annotations

import pytest

from tests.realservices.postgres import empty_database, postgres_url  # noqa: F401 (fixture)

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'charter.db'}"
    return empty_database(request.getfixturevalue("postgres_url"))
