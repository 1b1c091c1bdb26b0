"""Rule changes checked against a copy of the program, so the check needs no lock.

Checking a rule (normalizing it, its safety, arities across every policy, stratification)
costs time in proportion to the rule and the program, and a server must not hold its lock
that long: another request would wait behind a long rule. So the server copies what the
checks read (:meth:`Engine.view`, cheap: references to each policy's rules and the
schemas), checks the change against that copy outside the lock (:func:`check_changes`),
and hands the result to :meth:`Engine.apply`, which takes it as it is if the engine's
*generation* (bumped by every change of rules, policies, schemas or known tables) has not
moved since the copy, and checks again otherwise.

>>> from charter.engine import Engine, RuleChange
>>> from charter.lang.parser import parse_rule
>>> engine = Engine()
>>> engine.create_policy("p")
>>> change = RuleChange("p", parse_rule("q(x) :- r(x)"), +1)
>>> checked = check_changes(engine.view(), [change])
>>> sorted(engine.apply([change], checked=checked))
[]
>>> [str(r) for r in engine.rules("p")]
['q(x) :- r(x)']
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from charter.engine.delta import RuleChange
from charter.lang.ast import Rule
from charter.lang.checks import check_program, compile_rules
from charter.lang.errors import Diagnostic, EngineError, raise_if_errors
from charter.lang.schema import Schemas


@dataclass(frozen=True)
class ProgramView:
    """What the checks read of an engine, as it was at one generation."""

    generation: int
    kinds: Mapping[str, str]  # policy -> kind
    rules: Mapping[str, Mapping[Rule, Rule]]  # policy -> the user's rule -> normalized
    schemas: Schemas
    known_arity: Mapping[str, int]  # tables with a schema or rows: their column count

    def with_policy(self, name: str, kind: str) -> ProgramView:
        """The view with one more (empty) policy: to check a new policy's rules."""
        if name in self.kinds:
            raise EngineError(f"policy {name} already exists")
        return ProgramView(self.generation, {**self.kinds, name: kind},
                           {**self.rules, name: {}}, self.schemas, self.known_arity)


@dataclass(frozen=True)
class CheckedRules:
    """Rule changes that passed the checks at ``generation``: every policy's rules after
    them (the user's rule -> its normalized form, in order)."""

    generation: int
    changes: tuple[RuleChange, ...]
    rules: dict[str, dict[Rule, Rule]]


def check_changes(view: ProgramView, changes: Iterable[RuleChange]) -> CheckedRules:
    """Check rule changes as one batch against ``view``; nothing is changed.

    Raises:
        PolicyError: a rule does not compile, or the program after the batch would not
            (arities, stratification), with every diagnostic.
        EngineError: an unknown policy, or the removal of a rule the policy does not have.
    """
    changes = tuple(changes)
    rules = {name: dict(policy_rules) for name, policy_rules in view.rules.items()}
    diagnostics: list[Diagnostic] = []
    for rc in changes:
        current = rules.get(rc.policy)
        if current is None:
            hint = difflib.get_close_matches(rc.policy, list(view.kinds), n=1)
            more = f"; did you mean {hint[0]}?" if hint else ""
            raise EngineError(f"no policy named {rc.policy}{more}")
        if rc.sign > 0:
            if rc.rule in current:
                diagnostics.append(Diagnostic(
                    "rule_already_exists", f"rule {rc.rule} already exists in policy "
                    f"{rc.policy}", rc.rule.span))
                continue
            normalized, found = compile_rules(rc.policy, [rc.rule], view.schemas,
                                              view.kinds[rc.policy])
            diagnostics += found
            if normalized:
                current[rc.rule] = normalized[0]
        else:
            if rc.rule not in current:
                raise EngineError(f"policy {rc.policy} has no rule {rc.rule}")
            del current[rc.rule]
    raise_if_errors(diagnostics)
    by_policy = {p: list(r.values()) for p, r in rules.items() if view.kinds[p] != "action"}
    raise_if_errors(check_program(by_policy, view.known_arity))
    return CheckedRules(view.generation, changes, rules)
