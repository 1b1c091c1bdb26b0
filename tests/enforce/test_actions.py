"""The Enforcer's bookkeeping: transitions, idempotency, the restart, the decisions."""

from __future__ import annotations

from dataclasses import dataclass, field

from charter.enforce.actions import (
    BASELINE,
    DRY_RUN,
    PENDING,
    ActionTable,
    Enforcer,
    Plan,
    action_table,
)
from charter.enforce.limits import CAPPED, Limits

T = ActionTable("p", "nova", "servers.pause")
NAME = "p:execute[nova:servers.pause]"


@dataclass
class D:
    inserted: set = field(default_factory=set)
    deleted: set = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.inserted or self.deleted)


def enforcer(mode: str = "enforce", per_batch: int = 100) -> Enforcer:
    return Enforcer(Limits(per_batch, 1000), lambda _policy: mode)


def run(e: Enforcer, deltas: dict, now: float = 0.0):
    plan = e.plan(deltas, now)
    e.commit(plan)
    return plan


def test_action_table_names():
    assert action_table(NAME) == T
    assert T.qualified == NAME and T.name == "execute[nova:servers.pause]"
    assert action_table("p:execute[nova:a:b]") == ActionTable("p", "nova", "a:b")
    for other in ("p:error", "nova:servers", "p:execute[pause]", "p:execute[:x]", "error"):
        assert action_table(other) is None


def test_a_row_acts_once_per_appearance():
    e = enforcer()
    plan = run(e, {NAME: D({("vm1",), ("vm2",)}), "p:error": D({("vm1",)})})
    assert [(d.row, d.verdict) for d in plan.decisions] == [(("vm1",), PENDING),
                                                            (("vm2",), PENDING)]
    assert not run(e, {NAME: D({("vm1",)})})  # already derived: no transition
    plan = run(e, {NAME: D(deleted={("vm1",)})})
    assert plan.cleared == [(T, ("vm1",))] and not plan.decisions
    plan = run(e, {NAME: D({("vm1",)})})  # back: a new transition
    assert [d.row for d in plan.decisions] == [("vm1",)]


def test_dry_run_decides_but_does_not_queue():
    plan = run(enforcer(DRY_RUN), {NAME: D({("vm1",)})})
    assert [(d.mode, d.verdict) for d in plan.decisions] == [(DRY_RUN, DRY_RUN)]


def test_limits_stop_rows_in_a_fixed_order():
    plan = run(enforcer(per_batch=2), {NAME: D({("c",), ("a",), ("b",)})})
    assert [(d.row, d.verdict) for d in plan.decisions] == [
        (("a",), PENDING), (("b",), PENDING), (("c",), CAPPED)]


def test_a_plan_the_store_refused_forgets_its_new_rows():
    e = enforcer()
    plan = e.plan({NAME: D({("vm1",)})}, 0.0)
    e.commit(plan, recorded=False)
    assert not e.derived(T, ("vm1",))
    assert run(e, {NAME: D({("vm1",)})}).decisions  # the row can still be decided later


def test_restore_rebuild_and_settle():
    e = enforcer()
    recorded = [(T, ("vm1",)), (T, ("vm2",))]
    # the rebuild derives vm1 again and vm3 (never recorded), not vm2 (yet)
    baseline = e.restore(recorded, {T: {("vm1",), ("vm3",)}})
    assert [(d.row, d.verdict) for d in baseline] == [(("vm3",), BASELINE)]
    e.commit(Plan(baseline))
    assert e.unsettled_rows() == [(T, ("vm2",))]
    assert not run(e, {NAME: D({("vm2",)})})  # the first poll brings it back: not new
    assert e.unsettled_rows() == []
    e.settle()
    assert e.derived(T, ("vm2",))


def test_rows_not_derived_again_clear_when_settled():
    e = enforcer()
    other = ActionTable("q", "nova", "servers.stop")
    e.restore([(T, ("vm1",)), (other, ("vm9",))], {})
    assert e.unsettled_rows() == [(T, ("vm1",)), (other, ("vm9",))]
    e.settle()
    assert not e.derived(T, ("vm1",)) and e.unsettled_rows() == []
    assert run(e, {NAME: D({("vm1",)})}).decisions  # after settling, back means new
