"""Policy files and data files, read and loaded into one Engine.

Shared by ``charter eval``, ``charter check`` and the server, so that every interface reads
files the same way:

- a ``.yaml``/``.yml`` policy file is a Congress library policy named by its ``name:``; any
  other file is Datalog text whose policy is named by the file's stem;
- a data file (JSON, or YAML) maps ``name:table`` to a list of rows. Each row is a list
  (positional) or an object (named columns). Rows of a policy loaded alongside are that
  policy's facts; any other ``name`` is a datasource;
- Congress's driver schemas (``nova``, ``neutronv2``, ...) are declared for every datasource
  the policies or the data use, before the policies compile, so named columns resolve.

Every problem found while reading is reported with the file and, where known, line and
column: policy problems as :class:`~charter.lang.errors.PolicyError` diagnostics, data
problems as one :class:`DataFileError` (a :class:`~charter.lang.errors.DataError`) listing
them all.

>>> ws = load_workspace([], [])
>>> ws.engine.tables()
[]
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.cli.data_formats import (
    OMITTED,
    DataFileError,
    DataTable,
    _kind,
    _message,
    _parse_data,
    _raise_data_errors,
    read_data_text,
)
from charter.datasources.schemas import driver_schema
from charter.engine import Engine, RuleChange
from charter.engine.engine import POLICY_KINDS
from charter.lang.ast import Rule, Span, rule_atoms
from charter.lang.checks import check_program
from charter.lang.duplicates import unique_rules
from charter.lang.errors import Diagnostic, PolicyError
from charter.lang.library import load_library_policy
from charter.lang.lint import WARNING_CODES, lint_policies
from charter.lang.names import POLICY_NAME_RULE, is_policy_name, suggested_name
from charter.lang.parser import parse
from charter.lang.suppress import Suppressions, filter_suppressed, unknown_codes
from charter.packs.schemas import driver_tables

__all__ = [
    "LIBRARY_SUFFIXES",
    "DataFileError",
    "DataTable",
    "PolicyFile",
    "Workspace",
    "check_policy_files",
    "check_texts",
    "compile_diagnostics",
    "datasource_schemas",
    "load_workspace",
    "policy_from_text",
    "read_data_file",
    "read_policy_files",
]

LIBRARY_SUFFIXES = (".yaml", ".yml")

Sources = dict[str, str]
"""File name -> text of every policy file read, so diagnostics can show the line they point at."""


# ---------------------------------------------------------------- policy files


@dataclass(frozen=True, slots=True)
class PolicyFile:
    """One policy read from a file: its name, kind and parsed (not yet compiled) rules,
    each once, and the warnings of reading it (``duplicate_rule``: a rule the file writes
    twice, kept once as Congress kept it)."""

    name: str
    path: str
    kind: str
    rules: tuple[Rule, ...]
    warnings: tuple[Diagnostic, ...] = ()


def _read_text(path: str) -> str:
    """A file's UTF-8 text, without a leading byte order mark (some editors write one);
    OSError and UnicodeDecodeError pass through to the caller."""
    return Path(path).read_bytes().decode("utf-8-sig")


def read_policy_file(path: str | Path, sources: Sources) -> PolicyFile:
    """Read and parse one policy file (library YAML or Datalog text).

    Raises:
        PolicyError: the file cannot be read (``file_error``), does not parse, names an
            unknown policy kind, or names its policy with a name that is not an identifier
            (``invalid_policy_name``: a Datalog file's stem, a library file's ``name:``).
    """
    name = str(path)
    try:
        text = _read_text(name)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PolicyError([Diagnostic("file_error", f"cannot read {name}: {reason}")]) from None
    except UnicodeDecodeError as exc:
        message = f"{name} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        raise PolicyError([Diagnostic("file_error", message, Span(name, 1, 1))]) from None
    sources[name] = text
    return policy_from_text(name, text)


def policy_from_text(name: str, text: str) -> PolicyFile:
    """Parse one policy file's text: library YAML by its suffix, else Datalog named by the
    file's stem. Raises PolicyError as :func:`read_policy_file`."""
    if Path(name).suffix.lower() in LIBRARY_SUFFIXES:
        library = load_library_policy(text, name)
        if library.kind not in POLICY_KINDS:
            message = f"unknown policy kind {library.kind}; use one of {', '.join(POLICY_KINDS)}"
            span = Span(name, _key_line(text, "kind"), 1)
            raise PolicyError([Diagnostic("library_invalid", message, span)])
        rules = tuple(entry.rule for entry in library.rules)
        return PolicyFile(library.name, name, library.kind, rules, library.warnings)
    return _read_datalog(name, text)


