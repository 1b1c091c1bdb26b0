"""Whole evaluation of a stratum in DuckDB: the bulk path.

A first load or a large batch re-evaluates strata whole; in Python that costs about a
microsecond per joined row, in DuckDB a few nanoseconds. Each rule becomes one SQL query
over the input relations' NumPy columns (registered without copying); non-recursive strata
count derivations with ``GROUP BY``, recursive ones iterate semi-naively over temporary
tables. The result comes back as NumPy columns.

Only what SQL computes exactly as Python does is sent there: joins, negation, comparisons
between values of one kind (numbers, or strings), ``+ - *`` on numbers, aggregates. A rule
with a builtin, a division, a comparison across kinds or a column of mixed kinds makes
``evaluate_sql`` return False, and the caller evaluates the stratum in Python; the
differential test checks both paths give the same tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from charter.engine.columnar import ColumnStore, NotColumnar
from charter.engine.execute import State
from charter.engine.program import CompiledRule, Stratum
from charter.engine.relation import Relation
from charter.lang.ast import (
    Aggregate,
    Atom,
    BinOp,
    Comparison,
    Constant,
    Expr,
    Modal,
    Negation,
    Variable,
)
from charter.lang.safety import safe_order

NUMBER, STRING = "n", "s"
MAX_SQL_ROUNDS = 40  # then a recursive stratum's fixpoint is finished in Python
_SQL_OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "=", "!=": "<>"}


class NotVectorizable(Exception):
    """This rule or stratum must be evaluated in Python."""


class _Empty(Exception):
    """This rule derives nothing (an empty input, a constant of the wrong kind)."""


def _kind_of_array(array: np.ndarray) -> str:
    if array.dtype.kind in "if":
        return NUMBER
    if array.dtype == object:
        return STRING
    raise NotVectorizable(f"column of dtype {array.dtype}")


def _kind_of_value(value: object) -> str:
    if isinstance(value, bool):
        raise NotVectorizable("boolean constant")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise NotVectorizable("non-finite float")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise NotVectorizable("integer beyond 64 bits")
        return NUMBER
    if isinstance(value, str):
        return STRING
    raise NotVectorizable(f"constant {value!r}")


def _literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float):
        return f"CAST({value!r} AS DOUBLE)"
    return f"CAST({value} AS BIGINT)"


class _Input:
    """One registered input relation: its view name, columns' kinds and row count."""

    def __init__(self, view: str, kinds: tuple[str, ...], size: int):
        self.view, self.kinds, self.size = view, kinds, size


class _Session:
    """Registered inputs of one stratum's evaluation, and cleanup."""

    def __init__(self, con, state: State, copy_inputs: bool = False):
        self.con = con
        self.state = state
        # Recursion scans its inputs once per round: DuckDB scans its own tables several
        # times faster than NumPy arrays it must convert on every scan, so they are copied.
        self.copy_inputs = copy_inputs
        self.inputs: dict[str, _Input] = {}
        self.names: list[str] = []
        self.temp: list[str] = []
        self.frontier: dict[str, list[tuple]] = {}  # set when SQL recursion stops early

    def relation(self, table: str) -> _Input:
        found = self.inputs.get(table)
        if found is not None:
            return found
        relation = self.state.relations.get(table)
        columns = _columns_of(relation) if relation is not None else None
        view = f"r{len(self.names)}"
        if columns is None:  # empty
            found = _Input(view, (), 0)
        else:
            arrays, size = columns
            registered = f"{view}_arrays" if self.copy_inputs else view
            self.con.register(registered, {f"c{i}": a for i, a in enumerate(arrays)})
            self.names.append(registered)
            if self.copy_inputs:
                self.con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {view} AS SELECT * FROM {registered}"
                )
                self.temp.append(view)
            found = _Input(view, tuple(_kind_of_array(a) for a in arrays), size)
        self.inputs[table] = found
        return found

    def groups(self, table: str):
        """The aggregate's group values as a view (k0.., v), or None when there are none."""
        aggregate = self.state.aggregates[table]
        if not aggregate.groups:
            return None
        if aggregate.arrays is not None:  # as a columnar rebuild counted them
            keys_array, values_array = aggregate.arrays
            arrays = {"k0": keys_array, "v": values_array}
            view = f"g{len(self.names)}"
            self.con.register(view, arrays)
            self.names.append(view)
            return view, (_kind_of_array(keys_array),), _kind_of_array(values_array)
        keys = list(aggregate.groups)
        values = list(aggregate.groups.values())
        width = aggregate.width
        columns = [keys] if width == 1 else list(zip(*keys, strict=True)) if width else []
        arrays = {}
        for i, column in enumerate(columns):
            array = ColumnStore.from_rows([(v,) for v in column])
            if array is None:
                raise NotVectorizable("aggregate keys of mixed kinds")
            arrays[f"k{i}"] = array.columns[0]
        value_store = ColumnStore.from_rows([(v,) for v in values])
        if value_store is None:
            raise NotVectorizable("aggregate values of mixed kinds")
        arrays["v"] = value_store.columns[0]
        view = f"g{len(self.names)}"
        self.con.register(view, arrays)
        self.names.append(view)
        kinds = tuple(_kind_of_array(arrays[f"k{i}"]) for i in range(width))
        return view, kinds, _kind_of_array(arrays["v"])

    def close(self) -> None:
        for name in self.names:
            self.con.unregister(name)
        for name in self.temp:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")


