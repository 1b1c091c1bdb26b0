"""Simulate (Congress's ``?action=simulate``): apply a sequence of changes, read, undo.

The sequence is applied to the live engine while the service's lock is held and undone
before the lock is released, without publishing any delta: no reader, listener or history
ever sees a hypothetical row, and concurrent simulations queue behind one another.

Supported elements: update atoms (``p+(1)``, ``nova:servers-("vm1", ...)``) and update
rules (``p+(x) :- q(x)`` adds the rule ``p(x) :- q(x)``; ``p-(...)`` removes it). Action
invocations declared by an action policy are refused with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from charter.engine import Delta, RuleChange
from charter.lang.ast import Atom, Constant, Rule
from charter.lang.errors import CharterError, PolicyError
from charter.lang.parser import parse_literal, parse_sequence
from charter.service import errors as E
from charter.service.errors import ServiceError


@dataclass
class Step:
    text: str
    rows: list[Delta]
    rule: RuleChange | None = None


def format_row(table: str, row: tuple, update: str = "") -> str:
    return str(Atom(table, tuple(Constant(v) for v in row), update=update or None))


def simulate(service, policy_ref: str, query: object, sequence: object,
             action_policy: object = None, delta: bool = False, trace: bool = False) -> dict:
    if not isinstance(query, str) or not isinstance(sequence, str) or not query.strip():
        raise ServiceError("simulate needs 'query' (a table pattern such as error(x)) and "
                           "'sequence' (updates such as p+(1) q-(2))",
                           code=E.INCOMPLETE_SIMULATE_ARGS)
    with service.lock:
        policy = service.policies.get(policy_ref).record.name
        if action_policy not in (None, "", "action"):
            service.policies.get(str(action_policy))
        try:
            pattern = parse_literal(query)
            elements = parse_sequence(sequence)
        except PolicyError as exc:
            raise E.rule_error(exc, "simulate input") from exc
        table = pattern.theory or policy
        pattern = replace(pattern, theory=table)
        steps = [_step(policy, rule) for rule in elements]
        engine = service.engine

        def read() -> set[tuple]:
            try:
                return set(engine.query(pattern))
            except CharterError as exc:
                raise ServiceError(f"simulate query {query!r}: {exc}",
                                   code=E.SIMULATE_ERROR) from exc

        before = read() if delta else set()
        undo: list[list[Delta | RuleChange]] = []
        log: list[str] = []
        try:
            for step in steps:
                changes, inverse = _effective(engine, step)
                try:
                    deltas = engine.apply(changes)
                except PolicyError as exc:
                    raise E.rule_error(exc, f"simulate step {step.text!r}") from exc
                except CharterError as exc:
                    raise ServiceError(f"simulate step {step.text!r}: {exc}",
                                       code=E.SIMULATE_ERROR) from exc
                undo.append(inverse)
                if trace:
                    changed = ", ".join(f"{t} +{len(d.inserted)} -{len(d.deleted)}"
                                        for t, d in sorted(deltas.items())
                                        if d and "#" not in t)
                    log.append(f"{step.text}: {changed or 'no change'}")
            after = read()
        finally:
            for inverse in reversed(undo):
                engine.apply(inverse)
    short = pattern.table
    if delta:
        result = [format_row(short, r, "+") for r in sorted(after - before, key=repr)]
        result += [format_row(short, r, "-") for r in sorted(before - after, key=repr)]
    else:
        result = [format_row(short, r) for r in sorted(after, key=repr)]
    out: dict = {"result": result}
    if trace:
        out["trace"] = "\n".join(log)
    return out


def _step(policy: str, rule: Rule) -> Step:
    if len(rule.heads) != 1 or not isinstance(rule.head, Atom) or rule.head.update is None:
        raise ServiceError(
            f"simulate step {rule} is not an update: write p+(...) or p-(...), or an update "
            "rule p+(x) :- q(x) (action invocations need an action policy and are not "
            "supported yet)", code=E.SIMULATE_ERROR)
    head = rule.head
    sign = 1 if head.update == "+" else -1
    plain = replace(head, update=None)
    if rule.is_fact:
        if not all(isinstance(a, Constant) for a in head.args) or head.named:
            raise ServiceError(f"simulate step {rule}: an update atom needs constant "
                               "arguments", code=E.SIMULATE_ERROR)
        table = f"{head.theory or policy}:{head.table}"
        row = tuple(a.value for a in head.args)
        return Step(str(rule), [Delta(table, row, sign)])
    target = head.theory or policy
    return Step(str(rule), [], RuleChange(target, Rule((replace(plain, theory=None),),
                                                       rule.body), sign))


def _effective(engine, step: Step) -> tuple[list, list]:
    """The step's changes and their exact inverse (a no-op change is not undone)."""
    if step.rule is not None:
        change = step.rule
        present = change.rule in engine.rules(change.policy) \
            if change.policy in engine.policies else False
        if (change.sign > 0) == present:
            return [], []
        return [change], [RuleChange(change.policy, change.rule, -change.sign)]
    changes, inverse = [], []
    for d in step.rows:
        present = engine.has_stored(d.table, d.row)
        if (d.sign > 0) != present:
            changes.append(d)
            inverse.append(Delta(d.table, d.row, -d.sign))
    return changes, inverse
