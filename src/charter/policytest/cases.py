"""Test files (``*_test.yaml``): their schema, validated with pydantic, and the cases they hold.

A test file sits beside the policies it tests. Its shape, in the spirit of OPA's YAML
conformance cases::

    policies: [cloud.dl]              # every case's policies (files relative to this file)
    fixtures:                          # named inputs a case extends with fixtures: [name]
      fleet:
        data:
          nova:servers:
            - {id: vm1, status: ERROR} # an object row names only the columns that matter
    cases:
      - name: a server in ERROR state is an error
        fixtures: [fleet]
        expect:
          error: [[vm1, "server is in ERROR state"]]   # exactly these rows
          warning: {contains: [], excludes: [[vm1, "flavor not approved"]]}

A case's inputs are the file's, then each fixture's in order, then its own: ``policies``
(a file, ``{file: ...}``, ``{library: Name}`` for a policy of Charter's library, or
``{name: p, text: "..."}`` inline), ``data`` (``name:table`` to rows, as a ``--data`` file
holds) and ``data_files``. What must hold: ``expect`` (per table: a list of rows is the
exact set, ``[]`` an empty table, ``{contains, excludes}`` subsets), ``error`` (the code,
optionally ``line``, ``col``, ``file`` and a ``message`` fragment) or ``simulate`` (a
sequence and the rows it adds to and removes from named tables).

A file of the wrong shape raises :class:`TestFileError`, each message at ``file:line:col``.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from charter.cli.loading import DataTable
from charter.lang import limits
from charter.lang.library import _Loader as _LibraryLoader  # maps rule text into its YAML
from charter.lang.library import load_library_file
from charter.lang.parser import Origin
from charter.lang.yaml_nodes import duplicate_keys

__all__ = [
    "DeltaCheck",
    "PolicySource",
    "SimulateCheck",
    "TableCheck",
    "TestCase",
    "TestFileError",
    "find_test_files",
    "load_test_file",
]

TEST_SUFFIXES = ("_test.yaml", "_test.yml")
MAX_ERRORS = 20
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Value = str | int | float | bool | None


def _row_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "scalar"


RowSpec = Annotated[
    Annotated[list[Value], Tag("list")]
    | Annotated[dict[str, Value], Tag("object")]
    | Annotated[Value, Tag("scalar")],
    Discriminator(_row_kind),
]
"""A row: a list of values, an object of column: value, or one value (a one-column row)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class PolicySpec(_Model):
    """One policy of a case: exactly one of ``file``, ``library`` or ``text``."""

    file: str | None = None
    library: str | None = None
    text: str | None = None
    name: str | None = Field(None, description="the policy's name, for inline text")
    kind: Literal["nonrecursive", "action", "database", "materialized"] = "nonrecursive"

    @model_validator(mode="after")
    def _one_source(self) -> PolicySpec:
        given = [k for k in ("file", "library", "text") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a policy is one of file: PATH, library: NAME or text: RULES")
        if self.text is not None and not self.name:
            raise ValueError("inline text: needs name: (the policy's name)")
        if self.text is None and (self.name is not None or self.kind != "nonrecursive"):
            raise ValueError("name: and kind: go with text: (a file names its own policy)")
        if self.name is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.name):
            raise ValueError(
                f"policy name {self.name!r} must be an identifier (letters, "
                "digits, _; starting with a letter)"
            )
        return self


PolicyEntry = Annotated[
    Annotated[str, Tag("file")] | Annotated[PolicySpec, Tag("spec")],
    Discriminator(
        lambda v: "file" if isinstance(v, str) else "spec" if isinstance(v, dict) else None,
        custom_error_type="policy",
        custom_error_message="a policy is a file name, or a mapping with file:, library: or "
        "name: and text:",
    ),
]


class SubsetSpec(_Model):
    """Rows a table must hold (``contains``) and rows it must not (``excludes``)."""

    contains: list[RowSpec] = []
    excludes: list[RowSpec] = []

    @model_validator(mode="after")
    def _something(self) -> SubsetSpec:
        if not self.contains and not self.excludes:
            raise ValueError("give contains: or excludes: rows (or a list: the exact rows)")
        return self


