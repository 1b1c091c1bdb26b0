"""The last step of scripts/openstack-e2e.sh: Nova asks Charter (docs/decisions.md).

1. Nova's own policy check: the policy file routes ``os_compute_api:servers:create`` to
   ``rule:project_member_or_admin and http://<charter>/v1/decisions/oslo/nova_servers``;
   Charter's rule refuses a server into an availability zone whose aggregate Nova marks
   ``charter_closed=true`` (a live nova table), so Nova answers 403; the refusal is in
   Charter's audit.
2. The scheduler: contrib/nova-filter's CharterFilter (ServerGroupAntiAffinityFilter off)
   with examples/decisions/nova_hosts.dl; two servers of an anti-affinity group land on the
   two fake compute hosts, a third finds no valid host, and Charter's audit holds the hosts
   it refused and why.

Run by the shell script with E2E_* set, after ``cloud.py check``: ``servers`` (1), then,
with the scheduler restarted with CharterFilter enabled, ``scheduler`` (2). (Aggregate
metadata is set before the restart: Nova fans it out to the schedulers, and the fanout
exchange is gone while none runs.)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from cloud import CHARTER, COMPUTE_HOSTS, REPORT, Charter, _status_is, connection, say, wait
from openstack import exceptions

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = Path(os.environ["E2E_NOVA_POLICY_FILE"])
CREATE = "os_compute_api:servers:create"
SERVERS_RULES = [
    'closed_zone(zone) :- nova:aggregates(id=a, availability_zone=zone), '
    'nova:aggregate_metadata(aggregate_id=a, key="charter_closed", value="true")',
    f'deny(reason) :- oslo:rule("{CREATE}"), oslo:target("availability_zone", zone), '
    'closed_zone(zone), concat("availability zone closed to new servers: ", zone, reason)',
]


def dl_rules(path: Path) -> list[str]:
    """The rules of a policy file: its blank-line separated blocks, comments dropped."""
    rules = []
    for block in path.read_text().split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.strip() and not
                 ln.strip().startswith("//")]
        if lines:
            rules.append("\n".join(lines))
    return rules


def audit(api: Charter, policy: str) -> list[dict]:
    return api.call("GET", f"/v1/audit?policy={policy}")["results"]


def servers_create(api: Charter, conn, image, flavor) -> None:
    c = conn.compute
    zone = c.find_aggregate("e2e-az2")
    c.set_aggregate_metadata(zone, {"charter_closed": "true"})
    api.refresh("nova")
    api.call("POST", "/v1/policies", 201, json={
        "name": "nova_servers", "rules": [{"rule": r} for r in SERVERS_RULES]})
    POLICY_FILE.write_text(json.dumps({
        CREATE: f"rule:project_member_or_admin and http:{CHARTER.split(':', 1)[1]}"
                "/v1/decisions/oslo/nova_servers"}))
    try:
        server = c.create_server(name="e2e-closed-zone", image_id=image.id,
                                 flavor_id=flavor.id, networks="none", availability_zone="az2")
    except exceptions.ForbiddenException as exc:
        refused = str(exc)
    else:
        raise SystemExit(f"[cloud] FAILED: Nova created {server.id} in the closed zone az2")
    entries = [(e["action"], e["rule"], e["result"], e["detail"])
               for e in audit(api, "nova_servers")]
    want = ("decision:oslo", CREATE, "denied", "availability zone closed to new servers: az2")
    if want not in entries:
        raise SystemExit(f"[cloud] FAILED: Charter's audit of nova_servers has no {want}: "
                         f"{entries}")
    REPORT["servers_create_refused"] = refused
    say("servers:create into az2: Nova answered 403 by Charter's rule;", refused.strip()[:160],
        "; audit:", want)


def scheduler(api: Charter, conn, image, flavor) -> None:
    c = conn.compute
    rules = dl_rules(ROOT / "examples/decisions/nova_hosts.dl")
    api.call("POST", "/v1/policies", 201, json={
        "name": "nova_hosts", "rules": [{"rule": r} for r in rules]})
    group = c.create_server_group(name="e2e-charter-anti", policies=["anti-affinity"])

    def boot(name: str):
        return c.create_server(name=name, image_id=image.id, flavor_id=flavor.id,
                               networks="none", scheduler_hints={"group": group.id})

    placed = []
    for name in ("e2e-charter-1", "e2e-charter-2"):
        server = boot(name)
        placed.append(wait(f"server {name} ACTIVE (scheduled with CharterFilter)",
                           lambda s=server: _status_is(c, s.id, "ACTIVE"), 180))
        api.refresh("nova")
    hosts = sorted(s.compute_host for s in placed)
    if hosts != sorted(COMPUTE_HOSTS):
        raise SystemExit(f"[cloud] FAILED: the anti-affinity pair runs on {hosts}, not on "
                         f"{sorted(COMPUTE_HOSTS)}")
    third = boot("e2e-charter-3")
    third = wait("server e2e-charter-3 ERROR (no valid host)",
                 lambda: _status_is(c, third.id, "ERROR"), 180)
    fault = (third.fault or {}).get("message", "")
    if "No valid host" not in fault:
        raise SystemExit(f"[cloud] FAILED: e2e-charter-3 is in ERROR for {fault!r}, not "
                         "for want of a valid host")
    entries = [e for e in audit(api, "nova_hosts") if e["action"] == "decision:nova"]
    refused_all = [e for e in entries if e["result"] == "denied"
                   and all(any(r.startswith(f"{h}: ") for r in e["row"])
                           for h in COMPUTE_HOSTS)]
    if not refused_all:
        raise SystemExit("[cloud] FAILED: no decision in Charter's audit refused both hosts: "
                         f"{[(e['result'], e['row']) for e in entries]}")
    REPORT["scheduler"] = {"pair_hosts": hosts, "third": fault,
                           "decisions": [(e["result"], e["row"]) for e in entries]}
    say("CharterFilter: e2e-charter-1/2 on", hosts, "; e2e-charter-3:", fault,
        "; Charter refused", list(refused_all[-1]["row"]))


def main(step: str) -> None:
    api = Charter(CHARTER)
    conn = connection()
    image = conn.image.find_image("e2e-cirros")
    flavor = conn.compute.find_flavor("m1.tiny")
    {"servers": servers_create, "scheduler": scheduler}[step](api, conn, image, flavor)
    say(f"REPORT decisions {step}", json.dumps(REPORT, default=str))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("servers", "scheduler"):
        raise SystemExit(f"usage: {sys.argv[0]} {{servers,scheduler}}")
    main(sys.argv[1])
