"""The test Keystone (tests/realservices/keystone.py) answers concurrent requests.

The Keystone tests send token requests side by side (Charter's validators, the keystone
driver, the tests' own admin calls). On SQLite, Keystone answered some of them with a 500
("database is locked", from its own writes) and a test failed now and then; on the
PostgreSQL it runs on now, every answer must be a 2xx, however many come at once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.realservices.keystone import KeystoneServer

pytestmark = pytest.mark.keystone

THREADS = 16
ROUNDS = 3


def _password_auth(user: str, password: str, project: str) -> dict:
    return {"auth": {
        "identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}},
    }}


def test_concurrent_token_requests_all_succeed(keystone: KeystoneServer):
    """16 threads at once, a few rounds: each issues a token by password (the login that
    writes), validates it, and has the admin validate another thread's (as Charter's
    validators do); every answer must be a 2xx."""
    admin = keystone.admin_token
    keystone.ensure_project("concurrency")
    keystone.ensure_role("member")
    with ThreadPoolExecutor(THREADS) as pool:  # (creating them is concurrent writes too)
        users = list(pool.map(
            lambda n: keystone.create_user(f"concurrent-{n}", f"pw-{n}", "concurrency"),
            range(THREADS)))
    url = keystone.auth_url + "/auth/tokens"
    tokens: list[str | None] = [None] * THREADS
    # (thread, request, status, body); status 0: no answer (uwsgi closes the connection
    # without one when Keystone's code raises, as it did for "database is locked")
    answers: list[tuple[int, str, int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def send(n: int, what: str, http: httpx.Client, method: str,
             **kwargs: Any) -> httpx.Response | None:
        try:
            r = http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            answer, r = (n, what, 0, repr(exc)), None
        else:
            answer = (n, what, r.status_code, r.text[:500])
        with lock:
            answers.append(answer)
        return r

    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:  # the others stop at the barrier instead of waiting
            errors.append(exc)
            barrier.abort()

    def work(n: int) -> None:
        user = users[n]
        with httpx.Client(timeout=60) as http:
            for _ in range(ROUNDS):
                barrier.wait()
                r = send(n, "issue (password)", http, "POST",
                         json=_password_auth(user["name"], user["password"], "concurrency"))
                token = r.headers.get("X-Subject-Token") if r is not None else None
                tokens[n] = token
                barrier.wait()
                other = tokens[(n + 1) % THREADS]
                for auth, subject in ((token, token), (admin, other)):
                    send(n, "validate", http, "GET",
                         headers={"X-Auth-Token": auth or "", "X-Subject-Token": subject or ""})

    threads = [threading.Thread(target=worker, args=(n,), name=f"ks-{n}")
               for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert len(answers) == THREADS * ROUNDS * 3
    failed = [a for a in answers if not 200 <= a[2] < 300]
    assert not failed, (
        f"{len(failed)} of {len(answers)} concurrent requests failed, e.g. "
        f"{failed[:3]}\n{keystone.logs()}")
