"""openstack-rbac over the real Keystone CI runs (tests/realservices/keystone.py).

The ``oslo_policy`` datasource reads Keystone's registered defaults through the
``oslopolicy-sample-generator`` of Keystone's own venv (its interpreter runs what the
generator runs), under a policy file this test
writes with one planted problem per control; the ``keystonev3`` datasource reads the real
Keystone's roles, to which the test adds one that no policy accepts (through Keystone's
REST API). The pack's posture must show exactly the planted problems: Keystone's own
defaults (including its ``is_admin:1`` in admin_required and its open reads) raise none.
"""

from __future__ import annotations

import textwrap
import uuid

import pytest

from charter.datasources.drivers.oslo_policy import OsloPolicyDriver
from tests.api import conftest as apiconf
from tests.realservices import keystone as realkeystone
from tests.realservices.keystone import KeystoneServer

client, service, settings = apiconf.client, apiconf.service, apiconf.settings

pytestmark = [pytest.mark.keystone,
              pytest.mark.filterwarnings("ignore:The _compute_attributes method")]

PACK = "openstack-rbac"
BOOTSTRAP_ROLES = {"admin", "member", "reader", "manager", "service"}

PLANTED = textwrap.dedent("""\
    # Overrides with one problem each (the rest of Keystone's policy is its defaults).
    "identity:delete_user": "role:member"
    "identity:update_domain": "is_admin:True or role:admin"
    "identity:list_users": "rule:no_such_alias or (role:reader and system_scope:all)"
    "identity:create_region": ""
    "auditor_only": "role:rbac-auditor"
    """)


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def generator() -> str:
    return str(realkeystone.keystone_venv() / "bin" / "oslopolicy-sample-generator")


def test_the_driver_reads_keystone_s_registered_defaults_and_the_overrides(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(PLANTED)
    out = OsloPolicyDriver("pol", {"services": {"keystone": {
        "policy_file": str(policy),
        "defaults": {"namespace": "keystone", "generator": generator()}}}}).poll()
    rules = {r[1]: r for r in out["rules"]}
    # Keystone 30 registers some 200 rules; the identity API ones name their operations
    assert len(out["defaults"]) > 150
    assert rules["admin_required"][2:4] == ("role:admin or is_admin:1", "default")
    assert rules["identity:delete_user"][2:6] == ("role:member", "both", str(policy), 2)
    assert rules["auditor_only"][3] == "file"
    assert ("keystone", "identity:delete_user", "DELETE", "/v3/users/{user_id}") \
        in out["operations"]
    assert {r[2] for r in out["scope_types"]} <= {"system", "domain", "project"}
    # the default of delete_user, through admin_required: admin, is_admin, or a manager of
    # the user's domain
    default = {}
    for r in out["default_expanded"]:
        if r[1] == "identity:delete_user":
            default.setdefault(r[2], set()).add(r[7])
    assert sorted(map(sorted, default.values())) == [
        ["is_admin:1"], ["role:admin"],
        ["role:manager", "token.domain.id:%(target.user.domain_id)s"]]
    # every role Keystone's policy names is one bootstrap creates
    assert {r[2] for r in out["rule_roles"]} == BOOTSTRAP_ROLES | {"rbac-auditor", "member"}
    # the deprecated defaults come whole (the sample's comments would have wrapped them),
    # and every one of them parses: with enforce_new_defaults false, each is ORed in
    deprecated = {r[1]: r[3] for r in out["defaults"] if r[3] is not None}
    assert len(deprecated) > 50
    assert "trustor_user_id" in deprecated["identity:list_roles_for_trust"]
    old = OsloPolicyDriver("pol", {"services": {"keystone": {
        "policy_file": str(policy), "enforce_new_defaults": False,
        "defaults": {"namespace": "keystone", "generator": generator()}}}}).poll()
    old_rules = {r[1]: r[2] for r in old["rules"]}
    assert old_rules["identity:delete_user"] == "role:member"  # the file's rule stays
    assert old_rules["identity:get_consumer"].endswith(
        f" or {deprecated['identity:get_consumer']})")


def test_the_posture_shows_exactly_the_planted_problems(client, keystone: KeystoneServer,
                                                        tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(PLANTED)
    unused = f"planted-unused-{uuid.uuid4().hex[:8]}"
    unused_id = keystone.ensure_role(unused)
    for name, driver, config in [
        ("oslo_policy", "oslo_policy", {"services": {"keystone": {
            "policy_file": str(policy),
            "defaults": {"namespace": "keystone", "generator": generator()}}}}),
        ("keystonev3", "keystonev3", {"auth_url": keystone.auth_url,
                                      "username": keystone.admin_username,
                                      "password": keystone.admin_password,
                                      "project_name": keystone.admin_project}),
    ]:
        ok(client.post("/v1/data-sources", json={
            "name": name, "driver": driver, "config": {**config, "poll_time": 3600}}), 201)
    ok(client.post(f"/v1/packs/{PACK}?action=enable"))
    for name in ("oslo_policy", "keystonev3"):
        ok(client.post(f"/v1/data-sources/{name}?action=request-refresh"))

    answer = ok(client.get(f"/v1/packs/{PACK}/posture", params={"rows": "true"}))
    got = {c["id"]: sorted(tuple(r["columns"].values()) for r in c["rows"])
           for c in answer["controls"]}
    assert all(c["status"] != "not_evaluated" for c in answer["controls"]), answer
    path = str(policy)
    # Every role the real Keystone holds that no policy accepts: the planted one, and any
    # other test of the session's Keystone made (all of them unused by Keystone's policy).
    roles = keystone.api("GET", "/roles").json()["roles"]
    unrecognised = sorted(
        (r["name"], r["id"], "no service's policy accepts this role, nor any role it implies")
        for r in roles if r["name"] not in BOOTSTRAP_ROLES)
    assert (unused, unused_id, unrecognised[0][2]) in unrecognised
    assert got == {
        "OS-RBAC-001": [(
            "identity:delete_user", "keystone", "member",
            "Keystone user, project, domain and group administration is allowed to a plain "
            "member (the rule accepts role:member)")],
        "OS-RBAC-002": sorted([
            ("identity:delete_user", "keystone", "member",
             f"{path} accepts role:member, which the service's default does not"),
            ("identity:create_region", "keystone", "anyone",
             f"{path} lets anyone in, where the service's default asks for a role")]),
        "OS-RBAC-003": [(
            "identity:update_domain", "keystone", "is_admin:True",
            f"{path} grants the call to any request whose context says is_admin:True, "
            "whatever its roles")],
        "OS-RBAC-004": [(
            "rbac-auditor", "keystone",
            "keystone's policy accepts role:rbac-auditor, which Keystone does not define")],
        "OS-RBAC-005": unrecognised,
        "OS-RBAC-006": [(
            "identity:list_users", "keystone", "no_such_alias",
            "rule:no_such_alias is defined nowhere, so it never holds")],
        "OS-RBAC-007": [(
            "identity:create_region", "keystone",
            'any authenticated user may call it (its rule is "")')],
    }
