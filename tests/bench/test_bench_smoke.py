"""Smoke test of the benchmark at N = 1000: generator, DuckDB baseline and Charter agree.

No timing is asserted; this only guards the benchmark's correctness, so that the figures it
prints compare engines computing the same tables.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # bench/ is a top-level package beside src/
    sys.path.insert(0, str(REPO_ROOT))

from bench import duckdb_baseline  # noqa: E402
from bench.workload import RESULTS, TABLES, Row, Update, Workload, generate  # noqa: E402

N = 1000


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate(N)


def reference(rows: dict[str, set[Row]]) -> dict[str, set[Row]]:
    """The policy evaluated by hand in plain Python: an oracle independent of both engines."""
    approved = {i for i, a in rows["images"] if a == 1}
    p1 = {(s,) for s, _, i, *_ in rows["servers"] if i not in approved}
    tenant = {s: t for s, t, *_ in rows["servers"]}
    private = {n: t for n, t, shared in rows["networks"] if shared == 0}
    p2 = {
        (s,)
        for _, s, n in rows["ports"]
        if s in tenant and n in private and tenant[s] != private[n]
    }
    parents: dict[int, set[int]] = {}
    for x, y in rows["member"]:
        parents.setdefault(x, set()).add(y)
    p3 = set()
    for x in parents:
        seen: set[int] = set()
        todo = list(parents[x])
        while todo:
            y = todo.pop()
            if y not in seen:
                seen.add(y)
                todo.extend(parents.get(y, ()))
        if x in seen or len(seen) > 10:
            p3.add((x,))
    return {"p1": p1, "p2": p2, "p3": p3}


def applied(rows: dict[str, set[Row]], update: Update) -> dict[str, set[Row]]:
    out = {t: set(r) for t, r in rows.items()}
    for table, row, sign in update.changes:
        (out[table].add if sign > 0 else out[table].discard)(row)
    return out


def test_generator_is_deterministic(workload: Workload) -> None:
    again = generate(N)
    for table in TABLES:
        for col, values in workload.tables[table].items():
            assert values.dtype == np.int64
            assert np.array_equal(values, again.tables[table][col]), (table, col)
    assert workload.u1() == again.u1()
    assert workload.u2() == again.u2()
    assert not all(
        np.array_equal(workload.tables["servers"][c], generate(N, seed=7).tables["servers"][c])
        for c in ("tenant", "image")
    )


def test_generator_sizes() -> None:
    for n in (1000, 20_000):
        w = generate(n)
        counts = {t: w.num_rows(t) for t in TABLES}
        assert counts == {
            "servers": n,
            "ports": 2 * n,
            "networks": n // 10,
            "images": n // 100,
            "member": n // 10,
        }
        assert w.total_rows() == round(3.21 * n)
        for t in TABLES:
            assert len(set(w.rows(t))) == w.num_rows(t), f"duplicate rows in {t}"


def has_cycle(w: Workload) -> bool:
    """Whether some member group got its cycle-closing edge (the only edges pointing up)."""
    member = w.tables["member"]
    return bool((member["parent"] > member["child"]).any())


@pytest.fixture(scope="module")
def cyclic() -> Workload:
    """The first N = 1000 workload from seed 42 on whose member table has a cycle.

    At N = 1000 there are only 4 member groups, so the default seed may give none.
    """
    return next(w for w in (generate(N, seed) for seed in range(42, 142)) if has_cycle(w))


def test_generator_shape() -> None:
    workload = generate(20_000)
    ports, networks = workload.tables["ports"], workload.tables["networks"]
    servers = workload.tables["servers"]
    own = servers["tenant"][ports["server_id"]] == networks["tenant"][ports["network_id"]]
    assert 0.9 < own.mean() < 0.99
    member = workload.tables["member"]
    back = member["parent"] > member["child"]  # only the cycle-closing edges point forward
    assert back.any()
    assert np.all(member["child"][back] % 32 == 0)
    assert np.all(member["child"][~back] - member["parent"][~back] <= 3)


def test_updates_change_the_results(workload: Workload) -> None:
    u1, u2 = workload.updates()
    (images_del, i_del, s_del), (_, i_ins, s_ins) = u1.changes
    assert images_del == "images" and s_del == -1 and s_ins == +1
    assert i_del[0] == i_ins[0] and i_del[1] == 1 and i_ins[1] == 0
    ((table, port, sign),) = u2.changes
    assert table == "ports" and sign == +1 and port[1] == 0
    assert port[0] not in set(workload.tables["ports"]["id"].tolist())


@pytest.mark.parametrize("which", ["workload", "cyclic"])
def test_duckdb_matches_reference(which: str, request: pytest.FixtureRequest) -> None:
    workload = request.getfixturevalue(which)
    rows = {t: set(workload.rows(t)) for t in TABLES}
    con = duckdb_baseline.connect(workload)
    assert duckdb_baseline.result_rows(con) == reference(rows)
    for update in workload.updates():
        duckdb_baseline.apply(con, update)
        rows = applied(rows, update)
        assert duckdb_baseline.result_rows(con) == reference(rows), update.name
    assert all(reference(rows)[p] for p in RESULTS)


@pytest.mark.parametrize("which", ["workload", "cyclic"])
def test_charter_agrees_with_duckdb(which: str, request: pytest.FixtureRequest) -> None:
    workload = request.getfixturevalue(which)
    pytest.importorskip("charter.engine")
    from charter import engine as charter_engine

    if not hasattr(charter_engine, "Engine"):
        pytest.skip("charter.engine.Engine is not available yet")
    from bench import charter_run

    ours = charter_run.run_once(workload)
    theirs = duckdb_baseline.run_once(workload)
    assert ours.counts == theirs.counts


# ---------------------------------------------------------------- change script (singles, batch)


def charter_available() -> bool:
    try:
        from charter.engine import Engine  # noqa: F401
    except ImportError:
        return False
    return True


needs_charter = pytest.mark.skipif(not charter_available(), reason="no charter.engine.Engine")


def replay(workload: Workload, changes) -> dict[str, set[Row]]:
    """The base rows after U1, U2 and ``changes``, checking each change is a real change."""
    rows = {t: set(workload.rows(t)) for t in TABLES}
    for update in workload.updates():
        rows = applied(rows, update)
    for table, row, sign in changes:
        if sign > 0:
            assert row not in rows[table], ("insert of a present row", table, row)
            rows[table].add(row)
        else:
            assert row in rows[table], ("delete of a missing row", table, row)
            rows[table].remove(row)
    return rows


@pytest.mark.parametrize("which", ["workload", "cyclic"])
def test_change_script_is_valid_and_deterministic(
    which: str, request: pytest.FixtureRequest
) -> None:
    from bench.changes import change_script

    workload = request.getfixturevalue(which)
    script = change_script(workload, singles=300)
    assert script == change_script(workload, singles=300)
    assert len(script.singles) == 300
    assert {t for t, _, _ in script.singles} == set(TABLES)
    assert {s for _, _, s in script.singles} == {-1, +1}
    # the batch: 1% of servers and of ports, each a delete plus an insert of the same id
    servers = [c for c in script.batch if c[0] == "servers"]
    ports = [c for c in script.batch if c[0] == "ports"]
    assert len(servers) == 2 * round(0.01 * N) and len(ports) == 2 * round(0.01 * 2 * N)
    for part in (servers, ports):
        gone = {r[0]: r for _, r, s in part if s < 0}
        new = {r[0]: r for _, r, s in part if s > 0}
        assert gone.keys() == new.keys()
        assert all(gone[i] != new[i] for i in gone)
    final = replay(workload, script.singles + script.batch)  # asserts every change is real
    assert {t: len(r) for t, r in final.items()} == script.final_sizes


@pytest.mark.parametrize("which", ["workload", "cyclic"])
def test_duckdb_bulk_changes_match_reference(which: str, request: pytest.FixtureRequest) -> None:
    from bench.changes import change_script

    workload = request.getfixturevalue(which)
    script = change_script(workload, singles=300)
    con = duckdb_baseline.connect(workload)
    for update in workload.updates():
        duckdb_baseline.apply(con, update)
    duckdb_baseline.apply_bulk(con, script.singles)
    assert duckdb_baseline.result_rows(con) == reference(replay(workload, script.singles))
    duckdb_baseline.apply_bulk(con, script.batch)
    final = replay(workload, script.singles + script.batch)
    assert duckdb_baseline.result_rows(con) == reference(final)
    assert duckdb_baseline.evaluate_rows(final) == reference(final)


@needs_charter
@pytest.mark.parametrize("which", ["workload", "cyclic"])
def test_charter_changes_agree_with_duckdb(which: str, request: pytest.FixtureRequest) -> None:
    from bench import charter_run
    from bench.changes import change_script

    workload = request.getfixturevalue(which)
    script = change_script(workload, singles=400)
    ours = charter_run.run_once(workload, script=script)
    theirs = duckdb_baseline.run_once(workload, script)
    assert set(ours.counts) == {"full", "U1", "U2", "singles", "batch"}
    assert ours.counts == theirs.counts
    assert ours.verify is not None and ours.verify["agree"], ours.verify
    assert "fresh_charter" in ours.verify
    assert ours.latency is not None and ours.latency["count"] == 400 + 2
    assert ours.batch_rows == len(script.batch) == theirs.batch_rows


@pytest.fixture
def with_load_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Engine.load_columns`` as the engine has it, or a stand-in going through load_rows."""
    from charter.engine import Engine

    if not hasattr(Engine, "load_columns"):

        def load_columns(self, tables):  # type: ignore[no-untyped-def]
            rows = {
                t: list(zip(*(c.tolist() for c in cols), strict=True)) for t, cols in tables.items()
            }
            return self.load_rows(rows)

        monkeypatch.setattr(Engine, "load_columns", load_columns, raising=False)


