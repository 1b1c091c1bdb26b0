"""Authentication and roles through a small FastAPI app; Keystone tests use a real Keystone."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from charter.api.auth import (
    ANONYMOUS,
    Authenticator,
    AuthError,
    KeystoneAuthenticator,
    NoAuthenticator,
    Principal,
    TokenAuthenticator,
    auth_error_handler,
    principal,
    require,
)
from charter.service.config import KeystoneSettings, Settings, load_settings
from tests.realservices.keystone import KeystoneServer


def make_app(authenticator: Authenticator) -> FastAPI:
    app = FastAPI()
    app.state.authenticator = authenticator
    app.add_exception_handler(AuthError, auth_error_handler)

    @app.get("/whoami")
    def whoami(caller: Annotated[Principal, Depends(principal)]) -> dict:
        return asdict(caller)

    @app.get("/policies", dependencies=[Depends(require("viewer"))])
    def read() -> dict:
        return {"ok": "read"}

    @app.post("/policies")
    def write(caller: Annotated[Principal, Depends(require("editor"))]) -> dict:
        return {"ok": "write", "by": caller.name}

    @app.delete("/policies", dependencies=[Depends(require("admin"))])
    def delete() -> dict:
        return {"ok": "delete"}

    return app


def assert_error(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["error_code"] == status
    assert "error_data" in body["error"]
    for word in words:
        assert word in body["error"]["message"]


def test_require_rejects_unknown_role():
    with pytest.raises(ValueError, match="unknown role 'root'"):
        require("root")


# ----------------------------------------------------------------------------- noauth


def test_noauth_everyone_is_admin():
    settings = Settings()
    assert settings.auth.strategy == "noauth"
    authenticator = Authenticator.from_settings(settings)
    assert isinstance(authenticator, NoAuthenticator)
    client = TestClient(make_app(authenticator))
    assert client.get("/whoami").json() == asdict(ANONYMOUS)
    # python-congressclient --os-auth-type none
    assert client.get("/whoami", headers={"X-Auth-Token": "notused"}).json()["role"] == "admin"
    assert client.delete("/policies").json() == {"ok": "delete"}


# ----------------------------------------------------------------------------- static tokens

TOKENS = {"admin": "adm-0123456789", "editor": "edt-0123456789", "viewer": "vwr-0123456789"}


@pytest.fixture
def token_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    viewer_digest = hashlib.sha256(TOKENS["viewer"].encode()).hexdigest()
    (tmp_path / "tokens.toml").write_text(f"""
[[tokens]]
name = "root"
role = "admin"
token = "{TOKENS["admin"]}"

[[tokens]]
name = "ci"
role = "editor"
token = "{TOKENS["editor"]}"

[[tokens]]
name = "dashboard"
role = "viewer"
token_sha256 = "{viewer_digest}"
""")
    (tmp_path / "charter.toml").write_text(
        'host = "0.0.0.0"\n[auth]\nstrategy = "token"\ntokens_file = "tokens.toml"\n'
    )
    for name in ("CHARTER_CONFIG", "CHARTER_HOST", "CHARTER_AUTH__STRATEGY"):
        monkeypatch.delenv(name, raising=False)
    authenticator = Authenticator.from_settings(load_settings(tmp_path / "charter.toml"))
    assert isinstance(authenticator, TokenAuthenticator)
    return TestClient(make_app(authenticator))


def test_token_valid(token_client: TestClient):
    r = token_client.get("/whoami", headers={"X-Auth-Token": TOKENS["editor"]})
    assert r.json() == {"name": "ci", "role": "editor", "project_id": None, "source": "token"}


def test_token_sha256_form(token_client: TestClient):
    r = token_client.get("/whoami", headers={"X-Auth-Token": TOKENS["viewer"]})
    assert (r.json()["name"], r.json()["role"]) == ("dashboard", "viewer")


def test_token_bearer_form(token_client: TestClient):
    r = token_client.get("/whoami", headers={"Authorization": f"Bearer {TOKENS['admin']}"})
    assert r.json()["name"] == "root"
    r = token_client.get("/whoami", headers={"Authorization": f"Basic {TOKENS['admin']}"})
    assert_error(r, 401, "X-Auth-Token")


def test_token_missing(token_client: TestClient):
    r = token_client.get("/policies")
    assert_error(r, 401, "authentication required", "X-Auth-Token header")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="charter"'


@pytest.mark.parametrize("token", ["wrong", TOKENS["admin"] + "x", "ä-not-ascii"])
def test_token_invalid(token_client: TestClient, token: str):
    r = token_client.get("/policies", headers={"X-Auth-Token": token.encode()})
    assert_error(r, 401, "invalid token", "X-Auth-Token")
    assert "WWW-Authenticate" in r.headers


@pytest.mark.parametrize(
    ("role", "read", "write", "delete"),
    [("viewer", 200, 403, 403), ("editor", 200, 200, 403), ("admin", 200, 200, 200)],
)
def test_token_roles_enforced(token_client: TestClient, role: str, read: int, write: int,
                              delete: int):
    headers = {"X-Auth-Token": TOKENS[role]}
    assert token_client.get("/policies", headers=headers).status_code == read
    assert token_client.post("/policies", headers=headers).status_code == write
    r = token_client.delete("/policies", headers=headers)
    assert r.status_code == delete
    if delete == 403:
        assert_error(r, 403, f"has role {role}", "needs admin or higher")


# ----------------------------------------------------------------------------- Keystone (real)

SERVICE_USER, SERVICE_PASSWORD, SERVICE_PROJECT = "charter", "charter-service-pw", "service"


@pytest.fixture(scope="module")
def service_user(keystone: KeystoneServer) -> None:
    """Charter's service user, as a deployment would set it up (role service on service)."""
    keystone.create_user(SERVICE_USER, SERVICE_PASSWORD, SERVICE_PROJECT, ("service",))


