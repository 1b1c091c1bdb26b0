"""Lint: warnings about policies that compile but are likely wrong, each with a stable code.

The compiler's checks (``checks.py``) refuse what cannot run; lint points at what runs but
probably does not mean what its author meant: a misspelled table in a negation
(``not aproved(vm)`` is always true), a variable written once, a helper table nothing reads,
a condition no value can meet, the same rule copied into two policies. Each code can be
switched off with ``--disable CODE`` or a ``# charter: disable=CODE`` comment on the rule
(:mod:`charter.lang.suppress`).

Lint looks only at rules that compile without error, so a rule is never both refused and
warned about. It reads the rules as written (for names and places) and as compiled (tables
qualified, columns resolved) for the comparisons of :mod:`charter.lang.lint_types`.

>>> from charter.lang.parser import parse
>>> class P:
...     name, kind = "p", "nonrecursive"
...     rules = tuple(parse("ok('a')\\nerror(vm) :- ds:vms(vm, n), not okk(vm)", "p.dl"))
>>> for d in lint_policies([P()]): print(d)
p.dl:1:1: warning[unused_table]: table ok is never read: no rule of the policies checked reads p:ok, and it is not error, warning or execute[...]
p.dl:2:25: warning[singleton_variable]: variable n appears only once in the rule: write _ for a value the rule ignores (or _n to keep the name), or use it where it was meant to join
p.dl:2:33: warning[unknown_table]: literal okk(vm) reads table okk, which no rule or fact of policy p defines; did you mean ok?
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Protocol

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
    body_atoms,
    literal_variables,
)
from charter.lang.checks import compile_rules
from charter.lang.errors import WARNING, Diagnostic
from charter.lang.lint_types import impossible_conditions
from charter.lang.schema import Schemas

__all__ = ["LINT_CODES", "WARNING_CODES", "PolicySource", "lint_policies"]

LINT_CODES: dict[str, str] = {
    "unknown_table": (
        "A body literal reads a table that no rule or fact of its policy defines: usually a "
        "misspelling, and a misspelled table in a negation makes the negation always true."
    ),
    "singleton_variable": (
        "A named variable appears only once in its rule: a misspelling of another variable, "
        "or a value the rule ignores (write _ or a name starting with _)."
    ),
    "unused_table": (
        "A table of a policy that has error, warning or execute[...] rules is never read by "
        "any rule of the policies checked: dead code, or a reader that misspells it."
    ),
    "impossible_condition": (
        "A comparison, literal or negation that no value can satisfy (or that excludes "
        "nothing) given the kinds of values its columns can hold: the rule never fires, or "
        "the negation is always true."
    ),
    "shadowed_rule": (
        "A rule identical (up to variable names) to a rule of another policy checked with "
        "it: a copy that will drift; keep one."
    ),
}
"""The codes lint itself gives, with the help text ``charter check`` and SARIF show."""

WARNING_CODES: dict[str, str] = {
    **LINT_CODES,
    "padded_literal": (
        "A positional literal with fewer arguments than its table's known columns: Congress "
        "pads the rest with anonymous variables; write them out or use named columns."
    ),
    "duplicate_rule": (
        "The same rule twice in one policy (file or request): it is kept once, as Congress "
        "kept unique rules."
    ),
    "unknown_lint_code": (
        "A disable comment names a code that is not a warning code: it switches nothing off."
    ),
}
"""Every warning code ``--disable`` and ``charter: disable=`` accept: lint's, the compiler's
and the loaders' warnings. A module that adds a warning adds its code here."""

OUTPUT_TABLES = ("error", "warning")


class PolicySource(Protocol):
    """What lint needs of a policy: its name, its kind and its rules as parsed."""

    name: str
    kind: str
    rules: tuple[Rule, ...]


def _key(span: Span | None) -> tuple | None:
    return None if span is None else (span.file, span.line, span.col)


def _warn(code: str, message: str, span: Span | None) -> Diagnostic:
    return Diagnostic(code, message, span, WARNING)


def _head_atom(rule: Rule) -> Atom:
    head = rule.head
    return head.atom if isinstance(head, Modal) else head


