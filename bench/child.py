"""One engine at one size, in its own process, so that its peak RSS is its own.

``python -m bench.child --engine duckdb --n 10000 --repeat 3`` generates the workload,
prepares the engine's input form (NumPy columns for DuckDB, Python tuples for Charter),
runs load + full evaluation, U1 and U2 ``repeat`` times on fresh engines, and prints one
JSON object on stdout. The runner (``python -m bench``) starts one of these per engine and
size and collects the objects.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench.result import RunResult
from bench.workload import DEFAULT_SEED, Workload, generate

ENGINES: tuple[str, ...] = ("duckdb", "charter")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _runner(engine: str, workload: Workload) -> tuple[Callable[[], RunResult], str]:
    """A zero-argument callable doing one run, with the input prepared; and the version."""
    if engine == "duckdb":
        import duckdb

        from bench import duckdb_baseline

        return (lambda: duckdb_baseline.run_once(workload)), duckdb.__version__
    if engine == "charter":
        import charter
        from bench import charter_run

        rows = charter_run.prepare(workload)
        version = getattr(charter, "__version__", "unknown")
        return (lambda: charter_run.run_once(workload, rows)), version
    raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")


def measure(engine: str, n: int, seed: int = DEFAULT_SEED, repeat: int = 1) -> dict[str, Any]:
    """Run ``engine`` ``repeat`` times at size ``n`` and summarise (medians)."""
    start = time.perf_counter()
    workload = generate(n, seed)
    gen_s = time.perf_counter() - start

    start = time.perf_counter()
    run, version = _runner(engine, workload)
    prep_s = time.perf_counter() - start
    rss_input = peak_rss_mb()

    runs = [run() for _ in range(max(1, repeat))]
    counts = [r.counts_json() for r in runs]
    return {
        "engine": engine,
        "version": version,
        "n": n,
        "seed": seed,
        "repeat": len(runs),
        "input_rows": workload.total_rows(),
        "gen_s": gen_s,
        "prep_s": prep_s,
        "load_eval_s": statistics.median(r.load_eval_s for r in runs),
        "update_s": {
            name: statistics.median(r.update_s[name] for r in runs) for name in runs[0].update_s
        },
        "runs": [{"load_eval_s": r.load_eval_s, "update_s": dict(r.update_s)} for r in runs],
        "counts": counts[0],
        "stable": all(c == counts[0] for c in counts),
        "rss_input_mb": rss_input,
        "rss_peak_mb": peak_rss_mb(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.child``."""
    parser = argparse.ArgumentParser(prog="python -m bench.child", description=__doc__)
    parser.add_argument("--engine", required=True, choices=ENGINES)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        out = measure(args.engine, args.n, args.seed, args.repeat)
    except Exception as exc:  # reported to the runner as data; the traceback goes to stderr
        traceback.print_exc()
        out = {"engine": args.engine, "n": args.n, "error": f"{type(exc).__name__}: {exc}"}
        json.dump(out, sys.stdout)
        print()
        return 1
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
