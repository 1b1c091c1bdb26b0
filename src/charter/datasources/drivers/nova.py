"""``nova``: Nova's servers (with addresses and tags), flavors, hypervisors, services and
availability zones, in Congress's tables and columns; and, beyond Congress, what placement
decisions need: server groups with their members, host aggregates with their hosts and
metadata, each server's compute host, and each hypervisor's capacity and usage.

Reads use compute microversion 2.26 unless config ``api_version`` says otherwise, as
Congress's driver did: it is the first with server tags, and the last whose server body
still carries the flavor's id (from 2.47 on Nova embeds the flavor and only its name
remains, which ``flavor_id`` then holds). Servers of every project are listed, so the user
needs admin.

Charter never changes the columns of a table Congress's driver had (Congress's positional
policies, simulate sequences and data rows keep working); what it reads beyond them is in
tables of its own. ``hypervisors.capacity``: the capacity and usage of a hypervisor (vCPUs,
RAM, disk, running servers) from ``/os-hypervisors/detail``, which gives them up to
microversion 2.87; from 2.88 on Nova answers them from Placement only, and those columns are
None. A server group's ``policy`` is the 2.64 ``policy`` field, or the one entry of the
older ``policies`` list; ``max_server_per_host`` (its anti-affinity rule) exists from 2.64
on, None before.

``servers.details`` is what a check needs of a server beyond Congress's columns: when it
last changed, its key pair, its config drive, whether it is locked, its compute host.

Servers are listed whole one poll in ``full_resync_polls`` (and at least every
``full_resync_seconds``); the polls between ask Nova only for the servers changed or
deleted since (``changes-since``) and merge them in (nova_changes.py).
"""

from __future__ import annotations

import re
import warnings
from typing import Any, ClassVar

from charter.datasources.driver import ConfigOption, DriverError, Row
from charter.datasources.drivers.nova_changes import ServerChanges
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
from charter.datasources.translator import schema, translate

DEFAULT_API_VERSION = "2.26"
DEFAULT_RESYNC_POLLS = 10
DEFAULT_RESYNC_S = 600


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


def group_policy(group: Any) -> Any:
    """A server group's policy: ``policy`` (2.64 on), else the one of ``policies``."""
    if getattr(group, "policy", None):
        return group.policy
    policies = getattr(group, "policies", None) or ()
    return policies[0] if policies else None


def max_per_host(rules: Any) -> Any:
    """The ``max_server_per_host`` rule of an anti-affinity group (2.64 on), as a number."""
    if not isinstance(rules, dict) or rules.get("max_server_per_host") is None:
        return None
    try:
        return int(rules["max_server_per_host"])
    except (TypeError, ValueError):
        return rules["max_server_per_host"]


HYPERVISOR_USAGE = ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb",
                    "local_gb_used", "running_vms")
_SDK_USAGE = {"vcpus": "vcpus", "vcpus_used": "vcpus_used", "memory_mb": "memory_size",
              "memory_mb_used": "memory_used", "local_gb": "local_disk_size",
              "local_gb_used": "local_disk_used", "running_vms": "running_vms"}


