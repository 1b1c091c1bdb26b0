"""The engine's view of all policies' rules: compiled rules, auxiliary tables and strata.

Built anew whenever rules change (cheap: no data is touched). Each aggregate literal gets
an auxiliary table of its body's bindings, defined by a rule of its own, so aggregates are
maintained like any other derived table. A table that has both rules and rows keeps its
rows (facts) in a base table ``<table>#facts`` read by one more rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from charter.engine.execute import RuleStats
from charter.engine.join_order import RuleShape
from charter.engine.plan import Plan
from charter.engine.planner import AggregateSpec, expression, plan_rule
from charter.lang.ast import (
    Aggregate,
    Atom,
    Literal,
    Modal,
    Negation,
    Rule,
    Variable,
    literal_variables,
)
from charter.lang.checks import body_tables, head_table
from charter.lang.safety import all_aggregate_keys
from charter.lang.stratify import AGGREGATE, DependencyGraph

FACTS_SUFFIX = "#facts"


@dataclass(eq=False)
class CompiledRule:
    """One rule as the engine runs it, with its plans (made on first use) and error counts."""

    policy: str
    rule: Rule
    head: str
    aggregates: dict[int, AggregateSpec] = field(default_factory=dict)
    stats: RuleStats = field(default_factory=RuleStats)
    source: Rule | None = None  # the user's rule this one serves (for auxiliary rules)
    _plans: dict = field(default_factory=dict)
    _shape: RuleShape | None = None
    _inputs: list[tuple[int, str]] | None = None

    def inputs(self) -> list[tuple[int, str]]:
        """``(literal index, table)`` for each body literal whose table can change."""
        if self._inputs is not None:
            return self._inputs
        out = []
        for i, literal in enumerate(self.rule.body):
            if isinstance(literal, Atom):
                out.append((i, literal.qualified))
            elif isinstance(literal, Negation) and isinstance(literal.atom, Atom):
                out.append((i, literal.atom.qualified))
            elif isinstance(literal, Aggregate):
                out.append((i, self.aggregates[i].table))
        self._inputs = out
        return out

    @cached_property
    def copies(self) -> str | None:
        """The table this rule copies whole (``h(x, y) :- t(x, y)``, distinct variables):
        its head then holds exactly that table's rows, once each."""
        rule = self.rule
        if len(rule.body) != 1 or isinstance(rule.head, Modal):
            return None
        (literal,) = rule.body
        if not isinstance(literal, Atom) or literal.args != rule.head.args:
            return None
        names = {a.name for a in literal.args if isinstance(a, Variable)}
        return literal.qualified if len(names) == len(literal.args) else None

    def forget_plans(self) -> None:
        """Drop the cached plans: they follow the table sizes of their first use, and bulk
        work (a load, a whole evaluation) can change those by orders of magnitude."""
        self._plans.clear()
        self._shape = None

    @property
    def shape(self) -> RuleShape:
        """What the rule's plans share (made once per sizes, like the plans)."""
        if self._shape is None:
            self._shape = RuleShape(self.rule, self.aggregates)
        return self._shape

    def plan(self, start: int | str | None, size: Callable[[str], int]) -> Plan:
        """The plan from ``start`` (None: full, an index: that literal's delta, "head")."""
        if start is None:  # full plans follow the data's current sizes
            return plan_rule(self.rule, None, size, self.aggregates, RuleShape(self.rule, self.aggregates))
        plan = self._plans.get(start)
        if plan is None:
            plan = self._plans[start] = plan_rule(
                self.rule, start, size, self.aggregates, self.shape
            )
        return plan


@dataclass
class Stratum:
    """Tables evaluated together, the rules defining them, and whether they recurse."""

    tables: frozenset[str]
    recursive: bool
    rules: list[CompiledRule]

    @cached_property
    def inputs(self) -> frozenset[str]:
        """Every table the stratum's rules read (its own included)."""
        return frozenset(t for compiled in self.rules for _, t in compiled.inputs())


@dataclass
class AuxiliaryTable:
    """What an aggregate's auxiliary table feeds: function, key width, target."""

    func: str
    width: int
    target: Callable[[tuple], object] | None


@dataclass
class Program:
    """All compiled rules, in strata, plus what the engine needs to route rows."""

    strata: list[Stratum]
    derived: set[str]
    auxiliary: dict[str, AuxiliaryTable]
    rules_by_head: dict[str, list[CompiledRule]]

    def stratum_of(self) -> dict[str, int]:
        return {t: i for i, s in enumerate(self.strata) for t in s.tables}

    @cached_property
    def readers(self) -> dict[str, tuple[int, ...]]:
        """Table -> the strata reading it (by position), so a batch visits only those."""
        found: dict[str, list[int]] = {}
        for i, stratum in enumerate(self.strata):
            for table in stratum.inputs:
                found.setdefault(table, []).append(i)
        return {t: tuple(strata) for t, strata in found.items()}


