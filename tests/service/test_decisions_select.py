"""Host selection (service/decisions.py select, nova_rows): deny_host rows over the
scheduler's request rows and the live state, in one projection, with fail-open/closed."""

from __future__ import annotations

import pytest

from charter.service.decisions import Selection, nova_rows, select
from charter.service.service import Service
from charter.store import Store

RULES = [
    # anti-affinity from the request: the group's hosts
    'deny_host(h, "group member here") :- scheduler:spec("instance_group.policy", '
    '"anti-affinity"), scheduler:spec("instance_group.hosts", h), scheduler:host(h)',
    # capacity from the live state
    'deny_host(h, "no room") :- scheduler:host(h), cap:free(h, free), '
    'scheduler:spec("flavor.memory_mb", need), free < need',
    # a refusal of every host
    'deny("project frozen") :- scheduler:spec("project_id", "frozen")',
]


@pytest.fixture
def svc(tmp_path):
    s = Service(Store(f"sqlite:///{tmp_path / 'charter.db'}", secret_key=Store.generate_key()))
    s.start()
    s.datasources.create({"name": "cap", "driver": "push", "config": {"tables": {
        "free": ["host", "memory_mb"]}}})
    s.datasources.replace_rows("cap", "free", [["h1", 4096], ["h2", 256], ["h3", 8192]])
    s.policies.create("hosts", rules=[{"rule": r} for r in RULES])
    yield s
    s.close()


def spec(memory: int = 512, group_hosts: tuple[str, ...] = (), project: str = "p1") -> dict:
    return {"project_id": project, "flavor": {"name": "m1", "memory_mb": memory},
            "instance_group": {"uuid": "g1", "policy": "anti-affinity",
                               "hosts": list(group_hosts)}}


HOSTS = ["h1", "h2", "h3"]


def test_nova_rows_flatten_the_spec_and_list_the_hosts():
    rows = nova_rows(spec(group_hosts=("h1", "h3")), ["h2", "h1", "h2"])
    assert rows["scheduler:host"] == [("h2",), ("h1",)]
    assert ("instance_group.hosts", "h1") in rows["scheduler:spec"]
    assert ("instance_group.hosts", "h3") in rows["scheduler:spec"]
    assert ("flavor.memory_mb", 512) in rows["scheduler:spec"]


def test_hosts_refused_by_capacity_and_the_group_pass_the_others(svc):
    got = select(svc, "hosts", nova_rows(spec(group_hosts=("h1",)), HOSTS), HOSTS)
    assert got.passed == ["h3"] and got.error is None
    assert got.refused == {"h1": ["group member here"], "h2": ["no room"]}
    assert got.rows["deny_host"] == [("h1", "group member here"), ("h2", "no room")]


def test_the_live_table_changes_the_answer(svc):
    assert select(svc, "hosts", nova_rows(spec(), HOSTS), HOSTS).passed == ["h1", "h3"]
    svc.datasources.replace_rows("cap", "free", [["h1", 100], ["h2", 4096], ["h3", 8192]])
    assert select(svc, "hosts", nova_rows(spec(), HOSTS), HOSTS).passed == ["h2", "h3"]


def test_the_request_rows_are_not_kept(svc):
    select(svc, "hosts", nova_rows(spec(group_hosts=("h1", "h2", "h3")), HOSTS), HOSTS)
    assert svc.engine.rows("hosts:deny_host") == set()


def test_deny_refuses_every_host(svc):
    got = select(svc, "hosts", nova_rows(spec(project="frozen"), HOSTS), HOSTS)
    assert got.passed == []
    assert got.refused == {"h1": ["project frozen"], "h2": ["project frozen", "no room"],
                           "h3": ["project frozen"]}
    assert not got.decision().allowed
    assert "h2: no room" in got.decision().reasons


@pytest.mark.parametrize(("fail", "passed"), [("closed", []), ("open", HOSTS)])
def test_a_policy_that_cannot_decide_answers_by_the_fail_mode(svc, fail, passed):
    got = select(svc, "nope", nova_rows(spec(), HOSTS), HOSTS, fail=fail)
    assert (got.passed, got.error) == (passed, "No such policy: nope")
    svc.policies.create("plain", rules=[{"rule": "p(1)"}])
    got = select(svc, "plain", nova_rows(spec(), HOSTS), HOSTS, fail=fail)
    assert got.passed == passed and "no deny_host or deny table" in got.error
    if fail == "closed":
        assert set(got.refused) == set(HOSTS)


def test_a_deny_host_of_the_wrong_width_is_a_policy_error(svc):
    svc.policies.create("narrow", rules=[{"rule": "deny_host(h) :- scheduler:host(h)"}])
    got = select(svc, "narrow", nova_rows(spec(), HOSTS), HOSTS)
    assert got.passed == [] and "deny_host(candidate, reason)" in got.error


def test_selection_as_a_decision():
    s = Selection(passed=["h1"], refused={"h2": ["a", "b"]})
    d = s.decision()
    assert d.allowed and d.reasons == ["h2: a", "h2: b"]
    with pytest.raises(ValueError, match="fail must be one of"):
        select(None, "p", {}, [], fail="maybe")
