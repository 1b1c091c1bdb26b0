"""The benchmark runner: ``python -m bench --n 10000 --n 100000 [--workload cloud|reach]``.

For each size it runs every engine in a fresh subprocess (``bench.child``), so each engine's
peak RSS is its own, then prints one JSON document and a short table with Charter/DuckDB
ratios and whether the engines agree after every phase, a scaling summary across the sizes
run together, and (for the cloud workload) the issue's targets at the largest size. It
exits 1 if the engines disagree (with each other, with Charter's from-scratch check, or
with the reach workload's oracle) or one of them fails, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.child import ENGINES, WORKLOADS
from bench.workload import DEFAULT_SEED, RESULTS, TABLES, sizes

REPO_ROOT = Path(__file__).resolve().parent.parent
BIG_N = 1_000_000  # from here on a single run is the default
DEFAULT_N = {"cloud": 10_000, "reach": 1_000_000}
PHASES = {
    "cloud": ("full", "U1", "U2", "singles", "batch"),
    "reach": ("full", "delete", "insert"),
}
UPDATES = {"cloud": ("U1", "U2"), "reach": ("delete", "insert")}

#: The issue's targets for the cloud workload at N = 1M.
TARGET_LOAD_RATIO = 2.0
TARGET_P50_US = 50.0
TARGET_P99_US = 1000.0
TARGET_BATCH_VS_FULL = 0.10
TARGET_RSS_MB = 1024.0
TARGET_GROWTH = 1.0  # per-row cost from the smallest to the largest N
#: Issue 15's targets at N = 10M (ten million on one machine).
TEN_M = 10_000_000
TARGET_10M_P99_US = 2000.0
TARGET_10M_RSS_MB = 8192.0


def run_child(
    engine: str,
    n: int,
    seed: int,
    repeat: int,
    timeout: float,
    workload: str = "cloud",
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """Run one engine at one size in a subprocess and return its JSON report."""
    cmd = [sys.executable, "-m", "bench.child", "--engine", engine, "--n", str(n)]
    cmd += ["--seed", str(seed), "--repeat", str(repeat), "--workload", workload]
    cmd += extra or []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), str(REPO_ROOT / "src"), env.get("PYTHONPATH")) if p
    )
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"engine": engine, "n": n, "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"engine": engine, "n": n, "error": f"exit {proc.returncode}: {tail}"}
    report = json.loads(lines[-1])
    report["wall_s"] = wall
    if "error" in report:
        report["stderr_tail"] = proc.stderr.strip().splitlines()[-8:]
    return report


def compare(
    reports: dict[str, dict[str, Any]], workload: str = "cloud"
) -> tuple[bool | None, list[str]]:
    """Whether the results agree in every phase, and a line per disagreement.

    Engines are compared with each other in every phase both report; Charter's own
    from-scratch check (cloud) and the reach oracle count as further witnesses. None when
    there is nothing to compare against.
    """
    ok = {e: r for e, r in reports.items() if "error" not in r}
    mismatches: list[str] = []
    compared = False
    if len(ok) >= 2:
        (first, ref), *others = ok.items()
        for engine, report in others:
            for phase in PHASES[workload]:
                a, b = ref["counts"].get(phase), report["counts"].get(phase)
                if a is None or b is None:
                    continue
                compared = True
                if a != b:
                    mismatches.append(f"{phase}: {first} {a} != {engine} {b}")
    for engine, report in ok.items():
        check = report.get("verify")
        if check is not None:
            compared = True
            if not check["agree"]:
                mismatches.append(f"{engine} final state vs from-scratch evaluation: {check}")
        oracle = report.get("oracle")
        if oracle is not None:
            compared = True
            for phase, expected in oracle.items():
                got = report["counts"].get(phase)
                if got != expected:
                    mismatches.append(f"{phase}: oracle {expected} != {engine} {got}")
        if not report.get("stable", True):
            mismatches.append(f"{engine}: counts differ between repeated runs")
    if not compared:
        return None, mismatches
    return not mismatches, mismatches


def ratios(reports: dict[str, dict[str, Any]], workload: str = "cloud") -> dict[str, float] | None:
    """Charter / DuckDB for each measurement (below 1 means Charter is faster or smaller)."""
    c, d = reports.get("charter"), reports.get("duckdb")
    if not c or not d or "error" in c or "error" in d:
        return None
    out = {"load_eval": c["load_eval_s"] / d["load_eval_s"]}
    for name in UPDATES[workload]:
        out[name] = c["update_s"][name] / d["update_s"][name]
    if c.get("batch_s") and d.get("batch_s"):
        out["batch"] = c["batch_s"] / d["batch_s"]
    out["rss_peak"] = c["rss_peak_mb"] / d["rss_peak_mb"]
    return out


def fmt_time(seconds: float | None) -> str:
    """A duration with a unit that keeps 3 significant digits readable."""
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.0f} us"
    return f"{seconds * 1e9:.0f} ns"


def fmt_us(us: float | None) -> str:
    return "-" if us is None else fmt_time(us / 1e6)


def per_row_ns(report: dict[str, Any]) -> float:
    """Load + full evaluation time per input row, in ns."""
    return report["load_eval_s"] / report["input_rows"] * 1e9


def _align(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        cells = [r[0].rjust(widths[0]), r[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(r[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("-" * len(lines[0]))
    return lines


def table(results: list[dict[str, Any]], workload: str = "cloud") -> str:
    """The short aligned table printed after the JSON document."""
    cloud = workload == "cloud"
    if cloud:
        fraction = results[0].get("fraction", 0.01) if results else 0.01
        header = (
            "N", "engine", "load+eval", "/row", "U1", "U2", "chg p50", "chg p99",
            f"{fraction:.3g} batch", "/full", "RSS load", "peak RSS", "p1/p2/p3", "agree",
        )  # fmt: skip
    else:
        header = (
            "E", "engine", "load+eval", "/row", "-edge", "+edge",
            "RSS load", "peak RSS", "reach", "agree",
        )  # fmt: skip
    names = RESULTS if cloud else ("reach",)
    rows: list[tuple[str, ...]] = [header]
    for size in results:
        n = f"{size['n']:,}"
        agree = {True: "yes", False: "NO", None: "-"}[size["agree"]]
        for engine, r in size["engines"].items():
            if "error" in r:
                rows.append((n, engine, "error", *[""] * (len(header) - 3)))
                n = ""
                continue
            full = "/".join(str(r["counts"]["full"][p][0]) for p in names)
            per_row = fmt_time(per_row_ns(r) / 1e9)
            ups = [fmt_time(r["update_s"][u]) for u in UPDATES[workload]]
            rss_load = f"{r['rss_load_mb']:.0f} MB" if r.get("rss_load_mb") else "-"
            rss = f"{r['rss_peak_mb']:.0f} MB"
            if cloud:
                lat = r.get("latency") or {}
                batch_ratio = r.get("batch_vs_full")
                extra = (
                    fmt_us(lat.get("p50_us")),
                    fmt_us(lat.get("p99_us")),
                    fmt_time(r.get("batch_s")),
                    f"{batch_ratio:.1%}" if batch_ratio is not None else "-",
                )
            else:
                extra = ()
            rows.append(
                (n, engine, fmt_time(r["load_eval_s"]), per_row, *ups, *extra, rss_load, rss,
                 full, agree)
            )  # fmt: skip
            n = ""
        q = size["ratios"]
        if q:
            cells = [f"{q['load_eval']:.3g}x", ""] + [f"{q[u]:.3g}x" for u in UPDATES[workload]]
            if cloud:
                batch = f"{q['batch']:.3g}x" if "batch" in q else ""
                cells += ["", "", batch, ""]
            cells += ["", f"{q['rss_peak']:.3g}x"]
            rows.append(("", "charter/duckdb", *cells, "", ""))
    lines = _align(rows)
    for size in results:
        for engine, r in size["engines"].items():
            if "error" in r:
                lines.append(f"N={size['n']:,} {engine}: {r['error']}")
    return "\n".join(lines)


def scaling(results: list[dict[str, Any]], workload: str = "cloud") -> dict[str, Any]:
    """Per engine, per-row costs at each size and their growth from smallest to largest N.

    ``growth`` is (cost per row at the largest N) / (cost per row at the smallest): 1 means
    linear, above 1 worse than linear. Single-change latencies are per change, so their
    growth is the plain ratio (constant is the ideal).
    """
    out: dict[str, Any] = {}
    engines = {e for s in results for e in s["engines"]}
    for engine in sorted(engines):
        points = [
            (s["n"], s["engines"][engine])
            for s in results
            if engine in s["engines"] and "error" not in s["engines"][engine]
        ]
        if not points:
            continue
        points.sort(key=lambda p: p[0])
        entry: dict[str, Any] = {
            "n": [n for n, _ in points],
            "load_eval_ns_per_row": [per_row_ns(r) for _, r in points],
        }
        if all(r.get("batch_s") for _, r in points):
            entry["batch_ns_per_changed_row"] = [
                r["batch_s"] / r["batch_rows"] * 1e9 for _, r in points
            ]
        if all(r.get("latency") for _, r in points):
            entry["change_p50_us"] = [r["latency"]["p50_us"] for _, r in points]
            entry["change_p99_us"] = [r["latency"]["p99_us"] for _, r in points]
        if len(points) > 1:
            entry["growth"] = {
                key: values[-1] / values[0]
                for key, values in entry.items()
                if key != "n" and values[0]
            }
        out[engine] = entry
    return out


def scaling_text(scale: dict[str, Any]) -> str:
    lines = []
    for engine, entry in scale.items():
        if "growth" not in entry:
            continue
        span = f"{entry['n'][0]:,} -> {entry['n'][-1]:,}"
        parts = []
        labels = {
            "load_eval_ns_per_row": ("load+eval/row", 1e-9),
            "batch_ns_per_changed_row": ("batch/changed row", 1e-9),
            "change_p50_us": ("change p50", 1e-6),
            "change_p99_us": ("change p99", 1e-6),
        }
        for key, (label, unit) in labels.items():
            if key in entry:
                values = ", ".join(fmt_time(v * unit) for v in entry[key])
                parts.append(f"{label} {values} (x{entry['growth'][key]:.2f})")
        lines.append(f"scaling {engine} {span}:\n  " + "\n  ".join(parts))
    return "\n".join(lines)


def targets(results: list[dict[str, Any]], scale: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, checked at the largest size run (they are set for N = 1M)."""
    if not results:
        return []
    size = max(results, key=lambda s: s["n"])
    c = size["engines"].get("charter")
    if not c or "error" in c:
        return []
    out = []

    def add(name: str, value: float | None, limit: float, fmt: str) -> None:
        if value is None:
            return
        out.append(
            {"target": name, "value": value, "limit": limit, "met": value <= limit, "fmt": fmt}
        )

    q = size["ratios"] or {}
    add("load+eval / DuckDB's", q.get("load_eval"), TARGET_LOAD_RATIO, "{:.2f}x")
    lat = c.get("latency") or {}
    ten_m = size["n"] >= TEN_M  # at 10M: load+eval, change p99 and peak RSS only
    if not ten_m:
        add("single change p50 (us)", lat.get("p50_us"), TARGET_P50_US, "{:.0f}")
    p99 = TARGET_10M_P99_US if ten_m else TARGET_P99_US
    add("single change p99 (us)", lat.get("p99_us"), p99, "{:.0f}")
    # the same changes' thread CPU time: what they cost without the shared machine's preemption
    add("  the same, thread CPU (us)", lat.get("cpu_p99_us"), p99, "{:.0f}")
    if size.get("fraction") == 0.01 and not ten_m:
        add("1% batch / own load+eval", c.get("batch_vs_full"), TARGET_BATCH_VS_FULL, "{:.1%}")
    rss = TARGET_10M_RSS_MB if ten_m else TARGET_RSS_MB
    add("peak RSS (MB)", c.get("rss_peak_mb"), rss, "{:.0f}")
    growth = scale.get("charter", {}).get("growth", {})
    add("load+eval per-row growth", growth.get("load_eval_ns_per_row"), TARGET_GROWTH, "{:.2f}x")
    for t in out:
        t["n"] = size["n"]
    return out


