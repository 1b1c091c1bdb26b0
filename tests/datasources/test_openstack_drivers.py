"""Charter's OpenStack drivers: schemas, row mapping, config checks, action arguments.

The row-mapping tests use no cloud. Each builds real openstacksdk resource objects
(``Server.existing(**body)``, as the SDK's own list calls do) from JSON bodies written by
hand in the shape the Nova, Neutron, Cinder, Glance and Keystone API references document,
and checks every row of every table. What a live Nova/Neutron/Glance answers is checked by
scripts/openstack-e2e.sh against a real stack; Keystone by tests/datasources/
test_keystone_driver.py. The tests at the end (marked ``keystone``) check the catalog and
region handling against the real Keystone.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator

import pytest
from openstack.block_storage.v3.service import Service as VolumeService
from openstack.block_storage.v3.snapshot import Snapshot
from openstack.block_storage.v3.volume import Volume
from openstack.compute.v2.aggregate import Aggregate
from openstack.compute.v2.availability_zone import AvailabilityZone
from openstack.compute.v2.flavor import Flavor
from openstack.compute.v2.hypervisor import Hypervisor
from openstack.compute.v2.server import Server
from openstack.compute.v2.server_group import ServerGroup
from openstack.compute.v2.service import Service as ComputeService
from openstack.identity.v3.domain import Domain
from openstack.identity.v3.endpoint import Endpoint
from openstack.identity.v3.project import Project
from openstack.identity.v3.role import Role
from openstack.identity.v3.role_assignment import RoleAssignment
from openstack.identity.v3.service import Service as CatalogService
from openstack.identity.v3.user import User
from openstack.image.v2.image import Image
from openstack.network.v2.floating_ip import FloatingIP
from openstack.network.v2.network import Network
from openstack.network.v2.port import Port
from openstack.network.v2.router import Router
from openstack.network.v2.security_group import SecurityGroup
from openstack.network.v2.subnet import Subnet

from charter.datasources.driver import DriverError
from charter.datasources.drivers.cinder import CinderDriver
from charter.datasources.drivers.glance import GlanceDriver
from charter.datasources.drivers.keystone import KeystoneDriver
from charter.datasources.drivers.neutron import NeutronDriver
from charter.datasources.drivers.nova import NovaDriver
from charter.datasources.registry import driver_class
from charter.datasources.schemas import driver_schema
from tests.realservices import keystone as realkeystone

# openstacksdk warns about its own internals when it builds resources.
pytestmark = pytest.mark.filterwarnings("ignore:The _compute_attributes method")

DRIVERS = {"keystonev3": KeystoneDriver, "nova": NovaDriver, "neutronv2": NeutronDriver,
           "cinder": CinderDriver, "glancev2": GlanceDriver}
CONFIG = {"auth_url": "http://127.0.0.1:5000/v3", "username": "admin",
          "password": "s3cret-pw", "project_name": "admin"}
PROJECT = "6f70656e737461636b20342065766572"
USER = "5f0fc6f3b2b94cf6b8d8d8d5b0b1b2b3"


def listed(resource, *bodies: dict) -> list:
    """SDK resources as openstacksdk's list calls make them from a page of JSON bodies
    (``Resource.list`` drops Glance's "self" key, which cannot be a keyword argument)."""
    return [resource.existing(**{k: v for k, v in body.items() if k != "self"})
            for body in bodies]


def rows_of(cls, **objects) -> dict[str, set[tuple]]:
    return {t: set(rows) for t, rows in cls.rows(objects).items()}


# ---------------------------------------------------------------- schemas


#: What Charter's drivers read beyond Congress's schema, always in tables of their own: a
#: table Congress's driver had keeps its columns (Congress's positional policies, simulate
#: sequences and data rows keep working).
CHARTER_ADDITIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "keystonev3": {
        "role_assignments": ("role_id", "user_id", "group_id", "project_id", "domain_id",
                             "inherited"),
        "services": ("id", "type", "name", "enabled", "description"),
        "endpoints": ("id", "service_id", "interface", "region_id", "url", "enabled"),
        "endpoint_versions": ("endpoint_id", "version_id", "major", "status", "min_version",
                              "max_version", "error"),
    },
    "nova": {
        "servers.details": ("server_id", "updated_at", "key_name", "config_drive", "locked",
                            "host"),
        "hypervisors.capacity": ("hypervisor_id", "host", "hypervisor_type", "vcpus",
                                 "vcpus_used", "memory_mb", "memory_mb_used", "local_gb",
                                 "local_gb_used", "running_vms"),
        "server_groups": ("id", "name", "policy", "project_id", "user_id",
                          "max_server_per_host"),
        "server_group_members": ("group_id", "server_id"),
        "aggregates": ("id", "name", "availability_zone"),
        "aggregate_hosts": ("aggregate_id", "host"),
        "aggregate_metadata": ("aggregate_id", "key", "value"),
    },
}


@pytest.mark.parametrize("driver_id", sorted(DRIVERS))
def test_schema_is_congress_schema_then_charter_additions(driver_id):
    cls = driver_class(driver_id)
    assert cls is DRIVERS[driver_id]
    driver = cls("ds", CONFIG)
    tables = {name: spec.column_names for name, spec in driver.tables().items()}
    want = driver_schema(driver_id)
    for table, added in CHARTER_ADDITIONS.get(driver_id, {}).items():
        want[table] = want.get(table, ()) + added
    assert tables == want
    assert {s.name: s.column_names for s in cls.static_tables()} == tables
    assert all(c.description for spec in driver.tables().values() for c in spec.columns)


