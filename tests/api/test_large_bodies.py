"""At most two large request bodies are read and held at once: a 100k-row push is tens of
megabytes of Python lists while it waits for the service's lock, and sixteen of them at once
held half a gigabyte. The rest wait before reading theirs; all are then answered."""

from __future__ import annotations

import threading
import time

import charter.api.body as body_module
from charter.api.deps import LARGE_BODIES, LARGE_BODY_BYTES


def test_large_bodies_are_held_two_at_a_time(client, monkeypatch):
    assert client.post("/v1/data-sources", json={
        "name": "inv", "driver": "push", "config": {"tables": {"t": ["id", "name"]}}}
    ).status_code == 201
    rows = [[i, "x" * 40] for i in range(LARGE_BODY_BYTES // 40)]
    parsing = []
    real = body_module.load_json

    def counted(raw, where):
        parsing.append(len(raw))
        return real(raw, where)

    monkeypatch.setattr(body_module, "load_json", counted)
    service = client.app.state.service
    answers: list[int] = []
    with service.lock:  # every push waits for the lock, holding its parsed body
        threads = [threading.Thread(target=lambda: answers.append(client.put(
            "/v1/data-sources/inv/tables/t/rows", json=rows).status_code)) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(parsing) < LARGE_BODIES:
            assert time.monotonic() < deadline, "the first large bodies were never read"
            time.sleep(0.05)
        time.sleep(1.0)  # the others would have been read by now if nothing held them
        assert len(parsing) == LARGE_BODIES
    for t in threads:
        t.join(120)
    assert answers == [200] * 4
    assert len(parsing) == 4 and min(parsing) >= LARGE_BODY_BYTES
