"""Replaying a pushed table's log over its base (see :mod:`charter.store.push`): the rows a
load returns and a compaction writes, one block of the base at a time.

The log is read first, whole, into its effect: the rows it deleted and the rows it leaves
inserted (:class:`LogEffect`). Then each block of the base is decoded and filtered by it, and
the inserted rows follow the base. So a compaction holds one block of the base at a time, not
the table, and neither side builds a dictionary of every row.

Set semantics, as the engine's tables: rows are found by equality (a row stored as ``(1,)``
is deleted as ``(1.0,)``); inserting a row the table holds keeps the one held, where it is;
a row deleted and inserted again moves to the end. NaN equals nothing, not even itself, so
a log that deletes a row holding one is replayed row by row, finding the row by its other
values and NaN's place.

>>> from charter.store.blocks import encode_block as b
>>> replay([b([(1,), (2,), (3,)])], [(b([(4,), (2.0,), (1,)]), b([(1,), (9,)]))])
([(2,), (3,), (4,), (1,)], 5)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import filterfalse

from charter.store.blocks import decode_block, holds_nan

Entry = tuple[bytes, bytes]
"""One log entry: the block of rows it inserted, the block of rows it deleted."""


class LogEffect:
    """What a log does to the base under it: the rows it deleted, the rows it leaves inserted
    (in order), and how many rows its entries named."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = list(entries)
        self.gone: set[tuple] = set()
        self.added: dict[tuple, None] = {}
        self.named = 0
        self.nan = False
        for inserted, deleted in self.entries:
            gone = decode_block(deleted)
            self.nan = self.nan or holds_nan(deleted)
            self.gone.update(gone)
            if self.added:
                for row in self.added.keys() & gone:
                    del self.added[row]
            new = decode_block(inserted)
            self.added.update(dict.fromkeys(new))  # a row held keeps its place and its object
            self.named += len(gone) + len(new)

    def over(self, base: Iterable[bytes]) -> Iterator[list[tuple]]:
        """The table, a block of the base at a time, then the rows inserted (once: this
        consumes the effect)."""
        if self.nan:
            yield _replay_by_row([r for data in base for r in decode_block(data)], self.entries)
            return
        gone, added = self.gone, self.added
        for data in base:
            rows = decode_block(data)
            if gone:
                rows = list(filterfalse(gone.__contains__, rows))
            if added:
                for row in added.keys() & rows:  # inserted while held: the base keeps it
                    del added[row]
            yield rows
        if added:
            yield list(added)


def replay(base: Sequence[bytes], entries: Iterable[Entry]) -> tuple[list[tuple], int]:
    """The rows of the base (its blocks) with the log ``entries`` replayed over it, and how
    many rows the entries named."""
    effect = LogEffect(entries)
    rows: list[tuple] = []
    for part in effect.over(base):
        rows += part
    return rows, effect.named


# ---------------------------------------------------------------- NaN


def _has_nan(row: tuple) -> bool:
    return any(v != v for v in row)


def _nan_key(row: tuple) -> tuple:
    return tuple(_NAN if v != v else v for v in row)


_NAN = object()
_ABSENT = object()


def _replay_by_row(base: list[tuple], entries: list[Entry]) -> list[tuple]:
    """The replay row by row, a NaN row found by its other values (a log that deletes one)."""
    current = dict.fromkeys(base)
    nan_rows: dict[tuple, list[tuple]] = {}
    for held in current:
        if _has_nan(held):
            nan_rows.setdefault(_nan_key(held), []).append(held)
    for inserted, deleted in entries:
        for row in decode_block(deleted):
            if current.pop(row, _ABSENT) is _ABSENT and _has_nan(row):
                same = nan_rows.get(_nan_key(row))
                while same:
                    held = same.pop()
                    if held in current:
                        del current[held]
                        break
        new = decode_block(inserted)
        current.update(dict.fromkeys(new))
        for row in new:
            if _has_nan(row):
                nan_rows.setdefault(_nan_key(row), []).append(row)
    return list(current)
