"""The result tree of an explanation: proof and why-not nodes, their JSON and their text.

:mod:`charter.engine.explain` searches for derivations and builds these nodes; this module
only holds what it returns, so the JSON form (docs/explain.md) and the text form of an
explanation are defined in one place, independent of how the explainer searched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from charter.lang.ast import format_value

__all__ = [
    "ANY",
    "AggregateProof",
    "Absence",
    "Attempt",
    "Evaluation",
    "Failure",
    "Match",
    "NotDerived",
    "Proof",
]


class _Wildcard:
    """The value of a column a why-not pattern leaves open (``_``; ``null`` in JSON)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Wildcard()


# ---------------------------------------------------------------- rendering helpers


def _value_text(value: Any) -> str:
    return "_" if value is ANY else format_value(value)


def _row_text(table: str, row: Sequence[Any]) -> str:
    return f"{table}({', '.join(_value_text(v) for v in row)})"


def _json_value(value: Any) -> Any:
    return None if value is ANY else value


def _bindings_text(bindings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_value_text(v)}" for k, v in bindings.items())


def _sort_key(row: tuple) -> tuple:
    return tuple((0, v, "") if isinstance(v, int | float) else (1, 0, str(v)) for v in row)


class _Node(Protocol):
    def label(self) -> str: ...

    def nodes(self) -> list[_Node]: ...


def _render(node: _Node, depth: int, lines: list[str]) -> None:
    lines.append("  " * depth + node.label())
    for child in node.nodes():
        _render(child, depth + 1, lines)


@dataclass
class _Note:
    """A line of text in a tree (``... and 3 more rows``)."""

    text: str

    def label(self) -> str:
        return self.text

    def nodes(self) -> list[_Node]:
        return []


# ---------------------------------------------------------------- proof nodes


@dataclass
class Proof:
    """Why a row is in its table.

    ``kind`` is ``rule`` (derived by ``rule`` of ``policy`` with ``bindings``; one child
    per body literal, in the rule's order), ``fact`` (a row given to the engine: ``origin``
    is ``datasource`` or ``policy``, ``source`` names it), ``counted`` (one binding an
    aggregate counted: ``rule`` is the aggregate, children are its body's literals) or
    ``stale`` (in the table, but no rule derives it from the current tables: a builtin
    such as ``now()`` answered otherwise when it was derived).
    ``literal`` is the body literal (as written) the row matched, for a child.
    """

    table: str
    row: tuple
    kind: str
    rule: str | None = None
    policy: str | None = None
    bindings: dict[str, Any] = field(default_factory=dict)
    children: list[ProofChild] = field(default_factory=list)
    literal: str | None = None
    origin: str | None = None
    source: str | None = None
    truncated: bool = False
    alternatives: list[Proof] = field(default_factory=list)

    present = True

    def to_json(self) -> dict:
        """The proof as JSON (see docs/explain.md); ``present`` is true at the top."""
        return {"present": True, **self._json()}

    def _json(self) -> dict:
        out: dict[str, Any] = {
            "kind": self.kind,
            "table": self.table,
            "row": [_json_value(v) for v in self.row],
            "rule": self.rule,
            "policy": self.policy,
            "bindings": {k: _json_value(v) for k, v in self.bindings.items()},
            "children": [c._json() for c in self.children],
        }
        if self.literal is not None:
            out["literal"] = self.literal
        if self.kind == "fact":
            out["origin"], out["source"] = self.origin, self.source
        if self.truncated:
            out["truncated"] = True
        if self.alternatives:
            out["alternatives"] = [a._json() for a in self.alternatives]
        return out

    def label(self) -> str:
        row = _row_text(self.table, self.row)
        if self.truncated:
            return f"{row}  (proof cut here: too deep or too large)"
        if self.kind == "fact":
            return f"{row}  fact of {self.origin} {self.source}"
        if self.kind == "stale":
            return f"{row}  not derivable from the current tables (derived with now()?)"
        with_ = f"  with {_bindings_text(self.bindings)}" if self.bindings else ""
        if self.kind == "counted":
            return f"counted with {_bindings_text(self.bindings)}" if with_ else "counted"
        return f"{row}  <= {self.policy}: {self.rule}{with_}"

    def nodes(self) -> list[_Node]:
        return list(self.children)

    def to_text(self) -> str:
        """An indented tree, one node a line; alternative derivations follow the first."""
        lines: list[str] = []
        _render(self, 0, lines)
        for n, alternative in enumerate(self.alternatives, 2):
            lines.append(f"alternative derivation {n}:")
            _render(alternative, 1, lines)
        return "\n".join(lines)


@dataclass
class Absence:
    """A negated literal that holds: no row matches ``pattern``."""

    literal: str
    table: str
    pattern: str

    kind = "negation"

    def _json(self) -> dict:
        return {
            "kind": self.kind,
            "literal": self.literal,
            "table": self.table,
            "pattern": self.pattern,
            "holds": True,
        }

    def label(self) -> str:
        return f"{self.literal}: no row matches {self.pattern}"

    def nodes(self) -> list[_Node]:
        return []


@dataclass
class Evaluation:
    """A builtin call (``kind`` ``builtin``), an infix comparison (``comparison``) or an
    assignment ``v = expr`` (``assignment``), with its values and result: ``true`` for a
    test, the value(s) computed otherwise."""

    kind: str
    literal: str
    call: str
    result: Any

    def _json(self) -> dict:
        result = list(self.result) if isinstance(self.result, tuple) else self.result
        return {"kind": self.kind, "literal": self.literal, "call": self.call, "result": result}

    def label(self) -> str:
        if self.result is True:
            return f"{self.literal}: {self.call} is true"
        return f"{self.literal}: {self.call}"

    def nodes(self) -> list[_Node]:
        return []


