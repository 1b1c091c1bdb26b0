"""Rules to join plans: a greedy join order from bound columns and table sizes.

Filters (negations, comparisons, builtins, aggregate look-ups) run as soon as what they
need is bound; then the next table is the one with the most bound columns, the smaller
first. Only variables used later are kept in bindings, so ``servers(s, _, i, _, _, _)``
carries two values, not six.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter

from charter.engine.join_order import Greedy, RuleShape
from charter.engine.plan import (
    Absent,
    AggregateLookup,
    AggregateSeed,
    Assign,
    AtomSeed,
    Call,
    HeadSeed,
    NegationSeed,
    Plan,
    Scan,
    Seed,
    Step,
    Test,
)
from charter.engine.relation import key_getter
from charter.lang.ast import (
    Aggregate,
    Atom,
    BuiltinCall,
    Comparison,
    Constant,
    Expr,
    Modal,
    Negation,
    Rule,
    Term,
    Variable,
)
from charter.lang.builtins import ARITHMETIC, BUILTINS
from charter.lang.errors import EngineError

HEAD = "head"


@dataclass(frozen=True, slots=True)
class AggregateSpec:
    """How an aggregate literal is kept: its auxiliary table and group-by variables."""

    table: str
    keys: tuple[str, ...]


def _getter(sources: list[int | Constant]) -> Callable[[tuple], object]:
    """Binding -> key over positions and constants, in the index-key convention."""
    if all(isinstance(s, int) for s in sources):
        return key_getter(tuple(sources))  # type: ignore[arg-type]
    if len(sources) == 1:
        value = sources[0].value  # type: ignore[union-attr]
        return lambda _b: value
    # The constants go after the binding, read by negative positions: one C itemgetter.
    constants = tuple(s.value for s in sources if isinstance(s, Constant))
    positions, j = [], -len(constants)
    for s in sources:
        if isinstance(s, Constant):
            positions.append(j)
            j += 1
        else:
            positions.append(s)
    get = itemgetter(*positions)
    return lambda b: get(b + constants)


def _tuple_getter(positions: list[int]) -> Callable[[tuple], tuple]:
    """Row -> tuple of the values at ``positions`` (always a tuple)."""
    if not positions:
        return lambda _r: ()
    if len(positions) == 1:
        p = positions[0]
        return lambda r: (r[p],)
    return itemgetter(*positions)


def _row_getter(sources: list[int | Constant]) -> Callable[[tuple], tuple]:
    """Binding -> a whole row over positions and constants (always a tuple)."""
    if all(isinstance(s, int) for s in sources):
        return _tuple_getter(sources)  # type: ignore[arg-type]
    parts = [(s.value, None) if isinstance(s, Constant) else (None, s) for s in sources]
    return lambda b: tuple(v if p is None else b[p] for v, p in parts)


def _no_values(_row: tuple) -> tuple:
    return ()


def expression(expr: Expr, layout: dict[str, int]) -> Callable[[tuple], object]:
    """Compile an expression over a binding layout to a function of the binding."""
    if isinstance(expr, Constant):
        value = expr.value
        return lambda _b: value
    if isinstance(expr, Variable):
        return itemgetter(layout[expr.name])
    op = ARITHMETIC[expr.op]
    left, right = expression(expr.left, layout), expression(expr.right, layout)
    return lambda b: op(left(b), right(b))


class _Builder:
    """Builds one plan: tracks the binding layout while steps are added."""

    def __init__(self, shape: RuleShape):
        self.rule = shape.rule
        self.aggregates = shape.aggregates
        self.layout: dict[str, int] = {}
        self.names: list[str] = []  # the layout's names in the order bound
        self.uses = shape.uses

    def _bind(self, names: list[str]) -> None:
        for name in names:
            self.layout[name] = len(self.layout)
            self.names.append(name)

    def _match(self, args: tuple[Term, ...]):
        """Split an atom's arguments into key sources, equal pairs and new variables."""
        columns: list[int] = []
        sources: list[int | Constant] = []
        same: list[tuple[int, int]] = []
        first: dict[str, int] = {}
        for col, term in enumerate(args):
            if isinstance(term, Constant):
                columns.append(col)
                sources.append(term)
            elif term.name in self.layout:
                columns.append(col)
                sources.append(self.layout[term.name])
            elif term.name in first:
                same.append((first[term.name], col))
            else:
                first[term.name] = col
        return columns, sources, same, first

    # -- seeds

    def atom_seed(self, i: int, atom: Atom) -> AtomSeed:
        columns, sources, same, first = self._match(atom.args)
        consts = tuple((c, s.value) for c, s in zip(columns, sources, strict=True))
        kept = [n for n in first if self.uses[n] > 1]
        self._bind(kept)
        return AtomSeed(
            i, atom.qualified, consts, tuple(same), _tuple_getter([first[n] for n in kept])
        )

    def negation_seed(self, i: int, atom: Atom) -> NegationSeed:
        columns: list[int] = []
        consts: list[tuple[int, object]] = []
        same: list[tuple[int, int]] = []
        first: dict[str, int] = {}
        for col, term in enumerate(atom.args):
            if isinstance(term, Constant):
                columns.append(col)
                consts.append((col, term.value))
            elif not term.anonymous:
                columns.append(col)
                if term.name in first:
                    same.append((first[term.name], col))
                else:
                    first[term.name] = col
        names = list(first)
        self._bind(names)
        return NegationSeed(
            i,
            atom.qualified,
            tuple(columns),
            tuple(consts),
            tuple(same),
            key_getter(tuple(columns)),
            _tuple_getter([first[n] for n in names]),
        )

    def aggregate_seed(self, i: int, literal: Aggregate) -> AggregateSeed:
        spec = self.aggregates[i]
        self._bind([*spec.keys, literal.result.name])
        return AggregateSeed(i, spec.table, len(spec.keys))

    def head_seed(self) -> HeadSeed:
        head = self.rule.head
        atom = head.atom if isinstance(head, Modal) else head
        columns, sources, same, first = self._match(atom.args)
        consts = tuple((c, s.value) for c, s in zip(columns, sources, strict=True))
        names = list(first)
        self._bind(names)
        return HeadSeed(consts, tuple(same), _tuple_getter([first[n] for n in names]))

    # -- steps

    def step(self, i: int) -> Step:
        literal = self.rule.body[i]
        if isinstance(literal, Atom):
            return self._scan(i, literal)
        if isinstance(literal, Negation):
            if isinstance(literal.atom, BuiltinCall):
                return self._call(i, literal.atom, negated=True)
            return self._absent(i, literal.atom)
        if isinstance(literal, BuiltinCall):
            return self._call(i, literal, negated=False)
        if isinstance(literal, Comparison):
            return self._comparison(i, literal)
        if isinstance(literal, Aggregate):
            return self._aggregate(i, literal)
        raise TypeError(literal)

    def _scan(self, i: int, atom: Atom) -> Scan:
        columns, sources, same, first = self._match(atom.args)
        kept = [n for n in first if self.uses[n] > 1]
        self._bind(kept)
        if len(columns) == len(atom.args) and atom.args:  # all bound: is the row there?
            return Scan(
                i, atom.qualified, tuple(columns), _row_getter(sources), (), _no_values, True
            )
        return Scan(
            i,
            atom.qualified,
            tuple(columns),
            _getter(sources),
            tuple(same),
            _tuple_getter([first[n] for n in kept]),
            counted=bool(columns) and not kept and not same,
        )

    def _absent(self, i: int, atom: Atom) -> Absent:
        columns: list[int] = []
        sources: list[int | Constant] = []
        for col, term in enumerate(atom.args):
            if isinstance(term, Constant):
                columns.append(col)
                sources.append(term)
            elif not term.anonymous:
                columns.append(col)
                sources.append(self.layout[term.name])
        full = len(columns) == len(atom.args)
        key = _row_getter(sources) if full else _getter(sources)
        return Absent(i, atom.qualified, tuple(columns), key, full)

    def _source(self, term: Term) -> Callable[[tuple], object]:
        return expression(term, self.layout)

    def _call(self, i: int, call: BuiltinCall, negated: bool) -> Call:
        builtin = BUILTINS[call.name]
        inputs = [self._source(t) for t in call.args[: builtin.inputs]]
        outputs: list[Callable | None] = []
        new: list[str] = []
        for term in call.args[builtin.inputs :]:
            if isinstance(term, Variable) and term.name not in self.layout:
                if term.name in new:
                    position = len(self.layout) + new.index(term.name)
                    outputs.append(itemgetter(position))
                else:
                    new.append(term.name)
                    outputs.append(None)
            else:
                outputs.append(self._source(term))
        self._bind(new)
        if len(inputs) == 1:
            only = inputs[0]
            get_inputs = lambda b: (only(b),)  # noqa: E731
        else:
            get_inputs = lambda b: tuple(f(b) for f in inputs)  # noqa: E731
        return Call(i, call.name, get_inputs, tuple(outputs), negated)

    def _comparison(self, i: int, cmp: Comparison) -> Step:
        if cmp.op == "=":
            for side, other in ((cmp.left, cmp.right), (cmp.right, cmp.left)):
                if isinstance(side, Variable) and side.name not in self.layout:
                    value = expression(other, self.layout)
                    self._bind([side.name])
                    return Assign(i, value)
        return Test(
            i, cmp.op, expression(cmp.left, self.layout), expression(cmp.right, self.layout)
        )

    def _aggregate(self, i: int, literal: Aggregate) -> AggregateLookup:
        spec = self.aggregates[i]
        key = _getter([self.layout[k] for k in spec.keys])
        name = literal.result.name
        if name in self.layout:
            return AggregateLookup(i, spec.table, key, itemgetter(self.layout[name]))
        if self.uses[name] <= 1:  # only this literal names it: the value need not be kept
            return AggregateLookup(i, spec.table, key, None, unused=True)
        self._bind([name])
        return AggregateLookup(i, spec.table, key, None)

    def head(self) -> Callable[[tuple], tuple]:
        head = self.rule.head
        atom = head.atom if isinstance(head, Modal) else head
        sources: list[int | Constant] = [
            t if isinstance(t, Constant) else self.layout[t.name] for t in atom.args
        ]
        if all(isinstance(s, int) for s in sources):
            if sources == list(range(len(self.layout))):
                return lambda b: b  # the binding already is the row
            return _tuple_getter(sources)  # type: ignore[arg-type]
        parts = [(s.value, None) if isinstance(s, Constant) else (None, s) for s in sources]
        return lambda b: tuple(v if p is None else b[p] for v, p in parts)


