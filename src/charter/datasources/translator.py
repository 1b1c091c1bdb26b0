"""Declarative translation of API objects (JSON, SDK resources) into rows, Congress's way.

A translator is a dict, as in Congress, so Congress's driver translators port unchanged:

- ``HDICT``: an object becomes one row, one column per field in ``field-translators``.
  ``selector-type`` is ``DICT_SELECTOR`` (``obj["f"]``) or ``DOT_SELECTOR`` (``obj.f``);
  ``in-list`` takes a list of such objects; ``objects-extract-fn`` picks the list out of a
  response; ``id-col`` prepends a content hash; ``parent-key`` prepends the parent's field.
- ``VDICT``: a dict becomes ``(key, value)`` rows (``key-col``, ``val-col``).
- ``LIST``: a list becomes ``(value,)`` rows (``val-col``).
- ``VALUE``: a leaf; ``extract-fn`` may transform it. Booleans become ``"True"``/``"False"``
  and structures become JSON text, as Congress stored them, so Congress's policies match.

A field whose translator is not ``VALUE`` makes a sub-table. With ``parent-key`` the field
is left out of the parent's row and each sub-row starts with the parent's key; with
``id-col`` the parent's column holds a hash of the sub-object and each sub-row starts with it.

>>> t = {"translation-type": "HDICT", "table-name": "servers", "selector-type": "DICT_SELECTOR",
...      "field-translators": (
...          {"fieldname": "id", "translator": {"translation-type": "VALUE"}},
...          {"fieldname": "locked", "translator": {"translation-type": "VALUE"}},
...          {"fieldname": "tags", "translator": {
...              "translation-type": "LIST", "table-name": "tags", "parent-key": "id",
...              "parent-col-name": "server_id", "val-col": "tag",
...              "translator": {"translation-type": "VALUE"}}})}
>>> rows = translate([{"id": "vm1", "locked": False, "tags": ["web", "db"]}], t)
>>> rows["servers"], sorted(rows["tags"])
([('vm1', 'False')], [('vm1', 'db'), ('vm1', 'web')])
>>> {name: spec.column_names for name, spec in schema(t).items()}
{'servers': ('id', 'locked'), 'tags': ('server_id', 'tag')}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from charter.datasources.driver import Column, DriverError, Row, TableSpec

HDICT, VDICT, LIST, VALUE = "HDICT", "VDICT", "LIST", "VALUE"
DICT_SELECTOR, DOT_SELECTOR = "DICT_SELECTOR", "DOT_SELECTOR"
Translator = Mapping[str, Any]


def scalar(value: Any) -> Any:
    """A value as a table holds it: str/int/float/None; bools and structures as text."""
    if value is None or isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, bool):
        return str(value)
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def content_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _select(obj: Any, field: str, selector: str) -> Any:
    if selector == DOT_SELECTOR:
        return getattr(obj, field, None)
    if isinstance(obj, Mapping):
        return obj.get(field)
    getter = getattr(obj, "get", None)  # SDK resources behave like dicts
    return getter(field) if callable(getter) else getattr(obj, field, None)


def _plain(obj: Any) -> Any:
    """JSON-able form of an object, for hashing and for VALUE of a structure."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return _plain(to_dict())
    return obj


class _Out:
    def __init__(self) -> None:
        self.tables: dict[str, list[Row]] = {}

    def add(self, table: str, row: Row) -> None:
        self.tables.setdefault(table, []).append(row)


def translate(objs: Any, translator: Translator) -> dict[str, list[Row]]:
    """The rows of every table ``translator`` describes, for ``objs`` (a list, or a single
    object for VDICT/LIST). Raises DriverError when the objects do not fit."""
    out = _Out()
    extract: Callable | None = translator.get("objects-extract-fn")
    if extract is not None:
        objs = extract(objs)
    kind = translator["translation-type"]
    try:
        if kind == HDICT:
            if objs is None:
                objs = []
            if isinstance(objs, Mapping) or not isinstance(objs, Iterable):
                raise DriverError(f"{translator['table-name']}: expected a list of objects, "
                                  f"got {type(objs).__name__}", status=502)
            for obj in objs:
                _hdict(obj, translator, None, out)
        elif kind == VDICT:
            _vdict(objs, translator, None, out)
        elif kind == LIST:
            _list(objs, translator, None, out)
        else:
            raise DriverError(f"a root translator must be HDICT, VDICT or LIST, not {kind}")
    except (AttributeError, TypeError, KeyError) as exc:
        raise DriverError(f"{translator.get('table-name')}: the service's answer does not "
                          f"have the expected shape ({type(exc).__name__}: {exc})",
                          status=502) from exc
    for name in schema(translator):
        out.tables.setdefault(name, [])
    return out.tables