@pytest.mark.parametrize("driver_id", sorted(DRIVERS))
def test_actions_are_declared_with_descriptions_and_args(driver_id):
    actions = DRIVERS[driver_id]("ds", CONFIG).actions()
    assert actions and all(a.description and a.args for a in actions)
    assert all(a.args[0].name == "id" for a in actions)
    assert len({a.name for a in actions}) == len(actions)


def test_declared_actions():
    names = {d: [a.name for a in cls("ds", CONFIG).actions()] for d, cls in DRIVERS.items()}
    assert names == {
        "keystonev3": ["users.disable", "users.enable", "projects.disable", "projects.enable"],
        "nova": ["servers.pause", "servers.unpause", "servers.stop", "servers.start",
                 "servers.suspend", "servers.resume", "servers.reboot", "servers.delete",
                 "servers.lock", "servers.unlock"],
        "neutronv2": ["ports.delete", "ports.update_admin_state",
                      "security_group_rules.delete", "networks.delete"],
        "cinder": ["volumes.delete"],
        "glancev2": ["images.deactivate", "images.reactivate", "images.delete"],
    }


def test_driver_info_marks_the_password_secret():
    info = NovaDriver.info()
    assert info["id"] == "nova" and info["secret"] == ["password"]
    assert {"auth_url", "region_name", "interface", "timeout_seconds", "poll_time",
            "api_version", "cacert", "verify"} <= set(info["config"])


# ---------------------------------------------------------------- nova

SERVER_ACTIVE = {
    "id": "9168b536-cd40-4630-b43f-b259807c6e87", "name": "web-1", "status": "ACTIVE",
    "tenant_id": PROJECT, "user_id": USER,
    "hostId": "2091634baaccdc4c5a1d57069c833e402921df696b7f970791b12ec6",
    "image": {"id": "70a599e0-31e7-49b7-b260-868f441e862b",
              "links": [{"href": "http://127.0.0.1:8774/images/70a599e0", "rel": "bookmark"}]},
    "flavor": {"id": "1", "links": [{"href": "http://127.0.0.1:8774/flavors/1",
                                     "rel": "bookmark"}]},
    "created": "2024-05-03T04:01:32Z", "updated": "2024-05-03T04:01:40Z",
    "addresses": {
        "private": [
            {"addr": "192.168.0.3", "version": 4, "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:4c:2c:30",
             "OS-EXT-IPS:type": "fixed"},
            {"addr": "172.24.4.10", "version": 4, "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:4c:2c:30",
             "OS-EXT-IPS:type": "floating"},
        ],
        "v6net": [{"addr": "fd00::3", "version": 6, "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:07",
                   "OS-EXT-IPS:type": "fixed"}],
    },
    "OS-EXT-AZ:availability_zone": "nova", "OS-EXT-SRV-ATTR:host": "compute1",
    "OS-EXT-SRV-ATTR:hypervisor_hostname": "compute1.example", "OS-EXT-STS:vm_state": "active",
    "OS-EXT-STS:power_state": 1, "OS-EXT-STS:task_state": None, "locked": False,
    "tags": ["web", "prod"], "metadata": {"role": "web"}, "key_name": None,
    "security_groups": [{"name": "default"}], "accessIPv4": "", "accessIPv6": "",
    "progress": 0, "config_drive": "", "links": [],
}
SERVER_KEYED = {  # a key pair and a config drive ("True", as Nova sends it)
    "id": "5d1c2b7a-0f7e-4b8a-9e5c-2f4d6a8b0c1e", "name": "app-1", "status": "SHUTOFF",
    "tenant_id": PROJECT, "user_id": USER, "hostId": "", "image": "",
    "flavor": {"id": "1", "links": []}, "created": "2024-05-03T06:00:00Z",
    "updated": "2024-05-04T06:00:00Z", "addresses": {}, "key_name": "ops",
    "config_drive": "True", "locked": False, "tags": [], "metadata": {}, "links": [],
}
SERVER_ERROR = {  # booted from a volume (Nova sends image ""), never scheduled
    "id": "c0a8b0e2-5e46-4d0a-9a3e-0a8d7f6e1d11", "name": "db-1", "status": "ERROR",
    "tenant_id": PROJECT, "user_id": USER, "hostId": "", "image": "",
    "flavor": {"id": "42", "links": []}, "created": "2024-05-03T05:00:00Z",
    "addresses": {}, "OS-EXT-AZ:availability_zone": "", "OS-EXT-SRV-ATTR:host": None,
    "OS-EXT-SRV-ATTR:hypervisor_hostname": None, "OS-EXT-STS:vm_state": "error",
    "fault": {"code": 500, "message": "No valid host was found."}, "tags": [], "locked": True,
    "metadata": {}, "links": [],
}


def test_nova_servers_addresses_and_tags():
    rows = rows_of(NovaDriver, servers=[Server.existing(**SERVER_ACTIVE),
                                        Server.existing(**SERVER_ERROR)])
    assert rows["servers"] == {
        ("9168b536-cd40-4630-b43f-b259807c6e87", "web-1",
         "2091634baaccdc4c5a1d57069c833e402921df696b7f970791b12ec6", "ACTIVE", PROJECT, USER,
         "70a599e0-31e7-49b7-b260-868f441e862b", "1", "nova", "compute1.example",
         "2024-05-03T04:01:32Z"),
        ("c0a8b0e2-5e46-4d0a-9a3e-0a8d7f6e1d11", "db-1", "", "ERROR", PROJECT, USER, None,
         "42", "", None, "2024-05-03T05:00:00Z"),
    }
    web = "9168b536-cd40-4630-b43f-b259807c6e87"
    assert rows["servers.addresses"] == {
        (web, "private", "192.168.0.3", 4, "fa:16:3e:4c:2c:30", "fixed"),
        (web, "private", "172.24.4.10", 4, "fa:16:3e:4c:2c:30", "floating"),
        (web, "v6net", "fd00::3", 6, "fa:16:3e:00:00:07", "fixed"),
    }
    assert rows["tags"] == {(web, "web"), (web, "prod")}
    assert rows["servers.details"] == {
        (web, "2024-05-03T04:01:40Z", None, "False", "False", "compute1"),
        ("c0a8b0e2-5e46-4d0a-9a3e-0a8d7f6e1d11", None, None, "False", "True", None),
    }
    assert SERVER_ACTIVE["addresses"]["private"][0].get("network_name") is None  # not mutated


