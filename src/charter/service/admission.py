"""Admission check: which violations a proposed change would add or clear, before it is made.

A proposed change is rows to insert and delete, a declared action with its arguments
(projected through the action policy, as simulate does), or both (rows first). It is
applied with the simulate machinery (under the service's lock, undone before the answer,
published nowhere), and the watched tables (the policy's ``error`` and ``warning``, or the
``tables`` asked for) are compared before and after.
"""

from __future__ import annotations

from charter.lang.errors import EngineError
from charter.service.errors import ServiceError
from charter.service.simulate import (
    Step,
    action_policy_name,
    action_step,
    declared_actions,
    projected,
    row_key,
    row_step,
)

FIELDS = ("insert", "delete", "action", "args", "tables", "action_policy")
VIOLATION_TABLES = ("error", "warning")


def admit(service, policy: str, changes: object) -> dict:
    """``{"appear": [{"table", "row"}], "clear": [...]}`` for ``changes`` to ``policy``."""
    if not isinstance(changes, dict):
        raise ServiceError("an admission request must be a JSON object with insert, delete "
                           "and/or action")
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ServiceError(f"unknown admission fields {unknown}; use {', '.join(FIELDS)}")
    if not any(changes.get(k) for k in ("insert", "delete", "action")):
        raise ServiceError("an admission request needs a change: 'insert' and/or 'delete' "
                           "rows ([{\"table\": \"nova:servers\", \"row\": [...]}]) or an "
                           "'action' with 'args'")
    if "args" in changes and not changes.get("action"):
        raise ServiceError("'args' are the arguments of an 'action'; name the action too")
    engine = service.engine
    with service.lock:
        name = service.policies.get(policy).record.name
        action_policy = action_policy_name(service, changes.get("action_policy"))
        steps: list[Step] = []
        for key, sign in (("insert", 1), ("delete", -1)):
            for table, row in _rows(changes.get(key), key):
                steps.append(row_step(name, table, row, sign))
        if changes.get("action"):
            steps.append(_action(engine, action_policy, changes["action"],
                                 changes.get("args", [])))
        watched = _watched(engine, name, changes.get("tables"))
        before = {label: _read(engine, table) for label, table in watched}
        with projected(engine, name, action_policy, steps):
            after = {label: _read(engine, table) for label, table in watched}
    appear, clear = [], []
    for label, _ in watched:
        appear += [{"table": label, "row": list(r)}
                   for r in sorted(after[label] - before[label], key=row_key)]
        clear += [{"table": label, "row": list(r)}
                  for r in sorted(before[label] - after[label], key=row_key)]
    return {"appear": appear, "clear": clear}


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _rows(entries: object, key: str) -> list[tuple[str, tuple]]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ServiceError(f"'{key}' must be a list of {{\"table\", \"row\"}} objects")
    out = []
    for i, entry in enumerate(entries):
        where = f"{key}[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"table", "row"}:
            raise ServiceError(f"{where} must be an object with exactly 'table' and 'row', "
                               "e.g. {\"table\": \"nova:servers\", \"row\": [\"vm9\", \"h1\"]}")
        table, row = entry["table"], entry["row"]
        if not isinstance(table, str) or not table or table.endswith(":"):
            raise ServiceError(f"{where}.table must name a table: <datasource>:<table>, or a "
                               "table of the policy")
        if not isinstance(row, list) or not row or not all(_scalar(v) for v in row):
            raise ServiceError(f"{where}.row must be a non-empty list of strings and numbers")
        out.append((table, tuple(row)))
    return out


def _action(engine, action_policy: str | None, name: object, args: object) -> Step:
    if not isinstance(name, str):
        raise ServiceError("'action' must be the name of an action the action policy declares")
    if not isinstance(args, list) or not all(_scalar(v) for v in args):
        raise ServiceError("'args' must be a list of strings and numbers (the action's "
                           "arguments by position)")
    actions = declared_actions(engine, action_policy)
    if name not in actions:
        declared = ", ".join(sorted(actions)) or "none"
        raise ServiceError(f"{name} is not an action declared by action policy "
                           f"{action_policy} (it declares: {declared})")
    return action_step(name, args)


def _watched(engine, policy: str, tables: object) -> list[tuple[str, str]]:
    """``(label, qualified table)`` for each table whose rows are compared."""
    known = set(engine.tables())
    if tables is None:
        return [(t, f"{policy}:{t}") for t in VIOLATION_TABLES if f"{policy}:{t}" in known]
    if not isinstance(tables, list) or not tables or not all(
            isinstance(t, str) and t for t in tables):
        raise ServiceError("'tables' must be a non-empty list of table names")
    out = []
    for label in tables:
        qualified = label if ":" in label else f"{policy}:{label}"
        if qualified not in known:
            own = sorted(t.split(":", 1)[1] for t in known if t.startswith(policy + ":"))
            raise ServiceError(f"unknown table {label} (tables of policy {policy}: "
                               f"{', '.join(own) or 'none'})")
        out.append((label, qualified))
    return out


def _read(engine, table: str) -> set[tuple]:
    try:
        return engine.rows(table)
    except EngineError:
        return set()
