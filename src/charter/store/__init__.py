"""Charter's persistence: policies, rules, library policies, datasources, pushed tables,
violation history, the audit log, enforcement actions and the webhook outbox, in SQLite
(WAL) or PostgreSQL. See docs/store.md."""

from charter.store.errors import (
    Conflict,
    NotFound,
    SecretKeyError,
    StoreError,
    StoreStateError,
    StoreUnavailable,
)
from charter.store.push import TableChange
from charter.store.records import (
    ActionRecord,
    AuditRecord,
    DatasourceRecord,
    LibraryPolicyRecord,
    NotificationRecord,
    PackRecord,
    PolicyRecord,
    RuleRecord,
    ViolationRecord,
)
from charter.store.store import Store

__all__ = [
    "ActionRecord",
    "AuditRecord",
    "Conflict",
    "DatasourceRecord",
    "LibraryPolicyRecord",
    "NotFound",
    "NotificationRecord",
    "PackRecord",
    "PolicyRecord",
    "RuleRecord",
    "SecretKeyError",
    "Store",
    "StoreError",
    "StoreStateError",
    "StoreUnavailable",
    "TableChange",
    "ViolationRecord",
]
