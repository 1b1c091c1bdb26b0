"""The Overview page: counts linking into Violations, the history chart (one point per
bucket, accessible), recent changes, datasources in trouble, empty states, live body."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.service.config import Settings
from charter.service.dashboard import WINDOWS
from tests.api.conftest import make_service
from tests.ui.pview_helpers import Page, get_page, seed

ROWS = [["vm1", "ERROR", "shop"], ["vm2", "ERROR", "lab"], ["vm3", "SHUTOFF", "shop"]]


@pytest.fixture
def service(tmp_path):
    svc = make_service(tmp_path)
    yield svc
    svc.close()


@pytest.fixture
def client(service, tmp_path):
    with TestClient(create_app(service, Settings(data_dir=str(tmp_path))),
                    raise_server_exceptions=False) as c:
        yield c


def get(client, url: str = "/ui/", status: int = 200) -> Page:
    return get_page(client, url, status)


def test_empty_states_say_what_to_do_first(client):
    p = get(client)
    assert "No datasource yet: create one" in p.text_of("empty-datasources")
    assert "No policy yet" in p.text_of("empty-policies")
    assert "/ui/datasources" in p.links and "/ui/policies" in p.links
    assert p.text_of("count-total").startswith("0")
    assert "No violation has appeared or cleared yet" in p.text_of("recent")
    assert len(p.all("chart-point")) == WINDOWS["day"][1]


def test_counts_link_into_the_filtered_violations(client, service):
    seed(service, ROWS)
    p = get(client)
    assert not p.all("overview-empty")
    counts = p.one("overview-counts")
    assert counts["tag"] == "section"
    total = p.one("count-total")
    assert total["attrs"]["href"] == "/ui/violations" and p.text_of("count-total").startswith("3")
    [policy] = p.all("count-policy")
    assert policy["attrs"]["data-policy"] == "ops" and "3" in "".join(policy["text"])
    assert "/ui/violations?policy=ops" in p.links
    [none] = p.all("count-severity")
    assert none["attrs"]["href"] == "/ui/violations?severity=none"
    assert p.one("count-warnings")["attrs"]["href"] == "/ui/violations?table=warning"
    assert p.text_of("count-warnings").startswith("1")


@pytest.mark.parametrize("window", list(WINDOWS))
def test_the_chart_has_one_point_per_bucket(client, service, window):
    seed(service, ROWS)
    r = client.get(f"/ui/?window={window}")
    p = Page(r.text)
    chart = p.one("history-chart")
    points = p.all("chart-point")
    assert chart["attrs"]["data-window"] == window
    assert len(points) == int(chart["attrs"]["data-points"]) == WINDOWS[window][1]
    assert [pt["attrs"]["data-value"] for pt in points][-1] == "3"  # open now
    svg = r.text.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert 'role="img"' in svg and "<title id=" in svg and "<desc id=" in svg
    assert "open violations" in svg and "time (UTC)" in svg  # the axes say what they are
    current = [a for a in p.all(f"window-{window}")]
    assert current[0]["attrs"].get("aria-current") == "true"


def test_a_bad_window_is_said_in_words(client):
    p = get(client, "/ui/?window=year")
    assert "window must be one of day, week, month, not 'year'" in p.text
    assert p.one("history-chart")["attrs"]["data-window"] == "day"


def test_recent_changes_link_open_violations_to_their_explanation(client, service):
    seed(service, ROWS)
    service.datasources.replace_rows("inv", "servers", ROWS[1:])  # vm1 is fixed
    p = get(client)
    changes = p.all("recent-change")
    events = sorted((c["attrs"]["data-event"], " ".join("".join(c["text"]).split()))
                    for c in changes)
    assert [e for e, _ in events] == ["appeared", "appeared", "appeared", "cleared"]
    assert any('ops:error("vm1", "shop")' in text for e, text in events if e == "cleared")
    explains = [a["attrs"]["href"] for a in p.all("recent-explain")]
    assert len(explains) == 2  # the two still open, not the cleared one
    assert all(h.startswith("/ui/explain/ops/") for h in explains)
    assert any("vm2" in h for h in explains) and not any("vm1" in h for h in explains)


def test_datasources_in_trouble_with_their_error(client, service):
    seed(service, ROWS)
    p = get(client)
    assert "Every datasource is reporting" in p.text_of("datasources-trouble")
    service.datasources.find("inv").status.failed("connection refused by inv.example:443", 1.5)
    p = get(client)
    [item] = p.all("trouble-datasource")
    assert item["attrs"]["data-name"] == "inv"
    assert "connection refused by inv.example:443" in p.text_of("datasources-trouble")
    assert "failing" in p.text_of("datasources-trouble")
    assert "/ui/datasources/inv" in p.links


def test_live_refresh_answers_the_body_only(client, service):
    seed(service, ROWS)
    html = client.get("/ui/?window=week").text
    assert 'data-live="*:error *:warning"' in html and 'hx-get="/ui/?window=week"' in html
    r = client.get("/ui/?window=week",
                   headers={"HX-Request": "true", "HX-Target": "overview-body"})
    assert r.status_code == 200 and r.text.lstrip().startswith('<div id="overview-body">')
    assert "<h1>" not in r.text
    assert Page(r.text).one("history-chart")["attrs"]["data-window"] == "week"
