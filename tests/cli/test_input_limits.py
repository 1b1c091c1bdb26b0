"""Regression tests of issue 11: no policy text or data file crashes or stalls the CLI.

Each input an attacker sent (a 5,000-digit integer, a lone surrogate escape, JSON nested
100,000 deep, a YAML "billion laughs") is refused with a located diagnostic and exit 1,
never a traceback. No timing assertions: without the fix the alias test would run until
killed, so the subprocess has a timeout that turns such a regression into a failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charter.cli.main import app
from charter.lang import limits

runner = CliRunner()
BIG = "9" * 5000
SUBPROCESS_TIMEOUT = 60  # seconds: only a stall (the bug) comes near it


def charter(*args: str):
    return runner.invoke(app, list(args))


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def assert_refused(result, where: str, code: str, *, stream: str = "stderr") -> str:
    """Exit 1, no traceback, and a diagnostic ``where: error[code]: ...``."""
    text = getattr(result, stream)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{where}: error[{code}]: " in text, text
    return text


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels + 1):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]")
    lines.append(f"ext:t: [[*a{levels}]]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def policy(tmp_path) -> str:
    return write(tmp_path, "p.dl", "error(x) :- ext:t(x)\n")


# ---------------------------------------------------------------- integers


def test_a_5000_digit_integer_in_a_rule_is_literal_too_large(tmp_path):
    path = write(tmp_path, "big.dl", f"p(x) :- q(x), x > {BIG}\n")
    text = assert_refused(charter("check", path), f"{path}:1:19", "literal_too_large",
                          stream="stdout")
    assert "integer of 5000 digits is over the limit of 100" in text
    assert max(len(line) for line in text.splitlines()) < 400  # the line is cut, not dumped
    assert_refused(charter("eval", path), f"{path}:1:19", "literal_too_large")


def test_a_5000_digit_integer_in_a_library_policy_is_located_in_the_yaml(tmp_path):
    path = write(tmp_path, "lib.yaml", f"name: lib\nrules:\n  - rule: p(x) :- q(x), x > {BIG}\n")
    assert_refused(charter("check", path), f"{path}:3:29", "literal_too_large", stream="stdout")


@pytest.mark.parametrize(
    ("name", "text", "place"),
    [
        ("d.json", '{"ext:t": [[' + BIG + "]]}", "1:13"),
        ("d.json", '{"ext:t": [["a"],\n [-' + BIG + "]]}", "2:3"),
        ("d.yaml", "ext:t:\n  - [" + BIG + "]\n", "2:6"),
        ("d.yaml", "ext:t:\n  - [0x" + "f" * 5000 + "]\n", "2:6"),
        ("d.yaml", "ext:t:\n  - [!!int '" + BIG + "']\n", "2:6"),
    ],
)
def test_a_5000_digit_integer_in_a_data_file_is_literal_too_large(tmp_path, policy, name,
                                                                   text, place):
    data = write(tmp_path, name, text)
    assert_refused(charter("eval", policy, "--data", data), f"{data}:{place}",
                   "literal_too_large")


def test_an_integer_a_rule_would_make_too_large_fails_its_row(tmp_path):
    """Squarings in a chain would outgrow any printer (and the memory): the first result
    past limits.max_int_digits fails its row, as a failing builtin does."""
    path = write(tmp_path, "sq.dl", "error(f) :- ext:t(x), a = x * x, b = a * a, c = b * b, "
                                    "d = c * c, e = d * d, f = e * e\n")
    data = write(tmp_path, "d.json", json.dumps({"ext:t": [[10**99], [3]]}))
    result = charter("eval", path, "--data", data, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"sq:error": [[3 ** 64]]}


# ---------------------------------------------------------------- Unicode


@pytest.mark.parametrize("text", ['error("\\ud800")', 'error("\\udc00 tail")',
                                  "error('\\ud83d')"])
def test_a_lone_surrogate_escape_in_a_rule_is_invalid_unicode(tmp_path, text):
    path = write(tmp_path, "s.dl", text + "\n")
    out = assert_refused(charter("check", path), f"{path}:1:8", "invalid_unicode",
                         stream="stdout")
    assert "surrogate" in out
    assert_refused(charter("eval", path), f"{path}:1:8", "invalid_unicode")


def test_an_escaped_surrogate_pair_is_the_character_it_denotes(tmp_path):
    path = write(tmp_path, "pair.dl", 'error("\\ud83d\\ude00")\n')
    result = charter("eval", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"pair:error": [["\U0001F600"]]}


@pytest.mark.parametrize(
    ("name", "text", "place", "code"),
    [
        ("d.json", '{"ext:t": [["ok"], ["\\ud800"]]}', "1:22", "invalid_unicode"),
        ("d.json", '{"ext:t": [["\\ud83d\\ude00"], ["\\udfff"]]}', "1:32", "invalid_unicode"),
        ("d.yaml", 'ext:t:\n  - ["\\ud800"]\n', "2:9", "data_syntax"),  # libyaml's own
    ],
)
def test_a_lone_surrogate_escape_in_a_data_file_is_refused(tmp_path, policy, name, text,
                                                           place, code):
    data = write(tmp_path, name, text)
    assert_refused(charter("eval", policy, "--data", data), f"{data}:{place}", code)


def test_a_lone_surrogate_escape_in_a_library_file_is_invalid_unicode(tmp_path):
    """Library files are read by PyYAML's own loader, which decodes the escape."""
    path = write(tmp_path, "lib.yaml", 'name: lib\nrules:\n  - rule: "p(\\udc00)"\n')
    assert_refused(charter("check", path), f"{path}:3:11", "invalid_unicode", stream="stdout")


