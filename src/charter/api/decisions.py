"""Decisions other services ask for: ``POST /v1/decisions/oslo/{policy}``, oslo.policy's
``http:`` check.

oslo.policy's ``HttpCheck`` POSTs the rule being checked, the target and the caller's
credentials, form-encoded by default (each field a JSON text: ``rule=json.dumps(rule)``) or
as one JSON object when ``remote_content_type = application/json``, and allows exactly when
the answer's text, quotes stripped, is ``True``. So the answer is the text ``True`` or
``False``; a malformed request is a 400 (also read as a refusal by oslo.policy) whose
message names the field and the fix, for the operator reading the service's log.

Each decision is audited (``GET /v1/audit?policy=<policy>``: the caller, the rule, the answer,
the deny rows, the request) and counted (``charter_decisions_total``,
``charter_decision_errors_total``, ``charter_decision_seconds``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from charter.api.body import read_body
from charter.api.deps import Caller, name_of
from charter.api.models import AUTH, BODY, DOCUMENTED, errors
from charter.lang.limits import InputError, load_json
from charter.service.decisions import Decision, decide, oslo_rows
from charter.service.errors import ServiceError
from charter.service.kubernetes_admission import Verdict
from charter.store import AuditRecord

router = APIRouter(prefix="/v1")

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
FIELDS = ("rule", "target", "credentials")
SHAPE = ("oslo.policy's http: check sends rule, target and credentials (form fields holding "
         "JSON texts, or one JSON object with remote_content_type = application/json)")
SECRET_WORDS = ("token", "password", "secret")
ANSWER = {
    200: {"description": "the decision: the text True or False",
          "content": {"text/plain": {"schema": {"type": "string", "enum": ["True", "False"]}}}},
}


class OsloCheckForm(BaseModel):
    """oslo.policy's default request (``application/x-www-form-urlencoded``): each field
    a JSON text."""

    rule: str | None = Field(None, description='json.dumps(rule): "identity:create_project"')
    target: str = Field(description="json.dumps(target): a JSON object")
    credentials: str = Field(description="json.dumps(credentials): a JSON object")


class OsloCheckBody(BaseModel):
    """oslo.policy's request with ``remote_content_type = application/json``."""

    rule: str | None = Field(None, description="the rule checked: identity:create_project")
    target: dict[str, Any] = Field(description="the target oslo.policy was given")
    credentials: dict[str, Any] = Field(description="the caller's credentials")


DOCUMENTED.update({m.__name__: m for m in (OsloCheckForm, OsloCheckBody)})


def _json_errors(*statuses: int) -> dict:
    """``errors()`` with their JSON content spelled out: the route's own answer is text, and
    FastAPI would otherwise describe the error bodies as text too."""
    out = errors(*statuses)
    for response in out.values():
        model = response.pop("model")
        response["content"] = {JSON: {"schema": {
            "$ref": f"#/components/schemas/{model.__name__}"}}}
    return out


def _ref(model: type[BaseModel]) -> dict:
    return {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}


@router.post("/decisions/oslo/{policy}", response_class=PlainTextResponse,
             responses={**ANSWER, **_json_errors(*AUTH, *BODY)},
             openapi_extra={"requestBody": {"required": True, "content": {
                 JSON: _ref(OsloCheckBody), FORM: _ref(OsloCheckForm)}}})
async def oslo(*, policy: str, request: Request, who: Caller) -> PlainTextResponse:
    """oslo.policy's ``http:`` check: ``True`` when ``policy`` has no ``deny`` row (and an
    ``allow`` row, if it defines ``allow``) for the request, else ``False``."""
    rule, target, credentials = parse_oslo(request.headers.get("content-type", ""),
                                           await read_body(request))
    decision = await run_in_threadpool(_decide, request, policy, name_of(who), rule, target,
                                       credentials)
    return PlainTextResponse("True" if decision.allowed else "False")


def _decide(request: Request, policy: str, actor: str, rule: str | None, target: dict,
            credentials: dict) -> Decision:
    app = request.app
    return decided(
        app, "oslo",
        lambda: decide(app.state.service, policy, oslo_rows(rule, target, credentials),
                       fail=app.state.settings.decisions.fail),
        lambda decision: audit_record(
            "oslo", policy, actor, rule or "", {"target": target, "credentials": credentials},
            decision))


class Answer(Protocol):
    """What a decision answers (a Decision, a Kubernetes Verdict, a Nova Selection)."""

    @property
    def allowed(self) -> bool: ...

    @property
    def error(self) -> str | None: ...


