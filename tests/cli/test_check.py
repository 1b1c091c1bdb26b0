"""Tests of ``charter check``: every diagnostic of every file, rendered, with a summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from charter.cli.main import app

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parents[2]
runner = CliRunner()


def check(*files: str):
    result = runner.invoke(app, ["check", *files])
    assert "Traceback" not in result.stdout + result.stderr
    return result


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_clean_policies_pass():
    result = check("network.dl", "audit.dl", "library/flavors.yaml")
    assert result.exit_code == 0, result.stdout
    assert result.stdout == "0 errors, 0 warnings\n"


def test_the_examples_pass():
    result = check(
        str(ROOT / "examples/cloud.dl"), str(ROOT / "examples/library/disallowed_flavors.yaml")
    )
    assert result.exit_code == 0, result.stdout


def test_warnings_alone_exit_0_and_are_rendered_with_a_caret():
    result = check("padded.dl")
    assert result.exit_code == 0
    assert result.stdout == (
        "padded.dl:2:14: warning[padded_literal]: literal nova:servers(vm, _name, _host) has 3 "
        "of the 11 columns of nova:servers; the rest are padded with anonymous variables (write "
        "them out, or use named columns)\n"
        "    error(vm) :- nova:servers(vm, _name, _host)\n"
        "                 ^\n"
        "0 errors, 1 warning\n"
    )


def test_every_error_of_every_file_is_printed(tmp_path):
    syntax = write(tmp_path, "syntax.dl", "p(x) :- q(x)\nr(x) :- s(x,\n")
    columns = write(
        tmp_path,
        "columns.dl",
        "error(x) :- nova:servers(id=x, bogus=y)\n"
        "warning(x) :- nova:serverz(x)\n"
        "padded(x) :- nova:servers(x)\n",
    )
    result = check(syntax, columns, "padded.dl")
    assert result.exit_code == 1
    out = result.stdout
    assert f"{syntax}:2:13: error[parse_error]" in out
    assert f"{columns}:1:" in out and "error[unknown_column]" in out and "column name bogus" in out
    assert f"{columns}:2:15: error[unknown_table]" in out and "did you mean nova:servers?" in out
    assert f"{columns}:3:14: warning[padded_literal]" in out
    assert "padded.dl:2:14: warning[padded_literal]" in out
    assert f"{columns}:3:1: warning[unused_table]" in out  # lint: nothing reads columns:padded
    assert out.splitlines()[-1] == "3 errors, 3 warnings"
    assert "    warning(x) :- nova:serverz(x)\n                  ^" in out


def test_all_errors_of_one_file_not_only_the_first(tmp_path):
    bad = write(
        tmp_path,
        "bad.dl",
        "h(x) :- q(y)\nerror(x) :- nova:servers(id=x, nme=n)\nwarning(x) :- p(x), not r(z)\n",
    )
    result = check(bad)
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith(bad)]
    assert [line.split(": ")[1].split("[")[1].rstrip("]") for line in lines] == [
        "unsafe_variable",
        "unknown_column",
        "unsafe_variable",
    ]
    assert result.stdout.splitlines()[-1] == "3 errors, 0 warnings"


def test_cross_policy_checks_run_over_all_files(tmp_path):
    a = write(tmp_path, "a.dl", "t(x, y) :- ext:u(x, y)\n")
    b = write(tmp_path, "b.dl", "error(x) :- a:t(x)\n")
    result = check(a, b)
    assert result.exit_code == 1
    assert "error[arity_mismatch]" in result.stdout and "a:t" in result.stdout
    p = write(tmp_path, "p.dl", "win(x) :- ext:move(x, y), not q:win(y)\n")
    q = write(tmp_path, "q.dl", "win(x) :- ext:move(x, y), not p:win(y)\n")
    result = check(p, q)
    assert result.exit_code == 1 and "error[unstratifiable]" in result.stdout


def test_library_rule_errors_point_into_the_yaml(tmp_path):
    lib = write(
        tmp_path,
        "lib.yaml",
        "name: Lib\nrules:\n  - rule: ok(1)\n  - rule: >\n      error(x) :- nova:servers(id=x, bogus=1)\n",
    )
    result = check(lib)
    assert result.exit_code == 1
    assert f"{lib}:5:" in result.stdout and "error[unknown_column]" in result.stdout
    assert "      error(x) :- nova:servers(id=x, bogus=1)" in result.stdout


def test_duplicate_policies_and_rules(tmp_path):
    (tmp_path / "other").mkdir()
    one = write(tmp_path, "p.dl", "ok(1)\nok(1)\n")
    two = write(tmp_path, "other/p.dl", "ok(2)\n")
    result = check(one, two)
    assert result.exit_code == 1
    assert f"{one}:2:1: warning[duplicate_rule]" in result.stdout  # kept once, as Congress
    assert "error[duplicate_policy]" in result.stdout and "both define policy p" in result.stdout


def test_unknown_library_kind(tmp_path):
    lib = write(tmp_path, "lib.yaml", "name: Lib\nkind: bogus\nrules: []\n")
    result = check(lib)
    assert result.exit_code == 1 and f"{lib}:2:1: error[library_invalid]" in result.stdout


def test_missing_file_is_an_error_but_others_are_checked(tmp_path):
    bad = write(tmp_path, "bad.dl", "p(x) :- \n")
    result = check("nothere.dl", bad)
    assert result.exit_code == 1
    assert "cannot read nothere.dl" in result.stdout and f"{bad}:" in result.stdout
    assert result.stdout.splitlines()[-1] == "2 errors, 0 warnings"


def test_usage_errors_exit_2():
    assert runner.invoke(app, ["check"]).exit_code == 2
    assert runner.invoke(app, ["check", "--bogus", "x.dl"]).exit_code == 2


def test_check_in_a_subprocess(tmp_path):
    bad = write(tmp_path, "bad.dl", "error(x) :- nova:serverz(x)\n")
    result = subprocess.run(
        [sys.executable, "-m", "charter.cli.main", "check", bad, "padded.dl"],
        cwd=FIXTURES,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"{bad}:1:13: error[unknown_table]" in result.stdout
    assert result.stdout.splitlines()[-1] == "1 error, 1 warning"
    assert "Traceback" not in result.stderr
