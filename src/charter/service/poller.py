"""Polling: each polled datasource has a thread that reads its service and applies the diff.

A poll that fails (timeout, refused, 5xx, an answer of the wrong shape, bad credentials)
changes nothing in the engine: the last good tables stay, the status says what happened,
and the next poll waits longer (doubling up to ``MAX_BACKOFF_S``) until one succeeds.
"""

from __future__ import annotations

import logging
import threading
import time

from charter.datasources.driver import DriverError
from charter.engine.column_diff import GivenTable

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0
DEFAULT_POLL_S = 60.0


def interval(live) -> float:
    """Seconds between polls: config ``poll_time`` (Congress's key), else the driver's."""
    value = live.record.config.get("poll_time", live.driver.poll_seconds or DEFAULT_POLL_S)
    try:
        return max(0.05, float(value))
    except (TypeError, ValueError):
        return DEFAULT_POLL_S


class Poller:
    def __init__(self, service) -> None:
        self.service = service
        self._threads: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._polling: dict[str, threading.Lock] = {}

    def start(self, live) -> None:
        if live.record.id in self._threads or not live.record.enabled:
            return
        if live.driver.pushed and not getattr(live.driver, "broken", False):
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(live, stop), daemon=True,
                                  name=f"poll-{live.name}")
        self._threads[live.record.id] = (thread, stop)
        thread.start()

    def stop(self, live, wait: float = 5.0) -> None:
        entry = self._threads.pop(live.record.id, None)
        if entry is not None:
            entry[1].set()
            if entry[0] is not threading.current_thread():
                entry[0].join(wait)

    def stop_all(self) -> None:
        for _thread, stop in list(self._threads.values()):
            stop.set()
        for thread, _ in list(self._threads.values()):
            thread.join(5.0)
        self._threads.clear()

    def _run(self, live, stop: threading.Event) -> None:
        delay = 0.0
        while not stop.wait(delay):
            every = interval(live)
            try:
                self.poll(live)
                if live.driver.pushed:
                    return  # a revived push datasource: nothing to poll from now on
                delay = every
            except DriverError:
                failures = live.status.consecutive_failures
                delay = min(every * 2 ** min(failures, 16), max(MAX_BACKOFF_S, every))
            live.status.next_poll_in_s = delay

    def poll(self, live) -> None:
        """Poll once now: read the service (outside the engine's lock), then apply the diff.

        Raises DriverError (after recording it in the status) when the poll fails.
        """
        lock = self._polling.setdefault(live.record.id, threading.Lock())
        with lock:  # a refresh and the timer never poll the same datasource at once
            start = time.perf_counter()
            status = live.status
            try:
                if getattr(live.driver, "broken", False):
                    self.service.datasources.revive(live)
                if live.driver.pushed:  # revived: its stored tables come back
                    tables = self.service.stored(self.service.store.load_tables, live.record.id)
                    tables = {t: [tuple(r) for r in rows] for t, rows in tables.items()}
                elif hasattr(live.driver, "poll_columns"):  # read as columns: no row made
                    tables = _given(live, live.driver.poll_columns())
                else:
                    tables = live.driver.poll()
                    _check(live, tables)
            except DriverError as exc:
                status.failed(str(exc), time.perf_counter() - start)
                log.warning("datasource %s: poll failed (%d in a row): %s", live.name,
                            status.consecutive_failures, exc)
                raise
            except Exception as exc:  # a driver bug must not kill the thread or the service
                message = f"{type(exc).__name__}: {exc}"
                status.failed(message, time.perf_counter() - start)
                log.exception("datasource %s: poll raised", live.name)
                raise DriverError(message, status=502) from exc
            self.service.datasources.apply_poll(live, tables, time.perf_counter() - start)


def _check(live, tables: object) -> None:
    """A poll's answer must be {table: [tuple of scalars]} for the driver's tables."""
    if not isinstance(tables, dict):
        raise DriverError(f"driver {live.record.driver} returned {type(tables).__name__}, "
                          "not tables", status=502)
    known = live.driver.tables()
    for name, rows in tables.items():
        spec = known.get(name)
        if known and spec is None:
            raise DriverError(f"driver {live.record.driver} returned unknown table {name}",
                              status=502)
        width = len(spec.columns) if spec is not None else None
        for row in rows:
            if not isinstance(row, tuple) or (width is not None and len(row) != width):
                raise DriverError(f"table {name}: row {row!r} does not have the table's "
                                  f"{width} columns", status=502)


def _given(live, tables: object) -> dict[str, GivenTable]:
    """A poll read as columns, {table: [column values, ...]}, checked as ``_check`` checks
    rows (the driver's tables, their width, one value per row in each column) and handed
    on as columns."""
    if not isinstance(tables, dict):
        raise DriverError(f"driver {live.record.driver} returned {type(tables).__name__}, "
                          "not tables", status=502)
    known = live.driver.tables()
    out = {}
    for name, columns in tables.items():
        spec = known.get(name)
        if known and spec is None:
            raise DriverError(f"driver {live.record.driver} returned unknown table {name}",
                              status=502)
        width = len(spec.columns) if spec is not None else len(columns)
        if len(columns) != width or len({len(c) for c in columns}) > 1:
            raise DriverError(f"table {name}: {len(columns)} columns of lengths "
                              f"{sorted({len(c) for c in columns})}, not the table's {width} "
                              "columns of one value per row", status=502)
        out[name] = GivenTable.of_columns(columns, name)
    return out