def _read_datalog(name: str, text: str) -> PolicyFile:
    """A Datalog file: its policy is named by the file's stem, which must be an identifier
    (reported with the file's syntax errors, if any)."""
    stem = Path(name).stem
    diagnostics: list[Diagnostic] = []
    if not is_policy_name(stem):
        fixed = suggested_name(stem) + Path(name).suffix
        message = (
            f"policy name {stem!r} is not an identifier: a Datalog file's policy is named by "
            f"the file's name, which must use {POLICY_NAME_RULE}; rename {Path(name).name} "
            f"(e.g. to {fixed})"
        )
        diagnostics.append(Diagnostic("invalid_policy_name", message, Span(name, 1, 1)))
    try:
        rules = parse(text, name)
    except PolicyError as exc:
        raise PolicyError(diagnostics + exc.diagnostics) from None
    if diagnostics:
        raise PolicyError(diagnostics)
    kept, warnings = unique_rules(rules, stem)
    return PolicyFile(stem, name, "nonrecursive", tuple(kept), tuple(warnings))


def _key_line(text: str, key: str) -> int:
    """The line of a top-level ``key:`` in YAML text (1 when not found)."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return number
    return 1


def read_policy_files(
    paths: Iterable[str | Path],
    sources: Sources,
    read: Callable[[str | Path, Sources], PolicyFile] = read_policy_file,
) -> tuple[list[PolicyFile], list[Diagnostic]]:
    """Read every policy file, collecting the problems of all of them (not only the first).

    Returns the policies that were read and every diagnostic found, including two files
    that define the same policy. ``read`` reads one file (texts in memory: see
    :func:`check_texts`).
    """
    policies: list[PolicyFile] = []
    diagnostics: list[Diagnostic] = []
    defined: dict[str, str] = {}
    for path in paths:
        try:
            policy = read(path, sources)
        except PolicyError as exc:
            diagnostics += exc.diagnostics
            continue
        if policy.name in defined:
            message = (
                f"{defined[policy.name]} and {policy.path} both define policy {policy.name}; "
                f"rename one of them"
            )
            diagnostics.append(Diagnostic("duplicate_policy", message, Span(policy.path, 1, 1)))
            continue
        defined[policy.name] = policy.path
        policies.append(policy)
        diagnostics += policy.warnings
    return policies, diagnostics


def referenced_modules(rules: Iterable[Rule]) -> set[str]:
    """The ``module`` of every ``module:table`` the rules name.

    >>> sorted(referenced_modules(parse("p(x) :- nova:servers(id=x), not q:t(x)")))
    ['nova', 'q']
    """
    return {atom.theory for atom in rule_atoms(rules) if atom.theory}


# ---------------------------------------------------------------- data files


def read_data_file(path: str | Path) -> list[DataTable]:
    """Read one data file: JSON when it ends in ``.json``, one table of NDJSON, CSV or
    Parquet by those suffixes (:mod:`charter.cli.data_formats`), YAML otherwise.

    Raises:
        DataFileError: the file cannot be read or parsed, is past the input limits of
            :mod:`charter.lang.limits` (nested too deeply, a too large integer, YAML aliases
            that expand too far or refer to themselves, text that is not valid Unicode), or
            is not a mapping of ``name:table`` to a list of rows; the message starts with
            ``file:line:col`` where known.
    """
    name = str(path)
    from charter.cli.data_formats import ONE_TABLE_SUFFIXES, read_one_table_file

    if Path(name).suffix.lower() in ONE_TABLE_SUFFIXES:
        return read_one_table_file(name)
    text = read_data_text(name)
    data, locator = _parse_data(name, text)
    if data is None:
        return []
    if not isinstance(data, dict):
        message = f"a data file maps name:table to a list of rows, not {_kind(data)}"
        raise DataFileError([_message(locator.at(locator.root()), "data_invalid", message)])
    errors: list[str] = []
    tables = []
    for key, rows in data.items():
        where = locator.locate(str(key))
        if not isinstance(key, str) or ":" not in key or key.startswith(":") or key.endswith(":"):
            message = f"key {key!r} must name a table as name:table (e.g. nova:servers)"
            errors.append(_message(where(None), "data_invalid", message))
        elif not isinstance(rows, list):
            message = f"{key} must be a list of rows, not {_kind(rows)}"
            errors.append(_message(where(None), "data_invalid", message))
        else:
            tables.append(DataTable(key, rows, where))
    _raise_data_errors(errors)
    return tables


# ---------------------------------------------------------------- schemas


def datasource_schemas(
    policies: Sequence[PolicyFile], tables: Sequence[Any] = ()
) -> dict[str, dict[str, tuple[str, ...]]]:
    """The schemas to declare, per datasource, before the policies compile.

    A datasource is a ``name`` used in ``name:table`` by the policies or the data that is not
    one of ``policies``. A known driver (by id, or a Congress alias) gets its tables: the
    installed driver's (Congress's tables, with their columns, and the tables Charter adds),
    else Congress's.
    Another datasource whose data gives rows as objects gets its tables' columns from the
    keys. Declaring makes a datasource's table set complete, so that datasource's other
    tables, given as lists or read positionally by the policies, are declared too, with
    columns ``c0, c1, ...``.
    """
    names = {p.name for p in policies}
    used = set().union(*(referenced_modules(p.rules) for p in policies))
    used |= {t.module for t in tables}
    schemas: dict[str, dict[str, tuple[str, ...]]] = {}
    for module in sorted(used - names):
        known_tables = driver_tables(module)  # the installed driver's, else Congress's
        if known_tables:
            schemas[module] = dict(known_tables)
    by_module: dict[str, list[Any]] = {}  # DataTables, or data_columns.ColumnTables
    for table in tables:
        if table.module not in names and table.module not in schemas:
            by_module.setdefault(table.module, []).append(table)
    for module, module_tables in by_module.items():
        if not any(t.object_columns() for t in module_tables):
            continue
        schema: dict[str, tuple[str, ...]] = {}
        for table in module_tables:
            columns = table.object_columns()
            width = table.first_width()
            if columns is None and width is not None:
                columns = tuple(f"c{i}" for i in range(width))
            if columns is not None:  # the union of the keys of every file's objects
                known = schema.get(table.name, ())
                schema[table.name] = known + tuple(c for c in columns if c not in known)
        for policy in policies:
            for atom in rule_atoms(policy.rules):
                if atom.theory == module and atom.table not in schema and not atom.named:
                    schema[atom.table] = tuple(f"c{i}" for i in range(len(atom.args)))
        schemas[module] = schema
    return schemas


# ---------------------------------------------------------------- rows


def _value(value: object) -> str | int | float | None:
    """A data value as Congress's drivers stored it: bools and null become strings; an
    omitted column is None; a list or an object is None too (the caller refuses it)."""
    if value is OMITTED:
        return None
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, list | dict):
        return None
    return str(value)  # YAML dates and times, as Congress's value_to_congress did


def _shown(value: object) -> object:
    return None if value is OMITTED else str(value)


def _show(row: object, limit: int = 80) -> str:
    text = json.dumps(row, default=_shown, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class _RowReader:
    """Turns one table's data rows into tuples, collecting an error for each bad row."""

    table: DataTable
    columns: tuple[str, ...] | None
    arity: int | None
    errors: list[str]
    origin: str = "its schema"
    keys: tuple[str, ...] | None = None
    out: list[tuple] = field(default_factory=list)

    def error(self, index: int, code: str, message: str) -> None:
        row = f"row {index + 1} of {self.table.table} {_show(self.table.rows[index])}"
        self.errors.append(_message(self.table.where(index), code, f"{row} {message}"))

    def read(self) -> list[tuple]:
        for index, row in enumerate(self.table.rows):
            if isinstance(row, dict):
                values = self.named(index, row)
            elif isinstance(row, list):
                values = row
            else:
                message = (
                    f"must be a list of values or an object of column: value, not {_kind(row)}"
                )
                self.error(index, "data_invalid", message)
                continue
            if values is None or not self.fits(index, values):
                continue
            converted = [_value(v) for v in values]
            bad = [i for i, v in enumerate(values) if isinstance(v, list | dict)]
            if bad:
                column = self.columns[bad[0]] if self.columns else f"c{bad[0]}"
                message = (
                    f"holds {_kind(values[bad[0]])} in column {column}; "
                    f"values are strings or numbers"
                )
                self.error(index, "data_invalid", message)
                continue
            self.out.append(tuple(converted))
        return self.out

    def named(self, index: int, row: dict) -> list | None:
        """An object row's values in column order. With a known schema (a driver's, or the
        columns the data's objects declare) an omitted column is None; without one (a
        policy's facts) the first object's keys name the columns and every object has them.
        A key that is not a column is an error either way."""
        row = {str(k): v for k, v in row.items()}
        keys = list(row)
        columns = self.columns or self.keys
        if columns is None:  # no schema: the first object's keys name the columns
            self.keys = columns = tuple(keys)
        extra = [k for k in keys if k not in columns]
        missing = [c for c in columns if c not in row] if self.columns is None else []
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lacks column{'s' * (len(missing) > 1)} {', '.join(missing)}")
            if extra:
                parts.append(f"has unknown column{'s' * (len(extra) > 1)} {', '.join(extra)}")
            source = "" if self.columns is None else f" ({self.origin})"
            message = (
                f"{' and '.join(parts)}; {self.table.table} has columns "
                f"{', '.join(columns)}{source}"
            )
            unused = [c for c in columns if c not in row]
            hint = difflib.get_close_matches(extra[0], unused, n=1, cutoff=0.5) if extra else []
            if hint:
                message += f"; did you mean {hint[0]} for {extra[0]}?"
            code = "unknown_column" if extra and not missing else "missing_column"
            self.error(index, code, message)
            return None
        return [row.get(c, OMITTED) for c in columns]

    def fits(self, index: int, values: list) -> bool:
        expected = len(self.columns) if self.columns is not None else self.arity
        if expected is None:
            self.arity = expected = len(values)
            self.origin = "as its first row"
        if len(values) != expected:
            listed = f": {', '.join(self.columns)}" if self.columns else ""
            message = (
                f"has {len(values)} values; {self.table.table} has {expected} columns "
                f"({self.origin}{listed})"
            )
            self.error(index, "arity_mismatch", message)
            return False
        return True


