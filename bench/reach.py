"""The recursion benchmark: reachability over a random directed graph.

``python -m bench --workload reach --n 1000000`` runs it. The graph has E distinct edges
(``--n``; default 1,000,000) over V = max(8, E/4) nodes, both ends of each edge uniform,
self-loops allowed, duplicates redrawn; 1,000 distinct source nodes (V/10 when that is
fewer). Seeded, vectorised with NumPy. The policy::

    reach(y) :- source(y)
    reach(y) :- reach(x), edge(x, y)

DuckDB computes it with ``WITH RECURSIVE ... UNION`` (set semantics, so it terminates).
After the full evaluation, two one-edge changes, each applied on its own and timed:

- **delete**: an edge ``(u, w)`` that is the only edge into ``w`` from a reached node, ``w``
  not a source: deleting it makes ``w`` unreachable, so the result changes (it shrinks by
  ``w`` and whatever was reachable only through ``w``);
- **insert**: on the state the delete left, an edge from a source to a node unreached from
  the start that has out-edges, so the result grows.

The expected number of reached nodes after each phase is also computed directly (a
vectorised breadth-first search) and reported as ``oracle``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.result import RunResult, checksum, current_rss_mb, peak_rss_mb

POLICY_NAME = "graph"
POLICY = """\
reach(y) :- source(y)
reach(y) :- reach(x), edge(x, y)
"""
RESULTS = ("reach",)
SOURCES = 1000
DEFAULT_EDGES = 1_000_000
PHASES = ("full", "delete", "insert")

QUERY = """
    WITH RECURSIVE reach(y) AS (
        SELECT y FROM source
        UNION
        SELECT e.dst FROM reach r JOIN edge e ON e.src = r.y
    )
    SELECT count(*), coalesce(sum(y), 0) FROM reach
"""


@dataclass
class Graph:
    """Edges ``src[i] -> dst[i]`` (int64, distinct pairs), the source nodes, the changes."""

    e: int
    seed: int
    nodes: int
    src: np.ndarray = field(repr=False)
    dst: np.ndarray = field(repr=False)
    sources: np.ndarray = field(repr=False)

    def total_rows(self) -> int:
        return len(self.src) + len(self.sources)

    def edge_rows(self) -> list[tuple[int, int]]:
        return list(zip(self.src.tolist(), self.dst.tolist(), strict=True))

    def source_rows(self) -> list[tuple[int]]:
        return [(s,) for s in self.sources.tolist()]


def generate(e: int, seed: int = 42) -> Graph:
    """A random directed graph with exactly ``e`` distinct edges (``e`` >= 1).

    >>> g = generate(1000)
    >>> len(g.src), g.nodes, len(g.sources), len(set(g.edge_rows()))
    (1000, 250, 25, 1000)
    """
    if e < 1:
        raise ValueError("the number of edges must be >= 1")
    v = max(8, e // 4)
    if e > v * v:
        raise ValueError(f"{e} distinct edges do not fit on {v} nodes")
    rng = np.random.default_rng([seed, 7])
    keys = np.zeros(0, dtype=np.int64)
    draw = e + e // 50 + 16
    while len(keys) < e:  # draw a little more than needed, keep first occurrences
        more = rng.integers(0, v, (2, draw), dtype=np.int64)
        keys = np.concatenate((keys, more[0] * v + more[1]))
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]
        draw *= 2
    keys = keys[:e]
    count = min(SOURCES, max(1, v // 10))
    sources = rng.choice(v, size=count, replace=False).astype(np.int64)
    return Graph(e, seed, v, keys // v, keys % v, np.sort(sources))


def reached(nodes: int, src: np.ndarray, dst: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Boolean mask of the nodes reachable from ``sources`` (vectorised BFS)."""
    order = np.argsort(src, kind="stable")
    out = dst[order]
    offsets = np.searchsorted(src[order], np.arange(nodes + 1))
    seen = np.zeros(nodes, dtype=bool)
    seen[sources] = True
    frontier = np.unique(sources)
    while len(frontier):
        starts = offsets[frontier]
        lens = offsets[frontier + 1] - starts
        total = int(lens.sum())
        if total == 0:
            break
        idx = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(total)
        nxt = np.unique(out[idx])
        nxt = nxt[~seen[nxt]]
        seen[nxt] = True
        frontier = nxt
    return seen


@dataclass(frozen=True)
class EdgeChanges:
    """The edge to delete, the edge to insert, and the reach (count, sum) after each phase."""

    delete: tuple[int, int]
    insert: tuple[int, int]
    oracle: dict[str, tuple[int, int]]


