"""Webhook notifications: a violation appeared, a violation cleared; each told exactly once.

The announcement of a change is written to an outbox in the same store transaction as the
change to the violation history (:meth:`Store.record_violations`), so neither exists
without the other, whatever kills the process. A background sender delivers the outbox in
order, per webhook, retrying with exponential backoff; each delivery carries the event's
id in ``X-Charter-Event-Id``, so a receiver that got an event whose acknowledgement was
lost (the one case in which it is sent twice) can drop the copy.

>>> from datetime import UTC, datetime
>>> from charter.store.records import ViolationRecord
>>> v = ViolationRecord("p", "error", ("vm-1", 3), datetime(2025, 1, 1, tzinfo=UTC), None)
>>> event = violation_event(v, "e-1")
>>> event["event"], event["row"], event["resolved_at"]
('violation.appeared', ['vm-1', 3], None)
>>> slack_message(event)["text"]
'Charter: new violation in policy p, table error: vm-1, 3'
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta

import httpx

import charter
from charter.enforce.worker import Loop, backoff_delay
from charter.service.config import NotificationSettings, WebhookSettings
from charter.service.service import utcnow
from charter.store.records import NotificationRecord, ViolationRecord
from charter.store.store import Outbox

log = logging.getLogger(__name__)

APPEARED = "violation.appeared"
CLEARED = "violation.cleared"
EVENT_ID_HEADER = "X-Charter-Event-Id"
RETRY_STATUSES = frozenset({408, 425, 429})  # 4xx that mean "later", not "never"
ERROR_CHARS = 500



def violation_event(v: ViolationRecord, event_id: str) -> dict:
    """The JSON body of a notification (``format = "json"``)."""
    return {
        "event": CLEARED if v.resolved_at is not None else APPEARED,
        "id": event_id,
        "policy": v.policy,
        "table": v.table,
        "row": list(v.row),
        "first_seen": v.first_seen.isoformat(),
        "resolved_at": v.resolved_at.isoformat() if v.resolved_at is not None else None,
    }


def _mrkdwn(text: str) -> str:
    """Slack's three escapes; anything else in the text is shown as is."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event: dict) -> dict:
    """An incoming-webhook message (``format = "slack"``): ``text`` plus Block Kit blocks."""
    row = ", ".join(str(v) for v in event["row"])
    where = f"policy {event['policy']}, table {event['table']}"
    if event["event"] == APPEARED:
        text = f"Charter: new violation in {where}: {row}"
        icon, context = ":rotating_light:", f"first seen {event['first_seen']}"
    else:
        text = f"Charter: violation cleared in {where}: {row}"
        icon = ":white_check_mark:"
        context = f"first seen {event['first_seen']}, cleared {event['resolved_at']}"
    return {
        "text": text,
        "blocks": [
            {"type": "section",
             "text": {"type": "mrkdwn", "text": f"{icon} {_mrkdwn(text)}"}},
            {"type": "context",
             "elements": [{"type": "mrkdwn", "text": _mrkdwn(f"{context} · event {event['id']}")}]},
        ],
    }


