"""Charter's packs: the installed compliance packs, enabling them, and their posture.

``GET /v1/packs/<id>/posture`` answers JSON, or CSV with ``?format=csv`` or an ``Accept``
header that asks for ``text/csv``: one line per control, or with ``?rows=true`` one line
per violation (what an auditor's spreadsheet wants). A text cell that a spreadsheet would
run as a formula (a server named ``=HYPERLINK(...)``) is written with a leading ``'``, as
OWASP's CSV-injection advice says, so opening the file runs nothing.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from charter.api.body import flag
from charter.api.deps import Caller, OptionalBody, name_of, svc
from charter.api.models import AUTH, BODY, PackEnableBody, errors, parse, request_body
from charter.packs.describe import pack_json
from charter.packs.load import Pack
from charter.service.errors import ServiceError
from charter.service.packs import ControlPosture, Posture
from charter.store.records import PackRecord

router = APIRouter(prefix="/v1")

#: A pack's id in the path; the example (a shipped pack) lets API testers reach it.
PackId = Annotated[str, Path(description="The pack's id.", examples=["openstack-security"])]

CSV = "text/csv"
POSTURE_RESPONSES = {
    200: {
        "description": "Each control's status, violations and first sighting: JSON, or CSV "
        "(?format=csv or Accept: text/csv).",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            CSV: {"schema": {"type": "string"}},
        },
    },
}
CONTROL_COLUMNS = (
    "pack",
    "control",
    "title",
    "severity",
    "status",
    "violations",
    "first_seen",
    "reason",
)
ROW_COLUMNS = (
    "pack",
    "control",
    "severity",
    "status",
    "resource",
    "project",
    "detail",
    "first_seen",
)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: object) -> object:
    """``value``, with a ``'`` before a text a spreadsheet would take for a formula.

    >>> spreadsheet_text("=1+2"), spreadsheet_text("web-1"), spreadsheet_text(-3)
    ("'=1+2", 'web-1', -3)
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def enabled_json(rec: PackRecord | None) -> dict:
    if rec is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "enabled_version": rec.version,
        "enabled_by": rec.enabled_by,
        "enabled_at": rec.enabled_at.isoformat(),
        "policies": list(rec.policies),
        "parameters_set": rec.parameters,
    }


def pack_state_json(service, pack: Pack, detail: bool) -> dict:
    rec = service.packs.enabled.get(pack.id)
    values = service.packs.values(pack) if detail else None
    return pack_json(pack, values, detail) | enabled_json(rec)


@router.get("/packs", responses=errors(*AUTH))
def list_packs(*, request: Request) -> dict:
    """The installed packs, whether each is enabled; and those installed that do not load."""
    service = svc(request)
    results = [pack_json(p, detail=False) | enabled_json(rec) for p, rec in service.packs.list()]
    broken = [
        {"name": b.name, "origin": b.origin, "error": b.error}
        for b in service.packs.installed.broken
    ]
    return {"results": results, "unavailable": broken}


@router.get("/packs/{pack}", responses=errors(*AUTH, 404, 409))
def show_pack(*, pack: PackId, request: Request) -> dict:
    """The pack: datasources, parameters (default and in force) and every control."""
    service = svc(request)
    return pack_state_json(service, service.packs.get(pack), detail=True)


@router.post(
    "/packs/{pack}",
    responses=errors(*AUTH, *BODY, 404, 409),
    openapi_extra=request_body(PackEnableBody, required=False),
)
def pack_action(
    *, pack: PackId, request: Request, who: Caller, data: OptionalBody, action: str | None = None
) -> dict:
    """``?action=enable`` (``PackEnableBody``: the parameters) makes a policy per control;
    ``?action=disable`` deletes them."""
    service = svc(request)
    if action == "enable":
        body = parse(PackEnableBody, data if data is not None else {})
        service.packs.enable(pack, body.parameters, name_of(who))
        return pack_state_json(service, service.packs.get(pack), detail=True)
    if action == "disable":
        if data:
            raise ServiceError("disable a pack with an empty body")
        rec = service.packs.disable(pack)
        return {"id": rec.id, "enabled": False, "deleted_policies": list(rec.policies)}
    raise ServiceError(
        f"unknown action {action!r}: use ?action=enable or ?action=disable"
        if action is not None
        else "Missing required action parameter: use ?action=enable or ?action=disable"
    )


def _row_json(control: ControlPosture, row: tuple, seen) -> dict:
    names = control.control.column_names
    project = control.control.project_column
    return {
        "resource": row[0],
        "project": row[names.index(project)] if project else None,
        "detail": row[names.index("detail")],
        "columns": dict(zip(names, row, strict=False)),
        "first_seen": seen.isoformat() if seen else None,
    }


def posture_json(posture: Posture, rows: bool) -> dict:
    controls = []
    for c in posture.controls:
        first = c.first_seen
        entry = {
            "id": c.control.id,
            "title": c.control.title,
            "severity": c.control.severity,
            "policy": c.control.policy,
            "status": c.status,
            "reason": c.reason,
            "violations": len(c.rows),
            "first_seen": first.isoformat() if first else None,
        }
        if rows:
            entry["rows"] = [_row_json(c, row, seen) for row, seen in c.rows]
        controls.append(entry)
    return {
        "pack": posture.pack.id,
        "version": posture.pack.spec.version,
        "enabled_at": posture.record.enabled_at.isoformat(),
        "at": posture.at.isoformat(),
        "summary": posture.summary(),
        "controls": controls,
    }


def posture_csv(posture: Posture, rows: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    pack = posture.pack.id
    if not rows:
        writer.writerow(CONTROL_COLUMNS)
        for c in posture.controls:
            first = c.first_seen
            writer.writerow(
                [
                    pack,
                    c.control.id,
                    spreadsheet_text(c.control.title),
                    c.control.severity,
                    c.status,
                    len(c.rows),
                    first.isoformat() if first else "",
                    spreadsheet_text(c.reason or ""),
                ]
            )
        return out.getvalue()
    writer.writerow(ROW_COLUMNS)
    for c in posture.controls:
        for row, seen in c.rows:
            item = _row_json(c, row, seen)
            writer.writerow(
                [
                    pack,
                    c.control.id,
                    c.control.severity,
                    c.status,
                    spreadsheet_text(item["resource"]),
                    "" if item["project"] is None else spreadsheet_text(item["project"]),
                    spreadsheet_text(item["detail"]),
                    item["first_seen"] or "",
                ]
            )
    return out.getvalue()


def _wants_csv(request: Request, output_format: str | None) -> bool:
    if output_format is not None:
        return output_format == "csv"
    accept = request.headers.get("accept", "")
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return CSV in kinds and "application/json" not in kinds[: kinds.index(CSV)]


@router.get(
    "/packs/{pack}/posture", responses={**errors(*AUTH, 400, 404, 409), **POSTURE_RESPONSES}
)
def posture(
    *,
    pack: PackId,
    request: Request,
    output_format: Annotated[Literal["json", "csv"] | None, Query(alias="format")] = None,
    rows: str | None = None,
) -> Response:
    """Each control: ``passing``, ``failing``, or ``not_evaluated`` (and why: a datasource
    it reads is missing or has not reported); its violation count and the first sighting of
    its oldest violation. ``?rows=true`` adds the violations themselves."""
    result = svc(request).packs.posture(pack)
    with_rows = flag(rows)
    if _wants_csv(request, output_format):
        name = f"{result.pack.id}-posture{'-rows' if with_rows else ''}.csv"
        return Response(
            posture_csv(result, with_rows),
            media_type=CSV,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return JSONResponse(posture_json(result, with_rows))
