"""engine/accesslog.py at the ASGI level: request ids, the answer's header, what is counted and logged."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from engine.accesslog import ACCESS, AccessLog
from engine.metrics import Metrics


def _call(log: AccessLog, headers: list[tuple[bytes, bytes]], method: str = "POST") -> list[dict[str, Any]]:
    """The messages ``log`` sends for one request to /v1/decide."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/v1/decide", "headers": headers}
    asyncio.run(log(scope, receive, send))
    return sent


def _answering(status: int, written: list[dict[str, Any]] | None = None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        start = {"type": "http.response.start", "status": status, "headers": [(b"content-length", b"2")]}
        if written is not None:
            written.append(start)
        await send(start)
        await send({"type": "http.response.body", "body": b"{}"})
    return app


def _request_id(sent: list[dict[str, Any]]) -> bytes:
    headers = sent[0]["headers"]
    assert headers[-1][0] == b"x-request-id" and [n for n, _ in headers].count(b"x-request-id") == 1
    return headers[-1][1]


def test_the_client_id_is_kept_when_a_short_token_and_the_last_one_wins() -> None:
    log = AccessLog(_answering(200), Metrics())
    assert _request_id(_call(log, [(b"x-request-id", b"trace-42")])) == b"trace-42"
    two = [(b"x-request-id", b"first"), (b"host", b"h"), (b"x-request-id", b"second")]
    assert _request_id(_call(log, two)) == b"second"
    for refused in (b"has space", b"x" * 65, b""):
        fresh = _request_id(_call(log, [(b"x-request-id", refused)]))
        assert fresh != refused and len(fresh) == 32
    ids = {_request_id(_call(log, [])) for _ in range(3)}
    assert len(ids) == 3


def test_the_app_start_message_is_left_as_written() -> None:
    written: list[dict[str, Any]] = []
    sent = _call(AccessLog(_answering(201, written), Metrics()), [])
    assert written[0]["headers"] == [(b"content-length", b"2")]
    assert sent[0]["headers"][0] == (b"content-length", b"2") and sent[0]["status"] == 201
    assert sent[1] == {"type": "http.response.body", "body": b"{}"}


def test_the_status_counted_is_the_answer_s_or_500_when_none_began() -> None:
    metrics = Metrics()
    _call(AccessLog(_answering(422), metrics, route="decide"), [], method="BREW")

    async def crash(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        _call(AccessLog(crash, metrics, route="decide"), [])
    text = metrics.render()[0].decode()
    assert 'clause_http_request_seconds_count{method="other",route="decide",status="422"} 1.0' in text
    assert 'clause_http_request_seconds_count{method="POST",route="decide",status="500"} 1.0' in text


def test_json_logs_write_one_line_per_request() -> None:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())
    handler, level = Keep(), ACCESS.level
    ACCESS.addHandler(handler)
    ACCESS.setLevel(logging.INFO)
    try:
        _call(AccessLog(_answering(200), Metrics(), json_logs=True), [(b"x-request-id", b"abc")])
        _call(AccessLog(_answering(200), Metrics()), [])  # without json_logs: nothing
    finally:
        ACCESS.removeHandler(handler)
        ACCESS.setLevel(level)
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert (line["request_id"], line["route"], line["status"], line["method"]) == ("abc", "decide", 200, "POST")
