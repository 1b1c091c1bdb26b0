"""``charter check --format json|sarif``, ``--disable``, and ``charter eval --format csv|junit``.

SARIF is validated against the OASIS SARIF 2.1.0 schema (vendored in ``schemas/``); JUnit is
read with ``junitparser``'s ``xunit2`` classes (the Jenkins ``junit-10.xsd`` flavour), and
the elements and attributes that schema requires are checked.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from junitparser.xunit2 import JUnitXml
from typer.testing import CliRunner

from charter.cli.main import app
from charter.lang.lint import WARNING_CODES

ROOT = Path(__file__).parents[2]
SARIF_SCHEMA = json.loads((Path(__file__).parent / "schemas/sarif-schema-2.1.0.json").read_text())
runner = CliRunner()

LINTED = (
    "// four lint warnings\n"
    'approved("m1.small")\n'
    "helper(x) :- nova:servers(id=x)\n"
    "error(vm) :- nova:servers(id=vm, name=n), not aproved(vm)\n"
    "warning(vm) :- nova:servers(id=vm), not approved(3)\n"
)


def charter(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def sarif_valid(log: dict) -> None:
    validator = jsonschema.Draft4Validator(
        SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


# ---------------------------------------------------------------- check --format json


def test_json_lists_every_diagnostic_and_a_summary(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "p.dl", LINTED)
    result = charter("check", "p.dl", "--format", "json")
    assert result.exit_code == 0, result.output  # warnings alone pass
    body = json.loads(result.stdout)
    got = [(d["code"], d["line"], d["col"], d["severity"]) for d in body["diagnostics"]]
    assert got == [
        ("unused_table", 3, 1, "warning"),
        ("singleton_variable", 4, 39, "warning"),
        ("unknown_table", 4, 47, "warning"),
        ("impossible_condition", 5, 37, "warning"),
    ]
    assert body["summary"] == {"errors": 0, "warnings": 4}
    assert all(d["file"] == "p.dl" for d in body["diagnostics"])


def test_json_with_errors_exits_1():
    result = charter("check", str(ROOT / "examples/mistakes/typos.dl"), "-f", "json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["summary"] == {"errors": 2, "warnings": 3}
    assert [d["code"] for d in body["diagnostics"] if d["severity"] == "error"] == [
        "unknown_column",
        "unknown_table",
    ]


# ---------------------------------------------------------------- check --format sarif


def test_sarif_validates_and_places_each_result_on_its_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    write(tmp_path / "policies", "p.dl", LINTED)
    write(tmp_path / "policies", "typos.dl", "warning(vm) :- nova:serverz(vm)\n")
    result = charter("check", "policies/p.dl", "policies/typos.dl", "--format", "sarif")
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    sarif_valid(log)
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "charter"
    rules = driver["rules"]
    ids = [r["id"] for r in rules]
    assert set(WARNING_CODES) <= set(ids) and "unknown_table" in ids
    for rule in rules:
        assert rule["help"]["text"] and rule["shortDescription"]["text"]
    found = []
    for item in run["results"]:
        assert ids[item["ruleIndex"]] == item["ruleId"]
        location = item["locations"][0]["physicalLocation"]
        region = location["region"]
        found.append(
            (
                item["ruleId"],
                item["level"],
                location["artifactLocation"]["uri"],
                region["startLine"],
                region["startColumn"],
            )
        )
    assert found == [
        ("unused_table", "warning", "policies/p.dl", 3, 1),
        ("singleton_variable", "warning", "policies/p.dl", 4, 39),
        ("unknown_table", "warning", "policies/p.dl", 4, 47),
        ("impossible_condition", "warning", "policies/p.dl", 5, 37),
        ("unknown_table", "error", "policies/typos.dl", 1, 16),
    ]
    unknown = run["results"][2]["message"]["text"]
    assert "did you mean approved?" in unknown


def test_sarif_names_a_file_outside_the_current_folder_by_its_absolute_uri(tmp_path):
    path = write(tmp_path, "p.dl", "error(x) :- q:t(x, y)\n")  # the CLI tests run in fixtures/
    log = json.loads(charter("check", path, "-f", "sarif").stdout)
    sarif_valid(log)
    (result,) = log["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == (tmp_path / "p.dl").resolve().as_uri()


def test_sarif_of_a_file_that_cannot_be_read_is_a_result_without_a_place(tmp_path):
    result = charter("check", str(tmp_path / "missing.dl"), "-f", "sarif")
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    sarif_valid(log)
    (item,) = log["runs"][0]["results"]
    assert (item["ruleId"], item["level"]) == ("file_error", "error")
    assert "locations" not in item and "cannot read" in item["message"]["text"]


def test_sarif_of_clean_policies_has_no_results():
    log = json.loads(charter("check", "network.dl", "audit.dl", "--format", "sarif").stdout)
    sarif_valid(log)
    assert log["runs"][0]["results"] == []


# ---------------------------------------------------------------- --disable


def test_disable_switches_off_each_code_given_and_never_an_error(tmp_path):
    policy = write(tmp_path, "p.dl", LINTED)
    bad = write(tmp_path, "bad.dl", "error(x) :- nova:serverz(x)\n")
    result = charter(
        "check", policy, bad, "--disable", "unused_table", "--disable", "singleton_variable"
    )
    assert result.exit_code == 1
    assert "unused_table" not in result.stdout and "singleton_variable" not in result.stdout
    assert "warning[unknown_table]" in result.stdout
    assert "error[unknown_table]" in result.stdout  # errors stay, whatever the code
    assert result.stdout.splitlines()[-1] == "1 error, 2 warnings"


def test_disable_of_an_unknown_code_is_a_usage_error():
    result = charter("check", "network.dl", "--disable", "unused_tabel")
    assert result.exit_code == 2
    words = " ".join(result.output.replace("│", " ").split())  # Rich boxes the message
    assert "unused_tabel is not a warning code; did you mean unused_table?" in words


def test_disable_accepts_the_codes_other_checks_give():
    result = charter("check", "padded.dl", "--disable", "padded_literal")
    assert result.exit_code == 0
    assert result.stdout == "0 errors, 0 warnings\n"
    assert charter("check", "network.dl", "--disable", "duplicate_rule").exit_code == 0


# ---------------------------------------------------------------- eval --format csv


def test_csv_has_a_header_and_one_record_per_row():
    result = charter(
        "eval",
        str(ROOT / "examples/cloud.dl"),
        "--data",
        str(ROOT / "examples/cloud.json"),
        "--format",
        "csv",
    )
    assert result.exit_code == 0
    records = list(csv.reader(io.StringIO(result.stdout)))
    assert records == [
        ["table", "c0", "c1"],
        ["cloud:error", "vm-batch-1", "port on another project's private network"],
        ["cloud:error", "vm-db-1", "server is in ERROR state"],
        ["cloud:warning", "vm-batch-1", "flavor not approved"],
        ["cloud:warning", "vm-db-1", "port without a security group"],
    ]


def test_csv_names_columns_from_the_schema_and_pads_narrower_tables(tmp_path):
    data = str(ROOT / "examples/cloud.json")
    one = charter("eval", "network.dl", "--data", data, "-q", "nova:flavors", "-f", "csv")
    assert list(csv.reader(io.StringIO(one.stdout)))[:2] == [
        ["table", "id", "name", "vcpus", "ram", "disk", "ephemeral", "rxtx_factor"],
        ["nova:flavors", "2", "m1.small", "1", "2048", "20", "0", "1.0"],
    ]
    empty = charter("eval", "network.dl", "-q", "nova:flavors", "-f", "csv")
    assert empty.stdout == "table,id,name,vcpus,ram,disk,ephemeral,rxtx_factor\n"
    policy = write(tmp_path, "t.dl", 'a("x, \\"quoted\\"", 1)\nb(2.5)\n')
    both = charter("eval", policy, "-q", "t:a", "-q", "t:b", "-f", "csv")
    assert list(csv.reader(io.StringIO(both.stdout))) == [
        ["table", "c0", "c1"],
        ["t:a", 'x, "quoted"', "1"],
        ["t:b", "2.5", ""],
    ]


# ---------------------------------------------------------------- eval --format junit

JUNIT_10 = {  # what Jenkins's junit-10.xsd requires and allows, in order
    "testsuites": (
        {"name", "time", "tests", "failures", "disabled", "errors"},
        set(),
        ["testsuite"],
    ),
    "testsuite": (
        {
            "name",
            "tests",
            "failures",
            "errors",
            "time",
            "disabled",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
            "version",
        },
        {"name", "tests"},
        ["properties", "testcase", "system-out", "system-err"],
    ),
    "testcase": (
        {"name", "assertions", "time", "classname", "status"},
        {"name"},
        ["skipped", "error", "failure", "system-out", "system-err"],
    ),
    "failure": ({"message", "type"}, set(), []),
    "system-out": (set(), set(), []),
}


def junit_10(element: ET.Element) -> None:
    """The element and its children fit junit-10.xsd: known attributes, required ones
    present, children of allowed kinds in the schema's order."""
    allowed, required, children = JUNIT_10[element.tag]
    assert set(element.attrib) <= allowed, (element.tag, element.attrib)
    assert required <= set(element.attrib), (element.tag, element.attrib)
    order = [children.index(child.tag) for child in element]
    assert order == sorted(order), (element.tag, [c.tag for c in element])
    for child in element:
        junit_10(child)


