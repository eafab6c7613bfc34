"""engine/metrics.py: the series kept as plain numbers expose what prometheus-client's would.

The reference is what the module used before: a ``Counter`` and two
``Histogram`` objects in a registry of their own, fed the same updates.
"""

from __future__ import annotations

import random
import re
import sys
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from engine.metrics import _FAST, _SLOW, Metrics

_CREATED = re.compile(r"^(\w+_created(?:\{.*\})?) \S+$", re.M)


def _reference(updates: list[tuple[str, tuple[object, ...]]]) -> str:
    """The exposition prometheus-client's own objects give for ``updates`` (same families, same order)."""
    r = CollectorRegistry(auto_describe=True)
    decisions = Counter("clause_decisions", "Decisions answered", ["vendor", "kind", "outcome", "version"], registry=r)
    decision_seconds = Histogram("clause_decision_seconds", "Time to decide one case (without HTTP)",
                                 ["vendor", "kind"], buckets=_FAST, registry=r)
    errors = Counter("clause_errors", "Requests answered with an error, by error code", ["code", "status"], registry=r)
    requests = Histogram("clause_http_request_seconds", "HTTP requests, by route and status",
                         ["route", "method", "status"], buckets=_SLOW, registry=r)
    Counter("clause_policy_reloads", "Policy reloads after a change on disk or a POST /v1/reload, by result "
            "(reloaded, failed)", ["result"], registry=r)
    Gauge("clause_policies_ok", "1 when the policy files on disk load, else 0", registry=r).set(1)
    Histogram("clause_log_write_seconds", "Time of one decision-log transaction (a group of decisions, one commit)",
              buckets=_SLOW, registry=r)
    Gauge("clause_log_queue_depth", "Requests waiting for the decision log's next commit", registry=r)
    for what, args in updates:
        if what == "decided":
            vendor, kind, outcome, version, seconds = args
            decisions.labels(vendor, kind, outcome, version).inc()
            decision_seconds.labels(vendor, kind).observe(seconds)
        elif what == "request":
            route, method, status, seconds = args
            requests.labels(route, method, str(status)).observe(seconds)
        else:
            code, status = args
            errors.labels(code, str(status)).inc()
    return generate_latest(r).decode()


def _updates(n: int, seed: int = 3) -> list[tuple[str, tuple[object, ...]]]:
    """Updates over several label sets, with times on, between and beyond the bucket bounds."""
    rng = random.Random(seed)
    times = [*_FAST, *_SLOW, 0.0, 1e-7, 0.0003, 0.07, 3.0, 11.0, 120.0, float("inf")]
    out: list[tuple[str, tuple[object, ...]]] = []
    for _ in range(n):
        seconds = rng.choice(times) if rng.random() < 0.5 else rng.random() ** 4 * 2
        pick = rng.random()
        if pick < 0.45:
            out.append(("decided", (rng.choice("ab"), rng.choice(["warranty", "return"]),
                                    rng.choice(["approved", "denied", "review"]), rng.choice(["1", "2"]), seconds)))
        elif pick < 0.9:
            out.append(("request", (rng.choice(["decide", "healthz"]), rng.choice(["POST", "GET"]),
                                    rng.choice([200, 422, 500]), seconds)))
        else:
            out.append(("failed", (rng.choice(["json", "case"]), 422)))
    return out


def _same_but_created(ours: str, theirs: str) -> None:
    """Equal text once the ``_created`` times (when each series began) are blanked; same series have one."""
    assert _CREATED.findall(ours) == _CREATED.findall(theirs)
    assert _CREATED.sub(r"\1 T", ours) == _CREATED.sub(r"\1 T", theirs)


def test_the_exposition_is_prometheus_clients_for_the_same_updates() -> None:
    updates = _updates(3000)
    metrics = Metrics()
    for what, args in updates:
        getattr(metrics, what)(*args)
    ours = metrics.render()[0].decode()
    _same_but_created(ours, _reference(updates))
    assert "clause_http_request_seconds_sum" in ours and 'le="+Inf"' in ours


def test_a_new_series_is_created_when_first_updated() -> None:
    metrics = Metrics()
    assert "clause_decisions_total{" not in metrics.render()[0].decode()
    metrics.decided("a", "warranty", "approved", "1", 0.0001)
    metrics.decided("a", "warranty", "denied", "1", 0.0002)  # the same decision-time series
    text = metrics.render()[0].decode()
    assert text.count("clause_decisions_created{") == 2 and text.count("clause_decision_seconds_created{") == 1
    assert 'clause_decision_seconds_count{kind="warranty",vendor="a"} 2.0' in text


def test_updates_from_several_threads_are_all_counted() -> None:
    metrics = Metrics()
    per_thread, threads = 20000, 4

    def work() -> None:
        for i in range(per_thread):
            metrics.request("decide", "POST", 200, 0.0001 * (i % 3))
            metrics.decided("a", "warranty", "approved", "1", 0.5)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can, between any two updates
    try:
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    text = metrics.render()[0].decode()
    total = float(per_thread * threads)
    assert f'clause_http_request_seconds_count{{method="POST",route="decide",status="200"}} {total}' in text
    assert f'clause_decisions_total{{kind="warranty",outcome="approved",vendor="a",version="1"}} {total}' in text
    assert 'clause_decision_seconds_bucket{kind="warranty",le="0.25",vendor="a"} 0.0' in text
    assert f'clause_decision_seconds_sum{{kind="warranty",vendor="a"}} {total * 0.5}' in text


def test_two_applications_keep_their_own_counts() -> None:
    one, two = Metrics(), Metrics()
    one.request("decide", "POST", 200, 0.001)
    assert "clause_http_request_seconds_count" in one.render()[0].decode()
    assert "clause_http_request_seconds_count" not in two.render()[0].decode()