@needs_charter
@pytest.mark.usefixtures("with_load_columns")
def test_charter_row_and_column_inputs_agree(workload: Workload) -> None:
    from bench import charter_run, reach

    assert charter_run.has_load_columns()
    assert charter_run.prepare(workload).kind == "columns"
    graph = reach.generate(2000)
    changes = reach.edge_changes(graph)
    by_rows = reach.charter_run_once(graph, changes, reach.charter_input(graph, False))
    by_cols = reach.charter_run_once(graph, changes, reach.charter_input(graph, True))
    assert by_rows.counts == by_cols.counts
    by_rows = charter_run.run_once(workload, charter_run.prepare(workload, columns=False))
    by_cols = charter_run.run_once(workload, charter_run.prepare(workload, columns=True))
    assert by_rows.counts == by_cols.counts


# ---------------------------------------------------------------- the reach workload


@pytest.mark.parametrize("edges", [1000, 5000])
def test_reach_oracle_and_engines_agree(edges: int) -> None:
    from bench import reach

    graph = reach.generate(edges)
    assert len(set(graph.edge_rows())) == edges
    changes = reach.edge_changes(graph)
    assert changes == reach.edge_changes(reach.generate(edges))
    oracle = changes.oracle
    assert oracle["delete"][0] < oracle["full"][0]  # the deleted edge cut a node off
    assert oracle["insert"][0] > oracle["delete"][0]  # the inserted edge reached new nodes
    # a plain-Python fixpoint as an independent check of the oracle
    succ: dict[int, set[int]] = {}
    for x, y in graph.edge_rows():
        succ.setdefault(x, set()).add(y)
    seen = set(graph.sources.tolist())
    todo = list(seen)
    while todo:
        for y in succ.get(todo.pop(), ()):
            if y not in seen:
                seen.add(y)
                todo.append(y)
    assert oracle["full"] == (len(seen), sum(seen))

    theirs = reach.duckdb_run_once(graph, changes)
    assert theirs.counts == {p: {"reach": c} for p, c in oracle.items()}
    if charter_available():
        from bench.charter_run import has_load_columns

        for columns in {False, has_load_columns()}:
            ours = reach.charter_run_once(graph, changes, reach.charter_input(graph, columns))
            assert ours.counts == theirs.counts


