"""Enforcement in the running service: each batch's decisions stored with it, actions run
by a background worker, every decision audited.

:class:`charter.enforce.actions.Enforcer` decides; this stores the decisions (one
transaction per batch: a due action is in the outbox exactly when its row is recorded) and
gives the worker its outbox, its runner (the datasource's declared action) and the last
word on whether an action may still run (the policy may have been switched back to
dry-run, or deleted, or the row may have cleared while a retry waited).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from charter.enforce.actions import (
    BASELINE,
    DRY_RUN,
    ENFORCE,
    PENDING,
    ActionTable,
    Decision,
    Enforcer,
    Plan,
    action_table,
)
from charter.enforce.limits import CAPPED, RATE_LIMITED, WINDOW_S, Limits
from charter.enforce.worker import ActionFailed, ActionWorker
from charter.engine import TableDelta
from charter.lang.ast import Modal
from charter.lang.checks import head_table
from charter.service.config import EnforcementSettings
from charter.service.errors import ServiceError
from charter.service.service import utcnow
from charter.store.records import ActionRecord, AuditRecord

log = logging.getLogger(__name__)

ACTOR = "charter"
# Decisions that count against the rate limit (they ran, or would have, or may yet).
COUNTED = frozenset({PENDING, DRY_RUN, "done", "failed", "cancelled", "running"})



class Enforcement:
    def __init__(self, service, settings: EnforcementSettings) -> None:
        self.service = service
        self.settings = settings
        self.limits = Limits(settings.max_actions_per_batch, settings.max_actions_per_minute)
        self.enforcer = Enforcer(self.limits, self.mode_of)
        self.worker = ActionWorker(self, self._run, self._may_run,
                                   retries=settings.retries, backoff=settings.backoff_seconds,
                                   clock=utcnow)
        self.write_errors = 0
        # Actions found ``running`` at the restart: their call may have happened. They run
        # again only once every datasource has reported, and only if their row is still
        # derived then (a repair that took effect clears its own row): see settle.
        self.interrupted: dict[int, ActionRecord] = {}

    def start(self) -> None:
        self.worker.start()

    def close(self) -> None:
        self.worker.stop()

    def mode_of(self, policy: str) -> str:
        live = self.service.policies.find(policy)
        return live.record.enforcement if live is not None else DRY_RUN

    # ------------------------------------------------------------ batches (lock held)

    def update(self, deltas: Mapping[str, TableDelta], now: datetime) -> None:
        """Record the batch's transitions of ``execute[...]`` rows; wake the worker if due."""
        plan = self.enforcer.plan(deltas, now.timestamp())
        if not plan:
            return
        cleared = [(t.policy, t.name, row) for t, row in plan.cleared]
        try:
            written = self.service.store.record_actions(self._records(plan, now), cleared, now)
        except Exception as exc:  # the engine has moved on; these rows will not act
            self.enforcer.commit(plan, recorded=False)
            self.write_errors += 1
            log.error("enforcement: %d decisions not recorded, so not acted on: %s",
                      len(plan.decisions), exc)
            return
        self.enforcer.commit(plan)
        for rec in written:
            _log_decision(rec)
        if any(rec.status == PENDING for rec in written):
            self.worker.wake()

    def _records(self, plan: Plan, now: datetime) -> list[tuple[ActionRecord, AuditRecord | None]]:
        out = []
        for d in plan.decisions:
            pending = d.verdict == PENDING
            detail = self._why(d)
            rec = ActionRecord(
                id=0, policy=d.table.policy, table_name=d.table.name,
                datasource=d.table.datasource, action=d.table.action, row=d.row,
                rule=self.rule_text(d.table), mode=d.mode, status=d.verdict, attempts=0,
                derived_at=now, next_attempt_at=now if pending else None,
                finished_at=None if pending else now, detail=detail)
            out.append((rec, None if pending else audit_entry(rec, d.verdict, detail, now)))
        return out

    def _why(self, d: Decision) -> str:
        call = f"{d.table.datasource}:{d.table.action}({', '.join(map(repr, d.row))})"
        if d.verdict == DRY_RUN:
            own = (f"; {d.table.datasource} is the policy itself, which has no actions, so in "
                   "enforce mode the call fails" if _policy_own(d.table) else "")
            return f"would call {call} (policy {d.table.policy} is in dry-run mode{own})"
        if d.verdict == CAPPED:
            return (f"not called: more than {self.limits.per_batch} actions in one evaluation "
                    "(enforcement.max_actions_per_batch)")
        if d.verdict == RATE_LIMITED:
            return (f"not called: policy {d.table.policy} took {self.limits.per_minute} actions "
                    "in the last minute (enforcement.max_actions_per_minute)")
        if d.verdict == BASELINE:
            return "already derived when enforcement first saw it: not a new row, not acted on"
        return f"due: {call}"

    def rule_text(self, table: ActionTable) -> str:
        """The text of the policy's rules that derive ``table``, as the user wrote them."""
        live = self.service.policies.find(table.policy)
        if live is None:
            return ""
        texts = [rec.rule for rec, rule in live.rules.values()
                 if isinstance(rule.head, Modal)
                 and head_table(table.policy, rule.head) == table.qualified]
        return "\n".join(sorted(texts))

    # ------------------------------------------------------------ restart (lock held)

    def restore(self, now: datetime) -> None:
        """Take back the rows recorded before the restart; rows derived now but never
        recorded become ``baseline`` (they do not act); seed the rate limit."""
        svc = self.service
        recorded = [(ActionTable(r.policy, r.datasource, r.action), r.row)
                    for r in svc.stored(svc.store.open_actions)]
        derived: dict[ActionTable, set[tuple]] = {}
        for name in svc.engine.tables():
            table = action_table(name)
            if table is not None:
                derived[table] = svc.engine.rows(name)
        # They stay ``running`` in the store until settled: a restart killed before then
        # finds them so again (marked pending, a second restart would run them at once).
        self.interrupted = {rec.id: rec for rec in svc.stored(
            svc.store.actions, status="running", limit=1_000_000)}
        baseline = Plan(self.enforcer.restore(recorded, derived))
        if baseline:
            svc.stored(svc.store.record_actions, self._records(baseline, now), [], now)
            self.enforcer.commit(baseline)
        since = now - timedelta(seconds=WINDOW_S)
        recent = svc.stored(svc.store.actions, since=since, limit=100_000)
        by_policy: dict[str, list[float]] = {}
        for rec in recent:
            if rec.status in COUNTED:
                by_policy.setdefault(rec.policy, []).append(rec.derived_at.timestamp())
        for policy, times in by_policy.items():
            self.limits.seed(policy, times)

    def settle(self, now: datetime) -> None:
        """Every datasource has reported since the restart: rows recorded before it and not
        derived again have cleared (while the service was down)."""
        rows = self.enforcer.unsettled_rows()
        if rows:
            self.service.store.record_actions([], [(t.policy, t.name, r) for t, r in rows], now)
        self.enforcer.settle()
        self._resume_interrupted(now)

    def _resume_interrupted(self, now: datetime) -> None:
        """The actions interrupted while running: due again if their row is still derived
        (the call did not take effect, or not yet), else closed without a second call."""
        store = self.service.store
        for rec in list(self.interrupted.values()):
            table = ActionTable(rec.policy, rec.datasource, rec.action)
            if self.enforcer.derived(table, rec.row):
                store.finish_action(rec.id, status=PENDING, attempts=rec.attempts, at=now,
                                    next_attempt_at=now, detail=(
                                        "interrupted by a restart while running, and its row "
                                        "is still derived once every datasource reported: "
                                        "runs again"))
            else:
                detail = ("not called again: interrupted by a restart while running, and its "
                          "row was no longer derived once every datasource reported (the call "
                          "took effect, or is no longer wanted)")
                store.finish_action(rec.id, status="cancelled", attempts=rec.attempts, at=now,
                                    detail=detail,
                                    audit=audit_entry(rec, "cancelled", detail, now))
            del self.interrupted[rec.id]
        self.worker.wake()

    # ------------------------------------------------------------ the worker's outbox

    def due(self, now: datetime) -> list[ActionRecord]:
        return self.service.store.due_actions(now)

    def next_due(self) -> datetime | None:
        return self.service.store.next_action_at()

    def running(self, action: ActionRecord, now: datetime) -> None:
        self.service.store.start_action(action.id, now)

    def finish(self, action: ActionRecord, status: str, result: str, attempts: int,
               next_attempt_at: datetime | None, detail: str, now: datetime) -> None:
        self.service.store.finish_action(
            action.id, status=status, attempts=attempts, at=now,
            next_attempt_at=next_attempt_at, detail=detail,
            audit=audit_entry(action, result, detail, now))
        level = logging.INFO if result == "ok" else logging.WARNING
        log.log(level, "enforcement: %s:%s(%s) of policy %s: %s %s", action.datasource,
                action.action, ", ".join(map(repr, action.row)), action.policy, result, detail)

    def _may_run(self, action: ActionRecord) -> str | None:
        """Why a due action must not run now, or None: checked just before each attempt."""
        table = ActionTable(action.policy, action.datasource, action.action)
        with self.service.lock:
            live = self.service.policies.find(action.policy)
            if live is None:
                return f"not called: policy {action.policy} was deleted"
            if live.record.enforcement != ENFORCE:
                return (f"not called: policy {action.policy} was switched to "
                        f"{live.record.enforcement} mode")
            if not self.enforcer.derived(table, action.row):
                return "not called: the row is no longer derived"
        return None

    def _run(self, action: ActionRecord) -> Any:
        if action.datasource == action.policy:
            raise ActionFailed(own_action_message(action.policy, action.action), 404)
        try:
            return self.service.datasources.execute(
                action.datasource, action.action, {"positional": list(action.row)})
        except ServiceError as exc:
            raise ActionFailed(exc.message, exc.status) from exc

    # ------------------------------------------------------------ API

    def pending(self, policy: str) -> int:
        svc = self.service
        return len(svc.stored(svc.store.actions, policy=policy, status=PENDING, limit=100_000))


