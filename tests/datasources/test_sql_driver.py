"""The ``sql`` driver against a real PostgreSQL 15 (and SQLite in a temp dir).

The driver only reads: writing statements are refused at config time, and what slips
through (a function that writes) fails in the read-only transaction. Through Charter's
API, an inserted row arrives as a delta and a violation, and an update clears it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import psycopg
import pytest

from charter.datasources.driver import DriverError
from charter.datasources.drivers.sql import SqlDriver, read_only_problem
from tests.api import conftest as api
from tests.realservices import postgres as realpostgres
from tests.realservices.postgres import fresh_database

# The fixtures (assigned, not imported: an import would trip ruff's F811).
client, service, settings = api.client, api.service, api.settings
postgres_url = realpostgres.postgres_url

PASSWORD = "pw-5d1e0c9b"


@pytest.fixture
def db(postgres_url) -> Iterator[str]:
    """A database of the test's own, with a ``hosts`` table of two rows."""
    with fresh_database(postgres_url) as url:
        run(url, "CREATE TABLE hosts (name text PRIMARY KEY, rack text, state text, "
                 "cores int)",
            "INSERT INTO hosts VALUES ('h1', 'r1', 'ACTIVE', 8), ('h2', 'r2', 'ACTIVE', 4)")
        yield url


def run(url: str, *statements: str) -> list[tuple]:
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        result: list[tuple] = []
        for statement in statements:
            cur = conn.execute(statement)
            result = cur.fetchall() if cur.description else []
        return result


@pytest.mark.parametrize("query", [
    "SELECT name FROM hosts",
    "  select name from hosts where note = 'please DROP me; now' -- DELETE\n",
    "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    "(SELECT 1) UNION (SELECT 2)",
    "SELECT 'a' || $$it's; DROP$$ AS s;",
    "VALUES (1, 2)",
    'SELECT "update" FROM t',
])
def test_reading_statements_pass(query):
    assert read_only_problem(query) is None


@pytest.mark.parametrize(("query", "problem"), [
    ("DELETE FROM hosts", "a DELETE statement"),
    ("update hosts set state = 'x'", "an UPDATE statement"),
    ("SELECT 1; DROP TABLE hosts", "more than one statement"),
    ("WITH gone AS (DELETE FROM hosts RETURNING *) SELECT * FROM gone", "uses DELETE"),
    ("SELECT * INTO copy FROM hosts", "uses INTO"),
    ("SELECT * FROM hosts FOR UPDATE", "uses UPDATE"),
    ("", "empty"),
])
def test_writing_statements_are_refused(query, problem):
    assert problem in (read_only_problem(query) or "")


@pytest.mark.parametrize(("change", "message"), [
    ({"url": "not a url"}, "'url' must be an SQLAlchemy URL"),
    ({"url": f"postgresql+psycopg://ops:{PASSWORD}@127.0.0.1:9/db"},
     "'url' must not hold the password"),
    ({"url": f"postgresql+psycopg://ops@127.0.0.1:9/db?password={PASSWORD}"},
     "give url 'postgresql+psycopg://ops@127.0.0.1:9/db' without it"),
    ({"tables": {"t": {"query": "TRUNCATE hosts"}}}, "a TRUNCATE statement"),
    ({"tables": {"t": {"query": "SELECT 1", "columns": ["a", "a"]}}}, "distinct column names"),
    ({"tables": {"t": {"query": "SELECT 1", "params": {}}}}, "unknown keys ['params']"),
    ({"tables": {"t t": {"query": "SELECT 1"}}}, "table name 't t'"),
    ({"password": 12}, "'password' must be text"),
])
def test_config_mistakes_are_refused_with_the_key_and_the_fix(change, message):
    base = {"url": "postgresql+psycopg://ops@127.0.0.1:9/db",
            "tables": {"t": {"query": "SELECT 1", "columns": ["one"]}}}
    with pytest.raises(DriverError) as err:
        SqlDriver("cmdb", {**base, **change})
    assert message in str(err.value) and err.value.status == 400
    assert PASSWORD not in str(err.value)


