"""What sits at the cursor: the table, builtin or column a hover asks about, and where a
completion is being typed.

A hover or a jump points at a name already written: the parsed rules' spans find the atom
whose name holds the cursor (in a library YAML file too, where the spans are the file's).
Where the text around the cursor did not parse, the name at the cursor counts when an
opening parenthesis follows it. A completion is typed into text that rarely parses: it is
read with a small scanner (names, strings, comments, brackets) from the start of the
statement to the cursor.

>>> text = "error(vm) :- nova:servers(id=vm, st"
>>> ctx = completion_context(text, len(text))
>>> ctx.prefix, ctx.atom, ctx.argument_start, sorted(ctx.named)
('st', 'nova:servers', True, ['id'])
>>> symbol_at(text, [], 0, 15)
Symbol(kind='table', name='nova:servers', start=13, end=25, column=None)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from charter.lang.ast import Atom, BuiltinCall, Rule
from charter.lang.builtins import BUILTINS
from charter.lang.parser import BUILTIN_THEORY
from charter.lsp.index import walk_atoms
from charter.lsp.positions import LineIndex

__all__ = ["CompletionContext", "Symbol", "completion_context", "symbol_at"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*"
NAME = re.compile(rf"{_NAME}(?::{_NAME})*[+-]?")
"""A table name as written: ``t``, ``policy:t``, ``nova:servers.addresses``, ``p+``."""
_STRING = (
    r"""(?i:rb|br|[rub])?(?:"{3}(?:[^"\\]|\\[\s\S]|"(?!""))*"{3}|'{3}(?:[^'\\]|\\[\s\S]"""
    r"""|'(?!''))*'{3}|"(?:[^"\\\n]|\\[\s\S])*"|'(?:[^'\\\n]|\\[\s\S])*')"""
)
_TOKEN = re.compile(
    rf"(?P<comment>//[^\n]*|#[^\n]*|/\*[\s\S]*?(?:\*/|\Z))"
    rf"|(?P<string>{_STRING})"
    rf"|(?P<name>{_NAME}(?::{_NAME})*)"
    rf"|(?P<ws>\s+)"
    rf"|(?P<punct>:-|[^\s])"
)
_PREFIX = re.compile(rf"(?:{_NAME}(?::(?:{_NAME})?)*)\Z")
_YAML_RULE = re.compile(r"^\s*(?:-\s*)?rule\s*:\s*[>|]?[-+]?\s*[\"']?")
_CLOSE = {")": "(", "]": "[", "}": "{"}
LOOK_BACK = 200
"""Lines read back to the start of a statement, at most."""


@dataclass(frozen=True, slots=True)
class Symbol:
    """A name at the cursor: a ``table`` (qualified as written), a ``builtin``, or a
    ``column`` named in the table atom ``name`` (``nova:servers(status=...)``).

    ``start``/``end`` are character offsets of the name in the text."""

    kind: str
    name: str
    start: int
    end: int
    column: str | None = None


def _name_at(text: str, offset: int) -> re.Match[str] | None:
    match = NAME.match(text, offset)
    return match if match and match.start() == offset else None


def _atom_symbol(
    atom: Atom | BuiltinCall, text: str, lines: LineIndex, cursor: int
) -> Symbol | None:
    if atom.span is None:
        return None
    start = lines.offset_of(atom.span.line, atom.span.col)
    match = _name_at(text, start)
    if match is None:
        return None
    if match.start() <= cursor <= match.end():
        builtin = isinstance(atom, BuiltinCall)
        return Symbol("builtin" if builtin else "table", match.group(), start, match.end())
    if isinstance(atom, Atom):
        for column, term in atom.named:
            span = getattr(term, "span", None)
            if not isinstance(column, str) or span is None:
                continue
            value = lines.offset_of(span.line, span.col)
            written = re.search(
                rf"(?<![\w.])({re.escape(column)})\s*=\s*\Z", text[max(0, value - 200) : value]
            )
            if written is None:
                continue
            begin = value - len(written.group(0))
            if begin <= cursor <= begin + len(column):
                return Symbol("column", match.group(), begin, begin + len(column), column)
    return None


def symbol_at(
    text: str,
    rules: Sequence[Rule],
    line: int,
    character: int,
    encoding: str = "utf-16",
    *,
    complete: bool = False,
) -> Symbol | None:
    """The table, builtin or column named at LSP position ``line``:``character``.

    ``rules`` are the text's parsed rules. Unless they are all of it (``complete``), a name
    no rule covers that is directly followed by ``(`` is taken as a table (or builtin) name.

    >>> symbol_at("p(x) :- q(x) // r(x)", [], 0, 16)
    Symbol(kind='table', name='r', start=16, end=17, column=None)
    >>> symbol_at("p(x) :- q(x) // r(x)", [], 0, 16, complete=True) is None
    True
    """
    lines = LineIndex(text)
    cursor = lines.offset(line, character, encoding)
    for atom in walk_atoms(rules):
        found = _atom_symbol(atom, text, lines, cursor)
        if found is not None:
            return found
    return None if complete else _lexical_symbol(text, cursor)


