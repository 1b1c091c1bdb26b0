"""The ``sql`` driver: tables read by SELECT queries from any database SQLAlchemy reaches.

::

    {"url": "postgresql+psycopg://charter@db.example.com/cmdb", "password": "...",
     "tables": {"hosts": {"query": "SELECT name, rack, state FROM hosts"},
                "owners": {"query": "SELECT h.name, o.email FROM hosts h JOIN owners o "
                                    "ON o.id = h.owner", "columns": ["host", "email"]}}}

Read-only by construction: statements other than a single SELECT (or WITH/VALUES/TABLE)
are refused when the datasource is created, each query runs in a transaction that is
rolled back, and on PostgreSQL that transaction is READ ONLY with a statement_timeout of
``timeout_seconds``. The password is a key of its own, encrypted at rest and hidden by the
API; a URL holding one is refused, because the API shows the URL. Without ``columns`` a
table's columns are its query's column names, which the driver asks the database for when
the datasource is created.

Values: bools as "True"/"False" (as Congress's translators), decimals as int or float,
dates and times as ISO text, JSON as text, NaN and infinities as None.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine

from charter.datasources.driver import Column, ConfigOption, Driver, DriverError, Row, TableSpec
from charter.datasources.drivers.config import number, scrub, table_map
from charter.store.secrets import is_secret

EXAMPLE = '{"hosts": {"query": "SELECT name, state FROM hosts", "columns": ["name", "state"]}}'
READ_STATEMENTS = ("SELECT", "WITH", "VALUES", "TABLE")
# Words that write or lock, looked for outside literals, comments and quoted names.
WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|UPSERT|INTO|CREATE|DROP|ALTER|"
                    r"TRUNCATE|GRANT|REVOKE|COPY|CALL|EXEC|EXECUTE|LOCK|VACUUM|ATTACH|PRAGMA|"
                    r"SET|RESET|COMMIT|ROLLBACK)\b", re.IGNORECASE)
# The query goes to the DBAPI as written, without parameters (so a literal % stays one).
RAW = {"no_parameters": True}
NOISE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|--[^\n]*|/\*.*?\*/"
                   r"|\$(\w*)\$.*?\$\1\$", re.DOTALL)


class SqlDriver(Driver):
    driver = "sql"
    description = "Any SQL database SQLAlchemy reaches: one read-only SELECT per table"
    config_options = (
        ConfigOption("url", "SQLAlchemy URL without the password, e.g. "
                     "postgresql+psycopg://user@host:5432/db", required=True),
        ConfigOption("password", "the database password", secret=True),
        ConfigOption("tables", '{table: {"query": "SELECT ...", "columns"?: [name, ...]}} '
                     "(columns default to the query's column names)", required=True),
        ConfigOption("timeout_seconds", "seconds a connection or a query may take",
                     default=10),
        ConfigOption("poll_time", "seconds between polls", default=60),
    )
    poll_seconds = 60

    def check_config(self) -> None:
        super().check_config()
        self._timeout = number(self, "timeout_seconds", 10)
        number(self, "poll_time", self.poll_seconds)
        self._url = self._check_url()
        self._shown = self._url.render_as_string(hide_password=True)
        password = self.config.get("password")
        self._secrets = [password] if isinstance(password, str) else []
        self._queries: dict[str, str] = {}
        declared: dict[str, tuple[str, ...] | None] = {}
        for name, spec in table_map(self, EXAMPLE).items():
            self._queries[name], declared[name] = self._check_table(name, spec)
        self._engine: Engine | None = None
        self._columns: dict[str, tuple[str, ...]] = {}
        missing = [t for t, cols in declared.items() if cols is None]
        if missing:
            try:
                with self._connection(missing[0]) as conn:
                    for table in missing:
                        declared[table] = self._discover(conn, table)
            except DriverError as exc:
                self.close()
                raise DriverError(f"{exc} (reading the query's column names; or list the "
                                  "table's 'columns' in the config)", exc.status) from None
        self._columns = {t: cols for t, cols in declared.items() if cols is not None}

    def _check_url(self) -> URL:
        raw = self.config.get("url")
        try:
            url = sa.make_url(raw) if isinstance(raw, str) else None
        except (sa_exc.ArgumentError, ValueError):
            url = None
        if url is None:
            raise DriverError(f"datasource {self.name}: config 'url' must be an SQLAlchemy "
                              "URL like postgresql+psycopg://user@host:5432/db")
        in_query = [k for k in url.query if is_secret(k)]
        if url.password is not None or in_query:
            bare = url.set(password=None).difference_update_query(in_query)
            raise DriverError(
                f"datasource {self.name}: config 'url' must not hold the password (the API "
                f"shows the url): give url {bare.render_as_string()!r} without it and the "
                "password in config key 'password', which is encrypted and hidden")
        password = self.config.get("password")
        if password is not None and not isinstance(password, str):
            raise DriverError(f"datasource {self.name}: config 'password' must be text")
        return url.set(password=password) if password else url

    def _check_table(self, name: str, spec: Mapping) -> tuple[str, tuple[str, ...] | None]:
        where = f"datasource {self.name}: table {name}"
        unknown = set(spec) - {"query", "columns"}
        if unknown:
            raise DriverError(f"{where} has unknown keys {sorted(unknown)}; use query, columns")
        query = spec.get("query")
        if not isinstance(query, str) or not query.strip():
            raise DriverError(f"{where}: 'query' must be a SELECT statement, e.g. {EXAMPLE}")
        refusal = read_only_problem(query)
        if refusal:
            raise DriverError(f"{where}: {refusal}; the sql driver only reads")
        columns = spec.get("columns")
        if columns is None:
            return query.strip().rstrip(";"), None
        if (not isinstance(columns, list) or not columns
                or not all(isinstance(c, str) and c for c in columns)
                or len(set(columns)) != len(columns)):
            raise DriverError(f"{where}: 'columns' must be a list of distinct column names, "
                              f"e.g. {EXAMPLE}")
        return query.strip().rstrip(";"), tuple(columns)

    # ------------------------------------------------------------ tables

    def tables(self) -> dict[str, TableSpec]:
        return {
            t: TableSpec(t, tuple(Column(c, f"column {i + 1} of the table's query")
                                  for i, c in enumerate(cols)))
            for t, cols in self._columns.items()
        }

    def poll(self) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = {}
        with self._connection(next(iter(self._queries))) as conn:
            for table, query in self._queries.items():
                out[table] = self._read(conn, table, query)
        return out

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # ------------------------------------------------------------ reading

    def engine(self) -> Engine:
        if self._engine is None:
            seconds = max(1, math.ceil(self._timeout))
            backend = self._url.get_backend_name()
            connect_args: dict[str, Any] = {
                "postgresql": {"connect_timeout": seconds},
                "mysql": {"connect_timeout": seconds, "read_timeout": seconds},
                "mariadb": {"connect_timeout": seconds, "read_timeout": seconds},
                "sqlite": {"timeout": self._timeout},
            }.get(backend, {})
            self._engine = sa.create_engine(self._url, connect_args=connect_args,
                                            pool_pre_ping=True, pool_size=1,
                                            pool_timeout=self._timeout) \
                if backend != "sqlite" else sa.create_engine(self._url,
                                                             connect_args=connect_args)
        return self._engine

    def _connection(self, table: str) -> _Connected:
        return _Connected(self, table)

    def _begin(self, conn: Connection) -> None:
        """Start a read-only transaction with a statement deadline, where the database can."""
        backend = conn.dialect.name
        # The first statement opens the transaction (SQLAlchemy's autobegin).
        if backend == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(self._timeout * 1000)}")
        elif backend == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")

    def _read(self, conn: Connection, table: str, query: str) -> list[Row]:
        width = len(self._columns[table])
        try:
            self._begin(conn)
            result = conn.exec_driver_sql(query, execution_options=RAW)
            names = list(result.keys())
            rows = converted(result.fetchall())
        except sa_exc.SQLAlchemyError as exc:
            raise self._error(table, exc) from None
        finally:
            if conn.in_transaction():
                conn.rollback()
        if len(names) != width:
            raise DriverError(self._fail(table, f"the query gives {len(names)} columns "
                                         f"({', '.join(names)}) but the table has {width} "
                                         f"({', '.join(self._columns[table])}); fix the query "
                                         "or the table's columns"), 400)
        return rows

    def _discover(self, conn: Connection, table: str) -> tuple[str, ...]:
        """The column names of ``table``'s query, from the database (rows left unread)."""
        try:
            self._begin(conn)
            result = conn.exec_driver_sql(self._queries[table], execution_options=RAW)
            names = tuple(result.keys())
            result.close()
        except sa_exc.SQLAlchemyError as exc:
            raise self._error(table, exc) from None
        finally:
            if conn.in_transaction():
                conn.rollback()
        if len(set(names)) != len(names) or not all(names):
            raise DriverError(self._fail(table, f"the query's column names {list(names)} are "
                                         "not distinct; give each an alias (AS) or list the "
                                         "table's 'columns'"), 400)
        return names

    def _error(self, table: str, exc: sa_exc.SQLAlchemyError) -> DriverError:
        """A DriverError saying what the database (or the way to it) did wrong."""
        orig = getattr(exc, "orig", None)
        text = " ".join(str(orig if orig is not None else exc).split())
        low = text.lower()
        if any(w in low for w in ("authentication failed", "access denied",
                                  "no password supplied")):
            return DriverError(self._fail(table, f"the credentials were refused: {text}; "
                                          "check the user in url and the password"), 502)
        if "statement timeout" in low or "canceling statement" in low:
            return DriverError(self._fail(table, f"the query ran longer than "
                                          f"timeout_seconds={self._timeout:g}: {text}"), 503)
        # SQLite reports a bad query as an OperationalError too; a server, a lost link.
        sqlite = self._url.get_backend_name() == "sqlite"
        if (isinstance(exc, sa_exc.TimeoutError | sa_exc.InterfaceError)
                or isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
                or isinstance(exc, sa_exc.OperationalError) and not sqlite
                or sqlite and ("locked" in low or "unable to open" in low)):
            return DriverError(self._fail(table, f"cannot reach the database: {text}"), 503)
        return DriverError(self._fail(table, f"the database refused the query: {text}; fix "
                                      "the table's query"), 400)

    def _fail(self, table: str, reason: str) -> str:
        return scrub(f"datasource {self.name}: table {table} ({self._shown}): {reason}",
                     self._secrets)


