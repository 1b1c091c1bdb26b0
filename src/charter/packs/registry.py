"""The installed packs: Charter's own (``charter/packs/builtin/*``) and third parties'.

A third party ships packs in its distribution and names them in the ``charter.packs``
entry-point group; the entry point's object is a pack folder (a ``str``, a ``Path`` or an
``importlib.resources`` traversable), or a callable returning one folder or a list::

    [project.entry-points."charter.packs"]
    acme-hardening = "acme_charter.packs:PACK_FOLDER"    # PACK_FOLDER = Path(__file__).parent / "hardening"

A pack that does not load is listed with its errors (``charter pack list`` shows them), so
a broken pack is seen rather than silently missing; two packs of one id keep the first
(Charter's own come first) and report the second.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

from charter.lang.errors import Diagnostic
from charter.packs.load import PACK_FILE, Pack, load_pack
from charter.packs.spec import PackError

__all__ = ["ENTRY_POINT_GROUP", "BrokenPack", "Installed", "builtin_folder", "installed_packs"]

ENTRY_POINT_GROUP = "charter.packs"


@dataclass(frozen=True)
class BrokenPack:
    """A pack that was found but cannot be used, and why."""

    name: str  # the folder's name, or the entry point's
    origin: str
    error: str
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass
class Installed:
    """Every installed pack by id, and those that did not load."""

    packs: dict[str, Pack] = field(default_factory=dict)
    broken: list[BrokenPack] = field(default_factory=list)

    def get(self, ref: str) -> Pack | None:
        return self.packs.get(ref)


def builtin_folder() -> Path:
    return Path(str(resources.files("charter") / "packs" / "builtin"))


def _pack_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(_shown(p) for p in folder.iterdir() if (p / PACK_FILE).is_file())


def _shown(path: Path) -> Path:
    """``path`` relative to the working folder when it is under it (as messages show it)."""
    try:
        relative = Path(os.path.relpath(path))
    except ValueError:  # another drive
        return path
    return path if relative.parts[:1] == ("..",) else relative


def _entry_point_folders(ep: metadata.EntryPoint) -> list[Path]:
    """The folders an entry point names (its object, or what calling it returns)."""
    value = ep.load()
    if callable(value) and not isinstance(value, str | os.PathLike):
        value = value()
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        if not isinstance(item, str | os.PathLike) and not hasattr(item, "joinpath"):
            raise TypeError(
                f"{item!r} is not a folder: give a str or a Path (or a callable returning them)"
            )
        out.append(Path(str(item)))
    return out


def _origin(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    where = f" from {dist.name} {dist.version}" if dist is not None else ""
    return f"entry point {ep.name} ({ep.value}){where}"


def installed_packs(
    entry_points: Callable[[], Iterable[metadata.EntryPoint]] | None = None,
) -> Installed:
    """Load every installed pack: Charter's own, then each ``charter.packs`` entry point's.

    ``entry_points`` lists the group's entry points (by default from the installed
    distributions; tests give their own).
    """
    found = Installed()
    sources: list[tuple[str, str, Path | None, str | None]] = [
        (p.name, "charter", p, None) for p in _pack_folders(builtin_folder())
    ]
    eps = (
        entry_points()
        if entry_points is not None
        else metadata.entry_points(group=ENTRY_POINT_GROUP)
    )
    for ep in sorted(eps, key=lambda e: e.name):
        try:
            folders = _entry_point_folders(ep)
        except Exception as exc:  # noqa: BLE001 - a third party's code: report, go on
            sources.append(
                (
                    ep.name,
                    _origin(ep),
                    None,
                    f"entry point {ep.name} ({ep.value}) did not load: {type(exc).__name__}: {exc}",
                )
            )
            continue
        sources += [(ep.name, _origin(ep), f, None) for f in folders]
    for name, origin, folder, problem in sources:
        if folder is None:
            found.broken.append(BrokenPack(name, origin, problem or ""))
            continue
        try:
            pack = load_pack(folder, origin)
        except PackError as exc:
            found.broken.append(BrokenPack(name, origin, exc.summary(), tuple(exc.diagnostics)))
            continue
        other = found.packs.get(pack.id)
        if other is not None:
            found.broken.append(
                BrokenPack(
                    name,
                    origin,
                    f"pack id {pack.id} is also the id of the pack from "
                    f"{other.origin} ({other.folder}); this one is not used",
                )
            )
            continue
        found.packs[pack.id] = pack
    return found