# ---------------------------------------------------------------- the runner, end to end


def test_runner_cloud_and_reach(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.__main__ import main

    engines = "duckdb,charter" if charter_available() else "duckdb"
    code = main(["--n", "1000", "--repeat", "1", "--singles", "100", "--engines", engines])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "chg p50" in out and "0.01 batch" in out
    code = main(["--workload", "reach", "--n", "2000", "--repeat", "1", "--engines", engines])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "-edge" in out


def test_runner_reports_disagreement() -> None:
    from bench.__main__ import compare

    good = {"full": {"p1": [1, 1]}}
    bad = {"full": {"p1": [1, 2]}}
    assert compare({"duckdb": {"counts": good}, "charter": {"counts": good}}) == (True, [])
    agree, lines = compare({"duckdb": {"counts": good}, "charter": {"counts": bad}})
    assert agree is False and lines
    check = {"counts": good, "verify": {"agree": False}}
    assert compare({"duckdb": {"counts": good}, "charter": check})[0] is False
    assert compare({"charter": check})[0] is False
    oracle = {"counts": {"full": {"reach": [3, 6]}}, "oracle": {"full": {"reach": [3, 7]}}}
    assert compare({"duckdb": oracle}, "reach")[0] is False


def test_bench_doctests() -> None:
    import doctest

    from bench import changes, reach, workload

    for module in (workload, changes, reach):
        failed, _ = doctest.testmod(module)
        assert failed == 0, module.__name__
