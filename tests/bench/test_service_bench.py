"""Smoke test of the service load benchmark: a real ``charter serve``, two clients, a few
seconds, a small pushed table. The output's shape and zero errors are checked, never timing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # bench/ is a top-level package beside src/
    sys.path.insert(0, str(REPO_ROOT))

from bench import service  # noqa: E402
from bench.__main__ import main as bench_main  # noqa: E402

pytestmark = pytest.mark.integration


def test_inventory_and_push_table() -> None:
    data = service.inventory(500, seed=1)
    assert len(data["servers"]) == 500
    assert {len(r) for r in data["servers"]} == {len(service.SCHEMA["servers"])}
    assert data == service.inventory(500, seed=1)
    table = service.PushTable(data["servers"], len(data["images"]), len(data["hosts"]), 1)
    pushed = json.loads(table.changed_body(4))
    assert len(pushed) == 500
    assert pushed == table.rows
    changed = sum(a != b for a, b in zip(pushed, data["servers"], strict=True))
    assert 0 < changed <= 4


def test_percentile() -> None:
    values = [float(i) for i in range(1, 101)]
    assert service.percentile(values, 0.5) == 50
    assert service.percentile(values, 0.99) == 99
    assert service.percentile([7.0], 0.99) == 7


def test_runner_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--workload", "service", "--rows", "300", "--duration", "3", "--clients", "2",
            "--warmup", "1"]  # fmt: skip
    assert bench_main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    summary = json.loads(lines[-1])
    assert summary["benchmark"] == "service"
    assert [p["rows"] for p in summary["phases"]] == [300]
    for phase in summary["phases"]:
        assert phase["errors"] == 0 and phase["shown_errors"] == []
        assert phase["requests"] > 0
        assert set(phase["kinds"]) == {"read", "push", "rule"}
        assert phase["kinds"]["read"]["count"] > 0
        for kind in phase["kinds"].values():
            assert {"count", "per_s", "p50_ms", "p95_ms", "p99_ms", "errors"} <= set(kind)
        assert phase["rss_start_mb"] > 0 and phase["rss_end_mb"] > 0
        assert phase["rss_growth_after_warmup_mb"] is not None
    assert out.count("service: 300 pushed rows, 2 clients") == 1
    for word in ("requests", "read", "push", "rule", "server RSS (MB)", "after warm-up"):
        assert word in out


def test_bad_arguments() -> None:
    with pytest.raises(SystemExit) as exc:
        service.main(["--rows", "abc"])
    assert exc.value.code == 2
