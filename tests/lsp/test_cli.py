"""``charter lsp`` as a command: listed by ``--help``, and a clear message without pygls."""

from __future__ import annotations

import sys

from typer.testing import CliRunner

from charter.cli.main import app


def test_listed_by_help():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0 and "lsp" in result.output


def test_without_pygls_it_says_what_to_install(monkeypatch):
    monkeypatch.delitem(sys.modules, "charter.lsp.server", raising=False)
    monkeypatch.setitem(sys.modules, "pygls", None)  # makes `import pygls` fail
    monkeypatch.setitem(sys.modules, "pygls.lsp.server", None)
    result = CliRunner().invoke(app, ["lsp"])
    assert result.exit_code == 1
    assert "error: charter lsp needs pygls, which is not installed" in result.output
    assert "pip install 'charter[lsp]'" in result.output
