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
"""

from __future__ import annotations

import difflib
import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from charter.engine import column_diff
from charter.engine.aggregates import AggregateState
from charter.engine.batch import PreparedRows, apply_rows
from charter.engine.batch_delta import BatchDelta
from charter.engine.collector import collector_paused
from charter.engine.column_diff import StoredTable, TableDiff
from charter.engine.columnar import ColumnStore
from charter.engine.delta import Delta, RuleChange, TableDelta
from charter.engine.evaluate import evaluate_stratum, sizer
from charter.engine.execute import State
from charter.engine.incremental import update_counting, update_recursive
from charter.engine.prepare import IndexBuilder, build_indexes
from charter.engine.program import (
    FACTS_SUFFIX,
    AuxiliaryNames,
    CompiledRule,
    Program,
    Stratum,
    build_program,
    facts_table,
)
from charter.engine.relation import Relation
from charter.engine.rule_check import CheckedRules, ProgramView, check_changes
from charter.lang.ast import Atom, Constant, Modal, Rule, Variable
from charter.lang.checks import compile_rules, head_table
from charter.lang.columns import FreshVariables, resolve_columns
from charter.lang.duplicates import unique_rules
from charter.lang.errors import DataError, Diagnostic, EngineError, PolicyError, raise_if_errors
from charter.lang.parser import parse, parse_literal
from charter.lang.schema import Schemas

Subscriber = Callable[[str, TableDelta], None]
POLICY_KINDS = ("nonrecursive", "action", "database", "materialized")


@dataclass
class PolicyState:
    """A policy's kind and rules: the user's rule -> its normalized form, in order."""

    kind: str = "nonrecursive"
    rules: dict[Rule, Rule] = field(default_factory=dict)


@dataclass
class _Bookmark:
    arity: dict[str, int]
    relations: set[str]
    order: dict[str, list[Rule]]


def _internal(table: str) -> bool:
    return "#" in table


class Engine:
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
        self._rebuilt = False  # this batch evaluated some stratum whole
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

    # ------------------------------------------------------------ rows

    def insert_rows(self, table: str, rows: Iterable[tuple]) -> dict[str, TableDelta]:
        """Insert rows into a table (a datasource table, or a policy's facts)."""
        return self._apply({table: dict.fromkeys(map(tuple, rows), 1)}, [])

    def delete_rows(self, table: str, rows: Iterable[tuple]) -> dict[str, TableDelta]:
        """Delete rows from a table."""
        return self._apply({table: dict.fromkeys(map(tuple, rows), -1)}, [])

    def replace_rows(self, table: str, rows: Iterable[tuple]) -> dict[str, TableDelta]:
        """Make ``rows`` the whole content of a base table, as one batch of differences."""
        return self.apply_diffs([self.diff_rows(table, rows)])

    # ------------------------------------------------------------ tables as columns

    def replace_columns(self, tables: Mapping[str, Sequence[Any]]) -> dict[str, TableDelta]:
        """Make the rows of these columns (one array or list per column) the whole content
        of each base table, in one batch: the difference from the stored rows is found set
        at a time (``column_diff.py``) and applied as that batch of row changes would be."""
        return self.apply_diffs([self.diff_columns(t, c) for t, c in tables.items()])

    def patch_columns(
        self, table: str, insert: Sequence[Any] | None = None, delete: Sequence[Any] | None = None
    ) -> dict[str, TableDelta]:
        """Insert and delete the rows of these columns in one batch, as ``apply`` of the
        deletions then the insertions (a row in both ends up present)."""
        return self.apply_diffs([self.diff_patch(table, insert, delete)])

    def table_version(self, table: str) -> int:
        """A number that moves whenever a batch may have changed ``table``'s rows."""
        storage = self._storage(table, self.program.derived)
        return max(self._row_stamps.get(storage, 0), self._rule_stamp)

    def stored_table(self, table: str) -> StoredTable:
        """A snapshot of a base table (cheap: its column stores are immutable, its dead
        marks and overlay copied) that ``column_diff.difference`` reads without whatever
        guards the engine; ``fresh`` tells later whether it still holds."""
        version, arity = self.table_version(table), self._arity.get(table)
        return StoredTable.of(table, self._stored(table), version, arity)

    def fresh(self, diff: TableDiff) -> bool:
        """Whether ``diff`` was found against ``diff.table``'s current rows."""
        return diff.version == self.table_version(diff.table)

    def diff_rows(
        self, table: str, rows: Iterable[tuple], columns: list[np.ndarray] | None = None
    ) -> TableDiff:
        """The difference from ``table``'s rows to ``rows``: in columns where the values
        allow (``columns``: the rows' ``rows_to_columns``, if made already), else by
        Python sets."""
        rows = rows if isinstance(rows, list) else list(rows)
        return column_diff.any_difference(self.stored_table(table), rows, columns)

    def diff_columns(self, table: str, columns: Sequence[Any]) -> TableDiff:
        """``diff_rows`` for rows given as columns (arrays or lists)."""
        return column_diff.diff_columns(self.stored_table(table), columns)

    def diff_patch(
        self, table: str, insert: Sequence[Any] | None, delete: Sequence[Any] | None
    ) -> TableDiff:
        """The change ``patch_columns`` makes, found against the stored rows."""
        stored, relation = self.stored_table(table), self._stored(table)
        return column_diff.diff_patch(stored, relation, insert, delete)

    def _stored(self, table: str) -> Relation | None:
        """The relation holding a table's stored rows (a derived table's: its facts)."""
        return self.state.relations.get(self._storage(table, self.program.derived))

    def apply_diffs(self, diffs: Sequence[TableDiff]) -> dict[str, TableDelta]:
        """Apply differences (``diff_rows``, ``diff_columns``, ``diff_patch``, or found by
        ``column_diff`` against a ``stored_table``) as one batch. A table that was empty
        takes its columns as they are (``load_columns``) when they hold at least
        ``columnar_threshold`` rows; the others, their changed rows.

        Raises EngineError when a table changed since its difference was found (``fresh``),
        and what ``apply`` raises for rows that do not fit; nothing changes then.
        """
        stores: dict[str, ColumnStore] = {}
        rows: dict[str, dict[tuple, int]] = {}
        columns: dict[str, PreparedRows] = {}
        for diff in diffs:
            if diff.table in stores or diff.table in rows:
                raise EngineError(f"two differences for {diff.table} in one batch")
            if not self.fresh(diff):
                raise EngineError(
                    f"the difference for {diff.table} was found against rows that changed "
                    "since: find it again"
                )
            arity = self._arity.get(diff.table)
            if diff.load is None:
                rows[diff.table] = diff.changes()
                prepared = diff.prepared()
                if prepared is not None:
                    columns[diff.table] = prepared
            elif (arity is not None and arity != len(diff.load)) or (
                len(diff.load[0]) < self.state.columnar_threshold
            ):  # the rows' error, in their order; a small table kept as rows, as they are
                rows[diff.table] = dict.fromkeys(diff.inserted, 1)
            else:
                stores[diff.table] = ColumnStore(diff.load).unique()
        return self._load_batch(stores, rows, columns)

    # ------------------------------------------------------------ reading

    def tables(self) -> list[str]:
        """Every table the engine knows: with rows, rules or a schema."""
        known = set(self._arity) | self.program.derived
        known |= {t for t, r in self.state.relations.items() if len(r)}
        known |= {f"{m}:{t}" for m in self.schemas.modules for t in self.schemas.modules[m]}
        return sorted(t for t in known if not _internal(t))

    def has_table(self, table: str) -> bool:
        """Whether ``tables()`` lists ``table``, without building that list."""
        if _internal(table):
            return False
        if table in self._arity or table in self.program.derived:
            return True
        relation = self.state.relations.get(table)
        if relation is not None and len(relation):
            return True
        module, sep, name = table.partition(":")
        return bool(sep) and name in self.schemas.modules.get(module, {})

    def arity(self, table: str) -> int | None:
        return self._arity.get(table)

    def _known(self, table: str) -> None:
        if table in self.state.relations or table in self._arity or table in self.program.derived:
            return
        hint = difflib.get_close_matches(table, self.tables(), n=1)
        more = f"; did you mean {hint[0]}?" if hint else ""
        raise EngineError(f"unknown table {table}{more}")

    def rows(self, table: str) -> set[tuple]:
        """The current rows of a table."""
        self._known(table)
        rel = self.state.relations.get(table)
        return set(rel) if rel is not None else set()

    def count(self, table: str) -> int:
        """How many rows a table holds (0 for a known table without rows)."""
        self._known(table)
        rel = self.state.relations.get(table)
        return len(rel) if rel is not None else 0

    def has_stored(self, table: str, row: tuple) -> bool:
        """Whether ``row`` was inserted into ``table`` as a row (for a derived table: as a
        fact), which is what deleting it would undo."""
        rel = self.state.relations.get(self._storage(table, self.program.derived))
        return rel is not None and tuple(row) in rel

    def query(self, pattern: str | Atom, policy: str | None = None) -> list[tuple]:
        """Rows matching a pattern such as ``error(x, "ACTIVE")``, sorted.

        An unqualified table belongs to ``policy``; named columns use the table's schema.
        """
        atom = parse_literal(pattern) if isinstance(pattern, str) else pattern
        theory = atom.theory or policy
        if theory is None:
            raise EngineError(f"{atom} names no policy: write policy:table or pass a policy")
        atom = replace(atom, theory=theory)
        diagnostics: list[Diagnostic] = []
        columns = self.schemas.columns(theory, atom.table)
        atom = resolve_columns(atom, columns, FreshVariables(), diagnostics)
        raise_if_errors(diagnostics)
        table = atom.qualified
        self._known(table)
        arity = self._arity.get(table)
        if arity is not None and len(atom.args) != arity:
            raise EngineError(f"{atom} has {len(atom.args)} arguments but {table} has {arity}")
        rel = self.state.relations.get(table)
        if rel is None:
            return []
        consts = [(i, t.value) for i, t in enumerate(atom.args) if isinstance(t, Constant)]
        first: dict[str, int] = {}
        same = []
        for i, t in enumerate(atom.args):
            if isinstance(t, Variable) and not t.anonymous:
                if t.name in first:
                    same.append((first[t.name], i))
                else:
                    first[t.name] = i
        if consts:
            columns_key = tuple(i for i, _ in consts)
            key = consts[0][1] if len(consts) == 1 else tuple(v for _, v in consts)
            candidates = rel.lookup(columns_key, key)
        else:
            candidates = rel
        out = [r for r in candidates if all(r[a] == r[b] for a, b in same)]
        return sorted(out, key=_sort_key)

    def subscribe(self, table: str, callback: Subscriber) -> None:
        """Call ``callback(table, delta)`` after every batch that changes ``table``."""
        self._subscribers[table].append(callback)

    def unsubscribe(self, table: str, callback: Subscriber) -> None:
        self._subscribers[table].remove(callback)

    @contextmanager
    def hypothetical(self) -> Iterator[Engine]:
        """Changes made inside, and undone by the caller before it ends, leave no trace.

        The caller undoes its rows and rules with their inverse changes; on exit the engine
        restores what an undo does not (``bookmark``/``rewind``), and the subscribers are
        muted inside so that no callback sees a hypothetical delta (simulate, admission
        checks).
        """
        mark = self.bookmark()
        subscribers = self._subscribers
        self._subscribers = defaultdict(list)
        try:
            yield self
        finally:
            self._subscribers = subscribers
            self.rewind(mark)

    def bookmark(self) -> _Bookmark:
        """What undoing a batch by its inverse changes does not restore: arities learned from
        its rows (their table would stay listed), the empty relations it created, and the
        order of rules it removed and re-added. ``rewind`` puts them back after the undo."""
        return _Bookmark(
            dict(self._arity),
            set(self.state.relations),
            {name: list(p.rules) for name, p in self.policies.items()},
        )

    def rewind(self, mark: _Bookmark) -> None:
        """Restore a bookmark, once the batches since it are undone by their inverses."""
        self._arity = mark.arity
        for table in set(self.state.relations) - mark.relations:
            if not len(self.state.relations[table]) and table not in self.program.derived:
                del self.state.relations[table]
        for name, rules in mark.order.items():
            current = self.policies.get(name)
            if current is not None and set(current.rules) == set(rules):
                current.rules = {r: current.rules[r] for r in rules}
        self.generation += 1

    def rule_stats(self) -> list[tuple[str, Rule, int, str | None]]:
        """``(policy, rule, errors, last error)`` for rules whose builtins raised."""
        out = []
        for stratum in self.program.strata:
            for compiled in stratum.rules:
                if compiled.stats.errors:
                    rule = compiled.source or compiled.rule
                    out.append(
                        (compiled.policy, rule, compiled.stats.errors, compiled.stats.last_error)
                    )
        return out

    # ------------------------------------------------------------ batches

    def apply(
        self, changes: Iterable[Delta | RuleChange], *, checked: CheckedRules | None = None
    ) -> dict[str, TableDelta]:
        """Apply one batch of row and rule changes; return each changed table's delta.

        The batch is checked whole first (rules compile, rows fit their tables): on any
        error nothing changes and a PolicyError, DataError or EngineError is raised.
        ``checked`` is the batch's rule changes already checked (``check_changes`` over
        ``view()``): taken as it is when nothing a check reads changed since the view.
        """
        rows: dict[str, dict[tuple, int]] = defaultdict(dict)
        rule_changes: list[RuleChange] = []
        table, current = None, None
        for change in changes:  # the hot loop of a large batch: a class test, one dict
            if change.__class__ is Delta:
                if change.table != table:
                    table, current = change.table, rows[change.table]
                current[change.row] = change.sign  # type: ignore[index]  # the last one wins
            elif isinstance(change, RuleChange):
                rule_changes.append(change)
            else:
                rows[change.table][change.row] = change.sign
        return self._apply(rows, rule_changes, checked)

    def load_rows(self, tables: Mapping[str, Iterable[tuple]]) -> dict[str, TableDelta]:
        """Insert rows into several tables in one batch (the fast path for bulk loads)."""
        return self._apply(
            {t: dict.fromkeys(map(tuple, rows), 1) for t, rows in tables.items()}, []
        )

    def load_columns(self, tables: Mapping[str, Sequence[Any]]) -> dict[str, TableDelta]:
        """Load tables from NumPy columns (one array per column) in one batch.

        An empty table takes the columns as they are, with no Python row built; a table
        that already has rows, or columns that are not all ints, floats or strings, goes
        through ``load_rows``.
        """
        stores: dict[str, ColumnStore] = {}
        rows: dict[str, dict[tuple, int]] = {}
        derived = self.program.derived
        for table, columns in tables.items():
            storage = self._storage(table, derived)
            current = self.state.relations.get(storage)
            store = ColumnStore.from_arrays(columns) if not current or not len(current) else None
            if store is None:
                values = [np.asarray(c).tolist() for c in columns]
                rows[table] = dict.fromkeys(zip(*values, strict=True), 1)
            else:
                stores[table] = store
        return self._load_batch(stores, rows)

    def _load_batch(
        self,
        stores: dict[str, ColumnStore],
        rows: dict[str, dict[tuple, int]],
        columns: dict[str, PreparedRows] | None = None,
    ) -> dict[str, TableDelta]:
        """One batch: empty tables take these stores as their rows, others row changes
        (``columns``: some of them as columns already)."""
        if not stores:
            return self._apply(rows, [], columns=columns)
        if self._indexing is not None:  # the last bulk work's indexes: wait for them
            self._indexing.join()
            self._indexing = None
        probe = {t: {s.row(0): 1} for t, s in stores.items()}  # checks table and arity
        learned = self._check_rows({**rows, **probe}, self._arity)
        if learned:
            self._arity.update(learned)
            self.generation += 1
        derived = self.program.derived
        for table, store in stores.items():
            storage = self._storage(table, derived)
            relation = Relation.from_store(storage, store)
            self.state.relations[storage] = relation
            self.state.batch[storage] = BatchDelta.everything(relation)
            self._stamp += 1
            self._row_stamps[storage] = self._stamp
        with collector_paused():  # a bulk load, however few rows went through ``rows``
            return self._apply(rows, [], columns=columns)

    def _apply(
        self,
        row_changes: dict[str, dict[tuple, int]],
        rule_changes: list[RuleChange],
        checked: CheckedRules | None = None,
        columns: dict[str, PreparedRows] | None = None,
    ) -> dict[str, TableDelta]:
        """Apply net row changes (table -> row -> sign) and rule changes as one batch,
        then tell the subscribers. ``columns``: some tables' changes already as columns
        (``batch.apply_rows``), for a batch of rows only."""
        if self._indexing is not None:  # the last bulk work's indexes: wait for them
            self._indexing.join()
            self._indexing = None
        threshold = self.state.batch_threshold
        self._rebuilt = False
        if threshold is not None and sum(map(len, row_changes.values())) >= threshold:
            with collector_paused():
                result = self._change(row_changes, rule_changes, checked, columns)
                self._prepare_indexes()
        else:
            result = self._change(row_changes, rule_changes, checked, columns)
            if self._rebuilt:  # a stratum evaluated whole has fresh, unindexed stores
                with collector_paused():
                    self._prepare_indexes()
        for table, delta in result.items():
            for callback in list(self._subscribers.get(table, ())):
                callback(table, delta)
        return result

    def _change(
        self,
        row_changes: dict[str, dict[tuple, int]],
        rule_changes: list[RuleChange],
        checked: CheckedRules | None = None,
        columns: dict[str, PreparedRows] | None = None,
    ) -> dict[str, TableDelta]:
        if not rule_changes:
            return self._change_rows(row_changes, columns)
        self._rule_stamp = self._stamp = self._stamp + 1
        row_changes = defaultdict(dict, row_changes)
        if (checked is not None and checked.generation == self.generation
                and checked.changes == tuple(rule_changes)):
            new_rules = checked.rules
        else:  # no check, or the program changed since it: check now
            new_rules = check_changes(self.view(), rule_changes).rules
        rules_now = new_rules if new_rules is not None else {}
        for rc in rule_changes:  # facts are rows of their table
            normalized = (
                new_rules[rc.policy].get(rc.rule)
                if rc.sign > 0
                else self.policies[rc.policy].rules.get(rc.rule)
            )
            if normalized is not None and not normalized.body and isinstance(normalized.head, Atom):
                row = tuple(t.value for t in normalized.head.args)  # type: ignore[union-attr]
                row_changes[head_table(rc.policy, normalized.head)][row] = rc.sign
        if new_rules is not None:
            derived = self._derived(rules_now)
            arities = self._arities(rules_now)
        else:  # rows only: nothing about tables changes but the arities rows teach
            derived, arities = self.program.derived, self._arity
        learned = self._check_rows(row_changes, arities)

        # Nothing has changed so far; from here on the batch is applied.
        state = self.state
        old_derived = self.program.derived
        old_visible: dict[str, dict[tuple, int]] = {}
        for table in derived - old_derived:  # a base table gains rules: its rows become facts
            if table in state.relations:
                rel = state.relations.pop(table)
                old_visible[table] = rel.to_dict()
                rel.name = facts_table(table)
                state.relations[rel.name] = rel
        became_base = {t for t in old_derived - derived if not _internal(t)}
        for table in became_base:
            rel = state.relations.pop(table, None)
            old_visible[table] = rel.to_dict() if rel is not None else {}
            facts = state.relations.pop(facts_table(table), None) or Relation(table)
            facts.name = table
            state.relations[table] = facts
        if new_rules is not None:
            self._arity = arities
        self._arity.update(learned)
        self.generation += 1
        previous = self.program
        if new_rules is not None:
            for policy, rules in new_rules.items():
                self.policies[policy].rules = rules
            self.program = self._build(rules_now, self.program)
        self._apply_rows(row_changes, derived)
        for table in became_base:
            rel = state.relations.get(table)  # an execute[...] table without rules is gone
            rows = rel.to_dict() if rel is not None else {}
            state.batch[table] = BatchDelta(
                {r for r in rows if r not in old_visible[table]},
                {r for r in old_visible[table] if r not in rows},
            )
        return self._finish(self._dirty_tables(previous), old_visible)

    def _change_rows(
        self,
        row_changes: dict[str, dict[tuple, int]],
        columns: dict[str, PreparedRows] | None = None,
    ) -> dict[str, TableDelta]:
        """``_change`` for a batch of rows only, the common case: the program stays."""
        learned = self._check_rows(row_changes, self._arity)
        if learned:  # new tables: what a rule check reads of arities changed
            self._arity.update(learned)
            self.generation += 1
        # Nothing has changed so far; from here on the batch is applied.
        self._apply_rows(row_changes, self.program.derived, columns)
        return self._finish(set(), {})

    def _finish(
        self, dirty: set[str], old_visible: dict[str, dict[tuple, int]]
    ) -> dict[str, TableDelta]:
        """Propagate the batch applied to the base tables; return the visible deltas."""
        state = self.state
        try:
            self._propagate(dirty, old_visible)
            result = {}
            for table, delta in state.batch.items():
                if delta and not _internal(table):
                    result[table] = TableDelta.of(delta)
            return result
        finally:
            state.batch = {}
            for aggregate in state.aggregates.values():
                aggregate.end_batch()

    def _derived(self, rules: Mapping[str, Mapping[Rule, Rule]]) -> set[str]:
        derived = set()
        for policy, policy_rules in rules.items():
            if self.policies[policy].kind == "action":
                continue
            for rule in policy_rules.values():
                if rule.body or isinstance(rule.head, Modal):
                    derived.add(head_table(policy, rule.head))
        return derived

    def _arities(self, rules: Mapping[str, Mapping[Rule, Rule]]) -> dict[str, int]:
        """Each table's number of columns: from schemas, stored rows, then rules."""
        arities = {
            f"{m}:{t}": len(c)
            for m, tables in self.schemas.modules.items()
            for t, c in tables.items()
        }
        for table, relation in self.state.relations.items():
            if len(relation) and (not _internal(table) or table.endswith(FACTS_SUFFIX)):
                arities.setdefault(table.removesuffix(FACTS_SUFFIX), relation.width())
        for policy, policy_rules in rules.items():
            for rule in policy_rules.values():
                head = rule.head
                atom = head.atom if isinstance(head, Modal) else head
                arities.setdefault(head_table(policy, head), len(atom.args))
                for literal in rule.body:
                    inner = getattr(literal, "atom", literal)
                    if isinstance(inner, Atom):
                        arities.setdefault(inner.qualified, len(inner.args))
        return arities

    def _check_rows(
        self, row_changes: Mapping[str, dict[tuple, int]], arities: Mapping[str, int]
    ) -> dict[str, int]:
        """Raise DataError for rows that do not fit; return arities learned from new tables."""
        learned: dict[str, int] = {}
        for table, rows in row_changes.items():
            if not rows:
                continue
            if table not in self._named:  # the name, once per table while schemas stay
                self._check_name(table)
            expected = arities.get(table)
            if expected is None:
                expected = learned[table] = len(next(iter(rows)))
            if len(rows) == 1:
                fits = len(next(iter(rows))) == expected
            else:
                fits = set(map(len, rows)) == {expected}
            if not fits:
                bad = [r for r in rows if len(r) != expected]
                raise DataError(
                    f"row {bad[0]!r} of {table} has {len(bad[0])} values; "
                    f"{table} has {expected} columns"
                )
        return learned

    def _check_name(self, table: str) -> None:
        """Raise DataError unless ``table`` is qualified and, if its module's schema is
        complete, one of its tables."""
        if ":" not in table:
            raise DataError(f"table {table} must be qualified as module:table")
        module, name = table.split(":", 1)
        if self.schemas.is_complete(module) and self.schemas.columns(module, name) is None:
            hint = difflib.get_close_matches(name, self.schemas.tables(module), n=1)
            more = f"; did you mean {module}:{hint[0]}?" if hint else ""
            raise DataError(f"datasource {module} has no table {name}{more}")
        self._named.add(table)

    def _storage(self, table: str, derived: set[str]) -> str:
        return facts_table(table) if table in derived else table

    def _apply_rows(
        self,
        row_changes: dict[str, dict[tuple, int]],
        derived: set[str],
        columns: dict[str, PreparedRows] | None = None,
    ) -> None:
        """Apply each table's net changes to its base relation, recording the batch delta
        (``columns``: some tables' changes as columns already)."""
        for table, rows in row_changes.items():
            if not rows:
                continue
            storage = self._storage(table, derived)
            self._stamp += 1
            self._row_stamps[storage] = self._stamp
            relation = self.state.relation(storage)
            relation.arity = self._arity.get(table)
            delta = self.state.batch.setdefault(storage, BatchDelta())
            if not len(relation) and not delta:  # a bulk load into an empty table
                relation.load(r for r, s in rows.items() if s > 0)
                relation = self.state.freeze(relation)
                self.state.batch[storage] = BatchDelta.everything(relation)
                continue
            threshold = self.state.batch_threshold
            if (
                threshold is not None
                and len(rows) >= threshold
                and relation.base is not None
                and not delta
            ):
                prepared = columns.get(table) if columns else None
                found = apply_rows(relation, rows, prepared)  # a large batch: set at a time
                if found is not None:
                    self.state.batch[storage] = found
                    continue
            inserts = [r for r, s in rows.items() if s > 0 and r not in relation]
            for row in inserts:
                relation.add(row)
                delta.plus.add(row)
            for row, sign in rows.items():
                if sign < 0 and row in relation:
                    relation.discard(row)
                    delta.minus.add(row)

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
        """Whether the batch moved more than ``recompute_fraction`` of the changed inputs.

        Plain loops: this runs for every stratum a one-row change reaches."""
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
            if table in changed:
                relation = relations.get(table)
                if relation is not None:
                    total += len(relation)
                    if total >= enough:
                        return False
        return moved > fraction * max(total, 1)

    def _prepare_indexes(self) -> None:
        """After bulk work: build the indexes the next changes will look up (prepare.py)."""
        self._indexing = build_indexes(self.program, self.state, sizer(self.state))

    def _recompute(self, stratum: Stratum, old_visible: dict[str, dict[tuple, int]]) -> None:
        self._rebuilt = True
        state = self.state
        before: dict[str, Relation | dict | None] = {
            t: old_visible[t] if t in old_visible else state.relations.get(t)
            for t in stratum.tables
        }
        evaluate_stratum(stratum, state)  # installs new relations; the old ones stay intact
        for table in stratum.tables:
            state.batch[table] = self._difference(before[table], state.relations[table])

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


def _sort_key(row: tuple) -> tuple:
    return tuple(
        (type(v).__name__, v) if not isinstance(v, (int, float)) else ("0", v) for v in row
    )


__all__ = ["Engine", "Delta", "RuleChange", "TableDelta", "PolicyError", "CompiledRule"]
