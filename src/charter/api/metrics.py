"""Prometheus metrics: requests by route and status, and the state of the engine.

Each app has its own registry, so several apps in one process (tests) do not collide; the
engine's figures are read when scraped, never counted twice.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.types import ASGIApp, Receive, Scope, Send


class ServiceCollector:
    def __init__(self, service) -> None:
        self.service = service

    def collect(self):
        s = self.service
        with s.lock:
            policies = GaugeMetricFamily("charter_policies", "Policies")
            policies.add_metric([], len(s.policies.live))
            rules = GaugeMetricFamily("charter_rules", "Rules loaded, by policy",
                                      labels=["policy"])
            violations = GaugeMetricFamily("charter_violations",
                                           "Current error/warning rows, by policy",
                                           labels=["policy"])
            for live in s.policies.live.values():
                rules.add_metric([live.record.name], len(live.rules))
                violations.add_metric([live.record.name],
                                      len(s.violations.current(live.record.name)))
            datasources = GaugeMetricFamily("charter_datasources", "Datasources")
            datasources.add_metric([], len(s.datasources.live))
            batches = CounterMetricFamily("charter_batches", "Batches applied to the engine")
            batches.add_metric([], s.batches)
            seconds = CounterMetricFamily("charter_batch_seconds",
                                          "Seconds spent applying batches")
            seconds.add_metric([], s.batch_seconds)
            listeners = GaugeMetricFamily("charter_event_listeners", "Open event streams")
            listeners.add_metric([], len(s.events))
            history = CounterMetricFamily("charter_history_write_errors",
                                          "Violation history writes that failed")
            history.add_metric([], s.violations.write_errors)
        yield from (policies, rules, violations, datasources, batches, seconds, listeners,
                    history)


class Metrics:
    def __init__(self, service) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("charter_http_requests", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("charter_http_request_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry)
        self.decisions = Counter("charter_decisions", "Decisions answered, by kind and answer",
                                 ["kind", "answer"], registry=self.registry)
        self.decision_errors = Counter("charter_decision_errors",
                                       "Decisions whose policy could not be evaluated (answered "
                                       "by decisions.fail)", ["kind"], registry=self.registry)
        self.decision_latency = Histogram(
            "charter_decision_seconds", "Time to decide, audit included", ["kind"],
            buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5),
            registry=self.registry)
        self.registry.register(ServiceCollector(service))

    def decided(self, kind: str, allowed: bool, error: bool, seconds: float) -> None:
        """Count one decision (``kind``: ``oslo``, ``kubernetes``)."""
        self.decisions.labels(kind, "allow" if allowed else "deny").inc()
        if error:
            self.decision_errors.labels(kind).inc()
        self.decision_latency.labels(kind).observe(seconds)


class MetricsMiddleware:
    """Counts each request under its route template (``/v1/policies/{policy}``), not its URL."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope["method"], name, str(status)).inc()
            self.metrics.latency.labels(scope["method"], name).observe(
                time.perf_counter() - start)
