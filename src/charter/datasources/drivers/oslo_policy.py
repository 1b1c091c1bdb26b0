"""The ``oslo_policy`` driver: OpenStack services' effective API policy, as tables.

Each service's effective policy is what oslo.policy enforces: the rules of its policy
files (``policy_file``: a file, a directory of files, or a list of them, applied in order,
a later file overriding an earlier one, as oslo.policy's ``policy_file`` then
``policy_dirs``) over the defaults the service registers in code. The defaults come from
``defaults``: the service's own ``oslopolicy-sample-generator``, in the service's venv (where
the service's code, and so its registered rules, is installed), or from ``defaults_file``,
a sample an operator generated before::

    {"services": {
       "keystone": {"policy_file": "/etc/keystone/policy.yaml",
                    "defaults": {"namespace": "keystone",
                                 "generator": "/opt/keystone/bin/oslopolicy-sample-generator"}},
       "nova": {"policy_file": ["/etc/nova/policy.yaml", "/etc/nova/policy.d"],
                "defaults_file": "/etc/nova/policy.yaml.sample"}}}

The sample generator, not ``oslopolicy-policy-generator``: the latter prints the merged
policy, with no way to tell an operator's override from a default, and needs the
service's own config file to find the policy file; the sample generator lists the
registered defaults alone, with their intended scopes, operations and deprecations. The
driver runs what the sample generator runs (``oslo_policy.generator.get_policies_dict`` of
the namespaces) with the generator's own interpreter, and takes the defaults as JSON:
the sample it would write wraps the deprecated check strings in comments at 70 columns,
breaking long words, so they cannot always be read back from it. A ``defaults_file``
sample is read as the generator writes it (commented out or not); its deprecated check
strings are only used with ``enforce_new_defaults: false``, and one that does not read
back is an error that says to use ``defaults``.

A service whose ``[oslo_policy] enforce_new_defaults`` is false (an upgraded cloud
keeping its old defaults a while) enforces each deprecated default ORed with its
replacement; ``"enforce_new_defaults": false`` in its entry makes the tables say so too.

Check strings are parsed by oslo.policy itself (``oslo_policy._parser.parse_rule``), so a
check means here what it means to the service. A check string oslo.policy cannot parse
(it would silently deny everything), a YAML error, a missing file or a failing generator
fails the poll with the file, line and rule named; the service keeps the last good tables.

Rules are also given in disjunctive normal form: ``branch`` numbers the OR-branches of a
rule, each one the checks that must all hold (a ``not`` pushed down onto single checks).
``checks`` holds them as written (``rule:`` aliases kept); ``expanded`` with every alias
replaced by its definition, as enforcement follows them (an undefined or cyclic alias is
false, as oslo.policy's ``RuleCheck`` finds it), ``@``/``""`` dropped from a branch with
other checks and branches with a ``!`` removed: a branch whose only check is ``true``
lets anyone in, a rule whose only branch is ``false`` lets nobody.

The tables: ``rules``, the rule in force for each target, and where it comes from;
``defaults``, ``scope_types`` and ``operations``, what the service registers; ``checks``
and ``expanded``, the rule in force as above; ``default_expanded``, the registered default
expanded through the defaults' own aliases (what the service enforces with no policy
file), to compare an override with; ``rule_refs``, the aliases each rule names;
``rule_roles``, the roles that some branch of ``expanded`` asks for (not under a ``not``;
a role taken from the target, ``role:%(target.role.name)s``, is left out).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from charter.datasources.driver import Column, ConfigOption, Driver, DriverError, Row, TableSpec
from charter.datasources.drivers.config import json_value, number

DEFAULT_POLL_S = 300.0
DEFAULT_TIMEOUT_S = 120.0
MAX_BRANCHES = 4096  # a rule's DNF beyond this is refused (real policies stay below 50)
SERVICE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
SERVICE_KEYS = ("policy_file", "defaults", "defaults_file", "enforce_new_defaults")
EXAMPLE = ('{"keystone": {"policy_file": "/etc/keystone/policy.yaml", "defaults": '
           '{"namespace": "keystone", "generator": "/opt/keystone/bin/'
           'oslopolicy-sample-generator"}}}')


# What oslopolicy-sample-generator does to list a namespace's registered defaults
# (oslo_policy.generator.get_policies_dict), run by the generator's own interpreter, with
# the defaults as JSON rather than the sample's comments, which wrap deprecated check
# strings at 70 columns, breaking long words, so that they cannot be read back.
LIST = """\
import importlib.metadata, json, sys
from oslo_policy import generator
listed = generator.get_policies_dict(sys.argv[1:])
missing = [n for n in sys.argv[1:] if n not in listed]
if missing:
    sys.exit("no policy namespace " + ", ".join(missing) + " is registered here"
             " (entry points oslo.policy.policies: " + ", ".join(sorted(
                 e.name for e in importlib.metadata.entry_points(
                     group="oslo.policy.policies"))) + ")")
