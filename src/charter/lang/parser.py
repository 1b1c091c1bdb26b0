"""Parse Charter Datalog text into the syntax tree of :mod:`charter.lang.ast`.

The grammar (``grammar.lark``) is Congress's, unchanged, plus infix comparison, arithmetic and
Soufflé-style aggregates. Lark's LALR(1) parser (with ``propagate_positions``) builds a tree
that ``_Builder`` turns into AST nodes, each with its :class:`~charter.lang.ast.Span`. Every
syntax or lexing error becomes a :class:`~charter.lang.errors.PolicyError` with a
``parse_error`` diagnostic that says what was found and what was expected; no Lark exception
escapes.

>>> [str(r) for r in parse("p(1); q(x) :- p(x), not r(x)  // a comment")]
['p(1)', 'q(x) :- p(x), not r(x)']
>>> rule = parse_rule("error(vm) :- nova:servers(id=vm, status='ERROR'), x = 1 + 2 * 3")
>>> rule.body[0].theory, rule.body[0].named[1][1].value, str(rule.body[1])
('nova', 'ERROR', 'x = 1 + (2 * 3)')
>>> parse_rule("p(x, _) :- q(x, _, _)").body[0].args[2]
Variable(name='_#2')
>>> parse_literal("nova:servers(id=x)").named
(('id', Variable(name='x')),)
>>> parse("p(x) :- q(x,)")  # doctest: +ELLIPSIS
Traceback (most recent call last):
charter.lang.errors.PolicyError: <string>:1:13: error[parse_error]: unexpected ')': expected a...
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any, NamedTuple

from lark import Lark, Token, Tree
from lark import __version__ as lark_version
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from charter.lang import limits
from charter.lang.ast import (
    Aggregate,
    Atom,
    BinOp,
    BuiltinCall,
    Comparison,
    Constant,
    Head,
    Literal,
    Modal,
    Negation,
    Rule,
    Span,
    Term,
    Variable,
)
from charter.lang.builtins import BUILTINS
from charter.lang.errors import Diagnostic, PolicyError

__all__ = ["Origin", "parse", "parse_literal", "parse_rule", "parse_sequence"]

Origin = Callable[[int, int], tuple[int, int]]
"""Maps a 1-based (line, col) in the parsed text to where that text sits in a larger file."""

MODALS = ("execute", "insert", "delete")
MAX_EXPRESSION_DEPTH = 100
"""The most expression nesting ``limits.max_depth`` may allow (it may be set to 500 for
JSON): the walkers after the parser (``str()``, the checks, the planner, explain) recurse
once or more per level, and at about 400 levels they exhaust Python's stack."""
BUILTIN_THEORY = "builtin"


@functools.cache
def _lark() -> Lark:
    grammar = resources.files("charter.lang").joinpath("grammar.lark").read_text("utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        start=["start", "query"],
        propagate_positions=True,
        maybe_placeholders=False,
        cache=_cache_file() or False,
    )


@functools.cache
def _strings_and_comments() -> re.Pattern[str]:
    """Strings and comments, from the grammar's own terminals (not a copy of them)."""
    string = _lark().get_terminal("STRING").pattern.to_regexp()
    comment = _lark().get_terminal("COMMENT").pattern.to_regexp()
    return re.compile(f"(?P<string>{string})|(?P<comment>{comment})")


def comment_ranges(text: str) -> list[tuple[int, int]]:
    """Start and end offsets of every comment of Datalog text, in order.

    The parser drops comments (``grammar.lark`` ignores ``COMMENT``); what keeps or reads
    them (``charter fmt``, ``charter: disable=`` directives) finds them again with the
    lexer's own terminals, so a comment mark inside a string is no comment.

    >>> text = "p('#no') // yes"
    >>> [text[s:e] for s, e in comment_ranges(text)]
    ['// yes']
    """
    return [m.span() for m in _strings_and_comments().finditer(text) if m.lastgroup == "comment"]


def _cache_file() -> str | None:
    """Where Lark keeps the parse tables it built (45 ms a process otherwise, the first
    parse's cost): the user's own cache directory, never a shared one such as /tmp,
    since Lark reads the file back with pickle. Lark names the grammar's hash in the
    file's contents and rebuilds when it differs; None when there is no such directory
    (``CHARTER_PARSER_CACHE=0`` turns the cache off)."""
    if os.environ.get("CHARTER_PARSER_CACHE") == "0":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "charter")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    return os.path.join(folder, f"lark-{lark_version}-grammar.cache")


