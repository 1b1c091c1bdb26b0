"""The fast path of ``--data``: data files read into NumPy columns, checked set at a time.

:mod:`charter.cli.loading` reads a data file into Python rows and checks and converts them
one value at a time (the exact reader: every bad row gets its ``file:line:col``). At a
million rows that costs seconds, so ``load_workspace`` first tries this path:

- JSON is parsed a few megabytes at a time (chunks cut at row boundaries and verified by
  the parse itself), NDJSON a block of lines at a time: a chunk of lists of integers by
  NumPy (its grammar checked in NumPy passes, :func:`_int_rows`), any other by orjson, whose
  rows become columns with C-level passes (``map(type, ...)`` over one flat list of the
  values), never a Python loop over values when the values have one type; YAML by the exact
  reader's parser, then the same;
- Parquet is read by DuckDB straight into columns; CSV by :mod:`csv` a block of records at a
  time, a column of integers or of text typed in one go;
- the columns are checked against the engine's schemas and arities table by table, and
  loaded with :meth:`Engine.load_columns`.

Values become exactly what the exact reader makes of them (``loading._value``): ints, floats
and strings as they are, ``true``/``false``/``null`` as the strings ``"True"``/``"False"``/
``"None"``, an omitted column None. Whenever this path meets anything it does not handle
exactly (a bad row, a nested value, an unknown column, an integer orjson would round), it
gives up (None) and the caller runs the exact reader on every file, which either loads the
same rows or reports every problem with its place; nothing is loaded before that.
"""

from __future__ import annotations

import csv
import io
import json
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from charter.cli.data_formats import (
    COLUMNAR_SUFFIXES,
    NDJSON_SUFFIXES,
    QualifiedTable,
    csv_value,
    table_of_file,
)
from charter.cli.loading import OMITTED, DataFileError, _value
from charter.engine import Engine
from charter.lang import limits

__all__ = ["ColumnTable", "engine_columns", "read_columns"]

CHUNK_BYTES = 4 << 20
"""JSON text parsed at once: bounds the Python objects alive at a time (about 10x the text)."""

_BOM = b"\xef\xbb\xbf"
_WS = re.compile(rb"[ \t\n\r]*")
_KEY = re.compile(rb'("(?:[^"\\\x00-\x1f]|\\.)*")[ \t\n\r]*:[ \t\n\r]*')
# The end of a row followed by the next row's start, or by the end of the table's array.
_BOUNDARY = re.compile(rb"[\]}][ \t\n\r]*(?:,[ \t\n\r]*(?=[\[{])|(\]))")
# The end of the table's array after a list row or an object row (a literal first character
# lets the regex engine skip ahead fast).
_ENDS = (re.compile(rb"\][ \t\n\r]*\]"), re.compile(rb"}[ \t\n\r]*\]"))
_KEYS_WRITTEN = re.compile(rb'"[ \t\n\r]*:')
_SPACED_KEY = re.compile(rb'"[ \t\n\r]+:')
_QUOTE_SPACES = (b'" ', b'"\t', b'"\n', b'"\r')
# Digits to "0", anything else to " ": runs of digits found with bytes.find (orjson makes a
# float of an integer past 64 bits, so a chunk with a 19-digit run goes to json.loads).
_DIGITS = bytes(ord("0") if chr(b).isdigit() and b < 128 else ord(" ") for b in range(256))
_RETRIES = 16


class _Refused(Exception):
    """Something this path does not handle exactly: the exact reader takes over."""


def _refuse_constant(text: str) -> Any:
    raise _Refused(text)


