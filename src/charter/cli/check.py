"""``charter check``: compile policy files together and print every diagnostic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from charter.cli.loading import Sources, check_policy_files
from charter.cli.output import error_text, render_diagnostics, summary
from charter.lang.errors import CharterError


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
) -> None:
    """Check policy files without data and print every error and warning.

    All FILEs are checked together, as eval would load them: syntax, safety, column names
    against Congress's driver schemas, arity agreement and stratification across policies.
    Each diagnostic reads file:line:col: severity[code]: message, followed by the source
    line and a caret; a last line counts them (2 errors, 1 warning). All of it goes to
    stdout: the diagnostics are the report.

    Exit status: 1 when there is any error, else 0 (warnings alone pass).
    """
    sources: Sources = {}
    try:
        diagnostics = check_policy_files(files, sources)
    except (CharterError, OSError, yaml.YAMLError, json.JSONDecodeError) as exc:
        typer.echo(error_text(exc, sources), err=True)
        raise typer.Exit(1) from None
    if diagnostics:
        typer.echo(render_diagnostics(diagnostics, sources))
    typer.echo(summary(diagnostics))
    if any(d.is_error for d in diagnostics):
        raise typer.Exit(1)
