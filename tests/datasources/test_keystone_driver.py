"""The ``keystonev3`` driver against a real Keystone, through Charter's API (in-process).

Each test creates its datasource with ``POST /v1/data-sources``, polls it with
``?action=request-refresh`` (or lets the poll thread run), and compares Charter's tables
with what Keystone's own API reports. Faults are real too: a closed port, a refused
password, and -- for a stalled, failing or garbled Keystone -- a TCP relay in front of the
real Keystone that the test tells to refuse, stall, answer 500 or answer garbage.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from charter.datasources.drivers.discovery import version_root
from tests.api import conftest as apiconf
from tests.realservices.keystone import HOST, KeystoneServer, free_port

service = apiconf.service
settings = apiconf.settings
client = apiconf.client

pytestmark = [pytest.mark.keystone,
              pytest.mark.filterwarnings("ignore:The _compute_attributes method")]

NEVER = 3600  # poll_time for tests that poll only on request


def ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response.json()


def error(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]["message"]


def config(ks: KeystoneServer, **more) -> dict:
    return {"auth_url": ks.auth_url, "username": ks.admin_username,
            "password": ks.admin_password, "project_name": ks.admin_project,
            "poll_time": NEVER, **more}


def create(api, name: str, cfg: dict) -> dict:
    return ok(api.post("/v1/data-sources", json={"name": name, "driver": "keystonev3",
                                                 "config": cfg}), 201)


def refresh(api, name: str) -> None:
    ok(api.post(f"/v1/data-sources/{name}?action=request-refresh", json={}))


def rows(api, name: str, table: str) -> set[tuple]:
    got = ok(api.get(f"/v1/data-sources/{name}/tables/{table}/rows"))["results"]
    return {tuple(r["data"]) for r in got}


def status(api, name: str) -> dict:
    return ok(api.get(f"/v1/data-sources/{name}/status"))


def keystone_tables(ks: KeystoneServer) -> dict[str, set[tuple]]:
    """What Keystone's API reports, in Congress's columns."""
    def get(collection: str) -> list[dict]:
        return ks.api("GET", f"/{collection}").json()[collection]

    return {
        "users": {(u["id"], u["name"], str(u["enabled"]), u.get("default_project_id"),
                   u["domain_id"]) for u in get("users")},
        "projects": {(str(p["enabled"]), p["description"], p["name"], p["domain_id"], p["id"])
                     for p in get("projects")},
        "roles": {(r["id"], r["name"]) for r in get("roles")},
        "domains": {(str(d["enabled"]), d["description"], d["name"], d["id"])
                    for d in get("domains")},
        "role_assignments": {assignment_row(a) for a in get("role_assignments")},
        "services": {(s["id"], s["type"], s.get("name"), str(s["enabled"]), s.get("description"))
                     for s in get("services")},
        "endpoints": {(e["id"], e["service_id"], e["interface"], e["region_id"], e["url"],
                       str(e["enabled"])) for e in get("endpoints")},
        "endpoint_versions": endpoint_versions(get("endpoints")),
    }


def assignment_row(a: dict) -> tuple:
    """A role assignment as Keystone lists it, in the driver's columns."""
    scope = a["scope"]
    return (a["role"]["id"], a.get("user", {}).get("id"), a.get("group", {}).get("id"),
            scope.get("project", {}).get("id"), scope.get("domain", {}).get("id"),
            str("OS-INHERIT:inherited_to" in scope))


def endpoint_versions(endpoints: list[dict]) -> set[tuple]:
    """What each enabled public endpoint's root answers, read here with httpx: this
    Keystone's catalog holds only endpoints that reach Keystone itself (tests that add
    others delete them), whose root lists its versions with a "stable" status."""
    out = set()
    for e in endpoints:
        if e["interface"] != "public" or not e["enabled"]:
            continue
        answer = httpx.get(version_root(e["url"]), headers={"Accept": "application/json"})
        for v in answer.json()["versions"]["values"]:
            status = "CURRENT" if v["status"] == "stable" else v["status"].upper()
            out.add((e["id"], v["id"], v["id"][1:].split(".")[0], status, None, None, None))
    return out


def _bare(message: str) -> str:
    """A message without the "datasource <name>: " prefixes the layers put before it."""
    while message.startswith("datasource ") and ": " in message:
        message = message.split(": ", 1)[1]
    return message


def wait_for(check, timeout: float = 30.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check.__doc__ or check}")
        time.sleep(every)


# ---------------------------------------------------------------- tables


