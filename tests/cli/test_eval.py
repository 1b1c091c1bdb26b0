"""Tests of ``charter eval``: the output contract, data files and every kind of user error."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from charter import __version__
from charter.cli.main import app

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parents[2]
runner = CliRunner()


def charter(*args: str):
    return runner.invoke(app, list(args))


def eval_json(*args: str) -> dict:
    result = charter("eval", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def assert_user_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# ---------------------------------------------------------------- output


def test_json_output_of_a_congress_policy_over_nova_and_neutron():
    out = eval_json("network.dl", "audit.dl", "--data", "cloud.json", "--data", "exempt.yaml")
    assert out == {
        "audit:warning": [],
        "network:error": [["vm2"], ["vm3"]],
        "network:warning": [["vm3", "b-host"]],
    }


def test_json_keys_and_rows_are_sorted_across_mixed_types(tmp_path):
    policy = write(tmp_path, "mixed.dl", "error(x) :- ext:t(x)")
    data = write(tmp_path, "d.json", json.dumps({"ext:t": [["b"], [10], ["a"], [2.5], [True]]}))
    result = charter("eval", policy, "--data", data, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"mixed:error": [[2.5], [10], ["True"], ["a"], ["b"]]}


def test_table_output_names_columns_from_the_schema_else_by_position():
    result = charter(
        "eval", "network.dl", "--data", "cloud.json", "-q", "network:warning", "-q", "nova:flavors"
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "network:warning (1 row)" in out
    assert "c0" in out and "c1" in out and "b-host" in out
    assert "nova:flavors (0 rows)" in out
    result = charter("eval", "network.dl", "--data", "cloud.json", "-q", "nova:servers")
    assert "nova:servers (3 rows)" in result.stdout
    assert "host_name" in result.stdout and "compute-2" in result.stdout


def test_table_output_does_not_read_rich_markup_in_values(tmp_path):
    policy = write(tmp_path, "m.dl", "error(x) :- ext:t(x)")
    data = write(tmp_path, "d.json", '{"ext:t": [["[bold]x[/bold]"]]}')
    result = charter("eval", policy, "--data", data)
    assert "[bold]x[/bold]" in result.stdout


def test_library_yaml_policy_evaluated_with_data():
    out = eval_json("library/flavors.yaml", "--data", "flavors.yaml")
    assert out == {"DisallowedFlavors:warning": [["vm2", "m1.xlarge"]]}


def test_data_rows_of_a_policy_are_its_facts():
    without = eval_json("network.dl", "audit.dl", "--data", "cloud.json")
    assert without["audit:warning"] == [
        ["vm1", "on a public network"],
        ["vm3", "on a public network"],
    ]
    exempt = eval_json(
        "network.dl",
        "audit.dl",
        "--data",
        "cloud.json",
        "--data",
        "exempt.yaml",
        "-q",
        "audit:exempt",
    )
    assert exempt == {"audit:exempt": [["never-a-vm"], ["vm1"], ["vm3"]]}


def test_rows_as_objects_and_as_lists_give_the_same_tables(tmp_path):
    columns = ["id", "tenant_id", "name", "status", "admin_state_up", "shared"]
    rows = [["n1", "t", "a", "ACTIVE", "True", "True"], ["n2", "t", "b", "DOWN", "True", "False"]]
    policy = write(tmp_path, "p.dl", 'error(n) :- neutronv2:networks(id=n, shared="True")')
    lists = write(tmp_path, "lists.json", json.dumps({"neutronv2:networks": rows}))
    objects = [dict(zip(columns, row, strict=True)) for row in rows]
    objects[1] = dict(reversed(objects[1].items()))  # key order does not matter with a schema
    objs = write(tmp_path, "objects.json", json.dumps({"neutronv2:networks": objects}))
    assert eval_json(policy, "--data", lists) == eval_json(policy, "--data", objs)
    assert eval_json(policy, "--data", lists) == {"p:error": [["n1"]]}


def test_objects_declare_the_columns_of_a_datasource_that_is_not_a_driver(tmp_path):
    policy = write(
        tmp_path,
        "hosts.dl",
        'error(h) :- inventory:hosts(name=h, rack=r), inventory:racks(r, "down")',
    )
    data = write(
        tmp_path,
        "inv.yaml",
        "inventory:hosts:\n  - {name: h1, rack: r1}\n  - {rack: r2, name: h2}\n"
        "inventory:racks:\n  - [r1, up]\n  - [r2, down]\n",
    )
    assert eval_json(policy, "--data", data) == {"hosts:error": [["h2"]]}
    result = charter("eval", policy, "--data", data, "-q", "inventory:hosts")
    assert "name" in result.stdout and "rack" in result.stdout


def test_booleans_and_nulls_become_strings_as_in_congress(tmp_path):
    policy = write(tmp_path, "p.dl", "error(a, b, c) :- ext:t(a, b, c)")
    data = write(tmp_path, "d.json", '{"ext:t": [[true, false, null]]}')
    assert eval_json(policy, "--data", data) == {"p:error": [["True", "False", "None"]]}


def test_default_query_is_every_error_and_warning_table_that_exists(tmp_path):
    only_error = write(tmp_path, "only.dl", "error(x) :- ext:t(x)\nhelper(x) :- ext:t(x)")
    assert eval_json(only_error) == {"only:error": []}
    none = write(tmp_path, "none.dl", "helper(x) :- ext:t(x)")
    result = charter("eval", none, "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {}
    assert "--query" in result.stderr


def test_policies_reference_each_other_in_any_order():
    forward = eval_json("audit.dl", "network.dl", "--data", "cloud.json")
    backward = eval_json("network.dl", "audit.dl", "--data", "cloud.json")
    assert forward == backward


def test_the_example_prints_violations():
    result = runner.invoke(
        app, ["eval", str(ROOT / "examples/cloud.dl"), "--data", str(ROOT / "examples/cloud.json")]
    )
    assert result.exit_code == 0, result.stderr
    assert "cloud:error (2 rows)" in result.stdout
    assert "server is in ERROR state" in result.stdout
    library = ROOT / "examples/library/disallowed_flavors.yaml"
    out = eval_json(str(library), "--data", str(ROOT / "examples/cloud.json"))
    assert out == {"DisallowedFlavors:warning": [["vm-batch-1", "m1.xlarge"]]}


def test_version_and_help():
    result = charter("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"charter {__version__}"
    result = charter("eval", "--help")
    assert result.exit_code == 0
    assert "--data" in result.stdout and "--query" in result.stdout and "--format" in result.stdout


def console_examples(text: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` for each ``$ ...`` line of the ```console blocks."""
    examples: list[tuple[str, list[str]]] = []
    block = False
    for line in text.splitlines():
        if line.startswith("```"):
            block = line.startswith("```console")
        elif block and line.startswith("$ "):
            examples.append((line[2:], []))
        elif block and examples:
            examples[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in examples]


