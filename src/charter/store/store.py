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
>>> [v.row for v in store.record_violations("classification", "error", [("vm-1",)], [], now)]
[('vm-1',)]
>>> store.violations("classification")[0].first_seen == now
True
>>> store.close()
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, fields
from dataclasses import replace as _replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Self, TypeVar

from sqlalchemy import Connection, Row, Table, delete, exc, func, insert, or_, select, update

from charter.store import connect, migrate
from charter.store import tables as t
from charter.store.errors import (
    Conflict,
    NotFound,
    SecretKeyError,
    StoreError,
    StoreStateError,
    StoreUnavailable,
)
from charter.store.guard import StateGuard
from charter.store.history import HistoryStore
from charter.store.identity import Identity
from charter.store.packs import PackStore
from charter.store.push import Compactor, PushStore
from charter.store.records import (
    ActionRecord,
    AuditRecord,
    DatasourceRecord,
    LibraryPolicyRecord,
    NotificationRecord,
    PolicyRecord,
    RuleRecord,
    ViolationRecord,
)
from charter.store.rows import decode_row, encode_row, encoded_key
from charter.store.secrets import SecretBox

__all__ = [
    "Conflict",
    "NotFound",
    "SecretKeyError",
    "Store",
    "StoreError",
    "StoreStateError",
    "StoreUnavailable",
]

R = TypeVar("R")

Outbox = Callable[[list[ViolationRecord]], Iterable[NotificationRecord]]
"""Given the violation intervals a write opened or closed, the notifications announcing them."""

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