def test_nova_servers_details_key_pair_and_config_drive():
    rows = rows_of(NovaDriver, servers=[Server.existing(**SERVER_KEYED)])
    assert rows["servers.details"] == {
        ("5d1c2b7a-0f7e-4b8a-9e5c-2f4d6a8b0c1e", "2024-05-04T06:00:00Z", "ops", "True", "False",
         None)}


def test_nova_flavor_id_with_an_embedded_flavor():
    """From microversion 2.47 Nova embeds the flavor without its id; its name stands in."""
    body = {**SERVER_ACTIVE, "flavor": {"original_name": "m1.small", "vcpus": 1, "ram": 2048,
                                        "disk": 20, "ephemeral": 0, "swap": 0,
                                        "extra_specs": {}}}
    (row,) = NovaDriver.rows({"servers": [Server.existing(**body)]})["servers"]
    assert row[7] == "m1.small"


def test_nova_flavors_hypervisors_services_zones():
    flavors = [Flavor.existing(**{
        "id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1,
        "OS-FLV-EXT-DATA:ephemeral": 0, "rxtx_factor": 1.0, "swap": "",
        "os-flavor-access:is_public": True, "OS-FLV-DISABLED:disabled": False, "links": []})]
    hypervisors = [Hypervisor.existing(**{"hypervisor_hostname": "fake-mini", "id": 1,
                                          "state": "up", "status": "enabled"})]  # no details
    services = [ComputeService.existing(**{
        "id": 4, "binary": "nova-compute", "disabled_reason": "maintenance", "host": "host1",
        "state": "down", "status": "disabled", "updated_at": "2024-05-03T13:42:02.000000",
        "forced_down": False, "zone": "nova"})]
    zones = [AvailabilityZone.existing(**{"zoneName": "nova", "zoneState": {"available": True},
                                          "hosts": None}),
             AvailabilityZone.existing(**{"zoneName": "az2", "zoneState": {"available": False},
                                          "hosts": None})]
    rows = rows_of(NovaDriver, flavors=flavors, hypervisors=hypervisors, services=services,
                   availability_zones=zones)
    assert rows["flavors"] == {("1", "m1.tiny", 1, 512, 1, 0, 1.0)}
    assert rows["hypervisors"] == {("fake-mini", 1, "up", "enabled")}
    assert rows["hypervisors.capacity"] == {(1,) + (None,) * 9}
    assert rows["services"] == {(4, "nova-compute", "host1", "nova", "disabled", "down",
                                 "2024-05-03T13:42:02.000000", "maintenance")}
    assert rows["availability_zones"] == {("nova", "available"), ("az2", "unavailable")}
    assert rows["servers"] == rows["tags"] == set()


#: GET /os-hypervisors/detail at microversion 2.26 (the API reference's example).
HYPERVISOR_DETAIL = {
    "cpu_info": {"arch": "x86_64", "model": "Nehalem", "vendor": "Intel"},
    "current_workload": 0, "status": "enabled", "state": "up", "disk_available_least": 0,
    "host_ip": "1.1.1.1", "free_disk_gb": 1028, "free_ram_mb": 7680,
    "hypervisor_hostname": "host1.example", "hypervisor_type": "fake",
    "hypervisor_version": 1000, "id": 2, "local_gb": 1028, "local_gb_used": 0,
    "memory_mb": 8192, "memory_mb_used": 512, "running_vms": 0,
    "service": {"host": "host1", "id": 6, "disabled_reason": None},
    "vcpus": 2, "vcpus_used": 0,
}


def test_nova_hypervisors_capacity_and_usage_without_sdk_warnings():
    """The usage fields openstacksdk marks deprecated are read without its warnings; from
    microversion 2.88 Nova leaves them out, and they are None."""
    v288 = {k: v for k, v in HYPERVISOR_DETAIL.items() if k in (
        "hypervisor_hostname", "hypervisor_type", "hypervisor_version", "status", "state",
        "host_ip", "service")}
    v288.update(id="b1e43b5f-eec1-44e0-9f10-7b4945c0226d", hypervisor_hostname="host2.example",
                service={"host": "host2", "id": "8c5a9a8e-5b3a-4f0e-9f44-2d1f0c1e7a55",
                         "disabled_reason": "maintenance"},
                status="disabled")
    with warnings.catch_warnings():  # building them warns (the SDK reads its own fields)
        warnings.simplefilter("ignore")
        hypervisors = listed(Hypervisor, HYPERVISOR_DETAIL, v288)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = rows_of(NovaDriver, hypervisors=hypervisors)
    host2 = "b1e43b5f-eec1-44e0-9f10-7b4945c0226d"
    assert rows["hypervisors"] == {
        ("host1.example", 2, "up", "enabled"), ("host2.example", host2, "up", "disabled")}
    assert rows["hypervisors.capacity"] == {
        (2, "host1", "fake", 2, 0, 8192, 512, 1028, 0, 0),
        (host2, "host2", "fake") + (None,) * 7,
    }


