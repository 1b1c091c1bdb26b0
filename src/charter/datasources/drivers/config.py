"""Reading a driver's config: typed values with errors that name the key and the fix.

Shared by the drivers configured with free-form JSON (``http``, ``prometheus``, ``sql``):
numbers, flags, URLs without credentials, name -> string maps, the ``tables`` map, and
scrubbing secrets out of error text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from charter.datasources.driver import Driver, DriverError

TABLE_NAME = re.compile(r"^[A-Za-z_][\w\-]*$")
HIDDEN = "<hidden>"


def json_value(driver: Driver, key: str, default: Any = None) -> Any:
    """Config ``key``; JSON text is parsed (the CLI passes ``--config key='{...}'`` as text)."""
    value = driver.config.get(key, default)
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise DriverError(f"datasource {driver.name}: config {key!r} is not valid JSON "
                              f"({exc.msg} at column {exc.colno})") from None
    return value


def number(driver: Driver, key: str, default: float, minimum: float = 0.0,
           unit: str = "seconds") -> float:
    """Config ``key`` as a number above ``minimum`` (text like ``"5"`` is accepted)."""
    value = driver.config.get(key, default)
    try:
        result = float(value)
    except (TypeError, ValueError):
        result = math.nan
    if not result > minimum or math.isinf(result) or isinstance(value, bool):
        raise DriverError(f"datasource {driver.name}: config {key!r} must be a number above "
                          f"{minimum:g} ({unit}), got {value!r}")
    return result


def flag(driver: Driver, key: str, default: bool) -> bool:
    value = driver.config.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    if not isinstance(value, bool):
        raise DriverError(f"datasource {driver.name}: config {key!r} must be true or false, "
                          f"got {value!r}")
    return value


def service_url(driver: Driver, key: str) -> str:
    """Config ``key`` as an http(s) URL without credentials in it (the API shows URLs)."""
    value = driver.config.get(key)
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise DriverError(f"datasource {driver.name}: config {key!r} must be an http(s) URL "
                          f"like https://host:port, got {value!r}")
    if parts.username is not None or parts.password is not None or parts.query:
        raise DriverError(f"datasource {driver.name}: config {key!r} must not hold "
                          "credentials or a query (the API shows it to every viewer); use the "
                          "auth, header or token/password config keys, which are encrypted "
                          "and hidden")
    return value.rstrip("/")


def string_map(driver: Driver, key: str) -> dict[str, str]:
    value = json_value(driver, key) or {}
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise DriverError(f"datasource {driver.name}: config {key!r} must map names to "
                          'strings, e.g. {"X-Api-Key": "..."}')
    return dict(value)


def table_map(driver: Driver, example: str) -> dict[str, dict]:
    """Config ``tables``: {table name: {...}} with names rules can use."""
    tables = json_value(driver, "tables")
    if not isinstance(tables, Mapping) or not tables:
        raise DriverError(f"datasource {driver.name}: config 'tables' must map each table "
                          f"name to its definition, e.g. {example}")
    for name, spec in tables.items():
        if not isinstance(name, str) or not TABLE_NAME.match(name):
            raise DriverError(f"datasource {driver.name}: table name {name!r} must be letters, "
                              "digits, '_' and '-', starting with a letter or '_'")
        if not isinstance(spec, Mapping):
            raise DriverError(f"datasource {driver.name}: table {name} must be a JSON object, "
                              f"e.g. {example}")
    return dict(tables)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``<hidden>`` (errors can echo them)."""
    for secret in sorted((s for s in secrets if s and len(s) >= 6), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text
