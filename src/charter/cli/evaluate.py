"""``charter eval``: load policies and data into one engine, print the tables asked for."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from charter.cli.loading import Sources, Workspace, load_workspace
from charter.cli.output import (
    check_printable,
    error_text,
    format_json,
    print_tables,
    printable,
    render_diagnostics,
)
from charter.cli.reports import format_csv, format_junit
from charter.lang.errors import CharterError, EngineError


class OutputFormat(StrEnum):
    """How ``eval`` prints rows: Rich tables for people, JSON for scripts, CSV for
    spreadsheets, JUnit XML for CI dashboards."""

    table = "table"
    json = "json"
    csv = "csv"
    junit = "junit"


def query_tables(workspace: Workspace, query: list[str]) -> list[str]:
    """The tables to print: those asked for, else every error and warning table."""
    if not query:
        return workspace.default_tables()
    tables = []
    for table in query:
        if ":" not in table:
            matches = [t for t in workspace.engine.tables() if t.endswith(f":{table}")]
            hint = f"; did you mean {matches[0]}?" if matches else ""
            raise EngineError(f"--query {table} must name a table as policy:table{hint}")
        tables.append(table)
    return list(dict.fromkeys(tables))


def eval_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Policy files: .yaml/.yml is a Congress library policy named by its name:, "
            "anything else Datalog named by the file's stem.",
            show_default=False,
            metavar="FILE",
        ),
    ],
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            "-d",
            help="JSON or YAML file mapping name:table to a list of rows (lists or objects); "
            "or one table in NDJSON (.ndjson, .jsonl: a row a line), CSV (.csv, with a header) "
            "or Parquet (.parquet), the file named as its table: nova:servers.parquet. "
            "Repeat for more files.",
            show_default=False,
        ),
    ] = None,
    query: Annotated[
        list[str] | None,
        typer.Option(
            "--query",
            "-q",
            help="A table to print, as policy:table. Repeatable. "
            "Default: every error and warning table of the policies.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="table (Rich tables), json (one JSON object), csv (table,values... rows) "
            "or junit (JUnit XML: a test case per table, a failure per error/warning row).",
        ),
    ] = OutputFormat.table,
) -> None:
    """Evaluate policies over data and print the rows of tables.

    All FILEs load into one engine; a policy may read another as policy:table. Rows of
    name:table in the data are facts of policy name when it is one of the FILEs, else rows
    of datasource name. Congress driver schemas (nova, neutronv2, keystonev3, cinder,
    glancev2, ...) are known, so rows may be objects keyed by column name.

    Exit status: 0 when evaluated (violations are output, not failure); 1 on any error in
    the files or the query, printed on stderr as file:line:col: error[code]: message. A
    rule a file writes twice is kept once, with a warning on stderr.
    """
    for path in files:
        if path.suffix.lower() == ".json":
            raise typer.BadParameter(
                f"{path} looks like a data file: give each data file with --data",
                param_hint="FILE",
            )
    sources: Sources = {}
    try:
        workspace = load_workspace(files, data or [], sources=sources)
        tables = query_tables(workspace, query or [])
        results = {table: workspace.engine.rows(table) for table in tables}
        if output_format is OutputFormat.json:
            check_printable(results)
    except (CharterError, OSError, yaml.YAMLError, json.JSONDecodeError) as exc:
        typer.echo(error_text(exc, sources), err=True)
        raise typer.Exit(1) from None
    if workspace.warnings:  # a rule written twice: kept once, said on stderr
        typer.echo(render_diagnostics(workspace.warnings, sources), err=True)
    if not query and not tables:
        names = ", ".join(p.name for p in workspace.policies) or "(none)"
        typer.echo(
            f"note: policies {names} define no error or warning table; "
            f"name tables with --query policy:table",
            err=True,
        )
    if output_format is OutputFormat.json:
        typer.echo(format_json(results))
    elif output_format is OutputFormat.csv:
        typer.echo(printable(format_csv(results, workspace.columns)), nl=False)
    elif output_format is OutputFormat.junit:
        typer.echo(format_junit(results))
    else:
        console = Console(file=sys.stdout, highlight=False)
        print_tables(console, results, workspace.columns)
