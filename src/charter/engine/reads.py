"""Reading the engine: its tables, their rows, pattern queries, the rules' error counts.

>>> from charter.engine import Engine
>>> eng = Engine()
>>> _ = eng.load_policy("p", "big(x) :- size(x, n), n > 2")
>>> _ = eng.insert_rows("p:size", [("a", 1), ("b", 3)])
>>> eng.tables(), eng.rows("p:big"), eng.query("size(x, 3)", policy="p")
(['p:big', 'p:size'], {('b',)}, [('b', 3)])
"""

from __future__ import annotations

import difflib
from dataclasses import replace

from charter.engine.changes import _internal
from charter.lang.ast import Atom, Constant, Rule, Variable
from charter.lang.columns import FreshVariables, resolve_columns
from charter.lang.errors import Diagnostic, EngineError, raise_if_errors
from charter.lang.parser import parse_literal


class Reads:
    """The part of :class:`~charter.engine.engine.Engine` that reads its tables; the
    engine's ``__init__`` makes the state it reads."""

    def tables(self) -> list[str]:
        """Every table the engine knows: with rows, rules or a schema."""
        known = set(self._arity) | self.program.derived
        known |= {t for t, r in self.state.relations.items() if len(r)}
        known |= {f"{m}:{t}" for m in self.schemas.modules for t in self.schemas.modules[m]}
        return sorted(t for t in known if not _internal(t))

    def has_table(self, table: str) -> bool:
        """Whether ``tables()`` lists ``table``, without building that list."""
        if _internal(table):
            return False
        if table in self._arity or table in self.program.derived:
            return True
        relation = self.state.relations.get(table)
        if relation is not None and len(relation):
            return True
        module, sep, name = table.partition(":")
        return bool(sep) and name in self.schemas.modules.get(module, {})

    def arity(self, table: str) -> int | None:
        return self._arity.get(table)

    def _known(self, table: str) -> None:
        if table in self.state.relations or table in self._arity or table in self.program.derived:
            return
        hint = difflib.get_close_matches(table, self.tables(), n=1)
        more = f"; did you mean {hint[0]}?" if hint else ""
        raise EngineError(f"unknown table {table}{more}")

    def rows(self, table: str) -> set[tuple]:
        """The current rows of a table."""
        self._known(table)
        rel = self.state.relations.get(table)
        return set(rel) if rel is not None else set()

    def count(self, table: str) -> int:
        """How many rows a table holds (0 for a known table without rows)."""
        self._known(table)
        rel = self.state.relations.get(table)
        return len(rel) if rel is not None else 0

    def has_stored(self, table: str, row: tuple) -> bool:
        """Whether ``row`` was inserted into ``table`` as a row (for a derived table: as a
        fact), which is what deleting it would undo."""
        rel = self.state.relations.get(self._storage(table, self.program.derived))
        return rel is not None and tuple(row) in rel

    def query(self, pattern: str | Atom, policy: str | None = None) -> list[tuple]:
        """Rows matching a pattern such as ``error(x, "ACTIVE")``, sorted.

        An unqualified table belongs to ``policy``; named columns use the table's schema.
        """
        atom = parse_literal(pattern) if isinstance(pattern, str) else pattern
        theory = atom.theory or policy
        if theory is None:
            raise EngineError(f"{atom} names no policy: write policy:table or pass a policy")
        atom = replace(atom, theory=theory)
        diagnostics: list[Diagnostic] = []
        columns = self.schemas.columns(theory, atom.table)
        atom = resolve_columns(atom, columns, FreshVariables(), diagnostics)
        raise_if_errors(diagnostics)
        table = atom.qualified
        self._known(table)
        arity = self._arity.get(table)
        if arity is not None and len(atom.args) != arity:
            raise EngineError(f"{atom} has {len(atom.args)} arguments but {table} has {arity}")
        rel = self.state.relations.get(table)
        if rel is None:
            return []
        consts = [(i, t.value) for i, t in enumerate(atom.args) if isinstance(t, Constant)]
        first: dict[str, int] = {}
        same = []
        for i, t in enumerate(atom.args):
            if isinstance(t, Variable) and not t.anonymous:
                if t.name in first:
                    same.append((first[t.name], i))
                else:
                    first[t.name] = i
        if consts:
            columns_key = tuple(i for i, _ in consts)
            key = consts[0][1] if len(consts) == 1 else tuple(v for _, v in consts)
            candidates = rel.lookup(columns_key, key)
        else:
            candidates = rel
        out = [r for r in candidates if all(r[a] == r[b] for a, b in same)]
        return sorted(out, key=_sort_key)

    def rule_stats(self) -> list[tuple[str, Rule, int, str | None]]:
        """``(policy, rule, errors, last error)`` for rules whose builtins raised."""
        out = []
        for stratum in self.program.strata:
            for compiled in stratum.rules:
                if compiled.stats.errors:
                    rule = compiled.source or compiled.rule
                    out.append(
                        (compiled.policy, rule, compiled.stats.errors, compiled.stats.last_error)
                    )
        return out


def _sort_key(row: tuple) -> tuple:
    return tuple(
        (type(v).__name__, v) if not isinstance(v, (int, float)) else ("0", v) for v in row
    )
