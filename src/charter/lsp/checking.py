"""``charter check`` over texts held in memory (the editor's unsaved buffers), and which
texts are policies at all.

:func:`check_texts` is :func:`charter.cli.loading.check_texts`: for a set of texts it gives
what ``charter check`` gives for the same files on disk, lint warnings included.

>>> [str(d) for d in check_texts({"p.dl": "p(x) :- q(y)"})]  # doctest: +ELLIPSIS
['p.dl:1:3: error[unsafe_variable]: variable x found in head but not in body of rule ...']
>>> check_texts({"ok.dl": "p(1)"})
[]
"""

from __future__ import annotations

import re
from pathlib import Path

from charter.cli.loading import LIBRARY_SUFFIXES, check_texts, policy_from_text

__all__ = ["check_texts", "is_library", "looks_like_library", "policy_from_text"]

_RULES_KEY = re.compile(r"^rules[ \t]*:", re.MULTILINE)


def is_library(path: str) -> bool:
    """Whether ``path`` names a library YAML file (by its suffix, as ``charter check``)."""
    return Path(path).suffix.lower() in LIBRARY_SUFFIXES


def looks_like_library(text: str) -> bool:
    """Whether YAML text is a policy at all (a top-level ``rules:``): an editor sends every
    YAML file it opens, and a CI config is not a policy with errors.

    >>> looks_like_library("name: p\\nrules: []\\n"), looks_like_library("jobs:\\n  rules: 1")
    (True, False)
    """
    return _RULES_KEY.search(text) is not None
