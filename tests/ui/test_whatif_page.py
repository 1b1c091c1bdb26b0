"""The What if page (/ui/whatif): rows and rules typed as +/- Datalog, the violations the
admission check says would appear and clear, parse errors at their line; nothing changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from tests.api.conftest import make_service, settings  # noqa: F401 (fixture)
from tests.ui.test_policies_pages import create_policy, csrf, page, with_inventory, words

RULE = 'error(x) :- inv:servers(x, "ERROR")'


@pytest.fixture
def ui(tmp_path, settings) -> Iterator[TestClient]:  # noqa: F811 (fixture)
    """Noauth: the caller is admin; the session cookie carries the CSRF token."""
    service = make_service(tmp_path)
    try:
        with TestClient(create_app(service, settings), raise_server_exceptions=False) as c:
            yield c
    finally:
        service.close()


def whatif(ui, changes: str, policy: str = "compute", tables: str = "", status: int = 200):
    query = urlencode({"policy": policy, "changes": changes, "tables": tables})
    return page(ui.get(f"/ui/whatif?{query}"), status)


def listed(shown, testid: str) -> list[tuple[str, list]]:
    box = shown.one(testid)
    return [(e["data-table"], json.loads(e["data-row"])) for e in shown.all("whatif-row")
            if e in _inside(shown, box)]


def _inside(shown, box) -> list:
    """The elements after ``box`` up to the next list (the page is flat in Page)."""
    start = shown.elements.index(box)
    out = []
    for element in shown.elements[start + 1 :]:
        if element.tag == "ul":
            break
        out.append(element)
    return out


def test_the_form(ui):
    create_policy(ui, "compute", [RULE])
    shown = page(ui.get("/ui/whatif?policy=compute"))
    form = shown.one("whatif-form")
    assert (form["method"], form["action"]) == ("get", "/ui/whatif")
    assert shown.one("whatif-input")["name"] == "changes"
    assert shown.one("whatif-submit")
    assert not shown.has("whatif-result")
    assert 'selected>compute</option>' in ui.get("/ui/whatif?policy=compute").text


def test_rows_that_would_clear_and_appear_a_violation(ui):
    with_inventory(ui, [["vm1", "ERROR"], ["vm2", "ACTIVE"]])
    create_policy(ui, "compute", [RULE])
    shown = whatif(ui, '-inv:servers("vm1", "ERROR")\n'
                       '+inv:servers("vm3", "ERROR")\n'
                       '+inv:servers("vm4", "ACTIVE")')
    assert listed(shown, "whatif-appear") == [("error", ["vm3"])]
    assert listed(shown, "whatif-clear") == [("error", ["vm1"])]
    assert "Not allowed: 1 violation would appear" in words(shown.one("whatif-result").text)
    # a row that would clear links to why it holds now
    links = [e["href"] for e in _inside(shown, shown.one("whatif-clear")) if e.tag == "a"]
    parts = urlsplit(links[0])
    assert parts.path == "/ui/explain/compute/error"
    assert json.loads(parse_qs(parts.query)["row"][0]) == ["vm1"]
    # the same answer as the admission endpoint, and nothing changed
    api = ui.post("/v1/policies/compute/admission", json={
        "insert": [{"table": "inv:servers", "row": ["vm3", "ERROR"]},
                   {"table": "inv:servers", "row": ["vm4", "ACTIVE"]}],
        "delete": [{"table": "inv:servers", "row": ["vm1", "ERROR"]}]},
        headers={"X-CSRF-Token": csrf(ui)})
    assert api.status_code == 200, api.text
    api = api.json()
    assert api["appear"] == [{"table": "error", "row": ["vm3"]}]
    assert api["clear"] == [{"table": "error", "row": ["vm1"]}]
    rows = ui.get("/v1/policies/compute/tables/error/rows").json()["results"]
    assert rows == [{"data": ["vm1"]}]


def test_rules_added_and_removed(ui):
    with_inventory(ui, [["vm1", "ERROR"], ["vm2", "ACTIVE"]])
    create_policy(ui, "compute", [RULE])
    shown = whatif(ui, '+warning(x) :- inv:servers(x, "ACTIVE")')
    assert listed(shown, "whatif-appear") == [("warning", ["vm2"])]
    assert listed(shown, "whatif-clear") == []
    shown = whatif(ui, f"-{RULE}\n+inv:servers(\"vm5\",\n    \"ACTIVE\")")
    assert listed(shown, "whatif-clear") == [("error", ["vm1"])]
    assert listed(shown, "whatif-appear") == []
    assert "Allowed: no violation would appear" in words(shown.one("whatif-result").text)
    assert [r["rule"] for r in ui.get("/v1/policies/compute/rules").json()["results"]] \
        == [RULE]
    assert "warning" not in [t["id"] for t in
                             ui.get("/v1/policies/compute/tables").json()["results"]]
    refused = whatif(ui, '-error(x) :- inv:servers(x, "GONE")', status=400)
    assert "has no rule" in refused.one("whatif-error").text


def test_watched_tables_of_another_policy(ui):
    with_inventory(ui, [["vm1", "ACTIVE"]])
    create_policy(ui, "compute", [RULE])
    create_policy(ui, "other", ['error(x) :- inv:servers(x, "ACTIVE")'])
    shown = whatif(ui, '-inv:servers("vm1", "ACTIVE")', tables="error other:error")
    assert listed(shown, "whatif-clear") == [("other:error", ["vm1"])]
    link = [e["href"] for e in _inside(shown, shown.one("whatif-clear")) if e.tag == "a"][0]
    assert urlsplit(link).path == "/ui/explain/other/error"


def test_a_parse_error_is_shown_at_its_line(ui):
    create_policy(ui, "compute", [RULE])
    text = '+inv:servers("vm3", "ERROR")\n+inv:servers("vm4",, "ERROR")'
    shown = whatif(ui, text, status=400)
    (diagnostic,) = shown.all("diagnostic")
    assert diagnostic["data-line"] == "2"
    assert diagnostic["data-column"] == "20"
    assert "line 2, column 20" in shown.one("whatif-error").text
    assert [m["data-line"] for m in shown.all("marked-line")] == ["2"]
    assert shown.one("whatif-input").text == text  # the user's text is kept
    assert not shown.has("whatif-result")


def test_unmarked_lines_and_bad_rows_are_refused_at_their_line(ui):
    create_policy(ui, "compute", [RULE])
    shown = whatif(ui, '+inv:servers("vm3", "ERROR")\n\ninv:servers("vm4", "ERROR")',
                   status=400)
    assert [(d["data-line"], d["data-code"]) for d in shown.all("diagnostic")] \
        == [("3", "whatif_sign")]
    shown = whatif(ui, "+inv:servers(x, \"ERROR\")", status=400)
    assert [d["data-code"] for d in shown.all("diagnostic")] == ["whatif_row"]
    shown = whatif(ui, "  # nothing but a comment", status=400)
    assert [d["data-code"] for d in shown.all("diagnostic")] == ["whatif_empty"]


def test_errors_of_the_request_in_words(ui):
    create_policy(ui, "compute", [RULE])
    missing = whatif(ui, '+inv:servers("vm3", "ERROR")', policy="nope", status=404)
    assert "No such policy: nope" in missing.one("whatif-error").text
    unchosen = whatif(ui, '+inv:servers("vm3", "ERROR")', policy="", status=400)
    assert "choose the policy" in unchosen.one("whatif-error").text
    unknown = whatif(ui, '+p(1)', tables="nothing", status=400)
    assert "unknown table nothing" in unknown.one("whatif-error").text


def test_every_policy_is_offered(ui):
    create_policy(ui, "compute", [RULE])
    text = ui.get("/ui/whatif").text
    for name in ("classification", "action", "compute"):
        assert f"<option>{name}</option>" in text
