"""``nova``: Nova's servers (with addresses and tags), flavors, hypervisors, services and
availability zones, in Congress's tables and columns.

Reads use compute microversion 2.26 unless config ``api_version`` says otherwise, as
Congress's driver did: it is the first with server tags, and the last whose server body
still carries the flavor's id (from 2.47 on Nova embeds the flavor and only its name
remains, which ``flavor_id`` then holds). Servers of every project are listed, so the user
needs admin.

``servers.details`` is Charter's (Congress's driver had no such table): what a security
check needs of a server beyond Congress's columns -- when it last changed, its key pair,
its config drive -- in a table of its own, so that Congress's ``servers`` keeps its columns.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from charter.datasources.driver import ConfigOption, DriverError
from charter.datasources.drivers.openstack import (
    ID,
    OPENSTACK_OPTIONS,
    Action,
    Arg,
    OpenStackDriver,
    extended,
    field,
    value,
)

DEFAULT_API_VERSION = "2.26"


def ref_id(ref: Any) -> Any:
    """The id in a server's ``image``/``flavor`` reference (a string, a dict or a resource).

    A server booted from a volume has no image (Nova sends ""), so it has no image_id. A
    flavor embedded by microversion >= 2.47 has no id; its name stands in for it.
    """
    if ref is None or isinstance(ref, str):
        return ref or None
    get = getattr(ref, "get", None)
    if callable(get):
        return get("id") or get("original_name") or None
    return str(ref)


def flat_addresses(addresses: Any) -> list[dict]:
    """``{network: [address, ...]}`` as one list of addresses, each naming its network."""
    return [{**address, "network_name": network}
            for network, listed in (addresses or {}).items() for address in listed or ()]


def zone_state(state: Any) -> Any:
    """Nova's ``zoneState`` ``{"available": true}`` as "available" or "unavailable"."""
    if isinstance(state, dict):
        return "available" if state.get("available") else "unavailable"
    return state


def true_text(value: Any) -> Any:
    """Nova's config_drive ("True", "" or a JSON boolean) and locked as "True"/"False"."""
    if value is None:
        return None
    return str(value is True or str(value).strip().lower() in ("true", "1", "yes"))


def details(server: Any) -> dict:
    """The columns of ``servers.details``, from the server's body."""
    return {"updated_at": server.updated_at, "key_name": server.key_name or None,
            "config_drive": true_text(server.has_config_drive) or "False",
            "locked": true_text(server.is_locked)}


SERVERS = {
    "translation-type": "HDICT", "table-name": "servers", "selector-type": "DOT_SELECTOR",
    "objects-extract-fn": lambda servers: [
        extended(s, address_list=flat_addresses(s.addresses), details=details(s))
        for s in servers],
    "field-translators": (
        field("id", desc="server id"),
        field("name", desc="server name"),
        field("host_id", desc="hashed id of the host the server runs on (Nova's hostId)"),
        field("status", desc="server status: ACTIVE, SHUTOFF, PAUSED, ERROR, ..."),
        field("project_id", "tenant_id", "project that owns the server"),
        field("user_id", desc="user who created the server"),
        field("image", "image_id", "image the server was booted from (None: from a volume)",
              **{"extract-fn": ref_id}),
        field("flavor", "flavor_id", "flavor id (its name with microversion >= 2.47)",
              **{"extract-fn": ref_id}),
        field("availability_zone", "zone", "availability zone of the server"),
        field("hypervisor_hostname", "host_name", "hypervisor the server runs on"),
        field("created_at", desc="when the server was created"),
        {"fieldname": "address_list", "translator": {
            "translation-type": "HDICT", "table-name": "servers.addresses",
            "parent-key": "id", "parent-col-name": "server_id",
            "parent-key-desc": "server id", "selector-type": "DICT_SELECTOR", "in-list": True,
            "field-translators": (
                field("network_name", desc="network the address is on"),
                field("addr", "address", "IP address"),
                field("version", desc="IP version, 4 or 6"),
                field("OS-EXT-IPS-MAC:mac_addr", "mac_address", "MAC address of the port"),
                field("OS-EXT-IPS:type", "address_type", "fixed or floating"),
            )}},
        {"fieldname": "tags", "translator": {
            "translation-type": "LIST", "table-name": "tags", "parent-key": "id",
            "parent-col-name": "server_id", "parent-key-desc": "server id",
            "val-col": "tag", "val-col-desc": "a tag of the server", "translator": value()}},
        {"fieldname": "details", "translator": {
            "translation-type": "HDICT", "table-name": "servers.details",
            "parent-key": "id", "parent-col-name": "server_id",
            "parent-key-desc": "server id", "selector-type": "DICT_SELECTOR",
            "field-translators": (
                field("updated_at", desc="when the server last changed (status included)"),
                field("key_name", desc="key pair injected at boot (None: none)"),
                field("config_drive", desc="True when the server has a config drive"),
                field("locked", desc="True when locked (None before microversion 2.9)"),
            )}},
    ),
}
FLAVORS = {
    "translation-type": "HDICT", "table-name": "flavors", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", desc="flavor id"),
        field("name", desc="flavor name"),
        field("vcpus", desc="virtual CPUs"),
        field("ram", desc="memory in MB"),
        field("disk", desc="root disk in GB"),
        field("ephemeral", desc="ephemeral disk in GB"),
        field("rxtx_factor", desc="RX/TX factor (None from microversion 2.75 on)"),
    ),
}
HYPERVISORS = {
    "translation-type": "HDICT", "table-name": "hypervisors", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("name", "hypervisor_hostname", "hypervisor host name"),
        field("id", desc="hypervisor id (an integer before microversion 2.53, then a UUID)"),
        field("state", desc="up or down"),
        field("status", desc="enabled or disabled"),
    ),
}
SERVICES = {
    "translation-type": "HDICT", "table-name": "services", "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("id", "service_id", "service id"),
        field("binary", desc="nova-compute, nova-scheduler, nova-conductor, ..."),
        field("host", desc="host the service runs on"),
        field("availability_zone", "zone", "availability zone of the host"),
        field("status", desc="enabled or disabled"),
        field("state", desc="up or down"),
        field("updated_at", desc="last heartbeat"),
        field("disabled_reason", desc="why an operator disabled it"),
    ),
}
AVAILABILITY_ZONES = {
    "translation-type": "HDICT", "table-name": "availability_zones",
    "selector-type": "DOT_SELECTOR",
    "field-translators": (
        field("name", "zone", "availability zone name"),
        field("state", desc="available or unavailable", **{"extract-fn": zone_state}),
    ),
}

