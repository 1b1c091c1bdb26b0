"""Kubernetes validating admission webhook: ``POST /v1/decisions/kubernetes/{policy}``.

The API server sends an ``admission.k8s.io/v1`` AdmissionReview and gets one back, over
HTTPS (``charter serve`` with ``tls.certfile``/``tls.keyfile``; the manifest and the CA
bundle: deploy/kubernetes/validating-webhook.yaml, docs/decisions-kubernetes.md). A review
that is not one the API server sends is a 400 naming the field; a policy that cannot be
evaluated is answered by ``?fail=`` (``closed``, the default, refuses).

A decision reads and keeps nothing, so a dry-run request (``dryRun: true``) is answered the
same way, without side effects; the webhook declares ``sideEffects: None``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from charter.api.deps import JsonBody
from charter.api.models import AUTH, BODY, errors, request_body
from charter.service.kubernetes_admission import (
    DRIVER,
    decide_review,
    parse_review,
    review_response,
)

router = APIRouter(prefix="/v1")


class AdmissionReviewBody(BaseModel):
    """An ``admission.k8s.io/v1`` AdmissionReview as the API server sends it."""

    model_config = ConfigDict(extra="allow")

    apiVersion: Literal["admission.k8s.io/v1"]  # noqa: N815 (Kubernetes' field names)
    kind: Literal["AdmissionReview"]
    request: dict[str, Any] = Field(
        description="uid, kind, resource, subResource, namespace, name, operation, "
                    "userInfo, object, oldObject, dryRun, options")


@router.post("/decisions/kubernetes/{policy}", responses=errors(*AUTH, *BODY),
             openapi_extra=request_body(AdmissionReviewBody))
def kubernetes_admission(
    *, policy: str, request: Request, data: JsonBody,
    fail: Literal["closed", "open"] = Query(
        "closed", description="when the policy cannot be evaluated: closed refuses, open "
        "allows (with a warning)"),
    datasource: str = Query(
        DRIVER, description="the kubernetes datasource whose tables the object joins"),
    controls: str = Query(
        "", description="for a pack: the control ids (or id prefixes, e.g. K8S-PSS) that "
        "decide, comma-separated; all of the pack's when empty"),
) -> dict:
    """An AdmissionReview in, an AdmissionReview out: ``response.uid`` (the request's),
    ``allowed``, ``status`` (403 and the violated controls or deny reasons) when refused,
    and ``warnings``. ``policy`` is a decision policy (``deny``/``allow`` rules over the
    ``k8s:`` request tables and the live ones) or an enabled pack (its controls refuse the
    violations the object would add)."""
    review = parse_review(data)
    chosen = [c.strip() for c in controls.split(",") if c.strip()]
    verdict = decide_review(request.app.state.service, policy, review, fail=fail,
                            datasource=datasource, controls=chosen)
    return review_response(review.uid, verdict)