# ---------------------------------------------------------------- public API


def parse(text: str, file: str | None = None, *, origin: Origin | None = None) -> list[Rule]:
    """Parse a whole policy text: rules and facts, with optional ``.``/``;`` terminators.

    Args:
        text: the policy source.
        file: the file name shown in diagnostics and spans.
        origin: where ``text`` sits in a larger file (see :data:`Origin`), e.g. a YAML scalar.

    Returns:
        The statements in order; an empty list for a text of only comments.

    Raises:
        PolicyError: on any syntax error (code ``parse_error``, or ``positional_after_named``
            and ``modal_in_body``), with every diagnostic the text produced; and on text
            past the input limits of :mod:`charter.lang.limits`: ``invalid_unicode`` (a
            lone surrogate, written or escaped), ``literal_too_large`` (an integer of too
            many digits), ``too_deep`` (an expression nested too deeply) and
            ``rule_too_large`` (too many body literals), each with its place.
    """
    tree = _parse_tree(text, "start", file, origin)
    diagnostics: list[Diagnostic] = []
    builder = _Builder(file, origin, diagnostics)
    rules = [builder.build(statement) for statement in tree.children if builder.fits(statement)]
    if diagnostics:
        raise PolicyError(diagnostics)
    return rules


def parse_sequence(text: str, file: str | None = None) -> list[Rule]:
    """Parse a sequence of statements (``simulate``'s input): the same as :func:`parse`."""
    return parse(text, file)


def parse_rule(text: str, file: str | None = None, *, origin: Origin | None = None) -> Rule:
    """Parse exactly one rule or fact, as Congress's rule API required.

    >>> str(parse_rule("p(x) :- q(x);"))
    'p(x) :- q(x)'

    Raises:
        PolicyError: code ``rule_syntax`` for an empty text, ``multiple_rules`` for several
            statements, or any error of :func:`parse`.
    """
    rules = parse(text, file, origin=origin)
    if not rules:
        line, col = origin(1, 1) if origin else (1, 1)
        message = "Empty string passed: the text holds no rule"
        raise PolicyError([Diagnostic("rule_syntax", message, Span(file, line, col))])
    if len(rules) > 1:
        listed = "; ".join(str(r) for r in rules)
        message = f"Received multiple rules ({len(rules)}), expected one: {listed}"
        raise PolicyError([Diagnostic("multiple_rules", message, rules[1].span)])
    return rules[0]


def parse_literal(text: str, file: str | None = None) -> Atom:
    """Parse a query pattern: one table atom such as ``error(x, 'ACTIVE')``.

    >>> str(parse_literal("nova:servers(x, 2='ACTIVE')"))
    'nova:servers(x, 2="ACTIVE")'
    """
    tree = _parse_tree(text, "query", file, None)
    diagnostics: list[Diagnostic] = []
    atom = _Builder(file, None, diagnostics).build(tree.children[0])
    if diagnostics:
        raise PolicyError(diagnostics)
    return atom


# ---------------------------------------------------------------- tree -> AST


class _Named(NamedTuple):
    key: str | int
    term: Term
    where: Token  # the column's name or number, for messages


class _AggregateRhs(NamedTuple):
    func: str
    target: Any
    body: tuple[Literal, ...]


