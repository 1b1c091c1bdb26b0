"""Compile-time checks, in order, and the normalization that goes with them.

``compile_rules`` runs the per-rule checks of ``RULE_CHECKS`` on one policy's rules and
returns them normalized: every table name qualified with its policy or datasource, column
references resolved to positions. ``check_program`` runs the checks that need every
policy at once (arity agreement across rules, stratification).

>>> from charter.lang.ast import Atom, Rule, Variable as V
>>> rules, diags = compile_rules("p", [Rule((Atom("h", (V("x"),)),), (Atom("q", (V("y"),)),))])
>>> print(diags[0])
error[unsafe_variable]: variable x found in head but not in body of rule h(x) :- q(y)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from charter.lang.ast import (
    Aggregate,
    Atom,
    BuiltinCall,
    Literal,
    Modal,
    Negation,
    Rule,
    Variable,
    expr_variables,
    literal_atom,
    literal_variables,
)
from charter.lang.builtins import BUILTINS, RESERVED_NAMES
from charter.lang.columns import FreshVariables, resolve_columns
from charter.lang.errors import Diagnostic
from charter.lang.safety import all_aggregate_keys, binds, safe_order
from charter.lang.schema import Schemas
from charter.lang.stratify import AGGREGATE, NEGATIVE, POSITIVE, DependencyGraph

AGGREGATE_FUNCTIONS = ("count", "sum", "min", "max")


def head_table(policy: str, head: Atom | Modal) -> str:
    """The qualified table a head writes: ``policy:table``, or ``policy:execute[ds:action]``."""
    if isinstance(head, Modal):
        return f"{policy}:{head.kind}[{head.atom.qualified}]"
    return f"{head.theory or policy}:{head.table}{head.update or ''}"


def body_tables(rule: Rule) -> Iterable[tuple[str, str]]:
    """``(table, edge kind)`` for each table a normalized rule's body reads."""
    for literal in rule.body:
        if isinstance(literal, Atom):
            yield literal.qualified, POSITIVE
        elif isinstance(literal, Negation) and isinstance(literal.atom, Atom):
            yield literal.atom.qualified, NEGATIVE
        elif isinstance(literal, Aggregate):
            for inner in literal.body:
                atom = literal_atom(inner)
                if atom is not None:
                    yield atom.qualified, AGGREGATE


class _RuleContext:
    """What one rule's checks share: its policy, the schemas and the diagnostics so far."""

    def __init__(self, policy: str, kind: str, schemas: Schemas, diagnostics: list[Diagnostic]):
        self.source: Rule | None = None  # the rule as the user wrote it, for messages
        self.policy = policy
        self.kind = kind
        self.schemas = schemas
        self.diagnostics = diagnostics

    def error(self, code: str, message: str, node) -> None:
        self.diagnostics.append(Diagnostic(code, message, getattr(node, "span", None)))


# ---------------------------------------------------------------- per-rule checks


def check_heads(rule: Rule, ctx: _RuleContext) -> Rule:
    """One head; only ``execute`` as a modal; heads in the rule's own policy; no builtin names."""
    if len(rule.heads) > 1:
        ctx.error(
            "multiple_heads",
            f"rule {rule} has {len(rule.heads)} heads; stored rules have exactly one "
            f"(write one rule per head)",
            rule,
        )
    head = rule.head
    if isinstance(head, Modal):
        if head.kind != "execute":
            ctx.error(
                "modal_not_allowed",
                f"only 'execute' modal is allowed; found {head.kind} in head {head}",
                head,
            )
        return rule
    if head.theory and head.theory != ctx.policy and not (head.update and ctx.kind == "action"):
        ctx.error(
            "head_references_policy",
            f"head {head} should not reference policy {head.theory}: a rule defines tables of "
            f"its own policy ({ctx.policy}) only",
            head,
        )
    if head.update and ctx.kind != "action":
        ctx.error(
            "update_table",
            f"head {head} names an update table; update tables (p+ / p-) belong in action "
            f"policies and simulate sequences",
            head,
        )
    if head.table in RESERVED_NAMES:
        ctx.error(
            "reserved_name",
            f"conflict with built-in tablename: {head.table} (rename the table)",
            head,
        )
    return replace(rule, heads=(replace(head, theory=ctx.policy),))


