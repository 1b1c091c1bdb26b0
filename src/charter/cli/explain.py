"""``charter explain``: load policies and data as ``eval`` does, then explain a row.

The row is a pattern such as ``error("vm1")`` or ``nova:servers(id="vm1", status=s)``:
each matching row gets its proof tree; when none matches, the answer is why not. Whether
the row is there is decided here, so there is no ``--why-not`` switch.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from charter.cli.loading import Sources, Workspace, load_workspace
from charter.cli.output import error_text, render_diagnostics
from charter.engine.explain import (
    Absence,
    AggregateProof,
    Attempt,
    Evaluation,
    Failure,
    Match,
    NotDerived,
    Proof,
    explain_pattern,
)
from charter.lang.errors import CharterError, EngineError
from charter.lang.parser import parse_literal


class ExplainFormat(StrEnum):
    """How ``explain`` prints: a tree for people, JSON for scripts."""

    tree = "tree"
    json = "json"


def _policy_of(workspace: Workspace, table: str) -> str:
    """The policy of an unqualified table: the one loaded policy that has it."""
    tables = set(workspace.engine.tables())
    names = [p.name for p in workspace.policies]
    having = [n for n in names if f"{n}:{table}" in tables]
    if len(having) == 1:
        return having[0]
    if len(names) == 1:
        return names[0]
    choices = having or names
    listed = ", ".join(f"{n}:{table}" for n in choices) or f"policy:{table}"
    raise EngineError(f"--row {table}(...) must name its policy: write one of {listed}")


_STYLES = {
    "fact": "green",
    "negation": "cyan",
    "builtin": "cyan",
    "comparison": "cyan",
    "assignment": "cyan",
    "aggregate": "magenta",
    "match": "green",
}


def _style(node: object) -> str:
    if isinstance(node, Failure | NotDerived):
        return "red"
    if isinstance(node, Proof):
        return "bold" if node.kind == "rule" else _STYLES.get(node.kind, "")
    if isinstance(node, Attempt):
        return "yellow"
    if isinstance(node, Absence | Evaluation | AggregateProof | Match):
        return _STYLES.get(node.kind, "")
    return "dim"


def rich_tree(result: Proof | NotDerived) -> Tree:
    """The result as a Rich tree (text never read as markup: values are data)."""
    tree = Tree(Text(result.label(), style=_style(result)))
    _add(tree, result.nodes())
    if isinstance(result, Proof):
        for n, alternative in enumerate(result.alternatives, 2):
            branch = tree.add(Text(f"alternative derivation {n}:", style="dim"))
            child = branch.add(Text(alternative.label(), style=_style(alternative)))
            _add(child, alternative.nodes())
    return tree


def _add(tree: Tree, nodes: list) -> None:
    for node in nodes:
        branch = tree.add(Text(node.label(), style=_style(node)))
        _add(branch, node.nodes())


def explain_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Policy files, as for charter eval.", show_default=False, metavar="FILE"
        ),
    ],
    row: Annotated[
        str,
        typer.Option(
            "--row",
            "-r",
            help='The row to explain: error("vm1"), policy:table(...), named columns '
            'nova:servers(id="vm1", status=s). Variables leave columns open.',
            show_default=False,
        ),
    ],
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            "-d",
            help="JSON or YAML file mapping name:table to a list of rows, as for charter eval.",
            show_default=False,
        ),
    ] = None,
    alternatives: Annotated[
        bool,
        typer.Option("--all", help="Also show every other derivation of the row."),
    ] = False,
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, help="At most this many matching rows are explained."),
    ] = 10,
    examples: Annotated[
        int,
        typer.Option("--examples", min=0, help="Rows an aggregate explains, of those it counted."),
    ] = 3,
    output_format: Annotated[
        ExplainFormat,
        typer.Option("--format", "-f", help="tree (Rich) or json (a list of answers)."),
    ] = ExplainFormat.tree,
) -> None:
    """Explain why a row is in a table (its proof tree) or why it is not.

    Loads FILEs and --data like charter eval. An unqualified table in --row belongs to the
    loaded policy that defines it. Each matching row is explained by the rule that derived
    it, the binding of the rule's variables and, for each body literal, the row it matched
    (recursively), the pattern a negation found no row for, a builtin's values, or an
    aggregate's group with rows it counted. A row not there gets, for each rule that could
    produce it, the literal where it fails.

    Exit status: 0 when explained (present or not); 1 on any error in the files or the row.
    """
    sources: Sources = {}
    try:
        sources["--row"] = row
        pattern = parse_literal(row, "--row")
        workspace = load_workspace(files, data or [], sources=sources)
        policy = pattern.theory or _policy_of(workspace, pattern.table)
        results = explain_pattern(
            workspace.engine,
            pattern,
            policy,
            limit=limit,
            alternatives=alternatives,
            examples=examples,
        )
    except (CharterError, OSError, yaml.YAMLError, json.JSONDecodeError) as exc:
        typer.echo(error_text(exc, sources), err=True)
        raise typer.Exit(1) from None
    if workspace.warnings:  # a rule written twice: kept once, said on stderr
        typer.echo(render_diagnostics(workspace.warnings, sources), err=True)
    try:
        if output_format is ExplainFormat.json:
            text = json.dumps([r.to_json() for r in results], indent=2, ensure_ascii=False)
        else:
            trees = [rich_tree(result) for result in results]
    except ValueError as exc:  # an integer a rule's arithmetic made too large to print
        typer.echo(f"error[value_too_large]: cannot print the explanation: {exc}", err=True)
        raise typer.Exit(1) from None
    if output_format is ExplainFormat.json:
        typer.echo(text)
        return
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal:  # a pipe or a file gets each node whole on one line
        console.width = 100_000
    for n, tree in enumerate(trees):
        if n:
            console.print()
        console.print(tree)
