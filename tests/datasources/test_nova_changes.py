"""Nova's servers by ``changes-since`` between full listings (drivers/nova_changes.py).

tests/realservices has no Nova, so the merge is checked on what a real Nova answered,
recorded in fixtures/nova/changes_since.json by fixtures/nova/record_changes_since.py
(against scripts/openstack-e2e.sh's stack): a full listing, the servers changed since it
(one paused, one deleted, one booted), and a full listing after. Merging the changes into
the first listing must give exactly the rows of the second. The driver's own poll cycle
(which poll lists everything, which asks for changes and since when) is checked with the
same recorded answers handed to it in place of openstacksdk's listing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openstack.compute.v2.server import Server

from charter.datasources.driver import DriverError
from charter.datasources.drivers.nova import SERVERS, NovaDriver
from charter.datasources.drivers.nova_changes import MARGIN_S, ServerChanges
from charter.datasources.translator import schema, translate

pytestmark = pytest.mark.filterwarnings("ignore:The _compute_attributes method")

RECORDED = json.loads((Path(__file__).parent / "fixtures/nova/changes_since.json").read_text())
IDS = RECORDED["servers"]
SERVER_TABLES = tuple(schema(SERVERS))
CONFIG = {"auth_url": "http://127.0.0.1:5000/v3", "username": "admin",
          "password": "s3cret-pw", "project_name": "admin", "region_name": "RegionOne"}


def servers(step: str) -> list[Server]:
    """The recorded answer's servers as openstacksdk's list call makes them."""
    return [Server.existing(**body) for body in RECORDED[step]["body"]["servers"]]


def tracker(**kw) -> ServerChanges:
    return ServerChanges(lambda s: translate(s, SERVERS), SERVER_TABLES, **kw)


def as_sets(tables: dict) -> dict[str, set]:
    return {t: set(rows) for t, rows in tables.items() if t in SERVER_TABLES}


def ids(step: str) -> dict[str, str]:
    return {s["id"]: s["status"] for s in RECORDED[step]["body"]["servers"]}


def test_the_recording_is_what_the_merge_relies_on():
    before, changed, after = ids("full_before"), ids("changes"), ids("full_after")
    assert RECORDED["changes"]["request"].endswith(
        f"&changes-since={RECORDED['changes_since']}")
    assert before[IDS["rec-stays"]] == "ACTIVE" and IDS["rec-stays"] not in changed
    assert before[IDS["rec-paused"]] == "ACTIVE" and changed[IDS["rec-paused"]] == "PAUSED"
    assert before[IDS["rec-gone"]] == "ACTIVE" and changed[IDS["rec-gone"]] == "DELETED"
    assert IDS["rec-new"] not in before and changed[IDS["rec-new"]] == "ACTIVE"
    assert IDS["rec-gone"] not in after and after[IDS["rec-stays"]] == "ACTIVE"
    assert len(changed) < len(before) + 1  # Nova sent the changes, not every server


def test_changes_merged_into_the_last_full_listing_are_the_next_full_listing():
    changes = tracker()
    start = (0.0, datetime(2026, 1, 1, tzinfo=UTC))
    changes.full(None, servers("full_before"), start)
    assert as_sets(changes.rows(None)) == as_sets(NovaDriver.rows(
        {"servers": servers("full_before")}))
    changes.merge(None, servers("changes"), start)
    merged = as_sets(changes.rows(None))
    assert merged == as_sets(NovaDriver.rows({"servers": servers("full_after")}))
    ids_in = {row[0] for row in merged["servers"]}
    assert IDS["rec-stays"] in ids_in and IDS["rec-new"] in ids_in
    assert IDS["rec-gone"] not in ids_in
    assert not any(row[0] == IDS["rec-gone"] for rows in merged.values() for row in rows)


class _Compute:
    """Hands the driver the recorded answers for its server listings (the SDK's call and
    arguments as the driver makes them), and nothing for the other tables."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.calls: list[dict] = []
        self.fail_next = False

    def servers(self, **kwargs):
        self.calls.append(kwargs)
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the listing broke off")
        return servers(self.answers.pop(0))

    def __getattr__(self, name):
        return lambda *a, **k: []


class _Conn:
    def __init__(self, compute: _Compute) -> None:
        self.compute = compute


