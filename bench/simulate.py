"""What a simulation costs next to an incremental update: ``python -m bench.simulate``.

One process, one service over a 100k-row state (servers placed on hosts, a capacity policy
with an aggregate and a join). Timed, each the median of ``--repeat`` runs:

- ``apply``: one row inserted by ``engine.apply`` (then removed, untimed): the cost of an
  incremental update, the unit of the ratios;
- ``simulate update``: ``servers+(...)`` simulated (applied, queried, undone);
- ``simulate action``: ``boot(...)`` projected through an action policy;
- ``admission``: the same row as an admission check (error and warning compared);
- ``re-evaluation``: the policy evaluated whole over the same state (loaded as a new
  policy, then deleted, untimed): what a simulation must not cost.

The figures are interleaved, so each meets the same machine load. Prints each median and
minimum with its ratio to ``apply``. No assertion: a figure to watch, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from charter.engine import Delta
from charter.service.admission import admit
from charter.service.service import Service
from charter.service.simulate import simulate
from charter.store import Store

POLICY = [
    "load(h, n) :- host(h, _), n = count : { servers(_, h) }",
    "error(h) :- load(h, n), host(h, c), n > c",
    'warning(id) :- servers(id, h), not host(h, _)',
]
ACTIONS = ['action("boot")', "servers+(id, h) :- boot(id, h)",
           "result(id) :- servers+(id, h)"]


def build(n: int, data_dir: Path) -> Service:
    service = Service(Store(f"sqlite:///{data_dir / 'bench.db'}",
                            secret_key=Store.generate_key()))
    service.start()
    service.policies.create("cap", rules=[{"rule": r} for r in POLICY])
    for rule in ACTIONS:
        service.policies.add_rule("action", rule)
    hosts = max(10, n // 100)
    with service.lock:  # rows straight into the engine: the store plays no part here
        service.engine.load_rows({
            "cap:host": [(f"h{i}", 100) for i in range(hosts)],
            "cap:servers": [(f"vm{i}", f"h{i % hosts}") for i in range(n)],
        })
    return service


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="servers (default 100,000)")
    parser.add_argument("--repeat", type=int, default=50, help="runs per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        service = build(args.n, Path(tmp))
        engine = service.engine

        figures: dict[str, Callable[[int], object]] = {
            "apply (one row)": lambda i: engine.apply(
                [Delta("cap:servers", (f"new{i}", "h1"), +1)]),
            "simulate update": lambda i: simulate(
                service, "cap", "error(h)", f'servers+("new{i}", "h1")'),
            "simulate action": lambda i: simulate(
                service, "cap", "error(h)", f'boot("new{i}", "h1")'),
            "admission (one row)": lambda i: admit(
                service, "cap", {"insert": [{"table": "servers", "row": [f"new{i}", "h1"]}]}),
            "re-evaluation": lambda i: engine.load_policy(
                f"copy{i}", "\n".join(r.replace("servers(", "cap:servers(")
                                      .replace("host(", "cap:host(") for r in POLICY)),
        }
        samples: dict[str, list[float]] = {name: [] for name in figures}
        for i in range(args.repeat):  # interleaved: each figure meets the same machine load
            for name, run in figures.items():
                start = time.perf_counter()
                run(i)
                samples[name].append(time.perf_counter() - start)
                if name == "apply (one row)":
                    engine.apply([Delta("cap:servers", (f"new{i}", "h1"), -1)])
                elif name == "re-evaluation":
                    engine.delete_policy(f"copy{i}")
        service.close()
    median = {name: statistics.median(s) for name, s in samples.items()}
    least = {name: min(s) for name, s in samples.items()}
    print(f"state: {args.n:,} servers; {args.repeat} runs each (the minimum is the figure "
          "least disturbed by other load on the machine)")
    print(f"{'':<22} {'median':>10} {'ratio':>8} {'minimum':>12} {'ratio':>8}")
    for name in figures:
        print(f"{name:<22} {median[name] * 1e3:7.3f} ms "
              f"{median[name] / median['apply (one row)']:7.1f}x "
              f"{least[name] * 1e3:9.3f} ms {least[name] / least['apply (one row)']:7.1f}x")


if __name__ == "__main__":
    main()
