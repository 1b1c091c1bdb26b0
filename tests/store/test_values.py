"""The encodings under the store, without a database: rows as JSON, sealed configs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from charter.store.errors import SecretKeyError
from charter.store.rows import decode_row, decode_rows, encode_row, encode_rows, row_key
from charter.store.secrets import MARKER, SecretBox, is_secret

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
)
values = st.recursive(scalars, lambda inner: st.tuples(inner, inner), max_leaves=4)
rows = st.lists(values, max_size=6).map(tuple)


def shape(value):
    """A value's types all the way down (1 == 1.0 == True, but their shapes differ)."""
    return tuple(shape(v) for v in value) if isinstance(value, tuple) else type(value)


@given(rows)
def test_rows_round_trip_with_their_types(row: tuple):
    back = decode_row(encode_row(row))
    assert back == row and shape(back) == shape(row)
    assert encode_row(row).isascii()


@given(st.lists(rows, max_size=5))
def test_tables_round_trip(table: list[tuple]):
    assert [shape(r) for r in decode_rows(encode_rows(table))] == [shape(r) for r in table]


def test_row_keys_tell_types_apart():
    keys = {row_key(r) for r in [(1,), (1.0,), (True,), ("1",), (None,), ((1,),)]}
    assert len(keys) == 6
    assert row_key((1, "a")) == row_key([1, "a"])


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "PASSWORD",
        "secret",
        "token",
        "api_key",
        "apikey",
        "private_key",
        "client_secret",
        "db_password",
        "app_secret",
        "auth_token",
        "ssh_key",
        "Access_Key",
    ],
)
def test_secret_names(name: str):
    assert is_secret(name)


@pytest.mark.parametrize(
    "name", ["username", "auth_url", "keystone", "tokens", "passwords", "key_id", "monkey"]
)
def test_not_secret_names(name: str):
    assert not is_secret(name)


def test_seal_and_open():
    box = SecretBox(SecretBox.generate_key())
    config = {
        "user": "u",
        "password": "pw-hunter2-long",
        "nested": {"api_key": 123, "list": [{"token": ["a", 1]}, "plain"]},
        "lookalike": {MARKER: 5},  # not a sealed value: the token must be a string
    }
    sealed = box.seal(config)
    assert sealed["user"] == "u"
    assert set(sealed["password"]) == {MARKER}
    assert set(sealed["nested"]["list"][0]["token"]) == {MARKER}
    assert "hunter2" not in str(sealed)
    assert box.open(sealed) == config


def test_opening_with_another_key_is_a_secret_key_error():
    sealed = SecretBox(SecretBox.generate_key()).seal({"password": "pw"})
    with pytest.raises(SecretKeyError, match="cannot decrypt the config of 'x'"):
        SecretBox(SecretBox.generate_key()).open(sealed, "the config of 'x'")
