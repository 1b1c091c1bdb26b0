"""The policy on Charter's engine: bulk load, full evaluation, then U1 and U2 as deltas.

Charter keeps p1..p3 materialized, so an update is one ``Engine.apply`` call: when it
returns, the updated tables are available. That call is what U1 and U2 time; the counts are
read afterwards, outside the timer (reading copies a whole table, which is not part of
answering the update).
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.result import Counts, RunResult, checksum
from bench.workload import RESULTS, TABLES, Row, Workload

POLICY_NAME = "cloud"
POLICY_PATH = Path(__file__).with_name("policy.dl")


def policy_text() -> str:
    """The benchmark policy, in Charter's language."""
    return POLICY_PATH.read_text()


def prepare(workload: Workload) -> dict[str, list[Row]]:
    """The base tables as Python tuples: Charter's input form, built before the timer."""
    return {table: workload.rows(table) for table in TABLES}


def counts(engine: object) -> Counts:
    """Count and checksum of p1, p2, p3 as the engine currently holds them."""
    return {name: checksum(engine.rows(f"{POLICY_NAME}:{name}")) for name in RESULTS}


def load(rows: dict[str, list[Row]], policy: str | None = None) -> object:
    """A fresh engine with the policy loaded and every base table inserted."""
    from charter.engine import Engine

    engine = Engine()
    engine.load_policy(POLICY_NAME, policy if policy is not None else policy_text())
    engine.load_rows({f"{POLICY_NAME}:{table}": rows[table] for table in TABLES})
    return engine


def run_once(workload: Workload, rows: dict[str, list[Row]] | None = None) -> RunResult:
    """Load + full evaluation, then U1 and U2, each applied as one batch of deltas."""
    from charter.engine import Delta

    if rows is None:
        rows = prepare(workload)
    policy = policy_text()
    start = time.perf_counter()
    engine = load(rows, policy)
    full = counts(engine)  # p1..p3 must be readable for the load to count as done
    load_eval = time.perf_counter() - start

    result = RunResult(load_eval_s=load_eval, counts={"full": full})
    for update in workload.updates():
        batch = [Delta(f"{POLICY_NAME}:{t}", row, sign) for t, row, sign in update.changes]
        start = time.perf_counter()
        engine.apply(batch)
        result.update_s[update.name] = time.perf_counter() - start
        result.counts[update.name] = counts(engine)
    return result


def result_rows(engine: object) -> dict[str, set[Row]]:
    """The full contents of p1, p2, p3 (for tests that compare rows, not counts)."""
    return {name: set(engine.rows(f"{POLICY_NAME}:{name}")) for name in RESULTS}