@dataclass
class ColumnTable(QualifiedTable):
    """One ``name:table`` of a data file as columns.

    ``names`` are the columns the rows name (objects, a CSV header, a Parquet schema), in
    the order they first appear; None when rows are positional lists, then ``width`` is
    their length. ``complete`` is False when some object left a named column out (OMITTED
    there).
    """

    table: str
    path: str
    names: tuple[str, ...] | None = None
    width: int | None = None
    complete: bool = True
    chunks: list[dict[str | int, np.ndarray]] = field(default_factory=list)
    length: int = 0

    def object_columns(self) -> tuple[str, ...] | None:
        return self.names if self.length else None  # as rows: no row, no columns declared

    def first_width(self) -> int | None:
        return self.width if self.names is None and self.length else None

    # ------------------------------------------------------------ building

    def add_rows(self, rows: list) -> None:
        """Add a chunk of Python rows (all lists or all objects), or raise _Refused."""
        if not rows:
            return
        kinds = set(map(type, rows))
        if kinds == {list}:
            self._add_lists(rows)
        elif kinds == {dict}:
            self._add_objects(rows)
        else:
            raise _Refused("rows of mixed or scalar kinds")
        self.length += len(rows)

    def _add_lists(self, rows: list[list]) -> None:
        if self.names is not None:
            raise _Refused("lists after objects")
        widths = set(map(len, rows))
        if len(widths) != 1 or (self.width is not None and widths != {self.width}):
            raise _Refused("rows of several widths")
        self.width = widths.pop()
        if self.width == 0:
            raise _Refused("empty rows")
        flat = list(chain.from_iterable(rows))
        self.chunks.append(dict(enumerate(_flat_columns(flat, len(rows), self.width))))

    def _add_objects(self, rows: list[dict]) -> None:
        if self.width is not None:
            raise _Refused("objects after lists")
        keys = tuple(dict.fromkeys(chain.from_iterable(rows)))
        if not keys or not all(type(k) is str for k in keys):
            raise _Refused("keys that are not strings")
        first = tuple(rows[0])
        known = self.names or ()
        self.names = known + tuple(k for k in keys if k not in known)
        chunk: dict[str | int, np.ndarray] | None = None
        if len(keys) == len(first) and sum(map(len, rows)) == len(rows) * len(first):
            getter = operator.itemgetter(*first)
            try:  # every object has exactly the first one's keys
                if len(first) > 1:
                    flat = list(chain.from_iterable(map(getter, rows)))
                else:
                    flat = list(map(getter, rows))
            except KeyError:
                flat = None
            if flat is not None:
                columns = _flat_columns(flat, len(rows), len(first))
                chunk = dict(zip(first, columns, strict=True))
        if chunk is None:
            self.complete = False
            chunk = {
                k: _column(tuple(map(operator.methodcaller("get", k, OMITTED), rows))) for k in keys
            }
        self.chunks.append(chunk)

    def add_array(self, rows: np.ndarray) -> None:
        """Add a chunk of list rows already parsed into an (n, width) array."""
        if self.width is not None and rows.shape[1] != self.width:
            raise _Refused("rows of several widths")
        self.width = rows.shape[1]
        self.chunks.append({i: np.ascontiguousarray(rows[:, i]) for i in range(self.width)})
        self.length += len(rows)

    def add_columns(self, columns: dict[str, np.ndarray], length: int) -> None:
        """Add a chunk already in columns (CSV, Parquet), every named column present."""
        self.names = self.names or tuple(columns)
        self.chunks.append(columns)
        self.length += length

    # ------------------------------------------------------------ reading out

    def every_row_has(self, names: Sequence[str]) -> bool:
        """Whether every row has exactly these columns (none omitted, none more)."""
        wanted = set(names)
        return self.complete and all(set(chunk) == wanted for chunk in self.chunks)

    def column(self, key: str | int) -> np.ndarray:
        """One column over every chunk (OMITTED, i.e. None, where a chunk lacks it)."""
        parts = []
        for chunk in self.chunks:
            part = chunk.get(key)
            if part is None:
                n = len(next(iter(chunk.values())))
                part = np.full(n, None, dtype=object)
            parts.append(part)
        return _concatenate(parts)


