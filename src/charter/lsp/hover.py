"""What a table, builtin or column is: the hover's text, and where a table is defined.

A name resolves as the compiler resolves it: a bare table is the current policy's; a
``module:table`` is policy ``module``'s when the workspace has that policy, else a table of
datasource ``module``, whose columns come from :mod:`charter.lsp.catalog`; ``builtin:f``
and the bare builtins are Congress's builtins.

>>> from charter.lsp.index import WorkspaceIndex
>>> index = WorkspaceIndex()
>>> index.open("/w/cloud.dl", "error(vm) :- nova:servers(id=vm, status='ERROR')")
>>> snap = index.snapshot()
>>> print(describe(Symbol("table", "error", 0, 5), "cloud", snap))
**`cloud:error`**: table of policy `cloud`, 1 column
<BLANKLINE>
```datalog
error(vm)
```
<BLANKLINE>
Defined by 1 rule:
- [/w/cloud.dl:1](file:///w/cloud.dl#L1): `error(vm) :- nova:servers(id=vm, status="ERROR")`
>>> print(describe(Symbol("column", "nova:servers", 0, 5, "status"), "cloud", snap))
**`status`**: column 3 of `nova:servers`: server status: ACTIVE, SHUTOFF, PAUSED, ERROR, ...
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from charter.lang.ast import Atom
from charter.lang.builtins import BUILTINS, Builtin
from charter.lang.parser import BUILTIN_THEORY
from charter.lsp.catalog import TableInfo, module_tables
from charter.lsp.context import Symbol
from charter.lsp.index import Definition, Snapshot

__all__ = ["definitions", "describe", "resolve"]

MAX_LISTED = 10
"""Defining rules listed in a hover at most (the jump lists them all)."""


def resolve(name: str, policy: str | None, snapshot: Snapshot) -> tuple[str | None, str]:
    """The policy or datasource a written table name belongs to, and the table.

    >>> from charter.lsp.index import Snapshot
    >>> resolve("error", "cloud", Snapshot({})), resolve("nova:servers", "cloud", Snapshot({}))
    (('cloud', 'error'), ('nova', 'servers'))
    """
    name = name.rstrip("+-")
    module, _, table = name.partition(":")
    if not table:
        return policy, module
    return module, table


def _builtin(name: str) -> Builtin | None:
    return BUILTINS.get(name.removeprefix(f"{BUILTIN_THEORY}:"))


def definitions(symbol: Symbol, policy: str | None, snapshot: Snapshot) -> list[Definition]:
    """The rules defining the table named by ``symbol`` (none for a datasource's)."""
    if symbol.kind == "builtin":
        return []
    module, table = resolve(symbol.name, policy, snapshot)
    return snapshot.definitions(module, table) if module else []


def describe(
    symbol: Symbol,
    policy: str | None,
    snapshot: Snapshot,
    roots: Sequence[Path] = (),
) -> str | None:
    """The hover's Markdown for ``symbol``; None when nothing is known of it."""
    if symbol.kind == "builtin":
        found = _builtin(symbol.name)
        return _describe_builtin(found) if found else None
    module, table = resolve(symbol.name, policy, snapshot)
    if module is None:
        return None
    if module in snapshot.policies() or module == policy:
        if symbol.kind == "column":
            return None
        found = snapshot.definitions(module, table)
        return _describe_policy_table(module, table, found, roots)
    info = (module_tables(module) or {}).get(table)
    if symbol.kind == "column":
        return _describe_column(info, symbol.column or "") if info else None
    return _describe_datasource_table(module, table, info)


def _describe_builtin(found: Builtin) -> str:
    args = ["in"] * found.inputs + ["out"] * found.outputs
    outputs = f", {found.outputs} output{'s' * (found.outputs != 1)}" if found.outputs else ""
    return (
        f"**`{BUILTIN_THEORY}:{found.name}`**: {found.category} builtin, "
        f"{found.inputs} input{'s' * (found.inputs != 1)}{outputs}\n\n"
        f"```datalog\n{found.name}({', '.join(args)})\n```\n\n{found.doc}"
    )


def _shown(path: str, roots: Sequence[Path]) -> str:
    """A path relative to the workspace folder holding it, else as it is."""
    for root in roots:
        if Path(path).is_relative_to(root):
            return os.path.relpath(path, root)
    return path


def _describe_policy_table(
    policy: str, table: str, found: list[Definition], roots: Sequence[Path]
) -> str:
    if not found:
        return (
            f"**`{policy}:{table}`**: table of policy `{policy}`\n\n"
            f"No rule or fact of the workspace defines it; its rows can only come from data."
        )
    head = next(h for h in found[0].rule.heads if isinstance(h, Atom))
    arity = len(head.args)
    lines = [
        f"**`{policy}:{table}`**: table of policy `{policy}`, {arity} column{'s' * (arity != 1)}",
        "",
        f"```datalog\n{head}\n```",
        "",
        f"Defined by {len(found)} rule{'s' * (len(found) != 1)}:",
    ]
    for d in found[:MAX_LISTED]:
        uri = Path(d.path).as_uri() if Path(d.path).is_absolute() else d.path
        text = str(d.rule)
        text = text if len(text) <= 80 else text[:77] + "..."
        lines.append(f"- [{_shown(d.path, roots)}:{d.span.line}]({uri}#L{d.span.line}): `{text}`")
    if len(found) > MAX_LISTED:
        lines.append(f"- and {len(found) - MAX_LISTED} more")
    return "\n".join(lines)


def _describe_datasource_table(module: str, table: str, info: TableInfo | None) -> str:
    if info is None:
        known = module_tables(module)
        if known is None:
            return (
                f"**`{module}:{table}`**: table of datasource `{module}`\n\n"
                f"No schema is known for `{module}` here: `charter check` accepts any of "
                f"its tables and columns by position."
            )
        return (
            f"**`{module}:{table}`**: not a table of datasource `{module}`\n\n"
            f"Its tables: {', '.join(f'`{t}`' for t in sorted(known))}."
        )
    count = len(info.columns)
    lines = [
        f"**`{info.qualified}`**: table of datasource `{module}` ({info.origin}), "
        f"{count} column{'s' * (count != 1)}",
        "",
        "| # | column | description |",
        "|---|---|---|",
    ]
    for index, column in enumerate(info.columns):
        kind = f" ({column.type})" if column.type else ""
        about = column.description.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {index} | `{column.name}`{kind} | {about} |")
    return "\n".join(lines)


def _describe_column(info: TableInfo, column: str) -> str | None:
    found = info.column(column)
    if found is None:
        return None
    index, about = found
    text = f"**`{column}`**: column {index} of `{info.qualified}`"
    return text + (f": {about.description}" if about.description else "")
