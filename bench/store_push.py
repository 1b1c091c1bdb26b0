"""The store's side of a push, beside another version's: ``python -m bench.store_push``.

What a push datasource's table costs the store alone (no server, no engine), for the paths
workload's ``servers`` table (``bench.paths_service``: ``--n`` rows of six ints) in SQLite
with ``synchronous=FULL`` (the server's settings), each side in its own process:

- **first push**: the whole table into an empty store (three times, each into a store of its
  own: the median);
- **1% PUT** (``--repeat`` of them, alternately the changed table and the original): the
  time to a durable answer, and the bytes the process wrote (``/proc/self/io`` ``wchar``:
  the write-ahead log, and the checkpoints into the database file when they happen);
- **restart**: the store reopened and the table loaded, as a restart of ``charter serve``
  does; then (this tree only) the log folded into a new base and the table loaded again;
- **file**: the database's size after the store closed (the log checkpointed into it).

This tree's store gets what the service gives it (``change_tables``: the rows inserted and
deleted, and the table after for a large change); the baseline (``--baseline``, default
``main``: its ``src/charter`` exported with ``git archive`` into a temporary folder) gets
what it takes, ``change_tables`` if it has it, else ``replace_tables`` of the whole table.
Times are wall clock and CPU (the process's; for a PUT, the writing thread's), the CPU
figures being the ones a busy machine disturbs least. One table, then one JSON line. Exit 1
if a side failed or loaded other rows than it wrote.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from bench.result import json_child

REPO_ROOT = Path(__file__).resolve().parent.parent
FIRST_PUSHES = 3


def _wchar() -> int:
    """Bytes this process has written (every write() and pwrite(), to any file)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def _db_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("charter.db*") if p.suffix != ".identity")


def _timed_compactions(store: Any) -> list[float]:
    """The durations of the background thread's compactions (this tree's store only)."""
    times: list[float] = []
    compactor = getattr(store, "_compactor", None)
    if compactor is not None:
        compact = compactor._compact

        def timed(seq: int) -> Any:
            start = time.perf_counter()
            done = compact(seq)
            if done:
                times.append(time.perf_counter() - start)
            return done

        compactor._compact = timed
    return times


def side_main(n: int, seed: int, repeat: int, folder: Path) -> dict[str, Any]:
    """One store's writes (see the module's docstring); runs in its own process, and leaves
    the database in ``folder`` for :func:`load_main` (the restart, another process)."""
    import charter
    from bench.paths_service import one_percent, rows, service_data
    from charter.store import DatasourceRecord, Store

    try:
        from charter.store import TableChange
    except ImportError:  # a store before change_tables took the table after the change
        TableChange = None  # noqa: N806

    data = service_data(n, seed)
    servers = data["servers"]
    slots, new = one_percent(servers, seed)
    table = [tuple(r) for r in rows(servers)]
    old_rows = [tuple(r) for r in rows(servers, slots)]
    new_rows = [tuple(r) for r in rows(new, slots)]
    changed = list(table)
    for k, slot in enumerate(slots.tolist()):
        changed[slot] = new_rows[k]
    incremental = hasattr(Store, "change_tables")

    def write(store: Store, ds_id: str, inserted: list, deleted: list, after: list) -> None:
        if not incremental:
            store.replace_tables(ds_id, {"servers": after})
        elif TableChange is not None:
            store.change_tables(ds_id, {"servers": TableChange(inserted, deleted, lambda: after)})
        else:
            store.change_tables(ds_id, {"servers": (inserted, deleted)})

    out: dict[str, Any] = {"charter": str(Path(charter.__file__).parent), "n": n}
    firsts, first_mb = [], []
    for attempt in range(FIRST_PUSHES):  # each into a store of its own; the last one stays
        where = folder / str(attempt)
        where.mkdir()
        url = f"sqlite:///{where / 'charter.db'}"
        key = Store.generate_key()
        ds = DatasourceRecord(str(uuid.uuid4()), "inv", "push", "", True, {}, datetime.now(UTC))
        store = Store(url, secret_key=key)
        store.create_datasource(ds)
        io, start, cpu = _wchar(), time.perf_counter(), time.process_time()
        write(store, ds.id, table, [], table)
        firsts.append((time.perf_counter() - start, time.process_time() - cpu))
        first_mb.append((_wchar() - io) / 2**20)
        if attempt < FIRST_PUSHES - 1:
            store.close()
    out.update(first_push_runs_s=[w for w, _ in firsts],
               first_push_s=statistics.median(w for w, _ in firsts),
               first_push_cpu_s=statistics.median(c for _, c in firsts),
               first_push_mb=statistics.median(first_mb))  # fmt: skip
    compactions = _timed_compactions(store)
    runs, cpus, written = [], [], []
    for i in range(repeat):
        forward = i % 2 == 0
        inserted, deleted = (new_rows, old_rows) if forward else (old_rows, new_rows)
        io, start, cpu = _wchar(), time.perf_counter(), time.thread_time()
        write(store, ds.id, inserted, deleted, changed if forward else table)
        runs.append(time.perf_counter() - start)
        cpus.append(time.thread_time() - cpu)  # this thread's: not the compactor's
        written.append((_wchar() - io) / 2**20)
    out.update(
        changed_rows=len(slots),
        put_runs_s=runs,
        put_s=statistics.median(runs) if runs else None,
        put_max_s=max(runs, default=None),
        put_cpu_s=statistics.median(cpus) if cpus else None,
        put_mb=statistics.median(written) if written else None,
        put_max_mb=max(written, default=None),
    )
    compactor = getattr(store, "_compactor", None)
    if compactor is not None:
        compactor.wait()  # a background compaction finishes before the restart
        out["compactions_s"] = compactions
    store.close()
    out["file_mb"] = _db_bytes(where) / 2**20
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["restart"] = {"url": url, "key": key.decode(), "ds": ds.id,
                      "expected": _digest(changed if repeat % 2 else table)}  # fmt: skip
    return out