def test_sqlite_tables_read_only(tmp_path):
    path = tmp_path / "cmdb.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE hosts (name text, up boolean, load real)")
        conn.execute("INSERT INTO hosts VALUES ('h1', 1, 0.5), ('h2', NULL, NULL)")
    driver = SqlDriver("cmdb", {"url": f"sqlite:///{path}", "tables": {
        "hosts": {"query": "SELECT name, up, load FROM hosts WHERE load LIKE '%' OR 1"}}})
    assert driver.tables()["hosts"].column_names == ("name", "up", "load")
    assert sorted(driver.poll()["hosts"], key=repr) == [("h1", 1, 0.5), ("h2", None, None)]
    broken = SqlDriver("cmdb", {"url": f"sqlite:///{path}", "tables": {
        "t": {"query": "SELECT nope FROM hosts", "columns": ["nope"]}}})
    with pytest.raises(DriverError, match="no such column: nope") as err:
        broken.poll()
    assert err.value.status == 400
    driver.close()
    broken.close()


@pytest.mark.postgres
def test_columns_default_to_the_query_and_values_are_congress_values(db):
    run(db, "CREATE TABLE things (id uuid, ok boolean, price numeric(6,2), n numeric, "
            "seen timestamptz, doc jsonb, raw bytea, ratio float8)",
        "INSERT INTO things VALUES ('0b7e5c4e-95a3-4a8e-9a55-4c1c9e0d2f11', true, 12.50, 7, "
        "'2026-01-02 03:04:05+00', '{\"b\": [1, 2], \"a\": null}', '\\x0aff', 'NaN')")
    driver = SqlDriver("cmdb", {"url": db, "password": PASSWORD, "tables": {
        "things": {"query": "SELECT id, ok, price, n, seen, doc, raw, ratio AS r, "
                            "price * 2 AS double FROM things"}}})
    assert driver.tables()["things"].column_names == (
        "id", "ok", "price", "n", "seen", "doc", "raw", "r", "double")
    assert driver.poll() == {"things": [(
        "0b7e5c4e-95a3-4a8e-9a55-4c1c9e0d2f11", "True", 12.5, 7,
        "2026-01-02T03:04:05+00:00", '{"a": null, "b": [1, 2]}', "0aff", None, 25)]}
    driver.close()


@pytest.mark.postgres
def test_a_query_that_writes_fails_in_the_read_only_transaction(db):
    run(db, "CREATE SEQUENCE ticket")
    driver = SqlDriver("cmdb", {"url": db, "tables": {
        "t": {"query": "SELECT nextval('ticket') AS n", "columns": ["n"]}}})
    with pytest.raises(DriverError, match="read-only transaction") as err:
        driver.poll()
    assert err.value.status == 400 and "table t" in str(err.value)
    assert run(db, "SELECT nextval('ticket')") == [(1,)]  # never advanced by the driver
    driver.close()


@pytest.mark.postgres
def test_a_slow_query_stops_at_timeout_seconds(db):
    driver = SqlDriver("cmdb", {"url": db, "timeout_seconds": 0.5, "tables": {
        "t": {"query": "SELECT name FROM hosts, pg_sleep(5)", "columns": ["name"]}}})
    with pytest.raises(DriverError, match="ran longer than timeout_seconds=0.5") as err:
        driver.poll()
    assert err.value.status == 503
    driver.close()


@pytest.mark.postgres
def test_messages_mask_the_password_and_name_the_table(db):
    driver = SqlDriver("cmdb", {"url": db, "password": PASSWORD, "tables": {
        "t": {"query": "SELECT missing FROM hosts", "columns": ["m"]}}})
    with pytest.raises(DriverError) as err:
        driver.poll()
    message = str(err.value)
    assert "table t" in message and 'column "missing" does not exist' in message
    assert ":***@" in message and PASSWORD not in message
    driver.close()


