"""``pack.yaml``: its schema, validated with pydantic, each error at ``file:line:col``.

A pack's metadata file says what the pack is, what it reads, what it lets the operator set
and, for each control, what a person needs to act on a violation::

    id: openstack-security            # lower case words joined by '-'
    title: OpenStack security baseline
    version: 0.1.0
    description: Checks from the OpenStack Security Guide over Congress's drivers.
    policy: openstack_security        # the pack's policy in test cases (default: the id, '_')
    datasources:                      # what the rules read: datasource -> its tables
      neutronv2:
        driver: neutronv2             # default: the datasource's name
        tables: [security_group_rules]
    references:
      - {title: OpenStack Security Guide, url: "https://docs.openstack.org/security-guide/"}
    parameters:                       # tables of facts the operator may replace
      admin_ports:
        description: Administrative TCP ports and the service behind each.
        columns: [{name: port, type: integer}, {name: service, type: string}]
        default: [[22, SSH], [3389, RDP]]
    controls:
      - id: OS-NET-001                # stable: operators file tickets under it
        title: Security group rule opens an administrative port to the internet
        severity: high                # critical, high, medium, low or info
        table: admin_port_open_to_world
        columns: [rule_id, project, port, detail]   # first: the resource; detail: in words
        rationale: Why it matters.
        remediation: [What to do, step by step.]
        references: [{title: "...", section: "...", url: "..."}]

Shape errors (a missing key, a wrong type, an unknown key) come from pydantic; the checks
between keys (unique ids, a ``detail`` column, default rows that fit their columns) follow.
Every message starts with the place it is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from charter.lang import limits
from charter.lang.ast import Span
from charter.lang.errors import Diagnostic, PolicyError
from charter.lang.yaml_nodes import duplicate_keys

OWNER_COLUMNS = ("project", "namespace")
"""Column names a posture reads as the owner of a violation's resource, first found wins."""

__all__ = [
    "SEVERITIES",
    "ColumnSpec",
    "ControlSpec",
    "DatasourceSpec",
    "PackError",
    "PackSpec",
    "ParameterSpec",
    "Reference",
    "YamlPlaces",
    "parse_pack_yaml",
]

SEVERITIES = ("critical", "high", "medium", "low", "info")
PACK_ID = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
CONTROL_ID = r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$"
IDENTIFIER = r"^[a-z_][a-z0-9_]*$"
VERSION = r"^[0-9]+(\.[0-9]+)*([-+.][0-9A-Za-z.]+)?$"
PARAMETER_TYPES = ("string", "integer", "number", "any")
MAX_ERRORS = 20
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
Text = Annotated[str, Field(min_length=1)]


class PackError(PolicyError):
    """A pack that cannot be used; each diagnostic names its file, line and column."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Reference(_Model):
    """Where a control (or the pack) comes from: a guide, a benchmark, a section of either."""

    title: Text
    section: str | None = Field(None, description="e.g. 'Networking: security groups'")
    url: str | None = Field(None, pattern=r"^https?://\S+$")


class ColumnSpec(_Model):
    """One column of a control's violation rows, or of a parameter's rows."""

    name: Identifier
    description: str = ""
    type: Literal["string", "integer", "number", "any"] = "any"


def _columns(value: Any) -> Any:
    """``[port, {name: service, ...}]``: a bare name is a column with only its name."""
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


class DatasourceSpec(_Model):
    """A datasource the pack's rules read (``name:table``), by the name rules give it."""

    driver: str | None = Field(None, description="the driver (default: the datasource's name)")
    tables: list[Text] = Field(min_length=1)
    description: str = ""


class ParameterSpec(_Model):
    """A table of facts the pack's rules read and the operator may replace whole."""

    description: Text
    columns: list[ColumnSpec] = Field(min_length=1)
    default: list[Any] = Field(description="rows; a one-column row may be written bare")

    @field_validator("columns", mode="before")
    @classmethod
    def _bare_columns(cls, value: Any) -> Any:
        return _columns(value)


