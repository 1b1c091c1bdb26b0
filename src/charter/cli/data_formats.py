"""Data files read row by row, in every format ``--data`` takes, and where each row is.

A JSON or YAML data file maps ``name:table`` to rows (parsed here, each table a
:class:`DataTable` that can say where its rows are: JSON places are found by stepping over
values, YAML's from its nodes); a file of another format holds one table, named by the
file's name without its suffix: ``nova:servers.parquet``, ``cloud:ports.csv``,
``ops:exempt.ndjson``.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from charter.lang import limits
from charter.lang.errors import DataError
from charter.lang.library import unconstructable

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

MAX_DATA_ERRORS = 20
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# ---------------------------------------------------------------- JSON and YAML files


class QualifiedTable:
    """The two parts of a ``module:table`` name, for a class with a ``table`` field."""

    table: str

    @property
    def module(self) -> str:
        return self.table.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.table.split(":", 1)[1]


@dataclass
class DataTable(QualifiedTable):
    """The rows a data file gives for one ``name:table``, and how to say where each one is."""

    table: str
    rows: list[Any]
    locate: Callable[[int | None], str]

    def where(self, index: int | None = None) -> str:
        """``file:line:col`` of row ``index`` (of the table's key when None), or the file."""
        return self.locate(index)

    def object_columns(self) -> tuple[str, ...] | None:
        """The columns the rows declare: every key of the object rows, in the order they
        first appear (a row may omit some; they are None there). None without objects."""
        keys: dict[str, None] = {}
        for row in self.rows:
            if isinstance(row, dict):
                keys.update(dict.fromkeys(str(k) for k in row))
        return tuple(keys) or None

    def first_width(self) -> int | None:
        """The length of the first row when it is a list."""
        return len(self.rows[0]) if self.rows and isinstance(self.rows[0], list) else None


class _Locator:
    """Finds where a table's key and rows sit in a data file, composing YAML nodes lazily.

    JSON is parsed with :mod:`json` (fast and exact); its positions are found by stepping
    over its values (:func:`json_place`), else by composing the same text as YAML, which is
    only done when an error needs them.
    """

    def __init__(self, path: str, text: str, root: Node | None = None):
        self.path = path
        self.text = text
        self._root = root
        self._composed = root is not None

    def root(self) -> Node | None:
        if not self._composed:  # JSON only, which load_json has bounded: no aliases in it
            self._composed = True
            try:
                self._root = yaml.compose(self.text, Loader=_YamlLoader)
            except yaml.YAMLError:
                self._root = None
        return self._root

    def node(self, key: str, index: int | None) -> Node | None:
        root = self.root()
        if not isinstance(root, MappingNode):
            return None
        found: tuple[Node, Node] | None = None
        for key_node, value_node in root.value:  # the last one wins, as when loading
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                found = (key_node, value_node)
        if found is None:
            return None
        if index is None:
            return found[0]
        rows = found[1]
        if isinstance(rows, SequenceNode) and index < len(rows.value):
            return rows.value[index]
        return None

    def at(self, node: Node | None) -> str:
        if node is None:
            return self.path
        mark = node.start_mark
        return f"{self.path}:{mark.line + 1}:{mark.column + 1}"

    def place(self, key: str, index: int | None) -> str:
        """Where ``key`` (or its row ``index``) is: in JSON found by stepping over values
        (fast at any size), else by composing the text as YAML, which finds the same."""
        if not self._composed:
            offset = json_place(self.text, key, index)
            if offset is not None:
                line, col = line_col(self.text, offset)
                return f"{self.path}:{line}:{col}"
        return self.at(self.node(key, index))

    def locate(self, key: str) -> Callable[[int | None], str]:
        return lambda index: self.place(key, index)


class DataFileError(DataError):
    """Problems of data files, each message already starting with its ``file:line:col``."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("\n".join(messages))


def _message(where: str, code: str, message: str) -> str:
    return f"{where}: error[{code}]: {message}"


def _duplicate_key(node: Node | None) -> Node | None:
    """The first key node repeated within a mapping, anywhere in the document."""
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, MappingNode):
            seen = set()
            for key, value in current.value:
                if isinstance(key, ScalarNode):
                    if key.value in seen:
                        return key
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(current, SequenceNode):
            stack.extend(current.value)
    return None


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number"}
    names[float] = "a number"
    if value is None:
        return "null"
    return names.get(type(value), f"a {type(value).__name__}")


def _noting_duplicates(duplicates: list[str]) -> Callable[[list[tuple[str, Any]]], dict]:
    """A ``json`` object hook that keeps the last value of a repeated key (as ``json``
    does) and appends the key to ``duplicates``, so the reader can report it."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    return pairs


def _parse_data(path: str, text: str) -> tuple[object, _Locator]:
    if Path(path).suffix.lower() == ".json":
        duplicates: list[str] = []
        try:
            data = limits.load_json(text, path, object_pairs_hook=_noting_duplicates(duplicates))
        except limits.InputError as exc:
            raise DataFileError([str(exc)]) from None
        except json.JSONDecodeError as exc:
            where = f"{path}:{exc.lineno}:{exc.colno}"
            message = f"malformed JSON: {exc.msg}"
            raise DataFileError([_message(where, "data_syntax", message)]) from None
        locator = _Locator(path, text)
        if duplicates:
            node = _duplicate_key(locator.root())
            message = f"key {duplicates[0]!r} appears twice in one object; keep one"
            raise DataFileError([_message(locator.at(node), "duplicate_key", message)])
        return data, locator
    try:  # before composing (recursive) and constructing (aliases multiply a value)
        limits.check_yaml(text, path, loader=_YamlLoader)
    except limits.InputError as exc:
        raise DataFileError([str(exc)]) from None
    loader = _YamlLoader(text)
    root = None
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        message = f"malformed YAML: {exc.problem or exc.context}"
        raise DataFileError([_message(where, "data_syntax", message)]) from None
    except yaml.YAMLError as exc:
        message = f"malformed YAML: {exc}"
        raise DataFileError([_message(path, "data_syntax", message)]) from None
    except Exception as exc:  # noqa: BLE001 - a tagged value PyYAML cannot make (!!int x)
        node, message = unconstructable(root, exc)
        where = _Locator(path, text, root).at(node)
        raise DataFileError([_message(where, "data_syntax", message)]) from None
    finally:
        loader.dispose()
    locator = _Locator(path, text, root)
    node = _duplicate_key(root)
    if node is not None:
        message = f"key {node.value!r} appears twice in one mapping; keep one"
        raise DataFileError([_message(locator.at(node), "duplicate_key", message)])
    return data, locator


def _raise_data_errors(errors: list[str]) -> None:
    if not errors:
        return
    shown = errors[:MAX_DATA_ERRORS]
    if len(errors) > len(shown):
        shown.append(f"... and {len(errors) - len(shown)} more errors")
    raise DataFileError(shown)


class _Omitted:
    def __repr__(self) -> str:
        return "OMITTED"


OMITTED = _Omitted()
"""A column an object row leaves out: None in the row, as a driver's translator gives for an
absent field (unlike an explicit null, which Congress's drivers stored as "None")."""


# ---------------------------------------------------------------- one-table files

_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def table_of_file(path: str) -> str:
    """The ``name:table`` a one-table file holds: its name less the suffix.

    Raises:
        DataFileError: the name is not ``name:table``.
    """

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

    table = table_of_file(path)
    suffix = Path(path).suffix.lower()
    if suffix in COLUMNAR_SUFFIXES:
        rows = _parquet_rows(path)
        return [DataTable(table, rows, lambda index: path)]
    text = read_data_text(path)
    if suffix == ".csv":
        rows, places = _csv_rows(path, table, text)
    else:
        rows, places = _ndjson_rows(path, text)
    return [DataTable(table, rows, _places(path, places))]


def read_data_text(path: str) -> str:
    """A data file's UTF-8 text, without a leading byte order mark (some editors write one).

    Raises:
        DataFileError: ``file_error``, the file cannot be read or is not UTF-8 text.
    """
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or exc}"
        raise DataFileError([_message(path, "file_error", message)]) from None
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        raise DataFileError([_message(path, "file_error", message)]) from None


def _places(path: str, places: list[tuple[int, int]]) -> Callable[[int | None], str]:
    def locate(index: int | None) -> str:
        if index is None or index >= len(places):
            return path
        line, col = places[index]
        return f"{path}:{line}:{col}"

    return locate


def _raise(errors: list[str]) -> None:

    _raise_data_errors(errors)


def _ndjson_rows(path: str, text: str) -> tuple[list[Any], list[tuple[int, int]]]:

    rows: list[Any] = []
    places: list[tuple[int, int]] = []
    errors: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped:
            continue
        col = len(line) - len(line.lstrip()) + 1
        duplicates: list[str] = []
        try:
            row = limits.load_json(line, path, object_pairs_hook=_noting_duplicates(duplicates))
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
