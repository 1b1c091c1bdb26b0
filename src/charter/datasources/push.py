"""The ``push`` driver: tables that clients replace through the API (``PUT .../rows``).

Congress's push driver took any list of lists. Charter's takes an optional schema in its
config (``{"tables": {"alarms": ["id", "host", "severity"]}}``) so that rules can name
columns and rows of the wrong width are refused with a message; without a schema, a
table's width is fixed by the first rows pushed to it.

With a schema a row may also be an object of ``column: value``: a column it omits is null
(``None``), as a polling driver's translator gives for an absent field, and a key that is
not a column is refused.

The service takes a body through ``given``: a body of lists of scalars is checked set at a
time and handed to the diff as typed columns; any other body, or one with a bad row, goes
through ``rows_for``, which names the first bad row and the fix.

>>> d = PushDriver("mon", {"tables": {"alarms": ["id", "host"]}})
>>> d.rows_for("alarms", [["a1", "h1"], {"id": "a2"}])
[('a1', 'h1'), ('a2', None)]
>>> [c.tolist() for c in d.given("alarms", [["a1", "h1"], ["a2", "h2"]]).columns]
[['a1', 'a2'], ['h1', 'h2']]
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from itertools import chain
from typing import Any

from charter.datasources.driver import Column, ConfigOption, Driver, DriverError, Row, TableSpec
from charter.engine.column_diff import GivenTable, split_columns

SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(SCALARS)
_JSON_KINDS = {dict: "object", str: "string", bool: "boolean", int: "integer", float: "number",
               type(None): "null"}  # fmt: skip


class PushDriver(Driver):
    driver = "push"
    description = "Tables pushed by clients: PUT /v1/data-sources/<ds>/tables/<t>/rows"
    config_options = (
        ConfigOption("tables", "optional schema: {table: [column, ...]}"),
        ConfigOption("persist_data", "kept for Congress's configs; pushed rows always persist"),
    )
    pushed = True

    def check_config(self) -> None:
        super().check_config()
        tables = self.config.get("tables") or {}
        if isinstance(tables, str):  # the CLI passes --config tables='{"t": ["a"]}' as text
            try:
                tables = json.loads(tables)
            except json.JSONDecodeError as exc:
                raise DriverError(
                    f"datasource {self.name}: config 'tables' is not valid JSON ({exc.msg} at "
                    f"column {exc.colno})"
                ) from None
        if not isinstance(tables, Mapping) or not all(
            isinstance(cols, list) and cols and all(isinstance(c, str) for c in cols)
            for cols in tables.values()
        ):
            raise DriverError(
                f"datasource {self.name}: config 'tables' must map each table name to a "
                'non-empty list of column names, e.g. {"alarms": ["id", "host"]}'
            )
        self._schema = {t: tuple(cols) for t, cols in tables.items()}

    def tables(self) -> dict[str, TableSpec]:
        return {
            t: TableSpec(t, tuple(Column(c) for c in cols)) for t, cols in self._schema.items()
        }

    def given(self, table: str, data: Any, width: int | None = None) -> GivenTable:
        """``rows_for``, checked set at a time and given as columns: a body of lists of
        scalars, all of one width, is checked by the set of its rows' types, widths and
        values' types (a few passes in C) and made typed columns; its rows stay the lists
        JSON gave (a changed one becomes a tuple in the diff). Any other body, one with a
        bad row included, goes through ``rows_for``, which finds the first bad row and
        says how to fix it (nothing is applied then), or gives the rows it accepts.
        """
        if (self._schema and table not in self._schema) or type(data) is not list or not data:
            return GivenTable.of_rows(self.rows_for(table, data, width))
        columns = self._schema.get(table)
        expected = len(columns) if columns is not None else width
        widths = set(map(len, data)) if set(map(type, data)) == {list} else None
        if widths is None or len(widths) != 1 or (expected is not None and widths != {expected}):
            return GivenTable.of_rows(self.rows_for(table, data, width))
        flat = list(chain.from_iterable(data))
        kinds = set(map(type, flat))
        if not kinds <= _SCALAR_TYPES:
            return GivenTable.of_rows(self.rows_for(table, data, width))
        return GivenTable(data, split_columns(flat, kinds, widths.pop()))

    def rows_for(self, table: str, data: Any, width: int | None = None) -> list[Row]:
        """Check pushed JSON (a list of rows: lists of scalars, or objects of column:
        scalar when the table has a schema) and turn it into rows.

        ``width`` is the table's current width when it has no schema but already has rows.
        """
        if self._schema and table not in self._schema:
            raise DriverError(
                f"datasource {self.name} has no table {table!r}; its tables: "
                f"{', '.join(sorted(self._schema))}"
            )
        if not isinstance(data, list):
            raise DriverError(
                f"the rows of {self.name}:{table} must be a JSON list of lists or objects, "
                f"got {_JSON_KINDS.get(type(data), type(data).__name__)}: send "
                "[[value, ...], ...]"
            )
        columns = self._schema.get(table)
        expected = len(columns) if columns is not None else width
        rows: list[Row] = []
        for i, item in enumerate(data):
            if isinstance(item, Mapping) and set(item) == {"data"} and isinstance(
                item["data"], list
            ):
                item = item["data"]  # the shape GET .../rows returns
            elif isinstance(item, Mapping):
                item = self._named(table, i, item, columns)
            if not isinstance(item, list):
                raise DriverError(
                    f"row {i} of {self.name}:{table} is not a list or an object: {item!r}; "
                    'give it as [value, ...] or {"column": value, ...}'
                )
            for value in item:
                if not isinstance(value, SCALARS):
                    raise DriverError(
                        f"row {i} of {self.name}:{table} holds {value!r}; values must be "
                        "strings, numbers, booleans or null"
                    )
            if expected is None:
                expected = len(item)
            if len(item) != expected:
                names = f" ({', '.join(columns)})" if columns is not None else ""
                raise DriverError(
                    f"row {i} of {self.name}:{table} has {len(item)} values; "
                    f"the table has {expected} columns{names}: give one value per column"
                )
            rows.append(tuple(item))
        return rows

    def _named(
        self, table: str, i: int, item: Mapping, columns: tuple[str, ...] | None
    ) -> list:
        """An object row's values in column order; an omitted column is None."""
        if columns is None:
            raise DriverError(
                f"row {i} of {self.name}:{table} is an object, but datasource {self.name} "
                f"declares no columns for {table}: give rows as lists, or declare "
                f'{{"tables": {{"{table}": [column, ...]}}}} in its config'
            )
        unknown = [str(k) for k in item if k not in columns]
        if unknown:
            omitted = [c for c in columns if c not in item]
            hint = difflib.get_close_matches(unknown[0], omitted, n=1, cutoff=0.5)
            more = f"; did you mean {hint[0]} for {unknown[0]}?" if hint else ""
            raise DriverError(
                f"row {i} of {self.name}:{table} has unknown column"
                f"{'s' * (len(unknown) > 1)} {', '.join(unknown)}; {self.name}:{table} has "
                f"columns {', '.join(columns)}{more}"
            )
        return [item.get(c) for c in columns]

    def webhook(self, payload: Any) -> dict[str, GivenTable]:  # type: ignore[override]
        """A webhook replaces whole tables: ``{"tables": {"t": [[...], ...]}}``."""
        tables = payload.get("tables") if isinstance(payload, Mapping) else None
        if not isinstance(tables, Mapping):
            raise DriverError(
                f'a webhook to push datasource {self.name} takes {{"tables": {{"<table>": '
                "[[value, ...], ...]}}}"
            )
        return {t: self.given(t, rows) for t, rows in tables.items()}