def test_nova_server_groups_old_and_new_microversions():
    """Until 2.63 a group has a ``policies`` list, from 2.64 a ``policy`` and ``rules``."""
    old = {"id": "616fb98f-46ca-475e-917e-2563e5a8cd19", "name": "web",
           "policies": ["anti-affinity"], "members": ["vm-a", "vm-b"], "metadata": {},
           "project_id": PROJECT, "user_id": USER}
    new = {"id": "5bbcc3c4-1da2-4437-a48a-66f15b1b13f9", "name": "db", "policy":
           "anti-affinity", "rules": {"max_server_per_host": 3}, "members": [],
           "project_id": PROJECT, "user_id": USER}
    soft = {"id": "8c2a33bd-3ef0-4d29-a8f6-4c8e1e7fd9a1", "name": "cache",
            "policy": "soft-affinity", "rules": {}, "members": ["vm-c"],
            "project_id": PROJECT, "user_id": USER}
    rows = rows_of(NovaDriver, server_groups=listed(ServerGroup, old, new, soft))
    assert rows["server_groups"] == {
        (old["id"], "web", "anti-affinity", PROJECT, USER, None),
        (new["id"], "db", "anti-affinity", PROJECT, USER, 3),
        (soft["id"], "cache", "soft-affinity", PROJECT, USER, None),
    }
    assert rows["server_group_members"] == {
        (old["id"], "vm-a"), (old["id"], "vm-b"), (soft["id"], "vm-c")}


def test_nova_aggregates_hosts_and_metadata():
    bodies = [
        {"id": 1, "name": "rack-1", "availability_zone": "az1", "hosts": ["host1", "host2"],
         "metadata": {"availability_zone": "az1", "ssd": "true"}, "deleted": False,
         "created_at": "2024-05-03T07:00:00.000000", "updated_at": None, "deleted_at": None,
         "uuid": "6ba28ba7-f29b-45cc-a30b-6e3a40c2fb14"},
        {"id": 2, "name": "gpu", "availability_zone": None, "hosts": [], "metadata": {},
         "deleted": False, "created_at": "2024-05-03T07:00:00.000000", "updated_at": None,
         "deleted_at": None, "uuid": "2b6f9d49-8a4e-4b36-9a35-2b7c1bbd1e01"},
    ]
    rows = rows_of(NovaDriver, aggregates=listed(Aggregate, *bodies))
    assert rows["aggregates"] == {(1, "rack-1", "az1"), (2, "gpu", None)}
    assert rows["aggregate_hosts"] == {(1, "host1"), (1, "host2")}
    assert rows["aggregate_metadata"] == {(1, "availability_zone", "az1"), (1, "ssd", "true")}


def test_nova_reads_every_table_with_detail_where_it_matters():
    """The listings a poll makes: hypervisors with their details (capacity), server groups
    of every project, aggregates."""
    calls = []

    class Compute:
        def __getattr__(self, name):
            return lambda *a, **k: calls.append((name, a, k)) or []

    class Conn:
        compute = Compute()

    listings = NovaDriver("nova", CONFIG).listings(Conn())
    assert set(listings) == {t["table-name"] for t in NovaDriver.translators}
    for listing in listings.values():
        listing()
    assert ("hypervisors", (), {"details": True}) in calls
    assert ("server_groups", (), {"all_projects": True}) in calls
    assert ("aggregates", (), {}) in calls


# ---------------------------------------------------------------- neutron

NET, SUBNET, SUBNET6 = ("a87cc70a-3e15-4acf-8205-9b711a3531b7",
                        "f0ad9df3-0b42-4a3e-8d2e-3ad7a1b4a111",
                        "1d5b3c2a-7b61-4a1e-9a40-0cf5a2b44222")
SG, SG2 = "85cc3048-abc3-43cc-89b3-377341426ac5", "2076db17-a522-4506-91de-c6dd8e837028"
EXT_NET, EXT_SUBNET = "ae34051f-aa6c-4c75-abf5-50dc9ac99ef3", "b6a5f9a8-0a73-4f6b-a2b7-5c4d1e2f3a44"


