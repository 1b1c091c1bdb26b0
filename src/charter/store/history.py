"""Reading violation history in bulk: how many were open over a window, the latest changes.

Kept apart from ``store.py`` as a mixin of :class:`~charter.store.store.Store`, whose
transactions (``_tx``) it uses. Both queries let the database count: a batch records
every row it opens or closes at one time, so grouping the intervals by ``first_seen`` and
by ``resolved_at`` returns one line per batch, not per violation, however many there are.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, or_, select

from charter.store import tables as t
from charter.store.rows import decode_row


@dataclass(frozen=True, slots=True)
class Timeline:
    """The violation intervals that matter to a window ``[since, until)`` (those open at
    ``since`` or opened within the window), counted.

    ``opened_before``: those with ``first_seen < since``; ``appeared``: ``(time, n)`` for
    ``since <= first_seen < until``; ``cleared``: ``(time, n)`` for ``since < resolved_at
    <= until``; both by time. The number open at some moment of ``[a, b)`` within the
    window is then ``opened_before`` plus those appeared before ``b`` less those cleared
    at or before ``a``.
    """

    opened_before: int
    appeared: list[tuple[datetime, int]]
    cleared: list[tuple[datetime, int]]


@dataclass(frozen=True, slots=True)
class ViolationEvent:
    """A violation that appeared (``event="appeared"``) or cleared, and when."""

    event: str
    policy: str
    table: str
    row: tuple
    at: datetime


class HistoryStore:
    """``violation_timeline`` and ``violation_events`` for the Store."""

    if TYPE_CHECKING:  # provided by Store

        def _tx(self, *, write: bool) -> AbstractContextManager[Connection]: ...

    def violation_timeline(
        self, since: datetime, until: datetime, policy: str | None = None
    ) -> Timeline:
        """The counts :class:`Timeline` describes, of every policy or of ``policy``: one
        scan, grouped by (first seen, resolved at), which is a line per pair of batches."""
        v = t.violations
        where = [v.c.policy == policy] if policy is not None else []
        query = (
            select(v.c.first_seen, v.c.resolved_at, func.count())
            .where(
                *where,
                v.c.first_seen < until,
                or_(v.c.resolved_at.is_(None), v.c.resolved_at > since),
            )
            .group_by(v.c.first_seen, v.c.resolved_at)
        )
        before = 0
        appeared: dict[datetime, int] = {}
        cleared: dict[datetime, int] = {}
        with self._tx(write=False) as conn:
            for first, resolved, n in conn.execute(query):
                if first < since:
                    before += n
                else:
                    appeared[first] = appeared.get(first, 0) + n
                if resolved is not None and resolved <= until:
                    cleared[resolved] = cleared.get(resolved, 0) + n
        return Timeline(before, sorted(appeared.items()), sorted(cleared.items()))

    def violation_events(self, limit: int, policy: str | None = None) -> list[ViolationEvent]:
        """The latest ``limit`` appearances and clearings, newest first (at one time, the
        clearings first: a row that appeared and cleared in one batch reads cleared)."""
        v = t.violations
        where = [v.c.policy == policy] if policy is not None else []
        columns = (v.c.policy, v.c.table_name, v.c.row)
        appeared = (  # intervals are written in time order: the key's index finds them
            select(*columns, v.c.first_seen, v.c.seq)
            .where(*where)
            .order_by(v.c.seq.desc())
            .limit(limit)
        )
        cleared = (
            select(*columns, v.c.resolved_at, v.c.seq)
            .where(*where, v.c.resolved_at.is_not(None))
            .order_by(v.c.resolved_at.desc(), v.c.seq.desc())
            .limit(limit)
        )
        found: list[tuple[datetime, int, int, ViolationEvent]] = []
        with self._tx(write=False) as conn:
            for kind, rank, query in (("appeared", 0, appeared), ("cleared", 1, cleared)):
                for p, table, row, at, seq in conn.execute(query):
                    found.append(
                        (at, rank, seq, ViolationEvent(kind, p, table, decode_row(row), at))
                    )
        found.sort(key=lambda f: (f[0], f[1], f[2]), reverse=True)
        return [f[3] for f in found[:limit]]
