"""The dashboard's reads: current violations filtered, sorted and paged; counts; history.

Current violations live in memory (``ViolationTracker.open``). A page request over 100k of
them must not build 100k objects, so they are kept in a flat index of plain lists (first
seen, group number, row), one *group* per policy violation table carrying what its rows
share: column names, the pack control's severity, the pack and control, the datasources
the table depends on. The index is immutable and rebuilt only when its key changes:
``Service.violation_changes`` (a batch touched a violation table), ``engine.generation``
(rules, policies, schemas), the enabled packs and the datasources' names. The group
metadata (the dependency walk through the rules) is rebuilt only when the program's part of
the key changes. A request then filters and pages plain lists; the sort orders are made
once per index, on first use.

The key and the raw data are read under ``service.lock``, so an index is one consistent
state; it is built from copies outside the lock, so a rebuild never holds up a batch.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from charter.lang.ast import Atom, Variable
from charter.packs.spec import SEVERITIES
from charter.service.errors import ServiceError
from charter.service.violations import VIOLATION_TABLES
from charter.store.history import Timeline, ViolationEvent

SORT_KEYS = ("first_seen", "policy", "severity", "row")
"""``first_seen``; ``policy`` (then table, then row); ``severity`` (critical first, none
last); ``row`` (its values in order, numbers before text). Ties keep the ``policy`` order;
a ``-`` before the key gives the exact reverse."""
NO_SEVERITY = "none"
"""The ``severity`` filter's value for violations without one (not made by a pack)."""
SEVERITY_FILTERS = (*SEVERITIES, NO_SEVERITY)
MAX_LIMIT = 1000
"""The largest page; an export asks for ``limit=None`` (the API caps it, see api/violations)."""
WINDOWS: dict[str, tuple[timedelta, int]] = {
    "day": (timedelta(minutes=30), 48),
    "week": (timedelta(hours=4), 42),
    "month": (timedelta(days=1), 30),
}
"""Each history window's bucket size and number of buckets."""
T = TypeVar("T")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def bad_parameter(name: str, value: object, allowed: str) -> ServiceError:
    """A 400 naming the parameter, what was given and what it may be."""
    return ServiceError(
        f"query parameter {name!r}: {value!r} is not allowed; use {allowed}",
        status=400,
        data={"parameter": name, "allowed": allowed},
    )


@dataclass(frozen=True, slots=True)
class ViolationQuery:
    """Which current violations, in which order, which page.

    Every filter given must hold (None: any). ``q`` is a case-insensitive substring of the
    policy's name or of one of the row's values (as text). ``limit=None``: every match from
    ``offset`` on. Raises a 400 ServiceError naming a bad field and its allowed values.

    >>> ViolationQuery.parse_sort("-first_seen")
    ('first_seen', True)
    """

    policy: str | None = None
    table: str | None = None
    severity: str | None = None
    datasource: str | None = None
    pack: str | None = None
    q: str | None = None
    sort: str = "first_seen"
    descending: bool = True
    offset: int = 0
    limit: int | None = 100

    def __post_init__(self) -> None:
        if self.table is not None and self.table not in VIOLATION_TABLES:
            raise bad_parameter("table", self.table, " or ".join(VIOLATION_TABLES))
        if self.severity is not None and self.severity not in SEVERITY_FILTERS:
            raise bad_parameter("severity", self.severity, ", ".join(SEVERITY_FILTERS))
        if self.sort not in SORT_KEYS:
            raise bad_parameter(
                "sort", self.sort, ", ".join(SORT_KEYS) + " (a leading '-' for descending)"
            )
        if not isinstance(self.offset, int) or self.offset < 0:
            raise bad_parameter("offset", self.offset, "an integer >= 0")
        if self.limit is not None and (
            not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_LIMIT
        ):
            raise bad_parameter("limit", self.limit, f"an integer from 1 to {MAX_LIMIT}")

    @staticmethod
    def parse_sort(text: str) -> tuple[str, bool]:
        """``"-first_seen"`` -> ``("first_seen", True)``; a 400 for an unknown key."""
        key = text.removeprefix("-")
        if key not in SORT_KEYS:
            raise bad_parameter(
                "sort", text, ", ".join(SORT_KEYS) + " (a leading '-' for descending)"
            )
        return key, text.startswith("-")


