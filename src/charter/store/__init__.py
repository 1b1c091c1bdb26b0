"""Charter's persistence: policies, rules, library policies, datasources, pushed tables,
violation history and the audit log, in SQLite (WAL) or PostgreSQL. See docs/store.md."""

from charter.store.errors import (
    Conflict,
    NotFound,
    SecretKeyError,
    StoreError,
    StoreUnavailable,
)
from charter.store.records import (
    AuditRecord,
    DatasourceRecord,
    LibraryPolicyRecord,
    PolicyRecord,
    RuleRecord,
    ViolationRecord,
)
from charter.store.store import Store

__all__ = [
    "AuditRecord",
    "Conflict",
    "DatasourceRecord",
    "LibraryPolicyRecord",
    "NotFound",
    "PolicyRecord",
    "RuleRecord",
    "SecretKeyError",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "ViolationRecord",
]