def test_neutron_networks_ports_subnets():
    network = Network.existing(**{
        "admin_state_up": True, "availability_zone_hints": [], "availability_zones": ["nova"],
        "created_at": "2024-05-03T10:00:00Z", "id": NET, "mtu": 1500, "name": "private",
        "port_security_enabled": True, "project_id": PROJECT, "provider:network_type": "flat",
        "provider:physical_network": "physnet1", "provider:segmentation_id": None,
        "router:external": False, "shared": False, "status": "ACTIVE",
        "subnets": [SUBNET, SUBNET6], "tenant_id": PROJECT, "tags": [],
        "revision_number": 3})
    port = Port.existing(**{
        "admin_state_up": False, "binding:vnic_type": "normal", "device_id": "",
        "device_owner": "", "fixed_ips": [{"ip_address": "10.0.0.5", "subnet_id": SUBNET},
                                          {"ip_address": "fd00::5", "subnet_id": SUBNET6}],
        "id": "46d4bfb9-b26e-41f3-bd2e-e6dcc1ccedb2", "mac_address": "fa:16:3e:23:fd:d7",
        "name": "p1", "network_id": NET, "project_id": PROJECT, "security_groups": [SG, SG2],
        "status": "DOWN", "tenant_id": PROJECT, "tags": [], "port_security_enabled": True})
    subnet = Subnet.existing(**{
        "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.100"},
                             {"start": "10.0.0.150", "end": "10.0.0.254"}],
        "cidr": "10.0.0.0/24", "dns_nameservers": ["192.0.2.53", "192.0.2.54"],
        "enable_dhcp": True, "gateway_ip": "10.0.0.1",
        "host_routes": [{"destination": "192.168.0.0/24", "nexthop": "10.0.0.254"}],
        "id": SUBNET, "ip_version": 4, "ipv6_address_mode": None, "ipv6_ra_mode": None,
        "name": "private-v4", "network_id": NET, "project_id": PROJECT, "tenant_id": PROJECT,
        "subnetpool_id": None, "service_types": [], "tags": []})
    subnet6 = Subnet.existing(**{
        "allocation_pools": [{"start": "fd00::2", "end": "fd00::ffff"}], "cidr": "fd00::/64",
        "dns_nameservers": [], "enable_dhcp": False, "gateway_ip": None, "host_routes": [],
        "id": SUBNET6, "ip_version": 6, "ipv6_address_mode": "slaac",
        "ipv6_ra_mode": "slaac", "name": "", "network_id": NET, "project_id": PROJECT})
    rows = rows_of(NeutronDriver, networks=[network], ports=[port], subnets=[subnet, subnet6])
    assert rows["networks"] == {(NET, PROJECT, "private", "ACTIVE", "True", "False")}
    p1 = "46d4bfb9-b26e-41f3-bd2e-e6dcc1ccedb2"
    assert rows["ports"] == {(p1, PROJECT, "p1", NET, "fa:16:3e:23:fd:d7", "False", "DOWN",
                              "", "")}
    assert rows["fixed_ips"] == {(p1, "10.0.0.5", SUBNET), (p1, "fd00::5", SUBNET6)}
    assert rows["security_group_port_bindings"] == {(p1, SG), (p1, SG2)}
    assert rows["subnets"] == {
        (SUBNET, PROJECT, "private-v4", NET, 4, "10.0.0.0/24", "10.0.0.1", "True", None, None),
        (SUBNET6, PROJECT, "", NET, 6, "fd00::/64", None, "False", "slaac", "slaac")}
    assert rows["allocation_pools"] == {(SUBNET, "10.0.0.2", "10.0.0.100"),
                                        (SUBNET, "10.0.0.150", "10.0.0.254"),
                                        (SUBNET6, "fd00::2", "fd00::ffff")}
    assert rows["dns_nameservers"] == {(SUBNET, "192.0.2.53"), (SUBNET, "192.0.2.54")}
    assert rows["host_routes"] == {(SUBNET, "192.168.0.0/24", "10.0.0.254")}


def test_neutron_routers_floating_ips_security_groups():
    r1, r2 = "f8a44de0-fc8e-45df-93c7-f79bf3b01c95", "8604a0de-7f6b-409a-a47c-a1cc7bc77b2e"
    routers = [
        Router.existing(**{
            "admin_state_up": True, "distributed": False, "ha": False, "id": r1,
            "external_gateway_info": {
                "enable_snat": True, "network_id": EXT_NET,
                "external_fixed_ips": [{"ip_address": "172.24.4.6", "subnet_id": EXT_SUBNET},
                                       {"ip_address": "2001:db8::9", "subnet_id": SUBNET6}]},
            "name": "router1", "project_id": PROJECT, "status": "ACTIVE",
            "tenant_id": PROJECT, "routes": []}),
        Router.existing(**{"admin_state_up": False, "external_gateway_info": None, "id": r2,
                           "name": "isolated", "project_id": PROJECT, "status": "DOWN"}),
    ]
    fip = FloatingIP.existing(**{
        "fixed_ip_address": "10.0.0.3", "floating_ip_address": "172.24.4.228",
        "floating_network_id": EXT_NET, "id": "2f245a7b-796b-4f26-9cf9-9e82d248fda7",
        "port_id": "ce705c24-c1ef-408a-bda3-7bbd946164ab", "project_id": PROJECT,
        "router_id": r1, "status": "ACTIVE", "tenant_id": PROJECT, "description": ""})
    group = SecurityGroup.existing(**{
        "description": "default", "id": SG, "name": "default", "project_id": PROJECT,
        "tenant_id": PROJECT, "stateful": True, "security_group_rules": [
            {"direction": "egress", "ethertype": "IPv4",
             "id": "38ce2d8e-e8f1-48bd-83c2-d33cb9f50c3d", "port_range_max": None,
             "port_range_min": None, "project_id": PROJECT, "protocol": None,
             "remote_group_id": None, "remote_ip_prefix": None, "security_group_id": SG,
             "tenant_id": PROJECT},
            {"direction": "ingress", "ethertype": "IPv4",  # a Neutron without tenant_id
             "id": "565b9502-12de-4ffd-91e9-68885cff6ae1", "port_range_max": 22,
             "port_range_min": 22, "project_id": PROJECT, "protocol": "tcp",
             "remote_group_id": None, "remote_ip_prefix": "0.0.0.0/0",
             "security_group_id": SG}]})
    rows = rows_of(NeutronDriver, routers=routers, floating_ips=[fip], security_groups=[group])
    assert rows["routers"] == {(r1, PROJECT, "ACTIVE", "True", "router1", "False"),
                               (r2, PROJECT, "DOWN", "False", "isolated", None)}
    assert rows["external_gateway_infos"] == {(r1, EXT_NET, "True")}
    assert rows["external_fixed_ips"] == {(r1, EXT_SUBNET, "172.24.4.6"),
                                          (r1, SUBNET6, "2001:db8::9")}
    assert rows["floating_ips"] == {(
        "2f245a7b-796b-4f26-9cf9-9e82d248fda7", r1, PROJECT, EXT_NET, "10.0.0.3",
        "172.24.4.228", "ce705c24-c1ef-408a-bda3-7bbd946164ab", "ACTIVE")}
    assert rows["security_groups"] == {(SG, PROJECT, "default", "default")}
    assert rows["security_group_rules"] == {
        (SG, "38ce2d8e-e8f1-48bd-83c2-d33cb9f50c3d", PROJECT, None, "egress", "IPv4", None,
         None, None, None),
        (SG, "565b9502-12de-4ffd-91e9-68885cff6ae1", PROJECT, None, "ingress", "IPv4", "tcp",
         22, 22, "0.0.0.0/0")}