def test_a_data_file_may_start_with_a_byte_order_mark(tmp_path, policy):
    data = tmp_path / "bom.json"
    data.write_bytes(b"\xef\xbb\xbf" + json.dumps({"ext:t": [["vm1"]]}).encode())
    result = charter("eval", policy, "--data", str(data), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"p:error": [["vm1"]]}


# ---------------------------------------------------------------- nesting


def test_json_nested_100000_deep_is_too_deep(tmp_path, policy):
    data = write(tmp_path, "deep.json", '{"ext:t": ' + "[" * 100_000 + "]" * 100_000 + "}")
    out = assert_refused(charter("eval", policy, "--data", data), f"{data}:1:74", "too_deep")
    assert "nested deeper than 64 levels (limits.max_depth)" in out


@pytest.mark.parametrize(
    ("text", "place", "code"),
    [
        ("ext:t: " + "[" * 500 + "]" * 500 + "\n", "1:71", "too_deep"),
        ("ext:t:\n" + "".join(" " * n + "-\n" for n in range(2, 300)), "65:66", "too_deep"),
        # libyaml reads flow collections ahead and stops at 1,000 levels itself
        ("ext:t: " + "[" * 50_000 + "]" * 50_000 + "\n", "1:1007", "data_syntax"),
    ],
)
def test_yaml_nested_deeply_is_refused(tmp_path, policy, text, place, code):
    data = write(tmp_path, "deep.yaml", text)
    assert_refused(charter("eval", policy, "--data", data), f"{data}:{place}", code)


def test_a_library_file_nested_deeply_is_too_deep(tmp_path):
    """Library files are read by PyYAML's pure Python loader, which composes recursively."""
    path = write(tmp_path, "lib.yaml", "name: lib\nrules: []\nx: " + "[" * 50_000 + "]" * 50_000)
    assert_refused(charter("check", path), f"{path}:3:67", "too_deep", stream="stdout")


def test_an_expression_nested_deeply_in_a_rule_is_too_deep(tmp_path):
    path = write(tmp_path, "deep.dl", "p(x) :- q(y), x = " + "-(" * 5000 + "y" + ")" * 5000)
    assert_refused(charter("check", path), f"{path}:1:147", "too_deep", stream="stdout")
    chain = write(tmp_path, "chain.dl", "p(x) :- q(y), x = " + " + ".join(["y"] * 10_000))
    assert_refused(charter("eval", chain), f"{chain}:1:19", "too_deep")


