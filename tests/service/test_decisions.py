"""Decisions as policy (service/decisions.py): deny/allow tables over request rows joined
with the live state, applied hypothetically, with fail-open/closed on policy errors."""

from __future__ import annotations

import pytest

from charter.service.decisions import Decision, decide, flatten, oslo_rows
from charter.service.service import Service
from charter.store import Store

CREATE = "identity:create_project"
RULES = [
    # reasons from the request alone
    f'deny("only admins create projects") :- oslo:rule("{CREATE}"), not oslo:role("admin")',
    # from the live state: a deny list pushed by the operator
    f'deny(n) :- oslo:rule("{CREATE}"), oslo:target("project.name", n), ks:denylist(n)',
    # a count over the live state: at most 2 projects per domain
    f'deny(d) :- oslo:rule("{CREATE}"), oslo:target("project.domain_id", d), '
    "n = count : { ks:projects(_, _, d) }, n >= 2",
]


@pytest.fixture
def svc(tmp_path):
    s = Service(Store(f"sqlite:///{tmp_path / 'charter.db'}", secret_key=Store.generate_key()))
    s.start()
    s.datasources.create({"name": "ks", "driver": "push", "config": {"tables": {
        "projects": ["id", "name", "domain_id"], "denylist": ["name"]}}})
    s.datasources.replace_rows("ks", "projects", [["p1", "alpha", "d1"], ["p2", "beta", "d1"],
                                                  ["p3", "gamma", "d2"]])
    s.datasources.replace_rows("ks", "denylist", [["forbidden"]])
    s.policies.create("keystone", rules=[{"rule": r} for r in RULES])
    yield s
    s.close()


def create(name: str, domain: str, *roles: str, rule: str = CREATE) -> dict:
    return oslo_rows(rule, {"project": {"name": name, "domain_id": domain}},
                     {"user_id": "u1", "roles": list(roles)})


def test_allowed_when_no_deny_row(svc):
    assert decide(svc, "keystone", create("delta", "d2", "admin")) == Decision(
        allowed=True, reasons=[], rows={"deny": []})


def test_denied_with_the_rows_as_reasons(svc):
    d = decide(svc, "keystone", create("delta", "d2", "member"))
    assert not d.allowed and d.error is None
    assert d.reasons == ["only admins create projects"]
    assert d.rows == {"deny": [("only admins create projects",)]}


def test_deny_from_a_live_deny_list(svc):
    d = decide(svc, "keystone", create("forbidden", "d2", "admin"))
    assert (d.allowed, d.reasons) == (False, ["forbidden"])
    # the list changes, the answer follows
    svc.datasources.replace_rows("ks", "denylist", [["other"]])
    assert decide(svc, "keystone", create("forbidden", "d2", "admin")).allowed


def test_deny_from_a_count_of_the_live_state(svc):
    d = decide(svc, "keystone", create("delta", "d1", "admin"))  # d1 has 2 projects
    assert (d.allowed, d.reasons) == (False, ["d1"])
    svc.datasources.replace_rows("ks", "projects", [["p1", "alpha", "d1"]])
    assert decide(svc, "keystone", create("delta", "d1", "admin")).allowed


def test_another_rule_is_not_denied(svc):
    assert decide(svc, "keystone", create("forbidden", "d1", rule="identity:get_project")).allowed


def test_nothing_is_kept(svc):
    decide(svc, "keystone", create("forbidden", "d1", "member"))
    tables = svc.engine.tables()
    assert all(not svc.engine.rows(t) for t in tables if t.startswith("oslo:"))
    assert svc.engine.rows("keystone:deny") == set()
    assert svc.violations.current("keystone") == [] or not svc.violations.current("keystone")


def test_allow_table_makes_the_default_deny(svc):
    svc.policies.create("admins", rules=[{"rule": 'allow() :- oslo:role("admin")'}])
    assert decide(svc, "admins", create("x", "d2", "admin")) == Decision(
        allowed=True, reasons=[], rows={"allow": [()]})
    d = decide(svc, "admins", create("x", "d2", "member"))
    assert (d.allowed, d.reasons, d.error) == (False, ["no allow row in policy admins"], None)


def test_deny_wins_over_allow(svc):
    svc.policies.create("both", rules=[{"rule": r} for r in (
        'allow() :- oslo:role("admin")',
        'deny(n) :- oslo:target("project.name", n), ks:denylist(n)')])
    d = decide(svc, "both", create("forbidden", "d2", "admin"))
    assert (d.allowed, d.reasons) == (False, ["forbidden"])
    assert d.rows == {"deny": [("forbidden",)], "allow": [()]}


def test_a_deny_row_of_several_columns_reads_as_the_atom(svc):
    svc.policies.create("wide", rules=[{"rule": 'deny(n, "listed") :- '
                                        'oslo:target("project.name", n), ks:denylist(n)'}])
    assert decide(svc, "wide", create("forbidden", "d2")).reasons == [
        'deny("forbidden", "listed")']


@pytest.mark.parametrize("fail, allowed", [("closed", False), ("open", True)])
def test_an_unknown_policy_answers_by_the_fail_mode(svc, fail, allowed):
    d = decide(svc, "nope", create("x", "d2", "admin"), fail=fail)
    assert d.allowed is allowed and "No such policy: nope" in d.error


