"""Shared set-up of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def in_fixtures(monkeypatch):
    """Run from the fixtures folder, so messages name files as a user would type them."""
    monkeypatch.chdir(FIXTURES)
