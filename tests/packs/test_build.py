"""What a control becomes: a self-contained policy whose parameters are facts the operator
sets, not edits to its rules."""

from __future__ import annotations

import pytest

from charter.engine import Engine, RuleChange
from charter.lang.parser import parse_rule
from charter.packs import load_pack
from charter.packs.build import (
    ParameterError,
    control_policy,
    overrides_of,
    parameter_values,
    slice_rules,
)
from charter.packs.registry import installed_packs
from tests.packs.conftest import PACK_YAML, write_pack


@pytest.fixture(scope="module")
def security():
    return installed_packs(entry_points=lambda: []).packs["openstack-security"]


def test_defaults_and_overrides(security):
    spec = security.spec
    values = parameter_values(spec)
    assert (22, "SSH") in values["admin_ports"] and values["admin_projects"] == [("admin",)]
    assert overrides_of(spec, values) == {}
    # an override replaces that parameter whole; a one-column row may be bare
    values = parameter_values(spec, {"admin_ports": [[2222, "SSH"]], "admin_projects": ["ops"]})
    assert values["admin_ports"] == [(2222, "SSH")] and values["admin_projects"] == [("ops",)]
    assert values["allowed_flavors"] == parameter_values(spec)["allowed_flavors"]
    assert overrides_of(spec, values) == {
        "admin_ports": [[2222, "SSH"]],
        "admin_projects": [["ops"]],
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"admin_port": [[22, "SSH"]]},
            "no parameter 'admin_port'; the pack's parameters: admin_ports, admin_projects, "
            "admin_roles, allowed_flavors, config_drive_projects, denied_flavors, denied_images, "
            "error_hours, service_projects, shutoff_days",
        ),
        (
            {"admin_ports": [["22", "SSH"]]},
            "parameter admin_ports, row 1: port is an integer, not '22'",
        ),
        ({"admin_ports": [[22]]}, "parameter admin_ports, row 1: [22] has 1 values; rows have 2"),
        ({"admin_ports": [22]}, "parameter admin_ports, row 1: a row is a list of 2 values"),
        ({"admin_ports": "22"}, "parameter admin_ports: give a list of rows, not str"),
        (
            {"allowed_flavors": [True]},
            "parameter allowed_flavors, row 1: name is a string, not True",
        ),
    ],
)
def test_overrides_that_do_not_fit_say_what_and_where(security, overrides, message):
    with pytest.raises(ParameterError) as caught:
        parameter_values(security.spec, overrides)
    assert any(message in m for m in caught.value.messages), caught.value.messages


def test_a_control_policy_is_its_slice_with_its_parameters_and_error(security):
    control = security.control("OS-NET-001")
    values = parameter_values(security.spec, {"admin_ports": [[2222, "SSH"]]})
    cp = control_policy(security.spec, security.rules, control, values)
    assert cp.name == "OS_NET_001" and cp.datasources == ("neutronv2",)
    texts = [r["rule"] for r in cp.rules]
    assert 'admin_ports(2222, "SSH")' in texts
    assert not any(t.startswith("admin_ports(22,") for t in texts)  # the default is replaced
    assert not any("server" in t or "images" in t for t in texts)  # other controls' rules
    assert texts[-1] == (
        "error(rule_id, project, security_group, port, detail) :- "
        "admin_port_open_to_world(rule_id, project, security_group, port, "
        "detail)"
    )
    # named columns are written by position, the rule as written kept in the comment
    opens = next(r for r in cp.rules if r["rule"].startswith("has_range"))
    assert opens["rule"] == (
        "has_range(rule) :- neutronv2:security_group_rules(_, rule, _, _, "
        "_, _, _, low, _, _), not_null(low)"
    )
    assert opens["comment"].startswith("OS-NET-001: ") and "port_range_min=low" in opens["comment"]


def test_every_control_policy_compiles_alone_without_its_datasources(security):
    values = parameter_values(security.spec)
    for control in security.controls:
        cp = control_policy(security.spec, security.rules, control, values)
        engine = Engine()
        engine.create_policy(cp.name)
        engine.apply(RuleChange(cp.name, parse_rule(r["rule"]), +1) for r in cp.rules)
        assert engine.rows(f"{cp.name}:error") == set()


def test_slices_take_what_a_table_needs_and_nothing_more(tmp_path):
    policy = (
        "helper(x) :- nova:servers(id=x)\n"
        "other(x) :- nova:flavors(id=x)\n"
        "bad_flavor(s, p, f, d) :- helper(s), nova:servers(id=s, tenant_id=p, flavor_id=f), "
        'not allowed_flavors(f), d = "x"\n'
        'second(f, project, detail) :- other(f), project = "", detail = "y"\n'
    )
    pack_yaml = (
        PACK_YAML + "  - id: TINY-002\n    title: Two\n    severity: info\n    table: second\n"
        "    columns: [flavor, project, detail]\n    rationale: R.\n"
        "    remediation: [Do.]\n    references: [{title: T}]\n"
    )
    pack = load_pack(write_pack(tmp_path / "p", pack_yaml, policies={"p.dl": policy}))
    rules, tables = slice_rules(pack.rules, "bad_flavor")
    assert tables == {"bad_flavor", "helper", "allowed_flavors"}
    assert [str(r).split(" :-")[0] for r in rules] == ["helper(x)", "bad_flavor(s, p, f, d)"]
