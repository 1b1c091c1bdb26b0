"""Datasources: a configured driver, its tables in the engine, its status.

Rows reach the engine only as the difference between what a datasource holds and what it
now reports, so a push of a whole table, a webhook or a poll costs what changed. That
difference is found in columns (``engine/column_diff.py``) and, with everything else that
costs time in proportion to the table, outside the service's lock (``_replace``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from charter.datasources.driver import Driver, DriverError, TableSpec
from charter.datasources.registry import driver_class, drivers
from charter.engine import Delta, Engine, column_diff
from charter.engine.column_diff import GivenTable, StoredTable, TableDiff
from charter.lang.errors import CharterError
from charter.service import errors as E
from charter.service.errors import Conflict, NotFound, ServiceError
from charter.service.poller import Poller
from charter.service.service import Step, utcnow
from charter.store.push import TableChange
from charter.store.records import DatasourceRecord
from charter.store.secrets import is_secret

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z_][\w\-]*$")
HIDDEN = "<hidden>"


@dataclass
class Status:
    initialized: bool = False
    last_updated: datetime | None = None
    last_error: str | None = None
    number_of_updates: int = 0
    last_duration_s: float | None = None
    consecutive_failures: int = 0
    last_error_at: datetime | None = None
    next_poll_in_s: float | None = None

    def succeeded(self, duration: float) -> None:
        self.initialized = True
        self.last_updated = utcnow()
        self.number_of_updates += 1
        self.last_error = None
        self.consecutive_failures = 0
        self.last_duration_s = duration

    def failed(self, message: str, duration: float) -> None:
        """A failed poll: the tables keep their last good rows; the status says why."""
        self.last_error = message
        self.last_error_at = utcnow()
        self.consecutive_failures += 1
        self.last_duration_s = duration

    def to_json(self) -> dict:
        return {
            "initialized": self.initialized,
            "last_updated": self.last_updated.isoformat() if self.last_updated else None,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "consecutive_failures": self.consecutive_failures,
            "number_of_updates": self.number_of_updates,
            "last_duration_s": self.last_duration_s,
            "next_poll_in_s": self.next_poll_in_s,
            "subscriptions": [],
            "subscribers": [],
        }


@dataclass
class LiveDatasource:
    record: DatasourceRecord
    driver: Driver
    status: Status = field(default_factory=Status)

    @property
    def name(self) -> str:
        return self.record.name


def public_config(driver: type[Driver], config: dict) -> dict:
    """A config as the API shows it: secret values replaced by ``<hidden>``."""
    secret = {o.name for o in driver.config_options if o.secret}
    return {k: (HIDDEN if k in secret or _secret_name(k) else v) for k, v in config.items()}


def _secret_name(key: str) -> bool:
    k = key.lower()
    return is_secret(k)


class Datasources:
    def __init__(self, service) -> None:
        self.service = service
        self.live: dict[str, LiveDatasource] = {}  # by id
        self.poller = Poller(service)

    def restore(self) -> None:
        svc = self.service
        for rec in svc.stored(svc.store.list_datasources):
            try:
                driver = driver_class(rec.driver)(rec.name, rec.config)
            except DriverError as exc:
                log.error("datasource %s not started: %s", rec.name, exc)
                live = LiveDatasource(rec, _Broken(rec.name, {}))
                live.status.failed(str(exc), 0.0)
                self.live[rec.id] = live
                continue
            live = LiveDatasource(rec, driver)
            self.live[rec.id] = live
            self._declare(live)
            if driver.pushed:
                tables = svc.stored(svc.store.load_tables, rec.id)
                changes = [Delta(f"{rec.name}:{t}", tuple(r), +1)
                           for t, rows in tables.items() for r in rows]
                svc.apply(changes)
                live.status.initialized = True
                live.status.last_updated = svc.started_at

    def start_polling(self) -> None:
        """Start the poll threads (after the whole state is restored)."""
        for live in self.live.values():
            self.poller.start(live)

    def close(self) -> None:
        self.poller.stop_all()
        for live in self.live.values():
            try:
                live.driver.close()
            except Exception:
                log.exception("datasource %s did not close cleanly", live.name)

    def _declare(self, live: LiveDatasource) -> None:
        specs = live.driver.tables()
        if specs:
            self.service.engine.declare_datasource(
                live.name, {t: s.column_names for t, s in specs.items()})

    # ------------------------------------------------------------ CRUD

    def list(self) -> list[LiveDatasource]:
        with self.service.lock:
            return sorted(self.live.values(), key=lambda d: d.record.created_at)

    def find(self, ref: str) -> LiveDatasource | None:
        live = self.live.get(ref)
        if live is not None:
            return live
        # list(): a C-level copy, safe while a writer adds one (lock-free readers call this)
        return next((d for d in list(self.live.values()) if d.name == ref), None)

    def get(self, ref: str) -> LiveDatasource:
        live = self.find(ref)
        if live is None:
            raise NotFound(f"No such datasource: {ref}")
        return live

    def create(self, body: object) -> LiveDatasource:
        svc = self.service
        if not isinstance(body, dict):
            raise ServiceError('a datasource is a JSON object {"name", "driver", "config"}')
        if "id" in body:
            raise ServiceError("a datasource's id is chosen by the server",
                               code=E.POLICY_ID_MUST_NOT_BE_PROVIDED)
        name, driver_name = body.get("name"), body.get("driver")
        if not isinstance(name, str) or not NAME.match(name):
            raise ServiceError("datasource 'name' is required: letters, digits, '_' and '-', "
                               "starting with a letter or '_'")
        if not isinstance(driver_name, str):
            raise ServiceError(f"datasource 'driver' is required; installed drivers: "
                               f"{', '.join(sorted(drivers()))}")
        config = body.get("config") or {}
        if not isinstance(config, dict):
            raise ServiceError("datasource 'config' must be a JSON object")
        unknown = set(body) - {"name", "driver", "config", "description", "enabled"}
        if unknown:
            raise ServiceError(f"unknown datasource fields {sorted(unknown)}; use name, "
                               "driver, config, description, enabled")
        try:
            cls = driver_class(driver_name)
            driver = cls(name, config)
        except DriverError as exc:
            raise ServiceError(str(exc), status=400) from exc
        with svc.lock:
            if self.find(name) is not None:
                driver.close()
                raise Conflict(f"Datasource with name {name} already exists")
            if svc.policies.find(name) is not None:
                driver.close()
                raise Conflict(f"{name} is a policy; a datasource needs another name")
            rec = DatasourceRecord(id=str(uuid.uuid4()), name=name, driver=driver_name,
                                   description=str(body.get("description") or ""),
                                   enabled=bool(body.get("enabled", True)), config=config,
                                   created_at=utcnow())
            live = LiveDatasource(rec, driver)
            try:
                self._declare(live)
            except CharterError as exc:
                driver.close()
                raise ServiceError(f"datasource {name}: {exc}") from exc

            def forget() -> None:
                driver.close()
                svc.engine.forget_datasource(name)

            svc.commit([], lambda: svc.store.create_datasource(rec), forget=forget)
            if driver.pushed:
                live.status.initialized = True
            self.live[rec.id] = live
        self.poller.start(live)
        return live

    def delete(self, ref: str) -> DatasourceRecord:
        svc = self.service
        self.poller.stop(self.get(ref))
        with svc.lock:
            live = self.get(ref)
            svc.stored(svc.store.delete_datasource, live.record.id)
            prefix = live.name + ":"
            changes = [Delta(t, r, -1) for t in svc.engine.tables() if t.startswith(prefix)
                       for r in svc.engine.rows(t)]
            svc.apply(changes)
            svc.engine.forget_datasource(live.name)  # the name may become a policy's
            live.driver.close()
            del self.live[live.record.id]
            return live.record

    # ------------------------------------------------------------ tables

    def schema(self, ref: str) -> list[TableSpec]:
        live = self.get(ref)
        specs = dict(live.driver.tables())
        for t in self.tables(ref):
            if t not in specs:  # a schemaless pushed table: columns by position
                arity = self.service.engine.arity(f"{live.name}:{t}") or 0
                specs[t] = _positional(t, arity)
        return [specs[t] for t in sorted(specs)]

    def table_spec(self, ref: str, table: str) -> TableSpec:
        for spec in self.schema(ref):
            if spec.name == table:
                return spec
        raise NotFound(f"No such table {table} in datasource {self.get(ref).name}")

    def tables(self, ref: str) -> list[str]:
        with self.service.lock:
            live = self.get(ref)
            prefix = live.name + ":"
            names = {t.removeprefix(prefix) for t in self.service.engine.tables()
                     if t.startswith(prefix)}
            return sorted(names | set(live.driver.tables()))

    def rows(self, ref: str, table: str) -> list[tuple]:
        with self.service.lock:
            live = self.get(ref)
            if table not in self.tables(ref):
                raise NotFound(f"No such table {table} in datasource {live.name}")
            qualified = f"{live.name}:{table}"
            if not self.service.engine.has_table(qualified):
                return []
            return sorted(self.service.engine.rows(qualified), key=repr)

    def replace_rows(self, ref: str, table: str, data: Any) -> int:
        """Replace a push datasource's table (``PUT .../rows``); durable before the answer.

        The body is checked and made columns outside the lock, set at a time
        (``PushDriver.given``; the table's width read under the lock: if another push
        changes it meanwhile, the engine refuses the rows as it would)."""
        svc = self.service
        with svc.lock:
            live, driver, qualified, width = self._push_target(ref, table)
        try:
            given = driver.given(table, data, width)  # type: ignore[attr-defined]
        except DriverError as exc:
            raise ServiceError(str(exc), status=exc.status) from exc
        if not self._replace(live, {table: given}):
            raise NotFound(f"No such datasource: {ref}")
        return len(given)

    def _replace(self, live: LiveDatasource, tables: Mapping[str, Sequence[tuple] | GivenTable],
                 duration: float | None = None) -> bool:
        """Make ``tables`` (name -> rows, or a ``GivenTable``: rows and/or columns) the
        datasource's whole tables, in one batch; a push datasource's durable before this
        returns. False: it was deleted meanwhile.

        Outside the lock: the rows made columns (unless given so), and each table's
        difference found against a snapshot of it taken under the lock (immutable columns,
        copied marks: ``Engine.stored_table``), in columns or, for values columns cannot
        hold, by Python sets. Under the lock again: a table that changed since its
        snapshot (another push, a simulation) has its difference found there; then the
        differences are applied as one batch (``Engine.apply_diffs``), with the store's
        write of a push datasource's in the same commit.
        """
        svc = self.service
        start = time.perf_counter()
        names = {t: f"{live.name}:{t}" for t in tables}
        try:
            given = {t: g if isinstance(g, GivenTable) else GivenTable.of_rows(g)
                     for t, g in tables.items()}
        except CharterError as exc:  # columns of different lengths
            raise ServiceError(f"datasource {live.name}: {exc}") from exc
        with svc.lock:
            if self.live.get(live.record.id) is not live:
                return False
            stored = {t: svc.engine.stored_table(names[t]) for t in tables}
        found = {t: find_difference(stored[t], g) for t, g in given.items()}
        with svc.lock:
            if self.live.get(live.record.id) is not live:
                return False
            engine = svc.engine
            diffs: list[TableDiff] = []
            try:
                for table, g in given.items():
                    diff = found[table]
                    if not engine.fresh(diff):
                        diff = g.difference(engine.stored_table(names[table]))
                    diffs.append(diff)
                if live.driver.pushed:  # pushed rows are kept by the store; polled ones are not
                    written = {t: (d.inserted, d.deleted) for t, d in zip(tables, diffs, strict=True)}
                    svc.commit(differences(diffs), self._store_write(live, written))
                else:
                    svc.run(differences(diffs).run)
            except CharterError as exc:
                raise ServiceError(f"datasource {live.name}: {exc}") from exc
            live.status.succeeded(duration if duration is not None
                                  else time.perf_counter() - start)
        return True

    def _commit(self, live: LiveDatasource, changes: list[Delta],
                written: dict[str, tuple[list[tuple], list[tuple]]]) -> None:
        """One batch into the engine; a push datasource's also into the store."""
        svc = self.service
        try:
            if live.driver.pushed:  # pushed rows are kept by the store; polled ones are not
                svc.commit(changes, self._store_write(live, written))
            else:
                svc.apply(changes)
        except CharterError as exc:
            raise ServiceError(f"datasource {live.name}: {exc}") from exc

    def _store_write(self, live: LiveDatasource,
                     written: dict[str, tuple[list[tuple], list[tuple]]]) -> Callable[[], None]:
        """The store's write of a push datasource's batch, for ``Service.commit``: what
        changed (``written``: table -> (rows inserted, rows deleted), the engine's own
        difference), or, for a change of half a table or more, the table as the engine
        holds it after the batch (the store asks for it only then)."""
        svc = self.service

        def after(table: str) -> set[tuple]:
            qualified = f"{live.name}:{table}"
            return svc.engine.rows(qualified) if svc.engine.has_table(qualified) else set()

        return lambda: svc.store.change_tables(live.record.id, {
            t: TableChange(ins, dels, partial(after, t)) for t, (ins, dels) in written.items()})

    def patch_rows(self, ref: str, table: str, data: Any) -> dict[str, int]:
        """Insert and delete rows of a push datasource's table (``PATCH .../rows``, a
        Charter extension): ``{"insert": [rows], "delete": [rows]}``, each row in the
        shapes a PUT takes, applied as one batch and durable before the answer.

        Set semantics, as the engine's tables: inserting a row the table holds, or deleting
        one it does not, changes nothing and is counted as ``unchanged``. A row in both
        lists is refused, and so is the whole body when any row is bad.
        """
        if not isinstance(data, dict) or not set(data) <= {"insert", "delete"}:
            raise ServiceError('a patch of rows is {"insert": [rows], "delete": [rows]}')
        svc = self.service
        start = time.perf_counter()
        with svc.lock:
            live, driver, qualified, width = self._push_target(ref, table)
            try:  # an unknown table is the path's mistake, not a row's
                driver.rows_for(table, [], width)  # type: ignore[attr-defined]
            except DriverError as exc:
                raise ServiceError(str(exc), status=exc.status) from exc
            given: dict[str, GivenTable] = {}
            for key in ("insert", "delete"):
                try:
                    given[key] = driver.given(table, data.get(key, []), width)  # type: ignore[attr-defined]
                except DriverError as exc:
                    raise ServiceError(f'"{key}": {exc}', status=exc.status) from exc
                if width is None and len(given[key]):
                    width = len(given[key].rows[0])
            parsed = {key: g.rows for key, g in given.items()}
            insert, delete = dict.fromkeys(parsed["insert"]), dict.fromkeys(parsed["delete"])
            both = [r for r in insert if r in delete]
            if both:
                i, j = parsed["insert"].index(both[0]), parsed["delete"].index(both[0])
                raise ServiceError(
                    f"row {list(both[0])!r} of {qualified} is both inserted (insert row {i}) "
                    f"and deleted (delete row {j}); a patch is one change: give each row in "
                    "one list")
            diff = _patch_in_columns(svc.engine.stored_table(qualified), given)
            if diff is not None:  # found set at a time; applied as a PUT's difference is
                inserted, deleted = diff.inserted, diff.deleted
                try:
                    svc.commit(differences([diff]), self._store_write(
                        live, {table: (inserted, deleted)}))
                except CharterError as exc:
                    raise ServiceError(f"datasource {live.name}: {exc}") from exc
            else:  # values columns cannot hold: row by row
                has = svc.engine.has_stored
                inserted = [r for r in insert if not has(qualified, r)]
                deleted = [r for r in delete if has(qualified, r)]
                changes = [Delta(qualified, r, -1) for r in deleted]
                changes += [Delta(qualified, r, +1) for r in inserted]
                self._commit(live, changes, {table: (inserted, deleted)})
            live.status.succeeded(time.perf_counter() - start)
            unchanged = len(insert) + len(delete) - len(inserted) - len(deleted)
            return {"inserted": len(inserted), "deleted": len(deleted), "unchanged": unchanged}

    def _push_target(self, ref: str, table: str) -> tuple[LiveDatasource, Driver, str, int | None]:
        """Under the service's lock: the push datasource ``ref``, its driver, the table's
        qualified name and its width (None while the table holds no row)."""
        engine = self.service.engine
        live = self.get(ref)
        driver = self._pushed(live)
        qualified = f"{live.name}:{table}"
        known = engine.has_table(qualified)
        width = engine.arity(qualified) if known and engine.count(qualified) else None
        return live, driver, qualified, width

    @staticmethod
    def _pushed(live: LiveDatasource) -> Driver:
        if not live.driver.pushed:
            raise ServiceError(
                f"datasource {live.name} (driver {live.record.driver}) is polled; only "
                "push datasources take rows through the API")
        return live.driver

    def revive(self, live: LiveDatasource) -> None:
        """Start the real driver of a datasource restored as broken; DriverError if it still
        cannot start."""
        driver = driver_class(live.record.driver)(live.record.name, live.record.config)
        with self.service.lock:
            live.driver = driver
            self._declare(live)

    def apply_poll(self, live: LiveDatasource,
                   tables: Mapping[str, Sequence[tuple] | GivenTable],
                   duration: float) -> None:
        """A successful poll's tables: the difference enters the engine (nothing, if the
        datasource was deleted while it was being polled). Only its poller writes a
        polled datasource's tables, so its difference found outside the lock holds."""
        try:
            self._replace(live, tables, duration)
        except ServiceError as exc:
            with self.service.lock:
                live.status.failed(exc.message, duration)
            raise DriverError(exc.message, status=502) from exc

    # ------------------------------------------------------------ actions

    def status(self, ref: str) -> dict:
        with self.service.lock:
            live = self.get(ref)
            out = live.status.to_json()
            engine = self.service.engine
            known = set(engine.tables())
            out["rows"] = {t: engine.count(f"{live.name}:{t}") if f"{live.name}:{t}" in known
                           else 0 for t in self.tables(ref)}
            return out

    def refresh(self, ref: str) -> None:
        """Poll now (``?action=request-refresh``); a push datasource has nothing to fetch."""
        live = self.get(ref)
        if live.driver.pushed:
            return
        try:
            self.poller.poll(live)
        except DriverError as exc:
            message = str(exc)
            if not message.startswith(f"datasource {live.name}"):
                message = f"datasource {live.name}: {message}"
            raise ServiceError(message, status=exc.status) from exc

    def execute(self, ref: str, action: object, args: object) -> Any:
        live = self.get(ref)
        if not isinstance(action, str) or not action:
            raise ServiceError("execute needs 'name': the action to run, e.g. servers.pause",
                               code=E.SERVICE_ACTION_SYNTAX)
        positional, named = parse_args(args)
        try:
            return live.driver.execute(action, positional, named)
        except DriverError as exc:
            raise ServiceError(str(exc), status=exc.status, code=E.EXECUTE_ERROR) from exc

    def webhook(self, ref: str, payload: Any) -> None:
        live = self.get(ref)
        try:
            tables = live.driver.webhook(payload)
        except DriverError as exc:
            raise ServiceError(str(exc), status=exc.status) from exc
        self._replace(live, tables)