def _concatenate(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Columns joined without changing a value's type (an int stays an int beside floats)."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return np.empty(0, dtype=object)
    if len({p.dtype for p in parts}) > 1:
        parts = [p.astype(object) for p in parts]
    return np.concatenate(parts)


def _flat_columns(flat: list, n: int, width: int) -> list[np.ndarray]:
    """The columns of ``n`` rows of ``width`` values laid out row after row in ``flat``:
    when every value has one type, one typed array cut into columns (no Python loop),
    else each column typed on its own by :func:`_column`."""
    kinds = set(map(type, flat))
    array: np.ndarray | None = None
    if len(kinds) == 1:
        kind = next(iter(kinds))
        if kind is int:
            try:
                array = np.array(flat, dtype=np.int64)
            except OverflowError:
                array = None
        elif kind is float:
            array = np.array(flat, dtype=np.float64)
            if not np.isfinite(array).all():
                raise _Refused("not finite")
        elif kind is str:
            array = np.empty(len(flat), dtype=object)
            array[:] = flat
        elif kind is bool:
            array = np.where(np.array(flat, dtype=bool), "True", "False").astype(object)
    if array is not None:
        table = array.reshape(n, width)
        return [np.ascontiguousarray(table[:, i]) for i in range(width)]
    if kinds & {list, dict}:
        raise _Refused("a list or an object in a column")
    values = np.empty(len(flat), dtype=object)
    values[:] = flat
    table = values.reshape(n, width)
    return [_column(table[:, i].tolist()) for i in range(width)]


def _column(values: Sequence[Any]) -> np.ndarray:
    """A column's values as the exact reader makes them (``loading._value``): a typed array
    when they share one type, else an object array; _Refused for a list or an object."""
    kinds = set(map(type, values))
    if len(kinds) == 1:
        kind = next(iter(kinds))
        if kind is int:
            try:
                return np.array(values, dtype=np.int64)
            except OverflowError:
                return np.array(values, dtype=object)
        if kind is str:
            column = np.empty(len(values), dtype=object)
            column[:] = values
            return column
        if kind is float:
            array = np.array(values, dtype=np.float64)
            if not np.isfinite(array).all():  # the exact reader says what to do
                raise _Refused("not finite")
            return array
        if kind is bool:  # as Congress's drivers stored them
            return np.where(np.array(values, dtype=bool), "True", "False").astype(object)
    if kinds & {list, dict}:
        raise _Refused("a list or an object in a column")
    if float in kinds and not all(v == v and abs(v) != float("inf") for v in values
                                  if type(v) is float):  # fmt: skip
        raise _Refused("not finite")
    column = np.empty(len(values), dtype=object)
    column[:] = [_value(v) for v in values]
    return column


# ---------------------------------------------------------------- JSON


_INT_ROW_BYTES = b"0123456789-,[] \t\n\r"
_SPLIT_NUMBER = re.compile(rb"[0-9-][ \t\n\r]+[0-9-]")  # "1 2", "- 1": one number unspaced
_OPEN, _CLOSE, _COMMA, _MINUS, _ZERO = b"[],-0"


def _int_rows(text: bytes) -> np.ndarray | None:
    """Rows that are lists of JSON integers of one width, as an (n, width) int64 array
    parsed by NumPy (no Python object a value); None for any other text.

    The text is proved to be exactly such rows by a few NumPy passes over its bytes (the
    grammar ``row (, row)*``, ``row = [ int (, int)* ]``, ``int = -?(0|[1-9][0-9]*)``: so
    ``01``, ``1.0``, ``[]`` or ``1 2`` are refused, as json refuses them), with no integer
    of 19 digits or more (every one fits an int64)."""
    if not text.startswith(b"[") or text.translate(None, _INT_ROW_BYTES):
        return None
    if text.translate(_DIGITS).find(b"0" * min(19, limits.current().max_int_digits + 1)) >= 0:
        return None
    compact = text.translate(None, b" \t\n\r")
    if len(compact) != len(text) and _SPLIT_NUMBER.search(text):
        return None
    a = np.frombuffer(compact, dtype=np.uint8)
    digit = (a >= ord("0")) & (a <= ord("9"))
    opens = np.flatnonzero(a == _OPEN)
    closes = np.flatnonzero(a == _CLOSE)
    if len(closes) != len(opens) or closes[-1] != len(a) - 1 or (closes < opens).any():
        return None
    if (opens[1:] != closes[:-1] + 2).any() or (a[closes[:-1] + 1] != _COMMA).any():
        return None  # rows follow each other as "],[" (so none nests)
    comma = a == _COMMA
    comma[closes[:-1] + 1] = False  # the commas inside rows
    inner = np.flatnonzero(comma)
    widths = np.diff(np.searchsorted(inner, closes), prepend=0) + 1  # rows do not nest
    width = int(widths[0])
    if (widths != width).any():
        return None
    starts = np.concatenate([opens, inner]) + 1  # where each number starts
    minus = np.flatnonzero(a == _MINUS)
    numbers = np.concatenate([starts[a[starts] != _MINUS], minus + 1])  # first digits
    if not (
        digit[starts[a[starts] != _MINUS]].all()
        and digit[minus + 1].all()
        and np.isin(a[minus - 1], (_OPEN, _COMMA)).all()
        and digit[closes - 1].all()
        and digit[inner - 1].all()
        and not ((a[numbers] == _ZERO) & digit[numbers + 1]).any()
    ):
        return None
    values = np.fromstring(compact.translate(None, b"[]"), dtype=np.int64, sep=",")
    if len(values) != len(opens) * width:  # pragma: no cover - proved above
        return None
    return values.reshape(len(opens), width)


def _parse_chunk(text: bytes) -> list:
    """The rows of ``[`` + text + ``]``, parsed as :mod:`json` would (orjson, unless an
    integer may be past 64 bits, which orjson would make a float)."""
    wrapped = b"[" + text + b"]"
    digits = text.translate(_DIGITS)
    if digits.find(b"0" * (limits.current().max_int_digits + 1)) >= 0:
        raise _Refused("an integer past the limit (or as many digits in a string)")
    if digits.find(b"0" * 19) >= 0:  # 19 digits in a row, in a number or a string
        if b"\\u" in text:  # json.loads, unlike orjson, takes a lone surrogate (\\ud800)
            raise _Refused("an escape the exact reader checks")
        return json.loads(wrapped, parse_constant=_refuse_constant)
    return orjson.loads(wrapped)


def _json_table(table: ColumnTable, data: bytes, pos: int) -> int:
    """Read the rows of the array at ``data[pos] == '['`` into ``table``; the offset after
    its ``]``. A chunk ends at a row's closing bracket followed by ``,`` and the next row, or
    by the array's ``]``: a chunk that parses whole is exactly the rows it holds (a cut inside
    a string or a row would leave an unterminated value), else it grows to the next cut."""
    pos = _WS.match(data, pos + 1).end()
    if data[pos : pos + 1] == b"]":
        return pos + 1
    while True:
        far = _BOUNDARY.search(data, pos + CHUNK_BYTES)
        limit = far.start() if far else len(data)
        ends = [m for m in (e.search(data, pos, limit) for e in _ENDS) if m is not None]
        cut = min(ends, key=lambda m: m.start()) if ends else far
        for _ in range(_RETRIES):
            if cut is None:
                raise _Refused("no end of the table")
            text = data[pos : cut.start() + 1]
            numbers = _int_rows(text) if table.names is None else None
            if numbers is not None:
                rows = []
                table.add_array(numbers)
                break
            try:
                rows = _parse_chunk(text)
            except (orjson.JSONDecodeError, json.JSONDecodeError):
                cut = _BOUNDARY.search(data, cut.start() + 1)  # the cut was inside a value
                continue
            break
        else:
            raise _Refused("no row boundary")
        _check_keys(text, rows)
        table.add_rows(rows)
        del rows
        if cut.re in _ENDS or cut.group(1) is not None:  # the table's closing bracket
            return cut.end()
        pos = cut.end()


def _check_keys(text: bytes, rows: list) -> None:
    """Refuse objects that wrote a key twice (orjson keeps the last one silently): every
    key written is a string then a colon, so as many of those as keys kept means none was
    (a string value holding ``":`` makes this refuse too, leaving it to the exact reader).
    Rows that are not all objects are refused when added."""
    if rows and set(map(type, rows)) == {dict}:
        written = text.count(b'":')  # in C; a key spaced from its colon is counted apart
        if any(quote in text for quote in _QUOTE_SPACES) and _SPACED_KEY.search(text):
            written = sum(1 for _ in _KEYS_WRITTEN.finditer(text))
        if written != sum(map(len, rows)):
            raise _Refused("a key written twice in an object, or an odd string")


def _json_tables(path: str, data: bytes) -> list[ColumnTable]:
    """The tables of a JSON data file: one object of ``name:table`` -> list of rows."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    pos = _WS.match(data).end()
    if data[pos : pos + 1] != b"{":
        raise _Refused("not an object")
    pos = _WS.match(data, pos + 1).end()
    tables: dict[str, ColumnTable] = {}
    closed = data[pos : pos + 1] == b"}"
    while not closed:
        found = _KEY.match(data, pos)
        if found is None:
            raise _Refused("not a key")
        key = orjson.loads(found.group(1))
        if key in tables or ":" not in key or key.startswith(":") or key.endswith(":"):
            raise _Refused("a key the exact reader reports")
        pos = found.end()
        if data[pos : pos + 1] != b"[":
            raise _Refused("not a list of rows")
        table = tables[key] = ColumnTable(key, path)
        pos = _WS.match(data, _json_table(table, data, pos)).end()
        if data[pos : pos + 1] == b",":
            pos = _WS.match(data, pos + 1).end()
        elif data[pos : pos + 1] == b"}":
            closed = True
        else:
            raise _Refused("no comma or end of the object")
    if _WS.match(data, pos + 1).end() != len(data):
        raise _Refused("text after the object")
    return list(tables.values())


def _ndjson_table(path: str, data: bytes) -> list[ColumnTable]:
    """One table, a JSON row a line, read a block of lines at a time."""
    table = ColumnTable(table_of_file(path), path)
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + CHUNK_BYTES)
        end = len(data) if end < 0 else end + 1
        lines = [line for line in data[start:end].split(b"\n") if line.strip()]
        start = end
        if not lines:
            continue
        text = b",".join(lines)
        numbers = _int_rows(text) if table.names is None else None
        if numbers is not None and len(numbers) == len(lines):  # not "[1]" + "[2]" a line
            table.add_array(numbers)
            continue
        try:
            rows = _parse_chunk(text)
        except (orjson.JSONDecodeError, json.JSONDecodeError):
            raise _Refused("malformed line") from None
        if len(rows) != len(lines):  # a line holding two values, "1,2"
            raise _Refused("a line of several values")
        _check_keys(text, rows)
        table.add_rows(rows)
    return [table]


def _exact_tables(path: str) -> list[ColumnTable]:
    """YAML through the exact reader's parser (its checks), then columns."""
    from charter.cli.loading import DataFileError, read_data_file

    try:
        exact = read_data_file(path)
    except DataFileError:
        raise _Refused("the exact reader reports it") from None
    tables = []
    for data_table in exact:
        table = ColumnTable(data_table.table, path)
        table.add_rows(data_table.rows)
        tables.append(table)
    return tables


# ---------------------------------------------------------------- CSV and Parquet

CSV_CHUNK_ROWS = 100_000
_CSV_INTS = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\n-?(?:0|[1-9][0-9]*))*")
# A value csv_value would not keep as text: empty, or a JSON number (a line of them all).
_CSV_NOT_TEXT = re.compile(r"^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)?$", re.M)


