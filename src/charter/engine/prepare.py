"""The indexes incremental maintenance will look up, built ahead of the first change.

A column store builds a sorted index at its first look-up on some columns, and packed row
keys at its first ``find``; a small relation is hashed at its first look-up. After bulk
work (a load, a whole evaluation) that first look-up would fall on whichever change comes
first, each of several then waiting 10-300 ms at a million rows. The plans say which
look-ups changes will make (each delta plan's join steps, the re-derivation plans of
recursive strata, and the finds of rows whose counts change), so right after bulk work the
engine plans the delta rules anew for the sizes it left, hashes the small relations, and
builds the column stores' indexes.

The stores' indexes are NumPy work (radix sorts, gathers) that releases the GIL, on
immutable stores: at a million rows they are built on a thread of their own
(``IndexBuilder``), so the bulk work's tables are readable at once; the engine's next
change waits for the thread (``Engine._apply``), and is the only one that may wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from charter.engine.columnar import ColumnStore
from charter.engine.execute import State
from charter.engine.plan import Absent, NegationSeed, Scan
from charter.engine.planner import HEAD, LAZY_LITERALS
from charter.engine.program import Program

log = logging.getLogger(__name__)

#: A look-up of whole rows (a membership test or a count read by ``find``).
ROWS = None
#: Stores to index holding this many rows in all are indexed on a thread of their own.
BACKGROUND_ROWS = 200_000

Work = list[tuple[ColumnStore, tuple[int, ...] | None]]


def planned_lookups(
    program: Program, size: Callable[[str], int], tables: set[str] | None = None
) -> dict[str, set[tuple[int, ...] | None]]:
    """Table -> the columns its delta plans look it up by (``ROWS``: whole-row finds).

    The plans are made anew here, for the tables' current (post-bulk) sizes, and cached:
    a plan made for the empty tables a policy starts with would join a million-row table
    before a small one. ``tables``: only the plans of the strata making or reading these
    (every stratum's when None)."""
    found: dict[str, set[tuple[int, ...] | None]] = {}
    strata = program.strata
    if tables is not None:
        readers = program.readers
        positions = {i for t in tables for i in readers.get(t, ())}
        positions.update(i for i, s in enumerate(strata) if not s.tables.isdisjoint(tables))
        strata = [strata[i] for i in sorted(positions)]

    def add(table: str, columns: tuple[int, ...] | None) -> None:
        if columns != ():  # a literal binding no column reads the whole table: no index
            found.setdefault(table, set()).add(columns)

    for stratum in strata:
        for compiled in stratum.rules:
            compiled.forget_plans()
            add(compiled.head, ROWS)  # counts of derived rows change through ``find``
            starts: list[int | str] = [i for i, _ in compiled.inputs()]
            if stratum.recursive:
                starts.append(HEAD)
            if len(compiled.rule.body) > LAZY_LITERALS:
                starts = []  # its plans are made step by step as they run: look-ups on use
            for start in starts:
                plan = compiled.plan(start, size)
                if isinstance(plan.seed, NegationSeed):
                    add(plan.seed.table, plan.seed.columns)
                for step in plan.steps:
                    if isinstance(step, Scan | Absent):
                        add(step.table, ROWS if step.full else step.columns)
            for _, table in compiled.inputs():
                if table not in program.derived:
                    add(table, ROWS)  # a base row's change first asks whether it is there
    return found


def build_indexes(
    program: Program, state: State, size: Callable[[str], int], tables: set[str] | None = None
) -> IndexBuilder | None:
    """Plan the delta rules anew, hash the small relations they read and build the
    column stores' indexes not built yet: here, or on a started ``IndexBuilder``
    (returned) when the stores to index are large. ``tables``: only for the plans of the
    strata making or reading these (``planned_lookups``)."""
    work: Work = []
    seen: set[tuple[int, tuple[int, ...] | None]] = set()
    for table, lookups in planned_lookups(program, size, tables).items():
        relation = state.relations.get(table)
        if relation is None:
            continue
        for columns in sorted(lookups, key=lambda c: c or ()):
            for store, cols in relation.prepare(columns):
                if store.prepared(cols):
                    continue
                if (id(store), cols) not in seen:  # a copy shares its source's store
                    seen.add((id(store), cols))
                    work.append((store, cols))
    if sum(store.n for store, _ in work) < BACKGROUND_ROWS:
        _build(work)
        return None
    builder = IndexBuilder(work)
    builder.start()
    return builder


def _build(work: Work) -> None:
    for store, columns in work:
        store.prepare(columns)


class IndexBuilder(threading.Thread):
    """Builds column stores' indexes off the caller's thread; ``join`` waits for them.

    A failure (say, memory) is logged and dropped: an index not built here is built by
    the first look-up that needs it, as without this thread."""

    def __init__(self, work: Work):
        super().__init__(name="charter-index-builder", daemon=True)
        self.work = work

    def run(self) -> None:
        try:
            _build(self.work)
        except Exception:
            log.exception("building indexes ahead failed; they will be built when used")
        finally:
            self.work = []
