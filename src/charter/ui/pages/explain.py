"""Explain: why a violation (any row of a policy's table) holds, as a proof tree folded by
level, and "why not" for a row the user types.

The tree is :func:`charter.engine.explain.explain`'s JSON (docs/explain.md), read under the
service lock like ``GET /v1/policies/{policy}/tables/{table}/explain``; each rule node is
matched to the stored rule it came from (its id, name, comment and, when it was loaded from
a file, file:line). A row that does not parse, has the wrong number of values or names an
unknown table is answered by the page in words, with the form to correct it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from charter.engine.explain import ANY, explain
from charter.lang.ast import Constant, Variable, format_value
from charter.lang.errors import CharterError, DataError
from charter.lang.parser import parse_literal
from charter.service.errors import ServiceError
from charter.service.violations import VIOLATION_TABLES
from charter.ui.deps import Viewer
from charter.ui.render import render

router = APIRouter()

OPEN_LEVELS = 2
"""How many levels of the tree start unfolded."""
MAX_EXAMPLES = 10


class RowError(ValueError):
    """What is wrong with a typed row, in words."""


def parse_row(text: str) -> tuple:
    """A row typed by the user: a JSON list (``["vm1", 2]``, ``null`` leaves a column open)
    or Datalog values (``"vm1", 2``, ``_`` leaves a column open).

    >>> parse_row('["vm1", 2, null]') == ("vm1", 2, ANY)
    True
    >>> parse_row('"vm1", 2.5, _') == ("vm1", 2.5, ANY)
    True
    """
    text = text.strip()
    if not text:
        raise RowError('type the row\'s values, e.g. "vm1", 2 (or a JSON list ["vm1", 2])')
    if text.startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RowError(f"the row is not a JSON list: {exc.msg} at column {exc.colno}") \
                from None
        if not isinstance(values, list):
            raise RowError('the row must be a JSON list of its values, e.g. ["vm1", 2]')
        out = []
        for item in values:
            if item is not None and (isinstance(item, bool)
                                     or not isinstance(item, str | int | float)):
                raise RowError(f"row value {json.dumps(item)} is not a string or a number "
                               "(null leaves a column open)")
            out.append(ANY if item is None else item)
        return tuple(out)
    try:
        atom = parse_literal(f"row({text})")
    except CharterError as exc:
        raise RowError(f"the values do not parse: {_first_line(exc)}; write text in double "
                       'quotes and numbers as they are, e.g. "vm1", 2') from None
    if atom.named or not hasattr(atom, "args"):
        raise RowError('give the values in column order, e.g. "vm1", 2 (no column=value)')
    out = []
    for term in atom.args:
        if isinstance(term, Constant):
            out.append(term.value)
        elif isinstance(term, Variable) and term.anonymous:
            out.append(ANY)
        elif isinstance(term, Variable):
            raise RowError(f"{term.name} is a variable, not a value: write \"{term.name}\" (in "
                           "double quotes) for text, or _ to leave the column open")
        else:
            raise RowError(f"{term} is not a value: only text in double quotes, numbers and _")
    return tuple(out)


def _first_line(exc: Exception) -> str:
    text = exc.summary() if hasattr(exc, "summary") else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def row_text(row: tuple | list) -> str:
    """A row as the why-not form shows it back (``_`` for an open column)."""
    return ", ".join("_" if v is ANY or v is None else format_value(v) for v in row)


def explain_url(policy: str, table: str, row: tuple | list) -> str:
    """The Explain page of one row (what the Violations and Overview pages link to)."""
    values = json.dumps([None if v is ANY else v for v in row], separators=(",", ":"))
    return f"/ui/explain/{quote(policy, safe='')}/{quote(table, safe='')}?" + urlencode(
        {"row": values})


def _rule_index(service, policies: set[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(policy, rule text as the engine prints it) -> the stored rule: id, name, comment and
    file:line when known. Call with the lock held."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for live in service.policies.live.values():
        name = live.record.name
        if name not in policies:
            continue
        for rec, rule in live.rules.values():
            span = rule.span
            where = f"{span.file}:{span.line}" if span is not None and span.file else None
            out[(name, str(rule))] = {"id": rec.id, "name": rec.name, "comment": rec.comment,
                                      "where": where}
    return out


def _policies_in(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        if isinstance(node.get("policy"), str):
            found.add(node["policy"])
        for value in node.values():
            _policies_in(value, found)
    elif isinstance(node, list):
        for value in node:
            _policies_in(value, found)
    return found


def _tables_of(service, live) -> list[str]:
    """The tables of a policy the why-not form offers: its violation tables first, then
    every other table its rules define or read within it. Call with the lock held."""
    name = live.record.name
    prefix = f"{name}:"
    found = {t.removeprefix(prefix) for t in service.engine.tables() if t.startswith(prefix)}
    found |= set(service.policies.tables(live.record.id))
    first = [t for t in VIOLATION_TABLES if t in found]
    return first + sorted(found - set(first))


def _explain(service, policy: str, table: str, row: tuple, alternatives: bool,
             examples: int) -> tuple[dict, dict[tuple[str, str], dict[str, Any]]]:
    with service.lock:
        name = service.policies.get(policy).record.name
        qualified = f"{name}:{table}"
        engine = service.engine
        if not engine.has_table(qualified):
            raise RowError(f"policy {name} has no table {table}; its tables are listed in "
                           "the form below")
        arity = engine.arity(qualified)
        if arity is not None and len(row) != arity:
            columns = engine.schemas.columns(name, table)
            hint = f" ({', '.join(columns)})" if columns and len(columns) == arity else ""
            raise RowError(f"the row has {len(row)} value{'s' if len(row) != 1 else ''}; "
                           f"{qualified} has {arity} column{'s' if arity != 1 else ''}{hint}")
        try:
            result = explain(engine, qualified, row, alternatives=alternatives,
                             examples=examples).to_json()
        except DataError as exc:
            raise RowError(str(exc)) from None
        return result, _rule_index(service, _policies_in(result, {name}))


@router.get("/explain/{policy}")
def whynot_form(request: Request, user: Viewer, policy: str, table: str | None = None,
                values: str | None = None) -> Response:
    """The why-not form's target (a GET form cannot put the table in the path): a row that
    parses goes to its Explain page; otherwise the form again with the error."""
    if table and values is not None:
        try:
            row = parse_row(values)
        except RowError as exc:
            return _page(request, policy, table, None, values, str(exc), False, 3, status=400)
        return RedirectResponse(explain_url(policy, table, row), status_code=303)
    return _page(request, policy, table or "error", None, values or "", None, False, 3)


@router.get("/explain/{policy}/{table}")
def explain_page(request: Request, user: Viewer, policy: str, table: str,
                 row: str | None = None, alternatives: str | None = None,
                 examples: str | None = None) -> Response:
    """The proof tree of ``row`` (a JSON list) in ``policy:table``, or why it is not there."""
    problem = None
    parsed = None
    typed = ""
    count = 3
    if examples:
        try:
            count = int(examples)
            if not 0 <= count <= MAX_EXAMPLES:
                raise ValueError
        except ValueError:
            problem = f"examples must be an integer from 0 to {MAX_EXAMPLES}, not {examples!r}"
    if row is None:
        problem = problem or "which row? Type its values below"
    else:
        try:
            parsed = parse_row(row)
            typed = row_text(parsed)
        except RowError as exc:
            problem = problem or str(exc)
            typed = row
    wanted = alternatives in ("1", "true", "yes", "on")
    return _page(request, policy, table, None if problem else parsed, typed, problem,
                 wanted, count, status=400 if problem and row is not None else 200)


def _page(request: Request, policy: str, table: str, row: tuple | None, typed: str,
          problem: str | None, alternatives: bool, examples: int,
          status: int = 200) -> Response:
    service = request.app.state.service
    with service.lock:
        live = service.policies.get(policy)  # an unknown policy: the 404 page in words
        name = live.record.name
        tables = _tables_of(service, live)
        columns = service.engine.schemas.columns(name, table) if table in tables else None
    result = None
    rules: dict[tuple[str, str], dict[str, Any]] = {}
    if row is not None and problem is None:
        try:
            result, rules = _explain(service, name, table, row, alternatives, examples)
        except RowError as exc:
            problem = str(exc)
            status = 400
        except ServiceError as exc:
            problem, status = exc.message, exc.status
    return render(request, "explain.html", {
        "title": f"Explain {name}:{table}", "policy": name, "table": table, "tables": tables,
        "columns": columns, "typed": typed, "problem": problem, "result": result,
        "rules": rules, "alternatives": alternatives, "examples": examples,
        "open_levels": OPEN_LEVELS, "row_text": row_text,
        "is_violation": table in VIOLATION_TABLES,
    }, status=status)