class _Program:
    """The policies checked together: their rules as written and as compiled."""

    def __init__(
        self,
        policies: Sequence[PolicySource],
        schemas: Schemas,
        compiled: Mapping[str, Sequence[Rule]] | None = None,
    ):
        self.policies = list(policies)
        self.names = {p.name for p in self.policies}
        self.schemas = schemas
        self.compiled: dict[str, list[Rule]] = {}
        self.clean: set[tuple | None] = set()  # rules (by place) that compiled without error
        for policy in self.policies:
            if compiled is not None and policy.name in compiled:
                rules = list(compiled[policy.name])
            else:
                rules, _ = compile_rules(policy.name, policy.rules, schemas, policy.kind)
            self.compiled[policy.name] = rules
            self.clean |= {_key(r.span) for r in rules}
        self.defined: dict[str, dict[str, Rule]] = {}  # policy -> table -> first rule
        for policy in self.policies:
            tables = self.defined.setdefault(policy.name, {})
            for rule in policy.rules:
                head = rule.head
                if isinstance(head, Atom) and not head.update:
                    tables.setdefault(head.table, rule)

    def rules(self) -> Iterator[tuple[PolicySource, Rule]]:
        """The rules as written that compiled, with their policy."""
        for policy in self.policies:
            for rule in policy.rules:
                if _key(rule.span) in self.clean:
                    yield policy, rule


# ---------------------------------------------------------------- the checks


def unknown_tables(program: _Program) -> list[Diagnostic]:
    """Body tables of the policies checked that none of their rules or facts defines.

    A table of another module is left to the compiler: a datasource with a known schema
    already makes an unknown table an error, and one with no known schema may hold any table.
    """
    out = []
    for policy, rule in program.rules():
        for atom in body_atoms(rule.body):
            owner = atom.theory or policy.name
            if owner not in program.names or atom.update:
                continue
            tables = program.defined.get(owner, {})
            if atom.table in tables:
                continue
            hint = difflib.get_close_matches(atom.table, list(tables), n=1)
            more = "; define it with rules or facts, or name the module that holds it"
            if hint:
                shown = hint[0] if atom.theory is None else f"{owner}:{hint[0]}"
                more = f"; did you mean {shown}?"
            message = (
                f"literal {atom} reads table {atom.table}, which no rule or fact of policy "
                f"{owner} defines{more}"
            )
            out.append(_warn("unknown_table", message, atom.span))
    return out


def singleton_variables(program: _Program) -> list[Diagnostic]:
    """Named variables (not ``_``, not starting with ``_``) that a rule mentions once."""
    out = []
    for _policy, rule in program.rules():
        seen: dict[str, list[Variable]] = {}
        variables = literal_variables(_head_atom(rule))
        for literal in rule.body:
            variables += literal_variables(literal)
        for variable in variables:
            if not variable.name.startswith("_"):
                seen.setdefault(variable.name, []).append(variable)
        for name, uses in seen.items():
            if len(uses) == 1:
                message = (
                    f"variable {name} appears only once in the rule: write _ for a value the "
                    f"rule ignores (or _{name} to keep the name), or use it where it was "
                    f"meant to join"
                )
                out.append(_warn("singleton_variable", message, uses[0].span))
    return out


def unused_tables(program: _Program) -> list[Diagnostic]:
    """Tables of a policy with outputs that no rule of the policies checked reads.

    Congress users query any table directly, so a policy with no ``error``, ``warning`` or
    ``execute[...]`` rule is taken to be read from outside (all its tables are its output).
    A policy that has such rules says what it outputs: its other tables are helpers, and a
    helper nothing reads is dead code or misspelled where it is read. Reads by the table's
    own rules (recursion) do not count. Action policies are never linted here.
    """
    read: set[str] = set()
    for policy in program.policies:
        for rule in policy.rules:
            head = _head_atom(rule)
            own = f"{head.theory or policy.name}:{head.table}"
            for atom in body_atoms(rule.body):
                table = f"{atom.theory or policy.name}:{atom.table}"
                if table != own or isinstance(rule.head, Modal):
                    read.add(table)
    out = []
    for policy in program.policies:
        if policy.kind == "action":
            continue
        heads = [rule.head for rule in policy.rules]
        if not any(isinstance(h, Modal) or h.table in OUTPUT_TABLES for h in heads):
            continue
        for table, rule in program.defined.get(policy.name, {}).items():
            if table in OUTPUT_TABLES or f"{policy.name}:{table}" in read:
                continue
            if _key(rule.span) not in program.clean:
                continue
            message = (
                f"table {table} is never read: no rule of the policies checked reads "
                f"{policy.name}:{table}, and it is not error, warning or execute[...]"
            )
            out.append(_warn("unused_table", message, rule.span))
    return out


@functools.cache
def _fields(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind) if f.init and f.name != "span")


