"""A datasource with real actions for tests: a JSON file of items, and actions that change it.

The ``ledger`` driver polls ``<dir>/items.json`` (``[[id, state], ...]``) and declares two
actions: ``items.fix(id)`` sets the item's state to ``ok`` in that file (so the next poll
sees the repair), ``items.note(id)`` changes nothing. Every call is appended to
``<dir>/calls.jsonl`` before it returns, so a test counts exactly what ran. A test makes the
next calls fail by writing ``<dir>/faults.json`` (``{"status": 503, "times": 2}``): local
state, no mock.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from charter.datasources.driver import (
    ActionArg,
    ActionSpec,
    Column,
    ConfigOption,
    Driver,
    DriverError,
    TableSpec,
)


class LedgerDriver(Driver):
    driver = "ledger"
    description = "items in a local JSON file, with actions that change them"
    config_options = (ConfigOption("dir", "directory of items.json", required=True),
                      ConfigOption("poll_time", "seconds between polls"))

    @property
    def dir(self) -> Path:
        return Path(self.config["dir"])

    def tables(self) -> dict[str, TableSpec]:
        return {"items": TableSpec("items", (Column("id"), Column("state")))}

    def actions(self) -> list[ActionSpec]:
        return [ActionSpec("items.fix", "set an item's state to ok", (ActionArg("id"),)),
                ActionSpec("items.note", "note an item (changes nothing)", (ActionArg("id"),))]

    def poll(self) -> dict[str, list[tuple]]:
        return {"items": [tuple(r) for r in Ledger(self.dir).items()]}

    def execute(self, action: str, positional: Sequence[Any], named: Mapping[str, Any]) -> Any:
        if action not in ("items.fix", "items.note"):
            return super().execute(action, positional, named)
        ledger = Ledger(self.dir)
        ledger.fail_if_told(self.name)
        if len(positional) != 1:
            raise DriverError(f"datasource {self.name}: {action}(id) takes one argument, got "
                              f"{len(positional)}", status=400)
        (item,) = positional
        if item not in {i for i, _ in ledger.items()}:
            raise DriverError(f"datasource {self.name}: no item {item!r}", status=404)
        with ledger.locked():  # the test may be adding items at the same time
            with (self.dir / "calls.jsonl").open("a") as f:
                f.write(json.dumps({"action": action, "args": list(positional)}) + "\n")
                f.flush()
                os.fsync(f.fileno())
            if action == "items.fix":
                ledger.write([(i, "ok" if i == item else s) for i, s in ledger.items()])
        return {"item": item, "action": action}


class Ledger:
    """The test's side of a ledger datasource's directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock (``flock``): for a read-modify-write of the items by
        the test and by a server process at once."""
        with (self.dir / "items.lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def add(self, items: list[tuple[str, str]]) -> None:
        """Append items, under the lock."""
        with self.locked():
            self.write(self.items() + items)

    def write(self, items: list[tuple[str, str]]) -> None:
        tmp = self.dir / "items.json.tmp"
        tmp.write_text(json.dumps([list(i) for i in items]))
        tmp.replace(self.dir / "items.json")

    def items(self) -> list[tuple[str, str]]:
        path = self.dir / "items.json"
        return [tuple(r) for r in json.loads(path.read_text())] if path.exists() else []

    def calls(self) -> list[dict]:
        path = self.dir / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def fail(self, status: int, times: int) -> None:
        (self.dir / "faults.json").write_text(json.dumps({"status": status, "times": times}))

    def fail_if_told(self, name: str) -> None:
        path = self.dir / "faults.json"
        if not path.exists():
            return
        fault = json.loads(path.read_text())
        if fault["times"] <= 0:
            return
        fault["times"] -= 1
        path.write_text(json.dumps(fault))
        raise DriverError(f"datasource {name}: told to fail with {fault['status']}",
                          status=fault["status"])
