"""Rows 1 and 2 of ``--workload paths``: ``charter eval`` from a data file vs DuckDB on it.

The cloud workload's five tables (``bench.workload``) are written once per run, before any
clock starts, as the files a user would hand over:

- ``cloud.json``: what ``charter eval --data`` reads, one object mapping ``cloud:<table>``
  to a list of rows (lists), the facts of the policy ``cloud`` (``cloud.dl``, a copy of
  ``bench/policy.dl``);
- ``cloud.<table>.ndjson``: the same rows, one object a line, one file a table (the layout
  DuckDB's ``read_json`` reads fastest; a second, stricter baseline for row 1);
- ``cloud:<table>.parquet``: one Parquet file a table, written by DuckDB, each named by its
  ``name:table`` as the JSON file's keys are (how ``charter eval --data`` is asked to read
  them; while it cannot, row 2 says "not supported yet" with the error it gave).

Each side runs as its own process, end to end as a user would run it (interpreter start,
imports, reading, evaluating, printing every row of p1, p2 and p3), its wall time taken
around the process and its peak RSS from ``wait4`` of that process alone. DuckDB's side is
``python -m bench.paths_files FORMAT DIR``: it reads the file(s) into tables and fetches the
rows of the three queries of ``bench/duckdb_baseline.py``. Both sides' results are reduced to
(count, sum of ids) per table and must agree.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.workload import COLUMNS, RESULTS, TABLES, Workload

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICY = "cloud"
FORMATS = ("json", "ndjson", "parquet")
MAX_OBJECT = 2**31 - 1  # DuckDB's read_json reads cloud.json as one object


def write_files(workload: Workload, out: Path) -> dict[str, float]:
    """The policy and the data files in ``out``; their sizes in MB."""
    import duckdb

    shutil.copyfile(REPO_ROOT / "bench" / "policy.dl", out / f"{POLICY}.dl")
    doc = {f"{POLICY}:{t}": workload.rows(t) for t in TABLES}
    (out / f"{POLICY}.json").write_bytes(orjson.dumps(doc))
    del doc
    con = duckdb.connect()
    try:
        for table in TABLES:
            cols = COLUMNS[table]
            rows = workload.rows(table)
            with open(out / f"{POLICY}.{table}.ndjson", "wb") as f:
                for start in range(0, len(rows), 100_000):
                    chunk = rows[start : start + 100_000]
                    f.write(b"".join(orjson.dumps(dict(zip(cols, r, strict=True))) + b"\n"
                                     for r in chunk))  # fmt: skip
            con.register("np_t", workload.tables[table])
            target = out / f"{POLICY}:{table}.parquet"
            con.execute(f"COPY (SELECT * FROM np_t) TO '{target}' (FORMAT parquet)")
            con.unregister("np_t")
    finally:
        con.close()
    sizes = {"json": (out / f"{POLICY}.json").stat().st_size}
    for fmt, pattern in (("ndjson", f"{POLICY}.*.ndjson"), ("parquet", f"{POLICY}:*.parquet")):
        sizes[fmt] = sum(p.stat().st_size for p in out.glob(pattern))
    return {k: v / 2**20 for k, v in sizes.items()}


def run_measured(
    cmd: list[str], stdout: Path, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``cmd`` to completion: wall seconds, peak RSS (MB, ``wait4`` of this child only),
    exit code and the tail of its stderr. Killed (by its PID) after ``timeout`` seconds."""
    err_path = stdout.with_suffix(".stderr")
    with open(stdout, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO_ROOT, env=env)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                timed_out = True
                os.kill(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    tail = err_path.read_text(errors="replace").strip().splitlines()[-6:]
    return {
        "wall_s": wall,
        "rss_peak_mb": usage.ru_maxrss / 1024,
        "exit": proc.returncode,
        "timed_out": timed_out,
        "stderr_tail": tail,
    }


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), str(REPO_ROOT / "src"), env.get("PYTHONPATH")) if p
    )
    return env


