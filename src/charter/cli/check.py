"""``charter check``: compile policy files together and print every diagnostic."""

from __future__ import annotations

import difflib
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import yaml

from charter.cli.loading import Sources, check_policy_files
from charter.cli.output import error_text, printable, render_diagnostics, summary
from charter.cli.reports import check_json, check_sarif
from charter.lang.errors import CharterError
from charter.lang.lint import WARNING_CODES


class CheckFormat(StrEnum):
    """How ``check`` reports: text for people, JSON for scripts, SARIF for code scanning."""

    text = "text"
    json = "json"
    sarif = "sarif"


def _known_codes(codes: list[str] | None) -> list[str]:
    """``--disable`` values, each a warning code (errors cannot be switched off)."""
    for code in codes or []:
        if code not in WARNING_CODES:
            hint = difflib.get_close_matches(code, list(WARNING_CODES), n=1)
            more = f"did you mean {hint[0]}?" if hint else f"use one of {', '.join(WARNING_CODES)}"
            raise typer.BadParameter(f"{code} is not a warning code; {more}")
    return codes or []


def check_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Policy files: .yaml/.yml is a Congress library policy, anything else "
            "Datalog named by the file's stem.",
            show_default=False,
            metavar="FILE",
        ),
    ],
    disable: Annotated[
        list[str] | None,
        typer.Option(
            "--disable",
            help="A warning code to switch off (unknown_table, singleton_variable, "
            "unused_table, impossible_condition, shadowed_rule, ...). Repeatable. A comment "
            "'# charter: disable=CODE' switches it off for one rule.",
            show_default=False,
            metavar="CODE",
            callback=_known_codes,
        ),
    ] = None,
    output_format: Annotated[
        CheckFormat,
        typer.Option(
            "--format",
            "-f",
            help="text (diagnostics with their line and a caret), json (a list and a "
            "summary) or sarif (SARIF 2.1.0, for GitHub code scanning).",
        ),
    ] = CheckFormat.text,
) -> None:
    """Check policy files without data and print every error and warning.

    All FILEs are checked together, as eval would load them: syntax, safety, column names
    against Congress's driver schemas, arity agreement and stratification across policies.
    Each diagnostic reads file:line:col: severity[code]: message, followed by the source
    line and a caret; a last line counts them (2 errors, 1 warning). All of it goes to
    stdout: the diagnostics are the report.

    Lint warnings point at rules that compile but are likely wrong (a table nothing
    defines, a variable used once, a table nothing reads, a condition never true, a rule
    copied from another policy); each has a code that --disable or a comment
    '# charter: disable=CODE' on the rule switches off.

    Exit status: 1 when there is any error, else 0 (warnings alone pass).
    """
    sources: Sources = {}
    try:
        diagnostics = check_policy_files(files, sources, disable or [])
    except (CharterError, OSError, yaml.YAMLError, json.JSONDecodeError) as exc:
        typer.echo(error_text(exc, sources), err=True)
        raise typer.Exit(1) from None
    if output_format is CheckFormat.json:
        typer.echo(printable(check_json(diagnostics)))
    elif output_format is CheckFormat.sarif:
        typer.echo(printable(check_sarif(diagnostics)))
    else:
        if diagnostics:
            typer.echo(render_diagnostics(diagnostics, sources))
        typer.echo(summary(diagnostics))
    if any(d.is_error for d in diagnostics):
        raise typer.Exit(1)
