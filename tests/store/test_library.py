"""Library policies: insert-or-replace by id, names unique, rules kept as given."""

from __future__ import annotations

import pytest

from charter.store import Conflict, LibraryPolicyRecord, NotFound, Store

RULES = [
    {"rule": 'error(x) :- nova:servers(id=x, status="ERROR")', "name": "err", "comment": "c"},
    {"rule": "warn(x) :- q(x)"},
]


def lib(name: str = "security", id: str = "lib-1", **fields) -> LibraryPolicyRecord:
    values = {
        "id": id,
        "name": name,
        "description": "d",
        "abbreviation": "sec",
        "kind": "nonrecursive",
        "rules": RULES,
    } | fields
    return LibraryPolicyRecord(**values)


def test_put_and_list(store: Store):
    a, b = lib("a", "lib-a"), lib("b", "lib-b", rules=[])
    store.put_library_policy(a)
    store.put_library_policy(b)
    assert store.list_library_policies() == [a, b]


def test_put_replaces_by_id_and_keeps_the_place(store: Store):
    store.put_library_policy(lib("a", "lib-a"))
    store.put_library_policy(lib("b", "lib-b"))
    renamed = lib("a2", "lib-a", description="new", rules=[{"rule": "p(1)"}])
    store.put_library_policy(renamed)
    assert store.list_library_policies() == [renamed, lib("b", "lib-b")]


def test_a_name_taken_by_another_id_is_a_conflict(store: Store):
    store.put_library_policy(lib("a", "lib-a"))
    with pytest.raises(Conflict, match="library policy named 'a' already exists"):
        store.put_library_policy(lib("a", "lib-other"))
    assert [p.id for p in store.list_library_policies()] == ["lib-a"]


def test_delete(store: Store):
    store.put_library_policy(lib())
    store.delete_library_policy("lib-1")
    assert store.list_library_policies() == []
    with pytest.raises(NotFound, match="library policy 'lib-1' not found"):
        store.delete_library_policy("lib-1")
