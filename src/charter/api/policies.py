"""Congress v1: policies, their rules and tables, simulate and execute; library policies."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from charter.api.body import flag
from charter.api.deps import Caller, JsonBody, OptionalBody, created, name_of, svc
from charter.api.models import (
    AUTH,
    BODY,
    POLICY,
    LibraryPolicyBody,
    PolicyBody,
    PolicyExecuteBody,
    RuleBody,
    RuleCheckAnswer,
    RuleCheckBody,
    RuleReplaceBody,
    SimulateBody,
    errors,
    parse,
    request_body,
)
from charter.api.streaming import json_list, list_response
from charter.lang.errors import Diagnostic
from charter.service.errors import ServiceError
from charter.service.simulate import simulate
from charter.store.records import LibraryPolicyRecord, PolicyRecord, RuleRecord

router = APIRouter(prefix="/v1")


def policy_json(p: PolicyRecord) -> dict:
    return {"id": p.id, "name": p.name, "abbreviation": p.abbreviation,
            "description": p.description, "owner_id": p.owner_id, "kind": p.kind}


def rule_json(r: RuleRecord) -> dict:
    return {"id": r.id, "name": r.name, "rule": r.rule, "comment": r.comment}


def with_warnings(out: dict, warnings: list[Diagnostic]) -> dict:
    """Charter: ``warnings`` (diagnostics: a rule given twice, kept once) beside Congress's
    fields, only when there are any, so Congress's clients see Congress's shape."""
    if warnings:
        out["warnings"] = [w.to_json() for w in warnings]
    return out


def library_json(lib: LibraryPolicyRecord, include_rules: bool = True) -> dict:
    out = {"id": lib.id, "name": lib.name, "description": lib.description,
           "abbreviation": lib.abbreviation, "kind": lib.kind}
    if include_rules:
        out["rules"] = [{k: v for k, v in r.items() if v is not None} for r in lib.rules]
    return out


# ---------------------------------------------------------------- policies


@router.get("/policies", responses=errors(*AUTH))
def list_policies(*, request: Request) -> dict:
    return {"results": [policy_json(p) for p in svc(request).policies.list()]}


@router.post("/policies", status_code=201, responses=errors(*AUTH, *BODY, 404, 409),
             openapi_extra=request_body(PolicyBody, required=False))
def create_policy(*, request: Request, library_policy: str | None = None,
                  data: OptionalBody, who: Caller) -> JSONResponse:
    """A policy (``PolicyBody``), or with ``?library_policy=<id or name>`` and an empty body
    a copy of a library policy."""
    service = svc(request)
    warnings: list[Diagnostic] = []
    if library_policy is not None:
        if data:
            raise ServiceError("create a policy from a library policy with an empty body")
        rec, rules = service.library.activate(library_policy, owner=name_of(who),
                                              warnings=warnings)
    else:
        body = parse(PolicyBody, data)
        raw = data.get("rules")  # as sent: the service reads each rule's fields itself
        rec, rules = service.policies.create(
            body.name, abbreviation=body.abbreviation, kind=body.kind,
            description=body.description or "", owner=name_of(who), rules=raw,
            warnings=warnings)
    out = policy_json(rec)
    if rules:
        out["rules"] = [rule_json(r) for r in rules]
    return created(f"/v1/policies/{rec.id}", with_warnings(out, warnings))


@router.get("/policies/{policy}", responses=errors(*AUTH, *POLICY))
def show_policy(*, policy: str, request: Request) -> dict:
    return policy_json(svc(request).policies.get(policy).record)


@router.delete("/policies/{policy}", responses=errors(*AUTH, *POLICY))
def delete_policy(*, policy: str, request: Request) -> dict:
    return policy_json(svc(request).policies.delete(policy))


@router.post("/policies/{policy}", responses=errors(*AUTH, *POLICY, *BODY, 502),
             openapi_extra=request_body(SimulateBody, PolicyExecuteBody, required=False))
def policy_action(*, policy: str, request: Request, action: str | None = None,
                  trace: str | None = None, delta: str | None = None,
                  data: OptionalBody) -> dict:
    """``?action=simulate`` (``SimulateBody``; viewer) or ``?action=execute``
    (``PolicyExecuteBody``; admin). A service that answers the action badly: 502."""
    service = svc(request)
    if action is None:
        raise ServiceError("Missing required action parameter.")
    if action == "simulate":
        sim = parse(SimulateBody, data if data is not None else {})
        return simulate(service, policy, sim.query, sim.sequence, sim.action_policy,
                        delta=flag(delta), trace=flag(trace))
    if action == "execute":
        run = parse(PolicyExecuteBody, data if data is not None else {})
        service.policies.get(policy)
        ds, _, act = run.name.partition(":")
        service.datasources.execute(ds, act, data.get("args"))
        return {}
    raise ServiceError(f"unknown action {action!r}: use simulate or execute")


@router.get("/policies/{policy}/status", responses=errors(*AUTH, *POLICY))
def policy_status(*, policy: str, request: Request) -> dict:
    service = svc(request)
    with service.lock:
        live = service.policies.get(policy)
        name = live.record.name
        return {"id": live.record.id, "name": name, "rules": len(live.rules),
                "broken_rules": len(live.broken),
                "tables": len(service.policies.tables(policy)),
                "violations": len(service.violations.current(name))}


# ---------------------------------------------------------------- rules


@router.get("/policies/{policy}/rules", responses=errors(*AUTH, *POLICY))
def list_rules(*, policy: str, request: Request) -> dict:
    return {"results": [rule_json(r) for r in svc(request).policies.rules(policy)]}


@router.post("/policies/{policy}/rules", status_code=201,
             responses=errors(*AUTH, *POLICY, *BODY, 409), openapi_extra=request_body(RuleBody))
def create_rule(*, policy: str, request: Request, data: JsonBody) -> JSONResponse:
    body = parse(RuleBody, data)
    rec = svc(request).policies.add_rule(policy, body.rule, body.name, body.comment)
    return created(f"/v1/policies/{policy}/rules/{rec.id}", rule_json(rec))


@router.get("/policies/{policy}/rules/{rule}", responses=errors(*AUTH, *POLICY))
def show_rule(*, policy: str, rule: str, request: Request) -> dict:
    return rule_json(svc(request).policies.rule(policy, rule))


@router.put("/policies/{policy}/rules/{rule}", responses=errors(*AUTH, *POLICY, *BODY, 409),
            openapi_extra=request_body(RuleReplaceBody))
def replace_rule(*, policy: str, rule: str, request: Request, data: JsonBody) -> dict:
    """Charter: a rule's new text (``RuleReplaceBody``) in one batch, keeping its id; a text
    that does not check leaves the rule as it was (400, or 409 for a copy of another rule)."""
    body = parse(RuleReplaceBody, data)
    fields = {key: data[key] for key in ("name", "comment") if key in data}
    return rule_json(svc(request).policies.replace_rule(policy, rule, body.rule, fields))


@router.delete("/policies/{policy}/rules/{rule}", responses=errors(*AUTH, *POLICY))
def delete_rule(*, policy: str, rule: str, request: Request) -> dict:
    return rule_json(svc(request).policies.delete_rule(policy, rule))


@router.get("/policies/{policy}/rules/{rule}/status", responses=errors(*AUTH, *POLICY))
def rule_status(*, policy: str, rule: str, request: Request) -> dict:
    return svc(request).policies.rule_status(policy, rule)


@router.post("/policies/{policy}/check", responses={
        200: {"model": RuleCheckAnswer, "description": "What charter check says of the "
              "text in the live program."}, **errors(*AUTH, *POLICY, *BODY, 409)},
             openapi_extra=request_body(RuleCheckBody))
def check_rule(*, policy: str, request: Request, data: JsonBody) -> dict:
    """Charter: ``charter check``'s diagnostics of rule text (``RuleCheckBody``) as more
    rules of the policy (or, with ``replace``, in place of one), in the live program; for an
    editor, as the user types. Nothing is changed. 409: the program changed meanwhile."""
    body = parse(RuleCheckBody, data)
    found = svc(request).policies.check_text(policy, body.rule, body.replace)
    return {"ok": not any(d.is_error for d in found),
            "diagnostics": [checked_json(d) for d in found]}


def checked_json(d: Diagnostic) -> dict:
    s = d.span
    return {"severity": d.severity, "code": d.code, "message": d.message,
            "line": s.line if s else None, "column": s.col if s else None,
            "end_line": s.end_line if s else None, "end_column": s.end_col if s else None,
            "notes": list(d.notes)}


# ---------------------------------------------------------------- tables


@router.get("/policies/{policy}/tables", responses=errors(*AUTH, *POLICY))
def list_tables(*, policy: str, request: Request) -> dict:
    return {"results": [{"id": t} for t in svc(request).policies.tables(policy)]}


@router.get("/policies/{policy}/tables/{table}", responses=errors(*AUTH, *POLICY))
def show_table(*, policy: str, table: str, request: Request) -> dict:
    if table not in svc(request).policies.tables(policy):
        raise ServiceError(f"No such table {table} in policy {policy}", status=404)
    return {"id": table}


@router.get("/policies/{policy}/tables/{table}/rows",
            responses={**errors(*AUTH, *POLICY), **list_response(
                'The table\'s rows: {"results": [{"data": [value, ...]}, ...]} (and "trace" '
                "with ?trace=true), streamed when long.")})
def list_rows(*, policy: str, request: Request, table: str,
              trace: str | None = None) -> Response:
    service = svc(request)
    if not flag(trace):  # no service lock: the rows come from the copy kept for readers
        rows = service.policies.rows(policy, table)
        return json_list({}, "results", ({"data": r} for r in rows))
    with service.lock:  # the trace's rules and the rows from one state
        rows = service.policies.rows(policy, table)
        rules = service.policies.defining_rules(policy, table)
    lines = [f"{table}: {len(rows)} rows"]
    lines += [f"  derived by rule {r.id}{' (' + r.name + ')' if r.name else ''}: "
              f"{' '.join(r.rule.split())}" for r in rules]
    if not rules:
        lines.append("  no rule derives it: its rows are facts of the policy")
    return json_list({}, "results", ({"data": r} for r in rows), {"trace": "\n".join(lines)})


@router.get("/policies/{policy}/violations",
            responses={**errors(*AUTH, *POLICY), **list_response(
                'The policy\'s violations: {"results": [{"table", "row", "first_seen", '
                '"resolved_at"}, ...]}, streamed when long.')})
def violations(*, policy: str, request: Request,
               include_resolved: str | None = None) -> Response:
    """Charter: the policy's current violations (``error``/``warning`` rows), first seen."""
    service = svc(request)  # no service lock: the open violations have their own
    name = service.policies.get(policy).record.name
    if flag(include_resolved):
        history = service.stored(service.store.violations, name, include_resolved=True)
        return json_list({}, "results", (
            {"table": v.table, "row": v.row, "first_seen": v.first_seen.isoformat(),
             "resolved_at": v.resolved_at.isoformat() if v.resolved_at else None}
            for v in history))
    return json_list({}, "results", (
        {"table": t, "row": r, "first_seen": seen.isoformat(), "resolved_at": None}
        for t, r, seen in service.violations.current(name)))


