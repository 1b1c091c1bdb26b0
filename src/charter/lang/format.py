"""``charter fmt``'s printer: one canonical layout for Datalog text, comments kept in place.

The layout is printed from the syntax tree, so it depends only on what the text means and
on where its comments and blank lines are, never on how it was spaced:

- spaces after commas and around ``:-``, operators and comparisons; none inside
  ``col=x``, ``p(...)``, ``execute[...]``; ``not`` for ``NOT`` and ``!``; ``p`` for ``p()``;
  no ``;``/``.``;
- a rule that fits in ``width`` columns stays on one line, and consecutive one-line rules
  (no blank line or comment between them) align their ``:-``; a longer rule puts each body
  literal on its own line, indented by four spaces, and an aggregate too long for its line
  puts its own body one literal per line between ``{`` and ``}``;
- strings take double quotes unless that needs more escapes (``'say "hi"'`` stays); every
  literal is otherwise kept as written (``0x1F``, ``1e3``, escapes, ``builtin:lt`` or bare
  ``lt``), but a string written over several lines is printed from its value on one;
  arithmetic has the parentheses its meaning needs and no others;
- every comment stays with the code it was written beside: before a rule or a literal on
  its own line, or at the end of a line; a comment written inside a literal moves to the end
  of that literal's line (onto a line of its own when a ``//`` comment is already there).
  Blank lines between statements are kept (at most one).

The result is checked before it is returned: it must parse to the same rules, with the same
comments in the same order; otherwise :class:`FormatError` is raised and nothing changes.

>>> print(format_datalog("p(x):-q(x,'a'),NOT r(x) ; // why"), end="")
p(x) :- q(x, "a"), not r(x)  // why
>>> print(format_datalog("p(x) :- q(x)\\nlonger(x, y) :- q(x), r(y)"), end="")
p(x)         :- q(x)
longer(x, y) :- q(x), r(y)
>>> print(format_datalog("p(x) :- q(x), r(x)", width=12), end="")
p(x) :-
    q(x),
    r(x)
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

import yaml

from charter.lang.ast import (
    Aggregate,
    Atom,
    BinOp,
    BuiltinCall,
    Comparison,
    Constant,
    Expr,
    Head,
    Literal,
    Modal,
    Negation,
    Rule,
    Span,
    Variable,
    format_value,
)
from charter.lang.errors import CharterError
from charter.lang.library import LibraryPolicy, load_library_policy
from charter.lang.parser import comment_ranges, parse
from charter.lang.yaml_scalars import ScalarRewrite, rule_scalars

__all__ = [
    "DEFAULT_WIDTH",
    "FormatError",
    "comment_ranges",
    "comments",
    "format_datalog",
    "format_library_yaml",
]

DEFAULT_WIDTH = 88
INDENT = 4


class FormatError(CharterError):
    """The printer made text that means something else: a bug in Charter, never the input's.

    Raised instead of returning such text, so no file is ever rewritten with it.
    """


def format_datalog(text: str, file: str | None = None, width: int = DEFAULT_WIDTH) -> str:
    """The canonical layout of a Datalog text (see the module's docstring).

    Args:
        text: the policy source.
        file: the file name diagnostics name.
        width: the column a one-line rule may reach; past it, one body literal per line.

    Returns:
        The formatted text, ending in one line break (an empty text stays empty). A text
        written with ``\\r\\n`` line breaks keeps them.

    Raises:
        PolicyError: the text does not parse (every diagnostic of :func:`parse`, located).
        FormatError: the printed text would not parse back to the same rules and comments.
    """
    rules = parse(text, file)
    source = _Source(text)
    out = _Printer(source, width).policy(rules)
    _verify(text, out, rules, file)
    return out


def format_library_yaml(text: str, file: str | None = None, width: int = DEFAULT_WIDTH) -> str:
    """A Congress library YAML file with each rule text in the canonical layout.

    Only the scalars holding rule texts change, and only those not already formatted; every
    other byte of the file stays as it was. A rule text keeps its YAML style where that style
    can hold the formatted text (a plain scalar, quotes, ``>`` or ``|``); a rule that becomes
    several lines is written as a ``>`` block (``|`` when folding would join its lines). The
    width counts from the column the rule's text starts at.

    >>> print(format_library_yaml("name: p\\nrules:\\n  - rule: p(x):-q( x )\\n"), end="")
    name: p
    rules:
      - rule: p(x) :- q(x)

    Raises:
        PolicyError: the file does not load as a library policy (as
            :func:`charter.lang.library.load_library_policy` reports it, located in the file).
        FormatError: as :func:`format_datalog`.
    """
    policy = load_library_policy(text, file)
    newline = "\r\n" if "\r\n" in text else "\n"
    edits: list[tuple[int, int, str]] = []
    done: dict[int, str] = {}  # id of a scalar node -> its formatted text
    texts: list[str] = []
    for key, node, flow in rule_scalars(yaml.compose(text, Loader=yaml.SafeLoader)):
        if id(node) not in done:  # a node reached again through an alias is done
            indent = key.start_mark.column + 2
            try:
                new = format_datalog(node.value, width=max(width - indent, 1)).rstrip("\n")
            except FormatError as exc:
                where = f"{file or '<string>'}:{node.start_mark.line + 1}"
                raise FormatError(f"{where}: {str(exc).removeprefix('<string>: ')}") from None
            done[id(node)] = new
            if node.value.rstrip("\n") != new:
                edits.append(ScalarRewrite(text, key, node, flow, newline).edit(new))
        texts.append(done[id(node)])
    out = text
    for start, end, replacement in sorted(edits, reverse=True):
        out = out[:start] + replacement + out[end:]
    _verify_library(out, file, policy, texts)
    return out


# ---------------------------------------------------------------- source and comments


def _comment_text(raw: str) -> str:
    """A comment as printed: without trailing blanks, its inner line breaks as ``\\n``."""
    return raw.rstrip().replace("\r\n", "\n")


def comments(text: str) -> list[str]:
    """The comments of a Datalog text that parses, as the printer writes them."""
    return [_comment_text(text[s:e]) for s, e in comment_ranges(text)]


class _Source:
    """A text with its line starts, to turn spans into offsets and offsets into lines."""

    def __init__(self, text: str):
        self.text = text
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def offset(self, line: int, col: int) -> int:
        return self.line_starts[line - 1] + col - 1

    def range(self, span: Span | None) -> tuple[int, int] | None:
        if span is None or span.end_line is None or span.end_col is None:
            return None
        return self.offset(span.line, span.col), self.offset(span.end_line, span.end_col)

    def written(self, span: Span | None) -> str | None:
        where = self.range(span)
        return None if where is None else self.text[where[0] : where[1]]

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset) - 1

    def blank_before(self, offset: int) -> bool:
        """Whether a blank line separates ``offset`` from the text before it."""
        text, start = self.text, offset
        while start and text[start - 1].isspace():
            start -= 1
        return text.count("\n", start, offset) >= 2


@dataclass(eq=False)
class _Group:
    """Comments written one after the other on a line: printed together, as one."""

    start: int
    end: int
    text: str
    after_code: bool  # code precedes it on its line (a comment at a line's end)
    ends_line: bool  # it ends in a `//` or `#` comment: nothing more fits on its line


@dataclass(eq=False)
class _Item:
    """A statement, a rule's heads, or a body literal, with the comments placed around it.

    A statement's ``children`` are its heads then its body literals; an aggregate's are its
    body literals. ``open`` holds comments right after an aggregate's ``{`` (before its first
    literal, on the same line); ``closing`` those on their own lines before its ``}``.
    """

    start: int
    end: int
    node: object
    children: list[_Item] | None = None
    statement: bool = False
    leading: list[_Group] = field(default_factory=list)
    trailing: list[_Group] = field(default_factory=list)
    open: list[_Group] = field(default_factory=list)
    closing: list[_Group] = field(default_factory=list)

    def commented_inside(self) -> bool:
        if self.open or self.closing:
            return True
        return any(c.leading or c.trailing or c.commented_inside() for c in self.children or ())


def _groups(source: _Source) -> list[_Group]:
    text = source.text
    groups: list[_Group] = []
    for start, end in comment_ranges(text):
        raw = _comment_text(text[start:end])
        last = groups[-1] if groups else None
        if (
            last is not None
            and "\n" not in text[last.end : start]
            and not text[last.end : start].strip()
        ):
            last.end, last.text, last.ends_line = end, f"{last.text} {raw}", _line_comment(raw)
            continue
        line_start = source.line_starts[source.line(start)]
        after_code = bool(text[line_start:start].strip())
        groups.append(_Group(start, end, raw, after_code, _line_comment(raw)))
    return groups


def _line_comment(comment: str) -> bool:
    return comment.startswith(("//", "#"))


# ---------------------------------------------------------------- placing comments


class _Placer:
    """Gives each comment group a place: before, after or inside one item."""

    def __init__(self, source: _Source):
        self.source = source
        self.starts: dict[int, list[int]] = {}  # id of a list of items -> where each starts

    def items(self, rules: list[Rule]) -> list[_Item]:
        return [self.statement(rule) for rule in rules]

    def statement(self, rule: Rule) -> _Item:
        first, last = self.range(rule.heads[0].span), self.range(rule.heads[-1].span)
        heads = _Item(first[0], last[1], rule.heads)
        children = [heads, *(self.literal(lit) for lit in rule.body)]
        start, end = self.range(rule.span)
        return _Item(start, end, rule, children, statement=True)

    def literal(self, literal: Literal) -> _Item:
        start, end = self.range(literal.span)
        children = None
        if isinstance(literal, Aggregate):
            children = [self.literal(lit) for lit in literal.body]
        return _Item(start, end, literal, children)

    def range(self, span: Span | None) -> tuple[int, int]:
        where = self.source.range(span)
        if where is None:  # pragma: no cover - the parser gives every node its span
            raise FormatError(f"no source position for a node at {span}")
        return where

    def place(self, group: _Group, items: list[_Item], container: _Item) -> None:
        starts = self.starts.get(id(items))
        if starts is None:
            starts = self.starts[id(items)] = [it.start for it in items]
        index = bisect.bisect_right(starts, group.start) - 1
        here = items[index] if index >= 0 else None
        if here is not None and group.start < here.end:  # inside this item
            if here.children is not None:
                self.place(group, here.children, here)
            else:
                here.trailing.append(group)
            return
        if group.after_code:
            line = self.source.line(group.start)
            if here is not None and self.source.line(here.end - 1) == line:
                target = here.children[-1] if here.statement and here.children else here
                target.trailing.append(group)
                return
            if here is None and not container.statement:
                container.open.append(group)
                return
        following = items[index + 1] if index + 1 < len(items) else None
        if following is not None:
            following.leading.append(group)
        else:
            container.closing.append(group)

    def settle(self, items: list[_Item], container: _Item, after: list[_Group] | None = None):
        """Moves what a line comment would swallow onto lines of its own.

        A comment placed after ``// ...`` on an item's line (it was written inside the item,
        on a later line) cannot stay on that line: it goes on its own line after the item,
        where it is found again when the output is formatted again (before the next item,
        or before an aggregate's ``}``; after a statement, at the top level). ``after`` is
        where comments after the last item go: ``container.closing`` unless given.
        """
        after = container.closing if after is None else after
        for index, item in enumerate(items):
            following = items[index + 1].leading if index + 1 < len(items) else after
            if item.children is not None:
                sink = following if item.statement else item.closing
                item.open, spilled = _split(item.open)
                (item.children[0].leading if item.children else sink)[0:0] = spilled
                self.settle(item.children, item, sink)
            item.trailing, spilled = _split(item.trailing)
            following[0:0] = spilled


def _split(groups: list[_Group]) -> tuple[list[_Group], list[_Group]]:
    """The groups that fit on one line, and those after the first line comment."""
    for index, group in enumerate(groups):
        if group.ends_line:
            return groups[: index + 1], groups[index + 1 :]
    return groups, []


# ---------------------------------------------------------------- printing


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "%": 2}
_NUMBER = re.compile(
    r"-?(?:(?:[0-9]+\.[0-9]+|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+"
    r"|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[0-9]+)"
)
_STRING_START = re.compile(r"([A-Za-z]*)('''|\"\"\"|'|\")")


class _Printer:
    def __init__(self, source: _Source, width: int):
        self.source = source
        self.width = width

    # the file

    def policy(self, rules: list[Rule]) -> str:
        source = self.source
        top = _Item(0, len(source.text), None, statement=False)
        placer = _Placer(source)
        statements = placer.items(rules)
        for group in _groups(source):
            placer.place(group, statements, top)
        placer.settle(statements, top)
        entries: list[_Group | _Item] = [*top.open]
        for item in statements:
            entries += [*item.leading, item]
        entries += top.closing
        one_line = self.aligned(entries)
        lines: list[str] = []
        for position, entry in enumerate(entries):
            if position and source.blank_before(entry.start):
                lines.append("")
            if isinstance(entry, _Group):
                lines.append(entry.text)
            else:
                lines += self.statement(entry, one_line.get(id(entry)))
        if not lines:
            return ""
        newline = "\r\n" if "\r\n" in source.text else "\n"
        return "\n".join(lines).replace("\n", newline) + newline

    def aligned(self, entries: list[_Group | _Item]) -> dict[int, int]:
        """For each rule printed on one line, the column its ``:-`` is padded to.

        Runs of one-line rules with no blank line or comment between them share a column,
        as long as each still fits: a rule that would not starts the next run.
        """
        columns: dict[int, int] = {}
        run: list[tuple[_Item, int, int]] = []  # item, head width, body width

        def close() -> None:
            column = max((h for _, h, _ in run), default=0)
            for member, _, _ in run:
                columns[id(member)] = column
            run.clear()

        for position, entry in enumerate(entries):
            parts = self.one_line_parts(entry) if isinstance(entry, _Item) else None
            separate = position and self.source.blank_before(entry.start)
            if parts is None or separate or not run:
                close()
            if parts is None:
                continue
            head, body = len(parts[0]), len(parts[1])
            column = max([head, *(h for _, h, _ in run)])
            if any(column + 4 + b > self.width for _, _, b in [*run, (entry, head, body)]):
                close()
            run.append((entry, head, body))
        close()
        return columns

    def one_line_parts(self, item: _Item) -> tuple[str, str] | None:
        """A rule's heads and body on one line, if it may be printed so (fits, no comment
        inside it but at its end)."""
        rule = item.node
        heads, *body = item.children
        if not body or heads.trailing or item.open or item.closing:
            return None
        for position, child in enumerate(body):
            if child.leading or child.commented_inside():
                return None
            if child.trailing and position < len(body) - 1:
                return None
        head = self.heads(rule.heads)
        text = ", ".join(self.literal(lit) for lit in rule.body)
        if len(head) + 4 + len(text) > self.width:
            return None
        return head, text

    def statement(self, item: _Item, column: int | None) -> list[str]:
        heads, *body = item.children
        head = self.heads(item.node.heads)
        if not body:
            return [head + _trail(heads.trailing)]
        if column is not None:
            text = ", ".join(self.literal(b.node) for b in body)
            return [f"{head.ljust(column)} :- {text}{_trail(body[-1].trailing)}"]
        lines = [f"{head} :-{_trail(heads.trailing)}"]
        lines += self.block(body, INDENT)
        lines += [" " * INDENT + g.text for g in item.closing]
        return lines

    def block(self, items: list[_Item], indent: int) -> list[str]:
        """Literals one per line at ``indent``, each with its comments."""
        lines: list[str] = []
        pad = " " * indent
        for position, item in enumerate(items):
            comma = "," if position < len(items) - 1 else ""
            lines += [pad + g.text for g in item.leading]
            literal = item.node
            text = self.literal(literal)
            broken = isinstance(literal, Aggregate) and (
                item.commented_inside() or indent + len(text) + len(comma) > self.width
            )
            if not broken:
                lines.append(pad + text + comma + _trail(item.trailing))
                continue
            lines.append(pad + self.aggregate_head(literal) + " {" + _trail(item.open))
            lines += self.block(item.children, indent + INDENT)
            lines += [pad + " " * INDENT + g.text for g in item.closing]
            lines.append(pad + "}" + comma + _trail(item.trailing))
        return lines

    # one line

    def heads(self, heads: tuple[Head, ...]) -> str:
        return ", ".join(self.head(h) for h in heads)

    def head(self, head: Head) -> str:
        if isinstance(head, Modal):
            return f"{head.kind}[{self.atom(head.atom)}]"
        return self.atom(head)

    def literal(self, literal: Literal) -> str:
        if isinstance(literal, Atom):
            return self.atom(literal)
        if isinstance(literal, BuiltinCall):
            return self.builtin(literal)
        if isinstance(literal, Negation):
            return "not " + self.literal(literal.atom)
        if isinstance(literal, Comparison):
            return f"{self.expr(literal.left)} {literal.op} {self.expr(literal.right)}"
        if isinstance(literal, Aggregate):
            body = ", ".join(self.literal(lit) for lit in literal.body)
            return f"{self.aggregate_head(literal)} {{ {body} }}"
        raise TypeError(literal)  # pragma: no cover

    def aggregate_head(self, aggregate: Aggregate) -> str:
        target = "" if aggregate.target is None else " " + self.expr(aggregate.target)
        return f"{self.term(aggregate.result)} = {aggregate.func}{target} :"

    def atom(self, atom: Atom) -> str:
        args = [self.term(t) for t in atom.args]
        args += [f"{key}={self.term(t)}" for key, t in atom.named]
        if not args and not atom.update:  # `p`, not `p()`; `p+()` needs its parentheses
            return atom.qualified
        return f"{atom.qualified}({', '.join(args)})"

    def builtin(self, call: BuiltinCall) -> str:
        written = self.source.written(call.span)
        name = (
            call.name
            if written is not None and not written.startswith("builtin:")
            else f"builtin:{call.name}"
        )
        if not call.args:
            return name
        return f"{name}({', '.join(self.term(t) for t in call.args)})"

    def expr(self, expr: Expr, outer: int = 0, right: bool = False) -> str:
        """An expression with the parentheses its place in ``outer`` needs."""
        if not isinstance(expr, BinOp):
            return self.term(expr)
        if _is_negation(expr):
            operand = expr.right
            if isinstance(operand, BinOp):
                return f"-({self.expr(operand)})"
            return "-" + self.term(operand)
        precedence = _PRECEDENCE[expr.op]
        left = self.expr(expr.left, precedence)
        text = f"{left} {expr.op} {self.expr(expr.right, precedence, right=True)}"
        if precedence < outer or (precedence == outer and right):
            return f"({text})"
        return text

    def term(self, term: Variable | Constant) -> str:
        if isinstance(term, Variable):
            return str(term)
        written = self.source.written(term.span)
        if written is not None:
            kept = _string(written) if isinstance(term.value, str) else _number(written)
            if kept is not None:
                return kept
        return format_value(term.value)


def _trail(groups: list[_Group]) -> str:
    return "  " + " ".join(g.text for g in groups) if groups else ""


def _is_negation(expr: BinOp) -> bool:
    """The parser's ``-x`` (``0 - x`` with an unwritten 0); ``-5`` is a constant instead."""
    zero = expr.left
    return (
        expr.op == "-"
        and isinstance(zero, Constant)
        and zero.span is None
        and type(zero.value) is int
        and zero.value == 0
        and not (isinstance(expr.right, Constant) and not isinstance(expr.right.value, str))
    )


