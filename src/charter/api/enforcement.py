"""Charter's enforcement endpoints: each policy's mode, the audit log, the webhook outbox.

Switching a policy to ``enforce`` lets its ``execute[...]`` rules change the cloud, so it
needs ``admin``; going back to ``dry-run`` (the safe direction) needs only ``editor``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from charter.api.deps import Caller, JsonBody, name_of
from charter.api.models import AUTH, BODY, POLICY, EnforcementBody, errors, parse, request_body
from charter.api.permissions import demand
from charter.store.records import AuditRecord, NotificationRecord

router = APIRouter(prefix="/v1")

MAX_LIMIT = 1000


def _enforcement_json(service, policy: str) -> dict:
    live = service.policies.get(policy)
    settings = service.enforcement.settings
    name = live.record.name
    return {"policy": name, "mode": live.record.enforcement,
            "max_actions_per_batch": settings.max_actions_per_batch,
            "max_actions_per_minute": settings.max_actions_per_minute,
            "pending_actions": service.enforcement.pending(name)}


@router.get("/policies/{policy}/enforcement", responses=errors(*AUTH, *POLICY))
def show_enforcement(*, policy: str, request: Request) -> dict:
    """The policy's enforcement mode (``dry-run`` or ``enforce``) and the limits in force."""
    return _enforcement_json(request.app.state.service, policy)


@router.put("/policies/{policy}/enforcement", responses=errors(*AUTH, *POLICY, *BODY),
            openapi_extra=request_body(EnforcementBody))
def set_enforcement(*, policy: str, request: Request, who: Caller, data: JsonBody) -> dict:
    """``{"mode": "dry-run" | "enforce"}``; ``enforce`` needs the admin role."""
    mode = parse(EnforcementBody, data).mode
    demand(who, request, f"mode={mode}")
    service = request.app.state.service
    service.policies.set_enforcement(policy, mode, name_of(who))
    return _enforcement_json(service, policy)


def audit_json(r: AuditRecord) -> dict:
    return {"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "policy": r.policy,
            "rule": r.rule, "row": list(r.row), "action": r.action, "arguments": r.arguments,
            "mode": r.mode, "result": r.result, "detail": r.detail}


@router.get("/audit", responses=errors(*AUTH, 400))
def audit(*, request: Request, policy: str | None = None,
          limit: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = 100) -> dict:
    """The newest audit entries first: every enforcement decision and mode change."""
    service = request.app.state.service
    if policy is not None:
        live = service.policies.find(policy)
        policy = live.record.name if live is not None else policy  # a deleted one's log stays
    entries = service.stored(service.store.audit, policy=policy, limit=limit)
    return {"results": [audit_json(r) for r in entries]}


def notification_json(n: NotificationRecord) -> dict:
    return {"id": n.id, "event_id": n.event_id, "webhook": n.webhook, "event": n.event,
            "policy": n.policy, "status": n.status, "attempts": n.attempts,
            "created_at": n.created_at.isoformat(),
            "next_attempt_at": n.next_attempt_at.isoformat() if n.status == "pending" else None,
            "delivered_at": n.delivered_at.isoformat() if n.delivered_at else None,
            "errors": list(n.errors), "payload": n.payload}


@router.get("/notifications", responses=errors(*AUTH, 400))
def notifications(*, request: Request, status: str | None = None,
                  webhook: str | None = None,
                  limit: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = 100) -> dict:
    """The webhook outbox, newest first: what was sent, what waits, and why it failed."""
    service = request.app.state.service
    entries = service.stored(service.store.notifications, status=status, webhook=webhook,
                             limit=limit)
    return {"results": [notification_json(n) for n in entries]}
