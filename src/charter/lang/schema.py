"""What the compiler knows of tables it does not define: their columns.

Datasource schemas are *complete*, as in Congress: a table of a datasource whose schema is
known must be one of its tables. A module with no known schema accepts any table.

>>> s = Schemas({"nova": {"servers": ("id", "name", "status")}})
>>> s.columns("nova", "servers")
('id', 'name', 'status')
>>> s.columns("nova", "flavors") is None, s.is_complete("nova"), s.is_complete("other")
(True, True, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class Schemas:
    """Column names per ``module -> table``; a module listed here has a complete table set."""

    modules: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def __init__(self, modules: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None):
        self.modules = {
            m: {t: tuple(c) for t, c in ts.items()} for m, ts in (modules or {}).items()
        }

    def columns(self, module: str, table: str) -> tuple[str, ...] | None:
        return self.modules.get(module, {}).get(table)

    def is_complete(self, module: str) -> bool:
        return module in self.modules

    def tables(self, module: str) -> list[str]:
        return sorted(self.modules.get(module, {}))

    def set_table(self, module: str, table: str, columns: tuple[str, ...]) -> None:
        self.modules.setdefault(module, {})[table] = tuple(columns)

    def set_module(self, module: str, tables: Mapping[str, tuple[str, ...]]) -> None:
        self.modules[module] = {t: tuple(c) for t, c in tables.items()}

    def drop_module(self, module: str) -> None:
        self.modules.pop(module, None)
