"""Congress's policy library files: YAML holding a policy's name, description and rules.

A library file looks like this (``kind`` and ``abbreviation`` are optional)::

    name: DisallowedFlavors
    description: Only permitted flavors may be used
    rules:
      - rule: permitted_flavor('m1.tiny')
        comment: the flavors we allow
      - rule: >
          warning(vm, flavor) :- nova:servers(id=vm, flavor_id=f),
            nova:flavors(id=f, name=flavor), not permitted_flavor(flavor)

Each rule is parsed with :func:`charter.lang.parser.parse_rule`; a syntax error points at the
line and column of the YAML file, not of the rule text.

>>> policy = load_library_policy('''
... name: tiny
... description: only tiny servers
... rules:
...   - rule: "permitted_flavor('m1.tiny')"
...     comment: allowed
... ''')
>>> policy.name, str(policy.rules[0].rule), policy.rules[0].comment
('tiny', 'permitted_flavor("m1.tiny")', 'allowed')
>>> load_library_policy("name: bad\\nrules:\\n  - rule: p(x,)\\n", "bad.yaml")  # doctest: +ELLIPSIS
Traceback (most recent call last):
charter.lang.errors.PolicyError: bad.yaml:3:15: error[parse_error]: unexpected ')': ...
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from charter.lang import limits
from charter.lang.ast import Rule, Span
from charter.lang.duplicates import duplicate_positions
from charter.lang.errors import Diagnostic, PolicyError
from charter.lang.names import is_policy_name, policy_name_problem
from charter.lang.parser import Origin, parse_rule

__all__ = [
    "LibraryPolicy",
    "LibraryRule",
    "load_library_file",
    "load_library_policy",
    "unconstructable",
]

DEFAULT_KIND = "nonrecursive"


@dataclass(frozen=True, slots=True)
class LibraryRule:
    """One entry of a library policy: the rule as written, its comment and name, and its AST."""

    text: str
    comment: str | None
    name: str | None
    rule: Rule


@dataclass(frozen=True, slots=True)
class LibraryPolicy:
    """A policy read from a library file: each rule once, and the warnings of reading it
    (``duplicate_rule`` for a rule the file writes twice, kept once as Congress kept it)."""

    name: str
    description: str
    rules: tuple[LibraryRule, ...]
    kind: str = DEFAULT_KIND
    abbreviation: str | None = None
    warnings: tuple[Diagnostic, ...] = ()


def load_library_file(path: str | Path) -> LibraryPolicy:
    """Read and load one library YAML file.

    Raises:
        PolicyError: as :func:`load_library_policy`, or ``library_syntax`` when the file is
            not UTF-8.
        OSError: when the file cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"library file is not UTF-8 text: {exc.reason} at byte {exc.start}"
        raise PolicyError([Diagnostic("library_syntax", message, Span(str(path), 1, 1))]) from None
    return load_library_policy(text, str(path))


