"""The policy on Charter's engine: bulk load, full evaluation, then changes as deltas.

Charter keeps p1..p3 materialized, so an update is one ``Engine.apply`` call: when it
returns, the updated tables are available. That call is what U1, U2, each single change and
the poll batch time; the counts are read afterwards, outside the timer (reading copies a
whole table, which is not part of answering the update).

The initial load uses ``Engine.load_columns`` (NumPy columns straight from the generator)
when the engine has it, else ``Engine.load_rows`` with Python tuples built before the timer.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.changes import ChangeScript
from bench.result import (
    Counts,
    RunResult,
    checksum,
    current_rss_mb,
    latency_summary,
    peak_rss_mb,
)
from bench.workload import COLUMNS, RESULTS, TABLES, Row, Workload

POLICY_NAME = "cloud"
POLICY_PATH = Path(__file__).with_name("policy.dl")
#: Up to this many servers the final state is also checked against a fresh Charter engine.
FRESH_ENGINE_MAX_N = 100_000


def policy_text() -> str:
    """The benchmark policy, in Charter's language."""
    return POLICY_PATH.read_text()


@dataclass
class Prepared:
    """Charter's input form, built before the timer: NumPy columns or Python tuples."""

    kind: str  # "columns" (Engine.load_columns) or "rows" (Engine.load_rows)
    tables: dict[str, Any]


def has_load_columns() -> bool:
    """Whether this engine offers the NumPy bulk-load path."""
    from charter.engine import Engine

    return hasattr(Engine, "load_columns")


def prepare(workload: Workload, columns: bool | None = None) -> Prepared:
    """The base tables in the engine's bulk input form (columns if it can take them).

    DuckDB, the library of the engine's bulk path, is imported here, before any clock
    starts, as the DuckDB baseline's module imports it: neither engine's time includes
    loading its libraries.
    """
    import duckdb  # noqa: F401

    if columns is None:
        columns = has_load_columns()
    if columns:
        return Prepared("columns", {t: [workload.tables[t][c] for c in COLUMNS[t]] for t in TABLES})
    return Prepared("rows", {table: workload.rows(table) for table in TABLES})


def counts(engine: Any) -> Counts:
    """Count and checksum of p1, p2, p3 as the engine currently holds them."""
    return {name: checksum(engine.rows(f"{POLICY_NAME}:{name}")) for name in RESULTS}


def load(data: Prepared | dict[str, list[Row]], policy: str | None = None) -> Any:
    """A fresh engine with the policy loaded and every base table inserted."""
    from charter.engine import Engine

    if not isinstance(data, Prepared):
        data = Prepared("rows", data)
    engine = Engine()
    engine.load_policy(POLICY_NAME, policy if policy is not None else policy_text())
    tables = {f"{POLICY_NAME}:{table}": data.tables[table] for table in TABLES}
    if data.kind == "columns":
        engine.load_columns(tables)
    else:
        engine.load_rows(tables)
    return engine


class GcWatch:
    """Counts and times the garbage collector's passes while active (a latency suspect)."""

    def __init__(self) -> None:
        self.passes = [0, 0, 0]
        self.total_ns = 0
        self.max_ns = 0
        self._start = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter_ns()
            return
        spent = time.perf_counter_ns() - self._start
        self.passes[info["generation"]] += 1
        self.total_ns += spent
        self.max_ns = max(self.max_ns, spent)

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def summary(self) -> dict[str, Any]:
        return {
            "passes_by_generation": self.passes,
            "total_ms": self.total_ns / 1e6,
            "max_ms": self.max_ns / 1e6,
        }