def ks_settings(keystone: KeystoneServer, **overrides) -> KeystoneSettings:
    values = {
        "auth_url": keystone.auth_url,
        "username": SERVICE_USER,
        "password": SERVICE_PASSWORD,
        "project_name": SERVICE_PROJECT,
        **overrides,
    }
    return KeystoneSettings(**values)


@pytest.fixture
def ks_auth(keystone: KeystoneServer, service_user: None) -> Iterator[KeystoneAuthenticator]:
    authenticator = KeystoneAuthenticator(ks_settings(keystone))
    yield authenticator
    authenticator.close()


@pytest.mark.keystone
def test_keystone_from_config_file(keystone: KeystoneServer, service_user: None,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "charter.toml").write_text(f"""
host = "0.0.0.0"
[auth]
strategy = "keystone"
[auth.keystone]
auth_url = "{keystone.base_url}"
username = "{SERVICE_USER}"
project_name = "{SERVICE_PROJECT}"
""")
    monkeypatch.setenv("CHARTER_AUTH__KEYSTONE__PASSWORD", SERVICE_PASSWORD)
    authenticator = Authenticator.from_settings(load_settings(tmp_path / "charter.toml"))
    assert isinstance(authenticator, KeystoneAuthenticator)
    client = TestClient(make_app(authenticator))
    r = client.get("/whoami", headers={"X-Auth-Token": keystone.admin_token})
    project_id = keystone.ensure_project("admin")
    assert r.json() == {"name": "admin", "role": "admin", "project_id": project_id,
                        "source": "keystone"}
    assert client.delete("/policies", headers={"X-Auth-Token": keystone.admin_token}).status_code == 200
    authenticator.close()


@pytest.mark.keystone
def test_keystone_roles_map(keystone: KeystoneServer, ks_auth: KeystoneAuthenticator):
    client = TestClient(make_app(ks_auth))
    cases = {
        "ks-boss": (("admin",), "admin"),
        "ks-member": (("member",), "editor"),
        "ks-reader": (("reader",), "viewer"),
        "ks-both": (("reader", "member"), "editor"),  # the highest mapped role wins
    }
    for name, (roles, expected) in cases.items():
        token, user = keystone.user_token(name, "charter-tests", roles)
        r = client.get("/whoami", headers={"X-Auth-Token": token})
        assert r.json() == {"name": name, "role": expected, "project_id": user["project_id"],
                            "source": "keystone"}, name

    reader, _ = keystone.user_token("ks-reader2", "charter-tests", ("reader",))
    assert client.get("/policies", headers={"X-Auth-Token": reader}).status_code == 200
    assert_error(client.post("/policies", headers={"X-Auth-Token": reader}), 403, "has role viewer")


@pytest.mark.keystone
def test_keystone_bearer(keystone: KeystoneServer, ks_auth: KeystoneAuthenticator):
    client = TestClient(make_app(ks_auth))
    r = client.get("/whoami", headers={"Authorization": f"Bearer {keystone.admin_token}"})
    assert r.json()["role"] == "admin"


@pytest.mark.keystone
def test_keystone_unmapped_role_is_403(keystone: KeystoneServer, ks_auth: KeystoneAuthenticator):
    token, _ = keystone.user_token("ks-auditor", "charter-tests", ("auditor",))
    r = TestClient(make_app(ks_auth)).get("/whoami", headers={"X-Auth-Token": token})
    assert_error(r, 403, "'ks-auditor' has none of the roles", "auditor", "role_map")


