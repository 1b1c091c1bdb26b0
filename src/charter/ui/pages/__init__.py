"""The dashboard's pages, one module each; every module here with a ``router`` is served.

Each page module holds its routes (``router = APIRouter()``), reads through the service
under its lock, and renders a template of the same name (``violations.py`` ->
``templates/violations.html``; fragments htmx swaps start with ``_``).
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found
