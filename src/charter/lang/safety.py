"""Which variables a literal needs bound before it can run, and which it binds.

The safety check and the engine's planner share these two questions, so that every rule
the checks accept is a rule the planner can order, and the other way round.

>>> from charter.lang.ast import Atom, Negation, Variable as V
>>> lit = Negation(Atom("r", (V("x"), V("_#0"))))
>>> sorted(needs(lit, set(), frozenset()))
['x']
"""

from __future__ import annotations

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
    agg = rule.body[position]
    assert isinstance(agg, Aggregate)
    outside: set[str] = set()
    for head in rule.heads:
        atom = head.atom if not isinstance(head, Atom) else head
        outside |= _names(literal_variables(atom))
    for i, lit in enumerate(rule.body):
        if i != position:
            outside |= _names(literal_variables(lit))
    keys: list[str] = []
    for lit in agg.body:
        for v in literal_variables(lit):
            if v.name in outside and v.name not in keys:
                keys.append(v.name)
    return tuple(keys)


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

    Keeps the written order where possible (Congress's stable reordering). Returns the
    order and, for literals that can never run, the variables they miss.
    """
    bound = set(bound)
    pending = list(range(len(body)))
    order: list[int] = []
    progress = True
    while pending and progress:
        progress = False
        for i in list(pending):
            if not needs(body[i], bound, keys.get(i, frozenset())):
                order.append(i)
                pending.remove(i)
                bound |= binds(body[i], bound)
                progress = True
                break
    missing = {i: needs(body[i], bound, keys.get(i, frozenset())) for i in pending}
    return order, missing