def test_junit_has_a_case_per_table_and_a_failure_per_violation_row(tmp_path):
    result = charter(
        "eval",
        str(ROOT / "examples/cloud.dl"),
        str(ROOT / "examples/library/disallowed_flavors.yaml"),
        "--data",
        str(ROOT / "examples/cloud.json"),
        "--format",
        "junit",
        "-q",
        "cloud:error",
        "-q",
        "cloud:warning",
        "-q",
        "cloud:approved_flavor",
        "-q",
        "DisallowedFlavors:warning",
    )
    assert result.exit_code == 0  # violations are output, not failure
    junit_10(ET.fromstring(result.stdout))
    xml = JUnitXml.fromstring(result.stdout)
    suites = {suite.name: suite for suite in xml}
    assert list(suites) == ["cloud", "DisallowedFlavors"]
    assert (xml.tests, xml.failures) == (4, 3)
    cases = {case.name: case for case in suites["cloud"]}
    assert list(cases) == ["cloud:error", "cloud:warning", "cloud:approved_flavor"]
    errors = cases["cloud:error"].result
    assert [(f.type, f.message) for f in errors] == [
        ("error", 'cloud:error("vm-batch-1", "port on another project\'s private network")'),
        ("error", 'cloud:error("vm-db-1", "server is in ERROR state")'),
    ]
    assert all(case.classname == "cloud" for case in cases.values())
    assert cases["cloud:approved_flavor"].is_passed
    assert "m1.small" in cases["cloud:approved_flavor"].system_out
    (flavors,) = list(suites["DisallowedFlavors"])
    assert [f.type for f in flavors.result] == ["warning"]