# ---------------------------------------------------------------- the workspace


@dataclass
class Workspace:
    """An engine loaded from files, the column names the CLI shows for its tables, and
    the warnings of reading the files (a rule written twice)."""

    engine: Engine
    policies: list[PolicyFile]
    data_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)

    def columns(self, table: str) -> tuple[str, ...] | None:
        """A table's column names: from its schema, else from the data's objects."""
        if ":" in table:
            module, name = table.split(":", 1)
            columns = self.engine.schemas.columns(module, name)
            if columns is not None:
                return columns
        return self.data_columns.get(table)

    def default_tables(self) -> list[str]:
        """The ``error`` and ``warning`` tables of the loaded policies that exist."""
        known = set(self.engine.tables())
        wanted = [f"{p.name}:{t}" for p in self.policies for t in ("error", "warning")]
        return [t for t in wanted if t in known]


def load_policies(engine: Engine, policies: Sequence[PolicyFile]) -> None:
    """Create the policies and add all their rules in one batch: one compile pass, all or none."""
    created: list[str] = []
    try:
        for policy in policies:
            engine.create_policy(policy.name, policy.kind)
            created.append(policy.name)
        engine.apply(RuleChange(p.name, rule, +1) for p in policies for rule in p.rules)
    except Exception:
        for name in created:
            engine.delete_policy(name)
        raise


