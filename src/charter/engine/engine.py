"""The engine: policies, tables and their rows, kept evaluated as changes arrive.

Every table is materialized. A batch of changes (row inserts and deletes on any table, rules
added or removed) is checked whole before anything is touched, then propagated stratum by
stratum; the caller gets each table's delta, and subscribers get theirs.

>>> eng = Engine()
>>> _ = eng.load_policy("p", "reach(x, y) :- edge(x, y)  reach(x, z) :- reach(x, y), edge(y, z)")
>>> d = eng.insert_rows("p:edge", [(1, 2), (2, 3)])
>>> sorted(d["p:reach"].inserted)
[(1, 2), (1, 3), (2, 3)]
>>> sorted(eng.apply([Delta("p:edge", (2, 3), -1)])["p:reach"].deleted)
[(1, 3), (2, 3)]
>>> eng.query("reach(1, y)", policy="p")
[(1, 2)]

``Engine`` holds the policies, the rules and the program they compile to, and propagates a
batch through the strata; its other parts are mixins, each in the module named for what it
holds: batches (``changes.py``), tables changed in bulk (``bulk.py``), reads (``reads.py``)
and hypothetical changes (``hypothetical.py``).
"""

from __future__ import annotations

import difflib
import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from charter.engine.aggregates import AggregateState
from charter.engine.batch_delta import BatchDelta
from charter.engine.bulk import BulkTables
from charter.engine.changes import Changes, Subscriber, _internal
from charter.engine.delta import Delta, RuleChange, TableDelta
from charter.engine.evaluate import evaluate_stratum, sizer
from charter.engine.execute import State
from charter.engine.hypothetical import Hypothetical
from charter.engine.incremental import update_counting, update_recursive
from charter.engine.prepare import IndexBuilder, build_indexes
from charter.engine.program import (
    FACTS_SUFFIX,
    AuxiliaryNames,
    CompiledRule,
    Program,
    Stratum,
    build_program,
)
from charter.engine.reads import Reads
from charter.engine.relation import Relation
from charter.engine.rule_check import ProgramView
from charter.lang.ast import Rule
from charter.lang.checks import compile_rules
from charter.lang.duplicates import unique_rules
from charter.lang.errors import EngineError, PolicyError
from charter.lang.parser import parse
from charter.lang.schema import Schemas

POLICY_KINDS = ("nonrecursive", "action", "database", "materialized")


@dataclass
class PolicyState:
    """A policy's kind and rules: the user's rule -> its normalized form, in order."""

    kind: str = "nonrecursive"
    rules: dict[Rule, Rule] = field(default_factory=dict)


#: A stratum evaluated whole whose tables stay under this many rows (before and after) does
#: not make the engine plan its readers again (``batch_threshold`` when set).
REBUILT_SMALL = 1_000


