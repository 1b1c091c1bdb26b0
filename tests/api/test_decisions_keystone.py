"""The real Keystone asks Charter before it creates a project (docs/decisions.md, "Keystone").

The session's Keystone (tests/realservices/keystone.py) gets, for this test only, a
policy.yaml routing ``identity:create_project`` to Charter through oslo.policy's ``http:``
check, on top of Keystone's own default rule. Charter is the app ``charter serve`` runs,
served by uvicorn on 127.0.0.1 in this process (a ``charter serve`` process spends most of
this test's time importing; tests/api/test_decisions_oslo.py asks a real one), with token
auth and ``decisions.anonymous``, as an operator runs it. Charter decides with
examples/decisions/keystone_projects.dl, over the live ``keystonev3`` datasource (polled
from the same Keystone) and an operator's deny list. Keystone's own answers are asserted:
201 while Charter allows, 403 once a Charter rule refuses, and no project behind a refusal;
Charter's audit holds each decision with what Keystone sent.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from charter.api.app import create_app
from charter.api.auth import TokenAuthenticator
from charter.service.config import StaticToken
from tests.realservices.keystone import KeystoneServer
from tests.realservices.ports import reserve_port

pytestmark = [
    pytest.mark.keystone,
    pytest.mark.filterwarnings("ignore:The _compute_attributes method"),
]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "decisions" / "keystone_projects.dl"
POLICY = "keystone_projects"
CREATE = "identity:create_project"
# Keystone 30's default for the rule (keystone/common/policies/project.py), kept: Charter's
# check comes on top, as docs/decisions.md recommends.
DEFAULT_CREATE = (
    "(rule:admin_required) or (role:manager and "
    "domain_id:%(target.project.domain_id)s and "
    "not None:%(target.project.domain_id)s)"
)
ADMIN = "adm-keystone-decisions"


def rules_of(path: Path) -> list[dict]:
    """The example's rules, one per paragraph, comments left out."""
    paragraphs = path.read_text().split("\n\n")
    texts = [
        "\n".join(line for line in p.splitlines() if not line.lstrip().startswith("//"))
        for p in paragraphs
    ]
    return [{"rule": t.strip()} for t in texts if t.strip()]


class Charter:
    """Charter's app on a port of 127.0.0.1 kept reserved (:func:`reserve_port`) until the
    test ends: after :meth:`stop`, connections to it are refused, as to a Charter that is
    down. Tokens guard the API; decisions answer without one (``decisions.anonymous``, a
    loopback host)."""

    def __init__(self, service, settings):
        authenticator = TokenAuthenticator(
            (StaticToken("ops", "admin", hashlib.sha256(ADMIN.encode()).digest()),)
        )  # type: ignore[arg-type]
        opened = settings.model_validate(
            settings.model_dump() | {"host": "127.0.0.1", "decisions": {"anonymous": True}}
        )
        self.reservation = reserve_port()
        self.port = self.reservation.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(service, opened, authenticator),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive(), "uvicorn did not stop"


@contextmanager
def charter(service, settings) -> Iterator[Charter]:
    served = Charter(service, settings)
    try:
        yield served
    finally:
        served.stop()
        served.reservation.close()


def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def create_project(ks: KeystoneServer, name: str, domain_id: str) -> httpx.Response:
    """POST /v3/projects as Keystone's admin: Keystone's own answer, whatever it is."""
    return httpx.post(
        f"{ks.auth_url}/projects",
        headers={"X-Auth-Token": ks.admin_token},
        json={"project": {"name": name, "domain_id": domain_id}},
        timeout=30,
    )


def first_poll_done(http: httpx.Client, name: str) -> None:
    """Wait for the poll thread's first poll (it then waits poll_time, an hour): from here on
    Charter sends Keystone nothing unasked, so no request of Charter's runs while Keystone
    reloads its policy file (a request enforced in the middle of oslo.policy's reload could
    see a rule set without Keystone's defaults)."""
    deadline = time.monotonic() + 60
    while ok(http.get(f"/v1/data-sources/{name}/status"))["next_poll_in_s"] is None:
        assert time.monotonic() < deadline, f"datasource {name} never finished its first poll"
        time.sleep(0.05)


def project_names(ks: KeystoneServer, domain_id: str) -> set[str]:
    found = ks.api("GET", "/projects", params={"domain_id": domain_id}).json()["projects"]
    return {p["name"] for p in found}


