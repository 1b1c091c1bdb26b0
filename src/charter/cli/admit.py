"""``charter admit``: ask a running Charter whether a change would add violations.

A client of ``POST /v1/policies/{policy}/admission`` for deployment pipelines: the change is
given as Datalog atoms (``--insert 'nova:servers("vm9", "h1")'``), the answer printed as the
violations that would appear and clear, and the exit status says whether to proceed.
"""

from __future__ import annotations

import json
from typing import Annotated

import httpx
import typer

from charter.lang.ast import Atom, Constant
from charter.lang.errors import PolicyError
from charter.lang.parser import parse_literal
from charter.service.simulate import format_row


class UsageError(Exception):
    """An argument the command cannot turn into a request."""


def _atom(text: str, option: str) -> Atom:
    try:
        atom = parse_literal(text)
    except PolicyError as exc:
        raise UsageError(f"{option} {text!r}: {exc.summary()}") from None
    if atom.update or atom.named or not all(isinstance(a, Constant) for a in atom.args):
        raise UsageError(f"{option} {text!r} must be a table with constant arguments by "
                         'position, e.g. nova:servers("vm9", "h1")')
    return atom


def _values(atom: Atom) -> list:
    return [a.value for a in atom.args]  # type: ignore[union-attr]


def build_request(insert: list[str], delete: list[str], action: str | None,
                  tables: list[str], action_policy: str | None) -> dict:
    """The admission request for the command's options."""
    body: dict = {}
    for option, key, texts in (("--insert", "insert", insert), ("--delete", "delete", delete)):
        if texts:
            atoms = [_atom(t, option) for t in texts]
            body[key] = [{"table": a.qualified, "row": _values(a)} for a in atoms]
    if action:
        atom = _atom(action, "--action")
        body["action"] = atom.qualified
        body["args"] = _values(atom)
    if not body:
        raise UsageError("give the change: --insert, --delete and/or --action")
    if tables:
        body["tables"] = tables
    if action_policy:
        body["action_policy"] = action_policy
    return body


def _refusal(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text.strip()[:500] or response.reason_phrase
    return f"{message} (HTTP {response.status_code})"


def admit_command(
    policy: Annotated[str, typer.Option("--policy", "-p", help="The policy whose violations "
                                        "are checked.", show_default=False)],
    insert: Annotated[list[str] | None, typer.Option(
        "--insert", "-i", help='A row to insert, as an atom: nova:servers("vm9", "h1"). '
        "Repeatable.", show_default=False)] = None,
    delete: Annotated[list[str] | None, typer.Option(
        "--delete", "-d", help="A row to delete, as an atom. Repeatable.",
        show_default=False)] = None,
    action: Annotated[str | None, typer.Option(
        "--action", "-a", help='An action the action policy declares, with its arguments: '
        'boot("vm9", "h1").', show_default=False)] = None,
    table: Annotated[list[str] | None, typer.Option(
        "--table", "-t", help="A table to watch instead of the policy's error and warning. "
        "Repeatable.", show_default=False)] = None,
    action_policy: Annotated[str | None, typer.Option(
        "--action-policy", help="The policy declaring the actions (default: action).",
        show_default=False)] = None,
    url: Annotated[str, typer.Option("--url", help="Charter's API.")] =
        "http://127.0.0.1:1789",
    token: Annotated[str | None, typer.Option(
        "--token", help="An API token (sent as X-Auth-Token); a viewer's is enough.",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the server's JSON answer.")]
        = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the "
                                           "answer.")] = 30.0,
) -> None:
    """Check a proposed change against a policy before making it.

    The change (rows to insert and delete, and/or an action) is simulated by the server,
    isolated and rolled back, and the violations it would add (appear) and remove (clear)
    are printed, one per line, then a count.

    Exit status: 0 when no violation would appear, 1 when one would (for CI pipelines),
    2 when the check could not be made (bad arguments, refused request, no server).
    """
    try:
        body = build_request(insert or [], delete or [], action, table or [], action_policy)
    except UsageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    headers = {"X-Auth-Token": token} if token else {}
    endpoint = f"{url.rstrip('/')}/v1/policies/{policy}/admission"
    try:
        response = httpx.post(endpoint, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach {url}: {exc}", err=True)
        raise typer.Exit(2) from None
    if response.status_code != 200:
        typer.echo(f"error: {_refusal(response)}", err=True)
        raise typer.Exit(2)
    answer = response.json()
    if as_json:
        typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        for key in ("appear", "clear"):
            for item in answer[key]:
                typer.echo(f"{key:<7} {format_row(item['table'], tuple(item['row']))}")
        typer.echo(f"{len(answer['appear'])} would appear, {len(answer['clear'])} would clear")
    if answer["appear"]:
        raise typer.Exit(1)
