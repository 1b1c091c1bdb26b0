"""What Charter's OpenStack drivers share: config, Keystone session, regions, errors, actions.

Each OpenStack datasource authenticates with a keystoneauth password session built from its
config and talks to its service through openstacksdk (whose list calls follow every page).
When ``region_name`` is not set, a poll reads every region the Keystone catalog lists for
the service and puts the rows of all of them in the same tables. Congress's tables have no
region column, so rows cannot say which region they came from: set ``region_name`` and
create one datasource per region when policies must tell regions apart.

A driver polls once and either returns every table or raises a DriverError whose status
says whose fault it is (the service then keeps the last good tables and backs off):

- 503: the service or Keystone cannot be reached, or did not answer in ``timeout_seconds``;
- 502: the credentials were refused (HTTP 401/403), the catalog has no such endpoint, or
  the service answered with an HTTP error or something that is not its API;
- 400/404/409 (actions only): the caller's mistake, or the service refused the action.

Messages name the datasource and the URL and say what to fix; they never hold a password
or a token.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from charter.datasources.driver import (
    ActionArg,
    ActionSpec,
    ConfigOption,
    Driver,
    DriverError,
    Row,
    TableSpec,
)
from charter.datasources.translator import Translator, schema, translate

log = logging.getLogger(__name__)

INTERFACES = ("public", "internal", "admin")
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_POLL_S = 60.0
DETAIL_CHARS = 300

OPENSTACK_OPTIONS: tuple[ConfigOption, ...] = (
    ConfigOption("auth_url", "Keystone v3 URL, e.g. http://keystone:5000/v3", required=True),
    ConfigOption("username", "user to log in as (needs admin to see every project)",
                 required=True),
    ConfigOption("password", "that user's password", required=True, secret=True),
    ConfigOption("project_name", "project to scope the token to, e.g. admin"),
    ConfigOption("tenant_name", "Congress's name for project_name (either one is needed)"),
    ConfigOption("user_domain_name", "domain of the user", default="Default"),
    ConfigOption("project_domain_name", "domain of the project", default="Default"),
    ConfigOption("region_name", "read only this region; unset: every region in the catalog, "
                 "rows of all regions in the same tables"),
    ConfigOption("interface", "catalog endpoint interface: public, internal or admin",
                 default="public"),
    ConfigOption("verify", "check the services' TLS certificates (true/false)", default=True),
    ConfigOption("cacert", "CA bundle file to check TLS certificates with"),
    ConfigOption("timeout_seconds", "seconds to wait for each HTTP request",
                 default=DEFAULT_TIMEOUT_S),
    ConfigOption("poll_time", "seconds between polls (Congress's key)", default=DEFAULT_POLL_S),
)


def boolean(value: Any) -> bool:
    """A boolean from JSON or from text (``true``/``false``/``1``/``0``/``up``/``down``...)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on", "up"):
        return True
    if text in ("false", "0", "no", "off", "down"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def flag(value: Any, key: str, datasource: str) -> bool:
    """A config key's boolean (the CLI passes ``--config verify=false`` as text)."""
    try:
        return boolean(value)
    except ValueError:
        raise DriverError(f"datasource {datasource}: {key} must be true or false, "
                          f"not {value!r}") from None


class _Extended:
    """An SDK resource seen with a few computed fields, for a DOT_SELECTOR translator."""

    def __init__(self, obj: Any, **extra: Any) -> None:
        self._obj = obj
        self._extra = extra

    def __getattr__(self, name: str) -> Any:
        extra = self.__dict__.get("_extra", {})
        if name in extra:
            return extra[name]
        return getattr(self.__dict__["_obj"], name)


def extended(obj: Any, **extra: Any) -> Any:
    return _Extended(obj, **extra)


def value(**extra: Any) -> dict:
    """A VALUE translator (``extract-fn`` etc. in ``extra``)."""
    return {"translation-type": "VALUE", **extra}


def field(name: str, col: str | None = None, desc: str = "", **extra: Any) -> dict:
    """A field translator: SDK attribute ``name`` read into Congress's column ``col``."""
    out: dict[str, Any] = {"fieldname": name, "desc": desc, "translator": value(**extra)}
    if col is not None:
        out["col"] = col
    return out


# ------------------------------------------------------------------ actions


@dataclass(frozen=True)
class Arg:
    name: str
    description: str
    required: bool = True
    default: Any = None
    parse: Callable[[Any], Any] | None = None  # raises ValueError with the reason


@dataclass(frozen=True)
class Action:
    """One action: its arguments and the SDK call that runs it on a Connection."""

    name: str
    description: str
    args: tuple[Arg, ...]
    run: Callable[[Any, dict[str, Any]], Any]

    def spec(self) -> ActionSpec:
        return ActionSpec(self.name, self.description, tuple(
            ActionArg(a.name, a.description + ("" if a.required else
                                                f" (optional, default {a.default})"))
            for a in self.args))


def an_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise ValueError(f"expected an id, got {value!r}")
    return str(value)


def ID(what: str) -> Arg:
    return Arg("id", f"id of the {what}", parse=an_id)


# ------------------------------------------------------------------ errors


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "..."


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "http_status"):
        code = getattr(exc, attr, None)
        if isinstance(code, int):
            return code
    return None


