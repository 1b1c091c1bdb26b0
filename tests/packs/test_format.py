"""The pack format: a bad pack is refused with every problem at its file, line and column;
the shipped packs load, are formatted as charter fmt formats, and ship in the wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from charter.lang.format import format_datalog
from charter.packs import PackError, load_pack
from charter.packs.registry import builtin_folder, installed_packs
from tests.packs.conftest import PACK_YAML, POLICY, write_pack

ROOT = Path(__file__).parents[2]


def errors_of(folder: Path) -> list[str]:
    with pytest.raises(PackError) as caught:
        load_pack(folder)
    return [str(d) for d in caught.value.diagnostics]


def test_a_good_pack_loads(tmp_path):
    pack = load_pack(write_pack(tmp_path / "tiny"))
    assert pack.id == "tiny" and [c.id for c in pack.controls] == ["TINY-001"]
    assert pack.spec.policy_name == "tiny"
    assert [Path(t).name for t in pack.tests] == ["tiny_test.yaml"]
    assert pack.control("TINY_001") is pack.control("TINY-001") is pack.controls[0]


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (("id: tiny", "id: Tiny Pack"), "1:5", "id: pack id 'Tiny Pack' must be lower case words"),
        (
            ("severity: low", "severity: urgent"),
            "16:15",
            "'urgent' is not one of: critical, high, medium, low, info",
        ),
        (("  - id: TINY-001", "  - id: tiny1"), "14:9", "control id 'tiny1' must be upper case"),
        (("version: 1.0.0", "version: one"), "3:10", "version 'one' must be dotted numbers"),
        (
            ("    rationale: Because.\n", "    rationale: Because.\n    colour: red\n"),
            "20:5",
            "controls[0]: unknown key 'colour'; use id, title, severity",
        ),
        (("    remediation: Resize it.\n", ""), "14:5", "controls[0]: 'remediation' is required"),
        (
            ('url: "https://example.org/guide"', "url: example.org"),
            "21:40",
            "url 'example.org' must start with http",
        ),
        (
            ("    default: [m1.small]", "    default: [[m1.small, 2]]"),
            "12:15",
            "default row 1: ['m1.small', 2] has 2 values; rows have 1 (name)",
        ),
        (
            ("    default: [m1.small]", "    default: [3]"),
            "12:15",
            "default row 1: name is a string, not 3",
        ),
        (
            ("columns: [server, project, flavor, detail]", "columns: [server, project, flavor]"),
            "18:14",
            "add a column named detail",
        ),
        (
            ("columns: [server, project, flavor, detail]", "columns: [detail, server]"),
            "18:15",
            "the first column is the resource",
        ),
        (("    table: bad_flavor", "    table: error"), "17:12", "not 'error'"),
    ],
)
def test_pack_yaml_errors_name_the_place(tmp_path, change, where, message):
    old, new = change
    assert old in PACK_YAML
    folder = write_pack(tmp_path / "p", PACK_YAML.replace(old, new))
    found = errors_of(folder)
    expected = f"{folder / 'pack.yaml'}:{where}: error[pack_invalid]: "
    assert any(e.startswith(expected) and message in e for e in found), found


def test_duplicate_controls_are_refused_at_the_second(tmp_path):
    control = PACK_YAML[PACK_YAML.index("  - id: TINY-001") :]
    folder = write_pack(tmp_path / "p", PACK_YAML + control)
    where = folder / "pack.yaml"
    assert errors_of(folder) == [
        f"{where}:22:9: error[pack_invalid]: control id TINY-001 is also controls[0]'s; give "
        "each control its own id",
        f"{where}:25:12: error[pack_invalid]: table bad_flavor is also the table of TINY-001; "
        "each control has its own table",
    ]


def test_a_key_written_twice_is_refused_at_both_places(tmp_path):
    folder = write_pack(tmp_path / "p", "id: tiny\ntitle: A\nid: other\n")
    (error,) = errors_of(folder)
    assert error == (
        f"{folder / 'pack.yaml'}:3:1: error[pack_syntax]: key 'id' is written twice in one "
        "mapping (first at line 1); YAML would keep only the last: merge them"
    )


def test_malformed_yaml_and_a_folder_without_pack_yaml(tmp_path):
    folder = write_pack(tmp_path / "p", "id: [unclosed\n")
    (error,) = errors_of(folder)
    assert error.startswith(f"{folder / 'pack.yaml'}:2:1: error[pack_syntax]: malformed YAML")
    (error,) = errors_of(tmp_path)
    assert "is not a pack: it has no pack.yaml" in error


@pytest.mark.parametrize(
    ("policy", "where", "message"),
    [
        # a table the rules read that pack.yaml does not declare
        (
            POLICY.replace(
                "nova:flavors(id=id, name=flavor)",
                "nova:flavors(id=id, name=flavor), nova:hypervisors(id=id)",
            ),
            "3:39",
            "nova:hypervisors is not among the tables pack.yaml declares for nova",
        ),
        # a datasource it does not declare
        (
            POLICY.replace(
                "nova:flavors(id=id, name=flavor)",
                "nova:flavors(id=id, name=flavor), neutronv2:ports(id=id)",
            ),
            "3:39",
            "reads neutronv2, which pack.yaml does not declare",
        ),
        # a parameter written by a rule
        (POLICY + 'allowed_flavors("m1.huge")\n', "6:1", "allowed_flavors is a parameter"),
        # a table read that nobody defines
        (
            POLICY.replace("not allowed_flavors(flavor)", "not allowed(flavor)"),
            "4:9",
            "allowed is read, but no rule of the pack defines it",
        ),
        # the control's table with another width
        (
            POLICY.replace(
                "bad_flavor(server, project, flavor, detail)", "bad_flavor(server, flavor, detail)"
            ),
            "1:1",
            "control TINY-001 declares 4 columns (server, project, flavor, detail), but this rule "
            "gives bad_flavor 3",
        ),
        # a rule no control needs
        (POLICY + "unused(x) :- nova:servers(id=x)\n", "6:1", "no control reads unused"),
        # what the compiler finds: a column the driver's table does not have
        (
            POLICY.replace("tenant_id=project", "tenant=project"),
            "2:36",
            "column name tenant does not exist",
        ),
        # the rules write error themselves
        (POLICY + "error(x) :- bad_flavor(x, _, _, _)\n", "6:1", "may not define error"),
    ],
)
def test_policy_errors_name_the_place(tmp_path, policy, where, message):
    folder = write_pack(tmp_path / "p", policies={"tiny.dl": policy})
    found = errors_of(folder)
    assert any(
        e.startswith(f"{folder / 'tiny.dl'}:{where}: error[") and message in e for e in found
    ), found


def test_declared_but_unread_tables_and_parameters_are_refused(tmp_path):
    pack_yaml = PACK_YAML.replace(
        "tables: [servers, flavors]", "tables: [servers, flavors, hypervisors, nonesuch]"
    )
    folder = write_pack(
        tmp_path / "p",
        pack_yaml,
        policies={"tiny.dl": POLICY.replace("not allowed_flavors(flavor),", "")},
    )
    found = "\n".join(errors_of(folder))
    yaml_file = folder / "pack.yaml"
    assert f"{yaml_file}:7:32: error[pack_invalid]: no rule reads nova:hypervisors" in found
    assert f"{yaml_file}:7:45: error[pack_invalid]: driver nova has no table nonesuch" in found
    assert f"{yaml_file}:9:3: error[pack_invalid]: no rule reads parameter allowed_flavors" in found


def test_a_pack_without_policies_and_a_syntax_error(tmp_path):
    assert any("has no policies" in e for e in errors_of(write_pack(tmp_path / "a", policies={})))
    folder = write_pack(tmp_path / "b", policies={"tiny.dl": "p(x) :- \n"})
    assert any(
        e.startswith(f"{folder / 'tiny.dl'}:1:8: error[parse_error]") for e in errors_of(folder)
    )


# ---------------------------------------------------------------- the shipped packs


def test_every_shipped_pack_loads():
    installed = installed_packs(entry_points=lambda: [])
    assert installed.broken == []
    assert "openstack-security" in installed.packs
    pack = installed.packs["openstack-security"]
    assert len(pack.controls) >= 30
    assert all(c.id.startswith("OS-") for c in pack.controls)


def test_shipped_policies_are_formatted_as_charter_fmt_formats_them():
    files = sorted(builtin_folder().rglob("*.dl"))
    assert files
    for file in files:
        text = file.read_text()
        assert format_datalog(text, str(file)) == text, f"run charter fmt {file}"


def test_every_shipped_pack_file_is_in_the_wheels_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["charter"]
    src = ROOT / "src" / "charter"
    shipped = {p for pattern in patterns for p in src.glob(pattern)}
    files = {
        p
        for p in (src / "packs" / "builtin").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert files and files <= shipped, sorted(str(f) for f in files - shipped)
