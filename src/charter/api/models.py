"""The API's request bodies and its error body, as Pydantic models, and how they are checked.

Why the handlers do not take these models as FastAPI body parameters: FastAPI would parse
the body itself (``json.loads``, no size bound, no depth bound, lone surrogates let through)
and answer every mistake with one generic validation error, where Congress's clients expect
their own codes (1010 a policy without a name, 1015 an id given, 1002 a rule that is not
text, 1004 simulate without query or sequence, 1017/1018 a malformed execute, 1022 an
abbreviation over 5 characters). So:

- a handler reads its body with :func:`charter.api.body.read_json` (size, depth, integer and
  Unicode limits) and checks it with :func:`parse` against its model here: unknown fields,
  wrong types and values outside the model are refused with a 400 that names each field,
  before the service sees the body;
- each model's ``_congress`` ``before`` validator raises the Congress-coded error itself
  (a :class:`ServiceError`, which Pydantic lets through), so the codes do not depend on
  which check runs first;
- the route declares its body for ``/openapi.json`` with ``openapi_extra=request_body(...)``
  (the model's JSON schema under ``components/schemas``) and its error statuses with
  ``responses=errors(...)``, each with :class:`ErrorBody`'s schema.

Where the service gives a better message for a value (a policy name's characters, a kind,
a mode), the model declares the constraint in its schema (``json_schema_extra``) and the
service enforces it with its own message.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from charter.enforce.actions import MODES
from charter.service import errors as E
from charter.service.errors import ServiceError
from charter.service.policies import KINDS

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"  # charter.lang.names: Congress's policy names
DATASOURCE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"

Scalar = str | int | float | bool | None
MAX_EXAMPLES = 100  # an explained aggregate's example rows


class Body(BaseModel):
    """A request body: a JSON object, no fields beyond the model's, no coercion of types."""

    model_config = ConfigDict(extra="forbid", strict=True)

    #: How messages name the body ("a policy") and its unknown fields ("policy").
    what: ClassVar[str] = "the request body"
    noun: ClassVar[str] = ""
    #: The fix a body that is not an object is told (its shape), if the model gives one.
    shape: ClassVar[str] = ""


# ---------------------------------------------------------------- errors


class ErrorDetail(BaseModel):
    message: str = Field(description="What is wrong, where, and how to fix it.")
    error_code: int = Field(description="Congress's application code (1000-1022) where it "
                                        "had one, else the HTTP status.")
    error_data: Any = Field(None, description="Details: for a rule or input error, the "
                                              "diagnostics with code, line and col.")


class ErrorBody(BaseModel):
    """Every error the API answers, Congress's shape."""

    error: ErrorDetail


DESCRIPTIONS = {
    400: "The request is malformed or refused (unknown field, wrong type, bad rule, input "
         "past a limit); the message names the place and the fix.",
    401: "No token, or a token that is not valid.",
    403: "The caller's role is below what the request needs.",
    404: "No such resource.",
    409: "A resource of that name (or that rule) already exists.",
    413: "The request body is larger than max_body_bytes.",
    501: "A method Congress did not support on this path.",
    502: "The service behind a datasource answered badly (an action, a refresh).",
    503: "The store or Keystone cannot be reached; retry later.",
}


AUTH = (401, 403, 501, 503)  # every authenticated route: token, role, method, store/Keystone
POLICY = (400, 404)  # a policy named in the path: none such, or a datasource's name
BODY = (400, 413)  # a route that reads a body


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with the error body's schema."""
    return {status: {"model": ErrorBody, "description": DESCRIPTIONS[status]}
            for status in sorted(statuses)}


