"""Long answers stream (api/streaming.py) and are the same document as before.

The reference for each read is the document its handler built before streaming (a dict
per row, in a list, in a dict) serialized the way FastAPI serialized a handler's dict (its
pydantic JSON path): the streamed bytes must be those bytes, for a few rows (answered
whole, with a length) and for 100k rows (streamed, no length). Errors found before the
first byte keep their status and body.
"""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter

from charter.api import streaming
from charter.api.streaming import CHUNK, json_list
from charter.service.dashboard import ViolationQuery, violation_export

FASTAPI = TypeAdapter(dict)  # what serialized a handler's `-> dict` answer
BIG = 100_000
ODD = ["é中\u2028\x7f\n\"\\", 1e16, 0.1, 1e-7, 2**62, -0.0, None, "x\x01", 2**70, -(2**63)]


def ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response


def streamed(response) -> bool:
    return "content-length" not in response.headers


# ---------------------------------------------------------------- json_list alone


@pytest.mark.parametrize("n", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 7])
def test_json_list_is_the_whole_document_at_every_length(n):
    items = [{"data": (i, f"v{i}", ODD[i % len(ODD)])} for i in range(n)]
    head, tail = {"total": n, "limit": "all"}, {"trace": "t\n"}
    response = json_list(head, "results", iter(items), tail)
    want = FASTAPI.dump_json({**head, "results": items, **tail})
    assert _body(response) == want
    assert streamed(response) == (n > CHUNK)
    assert _body(json_list({}, "results", items)) == FASTAPI.dump_json({"results": items})


def test_a_value_no_utf8_carries_is_escaped_in_a_started_stream():
    items = [{"data": ["ok"]}] * (CHUNK + 1) + [{"data": ["\ud800"]}]
    body = _body(json_list({}, "results", items))
    assert json.loads(body)["results"][-1] == {"data": ["\ud800"]}


def test_an_error_making_the_first_items_is_raised_before_any_answer():
    def items():
        yield {"data": [1]}
        raise RuntimeError("the store went away")

    with pytest.raises(RuntimeError, match="the store went away"):
        json_list({}, "results", items())


def _body(response) -> bytes:
    if not streamed(response):
        return response.body

    async def collect() -> bytes:
        return b"".join([piece async for piece in response.body_iterator])

    import asyncio

    return asyncio.run(collect())


# ---------------------------------------------------------------- through the API


def _push(client, rows: list[list]) -> None:
    ok(client.post("/v1/data-sources", json={
        "name": "inv", "driver": "push",
        "config": {"tables": {"servers": ["id", "host", "n"]}}}), 201)
    ok(client.put("/v1/data-sources/inv/tables/servers/rows", json=rows))
    ok(client.post("/v1/policies", json={"name": "ops", "rules": [
        {"rule": "placed(s, h) :- inv:servers(id=s, host=h)"},
        {"rule": "error(s, h) :- inv:servers(id=s, host=h, n=k), k > 0"}]}), 201)


def _rows(n: int) -> list[list]:
    return [[f"vm{i:06d}", ODD[i % len(ODD)] if i < 50 else f"h{i % 97}", i % 3]
            for i in range(n)]


@pytest.mark.parametrize("n", [40, BIG])
def test_table_rows_are_todays_document_streamed_when_long(client, n):
    _push(client, _rows(n))
    service = client.app.state.service
    answer = ok(client.get("/v1/data-sources/inv/tables/servers/rows"))
    found = service.datasources.rows("inv", "servers")
    assert len(found) == n
    assert answer.content == FASTAPI.dump_json({"results": [{"data": list(r)} for r in found]})
    assert streamed(answer) == (n > CHUNK)

    for trace in (None, "true"):
        params = {"trace": trace} if trace else {}
        answer = ok(client.get("/v1/policies/ops/tables/placed/rows", params=params))
        rows = service.policies.rows("ops", "placed")
        want: dict = {"results": [{"data": list(r)} for r in rows]}
        if trace:
            want["trace"] = json.loads(answer.content)["trace"]
            assert want["trace"].startswith(f"placed: {n} rows\n  derived by rule ")
        assert answer.content == FASTAPI.dump_json(want)
        assert streamed(answer) == (n > CHUNK)


@pytest.mark.parametrize("n", [40, 3 * CHUNK])
def test_violations_are_todays_documents_streamed_when_long(client, n):
    _push(client, _rows(n))
    service = client.app.state.service
    with service.lock:
        current = service.violations.current("ops")
    answer = ok(client.get("/v1/policies/ops/violations"))
    assert answer.content == FASTAPI.dump_json({"results": [
        {"table": t, "row": list(r), "first_seen": seen.isoformat(), "resolved_at": None}
        for t, r, seen in current]})
    errors = sum(1 for t, _, _ in current if t == "error")
    assert streamed(answer) == (len(current) > CHUNK) and errors == n - (n + 2) // 3

    history = service.store.violations("ops", include_resolved=True)
    answer = ok(client.get("/v1/policies/ops/violations", params={"include_resolved": "1"}))
    assert answer.content == FASTAPI.dump_json({"results": [
        {"table": v.table, "row": list(v.row), "first_seen": v.first_seen.isoformat(),
         "resolved_at": v.resolved_at.isoformat() if v.resolved_at else None}
        for v in history]})

    for params in ({"limit": "all", "sort": "row"}, {"limit": "7", "offset": "3"}):
        answer = ok(client.get("/v1/violations", params=params))
        query = ViolationQuery(sort="row" if "sort" in params else "first_seen",
                               descending="sort" not in params,
                               offset=int(params.get("offset", 0)),
                               limit=None if params["limit"] == "all" else int(params["limit"]))
        found = violation_export(service, query)
        want = {"total": found.total, "offset": query.offset,
                "limit": params["limit"] if params["limit"] == "all" else query.limit,
                "violations": [v.to_json() for v in found.violations]}
        assert json.loads(answer.content) == json.loads(json.dumps(want))
        assert len(want["violations"]) == (errors if params["limit"] == "all" else 7)
        assert streamed(answer) == (params["limit"] == "all" and errors > CHUNK)


def test_errors_before_the_first_byte_keep_their_status(client):
    _push(client, _rows(3 * CHUNK))
    for path, status in (("/v1/data-sources/inv/tables/nosuch/rows", 404),
                         ("/v1/data-sources/nosuch/tables/servers/rows", 404),
                         ("/v1/policies/nosuch/tables/placed/rows", 404),
                         ("/v1/policies/ops/tables/nosuch/rows", 404),
                         ("/v1/policies/nosuch/violations", 404)):
        answer = client.get(path)
        assert answer.status_code == status, (path, answer.text)
        assert "nosuch" in answer.json()["error"]["message"]
    answer = client.get("/v1/violations", params={"limit": "bad"})
    assert answer.status_code == 400 and "limit" in answer.text


def test_chunk_size_is_what_decides_streaming(client, monkeypatch):
    _push(client, _rows(30))
    monkeypatch.setattr(streaming, "CHUNK", 7)
    answer = ok(client.get("/v1/data-sources/inv/tables/servers/rows"))
    assert streamed(answer)
    found = client.app.state.service.datasources.rows("inv", "servers")
    assert answer.content == FASTAPI.dump_json({"results": [{"data": list(r)} for r in found]})
