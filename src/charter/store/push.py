"""The rows of push datasources' tables, kept one database row per row (``tables.push_rows``).

A push of a 100k-row table of which 1% changed writes those 1%: the service hands over the
rows it inserted and deleted (:meth:`PushStore.change_tables`), found by their set key
(:func:`~charter.store.rows.keyed_rows`). Kept apart from ``store.py`` as a mixin of
:class:`~charter.store.store.Store`, whose transactions (``_tx``) it uses: each method is one
transaction, as every store method is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, insert, select

from charter.store import tables as t
from charter.store.rows import decode_rows, keyed_rows

_CHUNK = 500  # keys per IN (...) list: far below SQLite's and PostgreSQL's parameter limits

Changes = Mapping[str, tuple[Sequence[tuple], Sequence[tuple]]]
"""Table name -> (rows inserted, rows deleted)."""


class PushStore:
    """``replace_table(s)``, ``change_tables`` and ``load_tables`` for the Store."""

    if TYPE_CHECKING:  # provided by Store

        def _tx(self, *, write: bool) -> AbstractContextManager[Connection]: ...

        @staticmethod
        def _require_datasource(conn: Connection, ds_id: str) -> None: ...

    def replace_table(self, ds_id: str, table: str, rows: Sequence[tuple]) -> None:
        """Make ``rows`` the whole content of a pushed table. NotFound for an unknown datasource."""
        self.replace_tables(ds_id, {table: rows})

    def replace_tables(self, ds_id: str, tables: Mapping[str, Sequence[tuple]]) -> None:
        """Make each of ``tables`` (name -> rows) the whole content of that pushed table, all
        in one transaction. Rewrites every row: the service writes pushes with
        :meth:`change_tables`. NotFound for an unknown datasource."""
        keyed = {table: keyed_rows(rows) for table, rows in tables.items()}  # TypeError first
        with self._tx(write=True) as conn:
            self._require_datasource(conn, ds_id)
            for table, rows in keyed.items():
                seq = _table_seq(conn, ds_id, table)
                conn.execute(delete(t.push_rows).where(t.push_rows.c.table_seq == seq))
                _insert(conn, seq, rows)

    def change_tables(self, ds_id: str, changes: Changes) -> None:
        """Insert and delete rows of pushed tables (name -> (inserted, deleted)), all in one
        transaction; deletions first, so a row may be deleted and inserted with another type.
        A table named with no rows is still recorded as pushed. NotFound for an unknown
        datasource. An inserted row already stored, or a deleted one not stored, is not an
        error: the rows end up stored or not, as the service's engine holds them."""
        keyed = {
            table: (keyed_rows(inserted), keyed_rows(deleted))
            for table, (inserted, deleted) in changes.items()
        }
        pr = t.push_rows
        with self._tx(write=True) as conn:
            self._require_datasource(conn, ds_id)
            for table, (inserted, deleted) in keyed.items():
                seq = _table_seq(conn, ds_id, table)
                keys = list(deleted)
                for i in range(0, len(keys), _CHUNK):
                    chunk = keys[i : i + _CHUNK]
                    conn.execute(delete(pr).where(pr.c.table_seq == seq, pr.c.row_key.in_(chunk)))
                _insert(conn, seq, inserted)

    def load_tables(self, ds_id: str) -> dict[str, list[tuple]]:
        """Every pushed table of a datasource, by name, its rows in the order they were
        first stored. NotFound for an unknown datasource."""
        pt, pr = t.push_tables, t.push_rows
        names = select(pt.c.seq, pt.c.name).where(pt.c.datasource_id == ds_id).order_by(pt.c.seq)
        with self._tx(write=False) as conn:
            self._require_datasource(conn, ds_id)
            tables = dict(conn.execute(names).all())
            # one table at a time in key order (no sort of the rows), fetched at once
            texts = {
                seq: conn.scalars(
                    select(pr.c.row).where(pr.c.table_seq == seq).order_by(pr.c.seq)
                ).all()
                for seq in tables
            }
        # one json.loads per table, not one per row
        return {tables[seq]: decode_rows("[" + ",".join(rows) + "]") for seq, rows in texts.items()}


def _table_seq(conn: Connection, ds_id: str, table: str) -> int:
    """The ``push_tables`` key of a datasource's table, recording the table if it is new."""
    pt = t.push_tables
    seq = conn.scalar(select(pt.c.seq).where(pt.c.datasource_id == ds_id, pt.c.name == table))
    if seq is None:
        seq = conn.execute(insert(pt).values(datasource_id=ds_id, name=table)).inserted_primary_key[
            0
        ]
    return seq


def _insert(conn: Connection, seq: int, rows: Mapping[str, str]) -> None:
    """Insert rows; one already stored is left as it is (a revived push datasource's poll
    re-applies the rows it was restored from).

    One ``executemany`` of the driver's own statement: SQLAlchemy's compiled insert of a
    100k-row first push took seconds building its parameters.
    """
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO {t.push_rows.name} (table_seq, row_key, row) VALUES ({mark}, {mark}, "
        f"{mark}) ON CONFLICT (table_seq, row_key) DO NOTHING",
        [(seq, key, row) for key, row in rows.items()],
    )