def run_singles(engine: Any, script: ChangeScript, u_ns: list[int]) -> dict[str, Any]:
    """Apply each single change as its own batch, timed; summarise with U1 and U2 included."""
    from charter.engine import Delta

    batches = [[Delta(f"{POLICY_NAME}:{t}", row, sign)] for t, row, sign in script.singles]
    samples: list[int] = []
    cpu: list[int] = []  # the thread's CPU time: what the change cost, without preemption
    with GcWatch() as watch:
        for batch in batches:
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            engine.apply(batch)
            cpu.append(time.thread_time_ns() - start_cpu)
            samples.append(time.perf_counter_ns() - start)
    summary: dict[str, Any] = latency_summary(u_ns + samples)
    if cpu:
        thread = latency_summary(cpu)
        summary["cpu_p50_us"], summary["cpu_p99_us"] = thread["p50_us"], thread["p99_us"]
    by_kind: dict[str, list[int]] = {}
    for (table, _, sign), ns in zip(script.singles, samples, strict=True):
        by_kind.setdefault(f"{table} {'insert' if sign > 0 else 'delete'}", []).append(ns)
    summary["by_change"] = {
        kind: {k: round(v, 1) for k, v in latency_summary(ns).items()}
        for kind, ns in sorted(by_kind.items())
    }
    slowest = sorted(zip(samples, script.singles, strict=True), key=lambda p: -p[0])[:5]
    summary["slowest"] = [
        {"us": round(ns / 1000, 1), "table": t, "row": list(r), "sign": s}
        for ns, (t, r, s) in slowest
    ]
    summary["gc"] = watch.summary()
    return summary


def verify(engine: Any, script: ChangeScript, n: int) -> dict[str, Any]:
    """The final p1..p3 against a from-scratch evaluation of the engine's final base rows.

    The oracle is DuckDB's SQL run in this process on the rows the engine holds; the base
    row counts are checked against what the change script says they must be; up to
    ``FRESH_ENGINE_MAX_N`` a fresh Charter engine loaded with those rows is compared too.
    """
    from bench import duckdb_baseline

    base = {t: engine.rows(f"{POLICY_NAME}:{t}") for t in TABLES}
    ours = result_rows(engine)
    oracle = duckdb_baseline.evaluate_rows(base)
    out: dict[str, Any] = {
        "base_rows": {t: len(base[t]) for t in TABLES},
        "base_rows_expected": dict(script.final_sizes),
        "duckdb": {p: checksum(oracle[p]) for p in RESULTS},
        "charter": {p: checksum(ours[p]) for p in RESULTS},
    }
    ok = ours == oracle and out["base_rows"] == out["base_rows_expected"]
    if n <= FRESH_ENGINE_MAX_N:
        fresh = result_rows(load({t: list(base[t]) for t in TABLES}))
        out["fresh_charter"] = {p: checksum(fresh[p]) for p in RESULTS}
        ok = ok and fresh == ours
    out["agree"] = ok
    return out


def run_once(
    workload: Workload,
    rows: Prepared | dict[str, list[Row]] | None = None,
    script: ChangeScript | None = None,
    check: bool = True,
) -> RunResult:
    """Load + full evaluation, then U1 and U2, each applied as one batch of deltas.

    With a change ``script``: then its single changes (each its own batch, timed one by
    one), then its poll batch (one batch, timed); and, if ``check``, the final state against
    a from-scratch evaluation (after the peak RSS of the engine's work has been recorded).
    """
    from charter.engine import Delta

    if rows is None:
        rows = prepare(workload)
    policy = policy_text()
    start = time.perf_counter()
    engine = load(rows, policy)
    full = counts(engine)  # p1..p3 must be readable for the load to count as done
    load_eval = time.perf_counter() - start

    result = RunResult(load_eval_s=load_eval, counts={"full": full})
    result.rss_load_mb, result.rss_load_peak_mb = current_rss_mb(), peak_rss_mb()
    u_ns = []
    for update in workload.updates():
        batch = [Delta(f"{POLICY_NAME}:{t}", row, sign) for t, row, sign in update.changes]
        start_ns = time.perf_counter_ns()
        engine.apply(batch)
        u_ns.append(time.perf_counter_ns() - start_ns)
        result.update_s[update.name] = u_ns[-1] / 1e9
        result.counts[update.name] = counts(engine)
    if script is None:
        return result

    result.latency = run_singles(engine, script, u_ns)
    result.counts["singles"] = counts(engine)
    if script.batch:
        batch = [Delta(f"{POLICY_NAME}:{t}", row, sign) for t, row, sign in script.batch]
        start = time.perf_counter()
        engine.apply(batch)
        result.batch_s = time.perf_counter() - start
        result.batch_rows = len(batch)
        result.counts["batch"] = counts(engine)
    result.rss_engine_peak_mb = peak_rss_mb()
    if check:
        result.verify = verify(engine, script, workload.n)
    return result


def result_rows(engine: Any) -> dict[str, set[Row]]:
    """The full contents of p1, p2, p3 (for tests that compare rows, not counts)."""
    return {name: set(engine.rows(f"{POLICY_NAME}:{name}")) for name in RESULTS}