def _digest(rows: list[tuple]) -> list[int]:
    """(count, a sum of hashes) of a set of rows: equal sets, equal digests."""
    return [len(rows), sum(map(hash, set(rows))) & (2**63 - 1)]


def load_main(url: str, key: str, ds_id: str) -> dict[str, Any]:
    """The restart: a fresh process opens the store and loads the table (then, this tree's
    store, folds its log and loads again)."""
    from charter.store import Store

    out: dict[str, Any] = {}
    start = time.perf_counter()
    store = Store(url, secret_key=key.encode())
    out["open_s"] = time.perf_counter() - start
    if hasattr(store, "compact_tables"):
        with store._engine.connect() as conn:
            out["log_entries_at_load"], out["log_rows_at_load"] = conn.exec_driver_sql(
                "SELECT sum(log_entries), sum(log_rows) FROM push_tables"
            ).one()
    start, cpu = time.perf_counter(), time.process_time()
    loaded = store.load_tables(ds_id)["servers"]
    out["load_s"] = time.perf_counter() - start
    out["load_cpu_s"] = time.process_time() - cpu
    out["loaded"] = _digest(loaded)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del loaded
    if hasattr(store, "compact_tables"):
        start, cpu = time.perf_counter(), time.process_time()
        store.compact_tables(ds_id)
        out["compact_s"] = time.perf_counter() - start
        out["compact_cpu_s"] = time.process_time() - cpu
        start = time.perf_counter()
        loaded = store.load_tables(ds_id)["servers"]
        out["load_compacted_s"] = time.perf_counter() - start
        out["loaded_compacted"] = _digest(loaded)
        del loaded
    store.close()
    out["file_compacted_mb"] = _db_bytes(Path(url.removeprefix("sqlite:///")).parent) / 2**20
    return out


def _export(ref: str, into: Path) -> Path:
    """``ref``'s ``src/charter`` under ``into``; the folder to put on PYTHONPATH."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "src/charter"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _child(src: Path, argv: list[str], timeout: float) -> dict[str, Any]:
    """``python -m bench.store_push ARGV`` with ``src``'s Charter: its JSON line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), str(REPO_ROOT)]))
    cmd = [sys.executable, "-m", "bench.store_push", *argv]
    return json_child(cmd, REPO_ROOT, env, timeout)


