"""What the service counts, in the Prometheus text format (``GET /metrics``).

One registry per application — never prometheus-client's global one — so
several services (or tests) in one process keep their own counts. Labels
come only from bounded sets: vendors, kinds, outcomes and versions of the
policies being served, error codes, and route names; never from what a
client sends, so a hostile client cannot grow the series without bound.

The three series every request updates (decisions, decision time, request
time) are kept by :class:`_Family` as plain numbers under one lock per
application, not by prometheus-client's ``Counter`` and ``Histogram``: those
take a lock per value and check their arguments on every update (about
2 µs a request for the three). They expose what those would, sample for
sample; the rest stay prometheus-client's own.

With several worker processes (``clause serve --workers N``) each worker
counts its own requests; scrape them behind a load balancer as one job and
sum, the usual way for multi-process Python services.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from typing import Any, Iterable

import prometheus_client.metrics
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

# Decisions take microseconds to milliseconds; requests up to the body timeout.
_FAST = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_SLOW = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_INF = float("inf")
_FAST_BOUNDS, _SLOW_BOUNDS = (*_FAST, _INF), (*_SLOW, _INF)  # what Histogram makes of them


class _Family:
    """A labelled counter or histogram whose numbers its :class:`Metrics` updates under its lock.

    A row per label set, in the order the label sets were first seen (as
    prometheus-client lists its children): ``[created, count]`` for a
    counter, ``[created, sum, n per bucket...]`` for a histogram, where an
    observation goes to the first bucket whose bound is at least it
    (``le``) and the sum adds observations in the order they came — the
    same float additions a ``Histogram`` makes, so the same values.
    """

    def __init__(self, kind: str, name: str, documentation: str, labelnames: tuple[str, ...],
                 lock: threading.Lock, registry: CollectorRegistry, bounds: tuple[float, ...] = ()) -> None:
        """``bounds``: a histogram's bucket bounds, the last one infinite."""
        self.kind, self.name, self.documentation, self.labelnames = kind, name, documentation, labelnames
        self.bounds = bounds
        self.rows: dict[tuple[str, ...], list[Any]] = {}
        self._lock = lock
        registry.register(self)

    def row(self, labels: tuple[str, ...]) -> list[Any]:
        """A new label set's numbers (the caller holds the lock)."""
        row = self.rows[labels] = [time.time(), 0.0] + [0] * len(self.bounds)
        return row

    def describe(self) -> Iterable[Metric]:
        return [Metric(self.name, self.documentation, self.kind)]

    def collect(self) -> Iterable[Metric]:
        """The samples ``Counter`` or ``Histogram`` would give for the same updates."""
        with self._lock:
            rows = [(labels, list(row)) for labels, row in self.rows.items()]
        created = getattr(prometheus_client.metrics, "_use_created", True)  # disable_created_metrics()
        metric = Metric(self.name, self.documentation, self.kind)
        for values, row in rows:
            labels = dict(zip(self.labelnames, values))
            if self.kind == "counter":
                metric.add_sample(self.name + "_total", labels, row[1])
            else:
                count = 0.0
                for bound, n in zip(self.bounds, row[2:]):
                    count += n
                    metric.add_sample(self.name + "_bucket", {**labels, "le": floatToGoString(bound)}, count)
                metric.add_sample(self.name + "_count", labels, count)
                metric.add_sample(self.name + "_sum", labels, row[1])
            if created:
                metric.add_sample(self.name + "_created", labels, row[0])
        return [metric]


class Metrics:
    """The service's counters, histograms and gauges, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._lock = threading.Lock()  # the rows of the three families below
        self.decisions = _Family("counter", "clause_decisions", "Decisions answered",
                                 ("vendor", "kind", "outcome", "version"), self._lock, r)
        self.decision_seconds = _Family("histogram", "clause_decision_seconds",
                                        "Time to decide one case (without HTTP)", ("vendor", "kind"),
                                        self._lock, r, _FAST_BOUNDS)
        self.errors = Counter("clause_errors", "Requests answered with an error, by error code",
                              ["code", "status"], registry=r)
        self.requests = _Family("histogram", "clause_http_request_seconds", "HTTP requests, by route and status",
                                ("route", "method", "status"), self._lock, r, _SLOW_BOUNDS)
        self.reloads = Counter("clause_policy_reloads", "Policy reloads after a change on disk or a POST /v1/reload, by result (reloaded, failed)",
                               ["result"], registry=r)
        self.policies_ok = Gauge("clause_policies_ok", "1 when the policy files on disk load, else 0",
                                 registry=r)
        self.log_write_seconds = Histogram("clause_log_write_seconds", "Time of one decision-log transaction (a group of decisions, one commit)",
                                           buckets=_SLOW, registry=r)
        self.log_queue = Gauge("clause_log_queue_depth", "Requests waiting for the decision log's next commit",
                               registry=r)
        self.policies_ok.set(1)
        # The rows by the arguments as given (status an int), to skip converting them.
        self._decided: dict[tuple[str, str, str, str], tuple[list[Any], list[Any]]] = {}
        self._requests: dict[tuple[str, str, int], list[Any]] = {}

    def decided(self, vendor: str, kind: str, outcome: str, version: str, seconds: float) -> None:
        key = (vendor, kind, outcome, version)
        with self._lock:
            rows = self._decided.get(key)
            if rows is None:
                timed = self.decision_seconds.rows.get((vendor, kind))  # shared by outcomes and versions
                if timed is None:
                    timed = self.decision_seconds.row((vendor, kind))
                rows = self._decided[key] = (self.decisions.row(key), timed)
            rows[0][1] += 1
            timed = rows[1]
            timed[1] += seconds
            timed[2 + bisect_left(_FAST_BOUNDS, seconds)] += 1

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request into ``clause_http_request_seconds`` (labels from bounded sets only)."""
        key = (route, method, status)
        with self._lock:
            row = self._requests.get(key)
            if row is None:
                row = self._requests[key] = self.requests.row((route, method, str(status)))
            row[1] += seconds
            row[2 + bisect_left(_SLOW_BOUNDS, seconds)] += 1

    def failed(self, code: str, status: int) -> None:
        self.errors.labels(code, str(status)).inc()

    def reloaded(self, result: str, ok: bool) -> None:
        self.reloads.labels(result).inc()
        self.policies_ok.set(1 if ok else 0)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
