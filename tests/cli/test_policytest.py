"""Tests of ``charter test``: cases, expectations, the incremental re-run, coverage, reports."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import junitparser
import pytest
from junitparser import xunit2
from typer.testing import CliRunner

import charter.engine.engine as engine_module
from charter.cli.main import app

ROOT = Path(__file__).parents[2]
runner = CliRunner()

POLICY = """\
// Servers that failed, and the flavors servers may use.
error(vm) :- nova:servers(id=vm, status="ERROR")
warning(vm, flavor) :-
    nova:servers(id=vm, flavor_id=f),
    nova:flavors(id=f, name=flavor),
    not permitted(flavor)
permitted("m1.small")
unused(vm) :- nova:servers(id=vm, status="SHELVED")
"""

TESTS = """\
policies: [ops.dl]
fixtures:
  servers:
    data:
      nova:servers:
        - {id: vm1, status: ERROR, flavor_id: "1"}
        - {id: vm2, status: ACTIVE, flavor_id: "2"}
  flavors:
    data:
      nova:flavors:
        - {id: "1", name: m1.small}
        - {id: "2", name: m1.huge}
cases:
  - name: a failed server is an error
    fixtures: [servers]
    expect:
      error: [vm1]

  - name: a flavor not permitted is a warning
    fixtures: [servers, flavors]
    expect:
      warning:
        contains: [[vm2, m1.huge]]
        excludes: [[vm1, m1.small]]
      error: [[vm1]]
