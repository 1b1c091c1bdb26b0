"""Compiled join plans: what the executor runs, between the AST and the data.

A plan turns a list of *bindings* (tuples of variable values, one slot per variable in the
order the plan binds them) into a longer or shorter list, step by step; its ``head`` turns
each final binding into a row. A plan may start from a *seed*: the rows of one literal's
delta (incremental maintenance), or a head row (re-derivation). Steps carry the index of
the body literal they came from, so the executor can read that literal's table as it was
before the batch (``old``) or as it is now.

The functions held by steps are built by the planner; they read bindings and rows with
``operator.itemgetter`` so the executor's inner loops stay small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Getter = Callable[[tuple], Any]


@dataclass(frozen=True, slots=True)
class Scan:
    """Join with a table: look its rows up by the bound ``columns`` (all rows if none)."""

    lit: int
    table: str
    columns: tuple[int, ...]
    key: Getter  # binding -> index key
    same: tuple[tuple[int, int], ...]  # column pairs that must hold equal values
    out: Getter  # row -> tuple of values appended to the binding
    full: bool = False  # every column is bound: a membership test, ``key`` gives the row
    # Binds nothing used later (no kept columns, no equal columns): each binding is kept
    # once per matching row, which the executor counts without reading the rows.
    counted: bool = False


@dataclass(frozen=True, slots=True)
class Absent:
    """Negated table literal: keep bindings for which no row matches ``columns``."""

    lit: int
    table: str
    columns: tuple[int, ...]
    key: Getter
    full: bool  # every column is bound: a membership test on whole rows


@dataclass(frozen=True, slots=True)
class Call:
    """A builtin: inputs from the binding, outputs appended (``None``) or compared."""

    lit: int
    name: str
    inputs: Callable[[tuple], tuple]
    outputs: tuple[Getter | None, ...]  # per output: None = bind new, else expected value
    negated: bool


@dataclass(frozen=True, slots=True)
class Test:
    """An infix comparison between two bound expressions."""

    lit: int
    op: str
    left: Getter
    right: Getter


@dataclass(frozen=True, slots=True)
class Assign:
    """``v = expr`` with ``v`` unbound: append the expression's value."""

    lit: int
    value: Getter


@dataclass(frozen=True, slots=True)
class AggregateLookup:
    """An aggregate literal: the group's value by the bound key, appended or compared."""

    lit: int
    table: str  # the auxiliary table holding the aggregate's body bindings
    key: Getter
    result: Getter | None  # None = bind the result; else the value it must equal
    # The result is used nowhere else: a group that has a value keeps the binding as it is
    # (appending one value per aggregate made long bindings in rules of many aggregates).
    unused: bool = False


Step = Scan | Absent | Call | Test | Assign | AggregateLookup


@dataclass(frozen=True, slots=True)
class AtomSeed:
    """Start from rows of a positive literal's table (its delta)."""

    lit: int
    table: str
    consts: tuple[tuple[int, Any], ...]
    same: tuple[tuple[int, int], ...]
    out: Getter


@dataclass(frozen=True, slots=True)
class NegationSeed:
    """Start from keys whose negated literal changed truth (its table's delta)."""

    lit: int
    table: str
    columns: tuple[int, ...]  # the negated literal's bound columns (its index)
    consts: tuple[tuple[int, Any], ...]
    same: tuple[tuple[int, int], ...]
    row_key: Getter  # row -> index key on ``columns``
    out: Getter  # row -> the binding (its variables' values)


@dataclass(frozen=True, slots=True)
class AggregateSeed:
    """Start from aggregate groups whose value changed."""

    lit: int
    table: str
    width: int  # number of key variables


@dataclass(frozen=True, slots=True)
class HeadSeed:
    """Start from a head row, to find whether it still has a derivation."""

    consts: tuple[tuple[int, Any], ...]
    same: tuple[tuple[int, int], ...]
    out: Getter


Seed = AtomSeed | NegationSeed | AggregateSeed | HeadSeed


@dataclass(frozen=True, slots=True)
class Plan:
    """Steps from a seed (or from the empty binding) to head rows."""

    seed: Seed | None
    steps: tuple[Step, ...]
    head: Getter  # binding -> head row
    order: tuple[int, ...]  # body literal indexes in the order the steps run them
