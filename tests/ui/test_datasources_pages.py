"""The Datasources pages: the list with each one's status, a datasource's page, a table's
rows a page at a time, refresh, delete, and the create form made from a driver's config
options (admin only, errors in words with the inputs kept)."""

from __future__ import annotations

from tests.ui.pds_support import Elements, csrf, text

pytest_plugins = ["tests.ui.pds_support"]  # pds_app, pds_service, pds_login


def push(service, name="mon", config=None):
    return service.datasources.create({"name": name, "driver": "push",
                                       "config": config or {}})


def test_empty_state_offers_create_to_admin_only(pds_login):
    admin = pds_login("admin")
    page = admin.get("/ui/datasources")
    assert page.status_code == 200
    assert "No datasource yet:" in text(page.text)
    assert Elements(page.text).testid("datasource-new-link")
    editor = pds_login("editor")
    page = editor.get("/ui/datasources")
    assert "No datasource yet:" in text(page.text)
    assert "an admin can create one" in text(page.text)
    assert not Elements(page.text).testid("datasource-new-link")
    assert '/ui/datasources/new' not in page.text


def test_admin_creates_a_push_datasource_through_the_form(pds_login, pds_service):
    admin = pds_login("admin")
    chooser = Elements(admin.get("/ui/datasources/new").text)
    options = [a.get("value") for t, a in chooser.tags if t == "option"]
    assert "push" in options and chooser.testid("driver-select")
    form_page = admin.get("/ui/datasources/new?driver=push")
    found = Elements(form_page.text)
    assert found.testid("datasource-create-form") and found.testid("datasource-create-submit")
    # the form is generated from the push driver's config options: tables is JSON
    assert [t for t, _ in found.named("config.tables")] == ["textarea"]
    r = admin.post("/ui/datasources", data={"csrf_token": csrf(admin), "driver": "push",
                                            "name": "mon"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/datasources/mon")
    assert pds_service.datasources.get("mon").record.driver == "push"
    listing = admin.get("/ui/datasources")
    rows = Elements(listing.text).testid("datasource-row")
    assert [r["data-name"] for r in rows] == ["mon"]
    assert Elements(listing.text).testid("datasources-table")
    assert "ready" in text(listing.text)


def test_config_schema_becomes_typed_inputs(pds_login):
    admin = pds_login("admin")
    html = admin.get("/ui/datasources/new?driver=nova").text
    page = Elements(html)
    kinds = {a["name"]: (t, a.get("type")) for t, a in page.tags if a.get("name", "").
             startswith("config.")}
    assert kinds["config.password"] == ("input", "password")
    assert kinds["config.verify"] == ("input", "checkbox")
    assert kinds["config.timeout_seconds"] == ("input", "number")
    assert kinds["config.auth_url"] == ("input", "text")
    required = {a["name"] for _, a in page.tags if "required" in a}
    assert {"config.auth_url", "config.username", "config.password", "name"} <= required
    assert "config.region_name" not in required
    assert "Keystone v3 URL, e.g. http://keystone:5000/v3" in text(html)  # help from the schema


def test_bad_config_shows_the_message_and_keeps_the_inputs(pds_login, pds_service):
    admin = pds_login("admin")
    token = csrf(admin)
    bad_json = '{"alarms": ["id", "host"'
    r = admin.post("/ui/datasources", data={
        "csrf_token": token, "driver": "push", "name": "mon", "description": "alarms",
        "config.tables": bad_json})
    assert r.status_code == 400
    assert "config 'tables' is not valid JSON" in text(r.text)
    page = Elements(r.text)
    assert page.testid("datasource-create-error")
    assert [a["value"] for t, a in page.named("name") if t == "input"] == ["mon"]
    assert [a["value"] for t, a in page.named("description")] == ["alarms"]
    assert bad_json in text(r.text)  # the textarea keeps what was typed
    # the driver's own check, in its words
    r = admin.post("/ui/datasources", data={
        "csrf_token": token, "driver": "push", "name": "mon", "config.tables": '{"a": []}'})
    assert r.status_code == 400
    assert "non-empty list of column names" in text(r.text)
    # a required key missing, a number that is not one (nova: no network touched)
    r = admin.post("/ui/datasources", data={"csrf_token": token, "driver": "nova",
                                            "name": "n1", "config.auth_url": "http://ks/v3"})
    assert r.status_code == 400 and "needs config key 'username'" in text(r.text)
    assert [a["value"] for _, a in Elements(r.text).named("config.auth_url")] == ["http://ks/v3"]
    r = admin.post("/ui/datasources", data={"csrf_token": token, "driver": "nova",
                                            "name": "n1", "config.timeout_seconds": "ten"})
    assert r.status_code == 400 and "config 'timeout_seconds' must be a number" in text(r.text)
    assert pds_service.datasources.list() == []
    # a name taken: 409, in words
    push(pds_service)
    r = admin.post("/ui/datasources", data={"csrf_token": token, "driver": "push",
                                            "name": "mon"})
    assert r.status_code == 409 and "Datasource with name mon already exists" in text(r.text)
    r = admin.post("/ui/datasources", data={"csrf_token": token, "driver": "pushh",
                                            "name": "x"})
    assert r.status_code == 400 and "did you mean push?" in text(r.text)


def test_secrets_are_not_sent_back(pds_login):
    admin = pds_login("admin")
    r = admin.post("/ui/datasources", data={
        "csrf_token": csrf(admin), "driver": "nova", "name": "n1",
        "config.auth_url": "http://ks/v3", "config.password": "s3cret-pass"})
    assert r.status_code == 400 and "needs config key 'username'" in text(r.text)
    assert "s3cret-pass" not in r.text


def test_editor_and_viewer_may_not_create(pds_login, pds_service):
    for role in ("editor", "viewer"):
        client = pds_login(role)
        page = client.get("/ui/datasources/new?driver=push")
        assert not Elements(page.text).testid("datasource-create-form")
        assert "Only an admin can create a datasource" in text(page.text)
        r = client.post("/ui/datasources", data={"csrf_token": csrf(client),
                                                 "driver": "push", "name": "mon"})
        assert r.status_code == 403
        assert "this needs admin or higher" in text(r.text)
    assert pds_service.datasources.list() == []


def test_create_without_csrf_token_is_refused(pds_login, pds_service):
    admin = pds_login("admin")
    r = admin.post("/ui/datasources", data={"driver": "push", "name": "mon"})
    assert r.status_code == 403
    r = admin.post("/ui/datasources", data={"csrf_token": csrf(admin), "driver": "push",
                                            "name": "mon"},
                   headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "from another site" in text(r.text)
    assert pds_service.datasources.list() == []


def test_datasource_page_status_tables_and_refresh(pds_login, pds_service):
    push(pds_service, config={"tables": {"alarms": ["id", "host"]}})
    pds_service.datasources.replace_rows("mon", "alarms", [["a1", "h1"], ["a2", "h2"]])
    editor = pds_login("editor")
    page = editor.get("/ui/datasources/mon")
    assert page.status_code == 200
    found = Elements(page.text)
    assert found.testid("refresh-button") and not found.testid("delete-button")
    tables = found.testid("ds-table-row")
    assert [t["data-table"] for t in tables] == ["alarms"]
    assert "id, host" in text(page.text)
    r = editor.post("/ui/datasources/mon/refresh", data={"csrf_token": csrf(editor)})
    assert r.status_code == 200  # after the redirect
    assert "is a push datasource: there is nothing to fetch" in text(r.text)
    viewer = pds_login("viewer")
    found = Elements(viewer.get("/ui/datasources/mon").text)
    assert not found.testid("refresh-button")
    r = viewer.post("/ui/datasources/mon/refresh", data={"csrf_token": csrf(viewer)})
    assert r.status_code == 403


def test_refresh_of_a_failing_poll_says_why(pds_login, pds_service):
    pds_service.datasources.create({"name": "prom", "driver": "prometheus", "enabled": False,
                                "config": {"url": "http://127.0.0.1:9",
                                           "tables": {"up": {"query": "up", "labels": ["job"]}},
                                           "timeout_seconds": 1}})
    admin = pds_login("admin")
    r = admin.post("/ui/datasources/prom/refresh", data={"csrf_token": csrf(admin)})
    assert r.status_code >= 500
    assert "datasource prom" in text(r.text)
    page = admin.get("/ui/datasources/prom")
    assert "Last error" in text(page.text) and "failed poll" in text(page.text)
    row = Elements(admin.get("/ui/datasources").text).testid("datasource-row")
    assert row[0]["data-name"] == "prom"
    assert "failing" in text(admin.get("/ui/datasources").text)


def test_table_rows_are_paged_on_the_server(pds_login, pds_service):
    push(pds_service, config={"tables": {"alarms": ["id", "host"]}})
    pds_service.datasources.replace_rows("mon", "alarms",
                                     [[f"a{i:03d}", f"h{i % 7}"] for i in range(120)])
    viewer = pds_login("viewer")
    page = viewer.get("/ui/datasources/mon/tables/alarms?size=50&page=2")
    assert page.status_code == 200
    assert Elements(page.text).testid("ds-rows")
    assert len(Elements(page.text).testid("ds-row")) == 50
    assert "Rows 51–100 of 120" in text(page.text)
    assert "a050" in page.text and "a049" not in page.text and "a100" not in page.text
    last = viewer.get("/ui/datasources/mon/tables/alarms?size=50&page=3")
    assert len(Elements(last.text).testid("ds-row")) == 20
    assert 'rel="next"' not in last.text and 'rel="prev"' in last.text
    # the text filter, and the cache seeing a new push
    hits = viewer.get("/ui/datasources/mon/tables/alarms?q=a11")
    assert len(Elements(hits.text).testid("ds-row")) == 10
    pds_service.datasources.replace_rows("mon", "alarms", [["b1", "h"]])
    again = viewer.get("/ui/datasources/mon/tables/alarms?q=a11")
    assert Elements(again.text).testid("ds-row") == []
    assert "No row contains" in text(again.text)
    missing = viewer.get("/ui/datasources/mon/tables/nope")
    assert missing.status_code == 404 and "No such table nope" in text(missing.text)


def test_admin_deletes_after_confirming(pds_login, pds_service):
    push(pds_service)
    editor = pds_login("editor")
    r = editor.post("/ui/datasources/mon/delete", data={"csrf_token": csrf(editor),
                                                         "confirm": "yes"})
    assert r.status_code == 403
    admin = pds_login("admin")
    assert Elements(admin.get("/ui/datasources/mon").text).testid("delete-button")
    token = csrf(admin)
    r = admin.post("/ui/datasources/mon/delete", data={"csrf_token": token})
    assert r.status_code == 200 and Elements(r.text).testid("delete-confirm")
    assert pds_service.datasources.find("mon") is not None
    r = admin.post("/ui/datasources/mon/delete", data={"csrf_token": token, "confirm": "yes"},
                   follow_redirects=False)
    assert r.status_code == 303 and pds_service.datasources.find("mon") is None
    assert "No datasource yet:" in text(admin.get("/ui/datasources").text)
    r = admin.get("/ui/datasources/mon")
    assert r.status_code == 404 and "No such datasource: mon" in text(r.text)
