"""In-process services over a SQLite file, restartable, with the ledger driver installed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from charter.datasources import registry
from charter.datasources.push import PushDriver
from charter.service.config import EnforcementSettings, NotificationSettings
from charter.service.service import Service
from charter.store import Store
from tests.enforce.ledger import Ledger, LedgerDriver

MakeService = Callable[..., Service]


@pytest.fixture
def make_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeService]:
    """``make_service(**enforcement)`` starts a Service on the same database each time: close
    the last one and call it again to restart."""
    monkeypatch.setattr(registry, "drivers",
                        lambda: {"push": PushDriver, "ledger": LedgerDriver})
    key = Store.generate_key()
    started: list[Service] = []

    def make(notifications: NotificationSettings | None = None, **enforcement) -> Service:
        settings = EnforcementSettings(**({"backoff_seconds": 0.05} | enforcement))
        store = Store(f"sqlite:///{tmp_path / 'charter.db'}", secret_key=key)
        service = Service(store, enforcement=settings, notifications=notifications)
        service.start()
        started.append(service)
        return service

    yield make
    for service in started:
        service.close()  # again, for those the test closed itself: a no-op


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    directory = tmp_path / "ledger"
    directory.mkdir()
    return Ledger(directory)


def wait_for(check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