# ---------------------------------------------------------------- library


@router.get("/librarypolicies", responses=errors(*AUTH, 400))
def list_library(*, request: Request, name: str | None = None,
                 include_rules: str | None = None) -> dict:
    rules = include_rules is None or flag(include_rules)
    return {"results": [library_json(i, rules) for i in svc(request).library.list(name)]}


@router.post("/librarypolicies", status_code=201, responses=errors(*AUTH, *BODY, 409),
             openapi_extra=request_body(LibraryPolicyBody))
def create_library(*, request: Request, data: JsonBody) -> JSONResponse:
    parse(LibraryPolicyBody, data)
    warnings: list[Diagnostic] = []
    rec = svc(request).library.create(data, warnings)
    return created(f"/v1/librarypolicies/{rec.id}", with_warnings(library_json(rec), warnings))


@router.get("/librarypolicies/{lib}", responses=errors(*AUTH, 400, 404))
def show_library(*, lib: str, request: Request, include_rules: str | None = None) -> dict:
    rules = include_rules is None or flag(include_rules)
    return library_json(svc(request).library.get(lib), rules)


@router.put("/librarypolicies/{lib}", responses=errors(*AUTH, *BODY, 404, 409),
            openapi_extra=request_body(LibraryPolicyBody))
def replace_library(*, lib: str, request: Request, data: JsonBody) -> dict:
    parse(LibraryPolicyBody, data)
    warnings: list[Diagnostic] = []
    rec = svc(request).library.replace(lib, data, warnings)
    return with_warnings(library_json(rec), warnings)


@router.delete("/librarypolicies/{lib}", responses=errors(*AUTH, 404))
def delete_library(*, lib: str, request: Request) -> dict:
    return library_json(svc(request).library.delete(lib))