def data_rows(
    engine: Engine, tables: Sequence[DataTable], policies: Iterable[str]
) -> tuple[dict[str, list[tuple]], dict[str, tuple[str, ...]]]:
    """Check the data's rows against the engine's schemas and arities; return them as tuples.

    Returns the rows per table and the column names that objects gave tables without a
    schema (a policy's facts).

    Raises:
        DataFileError: listing every bad row and unknown table, each with its place.
    """
    names = set(policies)
    errors: list[str] = []
    rows: dict[str, list[tuple]] = {}
    keys: dict[str, tuple[str, ...]] = {}
    arities: dict[str, int | None] = {}
    for table in tables:
        module, name = table.module, table.name
        columns = engine.schemas.columns(module, name)
        if columns is None and module not in names and engine.schemas.is_complete(module):
            known = engine.schemas.tables(module)
            hint = difflib.get_close_matches(name, known, n=1)
            more = f"; did you mean {module}:{hint[0]}?" if hint else ""
            message = f"datasource {module} has no table {name}{more}"
            errors.append(_message(table.where(None), "unknown_table", message))
            continue
        arity = arities.get(table.table, engine.arity(table.table))
        reader = _RowReader(table, columns, arity, errors, keys=keys.get(table.table))
        if columns is not None:
            reader.origin = _schema_origin(module, name)
        elif arity is not None:
            reader.origin = "as its rules use it"
        rows.setdefault(table.table, []).extend(reader.read())
        arities[table.table] = reader.arity
        if reader.keys is not None:
            keys[table.table] = reader.keys
    _raise_data_errors(errors)
    return rows, keys


