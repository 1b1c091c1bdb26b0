"""Packs through the API, against a real service and store: enable, the parameters, the
posture (passing, failing, not evaluated; JSON and CSV), disable, a restart; and the posture
agrees with the controls' tables evaluated offline on the same rows."""

from __future__ import annotations

import csv
import io

import pytest

from charter.datasources.schemas import driver_schema
from charter.engine import Engine, RuleChange
from charter.packs.build import parameter_facts, parameter_values
from tests.api.conftest import make_service
from tests.packs.conftest import ok, push, stand_in

PACK = "openstack-security"
POLICIES = [
    "OS_NET_001",
    "OS_NET_002",
    "OS_NET_003",
    "OS_IMG_001",
    "OS_IMG_002",
    "OS_BLK_001",
    "OS_CMP_001",
    "OS_IAM_001",
]

CLOUD = {
    "neutronv2": {
        "security_group_rules": [
            {
                "id": "r-ssh",
                "security_group_id": "sg-web",
                "tenant_id": "shop",
                "direction": "ingress",
                "protocol": "tcp",
                "port_range_min": 22,
                "port_range_max": 22,
                "remote_ip_prefix": "0.0.0.0/0",
            },
            {
                "id": "r-web",
                "security_group_id": "sg-web",
                "tenant_id": "shop",
                "direction": "ingress",
                "protocol": "tcp",
                "port_range_min": 80,
                "port_range_max": 443,
                "remote_ip_prefix": "0.0.0.0/0",
            },
        ],
        "networks": [
            {"id": "net-shop", "tenant_id": "shop", "shared": "False"},
            {"id": "net-lab", "tenant_id": "lab", "shared": "False"},
        ],
        "ports": [
            {"id": "port-1", "tenant_id": "shop", "network_id": "net-shop", "device_id": "web-1"},
            {"id": "port-3", "tenant_id": "shop", "network_id": "net-lab", "device_id": "web-1"},
        ],
        "security_group_port_bindings": [{"port_id": "port-1", "security_group_id": "sg-web"}],
    },
    "nova": {
        "servers": [
            {
                "id": "web-1",
                "tenant_id": "shop",
                "flavor_id": "f-small",
                "image_id": "img-ok",
                "status": "ACTIVE",
            },
            {
                "id": "big-1",
                "tenant_id": "lab",
                "flavor_id": "f-huge",
                "image_id": "img-old",
                "status": "ACTIVE",
            },
        ],
        "flavors": [{"id": "f-small", "name": "m1.small"}, {"id": "f-huge", "name": "m1.huge"}],
    },
    "glancev2": {
        "images": [
            {"id": "img-ok", "owner": "p-admin", "visibility": "public", "status": "active"},
            {"id": "img-old", "owner": "p-admin", "visibility": "private", "status": "deactivated"},
        ],
    },
    "keystonev3": {
        "projects": [
            {"id": "p-admin", "name": "admin", "enabled": "True"},
            {"id": "shop", "name": "shop", "enabled": "True"},
            {"id": "lab", "name": "lab", "enabled": "True"},
        ],
    },
    "cinder": {
        "volumes": [{"id": "vol-1", "encrypted": "True"}],
        "attachments": [{"volume_id": "vol-1", "server_id": "web-1"}],
    },
}
EXPECTED = {
    "OS-NET-001": "failing",
    "OS-NET-002": "failing",
    "OS-NET-003": "failing",
    "OS-IMG-001": "passing",
    "OS-IMG-002": "failing",
    "OS-BLK-001": "passing",
    "OS-CMP-001": "failing",
    "OS-IAM-001": "passing",
}


def posture(client, **params) -> dict:
    return ok(client.get(f"/v1/packs/{PACK}/posture", params=params))


def statuses(client) -> dict[str, str]:
    return {c["id"]: c["status"] for c in posture(client)["controls"]}


def build_cloud(client, drivers=tuple(CLOUD)) -> None:
    for driver in drivers:
        stand_in(client, driver, CLOUD[driver])


