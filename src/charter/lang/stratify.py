"""The dependency graph of tables, its strongly connected components, and strata.

Recursion is allowed; negation and aggregation must not take part in a cycle. An edge
``head <- body`` is labelled ``positive``, ``negative`` or ``aggregate``.

>>> g = DependencyGraph()
>>> g.add("p", "q", POSITIVE); g.add("q", "p", POSITIVE); g.add("r", "p", NEGATIVE)
>>> [sorted(s.tables) for s in g.strata()]
[['p', 'q'], ['r']]
>>> g.add("p", "r", POSITIVE)
>>> g.unstratifiable()[0]
['r', 'not p', 'r']
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

POSITIVE = "positive"
NEGATIVE = "negative"
AGGREGATE = "aggregate"


@dataclass(frozen=True)
class Stratum:
    """Tables evaluated together; ``recursive`` when they depend on themselves."""

    tables: frozenset[str]
    recursive: bool


class DependencyGraph:
    """Edges from each head table to the tables its rules read."""

    def __init__(self) -> None:
        self.edges: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.nodes: dict[str, None] = {}

    def add(self, head: str, body: str, kind: str) -> None:
        self.nodes.setdefault(head)
        self.nodes.setdefault(body)
        self.edges[head][body].add(kind)

    def components(self) -> list[list[str]]:
        """Strongly connected components, dependencies before dependents (iterative Tarjan)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        result: list[list[str]] = []
        counter = 0
        for root in self.nodes:
            if root in index:
                continue
            work = [(root, iter(self.edges.get(root, {})))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                node, children = work[-1]
                advanced = False
                for child in children:
                    if child not in index:
                        index[child] = low[child] = counter
                        counter += 1
                        stack.append(child)
                        on_stack.add(child)
                        work.append((child, iter(self.edges.get(child, {}))))
                        advanced = True
                        break
                    if child in on_stack:
                        low[node] = min(low[node], index[child])
                if advanced:
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    result.append(component)
        return result

    def strata(self) -> list[Stratum]:
        """Components in evaluation order, each marked recursive or not."""
        out = []
        for component in self.components():
            members = frozenset(component)
            recursive = len(component) > 1 or component[0] in self.edges.get(component[0], {})
            out.append(Stratum(members, recursive))
        return out

    def unstratifiable(self) -> list[list[str]]:
        """Each cycle through negation or aggregation, as the path of tables around it."""
        cycles = []
        for component in self.components():
            members = set(component)
            for head in component:
                for body, kinds in self.edges.get(head, {}).items():
                    bad = kinds & {NEGATIVE, AGGREGATE}
                    if body in members and bad:
                        path = self._path(body, head, members)
                        label = ("not " if NEGATIVE in bad else "aggregate over ") + body
                        cycles.append([head, label, *path[1:]])
        return cycles

    def _path(self, start: str, goal: str, members: set[str]) -> list[str]:
        """Shortest dependency path from ``start`` to ``goal`` inside one component."""
        previous: dict[str, str | None] = {start: None}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if node == goal:
                break
            for child in self.edges.get(node, {}):
                if child in members and child not in previous:
                    previous[child] = node
                    queue.append(child)
        path = [goal]
        while previous.get(path[-1]) is not None:
            path.append(previous[path[-1]])  # type: ignore[arg-type]
        return list(reversed(path))
