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

import itertools
import json
import math
import operator
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from charter.cli.loading import DataFileError
from charter.lang.ast import format_value
from charter.lang.errors import CharterError, Diagnostic, PolicyError
from charter.lang.limits import InputError


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
    """Rows in :func:`row_key` order: sorted column by column when each column holds one
    kind (see :func:`_sorted_columns`), else by a key per value."""
    rows = list(rows)
    columns = _sorted_columns(rows)
    if columns is None:
        return sorted(rows, key=row_key)
    return list(zip(*columns[0], strict=True))


_NUMBER = frozenset((int, float))
_STRING = frozenset((str,))


def _sorted_columns(rows: list) -> tuple[list[Sequence[object]], list[frozenset[type]]] | None:
    """The rows' columns in :func:`row_key` order, and each column's exact types; None
    when the rows are not all tuples of one length (at least one) or a column mixes
    kinds, so that only the key per value orders them.

    A column all numbers (no bool, no NaN, which compares with nothing) or all strings
    sorts as :func:`value_key` orders it, so the rows sort as row keys do by stable sorts
    of an index from the last column to the first: each sort compares plain ints or
    strings, which ``list.sort`` does far faster than tuples (2 s against 0.2 s for
    215k one-column rows here).
    """
    if not rows or set(map(type, rows)) != {tuple} or len(set(map(len, rows))) != 1:
        return None
    # by an itemgetter per column: zip(*rows) would make an iterator per row
    columns = [list(map(operator.itemgetter(i), rows)) for i in range(len(rows[0]))]
    kinds = [frozenset(map(type, column)) for column in columns]
    for column, kind in zip(columns, kinds, strict=True):
        if kind <= _NUMBER:
            if float in kind and any(v != v for v in column):
                return None
        elif kind != _STRING:
            return None
    if not columns:
        return None
    if len(columns) == 1:
        return [sorted(columns[0])], kinds
    order = list(range(len(rows)))
    for column in reversed(columns):
        order.sort(key=column.__getitem__)
    if len(order) == 1:
        return columns, kinds
    pick = operator.itemgetter(*order)
    return [pick(column) for column in columns], kinds


_encode_string = json.encoder.encode_basestring  # the C encoder json.dumps uses


def _encode_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


_ENCODERS: dict[frozenset[type], Callable[[Any], str]] = {
    _STRING: _encode_string,
    frozenset((int,)): int.__repr__,
    frozenset((float,)): _encode_float,
}


def _encode_column(column: Sequence[object], kind: frozenset[type]) -> Iterable[str]:
    """Each value as ``json.dumps(value, ensure_ascii=False)`` writes it, by one C
    function over the column when it holds one kind."""
    encoder = _ENCODERS.get(kind)
    if encoder is not None:
        return map(encoder, column)
    return (json.dumps(v, ensure_ascii=False) for v in column)


def _json_rows(rows: list) -> str:
    """The rows, sorted, one a line as ``json.dumps(list(row), ensure_ascii=False)``
    indented four spaces, joined by ``,\\n``: built column by column when they sort so."""
    ordered = _sorted_columns(rows)
    if ordered is None:
        return ",\n".join(
            f"    {json.dumps(list(r), ensure_ascii=False)}" for r in sorted(rows, key=row_key)
        )
    columns, kinds = ordered
    cells = [_encode_column(column, kind) for column, kind in zip(columns, kinds, strict=True)]
    return "    [" + "],\n    [".join(map(", ".join, zip(*cells, strict=True))) + "]"


def format_json(results: Mapping[str, Iterable[Sequence[object]]]) -> str:
    """One JSON object, keys sorted, each table's rows sorted and one row per line."""
    if not results:
        return "{}"
    parts = []
    for table in sorted(results):
        rows = list(results[table])
        body = "[]" if not rows else "[\n" + _json_rows(rows) + "\n  ]"
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
    if isinstance(value, str):
        return value
    if type(value) is int and value.bit_length() > 14_000:
        return format_value(value)  # hex when too large for decimal
    return json.dumps(value)


