"""The Explain page: a violation's proof tree (folded by level, rules with their stored id,
the rows used), why-not for a row typed in the form, errors in words."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from charter.ui.pages.explain import RowError, parse_row
from tests.ui.pview_helpers import Page, seeded
from tests.ui.pview_helpers import get_page as get

ROWS = [["vm1", "ERROR", "shop"], ["vm2", "ACTIVE", "shop"], ["vm3", "ERROR", "bank"]]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    with seeded(tmp_path_factory.mktemp("explain"), ROWS) as pair:
        yield pair


@pytest.fixture
def client(shared):
    return shared[1]


def test_the_proof_tree_of_a_violation(client, shared):
    r = client.get('/ui/explain/ops/error?row=["vm1","shop"]')
    assert r.status_code == 200
    p = Page(r.text)
    assert p.one("proof-tree")
    nodes = p.all("proof-node")
    assert [(n["attrs"]["data-kind"], n["attrs"].get("data-table")) for n in nodes] == [
        ("rule", "ops:error"), ("fact", "inv:servers"), ("negation", "ops:trusted")]
    top = nodes[0]
    assert top["tag"] == "details" and "open" in top["attrs"]  # the top levels unfolded
    text = " ".join("".join(top["text"]).split())
    assert 'error(vm, t) :- inv:servers(id=vm, status="ERROR", tenant=t), not trusted(t)' in text
    assert 'vm="vm1", t="shop"' in text
    assert "servers in ERROR outside trusted tenants" in text  # the rule's comment
    assert 'inv:servers("vm1", "ERROR", "shop")' in text  # the row it used
    assert 'no row matches ops:trusted("shop")' in text
    rule_id = next(rec.id for rec, _ in shared[0].policies.find("ops").rules.values()
                   if rec.name == "broken-vm")
    assert f"/ui/policies/ops#rule-{rule_id}" in p.links
    assert "/ui/datasources/inv" in p.links


def test_deep_levels_start_folded(client, shared):
    svc = shared[0]
    svc.policies.create("deep", rules=[{"rule": "error(x) :- b(x)"}, {"rule": "b(x) :- c(x)"},
                                       {"rule": "c(x) :- d(x)"}, {"rule": 'd("z")'}])
    p = get(client, '/ui/explain/deep/error?row=["z"]')
    details = [n for n in p.all("proof-node") if n["tag"] == "details"]
    assert [n["attrs"]["data-table"] for n in details] == ["deep:error", "deep:b", "deep:c"]
    assert ["open" in n["attrs"] for n in details] == [True, True, False]
    assert p.all("proof-node")[-1]["attrs"]["data-kind"] == "fact"


def test_why_not_for_a_row_that_is_not_there(client):
    p = get(client, '/ui/explain/ops/error?row=["vm2","shop"]')
    assert not p.all("proof-tree")
    answer = " ".join("".join(p.one("whynot-answer")["text"]).split())
    assert 'ops:error("vm2", "shop") is not derived' in answer
    failure = p.one("whynot-failure")
    assert failure["attrs"]["data-kind"] == "no_match"
    assert 'differs in status' in " ".join("".join(failure["text"]).split())
    # trusted tenant: the negation fails, with the proof of the row that makes it fail
    p = get(client, '/ui/explain/ops/error?row=["vm3","bank"]')
    assert p.one("whynot-failure")["attrs"]["data-kind"] == "negation"
    assert 'ops:trusted("bank") exists' in p.text


def test_the_why_not_form_goes_to_the_row_explanation(client):
    p = get(client, '/ui/explain/ops/error?row=["vm1","shop"]')
    form = p.one("whynot-form")
    assert form["attrs"]["action"] == "/ui/explain/ops" and form["attrs"]["method"] == "get"
    html = client.get('/ui/explain/ops/error?row=["vm1","shop"]').text
    assert '<option value="error" selected>' in html and '<option value="trusted">' in html
    r = client.get("/ui/explain/ops", params={"table": "trusted", "values": '"lab"'},
                   follow_redirects=False)
    assert r.status_code == 303
    target = urlsplit(r.headers["location"])
    assert target.path == "/ui/explain/ops/trusted"
    assert parse_qs(target.query)["row"] == ['["lab"]']
    p = get(client, r.headers["location"])
    assert 'ops:trusted("lab") is not among the facts of policy ops' in p.text
    # JSON, and _ for an open column: the first matching row is explained
    r = client.get("/ui/explain/ops", params={"table": "error", "values": '["vm1", null]'})
    assert r.status_code == 200 and Page(r.text).one("proof-tree")
    r = client.get("/ui/explain/ops", params={"table": "error", "values": "_, _"})
    assert 'ops:error("vm1", "shop")' in Page(r.text).text


@pytest.mark.parametrize(("url", "status", "words"), [
    ('/ui/explain/ops/error?row=["vm1"]', 400, "the row has 1 value; ops:error has 2 columns"),
    ('/ui/explain/ops/nothere?row=["vm1"]', 400, "policy ops has no table nothere"),
    ('/ui/explain/ops/error?row=["vm1", true]', 400,
     "row value true is not a string or a number"),
    ("/ui/explain/ops/error?row=[vm1", 400, "the row is not a JSON list"),
    ("/ui/explain/ops?table=error&values=vm1,+%22shop%22", 400,
     'vm1 is a variable, not a value: write "vm1" (in double quotes) for text'),
    ("/ui/explain/ops?table=error&values=%22vm1%22,,", 400, "the values do not parse"),
    ("/ui/explain/ops?table=error&values=", 400, "type the row's values"),
    ("/ui/explain/ops", 200, None),
])
def test_errors_in_words_with_the_form_to_correct_them(client, url, status, words):
    r = client.get(url)
    assert r.status_code == status, r.text
    p = Page(r.text)
    assert p.one("whynot-form")
    if words is None:
        assert not p.all("explain-error")
    else:
        assert words in p.text_of("explain-error")
        assert "Traceback" not in r.text


def test_an_unknown_policy_is_a_404_page_in_words(client):
    r = client.get('/ui/explain/nobody/error?row=["x"]')
    assert r.status_code == 404
    assert "No such policy: nobody" in r.text


def test_parse_row():
    assert parse_row('"vm1", 2, -1.5, _') == ("vm1", 2, -1.5, parse_row("_")[0])
    assert parse_row('["a", 1]') == ("a", 1)
    for bad in ("", "{}", '"a" "b"', "x=1"):
        with pytest.raises(RowError):
            parse_row(bad)
