"""Charter's places (1-based, code points) to LSP positions (0-based, negotiated units)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from charter.lsp.positions import UTF8, UTF16, UTF32, LineIndex, units

TEXT = "a😀é\r\nb\n\n😀😀x\rlast"


@pytest.mark.parametrize(("encoding", "x_column"), [(UTF16, 4), (UTF8, 8), (UTF32, 2)])
def test_columns_count_the_encodings_units(encoding: str, x_column: int):
    lines = LineIndex(TEXT)
    x = TEXT.index("x")
    assert lines.position(x, encoding) == (3, x_column)
    assert lines.offset(3, x_column, encoding) == x


def test_lsp_lines_end_at_crlf_cr_and_lf_charter_lines_only_at_lf():
    lines = LineIndex(TEXT)
    last = TEXT.index("last")
    assert lines.position(last) == (4, 0)  # \r ends an LSP line
    assert lines.line_col(last) == (4, 5)  # but not a Charter one (as Lark counts)
    assert lines.offset_of(4, 5) == last
    assert lines.position(TEXT.index("\r\n")) == (0, 4)  # a line's end is before \r\n
    assert lines.offset(0, 99) == TEXT.index("\r\n")  # past a line's end is its end


def test_a_position_inside_a_surrogate_pair_is_the_characters_start():
    lines = LineIndex("😀x")
    assert lines.offset(0, 1) == 0
    assert lines.offset(0, 2) == 1
    assert lines.offset(0, 3, UTF8) == 0


def test_end_of_text():
    assert LineIndex("ab\n😀").end() == (1, 2)
    assert LineIndex("").end() == (0, 0)
    assert LineIndex("ab\n").end() == (1, 0)


def test_out_of_range_charter_places_are_clamped():
    lines = LineIndex("ab\ncd")
    assert lines.offset_of(9, 1) == 3
    assert lines.offset_of(1, 99) == 2
    assert lines.offset_of(0, 0) == 0


@given(st.text(alphabet=st.sampled_from("ab\n\r😀é\u2028"), max_size=30), st.data())
def test_offsets_round_trip_in_every_encoding(text: str, data):
    lines = LineIndex(text)
    offset = data.draw(st.integers(0, len(text)))
    if text[offset - 1 : offset + 1] == "\r\n":  # between \r and \n: no position of its own
        offset -= 1
    for encoding in (UTF8, UTF16, UTF32):
        line, character = lines.position(offset, encoding)
        assert lines.offset(line, character, encoding) == offset
    line, col = lines.line_col(offset)
    assert lines.offset_of(line, col) == offset


def test_units():
    assert [units("😀", e) for e in (UTF8, UTF16, UTF32)] == [4, 2, 1]
