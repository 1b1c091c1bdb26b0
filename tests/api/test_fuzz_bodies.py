"""A fuzzer of request bodies: random and mutated JSON against every POST and PUT route.

Bodies are the committed seeds (tests/api/corpus/*.json), mutated (a value replaced by any
JSON value, a field added or removed, the body wrapped in deep nesting), random JSON, and
raw bytes no JSON reader should trust (nesting 100k deep, 5,000-digit integers, lone and
paired surrogate escapes, NaN, invalid UTF-8, cut-off text). Every answer must be below 500
and, for an error, Congress's error body: no 5xx, no uncaught exception.

Reproducible and bounded: ``derandomize=True``, no deadline, ``CHARTER_FUZZ_EXAMPLES``
examples (default 250). The only timing check is a 10 s bound per request, which only a
stall breaks.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st

from charter.api.app import create_app
from tests.api.walk import Seed, build_world, corpus, fill

EXAMPLES = int(os.environ.get("CHARTER_FUZZ_EXAMPLES", "250"))
STALL_SECONDS = 10.0
SEEDS = corpus()
WRITES = {(s.method, s.path) for s in SEEDS}

# ---------------------------------------------------------------- strategies

text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "x" * 300, "p(1)", "error(x)", "inv:servers", "a:b", "ops",
                     "\x00", "é", "\U0001F600", "\u202e", "classification", "action",
                     "p(x) :- q(x,", "execute[inv:servers.pause(x)] :- error(x)",
                     "dry-run", "enforce", "push", "nonrecursive", "-1", "1e999"]),
)
integers = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 10**99, -(10**99)]))
scalars = st.one_of(st.none(), st.booleans(), integers,
                    st.floats(allow_nan=False, allow_infinity=False), text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i))


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    out = list(value)
    out[head] = _replace(out[head], rest, new)
    return out


@st.composite
def mutated(draw, seed: Seed) -> bytes:
    body = draw(st.sampled_from(seed.bodies))
    kind = draw(st.sampled_from(["replace", "add", "remove", "nest", "retype"]))
    if kind == "replace":
        path = draw(st.sampled_from(list(_paths(body))))
        body = _replace(body, path, draw(json_values))
    elif kind == "add" and isinstance(body, dict):
        body = {**body, draw(text): draw(json_values)}
    elif kind == "remove" and isinstance(body, dict) and body:
        key = draw(st.sampled_from(sorted(body)))
        body = {k: v for k, v in body.items() if k != key}
    elif kind == "nest":
        depth = draw(st.integers(1, 200))
        path = draw(st.sampled_from(list(_paths(body))))
        inner: Any = draw(scalars)
        for _ in range(depth):
            inner = [inner]
        body = _replace(body, path, inner)
    else:
        body = draw(st.sampled_from([[body], json.dumps(body), None, 1, True]))
    return json.dumps(body).encode()


raw_bodies = st.sampled_from([
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    b'{"name": ' + b"9" * 5000 + b"}",
    b"[[" + b"1" * 5000 + b"]]",
    b'{"rule": "ok2(1)", "comment": "\\ud800"}',
    b'{"name": "\\udfff"}',
    b'[["\\ud800", 1]]',
    b'{"name": "pair\\ud83d\\ude00"}',
    b'{"name": "p", "description": NaN}',
    b'[[NaN, Infinity, -Infinity]]',
    b'{"row": [NaN]}',
    b"\xff\xfe\xfd",
    b'{"name": "\xc3"}',
    b'{"name": "p"',
    b"",
    b"null",
    b'"just text"',
    b"{}",
    b"[]",
    b'{"name": "p", "name": "q"}',
    b'{"__proto__": {"x": 1}}',
])


@st.composite
def requests(draw) -> tuple[Seed, bytes]:
    seed = draw(st.sampled_from(SEEDS))
    body = draw(st.one_of(mutated(seed), json_values.map(lambda v: json.dumps(v).encode()),
                          raw_bodies))
    return seed, body


# ---------------------------------------------------------------- the test


@pytest.fixture
def api(service, settings) -> Iterator[TestClient]:
    with TestClient(create_app(service, settings), raise_server_exceptions=False) as client:
        build_world(client)
        yield client


def test_the_corpus_covers_every_post_and_put_route(api):
    doc = api.get("/openapi.json").json()
    writes = {(m.upper(), p) for p, item in doc["paths"].items() for m in item
              if m in ("post", "put")}
    assert writes == WRITES


def test_no_body_makes_a_server_error(api):
    seen: dict[int, int] = {}

    @hypothesis.given(request=requests())
    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                         database=None, phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    def fuzz(request: tuple[Seed, bytes]) -> None:
        seed, body = request
        start = time.monotonic()
        r = api.request(seed.method, fill(seed.path), params=seed.query, content=body,
                        headers={"content-type": "application/json"})
        assert time.monotonic() - start < STALL_SECONDS, "the request stalled"
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        label = f"{seed.method} {seed.path} {seed.query} {body[:200]!r}"
        assert r.status_code < 500, (label, r.text)
        if r.status_code >= 400:
            error = r.json()["error"]
            assert set(error) == {"message", "error_code", "error_data"}, (label, r.text)
            assert error["message"] and "Traceback" not in r.text, (label, r.text)

    fuzz()
    assert seen.get(400, 0) > EXAMPLES // 4  # the fuzzer reached the checks
    # the store still answers, and what the fuzzer left there reads back
    for path in ("/v1/policies", "/v1/librarypolicies", "/v1/data-sources",
                 "/v1/policies/ops/rules"):
        assert api.get(path).status_code == 200