def _csv_table(path: str) -> list[ColumnTable]:
    """A CSV file (one table, named by the file's stem) parsed by :mod:`csv` as the exact
    reader parses it, a block of records at a time, each column typed in one go when its
    values are all JSON integers or all other text (else value by value, as
    :func:`~charter.cli.data_formats.csv_value` types them)."""
    table = ColumnTable(table_of_file(path), path)
    text = Path(path).read_bytes().decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    try:
        while batch := list(islice(reader, CSV_CHUNK_ROWS)):
            records = [r for r in batch if r]  # blank lines are skipped
            if header is None and records:
                header = records.pop(0)
                if len(set(header)) != len(header) or not all(header):
                    raise _Refused("a header the exact reader reports")
            if not records:
                continue
            assert header is not None
            if set(map(len, records)) != {len(header)}:
                raise _Refused("a record of another length than the header")
            columns = map(_csv_column, zip(*records, strict=True))
            table.add_columns(dict(zip(header, columns, strict=True)), len(records))
    except csv.Error:
        raise _Refused("malformed CSV") from None
    if header is not None and not table.length:
        table.names = tuple(header)
    return [table]


def _csv_column(values: tuple[str, ...]) -> np.ndarray:
    joined = "\n".join(values)
    if joined.count("\n") == len(values) - 1:  # no value holds a line break
        longest = min(18, limits.current().max_int_digits)  # csv_value's limit, an int64's
        if max(map(len, values)) <= longest and _CSV_INTS.fullmatch(joined):
            return np.fromstring(joined.replace("\n", ","), dtype=np.int64, sep=",")
        if not _CSV_NOT_TEXT.search(joined):
            column = np.empty(len(values), dtype=object)
            column[:] = values
            return column
    return _column([csv_value(v) for v in values])