class AuxiliaryNames:
    """Stable names for auxiliary tables, so unchanged rules keep their materialized data.

    Only the names of rules still compiled are kept (:meth:`forget_unasked`, after each
    build): rules created and deleted (each a new text) do not pile up. Names are never
    reused, so a forgotten name cannot meet a stale table.
    """

    def __init__(self) -> None:
        self._names: dict[tuple[str, Rule, int], str] = {}
        self._asked: set[tuple[str, Rule, int]] = set()
        self._counter = 0

    def name(self, policy: str, rule: Rule, position: int) -> str:
        key = (policy, rule, position)
        self._asked.add(key)
        if key not in self._names:
            self._counter += 1
            self._names[key] = f"{policy}:#agg{self._counter}"
        return self._names[key]

    def forget_unasked(self) -> None:
        """Forget the names not asked for since the last call (their rules are gone; the
        engine drops their tables with them)."""
        self._names = {k: v for k, v in self._names.items() if k in self._asked}
        self._asked = set()

    def __len__(self) -> int:
        return len(self._names)


def _auxiliary_rule(
    policy: str, rule: Rule, position: int, table: str, keys: tuple[str, ...]
) -> tuple[CompiledRule, AuxiliaryTable]:
    aggregate = rule.body[position]
    assert isinstance(aggregate, Aggregate)
    names = list(keys)
    for literal in aggregate.body:
        for var in literal_variables(literal):
            if var.name not in names:
                names.append(var.name)
    module, _, name = table.partition(":")
    head = Atom(name, tuple(Variable(n) for n in names), theory=module)
    aux_rule = Rule((head,), aggregate.body, aggregate.span)
    layout = {n: i for i, n in enumerate(names)}
    target = expression(aggregate.target, layout) if aggregate.target is not None else None
    compiled = CompiledRule(policy, aux_rule, table, source=rule)
    return compiled, AuxiliaryTable(aggregate.func, len(keys), target)


def facts_table(table: str) -> str:
    return table + FACTS_SUFFIX


def build_program(
    rules: Mapping[str, Sequence[Rule]],
    with_facts: Callable[[str], bool],
    arity: Callable[[str], int | None],
    names: AuxiliaryNames,
    previous: Program | None = None,
) -> Program:
    """Compile every policy's normalized rules (facts excluded) into strata.

    ``with_facts(table)`` says whether a derived table has rows of its own (its facts
    table then gets a rule). Compiled rules of ``previous`` are reused when unchanged,
    keeping their plans and error counts.
    """
    reuse: dict[tuple[str, Rule], CompiledRule] = {}
    if previous is not None:
        for stratum in previous.strata:
            for compiled in stratum.rules:
                reuse[(compiled.policy, compiled.rule)] = compiled

    def compiled_rule(policy: str, rule: Rule, head: str, **extra) -> CompiledRule:
        existing = reuse.get((policy, rule))
        if existing is not None and existing.head == head:
            return existing
        return CompiledRule(policy, rule, head, **extra)

    compiled: list[CompiledRule] = []
    auxiliary: dict[str, AuxiliaryTable] = {}
    for policy, policy_rules in rules.items():
        for rule in policy_rules:
            if not rule.body and not isinstance(rule.head, Modal):
                continue
            specs: dict[int, AggregateSpec] = {}
            for i, keys in all_aggregate_keys(rule).items():
                table = names.name(policy, rule, i)
                specs[i] = AggregateSpec(table, keys)
                aux, info = _auxiliary_rule(policy, rule, i, table, keys)
                compiled.append(compiled_rule(policy, aux.rule, table, source=rule))
                auxiliary[table] = info
            head = head_table(policy, rule.head)
            compiled.append(compiled_rule(policy, rule, head, aggregates=specs))
    derived = {c.head for c in compiled}
    for table in sorted(derived):
        n = arity(table)
        if n is not None and with_facts(table):
            module, _, name = table.partition(":")
            variables = tuple(Variable(f"v{i}") for i in range(n))
            head = Atom(name, variables, theory=module)
            body: tuple[Literal, ...] = (Atom(name + FACTS_SUFFIX, variables, theory=module),)
            compiled.append(compiled_rule(module, Rule((head,), body), table))
    by_head: dict[str, list[CompiledRule]] = {}
    graph = DependencyGraph()
    for c in compiled:
        by_head.setdefault(c.head, []).append(c)
        graph.nodes.setdefault(c.head)
        for i, table in c.inputs():
            kind = AGGREGATE if i in c.aggregates else "body"
            graph.add(c.head, table, kind)
    strata = [
        Stratum(s.tables, s.recursive, [c for t in sorted(s.tables) for c in by_head.get(t, [])])
        for s in graph.strata()
        if any(t in derived for t in s.tables)
    ]
    names.forget_unasked()
    return Program(strata, derived, auxiliary, by_head)


__all__ = ["Program", "Stratum", "CompiledRule", "build_program", "facts_table", "body_tables"]
