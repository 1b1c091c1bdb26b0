"""Failures the operator must be able to act on: bad URLs, unreachable databases."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from charter.lang.errors import CharterError
from charter.store import (
    Conflict,
    NotFound,
    SecretKeyError,
    Store,
    StoreError,
    StoreUnavailable,
)
from tests.realservices.postgres import fresh_database
from tests.store.factories import policy


def test_the_errors_are_charter_errors():
    for error in (Conflict, NotFound, StoreUnavailable, SecretKeyError):
        assert issubclass(error, StoreError)
    assert issubclass(StoreError, CharterError)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url", r"cannot parse the database URL 'not a url'.*sqlite:///PATH"),
        ("postgresql+psycopg://u:hunter2@h:port/db", r"cannot parse .*u:\*\*\*@h:port/db"),
        ("mysql://u:hunter2@db/charter", r"unsupported database URL 'mysql://u:\*\*\*@db/charter'"),
        ("postgresql+asyncpg://u:hunter2@db/c", r"unsupported database URL .*u:\*\*\*@db"),
    ],
)
def test_a_bad_url_is_unavailable_with_the_fix(url: str, says: str):
    with pytest.raises(StoreUnavailable, match=says) as caught:
        Store(url, secret_key=Store.generate_key())
    assert "hunter2" not in str(caught.value)


def test_an_unreachable_server_names_the_url_without_its_password():
    url = "postgresql://charter:hunter2@127.0.0.1:1/charter"  # nothing listens on port 1
    with pytest.raises(StoreUnavailable) as caught:
        Store(url, secret_key=Store.generate_key())
    message = str(caught.value)
    assert "postgresql+psycopg://charter:***@127.0.0.1:1/charter" in message
    assert "hunter2" not in message
    assert "check that the server is running" in message


def test_a_sqlite_file_in_a_missing_directory_is_unavailable(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing' / 'charter.db'}"
    with pytest.raises(StoreUnavailable, match="check that the file's directory exists"):
        Store(url, secret_key=Store.generate_key())


@pytest.mark.postgres
def test_a_missing_postgres_database_is_unavailable(postgres_url: str):
    url = postgres_url.rsplit("/", 1)[0] + "/nope"
    with pytest.raises(StoreUnavailable, match='database "nope" does not exist'):
        Store(url, secret_key=Store.generate_key())


@pytest.mark.postgres
def test_losing_the_database_while_open_is_unavailable_not_a_crash(postgres_url: str):
    with fresh_database(postgres_url) as url:
        store = Store(url, secret_key=Store.generate_key())
        store.create_policy(policy())
        name = url.rsplit("/", 1)[1]
        admin = postgres_url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        with pytest.raises(StoreUnavailable, match=f"cannot use the PostgreSQL database .*{name}"):
            store.list_policies()
        with pytest.raises(StoreUnavailable):
            store.ping()
        store.close()


def test_ping(store: Store):
    store.ping()


def test_a_closed_store_says_so(store: Store):
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_policies()
