"""The shipped examples' ``charter test`` cases pass (examples/cloud_test.yaml and the
decision policies' in examples/decisions/): an example that no longer does what its cases
say is a broken example in the docs."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from charter.cli.main import app as cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_every_example_test_file_passes():
    files = sorted(EXAMPLES.rglob("*_test.yaml"))
    assert EXAMPLES / "decisions" / "keystone_projects_test.yaml" in files
    result = CliRunner().invoke(cli, ["test", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "FAIL" not in result.output
