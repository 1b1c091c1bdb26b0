"""``charter pack``: list and show offline, test every installed pack (as CI does), and
enable, disable and read the posture of a server (here an in-process app)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from charter.api.app import create_app
from charter.cli import pack as pack_cli
from charter.cli.main import app
from charter.packs.describe import controls_markdown, pack_json
from charter.packs.registry import installed_packs
from tests.packs.conftest import PACK_YAML, TESTS, ok, stand_in, write_pack

runner = CliRunner()
ROOT = Path(__file__).parents[2]
PACK = "openstack-security"


def charter(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(autouse=True)
def from_the_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_list():
    result = charter("pack", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "VERSION", "CONTROLS", "TITLE", "FROM"]
    assert [PACK, "0.1.0", "8"] in [line.split()[:3] for line in lines[1:]]
    listed = json.loads(charter("pack", "list", "--format", "json").stdout)
    assert PACK in [p["id"] for p in listed["packs"]] and listed["unavailable"] == []


def test_list_shows_a_broken_pack_and_fails(monkeypatch, tmp_path):
    bad = write_pack(tmp_path / "bad", PACK_YAML.replace("severity: low", "severity: dire"))
    from importlib import metadata

    ep = metadata.EntryPoint("bad", "tests.packs.test_registry:FOLDERS", "charter.packs")
    monkeypatch.setattr(pack_cli, "_installed", lambda: installed_packs(entry_points=lambda: [ep]))
    monkeypatch.setattr("tests.packs.test_registry.FOLDERS", [bad])
    result = charter("pack", "list")
    assert result.exit_code == 1
    assert PACK in result.stdout
    assert f"{bad / 'pack.yaml'}:16:15: error[pack_invalid]: controls[0].severity" in result.stderr


def test_show_text_json_and_markdown():
    text = charter("pack", "show", PACK)
    assert text.exit_code == 0
    assert text.stdout.startswith("openstack-security 0.1.0: OpenStack security baseline\n")
    assert (
        "  OS-NET-001 [high] Security group rule opens an administrative port to the "
        "internet" in text.stdout
    )
    assert "  admin_ports(port integer, service string):" in text.stdout
    assert "    fix 1: Restrict the rule's remote IP prefix" in text.stdout
    pack = installed_packs(entry_points=lambda: []).packs[PACK]
    assert json.loads(charter("pack", "show", PACK, "--format", "json").stdout) == pack_json(pack)
    assert (
        charter("pack", "show", PACK, "-f", "markdown").stdout == controls_markdown([pack]) + "\n"
    )


def test_show_a_folder_and_mistakes(tmp_path):
    folder = write_pack(tmp_path / "tiny")
    assert charter("pack", "show", str(folder)).stdout.startswith("tiny 1.0.0: A tiny pack")
    result = charter("pack", "show", "nope")
    assert result.exit_code == 2
    assert "no installed pack 'nope' (installed: " in result.stderr
    bad = write_pack(tmp_path / "bad", PACK_YAML.replace("version: 1.0.0", "version: x"))
    result = charter("pack", "show", str(bad))
    assert result.exit_code == 1
    assert f"{bad / 'pack.yaml'}:3:10: error[pack_invalid]: version: version 'x'" in result.stderr
    assert "version: x" in result.stderr and "^" in result.stderr  # the line, and a caret
    assert charter("pack", "show", PACK, "--format", "csv").exit_code == 2


# ---------------------------------------------------------------- test


def test_every_installed_pack_passes_its_cases_with_every_rule_covered():
    result = charter("pack", "test", "--coverage", "--seed", "7")
    assert result.exit_code == 0, result.output + result.stderr
    assert "TOTAL: " in result.stdout and "rules covered (100.0%)" in result.stdout
    assert "not covered" not in result.stdout and "untested" not in result.stderr
    assert result.stdout.rstrip().splitlines()[-1].startswith("PASS: ")


def test_a_pack_folder_with_a_failing_case_and_an_untested_control(tmp_path):
    tests = TESTS.replace(
        "      bad_flavor: [[vm1, p, m1.big, flavor not allowed]]",
        "      bad_flavor: [[vm1, p, m1.bigger, flavor not allowed]]",
    )
    tests = tests[: tests.index("  - name: a small server passes")]
    folder = write_pack(tmp_path / "tiny", tests={"tiny_test.yaml": tests})
    result = charter("pack", "test", str(folder), "--seed", "1")
    assert result.exit_code == 1
    assert f"{folder / 'tiny_test.yaml'}:2: a big server fails: FAIL" in result.stdout
    assert "tiny:bad_flavor: expected exactly these rows" in result.stdout
    assert (
        f"untested: {folder / 'pack.yaml'}: control TINY-001: no case where it passes"
        in result.stderr
    )


def test_a_test_file_that_does_not_fit_is_a_usage_error(tmp_path):
    folder = write_pack(tmp_path / "tiny", tests={"tiny_test.yaml": "cases: []\n"})
    result = charter("pack", "test", str(folder))
    assert result.exit_code == 2
    assert f"{folder / 'tiny_test.yaml'}:1:8: error[test_invalid]: cases" in result.stderr


# ---------------------------------------------------------------- against a server


@pytest.fixture
def api(service, settings, monkeypatch) -> TestClient:
    """The commands' HTTP client, speaking to an in-process app."""
    client = TestClient(create_app(service, settings), base_url="http://charter.test")
    calls = []

    def api_client(url, token, timeout=30.0):
        calls.append((url, token))
        client.headers.clear()
        if token:
            client.headers["X-Auth-Token"] = token
        return client

    monkeypatch.setattr(pack_cli, "api_client", api_client)
    client.calls = calls  # type: ignore[attr-defined]
    with client:
        yield client