def test_docs_examples_print_what_the_docs_show(monkeypatch):
    monkeypatch.chdir(ROOT)
    examples = console_examples((ROOT / "docs/cli.md").read_text())
    assert len(examples) >= 8
    status = 0
    for command, expected in examples:
        if command == "echo $?":
            assert expected == str(status)
            continue
        args = shlex.split(command)
        assert args[0] == "charter"
        result = runner.invoke(app, args[1:])
        status = result.exit_code
        got = "\n".join(line.rstrip() for line in result.output.rstrip("\n").splitlines())
        assert got == expected, command


# ---------------------------------------------------------------- user errors


def test_query_of_an_unknown_table_suggests_one():
    result = charter("eval", "network.dl", "--data", "cloud.json", "--query", "network:eror")
    assert_user_error(result, "unknown table network:eror", "did you mean network:error?")
    assert result.stdout == ""


def test_query_must_be_qualified():
    result = charter("eval", "network.dl", "--query", "warning")
    assert_user_error(result, "policy:table", "did you mean network:warning?")


def test_syntax_error_gives_file_line_col_and_no_traceback(tmp_path):
    bad = write(tmp_path, "bad.dl", "p(x) :- q(x)\nr(x) :- s(x,\n")
    result = charter("eval", bad)
    assert_user_error(result, f"{bad}:2:13: error[parse_error]", "r(x) :- s(x,")


