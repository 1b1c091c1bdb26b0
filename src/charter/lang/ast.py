"""The syntax tree of Charter's Datalog.

Nodes are frozen, slotted dataclasses: rewrites return new nodes and never mutate,
because compiled plans are cached by rule. Every node carries a ``span`` that does not
take part in equality, so equal rules compare equal wherever they were written.
``str(node)`` prints valid Charter Datalog.

>>> r = Rule((Atom("p", (Variable("x"),)),), (Atom("q", (Variable("x"), Constant(1))),))
>>> str(r)
'p(x) :- q(x, 1)'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node was written: 1-based line and column, end exclusive."""

    file: str | None
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file or '<string>'}:{self.line}:{self.col}"


def _span() -> Span | None:
    return field(default=None, compare=False, repr=False)  # type: ignore[return-value]


# ---------------------------------------------------------------- terms


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable. Each ``_`` is a fresh anonymous variable, named ``_#N`` by the parser
    (N counts the rule's ``_`` in order), a name no user can write."""

    name: str
    span: Span | None = _span()

    @property
    def anonymous(self) -> bool:
        return self.name.startswith("_#")

    def __str__(self) -> str:
        return "_" if self.anonymous else self.name


@dataclass(frozen=True, slots=True)
class Constant:
    """A string, int or float value."""

    value: str | int | float
    span: Span | None = _span()

    def __str__(self) -> str:
        return format_value(self.value)


@dataclass(frozen=True, slots=True)
class BinOp:
    """Infix arithmetic: ``x + 1``. ``op`` is one of ``+ - * / %``."""

    op: str
    left: Expr
    right: Expr
    span: Span | None = _span()

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


Term = Variable | Constant
Expr = Variable | Constant | BinOp


def format_value(value: object) -> str:
    """Print a constant as Datalog source: strings double-quoted, numbers as Python prints them.

    An int too large for Python to print in decimal (a rule's arithmetic can make one; the
    parser refuses such literals) is printed in hex, which takes linear time:

    >>> format_value(1 << 20_000)[:6], format_value(-42), format_value("a\u2028")
    ('0x1000', '-42', '"a\u2028"')
    """
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if type(value) is int and value.bit_length() > _DECIMAL_BITS:
        try:
            return repr(value)
        except ValueError:  # over sys.get_int_max_str_digits() digits
            return hex(value)
    return repr(value)


_DECIMAL_BITS = 14_000  # ints of fewer bits have fewer than 4,300 digits: repr() prints them


# ---------------------------------------------------------------- literals


@dataclass(frozen=True, slots=True)
class Atom:
    """A table reference ``theory:table(args, col=term)``.

    ``theory`` is the policy or datasource prefix (None for the rule's own policy).
    ``named`` holds column references as ``(name_or_index, term)`` pairs, resolved against the
    table's schema by the compiler. ``update`` is ``"+"`` or ``"-"`` for update tables.
    """

    table: str
    args: tuple[Term, ...] = ()
    theory: str | None = None
    named: tuple[tuple[str | int, Term], ...] = ()
    update: str | None = None
    span: Span | None = _span()

    @property
    def qualified(self) -> str:
        name = f"{self.theory}:{self.table}" if self.theory else self.table
        return name + (self.update or "")

    def __str__(self) -> str:
        parts = [str(a) for a in self.args]
        parts += [f"{k}={v}" for k, v in self.named]
        return f"{self.qualified}({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class BuiltinCall:
    """A call of a builtin, written bare (``lt(x, y)``) or qualified (``builtin:lt(x, y)``).

    ``str()`` prints it as written; a bare name in a body is always the builtin, so the
    printed rule parses back to an equal one."""

    name: str
    args: tuple[Term, ...]
    span: Span | None = _span()
    # Written without ``builtin:`` (``lt(x, y)``): printed so, as the user wrote it. Not
    # part of equality: both spellings call the same builtin.
    bare: bool = field(default=False, compare=False, repr=False)

    def __str__(self) -> str:
        prefix = "" if self.bare else "builtin:"
        return f"{prefix}{self.name}({', '.join(str(a) for a in self.args)})"


@dataclass(frozen=True, slots=True)
class Negation:
    """``not atom``: true when the atom (a table or a builtin) has no match."""

    atom: Atom | BuiltinCall
    span: Span | None = _span()

    def __str__(self) -> str:
        return f"not {self.atom}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Infix comparison ``left op right``; ``=`` with one unbound variable side binds it."""

    op: str  # one of < <= > >= = !=
    left: Expr
    right: Expr
    span: Span | None = _span()

    def __str__(self) -> str:
        return f"{_bare(self.left)} {self.op} {_bare(self.right)}"


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Soufflé-style aggregate: ``result = func [target] : { body }``.

    Variables of ``body`` that also appear outside the braces are bound there and
    correlate (group by); the others are local. ``count`` of nothing is 0, ``sum`` of
    nothing is 0, ``min``/``max`` of nothing makes the literal false.
    """

    result: Variable
    func: str  # count | sum | min | max
    target: Expr | None
    body: tuple[Literal, ...]
    span: Span | None = _span()

    def __str__(self) -> str:
        target = f" {_bare(self.target)}" if self.target is not None else ""
        body = ", ".join(str(lit) for lit in self.body)
        return f"{self.result} = {self.func}{target} : {{ {body} }}"


Literal = Atom | BuiltinCall | Negation | Comparison | Aggregate


def _bare(expr: Expr) -> str:
    text = str(expr)
    if isinstance(expr, BinOp):
        return text[1:-1]
    return text


# ---------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class Modal:
    """A modal head: ``execute[atom]`` (``insert``/``delete`` parse but are rejected by checks)."""

    kind: str
    atom: Atom
    span: Span | None = _span()

    def __str__(self) -> str:
        return f"{self.kind}[{self.atom}]"


Head = Atom | Modal


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule ``heads :- body``; a fact is a rule with an empty body.

    Congress's grammar allows several heads; only simulate's action invocations use them,
    and the checks reject them in stored policies.
    """

    heads: tuple[Head, ...]
    body: tuple[Literal, ...] = ()
    span: Span | None = _span()
    _hash: int | None = field(default=None, init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        # Rules key the engine's maps (rules by policy, compiled rules, auxiliary tables):
        # hashing a long body at every look-up would cost its size each time, so the hash
        # is computed once (rules are immutable).
        found = self._hash
        if found is None:
            found = hash((self.heads, self.body))
            object.__setattr__(self, "_hash", found)
        return found

    @property
    def head(self) -> Head:
        return self.heads[0]

    @property
    def is_fact(self) -> bool:
        return not self.body

    def __str__(self) -> str:
        heads = ", ".join(str(h) for h in self.heads)
        if not self.body:
            return heads
        return f"{heads} :- {', '.join(str(lit) for lit in self.body)}"


def flat_literals(body: Iterable[Literal]) -> Iterator[Literal | Atom | BuiltinCall]:
    """The literals a body writes, in order, with each aggregate's body spliced in and each
    negation unwrapped: every atom, builtin call and comparison, at any depth."""
    for literal in body:
        if isinstance(literal, Aggregate):
            yield from flat_literals(literal.body)
        elif isinstance(literal, Negation):
            yield literal.atom
        else:
            yield literal


def rule_literals(rules: Iterable[Rule]) -> Iterator[Literal | Atom | BuiltinCall]:
    """Each rule's head atoms (inside ``execute[...]`` too), then its :func:`flat_literals`."""
    for rule in rules:
        for head in rule.heads:
            yield head.atom if isinstance(head, Modal) else head
        yield from flat_literals(rule.body)


def body_atoms(body: Iterable[Literal]) -> Iterator[Atom]:
    """Every table atom a body reads: positive, negated, inside aggregates."""
    return (a for a in flat_literals(body) if isinstance(a, Atom))


def rule_atoms(rules: Iterable[Rule]) -> Iterator[Atom]:
    """Every table atom of the rules: heads (inside ``execute[...]`` too) and bodies.

    >>> from charter.lang.parser import parse
    >>> rules = parse("execute[nova:pause(x)] :- q(x), not r(x), n = count : { s(x) }, lt(n, 2)")
    >>> [a.table for a in rule_atoms(rules)]
    ['pause', 'q', 'r', 's']
    """
    return (a for a in rule_literals(rules) if isinstance(a, Atom))


def literal_atom(literal: Literal) -> Atom | None:
    """The table atom a literal reads, if it reads one (positively or negated)."""
    if isinstance(literal, Atom):
        return literal
    if isinstance(literal, Negation) and isinstance(literal.atom, Atom):
        return literal.atom
    return None


def expr_variables(expr: Expr | None) -> list[Variable]:
    """Variables of an expression, in order of appearance (with repeats)."""
    if expr is None or isinstance(expr, Constant):
        return []
    if isinstance(expr, Variable):
        return [expr]
    return expr_variables(expr.left) + expr_variables(expr.right)


def literal_variables(literal: Literal) -> list[Variable]:
    """Variables a literal mentions, in order (an aggregate: its result and correlated body vars)."""
    if isinstance(literal, Atom):
        return [t for t in literal.args if isinstance(t, Variable)] + [
            t for _, t in literal.named if isinstance(t, Variable)
        ]
    if isinstance(literal, BuiltinCall):
        return [t for t in literal.args if isinstance(t, Variable)]
    if isinstance(literal, Negation):
        return literal_variables(literal.atom)
    if isinstance(literal, Comparison):
        return expr_variables(literal.left) + expr_variables(literal.right)
    if isinstance(literal, Aggregate):
        inner: list[Variable] = []
        for lit in literal.body:
            inner += literal_variables(lit)
        return [literal.result, *expr_variables(literal.target), *inner]
    raise TypeError(literal)
