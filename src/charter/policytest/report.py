"""Printing outcomes: text as ``opa test`` prints it, JSON for scripts, JUnit XML for CI.

Text: a FAILURES section with, per failing case, ``file:line: name: FAIL`` and, per
failure, ``file:line: table: what`` and its missing and unexpected rows, then the seed to
replay; with ``verbose`` a SUMMARY of every case; then ``PASS: n/m`` (and ``FAIL:``,
``ERROR:`` when there are any). JUnit: one ``testsuite`` per test file, one ``testcase``
per case, a ``failure`` (or ``error``) holding the same text as the text report.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from charter.policytest.coverage import Coverage
from charter.policytest.runner import ERROR, FAIL, PASS, Failure, Outcome, format_row

__all__ = ["json_report", "junit_report", "text_report"]

RULE = "-" * 80
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """Text XML 1.0 can hold: other characters (control characters, lone surrogates) are
    shown as their escapes."""
    return _NOT_XML.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def failure_text(outcome: Outcome, indent: str = "  ") -> str:
    """A failing case's failures (or its error), each at ``file:line``, then the seed."""
    case = outcome.case
    lines: list[str] = []
    if outcome.error is not None:
        lines += [indent + line for line in outcome.error.splitlines()]
    for failure in outcome.failures:
        lines += _failure_lines(case.file, failure, indent)
    if outcome.failures:
        lines.append(f"{indent}seed: {outcome.seed} (replay with --seed {outcome.seed})")
    return "\n".join(lines)


def _failure_lines(file: str, failure: Failure, indent: str) -> list[str]:
    message = failure.message.splitlines() or [""]
    lines = [f"{indent}{file}:{failure.line}: {failure.what}: {message[0]}"]
    lines += [f"{indent}  {line}" for line in message[1:]]
    for label, rows in (("missing", failure.missing), ("unexpected", failure.unexpected)):
        if rows:
            lines.append(f"{indent}  {label}:")
            lines += [f"{indent}    {format_row(row)}" for row in rows]
    return lines


def _counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts = {PASS: 0, FAIL: 0, ERROR: 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
    return counts


def text_report(
    outcomes: Sequence[Outcome], coverage: Coverage | None = None, verbose: bool = False
) -> str:
    out: list[str] = []
    failing = [o for o in outcomes if o.status != PASS]
    if failing:
        out += ["FAILURES", RULE]
        for outcome in failing:
            case = outcome.case
            out.append(f"{case.file}:{case.line}: {case.name}: {outcome.status.upper()}")
            out.append(failure_text(outcome))
            out.append("")
    if verbose:
        out += ["SUMMARY", RULE]
        out += [f"{o.case.file}:{o.case.line}: {o.case.name}: {o.status.upper()}" for o in outcomes]
        out.append("")
    if coverage is not None:
        out += ["COVERAGE", RULE, coverage.to_text(verbose), ""]
    out.append(RULE)
    counts = _counts(outcomes)
    total = len(outcomes)
    out.append(f"PASS: {counts[PASS]}/{total}")
    for status in (FAIL, ERROR):
        if counts[status]:
            out.append(f"{status.upper()}: {counts[status]}/{total}")
    return "\n".join(out)


def _failure_json(file: str, failure: Failure) -> dict:
    return {
        "file": file,
        "line": failure.line,
        "what": failure.what,
        "message": failure.message,
        "missing": [list(r) for r in failure.missing],
        "unexpected": [list(r) for r in failure.unexpected],
    }


def json_report(outcomes: Sequence[Outcome], seed: int, coverage: Coverage | None = None) -> str:
    counts = _counts(outcomes)
    report: dict = {
        "seed": seed,
        "summary": {**counts, "total": len(outcomes)},
        "cases": [
            {
                "file": o.case.file,
                "line": o.case.line,
                "name": o.case.name,
                "status": o.status,
                "duration": round(o.duration, 6),
                "failures": [_failure_json(o.case.file, f) for f in o.failures],
                "error": o.error,
            }
            for o in outcomes
        ],
    }
    if coverage is not None:
        report["coverage"] = coverage.to_json()
    return json.dumps(report, indent=2, ensure_ascii=False, default=str)


def junit_report(outcomes: Sequence[Outcome]) -> str:
    """JUnit XML as Jenkins and GitLab read it: testsuites > testsuite per file > testcase."""
    counts = _counts(outcomes)
    root = ET.Element(
        "testsuites",
        {
            "name": "charter test",
            "tests": str(len(outcomes)),
            "failures": str(counts[FAIL]),
            "errors": str(counts[ERROR]),
            "time": f"{sum(o.duration for o in outcomes):.6f}",
        },
    )
    by_file: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_file.setdefault(outcome.case.file, []).append(outcome)
    for file, file_outcomes in by_file.items():
        file_counts = _counts(file_outcomes)
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": _xml(file),
                "tests": str(len(file_outcomes)),
                "failures": str(file_counts[FAIL]),
                "errors": str(file_counts[ERROR]),
                "skipped": "0",
                "time": f"{sum(o.duration for o in file_outcomes):.6f}",
            },
        )
        for outcome in file_outcomes:
            case = outcome.case
            element = ET.SubElement(
                suite,
                "testcase",
                {
                    "name": _xml(case.name),
                    "classname": _xml(file),
                    "time": f"{outcome.duration:.6f}",
                },
            )
            if outcome.status == PASS:
                continue
            first = (outcome.error or "").splitlines()[:1] or [
                f"{case.file}:{f.line}: {f.what}: {f.message.splitlines()[0]}"
                for f in outcome.failures[:1]
            ]
            kind = "failure" if outcome.status == FAIL else "error"
            detail = ET.SubElement(
                element,
                kind,
                {
                    "message": _xml(first[0] if first else kind),
                    "type": "charter_test_" + kind,
                },
            )
            detail.text = _xml(f"{case.file}:{case.line}: {case.name}\n" + failure_text(outcome))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