def test_list_and_show_before_and_after_enabling(client):
    listed = ok(client.get("/v1/packs"))
    assert listed["unavailable"] == []
    (entry,) = [p for p in listed["results"] if p["id"] == PACK]
    assert entry["enabled"] is False and entry["controls"] == 8 and entry["origin"] == "charter"
    shown = ok(client.get(f"/v1/packs/{PACK}"))
    assert [c["id"] for c in shown["controls"]] == list(EXPECTED)
    assert shown["controls"][0]["datasources"] == ["neutronv2"]
    assert shown["parameters"]["admin_projects"] == {
        "description": shown["parameters"]["admin_projects"]["description"],
        "columns": [{"name": "name", "type": "string"}],
        "default": ["admin"],
        "value": ["admin"],
    }
    enabled = ok(client.post(f"/v1/packs/{PACK}?action=enable"))
    assert enabled["enabled"] is True and enabled["policies"] == POLICIES
    assert enabled["parameters_set"] == {} and enabled["enabled_by"]
    names = [p["name"] for p in ok(client.get("/v1/policies"))["results"]]
    assert set(POLICIES) <= set(names)
    policy = ok(client.get("/v1/policies/OS_NET_001"))
    assert policy["description"].startswith("OpenStack security baseline OS-NET-001 (high)")


def test_each_control_is_a_library_policy_and_create_from_library_works(client):
    library = {p["name"]: p for p in ok(client.get("/v1/librarypolicies"))["results"]}
    assert set(POLICIES) <= set(library)  # a fresh store lists every installed control
    assert library["OS_IMG_001"]["rules"][-1]["rule"].startswith("error(image, project, detail)")
    made = ok(client.post("/v1/policies?library_policy=OS_IMG_001"), 201)
    assert made["name"] == "OS_IMG_001"
    # the pack cannot take a name a policy it did not make holds
    refused = client.post(f"/v1/packs/{PACK}?action=enable")
    assert refused.status_code == 409
    assert (
        "policy OS_IMG_001 exists and pack openstack-security did not make it"
        in refused.json()["error"]["message"]
    )
    assert not {"OS_NET_001", "OS_IAM_001"} & {
        p["name"] for p in ok(client.get("/v1/policies"))["results"]
    }
    ok(client.delete("/v1/policies/OS_IMG_001"))
    ok(client.post(f"/v1/packs/{PACK}?action=enable"))


def test_posture_not_evaluated_until_the_datasources_report(client):
    ok(client.post(f"/v1/packs/{PACK}?action=enable"))
    answer = posture(client)
    assert answer["summary"] == {"passing": 0, "failing": 0, "not_evaluated": 8, "total": 8}
    first = answer["controls"][0]
    assert first["reason"] == (
        "datasource neutronv2 is not configured (create it with driver neutronv2)"
    )
    build_cloud(client, ["neutronv2"])
    got = {c["id"]: c for c in posture(client)["controls"]}
    assert got["OS-NET-001"]["status"] == "failing" and got["OS-NET-001"]["reason"] is None
    assert got["OS-NET-002"]["status"] == "not_evaluated"
    assert got["OS-NET-002"]["reason"] == (
        "datasource nova is not configured (create it with driver nova)"
    )
    build_cloud(client, ["nova", "glancev2", "keystonev3", "cinder"])
    assert statuses(client) == EXPECTED


def test_posture_counts_and_first_seen_are_the_violations_of_each_control(client):
    build_cloud(client)
    ok(client.post(f"/v1/packs/{PACK}?action=enable"))
    answer = posture(client, rows="true")
    assert answer["summary"] == {"passing": 3, "failing": 5, "not_evaluated": 0, "total": 8}
    net = answer["controls"][0]
    assert net["violations"] == 1
    (row,) = net["rows"]
    assert row == {
        "resource": "r-ssh",
        "project": "shop",
        "detail": "SSH is open to the internet",
        "columns": {
            "rule_id": "r-ssh",
            "project": "shop",
            "security_group": "sg-web",
            "port": 22,
            "detail": "SSH is open to the internet",
        },
        "first_seen": net["first_seen"],
    }
    (violation,) = ok(client.get("/v1/policies/OS_NET_001/violations"))["results"]
    assert violation["first_seen"] == net["first_seen"]
    assert violation["row"] == ["r-ssh", "shop", "sg-web", 22, "SSH is open to the internet"]
    # a violation that clears, then the control passes
    push(
        client, "neutronv2", "security_group_rules", CLOUD["neutronv2"]["security_group_rules"][1:]
    )
    net = posture(client)["controls"][0]
    assert (net["status"], net["violations"], net["first_seen"]) == ("passing", 0, None)


