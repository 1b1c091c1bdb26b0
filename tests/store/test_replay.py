"""The replay of a pushed table's log (store/replay.py) against the plainest model of the
engine's set semantics: a dict of rows, deletions popped, insertions added, entry by entry.
Values chosen to collide (1, 1.0 and True are one value; 0, 0.0 and False another), so
which object a row keeps, and where, is checked too."""

from __future__ import annotations

import random

import pytest

from charter.store import push
from charter.store.blocks import encode_block
from charter.store.replay import replay

VALUES = [0, 1, 1.0, True, False, 0.0, "1", "a", None, 2, 2.5]


def model(base: list[tuple], log: list[tuple[list[tuple], list[tuple]]]) -> list[tuple]:
    current = dict.fromkeys(base)
    for inserted, deleted in log:
        for row in deleted:
            current.pop(row, None)
        current.update(dict.fromkeys(inserted))
    return list(current)


def typed(rows: list[tuple]) -> list[list[tuple]]:
    return [[(type(v), v) for v in row] for row in rows]


def random_case(rng: random.Random) -> tuple[list[tuple], list[tuple[list[tuple], list[tuple]]]]:
    def row() -> tuple:
        return (rng.choice(VALUES), rng.choice(VALUES))

    base = list(dict.fromkeys(row() for _ in range(rng.randint(0, 40))))
    log = [([row() for _ in range(rng.randint(0, 8))], [row() for _ in range(rng.randint(0, 8))])
           for _ in range(rng.randint(0, 6))]  # fmt: skip
    return base, log


@pytest.mark.parametrize("seed", range(300))
def test_replay_and_compaction_equal_the_model(seed: int, monkeypatch):
    rng = random.Random(seed)
    base, log = random_case(rng)
    want = model(base, log)
    size = rng.choice([1, 3, 64])
    blocks = [encode_block(base[i : i + size]) for i in range(0, len(base), size)]
    entries = [(encode_block(ins), encode_block(dels)) for ins, dels in log]
    got, named = replay(blocks, entries)
    assert typed(got) == typed(want)
    assert named == sum(len(ins) + len(dels) for ins, dels in log)
    monkeypatch.setattr(push, "CHUNK_ROWS", rng.choice([1, 2, 7, 100]))
    compacted, count, folded = push._compacted(blocks, entries)
    assert count == len(want) and folded == named
    assert typed(replay(compacted, [])[0]) == typed(want)
