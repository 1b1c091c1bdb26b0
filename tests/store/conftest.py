"""The store under test, on each backend: a SQLite file in tmp_path, and a fresh database on
a real PostgreSQL server (started once per session by tests/realservices/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from charter.store import Store
from tests.realservices.postgres import empty_database, postgres_url  # noqa: F401 (fixture)

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'charter.db'}"
    return empty_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def secret_key() -> bytes:
    return Store.generate_key()


@pytest.fixture
def store(db_url: str, secret_key: bytes) -> Iterator[Store]:
    """A store freshly opened (and so migrated) on an empty database."""
    with Store(db_url, secret_key=secret_key) as s:
        yield s