class _Builder:
    """Turns the Lark tree of one statement into AST nodes, collecting diagnostics.

    Each tree node goes to the method named after its rule, with its converted children.
    Terms stay bare tokens in the tree (a NAME is a variable) and become nodes in
    :meth:`term`. Each ``_`` is numbered by its place among the statement's ``_``.
    """

    def __init__(self, file: str | None, origin: Origin | None, diagnostics: list[Diagnostic]):
        self.file = file
        self.origin = origin
        self.diagnostics = diagnostics
        self.anonymous: list[int] | None = None  # start positions of the statement's `_`
        self.statement: Tree | None = None
        self.limits = limits.current()
        self.max_depth = min(self.limits.max_depth, MAX_EXPRESSION_DEPTH)

    def fits(self, statement: Tree) -> bool:
        """Whether a statement's body literals (aggregate bodies too) are within the limit,
        counted on the parse tree before any node is built (a rule's checks, plans and
        their indexes all grow with its length)."""
        count = _body_literals(statement)
        if count <= self.limits.max_rule_literals:
            return True
        message = (
            f"rule has {count} body literals, over the limit of "
            f"{self.limits.max_rule_literals} (limits.max_rule_literals); split it into "
            "smaller rules joined by intermediate tables"
        )
        self.error("rule_too_large", message, statement.meta)
        return False

    def build(self, tree: Tree) -> Any:
        self.statement, self.anonymous = tree, None
        try:
            return self.node(tree, 0)
        except _TooDeep as exc:
            message = (
                f"expression nested deeper than {self.max_depth} levels "
                "(limits.max_depth: each operator, unary minus, aggregate and pair of "
                "parentheses not around an operator is one); bind parts of it to variables "
                "first"
            )
            self.error("too_deep", message, exc.meta)
        except RecursionError:  # pragma: no cover - the depth bound comes first
            message = "the statement is nested too deeply to parse"
            self.error("too_deep", message, tree.meta)
        return None

    def node(self, tree: Tree, depth: int) -> Any:
        """Build a node from its children, top down, counting the expression nesting on the
        way so that no deeper tree is ever built (every later walker of an expression, from
        ``str()`` to the planner, recurses)."""
        if tree.data in _NESTING and not _wraps_operator(tree):
            depth += 1
            if depth > self.max_depth:
                raise _TooDeep(tree.meta)
        children = [self.node(c, depth) if isinstance(c, Tree) else c for c in tree.children]
        return getattr(self, tree.data)(tree.meta, children)

    def place(self, token: Token, offset: int) -> Span:
        """The span of the character at ``offset`` within a token (an escape in a string)."""
        before = token.value[:offset]
        newlines = before.count("\n")
        line = token.line + newlines
        col = token.column + offset if not newlines else offset - before.rfind("\n")
        if self.origin is not None:
            line, col = self.origin(line, col)
        return Span(self.file, line, col)

    def span(self, node: Any) -> Span:
        """The span of a Lark meta or token, or the span of an AST node."""
        if not hasattr(node, "line"):
            return node.span
        if self.origin is None:
            return Span(self.file, node.line, node.column, node.end_line, node.end_column)
        line, col = self.origin(node.line, node.column)
        end_line, end_col = self.origin(node.end_line, node.end_column)
        return Span(self.file, line, col, end_line, end_col)

    def error(self, code: str, message: str, node: Any) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.span(node)))

    # statements

    def rule(self, meta, children) -> Rule:
        heads, _if, body = children
        return Rule(heads, body, self.span(meta))

    def fact(self, meta, children) -> Rule:
        return Rule((children[0],), (), self.span(meta))

    def heads(self, meta, children) -> tuple[Head, ...]:
        return tuple(children)

    def query(self, meta, children) -> Atom:
        return children[0]

    def modal(self, meta, children) -> Modal:
        kind, atom = children
        if kind.value not in MODALS:
            message = f"unknown modal '{kind.value}': expected execute, insert or delete"
            self.error("parse_error", message, kind)
        return Modal(kind.value, atom, self.span(meta))

    # literals

    def body(self, meta, children) -> tuple[Literal, ...]:
        return tuple(self.body_literal(lit) for lit in children)

    def body_literal(self, lit: Any) -> Any:
        if isinstance(lit, Modal):
            self.error("modal_in_body", f"Modals not allowed in the rule body: {lit}", lit)
        elif isinstance(lit, Atom):
            return self.builtin(lit)
        elif isinstance(lit, Negation):
            if isinstance(lit.atom, Modal):
                message = f"Modals not allowed in the rule body: not {lit.atom}"
                self.error("modal_in_body", message, lit.atom)
            elif isinstance(lit.atom, Atom):
                return Negation(self.builtin(lit.atom), lit.span)
        return lit

    def builtin(self, atom: Atom) -> Atom | BuiltinCall:
        """A body atom naming a builtin (bare or as ``builtin:name``) becomes a call."""
        explicit = atom.theory == BUILTIN_THEORY
        if not explicit and (atom.theory is not None or atom.table not in BUILTINS):
            return atom
        if not explicit and atom.update:
            return atom  # an update table that happens to share a builtin's name
        if atom.update:
            self.error("parse_error", f"builtin {atom.table} cannot be an update table", atom)
        if atom.named:
            message = f"builtin {atom.table} takes positional arguments only, not column names"
            self.error("parse_error", message, atom)
        return BuiltinCall(atom.table, atom.args, atom.span, bare=not explicit)

    def negation(self, meta, children) -> Negation:
        return Negation(children[1], self.span(meta))

    def atom(self, meta, children) -> Atom:
        relation: Token = children[0]
        name, update = relation.value, None
        if relation.type == "UPDATE_NAME":
            name, update = name[:-1], name[-1]
        theory, sep, table = name.partition(":")
        if not sep:
            theory, table = None, name
        args: list[Term] = []
        named: list[tuple[str | int, Term]] = []
        misplaced: list[Term] = []
        for item in children[1:]:
            if isinstance(item, _Named):
                named.append((item.key, item.term))
            elif named:
                misplaced.append(self.term(item))
            else:
                args.append(self.term(item))
        atom = Atom(table, tuple(args), theory, tuple(named), update, self.span(meta))
        for term in misplaced:
            message = (
                f"Atom {atom.qualified} has a positional parameter after a reference parameter"
            )
            self.error("positional_after_named", message, term)
        self.check_named(atom, [c for c in children[1:] if isinstance(c, _Named)])
        return atom

    def check_named(self, atom: Atom, named: list[_Named]) -> None:
        """A column given twice, by name or by number, or by number and by position, is an
        error with or without a schema, as Congress's parser found it
        (``congress/datalog/compile.py``, ``create_atom_dual_arg_list``: "In atom {} two
        values for column name {} were provided"); with a schema, a name and a number of
        the same column are found when the columns are resolved."""
        first: dict[str | int, _Named] = {}
        for item in named:
            key = item.key
            if isinstance(key, int) and key < len(atom.args):
                message = (
                    f"in {atom} column {key} is given twice: by position "
                    f"({atom.args[key]}) and as {key}={item.term}; give each column once"
                )
                self.error("duplicate_column", message, item.where)
            elif key in first:
                message = (
                    f"in {atom} column {key} is given twice: {key}={first[key].term} and "
                    f"{key}={item.term}; give each column once"
                )
                self.error("duplicate_column", message, item.where)
            else:
                first[key] = item

    def named(self, meta, children) -> _Named:
        key, _eq, term = children
        value = self.integer(key) if key.type == "INT" else key.value
        return _Named(value, self.term(term), key)

    # terms and expressions

    def term(self, item: Any) -> Any:
        """A bare token as a Variable or Constant; an already built node as itself."""
        if not isinstance(item, Token):
            return item
        kind = item.type
        if kind == "NAME":
            name = item.value
            if name == "_":
                name = f"_#{self.anonymous_index(item)}"
            return Variable(name, self.span(item))
        if kind == "STRING":
            try:
                value = _decode_string(item.value)
            except _BadEscape as exc:
                shown = _shorten(item.value)
                message = f"invalid escape in string {shown}: {exc.reason}"
                if exc.code == "invalid_unicode":
                    message = f"string {shown} {exc.reason}"
                span = self.place(item, exc.offset)
                self.diagnostics.append(Diagnostic(exc.code, message, span))
                value = ""
            return Constant(value, self.span(item))
        return Constant(self.number(item), self.span(item))

    def anonymous_index(self, token: Token) -> int:
        """How many ``_`` of the statement come before this one (found on first use)."""
        if self.anonymous is None:
            found = [
                child.start_pos
                for tree in self.statement.iter_subtrees()
                for i, child in enumerate(tree.children)
                if isinstance(child, Token) and child.type == "NAME" and child.value == "_"
                if i > 0 or tree.data not in ("atom", "named", "modal")  # a name, not a term
            ]
            self.anonymous = sorted(found)
        return bisect.bisect_left(self.anonymous, token.start_pos)

    def integer(self, token: Token) -> int:
        """An INT token's value, refused past ``limits.max_int_digits`` before ``int()``
        (Python raises on over 4,300 digits, and takes quadratic time below that)."""
        try:
            limits.check_int_text(token.value)
        except limits.InputError as exc:
            self.error(exc.code, exc.message, token)
            return 0
        return _int(token.value)

    def number(self, token: Token) -> int | float:
        if token.type == "INT":
            return self.integer(token)
        value = float(token.value)  # linear in the digits: no limit needed
        if value in (float("inf"), float("-inf")):
            message = f"number {_shorten(token.value)} is too large for a float"
            self.error("parse_error", message, token)
            return 0.0
        return value

    def negative(self, meta, children) -> Constant:
        return Constant(-self.number(children[1]), self.span(meta))

    def neg(self, meta, children) -> Constant | BinOp:
        expr = self.term(children[1])
        if isinstance(expr, Constant) and isinstance(expr.value, int | float):
            return Constant(-expr.value, self.span(meta))
        return BinOp("-", Constant(0), expr, self.span(meta))

    def paren(self, meta, children) -> Any:
        return children[1]

    def binop(self, meta, children) -> BinOp:
        left, op, right = children
        return BinOp(op.value, self.term(left), self.term(right), self.span(meta))

    def comparison(self, meta, children) -> Comparison | Aggregate:
        left, op, right = self.term(children[0]), children[1], self.term(children[2])
        if not isinstance(right, _AggregateRhs):
            return Comparison(op.value, left, right, self.span(meta))
        if op.value != "=" or not isinstance(left, Variable):
            message = (
                f"an aggregate must be assigned to a variable: write "
                f"'n = {right.func} ... : {{ ... }}', not '{left} {op.value} {right.func}'"
            )
            self.error("parse_error", message, meta)
            left = left if isinstance(left, Variable) else Variable("_#invalid")
        return Aggregate(left, right.func, right.target, right.body, self.span(meta))

    def aggregate(self, meta, children) -> _AggregateRhs:
        func = children[0].value
        target = self.term(children[1]) if len(children) == 3 else None
        if func == "count" and target is not None:
            message = "count takes no target expression: write 'n = count : { ... }'"
            self.error("parse_error", message, target)
        elif func != "count" and target is None:
            message = f"{func} needs a target expression: write 'v = {func} x : {{ ... }}'"
            self.error("parse_error", message, meta)
        return _AggregateRhs(func, target, children[-1])


