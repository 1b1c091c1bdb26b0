"""Translators with Congress's semantics: rows and schemas agree, sub-tables link up."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from charter.datasources.driver import DriverError
from charter.datasources.translator import content_hash, schema, translate

V = {"translation-type": "VALUE"}

SERVERS = {
    "translation-type": "HDICT",
    "table-name": "servers",
    "selector-type": "DICT_SELECTOR",
    "field-translators": (
        {"fieldname": "id", "translator": V},
        {"fieldname": "name", "translator": V},
        {"fieldname": "metadata", "col": "meta_id", "translator": {
            "translation-type": "VDICT", "table-name": "servers.metadata", "id-col": "meta_id",
            "key-col": "key", "val-col": "value", "translator": V}},
        {"fieldname": "addresses", "translator": {
            "translation-type": "HDICT", "table-name": "servers.addresses",
            "parent-key": "id", "parent-col-name": "server_id", "in-list": True,
            "selector-type": "DICT_SELECTOR",
            "field-translators": (
                {"fieldname": "addr", "col": "address", "translator": V},
                {"fieldname": "version", "translator": V},
            )}},
        {"fieldname": "status", "translator": {
            "translation-type": "VALUE", "extract-fn": lambda s: (s or "").upper()}},
    ),
}


def test_schema_follows_congress_column_rules():
    got = {name: spec.column_names for name, spec in schema(SERVERS).items()}
    assert got == {
        "servers": ("id", "name", "meta_id", "status"),  # addresses (parent-keyed) left out
        "servers.metadata": ("meta_id", "key", "value"),
        "servers.addresses": ("server_id", "address", "version"),
    }


def test_rows_link_sub_tables_by_parent_key_and_by_hash():
    objs = [
        {"id": "vm1", "name": "web", "metadata": {"role": "web", "tier": 1},
         "addresses": [{"addr": "10.0.0.5", "version": 4}, {"addr": "fe80::1", "version": 6}],
         "status": "active"},
        {"id": "vm2", "metadata": {}, "addresses": [], "status": None},
    ]
    rows = translate(objs, SERVERS)
    meta_id = content_hash({"role": "web", "tier": 1})
    assert rows["servers"] == [("vm1", "web", meta_id, "ACTIVE"),
                               ("vm2", None, content_hash({}), "")]
    assert sorted(rows["servers.metadata"]) == [(meta_id, "role", "web"), (meta_id, "tier", 1)]
    assert rows["servers.addresses"] == [("vm1", "10.0.0.5", 4), ("vm1", "fe80::1", 6)]


def test_values_become_what_congress_stored():
    t = {"translation-type": "HDICT", "table-name": "t", "selector-type": "DOT_SELECTOR",
         "field-translators": ({"fieldname": "a", "translator": V},
                               {"fieldname": "b", "translator": V},
                               {"fieldname": "c", "translator": V},
                               {"fieldname": "missing", "translator": V})}
    obj = SimpleNamespace(a=True, b={"x": [1, 2]}, c=2.5)
    assert translate([obj], t)["t"] == [("True", '{"x": [1, 2]}', 2.5, None)]


def test_list_and_vdict_roots_and_extract_fn():
    lst = {"translation-type": "LIST", "table-name": "zones", "val-col": "zone",
           "translator": V, "objects-extract-fn": lambda r: r["zones"]}
    assert translate({"zones": ["a", "b"]}, lst) == {"zones": [("a",), ("b",)]}
    vd = {"translation-type": "VDICT", "table-name": "quota", "key-col": "k", "val-col": "v",
          "translator": V}
    assert translate({"cores": 4}, vd) == {"quota": [("cores", 4)]}


def test_every_table_is_present_even_when_empty():
    assert translate([], SERVERS) == {"servers": [], "servers.metadata": [],
                                      "servers.addresses": []}


@pytest.mark.parametrize("garbage", [{"not": "a list"}, 42, [{"id": "x", "addresses": 7}]])
def test_a_garbage_answer_is_a_clear_502(garbage):
    with pytest.raises(DriverError) as err:
        translate(garbage, SERVERS)
    assert err.value.status == 502 and "servers" in str(err.value)
