"""The service load benchmark: ``python -m bench --workload service``.

A real ``charter serve`` (a subprocess on 127.0.0.1, a free port, a temporary data directory,
no auth) under concurrent clients, as issue 11 describes: a push datasource ``inv`` with a
``servers`` table of ``--rows`` rows (and small ``images`` and ``hosts`` tables), a policy
``ops`` whose ``error`` table joins the pushed tables and compares an aggregate, then
``--clients`` threads (one keep-alive ``httpx.Client`` each) for ``--duration`` seconds:

- 80% reads: the rows of one of the policy's tables (``error``, ``warning``, ``load``) or
  ``GET /v1/policies/ops/violations``;
- 15% pushes: ``PUT .../tables/servers/rows`` of the whole table with a few rows changed,
  as Congress's clients push;
- 5% rule changes: a client creates a rule (a new text each time, half of them with an
  aggregate) and deletes it on a later turn.

Each ``--rows`` size is a phase with a fresh server. Per phase it prints requests/s, p50,
p95 and p99 latency per kind, the errors (any exception or non-2xx answer; the first few
are printed) and the server's RSS (``VmRSS`` of its PID, sampled every second) at the
start, after the warm-up and at the end, then one JSON summary line. ``--soak SECONDS``
runs one longer phase and prints the RSS every 30 s. Exit 1 if any request failed.

Memory diagnosis (nothing of it is in ``src/``): ``--server-env MALLOC_ARENA_MAX=2`` passes
an environment variable to the server; ``--trace DIR`` runs the server through this
module's ``__main__``, which every ``--trace-every`` seconds appends to ``DIR/trace.jsonl``
its RSS, glibc's heap (``mallinfo2``: in use, and free but kept inside the arenas),
Python's allocated blocks and its objects, and, under tracemalloc (``--trace-frames``, 0:
off), writes to ``DIR/trace.txt`` the allocation sites that grew since the last report and
since the first, by line and by traceback, and the object types that grew.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import gc
import itertools
import json
import math
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
DS, POLICY = "inv", "ops"
DEFAULT_ROWS = "3000,100000"
MIX = (("read", 0.80), ("push", 0.15), ("rule", 0.05))
KINDS = tuple(k for k, _ in MIX)
READS = ("tables/error/rows", "tables/warning/rows", "tables/load/rows", "violations")
PUSH_CHANGES = 4  # rows changed by each push
RSS_EVERY_S = 1.0
SOAK_EVERY_S = 30.0
SERVER_LOG_TAIL = 4000  # characters of the server's log shown after errors
SHOWN_ERRORS = 5
TRACE_DIR_ENV, TRACE_EVERY_ENV = "CHARTER_BENCH_TRACE_DIR", "CHARTER_BENCH_TRACE_EVERY"
TRACE_FRAMES_ENV = "CHARTER_BENCH_TRACE_FRAMES"

SCHEMA = {
    "servers": ["id", "tenant", "image", "host", "status"],
    "images": ["id", "approved"],
    "hosts": ["host", "capacity"],
}
RULES = [
    # an unapproved image: a join of two pushed tables
    "error(s, i) :- inv:servers(s, _, i, _, _), inv:images(i, 0)",
    # servers per host (an aggregate), and hosts over their capacity
    "load(h, n) :- inv:hosts(h, _), n = count : { inv:servers(s, _, _, h, _) }",
    "error(h, n) :- load(h, n), inv:hosts(h, c), n > c",
    # an active server on a host nobody declared (a negation)
    "warning(s, h) :- inv:servers(s, _, _, h, 1), not inv:hosts(h, _)",
]


# ---------------------------------------------------------------- the data


def inventory(rows: int, seed: int) -> dict[str, list[list]]:
    """The pushed tables: ``rows`` servers, ~50 a host, 1% of images unapproved."""
    rng = random.Random(seed)
    n_images, n_hosts = max(10, rows // 100), max(10, rows // 50)
    images = [[i, 0 if rng.random() < 0.01 else 1] for i in range(n_images)]
    hosts = [[f"h{h}", rng.randint(45, 70)] for h in range(n_hosts)]
    servers = [
        [s, f"t{rng.randrange(max(5, rows // 200))}", rng.randrange(n_images),
         f"h{rng.randrange(n_hosts)}", rng.randrange(3)]
        for s in range(rows)
    ]  # fmt: skip
    return {"servers": servers, "images": images, "hosts": hosts}


class PushTable:
    """The client side's copy of the pushed ``servers`` table, each row kept as JSON text,
    so that a push of the whole table with a few rows changed costs a join, not a dump."""

    def __init__(self, rows: list[list], n_images: int, n_hosts: int, seed: int) -> None:
        self.rows = [list(r) for r in rows]
        self.encoded = [json.dumps(r) for r in rows]
        self.n_images, self.n_hosts = n_images, n_hosts
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def changed_body(self, count: int = PUSH_CHANGES) -> bytes:
        """Change ``count`` rows (an image, a host or a status) and return the whole table."""
        with self.lock:
            rng = self.rng
            for _ in range(count):
                i = rng.randrange(len(self.rows))
                row = self.rows[i]
                what = rng.randrange(3)
                if what == 0:
                    row[2] = rng.randrange(self.n_images)
                elif what == 1:  # now and then a host nobody declared (a warning)
                    row[3] = f"h{rng.randrange(self.n_hosts + 2)}"
                else:
                    row[4] = rng.randrange(3)
                self.encoded[i] = json.dumps(row)
            return ("[" + ",".join(self.encoded) + "]").encode()


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    """The resident set of process ``pid`` (``VmRSS``), in MB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Server:
    """One ``charter serve`` process on a free loopback port over a temporary data dir."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str],
        trace: Path | None = None,
        trace_every: float = 30.0,
        trace_frames: int = 12,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "serve.log"
        self.extra_env = env
        self.trace, self.trace_every, self.trace_frames = trace, trace_every, trace_frames
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
        env.update({
            "CHARTER_DATA_DIR": str(self.data_dir),
            "CHARTER_HOST": "127.0.0.1",
            "CHARTER_PORT": str(self.port),
            "CHARTER_LOG_LEVEL": "warning",
            "CHARTER_AUTH__STRATEGY": "noauth",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT), str(REPO_ROOT / "src"), env.get("PYTHONPATH")) if p
            ),
        })  # fmt: skip
        env.update(self.extra_env)
        cmd = [sys.executable, "-m", "charter.cli.main", "serve"]
        if self.trace is not None:
            self.trace.mkdir(parents=True, exist_ok=True)
            env[TRACE_DIR_ENV], env[TRACE_EVERY_ENV] = str(self.trace), str(self.trace_every)
            env[TRACE_FRAMES_ENV] = str(self.trace_frames)
            cmd = [sys.executable, "-m", "bench.service"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"charter serve exited with {self.proc.returncode}:\n"
                    + self.log.read_text()[-3000:]
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "charter serve did not answer /healthz in time:\n"
                    + self.log.read_text()[-3000:]
                )
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM to its PID, SIGKILL if it has not exited 15 s later."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def check(response: httpx.Response) -> httpx.Response:
    if not response.is_success:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response


def set_up(client: httpx.Client, data: dict[str, list[list]]) -> None:
    """The push datasource, its three tables and the policy (timed apart from the load)."""
    check(client.post("/v1/data-sources", json={
        "name": DS, "driver": "push", "config": {"tables": SCHEMA}}))  # fmt: skip
    for table in ("images", "hosts", "servers"):
        check(client.put(f"/v1/data-sources/{DS}/tables/{table}/rows", json=data[table]))
    check(client.post("/v1/policies", json={"name": POLICY, "rules": [{"rule": r} for r in RULES]}))
    check(client.get(f"/v1/policies/{POLICY}/violations"))


# ---------------------------------------------------------------- the clients


@dataclass
class Record:
    """What every client measured: (kind, start since the phase began, latency) per request."""

    samples: list[tuple[str, float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_count: collections.Counter = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, start: float, latency: float, error: str | None) -> None:
        with self.lock:
            self.samples.append((kind, start, latency))
            if error is not None:
                self.error_count[kind] += 1
                if len(self.errors) < SHOWN_ERRORS:
                    self.errors.append(f"{kind}: {error}")

    def count(self, since: float = 0.0) -> int:
        with self.lock:
            return sum(1 for _, t, _ in self.samples if t >= since)


class Client(threading.Thread):
    """One client: its own keep-alive connection, a seeded mix of reads, pushes and rules."""

    names = itertools.count(1)  # rule texts differ across clients and phases

    def __init__(
        self,
        number: int,
        url: str,
        table: PushTable,
        record: Record,
        t0: float,
        stop: threading.Event,
        seed: int,
    ) -> None:
        super().__init__(name=f"bench-client-{number}", daemon=True)
        self.number, self.url, self.table, self.record = number, url, table, record
        self.t0, self.stop_event = t0, stop
        self.rng = random.Random(seed * 1000 + number)
        self.created: collections.deque[str] = collections.deque()

    def run(self) -> None:
        weights = [w for _, w in MIX]
        with httpx.Client(base_url=self.url, timeout=300) as http:
            while not self.stop_event.is_set():
                kind = self.rng.choices(KINDS, weights)[0]
                self.request(http, kind)
            while self.created:  # the rules still there: deleted after the timed window
                self.request(http, "rule")

    def request(self, http: httpx.Client, kind: str) -> None:
        start = time.perf_counter()
        error = None
        try:
            if kind == "read":
                path = f"/v1/policies/{POLICY}/{self.rng.choice(READS)}"
                response = http.get(path)
            elif kind == "push":
                response = http.put(
                    f"/v1/data-sources/{DS}/tables/servers/rows",
                    content=self.table.changed_body(),
                    headers={"content-type": "application/json"},
                )
            else:
                response = self.rule_change(http)
            if not response.is_success:
                error = (
                    f"{response.request.method} {response.request.url.path}: "
                    f"{response.status_code} {response.text[:200]}"
                )
        except Exception as exc:  # a failure is a measurement: counted, the first shown
            error = f"{type(exc).__name__}: {exc}"
        end = time.perf_counter()
        self.record.add(kind, start - self.t0, end - start, error)

    def rule_change(self, http: httpx.Client) -> httpx.Response:
        """Delete this client's oldest rule (on a later turn than its creation), or create
        one: alternately an aggregate and a join, with a constant new each time."""
        if self.created and (
            len(self.created) >= 2 or self.stop_event.is_set() or self.rng.random() < 0.5
        ):
            rule_id = self.created.popleft()
            return http.delete(f"/v1/policies/{POLICY}/rules/{rule_id}")
        k = next(self.names)
        if k % 2:
            text = (
                f"busy{self.number}(h, n) :- inv:hosts(h, _), "
                f"n = count : {{ inv:servers(s, _, _, h, 1) }}, n > {k % 40}"
            )
        else:
            text = (
                f"stale{self.number}(s, i) :- inv:servers(s, _, i, _, 2), inv:images(i, 0), s > {k}"
            )
        response = http.post(f"/v1/policies/{POLICY}/rules", json={"rule": text})
        if response.is_success:
            self.created.append(response.json()["id"])
        return response


class RssSampler(threading.Thread):
    """The server's RSS every second: ``(seconds since the phase began, MB)``."""

    def __init__(self, pid: int, t0: float, stop: threading.Event) -> None:
        super().__init__(name="bench-rss", daemon=True)
        self.pid, self.t0, self.stop_event = pid, t0, stop
        self.samples: list[tuple[float, float]] = []

    def run(self) -> None:
        while True:
            mb = rss_mb(self.pid)
            if mb is not None:
                self.samples.append((time.perf_counter() - self.t0, mb))
            if self.stop_event.wait(RSS_EVERY_S):
                return

    def at(self, t: float) -> float | None:
        """The last sample taken at or before ``t`` (the first one if none was)."""
        found = [mb for s, mb in self.samples if s <= t]
        return found[-1] if found else (self.samples[0][1] if self.samples else None)


