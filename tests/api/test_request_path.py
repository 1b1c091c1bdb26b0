"""The request path's turns: where authentication runs, and the PUTs of a datasource."""

from __future__ import annotations

import threading
from contextlib import nullcontext

import pytest
from fastapi.testclient import TestClient

from charter.api.app import create_app
from charter.api.auth import ANONYMOUS, Authenticator, Principal
from charter.api.datasources import push_gate


class Recording(Authenticator):
    """Everyone is admin; remembers the thread that authenticated each request."""

    strategy = "noauth"

    def __init__(self, blocking: bool) -> None:
        self.blocking = blocking
        self.threads: list[threading.Thread] = []

    def authenticate_token(self, token: str | None) -> Principal:
        self.threads.append(threading.current_thread())
        return ANONYMOUS


def loop_thread(client: TestClient) -> threading.Thread:
    """The thread the app's event loop runs in (a TestClient runs it in one of its own)."""
    async def which() -> threading.Thread:
        return threading.current_thread()
    return client.portal.call(which)


@pytest.mark.parametrize("blocking", [False, True])
def test_authentication_runs_off_the_loop_only_when_it_may_block(service, settings, blocking):
    auth = Recording(blocking)
    with TestClient(create_app(service, settings, auth)) as client:
        assert client.get("/v1/policies").status_code == 200
        loop = loop_thread(client)
    assert len(auth.threads) == 1
    assert (auth.threads[0] is loop) is not blocking


def test_pushes_of_one_datasource_share_a_gate_by_id_or_name(client):
    made = client.post("/v1/data-sources", json={"name": "inv", "driver": "push"})
    assert made.status_code == 201, made.text
    other = client.post("/v1/data-sources", json={"name": "other", "driver": "push"})
    assert other.status_code == 201, other.text
    service = client.app.state.service

    class Req:
        app = client.app

    by_name = push_gate(Req, service.datasources.find("inv"))
    by_id = push_gate(Req, service.datasources.find(made.json()["id"]))
    assert by_name is by_id
    assert isinstance(by_name, type(threading.Lock()))
    assert push_gate(Req, service.datasources.find("other")) is not by_name
    assert isinstance(push_gate(Req, service.datasources.find("nope")), nullcontext)
    # the gate is free after a push, whatever its answer
    assert client.put("/v1/data-sources/inv/tables/t/rows", json=[[1, "a"]]).status_code == 200
    assert client.put("/v1/data-sources/inv/tables/t/rows", json=[[1, [2]]]).status_code == 400
    assert not by_name.locked()
    assert client.get("/v1/data-sources/inv/tables/t/rows").json() == {
        "results": [{"data": [1, "a"]}]}
