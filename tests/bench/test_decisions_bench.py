"""Smoke test of the decision latency benchmark (``python -m bench.decisions``): its states,
its requests, and the runner end to end at a tiny size, in process and over HTTP to a real
``charter serve``. Every decision's answer is checked by the runner; never the timing."""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # bench/ is a top-level package beside src/
    sys.path.insert(0, str(REPO_ROOT))

from bench import decisions  # noqa: E402

pytestmark = pytest.mark.integration


def test_oslo_state_has_both_kinds_of_domain() -> None:
    state = decisions.oslo_state(300, seed=1)
    assert len(state["projects"]) == 300
    counts: dict[str, int] = {}
    for row in state["projects"]:
        counts[row[3]] = counts.get(row[3], 0) + 1
    assert state["roomy"] and all(counts.get(d, 0) < 3 for d in state["roomy"])
    assert state["full"] and all(counts[d] >= 3 for d in state["full"])
    assert state == decisions.oslo_state(300, seed=1)


def test_the_oslo_form_is_what_http_check_sends() -> None:
    target, credentials = decisions.oslo_request("denied: name listed", 0,
                                                 decisions.oslo_state(300, seed=1))
    fields = urllib.parse.parse_qs(decisions.oslo_form(target, credentials).decode())
    assert json.loads(fields["rule"][0]) == decisions.CREATE
    assert json.loads(fields["target"][0])["target.project.name"] == "legacy-0"
    assert json.loads(fields["credentials"][0])["roles"] == ["admin", "member", "reader"]


def test_kubernetes_state_is_the_drivers_rows() -> None:
    state = decisions.k8s_state(60)
    assert set(state) == set(decisions.POD_TABLES)
    assert all(len(rows) == 10 for rows in state.values())
    schema = decisions.k8s_schema()
    assert all(len(row) == len(schema[t]) for t, rows in state.items() for row in rows)
    privileged = schema["containers"].index("privileged")
    assert [r[privileged] for r in state["containers"]].count("True") == 1  # pod 7


def test_reviews_differ_only_as_their_case_says() -> None:
    spec = {case: decisions.review(case, 3)["request"]["object"]["spec"]
            for case in decisions.K8S_CASES}
    assert "hostNetwork" not in spec["pass"] and spec["first violation"]["hostNetwork"]
    assert spec["already violated"]["containers"][0]["securityContext"] == {"privileged": True}


def test_runner_end_to_end(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "decisions.json"
    assert decisions.main(["--n", "60", "--repeat", "2", "--json", str(out_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    summary = json.loads(lines[-1])
    assert summary == json.loads(out_file.read_text())
    assert summary["benchmark"] == "decisions" and summary["projects"] == 60
    cases = ([f"oslo {c}" for c in decisions.OSLO_CASES]
             + [f"k8s {how} {c}" for c in decisions.K8S_CASES for how in ("pack", "policy")])
    assert set(summary["process"]) == {"baseline: apply one row", *cases}
    assert set(summary["http"]) == {"baseline: GET /healthz", *cases}
    for part in ("process", "http"):
        for row in summary[part].values():
            assert row["count"] == 2
            assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert "cpu_p99_ms" in summary["process"]["oslo allowed"]
    assert set(summary["p99_met"]) == {f"{p}: {c}" for p in ("process", "http") for c in cases}
    assert any(line.startswith("over HTTP (ms)") for line in lines)
