"""Fuzzing the data loaders (issue 11): whatever a JSON or YAML data file holds,
``read_data_file`` and ``load_workspace`` raise nothing but DataError, PolicyError or
InputError, promptly, and what they load is valid Unicode.

Inputs: generated values (huge integers, odd Unicode and lone surrogates, deep nesting)
written as JSON and YAML, and mutations of the committed corpus of data files
(``tests/fuzz/corpus/data``: the issue's billion laughs, deep and huge files among them)
with YAML's aliases, tags and base-60 integers put in. Reproducible (``derandomize``, no
example database) and bounded for CI by ``max_examples``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.cli.loading import load_workspace, read_data_file
from charter.lang.errors import DataError, PolicyError
from charter.lang.limits import InputError
from tests.fuzz.harness import bounded, data_files, mutate, odd_characters

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)
EXPECTED = (DataError, PolicyError, InputError)
POLICY = "error(x) :- ext:t(x)\nwarning(x, n) :- ext:u(id=x, n=n)\nf(1, 2, 3, 4)\n"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**99, -(10**100), 10**100]),  # 5,000 digits: in the corpus, pieces
    st.floats(),
    st.text(st.one_of(st.characters(), odd_characters), max_size=6),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
    ),
    max_leaves=12,
)
rows = st.lists(st.one_of(st.lists(scalars, max_size=4), st.fixed_dictionaries(
    {"id": scalars, "n": scalars}), values), max_size=4)
tables = st.dictionaries(st.sampled_from(["ext:t", "ext:u", "p:f", "nova:servers", "x", ":y"]),
                         rows, max_size=3)

YAML_PIECES = (
    "&a ", "*a", "&b [*a, *a, *a]", "!!int ", "!!float ", "!!bool ", "!!binary ", "!!str ",
    "!!timestamp ", "!!set ", "!!python/name:os.system ", "<<: *a\n", "? ", "- ", "[", "]",
    "{", "}", ": ", ",", "\n", "  ", "---\n", "...\n", "%TAG !e! tag:yaml.org,2002:\n---\n",
    "0x" + "f" * 200, "0b" + "1" * 400, "0" + "7" * 150, "1" + ":59" * 80, "9" * 5000,
    "2001-13-45", "2001-12-14t21:59:43.10-05:00", ".inf", ".nan", "~", '"\\ud800"',
    '"\\ud83d\\ude00"', "'\\ud800'", "[" * 200, "{a: " * 100,
)
JSON_PIECES = (
    "[", "]", "{", "}", ",", ":", '"', '"\\ud800"', '"\\ud83d\\ude00"', '"\\udfff"', "\\",
    "9" * 5000, "-" + "9" * 120, "1e999", "NaN", "-Infinity", "null", "true", "[" * 2000,
    '{"a": ' * 200, '"ext:t"', "\ufeff",
)


def pieces(suffix: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(JSON_PIECES if suffix == ".json" else YAML_PIECES),
                     odd_characters)


@st.composite
def generated_files(draw) -> tuple[str, bytes]:
    data = draw(st.one_of(tables, values))
    if draw(st.booleans()):
        text = json.dumps(data, ensure_ascii=draw(st.booleans()))
        return ".json", text.encode("utf-8", "surrogatepass")
    try:
        text = yaml.safe_dump(data, allow_unicode=draw(st.booleans()))
    except yaml.YAMLError:
        text = json.dumps(data)  # JSON is YAML too
    return ".yaml", text.encode("utf-8", "surrogatepass")


@st.composite
def mutated_files(draw) -> tuple[str, bytes]:
    suffix, raw = draw(st.sampled_from(data_files()))
    suffix = draw(st.sampled_from([suffix, ".yaml" if suffix == ".json" else ".json"]))
    text = mutate(raw.decode("utf-8", "surrogateescape"), draw, pieces(suffix))
    return suffix, text.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "p.dl").write_text(POLICY)
    return folder


def check_loaders(folder: Path, suffix: str, raw: bytes) -> None:
    path = folder / f"data{suffix}"
    path.write_bytes(raw)
    with bounded(raw[:200]):
        try:
            tables = read_data_file(path)
        except EXPECTED:
            tables = None
        for table in tables or ():
            json.dumps(table.rows, default=str, ensure_ascii=False).encode("utf-8")
        try:
            workspace = load_workspace([folder / "p.dl"], [path])
        except EXPECTED:
            return
        for table in workspace.engine.tables():
            for row in workspace.engine.rows(table):
                for value in row:
                    if isinstance(value, str):
                        value.encode("utf-8")


@pytest.mark.parametrize(("suffix", "raw"), data_files(), ids=range(len(data_files())))
def test_every_corpus_file_is_loaded_or_refused(folder, suffix, raw):
    check_loaders(folder, suffix, raw)


@FUZZ
@given(generated_files())
def test_generated_data_files(folder, file):
    check_loaders(folder, *file)


@FUZZ
@given(mutated_files())
def test_mutated_data_files(folder, file):
    check_loaders(folder, *file)
