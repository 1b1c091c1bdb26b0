"""An action written without a service (``execute[fix(x)]``) is the policy's own, as in
Congress: congress/policy_engines/agnostic.py, ``_execute_table``::

    service, tablename = compile.Tablename.parse_service_table(table)
    service = service or theory
    ...
    self.execute_action(service, tablename, {'positional': args})

and ``execute_action`` then found no such service (``if not self.service_exists(service_name):
raise exception.PolicyException("Service %s not found" % service_name)``), which
``_execute_table`` logged: nothing was called. Charter derives and audits the rows like any
action's, and an attempt in enforce mode fails for good, saying why and what to write."""

from __future__ import annotations

from charter.service.service import Service
from tests.enforce.conftest import wait_for
from tests.enforce.ledger import Ledger
from tests.enforce.test_enforcement import arrive, results, setup

OWN = [
    {"rule": 'error(x) :- src:items(x, "broken")'},
    {"rule": "execute[fix(x)] :- error(x)", "name": "repair"},
]


def test_dry_run_audits_the_policys_own_action(make_service, ledger: Ledger):
    svc: Service = make_service()
    setup(svc, ledger, OWN, [("a", "broken")])
    assert svc.engine.rows("ops:execute[ops:fix]") == {("a",)}
    (entry,) = svc.store.audit(policy="ops")
    assert (entry.result, entry.action, entry.row) == ("dry-run", "ops:fix", ("a",))
    assert "would call ops:fix('a')" in entry.detail
    assert "ops is the policy itself, which has no actions" in entry.detail


def test_enforce_fails_the_policys_own_action_and_calls_nothing(make_service, ledger: Ledger):
    svc: Service = make_service()
    setup(svc, ledger, OWN, mode="enforce")
    arrive(svc, ledger, [("a", "broken")])
    wait_for(lambda: results(svc) == ["failed"])
    (entry,) = [a for a in svc.store.audit(policy="ops") if a.result == "failed"]
    assert "execute[fix(...)] names no service" in entry.detail
    assert "write execute[<datasource>:fix(...)]" in entry.detail
    (record,) = svc.store.actions(policy="ops")
    assert (record.status, record.attempts) == ("failed", 1)  # not retried
    assert ledger.calls() == []
