"""The engine's one currency: row deltas in, table deltas out.

>>> Delta("nova:servers", ("vm1", "ACTIVE"), +1)
Delta(table='nova:servers', row=('vm1', 'ACTIVE'), sign=1)
"""

from __future__ import annotations

from dataclasses import dataclass

from charter.lang.ast import Rule


@dataclass(frozen=True, slots=True)
class Delta:
    """Insert (``sign=+1``) or delete (``sign=-1``) one row of a table ``module:table``."""

    table: str
    row: tuple
    sign: int = 1


@dataclass(frozen=True, slots=True)
class RuleChange:
    """Add (``sign=+1``) or remove (``sign=-1``) a rule of a policy, inside a batch."""

    policy: str
    rule: Rule
    sign: int = 1


class TableDelta:
    """What became true and what stopped being true in one table during one batch.

    Built from the engine's batch delta; ``inserted`` and ``deleted`` are made into sets
    of rows when they are read (after a bulk load or a large batch, maybe never).
    """

    __slots__ = ("_inserted", "_deleted", "_source")

    def __init__(self, inserted: set[tuple] | None = None, deleted: set[tuple] | None = None):
        self._inserted = inserted if inserted is not None else set()
        self._deleted = deleted if deleted is not None else set()
        self._source = None

    @classmethod
    def of(cls, batch_delta) -> TableDelta:
        delta = cls()
        delta._inserted = delta._deleted = None
        delta._source = batch_delta
        return delta

    @property
    def inserted(self) -> set[tuple]:
        if self._inserted is None:
            self._inserted = self._source.plus
        return self._inserted

    @property
    def deleted(self) -> set[tuple]:
        if self._deleted is None:
            self._deleted = self._source.minus
        return self._deleted

    def __len__(self) -> int:
        if self._inserted is None or self._deleted is None:
            return self._source.size()
        return len(self._inserted) + len(self._deleted)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableDelta):
            return NotImplemented
        return self.inserted == other.inserted and self.deleted == other.deleted

    def __repr__(self) -> str:
        return f"TableDelta(inserted={self.inserted!r}, deleted={self.deleted!r})"

    def to_json(self) -> dict:
        return {
            "inserted": sorted(self.inserted, key=repr),
            "deleted": sorted(self.deleted, key=repr),
        }
