"""Pushed tables: replaced whole or changed, read back with every value's Python type intact
(the base and log behind it: test_push_log.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from charter.store import NotFound, Store
from tests.store.factories import datasource

TRICKY_ROWS = [
    (1, 1.0, "1", True, None),
    (0, 0.0, "", False, "None"),
    (-(2**70), 1e-300, "ünï\u0000cödé \U0001f600", 2**63, "null"),
    (1.5, float("inf"), float("-inf"), '"quoted"', "[1, 2]"),
    (("nested", 1), (), "tuple values come back as tuples", 3, 4.25),
]


@pytest.fixture
def ds_id(store: Store) -> str:
    ds = datasource("push", driver="push")
    store.create_datasource(ds)
    return ds.id


def test_values_keep_their_types(store: Store, ds_id: str):
    store.replace_table(ds_id, "t", TRICKY_ROWS)
    back = store.load_tables(ds_id)["t"]
    assert back == TRICKY_ROWS
    for got, want in zip(back, TRICKY_ROWS, strict=True):
        assert type(got) is tuple
        assert [type(v) for v in got] == [type(v) for v in want]


def test_nan_round_trips(store: Store, ds_id: str):
    store.replace_table(ds_id, "t", [(float("nan"),)])
    ((value,),) = store.load_tables(ds_id)["t"]
    assert isinstance(value, float) and math.isnan(value)


def test_numpy_scalars_are_stored_as_python_values(store: Store, ds_id: str):
    store.replace_table(ds_id, "t", [(np.int64(7), np.float64(2.5), np.bool_(True))])
    ((i, f, b),) = store.load_tables(ds_id)["t"]
    assert (type(i), type(f), type(b)) == (int, float, bool)
    assert (i, f, b) == (7, 2.5, True)


def test_replace_is_whole_and_per_table(store: Store, ds_id: str):
    store.replace_table(ds_id, "a", [(1,), (2,)])
    store.replace_table(ds_id, "b", [("x",)])
    store.replace_table(ds_id, "a", [(3,)])
    store.replace_table(ds_id, "c", [])
    assert store.load_tables(ds_id) == {"a": [(3,)], "b": [("x",)], "c": []}


def test_large_table(store: Store, ds_id: str):
    rows = [(i, f"vm-{i}", i * 0.5, i % 2 == 0) for i in range(50_000)]
    store.replace_table(ds_id, "servers", rows)
    assert store.load_tables(ds_id)["servers"] == rows


def test_unstorable_values_are_refused_before_writing(store: Store, ds_id: str):
    store.replace_table(ds_id, "t", [(1,)])
    with pytest.raises(TypeError, match="cannot store .* in a row"):
        store.replace_table(ds_id, "t", [(2,), ({"a": 1},)])
    assert store.load_tables(ds_id) == {"t": [(1,)]}


def test_unknown_datasource_is_not_found(store: Store):
    with pytest.raises(NotFound, match="datasource 'nope' not found"):
        store.replace_table("nope", "t", [(1,)])
    with pytest.raises(NotFound):
        store.load_tables("nope")


def test_changes_insert_and_delete_only_the_rows_named(store: Store, ds_id: str):
    store.replace_table(ds_id, "a", [(1, "x"), (2, "y"), (3, "z")])
    store.change_tables(ds_id, {"a": ([(4, "w")], [(2, "y")]), "b": ([], [])})
    assert store.load_tables(ds_id) == {"a": [(1, "x"), (3, "z"), (4, "w")], "b": []}


def test_changes_find_rows_as_a_set_does(store: Store, ds_id: str):
    """1, 1.0 and True are one value to the engine's sets: a row stored as (1,) is deleted
    by (1.0,), and (True,) is not stored beside it."""
    store.replace_table(ds_id, "t", [(1,), (2.5,), ("1",)])
    store.change_tables(ds_id, {"t": ([(True,), (0,)], [(1.0,), ("2.5",)])})
    assert store.load_tables(ds_id)["t"] == [(2.5,), ("1",), (True,), (0,)]
    store.change_tables(ds_id, {"t": ([(1.0,), (False,)], [])})  # both already stored
    assert store.load_tables(ds_id)["t"] == [(2.5,), ("1",), (True,), (0,)]


def test_changes_keep_every_type_through_the_log(store: Store, ds_id: str):
    store.replace_table(ds_id, "t", TRICKY_ROWS[:2])
    store.change_tables(ds_id, {"t": (TRICKY_ROWS[2:], TRICKY_ROWS[:1])})
    back = store.load_tables(ds_id)["t"]
    assert back == TRICKY_ROWS[1:]
    for got, want in zip(back, TRICKY_ROWS[1:], strict=True):
        assert [type(v) for v in got] == [type(v) for v in want]
    store.compact_tables(ds_id)
    assert store.load_tables(ds_id)["t"] == TRICKY_ROWS[1:]


def test_a_nan_row_replaced_by_an_equal_one_is_stored_once(store: Store, ds_id: str):
    """NaN equals nothing, so the engine deletes the NaN row it holds and inserts the pushed
    one; the replay finds the deleted one by its other values."""
    store.replace_table(ds_id, "t", [(float("nan"), "a"), (1.0, "b")])
    store.change_tables(ds_id, {"t": ([(float("nan"), "a")], [(float("nan"), "a")])})
    store.change_tables(ds_id, {"t": ([(float("nan"), "a")], [(float("nan"), "a")])})
    b, (nan, a) = store.load_tables(ds_id)["t"]  # the NaN row last: it was inserted last
    assert b == (1.0, "b") and math.isnan(nan) and a == "a"


def test_unstorable_values_in_a_change_are_refused_before_writing(store: Store, ds_id: str):
    store.replace_table(ds_id, "t", [(1,)])
    with pytest.raises(TypeError, match="cannot store .* in a row"):
        store.change_tables(ds_id, {"t": ([(2,)], []), "u": ([(object(),)], [])})
    assert store.load_tables(ds_id) == {"t": [(1,)]}


def test_a_change_to_an_unknown_datasource_is_not_found(store: Store):
    with pytest.raises(NotFound, match="datasource 'nope' not found"):
        store.change_tables("nope", {"t": ([(1,)], [])})