def targets_text(found: list[dict[str, Any]]) -> str:
    if not found:
        return ""
    n = found[0]["n"]
    note = "" if n in (BIG_N, TEN_M) else f" (the targets are set for N = {BIG_N:,} and {TEN_M:,})"
    lines = [f"targets at N={n:,}{note}:"]
    for t in found:
        value = t["fmt"].format(t["value"])
        limit = t["fmt"].format(t["limit"])
        lines.append(
            f"  {t['target']:<28} {value:>10}  <= {limit:<8} {'met' if t['met'] else 'MISSED'}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Charter against a DuckDB baseline: the cloud-inventory benchmark "
        "(default) or the recursion benchmark (--workload reach).",
    )
    parser.add_argument(
        "--workload",
        default="cloud",
        choices=(*WORKLOADS, "service", "paths"),
        help="service: charter serve under concurrent clients (bench/service.py, own options);"
        " paths: every user path against its baseline (bench/paths.py, own options)",
    )
    parser.add_argument(
        "--n",
        type=int,
        action="append",
        help="servers (cloud; default 10000) or edges (reach; default 1000000); repeatable",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help=f"runs per size, median reported (default 3; 1 at N >= {BIG_N:,})",
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--singles", type=int, default=1000, help="single-row changes timed (cloud; default 1000)"
    )
    parser.add_argument(
        "--fraction",
        type=float,
        default=0.01,
        help="share of servers and of ports changed by the poll batch (cloud; default 0.01; "
        "0 skips the batch)",
    )
    parser.add_argument("--json", type=Path, help="also write the JSON document to this file")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds allowed per engine and size"
    )
    args = parser.parse_args(argv)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown or not args.engines:
        parser.error(f"unknown engine(s) {unknown}; choose from {', '.join(ENGINES)}")
    if any(n < 1 for n in args.n or []):
        parser.error("--n must be at least 1")
    if not 0 <= args.fraction <= 1 or args.singles < 0:
        parser.error("--fraction must be in [0, 1] (0: no batch) and --singles >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every engine at every size; print the JSON document and the table."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--workload")
    if first.parse_known_args(argv)[0].workload == "service":  # its own options and output
        from bench import service

        return service.main(argv)
    if first.parse_known_args(argv)[0].workload == "paths":  # its own options and output
        from bench import paths

        return paths.main(argv)
    args = parse_args(argv)
    workload = args.workload
    extra = ["--singles", str(args.singles), "--fraction", str(args.fraction)]
    results = []
    for n in args.n or [DEFAULT_N[workload]]:
        repeat = args.repeat or (1 if n >= BIG_N else 3)
        reports: dict[str, dict[str, Any]] = {}
        for engine in args.engines:
            print(f"bench: {workload} N={n:,} {engine} x{repeat} ...", file=sys.stderr, flush=True)
            reports[engine] = run_child(engine, n, args.seed, repeat, args.timeout, workload, extra)
        agree, mismatches = compare(reports, workload)
        entry: dict[str, Any] = {"n": n}
        if workload == "cloud":
            entry["rows"] = {t: sizes(n)[t] for t in TABLES}
            entry["singles"], entry["fraction"] = args.singles, args.fraction
        entry.update(
            {
                "repeat": repeat,
                "engines": reports,
                "ratios": ratios(reports, workload),
                "agree": agree,
                "mismatches": mismatches,
            }
        )
        results.append(entry)
    scale = scaling(results, workload)
    found = targets(results, scale) if workload == "cloud" else []
    doc = {
        "benchmark": "cloud-inventory" if workload == "cloud" else "reach",
        "seed": args.seed,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "sizes": results,
        "scaling": scale,
        "targets": [{k: v for k, v in t.items() if k != "fmt"} for t in found],
    }
    text = json.dumps(doc, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    print()
    print(table(results, workload))
    for block in (scaling_text(scale), targets_text(found)):
        if block:
            print()
            print(block)
    failed = any(
        size["agree"] is False or any("error" in r for r in size["engines"].values())
        for size in results
    )
    for size in results:
        for line in size["mismatches"]:
            print(f"MISMATCH at N={size['n']:,}: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