def test_tables_match_keystone(client, keystone):
    created = create(client, "ks", config(keystone))
    assert created["config"]["password"] == "<hidden>"
    refresh(client, "ks")
    expected = keystone_tables(keystone)
    for table, want in expected.items():
        assert rows(client, "ks", table) == want, table
    st = status(client, "ks")
    assert st["initialized"] is True and st["last_error"] is None
    assert st["rows"] == {t: len(want) for t, want in expected.items()}
    assert ("True", "The default domain", "Default", "default") in expected["domains"]
    assert {n for _, n in expected["roles"]} >= {"admin", "member", "reader"}
    # The bootstrap catalog: Keystone itself, whose public endpoint offers identity v3.
    assert {t for _, t, *_ in expected["services"]} == {"identity"}
    assert {(major, s) for _, _, major, s, *_ in expected["endpoint_versions"]} == {
        ("3", "CURRENT")}


def test_schema_and_actions_through_the_api(client, keystone):
    create(client, "ks", config(keystone))
    tables = ok(client.get("/v1/data-sources/ks/schema"))["tables"]
    assert {t["table_id"]: [c["name"] for c in t["columns"]] for t in tables} == {
        "users": ["id", "name", "enabled", "default_project_id", "domain_id"],
        "roles": ["id", "name"],
        "projects": ["enabled", "description", "name", "domain_id", "id"],
        "domains": ["enabled", "description", "name", "id"],
        "role_assignments": ["role_id", "user_id", "group_id", "project_id", "domain_id",
                             "inherited"],
        "services": ["id", "type", "name", "enabled", "description"],
        "endpoints": ["id", "service_id", "interface", "region_id", "url", "enabled"],
        "endpoint_versions": ["endpoint_id", "version_id", "major", "status", "min_version",
                              "max_version", "error"],
    }
    actions = ok(client.get("/v1/data-sources/ks/actions"))["results"]
    assert [a["name"] for a in actions] == ["users.disable", "users.enable",
                                            "projects.disable", "projects.enable"]


def test_new_project_arrives_and_its_violation_appears_then_clears(client, keystone):
    name = f"sandbox-{uuid.uuid4().hex[:8]}"
    create(client, "ks", config(keystone))
    refresh(client, "ks")
    ok(client.post("/v1/policies", json={"name": "identity"}), 201)
    ok(client.post("/v1/policies/identity/rules", json={
        "rule": f'forbidden("{name}")'}), 201)
    ok(client.post("/v1/policies/identity/rules", json={
        "rule": 'error(p, n) :- ks:projects(id=p, name=n, enabled="True"), forbidden(n)'}),
        201)
    assert ok(client.get("/v1/policies/identity/violations"))["results"] == []
    before = rows(client, "ks", "projects")
    updates = status(client, "ks")["number_of_updates"]

    project = keystone.api("POST", "/projects", json={"project": {
        "name": name, "domain_id": "default", "description": "made by the test"}}).json()
    pid = project["project"]["id"]
    try:
        refresh(client, "ks")
        after = rows(client, "ks", "projects")
        assert after - before == {("True", "made by the test", name, "default", pid)}
        assert before <= after
        assert status(client, "ks")["number_of_updates"] == updates + 1
        (violation,) = ok(client.get("/v1/policies/identity/violations"))["results"]
        assert violation["table"] == "error" and violation["row"] == [pid, name]

        # Disable it through Charter's action: Keystone shows it, and the violation clears.
        ok(client.post("/v1/data-sources/ks?action=execute",
                       json={"name": "projects.disable", "args": {"positional": [pid]}}))
        assert keystone.api("GET", f"/projects/{pid}").json()["project"]["enabled"] is False
        refresh(client, "ks")
        assert ("False", "made by the test", name, "default", pid) in rows(
            client, "ks", "projects")
        assert ok(client.get("/v1/policies/identity/violations"))["results"] == []
        resolved = ok(client.get("/v1/policies/identity/violations?include_resolved=true"))
        assert [v["row"] for v in resolved["results"] if v["resolved_at"]] == [[pid, name]]
    finally:
        keystone.api("PATCH", f"/projects/{pid}", json={"project": {"enabled": False}})
        keystone.api("DELETE", f"/projects/{pid}")
    refresh(client, "ks")
    assert rows(client, "ks", "projects") == before


def test_users_disable_and_enable_through_execute(client, keystone):
    user = keystone.create_user(f"u-{uuid.uuid4().hex[:8]}", "pw-1", "admin", roles=())
    uid = user["user_id"]
    create(client, "ks", config(keystone))
    refresh(client, "ks")
    assert (uid, user["name"], "True", None, "default") in rows(client, "ks", "users")

    assert ok(client.post("/v1/data-sources/ks?action=execute", json={
        "name": "users.disable", "args": {"positional": [uid]}})) == {}
    assert keystone.api("GET", f"/users/{uid}").json()["user"]["enabled"] is False
    refresh(client, "ks")
    assert (uid, user["name"], "False", None, "default") in rows(client, "ks", "users")

    ok(client.post("/v1/data-sources/ks?action=execute", json={
        "name": "users.enable", "args": {"named": {"id": uid}}}))
    assert keystone.api("GET", f"/users/{uid}").json()["user"]["enabled"] is True
    keystone.api("DELETE", f"/users/{uid}")


