"""Datasources: configs round-trip, secret fields encrypted at rest, a wrong key refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, select

from charter.store import Conflict, NotFound, SecretKeyError, Store
from charter.store import tables as t
from tests.store.factories import datasource

SECRETS = {
    "password": "pw-hunter2-top",
    "Client_Secret": "cs-xyzzy-1234",
    "os_token": "tok-abcdef-999",
    "api_key": "ak-qwerty-555",
    "ssh_private_key": "-----BEGIN KEY----- pk-zz",
}
CONFIG = {
    "auth_url": "http://keystone:5000/v3",
    "username": "admin",
    "poll_time": 10,
    "verify": True,
    **SECRETS,
    "nested": {"tenant": "t", "db_password": "npw-nested-77", "keys": [{"token": "tok-in-list"}]},
    "cert": {"private_key": {"pem": "pem-in-a-secret-dict", "bits": 2048}},
    "empty_token": None,
}
SECRET_VALUES = [
    *SECRETS.values(),
    "npw-nested-77",
    "tok-in-list",
    "pem-in-a-secret-dict",
]


def raw_config(store: Store) -> str:
    with store._engine.connect() as conn:  # what is in the database, not what the store says
        return "\n".join(conn.scalars(select(t.datasources.c.config)))


def test_create_list_round_trip(store: Store):
    ds = datasource("nova", CONFIG)
    other = datasource("neutron", {}, driver="neutronv2", enabled=False)
    store.create_datasource(ds)
    store.create_datasource(other)
    assert store.list_datasources() == [ds, other]


def test_secrets_are_not_stored_in_clear(store: Store, db_url: str):
    store.create_datasource(datasource("nova", CONFIG))
    stored = raw_config(store)
    assert "keystone:5000" in stored and "admin" in stored  # the rest stays readable
    for secret in SECRET_VALUES:
        assert secret not in stored
    assert stored.count("$fernet") == 9
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        raw = b"".join(p.read_bytes() for p in files)  # the DB file and its -wal file
        assert b"keystone:5000" in raw
        for secret in SECRET_VALUES:
            assert secret.encode() not in raw


def test_a_wrong_key_is_refused_on_open(db_url: str, secret_key: bytes):
    with Store(db_url, secret_key=secret_key) as s:
        s.create_datasource(datasource("nova", CONFIG))
    with pytest.raises(SecretKeyError, match="secret key is not the one"):
        Store(db_url, secret_key=Store.generate_key())
    with Store(db_url, secret_key=secret_key) as s:  # the right key still works
        assert s.list_datasources()[0].config == CONFIG


def test_a_wrong_key_is_a_clear_error_when_reading_secrets(db_url: str, secret_key: bytes):
    with Store(db_url, secret_key=secret_key) as s:
        s.create_datasource(datasource("nova", CONFIG))
    engine = create_engine(db_url)
    with engine.begin() as conn:  # lose the store's key check: only the sealed fields remain
        conn.execute(delete(t.store_meta))
    engine.dispose()
    with (
        Store(db_url, secret_key=Store.generate_key()) as s,
        pytest.raises(SecretKeyError, match="cannot decrypt the config of datasource 'nova'"),
    ):
        s.list_datasources()


def test_a_malformed_key_is_refused(db_url: str):
    with pytest.raises(SecretKeyError, match="not a Fernet key.*Store.generate_key"):
        Store(db_url, secret_key=b"too-short")


def test_duplicate_name_or_id_is_a_conflict(store: Store):
    ds = datasource("nova")
    store.create_datasource(ds)
    with pytest.raises(Conflict, match="datasource named 'nova' already exists"):
        store.create_datasource(datasource("nova"))
    with pytest.raises(Conflict, match="datasource with id"):
        store.create_datasource(datasource("nova2", id=ds.id))


def test_delete_takes_its_push_tables(store: Store):
    ds, kept = datasource("push1", driver="push"), datasource("push2", driver="push")
    store.create_datasource(ds)
    store.create_datasource(kept)
    store.replace_table(ds.id, "t", [(1,)])
    store.replace_table(kept.id, "t", [(2,)])
    store.delete_datasource(ds.id)
    assert store.list_datasources() == [kept]
    assert store.load_tables(kept.id) == {"t": [(2,)]}
    with store._engine.connect() as conn:
        assert conn.scalar(select(t.push_tables.c.datasource_id)) == kept.id
    with pytest.raises(NotFound, match=f"datasource '{ds.id}' not found"):
        store.delete_datasource(ds.id)
    store.create_datasource(datasource("push1"))  # the name is free again
