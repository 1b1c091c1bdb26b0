"""The datasource tables an editor can know offline: their columns and what each one holds.

A policy names a datasource's table as ``module:table``. When ``module`` is a Congress driver
(``nova``, ``neutronv2``, ...), ``charter check`` compiles against that driver's schema, so its
columns, in that order, are the truth; the descriptions come from Charter's driver of the
same id where it has one. A Charter driver without a Congress schema (``kubernetes``,
``ceph``) gives its own tables. A driver's module is imported only when a policy names it
(importing every driver costs seconds).

>>> servers = module_tables("nova")["servers"]
>>> servers.columns[3].name, servers.columns[3].description
('status', 'server status: ACTIVE, SHUTOFF, PAUSED, ERROR, ...')
>>> module_tables("no_such_driver") is None
True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import entry_points

from charter.datasources.registry import GROUP, driver_class
from charter.datasources.schemas import CONGRESS_DRIVER_SCHEMAS, DRIVER_ALIASES, driver_schema

__all__ = ["ColumnInfo", "TableInfo", "driver_ids", "module_tables"]


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """One column of a datasource table."""

    name: str
    description: str = ""
    type: str | None = None


@dataclass(frozen=True, slots=True)
class TableInfo:
    """A datasource table: ``module:name``, its columns in order, and where they come from."""

    module: str
    name: str
    columns: tuple[ColumnInfo, ...]
    origin: str

    @property
    def qualified(self) -> str:
        return f"{self.module}:{self.name}"

    def column(self, name: str) -> tuple[int, ColumnInfo] | None:
        for index, column in enumerate(self.columns):
            if column.name == name:
                return index, column
        return None


@functools.cache
def driver_ids() -> tuple[str, ...]:
    """Every module name a datasource table is known under: Congress's driver ids and their
    aliases, and the installed Charter drivers (from their entry points, not imported)."""
    names = set(CONGRESS_DRIVER_SCHEMAS) | set(DRIVER_ALIASES)
    names |= {ep.name for ep in entry_points(group=GROUP)}
    names.discard("push")  # a push datasource's tables are whatever is pushed
    return tuple(sorted(names))


@functools.cache
def _charter_tables(driver: str) -> dict[str, tuple[ColumnInfo, ...]]:
    """The fixed tables of Charter's driver ``driver`` (none when it is not installed, does
    not import, or takes its tables from each datasource's config)."""
    if driver not in {ep.name for ep in entry_points(group=GROUP)}:
        return {}
    try:
        specs = driver_class(driver).static_tables()
    except Exception:  # noqa: BLE001 - a broken plug-in leaves its tables unknown, no more
        return {}
    return {
        spec.name: tuple(ColumnInfo(c.name, c.description, c.type) for c in spec.columns)
        for spec in specs
    }


@functools.cache
def module_tables(module: str) -> dict[str, TableInfo] | None:
    """The tables of datasource ``module`` by name, or None when no schema is known."""
    try:
        congress = driver_schema(module)
    except LookupError:
        congress = None
    charter = _charter_tables(DRIVER_ALIASES.get(module, module))
    if congress is None:
        if not charter:
            return None
        origin = f"Charter's {module} driver"
        return {t: TableInfo(module, t, cols, origin) for t, cols in charter.items()}
    origin = f"Congress's {module} driver schema"
    tables: dict[str, TableInfo] = {}
    for table, names in congress.items():
        described = {c.name: c for c in charter.get(table, ())}
        columns = tuple(described.get(n, ColumnInfo(n)) for n in names)
        tables[table] = TableInfo(module, table, columns, origin)
    return tables
