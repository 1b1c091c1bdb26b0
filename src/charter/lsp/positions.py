"""Between Charter's places and the Language Server Protocol's positions.

Charter's spans count lines by ``\\n`` from 1 and columns in characters (code points) from 1,
as Lark does. LSP counts lines from 0, ending at ``\\n``, ``\\r\\n`` or ``\\r``, and columns
in the units of the position encoding the client and server agreed on: UTF-16 code units
unless the client offered another (an emoji is one column in Charter, two in UTF-16, four in
UTF-8). Both sides go through a character offset into the text, so neither line rule leaks
into the other.

>>> text = 'p("é😀", x) :- q(x)\\n'
>>> lines = LineIndex(text)
>>> offset = lines.offset_of(1, 9)  # Charter's 1:9 is the 'x'
>>> text[offset], lines.position(offset), lines.position(offset, "utf-8")
('x', (0, 9), (0, 12))
>>> lines.offset(0, 9) == offset
True
"""

from __future__ import annotations

import bisect
import re

__all__ = ["UTF8", "UTF16", "UTF32", "LineIndex", "units"]

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"

_LSP_BREAK = re.compile(r"\r\n|\r|\n")


def units(text: str, encoding: str = UTF16) -> int:
    """How many columns ``text`` spans in ``encoding``'s code units.

    >>> units("a😀"), units("a😀", UTF8), units("a😀", UTF32)
    (3, 5, 2)
    """
    if encoding == UTF32:
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _chars(text: str, count: int, encoding: str) -> int:
    """How many characters of ``text`` fit in ``count`` code units (a position inside a
    character's units moves to its start, as the protocol asks)."""
    if encoding == UTF32:
        return min(count, len(text))
    used = 0
    for index, ch in enumerate(text):
        used += units(ch, encoding)
        if used > count:
            return index
    return len(text)


class LineIndex:
    """The line starts of one text, by Charter's rule and by LSP's, for converting places."""

    def __init__(self, text: str):
        self.text = text
        self._charter = [0] + [m.end() for m in re.finditer("\n", text)]
        self._lsp = [0] + [m.end() for m in _LSP_BREAK.finditer(text)]

    # ------------------------------------------------------------ Charter side

    def offset_of(self, line: int, col: int) -> int:
        """The offset of Charter's 1-based ``line``:``col``, clamped into the text."""
        line = min(max(line, 1), len(self._charter))
        start = self._charter[line - 1]
        end = self._charter[line] - 1 if line < len(self._charter) else len(self.text)
        return min(start + max(col, 1) - 1, end)

    def line_col(self, offset: int) -> tuple[int, int]:
        """Charter's 1-based line and column of ``offset``.

        >>> LineIndex("ab\\ncd").line_col(4)
        (2, 2)
        """
        offset = min(max(offset, 0), len(self.text))
        line = bisect.bisect_right(self._charter, offset)
        return line, offset - self._charter[line - 1] + 1

    # ------------------------------------------------------------ LSP side

    def _lsp_line(self, line: int) -> tuple[int, int]:
        """Start and end offsets of LSP line ``line`` (0-based), without its line break."""
        start = self._lsp[line]
        if line + 1 < len(self._lsp):
            end = self._lsp[line + 1]
            end -= 2 if self.text.startswith("\r\n", end - 2) else 1
        else:
            end = len(self.text)
        return start, end

    def position(self, offset: int, encoding: str = UTF16) -> tuple[int, int]:
        """LSP's 0-based line and character of ``offset``.

        >>> LineIndex("a\\r\\n😀b").position(4)
        (1, 2)
        """
        offset = min(max(offset, 0), len(self.text))
        line = bisect.bisect_right(self._lsp, offset) - 1
        start, end = self._lsp_line(line)
        return line, units(self.text[start : min(offset, end)], encoding)

    def offset(self, line: int, character: int, encoding: str = UTF16) -> int:
        """The offset of LSP's ``line``:``character``; past the end of a line (or of the text)
        is its end, as the protocol says.

        >>> LineIndex("😀b\\nc").offset(0, 2), LineIndex("ab").offset(5, 0)
        (1, 2)
        """
        if line >= len(self._lsp):
            return len(self.text)
        start, end = self._lsp_line(max(line, 0))
        return start + _chars(self.text[start:end], max(character, 0), encoding)

    def end(self, encoding: str = UTF16) -> tuple[int, int]:
        """LSP's position of the end of the text (a whole-document edit ends there)."""
        return self.position(len(self.text), encoding)