def _qualify(atom: Atom, ctx: _RuleContext, fresh: FreshVariables) -> Atom:
    written = str(atom)  # messages show the literal as the user wrote it
    theory = atom.theory or ctx.policy
    atom = replace(atom, theory=theory)
    if atom.update and ctx.kind != "action":
        ctx.error(
            "update_table",
            f"literal {written} reads an update table; update tables belong in action policies",
            atom,
        )
    columns = ctx.schemas.columns(theory, atom.table)
    if columns is None and ctx.schemas.is_complete(theory):
        known = ctx.schemas.tables(theory)
        hint = difflib.get_close_matches(atom.table, known, n=1)
        suggestion = f"; did you mean {theory}:{hint[0]}?" if hint else ""
        ctx.error(
            "unknown_table",
            f"literal {written} uses unknown table {atom.table} from policy {theory}{suggestion}",
            atom,
        )
        return atom
    atom = resolve_columns(atom, columns, fresh, ctx.diagnostics, label=written)
    if columns is not None and len(atom.args) > len(columns):
        ctx.error(
            "arity_mismatch",
            f"literal {written} contained {len(atom.args)} arguments but exactly "
            f"{len(columns)} arguments are permitted ({atom.qualified}: {', '.join(columns)})",
            atom,
        )
    return atom


def _normalize_literal(literal: Literal, ctx: _RuleContext, fresh: FreshVariables) -> Literal:
    if isinstance(literal, Atom):
        return _qualify(literal, ctx, fresh)
    if isinstance(literal, Negation) and isinstance(literal.atom, Atom):
        return replace(literal, atom=_qualify(literal.atom, ctx, fresh))
    if isinstance(literal, Aggregate):
        body = tuple(_normalize_literal(inner, ctx, fresh) for inner in literal.body)
        return replace(literal, body=body)
    return literal


def resolve_tables(rule: Rule, ctx: _RuleContext) -> Rule:
    """Qualify body tables with their policy; resolve column references against schemas.

    An action written without a service (``execute[p(x)]``) is the policy's own, as in
    Congress (``congress/policy_engines/agnostic.py``, ``_execute_table``: ``service =
    service or theory``): its table is ``<policy>:execute[<policy>:p]``.
    """
    fresh = FreshVariables()
    head = rule.head
    if isinstance(head, Modal):
        atom = head.atom
        if atom.named:
            atom = _qualify(atom, ctx, fresh)
        head = replace(head, atom=replace(atom, theory=atom.theory or ctx.policy))
    body = tuple(_normalize_literal(lit, ctx, fresh) for lit in rule.body)
    return replace(rule, heads=(head, *rule.heads[1:]), body=body)


def _builtins_in(body: Sequence[Literal]) -> Iterable[BuiltinCall]:
    for literal in body:
        if isinstance(literal, BuiltinCall):
            yield literal
        elif isinstance(literal, Negation) and isinstance(literal.atom, BuiltinCall):
            yield literal.atom
        elif isinstance(literal, Aggregate):
            yield from _builtins_in(literal.body)


def check_builtins(rule: Rule, ctx: _RuleContext) -> Rule:
    """Builtins exist and are called with their arity."""
    for call in _builtins_in(rule.body):
        builtin = BUILTINS.get(call.name)
        if builtin is None:
            hint = difflib.get_close_matches(call.name, list(BUILTINS), n=1)
            more = f"; did you mean {hint[0]}?" if hint else ""
            ctx.error("unknown_builtin", f"unknown builtin {call.name}{more}", call)
        elif len(call.args) != builtin.arity:
            ctx.error(
                "builtin_arity",
                f"builtin {call.name} takes {builtin.arity} arguments "
                f"({builtin.inputs} in, {builtin.outputs} out); {call} has {len(call.args)}",
                call,
            )
    return rule


def check_aggregates(rule: Rule, ctx: _RuleContext) -> Rule:
    """Aggregates: a known function, a target where one is needed, no nesting."""
    for literal in rule.body:
        if not isinstance(literal, Aggregate):
            continue
        if literal.func not in AGGREGATE_FUNCTIONS:
            ctx.error(
                "unknown_aggregate",
                f"unknown aggregate {literal.func}; use one of {', '.join(AGGREGATE_FUNCTIONS)}",
                literal,
            )
        if literal.func == "count" and literal.target is not None:
            ctx.error("aggregate_target", "count takes no target: n = count : { body }", literal)
        if literal.func != "count" and literal.target is None:
            ctx.error(
                "aggregate_target",
                f"{literal.func} needs a target: v = {literal.func} x : {{ body }}",
                literal,
            )
        if any(isinstance(inner, Aggregate) for inner in literal.body):
            ctx.error("nested_aggregate", "aggregates may not be nested", literal)
        inner_vars = {v.name for inner in literal.body for v in literal_variables(inner)}
        if literal.result.name in inner_vars:
            ctx.error(
                "unsafe_variable",
                f"aggregate result {literal.result} also appears inside its braces",
                literal,
            )
    return rule


