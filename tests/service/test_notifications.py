"""Webhook notifications against a real HTTP receiver on 127.0.0.1: each violation's
appearance and clearing reach it exactly once, in order, retried through failures, also
across restarts of the service and a SIGKILL of a real ``charter serve``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict

import httpx
import pytest

from charter.service.config import NotificationSettings, WebhookSettings
from charter.service.service import Service
from tests.enforce import conftest as enforce_conftest
from tests.enforce.conftest import wait_for
from tests.enforce.ledger import Ledger
from tests.enforce.receiver import Receiver
from tests.realservices.charter_server import CharterServer

make_service = enforce_conftest.make_service
ledger = enforce_conftest.ledger

ERROR_RULE = {"rule": 'error(x) :- mon:alarms(x, "high")'}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def settings(*hooks: dict, **more) -> NotificationSettings:
    return NotificationSettings(webhooks=[WebhookSettings(**h) for h in hooks],
                                **({"backoff_seconds": 0.05, "max_backoff_seconds": 0.2} | more))


def monitored(svc: Service, rules: list[dict] | None = None) -> None:
    svc.datasources.create({"name": "mon", "driver": "push",
                            "config": {"tables": {"alarms": ["id", "severity"]}}})
    svc.policies.create("ops", rules=rules or [ERROR_RULE])


def push(svc: Service, rows: list[list]) -> None:
    svc.datasources.replace_rows("mon", "alarms", rows)


def events(bodies: list[dict]) -> list[tuple[str, list]]:
    return [(b["event"], b["row"]) for b in bodies]


def still(receiver: Receiver, count: int, wait: float = 0.5) -> None:
    """Nothing more arrives (a negative check needs some time to pass)."""
    time.sleep(wait)
    assert len(receiver.delivered) == count, receiver.delivered


def test_appear_and_clear_are_each_delivered_once(make_service, receiver):
    svc = make_service(notifications=settings({"url": receiver.url}))
    monitored(svc)
    push(svc, [["a1", "high"], ["a2", "low"]])
    (appeared,) = receiver.wait_for(1)
    (first_seen,) = [seen for _, _, seen in svc.violations.current("ops")]
    assert appeared == {"event": "violation.appeared", "id": appeared["id"], "policy": "ops",
                        "table": "error", "row": ["a1"], "first_seen": first_seen.isoformat(),
                        "resolved_at": None}
    (delivery,) = receiver.accepted()
    assert delivery.headers["X-Charter-Event-Id"] == appeared["id"]
    assert delivery.headers["X-Charter-Event"] == "violation.appeared"
    assert delivery.headers["Content-Type"] == "application/json"

    push(svc, [["a1", "high"], ["a2", "low"], ["a3", "low"]])  # no change to the violations
    push(svc, [["a2", "low"]])
    cleared = receiver.wait_for(2)[1]
    assert cleared["event"] == "violation.cleared" and cleared["id"] != appeared["id"]
    assert cleared["first_seen"] == appeared["first_seen"]
    assert cleared["resolved_at"] >= cleared["first_seen"]
    still(receiver, 2)
    assert [n.status for n in svc.store.notifications()] == ["delivered", "delivered"]


def test_a_failing_receiver_is_retried_until_it_takes_the_event_once(make_service, receiver):
    receiver.fail_first = 3
    svc = make_service(notifications=settings({"url": receiver.url}))
    monitored(svc)
    push(svc, [["a1", "high"]])
    (body,) = receiver.wait_for(1)
    ids = {d.headers["X-Charter-Event-Id"] for d in receiver.requests}
    assert len(receiver.requests) == 4 and ids == {body["id"]}  # one event, four attempts
    wait_for(lambda: svc.store.notifications()[0].status == "delivered")
    (rec,) = svc.store.notifications()
    assert rec.attempts == 4
    assert [e["error"] for e in rec.errors] == ["HTTP 500: receiver told to fail"] * 3
    still(receiver, 1)


def test_a_webhook_gets_its_events_in_order_through_retries(make_service, receiver):
    receiver.failing = True
    svc = make_service(notifications=settings({"url": receiver.url}))
    monitored(svc)
    push(svc, [["a1", "high"]])
    push(svc, [])
    push(svc, [["a1", "high"]])
    wait_for(lambda: len(receiver.requests) >= 3)
    assert {d.body["event"] for d in receiver.requests} == {"violation.appeared"}
    receiver.failing = False
    bodies = receiver.wait_for(3)
    assert events(bodies) == [("violation.appeared", ["a1"]), ("violation.cleared", ["a1"]),
                              ("violation.appeared", ["a1"])]
    still(receiver, 3)


def test_delivery_is_given_up_after_max_attempts(make_service, receiver):
    receiver.failing = True
    svc = make_service(notifications=settings({"url": receiver.url}, max_attempts=3))
    monitored(svc)
    push(svc, [["a1", "high"]])
    wait_for(lambda: svc.store.notifications()[0].status == "failed")
    (rec,) = svc.store.notifications()
    assert rec.attempts == 3 and len(rec.errors) == 3
    assert "gave up after 3 attempts" in rec.errors[-1]["error"]
    time.sleep(0.3)
    assert len(receiver.requests) == 3


def test_a_4xx_is_not_retried(make_service, receiver):
    receiver.failing, receiver.status_when_failing = True, 404
    svc = make_service(notifications=settings({"url": receiver.url}))
    monitored(svc)
    push(svc, [["a1", "high"]])
    wait_for(lambda: svc.store.notifications()[0].status == "failed")
    time.sleep(0.3)
    assert len(receiver.requests) == 1
    assert "HTTP 404" in svc.store.notifications()[0].errors[0]["error"]


def test_policy_filter_slack_format_and_secret_headers(make_service, receiver):
    other = Receiver().start()
    try:
        svc = make_service(notifications=settings(
            {"url": other.url, "policies": ["elsewhere"]},
            {"url": receiver.url, "format": "slack", "policies": ["ops"], "name": "chat",
             "headers": {"Authorization": "Bearer s3cret-token"}}))
        monitored(svc)
        push(svc, [["a<1>", "high"]])
        (message,) = receiver.wait_for(1)
        assert message["text"] == "Charter: new violation in policy ops, table error: a<1>"
        section, context = message["blocks"]
        assert section["type"] == "section" and "a&lt;1&gt;" in section["text"]["text"]
        assert context["type"] == "context" and "first seen" in context["elements"][0]["text"]
        assert receiver.accepted()[0].headers["Authorization"] == "Bearer s3cret-token"
        time.sleep(0.3)
        assert other.requests == []
        (rec,) = svc.store.notifications()
        assert rec.webhook == "chat"
        stored = json.dumps(asdict(rec), default=str)
        assert "s3cret-token" not in stored and receiver.url not in stored
    finally:
        other.stop()


def test_deleting_a_policy_announces_its_violations_cleared(make_service, receiver):
    svc = make_service(notifications=settings({"url": receiver.url}))
    monitored(svc)
    push(svc, [["a1", "high"]])
    receiver.wait_for(1)
    svc.policies.delete("ops")
    assert events(receiver.wait_for(2)) == [("violation.appeared", ["a1"]),
                                            ("violation.cleared", ["a1"])]
    still(receiver, 2)


# ---------------------------------------------------------------- restarts (in process)


def test_an_open_violation_is_not_announced_again_after_a_restart(make_service, receiver):
    notify = settings({"url": receiver.url})
    svc = make_service(notifications=notify)
    monitored(svc)
    push(svc, [["a1", "high"]])
    receiver.wait_for(1)
    svc.close()
    svc = make_service(notifications=notify)
    still(receiver, 1)
    push(svc, [])
    assert events(receiver.wait_for(2)) == [("violation.appeared", ["a1"]),
                                            ("violation.cleared", ["a1"])]


def test_undelivered_notifications_are_delivered_after_a_restart(make_service, receiver):
    receiver.failing = True
    notify = settings({"url": receiver.url})
    svc = make_service(notifications=notify)
    monitored(svc)
    push(svc, [["a1", "high"]])
    push(svc, [])
    wait_for(lambda: receiver.requests)
    svc.close()
    receiver.failing = False
    make_service(notifications=notify)
    assert events(receiver.wait_for(2)) == [("violation.appeared", ["a1"]),
                                            ("violation.cleared", ["a1"])]
    still(receiver, 2)


def test_a_violation_that_cleared_while_down_is_announced_at_restart(make_service, receiver,
                                                                     ledger: Ledger):
    """Polled data starts empty after a restart: violations wait for the first poll, then
    those still there go on quietly and those gone are announced as cleared."""
    notify = settings({"url": receiver.url})
    svc = make_service(notifications=notify)
    ledger.write([("a", "broken"), ("b", "broken")])
    svc.datasources.create({"name": "src", "driver": "ledger",
                            "config": {"dir": str(ledger.dir), "poll_time": 3600}})
    svc.policies.create("ops", rules=[{"rule": 'error(x) :- src:items(x, "broken")'}])
    svc.datasources.refresh("src")
    first = {tuple(b["row"]): b for b in receiver.wait_for(2)}
    svc.close()

    ledger.write([("a", "ok"), ("b", "broken")])  # "a" is repaired while Charter is down
    svc = make_service(notifications=notify)
    wait_for(lambda: svc.settled)
    cleared = receiver.wait_for(3)[2]
    assert (cleared["event"], cleared["row"]) == ("violation.cleared", ["a"])
    assert cleared["first_seen"] == first[("a",)]["first_seen"]
    still(receiver, 3)
    (current,) = svc.violations.current("ops")
    assert current[1] == ("b",) and current[2].isoformat() == first[("b",)]["first_seen"]


# ---------------------------------------------------------------- a real charter serve


def api(server: CharterServer, method: str, path: str, **kwargs) -> dict:
    r = httpx.request(method, server.url + path, timeout=10, **kwargs)
    assert r.status_code < 300, r.text
    return r.json()


@pytest.mark.slow
def test_charter_serve_delivers_each_event_once_across_sigkill_and_restart(tmp_path, receiver):
    config = tmp_path / "charter.toml"
    config.write_text(f"""
