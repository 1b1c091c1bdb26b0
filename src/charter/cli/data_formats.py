"""Data files of one table (NDJSON, CSV, Parquet) read row by row, and JSON places found fast.

A JSON or YAML data file maps ``name:table`` to rows; a file of another format holds one
table, named by the file's name without its suffix: ``nova:servers.parquet``,
``cloud:ports.csv``, ``ops:exempt.ndjson``.

- NDJSON (``.ndjson``, ``.jsonl``): a row a line, each a list or an object as in a JSON file,
  with the same values; blank lines are skipped.
- CSV (``.csv``): a header naming the columns, then a row a record (objects, in the JSON
  file's terms). A field is an integer when written as a JSON integer (``-12``; not
  ``007``, which stays text), a float when written as another JSON number (``1.5``,
  ``2e3``), omitted (None) when empty, else the text as it is (``true`` stays ``"true"``).
- Parquet (``.parquet``): rows are objects of the file's columns; integers, floats and
  strings as they are, booleans as the JSON file's (``"True"``/``"False"``), a null an
  omitted value (None), any other type as its text (a date as ``2024-01-01``).

These readers are the exact ones (every bad row reported with its place: ``file:line:col``
for NDJSON and CSV, the row number for Parquet); :mod:`charter.cli.data_columns` reads the
same files into columns first and comes here only when something is wrong.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from charter.lang import limits

__all__ = [
    "COLUMNAR_SUFFIXES",
    "NDJSON_SUFFIXES",
    "ONE_TABLE_SUFFIXES",
    "csv_value",
    "json_place",
    "read_one_table_file",
    "table_of_file",
]

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
COLUMNAR_SUFFIXES = (".parquet",)
ONE_TABLE_SUFFIXES = (*NDJSON_SUFFIXES, ".csv", *COLUMNAR_SUFFIXES)

_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def table_of_file(path: str) -> str:
    """The ``name:table`` a one-table file holds: its name less the suffix.

    Raises:
        DataFileError: the name is not ``name:table``.
    """
    from charter.cli.loading import DataFileError, _message

    stem = Path(path).stem
    name, _, table = stem.partition(":")
    if not name or not table:
        suffix = Path(path).suffix
        message = (
            f"a {suffix} data file holds one table, named by the file's name as name:table; "
            f"rename {Path(path).name} (e.g. to nova:servers{suffix})"
        )
        raise DataFileError([_message(path, "data_invalid", message)])
    return stem


def csv_value(text: str) -> Any:
    """A CSV field as a data value: a JSON integer an int, another JSON number a float
    (text when past a float's range), empty omitted (OMITTED), anything else the text.

    >>> [csv_value(v) for v in ["12", "-0", "007", "1.5", "2e3", "1e999", "true", "x"]]
    [12, 0, '007', 1.5, 2000.0, '1e999', 'true', 'x']
    """
    from charter.cli.loading import OMITTED

    if not text:
        return OMITTED
    if _INT.fullmatch(text):
        if len(text.lstrip("-")) <= limits.current().max_int_digits:
            return int(text)
        return text
    if _NUMBER.fullmatch(text):
        value = float(text)
        return value if abs(value) != float("inf") else text
    return text


def read_one_table_file(path: str) -> list:
    """The one table of an NDJSON, CSV or Parquet file as a DataTable of rows.

    Raises:
        DataFileError: the file cannot be read, is not ``name:table``-named, or has bad
            rows (malformed JSON, a CSV record of the wrong length), each with its place.
    """
    from charter.cli.loading import DataFileError, DataTable, _message

    table = table_of_file(path)
    suffix = Path(path).suffix.lower()
    if suffix in COLUMNAR_SUFFIXES:
        rows = _parquet_rows(path)
        return [DataTable(table, rows, lambda index: path)]
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or exc}"
        raise DataFileError([_message(path, "file_error", message)]) from None
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        raise DataFileError([_message(path, "file_error", message)]) from None
    if suffix == ".csv":
        rows, places = _csv_rows(path, table, text)
    else:
        rows, places = _ndjson_rows(path, text)
    return [DataTable(table, rows, _places(path, places))]


def _places(path: str, places: list[tuple[int, int]]) -> Callable[[int | None], str]:
    def locate(index: int | None) -> str:
        if index is None or index >= len(places):
            return path
        line, col = places[index]
        return f"{path}:{line}:{col}"

    return locate


def _raise(errors: list[str]) -> None:
    from charter.cli.loading import _raise_data_errors

    _raise_data_errors(errors)


def _ndjson_rows(path: str, text: str) -> tuple[list[Any], list[tuple[int, int]]]:
    from charter.cli.loading import _message

    rows: list[Any] = []
    places: list[tuple[int, int]] = []
    errors: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped:
            continue
        col = len(line) - len(line.lstrip()) + 1
        duplicates: list[str] = []

        def pairs(items: list[tuple[str, Any]], duplicates: list[str] = duplicates) -> dict:
            out: dict[str, Any] = {}
            for key, value in items:
                if key in out:
                    duplicates.append(key)
                out[key] = value
            return out

        try:
            row = limits.load_json(line, path, object_pairs_hook=pairs)
        except limits.InputError as exc:
            place = f"{path}:{number}:{exc.col}" if exc.col is not None else f"{path}:{number}"
            errors.append(_message(place, exc.code, exc.message))
            continue
        except json.JSONDecodeError as exc:
            message = f"malformed JSON: {exc.msg}"
            errors.append(_message(f"{path}:{number}:{exc.colno}", "data_syntax", message))
            continue
        if duplicates:
            message = f"key {duplicates[0]!r} appears twice in one object; keep one"
            errors.append(_message(f"{path}:{number}:{col}", "duplicate_key", message))
            continue
        rows.append(row)
        places.append((number, col))
    _raise(errors)
    return rows, places


def _csv_rows(path: str, table: str, text: str) -> tuple[list[Any], list[tuple[int, int]]]:
    from charter.cli.loading import _message

    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[Any] = []
    places: list[tuple[int, int]] = []
    errors: list[str] = []
    header: list[str] | None = None
    line = 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not record:
                continue
            if header is None:
                header = record
                problem = _header_problem(header)
                if problem:
                    raise_at = _message(f"{path}:{start}:1", "data_invalid", problem)
                    raise _HeaderError(raise_at)
                continue
            if len(record) != len(header):
                message = (
                    f"row {len(rows) + len(errors) + 1} of {table} has {len(record)} values; "
                    f"the header names {len(header)} columns: {', '.join(header)}"
                )
                errors.append(_message(f"{path}:{start}:1", "arity_mismatch", message))
                continue
            rows.append(dict(zip(header, map(csv_value, record), strict=True)))
            places.append((start, 1))
    except csv.Error as exc:
        message = f"malformed CSV: {exc}"
        errors.append(_message(f"{path}:{reader.line_num}", "data_syntax", message))
    except _HeaderError as exc:
        errors.append(str(exc))
    _raise(errors)
    return rows, places


class _HeaderError(Exception):
    pass


def _header_problem(header: list[str]) -> str | None:
    if any(not name for name in header):
        return "the header names a column with empty text; name every column"
    repeated = sorted({n for n in header if header.count(n) > 1})
    if repeated:
        return f"the header names column {repeated[0]} twice; name each column once"
    return None


def _parquet_rows(path: str) -> list[dict[str, Any]]:
    import duckdb

    from charter.cli.loading import OMITTED, DataFileError, _message

    con = duckdb.connect()
    try:
        relation = con.execute("SELECT * FROM read_parquet(?)", [path])
        names = [d[0] for d in relation.description]
        records = relation.fetchall()
    except duckdb.Error as exc:
        message = f"cannot read {path} as Parquet: {str(exc).splitlines()[0]}"
        raise DataFileError([_message(path, "file_error", message)]) from None
    finally:
        con.close()
    return [
        {n: OMITTED if v is None else v for n, v in zip(names, record, strict=True)}
        for record in records
    ]


# ---------------------------------------------------------------- JSON places

_WS = re.compile(r"[ \t\n\r]*")
_BREAKS = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")
_ODD_BREAKS = re.compile(r"[\r\x85\u2028\u2029]")


def json_place(text: str, key: str, index: int | None) -> int | None:
    """The offset of the last top-level ``key`` of a JSON object (``index`` None), or of
    row ``index`` of its list; None when the text is not such an object or lacks it.

    Steps over values with :mod:`json`'s C scanner, so finding a row near the end of a
    million costs about a parse of the text (composing it as YAML, which finds the same
    place, would take a minute and gigabytes).
    """
    decoder = json.JSONDecoder()
    pos = _WS.match(text).end()
    if text[pos : pos + 1] != "{":
        return None
    pos = _WS.match(text, pos + 1).end()
    found: tuple[int, int] | None = None
    try:
        while text[pos : pos + 1] == '"':
            name, after = json.decoder.scanstring(text, pos + 1)
            after = _WS.match(text, after).end()
            if text[after : after + 1] != ":":
                return None
            value = _WS.match(text, after + 1).end()
            if name == key:
                found = (pos, value)
            _, end = decoder.raw_decode(text, value)
            pos = _WS.match(text, end).end()
            if text[pos : pos + 1] != ",":
                break
            pos = _WS.match(text, pos + 1).end()
    except (ValueError, RecursionError):
        return None
    if found is None:
        return None
    if index is None:
        return found[0]
    pos = found[1]
    if text[pos : pos + 1] != "[":
        return None
    pos = _WS.match(text, pos + 1).end()
    try:
        for _ in range(index):
            _, end = decoder.raw_decode(text, pos)
            pos = _WS.match(text, end).end()
            if text[pos : pos + 1] != ",":
                return None
            pos = _WS.match(text, pos + 1).end()
    except (ValueError, RecursionError):
        return None
    return pos if pos < len(text) and text[pos] != "]" else None


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` as YAML counts them (a line ends at LF, CR LF,
    CR, NEL, LS or PS), so a place matches the one composing the text as YAML gives."""
    if not _ODD_BREAKS.search(text, 0, offset):  # LF only: count them in C
        return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1
    line, start = 1, 0
    for found in _BREAKS.finditer(text, 0, offset):
        if found.end() > offset:
            break
        line += 1
        start = found.end()
    return line, offset - start + 1