def test_execute_errors_through_the_api(client, keystone):
    create(client, "ks", config(keystone))
    message = error(client.post("/v1/data-sources/ks?action=execute", json={
        "name": "users.delete", "args": {"positional": ["x"]}}), 400)
    assert "has no action 'users.delete'" in message
    assert "users.disable, users.enable, projects.disable, projects.enable" in message
    message = error(client.post("/v1/data-sources/ks?action=execute", json={
        "name": "users.disable", "args": {"named": {"user": "x"}}}), 400)
    assert "has no argument 'user'" in message
    message = error(client.post("/v1/data-sources/ks?action=execute", json={
        "name": "users.disable", "args": {}}), 400)
    assert "needs argument 'id'" in message
    missing = uuid.uuid4().hex
    message = error(client.post("/v1/data-sources/ks?action=execute", json={
        "name": "users.disable", "args": {"positional": [missing]}}), 404)
    assert f"id='{missing}'" in message and "Keystone has no such resource" in message


# ---------------------------------------------------------------- faults


def test_unreachable_keystone_is_reported(client, keystone):
    port = free_port()  # nothing listens there
    cfg = config(keystone, auth_url=f"http://{HOST}:{port}/v3", timeout_seconds=2)
    create(client, "gone", cfg)
    message = error(client.post("/v1/data-sources/gone?action=request-refresh", json={}), 503)
    assert f"Keystone at http://{HOST}:{port}/v3/auth/tokens is unreachable" in message
    assert "connection refused" in message
    st = status(client, "gone")
    assert st["initialized"] is False and "unreachable" in st["last_error"]
    assert st["consecutive_failures"] >= 1
    assert keystone.admin_password not in str(st)


def test_refused_password_backs_off_and_recovers_when_fixed(client, keystone):
    """A datasource whose password Keystone refuses says so, polls less and less often,
    and recovers by itself once Keystone takes the password (here: the user's password is
    set to the configured one)."""
    name = f"reader-{uuid.uuid4().hex[:8]}"
    user = keystone.create_user(name, "the-old-password", "admin", roles=("admin",))
    cfg = {**config(keystone), "username": name, "password": "the-new-password",
           "poll_time": 0.25}
    create(client, "ksr", cfg)

    def failed_twice() -> dict | None:
        """the poll thread has failed twice in a row"""
        st = status(client, "ksr")
        return st if st["consecutive_failures"] >= 2 else None

    st = wait_for(failed_twice, timeout=30)
    assert "credentials refused by Keystone" in st["last_error"]
    assert f"user '{name}'" in st["last_error"]
    assert "the-new-password" not in st["last_error"]
    assert st["initialized"] is False
    # Backed off: the wait after n failures is poll_time * 2**n (the status may be read
    # between the n-th failure and its new wait, hence n - 1), never the 0.25 s poll_time.
    assert st["next_poll_in_s"] >= 0.25 * 2 ** (st["consecutive_failures"] - 1) >= 0.5
    assert ok(client.get("/healthz")) is not None

    keystone.api("PATCH", f"/users/{user['user_id']}",
                 json={"user": {"password": "the-new-password"}})

    def recovered() -> dict | None:
        """the poll thread succeeds again"""
        st = status(client, "ksr")
        return st if st["initialized"] and st["last_error"] is None else None

    st = wait_for(recovered, timeout=20)
    assert st["consecutive_failures"] == 0
    assert rows(client, "ksr", "users") == keystone_tables(keystone)["users"]
    keystone.api("DELETE", f"/users/{user['user_id']}")


