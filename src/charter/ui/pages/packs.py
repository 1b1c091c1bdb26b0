"""Packs: each installed pack, enabled or not, and an enabled pack's posture per control,
like a benchmark report (passing / failing / not evaluated, with the reason)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from charter.api.auth import Principal
from charter.service.errors import ServiceError
from charter.service.packs import STATUSES
from charter.ui.deps import Viewer, allowed, needs
from charter.ui.render import render

router = APIRouter()


@router.get("/packs")
def packs(request: Request, user: Viewer) -> Response:
    service = request.app.state.service
    listed = []
    for pack, record in service.packs.list():
        summary = service.packs.posture(pack.id).summary() if record is not None else None
        listed.append({"pack": pack, "record": record, "summary": summary})
    return render(request, "packs.html", {
        "title": "Packs", "packs": listed,
        "broken": service.packs.installed.broken,
        "may_enable": allowed(user, "POST", "/v1/packs/{pack}", "?action=enable"),
    })


@router.get("/packs/{pack}")
def pack(request: Request, user: Viewer, pack: str, status: str | None = None) -> Response:
    service = request.app.state.service
    found = service.packs.get(pack)
    record = service.packs.enabled.get(found.id)
    posture = service.packs.posture(found.id) if record is not None else None
    controls = posture.controls if posture is not None else []
    if status in STATUSES:
        controls = [c for c in controls if c.status == status]
    return render(request, "pack.html", {
        "title": found.spec.title, "pack": found, "record": record, "posture": posture,
        "controls": controls, "status": status, "statuses": STATUSES,
        "may_enable": allowed(user, "POST", "/v1/packs/{pack}", "?action=enable"),
    })


@router.post("/packs/{pack}")
def change(request: Request, pack: str, action: Annotated[str, Form()],
           user: Annotated[Principal, needs("POST", "/v1/packs/{pack}", "?action=enable")],
           ) -> Response:
    """Enable or disable a pack with its default parameters (the CLI and API take others)."""
    service = request.app.state.service
    found = service.packs.get(pack)
    if action == "enable":
        service.packs.enable(found.id, who=user.name)
    elif action == "disable":
        service.packs.disable(found.id)
    else:
        raise ServiceError(f"unknown action {action!r}: enable or disable")
    return RedirectResponse(f"/ui/packs/{found.id}", status_code=303)