class Engine(Changes, BulkTables, Reads, Hypothetical):
    """Policies and datasource tables, every table materialized and kept current.

    Args:
        columnar_threshold: tables of at least this many rows made by bulk work (a load,
            a whole evaluation) are kept as NumPy columns with sorted indexes.
        vectorize_threshold: a stratum evaluated whole whose inputs hold at least this many
            rows is evaluated in DuckDB when its rules allow (None: never).
        recompute_fraction: when a batch changes more than this fraction of a stratum's
            input rows, the stratum is re-evaluated whole instead of incrementally (both
            give the same tables; the whole path is faster for bulk loads).
        batch_threshold: a batch changing at least this many rows of a columnar table
            applies them set at a time, and a delta at least this large goes through the
            delta rules of non-recursive strata set at a time (``batch.py``; None: never).
    """

    def __init__(
        self,
        recompute_fraction: float = 0.3,
        columnar_threshold: int = 50_000,
        vectorize_threshold: int | None = 5_000,
        batch_threshold: int | None = 1_000,
    ):
        self.schemas = Schemas()
        self.policies: dict[str, PolicyState] = {}
        self.state = State()
        self.recompute_fraction = recompute_fraction
        self.state.columnar_threshold = columnar_threshold
        self.state.vectorize_threshold = vectorize_threshold
        self.state.batch_threshold = batch_threshold
        self._names = AuxiliaryNames()
        self._arity: dict[str, int] = {}
        self._named: set[str] = set()  # tables whose name passed _check_rows (schemas as now)
        self._subscribers: dict[str, list[Subscriber]] = defaultdict(list)
        self._rebuilt: set[str] = set()  # the tables of strata this batch evaluated whole
        self._indexing: IndexBuilder | None = None  # building indexes after bulk work
        # Bumped by every change a rule check reads (rules, policies, schemas, tables
        # learned from rows): a check made at the same generation still holds.
        self.generation = 0
        # Stamps of the batches that changed rows (each base table's last one) or rules:
        # a table's version (``table_version``) moves whenever its rows may have.
        self._stamp = 0
        self._row_stamps: dict[str, int] = {}
        self._rule_stamp = 0
        self.program: Program = self._build({}, None)

    # ------------------------------------------------------------ policies and schemas

    def create_policy(self, name: str, kind: str = "nonrecursive") -> None:
        """Create an empty policy."""
        if name in self.policies:
            raise EngineError(f"policy {name} already exists")
        if kind not in POLICY_KINDS:
            raise EngineError(f"unknown policy kind {kind}; use one of {', '.join(POLICY_KINDS)}")
        if self.schemas.is_complete(name):
            raise EngineError(f"{name} is a datasource; a policy needs another name")
        self.policies[name] = PolicyState(kind)  # an empty policy changes no other check

    def delete_policy(self, name: str) -> dict[str, TableDelta]:
        """Delete a policy, its rules and its rows."""
        policy = self._policy(name)
        changes: list[Delta | RuleChange] = [RuleChange(name, r, -1) for r in policy.rules]
        for table, relation in list(self.state.relations.items()):
            if table.startswith(name + ":") and table not in self.program.derived:
                changes += [Delta(table.removesuffix(FACTS_SUFFIX), row, -1) for row in relation]
        result = self.apply(changes)
        self._rule_stamp = self._stamp = self._stamp + 1
        del self.policies[name]
        for table in [t for t in self.state.relations if t.startswith(name + ":")]:
            del self.state.relations[table]
        self.generation += 1
        return result

    def declare_datasource(self, name: str, tables: Mapping[str, Sequence[str]]) -> None:
        """Give a datasource its (complete) table schemas; rules may then use column names."""
        if name in self.policies:
            raise EngineError(f"{name} is a policy; a datasource needs another name")
        for table, columns in tables.items():
            self._check_arity_change(f"{name}:{table}", len(columns))
        self.schemas.set_module(name, {t: tuple(c) for t, c in tables.items()})
        self._named.clear()
        for table, columns in tables.items():
            self._arity[f"{name}:{table}"] = len(columns)
        self.generation += 1

    def forget_datasource(self, name: str) -> None:
        """Drop a datasource's schema (its rows are the caller's to delete first), so its
        name may become a policy's and its tables unknown again."""
        self.schemas.drop_module(name)
        self._named.clear()
        self.generation += 1

    def set_schema(self, module: str, table: str, columns: Sequence[str]) -> None:
        """Declare one table's columns (its module's schema becomes complete)."""
        self._check_arity_change(f"{module}:{table}", len(columns))
        self.schemas.set_table(module, table, tuple(columns))
        self._named.clear()
        self._arity[f"{module}:{table}"] = len(columns)
        self.generation += 1

    def _check_arity_change(self, table: str, arity: int) -> None:
        known = self._arity.get(table)
        rel = self.state.relations.get(table)
        if known is not None and known != arity and rel is not None and len(rel):
            raise EngineError(
                f"{table} holds rows of {known} columns; a schema of {arity} columns does not fit"
            )

    def _policy(self, name: str) -> PolicyState:
        policy = self.policies.get(name)
        if policy is None:
            hint = difflib.get_close_matches(name, list(self.policies), n=1)
            more = f"; did you mean {hint[0]}?" if hint else ""
            raise EngineError(f"no policy named {name}{more}")
        return policy

    # ------------------------------------------------------------ rules

    def _rules(
        self, policy: str, rules: str | Rule | Sequence[Rule], file: str | None
    ) -> list[Rule]:
        if isinstance(rules, str):  # a text, as a file: a rule written twice is kept once
            return unique_rules(parse(rules, file), policy)[0]
        if isinstance(rules, Rule):
            return [rules]
        return list(rules)

    def load_policy(
        self,
        name: str,
        rules: str | Sequence[Rule],
        file: str | None = None,
        kind: str = "nonrecursive",
    ) -> dict[str, TableDelta]:
        """Create the policy if needed and add its rules, all or none (a rule the text
        writes twice is kept once, as Congress kept it)."""
        parsed = self._rules(name, rules, file)
        created = name not in self.policies
        if created:
            self.create_policy(name, kind)
        try:
            return self.apply(RuleChange(name, r, +1) for r in parsed)
        except Exception:
            if created:
                del self.policies[name]
            raise

    def insert_rules(
        self, policy: str, rules: str | Rule | Sequence[Rule], file: str | None = None
    ) -> dict[str, TableDelta]:
        """Add rules (text or parsed) to a policy, all or none."""
        return self.apply(RuleChange(policy, r, +1) for r in self._rules(policy, rules, file))

    def delete_rules(
        self, policy: str, rules: str | Rule | Sequence[Rule], file: str | None = None
    ) -> dict[str, TableDelta]:
        """Remove rules from a policy."""
        return self.apply(RuleChange(policy, r, -1) for r in self._rules(policy, rules, file))

    def view(self) -> ProgramView:
        """What a rule check reads, copied (references to each policy's rules, the schemas,
        the known tables' arities): check changes against it with ``check_changes`` without
        holding whatever guards the engine, then pass the result to ``apply``."""
        return ProgramView(
            self.generation,
            {name: p.kind for name, p in self.policies.items()},
            {name: dict(p.rules) for name, p in self.policies.items()},
            Schemas(self.schemas.modules),
            self._arities({}),
        )

    def compile(self, policy: str, rules: Sequence[Rule], kind: str = "nonrecursive"):
        """Check rules as if added to ``policy``; returns (normalized rules, diagnostics)."""
        return compile_rules(policy, rules, self.schemas, kind)

    def rules(self, policy: str) -> list[Rule]:
        """A policy's rules as the user wrote them, in the order they were added."""
        return list(self._policy(policy).rules)

    # ------------------------------------------------------------ propagation

    def _build(self, rules: Mapping[str, Mapping[Rule, Rule]], previous: Program | None) -> Program:
        by_policy = {
            p: list(r.values()) for p, r in rules.items() if self.policies[p].kind != "action"
        }
        program = build_program(
            by_policy,
            with_facts=lambda t: not _internal(t) and "execute[" not in t,
            arity=self._arity.get,
            names=self._names,
            previous=previous,
        )
        aggregates = self.state.aggregates
        for table, info in program.auxiliary.items():
            if table not in aggregates:
                aggregates[table] = AggregateState(info.func, info.width, info.target)
        for table in [t for t in aggregates if t not in program.auxiliary]:
            del aggregates[table]
            self.state.relations.pop(table, None)
        for table in [t for t in self.state.relations if t not in program.derived]:
            if "#agg" in table or "execute[" in table:
                del self.state.relations[table]
        return program

    def _dirty_tables(self, previous: Program) -> set[str]:
        """Derived tables whose set of rules changed: they are re-evaluated whole."""
        if previous is self.program:
            return set()
        before, now = previous.rules_by_head, self.program.rules_by_head
        dirty = set()
        for table in set(before) | set(now):
            old_rules = {id(c) for c in before.get(table, ())}
            new_rules = {id(c) for c in now.get(table, ())}
            if old_rules != new_rules:
                dirty.add(table)
        return dirty

    def _propagate(self, dirty: set[str], old_visible: dict[str, dict[tuple, int]]) -> None:
        """Bring every stratum a changed table or a rule change reaches up to date, in order.

        Only the strata reading a changed table (or with changed rules) are visited: a
        one-row change into one table touches one or two of a large program's strata.
        """
        state = self.state
        strata, readers = self.program.strata, self.program.readers
        changed: set[str] = set()
        pending: set[int] = set()
        for table, delta in state.batch.items():
            if delta:
                changed.add(table)
                pending.update(readers.get(table, ()))
        if dirty:
            pending.update(i for i, s in enumerate(strata) if s.tables & dirty)
        order = list(pending)  # a heap: the strata in order, each visited once
        heapq.heapify(order)
        while order:
            position = heapq.heappop(order)
            if position not in pending:
                continue
            pending.discard(position)
            stratum = strata[position]
            if dirty and not stratum.tables.isdisjoint(dirty):
                self._recompute(stratum, old_visible)
            elif not stratum.inputs.isdisjoint(changed):
                if self._large(stratum, changed):
                    self._recompute(stratum, old_visible)
                elif stratum.recursive:
                    size = sum(len(state.relation(t)) for t in stratum.tables)
                    # Over-deleting row by row costs 20-50x a row of whole (vectorized)
                    # evaluation (measured at 1M rows): give up early, re-evaluate instead.
                    limit = max(1000, self.recompute_fraction * size / 50)
                    deltas = update_recursive(stratum, state, changed, limit)
                    if deltas is None:  # over-deletion ran too far: re-evaluate whole
                        self._recompute(stratum, old_visible)
                    else:
                        state.batch.update(deltas)
                else:
                    (table,) = stratum.tables
                    state.batch[table] = update_counting(stratum, state, changed)
            else:
                continue
            for table in stratum.tables:
                delta = state.batch.get(table)
                if not delta:
                    continue
                changed.add(table)
                for i in readers.get(table, ()):
                    if i > position and i not in pending:
                        pending.add(i)
                        heapq.heappush(order, i)
                aggregate = state.aggregates.get(table)
                if aggregate is not None:
                    rel = state.relations[table]
                    if delta.all_new:
                        aggregate.rebuild(rel)
                    else:
                        aggregate.apply(rel, delta.plus, delta.minus)

    def _large(self, stratum: Stratum, changed: set[str]) -> bool:
        """Whether the batch moved more than ``recompute_fraction`` of the stratum's inputs.

        All its inputs, not only the changed ones: evaluating the stratum whole reads every
        one of them, while the delta rules look the unchanged ones up. A few rows into an
        empty table (a decision's request rows) joined with a large one are a delta, not a
        reason to evaluate the large join whole. Plain loops: this runs for every stratum a
        one-row change reaches."""
        batch, relations = self.state.batch, self.state.relations
        moved = 0
        for table in stratum.inputs:
            if table in changed:
                delta = batch.get(table)
                if delta is not None:
                    moved += delta.size()
        fraction = self.recompute_fraction
        if fraction <= 0:
            return moved > 0
        enough = moved / fraction
        total = 0
        for table in stratum.inputs:  # a few rows against large tables: stop at the first
            relation = relations.get(table)
            if relation is not None:
                total += len(relation)
                if total >= enough:
                    return False
        return moved > fraction * max(total, 1)

    def _prepare_indexes(self, tables: set[str] | None = None) -> None:
        """After bulk work: build the indexes the next changes will look up (prepare.py);
        ``tables``: only for the plans reading or making these (the strata a small batch
        evaluated whole), not the whole program's."""
        self._indexing = build_indexes(self.program, self.state, sizer(self.state), tables)

    def _recompute(self, stratum: Stratum, old_visible: dict[str, dict[tuple, int]]) -> None:
        state = self.state
        before: dict[str, Relation | dict | None] = {
            t: old_visible[t] if t in old_visible else state.relations.get(t)
            for t in stratum.tables
        }
        evaluate_stratum(stratum, state)  # installs new relations; the old ones stay intact
        small = state.batch_threshold or REBUILT_SMALL
        for table in stratum.tables:
            new = state.relations[table]
            state.batch[table] = self._difference(before[table], new)
            old = before[table]
            if max(len(old) if old is not None else 0, len(new)) >= small:
                # Fresh stores to index, and sizes its readers' plans may no longer fit. A
                # table that stays small (a decision's first violation: none -> one row)
                # keeps its readers' plans, as any small change does, and its relation is
                # hashed at its first look-up.
                self._rebuilt.add(table)

    def _difference(self, old: Relation | dict | None, new: Relation) -> BatchDelta:
        """The batch delta from ``old`` to ``new`` contents of one table."""
        if old is None or not len(old):
            return BatchDelta.everything(new)
        if not len(new):
            return BatchDelta(set(), set(old))
        if isinstance(old, Relation) and old.columnar_only and new.columnar_only:
            from charter.engine.vectorized import difference

            found = difference(self.state.duckdb(), old.base, new.base)  # type: ignore[arg-type]
            if found is not None:
                return BatchDelta(*found)
        return BatchDelta({r for r in new if r not in old}, {r for r in old if r not in new})


__all__ = ["Engine", "Delta", "RuleChange", "TableDelta", "PolicyError", "CompiledRule"]
