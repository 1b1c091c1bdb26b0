"""The planner's join order, chosen one literal at a time in time independent of the body.

The choice (what ``planner`` has always made): a filter (negation, comparison, builtin,
aggregate look-up) as soon as what it needs is bound, the first written first; else the
table literal with the most bound variables, then the most constants, then the smallest
table, then the first written. Re-scoring every remaining literal at every step made
planning cubic in the body (a rule of 320 literals took 18 s to plan its delta rules);
here each step costs what the variables it binds touch:

- :class:`RuleShape`, made once per rule, indexes which literals each variable appears
  in, and how often the head and the body use each variable;
- :class:`Greedy` keeps, per plan, a heap of the table literals that share a bound
  variable (their score only improves as variables are bound, so stale entries are
  skipped when popped), a heap of the filters found ready, and a pointer into the table
  literals sorted by their static score, for when nothing shares a bound variable.

>>> from charter.lang.parser import parse_rule
>>> rule = parse_rule("p(x) :- a(x, y), y > 1, b(y, z), c(x), not d(z)")
>>> shape = RuleShape(rule, {})
>>> greedy = Greedy(shape, lambda table: 10, set(), set())
>>> [greedy.next() for _ in range(5)], greedy.next()
([0, 1, 2, 4, 3], None)
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from charter.lang.ast import (
    Aggregate,
    Atom,
    Constant,
    Modal,
    Rule,
    Variable,
    literal_variables,
)
from charter.lang.errors import EngineError
from charter.lang.safety import binds, needs

if TYPE_CHECKING:
    from charter.engine.planner import AggregateSpec


class RuleShape:
    """What every plan of one rule shares: variable -> literals, use counts, constants."""

    def __init__(self, rule: Rule, aggregates: dict[int, AggregateSpec]):
        self.rule = rule
        self.aggregates = aggregates
        body = rule.body
        # How many places (head occurrences, body literals) use each variable: a variable
        # used in one literal only is matched there but not carried in bindings.
        uses: Counter[str] = Counter()
        for head in rule.heads:
            atom = head.atom if isinstance(head, Modal) else head
            uses.update(v.name for v in literal_variables(atom))
        self.atoms: list[int] = []
        self.filters: list[int] = []
        self.consts: dict[int, int] = {}
        self.keys: dict[int, frozenset[str]] = {}
        # variable -> [(atom index, occurrences)] and variable -> [filter index]
        self.atom_vars: dict[str, list[tuple[int, int]]] = {}
        self.var_counts: dict[int, list[tuple[str, int]]] = {}  # atom -> its variables
        self.filter_vars: dict[str, list[int]] = {}
        for i, literal in enumerate(body):
            if isinstance(literal, Aggregate):
                spec = aggregates[i]
                uses.update(spec.keys)
                uses[literal.result.name] += 1
                self.keys[i] = frozenset(spec.keys)
            else:
                uses.update({v.name for v in literal_variables(literal)})
            if isinstance(literal, Atom):
                self.atoms.append(i)
                occurrences = Counter(t.name for t in literal.args if isinstance(t, Variable))
                for name, n in occurrences.items():
                    self.atom_vars.setdefault(name, []).append((i, n))
                self.var_counts[i] = list(occurrences.items())
                self.consts[i] = sum(1 for t in literal.args if isinstance(t, Constant))
            else:
                self.filters.append(i)
                names = {v.name for v in literal_variables(literal)} | self.keys.get(i, set())
                for name in names:
                    self.filter_vars.setdefault(name, []).append(i)
        self.uses = uses
        # Filters that need nothing bound (x = 1, a ground comparison): ready in every plan.
        self.free = [i for i in self.filters
                     if not needs(body[i], set(), self.keys.get(i, frozenset()))]
        self._static: list[int] | None = None
        self._ranked: dict[str, list[int]] = {}

    def ranked_atoms(self, name: str, size: Callable[[str], int]) -> list[int]:
        """The atoms of variable ``name``, best first as joins once it is bound (made once)."""
        found = self._ranked.get(name)
        if found is None:
            body = self.rule.body
            found = self._ranked[name] = [i for _, i in sorted(
                ((-n, -self.consts[i], size(body[i].qualified), i), i)  # type: ignore[union-attr]
                for i, n in self.atom_vars[name])]
        return found

    def static_order(self, size: Callable[[str], int]) -> list[int]:
        """Table literals by the score they have with no variable bound (made once)."""
        if self._static is None:
            body = self.rule.body

            def score(i: int) -> tuple:
                n = self.consts[i]
                return (1 if n else 2, -n, size(body[i].qualified), i)  # type: ignore[union-attr]

            self._static = sorted(self.atoms, key=score)
        return self._static


#: A variable in more literals than this is followed by a cursor over its literals (best
#: first) rather than by a heap entry for each: binding the ``x`` of a star-shaped rule of
#: 10,000 literals must not cost 10,000 pushes in each of its delta plans. Within this
#: degree (every rule of at most 64 literals) the order is exactly the greedy's.
HIGH_DEGREE = 64


class Greedy:
    """One plan's join order, produced literal by literal (``next``)."""

    __slots__ = ("shape", "size", "bound", "used", "_joined", "_ready", "_static", "_at",
                 "_remaining", "_seq")

    def __init__(self, shape: RuleShape, size: Callable[[str], int], bound: set[str],
                 used: set[int]):
        self.shape = shape
        self.size = size
        self.bound: set[str] = set()
        self.used = set(used)
        self._remaining = len(shape.rule.body) - len(self.used)
        # Heaps. Ready filters: (index, cursor list or None, position in it). Atoms sharing
        # a bound variable: (-votes, -constants, size, index, votes, cursor, position),
        # votes being the occurrences of bound variables in the atom when pushed (they only
        # grow, so an entry whose count changed is stale and looked at again).
        self._ready: list[tuple] = []
        self._joined: list[tuple] = []
        self._static = shape.static_order(size)
        self._at = 0
        self._seq = itertools.count()  # ties broken by push order, never by the cursors
        if shape.free:
            self._ready.append((shape.free[0], next(self._seq), shape.free, 0))
        self.bind(bound)

    def _votes(self, i: int) -> int:
        bound = self.bound
        return sum(n for name, n in self.shape.var_counts[i] if name in bound)

    def _push_atom(self, i: int, cursor: list[int] | None = None, position: int = 0) -> None:
        votes = self._votes(i)
        size = self.size(self.shape.rule.body[i].qualified)  # type: ignore[union-attr]
        heapq.heappush(self._joined, (-votes, -self.shape.consts[i], size, i, votes,
                                      next(self._seq), cursor, position))

    def bind(self, names: set[str] | list[str]) -> None:
        """Note variables bound (by the seed, or the literal just chosen)."""
        shape, body = self.shape, self.shape.rule.body
        fresh = [n for n in names if n not in self.bound]
        self.bound.update(fresh)
        for name in fresh:
            atoms = shape.atom_vars.get(name, ())
            if len(atoms) > HIGH_DEGREE:
                ranked = shape.ranked_atoms(name, self.size)
                self._push_atom(ranked[0], ranked, 0)
            else:
                for i, _ in atoms:
                    if i not in self.used:
                        self._push_atom(i)
            filters = shape.filter_vars.get(name, ())
            if len(filters) > HIGH_DEGREE:
                heapq.heappush(self._ready, (filters[0], next(self._seq), filters, 0))
                continue
            for i in filters:
                if i not in self.used and not needs(body[i], self.bound,
                                                     shape.keys.get(i, frozenset())):
                    heapq.heappush(self._ready, (i, next(self._seq), None, 0))

    def next(self) -> int | None:
        """The next literal to run (its variables then count as bound), None when done."""
        if not self._remaining:
            return None
        chosen = self._choose()
        self.used.add(chosen)
        self._remaining -= 1
        self.bind(binds(self.shape.rule.body[chosen], self.bound))
        return chosen

    def _choose(self) -> int:
        used, shape, body = self.used, self.shape, self.shape.rule.body
        while self._ready:
            i, _, cursor, position = heapq.heappop(self._ready)
            if cursor is not None:  # a cursor: its next filter waits its turn
                if position + 1 < len(cursor):
                    heapq.heappush(self._ready, (cursor[position + 1], next(self._seq), cursor,
                                                 position + 1))
                if i in used or needs(body[i], self.bound, shape.keys.get(i, frozenset())):
                    continue
            if i not in used:
                return i
        while self._joined:
            entry = heapq.heappop(self._joined)
            i, votes, cursor, position = entry[3], entry[4], entry[6], entry[7]
            if cursor is not None:
                while position + 1 < len(cursor) and cursor[position + 1] in used:
                    position += 1
                if position + 1 < len(cursor):
                    self._push_atom(cursor[position + 1], cursor, position + 1)
            if i in used:
                continue
            if self._votes(i) != votes:  # more of its variables are bound now: re-rank it
                self._push_atom(i)
                continue
            return i
        static = self._static
        while self._at < len(static):
            i = static[self._at]
            self._at += 1
            if i not in used:
                return i
        rule = self.shape.rule
        raise EngineError(f"rule {rule} cannot be ordered safely (it should not have passed "
                          "checks)")