def _number(written: str) -> str | None:
    """A number as written, without blanks (``- 3``); ``0X``/``E`` in lower case."""
    text = "".join(written.split())
    if _NUMBER.fullmatch(text) is None:
        return None  # folded from an expression such as -(5): printed from its value
    digits = text.lstrip("-")
    if digits[:2].lower() in ("0x", "0o", "0b"):
        return text[: len(text) - len(digits)] + digits[:2].lower() + digits[2:]
    return text.replace("E", "e")


def _string(written: str) -> str | None:
    """A string as written, in double quotes when that takes no more escapes.

    ``u``/``b`` prefixes mean nothing in Charter and go; ``r`` stays. A string written over
    several lines is printed from its value instead (None).
    """
    match = _STRING_START.match(written)
    if match is None or "\n" in written or "\r" in written:
        return None
    prefix, quote = match.groups()
    raw = "r" in prefix.lower()
    body = written[match.end() : len(written) - len(quote)]
    lead = "r" if raw else ""
    if quote == '"':
        return f'{lead}"{body}"'
    if raw:
        return f'r"{body}"' if '"' not in body and quote == "'" else f"{lead}{quote}{body}{quote}"
    converted, added, removed = _double_quoted(body)
    if added > removed and quote == "'":
        return f"'{body}'"
    if added > removed:
        return f"{quote}{body}{quote}"
    return f'"{converted}"'


