"""``charter check`` and ``charter eval`` read files as Congress read them: Congress's own
library file with a rule written twice loads, an action without a service is accepted, and a
file whose name cannot name a policy is refused with a located error saying how to fix it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from charter.cli.main import app

VENDORED = Path(__file__).parents[1] / "congress_library" / "unsafe_traffic.yaml"
COLUMNS = ("security_group_id", "id", "tenant_id", "remote_group_id", "direction",
           "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix")
runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def rule_row(group: str, rule: str, protocol: object, low: object, high: object) -> dict:
    values = (group, rule, "t", "None", "ingress", "IPv4", protocol, low, high, "0.0.0.0/0")
    return dict(zip(COLUMNS, values, strict=True))


def test_check_loads_congress_unsafe_traffic_with_its_duplicate_rule_kept_once():
    """Congress's library/security_groups/unsafe_traffic.yaml writes one rule twice (Case:
    any protocol, Case: no port_min and any protocol); Congress kept the unique rules
    (congress/policy_engines/agnostic.py, persistent_insert_rules)."""
    # lint also finds two variables the file names once (singleton_variable): left as written
    result = run("check", str(VENDORED), "--disable", "singleton_variable")
    assert result.exit_code == 0, result.stdout
    assert f"{VENDORED}:85:7: warning[duplicate_rule]" in result.stdout
    assert f"note: first written at {VENDORED}:53:7" in result.stdout
    assert result.stdout.splitlines()[-1] == "0 errors, 1 warning"


def test_eval_evaluates_congress_unsafe_traffic(tmp_path):
    data = write(tmp_path, "sg.json", json.dumps({
        "neutronv2:security_group_rules": [
            rule_row("sg1", "r1", "tcp", 20, 30),  # all specified: 20 <= 22 <= 30
            rule_row("sg2", "r2", "None", 10, 100),  # any protocol (the rule written twice)
            rule_row("sg3", "r3", "udp", 20, 30),  # not blacklisted
        ],
        "SecurityGroups:secure_sg_ids": [["sg2"]],
    }))
    result = run("eval", str(VENDORED), "--data", data, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "UnsafeTraffic:error": [["sg2", "r2"]],
        "UnsafeTraffic:warning": [["sg1", "r1"], ["sg2", "r2"]],
    }
    assert f"{VENDORED}:85:7: warning[duplicate_rule]" in result.stderr


def test_a_datalog_file_with_a_rule_written_twice(tmp_path):
    policy = write(tmp_path, "ops.dl", "error(x) :- q(x)\nq(1)\nerror(x) :- q(x)\n")
    result = run("check", policy)
    assert result.exit_code == 0
    assert f"{policy}:3:1: warning[duplicate_rule]: rule error(x) :- q(x) is written twice " \
           "in policy ops; the copy is ignored" in result.stdout
    result = run("eval", policy, "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"ops:error": [[1]]}
    assert f"{policy}:3:1: warning[duplicate_rule]" in result.stderr


def test_an_action_without_a_service_is_accepted(tmp_path):
    """congress/tests/datalog/test_nonrecur.py, test_modals: ``execute[p(x)] :- q(x)`` is
    a rule of policy ``test``, whose action is ``test:p`` (agnostic.py, _execute_table:
    ``service = service or theory``)."""
    policy = write(tmp_path, "test.dl", "execute[p(x)] :- q(x)\nq(1)\n")
    result = run("check", policy)
    assert (result.exit_code, result.stdout) == (0, "0 errors, 0 warnings\n")
    result = run("eval", policy, "--query", "test:execute[test:p]", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"test:execute[test:p]": [[1]]}


def test_a_file_name_that_is_no_policy_name_is_a_located_error(tmp_path):
    """A Datalog file's policy is named by its stem, which must be an identifier as
    Congress's policy names were (agnostic.py, persistent_create_policy: "Policy name %s is
    not a valid tablename")."""
    policy = write(tmp_path, "my-policy.dl", "error(x) :- q(x, \n")
    result = run("check", policy)
    assert result.exit_code == 1
    assert (f"{policy}:1:1: error[invalid_policy_name]: policy name 'my-policy' is not an "
            "identifier") in result.stdout
    assert "rename my-policy.dl (e.g. to my_policy.dl)" in result.stdout
    assert f"{policy}:1:17: error[parse_error]" in result.stdout  # its other errors too
    result = run("eval", policy)
    assert result.exit_code == 1 and "error[invalid_policy_name]" in result.stderr


def test_a_library_name_that_is_no_policy_name_is_a_located_error(tmp_path):
    """congress/library_service/library_service.py, create_policy: "name `%s` is not a valid
    policy name"."""
    lib = write(tmp_path, "lib.yaml", "description: x\nname: web.tier\nrules: []\n")
    result = run("check", lib)
    assert result.exit_code == 1
    assert f"{lib}:2:7: error[invalid_policy_name]" in result.stdout
    assert "(e.g. web_tier)" in result.stdout
