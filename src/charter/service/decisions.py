"""Decisions as policy: may this request go ahead, by the rules of a policy the operator names.

A caller (oslo.policy's ``http:`` check, a Kubernetes admission webhook) describes its request
as rows of *request tables* (``oslo:target``, ``oslo:role``, ...), which the policy's rules
read like any datasource's tables and join with the live ones. The rows are applied with
simulate's machinery (under the service's lock, undone before the answer, published nowhere,
so no reader, history or enforcement sees them), and the policy's decision tables are read:

- ``deny(...)``: any row refuses; its rows are the reasons (one column: the text itself).
- ``allow(...)``: optional. A policy that defines it allows only when it has a row (default
  deny, as OPA's ``allow`` rules); without it, everything not denied is allowed. The two
  combine: a deny row refuses even where allow holds.

A decision that cannot be evaluated (no such policy, a policy with neither table, a rule
failing on the request's rows) answers by ``fail``: ``closed`` (refuse, the default) or
``open`` (allow); either way ``Decision.error`` says why, for the audit and the metrics.

Request tables that no rule reads are skipped: the engine does not hold a table nobody
reads, and a row nobody reads cannot change the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from charter.engine import Delta
from charter.lang.errors import CharterError
from charter.service.errors import ServiceError
from charter.service.simulate import Step, Update, format_row, projected, row_key

DENY, ALLOW = "deny", "allow"
FAIL_MODES = ("closed", "open")


@dataclass(frozen=True)
class Decision:
    """The answer: ``allowed``, the deny rows' texts as ``reasons``, and the rows of the
    decision tables that made it (``{"deny": [...], "allow": [...]}``, each table the policy
    defines). ``error`` is set when the policy could not be evaluated and ``allowed`` is then
    the fail mode's answer."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)
    rows: dict[str, list[tuple]] = field(default_factory=dict)
    error: str | None = None


