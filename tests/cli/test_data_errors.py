"""Bad rows found after the columnar reader gives up: the row reader's exact places.

A bad row at the end of a million-row file gets the same ``file:line:col`` as in a small
one, and nothing is loaded; JSON places are found by stepping over values
(``data_formats.json_place``), which must agree with composing the text as YAML (what the
row reader did before); NDJSON, CSV and Parquet files say where their bad rows are.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from charter.cli.data_formats import _Locator, json_place, line_col
from charter.cli.loading import DataFileError, load_workspace
from charter.cli.main import app
from charter.engine import Engine

runner = CliRunner()


def policy(tmp_path: Path) -> Path:
    path = tmp_path / "pol.dl"
    path.write_text("error(x) :- ext:t(x, y)\n")
    return path


@pytest.mark.slow
def test_a_bad_row_at_the_end_of_a_million_rows_gets_its_line_and_column(tmp_path):
    n = 1_000_000
    data = tmp_path / "big.json"
    with data.open("w") as f:  # the policy's facts: no datasource, no driver to look up
        f.write('{"pol:t": [\n')
        f.write("".join(f"  [{i}, {i % 7}],\n" for i in range(n - 1)))
        f.write('  [999999, "x", 3]\n]}\n')
    policy = tmp_path / "pol.dl"
    policy.write_text("error(x) :- t(x, y)\n")
    engine = Engine()
    with pytest.raises(DataFileError) as raised:
        load_workspace([policy], [data], engine=engine)
    assert raised.value.messages == [
        f'{data}:{n + 1}:3: error[arity_mismatch]: row {n} of pol:t [999999, "x", 3] has 3 '
        "values; pol:t has 2 columns (as its rules use it)"
    ]
    loaded = [t for t in engine.tables() if engine.count(t)]
    assert loaded == []  # nothing loaded: no row of pol:t, none derived


@st.composite
def documents(draw):
    keys = draw(st.lists(st.sampled_from(["a:t", "b:u", "c:v", "a:t "]), min_size=1, max_size=3))
    scalar = st.one_of(st.integers(), st.text(max_size=4), st.sampled_from(["\u2028", "\r", "é"]))
    rows = st.lists(
        st.one_of(
            st.lists(scalar, max_size=3),
            st.dictionaries(st.text(max_size=2), scalar, max_size=2),
            scalar,
        ),
        max_size=4,
    )
    return {k: draw(rows) for k in keys}


@settings(max_examples=300, deadline=None)
@given(
    doc=documents(),
    indent=st.sampled_from([None, 0, 1, 2]),
    crlf=st.booleans(),
    ascii_only=st.booleans(),
)
def test_json_places_are_those_composing_the_text_as_yaml_finds(doc, indent, crlf, ascii_only):
    text = json.dumps(doc, indent=indent, ensure_ascii=ascii_only)
    if crlf:
        text = text.replace("\n", "\r\n")
    yaml_locator = _Locator("d.json", text)
    yaml_locator.root()  # composed: the YAML places
    if yaml_locator._root is None:  # PyYAML cannot read this JSON: nothing to agree with
        return
    for key, rows in doc.items():
        for index in [None, *range(len(rows))]:
            offset = json_place(text, key, index)
            assert offset is not None
            line, col = line_col(text, offset)
            assert f"d.json:{line}:{col}" == yaml_locator.at(yaml_locator.node(key, index))


def test_a_json_place_outside_the_rows_is_none():
    assert json_place('{"a:t": [[1]]}', "a:t", 1) is None
    assert json_place('{"a:t": [[1]]}', "b:t", None) is None
    assert json_place("[1]", "a:t", None) is None


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ndjson_bad_lines_are_placed(tmp_path):
    data = write(tmp_path, "ext:t.ndjson", '[1, 2]\n\n  [3, 4, 5]\n{"x": 1, "x": 2}\n[6,\n')
    with pytest.raises(DataFileError) as raised:
        load_workspace([policy(tmp_path)], [data])
    assert raised.value.messages == [
        f"{data}:4:1: error[duplicate_key]: key 'x' appears twice in one object; keep one",
        f"{data}:5:4: error[data_syntax]: malformed JSON: Expecting value",
    ]
    data = write(tmp_path, "ext:t.ndjson", "[1, 2]\n\n  [3, 4, 5]\n")
    with pytest.raises(DataFileError) as raised:
        load_workspace([policy(tmp_path)], [data])
    assert raised.value.messages == [
        f"{data}:3:3: error[arity_mismatch]: row 2 of ext:t [3, 4, 5] has 3 values; ext:t has "
        "2 columns (as its rules use it)"
    ]


def test_csv_bad_records_are_placed(tmp_path):
    data = write(tmp_path, "ext:t.csv", 'x,y\n1,2\n"a\nb",3,4\n5\n')
    with pytest.raises(DataFileError) as raised:
        load_workspace([policy(tmp_path)], [data])
    assert raised.value.messages == [
        f"{data}:3:1: error[arity_mismatch]: row 2 of ext:t has 3 values; the header names 2 "
        "columns: x, y",
        f"{data}:5:1: error[arity_mismatch]: row 3 of ext:t has 1 values; the header names 2 "
        "columns: x, y",
    ]
    data = write(tmp_path, "ext:t.csv", "x,x\n1,2\n")
    with pytest.raises(
        DataFileError,
        match=r":1:1: error\[data_invalid\]: the header names "
        "column x twice",
    ):
        load_workspace([policy(tmp_path)], [data])


def test_csv_values_are_typed_one_by_one(tmp_path):
    data = write(tmp_path, "ext:t.csv", "x,y\n1,007\n1.5,\n-2,true\n")
    ws = load_workspace([policy(tmp_path)], [data])
    assert ws.engine.rows("ext:t") == {(1, "007"), (1.5, None), (-2, "true")}


def test_a_one_table_file_must_be_named_as_its_table(tmp_path):
    data = write(tmp_path, "servers.ndjson", "[1, 2]\n")
    with pytest.raises(DataFileError) as raised:
        load_workspace([policy(tmp_path)], [data])
    assert raised.value.messages == [
        f"{data}: error[data_invalid]: a .ndjson data file holds one table, named by the "
        "file's name as name:table; rename servers.ndjson (e.g. to nova:servers.ndjson)"
    ]


def test_parquet_rows_with_unknown_columns_are_reported_by_row(tmp_path):
    import duckdb

    data = tmp_path / "nova:servers.parquet"
    duckdb.sql(f"COPY (SELECT 'vm1' AS id, 'h1' AS hots) TO '{data}' (FORMAT parquet)")
    with pytest.raises(DataFileError) as raised:
        load_workspace([policy(tmp_path)], [data])
    (message,) = raised.value.messages
    assert message.startswith(
        f'{data}: error[unknown_column]: row 1 of nova:servers {{"id": "vm1", "hots": '
        '"h1"} has unknown column hots; nova:servers has columns id, name, host_id'
    )
    assert message.endswith("did you mean host_id for hots?")


def test_charter_eval_reads_parquet_and_says_so_in_its_help(tmp_path):
    import duckdb

    data = tmp_path / "ext:t.parquet"
    duckdb.sql(
        f"COPY (SELECT * FROM (VALUES (1, 'a'), (2, NULL)) v(x, y)) TO '{data}' (FORMAT parquet)"
    )
    result = runner.invoke(app, ["eval", str(policy(tmp_path)), "--data", str(data), "-f", "json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"pol:error": [[1], [2]]}
    help_text = runner.invoke(app, ["eval", "--help"]).stdout
    assert "Parquet" in help_text and "name:table" in help_text