class ControlSpec(_Model):
    """One control: a table of violations and what a person needs to act on one."""

    id: Annotated[str, Field(pattern=CONTROL_ID)]
    title: Text
    severity: Literal["critical", "high", "medium", "low", "info"]
    table: Identifier
    columns: list[ColumnSpec] = Field(min_length=2)
    rationale: Text
    remediation: list[Text] = Field(min_length=1)
    references: list[Reference] = Field(min_length=1)

    @field_validator("columns", mode="before")
    @classmethod
    def _bare_columns(cls, value: Any) -> Any:
        return _columns(value)

    @field_validator("remediation", mode="before")
    @classmethod
    def _one_step(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def policy(self) -> str:
        """The policy (and library policy) the control becomes: ``OS-NET-001`` -> ``OS_NET_001``."""
        return self.id.replace("-", "_")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def project_column(self) -> str | None:
        """The column that says who owns the resource: ``project`` (OpenStack), else
        ``namespace`` (Kubernetes); the posture shows it as the row's project."""
        return next((c for c in OWNER_COLUMNS if c in self.column_names), None)


class PackSpec(_Model):
    """The whole of ``pack.yaml``."""

    id: Annotated[str, Field(pattern=PACK_ID)]
    title: Text
    version: Annotated[str, Field(pattern=VERSION)]
    description: Text
    policy: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")] | None = None
    datasources: dict[Identifier, DatasourceSpec] = Field(min_length=1)
    references: list[Reference] = []
    parameters: dict[Identifier, ParameterSpec] = {}
    controls: list[ControlSpec] = Field(min_length=1)

    @property
    def policy_name(self) -> str:
        """The pack's policy in its test cases: ``policy:``, else the id with ``_`` for ``-``."""
        return self.policy or self.id.replace("-", "_")


# ---------------------------------------------------------------- places in the YAML


class YamlPlaces:
    """Positions of a composed YAML document, found by a path of keys and indexes."""

    def __init__(self, file: str, root: Node | None):
        self.file = file
        self.root = root

    def node(self, loc: Iterable[Any], key: bool = False) -> Node | None:
        """The deepest node along ``loc`` (the key's node itself with ``key``)."""
        node = self.root
        items = list(loc)
        for n, step in enumerate(items):
            if isinstance(node, MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, ScalarNode) and key_node.value == str(step):
                        node = key_node if key and n == len(items) - 1 else value_node
                        break
                else:
                    return node
            elif isinstance(node, SequenceNode) and isinstance(step, int):
                if step >= len(node.value):
                    return node
                node = node.value[step]
            else:
                return node
        return node

    def span(self, *loc: Any, key: bool = False) -> Span:
        node = self.node(loc, key)
        if node is None:
            return Span(self.file, 1, 1)
        start, end = node.start_mark, node.end_mark
        return Span(self.file, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def _where(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_KEYS = {
    (): "id, title, version, description, policy, datasources, references, parameters, controls",
    ("controls",): "id, title, severity, table, columns, rationale, remediation, references",
    ("parameters",): "description, columns, default",
    ("datasources",): "driver, tables, description",
}


def _pydantic(places: YamlPlaces, error: ValidationError) -> list[Diagnostic]:
    out: dict[tuple, Diagnostic] = {}
    missing: dict[tuple, list[str]] = {}  # parent -> the keys it lacks, in one message
    for item in error.errors(include_url=False):
        loc = tuple(
            p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        if item["type"] == "missing":
            missing.setdefault(loc[:-1], []).append(repr(loc[-1]))
            continue
        extra = item["type"] == "extra_forbidden"
        span = places.span(*loc, key=extra)
        where = (span.line, span.col)
        if where in out:
            continue
        message = item["msg"].removeprefix("Value error, ")
        if extra:
            kind = (loc[0],) if len(loc) >= 2 else ()
            known = _KEYS.get(kind)
            message = f"unknown key {loc[-1]!r}" + (f"; use {known}" if known else "")
        elif item["type"] == "string_pattern_mismatch":
            message = _pattern_hint(loc, item.get("input"))
        elif item["type"] == "literal_error":
            message = f"{item.get('input')!r} is not one of: {_literals(loc)}"
        shown = _where(loc[:-1] if extra else loc)
        text = f"{shown}: {message}" if shown else message
        out[where] = Diagnostic("pack_invalid", text, span)
    for parent, keys in missing.items():
        span = places.span(*parent)
        what = keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]
        message = f"{what} {'is' if len(keys) == 1 else 'are'} required"
        shown = _where(parent)
        out[(span.line, span.col, "missing")] = Diagnostic(
            "pack_invalid", f"{shown}: {message}" if shown else message, span
        )
    return list(out.values())


def _pattern_hint(loc: tuple, value: Any) -> str:
    last = loc[-1] if loc else ""
    if loc[:1] == ("id",) and len(loc) == 1:
        return f"pack id {value!r} must be lower case words joined by '-' (e.g. my-pack)"
    if last == "id":
        return f"control id {value!r} must be upper case parts joined by '-' (e.g. OS-NET-001)"
    if last == "version":
        return f"version {value!r} must be dotted numbers (e.g. 1.2.0)"
    if last == "url":
        return f"url {value!r} must start with http:// or https://"
    if last == "policy":
        return f"policy {value!r} must be an identifier (letters, digits, '_')"
    return f"{value!r} must be a lower-case identifier (letters, digits, '_')"


def _literals(loc: tuple) -> str:
    if loc and loc[-1] == "severity":
        return ", ".join(SEVERITIES)
    return ", ".join(PARAMETER_TYPES)


def _compose(file: str, text: str) -> tuple[Any, Node | None]:
    try:
        limits.check_yaml(text, file, loader=_YamlLoader)
    except limits.InputError as exc:
        span = Span(file, exc.line or 1, exc.col or 1)
        raise PackError([Diagnostic(exc.code, exc.message, span)]) from None
    loader = _YamlLoader(text)
    try:
        root = loader.get_single_node()
        repeated = [
            Diagnostic(
                "pack_syntax",
                f"key {key.value!r} is written twice in one mapping (first at line "
                f"{first.start_mark.line + 1}); YAML would keep only the last: merge them",
                Span(file, key.start_mark.line + 1, key.start_mark.column + 1),
            )
            for key, first in duplicate_keys(root)
        ]
        if repeated:
            raise PackError(repeated)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = Span(file, mark.line + 1, mark.column + 1) if mark else Span(file, 1, 1)
        message = f"malformed YAML: {exc.problem or exc.context}"
        raise PackError([Diagnostic("pack_syntax", message, span)]) from None
    except yaml.YAMLError as exc:
        raise PackError(
            [Diagnostic("pack_syntax", f"malformed YAML: {exc}", Span(file, 1, 1))]
        ) from None
    finally:
        loader.dispose()
    return data, root


def parse_pack_yaml(text: str, file: str) -> tuple[PackSpec, YamlPlaces]:
    """Validate ``pack.yaml``'s text: its shape, then the checks between its keys.

    Raises:
        PackError: every problem found (up to 20), each at its place.

    >>> parse_pack_yaml("id: My Pack\\n", "pack.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    charter.packs.spec.PackError: 2 errors occurred:
    pack.yaml:1:1: error[pack_invalid]: 'title', 'version', 'description', 'datasources' and 'controls' are required
    pack.yaml:1:5: error[pack_invalid]: id: pack id 'My Pack' must be lower case words ...
    """
    data, root = _compose(file, text)
    places = YamlPlaces(file, root)
    if not isinstance(data, dict):
        message = (
            "pack.yaml must be a mapping with id, title, version, description, "
            "datasources and controls"
        )
        raise PackError([Diagnostic("pack_invalid", message, places.span())])
    try:
        spec = PackSpec.model_validate(data)
    except ValidationError as exc:
        raise PackError(_pydantic(places, exc)[:MAX_ERRORS]) from None
    problems = _cross_checks(spec, places)
    if problems:
        raise PackError(problems[:MAX_ERRORS])
    return spec, places


def _cross_checks(spec: PackSpec, places: YamlPlaces) -> list[Diagnostic]:
    out: list[Diagnostic] = []

    def error(message: str, *loc: Any) -> None:
        out.append(Diagnostic("pack_invalid", message, places.span(*loc)))

    ids: dict[str, int] = {}
    tables: dict[str, str] = {}
    for i, control in enumerate(spec.controls):
        loc = ("controls", i)
        if control.id in ids:
            error(
                f"control id {control.id} is also controls[{ids[control.id]}]'s; give each "
                "control its own id",
                *loc,
                "id",
            )
        ids.setdefault(control.id, i)
        if control.table in tables:
            error(
                f"table {control.table} is also the table of {tables[control.table]}; each "
                "control has its own table",
                *loc,
                "table",
            )
        tables.setdefault(control.table, control.id)
        if control.table in ("error", "warning"):
            error(
                f"a control's table is named for what it finds, not {control.table!r}: the "
                f"policy made from the control puts its rows in error",
                *loc,
                "table",
            )
        if control.table in spec.parameters:
            error(
                f"table {control.table} is a parameter; a control's table is derived by "
                "the pack's rules",
                *loc,
                "table",
            )
        names = control.column_names
        for j, name in enumerate(names):
            if name in names[:j]:
                error(f"column {name} is given twice", *loc, "columns", j)
        if "detail" not in names:
            error(
                "a control's rows say what is wrong in words: add a column named detail "
                f"(columns: {', '.join(names)})",
                *loc,
                "columns",
            )
        elif names[0] == "detail":
            error(
                "the first column is the resource a violation is about; put detail after it",
                *loc,
                "columns",
                0,
            )
    for name, parameter in spec.parameters.items():
        loc = ("parameters", name)
        columns = [c.name for c in parameter.columns]
        for j, column in enumerate(columns):
            if column in columns[:j]:
                error(f"column {column} is given twice", *loc, "columns", j)
        for j, row in enumerate(parameter.default):
            problem = row_problem(parameter, row)
            if problem is not None:
                error(f"default row {j + 1}: {problem}", *loc, "default", j)
    return out


def row_values(parameter: ParameterSpec, row: Any) -> tuple | None:
    """A parameter row as a tuple (a bare value is a one-column row); None if not a row."""
    if isinstance(row, list):
        return tuple(row)
    if len(parameter.columns) == 1 and not isinstance(row, dict):
        return (row,)
    return None


_KINDS = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "any": (str, int, float),
}


def row_problem(parameter: ParameterSpec, row: Any) -> str | None:
    """Why ``row`` cannot be a row of the parameter, or None."""
    values = row_values(parameter, row)
    names = [c.name for c in parameter.columns]
    if values is None:
        return f"a row is a list of {len(names)} values ({', '.join(names)}), not {_kind(row)}"
    if len(values) != len(names):
        return (
            f"{list(values)!r} has {len(values)} values; rows have {len(names)} "
            f"({', '.join(names)})"
        )
    for column, value in zip(parameter.columns, values, strict=True):
        kinds = _KINDS[column.type]
        if isinstance(value, bool) or not isinstance(value, kinds):
            want = {
                "string": "a string",
                "integer": "an integer",
                "number": "a number",
                "any": "a string or a number",
            }[column.type]
            return f"{column.name} is {want}, not {value!r}"
    return None


def _kind(value: Any) -> str:
    names = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "empty",
    }
    return names.get(type(value), type(value).__name__)


def is_identifier(name: str) -> bool:
    return re.fullmatch(IDENTIFIER, name) is not None