def _schema_origin(module: str, table: str) -> str:
    try:
        congress = driver_schema(module)
    except LookupError:
        congress = {}
    if table in congress:
        return f"Congress's {module} driver schema"
    if driver_tables(module):
        return f"the {module} driver's schema"
    return "as the data's objects declare them"


def load_workspace(
    policy_paths: Iterable[str | Path],
    data_paths: Iterable[str | Path] = (),
    *,
    sources: Sources | None = None,
    engine: Engine | None = None,
    columnar: bool = True,
) -> Workspace:
    """Read policy and data files and load them into one engine (a new one by default).

    Data files are read into columns (:mod:`charter.cli.data_columns`) unless
    ``columnar`` is False or that path meets something it does not handle exactly; then
    they are read row by row, which loads the same rows or reports every bad one.

    Args:
        policy_paths: policy files; library YAML or Datalog text.
        data_paths: data files mapping ``name:table`` to rows, or NDJSON, CSV and Parquet
            files of one table each (:mod:`charter.cli.data_formats`).
        sources: filled with each policy file's text, for rendering diagnostics.
        engine: an engine to load into instead of a new one.
        columnar: try the columnar reader first (False: the row reader only).

    Raises:
        PolicyError: every policy file's problems (syntax, compile, cross-policy checks).
        DataFileError: every data file problem, each starting with its place.
        EngineError: a policy whose name is taken.
    """
    sources = {} if sources is None else sources
    policies, diagnostics = read_policy_files(policy_paths, sources)
    data_paths = list(data_paths)
    if any(d.is_error for d in diagnostics):  # report the other files' errors too
        try:
            tables = [table for path in data_paths for table in read_data_file(path)]
        except DataFileError:
            tables = []
        raise PolicyError(diagnostics + compile_diagnostics(policies, tables))
    from charter.cli.data_columns import engine_columns, read_columns

    names = [p.name for p in policies]
    read = [read_columns(path) if columnar else None for path in data_paths]  # None: rows
    fast = None if None in read else [table for tables in read for table in tables or ()]
    del read
    exact = exact_tables(data_paths) if fast is None else None
    tables: Sequence[Any] = fast if fast is not None else exact or []
    engine = engine or Engine()
    for module, schema in datasource_schemas(policies, tables).items():
        engine.declare_datasource(module, schema)
    load_policies(engine, policies)
    columns = engine_columns(engine, fast, names) if fast is not None else None
    del tables, fast
    if columns is not None:
        engine.load_columns(columns[0])
        return Workspace(engine, policies, columns[1], diagnostics)
    # the exact reader: the same rows, or every problem with its place, and nothing loaded
    rows, keys = data_rows(engine, exact if exact is not None else exact_tables(data_paths), names)
    engine.load_rows(rows)
    return Workspace(engine, policies, keys, diagnostics)


