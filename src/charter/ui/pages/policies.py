"""Policies: the list, one policy's rules with an editor that shows ``charter check``'s
diagnostics as the user types, and the policy's tables, browsable a page at a time.

Every form stands for an API request (``needs``) and calls the same service method that
request would: creating a policy, adding a rule, replacing one (the PUT that swaps a rule
in one batch), deleting. The editor's live check calls the service's rule check (what
``POST /v1/policies/{policy}/check`` answers) and the page renders its diagnostics, so there
is one checker, on the server, and none in JavaScript.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from charter.api.auth import Principal
from charter.lang.errors import Diagnostic
from charter.service.errors import ServiceError
from charter.service.policies import KINDS
from charter.service.violations import VIOLATION_TABLES
from charter.ui.deps import Viewer, allowed, needs
from charter.ui.render import render

router = APIRouter()

PAGE_SIZES = (25, 50, 100, 500)
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class Finding:
    """A diagnostic as the editor shows it: placed in the typed text (1-based)."""

    severity: str
    code: str
    message: str
    line: int | None
    column: int | None
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, d: Diagnostic) -> Finding:
        s = d.span
        return cls(d.severity, d.code, d.message, s.line if s else None,
                   s.col if s else None, tuple(d.notes))

    @classmethod
    def from_json(cls, d: dict) -> Finding:
        """One entry of a refusal's ``error_data`` (``Diagnostic.to_json``)."""
        return cls(str(d.get("severity", "error")), str(d.get("code", "")),
                   str(d.get("message", "")), d.get("line"), d.get("col"),
                   tuple(d.get("notes") or ()))


def source_lines(text: str, findings: list[Finding]) -> list[dict]:
    """The typed text line by line, each with the findings placed on it (the editor's
    gutter: a line with an error is marked, with a caret under the column)."""
    lines = text.split("\n") if text else []
    out = [{"number": i + 1, "text": line, "findings": []} for i, line in enumerate(lines)]
    for f in findings:
        if f.line is not None and 0 < f.line <= len(out):
            out[f.line - 1]["findings"].append(f)
    return out


def explain_url(policy: str, table: str, row: tuple | list) -> str:
    """The Explain page of one row (``?row=`` a JSON list)."""
    return (f"/ui/explain/{quote(policy, safe='')}/{quote(table, safe='')}"
            f"?row={quote(json.dumps(list(row), ensure_ascii=False), safe='')}")


def _violations(service, name: str) -> int:
    """How many violations of the policy are open now (the violations page's count)."""
    return sum(len(service.violations.open.get((name, t), {})) for t in VIOLATION_TABLES)


# ---------------------------------------------------------------- the list


def _list_page(request: Request, user: Principal, *, error: str | None = None,
               form: dict | None = None, status: int = 200) -> Response:
    service = request.app.state.service
    rows = []
    with service.lock:
        for rec in service.policies.list():
            live = service.policies.find(rec.id)
            if live is None:
                continue
            rows.append({"record": rec, "rules": len(live.rules), "broken": len(live.broken),
                         "violations": _violations(service, rec.name)})
    deleted = request.query_params.get("deleted")
    return render(request, "policies.html", {
        "title": "Policies", "policies": rows, "kinds": KINDS, "error": error,
        "form": form or {"name": "", "abbreviation": "", "kind": "nonrecursive",
                         "description": ""},
        "deleted": deleted,
        "may_create": allowed(user, "POST", "/v1/policies"),
        "may_delete": allowed(user, "DELETE", "/v1/policies/{policy}"),
        "may_enable": allowed(user, "POST", "/v1/packs/{pack}", "?action=enable"),
    }, status=status)


@router.get("/policies")
def policies(request: Request, user: Viewer) -> Response:
    return _list_page(request, user)