# ---------------------------------------------------------------- one phase


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest rank."""
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[i]


def run_phase(rows: int, args: argparse.Namespace, soak: bool = False) -> dict[str, Any]:
    """A fresh server with ``rows`` pushed servers under the clients for the phase's time."""
    duration = args.soak if soak else args.duration
    data = inventory(rows, args.seed)
    table = PushTable(data["servers"], len(data["images"]), len(data["hosts"]), args.seed)
    env = dict(kv.split("=", 1) for kv in args.server_env)
    with tempfile.TemporaryDirectory(prefix="charter-bench-") as tmp:
        server = Server(Path(tmp), env, args.trace, args.trace_every, args.trace_frames)
        try:
            server.start(timeout=300 if args.trace else 60)
            rss_idle = rss_mb(server.pid)
            setup_start = time.perf_counter()
            with httpx.Client(base_url=server.url, timeout=600) as http:
                set_up(http, data)
            setup_s = time.perf_counter() - setup_start
            result = _drive(server, table, args, duration, soak)
            result.update({"rows": rows, "setup_s": setup_s, "rss_idle_mb": rss_idle})
            if server.proc is not None and server.proc.poll() is not None:
                result["errors"] += 1
                result["shown_errors"].append(f"the server exited with {server.proc.returncode}")
            if result["errors"]:  # the server's side of them, before its data dir goes
                tail = server.log.read_text(errors="replace")[-SERVER_LOG_TAIL:]
                result["shown_errors"].append("the server's log ends with:\n" + tail)
            return result
        finally:
            server.stop()


