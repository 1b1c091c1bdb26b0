"""The explainer: one explanation's search for derivations, proofs and "why not" attempts.

:mod:`charter.engine.explain` holds the entry points and the method; this module holds the
state of one explanation (chosen derivations, rank graphs, budgets) and its search.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from charter.engine.explain_evidence import (
    Key,
    _Absent,
    _Called,
    _Derivation,
    _Evidence,
    _Group,
    _head_atom,
    _is_facts_rule,
    _pattern,
    _qualified_text,
    _Row,
    _run_builtin,
    _run_comparison,
    _subst,
    _unify,
)
from charter.engine.explain_ranks import _RankGraph
from charter.engine.explain_tree import (
    ANY,
    Absence,
    AggregateProof,
    Attempt,
    Evaluation,
    Failure,
    Match,
    NotDerived,
    Proof,
    ProofChild,
    WhyChild,
    _row_text,
    _sort_key,
)
from charter.engine.join_order import Greedy
from charter.engine.program import FACTS_SUFFIX, CompiledRule
from charter.lang.ast import (
    Aggregate,
    Atom,
    BuiltinCall,
    Comparison,
    Constant,
    Literal,
    Negation,
    Rule,
    format_value,
    literal_variables,
)
from charter.lang.builtins import BUILTINS
from charter.lang.checks import head_table
from charter.lang.errors import EngineError
from charter.lang.safety import safe_order


class _Explainer:
    """One explanation's state: chosen derivations, rank graphs, and the budgets."""

    def __init__(
        self,
        engine: Any,
        examples: int,
        max_depth: int,
        max_nodes: int,
        max_steps: int,
        why_not_depth: int,
        exclude: Key | None = None,
    ):
        self.engine = engine
        self.program = engine.program
        self.stratum_of = self.program.stratum_of()
        self.examples = examples
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.max_steps = max_steps
        self.why_not_depth = why_not_depth
        self.exclude = exclude  # a row proofs may not use (for alternatives)
        self._nodes = 0
        self._chosen: dict[Key, _Derivation | None] = {}
        self._graphs: dict[int, _RankGraph] = {}
        self._orders: dict[tuple[int, frozenset[str], bool], list[int]] = {}
        self._written_rules: dict[str, dict[Rule, Rule]] = {}
        self._written_cache: dict[int, tuple[str, tuple[Literal, ...], Literal | Rule]] = {}

    # -- reading tables

    def _relation(self, table: str):
        return self.engine.state.relations.get(table)

    def _size(self, table: str) -> int:
        rel = self._relation(table)
        return len(rel) if rel is not None else 0

    def lookup(self, table: str, pattern: Sequence[Any]) -> list[tuple]:
        """Rows of ``table`` equal to ``pattern`` where it is not ANY."""
        rel = self._relation(table)
        if rel is None:
            return []
        columns = tuple(i for i, v in enumerate(pattern) if v is not ANY)
        values = [pattern[i] for i in columns]
        key = () if not columns else values[0] if len(columns) == 1 else tuple(values)
        return list(rel.lookup(columns, key))

    def contains(self, table: str, row: tuple) -> bool:
        return bool(self.lookup(table, row))

    def near(self, table: str, pattern: tuple, limit: int = 3) -> list[tuple[tuple, list[str]]]:
        """Rows that match ``pattern`` in all its given columns but one, for why-not."""
        given = [i for i, v in enumerate(pattern) if v is not ANY]
        if len(given) < 2:
            return []
        module, _, name = table.partition(":")
        columns = self.engine.schemas.columns(module, name)
        out: list[tuple[tuple, list[str]]] = []
        for i in given:
            relaxed = tuple(ANY if j == i else v for j, v in enumerate(pattern))
            for row in sorted(self.lookup(table, relaxed), key=_sort_key):
                if len(out) >= limit:
                    return out
                label = columns[i] if columns is not None and i < len(columns) else f"column {i}"
                out.append((row, [label]))
        return out

    # -- the rules as the user wrote them

    def _written_rule(self, policy: str, normalized: Rule) -> Rule:
        inverse = self._written_rules.get(policy)
        if inverse is None:
            state = self.engine.policies.get(policy)
            pairs = state.rules.items() if state is not None else ()
            inverse = self._written_rules[policy] = {}
            for user, norm in pairs:
                inverse.setdefault(norm, user)
        return inverse.get(normalized, normalized)

    def written(self, compiled: CompiledRule) -> tuple[str, tuple[Literal, ...], Literal | Rule]:
        """The rule's text as written, its body as written (aligned with the compiled rule's
        body; for an aggregate's auxiliary rule, the aggregate's body), and the source node."""
        cached = self._written_cache.get(id(compiled))
        if cached is not None:
            return cached
        if compiled.source is not None:
            user = self._written_rule(compiled.policy, compiled.source)
            position = self._aggregate_position(compiled)
            literal = user.body[position] if position is not None else None
            if isinstance(literal, Aggregate):
                out: tuple[str, tuple[Literal, ...], Literal | Rule] = (
                    str(literal),
                    literal.body,
                    literal,
                )
            else:
                out = (str(compiled.rule), compiled.rule.body, compiled.rule)
        else:
            user = self._written_rule(compiled.policy, compiled.rule)
            if len(user.body) != len(compiled.rule.body):
                user = compiled.rule
            out = (str(user), user.body, user)
        self._written_cache[id(compiled)] = out
        return out

    def _aggregate_position(self, aux: CompiledRule) -> int | None:
        for compiled in self.program.rules_by_head.get(head_table(aux.policy, aux.source.head), ()):
            if compiled.rule == aux.source:
                for i, spec in compiled.aggregates.items():
                    if spec.table == aux.head:
                        return i
        return None

    def shown_bindings(self, node: Literal | Rule, b: dict[str, Any]) -> dict[str, Any]:
        """The binding of the named variables of ``node`` (a rule or an aggregate), in order."""
        if isinstance(node, Rule):
            literals: list[Literal] = [_head_atom(node), *node.body]
        elif isinstance(node, Aggregate):
            literals = list(node.body)
        else:
            literals = [node]
        out: dict[str, Any] = {}
        for literal in literals:
            for var in literal_variables(literal):
                if not var.anonymous and var.name in b and var.name not in out:
                    out[var.name] = b[var.name]
        return out

    # -- literals

    def order(self, compiled: CompiledRule, bound: set[str], written: bool) -> list[int]:
        """Body literal indexes in evaluation order: the rule's own (safe) order for why-not,
        else filters first and the most selective table next."""
        cache_key = (id(compiled), frozenset(bound), written)
        cached = self._orders.get(cache_key)
        if cached is None:
            cached = self._orders[cache_key] = self._order(compiled, bound, written)
        return cached

    def _order(self, compiled: CompiledRule, bound: set[str], written: bool) -> list[int]:
        body = compiled.rule.body
        keys = {i: frozenset(s.keys) for i, s in compiled.aggregates.items()}
        if written:
            order, missing = safe_order(body, bound, keys)
            return order + list(missing)
        # The planner's own greedy order (filters as soon as they can run, then the table
        # with the most bound columns, the smaller first), chosen in time linear in the body.
        greedy = Greedy(compiled.shape, self._size, set(bound), set())
        out: list[int] = []
        try:
            while (i := greedy.next()) is not None:
                out.append(i)
        except EngineError:  # what can never run goes last, in written order
            out += [i for i in range(len(body)) if i not in greedy.used]
        return out

    def extend(
        self, compiled: CompiledRule, i: int, b: dict[str, Any]
    ) -> Iterator[tuple[dict[str, Any], _Evidence]]:
        """Each extension of binding ``b`` by body literal ``i``, with what it matched."""
        literal = compiled.rule.body[i]
        if isinstance(literal, Atom):
            yield from self._match(literal, b)
        elif isinstance(literal, Negation):
            if isinstance(literal.atom, Atom):
                pattern = _pattern(literal.atom.args, b)
                if not self.lookup(literal.atom.qualified, pattern):
                    yield b, _Absent(literal.atom.qualified, pattern)
            else:
                text, extended, _reason = _run_builtin(literal.atom, b)
                if extended is None and not _reason.startswith("raised"):
                    yield b, _Called("builtin", f"not {text}", True)
        elif isinstance(literal, BuiltinCall):
            text, extended, _reason = _run_builtin(literal, b)
            if extended is not None:
                outputs = tuple(
                    t.value if isinstance(t, Constant) else extended[t.name]
                    for t in literal.args[BUILTINS[literal.name].inputs :]
                )
                result = outputs if outputs else True
                yield extended, _Called("builtin", text, result)
        elif isinstance(literal, Comparison):
            kind, text, extended, result, _reason = _run_comparison(literal, b)
            if extended is not None:
                yield extended, _Called(kind, text, result)
        elif isinstance(literal, Aggregate):
            group, extended, _reason = self._aggregate(compiled, i, b)
            if extended is not None and group is not None:
                yield extended, group

    def _match(self, atom: Atom, b: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Row]]:
        pattern: list[Any] = []
        free: dict[str, int] = {}
        same: list[tuple[int, int]] = []
        for col, term in enumerate(atom.args):
            if isinstance(term, Constant):
                pattern.append(term.value)
            elif term.name in b:
                pattern.append(b[term.name])
            else:
                pattern.append(ANY)
                if term.name in free:
                    same.append((free[term.name], col))
                else:
                    free[term.name] = col
        table = atom.qualified
        for row in self.lookup(table, pattern):
            if any(row[x] != row[y] for x, y in same):
                continue
            extended = dict(b)
            for name, col in free.items():
                extended[name] = row[col]
            yield extended, _Row(table, row)

    def aggregate_value(self, table: str, func: str, rows: Sequence[tuple]) -> Any:
        """The aggregate's value over its group's rows, as ``aggregates.py`` computes it."""
        if func == "count":
            return len(rows)
        info = self.program.auxiliary.get(table)
        values = []
        for row in rows:
            try:
                values.append(info.target(row))
            except Exception:  # a failing target skips the row, as in the engine
                continue
        empty = 0 if func == "sum" else None
        if not values:
            return empty
        try:
            if func == "sum":
                return sum(values)
            return min(values) if func == "min" else max(values)
        except TypeError:
            return empty

    def _aggregate(
        self, compiled: CompiledRule, i: int, b: dict[str, Any]
    ) -> tuple[_Group | None, dict[str, Any] | None, str]:
        literal = compiled.rule.body[i]
        assert isinstance(literal, Aggregate)
        spec = compiled.aggregates[i]
        values = [b[k] for k in spec.keys]
        key = () if not values else values[0] if len(values) == 1 else tuple(values)
        rel = self._relation(spec.table)
        rows = tuple(rel.lookup(tuple(range(len(values))), key)) if rel is not None else ()
        value = self.aggregate_value(spec.table, literal.func, rows)
        group = _Group(
            spec.table, literal.func, tuple(zip(spec.keys, values, strict=True)), value, rows
        )
        if value is None:
            return group, None, f"{literal.func} of {len(rows)} rows has no value"
        name = literal.result.name
        if name in b:
            if b[name] != value:
                return (
                    group,
                    None,
                    (f"{literal.func} is {format_value(value)}, not {format_value(b[name])}"),
                )
            return group, b, ""
        return group, {**b, name: value}, ""

    # -- proofs

    def derivations(self, compiled: CompiledRule, row: tuple) -> Iterator[_Derivation]:
        """Every derivation of ``row`` by ``compiled`` over the current tables."""
        b = _unify(_head_atom(compiled.rule).args, row)
        if b is None:
            return
        order = self.order(compiled, set(b), written=False)
        evidence: list[Any] = [None] * len(compiled.rule.body)
        if not order:
            yield _Derivation(compiled, row, b, evidence)
            return
        # Depth first, one iterator per body literal reached: a loop, not a recursion, so
        # a rule of any length is explained within Python's stack.
        levels = [self.extend(compiled, order[0], b)]
        while levels:
            k = len(levels) - 1
            step = next(levels[-1], None)
            if step is None:
                levels.pop()
                continue
            extended, found = step
            evidence[order[k]] = found
            if k + 1 == len(order):
                yield _Derivation(compiled, row, extended, list(evidence))
            else:
                levels.append(self.extend(compiled, order[k + 1], extended))

    def rules(self, table: str) -> list[CompiledRule]:
        """The rules of ``table``, its facts first (the simplest proof)."""
        rules = list(self.program.rules_by_head.get(table, ()))
        return sorted(rules, key=lambda c: not _is_facts_rule(c))

    def all_derivations(self, table: str, row: tuple) -> list[_Derivation]:
        return [d for c in self.rules(table) for d in self.derivations(c, row)]

    def chosen(self, table: str, row: tuple) -> _Derivation | None:
        """The derivation a proof of the row uses: for a recursive table one of least rank."""
        key = (table, row)
        if key in self._chosen:
            return self._chosen[key]
        index = self.stratum_of.get(table)
        found: _Derivation | None
        if index is not None and self.program.strata[index].recursive:
            graph = self._graphs.get(index)
            if graph is None:
                graph = self._graphs[index] = _RankGraph(self, self.program.strata[index])
            found = graph.best_for(key)
        else:
            found = next((d for c in self.rules(table) for d in self.derivations(c, row)), None)
        self._chosen[key] = found
        return found

    def proof(self, table: str, row: tuple, depth: int) -> Proof:
        if table not in self.program.derived:
            return self._fact(table, row)
        if depth > self.max_depth or self._nodes >= self.max_nodes:
            return Proof(table, row, "rule", truncated=True)
        derivation = self.chosen(table, row)
        if derivation is None:
            # Kept by the engine but not derivable now: a builtin such as now() answered
            # otherwise when the row was derived.
            return Proof(table, row, "stale")
        return self.from_derivation(derivation, depth)

    def _fact(self, table: str, row: tuple) -> Proof:
        self._nodes += 1
        module = table.partition(":")[0]
        origin = "policy" if module in self.engine.policies else "datasource"
        return Proof(
            table.removesuffix(FACTS_SUFFIX),
            row,
            "fact",
            origin=origin,
            source=module,
            policy=module if origin == "policy" else None,
        )

    def from_derivation(self, d: _Derivation, depth: int) -> Proof:
        compiled = d.compiled
        if _is_facts_rule(compiled):
            return self._fact(compiled.head, d.row)
        self._nodes += 1
        text, body, node = self.written(compiled)
        children: list[ProofChild] = []
        for i, evidence in enumerate(d.evidence):
            children.append(self._child(body[i], evidence, d.binding, depth))
        kind = "counted" if compiled.source is not None else "rule"
        return Proof(
            compiled.head,
            d.row,
            kind,
            rule=text,
            policy=compiled.policy,
            bindings=self.shown_bindings(node, d.binding),
            children=children,
        )

    def _child(
        self, literal: Literal, evidence: _Evidence, b: dict[str, Any], depth: int
    ) -> ProofChild:
        if isinstance(evidence, _Row):
            proof = self.proof(evidence.table, evidence.row, depth + 1)
            proof.literal = str(literal)
            return proof
        if isinstance(evidence, _Absent):
            atom = literal.atom if isinstance(literal, Negation) else literal
            return Absence(
                str(literal), evidence.table, _qualified_text(_subst(atom, b), evidence.table)
            )
        if isinstance(evidence, _Called):
            return Evaluation(evidence.kind, str(literal), evidence.call, evidence.result)
        return self._aggregate_node(literal, evidence, depth, self.examples)

    def _aggregate_node(
        self, literal: Literal, group: _Group, depth: int, examples: int
    ) -> AggregateProof:
        rows = sorted(group.rows, key=_sort_key)[:examples]
        shown = [self.proof(group.table, r, depth + 1) for r in rows]
        return AggregateProof(
            str(literal),
            group.table,
            group.func,
            {k: v for k, v in group.group if not k.startswith("_#")},
            group.value,
            len(group.rows),
            shown,
        )

    # -- why not

    def why_not(
        self, table: str, pattern: tuple, depth: int, visiting: frozenset[Key]
    ) -> NotDerived:
        shown = _row_text(table, pattern)
        module = table.partition(":")[0]
        open_ = any(v is ANY for v in pattern)
        if table not in self.program.derived:
            what = (
                f"the facts of policy {module}"
                if module in self.engine.policies
                else f"the rows of datasource {module}"
            )
            message = (
                f"no row of {table} matches {shown}" if open_ else f"{shown} is not among {what}"
            )
            return NotDerived(table, pattern, message, [], self.near(table, pattern))
        visiting = visiting | {(table, pattern)}
        attempts = [
            self._attempt(c, pattern, depth, visiting)
            for c in self.rules(table)
            if not _is_facts_rule(c) or self._size(table + FACTS_SUFFIX)
        ]
        if not any(a.unifies for a in attempts):
            message = f"{shown} is not derived: no rule of {table} has a head that produces it"
        else:
            message = f"{shown} is not derived: no rule of {table} derives it"
        return NotDerived(table, pattern, message, attempts)

    def _attempt(
        self, compiled: CompiledRule, pattern: tuple, depth: int, visiting: frozenset[Key]
    ) -> Attempt:
        shown = _row_text(compiled.head, pattern)
        if _is_facts_rule(compiled):
            failure = Failure("fact", None, f"{shown} is not a fact of policy {compiled.policy}")
            return Attempt(None, compiled.policy, {}, [], failure)
        text, body, node = self.written(compiled)
        head = _head_atom(compiled.rule)
        b = _unify(head.args, pattern)
        if b is None:
            written_head = _head_atom(node) if isinstance(node, Rule) else head
            failure = Failure("head", None, f"its head {written_head} cannot produce {shown}")
            return Attempt(text, compiled.policy, {}, [], failure, unifies=False)
        order = self.order(compiled, set(b), written=True)
        best: list[Any] = [-1, b, [], order[0] if order else None]
        steps = 0
        found: list[Any] = []
        trail: list[tuple[int, _Evidence]] = []
        # Depth first over the body in ``order``, as a loop (any rule length fits the
        # stack): each level is the literal's extensions, the binding it started from and
        # whether any extension matched; the deepest literal nothing matched is ``best``.
        levels: list[list[Any]] = []
        if order:
            levels.append([self.extend(compiled, order[0], b), b, False])
        else:
            found.append((b, []))
        while levels and steps <= self.max_steps:
            k = len(levels) - 1
            level = levels[-1]
            step = next(level[0], None)
            del trail[k:]
            if step is None:
                if not level[2] and k > best[0]:
                    best[:] = [k, level[1], list(trail), order[k]]
                levels.pop()
                continue
            extended, evidence = step
            level[2] = True
            steps += 1
            trail.append((order[k], evidence))
            if k + 1 == len(order):
                found.append((extended, list(trail)))
                break
            levels.append([self.extend(compiled, order[k + 1], extended), extended, False])
        if found:
            b, trail_found = found[0]
            matched = [self._matched(body[i], e, b) for i, e in trail_found]
            return Attempt(text, compiled.policy, self.shown_bindings(node, b), matched, None)
        _, b, trail_best, i = best
        matched = [self._matched(body[j], e, b) for j, e in trail_best]
        if i is None or steps > self.max_steps:
            failure = Failure("limit", None, f"gave up after {self.max_steps} steps of search")
        else:
            failure = self._failure(compiled, i, body[i], b, depth, visiting)
        return Attempt(text, compiled.policy, self.shown_bindings(node, b), matched, failure)

    def _matched(self, literal: Literal, evidence: _Evidence, b: dict[str, Any]) -> WhyChild:
        if isinstance(evidence, _Row):
            return Match(str(literal), evidence.table, evidence.row)
        if isinstance(evidence, _Group):
            return self._aggregate_node(literal, evidence, 0, 0)
        child = self._child(literal, evidence, b, 0)
        assert not isinstance(child, Proof)
        return child

    def _failure(
        self,
        compiled: CompiledRule,
        i: int,
        written: Literal,
        b: dict[str, Any],
        depth: int,
        visiting: frozenset[Key],
    ) -> Failure:
        literal = compiled.rule.body[i]
        label = str(written)
        if isinstance(literal, Atom):
            table = literal.qualified
            pattern = _pattern(literal.args, b)
            text = _qualified_text(_subst(written, b), table)
            nested = None
            if (
                table in self.program.derived
                and depth < self.why_not_depth
                and (table, pattern) not in visiting
            ):
                nested = self.why_not(table, pattern, depth + 1, visiting)
            return Failure(
                "no_match",
                label,
                f"no row of {table} matches {text}",
                text,
                why_not=nested,
                near=[] if nested else self.near(table, pattern),
            )
        if isinstance(literal, Negation) and isinstance(literal.atom, Atom):
            table = literal.atom.qualified
            pattern = _pattern(literal.atom.args, b)
            rows = sorted(self.lookup(table, pattern), key=_sort_key)
            atom = written.atom if isinstance(written, Negation) else written
            text = _qualified_text(_subst(atom, b), table)
            proof = self.proof(table, rows[0], depth + 1) if rows else None
            row = _row_text(table, rows[0]) if rows else text
            return Failure("negation", label, f"{row} exists", text, proof=proof)
        if isinstance(literal, Negation):
            text, extended, reason = _run_builtin(literal.atom, b)  # type: ignore[arg-type]
            message = reason if reason.startswith("raised") else f"{text} holds"
            return Failure("builtin", label, message)
        if isinstance(literal, BuiltinCall):
            text, _, reason = _run_builtin(literal, b)
            return Failure("builtin", label, f"{text} {reason}")
        if isinstance(literal, Comparison):
            kind, text, _, _, reason = _run_comparison(literal, b)
            return Failure(kind, label, f"{text} {reason}")
        group, _, reason = self._aggregate(compiled, i, b)
        return Failure("aggregate", label, reason)
