"""Kubernetes validating admission webhook: ``POST /v1/decisions/kubernetes/{policy}``.

The API server sends an ``admission.k8s.io/v1`` AdmissionReview and gets one back, over
HTTPS (``charter serve`` with ``tls.cert_file``/``tls.key_file``; the manifest and the CA
bundle: deploy/kubernetes/validating-webhook.yaml, docs/decisions.md). A review
that is not one the API server sends is a 400 naming the field; a policy that cannot be
evaluated is answered by ``?fail=`` (``closed``, the default, refuses).

Each decision is counted (``charter_decisions_total{kind="kubernetes"}``...) and audited
(``decision:kubernetes``: the Kubernetes user, the operation and object, the answer, the rows
that made it; never the object itself, which may be a Secret). A dry-run request
(``dryRun: true``) is decided the same way but not audited, so it has no side effect: the
webhook declares ``sideEffects: NoneOnDryRun``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from charter.api.decisions import audit_record, decided
from charter.api.deps import Caller, JsonBody, name_of
from charter.api.models import AUTH, BODY, errors, request_body
from charter.service.kubernetes_admission import (
    DRIVER,
    AdmissionRequest,
    Verdict,
    decide_review,
    parse_review,
    review_response,
)
from charter.store import AuditRecord

router = APIRouter(prefix="/v1")


class AdmissionReviewBody(BaseModel):
    """An ``admission.k8s.io/v1`` AdmissionReview as the API server sends it."""

    model_config = ConfigDict(extra="allow")

    apiVersion: Literal["admission.k8s.io/v1"]  # noqa: N815 (Kubernetes' field names)
    kind: Literal["AdmissionReview"]
    request: dict[str, Any] = Field(
        description="uid, kind, resource, subResource, namespace, name, operation, "
                    "userInfo, object, oldObject, dryRun, options")


FAIL = Query(None, description="when the policy cannot be evaluated: closed refuses, open "
             "allows (with a warning); default: the decisions.fail setting")
DATASOURCE = Query(DRIVER, description="the kubernetes datasource whose tables the object joins")


@router.post("/decisions/kubernetes/{policy}", responses=errors(*AUTH, *BODY, 404),
             openapi_extra=request_body(AdmissionReviewBody))
def kubernetes_admission(
    *, policy: str, request: Request, data: JsonBody, who: Caller,
    fail: Literal["closed", "open"] | None = FAIL, datasource: str = DATASOURCE,
    controls: str = Query("", description="for a pack: the control ids (or id prefixes, e.g. "
                          "K8S-PSS) that decide, comma-separated; all of the pack's when empty"),
) -> dict:
    """An AdmissionReview in, an AdmissionReview out: ``response.uid`` (the request's),
    ``allowed``, ``status`` (403 and the violated controls or deny reasons) when refused,
    and ``warnings``. ``policy`` is a decision policy (``deny``/``allow`` rules over the
    ``k8s:`` request tables and the live ones) or an enabled pack (its controls refuse the
    violations the object would add)."""
    return _review(request, policy, data, who, fail, datasource, controls)


@router.post("/decisions/kubernetes/{policy}/{controls}", responses=errors(*AUTH, *BODY, 404),
             openapi_extra=request_body(AdmissionReviewBody))
def kubernetes_admission_controls(
    *, policy: str, controls: str, request: Request, data: JsonBody, who: Caller,
    fail: Literal["closed", "open"] | None = FAIL, datasource: str = DATASOURCE,
) -> dict:
    """As ``/decisions/kubernetes/{policy}``, for a pack, with the controls that decide in
    the path (``K8S-PSS-002,K8S-PSS-1``: ids or id prefixes): a webhook's
    ``clientConfig`` takes a path but no query string."""
    return _review(request, policy, data, who, fail, datasource, controls)


def _review(request: Request, policy: str, data: Any, who: Any, fail: str | None,
            datasource: str, controls: str) -> dict:
    review = parse_review(data)
    chosen = [c.strip() for c in controls.split(",") if c.strip()]
    app = request.app
    verdict = decided(
        app, "kubernetes",
        lambda: decide_review(app.state.service, policy, review,
                              fail=fail or app.state.settings.decisions.fail,
                              datasource=datasource, controls=chosen),
        lambda verdict: None if review.dry_run else _audit(policy, name_of(who), review,
                                                           verdict))
    return review_response(review.uid, verdict)


def _audit(policy: str, actor: str, review: AdmissionRequest, verdict: Verdict) -> AuditRecord:
    """The decision's audit entry: who asked about what, never the object itself."""
    where = "/".join(p for p in (review.namespace, review.name) if p)
    return audit_record(
        "kubernetes", policy, actor, f"{review.operation} {review.resource} {where}".strip(),
        {"uid": review.uid, "user": review.user, "groups": list(review.groups),
         "kind": review.kind, "operation": review.operation, "namespace": review.namespace,
         "name": review.name, "sub_resource": review.sub_resource},
        verdict)