def _patch_in_columns(stored: StoredTable, given: dict[str, GivenTable]) -> TableDiff | None:
    """A patch's difference found in columns (None: a list's values are not typed, or only
    the row path can tell). Called once no row is in both lists: ``patch`` then finds what
    the row path finds (inserted: given, not stored; deleted: given and stored)."""
    ins, dele = given["insert"], given["delete"]
    if (len(ins) and ins.columns is None) or (len(dele) and dele.columns is None):
        return None
    return column_diff.patch(stored, ins.columns if len(ins) else None,
                             dele.columns if len(dele) else None, ins.rows, dele.rows)


def differences(diffs: Sequence[TableDiff]) -> Step:
    """Table differences as one batch (``Engine.apply_diffs``: a table that was empty loads
    its columns as they are, so a first poll of a million rows makes no Python row), undone
    by the inverse row changes: the rows each difference inserted and deleted."""

    def undo(engine: Engine) -> None:
        changes = [Delta(d.table, r, -1) for d in diffs for r in d.inserted]
        changes += [Delta(d.table, r, +1) for d in diffs for r in d.deleted]
        engine.apply(changes)

    return Step(lambda engine: engine.apply_diffs(diffs), undo)


def find_difference(stored: StoredTable, given: GivenTable) -> TableDiff:
    """A table's difference found outside the lock (a name of its own: tests step in)."""
    return given.difference(stored)


def parse_args(args: object) -> tuple[list, dict]:
    """Congress's ``{"positional": [...], "named": {...}}`` action arguments."""
    if args is None:
        return [], {}
    if not isinstance(args, dict) or not set(args) <= {"positional", "named"}:
        raise ServiceError('action args must be {"positional": [...], "named": {...}}',
                           code=E.EXECUTE_ACTION_ARGS_SYNTAX)
    positional, named = args.get("positional", []), args.get("named", {})
    if not isinstance(positional, list) or not isinstance(named, dict):
        raise ServiceError('action args must be {"positional": [...], "named": {...}}',
                           code=E.EXECUTE_ACTION_ARGS_SYNTAX)
    return positional, named


def _positional(table: str, arity: int) -> TableSpec:
    """A table with rows but no declared columns (pushed as rows): ``col0, col1, ...``."""
    from charter.datasources.driver import Column

    return TableSpec(table, tuple(Column(f"col{i}") for i in range(arity)))


class _Broken(Driver):
    """Stands in for a datasource whose driver could not start (its service was down at
    restart, say); the poller keeps trying to start the real driver, and the status says
    why it has not yet."""

    driver = "unavailable"
    description = "a datasource whose driver could not start"
    broken = True

    def check_config(self) -> None:
        pass