out = {}
for rules in listed.values():
    for r in rules:
        old = r.deprecated_rule
        since = None
        if old is not None or r.deprecated_for_removal:
            since = (old.deprecated_since if old is not None else None) or r.deprecated_since
            since = since or "unknown"
        out[r.name] = {
            "check_str": r.check_str, "scope_types": list(r.scope_types or []),
            "operations": [[m, o["path"]] for o in getattr(r, "operations", None) or []
                           if o.get("method") and o.get("path")
                           for m in (o["method"] if isinstance(o["method"], list)
                                     else [o["method"]])],
            "deprecated_check_str": None if old is None else old.check_str,
            "deprecated_since": since}
json.dump(out, sys.stdout)
"""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _interpreter(script: str) -> str | None:
    """The interpreter a console script's ``#!`` line names (its venv's python), or None."""
    try:
        with open(script, "rb") as f:
            first = f.readline(4096).decode(errors="replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    parts = first[2:].split()
    if parts and Path(parts[0]).name == "env" and len(parts) > 1:
        return shutil.which(parts[1])
    return parts[0] if parts else None


def _c(name: str, description: str) -> Column:
    return Column(name, description, "str")


_SERVICE = _c("service", "the service's name, as the config's services map names it")
_TARGET = _c("target", "the rule's name: an API (identity:delete_user) or an alias (admin_required)")
_BRANCH = Column("branch", "the OR-branch of the rule's disjunctive normal form (0, 1, ...): "
                 "the rows of one branch must all hold", "int")
_ATOM = (
    _c("kind", "role, rule (an alias), generic (a credential or literal compared to a "
               "value), true (@ or an empty string), false (!), or an extension's kind "
               "(http, https)"),
    _c("attribute", "for generic checks, the credential attribute (is_admin, project_id, "
                    "user_id, system_scope, token.domain.id) or a quoted literal; else null"),
    _c("value", "what is matched: the role (lower case: oslo.policy compares roles so), "
                "the alias, the value (True, all, %(project_id)s), @ or !"),
    _c("negated", "'True' when the check is under a not"),
    _c("check", "the check as oslo.policy prints it, e.g. role:admin, is_admin:True"),
)

TABLES: tuple[TableSpec, ...] = (
    TableSpec("rules", (
        _SERVICE, _TARGET,
        _c("check_str", "the check string in force"),
        _c("source", "file (only in the policy files), default (only registered), or both "
                     "(a policy file overrides the registered default)"),
        _c("file", "the policy file the rule in force comes from (null for a default)"),
        Column("line", "its line in that file (null for a default)", "int"),
        _c("deprecated", "'True' when the registered default is deprecated (for removal, "
                         "or in favour of a new rule), else 'False'"),
    )),
    TableSpec("defaults", (
        _SERVICE, _TARGET,
        _c("check_str", "the check string the service registers"),
        _c("deprecated_check_str", "the check string of the rule it deprecates (oslo.policy "
                                   "ORs it in when enforce_new_defaults is false); null if "
                                   "none"),
        _c("deprecated_since", "the release it was deprecated in; null if not deprecated"),
    )),
    TableSpec("scope_types", (
        _SERVICE, _TARGET,
        _c("scope", "a scope the default is intended for: system, domain or project"),
    )),
    TableSpec("operations", (
        _SERVICE, _TARGET,
        _c("method", "the HTTP method of an API call the rule guards"),
        _c("path", "its URL path, e.g. /v3/users/{user_id}"),
    )),
    TableSpec("checks", (_SERVICE, _TARGET, _BRANCH, *_ATOM)),
    TableSpec("expanded", (_SERVICE, _TARGET, _BRANCH, *_ATOM)),
    TableSpec("default_expanded", (_SERVICE, _TARGET, _BRANCH, *_ATOM)),
    TableSpec("rule_refs", (
        _SERVICE, _TARGET,
        _c("alias", "a rule the check string names as rule:<alias>"),
    )),
    TableSpec("rule_roles", (
        _SERVICE, _TARGET,
        _c("role", "a role (lower case, as oslo.policy compares them) that some OR-branch "
                   "of the rule in force accepts, through its aliases"),
    )),
)
SPECS = {t.name: t for t in TABLES}

_parse_lock = threading.Lock()  # the parser's log handler is process-wide


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def parse_check(check_str: Any) -> Any:
    """oslo.policy's check tree of ``check_str``; ValueError when oslo.policy cannot read it.

    oslo.policy never raises on a bad check string: it logs and fails closed (the rule
    becomes ``!``). The parser's log is how a failure shows, so it is listened to.
    """
    from oslo_policy import _parser

    collect = _Collect()
    logger = logging.getLogger(_parser.__name__)
    with _parse_lock:
        logger.addHandler(collect)
        propagate, logger.propagate = logger.propagate, False
        try:
            tree = _parser.parse_rule(check_str)
        finally:
            logger.removeHandler(collect)
            logger.propagate = propagate
    if collect.messages:
        raise ValueError(collect.messages[0])
    return tree


@dataclass(frozen=True)
class Atom:
    kind: str
    attribute: str | None
    value: str
    negated: bool
    text: str

    def row(self) -> tuple:
        return (self.kind, self.attribute, self.value, str(self.negated), self.text)


def atom(check: Any, negated: bool) -> Atom:
    from oslo_policy import _checks

    if isinstance(check, _checks.TrueCheck):
        return Atom("true", None, "@", negated, "@")
    if isinstance(check, _checks.FalseCheck):
        return Atom("false", None, "!", negated, "!")
    if isinstance(check, _checks.RoleCheck):
        return Atom("role", None, check.match.lower(), negated, str(check))
    if isinstance(check, _checks.RuleCheck):
        return Atom("rule", None, check.match, negated, str(check))
    if isinstance(check, _checks.GenericCheck):
        return Atom("generic", check.kind, check.match, negated, str(check))
    return Atom(str(getattr(check, "kind", type(check).__name__)), None,
                str(getattr(check, "match", "")), negated, str(check))


Branches = list[tuple[Atom, ...]]


def _product(parts: list[Branches]) -> Branches:
    size = 1
    for p in parts:
        size *= len(p)
    if size > MAX_BRANCHES:
        raise ValueError(f"its disjunctive normal form has over {MAX_BRANCHES} branches")
    return [tuple(itertools.chain.from_iterable(c)) for c in itertools.product(*parts)]


def written(check: Any, negated: bool = False) -> Branches:
    """The rule as written, in DNF: aliases, ``@`` and ``!`` kept as checks."""
    from oslo_policy import _checks

    if isinstance(check, _checks.NotCheck):
        return written(check.rule, not negated)
    if isinstance(check, _checks.AndCheck | _checks.OrCheck):
        parts = [written(c, negated) for c in check.rules]
        conj = isinstance(check, _checks.AndCheck) != negated
        return _product(parts) if conj else [b for p in parts for b in p]
    return [(atom(check, negated),)]


def expand(check: Any, rules: Mapping[str, Any], negated: bool = False,
           seen: frozenset[str] = frozenset()) -> Branches:
    """The rule with aliases replaced by their definitions, in DNF; [] is never, [()] always."""
    from oslo_policy import _checks

    if isinstance(check, _checks.NotCheck):
        return expand(check.rule, rules, not negated, seen)
    if isinstance(check, _checks.TrueCheck):
        return [] if negated else [()]
    if isinstance(check, _checks.FalseCheck):
        return [()] if negated else []
    if isinstance(check, _checks.RuleCheck):
        if check.match not in rules or check.match in seen:  # enforcement finds it false
            return [()] if negated else []
        return expand(rules[check.match], rules, negated, seen | {check.match})
    if isinstance(check, _checks.AndCheck | _checks.OrCheck):
        parts = [expand(c, rules, negated, seen) for c in check.rules]
        if isinstance(check, _checks.AndCheck) != negated:
            out = _product(parts)
        else:
            out = [b for p in parts for b in p]
        unique: dict[frozenset[Atom], tuple[Atom, ...]] = {}
        for b in out:
            unique.setdefault(frozenset(b), tuple(dict.fromkeys(b)))
        if len(unique) > MAX_BRANCHES:
            raise ValueError(f"its disjunctive normal form has over {MAX_BRANCHES} branches")
        return list(unique.values())
    return [(atom(check, negated),)]


def expanded_rows(service: str, target: str, branches: Branches) -> Iterator[Row]:
    if not branches:
        yield (service, target, 0, "false", None, "!", "False", "!")
        return
    for n, branch in enumerate(branches):
        atoms = branch or (Atom("true", None, "@", False, "@"),)
        for a in atoms:
            yield (service, target, n, *a.row())


@dataclass
class Default:
    check_str: str
    scopes: list[str] = field(default_factory=list)
    operations: list[tuple[str, str]] = field(default_factory=list)
    deprecated_check_str: str | None = None
    deprecated_since: str | None = None


_RULE_LINE = re.compile(r'^#?(".*)$')
_DEPRECATED_FOR = re.compile(
    r'^"(?P<old>[^"]+)":"(?P<check>.*)" has been deprecated since (?P<since>\S+) in favor '
    r'of "(?P<new>[^"]+)":')
_DEPRECATED_REMOVAL = re.compile(r'^"(?P<name>[^"]+)" has been deprecated since (?P<since>[^.\s]+)')
_OPERATION = re.compile(r"^# (\[[^\]]*\]|[A-Z]+)  (/\S*)$")  # a method, or a list of them


def _rule_line(line: str) -> tuple[str, str] | None:
    """``"name": "check"`` (commented out or not) as (name, check), else None."""
    m = _RULE_LINE.match(line)
    if not m:
        return None
    try:
        loaded = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        loaded = None
    if isinstance(loaded, dict) and len(loaded) == 1:
        (name, check), = loaded.items()
        if isinstance(name, str) and isinstance(check, str):
            return name, check
    # the generator does not escape: a check string holding '"' is split at '": "'
    head, sep, tail = m.group(1).partition('": "')
    if sep and tail.endswith('"'):
        return head[1:], tail[:-1]
    return None


def _unwrap(lines: Sequence[str]) -> str:
    """Comment lines the generator wrapped (textwrap, which also breaks after a hyphen),
    joined back: a space between lines, none after a trailing hyphen.

    >>> _unwrap(["# a:%(x)s or", "# rule:os-", "# admin"])
    'a:%(x)s or rule:os-admin'
    """
    text = ""
    for line in lines:
        piece = line.lstrip("#").strip()
        text += piece if not text or text.endswith("-") else " " + piece
    return text


def parse_sample(text: str, where: str) -> dict[str, Default]:
    """Defaults from ``oslopolicy-sample-generator`` output (its rules commented out or not).

    The generator writes one paragraph per rule: the description, ``# METHOD  /path``
    lines, ``# Intended scope(s): ...``, then ``#"name": "check"``; a ``# DEPRECATED``
    paragraph follows a rule that replaces a deprecated one.
    """
    out: dict[str, Default] = {}
    for para in re.split(r"\n\s*\n", text):
        lines = [ln.rstrip() for ln in para.strip("\n").splitlines() if ln.strip()]
        if not lines:
            continue
        prose = " ".join(ln.lstrip("#").strip() for ln in lines)
        if lines[0].strip() == "# DEPRECATED":
            m = _DEPRECATED_FOR.search(_unwrap(lines[1:]))
            if m and m.group("new") in out:
                d = out[m.group("new")]
                d.deprecated_check_str = m.group("check")
                d.deprecated_since = m.group("since")
                continue
        found = None
        for ln in lines:
            found = found or _rule_line(ln)
        if found is None:
            continue
        name, check = found
        d = Default(check)
        for ln in lines:
            op = _OPERATION.match(ln)
            if op:
                d.operations += [(m, op.group(2)) for m in re.findall(r"[A-Z]+", op.group(1))]
            if ln.startswith("# Intended scope(s):"):
                d.scopes = [s.strip() for s in ln.split(":", 1)[1].split(",") if s.strip()]
        if lines[0].strip() == "# DEPRECATED":
            m = _DEPRECATED_REMOVAL.search(prose.removeprefix("DEPRECATED").strip())
            d.deprecated_since = m.group("since") if m else "unknown"
        out[name] = d
    if not out and text.strip():
        raise ValueError(f"{where}: no rule found: it is not oslopolicy-sample-generator "
                         "output (lines like #\"identity:get_user\": \"role:reader\")")
    return out


@dataclass
class FileRule:
    check: Any
    check_str: str
    file: str
    line: int


def parse_policy_file(path: Path) -> dict[str, FileRule]:
    """A policy file's rules (YAML, or JSON, which YAML reads), each with its line."""
    where = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        raise ValueError(f"{at}: not valid YAML: {getattr(exc, 'problem', None) or exc}; "
                         "a policy file maps each rule to its check string") from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise ValueError(f"{where}:{node.start_mark.line + 1}: a policy file must map rule "
                         f"names to check strings, not hold a {node.id}")
    out: dict[str, FileRule] = {}
    for key, value in node.value:
        line = key.start_mark.line + 1
        name = yaml.safe_load(yaml.serialize(key))
        check_str = yaml.safe_load(yaml.serialize(value))
        if not isinstance(name, str):
            raise ValueError(f"{where}:{line}: rule name {name!r} is not a string")
        if check_str is None:
            check_str = ""
        if not isinstance(check_str, str | list):
            raise ValueError(f"{where}:{line}: rule {name!r}: its check string must be a "
                             f"string (e.g. \"role:admin\"), not {check_str!r}")
        try:
            check = parse_check(check_str)
        except ValueError as exc:
            raise ValueError(f"{where}:{line}: rule {name!r}: oslo.policy cannot parse "
                             f"{check_str!r} ({exc}); the service would deny it to "
                             "everyone") from None
        out[name] = FileRule(check, check_str if isinstance(check_str, str) else str(check),
                             where, line)
    return out


