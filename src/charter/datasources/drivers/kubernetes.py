"""The ``kubernetes`` driver: a cluster's namespaces, nodes, pods, containers (with their
security contexts, capabilities, ports and volumes), deployments, services, service accounts,
network policies, RBAC roles and role bindings as tables, kept current by list and watch.

Each resource is listed once (in pages, ``limit`` + ``continue``) and then watched from the
list's ``resourceVersion`` by a background thread that applies ADDED / MODIFIED / DELETED
events to an in-memory copy, so a poll answers from memory after one cheap request that
checks the API server is there and still takes the credentials. A watch that the server
expires (410 Gone) re-lists; a watch that breaks (server down, connection lost) is re-listed
by the next poll, whose error then says why. With ``watch: false`` every poll lists
everything instead.

Rows come from the API's JSON (not the client's models) through the column tables of
``kubernetes_tables`` (``TABLES``, and ``RESOURCES``: which kind fills which). Booleans are
``"True"``/``"False"`` and missing strings ``""``, as Congress's drivers stored them. The
security-context tables keep an unset boolean apart (``""``): Pod Security's restricted
profile asks for ``allowPrivilegeEscalation: false`` written, not left to its default.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from charter.datasources.driver import (
    ActionArg,
    ActionSpec,
    ConfigOption,
    Driver,
    DriverError,
    Row,
    TableSpec,
)
from charter.datasources.drivers.json_parse import parse_json
from charter.datasources.drivers.kubernetes_tables import (
    RESOURCES,
    TABLES,
    Resource,
    as_text,
    dig,
)

log = logging.getLogger(__name__)

WATCH_SECONDS = 300  # one watch request's length on the server; the watch then resumes
LIST_ATTEMPTS = 3  # lists started again when a continue token expires mid-way (410)
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class _Stream:
    """One list-and-watch: a resource in one namespace (or all); its objects' rows by key."""

    def __init__(self, resource: Resource, namespace: str | None) -> None:
        self.resource = resource
        self.namespace = namespace
        self.rows: dict[tuple[str, str], dict[str, list[Row]]] = {}
        self.version: str | None = None  # the resourceVersion the copy is at
        self.synced = False  # listed, and the watch has not broken since
        self.generation = 0  # bumped by each list: an older watch's events are dropped
        self.thread: threading.Thread | None = None
        self.watch: k8s_watch.Watch | None = None

    @property
    def what(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.resource.name}{where}"


