"""What the workspace defines: every policy file's rules, and where each table is defined.

Go to definition, hover and completion need the rules of more than the open documents: a
policy reads another's tables as ``policy:table``, and those may sit in any file of the
workspace folder. The index holds the open documents' texts (the editor's, saved or not)
and reads the folder's ``.dl`` files and library ``.yaml``/``.yml`` files from disk,
parsing a file again only when its size or time of change moved.

A text being edited often does not parse. A Datalog text that fails as a whole is parsed
again statement by statement (a statement starts on a line that starts with a name), so a
mistake in one rule does not hide the tables the others define. A library YAML text that
fails defines nothing until it loads again.

>>> index = WorkspaceIndex()
>>> index.open("/w/cloud.dl", "ok(x) :- nova:servers(id=x)\\nbad(x) :- \\nerror(x) :- ok(x)")
>>> snapshot = index.snapshot()
>>> [f"{d.policy}:{d.table} {d.span.line}" for d in snapshot.definitions("cloud", "error")]
['cloud:error 3']
>>> sorted(snapshot.tables("cloud")), snapshot.datasource_tables()
(['error', 'ok'], [('nova', 'servers')])
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from charter.lang.ast import Atom, BuiltinCall, Modal, Rule, Span, rule_literals
from charter.lang.errors import PolicyError
from charter.lang.library import load_library_policy
from charter.lang.parser import BUILTIN_THEORY, parse
from charter.lsp.checking import is_library, looks_like_library

__all__ = [
    "Definition",
    "ParsedText",
    "Snapshot",
    "WorkspaceIndex",
    "normal_path",
    "parse_text",
    "walk_atoms",
]

POLICY_SUFFIXES = (".dl", ".yaml", ".yml")
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})
"""Folders never searched for policies, besides those whose name starts with a dot."""
MAX_FILES = 5000
MAX_BYTES = 1_000_000
"""Bounds on what is read from disk: a workspace folder may be a whole home directory."""

_STATEMENT_START = re.compile(r"^[A-Za-z_]", re.MULTILINE)
_NAME_KEY = re.compile(r"""^name[ \t]*:[ \t]*['"]?([A-Za-z_][A-Za-z0-9_]*)""", re.MULTILINE)


def normal_path(path: str | Path) -> str:
    """One spelling per file, so an open document and its file on disk are one file."""
    return os.path.normpath(os.path.abspath(path))


@dataclass(frozen=True, slots=True)
class ParsedText:
    """One policy file's rules, as far as they parse, the policy it holds, and its text
    (places in it are turned into the editor's positions)."""

    path: str
    policy: str | None
    rules: tuple[Rule, ...]
    complete: bool
    text: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Definition:
    """A rule (or fact) of ``policy`` whose head is ``table``; ``span`` is the head's."""

    policy: str
    table: str
    path: str
    span: Span
    rule: Rule


def walk_atoms(rules: Iterable[Rule]) -> Iterator[Atom | BuiltinCall]:
    """Every table atom and builtin call the rules write: heads (inside ``execute[...]``
    too), body literals, negations and aggregate bodies."""
    return (a for a in rule_literals(rules) if isinstance(a, Atom | BuiltinCall))


def _parse_datalog(path: str, text: str) -> tuple[tuple[Rule, ...], bool]:
    try:
        return tuple(parse(text, path)), True
    except PolicyError:
        pass
    starts = [m.start() for m in _STATEMENT_START.finditer(text)]
    rules: list[Rule] = []
    ends = [*starts[1:], len(text)] if starts else []
    for begin, end in zip(starts, ends, strict=True):
        skipped = text.count("\n", 0, begin)  # lines before the statement

        def origin(line: int, col: int, skipped: int = skipped) -> tuple[int, int]:
            return line + skipped, col

        try:
            rules += parse(text[begin:end], path, origin=origin)
        except PolicyError:
            continue
    return tuple(rules), False


def parse_text(path: str, text: str) -> ParsedText | None:
    """The rules of a policy file's text; None for YAML that is not a policy."""
    if not is_library(path):
        rules, complete = _parse_datalog(path, text)
        return ParsedText(path, Path(path).stem, rules, complete, text)
    if not looks_like_library(text):
        return None
    try:
        library = load_library_policy(text, path)
    except PolicyError:
        found = _NAME_KEY.search(text)
        return ParsedText(path, found.group(1) if found else None, (), False, text)
    return ParsedText(path, library.name, tuple(e.rule for e in library.rules), True, text)


def _defines(head: Atom | Modal, policy: str) -> TypeGuard[Atom]:
    """Whether a rule head defines a table of ``policy`` (``execute[...]`` defines none)."""
    return (
        isinstance(head, Atom)
        and head.span is not None
        and not head.update
        and head.theory in (None, policy)
    )


@dataclass
class Snapshot:
    """The workspace's policy files at one moment, for answering one request."""

    files: dict[str, ParsedText]
    _by_policy: dict[str, dict[str, list[Definition]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for parsed in self.files.values():
            if parsed.policy is None:
                continue
            tables = self._by_policy.setdefault(parsed.policy, {})
            for rule in parsed.rules:
                for head in rule.heads:
                    if _defines(head, parsed.policy):
                        found = Definition(parsed.policy, head.table, parsed.path, head.span, rule)
                        tables.setdefault(head.table, []).append(found)

    def policies(self) -> list[str]:
        return sorted(self._by_policy)

    def tables(self, policy: str) -> dict[str, list[Definition]]:
        """The tables ``policy`` defines, each with its defining rules."""
        return self._by_policy.get(policy, {})

    def definitions(self, policy: str, table: str) -> list[Definition]:
        return self.tables(policy).get(table, [])

    def file(self, path: str) -> ParsedText | None:
        return self.files.get(normal_path(path))

    def datasource_tables(self) -> list[tuple[str, str]]:
        """Every ``(module, table)`` the rules read from a module that is no policy."""
        found = set()
        for parsed in self.files.values():
            for atom in walk_atoms(parsed.rules):
                module = atom.theory if isinstance(atom, Atom) else None
                if module and module != BUILTIN_THEORY and module not in self._by_policy:
                    found.add((module, atom.table))
        return sorted(found)


class WorkspaceIndex:
    """The open documents' texts and the policy files under the workspace folders."""

    def __init__(self, roots: Iterable[str | Path] = ()):
        self.roots = [normal_path(r) for r in roots]
        self._open: dict[str, str] = {}
        self._parsed: dict[str, tuple[object, ParsedText | None]] = {}

    def open(self, path: str, text: str) -> None:
        """Hold an open document's text (it wins over the file on disk)."""
        self._open[normal_path(path)] = text

    def close(self, path: str) -> None:
        self._open.pop(normal_path(path), None)

    def _disk_files(self) -> Iterator[str]:
        count = 0
        for root in self.roots:
            for folder, dirs, names in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
                for name in sorted(names):
                    if name.endswith(POLICY_SUFFIXES):
                        count += 1
                        if count > MAX_FILES:
                            return
                        yield os.path.join(folder, name)

    def _read(self, path: str) -> ParsedText | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        parsed = None
        if stat.st_size <= MAX_BYTES:
            try:
                text = Path(path).read_bytes().decode("utf-8-sig")
            except (OSError, UnicodeDecodeError):
                text = None
            if text is not None:
                parsed = parse_text(path, text)
        self._parsed[path] = (key, parsed)
        return parsed

    def _parse_open(self, path: str, text: str) -> ParsedText | None:
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == text:
            return cached[1]
        parsed = parse_text(path, text)
        self._parsed[path] = (text, parsed)
        return parsed

    def snapshot(self) -> Snapshot:
        """The policy files as they are now: the open texts, and the others from disk."""
        files: dict[str, ParsedText] = {}
        for path in self._disk_files():
            if path not in self._open:
                parsed = self._read(path)
                if parsed is not None:
                    files[path] = parsed
        for path, text in self._open.items():
            parsed = self._parse_open(path, text)
            if parsed is not None:
                files[path] = parsed
        return Snapshot(files)