class Store(PushStore, PackStore, HistoryStore):
    """Charter's persistent state in SQLite (the default) or PostgreSQL.

    ``url`` is a SQLAlchemy URL: ``sqlite:///PATH`` (``sqlite://`` for a throw-away in-memory
    store) or ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB``. Opening migrates the schema
    to the newest revision. ``secret_key`` is the Fernet key that encrypts datasource secrets;
    a store refuses a key other than the one it was first opened with.

    Opening refuses (StoreStateError) a database that is not the state the store last held:
    missing, emptied, older, another store's or corrupt, as the identity file says
    (``identity_file``: by default ``PATH.identity`` beside a SQLite file, none for
    PostgreSQL; see :mod:`charter.store.preflight`).

    Safe to share between threads. Writes are serialized within the process.
    """

    def __init__(
        self, url: str, *, secret_key: bytes, identity_file: Path | None = None
    ) -> None:
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
        self._compactor = Compactor(partial(self.compact_table, if_due=True))
        try:
            self._guard = StateGuard(self._url, identity_file)
        except BaseException:
            self._engine.dispose()
            raise
        try:
            with self._translate():
                self._guard.check(self._engine)  # before anything is written
                migrate.upgrade(self._engine)
            self._check_key()
            with self._translate():
                self._guard.start(self._engine)
        except BaseException:
            self._engine.dispose()
            self._guard.release()
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

    @property
    def identity(self) -> Identity | None:
        """The store's id and generation as of its last open or checkpoint."""
        return self._guard.identity

    def close(self) -> None:
        """Fold SQLite's write-ahead log into the database file and close every pooled
        connection; the store cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        self._compactor.close()  # a compaction running ends (or is abandoned) first
        try:
            self._guard.close(self._engine, self._write_lock)
        finally:
            self._engine.dispose()
            self._guard.release()  # only now may a restore replace the file

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
    def _tx(self, *, write: bool, snapshot: bool = False) -> Iterator[Connection]:
        """One transaction, committed on a normal exit, rolled back on an exception.

        ``snapshot``: every read in it sees the same state (SQLite's transactions always do;
        PostgreSQL's default, READ COMMITTED, only per statement, so it gets REPEATABLE READ).
        """
        if self._closed:
            raise StoreError("the store is closed")
        lock = self._write_lock if write else self._read_lock
        with lock, self._translate(), self._engine.connect() as conn:
            if write:
                conn.execution_options(**{connect.WRITE: True})
            if snapshot and conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
            if write:
                self._guard.after_write(conn)

    def _check_key(self) -> None:
        """Refuse a secret key other than the first one, before any secret is needed."""
        for last in (False, True):
            try:
                with self._tx(write=True) as conn:
                    query = select(t.store_meta.c.value).where(t.store_meta.c.name == _KEY_CHECK)
                    token = conn.scalar(query)
                    if token is None:
                        token = self._box.encrypt(b"charter")
                        conn.execute(insert(t.store_meta).values(name=_KEY_CHECK, value=token))
                    else:
                        self._box.decrypt(token, f"the secrets stored in {self.url}")
                return
            except Conflict:
                # Another process's first open stored its token between our read and insert
                # (PostgreSQL: they do not serialize); check against that one.
                if last:
                    raise

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

    def delete_policy(
        self, policy_id: str, *, at: datetime | None = None, outbox: Outbox | None = None
    ) -> None:
        """Delete a policy with its rules and its violation history. NotFound if absent.

        With ``outbox`` (and ``at``), the policy's open violations are announced as cleared at
        ``at``, in the same transaction.
        """
        with self._tx(write=True) as conn:
            name = conn.scalar(select(t.policies.c.name).where(t.policies.c.id == policy_id))
            if name is None:
                raise NotFound(f"policy {policy_id!r} not found")
            if outbox is not None and at is not None:
                v = t.violations
                query = select(v.c.table_name, v.c.row, v.c.first_seen).where(
                    v.c.policy == name, v.c.resolved_at.is_(None)
                )
                closed = [
                    ViolationRecord(name, table, decode_row(row), first_seen, at)
                    for table, row, first_seen in conn.execute(query.order_by(v.c.seq))
                ]
                if closed:
                    self._insert_notifications(conn, outbox(closed))
            conn.execute(delete(t.violations).where(t.violations.c.policy == name))
            conn.execute(delete(t.rules).where(t.rules.c.policy_id == policy_id))
            conn.execute(delete(t.policies).where(t.policies.c.id == policy_id))

    def set_enforcement(self, policy_id: str, mode: str, audit: AuditRecord | None = None) -> None:
        """Set a policy's enforcement mode, with its audit entry if given. NotFound if absent."""
        p = t.policies
        with self._tx(write=True) as conn:
            changed = conn.execute(update(p).where(p.c.id == policy_id).values(enforcement=mode))
            if changed.rowcount == 0:
                raise NotFound(f"policy {policy_id!r} not found")
            if audit is not None:
                conn.execute(insert(t.audit).values(self._audit_values(audit)))

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

    def replace_rule(self, rule: RuleRecord) -> None:
        """Store a rule's new text, name and comment under its id, in one transaction (its
        policy, place and ``created_at`` stay). NotFound if absent; Conflict on a taken name."""
        r = t.rules
        with self._tx(write=True) as conn:
            if rule.name is not None:
                query = select(r.c.id).where(
                    r.c.policy_id == rule.policy_id, r.c.name == rule.name, r.c.id != rule.id
                )
                if conn.scalar(query.limit(1)) is not None:
                    raise Conflict(f"the policy already has a rule named {rule.name!r}")
            values = {"name": rule.name, "rule": rule.rule, "comment": rule.comment}
            if conn.execute(update(r).where(r.c.id == rule.id).values(values)).rowcount == 0:
                raise NotFound(f"rule {rule.id!r} not found")

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

    # -- violation history --------------------------------------------------------------

    def record_violations(
        self,
        policy: str,
        table: str,
        appeared: Iterable[tuple],
        cleared: Iterable[tuple],
        at: datetime,
        *,
        outbox: Outbox | None = None,
    ) -> list[ViolationRecord]:
        """Note rows of ``policy:table`` that appeared or cleared at ``at``.

        An appeared row opens an interval (``first_seen=at``) unless one is already open; a
        cleared row closes its open interval (``resolved_at=at``), if any. Appeared rows are
        applied first, so a row in both lists ends up closed. Returns the intervals actually
        opened and closed; ``outbox`` is given them and the notifications it returns are
        written in the same transaction, so a change and its announcement are stored together.
        """
        new = {encoded_key(text): text for text in map(encode_row, appeared)}
        gone = {encoded_key(encode_row(row)) for row in cleared}
        if not new and not gone:
            return []
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
            changes = [ViolationRecord(policy, table, decode_row(o["row"]), at, None)
                       for o in opened]
            for chunk in _chunks(gone):
                closing = select(v.c.row, v.c.first_seen).where(*is_open, v.c.row_key.in_(chunk))
                changes += [ViolationRecord(policy, table, decode_row(row), first_seen, at)
                            for row, first_seen in conn.execute(closing.order_by(v.c.seq))]
                conn.execute(
                    update(v).where(*is_open, v.c.row_key.in_(chunk)).values(resolved_at=at)
                )
            if outbox is not None and changes:
                self._insert_notifications(conn, outbox(changes))
        return changes

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

    @staticmethod
    def _audit_values(rec: AuditRecord) -> dict[str, Any]:
        values = asdict(rec) | {"row": encode_row(rec.row), "arguments": json.dumps(rec.arguments)}
        del values["id"]
        return values

    def append_audit(self, rec: AuditRecord) -> int:
        """Append an entry to the audit log; ``rec.id`` is ignored. Returns the entry's id."""
        values = self._audit_values(rec)
        with self._tx(write=True) as conn:
            key = conn.execute(insert(t.audit).values(values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def audit(self, *, policy: str | None = None, limit: int = 100,
              before: int | None = None) -> list[AuditRecord]:
        """The newest ``limit`` entries of the audit log (of one policy), newest first;
        ``before`` an id: only older entries (the dashboard's next page)."""
        a = t.audit
        query = select(*_columns(a, AuditRecord)).order_by(a.c.id.desc()).limit(max(limit, 0))
        if policy is not None:
            query = query.where(a.c.policy == policy)
        if before is not None:
            query = query.where(a.c.id < before)
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

    # -- enforcement actions ------------------------------------------------------------

    def record_actions(
        self,
        opened: Sequence[tuple[ActionRecord, AuditRecord | None]],
        cleared: Iterable[tuple[str, str, tuple]],
        at: datetime,
    ) -> list[ActionRecord]:
        """Note ``execute[...]`` rows that appeared (with their audit entries) and cleared.

        One transaction: a due action (``status="pending"``) is in the outbox exactly when its
        row is recorded. A cleared ``(policy, table_name, row)`` gets ``cleared_at=at`` on its
        open record, first; an opened row that already has an open record is skipped, with
        its audit entry. Returns the records written, with their ids.
        """
        a = t.actions
        gone: dict[tuple[str, str], set[str]] = {}
        for policy, table, row in cleared:
            gone.setdefault((policy, table), set()).add(encoded_key(encode_row(row)))
        wanted = [(rec, encode_row(rec.row), entry) for rec, entry in opened]
        if not gone and not wanted:
            return []
        with self._tx(write=True) as conn:
            for (policy, table), keys in gone.items():
                for chunk in _chunks(keys):
                    conn.execute(
                        update(a)
                        .where(a.c.policy == policy, a.c.table_name == table,
                               a.c.cleared_at.is_(None), a.c.row_key.in_(chunk))
                        .values(cleared_at=at)
                    )
            taken: set[tuple[str, str, str]] = set()
            by_table: dict[tuple[str, str], list[str]] = {}
            for rec, text, _ in wanted:
                by_table.setdefault((rec.policy, rec.table_name), []).append(encoded_key(text))
            for (policy, table), keys in by_table.items():
                for chunk in _chunks(keys):
                    query = select(a.c.row_key).where(
                        a.c.policy == policy, a.c.table_name == table,
                        a.c.cleared_at.is_(None), a.c.row_key.in_(chunk))
                    taken.update((policy, table, k) for k in conn.scalars(query))
            written: list[ActionRecord] = []
            for rec, text, entry in wanted:
                key = encoded_key(text)
                if (rec.policy, rec.table_name, key) in taken:
                    continue
                taken.add((rec.policy, rec.table_name, key))
                values = asdict(rec) | {"row": text, "row_key": key}
                del values["id"]
                new_id = conn.execute(insert(a).values(values)).inserted_primary_key
                assert new_id is not None
                written.append(_replace(rec, id=int(new_id[0])))
                if entry is not None:
                    conn.execute(insert(t.audit).values(self._audit_values(entry)))
        return written

    def open_actions(self) -> list[ActionRecord]:
        """The records of rows still derived (not cleared), oldest first."""
        a = t.actions
        return self._actions(select(a).where(a.c.cleared_at.is_(None)).order_by(a.c.id))

    def due_actions(self, now: datetime, limit: int = 50) -> list[ActionRecord]:
        """Pending actions whose next attempt is due at ``now``, oldest first."""
        a = t.actions
        query = (
            select(a)
            .where(a.c.status == "pending", a.c.next_attempt_at <= now)
            .order_by(a.c.id)
            .limit(limit)
        )
        return self._actions(query)

    def next_action_at(self) -> datetime | None:
        """When the earliest pending action is due; None when none is pending."""
        a = t.actions
        query = select(func.min(a.c.next_attempt_at)).where(a.c.status == "pending")
        with self._tx(write=False) as conn:
            return conn.scalar(query)

    def start_action(self, action_id: int, at: datetime) -> None:
        """Mark an action ``running`` just before its call: a restart that finds it so knows
        the call may have happened and its outcome was never recorded."""
        a = t.actions
        with self._tx(write=True) as conn:
            updated = conn.execute(update(a).where(a.c.id == action_id).values(
                status="running", detail=f"running since {at.isoformat()}"))
            if updated.rowcount == 0:
                raise NotFound(f"action {action_id} not found")

    def finish_action(
        self,
        action_id: int,
        *,
        status: str,
        attempts: int,
        at: datetime,
        next_attempt_at: datetime | None = None,
        detail: str = "",
        audit: AuditRecord | None = None,
    ) -> None:
        """Record an attempt's outcome (and its audit entry) in one transaction.

        ``status="pending"`` with ``next_attempt_at`` schedules a retry; any other status is
        final (``finished_at=at``). NotFound for an unknown id.
        """
        a = t.actions
        values: dict[str, Any] = {"status": status, "attempts": attempts, "detail": detail,
                                  "next_attempt_at": next_attempt_at,
                                  "finished_at": None if status == "pending" else at}
        with self._tx(write=True) as conn:
            if conn.execute(update(a).where(a.c.id == action_id).values(values)).rowcount == 0:
                raise NotFound(f"action {action_id} not found")
            if audit is not None:
                conn.execute(insert(t.audit).values(self._audit_values(audit)))

    def actions(
        self,
        *,
        policy: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[ActionRecord]:
        """The newest ``limit`` action records (of a policy, in a status, derived since, older
        than id ``before``), newest first."""
        a = t.actions
        query = select(a).order_by(a.c.id.desc()).limit(max(limit, 0))
        if before is not None:
            query = query.where(a.c.id < before)
        if policy is not None:
            query = query.where(a.c.policy == policy)
        if status is not None:
            query = query.where(a.c.status == status)
        if since is not None:
            query = query.where(a.c.derived_at >= since)
        return self._actions(query)

    def _actions(self, query: Any) -> list[ActionRecord]:
        with self._tx(write=False) as conn:
            stored = conn.execute(query).all()
        names = [f.name for f in fields(ActionRecord)]
        return [
            ActionRecord(**{n: row._mapping[n] for n in names} | {"row": decode_row(row.row)})
            for row in stored
        ]

    # -- webhook outbox -----------------------------------------------------------------

    @staticmethod
    def _insert_notifications(conn: Connection, records: Iterable[NotificationRecord]) -> None:
        values = []
        for rec in records:
            v = asdict(rec) | {"payload": json.dumps(rec.payload),
                               "errors": json.dumps(list(rec.errors))}
            del v["id"]
            values.append(v)
        if values:
            conn.execute(insert(t.notifications), values)

    def due_notifications(
        self, now: datetime
    ) -> tuple[list[NotificationRecord], datetime | None]:
        """The head of each webhook's queue that is due at ``now``, and when the next one
        not yet due will be.

        Only the oldest pending delivery of a webhook is ever due, so each webhook receives
        its events in the order they happened, even while one of them is being retried.
        """
        n = t.notifications
        heads = (
            select(func.min(n.c.id))
            .where(n.c.status == "pending")
            .group_by(n.c.webhook)
            .scalar_subquery()
        )
        found = self._notifications(select(n).where(n.c.id.in_(heads)).order_by(n.c.id))
        due = [rec for rec in found if rec.next_attempt_at <= now]
        later = [rec.next_attempt_at for rec in found if rec.next_attempt_at > now]
        return due, min(later, default=None)

    def finish_notification(
        self,
        notification_id: int,
        *,
        status: str,
        attempts: int,
        at: datetime,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        """Record a delivery attempt: ``delivered`` (at ``at``), ``pending`` again (retry at
        ``next_attempt_at``) or ``failed``; ``error`` is appended to the entry's errors."""
        n = t.notifications
        with self._tx(write=True) as conn:
            errors = conn.scalar(select(n.c.errors).where(n.c.id == notification_id))
            if errors is None:
                raise NotFound(f"notification {notification_id} not found")
            kept = json.loads(errors)
            if error is not None:
                kept.append({"at": at.isoformat(), "error": error})
            values: dict[str, Any] = {"status": status, "attempts": attempts,
                                      "errors": json.dumps(kept)}
            if next_attempt_at is not None:
                values["next_attempt_at"] = next_attempt_at
            if status == "delivered":
                values["delivered_at"] = at
            conn.execute(update(n).where(n.c.id == notification_id).values(values))

    def notifications(
        self, *, status: str | None = None, webhook: str | None = None, limit: int = 100
    ) -> list[NotificationRecord]:
        """The newest ``limit`` outbox entries (in a status, of a webhook), newest first."""
        n = t.notifications
        query = select(n).order_by(n.c.id.desc()).limit(max(limit, 0))
        if status is not None:
            query = query.where(n.c.status == status)
        if webhook is not None:
            query = query.where(n.c.webhook == webhook)
        return self._notifications(query)

    def _notifications(self, query: Any) -> list[NotificationRecord]:
        with self._tx(write=False) as conn:
            stored = conn.execute(query).all()
        return [
            NotificationRecord(
                **{**row._mapping, "payload": json.loads(row.payload),
                   "errors": tuple(json.loads(row.errors))}
            )
            for row in stored
        ]
