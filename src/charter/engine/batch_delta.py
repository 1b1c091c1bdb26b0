"""One batch's deltas of a table: what it gained and lost, for reading its old version.

Delta rules read the literals before the changed one as they were before the batch; a
table's old version is its current rows less those gained plus those lost, looked up by
key (``old_bucket``), counted (``old_count``) or tested (``old_contains``) without copying
the table.
"""

from __future__ import annotations

from collections.abc import Iterable

from charter.engine.columnar import ColumnStore, NotColumnar
from charter.engine.relation import Key, Relation, Row, key_getter


class BatchDelta:
    """What one table gained and lost in the current batch, for reading its old version.

    After a bulk load into an empty table every row is new; ``BatchDelta.everything`` says
    so without building a set of a million rows unless someone reads ``plus``. A large
    batch gives its rows as lists and columns (``of_lists``): the sets are made when read.
    """

    __slots__ = ("_plus", "_minus", "_minus_indexes", "_plus_indexes", "_all", "_stores")

    def __init__(self, plus: set[Row] | None = None, minus: set[Row] | None = None):
        self._plus: set[Row] | list[Row] | None = plus if plus is not None else set()
        self._minus: set[Row] | list[Row] = minus if minus is not None else set()
        self._minus_indexes: dict[tuple[int, ...], dict[Key, list[Row]]] = {}
        self._plus_indexes: dict[tuple[int, ...], dict[Key, list[Row]]] = {}
        self._all: Relation | None = None
        self._stores: dict[bool, ColumnStore | None] = {}

    @classmethod
    def everything(cls, relation: Relation) -> BatchDelta:
        """Every row of ``relation`` is new in this batch (it was empty before)."""
        delta = cls()
        delta._plus = None
        delta._all = relation
        return delta

    @classmethod
    def of_lists(
        cls,
        plus: list[Row],
        minus: list[Row],
        plus_store: ColumnStore | None,
        minus_store: ColumnStore | None,
    ) -> BatchDelta:
        """Distinct rows gained and lost, also as columns (None when there are none)."""
        delta = cls()
        delta._plus, delta._minus = plus, minus
        delta._stores = {True: plus_store, False: minus_store}
        return delta

    @property
    def plus(self) -> set[Row]:
        plus = self._plus
        if type(plus) is not set:
            if plus is None:
                plus = set(self._all) if self._all is not None else set()
            else:
                plus = set(plus)
            self._plus = plus
        return plus  # type: ignore[return-value]

    @property
    def minus(self) -> set[Row]:
        minus = self._minus
        if type(minus) is not set:
            minus = self._minus = set(minus)
        return minus  # type: ignore[return-value]

    @property
    def all_new(self) -> bool:
        """Whether the table was empty before the batch (so its old version is empty)."""
        return self._all is not None

    def size(self) -> int:
        """Rows changed, without making sets."""
        if self._plus is None:
            return (len(self._all) if self._all is not None else 0) + len(self._minus)
        return len(self._plus) + len(self._minus)

    def __bool__(self) -> bool:  # without size(): asked of every delta a change touches
        if self._plus is None:
            return bool(self._minus) or (self._all is not None and len(self._all) > 0)
        return bool(self._plus) or bool(self._minus)

    def store(self, plus: bool) -> ColumnStore | None:
        """``plus`` (or ``minus``) as columns, None when empty; cached (set-at-a-time reads).
        Raises NotColumnar when the rows do not fit typed columns."""
        if plus not in self._stores:
            rows = list(self.plus if plus else self.minus)
            store = ColumnStore.from_rows(rows) if rows else None
            if rows and store is None:
                raise NotColumnar("changed rows have columns of mixed kinds")
            self._stores[plus] = store
        return self._stores[plus]

    def minus_index(self, columns: tuple[int, ...]) -> dict[Key, list[Row]]:
        """Removed rows by key, so the old version of a table can be looked up."""
        index = self._minus_indexes.get(columns)
        if index is None:
            index = self._minus_indexes[columns] = _by_key(self.minus, columns)
        return index

    def plus_index(self, columns: tuple[int, ...]) -> dict[Key, list[Row]]:
        """Gained rows by key (for counting the old version's rows with a key)."""
        index = self._plus_indexes.get(columns)
        if index is None:
            index = self._plus_indexes[columns] = _by_key(self.plus, columns)
        return index

    def old_bucket(self, relation: Relation, columns: tuple[int, ...], key: Key) -> list[Row]:
        """Rows of ``relation`` with ``key`` on ``columns``, as they were before the batch."""
        if self.all_new:
            return list(self.minus_index(columns).get(key, ()))
        plus = self.plus
        rows = [r for r in relation.lookup(columns, key) if r not in plus]
        rows += self.minus_index(columns).get(key, ())
        return rows

    def old_count(self, relation: Relation, columns: tuple[int, ...], key: Key) -> int:
        """``len(old_bucket(...))`` without making the rows: the rows with the key now,
        less those gained, plus those lost."""
        lost = len(self.minus_index(columns).get(key, ()))
        if self.all_new:
            return lost
        gained = len(self.plus_index(columns).get(key, ()))
        return relation.count_key(columns, key) - gained + lost

    def old_rows(self, relation: Relation) -> Iterable[Row]:
        """All rows of ``relation`` before the batch."""
        if self.all_new:
            yield from self.minus
            return
        plus = self.plus
        for row in relation:
            if row not in plus:
                yield row
        yield from self.minus

    def old_contains(self, relation: Relation, row: Row) -> bool:
        if self.all_new:
            return row in self.minus
        return row in self.minus or (row in relation and row not in self.plus)


def _by_key(rows: Iterable[Row], columns: tuple[int, ...]) -> dict[Key, list[Row]]:
    getter = key_getter(columns)
    index: dict[Key, list[Row]] = {}
    for row in rows:
        index.setdefault(getter(row), []).append(row)
    return index
