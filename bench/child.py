"""One engine at one size, in its own process, so that its peak RSS is its own.

``python -m bench.child --engine duckdb --n 10000 --repeat 3`` generates the workload,
prepares the engine's input form (NumPy columns for DuckDB; for Charter NumPy columns if the
engine has ``load_columns``, else Python tuples), runs the measurements ``repeat`` times on
fresh engines, and prints one JSON object on stdout. The runner (``python -m bench``)
starts one of these per engine and size and collects the objects.

``--workload cloud`` (the default): load + full evaluation, U1 and U2 in every run; the last
run then goes on with the change script (1,000 single changes, each timed, then the poll
batch) and, for Charter, checks its final state against a from-scratch evaluation.
``--workload reach``: load + evaluation of reachability, one edge delete, one edge insert.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench.result import RunResult, peak_rss_mb
from bench.workload import DEFAULT_SEED, generate

ENGINES: tuple[str, ...] = ("duckdb", "charter")
WORKLOADS: tuple[str, ...] = ("cloud", "reach")

__all__ = ["ENGINES", "WORKLOADS", "measure", "peak_rss_mb"]


def _version(engine: str) -> str:
    if engine == "duckdb":
        import duckdb

        return duckdb.__version__
    import charter

    return getattr(charter, "__version__", "unknown")


def _form(kind: str) -> str:
    return "numpy columns (load_columns)" if kind == "columns" else "python tuples (load_rows)"


def _cloud(
    engine: str, n: int, seed: int, singles: int, fraction: float
) -> tuple[Callable[[bool], RunResult], dict[str, Any]]:
    """A callable doing one cloud run (``extras``: go on with the change script)."""
    from bench.changes import change_script

    workload = generate(n, seed)
    script = change_script(workload, singles, fraction)
    info: dict[str, Any] = {"input_rows": workload.total_rows()}
    if engine == "duckdb":
        from bench import duckdb_baseline

        info["input_form"] = "numpy columns"
        return (lambda extras: duckdb_baseline.run_once(workload, script if extras else None)), info
    if engine == "charter":
        from bench import charter_run

        data = charter_run.prepare(workload)
        info["input_form"] = _form(data.kind)
        return (
            lambda extras: charter_run.run_once(workload, data, script if extras else None)
        ), info
    raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")


def _reach(engine: str, n: int, seed: int) -> tuple[Callable[[bool], RunResult], dict[str, Any]]:
    from bench import reach

    graph = reach.generate(n, seed)
    changes = reach.edge_changes(graph)
    info: dict[str, Any] = {
        "input_rows": graph.total_rows(),
        "nodes": graph.nodes,
        "sources": len(graph.sources),
        "delete_edge": list(changes.delete),
        "insert_edge": list(changes.insert),
        "oracle": {p: {"reach": list(c)} for p, c in changes.oracle.items()},
    }
    if engine == "duckdb":
        info["input_form"] = "numpy columns"
        return (lambda extras: reach.duckdb_run_once(graph, changes)), info
    if engine == "charter":
        from bench.charter_run import has_load_columns

        data = reach.charter_input(graph, has_load_columns())
        info["input_form"] = _form(data[0])
        return (lambda extras: reach.charter_run_once(graph, changes, data)), info
    raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")


def measure(
    engine: str,
    n: int,
    seed: int = DEFAULT_SEED,
    repeat: int = 1,
    workload: str = "cloud",
    singles: int = 1000,
    fraction: float = 0.01,
) -> dict[str, Any]:
    """Run ``engine`` ``repeat`` times at size ``n`` and summarise (medians)."""
    start = time.perf_counter()
    if workload == "cloud":
        run, info = _cloud(engine, n, seed, singles, fraction)
    elif workload == "reach":
        run, info = _reach(engine, n, seed)
    else:
        raise ValueError(f"unknown workload {workload!r}; choose from {', '.join(WORKLOADS)}")
    prep_s = time.perf_counter() - start  # generation, change picking and input form
    rss_input = peak_rss_mb()

    count = max(1, repeat)
    runs = [run(i == count - 1) for i in range(count)]
    counts = [{p: c for p, c in r.counts_json().items() if p in runs[0].counts} for r in runs]
    last = runs[-1]
    out: dict[str, Any] = {
        "engine": engine,
        "version": _version(engine),
        "workload": workload,
        "n": n,
        "seed": seed,
        "repeat": len(runs),
        **info,
        "prep_s": prep_s,
        "load_eval_s": statistics.median(r.load_eval_s for r in runs),
        "update_s": {
            name: statistics.median(r.update_s[name] for r in runs) for name in runs[0].update_s
        },
        "runs": [{"load_eval_s": r.load_eval_s, "update_s": dict(r.update_s)} for r in runs],
        "counts": last.counts_json(),
        "stable": all(c == counts[0] for c in counts),
        "rss_input_mb": rss_input,
        "rss_load_mb": runs[0].rss_load_mb,
        "rss_load_peak_mb": runs[0].rss_load_peak_mb,
        "python": platform.python_version(),
    }
    if last.latency is not None:
        out["latency"] = last.latency
    if last.batch_s is not None:
        out["batch_s"] = last.batch_s
        out["batch_rows"] = last.batch_rows
        out["batch_vs_full"] = last.batch_s / out["load_eval_s"]
    if last.singles_bulk_s is not None:
        out["singles_bulk_s"] = last.singles_bulk_s
    if last.verify is not None:
        out["verify"] = last.verify
    final_peak = peak_rss_mb()
    if last.rss_engine_peak_mb is not None:  # the check after the engine's work is excluded
        out["rss_peak_mb"] = last.rss_engine_peak_mb
        out["rss_peak_with_check_mb"] = final_peak
    else:
        out["rss_peak_mb"] = final_peak
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.child``."""
    parser = argparse.ArgumentParser(prog="python -m bench.child", description=__doc__)
    parser.add_argument("--engine", required=True, choices=ENGINES)
    parser.add_argument("--workload", default="cloud", choices=WORKLOADS)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--singles", type=int, default=1000)
    parser.add_argument("--fraction", type=float, default=0.01)
    args = parser.parse_args(argv)
    try:
        out = measure(
            args.engine, args.n, args.seed, args.repeat, args.workload, args.singles, args.fraction
        )
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