@pytest.mark.postgres
def test_width_mismatch_and_unreachable_database(db):
    wrong = SqlDriver("cmdb", {"url": db, "tables": {
        "t": {"query": "SELECT name, rack FROM hosts", "columns": ["name"]}}})
    with pytest.raises(DriverError, match="gives 2 columns .* but the table has 1"):
        wrong.poll()
    wrong.close()
    nowhere = "postgresql+psycopg://postgres@127.0.0.1:9/charter"
    listed = SqlDriver("cmdb", {"url": nowhere, "timeout_seconds": 2, "tables": {
        "t": {"query": "SELECT 1", "columns": ["one"]}}})
    with pytest.raises(DriverError, match="cannot reach the database") as err:
        listed.poll()
    assert err.value.status == 503 and "127.0.0.1:9" in str(err.value)
    with pytest.raises(DriverError, match="list the table's 'columns'") as err:
        SqlDriver("cmdb", {"url": nowhere, "tables": {"t": {"query": "SELECT 1"}}})
    assert err.value.status == 503


# ---------------------------------------------------------------- through the API

RULE = 'error(h) :- cmdb:hosts(name=h, state="ERROR")'


def rows(client, ds: str, table: str) -> list[tuple]:
    answer = client.get(f"/v1/data-sources/{ds}/tables/{table}/rows")
    assert answer.status_code == 200, answer.text
    return sorted(tuple(r["data"]) for r in answer.json()["results"])


def violations(client, policy: str) -> list[list]:
    return [v["row"] for v in client.get(f"/v1/policies/{policy}/violations").json()["results"]]


def refresh(client, ds: str):
    return client.post(f"/v1/data-sources/{ds}?action=request-refresh")


@pytest.mark.postgres
def test_through_the_api_an_inserted_row_arrives_as_a_delta_and_a_violation(client, db):
    query = "SELECT name, rack, state, cores FROM hosts WHERE name LIKE 'h%'"  # a literal %
    created = client.post("/v1/data-sources", json={
        "name": "cmdb", "driver": "sql", "config": {
            "url": db, "password": PASSWORD, "poll_time": 3600,
            "tables": {"hosts": {"query": query}}}})
    assert created.status_code == 201, created.text
    assert created.json()["config"]["password"] == "<hidden>"
    assert PASSWORD not in client.get("/v1/data-sources").text
    assert client.post("/v1/policies", json={"name": "ops", "rules": [{"rule": RULE}]}
                       ).status_code == 201

    assert refresh(client, "cmdb").status_code == 200
    assert rows(client, "cmdb", "hosts") == sorted(run(db, query))
    assert violations(client, "ops") == []

    run(db, "INSERT INTO hosts VALUES ('h3', 'r1', 'ERROR', 16)")
    assert refresh(client, "cmdb").status_code == 200
    assert rows(client, "cmdb", "hosts") == sorted(run(db, query))
    assert ("h3", "r1", "ERROR", 16) in rows(client, "cmdb", "hosts")
    assert violations(client, "ops") == [["h3"]]
    assert client.get("/v1/data-sources/cmdb/status").json()["rows"] == {"hosts": 3}

    run(db, "UPDATE hosts SET state = 'ACTIVE' WHERE name = 'h3'")
    assert refresh(client, "cmdb").status_code == 200
    assert violations(client, "ops") == []
    assert rows(client, "cmdb", "hosts") == sorted(run(db, query))


def test_converting_a_column_at_a_time_is_value_of_each_value():
    import datetime as dt
    import decimal
    import uuid

    from charter.datasources.drivers.sql import converted, value

    cells = ["t", 3, None, True, False, 1.5, float("nan"), float("inf"), decimal.Decimal("2"),
             decimal.Decimal("2.5"), decimal.Decimal("NaN"), dt.date(2026, 1, 2),
             dt.datetime(2026, 1, 2, 3, 4), uuid.UUID(int=7), b"\x01\xff", {"a": [1]}, [1, 2],
             2**80]
    rows = [tuple(cells[(i + j) % len(cells)] for j in range(4)) for i in range(len(cells))]
    assert converted(rows) == [tuple(value(v) for v in row) for row in rows]
    assert converted([]) == []
