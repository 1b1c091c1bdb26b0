"""``impossible_condition``: conditions no value can meet, from the kinds values can have.

Values are strings or numbers (``1`` and ``"1"`` differ, and a comparison of a string with a
number is false for the row). The schemas the compiler knows give column names only, never
kinds, and a Congress driver's column may hold a number or the string ``"None"``; so
datasource columns are of unknown kind and lint never guesses them. Kinds are known, for
certain, from what the policies themselves write:

- a constant: ``"ERROR"`` is a string, ``3`` a number;
- an aggregate: ``count`` and ``sum`` are numbers, ``min``/``max`` have their target's kind;
- arithmetic: ``-``, ``/`` and ``%`` make numbers; ``+`` with a number is a number (a string
  plus a number fails), with a string a string; builtins that return one kind (``len``,
  ``int``, ``unpack_date`` make numbers, ``now``, ``pack_date``, ``concat`` of strings make
  strings);
- a policy's own table: the kinds its facts and its rules' heads can put in each column,
  worked out over all policies to a fixed point. Rows a data file gives a policy table are
  taken to be of its facts' kinds.

A condition is impossible when both sides have known kinds that never meet: ``n > "2"`` after
``n = count : {...}``, ``approved(1)`` when ``approved`` holds only strings, or two constants
that compare false (``1 > 2``). A negated literal that can never match, such as
``not approved(1)``, is reported too: the negation is always true and excludes nothing.

>>> from charter.lang.parser import parse
>>> from charter.lang.checks import compile_rules
>>> rules, _ = compile_rules("p", parse("ok('a')\\nw(n) :- n = count : { q(_) }, n > '2', not ok(3)"))
>>> for d in impossible_conditions({"p": rules}): print(d)
<string>:2:31: warning[impossible_condition]: n > "2" can never be true: n is a number and "2" is a string, and values of different kinds are never equal or ordered; compare values of one kind (write the number without quotes, or the text with them)
<string>:2:40: warning[impossible_condition]: not p:ok(3) is always true: column 1 of ok holds only strings (from its facts and rules), never the number 3; the negation excludes nothing
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

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
)
from charter.lang.builtins import BUILTINS, COMPARISONS
from charter.lang.checks import body_tables, head_table
from charter.lang.errors import WARNING, Diagnostic
from charter.lang.safety import all_aggregate_keys, safe_order

__all__ = ["impossible_conditions", "table_kinds"]

NUMBER = "number"
STRING = "string"
Kinds = frozenset[str] | None
"""The kinds a value may have; None when unknown (any kind)."""

_NUM: frozenset[str] = frozenset({NUMBER})
_STR: frozenset[str] = frozenset({STRING})
_NONE: frozenset[str] = frozenset()  # no value seen yet (a table's rules not yet read)

_FIXED_OUTPUTS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("float", "int", "len", "datetime_to_seconds"), _NUM),
    **dict.fromkeys(("unpack_date", "unpack_time", "unpack_datetime"), _NUM),
    **dict.fromkeys(("now", "pack_time", "pack_date", "pack_datetime"), _STR),
    **dict.fromkeys(("extract_date", "extract_time", "datetime_plus", "datetime_minus"), _STR),
    **dict.fromkeys(("validate_int", "validate_float", "validate_string"), _STR),
}
"""Builtins whose outputs are of one kind whatever their inputs."""
_ARITHMETIC_BUILTINS = {"plus": "+", "concat": "+", "minus": "-", "mul": "*", "div": "/"}
_COMPARE_BUILTINS = {"lt": "<", "lteq": "<=", "gt": ">", "gteq": ">=", "equal": "="}

Report = Callable[[str, Any], None]
Written = Callable[[Any], Any]


def _kind(value: object) -> frozenset[str]:
    return _STR if isinstance(value, str) else _NUM


def _known(kinds: Kinds) -> bool:
    return bool(kinds)  # None (unknown) and the empty set (nothing seen) tell nothing


def _text(kinds: frozenset[str]) -> str:
    return "a string" if kinds == _STR else "a number" if kinds == _NUM else "a value"


def _plural(kinds: frozenset[str]) -> str:
    return "strings" if kinds == _STR else "numbers"


def _value_text(value: object) -> str:
    return f"the string {Constant(value)}" if isinstance(value, str) else f"the number {value}"


def _join(a: Kinds, b: Kinds) -> Kinds:
    if a is None or b is None:
        return None
    return a | b


class _Rule:
    """Kinds of one rule's variables, found literal by literal in the order the rule runs."""

    def __init__(self, tables: Mapping[str, list[Kinds]], report: Report | None, written: Written):
        self.tables = tables
        self.report = report
        self.written = written
        self.env: dict[str, Kinds] = {}

    def warn(self, node: Any, message: str) -> None:
        if self.report is not None:
            self.report(message, node)

    def shown(self, node: Any) -> str:
        return str(self.written(node) or node)

    # expressions

    def expr(self, expr: Expr | None) -> Kinds:
        if expr is None:
            return None
        if isinstance(expr, Constant):
            return _kind(expr.value)
        if isinstance(expr, Variable):
            return self.env.get(expr.name)
        return self.binop(expr.op, self.expr(expr.left), self.expr(expr.right))

    @staticmethod
    def binop(op: str, left: Kinds, right: Kinds) -> Kinds:
        if op in ("-", "/", "%"):
            return _NUM
        if op == "+":
            for side in (left, right):
                if side in (_NUM, _STR):
                    return side  # a string plus a number fails: the other side is the same
            return None
        if left == _STR or right == _STR:  # "ab" * 2; "ab" * "c" fails
            return _STR
        if left == _NUM and right == _NUM:
            return _NUM
        return None

    # literals

    def run(self, body: Sequence[Literal], keys: Mapping[int, frozenset[str]]) -> None:
        order, _missing = safe_order(body, set(self.env), dict(keys))
        for i in order:
            self.literal(body[i])

    def literal(self, literal: Literal) -> None:
        if isinstance(literal, Atom):
            self.atom(literal)
        elif isinstance(literal, Negation) and isinstance(literal.atom, Atom):
            self.negation(literal)
        elif isinstance(literal, BuiltinCall):
            self.builtin(literal)
        elif isinstance(literal, Comparison):
            self.comparison(literal)
        elif isinstance(literal, Aggregate):
            self.aggregate(literal)

    def columns(self, atom: Atom) -> list[Kinds]:
        found = self.tables.get(atom.qualified)
        return list(found) if found is not None else [None] * len(atom.args)

    def atom(self, atom: Atom) -> None:
        columns = self.columns(atom)
        for i, term in enumerate(atom.args):
            column = columns[i] if i < len(columns) else None
            if (what := self.mismatch(column, term)) is not None:
                self.warn(
                    atom,
                    f"literal {self.shown(atom)} never matches: column {i + 1} of "
                    f"{atom.table} holds only {_plural(column)} (from its facts and rules), "  # type: ignore[arg-type]
                    f"never {what}; the rule never fires",
                )
                column = None  # report the first impossibility only, not what follows
            if isinstance(term, Variable) and not term.anonymous:
                self.bind(term.name, column)

    def mismatch(self, column: Kinds, term: Term) -> str | None:
        """What ``term`` holds, said for a warning, when no value of it fits ``column``."""
        mine = self.term(term)
        if not (_known(column) and _known(mine)) or column & mine:  # type: ignore[operator]
            return None
        if isinstance(term, Constant):
            return _value_text(term.value)
        return f"{_text(mine)} ({term})"  # type: ignore[arg-type]

    def term(self, term: Term) -> Kinds:
        if isinstance(term, Constant):
            return _kind(term.value)
        if term.anonymous:
            return None
        return self.env.get(term.name)

    def bind(self, name: str, kinds: Kinds) -> None:
        """A variable bound (or joined) where values of ``kinds`` are: its kinds narrow."""
        if name not in self.env:
            self.env[name] = kinds
            return
        old = self.env[name]
        if _known(old) and _known(kinds):
            both = old & kinds  # type: ignore[operator]
            self.env[name] = both or None
        elif not _known(old):
            self.env[name] = kinds if _known(kinds) else old

    def negation(self, negation: Negation) -> None:
        atom = negation.atom
        assert isinstance(atom, Atom)
        columns = self.columns(atom)
        for i, term in enumerate(atom.args):
            column = columns[i] if i < len(columns) else None
            if (what := self.mismatch(column, term)) is not None:
                self.warn(
                    negation,
                    f"{self.shown(negation)} is always true: column {i + 1} of {atom.table} "
                    f"holds only {_plural(column)} (from its facts and rules), never {what}; "  # type: ignore[arg-type]
                    f"the negation excludes nothing",
                )
                return

    def builtin(self, call: BuiltinCall) -> None:
        args = call.args
        if call.name in _COMPARE_BUILTINS and len(args) == 2:
            self.compare(call, _COMPARE_BUILTINS[call.name], args[0], args[1])
            return
        if call.name in _ARITHMETIC_BUILTINS and len(args) == 3:
            kinds = self.binop(
                _ARITHMETIC_BUILTINS[call.name], self.term(args[0]), self.term(args[1])
            )
            self.assign(args[2], kinds)
            return
        builtin = BUILTINS.get(call.name)
        inputs = builtin.inputs if builtin is not None else len(args)
        fixed = _FIXED_OUTPUTS.get(call.name)
        for arg in args[inputs:]:  # the outputs: bound here, or compared when bound already
            if isinstance(arg, Variable) and not arg.anonymous:
                self.bind(arg.name, fixed)

    def assign(self, term: Term, kinds: Kinds) -> None:
        if isinstance(term, Variable) and not term.anonymous:
            self.bind(term.name, kinds)

    def comparison(self, comparison: Comparison) -> None:
        left, right = comparison.left, comparison.right
        if comparison.op == "=":
            for target, source in ((left, right), (right, left)):
                if isinstance(target, Variable) and target.name not in self.env:
                    self.env[target.name] = self.expr(source)  # an assignment binds
                    return
        self.compare(comparison, comparison.op, left, right)

    def compare(self, literal: Literal, op: str, left: Expr, right: Expr) -> None:
        if isinstance(left, Constant) and isinstance(right, Constant):
            try:
                holds = COMPARISONS[op](left.value, right.value)
            except TypeError:
                holds = False
            if not holds:
                self.warn(
                    literal,
                    f"{self.shown(literal)} is always false: it compares two constants; "
                    f"remove it or write the value it was meant to test",
                )
            return
        if op == "!=":
            return  # values of different kinds always differ: != is true, not impossible
        lk, rk = self.expr(left), self.expr(right)
        if _known(lk) and _known(rk) and not (lk & rk):  # type: ignore[operator]
            self.warn(
                literal,
                f"{self.shown(literal)} can never be true: {_bare(left)} is {_text(lk)} and "  # type: ignore[arg-type]
                f"{_bare(right)} is {_text(rk)}, and values of different kinds are never "  # type: ignore[arg-type]
                f"equal or ordered; compare values of one kind (write the number without "
                f"quotes, or the text with them)",
            )

    def aggregate(self, aggregate: Aggregate) -> None:
        inner = _Rule(self.tables, self.report, self.written)
        inner.env = dict(self.env)
        inner.run(aggregate.body, {})
        if aggregate.func in ("count", "sum"):
            kinds: Kinds = _NUM
        else:
            kinds = inner.expr(aggregate.target)
        self.bind(aggregate.result.name, kinds)


