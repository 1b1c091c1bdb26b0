"""The audit log: append-only, newest first, filtered by policy."""

from __future__ import annotations

from charter.store import AuditRecord, Store
from tests.store.factories import at


def entry(n: int, policy: str = "p", **fields) -> AuditRecord:
    values = {
        "id": 0,
        "at": at(n),
        "actor": "charter",
        "policy": policy,
        "rule": "execute[nova:servers.stop(x)] :- error(x)",
        "row": (f"vm-{n}", n, 1.5, None),
        "action": "nova:servers.stop",
        "arguments": {"server": f"vm-{n}", "force": True, "nested": [1, "a"]},
        "mode": "enforce",
        "result": "ok",
        "detail": "",
    } | fields
    return AuditRecord(**values)


def test_append_returns_increasing_ids_and_reads_newest_first(store: Store):
    ids = [store.append_audit(entry(n, id=999)) for n in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    back = store.audit()
    assert [r.id for r in back] == ids[::-1]
    assert back[0] == entry(4, id=ids[4])


def test_filter_and_limit(store: Store):
    for n in range(10):
        store.append_audit(entry(n, policy="p" if n % 2 else "q"))
    assert [r.row[0] for r in store.audit(policy="p", limit=3)] == ["vm-9", "vm-7", "vm-5"]
    assert len(store.audit(limit=100)) == 10
    assert store.audit(limit=0) == []
    assert store.audit(policy="none") == []


def test_audit_survives_deleting_the_policy(store: Store):
    from tests.store.factories import policy

    p = policy("p")
    store.create_policy(p)
    store.append_audit(entry(1))
    store.delete_policy(p.id)
    assert len(store.audit(policy="p")) == 1