def summarize(results: dict[str, list[list[Any]]]) -> dict[str, list[int]]:
    """(count, sum of the first column) per derived table."""
    return {p: [len(rows), sum(int(r[0]) for r in rows)] for p, rows in results.items()}


def charter_eval(out: Path, fmt: str, timeout: float) -> dict[str, Any]:
    """``charter eval cloud.dl --data ... -q cloud:p1 -q cloud:p2 -q cloud:p3 -f json``."""
    if fmt == "json":
        data = [out / f"{POLICY}.json"]
    elif fmt == "parquet":
        data = [out / f"{POLICY}:{t}.parquet" for t in TABLES]
    else:
        raise ValueError(fmt)
    cmd = [sys.executable, "-m", "charter.cli.main", "eval", str(out / f"{POLICY}.dl")]
    for path in data:
        cmd += ["--data", str(path)]
    for p in RESULTS:
        cmd += ["-q", f"{POLICY}:{p}"]
    cmd += ["-f", "json"]
    stdout = out / f"charter-{fmt}.out"
    run = run_measured(cmd, stdout, timeout, child_env())
    if run["exit"] == 0:
        doc = json.loads(stdout.read_bytes())
        run["counts"] = summarize({p: doc[f"{POLICY}:{p}"] for p in RESULTS})
    stdout.unlink(missing_ok=True)
    return run


def duckdb_eval(out: Path, fmt: str, timeout: float) -> dict[str, Any]:
    """This module's DuckDB side in its own process."""
    stdout = out / f"duckdb-{fmt}.out"
    cmd = [sys.executable, "-m", "bench.paths_files", fmt, str(out)]
    run = run_measured(cmd, stdout, timeout, child_env())
    if run["exit"] == 0:
        run["counts"] = json.loads(stdout.read_text().strip().splitlines()[-1])
    stdout.unlink(missing_ok=True)
    return run


# ---------------------------------------------------------------- DuckDB's side


def _duckdb_load(con: Any, fmt: str, out: Path) -> None:
    for table in TABLES:
        cols = COLUMNS[table]
        if fmt == "json":  # the same cloud.json; typed, so DuckDB need not sample one object
            if table == TABLES[0]:
                types = {f"{POLICY}:{t}": "BIGINT[][]" for t in TABLES}
                path = out / f"{POLICY}.json"
                con.execute(
                    f"CREATE TEMP TABLE raw AS SELECT * FROM read_json('{path}', "
                    f"format='unstructured', columns={types}, maximum_object_size={MAX_OBJECT})"
                )
            picks = ", ".join(f"r[{i + 1}] AS {c}" for i, c in enumerate(cols))
            con.execute(
                f"CREATE TABLE {table} AS SELECT {picks} FROM "
                f'(SELECT unnest("{POLICY}:{table}") AS r FROM raw)'
            )
        elif fmt == "ndjson":
            types = {c: "BIGINT" for c in cols}
            path = out / f"{POLICY}.{table}.ndjson"
            con.execute(
                f"CREATE TABLE {table} AS SELECT * FROM read_json('{path}', "
                f"format='newline_delimited', columns={types})"
            )
        else:
            path = out / f"{POLICY}:{table}.parquet"
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{path}')")
    if fmt == "json":
        con.execute("DROP TABLE raw")


def duckdb_main(fmt: str, out: Path) -> None:
    """Read the file(s) of ``fmt`` in ``out``, fetch the rows of p1..p3, print the counts."""
    import duckdb

    from bench.duckdb_baseline import QUERIES

    con = duckdb.connect()
    _duckdb_load(con, fmt, out)
    results = {p: con.execute(QUERIES[p]).fetchall() for p in RESULTS}
    con.close()
    print(json.dumps(summarize(results)))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in FORMATS:
        print(f"usage: python -m bench.paths_files {{{','.join(FORMATS)}}} DIR", file=sys.stderr)
        sys.exit(2)
    duckdb_main(sys.argv[1], Path(sys.argv[2]))
