"""The app in-process with static tokens (a viewer, an editor, an admin), and a TestClient
per role logged in to the dashboard: for the Datasources and Enforcement page tests.

The fixtures carry a ``pds_`` prefix: they are loaded as a plugin (``pytest_plugins``), so
names shared with a conftest of tests/ui would be shadowed by it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.service.config import load_settings
from charter.service.service import Service
from tests.api.conftest import make_service

TOKENS = {"viewer": "pds-viewer-0123456789", "editor": "pds-editor-0123456789",
          "admin": "pds-admin-0123456789"}


@pytest.fixture
def pds_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """(app, service) with ``auth.strategy = "token"``."""
    (tmp_path / "tokens.toml").write_text("".join(
        f'[[tokens]]\nname = "{role}-user"\nrole = "{role}"\ntoken = "{token}"\n\n'
        for role, token in TOKENS.items()))
    (tmp_path / "charter.toml").write_text(
        '[auth]\nstrategy = "token"\ntokens_file = "tokens.toml"\n')
    for name in ("CHARTER_CONFIG", "CHARTER_HOST", "CHARTER_AUTH__STRATEGY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHARTER_DATA_DIR", str(tmp_path))
    settings = load_settings(tmp_path / "charter.toml")
    service = make_service(tmp_path)
    try:
        yield create_app(service, settings), service
    finally:
        service.close()


@pytest.fixture
def pds_service(pds_app) -> Service:
    return pds_app[1]


@pytest.fixture
def pds_login(pds_app) -> Iterator[Callable[[str], TestClient]]:
    """``login(role)``: a TestClient with that role's dashboard session."""
    clients: list[TestClient] = []

    def make(role: str) -> TestClient:
        client = TestClient(pds_app[0], raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        r = client.post("/ui/login", data={"token": TOKENS[role], "next": "/ui/"},
                        follow_redirects=False)
        assert r.status_code == 303, r.text
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def csrf(client: TestClient, page: str = "/ui/datasources") -> str:
    """The session's CSRF token, read from a page as a form carries it."""
    found = re.search(r'data-csrf="([^"]+)"', client.get(page).text)
    assert found, "no CSRF token in the page"
    return found.group(1)


class Elements(HTMLParser):
    """Every start tag's attributes, and the text inside elements with a data-testid."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def testid(self, name: str) -> list[dict[str, str]]:
        return [a for _, a in self.tags if a.get("data-testid") == name]

    def named(self, name: str) -> list[tuple[str, dict[str, str]]]:
        return [(t, a) for t, a in self.tags if a.get("name") == name]


def text(html: str) -> str:
    """The page's text with tags dropped and whitespace folded (for message checks)."""
    import html as htmllib

    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", html)))
