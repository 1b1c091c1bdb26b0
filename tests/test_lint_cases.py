"""Lint cases as data: ``tests/cases/lint/*.yaml``, checked as ``charter check`` checks.

Each file holds ``cases:``, each with ``note``, the policy files (``policy``: the text of
``p.dl``, or ``files``: file name -> text; a ``.yaml`` name is a library policy), optional
``disable`` (codes, as ``--disable`` takes them), ``want_warning`` (every warning expected:
``code``, ``line``, ``col``, ``file`` when there are several files, optional ``message``
substring; exactly these and no others) and optional ``want_error`` (``code``, ``line``,
``col``); without it the files must have no error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from charter.cli.loading import check_texts

CASES = Path(__file__).parent / "cases" / "lint"


def _load_cases():
    for path in sorted(CASES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text())["cases"]:
            yield pytest.param(case, id=f"{path.stem}/{case['note']}")


@pytest.mark.parametrize("case", list(_load_cases()))
def test_lint_case(case):
    files = case.get("files") or {"p.dl": case["policy"]}
    only = next(iter(files)) if len(files) == 1 else None
    diagnostics = check_texts(files, case.get("disable", []))
    errors = [d for d in diagnostics if d.is_error]
    want_error = case.get("want_error")
    if want_error is None:
        assert not errors, [str(d) for d in errors]
    else:
        found = [
            d
            for d in errors
            if (d.code, d.span.line, d.span.col)
            == (want_error["code"], want_error["line"], want_error["col"])
        ]
        assert found, [str(d) for d in errors]
    warnings = {
        (d.code, d.span.file, d.span.line, d.span.col): d for d in diagnostics if not d.is_error
    }
    want = {(w["code"], w.get("file", only), w["line"], w["col"]): w for w in case["want_warning"]}
    assert sorted(warnings) == sorted(want), [str(d) for d in warnings.values()]
    for key, w in want.items():
        if "message" in w:
            assert w["message"] in warnings[key].message, warnings[key].message