REBOOT_TYPES = ("SOFT", "HARD")


def reboot_type(value: Any) -> str:
    text = str(value).upper()
    if text not in REBOOT_TYPES:
        raise ValueError(f"expected SOFT or HARD, got {value!r}")
    return text


def _server(verb: str, description: str) -> Action:
    method = f"{verb}_server"
    return Action(f"servers.{verb}", description, (ID("server"),),
                  lambda c, a: getattr(c.compute, method)(a["id"]))


class NovaDriver(OpenStackDriver):
    driver = "nova"
    description = ("OpenStack Compute (Nova): servers (with addresses, tags and details), "
                   "flavors, hypervisors, services, availability zones")
    service_type = "compute"
    service_label = "Nova"
    config_options: ClassVar[tuple[ConfigOption, ...]] = (*OPENSTACK_OPTIONS, ConfigOption(
        "api_version", "compute microversion for reads (Congress's key)",
        default=DEFAULT_API_VERSION))
    translators = (SERVERS, FLAVORS, HYPERVISORS, SERVICES, AVAILABILITY_ZONES)
    action_list: ClassVar[tuple[Action, ...]] = (
        _server("pause", "Pause a server (kept in memory, not running)"),
        _server("unpause", "Unpause a paused server"),
        _server("stop", "Stop (shut off) a server"),
        _server("start", "Start a stopped server"),
        _server("suspend", "Suspend a server (its memory saved to disk)"),
        _server("resume", "Resume a suspended server"),
        Action("servers.reboot", "Reboot a server", (
            ID("server"),
            Arg("type", "SOFT (ask the guest) or HARD (power cycle)", required=False,
                default="SOFT", parse=reboot_type)),
            lambda c, a: c.compute.reboot_server(a["id"], a["type"])),
        Action("servers.delete", "Delete a server", (ID("server"),),
               lambda c, a: c.compute.delete_server(a["id"], ignore_missing=False)),
        _server("lock", "Lock a server: only admins may act on it"),
        _server("unlock", "Unlock a locked server"),
    )

    def check_config(self) -> None:
        super().check_config()
        version = str(self.config.get("api_version") or DEFAULT_API_VERSION)
        if not re.fullmatch(r"2(\.\d+)?", version):
            raise DriverError(f"datasource {self.name}: api_version {version!r} is not a "
                              "compute microversion such as 2.26")
        self.api_version = version

    def connection_config(self) -> dict[str, Any]:
        return {"compute_api_version": self.api_version}

    def listings(self, conn: Any) -> dict:
        compute = conn.compute
        return {
            "servers": lambda: compute.servers(details=True, all_projects=True),
            "flavors": lambda: compute.flavors(details=True),
            "hypervisors": lambda: compute.hypervisors(details=False),
            "services": compute.services,
            "availability_zones": lambda: compute.availability_zones(details=False),
        }