def test_enable_posture_and_disable(api, tmp_path):
    config = tmp_path / "security.yaml"
    config.write_text("parameters:\n  admin_projects: [ops]\n  allowed_flavors: [m1.small]\n")
    result = charter(
        "pack",
        "enable",
        PACK,
        "--config",
        str(config),
        "--set",
        "allowed_flavors=m1.small,m1.large",
        "--set",
        "admin_ports=[[22, SSH]]",
        "--url",
        "http://charter.test",
        "--token",
        "t",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "enabled openstack-security 0.1.0: 8 policies (OS_NET_001, OS_NET_002, OS_NET_003, "
        "OS_IMG_001, OS_IMG_002, OS_BLK_001, OS_CMP_001, OS_IAM_001)",
        '  admin_ports = [[22, "SSH"]]',
        '  admin_projects = [["ops"]]',
        '  allowed_flavors = [["m1.small"], ["m1.large"]]',
    ]
    assert api.calls[-1] == ("http://charter.test", "t")
    stand_in(
        api,
        "nova",
        {
            "servers": [{"id": "vm1", "tenant_id": "p", "flavor_id": "f", "status": "ACTIVE"}],
            "flavors": [{"id": "f", "name": "m1.huge"}],
        },
    )
    shown = charter("pack", "show", PACK, "--posture", "--rows")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[1].split() == [
        "CONTROL",
        "SEVERITY",
        "STATUS",
        "VIOLATIONS",
        "FIRST",
        "SEEN",
        "TITLE",
    ]
    cmp = next(line for line in lines if line.startswith("OS-CMP-001 "))
    assert cmp.split()[:4] == ["OS-CMP-001", "low", "failing", "1"]
    assert "OS-CMP-001 vm1 [p]: its flavor is not on the allowed list" in lines
    assert (
        "OS-NET-001: not evaluated: datasource neutronv2 is not configured (create it with "
        "driver neutronv2)" in lines
    )
    assert lines[-1] == "passing: 0, failing: 1, not evaluated: 7 (of 8)"
    as_json = json.loads(charter("pack", "show", PACK, "--posture", "-f", "json").stdout)
    assert as_json["summary"]["failing"] == 1
    as_csv = charter("pack", "show", PACK, "--posture", "-f", "csv").stdout
    assert as_csv.splitlines()[0] == (
        "pack,control,title,severity,status,violations,first_seen,reason"
    )
    assert len(as_csv.splitlines()) == 9
    result = charter("pack", "disable", PACK)
    assert result.exit_code == 0
    assert result.stdout.startswith("disabled openstack-security: deleted 8 policies (OS_NET_001")
    assert ok(api.get(f"/v1/packs/{PACK}"))["enabled"] is False


