"""``charter: disable=CODE`` comments: the warnings a policy file switches off, rule by rule.

The parser drops comments (``grammar.lark`` ignores ``COMMENT``), so they are found again in
the source text. In Datalog a comment is lexed with the grammar's own ``COMMENT`` and
``STRING`` terminals, so a ``#`` inside a string is no comment. In a library YAML file a
comment is a YAML comment (``# ...``) or a Datalog one (``//`` inside a rule's text).

A directive applies to a rule when it sits at the end of one of the rule's lines (of any
line of its YAML entry), or in the comment lines directly above the rule (or its entry)::

    // charter: disable=unused_table
    helper(x) :- q(x, y)  # charter: disable=singleton_variable, unknown_table

>>> from charter.lang.parser import parse
>>> text = "// charter: disable=unused_table\\nh(x) :- q(x)\\ng(x) :- q(x) # charter: disable=a,b\\n"
>>> s = Suppressions(text, parse(text, "p.dl"))
>>> sorted(s.codes_at(2)), sorted(s.codes_at(3)), sorted(s.codes_at(1))
(['unused_table'], ['a', 'b'], [])
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from charter.lang.ast import Rule, Span
from charter.lang.errors import WARNING, Diagnostic
from charter.lang.parser import comment_ranges

__all__ = ["Directive", "Suppressions", "directives", "filter_suppressed", "unknown_codes"]

_DIRECTIVE = re.compile(
    r"charter:[ \t]*disable[ \t]*=[ \t]*([A-Za-z0-9_]+(?:[ \t]*,[ \t]*[A-Za-z0-9_]+)*)"
)
_YAML_COMMENT = re.compile(r"(?:^|[ \t])(#|//)")


@dataclass(frozen=True, slots=True)
class Directive:
    """One ``charter: disable=...`` comment: where its codes start, and the codes."""

    line: int
    col: int
    codes: tuple[str, ...]


class _Lines:
    """Line and column of a character offset (1-based), counting lines at ``\\n`` as Lark does."""

    def __init__(self, text: str):
        self.starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def at(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1


def _comments(text: str, yaml_file: bool) -> list[tuple[int, int, str]]:
    """``(start offset, end offset, text)`` of every comment of a file."""
    if yaml_file:
        out = []
        offset = 0
        for line in text.split("\n"):
            found = _YAML_COMMENT.search(line)
            if found is not None:
                start = offset + found.start(1)
                out.append((start, offset + len(line), line[found.start(1) :]))
            offset += len(line) + 1
        return out
    return [(start, end, text[start:end]) for start, end in comment_ranges(text)]


def directives(text: str, yaml_file: bool = False) -> list[Directive]:
    """Every ``charter: disable=...`` written in a comment of ``text``.

    >>> directives('p("# charter: disable=x") :- q(1)  # charter: disable=y, z')
    [Directive(line=1, col=55, codes=('y', 'z'))]
    """
    lines = _Lines(text)
    out = []
    for start, _end, comment in _comments(text, yaml_file):
        for found in _DIRECTIVE.finditer(comment):
            line, col = lines.at(start + found.start(1))
            codes = tuple(c.strip() for c in found.group(1).split(","))
            out.append(Directive(line, col, codes))
    return out


def _comment_only_lines(text: str, yaml_file: bool) -> set[int]:
    """Lines holding a comment and nothing else but spaces."""
    lines = _Lines(text)
    rows = text.split("\n")
    covered: dict[int, list[tuple[int, int]]] = {}
    for start, end, _ in _comments(text, yaml_file):
        first, col = lines.at(start)
        last, end_col = lines.at(max(end - 1, start))
        for line in range(first, last + 1):
            lo = col if line == first else 1
            hi = end_col if line == last else len(rows[line - 1])
            covered.setdefault(line, []).append((lo, hi))
    alone = set()
    for line, spans in covered.items():
        row = rows[line - 1]
        if all(
            ch.isspace() or any(lo <= i <= hi for lo, hi in spans) for i, ch in enumerate(row, 1)
        ):
            alone.add(line)
    return alone


# ---------------------------------------------------------------- rules' lines


def _end_line(node: Node, lines: list[str]) -> int:
    """The last line (1-based) holding text of a YAML node: its end mark, less a line when
    the mark sits at the start of the next one."""
    mark = node.end_mark
    line = mark.line + 1
    if line > 1 and (line > len(lines) or not lines[line - 1][: mark.column].strip(" -")):
        line -= 1
    return line


def _yaml_entries(text: str) -> list[tuple[int, int]]:
    """``(first line, last line)`` of each entry of a library file's ``rules:`` list."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return []
    if not isinstance(root, MappingNode):
        return []
    lines = text.split("\n")
    entries = []
    for key, value in root.value:
        if not (isinstance(key, ScalarNode) and key.value == "rules"):
            continue
        if not isinstance(value, SequenceNode):
            continue
        for item in value.value:
            first = item.start_mark.line + 1
            parts = [v for _, v in item.value] if isinstance(item, MappingNode) else [item]
            last = max([first, *(_end_line(part, lines) for part in parts)])
            entries.append((first, last))
    return entries