def _bare(expr: Expr) -> str:
    text = str(expr)
    return text[1:-1] if isinstance(expr, BinOp) else text


def _rule_env(
    rule: Rule, tables: Mapping[str, list[Kinds]], report: Report | None, written: Written
) -> _Rule:
    state = _Rule(tables, report, written)
    keys = {i: frozenset(k) for i, k in all_aggregate_keys(rule).items()}
    state.run(rule.body, keys)
    return state


def _readers_last(heads: list[tuple[str, Rule]]) -> list[tuple[str, Rule]]:
    """The rules ordered so a table's rules come after those of the tables it reads (a
    depth-first post-order; a cycle is cut anywhere), so that one pass reaches the fixed
    point of a program without recursion, however long its chains of tables."""
    by_table: dict[str, list[Rule]] = {}
    for table, rule in heads:
        by_table.setdefault(table, []).append(rule)
    reads = {
        table: [t for rule in rules for t, _ in body_tables(rule) if t in by_table]
        for table, rules in by_table.items()
    }
    order: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done
    for start in by_table:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(reads[start]))]
        while stack:
            table, pending = stack[-1]
            for nxt in pending:
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(reads[nxt])))
                    break
            else:
                stack.pop()
                state[table] = 2
                order.append(table)
    return [(table, rule) for table in order for rule in by_table[table]]