# ---------------------------------------------------------------- cinder

VOL1, VOL2 = "6edbc2f4-1507-44f8-ac0d-eed1d2608d38", "1aa9c0c1-7a3e-4ae5-8d8c-2f6f1b7d0c55"
SERVER = "9168b536-cd40-4630-b43f-b259807c6e87"


def test_cinder_volumes_attachments_snapshots_services():
    volumes = [
        Volume.existing(**{
            "attachments": [{"server_id": SERVER, "attachment_id": "3b8b6631-1cf7-4fd7-9afb",
                             "attached_at": "2024-05-03T06:51:48.000000", "host_name": None,
                             "volume_id": VOL1, "device": "/dev/vdb", "id": VOL1}],
            "availability_zone": "nova", "bootable": "false", "consistencygroup_id": None,
            "created_at": "2024-05-03T06:50:07.770785", "description": None,
            "encrypted": False, "id": VOL1, "links": [], "metadata": {},
            "migration_status": None, "multiattach": False, "name": "data",
            "os-vol-host-attr:host": "node1@lvm#lvm", "os-vol-tenant-attr:tenant_id": PROJECT,
            "replication_status": None, "size": 10, "snapshot_id": None, "source_volid": None,
            "status": "in-use", "updated_at": "2024-05-03T06:51:48.000000", "user_id": USER,
            "volume_type": "lvmdriver-1", "group_id": None, "shared_targets": True}),
        Volume.existing(**{
            "attachments": [], "availability_zone": "nova", "bootable": "true",
            "consistencygroup_id": "c1c1c1c1-0000-4000-8000-000000000001",
            "created_at": "2024-05-04T06:50:07.000000", "description": "root disk",
            "encrypted": True, "id": VOL2, "migration_status": "success", "multiattach": True,
            "name": "root", "replication_status": "disabled", "size": 20,
            "snapshot_id": "0b5d7c7e-5c6a-4e9e-8f1a-4f2b3c4d5e6f", "source_volid": VOL1,
            "status": "available", "user_id": USER, "volume_type": "encrypted"}),
    ]
    snapshot = Snapshot.existing(**{
        "created_at": "2024-05-05T00:00:00.000000", "description": None,
        "id": "0b5d7c7e-5c6a-4e9e-8f1a-4f2b3c4d5e6f", "metadata": {}, "name": "snap1",
        "size": 10, "status": "available", "updated_at": None, "volume_id": VOL1,
        "os-extended-snapshot-attributes:progress": "100%",
        "os-extended-snapshot-attributes:project_id": PROJECT})
    service = VolumeService.existing(**{
        "binary": "cinder-volume", "disabled_reason": None, "host": "node1@lvm", "state": "up",
        "status": "enabled", "updated_at": "2024-05-05T10:00:00.000000", "zone": "nova",
        "frozen": False, "cluster": None, "replication_status": "disabled",
        "active_backend_id": None, "backend_state": "up"})
    rows = rows_of(CinderDriver, volumes=volumes, snapshots=[snapshot], services=[service])
    assert rows["volumes"] == {
        (VOL1, 10, USER, "in-use", None, "data", "false", "2024-05-03T06:50:07.770785",
         "lvmdriver-1", "False", "nova", None, "False", None, None, None, None),
        (VOL2, 20, USER, "available", "root disk", "root", "true",
         "2024-05-04T06:50:07.000000", "encrypted", "True", "nova", "disabled", "True",
         "0b5d7c7e-5c6a-4e9e-8f1a-4f2b3c4d5e6f", VOL1, "c1c1c1c1-0000-4000-8000-000000000001",
         "success")}
    assert rows["attachments"] == {(VOL1, SERVER, "3b8b6631-1cf7-4fd7-9afb", None, "/dev/vdb")}
    assert rows["snapshots"] == {("0b5d7c7e-5c6a-4e9e-8f1a-4f2b3c4d5e6f", 10, "available",
                                  VOL1, "snap1", "2024-05-05T00:00:00.000000")}
    assert rows["services"] == {("enabled", "cinder-volume", "nova", "up",
                                 "2024-05-05T10:00:00.000000", "node1@lvm", None)}


# ---------------------------------------------------------------- glance

IMG1, IMG2 = "1bea47ed-f6a9-463b-b423-14b9cca9ad27", "781b3762-9469-4cec-b58d-3349e5de4e9c"


def test_glance_images_and_tags():
    images = listed(
        Image, {
            "status": "active", "name": "cirros-0.6.2", "tags": ["base", "tiny"],
            "container_format": "bare", "created_at": "2024-05-03T10:00:00Z",
            "disk_format": "qcow2", "updated_at": "2024-05-03T10:00:05Z",
            "visibility": "public", "self": f"/v2/images/{IMG1}", "min_disk": 0,
            "protected": False, "id": IMG1, "file": f"/v2/images/{IMG1}/file",
            "checksum": "c8fc807773e5354afe61636071771906", "os_hash_algo": "sha512",
            "os_hash_value": "1103b92ce8ad966e41235a4de260deb7", "owner": PROJECT,
            "size": 21430272, "min_ram": 0, "schema": "/v2/schemas/image",
            "virtual_size": None, "os_hidden": False},
        {
            "status": "deactivated", "name": "legacy", "tags": [], "container_format": "ami",
            "created_at": "2024-05-01T00:00:00Z", "disk_format": "ami",
            "updated_at": "2024-05-02T00:00:00Z", "visibility": "private", "min_disk": 1,
            "protected": True, "id": IMG2, "file": f"/v2/images/{IMG2}/file",
            "checksum": None, "owner": PROJECT, "size": None, "min_ram": 256,
            "schema": "/v2/schemas/image", "kernel_id": "e1b6edd4-bd9b-40ac-b010-8a6c16de4ba4",
            "ramdisk_id": "8f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"})
    rows = rows_of(GlanceDriver, images=images)
    assert rows["images"] == {
        (IMG1, "active", "cirros-0.6.2", "bare", "2024-05-03T10:00:00Z",
         "2024-05-03T10:00:05Z", "qcow2", PROJECT, "False", 0, 0,
         "c8fc807773e5354afe61636071771906", 21430272, f"/v2/images/{IMG1}/file", None, None,
         "/v2/schemas/image", "public"),
        (IMG2, "deactivated", "legacy", "ami", "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z",
         "ami", PROJECT, "True", 256, 1, None, None, f"/v2/images/{IMG2}/file",
         "e1b6edd4-bd9b-40ac-b010-8a6c16de4ba4", "8f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b",
         "/v2/schemas/image", "private")}
    assert rows["tags"] == {(IMG1, "base"), (IMG1, "tiny")}


