"""Explain a row: a proof tree of why it is in its table, or why it is not.

Everything is read from the engine's current (materialized) tables: a proof never re-runs
the program, it finds, for each row, one rule and one binding of its variables whose body
holds over the tables as they are, and recurses into the rows the body matched.

Recursion needs care: ``reach(a, a)`` on a cycle is derivable from ``reach(a, b)``, which
is derivable from ``reach(a, a)``. A proof must be well-founded, so for a recursive
stratum each row gets a *rank*, the least depth of a derivation of it (its semi-naive
round): all derivations of the rows a row may need are enumerated (its backward closure,
not the whole stratum), then ranks are computed over that AND-OR graph in rank order
(Knuth's generalization of Dijkstra's algorithm: a derivation's rank is known once its
last support is ranked). A row's proof uses a derivation of its own rank, whose supports
all have smaller ranks, so every proof is finite, cycles in the data included.

"Why not" tries each rule whose head unifies with the row, literal by literal in the
rule's own order (after the head's variables are bound), and reports the literal at which
the search got furthest, with the partial binding: a pattern no row matches (with, for a
derived table, why no row matches it), a negated literal that is false (with the proof of
the row that makes it false), a builtin or comparison that is false, an aggregate whose
value does not fit.

>>> from charter.engine import Engine
>>> eng = Engine()
>>> _ = eng.load_policy("p", "reach(x, y) :- edge(x, y)  reach(x, z) :- reach(x, y), edge(y, z)")
>>> _ = eng.insert_rows("p:edge", [(1, 2), (2, 1)])
>>> print(explain(eng, "p:reach", (1, 1)).to_text())
p:reach(1, 1)  <= p: reach(x, z) :- reach(x, y), edge(y, z)  with x=1, z=1, y=2
  p:reach(1, 2)  <= p: reach(x, y) :- edge(x, y)  with x=1, y=2
    p:edge(1, 2)  fact of policy p
  p:edge(2, 1)  fact of policy p
>>> print(explain(eng, "p:reach", (1, 3)).to_text())
p:reach(1, 3) is not derived: no rule of p:reach derives it
  rule of p: reach(x, y) :- edge(x, y)  with x=1, y=3
    fails at edge(x, y): no row of p:edge matches p:edge(1, 3)
      near: (1, 2) (differs in column 1)
  rule of p: reach(x, z) :- reach(x, y), edge(y, z)  with x=1, z=3, y=1
    reach(x, y): matched p:reach(1, 1)
    fails at edge(y, z): no row of p:edge matches p:edge(1, 3)
      near: (1, 2) (differs in column 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from charter.engine.explain_evidence import _Derivation
from charter.engine.explain_tree import (
    ANY,
    Absence,
    AggregateProof,
    Attempt,
    Evaluation,
    Failure,
    Match,
    NotDerived,
    Proof,
    _row_text,
    _sort_key,
)
from charter.engine.explainer import _Explainer
from charter.lang.ast import Atom, Constant
from charter.lang.columns import FreshVariables, resolve_columns
from charter.lang.errors import DataError, Diagnostic, EngineError, raise_if_errors
from charter.lang.parser import parse_literal

__all__ = [
    "ANY",
    "AggregateProof",
    "Absence",
    "Attempt",
    "Evaluation",
    "Failure",
    "Match",
    "NotDerived",
    "Proof",
    "explain",
    "explain_pattern",
]


# ---------------------------------------------------------------- entry points


def explain(
    engine: Any,
    table: str,
    row: Sequence[Any],
    *,
    alternatives: bool = False,
    examples: int = 3,
    max_depth: int = 100,
    max_nodes: int = 5000,
    max_steps: int = 100_000,
    why_not_depth: int = 2,
) -> Proof | NotDerived:
    """Why ``row`` is in ``table`` (a :class:`Proof`) or why not (:class:`NotDerived`).

    Args:
        engine: the engine, read as it is (hold the service's lock around the call).
        table: a qualified table, ``policy:table`` or ``datasource:table``.
        row: its values; ``ANY`` leaves a column open (the first matching row is
            explained, or why none matches).
        alternatives: also every other derivation of the row by a rule whose supports
            have proofs without the row itself (``Proof.alternatives``).
        examples: how many of an aggregate's counted rows are explained.
        max_depth, max_nodes: bounds of the tree; a node past them is ``truncated``.
        max_steps: bound of a why-not's search per rule.
        why_not_depth: how deep a why-not explains a derived table no row of which matches.

    Raises:
        EngineError: unknown table. DataError: a row of the wrong width.
    """
    engine.count(table)  # raises EngineError (with a suggestion) for an unknown table
    row = tuple(row)
    arity = engine.arity(table)
    if arity is not None and len(row) != arity:
        raise DataError(
            f"{_row_text(table, row)} has {len(row)} values; {table} has {arity} columns"
        )
    limits = (examples, max_depth, max_nodes, max_steps, why_not_depth)
    explainer = _Explainer(engine, *limits)
    if any(v is ANY for v in row):
        matching = sorted(explainer.lookup(table, row), key=_sort_key)
        if not matching:
            return explainer.why_not(table, row, 0, frozenset())
        row = matching[0]
    elif not explainer.contains(table, row):
        return explainer.why_not(table, row, 0, frozenset())
    proof = explainer.proof(table, row, 0)
    if alternatives and table in engine.program.derived:
        # Other derivations whose supports have proofs that do not use the row itself (on
        # a cycle, reach(a, c) from reach(a, a), itself from reach(a, c), is no news).
        chosen = explainer.chosen(table, row)
        without = _Explainer(engine, *limits, exclude=(table, row))
        index = explainer.stratum_of.get(table)
        stratum = engine.program.strata[index] if index is not None else None
        tables = stratum.tables if stratum is not None and stratum.recursive else frozenset()
        for d in explainer.all_derivations(table, row):
            supports = d.supports(tables)
            if _same(d, chosen) or (table, row) in supports:
                continue
            if all(without.chosen(*s) is not None for s in supports):
                proof.alternatives.append(without.from_derivation(d, 0))
    return proof


def _same(a: _Derivation, b: _Derivation | None) -> bool:
    return b is not None and a.compiled is b.compiled and a.binding == b.binding


def explain_pattern(
    engine: Any,
    pattern: str | Atom,
    policy: str | None = None,
    *,
    limit: int = 10,
    **options: Any,
) -> list[Proof | NotDerived]:
    """Explain the rows matching a pattern such as ``error("vm1")`` or
    ``nova:servers(id="vm1", status=s)``: each matching row's proof (up to ``limit``), or
    why no row matches. An unqualified table belongs to ``policy``; named columns use the
    table's schema. ``options`` are :func:`explain`'s."""
    atom = parse_literal(pattern) if isinstance(pattern, str) else pattern
    theory = atom.theory or policy
    if theory is None:
        raise EngineError(f"{atom} names no policy: write policy:table")
    atom = replace(atom, theory=theory)
    diagnostics: list[Diagnostic] = []
    atom = resolve_columns(
        atom, engine.schemas.columns(theory, atom.table), FreshVariables(), diagnostics
    )
    raise_if_errors(diagnostics)
    table = atom.qualified
    if all(isinstance(t, Constant) for t in atom.args):
        return [
            explain(
                engine,
                table,
                tuple(t.value for t in atom.args),  # type: ignore[union-attr]
                **options,
            )
        ]
    rows = engine.query(atom)
    if not rows:
        values = tuple(t.value if isinstance(t, Constant) else ANY for t in atom.args)
        return [explain(engine, table, values, **options)]
    return [explain(engine, table, r, **options) for r in rows[:limit]]