def _columns_of(relation: Relation) -> tuple[list[np.ndarray], int] | None:
    """A relation's rows as typed columns (None when empty); NotVectorizable if mixed."""
    if not len(relation):
        return None
    if relation.arity == 0 or (relation.base is None and not next(iter(relation))):
        raise NotVectorizable("zero-arity table")
    try:
        columns = relation.live_columns()
    except NotColumnar as exc:
        raise NotVectorizable(str(exc)) from exc
    if columns is None:
        return None
    return columns, len(columns[0])


class _RuleSql:
    """Translate one rule to SQL selecting its head columns, one row per derivation."""

    def __init__(
        self,
        compiled: CompiledRule,
        session: _Session,
        tables: dict[str, tuple[str, tuple[str, ...]]] | None = None,
        positions: dict[int, tuple[str, tuple[str, ...]]] | None = None,
    ):
        self.compiled = compiled
        self.session = session
        # SQL tables read instead of the inputs: by table (a recursive stratum's totals),
        # and by literal position (the one literal reading last round's new rows)
        self.tables = tables or {}
        self.positions = positions or {}
        self.exprs: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self.froms: list[str] = []
        self.wheres: list[str] = []
        self.extra_selects: list[str] = []  # e.g. a recursion depth column

    def _source(self, table: str, position: int = -1) -> tuple[str, tuple]:
        if position in self.positions:
            return self.positions[position]
        if table in self.tables:
            return self.tables[table]
        found = self.session.relation(table)
        if not found.size:
            raise _Empty
        return found.view, found.kinds

    def expr(self, expr: Expr) -> tuple[str, str]:
        if isinstance(expr, Constant):
            return _literal(expr.value), _kind_of_value(expr.value)
        if isinstance(expr, Variable):
            return self.exprs[expr.name], self.kinds[expr.name]
        assert isinstance(expr, BinOp)
        if expr.op not in "+-*":
            raise NotVectorizable(f"operator {expr.op}")
        left, lk = self.expr(expr.left)
        right, rk = self.expr(expr.right)
        if lk != NUMBER or rk != NUMBER:
            raise NotVectorizable("arithmetic on strings")
        return f"({left} {expr.op} {right})", NUMBER

    def _match(self, alias: str, args, kinds: tuple[str, ...], bind: bool) -> list[str]:
        """Conditions matching an atom's arguments; binds new variables when ``bind``."""
        conditions = []
        for j, term in enumerate(args):
            column = f"{alias}.c{j}"
            if isinstance(term, Constant):
                if _kind_of_value(term.value) != kinds[j]:
                    raise _Empty
                conditions.append(f"{column} = {_literal(term.value)}")
            elif term.name in self.exprs:
                if self.kinds[term.name] != kinds[j]:
                    raise _Empty
                conditions.append(f"{column} = {self.exprs[term.name]}")
            elif bind:
                self.exprs[term.name] = column
                self.kinds[term.name] = kinds[j]
        return conditions

    def _negation(self, i: int, atom: Atom) -> None:
        try:
            view, kinds = self._source(atom.qualified)
        except _Empty:
            return  # nothing to match: the negation always holds
        alias = f"n{i}"
        try:
            conditions = self._match(alias, atom.args, kinds, bind=False)
        except _Empty:
            return  # a value of another kind never matches
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        self.wheres.append(f"NOT EXISTS (SELECT 1 FROM {view} AS {alias}{where})")

    def _comparison(self, literal: Comparison) -> None:
        if literal.op == "=":
            for side, other in ((literal.left, literal.right), (literal.right, literal.left)):
                if isinstance(side, Variable) and side.name not in self.exprs:
                    sql, kind = self.expr(other)
                    self.exprs[side.name], self.kinds[side.name] = sql, kind
                    return
        left, lk = self.expr(literal.left)
        right, rk = self.expr(literal.right)
        if lk != rk:
            raise NotVectorizable("comparison across kinds")  # Python counts these errors
        self.wheres.append(f"{left} {_SQL_OPS[literal.op]} {right}")

    def _aggregate(self, i: int, literal: Aggregate) -> None:
        spec = self.compiled.aggregates[i]
        found = self.session.groups(spec.table)
        func = literal.func
        if found is None:
            if func in ("min", "max"):
                raise _Empty
            value, kind = "CAST(0 AS BIGINT)", NUMBER
        else:
            view, key_kinds, kind = found
            conditions = []
            for k, name in enumerate(spec.keys):
                if self.kinds[name] != key_kinds[k]:
                    raise NotVectorizable("aggregate key of another kind")
                conditions.append(f"g.k{k} = {self.exprs[name]}")
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            value = f"(SELECT g.v FROM {view} AS g{where})"
            if func in ("count", "sum"):
                value = f"COALESCE({value}, 0)"
            else:
                self.wheres.append(f"{value} IS NOT NULL")
        result = literal.result.name
        if result in self.exprs:
            if self.kinds[result] != kind:
                raise _Empty
            self.wheres.append(f"{self.exprs[result]} = {value}")
        else:
            self.exprs[result], self.kinds[result] = value, kind

    def sql(self) -> tuple[str, tuple[str, ...]]:
        """``SELECT head columns`` (one row per derivation) and the head columns' kinds."""
        rule = self.compiled.rule
        keys = {i: frozenset(s.keys) for i, s in self.compiled.aggregates.items()}
        order, missing = safe_order(rule.body, set(), keys)
        if missing:
            raise NotVectorizable("unsafe rule")
        for i in order:
            literal = rule.body[i]
            if isinstance(literal, Atom):
                view, kinds = self._source(literal.qualified, i)
                alias = f"t{i}"
                self.froms.append(f"{view} AS {alias}")
                self.wheres += self._match(alias, literal.args, kinds, bind=True)
            elif isinstance(literal, Negation) and isinstance(literal.atom, Atom):
                self._negation(i, literal.atom)
            elif isinstance(literal, Comparison):
                self._comparison(literal)
            elif isinstance(literal, Aggregate):
                self._aggregate(i, literal)
            else:
                raise NotVectorizable("builtin call")
        head = rule.head.atom if isinstance(rule.head, Modal) else rule.head
        if not head.args:
            raise NotVectorizable("zero-arity head")
        selects, kinds = [], []
        for j, term in enumerate(head.args):
            sql, kind = self.expr(term)
            selects.append(f"{sql} AS c{j}")
            kinds.append(kind)
        selects += self.extra_selects
        text = f"SELECT {', '.join(selects)}"
        if self.froms:
            text += f" FROM {', '.join(self.froms)}"
        if self.wheres:
            text += f" WHERE {' AND '.join(self.wheres)}"
        return text, tuple(kinds)


