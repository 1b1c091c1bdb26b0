"""Tests of charter.lang.library: Congress library policy YAML files."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.lang.ast import Atom, BuiltinCall, Constant, Modal, Negation, Span, Variable
from charter.lang.errors import PolicyError
from charter.lang.library import (
    LibraryPolicy,
    LibraryRule,
    load_library_file,
    load_library_policy,
)
from charter.lang.parser import parse_rule

LIBRARY = Path(__file__).parent / "fixtures" / "library"


def errors_of(text: str) -> list[tuple[str, int, int, str]]:
    with pytest.raises(PolicyError) as info:
        load_library_policy(text, "lib.yaml")
    return [(d.code, d.span.line, d.span.col, d.message) for d in info.value.diagnostics]


# ---------------------------------------------------------------- the fixture policies


def test_disallowed_flavors():
    policy = load_library_file(LIBRARY / "disallowed_flavors.yaml")
    assert isinstance(policy, LibraryPolicy)
    assert policy.name == "DisallowedFlavors"
    assert policy.description.startswith("Warn about every server")
    assert (policy.kind, policy.abbreviation) == ("nonrecursive", "flvr")
    assert [r.rule.head.table for r in policy.rules] == [
        "permitted_flavor",
        "permitted_flavor",
        "warning",
    ]
    tiny, small, warning = policy.rules
    assert tiny.rule.head == Atom("permitted_flavor", (Constant("m1.tiny"),))
    assert tiny.comment == "Edit this list: the flavors servers may use."
    assert tiny.text == "permitted_flavor('m1.tiny')\n"
    assert (small.comment, small.name) == (None, None)
    assert warning.name == "flavor_warning"
    assert warning.rule == parse_rule(
        "warning(server_id, flavor) :- nova:servers(id=server_id, flavor_id=flavor_id), "
        "nova:flavors(id=flavor_id, name=flavor), not permitted_flavor(flavor)"
    )


def test_security_groups():
    policy = load_library_file(LIBRARY / "security_groups.yaml")
    assert policy.name == "UnsafeTraffic"
    assert policy.description == (
        "Flag servers whose ports let TCP traffic in from anywhere on a sensitive port, "
        "and pause them.\n"
    )
    assert (policy.kind, policy.abbreviation) == ("nonrecursive", None)
    rules = {r.name: r for r in policy.rules}
    open_rule = rules["open_to_world"].rule
    assert open_rule.body[0].theory == "neutronv2"
    assert dict(open_rule.body[0].named)["direction"] == Constant("ingress")
    assert open_rule.body[3] == BuiltinCall("lteq", (Variable("low"), Variable("port")))
    unsafe = rules["unsafe_server"].rule
    assert isinstance(unsafe.body[-1], Negation)
    assert isinstance(unsafe.body[-1].atom, BuiltinCall)
    execute = policy.rules[-1].rule
    assert execute.head == Modal("execute", Atom("servers.pause", (Variable("device_id"),), "nova"))
    assert execute.body[0].args[1:] == (Variable("_#0"), Variable("_#1"))


def test_crowded_hosts_uses_charter_extensions():
    policy = load_library_file(LIBRARY / "crowded_hosts.yaml")
    assert len(policy.rules) == 5
    assert policy.rules[1].rule.body[1].func == "count"
    assert policy.rules[2].rule.body[1].func == "sum"


@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.yaml")), ids=lambda p: p.name)
def test_rule_spans_point_into_the_yaml_file(path):
    lines = path.read_text().splitlines()
    for entry in load_library_file(path).rules:
        span = entry.rule.span
        assert span.file == str(path)
        head = entry.rule.head
        first = head.atom if isinstance(head, Modal) else head
        written = lines[span.line - 1][span.col - 1 :]
        prefix = f"{head.kind}[" if isinstance(head, Modal) else ""
        assert written.startswith(
            prefix + (first.theory + ":" if first.theory else "") + first.table
        )


# ---------------------------------------------------------------- rule errors carry YAML positions


@pytest.mark.parametrize(
    ("yaml_text", "line", "col"),
    [
        ("name: x\nrules:\n  - rule: p(x,)\n", 3, 15),
        ("name: x\nrules:\n  - rule: 'p(x,)'\n", 3, 16),
        ('name: x\nrules:\n  - rule: "p(x,)"\n', 3, 16),
        ("name: x\nrules:\n  - rule: >\n      p(x) :- q(x),\n        r(x,)\n", 5, 13),
        ("name: x\nrules:\n  - rule: |\n      p(x) :- q(x),\n        r(x,)\n", 5, 13),
        ("name: x\nrules:\n  - rule: >-  # note\n      p(x) :-\n\n        r(x,)\n", 6, 13),
        ("name: x\nrules:\n  - rule: p(x) :-\n      q(x,)\n", 4, 11),
        ('name: x\nrules:\n  - rule: "p(x) :-\n      q(x,)"\n', 4, 11),
        ("name: x\nrules:\n  - rule: 'p(''a'') :- q(x,)'\n", 3, 28),
        ('name: x\nrules:\n  - rule: "p(\\"a\\") :- q(x,)"\n', 3, 28),
        ('name: x\nrules:\n  - rule: "p(\\x61) :- \\n q(x,)"\n', 3, 30),
        ('name: x\nrules:\n  - rule: "p(x) :- \\\n     q(x,)"\n', 4, 10),
        ("name: x\nrules:\n- {rule: 'p(x,)', comment: flow}\n", 3, 15),
        ("name: x\nrules:\n  - rule: !!str p(x,)\n", 3, 21),
        ("name: x\nrules:\n  - rule: &r 'p(x,)'\n", 3, 19),
        ("name: x\nrules:\n  - rule: !!str >\n      p(x,)\n", 4, 11),
        ("name: x\nrules:\n  - rule: p(x) :- q(x\n", 3, 22),
    ],
)
def test_parse_errors_point_into_the_yaml(yaml_text, line, col):
    ((code, got_line, got_col, _),) = errors_of(yaml_text)
    assert (code, got_line, got_col) == ("parse_error", line, col)


def test_every_rule_error_is_reported():
    text = "name: x\nrules:\n  - rule: p(x,)\n  - rule: q(1)\n  - rule: r(a=1, 2)\n"
    assert [e[:3] for e in errors_of(text)] == [
        ("parse_error", 3, 15),
        ("positional_after_named", 5, 18),
    ]


@pytest.mark.parametrize(
    ("rule", "code", "col"),
    [("p(1) q(2)", "multiple_rules", 16), ("'// only a comment'", "rule_syntax", 12)],
)
def test_one_statement_per_rule(rule, code, col):
    ((got_code, line, got_col, _),) = errors_of(f"name: x\nrules:\n  - rule: {rule}\n")
    assert (got_code, line, got_col) == (code, 3, col)


# ---------------------------------------------------------------- malformed files


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("name: [unclosed\n", 2),
        ("name: x\nrules:\n  - rule: a\n - rule: b\n", 4),
        ("name: x\n\tbad: tab\n", 2),
        ("name: 'unterminated\n", 2),
        ("name: x\x00\n", 1),
    ],
)
def test_malformed_yaml(text, line):
    ((code, got_line, _, message),) = errors_of(text)
    assert (code, got_line) == ("library_syntax", line)
    assert message.startswith("malformed YAML")


@pytest.mark.parametrize(
    ("text", "errors"),
    [
        ("", [(1, "a YAML mapping")]),
        ("- a\n- b\n", [(1, "a YAML mapping")]),
        ("just text\n", [(1, "a YAML mapping")]),
        ("description: d\nrules: []\n", [(1, "has no 'name'")]),
        ("name: x\nrules: 3\n", [(2, "'rules' must be a list of rules, not an int")]),
        ("name: x\nrules: {rule: p}\n", [(2, "not a mapping")]),
        ("name: [a]\n", [(1, "'name' must be a string, not a list")]),
        ("name: x\ndescription: {a: 1}\n", [(2, "'description' must be a string")]),
        ("name: x\nrules:\n  - comment: no rule\n", [(3, "rule 1 has no 'rule'")]),
        ("name: x\nrules:\n  - rule: 5\n", [(3, "rule 1 has a 'rule' that is an int")]),
        ("name: x\nrules:\n  - rule: [p]\n", [(3, "rule 1 has a 'rule' that is a list")]),
        ("name: x\nrules:\n  - 3\n", [(3, "rule 1 must be a mapping with 'rule', not an int")]),
        ("name: x\nrules:\n  - p(x)\n", [(3, "rule 1 must be a mapping such as 'rule: p(x)'")]),
        (
            "rules:\n  - rule: q(1)\n  - comment: c\n",
            [(1, "has no 'name'"), (3, "rule 2 has no 'rule'")],
        ),
    ],
)
def test_invalid_library_files(text, errors):
    got = errors_of(text)
    assert [(code, line) for code, line, _, _ in got] == [
        ("library_invalid", line) for line, _ in errors
    ]
    for (_, _, _, message), (_, expected) in zip(got, errors, strict=True):
        assert expected in message


def test_errors_name_the_file():
    with pytest.raises(PolicyError) as info:
        load_library_policy("rules: 3\n", "policies/lib.yaml")
    assert str(info.value).startswith("2 errors occurred:\npolicies/lib.yaml:1:1:")


def test_minimal_policy_and_optional_fields():
    policy = load_library_policy("name: empty\n")
    assert policy == LibraryPolicy("empty", "", (), "nonrecursive", None)
    policy = load_library_policy("name: acts\nrules:\nkind: action\nabbreviation: act\n")
    assert (policy.name, policy.rules, policy.kind, policy.abbreviation) == (
        "acts",
        (),
        "action",
        "act",
    )
    with pytest.raises(PolicyError) as info:  # a number is read as text, and is no name
        load_library_policy("name: 42\n")
    assert [d.code for d in info.value.diagnostics] == ["invalid_policy_name"]


def test_library_rule_keeps_the_text():
    policy = load_library_policy("name: n\nrules:\n  - rule: p(x) :- q(x)\n    name: r1\n")
    (entry,) = policy.rules
    assert entry == LibraryRule("p(x) :- q(x)", None, "r1", parse_rule("p(x) :- q(x)"))
    assert entry.rule.span == Span(None, 3, 11, 3, 23)


def test_load_library_file_not_utf8(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"name: \xff\n")
    with pytest.raises(PolicyError) as info:
        load_library_file(path)
    assert info.value.diagnostics[0].code == "library_syntax"
    assert info.value.diagnostics[0].span.file == str(path)


def test_load_library_file_missing(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_library_file(tmp_path / "missing.yaml")