def edge_changes(g: Graph) -> EdgeChanges:
    """Pick the two result-changing edges (deterministic) and the expected results."""
    rng = np.random.default_rng([g.seed, 8])
    seen = reached(g.nodes, g.src, g.dst, g.sources)
    into = np.bincount(g.dst[seen[g.src]], minlength=g.nodes)  # in-edges from reached nodes
    is_source = np.zeros(g.nodes, dtype=bool)
    is_source[g.sources] = True
    candidates = np.flatnonzero(seen & ~is_source & (into == 1))
    if len(candidates) == 0:
        raise ValueError("no edge whose deletion changes the reached set")
    w = int(candidates[rng.integers(0, len(candidates))])
    (i,) = np.flatnonzero((g.dst == w) & seen[g.src])
    delete = (int(g.src[i]), w)

    keep = np.ones(len(g.src), dtype=bool)
    keep[i] = False
    src, dst = g.src[keep], g.dst[keep]
    seen_after = reached(g.nodes, src, dst, g.sources)
    has_out = np.bincount(g.src, minlength=g.nodes) > 0
    unreached = np.flatnonzero(~seen & has_out)
    if len(unreached) == 0:
        unreached = np.flatnonzero(~seen_after)
    if len(unreached) == 0:
        raise ValueError("every node is reached: no edge insert can change the result")
    target = int(unreached[rng.integers(0, len(unreached))])
    insert = (int(g.sources[0]), target)
    seen_final = reached(g.nodes, np.append(src, insert[0]), np.append(dst, insert[1]), g.sources)
    oracle = {
        phase: (int(mask.sum()), int(np.flatnonzero(mask).sum()))
        for phase, mask in (("full", seen), ("delete", seen_after), ("insert", seen_final))
    }
    return EdgeChanges(delete, insert, oracle)


# ---------------------------------------------------------------- Charter


def charter_input(g: Graph, columns: bool) -> tuple[str, dict[str, Any]]:
    """Charter's bulk input form (NumPy columns or Python tuples), built before the timer."""
    if columns:
        return "columns", {"edge": [g.src, g.dst], "source": [g.sources]}
    return "rows", {"edge": g.edge_rows(), "source": g.source_rows()}


def charter_run_once(g: Graph, changes: EdgeChanges, data: tuple[str, dict[str, Any]]) -> RunResult:
    """Load + full evaluation, then the edge delete and the edge insert, each one batch."""
    from charter.engine import Delta, Engine

    kind, tables = data
    start = time.perf_counter()
    engine = Engine()
    engine.load_policy(POLICY_NAME, POLICY)
    qualified = {f"{POLICY_NAME}:{t}": v for t, v in tables.items()}
    if kind == "columns":
        engine.load_columns(qualified)
    else:
        engine.load_rows(qualified)
    full = {"reach": checksum(engine.rows(f"{POLICY_NAME}:reach"))}
    result = RunResult(load_eval_s=time.perf_counter() - start, counts={"full": full})
    result.rss_load_mb, result.rss_load_peak_mb = current_rss_mb(), peak_rss_mb()
    for phase, edge, sign in (("delete", changes.delete, -1), ("insert", changes.insert, +1)):
        batch = [Delta(f"{POLICY_NAME}:edge", edge, sign)]
        start = time.perf_counter()
        engine.apply(batch)
        result.update_s[phase] = time.perf_counter() - start
        result.counts[phase] = {"reach": checksum(engine.rows(f"{POLICY_NAME}:reach"))}
    return result


# ---------------------------------------------------------------- DuckDB


def duckdb_run_once(g: Graph, changes: EdgeChanges) -> RunResult:
    """Load + the recursive query, then each edge change followed by a recompute."""
    import duckdb

    def evaluate(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
        n, total = con.execute(QUERY).fetchone()
        return {"reach": (int(n), int(total))}

    start = time.perf_counter()
    con = duckdb.connect()
    con.register("np_edge", {"src": g.src, "dst": g.dst})
    con.execute("CREATE TABLE edge AS SELECT * FROM np_edge")
    con.unregister("np_edge")
    con.register("np_source", {"y": g.sources})
    con.execute("CREATE TABLE source AS SELECT * FROM np_source")
    con.unregister("np_source")
    full = evaluate(con)
    result = RunResult(load_eval_s=time.perf_counter() - start, counts={"full": full})
    result.rss_load_mb, result.rss_load_peak_mb = current_rss_mb(), peak_rss_mb()
    statements = {
        "delete": "DELETE FROM edge WHERE src = $1 AND dst = $2",
        "insert": "INSERT INTO edge VALUES ($1, $2)",
    }
    for phase, edge in (("delete", changes.delete), ("insert", changes.insert)):
        start = time.perf_counter()
        con.execute(statements[phase], list(edge))
        counts = evaluate(con)
        result.update_s[phase] = time.perf_counter() - start
        result.counts[phase] = counts
    con.close()
    return result
