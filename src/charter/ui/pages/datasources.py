"""Datasources: each one's status (last poll, duration, rows per table, last error,
backoff), its tables browsable a page at a time, ``request-refresh``, delete, and a create
form generated from the chosen driver's config options."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from charter.api.auth import Principal
from charter.api.datasources import datasource_json
from charter.datasources.driver import DriverError
from charter.datasources.registry import driver_class, drivers
from charter.service.datasources import LiveDatasource
from charter.service.errors import NotFound, ServiceError
from charter.ui import config_form
from charter.ui.deps import Viewer, allowed, needs
from charter.ui.render import render

router = APIRouter()

PAGE_SIZES = (25, 50, 100, 500)
_sorted_cache: dict[str, tuple[tuple, list[tuple]]] = {}  # table -> (key, sorted rows)


def _may(user: Principal) -> dict[str, bool]:
    return {
        "may_create": allowed(user, "POST", "/v1/data-sources"),
        "may_refresh": allowed(user, "POST", "/v1/data-sources/{ds}", "?action=request-refresh"),
        "may_delete": allowed(user, "DELETE", "/v1/data-sources/{ds}"),
    }


def _summary(service, live: LiveDatasource) -> dict[str, Any]:
    """What a row of the list and the head of a datasource's page show."""
    status = service.datasources.status(live.record.id)
    return {"live": live, "record": live.record, "status": status,
            "pushed": live.driver.pushed, "broken": getattr(live.driver, "broken", False),
            "total_rows": sum(status["rows"].values())}


@router.get("/datasources")
def datasources(request: Request, user: Viewer) -> Response:
    service = request.app.state.service
    listed = [_summary(service, live) for live in service.datasources.list()]
    return render(request, "datasources.html", {
        "title": "Datasources", "datasources": listed,
        "live_patterns": " ".join(f"{d['record'].name}:*" for d in listed), **_may(user),
    })


@router.get("/datasources/new")
def new_datasource(request: Request, user: Viewer, driver: str | None = None) -> Response:
    """Choose a driver, then fill in its config (admin: the API's POST /v1/data-sources)."""
    return _new_page(request, user, driver, form=None, error=None)


def _new_page(request: Request, user: Principal, driver: str | None,
              form: Any, error: str | None, status: int = 200) -> Response:
    chosen = None
    if driver:
        try:
            chosen = driver_class(driver)
        except DriverError as exc:
            error, status = str(exc), 404 if error is None else status
    return render(request, "datasource_new.html", {
        "title": "New datasource",
        "drivers": sorted(drivers().items()), "driver": chosen, "driver_name": driver or "",
        "fields": config_form.fields(chosen) if chosen else [],
        "form": form, "error": error, **_may(user),
    }, status=status)


@router.post("/datasources")
async def create_datasource(
    request: Request,
    user: Annotated[Principal, needs("POST", "/v1/data-sources")],
) -> Response:
    """Create from the form; an error re-renders it with the message and the inputs."""
    form = await request.form()
    driver_name = str(form.get("driver") or "")
    try:
        cls = driver_class(driver_name)
    except DriverError as exc:
        return _new_page(request, user, None, form, str(exc), status=400)
    body: dict[str, Any] = {"name": str(form.get("name") or "").strip(), "driver": cls.driver}
    description = str(form.get("description") or "").strip()
    if description:
        body["description"] = description
    try:
        body["config"] = config_form.read_config(cls, form)
        live = request.app.state.service.datasources.create(body)
    except config_form.ConfigInputError as exc:
        return _new_page(request, user, driver_name, form, str(exc), status=400)
    except ServiceError as exc:
        return _new_page(request, user, driver_name, form, exc.message, status=exc.status)
    return RedirectResponse(f"/ui/datasources/{live.name}?created=1", status_code=303)