def table_kinds(rules: Mapping[str, Sequence[Rule]], limit: int = 50) -> dict[str, list[Kinds]]:
    """The kinds each column of each policy table can hold: from its facts and the heads of
    its rules, over all policies until nothing changes (recursion included).

    >>> from charter.lang.parser import parse
    >>> from charter.lang.checks import compile_rules
    >>> text = "a(1, 'x')\\nb(y, z) :- a(y, _), z = y + 1\\nc(z) :- b(_, z)"
    >>> rules, _ = compile_rules("p", parse(text))
    >>> {t: [sorted(k) for k in ks] for t, ks in table_kinds({"p": rules}).items()}
    {'p:a': [['number'], ['string']], 'p:b': [['number'], ['number']]}

    Only tables some rule reads are worked out (``p:c`` is not): no other is looked at.
    """
    heads: list[tuple[str, Rule]] = []
    for policy, policy_rules in rules.items():
        for rule in policy_rules:
            head = rule.head
            if isinstance(head, Modal) or head.update:
                continue
            heads.append((head_table(policy, head), rule))
    read = {t for _, rule in heads for t, _ in body_tables(rule)}
    heads = _readers_last([(table, rule) for table, rule in heads if table in read])
    tables: dict[str, list[Kinds]] = {}
    for table, rule in heads:
        tables.setdefault(table, [_NONE] * len(rule.head.args))  # type: ignore[union-attr]
    for _ in range(limit):
        changed = False
        for table, rule in heads:
            state = _rule_env(rule, tables, None, lambda node: None)
            columns = tables[table]
            for i, term in enumerate(rule.head.args):  # type: ignore[union-attr]
                if i >= len(columns):
                    continue
                if isinstance(term, Constant):
                    kinds: Kinds = _kind(term.value)
                else:
                    kinds = state.env.get(term.name) if not term.anonymous else None
                joined = _join(columns[i], kinds)
                if joined != columns[i]:
                    columns[i] = joined
                    changed = True
        if not changed:
            return tables
    return {}  # no fixed point within the limit: know nothing rather than guess


def impossible_conditions(
    rules: Mapping[str, Sequence[Rule]], written: Written | None = None
) -> list[Diagnostic]:
    """An ``impossible_condition`` warning for each literal of the compiled rules (by policy)
    that no value of its known kinds can satisfy, or a negation that excludes nothing.

    Args:
        rules: each policy's rules as compiled (tables qualified, columns resolved).
        written: finds a compiled node's literal as the user wrote it, for messages.
    """
    written = written or (lambda node: None)
    tables = table_kinds(rules)
    out: list[Diagnostic] = []
    seen: set[tuple] = set()

    def report(message: str, node: Any) -> None:
        span = node.span
        key = (span.file, span.line, span.col) if span else (id(node),)
        if key not in seen:
            seen.add(key)
            out.append(Diagnostic("impossible_condition", message, span, WARNING))

    for policy_rules in rules.values():
        for rule in policy_rules:
            _rule_env(rule, tables, report, written)
    return out
