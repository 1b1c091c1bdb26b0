"""Enforcement: each policy's mode (dry-run / enforce) with its pending actions, the
switch (to enforce: admin, after a confirmation; back to dry-run: editor, as the API's
permission table says), the audit log a page at a time, and the outbox's actions due and
failed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from charter.api.auth import Principal
from charter.api.permissions import role_for
from charter.enforce.actions import DRY_RUN, ENFORCE, MODES, PENDING
from charter.service.errors import ServiceError
from charter.service.service import utcnow
from charter.ui.deps import Forbidden, Viewer, allowed, needs
from charter.ui.render import render

router = APIRouter()

API = "/v1/policies/{policy}/enforcement"
AUDIT_PAGE = 50
ACTIONS_SHOWN = 50
ALL_PENDING = 100_000


def _next_url(target: str) -> str:
    """Back to the enforcement page with the user's filters (only that page)."""
    return target if target.startswith("/ui/enforcement") and "//" not in target \
        else "/ui/enforcement"


def _aware(when: datetime | None) -> datetime | None:
    """A stored time in UTC (SQLite gives them back without a zone)."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


@router.get("/enforcement")
def enforcement(request: Request, user: Viewer, policy: str | None = None,
                before: int | None = None, failed_before: int | None = None) -> Response:
    service = request.app.state.service
    policy = policy or None
    if policy is not None:  # a deleted policy's log stays, under its name
        live = service.policies.find(policy)
        policy = live.record.name if live is not None else policy
    now = utcnow()
    pending = service.stored(service.store.actions, status=PENDING, limit=ALL_PENDING)
    pending_by_policy = Counter(a.policy for a in pending)
    audit = service.stored(service.store.audit, policy=policy, limit=AUDIT_PAGE + 1,
                           before=before)
    failed = service.stored(service.store.actions, policy=policy, status="failed",
                            limit=ACTIONS_SHOWN + 1, before=failed_before)
    running = service.stored(service.store.actions, policy=policy, status="running",
                             limit=ACTIONS_SHOWN)
    due = [a for a in pending if policy is None or a.policy == policy]
    due.sort(key=lambda a: (_aware(a.next_attempt_at) or now, a.id))
    due_now = {a.id for a in due if (_aware(a.next_attempt_at) or now) <= now}
    settings = service.enforcement.settings
    return render(request, "enforcement.html", {
        "title": "Enforcement",
        "policies": service.policies.list(),
        "pending": pending_by_policy,
        "policy": policy, "before": before, "failed_before": failed_before,
        "audit": audit[:AUDIT_PAGE],
        "audit_older": audit[AUDIT_PAGE - 1].id if len(audit) > AUDIT_PAGE else None,
        "due": due[:ACTIONS_SHOWN], "due_total": len(due), "due_now": due_now, "running": running,
        "failed": failed[:ACTIONS_SHOWN],
        "failed_older": failed[ACTIONS_SHOWN - 1].id if len(failed) > ACTIONS_SHOWN else None,
        "now": now, "limits": settings,
        "may_enforce": allowed(user, "PUT", API, "mode=enforce"),
        "may_dry_run": allowed(user, "PUT", API),
        "DRY_RUN": DRY_RUN, "ENFORCE": ENFORCE,
    })


@router.post("/enforcement/{policy}")
def switch(request: Request, policy: str, user: Annotated[Principal, needs("PUT", API)],
           mode: Annotated[str, Form()], confirm: Annotated[str, Form()] = "",
           next: Annotated[str, Form()] = "/ui/enforcement") -> Response:
    """Set a policy's mode, as ``PUT /v1/policies/{policy}/enforcement``: ``enforce``
    needs the admin role (the table's ``mode=enforce`` row) and a confirmation."""
    if mode not in MODES:
        raise ServiceError(f"enforcement mode must be one of {', '.join(MODES)}; got {mode!r}")
    if mode == ENFORCE and not user.allows(role_for("PUT", API, "mode=enforce")):
        raise Forbidden(f"'{user.name}' has role {user.role}; switching a policy to enforce "
                        f"needs {role_for('PUT', API, 'mode=enforce')}")
    service = request.app.state.service
    live = service.policies.get(policy)
    name = live.record.name
    if mode == ENFORCE and confirm != "yes" and live.record.enforcement != ENFORCE:
        with service.lock:  # the policy's execute[...] tables: what it would call
            actions = sorted(t.removeprefix(f"{name}:") for t in service.engine.tables()
                             if t.startswith(f"{name}:execute["))
        return render(request, "enforcement_confirm.html", {
            "title": f"Enforce {name}?", "record": live.record, "next": _next_url(next),
            "actions": actions,
        })
    service.policies.set_enforcement(name, mode, user.name)
    return RedirectResponse(_next_url(next), status_code=303)