def check_facts(rule: Rule, ctx: _RuleContext) -> Rule:
    """Facts are ground."""
    if rule.body or isinstance(rule.head, Modal):
        return rule
    variables = [t for t in rule.head.args if isinstance(t, Variable)]
    if variables:
        ctx.error(
            "fact_not_ground",
            f"fact not ground: {ctx.source or rule} (variable {variables[0]}; facts hold "
            f"constants only)",
            variables[0],
        )
    return rule


def _unsafe_what(literal: Literal) -> str:
    if isinstance(literal, Negation):
        return "a negated literal"
    if isinstance(literal, BuiltinCall):
        return "the inputs of a builtin"
    if isinstance(literal, Aggregate):
        return "the group-by variables of an aggregate"
    return "a comparison"


def _unsafe_groups(missing: Mapping[int, set[str]]) -> list[list[int]]:
    """The unsafe literals, grouped: two literals are in one group when they miss a
    variable in common (so a variable missing in several places is one error)."""
    parent = {i: i for i in missing}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i in sorted(missing):
        for name in missing[i]:
            if name in owner:
                parent[root(i)] = root(owner[name])
            else:
                owner[name] = i
    groups: dict[int, list[int]] = {}
    for i in sorted(missing):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values())


def _report_unsafe(
    missing: Mapping[int, set[str]],
    shown: Sequence[Literal],
    spans: Sequence[Literal],
    ctx: _RuleContext,
) -> None:
    """One ``unsafe_variable`` error per group of literals that share a missing variable,
    naming each variable and each literal, as Congress reported them in one message
    (``congress/datalog/compile.py``, ``reorder_for_safety``: "Could not reorder rule {}.
    Unsafe lits: {}", each literal with its variables). ``shown`` are the literals as the
    user wrote them; ``spans`` where to point (the same literals, normalized)."""
    for group in _unsafe_groups(missing):
        first = group[0]
        if len(group) == 1:
            names = ", ".join(sorted(missing[first]))
            message = (
                f"unsafe literal {shown[first]}: {_unsafe_what(shown[first])} needs {names} "
                f"bound by a positive literal of the rule body"
            )
            ctx.error("unsafe_variable", message, spans[first])
            continue
        names = sorted(set().union(*(missing[i] for i in group)))
        if len(names) == 1:
            listed = [str(shown[i]) for i in group]
            what = f"unsafe variable {names[0]}"
            need = f"need {names[0]} bound"
        else:
            listed = [f"{shown[i]} (needs {', '.join(sorted(missing[i]))})" for i in group]
            what = f"unsafe variables {', '.join(names)}"
            need = "need them bound"
        message = (
            f"{what}: {', '.join(listed[:-1])} and {listed[-1]} {need} by a positive "
            f"literal of the rule body"
        )
        notes = tuple(
            f"also unsafe: {shown[i]} at {spans[i].span}"
            for i in group[1:]
            if spans[i].span is not None
        )
        ctx.diagnostics.append(
            Diagnostic("unsafe_variable", message, spans[first].span, notes=notes)
        )


def check_safety(rule: Rule, ctx: _RuleContext) -> Rule:
    """Every head variable, negated literal and builtin input is bound by a positive literal."""
    keys = {i: frozenset(k) for i, k in all_aggregate_keys(rule).items()}
    order, missing = safe_order(rule.body, set(), keys)
    bound: set[str] = set()
    for i in order:
        bound |= binds(rule.body[i], bound)
    source = ctx.source.body if ctx.source is not None else rule.body
    _report_unsafe(missing, source, rule.body, ctx)
    for i, key in keys.items():
        _check_aggregate_body(rule.body[i], source[i], key, ctx)
    head_atom = rule.head.atom if isinstance(rule.head, Modal) else rule.head
    skolemized = ctx.kind == "action" and isinstance(rule.head, Atom) and rule.head.update
    if rule.body and not skolemized:
        for term in head_atom.args:
            if isinstance(term, Variable) and term.name not in bound and not missing:
                shown = "_" if term.anonymous else term.name
                ctx.error(
                    "unsafe_variable",
                    f"variable {shown} found in head but not in body of rule {ctx.source or rule}",
                    term,
                )
    return rule


def _check_aggregate_body(
    aggregate: Aggregate, source: Literal, keys: frozenset[str], ctx: _RuleContext
) -> None:
    inner_keys = {i: frozenset() for i, lit in enumerate(aggregate.body)}
    order, missing = safe_order(aggregate.body, set(), inner_keys)
    shown = source if isinstance(source, Aggregate) else aggregate
    _report_unsafe(missing, shown.body, aggregate.body, ctx)
    bound = {v.name for i in order for v in literal_variables(aggregate.body[i])}
    for var in expr_variables(aggregate.target):
        if var.name not in bound:
            ctx.error(
                "unsafe_variable",
                f"aggregate target variable {var} is not bound inside the braces of {shown}",
                var,
            )


RuleCheck = Callable[[Rule, _RuleContext], Rule]

