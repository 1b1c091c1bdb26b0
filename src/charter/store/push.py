"""Push datasources' tables in the store: a base snapshot per table and a log of the changes
written since, so a push writes what changed, not the table.

- **Base** (``push_chunks``): the table's rows when it was last written whole, in blocks of
  :data:`CHUNK_ROWS` (:mod:`charter.store.blocks`: MessagePack, read back into tuples in C).
- **Log** (``push_log``): one entry per write since, the rows inserted and the rows deleted.
- A **write** (:meth:`PushStore.change_tables`) is one transaction; for each table it appends
  a log entry. The first rows of a table are its base; a change of at least :data:`FRACTION`
  of the table, when the caller gives the table's whole content after it (a ``PUT`` that
  replaced most rows), writes a new base instead: it costs about what the change costs.
- A **load** (:meth:`PushStore.load_tables`) reads base and log in one snapshot and replays
  the log over the base (:mod:`charter.store.replay`): each entry's deletions, then its
  insertions, with the set semantics of the engine's tables (``1``, ``1.0`` and ``True`` are
  one value; a row inserted twice or deleted when absent changes nothing).
- **Compaction** (:meth:`PushStore.compact_table`) folds the log into a new base once it holds
  more rows than :data:`FRACTION` of the base (or :data:`MAX_LOG_ENTRIES` entries): base and
  log read in one snapshot, replayed a block at a time, and written as the new base in one
  transaction that also deletes the entries it folded. A write that makes one due asks the
  store's background thread (:class:`Compactor`) for it and returns; it never waits for it.

Crash safety: a write and a compaction are each one transaction, and a compaction replaces
exactly the entries it read with a base holding their effect, so whatever is killed when, a
load finds every acknowledged write, whole.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, delete, insert, select, update

from charter.store import tables as t
from charter.store.blocks import encode_block
from charter.store.replay import Entry, LogEffect, replay

log = logging.getLogger(__name__)

CHUNK_ROWS = 1 << 16
"""Rows per block of a base: a million-row table is 16 database values, not one of 16 MB."""

FRACTION = 0.5
"""A table's log is folded into a new base once it holds more rows (inserted plus deleted)
than this fraction of the base's; a change with the table's content given, at least this
fraction of it, writes a new base at once."""

MIN_LOG_ROWS = 1024
"""Below this many logged rows a table is not compacted for its size (small tables)."""

MAX_LOG_ENTRIES = 256
"""A table is compacted once its log has more entries than this, whatever their size."""


class TableChange(NamedTuple):
    """What one write did to a pushed table."""

    inserted: Collection[tuple]
    deleted: Collection[tuple]
    rows: Collection[tuple] | Callable[[], Collection[tuple]] | None = None
    """The table's whole content after the change (or a function giving it, called only if
    needed), if the caller holds it: a change of at least :data:`FRACTION` of the table is
    then written as a new base instead of a log entry."""


Changes = Mapping[str, TableChange | tuple[Collection[tuple], Collection[tuple]]]
"""Table name -> its change: a :class:`TableChange`, or ``(inserted, deleted)``."""


class PushStore:
    """The pushed-table methods of :class:`~charter.store.store.Store` (a mixin)."""

    if TYPE_CHECKING:  # provided by Store
        _compactor: Compactor
        _closed: bool

        def _tx(
            self, *, write: bool, snapshot: bool = False
        ) -> AbstractContextManager[Connection]: ...

        @staticmethod
        def _require_datasource(conn: Connection, ds_id: str) -> None: ...

    def replace_table(self, ds_id: str, table: str, rows: Sequence[tuple]) -> None:
        """Make ``rows`` the whole content of a pushed table. NotFound for an unknown datasource."""
        self.replace_tables(ds_id, {table: rows})

    def replace_tables(self, ds_id: str, tables: Mapping[str, Sequence[tuple]]) -> None:
        """Make each of ``tables`` (name -> rows) the whole content of that pushed table, all
        in one transaction: each is written as a new base. NotFound for an unknown datasource;
        TypeError for a value no row may hold, before anything is written."""
        bases = {table: _chunks(rows) for table, rows in tables.items()}
        with self._tx(write=True) as conn:
            self._require_datasource(conn, ds_id)
            for table, (chunks, count) in sorted(bases.items()):
                _write_base(conn, _table(conn, ds_id, table).seq, chunks, count)

    def change_tables(self, ds_id: str, changes: Changes) -> None:
        """Write what changed in pushed tables (name -> :class:`TableChange`, or
        ``(inserted, deleted)``), all in one transaction. A table named with no change is
        still recorded as pushed. NotFound for an unknown datasource; TypeError for a value
        no row may hold (nothing is written).

        The rows are the engine's difference: an inserted row already stored, or a deleted
        one not stored, is not an error (the load's replay has set semantics).
        """
        due: list[int] = []
        with self._tx(write=True) as conn:
            self._require_datasource(conn, ds_id)
            for name, change in sorted(changes.items()):  # one lock order for every writer
                table = _table(conn, ds_id, name)
                if _write_change(conn, table, TableChange(*change)):
                    due.append(table.seq)
        for seq in due:
            self._compactor.request(seq)

    def load_tables(self, ds_id: str) -> dict[str, list[tuple]]:
        """Every pushed table of a datasource, by name: its base with its log replayed.
        NotFound for an unknown datasource."""
        pt, pc, pl = t.push_tables, t.push_chunks, t.push_log
        mine = pt.c.datasource_id == ds_id
        with self._tx(write=False, snapshot=True) as conn:
            self._require_datasource(conn, ds_id)
            names = conn.execute(select(pt.c.seq, pt.c.name).where(mine).order_by(pt.c.seq)).all()
            chunks = conn.execute(
                select(pc.c.table_seq, pc.c.data)
                .join(pt, pt.c.seq == pc.c.table_seq)
                .where(mine)
                .order_by(pc.c.table_seq, pc.c.part)
            ).all()
            entries = conn.execute(
                select(pl.c.table_seq, pl.c.inserted, pl.c.deleted)
                .join(pt, pt.c.seq == pl.c.table_seq)
                .where(mine)
                .order_by(pl.c.seq)
            ).all()
        bases: dict[int, list[bytes]] = {seq: [] for seq, _ in names}
        for seq, data in chunks:
            bases[seq].append(data)
        logs: dict[int, list[Entry]] = {}
        for seq, inserted, deleted in entries:
            logs.setdefault(seq, []).append((inserted, deleted))
        return {name: replay(bases[seq], logs.get(seq, ()))[0] for seq, name in names}

    def _closing(self) -> bool:
        return self._closed

    def compact_tables(self, ds_id: str) -> int:
        """Fold the log of each of a datasource's pushed tables into a new base now (what the
        background thread does when a log has grown): how many tables were compacted."""
        pt = t.push_tables
        query = select(pt.c.seq).where(pt.c.datasource_id == ds_id, pt.c.log_entries > 0)
        with self._tx(write=False) as conn:
            self._require_datasource(conn, ds_id)
            seqs = conn.scalars(query.order_by(pt.c.seq)).all()
        return sum(self.compact_table(seq) for seq in seqs)

    def compact_table(self, seq: int, *, if_due: bool = False) -> bool:
        """Fold a pushed table's log (``push_tables.seq``) into a new base; whether it did.
        ``if_due``: only if the log has grown enough (the background thread's calls: writes
        made while a compaction ran ask again for what it may have folded already).

        The read (base and log in one snapshot) and the replay hold no lock; the write is one
        transaction that replaces the base and deletes exactly the entries read, and is
        skipped if the table got a new base meanwhile (``version``) or an entry that sorts
        among those read (another process's write). Entries written after the read stay in
        the log, to be replayed over the new base.
        """
        pt, pc, pl = t.push_tables, t.push_chunks, t.push_log
        with self._tx(write=False, snapshot=True) as conn:
            state = conn.execute(
                select(pt.c.version, pt.c.base_rows, pt.c.log_rows, pt.c.log_entries).where(
                    pt.c.seq == seq
                )
            ).first()
            if state is None or (if_due and not _due(*state[1:])):
                return False
            version = state.version
            chunks = conn.scalars(
                select(pc.c.data).where(pc.c.table_seq == seq).order_by(pc.c.part)
            ).all()
            entries = conn.execute(
                select(pl.c.seq, pl.c.inserted, pl.c.deleted)
                .where(pl.c.table_seq == seq)
                .order_by(pl.c.seq)
            ).all()
        if not entries:
            return False
        done = _compacted(chunks, [(ins, dels) for _, ins, dels in entries], self._closing)
        if done is None:
            return False  # the store is closing: the log stays as it is
        blocks, count, folded = done
        ids = [s for s, _, _ in entries]
        with self._tx(write=True) as conn:
            now = conn.scalar(select(pt.c.version).where(pt.c.seq == seq).with_for_update())
            if now != version:
                return False
            present = conn.scalars(
                select(pl.c.seq).where(pl.c.table_seq == seq, pl.c.seq <= ids[-1])
            ).all()
            if sorted(present) != ids:
                return False
            conn.execute(delete(pc).where(pc.c.table_seq == seq))
            _insert_chunks(conn, seq, blocks)
            conn.execute(delete(pl).where(pl.c.table_seq == seq, pl.c.seq <= ids[-1]))
            conn.execute(
                update(pt)
                .where(pt.c.seq == seq)
                .values(
                    base_rows=count,
                    log_rows=pt.c.log_rows - folded,
                    log_entries=pt.c.log_entries - len(ids),
                    version=pt.c.version + 1,
                )
            )
        return True


# ---------------------------------------------------------------- writing


class _Table(NamedTuple):
    seq: int
    base_rows: int
    log_rows: int
    log_entries: int


def _table(conn: Connection, ds_id: str, table: str) -> _Table:
    """A datasource's pushed table (recorded now if new), locked for this transaction
    (PostgreSQL: ``FOR UPDATE``, so a compaction in another process waits for the write)."""
    pt = t.push_tables
    query = (
        select(pt.c.seq, pt.c.base_rows, pt.c.log_rows, pt.c.log_entries)
        .where(pt.c.datasource_id == ds_id, pt.c.name == table)
        .with_for_update()
    )
    row = conn.execute(query).first()
    if row is None:
        conn.execute(insert(pt).values(datasource_id=ds_id, name=table))
        row = conn.execute(query).one()
    return _Table(*row)


def _due(base_rows: int, log_rows: int, log_entries: int) -> bool:
    """Whether a table's log should be folded into a new base."""
    return log_rows > max(FRACTION * base_rows, MIN_LOG_ROWS) or log_entries > MAX_LOG_ENTRIES


def _write_change(conn: Connection, table: _Table, change: TableChange) -> bool:
    """Write one table's change (see the module's docstring); whether its log is now due
    for compaction. Encoded here, in the transaction: a value no row may hold raises
    TypeError, which rolls the whole write back."""
    inserted = change.inserted if isinstance(change.inserted, list) else list(change.inserted)
    deleted = change.deleted if isinstance(change.deleted, list) else list(change.deleted)
    size = len(inserted) + len(deleted)
    if not size:
        return False
    if not (table.base_rows or table.log_entries or deleted):  # a new (or emptied) table
        _write_base(conn, table.seq, *_chunks(inserted), empty=True)
        return False
    # a bound on the table's size: a change of at least FRACTION of it is written whole
    if change.rows is not None and size >= FRACTION * (
        table.base_rows + table.log_rows + len(inserted)
    ):
        rows = change.rows() if callable(change.rows) else change.rows
        _write_base(conn, table.seq, *_chunks(rows))
        return False
    pt = t.push_tables
    conn.execute(
        insert(t.push_log).values(
            table_seq=table.seq, inserted=encode_block(inserted), deleted=encode_block(deleted)
        )
    )
    conn.execute(
        update(pt)
        .where(pt.c.seq == table.seq)
        .values(log_rows=pt.c.log_rows + size, log_entries=pt.c.log_entries + 1)
    )
    return _due(table.base_rows, table.log_rows + size, table.log_entries + 1)


def _compacted(
    base: Sequence[bytes], entries: list[Entry], stop: Callable[[], bool] = lambda: False
) -> tuple[list[bytes], int, int] | None:
    """The blocks of the new base the log ``entries`` make of ``base``, its row count, and
    how many rows the entries named; a block of the base decoded at a time. None if
    ``stop()`` turned true between two blocks."""
    effect = LogEffect(entries)
    blocks: list[bytes] = []
    count, buffer = 0, []
    for rows in effect.over(base):
        if stop():
            return None
        # blocks of CHUNK_ROWS / 2 to 3/2 CHUNK_ROWS: a base block that lost a few rows is
        # written as it is, one that lost many joins the next
        for i in range(0, len(rows), CHUNK_ROWS):
            part = rows if len(rows) <= CHUNK_ROWS else rows[i : i + CHUNK_ROWS]
            buffer = buffer + part if buffer else part
            if len(buffer) >= CHUNK_ROWS // 2:
                blocks.append(encode_block(buffer, checked=True))
                count, buffer = count + len(buffer), []
    if buffer:
        blocks.append(encode_block(buffer, checked=True))
        count += len(buffer)
    return blocks, count, effect.named


def _chunks(rows: Iterable[tuple]) -> tuple[list[bytes], int]:
    """A base's blocks and its row count (TypeError for a value no row may hold)."""
    rows = rows if isinstance(rows, list) else list(rows)
    blocks = [encode_block(rows[i : i + CHUNK_ROWS]) for i in range(0, len(rows), CHUNK_ROWS)]
    return blocks, len(rows)


def _insert_chunks(conn: Connection, seq: int, blocks: list[bytes]) -> None:
    if blocks:
        conn.execute(
            insert(t.push_chunks),
            [{"table_seq": seq, "part": i, "data": data} for i, data in enumerate(blocks)],
        )


def _write_base(
    conn: Connection, seq: int, blocks: list[bytes], count: int, *, empty: bool = False
) -> None:
    """Make ``blocks`` the table's base and empty its log (``empty``: it has neither)."""
    pt = t.push_tables
    if not empty:
        conn.execute(delete(t.push_chunks).where(t.push_chunks.c.table_seq == seq))
        conn.execute(delete(t.push_log).where(t.push_log.c.table_seq == seq))
    _insert_chunks(conn, seq, blocks)
    conn.execute(
        update(pt)
        .where(pt.c.seq == seq)
        .values(base_rows=count, log_rows=0, log_entries=0, version=pt.c.version + 1)
    )


# ---------------------------------------------------------------- the background thread


class Compactor:
    """One daemon thread running the compactions writes ask for, one table at a time.

    A failed compaction is logged and dropped: the log stays as it is (a load replays it), and
    the next write that finds the table due asks again.
    """

    def __init__(self, compact: Callable[[int], Any]) -> None:
        self._compact = compact
        self._pending: dict[int, None] = {}
        self._busy = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def request(self, seq: int) -> None:
        """Compact the table ``seq`` soon (once, however often it is asked before)."""
        with self._cond:
            if self._closed:
                return
            self._pending[seq] = None
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="charter-store-compactor", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def wait(self) -> None:
        """Return once every compaction asked for has run (or the compactor is closed)."""
        with self._cond:
            while (self._pending or self._busy) and not self._closed:
                self._cond.wait()

    def close(self) -> None:
        """Stop (the store is closing): a compaction running is abandoned between two blocks,
        or finishes its write; none starts after."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                seq = next(iter(self._pending))
                del self._pending[seq]
                self._busy = True
            try:
                self._compact(seq)
            except Exception:
                if not self._closed:
                    log.exception("compacting pushed table %s failed; its log is kept", seq)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