class _Connected:
    """``with``: a connection of the driver's engine; failing to connect is a DriverError."""

    def __init__(self, driver: SqlDriver, table: str) -> None:
        self.driver, self.table, self.conn = driver, table, None

    def __enter__(self) -> Connection:
        try:
            self.conn = self.driver.engine().connect()
        except sa_exc.SQLAlchemyError as exc:
            raise self.driver._error(self.table, exc) from None
        return self.conn

    def __exit__(self, *exc_info: object) -> None:
        if self.conn is not None:
            self.conn.close()


def read_only_problem(query: str) -> str | None:
    """Why ``query`` is not a single reading statement, or None when it looks like one.

    >>> read_only_problem("SELECT name FROM hosts WHERE note = 'do not DROP'") is None
    True
    >>> read_only_problem("DELETE FROM hosts")
    'the query is a DELETE statement, not a SELECT'
    >>> read_only_problem("SELECT 1; DROP TABLE hosts")
    'the query holds more than one statement'
    """
    bare = NOISE.sub(" ", query).strip().rstrip(";").strip()
    if ";" in bare:
        return "the query holds more than one statement"
    words = bare.lstrip("( \t\r\n").split(None, 1)
    first = words[0].upper() if words else ""
    if first not in READ_STATEMENTS:
        return f"the query is a{'n' if first[:1] in 'AEIOU' else ''} {first or 'empty'} " \
               "statement, not a SELECT"
    word = WRITES.search(bare)
    if word:
        return f"the query uses {word.group(1).upper()}, which writes or locks"
    return None


_PLAIN = frozenset({str, int, type(None)})


def converted(rows: Sequence[Sequence[Any]]) -> list[Row]:
    """``[tuple(value(v) for v in row) for row in rows]``, a column at a time, calling
    ``value`` only for the values it may change (most are text, integers or NULL)."""
    plain = _PLAIN
    columns = [[v if type(v) in plain else value(v) for v in column]
               for column in zip(*rows, strict=True)]
    return list(zip(*columns, strict=True))


def value(v: Any) -> Any:
    """A database value as a table holds it: str/int/float/None."""
    if v is None or isinstance(v, str) or isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, decimal.Decimal):
        if not v.is_finite():
            return None
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dt.date | dt.time | dt.datetime):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).hex()
    if isinstance(v, Mapping | Sequence):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)

