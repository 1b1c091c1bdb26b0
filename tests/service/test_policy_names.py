"""Policy names are identifiers, as Congress required (congress/policy_engines/agnostic.py,
persistent_create_policy: "Policy name %s is not a valid tablename"), for every new policy
and library policy; a policy an earlier Charter stored under another name still loads."""

from __future__ import annotations

import logging
import uuid

import pytest

from charter.service.errors import ServiceError
from charter.service.service import Service, utcnow
from charter.store import Store
from charter.store.records import LibraryPolicyRecord, PolicyRecord, RuleRecord

KEY = Store.generate_key()


def open_service(db_url: str) -> Service:
    svc = Service(Store(db_url, secret_key=KEY))
    svc.start()
    return svc


def store_old_policy(store: Store, name: str) -> None:
    """A policy as an earlier Charter stored it, under a name no longer accepted."""
    policy = PolicyRecord(id=str(uuid.uuid4()), name=name, abbreviation=name[:5],
                          description="", owner_id="user", kind="nonrecursive",
                          created_at=utcnow())
    rules = [RuleRecord(id=str(uuid.uuid4()), policy_id=policy.id, name=None, rule=text,
                        comment="", created_at=utcnow())
             for text in ("error(x) :- q(x)", "q(1)")]
    store.create_policy(policy, rules)


def test_a_policy_stored_under_an_old_name_still_loads_and_serves(db_url, caplog):
    svc = open_service(db_url)
    store_old_policy(svc.store, "my-policy")
    svc.store.put_library_policy(LibraryPolicyRecord(
        id=str(uuid.uuid4()), name="old.lib", description="", abbreviation="old",
        kind="nonrecursive", rules=[{"rule": "z(1)", "name": None, "comment": ""}]))
    svc.close()

    with caplog.at_level(logging.WARNING, logger="charter.service.policies"):
        again = open_service(db_url)
    try:
        assert again.policies.rows("my-policy", "error") == [(1,)]
        assert again.policies.get("my-policy").broken == {}
        assert any("my-policy" in r.getMessage() and "my_policy" in r.getMessage()
                   for r in caplog.records)
        # kept and listed, but no new policy may take such a name
        assert [lib.name for lib in again.library.list("old.lib")] == ["old.lib"]
        with pytest.raises(ServiceError, match="invalid policy name"):
            again.library.activate("old.lib")
        with pytest.raises(ServiceError, match="invalid policy name"):
            again.policies.create("my-policy2")
        again.policies.delete("my-policy")  # and it can be deleted
    finally:
        again.close()


def test_new_policies_and_library_policies_need_identifiers(db_url):
    svc = open_service(db_url)
    try:
        for name in ("web-tier", "web.tier", "_web", "1web"):
            with pytest.raises(ServiceError, match="is not an identifier"):
                svc.policies.create(name)
            with pytest.raises(ServiceError, match="invalid library policy name"):
                svc.library.create({"name": name, "rules": []})
        svc.policies.create("web_tier1")
        svc.library.create({"name": "WebTier", "rules": []})
    finally:
        svc.close()