def _bool(value: Any, key: str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise DriverError(f"datasource {name}: config {key!r} must be true or false, not {value!r}")


def _number(value: Any, key: str, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if number <= 0:
        raise DriverError(f"datasource {name}: config {key!r} must be a positive number of "
                          f"seconds, not {value!r}")
    return number


def _status_message(body: Any) -> str:
    """The ``message`` of a metav1.Status body, if the answer is one."""
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        return ""
    return as_text(data.get("message")) if isinstance(data, dict) else ""


class KubernetesDriver(Driver):
    """Reads a Kubernetes cluster through its API with the official client, by list and
    watch: each resource is listed (in pages) and then watched, so a poll answers from
    an in-memory copy kept current by the watch events, and 410 Gone re-lists.

    Give either ``kubeconfig`` (and ``context``) or ``host`` with ``token`` (and
    ``ca_cert`` or ``verify: false`` for a self-signed API server). The identity needs
    ``list`` and ``watch`` on namespaces, nodes, pods, services, serviceaccounts,
    deployments, networkpolicies, roles, clusterroles, rolebindings and
    clusterrolebindings, plus ``delete`` on pods, ``patch`` on deployments/scale and nodes
    for the actions. ``namespaces`` limits the namespaced resources (and the namespaces
    table) to a list; nodes, cluster roles and cluster role bindings are cluster-wide and
    always read.

    Example config::

        {"host": "https://10.0.0.1:6443", "token": "...",
         "ca_cert": "/etc/charter/k8s-ca.pem", "namespaces": ["payments", "web"]}

    Booleans are ``"True"``/``"False"``, a missing string (no node yet, no limit) is
    ``""``, so ``error(ns, pod) :- k8s:containers(ns, pod, _, _, "True", _, _, _)`` flags
    privileged containers and ``k8s:containers(ns, pod, c, _, _, _, "", _)`` those without
    a CPU limit. The security-context tables (pod_security, container_security,
    service_accounts) say ``""`` for a boolean left unset, since Pod Security tells
    unset from false; their fields are as written on each level (the container's own, the
    pod's), so a policy decides which wins. The pack ``kubernetes-pod-security`` checks
    the Pod Security Standards and the CIS benchmark's RBAC and network sections on them.

    Tested against recorded API responses served by a fake API server
    (tests/realservices/fake_kube.py), NOT against a real cluster: no kube-apiserver can
    run on the test machines.
    """

    driver = "kubernetes"
    description = ("Kubernetes cluster state (nodes, pods, containers and their security "
                   "contexts, deployments, services, service accounts, network policies, RBAC "
                   "roles and bindings) by list and watch")
    config_options = (
        ConfigOption("kubeconfig", "path of a kubeconfig file (instead of host and token)"),
        ConfigOption("context", "kubeconfig context to use (default: its current-context)"),
        ConfigOption("host", "API server URL, e.g. https://10.0.0.1:6443 (instead of "
                     "kubeconfig)"),
        ConfigOption("token", "bearer token (e.g. a service account's), with host",
                     secret=True),
        ConfigOption("ca_cert", "path of the CA certificate that signed the API server's "
                     "certificate, with host"),
        ConfigOption("verify", "check the API server's TLS certificate, with host",
                     default=True),
        ConfigOption("namespaces", "only these namespaces (a list, or comma-separated); "
                     "default: all"),
        ConfigOption("timeout_seconds", "timeout of each API request", default=10),
        ConfigOption("poll_time", "seconds between polls; with watch a poll reads memory "
                     "(default 10), without it lists everything (default 60)"),
        ConfigOption("watch", "keep the tables current with watches between polls",
                     default=True),
        ConfigOption("page_size", "objects per list request (limit; the rest by continue)",
                     default=500),
    )
    poll_seconds = 10

    def __init__(self, name: str, config: Mapping[str, Any]):
        self._lock = threading.Lock()  # the streams' copies: watch threads and poll
        self._poll_lock = threading.Lock()  # one poll at a time
        self._stop = threading.Event()
        self._api_client: k8s.ApiClient | None = None
        super().__init__(name, config)

    # ------------------------------------------------------------ config

    def check_config(self) -> None:
        super().check_config()
        cfg = self.config
        if bool(cfg.get("kubeconfig")) == bool(cfg.get("host")):
            raise DriverError(
                f"datasource {self.name}: driver kubernetes needs either 'kubeconfig' (path "
                "of a kubeconfig file, with an optional 'context') or 'host' (the API server "
                "URL, with 'token'), not both")
        if cfg.get("kubeconfig") and any(cfg.get(k) not in (None, "") for k in
                                         ("token", "ca_cert")):
            raise DriverError(f"datasource {self.name}: 'token' and 'ca_cert' go with 'host'; "
                              "with 'kubeconfig' they come from the kubeconfig's user/cluster")
        self.timeout = _number(cfg.get("timeout_seconds", 10), "timeout_seconds", self.name)
        if "poll_time" in cfg:
            _number(cfg["poll_time"], "poll_time", self.name)
        self.watching = _bool(cfg.get("watch", True), "watch", self.name)
        self.poll_seconds = 10 if self.watching else 60  # type: ignore[misc]
        page = cfg.get("page_size", 500)
        if isinstance(page, str) and page.isdigit():
            page = int(page)
        if not isinstance(page, int) or isinstance(page, bool) or page < 1:
            raise DriverError(f"datasource {self.name}: config 'page_size' must be a positive "
                              f"integer, not {page!r}")
        self.page_size = page
        self.namespaces = self._namespaces(cfg.get("namespaces"))
        self.streams = [_Stream(r, ns) for r in RESOURCES
                        for ns in (self.namespaces if self.namespaces and r.list_namespaced
                                   else [None])]
        configuration = self._configuration()
        configuration.connection_pool_maxsize = len(self.streams) + 4  # a watch each, + polls
        self.url = configuration.host
        self._api_client = k8s.ApiClient(configuration)

    def _namespaces(self, value: Any) -> list[str]:
        if value in (None, "", []):
            return []
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) and NAMESPACE.match(v)
                                                  for v in value):
            raise DriverError(f"datasource {self.name}: config 'namespaces' must be a list of "
                              f"namespace names (or 'a,b'), not {value!r}")
        return sorted(set(value))

    def _configuration(self) -> k8s.Configuration:
        cfg = self.config
        configuration = k8s.Configuration()
        if cfg.get("kubeconfig"):
            path = Path(str(cfg["kubeconfig"])).expanduser()
            if not path.is_file():
                raise DriverError(f"datasource {self.name}: config 'kubeconfig' {path} is not a "
                                  "readable file")
            try:
                k8s_config.load_kube_config(config_file=str(path), context=cfg.get("context"),
                                            client_configuration=configuration,
                                            persist_config=False)
            except Exception as exc:  # ConfigException, YAML and key errors alike
                raise DriverError(f"datasource {self.name}: kubeconfig {path} cannot be used"
                                  f"{' with context ' + repr(cfg['context']) if cfg.get('context') else ''}: "
                                  f"{exc}") from None
        else:
            host = str(cfg["host"]).rstrip("/")
            if not host.startswith(("http://", "https://")):
                raise DriverError(f"datasource {self.name}: config 'host' must be the API "
                                  f"server's URL, e.g. https://10.0.0.1:6443, not {host!r}")
            if cfg.get("context"):
                raise DriverError(f"datasource {self.name}: 'context' goes with 'kubeconfig'")
            configuration.host = host
            if cfg.get("token"):
                configuration.api_key = {"authorization": str(cfg["token"])}
                configuration.api_key_prefix = {"authorization": "Bearer"}
            configuration.verify_ssl = _bool(cfg.get("verify", True), "verify", self.name)
            if cfg.get("ca_cert"):
                ca = Path(str(cfg["ca_cert"])).expanduser()
                if not ca.is_file():
                    raise DriverError(f"datasource {self.name}: config 'ca_cert' {ca} is not a "
                                      "readable file")
                configuration.ssl_ca_cert = str(ca)
        configuration.retries = False  # the poller backs off; a poll fails fast
        return configuration

    # ------------------------------------------------------------ schema

    @classmethod
    def static_tables(cls) -> list[TableSpec]:
        return [t.spec() for t in TABLES]

    def tables(self) -> dict[str, TableSpec]:
        return {t.name: t.spec() for t in TABLES}

    # ------------------------------------------------------------ reading

    def poll(self) -> dict[str, list[Row]]:
        with self._poll_lock:
            if not self.watching:
                for stream in self.streams:
                    self._relist(stream)
                return self._snapshot()
            self._probe()
            for stream in self.streams:
                with self._lock:
                    fresh = stream.synced
                if not fresh:
                    self._relist(stream)
                    self._start_watch(stream)
            return self._snapshot()

    def _snapshot(self) -> dict[str, list[Row]]:
        tables: dict[str, list[Row]] = {t.name: [] for t in TABLES}
        with self._lock:
            for stream in self.streams:
                for by_table in stream.rows.values():
                    for table, rows in by_table.items():
                        tables[table].extend(rows)
        return tables

    def _probe(self) -> None:
        """One cheap authenticated request: is the API server there, does it take us?"""
        try:
            response = k8s.CoreV1Api(self._api_client).get_api_resources(
                _request_timeout=self.timeout, _preload_content=False)
            try:
                data = response.data
            finally:
                response.release_conn()
        except Exception as exc:
            raise self._failure(exc, "checking the API") from None
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("resources"), list):
            raise DriverError(
                f"datasource {self.name}: {self.url}/api/v1 answered with something that is "
                f"not the Kubernetes API's resource list ({data[:80]!r}); is 'host' the API "
                "server?", 502)

    def _list_call(self, stream: _Stream) -> Callable[..., Any]:
        api = stream.resource.api(self._api_client)
        if stream.namespace is None:
            return getattr(api, stream.resource.list_all)
        assert stream.resource.list_namespaced is not None
        return functools.partial(getattr(api, stream.resource.list_namespaced),
                                 stream.namespace)

    def _list(self, stream: _Stream) -> tuple[list[Mapping], str]:
        """Every object of a stream, page by page, and the list's resourceVersion."""
        call = self._list_call(stream)
        for _attempt in range(LIST_ATTEMPTS):
            items: list[Mapping] = []
            token: str | None = None
            try:
                while True:
                    kwargs: dict[str, Any] = {"limit": self.page_size,
                                              "_request_timeout": self.timeout,
                                              "_preload_content": False}
                    if token:
                        kwargs["_continue"] = token
                    body = self._json(call(**kwargs), stream)
                    items.extend(body["items"])
                    token = dig(body, "metadata", "continue")
                    if not token:
                        return items, as_text(dig(body, "metadata", "resourceVersion"))
            except ApiException as exc:
                if exc.status == 410 and token:
                    log.info("datasource %s: continue token of %s expired; listing again",
                             self.name, stream.what)
                    continue
                raise self._failure(exc, f"listing {stream.what}") from None
            except DriverError:
                raise
            except Exception as exc:
                raise self._failure(exc, f"listing {stream.what}") from None
        raise DriverError(
            f"datasource {self.name}: {stream.what} at {self.url} changed faster than they "
            f"could be listed {self.page_size} at a time (every continue token expired); "
            "raise 'page_size'", 502)

    def _json(self, response: Any, stream: _Stream) -> dict:
        try:
            data = response.data
        finally:
            response.release_conn()
        try:
            body = parse_json(data)  # a list page may be large: orjson where it agrees
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("items"), list) or \
                not all(isinstance(i, Mapping) for i in body["items"]):
            raise DriverError(
                f"datasource {self.name}: the Kubernetes API at {self.url} answered the list "
                f"of {stream.what} with something that is not a Kubernetes list "
                f"({data[:80]!r}); is 'host' the API server?", 502)
        return body

    def _rows(self, stream: _Stream, obj: Mapping) -> tuple[tuple[str, str], dict[str, list]]:
        name = dig(obj, "metadata", "name")
        if not isinstance(name, str):
            raise DriverError(f"datasource {self.name}: an object among {stream.what} from "
                              f"{self.url} has no metadata.name", 502)
        key = (as_text(dig(obj, "metadata", "namespace")), name)
        if stream.resource.name == "namespaces" and self.namespaces and \
                name not in self.namespaces:
            return key, {}
        return key, {t.name: t.rows(obj) for t in stream.resource.tables}

    def _relist(self, stream: _Stream) -> None:
        items, version = self._list(stream)
        rows = dict(self._rows(stream, obj) for obj in items)
        with self._lock:
            stream.rows = rows
            stream.version = version
            stream.generation += 1
            stream.synced = True

    # ------------------------------------------------------------ watching

    def _start_watch(self, stream: _Stream) -> None:
        old = stream.thread
        if old is not None and old.is_alive():
            if stream.watch is not None:
                stream.watch.stop()
            old.join(self.timeout)
        with self._lock:
            generation = stream.generation
        stream.watch = k8s_watch.Watch()
        stream.thread = threading.Thread(
            target=self._watch, args=(stream, stream.watch, generation), daemon=True,
            name=f"kube-watch-{self.name}-{stream.what}")
        stream.thread.start()

    def _watch(self, stream: _Stream, watch: k8s_watch.Watch, generation: int) -> None:
        """Apply a stream's events until stopped; re-list on 410; give up when it breaks."""
        call = self._list_call(stream)

        def listing(**kwargs: Any) -> Any:  # no return type: Watch hands events over raw
            return call(**kwargs)

        started = 0.0
        while not self._stop.is_set():
            # at most one watch request a second: a server that ends watches at once, or
            # answers each with 410, is not asked in a tight loop
            pause = 1.0 - (time.monotonic() - started)
            if pause > 0 and self._stop.wait(pause):
                return
            started = time.monotonic()
            with self._lock:
                if stream.generation != generation:
                    return  # a newer list has its own watch
                version = stream.version
            try:
                for event in watch.stream(listing, resource_version=version,
                                          timeout_seconds=WATCH_SECONDS,
                                          allow_watch_bookmarks=True,
                                          _request_timeout=(self.timeout,
                                                            WATCH_SECONDS + self.timeout)):
                    if self._stop.is_set() or not self._apply(stream, generation, event):
                        return
            except ApiException as exc:
                if self._stop.is_set():
                    return
                if exc.status == 410:
                    log.info("datasource %s: watch of %s expired (410 Gone); listing again",
                             self.name, stream.what)
                    try:
                        self._relist(stream)
                    except DriverError as err:
                        self._broken(stream, generation, err)
                        return
                    with self._lock:
                        generation = stream.generation
                    continue
                self._broken(stream, generation, self._failure(exc, f"watching {stream.what}"))
                return
            except Exception as exc:
                if not self._stop.is_set():
                    self._broken(stream, generation,
                                 self._failure(exc, f"watching {stream.what}"))
                return

    def _apply(self, stream: _Stream, generation: int, event: Any) -> bool:
        """Apply one watch event to the copy; False when the stream was listed anew."""
        if not isinstance(event, Mapping):
            return True  # a blank or unreadable line
        obj = event.get("raw_object")
        kind = event.get("type")
        version = dig(obj, "metadata", "resourceVersion")
        key, rows = (None, {}) if kind == "BOOKMARK" else self._rows(stream, obj)
        with self._lock:
            if stream.generation != generation:
                return False
            if kind in ("ADDED", "MODIFIED"):
                stream.rows[key] = rows  # type: ignore[index]
            elif kind == "DELETED":
                stream.rows.pop(key, None)  # type: ignore[arg-type]
            if version:
                stream.version = str(version)
        return True

    def _broken(self, stream: _Stream, generation: int, error: DriverError) -> None:
        log.warning("%s; the next poll lists again", error)
        with self._lock:
            if stream.generation == generation:
                stream.synced = False

    # ------------------------------------------------------------ errors

    def _failure(self, exc: BaseException, doing: str) -> DriverError:
        """A DriverError for what went wrong, naming the API server but never the token."""
        where = f"datasource {self.name}: the Kubernetes API at {self.url}"
        if isinstance(exc, DriverError):
            return exc
        if isinstance(exc, ApiException):
            detail = _status_message(exc.body) or as_text(exc.reason)
            if exc.status in (401, 403):
                fix = ("check 'token' (or the kubeconfig's user)" if exc.status == 401 else
                       "grant the identity list/watch (and the actions' verbs) in RBAC")
                return DriverError(f"{where} refused the credentials while {doing} (HTTP "
                                   f"{exc.status} {detail}); {fix}", 502)
            if exc.status == 0:  # TLS
                return DriverError(f"{where} failed the TLS handshake while {doing} "
                                   f"({detail.strip()}); check 'ca_cert' or 'verify'", 503)
            return DriverError(f"{where} answered HTTP {exc.status} while {doing}: {detail}",
                               502)
        if isinstance(exc, urllib3.exceptions.NewConnectionError | ConnectionError):
            return DriverError(f"{where} is unreachable while {doing} (connection refused or "
                               "failed); check that the API server is up and the URL is "
                               "right", 503)
        if isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError):
            return DriverError(f"{where} is unreachable while {doing}: no answer within "
                               f"{self.timeout:g} s (timeout_seconds)", 503)
        if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
            return DriverError(f"{where} is unreachable while {doing} ({type(exc).__name__})",
                               503)
        if isinstance(exc, ValueError):
            return DriverError(f"{where} answered garbage while {doing} ({exc})", 502)
        return DriverError(f"{where} failed while {doing}: {type(exc).__name__}: {exc}", 502)

    # ------------------------------------------------------------ actions

    def actions(self) -> list[ActionSpec]:
        return ACTIONS

    def execute(self, action: str, positional: Sequence[Any], named: Mapping[str, Any]) -> Any:
        spec = self.action(action)
        if spec is None:
            return super().execute(action, positional, named)
        args = spec.bind(positional, named)
        empty = [n for n, v in args.items() if v in (None, "")]
        if empty:
            raise DriverError(f"{spec.name} needs {', '.join(args)} (missing {', '.join(empty)})")
        if "namespace" in args and self.namespaces and args["namespace"] not in self.namespaces:
            raise DriverError(f"datasource {self.name} covers namespaces "
                              f"{', '.join(self.namespaces)}, not {args['namespace']!r}")
        timeout = {"_request_timeout": self.timeout}
        try:
            if action == "pods.delete":
                k8s.CoreV1Api(self._api_client).delete_namespaced_pod(
                    args["name"], args["namespace"], **timeout)
                return {"namespace": args["namespace"], "name": args["name"]}
            if action == "deployments.scale":
                replicas = args["replicas"]
                if isinstance(replicas, str) and replicas.isdigit():
                    replicas = int(replicas)
                if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                    raise DriverError(f"deployments.scale: replicas must be a whole number "
                                      f">= 0, not {replicas!r}")
                k8s.AppsV1Api(self._api_client).patch_namespaced_deployment_scale(
                    args["name"], args["namespace"], {"spec": {"replicas": replicas}},
                    **timeout)
                return {"namespace": args["namespace"], "name": args["name"],
                        "replicas": replicas}
            unschedulable = action == "nodes.cordon"
            k8s.CoreV1Api(self._api_client).patch_node(
                args["name"], {"spec": {"unschedulable": unschedulable}}, **timeout)
            return {"name": args["name"], "unschedulable": unschedulable}
        except DriverError:
            raise
        except ApiException as exc:
            if exc.status in (404, 409, 422):
                detail = _status_message(exc.body) or as_text(exc.reason)
                raise DriverError(f"datasource {self.name}: {action} "
                                  f"{' '.join(map(str, args.values()))} failed at {self.url}: "
                                  f"{detail}", {404: 404, 409: 409}.get(exc.status, 400)
                                  ) from None
            raise self._failure(exc, action) from None
        except Exception as exc:
            raise self._failure(exc, action) from None

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + 3.0
        for stream in getattr(self, "streams", []):
            thread, watch = stream.thread, stream.watch
            if thread is None or watch is None or thread is threading.current_thread():
                continue
            # stop() drops the open request's socket; a thread between two requests may
            # start one after it, so stop again until the thread has seen the event
            while thread.is_alive() and time.monotonic() < deadline:
                watch.stop()
                thread.join(0.05)
        if self._api_client is not None:
            self._api_client.close()


_NS_ARG = ActionArg("namespace", "namespace of the object")
ACTIONS = [
    ActionSpec("pods.delete", "delete a pod (graceful deletion; its controller may "
               "recreate it)", (_NS_ARG, ActionArg("name", "pod name"))),
    ActionSpec("deployments.scale", "set a deployment's replicas (the scale subresource)",
               (_NS_ARG, ActionArg("name", "deployment name"),
                ActionArg("replicas", "desired number of replicas (>= 0)"))),
    ActionSpec("nodes.cordon", "mark a node unschedulable (spec.unschedulable = true)",
               (ActionArg("name", "node name"),)),
    ActionSpec("nodes.uncordon", "mark a node schedulable again",
               (ActionArg("name", "node name"),)),
]