def test_a_rule_with_more_literals_than_the_limit_is_rule_too_large(tmp_path):
    path = write(tmp_path, "long.dl", "p(x) :- " + ", ".join(f"q(x, {i})" for i in range(51)))
    with limits.overridden(max_rule_literals=50):
        out = assert_refused(charter("eval", path), f"{path}:1:1", "rule_too_large")
    assert "51 body literals, over the limit of 50" in out


# ---------------------------------------------------------------- YAML aliases


def test_a_billion_laughs_data_file_is_refused_not_expanded(tmp_path, policy):
    data = write(tmp_path, "lol.yaml", billion_laughs())
    out = assert_refused(charter("eval", policy, "--data", data), f"{data}:5:10", "yaml_aliases")
    assert "limits.max_yaml_alias_nodes" in out


def test_a_billion_laughs_library_policy_is_refused(tmp_path):
    text = billion_laughs().replace("ext:t: [[*a9]]", "name: lol\nrules: []\nx: *a9")
    path = write(tmp_path, "lol.yaml", text)
    assert_refused(charter("check", path), f"{path}:5:10", "yaml_aliases", stream="stdout")


@pytest.mark.parametrize(("text", "col"), [("ext:t: &a [[1], *a]\n", 17),
                                          ("ext:t: &a {k: [*a]}\n", 16)])
def test_an_alias_inside_its_own_anchor_is_refused(tmp_path, policy, text, col):
    data = write(tmp_path, "loop.yaml", text)
    assert_refused(charter("eval", policy, "--data", data), f"{data}:1:{col}", "yaml_aliases")


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("ext:t:\n  - [!!int abc]\n", "2:6"),
        ("ext:t:\n  - [!!bool maybe]\n", "2:6"),
        ("ext:t:\n  - [2001-13-45]\n", "2:6"),
        ("ext:t:\n  - [!!float '']\n", "2:6"),
    ],
)
def test_a_yaml_value_pyyaml_cannot_make_is_a_located_error(tmp_path, policy, text, place):
    data = write(tmp_path, "bad.yaml", text)
    assert_refused(charter("eval", policy, "--data", data), f"{data}:{place}", "data_syntax")


# ---------------------------------------------------------------- other commands


def test_explain_and_admit_refuse_a_huge_integer_in_their_row(tmp_path, policy):
    result = charter("explain", policy, "--row", f"error({BIG})")
    assert_refused(result, "--row:1:7", "literal_too_large")
    admit = charter("admit", "--policy", "p", "--insert", f'ext:t("\\ud800", {BIG})')
    assert admit.exit_code == 2 and "Traceback" not in admit.stderr
    assert "invalid_unicode" in admit.stderr and "literal_too_large" in admit.stderr


# ---------------------------------------------------------------- a real process


def test_charter_eval_in_a_subprocess_refuses_each_attack_promptly(tmp_path):
    """The real exit status and stderr; a stall (the billion laughs expanding) would hit
    the timeout and fail the test instead of hanging the suite."""
    policy = write(tmp_path, "p.dl", "error(x) :- ext:t(x)\n")
    big = write(tmp_path, "big.dl", f"p(x) :- q(x), x > {BIG}\n")
    lol = write(tmp_path, "lol.yaml", billion_laughs())
    deep = write(tmp_path, "deep.json", '{"ext:t": ' + "[" * 100_000 + "]" * 100_000 + "}")
    for args, where, code in [
        ([policy, "--data", lol], f"{lol}:5:10", "yaml_aliases"),
        ([big], f"{big}:1:19", "literal_too_large"),
        ([policy, "--data", deep], f"{deep}:1:74", "too_deep"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "charter.cli.main", "eval", *args],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )
        assert result.returncode == 1, result.stderr
        assert f"{where}" in result.stderr and f"error[{code}]" in result.stderr
        assert "Traceback" not in result.stderr
