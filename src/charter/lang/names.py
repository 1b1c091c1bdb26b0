"""What a policy may be called: an identifier, as Congress required.

Congress refused any other policy name with a ``PolicyException``
(``congress/policy_engines/agnostic.py``, ``persistent_create_policy``: "Policy name %s is
not a valid tablename"; ``congress/library_service/library_service.py``: "name `%s` is not
a valid policy name"), because a policy's name is also the prefix rules write to read its
tables (``policy:table``), and the grammar's names hold only letters, digits and ``_``.

>>> policy_name_problem("classification") is None
True
>>> policy_name_problem("my-policy")
"policy name 'my-policy' is not an identifier: use letters, digits and '_', starting with a letter (e.g. my_policy)"
>>> suggested_name("2fast"), suggested_name("_x.y")
('p2fast', 'x_y')
"""

from __future__ import annotations

import re

POLICY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
POLICY_NAME_RULE = "letters, digits and '_', starting with a letter"


def is_policy_name(name: object) -> bool:
    """Whether ``name`` may name a policy."""
    return isinstance(name, str) and POLICY_NAME.fullmatch(name) is not None


def suggested_name(name: str) -> str:
    """A valid name close to ``name``: other characters become ``_``, leading ``_`` go,
    and a name that still does not start with a letter gets a ``p`` in front."""
    fixed = re.sub(r"[^A-Za-z0-9_]", "_", name).lstrip("_")
    if not fixed[:1].isascii() or not fixed[:1].isalpha():
        fixed = "p" + fixed
    return fixed


def policy_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a policy (with a valid name to use instead), or None."""
    if is_policy_name(name):
        return None
    if not isinstance(name, str) or not name:
        return f"policy name {name!r} is not an identifier: use {POLICY_NAME_RULE}"
    return (
        f"policy name {name!r} is not an identifier: use {POLICY_NAME_RULE} "
        f"(e.g. {suggested_name(name)})"
    )