def policy_paths(entries: Sequence[str]) -> list[Path]:
    """The files of ``policy_file``, in order: a directory's files sorted by name, as
    oslo.policy reads ``policy_dirs`` (dot files skipped, no sub-directories)."""
    out: list[Path] = []
    for entry in entries:
        p = Path(entry)
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            out.append(p)
        else:
            raise ValueError(f"{entry}: no such policy file or directory")
    return out


class OsloPolicyDriver(Driver):
    driver = "oslo_policy"
    description = ("OpenStack services' effective API policy (policy files over the "
                   "registered defaults), parsed with oslo.policy into rules, checks and "
                   "the roles each rule accepts")
    poll_seconds = DEFAULT_POLL_S
    config_options = (
        ConfigOption("services", "{service: {\"policy_file\": path or [paths] (files or "
                     "policy.d directories, later ones override), \"defaults\"?: "
                     "{\"namespace\": name or [names], \"generator\": path of the "
                     "service venv's oslopolicy-sample-generator}, \"defaults_file\"?: a "
                     "sample it generated, \"enforce_new_defaults\"?: false when the "
                     "service's [oslo_policy] enforce_new_defaults is (default true)}}",
                     required=True),
        ConfigOption("timeout_seconds", "seconds a sample generator may run",
                     default=DEFAULT_TIMEOUT_S),
        ConfigOption("poll_time", "seconds between polls", default=DEFAULT_POLL_S),
    )

    def check_config(self) -> None:
        super().check_config()
        try:
            import oslo_policy  # noqa: F401
        except ImportError:
            raise DriverError(f"datasource {self.name}: driver oslo_policy needs oslo.policy, "
                              "which is not installed: pip install 'charter[openstack]'"
                              ) from None
        self.timeout = number(self, "timeout_seconds", DEFAULT_TIMEOUT_S)
        number(self, "poll_time", DEFAULT_POLL_S)
        services = json_value(self, "services")
        if not isinstance(services, Mapping) or not services:
            raise DriverError(f"datasource {self.name}: config 'services' must map each "
                              f"service to its policy, e.g. {EXAMPLE}")
        self.services: dict[str, dict] = {}
        for name, spec in services.items():
            at = f"datasource {self.name}: config services.{name}"
            if not isinstance(name, str) or not SERVICE_NAME.match(name):
                raise DriverError(f"datasource {self.name}: config 'services': service name "
                                  f"{name!r} must be letters, digits, '_', '-' and '.'")
            if not isinstance(spec, Mapping):
                raise DriverError(f"{at} must be an object, e.g. {EXAMPLE}")
            unknown = sorted(set(spec) - set(SERVICE_KEYS))
            if unknown:
                raise DriverError(f"{at} has no key {', '.join(map(repr, unknown))}; it takes "
                                  f"{', '.join(SERVICE_KEYS)}")
            files = spec.get("policy_file", [])
            files = [files] if isinstance(files, str) else files
            if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
                raise DriverError(f"{at}.policy_file must be a path or a list of paths")
            if "defaults" in spec and "defaults_file" in spec:
                raise DriverError(f"{at}: give defaults (a generator to run) or defaults_file "
                                  "(a sample generated before), not both")
            if not files and not spec.get("defaults") and not spec.get("defaults_file"):
                raise DriverError(f"{at} names no policy: give policy_file, defaults or "
                                  "defaults_file")
            new_defaults = spec.get("enforce_new_defaults", True)
            if not isinstance(new_defaults, bool):
                raise DriverError(f"{at}.enforce_new_defaults must be true or false (the "
                                  "service's [oslo_policy] enforce_new_defaults)")
            entry: dict[str, Any] = {"files": files, "enforce_new_defaults": new_defaults}
            if "defaults_file" in spec:
                if not isinstance(spec["defaults_file"], str) or not spec["defaults_file"]:
                    raise DriverError(f"{at}.defaults_file must be a path")
                entry["defaults_file"] = spec["defaults_file"]
            if "defaults" in spec:
                entry["generator"], entry["namespaces"] = self._generator(at, spec["defaults"])
            self.services[name] = entry

    def _generator(self, at: str, spec: Any) -> tuple[str, list[str]]:
        if not isinstance(spec, Mapping) or set(spec) - {"namespace", "generator"}:
            raise DriverError(f"{at}.defaults must be {{\"namespace\": ..., \"generator\": "
                              "...}")
        spaces = spec.get("namespace")
        spaces = [spaces] if isinstance(spaces, str) else spaces
        if not spaces or not isinstance(spaces, list) or not all(
                isinstance(s, str) and s for s in spaces):
            raise DriverError(f"{at}.defaults.namespace must name the service's policy "
                              "namespace (e.g. keystone, nova), or list them")
        gen = spec.get("generator")
        if not isinstance(gen, str) or not Path(gen).is_file():
            raise DriverError(f"{at}.defaults.generator: no file {gen!r}; give the path of "
                              "oslopolicy-sample-generator in the service's own venv (e.g. "
                              "/opt/keystone/bin/oslopolicy-sample-generator)")
        return gen, spaces

    def tables(self) -> dict[str, TableSpec]:
        return dict(SPECS)

    @classmethod
    def static_tables(cls) -> list[TableSpec]:
        return list(TABLES)

    # ------------------------------------------------------------ defaults

    def _generate(self, service: str, generator: str,
                  namespaces: list[str]) -> dict[str, Default]:
        """The registered defaults, listed by the generator's own interpreter (LIST)."""
        python = _interpreter(generator)
        what = f"service {service}: {generator} --namespace {' --namespace '.join(namespaces)}"
        if python is None:
            raise DriverError(f"datasource {self.name}: {what}: it is not a Python console "
                              "script (no #! line naming its interpreter); give the "
                              "oslopolicy-sample-generator of the service's venv", status=400)
        try:
            done = subprocess.run([python, "-c", LIST, *namespaces], capture_output=True,
                                  text=True, timeout=self.timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DriverError(f"datasource {self.name}: {what} did not finish in "
                              f"{self.timeout:g} s (timeout_seconds)", status=503) from None
        except OSError as exc:
            raise DriverError(f"datasource {self.name}: {what}: cannot run its interpreter "
                              f"{python}: {exc}", status=400) from None
        if done.returncode != 0:
            tail = " / ".join(done.stderr.strip().splitlines()[-3:])[-500:]
            raise DriverError(f"datasource {self.name}: {what} failed (exit "
                              f"{done.returncode}): {tail}; is the namespace registered in "
                              "that venv?", status=502)
        try:
            listed = json.loads(done.stdout)
            return {str(name): Default(
                        str(r["check_str"]), [str(x) for x in r["scope_types"]],
                        [(str(m), str(p)) for m, p in r["operations"]],
                        _text(r["deprecated_check_str"]), _text(r["deprecated_since"]))
                    for name, r in listed.items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise DriverError(f"datasource {self.name}: {what} answered in a shape this "
                              f"driver does not know ({type(exc).__name__}: {exc})",
                              status=502) from None

    def _defaults(self, service: str, spec: dict) -> tuple[dict[str, Default], str]:
        if "generator" in spec:
            where = f"{spec['generator']} --namespace {' '.join(spec['namespaces'])}"
            return self._generate(service, spec["generator"], spec["namespaces"]), where
        if "defaults_file" not in spec:
            return {}, ""
        where = spec["defaults_file"]
        try:
            text = Path(where).read_text()
        except OSError as exc:
            raise DriverError(f"datasource {self.name}: service {service}: defaults_file "
                              f"{where}: cannot read it: {exc.strerror or exc}") from None
        try:
            return parse_sample(text, where), where
        except ValueError as exc:
            raise DriverError(f"datasource {self.name}: service {service}: {exc}",
                              status=502) from None

    # ------------------------------------------------------------ poll

    def poll(self) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = {t.name: [] for t in TABLES}
        for service, spec in self.services.items():
            try:
                self._service(service, spec, out)
            except ValueError as exc:
                raise DriverError(f"datasource {self.name}: service {service}: {exc}",
                                  status=400) from None
        return {name: sorted(set(rows), key=_order) for name, rows in out.items()}

    def _service(self, service: str, spec: dict, out: dict[str, list[Row]]) -> None:
        defaults, where = self._defaults(service, spec)
        default_checks: dict[str, Any] = {}
        for target, d in defaults.items():
            try:
                default_checks[target] = parse_check(d.check_str)
            except ValueError as exc:
                raise ValueError(f"{where}: default of {target!r}: oslo.policy cannot parse "
                                 f"{d.check_str!r} ({exc})") from None
        file_rules: dict[str, FileRule] = {}
        for path in policy_paths(spec["files"]):
            file_rules.update(parse_policy_file(path))
        in_force = dict(default_checks)
        if not spec["enforce_new_defaults"]:  # oslo.policy ORs in the deprecated default
            from oslo_policy import _checks

            for target, d in defaults.items():
                if d.deprecated_check_str not in (None, d.check_str):
                    try:
                        old = parse_check(d.deprecated_check_str)
                    except ValueError as exc:
                        raise ValueError(f"{where}: deprecated default of {target!r}: "
                                         f"oslo.policy cannot parse {d.deprecated_check_str!r} "
                                         f"({exc}); a sample wraps these check strings, give "
                                         "the service's generator as defaults instead"
                                         ) from None
                    in_force[target] = _checks.OrCheck([default_checks[target], old])
        effective = {**in_force, **{t: r.check for t, r in file_rules.items()}}

        for target, d in defaults.items():
            out["defaults"].append((service, target, d.check_str, d.deprecated_check_str,
                                    d.deprecated_since))
            out["scope_types"] += [(service, target, s) for s in d.scopes]
            out["operations"] += [(service, target, m, p) for m, p in d.operations]
            out["default_expanded"] += list(expanded_rows(
                service, target, self._expand(default_checks[target], target, default_checks)))
        for target, check in effective.items():
            d = defaults.get(target)
            f = file_rules.get(target)
            source = "both" if d and f else ("file" if f else "default")
            if f:
                text = f.check_str
            else:  # the default, or it OR the deprecated one (enforce_new_defaults false)
                text = d.check_str if check is default_checks[target] else str(check)
            out["rules"].append((
                service, target, text, source,
                f.file if f else None, f.line if f else None,
                str(bool(d and d.deprecated_since))))
            try:
                as_written = written(check)
            except ValueError as exc:
                raise ValueError(f"rule {target!r}: {exc}") from None
            for n, branch in enumerate(as_written):
                for a in branch:
                    out["checks"].append((service, target, n, *a.row()))
                    if a.kind == "rule":
                        out["rule_refs"].append((service, target, a.value))
            branches = self._expand(check, target, effective)
            out["expanded"] += list(expanded_rows(service, target, branches))
            for branch in branches:
                out["rule_roles"] += [(service, target, a.value.lower()) for a in branch
                                      if a.kind == "role" and not a.negated
                                      and "%(" not in a.value]

    def _expand(self, check: Any, target: str, rules: Mapping[str, Any]) -> Branches:
        try:
            return expand(check, rules, seen=frozenset({target}))
        except ValueError as exc:
            raise ValueError(f"rule {target!r}: {exc}") from None


OsloPolicyDriver.__doc__ = __doc__  # the reference (docs/drivers.md) shows the module's


def _order(row: Row) -> tuple:
    return tuple((v is None, str(v)) for v in row)