def _leaf(value: Any, translator: Translator) -> Any:
    fn = translator.get("extract-fn")
    if fn is not None:
        value = fn(value)
    return scalar(_plain(value))


def _prefix(translator: Translator, parent_key: Any, content: Any) -> tuple[tuple, Any]:
    """The leading column of a sub-row (parent key or id) and the id for the parent."""
    if translator.get("parent-key") is not None:
        return (scalar(parent_key),), None
    if translator.get("id-col") is not None:
        ident = content_hash(_plain(content))
        return (ident,), ident
    return (), None


def _sub(value: Any, translator: Translator, parent: Any, out: _Out) -> Any:
    """Translate a field's sub-object; return what the parent's column holds (or None)."""
    kind = translator["translation-type"]
    if kind == VALUE:
        return _leaf(value, translator)
    if kind == HDICT:
        if translator.get("in-list"):
            ids = [_hdict(o, translator, parent, out) for o in (value or [])]
            return ids[0] if ids else None
        if value is None:
            return None
        return _hdict(value, translator, parent, out)
    if kind == VDICT:
        return _vdict(value, translator, parent, out)
    if kind == LIST:
        return _list(value, translator, parent, out)
    raise DriverError(f"unknown translation-type {kind!r}")


def _hdict(obj: Any, t: Translator, parent: Any, out: _Out) -> Any:
    selector = t.get("selector-type", DICT_SELECTOR)
    row: list[Any] = []
    subs: list[tuple[Any, Translator]] = []
    for field in t["field-translators"]:
        sub = field["translator"]
        value = _select(obj, field["fieldname"], selector)
        if sub["translation-type"] != VALUE and sub.get("parent-key") is not None:
            subs.append((value, sub))  # written after the row, keyed by our field
            continue
        row.append(_sub(value, sub, None, out) if sub["translation-type"] == VALUE
                   else _sub(value, sub, obj, out))
    lead, ident = _prefix(t, parent, row)
    out.add(t["table-name"], lead + tuple(row))
    for value, sub in subs:
        key = _select(obj, sub["parent-key"], selector)
        _sub(value, sub, key, out)
    return ident


def _vdict(obj: Any, t: Translator, parent: Any, out: _Out) -> Any:
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        raise DriverError(f"{t['table-name']}: expected an object, got {type(obj).__name__}",
                          status=502)
    lead, ident = _prefix(t, parent, obj)
    for key, value in obj.items():
        out.add(t["table-name"], lead + (scalar(key), _sub(value, t["translator"], None, out)))
    return ident


def _list(obj: Any, t: Translator, parent: Any, out: _Out) -> Any:
    if obj is None:
        return None
    if isinstance(obj, str | Mapping) or not isinstance(obj, Iterable):
        raise DriverError(f"{t['table-name']}: expected a list, got {type(obj).__name__}",
                          status=502)
    items = list(obj)
    lead, ident = _prefix(t, parent, items)
    for value in items:
        out.add(t["table-name"], lead + (_sub(value, t["translator"], None, out),))
    return ident


def schema(translator: Translator) -> dict[str, TableSpec]:
    """Every table a translator makes, with its columns in order (Congress's get_schema)."""
    tables: dict[str, TableSpec] = {}
    _schema(translator, tables)
    return tables


def _lead(t: Translator) -> list[Column]:
    if t.get("parent-key") is not None:
        return [Column(t.get("parent-col-name", "parent_key"), t.get("parent-key-desc", ""))]
    if t.get("id-col") is not None:
        return [Column(t["id-col"], "hash of the object's content")]
    return []


def _schema(t: Translator, tables: dict[str, TableSpec]) -> None:
    kind = t["translation-type"]
    if kind == VALUE:
        return
    columns = _lead(t)
    tables[t["table-name"]] = TableSpec(t["table-name"], ())  # parents before sub-tables
    if kind == HDICT:
        for field in t["field-translators"]:
            sub = field["translator"]
            if sub["translation-type"] != VALUE:
                _schema(sub, tables)
                if sub.get("parent-key") is not None:
                    continue
            columns.append(Column(field.get("col", field["fieldname"]), field.get("desc", "")))
    elif kind == VDICT:
        columns += [Column(t.get("key-col", "key")), Column(t.get("val-col", "value"))]
        if t["translator"]["translation-type"] != VALUE:
            _schema(t["translator"], tables)
    elif kind == LIST:
        columns.append(Column(t.get("val-col", "value"), t.get("val-col-desc", "")))
        if t["translator"]["translation-type"] != VALUE:
            _schema(t["translator"], tables)
    tables[t["table-name"]] = TableSpec(t["table-name"], tuple(columns))
