"""Violation history: intervals open when a row appears and close when it clears."""

from __future__ import annotations

import pytest

from charter.store import Store, ViolationRecord
from tests.store.factories import at


def test_appear_then_clear(store: Store):
    store.record_violations("p", "error", [("vm-1",), ("vm-2",)], [], at(0))
    assert store.violations("p") == [
        ViolationRecord("p", "error", ("vm-1",), at(0), None),
        ViolationRecord("p", "error", ("vm-2",), at(0), None),
    ]
    store.record_violations("p", "error", [], [("vm-1",)], at(5))
    assert store.violations("p") == [ViolationRecord("p", "error", ("vm-2",), at(0), None)]
    assert store.violations("p", include_resolved=True) == [
        ViolationRecord("p", "error", ("vm-1",), at(0), at(5)),
        ViolationRecord("p", "error", ("vm-2",), at(0), None),
    ]


def test_appearing_again_while_open_keeps_the_first_sighting(store: Store):
    store.record_violations("p", "error", [("vm-1",)], [], at(0))
    store.record_violations("p", "error", [("vm-1",), ("vm-1",)], [], at(10))
    assert store.violations("p") == [ViolationRecord("p", "error", ("vm-1",), at(0), None)]


def test_reappearing_after_clearing_opens_a_new_interval(store: Store):
    store.record_violations("p", "error", [("vm-1",)], [], at(0))
    store.record_violations("p", "error", [], [("vm-1",)], at(1))
    store.record_violations("p", "error", [("vm-1",)], [], at(2))
    assert store.violations("p", include_resolved=True) == [
        ViolationRecord("p", "error", ("vm-1",), at(0), at(1)),
        ViolationRecord("p", "error", ("vm-1",), at(2), None),
    ]


def test_clearing_a_row_never_seen_or_already_cleared_does_nothing(store: Store):
    store.record_violations("p", "error", [("vm-1",)], [], at(0))
    store.record_violations("p", "error", [], [("vm-1",)], at(1))
    store.record_violations("p", "error", [], [("vm-1",), ("vm-9",)], at(2))
    assert store.violations("p", include_resolved=True) == [
        ViolationRecord("p", "error", ("vm-1",), at(0), at(1))
    ]


def test_rows_are_told_apart_by_value_and_type(store: Store):
    rows = [(1, "a"), (1.0, "a"), ("1", "a"), (True, "a"), (None, "a"), (1, "a", None)]
    store.record_violations("p", "t", rows, [], at(0))
    back = [v.row for v in store.violations("p")]
    assert back == rows
    assert [[type(x) for x in r] for r in back] == [[type(x) for x in r] for r in rows]
    store.record_violations("p", "t", [], [(1.0, "a")], at(1))  # only the float row clears
    still_open = [v.row for v in store.violations("p")]
    assert [type(r[0]) for r in still_open] == [int, str, bool, type(None), int]


def test_filtering_by_policy_and_table(store: Store):
    store.record_violations("p", "error", [("a",)], [], at(0))
    store.record_violations("p", "warning", [("a",)], [], at(0))
    store.record_violations("q", "error", [("a",)], [], at(0))
    assert [v.table for v in store.violations("p")] == ["error", "warning"]
    assert [v.policy for v in store.violations("p", "warning")] == ["p"]
    store.record_violations("q", "error", [], [("a",)], at(1))  # other policies untouched
    assert len(store.violations("p", "error")) == 1
    assert store.violations("nope") == []


def test_many_rows_in_one_call(store: Store):
    rows = [(f"vm-{i}", i) for i in range(2000)]
    store.record_violations("p", "error", rows, [], at(0))
    store.record_violations("p", "error", rows[::2], rows[1::2], at(1))
    open_rows = [v.row for v in store.violations("p")]
    assert open_rows == rows[::2]
    assert len(store.violations("p", include_resolved=True)) == 2000


def test_a_row_in_both_lists_ends_closed(store: Store):
    store.record_violations("p", "error", [("vm-1",)], [("vm-1",)], at(0))
    assert store.violations("p") == []
    assert store.violations("p", include_resolved=True) == [
        ViolationRecord("p", "error", ("vm-1",), at(0), at(0))
    ]


def test_large_rows_are_looked_up_by_hash(store: Store):
    big = ("x" * 100_000, 1)
    store.record_violations("p", "error", [big], [], at(0))
    store.record_violations("p", "error", [big], [], at(1))
    store.record_violations("p", "error", [], [big], at(2))
    assert store.violations("p", include_resolved=True) == [
        ViolationRecord("p", "error", big, at(0), at(2))
    ]


def test_bad_values_are_refused(store: Store):
    with pytest.raises(TypeError):
        store.record_violations("p", "error", [(object(),)], [], at(0))