@router.post("/policies")
def create_policy(request: Request,
                  user: Annotated[Principal, needs("POST", "/v1/policies")],
                  name: Annotated[str, Form()] = "",
                  abbreviation: Annotated[str, Form()] = "",
                  kind: Annotated[str, Form()] = "nonrecursive",
                  description: Annotated[str, Form()] = "") -> Response:
    service = request.app.state.service
    form = {"name": name, "abbreviation": abbreviation, "kind": kind,
            "description": description}
    try:
        rec, _ = service.policies.create(name.strip() or None,
                                         abbreviation=abbreviation.strip() or None,
                                         kind=kind or None, description=description,
                                         owner=user.name)
    except ServiceError as exc:
        return _list_page(request, user, error=exc.message, form=form, status=exc.status)
    return RedirectResponse(f"/ui/policies/{quote(rec.name, safe='')}", status_code=303)


@router.post("/policies/{policy}/delete")
def delete_policy(request: Request, policy: str,
                  user: Annotated[Principal, needs("DELETE", "/v1/policies/{policy}")],
                  ) -> Response:
    rec = request.app.state.service.policies.delete(policy)
    return RedirectResponse(f"/ui/policies?deleted={quote(rec.name, safe='')}",
                            status_code=303)


# ---------------------------------------------------------------- one policy


def _policy_page(request: Request, user: Principal, policy: str, *,
                 editing: str | None = None, text: str | None = None,
                 name: str = "", comment: str = "", error: str | None = None,
                 findings: list[Finding] | None = None, status: int = 200) -> Response:
    service = request.app.state.service
    with service.lock:
        live = service.policies.get(policy)
        rec = live.record
        rules = sorted((r for r, _ in live.rules.values()), key=lambda r: r.created_at)
        broken = dict(live.broken)
        tables = []
        for table in service.policies.tables(rec.id):
            qualified = f"{rec.name}:{table}"
            count = service.engine.count(qualified) if service.engine.has_table(qualified) \
                else 0
            tables.append({"name": table, "rows": count})
        violations = _violations(service, rec.name)
    edited = None
    if editing is not None:
        edited = next((r for r in rules if r.id == editing or r.name == editing), None)
        if edited is None:
            raise ServiceError(f"No such rule {editing} in policy {rec.name}: pick one of "
                               "the list to edit", status=404)
        if text is None:
            text, name, comment = edited.rule, edited.name or "", edited.comment or ""
    may_edit = allowed(user, "POST", "/v1/policies/{policy}/rules")
    return render(request, "policy.html", {
        "title": rec.name, "policy": rec, "rules": rules, "broken": broken,
        "tables": tables, "violations": violations,
        "edited": edited, "text": text or "", "rule_name": name, "rule_comment": comment,
        "error": error, "findings": findings or None,
        "lines": source_lines(text or "", findings or []),
        "may_edit": may_edit,
        "may_replace": allowed(user, "PUT", "/v1/policies/{policy}/rules/{rule}"),
        "may_delete_rule": allowed(user, "DELETE", "/v1/policies/{policy}/rules/{rule}"),
        "may_delete": allowed(user, "DELETE", "/v1/policies/{policy}"),
        "may_check": allowed(user, "POST", "/v1/policies/{policy}/check"),
        "may_enable": allowed(user, "POST", "/v1/packs/{pack}", "?action=enable"),
    }, status=status)


@router.get("/policies/{policy}")
def policy_page(request: Request, user: Viewer, policy: str,
                edit: str | None = None) -> Response:
    return _policy_page(request, user, policy, editing=edit or None)


def _refused(request: Request, user: Principal, policy: str, exc: ServiceError, *,
             editing: str | None, text: str, name: str, comment: str) -> Response:
    """The page again with the user's text, the refusal in words and its diagnostics at
    their lines (the same check the editor ran as they typed)."""
    findings = [Finding.from_json(d) for d in exc.data if isinstance(d, dict)] \
        if isinstance(exc.data, list) else []
    if not findings and exc.status == 400:
        try:
            checked = request.app.state.service.policies.check_text(policy, text, editing)
            findings = [Finding.of(d) for d in checked if d.is_error]
        except ServiceError:
            findings = []
    return _policy_page(request, user, policy, editing=editing, text=text, name=name,
                        comment=comment, error=exc.message, findings=findings,
                        status=exc.status)


