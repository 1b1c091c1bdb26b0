"""The driver reference (docs/drivers.md), generated from the installed drivers' code.

``python -m charter.datasources.docs > docs/drivers.md`` writes it: for each driver its
description, config keys, tables with their columns (or, for drivers whose tables the
config declares, how to declare them) and actions. tests/datasources/test_driver_docs.py
fails when the file and the code disagree, so the reference cannot drift. A driver whose
module does not import is listed as unavailable, with the error.

>>> from charter.datasources.push import PushDriver
>>> text = render({"push": PushDriver}, {"broken": "ImportError: no module named x"})
>>> "## push" in text and "## broken (unavailable)" in text
True
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from charter.datasources.driver import ActionSpec, Driver, TableSpec
from charter.datasources.registry import GROUP, drivers
from charter.service.datasources import _secret_name
from charter.service.poller import DEFAULT_POLL_S

COMMAND = "python -m charter.datasources.docs > docs/drivers.md"


def unavailable(found: Mapping[str, type[Driver]] | None = None) -> dict[str, str]:
    """Declared drivers that did not load: id -> the error their import raised."""
    found = drivers() if found is None else found
    broken: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found or ep.name in broken:
            continue
        try:
            cls = ep.load()
        except Exception as exc:
            broken[ep.name] = f"{ep.value}: {type(exc).__name__}: {exc}"
            continue
        if not (isinstance(cls, type) and issubclass(cls, Driver)):
            broken[ep.name] = f"{ep.value} is not a charter Driver class"
    return broken


def render(found: Mapping[str, type[Driver]] | None = None,
           broken: Mapping[str, str] | None = None) -> str:
    """The whole reference as Markdown (the installed drivers unless given)."""
    found = drivers() if found is None else found
    broken = unavailable(found) if broken is None else broken
    ids = sorted(set(found) | set(broken))
    out = [
        "# Datasource drivers",
        "",
        f"Generated from the installed drivers by `{COMMAND}`; do not edit by hand "
        "(tests/datasources/test_driver_docs.py fails when this file and the code disagree).",
        "",
        "A datasource is created with `POST /v1/data-sources` "
        '`{"name": ..., "driver": <id>, "config": {...}}`; its tables are then '
        "`<datasource>:<table>` in policy rules. Secret config values are encrypted at rest "
        'and shown as `"<hidden>"`.',
        "",
        "| driver | description |",
        "|---|---|",
    ]
    for i in ids:
        text = _cell(found[i].description) if i in found else "unavailable: " + _cell(
            broken[i].splitlines()[0] if broken[i] else "")
        out.append(f"| [`{i}`](#{_anchor(i, i not in found)}) | {text} |")
    for i in ids:
        out.append("")
        out += _broken(i, broken[i]) if i not in found else _driver(i, found[i])
    return "\n".join(out).rstrip() + "\n"


def _driver(ident: str, cls: type[Driver]) -> list[str]:
    out = [f"## {ident}", "", cls.description.strip(), ""]
    tables = cls.static_tables()
    about = _about(cls, tables)
    if about:
        out += [about, ""]
    if cls.pushed:
        out += ["Pushed: rows arrive through `PUT /v1/data-sources/<ds>/tables/<table>/rows` "
                "or `POST /v1/data-sources/<ds>/webhook`; it is never polled.", ""]
    else:
        every = cls.poll_seconds or DEFAULT_POLL_S
        out += [f"Polled every {every:g} s unless config `poll_time` says otherwise; "
                "`POST /v1/data-sources/<ds>?action=request-refresh` polls at once.", ""]
    out += ["### Config", ""] + _config(cls) + [""]
    out += ["### Tables", ""]
    if tables:
        for spec in tables:
            out += _table(ident, spec) + [""]
    else:
        out += ["This driver has no fixed tables: each datasource's tables are the ones its "
                "config declares (see the config shape above and the keys under Config). "
                "`GET /v1/data-sources/<ds>/schema` shows a datasource's tables.", ""]
    out += ["### Actions", ""] + _actions(cls)
    return out


def _broken(ident: str, error: str) -> list[str]:
    return [f"## {ident} (unavailable)", "",
            "This driver is declared but its module failed to import, so its datasources "
            "cannot be created until that is fixed:", "", "```", error.strip(), "```"]


def _about(cls: type[Driver], tables: list[TableSpec]) -> str:
    """The class's docstring; for a driver whose config declares its tables, its module's
    docstring when the class has none (that is where the config shape is shown)."""
    doc = cls.__dict__.get("__doc__")
    if not doc and not tables:
        doc = sys.modules[cls.__module__].__doc__
    return _markdown(inspect.cleandoc(doc)) if doc else ""


def _markdown(text: str) -> str:
    r"""reST docstring text as Markdown: ``x`` -> `x`, ``::`` blocks fenced, doctests dropped.

    >>> print(_markdown("Config::\n\n    {\"a\": 1}\n\nSee ``a``\nand ``b\nc``."))
    Config:
    <BLANKLINE>
    ```
    {"a": 1}
    ```
    <BLANKLINE>
    See `a`
    and `b
    c`.
    """
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if not p.lstrip().startswith(">>>")]
    lines = "\n\n".join(paragraphs).splitlines()
    parts: list[str] = []  # prose and fenced blocks, alternating
    prose: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.rstrip().endswith("::"):
            prose.append(line)
            continue
        head = line.rstrip()[:-2].rstrip()
        if head:
            prose.append(head + ":")
        block: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
            block.append(lines[i])
            i += 1
        parts += [_inline("\n".join(prose)), "```\n" + inspect.cleandoc("\n".join(block)) +
                  "\n```"]
        prose = []
    parts.append(_inline("\n".join(prose)))
    return re.sub(r"\n{3,}", "\n\n", "\n\n".join(p.strip("\n") for p in parts)).strip()


def _inline(text: str) -> str:
    return re.sub(r"``(.+?)``", r"`\1`", text, flags=re.S)


def _secret(name: str, declared: bool) -> bool:
    """Secret as the store treats it: declared so, or named like a secret."""
    return declared or _secret_name(name)


def _config(cls: type[Driver]) -> list[str]:
    if not cls.config_options:
        return ["No config keys."]
    rows = ["| key | required | secret | default | description |", "|---|---|---|---|---|"]
    for o in cls.config_options:
        default = "" if o.default is None else f"`{json.dumps(o.default)}`"
        rows.append(f"| `{o.name}` | {'yes' if o.required else 'no'} | "
                    f"{'yes' if _secret(o.name, o.secret) else 'no'} | {default} | "
                    f"{_cell(o.description)} |")
    return rows


def _table(ident: str, spec: TableSpec) -> list[str]:
    typed = any(c.type for c in spec.columns)
    head = ["| column | type | description |", "|---|---|---|"] if typed else [
        "| column | description |", "|---|---|"]
    rows = [f"#### `{ident}:{spec.name}`", ""] + head
    for c in spec.columns:
        kind = f" {c.type or ''} |" if typed else ""
        rows.append(f"| `{c.name}` |{kind} {_cell(c.description)} |")
    return rows


def _actions(cls: type[Driver]) -> list[str]:
    specs = _action_specs(cls)
    if specs is None:
        return ["Depend on the datasource's config: `GET /v1/data-sources/<ds>/actions`."]
    if not specs:
        return ["None."]
    rows = ["| action | args | description |", "|---|---|---|"]
    for a in specs:
        args = ", ".join(f"`{x.name}`" + (f" ({_cell(x.description)})" if x.description else "")
                         for x in a.args) or "none"
        rows.append(f"| `{a.name}` | {args} | {_cell(a.description)} |")
    rows += ["", "Run with `POST /v1/data-sources/<ds>?action=execute` "
             '`{"name": "<action>", "args": {"positional": [...], "named": {...}}}` (admin).']
    return rows


def _action_specs(cls: type[Driver]) -> list[ActionSpec] | None:
    """A driver's actions without a config, when they do not depend on one."""
    try:
        specs = cls.actions(cls.__new__(cls))
    except Exception:
        return None
    return list(specs) if isinstance(specs, Iterable) else None


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _anchor(ident: str, broken: bool) -> str:
    title = f"{ident} (unavailable)" if broken else ident
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
