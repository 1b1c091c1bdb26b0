"""Where Congress's own tests, run against Charter, found it behaving differently: each test
quotes the Congress code or test whose behaviour it pins down.

Congress's sources are quoted from its last release (Ussuri): ``congress/datalog/compile.py``,
``congress/policy_engines/agnostic.py``, ``congress/library_service/library_service.py``,
``congress/tests/datalog/test_nonrecur.py`` and ``library/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.engine import Engine
from charter.lang.ast import Modal
from charter.lang.checks import compile_rules, head_table
from charter.lang.duplicates import unique_rules
from charter.lang.errors import PolicyError
from charter.lang.library import load_library_file, load_library_policy
from charter.lang.names import is_policy_name, policy_name_problem
from charter.lang.parser import parse, parse_rule

VENDORED = Path(__file__).parents[1] / "congress_library" / "unsafe_traffic.yaml"


def diagnostics(text: str, policy: str = "p", **schemas) -> list:
    engine = Engine()
    for name, tables in schemas.items():
        engine.declare_datasource(name, tables)
    with pytest.raises(PolicyError) as info:
        engine.load_policy(policy, text, file=f"{policy}.dl")
    return info.value.diagnostics


# ---------------------------------------------------------------- execute without a service


def test_execute_without_a_service_is_the_policys_own_action():
    """congress/tests/datalog/test_nonrecur.py, test_modals::

        run.create_policy("test")
        run.insert('execute[p(x)] :- q(x)', 'test')
        run.insert('q(1)', 'test')
        run.select('execute[p(x)]', 'test') == 'execute[p(1)]'

    and congress/policy_engines/agnostic.py, ``_execute_table``: ``service = service or
    theory``: the action's service is the policy itself (``test:p(1)``)."""
    (rule,), found = compile_rules("test", [parse_rule("execute[p(x)] :- q(x)")])
    assert found == []
    assert isinstance(rule.head, Modal) and rule.head.atom.theory == "test"
    assert head_table("test", rule.head) == "test:execute[test:p]"
    engine = Engine()
    engine.load_policy("test", "execute[p(x)] :- q(x)\nq(1)")
    assert engine.rows("test:execute[test:p]") == {(1,)}


def test_execute_with_a_service_is_unchanged():
    """congress/tests/datalog/test_nonrecur.py, test_modal_with_theory:
    ``run.insert('execute[nova:p(x)] :- q(x)', 'test')`` selects ``execute[nova:p(1)]``."""
    engine = Engine()
    engine.load_policy("test", "execute[nova:p(x)] :- q(x)\nq(1)")
    assert engine.rows("test:execute[nova:p]") == {(1,)}


# ---------------------------------------------------------------- a rule written twice


def test_a_rule_written_twice_is_kept_once_with_a_warning_at_the_copy():
    """congress/policy_engines/agnostic.py, persistent_insert_rules: only rules whose insert
    changed something are stored ("save rule to database if change actually happened"), so
    a rule given twice in one request is kept once."""
    rules = parse("p(x) :- q(x)\nr(1)\np(x)  :-  q(x)", "a.dl")
    kept, warnings = unique_rules(rules, "a")
    assert [str(r) for r in kept] == ["p(x) :- q(x)", "r(1)"]
    (warning,) = warnings
    assert (warning.code, warning.severity, str(warning.span)) == (
        "duplicate_rule", "warning", "a.dl:3:1")
    assert warning.notes == ("first written at a.dl:1:1",)
    assert "written twice in policy a" in warning.message


def test_congress_unsafe_traffic_library_file_loads_with_its_duplicate_kept_once():
    """Congress's own library/security_groups/unsafe_traffic.yaml writes the rule of "Case:
    any protocol" twice (again as "Case: no port_min and any protocol"); Congress loaded
    it, keeping the unique rules."""
    policy = load_library_file(VENDORED)
    assert policy.name == "UnsafeTraffic"
    comments = [r.comment for r in policy.rules]
    assert len(comments) == 11  # of 12 entries
    assert "Groups that allow unsafe traffic. Case: no port_min and any protocol" not in comments
    (warning,) = policy.warnings
    assert warning.code == "duplicate_rule" and warning.span.line == 85
    assert warning.notes == (f"first written at {VENDORED}:53:7",)


def test_a_library_file_keeps_each_rule_once():
    policy = load_library_policy(
        "name: lib\nrules:\n  - rule: p(1)\n    comment: first\n  - rule: 'p(1)'\n"
        "    comment: second\n", "lib.yaml")
    assert [r.comment for r in policy.rules] == ["first"]
    assert [str(w.span) for w in policy.warnings] == ["lib.yaml:5:12"]  # the rule, inside its quotes


def test_inserting_a_rule_the_policy_holds_is_still_an_error():
    """congress/policy_engines/agnostic.py, persistent_insert_rules: "change not accepted
    means it was already there": raise PolicyRuntimeException(name='rule_already_exists')."""
    engine = Engine()
    engine.load_policy("p", "q(1)")
    with pytest.raises(PolicyError) as info:
        engine.insert_rules("p", "q(1)")
    assert [d.code for d in info.value.diagnostics] == ["rule_already_exists"]


