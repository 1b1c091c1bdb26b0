"""Running test cases: a fresh engine, then an incremental one, both against the expectations.

Each case loads its policies and rows into a new :class:`~charter.engine.Engine` the way
``charter eval`` does (rules first, then every row in one batch: whole evaluation). Then
it runs again on an engine held to its incremental paths (no re-evaluation of a stratum
for a large batch, no vectorized or set-at-a-time path): the same rows as deltas in a
random order, split into batches, with the rules added before, between or after them, some
rows inserted, deleted and inserted again, and one rule removed and added back. The order
is drawn from the run's seed and the case, so ``--seed`` replays it. Every table of the two
engines must agree, and each must meet the expectations: a difference is an engine bug,
reported with the seed.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import random
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.cli.loading import (
    DataFileError,
    PolicyFile,
    Sources,
    data_rows,
    datasource_schemas,
    load_policies,
    read_data_file,
    read_policy_file,
)
from charter.cli.output import error_text
from charter.engine import Delta, Engine, RuleChange
from charter.lang.errors import CharterError, Diagnostic, PolicyError
from charter.lang.parser import parse
from charter.policytest.cases import (
    ErrorSpec,
    PolicySource,
    SimulateCheck,
    TableCheck,
    TestCase,
)
from charter.policytest.coverage import Coverage
from charter.service.errors import ServiceError
from charter.service.simulate import (
    DEFAULT_ACTION_POLICY,
    declared_actions,
    parse_steps,
    projected,
)

__all__ = ["PASS", "FAIL", "ERROR", "Failure", "Outcome", "Runner"]

PASS, FAIL, ERROR = "pass", "fail", "error"
Row = tuple


@dataclass
class Failure:
    """One thing that did not hold: where in the test file, what, and the rows that differ."""

    line: int
    what: str
    message: str
    missing: list[Row] = field(default_factory=list)
    unexpected: list[Row] = field(default_factory=list)


@dataclass
class Outcome:
    """A case's result: ``pass``, ``fail`` (failures) or ``error`` (it could not run)."""

    case: TestCase
    seed: int
    failures: list[Failure] = field(default_factory=list)
    error: str | None = None
    plan: str = ""
    duration: float = 0.0

    @property
    def status(self) -> str:
        if self.error is not None:
            return ERROR
        return FAIL if self.failures else PASS


class _CaseProblem(Exception):
    """A check that cannot be made (an unknown table, a row of the wrong width)."""


@dataclass
class _Found:
    """One error a case raised, in the shape an ``error:`` expectation matches."""

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None


_LOCATED = re.compile(
    r"^(?P<file>.*?)(?::(?P<line>\d+):(?P<col>\d+))?: error\[(?P<code>\w+)\]: "
    r"(?P<message>.*)$",
    re.S,
)


def _found(exc: BaseException) -> list[_Found]:
    if isinstance(exc, PolicyError):
        return [_Found(d.code, d.message, *_span(d)) for d in exc.errors or exc.diagnostics]
    if isinstance(exc, DataFileError):
        out = []
        for text in exc.messages:
            m = _LOCATED.match(text)
            if m is None:
                out.append(_Found("data_error", text))
                continue
            line, col = m["line"], m["col"]
            out.append(
                _Found(
                    m["code"],
                    m["message"],
                    m["file"],
                    int(line) if line else None,
                    int(col) if col else None,
                )
            )
        return out
    if isinstance(exc, ServiceError):
        if isinstance(exc.data, list):
            return [
                _Found(
                    d.get("code", ""),
                    d.get("message", ""),
                    d.get("file"),
                    d.get("line"),
                    d.get("col"),
                )
                for d in exc.data
                if isinstance(d, dict)
            ]
        return [_Found("simulate_error", exc.message)]
    if isinstance(exc, OSError):
        return [_Found("file_error", str(exc), exc.filename)]
    code = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()  # DataError: data_error
    return [_Found(code, str(exc))]


def _span(d: Diagnostic) -> tuple[str | None, int | None, int | None]:
    s = d.span
    return (s.file, s.line, s.col) if s is not None else (None, None, None)


