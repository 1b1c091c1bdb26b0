"""Nova's servers read as changes between periodic full listings (``changes-since``).

A full listing of every server of a large cloud is most of a Nova poll, and between two
polls few servers change. Nova answers ``GET /servers/detail?changes-since=T`` with the
servers whose ``updated_at`` is at or after ``T``, and, unlike a plain listing, with the
servers deleted since ``T`` (status ``DELETED``, while Nova's database still holds them).
:class:`ServerChanges` keeps each region's server rows by server id from the last full
listing, merges the changed servers in at each poll (a deleted one is dropped), and asks
for a full listing again every ``full_resync_polls`` polls or ``full_resync_seconds``
seconds, whichever comes first: a deletion Nova no longer reports (its row archived or
purged) or a change missed for clock skew is caught there.

``T`` is when the previous listing started by Charter's clock, less ``MARGIN_S``: a change
committed while that listing ran, or Nova's clock up to that much behind Charter's, is
read again rather than missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from charter.datasources.driver import Row

MARGIN_S = 60.0
DELETED = "DELETED"

# Server objects -> their rows by table (servers, servers.addresses, tags, servers.details),
# each row's first column the server's id.
Translate = Callable[[list[Any]], dict[str, list[Row]]]


@dataclass
class _Region:
    """One region's servers: table -> server id -> that server's rows."""

    rows: dict[str, dict[Any, list[Row]]]
    since: datetime  # the next changes-since
    full_at: float  # the clock when the last full listing started
    polls: int = 0  # polls since then


@dataclass
class ServerChanges:
    """The merged server tables of each region, and when a full listing is due."""

    translate: Translate
    tables: tuple[str, ...]
    resync_polls: int = 10
    resync_seconds: float = 600.0
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _regions: dict[str | None, _Region] = field(default_factory=dict)

    def changes_since(self, region: str | None) -> str | None:
        """The ``changes-since`` for this poll of ``region``; None when a full listing is
        due (the first poll, or the resync interval is reached)."""
        state = self._regions.get(region)
        if state is None or state.polls + 1 >= self.resync_polls or \
                self.clock() - state.full_at >= self.resync_seconds:
            return None
        return state.since.strftime("%Y-%m-%dT%H:%M:%SZ")

    def started(self) -> tuple[float, datetime]:
        """Call before a listing: the times to hand to :meth:`full` or :meth:`merge`."""
        return self.clock(), self.wall()

    def full(self, region: str | None, servers: Iterable[Any],
             start: tuple[float, datetime]) -> None:
        """Every server of ``region``, as a full listing that began at ``start`` gave them."""
        rows = {t: {} for t in self.tables}
        self._put(rows, [s for s in servers if _status(s) != DELETED])
        self._regions[region] = _Region(rows, start[1] - timedelta(seconds=MARGIN_S),
                                        start[0])

    def merge(self, region: str | None, changed: Iterable[Any],
              start: tuple[float, datetime]) -> None:
        """The servers changed since the last listing of ``region`` (deleted ones too)."""
        state = self._regions[region]
        changed = list(changed)
        for server in changed:
            for by_id in state.rows.values():
                by_id.pop(_id(server), None)
        self._put(state.rows, [s for s in changed if _status(s) != DELETED])
        state.since = start[1] - timedelta(seconds=MARGIN_S)
        state.polls += 1

    def rows(self, region: str | None) -> dict[str, list[Row]]:
        """Every table's rows for ``region``, as of its last listing."""
        state = self._regions[region]
        return {t: [r for rows in by_id.values() for r in rows]
                for t, by_id in state.rows.items()}

    def keep(self, regions: Iterable[str | None]) -> None:
        """Forget the regions no longer read."""
        wanted = set(regions)
        for region in [r for r in self._regions if r not in wanted]:
            del self._regions[region]

    def _put(self, rows: dict[str, dict[Any, list[Row]]], servers: list[Any]) -> None:
        for table, found in self.translate(servers).items():
            by_id = rows[table]
            for row in found:
                by_id.setdefault(row[0], []).append(row)


def _status(server: Any) -> Any:
    return getattr(server, "status", None)


def _id(server: Any) -> Any:
    return getattr(server, "id", None)
