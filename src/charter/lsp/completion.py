"""What may be typed at the cursor: tables, named columns and builtins.

- Inside a datasource atom's argument list, at the start of an argument
  (``nova:servers(id=x, |``): the table's columns not yet given (by name, or by position
  before the cursor), as ``column=``.
- After ``module:``: the tables of that policy or datasource (``builtin:`` gives builtins).
- Elsewhere: the current policy's tables, the other policies' ``policy:table``, the
  datasource tables of Congress's driver schemas and those the workspace's rules read,
  Charter's other drivers as ``driver:`` (their tables come after the colon, importing only
  that driver), and the builtins.
- Nothing inside a comment or a string, nor where a variable is being typed in a policy
  table's arguments.

>>> from charter.lsp.index import WorkspaceIndex
>>> index = WorkspaceIndex()
>>> index.open("/w/cloud.dl", "ok(x) :- nova:servers(id=x)")
>>> text = "error(vm) :- nova:servers(id=vm, "
>>> [o.insert for o in complete(text, len(text), "cloud", index.snapshot())][:3]
['name=', 'host_id=', 'status=']
>>> labels = [o.label for o in complete("p(x) :- ", 8, "cloud", index.snapshot())]
>>> "ok" in labels and "nova:servers" in labels and "lt" in labels
True
"""

from __future__ import annotations

from dataclasses import dataclass

from charter.datasources.schemas import CONGRESS_DRIVER_SCHEMAS
from charter.lang.builtins import BUILTINS
from charter.lang.parser import BUILTIN_THEORY
from charter.lsp.catalog import driver_ids, module_tables
from charter.lsp.context import completion_context
from charter.lsp.hover import resolve
from charter.lsp.index import Snapshot

__all__ = ["Offer", "complete"]

TABLE, COLUMN, MODULE, BUILTIN = "table", "column", "module", "builtin"
_RANK = {"own": 0, "policy": 1, "datasource": 2, MODULE: 3, BUILTIN: 4, COLUMN: 0}


@dataclass(frozen=True, slots=True)
class Offer:
    """One completion: ``insert`` replaces the text from offset ``start`` to the cursor."""

    label: str
    kind: str
    insert: str
    start: int
    detail: str = ""
    documentation: str = ""
    rank: int = 0


def complete(
    text: str, cursor: int, policy: str | None, snapshot: Snapshot, library: bool = False
) -> list[Offer]:
    """The completions at offset ``cursor`` of a document of ``policy``."""
    ctx = completion_context(text, cursor, library)
    if ctx.quiet:
        return []
    if ctx.atom is not None:
        if not ctx.argument_start or ":" in ctx.prefix:
            return []
        return _columns(ctx.atom, ctx.named, ctx.positional, ctx.start, policy, snapshot)
    if ":" in ctx.prefix:
        module, _, typed = ctx.prefix.partition(":")
        if ":" in typed:
            return []
        return _module_tables(module, ctx.start + len(module) + 1, policy, snapshot)
    return _everything(ctx.start, policy, snapshot)


def _columns(
    atom: str,
    named: frozenset[str],
    positional: int,
    start: int,
    policy: str | None,
    snapshot: Snapshot,
) -> list[Offer]:
    """The columns of datasource table ``atom`` that are neither ``named`` nor among the
    first ``positional`` ones."""
    module, table = resolve(atom, policy, snapshot)
    if module is None or module == policy or module in snapshot.policies():
        return []
    info = (module_tables(module) or {}).get(table)
    if info is None:
        return []
    offers = []
    for index, column in enumerate(info.columns):
        if column.name in named or str(index) in named or index < positional:
            continue
        kind = f" ({column.type})" if column.type else ""
        detail = f"column {index} of {info.qualified}{kind}"
        offers.append(
            Offer(column.name, COLUMN, f"{column.name}=", start, detail, column.description, index)
        )
    return offers


def _policy_tables(
    policy: str, prefix: str, start: int, snapshot: Snapshot, rank: int
) -> list[Offer]:
    offers = []
    for table, found in sorted(snapshot.tables(policy).items()):
        rule = str(found[0].rule)
        count = f"{len(found)} rule{'s' * (len(found) != 1)}"
        detail = f"table of policy {policy}, {count}"
        offers.append(
            Offer(
                prefix + table,
                TABLE,
                prefix + table,
                start,
                detail,
                f"```datalog\n{rule}\n```",
                rank,
            )
        )
    return offers


def _datasource_tables(
    module: str, prefix: str, start: int, snapshot: Snapshot, described: bool
) -> list[Offer]:
    """The tables of datasource ``module``: with their columns' descriptions when
    ``described`` (which imports the module's driver), else Congress's column names."""
    offers: dict[str, Offer] = {}
    if described:
        tables = {
            t: tuple(c.name for c in i.columns) for t, i in (module_tables(module) or {}).items()
        }
    else:
        tables = dict(CONGRESS_DRIVER_SCHEMAS.get(module, {}))
    rank = _RANK["datasource"]
    for table, columns in sorted(tables.items()):
        detail = f"{module}:{table}({', '.join(columns)})"
        offers[table] = Offer(prefix + table, TABLE, prefix + table, start, detail, "", rank)
    for used_module, table in snapshot.datasource_tables():
        if used_module == module and table not in offers:
            detail = f"table of datasource {module} (read by the workspace's rules)"
            offers[table] = Offer(prefix + table, TABLE, prefix + table, start, detail, "", rank)
    return list(offers.values())


def _builtins(prefix: str, start: int) -> list[Offer]:
    offers = []
    for name, found in sorted(BUILTINS.items()):
        args = ", ".join(["in"] * found.inputs + ["out"] * found.outputs)
        detail = f"{BUILTIN_THEORY}:{name}({args}): {found.category}"
        offers.append(
            Offer(prefix + name, BUILTIN, prefix + name, start, detail, found.doc, _RANK[BUILTIN])
        )
    return offers


def _module_tables(module: str, start: int, policy: str | None, snapshot: Snapshot) -> list[Offer]:
    if module == BUILTIN_THEORY:
        return _builtins("", start)
    if module == policy or module in snapshot.policies():
        return _policy_tables(module, "", start, snapshot, _RANK["policy"])
    return _datasource_tables(module, "", start, snapshot, described=True)


def _everything(start: int, policy: str | None, snapshot: Snapshot) -> list[Offer]:
    offers: list[Offer] = []
    if policy is not None:
        offers += _policy_tables(policy, "", start, snapshot, _RANK["own"])
    for other in snapshot.policies():
        if other != policy:
            offers += _policy_tables(other, f"{other}:", start, snapshot, _RANK["policy"])
    modules = set(CONGRESS_DRIVER_SCHEMAS) | {m for m, _ in snapshot.datasource_tables()}
    modules -= set(snapshot.policies()) | {policy}
    for module in sorted(modules):
        offers += _datasource_tables(module, f"{module}:", start, snapshot, described=False)
    for module in driver_ids():
        if module not in modules and module not in CONGRESS_DRIVER_SCHEMAS:
            detail = f"datasource {module}: its tables come after the colon"
            offers.append(
                Offer(f"{module}:", MODULE, f"{module}:", start, detail, "", _RANK[MODULE])
            )
    offers += _builtins("", start)
    seen: set[str] = set()
    unique = []
    for offer in offers:
        if offer.label not in seen:
            seen.add(offer.label)
            unique.append(offer)
    return unique
