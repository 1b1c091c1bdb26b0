"""``charter fmt``: rewrite policy files in Charter's one canonical layout."""

from __future__ import annotations

import codecs
import difflib
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from charter.cli.output import error_text, printable
from charter.lang.errors import PolicyError
from charter.lang.format import DEFAULT_WIDTH, FormatError, format_datalog, format_library_yaml

LIBRARY_SUFFIXES = (".yaml", ".yml")


def fmt_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Policy files: .yaml/.yml is a Congress library policy (only its rule texts "
            "are formatted), anything else Datalog. A folder stands for the .dl files under it.",
            show_default=False,
            metavar="FILE",
        ),
    ],
    check: Annotated[
        bool,
        typer.Option("--check", help="Change nothing; exit 1 when a FILE is not formatted."),
    ] = False,
    diff: Annotated[
        bool,
        typer.Option("--diff", help="Change nothing; print what would change as a unified diff."),
    ] = False,
    width: Annotated[
        int,
        typer.Option(
            "--width",
            min=1,
            help="The column a one-line rule may reach; past it, one body literal per line.",
        ),
    ] = DEFAULT_WIDTH,
) -> None:
    """Format policy files in place: one layout, every comment kept where it was written.

    Spacing, one body literal per line past --width, `:-` aligned over consecutive one-line
    rules, double quotes. The formatted text always parses to the same rules as the file. A
    FILE that does not parse is never rewritten: its errors are printed as `charter check`
    prints them.

    Diffs go to stdout; which files changed (or would), the summary and errors to stderr.

    Exit status: 0 done (or, with --check, nothing to change); 1 with --check, a FILE would
    change; 2 a usage error, or a FILE that cannot be read or does not parse.
    """
    changed: list[str] = []
    unchanged = failed = 0
    for path in expand_folders(files):
        name = str(path)
        outcome = _format_file(path, name, width)
        if outcome is None:
            failed += 1
            continue
        before, after, bom = outcome
        if before == after:
            unchanged += 1
            continue
        changed.append(name)
        if diff:
            typer.echo(printable(unified_diff(before, after, name)), nl=False)
        if check or diff:
            typer.echo(printable(f"would reformat {name}"), err=True)
        else:
            try:
                _write(path, (codecs.BOM_UTF8 if bom else b"") + after.encode("utf-8"))
            except OSError as exc:
                message = f"{name}: error[file_error]: cannot write {name}: {exc.strerror or exc}"
                typer.echo(printable(message), err=True)
                changed.pop()
                failed += 1
                continue
            typer.echo(printable(f"reformatted {name}"), err=True)
    typer.echo(_summary(len(changed), unchanged, failed, check or diff), err=True)
    if failed:
        raise typer.Exit(2)
    if check and changed:
        raise typer.Exit(1)


def expand_folders(paths: list[Path]) -> list[Path]:
    """``paths`` with each folder replaced by the ``.dl`` files under it, sorted, skipping
    names that start with a dot (a folder stays itself when it holds none, so that its
    error is printed). Only ``.dl``: a folder's YAML may be anything (tests, a pack's
    pack.yaml), while a library policy named on the command line is one."""
    out: list[Path] = []
    for path in paths:
        found = []
        if path.is_dir():
            for file in sorted(path.rglob("*.dl")):
                hidden = any(p.startswith(".") for p in file.relative_to(path).parts)
                if file.is_file() and not hidden:
                    found.append(file)
        out += found or [path]
    return out


def _format_file(path: Path, name: str, width: int) -> tuple[str, str, bool] | None:
    """The file's text, its formatted text and whether it starts with a BOM; None (with the
    error printed) when it cannot be read or does not parse."""
    if path.is_dir():
        typer.echo(
            printable(f"{name}: error[file_error]: no .dl file under the folder {name}"),
            err=True,
        )
        return None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        typer.echo(
            printable(f"{name}: error[file_error]: cannot read {name}: {exc.strerror or exc}"),
            err=True,
        )
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        typer.echo(
            printable(
                f"{name}:1:1: error[file_error]: not UTF-8 text: {exc.reason} at byte {exc.start}"
            ),
            err=True,
        )
        return None
    formatter = format_library_yaml if path.suffix.lower() in LIBRARY_SUFFIXES else format_datalog
    try:
        return text, formatter(text, name, width), raw.startswith(codecs.BOM_UTF8)
    except PolicyError as exc:
        typer.echo(error_text(exc, {name: text}), err=True)
    except FormatError as exc:
        typer.echo(printable(f"error[format_failed]: {exc}"), err=True)
    return None


def unified_diff(before: str, after: str, name: str) -> str:
    """A unified diff of a file's text and its formatted text, as ``patch -p0`` reads it.

    >>> diff = unified_diff("p(x):-q(x)\\n", "p(x) :- q(x)\\n", "a.dl")
    >>> diff.splitlines()[:2], diff.splitlines()[3:]
    (['--- a.dl\\t(original)', '+++ a.dl\\t(formatted)'], ['-p(x):-q(x)', '+p(x) :- q(x)'])
    """
    lines = difflib.unified_diff(
        _lines(before), _lines(after), f"{name}\t(original)", f"{name}\t(formatted)"
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _lines(text: str) -> list[str]:
    """Lines split at ``\\n`` only (``str.splitlines`` also splits at U+2028 in a string)."""
    return [line for line in re.split(r"(?<=\n)", text) if line]


def _write(path: Path, data: bytes) -> None:
    """Replace the file in one step (a crash leaves the old or the new text, never half),
    keeping its permissions."""
    mode = path.stat().st_mode
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".fmt")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _summary(changed: int, unchanged: int, failed: int, dry: bool) -> str:
    parts = [
        f"{_files(changed)} {'would be reformatted' if dry else 'reformatted'}",
        f"{_files(unchanged)} {'already formatted' if dry else 'left unchanged'}",
    ]
    if failed:
        parts.append(f"{_files(failed)} could not be formatted")
    return ", ".join(parts)


def _files(count: int) -> str:
    return f"{count} file" + ("" if count == 1 else "s")
