"""The in-memory check gives what ``charter check`` gives for the same files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.cli.loading import check_policy_files
from charter.lsp.checking import check_texts

ROOT = Path(__file__).parent.parent.parent
POLICY_FILES = sorted(
    str(p.relative_to(ROOT))
    for folder in ("examples", "tests/cli/fixtures", "tests/lang/fixtures")
    for p in (ROOT / folder).rglob("*")
    if p.suffix in (".dl", ".yaml", ".yml")
)


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_there_are_files_to_compare():
    assert len(POLICY_FILES) > 10
    assert "examples/mistakes/typos.dl" in POLICY_FILES


@pytest.mark.parametrize("path", POLICY_FILES)
def test_each_file_alone(path: str):
    text = Path(path).read_bytes().decode("utf-8-sig")
    assert check_texts({path: text}) == check_policy_files([path], {})


def test_files_checked_together_as_charter_check_does():
    paths = [
        "examples/cloud.dl",
        "examples/library/disallowed_flavors.yaml",
        "examples/mistakes/typos.dl",
        "tests/cli/fixtures/network.dl",
        "tests/cli/fixtures/audit.dl",
    ]
    texts = {p: Path(p).read_text(encoding="utf-8") for p in paths}
    assert check_texts(texts) == check_policy_files(paths, {})


def test_two_texts_of_one_policy(tmp_path: Path):
    (tmp_path / "b").mkdir()
    paths = [str(tmp_path / "a.dl"), str(tmp_path / "b" / "a.dl")]
    for path in paths:
        Path(path).write_text("p(1)\n", encoding="utf-8")
    found = check_texts(dict.fromkeys(paths, "p(1)\n"))
    assert found == check_policy_files(paths, {})
    assert [d.code for d in found] == ["duplicate_policy"]


def test_unsaved_text_is_what_is_checked(tmp_path: Path):
    path = tmp_path / "p.dl"
    path.write_text("p(x) :- q(y)\n", encoding="utf-8")
    assert any(d.is_error for d in check_policy_files([str(path)], {}))
    found = check_texts({str(path): "p(x) :- q(x)\n"})
    assert [d.code for d in found] == ["unknown_table"]  # lint's warning only: q has no rule