# ---------------------------------------------------------------- tokens

_NESTING = frozenset({"binop", "neg", "paren", "aggregate"})
"""Tree nodes that nest an expression one level deeper (``limits.max_depth``)."""
_OPERATORS = frozenset({"binop", "neg"})


def _wraps_operator(tree: Tree) -> bool:
    """Parentheses around an operator: no level of their own, since ``str()`` prints such
    a pair around every nested operator (``(x + 1) * 2``) and the printed rule must parse
    again; a pair around a name, a number or other parentheses is a level."""
    if tree.data != "paren":
        return False
    inner = tree.children[1]
    return isinstance(inner, Tree) and inner.data in _OPERATORS


class _TooDeep(Exception):
    def __init__(self, meta: Any):
        self.meta = meta


def _body_literals(statement: Tree) -> int:
    """Body literals of a statement's tree, aggregate bodies included (no recursion)."""
    count = 0
    stack = [statement.children[-1]] if statement.data == "rule" else []
    while stack:
        body = stack.pop()
        count += len(body.children)
        for literal in body.children:
            if isinstance(literal, Tree) and literal.data == "comparison":
                right = literal.children[-1]
                if isinstance(right, Tree) and right.data == "aggregate":
                    stack.append(right.children[-1])
    return count


def _int(text: str) -> int:
    if text[:2].lower() in ("0x", "0o", "0b"):
        return int(text, 0)
    return int(text, 10)


