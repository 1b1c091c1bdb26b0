"""Charter's enforcement endpoints: each policy's mode, the audit log, the webhook outbox.

Switching a policy to ``enforce`` lets its ``execute[...]`` rules change the cloud, so it
needs ``admin``; going back to ``dry-run`` (the safe direction) needs only ``editor``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from charter.api.auth import AuthError
from charter.api.body import as_object
from charter.api.deps import Editor, JsonBody, Viewer
from charter.enforce.actions import ENFORCE
from charter.service.errors import ServiceError
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


@router.get("/policies/{policy}/enforcement")
def show_enforcement(*, policy: str, request: Request, _: Viewer) -> dict:
    """The policy's enforcement mode (``dry-run`` or ``enforce``) and the limits in force."""
    return _enforcement_json(request.app.state.service, policy)


@router.put("/policies/{policy}/enforcement")
def set_enforcement(*, policy: str, request: Request, who: Editor,
                    data: JsonBody) -> dict:
    """``{"mode": "dry-run" | "enforce"}``; ``enforce`` needs the admin role."""
    data = as_object(data, "an enforcement setting")
    unknown = set(data) - {"mode"}
    if unknown:
        raise ServiceError(f"unknown fields {sorted(unknown)}; send {{\"mode\": \"dry-run\" "
                           "or \"enforce\"}")
    mode = data.get("mode")
    if mode == ENFORCE and not who.allows("admin"):
        raise AuthError(403, f"{who.name} has role {who.role}; switching a policy to enforce "
                        "needs admin")
    service = request.app.state.service
    service.policies.set_enforcement(policy, mode, who.name)
    return _enforcement_json(service, policy)


def audit_json(r: AuditRecord) -> dict:
    return {"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "policy": r.policy,
            "rule": r.rule, "row": list(r.row), "action": r.action, "arguments": r.arguments,
            "mode": r.mode, "result": r.result, "detail": r.detail}


@router.get("/audit")
def audit(*, request: Request, _: Viewer, policy: str | None = None,
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


@router.get("/notifications")
def notifications(*, request: Request, _: Viewer, status: str | None = None,
                  webhook: str | None = None,
                  limit: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = 100) -> dict:
    """The webhook outbox, newest first: what was sent, what waits, and why it failed."""
    service = request.app.state.service
    entries = service.stored(service.store.notifications, status=status, webhook=webhook,
                             limit=limit)
    return {"results": [notification_json(n) for n in entries]}
