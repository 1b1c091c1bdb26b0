"""Rows 3 to 6 of ``--workload paths`` (and the PATCH beside row 3): a real ``charter serve`` taking a push or a poll of
``--n`` servers with 1% changed, reads during it, and single pushed changes; beside the
in-process engine doing the same work (its own 1% batch, its own single change).

The data (``service_data``): the cloud workload's ``servers`` (id, tenant, image, flavor,
host, status; ``bench.workload.generate``), ``images`` (n/100, all approved but image 0, so
the policy's ``error`` table holds the ~100 servers on image 0) and ``hosts`` (n/50, a
capacity each). The policy ``ops``::

    error(s, i) :- inv:servers(s, _, i, _, _, _), inv:images(i, 0)
    load(h, n)  :- inv:hosts(h, _), n = count : { inv:servers(s, _, _, _, h, _) }

The 1% change (``one_percent``): 1% of the servers, half with a new image, half a new status.

- push: a push datasource ``inv``; ``PUT .../tables/servers/rows`` of the whole table, 1%
  changed, alternately the changed and the original table (each a 1% change), timed to the
  answer (the store is SQLite, ``synchronous=FULL``: durable before the answer); then the
  same changes as ``PATCH .../tables/servers/rows`` (``{"insert": the 1% as changed,
  "delete": the 1% as it was}``, alternately that and back), timed the same way;
- poll: an ``http`` datasource ``inv`` whose tables a thread of this process serves on
  127.0.0.1 (``FeedServer``, JSON objects the driver maps with JMESPath), ``poll_time`` a day
  so it never polls by itself; each poll is ``POST /v1/data-sources/inv?action=request-refresh``
  (the service's own poll, read and applied before the answer) after the served ``servers``
  changed by 1%;
- reads: a thread reading ``GET /v1/policies/ops/tables/error/rows`` without pause, alone
  first (the idle baseline), then throughout the pushes and the polls; a read counts for a
  push or a poll when it starts while that request is in flight;
- single changes: ``PUT .../tables/images/rows`` of the whole images table with one image's
  ``approved`` flipped (the only push there is), alternately making its ~100 servers
  violations and clearing them, timed until ``GET /v1/policies/ops/violations`` shows it.

The engine's side (``python -m bench.paths_service N SEED REPEAT CHANGES``, its own process):
the same policy and rows loaded by ``Engine.load_columns``, the 1% change applied as row
deltas (``Engine.apply``), alternately forward and back, and the same single image flips.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from bench.service import RssSampler, Server, check, percentile, rss_mb
from bench.workload import COLUMNS, generate, sizes

DS, POLICY = "inv", "ops"
SCHEMA = {
    "servers": list(COLUMNS["servers"]),
    "images": ["id", "approved"],
    "hosts": ["host", "capacity"],
}
RULES = [
    "error(s, i) :- inv:servers(s, _, i, _, _, _), inv:images(i, 0)",
    "load(h, n) :- inv:hosts(h, _), n = count : { inv:servers(s, _, _, _, h, _) }",
]
ERROR_PATH = f"/v1/policies/{POLICY}/tables/error/rows"
VIOLATIONS_PATH = f"/v1/policies/{POLICY}/violations"
IDLE_READS = 200
REQUEST_TIMEOUT = 1800.0
VISIBLE_TIMEOUT = 60.0
START_TIMEOUT = 300.0  # a loaded machine starts a server slowly
#: The server's environment: a 1M-row push is 28 MB, over the default 10 MB body limit
#: (``max_body_bytes``), which refuses it with 413; the benchmark lifts it to measure.
SERVER_ENV = {"CHARTER_MAX_BODY_BYTES": str(2**31 - 1)}

Columns = dict[str, np.ndarray]


# ---------------------------------------------------------------- the data


def service_data(n: int, seed: int) -> dict[str, Columns]:
    """The three tables as int64 NumPy columns (see the module's docstring)."""
    servers = generate(n, seed).tables["servers"]
    rng = np.random.default_rng([seed, 15])
    n_images, n_hosts = sizes(n)["images"], sizes(n)["hosts"]
    approved = np.ones(n_images, dtype=np.int64)
    approved[0] = 0
    return {
        "servers": servers,
        "images": {"id": np.arange(n_images, dtype=np.int64), "approved": approved},
        "hosts": {
            "host": np.arange(n_hosts, dtype=np.int64),
            "capacity": rng.integers(45, 71, n_hosts, dtype=np.int64),
        },
    }


def one_percent(servers: Columns, seed: int, fraction: float = 0.01) -> tuple[np.ndarray, Columns]:
    """The positions of the changed servers and the whole table after the change."""
    n = len(servers["id"])
    rng = np.random.default_rng([seed, 16])
    k = max(1, round(fraction * n))
    slots = np.sort(rng.choice(n, size=k, replace=False))
    new = {c: v.copy() for c, v in servers.items()}
    n_images = max(2, int(servers["image"].max()) + 1)
    image = rng.random(k) < 0.5
    new["image"][slots[image]] = (servers["image"][slots[image]] + 1) % n_images
    status = slots[~image]
    new["status"][status] = (servers["status"][status] + 1) % 3
    return slots, new


def rows(columns: Columns, slots: np.ndarray | None = None) -> list[list[int]]:
    """The table (or the rows at ``slots``) as lists of Python ints."""
    cols = [c if slots is None else c[slots] for c in columns.values()]
    return np.column_stack(cols).tolist() if len(cols[0]) else []


def flipped_images(images: Columns, image: int, approved: int) -> bytes:
    """The images table as a push body, ``image`` set to ``approved``."""
    flags = images["approved"].copy()
    flags[image] = approved
    return orjson.dumps(np.column_stack([images["id"], flags]).tolist())


def flip_targets(n_images: int, changes: int) -> list[tuple[int, int]]:
    """(image, approved) of each single change: image k made unapproved, then approved
    again, for k = 1, 2, ... (image 0 stays unapproved: the standing ~100 errors)."""
    out = []
    for i in range(changes):
        image = 1 + (i // 2) % max(1, n_images - 1)
        out.append((image, 0 if i % 2 == 0 else 1))
    return out


# ---------------------------------------------------------------- the engine's side


def engine_main(n: int, seed: int, repeat: int, changes: int) -> dict[str, Any]:
    """The in-process engine's 1% batch and single changes (see the module's docstring)."""
    import duckdb  # noqa: F401  (the engine's bulk path imports it; not timed)

    from charter.engine import Delta, Engine

    data = service_data(n, seed)
    slots, new = one_percent(data["servers"], seed)
    engine = Engine()
    engine.declare_datasource(DS, SCHEMA)
    engine.load_policy(POLICY, "\n".join(RULES))
    start = time.perf_counter()
    engine.load_columns({f"{DS}:{t}": [cols[c] for c in SCHEMA[t]] for t, cols in data.items()})
    errors_before = engine.count(f"{POLICY}:error")
    load_s = time.perf_counter() - start
    table = f"{DS}:servers"
    old_rows = [tuple(r) for r in rows(data["servers"], slots)]
    new_rows = [tuple(r) for r in rows(new, slots)]
    forward = [Delta(table, r, -1) for r in old_rows] + [Delta(table, r, +1) for r in new_rows]
    back = [Delta(table, r, -1) for r in new_rows] + [Delta(table, r, +1) for r in old_rows]
    batch_runs, errors_after = [], None
    for i in range(repeat):
        batch = forward if i % 2 == 0 else back
        start = time.perf_counter()
        engine.apply(batch)
        batch_runs.append(time.perf_counter() - start)
        if i == 0:
            errors_after = engine.count(f"{POLICY}:error")
    if repeat % 2:
        engine.apply(back)
    images = data["images"]
    singles = []
    for image, approved in flip_targets(len(images["id"]), changes):
        row_id = f"{DS}:images"
        batch = [Delta(row_id, (image, 1 - approved), -1), Delta(row_id, (image, approved), +1)]
        start = time.perf_counter_ns()
        engine.apply(batch)
        singles.append((time.perf_counter_ns() - start) / 1e3)
    singles.sort()
    return {
        "load_s": load_s,
        "changed_rows": len(slots),
        "batch_runs_s": batch_runs,
        "batch_s": statistics.median(batch_runs),
        "errors_before": errors_before,
        "errors_after": errors_after,
        "single_p50_us": percentile(singles, 0.5),
        "single_p99_us": percentile(singles, 0.99),
    }


# ---------------------------------------------------------------- reads, the feed


class Reader(threading.Thread):
    """Reads the policy's ``error`` rows without pause: (start, end) of each read."""

    def __init__(self, url: str) -> None:
        super().__init__(name="bench-reader", daemon=True)
        self.url = url
        self.samples: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT) as http:
            while not self.stop_event.is_set():
                start = time.perf_counter()
                try:
                    response = http.get(ERROR_PATH)
                    if not response.is_success:
                        self.errors.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                self.samples.append((start, time.perf_counter()))

    def stop(self) -> None:
        self.stop_event.set()
        self.join(REQUEST_TIMEOUT)


def read_summary(
    samples: list[tuple[float, float]], windows: list[tuple[float, float]] | None = None
) -> dict[str, Any]:
    """p50/p99/max (ms) of the reads that started inside one of ``windows`` (all: None)."""
    lat = sorted(
        (end - start) * 1e3
        for start, end in samples
        if windows is None or any(a <= start < b for a, b in windows)
    )
    return {
        "reads": len(lat),
        "p50_ms": percentile(lat, 0.5),
        "p99_ms": percentile(lat, 0.99),
        "max_ms": lat[-1] if lat else float("nan"),
    }


class _FeedHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        feed: FeedServer = self.server.feed  # type: ignore[attr-defined]
        body = feed.bodies.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        start = time.perf_counter()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        feed.served.append((self.path, start, time.perf_counter()))

    def log_message(self, *args: Any) -> None:
        pass


class FeedServer:
    """The polled service: the tables as JSON objects on 127.0.0.1, in a thread."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.served: list[tuple[str, float, float]] = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FeedHandler)
        self.httpd.daemon_threads = True
        self.httpd.feed = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True, name="bench-feed"
        )

    def set_table(self, table: str, columns: Columns) -> None:
        names = list(columns)
        items = [dict(zip(names, r, strict=True)) for r in rows(columns)]
        self.bodies[f"/{table}"] = orjson.dumps({"items": items})

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def http_config(url: str) -> dict[str, Any]:
    tables = {
        t: {"path": f"/{t}", "items": "items", "columns": {c: c for c in cols}}
        for t, cols in SCHEMA.items()
    }
    return {"base_url": url, "tables": tables, "poll_time": 86400, "timeout_seconds": 600}


# ---------------------------------------------------------------- the service's side


def _policy(http: httpx.Client) -> None:
    check(http.post("/v1/policies", json={"name": POLICY, "rules": [{"rule": r} for r in RULES]}))
    check(http.get(VIOLATIONS_PATH))


def _error_count(http: httpx.Client) -> int:
    return len(check(http.get(ERROR_PATH)).json()["results"])


def _idle_reads(url: str) -> dict[str, Any]:
    samples = []
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as http:
        for _ in range(IDLE_READS):
            start = time.perf_counter()
            check(http.get(ERROR_PATH))
            samples.append((start, time.perf_counter()))
    return read_summary(samples)


def _timed_writes(
    url: str, send: Any, repeat: int
) -> tuple[list[float], list[tuple[float, float]], dict[str, Any], list[str]]:
    """``repeat`` writes (``send(http, i)``) with the reader running: their times, their
    windows, the reads inside them, the reader's errors."""
    reader = Reader(url)
    reader.start()
    runs, windows = [], []
    try:
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as http:
            time.sleep(0.2)  # the reader is reading before the first write
            for i in range(repeat):
                start = time.perf_counter()
                check(send(http, i))
                end = time.perf_counter()
                runs.append(end - start)
                windows.append((start, end))
    finally:
        reader.stop()
    return runs, windows, read_summary(reader.samples, windows), reader.errors[:5]


def push_phase(n: int, seed: int, repeat: int, changes: int, tmp: Path) -> dict[str, Any]:
    """Rows 3, 5 (during pushes) and 6 against one ``charter serve`` (see the docstring)."""
    data = service_data(n, seed)
    slots, new = one_percent(data["servers"], seed)
    original, changed = orjson.dumps(rows(data["servers"])), orjson.dumps(rows(new))
    before, after = rows(data["servers"], slots), rows(new, slots)
    patches = (orjson.dumps({"insert": after, "delete": before}),  # the 1% change, then back
               orjson.dumps({"insert": before, "delete": after}))  # fmt: skip
    server = Server(tmp, SERVER_ENV)
    out: dict[str, Any] = {}
    try:
        server.start(timeout=START_TIMEOUT)
        sampler = RssSampler(server.pid, time.perf_counter(), threading.Event())
        sampler.start()
        headers = {"content-type": "application/json"}
        path = f"/v1/data-sources/{DS}/tables/%s/rows"
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
            check(http.post("/v1/data-sources", json={
                "name": DS, "driver": "push", "config": {"tables": SCHEMA}}))  # fmt: skip
            start = time.perf_counter()
            for table in ("images", "hosts"):
                check(http.put(path % table, json=rows(data[table])))
            check(http.put(path % "servers", content=original, headers=headers))
            out["initial_push_s"] = time.perf_counter() - start
            _policy(http)
            out["errors_before"] = _error_count(http)
        out["idle_reads"] = _idle_reads(server.url)

        def send(http: httpx.Client, i: int) -> httpx.Response:
            return http.put(
                path % "servers", content=changed if i % 2 == 0 else original, headers=headers
            )

        runs, windows, reads, errors = _timed_writes(server.url, send, repeat)
        out.update(
            {
                "push_runs_s": runs,
                "push_s": statistics.median(runs),
                "reads_during_push": reads,
                "reader_errors": errors,
            }
        )
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
            if repeat % 2:  # the changed table is in: its error count, then back
                out["errors_after"] = _error_count(http)
                check(send(http, 1))

        def send_patch(http: httpx.Client, i: int) -> httpx.Response:
            return http.patch(path % "servers", content=patches[i % 2], headers=headers)

        runs, windows, reads, errors = _timed_writes(server.url, send_patch, repeat)
        out.update(
            {
                "patch_runs_s": runs,
                "patch_s": statistics.median(runs),
                "reads_during_patch": reads,
                "patch_reader_errors": errors,
            }
        )
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
            if repeat % 2:
                out["patch_errors_after"] = _error_count(http)
                check(send_patch(http, 1))
            out["single"] = _single_changes(http, data["images"], changes)
            out["single_patch"] = _single_changes(http, data["images"], changes, patch=True)
        out["server_rss_peak_mb"] = max((mb for _, mb in sampler.samples), default=None)
        out["server_rss_end_mb"] = rss_mb(server.pid)
        sampler.stop_event.set()
        sampler.join()
    finally:
        server.stop()
    return out


def _single_changes(
    http: httpx.Client, images: Columns, changes: int, patch: bool = False
) -> dict[str, Any]:
    """Each flip pushed, then the violations read until they show it (see the docstring).

    ``patch``: each flip sent as ``PATCH .../rows`` of that one row (its old value deleted,
    its new one inserted) in place of a PUT of the whole images table."""
    headers = {"content-type": "application/json"}
    path = f"/v1/data-sources/{DS}/tables/images/rows"
    lat, at_ack, reads = [], 0, 0
    for image, approved in flip_targets(len(images["id"]), changes):
        if patch:
            row = int(images["id"][image])
            body = orjson.dumps({"insert": [[row, approved]], "delete": [[row, 1 - approved]]})
            send = http.patch
        else:
            body, send = flipped_images(images, image, approved), http.put
        start = time.perf_counter()
        check(send(path, content=body, headers=headers))
        first = True
        while True:
            found = check(http.get(VIOLATIONS_PATH)).json()["results"]
            reads += 1
            shown = any(v["table"] == "error" and v["row"][1] == image for v in found)
            if shown == (approved == 0):
                break
            first = False
            if time.perf_counter() - start > VISIBLE_TIMEOUT:
                raise RuntimeError(
                    f"image {image} approved={approved}: not visible in "
                    f"{VIOLATIONS_PATH} after {VISIBLE_TIMEOUT:.0f} s"
                )
        lat.append((time.perf_counter() - start) * 1e3)
        at_ack += first
    lat.sort()
    return {
        "changes": len(lat),
        "p50_ms": percentile(lat, 0.5),
        "p99_ms": percentile(lat, 0.99),
        "max_ms": lat[-1] if lat else float("nan"),
        "visible_at_first_read": at_ack,
        "images_rows": len(images["id"]),
    }


def poll_phase(n: int, seed: int, repeat: int, tmp: Path) -> dict[str, Any]:
    """Rows 4 and 5 (during polls) against one ``charter serve`` polling ``FeedServer``."""
    data = service_data(n, seed)
    _, new = one_percent(data["servers"], seed)
    out: dict[str, Any] = {}
    with FeedServer() as feed:
        for table, cols in data.items():
            feed.set_table(table, cols)
        original = feed.bodies["/servers"]
        feed.set_table("servers", new)
        changed = feed.bodies["/servers"]
        feed.bodies["/servers"] = original
        out["servers_body_mb"] = len(original) / 2**20
        server = Server(tmp, SERVER_ENV)
        try:
            server.start(timeout=START_TIMEOUT)
            refresh = f"/v1/data-sources/{DS}"
            params = {"action": "request-refresh"}
            with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
                check(http.post("/v1/data-sources", json={
                    "name": DS, "driver": "http", "config": http_config(feed.url)}))  # fmt: skip
                start = time.perf_counter()
                check(http.post(refresh, params=params))  # after the first poll, if not done
                out["initial_poll_s"] = time.perf_counter() - start
                status = check(http.get(f"/v1/data-sources/{DS}/status")).json()
                if status["rows"].get("servers") != n:
                    raise RuntimeError(f"the first poll left {status['rows']} rows, not {n}")
                _policy(http)
                out["errors_before"] = _error_count(http)
            out["idle_reads"] = _idle_reads(server.url)
            feed.served.clear()

            def send(http: httpx.Client, i: int) -> httpx.Response:
                feed.bodies["/servers"] = changed if i % 2 == 0 else original
                return http.post(refresh, params=params)

            runs, windows, reads, errors = _timed_writes(server.url, send, repeat)
            serving = [end - start for path, start, end in feed.served if path == "/servers"]
            out.update(
                {
                    "poll_runs_s": runs,
                    "poll_s": statistics.median(runs),
                    "feed_servers_s": statistics.median(serving) if serving else None,
                    "reads_during_poll": reads,
                    "reader_errors": errors,
                }
            )
            if repeat % 2:
                with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
                    out["errors_after"] = _error_count(http)
            out["server_rss_end_mb"] = rss_mb(server.pid)
        finally:
            server.stop()
    return out


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print("usage: python -m bench.paths_service N SEED REPEAT CHANGES", file=sys.stderr)
        sys.exit(2)
    with contextlib.redirect_stdout(sys.stderr):
        result = engine_main(*(int(a) for a in sys.argv[1:]))
    print(json.dumps(result))