class _BadEscape(Exception):
    """An escape that makes no character: ``code``, ``reason`` and its offset in the token."""

    def __init__(self, code: str, reason: str, offset: int):
        self.code = code
        self.reason = reason
        self.offset = offset


_SIMPLE_ESCAPES = {
    "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
    "t": "\t", "v": "\v", "\n": "", "\r": "",  # a backslash before a line break joins lines
}
_HEX_ESCAPES = {"x": re.compile(r"[0-9a-fA-F]{2}"), "u": re.compile(r"[0-9a-fA-F]{4}"),
                "U": re.compile(r"[0-9a-fA-F]{8}")}
_OCTAL = re.compile(r"[0-7]{1,3}")
_NAMED = re.compile(r"\{([^}]*)\}")
_HIGH, _LOW = range(0xD800, 0xDC00), range(0xDC00, 0xE000)


def _decode_string(text: str) -> str:
    """The value of a Python-style string token: escapes processed unless raw; ``b''`` is str.

    Escapes are Python's (``\\n``, ``\\x41``, ``\\u00e9``, ``\\U0001F600``, ``\\N{BULLET}``,
    octal; an unknown one such as ``\\d`` keeps its backslash). As in JSON, an escaped
    UTF-16 surrogate pair (``\\ud83d\\ude00``) is the one character it denotes; a lone
    surrogate is no character and is refused (``invalid_unicode``).

    >>> _decode_string(r'"\\ud83d\\ude00 \\x41"') == "\\U0001F600 A"
    True

    Raises:
        _BadEscape: an escape that makes no character, with its offset in ``text``.
    """
    quote = min(i for i in (text.find("'"), text.find('"')) if i >= 0)
    prefix, literal = text[:quote].lower(), text[quote:]
    width = 3 if literal[:3] in ('"""', "'''") else 1
    inner = literal[width:-width]
    if "r" in prefix or "\\" not in inner:
        return inner
    base = quote + width  # where ``inner`` starts in ``text``
    out: list[str] = []
    high: tuple[int, int] | None = None  # a high surrogate escape just read: code, offset
    i = 0
    while True:
        j = inner.find("\\", i)
        if high is not None and j != i:  # text or the end next: the high half is alone
            raise _BadEscape("invalid_unicode", _lone(high[0]), base + high[1])
        if j < 0:
            out.append(inner[i:])
            return "".join(out)
        out.append(inner[i:j])
        code, i = _escape(inner, j, base)
        if code is None:
            continue
        if high is not None:
            if code not in _LOW:
                raise _BadEscape("invalid_unicode", _lone(high[0]), base + high[1])
            out.append(chr(0x10000 + ((high[0] - 0xD800) << 10) + (code - 0xDC00)))
            high = None
        elif code in _HIGH:
            high = (code, j)
        elif code in _LOW:
            raise _BadEscape("invalid_unicode", _lone(code), base + j)
        else:
            out.append(chr(code))


