"""The values the store takes and gives back: plain frozen dataclasses.

No ORM object leaves the store, so callers never hold a live database handle, and a record
read in one thread can be used in any other. Datetimes come back timezone-aware, in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PolicyRecord:
    """A policy; ``kind`` is Congress's policy kind (``nonrecursive``, ``action``, ...)."""

    id: str
    name: str
    abbreviation: str
    description: str
    owner_id: str
    kind: str
    created_at: datetime
    enforcement: str = "dry-run"  # or "enforce": whether execute[...] rows call their actions


@dataclass(frozen=True)
class RuleRecord:
    """A rule as the user wrote it: ``rule`` is their original text, recompiled on start."""

    id: str
    policy_id: str
    name: str | None
    rule: str
    comment: str
    created_at: datetime


@dataclass(frozen=True)
class LibraryPolicyRecord:
    """A library policy: a template, not evaluated. ``rules`` are ``{"rule", "name"?, "comment"?}``."""

    id: str
    name: str
    description: str
    abbreviation: str
    kind: str
    rules: list[dict]


@dataclass(frozen=True)
class DatasourceRecord:
    """A datasource's configuration, in clear: its secret fields are encrypted only in the DB."""

    id: str
    name: str
    driver: str
    description: str
    enabled: bool
    config: dict
    created_at: datetime


@dataclass(frozen=True)
class ViolationRecord:
    """One interval during which ``row`` was in ``policy:table``; open while ``resolved_at`` is None."""

    policy: str
    table: str
    row: tuple
    first_seen: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class AuditRecord:
    """One enforcement action taken (or, in dry-run ``mode``, one that would have been)."""

    id: int
    at: datetime
    actor: str
    policy: str
    rule: str
    row: tuple
    action: str
    arguments: dict
    mode: str
    result: str
    detail: str


@dataclass(frozen=True)
class ActionRecord:
    """An ``execute[...]`` row of a policy that appeared, and what became of its action.

    While ``cleared_at`` is None the row is still derived and does not act again. ``status``
    is ``pending`` while the action waits in the outbox (``next_attempt_at``), then ``done``,
    ``failed`` or ``cancelled``; a row that was not to run is ``dry-run``, ``capped``,
    ``rate-limited``, or ``baseline`` (already derived when enforcement first saw it).
    """

    id: int
    policy: str
    table_name: str  # execute[<datasource>:<action>]
    datasource: str
    action: str
    row: tuple
    rule: str
    mode: str
    status: str
    attempts: int
    derived_at: datetime
    next_attempt_at: datetime | None = None
    finished_at: datetime | None = None
    cleared_at: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class NotificationRecord:
    """One webhook delivery in the outbox: ``pending`` until ``delivered`` (or ``failed``).

    ``errors`` keeps each failed attempt's ``{"at", "error"}``.
    """

    id: int
    event_id: str
    webhook: str
    event: str
    policy: str
    payload: dict
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None = None
    errors: tuple[dict, ...] = ()


@dataclass(frozen=True)
class PackRecord:
    """An enabled pack: the version enabled, the parameters the operator set (those that
    differ from the pack's defaults, as JSON rows), and the policies it made."""

    id: str
    version: str
    parameters: dict
    policies: tuple[str, ...]
    enabled_by: str
    enabled_at: datetime
