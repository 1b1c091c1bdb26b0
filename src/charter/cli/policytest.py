"""``charter test``: run the policy test cases of ``*_test.yaml`` files (see docs/testing.md)."""

from __future__ import annotations

import random
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from charter.cli.output import printable
from charter.policytest.cases import TestCase, TestFileError, find_test_files, load_test_file
from charter.policytest.coverage import Coverage
from charter.policytest.report import json_report, junit_report, text_report
from charter.policytest.runner import PASS, Runner


class TestFormat(StrEnum):
    """How ``test`` reports: text as ``opa test`` prints it, JSON, or JUnit XML for CI."""

    __test__ = False  # not a pytest test class

    text = "text"
    json = "json"
    junit = "junit"


def usage_error(message: str) -> typer.Exit:
    """The message on stderr, and the exit (status 2) a usage error ends with."""
    typer.echo(printable(message), err=True)
    return typer.Exit(2)


def test_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Test files, or folders searched for *_test.yaml files.",
            show_default=False,
            metavar="PATH",
        ),
    ],
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            "-r",
            help="Only the cases whose 'file: name' matches this regex.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        TestFormat,
        typer.Option("--format", "-f", help="text, json or junit (JUnit XML)."),
    ] = TestFormat.text,
    coverage: Annotated[
        bool,
        typer.Option("--coverage", help="Report which rules derived a row in some case."),
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Seed of the incremental runs' order (default: a random one, printed with "
            "each failure); give it to replay a failure.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="List every case (and, with --coverage, the cases covering each rule).",
        ),
    ] = False,
) -> None:
    """Run policy test cases: each on a fresh engine, then incrementally, against what it
    expects.

    A test file (YAML) lists cases, each with its policies, its input rows and what must
    hold: the rows of tables (exactly, or contains/excludes), an error with its code, or
    the delta of a simulate sequence. Each case runs on a fresh engine, then again with its
    rows applied as deltas in a random order (seeded: --seed replays it); both must agree.

    Exit status: 0 when every case passes, 1 when one fails or errors, 2 on a usage error
    (a bad option, a missing path, a test file that does not fit the schema).
    """
    try:
        pattern = re.compile(run) if run is not None else None
    except re.error as exc:
        raise usage_error(f"error: --run {run!r} is not a regular expression: {exc}") from None
    try:
        files = find_test_files(paths)
    except TestFileError as exc:
        raise usage_error(str(exc)) from None
    if not files:
        shown = " ".join(str(p) for p in paths)
        raise usage_error(f"error: no test files (*_test.yaml) under {shown}")
    cases: list[TestCase] = []
    errors: list[str] = []
    for file in files:
        try:
            cases += load_test_file(file)
        except TestFileError as exc:
            errors += exc.messages
    if errors:
        raise usage_error("\n".join(errors))
    if pattern is not None:
        cases = [c for c in cases if pattern.search(f"{c.file}: {c.name}")]
        if not cases:
            raise usage_error(f"error: no case matches --run {run!r}")
    seed = seed if seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    found = Coverage() if coverage else None
    runner = Runner(seed, found)
    outcomes = [runner.run(case) for case in cases]
    if output_format is TestFormat.json:
        typer.echo(printable(json_report(outcomes, seed, found)))
    elif output_format is TestFormat.junit:
        typer.echo(junit_report(outcomes))
        if found is not None:  # the XML has no place for it: people read it on stderr
            typer.echo(printable(found.to_text(verbose)), err=True)
    else:
        typer.echo(printable(text_report(outcomes, found, verbose)))
    if any(o.status != PASS for o in outcomes):
        raise typer.Exit(1)
