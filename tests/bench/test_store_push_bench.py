"""Smoke test of ``python -m bench.store_push`` at a tiny N against this tree itself: every
row printed, both sides load the rows they wrote. Never timing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # bench/ is a top-level package beside src/
    sys.path.insert(0, str(REPO_ROOT))

from bench import store_push  # noqa: E402

pytestmark = pytest.mark.integration


def test_both_sides_write_and_load_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--n", "2000", "--repeat", "3", "--baseline", "HEAD"]
    assert store_push.main(argv) == 0
    out = capsys.readouterr().out
    doc = json.loads(out.splitlines()[-1])
    for side in ("ours", "baseline"):
        assert doc[side]["load_ok"], doc[side]
        assert len(doc[side]["put_runs_s"]) == 3 and doc[side]["changed_rows"] == 20
    assert doc["ours"]["charter"] == str(REPO_ROOT / "src" / "charter")
    assert doc["baseline"]["charter"] != doc["ours"]["charter"]
    for row in (
        "first push",
        "1% PUT (20 rows), median",
        "restart: load (a fresh process)",
        "file after the PUTs",
        "this tree: load after it",
    ):
        assert f"| {row} |" in out