A = TypeVar("A", bound=Answer)


def decided(app, kind: str, decide_: Callable[[], A],
            audit: Callable[[A], AuditRecord | None]) -> A:
    """Make a decision of ``kind``, write its audit entry (``audit`` may give none: a dry
    run), and count it in the metrics, as an error too when deciding or auditing raised."""
    start = time.perf_counter()
    answer: A | None = None
    try:
        answer = decide_()
        record = audit(answer)
        if record is not None:
            app.state.service.store.append_audit(record)
    finally:
        app.state.metrics.decided(kind, answer is not None and answer.allowed,
                                  answer is None or answer.error is not None,
                                  time.perf_counter() - start)
    return answer


def audit_record(kind: str, policy: str, actor: str, what: str, request: dict,
                 decision: Decision | Verdict) -> AuditRecord:
    """The audit entry of one decision (``kind``: ``oslo``, ``kubernetes``, ``nova``): ``what`` is
    asked (the oslo.policy rule), ``request`` the request as received (secrets redacted
    here), and the deny/allow rows that made the answer."""
    result = "allowed" if decision.allowed else "denied"
    detail = "; ".join(decision.reasons)
    if decision.error is not None:
        result += " (policy error)"
        detail = decision.error
    return AuditRecord(
        id=0, at=datetime.now(UTC), actor=actor, policy=policy, rule=what,
        row=tuple(decision.reasons), action=f"decision:{kind}",
        arguments=_redacted(request) | {
            "rows": {t: [list(r) for r in rows] for t, rows in decision.rows.items()}},
        mode="decision", result=result, detail=detail)


def _redacted(value: Any) -> Any:
    """The request as audited: values under keys naming a token, password or secret hidden
    (older services pass their whole request context, ``auth_token`` included)."""
    if isinstance(value, dict):
        return {k: "***" if any(w in str(k).lower() for w in SECRET_WORDS) else _redacted(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def parse_oslo(content_type: str, raw: bytes) -> tuple[str | None, dict, dict]:
    """``(rule, target, credentials)`` from what oslo.policy's ``HttpCheck`` sends."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == JSON:
        body = _json(raw, "the request body")
        if not isinstance(body, dict):
            raise ServiceError(f"the request body must be a JSON object; {SHAPE}")
        fields = body
    elif media in (FORM, ""):
        fields = _form(raw)
    else:
        raise ServiceError(f"content type {media!r} is not one oslo.policy sends; send {FORM} "
                           f"or {JSON} ({SHAPE})")
    for name in ("target", "credentials"):
        if name not in fields:
            raise ServiceError(f"field {name!r} is missing; {SHAPE}")
    rule = fields.get("rule")
    target, credentials = fields["target"], fields["credentials"]
    if media != JSON:
        rule = _form_rule(rule)
        target = _json(target, "form field 'target'")
        credentials = _json(credentials, "form field 'credentials'")
    for name, value in (("target", target), ("credentials", credentials)):
        if not isinstance(value, dict):
            raise ServiceError(f"{name!r} must be a JSON object (oslo.policy sends a dict), "
                               f"not {_kind(value)}")
    if rule is not None and not isinstance(rule, str):
        raise ServiceError(f"'rule' must be the name of the rule checked (a string) or null, "
                           f"not {_kind(rule)}")
    return rule, target, credentials


def _form(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError("the form body is not UTF-8 text") from None
    parsed = parse_qs(text, keep_blank_values=True)
    repeated = sorted(k for k, v in parsed.items() if len(v) > 1 and k in FIELDS)
    if repeated:
        raise ServiceError(f"form field {repeated[0]!r} is given more than once; give it once")
    return {k: v[0] for k, v in parsed.items()}


def _form_rule(value: str | None) -> str | None:
    """oslo.policy sends ``json.dumps(rule)`` (``"identity:get_user"``, or ``null``); a bare
    rule name is taken as it is."""
    if value is None or value == "":
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if decoded is None or isinstance(decoded, str) else value


def _json(raw: bytes | str, where: str) -> Any:
    try:
        return load_json(raw, where)
    except InputError as exc:
        raise ServiceError(str(exc), data=[exc.to_json()]) from None
    except UnicodeDecodeError:
        raise ServiceError(f"{where} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ServiceError(f"{where} is not JSON (line {exc.lineno} column {exc.colno}: "
                           f"{exc.msg}); {SHAPE}") from None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