def _rule_sql(compiled, session, tables=None, positions=None):
    """The rule's SQL and head kinds, or None when it derives nothing."""
    try:
        return _RuleSql(compiled, session, tables, positions).sql()
    except _Empty:
        return None


def _union(parts: Sequence[tuple[str, tuple[str, ...]]]) -> tuple[str, tuple[str, ...]] | None:
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    kinds = parts[0][1]
    if any(k != kinds for _, k in parts):
        raise NotVectorizable("rules of one table give columns of different kinds")
    return " UNION ALL ".join(f"({q})" for q, _ in parts), kinds


def _install(
    state: State, table: str, data: dict[str, np.ndarray], counts: np.ndarray | None
) -> None:
    columns = [data[f"c{j}"] for j in range(sum(1 for k in data if k.startswith("c")))]
    columns = [c.astype(np.int64, copy=False) if c.dtype.kind in "iu" else c for c in columns]
    if not len(columns[0]):
        state.relations[table] = Relation(table)
        return
    store = ColumnStore(columns, counts)
    if len(store) >= state.columnar_threshold:
        state.relations[table] = Relation.from_store(table, store)
    else:
        state.relations[table] = Relation.from_counts(
            table, dict(zip(store, store.counts_list(), strict=True))
        )


def evaluate_sql(stratum: Stratum, state: State, con) -> bool:
    """Evaluate the stratum whole in DuckDB; False (nothing changed) if it cannot be."""
    session = _Session(con, state, copy_inputs=stratum.recursive)
    try:
        results = _recursive(stratum, session) if stratum.recursive else _counting(stratum, session)
    except NotVectorizable:
        return False
    except Exception as exc:  # an SQL error (overflow, a cast) means: do it in Python
        if type(exc).__module__.startswith("duckdb"):
            return False
        raise
    finally:
        session.close()
    for table, (data, counts) in results.items():
        if isinstance(data, ColumnStore):
            state.relations[table] = Relation.from_store(table, data)
        else:
            _install(state, table, data, counts)
    if any(session.frontier.values()):  # SQL stopped early: Python goes on to the fixpoint
        from charter.engine.evaluate import insert_to_fixpoint

        insert_to_fixpoint(stratum, state, session.frontier)
    return True


