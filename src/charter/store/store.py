"""The store: everything the service keeps across restarts, behind one small API.

Each method is one database transaction, committed (on SQLite: on disk, ``synchronous=FULL``)
before it returns, so a write happens whole or not at all, whatever kills the process. Values
go in and come out as the frozen dataclasses of :mod:`charter.store.records`; rows as tuples
whose values keep their Python types.

>>> from datetime import UTC, datetime
>>> store = Store("sqlite://", secret_key=Store.generate_key())
>>> now = datetime(2025, 1, 1, tzinfo=UTC)
>>> store.create_policy(PolicyRecord("p-1", "classification", "", "", "admin", "nonrecursive", now),
...                     [RuleRecord("r-1", "p-1", "err", 'error(x) :- nova:servers(id=x, status="ERROR")', "", now)])
>>> [r.rule for r in store.list_rules("p-1")]
['error(x) :- nova:servers(id=x, status="ERROR")']
>>> store.record_violations("classification", "error", [("vm-1",)], [], now)
>>> store.violations("classification")[0].row
('vm-1',)
>>> store.close()
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any, Self, TypeVar

from sqlalchemy import Connection, Row, Table, delete, exc, insert, or_, select, update

from charter.store import connect, migrate
from charter.store import tables as t
from charter.store.errors import (
    Conflict,
    NotFound,
    SecretKeyError,
    StoreError,
    StoreUnavailable,
)
from charter.store.records import (
    AuditRecord,
    DatasourceRecord,
    LibraryPolicyRecord,
    PolicyRecord,
    RuleRecord,
    ViolationRecord,
)
from charter.store.rows import decode_row, decode_rows, encode_row, encode_rows, encoded_key
from charter.store.secrets import SecretBox

__all__ = [
    "Conflict",
    "NotFound",
    "SecretKeyError",
    "Store",
    "StoreError",
    "StoreUnavailable",
]

R = TypeVar("R")

_KEY_CHECK = "secret_key_check"
_CHUNK = 500  # values per IN (...) list: far below SQLite's and PostgreSQL's parameter limits


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = list(values)
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _first_line(error: BaseException | None) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _columns(table: Table, record: type) -> list:
    """The columns of ``table`` named like the fields of ``record``, in field order."""
    return [table.c[f.name] for f in fields(record)]


def _record(record: type[R], row: Row) -> R:
    return record(**row._mapping)


class Store:
    """Charter's persistent state in SQLite (the default) or PostgreSQL.

    ``url`` is a SQLAlchemy URL: ``sqlite:///PATH`` (``sqlite://`` for a throw-away in-memory
    store) or ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB``. Opening migrates the schema
    to the newest revision. ``secret_key`` is the Fernet key that encrypts datasource secrets;
    a store refuses a key other than the one it was first opened with.

    Safe to share between threads. Writes are serialized within the process.
    """

    def __init__(self, url: str, *, secret_key: bytes) -> None:
        self._url = connect.parse_url(url)
        self._box = SecretBox(secret_key)
        self._engine = connect.create(self._url)
        # One writer at a time: SQLite allows no more anyway, and on PostgreSQL it keeps each
        # method's checks (is the name free?) and writes together. A shared in-memory SQLite
        # connection cannot interleave transactions at all, so there reads take the lock too.
        self._write_lock = threading.Lock()
        self._read_lock: AbstractContextManager[Any] = (
            self._write_lock if connect.is_memory(self._url) else nullcontext()
        )
        self._closed = False
        try:
            with self._translate():
                migrate.upgrade(self._engine)
            self._check_key()
        except BaseException:
            self._engine.dispose()
            raise

    @staticmethod
    def generate_key() -> bytes:
        """A new random secret key, to keep (e.g. in the service's config) for every open."""
        return SecretBox.generate_key()

    @property
    def url(self) -> str:
        """The database URL, password masked: fit for logs."""
        return connect.describe(self._url)

    def ping(self) -> None:
        """Round-trip to the database (health checks); raises StoreUnavailable if down."""
        with self._tx(write=False) as conn:
            conn.exec_driver_sql("SELECT 1")

    def close(self) -> None:
        """Close every pooled connection; the store cannot be used afterwards."""
        self._closed = True
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn SQLAlchemy's exceptions into the store's."""
        try:
            yield
        except exc.IntegrityError as e:
            # The checks before each write give the precise message; this is the rare race
            # with another process writing the same database.
            raise Conflict(
                f"the write conflicts with a stored record: {_first_line(e.orig)}"
            ) from e
        except exc.DBAPIError as e:
            if (
                isinstance(e, (exc.OperationalError, exc.InterfaceError))
                or e.connection_invalidated
            ):
                raise connect.unavailable(self._url, e) from e
            raise StoreError(f"the database refused the operation: {_first_line(e.orig)}") from e
        except exc.StatementError as e:
            if isinstance(e.orig, (ValueError, TypeError)):
                raise e.orig from None  # a bad value, e.g. a naive datetime: the caller's bug
            raise

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        """One transaction, committed on a normal exit, rolled back on an exception."""
        if self._closed:
            raise StoreError("the store is closed")
        lock = self._write_lock if write else self._read_lock
        with lock, self._translate(), self._engine.connect() as conn:
            if write:
                conn.execution_options(**{connect.WRITE: True})
            with conn.begin():
                yield conn

    def _check_key(self) -> None:
        """Refuse a secret key other than the first one, before any secret is needed."""
        with self._tx(write=True) as conn:
            query = select(t.store_meta.c.value).where(t.store_meta.c.name == _KEY_CHECK)
            token = conn.scalar(query)
            if token is None:
                token = self._box.encrypt(b"charter")
                conn.execute(insert(t.store_meta).values(name=_KEY_CHECK, value=token))
            else:
                self._box.decrypt(token, f"the secrets stored in {self.url}")

    @staticmethod
    def _refuse_taken(conn: Connection, table: Table, what: str, id_: str, name: str) -> None:
        query = select(table.c.id, table.c.name).where(or_(table.c.id == id_, table.c.name == name))
        for found_id, _found_name in conn.execute(query):
            if found_id == id_:
                raise Conflict(f"a {what} with id {id_!r} already exists")
            raise Conflict(f"a {what} named {name!r} already exists")

    # -- policies and rules -------------------------------------------------------------

    def create_policy(self, policy: PolicyRecord, rules: Sequence[RuleRecord] = ()) -> None:
        """Store a policy and its first rules, all or nothing. Conflict on a taken id or name."""
        rules = list(rules)
        for rule in rules:
            if rule.policy_id != policy.id:
                raise ValueError(
                    f"rule {rule.id!r} belongs to policy {rule.policy_id!r}, not {policy.id!r}"
                )
        with self._tx(write=True) as conn:
            self._refuse_taken(conn, t.policies, "policy", policy.id, policy.name)
            conn.execute(insert(t.policies), [asdict(policy)])
            self._insert_rules(conn, rules)

    def delete_policy(self, policy_id: str) -> None:
        """Delete a policy with its rules and its violation history. NotFound if absent."""
        with self._tx(write=True) as conn:
            name = conn.scalar(select(t.policies.c.name).where(t.policies.c.id == policy_id))
            if name is None:
                raise NotFound(f"policy {policy_id!r} not found")
            conn.execute(delete(t.violations).where(t.violations.c.policy == name))
            conn.execute(delete(t.rules).where(t.rules.c.policy_id == policy_id))
            conn.execute(delete(t.policies).where(t.policies.c.id == policy_id))

    def list_policies(self) -> list[PolicyRecord]:
        """Every policy, in creation order."""
        with self._tx(write=False) as conn:
            query = select(*_columns(t.policies, PolicyRecord)).order_by(t.policies.c.seq)
            return [_record(PolicyRecord, row) for row in conn.execute(query)]

    def add_rule(self, rule: RuleRecord) -> None:
        """Store one rule. NotFound for an unknown policy; Conflict on a taken id or name."""
        self.add_rules([rule])

    def add_rules(self, rules: Sequence[RuleRecord]) -> None:
        """Store rules of any policies, all or nothing."""
        rules = list(rules)
        if rules:
            with self._tx(write=True) as conn:
                self._insert_rules(conn, rules)

    @staticmethod
    def _insert_rules(conn: Connection, rules: list[RuleRecord]) -> None:
        if not rules:
            return
        r, p = t.rules, t.policies
        policy_ids = {rule.policy_id for rule in rules}
        names = dict(conn.execute(select(p.c.id, p.c.name).where(p.c.id.in_(policy_ids))).all())
        missing = sorted(policy_ids - names.keys())
        if missing:
            raise NotFound(f"policy {missing[0]!r} not found")
        for rule_id, n in Counter(rule.id for rule in rules).items():
            if n > 1:
                raise Conflict(f"rule id {rule_id!r} is given {n} times")
        for chunk in _chunks(rule.id for rule in rules):
            taken = conn.scalar(select(r.c.id).where(r.c.id.in_(chunk)).limit(1))
            if taken is not None:
                raise Conflict(f"a rule with id {taken!r} already exists")
        named = Counter((rule.policy_id, rule.name) for rule in rules if rule.name is not None)
        for (policy_id, name), n in named.items():
            if n > 1:
                raise Conflict(f"policy {names[policy_id]!r} is given {n} rules named {name!r}")
        for chunk in _chunks({name for _pid, name in named}):
            query = select(r.c.policy_id, r.c.name).where(
                r.c.policy_id.in_(policy_ids), r.c.name.in_(chunk)
            )
            for policy_id, name in conn.execute(query):
                if (policy_id, name) in named:
                    raise Conflict(f"policy {names[policy_id]!r} already has a rule named {name!r}")
        conn.execute(insert(r), [asdict(rule) for rule in rules])

    def delete_rule(self, rule_id: str) -> None:
        """Delete one rule. NotFound if absent."""
        with self._tx(write=True) as conn:
            if conn.execute(delete(t.rules).where(t.rules.c.id == rule_id)).rowcount == 0:
                raise NotFound(f"rule {rule_id!r} not found")

    def list_rules(self, policy_id: str | None = None) -> list[RuleRecord]:
        """The rules of one policy, or of all; in creation order."""
        query = select(*_columns(t.rules, RuleRecord)).order_by(t.rules.c.seq)
        if policy_id is not None:
            query = query.where(t.rules.c.policy_id == policy_id)
        with self._tx(write=False) as conn:
            return [_record(RuleRecord, row) for row in conn.execute(query)]

    # -- library policies ---------------------------------------------------------------

    def put_library_policy(self, lib: LibraryPolicyRecord) -> None:
        """Insert a library policy, or replace the one with its id. Conflict on a taken name."""
        lp = t.library_policies
        values = asdict(lib) | {"rules": json.dumps(lib.rules)}
        with self._tx(write=True) as conn:
            other = conn.scalar(select(lp.c.id).where(lp.c.name == lib.name, lp.c.id != lib.id))
            if other is not None:
                raise Conflict(f"a library policy named {lib.name!r} already exists (id {other!r})")
            if conn.execute(update(lp).where(lp.c.id == lib.id).values(values)).rowcount == 0:
                conn.execute(insert(lp).values(values))

    def delete_library_policy(self, lib_id: str) -> None:
        """Delete a library policy. NotFound if absent."""
        lp = t.library_policies
        with self._tx(write=True) as conn:
            if conn.execute(delete(lp).where(lp.c.id == lib_id)).rowcount == 0:
                raise NotFound(f"library policy {lib_id!r} not found")

    def list_library_policies(self) -> list[LibraryPolicyRecord]:
        """Every library policy, in the order they were first put."""
        lp = t.library_policies
        query = select(*_columns(lp, LibraryPolicyRecord)).order_by(lp.c.seq)
        with self._tx(write=False) as conn:
            return [
                LibraryPolicyRecord(**{**row._mapping, "rules": json.loads(row.rules)})
                for row in conn.execute(query)
            ]

    # -- datasources --------------------------------------------------------------------

    def create_datasource(self, ds: DatasourceRecord) -> None:
        """Store a datasource, its secret config fields encrypted. Conflict on a taken id or name."""
        values = asdict(ds) | {"config": json.dumps(self._box.seal(ds.config))}
        with self._tx(write=True) as conn:
            self._refuse_taken(conn, t.datasources, "datasource", ds.id, ds.name)
            conn.execute(insert(t.datasources).values(values))

    def delete_datasource(self, ds_id: str) -> None:
        """Delete a datasource and its pushed tables. NotFound if absent."""
        with self._tx(write=True) as conn:
            self._require_datasource(conn, ds_id)
            conn.execute(delete(t.push_tables).where(t.push_tables.c.datasource_id == ds_id))
            conn.execute(delete(t.datasources).where(t.datasources.c.id == ds_id))

    def list_datasources(self) -> list[DatasourceRecord]:
        """Every datasource, in creation order, its config decrypted."""
        ds = t.datasources
        query = select(*_columns(ds, DatasourceRecord)).order_by(ds.c.seq)
        with self._tx(write=False) as conn:
            rows = conn.execute(query).all()
        return [
            DatasourceRecord(
                **{
                    **row._mapping,
                    "config": self._box.open(
                        json.loads(row.config), f"the config of datasource {row.name!r}"
                    ),
                }
            )
            for row in rows
        ]

    @staticmethod
    def _require_datasource(conn: Connection, ds_id: str) -> None:
        ds = t.datasources
        if conn.scalar(select(ds.c.seq).where(ds.c.id == ds_id)) is None:
            raise NotFound(f"datasource {ds_id!r} not found")

    # -- push datasource tables ---------------------------------------------------------

    def replace_table(self, ds_id: str, table: str, rows: Sequence[tuple]) -> None:
        """Make ``rows`` the whole content of a pushed table. NotFound for an unknown datasource."""
        encoded = encode_rows(rows)
        pt = t.push_tables
        with self._tx(write=True) as conn:
            self._require_datasource(conn, ds_id)
            where = (pt.c.datasource_id == ds_id, pt.c.name == table)
            if conn.execute(update(pt).where(*where).values(rows=encoded)).rowcount == 0:
                conn.execute(insert(pt).values(datasource_id=ds_id, name=table, rows=encoded))

    def load_tables(self, ds_id: str) -> dict[str, list[tuple]]:
        """Every pushed table of a datasource, by name. NotFound for an unknown datasource."""
        pt = t.push_tables
        query = select(pt.c.name, pt.c.rows).where(pt.c.datasource_id == ds_id).order_by(pt.c.seq)
        with self._tx(write=False) as conn:
            self._require_datasource(conn, ds_id)
            stored = conn.execute(query).all()
        return {name: decode_rows(text) for name, text in stored}

    # -- violation history --------------------------------------------------------------

    def record_violations(
        self,
        policy: str,
        table: str,
        appeared: Iterable[tuple],
        cleared: Iterable[tuple],
        at: datetime,
    ) -> None:
        """Note rows of ``policy:table`` that appeared or cleared at ``at``.

        An appeared row opens an interval (``first_seen=at``) unless one is already open; a
        cleared row closes its open interval (``resolved_at=at``), if any. Appeared rows are
        applied first, so a row in both lists ends up closed.
        """
        new = {encoded_key(text): text for text in map(encode_row, appeared)}
        gone = {encoded_key(encode_row(row)) for row in cleared}
        if not new and not gone:
            return
        v = t.violations
        is_open = (v.c.policy == policy, v.c.table_name == table, v.c.resolved_at.is_(None))
        with self._tx(write=True) as conn:
            already: set[str] = set()
            for chunk in _chunks(new):
                already.update(
                    conn.scalars(select(v.c.row_key).where(*is_open, v.c.row_key.in_(chunk)))
                )
            opened = [
                {
                    "policy": policy,
                    "table_name": table,
                    "row": text,
                    "row_key": key,
                    "first_seen": at,
                }
                for key, text in new.items()
                if key not in already
            ]
            if opened:
                conn.execute(insert(v), opened)
            for chunk in _chunks(gone):
                conn.execute(
                    update(v).where(*is_open, v.c.row_key.in_(chunk)).values(resolved_at=at)
                )

    def violations(
        self, policy: str, table: str | None = None, *, include_resolved: bool = False
    ) -> list[ViolationRecord]:
        """The violation intervals of a policy (of one of its tables), oldest first; open ones only
        unless ``include_resolved``."""
        v = t.violations
        query = select(v.c.policy, v.c.table_name, v.c.row, v.c.first_seen, v.c.resolved_at).where(
            v.c.policy == policy
        )
        if table is not None:
            query = query.where(v.c.table_name == table)
        if not include_resolved:
            query = query.where(v.c.resolved_at.is_(None))
        with self._tx(write=False) as conn:
            stored = conn.execute(query.order_by(v.c.seq)).all()
        return [
            ViolationRecord(policy, table_name, decode_row(row), first_seen, resolved_at)
            for policy, table_name, row, first_seen, resolved_at in stored
        ]

    # -- audit log ----------------------------------------------------------------------

    def append_audit(self, rec: AuditRecord) -> int:
        """Append an entry to the audit log; ``rec.id`` is ignored. Returns the entry's id."""
        values = asdict(rec) | {"row": encode_row(rec.row), "arguments": json.dumps(rec.arguments)}
        del values["id"]
        with self._tx(write=True) as conn:
            key = conn.execute(insert(t.audit).values(values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def audit(self, *, policy: str | None = None, limit: int = 100) -> list[AuditRecord]:
        """The newest ``limit`` entries of the audit log (of one policy), newest first."""
        a = t.audit
        query = select(*_columns(a, AuditRecord)).order_by(a.c.id.desc()).limit(max(limit, 0))
        if policy is not None:
            query = query.where(a.c.policy == policy)
        with self._tx(write=False) as conn:
            stored = conn.execute(query).all()
        return [
            AuditRecord(
                **{
                    **row._mapping,
                    "row": decode_row(row.row),
                    "arguments": json.loads(row.arguments),
                }
            )
            for row in stored
        ]