def test_syntax_errors_of_every_file_are_printed(tmp_path):
    one = write(tmp_path, "one.dl", "p(x) :- \n")
    two = write(tmp_path, "two.dl", "ok(1)\nq(x :- r(x)\n")
    result = charter("eval", one, two)
    assert_user_error(result, f"{one}:", f"{two}:2:")


def test_compile_errors_of_other_files_are_printed_with_syntax_errors(tmp_path):
    syntax = write(tmp_path, "syntax.dl", "p(x) :- \n")
    columns = write(tmp_path, "columns.dl", "error(x) :- nova:servers(id=x, bogus=y)\n")
    result = charter("eval", syntax, columns)
    assert_user_error(result, f"{syntax}:1:8: error[parse_error]", f"{columns}:1:38:")
    assert "warning[" not in result.stderr


def test_compile_error_names_its_place(tmp_path):
    bad = write(tmp_path, "bad.dl", "error(x) :- nova:servers(id=x, bogus=y)\n")
    result = charter("eval", bad)
    assert_user_error(result, f"{bad}:1:", "error[unknown_column]", "column name bogus")


def test_library_rule_error_points_into_the_yaml(tmp_path):
    bad = write(
        tmp_path,
        "lib.yaml",
        "name: lib\nrules:\n  - rule: p(1)\n  - rule: >\n      error(x) :- nova:serverz(x)\n",
    )
    result = charter("eval", bad)
    assert_user_error(result, f"{bad}:5:19: error[unknown_table]", "did you mean nova:servers?")


def test_bad_json_data(tmp_path):
    data = write(tmp_path, "bad.json", '{"nova:servers": [\n  ["a",]\n]}')
    result = charter("eval", "network.dl", "--data", data)
    assert_user_error(result, f"{data}:2:8: error[data_syntax]: malformed JSON")


def test_bad_yaml_data(tmp_path):
    data = write(tmp_path, "bad.yaml", "nova:servers:\n  - [a, b\n")
    result = charter("eval", "network.dl", "--data", data)
    assert_user_error(result, f"{data}:3:", "error[data_syntax]: malformed YAML")


def test_data_that_is_not_a_mapping_of_tables(tmp_path):
    data = write(tmp_path, "d.json", '{"servers": [], "nova:flavors": {"id": 1}}')
    result = charter("eval", "network.dl", "--data", data)
    assert_user_error(result, f"{data}:1:2:", "name:table", f"{data}:1:17:", "list of rows")
    data = write(tmp_path, "list.json", "[1, 2]")
    assert_user_error(charter("eval", "network.dl", "--data", data), f"{data}:1:1:")


def test_duplicate_table_in_a_data_file(tmp_path):
    data = write(tmp_path, "d.json", '{"ext:t": [[1]],\n "ext:t": [[2]]}')
    result = charter("eval", "network.dl", "--data", data)
    assert_user_error(result, f"{data}:2:2: error[duplicate_key]")


def test_row_of_the_wrong_arity_names_the_row_and_its_line(tmp_path):
    data = write(
        tmp_path,
        "d.json",
        '{\n  "nova:flavors": [\n    ["1", "tiny", 1, 512, 1, 0, 1.0],\n    ["2", "small"]\n  ]\n}',
    )
    result = charter("eval", "network.dl", "--data", data)
    assert_user_error(
        result, f"{data}:4:5: error[arity_mismatch]: row 2 of nova:flavors", "7 columns"
    )


def test_arity_of_a_policy_fact_table_comes_from_its_rules(tmp_path):
    data = write(tmp_path, "d.yaml", "audit:exempt:\n  - [vm1, extra]\n")
    result = charter("eval", "network.dl", "audit.dl", "--data", data)
    assert_user_error(result, f"{data}:2:5:", "audit:exempt has 1 columns")