def _empty_result():
    return {"c0": np.array([], dtype=np.int64)}, None


def _shareable(relation: Relation, state: State) -> bool:
    """Whether a copy of ``relation`` can be its column store itself: all its rows are
    there, each counting 1 (as each copied row does), and it is large enough to be
    columnar. A store never changes, so both tables share its memory and its indexes."""
    base = relation.base
    return (
        relation.columnar_only
        and base is not None
        and base.counts is None
        and len(base) >= state.columnar_threshold
    )


def _counting(stratum: Stratum, session: _Session):
    results = {}
    for table in stratum.tables:
        rules = [c for c in stratum.rules if c.head == table]
        source = rules[0].copies if len(rules) == 1 else None
        relation = session.state.relations.get(source) if source is not None else None
        if relation is not None and _shareable(relation, session.state):
            results[table] = (relation.base, None)  # the same immutable store, its indexes
            continue
        if relation is not None:  # a copy (a facts table, an aggregate's bindings): no SQL
            found = _columns_of(relation)
            if found is None:
                results[table] = _empty_result()
            else:  # each distinct input row derives its copy once
                results[table] = ({f"c{j}": c for j, c in enumerate(found[0])}, None)
            continue
        union = _union([_rule_sql(c, session) for c in stratum.rules if c.head == table])
        if union is None:
            results[table] = _empty_result()
            continue
        query, kinds = union
        heads = ", ".join(f"c{j}" for j in range(len(kinds)))
        sql = f"SELECT {heads}, count(*) AS n FROM ({query}) GROUP BY {heads}"
        data = session.con.execute(sql).fetchnumpy()
        counts = data["n"].astype(np.int64)
        results[table] = (data, None if (counts == 1).all() else counts)
    return results