# ---------------------------------------------------------------- checking


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the body"


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any, **context: Any) -> M:
    """``data`` checked against ``model``; a 400 naming each problem otherwise.

    ``context`` reaches the model's validators (``table`` names pushed rows' table).
    """
    if issubclass(model, Body) and not isinstance(data, dict):
        fix = f": send {model.shape}" if model.shape else ""
        raise ServiceError(f"{model.what} must be a JSON object, not {_kind(data)}{fix}")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False)
        unknown = [p for p in problems if p["type"] == "extra_forbidden"]
        if unknown and issubclass(model, Body) and all(len(p["loc"]) == 1 for p in unknown):
            names = sorted(str(p["loc"][0]) for p in unknown)
            fields = ", ".join(model.model_fields)
            noun = f"{model.noun} fields" if model.noun else "fields"
            raise ServiceError(f"unknown {noun} {names}; use {fields}") from None
        what = getattr(model, "what", "the request body")
        for p in problems:
            if p["type"] == "extra_forbidden":
                p["msg"] = "unknown field; remove it"
        lines = [f"{_where(p['loc'])}: {p['msg']}" for p in problems]
        data_out = [{"field": _where(p["loc"]), "code": p["type"], "message": p["msg"]}
                    for p in problems]
        raise ServiceError(f"invalid {what.removeprefix('a ').removeprefix('an ')}: "
                           + "; ".join(lines), data=data_out) from None


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _nonempty_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


# ---------------------------------------------------------------- rules and policies


class PolicyRule(Body):
    """One rule of a policy or library policy."""

    what: ClassVar[str] = "a rule"
    noun: ClassVar[str] = "rule"

    rule: str = Field(min_length=1, description="One rule or fact, e.g. "
                      "'error(vm) :- nova:servers(id=vm, status=\"ERROR\")'.")
    name: str | None = Field(None, description="A name unique in the policy.")
    comment: str | None = Field(None, description="Free text kept with the rule.")
    id: str | None = Field(None, description="Ignored (a listed rule's id, so a listed "
                                             "policy can be sent back).")


def _rule_text(value: Any, where: str) -> None:
    if not _nonempty_text(value):
        raise ServiceError(f"{where}: 'rule' must be a non-empty string of policy text",
                           code=E.RULE_SYNTAX)


def _rules(items: Any) -> None:
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict):
                _rule_text(item.get("rule"), f"rules[{i}]")


class RuleBody(Body):
    """``POST /v1/policies/{policy}/rules``."""

    what: ClassVar[str] = "a rule"
    noun: ClassVar[str] = "rule"

    rule: str = Field(min_length=1, description="One rule or fact in Congress/Charter "
                      "Datalog, e.g. 'error(vm) :- nova:servers(id=vm, status=\"ERROR\")'.")
    name: str | None = Field(None, description="A name unique in the policy.")
    comment: str | None = Field(None, description="Free text kept with the rule.")

    @model_validator(mode="before")
    @classmethod
    def _congress(cls, data: Any) -> Any:
        _rule_text(data.get("rule"), "rule")
        return data


class RuleReplaceBody(RuleBody):
    """``PUT /v1/policies/{policy}/rules/{rule}``: the rule's new text, in its place and
    under its id. ``name`` and ``comment`` when given replace the rule's (null clears
    them); when omitted they are kept."""


class RuleCheckBody(Body):
    """``POST /v1/policies/{policy}/check``: rule text checked as ``charter check`` would
    check it as more rules of the policy, against the live program. Nothing is changed."""

    what: ClassVar[str] = "a rule check"
    noun: ClassVar[str] = "check"

    rule: str = Field(description="Rules and facts as typed in an editor (any number, "
                      "empty included, '# charter: disable=CODE' comments honoured); lines "
                      "and columns of the answer count within this text.")
    replace: str | None = Field(None, description="The id or name of one of the policy's "
                                "rules: check the text as if it replaced that rule (as "
                                "PUT .../rules/{rule} would), not beside it.")


