"""keystonev3's endpoint_versions: version documents read from real HTTP servers on 127.0.0.1.

Each test serves a version document (in the shapes Keystone, Nova, Glance and Cinder
answer) or a fault (HTTP 500, an HTML page, a closed port, a stall) from the steerable JSON
service of tests/realservices/http_service.py, and reads it through a keystoneauth session
as the driver does. What the driver makes of a real Keystone's catalog is checked in
tests/datasources/test_keystone_driver.py.
"""

from __future__ import annotations

import pytest
from keystoneauth1 import session as ks_session

from charter.datasources.drivers import discovery
from charter.datasources.drivers.discovery import ERROR, endpoint_versions, version_root
from charter.datasources.drivers.keystone import KeystoneDriver
from tests.realservices import http_service
from tests.realservices.keystone import free_port

json_service = http_service.json_service

KEYSTONE_ROOT = {
    "versions": {
        "values": [
            {
                "id": "v3.14",
                "status": "stable",
                "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": "http://ks/v3/"}],
            }
        ]
    }
}
NOVA_ROOT = {
    "versions": [
        {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": ""},
        {"id": "v2.1", "status": "CURRENT", "version": "2.95", "min_version": "2.1"},
    ]
}
CINDER_ROOT = {
    "versions": [
        {"id": "v3.0", "status": "CURRENT", "version": "3.70", "min_version": "3.0"},
        {"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": ""},
    ]
}


@pytest.fixture
def session():
    s = ks_session.Session(timeout=2)
    yield s
    s.session.close()


def rows(session, *endpoints: tuple[str, str]) -> set[tuple]:
    return {tuple(r.values()) for r in endpoint_versions(session, endpoints)}


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("http://nova:8774/v2.1/%(tenant_id)s", "http://nova:8774/"),
        ("http://cinder:8776/v3/$(project_id)s", "http://cinder:8776/"),
        ("https://cloud.example/identity/v3/", "https://cloud.example/identity/"),
        ("http://glance:9292", "http://glance:9292/"),
        ("http://neutron:9696/", "http://neutron:9696/"),
        ("http://swift:8080/v1/AUTH_%(tenant_id)s", "http://swift:8080/"),
    ],
)
def test_version_root_cuts_the_version_and_project_segments(url, root):
    assert version_root(url) == root


def test_each_version_of_each_shape_is_a_row(session, json_service):
    json_service.serve("/identity/", KEYSTONE_ROOT)
    json_service.serve("/compute/", NOVA_ROOT)
    json_service.serve("/volume/", CINDER_ROOT)
    json_service.serve("/image/", {"version": {"id": "v2.9", "status": "CURRENT"}})
    base = json_service.url
    assert rows(
        session,
        ("ks", f"{base}/identity/v3/"),
        ("nova", f"{base}/compute/v2.1"),
        ("cinder", f"{base}/volume/v3/%(project_id)s"),
        ("glance", f"{base}/image/"),
    ) == {
        ("ks", "v3.14", "3", "CURRENT", None, None, None),
        ("nova", "v2.0", "2", "SUPPORTED", None, None, None),
        ("nova", "v2.1", "2", "CURRENT", "2.1", "2.95", None),
        ("cinder", "v3.0", "3", "CURRENT", "3.0", "3.70", None),
        ("cinder", "v2.0", "2", "DEPRECATED", None, None, None),
        ("glance", "v2.9", "2", "CURRENT", None, None, None),
    }


def test_endpoints_sharing_a_root_fetch_it_once(session, json_service):
    json_service.serve("/", KEYSTONE_ROOT)
    url = f"{json_service.url}/v3/"
    got = rows(session, ("public", url), ("internal", url))
    assert {r[0] for r in got} == {"public", "internal"}
    assert json_service.hits("/") == 1


def test_a_service_answering_500_is_an_error_row(session, json_service):
    json_service.serve("/", KEYSTONE_ROOT)
    json_service.set_mode("error")
    [row] = endpoint_versions(session, [("e1", json_service.url)])
    assert row["status"] == ERROR and row["version_id"] is None
    assert row["error"] == f"{json_service.url}/ answered HTTP 500"


def test_a_service_answering_garbage_is_an_error_row(session, json_service):
    json_service.set_mode("garbage")
    [row] = endpoint_versions(session, [("e1", json_service.url)])
    assert row["status"] == ERROR
    assert row["error"].startswith(f"{json_service.url}/ did not answer a version document")


@pytest.mark.parametrize(
    "document", [{"versions": []}, {"versions": [{"status": "CURRENT"}]}, {"versions": "v3"}]
)
def test_a_document_without_usable_versions_is_an_error_row(session, json_service, document):
    json_service.serve("/", document)
    [row] = endpoint_versions(session, [("e1", json_service.url)])
    assert row["status"] == ERROR and row["error"]


def test_a_service_that_is_down_is_an_error_row_and_the_others_still_read(session, json_service):
    json_service.serve("/", KEYSTONE_ROOT)
    closed = f"http://127.0.0.1:{free_port()}/v2.1"
    got = {
        r["endpoint_id"]: r
        for r in endpoint_versions(session, [("down", closed), ("up", json_service.url)])
    }
    assert got["up"]["version_id"] == "v3.14"
    assert got["down"]["status"] == ERROR
    assert "is unreachable" in got["down"]["error"]


def test_a_stalled_service_is_an_error_row_after_the_timeout(session, json_service):
    json_service.serve("/", KEYSTONE_ROOT)
    json_service.set_mode("slow", delay=30)
    [row] = endpoint_versions(ks_session.Session(timeout=0.5), [("e1", json_service.url)])
    assert row["status"] == ERROR
    assert row["error"] == f"{json_service.url}/ did not answer in time"


def test_the_driver_reads_enabled_endpoints_of_its_interface_only(json_service, monkeypatch):
    json_service.serve("/", KEYSTONE_ROOT)

    class E:
        def __init__(self, id, interface, enabled=True):
            self.id, self.interface, self.is_enabled = id, interface, enabled
            self.url = f"{json_service.url}/v3/"

    config = {
        "auth_url": "http://ks:5000/v3",
        "username": "u",
        "password": "p",
        "project_name": "admin",
    }
    driver = KeystoneDriver("ks", config)
    monkeypatch.setattr(driver, "_get_session", lambda: ks_session.Session(timeout=2))
    endpoints = [E("pub", "public"), E("int", "internal"), E("off", "public", enabled=False)]
    assert {r["endpoint_id"] for r in driver.versions(endpoints)} == {"pub"}
    assert KeystoneDriver("ks", {**config, "endpoint_versions": "false"}).versions(endpoints) == []


def test_endpoint_versions_must_be_a_boolean():
    with pytest.raises(Exception, match="endpoint_versions must be true or false"):
        KeystoneDriver(
            "ks",
            {
                "auth_url": "http://ks:5000/v3",
                "username": "u",
                "password": "p",
                "project_name": "admin",
                "endpoint_versions": "sometimes",
            },
        )


def test_describe_failure_of_something_unexpected():
    assert discovery.describe_failure("http://x/", ValueError("boom")) == (
        "http://x/ could not be read (ValueError: boom)"
    )