def format_row(row: Iterable[Any]) -> str:
    """A row as the JSON list a test file would write it: ``["vm1", null, 3]``."""
    import json

    return json.dumps(list(row), ensure_ascii=False, default=str)


def _value(value: Any) -> Any:
    """An expected value as rows hold it: booleans as Congress's drivers stored them."""
    return str(value) if isinstance(value, bool) else value


def _rows_key(row: Row) -> tuple:
    return tuple(
        (0, v, "")
        if isinstance(v, int | float) and not isinstance(v, bool)
        else (1, 0, v)
        if isinstance(v, str)
        else (2, 0, repr(v))
        for v in row
    )


def _sorted(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=_rows_key)


class Runner:
    """Runs cases, keeping each policy file read once, and the coverage when asked for."""

    def __init__(self, seed: int, coverage: Coverage | None = None):
        self.seed = seed
        self.coverage = coverage
        self.sources: Sources = {}
        self._files: dict[str, PolicyFile | PolicyError] = {}
        # Datasource schemas to declare besides those the cases' files imply (a pack's
        # drivers: charter pack test).
        self.schemas: dict[str, dict[str, tuple[str, ...]]] = {}

    # ------------------------------------------------------------ loading

    def policy_file(self, source: PolicySource) -> PolicyFile:
        if source.text is not None:
            file = source.test_file or "<test>"
            rules = parse(source.text, file, origin=source.origin)
            return PolicyFile(source.name or "", file, source.kind, tuple(rules))
        path = source.path or ""
        if path not in self._files:
            try:
                policy: PolicyFile | PolicyError = read_policy_file(path, self.sources)
            except PolicyError as exc:
                policy = exc
            self._files[path] = policy
        found = self._files[path]
        if isinstance(found, PolicyError):
            raise found
        return found

    def policies(self, case: TestCase) -> list[PolicyFile]:
        """The case's policies, every problem of all of them in one PolicyError."""
        out: list[PolicyFile] = []
        diagnostics: list[Diagnostic] = []
        defined: dict[str, str] = {}
        for source in case.policies:
            try:
                policy = self.policy_file(source)
            except PolicyError as exc:
                diagnostics += exc.diagnostics
                continue
            if policy.name in defined:
                message = (
                    f"{defined[policy.name]} and {policy.path} both define policy "
                    f"{policy.name}; a case loads each policy once"
                )
                diagnostics.append(Diagnostic("duplicate_policy", message))
                continue
            defined[policy.name] = policy.path
            out.append(policy)
        if any(d.is_error for d in diagnostics):
            raise PolicyError(diagnostics)
        return out

    # ------------------------------------------------------------ a case

    def run(self, case: TestCase) -> Outcome:
        outcome = Outcome(case, self.seed)
        start = time.perf_counter()
        try:
            self._run(case, outcome)
        finally:
            outcome.duration = time.perf_counter() - start
        return outcome

    def _run(self, case: TestCase, outcome: Outcome) -> None:
        if case.file not in self.sources:  # to show the lines of inline rules' errors
            with contextlib.suppress(OSError, UnicodeDecodeError):
                self.sources[case.file] = Path(case.file).read_text("utf-8-sig")
        engine = Engine()
        try:
            policies = self.policies(case)
            tables = list(case.data) + [t for f in case.data_files for t in read_data_file(f)]
            schemas = datasource_schemas(policies, tables) | self.schemas
            for module, schema in schemas.items():
                engine.declare_datasource(module, schema)
            load_policies(engine, policies)
            rows, _ = data_rows(engine, tables, [p.name for p in policies])
            engine.load_rows(rows)
        except (CharterError, OSError) as exc:
            if case.error is not None:
                self.check_error(case, case.error, exc, outcome)
            else:
                outcome.error = error_text(exc, self.sources)
            return
        if case.error is not None:
            outcome.failures.append(
                Failure(
                    case.line,
                    "error",
                    f"expected error[{case.error.code}]"
                    f"{_place(case.error)}, but the case loaded without an error",
                )
            )
            return
        if self.coverage is not None:  # the rules of files that some case could load
            for source, policy in zip(case.policies, policies, strict=True):
                if source.text is None:
                    self.coverage.add(policy.name, policy.path, policy.rules)
            self.coverage.record(engine, case.label)
        default = policies[0].name if policies else None
        rng = random.Random(f"{self.seed}/{case.file}/{case.name}")
        incremental: Engine | None = None
        try:
            incremental, outcome.plan = incremental_engine(policies, schemas, rows, rng)
        except CharterError as exc:
            outcome.failures.append(
                Failure(
                    case.line,
                    "incremental",
                    f"the incremental run raised an error the fresh one did not: {exc}",
                )
            )
        if incremental is not None:
            self.compare(case, engine, incremental, outcome)
        for check in case.expect:
            try:
                self.check_table(engine, check, default, outcome)
            except _CaseProblem as exc:
                outcome.failures.append(Failure(check.line, check.table, str(exc)))
        for sim in case.simulate:
            self.check_simulate(engine, incremental, sim, default, case, outcome)

    def compare(self, case: TestCase, fresh: Engine, incremental: Engine, outcome: Outcome) -> None:
        for table in sorted(set(fresh.tables()) | set(incremental.tables())):
            a, b = _rows_of(fresh, table), _rows_of(incremental, table)
            if a != b:
                outcome.failures.append(
                    Failure(
                        case.line,
                        f"incremental {table}",
                        f"the incremental run ({outcome.plan}) differs from the fresh one: an engine "
                        "bug; rows only in the fresh run are missing, rows only in the incremental "
                        "run unexpected",
                        _sorted(a - b),
                        _sorted(b - a),
                    )
                )

    # ------------------------------------------------------------ expectations

    def check_error(
        self, case: TestCase, spec: ErrorSpec, exc: BaseException, outcome: Outcome
    ) -> None:
        found = _found(exc)
        folder = os.path.dirname(case.file)
        for f in found:
            if f.code != spec.code:
                continue
            if spec.line is not None and f.line != spec.line:
                continue
            if spec.col is not None and f.col != spec.col:
                continue
            if spec.file is not None and not _same_file(f.file, spec.file, folder):
                continue
            if spec.message is not None and spec.message not in f.message:
                continue
            return
        outcome.failures.append(
            Failure(
                case.line,
                "error",
                f"expected error[{spec.code}]{_place(spec)}"
                + (f" with {spec.message!r}" if spec.message else "")
                + ", got:\n"
                + error_text(exc, self.sources),
            )
        )

    def expected_row(self, engine: Engine, table: str, spec: Any) -> Row:
        if isinstance(spec, dict):
            module, _, name = table.partition(":")
            columns = engine.schemas.columns(module, name)
            if columns is None:
                raise _CaseProblem(
                    f"row {format_row(spec.values())} is an object, but {table} "
                    "has no named columns: write the row as a list"
                )
            unknown = [k for k in spec if k not in columns]
            if unknown:
                raise _CaseProblem(
                    f"expected row names unknown column {unknown[0]}; {table} "
                    f"has columns {', '.join(columns)}"
                )
            values = [spec.get(c) for c in columns]
        else:
            values = spec if isinstance(spec, list) else [spec]
        row = tuple(_value(v) for v in values)
        arity = engine.arity(table)
        if arity is not None and len(row) != arity:
            raise _CaseProblem(
                f"expected row {format_row(row)} has {len(row)} values; {table} has {arity} columns"
            )
        return row

    def qualify(self, engine: Engine, table: str, policy: str | None) -> str:
        if ":" not in table:
            if policy is None:
                raise _CaseProblem(
                    f"table {table} names no policy and the case has none: write policy:table"
                )
            table = f"{policy}:{table}"
        if not engine.has_table(table):
            hint = difflib.get_close_matches(table, engine.tables(), n=1)
            more = f"; did you mean {hint[0]}?" if hint else ""
            raise _CaseProblem(f"unknown table {table}{more}")
        return table

    def check_table(
        self, engine: Engine, check: TableCheck, policy: str | None, outcome: Outcome
    ) -> None:
        table = self.qualify(engine, check.table, policy)
        actual = engine.rows(table)
        if check.exact is not None:
            expected = {self.expected_row(engine, table, r) for r in check.exact}
            missing, unexpected = expected - actual, actual - expected
            what = "expected exactly these rows" if expected else "expected no rows"
        else:
            contains = {self.expected_row(engine, table, r) for r in check.contains}
            excludes = {self.expected_row(engine, table, r) for r in check.excludes}
            missing, unexpected = contains - actual, excludes & actual
            what = "expected to contain these rows and exclude those"
        if missing or unexpected:
            outcome.failures.append(
                Failure(check.line, table, what, _sorted(missing), _sorted(unexpected))
            )

    def check_simulate(
        self,
        fresh: Engine,
        incremental: Engine | None,
        sim: SimulateCheck,
        default: str | None,
        case: TestCase,
        outcome: Outcome,
    ) -> None:
        policy = sim.policy or default
        try:
            got = self.simulate(fresh, sim, policy, case)
            if incremental is not None:
                again = self.simulate(incremental, sim, policy, case, record=False)
                for table in sorted(set(got) | set(again)):
                    (a_add, a_del), (b_add, b_del) = got[table], again[table]
                    if (a_add, a_del) != (b_add, b_del):
                        outcome.failures.append(
                            Failure(
                                sim.line,
                                f"incremental simulate {table}",
                                f"the incremental run ({outcome.plan}) simulates differently: "
                                "an engine bug; rows the fresh run adds or removes and the "
                                "incremental one does not are missing, the others unexpected",
                                _sorted((a_add - b_add) | (a_del - b_del)),
                                _sorted((b_add - a_add) | (b_del - a_del)),
                            )
                        )
            for delta in sim.deltas:
                table = delta.table if ":" in delta.table else f"{policy}:{delta.table}"
                added, removed = got[table]
                want_added = {self.expected_row(fresh, table, r) for r in delta.added}
                want_removed = {self.expected_row(fresh, table, r) for r in delta.removed}
                for kind, want, have in (
                    ("added", want_added, added),
                    ("removed", want_removed, removed),
                ):
                    if want != have:
                        outcome.failures.append(
                            Failure(
                                delta.line,
                                table,
                                f"simulate {sim.sequence!r}: expected exactly these rows {kind}",
                                _sorted(want - have),
                                _sorted(have - want),
                            )
                        )
        except _CaseProblem as exc:
            outcome.failures.append(Failure(sim.line, "simulate", str(exc)))
        except (CharterError, ServiceError) as exc:
            text = exc.message if isinstance(exc, ServiceError) else error_text(exc, self.sources)
            outcome.failures.append(Failure(sim.line, "simulate", f"failed: {text}"))

    def simulate(
        self,
        engine: Engine,
        sim: SimulateCheck,
        policy: str | None,
        case: TestCase,
        record: bool = True,
    ) -> dict[str, tuple[set[Row], set[Row]]]:
        """Each named table's rows added and removed by the sequence, read inside it."""
        if policy is None:
            raise _CaseProblem("simulate needs a policy: the case has none; give policy:")
        actions = sim.action_policy
        if actions is None and DEFAULT_ACTION_POLICY in engine.policies:
            actions = DEFAULT_ACTION_POLICY
        elements = parse(sim.sequence, case.file, origin=sim.origin)
        steps = parse_steps(policy, elements, declared_actions(engine, actions), actions)
        tables = [d.table if ":" in d.table else f"{policy}:{d.table}" for d in sim.deltas]
        before = {t: _rows_of(engine, t) for t in tables}
        known = {t for t in tables if engine.has_table(t)}
        with projected(engine, policy, actions, steps):
            after = {t: _rows_of(engine, t) for t in tables}
            known |= {t for t in tables if engine.has_table(t)}
            if record and self.coverage is not None:
                self.coverage.record(engine, case.label)
        for table in tables:
            if table not in known:
                hint = difflib.get_close_matches(table, engine.tables(), n=1)
                more = f"; did you mean {hint[0]}?" if hint else ""
                raise _CaseProblem(f"unknown table {table}{more}")
        return {t: (after[t] - before[t], before[t] - after[t]) for t in tables}


