"""python-congressclient (``openstack congress ...``) against a real ``charter serve``.

Every command the client offers is run and its printed result checked (``-f json`` or
``-f value`` where the command has them, the exact text where it prints its own), plus the
client's Python API calls that no command makes (library policies, create-from-library,
execute). The last tests check that no command or Client method the installed client offers
went untested, so a new client release cannot add one unnoticed.

python-congressclient 2.0.1 has two bugs on Python 3 / PyYAML 6 that fail in the client
before any request is sent (congress_runner.py); the commands they hit are run both as is
(to pin the client's failure) and with the workaround (to check Charter's answer).
"""

from __future__ import annotations

import sys

import httpx
import pytest

from tests.integration.conftest import CharterServer, Congress

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ERROR_RULE = "error(host, n, c) :- load(host, n), fleet:hosts(host, c), n > c"
LOAD_RULE = "load(host, n) :- fleet:servers(_, host), n = count : { fleet:servers(_, host) }"


def by_name(items: list[dict], name: str) -> dict:
    found = [i for i in items if i.get("name") == name]
    assert len(found) == 1, f"{name} appears {len(found)} times in {items}"
    return found[0]


# ---------------------------------------------------------------- service, versions, drivers


def test_server_is_healthy(charter_server: CharterServer):
    r = httpx.get(f"{charter_server.url}/healthz", timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"


def test_version_list(congress: Congress):
    assert congress.json("version", "list") == [
        {"id": "v1", "status": "CURRENT", "updated": "2013-08-12T17:42:13Z"}]
    assert "| v1 | CURRENT | 2013-08-12T17:42:13Z |" in congress.ok("version", "list")
    assert congress.api("list_api_versions")["versions"][0]["links"][0]["href"].endswith("/v1/")


def test_driver_list_and_show(congress: Congress):
    drivers = congress.json("driver", "list")
    push = next(d for d in drivers if d["id"] == "push")
    assert push["description"].startswith("Tables pushed by clients")
    assert all(set(d) == {"id", "description"} for d in drivers)

    config = congress.json("driver", "config", "show", "push")
    assert config["id"] == "push"
    assert set(config) == {"id", "description", "config", "secret", "module"}
    assert set(config["config"]) == {"tables", "persist_data"}
    assert config["secret"] == []

    # the push driver has no fixed tables (a datasource's config names them)
    assert congress.json("driver", "schema", "show", "push") == []
    assert congress.api("show_driver", "push")["tables"] == []

    missing = congress.fails("driver", "config", "show", "nosuch")
    assert "no driver named 'nosuch'" in missing.stderr and "(HTTP 404)" in missing.stderr


# ---------------------------------------------------------------- policies


def test_policy_create_list_show_delete(congress: Congress):
    created = congress.json("policy", "create", "audit", "--description", "audit rules",
                            "--abbreviation", "aud", "--kind", "nonrecursive")
    assert set(created) == {"id", "name", "abbreviation", "description", "owner_id", "kind"}
    assert created["name"] == "audit" and created["abbreviation"] == "aud"
    assert created["description"] == "audit rules" and created["kind"] == "nonrecursive"

    listed = congress.json("policy", "list")
    assert [p["name"] for p in listed][:2] == ["classification", "action"]
    assert by_name(listed, "audit") == {k: created[k] for k in
                                        ("id", "name", "owner_id", "kind", "description")}
    assert f"{created['id']} audit {created['owner_id']} nonrecursive audit rules" in \
        congress.value("policy", "list")

    assert congress.json("policy", "show", "audit") == created  # by name
    assert congress.json("policy", "show", created["id"]) == created  # by id
    assert congress.value("policy", "show", "audit", "-c", "abbreviation") == ["aud"]

    default_abbreviation = congress.json("policy", "create", "database_policy",
                                         "--kind", "database")
    assert default_abbreviation["abbreviation"] == "datab"
    assert default_abbreviation["kind"] == "database"

    assert congress.ok("policy", "delete", "audit") == ""
    assert congress.ok("policy", "delete", default_abbreviation["id"]) == ""  # by id
    names = [p["name"] for p in congress.json("policy", "list")]
    assert "audit" not in names and "database_policy" not in names


def test_policy_create_from_file(congress: Congress, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "name: fromfile\n"
        "description: rules from a file\n"
        "abbreviation: ff\n"
        "rules:\n"
        "  - rule: p(1)\n"
        "    name: one\n"
        "    comment: a fact\n"
        "  - rule: q(x) :- p(x)\n")

    # python-congressclient 2.0.1 calls yaml.load_all without a Loader: PyYAML 6 refuses
    broken = congress.fails("policy", "create-from-file", str(path))
    assert "load_all() missing 1 required positional argument: 'Loader'" in broken.stderr

    created = congress.json("policy", "create-from-file", str(path), compat=True)
    assert created["name"] == "fromfile" and created["abbreviation"] == "ff"
    assert created["description"] == "rules from a file"
    assert created["rules"] == "p(1)\nq(x) :- p(x)"  # the client joins the rules' text
    assert congress.ok("policy", "rule", "list", "fromfile").split("\n\n")[0].splitlines()[1:] \
        == ["// Name: one", "// a fact", "p(1)"]
    assert congress.value("policy", "row", "list", "fromfile", "q") == ["1"]
    congress.ok("policy", "delete", "fromfile")


# ---------------------------------------------------------------- rules and tables


def test_policy_rules_and_tables(congress: Congress):
    congress.json("policy", "create", "rules")
    named = congress.json("policy", "rule", "create", "rules", "ok(x) :- item(x), not bad(x)",
                          "--name", "ok-items", "--comment", "items that are not bad")
    assert named == {"id": named["id"], "name": "ok-items",
                     "rule": "ok(x) :- item(x), not bad(x)", "comment": "items that are not bad"}
    plain = congress.json("policy", "rule", "create", "rules", 'item("a")')
    assert plain == {"id": plain["id"], "name": None, "rule": 'item("a")', "comment": ""}
    fact = congress.json("policy", "rule", "create", "rules", 'bad("b")', "--name", "bad-b")
    congress.json("policy", "rule", "create", "rules", 'item("b")')

    # rule list prints the rules as text, in the order they were created
    listing = congress.ok("policy", "rule", "list", "rules")
    assert listing.startswith(
        f"// ID: {named['id']}\n// Name: ok-items\n// items that are not bad\n"
        f"ok(x) :- item(x), not bad(x)\n\n// ID: {plain['id']}\n// Name: None\nitem(\"a\")\n\n")
    assert listing.count("// ID: ") == 4

    assert congress.json("policy", "rule", "show", "rules", "ok-items") == named  # by name
    assert congress.json("policy", "rule", "show", "rules", plain["id"]) == plain  # by id

    assert congress.value("policy", "table", "list", "rules") == ["bad", "item", "ok"]
    assert congress.json("policy", "table", "show", "rules", "ok") == {"id": "ok"}
    assert congress.value("policy", "row", "list", "rules", "ok") == ["a"]

    congress.ok("policy", "rule", "delete", "rules", "bad-b")  # by name
    assert congress.value("policy", "row", "list", "rules", "ok") == ["a", "b"]
    congress.ok("policy", "rule", "delete", "rules", plain["id"])  # by id
    assert congress.value("policy", "row", "list", "rules", "ok") == ["b"]
    remaining = congress.ok("policy", "rule", "list", "rules")
    assert fact["id"] not in remaining and plain["id"] not in remaining
    assert remaining.count("// ID: ") == 2

    missing = congress.fails("policy", "rule", "show", "rules", "bad-b")
    assert missing.stderr == "Resource bad-b not found (HTTP 404)\n"
    missing_table = congress.fails("policy", "table", "show", "rules", "nosuch")
    assert "No such table nosuch in policy rules (HTTP 404)" in missing_table.stderr
    congress.ok("policy", "delete", "rules")


# ---------------------------------------------------------------- the violation scenario


def test_push_datasource_policy_violation_appears_and_clears(congress: Congress):
    ds = congress.json("datasource", "create", "push", "fleet",
                       "--description", "servers and hosts, pushed")
    assert ds == {"id": ds["id"], "name": "fleet", "driver": "push",
                  "description": "servers and hosts, pushed", "enabled": True, "config": {}}

    assert congress.ok("datasource", "row", "update", "fleet", "servers",
                       '[["vm1", "h1"], ["vm2", "h1"], ["vm3", "h2"]]') == ""
    assert congress.ok("datasource", "row", "update", "fleet", "hosts",
                       '[["h1", 1], ["h2", 4]]') == ""
    assert congress.json("datasource", "row", "list", "fleet", "hosts") == [
        {"col0": "h1", "col1": 1}, {"col0": "h2", "col1": 4}]

    congress.json("policy", "create", "capacity", "--description", "hosts over capacity")
    congress.json("policy", "rule", "create", "capacity", LOAD_RULE, "--name", "load")
    error_rule = congress.json("policy", "rule", "create", "capacity", ERROR_RULE,
                               "--name", "over-capacity")

    # h1 runs 2 servers, capacity 1: one violation
    assert congress.json("policy", "row", "list", "capacity", "error") == [
        {"Col0": "h1", "Col1": 2, "Col2": 1}]
    assert congress.value("policy", "row", "list", "capacity", "error") == ["h1 2 1"]
    assert congress.value("policy", "row", "list", "capacity", "load") == ["h1 2", "h2 1"]
    traced = congress.value("policy", "row", "list", "capacity", "error", "--trace")
    assert traced == [
        "error: 1 rows",
        f"  derived by rule {error_rule['id']} (over-capacity): {ERROR_RULE}",
        "h1 2 1"]
    assert "error" in congress.value("policy", "table", "list", "capacity")

    # raise h1's capacity: the violation is gone
    congress.ok("datasource", "row", "update", "fleet", "hosts", '[["h1", 2], ["h2", 4]]')
    assert congress.json("policy", "row", "list", "capacity", "error") == []
    assert congress.ok("policy", "row", "list", "capacity", "error") == "\n"

    # one more server on h1: back again; moved away: gone again
    congress.ok("datasource", "row", "update", "fleet", "servers",
                '[["vm1", "h1"], ["vm2", "h1"], ["vm3", "h1"]]')
    assert congress.value("policy", "row", "list", "capacity", "error") == ["h1 3 2"]
    congress.ok("datasource", "row", "update", "fleet", "servers",
                '[["vm1", "h1"], ["vm2", "h2"], ["vm3", "h2"]]')
    assert congress.value("policy", "row", "list", "capacity", "error") == []

    congress.ok("policy", "delete", "capacity")
    congress.ok("datasource", "delete", "fleet")


def test_policy_simulate(congress: Congress):
    congress.json("datasource", "create", "push", "simds")
    congress.ok("datasource", "row", "update", "simds", "vms", '[["vm1", "bad"], ["vm2", "ok"]]')
    congress.json("policy", "create", "sim")
    congress.json("policy", "rule", "create", "sim", 'error(vm) :- simds:vms(vm, "bad")')
    assert congress.value("policy", "row", "list", "sim", "error") == ["vm1"]

    # the query after the sequence (action policy: Congress's default "action")
    assert congress.ok("policy", "simulate", "sim", "error(x)",
                       'simds:vms+("vm3", "bad")', "action") == 'error("vm1")\nerror("vm3")\n'
    # only the difference
    assert congress.ok("policy", "simulate", "sim", "error(x)",
                       'simds:vms+("vm3", "bad") simds:vms-("vm1", "bad")', "action",
                       "--delta") == 'error+("vm3")\nerror-("vm1")\n'
    traced = congress.ok("policy", "simulate", "sim", "error(x)", 'simds:vms-("vm1", "bad")',
                         "action", "--delta", "--trace").splitlines()
    assert traced[0] == 'error-("vm1")'
    assert 'simds:vms-("vm1", "bad")' in traced[1] and "sim:error +0 -1" in traced[1]
    # an update rule
    assert congress.ok("policy", "simulate", "sim", "error(x)",
                       'error+(x) :- simds:vms(x, "ok")', "action", "--delta") \
        == 'error+("vm2")\n'
    # nothing was kept
    assert congress.value("policy", "row", "list", "sim", "error") == ["vm1"]
    assert congress.value("datasource", "row", "list", "simds", "vms") == [
        "vm1 bad", "vm2 ok"]

    bad = congress.fails("policy", "simulate", "sim", "error(x)", "simds:vms+(", "action")
    assert "invalid simulate input" in bad.stderr and "(HTTP 400)" in bad.stderr
    congress.ok("policy", "delete", "sim")
    congress.ok("datasource", "delete", "simds")


# ---------------------------------------------------------------- datasources


def test_datasource_commands(congress: Congress):
    created = congress.json("datasource", "create", "push", "mon", "--description", "alarms",
                            "--config", "persist_data=True")
    assert created == {"id": created["id"], "name": "mon", "driver": "push",
                       "description": "alarms", "enabled": True,
                       "config": {"persist_data": "True"}}
    listed = by_name(congress.json("datasource", "list"), "mon")
    # the client formats config as a Python dict's str
    assert listed == {"id": created["id"], "name": "mon", "enabled": True, "driver": "push",
                      "config": "{'persist_data': 'True'}"}
    assert congress.api("show_datasource", "mon") == created  # Horizon's call, no command

    # no table until rows are pushed
    assert congress.json("datasource", "table", "list", "mon") == []
    assert congress.json("datasource", "schema", "show", "mon") == []
    congress.ok("datasource", "row", "update", "mon", "alarms",
                '[["a1", "h1", "critical"], ["a2", "h2", "minor"]]')
    assert congress.json("datasource", "table", "list", "mon") == [{"id": "alarms"}]
    assert congress.json("datasource", "table", "show", "mon", "alarms") == {"id": "alarms"}
    assert congress.json("datasource", "table", "schema", "show", "mon", "alarms") == [
        {"name": "col0", "description": ""}, {"name": "col1", "description": ""},
        {"name": "col2", "description": ""}]
    assert congress.json("datasource", "row", "list", "mon", "alarms") == [
        {"col0": "a1", "col1": "h1", "col2": "critical"},
        {"col0": "a2", "col1": "h2", "col2": "minor"}]

    # python-congressclient 2.0.1 formats the columns with dict.iteritems (Python 2 only)
    broken = congress.fails("datasource", "schema", "show", "mon")
    assert "'dict' object has no attribute 'iteritems'" in broken.stderr
    assert congress.json("datasource", "schema", "show", "mon", compat=True) == [
        {"table": "alarms", "columns": "{'name': 'col0', 'description': ''},\n"
                                       "{'name': 'col1', 'description': ''},\n"
                                       "{'name': 'col2', 'description': ''}\n"}]

    status = congress.json("datasource", "status", "show", "mon")
    assert status["initialized"] is True and status["last_error"] is None
    assert status["number_of_updates"] == 1 and status["rows"] == {"alarms": 2}
    assert congress.json("datasource", "actions", "show", "mon") == []  # push has none
    assert congress.ok("datasource", "request-refresh", "mon") == ""  # nothing to poll

    # replace the rows (the whole table), then empty it
    congress.ok("datasource", "row", "update", "mon", "alarms", '[["a3", "h1", "major"]]')
    assert congress.value("datasource", "row", "list", "mon", "alarms") == ["a3 h1 major"]
    congress.ok("datasource", "row", "update", "mon", "alarms", "[]")
    assert congress.ok("datasource", "row", "list", "mon", "alarms") == "\n"
    assert congress.json("datasource", "status", "show", "mon")["number_of_updates"] == 3

    wrong_width = congress.fails("datasource", "row", "update", "mon", "alarms", '[["a4"]]')
    assert "mon:alarms has 1 values" in wrong_width.stderr
    assert "3 columns (HTTP 400)" in wrong_width.stderr

    assert congress.ok("datasource", "delete", "mon") == ""  # by name
    assert "mon" not in [d["name"] for d in congress.json("datasource", "list")]


def test_datasource_with_a_schema(congress: Congress):
    # --config only gives strings: the push driver reads its schema from JSON text
    created = congress.json("datasource", "create", "push", "inv2",
                            "--config", 'tables={"servers": ["id", "host"]}')
    assert created["config"] == {"tables": '{"servers": ["id", "host"]}'}
    assert congress.json("datasource", "table", "list", "inv2") == [{"id": "servers"}]
    assert congress.value("datasource", "table", "schema", "show", "inv2", "servers") == [
        "id ", "host "]
    assert congress.json("datasource", "schema", "show", "inv2", compat=True) == [
        {"table": "servers", "columns": "{'name': 'id', 'description': ''},\n"
                                        "{'name': 'host', 'description': ''}\n"}]
    congress.ok("datasource", "row", "update", "inv2", "servers", '[["vm1", "h1"]]')
    assert congress.json("datasource", "row", "list", "inv2", "servers") == [
        {"id": "vm1", "host": "h1"}]
    assert congress.api("list_datasource_rows", "inv2", "servers") == {
        "results": [{"data": ["vm1", "h1"]}]}
    unknown = congress.fails("datasource", "row", "update", "inv2", "hosts", '[["h1"]]')
    assert "datasource inv2 has no table 'hosts'; its tables: servers (HTTP 400)" in \
        unknown.stderr
    congress.ok("datasource", "delete", created["id"])  # by id

    # the same schema as a JSON object, through the Python client (or the REST API)
    created = congress.api("create_datasource", {
        "name": "inv3", "driver": "push", "config": {"tables": {"servers": ["id", "host"]}}})
    assert created["config"] == {"tables": {"servers": ["id", "host"]}}
    assert congress.value("datasource", "table", "schema", "show", "inv3", "servers") == [
        "id ", "host "]
    assert congress.api("delete_datasource", "inv3")["name"] == "inv3"


# ---------------------------------------------------------------- the Python client's extras


def test_library_policies_and_create_from_library(congress: Congress):
    shipped = congress.api("list_library_policy", include_rules=False)["results"]
    assert {"HostCapacity", "DisallowedFlavors", "VolumeEncryption"} <= \
        {p["name"] for p in shipped}
    assert all("rules" not in p for p in shipped)
    with_rules = congress.api("list_library_policy")["results"]
    assert all(p["rules"] for p in with_rules)

    host_capacity = congress.api("show_library_policy", "HostCapacity")
    assert host_capacity["abbreviation"] == "HostC"
    assert [r["rule"].split(":-")[0].strip() for r in host_capacity["rules"]] == [
        "load(host, n)", "error(host, n, capacity)"]
    assert "rules" not in congress.api("show_library_policy", host_capacity["id"],
                                       include_rules=False)

    mine = congress.api("create_library_policy", {
        "name": "NoRoot", "description": "no server runs as root",
        "rules": [{"rule": 'error(vm) :- inventory:servers(vm, "root")', "name": "root",
                   "comment": "servers running as root"}]})
    assert mine["name"] == "NoRoot" and mine["abbreviation"] == "NoRoo"
    assert mine["rules"] == [{"rule": 'error(vm) :- inventory:servers(vm, "root")',
                              "name": "root", "comment": "servers running as root"}]
    assert congress.api("show_library_policy", "NoRoot") == mine
    duplicate = congress.api_answer("create_library_policy", {"name": "NoRoot", "rules": []})
    assert duplicate["status"] == 409 and "already exists" in duplicate["message"]

    # HostCapacity reads a push datasource named "inventory" (servers(id, host), hosts(host,
    # capacity)); created from the library, it reports a host over its capacity
    congress.json("datasource", "create", "push", "inventory")
    congress.ok("datasource", "row", "update", "inventory", "servers",
                '[["vm1", "h1"], ["vm2", "h1"]]')
    congress.ok("datasource", "row", "update", "inventory", "hosts", '[["h1", 1]]')
    live = congress.api("create_policy", None, library_policy_id="HostCapacity")
    assert live["name"] == "HostCapacity" and live["abbreviation"] == "HostC"
    assert [r["rule"] for r in live["rules"]] == [r["rule"] for r in host_capacity["rules"]]
    assert all(set(r) == {"id", "name", "rule", "comment"} for r in live["rules"])
    assert congress.value("policy", "row", "list", "HostCapacity", "error") == ["h1 2 1"]
    assert congress.ok("policy", "rule", "list", "HostCapacity").count("// ID: ") == 2
    again = congress.api_answer("create_policy", None, library_policy_id=host_capacity["id"])
    assert again["status"] == 409 and "already exists" in again["message"]

    assert congress.api("delete_library_policy", mine["id"])["name"] == "NoRoot"
    gone = congress.api_answer("show_library_policy", "NoRoot")
    assert gone["status"] == 404 and gone["body"]["error"]["message"] == \
        "No library policy NoRoot"
    congress.ok("policy", "delete", "HostCapacity")
    congress.ok("datasource", "delete", "inventory")


def test_execute_actions(congress: Congress):
    congress.json("datasource", "create", "push", "acts")
    # the push driver has no actions: a clear 400, through both kinds of execute
    answer = congress.api_answer("execute_datasource_action", "acts", "execute",
                                 {"name": "servers.pause", "args": {"positional": ["vm1"]}})
    assert answer["status"] == 400
    assert answer["body"]["error"]["message"] == \
        "datasource acts (driver push) has no action 'servers.pause'; its actions: none"
    answer = congress.api_answer("execute_policy_action", "classification", "execute",
                                 False, False, {"name": "acts:servers.pause"})
    assert answer["status"] == 400 and "has no action 'servers.pause'" in answer["message"]
    answer = congress.api_answer("execute_policy_action", "classification", "execute",
                                 False, False, {"name": "no-colon"})
    assert answer["status"] == 400 and "<datasource>:<action>" in answer["message"]
    assert congress.api("request_refresh", "acts") == {}
    congress.ok("datasource", "delete", "acts")


# ---------------------------------------------------------------- errors as the client prints them


def test_errors_are_clear(congress: Congress):
    # an unknown policy: the client resolves names itself for show; the server says the rest
    assert congress.fails("policy", "show", "nosuch").stderr == \
        "Resource nosuch not found (HTTP 404)\n"
    for args in (("policy", "row", "list", "nosuch", "error"),
                 ("policy", "rule", "list", "nosuch"),
                 ("policy", "table", "list", "nosuch"),
                 ("policy", "rule", "create", "nosuch", "p(1)"),
                 ("policy", "delete", "nosuch"),
                 ("policy", "simulate", "nosuch", "p(x)", "p+(1)", "action")):
        failed = congress.fails(*args)
        assert failed.rc == 1
        assert failed.stderr == "No such policy: nosuch (HTTP 404)\n", failed
    # Congress's default policies stay
    for name in ("classification", "action"):
        assert congress.fails("policy", "delete", name).stderr == \
            f"Cannot delete system-maintained policy {name} (HTTP 404)\n"

    # a syntax error in a rule: where, and what was expected
    syntax = congress.fails("policy", "rule", "create", "classification", "error(x) :- ")
    assert syntax.rc == 1
    assert syntax.stderr.startswith("invalid rule: ") and syntax.stderr.endswith(
        "(HTTP 400)\n")
    assert ":1:12:" in syntax.stderr and "expected a body literal" in syntax.stderr
    unsafe = congress.fails("policy", "rule", "create", "classification", "error(x) :- p(y)")
    assert "x" in unsafe.stderr and "(HTTP 400)" in unsafe.stderr

    congress.json("policy", "create", "twice")
    duplicate = congress.fails("policy", "create", "twice")
    assert duplicate.stderr == "Policy with name twice already exists (HTTP 409)\n"
    congress.ok("policy", "delete", "twice")
    long_abbreviation = congress.fails("policy", "create", "x", "--abbreviation", "toolong")
    assert long_abbreviation.stderr == \
        "abbreviation 'toolong' is longer than 5 characters (HTTP 400)\n"
    z3 = congress.fails("policy", "create", "x", "--kind", "z3")
    assert "unknown policy kind 'z3'" in z3.stderr and "(HTTP 400)" in z3.stderr

    driver = congress.fails("datasource", "create", "pusj", "x")
    assert "no driver named 'pusj'; did you mean push?" in driver.stderr
    assert "(HTTP 400)" in driver.stderr
    config = congress.fails("datasource", "create", "push", "x", "--config", "tables=t")
    assert config.stderr.startswith("datasource x: config 'tables' is not valid JSON")
    assert config.stderr.endswith("(HTTP 400)\n")
    unknown = congress.fails("datasource", "create", "push", "x", "--config", "user=admin")
    assert "driver push has no config key 'user'" in unknown.stderr
    for args in (("datasource", "row", "list", "nosuch", "t"),
                 ("datasource", "status", "show", "nosuch"),
                 ("datasource", "table", "list", "nosuch")):
        assert congress.fails(*args).stderr == "No such datasource: nosuch (HTTP 404)\n"
    assert congress.fails("datasource", "delete", "nosuch").stderr == \
        "Resource nosuch not found (HTTP 404)\n"  # the client's fallback, as for Congress before Ocata
    not_json = congress.run("datasource", "row", "update", "x", "t", "not json")
    assert not_json.rc == 2 and "invalid loads value: 'not json'" in not_json.stderr


# ---------------------------------------------------------------- the real script


def test_the_openstack_script_itself(congress: Congress):
    """A few commands through the ``openstack`` script (a process each, as users run it)."""
    listed, failed = congress.binaries(
        ("policy", "list", "-f", "value", "-c", "name"),
        ("policy", "row", "list", "nosuch", "error"))
    assert listed.rc == 0 and listed.stdout.splitlines()[:2] == ["classification", "action"]
    assert (failed.rc, failed.stdout, failed.stderr) == (
        1, "", "No such policy: nosuch (HTTP 404)\n")


# ---------------------------------------------------------------- nothing left out


def _whole_module_ran(request: pytest.FixtureRequest) -> bool:
    module = sys.modules[__name__]
    tests = {n for n in dir(module) if n.startswith("test_")}
    selected = {i.name for i in request.session.items if getattr(i, "module", None) is module}
    return tests <= selected


def test_every_client_command_is_covered(congress: Congress, request: pytest.FixtureRequest):
    assert "policy create" in congress.commands and len(congress.commands) >= 29
    if not _whole_module_ran(request):
        pytest.skip("run the whole module to check which commands it covers")
    assert sorted(set(congress.commands) - congress.commands_run) == []


def test_every_client_method_is_covered(congress: Congress, request: pytest.FixtureRequest):
    if not _whole_module_ran(request):
        pytest.skip("run the whole module to check which Client methods it covers")
    # every method a command calls is covered by that command; the rest are called directly
    by_commands = {
        "create_datasource", "create_policy", "create_policy_rule", "delete_datasource",
        "delete_policy", "delete_policy_rule", "execute_policy_action", "list_api_versions",
        "list_datasource_actions", "list_datasource_rows", "list_datasource_status",
        "list_datasource_tables", "list_datasources", "list_drivers", "list_policy",
        "list_policy_rows", "list_policy_rules", "list_policy_tables", "request_refresh",
        "show_datasource_schema", "show_datasource_table", "show_datasource_table_schema",
        "show_driver", "show_policy", "show_policy_rule", "show_policy_table",
        "update_datasource_rows"}
    assert by_commands <= set(congress.methods)
    assert sorted(set(congress.methods) - by_commands - congress.methods_called) == []

