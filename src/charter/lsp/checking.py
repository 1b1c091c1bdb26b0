"""``charter check`` over texts held in memory: the editor's unsaved buffers.

:func:`check_texts` gives for a set of texts what
:func:`charter.cli.loading.check_policy_files` gives for the same files on disk: each text
is read as the file of its name would be (library YAML by suffix, else Datalog named by the
stem), two texts defining one policy are a ``duplicate_policy`` error, and all the policies
are compiled together by :func:`charter.cli.loading.compile_diagnostics`.

>>> [str(d) for d in check_texts({"p.dl": "p(x) :- q(y)"})]  # doctest: +ELLIPSIS
['p.dl:1:3: error[unsafe_variable]: variable x found in head but not in body of rule ...']
>>> check_texts({"ok.dl": "p(1)"})
[]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from charter.cli.loading import LIBRARY_SUFFIXES, PolicyFile, compile_diagnostics
from charter.engine.engine import POLICY_KINDS
from charter.lang.ast import Span
from charter.lang.errors import Diagnostic, PolicyError
from charter.lang.library import load_library_policy
from charter.lang.parser import parse

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


def policy_from_text(path: str, text: str) -> PolicyFile:
    """One policy from the text of file ``path``, as ``charter check`` reads that file.

    Raises:
        PolicyError: the text does not parse, or names an unknown policy kind.
    """
    if is_library(path):
        library = load_library_policy(text, path)
        if library.kind not in POLICY_KINDS:
            message = f"unknown policy kind {library.kind}; use one of {', '.join(POLICY_KINDS)}"
            line = next((n for n, s in enumerate(text.splitlines(), 1) if s.startswith("kind:")), 1)
            raise PolicyError([Diagnostic("library_invalid", message, Span(path, line, 1))])
        rules = tuple(entry.rule for entry in library.rules)
        return PolicyFile(library.name, path, library.kind, rules)
    return PolicyFile(Path(path).stem, path, "nonrecursive", tuple(parse(text, path)))


def check_texts(texts: Mapping[str, str]) -> list[Diagnostic]:
    """Every diagnostic (errors and warnings) of the texts (file name -> text), checked
    together as ``charter check`` checks those files, sorted by place."""
    policies: list[PolicyFile] = []
    diagnostics: list[Diagnostic] = []
    defined: dict[str, str] = {}
    for path, text in texts.items():
        try:
            policy = policy_from_text(path, text)
        except PolicyError as exc:
            diagnostics += exc.diagnostics
            continue
        if policy.name in defined:
            message = (
                f"{defined[policy.name]} and {policy.path} both define policy {policy.name}; "
                f"rename one of them"
            )
            diagnostics.append(Diagnostic("duplicate_policy", message, Span(policy.path, 1, 1)))
            continue
        defined[policy.name] = policy.path
        policies.append(policy)
    diagnostics += compile_diagnostics(policies)
    return sorted(diagnostics, key=Diagnostic.sort_key)
