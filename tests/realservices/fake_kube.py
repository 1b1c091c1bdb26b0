"""A small Kubernetes API server that answers from RECORDED responses: not a real cluster.

No kube-apiserver can run on the test machines (none is packaged for Debian, PyPI or npm,
and it cannot be built offline; see /work/shared/real-services.md, section 3), so the
``kubernetes`` driver is tested against this server. It is a real HTTP server on 127.0.0.1
that the driver's real client (the ``kubernetes`` package) talks to, and it answers with the
Kubernetes API's JSON: the List objects recorded in ``tests/datasources/fixtures/kube/``
(NamespaceList, NodeList, PodList, DeploymentList, ServiceList, NetworkPolicyList,
RoleBindingList, ClusterRoleBindingList, ServiceAccountList, RoleList, ClusterRoleList,
written after the API reference and checked to deserialize into the client's models), and
``metav1.Status`` objects for errors.

What it implements, as the API server does:

- lists at the cluster-wide and namespaced paths, with ``metadata.resourceVersion``,
  ``?limit=`` paging with ``continue`` tokens and ``remainingItemCount``, and ``410 Gone``
  (reason ``Expired``) for a continue token older than the last compaction;
- ``?watch=1&resourceVersion=N`` streams (chunked JSON lines) of ADDED / MODIFIED / DELETED
  events after N, ``timeoutSeconds``, a BOOKMARK at the end when ``allowWatchBookmarks``,
  and an ``ERROR`` event with code 410 when N is older than the last compaction or when a
  test calls :meth:`FakeKube.expire_watches`;
- bearer-token authentication (``401 Unauthorized`` Status otherwise);
- ``DELETE`` of any object (the pods.delete action), ``PATCH`` of any object and of
  ``deployments/<name>/scale`` with a merge or strategic-merge patch (scale, cordon).

Tests change the "cluster" with :meth:`add`, :meth:`modify` and :meth:`remove` (which open
watches see as events), inspect :attr:`requests`, swap :attr:`token`, set :attr:`fail` to
make every answer a 500 or garbage, set :attr:`hook` to act on a request before it is
answered (compact the history mid-list, be slow), and :meth:`stop` / :meth:`start` the server (same port).
Not implemented: label and field selectors, admission, server-side apply, other kinds.

Use the ``fake_kube`` fixture (a fresh recorded cluster per test) from a test module with::

    from tests.realservices import fake_kube as realkube
    fake_kube = realkube.fake_kube  # (an import would trip ruff's F811)
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import copy
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "datasources" / "fixtures" / "kube"
HOST = "127.0.0.1"
TOKEN = "fake-kube-token"
RBAC = "rbac.authorization.k8s.io/v1"


@dataclass(frozen=True)
class Kind:
    plural: str
    kind: str
    api_version: str
    namespaced: bool

    @property
    def prefix(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"

    @property
    def fixture(self) -> str:
        return f"{self.plural}.json"


KINDS = {k.plural: k for k in (
    Kind("namespaces", "Namespace", "v1", False),
    Kind("nodes", "Node", "v1", False),
    Kind("pods", "Pod", "v1", True),
    Kind("services", "Service", "v1", True),
    Kind("deployments", "Deployment", "apps/v1", True),
    Kind("networkpolicies", "NetworkPolicy", "networking.k8s.io/v1", True),
    Kind("rolebindings", "RoleBinding", RBAC, True),
    Kind("clusterrolebindings", "ClusterRoleBinding", RBAC, False),
    Kind("serviceaccounts", "ServiceAccount", "v1", True),
    Kind("roles", "Role", RBAC, True),
    Kind("clusterroles", "ClusterRole", RBAC, False),
)}
PREFIXES = sorted({k.prefix for k in KINDS.values()}, key=len, reverse=True)
PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


def status(code: int, reason: str, message: str, **details: Any) -> dict:
    """A ``metav1.Status``, the body of every error the API server answers with."""
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason}
    if details:
        out["details"] = details
    out["code"] = code
    return out


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what a strategic merge does for the fields patched here)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def _key(obj: dict) -> tuple[str, str]:
    md = obj["metadata"]
    return md.get("namespace", ""), md["name"]


@dataclass
class Event:
    rv: int
    plural: str
    type: str
    obj: dict


@dataclass
class Seen:
    """One request the server answered: what tests assert the driver did."""

    method: str
    path: str
    query: dict[str, str]
    body: Any = None


class Gone(Exception):
    """A continue token older than the last compaction."""


@dataclass
class FakeKube:
    fixtures: Path = FIXTURES
    token: str = TOKEN
    port: int | None = None
    #: (status, body, content type) that every request gets instead of its answer, when set
    fail: tuple[int, bytes, str] | None = None
    #: the longest a watch request lasts, whatever its timeoutSeconds (the API server's
    #: --min-request-timeout does the same); tests shorten it to make watches resume
    max_watch_seconds: float = 1800.0
    #: called with each request before it is answered (to compact mid-list, be slow, ...)
    hook: Callable[[Seen], None] | None = None
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.objects: dict[str, dict[tuple[str, str], dict]] = {p: {} for p in KINDS}
        self.rv = 0
        self.history: list[Event] = []
        self.compacted = 0  # watches and continue tokens from before this get 410 Gone
        self._expiry = 0  # bumped by expire_watches(): open watches end with 410
        self._epoch = 0  # bumped by stop(): open watches end
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._conns: set[socket.socket] = set()
        self._load()

    # ------------------------------------------------------------ the recorded cluster

    def _load(self) -> None:
        for plural, kind in KINDS.items():
            recorded = json.loads((self.fixtures / kind.fixture).read_text())
            assert recorded["kind"] == f"{kind.kind}List", kind.fixture
            for item in recorded["items"]:
                self.objects[plural][_key(item)] = item
            self.rv = max(self.rv, int(recorded["metadata"]["resourceVersion"]))
        self.compacted = self.rv  # no history before the recording

    @staticmethod
    def fixture(name: str) -> dict:
        """A recorded object from the fixtures directory, e.g. ``privileged_pod.json``."""
        return json.loads((FIXTURES / name).read_text())

    def items(self, plural: str) -> list[dict]:
        with self._cond:
            return [copy.deepcopy(o) for _, o in sorted(self.objects[plural].items())]

    def get(self, plural: str, namespace: str, name: str) -> dict:
        with self._cond:
            return copy.deepcopy(self.objects[plural][(namespace, name)])

    def _change(self, plural: str, type_: str, obj: dict, announce: bool) -> dict:
        """Store a change under a new resourceVersion; watches see it unless not announced."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        if type_ == "DELETED":
            self.objects[plural].pop(_key(obj), None)
        else:
            self.objects[plural][_key(obj)] = obj
        if announce:
            self.history.append(Event(self.rv, plural, type_, self._full(plural, obj)))
        else:  # a change the watch cache has lost: resuming from before it must re-list
            self.compacted = self.rv
        self._cond.notify_all()
        return copy.deepcopy(obj)

    def add(self, plural: str, obj: dict, announce: bool = True) -> dict:
        obj = copy.deepcopy(obj)
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        md = obj["metadata"]
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        with self._cond:
            return self._change(plural, "ADDED", obj, announce)

    def modify(self, plural: str, namespace: str, name: str, patch: dict,
               announce: bool = True) -> dict:
        with self._cond:
            obj = merge(self.objects[plural][(namespace, name)], patch)
            return self._change(plural, "MODIFIED", obj, announce)

    def remove(self, plural: str, namespace: str, name: str, announce: bool = True) -> dict:
        with self._cond:
            obj = copy.deepcopy(self.objects[plural][(namespace, name)])
            obj["metadata"]["deletionTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime())
            return self._change(plural, "DELETED", obj, announce)

    def expire_watches(self) -> None:
        """Compact the history: open watches get an ERROR 410 event, old tokens 410 Gone."""
        with self._cond:
            self.compacted = self.rv
            self._expiry += 1
            self._cond.notify_all()

    def seen(self, method: str = "GET", path: str | None = None) -> list[Seen]:
        with self._cond:
            return [r for r in self.requests
                    if r.method == method and (path is None or r.path == path)]

    @staticmethod
    def _full(plural: str, obj: dict) -> dict:
        """An object as a single GET or a watch event shows it: with kind and apiVersion."""
        kind = KINDS[plural]
        return {"kind": kind.kind, "apiVersion": kind.api_version, **copy.deepcopy(obj)}

    # ------------------------------------------------------------ the server

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> FakeKube:
        """Serve on 127.0.0.1 (a free port the first time, the same port after a stop)."""
        server = ThreadingHTTPServer((HOST, self.port or 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name=f"fake-kube-{self.port}").start()
        return self

    def stop(self) -> None:
        """Stop answering and drop every open connection, watches included."""
        server, self._server = self._server, None
        if server is None:
            return
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()
        server.shutdown()
        server.server_close()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------ requests

    def handle(self, h: _Handler, method: str) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        seen = Seen(method, url.path, query, body)
        with self._cond:
            self.requests.append(seen)
        if self.hook is not None:
            self.hook(seen)
        if self.fail is not None:
            code, data, ctype = self.fail
            return h.reply(code, data, ctype)
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return h.json(401, status(401, "Unauthorized", "Unauthorized"))
        path = url.path.rstrip("/")
        if path == "/api/v1":
            return h.json(200, self._resources())
        if path == "/version":
            return h.json(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.4",
                                "platform": "linux/amd64"})
        route = self._route(path)
        if route is None:
            return h.json(404, status(404, "NotFound", "the server could not find the "
                                      "requested resource"))
        kind, namespace, name, sub = route
        if method == "GET" and name is None:
            if query.get("watch") in ("1", "true"):
                return self._watch(h, kind, namespace, query)
            return self._list(h, kind, namespace, query)
        if name is None or sub not in (None, "scale") or (sub and kind.plural != "deployments"):
            return h.json(405, status(405, "MethodNotAllowed", f"{method} is not supported "
                                      f"on {path} by this fake"))
        key = (namespace or "", name)
        with self._cond:
            current = self.objects[kind.plural].get(key)
        if current is None:
            return h.json(404, status(404, "NotFound", f'{kind.plural} "{name}" not found',
                                      name=name, kind=kind.plural))
        if method == "GET":
            return h.json(200, self._full(kind.plural, current))
        if method == "DELETE":
            return h.json(200, self._full(kind.plural, self.remove(kind.plural, *key)))
        if method == "PATCH":
            ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype not in PATCH_TYPES or not isinstance(body, dict):
                return h.json(415, status(415, "UnsupportedMediaType", "the body of the "
                                          f"request was in an unknown format ({ctype}); "
                                          "this fake takes merge patches"))
            if sub == "scale":
                replicas = (body.get("spec") or {}).get("replicas")
                if not isinstance(replicas, int) or replicas < 0:
                    return h.json(422, status(422, "Invalid", "spec.replicas: Invalid value"))
                obj = self.modify(kind.plural, *key, {"spec": {"replicas": replicas}})
                return h.json(200, _scale(obj))
            return h.json(200, self._full(kind.plural, self.modify(kind.plural, *key, body)))
        return h.json(405, status(405, "MethodNotAllowed", f"{method} is not allowed"))

    def _route(self, path: str) -> tuple[Kind, str | None, str | None, str | None] | None:
        """(kind, namespace, name, subresource) of an API path, or None."""
        prefix = next((p for p in PREFIXES if path.startswith(p + "/")), None)
        if prefix is None:
            return None
        parts = path[len(prefix) + 1:].split("/")
        namespace = None
        if parts[0] == "namespaces" and len(parts) >= 3:
            namespace, parts = parts[1], parts[2:]
        kind = KINDS.get(parts[0])
        if kind is None or kind.prefix != prefix or len(parts) > 3:
            return None
        if namespace is not None and not kind.namespaced:
            return None
        if namespace is None and kind.namespaced and len(parts) > 1:
            return None
        name = parts[1] if len(parts) > 1 else None
        sub = parts[2] if len(parts) > 2 else None
        return kind, namespace, name, sub

    def _selected(self, kind: Kind, namespace: str | None) -> list[tuple[tuple, dict]]:
        return sorted((k, o) for k, o in self.objects[kind.plural].items()
                      if namespace is None or k[0] == namespace)

    def _list(self, h: _Handler, kind: Kind, namespace: str | None, query: dict) -> None:
        limit = int(query.get("limit") or 0)
        with self._cond:
            chosen = self._selected(kind, namespace)
            list_rv = self.rv
            if query.get("continue"):
                try:
                    list_rv, start = self._decode(query["continue"])
                except Gone:
                    return h.json(410, status(
                        410, "Expired", "The provided continue parameter is too old to display "
                        "a consistent list result. You can start a new list without the "
                        "continue parameter."))
                chosen = [(k, o) for k, o in chosen if k > start]
            page = chosen[:limit] if limit else chosen
            meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
            if limit and len(chosen) > limit:
                meta["continue"] = self._encode(list_rv, page[-1][0])
                meta["remainingItemCount"] = len(chosen) - limit
            body = {"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                    "metadata": meta, "items": [copy.deepcopy(o) for _, o in page]}
        h.json(200, body)

    def _encode(self, rv: int, start: tuple[str, str]) -> str:
        token = {"v": "meta.k8s.io/v1", "rv": rv, "start": "/".join(start) + "\u0000"}
        return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()

    def _decode(self, token: str) -> tuple[int, tuple[str, ...]]:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["rv"] < self.compacted:
            raise Gone()
        ns, _, name = data["start"].rstrip("\u0000").rpartition("/")
        return data["rv"], (ns, name)

    def _watch(self, h: _Handler, kind: Kind, namespace: str | None, query: dict) -> None:
        limit = min(float(query.get("timeoutSeconds") or 1800), self.max_watch_seconds)
        deadline = time.monotonic() + limit
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        since = query.get("resourceVersion") or "0"
        h.start_stream()
        with self._cond:
            epoch, expiry = self._epoch, self._expiry
            if since == "0":  # "any version": the current objects as ADDED events first
                out = [self._event("ADDED", self._full(kind.plural, o))
                       for _, o in self._selected(kind, namespace)]
                pos = len(self.history)
            elif int(since) < self.compacted:
                out, pos = [self._gone(since)], None
            else:
                out, pos = [], bisect.bisect_right([e.rv for e in self.history], int(since))
        try:
            while True:
                for line in out:
                    h.chunk(line)
                if pos is None:
                    break
                with self._cond:
                    while (pos == len(self.history) and self._epoch == epoch
                           and self._expiry == expiry and time.monotonic() < deadline):
                        self._cond.wait(max(0.0, deadline - time.monotonic()))
                    out = [self._event(e.type, e.obj) for e in self.history[pos:]
                           if e.plural == kind.plural
                           and (namespace is None or e.obj["metadata"].get("namespace") ==
                                namespace)]
                    pos = len(self.history)
                    if self._epoch != epoch:
                        return  # stopped: the connection is being dropped
                    if self._expiry != expiry:
                        out.append(self._gone(since))
                        pos = None
                    elif time.monotonic() >= deadline and not out:
                        if bookmarks:
                            out.append(self._event("BOOKMARK", {
                                "kind": kind.kind, "apiVersion": kind.api_version,
                                "metadata": {"resourceVersion": str(self.rv)}}))
                        pos = None
            h.end_stream()
        except OSError:  # the client went away
            h.close_connection = True

    @staticmethod
    def _event(type_: str, obj: dict) -> bytes:
        return json.dumps({"type": type_, "object": obj}).encode() + b"\n"

    def _gone(self, since: str) -> bytes:
        return self._event("ERROR", status(
            410, "Expired", f"too old resource version: {since} ({self.compacted})"))

    def _resources(self) -> dict:
        """The APIResourceList of /api/v1 (the core kinds; discovery of others not served)."""
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": k.plural, "singularName": k.kind.lower(), "namespaced": k.namespaced,
             "kind": k.kind, "verbs": ["delete", "get", "list", "patch", "watch"]}
            for k in KINDS.values() if k.api_version == "v1"]}

    # ------------------------------------------------------------ connections

    def _opened(self, conn: socket.socket) -> None:
        with self._cond:
            self._conns.add(conn)

    def _closed(self, conn: socket.socket) -> None:
        with self._cond:
            self._conns.discard(conn)


def _scale(deployment: dict) -> dict:
    md = deployment["metadata"]
    labels = deployment["spec"].get("selector", {}).get("matchLabels", {})
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                            "creationTimestamp")},
            "spec": {"replicas": deployment["spec"]["replicas"]},
            "status": {"replicas": deployment.get("status", {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    @property
    def fake(self) -> FakeKube:
        return self.server.fake  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        self.fake._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fake._closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass

    def do_GET(self) -> None:
        self.fake.handle(self, "GET")

    def do_DELETE(self) -> None:
        self.fake.handle(self, "DELETE")

    def do_PATCH(self) -> None:
        self.fake.handle(self, "PATCH")

    def reply(self, code: int, data: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def json(self, code: int, body: Any) -> None:
        self.reply(code, json.dumps(body).encode(), "application/json")

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    """A fresh recorded cluster on its own port, stopped at the end (also on failure)."""
    server = FakeKube().start()
    try:
        yield server
    finally:
        server.stop()
