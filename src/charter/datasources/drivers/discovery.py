"""The API versions an OpenStack endpoint offers, read from its version document.

Every OpenStack API answers ``GET`` on its root (the endpoint URL without its version and
project segments: ``http://nova:8774/v2.1/%(tenant_id)s`` -> ``http://nova:8774/``) with the
versions it serves, their status and their microversion range. keystoneauth's
``get_version_data`` reads the document's three shapes (``versions.values``, ``versions``,
``version``); this module turns each version into a row, and anything else (a service that
is down, times out, answers an HTTP error or something that is not a version document)
into one row with status ``ERROR`` and what went wrong, so one broken service never fails
the poll that reads the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ERROR = "ERROR"
MAX_WORKERS = 8
DETAIL_CHARS = 300

_VERSION_SEGMENT = re.compile(r"^v\d+(\.\d+)*$")
_MAJOR = re.compile(r"^v?(\d+)")


def version_root(url: str) -> str:
    """The URL whose ``GET`` lists every version: ``url`` cut before its first version
    segment (``v2.1``) or template segment (``%(tenant_id)s``, ``$(project_id)s``).

    >>> version_root("http://nova:8774/v2.1/%(tenant_id)s")
    'http://nova:8774/'
    >>> version_root("https://cloud.example/identity/v3/")
    'https://cloud.example/identity/'
    >>> version_root("http://glance:9292")
    'http://glance:9292/'
    """
    parts = urlsplit(url.strip())
    kept: list[str] = []
    for segment in parts.path.split("/"):
        if _VERSION_SEGMENT.match(segment) or "%(" in segment or "$(" in segment:
            break
        if segment:
            kept.append(segment)
    path = "/" + "".join(f"{s}/" for s in kept)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "..."


def _text(value: Any) -> str | None:
    """A version field as text; absent or empty is None (no microversions)."""
    if value is None or value == "":
        return None
    return str(value)


def version_rows(endpoint_id: str, versions: Any) -> list[dict[str, Any]]:
    """One row per version of a version document's list (an error row when it is none).

    >>> version_rows("e1", [{"id": "v3.14", "status": "stable"}])[0]["status"]
    'CURRENT'
    """
    from keystoneauth1.discover import Status

    if not isinstance(versions, list) or not versions:
        return [error_row(endpoint_id, "the version document lists no versions")]
    rows = []
    for version in versions:
        if not isinstance(version, Mapping) or not isinstance(version.get("id"), str):
            return [error_row(endpoint_id, f"a version without an id: {_short(repr(version))}")]
        ident = version["id"]
        major = _MAJOR.match(ident)
        rows.append(
            {
                "endpoint_id": endpoint_id,
                "version_id": ident,
                "major": major.group(1) if major else None,
                "status": Status.normalize(str(version.get("status") or "")),
                "min_version": _text(version.get("min_version")),
                "max_version": _text(version.get("max_version") or version.get("version")),
                "error": None,
            }
        )
    return rows


def error_row(endpoint_id: str, error: str) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "version_id": None,
        "major": None,
        "status": ERROR,
        "min_version": None,
        "max_version": None,
        "error": error,
    }


def describe_failure(url: str, exc: Exception) -> str:
    """What went wrong fetching ``url``, in words (never a token: the URL is the catalog's)."""
    from keystoneauth1 import exceptions as ka

    if isinstance(exc, ka.ConnectTimeout | ka.RequestTimeout):
        return f"{url} did not answer in time"
    if isinstance(exc, ka.ConnectFailure | ka.SSLError):
        reason = "connection refused" if "refused" in str(exc).lower() else _short(str(exc))
        return f"{url} is unreachable ({reason})"
    status = getattr(exc, "http_status", None)
    if isinstance(status, int):
        return f"{url} answered HTTP {status}"
    if isinstance(exc, ka.DiscoveryFailure):
        return f"{url} did not answer a version document ({_short(str(exc))})"
    return f"{url} could not be read ({type(exc).__name__}: {_short(str(exc))})"


def fetch_versions(session: Any, root: str) -> list[dict[str, Any]] | str:
    """The version list at ``root``, or the reason it cannot be had."""
    from keystoneauth1.discover import get_version_data

    try:
        return get_version_data(session, root, authenticated=False)
    except Exception as exc:  # any failure of one service is that service's row
        return describe_failure(root, exc)


def endpoint_versions(session: Any, endpoints: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Rows for each (endpoint id, URL): every root is fetched once, several at a time."""
    endpoints = list(endpoints)
    roots = sorted({version_root(url) for _, url in endpoints})
    if not roots:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(roots))) as pool:
        answers = dict(
            zip(roots, pool.map(lambda r: fetch_versions(session, r), roots), strict=True)
        )
    rows: list[dict[str, Any]] = []
    for endpoint_id, url in endpoints:
        answer = answers[version_root(url)]
        if isinstance(answer, str):
            rows.append(error_row(endpoint_id, answer))
        else:
            rows.extend(version_rows(endpoint_id, answer))
    return rows
