"""The Policies pages (/ui/policies...) through the mounted dashboard app with a TestClient:
create and delete policies, add, edit and delete rules with CSRF, the editor's live check
and a refused save showing the diagnostic at its line, role gating, the tables paged."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.api.auth import TokenAuthenticator
from charter.service.config import StaticToken
from tests.api.conftest import make_service, settings  # noqa: F401 (fixture)

SCHEMA = {"tables": {"servers": ["id", "status"]}}
TOKENS = {"viewer": "ppol-viewer-token", "editor": "ppol-editor-token"}


# ---------------------------------------------------------------- reading pages


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag, self.attrs, self.text = tag, attrs, ""

    def __getitem__(self, name: str) -> str:
        return self.attrs[name]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)


class Page(HTMLParser):
    """Every element of a page with its attributes and its text (the text of all it
    holds), so tests ask for ``data-testid``s rather than match markup."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}
    SEPARATE = {"td", "th", "li", "br", "div", "p", "tr"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag in self.SEPARATE:  # text of cells and lines does not run together
            self.handle_data(" ")
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for element in self._open:
            element.text += data

    def all(self, testid: str) -> list[Element]:
        return [e for e in self.elements if e.get("data-testid") == testid]

    def one(self, testid: str) -> Element:
        found = self.all(testid)
        assert len(found) == 1, f"{len(found)} elements with data-testid={testid!r}"
        return found[0]

    def has(self, testid: str) -> bool:
        return bool(self.all(testid))


def page(response, status: int = 200) -> Page:
    assert response.status_code == status, response.text[:3000]
    return Page(response.text)


def csrf(client: TestClient, path: str = "/ui/policies") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def words(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def service(tmp_path):
    svc = make_service(tmp_path)
    yield svc
    svc.close()


@pytest.fixture
def ui(service, settings) -> Iterator[TestClient]:  # noqa: F811 (fixture)
    """Noauth: the caller is admin; the session cookie carries the CSRF token."""
    with TestClient(create_app(service, settings), raise_server_exceptions=False) as c:
        yield c


def token_client(service, settings, role: str) -> TestClient:  # noqa: F811 (fixture)
    tokens = tuple(StaticToken(f"ppol-{r}", r, hashlib.sha256(t.encode()).digest())
                   for r, t in TOKENS.items())
    client = TestClient(create_app(service, settings, TokenAuthenticator(tokens)),
                        raise_server_exceptions=False)
    response = client.post("/ui/login", data={"token": TOKENS[role], "next": "/ui/policies"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def with_inventory(client: TestClient, servers: list[list]) -> None:
    assert client.post("/v1/data-sources", json={"name": "inv", "driver": "push",
                                                 "config": SCHEMA}).status_code == 201
    response = client.put("/v1/data-sources/inv/tables/servers/rows", json=servers)
    assert response.status_code == 200, response.text


def create_policy(client: TestClient, name: str, rules: list[str] = ()) -> None:
    response = client.post("/v1/policies", json={"name": name,
                                                 "rules": [{"rule": r} for r in rules]})
    assert response.status_code == 201, response.text


def rules_of(client: TestClient, policy: str) -> list[dict]:
    return client.get(f"/v1/policies/{policy}/rules").json()["results"]


# ---------------------------------------------------------------- the list


def test_create_a_policy_through_the_form(ui):
    listed = page(ui.get("/ui/policies"))
    form = listed.one("policy-create-form")
    assert form["method"] == "post" and form["action"] == "/ui/policies"
    response = ui.post("/ui/policies", data={
        "name": "compute", "abbreviation": "cmp", "kind": "nonrecursive",
        "description": "servers in trouble", "csrf_token": csrf(ui)}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/policies/compute"
    shown = ui.get("/v1/policies/compute").json()
    assert (shown["abbreviation"], shown["description"]) == ("cmp", "servers in trouble")
    rows = {r["data-policy"]: r for r in page(ui.get("/ui/policies")).all("policy-row")}
    assert set(rows) == {"classification", "action", "compute"}
    assert "cmp" in rows["compute"].text and "dry-run" in rows["compute"].text


def test_the_list_counts_rules_and_violations(ui):
    with_inventory(ui, [["vm1", "ERROR"], ["vm2", "ERROR"], ["vm3", "ACTIVE"]])
    create_policy(ui, "broken", ['error(x) :- inv:servers(x, "ERROR")',
                                 'warning(x) :- inv:servers(x, "ACTIVE")'])
    row = {r["data-policy"]: r for r in page(ui.get("/ui/policies")).all("policy-row")}
    text = words(row["broken"].text)
    # name, abbreviation, kind, owner, rules, violations, enforcement
    assert text.startswith("broken broke nonrecursive anonymous 2 3 dry-run"), text


def test_a_refused_create_says_why_and_keeps_the_form(ui):
    response = ui.post("/ui/policies", data={"name": "9lives", "description": "kept",
                                             "csrf_token": csrf(ui)})
    shown = page(response, 400)
    assert "invalid policy name" in shown.one("policy-create-error").text
    assert 'value="9lives"' in response.text and 'value="kept"' in response.text
    assert [r["data-policy"] for r in shown.all("policy-row")] == ["classification", "action"]


def test_a_post_without_the_csrf_token_is_refused(ui):
    response = ui.post("/ui/policies", data={"name": "forged"})
    assert response.status_code == 403
    assert "CSRF" in response.text or "token" in response.text
    response = ui.post("/ui/policies", data={"name": "forged", "csrf_token": csrf(ui)},
                       headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert ui.get("/v1/policies/forged").status_code == 404


def test_delete_a_policy_with_a_confirmation(ui):
    create_policy(ui, "doomed", ["p(1)"])
    listed = page(ui.get("/ui/policies"))
    row = next(r for r in listed.all("policy-row") if r["data-policy"] == "doomed")
    assert row is not None
    form = re.search(r'<form method="post" action="/ui/policies/doomed/delete"[^>]*>',
                     ui.get("/ui/policies").text)
    assert form and "data-confirm=" in form.group(0)
    response = ui.post("/ui/policies/doomed/delete", data={"csrf_token": csrf(ui)},
                       follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/policies?deleted=doomed"
    shown = page(ui.get(response.headers["location"]))
    assert "doomed" not in [r["data-policy"] for r in shown.all("policy-row")]
    assert words(shown.one("policy-deleted").text) == "Deleted policy doomed."
    assert ui.get("/v1/policies/doomed").status_code == 404


def test_deleting_a_builtin_policy_is_refused_in_words(ui):
    response = ui.post("/ui/policies/classification/delete", data={"csrf_token": csrf(ui)})
    assert response.status_code == 404
    assert "Cannot delete system-maintained policy classification" in response.text
    assert "Traceback" not in response.text


def test_an_unknown_policy_is_a_page_in_words(ui):
    response = ui.get("/ui/policies/nope")
    assert response.status_code == 404
    assert "No such policy: nope" in response.text


# ---------------------------------------------------------------- rules


def test_add_edit_and_delete_a_rule(ui):
    create_policy(ui, "compute")
    token = csrf(ui)
    response = ui.post("/ui/policies/compute/rules", data={
        "rule": 'error(x) :- inv:servers(x, "ERROR")', "name": "in_error",
        "comment": "servers in ERROR", "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    (rule,) = rules_of(ui, "compute")
    assert response.headers["location"] == f"/ui/policies/compute#rule-{rule['id']}"
    shown = page(ui.get("/ui/policies/compute"))
    assert shown.one("rules-list")
    (item,) = shown.all("rule")
    assert item["data-rule-id"] == rule["id"]
    assert "in_error" in item.text and "servers in ERROR" in item.text
    assert 'inv:servers(x, "ERROR")' in item.text

    editing = page(ui.get(f"/ui/policies/compute?edit={rule['id']}"))
    assert editing.one("rule-editor").text == 'error(x) :- inv:servers(x, "ERROR")'
    form = editing.one("rule-form")
    assert form["action"] == f"/ui/policies/compute/rules/{rule['id']}"
    response = ui.post(form["action"], data={
        "rule": 'error(x) :- inv:servers(x, "SHUTOFF")', "name": "in_error",
        "comment": "now SHUTOFF", "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    (edited,) = rules_of(ui, "compute")
    assert edited == {"id": rule["id"], "name": "in_error", "comment": "now SHUTOFF",
                      "rule": 'error(x) :- inv:servers(x, "SHUTOFF")'}

    shown = page(ui.get("/ui/policies/compute"))
    assert shown.one("rule-delete")
    response = ui.post(f"/ui/policies/compute/rules/{rule['id']}/delete",
                       data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert rules_of(ui, "compute") == []
    shown = page(ui.get("/ui/policies/compute"))
    assert shown.all("rule") == []
    assert "No rule yet: write one below" in ui.get("/ui/policies/compute").text


def test_a_syntax_error_on_save_is_shown_at_its_line_with_the_text_kept(ui):
    create_policy(ui, "compute")
    text = 'error(x) :-\n  inv:servers(x, "ERROR"'
    response = ui.post("/ui/policies/compute/rules", data={"rule": text, "name": "bad",
                                                           "csrf_token": csrf(ui)})
    shown = page(response, 400)
    assert "invalid rule" in shown.one("rule-error").text
    assert shown.one("rule-editor").text == text
    (diagnostic,) = shown.all("diagnostic")
    assert (diagnostic["data-line"], diagnostic["data-severity"]) == ("2", "error")
    assert diagnostic["data-column"].isdigit()
    assert f"2:{diagnostic['data-column']}" in diagnostic.text
    (marked,) = shown.all("marked-line")
    assert marked["data-line"] == "2" and 'inv:servers(x, "ERROR"' in marked.text
    assert 'value="bad"' in response.text
    assert rules_of(ui, "compute") == []


def test_an_edit_with_an_error_leaves_the_rule_and_shows_the_diagnostic(ui):
    create_policy(ui, "compute", ["p(x) :- q(x)"])
    (rule,) = rules_of(ui, "compute")
    response = ui.post(f"/ui/policies/compute/rules/{rule['id']}", data={
        "rule": "p(x) :- q(y)", "csrf_token": csrf(ui)})
    shown = page(response, 400)
    assert "unsafe" in shown.one("rule-error").text.lower()
    assert shown.one("rule-editor").text == "p(x) :- q(y)"
    assert shown.one("rule-form")["action"] == f"/ui/policies/compute/rules/{rule['id']}"
    assert {d["data-line"] for d in shown.all("diagnostic")} == {"1"}
    assert rules_of(ui, "compute") == [rule]


def test_the_live_check_answers_the_same_diagnostics_as_the_api(ui):
    create_policy(ui, "compute", ["p(x) :- q(x)"])
    token = csrf(ui)
    text = "r(x) :- q(x)\nerror(x) :- q(x), not s(y)"
    response = ui.post("/ui/policies/compute/check", data={"rule": text, "csrf_token": token})
    shown = page(response)
    listed = [(d["data-line"], d["data-column"], d["data-code"], d["data-severity"])
              for d in shown.all("diagnostic")]
    api = ui.post("/v1/policies/compute/check", json={"rule": text},
                  headers={"X-CSRF-Token": token}).json()
    assert listed == [(str(d["line"]), str(d["column"]), d["code"], d["severity"])
                      for d in api["diagnostics"]]
    assert any(sev == "error" and line == "2" for line, _, _, sev in listed), listed
    assert [m["data-line"] for m in shown.all("marked-line")] == sorted(
        {line for line, *_ in listed})
    # the editor posts here as the user types (htmx, debounced)
    editor = page(ui.get("/ui/policies/compute")).one("rule-editor")
    assert editor["hx-post"] == "/ui/policies/compute/check"
    assert "delay:300ms" in editor["hx-trigger"]


def test_the_live_check_of_an_edit_checks_it_in_place_of_the_rule(ui):
    create_policy(ui, "compute", ["p(x) :- q(x)"])
    (rule,) = rules_of(ui, "compute")
    token = csrf(ui)
    beside = page(ui.post("/ui/policies/compute/check",
                          data={"rule": "p(x) :- q(x)", "csrf_token": token}))
    assert "error" in {d["data-severity"] for d in beside.all("diagnostic")}
    in_place = page(ui.post("/ui/policies/compute/check", data={
        "rule": "p(x) :- q(x)", "replace": rule["id"], "csrf_token": token}))
    assert "error" not in {d["data-severity"] for d in in_place.all("diagnostic")}
    clean = page(ui.post("/ui/policies/compute/check",
                         data={"rule": "", "csrf_token": token}))
    assert clean.all("diagnostic") == []


def test_a_viewer_sees_no_edit_controls_and_gets_403_when_posting(service, settings):  # noqa: F811
    editor = token_client(service, settings, "editor")
    viewer = token_client(service, settings, "viewer")
    with editor, viewer:
        token = csrf(editor)
        assert editor.post("/ui/policies", data={"name": "compute", "csrf_token": token},
                           follow_redirects=False).status_code == 303
        assert editor.post("/ui/policies/compute/rules", data={
            "rule": "p(x) :- q(x)", "csrf_token": token},
            follow_redirects=False).status_code == 303
        (rule,) = service.policies.rules("compute")

        as_editor = page(editor.get("/ui/policies/compute"))
        for testid in ("rule-editor", "rule-save", "rule-delete", "rule-edit",
                       "policy-delete"):
            assert as_editor.has(testid), testid
        assert page(editor.get("/ui/policies")).has("policy-create-form")

        listed = page(viewer.get("/ui/policies"))
        assert listed.has("policies-table")
        assert not listed.has("policy-create-form") and not listed.has("policy-delete")
        shown = page(viewer.get("/ui/policies/compute"))
        assert [r["data-rule-id"] for r in shown.all("rule")] == [rule.id]
        for testid in ("rule-editor", "rule-save", "rule-delete", "rule-edit",
                       "policy-delete", "rule-form"):
            assert not shown.has(testid), testid
        assert not shown.has("rule-editor")
        assert "?edit=" not in viewer.get("/ui/policies/compute").text

        vtoken = csrf(viewer)
        for path, data in (
                ("/ui/policies", {"name": "mine"}),
                ("/ui/policies/compute/rules", {"rule": "r(1)"}),
                (f"/ui/policies/compute/rules/{rule.id}", {"rule": "p(x) :- s(x)"}),
                (f"/ui/policies/compute/rules/{rule.id}/delete", {}),
                ("/ui/policies/compute/delete", {})):
            response = viewer.post(path, data={**data, "csrf_token": vtoken})
            assert response.status_code == 403, (path, response.text)
            assert "has role viewer" in response.text
        assert [r.rule for r in service.policies.rules("compute")] == ["p(x) :- q(x)"]
        assert service.policies.find("mine") is None
        # a viewer may still check text (the check changes nothing)
        checked = page(viewer.post("/ui/policies/compute/check",
                                   data={"rule": "p(x) :- q(y)", "csrf_token": vtoken}))
        assert checked.all("diagnostic")


def test_logged_out_pages_redirect_to_the_login(service, settings):  # noqa: F811
    tokens = (StaticToken("v", "viewer", hashlib.sha256(b"v-token").digest()),)
    with TestClient(create_app(service, settings, TokenAuthenticator(tokens)),
                    raise_server_exceptions=False) as client:
        response = client.get("/ui/policies", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ui/login?next=")


# ---------------------------------------------------------------- tables


def test_a_policy_table_is_paged_on_the_server_with_explain_links(ui):
    with_inventory(ui, [[f"vm{i:03d}", "ERROR"] for i in range(120)])
    create_policy(ui, "compute", ['error(x) :- inv:servers(x, "ERROR")'])
    shown = page(ui.get("/ui/policies/compute"))
    counts = {t["data-table"]: words(t.text) for t in shown.all("policy-table")}
    assert counts == {"error": "error 120"}

    first = page(ui.get("/ui/policies/compute/tables/error"))
    assert first.one("table-rows")
    rows = first.all("table-row")
    assert len(rows) == 50
    assert words(first.one("table-range").text) == "Rows 1–50 of 120"
    assert "vm000" in rows[0].text
    link = first.all("row-explain")[0]["href"]
    parts = urlsplit(link)
    assert parts.path == "/ui/explain/compute/error"
    assert json.loads(parse_qs(parts.query)["row"][0]) == ["vm000"]
    nxt = first.one("page-next")["href"]
    assert parse_qs(urlsplit(nxt).query)["page"] == ["2"]

    last = page(ui.get("/ui/policies/compute/tables/error?page=3&size=50"))
    assert len(last.all("table-row")) == 20
    assert words(last.one("table-range").text) == "Rows 101–120 of 120"
    assert not last.has("page-next") and last.has("page-prev")
    seen = set()
    for number in (1, 2, 3):
        shown = page(ui.get(f"/ui/policies/compute/tables/error?page={number}"))
        seen |= {words(r.text).split()[1] for r in shown.all("table-row")}
    assert seen == {f"vm{i:03d}" for i in range(120)}
    big = page(ui.get("/ui/policies/compute/tables/error?size=500"))
    assert len(big.all("table-row")) == 120
    past = page(ui.get("/ui/policies/compute/tables/error?page=99"))
    assert words(past.one("table-range").text) == "Rows 101–120 of 120"


def test_an_empty_or_unknown_table(ui):
    create_policy(ui, "compute", ["p(x) :- q(x)"])
    shown = page(ui.get("/ui/policies/compute/tables/p"))
    assert not shown.has("table-rows")
    assert words(shown.one("table-range").text) == "No rows"
    assert "compute:p holds no row now" in ui.get("/ui/policies/compute/tables/p").text
    response = ui.get("/ui/policies/compute/tables/nothing")
    assert response.status_code == 404
    assert "No such table nothing in policy compute" in response.text
