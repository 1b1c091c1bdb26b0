"""The indexes incremental maintenance will look up, built ahead of the first change.

A column store builds a sorted index at its first look-up on some columns, and packed row
keys at its first ``find``; a small relation is hashed at its first look-up. After bulk
work (a load, a whole evaluation) that first look-up would fall on whichever change comes
first, which then waits 10-300 ms at a million rows. The plans say which look-ups changes
will make (each delta plan's join steps, the re-derivation plans of recursive strata, and
the finds of rows whose counts change), so the engine builds those right after bulk work,
planning the delta rules anew for the sizes the bulk work left.
"""

from __future__ import annotations

from collections.abc import Callable

from charter.engine.execute import State
from charter.engine.plan import Absent, NegationSeed, Scan
from charter.engine.planner import HEAD
from charter.engine.program import Program

#: A look-up of whole rows (a membership test or a count read by ``find``).
ROWS = None


def planned_lookups(
    program: Program, size: Callable[[str], int]
) -> dict[str, set[tuple[int, ...] | None]]:
    """Table -> the columns its delta plans look it up by (``ROWS``: whole-row finds).

    The plans are made anew here, for the tables' current (post-bulk) sizes, and cached:
    a plan made for the empty tables a policy starts with would join a million-row table
    before a small one."""
    found: dict[str, set[tuple[int, ...] | None]] = {}

    def add(table: str, columns: tuple[int, ...] | None) -> None:
        if columns != ():  # a literal binding no column reads the whole table: no index
            found.setdefault(table, set()).add(columns)

    for stratum in program.strata:
        for compiled in stratum.rules:
            compiled.forget_plans()
            add(compiled.head, ROWS)  # counts of derived rows change through ``find``
            starts: list[int | str] = [i for i, _ in compiled.inputs()]
            if stratum.recursive:
                starts.append(HEAD)
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


def build_indexes(program: Program, state: State, size: Callable[[str], int]) -> None:
    """Build every index ``planned_lookups`` names on the relations that have columns."""
    relations = state.relations
    for table, lookups in planned_lookups(program, size).items():
        relation = relations.get(table)
        if relation is None or relation.base is None:
            continue
        for columns in sorted(lookups, key=lambda c: c or ()):
            relation.prepare(columns)
