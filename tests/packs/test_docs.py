"""docs/packs.md: its table of controls is the shipped packs' (regenerate it with
``python -m charter.packs.describe docs/packs.md``), and its walk-through prints what the
page shows, run against an in-process server holding the walk-through's cloud."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from charter.api.app import create_app
from charter.cli import pack as pack_cli
from charter.cli.main import app
from charter.packs.describe import update_markdown
from charter.packs.load import load_pack
from charter.packs.registry import builtin_folder
from tests.packs.conftest import stand_in

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "packs.md"
runner = CliRunner()

#: The cloud of the walk-through: an SSH rule open to the world, a project's public image,
#: a server of a flavor the operator does not allow; Cinder not configured.
CLOUD = {
    "neutronv2": {
        "security_group_rules": [
            {
                "id": "r-ssh",
                "security_group_id": "sg-web",
                "tenant_id": "shop",
                "direction": "ingress",
                "protocol": "tcp",
                "port_range_min": 22,
                "port_range_max": 22,
                "remote_ip_prefix": "0.0.0.0/0",
            },
            {
                "id": "r-https",
                "security_group_id": "sg-web",
                "tenant_id": "shop",
                "direction": "ingress",
                "protocol": "tcp",
                "port_range_min": 443,
                "port_range_max": 443,
                "remote_ip_prefix": "0.0.0.0/0",
            },
        ],
        "networks": [{"id": "net-shop", "tenant_id": "shop", "shared": "False"}],
        "ports": [
            {"id": "port-web", "tenant_id": "shop", "network_id": "net-shop", "device_id": "web-1"},
            {"id": "port-db", "tenant_id": "shop", "network_id": "net-shop", "device_id": "db-1"},
        ],
        "security_group_port_bindings": [
            {"port_id": "port-web", "security_group_id": "sg-web"},
            {"port_id": "port-db", "security_group_id": "sg-web"},
        ],
    },
    "nova": {
        "servers": [
            {
                "id": "web-1",
                "tenant_id": "shop",
                "flavor_id": "f-small",
                "image_id": "img-ubuntu",
                "status": "ACTIVE",
            },
            {
                "id": "db-1",
                "tenant_id": "shop",
                "flavor_id": "f-big",
                "image_id": "img-ubuntu",
                "status": "ACTIVE",
            },
        ],
        "flavors": [{"id": "f-small", "name": "m1.small"}, {"id": "f-big", "name": "m1.2xlarge"}],
    },
    "glancev2": {
        "images": [
            {
                "id": "img-ubuntu",
                "owner": "p-admin",
                "visibility": "public",
                "status": "active",
                "checksum": "3d6f1c2e9a8b7c6d5e4f3a2b1c0d9e8f",
            },
            {
                "id": "img-tools",
                "owner": "shop",
                "visibility": "public",
                "status": "active",
                "checksum": "8e2f6a1b3c4d5e6f7a8b9c0d1e2f3a4b",
            },
        ],
    },
    "keystonev3": {
        "projects": [
            {"id": "p-admin", "name": "admin", "enabled": "True"},
            {"id": "shop", "name": "shop", "enabled": "True"},
        ],
        "role_assignments": [
            {"role_id": "r-admin", "user_id": "u-admin", "project_id": "p-admin"},
            {"role_id": "r-member", "user_id": "u-ann", "project_id": "shop"},
        ],
    },
}


def test_the_controls_table_is_current():
    packs = [
        load_pack(p) for p in sorted(builtin_folder().iterdir()) if (p / "pack.yaml").is_file()
    ]
    text = DOC.read_text()
    assert update_markdown(text, packs) == text, (
        "docs/packs.md is stale: run python -m charter.packs.describe docs/packs.md"
    )


def console_examples(text: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` for each ``$ ...`` line of the ```console blocks."""
    examples: list[tuple[str, list[str]]] = []
    block = False
    for line in text.splitlines():
        if line.startswith("```"):
            block = line.startswith("```console")
        elif block and line.startswith("$ "):
            examples.append((line[2:], []))
        elif block and examples:
            examples[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in examples]


TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)?")


@pytest.fixture
def server(service, settings, monkeypatch):
    client = TestClient(create_app(service, settings), base_url="http://127.0.0.1:1789")
    monkeypatch.setattr(pack_cli, "api_client", lambda url, token, timeout=30.0: client)
    with client:
        for driver, tables in CLOUD.items():
            stand_in(client, driver, tables)
        yield client


def test_the_walk_through_prints_what_the_page_shows(server, monkeypatch):
    monkeypatch.chdir(ROOT)
    # The walk-through: what comes before the recipes at the end (their own tests run them).
    examples = console_examples(DOC.read_text().split("\n## What if:")[0])
    assert len(examples) >= 5
    for command, expected in examples:
        args = shlex.split(command)
        assert args[:2] == ["charter", "pack"], command
        result = runner.invoke(app, args[1:])
        assert result.exit_code == 0, (command, result.output)
        got = "\n".join(line.rstrip() for line in result.output.rstrip("\n").splitlines())
        assert TIME.sub("<time>", got) == TIME.sub("<time>", expected), command