def _lexical_symbol(text: str, cursor: int) -> Symbol | None:
    begin = cursor
    while begin > 0 and (text[begin - 1].isalnum() or text[begin - 1] in "_.:"):
        begin -= 1
    for match in NAME.finditer(text, begin, min(len(text), cursor + 200)):
        if match.start() > cursor:
            return None
        if match.end() >= cursor:
            after = text[match.end() :].lstrip(" \t")
            if not after.startswith("("):
                return None
            name = match.group()
            bare = name.removeprefix(f"{BUILTIN_THEORY}:")
            kind = "builtin" if bare in BUILTINS and (bare != name or ":" not in name) else "table"
            return Symbol(kind, name, match.start(), match.end())
    return None


# ---------------------------------------------------------------- completion


@dataclass
class _Frame:
    bracket: str
    name: str | None
    named: set[str] = field(default_factory=set)
    positional: int = 0  # arguments given by position before the cursor
    naming: bool = False  # the argument being read names its column (``id=``, ``3=``)


@dataclass(frozen=True, slots=True)
class CompletionContext:
    """Where a completion is typed.

    ``prefix`` is the name being typed (``nova:se``, ``nova:``, or empty), starting at
    offset ``start``. ``atom`` is the table (or builtin) whose argument list holds the
    cursor, if any; ``argument_start`` whether the prefix starts an argument there (after
    ``(`` or ``,``), ``named`` the columns that atom already names (by name, or by number as ``"3"``) and ``positional`` how
    many arguments before the cursor it gives by position. ``quiet`` is true
    inside a comment or a string, where nothing is offered.
    """

    prefix: str
    start: int
    atom: str | None = None
    argument_start: bool = False
    named: frozenset[str] = frozenset()
    quiet: bool = False
    positional: int = 0


def _statement_start(text: str, cursor: int, library: bool) -> int:
    """The offset where the statement holding ``cursor`` starts: a line starting with a
    name (Datalog), or just past the ``rule:`` key and a quote or block indicator (library
    YAML); at most :data:`LOOK_BACK` lines back."""
    line_start = text.rfind("\n", 0, cursor) + 1
    for _ in range(LOOK_BACK):
        line_end = text.find("\n", line_start)
        line = text[line_start : len(text) if line_end < 0 else line_end]
        if library:
            found = _YAML_RULE.match(line)
            if found:
                return line_start + found.end()
        elif line[:1].isalpha() or line[:1] == "_":
            return line_start
        if line_start == 0:
            break
        line_start = text.rfind("\n", 0, line_start - 1) + 1
    return line_start


def completion_context(text: str, cursor: int, library: bool = False) -> CompletionContext:
    """Read the text before offset ``cursor``: what is typed and inside which atom.

    >>> completion_context("p(x) :- q(x), // nova:", 22).quiet
    True
    >>> ctx = completion_context("- rule: 'p(x) :- nova:", 22, library=True)
    >>> ctx.prefix, ctx.atom
    ('nova:', None)
    """
    found = _PREFIX.search(text, max(0, cursor - 400), cursor)
    prefix = found.group() if found else ""
    start = cursor - len(prefix)
    stack: list[_Frame] = []
    previous = ""  # the last significant token before the prefix
    quiet = False
    last_name: str | None = None
    pos = _statement_start(text, start, library)
    while pos < start:
        token = _TOKEN.match(text, pos)
        if token is None:  # cannot happen: punct matches any character
            break
        kind, value = token.lastgroup, token.group()
        if token.end() > start:
            quiet = kind in ("comment", "string")
            break
        pos = token.end()
        if kind == "ws":
            continue
        if kind == "comment":
            if token.end() == start and not value.startswith("/*"):
                quiet = True
            continue
        if kind == "punct" and value in "([{":
            stack.append(_Frame(value, last_name if value == "(" else None))
        elif kind == "punct" and value in _CLOSE:
            while stack and stack[-1].bracket != _CLOSE[value]:
                stack.pop()
            if stack:
                stack.pop()
        elif kind == "punct" and value in ".;":
            stack.clear()
        elif kind == "punct" and value == "=" and stack and (last_name or previous.isdigit()):
            stack[-1].naming = True
            stack[-1].named.add(last_name or previous)
        elif kind == "punct" and value == "," and stack:
            stack[-1].positional += not stack[-1].naming
            stack[-1].naming = False
        elif kind == "punct" and value in "\"'" and not library:
            # an unclosed Datalog string runs to the end of its line
            quiet = quiet or "\n" not in text[token.end() : start]
        last_name = value if kind == "name" else None
        previous = value
    frame = stack[-1] if stack and stack[-1].bracket == "(" else None
    if frame is None or frame.name is None:
        return CompletionContext(prefix, start, quiet=quiet)
    return CompletionContext(
        prefix,
        start,
        frame.name,
        previous in ("(", ","),
        frozenset(frame.named),
        quiet,
        frame.positional,
    )
