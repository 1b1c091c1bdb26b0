"""docs/drivers.md is generated from the drivers' code and must not drift from it."""

from __future__ import annotations

import difflib
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from charter.datasources import docs
from charter.datasources.drivers.kubernetes import KubernetesDriver
from charter.datasources.push import PushDriver
from charter.datasources.registry import GROUP, drivers

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "drivers.md"


def section(text: str, ident: str) -> str:
    start = text.index(f"\n## {ident}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_docs_drivers_md_is_what_the_code_generates():
    want = docs.render()
    have = DOC.read_text() if DOC.exists() else ""
    if have != want:
        diff = "".join(list(difflib.unified_diff(
            have.splitlines(True), want.splitlines(True), "docs/drivers.md (committed)",
            "generated", n=1))[:40])
        pytest.fail(f"docs/drivers.md is out of date; regenerate it with `{docs.COMMAND}` "
                    f"(from the repository root) and commit it.\n{diff}")


def test_the_command_prints_the_reference():
    out = subprocess.run([sys.executable, "-m", "charter.datasources.docs"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout == docs.render()


def test_every_installed_driver_has_its_config_tables_and_actions():
    text = docs.render()
    for ident, cls in drivers().items():
        part = section(text, ident)
        assert cls.description.strip() in part
        for option in cls.config_options:
            assert f"| `{option.name}` |" in part, (ident, option.name)
        for spec in cls.static_tables():
            assert f"#### `{ident}:{spec.name}`" in part
            for column in spec.columns:
                assert f"| `{column.name}` |" in part, (ident, spec.name, column.name)


def test_kubernetes_section_in_detail():
    part = section(docs.render({"kubernetes": KubernetesDriver}, {}), "kubernetes")
    assert "| `token` | no | yes |  | bearer token" in part
    assert "| `watch` | no | no | `true` |" in part
    assert "| `privileged` | string | \"True\" when securityContext.privileged is true |" in part
    assert ("| `deployments.scale` | `namespace` (namespace of the object), `name` "
            "(deployment name), `replicas`") in part
    assert "NOT against a real cluster" in part  # says plainly what the tests use
    assert '```\n{"host": "https://10.0.0.1:6443"' in part


def test_drivers_whose_config_declares_the_tables_say_so_and_show_the_shape():
    part = section(docs.render({"push": PushDriver}, {}), "push")
    assert "no fixed tables" in part
    assert '{"tables": {"alarms": ["id", "host", "severity"]}}' in part
    assert ">>>" not in part  # the module's doctests are not documentation
    assert "Pushed: rows arrive through" in part


def test_a_driver_that_fails_to_import_is_listed_as_unavailable(monkeypatch):
    real = list(docs.entry_points(group=GROUP))
    fake = [EntryPoint("bogus", "charter.datasources.drivers.no_such_module:Bogus", GROUP),
            EntryPoint("notadriver", "json:dumps", GROUP)]
    monkeypatch.setattr(docs, "entry_points", lambda group: real + fake)
    text = docs.render()
    assert "| [`bogus`](#bogus-unavailable) | unavailable: " in text
    part = section(text, "bogus (unavailable)")
    assert "ModuleNotFoundError: No module named 'charter.datasources.drivers.no_such_module'" \
        in part
    assert "json:dumps is not a charter Driver class" in section(text, "notadriver (unavailable)")
    assert "## kubernetes\n" in text  # the others are still there
