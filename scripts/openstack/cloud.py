"""The Python half of scripts/openstack-e2e.sh, run with Charter's venv (openstacksdk).

    cloud.py register   Keystone: service project, service users, catalog endpoints
    cloud.py populate   flavors, an image, a network/subnet/port, a security group rule,
                        one ACTIVE server and one in ERROR, an anti-affinity server group
                        with two servers forced onto fakehost1, host aggregates
    cloud.py check      Charter: nova/glancev2/neutronv2 datasources through its API,
                        their tables against the services' own REST answers, a policy's
                        violations, actions (pause a server, set a port down,
                        deactivate an image) checked in the services, and the posture of
                        the openstack-placement and openstack-security packs

Everything comes from the environment the shell script sets (E2E_* variables). The
expected rows in ``check`` are built from raw REST answers (keystoneauth, no openstacksdk),
so the drivers' SDK-based mapping is compared with the services' own JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import httpx
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

KS = os.environ.get("E2E_KEYSTONE_URL", "http://127.0.0.1:25000/v3")
ADMIN_PW = os.environ.get("E2E_ADMIN_PASSWORD", "adminpw")
PORTS = {k: os.environ.get(f"E2E_{k.upper()}_PORT", "") for k in
         ("nova", "placement", "glance", "neutron")}
CHARTER = os.environ.get("E2E_CHARTER_URL", "http://127.0.0.1:1789")
SERVICE_USERS = ("nova", "placement", "glance", "neutron")
COMPUTE_HOSTS = ("fakehost1", "fakehost2")  # the nova-computes the shell script starts
REPORT: dict[str, Any] = {}


def say(*parts: Any) -> None:
    print("[cloud]", *parts, flush=True)


def admin_session() -> ks_session.Session:
    auth = v3.Password(auth_url=KS, username="admin", password=ADMIN_PW, project_name="admin",
                       user_domain_name="Default", project_domain_name="Default")
    return ks_session.Session(auth=auth, timeout=60)


def connection():
    from openstack.connection import Connection

    return Connection(session=admin_session(), region_name="RegionOne",
                      compute_api_version="2.37")


def wait(what: str, check, timeout: float = 180, every: float = 1.0):
    start = time.monotonic()
    while True:
        result = check()
        if result:
            say(f"{what}: ok after {time.monotonic() - start:.1f}s")
            return result
        if time.monotonic() - start > timeout:
            raise SystemExit(f"[cloud] FAILED: {what} not reached in {timeout:.0f}s")
        time.sleep(every)


# ---------------------------------------------------------------- register


def register() -> None:
    conn = connection()
    ident = conn.identity
    project = next(iter(ident.projects(name="service")), None) or ident.create_project(
        name="service", domain_id="default", description="service users")
    admin_role = next(iter(ident.roles(name="admin")))
    service_role = next(iter(ident.roles(name="service")), None)
    for name in SERVICE_USERS:
        user = next(iter(ident.users(name=name)), None) or ident.create_user(
            name=name, password=f"{name}pw", domain_id="default")
        ident.assign_project_role_to_user(project, user, admin_role)
        if service_role is not None:
            ident.assign_project_role_to_user(project, user, service_role)
    catalog = {"compute": ("nova", f"http://127.0.0.1:{PORTS['nova']}/v2.1"),
               "placement": ("placement", f"http://127.0.0.1:{PORTS['placement']}"),
               "image": ("glance", f"http://127.0.0.1:{PORTS['glance']}"),
               "network": ("neutron", f"http://127.0.0.1:{PORTS['neutron']}")}
    for kind, (name, url) in catalog.items():
        if next(iter(ident.services(type=kind)), None) is not None:
            continue
        svc = ident.create_service(type=kind, name=name, is_enabled=True)
        for interface in ("public", "internal", "admin"):
            ident.create_endpoint(service_id=svc.id, interface=interface, url=url,
                                  region_id="RegionOne", is_enabled=True)
    say("registered users", ", ".join(SERVICE_USERS), "and endpoints", ", ".join(catalog))


# ---------------------------------------------------------------- populate


def populate() -> None:
    conn = connection()
    c, net, img = conn.compute, conn.network, conn.image
    wait("both nova-computes up and their hypervisors mapped", lambda: {
        s.host for s in c.services() if s.binary == "nova-compute" and s.state == "up"}
        == set(COMPUTE_HOSTS) and len(list(c.hypervisors())) == len(COMPUTE_HOSTS))
    tiny = c.find_flavor("m1.tiny") or c.create_flavor(name="m1.tiny", vcpus=1, ram=512,
                                                        disk=1, flavorid="1")
    c.find_flavor("m1.small") or c.create_flavor(name="m1.small", vcpus=1, ram=2048, disk=5,
                                                 flavorid="2")
    image = img.find_image("e2e-cirros")
    if image is None:
        image = img.create_image(name="e2e-cirros", disk_format="raw", container_format="bare",
                                 data=b"\0" * (1 << 20), visibility="public",
                                 allow_duplicates=True, wait=True)
        img.add_tag(image, "e2e")
    wait("image active", lambda: img.get_image(image.id).status == "active", 60)

    network = net.find_network("e2e-net") or net.create_network(
        name="e2e-net", provider_network_type="flat", provider_physical_network="physnet1")
    subnet = net.find_subnet("e2e-subnet") or net.create_subnet(
        name="e2e-subnet", network_id=network.id, ip_version=4, cidr="10.20.0.0/24",
        allocation_pools=[{"start": "10.20.0.10", "end": "10.20.0.200"}],
        dns_nameservers=["10.20.0.2"],
        host_routes=[{"destination": "10.30.0.0/24", "nexthop": "10.20.0.1"}])
    port = net.find_port("e2e-port") or net.create_port(
        name="e2e-port", network_id=network.id, fixed_ips=[{"subnet_id": subnet.id}])
    external = net.find_network("e2e-ext") or net.create_network(
        name="e2e-ext", provider_network_type="flat", provider_physical_network="physnet2",
        is_router_external=True)
    ext_subnet = net.find_subnet("e2e-ext-subnet") or net.create_subnet(
        name="e2e-ext-subnet", network_id=external.id, ip_version=4, cidr="172.24.4.0/24",
        is_dhcp_enabled=False)
    router = net.find_router("e2e-router")
    if router is None:
        router = net.create_router(name="e2e-router", external_gateway_info={
            "network_id": external.id, "enable_snat": True,
            "external_fixed_ips": [{"subnet_id": ext_subnet.id}]})
        net.add_interface_to_router(router, subnet_id=subnet.id)
    if not list(net.ips(port_id=port.id)):
        net.create_ip(floating_network_id=external.id, port_id=port.id)
    group = net.find_security_group("e2e-sg") or net.create_security_group(
        name="e2e-sg", description="ssh from anywhere")
    if not any(r.get("port_range_min") == 22 for r in
               net.get_security_group(group.id).security_group_rules):
        net.create_security_group_rule(security_group_id=group.id, direction="ingress",
                                       ethertype="IPv4", protocol="tcp", port_range_min=22,
                                       port_range_max=22, remote_ip_prefix="0.0.0.0/0")

    ok = c.find_server("e2e-ok")
    if ok is None:
        ok = c.create_server(name="e2e-ok", image_id=image.id, flavor_id=tiny.id,
                             networks="none")
    ok = wait("server e2e-ok ACTIVE", lambda: _status_is(c, ok.id, "ACTIVE"), 180)
    c.add_tag_to_server(ok, "web")
    bad = c.find_server("e2e-bad")
    if bad is None:  # a port nothing can bind: Nova gives up (PortBindingFailed) -> ERROR
        bad = c.create_server(name="e2e-bad", image_id=image.id, flavor_id=tiny.id,
                              networks=[{"uuid": network.id}])
    try:
        wait("server e2e-bad ERROR (port binding failed)",
             lambda: _status_is(c, bad.id, "ERROR"), 120)
    except SystemExit:
        say("e2e-bad did not go to ERROR by itself; resetting its state to error")
        c.reset_server_state(bad, "error")
        wait("server e2e-bad ERROR (reset)", lambda: _status_is(c, bad.id, "ERROR"), 30)
    placement(c, image, tiny)
    say("populated: flavors m1.tiny m1.small, image e2e-cirros, networks e2e-net e2e-ext, "
        "port e2e-port with a floating IP, router e2e-router, group e2e-sg, "
        "servers e2e-ok (ACTIVE) e2e-bad (ERROR), server group e2e-anti with e2e-anti-1 and "
        "e2e-anti-2 on one host, aggregates e2e-ssd and e2e-az2")


def placement(c, image, flavor) -> None:
    """An anti-affinity group whose two members an administrator forces onto the one compute
    host (``availability_zone`` ``nova:<host>``), and two aggregates: one holding the host
    (with metadata, no zone: a host with servers cannot change zone), one an empty zone."""
    (compute,) = [s for s in c.services() if s.binary == "nova-compute"
                  and s.host == COMPUTE_HOSTS[0]]
    group = next((g for g in c.server_groups() if g.name == "e2e-anti"), None) or \
        c.create_server_group(name="e2e-anti", policies=["anti-affinity"])
    members = []
    for name in ("e2e-anti-1", "e2e-anti-2"):
        server = c.find_server(name) or c.create_server(
            name=name, image_id=image.id, flavor_id=flavor.id, networks="none",
            scheduler_hints={"group": group.id},
            availability_zone=f"nova:{compute.host}")
        members.append(wait(f"server {name} ACTIVE on {compute.host}",
                            lambda s=server: _status_is(c, s.id, "ACTIVE"), 180))
    hosts = {m.compute_host for m in members}
    if hosts != {compute.host}:
        raise SystemExit(f"[cloud] FAILED: the anti-affinity servers run on {hosts}, not "
                         f"both on {compute.host}")
    ssd = c.find_aggregate("e2e-ssd", ignore_missing=True)
    if ssd is None:
        ssd = c.create_aggregate(name="e2e-ssd")
        c.add_host_to_aggregate(ssd, compute.host)
        c.set_aggregate_metadata(ssd, {"ssd": "true"})
    if c.find_aggregate("e2e-az2", ignore_missing=True) is None:
        c.create_aggregate(name="e2e-az2", availability_zone="az2")


def _status_is(c, server_id: str, status: str):
    server = c.get_server(server_id)
    if server.status == "ERROR" and status != "ERROR":
        raise SystemExit(f"[cloud] FAILED: server {server.name} went to ERROR: {server.fault}")
    return server if server.status == status else None


# ---------------------------------------------------------------- check


class Charter:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=120)

    def call(self, method: str, path: str, status: int = 200, **kw) -> Any:
        r = self.http.request(method, path, **kw)
        if r.status_code != status:
            raise SystemExit(f"[cloud] FAILED: {method} {path} -> {r.status_code}: {r.text}")
        return r.json()

    def rows(self, ds: str, table: str) -> set[tuple]:
        got = self.call("GET", f"/v1/data-sources/{ds}/tables/{table}/rows")["results"]
        return {tuple(r["data"]) for r in got}

    def refresh(self, ds: str) -> float:
        start = time.monotonic()
        self.call("POST", f"/v1/data-sources/{ds}?action=request-refresh", json={})
        return time.monotonic() - start

    def execute(self, ds: str, action: str, *args: Any) -> None:
        self.call("POST", f"/v1/data-sources/{ds}?action=execute",
                  json={"name": action, "args": {"positional": list(args)}})


def b(value: Any) -> Any:
    return str(value) if isinstance(value, bool) else value


def rest(sess: ks_session.Session, service: str, path: str, key: str,
         version: str | None = None) -> list[dict]:
    headers = {"OpenStack-API-Version": f"compute {version}"} if version else {}
    r = sess.get(path, endpoint_filter={"service_type": service, "interface": "public",
                                        "region_name": "RegionOne"}, headers=headers)
    return r.json()[key]


def expected_nova(sess) -> dict[str, set[tuple]]:
    servers = rest(sess, "compute", "/servers/detail?all_tenants=1", "servers", "2.26")
    out: dict[str, set[tuple]] = {"servers": set(), "servers.addresses": set(), "tags": set(),
                                  "servers.details": set()}
    for s in servers:
        image = s["image"]["id"] if s.get("image") else None
        out["servers"].add((s["id"], s["name"], s["hostId"], s["status"], s["tenant_id"],
                            s["user_id"], image, s["flavor"]["id"],
                            s.get("OS-EXT-AZ:availability_zone"),
                            s.get("OS-EXT-SRV-ATTR:hypervisor_hostname"), s["created"]))
        drive = str(s.get("config_drive") is True
                    or str(s.get("config_drive")).lower() in ("true", "1", "yes"))
        out["servers.details"].add((s["id"], s["updated"], s.get("key_name") or None, drive,
                                    str(s["locked"]), s.get("OS-EXT-SRV-ATTR:host")))
        for network, addresses in s["addresses"].items():
            for a in addresses:
                out["servers.addresses"].add((s["id"], network, a["addr"], a["version"],
                                              a.get("OS-EXT-IPS-MAC:mac_addr"),
                                              a.get("OS-EXT-IPS:type")))
        out["tags"] |= {(s["id"], t) for t in s.get("tags", [])}
    out["flavors"] = {(f["id"], f["name"], f["vcpus"], f["ram"], f["disk"],
                       f["OS-FLV-EXT-DATA:ephemeral"], f["rxtx_factor"])
                      for f in rest(sess, "compute", "/flavors/detail", "flavors", "2.26")}
    hypervisors = rest(sess, "compute", "/os-hypervisors/detail", "hypervisors", "2.26")
    out["hypervisors"] = {(h["hypervisor_hostname"], h["id"], h["state"], h["status"])
                          for h in hypervisors}
    out["hypervisors.capacity"] = {
        (h["id"], h["service"]["host"], h["hypervisor_type"], h["vcpus"], h["vcpus_used"],
         h["memory_mb"], h["memory_mb_used"], h["local_gb"], h["local_gb_used"],
         h["running_vms"])
        for h in hypervisors}
    groups = rest(sess, "compute", "/os-server-groups?all_projects=True", "server_groups",
                  "2.26")
    out["server_groups"] = {(g["id"], g["name"], g["policies"][0], g["project_id"],
                             g["user_id"], None) for g in groups}
    out["server_group_members"] = {(g["id"], m) for g in groups for m in g["members"]}
    aggregates = rest(sess, "compute", "/os-aggregates", "aggregates", "2.26")
    out["aggregates"] = {(a["id"], a["name"], a["availability_zone"]) for a in aggregates}
    out["aggregate_hosts"] = {(a["id"], h) for a in aggregates for h in a["hosts"]}
    out["aggregate_metadata"] = {(a["id"], k, v) for a in aggregates
                                 for k, v in a["metadata"].items()}
    assert out["server_group_members"] and out["aggregate_hosts"], "the e2e cloud has both"
    out["services"] = {(s["id"], s["binary"], s["host"], s["zone"], s["status"], s["state"],
                        s["updated_at"], s["disabled_reason"])
                       for s in rest(sess, "compute", "/os-services", "services", "2.26")}
    out["availability_zones"] = {
        (z["zoneName"], "available" if z["zoneState"]["available"] else "unavailable")
        for z in rest(sess, "compute", "/os-availability-zone", "availabilityZoneInfo",
                      "2.26")}
    return out


def expected_glance(sess) -> dict[str, set[tuple]]:
    images = rest(sess, "image", "/v2/images", "images")
    cols = ("id", "status", "name", "container_format", "created_at", "updated_at",
            "disk_format", "owner", "protected", "min_ram", "min_disk", "checksum", "size",
            "file", "kernel_id", "ramdisk_id", "schema", "visibility")
    return {"images": {tuple(b(i.get(c)) for c in cols) for i in images},
            "tags": {(i["id"], t) for i in images for t in i.get("tags", [])}}


def expected_neutron(sess) -> dict[str, set[tuple]]:
    def get(path: str, key: str) -> list[dict]:
        return rest(sess, "network", f"/v2.0/{path}", key)

    nets, ports = get("networks", "networks"), get("ports", "ports")
    subnets, groups = get("subnets", "subnets"), get("security-groups", "security_groups")
    routers, fips = get("routers", "routers"), get("floatingips", "floatingips")
    assert routers and fips, "the e2e cloud has a router and a floating IP"
    return {
        "networks": {(n["id"], n["project_id"], n["name"], n["status"],
                      b(n["admin_state_up"]), b(n["shared"])) for n in nets},
        "ports": {(p["id"], p["project_id"], p["name"], p["network_id"], p["mac_address"],
                   b(p["admin_state_up"]), p["status"], p["device_id"], p["device_owner"])
                  for p in ports},
        "fixed_ips": {(p["id"], f["ip_address"], f["subnet_id"]) for p in ports
                      for f in p["fixed_ips"]},
        "security_group_port_bindings": {(p["id"], g) for p in ports
                                         for g in p["security_groups"]},
        "subnets": {(s["id"], s["project_id"], s["name"], s["network_id"], s["ip_version"],
                     s["cidr"], s["gateway_ip"], b(s["enable_dhcp"]), s["ipv6_ra_mode"],
                     s["ipv6_address_mode"]) for s in subnets},
        "allocation_pools": {(s["id"], a["start"], a["end"]) for s in subnets
                             for a in s["allocation_pools"]},
        "dns_nameservers": {(s["id"], d) for s in subnets for d in s["dns_nameservers"]},
        "host_routes": {(s["id"], h["destination"], h["nexthop"]) for s in subnets
                        for h in s["host_routes"]},
        "routers": {(r["id"], r["project_id"], r["status"], b(r["admin_state_up"]), r["name"],
                     b(r.get("distributed"))) for r in routers},
        "external_gateway_infos": {(r["id"], g["network_id"], b(g["enable_snat"]))
                                   for r in routers if (g := r["external_gateway_info"])},
        "external_fixed_ips": {(r["id"], f["subnet_id"], f["ip_address"]) for r in routers
                               if (g := r["external_gateway_info"])
                               for f in g["external_fixed_ips"]},
        "floating_ips": {(f["id"], f["router_id"], f["project_id"], f["floating_network_id"],
                          f["fixed_ip_address"], f["floating_ip_address"], f["port_id"],
                          f["status"]) for f in fips},
        "security_groups": {(g["id"], g["project_id"], g["name"], g["description"])
                            for g in groups},
        "security_group_rules": {
            (g["id"], r["id"], r.get("tenant_id") or r.get("project_id"),
             r["remote_group_id"], r["direction"], r["ethertype"], r["protocol"],
             r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"])
            for g in groups for r in g["security_group_rules"]},
    }


# Columns that change on their own between two reads: Nova services' heartbeat time.
VOLATILE = {("nova", "services"): 6, ("nova", "servers.details"): 1}  # updated_at columns


def compare(api: Charter, ds: str, expected: dict[str, set[tuple]]) -> None:
    """Charter's tables (polled just before ``expected`` was read) equal the services'.

    A volatile column must not be newer in Charter than in the later read of the service;
    every other column must be equal.
    """
    counts = {}
    for table, want in expected.items():
        got = api.rows(ds, table)
        column = VOLATILE.get((ds, table))
        if column is not None:
            newest = {r[:column] + r[column + 1:]: r[column] for r in want}
            for r in got:
                key = r[:column] + r[column + 1:]
                if key in newest and not r[column] <= newest[key]:
                    raise SystemExit(f"[cloud] FAILED: {ds}:{table} {r} is newer than the "
                                     f"service's {newest[key]}")
            got = {r[:column] + r[column + 1:] for r in got}
            want = set(newest)
        if got != want:
            raise SystemExit(f"[cloud] FAILED: {ds}:{table} differs from the service:\n"
                             f"  only in Charter: {sorted(got - want, key=repr)}\n"
                             f"  only in the service: {sorted(want - got, key=repr)}")
        counts[table] = len(got)
    say(f"{ds}: tables equal to the service's answers: "
        + ", ".join(f"{t}={n}" for t, n in counts.items()))
    REPORT.setdefault("rows", {})[ds] = counts


def check() -> None:
    api = Charter(CHARTER)
    sess = admin_session()
    conn = connection()
    config = {"auth_url": KS, "username": "admin", "password": ADMIN_PW,
              "project_name": "admin", "poll_time": 3600, "timeout_seconds": 30}
    for name, driver in (("nova", "nova"), ("glancev2", "glancev2"),
                         ("neutronv2", "neutronv2")):
        created = api.call("POST", "/v1/data-sources", 201,
                           json={"name": name, "driver": driver, "config": config})
        assert created["config"]["password"] == "<hidden>", created
        seconds = api.refresh(name)
        REPORT.setdefault("refresh_s", {})[name] = round(seconds, 2)
        say(f"datasource {name} ({driver}) created and polled in {seconds:.2f}s")
        status = api.call("GET", f"/v1/data-sources/{name}/status")
        if status["last_error"] or not status["initialized"]:
            raise SystemExit(f"[cloud] FAILED: {name} status {status}")

    compare(api, "nova", expected_nova(sess))
    compare(api, "glancev2", expected_glance(sess))
    compare(api, "neutronv2", expected_neutron(sess))

    ok = conn.compute.find_server("e2e-ok")
    bad = conn.compute.find_server("e2e-bad")
    port = conn.network.find_port("e2e-port")
    image = conn.image.find_image("e2e-cirros")

    api.call("POST", "/v1/policies", 201, json={"name": "e2e"})
    for rule in (
        'error("server-in-error", s) :- nova:servers(id=s, status="ERROR")',
        'error("port-down", p) :- neutronv2:ports(id=p, name="e2e-port", status="DOWN", '
        'admin_state_up="True")',
        'error("unknown-image", s) :- nova:servers(id=s, image_id=i), '
        'not glancev2:images(id=i)',
        'error("paused", s) :- nova:servers(id=s, status="PAUSED")',
    ):
        api.call("POST", "/v1/policies/e2e/rules", 201, json={"rule": rule})

    def violations() -> set[tuple]:
        got = api.call("GET", "/v1/policies/e2e/violations")["results"]
        return {tuple(v["row"]) for v in got}

    want = {("server-in-error", bad.id), ("port-down", port.id)}
    if violations() != want:
        raise SystemExit(f"[cloud] FAILED: violations {violations()} != {want}")
    say("policy e2e: violations", sorted(want))

    # Actions through ?action=execute, checked in the services themselves.
    api.execute("nova", "servers.pause", ok.id)
    wait("Nova shows e2e-ok PAUSED", lambda: conn.compute.get_server(ok.id).status == "PAUSED",
         60, 0.5)
    api.refresh("nova")
    (row,) = [r for r in api.rows("nova", "servers") if r[0] == ok.id]
    assert row[3] == "PAUSED", row
    api.execute("neutronv2", "ports.update_admin_state", port.id, False)
    assert conn.network.get_port(port.id).is_admin_state_up is False
    api.refresh("neutronv2")
    api.execute("glancev2", "images.deactivate", image.id)
    assert conn.image.get_image(image.id).status == "deactivated"
    api.refresh("glancev2")
    want = {("server-in-error", bad.id), ("paused", ok.id)}
    if violations() != want:
        raise SystemExit(f"[cloud] FAILED: after the actions, violations {violations()} "
                         f"!= {want}")
    statuses = [r[1] for r in api.rows("glancev2", "images") if r[0] == image.id]
    assert statuses == ["deactivated"], statuses
    say("actions: servers.pause -> Nova PAUSED; ports.update_admin_state -> Neutron "
        "admin_state_up false; images.deactivate -> Glance deactivated; violations now",
        sorted(want))

    api.execute("nova", "servers.unpause", ok.id)
    wait("Nova shows e2e-ok ACTIVE again",
         lambda: conn.compute.get_server(ok.id).status == "ACTIVE", 60, 0.5)
    api.execute("glancev2", "images.reactivate", image.id)
    api.execute("neutronv2", "ports.update_admin_state", port.id, True)
    for ds in ("nova", "glancev2", "neutronv2"):
        api.refresh(ds)
    want = {("server-in-error", bad.id), ("port-down", port.id)}
    if violations() != want:
        raise SystemExit(f"[cloud] FAILED: after undoing, violations {violations()} != {want}")
    bad_call = api.http.post("/v1/data-sources/nova?action=execute",
                             json={"name": "servers.pause", "args": {"positional": ["nope"]}})
    assert bad_call.status_code == 404, bad_call.text
    say("undo: unpause/reactivate/port up -> violations back to", sorted(want))
    enforce(api, conn, ok.id)
    packs(api, conn)
    say("REPORT", json.dumps(REPORT, sort_keys=True))


def enforce(api: Charter, conn, server_id: str) -> None:
    """``execute[nova:servers.pause(s)]`` for the ACTIVE server e2e-ok: dry-run audits and
    leaves Nova alone; enforce pauses it through Nova's API, the violation clears at the
    next poll, and the audit log shows both."""
    api.call("POST", "/v1/policies", 201, json={"name": "guard"})
    api.call("POST", "/v1/policies/guard/rules", 201, json={
        "rule": 'error(s) :- nova:servers(id=s, name="e2e-ok", status="ACTIVE")'})
    act = 'execute[nova:servers.pause(s)] :- error(s)'
    rule = api.call("POST", "/v1/policies/guard/rules", 201, json={"rule": act})

    def audit() -> list[dict]:
        return api.call("GET", "/v1/audit?policy=guard")["results"]

    wait("a dry-run entry in the audit log",
         lambda: any(e["mode"] == "dry-run" for e in audit()), 30, 0.5)
    time.sleep(2)
    if conn.compute.get_server(server_id).status != "ACTIVE":
        raise SystemExit("[cloud] FAILED: dry-run changed the server")
    say("enforcement dry-run: audited", [e["result"] for e in audit()], "; Nova untouched")

    api.call("DELETE", f"/v1/policies/guard/rules/{rule['id']}")
    api.call("PUT", "/v1/policies/guard/enforcement", json={"mode": "enforce"})
    started = time.monotonic()
    api.call("POST", "/v1/policies/guard/rules", 201, json={"rule": act})
    wait("Nova shows e2e-ok PAUSED by enforcement",
         lambda: conn.compute.get_server(server_id).status == "PAUSED", 60, 0.5)
    REPORT["enforce_to_paused_s"] = round(time.monotonic() - started, 2)
    api.refresh("nova")
    left = api.call("GET", "/v1/policies/guard/violations")["results"]
    if left:
        raise SystemExit(f"[cloud] FAILED: the violation did not clear: {left}")
    wait("the executed action in the audit log",
         lambda: any(e["mode"] == "enforce" and e["result"] == "ok" for e in audit()), 30, 0.5)
    entries = [(e["mode"], e["action"], e["row"], e["result"]) for e in audit()]
    REPORT["guard_audit"] = entries
    say("enforcement: Nova paused e2e-ok, violation cleared; audit", entries)
    api.execute("nova", "servers.unpause", server_id)


def packs(api: Charter, conn) -> None:
    """Enable the openstack-placement and openstack-security packs through the API; their
    posture must fail OS-PLC-001 with exactly the two anti-affinity servers forced onto one
    host, and OS-NET-001 with exactly the SSH rule open to 0.0.0.0/0."""
    group = next(g for g in conn.compute.server_groups() if g.name == "e2e-anti")
    pair = {conn.compute.find_server(n).id for n in ("e2e-anti-1", "e2e-anti-2")}
    (compute,) = [s for s in conn.compute.services() if s.binary == "nova-compute"
                  and s.host == COMPUTE_HOSTS[0]]
    sg = conn.network.find_security_group("e2e-sg")
    (ssh,) = [r["id"] for r in conn.network.get_security_group(sg.id).security_group_rules
              if r.get("port_range_min") == 22]
    api.refresh("nova")
    api.refresh("neutronv2")
    for pack in ("openstack-placement", "openstack-security"):
        enabled = api.call("POST", f"/v1/packs/{pack}?action=enable", json={})
        say(f"pack {pack} enabled: {len(enabled.get('policies', []))} policies")

    def control(pack: str, control_id: str) -> dict:
        posture = api.call("GET", f"/v1/packs/{pack}/posture?rows=true")
        return next(c for c in posture["controls"] if c["id"] == control_id)

    plc = wait("OS-PLC-001 failing", lambda: (c := control("openstack-placement", "OS-PLC-001"))
               ["status"] == "failing" and c, 30, 0.5)
    got = {(r["resource"], r["columns"]["group"], r["columns"]["host"]) for r in plc["rows"]}
    want = {(server, group.id, compute.host) for server in pair}
    if got != want:
        raise SystemExit(f"[cloud] FAILED: OS-PLC-001 rows {got} != {want}")
    net = wait("OS-NET-001 failing", lambda: (c := control("openstack-security", "OS-NET-001"))
               ["status"] == "failing" and c, 30, 0.5)
    rules = {(r["resource"], r["columns"]["port"]) for r in net["rows"]}
    if rules != {(ssh, 22)}:
        raise SystemExit(f"[cloud] FAILED: OS-NET-001 rows {rules} != {{({ssh!r}, 22)}}")
    summary = {}
    for pack in ("openstack-placement", "openstack-security"):
        posture = api.call("GET", f"/v1/packs/{pack}/posture")
        summary[pack] = {c["id"]: c["status"] for c in posture["controls"]}
    REPORT["posture"] = summary
    say("packs: OS-PLC-001 failing with exactly", sorted(pair), "on", compute.host,
        "in group", group.id, "; OS-NET-001 failing with exactly rule", ssh)


if __name__ == "__main__":
    commands = {"register": register, "populate": populate, "check": check}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        raise SystemExit(f"usage: {sys.argv[0]} {{{','.join(commands)}}}")
    commands[sys.argv[1]]()