"""


def charter(*args: str):
    return runner.invoke(app, ["test", *args])


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def suite(tmp_path) -> Path:
    write(tmp_path, "ops.dl", POLICY)
    write(tmp_path, "ops_test.yaml", TESTS)
    return tmp_path


def line_of(path: str | Path, fragment: str) -> int:
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if fragment in line:
            return number
    raise AssertionError(fragment)


# ---------------------------------------------------------------- the repository's examples


def test_the_examples_pass():
    result = charter(str(ROOT / "examples"), "--coverage")
    assert result.exit_code == 0, result.stdout
    found = re.search(r"^PASS: (\d+)/(\d+)$", result.stdout, re.M)
    assert found and found[1] == found[2] and int(found[1]) >= 10, result.stdout
    assert "FAIL" not in result.stdout and "ERROR:" not in result.stdout
    assert re.search(r"examples/cloud\.dl: (\d+)/\1 rules covered \(100\.0%\)", result.stdout)


# ---------------------------------------------------------------- failing and passing


def test_a_broken_policy_fails_with_the_diff_and_passes_when_fixed(suite):
    test_file = str(suite / "ops_test.yaml")
    policy = suite / "ops.dl"
    policy.write_text(POLICY.replace('status="ERROR"', 'status="EROR"'))
    result = charter(str(suite), "--seed", "5")
    assert result.exit_code == 1
    out = result.stdout
    case_line = line_of(test_file, "a failed server is an error")
    table_line = line_of(test_file, "error: [vm1]")
    assert out.startswith("FAILURES\n" + "-" * 80 + "\n")
    assert f"{test_file}:{case_line}: a failed server is an error: FAIL" in out
    assert (
        f"{test_file}:{table_line}: ops:error: expected exactly these rows\n"
        '    missing:\n      ["vm1"]' in out
    )
    assert "seed: 5 (replay with --seed 5)" in out
    assert out.rstrip().endswith("PASS: 0/2\nFAIL: 2/2")
    policy.write_text(POLICY)
    result = charter(str(suite))
    assert result.exit_code == 0, result.stdout
    assert result.stdout.rstrip().endswith("-" * 80 + "\nPASS: 2/2")
    assert "FAILURES" not in result.stdout


def test_unexpected_rows_and_subsets_that_do_not_hold(suite):
    write(
        suite,
        "ops_test.yaml",
        TESTS.replace("error: [vm1]", "error: [vm2]")
        .replace("excludes: [[vm1, m1.small]]", "excludes: [[vm2, m1.huge]]")
        .replace("contains: [[vm2, m1.huge]]", "contains: [[vm3, m1.huge]]"),
    )
    out = charter(str(suite), "--seed", "1").stdout
    assert '    missing:\n      ["vm2"]\n    unexpected:\n      ["vm1"]' in out
    assert (
        "ops:warning: expected to contain these rows and exclude those\n"
        '    missing:\n      ["vm3", "m1.huge"]\n'
        '    unexpected:\n      ["vm2", "m1.huge"]'
    ) in out


def test_run_selects_cases_by_regex(suite):
    result = charter(str(suite), "--run", "flavor", "-v")
    assert result.exit_code == 0, result.stdout
    assert "a flavor not permitted is a warning: PASS" in result.stdout
    assert "a failed server" not in result.stdout
    assert result.stdout.rstrip().endswith("PASS: 1/1")
    result = charter(str(suite), "--run", "nothing like it")
    assert result.exit_code == 2 and "no case matches --run" in result.stderr
    result = charter(str(suite), "--run", "(")
    assert result.exit_code == 2 and "not a regular expression" in result.stderr


def test_fixtures_and_the_file_policies_extend_a_case(suite):
    write(
        suite,
        "more_test.yaml",
        """\
        policies: [ops.dl]
        fixtures:
          one: {data: {"nova:servers": [{id: a, status: ERROR}]}}
          two: {data: {"nova:servers": [{id: b, status: ERROR}]}}
        cases:
          - name: both fixtures and the case's own rows
            fixtures: [one, two]
            data: {"nova:servers": [{id: c, status: ERROR}]}
            expect: {error: [a, b, c]}
          - name: one fixture only
            fixtures: [two]
            expect: {error: [b]}
        """,
    )
    result = charter(str(suite / "more_test.yaml"))
    assert result.exit_code == 0, result.stdout


def test_an_unknown_table_in_an_expectation_fails_with_a_suggestion(suite):
    write(suite, "ops_test.yaml", TESTS.replace("error: [vm1]", "eror: []"))
    out = charter(str(suite)).stdout
    assert "unknown table ops:eror; did you mean ops:error?" in out


def test_a_policy_that_does_not_compile_is_an_error_with_its_diagnostic(suite):
    (suite / "ops.dl").write_text(POLICY + "bad(x) :- nova:servers(id=x, colour=y)\n")
    result = charter(str(suite))
    assert result.exit_code == 1
    assert "ops.dl:9:37: error[unknown_column]" in result.stdout
    assert "bad(x) :- nova:servers(id=x, colour=y)" in result.stdout
    assert ": a failed server is an error: ERROR" in result.stdout
    assert result.stdout.rstrip().endswith("PASS: 0/2\nERROR: 2/2")


# ---------------------------------------------------------------- the incremental re-run


def test_the_incremental_run_catches_an_engine_that_answers_differently(suite, monkeypatch):
    """A delta rule that derives a row it should not: the fresh run (whole evaluation) is
    right, the incremental one is not, and charter test says so with the seed."""
    original = engine_module.update_counting

    def derives_a_ghost(stratum, state, changed):
        delta = original(stratum, state, changed)
        (table,) = stratum.tables
        relation = state.relation(table)
        if table.endswith(":error") and ("ghost",) not in relation:
            relation.add(("ghost",))
            delta.plus.add(("ghost",))
        return delta

    monkeypatch.setattr(engine_module, "update_counting", derives_a_ghost)
    result = charter(str(suite), "--seed", "42", "--run", "failed server")
    assert result.exit_code == 1
    out = result.stdout
    case_line = line_of(suite / "ops_test.yaml", "a failed server is an error")
    assert f"ops_test.yaml:{case_line}: incremental ops:error: the incremental run (" in out
    assert "differs from the fresh one: an engine bug" in out
    assert 'unexpected:\n      ["ghost"]' in out
    assert "seed: 42 (replay with --seed 42)" in out
    plan = re.search(r"the incremental run \((.*?)\)", out)[1]
    assert "then every row deleted and inserted again" in plan
    assert charter(str(suite), "--seed", "42", "--run", "failed server").stdout == out
    for seed in ("1", "2", "3"):  # every order goes through the delta rules
        assert 'unexpected:\n      ["ghost"]' in charter(str(suite), "--seed", seed).stdout
    monkeypatch.setattr(engine_module, "update_counting", original)
    assert charter(str(suite), "--seed", "42").exit_code == 0


def test_many_seeds_agree_on_recursion_negation_and_aggregates(tmp_path):
    write(
        tmp_path,
        "graph.dl",
        """\
        reach(x, y) :- edge(x, y)
        reach(x, z) :- reach(x, y), edge(y, z)
        unreached(x) :- node(x), not reach("a", x)
        fanout(x, n) :- node(x), n = count : { edge(x, _) }
        big(x) :- fanout(x, n), n > 1
        """,
    )
    write(
        tmp_path,
        "graph_test.yaml",
        """\
        policies: [graph.dl]
        cases:
          - name: a cycle and a tail
            data:
              graph:edge: [[a, b], [b, c], [c, a], [c, d], [e, f]]
              graph:node: [[a], [b], [c], [d], [e], [f]]
            expect:
              unreached: [e, f]
              big: [c]
              reach: {contains: [[a, a], [a, d]], excludes: [[a, e]]}
        """,
    )
    for seed in range(1, 9):
        result = charter(str(tmp_path), "--seed", str(seed))
        assert result.exit_code == 0, result.stdout


# ---------------------------------------------------------------- errors and simulate


ERRORS = """\
cases:
  - name: the column is misspelled
    policies:
      - name: p
        text: |
          error(vm) :- nova:servers(id=vm, stauts="ERROR")
    error: {code: unknown_column, line: 6, col: 51}

  - name: a code that is not the one raised
    policies: [{name: p, text: "error(vm) :- nova:servers(id=vm, stauts=1)"}]
    error: {code: unsafe_variable}

  - name: an error that does not happen
    policies: [{name: p, text: "error(vm) :- nova:servers(id=vm)"}]
    error: {code: unknown_column}

  - name: a fixture row may omit columns but not misspell them
    policies: [{name: p, text: "error(vm) :- nova:servers(id=vm)"}]
    data:
      nova:servers: [{id: vm1, staus: ERROR}]
    error: {code: unknown_column, line: 20, col: 22, message: did you mean status}
