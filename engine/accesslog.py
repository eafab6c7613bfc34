"""One structured line per HTTP request, request ids, and request timing for the metrics.

An ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which buffers
streamed bodies) that:

* gives each request an id — the client's ``X-Request-Id`` when it is a
  short token, else a fresh one — and returns it in ``X-Request-Id``;
* times the request into ``clause_http_request_seconds`` by route name, method (``other``
  for a method HTTP does not define: a client may send any token) and status;
* with ``json_logs``, writes one JSON object per request to the
  ``clause.access`` logger: time, request id, method, route, status,
  latency, and for decisions vendor, kind, outcome, policy version and
  digest (handlers leave those in ``scope["state"]["decision"]``). The
  case's facts are never logged unless ``log_facts`` is set.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import sys
import uuid
from datetime import datetime, timezone
from time import perf_counter
from typing import Any, Awaitable, Callable

from engine.metrics import Metrics

ACCESS = logging.getLogger("clause.access")
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The method label: a client may send any token as a method; the label set must stay bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
Scope = dict[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class JsonLines(logging.Formatter):
    """A record's message is already a JSON object: write it as one line."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def enable_json_lines() -> None:
    """Send the access log to stderr as JSON lines (once per process: the CLI or a worker's factory).

    Process-wide logging setup belongs to the program, not the library: only
    ``clause serve`` and :func:`engine.service.app_from_env` call this.
    """
    if any(isinstance(h.formatter, JsonLines) for h in ACCESS.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    ACCESS.addHandler(handler)
    ACCESS.setLevel(logging.INFO)
    ACCESS.propagate = False


def route_name(path: str) -> str:
    """A bounded label for a path (clients can send any path; the label set must not grow)."""
    for prefix, name in (("/v1/decide/batch", "decide_batch"), ("/v1/decide", "decide"),
                         ("/v1/policies", "policies"), ("/v1/reload", "reload"), ("/healthz", "healthz"),
                         ("/readyz", "readyz"), ("/metrics", "metrics"), ("/openapi.json", "openapi"),
                         ("/workbench/api", "workbench_api"), ("/workbench/static", "page")):
        if path == prefix or path.startswith(prefix + "/"):
            return name
    return "page" if path in ("/", "/docs") else "other"


class AccessLog:
    """The middleware; see the module docstring."""

    def __init__(self, app: ASGI, metrics: Metrics, *, json_logs: bool = False, log_facts: bool = False,
                 route: str | None = None) -> None:
        """``route``: the one route ``app`` serves, when it is known (else named from the path)."""
        self.app, self.metrics, self.json_logs, self.log_facts = app, metrics, json_logs, log_facts
        self.route = route
        # Request ids: a random prefix per app and a counter — unique without a system call
        # for random bytes on every request (uuid4 cost about a fifth of a small request's time).
        self._prefix, self._count = uuid.uuid4().hex[:16], itertools.count(1)

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = None
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                sent = value  # the last one, as a dict of the headers kept it
        if sent is not None and _TOKEN.fullmatch(text := sent.decode("latin-1")):
            request_id = text
        else:
            request_id = f"{self._prefix}{next(self._count):016x}"
        header = (b"x-request-id", request_id.encode())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500

        def send_with_id(message: Any) -> Awaitable[None]:
            # A plain function returning send's awaitable: no coroutine of its own per message.
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = message.copy()  # the app's message stays as it wrote it
                message["headers"] = [*message.get("headers", ()), header]
            return send(message)

        started = perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = perf_counter() - started
            route = self.route or route_name(scope.get("path", ""))
            method = scope.get("method", "")
            self.metrics.request(route, method if method in _METHODS else "other", status, elapsed)
            if self.json_logs:
                self._write(scope, state, route, status, elapsed)

    def _write(self, scope: Scope, state: dict[str, Any], route: str, status: int, elapsed: float) -> None:
        line: dict[str, Any] = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "request_id": state["request_id"], "method": scope.get("method"), "route": route,
            "path": scope.get("path"), "status": status, "latency_ms": round(elapsed * 1000, 3)}
        decision = state.get("decision")
        if decision:
            line.update({k: decision.get(k) for k in ("vendor", "kind", "outcome", "version", "digest")})
            if self.log_facts and "facts" in decision:
                line["facts"] = decision["facts"]
        if state.get("error_code"):
            line["error"] = state["error_code"]
        ACCESS.info(json.dumps(line, ensure_ascii=True, default=str))