def _rows_of(engine: Engine, table: str) -> set[Row]:
    return engine.rows(table) if engine.has_table(table) else set()


def _place(spec: ErrorSpec) -> str:
    """`` at file:3:14``, `` at line 3, col 14`` or nothing."""
    if spec.file is not None:
        where = ":".join(str(p) for p in (spec.file, spec.line, spec.col) if p is not None)
        return f" at {where}"
    parts = [
        f"{name} {value}"
        for name, value in (("line", spec.line), ("col", spec.col))
        if value is not None
    ]
    return f" at {', '.join(parts)}" if parts else ""


def _same_file(found: str | None, wanted: str, folder: str) -> bool:
    if found is None:
        return False
    norm = os.path.normpath
    return norm(found) in (norm(wanted), norm(os.path.join(folder, wanted)))


# ---------------------------------------------------------------- the incremental run


def incremental_engine(
    policies: list[PolicyFile],
    schemas: dict[str, dict[str, tuple[str, ...]]],
    rows: dict[str, list[tuple]],
    rng: random.Random,
) -> tuple[Engine, str]:
    """An engine given the same policies and rows as deltas, in an order drawn from ``rng``.

    Returns the engine and a description of the order, for the failure message.
    """
    engine = Engine(recompute_fraction=math.inf, vectorize_threshold=None, batch_threshold=None)
    for module, schema in schemas.items():
        engine.declare_datasource(module, schema)
    for policy in policies:
        engine.create_policy(policy.name, policy.kind)
    rules = [RuleChange(p.name, rule, +1) for p in policies for rule in p.rules]
    deltas = [Delta(table, row, +1) for table, table_rows in rows.items() for row in table_rows]
    rng.shuffle(deltas)
    chunks = _batches(deltas, rng) or [[]]
    split = rng.randint(0, len(rules))
    rule_parts = [rules[:split], rules[split:]]
    at = sorted(rng.randint(0, len(chunks)) for _ in rule_parts)
    batches: list[list[Delta | RuleChange]] = []
    for i in range(len(chunks) + 1):
        batches += [
            part for part, position in zip(rule_parts, at, strict=True) if position == i and part
        ]
        if i < len(chunks) and chunks[i]:
            batches.append(list(chunks[i]))
    bodies = [r for r in rules if r.rule.body]
    toggled = rng.choice(bodies) if bodies and rng.random() < 0.5 else None
    if toggled is not None:  # its tables are re-evaluated whole
        batches.append([RuleChange(toggled.policy, toggled.rule, -1)])
        batches.append([toggled])
    # Last, every row out and in again, each batch through the delta rules with every rule
    # in place: each row's delete and insert take the incremental path, and the tables
    # compared are what the delta rules made.
    again = _batches([Delta(d.table, d.row, -1) for d in deltas], rng)
    again += _batches([d for d in rng.sample(deltas, len(deltas))], rng)
    batches += again
    for batch in batches:
        engine.apply(batch)
    placed = ", ".join(
        f"{len(part)} before row batch {position + 1}"
        if position < len(chunks)
        else f"{len(part)} after the rows"
        for part, position in zip(rule_parts, at, strict=True)
        if part
    )
    plan = (
        f"{len(deltas)} rows in {len(chunks)} batches, rules {placed or 'none'}"
        + (f", the rule at {_where(toggled.rule)} removed and added again" if toggled else "")
        + f", then every row deleted and inserted again in {len(again)} batches"
    )
    return engine, plan


def _batches(deltas: list[Delta], rng: random.Random) -> list[list[Delta]]:
    """``deltas`` cut into 1 to 4 batches at random places (none when there are none)."""
    if not deltas:
        return []
    count = rng.randint(1, min(4, len(deltas)))
    cuts = sorted(rng.sample(range(1, len(deltas)), count - 1))
    return [deltas[a:b] for a, b in zip([0, *cuts], [*cuts, len(deltas)], strict=True)]


def _where(rule: Any) -> str:
    span = rule.span
    return f"{span.file}:{span.line}" if span is not None else str(rule)
