"""docs/packs.md's "What if: admit a server boot" recipe prints what the page shows: its
``charter pack`` and ``charter admit`` commands run against an in-process server holding
the recipe's cloud (stand-in datasources with the nova driver's tables), timestamps aside,
and ``charter admit`` exits 1 exactly when a violation would appear."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from charter.api.app import create_app
from charter.cli import admit as admit_cli
from charter.cli import pack as pack_cli
from charter.cli.main import app
from tests.packs.conftest import stand_in

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "packs.md"
HEADING = "## What if: admit a server boot"
TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)?")
runner = CliRunner()


def hypervisor(n: int, vcpus_used: int, memory_mb_used: int, running: int) -> dict:
    return {
        "hypervisor_hostname": f"c{n}.example",
        "id": n,
        "host": f"c{n}",
        "state": "up",
        "status": "enabled",
        "hypervisor_type": "QEMU",
        "vcpus": 32,
        "vcpus_used": vcpus_used,
        "memory_mb": 131072,
        "memory_mb_used": memory_mb_used,
        "local_gb": 1000,
        "local_gb_used": 20 * running,
        "running_vms": running,
    }


def server(name: str, host: str, flavor: str = "f-small") -> dict:
    return {
        "id": name,
        "name": name,
        "status": "ACTIVE",
        "tenant_id": "shop",
        "user_id": "u-ann",
        "image_id": "img-ubuntu",
        "flavor_id": flavor,
        "zone": "az1",
        "host_name": f"{host}.example",
        "host": host,
        "created_at": "2026-06-01T08:00:00Z",
    }


#: The recipe's cloud: three hosts in zone az1; the anti-affinity group g-web has web-1 on
#: c1 and web-2 on c2; db-1 runs on c1 too.
CLOUD = {
    "nova": {
        "hypervisors": [
            hypervisor(1, 5, 16896, 2),
            hypervisor(2, 1, 2560, 1),
            hypervisor(3, 0, 512, 0),
        ],
        "aggregates": [{"id": 1, "name": "rack-1", "availability_zone": "az1"}],
        "aggregate_hosts": [{"aggregate_id": 1, "host": h} for h in ("c1", "c2", "c3")],
        "flavors": [
            {
                "id": "f-small",
                "name": "m1.small",
                "vcpus": 1,
                "ram": 2048,
                "disk": 20,
                "ephemeral": 0,
            },
            {
                "id": "f-large",
                "name": "m1.large",
                "vcpus": 4,
                "ram": 8192,
                "disk": 20,
                "ephemeral": 0,
            },
        ],
        "server_groups": [
            {
                "id": "g-web",
                "name": "web",
                "policy": "anti-affinity",
                "project_id": "shop",
                "user_id": "u-ann",
            }
        ],
        "server_group_members": [
            {"group_id": "g-web", "server_id": "web-1"},
            {"group_id": "g-web", "server_id": "web-2"},
        ],
        "servers": [server("web-1", "c1"), server("web-2", "c2"), server("db-1", "c1", "f-large")],
    },
}
HYPERVISOR = ("hypervisor_hostname", "id", "state", "status")  # Congress's columns
nova = CLOUD["nova"]
nova["servers.details"] = [{"server_id": s["id"], "host": s.pop("host")} for s in nova["servers"]]
nova["hypervisors.capacity"] = [
    {"hypervisor_id": h["id"], **{k: v for k, v in h.items() if k not in HYPERVISOR}}
    for h in nova["hypervisors"]
]
nova["hypervisors"] = [{k: h[k] for k in HYPERVISOR} for h in nova["hypervisors"]]


def recipe_examples(text: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` for each ``$ ...`` command (continued by a trailing
    backslash) of the recipe's ```console blocks."""
    section = text[text.index(HEADING) :]
    examples: list[tuple[str, list[str]]] = []
    block = continued = False
    for line in section.splitlines():
        if line.startswith("```"):
            block, continued = line.startswith("```console"), False
        elif block and continued:
            examples[-1] = (examples[-1][0] + " " + line.strip().rstrip("\\"), [])
            continued = line.endswith("\\")
        elif block and line.startswith("$ "):
            examples.append((line[2:].rstrip("\\"), []))
            continued = line.endswith("\\")
        elif block and examples:
            examples[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in examples]


@pytest.fixture
def server_(service, settings, monkeypatch):
    client = TestClient(create_app(service, settings), base_url="http://127.0.0.1:1789")
    monkeypatch.setattr(pack_cli, "api_client", lambda url, token, timeout=30.0: client)
    monkeypatch.setattr(
        admit_cli.httpx,
        "post",
        lambda url, json, headers, timeout: client.post(url, json=json, headers=headers),
    )
    with client:
        for driver, tables in CLOUD.items():
            stand_in(client, driver, tables)
        yield client


def test_the_recipe_is_the_last_section():
    text = DOC.read_text()
    assert text.count(HEADING) == 1
    assert "\n## " not in text[text.index(HEADING) + len(HEADING) :]


def test_the_recipe_prints_what_the_page_shows(server_):
    examples = recipe_examples(DOC.read_text())
    assert [shlex.split(c)[1] for c, _ in examples].count("admit") >= 3
    for command, expected in examples:
        args = shlex.split(command)
        assert args[0] == "charter" and args[1] in ("pack", "admit"), command
        result = runner.invoke(app, args[1:])
        got = "\n".join(line.rstrip() for line in result.output.rstrip("\n").splitlines())
        assert TIME.sub("<time>", got) == TIME.sub("<time>", expected), command
        if args[1] == "admit":
            appear = int(re.search(r"(\d+) would appear", got).group(1))
            assert result.exit_code == (1 if appear else 0), (command, result.output)
        else:
            assert result.exit_code == 0, (command, result.output)
