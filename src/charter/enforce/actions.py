"""Which ``execute[...]`` rows newly appeared, and what is to be done about each.

A rule ``execute[nova:servers.pause(x)] :- error(x)`` fills the engine's table
``<policy>:execute[nova:servers.pause]``. As in Congress, the action is due once per row, on
the transition: when the row appears. A row that stays derived does not act again; one that
disappears and later reappears is a new transition and acts again.

The rows that have appeared and not yet cleared are ``known``. After a restart they are read
back from the store, so the engine's rebuild (which derives them again from nothing) and
the first polls (which refill datasources from nothing) do not look like transitions. Rows
known before the restart that are not derived again yet are ``unsettled``: they clear only
once every datasource has reported (:meth:`Enforcer.settle`), because until then their
absence may only mean the data has not arrived.

>>> action_table("p:execute[nova:servers.pause]")
ActionTable(policy='p', datasource='nova', action='servers.pause')
>>> action_table("p:error") is None
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from charter.enforce.limits import Limits

DRY_RUN = "dry-run"
ENFORCE = "enforce"
MODES = (DRY_RUN, ENFORCE)

PENDING = "pending"  # enforce: in the outbox, for the worker
BASELINE = "baseline"  # already derived when enforcement first saw it: never acts


class Changes(Protocol):
    inserted: set[tuple]
    deleted: set[tuple]


@dataclass(frozen=True, order=True)
class ActionTable:
    """An engine table of ``execute[...]`` rows: whose, and which action its rows call."""

    policy: str
    datasource: str
    action: str

    @property
    def name(self) -> str:
        """The table's name within its policy: ``execute[<datasource>:<action>]``."""
        return f"execute[{self.datasource}:{self.action}]"

    @property
    def qualified(self) -> str:
        return f"{self.policy}:{self.name}"


def action_table(table: str) -> ActionTable | None:
    """The action table named ``table`` (as the engine names it), or None for other tables."""
    policy, sep, rest = table.partition(":")
    if not sep or not rest.startswith("execute[") or not rest.endswith("]"):
        return None
    datasource, sep, action = rest[len("execute[") : -1].partition(":")
    if not sep or not datasource or not action:
        return None
    return ActionTable(policy, datasource, action)


@dataclass(frozen=True)
class Decision:
    """What to do about one row that appeared: ``verdict`` is ``pending`` (run it),
    ``dry-run``, ``capped``, ``rate-limited`` or ``baseline``; ``mode`` is the policy's."""

    table: ActionTable
    row: tuple
    mode: str
    verdict: str


@dataclass
class Plan:
    """One batch's transitions: rows that appeared (with decisions) and rows that cleared."""

    decisions: list[Decision] = field(default_factory=list)
    cleared: list[tuple[ActionTable, tuple]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.decisions or self.cleared)


class Enforcer:
    """The rows of every action table that have appeared and not cleared, and the decisions.

    Pure bookkeeping: the caller stores each plan (and only then commits it here) and runs
    the actions.
    """

    def __init__(self, limits: Limits, mode_of: Callable[[str], str]) -> None:
        self.limits = limits
        self.mode_of = mode_of
        self.known: dict[ActionTable, set[tuple]] = {}
        self.unsettled: dict[ActionTable, set[tuple]] = {}

    def restore(
        self,
        recorded: Iterable[tuple[ActionTable, tuple]],
        derived: Mapping[ActionTable, set[tuple]],
    ) -> list[Decision]:
        """Take back the rows recorded before a restart; return ``baseline`` decisions for
        rows derived now that were never recorded (e.g. derived before enforcement existed),
        which must not act either."""
        self.known, self.unsettled = {}, {}
        for table, row in recorded:
            self.known.setdefault(table, set()).add(row)
        baseline = []
        for table in sorted(derived):
            rows = derived[table]
            known = self.known.get(table, set())
            waiting = known - rows
            if waiting:
                self.unsettled[table] = waiting
            mode = self.mode_of(table.policy)
            baseline += [Decision(table, row, mode, BASELINE)
                         for row in sorted(rows - known, key=repr)]
        for table, known in self.known.items():
            if table not in derived:
                self.unsettled[table] = set(known)
        return baseline

    def plan(self, deltas: Mapping[str, Changes], now: float) -> Plan:
        """The transitions in one batch's deltas and a decision for each row that appeared.

        ``now`` (seconds) is for the rate limit. Rows are decided in a fixed order (table,
        then row), so which rows a limit stops does not depend on set iteration.
        """
        plan = Plan()
        batch = self.limits.batch()
        for name in sorted(deltas):
            table = action_table(name)
            delta = deltas[name]
            if table is None or not delta:
                continue
            known = self.known.get(table, set())
            waiting = self.unsettled.get(table, set())
            plan.cleared += [(table, r) for r in sorted(delta.deleted, key=repr) if r in known]
            for row in sorted(delta.inserted, key=repr):
                if row in known:
                    waiting.discard(row)  # derived again after a restart: no transition
                    continue
                mode = self.mode_of(table.policy)
                why = self.limits.admit(table.policy, batch, now)
                verdict = why or (PENDING if mode == ENFORCE else DRY_RUN)
                plan.decisions.append(Decision(table, row, mode, verdict))
        return plan

    def commit(self, plan: Plan, *, recorded: bool = True) -> None:
        """Apply a plan once stored; a plan the store refused still clears its rows."""
        for table, row in plan.cleared:
            self.known.get(table, set()).discard(row)
        if recorded:
            for d in plan.decisions:
                self.known.setdefault(d.table, set()).add(d.row)

    def unsettled_rows(self) -> list[tuple[ActionTable, tuple]]:
        """Rows known before the restart and still not derived: to clear once settled."""
        return [(t, r) for t in sorted(self.unsettled) for r in sorted(self.unsettled[t], key=repr)]

    def settle(self) -> None:
        """Every datasource has reported: the unsettled rows are gone, not late."""
        for table, rows in self.unsettled.items():
            self.known.get(table, set()).difference_update(rows)
        self.unsettled = {}

    def derived(self, table: ActionTable, row: tuple) -> bool:
        """Whether ``row`` is (as far as is known) still derived, so its action still makes sense."""
        return row in self.known.get(table, set())
