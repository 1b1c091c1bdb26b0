"""The evidence a proof or a "why not" is built from, and evaluating one literal of a rule.

A derivation (``_Derivation``) is one rule with one binding of its variables and, for each
literal of its body, what made it hold: a row (``_Row``), a row's absence (``_Absent``), a
builtin's value (``_Called``) or an aggregate's group (``_Group``). The functions below
substitute a binding into a literal and evaluate builtins and comparisons, as
``explainer.py`` does literal by literal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from charter.engine.explain_tree import ANY
from charter.engine.program import FACTS_SUFFIX, CompiledRule
from charter.lang.ast import (
    Aggregate,
    Atom,
    BinOp,
    BuiltinCall,
    Comparison,
    Constant,
    Expr,
    Literal,
    Modal,
    Negation,
    Rule,
    Term,
    Variable,
    format_value,
    literal_variables,
)
from charter.lang.builtins import ARITHMETIC, BUILTINS, COMPARISONS, call_builtin

Key = tuple[str, tuple]


# ---------------------------------------------------------------- evidence (internal)


@dataclass(frozen=True, slots=True)
class _Row:
    table: str
    row: tuple


@dataclass(frozen=True, slots=True)
class _Absent:
    table: str
    pattern: tuple


@dataclass(frozen=True, slots=True)
class _Called:
    kind: str
    call: str
    result: Any


@dataclass(frozen=True, slots=True)
class _Group:
    table: str
    func: str
    group: tuple[tuple[str, Any], ...]
    value: Any
    rows: tuple[tuple, ...]


_Evidence = _Row | _Absent | _Called | _Group


@dataclass(eq=False)
class _Derivation:
    """One way a row is derived: a rule, a binding, and what each body literal matched."""

    compiled: CompiledRule
    row: tuple
    binding: dict[str, Any]
    evidence: list[_Evidence]

    def supports(self, tables: frozenset[str]) -> set[Key]:
        """The rows of ``tables`` (a recursive stratum) the derivation uses."""
        return {
            (e.table, e.row) for e in self.evidence if isinstance(e, _Row) and e.table in tables
        }


# ---------------------------------------------------------------- substitution


def _subst_term(term: Term, b: dict[str, Any]) -> Term:
    if isinstance(term, Variable) and term.name in b and b[term.name] is not ANY:
        return Constant(b[term.name])
    return term


def _subst_expr(expr: Expr, b: dict[str, Any]) -> Expr:
    if isinstance(expr, BinOp):
        return replace(expr, left=_subst_expr(expr.left, b), right=_subst_expr(expr.right, b))
    return _subst_term(expr, b)


def _subst(literal: Literal, b: dict[str, Any]) -> Literal:
    """``literal`` with its bound variables replaced by their values, for messages."""
    if isinstance(literal, Atom):
        return replace(
            literal,
            args=tuple(_subst_term(t, b) for t in literal.args),
            named=tuple((k, _subst_term(t, b)) for k, t in literal.named),
        )
    if isinstance(literal, BuiltinCall):
        return replace(literal, args=tuple(_subst_term(t, b) for t in literal.args))
    if isinstance(literal, Negation):
        return replace(literal, atom=_subst(literal.atom, b))  # type: ignore[arg-type]
    if isinstance(literal, Comparison):
        return replace(
            literal, left=_subst_expr(literal.left, b), right=_subst_expr(literal.right, b)
        )
    if isinstance(literal, Aggregate):
        return replace(literal, body=tuple(_subst(x, b) for x in literal.body))
    return literal


def _bare(expr: Expr) -> str:
    text = str(expr)
    return text[1:-1] if isinstance(expr, BinOp) else text


def _eval(expr: Expr, b: dict[str, Any]) -> Any:
    if isinstance(expr, Constant):
        return expr.value
    if isinstance(expr, Variable):
        return b[expr.name]
    return ARITHMETIC[expr.op](_eval(expr.left, b), _eval(expr.right, b))


def _head_atom(rule: Rule) -> Atom:
    head = rule.head
    return head.atom if isinstance(head, Modal) else head


def _unify(args: Sequence[Term], row: Sequence[Any]) -> dict[str, Any] | None:
    """The binding of head variables that makes ``args`` produce ``row`` (ANY: left open)."""
    if len(args) != len(row):
        return None
    b: dict[str, Any] = {}
    for term, value in zip(args, row, strict=True):
        if value is ANY:
            continue
        if isinstance(term, Constant):
            if term.value != value:
                return None
        elif term.name in b:
            if b[term.name] != value:
                return None
        else:
            b[term.name] = value
    return b


def _error(exc: Exception) -> str:
    return f"raised {type(exc).__name__}: {exc}"


# ---------------------------------------------------------------- literal evaluation


def _binds(literal: Literal) -> list[Variable]:
    if isinstance(literal, Negation):
        return []
    if isinstance(literal, Aggregate):
        return [literal.result]
    return literal_variables(literal)


def _pattern(args: Sequence[Term], b: dict[str, Any]) -> tuple:
    out = []
    for term in args:
        if isinstance(term, Constant):
            out.append(term.value)
        elif term.name in b:
            out.append(b[term.name])
        else:
            out.append(ANY)
    return tuple(out)


def _qualified_text(atom: Literal, table: str) -> str:
    """An atom's text with its table qualified (``approved("x")`` -> ``p:approved("x")``)."""
    if isinstance(atom, Atom) and atom.theory is None:
        module = table.partition(":")[0]
        return str(replace(atom, theory=module))
    return str(atom)