#: Rules with more body literals than this get plans whose steps are made as they are
#: first run: a delta plan is needed per input literal, and making each whole would cost
#: the square of the body before any row is read.
LAZY_LITERALS = 64


def plan_rule(
    rule: Rule,
    start: int | str | None,
    size: Callable[[str], int],
    aggregates: dict[int, AggregateSpec] | None = None,
    shape: RuleShape | None = None,
) -> Plan:
    """Plan ``rule``: from nothing (``start=None``), from literal ``start``'s delta, or from
    a head row (``start=HEAD``). ``shape`` (from the rule and its aggregates) may be given
    to share it between the plans of one rule."""
    shape = shape or RuleShape(rule, aggregates or {})
    builder = _Builder(shape)
    seed: Seed | None = None
    used: set[int] = set()
    if start == HEAD:
        seed = builder.head_seed()
    elif start is not None:
        assert isinstance(start, int)
        literal = rule.body[start]
        if isinstance(literal, Atom):
            seed = builder.atom_seed(start, literal)
        elif isinstance(literal, Negation) and isinstance(literal.atom, Atom):
            seed = builder.negation_seed(start, literal.atom)
        elif isinstance(literal, Aggregate):
            seed = builder.aggregate_seed(start, literal)
        else:
            raise EngineError(f"literal {literal} has no delta")
        used.add(start)
    greedy = Greedy(shape, size, set(builder.layout), used)
    lazy = _LazySteps(builder, greedy, [start] if isinstance(start, int) else [])
    if len(rule.body) > LAZY_LITERALS:
        return Plan(seed, lazy, lazy.run_head, _LazyOrder(lazy))
    lazy.finish()
    return Plan(seed, tuple(lazy.built), builder.head(), tuple(lazy.order))


