"""The policy in DuckDB SQL: the recompute baseline Charter is measured against.

The NumPy columns are handed to DuckDB as a dict of arrays (``con.register``), which DuckDB
scans in place without pandas or pyarrow; ``CREATE TABLE ... AS`` then copies them into
DuckDB's own storage, so that U1 and U2 can be applied as ordinary DELETE/INSERT. DuckDB has
no incremental views, so after each update the three queries run again from scratch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

import duckdb
import numpy as np

from bench.changes import ChangeScript, net_changes
from bench.result import Counts, RunResult, current_rss_mb, peak_rss_mb
from bench.workload import COLUMNS, RESULTS, TABLES, Change, Update, Workload

#: One query per derived table; each returns the distinct ids of that table's rows.
QUERIES: dict[str, str] = {
    "p1": """
        SELECT DISTINCT s.id AS s FROM servers s
        WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.id = s.image AND i.approved = 1)
    """,
    "p2": """
        SELECT DISTINCT p.server_id AS s
        FROM ports p
        JOIN servers s ON s.id = p.server_id
        JOIN networks n ON n.id = p.network_id
        WHERE n.shared = 0 AND s.tenant <> n.tenant
    """,
    # UNION (not UNION ALL) removes duplicates each round, so the cycles terminate.
    "p3": """
        WITH RECURSIVE reach(x, y) AS (
            SELECT child, parent FROM member
            UNION
            SELECT r.x, m.parent FROM reach r JOIN member m ON m.child = r.y
        )
        SELECT x FROM reach WHERE x = y
        UNION
        SELECT x FROM reach GROUP BY x HAVING count(DISTINCT y) > 10
    """,
}


def connect(workload: Workload) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory database holding the base tables."""
    con = duckdb.connect()
    for table in TABLES:
        con.register(f"np_{table}", workload.tables[table])
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM np_{table}")
        con.unregister(f"np_{table}")
    return con


def evaluate(con: duckdb.DuckDBPyConnection) -> Counts:
    """Count and checksum (sum of ids) of p1, p2, p3, computed from scratch."""
    counts: Counts = {}
    for name in RESULTS:
        n, total = con.execute(
            f"SELECT count(*), coalesce(sum(s), 0) FROM ({QUERIES[name]}) AS q(s)"
        ).fetchone()
        counts[name] = (int(n), int(total))
    return counts


def result_rows(con: duckdb.DuckDBPyConnection) -> dict[str, set[tuple[int, ...]]]:
    """The full contents of p1, p2, p3 (for tests that compare rows, not counts)."""
    return {name: set(con.execute(QUERIES[name]).fetchall()) for name in RESULTS}


def apply(con: duckdb.DuckDBPyConnection, update: Update) -> None:
    """Apply one update's changes in a single transaction."""
    con.execute("BEGIN")
    for table, row, sign in update.changes:
        cols = ", ".join(f"${i + 1}" for i in range(len(row)))
        if sign > 0:
            con.execute(f"INSERT INTO {table} VALUES ({cols})", list(row))
        else:
            names = con.execute(f"SELECT * FROM {table} LIMIT 0").description
            where = " AND ".join(f"{d[0]} = ${i + 1}" for i, d in enumerate(names))
            con.execute(f"DELETE FROM {table} WHERE {where}", list(row))
    con.execute("COMMIT")


def apply_bulk(con: duckdb.DuckDBPyConnection, changes: Sequence[Change]) -> None:
    """Apply many row changes as one transaction, set-wise: per table one DELETE, one INSERT.

    The changes net out first (a row's last sign wins, as in Charter's ``Engine.apply``);
    the rows to delete and to insert are handed over as NumPy columns and joined in SQL.
    Inserted rows must not already be present (the change script only inserts new rows).
    """
    net = net_changes(changes)
    con.execute("BEGIN")
    for table, rows in net.items():
        for sign in (-1, +1):
            chosen = [r for r, s in rows.items() if s == sign]
            if not chosen:
                continue
            names = COLUMNS[table]
            arrays = np.array(chosen, dtype=np.int64).T
            con.register("np_changes", {c: arrays[i] for i, c in enumerate(names)})
            if sign < 0:
                match = " AND ".join(f"{table}.{c} = d.{c}" for c in names)
                con.execute(f"DELETE FROM {table} USING np_changes d WHERE {match}")
            else:
                con.execute(f"INSERT INTO {table} SELECT {', '.join(names)} FROM np_changes")
            con.unregister("np_changes")
    con.execute("COMMIT")


def run_once(workload: Workload, script: ChangeScript | None = None) -> RunResult:
    """Load + full evaluation, then U1 and U2, each followed by a recompute of p1..p3.

    With a change ``script``, the single changes are then applied in one bulk transaction
    and p1..p3 recomputed (untimed: the state Charter reaches change by change, for the
    agreement check), and the poll batch is applied and recomputed, timed.
    """
    start = time.perf_counter()
    con = connect(workload)
    full = evaluate(con)
    load_eval = time.perf_counter() - start

    result = RunResult(load_eval_s=load_eval, counts={"full": full})
    result.rss_load_mb, result.rss_load_peak_mb = current_rss_mb(), peak_rss_mb()
    for update in workload.updates():
        start = time.perf_counter()
        apply(con, update)
        counts = evaluate(con)
        result.update_s[update.name] = time.perf_counter() - start
        result.counts[update.name] = counts
    if script is not None:
        start = time.perf_counter()
        apply_bulk(con, script.singles)
        result.counts["singles"] = evaluate(con)
        result.singles_bulk_s = time.perf_counter() - start
    if script is not None and script.batch:
        start = time.perf_counter()
        apply_bulk(con, script.batch)
        counts = evaluate(con)
        result.batch_s = time.perf_counter() - start
        result.batch_rows = len(script.batch)
        result.counts["batch"] = counts
    con.close()
    return result


def evaluate_rows(
    tables: Mapping[str, Iterable[tuple[int, ...]]],
) -> dict[str, set[tuple[int, ...]]]:
    """p1..p3 computed from scratch by DuckDB on the given base rows (an oracle for Charter)."""
    con = duckdb.connect()
    try:
        for table in TABLES:
            rows = list(tables[table])
            names = COLUMNS[table]
            if rows:
                arrays = np.array(rows, dtype=np.int64).T
                cols = {c: arrays[i] for i, c in enumerate(names)}
            else:
                cols = {c: np.zeros(0, dtype=np.int64) for c in names}
            con.register(f"np_{table}", cols)
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM np_{table}")
            con.unregister(f"np_{table}")
        return result_rows(con)
    finally:
        con.close()