def test_junit_escapes_markup_and_characters_xml_cannot_hold(tmp_path):
    # JSON escapes the bell, not U+FFFF, which XML 1.0 cannot hold either
    policy = write(tmp_path, "x.dl", 'error("<a & b>", "bell\\x07", "\\uffff \\ud83d\\ude00")\n')
    result = charter("eval", policy, "-f", "junit")
    root = ET.fromstring(result.stdout)  # well-formed XML 1.0
    junit_10(root)
    (suite,) = list(JUnitXml.fromstring(result.stdout))
    (case,) = list(suite)
    (failure,) = case.result
    assert failure.message == 'x:error("<a & b>", "bell\\u0007", "\\uffff \U0001f600")'


def test_junit_with_no_table_is_an_empty_report(tmp_path):
    policy = write(tmp_path, "t.dl", "p(1)\n")
    result = charter("eval", policy, "-f", "junit")
    assert result.exit_code == 0
    root = ET.fromstring(result.stdout)
    junit_10(root)
    assert (root.get("tests"), root.get("failures"), len(root)) == ("0", "0", 0)


@pytest.mark.parametrize("fmt", ["csv", "junit"])
def test_reports_are_listed_in_the_help(fmt):
    assert fmt in " ".join(charter("eval", "--help").output.split())
