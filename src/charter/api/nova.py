"""Nova's scheduler filter asks here: ``POST /v1/decisions/nova/{policy}``.

contrib/nova-filter's ``CharterFilter`` sends, once per request (not once per host), the
request spec's useful fields and the candidate hosts; the answer names the hosts that pass
and, for each other, why not. The policy's ``deny_host(host, reason)`` rows (read once over
``scheduler:spec``, ``scheduler:host`` and the live tables) refuse one host each; ``deny(reason)``
refuses them all. A policy that cannot be evaluated is answered by ``?fail=`` (``closed``,
the default, refuses every host; ``open`` passes them all).

Each decision is audited (``decision:nova``: the request, the refused hosts' reasons, the
rows) and counted (``charter_decisions_total{kind="nova"}``...) as the oslo route's are.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, ValidationError

from charter.api.decisions import audit_record, decided
from charter.api.deps import Caller, JsonBody, name_of
from charter.api.models import AUTH, BODY, errors, request_body
from charter.service.decisions import nova_rows, select
from charter.service.errors import ServiceError

router = APIRouter(prefix="/v1")
MAX_HOSTS = 10_000


class NovaHostsBody(BaseModel):
    """What the filter asks: may this request spec land on these hosts?"""

    spec: dict[str, Any] = Field(
        description="the RequestSpec's fields: project_id, user_id, flavor {name, vcpus, "
                    "memory_mb, root_gb, ephemeral_gb}, image {id, name}, instance_group "
                    "{uuid, policy, members, hosts}, scheduler_hints, availability_zone, "
                    "num_instances")
    hosts: list[str] = Field(max_length=MAX_HOSTS, description="the candidate compute hosts")


class NovaHostsAnswer(BaseModel):
    """The hosts that pass, in the order asked, and why each other does not."""

    hosts: list[str]
    refused: dict[str, list[str]]
    error: str | None = Field(None, description="set when the policy could not be evaluated; "
                                                "the answer is then the fail mode's")


FAIL = Query(None, description="when the policy cannot be evaluated: closed refuses every "
             "host, open passes them all; default: the decisions.fail setting")


@router.post("/decisions/nova/{policy}", response_model=NovaHostsAnswer,
             responses=errors(*AUTH, *BODY), openapi_extra=request_body(NovaHostsBody))
def nova_hosts(*, policy: str, request: Request, data: JsonBody, who: Caller,
               fail: Literal["closed", "open"] | None = FAIL) -> NovaHostsAnswer:
    """The hosts among ``hosts`` that ``policy`` lets ``spec`` land on: those with no
    ``deny_host(host, reason)`` row (and, when it defines ``deny``, only when ``deny`` has
    no row), evaluated once over the request's ``scheduler:spec``/``scheduler:host`` rows and the
    live tables."""
    body = _parse(data)
    app = request.app
    what = " ".join(str(body.spec.get(k)) for k in ("project_id", "instance_uuid")
                    if body.spec.get(k))
    selection = decided(
        app, "nova",
        lambda: select(app.state.service, policy, nova_rows(body.spec, body.hosts),
                       body.hosts, fail=fail or app.state.settings.decisions.fail),
        lambda chosen: audit_record(
            "nova", policy, name_of(who), f"schedule {what}".strip(),
            {"spec": body.spec, "hosts": body.hosts, "passed": chosen.passed},
            chosen.decision()))
    return NovaHostsAnswer(hosts=selection.passed, refused=selection.refused,
                           error=selection.error)


def _parse(data: Any) -> NovaHostsBody:
    if not isinstance(data, dict):
        raise ServiceError('the body must be a JSON object {"spec": {...}, "hosts": [...]} '
                           "(see docs/decisions.md)")
    try:
        return NovaHostsBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ServiceError(f"field {where!r}: {first['msg']}; send "
                           '{"spec": {...the request spec...}, "hosts": ["host", ...]} '
                           "(see docs/decisions.md)") from None