def _shape(node: object, names: dict[str, int]) -> object:
    """A node as nested tuples, its variables numbered in order of appearance and without
    spans: equal shapes are equal rules up to variable names. Constants keep their type
    (``1``, ``1.0`` and ``"1"`` differ)."""
    if isinstance(node, Variable):
        return ("var", names.setdefault(node.name, len(names)))
    if isinstance(node, Constant):
        return ("const", type(node.value).__name__, node.value)
    if isinstance(node, tuple):
        return tuple(_shape(item, names) for item in node)
    if is_dataclass(node) and not isinstance(node, type):
        kind = type(node)
        return (kind.__name__, *(_shape(getattr(node, f), names) for f in _fields(kind)))
    return node


def _outline(rule: Rule) -> tuple:
    """What two equal rules must share, without their terms: the head's table and arity,
    and each body literal's kind and table, builtin or operator."""
    head = _head_atom(rule)
    body = []
    for literal in rule.body:
        if isinstance(literal, Atom):
            body.append(("atom", literal.qualified, len(literal.args)))
        elif isinstance(literal, Negation):
            inner = literal.atom
            body.append(("not", inner.qualified if isinstance(inner, Atom) else inner.name))
        elif isinstance(literal, Comparison):
            body.append(("cmp", literal.op))
        elif isinstance(literal, Aggregate):
            body.append(("agg", literal.func, len(literal.body)))
        else:
            body.append(("call", getattr(literal, "name", "")))
    return (type(rule.head).__name__, head.table, len(head.args), tuple(body))


def shadowed_rules(program: _Program) -> list[Diagnostic]:
    """Rules (not facts) of one policy identical to a rule of another, up to variable names.

    Rules compare as compiled (columns resolved, tables qualified) with the head's policy
    left out, so ``helper(x)`` in two policies names two different tables and does not
    match, while ``nova:servers(id=x)`` matches ``nova:servers(x)``. The later rule, in the
    order the policies were given, gets the warning. The same rule twice in one policy is
    ``duplicate_rule``'s, not this check's.
    """
    if len(program.policies) < 2:
        return []
    outlines: dict[object, set[str]] = {}  # a cheap key first: only its matches get shapes
    for policy in program.policies:
        for rule in program.compiled.get(policy.name, ()):
            if rule.body:
                outlines.setdefault(_outline(rule), set()).add(policy.name)
    first: dict[object, tuple[str, Rule]] = {}
    out = []
    written = {_key(r.span): r for _, r in program.rules()}
    for policy in program.policies:
        for rule in program.compiled.get(policy.name, ()):
            if not rule.body or len(outlines[_outline(rule)]) < 2:
                continue
            head = rule.head if isinstance(rule.head, Modal) else replace(rule.head, theory=None)
            key = _shape((head, rule.body), {})
            if key not in first:
                first[key] = (policy.name, rule)
                continue
            other, earlier = first[key]
            if other == policy.name:
                continue
            shown = written.get(_key(rule.span), rule)
            message = (
                f"rule {shown} is the same as the rule of policy {other} at {earlier.span} "
                f"(up to variable names); keep it in one policy"
            )
            out.append(_warn("shadowed_rule", message, rule.span))
    return out


def lint_policies(
    policies: Sequence[PolicySource],
    schemas: Schemas | Mapping | None = None,
    compiled: Mapping[str, Sequence[Rule]] | None = None,
) -> list[Diagnostic]:
    """Every lint warning of the policies checked together, sorted by place.

    Args:
        policies: the policies, with their rules as parsed (in the order given).
        schemas: the datasource schemas known (``module -> table -> columns``), as the
            compiler has them.
        compiled: each policy's rules that compiled without error, as
            :func:`~charter.lang.checks.compile_rules` returns them, when the caller has
            them already (else lint compiles the policies against ``schemas``).
    """
    if not isinstance(schemas, Schemas):
        schemas = Schemas(schemas or {})
    program = _Program(policies, schemas, compiled)
    written: dict[tuple | None, Literal] = {}
    for _, rule in program.rules():
        for literal in _all_literals(rule.body):
            written[_key(literal.span)] = literal
    diagnostics = (
        singleton_variables(program)
        + unknown_tables(program)
        + unused_tables(program)
        + impossible_conditions(program.compiled, lambda node: written.get(_key(node.span)))
        + shadowed_rules(program)
    )
    return sorted(diagnostics, key=Diagnostic.sort_key)


def _all_literals(body: Iterable[Literal]) -> Iterator[Literal]:
    for literal in body:
        yield literal
        if isinstance(literal, Negation):
            yield literal.atom
        elif isinstance(literal, Aggregate):
            yield from _all_literals(literal.body)