class CheckedDiagnostic(BaseModel):
    """One finding of a rule check, placed in the submitted text (1-based)."""

    severity: str = Field(description="error or warning.",
                          json_schema_extra={"enum": ["error", "warning"]})
    code: str = Field(description="charter check's stable code, e.g. unsafe_variable.")
    message: str
    line: int | None = Field(description="Where it starts in the text (null: no place).")
    column: int | None
    end_line: int | None = Field(description="Where it ends, exclusive (null where the "
                                             "check knows only the start).")
    end_column: int | None
    notes: list[str] = Field(description="More lines of the finding (may be empty).")


class RuleCheckAnswer(BaseModel):
    """The answer of ``POST /v1/policies/{policy}/check``."""

    ok: bool = Field(description="No error: adding (or with replace, putting) the text's "
                                 "rule would be accepted now. Warnings alone are ok.")
    diagnostics: list[CheckedDiagnostic] = Field(description="Errors and warnings sorted by "
                                                 "place, errors first at one place.")


def _abbreviation(data: dict) -> None:
    abbreviation = data.get("abbreviation")
    if isinstance(abbreviation, str) and len(abbreviation) > 5:
        raise ServiceError(f"abbreviation {abbreviation!r} is longer than 5 characters",
                           code=E.ABBREVIATION_TOO_LONG)


_KIND = Field(None, description="The policy's kind (default nonrecursive).",
              json_schema_extra={"enum": [*KINDS, None]})


class PolicyBody(Body):
    """``POST /v1/policies``: a policy, optionally with its rules (all created or none)."""

    what: ClassVar[str] = "a policy"
    noun: ClassVar[str] = "policy"

    name: str = Field(description="An identifier: letters, digits and '_', starting with a "
                      "letter (rules read the policy's tables as <name>:<table>).",
                      json_schema_extra={"pattern": NAME_PATTERN})
    abbreviation: str | None = Field(None, max_length=5, description="At most 5 characters "
                                     "(default: the name's first 5).")
    kind: str | None = _KIND
    description: str | None = None
    rules: list[PolicyRule] | None = Field(None, description="Rules created with the policy, "
                                           "atomically.")
    owner_id: str | None = Field(None, description="Ignored: the owner is the caller.")

    @model_validator(mode="before")
    @classmethod
    def _congress(cls, data: Any) -> Any:
        if "id" in data:
            raise ServiceError("a policy's id is chosen by the server",
                               code=E.POLICY_ID_MUST_NOT_BE_PROVIDED)
        if not data.get("name"):
            raise ServiceError("Policy name is required", code=E.POLICY_NAME_MUST_BE_PROVIDED)
        _abbreviation(data)
        _rules(data.get("rules"))
        return data


class LibraryPolicyBody(Body):
    """``POST /v1/librarypolicies``, ``PUT /v1/librarypolicies/{lib}`` (replaces it)."""

    what: ClassVar[str] = "a library policy"
    noun: ClassVar[str] = "library policy"

    name: str = Field(min_length=1, description="The library policy's name, which the "
                      "policies made from it take: letters, digits and '_', starting with a "
                      "letter.", json_schema_extra={"pattern": NAME_PATTERN})
    description: str | None = None
    abbreviation: str | None = Field(None, max_length=5)
    kind: str | None = _KIND
    rules: list[PolicyRule] = Field(default_factory=list)
    id: str | None = Field(None, description="Only on PUT, and only the policy's own id.")

    @model_validator(mode="before")
    @classmethod
    def _congress(cls, data: Any) -> Any:
        if not isinstance(data.get("name"), str) or not data.get("name"):
            raise ServiceError("Library policy name is required",
                               code=E.POLICY_NAME_MUST_BE_PROVIDED)
        _abbreviation(data)
        _rules(data.get("rules"))
        return data


# ---------------------------------------------------------------- simulate and execute


