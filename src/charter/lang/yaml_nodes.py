"""Checks over a composed YAML node tree, before it is constructed into values.

PyYAML keeps the last of two equal keys of a mapping and says nothing, so a test case that
names ``nova:servers`` twice, or a pack control that repeats ``severity``, silently loses
the first: the file reads as one thing and runs as another. Charter's own YAML formats
(test files, ``pack.yaml``) refuse a repeated key instead, naming both places.
"""

from __future__ import annotations

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["duplicate_keys"]


def duplicate_keys(root: Node | None) -> list[tuple[ScalarNode, ScalarNode]]:
    """(the repeated key, its first occurrence) for each scalar key written twice in one
    mapping, in the order of the file; walked without recursion.

    >>> import yaml
    >>> root = yaml.compose("a: 1\\nb: {c: 2, c: 3}\\na: 4\\n")
    >>> [(k.value, k.start_mark.line + 1, first.start_mark.line + 1)
    ...  for k, first in duplicate_keys(root)]
    [('c', 2, 2), ('a', 3, 1)]
    """
    found: list[tuple[ScalarNode, ScalarNode]] = []
    stack: list[Node] = [root] if root is not None else []
    seen_nodes: set[int] = set()  # an alias is the same node object: visit it once
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], ScalarNode] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    earlier = first.setdefault((key.tag, key.value), key)
                    if earlier is not key:
                        found.append((key, earlier))
                stack.append(value)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return sorted(found, key=lambda pair: pair[0].start_mark.index)
