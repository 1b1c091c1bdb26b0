"""The ``charter`` command: one Typer app, one module per verb.

Exit codes are a contract for scripts: 0 ok, 1 policy or data errors, 2 usage errors.
"""

from __future__ import annotations

from typing import Annotated

import typer

from charter import __version__
from charter.cli.admit import admit_command
from charter.cli.audit import audit_command
from charter.cli.backup import backup_command, restore_command
from charter.cli.check import check_command
from charter.cli.evaluate import eval_command
from charter.cli.explain import explain_command
from charter.cli.fmt import fmt_command
from charter.cli.lsp import lsp_command
from charter.cli.pack import pack_app
from charter.cli.policytest import test_command
from charter.cli.serve import serve_command

app = typer.Typer(
    name="charter",
    help="Charter: policy as a service for clouds and clusters (Congress Datalog).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)
app.command("eval")(eval_command)
app.command("check")(check_command)
app.command("fmt")(fmt_command)
app.command("serve")(serve_command)
app.command("explain")(explain_command)
app.command("audit")(audit_command)
app.command("admit")(admit_command)
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.command("lsp")(lsp_command)
app.command("test")(test_command)
app.add_typer(pack_app, name="pack")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"charter {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Charter: policy as a service for clouds and clusters (Congress Datalog)."""


def main() -> None:
    """Entry point of the ``charter`` script."""
    app(prog_name="charter")


if __name__ == "__main__":
    main()