# ---------------------------------------------------------------- keystone


def test_keystone_rows():
    rows = rows_of(
        KeystoneDriver,
        role_assignments=[
            RoleAssignment.existing(**{"role": {"id": "r1"}, "user": {"id": USER},
                                       "scope": {"project": {"id": PROJECT}}, "links": {}}),
            RoleAssignment.existing(**{"role": {"id": "r1"}, "group": {"id": "g1"},
                                       "scope": {"domain": {"id": "default"},
                                                 "OS-INHERIT:inherited_to": "projects"},
                                       "links": {}}),
            RoleAssignment.existing(**{"role": {"id": "r2"}, "user": {"id": USER},
                                       "scope": {"system": {"all": True}}, "links": {}})],
        users=[User.existing(**{"id": USER, "name": "alice", "enabled": False,
                                "default_project_id": PROJECT, "domain_id": "default",
                                "password_expires_at": None, "options": {}, "links": {}})],
        projects=[Project.existing(**{"id": PROJECT, "name": "demo", "enabled": True,
                                      "description": "", "domain_id": "default",
                                      "is_domain": False, "parent_id": "default",
                                      "tags": []})],
        roles=[Role.existing(**{"id": "r1", "name": "reader", "domain_id": None})],
        domains=[Domain.existing(**{"id": "default", "name": "Default", "enabled": True,
                                    "description": "The default domain"})],
        services=[CatalogService.existing(**{"id": "s1", "type": "identity",
                                             "name": "keystone", "enabled": True,
                                             "description": None, "links": {}})],
        endpoints=[Endpoint.existing(**{"id": "e1", "service_id": "s1", "interface": "public",
                                        "region_id": "RegionOne", "enabled": False,
                                        "url": "http://ks:5000/v3/", "links": {}})],
        endpoint_versions=[
            {"endpoint_id": "e1", "version_id": "v3.14", "major": "3", "status": "CURRENT",
             "min_version": None, "max_version": None, "error": None}])
    assert rows == {
        "users": {(USER, "alice", "False", PROJECT, "default")},
        "projects": {("True", "", "demo", "default", PROJECT)},
        "roles": {("r1", "reader")},
        "domains": {("True", "The default domain", "Default", "default")},
        "role_assignments": {("r1", USER, None, PROJECT, None, "False"),
                             ("r1", None, "g1", None, "default", "True"),
                             ("r2", USER, None, None, None, "False")},
        "services": {("s1", "identity", "keystone", "True", None)},
        "endpoints": {("e1", "s1", "public", "RegionOne", "http://ks:5000/v3/", "False")},
        "endpoint_versions": {("e1", "v3.14", "3", "CURRENT", None, None, None)},
    }


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(("change", "needle"), [
    ({"project_name": None}, "'project_name' (or Congress's 'tenant_name')"),
    ({"auth_url": "keystone:5000"}, "auth_url 'keystone:5000' must be an http(s) URL"),
    ({"interface": "private"}, "interface must be one of public, internal, admin"),
    ({"timeout_seconds": "soon"}, "timeout_seconds must be a number of seconds"),
    ({"timeout_seconds": 0}, "timeout_seconds must be a number of seconds"),
    ({"poll_time": -1}, "poll_time must be a number of seconds"),
    ({"verify": "maybe"}, "verify must be true or false"),
    ({"cacert": "/nonexistent/ca.pem"}, "cacert '/nonexistent/ca.pem' is not a readable file"),
    ({"project": "admin"}, "has no config key 'project'"),
    ({"password": None}, "needs config key 'password'"),
])
def test_bad_config_is_refused_naming_the_key(change, needle):
    config = {k: v for k, v in {**CONFIG, **change}.items() if v is not None}
    with pytest.raises(DriverError) as err:
        NeutronDriver("net", config)
    assert err.value.status == 400
    assert needle in str(err.value)
    assert "s3cret-pw" not in str(err.value)


def test_congress_config_keys_are_accepted():
    config = {k: v for k, v in CONFIG.items() if k != "project_name"}
    driver = NovaDriver("nova", {**config, "tenant_name": "admin", "api_version": "2.60",
                                 "verify": "false", "timeout_seconds": "2.5",
                                 "poll_time": "30"})
    assert driver.project_name == "admin" and driver.verify is False
    assert driver.timeout == 2.5 and driver.connection_config() == {
        "compute_api_version": "2.60"}
    with pytest.raises(DriverError, match="api_version 'latest' is not a compute microversion"):
        NovaDriver("nova", {**CONFIG, "api_version": "latest"})


# ---------------------------------------------------------------- action arguments
# Checked before any request: these need no service.