class SimulateBody(Body):
    """``POST /v1/policies/{policy}?action=simulate``."""

    what: ClassVar[str] = "a simulate request"
    noun: ClassVar[str] = "simulate"

    query: str = Field(min_length=1, description="A table pattern, e.g. 'error(x)'.")
    sequence: str = Field(description="Updates such as 'p+(1) q-(2)', or actions.")
    action_policy: str | None = Field(None, description="The action policy (default "
                                                        "'action').")

    @model_validator(mode="before")
    @classmethod
    def _congress(cls, data: Any) -> Any:
        if not _nonempty_text(data.get("query")) or not isinstance(data.get("sequence"), str):
            raise ServiceError("simulate needs 'query' (a table pattern such as error(x)) and "
                               "'sequence' (updates such as p+(1) q-(2), or actions)",
                               code=E.INCOMPLETE_SIMULATE_ARGS)
        return data


class ActionArgs(Body):
    """Congress's action arguments."""

    what: ClassVar[str] = "action args"

    positional: list[Any] = Field(default_factory=list)
    named: dict[str, Any] = Field(default_factory=dict)


def _args(data: dict) -> None:
    args = data.get("args")
    if args is None:
        return
    if (not isinstance(args, dict) or not set(args) <= {"positional", "named"}
            or not isinstance(args.get("positional", []), list)
            or not isinstance(args.get("named", {}), dict)):
        raise ServiceError('action args must be {"positional": [...], "named": {...}}',
                           code=E.EXECUTE_ACTION_ARGS_SYNTAX)


class PolicyExecuteBody(Body):
    """``POST /v1/policies/{policy}?action=execute`` (admin)."""

    what: ClassVar[str] = "an execute request"
    noun: ClassVar[str] = "execute"

    name: str = Field(description="<datasource>:<action>, e.g. nova:servers.pause.",
                      json_schema_extra={"pattern": r"^[^:]*:.*$"})
    args: ActionArgs | None = None

    @model_validator(mode="before")
    @classmethod
    def _congress(cls, data: Any) -> Any:
        name = data.get("name")
        if not isinstance(name, str) or ":" not in name:
            raise ServiceError("execute needs 'name' as <datasource>:<action>, e.g. "
                               "nova:servers.pause", code=E.SERVICE_ACTION_SYNTAX)
        _args(data)
        return data


class DatasourceExecuteBody(Body):
    """``POST /v1/data-sources/{ds}?action=execute`` (admin)."""

    what: ClassVar[str] = "an execute request"
    noun: ClassVar[str] = "execute"

    name: str = Field(min_length=1, description="The action, e.g. servers.pause.")
    args: ActionArgs | None = None

    @model_validator(mode="before")
    @classmethod
    def _congress(cls, data: Any) -> Any:
        if not _nonempty_text(data.get("name")):
            raise ServiceError("execute needs 'name': the action to run, e.g. servers.pause",
                               code=E.SERVICE_ACTION_SYNTAX)
        _args(data)
        return data


# ---------------------------------------------------------------- datasources


class DatasourceBody(Body):
    """``POST /v1/data-sources`` (admin). Secret config values are stored encrypted and
    shown as ``<hidden>``."""

    what: ClassVar[str] = "a datasource"
    noun: ClassVar[str] = "datasource"

    name: str = Field(description="Letters, digits, '_' and '-', starting with a letter or "
                      "'_'.", json_schema_extra={"pattern": DATASOURCE_NAME_PATTERN})
    driver: str = Field(description="An installed driver (GET /v1/system/drivers).")
    config: dict[str, Any] | None = Field(None, description="The driver's config keys "
                                          "(GET /v1/system/drivers/{driver}).")
    description: str | None = None
    enabled: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _congress(cls, data: Any) -> Any:
        if "id" in data:
            raise ServiceError("a datasource's id is chosen by the server",
                               code=E.POLICY_ID_MUST_NOT_BE_PROVIDED)
        return data


Row = Annotated[
    list[Scalar] | dict[str, Scalar],
    Field(description="One row: its values by position, or (for a table with declared "
                      "columns) an object of column: value, where an omitted column is null."),
]