"""


def test_error_expectations(tmp_path):
    path = write(tmp_path, "errors_test.yaml", ERRORS)
    out = charter(path, "-v").stdout
    assert f"{path}:2: the column is misspelled: PASS" in out
    assert f"{path}:17: a fixture row may omit columns but not misspell them: PASS" in out
    assert (
        f"{path}:9: error: expected error[unsafe_variable], got:\n"
        f"    {path}:10:73: error[unknown_column]"
    ) in out
    assert (
        f"{path}:13: error: expected error[unknown_column], but the case loaded without an error"
    ) in out
    assert out.rstrip().endswith("PASS: 2/4\nFAIL: 2/4")


def test_object_rows_omit_columns_in_fixtures(tmp_path):
    path = write(
        tmp_path,
        "null_test.yaml",
        """\
        cases:
          - name: omitted columns are null
            policies:
              - name: p
                text: 'owner(vm, t) :- nova:servers(id=vm, tenant_id=t)'
            data:
              nova:servers: [{id: vm1}, {id: vm2, tenant_id: shop}]
            expect:
              owner: [[vm1, null], [vm2, shop]]
              nova:servers:
                contains: [{id: vm1}]
        """,
    )
    result = charter(path)
    assert result.exit_code == 0, result.stdout


SIMULATE = """\
policies: [ops.dl]
cases:
  - name: a server failing adds an error
    data:
      nova:servers: [{id: vm1, status: ACTIVE}]
    simulate:
      sequence: 'nova:servers+("vm2", "n", "h", "ERROR", "t", "u", "i", "1", "z", "c", "d")'
      delta:
        error: {added: [vm2]}
        warning: {added: [], removed: []}
  - name: a wrong delta
    simulate:
      - sequence: 'permitted-("m1.small")'
        delta: {permitted: {removed: [m1.small]}}
      - sequence: 'nova:servers+("vm2", "n", "h", "ERROR", "t", "u", "i", "1", "z", "c", "d")'
        delta: {error: {added: [vm3]}}
  - name: a sequence that does not parse
    simulate: {sequence: 'p+(', delta: {error: {}}}
