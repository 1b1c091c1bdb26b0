"""The ``http`` driver: any JSON API, mapped to tables by JMESPath expressions in the config.

Each table names a path under ``base_url``, a JMESPath expression selecting the list of items
in the answer, and one JMESPath expression per column, evaluated on each item::

    {"base_url": "https://inventory.example.com",
     "auth": {"type": "bearer", "token": "..."},
     "tables": {"hosts": {"path": "/v1/hosts", "items": "data.items",
                          "columns": {"id": "id", "rack": "location.rack", "up": "healthy"},
                          "pagination": {"type": "next_link", "next": "links.next"}}}}

A poll reads every page of every table or fails as a whole (the service then keeps the last
good rows): a timeout, a refused connection, a non-2xx answer, non-JSON or an answer of the
wrong shape raise DriverError naming the datasource, the table and the URL, never a
credential. ``max_pages`` bounds the pages a table may take, so a looping API cannot hang
a poll.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import jmespath.exceptions

from charter.datasources.driver import Column, ConfigOption, Driver, DriverError, Row, TableSpec
from charter.datasources.drivers.config import (
    flag,
    json_value,
    number,
    scrub,
    service_url,
    string_map,
    table_map,
)
from charter.datasources.drivers.extract import Expression, scalars
from charter.datasources.drivers.json_parse import parse_json
from charter.store.secrets import is_secret

# ---------------------------------------------------------------- HTTP answers


def transport_error(exc: httpx.HTTPError, timeout: float) -> tuple[str, int]:
    """Why a request got no answer, and the status to report (503: unreachable)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within timeout_seconds={timeout:g} ({type(exc).__name__})", 503
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc or type(exc).__name__})", 503
    return f"{type(exc).__name__}: {exc}", 503


def bad_status(response: httpx.Response) -> tuple[str, int]:
    """Why a non-2xx answer is a failure, and the status to report."""
    code = response.status_code
    if code in (401, 403):
        return (f"the credentials were refused (HTTP {code}): check the datasource's "
                "token/password config"), 502
    return f"answered HTTP {code} {response.reason_phrase}{_detail(response)}", 502