def _double_quoted(body: str) -> tuple[str, int, int]:
    """A non-raw string body for double quotes: ``\\'`` unescaped, bare ``"`` escaped; with
    how many escapes that added and removed."""
    out: list[str] = []
    added = removed = 0
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            pair = body[i : i + 2]
            if pair == "\\'":
                out.append("'")
                removed += 1
            else:
                out.append(pair)
            i += 2
            continue
        if char == '"':
            out.append('\\"')
            added += 1
        else:
            out.append(char)
        i += 1
    return "".join(out), added, removed


def _verify(text: str, out: str, rules: list[Rule], file: str | None) -> None:
    where = file or "<string>"
    try:
        again = parse(out, file)
    except CharterError as exc:
        raise FormatError(
            f"{where}: the formatted text does not parse ({exc}); the file is left as it "
            "was: please report this with the file"
        ) from None
    if again != rules:
        raise FormatError(
            f"{where}: the formatted text parses to other rules; the file is left as it "
            "was: please report this with the file"
        )
    if comments(out) != comments(text):
        raise FormatError(
            f"{where}: the formatted text lost or reordered a comment; the file is left as "
            "it was: please report this with the file"
        )


# ---------------------------------------------------------------- library YAML


def _verify_library(out: str, file: str | None, before: LibraryPolicy, texts: list[str]) -> None:
    where = file or "<string>"
    try:
        after = load_library_policy(out, file)
    except CharterError as exc:
        raise FormatError(
            f"{where}: the formatted file does not load ({exc}); it is left as it was: "
            "please report this with the file"
        ) from None
    scalars = rule_scalars(yaml.compose(out, Loader=yaml.SafeLoader))
    if (
        [node.value.rstrip("\n") for _, node, _ in scalars] != texts
        or [(r.rule, r.comment, r.name) for r in after.rules]
        != [(r.rule, r.comment, r.name) for r in before.rules]
        or (after.name, after.description, after.kind, after.abbreviation)
        != (before.name, before.description, before.kind, before.abbreviation)
    ):
        raise FormatError(
            f"{where}: the formatted file holds other rules; it is left as it was: please "
            "report this with the file"
        )
