"""``format_json`` and ``sort_rows`` take fast paths (a plain ``sorted``, encoding by
column); their output must stay byte for byte what the per-value implementation wrote."""

from __future__ import annotations

import json
import math
import random

import pytest

from charter.cli.output import ValueTooLarge, check_printable, format_json, sort_rows


def reference_value_key(value: object) -> tuple:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value, "")
    if isinstance(value, str):
        return (1, 0, value)
    return (2, 0, f"{type(value).__name__}:{value!r}")


def reference_sort(rows):
    return sorted(rows, key=lambda row: tuple(reference_value_key(v) for v in row))


def reference_format_json(results) -> str:
    """The implementation before the fast paths, verbatim."""
    if not results:
        return "{}"
    parts = []
    for table in sorted(results):
        rows = [json.dumps(list(r), ensure_ascii=False) for r in reference_sort(results[table])]
        body = "[]" if not rows else "[\n" + ",\n".join(f"    {r}" for r in rows) + "\n  ]"
        parts.append(f"  {json.dumps(table, ensure_ascii=False)}: {body}")
    return "{\n" + ",\n".join(parts) + "\n}"


STRINGS = [
    "",
    "a",
    "b",
    "vm-1",
    'q"uote',
    "back\\slash",
    "tab\t",
    "nl\n",
    "\x00\x1f",
    "é",
    "\u2028",
    "😀",
    "\udce9",
    "Z",
    "10",
    "-1",
]
INTS = [0, 1, -1, 2, 10, -42, 2**63, -(2**70), 10**30]
FLOATS = [0.0, -0.0, 1.0, 2.5, -3.25, 1e16, 1e-7, 1.5e300, math.inf, -math.inf, 0.1]


def value(rng: random.Random, kind: str) -> object:
    if kind == "str":
        return rng.choice(STRINGS) + rng.choice(["", str(rng.randrange(100))])
    if kind == "int":
        return rng.choice(INTS) + rng.randrange(3)
    if kind == "float":
        return rng.choice(FLOATS)
    if kind == "nan":
        return rng.choice([math.nan, 1.0, -2.0, math.inf])
    if kind == "num":
        return rng.choice([rng.choice(INTS), rng.choice(FLOATS)])
    return rng.choice([None, True, False, 1, "x", 2.0, -0.0])  # anything


KINDS = ["str", "int", "float", "nan", "num", "any"]


def random_table(rng: random.Random) -> set[tuple]:
    arity = rng.randrange(0, 4)
    kinds = [rng.choice(KINDS) for _ in range(arity)]
    return {tuple(value(rng, k) for k in kinds) for _ in range(rng.randrange(0, 60))}


@pytest.mark.parametrize("seed", range(300))
def test_format_json_is_byte_identical(seed):
    rng = random.Random(seed)
    results = {f"p:t{i}\u00e9": random_table(rng) for i in range(rng.randrange(0, 4))}
    # the same set, iterated in the same order, goes to both
    frozen = {name: list(rows) for name, rows in results.items()}
    assert format_json(frozen) == reference_format_json(frozen)
    for rows in frozen.values():
        assert [tuple(r) for r in sort_rows(rows)] == reference_sort(rows)


def test_rows_of_mixed_shapes_take_the_slow_path():
    rows = [("a", 1), ("b",), ["c", 2], (1, "a"), (True,), (None, None)]
    assert format_json({"p:t": rows}) == reference_format_json({"p:t": rows})
    assert sort_rows(rows) == reference_sort(rows)


def test_nan_keeps_the_key_order():
    rows = [(2.0,), (math.nan,), (1.0,), (float("nan"),), (-1.0,)]
    assert format_json({"p:t": rows}) == reference_format_json({"p:t": rows})
    assert "NaN" in format_json({"p:t": rows})


@pytest.mark.parametrize(
    "rows",
    [[(1,), (10**5000,)], [("a", 10**5000)], [(2.5, "x"), (True, 10**5000)]],
)
def test_check_printable_finds_a_huge_int_among_any_rows(rows):
    with pytest.raises(ValueTooLarge, match=r"p:t: error\[value_too_large\]"):
        check_printable({"p:t": rows})


def test_check_printable_passes_printable_rows():
    check_printable({"p:t": [(1, 2), (2**14_000, 3)], "p:u": [("a", 1.5, None)], "p:v": []})
