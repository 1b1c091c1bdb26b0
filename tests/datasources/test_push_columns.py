"""A push checked set at a time and given as columns (``PushDriver.given``) against the row
path (``rows_for``): the same rows, the same difference from a stored table, and for a bad
body the same error, wherever the bad row is."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from charter.datasources.driver import DriverError
from charter.datasources.push import PushDriver
from charter.engine.column_diff import GivenTable, StoredTable, row_difference
from charter.engine.columnar import ColumnStore
from charter.engine.relation import Relation

KINDS = ["int", "str", "float", "mixed", "none", "bool", "nan", "bigint"]


def value(rng: random.Random, kind: str) -> object:
    if kind == "int":
        return rng.randrange(-5, 50)
    if kind == "str":
        return rng.choice("abcdef") * rng.randrange(1, 3)
    if kind == "float":
        return rng.choice([0.5, 1.0, -2.25, 3.0])
    if kind == "none":
        return rng.choice([None, 1])
    if kind == "bool":
        return rng.choice([True, False, 1, 0])
    if kind == "nan":
        return rng.choice([math.nan, 1.5])
    if kind == "bigint":
        return rng.choice([2**70, 3])
    return value(rng, rng.choice(["int", "str", "float", "none", "bool"]))


def table(rng: random.Random, kinds: list[str], n: int) -> list[list]:
    return [[value(rng, k) for k in kinds] for _ in range(n)]


def norm(rows) -> set:
    """Rows comparable with NaN (by repr: NaN != NaN)."""
    return {repr(tuple(r)) for r in rows}


def stored_of(rows: list[tuple], version: int = 1) -> StoredTable:
    rel = Relation.from_counts("p:t", dict.fromkeys(rows, 1))
    return StoredTable.of("p:t", rel, version, len(rows[0]) if rows else None)


@pytest.mark.parametrize("seed", range(40))
def test_a_push_as_columns_equals_the_row_path(seed):
    rng = random.Random(seed)
    width = rng.randrange(1, 5)
    kinds = [rng.choice(KINDS if seed % 3 else ["int", "str", "float"]) for _ in range(width)]
    old = table(rng, kinds, rng.randrange(0, 60))
    new = [list(r) for r in old if rng.random() < 0.8] + table(rng, kinds, rng.randrange(0, 20))
    rng.shuffle(new)
    driver = PushDriver("mon", {})
    given = driver.given("t", new)
    assert given.rows == driver.rows_for("t", new)
    assert len(given) == len(new)
    stored = stored_of([tuple(r) for r in old])
    by_columns = given.difference(stored)
    by_rows = row_difference(stored, driver.rows_for("t", new))
    assert norm(by_columns.inserted) == norm(by_rows.inserted)
    assert norm(by_columns.deleted) == norm(by_rows.deleted)
    if set(kinds) <= {"int", "str", "float"} and new:
        assert given.columns is not None  # the fast path took it


def test_a_large_all_typed_push_stays_columns():
    driver = PushDriver("mon", {"tables": {"t": ["id", "host", "load"]}})
    body = [[i, f"h{i % 7}", i / 2] for i in range(5000)]
    given = driver.given("t", body)
    assert [c.dtype.kind for c in given.columns] == ["i", "O", "f"]
    old = ColumnStore([np.arange(5000), np.array([f"h{i % 7}" for i in range(5000)], dtype=object),
                       np.arange(5000) / 2])
    body[17] = [17, "moved", 8.5]
    rel = Relation.from_store("p:t", old)  # a columnar base, as the engine holds a large table
    diff = driver.given("t", body).difference(StoredTable.of("p:t", rel, 1, 3))
    assert diff.inserted == [(17, "moved", 8.5)] and diff.deleted == [(17, "h3", 8.5)]


BAD_ROWS = [
    ("not a list", "x"),
    ("a dict value", [1, {"a": 1}, "b"]),
    ("a list value", [1, [2], "b"]),
    ("too short", [1, "b"]),
    ("too long", [1, "b", 2.0, 3]),
    ("an object of unknown columns", {"idd": 1}),
]


@pytest.mark.parametrize(("what", "bad"), BAD_ROWS, ids=[w for w, _ in BAD_ROWS])
@pytest.mark.parametrize("schema", [True, False])
def test_a_bad_row_at_the_end_of_a_large_body_gives_the_row_paths_error(what, bad, schema):
    config = {"tables": {"t": ["id", "host", "load"]}} if schema else {}
    driver = PushDriver("mon", config)
    body = [[i, f"h{i}", float(i)] for i in range(20000)] + [bad]
    with pytest.raises(DriverError) as by_rows:
        driver.rows_for("t", body)
    with pytest.raises(DriverError) as by_columns:
        driver.given("t", body)
    assert str(by_columns.value) == str(by_rows.value)
    assert "row 20000 " in str(by_columns.value)


@pytest.mark.parametrize("width", [None, 2, 3])
def test_the_tables_width_is_checked_as_the_row_path_does(width):
    driver = PushDriver("mon", {})
    body = [[1, "a", 0.5], [2, "b", 1.5]]
    try:
        expected: object = driver.rows_for("t", body, width)
    except DriverError as exc:
        expected = str(exc)
    try:
        got: object = driver.given("t", body, width).rows
    except DriverError as exc:
        got = str(exc)
    assert got == expected


@pytest.mark.parametrize("body", [
    {"rows": []}, [], [{"data": [1, "a"]}], [{"id": 1}], [[1, "a"], {"data": [2, "b"]}],
])
def test_other_bodies_go_the_row_path(body):
    driver = PushDriver("mon", {"tables": {"t": ["id", "host"]}})
    try:
        expected: object = driver.rows_for("t", body)
    except DriverError as exc:
        expected = str(exc)
    try:
        got: object = driver.given("t", body).rows
    except DriverError as exc:
        got = str(exc)
    assert got == expected


def test_an_unknown_table_is_refused_as_by_the_row_path():
    driver = PushDriver("mon", {"tables": {"t": ["id"]}})
    with pytest.raises(DriverError, match="has no table 'u'"):
        driver.given("u", [[1]])


def test_given_columns_make_their_rows_only_when_asked():
    given = GivenTable.of_columns([[1, 2, None], ["a", "b", "c"]], "p:t")
    assert given.columns is None  # None is not typed: the row path decides
    assert given.rows == [(1, "a"), (2, "b"), (None, "c")]
    typed = GivenTable.of_columns([[1, 2], ["a", "b"]], "p:t")
    assert typed.columns is not None and len(typed) == 2
