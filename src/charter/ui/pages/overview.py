"""Overview: where the cloud stands now (violations by severity, policy and pack), open
violations over the last day/week/month as a chart drawn on the server, what appeared and
cleared lately, and the datasources in trouble; empty states say what to do first.

Every count links into the Violations page filtered by it. Live: the body refreshes when
deltas of ``*:error``/``*:warning`` arrive.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from charter.service.dashboard import SEVERITY_FILTERS, WINDOWS, history, recent, summary
from charter.ui.chart import line_chart
from charter.ui.deps import Viewer
from charter.ui.pages.explain import explain_url
from charter.ui.render import render

router = APIRouter()

RECENT = 15
DEFAULT_WINDOW = "day"
#: per window: how a bucket is labelled under the x axis, and in words
LABELS = {"day": ("%H:%M", "last 24 hours, per 30 minutes"),
          "week": ("%a %H:%M", "last 7 days, per 4 hours"),
          "month": ("%b %d", "last 30 days, per day")}


def history_chart(points: list[tuple[datetime, int]], window: str):
    fmt, words = LABELS[window]
    peak = max((v for _, v in points), default=0)
    now = points[-1][1] if points else 0
    desc = (f"Open violations over the {words}: {len(points)} points, at most {peak}, "
            f"{now} in the latest bucket.")
    return line_chart(points, title=f"Open violations, {words}", desc=desc,
                      label=lambda t: t.strftime(fmt))


@router.get("/")
def overview(request: Request, user: Viewer, window: str = DEFAULT_WINDOW) -> Response:
    service = request.app.state.service
    problem = None
    if window not in WINDOWS:
        problem = f"window must be one of {', '.join(WINDOWS)}, not {window!r}; showing the day"
        window = DEFAULT_WINDOW
    counts = summary(service)
    points = history(service, window)
    events = recent(service, RECENT)
    with service.lock:
        has_datasource = bool(service.datasources.live)
        has_policy = any(live.rules for live in service.policies.live.values())
        open_now = {key: set(rows) for key, rows in service.violations.open.items()}
    changes = [{"e": e, "open": e.event == "appeared" and e.row in open_now.get(
                    (e.policy, e.table), ()),
                "explain": explain_url(e.policy, e.table, e.row)} for e in events]
    context = {
        "title": "Overview", "counts": counts, "severities": SEVERITY_FILTERS,
        "window": window, "windows": list(WINDOWS), "chart": history_chart(points, window),
        "points": points, "changes": changes, "has_datasource": has_datasource,
        "has_policy": has_policy, "problem": problem,
    }
    fragment = (request.headers.get("HX-Request") == "true"
                and request.headers.get("HX-Target") == "overview-body")
    return render(request, "_overview_body.html" if fragment else "overview.html", context)