def _side(src: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One store's figures: its writes in one process, its restart in another."""
    with tempfile.TemporaryDirectory(prefix="charter-store-push-") as tmp:
        argv = ["--side", tmp, "--n", str(args.n), "--seed", str(args.seed),
                "--repeat", str(args.repeat)]  # fmt: skip
        out = _child(src, argv, args.timeout)
        if "error" in out:
            return out
        restart = out.pop("restart")
        argv = ["--load", restart["url"], restart["key"], restart["ds"]]
        loaded = _child(src, argv, args.timeout)
        if "error" in loaded:
            return {**out, "error": f"restart: {loaded['error']}"}
        out["write_peak_rss_mb"] = out.pop("peak_rss_mb")
        out.update(loaded)
        expected = restart["expected"]
        out["load_ok"] = (
            out.pop("loaded") == expected and out.pop("loaded_compacted", expected) == expected
        )
        return out


def _row(name: str, ours: Any, base: Any, unit: str) -> str:
    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.3f} {unit}" if unit == "s" else f"{v:.2f} {unit}"

    ratio = f"{ours / base:.2f}x" if ours is not None and base else "-"
    return f"| {name} | {f(ours)} | {f(base)} | {ratio} |"


def report(ours: dict[str, Any], base: dict[str, Any], baseline: str) -> list[str]:
    lines = [
        f"| store, {ours.get('n', '?')} rows | this tree | {baseline} | ratio |",
        "|---|---|---|---|",
    ]
    for key, name, unit in (
        ("first_push_s", "first push", "s"),
        ("first_push_cpu_s", "first push, CPU", "s"),
        ("first_push_mb", "first push, written", "MB"),
        ("put_s", f"1% PUT ({ours.get('changed_rows')} rows), median", "s"),
        ("put_max_s", "1% PUT, slowest", "s"),
        ("put_cpu_s", "1% PUT, CPU (median)", "s"),
        ("put_mb", "1% PUT, written (median)", "MB"),
        ("put_max_mb", "1% PUT, written (most)", "MB"),
        ("load_s", "restart: load (a fresh process)", "s"),
        ("load_cpu_s", "restart: load, CPU", "s"),
        ("open_s", "restart: open", "s"),
        ("file_mb", "file after the PUTs", "MB"),
        ("write_peak_rss_mb", "peak RSS, writing", "MB"),
        ("peak_rss_mb", "peak RSS, restart", "MB"),
    ):
        lines.append(_row(name, ours.get(key), base.get(key), unit))
    if "load_compacted_s" in ours:
        background = ", ".join(f"{s:.2f} s" for s in ours.get("compactions_s", [])) or "none"
        lines += [
            f"| this tree: log at the restart | {ours.get('log_entries_at_load')} entries, "
            f"{ours.get('log_rows_at_load')} rows | | |",
            f"| this tree: compactions in the background during the PUTs | {background} | | |",
            f"| this tree: compaction at the restart | {ours['compact_s']:.3f} s (CPU "
            f"{ours['compact_cpu_s']:.3f} s) | | |",
            _row("this tree: load after it", ours["load_compacted_s"], base.get("load_s"), "s"),
            _row("this tree: file after it", ours["file_compacted_mb"], base.get("file_mb"), "MB"),
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_push", description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000, help="rows (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=50, help="1%% PUTs (default 50)")
    parser.add_argument("--baseline", default="main", help="git ref to compare with")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--side", type=Path, help=argparse.SUPPRESS)  # a side's writes
    parser.add_argument("--load", nargs=3, help=argparse.SUPPRESS)  # a side's restart
    args = parser.parse_args(argv)
    if args.side is not None or args.load is not None:
        with contextlib.redirect_stdout(sys.stderr):
            if args.side is not None:
                result = side_main(args.n, args.seed, args.repeat, args.side)
            else:
                result = load_main(*args.load)
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="charter-store-baseline-") as tmp:
        base = _side(_export(args.baseline, Path(tmp)), args)
    ours = _side(REPO_ROOT / "src", args)
    print("\n".join(report(ours, base, args.baseline)))
    print(json.dumps({"ours": ours, "baseline": base}))
    failed = [s for s in (ours, base) if "error" in s or not s.get("load_ok")]
    for side in failed:
        print(side.get("error", "loaded other rows than it wrote"), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
