"""Blocks of pushed rows (store/blocks.py): every value back with its type, the JSON form for
what MessagePack cannot hold, NaN marked, bad values refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from charter.store.blocks import JSON, MSGPACK, MSGPACK_NAN, decode_block, encode_block, holds_nan
from charter.store.errors import StoreError


@pytest.mark.parametrize("rows, tag", [
    ([(1, 1.0, "1", True, None), (0, 0.0, "", False, "None")], MSGPACK),
    ([(-(2**63), 2**64 - 1, "x\x00\U0001f600", float("inf"), -0.0)], MSGPACK),
    ([(2**64,)], JSON),
    ([("\ud800",)], JSON),
    ([(("nested", 1), ())], JSON),
    ([], MSGPACK),
    ([()], MSGPACK),
])  # fmt: skip
def test_rows_come_back_with_their_types(rows, tag):
    block = encode_block(rows)
    assert block[:1] == tag
    back = decode_block(block)
    assert back == rows
    assert [[type(v) for v in r] for r in back] == [[type(v) for v in r] for r in rows]
    assert not holds_nan(block)


def test_numpy_scalars_come_back_as_python_values():
    ((i, f, b),) = decode_block(encode_block([(np.int64(7), np.float64(2.5), np.bool_(True))]))
    assert (type(i), type(f), type(b)) == (int, float, bool) and (i, f, b) == (7, 2.5, True)


def test_a_nan_is_marked():
    block = encode_block([(1.5, "a"), (float("nan"), "b")])
    assert block[:1] == MSGPACK_NAN and holds_nan(block)
    (x, a), (nan, b) = decode_block(block)
    assert (x, a, b) == (1.5, "a", "b") and math.isnan(nan)
    assert holds_nan(encode_block([(float("nan"), 2**70)]))  # the JSON form


def test_a_value_no_row_holds_is_refused():
    for bad in ({"a": 1}, b"bytes", object()):
        with pytest.raises(TypeError, match="cannot store .* in a row"):
            encode_block([(1,), (bad,)])


def test_a_block_of_an_unknown_form_is_refused():
    with pytest.raises(StoreError, match="format this Charter does not know"):
        decode_block(b"Z\x90")
