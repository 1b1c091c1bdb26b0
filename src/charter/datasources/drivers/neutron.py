"""``neutronv2``: Neutron's networks, ports, subnets, routers, floating IPs and security
groups with their sub-tables: Congress's 14 tables and columns.

A Neutron without the L3 extension (no ``router`` service plugin) has no routers and no
floating IPs: those tables are then empty. Booleans (``admin_state_up``, ``shared``,
``enable_dhcp``, ...) hold "True"/"False" as in Congress. ``tenant_id`` holds the project
id (Neutron's ``project_id``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from charter.datasources.drivers.openstack import (
    ID,
    Action,
    Arg,
    OpenStackDriver,
    boolean,
    extended,
    field,
    value,
)


def _sub_hdict(table: str, parent_col: str, fields: tuple, parent_key: str = "id") -> dict:
    """A sub-table of a list of dicts, each row led by the parent's key."""
    return {"translation-type": "HDICT", "table-name": table, "parent-key": parent_key,
            "parent-col-name": parent_col, "parent-key-desc": parent_col.replace("_", " "),
            "selector-type": "DICT_SELECTOR", "in-list": True, "field-translators": fields}


def _sub_list(table: str, parent_col: str, val_col: str, desc: str) -> dict:
    return {"translation-type": "LIST", "table-name": table, "parent-key": "id",
            "parent-col-name": parent_col, "parent-key-desc": parent_col.replace("_", " "),
            "val-col": val_col, "val-col-desc": desc, "translator": value()}


def _tenant(rule: dict) -> dict:
    """A rule dict with ``tenant_id`` even where Neutron sends only ``project_id``."""
    return {**rule, "tenant_id": rule.get("tenant_id") or rule.get("project_id")}


def _gateway(router: Any) -> dict | None:
    """A router's external gateway, with the router's id for its fixed IPs' rows."""
    info = router.external_gateway_info
    return {**info, "router_id": router.id} if info else None