# ---------------------------------------------------------------- policy names


@pytest.mark.parametrize("name", ["classification", "action", "p", "Nova2", "a_b_c"])
def test_identifiers_name_policies(name):
    assert is_policy_name(name) and policy_name_problem(name) is None


@pytest.mark.parametrize("name", ["my-policy", "a.b", "_p", "2fast", "a b", "", "é"])
def test_other_names_do_not(name):
    """congress/policy_engines/agnostic.py, persistent_create_policy: "Policy name %s is
    not a valid tablename"; congress/library_service/library_service.py, create_policy:
    "name `%s` is not a valid policy name" (both a PolicyException)."""
    assert not is_policy_name(name)
    assert "letters, digits and '_', starting with a letter" in policy_name_problem(name)


def test_a_library_file_names_its_policy_with_an_identifier():
    with pytest.raises(PolicyError) as info:
        load_library_policy("name: my-policy\nrules: []\n", "lib.yaml")
    (d,) = info.value.diagnostics
    assert (d.code, str(d.span)) == ("invalid_policy_name", "lib.yaml:1:7")
    assert "(e.g. my_policy)" in d.message


# ---------------------------------------------------------------- a column given twice


@pytest.mark.parametrize(
    "text, col, words",
    [
        ("p(x) :- nova:q(id=x, status=y, id=z)", 32, "column id is given twice: id=x and id=z"),
        ("p(x) :- nova:q(1=x, 1=y)", 21, "column 1 is given twice: 1=x and 1=y"),
        ("p(x) :- nova:q(x, 0=y)", 19, "column 0 is given twice: by position (x) and as 0=y"),
    ],
)
def test_a_column_given_twice_is_an_error_without_a_schema(text, col, words):
    """congress/datalog/compile.py, DatalogSyntax.create_atom_dual_arg_list, which runs
    before any schema is looked at: "In atom {} two values for column name {} were
    provided", "In atom {} two values for column number {} were provided.", "In atom {}
    column number {} is already provided by position arguments."."""
    with pytest.raises(PolicyError) as info:
        parse(text, "p.dl")
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("duplicate_column", 1, col)
    assert words in d.message


# ---------------------------------------------------------------- unsafe literals


def test_a_variable_unsafe_in_several_negations_is_one_error_naming_each():
    """congress/datalog/compile.py, reorder_for_safety: one PolicyException for the rule,
    "Could not reorder rule {}.  Unsafe lits: {}", listing each unsafe literal with its
    variables ("not r(x, y) (vars {'y'}); not s(y) (vars {'y'})")."""
    found = diagnostics("p(x) :- q(x), not r(x, y), not s(y)")
    (d,) = found
    assert d.code == "unsafe_variable" and (d.span.line, d.span.col) == (1, 15)
    assert d.message.startswith("unsafe variable y: not r(x, y) and not s(y) need y bound")
    assert d.notes == ("also unsafe: not s(y) at p.dl:1:28",)


def test_unsafe_literals_with_nothing_in_common_are_separate_errors():
    found = diagnostics("p(x) :- q(x), not r(y), not s(z)")
    assert [(d.code, d.span.col) for d in found] == [("unsafe_variable", 15),
                                                    ("unsafe_variable", 25)]


def test_unsafe_literals_inside_an_aggregate_are_grouped_too():
    (d,) = diagnostics("p(x, n) :- q(x), n = count : { r(x, y), not s(z), not t(z) }")
    assert d.message.startswith("unsafe variable z: not s(z) and not t(z) need z bound")


@pytest.mark.parametrize(
    "text, words",
    [
        ("w(s) :- q(s, z), not r(s, y)", "unsafe literal not r(s, y):"),
        ("p(x) :- q(x), lt(y, 3)", "unsafe literal lt(y, 3):"),
        ("p(x) :- q(x), builtin:lt(y, 3)", "unsafe literal builtin:lt(y, 3):"),
        ("p(1, x)", "fact not ground: p(1, x) "),
        ("p(x) :- q(id=x)", "literal q(id=x) uses named arguments"),
        ("p(x) :- q(x), r+(x)", "literal r+(x) reads an update table"),
        ("p(x) :- q(x, y)\nr(x) :- q(x)", "q(x) has 1 arguments but p:q has 2 (as in q(x, y) at"),
        ("p(x, n) :- r(x), n = sum v : { q(x, _) }", "not bound inside the braces of "
         "n = sum v : { q(x, _) }"),
    ],
)
def test_messages_print_literals_as_the_user_wrote_them(text, words):
    """Congress's messages print the literal as parsed, without the policy's name the
    rule's tables belong to (``not r(s, y)``, not ``not p:r(s, y)``)."""
    messages = [d.message for d in diagnostics(text)]
    assert any(words in m for m in messages), messages
    assert not any("p:r(" in m or "p:q(" in m or "p:p(" in m for m in messages), messages


def test_a_builtin_prints_as_written():
    rule = parse_rule("p(x) :- q(x), lt(x, 3), builtin:gt(x, 1), not equal(x, 2)")
    assert str(rule) == "p(x) :- q(x), lt(x, 3), builtin:gt(x, 1), not equal(x, 2)"
    assert parse(str(rule)) == [rule]