def test_keystone_asks_charter_before_creating_a_project(
    service, settings, keystone: KeystoneServer
):
    tag = uuid.uuid4().hex[:8]
    domain = keystone.api("POST", "/domains", json={"domain": {"name": f"decisions-{tag}"}}).json()[
        "domain"
    ]["id"]
    with (
        charter(service, settings) as server,
        httpx.Client(base_url=server.url, headers={"X-Auth-Token": ADMIN}, timeout=60) as http,
    ):
        try:
            decide_with(keystone, server, http, tag, domain)
        finally:
            keystone.api("PATCH", f"/domains/{domain}", json={"domain": {"enabled": False}})
            keystone.api("DELETE", f"/domains/{domain}")


def decide_with(
    keystone: KeystoneServer, server: Charter, http: httpx.Client, tag: str, domain: str
) -> None:
    check = f"http:{server.url.removeprefix('http:')}/v1/decisions/oslo/{POLICY}"
    ok(
        http.post(
            "/v1/data-sources",
            json={
                "name": "keystonev3",
                "driver": "keystonev3",
                "config": {
                    "auth_url": keystone.auth_url,
                    "username": keystone.admin_username,
                    "password": keystone.admin_password,
                    "project_name": keystone.admin_project,
                    "poll_time": 3600,
                    "endpoint_versions": False,
                },
            },
        ),
        201,
    )  # polled on request only
    ok(
        http.post(
            "/v1/data-sources",
            json={
                "name": "ops",
                "driver": "push",
                "config": {"tables": {"denied_names": ["name"]}},
            },
        ),
        201,
    )
    ok(http.post("/v1/policies", json={"name": POLICY, "rules": rules_of(EXAMPLE)}), 201)
    first_poll_done(http, "keystonev3")

    with keystone.policy_rules({CREATE: f"({DEFAULT_CREATE}) and {check}"}):
        # Charter allows: Keystone creates it (and asked: the decision is audited).
        assert create_project(keystone, f"web-{tag}", domain).status_code == 201

        # The operator puts a name on the deny list: Keystone refuses it.
        ok(http.put("/v1/data-sources/ops/tables/denied_names/rows", json=[[f"legacy-{tag}"]]))
        refused = create_project(keystone, f"legacy-{tag}", domain)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == 403
        assert CREATE in refused.json()["error"]["message"]

        # Up to three projects in the domain, counted from the keystonev3 datasource.
        for name in (f"db-{tag}", f"ci-{tag}"):
            assert create_project(keystone, name, domain).status_code == 201
        ok(http.post("/v1/data-sources/keystonev3?action=request-refresh", json={}))
        full = create_project(keystone, f"lab-{tag}", domain)
        assert full.status_code == 403, full.text

        assert project_names(keystone, domain) == {f"web-{tag}", f"db-{tag}", f"ci-{tag}"}

        audit = ok(http.get("/v1/audit", params={"policy": POLICY}))["results"]
        decisions = [
            (a["rule"], a["action"], a["actor"], a["result"], a["detail"]) for a in reversed(audit)
        ]
        assert decisions == [
            (CREATE, "decision:oslo", "anonymous", "allowed", ""),
            (
                CREATE,
                "decision:oslo",
                "anonymous",
                "denied",
                f"project name is on the deny list: legacy-{tag}",
            ),
            (CREATE, "decision:oslo", "anonymous", "allowed", ""),
            (CREATE, "decision:oslo", "anonymous", "allowed", ""),
            (
                CREATE,
                "decision:oslo",
                "anonymous",
                "denied",
                f"domain already has 3 projects: {domain}",
            ),
        ]
        last = audit[0]
        assert last["row"] == [f"domain already has 3 projects: {domain}"]
        assert last["arguments"]["rows"]["deny"] == [[f"domain already has 3 projects: {domain}"]]
        # What Keystone sent: its flattened target and the admin's credentials.
        target, credentials = last["arguments"]["target"], last["arguments"]["credentials"]
        assert target["target.project.name"] == f"lab-{tag}"
        assert target["target.project.domain_id"] == domain
        assert "admin" in credentials["roles"]
        assert (
            credentials["user_id"]
            == keystone.api(
                "GET", "/auth/tokens", headers={"X-Subject-Token": keystone.admin_token}
            ).json()["token"]["user"]["id"]
        )

        # Charter down: oslo.policy's http: check raises on the refused connection (it
        # catches nothing), Keystone fails the request (uwsgi closes it without an
        # answer, as for any exception Keystone's code lets out) and creates nothing.
        server.stop()
        try:
            down: int | None = create_project(keystone, f"down-{tag}", domain).status_code
        except httpx.RemoteProtocolError:
            down = None
        assert down in (None, 500), down
        assert f"down-{tag}" not in project_names(keystone, domain)

    # The policy file restored: Keystone no longer asks Charter (still down).
    assert create_project(keystone, f"after-{tag}", domain).status_code == 201