@dataclass
class AggregateProof:
    """An aggregate literal: its group (the variables bound outside the braces), its value,
    how many distinct bindings of its body it counted, and up to N of them explained."""

    literal: str
    table: str
    function: str
    group: dict[str, Any]
    value: Any
    count: int
    examples: list[Proof] = field(default_factory=list)

    kind = "aggregate"

    def _json(self) -> dict:
        return {
            "kind": self.kind,
            "literal": self.literal,
            "table": self.table,
            "function": self.function,
            "group": {k: _json_value(v) for k, v in self.group.items()},
            "value": self.value,
            "count": self.count,
            "examples": [e._json() for e in self.examples],
        }

    def label(self) -> str:
        group = f" for {_bindings_text(self.group)}" if self.group else ""
        value = "no value" if self.value is None else _value_text(self.value)
        rows = f"{self.count} row" + ("" if self.count == 1 else "s")
        return f"{self.literal}: {self.function} is {value}{group} ({rows})"

    def nodes(self) -> list[_Node]:
        out: list[_Node] = list(self.examples)
        if self.examples and self.count > len(self.examples):
            out.append(_Note(f"... and {self.count - len(self.examples)} more"))
        return out


ProofChild = Proof | Absence | Evaluation | AggregateProof


# ---------------------------------------------------------------- why-not nodes


@dataclass
class Match:
    """In a why-not attempt, a positive literal that matched ``row`` before the failure."""

    literal: str
    table: str
    row: tuple

    kind = "match"

    def _json(self) -> dict:
        return {
            "kind": self.kind,
            "literal": self.literal,
            "table": self.table,
            "row": list(self.row),
        }

    def label(self) -> str:
        return f"{self.literal}: matched {_row_text(self.table, self.row)}"

    def nodes(self) -> list[_Node]:
        return []


@dataclass
class Failure:
    """Where an attempt failed. ``kind``: ``head`` (the rule's head cannot produce the row),
    ``fact`` (not among a policy's facts), ``no_match`` (no row matches ``pattern``; ``near``
    lists rows that differ in one column, ``why_not`` explains a derived table),
    ``negation`` (``proof`` is the row that exists), ``builtin``, ``comparison``,
    ``assignment``, ``aggregate``, or ``limit`` (the search gave up)."""

    kind: str
    literal: str | None
    message: str
    pattern: str | None = None
    proof: Proof | None = None
    why_not: NotDerived | None = None
    near: list[tuple[tuple, list[str]]] = field(default_factory=list)

    def _json(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind, "literal": self.literal, "message": self.message}
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.proof is not None:
            out["proof"] = self.proof._json()
        if self.why_not is not None:
            out["why_not"] = self.why_not._json()
        if self.near:
            out["near"] = [{"row": list(r), "differs": d} for r, d in self.near]
        return out

    def label(self) -> str:
        if self.literal is None:
            return self.message
        return f"fails at {self.literal}: {self.message}"

    def nodes(self) -> list[_Node]:
        out: list[_Node] = []
        for row, differs in self.near:
            out.append(_Note(f"near: {_values(row)} (differs in {', '.join(differs)})"))
        if self.proof is not None:
            out.append(self.proof)
        if self.why_not is not None:
            out.append(self.why_not)
        return out


def _values(row: tuple) -> str:
    return f"({', '.join(_value_text(v) for v in row)})"


WhyChild = Match | Absence | Evaluation | AggregateProof


@dataclass
class Attempt:
    """One candidate rule of a why-not: the literals it matched, with the binding they
    made, up to the literal that failed (``failed`` is None if it derives the row)."""

    rule: str | None
    policy: str
    bindings: dict[str, Any]
    matched: list[WhyChild]
    failed: Failure | None
    unifies: bool = True

    def _json(self) -> dict:
        return {
            "rule": self.rule,
            "policy": self.policy,
            "unifies": self.unifies,
            "bindings": {k: _json_value(v) for k, v in self.bindings.items()},
            "matched": [m._json() for m in self.matched],
            "failed": self.failed._json() if self.failed is not None else None,
        }

    def label(self) -> str:
        if self.rule is None:
            return f"facts of policy {self.policy}"
        with_ = f"  with {_bindings_text(self.bindings)}" if self.bindings else ""
        return f"rule of {self.policy}: {self.rule}{with_}"

    def nodes(self) -> list[_Node]:
        out: list[_Node] = list(self.matched)
        if self.failed is not None:
            out.append(self.failed)
        else:
            out.append(_Note("derives it from the current tables (the table is out of date)"))
        return out


@dataclass
class NotDerived:
    """Why a row (or a pattern: ``ANY`` columns) is not in its table: the message, and for
    a derived table each rule that could produce it with where it fails."""

    table: str
    row: tuple
    message: str
    candidates: list[Attempt] = field(default_factory=list)
    near: list[tuple[tuple, list[str]]] = field(default_factory=list)

    present = False

    def to_json(self) -> dict:
        """The why-not as JSON (see docs/explain.md); ``present`` is false."""
        return {"present": False, **self._json()}

    def _json(self) -> dict:
        out: dict[str, Any] = {
            "table": self.table,
            "row": [_json_value(v) for v in self.row],
            "message": self.message,
            "candidates": [c._json() for c in self.candidates],
        }
        if self.near:
            out["near"] = [{"row": list(r), "differs": d} for r, d in self.near]
        return out

    def label(self) -> str:
        return self.message

    def nodes(self) -> list[_Node]:
        out: list[_Node] = [
            _Note(f"near: {_values(r)} (differs in {', '.join(d)})") for r, d in self.near
        ]
        return out + list(self.candidates)

    def to_text(self) -> str:
        lines: list[str] = []
        _render(self, 0, lines)
        return "\n".join(lines)
