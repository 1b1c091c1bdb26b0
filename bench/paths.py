"""The user paths benchmark: ``python -m bench --workload paths [--n 100000]`` (issue 15).

Every path a user takes, each row Charter's figure beside a baseline measured in the same
invocation, and their ratio:

1. ``charter eval cloud.dl --data cloud.json`` end to end (a process: wall time, peak RSS)
   vs DuckDB reading the same file with ``read_json`` and fetching the rows of the same three
   queries (a process too); and vs DuckDB reading the same rows as NDJSON (its fast layout);
2. the same from Parquet (``not supported yet`` while ``charter eval`` refuses it);
3. ``PUT .../tables/servers/rows`` of the n-row table with 1% changed, acknowledged (SQLite,
   durable) vs the in-process engine applying the same change as row deltas;
4. a poll of the n-row table with 1% changed, applied (the ``http`` driver reading a local
   feed, ``?action=request-refresh``) vs the same engine batch;
5. reads of the policy's ``error`` rows (~100) issued without pause during the polls (and
   the pushes) vs the same reads with nothing else going on;
6. one pushed row change until ``GET .../violations`` shows it vs the engine's own single
   change.

``bench/paths_files.py`` holds rows 1-2, ``bench/paths_service.py`` rows 3-6 (and their
data and policy). One table, then one JSON line. Exit 1 if a side failed or the sides
disagree on the results, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import paths_files, paths_service
from bench.result import json_child
from bench.workload import DEFAULT_SEED, generate

DEFAULT_N = 1_000_000


def fmt_s(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def engine_side(n: int, seed: int, repeat: int, changes: int, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.paths_service", str(n), str(seed), str(repeat),
           str(changes)]  # fmt: skip
    return json_child(cmd, paths_files.REPO_ROOT, paths_files.child_env(), timeout)


def _file_rows(n: int, args: argparse.Namespace, out: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="charter-paths-files-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        out["file_mb"] = paths_files.write_files(generate(n, args.seed), folder)
        out["write_files_s"] = time.perf_counter() - start
        for fmt in ("json", "parquet"):
            log(f"charter eval ({fmt}) ...")
            out[f"charter_{fmt}"] = paths_files.charter_eval(folder, fmt, args.timeout)
        for fmt in paths_files.FORMATS:
            log(f"duckdb ({fmt}) ...")
            out[f"duckdb_{fmt}"] = paths_files.duckdb_eval(folder, fmt, args.timeout)


def log(message: str) -> None:
    print(f"bench: paths {message}", file=sys.stderr, flush=True)


def run(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every row at ``n`` servers."""
    out: dict[str, Any] = {"n": n}
    if "files" in args.parts:
        _file_rows(n, args, out)
    if "service" in args.parts:
        log("engine's own batch ...")
        out["engine"] = engine_side(n, args.seed, args.repeat, args.changes, args.timeout)
        for name, phase in (("push", paths_service.push_phase),
                            ("poll", paths_service.poll_phase)):  # fmt: skip
            log(f"{name} against charter serve ...")
            with tempfile.TemporaryDirectory(prefix=f"charter-paths-{name}-") as tmp:
                try:
                    extra = (args.changes,) if name == "push" else ()
                    out[name] = phase(n, args.seed, args.repeat, *extra, Path(tmp))
                except Exception as exc:  # a failed side is a row saying so, and exit 1
                    out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


# ---------------------------------------------------------------- the table


