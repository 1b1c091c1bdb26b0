"""Reading a pack folder: ``pack.yaml``, its ``.dl`` policies and its ``*_test.yaml`` cases.

:func:`load_pack` checks everything a pack promises before anything runs it, and reports
every problem at its place:

- ``pack.yaml`` against its schema (:mod:`charter.packs.spec`);
- the rules parse, and compile together with the declared drivers' schemas (named columns,
  arities, safety, stratification), with the parameters' default rows as facts;
- every ``datasource:table`` the rules read is declared in ``pack.yaml``, and every
  declared table and parameter is read;
- the rules define the pack's own tables only: not a parameter, not a datasource's, not
  ``error``/``warning`` (each control's policy derives ``error`` from its table);
- each control's table is defined by the rules, with as many columns as the control
  declares; and every rule serves some control (a rule no control reads is dead code).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from charter.engine import Engine, RuleChange
from charter.lang.ast import Modal, Rule, Span
from charter.lang.errors import CharterError, Diagnostic, PolicyError
from charter.lang.parser import parse
from charter.packs.build import (
    body_atoms,
    dependencies,
    head_tables,
    parameter_facts,
    parameter_values,
    slice_rules,
)
from charter.packs.schemas import driver_tables
from charter.packs.spec import ControlSpec, PackError, PackSpec, YamlPlaces, parse_pack_yaml

__all__ = ["PACK_FILE", "Pack", "load_pack"]

PACK_FILE = "pack.yaml"
TEST_SUFFIXES = ("_test.yaml", "_test.yml")


@dataclass(frozen=True)
class Pack:
    """A checked pack: its metadata, its rules (each with its span) and its test files."""

    spec: PackSpec
    folder: Path
    origin: str  # where it was found: "charter", "entry point NAME (DIST)", or a folder
    files: tuple[str, ...]  # the .dl files, as messages show them
    rules: tuple[Rule, ...]
    tests: tuple[str, ...]
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    places: YamlPlaces | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def controls(self) -> list[ControlSpec]:
        return self.spec.controls

    def control(self, ref: str) -> ControlSpec | None:
        """A control by id (``OS-NET-001``) or by its policy's name (``OS_NET_001``)."""
        return next((c for c in self.controls if ref in (c.id, c.policy)), None)

    def test_rules(self) -> list[Rule]:
        """The pack's policy as its test cases load it: the rules and the default parameters."""
        return list(self.rules) + parameter_facts(parameter_values(self.spec))


def _read(path: Path, diagnostics: list[Diagnostic]) -> str | None:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or exc}"
        diagnostics.append(Diagnostic("file_error", message, Span(str(path), 1, 1)))
    except UnicodeDecodeError as exc:
        message = f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        diagnostics.append(Diagnostic("file_error", message, Span(str(path), 1, 1)))
    return None


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    found = []
    for where, folders, names in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith((".", "__")))
        found += [Path(where) / n for n in names if n.endswith(suffixes)]
    return sorted(found)


def load_pack(folder: str | Path, origin: str | None = None) -> Pack:
    """Read and check the pack in ``folder``.

    Raises:
        PackError: every problem of ``pack.yaml`` and of the rules, each at its place.
    """
    folder = Path(folder)
    yaml_path = folder / PACK_FILE
    shown = str(yaml_path)
    if not yaml_path.is_file():
        message = (
            f"{folder} is not a pack: it has no {PACK_FILE} (a pack is a folder with "
            f"{PACK_FILE} and its .dl policies)"
        )
        raise PackError([Diagnostic("file_error", message, Span(shown, 1, 1))])
    diagnostics: list[Diagnostic] = []
    text = _read(yaml_path, diagnostics)
    if text is None:
        raise PackError(diagnostics)
    sources = {shown: text}
    spec, places = parse_pack_yaml(text, shown)
    rules: list[Rule] = []
    files = [str(p) for p in _files(folder, (".dl",))]
    if not files:
        message = f"pack {spec.id} has no policies: put its rules in .dl files in {folder}"
        diagnostics.append(Diagnostic("pack_invalid", message, places.span()))
    for file in files:
        source = _read(Path(file), diagnostics)
        if source is None:
            continue
        sources[file] = source
        try:
            rules += parse(source, file)
        except PolicyError as exc:
            diagnostics += exc.diagnostics
    if not diagnostics:
        diagnostics += _Checks(spec, places, rules).run()
    if not diagnostics:
        diagnostics += _compile(spec, rules)
    if any(d.is_error for d in diagnostics):
        raise PackError(diagnostics)
    tests = tuple(str(p) for p in _files(folder, TEST_SUFFIXES))
    return Pack(
        spec, folder, origin or str(folder), tuple(files), tuple(rules), tests, sources, places
    )