def _recursive_literals(compiled: CompiledRule, tables: frozenset[str]) -> list[int]:
    return [
        i
        for i, literal in enumerate(compiled.rule.body)
        if isinstance(literal, Atom) and literal.qualified in tables
    ]


def _fan_out(compiled: CompiledRule, stratum: Stratum, state: State) -> float:
    """Rows per join key of the tables the recursive literal joins with (paths per step)."""
    (position,) = _recursive_literals(compiled, stratum.tables)
    recursive_vars = {t.name for t in compiled.rule.body[position].args if isinstance(t, Variable)}
    worst = 1.0
    for i, literal in enumerate(compiled.rule.body):
        if i == position or not isinstance(literal, Atom):
            continue
        columns = [
            j
            for j, t in enumerate(literal.args)
            if isinstance(t, Variable) and t.name in recursive_vars
        ]
        relation = state.relations.get(literal.qualified)
        if not columns or relation is None or not len(relation):
            continue
        if relation.base is not None:
            ordered = relation.base.index((columns[0],)).first
            distinct = int((ordered[1:] != ordered[:-1]).sum()) + 1
        else:
            distinct = len(relation.keys((columns[0],)))
        worst = max(worst, len(relation) / max(distinct, 1))
    return worst


def _linear(stratum: Stratum, session: _Session):
    """One table, one recursive rule reading itself once: a recursive CTE, depth-capped.

    DuckDB's ``WITH RECURSIVE ... UNION`` is fast for shallow recursion but re-joins every
    round, so a chain of 100,000 edges would take minutes: rows carry their depth, the CTE
    stops at ``MAX_SQL_ROUNDS``, and rows at that depth are left to Python as a frontier.
    Returns None when the stratum does not have this shape.
    """
    if len(stratum.tables) != 1:
        return None
    (table,) = stratum.tables
    recursive = [c for c in stratum.rules if _recursive_literals(c, stratum.tables)]
    if len(recursive) != 1 or len(_recursive_literals(recursive[0], stratum.tables)) != 1:
        return None
    if _fan_out(recursive[0], stratum, session.state) > 1.5:
        return None  # depth-tagged rows would multiply with the number of paths
    base = _union([_rule_sql(c, session) for c in stratum.rules if c not in recursive])
    if base is None:
        return {table: _empty_result()}
    query, kinds = base
    (position,) = _recursive_literals(recursive[0], stratum.tables)
    builder = _RuleSql(recursive[0], session, None, {position: ("rec", kinds)})
    builder.extra_selects.append(f"t{position}.d + 1 AS d")
    builder.wheres.append(f"t{position}.d < {MAX_SQL_ROUNDS}")
    try:
        step, step_kinds = builder.sql()
    except _Empty:
        step, step_kinds = None, kinds
    columns = ", ".join(f"c{j}" for j in range(len(kinds)))
    if step is None:
        data = session.con.execute(f"SELECT DISTINCT * FROM ({query})").fetchnumpy()
        return {table: (data, None)}
    if step_kinds != kinds:
        raise NotVectorizable("recursive rule gives columns of another kind")
    data = session.con.execute(
        f"WITH RECURSIVE rec({columns}, d) AS (SELECT *, 0 FROM ({query}) UNION {step}) "
        f"SELECT {columns}, min(d) AS d FROM rec GROUP BY {columns}"
    ).fetchnumpy()
    # Rows first reached at the cap were not joined further (a row also reached earlier was).
    capped = np.asarray(data.pop("d")) == MAX_SQL_ROUNDS
    if capped.any():
        edge = [np.asarray(data[f"c{j}"])[capped].tolist() for j in range(len(kinds))]
        session.frontier = {table: list(zip(*edge, strict=True))}
    return {table: (data, None)}


