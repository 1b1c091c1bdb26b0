"""Column stores: the radix sort behind their indexes orders rows as NumPy's stable sort."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.engine import columnar
from charter.engine.columnar import ColumnStore, stable_order


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=60),
    span_bits=st.sampled_from([1, 8, 16, 17, 32, 33, 48, 49, 63]),
)
def test_radix_order_is_the_stable_argsort(values, span_bits):
    low = values[0] if values else 0
    array = np.array(values, dtype=np.int64)
    if len(array):  # values within span_bits of the first: one to four 16-bit digits
        array = np.array([low + v % (1 << span_bits) for v in values], dtype=object)
        array = array[(array >= -(2**63)) & (array < 2**63)].astype(np.int64)
    saved, columnar.RADIX_MIN = columnar.RADIX_MIN, 0  # radix sort even for a few rows
    try:
        assert stable_order(array).tolist() == np.argsort(array, kind="stable").tolist()
    finally:
        columnar.RADIX_MIN = saved


@pytest.mark.parametrize("span", [10, 70_000, 2**40, 2**60])
def test_large_arrays_keep_ties_in_order(span):
    values = np.random.default_rng(7).integers(-span, span, 120_000)
    assert (stable_order(values) == np.argsort(values, kind="stable")).all()


def test_index_built_by_radix_sort_finds_every_row():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 100_000, 80_000)
    store = ColumnStore([ids, rng.integers(0, 5, 80_000)])
    for key in ids[:50].tolist():
        assert sorted(store.positions((0,), key)) == np.flatnonzero(ids == key).tolist()


@pytest.mark.parametrize("span", [50, 2_000, 10**9], ids=["dense", "ids", "sparse"])
def test_runs_read_from_starts_equal_the_searched_ones(span):
    rng = np.random.default_rng(11)
    values = rng.integers(-span, span, 1_000)
    store = ColumnStore([values, np.arange(1_000)])
    index = store.index((0,))
    assert (index.dense() is not None) == (span < 10**9)
    probes = [*values[:40].tolist(), -span - 1, span + 1, 0, 2.0]
    for key in probes:
        assert sorted(store.positions((0,), key)) == np.flatnonzero(values == key).tolist()
    keys = np.array(probes[:-1] + [-(2**63), 2**63 - 1], dtype=np.int64)
    owner, found = store.match((0,), [keys])
    pairs = sorted(zip(owner.tolist(), found.tolist(), strict=True))
    assert pairs == [(k, p) for k, key in enumerate(keys) for p in np.flatnonzero(values == key)]


@pytest.mark.parametrize(
    "column",
    [[5, 3, 5, -2, 3, 3], [10**12, 1, 1], [2.5, 2.5, 1.0], ["b", "a", "b"]],
    ids=["dense ints", "sparse ints", "floats", "strings"],
)
def test_group_sizes_equal_numpy_unique(column):
    from charter.engine.aggregates import _group_sizes

    array = np.array(column, dtype=object if isinstance(column[0], str) else None)
    keys, sizes = _group_sizes(array)
    want_keys, want_sizes = np.unique(array, return_counts=True)
    assert keys.tolist() == want_keys.tolist() and sizes.tolist() == want_sizes.tolist()


@pytest.mark.parametrize("unique_ids", [True, False], ids=["id column", "repeating"])
def test_rows_found_by_their_id_equal_rows_found_by_packed_keys(unique_ids):
    rng = np.random.default_rng(4)
    ids = rng.permutation(3_000) if unique_ids else rng.integers(0, 1_000, 3_000)
    store = ColumnStore([ids, rng.integers(0, 4, 3_000), rng.integers(-5, 5, 3_000)]).unique()
    store.prepare(None)  # packed row keys, whose order gives the index on column 0
    picked = rng.integers(0, store.n, 200)
    probe = [c[picked].copy() for c in store.columns]
    probe[1][::3] += 1  # some rows that are not there
    probe[0][::7] = 10**9  # and ids out of range
    want = [store.find(row) for row in zip(*(c.tolist() for c in probe), strict=True)]
    assert store.find_rows(probe).tolist() == want
