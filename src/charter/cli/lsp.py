"""``charter lsp``: the language server for editors (diagnostics, hover, definition,
completion, formatting), speaking the Language Server Protocol over stdin and stdout.

pygls is an optional dependency (``pip install 'charter[lsp]'``): it is imported only when
the server starts, so every other verb works without it.
"""

from __future__ import annotations

from typing import Annotated

import typer

LSP_PACKAGES = ("pygls", "lsprotocol", "cattrs")


def lsp_command(
    stdio: Annotated[
        bool,
        typer.Option(
            "--stdio",
            help="Talk over stdin and stdout: the only transport, and the default; accepted "
            "because editor clients pass it.",
        ),
    ] = False,
) -> None:
    """Run the language server over stdin/stdout until the editor closes it.

    The editor starts it as `charter lsp`; it checks the open .dl and library .yaml documents
    as `charter check` would (on every change, saved or not) and answers hover, go to
    definition, completion and formatting. docs/editors.md shows the settings of VS Code,
    Neovim and Emacs.

    Exit status: 0 when the editor shut it down properly, 1 when pygls is not installed.
    """
    try:
        from charter.lsp.server import serve
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in LSP_PACKAGES:
            raise
        typer.echo(
            f"error: charter lsp needs {missing}, which is not installed: "
            f"pip install 'charter[lsp]'",
            err=True,
        )
        raise typer.Exit(1) from None
    serve()
