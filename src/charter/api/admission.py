"""Charter's admission check: ``POST /v1/policies/{policy}/admission``.

Answers, before a change is made, which violations it would add and which it would clear,
so a deployment pipeline or an admission webhook can refuse changes that break policy.
Simulating changes nothing anyone else sees, so a viewer may ask.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from charter.api.deps import JsonBody
from charter.api.models import AUTH, BODY, POLICY, AdmissionBody, errors, parse, request_body
from charter.service.admission import admit

router = APIRouter(prefix="/v1")


@router.post("/policies/{policy}/admission", responses=errors(*AUTH, *POLICY, *BODY),
             openapi_extra=request_body(AdmissionBody))
def admission(*, policy: str, request: Request, data: JsonBody) -> dict:
    """``{"insert": [{"table", "row"}], "delete": [...], "action"?, "args"?, "tables"?,
    "action_policy"?}`` -> ``{"allowed", "appear": [{"table", "row"}], "clear": [...]}``;
    ``allowed`` is true when no violation would appear."""
    parse(AdmissionBody, data)
    found = admit(request.app.state.service, policy, data)
    return {"allowed": not found["appear"], **found}