@pytest.mark.parametrize(("driver", "action", "positional", "named", "needle"), [
    (NovaDriver, "servers.explode", [], {},
     "has no action 'servers.explode'; its actions: servers.pause, servers.unpause"),
    (NovaDriver, "servers.pause", [], {}, "servers.pause(id) needs argument 'id'"),
    (NovaDriver, "servers.pause", ["a", "b"], {}, "takes 1 argument(s), got 2 positional"),
    (NovaDriver, "servers.pause", [], {"server": "a"}, "has no argument 'server'"),
    (NovaDriver, "servers.pause", [""], {}, "bad argument 'id': expected an id"),
    (NovaDriver, "servers.reboot", ["vm1", "GENTLE"], {},
     "bad argument 'type': expected SOFT or HARD, got 'GENTLE'"),
    (NovaDriver, "servers.reboot", ["vm1"], {"id": "vm1"},
     "argument 'id' given both by position and by name"),
    (NeutronDriver, "ports.update_admin_state", ["p1"], {},
     "ports.update_admin_state(id, up) needs argument 'up'"),
    (NeutronDriver, "ports.update_admin_state", ["p1", "sideways"], {},
     "bad argument 'up': expected true or false"),
    (GlanceDriver, "images.delete", [], {"id": ["x"]}, "bad argument 'id'"),
    (CinderDriver, "volumes.detach", ["v1"], {}, "its actions: volumes.delete"),
])
def test_bad_action_calls_answer_400_naming_the_problem(driver, action, positional, named,
                                                        needle):
    with pytest.raises(DriverError) as err:
        driver("ds", CONFIG).execute(action, positional, named)
    assert err.value.status == 400
    assert needle in str(err.value)


def test_action_specs_show_optional_args():
    (reboot,) = [a for a in NovaDriver("nova", CONFIG).actions() if a.name == "servers.reboot"]
    assert reboot.to_json()["args"] == [
        {"name": "id", "description": "id of the server"},
        {"name": "type", "description": "SOFT (ask the guest) or HARD (power cycle) "
                                        "(optional, default SOFT)"}]


# ---------------------------------------------------------------- catalog and regions
# Against the real Keystone: its catalog decides which regions a datasource reads.


@pytest.fixture
def two_region_compute(keystone) -> Iterator[tuple[str, str, dict[str, int]]]:
    """A compute service in two new regions whose endpoints are closed ports."""
    tag = uuid.uuid4().hex[:6]
    regions = (f"East-{tag}", f"West-{tag}")
    ports = {r: realkeystone.free_port() for r in regions}
    for r in regions:
        keystone.api("POST", "/regions", json={"region": {"id": r}})
    service_id = keystone.api("POST", "/services", json={"service": {
        "type": "compute", "name": f"nova-{tag}", "enabled": True}}).json()["service"]["id"]
    for r in regions:
        keystone.api("POST", "/endpoints", json={"endpoint": {
            "service_id": service_id, "interface": "public", "region_id": r, "enabled": True,
            "url": f"http://127.0.0.1:{ports[r]}/v2.1"}})
    try:
        yield regions[0], regions[1], ports
    finally:
        keystone.api("DELETE", f"/services/{service_id}")  # its endpoints go with it
        for r in regions:
            keystone.api("DELETE", f"/regions/{r}")


def ks_config(ks, **more) -> dict:
    return {"auth_url": ks.auth_url, "username": ks.admin_username,
            "password": ks.admin_password, "project_name": ks.admin_project,
            "timeout_seconds": 5, **more}


@pytest.mark.keystone
def test_every_catalog_region_is_read_unless_region_name_is_set(keystone, two_region_compute):
    east, west, ports = two_region_compute
    nova = NovaDriver("nova", ks_config(keystone))
    try:
        assert nova.regions() == [east, west]
        with pytest.raises(DriverError) as err:
            nova.poll()
        assert err.value.status == 503
        assert f"in region {east}: Nova at http://127.0.0.1:{ports[east]}" in str(err.value)
        assert "is unreachable (connection refused)" in str(err.value)
        with pytest.raises(DriverError) as err:
            nova.execute("servers.pause", ["vm1"], {})
        assert err.value.status == 503 and "running servers.pause" in str(err.value)
    finally:
        nova.close()
    west_only = NovaDriver("nova", ks_config(keystone, region_name=west))
    try:
        assert west_only.regions() == [west]
        with pytest.raises(DriverError) as err:
            west_only.poll()
        assert f"in region {west}: Nova at http://127.0.0.1:{ports[west]}" in str(err.value)
    finally:
        west_only.close()


@pytest.mark.keystone
def test_a_service_missing_from_the_catalog_is_named(keystone, two_region_compute):
    east, _, _ = two_region_compute
    glance = GlanceDriver("img", ks_config(keystone))
    with pytest.raises(DriverError) as err:
        glance.poll()
    assert err.value.status == 502
    assert (f"the Keystone catalog at {keystone.auth_url} has no public endpoint of type "
            "image (Glance)") in str(err.value)
    internal = NovaDriver("nova", ks_config(keystone, interface="internal"))
    with pytest.raises(DriverError, match="has no internal endpoint of type compute"):
        internal.poll()
    pinned = NeutronDriver("net", ks_config(keystone, region_name=east))
    with pytest.raises(DriverError) as err:
        pinned.poll()
    assert err.value.status == 502
    assert f"no usable public network endpoint in region {east}" in str(err.value)
    refused = CinderDriver("vol", ks_config(keystone, password="not-the-password"))
    with pytest.raises(DriverError) as err:
        refused.poll()
    assert err.value.status == 502 and "credentials refused by Keystone" in str(err.value)
    assert "not-the-password" not in str(err.value)