@pytest.mark.parametrize("fail, allowed", [("closed", False), ("open", True)])
def test_a_policy_without_decision_tables_answers_by_the_fail_mode(svc, fail, allowed):
    svc.policies.create("plain", rules=[{"rule": "error(x) :- ks:denylist(x)"}])
    d = decide(svc, "plain", create("x", "d2"), fail=fail)
    assert d.allowed is allowed and "no deny or allow table" in d.error


def test_rows_of_another_width_than_the_rules_read_are_an_error(svc):
    svc.policies.create("narrow", rules=[{"rule": 'deny(k) :- oslo:credentials(k, v, "x")'}])
    d = decide(svc, "narrow", create("x", "d2"))
    assert not d.allowed and "rules read oslo:credentials with 3 columns" in d.error
    assert "write oslo:credentials with 2 columns" in d.error


def test_request_tables_no_rule_reads_are_skipped(svc):
    rows = create("x", "d2", "admin") | {"oslo:unread": [("a", "b", "c")]}
    assert decide(svc, "keystone", rows).allowed
    assert "oslo:unread" not in svc.engine.tables()


def test_a_bad_fail_mode_is_a_programming_error(svc):
    with pytest.raises(ValueError, match="fail must be one of"):
        decide(svc, "keystone", {}, fail="maybe")


def test_oslo_rows_flatten_the_request():
    rows = oslo_rows(CREATE, {"project": {"name": "p", "tags": ["a", "b"], "enabled": True,
                                          "parent_id": None, "quota": 1.5}},
                     {"roles": ["reader", "member"], "is_admin": False, "user_id": "u",
                      "system_scope": None, "domain": {"id": 7}})
    assert rows == {
        "oslo:rule": [(CREATE,)],
        "oslo:target": [("project.enabled", "true"), ("project.name", "p"),
                        ("project.quota", 1.5), ("project.tags", "a"), ("project.tags", "b")],
        "oslo:credentials": [("domain.id", 7), ("is_admin", "false"), ("roles", "member"),
                             ("roles", "reader"), ("user_id", "u")],
        "oslo:role": [("member",), ("reader",)],
    }
    assert oslo_rows(None, {}, {"roles": "admin"}) == {
        "oslo:rule": [], "oslo:target": [], "oslo:credentials": [("roles", "admin")],
        "oslo:role": []}


def test_flatten_of_a_scalar_without_a_key_is_nothing():
    assert list(flatten(3)) == []
    assert list(flatten({"a": [[1, 2], {"b": "c"}]})) == [("a", 1), ("a", 2), ("a.b", "c")]


# ---------------------------------------------------------------- settings


def settings(monkeypatch, tmp_path, **values):
    from charter.service.config import Settings

    for name in [n for n in __import__("os").environ if n.startswith("CHARTER_")]:
        monkeypatch.delenv(name)
    return Settings.model_validate({"data_dir": str(tmp_path)} | values)


def test_decision_settings_default_to_fail_closed_with_a_token(monkeypatch, tmp_path):
    s = settings(monkeypatch, tmp_path)
    assert (s.decisions.fail, s.decisions.anonymous, s.tls.cert_file) == ("closed", False, None)


def test_anonymous_decisions_need_loopback_or_required_client_certificates(monkeypatch,
                                                                            tmp_path):
    from pydantic import ValidationError

    (tmp_path / "t.toml").write_text('[[tokens]]\nname = "ci"\ntoken = "t0ken"\nrole = "admin"\n')
    token = {"strategy": "token", "tokens_file": str(tmp_path / "t.toml")}
    assert settings(monkeypatch, tmp_path, decisions={"anonymous": True}).decisions.anonymous
    with pytest.raises(ValidationError, match="set tls.client_cert = required"):
        settings(monkeypatch, tmp_path, host="0.0.0.0", auth=token,
                 decisions={"anonymous": True})
    tls = {"cert_file": "c.pem", "ca_file": "ca.pem", "client_cert": "required"}
    s = settings(monkeypatch, tmp_path, host="0.0.0.0", auth=token, tls=tls,
                 decisions={"anonymous": True})
    assert s.tls.client_cert == "required"


def test_tls_settings_must_be_complete(monkeypatch, tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="need tls.cert_file"):
        settings(monkeypatch, tmp_path, tls={"ca_file": "ca.pem"})
    with pytest.raises(ValidationError, match="tls.ca_file is not set"):
        settings(monkeypatch, tmp_path, tls={"cert_file": "c.pem", "client_cert": "optional"})


def test_serve_passes_tls_to_uvicorn_and_refuses_missing_files(monkeypatch, tmp_path):
    import ssl

    import typer

    from charter.cli.serve import tls_options

    assert tls_options(settings(monkeypatch, tmp_path)) == {}
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "ca.pem").write_text("x")
    s = settings(monkeypatch, tmp_path, tls={"cert_file": str(tmp_path / "c.pem"),
                                             "ca_file": str(tmp_path / "ca.pem"),
                                             "client_cert": "required"})
    assert tls_options(s) == {"ssl_certfile": str(tmp_path / "c.pem"), "ssl_keyfile": None,
                              "ssl_ca_certs": str(tmp_path / "ca.pem"),
                              "ssl_cert_reqs": ssl.CERT_REQUIRED}
    s = settings(monkeypatch, tmp_path, tls={"cert_file": str(tmp_path / "c.pem"),
                                             "key_file": str(tmp_path / "nokey.pem")})
    with pytest.raises(typer.Exit):
        tls_options(s)