# ------------------------------------------------------------------ the driver


class OpenStackDriver(Driver):
    """A polled driver over one OpenStack service, its tables made by translators.

    Subclasses set ``service_type`` (the catalog's), ``service_label`` (for messages),
    ``translators`` (one root translator per listing), ``listings(conn)`` (table -> a
    function listing its objects through the SDK) and ``action_list``.
    """

    config_options: ClassVar[tuple[ConfigOption, ...]] = OPENSTACK_OPTIONS
    poll_seconds: ClassVar[float] = DEFAULT_POLL_S
    service_type: ClassVar[str]
    service_label: ClassVar[str]
    translators: ClassVar[tuple[Translator, ...]] = ()
    action_list: ClassVar[tuple[Action, ...]] = ()
    all_regions: ClassVar[bool] = True  # False: a global service (Keystone), one region
    optional_tables: ClassVar[frozenset[str]] = frozenset()  # empty when the API is absent

    def check_config(self) -> None:
        super().check_config()
        c, name = self.config, self.name
        for key in ("auth_url", "username", "password"):
            if not isinstance(c.get(key), str) or not c[key]:
                raise DriverError(f"datasource {name}: config {key!r} must be a non-empty string")
        url = c["auth_url"]
        if not url.startswith(("http://", "https://")):
            raise DriverError(f"datasource {name}: auth_url {url!r} must be an http(s) URL of "
                              "Keystone, e.g. http://keystone:5000/v3")
        project = c.get("project_name") or c.get("tenant_name")
        if not project:
            raise DriverError(f"datasource {name}: driver {self.driver} needs config key "
                              "'project_name' (or Congress's 'tenant_name'): the project to "
                              "scope the token to, e.g. admin")
        if c.get("project_name") and c.get("tenant_name") and c["project_name"] != c[
                "tenant_name"]:
            raise DriverError(f"datasource {name}: project_name and tenant_name differ; "
                              "give only project_name")
        self.project_name = str(project)
        self.interface = str(c.get("interface") or "public")
        if self.interface not in INTERFACES:
            raise DriverError(f"datasource {name}: interface must be one of "
                              f"{', '.join(INTERFACES)}, not {self.interface!r}")
        self.region_name = c.get("region_name") or None
        self.timeout = self._number("timeout_seconds", DEFAULT_TIMEOUT_S, minimum=0.001)
        self._number("poll_time", DEFAULT_POLL_S, minimum=0)
        verify = flag(c.get("verify", True), "verify", name)
        cacert = c.get("cacert")
        if cacert:
            if not os.path.isfile(str(cacert)):
                raise DriverError(f"datasource {name}: cacert {cacert!r} is not a readable "
                                  "file; give the path of a PEM CA bundle")
            self.verify: bool | str = str(cacert) if verify else False
        else:
            self.verify = verify
        self._lock = threading.RLock()  # the poll thread and API threads share it
        self._session: Any = None
        self._conns: dict[str | None, Any] = {}

    def _number(self, key: str, default: float, minimum: float) -> float:
        raw = self.config.get(key, default)
        try:
            number = float(raw)
        except (TypeError, ValueError):
            number = float("nan")
        if not number >= minimum:
            raise DriverError(f"datasource {self.name}: {key} must be a number of seconds "
                              f">= {minimum:g}, not {raw!r}")
        return number

    # --------------------------------------------------------------- schema

    @classmethod
    def static_tables(cls) -> list[TableSpec]:
        specs: dict[str, TableSpec] = {}
        for t in cls.translators:
            specs.update(schema(t))
        return list(specs.values())

    def tables(self) -> dict[str, TableSpec]:
        return {s.name: s for s in self.static_tables()}

    @classmethod
    def rows(cls, objects: Mapping[str, Iterable[Any]]) -> dict[str, list[Row]]:
        """Every table's rows from the SDK objects of each root table (no network)."""
        out: dict[str, list[Row]] = {s.name: [] for s in cls.static_tables()}
        for t in cls.translators:
            for table, rows in translate(list(objects.get(t["table-name"], ())), t).items():
                out[table].extend(rows)
        return out

    # --------------------------------------------------------------- connections

    def connection_config(self) -> dict[str, Any]:
        """Extra openstacksdk config for this driver's connections (e.g. a microversion)."""
        return {}

    def listings(self, conn: Any) -> dict[str, Callable[[], Iterable[Any]]]:
        raise NotImplementedError

    def _get_session(self) -> Any:
        """The keystoneauth session (made once; it logs in again when its token expires)."""
        with self._lock:
            if self._session is None:
                from keystoneauth1 import session
                from keystoneauth1.identity import v3

                c = self.config
                auth = v3.Password(
                    auth_url=c["auth_url"], username=c["username"], password=c["password"],
                    project_name=self.project_name,
                    user_domain_name=c.get("user_domain_name") or "Default",
                    project_domain_name=c.get("project_domain_name") or "Default")
                self._session = session.Session(auth=auth, verify=self.verify,
                                                timeout=self.timeout)
            return self._session

    def _connection(self, region: str | None) -> Any:
        with self._lock:
            conn = self._conns.get(region)
            if conn is None:
                from openstack.connection import Connection

                # With a session, openstacksdk reads no clouds.yaml and no OS_* variables.
                conn = Connection(session=self._get_session(), region_name=region,
                                  interface=self.interface, **self.connection_config())
                self._conns[region] = conn
            return conn

    def _forget(self, region: str | None) -> None:
        """Drop a region's connection after a failure, so the next call starts afresh
        (openstacksdk keeps a service it once could not find disabled)."""
        with self._lock:
            self._conns.pop(region, None)

    def regions(self) -> list[str | None]:
        """The regions to read: region_name, else every region whose catalog has the service."""
        if self.region_name or not self.all_regions:
            return [self.region_name]
        session = self._get_session()
        access = self._guard(None, "logging in", lambda: session.auth.get_access(session))
        found = access.service_catalog.get_endpoints_data(
            service_type=self.service_type, interface=self.interface)
        regions = sorted({e.region_name or "" for eps in found.values() for e in eps})
        if not regions:
            raise DriverError(
                f"datasource {self.name}: the Keystone catalog at {self.config['auth_url']} has "
                f"no {self.interface} endpoint of type {self.service_type} "
                f"({self.service_label}); register the service or set interface", status=502)
        return [r or None for r in regions]

    # --------------------------------------------------------------- poll

    def poll(self) -> dict[str, list[Row]]:
        tables: dict[str, dict[Row, None]] = {name: {} for name in self.tables()}
        for region in self.regions():
            for table, rows in self.read_region(region).items():
                tables[table].update(dict.fromkeys(rows))
        return {t: list(rows) for t, rows in tables.items()}

    def read_region(self, region: str | None) -> dict[str, list[Row]]:
        """Every table's rows in one region (a subclass may read some tables otherwise)."""
        return self.rows(self.read_objects(region, self._connection(region)))

    def read_objects(self, region: str | None, conn: Any,
                     skip: frozenset[str] = frozenset()) -> dict[str, list[Any]]:
        """The SDK objects of each listing but those in ``skip``."""
        objects: dict[str, list[Any]] = {}
        listings = self._guard(region, f"connecting to {self.service_label}",
                               lambda: self.listings(conn))
        for table, listing in listings.items():
            if table not in skip:
                objects[table] = self._guard(region, f"listing {table}",
                                             lambda f=listing, t=table: self._list(t, f))
        return objects

    def _list(self, table: str, listing: Callable[[], Iterable[Any]]) -> list[Any]:
        """Every object of a listing (openstacksdk follows the pages); an optional table's
        API that the service does not offer (HTTP 404: its extension is off) is empty."""
        from openstack import exceptions as sdk

        try:
            return list(listing())
        except sdk.NotFoundException:
            if table in self.optional_tables:
                return []
            raise

    # --------------------------------------------------------------- actions

    def actions(self) -> list[ActionSpec]:
        return [a.spec() for a in self.action_list]

    def execute(self, action: str, positional: Sequence[Any], named: Mapping[str, Any]) -> Any:
        act = next((a for a in self.action_list if a.name == action), None)
        if act is None:
            names = ", ".join(a.name for a in self.action_list)
            raise DriverError(f"datasource {self.name} (driver {self.driver}) has no action "
                              f"{action!r}; its actions: {names}", status=400)
        args = self._bind(act, positional, named)
        regions = self.regions()
        for region in regions:
            conn = self._connection(region)
            try:
                self._guard(region, f"running {action}", lambda c=conn: act.run(c, args),
                            action=True)
            except _NotFound:
                continue
            return None
        where = ", ".join(r or "the default region" for r in regions)
        raise DriverError(f"datasource {self.name}: {action}: {self.service_label} has no "
                          f"such resource ({_describe(args)}) in {where}", status=404)

    def _bind(self, act: Action, positional: Sequence[Any],
              named: Mapping[str, Any]) -> dict[str, Any]:
        usage = f"{act.name}({', '.join(a.name for a in act.args)})"
        if len(positional) > len(act.args):
            raise DriverError(f"datasource {self.name}: {usage} takes {len(act.args)} "
                              f"argument(s), got {len(positional)} positional", status=400)
        known = {a.name for a in act.args}
        for key in named:
            if key not in known:
                raise DriverError(f"datasource {self.name}: {usage} has no argument {key!r}",
                                  status=400)
        bound: dict[str, Any] = {}
        for i, arg in enumerate(act.args):
            if i < len(positional):
                if arg.name in named:
                    raise DriverError(f"datasource {self.name}: {usage}: argument "
                                      f"{arg.name!r} given both by position and by name",
                                      status=400)
                raw = positional[i]
            elif arg.name in named:
                raw = named[arg.name]
            elif arg.required:
                raise DriverError(f"datasource {self.name}: {usage} needs argument "
                                  f"{arg.name!r} ({arg.description})", status=400)
            else:
                bound[arg.name] = arg.default
                continue
            try:
                bound[arg.name] = arg.parse(raw) if arg.parse else raw
            except (TypeError, ValueError) as exc:
                raise DriverError(f"datasource {self.name}: {usage}: bad argument "
                                  f"{arg.name!r}: {exc}", status=400) from None
        return bound

    # --------------------------------------------------------------- errors

    def _guard(self, region: str | None, doing: str, call: Callable[[], Any],
               action: bool = False) -> Any:
        """Run an SDK/keystoneauth call; turn whatever it raises into a DriverError."""
        try:
            return call()
        except DriverError:
            raise
        except Exception as exc:
            if _status_of(exc) is None:  # not an HTTP answer: start the next call afresh
                self._forget(region)
            error = self.explain(exc, doing, region, action)
            if error is None:
                raise _NotFound() from exc
            raise error from exc

    def explain(self, exc: Exception, doing: str, region: str | None,
                action: bool = False) -> DriverError | None:
        """The DriverError for ``exc``; None for a 404 during an action (try other regions)."""
        from keystoneauth1 import exceptions as ka
        from openstack import exceptions as sdk

        auth_url = self.config["auth_url"]
        url = getattr(exc, "url", None) or auth_url
        label = self.service_label
        in_region = f" in region {region}" if region else ""
        head = f"datasource {self.name}: {doing}{in_region}"
        code = _status_of(exc)

        if isinstance(exc, ka.SSLError):
            return DriverError(f"{head}: TLS to {url} failed ({_short(exc)}); set cacert to "
                               "the CA bundle that signed its certificate", status=503)
        if isinstance(exc, ka.ConnectTimeout | ka.RequestTimeout):
            return DriverError(f"{head}: {url} did not answer within {self.timeout:g}s "
                               "(timed out); check the service or raise timeout_seconds",
                               status=503)
        if isinstance(exc, ka.ConnectionError):
            target = _failed_url(exc) or url
            whom = "Keystone" if target.startswith(auth_url.rstrip("/")) else label
            return DriverError(f"{head}: {whom} at {target} is unreachable ({_reason(exc)}); "
                               f"check that it runs and that auth_url ({auth_url}) and the "
                               "catalog point at it", status=503)
        if code in (401, 403) or isinstance(exc, ka.Unauthorized | ka.Forbidden):
            who = f"user {self.config['username']!r} in project {self.project_name!r}"
            by = "Keystone" if code == 401 or isinstance(exc, ka.Unauthorized) else label
            return DriverError(f"{head}: credentials refused by {by} at {url} (HTTP "
                               f"{code or 401}) for {who}; check username, password, "
                               "project and domains (and the user's roles)", status=502)
        if isinstance(exc, ka.EndpointNotFound | ka.EmptyCatalog | sdk.ServiceDisabledException
                      | sdk.EndpointNotFound):
            return DriverError(f"{head}: the Keystone catalog at {auth_url} has no usable "
                               f"{self.interface} {self.service_type} endpoint{in_region} "
                               f"({_short(exc)}); fix region_name/interface or register "
                               f"{label}", status=502)
        if isinstance(exc, ka.DiscoveryFailure):
            return DriverError(f"{head}: {url} does not answer like an OpenStack API "
                               f"(version discovery failed: {_short(exc)}); check auth_url",
                               status=502)
        if action and code == 404:
            return None
        if action and code in (400, 409):
            return DriverError(f"{head}: {label} refused it (HTTP {code}): "
                               f"{_detail(exc)}", status=code)
        if code is not None:
            return DriverError(f"{head}: {label} at {url} answered HTTP {code}: "
                               f"{_detail(exc)}", status=502)
        return DriverError(f"{head}: {label} at {url} sent an answer Charter cannot read "
                           f"({type(exc).__name__}: {_short(exc)}); is it the {label} API?",
                           status=502)

    def close(self) -> None:
        with self._lock:
            for conn in self._conns.values():
                try:
                    conn.close()
                except Exception:  # closing must not fail a delete
                    log.debug("datasource %s: closing a connection failed", self.name,
                              exc_info=True)
            self._conns.clear()
            if self._session is not None:
                self._session.session.close()
                self._session = None


class _NotFound(Exception):
    """An action's target is not in this region (HTTP 404)."""


def _failed_url(exc: Exception) -> str | None:
    """The URL in keystoneauth's "Unable to establish connection to URL: ..." message."""
    found = re.search(r"connection to (\S+?):? ", str(exc))
    return found.group(1) if found else None


def _reason(exc: Exception) -> str:
    text = str(exc)
    for needle, reason in (("Connection refused", "connection refused"),
                           ("Name or service not known", "host name not found"),
                           ("No route to host", "no route to host"),
                           ("Network is unreachable", "network unreachable")):
        if needle in text:
            return reason
    return _short(exc)


def _detail(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    return _short(Exception(details)) if details else _short(exc)


def _describe(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())
