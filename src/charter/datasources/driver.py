"""What a datasource driver is: its config, its tables, its actions, and how it gets rows.

A driver turns one service's state into tables. The service asks it for the whole content
of its tables (``poll``) or is handed rows (``push``), diffs them against what the engine
holds, and sends only the difference on. Drivers never touch the engine themselves, so a
driver that fails cannot leave half a table behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

Row = tuple


class DriverError(Exception):
    """A driver could not do what was asked: bad config, service down, bad answer.

    ``status`` is the HTTP status the API answers with (400 for a caller's mistake, 502
    for a service that answered badly, 503 for one that cannot be reached).
    """

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ConfigOption:
    """One key of a datasource's ``config``; secret values are never shown back."""

    name: str
    description: str
    required: bool = False
    secret: bool = False
    default: Any = None


@dataclass(frozen=True)
class Column:
    name: str
    description: str = ""
    type: str | None = None
    nullable: bool = True


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def to_json(self) -> dict:
        cols = []
        for c in self.columns:
            col: dict[str, Any] = {"name": c.name, "description": c.description}
            if c.type is not None:
                col["type"] = c.type
                col["nullable"] = c.nullable
            cols.append(col)
        return {"table_id": self.name, "columns": cols}


@dataclass(frozen=True)
class ActionArg:
    name: str
    description: str = ""


@dataclass(frozen=True)
class ActionSpec:
    """An action a driver offers to enforcement and to ``?action=execute``."""

    name: str
    description: str
    args: tuple[ActionArg, ...] = field(default=())

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "args": [{"name": a.name, "description": a.description} for a in self.args],
        }

    def bind(self, positional: Sequence[Any], named: Mapping[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, in the declared order; DriverError (400) when one
        is unknown, given twice, missing, or there are too many."""
        names = [a.name for a in self.args]
        usage = f"{self.name}({', '.join(names)})"
        if len(positional) > len(names):
            raise DriverError(f"{usage} takes {len(names)} arguments, got {len(positional)}")
        args = dict(zip(names, positional, strict=False))
        for key, value in named.items():
            if key not in names:
                raise DriverError(f"{usage} has no argument {key!r}")
            if key in args:
                raise DriverError(f"{usage}: {key!r} given twice")
            args[key] = value
        missing = [n for n in names if n not in args]
        if missing:
            raise DriverError(f"{usage}: missing {', '.join(missing)}")
        return {n: args[n] for n in names}


class Driver:
    """Base class of every driver; subclasses set the class attributes and override methods.

    ``poll_seconds`` is the default interval between polls (0: only on request); a push
    driver has ``pushed = True`` and never polls.
    """

    driver: ClassVar[str]
    description: ClassVar[str]
    config_options: ClassVar[tuple[ConfigOption, ...]] = ()
    pushed: ClassVar[bool] = False
    poll_seconds: ClassVar[float] = 0

    def __init__(self, name: str, config: Mapping[str, Any]):
        self.name = name
        self.config = dict(config)
        self.check_config()

    def check_config(self) -> None:
        """Raise DriverError naming the key and the fix when ``config`` does not fit."""
        known = {o.name for o in self.config_options}
        for option in self.config_options:
            if option.required and self.config.get(option.name) in (None, ""):
                raise DriverError(
                    f"datasource {self.name}: driver {self.driver} needs config key "
                    f"{option.name!r} ({option.description})"
                )
        unknown = sorted(set(self.config) - known)
        if unknown:
            raise DriverError(
                f"datasource {self.name}: driver {self.driver} has no config key "
                f"{', '.join(map(repr, unknown))}; it takes {', '.join(sorted(known)) or 'none'}"
            )

    def tables(self) -> dict[str, TableSpec]:
        """The tables this datasource has, with their columns (the schema rules compile to)."""
        return {}

    def actions(self) -> list[ActionSpec]:
        return []

    def poll(self) -> dict[str, list[Row]]:
        """Every table's whole current content, read from the service."""
        raise DriverError(f"datasource {self.name}: driver {self.driver} is not polled")

    def action(self, name: str) -> ActionSpec | None:
        """The declared action called ``name``, or None."""
        return next((a for a in self.actions() if a.name == name), None)

    def execute(self, action: str, positional: Sequence[Any], named: Mapping[str, Any]) -> Any:
        names = ", ".join(a.name for a in self.actions()) or "none"
        raise DriverError(
            f"datasource {self.name} (driver {self.driver}) has no action {action!r}; "
            f"its actions: {names}"
        )

    def webhook(self, payload: Any) -> dict[str, list[Row]]:
        """Tables to replace, read from a webhook's payload."""
        raise DriverError(f"datasource {self.name} (driver {self.driver}) takes no webhooks")

    def close(self) -> None:
        """Release connections; called when the datasource is deleted or the service stops."""

    @classmethod
    def static_tables(cls) -> list[TableSpec]:
        """The tables every datasource of this driver has (none when the config sets them)."""
        return []

    @classmethod
    def info(cls) -> dict:
        """What ``GET /v1/system/drivers/<id>`` shows."""
        return {
            "id": cls.driver,
            "description": cls.description,
            "config": {o.name: ("(secret) " if o.secret else "") + o.description
                       for o in cls.config_options},
            "secret": [o.name for o in cls.config_options if o.secret],
            "module": f"{cls.__module__}.{cls.__qualname__}",
        }
