"""Random PUTs and PATCHes of a push table equal one PUT of the final contents, and the store
holds exactly what the engine does (what a restart would restore), value types included.

Values mix 1, 1.0 and True (one value to a set, three to JSON) so that the store's row keys
must follow the engine's set semantics.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.service.service import Service
from charter.store import Store

KEY = Store.generate_key()

VALUES = st.sampled_from(["a", "b", "1", 1, 1.0, True, 2, 2.5, None, False, 0])
ROW = st.tuples(VALUES, VALUES)
ROWS = st.lists(ROW, max_size=6)
PUT = st.tuples(st.just("put"), ROWS)
PATCH = st.tuples(st.just("patch"), ROWS, ROWS)
STEPS = st.lists(st.one_of(PUT, PATCH), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def services(tmp_path_factory) -> Iterator[tuple[Service, Service]]:
    """Two services, each over its own SQLite store: one patched, one PUT to."""
    opened = []
    for name in ("patched", "put"):
        path = tmp_path_factory.mktemp(name) / "charter.db"
        service = Service(Store(f"sqlite:///{path}", secret_key=KEY))
        service.start()
        service.datasources.create({"name": "inv", "driver": "push"})
        opened.append(service)
    yield opened[0], opened[1]
    for service in opened:
        service.close()


def typed(rows) -> set[tuple]:
    """Rows with each value's type beside it: ``1`` and ``True`` are told apart."""
    def plain(v):
        return v.item() if isinstance(v, np.generic) else v

    return {tuple((type(plain(v)), plain(v)) for v in r) for r in rows}


def as_json(rows) -> list[list]:
    return [list(r) for r in rows]


TABLES = itertools.count()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_puts_and_patches_equal_one_put_of_the_result(services, steps):
    patched, put = services
    table = f"t{next(TABLES)}"
    model: dict[tuple, tuple] = {}  # a set of rows, keeping the first of equal rows
    for step in steps:
        if step[0] == "put":
            rows = step[1]
            model = {r: model.get(r, r) for r in dict.fromkeys(rows)}
            patched.datasources.replace_rows("inv", table, as_json(rows))
            continue
        inserted, deleted = step[1], [r for r in step[2] if r not in step[1]]
        answer = patched.datasources.patch_rows(
            "inv", table, {"insert": as_json(inserted), "delete": as_json(deleted)})
        new = [r for r in dict.fromkeys(inserted) if r not in model]
        gone = [r for r in dict.fromkeys(deleted) if r in model]
        assert answer == {"inserted": len(new), "deleted": len(gone), "unchanged":
                          len(set(inserted)) + len(set(deleted)) - len(new) - len(gone)}
        model.update((r, r) for r in new)
        for r in gone:
            del model[r]
    qualified = f"inv:{table}"
    engine_rows = patched.engine.rows(qualified) if patched.engine.has_table(qualified) else set()
    assert engine_rows == set(model)
    stored = patched.store.load_tables(patched.datasources.get("inv").record.id)[table]
    assert len(stored) == len(model)
    assert typed(stored) == typed(engine_rows) == typed(model.values())

    put.datasources.replace_rows("inv", table, as_json(model.values()))
    other = put.engine.rows(qualified) if put.engine.has_table(qualified) else set()
    assert typed(other) == typed(engine_rows)
