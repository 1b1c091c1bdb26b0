"""The lock file beside a SQLite database (``PATH.lock``): who may swap the file.

An open store and a running backup hold it shared for as long as they use the database;
``charter restore`` takes it exclusively while it puts another file in place, so it never
swaps a database from under a server (whose open file handles would keep writing to the
replaced file). An ``flock`` lock: the kernel drops it when its process dies, so a crashed
server leaves no stale lock behind.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; restore cannot check
    fcntl = None  # type: ignore[assignment]

SUFFIX = ".lock"


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + SUFFIX)


class FileLock:
    """One hold on a database's lock file; :meth:`release` (or process exit) drops it."""

    def __init__(self, database: Path, *, exclusive: bool, timeout: float) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (0: do not wait).

        Raises:
            BlockingIOError: another process (or store) holds it in a conflicting way.
            OSError: the lock file cannot be created (e.g. its directory is missing).
        """
        self.path = lock_path(database)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is None:
            return
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(self._fd, mode)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.release()
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.25)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
