"""Rules with aggregates created and deleted leave no auxiliary names behind (issue 11)."""

from __future__ import annotations

from charter.engine import Engine


def aggregate_rule(k: int) -> str:
    return f"busy(h, n) :- ds:hosts(h), n = count : {{ ds:vms(v, h) }}, n > {k}"


def test_deleted_aggregate_rules_forget_their_names() -> None:
    engine = Engine()
    engine.insert_rows("ds:hosts", [("h1",), ("h2",)])
    engine.insert_rows("ds:vms", [("v1", "h1"), ("v2", "h1"), ("v3", "h2")])
    engine.load_policy("p", "load(h, n) :- ds:hosts(h), n = count : { ds:vms(v, h) }")
    kept = engine.program.rules_by_head["p:load"][0].aggregates[1].table
    for k in range(50):
        engine.insert_rules("p", aggregate_rule(k))
        assert engine.rows("p:busy") == ({("h1", 2)} if k < 2 else set()) | (
            {("h1", 2), ("h2", 1)} if k < 1 else set()
        )
        engine.delete_rules("p", aggregate_rule(k))
    assert len(engine._names) == 1  # the kept rule's name only
    assert engine.program.rules_by_head["p:load"][0].aggregates[1].table == kept
    assert engine.rows("p:load") == {("h1", 2), ("h2", 1)}
    assert not [t for t in engine.state.relations if "#agg" in t and t != kept]
