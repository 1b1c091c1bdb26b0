"""The installed drivers: Charter's own and third parties', found by entry points.

A package adds a driver by declaring it in the ``charter.drivers`` entry-point group
(``mydriver = mypackage.driver:MyDriver``); ``charter serve`` finds it at start.
"""

from __future__ import annotations

import difflib
import logging
from functools import cache
from importlib.metadata import entry_points

from charter.datasources.driver import Driver, DriverError
from charter.datasources.push import PushDriver

log = logging.getLogger(__name__)

GROUP = "charter.drivers"
BUILTIN: tuple[type[Driver], ...] = (PushDriver,)


@cache
def drivers() -> dict[str, type[Driver]]:
    """Driver id -> class: the built-in drivers, then those declared by entry points."""
    found: dict[str, type[Driver]] = {d.driver: d for d in BUILTIN}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plug-in must not stop the service
            log.error("driver %s (%s) failed to load: %s", ep.name, ep.value, exc)
            continue
        if isinstance(cls, type) and issubclass(cls, Driver):
            found[ep.name] = cls
        else:
            log.error("entry point %s = %s is not a charter Driver class", ep.name, ep.value)
    return found


def driver_class(name: str) -> type[Driver]:
    known = drivers()
    if name in known:
        return known[name]
    hint = difflib.get_close_matches(name, list(known), n=1)
    more = f"; did you mean {hint[0]}?" if hint else ""
    raise DriverError(
        f"no driver named {name!r}{more} (installed: {', '.join(sorted(known))})", status=404
    )