@dataclass(frozen=True, slots=True)
class Group:
    """What the rows of one policy's violation table share."""

    policy: str
    table: str
    columns: tuple[str, ...] | None  # None: positional, ``col0, col1, ...`` by row width
    severity: str | None
    pack: str | None
    control: str | None
    datasources: tuple[str, ...]

    def column_names(self, width: int) -> tuple[str, ...]:
        if self.columns is not None and len(self.columns) == width:
            return self.columns
        return tuple(f"col{i}" for i in range(width))


@dataclass(frozen=True, slots=True)
class Violation:
    """One current violation, as a page shows it."""

    policy: str
    table: str
    row: tuple
    columns: tuple[str, ...]
    first_seen: datetime
    severity: str | None
    pack: str | None
    control: str | None
    datasources: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "table": self.table,
            "row": list(self.row),
            "columns": list(self.columns),
            "first_seen": self.first_seen.isoformat(),
            "severity": self.severity,
            "pack": self.pack,
            "control": self.control,
            "datasources": list(self.datasources),
        }


# ---------------------------------------------------------------- the index


@dataclass(eq=False)
class _Index:
    """Current violations as parallel lists, groups sorted by (policy, table) and rows
    within a group in order (the ``policy`` order)."""

    key: tuple
    groups: list[Group]
    seen: list[datetime]
    gid: list[int]
    rows: list[tuple]
    _orders: dict[str, list[int]] = field(default_factory=dict)
    _text: list[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def order(self, key: str) -> list[int]:
        """Positions in ascending ``key`` order (made on first use, then kept)."""
        with self._lock:
            found = self._orders.get(key)
            if found is None:
                found = self._orders[key] = self._sorted(key)
            return found

    def _sorted(self, key: str) -> list[int]:
        n = len(self.rows)
        if key == "policy":
            return list(range(n))
        if key == "first_seen":
            return sorted(range(n), key=self.seen.__getitem__)
        if key == "severity":
            rank = [_RANK.get(g.severity, len(_RANK)) for g in self.groups]
            return sorted(range(n), key=lambda i: rank[self.gid[i]])
        rows = self.rows
        try:  # rows of one shape compare as they are, in C
            return sorted(range(n), key=rows.__getitem__)
        except TypeError:
            return sorted(range(n), key=lambda i: row_key(rows[i]))

    def text(self) -> list[str]:
        """Each violation's policy and values, lower case, for ``q``."""
        with self._lock:
            if self._text is None:
                groups, rows = self.groups, self.rows
                self._text = [
                    "\x00".join([groups[g].policy, *map(str, rows[i])]).lower()
                    for i, g in enumerate(self.gid)
                ]
            return self._text

    def violation(self, i: int) -> Violation:
        g, row = self.groups[self.gid[i]], self.rows[i]
        return Violation(
            g.policy,
            g.table,
            row,
            g.column_names(len(row)),
            self.seen[i],
            g.severity,
            g.pack,
            g.control,
            g.datasources,
        )


@dataclass
class _Cache:
    build: threading.Lock = field(default_factory=threading.Lock)
    meta_key: tuple | None = None
    groups: dict[tuple[str, str], Group] = field(default_factory=dict)
    index: _Index | None = None
    history: dict[tuple, list[tuple[datetime, int]]] = field(default_factory=dict)


_CACHES: weakref.WeakKeyDictionary[Any, _Cache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache(service) -> _Cache:
    with _CACHES_LOCK:
        found = _CACHES.get(service)
        if found is None:
            found = _CACHES[service] = _Cache()
        return found


def _meta_key(service) -> tuple:
    packs = tuple(
        (pid, rec.version, rec.policies) for pid, rec in sorted(list(service.packs.enabled.items()))
    )
    names = tuple(sorted(d.name for d in service.datasources.live.values()))
    return (service.engine.generation, packs, names)


def index(service) -> _Index:
    """The current violations' index, rebuilt if anything it reflects changed."""
    return _index_and(service, lambda: None)[0]


def _index_and(service, read: Callable[[], T]) -> tuple[_Index, T]:
    """The index, and what ``read`` returns, read under the same hold of the lock: one
    state. (The build lock is taken first, never while holding the service's.)"""
    cache = _cache(service)
    with cache.build:
        with service.lock:
            extra = read()
            meta_key = _meta_key(service)
            key = (service.violation_changes, meta_key)
            if cache.index is not None and cache.index.key == key:
                return cache.index, extra
            if cache.meta_key != meta_key:
                cache.groups, cache.meta_key = _groups(service), meta_key
            open_now = {k: dict(v) for k, v in service.violations.open.items() if v}
        cache.index = _build(key, cache.groups, open_now)
        return cache.index, extra


def _build(
    key: tuple,
    known: dict[tuple[str, str], Group],
    open_now: dict[tuple[str, str], dict[tuple, datetime]],
) -> _Index:
    groups: list[Group] = []
    seen: list[datetime] = []
    gid: list[int] = []
    rows: list[tuple] = []
    for policy, table in sorted(open_now):
        found = open_now[(policy, table)]
        group = known.get((policy, table)) or Group(policy, table, None, None, None, None, ())
        g = len(groups)
        groups.append(group)
        ordered = list(found)
        try:
            ordered.sort()
        except TypeError:
            ordered.sort(key=row_key)
        rows += ordered
        seen += map(found.__getitem__, ordered)
        gid += [g] * len(ordered)
    return _Index(key, groups, seen, gid, rows)


def _groups(service) -> dict[tuple[str, str], Group]:
    """Each policy violation table's metadata (call with the lock held)."""
    engine = service.engine
    controls: dict[str, tuple[str, Any]] = {}  # policy -> (pack id, control or None)
    installed = service.packs.installed.packs
    for pid, rec in list(service.packs.enabled.items()):
        pack = installed.get(pid)
        for name in rec.policies:
            controls[name] = (pid, pack.control(name) if pack is not None else None)
    reads: dict[str, set[str]] = {}
    for head, compiled in engine.program.rules_by_head.items():
        found = reads.setdefault(head, set())
        for c in compiled:
            found.update(t for _, t in c.inputs())
    policies = set(engine.policies)
    out: dict[tuple[str, str], Group] = {}
    for live in service.policies.live.values():
        policy = live.record.name
        pack, control = controls.get(policy, (None, None))
        for table in VIOLATION_TABLES:
            columns = None
            if control is not None and table == "error":
                columns = control.column_names
            columns = (
                columns
                or engine.schemas.columns(policy, table)
                or _head_names(engine, policy, table)
            )
            out[(policy, table)] = Group(
                policy,
                table,
                tuple(columns) if columns else None,
                control.severity if control is not None else None,
                pack,
                control.id if control is not None else None,
                _datasources(f"{policy}:{table}", reads, policies),
            )
    return out


def _head_names(engine, policy: str, table: str) -> tuple[str, ...] | None:
    """The variables the policy's rules write in the table's head, where all agree."""
    state = engine.policies.get(policy)
    if state is None:
        return None
    names: list[str | None] | None = None
    for rule in state.rules:
        head = rule.head
        if (
            not isinstance(head, Atom)
            or head.table != table
            or head.named
            or (head.theory not in (None, policy))
        ):
            continue
        mine = [a.name if isinstance(a, Variable) else None for a in head.args]
        if names is None:
            names = mine
        elif len(names) != len(mine):
            return None
        else:
            names = [a if a == b else None for a, b in zip(names, mine, strict=True)]
    if not names or any(n is None or n.startswith("_") for n in names):
        return None
    return tuple(names)  # type: ignore[arg-type]


def _datasources(table: str, reads: dict[str, set[str]], policies: set[str]) -> tuple[str, ...]:
    """The modules that are not policies (datasources, configured or not) whose tables
    ``table`` reads, through every rule in between."""
    found: set[str] = set()
    seen = {table}
    stack = [table]
    while stack:
        for source in reads.get(stack.pop(), ()):
            if source in seen:
                continue
            seen.add(source)
            if source in reads:
                stack.append(source)
            module = source.partition(":")[0]
            if module not in policies:
                found.add(module)
    return tuple(sorted(found))


def _value_key(value: Any) -> tuple:
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, (int, float)):
        return (1, value)
    if value is None:
        return (0, 0)
    if isinstance(value, tuple):
        return (3, tuple(map(_value_key, value)))
    return (4, repr(value))


def row_key(row: tuple) -> tuple:
    """A sort key for rows of any values: None, numbers, text, tuples, each kind in order.

    >>> sorted([("b", 2), (None, 1), (1, "x"), ("a", 10)], key=row_key)
    [(None, 1), (1, 'x'), ('a', 10), ('b', 2)]
    """
    return tuple(map(_value_key, row))


# ---------------------------------------------------------------- the reads


def violation_page(service, query: ViolationQuery) -> tuple[list[Violation], int]:
    """The page of current violations ``query`` asks for, and how many match in all."""
    found = violation_export(service, query)
    return list(found.violations), found.total


@dataclass(frozen=True)
class Export:
    """A query's violations, made one at a time as ``violations`` is read (an export of
    100k rows need not hold 100k objects); ``columns``: the column names every one of them
    has, None when they differ (several tables) or there are none; ``width``: the widest
    row's number of values."""

    total: int
    columns: tuple[str, ...] | None
    width: int
    violations: Iterator[Violation]


def violation_export(service, query: ViolationQuery) -> Export:
    """What :func:`violation_page` answers, with the violations made lazily (from an
    immutable index: reading them needs no lock)."""
    idx = index(service)
    keep = _matches(idx, query)
    order = idx.order(query.sort)
    if query.descending:
        order = order[::-1]
    if keep is not None:
        order = [i for i in order if keep[i]]
    end = None if query.limit is None else query.offset + query.limit
    page = order[query.offset : end]
    kinds = {(idx.gid[i], len(idx.rows[i])) for i in page}
    shapes = {idx.groups[g].column_names(width) for g, width in kinds}
    columns = shapes.pop() if len(shapes) == 1 else None
    width = max((w for _, w in kinds), default=0)
    return Export(len(order), columns, width, (idx.violation(i) for i in page))


def _matches(idx: _Index, query: ViolationQuery) -> list[bool] | None:
    """Per position, whether it matches (None: every one does)."""
    wanted = [
        (query.policy is None or g.policy == query.policy)
        and (query.table is None or g.table == query.table)
        and (query.severity is None or (g.severity or NO_SEVERITY) == query.severity)
        and (query.pack is None or g.pack == query.pack)
        and (query.datasource is None or query.datasource in g.datasources)
        for g in idx.groups
    ]
    if not query.q and all(wanted):
        return None
    if not query.q:
        return [wanted[g] for g in idx.gid]
    needle = query.q.lower()
    return [wanted[g] and needle in text for g, text in zip(idx.gid, idx.text(), strict=True)]


def summary(service) -> dict[str, Any]:
    """Counts of the current violations and the datasources in trouble::

        {"total": n, "by_table": {"error": n, "warning": n},
         "by_policy": {policy: n}, "by_pack": {pack id: n},
         "by_severity": {"critical": n, ..., "info": n, "none": n},
         "datasources": [{"name", "driver", "problem", "error", "error_at",
                          "consecutive_failures", "next_poll_in_s", "last_updated"}]}

    ``problem`` is ``failing`` (the last poll failed; it is retried with a growing backoff,
    ``next_poll_in_s``), ``unavailable`` (its driver could not start) or ``never_reported``
    (enabled and polled, no poll has succeeded yet). Disabled datasources are left out.
    """

    def troubled() -> list[dict[str, Any]]:
        return [t for d in service.datasources.live.values() if (t := _trouble(d))]

    idx, trouble = _index_and(service, troubled)
    sizes = Counter(idx.gid)
    by_policy: Counter[str] = Counter()
    by_pack: Counter[str] = Counter()
    by_table: Counter[str] = Counter(dict.fromkeys(VIOLATION_TABLES, 0))
    by_severity: Counter[str] = Counter(dict.fromkeys(SEVERITY_FILTERS, 0))
    for g, n in sizes.items():
        group = idx.groups[g]
        by_policy[group.policy] += n
        by_table[group.table] += n
        by_severity[group.severity or NO_SEVERITY] += n
        if group.pack is not None:
            by_pack[group.pack] += n
    return {
        "total": len(idx.rows),
        "by_table": dict(by_table),
        "by_policy": dict(sorted(by_policy.items())),
        "by_pack": dict(sorted(by_pack.items())),
        "by_severity": dict(by_severity),
        "datasources": sorted(trouble, key=lambda t: t["name"]),
    }


def _trouble(live) -> dict[str, Any] | None:
    if not live.record.enabled:
        return None
    status = live.status
    if getattr(live.driver, "broken", False):
        problem = "unavailable"
    elif status.last_error is not None:
        problem = "failing"
    elif not live.driver.pushed and not status.initialized:
        problem = "never_reported"
    else:
        return None
    return {
        "name": live.name,
        "driver": live.record.driver,
        "problem": problem,
        "error": status.last_error,
        "error_at": status.last_error_at.isoformat() if status.last_error_at else None,
        "consecutive_failures": status.consecutive_failures,
        "next_poll_in_s": status.next_poll_in_s,
        "last_updated": status.last_updated.isoformat() if status.last_updated else None,
    }


def history(
    service, window: str, *, now: datetime | None = None, policy: str | None = None
) -> list[tuple[datetime, int]]:
    """``(bucket start, violations open at some moment of the bucket)`` over the window,
    oldest first (``WINDOWS`` gives each window's buckets; the last one holds ``now``).

    Counted from the stored intervals (every policy's, or ``policy``'s): a violation that
    appeared and cleared within one bucket counts in it, so a snapshot cannot hide it. The
    answer is kept until the service records a violation change (or the buckets move on).
    """
    if window not in WINDOWS:
        raise bad_parameter("window", window, ", ".join(WINDOWS))
    step, count = WINDOWS[window]
    now = now or datetime.now(UTC)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    last = epoch + step * ((now - epoch) // step)  # the bucket holding now starts here
    starts = [last - step * (count - 1 - i) for i in range(count)]
    cache = _cache(service)
    with service.lock:  # the stored history changes with the open violations, or a policy
        key = (service.violation_changes, service.engine.generation, window, last, policy)
    found = cache.history.get(key)
    if found is None:
        timeline = service.stored(service.store.violation_timeline, starts[0], last + step, policy)
        found = buckets(timeline, starts, step)
        kept = {k: v for k, v in cache.history.items() if k[:2] == key[:2]}
        cache.history = kept | {key: found}
    return list(found)


def buckets(
    timeline: Timeline, starts: list[datetime], step: timedelta
) -> list[tuple[datetime, int]]:
    """Per bucket ``[s, s + step)``: the intervals open at the window's start or appeared
    before ``s + step``, less those cleared at or before ``s`` (see
    :class:`~charter.store.history.Timeline`)."""
    out = []
    opened, closed = timeline.opened_before, 0
    appeared, cleared = timeline.appeared, timeline.cleared
    a = c = 0
    for s in starts:
        end = s + step
        while a < len(appeared) and appeared[a][0] < end:
            opened += appeared[a][1]
            a += 1
        while c < len(cleared) and cleared[c][0] <= s:
            closed += cleared[c][1]
            c += 1
        out.append((s, opened - closed))
    return out


def recent(service, limit: int = 20, *, policy: str | None = None) -> list[ViolationEvent]:
    """The latest ``limit`` violations that appeared or cleared, newest first
    (``ViolationEvent``: event ``appeared``/``cleared``, policy, table, row, at)."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise bad_parameter("limit", limit, f"an integer from 1 to {MAX_LIMIT}")
    return service.stored(service.store.violation_events, limit, policy)