def load_library_policy(text: str, file: str | None = None) -> LibraryPolicy:
    """Load a library policy from YAML text, parsing every rule.

    Raises:
        PolicyError: ``library_syntax`` for malformed YAML, ``library_invalid`` for a file
            of the wrong shape (no ``name``, ``rules`` not a list, an entry without ``rule``),
            ``invalid_policy_name`` for a ``name`` that is not an identifier,
            the codes of :func:`charter.lang.limits.check_yaml` for a file past the input
            limits (``too_deep``, ``yaml_aliases``, ``literal_too_large``,
            ``invalid_unicode``), and the parser's codes for rules that do not parse;
            every problem found at once.
    """
    try:  # before the composer, which recurses, and aliases, which multiply
        limits.check_yaml(text, file or "<string>", loader=yaml.SafeLoader)
    except limits.InputError as exc:
        span = Span(file, exc.line or 1, exc.col or 1)
        raise PolicyError([Diagnostic(exc.code, exc.message, span)]) from None
    loader = None
    root = None
    try:
        loader = yaml.SafeLoader(text)  # checks for unprintable characters already
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = Span(file, mark.line + 1, mark.column + 1) if mark else Span(file, 1, 1)
        message = f"malformed YAML: {exc.problem or exc.context}"
        raise PolicyError([Diagnostic("library_syntax", message, span)]) from None
    except yaml.YAMLError as exc:
        diagnostic = Diagnostic("library_syntax", f"malformed YAML: {exc}", Span(file, 1, 1))
        raise PolicyError([diagnostic]) from None
    except Exception as exc:  # noqa: BLE001 - a tagged value PyYAML cannot make (!!int x)
        node, message = unconstructable(root, exc)
        mark = node.start_mark if node is not None else None
        span = Span(file, mark.line + 1, mark.column + 1) if mark else Span(file, 1, 1)
        raise PolicyError([Diagnostic("library_syntax", message, span)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return _Loader(text, file).policy(root, data)


def unconstructable(root: Node | None, error: Exception) -> tuple[Node | None, str]:
    """The scalar PyYAML's safe constructor failed on (``!!int abc``, ``!!bool x``, a date
    with month 13, which raise ValueError, KeyError and others, not a YAML error), and a
    message naming it. Found by constructing each scalar again on its own."""
    constructor = yaml.constructor.SafeConstructor()
    stack = [root] if root is not None else []
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            try:
                constructor.construct_object(node)
            except Exception as exc:  # noqa: BLE001 - the one we are looking for
                tag = node.tag.rsplit(":", 1)[-1]
                value = node.value if len(node.value) <= 40 else node.value[:37] + "..."
                return node, f"malformed YAML: cannot read {value!r} as {tag}: {exc}"
        elif isinstance(node, MappingNode):
            stack.extend(item for pair in reversed(node.value) for item in reversed(pair))
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
    return None, f"malformed YAML: {error}"


class _Loader:
    """Checks the shape of a composed YAML document and parses its rules."""

    def __init__(self, text: str, file: str | None):
        self.text = text
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def invalid(self, message: str, node: Node | None) -> None:
        span = self.span(node)
        self.diagnostics.append(Diagnostic("library_invalid", message, span))

    def span(self, node: Node | None) -> Span:
        if node is None:
            return Span(self.file, 1, 1)
        start, end = node.start_mark, node.end_mark
        return Span(self.file, start.line + 1, start.column + 1, end.line + 1, end.column + 1)

    def policy(self, root: Node | None, data: object) -> LibraryPolicy:
        if not isinstance(root, MappingNode) or not isinstance(data, dict):
            self.invalid("a library policy must be a YAML mapping with 'name' and 'rules'", root)
            raise PolicyError(self.diagnostics)
        nodes = {key.value: value for key, value in root.value if isinstance(key, ScalarNode)}
        name = self.string(data, nodes, "name", root, required=True)
        if name is not None and not is_policy_name(name):
            problem = policy_name_problem(name)
            span = self.span(nodes.get("name"))
            self.diagnostics.append(Diagnostic("invalid_policy_name", str(problem), span))
        description = self.string(data, nodes, "description", root) or ""
        kind = self.string(data, nodes, "kind", root) or DEFAULT_KIND
        abbreviation = self.string(data, nodes, "abbreviation", root)
        rules = self.rules(data.get("rules"), nodes.get("rules"))
        if self.diagnostics:
            raise PolicyError(self.diagnostics)
        kept, warnings = duplicate_positions([r.rule for r in rules], name)
        return LibraryPolicy(
            name or "",
            description,
            tuple(rules[i] for i in kept),
            kind,
            abbreviation,
            tuple(warnings),
        )

    def string(
        self, data: dict, nodes: dict, key: str, parent: Node, required: bool = False
    ) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.invalid(f"library policy has no '{key}'", parent)
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.invalid(f"'{key}' must be a string, not {_kind(value)}", nodes.get(key))
            return None
        return str(value)

    def rules(self, value: object, node: Node | None) -> tuple[LibraryRule, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not isinstance(node, SequenceNode):
            self.invalid(f"'rules' must be a list of rules, not {_kind(value)}", node)
            return ()
        out = []
        for index, (entry, entry_node) in enumerate(zip(value, node.value, strict=True), 1):
            rule = self.rule(index, entry, entry_node)
            if rule is not None:
                out.append(rule)
        return tuple(out)

    def rule(self, index: int, entry: object, node: Node) -> LibraryRule | None:
        if isinstance(entry, str):
            self.invalid(f"rule {index} must be a mapping such as 'rule: {entry}'", node)
            return None
        if not isinstance(entry, dict) or not isinstance(node, MappingNode):
            self.invalid(f"rule {index} must be a mapping with 'rule', not {_kind(entry)}", node)
            return None
        nodes = {key.value: val for key, val in node.value if isinstance(key, ScalarNode)}
        text = entry.get("rule")
        if not isinstance(text, str) or not isinstance(nodes.get("rule"), ScalarNode):
            what = "has no 'rule'" if text is None else f"has a 'rule' that is {_kind(text)}"
            self.invalid(f"rule {index} {what}: expected the rule's text", nodes.get("rule", node))
            return None
        comment = self.string(entry, nodes, "comment", node)
        name = self.string(entry, nodes, "name", node)
        try:
            rule = parse_rule(text, self.file, origin=self.origin(nodes["rule"]))
        except PolicyError as exc:
            self.diagnostics += exc.diagnostics
            return None
        return LibraryRule(text, comment, name, rule)

    def origin(self, node: ScalarNode) -> Origin:
        """Where each (line, col) of a scalar's value sits in the YAML text."""
        value = node.value
        value_lines = [0] + [i + 1 for i, ch in enumerate(value) if ch == "\n"]
        start = _content_start(self.text, node)
        positions = _align(value, self.text, start, node.end_mark.index, node.style)

        def where(line: int, col: int) -> tuple[int, int]:
            index = value_lines[min(line, len(value_lines)) - 1] + col - 1
            if positions is None:  # escapes we cannot follow: offset from the scalar's start
                mark = node.start_mark
                quoted = 1 if node.style in ("'", '"') else 0
                return mark.line + line, (mark.column + quoted + col if line == 1 else col)
            if index >= len(positions):
                source = (positions[-1] + 1) if positions else node.start_mark.index
            else:
                source = positions[index]
            row = bisect.bisect_right(self.line_starts, source) - 1
            return row + 1, source - self.line_starts[row] + 1

        return where


def _content_start(text: str, node: ScalarNode) -> int:
    """Index where a scalar's content begins: after any tag or anchor, a quote or a block header."""
    start = node.start_mark.index
    while text[start : start + 1] in ("!", "&"):  # `!!str p(x)`, `&anchor p(x)`
        while start < len(text) and not text[start].isspace():
            start += 1
        while start < len(text) and text[start] in " \t":
            start += 1
    if node.style in ("|", ">"):
        newline = text.find("\n", start)
        return newline + 1 if newline >= 0 else start
    if node.style in ("'", '"'):
        return start + 1
    return start


def _align(value: str, text: str, start: int, end: int, style: str | None) -> list[int] | None:
    """For each character of ``value``, its index in ``text[start:end]``, or None.

    A scalar's value holds the same characters as its source, in order, except for blanks
    (folded lines, indentation) and escapes (``\\n`` and ``\\x41`` in double quotes, ``''``
    in single quotes), which this follows. None means the two could not be matched.
    """
    positions: list[int] = []
    j = start
    for ch in value:
        if ch.isspace() and not (style == '"' and j < end and text[j] == "\\"):
            positions.append(j)
            while j < end and text[j].isspace():
                j += 1
            continue
        while j < end and text[j].isspace():
            j += 1
        while style == '"' and text.startswith("\\\n", j):  # an escaped line break
            j += 2
            while j < end and text[j].isspace():
                j += 1
        if j >= end:
            return None
        positions.append(j)
        if style == '"' and text[j] == "\\":
            j += {"x": 4, "u": 6, "U": 10}.get(text[j + 1 : j + 2], 2)
        elif style == "'" and ch == "'" and text.startswith("''", j):
            j += 2
        elif text[j] == ch:
            j += 1
        else:
            return None
    return positions


def _kind(value: object) -> str:
    if value is None:
        return "empty"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an int"}
    return names.get(type(value), f"a {type(value).__name__}")
