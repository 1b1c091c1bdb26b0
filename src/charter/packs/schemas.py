"""The tables and columns of the drivers a pack reads, to check and compile its rules.

The installed driver's own tables come first (Charter's drivers, including those with no
Congress counterpart such as ceph and kubernetes, and tables a newer driver added); then
Congress's schema of that driver id. A driver whose tables come from each datasource's
config (push, sql, http) has none: a pack reads its tables by position.

This is the one place a pack looks at ``charter.datasources`` (its driver registry and its
schemas are data for packs), so that a pack's named columns resolve as a live datasource's.
"""

from __future__ import annotations

import functools

from charter.datasources.driver import DriverError
from charter.datasources.registry import driver_class
from charter.datasources.schemas import driver_schema

__all__ = ["driver_tables"]


@functools.cache
def driver_tables(driver: str) -> dict[str, tuple[str, ...]] | None:
    """Table -> columns of ``driver``, or None when they are not known in advance.

    >>> driver_tables("nova")["flavors"]
    ('id', 'name', 'vcpus', 'ram', 'disk', 'ephemeral', 'rxtx_factor')
    >>> driver_tables("push") is None
    True
    """
    try:
        tables = {t.name: tuple(t.column_names) for t in driver_class(driver).static_tables()}
    except DriverError:
        tables = {}
    if tables:
        return tables
    try:
        return driver_schema(driver)
    except LookupError:
        return None
