"""Congress v1: policies, their rules and tables, simulate and execute; library policies."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from charter.api.body import as_object, flag
from charter.api.deps import (
    Editor,
    JsonBody,
    OptionalBody,
    Viewer,
    at_least,
    created,
    svc,
)
from charter.service import errors as E
from charter.service.errors import ServiceError
from charter.service.simulate import simulate
from charter.store.records import LibraryPolicyRecord, PolicyRecord, RuleRecord

router = APIRouter(prefix="/v1")


def policy_json(p: PolicyRecord) -> dict:
    return {"id": p.id, "name": p.name, "abbreviation": p.abbreviation,
            "description": p.description, "owner_id": p.owner_id, "kind": p.kind}


def rule_json(r: RuleRecord) -> dict:
    return {"id": r.id, "name": r.name, "rule": r.rule, "comment": r.comment}


def library_json(lib: LibraryPolicyRecord, include_rules: bool = True) -> dict:
    out = {"id": lib.id, "name": lib.name, "description": lib.description,
           "abbreviation": lib.abbreviation, "kind": lib.kind}
    if include_rules:
        out["rules"] = [{k: v for k, v in r.items() if v is not None} for r in lib.rules]
    return out


# ---------------------------------------------------------------- policies


@router.get("/policies")
def list_policies(*, request: Request, _: Viewer) -> dict:
    return {"results": [policy_json(p) for p in svc(request).policies.list()]}


@router.post("/policies", status_code=201)
def create_policy(*, request: Request, library_policy: str | None = None,
                  data: OptionalBody,
                  who: Editor) -> JSONResponse:
    service = svc(request)
    if library_policy is not None:
        if data:
            raise ServiceError("create a policy from a library policy with an empty body")
        rec, rules = service.library.activate(library_policy, owner=who.name)
    else:
        data = as_object(data, "a policy")
        if "id" in data:
            raise ServiceError("a policy's id is chosen by the server",
                               code=E.POLICY_ID_MUST_NOT_BE_PROVIDED)
        unknown = set(data) - {"name", "abbreviation", "kind", "description", "rules",
                               "owner_id"}
        if unknown:
            raise ServiceError(f"unknown policy fields {sorted(unknown)}; use name, "
                               "abbreviation, kind, description, rules")
        rules = data.get("rules")
        if rules is not None and not isinstance(rules, list):
            raise ServiceError("'rules' must be a list of {rule, name?, comment?} objects")
        rec, rules = service.policies.create(
            data.get("name"), abbreviation=data.get("abbreviation"), kind=data.get("kind"),
            description=data.get("description") or "", owner=who.name, rules=rules)
    out = policy_json(rec)
    if rules:
        out["rules"] = [rule_json(r) for r in rules]
    return created(f"/v1/policies/{rec.id}", out)


@router.get("/policies/{policy}")
def show_policy(*, policy: str, request: Request, _: Viewer) -> dict:
    return policy_json(svc(request).policies.get(policy).record)


@router.delete("/policies/{policy}")
def delete_policy(*, policy: str, request: Request, _: Editor) -> dict:
    return policy_json(svc(request).policies.delete(policy))


@router.post("/policies/{policy}")
def policy_action(*, policy: str, request: Request, action: str | None = None,
                  trace: str | None = None, delta: str | None = None,
                  data: OptionalBody,
                  who: Viewer) -> dict:
    service = svc(request)
    if action is None:
        raise ServiceError("Missing required action parameter.")
    if action == "simulate":
        data = as_object(data or {}, "a simulate request")
        return simulate(service, policy, data.get("query"), data.get("sequence"),
                        data.get("action_policy"), delta=flag(delta), trace=flag(trace))
    if action == "execute":
        at_least(who, "admin")
        data = as_object(data or {}, "an execute request")
        name = data.get("name")
        if not isinstance(name, str) or ":" not in name:
            raise ServiceError("execute needs 'name' as <datasource>:<action>, e.g. "
                               "nova:servers.pause", code=E.SERVICE_ACTION_SYNTAX)
        service.policies.get(policy)
        ds, _, act = name.partition(":")
        service.datasources.execute(ds, act, data.get("args"))
        return {}
    raise ServiceError(f"unknown action {action!r}: use simulate or execute")


@router.get("/policies/{policy}/status")
def policy_status(*, policy: str, request: Request, _: Viewer) -> dict:
    service = svc(request)
    with service.lock:
        live = service.policies.get(policy)
        name = live.record.name
        return {"id": live.record.id, "name": name, "rules": len(live.rules),
                "broken_rules": len(live.broken),
                "tables": len(service.policies.tables(policy)),
                "violations": len(service.violations.current(name))}


# ---------------------------------------------------------------- rules


@router.get("/policies/{policy}/rules")
def list_rules(*, policy: str, request: Request, _: Viewer) -> dict:
    return {"results": [rule_json(r) for r in svc(request).policies.rules(policy)]}


@router.post("/policies/{policy}/rules", status_code=201)
def create_rule(*, policy: str, request: Request, data: JsonBody,
                _: Editor) -> JSONResponse:
    data = as_object(data, "a rule")
    unknown = set(data) - {"rule", "name", "comment"}
    if unknown:
        raise ServiceError(f"unknown rule fields {sorted(unknown)}; use rule, name, comment")
    rec = svc(request).policies.add_rule(policy, data.get("rule"), data.get("name"),
                                         data.get("comment"))
    return created(f"/v1/policies/{policy}/rules/{rec.id}", rule_json(rec))


@router.get("/policies/{policy}/rules/{rule}")
def show_rule(*, policy: str, rule: str, request: Request, _: Viewer) -> dict:
    return rule_json(svc(request).policies.rule(policy, rule))


@router.delete("/policies/{policy}/rules/{rule}")
def delete_rule(*, policy: str, rule: str, request: Request,
                _: Editor) -> dict:
    return rule_json(svc(request).policies.delete_rule(policy, rule))


@router.get("/policies/{policy}/rules/{rule}/status")
def rule_status(*, policy: str, rule: str, request: Request,
                _: Viewer) -> dict:
    return svc(request).policies.rule_status(policy, rule)


# ---------------------------------------------------------------- tables


@router.get("/policies/{policy}/tables")
def list_tables(*, policy: str, request: Request, _: Viewer) -> dict:
    return {"results": [{"id": t} for t in svc(request).policies.tables(policy)]}


@router.get("/policies/{policy}/tables/{table}")
def show_table(*, policy: str, table: str, request: Request,
               _: Viewer) -> dict:
    if table not in svc(request).policies.tables(policy):
        raise ServiceError(f"No such table {table} in policy {policy}", status=404)
    return {"id": table}


@router.get("/policies/{policy}/tables/{table}/rows")
def list_rows(*, policy: str, request: Request, table: str, trace: str | None = None,
              _: Viewer) -> dict:
    service = svc(request)
    with service.lock:
        rows = service.policies.rows(policy, table)
        out: dict = {"results": [{"data": list(r)} for r in rows]}
        if flag(trace):
            rules = service.policies.defining_rules(policy, table)
            lines = [f"{table}: {len(rows)} rows"]
            lines += [f"  derived by rule {r.id}{' (' + r.name + ')' if r.name else ''}: "
                      f"{' '.join(r.rule.split())}" for r in rules]
            if not rules:
                lines.append("  no rule derives it: its rows are facts of the policy")
            out["trace"] = "\n".join(lines)
        return out


@router.get("/policies/{policy}/violations")
def violations(*, policy: str, request: Request, include_resolved: str | None = None,
               _: Viewer) -> dict:
    """Charter: the policy's current violations (``error``/``warning`` rows), first seen."""
    service = svc(request)
    with service.lock:
        name = service.policies.get(policy).record.name
        if flag(include_resolved):
            history = service.stored(service.store.violations, name, include_resolved=True)
            return {"results": [
                {"table": v.table, "row": list(v.row), "first_seen": v.first_seen.isoformat(),
                 "resolved_at": v.resolved_at.isoformat() if v.resolved_at else None}
                for v in history]}
        return {"results": [
            {"table": t, "row": list(r), "first_seen": seen.isoformat(), "resolved_at": None}
            for t, r, seen in service.violations.current(name)]}


# ---------------------------------------------------------------- library


@router.get("/librarypolicies")
def list_library(*, request: Request, name: str | None = None,
                 include_rules: str | None = None,
                 _: Viewer) -> dict:
    rules = include_rules is None or flag(include_rules)
    return {"results": [library_json(i, rules) for i in svc(request).library.list(name)]}


@router.post("/librarypolicies", status_code=201)
def create_library(*, request: Request, data: JsonBody,
                   _: Editor) -> JSONResponse:
    rec = svc(request).library.create(data)
    return created(f"/v1/librarypolicies/{rec.id}", library_json(rec))


@router.get("/librarypolicies/{lib}")
def show_library(*, lib: str, request: Request, include_rules: str | None = None,
                 _: Viewer) -> dict:
    rules = include_rules is None or flag(include_rules)
    return library_json(svc(request).library.get(lib), rules)


@router.put("/librarypolicies/{lib}")
def replace_library(*, lib: str, request: Request, data: JsonBody,
                    _: Editor) -> dict:
    return library_json(svc(request).library.replace(lib, data))


@router.delete("/librarypolicies/{lib}")
def delete_library(*, lib: str, request: Request, _: Editor) -> dict:
    return library_json(svc(request).library.delete(lib))
