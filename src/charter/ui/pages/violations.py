"""Violations: every policy's current violations, filtered, sorted and paged on the server.

Filters, sort, page and page size live in the query string (bookmarkable); only the page
shown is built (service.dashboard keeps a flat index, so 100k violations page in
milliseconds). The CSV and JSON links export the same filtered set in the same order
through ``GET /v1/violations``. Live: the results refresh when a ``*:error`` or
``*:warning`` delta arrives; the refresh asks with the state the results were drawn with,
and ``since`` (when they were drawn) so rows that appeared after it are marked ``new-row``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from charter.service.dashboard import (
    SEVERITY_FILTERS,
    SORT_KEYS,
    ViolationQuery,
    violation_page,
)
from charter.service.errors import ServiceError
from charter.service.violations import VIOLATION_TABLES
from charter.ui.deps import Viewer
from charter.ui.pages.explain import explain_url
from charter.ui.render import render

router = APIRouter()

PAGE_SIZES = (50, 100, 500)
DEFAULT_SIZE = 100
DEFAULT_SORT = "-first_seen"
FILTERS = ("policy", "table", "severity", "datasource", "pack", "q")
#: the sortable columns: (sort key, header label)
COLUMNS = (("policy", "Policy"), ("severity", "Severity"), ("row", "Row"),
           ("first_seen", "First seen"))


@dataclass(frozen=True)
class Shown:
    """The page's parameters, read from the query string (a bad one is an error in words)."""

    filters: dict[str, str]
    sort: str
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def query(self) -> ViolationQuery:
        key, descending = ViolationQuery.parse_sort(self.sort)
        return ViolationQuery(**self.filters, sort=key, descending=descending,
                              offset=self.offset, limit=self.size)

    def export_url(self, fmt: str) -> str:
        """``GET /v1/violations`` with the same filters and order, the whole filtered set."""
        params = {**self.filters, "sort": self.sort, "limit": "all"}
        if fmt == "csv":
            params["format"] = "csv"
        return "/v1/violations?" + urlencode(params)

    def url(self, **changes: object) -> str:
        """This view with some parameters changed (defaults left out of the URL)."""
        params: dict[str, object] = {**self.filters, "sort": self.sort, "page": self.page,
                                     "size": self.size}
        params.update(changes)
        if params.get("sort") == DEFAULT_SORT:
            params.pop("sort")
        if params.get("page") == 1:
            params.pop("page")
        if params.get("size") == DEFAULT_SIZE:
            params.pop("size")
        clean = {k: v for k, v in params.items() if v not in (None, "")}
        return "/ui/violations" + (f"?{urlencode(clean)}" if clean else "")

    def sort_url(self, key: str) -> str:
        """A header's link: sort by it (the first-seen column newest first), or reverse."""
        if self.sort == key:
            target = f"-{key}"
        elif self.sort == f"-{key}":
            target = key
        else:
            target = f"-{key}" if key == "first_seen" else key
        return self.url(sort=target, page=1)

    def aria_sort(self, key: str) -> str:
        if self.sort == key:
            return "ascending"
        if self.sort == f"-{key}":
            return "descending"
        return "none"


def _integer(name: str, text: str | None, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ServiceError(f"{name} must be a whole number, not {text!r}") from None


def read_shown(request: Request) -> tuple[Shown, str | None]:
    """The parameters, and what was wrong with them (then the defaults are used)."""
    params = request.query_params
    filters = {k: params[k].strip() for k in FILTERS if params.get(k, "").strip()}
    problem = None
    try:
        size = _integer("size", params.get("size"), DEFAULT_SIZE)
        if size not in PAGE_SIZES:
            raise ServiceError(f"size must be one of {', '.join(map(str, PAGE_SIZES))}, "
                               f"not {size}")
        page = _integer("page", params.get("page"), 1)
        if page < 1:
            raise ServiceError(f"page must be 1 or more, not {page}")
    except ServiceError as exc:
        problem, size, page = exc.message, DEFAULT_SIZE, 1
    return Shown(filters, params.get("sort") or DEFAULT_SORT, page, size), problem


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@router.get("/violations")
def violations(request: Request, user: Viewer) -> Response:
    service = request.app.state.service
    drawn = datetime.now(UTC)  # before reading: a row is never missed as new
    shown, problem = read_shown(request)
    rows, total = [], 0
    if problem is None:
        try:
            query = shown.query()
            rows, total = violation_page(service, query)
            if not rows and total and shown.offset >= total:  # past the end: the last page
                last = (total - 1) // shown.size + 1
                shown = Shown(shown.filters, shown.sort, last, shown.size)
                rows, total = violation_page(service, shown.query())
        except ServiceError as exc:
            problem = exc.message
    since = _since(request.query_params.get("since"))
    policies = [p.name for p in service.policies.list()]
    with service.lock:
        datasources = sorted(d.name for d in service.datasources.live.values())
        packs = sorted(service.packs.enabled)
    pages = max(1, (total - 1) // shown.size + 1) if total else 1
    context = {
        "title": "Violations", "shown": shown, "problem": problem, "rows": [
            {"v": v, "explain": explain_url(v.policy, v.table, v.row),
             "json": json.dumps(list(v.row)), "new": since is not None and v.first_seen > since}
            for v in rows],
        "total": total, "pages": pages, "first": shown.offset + 1 if rows else 0,
        "last": shown.offset + len(rows), "policies": policies, "datasources": datasources,
        "packs": packs, "tables": VIOLATION_TABLES, "severities": SEVERITY_FILTERS,
        "sizes": PAGE_SIZES, "columns": COLUMNS, "sort_keys": SORT_KEYS,
        "drawn": drawn.isoformat(), "filtered": bool(shown.filters),
        "export_csv": shown.export_url("csv"), "export_json": shown.export_url("json"),
    }
    fragment = _fragment(request)
    context["fragment"] = fragment
    template = "_violations_results.html" if fragment else "violations.html"
    return render(request, template, context, status=400 if problem else 200)


def _fragment(request: Request) -> bool:
    """An htmx request for the results only (a live refresh, the filter form, a pager or
    header link); a boosted full-page navigation gets the page."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-Target") == "violations-results")