def test_refusals_and_usage_errors(api, tmp_path):
    result = charter("pack", "enable", PACK, "--set", "admin_ports=ssh")
    assert result.exit_code == 1
    assert (
        "error: cannot enable pack openstack-security: parameter admin_ports, row 1: a row "
        "is a list of 2 values"
        in result.stderr
        and "(HTTP 400)" in result.stderr
    )
    assert charter("pack", "enable", PACK, "--set", "admin_ports").exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  admin_ports: 22\n")
    result = charter("pack", "enable", PACK, "--config", str(bad))
    assert result.exit_code == 2
    assert (
        f"{bad}:2:16: error[config_invalid]: parameters.admin_ports: give a list" in result.stderr
    )
    bad.write_text("params: {}\n")
    result = charter("pack", "enable", PACK, "--config", str(bad))
    assert result.exit_code == 2 and f"{bad}:1:1: error[config_invalid]" in result.stderr
    result = charter("pack", "show", PACK, "--posture")
    assert result.exit_code == 1 and "pack openstack-security is not enabled" in result.stderr
    assert charter("pack", "disable", PACK).exit_code == 1


def test_a_server_that_cannot_be_reached():
    result = charter("pack", "disable", PACK, "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "error: cannot reach http://127.0.0.1:9" in result.stderr


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("22,2222", [22, 2222]),
        ("m1.small, m1.large", ["m1.small", "m1.large"]),
        ("[[22, SSH], [3389, RDP]]", [[22, "SSH"], [3389, "RDP"]]),
        ("[]", []),
        ("", []),
        ("admin", ["admin"]),
    ],
)
def test_set_values(text, rows):
    assert pack_cli._parameter_value(text) == rows


def test_a_pack_over_a_charter_driver_that_congress_did_not_have(tmp_path):
    """The ceph driver's tables come from the installed driver: named columns resolve in
    the pack's checks, in its test cases and in the policy a control becomes."""
    pack_yaml = PACK_YAML.replace(
        "nova:\n    tables: [servers, flavors]", "ceph:\n    tables: [osds]"
    )
    pack_yaml = pack_yaml[: pack_yaml.index("parameters:")] + pack_yaml[
        pack_yaml.index("controls:") :
    ].replace("table: bad_flavor", "table: osd_down").replace(
        "columns: [server, project, flavor, detail]", "columns: [osd, host, detail]"
    )
    policy = (
        'osd_down(osd, host, detail) :- ceph:osds(name=osd, host=host, up=0), detail = "down"\n'
    )
    tests = (
        "cases:\n"
        "  - name: a down OSD fails\n"
        "    data: {ceph:osds: [{name: osd.1, host: h1, up: 0}]}\n"
        "    expect: {osd_down: [[osd.1, h1, down]]}\n"
        "  - name: an up OSD passes\n"
        "    data: {ceph:osds: [{name: osd.1, host: h1, up: 1}]}\n"
        "    expect: {osd_down: []}\n"
        "  - name: full rows, by position\n"
        "    data: {ceph:osds: [[0, osd.0, h1, 0, 1, down, 1.0, 1.0, ssd]]}\n"
        "    expect: {osd_down: [[osd.0, h1, down]]}\n"
    )
    folder = write_pack(
        tmp_path / "ceph", pack_yaml, policies={"ceph.dl": policy}, tests={"ceph_test.yaml": tests}
    )
    result = charter("pack", "test", str(folder), "--coverage")
    assert result.exit_code == 0, result.output
    assert "TOTAL: 1/1 rules covered (100.0%)" in result.stdout


def test_run_picks_cases():
    result = charter("pack", "test", PACK, "--run", "OS-NET-001", "-v")
    assert result.exit_code == 0, result.output
    assert "PASS: 4/4" in result.stdout and "OS-IMG" not in result.stdout
    assert charter("pack", "test", PACK, "--run", "nothing like it").exit_code == 2
    assert charter("pack", "test", PACK, "--run", "(").exit_code == 2
