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
