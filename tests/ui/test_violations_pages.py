"""The Violations page: filters, sort and page in the URL, only the page rendered, the
total, export links carrying the filters (and answering the rows shown), links to the
explanation, the live fragment, errors in words."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from tests.api.conftest import make_service, settings  # noqa: F401 (fixture)
from tests.ui.pview_helpers import Page, rows_of, seed, seeded, token_client

ROWS = [[f"vm{i:03d}", "ERROR", "shop" if i % 2 else "lab"] for i in range(120)] + [
    ["vm-bank", "ERROR", "bank"], ["vm-off", "SHUTOFF", "shop"]]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    with seeded(tmp_path_factory.mktemp("violations"), ROWS) as pair:
        yield pair


@pytest.fixture
def client(shared):
    return shared[1]


@pytest.fixture
def service(tmp_path):
    """A service of its own, for a test that changes it."""
    svc = make_service(tmp_path)
    seed(svc, ROWS)
    yield svc
    svc.close()


def page(client, url: str, status: int = 200) -> Page:
    r = client.get(url)
    assert r.status_code == status, r.text
    return Page(r.text)


def test_every_violation_counted_and_only_a_page_rendered(client):
    p = page(client, "/ui/violations")
    assert p.text_of("violations-total") == "121"  # 120 errors (vm-bank is trusted) + 1 warning
    assert len(p.all("violation-row")) == 100
    assert p.one("violations-table")["tag"] == "table"
    assert p.text_of("page-number") == "1"
    assert "Page 1 of 2" in p.text
    p2 = page(client, "/ui/violations?page=2")
    assert len(p2.all("violation-row")) == 21
    shown = rows_of(p) + rows_of(p2)
    assert len({json.dumps(r) for r in shown}) == 121


def test_page_size_and_a_page_past_the_end(client):
    p = page(client, "/ui/violations?size=50&page=3")
    assert len(p.all("violation-row")) == 21
    assert p.text_of("page-number") == "3"
    assert "size=50" in p.one("page-prev")["attrs"]["href"]
    last = page(client, "/ui/violations?size=50&page=99")  # past the end: the last page
    assert last.text_of("page-number") == "3"
    bad = page(client, "/ui/violations?size=7", status=400)
    assert "size must be one of 50, 100, 500, not 7" in bad.text_of("violations-error")


def test_filters_by_policy_table_and_text(client):
    p = page(client, "/ui/violations?table=warning")
    assert rows_of(p) == [("ops", ["vm-off"])]
    assert p.text_of("violations-total") == "1"
    p = page(client, "/ui/violations?q=VM01")  # case-insensitive text in a value
    assert sorted(v[0] for _, v in rows_of(p)) == [f"vm01{i}" for i in range(10)]
    p = page(client, "/ui/violations?q=lab&table=error")
    assert {v[1] for _, v in rows_of(p)} == {"lab"} and len(rows_of(p)) == 60
    p = page(client, "/ui/violations?policy=nobody")
    assert p.text_of("violations-total") == "0"
    assert "No violation matches these filters" in p.text_of("violations-empty")
    p = page(client, "/ui/violations?datasource=inv&severity=none&size=500")
    assert p.text_of("violations-total") == "121"
    # the filter form shows them back, selected
    html = client.get("/ui/violations?table=warning&q=off").text
    assert '<option value="warning" selected>' in html
    assert 'name="q" value="off"' in html


def test_a_bad_filter_is_an_error_in_words(client):
    p = page(client, "/ui/violations?severity=urgent", status=400)
    assert ("query parameter 'severity': 'urgent' is not allowed; use critical, high, medium, "
            "low, info, none") in p.text_of("violations-error")
    p = page(client, "/ui/violations?sort=colour", status=400)
    assert "query parameter 'sort'" in p.text_of("violations-error")
    p = page(client, "/ui/violations?page=zero", status=400)
    assert "page must be a whole number, not 'zero'" in p.text_of("violations-error")


def test_sort_by_row_both_ways_and_headers_toggle(client):
    p = page(client, "/ui/violations?sort=row&table=error&size=500")
    values = [v for _, v in rows_of(p)]
    assert values == sorted(values)
    header = p.one("sort-row")
    assert parse_qs(urlsplit(header["attrs"]["href"]).query)["sort"] == ["-row"]
    p = page(client, "/ui/violations?sort=-row&table=error&size=500")
    assert [v for _, v in rows_of(p)] == sorted(values, reverse=True)
    assert 'aria-sort="descending"' in client.get("/ui/violations?sort=-row").text
    # the headers keep the filters and go back to the first page
    href = page(client, "/ui/violations?q=shop&page=2&size=50").one("sort-policy")["attrs"]["href"]
    assert parse_qs(urlsplit(href).query) == {"q": ["shop"], "sort": ["policy"], "size": ["50"]}


def test_export_links_carry_the_filters_and_answer_the_filtered_set(client):
    p = page(client, "/ui/violations?q=shop&sort=row&size=50")
    csv_href = p.one("export-csv")["attrs"]["href"]
    json_href = p.one("export-json")["attrs"]["href"]
    assert urlsplit(csv_href).path == urlsplit(json_href).path == "/v1/violations"
    assert parse_qs(urlsplit(csv_href).query) == {
        "q": ["shop"], "sort": ["row"], "limit": ["all"], "format": ["csv"]}
    assert parse_qs(urlsplit(json_href).query) == {"q": ["shop"], "sort": ["row"], "limit": ["all"]}
    everything = rows_of(page(client, "/ui/violations?q=shop&sort=row&size=500"))
    body = client.get(json_href).json()
    assert body["total"] == len(everything) == 60
    assert [(v["policy"], v["row"]) for v in body["violations"]] == everything
    lines = list(csv.reader(io.StringIO(client.get(csv_href).text)))
    assert [line[4:] for line in lines[1:]] == [[str(x) for x in v] for _, v in everything]


def test_each_row_links_to_its_explanation(client):
    p = page(client, "/ui/violations?table=warning")
    href = p.one("explain-link")["attrs"]["href"]
    assert urlsplit(href).path == "/ui/explain/ops/warning"
    assert json.loads(parse_qs(urlsplit(href).query)["row"][0]) == ["vm-off"]
    assert len(page(client, href).all("proof-tree")) == 1


def test_live_fragment_keeps_the_view_and_marks_new_rows(service, settings):  # noqa: F811
    client = TestClient(create_app(service, settings), raise_server_exceptions=False)
    html = client.get("/ui/violations?table=error&q=shop&page=2&size=50").text
    assert 'data-live="*:error *:warning"' in html
    p = Page(html)
    state = {m: v for m, v in _hidden(html, "violations-state")}
    assert state["table"] == "error" and state["q"] == "shop" and state["page"] == "2"
    assert state["size"] == "50" and state["sort"] == "-first_seen"
    service.datasources.replace_rows("inv", "servers", [*ROWS, ["vm-new", "ERROR", "shop"]])
    live = {"HX-Request": "true", "HX-Target": "violations-results"}
    r = client.get("/ui/violations", params=state, headers=live)
    assert r.status_code == 200
    assert "<h1>" not in r.text and r.text.lstrip().startswith('<div id="violations-results">')
    assert 'id="filter-sort" name="sort" value="-first_seen" hx-swap-oob="true"' in r.text
    fragment = Page(r.text)
    assert fragment.text_of("violations-total") == "61"
    assert fragment.text_of("page-number") == "2"  # still the page the user was on
    assert not any("new-row" in row["attrs"].get("class", "")
                   for row in fragment.all("violation-row"))  # the newest is on page 1
    fragment = Page(client.get("/ui/violations", params={**state, "page": "1"},
                               headers=live).text)
    new = [row for row in fragment.all("violation-row") if "new-row" in row["attrs"].get("class", "")]
    assert [json.loads(n["attrs"]["data-row"]) for n in new] == [["vm-new", "shop"]]
    assert p.text_of("violations-total") == "60"
    # a page drawn without "since" (a full load) marks nothing
    again = page(client, "/ui/violations?table=error&q=shop")
    assert not any("new-row" in r["attrs"].get("class", "") for r in again.all("violation-row"))


def _hidden(html: str, container: str) -> list[tuple[str, str]]:
    import re
    block = html.split(f'id="{container}"', 1)[1].split("</div>", 1)[0]
    return re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', block)


def test_no_violation_at_all_says_where_rules_are_written(tmp_path, settings):  # noqa: F811
    svc = make_service(tmp_path)
    try:
        with TestClient(create_app(svc, settings), raise_server_exceptions=False) as c:
            p = page(c, "/ui/violations")
            assert p.text_of("violations-total") == "0"
            assert "No violation now" in p.text_of("violations-empty")
            assert "/ui/policies" in p.links
    finally:
        svc.close()


def test_a_viewer_sees_the_page_and_a_stranger_is_sent_to_log_in(tmp_path, monkeypatch,
                                                                 service):
    viewer = token_client(tmp_path, monkeypatch, service, "viewer")
    p = page(viewer, "/ui/violations?table=warning")
    assert rows_of(p) == [("ops", ["vm-off"])]
    assert viewer.get(p.one("export-csv")["attrs"]["href"]).status_code == 200
    stranger = TestClient(viewer.app, raise_server_exceptions=False)
    r = stranger.get("/ui/violations?table=warning", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/ui/login?next=%2Fui%2Fviolations%3Ftable%3Dwarning")
