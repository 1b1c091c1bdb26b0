"""The engine's one currency: row deltas in, table deltas out.

>>> Delta("nova:servers", ("vm1", "ACTIVE"), +1)
Delta(table='nova:servers', row=('vm1', 'ACTIVE'), sign=1)
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(slots=True)
class TableDelta:
    """What became true and what stopped being true in one table during one batch."""

    inserted: set[tuple] = field(default_factory=set)
    deleted: set[tuple] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.inserted or self.deleted)

    def to_json(self) -> dict:
        return {
            "inserted": sorted(self.inserted, key=repr),
            "deleted": sorted(self.deleted, key=repr),
        }
