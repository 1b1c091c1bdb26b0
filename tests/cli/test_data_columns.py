"""The columnar reader of ``--data`` against the row reader: the same engine, or the same errors.

``load_workspace(..., columnar=False)`` is the row reader as it was before the columnar path
(Python rows checked one value at a time); every test here loads the same files both ways
and compares every table's rows (by ``repr``, so ``1`` and ``1.0`` differ), the column names
the data gave, and, when the data is bad, the whole error text. The columnar reader's chunks
are made tiny so that random data crosses many chunk boundaries.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.cli import data_columns
from charter.cli.data_columns import _int_rows, read_columns
from charter.cli.loading import load_workspace
from charter.lang.errors import CharterError

POLICY = """\
facts(7, "seven")
error(x) :- pol:facts(x, y)
warning(x) :- ext:pairs(x, _), not pol:facts(x, _)
hosts(h) :- nova:servers(id=s, host_id=h)
"""

TABLES = (
    "pol:facts",
    "pol:other",
    "pol:error",
    "ext:pairs",
    "ext:wide",
    "nova:servers",
    "nova:flavors",
)
NOVA_SERVERS = ("id", "name", "host_id", "status", "tenant_id")  # a few of its columns

scalars = st.one_of(
    st.integers(-5, 300),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, 1e300, 2.5]),
    st.text(max_size=6),
    st.sampled_from(["", "]],[", '":', "x\u2028y", "\\", '"', "vm1", "1"]),
    st.booleans(),
    st.none(),
)
values = st.one_of(scalars, scalars, scalars, st.lists(st.integers(), max_size=2))


@st.composite
def table_rows(draw, table: str, clean: bool):
    """Rows for one table: regular (one width, or objects of its columns) when ``clean``,
    else with now and then a row of another width, a missing or unknown key, a nested
    value or a scalar row."""
    kind = draw(
        st.sampled_from(["lists", "objects", "mixed"] if not clean else ["lists"] * 3 + ["objects"])
    )
    width = draw(st.integers(1, 4))
    names = NOVA_SERVERS if table.startswith("nova:") else ("a", "b", "c", "d")[:width]
    column_kinds = [draw(st.sampled_from(["int", "str", "float", "any"])) for _ in range(width)]
    by_kind = {
        "int": st.integers(-1000, 10**6),
        "str": st.text(max_size=5),
        "float": st.floats(allow_nan=False, allow_infinity=False),
        "any": scalars if clean else values,
    }
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        row = [draw(by_kind[k]) for k in column_kinds]
        odd = draw(st.integers(0, 40)) if not clean else 99
        if odd == 0:
            row = row + [1]
        elif odd == 1:
            row = row[:-1]
        if kind == "lists" or (kind == "mixed" and draw(st.booleans())):
            rows.append(row)
            continue
        obj = dict(zip(names, row, strict=False))
        if odd == 2 and obj:
            obj.pop(next(iter(obj)))
        elif odd == 3:
            obj["unknown"] = 1
        elif odd == 4:
            obj = dict(reversed(list(obj.items())))
        rows.append(obj)
    if not clean and draw(st.integers(0, 60)) == 0:
        rows.append(draw(scalars))
    return rows


@st.composite
def documents(draw):
    tables = draw(st.lists(st.sampled_from(TABLES), min_size=1, max_size=4, unique=True))
    clean = draw(st.integers(0, 3)) > 0
    return {t: draw(table_rows(t, clean)) for t in tables}


def outcome(policy: Path, data: list[Path], columnar: bool):
    try:
        ws = load_workspace([policy], data, columnar=columnar)
    except CharterError as exc:
        return "error", str(exc)
    engine = ws.engine
    rows = {t: sorted(map(repr, engine.rows(t))) for t in engine.tables()}
    schemas = {m: dict(tables) for m, tables in engine.schemas.modules.items()}
    return "ok", rows, ws.data_columns, schemas


def assert_same(tmp_path: Path, data: list[Path]) -> tuple:
    policy = tmp_path / "pol.dl"
    policy.write_text(POLICY)
    exact = outcome(policy, data, columnar=False)
    fast = outcome(policy, data, columnar=True)
    assert fast == exact, [d.read_bytes()[:2000] for d in data]
    return exact


@pytest.fixture
def tiny_chunks(monkeypatch):
    monkeypatch.setattr(data_columns, "CHUNK_BYTES", 24)


def dump(doc: dict, style: int) -> str:
    if style == 0:
        return json.dumps(doc)
    if style == 1:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(doc, indent=style - 1).replace("\n", "\r\n" if style == 3 else "\n")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=documents(), style=st.integers(0, 3))
def test_json_files_load_as_the_row_reader_loads_them(tmp_path, tiny_chunks, doc, style):
    path = tmp_path / "d.json"
    path.write_text(dump(doc, style), encoding="utf-8")
    assert_same(tmp_path, [path])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=documents(), second=documents())
def test_two_files_of_the_same_tables_load_as_the_row_reader_loads_them(
    tmp_path, tiny_chunks, first, second
):
    paths = []
    for name, doc in (("a.json", first), ("b.json", second)):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(doc))
    assert_same(tmp_path, paths)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=documents())
def test_yaml_and_ndjson_files_load_as_the_row_reader_loads_them(tmp_path, tiny_chunks, doc):
    import yaml

    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert_same(tmp_path, [path])
    table, rows = next(iter(doc.items()))
    lines = tmp_path / f"{table}.ndjson"
    lines.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    assert_same(tmp_path, [lines])


@pytest.mark.parametrize(
    "text",
    ["[1, 2]\n[3, 4]\n", "[1, 2], [3, 4]\n", "[1,\n2]\n", "[1, 2]\n\n[3]\n", '{"x": 1}\n[1, 2]\n'],
)
def test_ndjson_lines_are_one_row_each(tmp_path, tiny_chunks, text):
    path = tmp_path / "ext:pairs.ndjson"
    path.write_text(text)
    assert assert_same(tmp_path, [path])[0] == ("ok" if text == "[1, 2]\n[3, 4]\n" else "error")


def test_every_kind_of_value_becomes_what_the_row_reader_makes_of_it(tmp_path):
    doc = {
        "ext:pairs": [
            [1, "a"],
            [2**63, "b"],
            [2**64 + 1, "c"],
            [-(2**63) - 1, "d"],
            [1.0, "e"],
            [True, None],
            [False, "f"],
            ["1", 2.5],
            [10**40, -0.0],
        ],
        "nova:servers": [{"id": "vm1", "host_id": "h1"}, {"id": "vm2", "status": None}],
        "pol:facts": [{"x": 1, "y": "a"}, {"y": "b", "x": 2}],
    }
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    assert read_columns(path) is not None  # handled by the columnar reader, not refused
    kind, rows, columns, _ = assert_same(tmp_path, [path])
    assert kind == "ok"
    assert "(True, 'None')" not in rows["ext:pairs"]
    assert "('True', 'None')" in rows["ext:pairs"] and "(1.0, 'e')" in rows["ext:pairs"]
    assert columns == {"pol:facts": ("x", "y")}


@pytest.mark.parametrize(
    "text",
    [
        '{"ext:pairs": [[1, 2], [3]]}',
        '{"ext:pairs": [[1, 2], [3, [4]]]}',
        '{"ext:pairs": [[1, 2]], "ext:pairs": [[3, 4]]}',
        '{"nova:servers": [{"id": "a", "id": "b"}]}',
        '{"nova:servers": [{"id": "a", "nmae": "b"}]}',
        '{"nova:nonesuch": [[1]]}',
        '{"ext:pairs": [[01, 2]]}',
        '{"ext:pairs": [[1e999, 2]]}',
        '{"ext:pairs": [["\\ud800", 2]]}',
        '{"ext:pairs": [[NaN, 2]]}',
        '{"ext:pairs": [[1, 2]]} x',
        '{"ext:pairs": [[' + "9" * 200 + ", 2]]}",
        '{"pol:facts": [[1, 2, 3]]}',
        '{"pol:facts": [{"x": 1, "y": 2}, {"x": 1}]}',
        '["ext:pairs"]',
        '{"ext": [[1]]}',
    ],
)
def test_bad_files_get_the_row_readers_errors(tmp_path, text):
    path = tmp_path / "d.json"
    path.write_text(text)
    assert read_columns(path) is None or assert_same(tmp_path, [path])[0] == "error"
    assert assert_same(tmp_path, [path])[0] == "error"


# ---------------------------------------------------------------- integer rows


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="0123456789-,[] \n", min_size=1, max_size=14))
def test_integer_rows_are_read_exactly_when_json_reads_them_so(text):
    raw = ("[" + text).encode()
    got = _int_rows(raw)
    try:
        rows = json.loads(b"[" + raw + b"]")
        expected = (
            all(type(r) is list and r for r in rows)
            and len({len(r) for r in rows}) == 1
            and all(type(v) is int for r in rows for v in r)
        )
    except ValueError:
        expected = False
    assert (got is not None) == expected, raw
    if expected:
        assert got.tolist() == rows


def test_integer_rows_of_many_digits_are_left_to_json():
    assert _int_rows(b"[1234567890123456789,1]") is None  # 19 digits: may be past an int64
    assert _int_rows(b"[123456789012345678,-1]").tolist() == [[123456789012345678, -1]]


# ---------------------------------------------------------------- one-table files


def write_parquet(path: Path, columns: dict[str, tuple[str, list]]) -> None:
    import duckdb

    con = duckdb.connect()
    names = list(columns)
    types = ", ".join(f'"{n}" {columns[n][0]}' for n in names)
    con.execute(f"CREATE TABLE t ({types})")
    rows = list(zip(*(columns[n][1] for n in names), strict=True))
    if rows:
        marks = ", ".join("?" for _ in names)
        con.executemany(f"INSERT INTO t VALUES ({marks})", rows)
    con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    con.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(0, 8),
    seed=st.integers(0, 2**16),
    table=st.sampled_from(["ext:pairs", "pol:facts", "nova:servers"]),
)
def test_parquet_files_load_as_the_row_reader_loads_them(tmp_path, n, seed, table):
    rng = random.Random(seed)
    kinds = {
        "BIGINT": lambda: rng.choice([rng.randint(-(2**63), 2**63 - 1), rng.randint(0, 9)]),
        "DOUBLE": lambda: rng.choice([rng.random(), -0.0, 1e300]),
        "VARCHAR": lambda: rng.choice(["", "vm1", "x\u2028", "1"]),
        "BOOLEAN": lambda: rng.random() < 0.5,
        "DATE": lambda: "2024-01-0" + str(rng.randint(1, 9)),
    }
    names = ["id", "host_id"] if table == "nova:servers" else ["x", "y"]
    columns = {}
    for name in names:
        kind = rng.choice(list(kinds))
        columns[name] = (kind, [None if rng.random() < 0.2 else kinds[kind]() for _ in range(n)])
    path = tmp_path / f"{table}.parquet"
    write_parquet(path, columns)
    assert_same(tmp_path, [path])


CSV_FIELDS = st.sampled_from(
    ["", "1", "-0", "-5", "007", "1.5", "2e3", "1e999", "true", 'a,"b"', "\n"]
    + ["vm1", "vm2", "12345678901234567890", "x\ny", "7", "8"]
)


@st.composite
def csv_files(draw):
    """A header, and records mostly as long as it, of one kind of value a column or not."""
    header = draw(st.sampled_from([["x", "y"], ["id", "host_id"], ["x"], ["x", "x"], ["x", ""]]))
    kinds = [
        draw(
            st.sampled_from(
                [
                    st.sampled_from(["1", "-5", "7", "0"]),
                    st.sampled_from(["vm1", "a b"]),
                    CSV_FIELDS,
                ]
            )
        )
        for _ in header
    ]
    records = []
    for _ in range(draw(st.integers(0, 7))):
        record = [draw(k) for k in kinds]
        if draw(st.integers(0, 15)) == 0:
            record = record + ["extra"] if draw(st.booleans()) else record[:-1]
        records.append(record)
    return [header, *records]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=csv_files(), table=st.sampled_from(["ext:pairs", "pol:facts", "nova:servers"]))
def test_csv_files_load_as_the_row_reader_loads_them(tmp_path, monkeypatch, rows, table):
    import csv

    monkeypatch.setattr(data_columns, "CSV_CHUNK_ROWS", 2)
    path = tmp_path / f"{table}.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    assert_same(tmp_path, [path])
