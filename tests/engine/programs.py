"""Hypothesis strategies: random stratified programs and random batches of changes.

Derived tables come in groups; a rule may read its own group's tables positively (so
groups may recurse, alone or mutually) and any earlier group or base table in any way
(positively, negated, aggregated). That makes every program stratified by construction.
Arithmetic stays inside a small domain (``% 5``) so recursion always terminates.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

BASE = ("e0", "e1", "e2")
DOMAIN = st.integers(min_value=0, max_value=4)
VARS = ("x", "y", "z")


@dataclass
class Program:
    rules: list[str]
    groups: list[list[str]]

    @property
    def text(self) -> str:
        return "\n".join(dict.fromkeys(self.rules))


@st.composite
def rules_for(draw, head: str, same_group: list[str], lower: list[str]) -> str:
    """One safe rule for ``head`` over the tables it may read."""
    positive_tables = lower + same_group
    n_atoms = draw(st.integers(1, 3))
    body: list[str] = []
    bound: list[str] = []
    for _ in range(n_atoms):
        table = draw(st.sampled_from(positive_tables))
        args = []
        for _col in range(2):
            kind = draw(st.sampled_from(["var", "var", "var", "const", "anon"]))
            if kind == "var":
                v = draw(st.sampled_from(VARS))
                args.append(v)
                if v not in bound:
                    bound.append(v)
            elif kind == "const":
                args.append(str(draw(DOMAIN)))
            else:
                args.append("_")
        body.append(f"{table}({', '.join(args)})")
    if not bound:
        table = draw(st.sampled_from(positive_tables))
        body.append(f"{table}(x, y)")
        bound += ["x", "y"]
    extras = draw(st.lists(st.sampled_from(["neg", "cmp", "assign", "agg"]), max_size=2))
    for extra in extras:
        if extra == "neg" and lower:
            table = draw(st.sampled_from(lower))
            a = draw(st.sampled_from(bound + ["_"]))
            b = draw(st.sampled_from(bound + ["_", "3"]))
            body.append(f"not {table}({a}, {b})")
        elif extra == "cmp":
            a = draw(st.sampled_from(bound))
            b = draw(st.sampled_from(bound + ["2"]))
            op = draw(st.sampled_from(["<", "<=", "!=", "=", ">"]))
            body.append(f"{a} {op} {b}")
        elif extra == "assign" and "w" not in bound:
            a = draw(st.sampled_from(bound))
            body.append(f"w = ({a} + {draw(DOMAIN)}) % 5")
            bound.append("w")
        elif extra == "agg" and lower and "c" not in bound:
            table = draw(st.sampled_from(lower))
            key = draw(st.sampled_from(bound))
            func = draw(st.sampled_from(["count", "sum", "min", "max"]))
            if func == "count":
                body.append(f"c = count : {{ {table}({key}, _) }}")
            else:
                body.append(f"c = {func} v : {{ {table}({key}, v) }}")
            if func != "count" or draw(st.booleans()):
                bound.append("c")
            else:
                body.append("c > 1")
                bound.append("c")
    head_vars = [draw(st.sampled_from(bound)) for _ in range(2)]
    if draw(st.integers(0, 5)) == 0:
        head_vars[1] = str(draw(DOMAIN))
    return f"{head}({', '.join(head_vars)}) :- {', '.join(body)}"


@st.composite
def programs(draw, max_groups: int = 3) -> Program:
    n_groups = draw(st.integers(1, max_groups))
    groups: list[list[str]] = []
    rules: list[str] = []
    counter = 0
    for _ in range(n_groups):
        size = draw(st.integers(1, 2))
        group = [f"d{counter + i}" for i in range(size)]
        counter += size
        lower = list(BASE) + [t for g in groups for t in g]
        for head in group:
            # a non-recursive first rule, so every table can have rows
            rules.append(draw(rules_for(head, [], lower)))
            for _ in range(draw(st.integers(0, 2))):
                rules.append(draw(rules_for(head, group, lower)))
        groups.append(group)
    return Program(rules, groups)


rows = st.tuples(DOMAIN, DOMAIN)
deltas = st.tuples(st.sampled_from(BASE), rows, st.sampled_from([1, 1, -1]))
batches = st.lists(st.lists(deltas, min_size=1, max_size=6), min_size=1, max_size=6)