def exact_tables(data_paths: Iterable[str | Path]) -> list[DataTable]:
    """Every data file read row by row (:func:`read_data_file`), in order."""
    return [table for path in data_paths for table in read_data_file(path)]


def compile_diagnostics(
    policies: Sequence[PolicyFile],
    tables: Sequence[DataTable] = (),
    compiled: dict[str, list[Rule]] | None = None,
) -> list[Diagnostic]:
    """Every diagnostic of compiling the policies together, without loading them.

    The checks the engine runs when loading, but collecting warnings too and carrying on
    past errors: each policy's rules compile against the datasource schemas, then the
    program-wide checks (arity agreement, stratification) run over all policies. Each
    policy's rules that compiled are put in ``compiled`` when given (for lint).
    """
    diagnostics: list[Diagnostic] = []
    engine = Engine()
    for module, schema in datasource_schemas(policies, tables).items():
        engine.declare_datasource(module, schema)
    normalized: dict[str, list[Rule]] = {}
    for policy in policies:
        unique: dict[Rule, None] = {}
        for rule in policy.rules:
            if rule in unique:
                message = f"rule {rule} already exists in policy {policy.name}"
                diagnostics.append(Diagnostic("rule_already_exists", message, rule.span))
            unique[rule] = None
        rules, found = engine.compile(policy.name, list(unique), policy.kind)
        diagnostics += found
        if compiled is not None:
            compiled[policy.name] = rules
        if policy.kind != "action":
            normalized[policy.name] = rules
    known: Mapping[str, int] = {
        f"{module}:{table}": len(columns)
        for module, tables in engine.schemas.modules.items()
        for table, columns in tables.items()
    }
    return diagnostics + check_program(normalized, known)


def check_policy_files(
    paths: Iterable[str | Path], sources: Sources, disabled: Iterable[str] = ()
) -> list[Diagnostic]:
    """Every diagnostic (errors and warnings, lint's too) of the policy files, checked
    together, sorted; less the warnings switched off by ``disabled`` codes or by a
    ``charter: disable=`` comment on their rule."""
    policies, diagnostics = read_policy_files(paths, sources)
    return _checked(policies, diagnostics, sources, disabled)


def check_texts(texts: Mapping[str, str], disabled: Iterable[str] = ()) -> list[Diagnostic]:
    """:func:`check_policy_files` on texts in memory (file name -> text), for an editor.

    >>> [str(d) for d in check_texts({"p.dl": "error(x) :- q(x, y), not q(x, 1)"})]  # doctest: +ELLIPSIS
    ['p.dl:1:13: warning[unknown_table]: literal q(x, y) reads table q, ...', 'p.dl:1:18: ...]
    """
    sources: Sources = {}

    def read(path: str | Path, sources: Sources) -> PolicyFile:
        name = str(path)
        sources[name] = texts[name]
        return policy_from_text(name, texts[name])

    policies, diagnostics = read_policy_files(list(texts), sources, read)
    return _checked(policies, diagnostics, sources, disabled)


def _checked(
    policies: list[PolicyFile],
    diagnostics: list[Diagnostic],
    sources: Sources,
    disabled: Iterable[str],
) -> list[Diagnostic]:
    compiled: dict[str, list[Rule]] = {}
    diagnostics = diagnostics + compile_diagnostics(policies, compiled=compiled)
    diagnostics += lint_policies(policies, datasource_schemas(policies), compiled)
    comments = {
        p.path: Suppressions(
            sources[p.path],
            [*p.rules, *(w.span for w in p.warnings if w.span is not None)],
            Path(p.path).suffix.lower() in LIBRARY_SUFFIXES,
        )
        for p in policies
        if p.path in sources
    }
    diagnostics += unknown_codes(comments, WARNING_CODES)
    return sorted(filter_suppressed(diagnostics, comments, disabled), key=Diagnostic.sort_key)