"""


def test_simulate_deltas(suite):
    path = write(suite, "sim_test.yaml", SIMULATE)
    out = charter(path, "-v", "--seed", "3").stdout
    assert f"{path}:3: a server failing adds an error: PASS" in out
    line = line_of(path, "delta: {error: {added: [vm3]}}")
    assert (
        f'{path}:{line}: ops:error: simulate \'nova:servers+("vm2", "n", "h", "ERROR", '
        '"t", "u", "i", "1", "z", "c", "d")\': expected exactly these rows added\n'
        '    missing:\n      ["vm3"]\n    unexpected:\n      ["vm2"]'
    ) in out
    assert f"{path}:18: simulate: failed: " in out
    assert out.rstrip().endswith("PASS: 1/3\nFAIL: 2/3")


# ---------------------------------------------------------------- coverage


def test_coverage_as_text_and_json_lists_the_uncovered_rule(suite):
    result = charter(str(suite), "--coverage")
    assert result.exit_code == 0
    policy = str(suite / "ops.dl")
    assert (
        f"COVERAGE\n{'-' * 80}\n{policy}: 2/3 rules covered (66.7%)\n"
        f'  {policy}:8: not covered: unused(vm) :- nova:servers(id=vm, status="SHELVED")\n'
        "TOTAL: 2/3 rules covered (66.7%)"
    ) in result.stdout
    verbose = charter(str(suite), "--coverage", "-v").stdout
    assert (
        f"  {policy}:2: covered by {suite / 'ops_test.yaml'}: a failed server is an error; "
        f"{suite / 'ops_test.yaml'}: a flavor not permitted is a warning"
    ) in verbose
    report = json.loads(charter(str(suite), "--coverage", "--format", "json").stdout)
    coverage = report["coverage"]
    assert (coverage["covered"], coverage["total"], coverage["percent"]) == (2, 3, 66.7)
    (entry,) = coverage["files"]
    assert entry["file"] == policy
    rules = {r["line"]: r for r in entry["rules"]}
    assert rules[8]["covered"] is False and rules[8]["cases"] == []
    assert rules[3]["cases"] == [f"{suite / 'ops_test.yaml'}: a flavor not permitted is a warning"]


def test_coverage_counts_rows_derived_inside_a_simulation(suite):
    path = write(
        suite,
        "shelve_test.yaml",
        """\
        policies: [ops.dl]
        cases:
          - name: shelving
            simulate:
              sequence: 'nova:servers+("v", "n", "h", "SHELVED", "t", "u", "i", "1", "z", "c", "d")'
              delta: {unused: {added: [v]}}
        """,
    )
    out = charter(path, "--coverage").stdout
    assert "ops.dl: 1/3 rules covered" in out and "ops.dl:8: not covered" not in out


# ---------------------------------------------------------------- formats


def test_json_report(suite):
    (suite / "ops.dl").write_text(POLICY.replace('status="ERROR"', 'status="EROR"'))
    result = charter(str(suite), "--format", "json", "--seed", "9")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["seed"] == 9
    assert report["summary"] == {"pass": 0, "fail": 2, "error": 0, "total": 2}
    first = report["cases"][0]
    assert (first["name"], first["status"], first["line"]) == (
        "a failed server is an error",
        "fail",
        14,
    )
    (failure,) = first["failures"]
    assert failure["what"] == "ops:error" and failure["missing"] == [["vm1"]]
    assert failure["file"] == str(suite / "ops_test.yaml") and failure["line"] == 17


def test_junit_report_reads_as_jenkins_reads_it(suite, tmp_path_factory):
    (suite / "ops.dl").write_text(POLICY.replace('status="ERROR"', 'status="EROR"'))
    write(
        suite,
        "broken_test.yaml",
        """\
        cases:
          - name: does not parse
            policies: [{name: q, text: "p(x :- q(x)"}]
            expect: {p: []}
        """,
    )
    result = charter(str(suite), "--format", "junit", "--run", "failed|parse")
    assert result.exit_code == 1
    xml = tmp_path_factory.mktemp("junit") / "report.xml"
    xml.write_text(result.stdout)
    report = xunit2.JUnitXml.fromfile(str(xml))
    suites = {s.name: s for s in report}
    assert set(suites) == {str(suite / "ops_test.yaml"), str(suite / "broken_test.yaml")}
    ops = suites[str(suite / "ops_test.yaml")]
    assert (ops.tests, ops.failures, ops.errors) == (1, 1, 0)
    (case,) = list(ops)
    assert case.name == "a failed server is an error"
    (failure,) = case.result
    assert isinstance(failure, junitparser.Failure)
    assert 'missing:\n      ["vm1"]' in failure.text and "ops:error" in failure.message
    broken = suites[str(suite / "broken_test.yaml")]
    assert (broken.tests, broken.failures, broken.errors) == (1, 0, 1)
    (error,) = next(iter(broken)).result
    assert isinstance(error, junitparser.Error) and "error[parse_error]" in error.message


# ---------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("cases:\n  - name: a\n    expect: {p: 3}\n", "3:17", "a table's expectation is a list"),
        ("cases:\n  - name: a\n    expct: {p: []}\n", "3:5", "unknown key 'expct'; a case has"),
        (
            "cases:\n  - name: a\n    fixtures: [nope]\n    expect: {p: []}\n",
            "3:16",
            "unknown fixture 'nope'",
        ),
        (
            "cases:\n  - name: a\n    policies: [missing.dl]\n    expect: {p: []}\n",
            "3:16",
            "no such file",
        ),
        (
            "cases:\n  - name: a\n    policies: [{library: Nope}]\n    expect: {p: []}\n",
            "3:26",
            "library has no policy 'Nope'",
        ),
        ("cases:\n  - name: a\n", "2:5", "a case needs expect:, error: or simulate:"),
        (
            "cases:\n  - name: a\n    expect: {p: []}\n  - name: a\n    expect: {p: []}\n",
            "4:11",
            "case 'a' is also at line 2",
        ),
        ("cases: [\n", "2:1", "error[test_syntax]: malformed YAML"),
        (
            "cases:\n  - name: a\n    data:\n      n:servers: [[1]]\n      n:servers: [[2]]\n"
            "    expect: {p: []}\n",
            "5:7",
            "key 'n:servers' is written twice in one mapping (first at line 4)",
        ),
        ("- 1\n", "1:1", "a test file is a mapping"),
        (
            "cases:\n  - name: a\n    data: {servers: []}\n    expect: {p: []}\n",
            "3:21",
            "must name a table as name:table",
        ),
    ],
)
def test_a_bad_test_file_is_a_usage_error_at_its_place(tmp_path, text, where, words):
    path = write(tmp_path, "bad_test.yaml", text)
    result = charter(path)
    assert result.exit_code == 2, result.stdout
    assert f"{path}:{where}: error[" in result.stderr, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_paths_and_folders_without_tests_are_usage_errors(tmp_path):
    result = charter(str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "no such file or folder" in result.stderr
    result = charter(str(tmp_path))
    assert result.exit_code == 2 and "no test files (*_test.yaml)" in result.stderr


# ---------------------------------------------------------------- docs/testing.md


def _doc_steps(text: str) -> list[tuple[str, str, str]]:
    """``("file", name, text)`` for each block titled with a file name and ``("run", command,
    expected output)`` for each ``$ ...`` line of the console blocks, in the page's order."""
    steps: list[tuple[str, str, str]] = []
    for info, body in re.findall(r"^```(.*?)\n(.*?)^```", text, re.M | re.S):
        title = re.search(r'title="(.*?)"', info)
        if title:
            steps.append(("file", title[1], body))
        elif info.strip() == "console":
            for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
                command, _, output = chunk.partition("\n")
                steps.append(("run", command, output.rstrip("\n")))
    return steps


def _unseeded(text: str) -> str:
    return re.sub(r"seed: \d+ \(replay with --seed \d+\)", "seed: N (replay with --seed N)", text)


def test_the_worked_example_of_docs_testing_md_prints_what_it_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    steps = _doc_steps((ROOT / "docs" / "testing.md").read_text())
    assert sum(kind == "run" for kind, _, _ in steps) >= 5
    status = 0
    for kind, first, second in steps:
        if kind == "file":
            (tmp_path / first).write_text(second)
            continue
        if first == "echo $?":
            assert second == str(status)
            continue
        args = first.split()
        assert args[:2] == ["charter", "test"], first
        result = runner.invoke(app, args[1:])
        status = result.exit_code
        got = "\n".join(line.rstrip() for line in result.output.rstrip("\n").splitlines())
        assert _unseeded(got) == _unseeded(second), first
