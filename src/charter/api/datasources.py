"""Congress v1: data sources, their schema, status, actions, tables and rows; drivers."""

from __future__ import annotations

import threading
from contextlib import nullcontext

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from charter.api.deps import JsonBody, OptionalBody, created, svc
from charter.api.models import (
    AUTH,
    BODY,
    DatasourceBody,
    DatasourceExecuteBody,
    RowsBody,
    RowsPatchBody,
    WebhookBody,
    errors,
    parse,
    request_body,
)
from charter.api.streaming import json_list, list_response
from charter.datasources.registry import driver_class, drivers
from charter.service.datasources import LiveDatasource, public_config
from charter.service.errors import NotFound, ServiceError

router = APIRouter(prefix="/v1")

DS = (404,)  # a datasource named in the path


def push_gate(request: Request, live: LiveDatasource | None) -> threading.Lock | nullcontext:
    """One PUT of a datasource's rows at a time past this point.

    A PUT finds its difference outside the service's lock, against a snapshot of the table,
    and applies it under the lock; if another PUT of the datasource committed meanwhile, the
    snapshot is stale and the difference is found again, under the lock, where it holds up
    every writer. With 16 clients pushing, most were (the work outside done for nothing,
    the work inside twice). In turn here, each PUT's snapshot is the table it replaces, and
    the service's lock is held only to apply it. A datasource not found (yet) passes, for
    ``replace_rows`` to answer."""
    if live is None:
        return nullcontext()
    gates: dict[str, threading.Lock] = request.app.state.push_gates
    return gates.get(live.record.id) or gates.setdefault(live.record.id, threading.Lock())


def datasource_json(d: LiveDatasource) -> dict:
    r = d.record
    return {"id": r.id, "name": r.name, "driver": r.driver, "description": r.description,
            "enabled": r.enabled, "config": public_config(type(d.driver), r.config)}


@router.get("/data-sources", responses=errors(*AUTH))
def list_datasources(*, request: Request) -> dict:
    return {"results": [datasource_json(d) for d in svc(request).datasources.list()]}


@router.post("/data-sources", status_code=201, responses=errors(*AUTH, *BODY, 409),
             openapi_extra=request_body(DatasourceBody))
def create_datasource(*, request: Request, data: JsonBody) -> JSONResponse:
    parse(DatasourceBody, data)
    live = svc(request).datasources.create(data)
    return created(f"/v1/data-sources/{live.record.id}", datasource_json(live))


@router.get("/data-sources/{ds}", responses=errors(*AUTH, *DS))
def show_datasource(*, ds: str, request: Request) -> dict:
    return datasource_json(svc(request).datasources.get(ds))


@router.delete("/data-sources/{ds}", responses=errors(*AUTH, *DS))
def delete_datasource(*, ds: str, request: Request) -> dict:
    rec = svc(request).datasources.delete(ds)
    return {"id": rec.id, "name": rec.name}


@router.post("/data-sources/{ds}", responses=errors(*AUTH, *DS, *BODY, 502),
             openapi_extra=request_body(DatasourceExecuteBody, required=False))
def datasource_action(*, ds: str, request: Request, action: str | None = None,
                      data: OptionalBody) -> dict:
    """``?action=request-refresh`` (poll now; editor) or ``?action=execute``
    (``DatasourceExecuteBody``; admin). A service that answers badly: 502."""
    service = svc(request)
    if action is None:
        raise ServiceError("Missing required action parameter.")
    if action == "request-refresh":
        service.datasources.refresh(ds)
        return {}
    if action == "execute":
        run = parse(DatasourceExecuteBody, data if data is not None else {})
        result = service.datasources.execute(ds, run.name, data.get("args"))
        return {} if result is None else {"result": result}
    raise ServiceError(f"unknown action {action!r}: use request-refresh or execute")


@router.get("/data-sources/{ds}/schema", responses=errors(*AUTH, *DS))
def schema(*, ds: str, request: Request) -> dict:
    return {"tables": [s.to_json() for s in svc(request).datasources.schema(ds)]}


@router.get("/data-sources/{ds}/status", responses=errors(*AUTH, *DS))
def status(*, ds: str, request: Request) -> dict:
    return svc(request).datasources.status(ds)


@router.get("/data-sources/{ds}/actions", responses=errors(*AUTH, *DS))
def actions(*, ds: str, request: Request) -> dict:
    live = svc(request).datasources.get(ds)
    return {"results": [a.to_json() for a in live.driver.actions()]}


@router.get("/data-sources/{ds}/tables", responses=errors(*AUTH, *DS))
def tables(*, ds: str, request: Request) -> dict:
    return {"results": [{"id": t} for t in svc(request).datasources.tables(ds)]}


@router.get("/data-sources/{ds}/tables/{table}", responses=errors(*AUTH, *DS))
def table(*, ds: str, table: str, request: Request) -> dict:
    if table not in svc(request).datasources.tables(ds):
        raise NotFound(f"No such table {table} in datasource {ds}")
    return {"id": table}


@router.get("/data-sources/{ds}/tables/{table}/spec", responses=errors(*AUTH, *DS))
def table_spec(*, ds: str, table: str, request: Request) -> dict:
    return svc(request).datasources.table_spec(ds, table).to_json()


@router.get("/data-sources/{ds}/tables/{table}/rows",
            responses={**errors(*AUTH, *DS), **list_response("The table's rows: "
                       '{"results": [{"data": [value, ...]}, ...]}, streamed when long.')})
def rows(*, ds: str, table: str, request: Request) -> Response:
    found = svc(request).datasources.rows(ds, table)
    return json_list({}, "results", ({"data": r} for r in found))


@router.put("/data-sources/{ds}/tables/{table}/rows", responses=errors(*AUTH, *DS, *BODY),
            openapi_extra=request_body(RowsBody))
def replace_rows(*, ds: str, table: str, request: Request, data: JsonBody) -> dict:
    RowsBody.check(data, f"{ds}:{table}")  # parse(RowsBody, ...)'s checks, without the copy
    service = svc(request)
    with push_gate(request, service.datasources.find(ds)):
        service.datasources.replace_rows(ds, table, data)
    return {}


@router.patch("/data-sources/{ds}/tables/{table}/rows", responses=errors(*AUTH, *DS, *BODY),
              openapi_extra=request_body(RowsPatchBody))
def patch_rows(*, ds: str, table: str, request: Request, data: JsonBody) -> dict:
    """Insert and delete rows of a push datasource's table as one change (a Charter
    extension): ``{"inserted": n, "deleted": m, "unchanged": k}``."""
    parse(RowsPatchBody, data, table=f"{ds}:{table}")
    return svc(request).datasources.patch_rows(ds, table, data)


@router.post("/data-sources/{ds}/webhook", responses=errors(*AUTH, *DS, *BODY),
             openapi_extra=request_body(WebhookBody))
def webhook(*, ds: str, request: Request, data: JsonBody) -> dict:
    parse(WebhookBody, data)
    svc(request).datasources.webhook(ds, data)
    return {}


@router.get("/system/drivers", responses=errors(*AUTH))
def list_drivers(*, request: Request) -> dict:
    return {"results": [{"id": d.driver, "description": d.description}
                        for _, d in sorted(drivers().items())]}


@router.get("/system/drivers/{driver}", responses=errors(*AUTH, 404))
def show_driver(*, driver: str, request: Request) -> dict:
    from charter.datasources.driver import DriverError

    try:
        cls = driver_class(driver)
    except DriverError as exc:
        raise NotFound(str(exc)) from exc
    info = cls.info()
    info["tables"] = [s.to_json() for s in cls.static_tables()]
    return info
