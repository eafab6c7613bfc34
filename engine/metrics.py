"""What the service counts, in the Prometheus text format (``GET /metrics``).

One registry per application — never prometheus-client's global one — so
several services (or tests) in one process keep their own counts. Labels
come only from bounded sets: vendors, kinds, outcomes and versions of the
policies being served, error codes, and route names; never from what a
client sends, so a hostile client cannot grow the series without bound.

With several worker processes (``clause serve --workers N``) each worker
counts its own requests; scrape them behind a load balancer as one job and
sum, the usual way for multi-process Python services.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Decisions take microseconds to milliseconds; requests up to the body timeout.
_FAST = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_SLOW = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """The service's counters, histograms and gauges, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter("clause_decisions", "Decisions answered",
                                 ["vendor", "kind", "outcome", "version"], registry=r)
        self.decision_seconds = Histogram("clause_decision_seconds", "Time to decide one case (without HTTP)",
                                          ["vendor", "kind"], buckets=_FAST, registry=r)
        self.errors = Counter("clause_errors", "Requests answered with an error, by error code",
                              ["code", "status"], registry=r)
        self.requests = Histogram("clause_http_request_seconds", "HTTP requests, by route and status",
                                  ["route", "method", "status"], buckets=_SLOW, registry=r)
        self.reloads = Counter("clause_policy_reloads", "Policy reloads after a change on disk or a POST /v1/reload, by result (reloaded, failed)",
                               ["result"], registry=r)
        self.policies_ok = Gauge("clause_policies_ok", "1 when the policy files on disk load, else 0",
                                 registry=r)
        self.log_write_seconds = Histogram("clause_log_write_seconds", "Time of one decision-log transaction (a group of decisions, one commit)",
                                           buckets=_SLOW, registry=r)
        self.log_queue = Gauge("clause_log_queue_depth", "Requests waiting for the decision log's next commit",
                               registry=r)
        self.policies_ok.set(1)
        # The labelled children, looked up once per label set: labels() checks and converts its
        # arguments and takes a lock on every call (a few µs a request).
        self._decided: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self._requests: dict[tuple[str, str, int], Any] = {}

    def decided(self, vendor: str, kind: str, outcome: str, version: str, seconds: float) -> None:
        key = (vendor, kind, outcome, version)
        children = self._decided.get(key)
        if children is None:  # a race between threads finds the same children twice: harmless
            children = self._decided[key] = (self.decisions.labels(*key),
                                             self.decision_seconds.labels(vendor, kind))
        children[0].inc()
        children[1].observe(seconds)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request into ``clause_http_request_seconds`` (labels from bounded sets only)."""
        key = (route, method, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(route, method, str(status))
        child.observe(seconds)

    def failed(self, code: str, status: int) -> None:
        self.errors.labels(code, str(status)).inc()

    def reloaded(self, result: str, ok: bool) -> None:
        self.reloads.labels(result).inc()
        self.policies_ok.set(1 if ok else 0)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
