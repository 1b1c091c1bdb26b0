"""The interop pack against a real Keystone, through Charter's API (in-process).

The CI Keystone's catalog holds Keystone alone, so for OpenStack Powered Compute the
compute, image, network and block-storage services are missing (IOP-CAT-001) while its
identity endpoint offers v3 (IOP-API-001 passes). The test then registers an image service
through Keystone's API whose endpoint is a small HTTP server on 127.0.0.1 answering a
version document, and follows the posture as that document changes: image API v1 only
(IOP-API-001 fails), v2 (it passes), the server stopped (IOP-API-003 fails, the poll does
not).
"""

from __future__ import annotations

import uuid

import pytest

from tests.packs.conftest import ok
from tests.realservices import http_service
from tests.realservices.keystone import KeystoneServer

json_service = http_service.json_service

pytestmark = [
    pytest.mark.keystone,
    pytest.mark.filterwarnings("ignore:The _compute_attributes method"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

PACK = "interop"
PLATFORM = "OpenStack Powered Compute"
NEVER = 3600  # poll only on request
V1_ONLY = {"versions": [{"id": "v1.0", "status": "SUPPORTED"}]}
V2 = {
    "versions": [
        {"id": "v2.16", "status": "CURRENT"},
        {"id": "v2.0", "status": "SUPPORTED"},
        {"id": "v1.0", "status": "DEPRECATED"},
    ]
}


def create_datasource(client, ks: KeystoneServer) -> None:
    ok(
        client.post(
            "/v1/data-sources",
            json={
                "name": "keystonev3",
                "driver": "keystonev3",
                "config": {
                    "auth_url": ks.auth_url,
                    "username": ks.admin_username,
                    "password": ks.admin_password,
                    "project_name": ks.admin_project,
                    "poll_time": NEVER,
                    "timeout_seconds": 5,
                },
            },
        ),
        201,
    )


def refresh(client) -> None:
    ok(client.post("/v1/data-sources/keystonev3?action=request-refresh", json={}))
    assert ok(client.get("/v1/data-sources/keystonev3/status"))["last_error"] is None


def posture(client) -> dict[str, dict]:
    got = ok(client.get(f"/v1/packs/{PACK}/posture", params={"rows": "true"}))
    return {c["id"]: c for c in got["controls"]}


def resources(control: dict) -> set:
    return {r["resource"] for r in control["rows"]}


def test_the_ci_keystone_is_an_identity_only_cloud_and_an_image_service_changes_that(
    client, keystone, json_service
):
    create_datasource(client, keystone)
    ok(client.post(f"/v1/packs/{PACK}?action=enable", json={}))
    refresh(client)

    p = posture(client)
    assert p["IOP-CAT-001"]["status"] == "failing"
    assert resources(p["IOP-CAT-001"]) == {"compute", "image", "network", "block-storage"}
    assert all(PLATFORM in r["detail"] for r in p["IOP-CAT-001"]["rows"])
    for control in (
        "IOP-CAT-002",
        "IOP-API-001",
        "IOP-API-002",
        "IOP-API-003",
        "IOP-ADV-001",
        "IOP-DEP-001",
    ):
        assert p[control]["status"] == "passing", (control, p[control])
    # The identity check passed on what the driver read from Keystone's own root.
    versions = ok(client.get("/v1/data-sources/keystonev3/tables/endpoint_versions/rows"))
    assert {tuple(r["data"][2:4]) for r in versions["results"]} == {("3", "CURRENT")}

    # An image service whose endpoint offers only the image API v1.
    json_service.serve("/", V1_ONLY)
    service_id = keystone.register_service(
        "image", f"glance-{uuid.uuid4().hex[:6]}", f"{json_service.url}/v1/"
    )
    try:
        refresh(client)
        p = posture(client)
        assert resources(p["IOP-CAT-001"]) == {"compute", "network", "block-storage"}
        assert p["IOP-API-001"]["status"] == "failing"
        [row] = p["IOP-API-001"]["rows"]
        assert row["columns"]["service_type"] == "image" and row["columns"]["version"] == "2"
        assert row["detail"] == (
            f"this image endpoint does not offer API v2, which {PLATFORM} requires"
        )
        endpoints = keystone.api("GET", "/endpoints", params={"service_id": service_id}).json()
        public = {e["id"] for e in endpoints["endpoints"] if e["interface"] == "public"}
        assert {row["resource"]} == public

        # The service now offers v2: IOP-API-001 passes.
        json_service.serve("/", V2)
        refresh(client)
        p = posture(client)
        assert p["IOP-API-001"]["status"] == "passing"
        assert p["IOP-API-002"]["status"] == "passing"

        # The service goes down: its versions cannot be read (IOP-API-003), the poll
        # itself does not fail, and IOP-API-001 does not guess.
        json_service.stop()
        refresh(client)
        p = posture(client)
        assert p["IOP-API-003"]["status"] == "failing"
        [row] = p["IOP-API-003"]["rows"]
        assert row["resource"] in public and "is unreachable" in row["detail"]
        assert p["IOP-API-001"]["status"] == "passing"
    finally:
        keystone.api("DELETE", f"/services/{service_id}")  # its endpoints go with it

    refresh(client)
    p = posture(client)
    assert resources(p["IOP-CAT-001"]) == {"compute", "image", "network", "block-storage"}
    assert p["IOP-API-003"]["status"] == "passing"


def test_storage_platform_needs_object_store(client, keystone):
    create_datasource(client, keystone)
    ok(
        client.post(
            f"/v1/packs/{PACK}?action=enable",
            json={"parameters": {"target_platforms": [["OpenStack Powered Storage"]]}},
        )
    )
    refresh(client)
    p = posture(client)
    assert resources(p["IOP-CAT-001"]) == {"object-store"}
    assert p["IOP-API-001"]["status"] == "passing"
