"""SIGKILL in the middle of a burst of rule creations: every acknowledged rule survives,
and nothing half-written appears."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from charter.lang.parser import parse_rule
from tests.realservices.charter_server import CharterServer

pytestmark = pytest.mark.slow


def test_acknowledged_rules_survive_sigkill(tmp_path):
    server = CharterServer(tmp_path).start()
    acked: dict[str, str] = {}  # rule id -> text
    sent: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def burst(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            i = 0
            while not stop.is_set():
                text = f"p{worker}_{i}(x) :- q(x, {i}), not r{worker}(x)"
                i += 1
                with lock:
                    sent.add(text)
                try:
                    r = http.post("/v1/policies/classification/rules",
                                  json={"rule": text, "comment": f"w{worker}"})
                except httpx.TransportError:
                    return  # the server died under us: this one was not acknowledged
                if r.status_code == 201:
                    with lock:
                        acked[r.json()["id"]] = text

    workers = [threading.Thread(target=burst, args=(w,)) for w in range(3)]
    try:
        for t in workers:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        stop.set()
        for t in workers:
            t.join(10)
        assert len(acked) >= 60

        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as http:
            rules = http.get("/v1/policies/classification/rules").json()["results"]
            stored = {r["id"]: r for r in rules}
            # every acknowledged rule is there, exactly as written
            for rule_id, text in acked.items():
                assert stored[rule_id]["rule"] == text
            # nothing half-written: each stored rule is one that was sent, whole, and loaded
            for r in rules:
                assert r["rule"] in sent
                assert r["comment"].startswith("w")
                parse_rule(r["rule"])
                status = http.get(f"/v1/policies/classification/rules/{r['id']}/status")
                assert status.json()["loaded"] is True
            # at most one request per worker was in flight when the process died
            assert len(rules) - len(acked) <= len(workers)
            # and the engine holds them: a table of an acknowledged rule answers
            any_text = next(iter(acked.values()))
            table = any_text.split("(")[0]
            assert http.get(f"/v1/policies/classification/tables/{table}/rows"
                            ).status_code == 200
    finally:
        stop.set()
        server.stop()
