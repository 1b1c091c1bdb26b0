"""Ranks for a recursive stratum: a proof must be well-founded.

Each row gets the least depth of a derivation of it (its semi-naive round), computed over
the AND-OR graph of the derivations a proof may need in rank order (Knuth's generalization
of Dijkstra's algorithm; see :mod:`charter.engine.explain`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from charter.engine.explain_evidence import Key, _Derivation
from charter.engine.program import Stratum

if TYPE_CHECKING:
    from charter.engine.explainer import _Explainer


class _RankGraph:
    """The derivations of a recursive stratum's rows that a proof may need, and their ranks.

    ``expand`` enumerates every derivation of a row and, transitively, of the stratum's
    rows those use (the backward closure); ``rank`` assigns each row the least height of
    a derivation tree, processing rows in rank order (a derivation is ready when its last
    support is ranked), and keeps for each row a derivation of that rank.
    """

    def __init__(self, explainer: _Explainer, stratum: Stratum):
        self.explainer = explainer
        self.tables = stratum.tables
        self.derivations: dict[Key, list[_Derivation]] = {}
        self.ranks: dict[Key, int] = {}
        self.best: dict[Key, _Derivation] = {}

    def best_for(self, key: Key) -> _Derivation | None:
        if key not in self.ranks and self.expand(key):
            self.rank()
        return self.best.get(key)

    def expand(self, key: Key) -> bool:
        """Add the backward closure of ``key``; whether anything was new."""
        stack = [key]
        added = False
        while stack:
            current = stack.pop()
            if current in self.derivations:
                continue
            found = self.explainer.all_derivations(*current)
            self.derivations[current] = found
            added = True
            for d in found:
                stack.extend(s for s in d.supports(self.tables) if s not in self.derivations)
        return added

    def rank(self) -> None:
        users: dict[Key, list[tuple[Key, int]]] = {}
        waiting: dict[tuple[Key, int], int] = {}
        level: list[tuple[Key, _Derivation]] = []
        for key, found in self.derivations.items():
            for n, d in enumerate(found):
                supports = d.supports(self.tables)
                if not supports:
                    level.append((key, d))
                    continue
                waiting[(key, n)] = len(supports)
                for s in supports:
                    users.setdefault(s, []).append((key, n))
        ranks: dict[Key, int] = {}
        best: dict[Key, _Derivation] = {}
        rank = 0
        while level:
            following: list[tuple[Key, _Derivation]] = []
            for key, d in level:
                if key in ranks or key == self.explainer.exclude:
                    continue
                ranks[key], best[key] = rank, d
                for user in users.get(key, ()):
                    waiting[user] -= 1
                    if not waiting[user]:
                        following.append((user[0], self.derivations[user[0]][user[1]]))
            level, rank = following, rank + 1
        self.ranks, self.best = ranks, best