def _drive(
    server: Server, table: PushTable, args: argparse.Namespace, duration: float, soak: bool
) -> dict[str, Any]:
    record, stop = Record(), threading.Event()
    t0 = time.perf_counter()
    sampler = RssSampler(server.pid, t0, threading.Event())
    sampler.start()
    clients = [
        Client(i, server.url, table, record, t0, stop, args.seed) for i in range(args.clients)
    ]
    for c in clients:
        c.start()
    next_report, shown = SOAK_EVERY_S, 0
    while (now := time.perf_counter() - t0) < duration:
        if soak and now >= next_report:
            for e in record.errors[shown:]:  # a soak's errors as they come, not after 10 min
                print(f"  soak error: {e}", flush=True)
            shown = len(record.errors)
            warm = sampler.at(args.warmup)
            rss = sampler.samples[-1][1] if sampler.samples else float("nan")
            grown = f" ({rss - warm:+.0f} MB since warm-up)" if now > args.warmup and warm else ""
            print(
                f"  soak t={now:5.0f} s  RSS {rss:6.0f} MB{grown}  requests "
                f"{record.count():,}  errors {sum(record.error_count.values())}",
                flush=True,
            )
            next_report += SOAK_EVERY_S
        time.sleep(min(0.2, max(0.0, duration - now)))
    stop.set()
    elapsed = time.perf_counter() - t0
    rss_end = sampler.samples[-1][1] if sampler.samples else None
    for c in clients:
        c.join()
    sampler.stop_event.set()
    sampler.join()
    return summarize(record, sampler, elapsed, rss_end, args)