def test_objects_may_omit_columns_of_a_driver_schema_but_not_name_unknown_ones(tmp_path):
    row = {"id": "f1", "name": "tiny", "vcpus": 1, "ram": 1, "disk": 1, "ephemeral": 0}
    extra = dict(row, rxtx_factor=1.0, colour="red")
    data = write(tmp_path, "d.json", json.dumps({"nova:flavors": [row, extra]}, indent=1))
    result = charter("eval", "network.dl", "--data", data)
    assert_user_error(
        result,
        "error[unknown_column]: row 2 of nova:flavors",
        "has unknown column colour",
    )
    assert "row 1 of" not in result.stderr  # rxtx_factor omitted: null, not an error
    data = write(tmp_path, "ok.json", json.dumps({"nova:flavors": [row]}))
    out = eval_json("network.dl", "--data", data, "--query", "nova:flavors")
    assert out == {"nova:flavors": [["f1", "tiny", 1, 1, 1, 0, None]]}


def test_objects_omitting_a_column_hold_null_and_a_typo_names_the_column(tmp_path):
    data = write(tmp_path, "d.yaml", "nova:servers:\n  - {id: vm1, staus: ERROR}\n")
    result = charter("eval", "network.dl", "--data", data)
    assert_user_error(result, f"{data}:2:5: error[unknown_column]", "did you mean status")
    policy = write(
        tmp_path, "p.dl", 'error(x, t) :- nova:servers(id=x, status="ERROR", tenant_id=t)'
    )
    data = write(tmp_path, "ok.yaml", "nova:servers:\n  - {id: vm1, status: ERROR}\n")
    assert eval_json(policy, "--data", data) == {"p:error": [["vm1", None]]}


def test_objects_of_a_table_without_schema_declare_the_union_of_their_keys(tmp_path):
    data = write(tmp_path, "d.yaml", "ext:t:\n  - {a: 1, b: 2}\n  - {a: 1, c: 2}\n")
    more = write(tmp_path, "e.yaml", "ext:t:\n  - {d: 4}\n")
    out = eval_json("network.dl", "--data", data, "--data", more, "--query", "ext:t")
    assert out == {"ext:t": [[1, 2, None, None], [1, None, 2, None], [None, None, None, 4]]}


def test_objects_of_a_policy_facts_table_must_share_their_keys(tmp_path):
    data = write(tmp_path, "d.yaml", "audit:exempt:\n  - {vm: a}\n  - {host: b}\n")
    result = charter("eval", "network.dl", "audit.dl", "--data", data)
    assert_user_error(result, f"{data}:3:5:", "lacks column vm", "has unknown column host")


def test_unknown_table_of_a_driver_in_the_data(tmp_path):
    data = write(tmp_path, "d.yaml", "nova:serverz: []\n")
    result = charter("eval", "network.dl", "--data", data)
    assert_user_error(result, f"{data}:1:1: error[unknown_table]", "did you mean nova:servers?")


def test_nested_values_are_errors(tmp_path):
    data = write(tmp_path, "d.json", '{"ext:t": [["a", {"b": 1}]]}')
    result = charter("eval", "network.dl", "--data", data)
    assert_user_error(result, "holds an object in column c1")


def test_missing_files(tmp_path):
    result = charter("eval", "nothere.dl")
    assert_user_error(result, "cannot read nothere.dl")
    result = charter("eval", "network.dl", "--data", "nothere.json")
    assert_user_error(result, "nothere.json: error[file_error]")


def test_usage_errors_exit_2():
    assert charter("eval").exit_code == 2
    assert charter("eval", "network.dl", "--bogus").exit_code == 2
    assert charter("eval", "network.dl", "--format", "xml").exit_code == 2
    result = charter("eval", "network.dl", "cloud.json")
    assert result.exit_code == 2 and "--data" in result.stderr


# ---------------------------------------------------------------- a real process


def test_eval_in_a_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "charter.cli.main", "eval", "network.dl", "audit.dl"]
        + ["--data", "cloud.json", "--format", "json"],
        cwd=FIXTURES,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["network:error"] == [["vm2"], ["vm3"]]
    bad = subprocess.run(
        [sys.executable, "-m", "charter.cli.main", "eval", "network.dl", "-q", "network:eror"],
        cwd=FIXTURES,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert "did you mean network:error?" in bad.stderr and "Traceback" not in bad.stderr