class Relay:
    """A TCP relay on 127.0.0.1 in front of a real service, for fault tests.

    ``mode``: "pass" forwards each connection; "stall" answers nothing until the client
    hangs up (its timeout);
    "500" answers HTTP 500; "garbage" answers 200 with HTML. ``close()`` stops listening
    (the port then refuses connections) and ``open()`` listens again on the same port.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = free_port()
        self.mode = "pass"
        self.sock: socket.socket | None = None
        self.open()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def open(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self.port))
        sock.listen(32)
        self.sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, self.mode), daemon=True).start()

    def _serve(self, conn: socket.socket, mode: str) -> None:
        with conn:
            conn.settimeout(30)
            try:
                request = _read_request(conn)
                if mode == "500":
                    conn.sendall(_response(500, "application/json",
                                           b'{"error": {"message": "boom", "code": 500}}'))
                elif mode == "garbage":
                    conn.sendall(_response(200, "text/html", b"<html>not an API</html>"))
                elif mode == "stall":
                    conn.settimeout(60)
                    conn.recv(1)  # returns when the client gives up and closes
                else:
                    with socket.create_connection((HOST, self.upstream), timeout=30) as up:
                        up.sendall(request)
                        while chunk := up.recv(65536):
                            conn.sendall(chunk)
            except OSError:
                pass  # the client gave up (a timeout test): nothing to answer


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        key, _, val = line.partition(b":")
        if key.strip().lower() == b"content-length":
            length = int(val.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    # One request per connection, as Keystone behind uwsgi answers "Connection: close".
    head = b"\r\n".join(line for line in head.split(b"\r\n")
                        if not line.lower().startswith(b"connection:"))
    return head + b"\r\nConnection: close\r\n\r\n" + body


def _response(code: int, content_type: str, body: bytes) -> bytes:
    reason = {200: "OK", 500: "Internal Server Error"}[code]
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


@pytest.fixture
def relay(keystone) -> Iterator[Relay]:
    """A relay to the real Keystone, listed in its catalog as region RelayOne's identity
    endpoint, so both the login and the identity calls go through it."""
    r = Relay(keystone.port)
    region = f"Relay-{uuid.uuid4().hex[:6]}"
    keystone.api("POST", "/regions", json={"region": {"id": region}})
    identity = keystone.api("GET", "/services", params={"type": "identity"}).json()
    service_id = identity["services"][0]["id"]
    endpoints = [keystone.api("POST", "/endpoints", json={"endpoint": {
        "service_id": service_id, "interface": interface, "url": f"{r.url}/v3/",
        "region_id": region, "enabled": True}}).json()["endpoint"]["id"]
        for interface in ("public", "internal", "admin")]
    r.region = region  # type: ignore[attr-defined]
    try:
        yield r
    finally:
        r.close()
        for endpoint in endpoints:
            keystone.api("DELETE", f"/endpoints/{endpoint}")
        keystone.api("DELETE", f"/regions/{region}")


def test_faults_keep_the_last_good_tables_and_recover(client, keystone, relay):
    # The timeout is what a stalled service costs this test, and what a loaded machine's
    # Keystone must answer within in the good phases (it took over 1 s at a load of 9).
    cfg = config(keystone, auth_url=f"{relay.url}/v3", region_name=relay.region,
                 timeout_seconds=8)
    create(client, "ksf", cfg)
    refresh(client, "ksf")
    tables = ("users", "projects", "roles", "domains", "role_assignments")
    good = {t: rows(client, "ksf", t) for t in tables}
    assert good["domains"] and good == {t: keystone_tables(keystone)[t] for t in good}

    def fails(status_code: int, *needles: str) -> str:
        message = error(client.post("/v1/data-sources/ksf?action=request-refresh", json={}),
                        status_code)
        for needle in needles:
            assert needle in message, message
        st = status(client, "ksf")
        assert _bare(st["last_error"]) == _bare(message)
        assert {t: rows(client, "ksf", t) for t in good} == good  # last good tables kept
        return message

    relay.close()
    fails(503, "unreachable", "connection refused", f"{relay.url}/v3")
    relay.open()

    relay.mode = "stall"
    fails(503, "did not answer within 8s (timed out)")

    relay.mode = "500"
    fails(502, "HTTP 500")

    relay.mode = "garbage"
    fails(502, relay.url)

    assert status(client, "ksf")["consecutive_failures"] == 4
    relay.mode = "pass"
    refresh(client, "ksf")
    st = status(client, "ksf")
    assert st["last_error"] is None and st["consecutive_failures"] == 0
    assert {t: rows(client, "ksf", t) for t in good} == good


def test_deleting_the_datasource_removes_its_tables(client, keystone):
    create(client, "ks", config(keystone))
    refresh(client, "ks")
    assert rows(client, "ks", "domains")
    ok(client.delete("/v1/data-sources/ks"))
    assert client.get("/v1/data-sources/ks/tables/domains/rows").status_code == 404


def test_keystone_url_is_checked_before_a_datasource_is_created(client, keystone):
    message = error(client.post("/v1/data-sources", json={
        "name": "bad", "driver": "keystonev3",
        "config": {"auth_url": "keystone:5000", "username": "admin", "password": "x",
                   "project_name": "admin"}}), 400)
    assert "auth_url 'keystone:5000' must be an http(s) URL" in message
    assert httpx.get(keystone.auth_url, timeout=10).status_code == 200
