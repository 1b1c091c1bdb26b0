"""The engine's batches: row and rule changes checked whole, applied, told to subscribers.

A batch (``apply``, ``insert_rows``, ``delete_rows``; the bulk paths of ``bulk.py`` end
here too) is netted per table and row, checked whole before anything is touched (rules
compile, rows fit their tables), applied to the base tables, then propagated stratum by
stratum (``Engine._propagate``); the caller gets each visible table's delta, and the
subscribers theirs.

>>> from charter.engine import Delta, Engine
>>> eng = Engine()
>>> d = eng.apply([Delta("p:t", (1,), 1), Delta("p:t", (1,), -1), Delta("p:t", (2,), 1)])
>>> sorted(d["p:t"].inserted)  # a row's last change wins
[(2,)]
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from charter.engine.batch import PreparedRows, apply_rows
from charter.engine.batch_delta import BatchDelta
from charter.engine.collector import collector_paused
from charter.engine.delta import Delta, RuleChange, TableDelta
from charter.engine.program import FACTS_SUFFIX, facts_table
from charter.engine.relation import Relation
from charter.engine.rule_check import CheckedRules, check_changes
from charter.lang.ast import Atom, Modal, Rule
from charter.lang.checks import head_table
from charter.lang.errors import DataError

Subscriber = Callable[[str, TableDelta], None]


def _internal(table: str) -> bool:
    return "#" in table


class Changes:
    """The part of :class:`~charter.engine.engine.Engine` that applies batches; the
    engine's ``__init__`` makes the state it reads."""

    # ------------------------------------------------------------ rows

    def insert_rows(self, table: str, rows: Iterable[tuple]) -> dict[str, TableDelta]:
        """Insert rows into a table (a datasource table, or a policy's facts)."""
        return self._apply({table: dict.fromkeys(map(tuple, rows), 1)}, [])

    def delete_rows(self, table: str, rows: Iterable[tuple]) -> dict[str, TableDelta]:
        """Delete rows from a table."""
        return self._apply({table: dict.fromkeys(map(tuple, rows), -1)}, [])

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
        self._rebuilt = set()
        if threshold is not None and sum(map(len, row_changes.values())) >= threshold:
            with collector_paused():
                result = self._change(row_changes, rule_changes, checked, columns)
                self._prepare_indexes()
        else:
            result = self._change(row_changes, rule_changes, checked, columns)
            if self._rebuilt:  # a stratum evaluated whole has fresh, unindexed stores
                self._prepare_rebuilt(self._rebuilt)
        for table, delta in result.items():
            for callback in list(self._subscribers.get(table, ())):
                callback(table, delta)
        return result

    def _prepare_rebuilt(self, tables: set[str]) -> None:
        """Index the stores of the strata a small batch evaluated whole, and plan anew the
        rules reading or making them (their sizes changed), not the whole program: a
        decision's request rows fill empty tables, whose readers are evaluated whole, and
        planning a large program's every rule again would cost 100-200 ms a decision.
        The collector is paused (and what survives frozen) only when the rebuilt tables are
        large: for a few rows a pause's collection costs more than it saves."""
        relations = self.state.relations
        rows = sum(len(relations[t]) for t in tables if t in relations)
        if rows >= (self.state.batch_threshold or 1_000):
            with collector_paused():
                self._prepare_indexes(tables)
        else:
            self._prepare_indexes(tables)

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

    # ------------------------------------------------------------ subscribers

    def subscribe(self, table: str, callback: Subscriber) -> None:
        """Call ``callback(table, delta)`` after every batch that changes ``table``."""
        self._subscribers[table].append(callback)

    def unsubscribe(self, table: str, callback: Subscriber) -> None:
        self._subscribers[table].remove(callback)
