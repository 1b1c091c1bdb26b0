"""The ``prometheus`` driver: one PromQL instant query per table, its series as rows.

Each table lists the labels it keeps; its columns are those labels, then ``value``::

    {"url": "http://prometheus:9090",
     "tables": {"targets": {"query": "up", "labels": ["job", "instance"]},
                "disk_free": {"query": "node_filesystem_avail_bytes / 1e9",
                              "labels": ["instance", "mountpoint"]}}}

so ``error(i) :- prom:targets(job, i, v), lt(v, 1)`` flags every target that is down. A
label a series lacks is None; values are floats, and NaN or an infinity (which JSON and
equality cannot carry) is None. A query Prometheus rejects fails the poll with
Prometheus's own message and the table's name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import httpx

from charter.datasources.driver import Column, ConfigOption, Driver, DriverError, Row, TableSpec
from charter.datasources.drivers.config import (
    flag,
    number,
    scrub,
    service_url,
    string_map,
    table_map,
)
from charter.datasources.drivers.http import bad_status, read_json, transport_error

EXAMPLE = '{"targets": {"query": "up", "labels": ["job", "instance"]}}'


class PrometheusDriver(Driver):
    driver = "prometheus"
    description = ("Prometheus: one PromQL instant query per table; columns are the listed "
                   "labels, then the sample's value")
    config_options = (
        ConfigOption("url", "Prometheus's URL, e.g. http://prometheus:9090", required=True),
        ConfigOption("tables", '{table: {"query": PromQL instant query, "labels": [label, '
                     "...]}}; columns: the labels, then value", required=True),
        ConfigOption("bearer_token", "sent as Authorization: Bearer <token>", secret=True),
        ConfigOption("username", "user for HTTP basic auth (with password)"),
        ConfigOption("password", "password for HTTP basic auth", secret=True),
        ConfigOption("headers", "extra request headers {name: value}", secret=True),
        ConfigOption("timeout_seconds", "seconds to wait for each query", default=10),
        ConfigOption("verify", "check the server's TLS certificate", default=True),
        ConfigOption("poll_time", "seconds between polls", default=60),
    )
    poll_seconds = 60

    def check_config(self) -> None:
        super().check_config()
        self._url = service_url(self, "url")
        self._timeout = number(self, "timeout_seconds", 10)
        number(self, "poll_time", self.poll_seconds)
        self._verify = flag(self, "verify", True)
        self._headers = string_map(self, "headers")
        token, user, password = (self.config.get(k) for k in ("bearer_token", "username",
                                                               "password"))
        if token is not None and (not isinstance(token, str) or not token):
            raise DriverError(f"datasource {self.name}: config 'bearer_token' must be text")
        if (user is None) != (password is None) or user is not None and not (
                isinstance(user, str) and isinstance(password, str)):
            raise DriverError(f"datasource {self.name}: basic auth needs both 'username' and "
                              "'password' (text)")
        if token and user:
            raise DriverError(f"datasource {self.name}: give 'bearer_token' or "
                              "'username'/'password', not both")
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._auth = httpx.BasicAuth(user, password) if user else None
        self._secrets = [v for v in (token, password) if v] + list(self._headers.values())
        self._tables: dict[str, tuple[str, tuple[str, ...]]] = {}
        for name, spec in table_map(self, EXAMPLE).items():
            self._tables[name] = self._check_table(name, spec)
        self._client: httpx.Client | None = None

    def _check_table(self, name: str, spec: Mapping) -> tuple[str, tuple[str, ...]]:
        where = f"datasource {self.name}: table {name}"
        unknown = set(spec) - {"query", "labels"}
        if unknown:
            raise DriverError(f"{where} has unknown keys {sorted(unknown)}; use query, labels")
        query = spec.get("query")
        if not isinstance(query, str) or not query.strip():
            raise DriverError(f"{where}: 'query' must be a PromQL instant query, e.g. "
                              f"{EXAMPLE}")
        labels = string_list(spec.get("labels", []))
        if labels is None or len(set(labels)) != len(labels) or "value" in labels:
            raise DriverError(f"{where}: 'labels' must be a list of distinct label names "
                              f"(not 'value', the last column), e.g. {EXAMPLE}")
        return query, tuple(labels)

    def tables(self) -> dict[str, TableSpec]:
        return {
            name: TableSpec(name, (*(Column(label, f"label {label} of {query}")
                                     for label in labels),
                                   Column("value", f"value of {query}", "float")))
            for name, (query, labels) in self._tables.items()
        }

    def poll(self) -> dict[str, list[Row]]:
        return {name: self._query(name, query, labels)
                for name, (query, labels) in self._tables.items()}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ------------------------------------------------------------ reading

    def _query(self, table: str, query: str, labels: tuple[str, ...]) -> list[Row]:
        url = f"{self._url}/api/v1/query"
        if self._client is None:
            self._client = httpx.Client(headers=self._headers, auth=self._auth,
                                        timeout=self._timeout, verify=self._verify)
        try:
            # Prometheus's own deadline, so a heavy query stops there too.
            response = self._client.get(url, params={"query": query,
                                                     "timeout": f"{self._timeout:g}"})
        except httpx.HTTPError as exc:
            reason, status = transport_error(exc, self._timeout)
            raise DriverError(self._fail(table, url, reason), status) from None
        try:
            answer = read_json(response)
        except DriverError as exc:
            if not response.is_success:
                reason, status = bad_status(response)
                raise DriverError(self._fail(table, url, reason), status) from None
            raise DriverError(self._fail(table, url, str(exc)), 502) from None
        if isinstance(answer, Mapping) and answer.get("status") == "error":
            kind, error = answer.get("errorType", "error"), answer.get("error", "")
            status = {400: 400, 422: 400, 503: 503}.get(response.status_code, 502)
            fix = "; fix the table's query" if status == 400 else ""
            raise DriverError(self._fail(table, url, f"Prometheus refused query {query!r}: "
                                         f"{kind}: {error}{fix}"), status)
        if not response.is_success:
            reason, status = bad_status(response)
            raise DriverError(self._fail(table, url, reason), status)
        return self._rows(table, url, query, labels, answer)

    def _rows(self, table: str, url: str, query: str, labels: tuple[str, ...],
              answer: Any) -> list[Row]:
        data = answer.get("data") if isinstance(answer, Mapping) else None
        kind = data.get("resultType") if isinstance(data, Mapping) else None
        result = data.get("result") if isinstance(data, Mapping) else None
        try:
            if kind == "vector" and isinstance(result, list):
                return [(*(sample["metric"].get(label) for label in labels),
                         _float(sample["value"][1])) for sample in result]
            if kind == "scalar" and isinstance(result, list):
                return [(*(None for _ in labels), _float(result[1]))]
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            pass
        else:
            if kind in ("matrix", "string"):
                raise DriverError(self._fail(
                    table, url, f"query {query!r} gives a {kind}; a table needs an instant "
                    "vector or a scalar" + (" (drop the [range] selector)"
                                            if kind == "matrix" else "")), 400)
        raise DriverError(self._fail(table, url, "the answer is not a Prometheus query "
                                     "result (data.resultType/result); is url Prometheus's?"),
                          502)

    def _fail(self, table: str, url: str, reason: str) -> str:
        return scrub(f"datasource {self.name}: table {table}: GET {url}: {reason}",
                     self._secrets)


def string_list(value: Any) -> list[str] | None:
    """A list of non-empty strings, or None when ``value`` is not one."""
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return value
    return None


def _float(text: Any) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None

