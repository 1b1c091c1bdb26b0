"""openstack-security's identity controls against a real Keystone, through Charter's API.

The test plants, through Keystone's own REST API, what each identity control looks for (a
user with the admin role on an ordinary project, the admin role granted to a group, a
disabled user who keeps a role, a user and a project without any role, an enabled project
in a disabled domain, a service user with a role elsewhere, a disabled project), reads that
Keystone with a ``keystonev3`` datasource of the in-process service, and checks the pack's
posture: each identity control fails with exactly the planted rows (over what it reported
before they were planted: the session's Keystone is shared with other tests), and every
control that reads Nova, Neutron, Glance or Cinder is not evaluated, since those datasources
do not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.packs.conftest import ok
from tests.realservices.keystone import KeystoneServer

pytestmark = [
    pytest.mark.keystone,
    pytest.mark.filterwarnings("ignore:The _compute_attributes method"),
]

PACK = "openstack-security"
NEVER = 3600  # poll_time: the test polls on request only


@dataclass
class Planted:
    """What the test created in Keystone, to check the posture against and to delete."""

    tag: str
    ids: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


def _id(response, kind: str) -> str:
    return response.json()[kind]["id"]


def plant(ks: KeystoneServer, p: Planted) -> None:
    """Create the planted rows, recording each id in ``p`` as it is made."""
    tag = p.tag
    admin = ks.ensure_role("admin")
    member = ks.ensure_role("member")

    def project(key: str, domain: str = "default", enabled: bool = True) -> str:
        name = f"ossec-{key}-{tag}"
        body = {"project": {"name": name, "domain_id": domain, "enabled": enabled}}
        p.ids[key], p.names[key] = _id(ks.api("POST", "/projects", json=body), "project"), name
        return p.ids[key]

    def user(key: str, enabled: bool = True) -> str:
        body = {
            "user": {
                "name": f"ossec-{key}-{tag}",
                "domain_id": "default",
                "enabled": enabled,
                "password": f"pw-{tag}",
            }
        }
        p.ids[key] = _id(ks.api("POST", "/users", json=body), "user")
        return p.ids[key]

    def grant(target: str, principal: str, role: str) -> None:
        ks.api("PUT", f"/projects/{target}/{principal}/roles/{role}")

    shop, svc, empty = project("shop"), project("svc"), project("empty")
    off = project("off", enabled=False)
    domain = ks.api("POST", "/domains", json={"domain": {"name": f"ossec-dom-{tag}"}})
    p.ids["domain"] = _id(domain, "domain")
    project("domproj", domain=p.ids["domain"])
    ks.api("PATCH", f"/domains/{p.ids['domain']}", json={"domain": {"enabled": False}})

    grant(shop, f"users/{user('alice')}", admin)  # OS-IAM-002
    group = ks.api(
        "POST", "/groups", json={"group": {"name": f"ossec-ops-{tag}", "domain_id": "default"}}
    )
    p.ids["group"] = _id(group, "group")
    grant(shop, f"groups/{p.ids['group']}", admin)  # OS-IAM-003
    grant(off, f"groups/{p.ids['group']}", member)  # a disabled project, with a member
    grant(shop, f"users/{user('bob', enabled=False)}", member)  # OS-IAM-004
    user("carol")  # OS-IAM-005: no role at all
    grant(svc, f"users/{user('svcuser')}", admin)  # a service user (admin is fine there)
    grant(shop, f"users/{p.ids['svcuser']}", member)  # OS-IAM-008
    assert empty  # OS-IAM-006, as is the disabled domain's project (OS-IAM-007)


def remove(ks: KeystoneServer, p: Planted) -> None:
    """Delete what :func:`plant` created (a failed plant leaves some of it)."""
    for key in ("alice", "bob", "carol", "svcuser"):
        if key in p.ids:
            ks.api("DELETE", f"/users/{p.ids[key]}")
    if "group" in p.ids:
        ks.api("DELETE", f"/groups/{p.ids['group']}")
    for key in ("shop", "svc", "empty", "off", "domproj"):
        if key in p.ids:
            ks.api("DELETE", f"/projects/{p.ids[key]}")
    if "domain" in p.ids:
        ks.api("PATCH", f"/domains/{p.ids['domain']}", json={"domain": {"enabled": False}})
        ks.api("DELETE", f"/domains/{p.ids['domain']}")


@pytest.fixture
def planted(keystone) -> Iterator[Planted]:
    p = Planted(uuid.uuid4().hex[:8])
    try:
        yield p
    finally:
        remove(keystone, p)


def expected_rows(p: Planted) -> dict[str, set[tuple]]:
    """Each identity control's rows about what was planted, in its columns."""
    i, n = p.ids, p.names
    return {
        "OS-IAM-002": {
            (
                i["alice"],
                i["shop"],
                "admin",
                f"holds the admin role on project {n['shop']}, not an administrator project",
            )
        },
        "OS-IAM-003": {
            (
                i["group"],
                i["shop"],
                "admin",
                f"every member of the group holds the admin role on project {i['shop']}",
            )
        },
        "OS-IAM-004": {(i["bob"], "default", "disabled, yet still holds role assignments")},
        "OS-IAM-005": {
            (i["carol"], "default", "holds no role of its own on any project or domain")
        },
        "OS-IAM-006": {
            (i["empty"], "default", "no user or group holds a role on the project"),
            (i["domproj"], i["domain"], "no user or group holds a role on the project"),
        },
        "OS-IAM-007": {(i["domproj"], i["domain"], "enabled, in a disabled domain")},
        "OS-IAM-008": {
            (
                i["svcuser"],
                i["shop"],
                "member",
                f"a service user, also holding the member role on project {n['shop']}",
            )
        },
    }


