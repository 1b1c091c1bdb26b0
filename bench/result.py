"""What one engine run reports: timings and the (count, checksum) of each derived table."""

from __future__ import annotations

from dataclasses import dataclass, field

#: ``{"p1": (rows, sum of ids), ...}``: the sum catches two different sets of equal size.
Counts = dict[str, tuple[int, int]]


@dataclass
class RunResult:
    """One load + full evaluation followed by U1 and U2, on a fresh engine."""

    load_eval_s: float
    update_s: dict[str, float] = field(default_factory=dict)
    #: Phase ("full", "U1", "U2") -> counts after that phase.
    counts: dict[str, Counts] = field(default_factory=dict)

    def counts_json(self) -> dict[str, dict[str, list[int]]]:
        """The counts as JSON-ready lists."""
        return {
            phase: {name: list(value) for name, value in c.items()}
            for phase, c in self.counts.items()
        }


def checksum(rows: set[tuple[int, ...]] | frozenset[tuple[int, ...]]) -> tuple[int, int]:
    """(number of rows, sum of first columns) of a unary result table."""
    return len(rows), sum(r[0] for r in rows)