def test_parameters_replace_defaults_and_stay_until_changed(client):
    build_cloud(client)
    answer = ok(
        client.post(
            f"/v1/packs/{PACK}?action=enable",
            json={
                "parameters": {
                    "allowed_flavors": ["m1.small", "m1.huge"],
                    "admin_ports": [[2222, "SSH"]],
                }
            },
        )
    )
    assert answer["parameters_set"] == {
        "allowed_flavors": [["m1.small"], ["m1.huge"]],
        "admin_ports": [[2222, "SSH"]],
    }
    assert answer["parameters"]["admin_ports"]["value"] == [[2222, "SSH"]]
    got = statuses(client)
    assert got["OS-CMP-001"] == "passing" and got["OS-NET-001"] == "passing"
    rules = [r["rule"] for r in ok(client.get("/v1/policies/OS_CMP_001/rules"))["results"]]
    assert 'allowed_flavors("m1.huge")' in rules
    # enabling again without parameters keeps them; {} brings the defaults back
    ok(client.post(f"/v1/packs/{PACK}?action=enable"))
    assert statuses(client)["OS-CMP-001"] == "passing"
    before = posture(client)["controls"][4]  # OS-IMG-002: unchanged by the parameters
    ok(client.post(f"/v1/packs/{PACK}?action=enable", json={"parameters": {}}))
    assert statuses(client) == EXPECTED
    after = posture(client)["controls"][4]
    assert after["first_seen"] == before["first_seen"]  # its violation went on, not anew
    assert ok(client.get(f"/v1/packs/{PACK}"))["parameters_set"] == {}


def test_parameters_that_do_not_fit_are_refused_with_every_problem(client):
    r = client.post(
        f"/v1/packs/{PACK}?action=enable",
        json={"parameters": {"admin_ports": [["ssh", 22]], "colour": ["red"]}},
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["error_data"] == [
        "no parameter 'colour'; the pack's parameters: admin_ports, admin_projects, "
        "allowed_flavors",
        "parameter admin_ports, row 1: port is an integer, not 'ssh'",
    ]
    assert ok(client.get(f"/v1/packs/{PACK}"))["enabled"] is False
    r = client.post(f"/v1/packs/{PACK}?action=enable", json={"parameters": {"admin_ports": 22}})
    assert r.status_code == 400 and "parameters.admin_ports" in r.json()["error"]["message"]


@pytest.mark.parametrize(("format_", "accept"), [("csv", None), (None, "text/csv")])
def test_posture_as_csv(client, format_, accept):
    build_cloud(client)
    ok(client.post(f"/v1/packs/{PACK}?action=enable"))
    params = {"format": format_} if format_ else {}
    headers = {"Accept": accept} if accept else {}
    r = client.get(f"/v1/packs/{PACK}/posture", params=params, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(r.text)))
    assert [line["control"] for line in lines] == list(EXPECTED)
    assert {line["control"]: line["status"] for line in lines} == EXPECTED
    assert lines[0]["violations"] == "1" and lines[0]["first_seen"]
    assert lines[5] == {
        "pack": PACK,
        "control": "OS-BLK-001",
        "title": "Unencrypted volume attached to a server",
        "severity": "medium",
        "status": "passing",
        "violations": "0",
        "first_seen": "",
        "reason": "",
    }
    r = client.get(f"/v1/packs/{PACK}/posture", params={**params, "rows": "true"}, headers=headers)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {(x["control"], x["resource"], x["project"]) for x in rows} == {
        ("OS-NET-001", "r-ssh", "shop"),
        ("OS-NET-002", "port-3", "shop"),
        ("OS-NET-003", "web-1", "shop"),
        ("OS-IMG-002", "big-1", "lab"),
        ("OS-CMP-001", "big-1", "lab"),
    }
    assert (
        client.get(
            f"/v1/packs/{PACK}/posture", headers={"Accept": "application/json, text/csv"}
        ).headers["content-type"]
        == "application/json"
    )


def test_posture_from_the_api_equals_the_controls_tables(client, service):
    build_cloud(client)
    overrides = {"admin_ports": [[22, "SSH"], [443, "HTTPS admin"]]}
    ok(client.post(f"/v1/packs/{PACK}?action=enable", json={"parameters": overrides}))
    answer = posture(client, rows="true")
    pack = service.packs.get(PACK)
    # the same rows, evaluated offline by the pack's own rules with the same parameters
    engine = Engine()
    for driver in CLOUD:
        engine.declare_datasource(driver, driver_schema(driver))
    policy = pack.spec.policy_name
    engine.create_policy(policy)
    facts = parameter_facts(parameter_values(pack.spec, overrides))
    engine.apply(RuleChange(policy, r, +1) for r in [*pack.rules, *facts])
    for driver, tables in CLOUD.items():
        schema = driver_schema(driver)
        engine.load_rows(
            {
                f"{driver}:{t}": [tuple(row.get(c) for c in schema[t]) for row in rows]
                for t, rows in tables.items()
            }
        )
    for control, got in zip(pack.controls, answer["controls"], strict=True):
        offline = engine.rows(f"{policy}:{control.table}")
        live = service.engine.rows(f"{control.policy}:{control.table}")
        shown = {tuple(r["columns"][c] for c in control.column_names) for r in got["rows"]}
        assert shown == live == offline, control.id
        assert got["violations"] == len(offline)
        assert got["status"] == ("failing" if offline else "passing")
    assert answer["controls"][0]["violations"] == 2  # 443 is administrative here


