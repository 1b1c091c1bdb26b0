"""What the dashboard's violation reads cost at scale: ``python -m bench.dashboard``.

One process, one service over a SQLite store in a temporary directory: a push datasource
``inv`` whose ``servers`` table has ``--n`` rows, and two policies reading it whose
``error`` and ``warning`` tables hold ``--n`` current violations together; a tenth of them
then cleared and back, so the history holds resolved intervals too. Timed, each the median
(and minimum) of ``--repeat`` runs, interleaved, the index cached (made by the run before):

- ``page``: the first page (100 rows, newest first) of ``violation_page``, index cached;
- ``page, filtered``: the same with ``policy``, ``severity=none`` and ``q`` (a substring);
- ``page, sort=row``: the 500th page sorted by the row's values, descending;
- ``export (all)``: every violation (``limit=None``) as objects, what a CSV export reads;
- ``summary``: counts by policy, pack and severity, and the datasources in trouble;
- ``history (day)``: 48 buckets from the stored intervals (SQL, grouped by batch time);
- ``changed: ...``: right after a batch that opened or cleared one violation: the first
  page (the index is rebuilt), then the filtered page and the sorted page (their text and
  order, made on first use), then the history (queried again);
- ``baseline``: what a page costs without the index: every current violation made into
  an object and sorted, then sliced (the unit of the ratios).

Prints each median and minimum, with its ratio to the baseline. No assertion: a figure to
watch, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from charter.engine import Delta
from charter.service.dashboard import (
    ViolationQuery,
    history,
    summary,
    violation_page,
)
from charter.service.service import Service
from charter.store import Store

POLICIES = {
    "ops": ['error(id, t) :- inv:servers(id=id, tenant=t, status="ERROR")'],
    "lab": ['warning(id, t) :- inv:servers(id=id, tenant=t, status="SHUTOFF")'],
}


def build(n: int, data_dir: Path) -> Service:
    service = Service(Store(f"sqlite:///{data_dir / 'bench.db'}", secret_key=Store.generate_key()))
    service.start()
    service.datasources.create(
        {
            "name": "inv",
            "driver": "push",
            "config": {"tables": {"servers": ["id", "tenant", "status"]}},
        }
    )
    for name, rules in POLICIES.items():
        service.policies.create(name, rules=[{"rule": r} for r in rules])
    with service.lock:  # straight into the engine: history is recorded as for a push
        status = ("ERROR", "SHUTOFF")
        service.apply(
            [Delta("inv:servers", (f"vm{i}", f"t{i % 50}", status[i % 2]), +1) for i in range(n)]
        )
        tenth = [(f"vm{i}", f"t{i % 50}", status[i % 2]) for i in range(0, n, 10)]
        service.apply([Delta("inv:servers", r, -1) for r in tenth])
        service.apply([Delta("inv:servers", r, +1) for r in tenth])
    return service


def baseline(service: Service) -> list:
    """A page without the index: every violation as an object, sorted, sliced."""
    with service.lock:
        everything = [
            (p, t, row, seen)
            for (p, t), rows in service.violations.open.items()
            for row, seen in rows.items()
        ]
    everything = [
        {"policy": p, "table": t, "row": list(r), "first_seen": s} for p, t, r, s in everything
    ]
    everything.sort(key=lambda v: (v["first_seen"], v["policy"], repr(v["row"])), reverse=True)
    return everything[:100]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="violations (default 100,000)")
    parser.add_argument("--repeat", type=int, default=20, help="runs per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        service = build(args.n, Path(tmp))
        print(
            f"state: {args.n:,} current violations, built in "
            f"{time.perf_counter() - start:.1f} s; {args.repeat} runs each"
        )
        row = (f"vm{args.n}", "t0", "ERROR")
        turn = iter(range(10**9))

        def change() -> None:  # one batch that opens or clears a violation
            with service.lock:
                service.apply([Delta("inv:servers", row, +1 if next(turn) % 2 == 0 else -1)])

        filtered = ViolationQuery(policy="ops", severity="none", q="VM12")
        by_row = ViolationQuery(sort="row", descending=True, offset=min(49_900, args.n))
        figures: dict[str, Callable[[], object]] = {
            "baseline": lambda: baseline(service),
            "page": lambda: violation_page(service, ViolationQuery()),
            "page, filtered": lambda: violation_page(service, filtered),
            "page, sort=row": lambda: violation_page(service, by_row),
            "export (all)": lambda: violation_page(service, ViolationQuery(limit=None)),
            "summary": lambda: summary(service),
            "history (day)": lambda: history(service, "day"),
        }
        after = {  # each after a batch that changed a violation, in this order
            "changed: page": figures["page"],
            "changed: filtered": figures["page, filtered"],
            "changed: sort=row": figures["page, sort=row"],
            "changed: history": figures["history (day)"],
        }
        samples: dict[str, list[float]] = {name: [] for name in [*figures, *after]}
        for _ in range(args.repeat):  # interleaved: each figure meets the same machine load
            for name, run in figures.items():
                begin = time.perf_counter()
                run()
                samples[name].append(time.perf_counter() - begin)
            change()
            for name, run in after.items():
                begin = time.perf_counter()
                run()
                samples[name].append(time.perf_counter() - begin)
        service.close()
    median = {name: statistics.median(s) for name, s in samples.items()}
    least = {name: min(s) for name, s in samples.items()}
    print(f"{'':<16} {'median':>11} {'ratio':>8} {'minimum':>12} {'ratio':>8}")
    for name in samples:
        print(
            f"{name:<16} {median[name] * 1e3:8.2f} ms {median[name] / median['baseline']:7.3f}x "
            f"{least[name] * 1e3:9.2f} ms {least[name] / least['baseline']:7.3f}x"
        )


if __name__ == "__main__":
    main()