def _policy_own(table: ActionTable) -> bool:
    return table.datasource == table.policy


def own_action_message(policy: str, action: str) -> str:
    """Why an action written without a service (``execute[p(x)]``) is not called: its
    service is the policy itself, as in Congress (``congress/policy_engines/agnostic.py``,
    ``_execute_table``: ``service = service or theory``), and a policy offers no actions
    (Congress's ``execute_action`` logged "Service %s not found" and called nothing)."""
    return (f"{policy}:{action} is not called: execute[{action}(...)] names no service, so "
            f"its service is policy {policy} itself, which has no actions (Congress: "
            f"'Service {policy} not found'); write execute[<datasource>:{action}(...)] to "
            "call a datasource's action")


def audit_entry(action: ActionRecord, result: str, detail: str, now: datetime) -> AuditRecord:
    return AuditRecord(
        id=0, at=now, actor=ACTOR, policy=action.policy, rule=action.rule, row=action.row,
        action=f"{action.datasource}:{action.action}",
        arguments={"positional": list(action.row)}, mode=action.mode, result=result,
        detail=detail)


def _log_decision(rec: ActionRecord) -> None:
    if rec.status == PENDING:
        log.info("enforcement: %s:%s(%s) of policy %s is due", rec.datasource, rec.action,
                 ", ".join(map(repr, rec.row)), rec.policy)
    elif rec.status in (CAPPED, RATE_LIMITED):
        log.warning("enforcement: policy %s: %s", rec.policy, rec.detail)
    else:
        log.info("enforcement: policy %s: %s", rec.policy, rec.detail)