class Notifier:
    """The outbox's writer (called by the violation tracker) and its background sender."""

    def __init__(self, store, settings: NotificationSettings) -> None:
        self.store = store
        self.settings = settings
        self.webhooks: dict[str, WebhookSettings] = {w.key: w for w in settings.webhooks}
        self.loop = Loop("charter-notifications", self.work)
        self._http: httpx.Client | None = None
        self.delivered = 0
        self.failed = 0

    def start(self) -> None:
        if self.webhooks or self._has_pending():
            self._http = httpx.Client(timeout=self.settings.timeout_seconds,
                                      follow_redirects=False)
            self.loop.start()

    def _has_pending(self) -> bool:
        return bool(self.store.notifications(status="pending", limit=1))

    def wake(self) -> None:
        self.loop.wake()

    def close(self) -> None:
        self.loop.stop()
        if self._http is not None:
            self._http.close()

    # ------------------------------------------------------------ writing the outbox

    def outbox(self, policy: str) -> Outbox | None:
        """What :meth:`Store.record_violations` calls for ``policy``'s changes; None when no
        webhook wants them."""
        wanted = [w.key for w in self.webhooks.values() if w.wants(policy)]
        if not wanted:
            return None

        def announce(changes: list[ViolationRecord]) -> Iterable[NotificationRecord]:
            now = utcnow()
            for change in changes:
                event_id = str(uuid.uuid4())
                event = violation_event(change, event_id)
                for key in wanted:
                    yield NotificationRecord(
                        id=0, event_id=event_id, webhook=key, event=event["event"],
                        policy=change.policy, payload=event, status="pending", attempts=0,
                        created_at=now, next_attempt_at=now)

        return announce

    # ------------------------------------------------------------ sending

    def work(self) -> float | None:
        due, later = self.store.due_notifications(utcnow())
        for rec in due:
            if self.loop.stopping:
                return None
            self.deliver(rec)
        if due:
            return 0.0  # each webhook's next entry may be due at once
        if later is None:
            return None
        return max(0.0, (later - utcnow()).total_seconds())

    def deliver(self, rec: NotificationRecord) -> None:
        """One attempt at one delivery, its outcome recorded in the outbox."""
        attempt = rec.attempts + 1
        webhook = self.webhooks.get(rec.webhook)
        if webhook is None:
            self._finish(rec, "failed", attempt, f"webhook {rec.webhook!r} is no longer "
                         "configured (notifications.webhooks); not delivered")
            return
        body = slack_message(rec.payload) if webhook.format == "slack" else rec.payload
        headers = {k: v.get_secret_value() for k, v in webhook.headers.items()}
        headers |= {EVENT_ID_HEADER: rec.event_id, "X-Charter-Event": rec.event,
                    "User-Agent": f"charter/{getattr(charter, '__version__', '0')}"}
        assert self._http is not None
        try:
            answer = self._http.post(webhook.url.get_secret_value(), json=body,
                                     headers=headers)
        except httpx.HTTPError as exc:
            self._retry(rec, attempt, f"{type(exc).__name__}: {exc}".replace(
                webhook.url.get_secret_value(), webhook.key))
            return
        if answer.is_success:
            self._finish(rec, "delivered", attempt, None)
            return
        error = f"HTTP {answer.status_code}: {answer.text[:ERROR_CHARS]}"
        if answer.status_code >= 500 or answer.status_code in RETRY_STATUSES:
            self._retry(rec, attempt, error)
        else:
            self._finish(rec, "failed", attempt, error + " (a 4xx is not retried)")

    def _retry(self, rec: NotificationRecord, attempt: int, error: str) -> None:
        if attempt >= self.settings.max_attempts:
            self._finish(rec, "failed", attempt,
                         f"{error} (gave up after {attempt} attempts)")
            return
        delay = backoff_delay(attempt, self.settings.backoff_seconds,
                              self.settings.max_backoff_seconds)
        now = utcnow()
        self.store.finish_notification(rec.id, status="pending", attempts=attempt, at=now,
                                       next_attempt_at=now + timedelta(seconds=delay),
                                       error=error)
        log.warning("notification %s (%s %s) to webhook %s, attempt %d failed: %s; next in "
                    "%.1fs", rec.event_id, rec.event, rec.policy, rec.webhook, attempt, error,
                    delay)

    def _finish(self, rec: NotificationRecord, status: str, attempt: int,
                error: str | None) -> None:
        self.store.finish_notification(rec.id, status=status, attempts=attempt, at=utcnow(),
                                       error=error)
        if status == "delivered":
            self.delivered += 1
            log.info("notification %s (%s %s) delivered to webhook %s", rec.event_id,
                     rec.event, rec.policy, rec.webhook)
        else:
            self.failed += 1
            log.error("notification %s (%s %s) to webhook %s not delivered: %s",
                      rec.event_id, rec.event, rec.policy, rec.webhook, error)
