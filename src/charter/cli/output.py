"""How the CLI prints: rows as JSON or Rich tables, diagnostics as the compiler renders them.

Rows hold strings and numbers mixed, so they sort with :func:`row_key`, which orders by
kind first and never compares a string with a number.

>>> sort_rows([("b", 2), (10, "x"), ("a", 1), (2.5, "y")])
[(2.5, 'y'), (10, 'x'), ('a', 1), ('b', 2)]
>>> print(format_json({"p:error": [("b",), (1,)]}))
{
  "p:error": [
    [1],
    ["b"]
  ]
}
>>> summary([])
'0 errors, 0 warnings'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from charter.cli.loading import DataFileError
from charter.lang.errors import Diagnostic, PolicyError


def value_key(value: object) -> tuple:
    """Numbers first (by value), then strings, then anything else by its kind and text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value, "")
    if isinstance(value, str):
        return (1, 0, value)
    return (2, 0, f"{type(value).__name__}:{value!r}")


def row_key(row: Sequence[object]) -> tuple:
    return tuple(value_key(v) for v in row)


def sort_rows(rows: Iterable[Sequence[object]]) -> list:
    return sorted(rows, key=row_key)


def format_json(results: Mapping[str, Iterable[Sequence[object]]]) -> str:
    """One JSON object, keys sorted, each table's rows sorted and one row per line."""
    if not results:
        return "{}"
    parts = []
    for table in sorted(results):
        rows = [json.dumps(list(r), ensure_ascii=False) for r in sort_rows(results[table])]
        body = "[]" if not rows else "[\n" + ",\n".join(f"    {r}" for r in rows) + "\n  ]"
        parts.append(f"  {json.dumps(table, ensure_ascii=False)}: {body}")
    return "{\n" + ",\n".join(parts) + "\n}"


def print_tables(
    console: Console,
    results: Mapping[str, Iterable[Sequence[object]]],
    columns: Callable[[str], Sequence[str] | None],
) -> None:
    """Per queried table, a header ``policy:table (N rows)``, then its rows as a Rich table."""
    for position, (table_name, table_rows) in enumerate(results.items()):
        rows = sort_rows(table_rows)
        if position:
            console.print()
        count = f"{len(rows)} row" + ("" if len(rows) == 1 else "s")
        console.print(Text(f"{table_name} ({count})", style="bold"))
        if not rows:
            continue
        names = columns(table_name)
        if names is None or len(names) != len(rows[0]):
            names = [f"c{i}" for i in range(len(rows[0]))]
        table = Table()
        for name in names:
            table.add_column(Text(name), overflow="fold")
        for row in rows:
            table.add_row(*(Text(_cell(v)) for v in row))
        _print_whole(console, table)


def _print_whole(console: Console, table: Table) -> None:
    """A terminal's width folds long cells; a pipe or a file gets each row whole on one line."""
    if console.is_terminal:
        console.print(table)
        return
    wide = console.options.update_width(1_000_000)
    saved = console.width
    console.width = max(console.measure(table, options=wide).maximum, 1)
    try:
        console.print(table)
    finally:
        console.width = saved


def _cell(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def render_diagnostics(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    """Each diagnostic as ``file:line:col: severity[code]: message``, its line and a caret."""
    out = []
    for diagnostic in diagnostics:
        span = diagnostic.span
        source = sources.get(span.file) if span is not None and span.file else None
        out.append(diagnostic.render(source))
    return "\n".join(out)


def summary(diagnostics: Sequence[Diagnostic]) -> str:
    """``N errors, M warnings``."""
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    return f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def error_text(exc: BaseException, sources: Mapping[str, str]) -> str:
    """What to print on stderr for a user error: located where the error knows its place."""
    if isinstance(exc, PolicyError):
        return render_diagnostics(exc.errors or exc.diagnostics, sources)
    if isinstance(exc, DataFileError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: error[file_error]: {exc.strerror or exc}"
    return f"error: {exc}"
