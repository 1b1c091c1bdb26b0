"""Decision latency (issue 16): ``python -m bench.decisions [--n 100000] [--repeat 200]``.

Every OpenStack API call guarded by an ``http:`` rule, and every pod a Kubernetes API server
admits, waits for a decision; the issue's target is p99 <= 10 ms over a 100k-row state. This
benchmark builds two states of ``--n`` rows each and times decisions over them, in process
(wall and thread CPU) and over HTTP to a real ``charter serve`` on 127.0.0.1:

- **oslo**: ``examples/decisions/keystone_projects.dl`` over ``--n`` Keystone projects (a push
  datasource ``keystonev3``, projects spread over n/3 domains so some have fewer than 3 and
  some more) and a deny list (``ops:denied_names``, n/100 names). Requests for
  ``identity:create_project``: allowed (a domain with room), denied by the count (a full
  domain), denied by the deny list. In process: ``decide()``; over HTTP: ``POST
  /v1/decisions/oslo/keystone_projects`` with the form body oslo.policy's ``HttpCheck`` sends.
- **kubernetes**: a push datasource ``kubernetes`` with the driver's pod tables (``pods``,
  ``pod_security``, ``pod_labels``, ``containers``, ``container_security``,
  ``container_ports``: six rows a pod, so n/6 pods, the rows made by the driver's own
  translators), 1% of them privileged; the ``kubernetes-pod-security`` pack enabled.
  AdmissionReviews (CREATE of a Pod) for a passing pod, a pod adding K8S-PSS-001's first
  violation (``hostNetwork``: no live pod has it) and a privileged pod (K8S-PSS-002, already
  violated by the live privileged pods), decided by the pack's Pod Security controls
  (``/v1/decisions/kubernetes/kubernetes-pod-security/K8S-PSS``) and by a decision policy
  ``admission`` that joins the request with those controls' violations.

Baselines, measured in the same run and interleaved with the decisions (the machine is shared
and noisy, so read the ratios): in process, one row applied to the engine (``Engine.apply``
of a project, the unit of incremental work; undone untimed); over HTTP, ``GET /healthz`` on
the same server. Every decision's answer is checked (allowed or denied as the case says).
Prints a table (p50, p95, p99 in ms, the p99's ratio to the baseline's p99, whether the p99
meets the target) and a JSON line; ``--json FILE`` writes the document too. Exits 1 when an
answer is wrong.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.service import Server, check, percentile

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "examples" / "decisions" / "keystone_projects.dl"
OSLO_POLICY = "keystone_projects"
K8S_POLICY = "admission"
PACK = "kubernetes-pod-security"
CONTROLS = "K8S-PSS"
TARGET_P99_MS = 10.0
CREATE = "identity:create_project"
PROJECT_COLUMNS = ["is_enabled", "description", "name", "domain_id", "id"]
POD_TABLES = ("pods", "pod_security", "pod_labels", "containers", "container_security",
              "container_ports")
IMAGE = "nginx:1.27.2"
#: The decision policy of the kubernetes cases: an image allow list, and the request's own
#: violations of two Pod Security controls (the pack's policies, read as any policy's tables).
K8S_RULES = [
    'deny(r) :- k8s:container(c, image, _), not approved_image(image), '
    'r = "container " + c + " image " + image + " is not approved"',
    f'approved_image("{IMAGE}")',
    'deny(r) :- k8s:request(_, "Pod", ns, pod, _, _), K8S_PSS_001:error(pod, ns, detail), '
    'r = "K8S-PSS-001: " + detail',
    'deny(r) :- k8s:request(_, "Pod", ns, pod, _, _), K8S_PSS_002:error(pod, ns, c, detail), '
    'r = "K8S-PSS-002: " + c + " " + detail',
]
#: case -> the answer it must get
OSLO_CASES = {"allowed": True, "denied: domain full": False, "denied: name listed": False}
K8S_CASES = {"pass": True, "first violation": False, "already violated": False}


def example_rules() -> list[str]:
    """The example policy's rules: its text without comments, split at blank lines."""
    lines = [line for line in EXAMPLE.read_text().splitlines()
             if not line.lstrip().startswith("//")]
    return [r.strip() for r in "\n".join(lines).split("\n\n") if r.strip()]


# ---------------------------------------------------------------- the oslo state


