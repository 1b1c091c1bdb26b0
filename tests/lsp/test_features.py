"""Hover, definition and completion answers, in process (the server only converts them)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.lang.builtins import BUILTINS
from charter.lsp.completion import complete
from charter.lsp.context import completion_context, symbol_at
from charter.lsp.hover import definitions, describe
from charter.lsp.index import WorkspaceIndex


def labels(text: str, policy: str = "app", *, library: bool = False, cursor: int | None = None):
    index = WorkspaceIndex()
    index.open("/w/app.dl", "approved(1)\nerror(x) :- approved(x)")
    index.open("/w/net.dl", "public(vm) :- nova:servers(id=vm)\npublic(1)")
    at = len(text) if cursor is None else cursor
    return [o.label for o in complete(text, at, policy, index.snapshot(), library)]


@pytest.mark.parametrize(
    ("text", "wanted", "unwanted"),
    [
        ("p(x) :- ", {"approved", "error", "net:public", "nova:servers", "lt"}, {"public"}),
        ("p(x) :- net:", {"public"}, {"approved", "net:public"}),
        ("p(x) :- builtin:", set(BUILTINS), {"approved"}),
        ("p(x) :- nova:", {"servers", "flavors", "servers.addresses"}, {"nova:servers"}),
        ("p(x) :- kubernetes:", {"pods", "nodes"}, set()),
        ("p(x) :- nova:servers(", {"id", "status"}, {"approved"}),
        ("p(x) :- nova:servers(id=x, ", {"status"}, {"id"}),
        ("p(x) :- nova:servers(x, y, ", {"host_id", "status"}, {"id", "name"}),
        ("p(x) :- nova:servers(x, 3=y, ", {"name", "host_id"}, {"id", "status"}),
        ("p(x) :- nova:servers(id=x,\n    status=y, ", {"name"}, {"id", "status"}),
        ("p(x) :- n = count : { nova:servers(", {"id"}, set()),
        ('name: app\nrules:\n  - rule: "p(x) :- nova:servers(', {"id"}, set()),
        ("name: app\nrules:\n  - rule: >\n      p(x) :-\n        nova:", {"servers"}, set()),
    ],
)
def test_completion_offers(text: str, wanted: set[str], unwanted: set[str]):
    found = set(labels(text, library=text.startswith("name:")))
    assert wanted <= found
    assert not unwanted & found


@pytest.mark.parametrize(
    "text",
    [
        "p(x) :- q(x) // nova:",
        "p(x) :- q(x) # ",
        "p(x) :- q(x) /* nova:",
        'p(x) :- q("nova:',
        "p(x) :- approved(",  # a variable is typed there
        "p(x) :- nova:servers(id=",  # a value is typed there
        "p(x) :- lt(",
    ],
)
def test_no_completion(text: str):
    assert labels(text) == []


def test_completion_after_a_closed_comment_and_a_statement_end():
    assert "nova:servers" in labels("p(x) :- q(x) /* c */ ")
    assert "nova:servers" in labels("p(x) :- q(x.\nr(y) :- ")


def test_completion_replaces_the_typed_name():
    index = WorkspaceIndex()
    text = "p(x) :- nova:ser"
    offers = {o.label: o for o in complete(text, len(text), "p", index.snapshot())}
    assert offers["servers"].start == len("p(x) :- nova:")
    text = "p(x) :- nov"
    offers = {o.label: o for o in complete(text, len(text), "p", index.snapshot())}
    assert offers["nova:servers"].start == len("p(x) :- ")
    assert offers["nova:servers"].insert == "nova:servers"


def test_completion_context_of_named_columns():
    text = "p(x) :- nova:servers(id=x, st"
    ctx = completion_context(text, len(text))
    assert (ctx.prefix, ctx.atom, ctx.argument_start, ctx.named) == (
        "st",
        "nova:servers",
        True,
        frozenset({"id"}),
    )


def snapshot_of(**files: str):
    index = WorkspaceIndex()
    for name, text in files.items():
        index.open(f"/w/{name}", text)
    return index.snapshot()


def test_definitions_across_files_and_of_broken_texts():
    snap = snapshot_of(
        **{
            "net.dl": "public(vm) :- nova:servers(id=vm)\nbroken(x :-\npublic(1)",
            "lib.yaml": "name: Lib\nrules:\n  - rule: p(x) :- net:public(x)\n",
        }
    )
    text = snap.file("/w/lib.yaml").text
    symbol = symbol_at(
        text, snap.file("/w/lib.yaml").rules, 2, text.splitlines()[2].index("public")
    )
    assert symbol is not None and symbol.name == "net:public"
    found = definitions(symbol, "Lib", snap)
    assert [(d.path, d.span.line) for d in found] == [("/w/net.dl", 1), ("/w/net.dl", 3)]


def test_a_yaml_file_that_is_no_policy_is_not_indexed():
    snap = snapshot_of(**{"ci.yaml": "jobs:\n  test: {rules: [1]}\n", "p.dl": "p(1)"})
    assert snap.file("/w/ci.yaml") is None and snap.policies() == ["p"]


def test_hover_of_an_unknown_datasource_and_of_a_wrong_table():
    snap = snapshot_of(**{"p.dl": "p(x) :- inventory:hosts(x), nova:serverz(x)"})
    text = snap.file("/w/p.dl").text
    rules = snap.file("/w/p.dl").rules
    unknown = symbol_at(text, rules, 0, text.index("hosts"))
    assert "No schema is known for `inventory`" in describe(unknown, "p", snap)
    wrong = symbol_at(text, rules, 0, text.index("serverz"))
    about = describe(wrong, "p", snap)
    assert about.startswith("**`nova:serverz`**: not a table of datasource `nova`")
    assert "`servers`" in about


def test_hover_of_a_table_no_rule_defines():
    snap = snapshot_of(**{"p.dl": "p(x) :- q(x)"})
    text = snap.file("/w/p.dl").text
    symbol = symbol_at(text, snap.file("/w/p.dl").rules, 0, text.index("q"))
    assert "No rule or fact of the workspace defines it" in describe(symbol, "p", snap)


def test_hover_on_a_variable_or_a_comment_is_nothing():
    snap = snapshot_of(**{"p.dl": "p(x) :- q(x) // r(x)"})
    parsed = snap.file("/w/p.dl")
    for column in (2, 10, 17):
        assert symbol_at(parsed.text, parsed.rules, 0, column, complete=parsed.complete) is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([*"pqx(),:=-'\"/*#{}[]. \n😀", "nova:servers", "not ", "lt", "id"])
    ).map("".join),
    st.data(),
)
def test_any_text_and_cursor_is_answered_without_failing(text: str, data):
    """Whatever half-typed text an editor sends, completion and hover answer (maybe nothing)."""
    index = WorkspaceIndex()
    index.open("/w/p.dl", text)
    snap = index.snapshot()
    parsed = snap.file("/w/p.dl")
    cursor = data.draw(st.integers(0, len(text)))
    library = data.draw(st.booleans())
    for offer in complete(text, cursor, "p", snap, library):
        assert 0 <= offer.start <= cursor and "\n" not in text[offer.start : cursor]
    line = text.count("\n", 0, cursor)
    character = data.draw(st.integers(0, 40))
    symbol = symbol_at(text, parsed.rules, line, character, complete=parsed.complete)
    if symbol is not None:
        describe(symbol, "p", snap)
        definitions(symbol, "p", snap)
