"""The per-batch cap and the per-policy sliding minute."""

from __future__ import annotations

from charter.enforce.limits import CAPPED, RATE_LIMITED, Limits


def test_the_cap_counts_one_batch_only():
    limits = Limits(per_batch=2, per_minute=100)
    first = limits.batch()
    assert [limits.admit("p", first, 0.0) for _ in range(3)] == [None, None, CAPPED]
    second = limits.batch()
    assert limits.admit("p", second, 0.1) is None


def test_the_cap_is_shared_by_every_policy_of_a_batch():
    limits = Limits(per_batch=2, per_minute=100)
    batch = limits.batch()
    assert [limits.admit(p, batch, 0.0) for p in ("p", "q", "r")] == [None, None, CAPPED]


def test_the_rate_is_per_policy_over_a_sliding_minute():
    limits = Limits(per_batch=100, per_minute=2)
    assert [limits.admit("p", limits.batch(), t) for t in (0.0, 30.0, 59.0)] == [
        None, None, RATE_LIMITED]
    assert limits.admit("q", limits.batch(), 59.0) is None  # another policy's own minute
    assert limits.admit("p", limits.batch(), 60.5) is None  # the action at 0.0 has left
    assert limits.admit("p", limits.batch(), 61.0) is RATE_LIMITED  # 30.0 and 60.5 remain


def test_a_rate_limited_row_does_not_use_the_batch():
    limits = Limits(per_batch=1, per_minute=1)
    limits.admit("p", limits.batch(), 0.0)
    batch = limits.batch()
    assert limits.admit("p", batch, 1.0) == RATE_LIMITED
    assert limits.admit("q", batch, 1.0) is None


def test_zero_stops_everything():
    assert Limits(per_batch=0, per_minute=10).admit("p", Limits(0, 10).batch(), 0.0) == CAPPED
    limits = Limits(per_batch=10, per_minute=0)
    assert limits.admit("p", limits.batch(), 0.0) == RATE_LIMITED


def test_seeded_actions_count_after_a_restart():
    limits = Limits(per_batch=10, per_minute=2)
    limits.seed("p", [50.0, 10.0])
    assert limits.admit("p", limits.batch(), 60.0) == RATE_LIMITED
    assert limits.admit("p", limits.batch(), 70.5) is None
