"""What a long rule costs to compile: ``python -m bench.compile``.

A rule's size is whatever its author (or an attacker with editor rights) makes it, and the
service compiles it before it answers. This times each stage of taking in one rule of N
body literals, for several shapes:

- ``chain``: ``p(x0) :- q(x0, x1), q(x1, x2), ...``: every literal reads one table, so a
  row of ``q`` feeds N delta rules;
- ``filters``: ``p(x) :- q(x, y0), y0 > 0, q(x, y1), y1 > 1, ...``: a join and a comparison
  per pair, many variables;
- ``wide``: ``p(x0, ..., xN) :- t0(x0), t1(x1), ...``: a head as wide as the body, N tables;
- ``aggregates``: ``p(x) :- q(x, _), n0 = count : { r0(x, _) }, ...``: N/2 aggregates, each
  an auxiliary table and a stratum of its own.

Stages, each timed alone in this process: ``parse`` (text to AST), ``check`` (the per-rule
checks and the program-wide ones), ``add`` (the engine takes the rule: program, strata,
evaluation over a few rows), ``change`` (the first row change after it, which plans the
delta rules it runs), and ``explain`` (the proof of one row, for chains that derive one).

The baseline is the same stage at the smallest size: for each stage the table prints the
time per literal and its ratio to the smallest size's, so near-linear work reads about
1x at every size (and a quadratic stage 600x at 60k against 100). No assertion: figures to
watch, not a test (tests/bench/ runs a small size to keep this script working).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable

from charter.engine import Delta, Engine, RuleChange
from charter.lang.checks import check_program, compile_rules
from charter.lang.limits import overridden
from charter.lang.parser import parse_rule

SIZES = (100, 320, 1_000, 10_000, 60_000)
SHAPES = ("chain", "filters", "wide", "aggregates")
STAGES = ("parse", "check", "add", "change")


def rule_text(shape: str, n: int) -> str:
    """A rule of ``shape`` with ``n`` body literals."""
    if shape == "chain":
        return "p(x0) :- " + ", ".join(f"q(x{i}, x{i + 1})" for i in range(n))
    if shape == "filters":
        pairs = [f"q(x, y{i}), y{i} > {i}" for i in range(n // 2)]
        return "p(x) :- " + ", ".join(pairs)
    if shape == "wide":
        head = ", ".join(f"x{i}" for i in range(n))
        return f"p({head}) :- " + ", ".join(f"t{i}(x{i})" for i in range(n))
    if shape == "aggregates":
        aggs = [f"n{i} = count : {{ r{i % 50}(x, _) }}" for i in range(n // 2)]
        return "p(x) :- " + ", ".join(["q(x, _)", *aggs[: n // 2 - 1], "x > 0"])
    raise ValueError(f"unknown shape {shape}")


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure(shape: str, n: int) -> dict[str, float]:
    """Seconds per stage for one rule of ``shape`` and size ``n``."""
    text = rule_text(shape, n)
    out: dict[str, float] = {"bytes": len(text)}
    out["parse"], rule = _timed(lambda: parse_rule(text))

    def check() -> None:
        normalized, _ = compile_rules("t", [rule])
        check_program({"t": normalized})

    out["check"], _ = _timed(check)
    engine = Engine()
    engine.create_policy("t")
    engine.insert_rows("t:q", [(i, i + 1) for i in range(50)])
    out["add"], _ = _timed(lambda: engine.apply([RuleChange("t", rule, +1)]))
    # A row every delta rule seeds from but none derives through: planning, not joining.
    out["change"], _ = _timed(lambda: engine.apply([Delta("t:q", (10**6, 0), +1)]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="body literals (repeatable)")
    parser.add_argument("--shape", choices=SHAPES, action="append", help="(repeatable)")
    args = parser.parse_args(argv)
    sizes = sorted(args.n or SIZES)
    shapes = args.shape or list(SHAPES)
    results = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    with overridden(max_rule_literals=max(sizes) + 1):
        for shape in shapes:
            base: dict[str, float] = {}
            print(f"\n{shape}: seconds per stage, then us per literal (x ratio to N={sizes[0]})")
            print(f"{'N':>8} {'KB':>7} " + " ".join(f"{s:>24}" for s in STAGES)
                  + f" {'total':>9}")
            for n in sizes:
                m = measure(shape, n)
                results.append({"shape": shape, "n": n, **m})
                cells = []
                for stage in STAGES:
                    per = m[stage] / n * 1e6
                    base.setdefault(stage, per)
                    ratio = per / base[stage] if base[stage] else float("nan")
                    cells.append(f"{m[stage]:8.3f}s {per:7.1f}us {ratio:5.1f}x")
                total = sum(m[s] for s in STAGES)
                print(f"{n:>8,} {m['bytes'] / 1024:7.1f} " + " ".join(f"{c:>24}" for c in cells)
                      + f" {total:8.2f}s")
    print(json.dumps({"workload": "compile", "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
