"""Policies and rules: creation order, uniqueness, atomic batches, cascading deletes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from charter.store import Conflict, NotFound, Store
from tests.store.factories import T0, at, policy, rule


def test_policy_round_trips_with_its_rules(store: Store):
    p = policy("classification")
    rules = [
        rule(p.id, 'error(vm) :- nova:servers(id=vm, status="ERROR")', name="err"),
        rule(p.id, "warn(x) :-\n    q(x),  // the user's layout and comments\n    not r(x)"),
    ]
    store.create_policy(p, rules)
    assert store.list_policies() == [p]
    assert store.list_rules(p.id) == rules
    assert store.list_rules() == rules


def test_records_come_back_as_plain_values(store: Store):
    p = policy(description="politique à l'œil — 日本語 \x01", created_at=at(0.000001))
    store.create_policy(p)
    (back,) = store.list_policies()
    assert back == p
    assert type(back.created_at) is datetime and back.created_at.tzinfo is not None
    assert back.created_at.utcoffset() == timedelta(0)


def test_an_aware_datetime_in_any_zone_keeps_its_instant(store: Store):
    plus2 = timezone(timedelta(hours=2))
    p = policy(created_at=datetime(2025, 6, 1, 14, 30, 0, 5, tzinfo=plus2))
    store.create_policy(p)
    (back,) = store.list_policies()
    assert back.created_at == p.created_at
    assert back.created_at.isoformat() == "2025-06-01T12:30:00.000005+00:00"


def test_a_naive_datetime_is_refused_and_nothing_is_written(store: Store):
    with pytest.raises(ValueError, match="naive datetime"):
        store.create_policy(policy(created_at=datetime(2025, 1, 1)))
    assert store.list_policies() == []


def test_creation_order_is_insertion_order_not_clock_order(store: Store):
    late = policy("late", created_at=at(100))
    early = policy("early", created_at=at(-100))
    same = policy("same", created_at=at(100))
    for p in (late, early, same):
        store.create_policy(p)
    assert [p.name for p in store.list_policies()] == ["late", "early", "same"]
    rules = [rule(late.id, f"p{i}(x) :- q(x)", created_at=at(-i)) for i in range(20)]
    for r in rules:
        store.add_rule(r)
    assert store.list_rules(late.id) == rules


def test_duplicate_policy_name_or_id_is_a_conflict(store: Store):
    p = policy("classification")
    store.create_policy(p)
    with pytest.raises(Conflict, match="policy named 'classification' already exists"):
        store.create_policy(policy("classification"))
    with pytest.raises(Conflict, match=f"policy with id '{p.id}' already exists"):
        store.create_policy(policy("other", id=p.id))
    assert store.list_policies() == [p]


def test_create_policy_is_atomic(store: Store):
    p = policy()
    bad = [rule(p.id, name="a"), rule(p.id, name="b"), rule(p.id, name="a")]
    with pytest.raises(Conflict, match="2 rules named 'a'"):
        store.create_policy(p, bad)
    assert store.list_policies() == []
    assert store.list_rules() == []


def test_rules_must_belong_to_the_policy_created(store: Store):
    p = policy()
    with pytest.raises(ValueError, match="belongs to policy"):
        store.create_policy(p, [rule("someone-else")])


def test_rule_names_are_unique_per_policy_when_given(store: Store):
    a, b = policy("a"), policy("b")
    store.create_policy(a)
    store.create_policy(b)
    store.add_rule(rule(a.id, name="r1"))
    store.add_rule(rule(b.id, name="r1"))  # another policy: fine
    store.add_rule(rule(a.id))  # unnamed rules never clash
    store.add_rule(rule(a.id))
    with pytest.raises(Conflict, match="policy 'a' already has a rule named 'r1'"):
        store.add_rule(rule(a.id, name="r1"))
    assert len(store.list_rules(a.id)) == 3


def test_duplicate_rule_id_is_a_conflict(store: Store):
    p = policy()
    store.create_policy(p)
    r = rule(p.id)
    store.add_rule(r)
    with pytest.raises(Conflict, match=f"rule with id '{r.id}' already exists"):
        store.add_rule(rule(p.id, id=r.id))
    with pytest.raises(Conflict, match="is given 2 times"):
        store.add_rules([rule(p.id, id="x"), rule(p.id, id="x")])


def test_a_rule_for_an_unknown_policy_is_not_found(store: Store):
    with pytest.raises(NotFound, match="policy 'nope' not found"):
        store.add_rule(rule("nope"))


def test_add_rules_is_atomic(store: Store):
    p = policy()
    store.create_policy(p, [rule(p.id, name="taken")])
    batch = [rule(p.id, name="new1"), rule(p.id, name="new2"), rule(p.id, name="taken")]
    with pytest.raises(Conflict):
        store.add_rules(batch)
    assert [r.name for r in store.list_rules(p.id)] == ["taken"]
    store.add_rules(batch[:2])
    assert [r.name for r in store.list_rules(p.id)] == ["taken", "new1", "new2"]
    store.add_rules([])


def test_add_rules_spans_policies_and_large_batches(store: Store):
    a, b = policy("a"), policy("b")
    store.create_policy(a)
    store.create_policy(b)
    batch = [rule((a, b)[i % 2].id, f"p(x) :- q(x, {i})", name=f"r{i}") for i in range(1200)]
    store.add_rules(batch)
    assert store.list_rules() == batch
    assert len(store.list_rules(a.id)) == 600


def test_delete_rule(store: Store):
    p = policy()
    keep, drop = rule(p.id), rule(p.id, name="dropme")
    store.create_policy(p, [keep, drop])
    store.delete_rule(drop.id)
    assert store.list_rules() == [keep]
    store.add_rule(rule(p.id, name="dropme"))  # the name is free again
    with pytest.raises(NotFound, match=f"rule '{drop.id}' not found"):
        store.delete_rule(drop.id)


def test_delete_policy_takes_its_rules_and_violations(store: Store):
    doomed, kept = policy("doomed"), policy("kept")
    store.create_policy(doomed, [rule(doomed.id), rule(doomed.id)])
    store.create_policy(kept, [rule(kept.id)])
    store.record_violations("doomed", "error", [("vm-1",)], [], T0)
    store.record_violations("kept", "error", [("vm-1",)], [], T0)
    store.delete_policy(doomed.id)
    assert store.list_policies() == [kept]
    assert [r.policy_id for r in store.list_rules()] == [kept.id]
    assert store.violations("doomed", include_resolved=True) == []
    assert len(store.violations("kept")) == 1
    with pytest.raises(NotFound, match=f"policy '{doomed.id}' not found"):
        store.delete_policy(doomed.id)
    store.create_policy(policy("doomed"))  # the name is free again


def test_list_rules_of_an_unknown_policy_is_empty(store: Store):
    assert store.list_rules("nope") == []
