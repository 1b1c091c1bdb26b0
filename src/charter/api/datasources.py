"""Congress v1: data sources, their schema, status, actions, tables and rows; drivers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from charter.api.body import as_object
from charter.api.deps import (
    Admin,
    Editor,
    JsonBody,
    OptionalBody,
    Viewer,
    at_least,
    created,
    svc,
)
from charter.datasources.registry import driver_class, drivers
from charter.service.datasources import LiveDatasource, public_config
from charter.service.errors import NotFound, ServiceError

router = APIRouter(prefix="/v1")


def datasource_json(d: LiveDatasource) -> dict:
    r = d.record
    return {"id": r.id, "name": r.name, "driver": r.driver, "description": r.description,
            "enabled": r.enabled, "config": public_config(type(d.driver), r.config)}


@router.get("/data-sources")
def list_datasources(*, request: Request, _: Viewer) -> dict:
    return {"results": [datasource_json(d) for d in svc(request).datasources.list()]}


@router.post("/data-sources", status_code=201)
def create_datasource(*, request: Request, data: JsonBody,
                      _: Admin) -> JSONResponse:
    live = svc(request).datasources.create(data)
    return created(f"/v1/data-sources/{live.record.id}", datasource_json(live))


@router.get("/data-sources/{ds}")
def show_datasource(*, ds: str, request: Request, _: Viewer) -> dict:
    return datasource_json(svc(request).datasources.get(ds))


@router.delete("/data-sources/{ds}")
def delete_datasource(*, ds: str, request: Request, _: Admin) -> dict:
    rec = svc(request).datasources.delete(ds)
    return {"id": rec.id, "name": rec.name}


@router.post("/data-sources/{ds}")
def datasource_action(*, ds: str, request: Request, action: str | None = None,
                      data: OptionalBody,
                      who: Editor) -> dict:
    service = svc(request)
    if action is None:
        raise ServiceError("Missing required action parameter.")
    if action == "request-refresh":
        service.datasources.refresh(ds)
        return {}
    if action == "execute":
        at_least(who, "admin")
        data = as_object(data or {}, "an execute request")
        result = service.datasources.execute(ds, data.get("name"), data.get("args"))
        return {} if result is None else {"result": result}
    raise ServiceError(f"unknown action {action!r}: use request-refresh or execute")


@router.get("/data-sources/{ds}/schema")
def schema(*, ds: str, request: Request, _: Viewer) -> dict:
    return {"tables": [s.to_json() for s in svc(request).datasources.schema(ds)]}


@router.get("/data-sources/{ds}/status")
def status(*, ds: str, request: Request, _: Viewer) -> dict:
    return svc(request).datasources.status(ds)


@router.get("/data-sources/{ds}/actions")
def actions(*, ds: str, request: Request, _: Viewer) -> dict:
    live = svc(request).datasources.get(ds)
    return {"results": [a.to_json() for a in live.driver.actions()]}


@router.get("/data-sources/{ds}/tables")
def tables(*, ds: str, request: Request, _: Viewer) -> dict:
    return {"results": [{"id": t} for t in svc(request).datasources.tables(ds)]}


@router.get("/data-sources/{ds}/tables/{table}")
def table(*, ds: str, table: str, request: Request, _: Viewer) -> dict:
    if table not in svc(request).datasources.tables(ds):
        raise NotFound(f"No such table {table} in datasource {ds}")
    return {"id": table}


@router.get("/data-sources/{ds}/tables/{table}/spec")
def table_spec(*, ds: str, table: str, request: Request, _: Viewer) -> dict:
    return svc(request).datasources.table_spec(ds, table).to_json()


@router.get("/data-sources/{ds}/tables/{table}/rows")
def rows(*, ds: str, table: str, request: Request, _: Viewer) -> dict:
    return {"results": [{"data": list(r)} for r in svc(request).datasources.rows(ds, table)]}


@router.put("/data-sources/{ds}/tables/{table}/rows")
def replace_rows(*, ds: str, table: str, request: Request, data: JsonBody,
                 _: Editor) -> dict:
    svc(request).datasources.replace_rows(ds, table, data)
    return {}


@router.post("/data-sources/{ds}/webhook")
def webhook(*, ds: str, request: Request, data: JsonBody,
            _: Editor) -> dict:
    svc(request).datasources.webhook(ds, data)
    return {}


@router.get("/system/drivers")
def list_drivers(*, request: Request, _: Viewer) -> dict:
    return {"results": [{"id": d.driver, "description": d.description}
                        for _, d in sorted(drivers().items())]}


@router.get("/system/drivers/{driver}")
def show_driver(*, driver: str, request: Request, _: Viewer) -> dict:
    from charter.datasources.driver import DriverError

    try:
        cls = driver_class(driver)
    except DriverError as exc:
        raise NotFound(str(exc)) from exc
    info = cls.info()
    info["tables"] = [s.to_json() for s in cls.static_tables()]
    return info
