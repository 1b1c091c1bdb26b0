"""An app over a real store (SQLite in a temp dir) and a TestClient that speaks to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.service.config import load_settings
from charter.service.service import Service
from charter.store import Store


def make_service(path: Path) -> Service:
    store = Store(f"sqlite:///{path / 'charter.db'}", secret_key=KEY)
    service = Service(store)
    service.start()
    return service


KEY = Store.generate_key()


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.delenv("CHARTER_CONFIG", raising=False)
    monkeypatch.setenv("CHARTER_DATA_DIR", str(tmp_path))
    return load_settings()


@pytest.fixture
def service(tmp_path) -> Iterator[Service]:
    svc = make_service(tmp_path)
    yield svc
    svc.close()


@pytest.fixture
def client(service, settings) -> Iterator[TestClient]:
    with TestClient(create_app(service, settings), raise_server_exceptions=False) as c:
        yield c