NETWORKS = {
    "translation-type": "HDICT", "table-name": "networks", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", desc="network id"),
        field("project_id", "tenant_id", "project that owns the network"),
        field("name", desc="network name"),
        field("status", desc="ACTIVE, DOWN, BUILD or ERROR"),
        field("is_admin_state_up", "admin_state_up", "True when administratively up"),
        field("is_shared", "shared", "True when shared with every project"),
    ),
}
PORTS = {
    "translation-type": "HDICT", "table-name": "ports", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", desc="port id"),
        field("project_id", "tenant_id", "project that owns the port"),
        field("name", desc="port name"),
        field("network_id", desc="network the port is on"),
        field("mac_address", desc="MAC address"),
        field("is_admin_state_up", "admin_state_up", "True when administratively up"),
        field("status", desc="ACTIVE, DOWN, BUILD or ERROR"),
        field("device_id", desc="server or router using the port"),
        field("device_owner", desc="kind of device: compute:nova, network:dhcp, ..."),
        {"fieldname": "fixed_ips", "translator": _sub_hdict("fixed_ips", "port_id", (
            field("ip_address", desc="fixed IP address of the port"),
            field("subnet_id", desc="subnet the address is in")))},
        {"fieldname": "security_group_ids", "translator": _sub_list(
            "security_group_port_bindings", "port_id", "security_group_id",
            "security group applied to the port")},
    ),
}
SUBNETS = {
    "translation-type": "HDICT", "table-name": "subnets", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", desc="subnet id"),
        field("project_id", "tenant_id", "project that owns the subnet"),
        field("name", desc="subnet name"),
        field("network_id", desc="network of the subnet"),
        field("ip_version", desc="4 or 6"),
        field("cidr", desc="address range in CIDR notation"),
        field("gateway_ip", desc="gateway address"),
        field("is_dhcp_enabled", "enable_dhcp", "True when DHCP serves the subnet"),
        field("ipv6_ra_mode", desc="IPv6 router advertisement mode"),
        field("ipv6_address_mode", desc="IPv6 address mode"),
        {"fieldname": "allocation_pools", "translator": _sub_hdict(
            "allocation_pools", "subnet_id", (
                field("start", desc="first address of the pool"),
                field("end", desc="last address of the pool")))},
        {"fieldname": "dns_nameservers", "translator": _sub_list(
            "dns_nameservers", "subnet_id", "dns_nameserver", "DNS server address")},
        {"fieldname": "host_routes", "translator": _sub_hdict("host_routes", "subnet_id", (
            field("destination", desc="destination CIDR"),
            field("nexthop", desc="next hop address")))},
    ),
}
ROUTERS = {
    "translation-type": "HDICT", "table-name": "routers", "selector-type": "DOT_SELECTOR",
    "objects-extract-fn": lambda routers: [extended(r, gateway=_gateway(r)) for r in routers],
    "field-translators": (
        field("id", desc="router id"),
        field("project_id", "tenant_id", "project that owns the router"),
        field("status", desc="ACTIVE, DOWN, ..."),
        field("is_admin_state_up", "admin_state_up", "True when administratively up"),
        field("name", desc="router name"),
        field("is_distributed", "distributed", "True for a distributed (DVR) router"),
        {"fieldname": "gateway", "translator": {
            "translation-type": "HDICT", "table-name": "external_gateway_infos",
            "parent-key": "id", "parent-col-name": "router_id",
            "parent-key-desc": "router id", "selector-type": "DICT_SELECTOR",
            "field-translators": (
                field("network_id", desc="external network of the gateway"),
                field("enable_snat", desc="True when source NAT is on"),
                {"fieldname": "external_fixed_ips", "translator": _sub_hdict(
                    "external_fixed_ips", "router_id", (
                        field("subnet_id", desc="subnet of the gateway address"),
                        field("ip_address", desc="gateway address")),
                    parent_key="router_id")},
            )}},
    ),
}
FLOATING_IPS = {
    "translation-type": "HDICT", "table-name": "floating_ips", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", desc="floating IP id"),
        field("router_id", desc="router that does the NAT"),
        field("project_id", "tenant_id", "project that owns the floating IP"),
        field("floating_network_id", desc="external network of the floating IP"),
        field("fixed_ip_address", desc="fixed address it maps to"),
        field("name", "floating_ip_address", "the floating address"),
        field("port_id", desc="port it is associated with"),
        field("status", desc="ACTIVE, DOWN or ERROR"),
    ),
}
SECURITY_GROUPS = {
    "translation-type": "HDICT", "table-name": "security_groups",
    "selector-type": "DOT_SELECTOR",
    "objects-extract-fn": lambda groups: [
        extended(g, rules=[_tenant(r) for r in g.security_group_rules or ()]) for g in groups],
    "field-translators": (
        field("id", desc="security group id"),
        field("project_id", "tenant_id", "project that owns the group"),
        field("name", desc="group name"),
        field("description", desc="group description"),
        {"fieldname": "rules", "translator": _sub_hdict(
            "security_group_rules", "security_group_id", (
                field("id", desc="rule id"),
                field("tenant_id", desc="project that owns the rule"),
                field("remote_group_id", desc="group whose members the rule admits"),
                field("direction", desc="ingress or egress"),
                field("ethertype", desc="IPv4 or IPv6"),
                field("protocol", desc="tcp, udp, icmp, ... (None: any)"),
                field("port_range_min", desc="first port"),
                field("port_range_max", desc="last port"),
                field("remote_ip_prefix", desc="CIDR the rule admits"),
            ))},
    ),
}


class NeutronDriver(OpenStackDriver):
    driver = "neutronv2"
    description = ("OpenStack Networking (Neutron): networks, ports, subnets, routers, "
                   "floating IPs, security groups")
    service_type = "network"
    service_label = "Neutron"
    translators = (NETWORKS, PORTS, SUBNETS, ROUTERS, SECURITY_GROUPS, FLOATING_IPS)
    # Routers and floating IPs come from the L3 extension ("router" service plugin): a
    # Neutron without it answers 404, which means none rather than a failed poll.
    optional_tables = frozenset({"routers", "floating_ips"})
    action_list: ClassVar[tuple[Action, ...]] = (
        Action("ports.delete", "Delete a port", (ID("port"),),
               lambda c, a: c.network.delete_port(a["id"], ignore_missing=False)),
        Action("ports.update_admin_state", "Set a port administratively up or down", (
            ID("port"), Arg("up", "true: up, false: down", parse=boolean)),
            lambda c, a: c.network.update_port(a["id"], is_admin_state_up=a["up"])),
        Action("security_group_rules.delete", "Delete a security group rule",
               (ID("security group rule"),),
               lambda c, a: c.network.delete_security_group_rule(a["id"],
                                                                 ignore_missing=False)),
        Action("networks.delete", "Delete a network (it must have no ports left)",
               (ID("network"),),
               lambda c, a: c.network.delete_network(a["id"], ignore_missing=False)),
    )

    def listings(self, conn: Any) -> dict:
        network = conn.network
        return {"networks": network.networks, "ports": network.ports,
                "subnets": network.subnets, "routers": network.routers,
                "security_groups": network.security_groups, "floating_ips": network.ips}
