"""The HTTP side of CharterFilter, without Nova: the request spec as JSON, one question per
scheduling request (``POST /v1/decisions/nova/{policy}``), and the fail mode when Charter
cannot answer.

Kept apart from the Nova class so it can be tested against a real ``charter serve`` where
Nova is not installed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

LOG = logging.getLogger(__name__)
FAIL_MODES = ("closed", "open")


@dataclass(frozen=True)
class Settings:
    """The ``[charter]`` options of nova.conf (see README.md)."""

    url: str
    policy: str = "nova_hosts"
    timeout: float = 5.0
    fail: str = "closed"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        if not self.url:
            raise ValueError("[charter] url is not set in nova.conf; set it to Charter's "
                             "address, e.g. url = http://127.0.0.1:1789")
        if self.fail not in FAIL_MODES:
            raise ValueError(f"[charter] fail = {self.fail!r}: use closed or open")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("[charter] cert_file and key_file go together: set both or neither")


@dataclass(frozen=True)
class Answer:
    """The hosts that may take the request, why the others may not, and ``error`` when
    Charter could not decide (the answer is then the fail mode's)."""

    hosts: list[str]
    refused: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


class CharterClient:
    """Asks Charter once per scheduling request for all candidate hosts."""

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.session = session or requests.Session()
        if settings.cert_file:
            self.session.cert = (settings.cert_file, settings.key_file)
        if settings.ca_file:
            self.session.verify = settings.ca_file
        if settings.token:
            self.session.headers["X-Auth-Token"] = settings.token
        base = settings.url.rstrip("/")
        self.endpoint = f"{base}/v1/decisions/nova/{quote(settings.policy, safe='')}"

    def hosts(self, spec: dict[str, Any], hosts: Sequence[str]) -> Answer:
        """The hosts among ``hosts`` that ``spec`` may land on."""
        hosts = list(dict.fromkeys(hosts))
        try:
            response = self.session.post(self.endpoint, json={"spec": spec, "hosts": hosts},
                                         params={"fail": self.settings.fail},
                                         timeout=self.settings.timeout)
        except requests.RequestException as exc:
            return self._failed(hosts, f"Charter at {self.endpoint} did not answer: {exc}")
        if response.status_code != 200:
            return self._failed(hosts, f"Charter at {self.endpoint} answered "
                                       f"{response.status_code}: {response.text[:500]}")
        try:
            body = response.json()
            passed = [h for h in body["hosts"] if h in hosts]
            refused = {str(h): [str(r) for r in rs] for h, rs in body["refused"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return self._failed(hosts, f"Charter at {self.endpoint} answered what is not a "
                                       f"host decision ({exc}): {response.text[:500]}")
        return Answer(hosts=passed, refused=refused, error=body.get("error"))

    def _failed(self, hosts: list[str], error: str) -> Answer:
        LOG.warning("%s; fail = %s: %s", error, self.settings.fail,
                    "every host passes" if self.settings.fail == "open" else "no host passes")
        if self.settings.fail == "open":
            return Answer(hosts=hosts, error=error)
        return Answer(hosts=[], refused={h: [error] for h in hosts}, error=error)


# ---------------------------------------------------------------- the request spec as JSON


def _field(obj: Any, name: str) -> Any:
    """``obj.name`` when set: an unset field of a Nova object is not read (reading it would
    raise or lazy-load from the database)."""
    if obj is None:
        return None
    is_set = getattr(obj, "obj_attr_is_set", None)
    if is_set is not None:
        try:
            if not is_set(name):
                return None
        except AttributeError:  # not a field of this object version
            return None
    return getattr(obj, name, None)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def spec_fields(spec: Any) -> dict[str, Any]:
    """The RequestSpec's fields a policy decides on, as JSON (unset ones left out)."""
    out: dict[str, Any] = {}
    for name in ("project_id", "user_id", "instance_uuid", "availability_zone",
                 "num_instances"):
        out[name] = _plain(_field(spec, name))
    flavor = _field(spec, "flavor")
    if flavor is not None:
        out["flavor"] = {n: _plain(_field(flavor, n)) for n in (
            "name", "flavorid", "vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap",
            "extra_specs")}
    image = _field(spec, "image")
    if image is not None:
        out["image"] = {n: _plain(_field(image, n)) for n in ("id", "name")}
    group = _field(spec, "instance_group")
    if group is not None:
        out["instance_group"] = {n: _plain(_field(group, n)) for n in (
            "uuid", "name", "policy", "members", "hosts", "rules")}
    hints = _field(spec, "scheduler_hints")
    if hints:
        out["scheduler_hints"] = _plain(hints)
    return _pruned(out)


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    return value
