"""The dashboard in a real headless Chromium against a real ``charter serve`` (token auth):
issue 14's acceptance, step by step, with a screenshot of each page (docs/ui.md is made
from them by scripts/ui-docs.py).

An admin creates a push datasource and a policy through the pages; rows pushed through the
API make a violation appear on the open Violations page without a reload; its explanation
opens; a what-if shows it clearing; a rule with a syntax error shows the diagnostic at its
line; a viewer sees no edit controls and is refused (403) when it posts anyway; a forged
cross-site form is refused; the CSV export equals the API's rows. No page asks for anything
from another host (the machine has no internet: a CDN asset would fail).
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.ui.conftest import ServedCharter, off_origin_requests, screenshot, wait_for

DS, POLICY = "inv", "ops"
RULE = 'error(s) :- inv:servers(s, "bad")'
ROWS = [["vm1", "bad"], ["vm2", "good"]]


def css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def shown(selector: str):
    """A wait condition: the first visible element matching ``selector``."""

    def condition(driver):
        for element in css(driver, selector):
            if element.is_displayed():
                return element
        return None

    return condition


def log_in(driver, served: ServedCharter, role: str, then: str = "/ui/") -> None:
    driver.delete_all_cookies()
    driver.get(served.url + then)
    field = wait_for(driver, shown('input[name="token"]'), what="the login form")
    if role == "admin":
        screenshot(driver, "login")
    field.send_keys(served.tokens[role])
    field.submit()
    wait_for(driver, shown(f".role-{role}"), what=f"logged in as {role}")


def api(served: ServedCharter, method: str, path: str, **kwargs) -> httpx.Response:
    r = httpx.request(method, served.url + path, headers=served.headers("admin"), timeout=60,
                      **kwargs)
    assert r.status_code < 400, f"{method} {path}: {r.status_code} {r.text}"
    return r


def api_violations(served: ServedCharter, policy: str = POLICY) -> list[list]:
    body = api(served, "GET", f"/v1/policies/{policy}/violations").json()
    return sorted(v["row"] if "row" in v else v["data"] for v in body["results"])


@pytest.fixture(scope="module")
def cloud(charter_server_token: ServedCharter) -> ServedCharter:
    return charter_server_token


def test_the_admins_tour(browser, cloud: ServedCharter):
    d = browser
    log_in(d, cloud, "admin")
    wait_for(d, shown('[data-testid="overview-empty"], [data-testid="overview-counts"]'),
             what="the overview")
    screenshot(d, "overview")

    # a push datasource, created from the driver's config schema
    d.get(cloud.url + "/ui/datasources/new?driver=push")
    wait_for(d, shown("#ds-name"), what="the create form").send_keys(DS)
    css(d, "#cfg-tables")[0].send_keys(json.dumps({"servers": ["id", "status"]}))
    screenshot(d, "datasource-new")
    css(d, '[data-testid="datasource-create-submit"]')[0].click()
    wait_for(d, lambda d: f"/ui/datasources/{DS}" in d.current_url, what="the new datasource")

    # a policy and its rule, through the pages
    d.get(cloud.url + "/ui/policies")
    form = wait_for(d, shown('[data-testid="policy-create-form"]'), what="the policy form")
    form.find_element("css selector", 'input[name="name"]').send_keys(POLICY)
    form.submit()
    d.get(cloud.url + f"/ui/policies/{POLICY}")
    editor = wait_for(d, shown('[data-testid="rule-editor"]'), what="the rule editor")
    editor.send_keys(RULE)
    wait_for(d, shown('[data-testid="rule-ok"]'), what="the live check's ok")
    css(d, '[data-testid="rule-save"]')[0].click()
    wait_for(d, shown('[data-testid="rule"]'), what="the saved rule")
    rules = api(cloud, "GET", f"/v1/policies/{POLICY}/rules").json()["results"]
    assert [r["rule"] for r in rules] == [RULE]
    screenshot(d, "policy")

    # the open Violations page shows the pushed violation without a reload
    d.get(cloud.url + "/ui/violations")
    wait_for(d, lambda d: d.execute_script("return document.body.dataset.live") == "ready",
             what="the live stream")
    d.execute_script("window.charterTour = 'same page'")
    api(cloud, "PUT", f"/v1/data-sources/{DS}/tables/servers/rows", json=ROWS)
    row = wait_for(d, shown('[data-testid="violation-row"][data-policy="ops"]'),
                   what="the pushed violation")
    assert json.loads(row.get_attribute("data-row")) == ["vm1"]
    assert d.execute_script("return window.charterTour") == "same page"  # no reload
    wait_for(d, lambda d: css(d, '[data-testid="violations-total"]')[0].text.strip() == "1",
             what="the total")
    screenshot(d, "violations")

    # its explanation
    row.find_element("css selector", '[data-testid="explain-link"]').click()
    tree = wait_for(d, shown('[data-testid="proof-tree"]'), what="the proof tree")
    assert "vm1" in tree.text and "inv:servers" in tree.text
    screenshot(d, "explain")

    # what if the bad server went away: the violation clears, and nothing changes
    d.get(cloud.url + f"/ui/whatif?policy={POLICY}")
    wait_for(d, shown('[data-testid="whatif-input"]'), what="the what-if form").send_keys(
        '-inv:servers("vm1", "bad")')
    css(d, '[data-testid="whatif-submit"]')[0].click()
    cleared = wait_for(d, shown('[data-testid="whatif-clear"] [data-testid="whatif-row"]'),
                       what="the violation that would clear")
    assert json.loads(cleared.get_attribute("data-row")) == ["vm1"]
    assert api_violations(cloud) == [["vm1"]]
    screenshot(d, "whatif")

    # a syntax error, shown at its line as the user types
    d.get(cloud.url + f"/ui/policies/{POLICY}")
    editor = wait_for(d, shown('[data-testid="rule-editor"]'), what="the rule editor")
    editor.send_keys('warning(s) :- inv:servers(s, "good")\nerror(s :- inv:servers(s, _)')
    diagnostic = wait_for(d, shown('[data-testid="diagnostic"]'), what="the diagnostic")
    assert diagnostic.get_attribute("data-line") == "2"
    assert diagnostic.get_attribute("data-severity") == "error"
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", editor)
    screenshot(d, "rule-diagnostic")

    # the remaining pages, for the record and for their assets
    for path, name, ready in (
        ("/ui/datasources", "datasources", '[data-testid="datasources-table"]'),
        ("/ui/enforcement", "enforcement", '[data-testid="enforcement-table"]'),
        ("/ui/packs", "packs", "table"),
        ("/ui/", "overview", '[data-testid="overview-counts"]'),
    ):
        d.get(cloud.url + path)
        wait_for(d, shown(ready), what=name)
        screenshot(d, name)
    d.get(cloud.url + "/ui/packs/openstack-security")
    wait_for(d, shown('button[value="enable"]'), what="the enable button").click()
    wait_for(d, shown(".stats"), what="the posture")
    screenshot(d, "pack")

    assert off_origin_requests(d, cloud.url) == []


def test_a_viewer_sees_no_edit_controls_and_is_refused_when_posting(browser, cloud):
    d = browser
    api(cloud, "POST", "/v1/policies", json={"name": "viewed"})
    api(cloud, "POST", "/v1/policies/viewed/rules", json={"rule": "p(1)"})
    log_in(d, cloud, "viewer", then="/ui/policies")
    wait_for(d, shown('[data-testid="policies-table"]'), what="the policies")
    assert not css(d, '[data-testid="policy-create-form"]')
    assert not css(d, '[data-testid="policy-delete"]')
    d.get(cloud.url + "/ui/policies/viewed")
    wait_for(d, shown('[data-testid="rule"]'), what="the rule")
    for control in ("rule-editor", "rule-save", "rule-edit", "rule-delete"):
        assert not css(d, f'[data-testid="{control}"]'), control
    screenshot(d, "viewer-policy")
    status = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/ui/policies/viewed/rules', {method: 'POST',
            headers: {'Content-Type': 'application/x-www-form-urlencoded',
                      'X-CSRF-Token': document.body.dataset.csrf},
            body: 'rule=' + encodeURIComponent('q(2)')}).then(r => done(r.status));""")
    assert status == 403
    rules = api(cloud, "GET", "/v1/policies/viewed/rules").json()["results"]
    assert [r["rule"] for r in rules] == ["p(1)"]


