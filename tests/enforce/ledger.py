"""A datasource with real actions for tests: a JSON file of items, and actions that change it.

The ``ledger`` driver polls the items of ``<dir>/ledger.json`` (``{"items": [[id, state],
...], "calls": [...]}``) and declares two actions: ``items.fix(id)`` sets the item's state to
``ok`` (so the next poll sees the repair), ``items.note(id)`` changes nothing. Each call is
recorded in the same file, in the same atomic replace as its effect, so a test counts
exactly what ran: a process killed mid-call leaves either the call and its effect or
neither (a log written before the effect would count a call that never took effect). A test makes the
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
            state = ledger.state()
            if action == "items.fix":
                state["items"] = [[i, "ok" if i == item else s] for i, s in state["items"]]
            state["calls"].append({"action": action, "args": list(positional)})
            ledger.save(state)
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

    @property
    def path(self) -> Path:
        return self.dir / "ledger.json"

    def state(self) -> dict[str, list]:
        if not self.path.exists():
            return {"items": [], "calls": []}
        return json.loads(self.path.read_text())

    def save(self, state: dict[str, list]) -> None:
        """Replace the file at once (rename): a reader or a kill sees the old or the new."""
        tmp = self.dir / f"ledger.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(self.path)

    def add(self, items: list[tuple[str, str]]) -> None:
        """Append items, under the lock."""
        with self.locked():
            state = self.state()
            state["items"] += [list(i) for i in items]
            self.save(state)

    def write(self, items: list[tuple[str, str]]) -> None:
        """Replace the items (the calls stay), under the lock."""
        with self.locked():
            state = self.state()
            state["items"] = [list(i) for i in items]
            self.save(state)

    def items(self) -> list[tuple[str, str]]:
        return [tuple(r) for r in self.state()["items"]]

    def calls(self) -> list[dict]:
        return self.state()["calls"]

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