class _LazySteps:
    """A plan's steps, made as they are first needed (all of them for small rules)."""

    def __init__(self, builder: _Builder, greedy: Greedy, order: list[int]):
        self.builder: _Builder | None = builder
        self.greedy: Greedy | None = greedy
        self.built: list[Step] = []
        self.order = order
        self._head: Callable[[tuple], tuple] | None = None

    def _extend(self) -> bool:
        """Make one more step; False once every step is made."""
        greedy, builder = self.greedy, self.builder
        if greedy is None or builder is None:
            return False
        i = greedy.next()
        if i is None:
            self._head = builder.head()
            self.greedy = self.builder = None  # done: drop the planning state
            return False
        known = len(builder.names)
        self.built.append(builder.step(i))
        self.order.append(i)
        greedy.bind(builder.names[known:])
        return True

    def finish(self) -> None:
        while self._extend():
            pass

    def __iter__(self) -> Iterator[Step]:
        n = 0
        while n < len(self.built) or self._extend():
            yield self.built[n]
            n += 1

    def __len__(self) -> int:
        self.finish()
        return len(self.built)

    def __getitem__(self, index):
        self.finish()
        return self.built[index]

    def run_head(self, binding: tuple) -> tuple:
        """The head row of a binding that passed every step (so every step is made)."""
        if self._head is None:
            self.finish()
        return self._head(binding)  # type: ignore[misc]


class _LazyOrder:
    """A lazy plan's literal order, made whole when read."""

    def __init__(self, steps: _LazySteps):
        self.steps = steps

    def __iter__(self) -> Iterator[int]:
        self.steps.finish()
        return iter(self.steps.order)

    def __len__(self) -> int:
        self.steps.finish()
        return len(self.steps.order)

    def __getitem__(self, index):
        self.steps.finish()
        return self.steps.order[index]
