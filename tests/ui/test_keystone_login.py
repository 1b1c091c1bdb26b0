"""The dashboard's login with a real Keystone: a user's name, password and project give a
session whose role is the Keystone role's mapping; a wrong password is refused in words."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.service.config import load_settings
from tests.realservices.keystone import KeystoneServer
from tests.ui.apps import make_service

SERVICE_USER, SERVICE_PASSWORD, SERVICE_PROJECT = "charter-ui", "charter-ui-pw", "service"


@pytest.fixture
def client(keystone: KeystoneServer, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> TestClient:
    if keystone._find("users", SERVICE_USER) is None:
        keystone.create_user(SERVICE_USER, SERVICE_PASSWORD, SERVICE_PROJECT, ("service",))
    for name in ("CHARTER_CONFIG", "CHARTER_HOST", "CHARTER_AUTH__STRATEGY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHARTER_AUTH__KEYSTONE__PASSWORD", SERVICE_PASSWORD)
    (tmp_path / "charter.toml").write_text(f"""
data_dir = "{tmp_path}"
[auth]
strategy = "keystone"
[auth.keystone]
auth_url = "{keystone.auth_url}"
username = "{SERVICE_USER}"
project_name = "{SERVICE_PROJECT}"
""")
    service = make_service(tmp_path)
    app = create_app(service, load_settings(tmp_path / "charter.toml"))
    with TestClient(app, base_url="http://127.0.0.1:1789", raise_server_exceptions=False) as c:
        yield c
    app.state.authenticator.close()
    service.close()


@pytest.mark.keystone
def test_a_keystone_user_logs_in_with_name_password_and_project(keystone, client):
    if keystone._find("users", "ui-reader") is None:
        keystone.create_user("ui-reader", "ui-reader-pw", "ui-project", ("reader",))
    form = client.get("/ui/login")
    assert 'name="username"' in form.text and 'name="project"' in form.text
    r = client.post("/ui/login", data={"username": "ui-reader", "password": "ui-reader-pw",
                                       "project": "ui-project", "next": "/ui/packs"},
                    follow_redirects=False)
    assert (r.status_code, r.headers.get("location")) == (303, "/ui/packs"), r.text
    page = client.get("/ui/packs")
    assert page.status_code == 200
    assert "ui-reader" in page.text and 'class="role role-viewer"' in page.text
    assert 'value="enable"' not in page.text  # a viewer is offered no pack switch


@pytest.mark.keystone
def test_a_wrong_password_is_refused_in_words(keystone, client):
    if keystone._find("users", "ui-reader2") is None:
        keystone.create_user("ui-reader2", "right-pw", "ui-project", ("reader",))
    r = client.post("/ui/login", data={"username": "ui-reader2", "password": "wrong",
                                       "project": "ui-project", "next": "/ui/"},
                    follow_redirects=False)
    assert r.status_code == 400
    assert "did not accept user 'ui-reader2'" in html.unescape(r.text)
    assert "set-cookie" not in r.headers
