"""What one engine run reports: timings and the (count, checksum) of each derived table."""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: ``{"p1": (rows, sum of ids), ...}``: the sum catches two different sets of equal size.
Counts = dict[str, tuple[int, int]]


@dataclass
class RunResult:
    """One load + full evaluation followed by U1 and U2, on a fresh engine."""

    load_eval_s: float
    update_s: dict[str, float] = field(default_factory=dict)
    #: Phase ("full", "U1", "U2", "singles", "batch") -> counts after that phase.
    counts: dict[str, Counts] = field(default_factory=dict)
    #: Resident memory right after load + full evaluation (MB), and the peak so far.
    rss_load_mb: float | None = None
    rss_load_peak_mb: float | None = None
    #: Single-row changes: per-change latency summary (see ``latency_summary``).
    latency: dict[str, Any] | None = None
    #: The poll batch: its time (apply + p1..p3 current) and number of row changes.
    batch_s: float | None = None
    batch_rows: int | None = None
    #: DuckDB only: the single changes applied in one transaction, plus a recompute.
    singles_bulk_s: float | None = None
    #: Charter only: peak RSS once the engine's work is done, before the check below.
    rss_engine_peak_mb: float | None = None
    #: Charter only: the final state checked against a from-scratch evaluation.
    verify: dict[str, Any] | None = None

    def counts_json(self) -> dict[str, dict[str, list[int]]]:
        """The counts as JSON-ready lists."""
        return {
            phase: {name: list(value) for name, value in c.items()}
            for phase, c in self.counts.items()
        }


def checksum(rows: set[tuple[int, ...]] | frozenset[tuple[int, ...]]) -> tuple[int, int]:
    """(number of rows, sum of first columns) of a unary result table."""
    return len(rows), sum(r[0] for r in rows)


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of already sorted values, by linear interpolation."""
    if not sorted_values:
        return float("nan")
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def latency_summary(samples_ns: list[int]) -> dict[str, float]:
    """count, p50, p90, p99, max and mean of latencies given in ns, reported in µs."""
    us = sorted(v / 1000 for v in samples_ns)
    return {
        "count": len(us),
        "p50_us": percentile(us, 0.50),
        "p90_us": percentile(us, 0.90),
        "p99_us": percentile(us, 0.99),
        "max_us": us[-1] if us else float("nan"),
        "mean_us": statistics.fmean(us) if us else float("nan"),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """Resident set size of this process now, in MB (the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()
    return pages * resource.getpagesize() / (1024 * 1024)


def json_child(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run a benchmark's child process: the last JSON line it prints, or ``{"error": ...}``
    (timed out, failed, or printed none) with the tail of its stderr."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])