class _Checks:
    """What the rules and ``pack.yaml`` must agree on (everything but compiling)."""

    def __init__(self, spec: PackSpec, places: YamlPlaces, rules: list[Rule]):
        self.spec = spec
        self.places = places
        self.rules = rules
        self.out: list[Diagnostic] = []

    def error(self, message: str, span: Span | None) -> None:
        self.out.append(Diagnostic("pack_invalid", message, span))

    def run(self) -> list[Diagnostic]:
        self.heads()
        self.reads()
        self.controls()
        return self.out

    def heads(self) -> None:
        seen: dict[Rule, Span | None] = {}
        for rule in self.rules:
            if rule in seen:
                self.error(f"this rule is also at {seen[rule]}; write it once", rule.span)
            seen.setdefault(rule, rule.span)
            for head in rule.heads:
                atom = head.atom if isinstance(head, Modal) else head
                if isinstance(head, Modal):
                    self.error(
                        f"{head.kind}[...] is not for packs: a pack reports, and the "
                        "operator decides what acts on its violations",
                        head.span,
                    )
                elif atom.theory is not None:
                    self.error(
                        f"a pack's rules define its own tables; {atom.qualified} "
                        f"belongs to {atom.theory}",
                        atom.span,
                    )
                elif atom.table in self.spec.parameters:
                    self.error(
                        f"{atom.table} is a parameter: its rows come from pack.yaml "
                        "(parameters.{0}.default) or the operator, not from rules".format(
                            atom.table
                        ),
                        atom.span,
                    )
                elif atom.table in ("error", "warning"):
                    self.error(
                        f"the pack's rules may not define {atom.table}: the policy made "
                        "from each control derives error from the control's table; "
                        "name tables for what they hold",
                        atom.span,
                    )

    def reads(self) -> None:
        defines, _ = dependencies(self.rules)
        used: dict[str, set[str]] = {}
        parameters_read: set[str] = set()
        for rule in self.rules:
            for atom in body_atoms(rule.body):
                if atom.theory is None:
                    if atom.table in self.spec.parameters:
                        parameters_read.add(atom.table)
                    elif atom.table not in defines:
                        self.error(
                            f"{atom.table} is read, but no rule of the pack defines it "
                            "and it is not a parameter (declare it under parameters: "
                            "in pack.yaml, or write a datasource:table)",
                            atom.span,
                        )
                    continue
                ds = self.spec.datasources.get(atom.theory)
                if ds is None:
                    known = ", ".join(self.spec.datasources)
                    self.error(
                        f"{atom.qualified} reads {atom.theory}, which pack.yaml does not "
                        f"declare (datasources: {known}); add it under datasources:",
                        atom.span,
                    )
                elif atom.table not in ds.tables:
                    self.error(
                        f"{atom.qualified} is not among the tables pack.yaml declares for "
                        f"{atom.theory} ({', '.join(ds.tables)}); add it to "
                        f"datasources.{atom.theory}.tables",
                        atom.span,
                    )
                used.setdefault(atom.theory, set()).add(atom.table)
        for name, ds in self.spec.datasources.items():
            schema = driver_tables(ds.driver or name)
            for i, table in enumerate(ds.tables):
                where = self.places.span("datasources", name, "tables", i)
                if schema is not None and table not in schema:
                    self.error(
                        f"driver {ds.driver or name} has no table {table}; its tables: "
                        f"{', '.join(schema)}",
                        where,
                    )
                elif table not in used.get(name, set()):
                    self.error(
                        f"no rule reads {name}:{table}; remove it from the declared tables", where
                    )
        for name in self.spec.parameters:
            if name not in parameters_read:
                self.error(
                    f"no rule reads parameter {name}; remove it or use it",
                    self.places.span("parameters", name, key=True),
                )

    def controls(self) -> None:
        defines, _ = dependencies(self.rules)
        served: set[Rule] = set()
        for i, control in enumerate(self.spec.controls):
            where = self.places.span("controls", i, "table")
            rules = defines.get(control.table)
            if not rules:
                self.error(
                    f"control {control.id}: no rule of the pack defines table {control.table}",
                    where,
                )
                continue
            width = len(control.columns)
            for rule in rules:
                for head in rule.heads:
                    if (
                        not isinstance(head, Modal)
                        and head.table == control.table
                        and len(head.args) + len(head.named) != width
                    ):
                        self.error(
                            f"control {control.id} declares {width} columns "
                            f"({', '.join(control.column_names)}), but this rule gives "
                            f"{control.table} {len(head.args) + len(head.named)}",
                            head.span,
                        )
            served.update(slice_rules(self.rules, control.table)[0])
        for rule in self.rules:
            if rule not in served:
                tables = ", ".join(head_tables(rule))
                self.error(
                    f"no control reads {tables}: every rule of a pack serves a control "
                    "(add one for it, or remove the rule)",
                    rule.span,
                )


def _compile(spec: PackSpec, rules: Iterable[Rule]) -> list[Diagnostic]:
    """The compiler's diagnostics for the pack's rules, with its defaults and drivers."""
    engine = Engine()
    for name, ds in spec.datasources.items():
        schema = driver_tables(ds.driver or name)
        if schema is not None:
            engine.declare_datasource(name, schema)
    policy = spec.policy_name
    engine.create_policy(policy)
    facts = parameter_facts(parameter_values(spec))
    try:
        engine.apply(RuleChange(policy, r, +1) for r in [*rules, *facts])
    except PolicyError as exc:
        return list(exc.diagnostics)
    except CharterError as exc:
        return [Diagnostic("pack_invalid", str(exc))]
    return []
