"""The benchmark runner: ``python -m bench --n 10000 --n 100000``.

For each size it runs every engine in a fresh subprocess (``bench.child``), so each engine's
peak RSS is its own, then prints one JSON document and a short table with Charter/DuckDB
ratios and whether p1..p3 agree after the full evaluation and after each update. It exits
1 if the engines disagree or one of them fails, 2 on bad arguments.
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

from bench.child import ENGINES
from bench.workload import DEFAULT_SEED, RESULTS, TABLES, sizes

REPO_ROOT = Path(__file__).resolve().parent.parent
BIG_N = 1_000_000  # from here on a single run is the default
PHASES = ("full", "U1", "U2")


def run_child(engine: str, n: int, seed: int, repeat: int, timeout: float) -> dict[str, Any]:
    """Run one engine at one size in a subprocess and return its JSON report."""
    cmd = [sys.executable, "-m", "bench.child", "--engine", engine, "--n", str(n)]
    cmd += ["--seed", str(seed), "--repeat", str(repeat)]
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


def compare(reports: dict[str, dict[str, Any]]) -> tuple[bool | None, list[str]]:
    """Whether the engines' counts agree in every phase, and a line per disagreement."""
    ok = {e: r for e, r in reports.items() if "error" not in r}
    if len(ok) < 2:
        return None, []
    mismatches = []
    (first, ref), *others = ok.items()
    for engine, report in others:
        for phase in PHASES:
            a, b = ref["counts"].get(phase), report["counts"].get(phase)
            if a != b:
                mismatches.append(f"{phase}: {first} {a} != {engine} {b}")
    return not mismatches, mismatches


def ratios(reports: dict[str, dict[str, Any]]) -> dict[str, float] | None:
    """Charter / DuckDB for each measurement (below 1 means Charter is faster or smaller)."""
    c, d = reports.get("charter"), reports.get("duckdb")
    if not c or not d or "error" in c or "error" in d:
        return None
    out = {"load_eval": c["load_eval_s"] / d["load_eval_s"]}
    for name in ("U1", "U2"):
        out[name] = c["update_s"][name] / d["update_s"][name]
    out["rss_peak"] = c["rss_peak_mb"] / d["rss_peak_mb"]
    return out


def fmt_time(seconds: float) -> str:
    """A duration with a unit that keeps 3 significant digits readable."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def table(results: list[dict[str, Any]]) -> str:
    """The short aligned table printed after the JSON document."""
    header = ("N", "engine", "load+eval", "U1", "U2", "peak RSS", "p1/p2/p3", "agree")
    rows: list[tuple[str, ...]] = [header]
    for size in results:
        n = f"{size['n']:,}"
        agree = {True: "yes", False: "NO", None: "-"}[size["agree"]]
        for engine, r in size["engines"].items():
            if "error" in r:
                rows.append((n, engine, "error", "", "", "", "", ""))
            else:
                full = "/".join(str(r["counts"]["full"][p][0]) for p in RESULTS)
                times = [r["load_eval_s"], r["update_s"]["U1"], r["update_s"]["U2"]]
                rss = f"{r['rss_peak_mb']:.0f} MB"
                rows.append((n, engine, *map(fmt_time, times), rss, full, agree))
            n = ""
        if size["ratios"]:
            q = size["ratios"]
            cells = [f"{q[k]:.3g}x" for k in ("load_eval", "U1", "U2", "rss_peak")]
            rows.append(("", "charter/duckdb", *cells, "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for i, r in enumerate(rows):
        cells = [r[0].rjust(widths[0]), r[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(r[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("-" * len(lines[0]))
    for size in results:
        for engine, r in size["engines"].items():
            if "error" in r:
                lines.append(f"N={size['n']:,} {engine}: {r['error']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Cloud-inventory benchmark: Charter against a DuckDB recompute baseline.",
    )
    parser.add_argument(
        "--n", type=int, action="append", help="number of servers (repeatable; default 10000)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help=f"runs per size, median reported (default 3; 1 at N >= {BIG_N:,})",
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
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
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every engine at every size; print the JSON document and the table."""
    args = parse_args(argv)
    results = []
    for n in args.n or [10_000]:
        repeat = args.repeat or (1 if n >= BIG_N else 3)
        reports: dict[str, dict[str, Any]] = {}
        for engine in args.engines:
            print(f"bench: N={n:,} {engine} x{repeat} ...", file=sys.stderr, flush=True)
            reports[engine] = run_child(engine, n, args.seed, repeat, args.timeout)
        agree, mismatches = compare(reports)
        results.append(
            {
                "n": n,
                "rows": {t: sizes(n)[t] for t in TABLES},
                "repeat": repeat,
                "engines": reports,
                "ratios": ratios(reports),
                "agree": agree,
                "mismatches": mismatches,
            }
        )
    doc = {
        "benchmark": "cloud-inventory",
        "seed": args.seed,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "sizes": results,
    }
    text = json.dumps(doc, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    print()
    print(table(results))
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
