"""Charter: every policy's current violations, filtered, sorted and paged; their counts and
history. What the dashboard's Overview and Violations pages read (service/dashboard.py).

``GET /v1/violations`` answers JSON, or CSV with ``?format=csv`` or an ``Accept`` header
asking for ``text/csv`` (the same rows; cells a spreadsheet would run as a formula get a
leading ``'``, as the packs' posture CSV). ``limit=all`` exports the whole filtered set,
streamed (JSON by api/streaming.py), up to ``EXPORT_CAP`` violations; a larger set is
refused with a 400 rather than cut short.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from charter.api.deps import svc
from charter.api.models import AUTH, errors
from charter.api.packs import CSV, spreadsheet_text
from charter.api.packs import _wants_csv as wants_csv
from charter.api.streaming import json_list
from charter.service.dashboard import (
    MAX_LIMIT,
    WINDOWS,
    Export,
    Violation,
    ViolationQuery,
    bad_parameter,
    history,
    recent,
    summary,
    violation_export,
)
from charter.service.errors import ServiceError

router = APIRouter(prefix="/v1")

EXPORT_CAP = 100_000
"""The most violations ``limit=all`` answers; more must be narrowed or paged."""
CHUNK = 1000  # violations per streamed piece
CSV_COLUMNS = ("policy", "table", "severity", "first_seen")
LIST_RESPONSES = {
    200: {
        "description": "A page of current violations and the total: JSON, or CSV "
        "(?format=csv or Accept: text/csv).",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            CSV: {"schema": {"type": "string"}},
        },
    },
}


def _integer(name: str, text: str | None, default: int, allowed: str) -> int:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise bad_parameter(name, text, allowed) from None


def _query(policy, table, severity, datasource, pack, q, sort, offset, limit) -> ViolationQuery:
    key, descending = ViolationQuery.parse_sort(sort)
    everything = limit == "all"
    size = (
        None
        if everything
        else _integer("limit", limit, 100, f"an integer from 1 to {MAX_LIMIT}, or all")
    )
    start = _integer("offset", offset, 0, "an integer >= 0")
    return ViolationQuery(
        policy=policy,
        table=table,
        severity=severity,
        datasource=datasource,
        pack=pack,
        q=q or None,
        sort=key,
        descending=descending,
        offset=start,
        limit=size,
    )


@router.get("/violations", responses={**errors(*AUTH, 400), **LIST_RESPONSES})
def list_violations(
    *,
    request: Request,
    policy: Annotated[str | None, Query(description="Only this policy's.")] = None,
    table: Annotated[str | None, Query(description="error or warning.")] = None,
    severity: Annotated[
        str | None,
        Query(description="critical, high, medium, low, info (a pack control's), or none."),
    ] = None,
    datasource: Annotated[
        str | None,
        Query(description="Only violations whose table depends on this datasource's tables."),
    ] = None,
    pack: Annotated[str | None, Query(description="Only this pack's controls'.")] = None,
    q: Annotated[
        str | None, Query(description="Case-insensitive text in the policy's name or a row value.")
    ] = None,
    sort: Annotated[
        str, Query(description="first_seen, policy, severity or row; '-' before it: descending.")
    ] = "-first_seen",
    offset: Annotated[str | None, Query(description="Violations to skip (default 0).")] = None,
    limit: Annotated[
        str | None,
        Query(
            description=f"Page size, 1 to {MAX_LIMIT} (default 100), or all: the whole "
            f"filtered set, up to {EXPORT_CAP}."
        ),
    ] = None,
    output_format: Annotated[Literal["json", "csv"] | None, Query(alias="format")] = None,
) -> Response:
    """Current violations of every policy, with their columns, first sighting, severity,
    pack control and the datasources they depend on; ``total`` counts every match."""
    query = _query(policy, table, severity, datasource, pack, q, sort, offset, limit)
    found = violation_export(svc(request), query)
    if query.limit is None and found.total - query.offset > EXPORT_CAP:
        raise ServiceError(
            f"the filtered set holds {found.total - query.offset} violations, more than "
            f"limit=all exports ({EXPORT_CAP}); narrow the filters or page with offset and "
            "limit",
            data={"parameter": "limit", "total": found.total},
        )
    shown = "all" if query.limit is None else query.limit
    if wants_csv(request, output_format):
        return StreamingResponse(
            _csv(found),
            media_type=CSV,
            headers={"Content-Disposition": 'attachment; filename="violations.csv"'},
        )
    head = {"total": found.total, "offset": query.offset, "limit": shown}
    return json_list(head, "violations", (v.to_json() for v in found.violations))


def _chunks(items: Iterator[Violation]) -> Iterator[list[Violation]]:
    chunk: list[Violation] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def csv_cell(value: object) -> object:
    """A row value as a CSV cell: nothing for None, JSON for a tuple, guarded text."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        value = json.dumps(value)
    return spreadsheet_text(value)


def _csv(found: Export) -> Iterator[str]:
    """A header (the value columns by name when every row shares them, else ``value1``..),
    then one line per violation."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = found.columns or [f"value{i + 1}" for i in range(found.width)]
    writer.writerow([*CSV_COLUMNS, *names])
    for chunk in _chunks(found.violations):
        for v in chunk:
            writer.writerow(
                [
                    spreadsheet_text(v.policy),
                    v.table,
                    v.severity or "",
                    v.first_seen.isoformat(),
                    *map(csv_cell, v.row),
                ]
            )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    if out.tell():
        yield out.getvalue()


@router.get("/violations/summary", responses=errors(*AUTH))
def violations_summary(*, request: Request) -> dict:
    """Current violations counted by table, policy, pack and severity; and the datasources
    in trouble (failing, unavailable, never reported) with their error."""
    return summary(svc(request))


@router.get("/violations/history", responses=errors(*AUTH, 400))
def violations_history(
    *,
    request: Request,
    window: Annotated[str, Query(description=", ".join(WINDOWS))] = "day",
    recent_limit: Annotated[
        str | None, Query(alias="recent", description="How many latest changes (default 20).")
    ] = None,
) -> dict:
    """Violations open in each bucket of the window (``series``, oldest first) and the
    latest violations to appear or clear (``recent``, newest first)."""
    if window not in WINDOWS:
        raise bad_parameter("window", window, ", ".join(WINDOWS))
    allowed = f"an integer from 1 to {MAX_LIMIT}"
    count = _integer("recent", recent_limit, 20, allowed)
    if not 1 <= count <= MAX_LIMIT:
        raise bad_parameter("recent", recent_limit, allowed)
    service = svc(request)
    step, _ = WINDOWS[window]
    series = history(service, window)
    events = recent(service, count)
    return {
        "window": window,
        "bucket_seconds": int(step.total_seconds()),
        "series": [{"start": start.isoformat(), "open": n} for start, n in series],
        "recent": [
            {
                "event": e.event,
                "policy": e.policy,
                "table": e.table,
                "row": list(e.row),
                "at": e.at.isoformat(),
            }
            for e in events
        ],
    }
