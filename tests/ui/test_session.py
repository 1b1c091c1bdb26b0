"""The dashboard's sessions: login with the API's tokens, the cookie, CSRF and origin
checks on forms and on the API calls pages make, role gating, errors as pages."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from charter.store import Store
from charter.ui.session import COOKIE, SessionKeys
from tests.ui.apps import TOKENS, csrf_token, login, make_service, ui_client


@pytest.fixture
def service(tmp_path):
    svc = make_service(tmp_path)
    yield svc
    svc.close()


@pytest.fixture
def tokens(tmp_path, service) -> TestClient:
    return ui_client(tmp_path, service, "token")


@pytest.fixture
def noauth(tmp_path, service) -> TestClient:
    return ui_client(tmp_path, service, "noauth")


def test_a_page_without_a_session_redirects_to_the_login_form_and_back(tokens):
    r = tokens.get("/ui/packs?status=failing", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login?next=%2Fui%2Fpacks%3Fstatus%3Dfailing"
    form = tokens.get(r.headers["location"])
    assert 'name="token"' in form.text and 'value="/ui/packs?status=failing"' in form.text
    r = tokens.post("/ui/login", data={"token": TOKENS["viewer"], "next": "/ui/packs?status=failing"},
                    follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/ui/packs?status=failing")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert TOKENS["viewer"] not in cookie  # encrypted, not the token itself
    page = tokens.get("/ui/packs")
    assert page.status_code == 200 and "viewer-user" in page.text


def test_a_wrong_token_is_refused_in_words_and_no_cookie_is_set(tokens):
    r = tokens.post("/ui/login", data={"token": "nope", "next": "/ui/"}, follow_redirects=False)
    assert r.status_code == 400
    assert "not one of the configured tokens" in r.text
    assert "set-cookie" not in r.headers


def test_login_never_redirects_to_another_site(tokens):
    r = tokens.post("/ui/login", data={"token": TOKENS["viewer"], "next": "https://evil.example/"},
                    follow_redirects=False)
    assert r.headers["location"] == "/ui/"
    r = tokens.post("/ui/login", data={"token": TOKENS["viewer"], "next": "//evil.example/ui"},
                    follow_redirects=False)
    assert r.headers["location"] == "/ui/"


def test_a_forged_or_expired_cookie_is_no_session(tmp_path, tokens):
    tokens.cookies.set(COOKIE, "garbage")
    assert tokens.get("/ui/packs", follow_redirects=False).status_code == 303
    other = SessionKeys(Store.generate_key())  # another server's key
    tokens.cookies.set(COOKIE, other.seal(other.new(TOKENS["admin"])))
    assert tokens.get("/ui/packs", follow_redirects=False).status_code == 303


def test_sessions_expire():
    keys = SessionKeys(Store.generate_key(), max_age=60)
    fresh = keys.seal(keys.new("t"))
    assert keys.open(fresh).token == "t"
    payload = json.dumps({"t": "t", "n": "n", "i": time.time() - 120}).encode()
    stale = keys._fernet.encrypt_at_time(payload, int(time.time()) - 120).decode()
    assert keys.open(stale) is None


def test_a_viewer_sees_no_edit_controls_and_its_post_is_403(tokens):
    login(tokens, "viewer")
    page = tokens.get("/ui/packs")
    assert 'value="enable"' not in page.text
    r = tokens.post("/ui/packs/ceph", data={"action": "enable", "csrf_token": csrf_token(tokens)})
    assert r.status_code == 403
    assert "has role viewer; this needs editor or higher" in r.text
    assert "ceph" not in {p.id for p, rec in tokens.app.state.service.packs.list() if rec}


def test_an_editor_sees_and_uses_the_controls(tokens):
    login(tokens, "editor")
    assert 'value="enable"' in tokens.get("/ui/packs").text
    r = tokens.post("/ui/packs/ceph", data={"action": "enable", "csrf_token": csrf_token(tokens)},
                    follow_redirects=False)
    assert r.status_code == 303
    assert "ceph" in tokens.app.state.service.packs.enabled


@pytest.mark.parametrize("token", [None, "wrong"])
def test_a_form_without_the_sessions_csrf_token_is_refused(tokens, token):
    login(tokens, "admin")
    data = {"action": "enable"} | ({"csrf_token": token} if token else {})
    r = tokens.post("/ui/packs/ceph", data=data)
    assert r.status_code == 403
    assert "CSRF token" in r.text
    assert "ceph" not in tokens.app.state.service.packs.enabled


def test_a_form_from_another_origin_is_refused_even_with_the_token(tokens):
    login(tokens, "admin")
    token = csrf_token(tokens)
    r = tokens.post("/ui/packs/ceph", data={"action": "enable", "csrf_token": token},
                    headers={"Origin": "http://127.0.0.1:9999"})
    assert r.status_code == 403 and "from another site" in r.text
    assert "ceph" not in tokens.app.state.service.packs.enabled


def test_noauth_still_needs_the_csrf_token(noauth):
    r = noauth.post("/ui/packs/ceph", data={"action": "enable"})
    assert r.status_code == 403 and "CSRF token" in r.text
    token = csrf_token(noauth)  # the first page set the session cookie
    r = noauth.post("/ui/packs/ceph", data={"action": "enable", "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303


def test_api_calls_of_a_page_use_the_cookie_and_need_the_csrf_header(tokens):
    login(tokens, "editor")
    assert tokens.get("/v1/policies").status_code == 200  # the cookie stands for the token
    body = {"name": "from_ui"}
    r = tokens.post("/v1/policies", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    r = tokens.post("/v1/policies", json=body, headers={"X-CSRF-Token": csrf_token(tokens)})
    assert r.status_code == 201, r.text
    r = tokens.post("/v1/policies", json={"name": "x2"},
                    headers={"X-CSRF-Token": csrf_token(tokens), "Origin": "http://evil.example"})
    assert r.status_code == 403


def test_the_api_role_rules_hold_for_cookie_calls(tokens):
    login(tokens, "viewer")
    r = tokens.post("/v1/policies", json={"name": "nope"},
                    headers={"X-CSRF-Token": csrf_token(tokens)})
    assert r.status_code == 403 and "needs editor" in r.json()["error"]["message"]


def test_logout_ends_the_session_and_needs_the_csrf_token(tokens):
    login(tokens, "viewer")
    assert tokens.post("/ui/logout").status_code == 403
    r = tokens.post("/ui/logout", data={"csrf_token": csrf_token(tokens)}, follow_redirects=False)
    assert r.status_code == 303 and COOKIE in r.headers["set-cookie"]
    assert tokens.get("/ui/packs", follow_redirects=False).status_code == 303


def test_htmx_requests_get_fragments_and_a_redirect_header(tokens):
    r = tokens.get("/ui/packs", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 401 and r.headers["HX-Redirect"].startswith("/ui/login?next=")
    login(tokens, "viewer")
    r = tokens.get("/ui/packs/no-such-pack", headers={"HX-Request": "true"})
    assert r.status_code == 404
    assert r.text.startswith('<div class="error"') and "<html" not in r.text


def test_errors_are_pages_in_words_never_tracebacks(noauth):
    r = noauth.get("/ui/packs/no-such-pack")
    assert r.status_code == 404 and "<html" in r.text and "no-such-pack" in r.text
    r = noauth.get("/ui/nowhere")
    assert r.status_code == 404 and "the menu lists them all" in r.text
    assert "Traceback" not in r.text


def test_ui_without_the_slash_is_the_dashboard(noauth):
    r = noauth.get("/ui", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (307, "/ui/")
