"""Language cases as data (OPA's shape): ``tests/cases/<topic>/*.yaml``.

Each file holds ``cases:``, each with ``note``, ``policy`` (Datalog text of policy ``p``) or
``policies`` (name -> text), optional ``schemas`` (datasource -> table -> columns) and
``data`` (``module:table`` -> rows), then either ``want`` (``policy:table`` -> rows) or
``want_error`` (``code``, ``line``, ``col``, optional ``message`` substring and ``count``
of diagnostics with that code), and optional
``want_warning`` (codes, or ``{code, line, col}``): warnings of reading the policy text
(a rule written twice) and of compiling it. Every case with ``want`` runs twice: rules then
rows one batch at a time (incremental), and rows then rules (whole evaluation); both must
give ``want``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from charter.engine import Engine
from charter.lang.duplicates import unique_rules
from charter.lang.errors import CharterError, PolicyError
from charter.lang.parser import parse

CASES = Path(__file__).parent / "cases"


def _load_cases():
    for path in sorted(CASES.rglob("*.yaml")):
        if path.parent.name == "lint":
            continue  # lint cases have their own runner: tests/test_lint_cases.py
        doc = yaml.safe_load(path.read_text())
        for case in doc["cases"]:
            yield pytest.param(case, id=f"{path.parent.name}/{path.stem}/{case['note']}")


def _policies(case) -> dict[str, str]:
    return case.get("policies") or {"p": case["policy"]}


def _engine(case) -> Engine:
    engine = Engine(recompute_fraction=float("inf"))
    for name, tables in (case.get("schemas") or {}).items():
        engine.declare_datasource(name, tables)
    return engine


def _rows(rows) -> list[tuple]:
    return [tuple(r) for r in rows]


def _check_want(engine: Engine, case) -> None:
    for table, want in case["want"].items():
        got = engine.rows(table) if table in engine.tables() else set()
        assert got == set(_rows(want)), table


@pytest.mark.parametrize("case", list(_load_cases()))
def test_case(case):
    if "want_error" in case:
        engine = _engine(case)
        want = case["want_error"]
        with pytest.raises(CharterError) as info:
            for name, text in _policies(case).items():
                engine.load_policy(name, text, file=f"{name}.dl")
            for table, rows in (case.get("data") or {}).items():
                engine.insert_rows(table, _rows(rows))
        error = info.value
        assert isinstance(error, PolicyError), error
        found = [d for d in error.diagnostics if d.code == want["code"]]
        assert found, f"wanted {want['code']}, got {[str(d) for d in error.diagnostics]}"
        if "count" in want:
            assert len(found) == want["count"], [str(d) for d in found]
        d = found[0]
        if "line" in want:
            assert (d.span.line, d.span.col) == (want["line"], want["col"]), str(d)
        if "message" in want:
            assert want["message"] in d.message, d.message
        return

    # incremental: rules first, then each table's rows as its own batch
    engine = _engine(case)
    for name, text in _policies(case).items():
        engine.load_policy(name, text, file=f"{name}.dl")
    for table, rows in (case.get("data") or {}).items():
        for row in _rows(rows):
            engine.insert_rows(table, [row])
    _check_want(engine, case)
    if case.get("want_warning"):
        found = []
        for name, text in _policies(case).items():
            kept, warnings = unique_rules(parse(text, f"{name}.dl"), name)
            _, diagnostics = engine.compile(name, kept)
            found += warnings + diagnostics
        for want in case["want_warning"]:
            want = want if isinstance(want, dict) else {"code": want}
            hits = [d for d in found if d.code == want["code"] and not d.is_error]
            assert hits, f"wanted warning {want['code']}, got {[str(d) for d in found]}"
            if "line" in want:
                places = [(d.span.line, d.span.col) for d in hits]
                assert (want["line"], want["col"]) in places, places

    # whole: rows first, then rules in one batch (evaluated from scratch)
    engine = _engine(case)
    engine.recompute_fraction = 0.0
    for name in _policies(case):
        engine.create_policy(name)
    for table, rows in (case.get("data") or {}).items():
        engine.insert_rows(table, _rows(rows))
    for name, text in _policies(case).items():
        engine.insert_rules(name, text)
    _check_want(engine, case)