def decide(service, policy: str, request_rows: Mapping[str, Iterable[Sequence]],
           *, fail: str = "closed",
           removed_rows: Mapping[str, Iterable[Sequence]] | None = None) -> Decision:
    """Evaluate ``policy``'s ``deny``/``allow`` over the live state plus ``request_rows``
    (``{"oslo:target": [("project.name", "x"), ...]}``: qualified table -> rows of strings
    and numbers) less ``removed_rows`` (an update's old object: rows the live state holds
    that the change takes out), nothing kept. ``fail`` (``closed``/``open``) answers a
    policy error."""
    if fail not in FAIL_MODES:
        raise ValueError(f"fail must be one of {FAIL_MODES}, not {fail!r}")
    try:
        return _evaluate(service, policy, request_rows, removed_rows or {})
    except (ServiceError, CharterError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        return Decision(allowed=fail == "open", error=message)


def _evaluate(service, policy: str, request_rows: Mapping[str, Iterable[Sequence]],
              removed_rows: Mapping[str, Iterable[Sequence]]) -> Decision:
    rows = _project(service, policy, request_rows, (DENY, ALLOW), (
        "policy {name} has no deny or allow table to decide with; add a rule such as "
        "deny(reason) :- oslo:rule(\"identity:create_project\"), ... (see docs/decisions.md)"),
        removed_rows)
    denied = rows.get(DENY, [])
    allowed = not denied and (ALLOW not in rows or bool(rows[ALLOW]))
    reasons = [_reason(row) for row in denied]
    if not allowed and not denied:
        reasons = [f"no allow row in policy {service.policies.get(policy).record.name}"]
    return Decision(allowed=allowed, reasons=reasons, rows=rows)


def _project(service, policy: str, request_rows: Mapping[str, Iterable[Sequence]],
             labels: Sequence[str], missing: str,
             removed_rows: Mapping[str, Iterable[Sequence]] | None = None
             ) -> dict[str, list[tuple]]:
    """The rows of ``policy``'s tables ``labels`` (those it defines; none: ``missing``, a
    message naming ``{name}``) with ``request_rows`` applied (``removed_rows`` taken out)
    and undone."""
    engine = service.engine
    with service.lock:
        name = service.policies.get(policy).record.name
        tables = {t: f"{name}:{t}" for t in labels if engine.has_table(f"{name}:{t}")}
        if not tables:
            raise ServiceError(missing.format(name=name))
        steps = _steps(engine, request_rows, removed_rows or {})
        with projected(engine, name, None, steps):
            return {label: sorted(engine.rows(table), key=row_key)
                    for label, table in tables.items()}


@dataclass(frozen=True)
class Selection:
    """Which of a request's candidates (Nova's hosts) may take it: ``passed`` in the order
    given, ``refused`` each refused candidate's reasons. ``error`` is set when the policy
    could not be evaluated: every candidate then passes (``fail=open``) or none does."""

    passed: list[str]
    refused: dict[str, list[str]]
    rows: dict[str, list[tuple]] = field(default_factory=dict)
    error: str | None = None

    @property
    def allowed(self) -> bool:
        """Some candidate passes."""
        return bool(self.passed)

    def decision(self) -> Decision:
        """The selection as one :class:`Decision` (for the audit and the metrics): allowed
        when some candidate passes; reasons ``host: reason``."""
        reasons = [f"{c}: {r}" for c, rs in self.refused.items() for r in rs]
        return Decision(allowed=bool(self.passed), reasons=reasons, rows=self.rows,
                        error=self.error)


def select(service, policy: str, request_rows: Mapping[str, Iterable[Sequence]],
           candidates: Sequence[str], *, table: str = "deny_host",
           fail: str = "closed") -> Selection:
    """Evaluate ``policy`` once for all ``candidates`` (their rows are in ``request_rows``,
    e.g. ``scheduler:host(name)``): a row ``<table>(candidate, reason)`` refuses that candidate,
    a ``deny(reason)`` row refuses every one. One projection, not one per candidate."""
    if fail not in FAIL_MODES:
        raise ValueError(f"fail must be one of {FAIL_MODES}, not {fail!r}")
    try:
        rows = _project(service, policy, request_rows, (table, DENY), (
            f"policy {{name}} has no {table} or deny table to decide with; add a rule such "
            f"as {table}(host, reason) :- scheduler:host(host), ... (see docs/decisions.md)"))
        refused: dict[str, list[str]] = {}
        for row in rows.get(table, []):
            if len(row) != 2:
                raise ServiceError(f"{table} has {len(row)} columns; write it with two: "
                                   f"{table}(candidate, reason) (see docs/decisions.md)")
            refused.setdefault(str(row[0]), []).append(str(row[1]))
    except (ServiceError, CharterError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        if fail == "open":
            return Selection(passed=list(candidates), refused={}, error=message)
        return Selection(passed=[], refused={c: [message] for c in candidates}, error=message)
    every = [_reason(row) for row in rows.get(DENY, [])]
    out = {c: every + refused.get(c, []) for c in candidates if every or c in refused}
    return Selection(passed=[c for c in candidates if c not in out], refused=out, rows=rows)


def _steps(engine, request_rows: Mapping[str, Iterable[Sequence]],
           removed_rows: Mapping[str, Iterable[Sequence]]) -> list[Step]:
    """One step of every request row: the engine applies (and simulate undoes) them as one
    change, so a rule over a large table is brought up to date once, not once per row. A
    removed row the state does not hold is no change (simulate skips it); a row both removed
    and given stays."""
    deltas = {(d.table, d.row): d for sign, given in ((-1, removed_rows), (1, request_rows))
              for d in signed_deltas(engine, given, sign, _width_error)}
    if not deltas:
        return []
    text = " ".join(format_row(d.table, d.row, "+" if d.sign > 0 else "-")
                    for d in deltas.values())
    return [Update(text, list(deltas.values()))]


def signed_deltas(engine, tables: Mapping[str, Iterable[Sequence]], sign: int,
                  mismatch: Callable[[str, int, tuple], str]) -> list[Delta]:
    """``tables``' rows as changes of ``sign``, less the tables no rule reads (the engine
    holds no table nobody reads, and a row nobody reads changes no answer). A row whose
    width is not the table's raises ``mismatch(table, width, row)``."""
    deltas: list[Delta] = []
    for table, rows in tables.items():
        if ":" not in table:
            raise ServiceError(f"request table {table!r} must be qualified, e.g. oslo:target")
        width = engine.arity(table)
        if width is None:
            continue  # no rule reads it
        for row in rows:
            row = tuple(row)
            if len(row) != width:
                raise ServiceError(mismatch(table, width, row))
            deltas.append(Delta(table, row, sign))
    return deltas


def _width_error(table: str, width: int, row: tuple) -> str:
    return (f"the policy's rules read {table} with {width} columns, the request gives rows "
            f"of {len(row)} ({format_row(table, row)}); write {table} with {len(row)} "
            "columns (see docs/decisions.md)")


def _reason(row: tuple) -> str:
    if len(row) == 1:
        return str(row[0])
    return format_row(DENY, row)


# ---------------------------------------------------------------- oslo.policy's request


def oslo_rows(rule: str | None, target: Mapping, credentials: Mapping) -> dict[str, list[tuple]]:
    """The request tables of an oslo.policy check (docs/decisions.md):

    - ``oslo:rule(name)``: the rule being checked (``identity:create_project``);
    - ``oslo:target(key, value)`` and ``oslo:credentials(key, value)``: each scalar, nested
      objects' keys joined with dots (``project.domain_id``), one row per element of a list
      under the list's key, booleans as ``"true"``/``"false"``, null as no row;
    - ``oslo:role(name)``: each of the credentials' ``roles``.
    """
    roles = credentials.get("roles") or []
    return {
        "oslo:rule": [(rule,)] if rule else [],
        "oslo:target": sorted(set(flatten(target)), key=row_key),
        "oslo:credentials": sorted(set(flatten(credentials)), key=row_key),
        "oslo:role": sorted({(r,) for r in roles if isinstance(r, str)}, key=row_key)
        if isinstance(roles, list) else [],
    }


def flatten(value: object, key: str = "") -> Iterable[tuple[str, str | int | float]]:
    """``(dotted key, scalar)`` pairs of a JSON value (see :func:`oslo_rows`)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from flatten(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from flatten(v, key)
    elif value is None or not key:
        return
    elif isinstance(value, bool):
        yield key, "true" if value else "false"
    elif isinstance(value, str | int | float):
        yield key, value
    else:
        yield key, json.dumps(value, default=str)


# ---------------------------------------------------------------- Nova's scheduler filter


def nova_rows(spec: Mapping, hosts: Sequence[str]) -> dict[str, list[tuple]]:
    """The request tables of a Nova host-filter question (docs/decisions.md):

    - ``scheduler:spec(key, value)``: the request spec flattened as :func:`oslo_rows` flattens a
      target (``flavor.memory_mb``, ``instance_group.policy``, one ``instance_group.hosts``
      row per host the group already uses, ``scheduler_hints.<hint>``);
    - ``scheduler:host(name)``: each candidate compute host.
    """
    return {
        "scheduler:spec": sorted(set(flatten(spec)), key=row_key),
        "scheduler:host": [(h,) for h in dict.fromkeys(hosts)],
    }
