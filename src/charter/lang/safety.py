"""Which variables a literal needs bound before it can run, and which it binds.

The safety check and the engine's planner share these two questions, so that every rule
the checks accept is a rule the planner can order, and the other way round.

>>> from charter.lang.ast import Atom, Negation, Variable as V
>>> lit = Negation(Atom("r", (V("x"), V("_#0"))))
>>> sorted(needs(lit, set(), frozenset()))
['x']
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from charter.lang.ast import (
    Aggregate,
    Atom,
    BuiltinCall,
    Comparison,
    Literal,
    Negation,
    Rule,
    Variable,
    expr_variables,
    literal_variables,
)
from charter.lang.builtins import BUILTINS


def _names(variables: Sequence[Variable]) -> set[str]:
    return {v.name for v in variables}


def aggregate_keys(rule: Rule, position: int) -> tuple[str, ...]:
    """The correlated (group-by) variables of the aggregate at ``rule.body[position]``.

    They are the variables of the aggregate's body that also appear outside the braces
    (in the head or another body literal), in order of first appearance inside.
    """
    return all_aggregate_keys(rule)[position]


def all_aggregate_keys(rule: Rule) -> dict[int, tuple[str, ...]]:
    """:func:`aggregate_keys` of every aggregate of ``rule``, in one pass over the rule
    (asking for each in turn would read the whole body once per aggregate)."""
    places: dict[str, int] = {}  # variable -> how many places (heads, body literals) use it
    for head in rule.heads:
        atom = head.atom if not isinstance(head, Atom) else head
        for name in _names(literal_variables(atom)):
            places[name] = places.get(name, 0) + 1
    inside: dict[int, set[str]] = {}
    for i, lit in enumerate(rule.body):
        names = _names(literal_variables(lit))
        if isinstance(lit, Aggregate):
            inside[i] = names
        for name in names:
            places[name] = places.get(name, 0) + 1
    out: dict[int, tuple[str, ...]] = {}
    for i, names in inside.items():
        keys: list[str] = []
        for lit in rule.body[i].body:  # type: ignore[union-attr]
            for v in literal_variables(lit):
                if v.name not in keys and places[v.name] > (v.name in names):
                    keys.append(v.name)
        out[i] = tuple(keys)
    return out


def needs(literal: Literal, bound: set[str], agg_keys: frozenset[str]) -> set[str]:
    """Variables that must be bound before ``literal`` can be evaluated, minus those that are.

    ``agg_keys`` are the correlated variables when ``literal`` is an aggregate.
    """
    if isinstance(literal, Atom):
        return set()
    if isinstance(literal, Negation):
        wanted = {v.name for v in literal_variables(literal.atom) if not v.anonymous}
        return wanted - bound
    if isinstance(literal, BuiltinCall):
        builtin = BUILTINS.get(literal.name)
        n_inputs = builtin.inputs if builtin else len(literal.args)
        inputs = [a for a in literal.args[:n_inputs] if isinstance(a, Variable)]
        return _names(inputs) - bound
    if isinstance(literal, Comparison):
        left, right = _names(expr_variables(literal.left)), _names(expr_variables(literal.right))
        if literal.op == "=":
            if isinstance(literal.left, Variable) and not (right - bound):
                return set()
            if isinstance(literal.right, Variable) and not (left - bound):
                return set()
        return (left | right) - bound
    if isinstance(literal, Aggregate):
        return set(agg_keys) - bound
    raise TypeError(literal)


def binds(literal: Literal, bound: set[str]) -> set[str]:
    """Variables newly bound by evaluating ``literal`` once ``needs`` is satisfied."""
    if isinstance(literal, Atom):
        return _names(literal_variables(literal)) - bound
    if isinstance(literal, BuiltinCall):
        return _names([a for a in literal.args if isinstance(a, Variable)]) - bound
    if isinstance(literal, Comparison) and literal.op == "=":
        return (
            _names(expr_variables(literal.left)) | _names(expr_variables(literal.right))
        ) - bound
    if isinstance(literal, Aggregate):
        return {literal.result.name} - bound
    return set()


def safe_order(
    body: Sequence[Literal], bound: set[str], keys: dict[int, frozenset[str]]
) -> tuple[list[int], dict[int, set[str]]]:
    """Order body literals so each runs only once what it needs is bound.

    Keeps the written order where possible (Congress's stable reordering): the next
    literal is always the first written of those that can run. Returns the order and, for
    literals that can never run, the variables they miss. Each literal waits on the
    variables it misses and is looked at again only when one of them is bound, so long
    bodies take time in proportion to their size.

    >>> from charter.lang.parser import parse_rule
    >>> safe_order(parse_rule("p(x) :- x > 1, q(x), not r(y)").body, set(), {})
    ([1, 0], {2: {'y'}})
    """
    bound = set(bound)
    waiting: dict[str, list[int]] = {}  # variable -> literals that miss it
    ready: list[int] = []
    for i, literal in enumerate(body):
        missing = needs(literal, bound, keys.get(i, frozenset()))
        if not missing:
            ready.append(i)
        for name in missing:
            waiting.setdefault(name, []).append(i)
    heapq.heapify(ready)
    done: set[int] = set()
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        if i in done:
            continue
        done.add(i)
        order.append(i)
        fresh = binds(body[i], bound)
        bound |= fresh
        for name in fresh:
            for j in waiting.pop(name, ()):
                if j not in done and not needs(body[j], bound, keys.get(j, frozenset())):
                    heapq.heappush(ready, j)
    missing = {
        i: needs(body[i], bound, keys.get(i, frozenset()))
        for i in range(len(body))
        if i not in done
    }
    return order, missing