# Order matters: safety and builtin arity read the positional arguments resolve_tables makes.
RULE_CHECKS: tuple[tuple[str, RuleCheck], ...] = (
    ("heads", check_heads),
    ("tables", resolve_tables),
    ("builtins", check_builtins),
    ("aggregates", check_aggregates),
    ("facts", check_facts),
    ("safety", check_safety),  # after tables: padding adds variables
)


def compile_rules(
    policy: str,
    rules: Sequence[Rule],
    schemas: Schemas | None = None,
    kind: str = "nonrecursive",
) -> tuple[list[Rule], list[Diagnostic]]:
    """Check and normalize one policy's rules.

    Returns the normalized rules that passed (in order) and every diagnostic found.
    """
    schemas = schemas or Schemas()
    diagnostics: list[Diagnostic] = []
    out: list[Rule] = []
    for rule in rules:
        mine: list[Diagnostic] = []
        ctx = _RuleContext(policy, kind, schemas, mine)
        ctx.source = rule
        for _name, check in RULE_CHECKS:
            rule = check(rule, ctx)
        diagnostics += mine
        if not any(d.is_error for d in mine):
            out.append(rule)
    return out, diagnostics


# ---------------------------------------------------------------- program-wide checks


def _atoms_with_arity(rule: Rule, policy: str) -> Iterable[tuple[str, int, Atom]]:
    head = rule.head
    if isinstance(head, Atom):
        yield head_table(policy, head), len(head.args), head
    stack: list[Literal] = list(rule.body)
    while stack:
        literal = stack.pop()
        if isinstance(literal, Aggregate):
            stack.extend(literal.body)
            continue
        atom = literal_atom(literal)
        if atom is not None:
            yield atom.qualified, len(atom.args), atom


def _shown(atom: Atom, policy: str) -> str:
    """A normalized atom as its rule's author wrote it: without the prefix of the rule's
    own policy, which normalizing added."""
    return str(replace(atom, theory=None)) if atom.theory == policy else str(atom)


def check_arity(
    rules: Mapping[str, Sequence[Rule]], known: Mapping[str, int] | None = None
) -> list[Diagnostic]:
    """Every table is used with one arity across all policies (and its known schema)."""
    seen: dict[str, tuple[int, Atom | None, str]] = {
        t: (n, None, "") for t, n in (known or {}).items()
    }
    diagnostics = []
    for policy, policy_rules in rules.items():
        for rule in policy_rules:
            for table, arity, atom in _atoms_with_arity(rule, policy):
                if table not in seen:
                    seen[table] = (arity, atom, policy)
                    continue
                expected, first, first_policy = seen[table]
                if arity != expected:
                    where = (
                        f" (as in {_shown(first, first_policy)} at {first.span})"
                        if first is not None
                        else ""
                    )
                    diagnostics.append(
                        Diagnostic(
                            "arity_mismatch",
                            f"{_shown(atom, policy)} has {arity} arguments but {table} has "
                            f"{expected}{where}",
                            atom.span,
                        )
                    )
    return diagnostics


def dependency_graph(rules: Mapping[str, Sequence[Rule]]) -> DependencyGraph:
    """The table dependency graph of normalized rules, keyed by policy."""
    graph = DependencyGraph()
    for policy, policy_rules in rules.items():
        for rule in policy_rules:
            head = head_table(policy, rule.head)
            graph.nodes.setdefault(head)
            for table, kind in body_tables(rule):
                graph.add(head, table, kind)
    return graph


def check_stratification(rules: Mapping[str, Sequence[Rule]]) -> list[Diagnostic]:
    """No cycle of tables goes through negation or an aggregate."""
    diagnostics = []
    graph = dependency_graph(rules)
    spans = {
        head_table(policy, rule.head): rule.span
        for policy, policy_rules in rules.items()
        for rule in policy_rules
    }
    for cycle in graph.unstratifiable():
        diagnostics.append(
            Diagnostic(
                "unstratifiable",
                f"recursion through negation or aggregation: {' -> '.join(cycle)} "
                f"(a table may not depend on its own negation or aggregate)",
                spans.get(cycle[0]),
            )
        )
    return diagnostics


PROGRAM_CHECKS = (
    ("arity", check_arity),
    ("stratification", check_stratification),
)


def check_program(
    rules: Mapping[str, Sequence[Rule]], known_arity: Mapping[str, int] | None = None
) -> list[Diagnostic]:
    """The checks that need all policies' normalized rules together."""
    return check_arity(rules, known_arity) + check_stratification(rules)


__all__ = [
    "RULE_CHECKS",
    "PROGRAM_CHECKS",
    "compile_rules",
    "check_program",
    "head_table",
    "body_tables",
    "dependency_graph",
]