def oslo_state(n: int, seed: int) -> dict[str, Any]:
    """``projects`` (n rows over n/3 domains, uniform: some domains under 3 projects, most
    at 3 or more), ``denied`` names, and the domains and names the requests use."""
    rng = random.Random(seed)
    domains = max(3, n // 3)
    projects = [["True", "", f"project-{i}", f"d{rng.randrange(domains)}", f"p{i}"]
                for i in range(n)]
    count: dict[str, int] = {}
    for row in projects:
        count[row[3]] = count.get(row[3], 0) + 1
    roomy = sorted(d for d in (f"d{i}" for i in range(domains)) if count.get(d, 0) < 3)
    full = sorted(d for d, c in count.items() if c >= 3)
    denied = [[f"legacy-{i}"] for i in range(max(1, n // 100))]
    return {"projects": projects, "denied": denied, "roomy": roomy, "full": full}


def oslo_request(case: str, i: int, state: dict[str, Any]) -> tuple[dict, dict]:
    """(target, credentials) of request ``i`` of ``case``."""
    if case == "allowed":
        name, domain = f"new-{i}", state["roomy"][i % len(state["roomy"])]
    elif case == "denied: domain full":
        name, domain = f"new-{i}", state["full"][i % len(state["full"])]
    else:
        name = state["denied"][i % len(state["denied"])][0]
        domain = state["roomy"][i % len(state["roomy"])]
    target = {"target.project.name": name, "target.project.domain_id": domain,  # as Keystone
              "target.project.is_domain": False}  # sends it: its target flattened
    credentials = {"user_id": f"u{i}", "project_id": "p0", "domain_id": "default",
                   "roles": ["admin", "member", "reader"], "system_scope": None,
                   "is_admin": True}
    return target, credentials


def oslo_form(target: dict, credentials: dict) -> bytes:
    """The body oslo.policy's ``HttpCheck`` POSTs by default (form fields of JSON texts)."""
    return urllib.parse.urlencode({"rule": json.dumps(CREATE), "target": json.dumps(target),
                                   "credentials": json.dumps(credentials)}).encode()


# ---------------------------------------------------------------- the kubernetes state


def pod(name: str, ns: str, *, privileged: bool = False, host_network: bool = False) -> dict:
    """A pod as the API returns it: restricted-compliant unless made privileged or put on
    the node's network."""
    context: dict[str, Any] = {"allowPrivilegeEscalation": False,
                               "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                               "seccompProfile": {"type": "RuntimeDefault"}}
    if privileged:
        context = {"privileged": True}
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False, "nodeName": f"node-{sum(map(ord, name)) % 50}",
        "containers": [{"name": "web", "image": IMAGE,
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                        "securityContext": context}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}}}
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"},
                         "uid": f"uid-{ns}-{name}"},
            "spec": spec, "status": {"phase": "Running"}}


def k8s_state(n: int) -> dict[str, list[list]]:
    """The driver's pod tables of n/6 pods (one row a pod in each of the six tables), one pod
    in a hundred privileged, translated by the driver's own code."""
    from charter.datasources.drivers.kubernetes_tables import RESOURCES

    tables = {t.name: t for r in RESOURCES for t in r.tables if t.name in POD_TABLES}
    out: dict[str, list[list]] = {t: [] for t in POD_TABLES}
    for i in range(max(1, n // len(POD_TABLES))):
        obj = pod(f"pod-{i}", f"ns-{i % 100}", privileged=i % 100 == 7)
        for name, table in tables.items():
            out[name] += [list(r) for r in table.rows(obj)]
    return out


def k8s_schema() -> dict[str, list[str]]:
    """Every table the driver fills (the pack reads most), of which the state fills the
    pod tables."""
    from charter.datasources.drivers.kubernetes_tables import RESOURCES

    return {t.name: [c.name for c in t.columns] for r in RESOURCES for t in r.tables}


def review(case: str, i: int) -> dict:
    """An AdmissionReview (CREATE of a Pod) of ``case``, as the API server sends it."""
    name, ns = f"review-{i}", f"ns-{i % 100}"
    obj = pod(name, ns, privileged=case == "already violated",
              host_network=case == "first violation")
    del obj["status"], obj["metadata"]["uid"], obj["spec"]["nodeName"]
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": f"uid-review-{i}", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": name, "namespace": ns, "operation": "CREATE",
        "userInfo": {"username": "alice@example.com",
                     "groups": ["system:authenticated", "developers"]},
        "object": obj, "oldObject": None, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}}


# ---------------------------------------------------------------- timing


class Samples:
    """Wall (and thread CPU) latencies per figure, in ms."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def time(self, name: str, run: Callable[[], object], cpu: bool = True) -> object:
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        out = run()
        end, end_cpu = time.perf_counter_ns(), time.thread_time_ns()
        self.wall.setdefault(name, []).append((end - start) / 1e6)
        if cpu:
            self.cpu.setdefault(name, []).append((end_cpu - start_cpu) / 1e6)
        return out

    def summary(self, baseline: str) -> dict[str, dict[str, float]]:
        out = {}
        base = sorted(self.wall[baseline])
        for name, wall in self.wall.items():
            wall = sorted(wall)
            row = {"count": len(wall), "p50_ms": percentile(wall, 0.5),
                   "p95_ms": percentile(wall, 0.95), "p99_ms": percentile(wall, 0.99),
                   "max_ms": wall[-1],
                   "p99_vs_baseline": percentile(wall, 0.99) / percentile(base, 0.99)}
            if name in self.cpu:
                cpu = sorted(self.cpu[name])
                row |= {"cpu_p50_ms": percentile(cpu, 0.5), "cpu_p99_ms": percentile(cpu, 0.99)}
            out[name] = row
        return out


def expect(name: str, allowed: bool, wanted: bool, detail: object) -> None:
    if allowed is not wanted:
        raise AssertionError(f"{name}: {'allowed' if allowed else 'denied'}, expected "
                             f"{'allowed' if wanted else 'denied'}: {detail}")


# ---------------------------------------------------------------- in process


def build_service(data_dir: Path, oslo: dict[str, Any], k8s: dict[str, list[list]]):
    """A service over SQLite holding both states, the example policy, the pack and the
    kubernetes decision policy."""
    from charter.service.service import Service
    from charter.store import Store

    service = Service(Store(f"sqlite:///{data_dir / 'bench.db'}",
                            secret_key=Store.generate_key()))
    service.start()
    ds = service.datasources
    ds.create({"name": "keystonev3", "driver": "push",
               "config": {"tables": {"projects": PROJECT_COLUMNS}}})
    ds.create({"name": "ops", "driver": "push", "config": {"tables": {"denied_names": ["name"]}}})
    ds.create({"name": "kubernetes", "driver": "push", "config": {"tables": k8s_schema()}})
    ds.replace_rows("keystonev3", "projects", oslo["projects"])
    ds.replace_rows("ops", "denied_names", oslo["denied"])
    for table, rows in k8s.items():
        ds.replace_rows("kubernetes", table, rows)
    service.policies.create(OSLO_POLICY, rules=[{"rule": r} for r in example_rules()])
    service.packs.enable(PACK)
    service.policies.create(K8S_POLICY, rules=[{"rule": r} for r in K8S_RULES])
    return service


def in_process(service, oslo: dict[str, Any], repeat: int) -> dict[str, Any]:
    from charter.engine import Delta
    from charter.service.decisions import decide, oslo_rows
    from charter.service.kubernetes_admission import decide_review, parse_review

    samples = Samples()
    engine = service.engine
    for i in range(repeat):  # interleaved: each figure meets the same machine load
        row = ("True", "", f"extra-{i}", "d0", f"extra-{i}")
        samples.time("baseline: apply one row", lambda r=row: engine.apply(
            [Delta("keystonev3:projects", r, 1)]))
        engine.apply([Delta("keystonev3:projects", row, -1)])
        for case, wanted in OSLO_CASES.items():
            rows = oslo_rows(CREATE, *oslo_request(case, i, oslo))
            d = samples.time(f"oslo {case}", lambda r=rows: decide(service, OSLO_POLICY, r))
            expect(f"oslo {case}", d.allowed, wanted, d.reasons or d.error)
        for case, wanted in K8S_CASES.items():
            req = parse_review(review(case, i))
            for how, target, controls in (("pack", PACK, [CONTROLS]),
                                          ("policy", K8S_POLICY, [])):
                v = samples.time(f"k8s {how} {case}", lambda t=target, c=controls, q=req:
                                 decide_review(service, t, q, controls=c))
                expect(f"k8s {how} {case}", v.allowed, wanted, v.reasons or v.error)
    return samples.summary("baseline: apply one row")


# ---------------------------------------------------------------- over HTTP


def set_up_server(http: httpx.Client, oslo: dict[str, Any], k8s: dict[str, list[list]]) -> None:
    check(http.post("/v1/data-sources", json={
        "name": "keystonev3", "driver": "push",
        "config": {"tables": {"projects": PROJECT_COLUMNS}}}))
    check(http.post("/v1/data-sources", json={
        "name": "ops", "driver": "push", "config": {"tables": {"denied_names": ["name"]}}}))
    check(http.post("/v1/data-sources", json={
        "name": "kubernetes", "driver": "push", "config": {"tables": k8s_schema()}}))
    check(http.put("/v1/data-sources/keystonev3/tables/projects/rows", json=oslo["projects"]))
    check(http.put("/v1/data-sources/ops/tables/denied_names/rows", json=oslo["denied"]))
    for table, rows in k8s.items():
        check(http.put(f"/v1/data-sources/kubernetes/tables/{table}/rows", json=rows))
    check(http.post("/v1/policies", json={
        "name": OSLO_POLICY, "rules": [{"rule": r} for r in example_rules()]}))
    check(http.post(f"/v1/packs/{PACK}?action=enable", json={}))
    check(http.post("/v1/policies", json={
        "name": K8S_POLICY, "rules": [{"rule": r} for r in K8S_RULES]}))


def over_http(url: str, oslo: dict[str, Any], repeat: int) -> dict[str, Any]:
    samples = Samples()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(repeat):
            samples.time("baseline: GET /healthz", lambda: check(http.get("/healthz")),
                         cpu=False)
            for case, wanted in OSLO_CASES.items():
                body = oslo_form(*oslo_request(case, i, oslo))
                r = samples.time(f"oslo {case}", lambda b=body: check(http.post(
                    f"/v1/decisions/oslo/{OSLO_POLICY}", content=b, headers=form)), cpu=False)
                expect(f"oslo {case}", r.text == "True", wanted, r.text)
            for case, wanted in K8S_CASES.items():
                body = review(case, i)
                for how, path in (("pack", f"{PACK}/{CONTROLS}"), ("policy", K8S_POLICY)):
                    r = samples.time(f"k8s {how} {case}", lambda b=body, p=path: check(
                        http.post(f"/v1/decisions/kubernetes/{p}", json=b)), cpu=False)
                    answer = r.json()["response"]
                    expect(f"k8s {how} {case}", answer["allowed"], wanted, answer)
    return samples.summary("baseline: GET /healthz")


# ---------------------------------------------------------------- the runner


def table(title: str, summary: dict[str, dict[str, float]]) -> str:
    cpu = any("cpu_p99_ms" in row for row in summary.values())
    head = f"{title:<30} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}"
    head += f" {'cpu p50':>8} {'cpu p99':>8}" if cpu else ""
    head += f" {'p99/base':>9}  p99 <= {TARGET_P99_MS:g} ms"
    lines = [head, "-" * len(head)]
    for name, row in summary.items():
        line = (f"{name:<30} {row['p50_ms']:8.2f} {row['p95_ms']:8.2f} {row['p99_ms']:8.2f} "
                f"{row['max_ms']:8.2f}")
        if cpu:
            line += (f" {row['cpu_p50_ms']:8.2f} {row['cpu_p99_ms']:8.2f}"
                     if "cpu_p99_ms" in row else " " * 18)
        meets = "" if name.startswith("baseline") else (
            "met" if row["p99_ms"] <= TARGET_P99_MS else "MISSED")
        lines.append(line + f" {row['p99_vs_baseline']:8.1f}x  {meets}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000,
                        help="rows of each state (projects; pod table rows), default 100,000")
    parser.add_argument("--repeat", type=int, default=200, help="decisions per case (200)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--parts", default="process,http",
                        help="comma-separated: process (in process), http (charter serve)")
    parser.add_argument("--json", type=Path, help="also write the JSON document here")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"process", "http"} or args.n < 6 or args.repeat < 1:
        parser.error("--parts takes process and http; --n is at least 6, --repeat at least 1")
    oslo, k8s = oslo_state(args.n, args.seed), k8s_state(args.n)
    result: dict[str, Any] = {
        "benchmark": "decisions", "n": args.n, "repeat": args.repeat,
        "projects": len(oslo["projects"]), "pods": len(k8s["pods"]),
        "kubernetes_rows": sum(len(r) for r in k8s.values()),
        "target_p99_ms": TARGET_P99_MS, "python": platform.python_version()}
    print(f"state: {len(oslo['projects']):,} projects ({len(oslo['full']):,} full domains, "
          f"{len(oslo['denied']):,} denied names); {result['kubernetes_rows']:,} kubernetes "
          f"rows ({len(k8s['pods']):,} pods); {args.repeat} decisions a case")
    with tempfile.TemporaryDirectory(prefix="charter-bench-") as tmp:
        if "process" in parts:
            (Path(tmp) / "process").mkdir()
            service = build_service(Path(tmp) / "process", oslo, k8s)
            try:
                result["process"] = in_process(service, oslo, args.repeat)
            finally:
                service.close()
            print(table("in process (ms)", result["process"]))
        if "http" in parts:
            (Path(tmp) / "http").mkdir()
            server = Server(Path(tmp) / "http", {"CHARTER_MAX_BODY_BYTES": str(2**31 - 1)})
            server.start(timeout=300)
            try:
                with httpx.Client(base_url=server.url, timeout=600) as http:
                    set_up_server(http, oslo, k8s)
                result["http"] = over_http(server.url, oslo, args.repeat)
            finally:
                server.stop()
            print(table("over HTTP (ms)", result["http"]))
    figures = [(part, name, row) for part in ("process", "http") for name, row
               in result.get(part, {}).items() if not name.startswith("baseline")]
    result["p99_met"] = {f"{part}: {name}": row["p99_ms"] <= TARGET_P99_MS
                         for part, name, row in figures}
    document = json.dumps(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(document + "\n")
    print(document)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as exc:
        print(f"wrong answer: {exc}", file=sys.stderr)
        sys.exit(1)
