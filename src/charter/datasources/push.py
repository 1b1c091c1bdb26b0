"""The ``push`` driver: tables that clients replace through the API (``PUT .../rows``).

Congress's push driver took any list of lists. Charter's takes an optional schema in its
config (``{"tables": {"alarms": ["id", "host", "severity"]}}``) so that rules can name
columns and rows of the wrong width are refused with a message; without a schema, a
table's width is fixed by the first rows pushed to it.

>>> d = PushDriver("mon", {"tables": {"alarms": ["id", "host"]}})
>>> d.rows_for("alarms", [["a1", "h1"], ["a2", "h2"]])
[('a1', 'h1'), ('a2', 'h2')]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from charter.datasources.driver import Column, ConfigOption, Driver, DriverError, Row, TableSpec

SCALARS = (str, int, float, bool, type(None))


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

    def rows_for(self, table: str, data: Any, width: int | None = None) -> list[Row]:
        """Check pushed JSON (a list of lists of scalars) and turn it into rows.

        ``width`` is the table's current width when it has no schema but already has rows.
        """
        if self._schema and table not in self._schema:
            raise DriverError(
                f"datasource {self.name} has no table {table!r}; its tables: "
                f"{', '.join(sorted(self._schema))}"
            )
        if not isinstance(data, list):
            raise DriverError(
                f"the rows of {self.name}:{table} must be a JSON list of lists, "
                f"got {type(data).__name__}"
            )
        expected = len(self._schema[table]) if table in self._schema else width
        rows: list[Row] = []
        for i, item in enumerate(data):
            if isinstance(item, Mapping) and "data" in item:
                item = item["data"]  # the shape GET .../rows returns
            if not isinstance(item, list):
                raise DriverError(f"row {i} of {self.name}:{table} is not a list: {item!r}")
            for value in item:
                if not isinstance(value, SCALARS):
                    raise DriverError(
                        f"row {i} of {self.name}:{table} holds {value!r}; values must be "
                        "strings, numbers, booleans or null"
                    )
            if expected is None:
                expected = len(item)
            if len(item) != expected:
                raise DriverError(
                    f"row {i} of {self.name}:{table} has {len(item)} values; "
                    f"the table has {expected} columns"
                )
            rows.append(tuple(item))
        return rows

    def webhook(self, payload: Any) -> dict[str, list[Row]]:
        """A webhook replaces whole tables: ``{"tables": {"t": [[...], ...]}}``."""
        tables = payload.get("tables") if isinstance(payload, Mapping) else None
        if not isinstance(tables, Mapping):
            raise DriverError(
                f'a webhook to push datasource {self.name} takes {{"tables": {{"<table>": '
                "[[value, ...], ...]}}}"
            )
        return {t: self.rows_for(t, rows) for t, rows in tables.items()}