def _detail(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return f": {text[:200]}" if text else ""


def read_json(response: httpx.Response) -> Any:
    """The answer's JSON; DriverError (502) on anything else."""
    try:
        return parse_json(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = response.headers.get("content-type", "no content type")
        start = response.text[:60].replace("\n", " ")
        raise DriverError(f"answered non-JSON ({kind}): {start!r}", 502) from None


# ---------------------------------------------------------------- the driver


@dataclass(frozen=True)
class Pagination:
    kind: str  # "none", "next_link" or "page"
    next: Expression | None = None
    param: str = "page"
    start: int = 1
    size_param: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class HttpTable:
    name: str
    path: str
    params: dict[str, str]
    items: Expression
    items_text: str
    columns: tuple[tuple[str, Expression], ...]
    pagination: Pagination


class HttpDriver(Driver):
    driver = "http"
    description = ("Any JSON API over HTTP, mapped to tables by JMESPath expressions "
                   "(items per table, one expression per column), with pagination")
    config_options = (
        ConfigOption("base_url", "the API's URL, e.g. https://api.example.com", required=True),
        ConfigOption("tables", '{table: {"path": "/v1/things", "items": JMESPath to the list, '
                     '"columns": {column: JMESPath on each item}, "params"?: {name: value}, '
                     '"pagination"?: {"type": "next_link", "next": JMESPath to the next URL} '
                     '| {"type": "page", "param": "page", "start"?: 1, "size_param"?, "size"?}}}',
                     required=True),
        ConfigOption("headers", "extra request headers {name: value}", secret=True),
        ConfigOption("auth", '{"type": "bearer", "token": "..."} or {"type": "basic", '
                     '"username": "...", "password": "..."}', secret=True),
        ConfigOption("timeout_seconds", "seconds to wait for each answer", default=10),
        ConfigOption("verify", "check the server's TLS certificate (true/false, or the path "
                     "of a CA bundle)", default=True),
        ConfigOption("max_pages", "most pages a table may take in one poll", default=1000),
        ConfigOption("poll_time", "seconds between polls", default=60),
    )
    poll_seconds = 60

    def check_config(self) -> None:
        super().check_config()
        self._base = service_url(self, "base_url")
        self._timeout = number(self, "timeout_seconds", 10)
        number(self, "poll_time", self.poll_seconds)
        self._max_pages = int(number(self, "max_pages", 1000, minimum=0.5, unit="pages"))
        verify = self.config.get("verify", True)
        self._verify: bool | str = verify if isinstance(verify, str) and "/" in verify \
            else flag(self, "verify", True)
        self._headers = string_map(self, "headers")
        self._auth, secrets = self._check_auth()
        self._secrets = [*self._headers.values(), *secrets]
        example = ('{"things": {"path": "/v1/things", "items": "data", '
                   '"columns": {"id": "id", "name": "name"}}}')
        self._tables = {name: self._check_table(name, spec)
                        for name, spec in table_map(self, example).items()}
        self._client: httpx.Client | None = None

    def _check_auth(self) -> tuple[httpx.Auth | None, list[str]]:
        auth = json_value(self, "auth")
        if auth is None or auth == {}:
            return None, []
        kind = auth.get("type") if isinstance(auth, Mapping) else None
        if kind == "bearer" and isinstance(auth.get("token"), str) and auth["token"]:
            token = auth["token"]
            return _Bearer(token), [token]
        if (kind == "basic" and isinstance(auth.get("username"), str)
                and isinstance(auth.get("password"), str)):
            return httpx.BasicAuth(auth["username"], auth["password"]), [auth["password"]]
        raise DriverError(f"datasource {self.name}: config 'auth' must be "
                          '{"type": "bearer", "token": "..."} or {"type": "basic", '
                          '"username": "...", "password": "..."}')

    def _check_table(self, name: str, spec: Mapping) -> HttpTable:
        where = f"datasource {self.name}: table {name}"
        unknown = set(spec) - {"path", "items", "columns", "pagination", "params"}
        if unknown:
            raise DriverError(f"{where} has unknown keys {sorted(unknown)}; use path, items, "
                              "columns, params, pagination")
        path = spec.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise DriverError(f"{where}: 'path' must be the API path under base_url, starting "
                              f"with '/', e.g. /v1/things; got {path!r}")
        params = spec.get("params") or {}
        if not isinstance(params, Mapping) or not all(
                isinstance(v, str | int | float) for v in params.values()):
            raise DriverError(f"{where}: 'params' must map query parameters to values")
        hidden = sorted(k for k in params if is_secret(str(k)))
        if hidden:
            raise DriverError(f"{where}: 'params' {hidden} look like credentials, which the "
                              "API would show; send them with 'headers' or 'auth'")
        columns = spec.get("columns")
        if not isinstance(columns, Mapping) or not columns or not all(
                isinstance(c, str) and c for c in columns):
            raise DriverError(f"{where}: 'columns' must map each column name to a JMESPath "
                              'expression on one item, e.g. {"id": "id", "zone": "place.zone"}')
        items_text = spec.get("items", "@")
        return HttpTable(
            name=name, path=path, params={k: str(v) for k, v in params.items()},
            items=_compile(where, "items", items_text), items_text=str(items_text),
            columns=tuple((c, _compile(where, f"columns.{c}", e)) for c, e in columns.items()),
            pagination=self._check_pagination(where, spec.get("pagination")))

    def _check_pagination(self, where: str, spec: Any) -> Pagination:
        if spec is None or spec == {} or (isinstance(spec, Mapping)
                                          and spec.get("type") == "none"):
            return Pagination("none")
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        if kind == "next_link":
            return Pagination("next_link", next=_compile(where, "pagination.next",
                                                         spec.get("next")))
        if kind == "page":
            param, size_param = spec.get("param", "page"), spec.get("size_param")
            start, size = spec.get("start", 1), spec.get("size")
            stop_when_empty = spec.get("stop_when_empty", True)
            if (not isinstance(param, str) or not param
                    or size_param is not None and not isinstance(size_param, str)
                    or type(start) is not int
                    or size is not None and (type(size) is not int or size < 1)
                    or not isinstance(stop_when_empty, bool)):
                raise DriverError(f"{where}: page pagination is {{\"type\": \"page\", "
                                  '"param": "page", "start"?: 1, "size_param"?: "per_page", '
                                  '"size"?: 100, "stop_when_empty"?: true}')
            if not stop_when_empty and size is None:
                raise DriverError(f"{where}: page pagination needs 'size' (a short page ends "
                                  "the table) when stop_when_empty is false")
            return Pagination("page", param=param, start=start, size_param=size_param,
                              size=size)
        raise DriverError(f"{where}: 'pagination' must be {{\"type\": \"next_link\", \"next\": "
                          '"links.next"} or {"type": "page", "param": "page"}; got '
                          f"{spec!r}")

    # ------------------------------------------------------------ tables

    def tables(self) -> dict[str, TableSpec]:
        return {
            t.name: TableSpec(t.name, tuple(Column(c, f"JMESPath {e.expression!r} on each "
                                                      f"item of {t.path}")
                                            for c, e in t.columns))
            for t in self._tables.values()
        }

    def poll(self) -> dict[str, list[Row]]:
        return {name: list(zip(*self._read(table), strict=True))
                for name, table in self._tables.items()}

    def poll_columns(self) -> dict[str, list[list]]:
        """``poll`` as columns (one list per column, in the table's order), as they are
        read: the poller hands them to the diff without making a tuple per row."""
        return {name: self._read(table) for name, table in self._tables.items()}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ------------------------------------------------------------ reading

    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                headers={"Accept": "application/json", **self._headers}, auth=self._auth,
                timeout=self._timeout, verify=self._verify, follow_redirects=False)
        return self._client

    def _read(self, table: HttpTable) -> list[list]:
        """The table's columns over every page."""
        columns: list[list] = [[] for _ in table.columns]
        page = table.pagination
        url: str | None = self._base + table.path
        params = dict(table.params)
        seen: set[str] = set()
        number_ = page.start
        for _ in range(self._max_pages):
            if page.kind == "page":
                params[page.param] = str(number_)
                if page.size_param and page.size:
                    params[page.size_param] = str(page.size)
            assert url is not None
            answer, shown = self._get(table, url, params)
            items = self._items(table, answer, shown)
            for column, values in zip(columns, self._columns(table, items, shown), strict=True):
                column += values
            if page.kind == "page":
                if not items or page.size is not None and len(items) < page.size:
                    return columns
                number_ += 1
            elif page.kind == "next_link":
                url = self._next(table, answer, shown, seen)
                params = {}
                if url is None:
                    return columns
            else:
                return columns
        raise DriverError(self._where(table, self._base + table.path) + f": more than "
                          f"max_pages={self._max_pages} pages; the API's pagination may loop, "
                          "or raise max_pages", 502)

    def _get(self, table: HttpTable, url: str, params: Mapping[str, str]) -> tuple[Any, str]:
        request = self.client().build_request("GET", url, params=params or None)
        shown = str(request.url)
        try:
            response = self.client().send(request)
        except httpx.HTTPError as exc:
            reason, status = transport_error(exc, self._timeout)
            raise DriverError(self._fail(table, shown, reason), status) from None
        if not response.is_success:
            reason, status = bad_status(response)
            raise DriverError(self._fail(table, shown, reason), status)
        try:
            return read_json(response), shown
        except DriverError as exc:
            raise DriverError(self._fail(table, shown, str(exc)), exc.status) from None

    def _columns(self, table: HttpTable, items: list, shown: str) -> list[list]:
        """The columns of ``items``: one pass over the items per column and path step
        (see extract.py)."""
        columns = []
        for column, expression in table.columns:
            try:
                columns.append(scalars(expression.over(items)))
            except jmespath.exceptions.JMESPathError as exc:
                raise DriverError(self._fail(
                    table, shown, f"column {column}: JMESPath {expression.expression!r} "
                    f"fails on an item ({_one_line(exc)}); fix the column's expression"),
                    502) from None
        return columns

    def _items(self, table: HttpTable, answer: Any, shown: str) -> list:
        try:
            items = table.items.search(answer)
        except jmespath.exceptions.JMESPathError as exc:
            raise DriverError(self._fail(
                table, shown, f"JMESPath items={table.items_text!r} fails on the answer "
                f"({_one_line(exc)}); check the table's 'items' expression"), 502) from None
        if items is None and table.pagination.kind == "page":
            return []  # some APIs leave the list out of the page after the last
        if not isinstance(items, list):
            raise DriverError(self._fail(
                table, shown, f"the answer has no list at items={table.items_text!r} (found "
                f"{type(items).__name__}); check the table's 'items' expression"), 502)
        return items

    def _next(self, table: HttpTable, answer: Any, shown: str, seen: set[str]) -> str | None:
        assert table.pagination.next is not None
        try:
            link = table.pagination.next.search(answer)
        except jmespath.exceptions.JMESPathError as exc:
            raise DriverError(self._fail(
                table, shown, f"JMESPath pagination.next fails on the answer "
                f"({_one_line(exc)}); check the table's 'pagination' expression"),
                502) from None
        if link in (None, ""):
            return None
        if not isinstance(link, str):
            raise DriverError(self._fail(table, shown, f"the next link is not a URL: {link!r}"),
                              502)
        url = urljoin(shown, link)
        here, there = urlsplit(self._base), urlsplit(url)
        if (here.scheme, here.netloc) != (there.scheme, there.netloc):
            raise DriverError(self._fail(table, shown, f"the next link leaves {self._base} "
                                         f"({there.scheme}://{there.netloc}); the driver does "
                                         "not send its credentials elsewhere"), 502)
        if url in seen:
            raise DriverError(self._fail(table, shown, f"the next link {url} was already read: "
                                         "the API's pagination loops"), 502)
        seen.add(url)
        return url

    def _where(self, table: HttpTable, url: str) -> str:
        return f"datasource {self.name}: table {table.name}: GET {url}"

    def _fail(self, table: HttpTable, url: str, reason: str) -> str:
        return scrub(f"{self._where(table, url)}: {reason}", self._secrets)


class _Bearer(httpx.Auth):
    """``Authorization: Bearer <token>`` on every request."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = self._header
        yield request


def _compile(where: str, key: str, expression: Any) -> Expression:
    if not isinstance(expression, str) or not expression.strip():
        raise DriverError(f"{where}: {key!r} must be a JMESPath expression like "
                          f"\"data.items\", got {expression!r}")
    try:
        return Expression(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise DriverError(f"{where}: {key!r} is not valid JMESPath ({_one_line(exc)})") from None


def _one_line(exc: Exception) -> str:
    return str(exc).replace("\n", " ")