[notifications]
backoff_seconds = 0.1
max_backoff_seconds = 0.3
max_attempts = 1000

[[notifications.webhooks]]
url = "{receiver.url}"
name = "test-receiver"
headers = {{ Authorization = "Bearer hook-secret" }}
""")
    data = tmp_path / "data"
    data.mkdir()
    server = CharterServer(data, env={"CHARTER_CONFIG": str(config)})
    receiver.failing = True
    server.start()
    try:
        api(server, "POST", "/v1/data-sources", json={
            "name": "mon", "driver": "push",
            "config": {"tables": {"alarms": ["id", "severity"]}}})
        api(server, "POST", "/v1/policies", json={"name": "ops", "rules": [ERROR_RULE]})
        api(server, "PUT", "/v1/data-sources/mon/tables/alarms/rows", json=[["a1", "high"]])
        wait_for(lambda: len(receiver.requests) >= 2)  # stored and tried: the receiver fails
        event_id = receiver.requests[0].headers["X-Charter-Event-Id"]
        server.kill()  # SIGKILL between the violation and its delivery

        receiver.failing = False
        server.start()
        (body,) = receiver.wait_for(1)
        assert (body["event"], body["row"], body["id"]) == ("violation.appeared", ["a1"],
                                                             event_id)
        assert receiver.accepted()[0].headers["Authorization"] == "Bearer hook-secret"
        outbox = api(server, "GET", "/v1/notifications")["results"]
        assert [(n["status"], n["webhook"]) for n in outbox] == [("delivered", "test-receiver")]
        # at least one failed attempt was recorded before the kill (the one in flight at the
        # kill may not be), then the delivery after the restart
        assert outbox[0]["attempts"] >= 2 and outbox[0]["errors"]

        server.stop()  # the violation is still open: a restart does not announce it again
        server.start()
        still(receiver, 1, wait=1.0)
        api(server, "PUT", "/v1/data-sources/mon/tables/alarms/rows", json=[])
        bodies = receiver.wait_for(2)
        assert (bodies[1]["event"], bodies[1]["row"]) == ("violation.cleared", ["a1"])
        # Killed once the delivery is recorded: nothing is sent again. (Killed between the
        # receiver's 200 and that record, the event would be sent again after the restart
        # with the same X-Charter-Event-Id, for the receiver to drop.)
        wait_for(lambda: all(n["status"] == "delivered"
                             for n in api(server, "GET", "/v1/notifications")["results"]))
        server.kill()
        server.start()
        still(receiver, 2, wait=1.0)
    finally:
        server.stop()
    assert "hook-secret" not in server.log.read_text()


@pytest.mark.slow
def test_charter_serve_takes_webhooks_from_the_environment(tmp_path, receiver):
    hooks = json.dumps([{"url": receiver.url, "format": "slack"}])
    server = CharterServer(tmp_path, env={"CHARTER_NOTIFICATIONS__WEBHOOKS": hooks,
                                          "CHARTER_NOTIFICATIONS__BACKOFF_SECONDS": "0.1"})
    receiver.fail_first = 1
    server.start()
    try:
        api(server, "POST", "/v1/data-sources", json={"name": "mon", "driver": "push"})
        api(server, "POST", "/v1/policies", json={"name": "ops", "rules": [
            {"rule": "error(x) :- mon:alarms(x)"}]})
        api(server, "PUT", "/v1/data-sources/mon/tables/alarms/rows", json=[["a9"]])
        (message,) = receiver.wait_for(1)
        assert message["text"] == "Charter: new violation in policy ops, table error: a9"
        assert len(receiver.requests) == 2
    finally:
        server.stop()


# ---------------------------------------------------------------- configuration


def test_webhook_settings_errors_name_the_key_and_never_echo_the_url(tmp_path, monkeypatch):
    from charter.service.config import ConfigError, load_settings

    monkeypatch.delenv("CHARTER_CONFIG", raising=False)
    config = tmp_path / "charter.toml"
    config.write_text('[[notifications.webhooks]]\nurl = "ftp://secret-host/T0K3N"\n')
    with pytest.raises(ConfigError) as bad:
        load_settings(config)
    message = str(bad.value)
    assert "notifications.webhooks.0.url: must be an http:// or https:// URL" in message
    assert "T0K3N" not in message
    config.write_text('[[notifications.webhooks]]\nurl = "https://a.example/1"\nname = "x"\n'
                      '[[notifications.webhooks]]\nurl = "https://a.example/2"\nname = "x"\n')
    with pytest.raises(ConfigError, match="two webhooks are named 'x'"):
        load_settings(config)
    config.write_text('[[notifications.webhooks]]\nurl = "https://a.example/1"\nformat = "xml"\n')
    with pytest.raises(ConfigError, match="notifications.webhooks.0.format"):
        load_settings(config)


def test_a_webhook_is_named_by_host_and_url_hash_unless_named():
    a = WebhookSettings(url="https://user:pw@hooks.example.org/T0K3N")
    assert a.key.startswith("hooks.example.org-") and "T0K3N" not in a.key
    assert a.key != WebhookSettings(url="https://hooks.example.org/other").key
    assert WebhookSettings(url="https://x.example", name="ops").key == "ops"
