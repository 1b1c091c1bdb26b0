"""``charter audit``: read a running Charter's audit log over its API (``GET /v1/audit``)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from charter.cli.output import _print_whole

COLUMNS = ("at", "policy", "action", "row", "mode", "result", "detail")


class AuditFormat(StrEnum):
    table = "table"
    json = "json"


def fetch_audit(url: str, *, policy: str | None, limit: int, token: str | None,
                timeout: float = 10.0) -> list[dict]:
    """The entries ``GET {url}/v1/audit`` answers, newest first."""
    params: dict[str, str | int] = {"limit": limit}
    if policy:
        params["policy"] = policy
    headers = {"X-Auth-Token": token} if token else {}
    answer = httpx.get(f"{url.rstrip('/')}/v1/audit", params=params, headers=headers,
                       timeout=timeout)
    if answer.status_code != 200:
        try:
            message = answer.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = answer.text[:300]
        raise RuntimeError(f"{url} answered {answer.status_code}: {message}")
    return answer.json()["results"]


def _cell(entry: dict, column: str) -> str:
    value = entry[column]
    if column == "row":
        return json.dumps(value)
    return str(value)


def audit_command(
    url: Annotated[
        str,
        typer.Option("--url", envvar="CHARTER_URL",
                     help="The Charter API, e.g. http://127.0.0.1:1789 (env CHARTER_URL)."),
    ] = "http://127.0.0.1:1789",
    policy: Annotated[
        str | None, typer.Option("--policy", "-p", help="Only this policy's entries.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, max=1000, help="How many entries.")
    ] = 50,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="CHARTER_TOKEN",
                     help="API token, sent as X-Auth-Token (env CHARTER_TOKEN)."),
    ] = None,
    output_format: Annotated[
        AuditFormat, typer.Option("--format", "-f", help="table or json (one JSON list).")
    ] = AuditFormat.table,
) -> None:
    """Print the newest entries of the audit log of a running Charter, newest first.

    Every enforcement decision is there: an action run (ok, with the driver's result),
    retried, failed (with the error), or not run (dry-run, capped, rate-limited,
    cancelled), and every switch of a policy's enforcement mode, with who did it.

    Exit status: 1 when the API cannot be reached or refuses the request.
    """
    try:
        entries = fetch_audit(url, policy=policy, limit=limit, token=token)
    except (httpx.HTTPError, RuntimeError) as exc:
        typer.echo(f"charter audit: {exc}", err=True)
        raise typer.Exit(1) from None
    if output_format is AuditFormat.json:
        typer.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    console = Console(file=sys.stdout, highlight=False)
    if not entries:
        console.print("no audit entries" + (f" for policy {policy}" if policy else ""))
        return
    table = Table()
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(*(Text(_cell(entry, c)) for c in COLUMNS))
    _print_whole(console, table)