def test_a_deleted_policy_is_not_evaluated_until_enabled_again(client):
    build_cloud(client)
    ok(client.post(f"/v1/packs/{PACK}?action=enable"))
    ok(client.delete("/v1/policies/OS_IAM_001"))
    iam = posture(client)["controls"][-1]
    assert iam["status"] == "not_evaluated"
    assert iam["reason"] == "policy OS_IAM_001 was deleted: enable the pack again to make it"
    ok(client.post(f"/v1/packs/{PACK}?action=enable"))
    assert posture(client)["controls"][-1]["status"] == "passing"


def test_disable_deletes_the_packs_policies_and_keeps_others(client):
    ok(client.post("/v1/policies", json={"name": "mine", "rules": [{"rule": "p(1)"}]}), 201)
    ok(client.post(f"/v1/packs/{PACK}?action=enable"))
    answer = ok(client.post(f"/v1/packs/{PACK}?action=disable"))
    assert answer == {"id": PACK, "enabled": False, "deleted_policies": POLICIES}
    names = {p["name"] for p in ok(client.get("/v1/policies"))["results"]}
    assert "mine" in names and not set(POLICIES) & names
    assert ok(client.get(f"/v1/packs/{PACK}"))["enabled"] is False
    assert set(POLICIES) <= {p["name"] for p in ok(client.get("/v1/librarypolicies"))["results"]}


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("get", "/v1/packs/nope", 404, "No pack nope; installed packs: "),
        ("get", "/v1/packs/nope/posture", 404, "No pack nope"),
        ("get", f"/v1/packs/{PACK}/posture", 409, "pack openstack-security is not enabled: enable"),
        ("post", f"/v1/packs/{PACK}?action=disable", 409, "pack openstack-security is not enabled"),
        ("post", "/v1/packs/nope?action=enable", 404, "No pack nope"),
        ("post", f"/v1/packs/{PACK}?action=start", 400, "unknown action 'start'"),
        ("post", f"/v1/packs/{PACK}", 400, "Missing required action parameter"),
        ("get", f"/v1/packs/{PACK}/posture?format=xml", 400, "format"),
    ],
)
def test_errors_say_what_to_do(client, method, path, status, message):
    r = client.request(method.upper(), path)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]


def test_a_disable_with_a_body_and_an_enable_with_unknown_fields_are_refused(client):
    r = client.post(f"/v1/packs/{PACK}?action=enable", json={"params": {}})
    assert r.status_code == 400 and "unknown pack fields ['params']" in r.json()["error"]["message"]
    ok(client.post(f"/v1/packs/{PACK}?action=enable"))
    r = client.post(f"/v1/packs/{PACK}?action=disable", json={"parameters": {}})
    assert r.status_code == 400 and "empty body" in r.json()["error"]["message"]


def test_an_enabled_pack_and_its_history_survive_a_restart(tmp_path, settings):
    from fastapi.testclient import TestClient

    from charter.api.app import create_app

    first = make_service(tmp_path)
    with TestClient(create_app(first, settings)) as client:
        build_cloud(client)
        ok(
            client.post(
                f"/v1/packs/{PACK}?action=enable",
                json={"parameters": {"allowed_flavors": ["m1.huge"]}},
            )
        )
        before = posture(client)
    first.close()
    again = make_service(tmp_path)
    try:
        with TestClient(create_app(again, settings)) as client:
            after = posture(client)
            assert after["enabled_at"] == before["enabled_at"]
            assert [
                (c["id"], c["status"], c["violations"], c["first_seen"]) for c in after["controls"]
            ] == [
                (c["id"], c["status"], c["violations"], c["first_seen"]) for c in before["controls"]
            ]
            assert ok(client.get(f"/v1/packs/{PACK}"))["parameters_set"] == {
                "allowed_flavors": [["m1.huge"]]
            }
    finally:
        again.close()