def _escape(inner: str, j: int, base: int) -> tuple[int | None, int]:
    """The escape at ``inner[j]`` (a backslash): the code point it makes (None when it
    makes text already appended) and where the text after it starts."""
    kind = inner[j + 1]  # the lexer never ends a string on a backslash
    simple = _SIMPLE_ESCAPES.get(kind)
    if simple is not None:
        end = j + 3 if inner.startswith("\r\n", j + 1) else j + 2
        return (ord(simple) if simple else None), end
    if kind in _HEX_ESCAPES:
        digits = _HEX_ESCAPES[kind].match(inner, j + 2)
        if digits is None:
            size = {"x": 2, "u": 4, "U": 8}[kind]
            raise _BadEscape("parse_error", f"truncated \\{kind}{'X' * size} escape", base + j)
        code = int(digits.group(), 16)
        if code > 0x10FFFF:
            raise _BadEscape("parse_error", "illegal Unicode character", base + j)
        return code, digits.end()
    octal = _OCTAL.match(inner, j + 1)
    if octal is not None:
        return int(octal.group(), 8), octal.end()
    if kind == "N":
        named = _NAMED.match(inner, j + 2)
        if named is None:
            raise _BadEscape("parse_error", "malformed \\N character escape", base + j)
        try:
            char = unicodedata.lookup(named.group(1))
        except KeyError:
            char = ""
        if len(char) != 1:  # a named sequence is several characters: no escape
            raise _BadEscape("parse_error", "unknown Unicode character name", base + j)
        return ord(char), named.end()
    return ord("\\"), j + 1  # an unknown escape keeps its backslash; the next char follows


def _lone(code: int) -> str:
    return (
        f"holds the escape \\u{code:04x}, half of a UTF-16 surrogate pair, which is not "
        "valid Unicode; write the character itself, or both halves of the pair "
        "(\\ud83d\\ude00 is U+1F600)"
    )


