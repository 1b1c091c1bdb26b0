"""The same rule written twice where rules are collected: kept once, with a warning.

Congress kept the unique rules of one request: its engine inserts a rule already present
as no change, and only the rules that changed something were stored
(``congress/policy_engines/agnostic.py``, ``persistent_insert_rules``: "save rule to
database if change actually happened"). Its own library relies on it:
``library/security_groups/unsafe_traffic.yaml`` writes one rule twice. Charter does the
same where rules arrive together (a Datalog file, a library YAML file, the rules of one
``POST /v1/policies``, a simulate sequence) and says so with a ``duplicate_rule`` warning
at the second copy. Inserting a rule the policy already holds stays an error
(``rule_already_exists``, HTTP 409), as in Congress.

>>> from charter.lang.parser import parse
>>> kept, warnings = unique_rules(parse("p(1)\\nq(x) :- p(x)\\np(1)", "a.dl"), "a")
>>> [str(r) for r in kept]
['p(1)', 'q(x) :- p(x)']
>>> print(warnings[0].render())
a.dl:3:1: warning[duplicate_rule]: rule p(1) is written twice in policy a; the copy is ignored
    note: first written at a.dl:1:1
"""

from __future__ import annotations

from collections.abc import Sequence

from charter.lang.ast import Rule, Span
from charter.lang.errors import WARNING, Diagnostic

DUPLICATE_RULE = "duplicate_rule"


def duplicate_positions(
    rules: Sequence[Rule],
    policy: str | None = None,
    places: Sequence[Span | None] | None = None,
) -> tuple[list[int], list[Diagnostic]]:
    """The positions of the rules to keep (each rule's first copy, in order) and a
    ``duplicate_rule`` warning for every later copy.

    Args:
        rules: the rules as collected, in order.
        policy: the policy they belong to, for the message.
        places: where each rule was written when its own span does not say (the rules
            of a JSON request, parsed one by one); defaults to each rule's span.
    """
    first: dict[Rule, int] = {}
    kept: list[int] = []
    warnings: list[Diagnostic] = []
    for i, rule in enumerate(rules):
        seen = first.get(rule)
        if seen is None:
            first[rule] = i
            kept.append(i)
            continue
        here = places[i] if places is not None else rule.span
        there = places[seen] if places is not None else rules[seen].span
        where = f" in policy {policy}" if policy else ""
        warnings.append(
            Diagnostic(
                DUPLICATE_RULE,
                f"rule {rule} is written twice{where}; the copy is ignored",
                here,
                WARNING,
                (f"first written at {there}",) if there is not None else (),
            )
        )
    return kept, warnings


def unique_rules(
    rules: Sequence[Rule], policy: str | None = None
) -> tuple[list[Rule], list[Diagnostic]]:
    """Each rule once, in the order first written, and a warning for each copy dropped."""
    kept, warnings = duplicate_positions(rules, policy)
    return [rules[i] for i in kept], warnings
