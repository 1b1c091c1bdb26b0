"""Runs ``openstack congress ...`` commands inside python-congressclient's own venv.

Started by tests/integration/conftest.py with the client venv's python (never imported by
Charter's tests: everything it needs is imported in :func:`main`). It reads one JSON request
per line on stdin and answers one JSON line on stdout:

- ``{"argv": [...], "compat": false}``: run ``openstack <argv>`` exactly as the ``openstack``
  script does (``OpenStackShell().run(argv)``, a fresh shell each time) and answer
  ``{"rc", "stdout", "stderr"}``. One process runs every command, so a command costs tens
  of milliseconds instead of the 2-3 s the ``openstack`` script spends importing.
  ``"compat": true`` first works around two bugs of python-congressclient 2.0.1 on Python 3
  and PyYAML 6, which fail in the client before any request is sent:
  ``utils.format_long_dict_list`` calls ``dict.iteritems`` (``datasource schema show``,
  ``driver schema show``, ``datasource actions show`` with non-empty columns/args) and
  ``policy create-from-file`` calls ``yaml.load_all`` without a Loader.
- ``{"call": "<Client method>", "endpoint": URL, "args": [...], "kwargs": {...}}``: call
  python-congressclient's v1 ``Client`` (for the calls no CLI command makes: library
  policies, create-from-library, show_datasource, execute) and answer ``{"ok": true,
  "result"}`` or ``{"ok": false, "status", "message", "body"}``.
- ``{"inventory": true}``: the client's ``openstack congress`` commands (from its entry
  points) and the public methods of its ``Client``.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def client_compat() -> Iterator[None]:
    import yaml
    from congressclient.common import utils

    def format_long_dict_list(data: list[dict]) -> str:
        return ",\n".join(str({str(k): str(v) for k, v in d.items()}) for d in data) + "\n"

    def load_all(stream: Any, Loader: Any = yaml.SafeLoader) -> Any:  # noqa: N803
        return original_load_all(stream, Loader)

    original_format, original_load_all = utils.format_long_dict_list, yaml.load_all
    utils.format_long_dict_list, yaml.load_all = format_long_dict_list, load_all
    try:
        yield
    finally:
        utils.format_long_dict_list, yaml.load_all = original_format, original_load_all


def run_command(argv: list[str], compat: bool) -> dict:
    from openstackclient.shell import OpenStackShell

    out, err = io.StringIO(), io.StringIO()
    with (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          client_compat() if compat else contextlib.nullcontext()):
        try:
            rc = OpenStackShell().run(argv)
        except SystemExit as exc:  # argparse errors
            rc = exc.code if isinstance(exc.code, int) else 1
    return {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}


def call_client(endpoint: str, method: str, args: list, kwargs: dict) -> dict:
    from congressclient.v1 import client
    from keystoneauth1 import exceptions, noauth, session

    sess = session.Session(auth=noauth.NoAuth(endpoint=endpoint))
    c = client.Client(session=sess, service_type="policy", endpoint_override=endpoint)
    try:
        return {"ok": True, "result": getattr(c, method)(*args, **kwargs)}
    except exceptions.HttpError as exc:
        body = None
        if exc.response is not None:
            try:
                body = exc.response.json()
            except ValueError:
                body = exc.response.text
        return {"ok": False, "status": exc.http_status, "message": str(exc), "body": body}


def inventory() -> dict:
    import importlib.metadata
    import inspect

    from congressclient.v1 import client

    commands = sorted(
        e.name.replace("_", " ")
        for e in importlib.metadata.entry_points(group="openstack.congressclient.v1")
    )
    methods = sorted(n for n, _ in inspect.getmembers(client.Client, inspect.isfunction)
                     if not n.startswith("_"))
    return {"commands": commands, "methods": methods}


def main() -> None:
    sys.argv[0] = "openstack"  # what usage messages name
    answer_to = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        if "argv" in request:
            answer = run_command(request["argv"], request.get("compat", False))
        elif "call" in request:
            answer = call_client(request["endpoint"], request["call"], request.get("args", []),
                                 request.get("kwargs", {}))
        else:
            answer = inventory()
        answer_to.write(json.dumps(answer) + "\n")
        answer_to.flush()


if __name__ == "__main__":
    main()
