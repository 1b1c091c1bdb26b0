"""What the fuzz tests share: the committed corpus, mutations of it, odd text, a stall bound.

The corpus is every real policy the tests hold (``tests/cases``, ``tests/lang/fixtures``,
``tests/cli/fixtures``, the built-in library) plus ``tests/fuzz/corpus``: seed inputs and
the regressions of issue 11 (``parser/*.dl``, ``data/*``), and ``parser/regressions.json``,
a JSON list of policy texts the fuzzer once crashed on (JSON so that a text holding a raw
lone surrogate, which no UTF-8 file can hold, can be kept too). Add each new crasher there.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import yaml
from hypothesis import strategies as st

TESTS = Path(__file__).parents[1]
CORPUS = Path(__file__).parent / "corpus"
LIBRARY = TESTS.parent / "src" / "charter" / "library"

STALL_SECONDS = 10
"""A generous bound per input: only a stall (what issue 11 was about) comes near it."""


class Stalled(AssertionError):
    """An input took longer than :data:`STALL_SECONDS`."""


@contextmanager
def bounded(what: object, seconds: int = STALL_SECONDS) -> Iterator[None]:
    """Fail (not hang) when the block runs longer than ``seconds`` (SIGALRM: main thread)."""

    def alarm(signum, frame):
        raise Stalled(f"stalled over {seconds} s on {str(what)[:200]!r}")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------- the corpus


@cache
def policy_texts() -> tuple[str, ...]:
    """Every policy text of the corpus: Datalog files, library rules, test cases' policies."""
    texts: list[str] = []
    for folder in (TESTS / "lang" / "fixtures", TESTS / "cli" / "fixtures", CORPUS / "parser"):
        texts += [p.read_text("utf-8") for p in sorted(folder.rglob("*.dl"))]
    libraries = [*LIBRARY.glob("*.yaml"), *(TESTS / "lang" / "fixtures").rglob("*.yaml"),
                 *(TESTS / "cli" / "fixtures" / "library").glob("*.yaml")]
    for path in sorted(libraries):
        document = yaml.safe_load(path.read_text("utf-8"))
        texts += [entry["rule"] for entry in document.get("rules") or [] if "rule" in entry]
    for path in sorted((TESTS / "cases").rglob("*.yaml")):
        document = yaml.safe_load(path.read_text("utf-8"))
        texts += [case["policy"] for case in document.get("cases", []) if "policy" in case]
    texts += json.loads((CORPUS / "parser" / "regressions.json").read_text("utf-8"))
    return tuple(texts)


@cache
def data_files() -> tuple[tuple[str, bytes], ...]:
    """Every data file of the corpus, as (suffix, bytes)."""
    paths = [*sorted((CORPUS / "data").iterdir()), *sorted((TESTS / "cli" / "fixtures").glob(
        "*.json")), TESTS / "cli" / "fixtures" / "exempt.yaml"]
    return tuple((p.suffix, p.read_bytes()) for p in paths if p.is_file())


# ---------------------------------------------------------------- odd text

ODD_CHARACTERS = (
    "\ud800", "\udfff", "\ud83d", "\ude00",  # lone surrogates (raw, as a Python caller can)
    "\x00", "\x01", "\x7f", "\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\r",
    "\ufeff", "\u200f", "\u202e", "\u202c", "\u200d", "\u200b",  # BOM, RTL, joiners
    "\u0301", "\u0308", "\u20dd",  # combining marks
    "\U0001F600", "\uffff", "\U0010FFFF", "é", "日", "ß", "İ", "\t", "\n", "\\",
)

odd_characters = st.sampled_from(ODD_CHARACTERS)


def mutate(text: str, draw, pieces: st.SearchStrategy[str]) -> str:
    """``text`` after a few random edits: deletions, duplications, insertions of ``pieces``,
    a slice repeated many times (how deep nesting and huge literals arise), swaps."""
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 40)))
        edit = draw(st.sampled_from(["delete", "duplicate", "insert", "repeat", "swap",
                                     "replace"]))
        if edit == "delete":
            text = text[:i] + text[j:]
        elif edit == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif edit == "insert":
            text = text[:i] + draw(pieces) + text[i:]
        elif edit == "repeat" and j > i:
            times = draw(st.sampled_from([2, 10, 100, 1000, 3000]))
            text = text[:i] + text[i:j] * times + text[j:]
        elif edit == "swap" and j < n:
            k = draw(st.integers(j, n))
            text = text[:i] + text[j:k] + text[i:j] + text[k:]
        else:
            text = text[:i] + draw(pieces) + text[j:]
    return text