class RowsBody(RootModel[list[Row]]):
    """``PUT /v1/data-sources/{ds}/tables/{table}/rows``: the whole table's new rows."""

    what: ClassVar[str] = "rows"

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any, info: ValidationInfo) -> Any:
        return cls.check(data, (info.context or {}).get("table", "the table"))

    @staticmethod
    def check(data: Any, table: str = "the table") -> Any:
        """What validating the model checks, without the model: every value this passes,
        ``Row`` takes as it is, so a push (100,000 rows) is not copied into a model it
        never reads. The push driver's own words (it checks again, with the width)."""
        if not isinstance(data, list):
            raise ServiceError(f"the rows of {table} must be a JSON list of lists or objects, "
                               f"got {_kind(data)}: send [[value, ...], ...]")
        if set(map(type, data)) <= {list} and set(
                map(type, chain.from_iterable(data))) <= _SCALAR_TYPES:
            return data  # rows of JSON scalars, checked at C speed; else the loop names one
        for i, item in enumerate(data):
            if not isinstance(item, list | dict):
                raise ServiceError(f"row {i} of {table} is not a list or an object: {item!r}; "
                                   'give it as [value, ...] or {"column": value, ...}')
            for value in item.values() if isinstance(item, dict) else item:
                if type(value) not in _SCALAR_TYPES and not isinstance(value, _SCALARS):
                    raise ServiceError(f"row {i} of {table} holds {value!r}; values must be "
                                       "strings, numbers, booleans or null")
        return data


_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)  # the exact types JSON gives: one set lookup a value


class RowsPatchBody(Body):
    """``PATCH /v1/data-sources/{ds}/tables/{table}/rows`` (a Charter extension beside
    Congress's replace): rows to insert into and delete from a push datasource's table, as
    one change. Inserting a row the table holds, or deleting one it does not, changes
    nothing; a row in both lists is refused. The answer counts what changed:
    ``{"inserted": n, "deleted": m, "unchanged": k}``."""

    what: ClassVar[str] = "a patch of rows"
    noun: ClassVar[str] = "patch"
    shape: ClassVar[str] = '{"insert": [[value, ...], ...], "delete": [[value, ...], ...]}'

    insert: list[Row] = Field(default_factory=list, description="Rows to insert.")
    delete: list[Row] = Field(default_factory=list, description="Rows to delete.")

    @model_validator(mode="before")
    @classmethod
    def _rows(cls, data: Any, info: ValidationInfo) -> Any:
        # Each list in the PUT's words, prefixed by its name (the push driver checks again).
        for key in ("insert", "delete"):
            if key in data:
                try:
                    RowsBody._shape(data[key], info)
                except ServiceError as exc:
                    raise ServiceError(f'"{key}": {exc.message}') from None
        return data


class WebhookBody(Body):
    """``POST /v1/data-sources/{ds}/webhook``: a push datasource's tables, each replaced."""

    what: ClassVar[str] = "a webhook payload"
    noun: ClassVar[str] = "webhook"

    tables: dict[str, list[Row]] = Field(description="Table name -> its rows.")


# ---------------------------------------------------------------- Charter's extensions


class ExplainBody(Body):
    """``POST /v1/policies/{policy}/tables/{table}/explain``."""

    what: ClassVar[str] = "an explain request"
    noun: ClassVar[str] = "explain"

    row: list[str | int | float | None] = Field(description="The row's values; null leaves "
                                                "a column open.")
    alternatives: bool = False
    examples: int | None = Field(None, ge=0, le=MAX_EXAMPLES)

    @model_validator(mode="before")
    @classmethod
    def _messages(cls, data: Any) -> Any:
        if "row" not in data:
            raise ServiceError('explain needs "row": a JSON list of the row\'s values')
        check_explain_row(data["row"])
        if not isinstance(data.get("alternatives", False), bool):
            raise ServiceError("alternatives must be true or false")
        check_examples(data.get("examples"))
        return data