_DUCKDB_INTS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
_DUCKDB_FLOATS = {"FLOAT", "DOUBLE"}


def _parquet_table(path: str) -> list[ColumnTable]:
    """A Parquet file (one table, named by the file's stem) read by DuckDB into columns:
    integers, floats and strings as they are, booleans as the exact reader makes a JSON one
    ("True"/"False"), a null an omitted value (None); any other type is the exact reader's."""
    import duckdb

    table = ColumnTable(table_of_file(path), path)
    con = duckdb.connect()
    try:
        relation = con.execute("SELECT * FROM read_parquet(?)", [path])
        described = relation.description
        types = {d[0]: str(d[1]) for d in described}
        fetched = relation.fetchnumpy()
    except duckdb.Error:
        raise _Refused("DuckDB cannot read it") from None
    finally:
        con.close()
    if len(types) != len(described):
        raise _Refused("a column named twice")
    length = len(next(iter(fetched.values()))) if fetched else 0
    columns = {name: _parquet_column(fetched.pop(name), kind) for name, kind in types.items()}
    if length:
        table.add_columns(columns, length)
    else:
        table.names = tuple(types)
    return [table]


def _parquet_column(values: np.ndarray, kind: str) -> np.ndarray:
    mask = np.ma.getmaskarray(values) if isinstance(values, np.ma.MaskedArray) else None
    data = np.ma.getdata(values)
    if kind in _DUCKDB_INTS or kind == "UBIGINT" and (not len(data) or data.max() < 2**63):
        typed = data.astype(np.int64, copy=False)
    elif kind in _DUCKDB_FLOATS:
        typed = data.astype(np.float64, copy=False)
        if not np.isfinite(typed[~mask] if mask is not None else typed).all():
            raise _Refused("not finite")
    elif kind == "VARCHAR":
        typed = data.astype(object, copy=False)
    elif kind == "BOOLEAN":
        typed = np.where(data.astype(bool), "True", "False").astype(object)
    else:
        raise _Refused(f"a column of {kind}")
    if mask is not None and mask.any():
        typed = typed.astype(object)
        typed[mask] = None
    return typed


