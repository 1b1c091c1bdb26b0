"""Smoke test of the user paths benchmark (``--workload paths``) at a tiny N: every row is
produced, the sides agree, the servers stop and the temporary folders go. Never timing."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # bench/ is a top-level package beside src/
    sys.path.insert(0, str(REPO_ROOT))

from bench import paths, paths_service  # noqa: E402
from bench.__main__ import main as bench_main  # noqa: E402

pytestmark = pytest.mark.integration


def test_one_percent_changes_one_row_in_a_hundred() -> None:
    data = paths_service.service_data(1000, seed=3)
    slots, new = paths_service.one_percent(data["servers"], seed=3)
    assert len(slots) == 10 and len(set(slots.tolist())) == 10
    old = np.column_stack(list(data["servers"].values()))
    now = np.column_stack(list(new.values()))
    changed = np.flatnonzero((old != now).any(axis=1))
    assert changed.tolist() == sorted(slots.tolist())
    assert (old[:, 0] == now[:, 0]).all()  # the ids stay: a change, not a new server
    assert int((data["images"]["approved"] == 0).sum()) == 1


def test_flip_targets_alternate_and_spare_image_0() -> None:
    flips = paths_service.flip_targets(10, 6)
    assert flips == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]


def test_runner_end_to_end(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its folders, and only its
    argv = ["--workload", "paths", "--n", "300", "--repeat", "1", "--changes", "4"]
    assert bench_main(argv) == 0
    out = capsys.readouterr().out
    doc = json.loads(out.splitlines()[-1])
    assert doc["benchmark"] == "paths"
    (size,) = doc["sizes"]
    assert size["n"] == 300 and size["problems"] == []
    table = {row["path"]: row for row in size["table"]}
    for path in (
        "eval --data cloud.json (vs json)",
        "eval --data cloud.json (vs ndjson)",
        "eval --data *.parquet",
        "PUT servers, 1% changed",
        "PATCH servers, 1% changed",
        "poll servers, 1% changed",
        "read error rows during poll p50/p99",
        "PUT change -> violations p50/p99",
        "PATCH change -> violations p50/p99",
    ):
        assert path in table, path
        assert path in out
    for path in ("eval --data cloud.json (vs json)", "PUT servers, 1% changed",
                 "PATCH servers, 1% changed"):
        assert table[path]["ratio"] > 0
    counts = {k: size[k]["counts"] for k in ("charter_json", "duckdb_json", "duckdb_parquet")}
    assert counts["charter_json"] == counts["duckdb_json"] == counts["duckdb_parquet"]
    assert size["push"]["errors_before"] == size["engine"]["errors_before"] > 0
    assert size["push"]["single"]["changes"] == size["push"]["single_patch"]["changes"] == 4
    assert size["poll"]["poll_runs_s"] and size["push"]["push_runs_s"]
    assert size["push"]["patch_errors_after"] == size["engine"]["errors_after"]
    assert list(tmp_path.iterdir()) == []  # every temporary folder removed


def test_bad_arguments() -> None:
    with pytest.raises(SystemExit) as exc:
        paths.main(["--parts", "nothing"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        paths.main(["--n", "5"])
    assert exc.value.code == 2