def _rule_lines(span: Span | None, entries: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    if span is None:
        return None
    first, last = span.line, span.end_line or span.line
    for lo, hi in entries:
        if lo <= first <= hi:
            return min(lo, first), max(hi, last)
    return first, last


class Suppressions:
    """The codes each rule of one file switches off with its comments."""

    def __init__(self, text: str, rules: Iterable[Rule | Span], yaml_file: bool = False):
        """``rules``: every rule the file writes (or its span), copies dropped as
        ``duplicate_rule`` included, so a comment can switch that warning off too."""
        self.directives = directives(text, yaml_file)
        alone = _comment_only_lines(text, yaml_file) if self.directives else set()
        entries = _yaml_entries(text) if yaml_file and self.directives else []
        rows = text.split("\n")
        by_line: dict[int, set[str]] = {}
        for d in self.directives:
            by_line.setdefault(d.line, set()).update(d.codes)
        self.regions: list[tuple[int, int, frozenset[str]]] = []
        if not self.directives:
            return
        for rule in rules:
            lines = _rule_lines(rule if isinstance(rule, Span) else rule.span, entries)
            if lines is None:
                continue
            first, last = lines
            while last > first and (last in alone or not rows[last - 1].strip()):
                last -= 1  # blank and comment lines closing a YAML entry: the next one's
            codes: set[str] = set()
            for line in range(first, last + 1):
                codes |= by_line.get(line, set())
            above = first - 1
            while above in alone:
                codes |= by_line.get(above, set())
                above -= 1
            if codes:
                self.regions.append((first, last, frozenset(codes)))

    def codes_at(self, line: int) -> set[str]:
        """The codes switched off for the rule(s) written on ``line``."""
        out: set[str] = set()
        for first, last, codes in self.regions:
            if first <= line <= last:
                out |= codes
        return out


def filter_suppressed(
    diagnostics: Iterable[Diagnostic],
    suppressions: Mapping[str, Suppressions],
    disabled: Iterable[str] = (),
) -> list[Diagnostic]:
    """The diagnostics less the warnings switched off by ``disabled`` codes or by a comment
    on their rule (``suppressions`` by file name). Errors are never switched off."""
    off = set(disabled)
    out = []
    for d in diagnostics:
        if d.severity == WARNING:
            if d.code in off:
                continue
            span = d.span
            found = suppressions.get(span.file) if span is not None and span.file else None
            if found is not None and d.code in found.codes_at(span.line):
                continue
        out.append(d)
    return out


def unknown_codes(
    suppressions: Mapping[str, Suppressions], known: Iterable[str]
) -> list[Diagnostic]:
    """An ``unknown_lint_code`` warning for each code of a directive that is not a warning
    code (it would switch nothing off), with the closest known code."""
    known = sorted(known)
    out = []
    for file, found in suppressions.items():
        for directive in found.directives:
            for code in directive.codes:
                if code in known:
                    continue
                hint = difflib.get_close_matches(code, known, n=1)
                more = f"did you mean {hint[0]}?" if hint else f"known codes: {', '.join(known)}"
                message = f"charter: disable= names {code}, which is no warning code; {more}"
                span = Span(file, directive.line, directive.col)
                out.append(Diagnostic("unknown_lint_code", message, span, WARNING))
    return out