Expectation = Annotated[
    Annotated[list[RowSpec], Tag("rows")] | Annotated[SubsetSpec, Tag("subset")],
    Discriminator(
        lambda v: "rows" if isinstance(v, list) else "subset" if isinstance(v, dict) else None,
        custom_error_type="expectation",
        custom_error_message="a table's expectation is a list of rows (exactly those; [] for "
        "none) or a mapping with contains: and/or excludes: rows",
    ),
]


class ErrorSpec(_Model):
    """The error a case must fail with: its code, and optionally where and what it says."""

    code: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    message: str | None = Field(None, description="a fragment the message contains")


class DeltaSpec(_Model):
    added: list[RowSpec] = []
    removed: list[RowSpec] = []


class SimulateSpec(_Model):
    """A simulate sequence (Congress's syntax) and the rows it adds and removes, per table."""

    sequence: str
    policy: str | None = None
    action_policy: str | None = None
    delta: dict[str, DeltaSpec]


class InputsSpec(_Model):
    policies: list[PolicyEntry] = []
    data: dict[str, list[Any]] = {}
    data_files: list[str] = []


class CaseSpec(InputsSpec):
    name: str
    fixtures: list[str] = []
    expect: dict[str, Expectation] = {}
    error: ErrorSpec | None = None
    simulate: list[SimulateSpec] = []

    @field_validator("simulate", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _checks_something(self) -> CaseSpec:
        if self.error is not None and (self.expect or self.simulate):
            raise ValueError("a case expecting an error has no expect: or simulate:")
        if self.error is None and not self.expect and not self.simulate:
            raise ValueError("a case needs expect:, error: or simulate: (what must hold)")
        return self


class TestFileSpec(InputsSpec):
    __test__ = False  # not a pytest test class
    fixtures: dict[str, InputsSpec] = {}
    cases: list[CaseSpec] = Field(min_length=1)


# ---------------------------------------------------------------- what the runner reads


@dataclass(frozen=True)
class PolicySource:
    """Where a case's policy comes from: a file (Datalog or library YAML) or inline text."""

    path: str | None = None  # a file, as shown in messages
    name: str | None = None  # inline text: the policy's name
    kind: str = "nonrecursive"
    text: str | None = None
    origin: Origin | None = field(default=None, compare=False, hash=False)
    test_file: str | None = None


@dataclass
class TableCheck:
    """What one table must hold: ``exact`` rows (None: not checked), and subsets."""

    table: str
    line: int
    exact: list[Any] | None = None
    contains: list[Any] = field(default_factory=list)
    excludes: list[Any] = field(default_factory=list)


@dataclass
class DeltaCheck:
    table: str
    line: int
    added: list[Any]
    removed: list[Any]


@dataclass
class SimulateCheck:
    sequence: str
    line: int
    policy: str | None
    action_policy: str | None
    deltas: list[DeltaCheck]
    origin: Origin | None = None  # where the sequence's text sits in the test file


@dataclass
class TestCase:
    """One case, its inputs merged from the file and its fixtures, with the lines to report."""

    __test__ = False  # not a pytest test class

    file: str
    name: str
    line: int
    policies: list[PolicySource]
    data: list[DataTable]
    data_files: list[str]
    expect: list[TableCheck]
    error: ErrorSpec | None
    simulate: list[SimulateCheck]

    @property
    def label(self) -> str:
        return f"{self.file}: {self.name}"


class TestFileError(Exception):
    """A test file that cannot be used; each message starts with ``file:line:col``."""

    __test__ = False  # not a pytest test class

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("\n".join(messages))


# ---------------------------------------------------------------- finding test files


def find_test_files(paths: Iterable[str | Path]) -> list[str]:
    """The test files under ``paths``: a file as given, a folder's ``*_test.yaml`` (recursive).

    Raises:
        TestFileError: a path that does not exist.
    """
    found: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_file():
            found.append(str(path))
        elif p.is_dir():
            within: list[str] = []
            for folder, folders, names in os.walk(p):
                folders[:] = [f for f in folders if not f.startswith(".")]  # .git, .venv
                within += [
                    os.path.normpath(os.path.join(folder, n))
                    for n in names
                    if n.endswith(TEST_SUFFIXES)
                ]
            found += sorted(within)
        else:
            raise TestFileError([f"{path}: error[file_error]: no such file or folder"])
    return list(dict.fromkeys(found))


# ---------------------------------------------------------------- loading one file


def _message(where: str, message: str, code: str = "test_invalid") -> str:
    return f"{where}: error[{code}]: {message}"


class _Nodes:
    """Positions of a composed YAML document, found by a path of keys and indexes."""

    def __init__(self, path: str, root: Node | None):
        self.path = path
        self.root = root

    def find(self, loc: Iterable[Any], key: bool = False) -> tuple[Node | None, list[str]]:
        """The deepest node along ``loc`` (pydantic's error location; steps that are union
        tags are skipped), and the steps taken, for the message."""
        node, steps = self.root, []
        items = list(loc)
        for n, step in enumerate(items):
            last = n == len(items) - 1
            if isinstance(node, MappingNode) and isinstance(step, str):
                for key_node, value_node in node.value:
                    if isinstance(key_node, ScalarNode) and key_node.value == step:
                        node = key_node if key and last else value_node
                        steps.append(step)
                        break
            elif (
                isinstance(node, SequenceNode) and isinstance(step, int) and step < len(node.value)
            ):
                node = node.value[step]
                steps.append(f"[{step}]")
        return node, steps

    def at(self, node: Node | None) -> str:
        if node is None:
            return self.path
        return f"{self.path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    def line(self, *loc: Any) -> int:
        node, _ = self.find(loc)
        return node.start_mark.line + 1 if node is not None else 1

    def where(self, *loc: Any) -> str:
        return self.at(self.find(loc)[0])


def _compose(path: str, text: str) -> tuple[Any, Node | None]:
    try:  # before composing (recursive) and constructing (aliases multiply a value)
        limits.check_yaml(text, path, loader=_YamlLoader)
    except limits.InputError as exc:
        raise TestFileError([str(exc)]) from None
    loader = _YamlLoader(text)
    try:
        root = loader.get_single_node()
        repeated = [
            _message(
                f"{path}:{key.start_mark.line + 1}:{key.start_mark.column + 1}",
                f"key {key.value!r} is written twice in one mapping (first at line "
                f"{first.start_mark.line + 1}); YAML would keep only the last: merge them",
                "test_syntax",
            )
            for key, first in duplicate_keys(root)
        ]
        if repeated:
            raise TestFileError(repeated)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise TestFileError(
            [_message(where, f"malformed YAML: {exc.problem or exc.context}", "test_syntax")]
        ) from None
    except yaml.YAMLError as exc:
        raise TestFileError([_message(path, f"malformed YAML: {exc}", "test_syntax")]) from None
    finally:
        loader.dispose()
    return data, root


def _pydantic_messages(nodes: _Nodes, error: ValidationError) -> list[str]:
    messages: dict[str, str] = {}
    for item in error.errors(include_url=False):
        extra = item["type"] == "extra_forbidden"
        node, steps = nodes.find(item["loc"], key=extra)
        where = nodes.at(node)
        if where in messages:  # one message per place: a union reports each branch
            continue
        shown = "".join(s if s.startswith("[") else f".{s}" for s in steps).lstrip(".")
        text = item["msg"].removeprefix("Value error, ")
        if extra:
            text = f"unknown key {steps[-1] if steps else item['loc'][-1]!r}"
            text += _known_keys(item["loc"])
        elif item["type"] == "missing":
            text = f"{item['loc'][-1]!r} is required"
        messages[where] = _message(where, f"{shown}: {text}" if shown else text)
    return list(messages.values())


_KEYS = {
    "case": "name, fixtures, policies, data, data_files, expect, error, simulate",
    "top": "policies, data, data_files, fixtures, cases",
    "fixture": "policies, data, data_files",
}


def _known_keys(loc: tuple) -> str:
    if len(loc) == 1:
        return f"; a test file has {_KEYS['top']}"
    if loc[0] == "cases" and len(loc) == 3:
        return f"; a case has {_KEYS['case']}"
    if loc[0] == "fixtures" and len(loc) == 3:
        return f"; a fixture has {_KEYS['fixture']}"
    return ""


def load_test_file(path: str | Path) -> list[TestCase]:
    """Read, validate and resolve one test file into its cases.

    Raises:
        TestFileError: the file cannot be read, is not YAML, does not fit the schema, names
            an unknown fixture, a missing policy or data file, an unknown library policy,
            or holds two cases of one name; every problem found, each at its place.
    """
    name = str(path)
    try:
        text = Path(name).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        message = f"cannot read: {exc.strerror or exc}"
        raise TestFileError([_message(name, message, "file_error")]) from None
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        raise TestFileError([_message(name, message, "file_error")]) from None
    data, root = _compose(name, text)
    nodes = _Nodes(name, root)
    if not isinstance(data, dict):
        message = "a test file is a mapping with cases: (and policies:, fixtures:, data:)"
        raise TestFileError([_message(nodes.at(root), message)])
    try:
        spec = TestFileSpec.model_validate(data)
    except ValidationError as exc:
        raise TestFileError(_pydantic_messages(nodes, exc)[:MAX_ERRORS]) from None
    return _Resolver(name, text, nodes).cases(spec)


class _Resolver:
    """Turns a validated file into test cases: paths made relative to the working folder,
    fixtures merged, every expectation given its line."""

    def __init__(self, path: str, text: str, nodes: _Nodes):
        self.path = path
        self.folder = os.path.dirname(path)
        self.nodes = nodes
        self.library = _LibraryLoader(text, path)
        self.errors: list[str] = []

    def cases(self, spec: TestFileSpec) -> list[TestCase]:
        top = self.inputs(spec, ())
        fixtures = {n: self.inputs(f, ("fixtures", n)) for n, f in spec.fixtures.items()}
        out: list[TestCase] = []
        seen: dict[str, int] = {}
        for i, case in enumerate(spec.cases):
            loc = ("cases", i)
            line = self.nodes.line(*loc)
            if case.name in seen:
                self.error(
                    loc + ("name",),
                    f"case {case.name!r} is also at line "
                    f"{seen[case.name]}; give each case its own name",
                )
            seen[case.name] = line
            policies, data, files = list(top[0]), list(top[1]), list(top[2])
            for j, fixture in enumerate(case.fixtures):
                if fixture not in fixtures:
                    known = ", ".join(sorted(fixtures)) or "none"
                    self.error(
                        loc + ("fixtures", j),
                        f"unknown fixture {fixture!r}; this file's fixtures: {known}",
                    )
                    continue
                policies += fixtures[fixture][0]
                data += fixtures[fixture][1]
                files += fixtures[fixture][2]
            own = self.inputs(case, loc)
            policies += own[0]
            data += own[1]
            files += own[2]
            out.append(
                TestCase(
                    self.path,
                    case.name,
                    line,
                    list(dict.fromkeys(policies)),
                    data,
                    list(dict.fromkeys(files)),
                    self.expectations(case, loc),
                    case.error,
                    self.simulations(case, loc),
                )
            )
        if self.errors:
            raise TestFileError(self.errors[:MAX_ERRORS])
        return out

    def error(self, loc: tuple, message: str) -> None:
        self.errors.append(_message(self.nodes.where(*loc), message))

    def relative(self, loc: tuple, path: str) -> str | None:
        full = os.path.normpath(os.path.join(self.folder, path))
        if not os.path.isfile(full):
            self.error(loc, f"no such file {full} ({path} relative to the test file)")
            return None
        return full

    def inputs(
        self, spec: InputsSpec, loc: tuple
    ) -> tuple[list[PolicySource], list[DataTable], list[str]]:
        policies = []
        for i, entry in enumerate(spec.policies):
            source = self.policy(entry, loc + ("policies", i))
            if source is not None:
                policies.append(source)
        data = []
        for table, rows in spec.data.items():
            where = loc + ("data", table)
            if ":" not in table or table.startswith(":") or table.endswith(":"):
                self.error(
                    where, f"key {table!r} must name a table as name:table (e.g. nova:servers)"
                )
                continue
            data.append(DataTable(table, rows, self.locate(where)))
        files = []
        for i, path in enumerate(spec.data_files):
            full = self.relative(loc + ("data_files", i), path)
            if full is not None:
                files.append(full)
        return policies, data, files

    def locate(self, loc: tuple):
        def where(index: int | None) -> str:
            return self.nodes.where(*loc) if index is None else self.nodes.where(*loc, index)

        return where

    def policy(self, entry: str | PolicySpec, loc: tuple) -> PolicySource | None:
        if isinstance(entry, str):
            entry = PolicySpec(file=entry)
            where = loc
        else:
            where = loc + ("file",)
        if entry.file is not None:
            full = self.relative(where, entry.file)
            return PolicySource(path=full) if full is not None else None
        if entry.library is not None:
            found = library_policies().get(entry.library)
            if found is None:
                known = ", ".join(sorted(library_policies()))
                self.error(
                    loc + ("library",),
                    f"Charter's library has no policy {entry.library!r}; it has: {known}",
                )
                return None
            shown = os.path.relpath(found)  # as a user would type it, under the working folder
            return PolicySource(path=found if shown.startswith("..") else shown)
        node, _ = self.nodes.find(loc + ("text",))
        origin = self.library.origin(node) if isinstance(node, ScalarNode) else None
        return PolicySource(
            name=entry.name, kind=entry.kind, text=entry.text, origin=origin, test_file=self.path
        )

    def expectations(self, case: CaseSpec, loc: tuple) -> list[TableCheck]:
        out = []
        for table, expected in case.expect.items():
            node, _ = self.nodes.find(loc + ("expect", table), key=True)
            line = node.start_mark.line + 1 if node is not None else 1
            if isinstance(expected, list):
                out.append(TableCheck(table, line, exact=list(expected)))
            else:
                out.append(
                    TableCheck(table, line, None, list(expected.contains), list(expected.excludes))
                )
        return out

    def simulations(self, case: CaseSpec, loc: tuple) -> list[SimulateCheck]:
        out = []
        for i, sim in enumerate(case.simulate):
            where = (
                loc + ("simulate", i)
                if len(case.simulate) > 1 or self._listed(loc)
                else (loc + ("simulate",))
            )
            deltas = []
            for table, delta in sim.delta.items():
                node, _ = self.nodes.find(where + ("delta", table), key=True)
                line = node.start_mark.line + 1 if node is not None else 1
                deltas.append(DeltaCheck(table, line, list(delta.added), list(delta.removed)))
            node, _ = self.nodes.find(where + ("sequence",))
            origin = self.library.origin(node) if isinstance(node, ScalarNode) else None
            out.append(
                SimulateCheck(
                    sim.sequence,
                    self.nodes.line(*where),
                    sim.policy,
                    sim.action_policy,
                    deltas,
                    origin,
                )
            )
        return out

    def _listed(self, loc: tuple) -> bool:
        node, _ = self.nodes.find(loc + ("simulate",))
        return isinstance(node, SequenceNode)


@functools.cache
def library_policies() -> dict[str, str]:
    """Charter's shipped library policies: name -> file."""
    out: dict[str, str] = {}
    folder = Path(str(resources.files("charter") / "library"))
    for path in sorted(folder.glob("*.yaml")):
        try:
            out[load_library_file(path).name] = str(path)
        except Exception:  # noqa: BLE001, S112 - a broken shipped file is the library's test
            continue
    return out