def with_usage(hypervisors: Any) -> list:
    """Hypervisors with their service host and usage fields under Nova's names.

    openstacksdk marks the usage fields deprecated (Nova removed them in 2.88) and warns at
    each read; Charter reads them on purpose, so those warnings are not shown.
    """
    from openstack import warnings as os_warnings

    out = []
    for h in hypervisors:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", os_warnings.RemovedFieldWarning)
            usage = {col: getattr(h, attr, None) for col, attr in _SDK_USAGE.items()}
        service = getattr(h, "service_details", None) or {}
        capacity = {"host": service.get("host"), "hypervisor_type": getattr(h, "hypervisor_type", None), **usage}
        out.append(extended(h, capacity=capacity))
    return out


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
            "locked": true_text(server.is_locked),
            "host": getattr(server, "compute_host", None)}


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
                field("host", desc="compute host (nova-compute service) the server runs on, "
                      "as aggregates and services name it (OS-EXT-SRV-ATTR:host)"),
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
    "objects-extract-fn": with_usage,
    "field-translators": (
        field("name", "hypervisor_hostname", "hypervisor host name"),
        field("id", desc="hypervisor id (an integer before microversion 2.53, then a UUID)"),
        field("state", desc="up or down"),
        field("status", desc="enabled or disabled"),
        {"fieldname": "capacity", "translator": {
            "translation-type": "HDICT", "table-name": "hypervisors.capacity",
            "parent-key": "id", "parent-col-name": "hypervisor_id",
            "parent-key-desc": "hypervisor id", "selector-type": "DICT_SELECTOR",
            "field-translators": (
                field("host", desc="compute host of its nova-compute service"),
                field("hypervisor_type", desc="QEMU, VMware vCenter Server, ironic, fake, ..."),
                field("vcpus", desc="physical CPUs (None from microversion 2.88 on)"),
                field("vcpus_used", desc="vCPUs of the servers on it (None from 2.88 on)"),
                field("memory_mb", desc="memory in MB (None from 2.88 on)"),
                field("memory_mb_used", desc="memory in MB used by its servers and reserved "
                      "(None from 2.88 on)"),
                field("local_gb", desc="local disk in GB (None from 2.88 on)"),
                field("local_gb_used", desc="local disk in GB used (None from 2.88 on)"),
                field("running_vms", desc="servers running on it (None from 2.88 on)"),
            )}},
    ),
}
SERVER_GROUPS = {
    "translation-type": "HDICT", "table-name": "server_groups",
    "selector-type": "DOT_SELECTOR",
    "objects-extract-fn": lambda groups: [
        extended(g, policy=group_policy(g), max_server_per_host=max_per_host(
            getattr(g, "rules", None))) for g in groups],
    "field-translators": (
        field("id", desc="server group id"),
        field("name", desc="server group name"),
        field("policy", desc="affinity, anti-affinity, soft-affinity or soft-anti-affinity"),
        field("project_id", desc="project that owns the group"),
        field("user_id", desc="user who created the group"),
        field("max_server_per_host", desc="anti-affinity rule: members allowed on one host "
              "(microversion 2.64 on; None: one, or an older microversion)"),
        {"fieldname": "member_ids", "translator": {
            "translation-type": "LIST", "table-name": "server_group_members",
            "parent-key": "id", "parent-col-name": "group_id",
            "parent-key-desc": "server group id", "val-col": "server_id",
            "val-col-desc": "a server in the group", "translator": value()}},
    ),
}
AGGREGATES = {
    "translation-type": "HDICT", "table-name": "aggregates", "selector-type": "DOT_SELECTOR",
    "objects-extract-fn": lambda aggregates: [
        extended(a, metadata_list=[{"key": k, "value": v}
                                   for k, v in (getattr(a, "metadata", None) or {}).items()])
        for a in aggregates],
    "field-translators": (
        field("id", desc="host aggregate id"),
        field("name", desc="aggregate name"),
        field("availability_zone", desc="availability zone the aggregate makes its hosts "
              "part of (None: the default zone)"),
        {"fieldname": "hosts", "translator": {
            "translation-type": "LIST", "table-name": "aggregate_hosts",
            "parent-key": "id", "parent-col-name": "aggregate_id",
            "parent-key-desc": "host aggregate id", "val-col": "host",
            "val-col-desc": "compute host in the aggregate", "translator": value()}},
        {"fieldname": "metadata_list", "translator": {
            "translation-type": "HDICT", "table-name": "aggregate_metadata",
            "parent-key": "id", "parent-col-name": "aggregate_id",
            "parent-key-desc": "host aggregate id", "selector-type": "DICT_SELECTOR",
            "in-list": True,
            "field-translators": (
                field("key", desc="metadata key (availability_zone, filter_tenant_id, ...)"),
                field("value", desc="metadata value"),
            )}},
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
                   "flavors, hypervisors with capacity, services, availability zones, server "
                   "groups, aggregates")
    service_type = "compute"
    service_label = "Nova"
    config_options: ClassVar[tuple[ConfigOption, ...]] = (
        *OPENSTACK_OPTIONS,
        ConfigOption("api_version", "compute microversion for reads (Congress's key)",
                     default=DEFAULT_API_VERSION),
        ConfigOption("full_resync_polls", "one poll in this many lists every server; the "
                     "others ask Nova only for the servers changed (or deleted) since the "
                     "last listing (changes-since); 1: every poll lists every server",
                     default=DEFAULT_RESYNC_POLLS),
        ConfigOption("full_resync_seconds", "list every server at least this often "
                     "(seconds), whatever full_resync_polls says", default=DEFAULT_RESYNC_S),
    )
    translators = (SERVERS, FLAVORS, HYPERVISORS, SERVICES, AVAILABILITY_ZONES, SERVER_GROUPS,
                   AGGREGATES)
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
        polls = self.config.get("full_resync_polls", DEFAULT_RESYNC_POLLS)
        if isinstance(polls, str) and polls.strip().isdigit():
            polls = int(polls)  # the CLI passes --config full_resync_polls=5 as text
        if type(polls) is not int or polls < 1:
            raise DriverError(f"datasource {self.name}: full_resync_polls must be a whole "
                              f"number of polls >= 1 (1: list every server at every poll), "
                              f"not {polls!r}")
        self._changes = ServerChanges(
            lambda servers: translate(servers, SERVERS), tuple(schema(SERVERS)),
            resync_polls=polls,
            resync_seconds=self._number("full_resync_seconds", DEFAULT_RESYNC_S, minimum=0))

    def connection_config(self) -> dict[str, Any]:
        return {"compute_api_version": self.api_version}

    def regions(self) -> list[str | None]:
        regions = super().regions()
        self._changes.keep(regions)
        return regions

    def read_region(self, region: str | None) -> dict[str, list[Row]]:
        """The servers by changes-since between full listings (nova_changes.py), the
        other tables listed whole."""
        conn = self._connection(region)
        since = self._changes.changes_since(region)
        start = self._changes.started()
        if since is None:
            servers = self._guard(region, "listing servers", lambda: self._list(
                "servers", lambda: self.servers(conn)))
        else:
            servers = self._guard(region, f"listing servers changed since {since}",
                                  lambda: self._list("servers",
                                                     lambda: self.servers(conn, since)))
        rows = self.rows(self.read_objects(region, conn, skip=frozenset({"servers"})))
        if since is None:
            self._changes.full(region, servers, start)
        else:
            self._changes.merge(region, servers, start)
        rows.update(self._changes.rows(region))
        return rows

    @staticmethod
    def servers(conn: Any, changes_since: str | None = None) -> Any:
        """Every server of every project, or those changed (or deleted) since a time."""
        if changes_since is None:
            return conn.compute.servers(details=True, all_projects=True)
        return conn.compute.servers(details=True, all_projects=True,
                                    changes_since=changes_since)

    def listings(self, conn: Any) -> dict:
        compute = conn.compute
        return {
            "servers": lambda: self.servers(conn),
            "flavors": lambda: compute.flavors(details=True),
            "hypervisors": lambda: compute.hypervisors(details=True),
            "services": compute.services,
            "availability_zones": lambda: compute.availability_zones(details=False),
            "server_groups": lambda: compute.server_groups(all_projects=True),
            "aggregates": compute.aggregates,
        }