def _shorten(text: str, limit: int = 40) -> str:
    """A token as a message shows it: on one line, at most ``limit`` characters."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.replace("\r", "\\r").replace("\n", "\\n")


# ---------------------------------------------------------------- errors


def _parse_tree(text: str, start: str, file: str | None, origin: Origin | None) -> Tree:
    """Run Lark; turn every Lark error into a PolicyError with a message in words.

    Text that is not valid Unicode (a lone surrogate, which a Python caller or a JSON
    ``\\ud800`` can hand over) is refused at its place before Lark sees it.
    """
    try:
        limits.check_text(text, file or "<string>")
    except limits.InputError as exc:
        line, col = exc.line or 1, exc.col or 1
        if origin is not None:
            line, col = origin(line, col)
        raise PolicyError([Diagnostic(exc.code, exc.message, Span(file, line, col))]) from None
    try:
        return _lark().parse(text, start=start)
    except UnexpectedInput as exc:
        line, col, message = _describe_error(exc, text)
    if origin is not None:
        line, col = origin(line, col)
    raise PolicyError([Diagnostic("parse_error", message, Span(file, line, col))]) from None


def _describe_error(exc: UnexpectedInput, text: str) -> tuple[int, int, str]:
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            line, col = token.end_line or exc.line, token.end_column or exc.column
            if line in (None, -1):
                line, col = 1, 1
        else:
            line, col = token.line, token.column
        rest = text[token.start_pos :] if token.start_pos is not None else ""
        if token.type == "SLASH" and rest.startswith("/*"):
            return line, col, "unterminated comment: '/*' without a closing '*/'"
        expected = exc.expected
        if exc.interactive_parser is not None:
            expected = exc.interactive_parser.accepts()  # exact, unlike merged LALR lookaheads
        return line, col, f"unexpected {_found(token)}: expected {_expected_phrase(expected)}"
    if isinstance(exc, UnexpectedCharacters):
        pos, col = exc.pos_in_stream, exc.column
        if text[pos : pos + 1] in ("'", '"'):
            if pos >= 2 and text[pos - 2 : pos] == text[pos] * 2:  # lexed as '' + unclosed '
                pos, col = pos - 2, col - 2
            return exc.line, col, f"unterminated string: {text[pos:].splitlines()[0][:30]}"
        rest = text[pos:]
        if rest.startswith("/*"):
            return exc.line, exc.column, "unterminated comment: '/*' without a closing '*/'"
        allowed = exc.allowed or set()
        if exc.interactive_parser is not None:
            allowed = exc.interactive_parser.accepts()
        message = f"unexpected character {exc.char!r}"
        if allowed:
            message += f": expected {_expected_phrase(allowed)}"
        return exc.line, exc.column, message
    return exc.line, exc.column, f"syntax error: {exc}"  # pragma: no cover (LALR: never)


_LITERAL_START = {"NOT", "NOT_UPPER", "BANG"}
_ATOM_START = {"NAME", "QNAME", "UPDATE_NAME"}
_TERM_VALUES = {"NAME", "STRING", "INT", "FLOAT"}
_TERM_START = _TERM_VALUES | {"MINUS"}
_AGGREGATES = {"COUNT", "SUM", "MIN", "MAX"}
_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "INT": "a number",
    "FLOAT": "a number",
    "$END": "end of input",
}


def _expected_phrase(expected: Iterable[str]) -> str:
    """Terminal names in words: 'a term (variable, string or number)', "',' or ')'"."""
    exp = set(expected) - {"WS", "COMMENT"}
    words: list[str] = []
    if exp & _LITERAL_START:
        words.append("a body literal (atom, negation or comparison)")
        exp -= _LITERAL_START | _ATOM_START | _TERM_START | {"LPAR"}
    elif exp & _AGGREGATES:
        words.append("an expression or an aggregate (count, sum, min or max)")
        exp -= _AGGREGATES | _TERM_START | {"LPAR"}
    elif exp.issuperset(_TERM_VALUES) and "LPAR" in exp:
        words.append("an expression (variable, string, number or '(')")
        exp -= _TERM_START | {"LPAR"}
    elif exp.issuperset(_TERM_VALUES):
        words.append("a term (variable, string or number)")
        exp -= _TERM_START
    if exp & _ATOM_START:
        words.append("a rule or fact" if "$END" in exp else "a table name")
        exp -= _ATOM_START
    end = "$END" in exp
    exp.discard("$END")
    if "_TERM" in exp:
        exp |= {"'.'", "';'"}
        exp.discard("_TERM")
    words += sorted({_terminal_words(name) for name in exp})
    if end:
        words.append("end of input")
    if len(words) <= 1:
        return words[0] if words else "something else"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _terminal_words(name: str) -> str:
    if name.startswith("'"):
        return name
    if name in _WORDS:
        return _WORDS[name]
    try:
        pattern = _lark().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if isinstance(pattern, PatternStr) else name


def _found(token: Token) -> str:
    if token.type == "$END":
        return "end of input"
    value = token.value if len(token.value) <= 30 else token.value[:27] + "..."
    if token.type == "NAME":
        return f"name '{value}'"
    if token.type in ("QNAME", "UPDATE_NAME"):
        return f"table name '{value}'"
    if token.type == "STRING":
        return f"string {value}"
    if token.type in ("INT", "FLOAT"):
        return f"number {value}"
    return f"'{value}'"
