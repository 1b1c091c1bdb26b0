"""Simulate (Congress's ``?action=simulate``): project a sequence of changes, read, undo.

A sequence element is an update atom (``p+(1)``, ``nova:servers-("vm1", "h1")``), an update
rule (``p+(x) :- q(x)`` adds the rule ``p(x) :- q(x)``; ``p-`` removes it) or an action
invocation: ground atoms of actions the action policy declares with ``action("name")``
(``create(1)``, ``q(1), r(1) :- true``), or a rule binding them from the state and the
previous step's ``result`` (``update(x, 1) :- result(x)``).

An invocation is projected with the action policy's rules, which the engine does not
evaluate on its own: they are rewritten into a scratch policy of the live engine (created
at the first invocation, dropped at the end), where the action atoms are rows of input
tables and every update table ``p+``/``p-`` is a derived table, maintained incrementally
like any other. Per invocation: the action atoms go in; every derived update is read;
``p-(t)`` is dropped when ``p+(t)`` is derived too (insert wins); a head variable the body
leaves free is bound to a placeholder in the scratch rule and replaced by a fresh constant
(skolemization); the final updates go in for rules that read them; ``result`` rows are kept
for the next invocation; then the updates are applied to the real tables.

Everything happens while the service's lock is held and is undone before it is released,
publishing nothing: no reader, listener or violation history sees a hypothetical row, and
concurrent simulations queue behind one another. Each step costs what an incremental
update of the same rows costs, not a re-evaluation.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from charter.engine import Delta, Engine, RuleChange, TableDelta
from charter.lang.ast import (
    Aggregate,
    Atom,
    Comparison,
    Constant,
    Literal,
    Modal,
    Negation,
    Rule,
    Span,
    Variable,
)
from charter.lang.columns import FreshVariables, resolve_columns
from charter.lang.duplicates import DUPLICATE_RULE
from charter.lang.errors import (
    WARNING,
    CharterError,
    Diagnostic,
    EngineError,
    PolicyError,
    raise_if_errors,
)
from charter.lang.parser import parse_literal, parse_sequence
from charter.lang.safety import all_aggregate_keys, binds, safe_order
from charter.service import errors as E
from charter.service.errors import NotFound, ServiceError

DEFAULT_ACTION_POLICY = "action"
SKOLEM = "\x00skolem:"  # what a scratch rule binds a free head variable to, until skolemized
_scratch_ids = itertools.count(1)


@dataclass
class Update:
    """An update atom (row changes) or an update rule (a rule change), applied as given."""

    text: str
    rows: list[Delta] = field(default_factory=list)
    rule: RuleChange | None = None


@dataclass
class Invocation:
    """Action atoms (and supporting facts) to project, ground or bound by ``body``."""

    text: str
    heads: tuple[Atom, ...]
    body: tuple[Literal, ...] = ()


Step = Update | Invocation


def format_row(table: str, row: tuple, update: str = "") -> str:
    return str(Atom(table, tuple(Constant(v) for v in row), update=update or None))


def row_key(row: tuple) -> tuple:
    """Numbers first, by value, then strings: rows of mixed kinds sort without comparing
    a number with a string."""
    return tuple((0, v, "") if isinstance(v, int | float) and not isinstance(v, bool)
                 else (1, 0, str(v)) for v in row)


def _error(message: str) -> ServiceError:
    return ServiceError(message, code=E.SIMULATE_ERROR)


# ---------------------------------------------------------------- the API's simulate


def simulate(service, policy_ref: str, query: object, sequence: object,
             action_policy: object = None, delta: bool = False, trace: bool = False) -> dict:
    if not isinstance(query, str) or not isinstance(sequence, str) or not query.strip():
        raise ServiceError("simulate needs 'query' (a table pattern such as error(x)) and "
                           "'sequence' (updates such as p+(1) q-(2), or actions)",
                           code=E.INCOMPLETE_SIMULATE_ARGS)
    try:  # parsed before the lock: parsing takes time in proportion to the text
        pattern = parse_literal(query)
        elements = parse_sequence(sequence)
    except PolicyError as exc:
        raise E.rule_error(exc, "simulate input") from exc
    with service.lock:
        policy = service.policies.get(policy_ref).record.name
        actions_from = action_policy_name(service, action_policy)
        engine = service.engine
        steps = parse_steps(policy, elements, declared_actions(engine, actions_from),
                            actions_from)
        warnings = repeated_rules(elements, steps)
        pattern = replace(pattern, theory=pattern.theory or policy)

        writable = _writable(engine, policy, actions_from, steps)

        def read(before: bool = False) -> set[tuple]:
            table = f"{pattern.theory}:{pattern.table}"
            if (before or table in writable) and not engine.has_table(table):
                return set()  # a table the sequence could have written, but did not
            try:
                return set(engine.query(pattern))
            except CharterError as exc:
                raise _error(f"simulate query {query!r}: {exc}") from exc

        before = read(before=True) if delta else set()
        log: list[str] | None = [] if trace else None
        with projected(engine, policy, actions_from, steps, log):
            after = read()
    shown = pattern.table if pattern.theory == policy else f"{pattern.theory}:{pattern.table}"
    if delta:
        result = [format_row(shown, r, "+") for r in sorted(after - before, key=row_key)]
        result += [format_row(shown, r, "-") for r in sorted(before - after, key=row_key)]
    else:
        result = [format_row(shown, r) for r in sorted(after, key=row_key)]
    out: dict = {"result": result}
    if log is not None:
        out["trace"] = "\n".join(log)
    if warnings:
        out["warnings"] = [w.to_json() for w in warnings]
    return out


def repeated_rules(elements: list[Rule], steps: list[Step]) -> list[Diagnostic]:
    """A ``duplicate_rule`` warning for an update rule the sequence inserts again while its
    first copy is still in (no removal between): the copy changes nothing, as in Congress,
    whose engine inserted a rule already present as no change."""
    inserted: dict[tuple[str, Rule], Rule] = {}
    out: list[Diagnostic] = []
    for element, step in zip(elements, steps, strict=True):
        if not isinstance(step, Update) or step.rule is None:
            continue
        key = (step.rule.policy, step.rule.rule)
        if step.rule.sign < 0:
            inserted.pop(key, None)
            continue
        first = inserted.setdefault(key, element)
        if first is not element:
            out.append(Diagnostic(
                DUPLICATE_RULE, f"rule {element} is written twice in the sequence; the copy "
                "changes nothing", _in_sequence(element.span), WARNING,
                (f"first written at {_in_sequence(first.span)}",)))
    return out


def _in_sequence(span: Span | None) -> Span | None:
    return replace(span, file="sequence") if span is not None else None


def _writable(engine: Engine, policy: str, action_policy: str | None,
              steps: list[Step]) -> set[str]:
    """Tables the steps or the action policy's update rules may write."""
    out = set()
    for step in steps:
        if isinstance(step, Update):
            out |= {d.table for d in step.rows}
            if step.rule is not None:
                out.add(f"{step.rule.policy}:{step.rule.rule.head.table}")  # type: ignore
    if action_policy in engine.policies and any(isinstance(s, Invocation) for s in steps):
        for rule in engine.rules(action_policy):
            head = rule.head
            if isinstance(head, Atom) and head.update:
                out.add(f"{head.theory or policy}:{head.table}")
    return out