# ---------------------------------------------------------------- files and the engine


def read_columns(path: str | Path) -> list[ColumnTable] | None:
    """A data file's tables as columns, or None when the exact reader must read it."""
    name = str(path)
    suffix = Path(name).suffix.lower()
    try:
        if suffix in COLUMNAR_SUFFIXES:
            return _parquet_table(name)
        if suffix == ".csv":
            return _csv_table(name)
        if suffix not in NDJSON_SUFFIXES and suffix != ".json":
            return _exact_tables(name)
        if limits.current().max_depth < 3:  # object, list of rows, row: the exact reader
            return None
        data = Path(name).read_bytes()
        if suffix in NDJSON_SUFFIXES:
            return _ndjson_table(name, data)
        return _json_tables(name, data)
    except (_Refused, DataFileError, OSError, ValueError):
        return None


def engine_columns(
    engine: Engine, tables: Sequence[ColumnTable], policies: Iterable[str]
) -> tuple[dict[str, list[np.ndarray]], dict[str, tuple[str, ...]]] | None:
    """The columns to load, per table in the engine's column order, and the column names
    that objects gave tables without a schema; None when any table breaks a rule the exact
    reader reports (an unknown table or column, a wrong arity), so that it reports it."""
    names = set(policies)
    parts: dict[str, list[list[np.ndarray]]] = {}
    arities: dict[str, int | None] = {}
    keys: dict[str, tuple[str, ...]] = {}
    for table in tables:
        module, name = table.module, table.name
        schema = engine.schemas.columns(module, name)
        if schema is None and module not in names and engine.schemas.is_complete(module):
            return None
        arity = arities.get(table.table, engine.arity(table.table))
        if table.names is None:
            expected = len(schema) if schema is not None else arity
            if table.length and expected is not None and table.width != expected:
                return None
            width = table.width if table.length else expected
            columns: list[np.ndarray] = [table.column(i) for i in range(width or 0)]
        elif schema is not None:
            if set(table.names) - set(schema):
                return None
            columns = [table.column(c) for c in schema]
        else:
            order = keys.get(table.table, table.names)
            if table.length and not table.every_row_has(order):
                return None
            if table.length and arity is not None and len(order) != arity:
                return None
            if table.length:
                keys[table.table] = order
            columns = [table.column(c) for c in order]
        table.chunks = []  # the columns hold the values now: free the chunks' arrays
        if table.length:
            arities[table.table] = len(columns)
            parts.setdefault(table.table, []).append(columns)
        else:
            parts.setdefault(table.table, [])
    loaded: dict[str, list[np.ndarray]] = {}
    for table_name, pieces in parts.items():
        width = len(pieces[0]) if pieces else 0
        loaded[table_name] = [_concatenate([p[i] for p in pieces]) for i in range(width)]
    return loaded, keys