@router.get("/datasources/{ds}")
def datasource(request: Request, user: Viewer, ds: str, refreshed: str | None = None,
               created: str | None = None) -> Response:
    service = request.app.state.service
    live = service.datasources.get(ds)
    summary = _summary(service, live)
    schema = {s.name: s for s in service.datasources.schema(live.record.id)}
    tables = [{"name": t, "rows": summary["status"]["rows"].get(t, 0),
               "columns": schema[t].column_names if t in schema else ()}
              for t in service.datasources.tables(live.record.id)]
    return render(request, "datasource.html", {
        "title": live.name, **summary, "tables": tables,
        "config": datasource_json(live)["config"],
        "actions": live.driver.actions(),
        "refreshed": refreshed, "created": created, **_may(user),
    })


@router.post("/datasources/{ds}/refresh")
def refresh(request: Request, ds: str,
            user: Annotated[Principal, needs("POST", "/v1/data-sources/{ds}",
                                             "?action=request-refresh")]) -> Response:
    """Poll now, as ``?action=request-refresh``; a failed poll is shown in words (and its
    status keeps it)."""
    service = request.app.state.service
    live = service.datasources.get(ds)
    service.datasources.refresh(live.record.id)
    how = "pushed" if live.driver.pushed else "polled"
    return RedirectResponse(f"/ui/datasources/{live.name}?refreshed={how}", status_code=303)


@router.post("/datasources/{ds}/delete")
def delete(request: Request, ds: str,
           user: Annotated[Principal, needs("DELETE", "/v1/data-sources/{ds}")],
           confirm: Annotated[str, Form()] = "") -> Response:
    """Delete after a confirmation page (works without JavaScript)."""
    service = request.app.state.service
    live = service.datasources.get(ds)
    if confirm != "yes":
        return render(request, "datasource_delete.html", {
            "title": f"Delete {live.name}", "record": live.record,
            "tables": service.datasources.status(live.record.id)["rows"],
        })
    service.datasources.delete(live.record.id)
    return RedirectResponse("/ui/datasources", status_code=303)


@router.get("/datasources/{ds}/tables/{table}")
def table(request: Request, user: Viewer, ds: str, table: str, page: int = 1,
          size: int = 50, q: str = "") -> Response:
    """One table's rows, a page at a time (sorted as the API lists them), with a text
    filter over the rows' values."""
    service = request.app.state.service
    live = service.datasources.get(ds)
    spec = service.datasources.table_spec(live.record.id, table)
    size = size if size in PAGE_SIZES else 50
    rows, total = _page(service, live, table, q.strip(), max(page, 1), size)
    pages = max(1, -(-total // size))
    return render(request, "datasource_table.html", {
        "title": f"{live.name}:{table}", "record": live.record, "table": table,
        "columns": spec.column_names, "rows": rows, "total": total, "page": min(page, pages),
        "pages": pages, "size": size, "sizes": PAGE_SIZES, "q": q,
        "first": (min(page, pages) - 1) * size,
    })


def _page(service, live: LiveDatasource, table: str, q: str, page: int,
          size: int) -> tuple[list[tuple], int]:
    """Rows ``page`` of a table, sorted by their text (the API's order). The sorted list
    is kept until the next batch, so paging through 100k rows sorts them once."""
    qualified = f"{live.name}:{table}"
    with service.lock:
        engine = service.engine
        if table not in service.datasources.tables(live.record.id):
            raise NotFound(f"No such table {table} in datasource {live.name}")
        key = (id(service), service.batches, engine.generation, q)  # any change: a new key
        cached = _sorted_cache.get(qualified)
        if cached is None or cached[0] != key:
            rows = engine.rows(qualified) if engine.has_table(qualified) else set()
            if q:
                needle = q.lower()
                rows = {r for r in rows if needle in repr(r).lower()}
            ordered = sorted(rows, key=repr)
            if len(_sorted_cache) > 16:
                _sorted_cache.clear()
            _sorted_cache[qualified] = (key, ordered)
        else:
            ordered = cached[1]
    total = len(ordered)
    start = (page - 1) * size
    if start >= total:
        start = max(0, (max(1, -(-total // size)) - 1) * size)
    return ordered[start:start + size], total