def driver_with(answers: list[str], **config) -> tuple[NovaDriver, _Compute, list]:
    nova = NovaDriver("nova", {**CONFIG, **config})
    compute = _Compute(answers)
    nova._connection = lambda region: _Conn(compute)  # type: ignore[method-assign]
    clock = [1000.0]
    nova._changes.clock = lambda: clock[0]
    nova._changes.wall = lambda: datetime(2026, 1, 1, 12, 0, int(clock[0]) % 60, tzinfo=UTC)
    return nova, compute, clock


def test_polls_ask_for_changes_between_full_listings():
    nova, compute, clock = driver_with(
        ["full_before", "changes", "changes", "full_after"], full_resync_polls=3)
    first = as_sets(nova.poll())
    assert first == as_sets(NovaDriver.rows({"servers": servers("full_before")}))
    clock[0] += 5
    second = as_sets(nova.poll())
    assert second == as_sets(NovaDriver.rows({"servers": servers("full_after")}))
    clock[0] += 5
    assert as_sets(nova.poll()) == second  # the same changes again: nothing moves
    clock[0] += 5
    assert as_sets(nova.poll()) == second  # the resync: a full listing
    since_first = (datetime(2026, 1, 1, 12, 0, 40, tzinfo=UTC).timestamp() - MARGIN_S)
    want_since = datetime.fromtimestamp(since_first, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    full = {"details": True, "all_projects": True}
    assert compute.calls == [full, {**full, "changes_since": want_since},
                             {**full, "changes_since": "2026-01-01T11:59:45Z"}, full]
    assert compute.answers == []


def test_a_full_listing_is_due_after_full_resync_seconds_whatever_the_polls():
    nova, compute, clock = driver_with(["full_before", "changes", "full_after"],
                                       full_resync_seconds=600)
    nova.poll()
    clock[0] += 599
    nova.poll()
    clock[0] += 1
    nova.poll()
    assert ["changes_since" in c for c in compute.calls] == [False, True, False]


def test_a_failed_listing_of_changes_changes_nothing_and_is_asked_again():
    nova, compute, clock = driver_with(["full_before", "changes"])
    before = nova.poll()
    compute.fail_next = True
    with pytest.raises(DriverError) as err:
        nova.poll()
    assert "listing servers changed since 2026-01-01T11:59:40Z" in str(err.value)
    assert as_sets(nova._changes.rows("RegionOne")) == as_sets(before)
    after = nova.poll()
    assert compute.calls[1] == compute.calls[2]  # the same changes-since again
    assert as_sets(after) == as_sets(NovaDriver.rows({"servers": servers("full_after")}))


def test_every_poll_lists_every_server_with_full_resync_polls_1():
    nova, compute, _ = driver_with(["full_before", "full_after"], full_resync_polls=1)
    nova.poll()
    nova.poll()
    assert compute.calls == [{"details": True, "all_projects": True}] * 2


def test_openstacksdk_sends_changes_since_as_novas_query_parameter():
    query = Server._query_mapping._transpose(
        {"details": True, "all_projects": True, "changes_since": "2026-01-01T11:59:40Z"},
        Server)
    assert query == {"all_tenants": True, "changes-since": "2026-01-01T11:59:40Z"}


def test_a_region_no_longer_read_is_forgotten():
    changes = tracker(clock=lambda: 5.0, wall=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    changes.full("East", servers("full_before"), changes.started())
    changes.full("West", servers("full_before"), changes.started())
    assert changes.changes_since("East") == changes.changes_since("West") == \
        "2025-12-31T23:59:00Z"
    changes.keep(["West"])
    assert changes.changes_since("East") is None and changes.changes_since("West")


@pytest.mark.parametrize(("change", "needle"), [
    ({"full_resync_polls": 0}, "full_resync_polls must be a whole number of polls >= 1"),
    ({"full_resync_polls": 2.5}, "full_resync_polls must be a whole number"),
    ({"full_resync_polls": True}, "full_resync_polls must be a whole number"),
    ({"full_resync_seconds": -1}, "full_resync_seconds must be a number of seconds >= 0"),
])
def test_bad_resync_config_is_refused_naming_the_key(change, needle):
    with pytest.raises(DriverError, match=needle):
        NovaDriver("nova", {**CONFIG, **change})


def test_resync_config_from_the_cli_is_text():
    nova = NovaDriver("nova", {**CONFIG, "full_resync_polls": "5", "full_resync_seconds": "60"})
    assert nova._changes.resync_polls == 5 and nova._changes.resync_seconds == 60