def action_policy_name(service, ref: object) -> str | None:
    """The action policy's name; None when the default one does not exist (no actions)."""
    if ref in (None, ""):
        live = service.policies.find(DEFAULT_ACTION_POLICY)
        return live.record.name if live is not None else None
    if not isinstance(ref, str):
        raise ServiceError("'action_policy' must be a policy's name or id")
    try:
        return service.policies.get(ref).record.name
    except NotFound as exc:
        raise NotFound(f"No such action policy: {ref}", code=E.POLICY_NOT_EXIST) from exc


def declared_actions(engine: Engine, action_policy: str | None) -> set[str]:
    """The names declared by ``action("name")`` facts of the action policy."""
    if action_policy is None or action_policy not in engine.policies:
        return set()
    out = set()
    for rule in engine.rules(action_policy):
        head = rule.head
        if (not rule.body and isinstance(head, Atom) and head.table == "action"
                and head.theory in (None, action_policy) and head.update is None
                and len(head.args) == 1 and isinstance(head.args[0], Constant)
                and isinstance(head.args[0].value, str)):
            out.add(head.args[0].value)
    return out


def action_name(atom: Atom, action_policy: str | None) -> str:
    """An atom's table as the action policy names it (unqualified for its own tables)."""
    if atom.theory is None or atom.theory == action_policy:
        return atom.table
    return f"{atom.theory}:{atom.table}"


