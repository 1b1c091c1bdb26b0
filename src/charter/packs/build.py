"""From a pack's rules to the policies a service runs: one per control, self-contained.

A pack's ``.dl`` files are one namespace: a control's table may read helper tables and the
pack's parameters. Enabling a pack (or listing its controls in the library) makes one policy
per control, named for the control (``OS-NET-001`` -> ``OS_NET_001``), holding:

- the parameters its rules read, as facts (the operator's values, else the defaults);
- the rules its table depends on, and nothing else (its *slice* of the pack);
- ``error(columns) :- table(columns)``: the control's rows are the policy's violations, so
  the violation history (first seen, webhooks) and ``/v1/policies/<p>/violations`` work
  per control as for any policy.

Named columns over a datasource (``nova:servers(id=x)``) are rewritten by position with the
driver's schema, so a control's policy can be created before its datasources exist, and
keeps loading after one is deleted (its tables are then empty and the posture says why).
A policy per control costs a helper table shared by several controls one evaluation per
control; in return each control is a library policy that stands alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from charter.lang.ast import Aggregate, Atom, Constant, Literal, Modal, Negation, Rule, Variable
from charter.lang.columns import FreshVariables, resolve_columns
from charter.packs.schemas import driver_tables
from charter.packs.spec import ControlSpec, PackSpec, ParameterSpec, row_problem, row_values

__all__ = [
    "ControlPolicy",
    "ParameterError",
    "body_atoms",
    "control_policy",
    "dependencies",
    "parameter_facts",
    "parameter_values",
    "slice_rules",
]

Rows = dict[str, list[tuple]]


class ParameterError(ValueError):
    """Parameter values that do not fit the pack: each message names the parameter and row."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("; ".join(messages))


def body_atoms(literals: Iterable[Literal]) -> Iterator[Atom]:
    """Every table atom of a body: positive, negated, and inside aggregates."""
    for literal in literals:
        if isinstance(literal, Atom):
            yield literal
        elif isinstance(literal, Negation) and isinstance(literal.atom, Atom):
            yield literal.atom
        elif isinstance(literal, Aggregate):
            yield from body_atoms(literal.body)


def head_tables(rule: Rule) -> list[str]:
    return [h.atom.qualified if isinstance(h, Modal) else h.qualified for h in rule.heads]


def dependencies(rules: Iterable[Rule]) -> tuple[dict[str, list[Rule]], dict[str, set[str]]]:
    """The rules defining each of the pack's tables, and the pack tables each one reads."""
    defines: dict[str, list[Rule]] = {}
    reads: dict[str, set[str]] = {}
    for rule in rules:
        used = {a.table for a in body_atoms(rule.body) if a.theory is None}
        for table in head_tables(rule):
            defines.setdefault(table, []).append(rule)
            reads.setdefault(table, set()).update(used)
    return defines, reads


def closure(table: str, reads: Mapping[str, set[str]]) -> set[str]:
    """``table`` and every table it reads, directly or not."""
    seen, stack = set(), [table]
    while stack:
        t = stack.pop()
        if t not in seen:
            seen.add(t)
            stack.extend(reads.get(t, ()))
    return seen


def slice_rules(rules: Iterable[Rule], table: str) -> tuple[list[Rule], set[str]]:
    """The rules ``table`` depends on, in the pack's order, and the tables they need."""
    rules = list(rules)
    _, reads = dependencies(rules)
    needed = closure(table, reads)
    return [r for r in rules if set(head_tables(r)) & needed], needed


# ---------------------------------------------------------------- parameters


def parameter_values(spec: PackSpec, overrides: Mapping[str, Any] | None = None) -> Rows:
    """Each parameter's rows: the operator's (replacing the default whole), else the default.

    Raises:
        ParameterError: an unknown parameter (with the known ones), or a row that does not
            fit its columns (with the column and the value).
    """
    overrides = dict(overrides or {})
    problems: list[str] = []
    for name in overrides:
        if name not in spec.parameters:
            known = ", ".join(sorted(spec.parameters)) or "none"
            problems.append(f"no parameter {name!r}; the pack's parameters: {known}")
    out: Rows = {}
    for name, parameter in spec.parameters.items():
        given = overrides.get(name, parameter.default)
        if not isinstance(given, list):
            problems.append(f"parameter {name}: give a list of rows, not {type(given).__name__}")
            continue
        rows = []
        for i, row in enumerate(given):
            problem = row_problem(parameter, row)
            if problem is not None:
                problems.append(f"parameter {name}, row {i + 1}: {problem}")
                continue
            rows.append(row_values(parameter, row) or ())
        out[name] = list(dict.fromkeys(rows))
    if problems:
        raise ParameterError(problems)
    return out


