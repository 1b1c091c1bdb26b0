r"""Rewriting the rule texts of a library YAML file in place, every other byte kept.

A rule's scalar is replaced by the first form that loads back as exactly the new text, in
the key's context: the scalar's own style first (plain, quoted, ``>``/``|`` with its header
and indentation), then a ``>`` block for several lines (``|`` when folding would join
them), then quotes; a double-quoted scalar holds any text.

>>> text = "rules:\n  - rule: p(x)\n"
>>> [(key, node)] = [(k.value, n.value) for k, n, _ in rule_scalars(yaml.compose(text))]
>>> key, node
('rule', 'p(x)')
"""

from __future__ import annotations

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["ScalarRewrite", "rule_scalars"]


def rule_scalars(root: Node | None) -> list[tuple[ScalarNode, ScalarNode, bool]]:
    """The key and value node of each entry's ``rule`` (the last one, as the loader reads
    it), and whether it sits in flow style (``{rule: ...}``), where no block scalar may go.
    The file has loaded, so each entry is a mapping with a ``rule`` scalar."""
    rules = _last(root, "rules")
    if rules is None or not isinstance(rules[1], SequenceNode):
        return []
    flow = bool(root.flow_style or rules[1].flow_style)
    found = []
    for entry in rules[1].value:
        pair = _last(entry, "rule")
        if pair is not None and isinstance(pair[1], ScalarNode):
            found.append((pair[0], pair[1], flow or bool(entry.flow_style)))
    return found


def _last(mapping: Node | None, name: str) -> tuple[ScalarNode, Node] | None:
    found = None
    if isinstance(mapping, MappingNode):
        for key, value in mapping.value:
            if isinstance(key, ScalarNode) and key.value == name:
                found = (key, value)
    return found


class ScalarRewrite:
    """Rewrites one rule scalar of a YAML text in the first style that holds the new text."""

    def __init__(self, text: str, key: ScalarNode, node: ScalarNode, flow: bool, newline: str):
        self.text = text
        self.key = key
        self.node = node
        self.flow = flow
        self.newline = newline
        self.start = _content_start(text, node)
        end = node.end_mark.index
        if node.style in ("|", ">"):
            end = self.start + len(text[self.start : end].rstrip())
        self.end = end

    def edit(self, new: str) -> tuple[int, int, str]:
        """The edit (start, end, replacement) that makes the scalar's value ``new``."""
        for candidate in self.candidates(new):
            if self.holds(candidate, new):
                return self.place(candidate)
        raise AssertionError("a double-quoted scalar holds any text")  # pragma: no cover

    def candidates(self, new: str) -> list[str]:
        """The forms to try, the scalar's own style first; a quoted form last, which holds
        any text (in flow style, where no block may go, only quoted forms)."""
        style = self.node.style
        multiline = "\n" in new
        single = [] if multiline else [_single_quoted(new)]
        double = [_double_quoted_yaml(new)]
        if self.flow:
            return double if style == '"' else single + double
        blocks = []
        if style in (">", "|"):
            blocks = [self.block(new, style), self.block(new, "|" if style == ">" else ">")]
        elif multiline:
            blocks = [self.block(new, ">"), self.block(new, "|")]
        if style == '"':
            return blocks + double
        plain = [new] if style is None and not multiline else []
        return blocks + plain + single + double

    def block(self, new: str, style: str) -> str:
        """A block scalar: the original header (its chomping, indentation indicator and
        comment kept) and indentation when it was one, else ``>`` or ``|`` at key + 2."""
        node, text = self.node, self.text
        if node.style in ("|", ">"):
            header_end = text.find("\n", self.start)
            header = style + text[self.start + 1 : header_end].rstrip("\r")
            content = text[header_end + 1 : self.end]
            digits = [ch for ch in header.split("#", 1)[0] if ch.isdigit()]
            indent = min(
                (len(line) - len(line.lstrip(" ")) for line in content.split("\n") if line.strip()),
                default=self.key.start_mark.column + 2,
            )
            if digits:  # an indentation indicator counts from the mapping's column
                indent = self.key.start_mark.column + int(digits[0])
        else:
            header, indent = style, self.key.start_mark.column + 2
        lines = [(" " * indent + line) if line else "" for line in new.split("\n")]
        return self.newline.join([header, *lines])

    def holds(self, candidate: str, new: str) -> bool:
        """Whether the candidate, in the key's context, loads as exactly the new text."""
        if self.flow:
            document = "{rule: " + candidate + "}"
        else:
            document = " " * self.key.start_mark.column + "rule: " + candidate + self.newline
        try:
            loaded = yaml.safe_load(document)
        except yaml.YAMLError:
            return False
        value = loaded.get("rule") if isinstance(loaded, dict) else None
        return isinstance(value, str) and value.rstrip("\n") == new

    def place(self, candidate: str) -> tuple[int, int, str]:
        """The edit: from the scalar's content (after any tag or anchor) to its end. A block
        scalar replacing text written on a line after ``rule:`` starts on the key's line
        (after the tag or anchor), where its header belongs."""
        block = candidate[:1] in ("|", ">")
        if not block or self.text.count("\n", 0, self.start) == self.key.start_mark.line:
            return self.start, self.end, candidate
        colon = self.text.index(":", self.key.end_mark.index) + 1
        properties = self.text[self.node.start_mark.index : self.start].strip()
        return colon, self.end, f" {properties} {candidate}" if properties else f" {candidate}"


def _content_start(text: str, node: ScalarNode) -> int:
    """Where a scalar's own text begins: after any tag (``!!str``) or anchor (``&a``)."""
    start = node.start_mark.index
    while text[start : start + 1] in ("!", "&"):
        while start < len(text) and not text[start].isspace():
            start += 1
        while start < len(text) and text[start].isspace():  # also to the next line
            start += 1
    return start


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _double_quoted_yaml(text: str) -> str:
    dumped = yaml.dump(text, default_style='"', allow_unicode=True, width=1 << 30)
    return dumped.rstrip("\n").removesuffix("\n...").rstrip("\n")
