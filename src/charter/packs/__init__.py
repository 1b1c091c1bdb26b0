"""Compliance packs: a folder of policies whose tables are controls, with their metadata.

A pack is ``pack.yaml`` (what it is, what it reads, its parameters and its controls; see
:mod:`charter.packs.spec`), its Datalog policies (``*.dl``) and its test cases
(``*_test.yaml``, run by ``charter pack test``). Every control is one table of
violations, with a stable id, a severity, why it matters and what to do about it.

- :mod:`charter.packs.spec`: ``pack.yaml``'s schema and its located errors;
- :mod:`charter.packs.load`: reading and checking a pack folder;
- :mod:`charter.packs.build`: the policy each control becomes, parameters as facts;
- :mod:`charter.packs.registry`: the installed packs (Charter's and ``charter.packs``
  entry points);
- :mod:`charter.packs.docs`: the controls table of ``docs/packs.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charter.packs.load import Pack, load_pack
    from charter.packs.spec import PackError

__all__ = ["Pack", "PackError", "load_pack"]

_LAZY = {
    "Pack": "charter.packs.load",
    "load_pack": "charter.packs.load",
    "PackError": "charter.packs.spec",
}


def __getattr__(name: str) -> Any:
    """``Pack``, ``load_pack`` and ``PackError`` on first use: importing a submodule such
    as :mod:`charter.packs.schemas` (which ``charter eval`` needs) then skips the pack
    loader and its pydantic models."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