# ---------------------------------------------------------------- the sequence


def parse_steps(policy: str, elements: Iterable[Rule], actions: set[str],
                action_policy: str | None) -> list[Step]:
    """Classify each element: an update (atom or rule) or an action invocation."""
    steps: list[Step] = []
    for rule in elements:
        if any(isinstance(h, Modal) for h in rule.heads):
            raise _error(f"simulate step {rule}: modal heads (execute[...]) cannot be "
                         "simulated; write the updates or an action")
        if any(h.update for h in rule.heads):  # type: ignore[union-attr]
            steps.append(update_step(policy, rule))
        elif any(action_name(h, action_policy) in actions  # type: ignore[arg-type]
                 for h in rule.heads):
            steps.append(_invocation(rule))
        else:
            names = ", ".join(sorted(actions)) or "none"
            raise _error(
                f"simulate step {rule} is not an update (write p+(...), p-(...) or an update "
                f"rule p+(x) :- q(x)) and names no action declared by action policy "
                f"{action_policy} (it declares: {names}; declare one with action(\"name\"))")
    return steps


def update_step(policy: str, rule: Rule) -> Update:
    if len(rule.heads) != 1:
        raise _error(f"simulate step {rule}: an update has exactly one head")
    head = rule.head
    assert isinstance(head, Atom)
    sign = 1 if head.update == "+" else -1
    plain = replace(head, update=None)
    if rule.is_fact:
        if not all(isinstance(a, Constant) for a in head.args) or head.named:
            raise _error(f"simulate step {rule}: an update atom needs constant arguments, "
                         "one per column")
        table = f"{head.theory or policy}:{head.table}"
        row = tuple(a.value for a in head.args)  # type: ignore[union-attr]
        return Update(str(rule), [Delta(table, row, sign)])
    target = head.theory or policy
    change = RuleChange(target, Rule((replace(plain, theory=None),), rule.body), sign)
    return Update(str(rule), rule=change)


def _invocation(rule: Rule) -> Invocation:
    heads = tuple(h for h in rule.heads if isinstance(h, Atom))
    for head in heads:
        if head.named:
            raise _error(f"simulate step {rule}: write an action's arguments by position")
    body = tuple(lit for lit in rule.body if not _is_true(lit))
    if not body:
        for head in heads:
            if not all(isinstance(a, Constant) for a in head.args):
                raise _error(f"simulate step {rule}: an action invocation without a body "
                             "must be ground (constants only)")
    return Invocation(str(rule), heads, body)


def _is_true(literal: Literal) -> bool:
    """Congress's ``:- true`` (``q(1), r(1) :- true``): a body that always holds."""
    return (isinstance(literal, Atom) and literal.table == "true" and not literal.args
            and literal.theory is None and literal.update is None)


def row_step(policy: str, table: str, row: tuple, sign: int) -> Update:
    """An update atom from a table name (unqualified: the policy's) and a row."""
    qualified = table if ":" in table else f"{policy}:{table}"
    return Update(format_row(qualified, row, "+" if sign > 0 else "-"),
                  [Delta(qualified, tuple(row), sign)])


def action_step(name: str, args: Iterable[object]) -> Invocation:
    """A ground invocation of the action ``name`` (``nova:servers.create`` or ``boot``)."""
    theory, _, table = name.partition(":") if ":" in name else ("", "", name)
    atom = Atom(table, tuple(Constant(a) for a in args), theory=theory or None)
    return Invocation(str(atom), (atom,))


