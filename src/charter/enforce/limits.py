"""The safety limits on enforcement: so many actions per evaluation, so many per policy a minute.

A rule that suddenly matches every server of a cloud must not pause them all: the first
``per_batch`` rows of one evaluation may act, and no policy acts more than ``per_minute``
times in any 60 seconds. Rows beyond either limit are not acted on (and are audited as
``capped`` or ``rate-limited``); they are not queued for later, since by then the state that
made them due may be gone.

>>> limits = Limits(per_batch=2, per_minute=3)
>>> batch = limits.batch()
>>> [limits.admit("p", batch, now=0.0) for _ in range(3)]
[None, None, 'capped']
>>> batch = limits.batch()
>>> [limits.admit("p", batch, now=1.0) for _ in range(2)]
[None, 'rate-limited']
>>> limits.admit("p", limits.batch(), now=61.0)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

WINDOW_S = 60.0

CAPPED = "capped"
RATE_LIMITED = "rate-limited"


@dataclass
class Batch:
    """What one evaluation has used of ``per_batch``."""

    used: int = 0


class Limits:
    def __init__(self, per_batch: int, per_minute: int) -> None:
        self.per_batch = per_batch
        self.per_minute = per_minute
        self._recent: dict[str, deque[float]] = {}

    def batch(self) -> Batch:
        return Batch()

    def admit(self, policy: str, batch: Batch, now: float) -> str | None:
        """None if one more action of ``policy`` may run at ``now`` (seconds), and count it;
        else why not: ``capped`` or ``rate-limited``."""
        if batch.used >= self.per_batch:
            return CAPPED
        window = self._window(policy, now)
        if len(window) >= self.per_minute:
            return RATE_LIMITED
        window.append(now)
        batch.used += 1
        return None

    def seed(self, policy: str, times: Iterable[float]) -> None:
        """Count actions taken before a restart, so a restart does not reset the window."""
        window = self._recent.setdefault(policy, deque())
        window.extend(sorted(times))

    def _window(self, policy: str, now: float) -> deque[float]:
        window = self._recent.setdefault(policy, deque())
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        return window
