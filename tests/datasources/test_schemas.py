"""Congress driver schemas match the reference (congress-reference.md §5.3) exactly."""

from __future__ import annotations

import re

import pytest

from charter.datasources.schemas import CONGRESS_DRIVER_SCHEMAS, DRIVER_ALIASES, driver_schema

# Every table §5.3 lists with its columns, written as the reference writes it.
SECTION_5_3_COLUMNS: list[tuple[str, str]] = [
    (
        "nova",
        "servers(id,name,host_id,status,tenant_id,user_id,image_id,flavor_id,zone,"
        "host_name,created_at)",
    ),
    ("nova", "servers.addresses(server_id,network_name,address,version,mac_address,address_type)"),
    ("nova", "tags(server_id,tag)"),
    ("nova", "flavors(id,name,vcpus,ram,disk,ephemeral,rxtx_factor)"),
    ("nova", "hypervisors(hypervisor_hostname,id,state,status)"),
    ("nova", "services(service_id,binary,host,zone,status,state,updated_at,disabled_reason)"),
    ("nova", "availability_zones(zone,state)"),
    ("neutronv2", "networks(id,tenant_id,name,status,admin_state_up,shared)"),
    (
        "neutronv2",
        "ports(id,tenant_id,name,network_id,mac_address,admin_state_up,status,"
        "device_id,device_owner)",
    ),
    ("neutronv2", "fixed_ips(port_id,ip_address,subnet_id)"),
    ("neutronv2", "security_group_port_bindings(port_id,security_group_id)"),
    (
        "neutronv2",
        "subnets(id,tenant_id,name,network_id,ip_version,cidr,gateway_ip,enable_dhcp,"
        "ipv6_ra_mode,ipv6_address_mode)",
    ),
    ("neutronv2", "allocation_pools(subnet_id,start,end)"),
    ("neutronv2", "dns_nameservers(subnet_id,dns_nameserver)"),
    ("neutronv2", "host_routes(subnet_id,destination,nexthop)"),
    ("neutronv2", "routers(id,tenant_id,status,admin_state_up,name,distributed)"),
    ("neutronv2", "external_gateway_infos(router_id,network_id,enable_snat)"),
    ("neutronv2", "external_fixed_ips(router_id,subnet_id,ip_address)"),
    (
        "neutronv2",
        "floating_ips(id,router_id,tenant_id,floating_network_id,fixed_ip_address,"
        "floating_ip_address,port_id,status)",
    ),
    ("neutronv2", "security_groups(id,tenant_id,name,description)"),
    (
        "neutronv2",
        "security_group_rules(security_group_id,id,tenant_id,remote_group_id,direction,"
        "ethertype,protocol,port_range_min,port_range_max,remote_ip_prefix)",
    ),
    ("neutronv2_qos", "ports(id)"),
    ("neutronv2_qos", "qos_policy_port_bindings(port_id,qos_policy_id)"),
    (
        "neutronv2_qos",
        "rules(qos_policy_id,id,min_kbps,direction,type,dscp_mark,max_burst_kbps,max_kbps)",
    ),
    ("keystonev3", "users(id,name,enabled,default_project_id,domain_id)"),
    ("keystonev3", "projects(enabled,description,name,domain_id,id)"),
    ("keystonev3", "roles(id,name)"),
    ("keystonev3", "domains(enabled,description,name,id)"),
    (
        "cinder",
        "volumes(id,size,user_id,status,description,name,bootable,created_at,volume_type,"
        "encrypted,availability_zone,replication_status,multiattach,snapshot_id,source_volid,"
        "consistencygroup_id,migration_status)",
    ),
    ("cinder", "attachments(volume_id,server_id,attachment_id,host_name,device)"),
    ("cinder", "snapshots(id,size,status,volume_id,name,created_at)"),
    ("cinder", "services(status,binary,zone,state,updated_at,host,disabled_reason)"),
    (
        "glancev2",
        "images(id,status,name,container_format,created_at,updated_at,disk_format,owner,"
        "protected,min_ram,min_disk,checksum,size,file,kernel_id,ramdisk_id,schema,visibility)",
    ),
    ("glancev2", "tags(image_id,tag)"),
    ("swift", "containers(count,bytes,name)"),
    ("swift", "objects(bytes,last_modified,hash,name,content_type,container_name)"),
    ("monasca", "metrics(id,name,dimensions)"),
    ("monasca", "dimensions(id,key,value)"),
    ("monasca", "statistics(name,statistics)"),
    ("doctor", "events(time,type,hostname,status,monitor,monitor_event_id)"),
    ("benchmark", "benchtable(field1,field2)"),
]