# ---------------------------------------------------------------- projection


@contextmanager
def projected(engine: Engine, policy: str, action_policy: str | None, steps: list[Step],
              log: list[str] | None = None,
              deltas: list[dict[str, TableDelta]] | None = None) -> Iterator[Engine]:
    """Apply ``steps`` to the live engine, yield it, then undo everything.

    ``deltas``, when given, gets each ``Update`` step's changed tables (in order; ``{}``
    for a step that changed nothing): what a step added, without reading whole tables.
    Call with the service's lock held: the hypothetical state exists only inside it.
    """
    projection = _Projection(engine, policy, action_policy, steps, log, deltas)
    with engine.hypothetical():
        try:
            projection.run()
            yield engine
        finally:
            projection.rollback()


def _rows(engine: Engine, table: str) -> set[tuple]:
    try:
        return engine.rows(table)
    except EngineError:
        return set()


class _Projection:
    """One simulation's state: the steps, the undo list, the scratch action theory."""

    def __init__(self, engine: Engine, policy: str, action_policy: str | None,
                 steps: list[Step], log: list[str] | None,
                 deltas: list[dict[str, TableDelta]] | None = None):
        self.engine = engine
        self.policy = policy
        self.action_policy = action_policy
        self.steps = steps
        self.log = log
        self.undo: list[list[Delta | RuleChange]] = []
        self.theory: _ActionTheory | None = None
        self.deltas = deltas  # each Update step's changed tables, when asked for

    def run(self) -> None:
        for step in self.steps:
            if isinstance(step, Update):
                self._update(step)
            else:
                self._invoke(step)

    def rollback(self) -> None:
        if self.theory is not None and self.theory.name in self.engine.policies:
            self.engine.delete_policy(self.theory.name)
        for inverse in reversed(self.undo):
            self.engine.apply(inverse)

    def _apply(self, changes: list, text: str) -> dict[str, TableDelta]:
        try:
            return self.engine.apply(changes)
        except PolicyError as exc:
            raise E.rule_error(exc, f"simulate step {text!r}") from exc
        except CharterError as exc:
            raise _error(f"simulate step {text!r}: {exc}") from exc

    def _note(self, text: str, deltas: dict[str, TableDelta], extra: str = "") -> None:
        if self.log is None:
            return
        changed = ", ".join(f"{t} +{len(d.inserted)} -{len(d.deleted)}"
                            for t, d in sorted(deltas.items()) if d and "#" not in t)
        self.log.append(f"{text}: {extra}{changed or 'no change'}")

    # -- updates

    def _update(self, step: Update) -> None:
        changes, inverse = self._effective(step)
        deltas = self._apply(changes, step.text) if changes else {}
        if inverse:
            self.undo.append(inverse)
        if self.deltas is not None:
            self.deltas.append(deltas)
        self._note(step.text, deltas)

    def _effective(self, step: Update) -> tuple[list, list]:
        """The step's changes and their exact inverse (a no-op change is not undone)."""
        engine = self.engine
        if step.rule is not None:
            change = step.rule
            present = (change.rule in engine.rules(change.policy)
                       if change.policy in engine.policies else False)
            if (change.sign > 0) == present:
                return [], []
            return [change], [RuleChange(change.policy, change.rule, -change.sign)]
        changes, inverse = [], []
        for d in step.rows:
            if (d.sign > 0) != engine.has_stored(d.table, d.row):
                changes.append(d)
                inverse.append(Delta(d.table, d.row, -d.sign))
        return changes, inverse

    # -- actions

    def _invoke(self, step: Invocation) -> None:
        if self.theory is None:
            invocations = [s for s in self.steps if isinstance(s, Invocation)]
            self.theory = _ActionTheory(self.engine, self.policy, self.action_policy,
                                        invocations)
        theory = self.theory
        given = theory.instances(step)
        if given is None:  # Congress: an invocation whose body has no answer does nothing
            if self.log is not None:
                self.log.append(f"{step.text}: no binding, nothing done")
            return
        inputs = [Delta(theory.input(name), row, +1) for name, rows in given.items()
                  for row in rows]
        self._apply(inputs, step.text)
        updates = theory.updates()
        finals = [Delta(theory.table(theory.finals[key]), row, +1)
                  for key, rows in updates.items() if key in theory.finals for row in rows]
        if finals:
            self._apply(finals, step.text)
        results = theory.results()
        cleanup = [Delta(d.table, d.row, -1) for d in inputs + finals]
        cleanup += theory.carry(results)
        real = [Delta(target, row, sign) for (target, sign), rows in updates.items()
                for row in rows]
        changes, inverse = self._effective(Update(step.text, real))
        deltas = self._apply(cleanup + changes, step.text)
        if inverse:
            self.undo.append(inverse)
        if self.log is not None:
            acted = ", ".join(format_row(name, r) for name, rows in given.items()
                              for r in sorted(rows, key=row_key))
            shown = ", ".join(format_row(target, r, "+" if sign > 0 else "-")
                              for (target, sign), rows in sorted(updates.items())
                              for r in sorted(rows, key=row_key))
            kept = ", ".join(format_row("result", r) for r in sorted(results, key=row_key))
            self._note(step.text, deltas, f"action {acted}; updates {shown or 'none'}; "
                                          f"results {kept or 'none'}; ")


