"""Enforcement end to end: a real ``charter serve`` disables users of a real Keystone.

A policy names forbidden user names; its ``execute[ks:users.disable(u)]`` rule acts on
enabled users with such a name. In dry-run the audit shows what would happen and Keystone
is untouched; in enforce mode the user is disabled through Keystone's API, the violation
clears at the next poll, and nothing is repeated, across restarts and a SIGKILL too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.enforce.conftest import wait_for
from tests.enforce.relay import Relay
from tests.realservices.charter_server import CharterServer, free_port
from tests.realservices.keystone import KeystoneServer

pytestmark = [pytest.mark.keystone, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:The _compute_attributes method")]


def api(server: CharterServer, method: str, path: str, **kwargs):
    r = httpx.request(method, server.url + path, timeout=30, **kwargs)
    assert r.status_code < 300, r.text
    return r.json()


def datasource(server: CharterServer, name: str, auth_url: str, ks: KeystoneServer) -> None:
    api(server, "POST", "/v1/data-sources", json={
        "name": name, "driver": "keystonev3",
        "config": {"auth_url": auth_url, "username": ks.admin_username,
                   "password": ks.admin_password, "project_name": ks.admin_project,
                   "poll_time": 3600, "timeout_seconds": 60}})


def refresh(server: CharterServer, name: str = "ks") -> None:
    api(server, "POST", f"/v1/data-sources/{name}?action=request-refresh", json={})


def audit(server: CharterServer, policy: str) -> list[dict]:
    """The policy's action entries, oldest first (mode changes left out)."""
    entries = api(server, "GET", "/v1/audit", params={"policy": policy, "limit": 1000})
    return [e for e in reversed(entries["results"]) if e["action"] != "enforcement.mode"]


def enabled(ks: KeystoneServer, user_id: str) -> bool:
    return ks.api("GET", f"/users/{user_id}").json()["user"]["enabled"]


def violations(server: CharterServer, policy: str) -> list[list]:
    return [v["row"] for v in api(server, "GET", f"/v1/policies/{policy}/violations")["results"]]


def test_dry_run_then_enforce_disables_the_user_once(tmp_path, keystone: KeystoneServer):
    tag = uuid.uuid4().hex[:8]
    names = (f"evil-{tag}-1", f"evil-{tag}-2")
    server = CharterServer(tmp_path).start()
    try:
        datasource(server, "ks", keystone.auth_url, keystone)
        api(server, "POST", "/v1/policies", json={"name": "guard", "rules": [
            {"rule": f'forbidden("{names[0]}")'}, {"rule": f'forbidden("{names[1]}")'},
            {"rule": 'error(u) :- ks:users(id=u, name=n, enabled="True"), forbidden(n)'},
            {"rule": "execute[ks:users.disable(u)] :- error(u)", "name": "disable"}]})
        first = keystone.create_user(names[0], "pw-1", f"proj-{tag}")["user_id"]
        refresh(server)
        assert violations(server, "guard") == [[first]]
        (dry,) = audit(server, "guard")
        assert (dry["action"], dry["row"], dry["mode"], dry["result"]) == (
            "ks:users.disable", [first], "dry-run", "dry-run")
        assert dry["arguments"] == {"positional": [first]}
        assert "would call ks:users.disable" in dry["detail"]
        time.sleep(0.5)
        assert enabled(keystone, first)

        api(server, "PUT", "/v1/policies/guard/enforcement", json={"mode": "enforce"})
        second = keystone.create_user(names[1], "pw-2", f"proj-{tag}")["user_id"]
        refresh(server)
        wait_for(lambda: [e["result"] for e in audit(server, "guard")] == ["dry-run", "ok"],
                 timeout=30)
        done = audit(server, "guard")[-1]
        assert (done["row"], done["mode"]) == ([second], "enforce")
        assert not enabled(keystone, second)  # disabled through Keystone's API
        assert enabled(keystone, first)  # derived before the switch: not a new row
        refresh(server)  # the next poll sees it disabled: its violation clears
        assert violations(server, "guard") == [[first]]
        refresh(server)
        time.sleep(0.5)
        assert len(audit(server, "guard")) == 2  # not repeated

        keystone.api("PATCH", f"/users/{second}", json={"user": {"enabled": True}})
        refresh(server)  # enabled again: a new violation, a new action
        wait_for(lambda: [e["result"] for e in audit(server, "guard")] == ["dry-run", "ok",
                                                                           "ok"], timeout=30)
        assert not enabled(keystone, second)

        cli = [sys.executable, "-m", "charter.cli.main", "audit", "--url", server.url,
               "--policy", "guard"]
        out = subprocess.run([*cli, "--format", "json"], capture_output=True, text=True,
                             timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        assert [(e["result"], e["row"]) for e in json.loads(out.stdout)] == [
            ("ok", [second]), ("ok", [second]), ("mode-changed", []), ("dry-run", [first])]
        out = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=False)
        assert "ks:users.disable" in out.stdout and "dry-run -> enforce" in out.stdout

        server.stop()
        server.start()
        refresh(server)  # the rebuild and the new poll derive the same rows: no transition
        time.sleep(1.0)
        assert len(audit(server, "guard")) == 3
        assert enabled(keystone, first)
        assert api(server, "GET", "/v1/policies/guard/enforcement")["mode"] == "enforce"
    finally:
        server.stop()


def test_an_action_due_when_the_process_is_killed_runs_after_the_restart(
        tmp_path, keystone: KeystoneServer):
    """Keystone is unreachable (a port nobody listens on) when the action falls due; the
    process is SIGKILLed while the retry waits; after the restart, with Keystone reachable
    through that port, the action runs, once."""
    port = free_port()
    server = CharterServer(tmp_path, env={"CHARTER_ENFORCEMENT__RETRIES": "50",
                                          "CHARTER_ENFORCEMENT__BACKOFF_SECONDS": "0.5"})
    server.start()
    relay = Relay(port, keystone.port)
    try:
        datasource(server, "ks", f"http://127.0.0.1:{port}/v3", keystone)
        api(server, "POST", "/v1/data-sources", json={"name": "watch", "driver": "push"})
        api(server, "POST", "/v1/policies", json={"name": "kill", "rules": [
            {"rule": "execute[ks:users.disable(u)] :- watch:ids(u)"}]})
        api(server, "PUT", "/v1/policies/kill/enforcement", json={"mode": "enforce"})
        user = keystone.create_user(f"doomed-{uuid.uuid4().hex[:8]}", "pw",
                                    "doomed-proj")["user_id"]
        api(server, "PUT", "/v1/data-sources/watch/tables/ids/rows", json=[[user]])
        wait_for(lambda: [e["result"] for e in audit(server, "kill")][:1] == ["retried"],
                 timeout=30)
        assert "503" in audit(server, "kill")[0]["detail"]
        server.kill()

        relay.start()
        server.start()
        wait_for(lambda: "ok" in [e["result"] for e in audit(server, "kill")], timeout=60)
        assert not enabled(keystone, user)
        results = [e["result"] for e in audit(server, "kill")]
        assert results.count("ok") == 1 and set(results) == {"retried", "ok"}
    finally:
        server.stop()
        relay.stop()
