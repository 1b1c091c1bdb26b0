"""Reports for CI: ``check`` as JSON or SARIF 2.1.0, ``eval`` as CSV or JUnit XML.

SARIF is what GitHub code scanning (and other code-review tools) read to show each
diagnostic on its line; JUnit XML is what Jenkins, GitLab and most CI dashboards read as test
results: one test case per queried table, one failure per violation row.

>>> from charter.lang.ast import Span
>>> d = Diagnostic("unknown_table", "no table q", Span("p.dl", 2, 5), "warning")
>>> print(check_json([d]))  # doctest: +NORMALIZE_WHITESPACE
{"diagnostics": [{"code": "unknown_table", "message": "no table q", "severity": "warning",
  "file": "p.dl", "line": 2, "col": 5}], "summary": {"errors": 0, "warnings": 1}}
>>> print(format_csv({"p:error": [("vm-1", 3)]}, lambda table: None))
table,c0,c1
p:error,vm-1,3
<BLANKLINE>
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from charter import __version__
from charter.cli.output import sort_rows
from charter.lang.ast import format_value
from charter.lang.errors import Diagnostic
from charter.lang.lint import WARNING_CODES

__all__ = ["VIOLATION_TABLES", "check_json", "check_sarif", "format_csv", "format_junit"]

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
VIOLATION_TABLES = ("error", "warning")
"""A queried table named ``policy:error`` or ``policy:warning`` holds violations: in JUnit
each of its rows is a failure."""


# ---------------------------------------------------------------- check


def _counts(diagnostics: Sequence[Diagnostic]) -> dict[str, int]:
    errors = sum(1 for d in diagnostics if d.is_error)
    return {"errors": errors, "warnings": len(diagnostics) - errors}


def check_json(diagnostics: Sequence[Diagnostic]) -> str:
    """``{"diagnostics": [...], "summary": {"errors": N, "warnings": M}}``, one line."""
    body = {"diagnostics": [d.to_json() for d in diagnostics], "summary": _counts(diagnostics)}
    return json.dumps(body, ensure_ascii=False)


def _rule_help(code: str) -> str:
    help_text = WARNING_CODES.get(code)
    if help_text is not None:
        return help_text
    return (
        f"Charter refuses the policy ({code}): it cannot be loaded as written. The message "
        f"names the place and the fix."
    )


def _uri(file: str, base: Path) -> str:
    """A file as a URI relative to ``base`` (the repository root, for code scanning), or an
    absolute ``file:`` URI for a file outside it."""
    path = Path(file)
    try:
        relative = path.resolve().relative_to(base.resolve())
    except ValueError:
        return path.resolve().as_uri()
    return quote(relative.as_posix())


def _result(diagnostic: Diagnostic, index: int, base: Path) -> dict:
    text = diagnostic.message
    if diagnostic.notes:
        text += "\n" + "\n".join(f"note: {n}" for n in diagnostic.notes)
    result: dict = {
        "ruleId": diagnostic.code,
        "ruleIndex": index,
        "level": "error" if diagnostic.is_error else "warning",
        "message": {"text": text},
    }
    span = diagnostic.span
    if span is not None and span.file:
        region = {"startLine": max(span.line, 1), "startColumn": max(span.col, 1)}
        end = (span.end_line or 0, span.end_col or 0)
        if span.end_line is not None and span.end_col is not None and end > (span.line, span.col):
            region |= {"endLine": span.end_line, "endColumn": span.end_col}
        location = {"artifactLocation": {"uri": _uri(span.file, base)}, "region": region}
        result["locations"] = [{"physicalLocation": location}]
    return result


def check_sarif(diagnostics: Sequence[Diagnostic], base: Path | None = None) -> str:
    """A SARIF 2.1.0 log of one run of ``charter check``: the tool's rules (every warning
    code, and each error code found, with its help) and one result per diagnostic, its file
    relative to ``base`` (the current directory by default). Columns count code points."""
    base = Path.cwd() if base is None else base
    codes = list(WARNING_CODES) + sorted({d.code for d in diagnostics} - set(WARNING_CODES))
    index = {code: i for i, code in enumerate(codes)}
    rules = [
        {
            "id": code,
            "shortDescription": {"text": _rule_help(code).split(": ")[0]},
            "fullDescription": {"text": _rule_help(code)},
            "help": {"text": _rule_help(code)},
            "defaultConfiguration": {"level": "warning" if code in WARNING_CODES else "error"},
        }
        for code in codes
    ]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "charter",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": [_result(d, index[d.code], base) for d in diagnostics],
            }
        ],
    }
    return json.dumps(log, ensure_ascii=False, indent=2)


# ---------------------------------------------------------------- eval


def _cell(value: object) -> str:
    """A value as CSV or XML text: a string as it is, a number as Datalog writes it."""
    return value if isinstance(value, str) else format_value(value)


def format_csv(
    results: Mapping[str, Iterable[Sequence[object]]],
    columns: Callable[[str], Sequence[str] | None],
) -> str:
    """One CSV: a header ``table,<columns>``, then per queried table (in the order asked)
    its rows sorted, each as ``table,value,...``.

    The columns are named by the tables' schema when every table has the same one, else
    ``c0, c1, ...`` up to the widest table; a narrower table's rows end with empty fields.
    """
    tables = {table: sort_rows(rows) for table, rows in results.items()}
    widths = {len(r) for rows in tables.values() for r in rows}
    named = {tuple(columns(table) or ()) for table in tables}
    names = next(iter(named)) if len(named) == 1 else ()
    if not names or not widths <= {len(names)}:
        names = tuple(f"c{i}" for i in range(max(widths, default=0)))
    width = len(names)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["table", *names])
    for table, rows in tables.items():
        for row in rows:
            cells = [_cell(v) for v in row]
            writer.writerow([table, *cells, *[""] * (width - len(cells))])
    return out.getvalue()


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """Text XML 1.0 can hold: a control character (or a lone surrogate) becomes its escape."""
    return _NOT_XML.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _atom(table: str, row: Sequence[object]) -> str:
    return _xml(f"{table}({', '.join(format_value(v) for v in row)})")


def format_junit(results: Mapping[str, Iterable[Sequence[object]]]) -> str:
    """JUnit XML: one ``<testsuite>`` per policy (or datasource) queried, one ``<testcase>``
    per table; each row of an ``error`` or ``warning`` table is a ``<failure>`` (its type
    the table's name), and any other table passes, its rows listed in ``<system-out>``."""
    suites: dict[str, list[str]] = {}
    for table in results:
        suites.setdefault(table.split(":", 1)[0], []).append(table)
    root = ET.Element("testsuites", name="charter eval")
    total = failed = 0
    for policy, tables in suites.items():
        suite = ET.SubElement(root, "testsuite", name=_xml(policy))
        failing = 0
        for table in tables:
            rows = sort_rows(results[table])
            case = ET.SubElement(suite, "testcase", name=_xml(table), classname=_xml(policy))
            case.set("time", "0")
            kind = table.split(":", 1)[-1]
            if kind in VIOLATION_TABLES:
                failing += bool(rows)
                for row in rows:
                    text = _atom(table, row)
                    failure = ET.SubElement(case, "failure", message=text, type=kind)
                    failure.text = text
            elif rows:
                ET.SubElement(case, "system-out").text = "\n".join(_atom(table, r) for r in rows)
        suite.set("tests", str(len(tables)))
        suite.set("failures", str(failing))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        suite.set("time", "0")
        total += len(tables)
        failed += failing
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", "0")
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
