"""Dashboard apps for TestClient tests: Charter's whole app over a real SQLite store,
with noauth or with static tokens for each role, and a logged-in browser-like client."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.service.config import load_settings
from charter.service.service import Service
from charter.store import Store

TOKENS = {"admin": "adm-ui-0123456789", "editor": "edt-ui-0123456789",
          "viewer": "vwr-ui-0123456789"}
KEY = Store.generate_key()


def make_service(directory: Path) -> Service:
    service = Service(Store(f"sqlite:///{directory / 'charter.db'}", secret_key=KEY))
    service.start()
    return service


def write_config(directory: Path, strategy: str) -> Path:
    """A config file in ``directory`` (its data_dir too): noauth, or tokens for each role."""
    lines = [f'data_dir = "{directory}"', "[auth]", f'strategy = "{strategy}"']
    if strategy == "token":
        (directory / "tokens.toml").write_text("".join(
            f'[[tokens]]\nname = "{role}-user"\nrole = "{role}"\ntoken = "{token}"\n\n'
            for role, token in TOKENS.items()))
        lines.append('tokens_file = "tokens.toml"')
    path = directory / "charter.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def ui_client(directory: Path, service: Service, strategy: str = "noauth") -> TestClient:
    """A client of the whole app (API and dashboard), as a browser on the same origin."""
    settings = load_settings(write_config(directory, strategy))
    return TestClient(create_app(service, settings), base_url="http://127.0.0.1:1789",
                      raise_server_exceptions=False)


def login(client: TestClient, role: str) -> None:
    """Log in with the role's token through the login form (the cookie stays in the client)."""
    r = client.post("/ui/login", data={"token": TOKENS[role], "next": "/ui/packs"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text


def csrf_token(client: TestClient, page: str = "/ui/packs") -> str:
    """The CSRF token a page of this session carries."""
    r = client.get(page)
    assert r.status_code == 200, r.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert found, f"no CSRF token in {page}"
    return found.group(1)