def _run_builtin(call: BuiltinCall, b: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str]:
    """(the call with its input values, the extended binding or None, why it failed)."""
    builtin = BUILTINS[call.name]
    inputs = [
        t.value if isinstance(t, Constant) else b[t.name] for t in call.args[: builtin.inputs]
    ]
    text = f"{call.name}({', '.join(format_value(v) for v in inputs)})"
    try:
        result = call_builtin(builtin, inputs)
    except Exception as exc:  # the engine makes the literal false for this row
        return text, None, _error(exc)
    if result is None:
        return text, None, "is false"
    if result:
        text += " = " + ", ".join(format_value(v) for v in result)
    extended = dict(b)
    for term, value in zip(call.args[builtin.inputs :], result, strict=True):
        if isinstance(term, Variable) and term.name not in extended:
            extended[term.name] = value
            continue
        expected = term.value if isinstance(term, Constant) else extended[term.name]
        if expected != value:
            return text, None, f"is not {format_value(expected)}"
    return text, extended, ""


def _run_comparison(
    cmp: Comparison, b: dict[str, Any]
) -> tuple[str, str, dict[str, Any] | None, Any, str]:
    """(kind, the comparison with its values, the binding or None, result, why it failed)."""
    if cmp.op == "=":
        for side, other in ((cmp.left, cmp.right), (cmp.right, cmp.left)):
            if isinstance(side, Variable) and side.name not in b:
                text = f"{side.name} = {_bare(_subst_expr(other, b))}"
                try:
                    value = _eval(other, b)
                except Exception as exc:
                    return "assignment", text, None, None, _error(exc)
                if isinstance(other, BinOp):
                    text += f" = {format_value(value)}"
                return "assignment", text, {**b, side.name: value}, value, ""
    try:
        left, right = _eval(cmp.left, b), _eval(cmp.right, b)
    except Exception as exc:
        return "comparison", str(_subst(cmp, b)), None, None, _error(exc)
    text = f"{format_value(left)} {cmp.op} {format_value(right)}"
    try:
        holds = COMPARISONS[cmp.op](left, right)
    except Exception as exc:
        return "comparison", text, None, None, _error(exc)
    if not holds:
        return "comparison", text, None, None, "is false"
    return "comparison", text, b, True, ""


def _is_facts_rule(compiled: CompiledRule) -> bool:
    body = compiled.rule.body
    return (
        len(body) == 1
        and isinstance(body[0], Atom)
        and body[0].qualified == compiled.head + FACTS_SUFFIX
    )