def render_diagnostics(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    """Each diagnostic as ``file:line:col: severity[code]: message``, its line and a caret."""
    out = []
    for diagnostic in diagnostics:
        span = diagnostic.span
        source = sources.get(span.file) if span is not None and span.file else None
        out.append(render_diagnostic(diagnostic, source))
    return printable("\n".join(out))


SOURCE_WIDTH = 160
"""Characters of a source line shown under a diagnostic; a longer line (a 5,000-digit
literal) is shown as a window around the caret."""


def render_diagnostic(diagnostic: Diagnostic, source: str | None) -> str:
    """As :meth:`Diagnostic.render`, with lines counted as the parser counts them (at
    ``\\n`` only, not at the other breaks ``str.splitlines`` knows, such as U+2028 in a
    string) and a long line cut to a window around the caret.

    >>> from charter.lang.ast import Span
    >>> d = Diagnostic("literal_too_large", "too many digits", Span("p.dl", 1, 500))
    >>> head, line, caret = render_diagnostic(d, "9" * 5000).split("\\n")
    >>> len(line), line[:8], caret.index("^") == len("    ...") + SOURCE_WIDTH // 2
    (170, '    ...9', True)
    """
    text = str(diagnostic)
    span = diagnostic.span
    if source is not None and span is not None:
        lines = source.split("\n")
        if 0 < span.line <= len(lines):
            line = lines[span.line - 1].rstrip("\r")
            col = max(span.col - 1, 0)
            if len(line) > SOURCE_WIDTH:
                start = max(0, min(col - SOURCE_WIDTH // 2, len(line) - SOURCE_WIDTH))
                before = "..." if start else ""
                after = "..." if start + SOURCE_WIDTH < len(line) else ""
                line = before + line[start : start + SOURCE_WIDTH] + after
                col += len(before) - start
            text += f"\n    {line}\n    {' ' * col}^"
    for note in diagnostic.notes:
        text += f"\n    note: {note}"
    return text


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
    if isinstance(exc, DataFileError | InputError | ValueTooLarge):
        return printable(str(exc))
    if isinstance(exc, OSError) and exc.filename:
        return printable(f"{exc.filename}: error[file_error]: {exc.strerror or exc}")
    return printable(f"error: {exc}")


def printable(text: str) -> str:
    r"""Text any UTF-8 stream can write: a lone surrogate (from a file name that is not
    UTF-8, which Python decodes with ``surrogateescape``) is shown as its escape.

    >>> printable("caf\udce9.dl")
    'caf\\udce9.dl'
    """
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ValueTooLarge(CharterError):
    """A row holding an integer too large to print (made by a rule's arithmetic)."""


def check_printable(results: Mapping[str, Iterable[Sequence[object]]]) -> None:
    """Refuse, before printing anything as JSON, rows holding an integer Python will not
    print (over ``sys.get_int_max_str_digits()`` digits; a rule multiplying values can make
    one). Rich tables print such an integer in hex.

    Raises:
        ValueTooLarge: naming the table and the row.
    """
    limit = sys.get_int_max_str_digits()
    if not limit:
        return
    bits = int(limit * 3.3219)  # an int of fewer bits has fewer digits
    for table, rows in results.items():
        if _all_narrow(rows, bits):
            continue
        for row in rows:
            for value in row:
                if type(value) is int and value.bit_length() > bits and not _prints(value):
                    digits = int(value.bit_length() * 0.30103) + 1
                    shown = ", ".join("..." if v is value else _show(v) for v in row)
                    raise ValueTooLarge(
                        f"{table}: error[value_too_large]: row ({shown}) holds an integer of "
                        f"about {digits} digits, made by arithmetic in the policy; integers "
                        f"of over {limit} digits cannot be printed: bound the values a rule "
                        "multiplies (x < 1000000, ...) or compute less"
                    )


def _all_narrow(rows: Iterable[Sequence[object]], bits: int) -> bool:
    """Whether every value is an int of at most ``bits`` bits, asked in C; a value of
    another kind (``int.bit_length`` refuses it) leaves the rows to the loop per value."""
    try:
        return max(map(int.bit_length, itertools.chain.from_iterable(rows)), default=0) <= bits
    except TypeError:
        return False


def _prints(value: int) -> bool:
    try:
        str(value)
    except ValueError:
        return False
    return True


def _show(value: object) -> str:
    if type(value) is int and value.bit_length() > 200:
        return "..."
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
