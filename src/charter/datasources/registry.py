"""The installed drivers: Charter's own and third parties', found by entry points.

A package adds a driver by declaring it in the ``charter.drivers`` entry-point group
(``mydriver = mypackage.driver:MyDriver``); ``charter serve`` finds it at start.
"""

from __future__ import annotations

import difflib
import logging
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from charter.datasources.driver import Driver, DriverError
from charter.datasources.push import PushDriver

log = logging.getLogger(__name__)

GROUP = "charter.drivers"
BUILTIN: tuple[type[Driver], ...] = (PushDriver,)


@cache
def drivers() -> dict[str, type[Driver]]:
    """Driver id -> class: the built-in drivers, then those declared by entry points (each
    imported: listing them all costs every driver's imports, seconds for some clients)."""
    found: dict[str, type[Driver]] = {d.driver: d for d in BUILTIN}
    for ep in entry_points(group=GROUP):
        if ep.name not in found:
            cls = _load(ep)
            if cls is not None:
                found[ep.name] = cls
    return found


@cache
def _named(name: str) -> type[Driver] | None:
    """One driver by id, importing only its own module (a start over a push and a Nova
    datasource need not import the Kubernetes client)."""
    for cls in BUILTIN:
        if cls.driver == name:
            return cls
    for ep in entry_points(group=GROUP, name=name):
        return _load(ep)
    return None


def _load(ep: EntryPoint) -> type[Driver] | None:
    try:
        cls = ep.load()
    except Exception as exc:  # a broken plug-in must not stop the service
        log.error("driver %s (%s) failed to load: %s", ep.name, ep.value, exc)
        return None
    if isinstance(cls, type) and issubclass(cls, Driver):
        return cls
    log.error("entry point %s = %s is not a charter Driver class", ep.name, ep.value)
    return None


def driver_class(name: str) -> type[Driver]:
    found = _named(name)
    if found is not None:
        return found
    known = drivers()
    if name in known:
        return known[name]
    hint = difflib.get_close_matches(name, list(known), n=1)
    more = f"; did you mean {hint[0]}?" if hint else ""
    raise DriverError(
        f"no driver named {name!r}{more} (installed: {', '.join(sorted(known))})", status=404
    )
