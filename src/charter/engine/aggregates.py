"""Aggregate values per group, kept current from their auxiliary table.

An aggregate literal ``n = count : { body }`` reads an auxiliary table holding one row per
distinct binding of the body's variables, group-by variables first. Its groups' values are
recomputed only for the groups a batch touched, from that table's index on the group key.
``count`` and ``sum`` of an empty group are 0 (every group exists); ``min``/``max`` of an
empty group have no value (the literal is false).

>>> from charter.engine.relation import Relation
>>> aux = Relation("p:#agg1"); aux.load([("a", 1), ("a", 2), ("b", 5)])
[('a', 1), ('a', 2), ('b', 5)]
>>> agg = AggregateState("sum", 1, lambda row: row[1])
>>> agg.refresh(aux, ["a", "b", "c"]); agg.value("a", False), agg.value("c", False)
(3, 0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from charter.engine.columnar import id_counts
from charter.engine.relation import Relation, key_getter

_ABSENT = object()


class AggregateState:
    """Current group values of one aggregate, and their values before the batch."""

    def __init__(self, func: str, width: int, target: Callable[[tuple], Any] | None):
        self.func = func
        self.width = width
        self.columns = tuple(range(width))
        self.key_of = key_getter(self.columns)
        self.target = target
        self.groups: dict[Any, Any] = {}
        # The groups as NumPy (keys, values) when a columnar rebuild made them and nothing
        # changed since: what a whole evaluation in SQL reads, without a Python loop.
        self.arrays: tuple[np.ndarray, np.ndarray] | None = None
        self._before: dict[Any, Any] = {}
        self.errors = 0

    def _empty(self) -> Any:
        return 0 if self.func in ("count", "sum") else None

    def value(self, key: Any, old: bool) -> Any:
        """The group's value now, or (``old``) before the current batch."""
        if old:
            before = self._before.get(key, _ABSENT)
            if before is not _ABSENT:
                return before
        value = self.groups.get(key, _ABSENT)
        return self._empty() if value is _ABSENT else value

    def _compute(self, rows: Iterable[tuple]) -> Any:
        if self.func == "count":
            return sum(1 for _ in rows)
        values = []
        for row in rows:
            try:
                values.append(self.target(row))  # type: ignore[misc]
            except Exception:
                self.errors += 1
        if not values:
            return self._empty()
        try:
            if self.func == "sum":
                return sum(values)
            return min(values) if self.func == "min" else max(values)
        except TypeError:
            self.errors += 1
            return self._empty()

    def refresh(self, relation: Relation, keys: Iterable[Any]) -> None:
        """Recompute the given groups from ``relation``, remembering their old values."""
        self.arrays = None
        for key in keys:
            old = self.groups.get(key, _ABSENT)
            if key not in self._before:
                self._before[key] = self._empty() if old is _ABSENT else old
            bucket = relation.lookup(self.columns, key)
            if bucket:
                self.groups[key] = self._compute(bucket)
            else:
                self.groups.pop(key, None)

    def apply(self, relation: Relation, plus: Iterable[tuple], minus: Iterable[tuple]) -> None:
        """Bring the groups up to date with a batch's rows gained and lost by ``relation``.

        A count moves by the rows each group gained and lost (work as large as the
        change, not as the group); other functions recompute the groups touched.
        """
        if self.func != "count":
            self.refresh(relation, self.touched([*plus, *minus]))
            return
        self.arrays = None
        groups, before, key_of = self.groups, self._before, self.key_of
        for rows, step in ((plus, 1), (minus, -1)):
            for row in rows:
                key = key_of(row)
                now = groups.get(key, 0)
                if key not in before:
                    before[key] = now
                if now + step:
                    groups[key] = now + step
                else:
                    del groups[key]

    def touched(self, rows: Iterable[tuple]) -> set[Any]:
        """The group keys of ``rows``."""
        key_of = self.key_of
        return {key_of(r) for r in rows}

    def rebuild(self, relation: Relation) -> None:
        """Recompute every group (after a whole evaluation of the auxiliary table)."""
        counted = self._count_columnar(relation) if self.func == "count" else None
        if counted is None:
            self.refresh(relation, set(self.groups) | relation.keys(self.columns))
            return
        empty, before, groups = self._empty(), self._before, self.groups
        for key in counted.keys() - before.keys():
            before[key] = groups.get(key, empty)
        for key in groups.keys() - counted.keys() - before.keys():
            before[key] = groups[key]
        self.groups = counted

    def _count_columnar(self, relation: Relation) -> dict | None:
        """Group sizes counted with NumPy, when the table is all columns and one key."""
        base = relation.base
        if not relation.columnar_only or self.width > 1:
            return None
        if self.width == 0:
            return {(): len(base)} if len(base) else {}
        keys, counts = _group_sizes(base.columns[0])
        groups = dict(zip(keys.tolist(), counts.tolist(), strict=True))
        self.arrays = (keys, counts)
        return groups

    def changes(self) -> dict[Any, tuple[Any, Any]]:
        """Groups whose value differs from before the batch: key -> (before, after)."""
        out = {}
        for key, before in self._before.items():
            after = self.value(key, False)
            if before != after or type(before) is not type(after):
                out[key] = (before, after)
        return out

    def end_batch(self) -> None:
        self._before.clear()


def _group_sizes(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a column, ascending, and how many rows hold each.

    Int ids are counted with ``bincount`` (``id_counts``), one pass with no sort: 5 ms
    against 50-60 ms for ``np.unique`` at 880k rows here."""
    counted = id_counts(column)
    if counted is not None:
        low, sizes = counted
        present = np.flatnonzero(sizes)
        return present + low, sizes[present].astype(np.int64, copy=False)
    keys, counts = np.unique(column, return_counts=True)
    return keys, counts.astype(np.int64, copy=False)
