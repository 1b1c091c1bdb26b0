"""A datasource's create form, generated from its driver's config options.

Drivers declare their config keys (``ConfigOption``: a description, required, secret, a
default) but no types, so the input for each is chosen from what the driver does declare:
a boolean default is a checkbox, a numeric default (or a key of seconds, sizes, counts) a
number, a secret a password field, a description that shows a JSON shape (``{table: ...}``)
a text area for JSON, anything else a text field. What the user typed is read back into
the JSON ``config`` the API's ``POST /v1/data-sources`` takes; the driver itself still
checks it (its messages name the key and the fix).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from charter.datasources.driver import ConfigOption, Driver

PREFIX = "config."
NUMERIC_NAME = re.compile(r"(_seconds|_time|_size|_pages)$|^max_")


@dataclass(frozen=True)
class Field:
    """One config key as a form input."""

    option: ConfigOption
    kind: str  # checkbox | number | password | json | text

    @property
    def name(self) -> str:
        return PREFIX + self.option.name

    @property
    def id(self) -> str:
        return "cfg-" + self.option.name

    @property
    def placeholder(self) -> str:
        default = self.option.default
        if default is None or self.kind in ("checkbox", "password"):
            return ""
        return json.dumps(default) if isinstance(default, (dict, list)) else str(default)

    def value(self, form: Mapping[str, Any] | None) -> Any:
        """What the input shows: the user's input when re-rendering, else nothing (a
        checkbox: its default). Secrets are never sent back to the browser."""
        if self.kind == "checkbox":
            if form is None:
                return bool(self.option.default)
            return self.name in form
        if form is None or self.kind == "password":
            return ""
        return form.get(self.name, "")


def kind_of(option: ConfigOption) -> str:
    default = option.default
    if isinstance(default, bool):
        return "checkbox"
    if option.secret:
        return "password"
    if isinstance(default, (int, float)) or NUMERIC_NAME.search(option.name):
        return "number"
    if "{" in option.description or isinstance(default, (dict, list)):
        return "json"
    return "text"


def fields(driver: type[Driver]) -> list[Field]:
    """The driver's config keys as inputs, required ones first (in declared order)."""
    made = [Field(o, kind_of(o)) for o in driver.config_options]
    return sorted(made, key=lambda f: not f.option.required)


class ConfigInputError(ValueError):
    """A value the form cannot turn into config (not a number, not JSON), in words."""


def read_config(driver: type[Driver], form: Mapping[str, Any]) -> dict[str, Any]:
    """The ``config`` object from a submitted form: empty inputs are left out (the
    driver's default holds), a checkbox only when it differs from the default."""
    config: dict[str, Any] = {}
    for field in fields(driver):
        option, raw = field.option, form.get(field.name)
        if field.kind == "checkbox":
            checked = field.name in form
            if checked != bool(option.default):
                config[option.name] = checked
            continue
        if not isinstance(raw, str) or not raw.strip():
            continue
        text = raw.strip()
        if field.kind == "number":
            config[option.name] = _number(option.name, text)
        elif field.kind == "json" or (field.kind == "password" and text[:1] in "{["):
            config[option.name] = _json(option.name, text, secret=field.kind == "password")
        else:
            config[option.name] = text if field.kind == "text" else raw
    return config


def _number(key: str, text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ConfigInputError(f"config {key!r} must be a number, got {text!r}") from None


def _json(key: str, text: str, secret: bool) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        shown = "" if secret else f": {text[:80]!r}"
        raise ConfigInputError(f"config {key!r} is not valid JSON ({exc.msg} at {where})"
                               f"{shown}") from None