@pytest.mark.keystone
@pytest.mark.parametrize("token", ["garbage", "gAAAAABnot-a-real-fernet-token-at-all"])
def test_keystone_garbage_token_is_401(keystone: KeystoneServer, ks_auth: KeystoneAuthenticator,
                                       token: str):
    r = TestClient(make_app(ks_auth)).get("/whoami", headers={"X-Auth-Token": token})
    assert_error(r, 401, "Keystone did not accept the token", "X-Auth-Token")
    assert r.headers["WWW-Authenticate"] == f'Keystone uri="{keystone.auth_url}"'


@pytest.mark.keystone
def test_keystone_missing_token_is_401(ks_auth: KeystoneAuthenticator):
    r = TestClient(make_app(ks_auth)).get("/whoami")
    assert_error(r, 401, "authentication required", "X-Auth-Token header")


@pytest.mark.keystone
def test_keystone_revoked_token(keystone: KeystoneServer, ks_auth: KeystoneAuthenticator):
    token, _ = keystone.user_token("ks-revoked", "charter-tests", ("member",))
    now = [1000.0]
    cached = KeystoneAuthenticator(ks_settings(keystone, cache_seconds=60), clock=lambda: now[0])
    assert cached.authenticate_token(token).role == "editor"
    keystone.revoke(token)
    # Trusted from the cache until cache_seconds pass, then Keystone says no.
    assert cached.authenticate_token(token).role == "editor"
    now[0] += 61
    with pytest.raises(AuthError) as err:
        cached.authenticate_token(token)
    assert err.value.status == 401
    cached.close()
    # A fresh authenticator (empty cache) refuses it at once.
    with pytest.raises(AuthError) as err:
        ks_auth.authenticate_token(token)
    assert err.value.status == 401


@pytest.mark.keystone
def test_keystone_service_token_renewed(keystone: KeystoneServer, service_user: None):
    """A revoked service token is noticed (Keystone's 401) and replaced, unseen by the caller."""
    authenticator = KeystoneAuthenticator(ks_settings(keystone, cache_seconds=0))
    assert authenticator.authenticate_token(keystone.admin_token).role == "admin"
    old = authenticator._service_token
    assert old is not None
    keystone.revoke(old)
    assert authenticator.authenticate_token(keystone.admin_token).role == "admin"
    assert authenticator._service_token not in (None, old)
    authenticator.close()


@pytest.mark.keystone
def test_keystone_bad_service_password_is_503(keystone: KeystoneServer, service_user: None):
    authenticator = KeystoneAuthenticator(ks_settings(keystone, password="wrong"))
    with pytest.raises(AuthError) as err:
        authenticator.authenticate_token(keystone.admin_token)
    assert err.value.status == 503
    assert "rejected Charter's service credentials" in err.value.message
    assert keystone.base_url in err.value.message


@pytest.mark.keystone
def test_keystone_service_user_without_role_is_503(keystone: KeystoneServer):
    keystone.create_user("ks-weak-service", "weak-pw", "service", ("auditor",))
    settings = ks_settings(keystone, username="ks-weak-service", password="weak-pw")
    authenticator = KeystoneAuthenticator(settings)
    other, _ = keystone.user_token("ks-other", "charter-tests", ("member",))
    with pytest.raises(AuthError) as err:
        authenticator.authenticate_token(other)
    assert err.value.status == 503
    assert "give it the service or admin role" in err.value.message


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_keystone_down_is_503():
    url = f"http://127.0.0.1:{closed_port()}/v3"
    settings = KeystoneSettings(auth_url=url, username="u", password="p", project_name="p")
    client = TestClient(make_app(KeystoneAuthenticator(settings)))
    r = client.get("/whoami", headers={"X-Auth-Token": "some-token"})
    assert_error(r, 503, "cannot reach Keystone at http://127.0.0.1:", "retry later")
    assert url.removesuffix("/v3") in r.json()["error"]["message"]


def test_keystone_hanging_is_503():
    """Keystone accepts the connection but never answers: a timeout, still 503."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # never accept()ed: the request waits until the timeout
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings = KeystoneSettings(auth_url=url, username="u", password="p", project_name="p",
                                    timeout_seconds=0.5)
        client = TestClient(make_app(KeystoneAuthenticator(settings)))
        r = client.get("/whoami", headers={"X-Auth-Token": "some-token"})
    assert_error(r, 503, f"Keystone at {url} did not answer within 0.5s")
