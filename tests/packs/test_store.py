"""The store's enabled packs, on SQLite and on a real PostgreSQL: written whole, replaced,
deleted, and read back in the order they were first enabled."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from charter.store import NotFound, PackRecord, Store
from tests.realservices.postgres import empty_database, postgres_url  # noqa: F401 (fixture)

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
AT = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'charter.db'}"
    else:
        url = empty_database(request.getfixturevalue("postgres_url"))
    with Store(url, secret_key=Store.generate_key()) as s:
        yield s


def test_packs_are_kept_replaced_and_deleted(store):
    first = PackRecord(
        "openstack-security",
        "0.1.0",
        {"admin_ports": [[22, "SSH"]]},
        ("OS_NET_001", "OS_NET_002"),
        "alice",
        AT,
    )
    other = PackRecord("acme", "1.0", {}, ("ACME_001",), "bob", AT)
    store.put_pack(first)
    store.put_pack(other)
    assert store.list_packs() == [first, other]
    again = PackRecord("openstack-security", "0.2.0", {}, ("OS_NET_001",), "carol", AT)
    store.put_pack(again)
    assert store.list_packs() == [again, other]  # replaced in place, its order kept
    store.delete_pack("acme")
    assert store.list_packs() == [again]
    with pytest.raises(NotFound, match="pack 'acme' is not enabled"):
        store.delete_pack("acme")