# Every driver §5.3 names, with every table it names (columns or not).
SECTION_5_3_TABLES: dict[str, set[str]] = {
    "nova": {
        "servers",
        "servers.addresses",
        "tags",
        "flavors",
        "hypervisors",
        "services",
        "availability_zones",
    },
    "neutronv2": {
        "networks",
        "ports",
        "fixed_ips",
        "security_group_port_bindings",
        "subnets",
        "allocation_pools",
        "dns_nameservers",
        "host_routes",
        "routers",
        "external_gateway_infos",
        "external_fixed_ips",
        "floating_ips",
        "security_groups",
        "security_group_rules",
    },
    "neutronv2_qos": {"policies", "ports", "qos_policy_port_bindings", "rules"},
    "keystonev3": {"users", "projects", "roles", "domains"},
    "keystone": {"users", "tenants", "roles"},
    "cinder": {"volumes", "attachments", "snapshots", "services"},
    "glancev2": {"images", "tags"},
    "swift": {"containers", "objects"},
    "heat": {
        "stacks",
        "stacks_links",
        "resources",
        "resources_links",
        "events",
        "events_links",
        "deployments",
        "deployment_output_values",
    },
    "ironic": {"nodes", "node_properties", "ports", "chassises", "drivers", "active_hosts"},
    "monasca": {"metrics", "dimensions", "statistics", "statistics.data"},
    "monasca_webhook": {"alarm_notification", "alarms.metrics", "alarms.metrics.dimensions"},
    "doctor": {"events"},
    "vitrage": {"alarms"},
    "aodh": {"alarms"},
    "mistral": {"workflows", "actions", "workflow_executions", "action_executions"},
    "tacker": {"vnfds", "vnfs", "vnfs.instances"},
    "murano": {"objects", "parent_types", "properties", "relationships", "connected", "states"},
    "vcenter": {"hosts", "host.DNS_IPs", "host.PNICs", "host.VNICs", "vms"},
    "benchmark": {"benchtable"},
}

# Tables §5.3 gives only a column count for, and the size of drivers it gives a table count.
SECTION_5_3_WIDTHS = [("vitrage", "alarms", 13), ("aodh", "alarms", 15)]
SECTION_5_3_TABLE_COUNTS = [("neutronv2", 14), ("cloudfoundryv2", 5), ("config", 17)]


def _parse(entry: str) -> tuple[str, tuple[str, ...]]:
    match = re.fullmatch(r"([\w.]+)\((.*)\)", entry)
    assert match, entry
    return match.group(1), tuple(match.group(2).split(","))


@pytest.mark.parametrize(
    ("driver", "entry"),
    SECTION_5_3_COLUMNS,
    ids=[f"{d}:{e.split('(')[0]}" for d, e in SECTION_5_3_COLUMNS],
)
def test_columns_match_reference(driver: str, entry: str) -> None:
    table, columns = _parse(entry)
    assert CONGRESS_DRIVER_SCHEMAS[driver][table] == columns


@pytest.mark.parametrize("driver", sorted(SECTION_5_3_TABLES))
def test_tables_match_reference(driver: str) -> None:
    assert set(CONGRESS_DRIVER_SCHEMAS[driver]) == SECTION_5_3_TABLES[driver]


@pytest.mark.parametrize(("driver", "table", "width"), SECTION_5_3_WIDTHS)
def test_widths_match_reference(driver: str, table: str, width: int) -> None:
    assert len(CONGRESS_DRIVER_SCHEMAS[driver][table]) == width


@pytest.mark.parametrize(("driver", "count"), SECTION_5_3_TABLE_COUNTS)
def test_table_counts_match_reference(driver: str, count: int) -> None:
    assert len(CONGRESS_DRIVER_SCHEMAS[driver]) == count


def test_config_validator_tables_named_in_reference() -> None:
    assert {"option", "binding", "file", "host"} <= set(CONGRESS_DRIVER_SCHEMAS["config"])


@pytest.mark.parametrize(
    ("driver", "table"),
    [(d, t) for d, tables in sorted(CONGRESS_DRIVER_SCHEMAS.items()) for t in sorted(tables)],
)
def test_columns_are_distinct_names(driver: str, table: str) -> None:
    columns = CONGRESS_DRIVER_SCHEMAS[driver][table]
    assert isinstance(columns, tuple) and columns
    assert all(isinstance(c, str) and c for c in columns)
    assert len(set(columns)) == len(columns)


def test_positional_reference_resolves_to_congress_column() -> None:
    # Congress reads nova:servers(x, 3="ACTIVE") as status="ACTIVE".
    assert driver_schema("nova")["servers"][3] == "status"


@pytest.mark.parametrize(("alias", "driver"), sorted(DRIVER_ALIASES.items()))
def test_module_name_aliases(alias: str, driver: str) -> None:
    assert driver_schema(alias) == CONGRESS_DRIVER_SCHEMAS[driver]


def test_driver_schema_returns_a_copy() -> None:
    tables = driver_schema("swift")
    tables["extra"] = ("x",)
    assert "extra" not in CONGRESS_DRIVER_SCHEMAS["swift"]


def test_unknown_driver_lists_known_ones() -> None:
    with pytest.raises(LookupError) as info:
        driver_schema("no-such-driver")
    message = str(info.value)
    assert "'no-such-driver'" in message
    assert all(name in message for name in CONGRESS_DRIVER_SCHEMAS)
    assert not isinstance(info.value, KeyError)
