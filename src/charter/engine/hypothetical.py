"""Hypothetical changes: a bookmark of what undoing a batch by its inverse does not
restore, and a context that mutes the subscribers and rewinds to it (simulate, admission
checks).

>>> from charter.engine import Engine
>>> eng = Engine()
>>> with eng.hypothetical():
...     _ = eng.insert_rows("p:t", [(1,)])
...     _ = eng.delete_rows("p:t", [(1,)])
>>> eng.tables()
[]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from charter.lang.ast import Rule

if TYPE_CHECKING:
    from charter.engine.engine import Engine


@dataclass
class _Bookmark:
    arity: dict[str, int]
    relations: set[str]
    order: dict[str, list[Rule]]
    rule_stamp: int


class Hypothetical:
    """The part of :class:`~charter.engine.engine.Engine` that makes changes hypothetical;
    the engine's ``__init__`` makes the state it reads."""

    @contextmanager
    def hypothetical(self) -> Iterator[Engine]:
        """Changes made inside, and undone by the caller before it ends, leave no trace.

        The caller undoes its rows and rules with their inverse changes; on exit the engine
        restores what an undo does not (``bookmark``/``rewind``), and the subscribers are
        muted inside so that no callback sees a hypothetical delta (simulate, admission
        checks).
        """
        mark = self.bookmark()
        subscribers = self._subscribers
        self._subscribers = defaultdict(list)
        try:
            yield self
        finally:
            self._subscribers = subscribers
            self.rewind(mark)

    def bookmark(self) -> _Bookmark:
        """What undoing a batch by its inverse changes does not restore: arities learned from
        its rows (their table would stay listed), the empty relations it created, and the
        order of rules it removed and re-added. ``rewind`` puts them back after the undo."""
        return _Bookmark(
            dict(self._arity),
            set(self.state.relations),
            {name: list(p.rules) for name, p in self.policies.items()},
            self._rule_stamp,
        )

    def rewind(self, mark: _Bookmark) -> None:
        """Restore a bookmark, once the batches since it are undone by their inverses."""
        self._arity = mark.arity
        for table in set(self.state.relations) - mark.relations:
            if not len(self.state.relations[table]) and table not in self.program.derived:
                del self.state.relations[table]
        if self._rule_stamp != mark.rule_stamp:  # no rule changed: the order stands, and
            for name, rules in mark.order.items():  # a decision hashes no rule
                current = self.policies.get(name)
                if current is not None and set(current.rules) == set(rules):
                    current.rules = {r: current.rules[r] for r in rules}
        self.generation += 1