def rows_of(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows: path, Charter's figure, the baseline's, the ratio, a note."""
    table: list[dict[str, Any]] = []

    def add(path: str, charter: str, baseline: str, ratio: float | None, note: str = "") -> None:
        table.append({"path": path, "charter": charter, "baseline": baseline,
                      "ratio": ratio, "note": note})  # fmt: skip

    def proc(p: dict[str, Any]) -> str:
        if p.get("exit") != 0:
            return "failed"
        return f"{fmt_s(p['wall_s'])}, {p['rss_peak_mb']:.0f} MB"

    def q(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    c = r.get("charter_json")
    if c is not None:
        for fmt, label in (("json", "DuckDB read_json, same file"),
                           ("ndjson", "DuckDB read_json, NDJSON")):  # fmt: skip
            d = r[f"duckdb_{fmt}"]
            ok = c["exit"] == 0 and d["exit"] == 0
            add(
                f"eval --data cloud.json (vs {fmt})",
                proc(c),
                f"{proc(d)} ({label})",
                q(c["wall_s"], d["wall_s"]) if ok else None,
                f"RSS {q(c['rss_peak_mb'], d['rss_peak_mb']):.2f}x" if ok else "",
            )
        p, d = r["charter_parquet"], r["duckdb_parquet"]
        if p["exit"] == 0:
            add(
                "eval --data *.parquet",
                proc(p),
                f"{proc(d)} (DuckDB read_parquet)",
                q(p["wall_s"], d["wall_s"]),
            )
        else:
            reason = (p["stderr_tail"] or ["?"])[0]
            reason = reason.split("/")[-1][:90]  # without the temporary folder
            add(
                "eval --data *.parquet",
                "not supported yet",
                f"{proc(d)} (DuckDB read_parquet)",
                None,
                reason,
            )
    e = r.get("engine")
    if e is not None:
        batch = None if "error" in e else e["batch_s"]
        base = f"{fmt_s(batch)} (engine's 1% batch)" if batch else "failed"
        push, poll = r["push"], r["poll"]
        if "error" in push:
            add("PUT servers, 1% changed", "failed", base, None, push["error"].splitlines()[0][:90])
        else:
            add(
                "PUT servers, 1% changed",
                fmt_s(push["push_s"]),
                base,
                q(push["push_s"], batch),
                f"{e.get('changed_rows', 0):,} rows changed",
            )
        if "patch_s" in push:
            add(
                "PATCH servers, 1% changed",
                fmt_s(push["patch_s"]),
                base,
                q(push["patch_s"], batch),
                f"{e.get('changed_rows', 0):,} rows inserted, as many deleted",
            )
        if "error" in poll:
            add(
                "poll servers, 1% changed", "failed", base, None, poll["error"].splitlines()[0][:90]
            )
        else:
            feed = poll.get("feed_servers_s")
            add(
                "poll servers, 1% changed",
                fmt_s(poll["poll_s"]),
                base,
                q(poll["poll_s"], batch),
                f"feed served the table in {fmt_s(feed)}",
            )
        for key, label, side in (("reads_during_poll", "poll", poll),
                                 ("reads_during_push", "push", push)):  # fmt: skip
            idle, during = side.get("idle_reads"), side.get(key)
            if idle and during and during["reads"]:
                add(
                    f"read error rows during {label} p50/p99",
                    f"{during['p50_ms']:.1f}/{during['p99_ms']:.1f} ms",
                    f"{idle['p50_ms']:.1f}/{idle['p99_ms']:.1f} ms (idle reads)",
                    q(during["p99_ms"], idle["p99_ms"]),
                    f"{during['reads']} reads, max {during['max_ms']:.0f} ms",
                )
        for key, how in (("single", "PUT"), ("single_patch", "PATCH")):
            single = push.get(key)
            if single and "error" not in e:
                add(
                    f"{how} change -> violations p50/p99",
                    f"{single['p50_ms']:.1f}/{single['p99_ms']:.1f} ms",
                    f"{e['single_p50_us']:.0f}/{e['single_p99_us']:.0f} us (engine's change)",
                    q(single["p50_ms"] * 1e3, e["single_p50_us"]),
                    f"{single['changes']} changes, images {single['images_rows']:,} rows",
                )
    return table


def text_table(n: int, table: list[dict[str, Any]]) -> str:
    header = ("path", "charter", "baseline (same run)", "ratio", "note")
    cells = [header] + [
        (t["path"], t["charter"], t["baseline"],
         "-" if t["ratio"] is None else f"{t['ratio']:.3g}x", t["note"])
        for t in table
    ]  # fmt: skip
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = [f"paths at N={n:,} servers"]
    for i, c in enumerate(cells):
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("-" * len(lines[-1]))
    return "\n".join(lines)


def agreement(r: dict[str, Any]) -> list[str]:
    """Where two sides that must agree do not (or a side failed)."""
    problems = []
    counts = {k: v["counts"] for k, v in r.items()
              if k.startswith(("charter_", "duckdb_")) and v.get("counts")}  # fmt: skip
    if len(set(json.dumps(v, sort_keys=True) for v in counts.values())) > 1:
        problems.append(f"p1..p3 differ: {counts}")
    for key in ("charter_json", "duckdb_json", "duckdb_ndjson", "duckdb_parquet"):
        if key in r and r[key]["exit"] != 0:
            problems.append(f"{key} failed: {' '.join(r[key]['stderr_tail'])[-300:]}")
    e = r.get("engine")
    if e is not None:
        if "error" in e:
            problems.append(f"engine: {e['error']}")
        for side in ("push", "poll"):
            s = r.get(side, {})
            if "error" in s:
                problems.append(f"{side}: {s['error']}")
                continue
            for key in ("reader_errors", "patch_reader_errors"):
                if s.get(key):
                    problems.append(f"{side}: reads failed: {s[key]}")
            for key, theirs in (("errors_before", "errors_before"),
                                ("errors_after", "errors_after"),
                                ("patch_errors_after", "errors_after")):  # fmt: skip
                if "error" not in e and key in s and s[key] != e[theirs]:
                    problems.append(f"{side}: {key} {s[key]} != the engine's {e[theirs]}")
    return problems


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench --workload paths",
        description="Every path a user takes, against baselines run in the same invocation.",
    )
    parser.add_argument("--workload", default="paths", choices=("paths",))
    parser.add_argument("--n", type=int, action="append",
                        help=f"servers (repeatable; default {DEFAULT_N:,})")  # fmt: skip
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="pushes, polls and engine batches per size, median (default 3)",
    )
    parser.add_argument(
        "--changes",
        type=int,
        default=200,
        help="single pushed changes timed to the violations (default 200)",
    )
    parser.add_argument(
        "--parts",
        default="files,service",
        help="files (rows 1-2), service (rows 3-6) or both (default)",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds allowed per process and per request"
    )
    parser.add_argument("--json", type=Path, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    args.parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not args.parts or args.parts - {"files", "service"}:
        parser.error("--parts takes files, service or files,service")
    if any(n < 10 for n in args.n or []):
        parser.error("--n must be at least 10")
    if args.repeat < 1 or args.changes < 1 or args.timeout <= 0:
        parser.error("--repeat, --changes and --timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths_service.REQUEST_TIMEOUT = args.timeout
    sizes = []
    for n in args.n or [DEFAULT_N]:
        result = run(n, args)
        result["table"] = rows_of(result)
        result["problems"] = agreement(result)
        sizes.append(result)
        print(text_table(n, result["table"]), flush=True)
        for problem in result["problems"]:
            print(f"  PROBLEM: {problem}", flush=True)
        print(flush=True)
    doc = {
        "benchmark": "paths",
        "date": datetime.date.today().isoformat(),
        "seed": args.seed,
        "repeat": args.repeat,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
        },  # fmt: skip
        "sizes": sizes,
    }
    text = json.dumps(doc)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return 1 if any(s["problems"] for s in sizes) else 0


if __name__ == "__main__":
    sys.exit(main())