def _recursive(stratum: Stratum, session: _Session):
    """Semi-naive to a fixpoint over temporary tables: ``total`` and last round's ``delta``."""
    linear = _linear(stratum, session)
    if linear is not None:
        return linear
    con = session.con
    tables = sorted(stratum.tables)
    total = {t: f"total{i}" for i, t in enumerate(tables)}
    delta = {t: f"delta{i}" for i, t in enumerate(tables)}
    spare = {t: f"next{i}" for i, t in enumerate(tables)}  # where a round's new rows go
    kinds: dict[str, tuple[str, ...]] = {}

    def create(name: str, query: str) -> None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")
        if name not in session.temp:
            session.temp.append(name)

    for table in tables:  # rules reading no table of the stratum start it
        union = _union(
            [
                _rule_sql(c, session)
                for c in stratum.rules
                if c.head == table and not _recursive_literals(c, stratum.tables)
            ]
        )
        if union is not None:
            kinds[table] = union[1]
            create(total[table], f"SELECT DISTINCT * FROM ({union[0]})")
            create(delta[table], f"SELECT * FROM {total[table]}")
    rounds = 0
    while kinds:
        rounds += 1
        if rounds > MAX_SQL_ROUNDS:  # a long chain: each SQL round costs milliseconds
            break
        reads = {t: (total[t], kinds[t]) for t in kinds}
        news = {}
        for table in tables:
            parts = []
            for compiled in stratum.rules:
                positions = _recursive_literals(compiled, stratum.tables)
                if compiled.head != table or not positions:
                    continue
                if any(compiled.rule.body[p].qualified not in kinds for p in positions):
                    continue  # a table with no rows yet: the rule derives nothing
                for p in positions:
                    read = compiled.rule.body[p].qualified
                    at = {p: (delta[read], kinds[read])}
                    parts.append(_rule_sql(compiled, session, reads, at))
            union = _union(parts)
            if union is not None:
                if kinds.get(table, union[1]) != union[1]:
                    raise NotVectorizable("recursive rules give columns of different kinds")
                news[table] = union
        fresh = {}
        for table, (query, table_kinds) in news.items():
            if table not in kinds:
                kinds[table] = table_kinds
                create(total[table], f"SELECT DISTINCT * FROM ({query}) LIMIT 0")
            name = spare[table]
            create(name, f"SELECT DISTINCT * FROM ({query}) EXCEPT SELECT * FROM {total[table]}")
            if con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]:
                fresh[table] = name
        if not fresh:
            break
        for table in kinds:  # the new rows become the next round's delta: no copy
            source = fresh.get(table)
            if source:
                con.execute(f"INSERT INTO {total[table]} SELECT * FROM {source}")
            else:
                create(spare[table], f"SELECT * FROM {total[table]} LIMIT 0")
            delta[table], spare[table] = spare[table], delta[table]
    results = {}
    frontier: dict[str, list[tuple]] = {}
    for table in tables:
        if table in kinds:
            results[table] = (con.execute(f"SELECT * FROM {total[table]}").fetchnumpy(), None)
            if rounds > MAX_SQL_ROUNDS:
                data = con.execute(f"SELECT * FROM {delta[table]}").fetchnumpy()
                columns = [data[f"c{j}"].tolist() for j in range(len(data))]
                frontier[table] = list(zip(*columns, strict=True))
        else:
            results[table] = _empty_result()
    session.frontier = frontier
    return results


def difference(con, old: ColumnStore, new: ColumnStore) -> tuple[set, set] | None:
    """Rows only in ``new`` and rows only in ``old``, computed in DuckDB (None: kinds differ)."""
    if old.arity != new.arity or any(
        a.dtype.kind != b.dtype.kind for a, b in zip(old.columns, new.columns, strict=True)
    ):
        return None
    con.register("diff_old", {f"c{i}": c for i, c in enumerate(old.columns)})
    con.register("diff_new", {f"c{i}": c for i, c in enumerate(new.columns)})
    try:
        plus = con.execute("SELECT * FROM diff_new EXCEPT SELECT * FROM diff_old").fetchnumpy()
        minus = con.execute("SELECT * FROM diff_old EXCEPT SELECT * FROM diff_new").fetchnumpy()
    finally:
        con.unregister("diff_old")
        con.unregister("diff_new")

    def rows(data) -> set:
        columns = [data[f"c{i}"].tolist() for i in range(old.arity)]
        return set(zip(*columns, strict=True))

    return rows(plus), rows(minus)