def control_rows(answer: dict, columns: dict[str, list[str]]) -> dict[str, set[tuple]]:
    return {
        c["id"]: {tuple(r["columns"][k] for k in columns[c["id"]]) for r in c["rows"]}
        for c in answer["controls"]
    }


def refresh_and_posture(client) -> dict:
    ok(client.post("/v1/data-sources/keystonev3?action=request-refresh", json={}))
    return ok(client.get(f"/v1/packs/{PACK}/posture", params={"rows": "true"}))


def test_identity_controls_fire_for_exactly_what_was_planted(client, keystone, planted):
    ok(
        client.post(
            "/v1/data-sources",
            json={
                "name": "keystonev3",
                "driver": "keystonev3",
                "config": {
                    "auth_url": keystone.auth_url,
                    "username": keystone.admin_username,
                    "password": keystone.admin_password,
                    "project_name": keystone.admin_project,
                    "poll_time": NEVER,
                },
            },
        ),
        201,
    )
    service_project = f"ossec-svc-{planted.tag}"
    ok(
        client.post(
            f"/v1/packs/{PACK}?action=enable",
            json={"parameters": {"service_projects": [service_project]}},
        )
    )
    pack = ok(client.get(f"/v1/packs/{PACK}"))
    columns = {c["id"]: c["columns"] for c in pack["controls"]}
    columns = {k: [c if isinstance(c, str) else c["name"] for c in v] for k, v in columns.items()}
    identity_only = {c["id"] for c in pack["controls"] if c["datasources"] == ["keystonev3"]}
    assert identity_only == {f"OS-IAM-00{n}" for n in range(2, 9)}

    before = control_rows(refresh_and_posture(client), columns)
    plant(keystone, planted)
    answer = refresh_and_posture(client)
    after = control_rows(answer, columns)

    want = expected_rows(planted)
    statuses = {c["id"]: c for c in answer["controls"]}
    for ident in identity_only:
        assert after[ident] - before[ident] == want[ident], ident
        assert before[ident] <= after[ident], ident  # nothing planted cleared a row
        assert statuses[ident]["status"] == "failing", ident
    for ident, control in statuses.items():
        if ident in identity_only:
            continue
        assert control["status"] == "not_evaluated", ident
        assert (
            control["reason"].startswith("datasource ") and "is not configured" in control["reason"]
        ), (ident, control["reason"])
        assert "keystonev3" not in control["reason"], ident
    assert statuses["OS-IAM-001"]["reason"] == (
        "datasource nova is not configured (create it with driver nova)"
    )
    assert answer["summary"]["not_evaluated"] == len(statuses) - len(identity_only)
