"""The ``charter`` command: one Typer app, one module per verb.

Exit codes are a contract for scripts: 0 ok, 1 policy or data errors, 2 usage errors.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import click
import typer
import typer.core
import typer.main
import typer.models

from charter import __version__

COMMANDS = {
    "eval": "charter.cli.evaluate:eval_command",
    "check": "charter.cli.check:check_command",
    "fmt": "charter.cli.fmt:fmt_command",
    "serve": "charter.cli.serve:serve_command",
    "explain": "charter.cli.explain:explain_command",
    "audit": "charter.cli.audit:audit_command",
    "admit": "charter.cli.admit:admit_command",
    "backup": "charter.cli.backup:backup_command",
    "restore": "charter.cli.backup:restore_command",
    "lsp": "charter.cli.lsp:lsp_command",
    "test": "charter.cli.policytest:test_command",
    "pack": "charter.cli.pack:pack_app",
}
"""Each verb and where it lives, in the order ``--help`` lists them. A verb's module is
imported when the verb runs (or help lists it): ``charter eval`` need not import the
service's settings, the packs or httpx (over a second of a 1M-row run's start)."""


class LazyGroup(typer.core.TyperGroup):
    """The ``charter`` group, building a verb's click command from :data:`COMMANDS` when
    click first asks for it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.commands[cmd_name] = _build(cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in COMMANDS:  # a typo: Typer suggests from the built verbs
            for name in COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


def _build(name: str) -> click.Command:
    module, attr = COMMANDS[name].split(":")
    target = getattr(importlib.import_module(module), attr)
    if isinstance(target, typer.Typer):
        return typer.main.get_group_from_info(
            typer.models.TyperInfo(target, name=name),
            pretty_exceptions_short=app.pretty_exceptions_short,
            suggest_commands=app.suggest_commands,
            rich_markup_mode=app.rich_markup_mode,
        )
    return typer.main.get_command_from_info(
        typer.models.CommandInfo(name=name, callback=target),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )


app = typer.Typer(
    cls=LazyGroup,
    name="charter",
    help="Charter: policy as a service for clouds and clusters (Congress Datalog).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)


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