def check_explain_row(value: Any) -> None:
    """An explained row's values: strings and numbers, ``null`` for an open column."""
    if not isinstance(value, list):
        raise ServiceError('the row must be a JSON list of its values, e.g. ["vm1", 2]')
    for item in value:
        if item is not None and (not isinstance(item, str | int | float)
                                 or isinstance(item, bool)):
            raise ServiceError(f"row value {json.dumps(item)} is not a string or a number "
                               "(null leaves a column open)")


def check_examples(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 0 <= value <= MAX_EXAMPLES):
        raise ServiceError(f"examples must be an integer from 0 to {MAX_EXAMPLES}")


class TableRow(Body):
    what: ClassVar[str] = "a row change"

    table: str = Field(min_length=1, description="<datasource>:<table>, or a table of the "
                       "policy.")
    row: list[str | int | float] = Field(min_length=1)


class AdmissionBody(Body):
    """``POST /v1/policies/{policy}/admission``: a proposed change."""

    what: ClassVar[str] = "an admission request"
    noun: ClassVar[str] = "admission"

    insert: list[TableRow] | None = None
    delete: list[TableRow] | None = None
    action: str | None = Field(None, description="An action the action policy declares.")
    args: list[str | int | float] | None = Field(None, description="The action's arguments.")
    tables: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, min_length=1, description="Tables to compare (default error and warning).")
    action_policy: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _messages(cls, data: Any) -> Any:
        # The service's words for the two checks it makes before reading the rows.
        if not any(data.get(k) for k in ("insert", "delete", "action")) and not (
                set(data) - set(cls.model_fields)):
            raise ServiceError("an admission request needs a change: 'insert' and/or "
                               "'delete' rows ([{\"table\": \"nova:servers\", \"row\": "
                               "[...]}]) or an 'action' with 'args'")
        for key in ("insert", "delete"):
            entries = data.get(key)
            for i, entry in enumerate(entries if isinstance(entries, list) else ()):
                if not isinstance(entry, dict) or set(entry) != {"table", "row"}:
                    raise ServiceError(f"{key}[{i}] must be an object with exactly 'table' "
                                       "and 'row', e.g. {\"table\": \"nova:servers\", "
                                       "\"row\": [\"vm9\", \"h1\"]}")
        return data


class EnforcementBody(Body):
    """``PUT /v1/policies/{policy}/enforcement``; ``enforce`` needs admin."""

    what: ClassVar[str] = "an enforcement setting"

    mode: str = Field(description="dry-run (the default) or enforce.",
                      json_schema_extra={"enum": list(MODES)})

    @model_validator(mode="before")
    @classmethod
    def _messages(cls, data: Any) -> Any:
        if data.get("mode") not in MODES and not set(data) - {"mode"}:
            raise ServiceError(f"enforcement mode must be one of {', '.join(MODES)}; got "
                               f"{data.get('mode')!r}")
        return data


class PackEnableBody(Body):
    """``POST /v1/packs/{pack}?action=enable``: the parameters to enable the pack with."""

    what: ClassVar[str] = "a pack's settings"
    noun: ClassVar[str] = "pack"

    parameters: dict[str, list[Any]] | None = Field(
        None, description="Parameter -> its rows (a list; a one-column row may be a bare "
        "value), replacing that parameter's default whole. Parameters not named keep their "
        "defaults; without 'parameters', those of the pack as enabled before.")


# ---------------------------------------------------------------- OpenAPI

#: Every model a route documents, by name, for ``components/schemas``.
DOCUMENTED: dict[str, type[BaseModel]] = {}


def request_body(*models: type[BaseModel], required: bool = True) -> dict[str, Any]:
    """``openapi_extra=`` for a route whose handler reads one of ``models`` as its body."""
    refs = []
    for model in models:
        DOCUMENTED[model.__name__] = model
        refs.append({"$ref": f"#/components/schemas/{model.__name__}"})
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"requestBody": {"required": required,
                            "content": {"application/json": {"schema": schema}}}}