def parameter_facts(values: Rows, names: Iterable[str] | None = None) -> list[Rule]:
    """The parameters' rows as facts (only those in ``names``, when given)."""
    wanted = set(values) if names is None else set(names)
    return [
        Rule((Atom(name, tuple(Constant(v) for v in row)),))
        for name, rows in values.items()
        if name in wanted
        for row in rows
    ]


def overrides_of(spec: PackSpec, values: Rows) -> dict[str, list[list]]:
    """The parameters whose values differ from the defaults, as JSON rows."""
    out = {}
    for name, parameter in spec.parameters.items():
        default = [row_values(parameter, r) for r in parameter.default]
        if list(dict.fromkeys(default)) != values.get(name, []):
            out[name] = [list(r) for r in values.get(name, [])]
    return out


def parameter_json(parameter: ParameterSpec, rows: list[tuple]) -> list:
    """Rows as JSON: bare values for a one-column parameter, else lists."""
    if len(parameter.columns) == 1:
        return [r[0] for r in rows]
    return [list(r) for r in rows]


# ---------------------------------------------------------------- a control's policy


@dataclass(frozen=True)
class ControlPolicy:
    """What a control becomes in a service: a (library) policy's name, description and
    rules (``{"rule", "comment"}``, as the policies API takes them)."""

    name: str
    description: str
    rules: list[dict]
    datasources: tuple[str, ...]


def datasource_tables(spec: PackSpec) -> dict[str, dict[str, tuple[str, ...]]]:
    """Each declared datasource's tables, when its driver's are known (else the rules read
    it by position)."""
    out = {}
    for name, ds in spec.datasources.items():
        tables = driver_tables(ds.driver or name)
        if tables is not None:
            out[name] = tables
    return out


def positional(rule: Rule, schemas: Mapping[str, Mapping[str, tuple[str, ...]]]) -> Rule:
    """``rule`` with every named column of a known datasource table written by position."""
    fresh = FreshVariables(10_000)

    def literal(lit: Literal) -> Literal:
        if isinstance(lit, Atom):
            return atom(lit)
        if isinstance(lit, Negation) and isinstance(lit.atom, Atom):
            return replace(lit, atom=atom(lit.atom))
        if isinstance(lit, Aggregate):
            return replace(lit, body=tuple(literal(x) for x in lit.body))
        return lit

    def atom(a: Atom) -> Atom:
        columns = schemas.get(a.theory or "", {}).get(a.table)
        if not a.named or columns is None:
            return a
        return resolve_columns(a, columns, fresh, [])

    return replace(rule, body=tuple(literal(x) for x in rule.body))


def _where(rule: Rule) -> str:
    s = rule.span
    return f"{s.file}:{s.line}" if s is not None and s.file else "the pack"


def control_policy(
    spec: PackSpec, rules: Iterable[Rule], control: ControlSpec, values: Rows
) -> ControlPolicy:
    """The policy a control becomes, with ``values`` for the parameters its rules read."""
    sliced, needed = slice_rules(rules, control.table)
    schemas = datasource_tables(spec)
    out = [
        {"rule": str(fact), "comment": f"{control.id}: parameter {fact.head.table}"}
        for fact in parameter_facts(values, needed)
    ]
    for rule in sliced:
        written = positional(rule, schemas)
        comment = f"{control.id}: {_where(rule)}"
        if written != rule:  # the rule as the pack writes it, with its column names
            comment += f": {rule}"
        out.append({"rule": str(written), "comment": comment})
    variables = tuple(Variable(c) for c in control.column_names)
    glue = Rule((Atom("error", variables),), (Atom(control.table, variables),))
    out.append(
        {"rule": str(glue), "comment": f"{control.id}: every row of {control.table} is a violation"}
    )
    read = sorted({a.theory for r in sliced for a in body_atoms(r.body) if a.theory})
    description = f"{spec.title} {control.id} ({control.severity}): {control.title}"
    return ControlPolicy(control.policy, description, out, tuple(read))
