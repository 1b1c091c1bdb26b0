"""The store's enabled packs: one row per pack, written whole (see ``tables.packs``).

Kept apart from ``store.py`` as a mixin of :class:`~charter.store.store.Store`, whose
transactions (``_tx``) it uses: each method is one transaction, as every store method is.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import asdict
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, insert, select, update

from charter.store import tables as t
from charter.store.errors import NotFound
from charter.store.records import PackRecord


class PackStore:
    """``put_pack``, ``delete_pack`` and ``list_packs`` for the Store."""

    if TYPE_CHECKING:  # provided by Store

        def _tx(self, *, write: bool) -> AbstractContextManager[Connection]: ...

    def put_pack(self, pack: PackRecord) -> None:
        """Record a pack as enabled, or replace the record of the pack with its id."""
        values = asdict(pack) | {
            "parameters": json.dumps(pack.parameters),
            "policies": json.dumps(list(pack.policies)),
        }
        with self._tx(write=True) as conn:
            if (
                conn.execute(update(t.packs).where(t.packs.c.id == pack.id).values(values)).rowcount
                == 0
            ):
                conn.execute(insert(t.packs).values(values))

    def delete_pack(self, pack_id: str) -> None:
        """Forget an enabled pack. NotFound if it is not recorded."""
        with self._tx(write=True) as conn:
            if conn.execute(delete(t.packs).where(t.packs.c.id == pack_id)).rowcount == 0:
                raise NotFound(f"pack {pack_id!r} is not enabled")

    def list_packs(self) -> list[PackRecord]:
        """Every enabled pack, in the order they were first enabled."""
        p = t.packs
        query = select(
            p.c.id, p.c.version, p.c.parameters, p.c.policies, p.c.enabled_by, p.c.enabled_at
        ).order_by(p.c.seq)
        with self._tx(write=False) as conn:
            return [
                PackRecord(
                    row.id,
                    row.version,
                    json.loads(row.parameters),
                    tuple(json.loads(row.policies)),
                    row.enabled_by,
                    row.enabled_at,
                )
                for row in conn.execute(query)
            ]