def summarize(
    record: Record,
    sampler: RssSampler,
    elapsed: float,
    rss_end: float | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The phase's figures: rates, latency percentiles per kind, errors, RSS."""
    timed = [(k, t, lat) for k, t, lat in record.samples if t < elapsed]
    kinds: dict[str, Any] = {}
    for kind in KINDS:
        lat = sorted(x for k, _, x in timed if k == kind)
        kinds[kind] = {
            "count": len(lat),
            "per_s": len(lat) / elapsed,
            **{f"p{q}_ms": percentile(lat, q / 100) * 1e3 for q in (50, 95, 99)},
            "max_ms": (lat[-1] * 1e3) if lat else float("nan"),
            "errors": record.error_count[kind],
        }
    rss_start = sampler.samples[0][1] if sampler.samples else None
    rss_warm = sampler.at(args.warmup)
    growth = rss_end - rss_warm if rss_end is not None and rss_warm is not None else None
    minutes = max(elapsed - args.warmup, 1e-9) / 60
    return {
        "duration_s": elapsed,
        "clients": args.clients,
        "requests": len(timed),
        "per_s": len(timed) / elapsed,
        "kinds": kinds,
        "errors": sum(record.error_count.values()),
        "shown_errors": list(record.errors),
        "rss_start_mb": rss_start,
        "rss_warm_mb": rss_warm,
        "rss_end_mb": rss_end,
        "rss_peak_mb": max((mb for _, mb in sampler.samples), default=None),
        "rss_growth_after_warmup_mb": growth,
        "rss_growth_mb_per_min": growth / minutes if growth is not None else None,
        "rss_series": series(sampler, elapsed, SOAK_EVERY_S if args.soak else 10.0),
    }


def series(sampler: RssSampler, elapsed: float, every: float) -> list[tuple[float, float]]:
    """``(t, MB)`` every ``every`` seconds of the phase, and at its end."""
    points = [k * every for k in range(int(elapsed // every) + 1)]
    if elapsed - points[-1] >= 1:
        points.append(elapsed)
    return [(round(t), round(mb, 1)) for t in points if (mb := sampler.at(t)) is not None]


def fmt_ms(ms: float) -> str:
    if ms != ms:  # NaN: no request of that kind
        return "-"
    return f"{ms / 1e3:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def report(phase: dict[str, Any], args: argparse.Namespace) -> str:
    """A phase as text."""
    lines = [
        f"service: {phase['rows']:,} pushed rows, {phase['clients']} clients, "
        f"{phase['duration_s']:.0f} s (setup {phase['setup_s']:.1f} s, warm-up "
        f"{args.warmup:.0f} s)",
        f"  {phase['requests']:,} requests, {phase['per_s']:.1f}/s, errors {phase['errors']}",
        f"  {'kind':<5} {'count':>7} {'/s':>7} {'p50':>9} {'p95':>9} {'p99':>9} {'max':>9}"
        f" {'errors':>6}",
    ]
    for kind, k in phase["kinds"].items():
        lines.append(
            f"  {kind:<5} {k['count']:>7,} {k['per_s']:>7.1f} {fmt_ms(k['p50_ms']):>9}"
            f" {fmt_ms(k['p95_ms']):>9} {fmt_ms(k['p99_ms']):>9} {fmt_ms(k['max_ms']):>9}"
            f" {k['errors']:>6}"
        )

    def mb(x: float | None) -> str:
        return "-" if x is None else f"{x:.0f}"

    growth = phase["rss_growth_after_warmup_mb"]
    rate = phase["rss_growth_mb_per_min"]
    lines.append(
        f"  server RSS (MB): idle {mb(phase['rss_idle_mb'])}, start {mb(phase['rss_start_mb'])}"
        f", after warm-up {mb(phase['rss_warm_mb'])}, end {mb(phase['rss_end_mb'])}, peak "
        f"{mb(phase['rss_peak_mb'])}; growth after warm-up "
        + ("-" if growth is None else f"{growth:+.0f} MB ({rate:+.1f} MB/min)")
    )
    for e in phase["shown_errors"]:
        lines.append(f"  error: {e}")
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench --workload service",
        description="charter serve under concurrent clients: latency, errors, server RSS.",
    )
    parser.add_argument("--workload", default="service", choices=("service",))
    parser.add_argument(
        "--rows",
        default=DEFAULT_ROWS,
        help=f"pushed servers per phase, comma-separated (default {DEFAULT_ROWS})",
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument(
        "--warmup",
        type=float,
        default=10.0,
        help="seconds after which RSS growth is counted (default 10)",
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--soak",
        type=float,
        help="one phase of this many seconds (the first --rows size), RSS printed every 30 s",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the server, e.g. MALLOC_ARENA_MAX=2; repeatable",
    )
    parser.add_argument(
        "--trace",
        type=Path,
        metavar="DIR",
        help="run the server under tracemalloc; growth reports in DIR/trace.txt",
    )
    parser.add_argument(
        "--trace-every",
        type=float,
        default=30.0,
        help="seconds between tracemalloc reports (default 30)",
    )
    parser.add_argument(
        "--trace-frames",
        type=int,
        default=12,
        help="tracemalloc frames per allocation (default 12; 0: no tracemalloc, only RSS, "
        "glibc's heap and Python's blocks in DIR/trace.jsonl: cheap enough for a soak)",
    )
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    args = parser.parse_args(argv)
    try:
        args.rows = [int(r) for r in args.rows.split(",") if r.strip()]
    except ValueError:
        parser.error("--rows takes comma-separated integers, e.g. 3000,100000")
    if not args.rows or min(args.rows) < 10:
        parser.error("--rows sizes must be at least 10")
    if args.clients < 1 or args.duration <= 0 or (args.soak is not None and args.soak <= 0):
        parser.error("--clients, --duration and --soak must be positive")
    if any("=" not in kv for kv in args.server_env):
        parser.error("--server-env takes KEY=VALUE")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run each phase (or the soak), print each, then the JSON summary line."""
    args = parse_args(argv)
    sizes = [args.rows[0]] if args.soak else args.rows
    phases = []
    for rows in sizes:
        what = f"soak {args.soak:.0f} s" if args.soak else f"{args.duration:.0f} s"
        print(
            f"bench: service rows={rows:,} clients={args.clients} {what} ...",
            file=sys.stderr,
            flush=True,
        )
        phase = run_phase(rows, args, soak=bool(args.soak))
        phases.append(phase)
        print(report(phase, args), flush=True)
        print(flush=True)
    summary = {
        "benchmark": "service",
        "seed": args.seed,
        "clients": args.clients,
        "mix": dict(MIX),
        "soak": bool(args.soak),
        "server_env": args.server_env,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "phases": phases,
    }
    text = json.dumps(summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    failed = sum(p["errors"] for p in phases)
    if failed:
        print(f"bench: {failed} request(s) failed", file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------- the traced server


def _type_counts() -> collections.Counter:
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def malloc_figures() -> dict[str, float]:
    """glibc's heap over all arenas (``mallinfo2``), in MB: taken from the system in arenas
    and in mmaps, in use, and free inside the arenas (kept, not returned: fragmentation)."""
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return {}
    mallinfo2.restype = _MallInfo2
    m = mallinfo2()
    mb = 2**20
    return {"arenas": m.arena / mb, "mmapped": m.hblkhd / mb, "in_use": m.uordblks / mb,
            "free_in_arenas": m.fordblks / mb}  # fmt: skip


def pymalloc_figures() -> dict[str, float]:
    """Python's own allocator (``sys._debugmallocstats``, read from stderr), in MB: its
    arenas (mmapped by itself, outside glibc's figures), the blocks in use in them, and the
    free blocks they keep."""
    wanted = {"# arenas allocated current": "arenas", "# bytes in allocated blocks": "in_use",
              "# bytes in available blocks": "free"}  # fmt: skip
    with tempfile.TemporaryFile("w+") as f:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(f.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        out: dict[str, float] = {}
        arena_bytes = 0
        for line in f:
            key, _, value = line.partition("=")
            if key.strip() in wanted:
                out[wanted[key.strip()]] = int(value.strip().replace(",", ""))
            elif "bytes/arena" in line:
                arena_bytes = int(line.split("*")[1].split()[0])
    if "arenas" in out:
        out["arenas"] *= arena_bytes
    return {k: v / 2**20 for k, v in out.items()}


def _trace_reports(out: Path, every: float, tracing: bool) -> None:
    """Every ``every`` seconds: RSS, glibc's heap, Python's allocated blocks and objects
    (a line of ``trace.jsonl``); with tracemalloc, what grew since the last report and since
    the first (by line, by traceback) and the object types that grew (``trace.txt``)."""
    ignore = (
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    )
    base: tracemalloc.Snapshot | None = None
    last: tracemalloc.Snapshot | None = None
    base_types: collections.Counter = collections.Counter()
    start = time.monotonic()
    while True:
        time.sleep(every)
        types = _type_counts()
        figures = {
            "t": round(time.monotonic() - start),
            "rss_mb": rss_mb(os.getpid()),
            **{f"malloc_{k}_mb": round(v, 1) for k, v in malloc_figures().items()},
            **{f"pymalloc_{k}_mb": round(v, 1) for k, v in pymalloc_figures().items()},
            "py_blocks": sys.getallocatedblocks(),
            "gc_objects": sum(types.values()) + gc.get_freeze_count(),
        }
        with open(out / "trace.jsonl", "a") as f:
            f.write(json.dumps(figures) + "\n")
        if not tracing:
            continue
        snap = tracemalloc.take_snapshot().filter_traces(ignore)
        traced, peak = tracemalloc.get_traced_memory()
        lines = [f"== {figures} traced {traced / 2**20:.1f} MB (peak {peak / 2**20:.1f})"]
        if base is None or last is None:
            base, base_types = snap, types
            lines.append("baseline")
        else:
            lines.append("-- grown since the last report, by line:")
            lines += [f"  {stat}" for stat in snap.compare_to(last, "lineno")[:12]]
            lines.append("-- grown since the baseline, by line:")
            lines += [f"  {stat}" for stat in snap.compare_to(base, "lineno")[:20]]
            lines.append("-- by traceback (top 6):")
            for stat in snap.compare_to(base, "traceback")[:6]:
                lines.append(f"  {stat.size_diff / 1024:+.1f} KiB {stat.count_diff:+d} blocks")
                lines += [f"      {frame}" for frame in stat.traceback.format()[-16:]]
            lines.append("-- objects by type, grown:")
            grown = sorted(((types[t] - base_types[t], t) for t in types), reverse=True)[:15]
            lines += [f"  {d:+8,d} {t} ({types[t]:,})" for d, t in grown if d > 0]
        last = snap
        with open(out / "trace.txt", "a") as f:
            f.write("\n".join(lines) + "\n\n")


def traced_serve() -> None:
    """``charter serve`` with the reports above (started by ``--trace``; never in ``src/``)."""
    out = Path(os.environ[TRACE_DIR_ENV])
    every = float(os.environ.get(TRACE_EVERY_ENV, "30"))
    frames = int(os.environ.get(TRACE_FRAMES_ENV, "12"))
    import charter.api.app  # noqa: F401  (imported before tracing: a slow start otherwise)
    from charter.cli.main import app
    from charter.datasources.registry import drivers

    drivers()
    if frames:
        tracemalloc.start(frames)
    threading.Thread(
        target=_trace_reports, args=(out, every, bool(frames)), daemon=True, name="bench-trace"
    ).start()
    app(["serve"], prog_name="charter")


if __name__ == "__main__":
    if TRACE_DIR_ENV in os.environ:
        traced_serve()
    else:
        sys.exit(main())