@router.post("/policies/{policy}/rules")
def add_rule(request: Request, policy: str,
             user: Annotated[Principal, needs("POST", "/v1/policies/{policy}/rules")],
             rule: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
             comment: Annotated[str, Form()] = "") -> Response:
    service = request.app.state.service
    try:
        rec = service.policies.add_rule(policy, rule, name.strip() or None, comment or None)
    except ServiceError as exc:
        return _refused(request, user, policy, exc, editing=None, text=rule, name=name,
                        comment=comment)
    return RedirectResponse(f"/ui/policies/{quote(policy, safe='')}#rule-{rec.id}",
                            status_code=303)


@router.post("/policies/{policy}/rules/{rule}")
def replace_rule(request: Request, policy: str, rule: str,
                 user: Annotated[Principal,
                                 needs("PUT", "/v1/policies/{policy}/rules/{rule}")],
                 text: Annotated[str, Form(alias="rule")] = "",
                 name: Annotated[str, Form()] = "",
                 comment: Annotated[str, Form()] = "") -> Response:
    """Edit: the new text in the rule's place in one batch (the API's PUT)."""
    service = request.app.state.service
    try:
        rec = service.policies.replace_rule(policy, rule, text,
                                            {"name": name.strip() or None,
                                             "comment": comment})
    except ServiceError as exc:
        return _refused(request, user, policy, exc, editing=rule, text=text, name=name,
                        comment=comment)
    return RedirectResponse(f"/ui/policies/{quote(policy, safe='')}#rule-{rec.id}",
                            status_code=303)


@router.post("/policies/{policy}/rules/{rule}/delete")
def delete_rule(request: Request, policy: str, rule: str,
                user: Annotated[Principal,
                                needs("DELETE", "/v1/policies/{policy}/rules/{rule}")],
                ) -> Response:
    request.app.state.service.policies.delete_rule(policy, rule)
    return RedirectResponse(f"/ui/policies/{quote(policy, safe='')}#rules", status_code=303)


@router.post("/policies/{policy}/check")
def check_rule(request: Request, policy: str,
               user: Annotated[Principal, needs("POST", "/v1/policies/{policy}/check")],
               rule: Annotated[str, Form()] = "",
               replace: Annotated[str, Form()] = "") -> Response:
    """The editor's live check (htmx, as the user types): the diagnostics fragment."""
    checked = request.app.state.service.policies.check_text(policy, rule, replace or None)
    findings = [Finding.of(d) for d in checked]
    return render(request, "_rule_check.html", {
        "findings": findings, "lines": source_lines(rule, findings), "text": rule,
        "error": None,
    })


# ---------------------------------------------------------------- tables


@router.get("/policies/{policy}/tables/{table}")
def table_rows(request: Request, user: Viewer, policy: str, table: str,
               page: int = 1, size: int = DEFAULT_PAGE_SIZE) -> Response:
    service = request.app.state.service
    size = size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE
    with service.lock:
        rec = service.policies.get(policy).record
        rows = service.policies.rows(rec.id, table)
        defining = service.policies.defining_rules(rec.id, table)
    total = len(rows)
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    shown = rows[(page - 1) * size: page * size]
    return render(request, "policy_table.html", {
        "title": f"{rec.name}:{table}", "policy": rec, "table": table,
        "rows": [{"row": r, "explain": explain_url(rec.name, table, r)} for r in shown],
        "total": total, "page": page, "pages": pages, "size": size, "sizes": PAGE_SIZES,
        "first": (page - 1) * size + 1 if total else 0,
        "last": (page - 1) * size + len(shown), "defining": defining,
        "width": max((len(r) for r in shown), default=0),
    })
