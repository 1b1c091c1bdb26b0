"""The ``oslo_policy`` driver on policy files and samples written here.

The samples are in the format ``oslopolicy-sample-generator`` writes; a policy namespace
registered here stands for a service's (the real generator of a real Keystone is run by
tests/packs/test_openstack_rbac_keystone.py). Parse errors, a missing file and a failing generator
must fail the poll with the place named, and through the API the datasource keeps its last
good tables and says why in its status.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from charter.datasources.driver import DriverError
from charter.datasources.drivers.oslo_policy import OsloPolicyDriver, parse_sample
from tests.api import conftest as api

client, service, settings = api.client, api.service, api.settings

SAMPLE = textwrap.dedent('''\
    #"admin_required": "role:admin or is_admin:1"

    #"owner": "user_id:%(user_id)s"

    # Delete a user.
    # DELETE  /v3/users/{user_id}
    # Intended scope(s): system, domain
    #"identity:delete_user": "rule:admin_required or (role:manager and domain_id:%(target.user.domain_id)s)"

    # DEPRECATED
    # "identity:delete_user":"role:operator" has been deprecated
    # since S in favor of "identity:delete_user":"rule:admin_required or
    # (role:manager and domain_id:%(target.user.domain_id)s)".
    # The user API is now aware of system scope and default roles.

    # Show a user.
    # GET  /v3/users/{user_id}
    # HEAD  /v3/users/{user_id}
    # ['PATCH', 'PUT']  /v3/users/{user_id}/both
    # Intended scope(s): system, domain, project
    #"identity:get_user": "role:reader or rule:owner"

    # DEPRECATED
    # "identity:get_legacy" has been deprecated since Z.
    # Nobody calls it.
    # Get the legacy thing.
    # GET  /v3/legacy
    #"identity:get_legacy": ""
    ''')


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def driver(services: dict, **more) -> OsloPolicyDriver:
    return OsloPolicyDriver("pol", {"services": services, **more})


def poll(tmp_path: Path, policy: str | None = None, sample: str = SAMPLE) -> dict:
    spec: dict = {"defaults_file": write(tmp_path / "sample.yaml", sample)}
    if policy is not None:
        spec["policy_file"] = write(tmp_path / "policy.yaml", policy)
    return driver({"keystone": spec}).poll()


def of(out: dict, table: str, target: str) -> list[tuple]:
    return [r[2:] for r in out[table] if r[1] == target]


def branches(out: dict, table: str, target: str) -> dict[int, set[str]]:
    """branch -> its checks, written with a leading 'not ' when negated."""
    got: dict[int, set[str]] = {}
    for r in out[table]:
        if r[1] == target:
            got.setdefault(r[2], set()).add(("not " if r[6] == "True" else "") + r[7])
    return got


# ------------------------------------------------------------------ defaults


def test_a_sample_gives_the_defaults_their_scopes_operations_and_deprecations(tmp_path):
    out = poll(tmp_path)
    assert of(out, "defaults", "identity:delete_user") == [(
        "rule:admin_required or (role:manager and domain_id:%(target.user.domain_id)s)",
        "role:operator", "S")]
    assert of(out, "defaults", "identity:get_legacy") == [("", None, "Z")]
    assert of(out, "defaults", "owner") == [("user_id:%(user_id)s", None, None)]
    assert of(out, "scope_types", "identity:get_user") == [
        ("domain",), ("project",), ("system",)]
    assert of(out, "operations", "identity:get_user") == [
        ("GET", "/v3/users/{user_id}"), ("HEAD", "/v3/users/{user_id}"),
        ("PATCH", "/v3/users/{user_id}/both"), ("PUT", "/v3/users/{user_id}/both")]
    assert of(out, "operations", "identity:get_legacy") == [("GET", "/v3/legacy")]
    # with no policy file, every rule in force is a default
    assert {r[1]: r[3:] for r in out["rules"]} == {
        "admin_required": ("default", None, None, "False"),
        "owner": ("default", None, None, "False"),
        "identity:delete_user": ("default", None, None, "True"),
        "identity:get_user": ("default", None, None, "False"),
        "identity:get_legacy": ("default", None, None, "True")}


def test_a_file_that_is_no_sample_is_refused():
    with pytest.raises(ValueError, match=r"x.yaml: no rule found: it is not "
                                         r"oslopolicy-sample-generator output"):
        parse_sample("# just a comment\nfoo: [1, 2]\n", "x.yaml")
    assert parse_sample("", "empty.yaml") == {}


# ------------------------------------------------------------------ files over defaults


def test_the_policy_file_overrides_defaults_and_says_where(tmp_path):
    out = poll(tmp_path, '''\
        # an operator's overrides
        "identity:delete_user": "role:member"
        "identity:get_user": "role:reader or rule:owner"
        "my_alias": "role:Auditor"
        ''')
    rules = {r[1]: r[2:] for r in out["rules"]}
    path = str(tmp_path / "policy.yaml")
    assert rules["identity:delete_user"] == ("role:member", "both", path, 2, "True")
    assert rules["identity:get_user"] == ("role:reader or rule:owner", "both", path, 3, "False")
    assert rules["my_alias"] == ("role:Auditor", "file", path, 4, "False")
    assert rules["owner"] == ("user_id:%(user_id)s", "default", None, None, "False")
    # rule_roles: the roles in force, lower case; the default's are in default_expanded
    assert of(out, "rule_roles", "identity:delete_user") == [("member",)]
    assert of(out, "rule_roles", "my_alias") == [("auditor",)]
    assert branches(out, "default_expanded", "identity:delete_user") == {
        0: {"role:admin"}, 1: {"is_admin:1"},
        2: {"role:manager", "domain_id:%(target.user.domain_id)s"}}


def test_files_and_directories_apply_in_order(tmp_path):
    d = tmp_path / "policy.d"
    d.mkdir()
    write(d / "20-late.yaml", '"b": "role:late"\n')
    write(d / "10-early.yaml", '"a": "role:early"\n"b": "role:early"\n')
    write(d / ".hidden.yaml", '"a": "role:hidden"\n')
    first = write(tmp_path / "policy.yaml", '"a": "role:first"\n"c": "role:first"\n')
    legacy = write(tmp_path / "policy.json", json.dumps({"c": [["role:x", "role:y"], ["role:z"]]}))
    out = driver({"svc": {"policy_file": [first, str(d), legacy]}}).poll()
    assert {r[1]: (r[2], Path(r[4]).name) for r in out["rules"]} == {
        "a": ("role:early", "10-early.yaml"), "b": ("role:late", "20-late.yaml"),
        # the old list-of-lists syntax, as oslo.policy prints it
        "c": ("((role:x and role:y) or role:z)", "policy.json")}
    assert branches(out, "checks", "c") == {0: {"role:x", "role:y"}, 1: {"role:z"}}


def test_enforce_new_defaults_false_ors_in_the_deprecated_default(tmp_path):
    sample = write(tmp_path / "sample.yaml", SAMPLE)
    old = driver({"keystone": {"defaults_file": sample, "enforce_new_defaults": False}}).poll()
    new = driver({"keystone": {"defaults_file": sample}}).poll()
    assert of(new, "rules", "identity:delete_user")[0][0] == (
        "rule:admin_required or (role:manager and domain_id:%(target.user.domain_id)s)")
    assert of(old, "rules", "identity:delete_user")[0][0] == (
        "((rule:admin_required or (role:manager and domain_id:%(target.user.domain_id)s)) "
        "or role:operator)")
    assert branches(old, "expanded", "identity:delete_user") == {
        **branches(new, "expanded", "identity:delete_user"), 3: {"role:operator"}}
    assert of(old, "rule_roles", "identity:delete_user") == [
        ("admin",), ("manager",), ("operator",)]
    # what the rule is compared with stays the registered default
    assert old["default_expanded"] == new["default_expanded"]
    assert of(old, "rules", "identity:get_user") == of(new, "rules", "identity:get_user")


def test_without_oslo_policy_the_datasource_says_what_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "oslo_policy", None)
    with pytest.raises(DriverError, match=r"needs oslo.policy, which is not installed: "
                                          r"pip install 'charter\[openstack\]'"):
        driver({"k": {"policy_file": "/x"}})


# ------------------------------------------------------------------ checks and expansion


def test_checks_are_in_disjunctive_normal_form_with_not_pushed_down(tmp_path):
    out = poll(tmp_path, '''\
        "t1": "role:a and (role:b or not role:c)"
        "t2": "not (role:a or project_id:%(project_id)s)"
        "t3": "is_admin:True or 'member':%(role.name)s or system_scope:all"
        "t4": "@"
        "t5": "!"
        "t6": ""
        ''', sample="")
    assert branches(out, "checks", "t1") == {0: {"role:a", "role:b"}, 1: {"role:a", "not role:c"}}
    assert branches(out, "checks", "t2") == {0: {"not role:a", "not project_id:%(project_id)s"}}
    assert {r[3:7] for r in out["checks"] if r[1] == "t3"} == {
        ("generic", "is_admin", "True", "False"), ("generic", "'member'", "%(role.name)s", "False"),
        ("generic", "system_scope", "all", "False")}
    assert [r[3:] for r in out["checks"] if r[1] in ("t4", "t5", "t6")] == [
        ("true", None, "@", "False", "@"), ("false", None, "!", "False", "!"),
        ("true", None, "@", "False", "@")]
    assert of(out, "rule_roles", "t1") == [("a",), ("b",)]  # c only under a not
    assert of(out, "rule_roles", "t2") == []


def test_expansion_follows_aliases_as_enforcement_does(tmp_path):
    out = poll(tmp_path, '''\
        "admin": "role:admin"
        "member_or_admin": "rule:admin or role:member"
        "api_a": "rule:member_or_admin and project_id:%(project_id)s"
        "api_undefined": "rule:nope or role:reader"
        "api_only_undefined": "rule:nope"
        "loop_a": "rule:loop_b or role:x"
        "loop_b": "rule:loop_a"
        "api_open": "role:x or @"
        "api_never_admin": "not rule:admin and (! or role:y)"
        ''', sample="")
    assert branches(out, "expanded", "api_a") == {
        0: {"role:admin", "project_id:%(project_id)s"},
        1: {"role:member", "project_id:%(project_id)s"}}
    assert of(out, "rule_refs", "api_a") == [("member_or_admin",)]
    # an undefined alias is false: its branch is gone
    assert branches(out, "expanded", "api_undefined") == {0: {"role:reader"}}
    assert branches(out, "expanded", "api_only_undefined") == {0: {"!"}}
    assert of(out, "rule_refs", "api_undefined") == [("nope",)]
    # a cycle is cut where it closes
    assert branches(out, "expanded", "loop_a") == {0: {"role:x"}}
    # "@" is a branch that lets anyone in; a "!" branch never holds
    assert branches(out, "expanded", "api_open") == {0: {"role:x"}, 1: {"@"}}
    assert branches(out, "expanded", "api_never_admin") == {0: {"not role:admin", "role:y"}}
    assert of(out, "rule_roles", "api_a") == [("admin",), ("member",)]
    assert of(out, "rule_roles", "api_never_admin") == [("y",)]


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(("policy", "message"), [
    ('"ok": "role:a"\n"bad": "role:a or (role:b"\n',
     r"policy.yaml:2: rule 'bad': oslo.policy cannot parse 'role:a or \(role:b' "
     r"\(.*\); the service would deny it to everyone"),
    ('"ok": "role:a"\n"bad": "admin"\n', r"policy.yaml:2: rule 'bad': oslo.policy cannot parse"),
    ('"ok": "role:a"\n"bad": [role:a\n', r"policy.yaml:3:1: not valid YAML"),
    ('- role:a\n', r"policy.yaml:1: a policy file must map rule names to check strings"),
    ('"n": 3\n', r"policy.yaml:1: rule 'n': its check string must be a string"),
])
def test_a_file_that_does_not_parse_names_the_file_line_and_rule(tmp_path, policy, message):
    with pytest.raises(DriverError, match=r"datasource pol: service keystone: .*" + message):
        poll(tmp_path, policy, sample="")


def test_a_missing_policy_file_or_sample_is_named(tmp_path):
    with pytest.raises(DriverError, match=r"service k: .*/nope.yaml: no such policy file"):
        driver({"k": {"policy_file": str(tmp_path / "nope.yaml")}}).poll()
    with pytest.raises(DriverError, match=r"service k: defaults_file .*/none.yaml: cannot read"):
        driver({"k": {"defaults_file": str(tmp_path / "none.yaml")}}).poll()


FAKE_POLICIES = textwrap.dedent("""\
    from oslo_policy import policy

    def list_rules():
        return [
            policy.RuleDefault("admin", "role:admin"),
            policy.DocumentedRuleDefault(
                "fake:delete_thing", "rule:admin", "Delete a thing.",
                [{"method": "DELETE", "path": "/things/{thing_id}"}],
                scope_types=["project", "system"],
                deprecated_rule=policy.DeprecatedRule(
                    "fake:delete_thing",
                    "role:operator and user_id:%(target.thing.a_rather_long_owner_user_id)s",
                    deprecated_reason="Secure RBAC.", deprecated_since="Z")),
            policy.RuleDefault("fake:old", "", deprecated_for_removal=True,
                               deprecated_reason="Gone.", deprecated_since="Y"),
        ]
    """)


def script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def namespace(tmp_path, monkeypatch) -> str:
    """A policy namespace ``fake`` registered in a directory on PYTHONPATH, and a
    generator whose interpreter (its #! line) is this test's Python."""
    site = tmp_path / "site"
    (site / "fake_policies-1.0.dist-info").mkdir(parents=True)
    (site / "fake_policies.py").write_text(FAKE_POLICIES)
    (site / "fake_policies-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-policies\nVersion: 1.0\n")
    (site / "fake_policies-1.0.dist-info" / "entry_points.txt").write_text(
        "[oslo.policy.policies]\nfake = fake_policies:list_rules\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    return script(tmp_path / "oslopolicy-sample-generator",
                  f"#!{sys.executable}\nraise SystemExit('the driver runs its interpreter')\n")


def test_the_generator_s_interpreter_lists_the_registered_defaults(namespace):
    out = driver({"fake": {"defaults": {"namespace": "fake", "generator": namespace}},
                  }).poll()
    assert out["defaults"] == [
        ("fake", "admin", "role:admin", None, None),
        ("fake", "fake:delete_thing", "rule:admin",
         "role:operator and user_id:%(target.thing.a_rather_long_owner_user_id)s", "Z"),
        ("fake", "fake:old", "", None, "Y")]
    assert out["operations"] == [("fake", "fake:delete_thing", "DELETE", "/things/{thing_id}")]
    assert out["scope_types"] == [("fake", "fake:delete_thing", "project"),
                                  ("fake", "fake:delete_thing", "system")]
    old = driver({"fake": {"defaults": {"namespace": "fake", "generator": namespace},
                           "enforce_new_defaults": False}}).poll()
    assert of(old, "rule_roles", "fake:delete_thing") == [("admin",), ("operator",)]


def test_an_unknown_namespace_or_a_failing_generator_fails_the_poll(namespace, tmp_path):
    with pytest.raises(DriverError, match=r"service fake: .* --namespace bogus failed \(exit "
                                          r"1\): no policy namespace bogus is registered here "
                                          r"\(entry points oslo.policy.policies: .*fake") as err:
        driver({"fake": {"defaults": {"namespace": "bogus", "generator": namespace}}}).poll()
    assert err.value.status == 502
    slow = script(tmp_path / "slowpython", "#!/bin/sh\nexec sleep 30\n")
    gen = script(tmp_path / "slowgen", f"#!{slow}\n")
    with pytest.raises(DriverError, match=r"did not finish in 0.5 s") as err:
        driver({"k": {"defaults": {"namespace": "k", "generator": gen}}},
               timeout_seconds=0.5).poll()
    assert err.value.status == 503
    binary = tmp_path / "binary"
    binary.write_bytes(b"\x7fELF...")
    with pytest.raises(DriverError, match=r"it is not a Python console script"):
        driver({"k": {"defaults": {"namespace": "k", "generator": str(binary)}}}).poll()


@pytest.mark.parametrize(("services", "message"), [
    ({}, "config 'services' must map each service to its policy"),
    ({"k": {"policy": "/x"}}, "config services.k has no key 'policy'; it takes policy_file"),
    ({"k": {}}, "config services.k names no policy"),
    ({"k": {"policy_file": 3}}, "services.k.policy_file must be a path or a list of paths"),
    ({"k": {"defaults_file": "a", "defaults": {}}}, "give defaults .* or defaults_file"),
    ({"k": {"defaults": {"namespace": "k", "generator": "/no/such/gen"}}},
     "services.k.defaults.generator: no file '/no/such/gen'"),
    ({"k": {"defaults": {"generator": "/bin/sh"}}}, "defaults.namespace must name"),
    ({"bad name": {"policy_file": "/x"}}, "service name 'bad name' must be"),
    ({"k": {"policy_file": "/x", "enforce_new_defaults": "no"}},
     "services.k.enforce_new_defaults must be true or false"),
])
def test_config_mistakes_are_refused_with_the_key_and_the_fix(services, message):
    with pytest.raises(DriverError, match=message) as err:
        driver(services)
    assert err.value.status == 400


def test_services_may_be_given_as_json_text(tmp_path):
    sample = write(tmp_path / "s.yaml", SAMPLE)
    d = OsloPolicyDriver("pol", {"services": json.dumps({"k": {"defaults_file": sample}})})
    assert len(d.poll()["rules"]) == 5


# ------------------------------------------------------------------ through the service


def test_a_broken_file_keeps_the_last_good_tables_and_shows_in_the_status(client, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text('"identity:delete_user": "role:admin"\n')
    created = client.post("/v1/data-sources", json={
        "name": "pol", "driver": "oslo_policy",
        "config": {"services": {"keystone": {"policy_file": str(policy)}}, "poll_time": 3600}})
    assert created.status_code == 201, created.text
    assert client.post("/v1/data-sources/pol?action=request-refresh").status_code == 200

    def roles() -> list:
        got = client.get("/v1/data-sources/pol/tables/rule_roles/rows").json()["results"]
        return sorted(r["data"] for r in got)

    assert roles() == [["keystone", "identity:delete_user", "admin"]]
    policy.write_text('"identity:delete_user": "role:admin"\n"identity:create_user": "(role:x"\n')
    os.utime(policy)
    answer = client.post("/v1/data-sources/pol?action=request-refresh")
    assert answer.status_code == 400
    assert "policy.yaml:2: rule 'identity:create_user'" in answer.json()["error"]["message"]
    status = client.get("/v1/data-sources/pol/status").json()
    assert "policy.yaml:2" in status["last_error"] and status["consecutive_failures"] >= 1
    assert roles() == [["keystone", "identity:delete_user", "admin"]]
    schema = client.get("/v1/data-sources/pol/schema").json()["tables"]
    assert {t["table_id"] for t in schema} >= {"rules", "checks", "expanded", "rule_roles"}
