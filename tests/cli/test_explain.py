"""Tests of ``charter explain``: proof trees, why-not answers, JSON output and user errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from charter.cli.explain import explain_command
from charter.cli.main import app

runner = CliRunner()

if not any(c.name == "explain" for c in app.registered_commands):  # until main.py has it
    app.command("explain")(explain_command)

CLOUD = ("network.dl", "audit.dl", "--data", "cloud.json", "--data", "exempt.yaml")


def charter(*args: str):
    return runner.invoke(app, list(args))


def explained(*args: str) -> str:
    result = charter("explain", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def explained_json(*args: str) -> list:
    return json.loads(explained(*args, "--format", "json"))


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_derived_row_prints_its_proof_tree():
    out = explained(*CLOUD, "--row", 'error("vm3")')
    lines = out.splitlines()
    assert lines[0].startswith('network:error("vm3")  <= network: error(vm) :- nova:servers(id=vm)')
    assert 'with vm="vm3", port="p3", net="pub"' in lines[0]
    assert '── nova:servers("vm3", "cache", "h3"' in out
    assert "fact of datasource neutronv2" in out
    assert 'network:public_network("pub")  <= network: public_network(net)' in out
    assert 'not grouped(port): no row matches network:grouped("p3")' in out


def test_a_missing_row_prints_why_not():
    out = explained(*CLOUD, "--row", 'network:error("vm1")')
    assert out.startswith('network:error("vm1") is not derived: no rule of network:error')
    assert (
        'fails at nova:servers(id=vm, 3="ERROR"): no row of nova:servers matches '
        'nova:servers(id="vm1", 3="ERROR")' in out
    )
    assert "(differs in status)" in out
    assert 'fails at not grouped(port): network:grouped("p1") exists' in out
    assert 'neutronv2:security_group_port_bindings("p1", "sg-web")  fact of datasource' in out


def test_a_pattern_explains_each_matching_row():
    (answer,) = explained_json(*CLOUD, "--row", "network:warning(vm, m)")
    assert answer["present"] is True and answer["row"] == ["vm3", "b-host"]
    assert answer["children"][1]["call"] == 'lt("b-host", "c")'
    answers = explained_json(*CLOUD, "--row", "nova:servers(id=x)")
    assert [a["row"][0] for a in answers] == ["vm1", "vm2", "vm3"]
    answers = explained_json(*CLOUD, "--row", "nova:servers(id=x)", "--limit", "1")
    assert len(answers) == 1
    (answer,) = explained_json(*CLOUD, "--row", "audit:warning(vm, m)")
    assert answer["present"] is False and answer["row"] == [None, None]


def test_cross_policy_facts_from_data_and_json_shape():
    (answer,) = explained_json(*CLOUD, "--row", 'audit:warning("vm3", "on a public network")')
    assert answer["present"] is False
    (candidate,) = answer["candidates"]
    assert candidate["policy"] == "audit"
    assert [m["table"] for m in candidate["matched"]] == [
        "neutronv2:ports",
        "network:public_network",
    ]
    failed = candidate["failed"]
    assert failed["kind"] == "negation" and failed["pattern"] == 'audit:exempt("vm3")'
    assert failed["proof"] == {
        "kind": "fact",
        "table": "audit:exempt",
        "row": ["vm3"],
        "rule": None,
        "policy": "audit",
        "bindings": {},
        "children": [],
        "origin": "policy",
        "source": "audit",
    }


def test_named_columns_in_the_row():
    (answer,) = explained_json(*CLOUD, "--row", 'nova:servers(id="vm2", status=s)')
    assert answer["present"] is True and answer["kind"] == "fact"
    assert answer["row"][0] == "vm2"


def test_recursion_aggregates_and_alternatives(tmp_path):
    policy = write(
        tmp_path,
        "g.dl",
        """
        reach(x, y) :- edge(x, y)
        reach(x, z) :- reach(x, y), edge(y, z)
        fanout(x, n) :- edge(x, _), n = count : { edge(x, _) }
    """,
    )
    data = write(tmp_path, "d.json", json.dumps({"g:edge": [["a", "b"], ["b", "a"], ["a", "c"]]}))
    out = explained(policy, "--data", data, "--row", 'reach("a", "a")')
    assert out.splitlines()[:3] == [
        'g:reach("a", "a")  <= g: reach(x, z) :- reach(x, y), edge(y, z)  with x="a", z="a", y="b"',
        '├── g:reach("a", "b")  <= g: reach(x, y) :- edge(x, y)  with x="a", y="b"',
        '│   └── g:edge("a", "b")  fact of policy g',
    ]
    out = explained(policy, "--data", data, "--row", 'fanout("a", n)', "--examples", "1")
    assert 'n = count : { edge(x, _) }: count is 2 for x="a" (2 rows)' in out
    assert "... and 1 more" in out
    out = explained(policy, "--data", data, "--row", 'reach("b", "c")', "--all")
    assert "alternative derivation" not in out  # its only other derivation goes through it
    data2 = write(tmp_path, "d2.json", json.dumps({"g:edge": [["a", "b"], ["b", "c"], ["a", "c"]]}))
    out = explained(policy, "--data", data2, "--row", 'reach("a", "c")', "--all")
    assert "alternative derivation 2:" in out


def test_errors_are_printed_as_other_verbs_print_them(tmp_path):
    result = charter("explain", *CLOUD, "--row", "warning(vm, m)")
    assert result.exit_code == 1
    assert "must name its policy: write one of network:warning, audit:warning" in result.stderr
    result = charter("explain", *CLOUD, "--row", "error(")
    assert result.exit_code == 1 and "--row:1:" in result.stderr
    assert "error[parse_error]" in result.stderr
    result = charter("explain", *CLOUD, "--row", 'network:eror("vm1")')
    assert result.exit_code == 1
    assert "unknown table network:eror; did you mean network:error?" in result.stderr
    result = charter("explain", *CLOUD, "--row", 'network:error("vm1", 2)')
    assert result.exit_code == 1 and "has 2 values; network:error has 1 columns" in result.stderr
    bad = write(tmp_path, "bad.dl", "error(x) :- ")
    result = charter("explain", bad, "--row", "error(1)")
    assert result.exit_code == 1 and "bad.dl:1:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_pipe_gets_whole_lines(tmp_path):
    long = "x" * 150
    policy = write(tmp_path, "w.dl", "error(x) :- ext:t(x)")
    data = write(tmp_path, "d.json", json.dumps({"ext:t": [[long]]}))
    out = explained(policy, "--data", data, "--row", f'error("{long}")')
    assert f'ext:t("{long}")  fact of datasource ext' in out
