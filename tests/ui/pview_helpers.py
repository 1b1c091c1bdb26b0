"""What the Violations, Explain and Overview page tests share: an app over a real store with
a push datasource and a policy whose ``error`` rows are violations, a session logged in
with a static token, and a small HTML reader (stdlib html.parser: lxml is not a
dependency)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.service.config import Settings, load_settings
from charter.service.service import Service

TOKENS = {"admin": "adm-0123456789", "editor": "edt-0123456789", "viewer": "vwr-0123456789"}
SERVERS = ["id", "status", "tenant"]
RULES = [
    {"rule": 'error(vm, t) :- inv:servers(id=vm, status="ERROR", tenant=t), not trusted(t)',
     "name": "broken-vm", "comment": "servers in ERROR outside trusted tenants"},
    {"rule": 'trusted("bank")'},
    {"rule": 'warning(vm) :- inv:servers(id=vm, status="SHUTOFF")'},
]


def seed(service: Service, rows: list[list] | None = None) -> None:
    """Datasource ``inv`` (push, servers(id, status, tenant)) and policy ``ops``."""
    service.datasources.create({"name": "inv", "driver": "push",
                                "config": {"tables": {"servers": SERVERS}}})
    service.policies.create("ops", rules=[dict(r) for r in RULES])
    if rows is not None:
        service.datasources.replace_rows("inv", "servers", rows)


@contextmanager
def seeded(path: Path, rows: list[list]) -> Iterator[tuple[Service, TestClient]]:
    """A service over ``path`` seeded with ``rows`` and a noauth client of its app (one per
    module for the tests that only read: starting a service takes seconds)."""
    from tests.api.conftest import make_service

    svc = make_service(path)
    seed(svc, rows)
    try:
        with TestClient(create_app(svc, Settings(data_dir=str(path))),
                        raise_server_exceptions=False) as client:
            yield svc, client
    finally:
        svc.close()


def get_page(client: TestClient, url: str, status: int = 200) -> Page:
    r = client.get(url)
    assert r.status_code == status, r.text
    return Page(r.text)


def token_client(tmp_path: Path, monkeypatch, service: Service, role: str) -> TestClient:
    """The app under ``auth.strategy = "token"``, logged in to the dashboard as ``role``."""
    digest = hashlib.sha256(TOKENS["viewer"].encode()).hexdigest()
    (tmp_path / "tokens.toml").write_text(
        f'[[tokens]]\nname = "root"\nrole = "admin"\ntoken = "{TOKENS["admin"]}"\n'
        f'[[tokens]]\nname = "ci"\nrole = "editor"\ntoken = "{TOKENS["editor"]}"\n'
        f'[[tokens]]\nname = "dash"\nrole = "viewer"\ntoken_sha256 = "{digest}"\n')
    (tmp_path / "charter.toml").write_text(
        '[auth]\nstrategy = "token"\ntokens_file = "tokens.toml"\n')
    for name in ("CHARTER_CONFIG", "CHARTER_HOST", "CHARTER_AUTH__STRATEGY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHARTER_DATA_DIR", str(tmp_path))
    settings = load_settings(tmp_path / "charter.toml")
    client = TestClient(create_app(service, settings), raise_server_exceptions=False)
    r = client.post("/ui/login", data={"token": TOKENS[role], "next": "/ui/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


class Page(HTMLParser):
    """Elements with a ``data-testid`` (their attributes and text), every link, and the
    page's text."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr", "circle", "line", "polygon", "polyline"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[dict] = []
        self.links: list[str] = []
        self._open: list[dict | None] = []
        self.text_parts: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        item = None
        if "data-testid" in a:
            item = {"tag": tag, "attrs": a, "text": []}
            self.found.append(item)
        if tag not in self.VOID:
            self._open.append(item)

    def handle_startendtag(self, tag, attrs) -> None:
        a = {k: v or "" for k, v in attrs}
        if "data-testid" in a:
            self.found.append({"tag": tag, "attrs": a, "text": []})

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)
        for item in self._open:
            if item is not None:
                item["text"].append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def all(self, testid: str) -> list[dict]:
        return [f for f in self.found if f["attrs"]["data-testid"] == testid]

    def one(self, testid: str) -> dict:
        found = self.all(testid)
        assert len(found) == 1, f"{len(found)} elements with data-testid={testid}"
        return found[0]

    def text_of(self, testid: str) -> str:
        return " ".join("".join(self.one(testid)["text"]).split())


def rows_of(page: Page) -> list[tuple[str, list]]:
    """The violation rows shown: (policy, values)."""
    return [(r["attrs"]["data-policy"], json.loads(r["attrs"]["data-row"]))
            for r in page.all("violation-row")]