class _ActionTheory:
    """The action policy's rules rewritten into a scratch policy of the live engine.

    Tables, as the action policy's rules read them: an update table ``t+``/``t-`` targets
    ``t`` of the simulated policy (or the named one); a rule deriving an update reads the
    other updates as derived, any other rule reads the step's final updates (after conflicts
    and skolemization). ``result``, declared actions, tables the action policy defines and
    supporting facts given in invocation heads are the action theory's own; any other
    unqualified table is the simulated policy's (Congress's action theory includes it);
    a qualified one is read as named.
    """

    def __init__(self, engine: Engine, policy: str, action_policy: str | None,
                 invocations: list[Invocation]):
        self.engine = engine
        self.policy = policy
        self.ap = action_policy
        self.actions = declared_actions(engine, action_policy)
        self.name = f"simulate#{next(_scratch_ids)}"
        self.updates_derived: dict[tuple[str, int], str] = {}
        self.finals: dict[tuple[str, int], str] = {}
        self.constant: dict[tuple[str, int], set[tuple]] = defaultdict(set)
        self.previous: str | None = None  # the previous step's results, for invocation bodies
        self.bindings: dict[int, tuple[str, list[str]]] = {}  # id(step) -> table, variables
        self.arity: dict[str, int] = {}
        source = engine.rules(action_policy) if action_policy in engine.policies else []
        self.defined: set[str] = set()  # local tables with rules in the action policy
        self.facts: set[str] = set()  # local tables with facts in the action policy
        rules: list[Rule] = []
        for rule in source:
            head = rule.head
            if isinstance(head, Modal) or len(rule.heads) != 1:
                continue  # execute[...] fires on real transitions only; no part of projection
            if head.update:
                if rule.body:
                    rules.append(rule)
                else:
                    key = self._target(head)
                    self.constant[key].add(tuple(a.value for a in head.args))  # type: ignore
                continue
            if rule.body:
                rules.append(rule)
                self.defined.add(action_name(head, action_policy))
            elif head.table != "action":
                self.facts.add(action_name(head, action_policy))
        self.given = {action_name(h, action_policy) for s in invocations for h in s.heads
                      if action_name(h, action_policy) not in self.actions}
        for step in invocations:
            for head in step.heads:
                self._learn(action_name(head, action_policy), len(head.args), step.text)
        out = [self._rewrite(rule) for rule in rules]
        for step in invocations:
            if step.body:
                out.append(self._binding_rule(step))
        out += self._views()
        self._install(list(dict.fromkeys(out)))

    # -- names

    def _target(self, atom: Atom) -> tuple[str, int]:
        return f"{atom.theory or self.policy}:{atom.table}", (1 if atom.update == "+" else -1)

    def _local(self, name: str) -> bool:
        return (name == "result" or name in self.actions or name in self.defined
                or name in self.given)

    def _scratch(self, table: str, args: tuple) -> Atom:
        return Atom(table, args, theory=self.name)

    def table(self, local: str) -> str:
        return f"{self.name}:{local}"

    def input(self, local: str) -> str:
        return f"{self.name}:in/{local}"

    def _learn(self, name: str, arity: int, where: str) -> None:
        known = self.arity.setdefault(name, arity)
        if known != arity:
            raise _error(f"{name} is used with {known} and with {arity} arguments "
                         f"(in {where}); an action or table has one arity")

    # -- rules

    def _positional(self, atom: Atom, target: str) -> Atom:
        """An update atom with its target's named columns resolved (padded like Congress)."""
        module, _, table = target.partition(":")
        diagnostics: list = []
        atom = resolve_columns(atom, self.engine.schemas.columns(module, table),
                               FreshVariables(), diagnostics)
        raise_if_errors(diagnostics)
        return atom

    def _read(self, atom: Atom, mode: str) -> Atom:
        """A body atom as the scratch policy reads it (``mode``: update, other, invocation)."""
        if atom.update:
            key = self._target(atom)
            atom = self._positional(atom, key[0])
            sign = "+" if key[1] > 0 else "-"
            if mode == "update":
                local = self.updates_derived.setdefault(key, f"update/{key[0]}{sign}")
            else:
                local = self.finals.setdefault(key, f"final/{key[0]}{sign}")
            return self._scratch(local, atom.args)
        name = action_name(atom, self.ap)
        if mode == "invocation" and name == "result":
            self.previous = "previous/result"
            self._learn(self.previous, len(atom.args), str(atom))
            return self._scratch(self.previous, atom.args)
        if self._local(name):
            if atom.named:
                raise _error(f"{atom}: named columns are for datasource tables; write the "
                             f"arguments of {name} by position")
            self._learn(name, len(atom.args), str(atom))
            return self._scratch(name, atom.args)
        if atom.theory is None:
            theory = self.ap if name in self.facts else self.policy
            return replace(atom, theory=theory)
        return atom

    def _body(self, body: Iterable[Literal], mode: str) -> tuple[Literal, ...]:
        out: list[Literal] = []
        for literal in body:
            if _is_true(literal):
                continue
            if isinstance(literal, Atom):
                out.append(self._read(literal, mode))
            elif isinstance(literal, Negation) and isinstance(literal.atom, Atom):
                out.append(replace(literal, atom=self._read(literal.atom, mode)))
            elif isinstance(literal, Aggregate):
                out.append(replace(literal, body=self._body(literal.body, mode)))
            else:
                out.append(literal)
        return tuple(out)

    def _rewrite(self, rule: Rule) -> Rule:
        head = rule.head
        assert isinstance(head, Atom)
        if not head.update:
            name = action_name(head, self.ap)
            self._learn(name, len(head.args), str(rule))
            return Rule((self._scratch(name, head.args),), self._body(rule.body, "other"))
        key = self._target(head)
        head = self._positional(head, key[0])
        local = self.updates_derived.setdefault(
            key, f"update/{key[0]}{'+' if key[1] > 0 else '-'}")
        bound = _bound(rule)
        free = list(dict.fromkeys(a.name for a in head.args
                                  if isinstance(a, Variable) and a.name not in bound))
        skolem = tuple(Comparison("=", Variable(v), Constant(SKOLEM + v)) for v in free)
        return Rule((self._scratch(local, head.args),), self._body(rule.body, "update") + skolem)

    def _binding_rule(self, step: Invocation) -> Rule:
        variables = list(dict.fromkeys(a.name for h in step.heads for a in h.args
                                       if isinstance(a, Variable)))
        bound = _bound(Rule(step.heads, step.body))
        unbound = [v for v in variables if v not in bound]
        if unbound:
            raise _error(f"simulate step {step.text}: variable {unbound[0]} of the invoked "
                         "action is not bound by the body")
        table = f"invocation/{len(self.bindings)}"
        self.bindings[id(step)] = (table, variables)
        head = self._scratch(table, tuple(Variable(v) for v in variables))
        return Rule((head,), self._body(step.body, "invocation"))

    def _views(self) -> list[Rule]:
        """Each local table is the union of what feeds it: invocations, facts, real rows."""
        out = []
        for name, arity in self.arity.items():
            if name == self.previous or not self._local(name):
                continue
            variables = tuple(Variable(f"v{i}") for i in range(arity))
            head = self._scratch(name, variables)
            if name in self.actions or name in self.given:
                out.append(Rule((head,), (self._scratch(f"in/{name}", variables),)))
            if name in self.facts:
                out.append(Rule((head,), (Atom(name, variables, theory=self.ap),)))
            if name in self.given and name not in self.actions:
                real = name if ":" in name else f"{self.policy}:{name}"
                if self.engine.has_table(real):
                    module, _, table = real.partition(":")
                    out.append(Rule((head,), (Atom(table, variables, theory=module),)))
        return out

    def _install(self, rules: list[Rule]) -> None:
        self.engine.create_policy(self.name)
        try:
            self.engine.apply(RuleChange(self.name, r, +1) for r in rules)
        except CharterError as exc:
            self.engine.delete_policy(self.name)
            summary = exc.summary() if isinstance(exc, PolicyError) else str(exc)
            raise _error(f"the rules of action policy {self.ap} cannot be projected: "
                         f"{summary.replace(self.name + ':', '')}") from exc

    # -- one step

    def instances(self, step: Invocation) -> dict[str, set[tuple]] | None:
        """The invocation's atoms by table (as the action policy names it); None when its
        body has no answer."""
        if step.body:
            table, variables = self.bindings[id(step)]
            found = _rows(self.engine, self.table(table))
            if not found:
                return None
            bindings = [dict(zip(variables, row, strict=True)) for row in found]
        else:
            bindings = [{}]
        out: dict[str, set[tuple]] = defaultdict(set)
        for binding in bindings:
            for head in step.heads:
                row = tuple(binding[a.name] if isinstance(a, Variable) else a.value  # type: ignore
                            for a in head.args)
                out[action_name(head, self.ap)].add(row)
        return out

    def updates(self) -> dict[tuple[str, int], set[tuple]]:
        """Every derived update, conflicts resolved (insert wins), free variables fresh."""
        found: dict[tuple[str, int], set[tuple]] = defaultdict(set)
        for key, rows in self.constant.items():
            found[key] |= rows
        for key, local in self.updates_derived.items():
            found[key] |= _rows(self.engine, self.table(local))
        for (target, sign), rows in list(found.items()):
            if sign < 0:
                rows -= found.get((target, 1), set())
        return {key: {_skolemize(r) for r in rows} for key, rows in found.items() if rows}

    def results(self) -> set[tuple]:
        return _rows(self.engine, self.table("result")) if "result" in self.arity else set()

    def carry(self, results: set[tuple]) -> list[Delta]:
        """Changes making ``results`` the previous results the next invocation reads."""
        if self.previous is None:
            return []
        table = self.table(self.previous)
        width = self.arity[self.previous]
        if any(len(r) != width for r in results):
            raise _error(f"an invocation reads result with {width} arguments, but the action "
                         f"policy {self.ap} derives result with {len(next(iter(results)))}")
        old = _rows(self.engine, table)
        return ([Delta(table, r, -1) for r in old - results]
                + [Delta(table, r, +1) for r in results - old])


def _bound(rule: Rule) -> set[str]:
    """Variables the body binds (as the safety check computes them)."""
    keys = {i: frozenset(k) for i, k in all_aggregate_keys(rule).items()}
    order, _ = safe_order(rule.body, set(), keys)
    bound: set[str] = set()
    for i in order:
        bound |= binds(rule.body[i], bound)
    return bound


def _skolemize(row: tuple) -> tuple:
    """Each placeholder becomes a fresh constant (one per variable within the row)."""
    fresh: dict[str, str] = {}
    return tuple(fresh.setdefault(v, str(uuid.uuid4()))
                 if isinstance(v, str) and v.startswith(SKOLEM) else v for v in row)