@pytest.fixture
def other_site(cloud: ServedCharter) -> Iterator[str]:
    """Another origin (a second port on 127.0.0.1) whose page posts a form to Charter."""
    page = f"""<!doctype html><form method="post" action="{cloud.url}/ui/policies">
<input name="name" value="forged"></form><script>document.forms[0].submit()</script>"""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_forged_cross_site_post_is_refused(browser, cloud, other_site):
    d = browser
    log_in(d, cloud, "admin")
    d.get(other_site)
    wait_for(d, lambda d: d.current_url.startswith(cloud.url), what="the forged post's answer")
    wait_for(d, shown(".error"), what="the refusal")
    assert "another site" in d.find_element("css selector", ".error").text
    names = {p["name"] for p in api(cloud, "GET", "/v1/policies").json()["results"]}
    assert "forged" not in names


def test_the_csv_export_equals_the_apis_rows(browser, cloud):
    d = browser
    api(cloud, "POST", "/v1/policies", json={"name": "export"})
    api(cloud, "POST", "/v1/data-sources", json={
        "name": "exp", "driver": "push", "config": {"tables": {"t": ["a", "b"]}}})
    api(cloud, "POST", "/v1/policies/export/rules", json={"rule": "error(a, b) :- exp:t(a, b)"})
    rows = [[f"r{k}", k] for k in range(7)] + [["=cmd|' /C calc'!A0", 99]]
    api(cloud, "PUT", "/v1/data-sources/exp/tables/t/rows", json=rows)
    log_in(d, cloud, "viewer", then="/ui/violations?policy=export")
    link = wait_for(d, shown('[data-testid="export-csv"]'), what="the export link")
    wait_for(d, lambda d: css(d, '[data-testid="violations-total"]')[0].text.strip() == "8",
             what="the 8 violations")
    text = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(r => r.text()).then(done);""", link.get_attribute("href"))
    exported = list(csv.reader(io.StringIO(text)))
    header, body = exported[0], exported[1:]
    values = sorted(tuple(line[len(header) - 2:]) for line in body)
    expected = sorted((str(a).replace("=", "'=", 1) if str(a).startswith("=") else str(a), str(b))
                      for a, b in api_violations(cloud, "export"))
    assert len(body) == 8
    assert values == expected
